#include "sandbox/seccomp_policy.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "sandbox/seccomp_load.h"

namespace boxd::sandbox {

const std::vector<SeccompRule>& seccompRules() {
  using W = RuleWhen;
  static const std::vector<SeccompRule> kRules = {
      // syscall              errno   when                       why
      {"mount",               EPERM,  W::kAlways,                "filesystem view is fixed at start"},
      {"umount2",             EPERM,  W::kAlways,                "would reveal masked paths"},
      {"pivot_root",          EPERM,  W::kAlways,                "filesystem view is fixed at start"},
      {"chroot",              EPERM,  W::kAlways,                "filesystem view is fixed at start"},
      {"open_tree",           EPERM,  W::kAlways,                "new mount API"},
      {"move_mount",          EPERM,  W::kAlways,                "new mount API"},
      {"fsopen",              EPERM,  W::kAlways,                "new mount API"},
      {"fsconfig",            EPERM,  W::kAlways,                "new mount API"},
      {"fsmount",             EPERM,  W::kAlways,                "new mount API"},
      {"fspick",              EPERM,  W::kAlways,                "new mount API"},
      {"mount_setattr",       EPERM,  W::kAlways,                "new mount API"},
      {"unshare",             EPERM,  W::kAlways,                "no new namespaces (userns is kernel attack surface)"},
      {"setns",               EPERM,  W::kAlways,                "no joining other namespaces"},
      {"clone",               EPERM,  W::kCloneNamespaceFlags,   "no new namespaces"},
      {"clone3",              ENOSYS, W::kAlways,                "flags live in memory seccomp cannot read; libc falls back to clone"},
      {"keyctl",              EPERM,  W::kAlways,                "kernel keyring is not namespaced"},
      {"add_key",             EPERM,  W::kAlways,                "kernel keyring is not namespaced"},
      {"request_key",         EPERM,  W::kAlways,                "kernel keyring is not namespaced"},
      {"bpf",                 EPERM,  W::kAlways,                "kernel attack surface"},
      {"perf_event_open",     EPERM,  W::kAlways,                "leaks kernel and host information"},
      {"userfaultfd",         EPERM,  W::kAlways,                "used to win kernel races"},
      {"io_uring_setup",      EPERM,  W::kAlways,                "kernel attack surface, bypasses this filter"},
      {"io_uring_enter",      EPERM,  W::kAlways,                "kernel attack surface"},
      {"io_uring_register",   EPERM,  W::kAlways,                "kernel attack surface"},
      {"kexec_load",          EPERM,  W::kAlways,                "host kernel"},
      {"kexec_file_load",     EPERM,  W::kAlways,                "host kernel"},
      {"init_module",         EPERM,  W::kAlways,                "host kernel"},
      {"finit_module",        EPERM,  W::kAlways,                "host kernel"},
      {"delete_module",       EPERM,  W::kAlways,                "host kernel"},
      {"open_by_handle_at",   EPERM,  W::kAlways,                "escapes the mount namespace (shocker)"},
      {"name_to_handle_at",   EPERM,  W::kAlways,                "pairs with open_by_handle_at"},
      {"personality",         EPERM,  W::kPersonalityChange,     "READ_IMPLIES_EXEC and friends weaken ASLR/NX"},
      {"ioctl",               EPERM,  W::kIoctlTerminalInject,   "TIOCSTI/TIOCLINUX inject input into a terminal"},
      {"acct",                EPERM,  W::kAlways,                "host accounting"},
      {"swapon",              EPERM,  W::kAlways,                "host memory"},
      {"swapoff",             EPERM,  W::kAlways,                "host memory"},
      {"reboot",              EPERM,  W::kAlways,                "host power"},
      {"syslog",              EPERM,  W::kAlways,                "kernel log leaks addresses"},
      {"settimeofday",        EPERM,  W::kAlways,                "clock is not namespaced"},
      {"clock_settime",       EPERM,  W::kAlways,                "clock is not namespaced"},
      {"clock_adjtime",       EPERM,  W::kAlways,                "clock is not namespaced"},
      {"adjtimex",            EPERM,  W::kAlways,                "clock is not namespaced"},
      {"quotactl",            EPERM,  W::kAlways,                "host filesystems"},
      {"quotactl_fd",         EPERM,  W::kAlways,                "host filesystems"},
      {"lookup_dcookie",      EPERM,  W::kAlways,                "kernel profiling"},
      {"vhangup",             EPERM,  W::kAlways,                "terminal hangup of others"},
      {"iopl",                EPERM,  W::kAlways,                "raw port I/O"},
      {"ioperm",              EPERM,  W::kAlways,                "raw port I/O"},
      {"uselib",              EPERM,  W::kAlways,                "obsolete"},
      {"ustat",               EPERM,  W::kAlways,                "obsolete"},
      {"sysfs",               EPERM,  W::kAlways,                "obsolete"},
      {"_sysctl",             EPERM,  W::kAlways,                "obsolete"},
      {"fanotify_init",       EPERM,  W::kAlways,                "watches whole filesystems"},
      {"kcmp",                EPERM,  W::kAlways,                "kernel pointer comparisons"},
  };
  return kRules;
}

namespace {

struct CtxDeleter {
  void operator()(scmp_filter_ctx* c) const { seccomp_release(*c); delete c; }
};

Status addRule(scmp_filter_ctx ctx, const SeccompRule& r) {
  int nr = seccomp_syscall_resolve_name(r.syscall);
  if (nr == __NR_SCMP_ERROR) return okStatus();  // not on this architecture
  uint32_t action = SCMP_ACT_ERRNO(static_cast<uint32_t>(r.errno_value));
  int rc = 0;
  switch (r.when) {
    case RuleWhen::kAlways:
      rc = seccomp_rule_add(ctx, action, nr, 0);
      break;
    case RuleWhen::kCloneNamespaceFlags:
      for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                            CLONE_NEWNET, CLONE_NEWCGROUP, static_cast<int>(0x00000080) /*CLONE_NEWTIME*/}) {
        rc = seccomp_rule_add(ctx, action, nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
        if (rc) break;
      }
      break;
    case RuleWhen::kIoctlTerminalInject:
      // Compare the low 32 bits only: the kernel truncates the request (CVE-2019-10063).
      for (uint64_t req : {static_cast<uint64_t>(TIOCSTI), static_cast<uint64_t>(TIOCLINUX)}) {
        rc = seccomp_rule_add(ctx, action, nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req));
        if (rc) break;
      }
      break;
    case RuleWhen::kPersonalityChange:
      // One masked compare per rule (libseccomp allows one per argument): deny each flag
      // that weakens ASLR or NX. Bit 31 must be clear so the 0xffffffff query still works.
      for (uint64_t bit : {0x0040000ull /*ADDR_NO_RANDOMIZE*/, 0x0100000ull /*MMAP_PAGE_ZERO*/,
                           0x0200000ull /*ADDR_COMPAT_LAYOUT*/, 0x0400000ull /*READ_IMPLIES_EXEC*/,
                           0x0800000ull /*ADDR_LIMIT_32BIT*/, 0x8000000ull /*ADDR_LIMIT_3GB*/}) {
        rc = seccomp_rule_add(ctx, action, nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000ull | bit, bit));
        if (rc) break;
      }
      break;
  }
  if (rc != 0) return errnoStatus(std::string("seccomp rule for ") + r.syscall, -rc);
  return okStatus();
}

}  // namespace

