// Collection schemas (SPEC §2, Appendix A) and validation of record data
// against them. Pure logic: no I/O, no keys.
//
// Schema body:
//   {"fields":{"email":{"type":"string","class":"personal","index":true,
//              "mask":"email","max_length":254}, …},
//    "required":["email"], "retention_days":365}
//   type   string|integer|number|boolean|object|array (required)
//   class  public|internal|personal|sensitive (default internal)
//   index  true for exact lookup through a blind index; scalar types only
//   mask   none|partial|email|last4|hidden (default none), applied to
//          principals whose view is masked
//   max_length  strings only: most Unicode code points a value may have
// Unknown keys anywhere are refused with InvalidArgument naming their path.
//
// Index normalisation (what the blind index is computed over, so lookups
// match regardless of spelling):
//   string   ASCII whitespace trimmed at both ends, ASCII letters lowercased
//            (other characters kept as they are)
//   integer  decimal text, e.g. "42", "-7"
//   number   integral values within ±2^53 as integer text ("42" for 42 and
//            42.0); others as JSON's shortest round-trip text ("0.5")
//   boolean  "true" | "false"
//
// Thread safety: plain values and pure functions.
#ifndef KURA_VAULT_SCHEMA_H_
#define KURA_VAULT_SCHEMA_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "policy/policy.h"

namespace kura::vault {

enum class FieldType { kString, kInteger, kNumber, kBoolean, kObject, kArray };
enum class DataClass { kPublic, kInternal, kPersonal, kSensitive };

std::string_view FieldTypeName(FieldType type);
std::string_view DataClassName(DataClass data_class);

struct FieldSchema {
  FieldType type = FieldType::kString;
  DataClass data_class = DataClass::kInternal;
  bool index = false;
  policy::MaskRule mask = policy::MaskRule::kNone;
  std::optional<std::int64_t> max_length;  // strings only
};

struct CollectionSchema {
  std::map<std::string, FieldSchema> fields;
  std::vector<std::string> required;
  std::optional<std::int64_t> retention_days;  // nullopt: kept until deleted
};

constexpr std::size_t kMaxSchemaFields = 256;
constexpr std::int64_t kMaxRetentionDays = 36500;
constexpr std::int64_t kMaxStringLength = 1 << 20;
// Upper bound of a record's data as compact JSON text. Keeps one record well
// inside the HTTP body limit and bounds the work of encrypting it.
constexpr std::size_t kMaxRecordDataBytes = 512 * 1024;

// Parses and checks a schema body. InvalidArgument naming the offending path
// ("fields.email.type: …").
Result<CollectionSchema> ParseSchema(const nlohmann::json& body);
// The stored and returned form, every default spelled out.
nlohmann::json SchemaToJson(const CollectionSchema& schema);

// Checks a record's `data` against the schema: an object, only declared
// fields, matching types (integer = a JSON integer), required fields present,
// max_length respected, at most kMaxRecordDataBytes. InvalidArgument naming
// the field; messages never contain values. Returns the data's compact JSON
// text (what a record seals; it holds the values: the caller wipes it).
Result<std::string> ValidateRecordData(const CollectionSchema& schema, const nlohmann::json& data);

// The normalised text of an indexed field's value (see above). Precondition:
// the value has passed ValidateRecordData for a scalar field.
std::string NormaliseIndexValue(FieldType type, const nlohmann::json& value);

// Normalises a lookup value given as text (a URL query parameter) for the
// field's type. InvalidArgument when it cannot be a value of that type.
Result<std::string> NormaliseQueryValue(const FieldSchema& field, std::string_view text);

// Number of Unicode code points in UTF-8 text.
std::size_t CodePointCount(std::string_view text);

}  // namespace kura::vault

#endif  // KURA_VAULT_SCHEMA_H_
