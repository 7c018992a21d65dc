#include "sandbox/mount_plan.h"

#include <string_view>

namespace boxd::sandbox {

const std::vector<std::string>& hostTopLevelPaths() {
  static const std::vector<std::string> kPaths = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
  return kPaths;
}

const std::vector<std::string>& curatedEtcPaths() {
  // What common tools (libc, TLS, python, git, locales) read; no credentials, no host identity.
  static const std::vector<std::string> kPaths = {
      "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates", "/etc/ca-certificates.conf",
      "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/nsswitch.conf",
      "/etc/protocols", "/etc/services", "/etc/mime.types", "/etc/os-release",
      "/etc/debian_version", "/etc/localtime", "/etc/timezone", "/etc/python3",
      "/etc/python3.11", "/etc/profile", "/etc/bash.bashrc", "/etc/inputrc", "/etc/magic",
      "/etc/gitconfig", "/etc/perl", "/etc/locale.alias", "/etc/manpath.config"};
  return kPaths;
}

std::string passwdFile(uint32_t uid, uint32_t gid) {
  return "root:x:0:0:box root:/root:/bin/sh\n"
         "box:x:" + std::to_string(uid) + ":" + std::to_string(gid) + ":box user:/workspace:/bin/sh\n"
         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
}

std::string groupFile(uint32_t gid) {
  return "root:x:0:\nbox:x:" + std::to_string(gid) + ":\nnogroup:x:65534:\n";
}

std::string hostsFile(const std::string& hostname) {
  return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n";
}

Status validateBoxPath(const std::string& path) {
  if (path.empty() || path[0] != '/') return invalidArgument("path '" + path + "' must be absolute");
  if (path.size() > 4096) return invalidArgument("path is longer than 4096 bytes");
  if (path.find('\0') != std::string::npos) return invalidArgument("path contains a NUL byte");
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos + 1);
    std::string_view comp(path.data() + pos + 1, (next == std::string::npos ? path.size() : next) - pos - 1);
    if (comp == "..") return invalidArgument("path '" + path + "' contains '..'");
    pos = next == std::string::npos ? path.size() : next;
  }
  return okStatus();
}

namespace {

struct Builder {
  std::vector<MountOp> ops;
  void add(OpKind k, Phase p, std::string target, std::string source = {}, std::string data = {},
           int mode = 0755, bool ro = true, bool optional = false) {
    ops.push_back(MountOp{k, p, std::move(target), std::move(source), std::move(data), mode, ro, optional});
  }
};

std::string tmpfsOptions(uint64_t bytes, int mode, uint32_t uid, uint32_t gid, bool owned) {
  char m[8];
  snprintf(m, sizeof m, "%o", mode);
  std::string o = "size=" + std::to_string(bytes) + ",mode=" + m;
  if (owned) o += ",uid=" + std::to_string(uid) + ",gid=" + std::to_string(gid);
  return o;
}

}  // namespace

