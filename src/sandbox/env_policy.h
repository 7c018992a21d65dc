// The environment a box command starts with: template defaults, then the caller's
// variables, minus dynamic-loader variables unless the template allows them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace boxd::sandbox {

// True for LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT and the other variables that change how
// the dynamic loader or libc resolves code (GCONV_PATH, MALLOC_*, ...).
bool isLoaderVariable(std::string_view name);

struct EnvInputs {
  std::string path;                   // the template's PATH
  std::string home = "/workspace";
  std::string user = "box";
  std::string hostname;
  bool allow_loader_env = false;
  std::vector<std::string> requested; // KEY=VALUE from the caller; later ones win
  bool pty = false;
};

// Builds the final KEY=VALUE list. Rejects malformed entries (no '=', empty key, NUL).
// Dropped loader variables are listed in *dropped when given.
StatusOr<std::vector<std::string>> buildEnv(const EnvInputs& in, std::vector<std::string>* dropped = nullptr);

}  // namespace boxd::sandbox
