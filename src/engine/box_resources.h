// BoxResources: what a box holds on the host besides processes and cgroups: its state
// directory "<state>/boxes/<id>/" (a lock file the owning engine flocks, and the empty
// directory its root is mounted on inside the box's mount namespace) and its id slot.
// A free lock on a state directory means the owner is gone: reapLeftovers() removes it.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"
#include "engine/id_slots.h"

namespace boxd::engine {

struct BoxResources {
  std::string dir;       // <state>/boxes/<id>
  std::string root_dir;  // <dir>/root
  UniqueFd lock;
  IdSlot slot;
  bool has_slot = false;

  static StatusOr<std::unique_ptr<BoxResources>> create(const std::string& state_dir, const std::string& id);
  // Removes the directory; the lock goes with this object.
  Status release();
};

// Returns true when the state directory's lock could be taken (its owner is gone); the
// lock is then held by *lock until the caller is done removing it.
bool tryLockOrphan(const std::string& box_dir, UniqueFd* lock);

}  // namespace boxd::engine