std::vector<MountOp> planMounts(const SetupMsg& s, const HostView& host) {
  Builder b;
  const auto S = Phase::kSkeleton;
  const auto M = Phase::kMount;

  // Skeleton: mount points and generated identity files.
  for (const char* d : {"/proc", "/dev", "/tmp", "/workspace", "/etc", "/root", "/run", "/var", "/var/tmp"}) {
    b.add(OpKind::kMkdir, S, d, {}, {}, 0755);
  }
  b.add(OpKind::kWriteFile, S, "/etc/passwd", {}, passwdFile(s.box_uid, s.box_gid), 0644);
  b.add(OpKind::kWriteFile, S, "/etc/group", {}, groupFile(s.box_gid), 0644);
  b.add(OpKind::kWriteFile, S, "/etc/hostname", {}, s.hostname + "\n", 0644);
  b.add(OpKind::kWriteFile, S, "/etc/hosts", {}, hostsFile(s.hostname), 0644);
  b.add(OpKind::kWriteFile, S, "/etc/resolv.conf", {}, "", 0644);

  if (!s.rootfs_template) {
    // Host template: the host's system directories, read-only, mirroring merged-/usr symlinks.
    for (const auto& e : host.entries) {
      if (!e.exists) continue;
      bool is_etc = e.path.rfind("/etc/", 0) == 0;
      if (e.is_symlink) {
        b.add(OpKind::kSymlink, S, e.path, {}, e.link_target);
      } else if (e.is_dir) {
        b.add(OpKind::kMkdir, S, e.path);
        b.add(OpKind::kBind, M, e.path, e.path, {}, 0755, true);
      } else if (is_etc) {
        b.add(OpKind::kTouch, S, e.path, {}, {}, 0644);
        b.add(OpKind::kBind, M, e.path, e.path, {}, 0644, true);
      }
    }
  }

  // Writable scratch space, capped, owned by the box user.
  b.add(OpKind::kTmpfs, M, "/workspace", {}, tmpfsOptions(s.workspace_bytes, 0755, s.box_uid, s.box_gid, true));
  b.add(OpKind::kTmpfs, M, "/tmp", {}, tmpfsOptions(s.tmp_bytes, 01777, 0, 0, false));
  b.add(OpKind::kTmpfs, M, "/var/tmp", {}, tmpfsOptions(s.tmp_bytes, 01777, 0, 0, false));
  b.add(OpKind::kTmpfs, M, "/run", {}, tmpfsOptions(1 << 20, 0755, 0, 0, false));

  // Minimal /dev.
  b.add(OpKind::kTmpfs, M, "/dev", {}, "size=65536,mode=0755");
  for (const char* d : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}) {
    b.add(OpKind::kTouch, M, d, {}, {}, 0666);
    b.add(OpKind::kBind, M, d, d, {}, 0666, false);
  }
  b.add(OpKind::kMkdir, M, "/dev/pts");
  b.add(OpKind::kDevpts, M, "/dev/pts", {}, "newinstance,ptmxmode=0666,mode=0620");
  b.add(OpKind::kSymlink, M, "/dev/ptmx", {}, "pts/ptmx");
  b.add(OpKind::kMkdir, M, "/dev/shm", {}, {}, 01777);
  b.add(OpKind::kTmpfs, M, "/dev/shm", {}, tmpfsOptions(s.tmp_bytes, 01777, 0, 0, false));
  b.add(OpKind::kSymlink, M, "/dev/fd", {}, "/proc/self/fd");
  b.add(OpKind::kSymlink, M, "/dev/stdin", {}, "/proc/self/fd/0");
  b.add(OpKind::kSymlink, M, "/dev/stdout", {}, "/proc/self/fd/1");
  b.add(OpKind::kSymlink, M, "/dev/stderr", {}, "/proc/self/fd/2");

  // Fresh /proc of the box's pid namespace, with the kernel-wide knobs masked (as runc does).
  b.add(OpKind::kProc, M, "/proc");
  for (const char* f : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                        "/proc/latency_stats", "/proc/kallsyms", "/proc/kmsg", "/proc/config.gz",
                        "/proc/sysrq-trigger", "/proc/vmallocinfo", "/proc/slabinfo",
                        "/proc/pagetypeinfo", "/proc/buddyinfo", "/proc/zoneinfo"}) {
    b.add(OpKind::kMaskWithNull, M, f, {}, {}, 0, true, true);
  }
  for (const char* d : {"/proc/acpi", "/proc/scsi", "/proc/asound", "/proc/firmware", "/proc/driver"}) {
    b.add(OpKind::kMaskDir, M, d, {}, {}, 0, true, true);
  }
  for (const char* d : {"/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs"}) {
    b.add(OpKind::kReadOnly, M, d, {}, {}, 0, true, true);
  }

  // The template's extra binds go last so they can land inside /workspace or /tmp.
  for (const auto& bind : s.binds) {
    b.add(OpKind::kBind, M, bind.target, bind.source, {}, 0755, bind.read_only);
  }
  return b.ops;
}

}  // namespace boxd::sandbox
