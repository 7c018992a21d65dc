// Builds a box's root filesystem from a MountPlan and pivots into it. Runs inside box-init,
// as root of the box's user namespace, in the box's fresh mount namespace.
#pragma once

#include <vector>

#include "common/status.h"
#include "sandbox/init_protocol.h"
#include "sandbox/mount_plan.h"

namespace boxd::sandbox {

// Looks at the host's top-level system paths and curated /etc entries (lstat only).
HostView inspectHost();

// Makes mounts private, assembles the root under setup.root_dir, pivot_roots into it,
// detaches the old root and (host template) remounts / read-only.
Status buildRoot(const SetupMsg& setup, const std::vector<MountOp>& ops);

}  // namespace boxd::sandbox
