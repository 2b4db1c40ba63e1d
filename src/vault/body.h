// Helpers for reading request bodies: type checks with messages that name the
// member and never echo its value. Module-internal.
#ifndef KURA_VAULT_BODY_H_
#define KURA_VAULT_BODY_H_

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace kura::vault {

// InvalidArgument unless `body` is an object whose keys are all in `allowed`.
Status CheckObject(const nlohmann::json& body, std::initializer_list<std::string_view> allowed);

// A required string member. InvalidArgument when absent or not a string.
Result<std::string> RequiredString(const nlohmann::json& body, std::string_view key);
// An optional string member: nullopt when absent or null.
Result<std::optional<std::string>> OptionalString(const nlohmann::json& body, std::string_view key);
// An optional integer member: nullopt when absent.
Result<std::optional<std::int64_t>> OptionalInteger(const nlohmann::json& body, std::string_view key);

// Compact JSON text, byte for byte what nlohmann's dump() writes (keys in
// order, no whitespace, non-ASCII as UTF-8), appended to `out`, only faster.
// Throws nlohmann::json::type_error on a string that is not valid UTF-8, as
// dump() does.
void AppendCompactJson(const nlohmann::json& value, std::string* out);
void AppendJsonString(std::string_view s, std::string* out);

// RFC 3339 text of a unix time, or null.
nlohmann::json TimeJson(std::optional<std::int64_t> unix_seconds);

// The strings of a stored JSON array text (roles, collections, hashes);
// other members and malformed text give nothing.
std::vector<std::string> ParseStringArray(const std::string& text);

// A fresh id that sorts by creation time (records, access requests): 12
// lowercase hex digits of `now` in milliseconds, then base64url of
// `random_bytes` random bytes. Ids made close in time sort together (B-tree
// locality); the prefix reveals only the creation time.
std::string NewTimeOrderedId(TimePoint now, std::size_t random_bytes);

// Whether a record id or pagination cursor is URL-safe: 1–64 of
// [A-Za-z0-9_-].
bool IsValidRecordId(std::string_view id);

}  // namespace kura::vault

#endif  // KURA_VAULT_BODY_H_
