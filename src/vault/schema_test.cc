#include "vault/schema.h"

#include <gtest/gtest.h>

#include <limits>

namespace kura::vault {
namespace {

using nlohmann::json;

constexpr char kSpecExample[] =
    R"({"fields":{"email":{"type":"string","class":"personal","index":true,"mask":"email"},)"
    R"("phone":{"type":"string","class":"personal","mask":"last4"},"note":{"type":"string"}},)"
    R"("required":["email"],"retention_days":365})";

CollectionSchema MustParse(const std::string& text) {
  auto s = ParseSchema(json::parse(text));
  EXPECT_TRUE(s.ok()) << text << " → " << s.status().ToString();
  return s.ok() ? *s : CollectionSchema{};
}

void ExpectSchemaError(const std::string& text, const std::string& path) {
  auto s = ParseSchema(json::parse(text));
  ASSERT_FALSE(s.ok()) << text;
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.status().message().starts_with(path + ":"))
      << text << " → '" << s.status().message() << "', wanted path '" << path << "'";
}

TEST(SchemaTest, ParsesSpecExampleWithDefaults) {
  CollectionSchema s = MustParse(kSpecExample);
  ASSERT_EQ(s.fields.size(), 3u);
  const auto& email = s.fields.at("email");
  EXPECT_EQ(email.type, FieldType::kString);
  EXPECT_EQ(email.data_class, DataClass::kPersonal);
  EXPECT_TRUE(email.index);
  EXPECT_EQ(email.mask, policy::MaskRule::kEmail);
  const auto& note = s.fields.at("note");
  EXPECT_EQ(note.data_class, DataClass::kInternal);  // default
  EXPECT_FALSE(note.index);
  EXPECT_EQ(note.mask, policy::MaskRule::kNone);
  EXPECT_FALSE(note.max_length.has_value());
  EXPECT_EQ(s.fields.at("phone").mask, policy::MaskRule::kLast4);
  EXPECT_EQ(s.required, std::vector<std::string>{"email"});
  EXPECT_EQ(s.retention_days, 365);
}

TEST(SchemaTest, EveryTypeClassAndMaskIsAccepted) {
  for (auto type : {"string", "integer", "number", "boolean", "object", "array"}) {
    for (auto cls : {"public", "internal", "personal", "sensitive"}) {
      for (auto mask : {"none", "partial", "email", "last4", "hidden"}) {
        json body = {{"fields", {{"f", {{"type", type}, {"class", cls}, {"mask", mask}}}}}};
        auto s = ParseSchema(body);
        ASSERT_TRUE(s.ok()) << body.dump();
        EXPECT_EQ(FieldTypeName(s->fields.at("f").type), type);
        EXPECT_EQ(DataClassName(s->fields.at("f").data_class), cls);
        EXPECT_EQ(policy::MaskRuleName(s->fields.at("f").mask), mask);
      }
    }
  }
}

TEST(SchemaTest, JsonRoundTripSpellsOutDefaults) {
  CollectionSchema s = MustParse(kSpecExample);
  json out = SchemaToJson(s);
  EXPECT_EQ(out["fields"]["note"], json::parse(R"({"type":"string","class":"internal","index":false,"mask":"none"})"));
  EXPECT_EQ(out["retention_days"], 365);
  CollectionSchema again = MustParse(out.dump());
  EXPECT_EQ(SchemaToJson(again), out);
  // No retention: null, and null is accepted back.
  json no_ret = SchemaToJson(MustParse(R"({"fields":{"a":{"type":"integer"}}})"));
  EXPECT_TRUE(no_ret["retention_days"].is_null());
  EXPECT_EQ(no_ret["required"], json::array());
  EXPECT_EQ(SchemaToJson(MustParse(no_ret.dump())), no_ret);
  // max_length survives.
  json ml = SchemaToJson(MustParse(R"({"fields":{"a":{"type":"string","max_length":10}}})"));
  EXPECT_EQ(ml["fields"]["a"]["max_length"], 10);
}

TEST(SchemaTest, RejectsUnknownKeysNamingThePath) {
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"extra":1})", "extra");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","indexed":true}}})", "fields.a.indexed");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","Mask":"none"}}})", "fields.a.Mask");
}

