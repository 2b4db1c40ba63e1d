#include "store/pg_test_env.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#ifndef KURA_PG_SERVER_SCRIPT
#error "KURA_PG_SERVER_SCRIPT must name tests/pg/pg-server.sh"
#endif
#ifndef KURA_PG_TEST_DIR
#error "KURA_PG_TEST_DIR must name the shared server directory"
#endif

namespace kura::store::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kInitdb[] = "/usr/lib/postgresql/15/bin/initdb";

bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// Holds the shared-server lock file for the lifetime of the object.
class DirLock {
 public:
  DirLock() {
    fd_ = ::open((std::string(KURA_PG_TEST_DIR) + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

fs::path UsersDir() { return fs::path(std::string(KURA_PG_TEST_DIR) + ".users"); }

// Runs `pg-server.sh CMD DIR`; returns its stdout, or an error.
Result<std::string> RunScript(const std::string& cmd) {
  std::string line = "bash '" KURA_PG_SERVER_SCRIPT "' " + cmd + " '" KURA_PG_TEST_DIR "'";
  FILE* p = ::popen(line.c_str(), "r");
  if (p == nullptr) return UnavailableError("cannot run pg-server.sh");
  std::string out;
  char buf[1024];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) {
    return UnavailableError("pg-server.sh " + cmd + " failed (status " + std::to_string(rc) +
                            "); see " KURA_PG_TEST_DIR "/server.log");
  }
  return out;
}

// Value of `export NAME='value'` in the script's output.
std::string ExportValue(const std::string& out, const std::string& name) {
  const std::string prefix = "export " + name + "='";
  auto pos = out.find(prefix);
  if (pos == std::string::npos) return "";
  pos += prefix.size();
  auto end = out.find('\'', pos);
  return end == std::string::npos ? "" : out.substr(pos, end - pos);
}

struct ServerState {
  std::once_flag once;
  std::string dsn;
  std::string why;            // set when there is no server
  bool registered = false;    // this process is a user of the shared server
  std::mutex mu;
  std::vector<std::string> schemas;  // created by this process
};

ServerState& State() {
  static ServerState* state = new ServerState;  // used from a global environment's TearDown
  return *state;
}

void Start(ServerState& s) {
  if (const char* dsn = std::getenv("KURA_TEST_PG_DSN"); dsn != nullptr && *dsn != '\0') {
    s.dsn = dsn;
    return;
  }
  if (::access(kInitdb, X_OK) != 0) {
    s.why = "PostgreSQL 15 is not installed (no " + std::string(kInitdb) +
            ") and KURA_TEST_PG_DSN is not set";
    return;
  }
  DirLock lock;
  if (!lock.ok()) {
    s.why = "cannot lock " KURA_PG_TEST_DIR ".lock";
    return;
  }
  std::error_code ec;
  fs::create_directories(UsersDir(), ec);
  // Register before starting, so a concurrent last user does not stop the
  // server we are about to use.
  const fs::path me = UsersDir() / std::to_string(::getpid());
  if (FILE* f = std::fopen(me.c_str(), "w"); f != nullptr) std::fclose(f);
  s.registered = true;
  auto out = RunScript("start");
  if (!out.ok()) {
    s.why = out.status().message();
    return;
  }
  s.dsn = ExportValue(*out, "KURA_TEST_PG_DSN");
  if (s.dsn.empty()) s.why = "pg-server.sh start printed no KURA_TEST_PG_DSN";
}

Status ExecOnce(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return UnavailableError("cannot connect to the test database: " + m);
  }
  // Quiet: DROP SCHEMA … CASCADE would print a NOTICE per table.
  PGresult* r = PQexec(c, ("SET client_min_messages = warning; " + sql).c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string m = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) return InternalError("test database: " + m);
  return Status::Ok();
}

// Drops this process's schemas and, if it was the last user of the shared
// server, stops the server.
class PgServerRelease : public ::testing::Environment {
 public:
  void TearDown() override {
    ServerState& s = State();
    std::vector<std::string> schemas;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      schemas.swap(s.schemas);
    }
    if (!schemas.empty() && !s.dsn.empty()) {
      std::string sql;
      for (const auto& name : schemas) sql += "DROP SCHEMA IF EXISTS " + name + " CASCADE;";
      Status st = ExecOnce(s.dsn, sql);
      if (!st.ok()) std::fprintf(stderr, "pg_test_env: %s\n", st.ToString().c_str());
    }
    if (!s.registered) return;
    DirLock lock;
    std::error_code ec;
    fs::remove(UsersDir() / std::to_string(::getpid()), ec);
    bool others = false;
    for (const auto& entry : fs::directory_iterator(UsersDir(), ec)) {
      pid_t pid = static_cast<pid_t>(std::atoi(entry.path().filename().c_str()));
      if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) {
        others = true;
      } else {
        fs::remove(entry.path(), ec);  // a test process that died without cleaning up
      }
    }
    if (!others) {
      // CTest runs one test per process: instead of stopping the server now
      // (and starting it again for the next test), a detached lingerer stops
      // it once no test process has used it for a few seconds. Its output
      // goes to /dev/null so CTest does not wait for it.
      std::string line = "setsid bash '" KURA_PG_SERVER_SCRIPT "' linger '" KURA_PG_TEST_DIR
                         "' 15 </dev/null >/dev/null 2>&1 &";
      if (std::system(line.c_str()) != 0) {
        auto out = RunScript("stop");
        if (!out.ok()) std::fprintf(stderr, "pg_test_env: %s\n", out.status().ToString().c_str());
      }
    }
    s.registered = false;
  }
};

[[maybe_unused]] ::testing::Environment* const kRelease = ::testing::AddGlobalTestEnvironment(new PgServerRelease);

}  // namespace

Result<std::string> PgTestDsn() {
  ServerState& s = State();
  std::call_once(s.once, [&] { Start(s); });
  if (s.dsn.empty()) return UnavailableError(s.why);
  return s.dsn;
}

std::string PgSkipReason() {
  auto dsn = PgTestDsn();
  if (dsn.ok() || EnvSet("KURA_REQUIRE_PG")) return "";
  return "no PostgreSQL for the tests: " + dsn.status().message() + " (set KURA_REQUIRE_PG=1 to fail instead)";
}

Result<std::string> FreshPgDsn() {
  KURA_ASSIGN_OR_RETURN(std::string base, PgTestDsn());
  static std::atomic<int> counter{0};
  const std::string schema = "kura_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  KURA_RETURN_IF_ERROR(ExecOnce(base, "CREATE SCHEMA " + schema));
  {
    ServerState& s = State();
    std::lock_guard<std::mutex> lock(s.mu);
    s.schemas.push_back(schema);
  }
  // Both DSN forms: key=value pairs, or a postgres:// URI.
  if (base.rfind("postgres", 0) == 0 && base.find("://") != std::string::npos) {
    return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  }
  return base + " options='-csearch_path=" + schema + "'";
}

}  // namespace kura::store::testing
