#include "vault/body.h"

#include <cstdio>

#include "crypto/random.h"

namespace kura::vault {

using nlohmann::json;

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
