// Response: what a handler answers, and its serialisation to HTTP/1.1 bytes.
// Also the one place that maps kura::StatusCode to an HTTP status and builds
// the JSON error body {"error":{"code","message","request_id"}}.
// Internal to the http module; no Beast here, so it is testable on its own.
//
// Thread safety: pure functions (the Date header cache is per thread).
#ifndef KURA_HTTP_RESPONSE_H_
#define KURA_HTTP_RESPONSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kura::http {

struct Response {
  int status = 200;
  std::string body;                   // JSON text; empty for 204
  std::optional<std::int64_t> etag;   // records: sent as ETag: "N"
  std::string_view allow;             // 405: the allowed methods
  std::string www_authenticate;       // 401: the challenge; Negotiate: the mutual-auth token
  int retry_after = 0;                // seconds; 0 = no Retry-After
  bool close = false;                 // close the connection after sending
  std::string principal = "-";        // for the access log: Principal::LogName()
};

// The mapping documented in core/status.h.
int HttpStatusFor(StatusCode code);
std::string_view ReasonPhrase(int http_status);

// {"error":{"code":…,"message":…,"request_id":…}} with the given status.
Response ErrorResponse(int http_status, std::string_view code, std::string_view message, std::string_view request_id);
// A non-OK Status as an HTTP error: status and code from the mapping;
// 401 carries WWW-Authenticate: Bearer, 503/429 carry Retry-After. Internal
// errors are logged with the request id and answered with a generic message,
// since their details help an attacker more than a client.
Response StatusResponse(const Status& status, std::string_view request_id);

struct ResponseMeta {
  std::string_view request_id;
  std::string_view hsts;  // "max-age=…; includeSubDomains", empty over plain HTTP
  bool keep_alive = true;
  // The request was HEAD (a probe's route, or a 404/405): the headers as for
  // a GET, never the content (RFC 9110 §9.3.2) — a client on a keep-alive
  // connection would read it as the start of the next answer.
  bool head = false;
};

// Appends the status line, headers and body to `out`.
void SerializeResponse(const Response& response, const ResponseMeta& meta, std::string* out);

// Appends the decimal digits of `value` (no allocation beyond `out`'s own).
void AppendInt(std::int64_t value, std::string* out);

}  // namespace kura::http

#endif  // KURA_HTTP_RESPONSE_H_
