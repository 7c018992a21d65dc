// Status and StatusOr: the error vocabulary used across every component boundary.
// Codes follow Abseil's retry semantics (see ../shared/STYLE.md): kUnavailable = retry the
// call, kAborted = retry the operation, kFailedPrecondition = fix state first,
// kInvalidArgument = caller's fault.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace boxd {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kFailedPrecondition,
  kResourceExhausted,
  kAborted,
  kUnavailable,
  kDeadlineExceeded,
  kUnimplemented,
  kInternal,
};

// Stable lower_snake names, used in JSON errors and logs.
std::string_view statusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "code: message", for logs and CLI output.
  std::string toString() const;
  // Prefixes context, keeping the code: "start box b-1: " + message.
  Status withContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status okStatus() { return Status(); }
inline Status invalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status failedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status resourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status internalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status permissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status deadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }

// Converts an errno at the syscall seam: "mount /workspace: Operation not permitted".
// The code is chosen from the errno (EPERM/EACCES -> kPermissionDenied, ENOENT -> kNotFound,
// EAGAIN/EBUSY -> kUnavailable, ENOMEM/ENOSPC -> kResourceExhausted, EINVAL -> kInvalidArgument,
// else kInternal).
Status errnoStatus(std::string_view what, int err);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}                       // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace boxd

// Early-return helpers. RETURN_IF_ERROR(expr) propagates a non-OK Status.
#define BOXD_CONCAT_INNER(a, b) a##b
#define BOXD_CONCAT(a, b) BOXD_CONCAT_INNER(a, b)
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::boxd::Status boxd_status_ = (expr);     \
    if (!boxd_status_.ok()) return boxd_status_; \
  } while (0)
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(BOXD_CONCAT(boxd_sor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
