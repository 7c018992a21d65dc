#include "cli/box/cli_context.h"

#include <iostream>
#include <nlohmann/json.hpp>

namespace boxd::cli {

CliStatusOr<ApiClient*> CliContext::client() {
  if (!client_) {
    CLI_ASSIGN_OR_RETURN(ClientConfig config, resolveClientConfig(client_flags_));
    CLI_ASSIGN_OR_RETURN(client_, ApiClient::create(std::move(config)));
  }
  return client_.get();
}

void CliContext::printJson(const nlohmann::json& j) const {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace boxd::cli
