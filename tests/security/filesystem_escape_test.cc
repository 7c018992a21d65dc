// Attacks on the box's filesystem view: reading host files outside the binds, writing to
// the read-only template, escaping /workspace through symlinks, /proc/<pid>/{cwd,root,fd}
// tricks (CVE-2024-21626 style), and reaching kernel interfaces (/sys, cgroupfs, /proc
// masks, device nodes) that a box must not have.
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "security/attack_fixture.h"

namespace boxd::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class FilesystemEscapeTest : public SecurityTest {
 protected:
  void TearDown() override {
    for (const auto& p : host_files_) ::unlink(p.c_str());
    SecurityTest::TearDown();
  }

  // A file in the host's /tmp that no box may see.
  std::string makeHostTmpMarker() {
    std::string path = "/tmp/boxd-sec-marker-" + std::to_string(::getpid()) + "-" +
                       std::to_string(host_files_.size());
    EXPECT_TRUE(writeFile(path, "host secret\n").ok());
    host_files_.push_back(path);
    return path;
  }

  std::vector<std::string> host_files_;
};

// Top-level host entries that are not part of the box layout: if a box sees any of them,
// it is looking at the host's root. (/root, /run and /var exist in a box as its own empty
// directories and tmpfs mounts; the host's content under them is checked separately.)
std::vector<std::string> hostOnlyTopLevelEntries() {
  static const std::set<std::string> kBoxLayout = {
      "usr", "bin", "lib", "lib32", "lib64", "libx32", "sbin", "etc", "proc",
      "dev", "tmp", "workspace", "sys", "root", "run", "var"};
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/")) {
    std::string name = e.path().filename().string();
    if (!kBoxLayout.count(name)) out.push_back(name);
  }
  return out;
}

std::vector<std::string> entriesOf(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().string());
  return out;
}

TEST_F(FilesystemEscapeTest, ReadHostShadowIsEnoent) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
for p in ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/sudoers"]:
    report(p, tryos(os.open, p, os.O_RDONLY))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["/etc/shadow"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["/etc/gshadow"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["/etc/shadow-"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["/etc/sudoers"], "ENOENT") << describe(r);

  auto c = sh(*box, "cat /etc/shadow", seconds(10));
  EXPECT_NE(c.exit_code, 0) << describe(c);
  EXPECT_EQ(c.stdout_data, "") << describe(c);
}

TEST_F(FilesystemEscapeTest, ReadHostTmpMarkerIsEnoent) {
  // Both exist before the box starts.
  std::string marker = makeHostTmpMarker();
  std::string var_marker = "/var/tmp/boxd-sec-marker-" + std::to_string(::getpid());
  ASSERT_TRUE(writeFile(var_marker, "host secret\n").ok());
  host_files_.push_back(var_marker);
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, "markers = " + pyList({marker, var_marker}) + R"PY(
for i, p in enumerate(markers):
    report("open%d" % i, tryos(os.open, p, os.O_RDONLY))
    report("listed%d" % i, os.path.basename(p) in os.listdir(os.path.dirname(p)))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["open0"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["listed0"], "False") << describe(r);
  EXPECT_EQ(rep["open1"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["listed1"], "False") << describe(r);
}

TEST_F(FilesystemEscapeTest, ReadHostRootHomeRunVarContentIsEnoent) {
  // /home does not exist in a box; /root, /run and /var are the box's own. Nothing the host
  // keeps under any of them is visible (the box's own /var/tmp aside).
  std::vector<std::string> paths = {"/home"};
  for (const auto& dir : {"/root", "/home", "/run", "/var"}) {
    for (auto& p : entriesOf(dir)) {
      if (p != "/var/tmp") paths.push_back(p);
    }
  }
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, "for p in " + pyList(paths) + R"PY(:
    report(p, tryos(os.lstat, p))
try:
    report("box_root_entries", ",".join(sorted(os.listdir("/root"))) or "none")
except OSError as ex:
    report("box_root_entries", ename(ex.errno))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const auto& p : paths) EXPECT_EQ(rep[p], "ENOENT") << p << "\n" << describe(r);
  EXPECT_TRUE(rep["box_root_entries"] == "none" || rep["box_root_entries"] == "EACCES")
      << describe(r);
}

TEST_F(FilesystemEscapeTest, HostOnlyPathsAreEnoent) {
  // The host's own top-level directories, the test binary, the engine's state directory
  // and box-init: none of them exists in a box.
  std::vector<std::string> paths;
  for (auto& e : hostOnlyTopLevelEntries()) paths.push_back("/" + e);
  paths.push_back(fs::read_symlink("/proc/self/exe").string());
  paths.push_back(state_dir_);
  paths.push_back(BOXD_INIT_PATH);
  paths.push_back("/var/lib/dpkg/status");
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, "for p in " + pyList(paths) + R"PY(:
    report(p, tryos(os.lstat, p))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const auto& p : paths) EXPECT_EQ(rep[p], "ENOENT") << p << "\n" << describe(r);
}

