#include "sandbox/mount_setup.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_util.h"
#include "common/unique_fd.h"

namespace boxd::sandbox {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// Flags a read-only remount must keep: in a user namespace the kernel refuses to clear
// flags that were locked when the mount was copied from the host.
unsigned long lockedFlags(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

Status remountReadOnly(const std::string& path, unsigned long extra) {
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | extra | lockedFlags(path);
  if (::mount(nullptr, path.c_str(), nullptr, flags, nullptr) != 0) {
    return errnoStatus("remount read-only " + path, errno);
  }
  return okStatus();
}

Status mountPointFor(const std::string& source, const std::string& target) {
  if (exists(target)) return okStatus();
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return errnoStatus("stat bind source " + source, errno);
  size_t slash = target.rfind('/');
  if (slash > 0) RETURN_IF_ERROR(makeDirs(target.substr(0, slash)));
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return errnoStatus("mkdir " + target, errno);
    return okStatus();
  }
  UniqueFd fd(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return errnoStatus("create mount point " + target, errno);
  return okStatus();
}

Status runOp(const MountOp& op, const std::string& prefix) {
  const std::string t = prefix + op.target;
  switch (op.kind) {
    case OpKind::kMkdir:
      if (::mkdir(t.c_str(), op.mode) != 0 && errno != EEXIST) return errnoStatus("mkdir " + op.target, errno);
      if (op.mode & 07000) ::chmod(t.c_str(), op.mode);
      return okStatus();
    case OpKind::kTouch: {
      UniqueFd fd(::open(t.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, op.mode));
      if (!fd.valid()) return errnoStatus("create " + op.target, errno);
      return okStatus();
    }
    case OpKind::kSymlink:
      if (::symlink(op.data.c_str(), t.c_str()) != 0 && errno != EEXIST) return errnoStatus("symlink " + op.target, errno);
      return okStatus();
    case OpKind::kWriteFile:
      return writeFile(t, op.data, op.mode).withContext("write " + op.target);
    case OpKind::kBind: {
      if (op.optional && !exists(op.source)) return okStatus();
      RETURN_IF_ERROR(mountPointFor(op.source, t));
      if (::mount(op.source.c_str(), t.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return errnoStatus("bind " + op.source + " on " + op.target, errno);
      }
      if (op.read_only) return remountReadOnly(t, MS_NODEV);
      return okStatus();
    }
    case OpKind::kTmpfs:
      if (::mount("tmpfs", t.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, op.data.c_str()) != 0) {
        return errnoStatus("mount tmpfs on " + op.target, errno);
      }
      return okStatus();
    case OpKind::kProc:
      if (::mount("proc", t.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        return errnoStatus("mount proc on " + op.target, errno);
      }
      return okStatus();
    case OpKind::kDevpts:
      if (::mount("devpts", t.c_str(), "devpts", MS_NOSUID | MS_NOEXEC, op.data.c_str()) != 0) {
        return errnoStatus("mount devpts on " + op.target, errno);
      }
      return okStatus();
    case OpKind::kMaskWithNull:
      if (!exists(t)) return okStatus();
      if (::mount("/dev/null", t.c_str(), nullptr, MS_BIND, nullptr) != 0) return errnoStatus("mask " + op.target, errno);
      return okStatus();
    case OpKind::kMaskDir:
      if (!exists(t)) return okStatus();
      if (::mount("tmpfs", t.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") != 0) {
        return errnoStatus("mask " + op.target, errno);
      }
      return okStatus();
    case OpKind::kReadOnly:
      if (!exists(t)) return okStatus();
      if (::mount(t.c_str(), t.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return errnoStatus("bind " + op.target + " onto itself", errno);
      }
      return remountReadOnly(t, MS_NODEV | MS_NOEXEC);
  }
  return internalError("unknown mount op");
}

}  // namespace

HostView inspectHost() {
  HostView view;
  auto look = [&](const std::string& p) {
    HostView::Entry e;
    e.path = p;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0) {
      e.exists = true;
      e.is_symlink = S_ISLNK(st.st_mode);
      e.is_dir = S_ISDIR(st.st_mode);
      if (e.is_symlink) {
        char buf[4096];
        ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
        if (n > 0) e.link_target.assign(buf, static_cast<size_t>(n));
        else e.exists = false;
      }
    }
    view.entries.push_back(std::move(e));
  };
  for (const auto& p : hostTopLevelPaths()) look(p);
  for (const auto& p : curatedEtcPaths()) look(p);
  return view;
}

Status buildRoot(const SetupMsg& s, const std::vector<MountOp>& ops) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return errnoStatus("make mounts private", errno);
  }
  const std::string& r = s.root_dir;
  std::string skel_prefix = r, root_prefix = r;
  if (!s.rootfs_template) {
    if (::mount("tmpfs", r.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1048576,mode=0755") != 0) {
      return errnoStatus("mount root tmpfs on " + r, errno);
    }
  } else {
    std::string opts = "size=" + std::to_string(s.upper_bytes) + ",mode=0755";
    if (::mount("tmpfs", r.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      return errnoStatus("mount upper tmpfs on " + r, errno);
    }
    for (const char* d : {"/upper", "/work", "/root"}) {
      if (::mkdir((r + d).c_str(), 0755) != 0) return errnoStatus(std::string("mkdir ") + d, errno);
    }
    skel_prefix = r + "/upper";
    root_prefix = r + "/root";
  }
  for (const auto& op : ops) {
    if (op.phase != Phase::kSkeleton) continue;
    RETURN_IF_ERROR(runOp(op, skel_prefix));
  }
  if (s.rootfs_template) {
    std::string opts = "lowerdir=" + s.rootfs + ",upperdir=" + r + "/upper,workdir=" + r + "/work,userxattr";
    if (::mount("overlay", root_prefix.c_str(), "overlay", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      return errnoStatus("mount overlay of rootfs " + s.rootfs, errno);
    }
  }
  for (const auto& op : ops) {
    if (op.phase != Phase::kMount) continue;
    RETURN_IF_ERROR(runOp(op, root_prefix));
  }
  if (::chdir(root_prefix.c_str()) != 0) return errnoStatus("chdir new root", errno);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return errnoStatus("pivot_root", errno);
  if (::umount2(".", MNT_DETACH) != 0) return errnoStatus("detach old root", errno);
  if (::chdir("/") != 0) return errnoStatus("chdir /", errno);
  if (!s.rootfs_template) {
    if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
      return errnoStatus("remount / read-only", errno);
    }
  }
  return okStatus();
}

}  // namespace boxd::sandbox
