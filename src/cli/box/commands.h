// Registration of every `box` subcommand, one file per group of related commands. CLI11 is
// only forward-declared here; it stays in the .cc files.
#pragma once

namespace CLI {
class App;
}

namespace boxd::cli {

class CliContext;

void addBoxCommands(CLI::App& app, CliContext& ctx);       // create, ls, get, rm, extend   (commands_boxes.cc)
void addExecCommands(CLI::App& app, CliContext& ctx);      // run, exec, term               (commands_exec.cc)
void addExecsCommands(CLI::App& app, CliContext& ctx);     // ps, kill                      (commands_execs.cc)
void addFileCommands(CLI::App& app, CliContext& ctx);      // cp, ls-files                  (commands_files.cc)
void addTokenCommands(CLI::App& app, CliContext& ctx);     // token create|ls|revoke        (commands_tokens.cc)
void addTemplateCommands(CLI::App& app, CliContext& ctx);  // template ls|get|put|rm        (commands_templates.cc)
void addServerCommands(CLI::App& app, CliContext& ctx);    // version, health, logs         (commands_server.cc)

}  // namespace boxd::cli
