// ExecStream: runs one command in a box through POST /v1/boxes/{id}/exec?stream=true and
// copies its output to this process's stdout and stderr as it arrives. `box run` and
// `box exec` both end here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/box/api_client.h"
#include "cli/box/cli_status.h"

namespace boxd::cli {

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;      // KEY=VALUE
  std::string cwd;                   // empty: the box's default (/workspace)
  std::optional<std::string> stdin_data;
  bool pty = false;                  // stdout and stderr arrive merged on stdout
  double timeout_seconds = 0;        // 0: the server's default
};

struct ExecOptions {
  bool raw_json = false;  // print the NDJSON lines as they come instead of the output
};

// The command's status as a shell reports it (exit code, or 128 + signal). Fails when the
// API refused the command, the stream broke off, or the transfer was interrupted (the
// caller tells that case apart with interruptRequested()).
CliStatusOr<int> runExecStream(ApiClient& client, const std::string& box_id, const ExecRequest& req, ExecOptions opts);

// Reads all of standard input (for -i).
CliStatusOr<std::string> readAllStdin();


}  // namespace boxd::cli
