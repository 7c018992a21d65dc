#include "engine/cgroup_parse.h"

#include <cmath>
#include <sstream>

namespace boxd::engine {

CgroupMounts parseCgroupMounts(const std::string& mountinfo) {
  CgroupMounts out;
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mountpoint;
    head >> id >> parent >> devno >> root >> mountpoint;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype, source, super;
    tail >> fstype >> source >> super;
    if (fstype == "cgroup2") {
      if (out.v2.empty()) out.v2 = mountpoint;
    } else if (fstype == "cgroup") {
      std::istringstream opts(super);
      std::string opt;
      while (std::getline(opts, opt, ',')) {
        if (opt == "memory" || opt == "pids" || opt == "cpu" || opt == "cpuacct" || opt == "freezer") {
          out.v1.emplace(opt, mountpoint);
        }
      }
    }
  }
  return out;
}

std::map<std::string, uint64_t> parseFlatKeyed(const std::string& text) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(text);
  std::string key;
  std::string value;
  while (in >> key >> value) {
    try {
      out[key] = std::stoull(value);
    } catch (...) {
      // "max" and other non-numbers are skipped.
    }
  }
  return out;
}

std::vector<pid_t> parsePidList(const std::string& text) {
  std::vector<pid_t> out;
  std::istringstream in(text);
  long pid;
  while (in >> pid) {
    if (pid > 0) out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

std::string cpuMaxValue(double cpus, uint32_t period_us) {
  if (cpus <= 0) return "max " + std::to_string(period_us);
  auto quota = static_cast<uint64_t>(std::llround(cpus * period_us));
  if (quota < 1000) quota = 1000;  // kernel minimum
  return std::to_string(quota) + " " + std::to_string(period_us);
}

}  // namespace boxd::engine
