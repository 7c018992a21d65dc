#include "engine/exec.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include <algorithm>
#include <cerrno>

#include "engine/box.h"
#include "engine/cgroup.h"
#include "engine/exec_state.h"

namespace boxd::engine {
namespace {

constexpr auto kReapGrace = std::chrono::seconds(10);

bool pollReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0;
  }
}

}  // namespace

Exec::Exec(Box* box, uint64_t id, pid_t host_pid, std::shared_ptr<ExecState> state, std::unique_ptr<Cgroup> cgroup,
           bool pty)
    : box_(box), id_(id), host_pid_(host_pid), pty_(pty), state_(std::move(state)), cgroup_(std::move(cgroup)) {
  if (cgroup_) oom_baseline_ = cgroup_->usage().oom_kills;
}

Exec::~Exec() {
  if (host_pid_ > 0 && !exited()) {
    (void)killTree();
    pollReadable(state_->event.get(), static_cast<int>(std::chrono::milliseconds(kReapGrace).count()));
  }
  if (cgroup_) {
    (void)cgroup_->killAll();  // the rest of the tree, if the leader exited first
    box_->recycleExecCgroup(std::move(cgroup_));
  }
  box_->forget(id_);
}

void Exec::closeStdin() {
  if (pty_) return;
  stdin_.reset();
}

int Exec::exitFd() const { return state_->event.get(); }

bool Exec::exited() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->exited;
}

Status Exec::resize(uint16_t rows, uint16_t cols) {
  if (!pty_) return failedPrecondition("exec " + std::to_string(id_) + " has no terminal");
  winsize ws{rows, cols, 0, 0};
  if (::ioctl(pty_master_.get(), TIOCSWINSZ, &ws) != 0) return errnoStatus("resize terminal", errno);
  return okStatus();
}

Status Exec::signal(int signo) {
  if (host_pid_ <= 0 || exited()) return failedPrecondition("command has exited");
  if (::kill(host_pid_, signo) != 0) return errnoStatus("signal command", errno);
  return okStatus();
}

Status Exec::killTree() {
  if (cgroup_) return cgroup_->killAll();
  // Without cgroups: the leader's session (it called setsid) and the leader itself.
  if (host_pid_ > 0) {
    ::kill(-host_pid_, SIGKILL);
    ::kill(host_pid_, SIGKILL);
  }
  return okStatus();
}

StatusOr<ExecResult> Exec::wait(std::optional<std::chrono::milliseconds> timeout) {
  int ms = timeout ? static_cast<int>(timeout->count()) : -1;
  if (!pollReadable(state_->event.get(), ms)) return deadlineExceeded("command still running");
  ExecResult r;
  std::chrono::steady_clock::time_point end;
  int fork_errno;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    end = state_->exited_at;
    fork_errno = state_->fork_errno;
    if (WIFSIGNALED(state_->wait_status)) {
      r.signal = WTERMSIG(state_->wait_status);
    } else {
      r.exit_code = WEXITSTATUS(state_->wait_status);
    }
  }
  if (fork_errno) return errnoStatus("fork in box", fork_errno);
  if (cgroup_) {
    r.usage = cgroup_->usage();
    r.usage.oom_kills -= std::min(r.usage.oom_kills, oom_baseline_);
  }
  r.usage.wall_usec = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(end - started_).count());
  r.oom_killed = r.usage.oom_kills > 0;
  return r;
}

}  // namespace boxd::engine
