// Plain request/response types between the HTTP server (Beast, kept in http_server.cc) and
// the API handlers, so no handler includes Beast.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace boxd::server {

struct HttpRequest {
  std::string method;  // "GET", ...
  std::string target;  // raw, with query
  std::string path;    // decoded path without query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool via_unix_socket = false;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Writes one chunk of a streamed response; false once the client is gone.
using ChunkWriter = std::function<bool(const std::string& data)>;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed with chunked encoding: the function runs on a worker
  // thread and writes chunks until it returns.
  std::function<void(const ChunkWriter&)> stream;
};

using HttpHandler = std::function<HttpResponse(HttpRequest&)>;

}  // namespace boxd::server
