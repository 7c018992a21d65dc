// Standard base64 (RFC 4648, with padding): for carrying bytes in JSON.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace boxd {

std::string base64Encode(std::string_view bytes);
// Rejects characters outside the alphabet, bad padding and bad lengths (whitespace ignored).
StatusOr<std::string> base64Decode(std::string_view text);

}  // namespace boxd
