// Host uid/gid ranges for boxes. In root mode every box gets its own 65536-wide range
// [base + slot*65536, ...), so box root and the box user are unprivileged host ids that no
// other box shares. A slot is held by an flock on "<state>/slots/<n>.lock" for the box's
// life, so a crashed engine's slots free themselves.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace boxd::engine {

constexpr uint32_t kIdsPerSlot = 65536;

struct IdSlot {
  uint32_t slot = 0;
  uint32_t host_base = 0;  // host id of box uid 0
  UniqueFd lock;           // released (with the slot) when closed
};

class IdSlots {
 public:
  IdSlots(std::string dir, uint32_t base, uint32_t count) : dir_(std::move(dir)), base_(base), count_(count) {}
  Status init();  // creates the directory
  StatusOr<IdSlot> acquire();

 private:
  const std::string dir_;
  const uint32_t base_, count_;
  std::atomic<uint32_t> hint_{0};  // where the next search starts
};

// The uid_map/gid_map line that maps a whole slot.
std::string idMapLine(uint32_t host_base);

}  // namespace boxd::engine
