// ExecState: what the box's reader thread learns about one running command (its leader's
// exit) and hands to the Exec that waits for it. Internal to the engine.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

#include "common/unique_fd.h"

namespace boxd::engine {

struct ExecState {
  ExecState() : event(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  // Records the leader's end once and wakes every poller of `event`.
  void markExited(int status, int fork_err = 0) {
    std::lock_guard<std::mutex> lock(mu);
    if (exited) return;
    exited = true;
    wait_status = status;
    fork_errno = fork_err;
    exited_at = std::chrono::steady_clock::now();
    uint64_t one = 1;
    (void)!::write(event.get(), &one, sizeof one);
  }

  std::mutex mu;
  // Guarded by mu
  bool exited = false;
  int wait_status = 0;
  int fork_errno = 0;
  std::chrono::steady_clock::time_point exited_at;

  // Constant after construction: readable (never drained) once exited.
  const UniqueFd event;
};

}  // namespace boxd::engine
