// Dropping privileges in a box process before it runs user code.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace boxd::sandbox {

struct ResourceRlimits {
  uint64_t nofile = 1024;
  uint64_t fsize = 1ull << 30;
  uint64_t stack = 8ull << 20;
};

// core = 0 and the given limits (soft = hard).
Status applyRlimits(const ResourceRlimits& r);

// Clears the capability bounding set, ambient and inheritable sets, locks securebits so that
// uid 0 gains nothing back, switches to uid/gid (when change_ids) and leaves the process
// with no effective, permitted or inheritable capability.
Status dropToUser(uint32_t uid, uint32_t gid, bool change_ids);

Status setNoNewPrivs();

}  // namespace boxd::sandbox