TEST(SchemaTest, RejectsBadValuesNamingThePath) {
  ExpectSchemaError(R"([])", "schema");
  ExpectSchemaError(R"({})", "fields");
  ExpectSchemaError(R"({"fields":{}})", "fields");
  ExpectSchemaError(R"({"fields":[]})", "fields");
  ExpectSchemaError(R"({"fields":{"a":"string"}})", "fields.a");
  ExpectSchemaError(R"({"fields":{"a":{}}})", "fields.a.type");
  ExpectSchemaError(R"({"fields":{"a":{"type":"date"}}})", "fields.a.type");
  ExpectSchemaError(R"({"fields":{"a":{"type":1}}})", "fields.a.type");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","class":"secret"}}})", "fields.a.class");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","mask":"last5"}}})", "fields.a.mask");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","index":"yes"}}})", "fields.a.index");
  ExpectSchemaError(R"({"fields":{"a":{"type":"object","index":true}}})", "fields.a.index");
  ExpectSchemaError(R"({"fields":{"a":{"type":"array","index":true}}})", "fields.a.index");
  ExpectSchemaError(R"({"fields":{"a":{"type":"integer","max_length":3}}})", "fields.a.max_length");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","max_length":0}}})", "fields.a.max_length");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string","max_length":"3"}}})", "fields.a.max_length");
  ExpectSchemaError(R"({"fields":{"Bad":{"type":"string"}}})", "fields.Bad");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"required":"a"})", "required");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"required":["b"]})", "required[0]");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"required":["a","a"]})", "required[1]");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"required":[1]})", "required[0]");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"retention_days":0})", "retention_days");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"retention_days":1.5})", "retention_days");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"retention_days":"365"})", "retention_days");
  ExpectSchemaError(R"({"fields":{"a":{"type":"string"}},"retention_days":99999})", "retention_days");
  json many = {{"fields", json::object()}};
  for (std::size_t i = 0; i <= kMaxSchemaFields; ++i) many["fields"]["f" + std::to_string(i)] = {{"type", "string"}};
  ExpectSchemaError(many.dump(), "fields");
}

class RecordValidationTest : public ::testing::Test {
 protected:
  CollectionSchema schema_ = MustParse(R"({"fields":{
      "email":{"type":"string","index":true,"max_length":20},
      "age":{"type":"integer","index":true},
      "score":{"type":"number"},
      "vip":{"type":"boolean","index":true},
      "address":{"type":"object"},
      "tags":{"type":"array"}},
      "required":["email"]})");

  void ExpectBad(const json& data, const std::string& needle) {
    Status s = ValidateRecordData(schema_, data).status();
    ASSERT_FALSE(s.ok()) << data.dump();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message() << " (wanted '" << needle << "')";
  }
};

TEST_F(RecordValidationTest, AcceptsValidData) {
  EXPECT_TRUE(ValidateRecordData(schema_, json::parse(R"({"email":"a@b.example"})")).ok());
  EXPECT_TRUE(ValidateRecordData(schema_, json::parse(R"({"email":"a@b.example","age":42,"score":1.5,
      "vip":true,"address":{"city":"Tokyo"},"tags":["x",1]})"))
                  .ok());
  EXPECT_TRUE(ValidateRecordData(schema_, json::parse(R"({"email":"a","score":3})")).ok());  // integer is a number
  // The text returned is the data's compact dump: what a record seals.
  const json data = json::parse(R"({ "score": 1.5, "email": "a\u00e9\"b" })");
  auto text = ValidateRecordData(schema_, data);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, data.dump());
  // max_length counts code points: 20 three-byte characters fit.
  std::string jp;
  for (int i = 0; i < 20; ++i) jp += "\u3042";
  EXPECT_TRUE(ValidateRecordData(schema_, json{{"email", jp}}).ok());
}

