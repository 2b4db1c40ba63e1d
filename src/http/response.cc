#include "http/response.h"

#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/log.h"

namespace kura::http {
void AppendInt(std::int64_t value, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, end);
}

namespace {

// RFC 9110 Date, formatted at most once per second per thread.
std::string_view HttpDate() {
  thread_local std::time_t cached_second = 0;
  thread_local char text[40];
  thread_local std::size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {text, length};
}

}  // namespace

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kFailedPrecondition:
      return 503;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDataLoss:
      return 500;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view ReasonPhrase(int http_status) {
  switch (http_status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

Response ErrorResponse(int http_status, std::string_view code, std::string_view message, std::string_view request_id) {
  Response r;
  r.status = http_status;
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}, {"request_id", request_id}}}};
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response StatusResponse(const Status& status, std::string_view request_id) {
  const int http_status = HttpStatusFor(status.code());
  std::string_view message = status.message();
  if (status.code() == StatusCode::kInternal) {
    log::Error("request " + std::string(request_id) + ": internal error: " + status.message());
    message = "internal error; quote the request id to the operator";
  }
  Response r = ErrorResponse(http_status, StatusCodeName(status.code()), message, request_id);
  switch (status.code()) {
    case StatusCode::kUnauthenticated:
      r.www_authenticate = R"(Bearer realm="kura", error="invalid_token")";
      break;
    case StatusCode::kFailedPrecondition:
      r.retry_after = 5;  // sealed: an operator has to act; do not hammer
      break;
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
      r.retry_after = 1;
      break;
    default:
      break;
  }
  return r;
}

void SerializeResponse(const Response& response, const ResponseMeta& meta, std::string* out) {
  out->append("HTTP/1.1 ");
  AppendInt(response.status, out);
  out->push_back(' ');
  out->append(ReasonPhrase(response.status));
  out->append("\r\nDate: ");
  out->append(HttpDate());
  if (response.status != 204) {
    out->append("\r\nContent-Type: application/json\r\nContent-Length: ");
    AppendInt(static_cast<std::int64_t>(response.body.size()), out);
  }
  out->append("\r\nX-Request-Id: ");
  out->append(meta.request_id);
  // Responses carry personal data: no shared or browser cache may keep them.
  out->append("\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff");
  if (!meta.hsts.empty()) {
    out->append("\r\nStrict-Transport-Security: ");
    out->append(meta.hsts);
  }
  if (response.etag) {
    out->append("\r\nETag: \"");
    AppendInt(*response.etag, out);
    out->push_back('"');
  }
  if (!response.allow.empty()) {
    out->append("\r\nAllow: ");
    out->append(response.allow);
  }
  if (!response.www_authenticate.empty()) {
    out->append("\r\nWWW-Authenticate: ");
    out->append(response.www_authenticate);
  }
  if (response.retry_after > 0) {
    out->append("\r\nRetry-After: ");
    AppendInt(response.retry_after, out);
  }
  if (!meta.keep_alive || response.close) out->append("\r\nConnection: close");
  out->append("\r\n\r\n");
  if (response.status != 204 && !meta.head) out->append(response.body);
}

}  // namespace kura::http