TEST_F(FilesystemEscapeTest, WriteToReadOnlyTemplateIsErofs) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // Creating, removing or renaming an entry checks the mount before permissions, so a
  // read-only bind answers EROFS even to a user who lacks write permission.
  auto r = py(*box, R"PY(
for d in ["/", "/usr", "/usr/bin", "/bin", "/lib", "/lib64", "/sbin", "/etc"]:
    report("mkdir " + d, tryos(os.mkdir, os.path.join(d, "boxd-evil-dir")))
    report("create " + d, tryos(os.open, os.path.join(d, "boxd-evil"), os.O_WRONLY | os.O_CREAT, 0o644))
    report("symlink " + d, tryos(os.symlink, "/workspace", os.path.join(d, "boxd-evil-link")))
for p in ["/etc/passwd", "/etc/hosts", "/usr/bin/python3.11", "/bin/sh"]:
    report("unlink " + p, tryos(os.unlink, p))
    report("rename " + p, tryos(os.rename, p, p + ".moved"))
    report("chmod " + p, tryos(os.chmod, p, 0o777))
    report("write " + p, tryos(os.open, p, os.O_WRONLY))
report("control", tryos(os.open, "/workspace/ok", os.O_WRONLY | os.O_CREAT, 0o644))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* d : {"/", "/usr", "/usr/bin", "/bin", "/lib", "/lib64", "/sbin", "/etc"}) {
    std::string dir = d;
    EXPECT_EQ(rep["mkdir " + dir], "EROFS") << dir << "\n" << describe(r);
    EXPECT_EQ(rep["create " + dir], "EROFS") << dir << "\n" << describe(r);
    EXPECT_EQ(rep["symlink " + dir], "EROFS") << dir << "\n" << describe(r);
  }
  for (const char* f : {"/etc/passwd", "/etc/hosts", "/usr/bin/python3.11", "/bin/sh"}) {
    std::string p = f;
    EXPECT_EQ(rep["unlink " + p], "EROFS") << p << "\n" << describe(r);
    EXPECT_EQ(rep["rename " + p], "EROFS") << p << "\n" << describe(r);
    EXPECT_EQ(rep["chmod " + p], "EROFS") << p << "\n" << describe(r);
    // Opening an existing file for write is refused by its permissions (EACCES) before the
    // mount is consulted when the box user does not own it; either way it is not writable.
    EXPECT_TRUE(rep["write " + p] == "EROFS" || rep["write " + p] == "EACCES")
        << p << "\n" << describe(r);
  }
  EXPECT_EQ(rep["control"], "OK") << "the workspace must stay writable\n" << describe(r);
}

