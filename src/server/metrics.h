// Metrics: counters and histograms rendered as Prometheus text at /metrics.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace boxd::server {

class Metrics {
 public:
  // name{labels} += v
  void add(const std::string& name, const std::string& labels, double v = 1);
  // Records a duration (seconds) into name_bucket/_sum/_count with fixed buckets.
  void observe(const std::string& name, const std::string& labels, double seconds);
  // Sets a gauge (overwrites).
  void set(const std::string& name, const std::string& labels, double v);
  std::string render(const std::map<std::string, std::string>& help);

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;
    double sum = 0;
    uint64_t count = 0;
  };
  std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> values_;     // Guarded by mu_
  std::map<std::string, std::map<std::string, Histogram>> hists_;   // Guarded by mu_
};

}  // namespace boxd::server
