#include "cli/output.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

TEST(OutputTest, WritePrivateFileReplacesWithMode0600) {
  auto dir = std::filesystem::temp_directory_path() / ("kura_cli_output_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "token.env";
  std::ofstream(path) << "old content that is longer\n";
  ::chmod(path.c_str(), 0644);
  ASSERT_TRUE(WritePrivateFile(path.string(), "KURA_TOKEN=new\n").ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "KURA_TOKEN=new\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1) << "no temporary file left behind";

  // An unwritable place: the error names the path, never the content.
  auto bad = WritePrivateFile((dir / "missing" / "f").string(), "secret-content");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("missing"), std::string::npos);
  EXPECT_EQ(bad.message().find("secret-content"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kura::cli