TEST_F(FilesystemEscapeTest, SymlinkInWorkspaceResolvesInsideTheBox) {
  std::string marker = makeHostTmpMarker();
  auto box = newBox();
  ASSERT_TRUE(box);
  std::vector<std::string> host_only;
  for (auto& e : hostOnlyTopLevelEntries()) host_only.push_back(e);
  auto r = py(*box, "marker = '" + marker + "'\nhost_only = " + pyList(host_only) + R"PY(
os.chdir("/workspace")
links = {
    "abs": "/etc/shadow",
    "dotdot": "../../../../../../../../etc/shadow",
    "marker": "../../../../../../.." + marker,
    "chain1": "chain2", "chain2": "../workspace/chain3", "chain3": "/../../..",
    "proc1root": "/proc/1/root",
    "proc1cwd": "/proc/1/cwd",
}
for name, target in links.items():
    os.symlink(target, name)
report("abs", tryos(os.open, "abs", os.O_RDONLY))
report("dotdot", tryos(os.open, "dotdot", os.O_RDONLY))
report("marker", tryos(os.open, "marker", os.O_RDONLY))
report("chain_shadow", tryos(os.open, "chain1/etc/shadow", os.O_RDONLY))
report("chain_host_only", sorted(set(os.listdir("chain1")) & set(host_only)) or "none")
report("dotdot_host_only", sorted(set(os.listdir("/workspace/../../../..")) & set(host_only)) or "none")
report("proc1root_list", tryos(os.listdir, "proc1root"))
report("proc1root_shadow", tryos(os.open, "proc1root/etc/shadow", os.O_RDONLY))
report("proc1cwd_list", tryos(os.listdir, "proc1cwd"))
report("hardlink", tryos(os.link, "/etc/passwd", "/workspace/passwd-link"))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["abs"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["dotdot"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["marker"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["chain_shadow"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["chain_host_only"], "none") << describe(r);
  EXPECT_EQ(rep["dotdot_host_only"], "none") << describe(r);
  // box-init runs as box root; the box user may not follow its magic links.
  EXPECT_EQ(rep["proc1root_list"], "EACCES") << describe(r);
  EXPECT_EQ(rep["proc1root_shadow"], "EACCES") << describe(r);
  EXPECT_EQ(rep["proc1cwd_list"], "EACCES") << describe(r);
  EXPECT_EQ(rep["hardlink"], "EXDEV") << describe(r);
}

TEST_F(FilesystemEscapeTest, NewCommandInheritsNoFdOrCwdFromOutside) {
  // CVE-2024-21626: a descriptor to a host directory leaked into the command (or used as
  // its cwd) lets it walk the host tree. A fresh command holds exactly stdio.
  auto box = newBox();
  ASSERT_TRUE(box);
  auto ls = sh(*box, "exec ls /proc/self/fd", seconds(10));
  EXPECT_EQ(ls.exit_code, 0) << describe(ls);
  // 3 is the directory ls itself opened to list /proc/self/fd.
  EXPECT_EQ(ls.stdout_data, "0\n1\n2\n3\n") << describe(ls);

  auto r = py(*box, R"PY(
fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
report("fds", ",".join(str(f) for f in fds))
for f in fds[:3]:
    report("fd%d" % f, os.readlink("/proc/self/fd/%d" % f))
report("cwd", os.getcwd())
report("self_cwd", os.readlink("/proc/self/cwd"))
report("self_root", os.readlink("/proc/self/root"))
report("init_cwd", tryos(os.readlink, "/proc/1/cwd"))
report("init_root", tryos(os.readlink, "/proc/1/root"))
report("init_fd", tryos(os.listdir, "/proc/1/fd"))
report("init_cwd_list", tryos(os.listdir, "/proc/1/cwd/"))
)PY");
  auto rep = parseReport(r.stdout_data);
  // python's own listdir descriptor is the only one above stdio.
  EXPECT_EQ(rep["fds"], "0,1,2,3") << describe(r);
  for (const char* fd : {"fd0", "fd1", "fd2"}) {
    const std::string& t = rep[fd];
    EXPECT_TRUE(t.rfind("pipe:[", 0) == 0 || t.rfind("socket:[", 0) == 0 ||
                t.rfind("/dev/", 0) == 0)
        << fd << " must be a pipe, socket or box device, not " << t << "\n" << describe(r);
  }
  EXPECT_EQ(rep["cwd"], "/workspace") << describe(r);
  EXPECT_EQ(rep["self_cwd"], "/workspace") << describe(r);
  EXPECT_EQ(rep["self_root"], "/") << describe(r);
  EXPECT_EQ(rep["init_cwd"], "EACCES") << describe(r);
  EXPECT_EQ(rep["init_root"], "EACCES") << describe(r);
  EXPECT_EQ(rep["init_fd"], "EACCES") << describe(r);
  EXPECT_EQ(rep["init_cwd_list"], "EACCES") << describe(r);
}

TEST_F(FilesystemEscapeTest, ExecCwdThroughProcMagicLinksDoesNotReachHost) {
  // An attacker-chosen cwd resolved through /proc magic links must not land outside the box:
  // either the engine refuses it, or walking up from it only ever reaches the box's root.
  auto box = newBox();
  ASSERT_TRUE(box);
  std::vector<std::string> cwds = {"/proc/1/cwd", "/proc/1/root", "/proc/self/cwd",
                                   "/workspace/../../..", "/proc/self/root/.."};
  for (int fd = 3; fd <= 10; ++fd) cwds.push_back("/proc/self/fd/" + std::to_string(fd));
  std::vector<std::string> host_only = hostOnlyTopLevelEntries();
  for (const auto& cwd : cwds) {
    engine::ExecSpec spec;
    spec.argv = {"/bin/sh", "-c", "pwd -P; ls -a ../../../../../../..; ls -a ."};
    spec.cwd = cwd;
    spec.timeout = seconds(10);
    auto r = box->run(spec);
    if (!r.ok()) continue;  // refused: nothing reached
    for (const auto& e : host_only) {
      EXPECT_EQ(("\n" + r->stdout_data).find("\n" + e + "\n"), std::string::npos)
          << "cwd " << cwd << " reached the host root (saw " << e << ")\n"
          << describe(*r);
    }
  }
}

TEST_F(FilesystemEscapeTest, SysIsAbsent) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
report("sys", tryos(os.lstat, "/sys"))
report("cgroupfs", tryos(os.lstat, "/sys/fs/cgroup"))
report("release_agent", tryos(os.open, "/sys/fs/cgroup/memory/release_agent", os.O_WRONLY))
report("uevent_helper", tryos(os.open, "/sys/kernel/uevent_helper", os.O_WRONLY))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["sys"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["cgroupfs"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["release_agent"], "ENOENT") << describe(r);
  EXPECT_EQ(rep["uevent_helper"], "ENOENT") << describe(r);
}

TEST_F(FilesystemEscapeTest, CgroupfsReleaseAgentIsUnreachable) {
  // The classic escape: mount a cgroup v1 hierarchy, point release_agent at a script.
  // There is no cgroupfs to write to and mounting one is refused by the filter.
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
os.mkdir("/tmp/cg")
report("mount_v1", sc(165, b"cgroup", b"/tmp/cg", b"cgroup", 0, b"memory"))
report("mount_v1_rdma", sc(165, b"cgroup", b"/tmp/cg", b"cgroup", 0, b"rdma"))
report("mount_v2", sc(165, b"none", b"/tmp/cg", b"cgroup2", 0, None))
report("fsopen", sc(430, b"cgroup", 0))
report("cg_listing", os.listdir("/tmp/cg") or "empty")
cg = open("/proc/self/cgroup").read()
report("cgroup_lines", "|".join(cg.split()))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["mount_v1"], "EPERM") << describe(r);
  EXPECT_EQ(rep["mount_v1_rdma"], "EPERM") << describe(r);
  EXPECT_EQ(rep["mount_v2"], "EPERM") << describe(r);
  EXPECT_EQ(rep["fsopen"], "EPERM") << describe(r);
  EXPECT_EQ(rep["cg_listing"], "empty") << describe(r);
  // The cgroup namespace hides where the box lives in the host hierarchy.
  EXPECT_EQ(rep["cgroup_lines"].find(cgroup_parent_), std::string::npos) << describe(r);
  EXPECT_EQ(rep["cgroup_lines"].find(box->id()), std::string::npos) << describe(r);
}

TEST_F(FilesystemEscapeTest, WriteSysrqTriggerFails) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // The real file is procfs; a mask (bind of /dev/null or an empty file) is not. Writing to
  // the real one must be refused; writing to a mask is harmless.
  auto r = sh(*box,
              "stat -f -c 'fstype=%T' /proc/sysrq-trigger; "
              "if printf h > /proc/sysrq-trigger; then echo write=OK; else echo write=FAIL; fi",
              seconds(10));
  auto rep = parseReport(r.stdout_data);
  ASSERT_TRUE(rep.count("write")) << describe(r);
  if (rep["write"] == "OK") {
    EXPECT_NE(rep["fstype"], "proc") << "wrote to the real /proc/sysrq-trigger\n" << describe(r);
  }
  auto p = py(*box, R"PY(
report("sysrq", tryos(os.open, "/proc/sysrq-trigger", os.O_WRONLY))
report("sys_hostname", tryos(os.open, "/proc/sys/kernel/hostname", os.O_WRONLY))
report("core_pattern", tryos(os.open, "/proc/sys/kernel/core_pattern", os.O_WRONLY))
ro = "missing"
for line in open("/proc/self/mountinfo"):
    f = line.split()
    if f[4] == "/proc/sys":
        ro = "ro" if "ro" in f[5].split(",") else "rw"
report("proc_sys_mount", ro)
)PY");
  auto prep = parseReport(p.stdout_data);
  if (rep["fstype"] == "proc") {
    EXPECT_TRUE(prep["sysrq"] == "EACCES" || prep["sysrq"] == "EROFS" ||
                prep["sysrq"] == "EPERM")
        << describe(p);
  }
  EXPECT_TRUE(prep["sys_hostname"] == "EROFS" || prep["sys_hostname"] == "EACCES")
      << describe(p);
  EXPECT_TRUE(prep["core_pattern"] == "EROFS" || prep["core_pattern"] == "EACCES")
      << describe(p);
  EXPECT_EQ(prep["proc_sys_mount"], "ro") << describe(p);
}

TEST_F(FilesystemEscapeTest, ReadProcKcoreGivesNothing) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
for p in ["/proc/kcore", "/proc/keys", "/proc/kallsyms"]:
    try:
        with open(p, "rb") as f:
            data = f.read(1 << 16)
        if p == "/proc/kallsyms":
            # Unprivileged readers see zeroed addresses; real ones would be an info leak.
            data = b"".join(l for l in data.splitlines() if not l.startswith(b"0000000000000000"))
        report(p, "len%d" % len(data))
    except OSError as ex:
        report(p, ename(ex.errno))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* p : {"/proc/kcore", "/proc/keys", "/proc/kallsyms"}) {
    const std::string& v = rep[p];
    EXPECT_TRUE(v == "len0" || v == "EACCES" || v == "ENOENT" || v == "EPERM")
        << p << " gave " << v << "\n" << describe(r);
  }
}

TEST_F(FilesystemEscapeTest, HostDeviceNodesAreAbsentAndMknodIsEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
for p in ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda",
          "/dev/nvme0n1", "/dev/kvm", "/dev/fuse", "/dev/loop0", "/dev/shm"]:
    report(p, tryos(os.lstat, p))
report("mknod_mem", tryos(os.mknod, "/workspace/mem", 0o20600, os.makedev(1, 1)))
report("mknod_null", tryos(os.mknod, "/tmp/null", 0o20666, os.makedev(1, 3)))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* p : {"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda",
                        "/dev/nvme0n1", "/dev/kvm", "/dev/fuse", "/dev/loop0"}) {
    EXPECT_EQ(rep[p], "ENOENT") << p << "\n" << describe(r);
  }
  EXPECT_EQ(rep["mknod_mem"], "EPERM") << describe(r);
  EXPECT_EQ(rep["mknod_null"], "EPERM") << describe(r);
}

}  // namespace
}  // namespace boxd::testing
