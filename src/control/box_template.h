// BoxTemplate: a named recipe for boxes (root filesystem, resource defaults and maxima, TTLs,
// env, labels, network policy), stored as JSON in the store and parsed/validated here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/box_spec.h"

namespace boxd::control {

struct BoxTemplate {
  std::string name = "default";
  engine::TemplateSpec root;     // kind, rootfs, PATH, binds
  engine::Limits limits;         // defaults
  engine::Limits max_limits;     // what a create may ask for at most
  int64_t default_ttl_ms = 60 * 60 * 1000;        // 1 hour
  int64_t max_ttl_ms = 5ll * 24 * 60 * 60 * 1000; // 5 days (hard maximum lifetime)
  int64_t idle_timeout_ms = 0;                    // 0 = none
  std::vector<std::string> env;
  std::map<std::string, std::string> labels;
  std::string network = "none";  // only "none" exists today
};

BoxTemplate defaultTemplate();
// Parses and validates (names, sizes, TTL ordering, network policy). Errors name the field.
StatusOr<BoxTemplate> parseTemplate(const std::string& json);
std::string templateToJson(const BoxTemplate& t);
Status validateName(const std::string& what, const std::string& name);

}  // namespace boxd::control
