// Attacks through system calls the seccomp filter denies. Where possible the arguments are
// chosen so the kernel itself would answer differently (EFAULT, EBADF, ENOTTY, success),
// so EPERM/ENOSYS proves the filter, not a missing capability, stopped the call.
#include <string>

#include "security/attack_fixture.h"

namespace boxd::testing {
namespace {

using std::chrono::seconds;
using SyscallFilterTest = SecurityTest;

TEST_F(SyscallFilterTest, MountIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
os.mkdir("/tmp/m")
report("mount_tmpfs", sc(165, b"none", b"/tmp/m", b"tmpfs", 0, None))
report("mount_bind", sc(165, b"/", b"/tmp/m", None, 0x1000, None))
report("mount_proc", sc(165, b"proc", b"/tmp/m", b"proc", 0, None))
report("remount_rw", sc(165, None, b"/usr", None, 0x20 | 0x1000, None))
report("umount2_proc", sc(166, b"/proc", 0))
report("umount2_detach_usr", sc(166, b"/usr", 2))
report("pivot_root", sc(155, b"/workspace", b"/workspace"))
report("listing", os.listdir("/tmp/m") or "empty")
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"mount_tmpfs", "mount_bind", "mount_proc", "remount_rw", "umount2_proc",
                        "umount2_detach_usr", "pivot_root"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
  EXPECT_EQ(rep["listing"], "empty") << describe(r);

  // The setuid mount(8) binary gets no privilege either.
  auto m = sh(*box, "mkdir -p /tmp/m2 && mount -t tmpfs none /tmp/m2; echo rc=$?", seconds(10));
  EXPECT_NE(parseReport(m.stdout_data)["rc"], "0") << describe(m);
}

TEST_F(SyscallFilterTest, NewMountApiIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // Without the filter: fsconfig/fsmount/move_mount on fd -1 give EBADF, mount_setattr with
  // a NULL attr gives EINVAL/EFAULT.
  auto r = py(*box, R"PY(
report("open_tree", sc(428, -100, b"/usr", 1))
report("move_mount", sc(429, -1, b"", -1, b"", 0))
report("fsopen", sc(430, b"tmpfs", 0))
report("fsconfig", sc(431, -1, 0, None, None, 0))
report("fsmount", sc(432, -1, 0, 0))
report("fspick", sc(433, -100, b"/usr", 0))
report("mount_setattr", sc(442, -100, b"/usr", 0, None, 0))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k :
       {"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
}

TEST_F(SyscallFilterTest, UnshareNamespacesIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // An unprivileged process may normally unshare a user namespace (and then all others).
  auto r = py(*box, R"PY(
flags = {"user": 0x10000000, "mnt": 0x00020000, "net": 0x40000000, "pid": 0x20000000,
         "uts": 0x04000000, "ipc": 0x08000000, "cgroup": 0x02000000, "time": 0x00000080}
for name, f in flags.items():
    report("unshare_" + name, sc(272, f))
report("unshare_user_mnt", sc(272, flags["user"] | flags["mnt"]))
report("uid_map_after", open("/proc/self/uid_map").read().split()[0])
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"unshare_user", "unshare_mnt", "unshare_net", "unshare_pid",
                        "unshare_uts", "unshare_ipc", "unshare_cgroup", "unshare_time",
                        "unshare_user_mnt"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
  // Still in the box's own user namespace, where box root is uid 0.
  EXPECT_EQ(rep["uid_map_after"], "0") << describe(r);
}

TEST_F(SyscallFilterTest, SetnsIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
for ns in ["user", "mnt", "net", "pid", "uts", "ipc", "cgroup"]:
    fd = os.open("/proc/self/ns/" + ns, os.O_RDONLY)
    report("setns_self_" + ns, sc(308, fd, 0))
    os.close(fd)
report("open_init_mnt_ns", tryos(os.open, "/proc/1/ns/mnt", os.O_RDONLY))
pidfd, e = raw(434, 1, 0)  # pidfd_open(1)
report("setns_pidfd_init", sc(308, pidfd, 0x00020000) if pidfd >= 0 else "pidfd_" + ename(e))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* ns : {"user", "mnt", "net", "pid", "uts", "ipc", "cgroup"}) {
    EXPECT_EQ(rep[std::string("setns_self_") + ns], "EPERM") << ns << "\n" << describe(r);
  }
  EXPECT_EQ(rep["open_init_mnt_ns"], "EACCES") << describe(r);
  // Either pidfd_open(1) is refused or setns through it is.
  const std::string& via_pidfd = rep["setns_pidfd_init"];
  EXPECT_TRUE(via_pidfd == "EPERM" || via_pidfd.rfind("pidfd_E", 0) == 0) << describe(r);
}

TEST_F(SyscallFilterTest, CloneWithNamespaceFlagsIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
SIGCHLD = 17
for name, f in {"user": 0x10000000, "mnt": 0x00020000, "net": 0x40000000, "pid": 0x20000000,
                "uts": 0x04000000, "ipc": 0x08000000, "cgroup": 0x02000000}.items():
    report("clone_" + name, forky(56, f | SIGCHLD, 0, 0, 0, 0))
report("clone_plain", forky(56, SIGCHLD, 0, 0, 0, 0))
pid = os.fork()
if pid == 0:
    os._exit(7)
report("fork_status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* ns : {"user", "mnt", "net", "pid", "uts", "ipc", "cgroup"}) {
    EXPECT_EQ(rep[std::string("clone_") + ns], "EPERM") << ns << "\n" << describe(r);
  }
  // Control: ordinary process creation still works.
  EXPECT_EQ(rep["clone_plain"], "OK") << describe(r);
  EXPECT_EQ(rep["fork_status"], "7") << describe(r);
}

TEST_F(SyscallFilterTest, Clone3IsEnosys) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // clone3 takes its flags in memory the filter cannot inspect, so it is refused outright
  // with ENOSYS, which makes libc fall back to clone.
  auto r = py(*box, R"PY(
class CloneArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("flags", "pidfd", "child_tid", "parent_tid",
                "exit_signal", "stack", "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]
for name, flags in {"newuser": 0x10000000, "newns": 0x00020000, "none": 0}.items():
    a = CloneArgs()
    a.flags = flags
    a.exit_signal = 17
    report("clone3_" + name, forky(435, ctypes.byref(a), ctypes.sizeof(a)))
import subprocess
report("subprocess", subprocess.run(["/bin/true"]).returncode)
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["clone3_newuser"], "ENOSYS") << describe(r);
  EXPECT_EQ(rep["clone3_newns"], "ENOSYS") << describe(r);
  EXPECT_EQ(rep["clone3_none"], "ENOSYS") << describe(r);
  EXPECT_EQ(rep["subprocess"], "0") << describe(r);
}

TEST_F(SyscallFilterTest, KeyctlIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // KEYCTL_GET_KEYRING_ID(session, create) and add_key to the session keyring both work
  // for unprivileged processes without the filter.
  auto r = py(*box, R"PY(
report("keyctl", sc(250, 0, -3, 1))
report("add_key", sc(248, b"user", b"boxd-sec", b"secret", 6, -3))
report("request_key", sc(249, b"user", b"boxd-sec", None, 0))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["keyctl"], "EPERM") << describe(r);
  EXPECT_EQ(rep["add_key"], "EPERM") << describe(r);
  EXPECT_EQ(rep["request_key"], "EPERM") << describe(r);
}

TEST_F(SyscallFilterTest, BpfIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
attr = (ctypes.c_uint32 * 32)()
attr[0], attr[1], attr[2], attr[3] = 2, 4, 4, 1   # BPF_MAP_TYPE_ARRAY, key 4, value 4, 1 entry
report("bpf_map_create", sc(321, 0, ctypes.byref(attr), ctypes.sizeof(attr)))
report("bpf_prog_load", sc(321, 5, None, 0))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["bpf_map_create"], "EPERM") << describe(r);
  EXPECT_EQ(rep["bpf_prog_load"], "EPERM") << describe(r);
}

TEST_F(SyscallFilterTest, PerfEventOpenIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // A NULL attr would be EFAULT from the kernel.
  auto r = py(*box, R"PY(
report("perf_event_open", sc(298, None, 0, -1, -1, 0))
)PY");
  EXPECT_EQ(parseReport(r.stdout_data)["perf_event_open"], "EPERM") << describe(r);
}

TEST_F(SyscallFilterTest, UserfaultfdIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // UFFD_USER_MODE_ONLY is allowed for unprivileged users by the kernel.
  auto r = py(*box, R"PY(
report("userfaultfd_user_mode", sc(323, 1))
report("userfaultfd", sc(323, 0))
report("dev_userfaultfd", tryos(os.open, "/dev/userfaultfd", os.O_RDWR))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["userfaultfd_user_mode"], "EPERM") << describe(r);
  EXPECT_EQ(rep["userfaultfd"], "EPERM") << describe(r);
  EXPECT_EQ(rep["dev_userfaultfd"], "ENOENT") << describe(r);
}

TEST_F(SyscallFilterTest, IoUringIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // Without the filter: setup with NULL params is EFAULT, enter/register on fd -1 EBADF.
  auto r = py(*box, R"PY(
report("io_uring_setup", sc(425, 1, None))
params = (ctypes.c_uint8 * 120)()
report("io_uring_setup_valid", sc(425, 4, ctypes.byref(params)))
report("io_uring_enter", sc(426, -1, 0, 0, 0, None, 0))
report("io_uring_register", sc(427, -1, 0, None, 0))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"io_uring_setup", "io_uring_setup_valid", "io_uring_enter",
                        "io_uring_register"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
}

TEST_F(SyscallFilterTest, KexecModulesAndOpenByHandleAreEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
report("kexec_load", sc(246, 0, 0, None, 0))
report("kexec_file_load", sc(320, -1, -1, 0, None, 0))
report("init_module", sc(175, None, 0, b""))
report("finit_module", sc(313, -1, b"", 0))
report("delete_module", sc(176, b"ext4", 0))
report("open_by_handle_at", sc(304, -100, None, 0))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"kexec_load", "kexec_file_load", "init_module", "finit_module",
                        "delete_module", "open_by_handle_at"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
}

TEST_F(SyscallFilterTest, PersonalityFlagsAreEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // ADDR_NO_RANDOMIZE / READ_IMPLIES_EXEC weaken exploit mitigations; only the query value
  // and the plain Linux personalities stay allowed.
  auto r = py(*box, R"PY(
report("addr_no_randomize", sc(135, 0x0040000))
report("read_implies_exec", sc(135, 0x0400000))
report("addr_compat_layout", sc(135, 0x0200000))
report("mmap_page_zero", sc(135, 0x0100000))
report("query", sc(135, 0xffffffff))
report("linux", sc(135, 0))
report("linux32", sc(135, 0x8))
report("back_to_linux", sc(135, 0))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["addr_no_randomize"], "EPERM") << describe(r);
  EXPECT_EQ(rep["read_implies_exec"], "EPERM") << describe(r);
  EXPECT_EQ(rep["addr_compat_layout"], "EPERM") << describe(r);
  EXPECT_EQ(rep["mmap_page_zero"], "EPERM") << describe(r);
  EXPECT_EQ(rep["query"], "OK") << describe(r);
  EXPECT_EQ(rep["linux"], "OK") << describe(r);
  EXPECT_EQ(rep["linux32"], "OK") << describe(r);
}

TEST_F(SyscallFilterTest, TiocstiOnPipeIsEpermNotEnotty) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // stdin is not a terminal: the kernel would say ENOTTY, so EPERM is the filter. The
  // second form sets bit 32 of the request, which the kernel drops (cmd is 32-bit) but a
  // filter comparing all 64 bits would miss.
  auto r = py(*box, R"PY(
c = ctypes.c_char(b"x")
report("tiocsti", sc(16, 0, 0x5412, ctypes.byref(c)))
report("tiocsti_high_bits", sc(16, 0, 0x100005412, ctypes.byref(c)))
report("tiocsti_all_high_bits", sc(16, 0, 0xffffffff00005412, ctypes.byref(c)))
report("tioclinux", sc(16, 0, 0x541C, ctypes.byref(c)))
report("tioclinux_high_bits", sc(16, 0, 0x10000541C, ctypes.byref(c)))
report("tcgets_control", sc(16, 0, 0x5401, ctypes.byref((ctypes.c_char * 64)())))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["tiocsti"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tiocsti_high_bits"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tiocsti_all_high_bits"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tioclinux"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tioclinux_high_bits"], "EPERM") << describe(r);
  // Other ioctls are untouched: the kernel's own answer comes through.
  EXPECT_EQ(rep["tcgets_control"], "ENOTTY") << describe(r);
}

TEST_F(SyscallFilterTest, TiocstiOnBoxTerminalIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
import fcntl, termios
report("isatty", os.isatty(0))
report("fcntl_tiocsti", tryos(fcntl.ioctl, 0, termios.TIOCSTI, b"x"))
c = ctypes.c_char(b"x")
report("tiocsti_high_bits", sc(16, 0, 0x100005412, ctypes.byref(c)))
report("tioclinux", sc(16, 0, 0x541C, ctypes.byref(c)))
report("tcgets_control", sc(16, 0, 0x5401, ctypes.byref((ctypes.c_char * 64)())))
m, s = os.openpty()
report("own_pty_tiocsti", sc(16, s, 0x5412, ctypes.byref(c)))
)PY",
              seconds(30), /*pty=*/true);
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["isatty"], "True") << describe(r);
  EXPECT_EQ(rep["fcntl_tiocsti"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tiocsti_high_bits"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tioclinux"], "EPERM") << describe(r);
  EXPECT_EQ(rep["own_pty_tiocsti"], "EPERM") << describe(r);
  EXPECT_EQ(rep["tcgets_control"], "OK") << describe(r);
}

