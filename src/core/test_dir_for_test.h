// TestDir: a fresh directory under the temp directory for one test, removed
// with everything in it when the object goes. Test-only.
#ifndef KURA_CORE_TEST_DIR_FOR_TEST_H_
#define KURA_CORE_TEST_DIR_FOR_TEST_H_

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kura {

class TestDir {
 public:
  TestDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kura-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed under " + pattern);
    path_ = pattern;
  }
  ~TestDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::string& path() const { return path_; }
  // `name` inside the directory.
  std::string Sub(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

}  // namespace kura

#endif  // KURA_CORE_TEST_DIR_FOR_TEST_H_
