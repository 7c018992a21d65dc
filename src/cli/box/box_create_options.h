// BoxCreateOptions: the flags `box run` and `box create` share, and the one place that turns
// them into POST /v1/boxes.
#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cli/box/api_client.h"
#include "cli/box/cli_status.h"

namespace CLI {
class App;
}

namespace boxd::cli {

struct BoxCreateOptions {
  std::string template_name;
  std::vector<std::string> env;     // KEY=VALUE
  std::vector<std::string> labels;  // key=value
  double ttl_seconds = 0;           // 0: the template's default
  int64_t idle_timeout_seconds = -1;
  std::string memory;               // "512M" or bytes; empty: the template's default
  double cpus = 0;
};

void addBoxCreateOptions(CLI::App& cmd, BoxCreateOptions& opts);

// Validates before anything is sent, so a typo never leaves a box behind.
CliStatusOr<nlohmann::json> boxCreateBody(const BoxCreateOptions& opts);

// POST /v1/boxes[?wait=true]; the box JSON.
CliStatusOr<nlohmann::json> createBox(ApiClient& client, const nlohmann::json& body, bool wait);

// "k=v" strings -> map; usage error naming `what` when one has no '=' or an empty key.
CliStatusOr<std::map<std::string, std::string>> parseKeyValues(const std::vector<std::string>& items, const std::string& what);

}  // namespace boxd::cli
