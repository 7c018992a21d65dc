#include "sandbox/env_policy.h"

#include <algorithm>
#include <array>
#include <map>

namespace boxd::sandbox {

bool isLoaderVariable(std::string_view name) {
  // ld.so's own variables (all LD_*), and glibc's "unsecure envvars" list that secure-mode
  // programs drop (sysdeps/generic/unsecvars.h).
  if (name.substr(0, 3) == "LD_") return true;
  static constexpr std::array<std::string_view, 11> kUnsafe = {
      "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE",
      "NIS_PATH",   "NLSPATH",     "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR_LD"};
  if (std::find(kUnsafe.begin(), kUnsafe.end(), name) != kUnsafe.end()) return true;
  return name.substr(0, 7) == "GLIBC_T" || name.substr(0, 7) == "MALLOC_";
}

StatusOr<std::vector<std::string>> buildEnv(const EnvInputs& in, std::vector<std::string>* dropped) {
  std::map<std::string, std::string> vars = {
      {"PATH", in.path},       {"HOME", in.home},     {"USER", in.user},
      {"LOGNAME", in.user},    {"SHELL", "/bin/sh"},  {"LANG", "C.UTF-8"},
      {"HOSTNAME", in.hostname}, {"TMPDIR", "/tmp"},
  };
  if (in.pty) vars["TERM"] = "xterm-256color";
  for (const auto& kv : in.requested) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return invalidArgument("environment entry '" + kv + "' is not KEY=VALUE");
    if (kv.find('\0') != std::string::npos) return invalidArgument("environment entry contains a NUL byte");
    std::string key = kv.substr(0, eq);
    if (!in.allow_loader_env && isLoaderVariable(key)) {
      if (dropped) dropped->push_back(key);
      continue;
    }
    vars[key] = kv.substr(eq + 1);
  }
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

}  // namespace boxd::sandbox
