// Api: the /v1 REST API, health endpoints and metrics. Maps HttpRequest to the services and
// Status codes to HTTP statuses in one place; every error is {"error":{"code","message"}}.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "control/box_service.h"
#include "control/token_service.h"
#include "server/exec_registry.h"
#include "server/http_types.h"
#include "server/metrics.h"

namespace boxd::server {

struct ApiOptions {
  bool insecure_local = false;   // unauthenticated admin on the Unix socket only
  size_t max_exec_output_bytes = 16 << 20;
  int64_t default_wait_ms = 30000;
};

class Api {
 public:
  Api(control::BoxService* boxes, control::TokenService* tokens, store::Store* store, ApiOptions options);

  HttpResponse handle(HttpRequest& req);

  // Until setReady(), /readyz answers 503 with `reason`, and /v1 answers 503.
  void setNotReady(const std::string& reason);
  void setReady();
  Metrics& metrics() { return metrics_; }

 private:
  HttpResponse route(HttpRequest& req, std::string* route_name);

  control::BoxService* boxes_;
  control::TokenService* tokens_;
  store::Store* store_;
  const ApiOptions options_;
  Metrics metrics_;
  ExecRegistry execs_;
  std::atomic<bool> ready_{false};
  std::mutex reason_mu_;
  std::string not_ready_reason_ = "starting";  // Guarded by reason_mu_
};

// HTTP status for a Status code (the single mapping).
int httpStatusFor(StatusCode code);

}  // namespace boxd::server
