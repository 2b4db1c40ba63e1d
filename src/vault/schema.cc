#include "vault/schema.h"

#include <cmath>
#include <cstring>

#include "core/json.h"
#include "vault/body.h"

namespace kura::vault {
namespace {

using nlohmann::json;

struct TypeEntry {
  FieldType type;
  std::string_view name;
};
constexpr TypeEntry kTypes[] = {
    {FieldType::kString, "string"},   {FieldType::kInteger, "integer"}, {FieldType::kNumber, "number"},
    {FieldType::kBoolean, "boolean"}, {FieldType::kObject, "object"},   {FieldType::kArray, "array"},
};

struct ClassEntry {
  DataClass data_class;
  std::string_view name;
};
constexpr ClassEntry kClasses[] = {
    {DataClass::kPublic, "public"},
    {DataClass::kInternal, "internal"},
    {DataClass::kPersonal, "personal"},
    {DataClass::kSensitive, "sensitive"},
};

std::optional<FieldType> ParseFieldType(std::string_view name) {
  for (const auto& e : kTypes) {
    if (e.name == name) return e.type;
  }
  return std::nullopt;
}

std::optional<DataClass> ParseDataClass(std::string_view name) {
  for (const auto& e : kClasses) {
    if (e.name == name) return e.data_class;
  }
  return std::nullopt;
}

bool IsScalar(FieldType t) { return t != FieldType::kObject && t != FieldType::kArray; }

std::string TypeOf(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return v.type_name();
}

Status Invalid(const std::string& path, const std::string& what) { return InvalidArgumentError(path + ": " + what); }

Status CheckKeys(const json& object, const std::string& path, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    (void)value;
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    std::string shown = key.substr(0, 64);  // a huge key must not bloat the message
    if (!known) return Invalid(path.empty() ? shown : path + "." + shown, "unknown key");
  }
  return Status::Ok();
}

Result<FieldSchema> ParseField(const json& body, const std::string& path) {
  if (!body.is_object()) return Invalid(path, "expected an object, got " + TypeOf(body));
  KURA_RETURN_IF_ERROR(CheckKeys(body, path, {"type", "class", "index", "mask", "max_length"}));
  FieldSchema field;

  auto type = body.find("type");
  if (type == body.end()) return Invalid(path + ".type", "required");
  if (!type->is_string()) return Invalid(path + ".type", "expected a string, got " + TypeOf(*type));
  auto parsed_type = ParseFieldType(type->get_ref<const std::string&>());
  if (!parsed_type) {
    return Invalid(path + ".type", "unknown type (string|integer|number|boolean|object|array)");
  }
  field.type = *parsed_type;

  if (auto c = body.find("class"); c != body.end()) {
    if (!c->is_string()) return Invalid(path + ".class", "expected a string, got " + TypeOf(*c));
    auto parsed = ParseDataClass(c->get_ref<const std::string&>());
    if (!parsed) return Invalid(path + ".class", "unknown class (public|internal|personal|sensitive)");
    field.data_class = *parsed;
  }

  if (auto i = body.find("index"); i != body.end()) {
    if (!i->is_boolean()) return Invalid(path + ".index", "expected a boolean, got " + TypeOf(*i));
    field.index = i->get<bool>();
    // An object or array has no single value to look up by.
    if (field.index && !IsScalar(field.type)) return Invalid(path + ".index", "only scalar fields can be indexed");
  }

  if (auto m = body.find("mask"); m != body.end()) {
    if (!m->is_string()) return Invalid(path + ".mask", "expected a string, got " + TypeOf(*m));
    auto parsed = policy::ParseMaskRule(m->get_ref<const std::string&>());
    if (!parsed) return Invalid(path + ".mask", "unknown mask (none|partial|email|last4|hidden)");
    field.mask = *parsed;
  }

  if (auto l = body.find("max_length"); l != body.end()) {
    if (field.type != FieldType::kString) return Invalid(path + ".max_length", "only for string fields");
    if (!l->is_number_integer()) return Invalid(path + ".max_length", "expected an integer, got " + TypeOf(*l));
    auto v = l->get<std::int64_t>();
    if (v < 1 || v > kMaxStringLength) {
      return Invalid(path + ".max_length", "must be between 1 and " + std::to_string(kMaxStringLength));
    }
    field.max_length = v;
  }
  return field;
}

void AppendAsciiLowerTrimmed(std::string_view s, std::string* out) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  out->reserve(e - b);
  for (std::size_t i = b; i < e; ++i) {
    char c = s[i];
    // ASCII only: Unicode case folding depends on locale and version, and an
    // index must normalise the same way forever.
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out->push_back(c);
  }
}

