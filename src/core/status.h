// kura::Status and kura::Result<T>: the error model of every module.
//
// Every fallible function returns a Status or a Result<T>; no exception crosses a
// module boundary. Result<T> mirrors C++23 std::expected so a later switch is
// mechanical. Messages must never carry keys, tokens, passwords or field values:
// they end up in HTTP responses and logs.
//
// Thread safety: plain values; safe to copy between threads.
#ifndef KURA_CORE_STATUS_H_
#define KURA_CORE_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kura {

// Kept deliberately small. Only the http module maps these to HTTP statuses:
//   kInvalidArgument 400, kUnauthenticated 401, kPermissionDenied 403,
//   kNotFound 404, kAlreadyExists 409, kAborted 409 (version conflict),
//   kResourceExhausted 429, kFailedPrecondition 503 (sealed),
//   kUnavailable 503, kDataLoss 500, kInternal 500.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kAborted,            // optimistic concurrency: stale If-Match / version
  kUnauthenticated,
  kPermissionDenied,
  kFailedPrecondition, // the vault is sealed or not initialised
  kResourceExhausted,
  kDataLoss,           // corruption or tampering detected (AEAD tag, checksum)
  kUnavailable,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Explicitly discard a Status whose failure is handled elsewhere.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status AbortedError(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status UnauthenticatedError(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status PermissionDeniedError(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                 // NOLINT: implicit like expected
  Result(Status status) : v_(std::move(status)) {           // NOLINT
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // Precondition: ok(). Checked: a broken invariant aborts rather than reading garbage.
  T& value() & { Check(); return std::get<T>(v_); }
  const T& value() const& { Check(); return std::get<T>(v_); }
  T&& value() && { Check(); return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

 private:
  void Check() const {
    if (!ok()) std::abort();
  }
  std::variant<T, Status> v_;
};

}  // namespace kura

// Propagates a non-OK Status from an expression returning Status.
#define KURA_RETURN_IF_ERROR(expr)                   \
  do {                                               \
    ::kura::Status kura_status_ = (expr);            \
    if (!kura_status_.ok()) return kura_status_;     \
  } while (0)

#define KURA_CONCAT_INNER_(a, b) a##b
#define KURA_CONCAT_(a, b) KURA_CONCAT_INNER_(a, b)
// KURA_ASSIGN_OR_RETURN(auto x, Foo()); declares x from a Result or returns its Status.
#define KURA_ASSIGN_OR_RETURN(decl, expr) \
  KURA_ASSIGN_OR_RETURN_IMPL_(KURA_CONCAT_(kura_result_, __LINE__), decl, expr)
#define KURA_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  decl = std::move(tmp).value()

#endif  // KURA_CORE_STATUS_H_
