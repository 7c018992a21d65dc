// API token secrets: generation, hashing for storage (SHA-256) and constant-time comparison.
// A token is "boxd_<id>_<secret>"; only SHA-256(token) is stored.
#pragma once

#include <string>
#include <string_view>

namespace boxd::auth {

struct NewToken {
  std::string id;        // "tok-<12 hex>": public, shown in lists and audit
  std::string secret;    // the full bearer string: shown once, never stored or logged
  std::string hash_hex;  // what the store keeps
};

NewToken generateToken();
std::string sha256Hex(std::string_view data);
bool constantTimeEquals(std::string_view a, std::string_view b);
// Random lowercase hex of 2*bytes characters, from the OS CSPRNG.
std::string randomHex(size_t bytes);

}  // namespace boxd::auth
