// Attacks on the box's resource limits: fork bombs, memory bombs, filling the writable
// filesystems, flooding the output streams and outliving the deadline. Each must be
// contained, reported, and leave the box usable.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "security/attack_fixture.h"

namespace boxd::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using ResourceLimitsTest = SecurityTest;

constexpr uint64_t kMiB = 1ull << 20;

// The box still runs commands after an attack: `r` is the result of `echo ok`.
void expectAnswersOk(const engine::ExecResult& r) {
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.stdout_data, "ok\n") << describe(r);
}

TEST_F(ResourceLimitsTest, ForkBombIsHeldByPidsLimit) {
  engine::BoxSpec spec;
  spec.limits.pids = 64;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  // A bounded bomb: 200 children that block on a pipe until the parent lets them go, so
  // every one that exists at the same time counts against the limit.
  auto r = py(*box, R"PY(
rd, wr = os.pipe()
kids, fails, err = 0, 0, "none"
for i in range(200):
    try:
        pid = os.fork()
    except OSError as ex:
        fails += 1
        err = ename(ex.errno)
        continue
    if pid == 0:
        os.close(wr)
        os.read(rd, 1)
        os._exit(0)
    kids += 1
os.close(wr)
for i in range(kids):
    os.wait()
report("kids", kids)
report("fails", fails)
report("err", err)
)PY",
              seconds(60));
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  int kids = std::atoi(rep["kids"].c_str());
  EXPECT_GT(kids, 10) << describe(r);
  EXPECT_LT(kids, 64) << describe(r);
  EXPECT_EQ(std::atoi(rep["fails"].c_str()), 200 - kids) << describe(r);
  EXPECT_EQ(rep["err"], "EAGAIN") << describe(r);
  expectAnswersOk(sh(*box, "echo ok", seconds(10)));
}

TEST_F(ResourceLimitsTest, ShellForkBombIsKilledAtDeadlineAndBoxStillAnswers) {
  engine::BoxSpec spec;
  spec.limits.pids = 64;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  auto start = steady_clock::now();
  auto r = sh(*box, "bomb() { bomb | bomb & }; bomb; exec sleep 600", seconds(3));
  auto took = steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out) << describe(r);
  EXPECT_LT(took, seconds(20)) << "the deadline was not enforced promptly";
  expectAnswersOk(sh(*box, "echo ok", seconds(10)));
  auto left = py(*box, "report('left', leftovers())", seconds(10));
  EXPECT_EQ(parseReport(left.stdout_data)["left"], "none") << describe(left);
}

TEST_F(ResourceLimitsTest, RaisingHardRlimitsIsEperm) {
  engine::BoxSpec spec;
  spec.limits.nofile = 256;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
class Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]
def raise_hard(res):
    cur = Rlimit()
    libc.getrlimit(res, ctypes.byref(cur))
    new = Rlimit(cur.max + 1, cur.max + 1)
    return "%d:%s" % (cur.max, sc(160, res, ctypes.byref(new)))
report("nofile", raise_hard(7))
report("prlimit_init_nofile", sc(302, 1, 7, ctypes.byref(Rlimit(1 << 20, 1 << 20)), None))
)PY");
  auto rep = parseReport(r.stdout_data);
  // The box's own limit is in force, and raising it past the hard limit is refused.
  EXPECT_EQ(rep["nofile"], "256:EPERM") << describe(r);
  EXPECT_EQ(rep["prlimit_init_nofile"], "EPERM") << describe(r);
}

TEST_F(ResourceLimitsTest, MemoryBombIsOomKilled) {
  engine::BoxSpec spec;
  spec.limits.memory_bytes = 64 * kMiB;
  spec.limits.swap_bytes = 0;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
hog = b"\x01" * (512 << 20)   # touched, not lazily zero-mapped
report("survived", len(hog))
)PY",
              seconds(60));
  EXPECT_TRUE(r.oom_killed) << describe(r);
  EXPECT_EQ(r.signal, SIGKILL) << describe(r);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(parseReport(r.stdout_data).count("survived"), 0u) << describe(r);
  EXPECT_GE(r.usage.oom_kills, 1u) << describe(r);
  EXPECT_LE(r.usage.peak_memory_bytes, 64 * kMiB + kMiB) << describe(r);
  expectAnswersOk(sh(*box, "echo ok", seconds(10)));
}

