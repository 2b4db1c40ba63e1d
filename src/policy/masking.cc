// Field masking (SPEC §2). Masks count characters as Unicode code points, not
// bytes, so a masked multi-byte value never shows a cut-off UTF-8 sequence and
// the number of '*' matches what a reader sees as characters.
#include <nlohmann/json.hpp>

#include "policy/policy.h"

namespace kura::policy {
namespace {

constexpr std::string_view kStar = "*";
constexpr std::string_view kOpaque = "***";

// Splits UTF-8 text into code points (each a byte slice). A byte that does not
// start a well-formed sequence counts as one character on its own, so
// malformed input is still masked rather than passed through.
std::vector<std::string_view> CodePoints(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
    } else if (b >= 0xE0) {
      len = b <= 0xEF ? 3 : 1;
    } else if (b >= 0xC2) {
      len = 2;
    }
    if (i + len > s.size()) len = 1;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        len = 1;
        break;
      }
    }
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string Stars(std::size_t n) {
  std::string out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out += kStar;
  return out;
}

// "John" → "J**n"; 1–2 characters reveal nothing.
std::string MaskPartial(std::string_view s) {
  auto cps = CodePoints(s);
  if (cps.size() <= 2) return Stars(cps.size());
  std::string out(cps.front());
  out += Stars(cps.size() - 2);
  out += cps.back();
  return out;
}

// "alice@example.com" → "a****@example.com". A one-character local part is
// fully masked. Anything that is not local@domain falls back to partial.
std::string MaskEmail(std::string_view s) {
  auto at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return MaskPartial(s);
  std::string_view local = s.substr(0, at);
  std::string_view domain = s.substr(at);  // includes '@'
  auto cps = CodePoints(local);
  std::string out;
  if (cps.size() == 1) {
    out = kStar;
  } else {
    out = std::string(cps.front());
    out += Stars(cps.size() - 1);
  }
  out += domain;
  return out;
}

// "+81 90 1234 5678" → "************5678"; four or fewer characters → all '*'.
std::string MaskLast4(std::string_view s) {
  auto cps = CodePoints(s);
  if (cps.size() <= 4) return Stars(cps.size());
  std::string out = Stars(cps.size() - 4);
  for (std::size_t i = cps.size() - 4; i < cps.size(); ++i) out += cps[i];
  return out;
}

std::string MaskString(MaskRule rule, std::string_view s) {
  switch (rule) {
    case MaskRule::kPartial:
      return MaskPartial(s);
    case MaskRule::kEmail:
      return MaskEmail(s);
    case MaskRule::kLast4:
      return MaskLast4(s);
    case MaskRule::kNone:
    case MaskRule::kHidden:
      break;
  }
  return std::string(s);
}

}  // namespace

std::optional<MaskRule> ParseMaskRule(std::string_view name) {
  if (name == "none") return MaskRule::kNone;
  if (name == "partial") return MaskRule::kPartial;
  if (name == "email") return MaskRule::kEmail;
  if (name == "last4") return MaskRule::kLast4;
  if (name == "hidden") return MaskRule::kHidden;
  return std::nullopt;
}

std::string_view MaskRuleName(MaskRule rule) {
  switch (rule) {
    case MaskRule::kNone:
      return "none";
    case MaskRule::kPartial:
      return "partial";
    case MaskRule::kEmail:
      return "email";
    case MaskRule::kLast4:
      return "last4";
    case MaskRule::kHidden:
      return "hidden";
  }
  return "none";
}

std::optional<nlohmann::json> MaskValue(MaskRule rule, const nlohmann::json& value) {
  if (rule == MaskRule::kNone) return value;
  if (rule == MaskRule::kHidden) return std::nullopt;
  if (value.is_string()) return nlohmann::json(MaskString(rule, value.get_ref<const std::string&>()));
  // A number is masked as its decimal text, so "last4" of a card number kept as
  // an integer still shows its last four digits. The result is a string.
  if (value.is_number()) return nlohmann::json(MaskString(rule, value.dump()));
  // Booleans, null, objects and arrays have no meaningful partial form.
  return nlohmann::json(kOpaque);
}

}  // namespace kura::policy
