#include "server/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace boxd::server {

void logEvent(const std::string& level, const std::string& msg, const std::map<std::string, std::string>& fields) {
  auto now = std::chrono::system_clock::now();
  time_t secs = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  tm t;
  gmtime_r(&secs, &t);
  char ts[40];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &t);
  char full[48];
  snprintf(full, sizeof full, "%s.%03dZ", ts, ms);
  nlohmann::json j = {{"ts", full}, {"level", level}, {"msg", msg}};
  for (const auto& [k, v] : fields) j[k] = v;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace boxd::server