StatusOr<std::string> compileSeccompFilter() {
  scmp_filter_ctx raw = seccomp_init(SCMP_ACT_ALLOW);
  if (!raw) return internalError("seccomp_init failed");
  std::unique_ptr<scmp_filter_ctx, CtxDeleter> ctx(new scmp_filter_ctx(raw));
  // Syscalls of a foreign architecture (i386 via int 0x80, x32) kill the process.
  if (int rc = seccomp_attr_set(raw, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc != 0) {
    return errnoStatus("seccomp badarch action", -rc);
  }
  for (const auto& r : seccompRules()) RETURN_IF_ERROR(addRule(raw, r));
  int fd = ::memfd_create("boxd-seccomp", MFD_CLOEXEC);
  if (fd < 0) return errnoStatus("memfd_create", errno);
  int rc = seccomp_export_bpf(raw, fd);
  std::string out;
  if (rc == 0) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    out.resize(static_cast<size_t>(size));
    if (::pread(fd, out.data(), out.size(), 0) != size) rc = -EIO;
  }
  ::close(fd);
  if (rc != 0) return errnoStatus("export seccomp program", -rc);
  return out;
}

Status installSeccompFilter() {
  ASSIGN_OR_RETURN(std::string program, compileSeccompFilter());
  return loadSeccompProgram(program);
}

}  // namespace boxd::sandbox
