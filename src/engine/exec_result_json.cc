#include "engine/exec_result_json.h"

#include <nlohmann/json.hpp>

namespace boxd::engine {

using nlohmann::json;

json execResultJson(const ExecResult& r) {
  return {{"exit_code", r.signal ? json(nullptr) : json(r.exit_code)},
          {"signal", r.signal},
          {"status", r.shellStatus()},
          {"timed_out", r.timed_out},
          {"oom_killed", r.oom_killed},
          {"output_limit_killed", r.output_limit_killed},
          {"stdout", r.stdout_data},
          {"stderr", r.stderr_data},
          {"stdout_dropped", r.stdout_dropped},
          {"stderr_dropped", r.stderr_dropped},
          {"usage",
           {{"wall_ms", r.usage.wall_usec / 1000.0},
            {"cpu_ms", r.usage.cpu_usec / 1000.0},
            {"peak_memory_bytes", r.usage.peak_memory_bytes},
            {"oom_kills", r.usage.oom_kills}}}};
}

std::string dumpJson(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

}  // namespace boxd::engine
