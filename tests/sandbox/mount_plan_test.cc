#include "sandbox/mount_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace boxd::sandbox {
namespace {

const MountOp* find(const std::vector<MountOp>& ops, OpKind kind, const std::string& target) {
  for (const auto& op : ops) {
    if (op.kind == kind && op.target == target) return &op;
  }
  return nullptr;
}

HostView mergedUsrHost() {
  HostView v;
  v.entries = {{"/usr", true, false, true, ""},
               {"/bin", true, true, false, "usr/bin"},
               {"/lib64", true, true, false, "usr/lib64"},
               {"/libx32", false, false, false, ""},
               {"/etc/ssl", true, false, true, ""},
               {"/etc/ld.so.cache", true, false, false, ""},
               {"/etc/localtime", true, true, false, "/usr/share/zoneinfo/Etc/UTC"}};
  return v;
}

TEST(MountPlanTest, HostTemplateBindsSystemDirsReadOnlyAndMirrorsSymlinks) {
  SetupMsg s;
  s.hostname = "b-1";
  s.workspace_bytes = 1 << 20;
  s.tmp_bytes = 1 << 20;
  auto ops = planMounts(s, mergedUsrHost());
  auto* usr = find(ops, OpKind::kBind, "/usr");
  ASSERT_NE(usr, nullptr);
  EXPECT_TRUE(usr->read_only);
  EXPECT_EQ(usr->source, "/usr");
  auto* bin = find(ops, OpKind::kSymlink, "/bin");
  ASSERT_NE(bin, nullptr);
  EXPECT_EQ(bin->data, "usr/bin");
  EXPECT_EQ(find(ops, OpKind::kBind, "/libx32"), nullptr);
  EXPECT_TRUE(find(ops, OpKind::kBind, "/etc/ld.so.cache")->read_only);
  EXPECT_NE(find(ops, OpKind::kSymlink, "/etc/localtime"), nullptr);
  // No host credentials or identity files.
  EXPECT_EQ(find(ops, OpKind::kBind, "/etc/shadow"), nullptr);
  EXPECT_EQ(find(ops, OpKind::kBind, "/etc/passwd"), nullptr);
}

TEST(MountPlanTest, ScratchSpaceIsCappedAndOwnedByTheBoxUser) {
  SetupMsg s;
  s.hostname = "b-1";
  s.workspace_bytes = 5 << 20;
  s.tmp_bytes = 3 << 20;
  auto ops = planMounts(s, {});
  auto* ws = find(ops, OpKind::kTmpfs, "/workspace");
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->data, "size=5242880,mode=755,uid=1000,gid=1000");
  EXPECT_EQ(find(ops, OpKind::kTmpfs, "/tmp")->data, "size=3145728,mode=1777");
}

TEST(MountPlanTest, ProcIsMountedBeforeItsMasks) {
  SetupMsg s;
  s.hostname = "h";
  auto ops = planMounts(s, {});
  auto pos = [&](OpKind k, const std::string& t) {
    return std::find_if(ops.begin(), ops.end(), [&](const MountOp& o) { return o.kind == k && o.target == t; }) - ops.begin();
  };
  EXPECT_LT(pos(OpKind::kProc, "/proc"), pos(OpKind::kMaskWithNull, "/proc/kcore"));
  EXPECT_LT(pos(OpKind::kProc, "/proc"), pos(OpKind::kReadOnly, "/proc/sys"));
  EXPECT_LT(pos(OpKind::kMaskWithNull, "/proc/sysrq-trigger"), static_cast<long>(ops.size()));
  EXPECT_LT(pos(OpKind::kTmpfs, "/dev"), pos(OpKind::kDevpts, "/dev/pts"));
}

TEST(MountPlanTest, RootfsTemplateDoesNotBindHostDirs) {
  SetupMsg s;
  s.hostname = "h";
  s.rootfs_template = true;
  s.rootfs = "/srv/rootfs";
  auto ops = planMounts(s, mergedUsrHost());
  EXPECT_EQ(find(ops, OpKind::kBind, "/usr"), nullptr);
  EXPECT_NE(find(ops, OpKind::kWriteFile, "/etc/passwd"), nullptr);
}

TEST(MountPlanTest, IdentityFiles) {
  EXPECT_NE(passwdFile(1000, 1000).find("box:x:1000:1000:box user:/workspace:/bin/sh\n"), std::string::npos);
  EXPECT_NE(groupFile(1000).find("box:x:1000:"), std::string::npos);
  EXPECT_NE(hostsFile("b-7").find("127.0.1.1\tb-7\n"), std::string::npos);
}

TEST(MountPlanTest, BoxPathValidation) {
  EXPECT_TRUE(validateBoxPath("/workspace/a/b").ok());
  EXPECT_TRUE(validateBoxPath("/workspace/..a").ok());
  EXPECT_FALSE(validateBoxPath("workspace").ok());
  EXPECT_FALSE(validateBoxPath("/workspace/../etc").ok());
  EXPECT_FALSE(validateBoxPath("/..").ok());
  EXPECT_FALSE(validateBoxPath(std::string("/a\0b", 4)).ok());
  EXPECT_FALSE(validateBoxPath("/" + std::string(5000, 'a')).ok());
}

}  // namespace
}  // namespace boxd::sandbox
