// PostgreSQL for the end-to-end tests: the shared throwaway server
// (tests/pg/pg-server.sh) and helpers. See pg_support.h.
#include "pg_support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>

#include "core/bytes.h"

namespace kura::e2e {

namespace fs = std::filesystem;

namespace {
constexpr char kPgBin[] = "/usr/lib/postgresql/15/bin";

bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// tests/pg/pg-server.sh, found next to this source file (CMake compiles it
// by absolute path).
std::string PgServerScript() { return (fs::path(__FILE__).parent_path() / "pg" / "pg-server.sh").string(); }

// One server directory per build tree (KURA_BINARY differs between trees), so
// parallel builds never share or stop each other's server.
std::string PgServerDir() {
  std::ostringstream name;
  name << "/tmp/kura-pg-e2e-" << std::hex << (std::hash<std::string>{}(KuraBinary()) & 0xffffffffffULL);
  return name.str();
}

std::string Psql() {
  std::string p = std::string(kPgBin) + "/psql";
  return ::access(p.c_str(), X_OK) == 0 ? p : "psql";
}

// The value of `export NAME='value'` in pg-server.sh's output.
std::string ExportValue(const std::string& out, const std::string& name) {
  const std::string prefix = "export " + name + "='";
  auto pos = out.find(prefix);
  if (pos == std::string::npos) return "";
  pos += prefix.size();
  auto end = out.find('\'', pos);
  return end == std::string::npos ? "" : out.substr(pos, end - pos);
}

// Holds DIR.lock (the lock pg-server.sh's linger takes too) while alive.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = ::open((dir + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The PostgreSQL server of this test process: started (or joined) on first
// use; this process is registered as a user in DIR.users/<pid> so a
// concurrent test process's lingerer does not stop it underneath us.
struct PgServerState {
  std::string dsn;  // base DSN (key=value form from pg-server.sh, or KURA_TEST_PG_DSN)
  std::string why;  // why there is none
  bool registered = false;
};

PgServerState* g_server = nullptr;  // set on first use; never freed (used from a global TearDown)

PgServerState& ServerState() {
  static PgServerState* server = g_server = [] {
    auto* s = new PgServerState;
    if (EnvSet("KURA_TEST_PG_DSN")) {
      s->dsn = std::getenv("KURA_TEST_PG_DSN");
      return s;
    }
    if (::access((std::string(kPgBin) + "/initdb").c_str(), X_OK) != 0) {
      s->why = "PostgreSQL 15 is not installed (no " + std::string(kPgBin) + "/initdb) and KURA_TEST_PG_DSN is not set";
      return s;
    }
    const std::string dir = PgServerDir();
    DirLock lock(dir);
    if (!lock.ok()) {
      s->why = "cannot lock " + dir + ".lock";
      return s;
    }
    std::error_code ec;
    fs::create_directories(dir + ".users", ec);
    WriteFile(dir + ".users/" + std::to_string(::getpid()), "");
    s->registered = true;
    ProcessResult r = RunProcess({"bash", PgServerScript(), "start", dir}, {}, "", std::chrono::seconds(180));
    if (r.exit_code != 0) {
      s->why = "pg-server.sh start failed: " + r.Describe() + "\n" + Tail(ReadFile(dir + "/server.log"), 2000);
      return s;
    }
    s->dsn = ExportValue(r.out, "KURA_TEST_PG_DSN");
    if (s->dsn.empty()) s->why = "pg-server.sh start printed no KURA_TEST_PG_DSN";
    return s;
  }();
  return *server;
}

// At exit: unregister; the last user leaves a detached lingerer that stops
// the server once nobody has used it for 15 s (a following test process
// then finds it still running instead of starting it again).
class PgServerRelease : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_server == nullptr || !g_server->registered) return;  // this process never used the server
    PgServerState& s = *g_server;
    const std::string dir = PgServerDir();
    DirLock lock(dir);
    std::error_code ec;
    fs::remove(dir + ".users/" + std::to_string(::getpid()), ec);
    std::string line = "setsid bash '" + PgServerScript() + "' linger '" + dir + "' 15 </dev/null >/dev/null 2>&1 &";
    if (std::system(line.c_str()) != 0) RunProcess({"bash", PgServerScript(), "stop", dir});
    s.registered = false;
  }
};
[[maybe_unused]] ::testing::Environment* const kRelease = ::testing::AddGlobalTestEnvironment(new PgServerRelease);

}  // namespace

// Runs one SQL text with psql (unaligned, tuples only) as the test role.
ProcessResult PgSql(const std::string& dsn, const std::string& sql) {
  return RunProcess({Psql(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql}, {}, "",
                    std::chrono::seconds(60));
}

// A TOML basic string.
std::string PgToml(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string PgHex(const std::string& s) { return HexEncode(AsBytes(s)); }

// Splits `password=…` out of a key=value DSN (pg-server.sh prints the
// password inline): kura gets the DSN without it and the password in a
// 0600 file, as the operations guide recommends.
void PgSplitPassword(const std::string& dsn, std::string* rest, std::string* password) {
  std::istringstream in(dsn);
  std::string word;
  rest->clear();
  password->clear();
  while (in >> word) {
    if (word.rfind("password=", 0) == 0) {
      *password = word.substr(9);
      continue;
    }
    if (!rest->empty()) *rest += ' ';
    *rest += word;
  }
}

std::string PgBinDir() { return kPgBin; }
std::string PgScript(const std::string& name) { return (fs::path(__FILE__).parent_path() / "pg" / name).string(); }
bool PgInstalled() { return ::access((std::string(kPgBin) + "/initdb").c_str(), X_OK) == 0; }
bool PgRequired() { return EnvSet("KURA_REQUIRE_PG"); }
std::string SharedPgDsn() { return ServerState().dsn; }
std::string SharedPgWhyNot() { return ServerState().why; }
std::string PgExportValue(const std::string& out, const std::string& name) { return ExportValue(out, name); }

std::string PgServeToml(const std::string& dsn, const std::string& dir, const std::string& storage_lines,
                        std::string* error) {
  std::string kura_dsn = dsn, password;
  if (dsn.find("://") == std::string::npos) PgSplitPassword(dsn, &kura_dsn, &password);
  std::string toml =
      "region = \"jp\"\nsite = \"tokyo-1\"\n\n[storage]\nengine = \"postgres\"\ndsn = " + PgToml(kura_dsn) + "\n" +
      storage_lines;
  if (!password.empty()) {
    const std::string file = (fs::path(dir) / "pg-password").string();
    if (!WriteFile(file, password + "\n") || ::chmod(file.c_str(), 0600) != 0) {
      *error = "cannot write " + file;
      return "";
    }
    toml += "password_file = " + PgToml(file) + "\n";
  }
  return toml;
}

std::string PgDsnWithSchema(const std::string& base, const std::string& schema) {
  if (base.rfind("postgres", 0) == 0 && base.find("://") != std::string::npos) {
    return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  }
  return base + " options='-csearch_path=" + schema + "'";
}

}  // namespace kura::e2e
