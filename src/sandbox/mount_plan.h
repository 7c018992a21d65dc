// MountPlan: the ordered list of filesystem operations that builds a box's root, computed
// as data from the setup message (pure, unit-tested) and carried out by mount_setup.cc.
#pragma once

#include <string>
#include <vector>

#include "sandbox/init_protocol.h"

namespace boxd::sandbox {

enum class OpKind {
  kMkdir,        // target, mode
  kTouch,        // empty file as a bind mount point
  kSymlink,      // target -> data
  kWriteFile,    // target, content in data, mode
  kBind,         // source (host path) on target; read_only remounts it ro,nosuid,nodev
  kTmpfs,        // data = mount options ("size=...,mode=...")
  kProc,         // fresh procfs
  kDevpts,       // private devpts instance
  kMaskWithNull, // bind /dev/null over a file (when it exists)
  kMaskDir,      // empty read-only tmpfs over a directory (when it exists)
  kReadOnly,     // bind target onto itself read-only (when it exists)
};

// kSkeleton ops run before the root is mounted over (rootfs template: into the overlay's
// upper directory); kMount ops run in the assembled root.
enum class Phase { kSkeleton, kMount };

struct MountOp {
  OpKind kind;
  Phase phase;
  std::string target;  // absolute path inside the box
  std::string source;  // kBind: absolute host path
  std::string data;
  int mode = 0755;
  bool read_only = true;
  bool optional = false;  // skip silently when the source does not exist
};

struct HostView {
  // Which top-level entries of the host exist and whether they are symlinks, so the plan
  // stays pure. Filled by inspectHost() in mount_setup.cc.
  struct Entry {
    std::string path;
    bool exists = false;
    bool is_symlink = false;
    bool is_dir = false;
    std::string link_target;
  };
  std::vector<Entry> entries;
};

// The host paths a host-template box may see (top level) and the curated /etc entries.
const std::vector<std::string>& hostTopLevelPaths();
const std::vector<std::string>& curatedEtcPaths();

std::vector<MountOp> planMounts(const SetupMsg& setup, const HostView& host);

// Generated identity files.
std::string passwdFile(uint32_t box_uid, uint32_t box_gid);
std::string groupFile(uint32_t box_gid);
std::string hostsFile(const std::string& hostname);

// Rejects targets that are relative, contain "..", NUL, or are over 4096 bytes.
Status validateBoxPath(const std::string& path);

}  // namespace boxd::sandbox