// ValidateRecordData writes the compact text itself (for speed): it must be
// byte for byte the library's dump(), which records sealed before were.
TEST_F(RecordValidationTest, TextIsExactlyTheLibrarysCompactDump) {
  std::string every_ascii;
  for (int c = 0; c < 0x80; ++c) every_ascii.push_back(static_cast<char>(c));
  const std::vector<json> values = {
      "",
      every_ascii,
      "quote \" backslash \\ slash / tab \t newline \n cr \r ff \f bs \b nul " + std::string(1, '\0') + " del \x7f",
      "\u00e9t\u00e9 \u3042 \U0001F600 mixed \"quoted\" \x01",
      json::parse(R"("escaped \u0000 \u001f \ud83d\ude00 \u00e9")"),
      0,
      -1,
      42,
      std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(),
      std::numeric_limits<std::uint64_t>::max(),
      0.0,
      -0.0,
      1.5,
      1.0,
      -3.25e-7,
      1e300,
      6.02214076e23,
      0.1,
      true,
      false,
      nullptr,
      json::object(),
      json::array(),
      json::parse(R"({"b":[1,"x",{"c\n":null}],"a":{"z":[],"y":{}},"\u00e9":-0.5})"),
      json::parse(R"([[[["deep"]]],{"k":"v"},[],{}])"),
  };
  for (const json& v : values) {
    const json data = {{"email", "a"},
                       {"address", {{"v", v}, {v.is_string() ? v.get<std::string>() : "k", v}}},
                       {"tags", json::array({v, v})}};
    auto text = ValidateRecordData(schema_, data);
    ASSERT_TRUE(text.ok()) << text.status().message();
    EXPECT_EQ(*text, data.dump());
  }
  // Invalid UTF-8 (possible only in a value built in code, not parsed) is
  // refused, as the library's dump refuses it.
  ExpectBad(json{{"email", "a"}, {"address", {{"k", "ok"}, {"z", "bad \xff byte"}}}},
            "data: strings must be valid UTF-8");
  ExpectBad(json{{"email", "a"}, {"address", {{"bad \xc3 key", 1}}}}, "data: strings must be valid UTF-8");
}

TEST_F(RecordValidationTest, RejectsBadData) {
  ExpectBad(json::array(), "data: expected an object");
  ExpectBad(json("x"), "data: expected an object");
  ExpectBad(json::parse(R"({"email":"a","nickname":"x"})"), "unknown field 'nickname'");
  ExpectBad(json::parse(R"({"age":3})"), "data.email: required field is missing");
  ExpectBad(json::parse(R"({"email":1})"), "data.email: expected string, got integer");
  ExpectBad(json::parse(R"({"email":"a","age":"42"})"), "data.age: expected integer, got string");
  ExpectBad(json::parse(R"({"email":"a","age":42.0})"), "data.age: expected integer, got number");
  ExpectBad(json::parse(R"({"email":"a","age":null})"), "data.age: expected integer, got null");
  ExpectBad(json::parse(R"({"email":"a","score":"1"})"), "data.score: expected number");
  ExpectBad(json::parse(R"({"email":"a","vip":1})"), "data.vip: expected boolean");
  ExpectBad(json::parse(R"({"email":"a","address":"Tokyo"})"), "data.address: expected object");
  ExpectBad(json::parse(R"({"email":"a","tags":{}})"), "data.tags: expected array");
  ExpectBad(json{{"email", std::string(21, 'x')}}, "data.email: longer than 20 characters");
}

TEST_F(RecordValidationTest, ErrorsNeverContainValues) {
  Status s = ValidateRecordData(schema_, json{{"email", "secret-value-123-long-enough"}}).status();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("secret-value"), std::string::npos);
  s = ValidateRecordData(schema_, json{{"email", "a"}, {"age", "secret-age"}}).status();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("secret-age"), std::string::npos);
}

