// CliContext: what every command shares: the global flags, the API client (created on first
// use, so `box version` and `--help` never need a server), --json output, and the action of
// the subcommand the parser chose, which main runs once parsing is complete.
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "cli/box/api_client.h"
#include "cli/box/cli_status.h"
#include "cli/box/client_config.h"

namespace boxd::cli {

// An action returns the process's exit code: 0, or a command's own status for run and exec.
using Action = std::function<CliStatusOr<int>()>;

class CliContext {
 public:
  ClientFlags& clientFlags() { return client_flags_; }
  bool& jsonFlag() { return json_; }
  bool json() const { return json_; }

  CliStatusOr<ApiClient*> client();

  // Prints an API answer as-is (pretty, one document) for --json.
  void printJson(const nlohmann::json& j) const;

  void setAction(Action action) { action_ = std::move(action); }
  const Action& action() const { return action_; }

 private:
  ClientFlags client_flags_;
  bool json_ = false;
  ApiClientPtr client_;
  Action action_;
};

}  // namespace boxd::cli
