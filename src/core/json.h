// JSON text from outside kura — a request body, a lookup value, the CLI's
// --data — parsed strictly. nlohmann/json alone would accept or throw on input
// that must be refused with a clear error: it takes a raw NUL byte for the end
// of its input (so `{...}\0junk` parses, the rest silently dropped), throws
// out_of_range for a number beyond a double, and its messages quote the input,
// which may be personal data. Every such parse goes through here so the rules
// and the messages are the same everywhere.
#ifndef KURA_CORE_JSON_H_
#define KURA_CORE_JSON_H_

#include <nlohmann/json.hpp>
#include <string_view>

#include "core/status.h"

namespace kura {

// Deeper nesting is refused before parsing, so a body of a million '[' cannot
// exhaust the stack of a recursive consumer.
inline constexpr int kMaxJsonDepth = 64;

// Whether the text's JSON nesting stays within `max_depth` (a linear scan that
// understands strings and escapes; it does not validate the JSON).
bool JsonDepthWithin(std::string_view text, int max_depth);

// The JSON value of `text`, or InvalidArgument "malformed JSON at byte N",
// "malformed JSON: nested deeper than N levels" or "malformed JSON: a number
// is out of range" — a position or a reason, never the text.
Result<nlohmann::json> ParseUntrustedJson(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace kura

#endif  // KURA_CORE_JSON_H_
