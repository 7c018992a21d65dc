// box-engine: the isolation engine on its own, for running a command in a throwaway box,
// checking what the host can enforce, and removing leftovers. boxd uses the same library.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "engine/box.h"
#include "engine/engine.h"
#include "engine/exec.h"
#include "engine/exec_result_json.h"

namespace {

using boxd::engine::Engine;
using boxd::engine::EngineConfig;
using nlohmann::json;

uint64_t parseSize(const std::string& s) {
  size_t pos = 0;
  double v = std::stod(s, &pos);
  std::string unit = s.substr(pos);
  uint64_t mult = 1;
  if (unit == "k" || unit == "K" || unit == "KiB") mult = 1ull << 10;
  else if (unit == "m" || unit == "M" || unit == "MiB") mult = 1ull << 20;
  else if (unit == "g" || unit == "G" || unit == "GiB") mult = 1ull << 30;
  else if (!unit.empty() && unit != "B") throw CLI::ValidationError("size", "unknown unit '" + unit + "' (use K, M or G)");
  return static_cast<uint64_t>(v * static_cast<double>(mult));
}

int fail(const boxd::Status& st, bool as_json) {
  if (as_json) {
    std::cout << json{{"error", {{"code", std::string(boxd::statusCodeName(st.code()))}, {"message", st.message()}}}}.dump()
              << "\n";
  } else {
    std::cerr << "box-engine: " << st.message() << "\n";
  }
  return st.code() == boxd::StatusCode::kInvalidArgument ? 2 : 125;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"box-engine: run commands in isolated boxes with the boxd local isolation engine"};
  app.require_subcommand(1);
  EngineConfig config;
  bool as_json = false;
  app.add_option("--state-dir", config.state_dir, "Per-box state directory")->envname("BOXD_ENGINE_STATE_DIR");
  app.add_option("--init", config.init_path, "Path of the box-init binary")->envname("BOXD_INIT");
  app.add_option("--cgroup-parent", config.cgroup_parent, "Cgroup directory holding all boxes")
      ->envname("BOXD_CGROUP_PARENT");
  app.add_flag("--json", as_json, "Print machine-readable JSON");

  auto* run = app.add_subcommand("run", "Create a box, run a command in it, print its output, destroy the box");
  std::vector<std::string> cmd, env;
  std::string memory = "512M", workspace = "256M", tmp = "64M", rootfs, cwd = "/workspace";
  uint32_t pids = 256;
  double cpus = 1.0, timeout_s = 600;
  std::string output_cap = "16M";
  bool kill_on_overflow = false, read_stdin = false, pty = false;
  std::vector<std::string> binds;
  run->add_option("--memory", memory, "Memory limit (e.g. 512M)")->capture_default_str();
  run->add_option("--pids", pids, "Maximum number of processes")->capture_default_str();
  run->add_option("--cpus", cpus, "CPU quota in CPUs (0 = unlimited)")->capture_default_str();
  run->add_option("--workspace-size", workspace, "Size cap of /workspace")->capture_default_str();
  run->add_option("--tmp-size", tmp, "Size cap of /tmp")->capture_default_str();
  run->add_option("--rootfs", rootfs, "Use this directory as the root filesystem (rootfs template)");
  run->add_option("--bind", binds, "Read-only bind SRC:DST (repeatable)");
  run->add_option("-e,--env", env, "Environment variable KEY=VALUE (repeatable)");
  run->add_option("-w,--workdir", cwd, "Working directory inside the box")->capture_default_str();
  run->add_option("-t,--timeout", timeout_s, "Wall-clock limit in seconds (0 = none)")->capture_default_str();
  run->add_option("--output-cap", output_cap, "Byte cap per output stream")->capture_default_str();
  run->add_flag("--kill-on-overflow", kill_on_overflow, "Kill the command when output exceeds the cap");
  run->add_flag("-i,--stdin", read_stdin, "Feed this process's stdin to the command");
  run->add_flag("--pty", pty, "Run the command on a terminal (stdout and stderr merged)");
  run->add_option("command", cmd, "Command and arguments (after --)")->required();

