// Template kinds and host-side options: a rootfs directory with a copy-on-write layer, and
// extra binds.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"
#include "support/engine_fixture.h"

namespace boxd::testing {
namespace {

class TemplatesTest : public EngineTest {
 protected:
  // A self-contained root filesystem: a static busybox and its applet links.
  std::string makeBusyboxRootfs() {
    std::string root = makeTempDir("boxd-rootfs");
    ::chmod(root.c_str(), 0755);
    for (const char* d : {"/bin", "/etc", "/proc", "/dev", "/tmp", "/opt"}) {
      EXPECT_TRUE(makeDirs(root + d).ok());
    }
    auto bb = readFile("/bin/busybox");
    EXPECT_TRUE(bb.ok()) << "busybox-static is installed by scripts/install-deps.sh";
    EXPECT_TRUE(writeFile(root + "/bin/busybox", *bb, 0755).ok());
    for (const char* applet : {"sh", "cat", "echo", "id", "ls", "touch", "rm", "mkdir"}) {
      EXPECT_EQ(::symlink("busybox", (root + "/bin/" + applet).c_str()), 0);
    }
    EXPECT_TRUE(writeFile(root + "/opt/from-rootfs", "lower\n").ok());
    return root;
  }
};

TEST_F(TemplatesTest, RootfsTemplateRunsItsOwnBinariesAndNotTheHosts) {
  std::string rootfs = makeBusyboxRootfs();
  engine::BoxSpec spec;
  spec.tmpl.kind = engine::TemplateKind::kRootfs;
  spec.tmpl.rootfs = rootfs;
  spec.tmpl.path = "/bin";
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  auto r = sh(*box, "id -u; cat /opt/from-rootfs; ls /usr 2>&1; cat /etc/hostname");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("1000\nlower\n"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("No such file"), std::string::npos) << "host /usr must not be visible";
  EXPECT_NE(r.stdout_data.find(box->id()), std::string::npos);
  // Scratch space works; the template's files are not writable by the box user.
  EXPECT_EQ(sh(*box, "echo w > /workspace/f && cat /workspace/f").stdout_data, "w\n");
  auto denied = sh(*box, "echo x > /opt/from-rootfs");
  EXPECT_NE(denied.exit_code, 0);
  ASSERT_TRUE(box->destroy().ok());
  // Nothing reached the template directory.
  EXPECT_EQ(*readFile(rootfs + "/opt/from-rootfs"), "lower\n");
  struct stat st;
  EXPECT_NE(::stat((rootfs + "/workspace").c_str(), &st), 0);
  EXPECT_NE(::stat((rootfs + "/etc/passwd").c_str(), &st), 0);
  (void)removeTree(rootfs);
}

TEST_F(TemplatesTest, ExtraBindsAreReadOnlyByDefault) {
  std::string tools = makeTempDir("boxd-tools");
  ::chmod(tools.c_str(), 0755);
  ASSERT_TRUE(writeFile(tools + "/hello.txt", "from host\n").ok());
  engine::BoxSpec spec;
  spec.tmpl.binds.push_back({tools, "/opt/tools", true});
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  auto r = sh(*box, "cat /opt/tools/hello.txt; touch /opt/tools/x 2>&1");
  EXPECT_NE(r.stdout_data.find("from host\n"), std::string::npos);
  EXPECT_NE(r.stdout_data.find("Read-only file system"), std::string::npos) << r.stdout_data;
  (void)removeTree(tools);
}

}  // namespace
}  // namespace boxd::testing