TEST_F(SyscallFilterTest, AlternateSyscallAbisCannotBypassFilter) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // A filter that only knows x86_64 numbers could be sidestepped through the x32 ABI
  // (nr | 0x40000000) or the i386 ABI (int $0x80, different numbers). Each attempt runs in
  // a child, since refusing a foreign ABI may mean killing the caller. Shellcode with the
  // native `syscall` instruction is the control: it must reach the filter and get EPERM.
  auto r = py(*box, R"PY(
import mmap, signal
def in_child(fn):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        try:
            res = fn()
        except Exception as ex:
            res = "exception:" + type(ex).__name__
        os.write(wr, str(res).encode())
        os._exit(0)
    os.close(wr)
    out = b""
    while True:
        b = os.read(rd, 100)
        if not b:
            break
        out += b
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        return "killed:" + signal.Signals(os.WTERMSIG(st)).name
    return out.decode()
def imm(v):
    return (v & 0xffffffff).to_bytes(4, "little")
def shellcode(trap, nr, a=0, b=0, c=0):
    # push rbx; mov eax,nr; mov ebx,a; mov ecx,b; mov edx,c; <trap>; pop rbx; ret
    # (for `syscall` the args go in rdi/rsi/rdx instead: mov edi,a; mov esi,b)
    if trap == "syscall":
        body = b"\xB8" + imm(nr) + b"\xBF" + imm(a) + b"\xBE" + imm(b) + b"\xBA" + imm(c) + b"\x0F\x05"
    else:
        body = b"\xB8" + imm(nr) + b"\xBB" + imm(a) + b"\xB9" + imm(b) + b"\xBA" + imm(c) + b"\xCD\x80"
    code = b"\x53" + body + b"\x5B\xC3"
    def call():
        buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(code)
        f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
        rv = f()
        return "OK" if rv >= 0 else ename(-rv)
    return call
X32 = 0x40000000
report("x32_unshare", in_child(lambda: sc(X32 | 272, 0x10000000)))
report("x32_keyctl", in_child(lambda: sc(X32 | 250, 0, -3, 1)))
report("x32_bpf", in_child(lambda: sc(X32 | 321, 5, None, 0)))
report("i386_unshare", in_child(shellcode("int80", 310, 0x10000000)))
report("i386_keyctl", in_child(shellcode("int80", 288, 0, -3, 1)))
report("i386_personality", in_child(shellcode("int80", 136, 0x0040000)))
report("native_shellcode_unshare", in_child(shellcode("syscall", 272, 0x10000000)))
report("native_shellcode_getpid", in_child(shellcode("syscall", 39)))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"x32_unshare", "x32_keyctl", "x32_bpf", "i386_unshare", "i386_keyctl",
                        "i386_personality"}) {
    const std::string& v = rep[k];
    // Refused by the filter (EPERM/ENOSYS/SIGSYS) or by the kernel lacking that ABI
    // (ENOSYS, or a #GP -> SIGSEGV for int $0x80 without ia32 emulation).
    EXPECT_TRUE(v == "EPERM" || v == "ENOSYS" || v == "killed:SIGSYS" || v == "killed:SIGSEGV")
        << k << " gave " << v << "\n" << describe(r);
  }
  EXPECT_EQ(rep["native_shellcode_unshare"], "EPERM") << describe(r);
  EXPECT_EQ(rep["native_shellcode_getpid"], "OK") << describe(r);
}

TEST_F(SyscallFilterTest, ChrootAndSetuidAreEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
report("chroot", sc(161, b"/workspace"))
report("setuid0", sc(105, 0))
report("setresuid0", sc(117, 0, 0, 0))
report("setgid0", sc(106, 0))
report("setgroups", sc(116, 0, None))
report("sethostname", sc(170, b"evil", 4))
report("uid", os.getuid())
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"chroot", "setuid0", "setresuid0", "setgid0", "setgroups", "sethostname"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
  EXPECT_EQ(rep["uid"], "1000") << describe(r);
}

}  // namespace
}  // namespace boxd::testing
