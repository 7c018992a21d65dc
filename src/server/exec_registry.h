// ExecRegistry: the commands running right now through the API, so they can be listed and
// signalled. An entry lives from the command's start until just before the engine destroys
// it; signal() holds the registry lock, so it can never race that destruction.
#pragma once

#include <csignal>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace boxd::engine {
class Exec;
}

namespace boxd::server {

struct RunningExec {
  std::string id;  // "x-<n>", unique for this boxd
  std::string box_id;
  std::vector<std::string> argv;
  int64_t started_at_ms = 0;
};

class ExecRegistry {
 public:
  // Reserves an id for a command about to start in `box_id`.
  std::string reserve();
  // nullptr removes the entry (the engine's on_exec contract).
  void set(const std::string& id, const std::string& box_id, const std::vector<std::string>& argv,
           int64_t now_ms, engine::Exec* exec);
  std::vector<RunningExec> list(const std::string& box_id);
  // kNotFound when no such command runs in that box (any more).
  Status signal(const std::string& box_id, const std::string& id, int signo);

 private:
  struct Entry {
    RunningExec info;
    engine::Exec* exec;
  };
  std::mutex mu_;
  uint64_t next_ = 1;                     // Guarded by mu_
  std::map<std::string, Entry> running_;  // Guarded by mu_
};

// "TERM", "SIGTERM" or "15" -> 15; 0 for anything else.
int parseSignal(const std::string& s);

}  // namespace boxd::server
