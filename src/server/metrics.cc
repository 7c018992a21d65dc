#include "server/metrics.h"

#include <sstream>

namespace boxd::server {
namespace {
const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
std::string join(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return "{" + labels + "," + extra + "}";
}
}  // namespace

void Metrics::add(const std::string& name, const std::string& labels, double v) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[name][labels] += v;
}

void Metrics::set(const std::string& name, const std::string& labels, double v) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[name][labels] = v;
}

void Metrics::observe(const std::string& name, const std::string& labels, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Histogram& h = hists_[name][labels];
  if (h.buckets.empty()) h.buckets.assign(kBuckets.size(), 0);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  h.sum += seconds;
  ++h.count;
}

std::string Metrics::render(const std::map<std::string, std::string>& help) {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  for (const auto& [name, series] : values_) {
    auto it = help.find(name);
    if (it != help.end()) out << "# HELP " << name << " " << it->second << "\n";
    out << "# TYPE " << name << (name.size() > 6 && name.substr(name.size() - 6) == "_total" ? " counter" : " gauge") << "\n";
    for (const auto& [labels, v] : series) out << name << (labels.empty() ? "" : "{" + labels + "}") << " " << v << "\n";
  }
  for (const auto& [name, series] : hists_) {
    auto it = help.find(name);
    if (it != help.end()) out << "# HELP " << name << " " << it->second << "\n";
    out << "# TYPE " << name << " histogram\n";
    for (const auto& [labels, h] : series) {
      for (size_t i = 0; i < kBuckets.size(); ++i) {
        std::ostringstream le;
        le << kBuckets[i];
        out << name << "_bucket" << join(labels, "le=\"" + le.str() + "\"") << " " << h.buckets[i] << "\n";
      }
      out << name << "_bucket" << join(labels, "le=\"+Inf\"") << " " << h.count << "\n";
      out << name << "_sum" << (labels.empty() ? "" : "{" + labels + "}") << " " << h.sum << "\n";
      out << name << "_count" << (labels.empty() ? "" : "{" + labels + "}") << " " << h.count << "\n";
    }
  }
  return out.str();
}

}  // namespace boxd::server
