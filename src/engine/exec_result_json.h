// The JSON form of a finished command (ExecResult), shared by the API and box-engine --json so
// both speak the same shape. Only nlohmann's forward header here.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "engine/box_spec.h"

namespace boxd::engine {

// {exit_code (null after a signal), signal, status, timed_out, oom_killed, output_limit_killed,
//  stdout, stderr, stdout_dropped, stderr_dropped, usage{wall_ms, cpu_ms, peak_memory_bytes, oom_kills}}
nlohmann::json execResultJson(const ExecResult& r);

// Serializes with invalid UTF-8 replaced (command output is arbitrary bytes).
std::string dumpJson(const nlohmann::json& j, int indent = -1);

}  // namespace boxd::engine
