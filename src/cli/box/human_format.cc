#include "cli/box/human_format.h"

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace boxd::cli {

CliStatusOr<uint64_t> parseByteSize(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) ++digits;
  if (digits == 0) return usageError("size '" + s + "' must be a number of bytes, optionally with K, M or G");
  double v = 0;
  try {
    v = std::stod(s.substr(0, digits));
  } catch (...) {
    return usageError("size '" + s + "' is not a number");
  }
  std::string unit = s.substr(digits);
  double mult = 1;
  if (unit.empty() || unit == "B" || unit == "b") mult = 1;
  else if (unit == "K" || unit == "k" || unit == "KiB" || unit == "KB") mult = 1024.0;
  else if (unit == "M" || unit == "m" || unit == "MiB" || unit == "MB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "g" || unit == "GiB" || unit == "GB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "t" || unit == "TiB" || unit == "TB") mult = 1024.0 * 1024 * 1024 * 1024;
  else return usageError("size '" + s + "': unknown unit '" + unit + "' (use K, M, G or T)");
  double bytes = v * mult;
  if (!std::isfinite(bytes) || bytes >= 1.8e19) return usageError("size '" + s + "' is too large");
  return static_cast<uint64_t>(bytes);
}

std::string formatByteSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(bytes));
  else if (v < 10 && v != std::floor(v)) snprintf(buf, sizeof buf, "%.1f%s", v, kUnits[u]);
  else snprintf(buf, sizeof buf, "%.0f%s", v, kUnits[u]);
  return buf;
}

int64_t parseRfc3339Ms(const std::string& s) {
  if (s.empty()) return 0;
  tm t{};
  int ms = 0;
  int year = 0, mon = 0, day = 0, h = 0, m = 0, sec = 0;
  if (sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &year, &mon, &day, &h, &m, &sec) != 6) return 0;
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    int scale = 100;
    for (size_t i = dot + 1; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && scale > 0; ++i, scale /= 10) {
      ms += (s[i] - '0') * scale;
    }
  }
  t.tm_year = year - 1900;
  t.tm_mon = mon - 1;
  t.tm_mday = day;
  t.tm_hour = h;
  t.tm_min = m;
  t.tm_sec = sec;
  return static_cast<int64_t>(timegm(&t)) * 1000 + ms;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// kubectl's HumanDuration: more precision for short spans, less for long ones.
std::string formatDuration(int64_t ms) {
  if (ms <= 0) return "0s";
  long long s = ms / 1000;
  char buf[48];
  auto two = [&](const char* both, const char* one, long long a, long long b) {
    if (b) snprintf(buf, sizeof buf, both, a, b);
    else snprintf(buf, sizeof buf, one, a);
  };
  long long minutes = s / 60, hours = s / 3600, days = s / 86400;
  if (s < 120) snprintf(buf, sizeof buf, "%llds", s);
  else if (minutes < 10) two("%lldm%llds", "%lldm", minutes, s % 60);
  else if (minutes < 180) snprintf(buf, sizeof buf, "%lldm", minutes);
  else if (hours < 8) two("%lldh%lldm", "%lldh", hours, minutes % 60);
  else if (hours < 48) snprintf(buf, sizeof buf, "%lldh", hours);
  else if (hours < 24 * 8) two("%lldd%lldh", "%lldd", days, hours % 24);
  else if (days < 365 * 2) snprintf(buf, sizeof buf, "%lldd", days);
  else snprintf(buf, sizeof buf, "%lldy", days / 365);
  return buf;
}

std::string formatTimestamp(const std::string& rfc3339) {
  std::string s = rfc3339.substr(0, 19);
  if (s.size() == 19 && s[10] == 'T') s[10] = ' ';
  return s;
}

}  // namespace boxd::cli
