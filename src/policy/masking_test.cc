#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/policy.h"

namespace kura::policy {
namespace {

using nlohmann::json;

std::string Mask(MaskRule rule, const json& v) {
  auto out = MaskValue(rule, v);
  EXPECT_TRUE(out.has_value());
  if (!out) return "<hidden>";
  EXPECT_TRUE(out->is_string()) << out->dump();
  return out->is_string() ? out->get<std::string>() : out->dump();
}

TEST(MaskRuleTest, NamesRoundTrip) {
  for (MaskRule r : {MaskRule::kNone, MaskRule::kPartial, MaskRule::kEmail, MaskRule::kLast4, MaskRule::kHidden}) {
    auto parsed = ParseMaskRule(MaskRuleName(r));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_FALSE(ParseMaskRule("").has_value());
  EXPECT_FALSE(ParseMaskRule("last5").has_value());
  EXPECT_FALSE(ParseMaskRule("Email").has_value());
}

TEST(MaskNoneTest, LeavesEveryValueUnchanged) {
  for (const json& v : {json("John"), json(""), json(42), json(3.5), json(true), json(nullptr),
                        json::parse(R"({"a":1})"), json::parse("[1,2]")}) {
    auto out = MaskValue(MaskRule::kNone, v);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, v);
  }
}

TEST(MaskHiddenTest, LeavesTheFieldOut) {
  for (const json& v : {json("John"), json(""), json(42), json(true), json::parse(R"({"a":1})")}) {
    EXPECT_FALSE(MaskValue(MaskRule::kHidden, v).has_value());
  }
}

TEST(MaskPartialTest, TypicalAndEdgeValues) {
  EXPECT_EQ(Mask(MaskRule::kPartial, "John"), "J**n");
  EXPECT_EQ(Mask(MaskRule::kPartial, "Alexander"), "A*******r");
  EXPECT_EQ(Mask(MaskRule::kPartial, "abc"), "a*c");
  EXPECT_EQ(Mask(MaskRule::kPartial, "ab"), "**");
  EXPECT_EQ(Mask(MaskRule::kPartial, "a"), "*");
  EXPECT_EQ(Mask(MaskRule::kPartial, ""), "");
}

TEST(MaskPartialTest, CountsCodePointsNotBytes) {
  // 山田太郎: four characters of three bytes each.
  EXPECT_EQ(Mask(MaskRule::kPartial, "\u5c71\u7530\u592a\u90ce"), "\u5c71**\u90ce");
  // Two characters, six bytes: still fully masked.
  EXPECT_EQ(Mask(MaskRule::kPartial, "\u5c71\u7530"), "**");
  // Ünal: a two-byte first character is kept whole.
  EXPECT_EQ(Mask(MaskRule::kPartial, "\u00dcnal"), "\u00dc**l");
  // A four-byte character (emoji) at the end.
  EXPECT_EQ(Mask(MaskRule::kPartial, "ab\U0001F600"), "a*\U0001F600");
}

TEST(MaskPartialTest, MalformedUtf8CountsEachStrayByteAsOneCharacter) {
  // Stray continuation bytes: four characters.
  EXPECT_EQ(Mask(MaskRule::kPartial, json(std::string("\x80\x81\x82\x83"))), "\x80**\x83");
  // A truncated three-byte sequence at the end: two characters, not one.
  EXPECT_EQ(Mask(MaskRule::kLast4, json(std::string("abc\xE5\xB1"))), "*bc\xE5\xB1");
  // An overlong lead byte (0xC0) is not a sequence start.
  EXPECT_EQ(Mask(MaskRule::kPartial, json(std::string("\xC0\xAFxy"))), "\xC0**y");
}

TEST(MaskEmailTest, TypicalAndEdgeValues) {
  EXPECT_EQ(Mask(MaskRule::kEmail, "alice@example.com"), "a****@example.com");
  EXPECT_EQ(Mask(MaskRule::kEmail, "ab@b.example"), "a*@b.example");
  EXPECT_EQ(Mask(MaskRule::kEmail, "a@example.com"), "*@example.com");
  // The last '@' separates the domain (quoted local parts may hold '@').
  EXPECT_EQ(Mask(MaskRule::kEmail, "\"a@b\"@example.com"), "\"****@example.com");
  // Non-ASCII local part.
  EXPECT_EQ(Mask(MaskRule::kEmail, "\u00e9lise@example.fr"), "\u00e9****@example.fr");
}

TEST(MaskEmailTest, NonEmailFallsBackToPartial) {
  EXPECT_EQ(Mask(MaskRule::kEmail, "not an email"), "n**********l");
  EXPECT_EQ(Mask(MaskRule::kEmail, "@example.com"), "@**********m");
  EXPECT_EQ(Mask(MaskRule::kEmail, "alice@"), "a****@");
  EXPECT_EQ(Mask(MaskRule::kEmail, ""), "");
  EXPECT_EQ(Mask(MaskRule::kEmail, "ab"), "**");
}

TEST(MaskLast4Test, TypicalAndEdgeValues) {
  EXPECT_EQ(Mask(MaskRule::kLast4, "+81 90 1234 5678"), "************5678");
  EXPECT_EQ(Mask(MaskRule::kLast4, "12345"), "*2345");
  EXPECT_EQ(Mask(MaskRule::kLast4, "1234"), "****");
  EXPECT_EQ(Mask(MaskRule::kLast4, "12"), "**");
  EXPECT_EQ(Mask(MaskRule::kLast4, ""), "");
  // Code points: the last four characters of a Japanese string.
  EXPECT_EQ(Mask(MaskRule::kLast4, "\u6771\u4eac\u90fd\u6e2f\u533a\u829d"), "**\u90fd\u6e2f\u533a\u829d");
}

TEST(MaskNumbersTest, MaskedAsDecimalText) {
  EXPECT_EQ(Mask(MaskRule::kLast4, 4111111111111111), "************1111");
  EXPECT_EQ(Mask(MaskRule::kPartial, 12345), "1***5");
  EXPECT_EQ(Mask(MaskRule::kPartial, -7), "**");
  EXPECT_EQ(Mask(MaskRule::kLast4, 1.5), "***");
  EXPECT_EQ(Mask(MaskRule::kEmail, 123456), "1****6");
  EXPECT_EQ(Mask(MaskRule::kPartial, 0), "*");
}

TEST(MaskOtherTypesTest, BecomeOpaque) {
  for (MaskRule r : {MaskRule::kPartial, MaskRule::kEmail, MaskRule::kLast4}) {
    EXPECT_EQ(Mask(r, true), "***");
    EXPECT_EQ(Mask(r, false), "***");
    EXPECT_EQ(Mask(r, nullptr), "***");
    EXPECT_EQ(Mask(r, json::parse(R"({"street":"1 Main St"})")), "***");
    EXPECT_EQ(Mask(r, json::parse(R"(["a","b"])")), "***");
  }
}

}  // namespace
}  // namespace kura::policy
