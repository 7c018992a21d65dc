#include "sandbox/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace boxd::sandbox {

Status applyRlimits(const ResourceRlimits& r) {
  struct { int res; uint64_t v; const char* name; } limits[] = {
      {RLIMIT_CORE, 0, "core"},
      {RLIMIT_NOFILE, r.nofile, "nofile"},
      {RLIMIT_FSIZE, r.fsize, "fsize"},
      {RLIMIT_STACK, r.stack, "stack"},
  };
  for (const auto& l : limits) {
    rlimit rl{l.v, l.v};
    if (::setrlimit(l.res, &rl) != 0) return errnoStatus(std::string("setrlimit ") + l.name, errno);
  }
  return okStatus();
}

Status setNoNewPrivs() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errnoStatus("no_new_privs", errno);
  return okStatus();
}

Status dropToUser(uint32_t uid, uint32_t gid, bool change_ids) {
  int last_cap = CAP_LAST_CAP;
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL && cap > last_cap) break;  // past the kernel's last capability
      if (errno == EINVAL) continue;
      return errnoStatus("drop bounding capability " + std::to_string(cap), errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errnoStatus("clear ambient capabilities", errno);
  }
  unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return errnoStatus("set securebits", errno);
  if (change_ids) {
    gid_t g = gid;
    if (::setgroups(1, &g) != 0) return errnoStatus("setgroups", errno);
    if (::setresgid(gid, gid, gid) != 0) return errnoStatus("setresgid " + std::to_string(gid), errno);
    if (::setresuid(uid, uid, uid) != 0) return errnoStatus("setresuid " + std::to_string(uid), errno);
  }
  // Whatever is left (non-root mode keeps uid 0 of the box): clear every set explicitly.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &hdr, data) != 0) return errnoStatus("capset", errno);
  return okStatus();
}

}  // namespace boxd::sandbox
