// Exec: one command running in a box. Its stdout/stderr (or PTY) descriptors are
// non-blocking and owned by the Exec; exitFd() becomes readable when the command's leader
// has exited, after which wait() returns at once. Destroying a running Exec kills its tree.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>

#include "common/status.h"
#include "common/unique_fd.h"
#include "engine/box_spec.h"

namespace boxd::engine {

class Box;
class Cgroup;
struct ExecState;

class Exec {
 public:
  ~Exec();
  Exec(const Exec&) = delete;
  Exec& operator=(const Exec&) = delete;

  uint64_t id() const { return id_; }
  pid_t hostPid() const { return host_pid_; }
  bool pty() const { return pty_; }
  // -1 when closed. In PTY mode stdinFd() == stdoutFd() == the terminal master.
  int stdinFd() const { return pty_ ? pty_master_.get() : stdin_.get(); }
  int stdoutFd() const { return pty_ ? pty_master_.get() : stdout_.get(); }
  int stderrFd() const { return pty_ ? -1 : stderr_.get(); }
  void closeStdin();
  int exitFd() const;

  Status resize(uint16_t rows, uint16_t cols);
  // Signals the leader (the command itself).
  Status signal(int signo);
  // Kills every process the command started (freeze-then-kill, or cgroup.kill).
  Status killTree();

  // True once the leader has exited (non-blocking).
  bool exited() const;
  // Waits up to `timeout` (nullopt: forever) for the leader to exit; fills exit_code,
  // signal, oom_killed and usage. Output is not touched. kDeadlineExceeded on timeout.
  StatusOr<ExecResult> wait(std::optional<std::chrono::milliseconds> timeout);

 private:
  friend class Box;
  Exec(Box* box, uint64_t id, pid_t host_pid, std::shared_ptr<ExecState> state,
       std::unique_ptr<Cgroup> cgroup, bool pty);

  Box* const box_;
  const uint64_t id_;
  pid_t host_pid_;  // set once during Box::start
  const bool pty_;
  std::shared_ptr<ExecState> state_;
  std::unique_ptr<Cgroup> cgroup_;  // null without cgroups
  uint64_t oom_baseline_ = 0;       // OOM kills the (reused) cgroup had before this command
  UniqueFd stdin_, stdout_, stderr_, pty_master_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace boxd::engine
