// libFuzzer target: the parsers of what a client controls in a request —
// the path (routing), the query string, If-Match, Authorization,
// X-Request-Id, and the nesting check of a JSON body. They run before any
// authentication, on every request. Checked beyond "no crash, no sanitizer
// report": a refused query is an InvalidArgument with a message; a route's
// path parameters are URL-safe ids; the access log's list of query keys holds
// no '=' (no value); on any valid JSON, the nesting scan measures the depth
// nlohmann/json's parser finds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "http/request_parsing.h"
#include "http/router.h"

namespace {

using kura::StatusCode;
using namespace kura::http;

void Require(bool condition) {
  if (!condition) std::abort();
}

// Containers nested in `value`, itself included.
int Depth(const nlohmann::json& value) {
  if (!value.is_object() && !value.is_array()) return 0;
  int deepest = 0;
  for (const auto& member : value) deepest = std::max(deepest, Depth(member));
  return deepest + 1;
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

  // A JSON body's nesting, against the parser's own reading of valid JSON.
  // Not for text with a NUL byte, which the parser takes for the end of its
  // input: the server refuses such a body before parsing it.
  const nlohmann::json body = text.find('\0') == std::string_view::npos
                                  ? nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false)
                                  : nlohmann::json(nlohmann::json::value_t::discarded);
  if (!body.is_discarded()) {
    const int depth = Depth(body);
    Require(JsonDepthWithin(text, depth));
    Require(depth == 0 || !JsonDepthWithin(text, depth - 1));
  }
  return 0;
}
