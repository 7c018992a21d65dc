// LocalTar: the local half of directory copies. Runs the system's tar with posix_spawn (no
// shell, so paths are never interpreted) and without BOXD_TOKEN in its environment.
#pragma once

#include <string>

#include "cli/box/cli_status.h"

namespace boxd::cli {

// An uncompressed tar of the contents of `dir` (tar -C DIR -cf - .).
CliStatusOr<std::string> tarDirectory(const std::string& dir);

// Extracts `tar` into the existing directory `dir` (tar -C DIR --no-same-owner -xf -).
CliStatus extractTar(const std::string& dir, const std::string& tar);

}  // namespace boxd::cli
