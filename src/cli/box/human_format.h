// Sizes, durations and timestamps as people type and read them ("512M", "3m", "2h5m"), and
// their conversions to what the API takes and gives (bytes, RFC 3339 UTC times).
#pragma once

#include <cstdint>
#include <string>

#include "cli/box/cli_status.h"

namespace boxd::cli {

// "536870912", "512M", "512MiB", "1.5G", "64k": binary units. Usage error otherwise.
CliStatusOr<uint64_t> parseByteSize(const std::string& s);
std::string formatByteSize(uint64_t bytes);

// "2026-11-22T21:54:17.291Z" -> milliseconds since the epoch; 0 for "" or a bad string.
int64_t parseRfc3339Ms(const std::string& s);
int64_t nowMs();

// 42s, 5m30s, 2h5m, 3d4h (kubectl's style); "0s" for anything not positive.
std::string formatDuration(int64_t ms);
// "2026-11-22T21:54:17.291Z" -> "2026-11-22 21:54:17" (still UTC).
std::string formatTimestamp(const std::string& rfc3339);

}  // namespace boxd::cli
