// Structured JSON logs, one object per line on stderr: {"ts","level","msg",...fields}.
// Lines about a box carry "box". Secrets never go into fields.
#pragma once

#include <map>
#include <string>

namespace boxd::server {

void logEvent(const std::string& level, const std::string& msg, const std::map<std::string, std::string>& fields = {});

}  // namespace boxd::server
