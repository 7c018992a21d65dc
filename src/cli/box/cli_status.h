// CliStatus: the box CLI's error vocabulary. A failure carries the message printed as
// "box: <message>" and the exit code it maps to, because the exit code is part of every
// command's contract (scripts branch on "cannot connect" versus "unauthenticated").
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace boxd::cli {

enum class ExitCode : int {
  kOk = 0,
  kFailed = 1,            // the API answered with an error, or a local step failed
  kUsage = 2,             // bad flags or arguments; also features that do not exist yet
  kCannotConnect = 3,     // no answer from the server at all
  kUnauthenticated = 4,   // HTTP 401: missing, unknown or revoked token
};

class [[nodiscard]] CliStatus {
 public:
  CliStatus() = default;
  CliStatus(ExitCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == ExitCode::kOk; }
  ExitCode code() const { return code_; }
  int exitCode() const { return static_cast<int>(code_); }
  const std::string& message() const { return message_; }
  // The API's error code ("not_found", ...) and HTTP status when the server answered.
  const std::string& apiCode() const { return api_code_; }
  long httpStatus() const { return http_status_; }
  CliStatus& setApiError(long http_status, std::string api_code) {
    http_status_ = http_status;
    api_code_ = std::move(api_code);
    return *this;
  }
  // Prefixes context, keeping the code: "box b-1: " + message.
  CliStatus withContext(std::string_view context) const {
    CliStatus s = *this;
    s.message_ = std::string(context) + ": " + message_;
    return s;
  }

 private:
  ExitCode code_ = ExitCode::kOk;
  std::string message_;
  std::string api_code_;
  long http_status_ = 0;
};

inline CliStatus usageError(std::string m) { return {ExitCode::kUsage, std::move(m)}; }
inline CliStatus failure(std::string m) { return {ExitCode::kFailed, std::move(m)}; }
// Converts an errno at the syscall seam: "open ./out: No such file or directory".
CliStatus errnoFailure(std::string_view what, int err);

template <typename T>
class [[nodiscard]] CliStatusOr {
 public:
  CliStatusOr(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  CliStatusOr(CliStatus status) : v_(std::move(status)) { assert(!std::get<CliStatus>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  CliStatus status() const { return ok() ? CliStatus() : std::get<CliStatus>(v_); }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, CliStatus> v_;
};

}  // namespace boxd::cli

#define BOX_CLI_CONCAT_INNER(a, b) a##b
#define BOX_CLI_CONCAT(a, b) BOX_CLI_CONCAT_INNER(a, b)
#define CLI_RETURN_IF_ERROR(expr)                        \
  do {                                                   \
    ::boxd::cli::CliStatus box_cli_status_ = (expr);     \
    if (!box_cli_status_.ok()) return box_cli_status_;  \
  } while (0)
#define CLI_ASSIGN_OR_RETURN(lhs, expr) CLI_ASSIGN_OR_RETURN_IMPL(BOX_CLI_CONCAT(box_cli_sor_, __LINE__), lhs, expr)
#define CLI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
