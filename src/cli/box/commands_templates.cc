// box template ls|get|put|rm.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/box/cli_context.h"
#include "cli/box/commands.h"
#include "cli/box/human_format.h"
#include "cli/box/table.h"

namespace boxd::cli {

using nlohmann::json;

namespace {

std::string templatePath(const std::string& name) { return "/v1/templates/" + urlEncode(name); }

std::string field(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

CliStatusOr<int> listCommand(CliContext& ctx) {
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json list, client->get("/v1/templates"));
  if (ctx.json()) {
    ctx.printJson(list);
    return 0;
  }
  Table t({"NAME", "VERSION", "ROOT", "NETWORK", "DEFAULT TTL", "UPDATED (UTC)"});
  if (list.contains("templates") && list["templates"].is_array()) {
    for (const auto& tpl : list["templates"]) {
      std::string root = tpl.contains("root") && tpl["root"].is_object() ? field(tpl["root"], "kind") : "-";
      std::string ttl = tpl.contains("default_ttl_seconds") && tpl["default_ttl_seconds"].is_number()
                            ? formatDuration(tpl["default_ttl_seconds"].get<int64_t>() * 1000)
                            : "-";
      t.addRow({field(tpl, "name"), field(tpl, "version"), root, field(tpl, "network"), ttl,
                formatTimestamp(field(tpl, "updated_at"))});
    }
  }
  std::cout << t.render();
  return 0;
}

CliStatusOr<int> getCommand(CliContext& ctx, const std::string& name) {
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json tpl, client->get(templatePath(name)));
  ctx.printJson(tpl);  // a template is JSON either way
  return 0;
}

CliStatusOr<int> putCommand(CliContext& ctx, const std::string& name, const std::string& file, int64_t if_match) {
  std::ifstream in(file);
  if (!in) return errnoFailure("read " + file, errno);
  std::ostringstream ss;
  ss << in.rdbuf();
  json body = json::parse(ss.str(), nullptr, false);
  if (body.is_discarded() || !body.is_object()) return usageError(file + " is not a JSON object");
  // NAME wins over a "name" in the file, so `get a > t.json; put b --file t.json` copies a
  // template. Read-only fields from `box template get` output are not part of the spec.
  body.erase("name");
  body.erase("version");
  body.erase("updated_at");
  std::vector<std::string> headers;
  if (if_match > 0) headers.push_back("If-Match: \"" + std::to_string(if_match) + "\"");
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  auto r = client->call("PUT", templatePath(name), &body, headers);
  if (!r.ok() && r.status().httpStatus() == 412) {
    return failure(r.status().message() + "; run box template get " + name + " and retry with its version");
  }
  if (!r.ok()) return r.status();
  if (ctx.json()) ctx.printJson(*r);
  else std::cout << "template " << name << " is at version " << field(*r, "version") << "\n";
  return 0;
}

CliStatusOr<int> removeCommand(CliContext& ctx, const std::string& name) {
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json r, client->call("DELETE", templatePath(name)));
  if (ctx.json()) ctx.printJson(r);
  else std::cout << "deleted template " << name << "\n";
  return 0;
}

}  // namespace

void addTemplateCommands(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("template", "Manage box templates (changing them needs an admin token)");
  group->require_subcommand(1);
  {
    auto* cmd = group->add_subcommand("ls", "List templates");
    cmd->callback([&ctx] { ctx.setAction([&ctx] { return listCommand(ctx); }); });
  }
  {
    auto* cmd = group->add_subcommand("get", "Print a template as JSON (with its version, for put --if-match)");
    auto name = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Template name")->required();
    cmd->callback([&ctx, name] { ctx.setAction([&ctx, name] { return getCommand(ctx, *name); }); });
  }
  {
    auto* cmd = group->add_subcommand("put", "Create or replace a template from a JSON file");
    cmd->footer("Edit safely: box template get NAME > t.json; edit; box template put NAME --file t.json --if-match VERSION");
    auto name = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto if_match = std::make_shared<int64_t>(0);
    cmd->add_option("name", *name, "Template name")->required();
    cmd->add_option("-f,--file", *file, "JSON file with the template")->required()->check(CLI::ExistingFile);
    cmd->add_option("--if-match", *if_match, "Only replace it if it is still at this version (else exit 1)")
        ->check(CLI::PositiveNumber);
    cmd->callback([&ctx, name, file, if_match] {
      ctx.setAction([&ctx, name, file, if_match] { return putCommand(ctx, *name, *file, *if_match); });
    });
  }
  {
    auto* cmd = group->add_subcommand("rm", "Delete a template");
    auto name = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Template name")->required();
    cmd->callback([&ctx, name] { ctx.setAction([&ctx, name] { return removeCommand(ctx, *name); }); });
  }
}

}  // namespace boxd::cli
