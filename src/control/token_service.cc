#include "control/token_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "auth/token_secret.h"
#include "common/file_util.h"
#include "control/box_template.h"

namespace boxd::control {
namespace {
const char kDenied[] = "missing or invalid bearer token";
}

StatusOr<Caller> TokenService::authenticate(const std::string& header) {
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return permissionDenied(kDenied);
  std::string secret = header.substr(prefix.size());
  if (secret.size() > 256) return permissionDenied(kDenied);
  std::string hash = auth::sha256Hex(secret);
  auto rec = store_.findTokenByHash(hash);
  if (!rec.ok()) {
    if (rec.status().code() == StatusCode::kNotFound) return permissionDenied(kDenied);
    return rec.status();
  }
  if (!auth::constantTimeEquals(rec->hash_hex, hash) || rec->revoked_at_ms != 0) return permissionDenied(kDenied);
  int64_t now = clock_.nowMs();
  if (now - rec->last_used_ms > 60'000) (void)store_.touchToken(rec->id, now);
  return Caller{rec->id, rec->role, rec->tenant};
}

StatusOr<IssuedToken> TokenService::create(const Caller& caller, const std::string& name, const std::string& role,
                                           const std::string& tenant) {
  if (!caller.admin()) return permissionDenied("only an admin can create tokens");
  if (role != "admin" && role != "user") return invalidArgument("role must be 'admin' or 'user'");
  RETURN_IF_ERROR(validateName("token name", name));
  RETURN_IF_ERROR(validateName("tenant", tenant));
  auto t = auth::generateToken();
  IssuedToken out;
  out.record.id = t.id;
  out.record.name = name;
  out.record.role = role;
  out.record.tenant = tenant;
  out.record.hash_hex = t.hash_hex;
  out.record.created_at_ms = clock_.nowMs();
  out.secret = t.secret;
  RETURN_IF_ERROR(store_.insertToken(out.record));
  store::AuditRecord a;
  a.at_ms = clock_.nowMs();
  a.actor = caller.token_id;
  a.tenant = caller.tenant;
  a.action = "token.create";
  a.detail_json = "{\"token\":\"" + t.id + "\",\"role\":\"" + role + "\"}";
  (void)store_.appendAudit(a);
  return out;
}

StatusOr<std::vector<store::TokenRecord>> TokenService::list(const Caller& caller) {
  if (!caller.admin()) return permissionDenied("only an admin can list tokens");
  ASSIGN_OR_RETURN(auto tokens, store_.listTokens());
  for (auto& t : tokens) t.hash_hex.clear();
  return tokens;
}

Status TokenService::revoke(const Caller& caller, const std::string& id) {
  if (!caller.admin()) return permissionDenied("only an admin can revoke tokens");
  RETURN_IF_ERROR(store_.revokeToken(id, clock_.nowMs()));
  store::AuditRecord a;
  a.at_ms = clock_.nowMs();
  a.actor = caller.token_id;
  a.tenant = caller.tenant;
  a.action = "token.revoke";
  a.detail_json = "{\"token\":\"" + id + "\"}";
  (void)store_.appendAudit(a);
  return okStatus();
}

StatusOr<bool> TokenService::bootstrapAdmin(const std::string& path) {
  ASSIGN_OR_RETURN(int64_t n, store_.countTokens());
  if (n > 0) return false;
  Caller root{"system", "admin", "default"};
  ASSIGN_OR_RETURN(IssuedToken t, create(root, "admin", "admin", "default"));
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return errnoStatus("create " + tmp, errno);
  std::string data = t.secret + "\n";
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return errnoStatus("write " + path, errno);
  return true;
}

}  // namespace boxd::control
