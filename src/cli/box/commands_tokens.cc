// box token create|ls|revoke.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/box/cli_context.h"
#include "cli/box/commands.h"
#include "cli/box/human_format.h"
#include "cli/box/table.h"

namespace boxd::cli {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

std::string timeOrDash(const json& j, const char* key) {
  std::string v = str(j, key);
  return v.empty() ? "-" : formatTimestamp(v);
}

struct CreateFlags {
  std::string name, role, tenant;
};

CliStatusOr<int> createCommand(CliContext& ctx, const CreateFlags& f) {
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  json body = {{"name", f.name}};
  if (!f.role.empty()) body["role"] = f.role;
  if (!f.tenant.empty()) body["tenant"] = f.tenant;
  CLI_ASSIGN_OR_RETURN(json token, client->call("POST", "/v1/tokens", &body));
  if (ctx.json()) {
    ctx.printJson(token);
    return 0;
  }
  // The secret alone on stdout, so `T=$(box token create ...)` works; the rest on stderr.
  std::cout << str(token, "token") << "\n";
  std::cerr << "box: created token " << str(token, "id") << " (name " << printable(str(token, "name")) << ", role "
            << str(token, "role") << ", tenant " << printable(str(token, "tenant"))
            << "); the secret above is shown only this once\n";
  return 0;
}

CliStatusOr<int> listCommand(CliContext& ctx) {
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json list, client->get("/v1/tokens"));
  if (ctx.json()) {
    ctx.printJson(list);
    return 0;
  }
  Table t({"ID", "NAME", "ROLE", "TENANT", "CREATED (UTC)", "LAST USED", "REVOKED"});
  if (list.contains("tokens") && list["tokens"].is_array()) {
    for (const auto& tok : list["tokens"]) {
      t.addRow({str(tok, "id"), str(tok, "name"), str(tok, "role"), str(tok, "tenant"), timeOrDash(tok, "created_at"),
                timeOrDash(tok, "last_used_at"), timeOrDash(tok, "revoked_at")});
    }
  }
  std::cout << t.render();
  return 0;
}

CliStatusOr<int> revokeCommand(CliContext& ctx, const std::string& id) {
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json r, client->call("DELETE", "/v1/tokens/" + urlEncode(id)));
  if (ctx.json()) ctx.printJson(r);
  else std::cout << "revoked " << id << "\n";
  return 0;
}

}  // namespace

void addTokenCommands(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("token", "Manage API tokens (admin)");
  group->require_subcommand(1);
  {
    auto* cmd = group->add_subcommand("create", "Create a token and print its secret (shown only this once)");
    auto f = std::make_shared<CreateFlags>();
    cmd->add_option("--name", f->name, "What the token is for, e.g. ci-runner")->required();
    cmd->add_option("--role", f->role, "admin or user (default user)")->check(CLI::IsMember({"admin", "user"}));
    cmd->add_option("--tenant", f->tenant, "Tenant whose boxes the token sees (default \"default\")");
    cmd->callback([&ctx, f] { ctx.setAction([&ctx, f] { return createCommand(ctx, *f); }); });
  }
  {
    auto* cmd = group->add_subcommand("ls", "List tokens (never their secrets)");
    cmd->callback([&ctx] { ctx.setAction([&ctx] { return listCommand(ctx); }); });
  }
  {
    auto* cmd = group->add_subcommand("revoke", "Revoke a token: requests with it fail from now on");
    auto id = std::make_shared<std::string>();
    cmd->add_option("id", *id, "Token id (tok-...), as shown by box token ls")->required();
    cmd->callback([&ctx, id] { ctx.setAction([&ctx, id] { return revokeCommand(ctx, *id); }); });
  }
}

}  // namespace boxd::cli
