// BoxInit: PID 1 of a box. Receives its setup from the engine, builds the box's root,
// confines itself (no_new_privs + seccomp), then serves exec requests: forks children that
// drop to the box user, reaps every zombie, reports exits. Exits when the engine's socket
// closes, which makes the kernel kill everything else in the box. box-agent grows from this.
#pragma once

#include <sys/types.h>

#include <map>

#include "common/status.h"
#include "sandbox/init_protocol.h"

namespace boxd::init {

class BoxInit {
 public:
  explicit BoxInit(int control_fd) : control_(control_fd) {}
  // Returns the process exit code.
  int run();

 private:
  Status setup();
  Status serve();
  void startExec(sandbox::Received msg);
  void reapChildren();

  const int control_;
  sandbox::SetupMsg setup_;
  int signal_fd_ = -1;
  std::map<pid_t, uint64_t> running_;  // box pid -> exec id
};

}  // namespace boxd::init
