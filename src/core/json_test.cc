#include "core/json.h"

#include <gtest/gtest.h>

#include <string>

namespace kura {
namespace {

TEST(JsonDepthTest, CountsOutsideStrings) {
  EXPECT_TRUE(JsonDepthWithin(R"({"a":[[[1]]]})", 4));
  EXPECT_FALSE(JsonDepthWithin(R"({"a":[[[1]]]})", 3));
  EXPECT_TRUE(JsonDepthWithin(R"({"a":"[[[[[[\"[[["})", 1));
}

TEST(ParseUntrustedJsonTest, ParsesValidText) {
  auto parsed = ParseUntrustedJson(R"( {"a": [1, 2.5, "x\u0000y", null]} )");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ((*parsed)["a"][2].get<std::string>(), std::string("x\0y", 3));  // an escaped NUL is data
  EXPECT_TRUE(ParseUntrustedJson(std::string(64, '[') + std::string(64, ']')).ok());
}

// Each refusal names a position or a reason and never quotes the text, which
// may be personal data.
TEST(ParseUntrustedJsonTest, RefusesWithPositionNotContent) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {R"({"ssn": 123-45-6789})", "malformed JSON at byte 14"},  // where the parser stopped
      {"", "malformed JSON at byte 1"},
      {R"({"ssn": "123-45-6789")", "malformed JSON at byte 22"},
      // A raw NUL ends the input for nlohmann/json, which would accept the
      // object before it and drop the rest.
      {std::string("{\"ssn\":1}\0\"123-45-6789\"", 23), "malformed JSON at byte 10"},
      {R"({"ssn": 1e6789})", "malformed JSON: a number is out of range"},
      {std::string(65, '[') + std::string(65, ']'), "malformed JSON: nested deeper than 64 levels"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseUntrustedJson(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), c.message) << c.text;
  }
  EXPECT_FALSE(ParseUntrustedJson("[[[1]]]", 2).ok());
}

}  // namespace
}  // namespace kura
