// The seccomp policy of every box process (box-init and everything it starts), as one
// readable table. Allow by default, deny what Docker's default profile denies to an
// unprivileged container, plus TIOCSTI/TIOCLINUX; other architectures are killed.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace boxd::sandbox {

enum class RuleWhen {
  kAlways,
  kCloneNamespaceFlags,  // clone(2) whose flags (arg 0) contain a CLONE_NEW* bit
  kIoctlTerminalInject,  // ioctl(2) whose request (arg 1, low 32 bits) is TIOCSTI/TIOCLINUX
  kPersonalityChange,    // personality(2) setting ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...
};

struct SeccompRule {
  const char* syscall;
  int errno_value;  // returned instead of running the call
  RuleWhen when;
  const char* reason;
};

// The table itself (seccomp_policy.cc).
const std::vector<SeccompRule>& seccompRules();

// Compiles the table into a BPF program (an array of struct sock_filter, as bytes). The
// engine compiles once and ships the bytes to every box, so box-init needs no libseccomp.
StatusOr<std::string> compileSeccompFilter();

// compileSeccompFilter() + loadSeccompProgram(): for tools that run in-process.
Status installSeccompFilter();

}  // namespace boxd::sandbox
