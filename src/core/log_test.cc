// The access log's file target: lines are buffered, written in large pieces
// and on flush, to a file only the service can read.
#include "core/log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kura::log {
namespace {

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AccessLogTest, LinesAreBufferedThenWrittenOnFlushAndWhenTheBufferFills) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("kura_log_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "access.log";
  const auto opened = std::chrono::steady_clock::now();
  ASSERT_TRUE(OpenAccessLog(file.string()));
  ASSERT_TRUE(AccessEnabled());
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  for (int i = 0; i < 10; ++i) Access("GET /v1/sys/health 200 line-" + std::to_string(i));
  // Ten short lines stay in memory: no write(2) per request (unless this
  // machine was so slow that the once-a-second flush came first).
  if (std::chrono::steady_clock::now() - opened < std::chrono::milliseconds(900)) {
    EXPECT_EQ(std::filesystem::file_size(file), 0u);
  }
  FlushAccessLog();
  std::string text = ReadAll(file);
  for (int i = 0; i < 10; ++i) EXPECT_NE(text.find("line-" + std::to_string(i) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" access GET /v1/sys/health 200 line-0"), std::string::npos) << text;

  // Without a flush, a full buffer (32 KiB) is written by itself.
  const std::string filler(200, 'x');
  for (int i = 0; i < 400; ++i) Access(filler);
  EXPECT_GT(std::filesystem::file_size(file), 32u * 1024u);

  // An unwritable target is refused; "off" turns the log off.
  EXPECT_FALSE(OpenAccessLog((dir / "missing" / "access.log").string()));
  ASSERT_TRUE(OpenAccessLog("off"));
  EXPECT_FALSE(AccessEnabled());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace kura::log
