// Parsing of the parts of an HTTP request kura reads: query strings, If-Match,
// Authorization: Bearer, X-Request-Id. Pure functions; internal to http. (A
// body's JSON is parsed by core/json.h's ParseUntrustedJson.)
//
// Thread safety: pure functions (NewRequestId uses a per-thread buffer).
#ifndef KURA_HTTP_REQUEST_PARSING_H_
#define KURA_HTTP_REQUEST_PARSING_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "http/router.h"

namespace kura::http {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as HTML forms
// and most HTTP stacks do for query strings; send %2B for a literal '+').
// nullopt on a malformed escape ("%G1", a trailing "%4").
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

struct QueryParams {
  std::optional<int> limit;
  std::string after;
  std::optional<std::int64_t> version;
  std::map<std::string, std::string> filters;  // field name → value (decoded)
};

// Parses `query` (without the '?') for a route with `traits`. InvalidArgument
// for bad escapes, duplicate keys, non-numeric or out-of-range limit/version,
// and keys the route does not take. Messages name keys, never values.
Status ParseQuery(std::string_view query, const RouteTraits& traits, QueryParams* out);

// The query's keys for the access log ("email,limit"): never the values,
// which may be personal data (lookups by e-mail address).
std::string QueryKeysForLog(std::string_view query);

// If-Match: `"N"` (N ≥ 1) → N; absent/empty or `*` → nullopt (unconditional).
// InvalidArgument for anything else (weak tags, lists, garbage).
Result<std::optional<std::int64_t>> ParseIfMatch(std::string_view value);

// Whether the header uses `scheme` (lower case, e.g. "negotiate"): the
// scheme's name, case-insensitively, then a space.
bool HasAuthScheme(std::string_view authorization, std::string_view scheme);
// The base64 token of "Negotiate <token>" (RFC 4559). Unauthenticated when
// malformed or longer than 16 KiB.
Result<std::string_view> ParseNegotiate(std::string_view authorization);
// Authorization: "Bearer <token68>" (scheme case-insensitive). Unauthenticated
// when missing or malformed; the message never contains the header.
Result<std::string_view> ParseBearer(std::string_view authorization);

// A client-supplied X-Request-Id is echoed only if it is 1–64 URL-safe
// characters ([A-Za-z0-9._~-]), so it cannot inject into logs or headers.
bool IsValidRequestId(std::string_view id);

// A fresh random request id: 15 base64url characters (90 bits), drawn from a
// per-thread buffer filled by the OS CSPRNG, so it costs no lock and no
// allocation (it fits the small-string buffer).
void NewRequestId(std::string* out);

}  // namespace kura::http

#endif  // KURA_HTTP_REQUEST_PARSING_H_
