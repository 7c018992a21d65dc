// Pure parsers for the kernel's cgroup files, kept apart so they are unit-tested.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace boxd::engine {

struct CgroupMounts {
  std::map<std::string, std::string> v1;  // controller ("memory") -> mount point
  std::string v2;                         // unified mount point, empty if none
};

// Reads /proc/self/mountinfo text.
CgroupMounts parseCgroupMounts(const std::string& mountinfo);

// "key value" per line (memory.stat, cpu.stat, memory.oom_control, memory.events).
std::map<std::string, uint64_t> parseFlatKeyed(const std::string& text);

// One pid per line (cgroup.procs).
std::vector<pid_t> parsePidList(const std::string& text);

// cgroup v2 cpu.max for a CPU count: "150000 100000", or "max 100000" for 0.
std::string cpuMaxValue(double cpus, uint32_t period_us = 100000);

}  // namespace boxd::engine
