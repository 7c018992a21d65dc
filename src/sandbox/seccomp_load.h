// Loading a compiled seccomp program (see seccomp_policy.h) with plain prctl, so the code
// that runs inside every box does not need libseccomp.
#pragma once

#include <string>

#include "common/status.h"

namespace boxd::sandbox {

// Loads the BPF program into the calling thread and its future children. Requires
// no_new_privs to be set first.
Status loadSeccompProgram(const std::string& program);

}  // namespace boxd::sandbox