TEST_F(RecordValidationTest, BoundsTotalSize) {
  CollectionSchema open = MustParse(R"({"fields":{"blob":{"type":"string"}}})");
  EXPECT_TRUE(ValidateRecordData(open, json{{"blob", std::string(kMaxRecordDataBytes - 100, 'x')}}).ok());
  Status s = ValidateRecordData(open, json{{"blob", std::string(kMaxRecordDataBytes, 'x')}}).status();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(NormaliseTest, StringsAreTrimmedAndAsciiLowercased) {
  EXPECT_EQ(NormaliseIndexValue(FieldType::kString, json("  Alice@Example.COM \t\n")), "alice@example.com");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kString, json("")), "");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kString, json("   ")), "");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kString, json("a  B")), "a  b");  // inner space kept
  // Non-ASCII letters are kept as they are (no locale-dependent folding).
  EXPECT_EQ(NormaliseIndexValue(FieldType::kString, json("\u00c9LISE")), "\u00c9lise");
}

TEST(NormaliseTest, NumbersAndBooleansUseCanonicalText) {
  EXPECT_EQ(NormaliseIndexValue(FieldType::kInteger, json(42)), "42");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kInteger, json(-7)), "-7");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kInteger, json(18446744073709551615ull)), "18446744073709551615");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kNumber, json(42)), "42");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kNumber, json(42.0)), "42");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kNumber, json(-0.0)), "0");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kNumber, json(0.5)), "0.5");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kNumber, json(1e300)), json(1e300).dump());
  EXPECT_EQ(NormaliseIndexValue(FieldType::kBoolean, json(true)), "true");
  EXPECT_EQ(NormaliseIndexValue(FieldType::kBoolean, json(false)), "false");
}

TEST(NormaliseTest, QueryValuesMatchStoredValues) {
  FieldSchema str{FieldType::kString};
  FieldSchema integer{FieldType::kInteger};
  FieldSchema number{FieldType::kNumber};
  FieldSchema boolean{FieldType::kBoolean};
  EXPECT_EQ(*NormaliseQueryValue(str, " A@B.example"), NormaliseIndexValue(FieldType::kString, json("a@b.EXAMPLE")));
  EXPECT_EQ(*NormaliseQueryValue(str, "42"), "42");
  EXPECT_EQ(*NormaliseQueryValue(integer, "42"), "42");
  EXPECT_EQ(*NormaliseQueryValue(number, "42.0"), "42");
  EXPECT_EQ(*NormaliseQueryValue(number, "42"), NormaliseIndexValue(FieldType::kNumber, json(42.0)));
  EXPECT_EQ(*NormaliseQueryValue(boolean, "true"), "true");
  for (auto bad : {"forty", "4.5", "", "\"42\"", "true"}) {
    auto r = NormaliseQueryValue(integer, bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(NormaliseQueryValue(boolean, "1").ok());
  EXPECT_FALSE(NormaliseQueryValue(boolean, "TRUE").ok());
  EXPECT_FALSE(NormaliseQueryValue(number, "abc").ok());
  EXPECT_FALSE(NormaliseQueryValue(FieldSchema{FieldType::kObject}, "{}").ok());
  // A NUL byte ends the JSON parser's input; the value is not 42 for it.
  EXPECT_FALSE(NormaliseQueryValue(integer, std::string_view("42\0x", 4)).ok());
  EXPECT_FALSE(NormaliseQueryValue(boolean, std::string_view("true\0", 5)).ok());
}

TEST(CodePointCountTest, CountsCharacters) {
  EXPECT_EQ(CodePointCount(""), 0u);
  EXPECT_EQ(CodePointCount("abc"), 3u);
  EXPECT_EQ(CodePointCount("\u3042\u3044"), 2u);
  EXPECT_EQ(CodePointCount("a\U0001F600"), 2u);
}

}  // namespace
}  // namespace kura::vault
