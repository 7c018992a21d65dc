// TokenService: API tokens. Secrets are shown once at creation and stored only as SHA-256;
// lookups go by hash and the final comparison is constant-time. Roles: admin, user.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "control/box_service.h"
#include "control/clock.h"
#include "store/store.h"

namespace boxd::control {

struct IssuedToken {
  store::TokenRecord record;
  std::string secret;  // the bearer string; never stored, never logged
};

class TokenService {
 public:
  TokenService(store::Store& store, Clock& clock) : store_(store), clock_(clock) {}

  // kPermissionDenied for a missing, malformed, unknown or revoked token (one message for
  // all, so a caller learns nothing about which).
  StatusOr<Caller> authenticate(const std::string& authorization_header);

  StatusOr<IssuedToken> create(const Caller& caller, const std::string& name, const std::string& role,
                               const std::string& tenant);
  StatusOr<std::vector<store::TokenRecord>> list(const Caller& caller);
  Status revoke(const Caller& caller, const std::string& id);

  // First start: with no token in the store, creates an admin token and writes it to
  // `path` with mode 0600. Returns true when it created one.
  StatusOr<bool> bootstrapAdmin(const std::string& path);

 private:
  store::Store& store_;
  Clock& clock_;
};

}  // namespace boxd::control