  auto* info = app.add_subcommand("info", "Say what this host lets the engine enforce");
  auto* reap = app.add_subcommand("reap", "Remove leftovers of engines that died (cgroups, state)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto engine_or = Engine::create(config);
  if (!engine_or.ok()) return fail(engine_or.status(), as_json);
  auto& engine = *engine_or.value();

  if (*info) {
    const auto& r = engine.report();
    if (as_json) {
      std::cout << json{{"root", r.root}, {"cgroups", r.cgroup_mode}, {"not_enforced", r.not_enforced},
                        {"state_dir", engine.config().state_dir}, {"init", engine.config().init_path}}.dump(2)
                << "\n";
    } else {
      std::cout << "root:       " << (r.root ? "yes" : "no") << "\ncgroups:    " << r.cgroup_mode
                << "\nstate dir:  " << engine.config().state_dir << "\nbox-init:   " << engine.config().init_path << "\n";
      if (r.not_enforced.empty()) std::cout << "enforced:   everything\n";
      for (const auto& s : r.not_enforced) std::cout << "NOT enforced: " << s << "\n";
    }
    return 0;
  }
  if (*reap) {
    // Engine::create already reaped; report by running once more (idempotent) for the count.
    auto n = engine.reapLeftovers();
    if (!n.ok()) return fail(n.status(), as_json);
    if (as_json) std::cout << json{{"removed", *n}}.dump() << "\n";
    else std::cout << "removed leftovers at start-up; " << *n << " more now\n";
    return 0;
  }

  boxd::engine::BoxSpec spec;
  boxd::engine::ExecSpec ex;
  try {
    spec.limits.memory_bytes = parseSize(memory);
    spec.limits.workspace_bytes = parseSize(workspace);
    spec.limits.tmp_bytes = parseSize(tmp);
    ex.output_cap_bytes = parseSize(output_cap);
  } catch (const std::exception& e) {
    return fail(boxd::invalidArgument(std::string("bad size: ") + e.what()), as_json);
  }
  spec.limits.pids = pids;
  spec.limits.cpus = cpus;
  if (!rootfs.empty()) {
    spec.tmpl.kind = boxd::engine::TemplateKind::kRootfs;
    spec.tmpl.rootfs = rootfs;
  }
  for (const auto& b : binds) {
    auto colon = b.find(':');
    if (colon == std::string::npos) return fail(boxd::invalidArgument("--bind wants SRC:DST, got '" + b + "'"), as_json);
    spec.tmpl.binds.push_back({b.substr(0, colon), b.substr(colon + 1), true});
  }
  ex.argv = cmd;
  ex.env = env;
  ex.cwd = cwd;
  ex.pty = pty;
  ex.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  ex.on_overflow = kill_on_overflow ? boxd::engine::OverflowPolicy::kKill : boxd::engine::OverflowPolicy::kTruncate;
  if (read_stdin) ex.stdin_data.assign(std::istreambuf_iterator<char>(std::cin), {});

  auto box = engine.createBox(spec);
  if (!box.ok()) return fail(box.status(), as_json);
  auto result = (*box)->run(ex);
  boxd::Status destroyed = (*box)->destroy();
  if (!result.ok()) {
    boxd::Status st = result.status();
    int code = fail(st, as_json);
    return st.code() == boxd::StatusCode::kNotFound ? 127 : (st.code() == boxd::StatusCode::kPermissionDenied ? 126 : code);
  }
  const auto& r = *result;
  if (as_json) {
    json out = boxd::engine::execResultJson(r);
    out["box"] = (*box)->id();
    std::cout << boxd::engine::dumpJson(out, 2) << "\n";
  } else {
    std::fwrite(r.stdout_data.data(), 1, r.stdout_data.size(), stdout);
    std::fflush(stdout);
    std::fwrite(r.stderr_data.data(), 1, r.stderr_data.size(), stderr);
    if (r.stdout_dropped || r.stderr_dropped) {
      std::fprintf(stderr, "box-engine: output capped: %llu stdout and %llu stderr bytes dropped\n",
                   static_cast<unsigned long long>(r.stdout_dropped), static_cast<unsigned long long>(r.stderr_dropped));
    }
    if (r.timed_out) std::fprintf(stderr, "box-engine: killed after the %.1fs timeout\n", timeout_s);
    if (r.oom_killed) std::fprintf(stderr, "box-engine: killed: out of memory (limit %s)\n", memory.c_str());
    if (r.output_limit_killed) std::fprintf(stderr, "box-engine: killed: output exceeded %s\n", output_cap.c_str());
  }
  if (!destroyed.ok()) std::cerr << "box-engine: " << destroyed.message() << "\n";
  return r.shellStatus();
}
