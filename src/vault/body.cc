#include "vault/body.h"

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

}  // namespace kura::vault