// Fills `dir` with dd and checks it stops at `cap` with ENOSPC.
void expectFillStopsAtCap(engine::Box& box, const std::string& dir, uint64_t cap) {
  engine::ExecSpec spec;
  spec.argv = {"/bin/sh", "-c",
               "dd if=/dev/zero of=" + dir + "/fill bs=1M count=" +
                   std::to_string(4 * cap / kMiB) + "; echo rc=$?; echo size=$(stat -c %s " +
                   dir + "/fill)"};
  spec.timeout = seconds(60);
  auto r = box.run(spec);
  ASSERT_TRUE(r.ok()) << r.status().toString();
  auto rep = parseReport(r->stdout_data);
  EXPECT_NE(rep["rc"], "0") << describe(*r);
  EXPECT_NE(r->stderr_data.find("No space left on device"), std::string::npos) << describe(*r);
  EXPECT_LE(std::strtoull(rep["size"].c_str(), nullptr, 10), cap) << describe(*r);
  EXPECT_GT(std::strtoull(rep["size"].c_str(), nullptr, 10), cap / 2) << describe(*r);

  // A second writer gets the errno itself.
  spec.argv = {"/usr/bin/python3", "-c",
               std::string(kPyPrelude) + "fd = os.open('" + dir +
                   "/more', os.O_WRONLY | os.O_CREAT, 0o644)\n"
                   "report('write', tryos(os.write, fd, b'x' * 65536))\n"};
  auto w = box.run(spec);
  ASSERT_TRUE(w.ok()) << w.status().toString();
  EXPECT_EQ(parseReport(w->stdout_data)["write"], "ENOSPC") << describe(*w);
}

TEST_F(ResourceLimitsTest, FillingTmpStopsAtCap) {
  engine::BoxSpec spec;
  spec.limits.tmp_bytes = 8 * kMiB;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  expectFillStopsAtCap(*box, "/tmp", 8 * kMiB);
}

TEST_F(ResourceLimitsTest, FillingWorkspaceStopsAtCap) {
  engine::BoxSpec spec;
  spec.limits.workspace_bytes = 16 * kMiB;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  expectFillStopsAtCap(*box, "/workspace", 16 * kMiB);
}

TEST_F(ResourceLimitsTest, FillingVarTmpStopsAtCap) {
  engine::BoxSpec spec;
  spec.limits.tmp_bytes = 8 * kMiB;
  auto box = newBox(spec);
  ASSERT_TRUE(box);
  expectFillStopsAtCap(*box, "/var/tmp", 8 * kMiB);
}

TEST_F(ResourceLimitsTest, StdoutFloodIsTruncatedAtCap) {
  auto box = newBox();
  ASSERT_TRUE(box);
  engine::ExecSpec spec;
  spec.argv = {"/bin/sh", "-c", "head -c 8388608 /dev/zero | tr '\\0' y"};
  spec.output_cap_bytes = kMiB;
  spec.on_overflow = engine::OverflowPolicy::kTruncate;
  spec.timeout = seconds(60);
  auto r = run(*box, spec);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_FALSE(r.output_limit_killed) << describe(r);
  EXPECT_LE(r.stdout_data.size(), kMiB) << describe(r);
  EXPECT_GT(r.stdout_dropped, 0u) << describe(r);
  EXPECT_EQ(r.stdout_data.size() + r.stdout_dropped, 8 * kMiB) << describe(r);
}

