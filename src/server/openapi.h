// The OpenAPI 3 document served at /v1/openapi.json.
#pragma once

#include <string>

namespace boxd::server {
const std::string& openApiDocument();
}
