// libFuzzer target: kura.toml. An operator's typo must be refused at start
// with the file, the line and the reason, never crash the server or start it
// with a half-read configuration.
// Checked beyond "no crash, no sanitizer report": a refused file is an
// InvalidArgument whose message starts with the file's path; an accepted one
// then goes through ValidateConfig, which refuses the same way or accepts.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/config.h"
#include "require.h"

namespace {

// LoadConfigFile reads a file: each input is written to this one first.
const std::string& ConfigPath() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::atexit([] { ::unlink(ConfigPath().c_str()); });
    return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/kura-fuzz-config-" +
           std::to_string(::getpid()) + ".toml";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(ConfigPath(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) std::abort();  // the fuzzer's own problem, not kura's
  }
  kura::Config config;
  const kura::Status loaded = kura::LoadConfigFile(ConfigPath(), &config);
  if (!loaded.ok()) {
    FUZZ_REQUIRE(loaded.code() == kura::StatusCode::kInvalidArgument);
    FUZZ_REQUIRE(loaded.message().rfind(ConfigPath(), 0) == 0);
    return 0;
  }
  const kura::Status valid = kura::ValidateConfig(config);
  if (!valid.ok()) {
    FUZZ_REQUIRE(valid.code() == kura::StatusCode::kInvalidArgument);
    FUZZ_REQUIRE(!valid.message().empty());
  }
  return 0;
}