// 2^53: every integer up to here is exactly representable as a double.
constexpr double kMaxExactDouble = 9007199254740992.0;

std::string CanonicalNumber(const json& v) {
  if (v.is_number_integer()) return v.dump();  // int64 / uint64 decimal text
  double d = v.get<double>();
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= kMaxExactDouble) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  return v.dump();
}

}  // namespace

std::string_view FieldTypeName(FieldType type) {
  for (const auto& e : kTypes) {
    if (e.type == type) return e.name;
  }
  return "string";
}

std::string_view DataClassName(DataClass data_class) {
  for (const auto& e : kClasses) {
    if (e.data_class == data_class) return e.name;
  }
  return "internal";
}

std::size_t CodePointCount(std::string_view text) {
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

Result<CollectionSchema> ParseSchema(const json& body) {
  if (!body.is_object()) return InvalidArgumentError("schema: expected an object, got " + TypeOf(body));
  KURA_RETURN_IF_ERROR(CheckKeys(body, "", {"fields", "required", "retention_days"}));
  CollectionSchema schema;

  auto fields = body.find("fields");
  if (fields == body.end()) return Invalid("fields", "required");
  if (!fields->is_object()) return Invalid("fields", "expected an object, got " + TypeOf(*fields));
  if (fields->empty()) return Invalid("fields", "must declare at least one field");
  if (fields->size() > kMaxSchemaFields) {
    return Invalid("fields", "at most " + std::to_string(kMaxSchemaFields) + " fields");
  }
  for (const auto& [name, spec] : fields->items()) {
    std::string path = "fields." + name.substr(0, 64);
    if (!policy::IsValidName(name)) return Invalid(path, "invalid field name (1-64 of a-z, 0-9, '_', '-')");
    KURA_ASSIGN_OR_RETURN(FieldSchema field, ParseField(spec, path));
    schema.fields.emplace(name, field);
  }

  if (auto req = body.find("required"); req != body.end()) {
    if (!req->is_array()) return Invalid("required", "expected an array, got " + TypeOf(*req));
    for (std::size_t i = 0; i < req->size(); ++i) {
      const json& r = (*req)[i];
      std::string path = "required[" + std::to_string(i) + "]";
      if (!r.is_string()) return Invalid(path, "expected a string, got " + TypeOf(r));
      const auto& name = r.get_ref<const std::string&>();
      if (!schema.fields.contains(name)) return Invalid(path, "names an undeclared field");
      for (const auto& seen : schema.required) {
        if (seen == name) return Invalid(path, "duplicate entry");
      }
      schema.required.push_back(name);
    }
  }

  if (auto ret = body.find("retention_days"); ret != body.end() && !ret->is_null()) {
    if (!ret->is_number_integer()) return Invalid("retention_days", "expected an integer, got " + TypeOf(*ret));
    auto days = ret->get<std::int64_t>();
    if (days < 1 || days > kMaxRetentionDays) {
      return Invalid("retention_days", "must be between 1 and " + std::to_string(kMaxRetentionDays));
    }
    schema.retention_days = days;
  }
  return schema;
}

json SchemaToJson(const CollectionSchema& schema) {
  json fields = json::object();
  for (const auto& [name, f] : schema.fields) {
    json spec = {{"type", FieldTypeName(f.type)},
                 {"class", DataClassName(f.data_class)},
                 {"index", f.index},
                 {"mask", policy::MaskRuleName(f.mask)}};
    if (f.max_length) spec["max_length"] = *f.max_length;
    fields[name] = std::move(spec);
  }
  json out = {{"fields", std::move(fields)}, {"required", schema.required}};
  out["retention_days"] = schema.retention_days ? json(*schema.retention_days) : json(nullptr);
  return out;
}

Result<std::string> ValidateRecordData(const CollectionSchema& schema, const json& data) {
  if (!data.is_object()) return Invalid("data", "expected an object, got " + TypeOf(data));
  for (const auto& [name, value] : data.items()) {
    auto it = schema.fields.find(name);
    // The name is the caller's own key, not a value; quoting it helps them fix
    // the request. It is cut short so a huge key cannot bloat the message.
    if (it == schema.fields.end()) return Invalid("data", "unknown field '" + name.substr(0, 64) + "'");
    const FieldSchema& field = it->second;
    std::string path = "data." + name;
    bool ok = false;
    switch (field.type) {
      case FieldType::kString:
        ok = value.is_string();
        break;
      case FieldType::kInteger:
        ok = value.is_number_integer();
        break;
      case FieldType::kNumber:
        ok = value.is_number();
        break;
      case FieldType::kBoolean:
        ok = value.is_boolean();
        break;
      case FieldType::kObject:
        ok = value.is_object();
        break;
      case FieldType::kArray:
        ok = value.is_array();
        break;
    }
    if (!ok) return Invalid(path, "expected " + std::string(FieldTypeName(field.type)) + ", got " + TypeOf(value));
    if (field.max_length && value.is_string() &&
        CodePointCount(value.get_ref<const std::string&>()) > static_cast<std::size_t>(*field.max_length)) {
      return Invalid(path, "longer than " + std::to_string(*field.max_length) + " characters");
    }
  }
  for (const auto& name : schema.required) {
    if (!data.contains(name)) return Invalid("data." + name, "required field is missing");
  }
  std::string text;
  try {
    // Room for a typical record: growing frees a copy of the values unwiped.
    text.reserve(512);
    AppendCompactJson(data, &text);
  } catch (const json::exception&) {
    explicit_bzero(text.data(), text.size());  // the fields before the bad string
    return Invalid("data", "strings must be valid UTF-8");
  }
  if (text.size() > kMaxRecordDataBytes) {
    explicit_bzero(text.data(), text.size());
    return Invalid("data", "larger than " + std::to_string(kMaxRecordDataBytes) + " bytes");
  }
  return text;
}

std::string NormaliseIndexValue(FieldType type, const json& value) {
  switch (type) {
    case FieldType::kString: {
      std::string out;
      AppendAsciiLowerTrimmed(value.get_ref<const std::string&>(), &out);
      return out;
    }
    case FieldType::kInteger:
    case FieldType::kNumber:
      return CanonicalNumber(value);
    case FieldType::kBoolean:
      return value.get<bool>() ? "true" : "false";
    case FieldType::kObject:
    case FieldType::kArray:
      break;
  }
  return value.dump();
}

Result<std::string> NormaliseQueryValue(const FieldSchema& field, std::string_view text) {
  if (field.type == FieldType::kString) {
    std::string out;
    AppendAsciiLowerTrimmed(text, &out);
    return out;
  }
  if (!IsScalar(field.type)) return InvalidArgumentError("only indexed scalar fields can be looked up");
  const Status not_of_type = InvalidArgumentError("lookup value is not a " + std::string(FieldTypeName(field.type)));
  // Strict: nlohmann/json alone would look "42%00x" up as 42 (core/json.h).
  auto parsed = ParseUntrustedJson(text);
  if (!parsed.ok()) return not_of_type;
  const json& value = *parsed;
  bool ok = (field.type == FieldType::kInteger && value.is_number_integer()) ||
            (field.type == FieldType::kNumber && value.is_number()) ||
            (field.type == FieldType::kBoolean && value.is_boolean());
  if (!ok) return not_of_type;
  return NormaliseIndexValue(field.type, value);
}

}  // namespace kura::vault
