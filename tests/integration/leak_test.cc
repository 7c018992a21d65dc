// Nothing outlives a box: 200 create/run/destroy cycles leave no mount, cgroup, process or
// state file; and when the engine itself is SIGKILLed, its box dies and the next engine
// removes what was left on the host.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "engine/cgroup_parse.h"
#include "support/engine_fixture.h"

namespace boxd::testing {
namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

// Every cgroup directory below <hierarchy>/<parent> in each controller we use.
std::vector<std::string> cgroupsUnder(const std::string& parent) {
  std::vector<std::string> out;
  for (const char* c : {"memory", "pids", "freezer", "cpu", "cpuacct"}) {
    for (const auto& e : entries(std::string("/sys/fs/cgroup/") + c + "/" + parent)) {
      struct stat st;
      std::string p = std::string("/sys/fs/cgroup/") + c + "/" + parent + "/" + e;
      if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(p);
    }
  }
  return out;
}

// Processes in any cgroup under <parent>: a box process cannot leave its cgroup, so this
// finds every process of this test's boxes (and none of other engines on the host).
std::vector<pid_t> boxProcesses(const std::string& parent) {
  std::vector<pid_t> out;
  for (const auto& e : entries("/proc")) {
    if (e.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cg = readFile("/proc/" + e + "/cgroup");
    if (cg.ok() && cg->find(":/" + parent + "/") != std::string::npos) out.push_back(std::stoi(e));
  }
  return out;
}

size_t mountCount() {
  auto m = readFile("/proc/self/mountinfo");
  return m.ok() ? static_cast<size_t>(std::count(m->begin(), m->end(), '\n')) : 0;
}

class LeakTest : public EngineTest {};

TEST_F(LeakTest, TwoHundredBoxesLeaveNothingBehind) {
  const size_t mounts_before = mountCount();

  for (int i = 0; i < 200; ++i) {
    auto box = newBox();
    ASSERT_TRUE(box);
    // Leave a background process and files behind on purpose.
    auto r = sh(*box, "echo x > /workspace/f; echo y > /tmp/g; sleep 1000 >/dev/null 2>&1 & true");
    ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
    ASSERT_TRUE(box->destroy().ok());
  }
  EXPECT_EQ(mountCount(), mounts_before);
  EXPECT_EQ(cgroupsUnder(cgroup_parent_), std::vector<std::string>{});
  EXPECT_EQ(entries(state_dir_ + "/boxes"), std::vector<std::string>{});
  EXPECT_EQ(boxProcesses(cgroup_parent_), std::vector<pid_t>{});
}

// Waits (bounded) until the box cgroup of the child engine holds at least `n` processes.
std::vector<pid_t> waitForBoxProcesses(const std::string& parent, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : entries("/sys/fs/cgroup/freezer/" + parent)) {
      std::vector<pid_t> pids;
      std::vector<std::string> dirs = {"/sys/fs/cgroup/freezer/" + parent + "/" + e};
      for (const auto& sub : entries(dirs[0])) {
        struct stat st;
        if (::stat((dirs[0] + "/" + sub).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) dirs.push_back(dirs[0] + "/" + sub);
      }
      for (const auto& d : dirs) {
        auto procs = readFile(d + "/cgroup.procs");
        if (procs.ok()) for (pid_t p : engine::parsePidList(*procs)) pids.push_back(p);
      }
      if (pids.size() >= n) return pids;
    }
    std::this_thread::yield();
  }
  return {};
}

TEST_F(LeakTest, EngineKilledWithSigkillLeavesNothingAfterTheNextStart) {
  engine_.reset();  // this test drives its own engines on the fixture's state dir
  pid_t child = ::fork();
  if (child == 0) {
    ::execl(BOXD_ENGINE_CLI, "box-engine", "--state-dir", state_dir_.c_str(), "--cgroup-parent",
            cgroup_parent_.c_str(), "--init", BOXD_INIT_PATH, "run", "--", "sh", "-c",
            "sleep 1000 & sleep 1000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(child, 0);
  auto pids = waitForBoxProcesses(cgroup_parent_, 3);  // box-init + sh + sleeps
  ASSERT_GE(pids.size(), 3u);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int ws;
  ASSERT_EQ(::waitpid(child, &ws, 0), child);

  // The next engine start removes the leftovers (and box-init ended the box when its
  // engine's socket closed).
  engine::EngineConfig config;
  config.state_dir = state_dir_;
  config.cgroup_parent = cgroup_parent_;
  config.init_path = BOXD_INIT_PATH;
  auto next = engine::Engine::create(config);
  ASSERT_TRUE(next.ok()) << next.status().toString();
  EXPECT_EQ(cgroupsUnder(cgroup_parent_), std::vector<std::string>{});
  EXPECT_EQ(entries(state_dir_ + "/boxes"), std::vector<std::string>{});
  // Gone, or a zombie that the host's PID 1 (box-init's new parent) has yet to reap: a zombie
  // holds no memory, files or cgroup. A running box process would be a leak.
  for (pid_t p : pids) {
    auto status = readFile("/proc/" + std::to_string(p) + "/status");
    bool alive = status.ok() && status->find("\nUid:\t1") != std::string::npos &&
                 status->find("\nState:\tZ") == std::string::npos;
    EXPECT_FALSE(alive) << "box process " << p << " survived:\n" << (status.ok() ? *status : "");
  }
}

}  // namespace
}  // namespace boxd::testing
