// libFuzzer target: a collection's schema (the body of PUT …/collections/{c})
// and a record's data checked against it (the body of POST …/records), both
// straight from a client. The input is the schema's JSON text, a NUL byte,
// then the record data's JSON text.
// Checked beyond "no crash, no sanitizer report" (an exception escaping is a
// crash here): refusals are InvalidArgument with a message; an accepted
// schema survives its stored form (SchemaToJson, parsed again, is the same
// schema); accepted data is returned as the compact JSON text of that data;
// and a lookup finds what was stored: for every indexed field of accepted
// data, the query value (the string itself, or the JSON text of a number or
// boolean) normalises to what the blind index was computed over.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "require.h"
#include "vault/schema.h"

namespace {

void RequireRefusal(const kura::Status& status) {
  FUZZ_REQUIRE(status.code() == kura::StatusCode::kInvalidArgument);
  FUZZ_REQUIRE(!status.message().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  const std::string_view schema_text = input.substr(0, split);
  const std::string_view data_text = split == std::string_view::npos ? "{}" : input.substr(split + 1);

  // As the server parses bodies: no exceptions.
  const nlohmann::json schema_body = nlohmann::json::parse(schema_text, nullptr, /*allow_exceptions=*/false);
  if (schema_body.is_discarded()) return 0;
  const kura::Result<kura::vault::CollectionSchema> schema = kura::vault::ParseSchema(schema_body);
  if (!schema.ok()) {
    RequireRefusal(schema.status());
    return 0;
  }
  const nlohmann::json stored = kura::vault::SchemaToJson(*schema);
  const kura::Result<kura::vault::CollectionSchema> reread = kura::vault::ParseSchema(stored);
  FUZZ_REQUIRE(reread.ok());
  FUZZ_REQUIRE(kura::vault::SchemaToJson(*reread) == stored);

  const nlohmann::json record = nlohmann::json::parse(data_text, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) return 0;
  const kura::Result<std::string> text = kura::vault::ValidateRecordData(*schema, record);
  if (!text.ok()) {
    RequireRefusal(text.status());
    return 0;
  }
  FUZZ_REQUIRE(nlohmann::json::parse(*text, nullptr, false) == record);

  for (const auto& [name, field] : schema->fields) {
    if (!field.index || !record.contains(name) || record[name].is_null()) continue;
    const nlohmann::json& value = record[name];
    const std::string query = value.is_string() ? value.get<std::string>() : value.dump();
    const kura::Result<std::string> looked_up = kura::vault::NormaliseQueryValue(field, query);
    FUZZ_REQUIRE(looked_up.ok() && *looked_up == kura::vault::NormaliseIndexValue(field.type, value));
  }
  return 0;
}
