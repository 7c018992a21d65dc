#include "control/box_template.h"

#include <nlohmann/json.hpp>

namespace boxd::control {

using nlohmann::json;

Status validateName(const std::string& what, const std::string& name) {
  if (name.empty() || name.size() > 63) return invalidArgument(what + " must be 1-63 characters");
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return invalidArgument(what + " '" + name + "' may only contain a-z 0-9 - _ .");
    }
  }
  return okStatus();
}

BoxTemplate defaultTemplate() {
  BoxTemplate t;
  t.max_limits.memory_bytes = 4ull << 30;
  t.max_limits.pids = 4096;
  t.max_limits.cpus = 2;
  t.max_limits.workspace_bytes = 4ull << 30;
  t.max_limits.tmp_bytes = 1ull << 30;
  return t;
}

namespace {

json limitsJson(const engine::Limits& l) {
  return {{"memory_bytes", l.memory_bytes}, {"swap_bytes", l.swap_bytes}, {"pids", l.pids},
          {"cpus", l.cpus}, {"workspace_bytes", l.workspace_bytes}, {"tmp_bytes", l.tmp_bytes}};
}

Status readLimits(const json& j, const std::string& field, engine::Limits* l) {
  if (!j.contains(field)) return okStatus();
  const json& o = j.at(field);
  if (!o.is_object()) return invalidArgument(field + " must be an object");
  try {
    if (o.contains("memory_bytes")) l->memory_bytes = o.at("memory_bytes").get<uint64_t>();
    if (o.contains("swap_bytes")) l->swap_bytes = o.at("swap_bytes").get<uint64_t>();
    if (o.contains("pids")) l->pids = o.at("pids").get<uint32_t>();
    if (o.contains("cpus")) l->cpus = o.at("cpus").get<double>();
    if (o.contains("workspace_bytes")) l->workspace_bytes = o.at("workspace_bytes").get<uint64_t>();
    if (o.contains("tmp_bytes")) l->tmp_bytes = o.at("tmp_bytes").get<uint64_t>();
  } catch (const json::exception& e) {
    return invalidArgument(field + ": " + e.what());
  }
  if (l->memory_bytes < (4ull << 20)) return invalidArgument(field + ".memory_bytes must be at least 4 MiB");
  if (l->pids < 4) return invalidArgument(field + ".pids must be at least 4");
  if (l->cpus < 0 || l->cpus > 1024) return invalidArgument(field + ".cpus must be between 0 and 1024");
  if (l->workspace_bytes == 0 || l->tmp_bytes == 0) return invalidArgument(field + ": workspace_bytes and tmp_bytes must be positive");
  return okStatus();
}

}  // namespace

std::string templateToJson(const BoxTemplate& t) {
  json binds = json::array();
  for (const auto& b : t.root.binds) binds.push_back({{"source", b.source}, {"target", b.target}, {"read_only", b.read_only}});
  json j = {{"name", t.name},
            {"root", {{"kind", t.root.kind == engine::TemplateKind::kHost ? "host" : "rootfs"},
                      {"rootfs", t.root.rootfs},
                      {"path", t.root.path},
                      {"binds", binds}}},
            {"limits", limitsJson(t.limits)},
            {"max_limits", limitsJson(t.max_limits)},
            {"default_ttl_seconds", t.default_ttl_ms / 1000},
            {"max_ttl_seconds", t.max_ttl_ms / 1000},
            {"idle_timeout_seconds", t.idle_timeout_ms / 1000},
            {"env", t.env},
            {"labels", t.labels},
            {"network", t.network}};
  return j.dump();
}

StatusOr<BoxTemplate> parseTemplate(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalidArgument("template must be a JSON object");
  BoxTemplate t = defaultTemplate();
  try {
    if (j.contains("name")) t.name = j.at("name").get<std::string>();
    RETURN_IF_ERROR(validateName("template name", t.name));
    if (j.contains("root")) {
      const json& r = j.at("root");
      std::string kind = r.value("kind", "host");
      if (kind == "host") {
        t.root.kind = engine::TemplateKind::kHost;
      } else if (kind == "rootfs") {
        t.root.kind = engine::TemplateKind::kRootfs;
        t.root.rootfs = r.value("rootfs", "");
        if (t.root.rootfs.empty() || t.root.rootfs[0] != '/') return invalidArgument("root.rootfs must be an absolute path");
      } else {
        return invalidArgument("root.kind must be 'host' or 'rootfs', got '" + kind + "'");
      }
      if (r.contains("path")) t.root.path = r.at("path").get<std::string>();
      if (r.contains("binds")) {
        for (const auto& b : r.at("binds")) {
          engine::Bind bind{b.at("source").get<std::string>(), b.at("target").get<std::string>(), b.value("read_only", true)};
          if (bind.source.empty() || bind.source[0] != '/' || bind.target.empty() || bind.target[0] != '/' ||
              bind.target.find("..") != std::string::npos) {
            return invalidArgument("root.binds: source and target must be absolute paths without '..'");
          }
          t.root.binds.push_back(bind);
        }
      }
    }
    RETURN_IF_ERROR(readLimits(j, "limits", &t.limits));
    RETURN_IF_ERROR(readLimits(j, "max_limits", &t.max_limits));
    if (j.contains("default_ttl_seconds")) t.default_ttl_ms = j.at("default_ttl_seconds").get<int64_t>() * 1000;
    if (j.contains("max_ttl_seconds")) t.max_ttl_ms = j.at("max_ttl_seconds").get<int64_t>() * 1000;
    if (j.contains("idle_timeout_seconds")) t.idle_timeout_ms = j.at("idle_timeout_seconds").get<int64_t>() * 1000;
    if (j.contains("env")) t.env = j.at("env").get<std::vector<std::string>>();
    if (j.contains("labels")) t.labels = j.at("labels").get<std::map<std::string, std::string>>();
    if (j.contains("network")) t.network = j.at("network").get<std::string>();
  } catch (const json::exception& e) {
    return invalidArgument(std::string("template: ") + e.what());
  }
  if (t.default_ttl_ms <= 0 || t.max_ttl_ms <= 0 || t.default_ttl_ms > t.max_ttl_ms) {
    return invalidArgument("default_ttl_seconds must be positive and at most max_ttl_seconds");
  }
  if (t.idle_timeout_ms < 0) return invalidArgument("idle_timeout_seconds must not be negative");
  if (t.network != "none") return invalidArgument("network must be 'none' (egress policies are not implemented yet)");
  for (const auto& e : t.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') return invalidArgument("env entry '" + e + "' is not KEY=VALUE");
  }
  const auto& l = t.limits;
  const auto& m = t.max_limits;
  if (l.memory_bytes > m.memory_bytes || l.pids > m.pids || l.cpus > m.cpus || l.workspace_bytes > m.workspace_bytes ||
      l.tmp_bytes > m.tmp_bytes) {
    return invalidArgument("limits must not exceed max_limits");
  }
  return t;
}

}  // namespace boxd::control
