#include "engine/cgroup_parse.h"

#include <gtest/gtest.h>

namespace boxd::engine {

TEST(CgroupParseTest, FindsV1ControllersAndUnifiedMount) {
  const std::string mountinfo =
      "25 30 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "26 25 0:23 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
      "27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
      "28 25 0:25 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
      "29 25 0:26 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n"
      "30 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "31 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  auto m = parseCgroupMounts(mountinfo);
  EXPECT_EQ(m.v1["memory"], "/sys/fs/cgroup/memory");
  EXPECT_EQ(m.v1["cpu"], "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(m.v1["cpuacct"], "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(m.v1["pids"], "/sys/fs/cgroup/pids");
  EXPECT_EQ(m.v1["freezer"], "/sys/fs/cgroup/freezer");
  EXPECT_EQ(m.v1.count("name=systemd"), 0u);
  EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
}

TEST(CgroupParseTest, PureV2Host) {
  auto m = parseCgroupMounts("35 1 0:30 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
  EXPECT_TRUE(m.v1.empty());
  EXPECT_EQ(m.v2, "/sys/fs/cgroup");
}

TEST(CgroupParseTest, FlatKeyedSkipsNonNumbers) {
  auto kv = parseFlatKeyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nmax max\n");
  EXPECT_EQ(kv["oom_kill"], 3u);
  EXPECT_EQ(kv.count("max"), 0u);
}

TEST(CgroupParseTest, PidList) {
  EXPECT_EQ(parsePidList("12\n345\n\n"), (std::vector<pid_t>{12, 345}));
  EXPECT_TRUE(parsePidList("").empty());
}

TEST(CgroupParseTest, CpuMax) {
  EXPECT_EQ(cpuMaxValue(1.5), "150000 100000");
  EXPECT_EQ(cpuMaxValue(0), "max 100000");
  EXPECT_EQ(cpuMaxValue(0.001), "1000 100000");  // kernel minimum quota
}

}  // namespace boxd::engine
