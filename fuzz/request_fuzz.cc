// libFuzzer target: the parsers of what a client controls in a request —
// the path (routing), the query string, If-Match, Authorization and
// X-Request-Id. They run before any authentication, on every request.
// Checked beyond "no crash, no sanitizer report": a refused query is an
// InvalidArgument with a message; a route's path parameters are URL-safe ids;
// the access log's list of query keys holds no '=' (no value).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/request_parsing.h"
#include "http/router.h"

namespace {

using kura::StatusCode;
using namespace kura::http;

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const Router router;
  const std::uint8_t selector = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  // Routing: any method, the text as the path.
  const Method method = static_cast<Method>(selector % (static_cast<int>(Method::kOther) + 1));
  const RouteMatch match = router.Match(method, text);
  if (match.kind == RouteMatch::Kind::kFound) {
    for (int i = 0; i < match.param_count; ++i) Require(IsUrlSafeId(match.params[i]));
  }

  // The query string, for a route of every kind of traits.
  RouteTraits traits;
  traits.paging = selector & 1;
  traits.version = selector & 2;
  traits.filters = selector & 4;
  traits.all_params = selector & 8;
  QueryParams params;
  const kura::Status parsed = ParseQuery(text, traits, &params);
  if (!parsed.ok()) {
    Require(parsed.code() == StatusCode::kInvalidArgument);
    Require(!parsed.message().empty());
  } else if (params.limit) {
    Require(*params.limit >= 1);
  }
  Require(QueryKeysForLog(text).find('=') == std::string::npos);
  (void)PercentDecode(text, selector & 16);

  // Headers.
  const auto if_match = ParseIfMatch(text);
  if (if_match.ok() && if_match->has_value()) Require(**if_match >= 1);
  (void)ParseBearer(text);
  (void)ParseNegotiate(text);
  (void)HasAuthScheme(text, "Bearer");
  (void)IsValidRequestId(text);
  return 0;
}
