// libFuzzer target: the parsers of what a client controls in a request —
// the path (routing), the query string, If-Match, Authorization,
// X-Request-Id, and the strict parse of a JSON body (core/json.h). They run
// before any authentication, on every request. Checked beyond "no crash, no
// sanitizer report": a refused query is an InvalidArgument with a message; a
// route's path parameters are URL-safe ids; the access log's list of query
// keys holds no '=' (no value); on any valid JSON, the nesting scan measures
// the depth nlohmann/json's parser finds; the strict parse accepts exactly
// the NUL-free text the parser reads as JSON within the depth limit, with the
// same value, and refuses the rest with "malformed JSON…".
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/json.h"
#include "http/request_parsing.h"
#include "http/router.h"
#include "require.h"

namespace {

using kura::StatusCode;
using namespace kura::http;

// The deepest nesting of containers the parser reads in valid JSON text —
// from its SAX events, not the parsed value: of a key given twice the value
// keeps only the last, which may be shallower than the first.
struct DepthReader : nlohmann::json_sax<nlohmann::json> {
  int depth = 0;
  int deepest = 0;
  bool Open() {
    deepest = std::max(deepest, ++depth);
    return true;
  }
  bool Close() {
    --depth;
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

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
    for (int i = 0; i < match.param_count; ++i) FUZZ_REQUIRE(IsUrlSafeId(match.params[i]));
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
    FUZZ_REQUIRE(parsed.code() == StatusCode::kInvalidArgument);
    FUZZ_REQUIRE(!parsed.message().empty());
  } else if (params.limit) {
    FUZZ_REQUIRE(*params.limit >= 1);
  }
  FUZZ_REQUIRE(QueryKeysForLog(text).find('=') == std::string::npos);
  (void)PercentDecode(text, selector & 16);

  // Headers.
  const auto if_match = ParseIfMatch(text);
  if (if_match.ok() && if_match->has_value()) FUZZ_REQUIRE(**if_match >= 1);
  (void)ParseBearer(text);
  (void)ParseNegotiate(text);
  (void)HasAuthScheme(text, "Bearer");
  (void)IsValidRequestId(text);

  // A JSON body's nesting, against the parser's own reading of valid JSON.
  // Not for text with a NUL byte, which the parser takes for the end of its
  // input: the strict parse refuses it.
  const bool has_nul = text.find('\0') != std::string_view::npos;
  const nlohmann::json body = !has_nul ? nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false)
                                       : nlohmann::json(nlohmann::json::value_t::discarded);
  const auto strict = kura::ParseUntrustedJson(text);
  if (!body.is_discarded()) {
    DepthReader reader;
    FUZZ_REQUIRE(nlohmann::json::sax_parse(text, &reader));
    const int depth = reader.deepest;
    FUZZ_REQUIRE(kura::JsonDepthWithin(text, depth));
    FUZZ_REQUIRE(depth == 0 || !kura::JsonDepthWithin(text, depth - 1));
    FUZZ_REQUIRE(strict.ok() == (depth <= kura::kMaxJsonDepth));
    if (strict.ok()) FUZZ_REQUIRE(*strict == body);
  } else {
    FUZZ_REQUIRE(!strict.ok());
  }
  if (!strict.ok()) {
    FUZZ_REQUIRE(strict.status().code() == StatusCode::kInvalidArgument);
    FUZZ_REQUIRE(strict.status().message().rfind("malformed JSON", 0) == 0);
  }
  return 0;
}
