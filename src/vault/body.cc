#include "vault/body.h"

#include <cstdio>

#include "crypto/random.h"

namespace kura::vault {

using nlohmann::json;

namespace {

// A record's data is written as compact JSON on every write, to be sealed,
// and a read's reply around it. nlohmann's dump() decodes every byte of every
// string through its UTF-8 state machine and writes structural characters one
// virtual call at a time: about 5 % of a create's request-thread time (perf),
// 2.2 µs for the bench record's data alone (kura_micro_bench). This writes the same bytes
// (the test compares the two on every kind of value) and copies runs of
// ordinary ASCII at once. What it does not do itself it hands to the library:
// strings with non-ASCII bytes (they need the UTF-8 check, and the library's
// error on invalid UTF-8) and floating-point numbers (its shortest
// round-trip formatting).
void AppendEscapedAscii(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(esc, sizeof esc);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  if (IsAscii(s)) {
    AppendEscapedAscii(s, out);
  } else {
    *out += json(std::string(s)).dump();  // throws json::type_error on invalid UTF-8
  }
}

void AppendCompactJson(const json& v, std::string* out) {
  switch (v.type()) {
    case json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, value] : v.items()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(key, out);
        out->push_back(':');
        AppendCompactJson(value, out);
      }
      out->push_back('}');
      return;
    }
    case json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const json& element : v) {
        if (!first) out->push_back(',');
        first = false;
        AppendCompactJson(element, out);
      }
      out->push_back(']');
      return;
    }
    case json::value_t::string:
      AppendJsonString(v.get_ref<const std::string&>(), out);
      return;
    case json::value_t::boolean:
      out->append(v.get<bool>() ? "true" : "false");
      return;
    case json::value_t::null:
      out->append("null");
      return;
    case json::value_t::number_integer:
      out->append(std::to_string(v.get<std::int64_t>()));
      return;
    case json::value_t::number_unsigned:
      out->append(std::to_string(v.get<std::uint64_t>()));
      return;
    default:  // floating point, binary, discarded
      *out += v.dump();
      return;
  }
}

Status CheckObject(const json& body, std::initializer_list<std::string_view> allowed) {
  if (!body.is_object()) return InvalidArgumentError(std::string("body: expected an object, got ") + body.type_name());
  for (const auto& [key, value] : body.items()) {
    (void)value;
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    if (!known) return InvalidArgumentError(key.substr(0, 64) + ": unknown key");
  }
  return Status::Ok();
}

Result<std::string> RequiredString(const json& body, std::string_view key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return InvalidArgumentError(std::string(key) + ": required");
  if (!it->is_string()) {
    return InvalidArgumentError(std::string(key) + ": expected a string, got " + it->type_name());
  }
  return it->get<std::string>();
}

Result<std::optional<std::string>> OptionalString(const json& body, std::string_view key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return InvalidArgumentError(std::string(key) + ": expected a string, got " + it->type_name());
  }
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<std::int64_t>> OptionalInteger(const json& body, std::string_view key) {
  auto it = body.find(key);
  if (it == body.end()) return std::optional<std::int64_t>();
  if (!it->is_number_integer()) {
    return InvalidArgumentError(std::string(key) + ": expected an integer, got " + it->type_name());
  }
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    return InvalidArgumentError(std::string(key) + ": out of range");
  }
  return std::optional<std::int64_t>(it->get<std::int64_t>());
}

json TimeJson(std::optional<std::int64_t> unix_seconds) {
  if (!unix_seconds) return nullptr;
  return FormatRfc3339(FromUnixSeconds(*unix_seconds));
}

bool IsValidRecordId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// 12 hex digits of the creation time in milliseconds, then base64url of
// `random_bytes` random bytes (records: 10, i.e. 80 bits). Ids of records created close in time
// sort together, so concurrent inserts land on the same few B-tree pages and a
// group commit writes a handful of pages instead of one scattered page per
// index per record (measured: about 11 page writes per create with random
// ids). The time prefix reveals no more than `created_at` already does. A hex
// first character also keeps an id from being mistaken for a CLI option.
std::string NewTimeOrderedId(TimePoint now, std::size_t random_bytes) {
  auto millis = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  char prefix[13];
  std::snprintf(prefix, sizeof prefix, "%012llx",
                static_cast<unsigned long long>(millis & 0xffffffffffffULL));
  Bytes random(random_bytes);
  crypto::PublicRandomBytes(random.data(), random.size());
  return std::string(prefix) + Base64UrlEncode(random);
}

std::vector<std::string> ParseStringArray(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!doc.is_array()) return out;
  for (const json& v : doc) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace kura::vault
