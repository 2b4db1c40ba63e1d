#include "cli/output.h"

#include <gtest/gtest.h>

#include <sstream>

namespace kura::cli {
namespace {

using nlohmann::json;

TEST(OutputTest, ParseFormat) {
  EXPECT_EQ(ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseFormat("text"), Format::kText);
}

TEST(OutputTest, ScalarText) {
  EXPECT_EQ(ScalarText("plain"), "plain");
  EXPECT_EQ(ScalarText(nullptr), "-");
  EXPECT_EQ(ScalarText(42), "42");
  EXPECT_EQ(ScalarText(true), "true");
  EXPECT_EQ(ScalarText(json({{"a", 1}})), R"({"a":1})");
}

TEST(OutputTest, PrintFieldsInOrderSkippingAbsent) {
  std::ostringstream out;
  PrintFields(out, {{"b", 2}, {"a", "x"}, {"c", nullptr}}, {"a", "missing", "b", "c"});
  EXPECT_EQ(out.str(), "a: x\nb: 2\nc: -\n");
  std::ostringstream none;
  PrintFields(none, json::array(), {"a"});
  EXPECT_EQ(none.str(), "");
}

TEST(OutputTest, PrintAllFields) {
  std::ostringstream out;
  PrintAllFields(out, {{"id", "t"}, {"n", 1}});
  EXPECT_EQ(out.str(), "id: t\nn: 1\n");
}

TEST(OutputTest, TableAlignsColumns) {
  std::ostringstream out;
  PrintTable(out, json::array({{{"id", "a"}, {"name", "Alpha KK"}}, {{"id", "long-id"}, {"name", nullptr}}, {{"x", 1}}}),
             {{"id", "id"}, {"name", "name"}});
  EXPECT_EQ(out.str(),
            "ID       NAME\n"
            "a        Alpha KK\n"
            "long-id  -\n"
            "-        -\n");
}

TEST(OutputTest, EmptyTablePrintsHeader) {
  std::ostringstream out;
  PrintTable(out, json::array(), {{"version", "version"}, {"created", "created_at"}});
  EXPECT_EQ(out.str(), "VERSION  CREATED\n");
}

TEST(OutputTest, ItemsOf) {
  EXPECT_EQ(ItemsOf({{"items", {1, 2}}}), json::array({1, 2}));
  EXPECT_EQ(ItemsOf({{"items", "x"}}), json::array());
  EXPECT_EQ(ItemsOf(json::array({1})), json::array());
}

TEST(OutputTest, RawBody) {
  std::ostringstream out;
  PrintRawBody(out, R"({"a":1})");
  PrintRawBody(out, "x\n");
  PrintRawBody(out, "");
  EXPECT_EQ(out.str(), "{\"a\":1}\nx\n");
}

}  // namespace
}  // namespace kura::cli
