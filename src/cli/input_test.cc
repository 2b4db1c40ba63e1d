#include "cli/input.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace kura::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

class InputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kura_cli_input_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(InputTest, InlineJson) {
  std::istringstream in;
  auto j = ReadJsonArgument(R"({"email":"a@b"})", in);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json({{"email", "a@b"}}));
}

TEST_F(InputTest, AtFile) {
  std::istringstream in;
  auto j = ReadJsonArgument("@" + Write("d.json", R"({"n":1})"), in);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json({{"n", 1}}));
  auto missing = ReadJsonArgument("@" + (dir_ / "nope.json").string(), in);
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot read"));
}

TEST_F(InputTest, Stdin) {
  for (const char* arg : {"-", "@-"}) {
    std::istringstream in(R"({"from":"stdin"})");
    auto j = ReadJsonArgument(arg, in);
    ASSERT_TRUE(j.ok()) << arg;
    EXPECT_EQ(*j, json({{"from", "stdin"}}));
  }
}

TEST_F(InputTest, InvalidJsonNamesPositionNotContent) {
  std::istringstream in;
  auto j = ReadJsonArgument(R"({"ssn": 123-45-6789})", in);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("--data: malformed JSON at byte"));
  EXPECT_THAT(j.status().message(), Not(HasSubstr("6789")));
  EXPECT_FALSE(ReadJsonArgument("", in).ok());
  // Not cut short at a NUL byte, which the parser takes for the end.
  auto nul = ReadJsonArgument("@" + Write("nul.json", std::string("{\"n\":1}\0{\"x\":", 13)), in);
  ASSERT_FALSE(nul.ok());
  EXPECT_THAT(nul.status().message(), HasSubstr("nul.json: malformed JSON at byte 8"));
  // A number beyond a double: the parser throws out_of_range, which once
  // ended the CLI with an uncaught exception quoting the number.
  auto huge = ReadJsonArgument(R"({"age": 1e999})", in);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(), "--data: malformed JSON: a number is out of range");
  auto deep = ReadJsonArgument(std::string(100, '[') + std::string(100, ']'), in);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "--data: malformed JSON: nested deeper than 64 levels");
}

TEST_F(InputTest, JsonFile) {
  std::istringstream in(R"({"fields":{}})");
  auto from_stdin = ReadJsonFile("-", in);
  ASSERT_TRUE(from_stdin.ok());
  EXPECT_EQ(*from_stdin, json({{"fields", json::object()}}));
  std::istringstream none;
  auto from_file = ReadJsonFile(Write("s.json", "[1]"), none);
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(*from_file, json::array({1}));
  auto bad = ReadJsonFile(Write("bad.json", "{"), none);
  EXPECT_THAT(bad.status().message(), HasSubstr("bad.json: malformed JSON at byte 2"));
}

TEST_F(InputTest, SecretLineFromNonTerminal) {
  std::istringstream in("  share-value\r\nsecond line\n");
  std::ostringstream prompt;
  auto s = ReadSecretLine("Share: ", in, prompt);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "share-value");
  EXPECT_EQ(prompt.str(), "");  // no prompt when not reading a terminal

  std::istringstream empty("\n");
  EXPECT_EQ(ReadSecretLine("Share: ", empty, prompt).status().code(), StatusCode::kInvalidArgument);
  std::istringstream eof;
  EXPECT_FALSE(ReadSecretLine("Share: ", eof, prompt).ok());
}

TEST_F(InputTest, PasswordKeepsBlanksButNotTheLineEnd) {
  std::istringstream in(" two words \r\nnext\n");
  std::ostringstream prompt;
  auto p = ReadPassword("Password: ", in, prompt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, " two words ");
  EXPECT_EQ(prompt.str(), "");
  auto next = ReadPassword("Password: ", in, prompt);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, "next");

  std::istringstream empty("\r\n");
  EXPECT_EQ(ReadPassword("Password: ", empty, prompt).status().code(), StatusCode::kInvalidArgument);
  std::istringstream eof;
  EXPECT_FALSE(ReadPassword("Password: ", eof, prompt).ok());
}

TEST_F(InputTest, PlainLineIsTrimmed) {
  std::istringstream in("  alice \n 123456\n");
  std::ostringstream prompt;
  auto user = ReadLine("Username: ", in, prompt);
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(*user, "alice");
  auto code = ReadLine("Code: ", in, prompt);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, "123456");
  EXPECT_EQ(prompt.str(), "");
  EXPECT_FALSE(ReadLine("Code: ", in, prompt).ok());
}

}  // namespace
}  // namespace kura::cli
