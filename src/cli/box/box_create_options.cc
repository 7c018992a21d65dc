#include "cli/box/box_create_options.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/box/human_format.h"

namespace boxd::cli {

using nlohmann::json;

void addBoxCreateOptions(CLI::App& cmd, BoxCreateOptions& opts) {
  cmd.add_option("--template", opts.template_name, "Template to start from (default: the server's \"default\")");
  cmd.add_option("-e,--env", opts.env, "Environment variable KEY=VALUE for every command in the box (repeatable)")
      ->allow_extra_args(false);  // one value per -e, so "-e A=1 -- cmd" ends at --
  cmd.add_option("-l,--label", opts.labels, "Label key=value to find the box by (repeatable)")->allow_extra_args(false);
  cmd.add_option("--ttl", opts.ttl_seconds, "Seconds until the box expires (default: the template's)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--idle-timeout", opts.idle_timeout_seconds, "Stop the box after this many seconds without activity (0 = never)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--memory", opts.memory, "Memory limit, in bytes or with a unit: 512M, 2G");
  cmd.add_option("--cpus", opts.cpus, "CPU quota in CPUs, e.g. 0.5")->check(CLI::PositiveNumber);
}

CliStatusOr<std::map<std::string, std::string>> parseKeyValues(const std::vector<std::string>& items, const std::string& what) {
  std::map<std::string, std::string> out;
  for (const auto& kv : items) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return usageError(what + " '" + kv + "' must be key=value");
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

CliStatusOr<json> boxCreateBody(const BoxCreateOptions& opts) {
  json body = json::object();
  if (!opts.template_name.empty()) body["template"] = opts.template_name;
  CLI_RETURN_IF_ERROR(parseKeyValues(opts.env, "environment variable").status());
  if (!opts.env.empty()) body["env"] = opts.env;
  CLI_ASSIGN_OR_RETURN(auto labels, parseKeyValues(opts.labels, "label"));
  if (!labels.empty()) body["labels"] = labels;
  if (opts.ttl_seconds > 0) body["ttl_seconds"] = opts.ttl_seconds;
  if (opts.idle_timeout_seconds >= 0) body["idle_timeout_seconds"] = opts.idle_timeout_seconds;
  json resources = json::object();
  if (!opts.memory.empty()) {
    CLI_ASSIGN_OR_RETURN(uint64_t bytes, parseByteSize(opts.memory));
    if (bytes == 0) return usageError("--memory must be more than 0 bytes");
    resources["memory_bytes"] = bytes;
  }
  if (opts.cpus > 0) resources["cpus"] = opts.cpus;
  if (!resources.empty()) body["resources"] = resources;
  return body;
}

CliStatusOr<json> createBox(ApiClient& client, const json& body, bool wait) {
  return client.call("POST", wait ? "/v1/boxes?wait=true" : "/v1/boxes", &body);
}

}  // namespace boxd::cli