TEST_F(ResourceLimitsTest, EndlessStdoutFloodIsTruncatedAndKilledAtDeadline) {
  auto box = newBox();
  ASSERT_TRUE(box);
  engine::ExecSpec spec;
  spec.argv = {"/usr/bin/yes"};
  spec.output_cap_bytes = kMiB;
  spec.on_overflow = engine::OverflowPolicy::kTruncate;
  spec.timeout = seconds(2);
  auto r = run(*box, spec);
  EXPECT_TRUE(r.timed_out) << describe(r);
  EXPECT_LE(r.stdout_data.size(), kMiB) << describe(r);
  EXPECT_GT(r.stdout_dropped, 0u) << describe(r);
}

TEST_F(ResourceLimitsTest, StdoutFloodIsKilledWithKillPolicy) {
  auto box = newBox();
  ASSERT_TRUE(box);
  engine::ExecSpec spec;
  spec.argv = {"/usr/bin/yes"};
  spec.output_cap_bytes = kMiB;
  spec.on_overflow = engine::OverflowPolicy::kKill;
  spec.timeout = seconds(30);
  auto r = run(*box, spec);
  EXPECT_TRUE(r.output_limit_killed) << describe(r);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.signal, SIGKILL) << describe(r);
  EXPECT_LE(r.stdout_data.size(), kMiB) << describe(r);
}

TEST_F(ResourceLimitsTest, StderrFloodIsKilledWithKillPolicy) {
  auto box = newBox();
  ASSERT_TRUE(box);
  engine::ExecSpec spec;
  spec.argv = {"/bin/sh", "-c", "yes >&2"};
  spec.output_cap_bytes = kMiB;
  spec.on_overflow = engine::OverflowPolicy::kKill;
  spec.timeout = seconds(30);
  auto r = run(*box, spec);
  EXPECT_TRUE(r.output_limit_killed) << describe(r);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_LE(r.stderr_data.size(), kMiB) << describe(r);
}

TEST_F(ResourceLimitsTest, PtyFloodIsCapped) {
  auto box = newBox();
  ASSERT_TRUE(box);
  engine::ExecSpec spec;
  spec.argv = {"/usr/bin/yes"};
  spec.pty = true;
  spec.output_cap_bytes = kMiB;
  spec.on_overflow = engine::OverflowPolicy::kKill;
  spec.timeout = seconds(30);
  auto r = run(*box, spec);
  EXPECT_TRUE(r.output_limit_killed) << describe(r);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_LE(r.stdout_data.size(), kMiB) << describe(r);
}

TEST_F(ResourceLimitsTest, InfiniteLoopIsKilledAtDeadlineWithItsChildren) {
  auto box = newBox();
  ASSERT_TRUE(box);
  // Three children that try to outlive the command: a plain background sleeper, one in its
  // own session, and a busy loop that ignores the polite signals. The leader waits until
  // all three have recorded their pids, then spins forever.
  const char* kScript = R"SH(
cd /workspace
sleep 1000 & echo $! >> pids
setsid sh -c 'echo $$ >> /workspace/pids; exec sleep 1001' &
sh -c 'trap "" TERM HUP INT; echo $$ >> /workspace/pids; while :; do :; done' &
until [ "$(wc -l < pids)" -ge 3 ]; do :; done
echo started
while :; do :; done
)SH";
  auto start = steady_clock::now();
  auto r = sh(*box, kScript, seconds(2));
  auto took = steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out) << describe(r);
  EXPECT_NE(r.signal, 0) << describe(r);
  EXPECT_EQ(r.stdout_data, "started\n") << describe(r);
  EXPECT_LT(took, seconds(15)) << "the deadline was not enforced promptly";

  auto check = py(*box, R"PY(
pids = [int(p) for p in open("/workspace/pids").read().split()]
report("recorded", len(pids))
alive = []
for p in pids:
    try:
        if _stat(p)[1] != "Z":
            alive.append(str(p))
    except OSError:
        pass
report("alive", ",".join(alive) or "none")
report("left", leftovers())
)PY",
                  seconds(10));
  auto rep = parseReport(check.stdout_data);
  EXPECT_EQ(rep["recorded"], "3") << describe(check);
  EXPECT_EQ(rep["alive"], "none") << describe(check);
  EXPECT_EQ(rep["left"], "none") << describe(check);
}

}  // namespace
}  // namespace boxd::testing
