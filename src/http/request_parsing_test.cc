#include "http/request_parsing.h"

#include <gtest/gtest.h>

#include <set>

namespace kura::http {
namespace {

TEST(PercentDecodeTest, DecodesEscapesAndPlus) {
  EXPECT_EQ(PercentDecode("a%40b.example", true), "a@b.example");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("%2B%2b", true), "++");
  EXPECT_EQ(PercentDecode("", true), "");
  EXPECT_EQ(PercentDecode("%E3%81%82", true), "\xE3\x81\x82");
}

TEST(PercentDecodeTest, RefusesMalformedEscapes) {
  EXPECT_EQ(PercentDecode("%", true), std::nullopt);
  EXPECT_EQ(PercentDecode("%4", true), std::nullopt);
  EXPECT_EQ(PercentDecode("abc%G1", true), std::nullopt);
  EXPECT_EQ(PercentDecode("%%41", true), std::nullopt);
}

TEST(ParseQueryTest, PagingAndFilters) {
  RouteTraits traits{.paging = true, .filters = true};
  QueryParams q;
  ASSERT_TRUE(ParseQuery("email=a%40b.example&limit=20&after=cur_1", traits, &q).ok());
  EXPECT_EQ(q.limit, 20);
  EXPECT_EQ(q.after, "cur_1");
  ASSERT_EQ(q.filters.size(), 1u);
  EXPECT_EQ(q.filters.at("email"), "a@b.example");
  EXPECT_FALSE(q.version.has_value());
}

TEST(ParseQueryTest, Version) {
  RouteTraits traits{.version = true};
  QueryParams q;
  ASSERT_TRUE(ParseQuery("version=7", traits, &q).ok());
  EXPECT_EQ(q.version, 7);
  QueryParams empty;
  ASSERT_TRUE(ParseQuery("", traits, &empty).ok());
  EXPECT_FALSE(empty.version.has_value());
}

TEST(ParseQueryTest, RefusesBadInput) {
  RouteTraits paged{.paging = true, .filters = true};
  RouteTraits versioned{.version = true};
  RouteTraits none{};
  const struct {
    const char* query;
    RouteTraits traits;
  } cases[] = {
      {"limit=abc", paged},
      {"limit=0", paged},
      {"limit=-3", paged},
      {"limit=1&limit=2", paged},
      {"after=a&after=b", paged},
      {"email=%zz", paged},
      {"email=a&email=b", paged},
      {"=x", paged},
      {"version=0", versioned},
      {"version=x", versioned},
      {"version=1&version=1", versioned},
      {"limit=99999999999999999999", paged},
      {"foo=1", versioned},
      {"x=1", none},
      {"limit=1", none},
  };
  for (const auto& c : cases) {
    QueryParams q;
    Status s = ParseQuery(c.query, c.traits, &q);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.query;
  }
}

TEST(ParseQueryTest, MessagesNeverContainValues) {
  RouteTraits paged{.paging = true, .filters = true};
  QueryParams q;
  Status s = ParseQuery("email=secret%40x.example&email=other", paged, &q);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("secret"), std::string::npos);
  EXPECT_NE(s.message().find("email"), std::string::npos);
}

TEST(QueryKeysForLogTest, KeysOnly) {
  EXPECT_EQ(QueryKeysForLog("email=a%40b.example&limit=5"), "email,limit");
  EXPECT_EQ(QueryKeysForLog("na me=x&&z"), "na?me,z");
  EXPECT_EQ(QueryKeysForLog(""), "");
}

TEST(ParseIfMatchTest, QuotedVersions) {
  EXPECT_EQ(*ParseIfMatch("\"3\""), std::optional<std::int64_t>(3));
  EXPECT_EQ(*ParseIfMatch(" \"12\" "), std::optional<std::int64_t>(12));
  EXPECT_EQ(*ParseIfMatch(""), std::nullopt);
  EXPECT_EQ(*ParseIfMatch("*"), std::nullopt);
  for (const char* bad : {"3", "\"\"", "\"0\"", "\"-1\"", "W/\"3\"", "\"3\", \"4\"", "\"abc\"", "\"3"}) {
    auto r = ParseIfMatch(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseBearerTest, ExtractsToken) {
  EXPECT_EQ(*ParseBearer("Bearer kura_root_abc-DEF_1"), "kura_root_abc-DEF_1");
  EXPECT_EQ(*ParseBearer("bearer tok=="), "tok==");
  EXPECT_EQ(*ParseBearer("BEARER  tok "), "tok");
}

TEST(ParseBearerTest, RefusesMissingAndGarbage) {
  for (const char* bad : {"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer =abc", "Bearer a=b",
                          "Token abc", "Bearer tok\"en"}) {
    auto r = ParseBearer(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << bad;
    EXPECT_EQ(r.status().message().find("dXNl"), std::string::npos);
  }
}

TEST(RequestIdTest, ValidatesIncomingIds) {
  EXPECT_TRUE(IsValidRequestId("abc-123_X.y~"));
  EXPECT_TRUE(IsValidRequestId(std::string(64, 'a')));
  EXPECT_FALSE(IsValidRequestId(std::string(65, 'a')));
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId("a b"));
  EXPECT_FALSE(IsValidRequestId("a\r\nX-Evil: 1"));
}

TEST(RequestIdTest, FreshIdsAreUrlSafeAndDistinct) {
  std::set<std::string> seen;
  std::string id;
  for (int i = 0; i < 2000; ++i) {
    NewRequestId(&id);
    EXPECT_EQ(id.size(), 15u);
    EXPECT_TRUE(IsValidRequestId(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2000u);
}

}  // namespace
}  // namespace kura::http
