#include "server/exec_registry.h"

#include "engine/exec.h"

namespace boxd::server {

std::string ExecRegistry::reserve() {
  std::lock_guard<std::mutex> lock(mu_);
  return "x-" + std::to_string(next_++);
}

void ExecRegistry::set(const std::string& id, const std::string& box_id, const std::vector<std::string>& argv,
                       int64_t now_ms, engine::Exec* exec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!exec) {
    running_.erase(id);
    return;
  }
  running_[id] = Entry{RunningExec{id, box_id, argv, now_ms}, exec};
}

std::vector<RunningExec> ExecRegistry::list(const std::string& box_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RunningExec> out;
  for (const auto& [id, e] : running_) {
    if (e.info.box_id == box_id) out.push_back(e.info);
  }
  return out;
}

Status ExecRegistry::signal(const std::string& box_id, const std::string& id, int signo) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end() || it->second.info.box_id != box_id) {
    return notFound("no running command " + id + " in box " + box_id);
  }
  return it->second.exec->signal(signo);
}

int parseSignal(const std::string& raw) {
  std::string s = raw;
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  static const std::map<std::string, int> kNames = {{"HUP", SIGHUP}, {"INT", SIGINT},   {"QUIT", SIGQUIT},
                                                    {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
                                                    {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
                                                    {"WINCH", SIGWINCH}};
  auto it = kNames.find(s);
  if (it != kNames.end()) return it->second;
  try {
    size_t pos = 0;
    int n = std::stoi(s, &pos);
    if (pos == s.size() && n >= 1 && n <= 64) return n;
  } catch (...) {
  }
  return 0;
}

}  // namespace boxd::server
