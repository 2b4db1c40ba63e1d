#include "core/json.h"

#include <string>

namespace kura {

bool JsonDepthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_depth) return false;
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return true;
}

Result<nlohmann::json> ParseUntrustedJson(std::string_view text, int max_depth) {
  if (!JsonDepthWithin(text, max_depth)) {
    return InvalidArgumentError("malformed JSON: nested deeper than " + std::to_string(max_depth) + " levels");
  }
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return InvalidArgumentError("malformed JSON at byte " + std::to_string(nul + 1));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return InvalidArgumentError("malformed JSON at byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::out_of_range&) {
    // 1e999: thrown instead of a parse_error, and its message quotes the number.
    return InvalidArgumentError("malformed JSON: a number is out of range");
  }
}

}  // namespace kura
