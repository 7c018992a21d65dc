#include "cli/box/cli_status.h"

#include <cstring>

namespace boxd::cli {

CliStatus errnoFailure(std::string_view what, int err) {
  return failure(std::string(what) + ": " + std::strerror(err));
}

}  // namespace boxd::cli
