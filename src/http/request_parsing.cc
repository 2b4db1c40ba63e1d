#include "http/request_parsing.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>

#include "crypto/random.h"

namespace kura::http {
namespace {

int HexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

template <typename Int>
std::optional<Int> ParseDecimal(std::string_view text) {
  Int value{};
  if (text.empty() || text.size() > 19) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// For messages: a key is echoed only if it is a plain name.
std::string KeyForMessage(std::string_view key) {
  if (!IsUrlSafeId(key)) return "(unprintable)";
  std::string quoted(1, '\'');
  quoted.append(key);
  quoted.push_back('\'');
  return quoted;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (ch == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

Status ParseQuery(std::string_view query, const RouteTraits& traits, QueryParams* out) {
  bool seen_limit = false;
  bool seen_after = false;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string_view raw_key = pair.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::optional<std::string> key = PercentDecode(raw_key, true);
    std::optional<std::string> value = PercentDecode(raw_value, true);
    if (!key || !value) return InvalidArgumentError("malformed percent-encoding in query string");
    if (key->empty()) return InvalidArgumentError("empty query parameter name");

    if (traits.all_params) {
      if (out->filters.count(*key) != 0) {
        return InvalidArgumentError("query parameter " + KeyForMessage(*key) + " given twice");
      }
      out->filters.emplace(std::move(*key), std::move(*value));
    } else if (*key == "limit" && traits.paging) {
      if (seen_limit) return InvalidArgumentError("query parameter 'limit' given twice");
      seen_limit = true;
      std::optional<int> limit = ParseDecimal<int>(*value);
      if (!limit || *limit < 1) return InvalidArgumentError("query parameter 'limit' must be a positive integer");
      out->limit = *limit;
    } else if (*key == "after" && traits.paging) {
      if (seen_after) return InvalidArgumentError("query parameter 'after' given twice");
      seen_after = true;
      out->after = std::move(*value);
    } else if (*key == "version" && traits.version) {
      if (out->version) return InvalidArgumentError("query parameter 'version' given twice");
      std::optional<std::int64_t> version = ParseDecimal<std::int64_t>(*value);
      if (!version || *version < 1) return InvalidArgumentError("query parameter 'version' must be a positive integer");
      out->version = *version;
    } else if (traits.filters && *key != "limit" && *key != "after" && *key != "version") {
      if (out->filters.count(*key) != 0) {
        return InvalidArgumentError("query parameter " + KeyForMessage(*key) + " given twice");
      }
      out->filters.emplace(std::move(*key), std::move(*value));
    } else {
      return InvalidArgumentError("unknown query parameter " + KeyForMessage(*key));
    }
  }
  return Status::Ok();
}

std::string QueryKeysForLog(std::string_view query) {
  std::string keys;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::string_view key = pair.substr(0, pair.find('='));
    if (!keys.empty()) keys += ',';
    // Raw (still escaped) key, with anything outside a plain name replaced,
    // so a crafted key cannot forge log fields.
    for (char ch : key.substr(0, 64)) {
      const bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                         ch == '_' || ch == '-' || ch == '.' || ch == '%';
      keys += plain ? ch : '?';
    }
  }
  return keys;
}

Result<std::optional<std::int64_t>> ParseIfMatch(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty() || value == "*") return std::optional<std::int64_t>();
  if (value.size() < 3 || value.front() != '"' || value.back() != '"') {
    return InvalidArgumentError("If-Match must be a quoted version, e.g. \"3\"");
  }
  std::optional<std::int64_t> version = ParseDecimal<std::int64_t>(value.substr(1, value.size() - 2));
  if (!version || *version < 1) return InvalidArgumentError("If-Match must be a quoted version, e.g. \"3\"");
  return std::optional<std::int64_t>(*version);
}

bool HasAuthScheme(std::string_view authorization, std::string_view scheme) {
  if (authorization.size() <= scheme.size() || authorization[scheme.size()] != ' ') return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char ch = authorization[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != scheme[i]) return false;
  }
  return true;
}

Result<std::string_view> ParseNegotiate(std::string_view authorization) {
  if (!HasAuthScheme(authorization, "negotiate")) return UnauthenticatedError("malformed Authorization header");
  std::string_view token = authorization.substr(10);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  // RFC 4559: base64 of the GSSAPI token. Kerberos tickets with a PAC stay
  // well under this bound.
  constexpr std::size_t kMaxNegotiateToken = 16 * 1024;
  if (token.empty() || token.size() > kMaxNegotiateToken) return UnauthenticatedError("malformed Authorization header");
  for (char ch : token) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '+' ||
                    ch == '/' || ch == '=';
    if (!ok) return UnauthenticatedError("malformed Authorization header");
  }
  return token;
}

Result<std::string_view> ParseBearer(std::string_view authorization) {
  if (authorization.empty()) return UnauthenticatedError("missing bearer token");
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return UnauthenticatedError("malformed Authorization header");
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char ch = authorization[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != kScheme[i]) return UnauthenticatedError("malformed Authorization header");
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  // RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
  if (token.empty() || token.size() > 512) return UnauthenticatedError("malformed Authorization header");
  std::size_t i = 0;
  for (; i < token.size(); ++i) {
    char ch = token[i];
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/';
    if (!ok) break;
  }
  if (i == 0) return UnauthenticatedError("malformed Authorization header");
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return UnauthenticatedError("malformed Authorization header");
  }
  return token;
}

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '.' || ch == '_' || ch == '~';
    if (!ok) return false;
  }
  return true;
}

void NewRequestId(std::string* out) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  constexpr std::size_t kChars = 15;
  std::array<std::uint8_t, kChars> random;
  crypto::PublicRandomBytes(random.data(), random.size());
  out->resize(kChars);
  for (std::size_t i = 0; i < kChars; ++i) (*out)[i] = kAlphabet[random[i] & 63];
}

}  // namespace kura::http
