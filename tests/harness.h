// End-to-end test harness: runs the real `kura` binary as a child process on a
// free loopback port in a temporary directory and talks to it over real HTTPS
// (libcurl, verifying the server against the CA file the server wrote) and
// through the real CLI.
//
// Nothing here knows kura's internals: everything goes through the binary
// named by $KURA_BINARY (set by CTest), the files it writes (dev.env) and its
// public HTTP API. That keeps the tests honest about the contract.
//
// Thread safety: a KuraServer and an HttpClient are used from one thread at a
// time; tests that need concurrency create one HttpClient per thread.
#ifndef KURA_TESTS_HARNESS_H_
#define KURA_TESTS_HARNESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kura::e2e {

using Env = std::map<std::string, std::string>;

// $KURA_BINARY (absolute path of the binary under test).
std::string KuraBinary();

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on
// destruction unless $KURA_E2E_KEEP is set (then its path is printed).
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "kura-e2e");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// --- Files and small helpers ------------------------------------------------
std::string ReadFile(const std::string& path);  // "" if unreadable
bool WriteFile(const std::string& path, std::string_view content);
// Parses KEY=VALUE lines (tolerates `export ` and surrounding quotes).
Env ParseEnvFile(const std::string& path);
// A loopback port free a moment ago, for a server whose address must be
// known before it starts (a config file, a restart on the same port); chosen
// below the kernel's ephemeral range, where no outgoing connection takes it.
// Servers that can listen on port 0 and report their address should.
int FreePort();
std::string UrlEncode(std::string_view s);
// RFC 3339 UTC with seconds: "2026-01-02T03:04:05Z".
std::string Rfc3339(std::chrono::system_clock::time_point t);
// Last `max_bytes` of a text, for failure messages.
std::string Tail(const std::string& text, std::size_t max_bytes = 6000);
// The first sanitizer report in a log (AddressSanitizer, LeakSanitizer,
// UBSan's "runtime error:") and what follows it, up to 6000 bytes; "" when
// there is none. The binary under test is built with ASan and UBSan, which
// print their reports to its stderr (KuraServer::Log).
std::string SanitizerReport(const std::string& log);
// Asks `done` every `interval` until it answers true (then true) or `timeout`
// has passed (then false). For what the server or a helper reaches in its own
// time (a checkpoint signed, a key expired, a line printed): a fixed sleep is
// too short on a slow machine and time lost on a fast one.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(100));

// --- Child processes ----------------------------------------------------------
struct ProcessResult {
  int exit_code = -1;  // 128+N when killed by signal N
  bool timed_out = false;
  std::string out;
  std::string err;
  nlohmann::json json;  // stdout parsed as JSON; null if it is not JSON
  std::string Describe() const;
};

// Runs argv[0] (PATH lookup) with the current environment minus KURA_ADDR,
// KURA_TOKEN and KURA_CACERT, plus `env`. Feeds `stdin_data`, captures stdout
// and stderr; kills the process after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv, const Env& env = {},
                         const std::string& stdin_data = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// One statement or dot-command through the sqlite3 shell on `db` (a failure
// fails the test); its output without trailing newlines.
std::string SqliteShell(const std::string& db, const std::string& sql);

// A helper process running beside a test (e.g. `openssl s_server`), stdout
// and stderr appended to `log_path`; SIGTERM then SIGKILL on destruction.
class BackgroundProcess {
 public:
  static std::unique_ptr<BackgroundProcess> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                                                  std::string* error);
  ~BackgroundProcess();
  pid_t pid() const { return pid_; }
  bool Running();

 private:
  BackgroundProcess() = default;
  pid_t pid_ = -1;
};

// Whether something accepts TCP connections on 127.0.0.1:port, waiting up to `timeout`.
bool WaitForPort(int port, std::chrono::milliseconds timeout);

// --- HTTPS --------------------------------------------------------------------
struct HttpResponse {
  long status = 0;     // 0: the request failed below HTTP (see `error`)
  std::string error;   // libcurl's error text when status == 0
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  nlohmann::json json;  // body parsed as JSON; null when empty or not JSON
  std::string Header(std::string_view name) const;  // "" if absent
  std::string Describe() const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // "/v1/…", with the query string
  std::optional<std::string> body;
  std::optional<std::string> token;  // sent as Authorization: Bearer
  // Extra "Name: value" lines. A body is sent as Content-Type:
  // application/json unless a Content-Type line here says otherwise (an
  // empty "Content-Type:" sends none).
  std::vector<std::string> headers;
  long timeout_ms = 60000;           // whole request
};

// One libcurl easy handle: keeps its connection alive between requests.
class HttpClient {
 public:
  HttpClient(std::string base_url, std::string ca_file);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse Send(const HttpRequest& request);
  HttpResponse Get(const std::string& path, const std::optional<std::string>& token = std::nullopt,
                   const std::vector<std::string>& headers = {});
  HttpResponse Delete(const std::string& path, const std::optional<std::string>& token = std::nullopt);
  HttpResponse Post(const std::string& path, const nlohmann::json& body,
                    const std::optional<std::string>& token = std::nullopt);
  HttpResponse Put(const std::string& path, const nlohmann::json& body,
                   const std::optional<std::string>& token = std::nullopt,
                   const std::vector<std::string>& headers = {});

  const std::string& base_url() const { return base_url_; }
  const std::string& ca_file() const { return ca_file_; }

 private:
  std::string base_url_;
  std::string ca_file_;
  void* curl_;  // CURL*, kept out of this header
};

// Checks the error model: status, {"error":{"code","message","request_id"}},
// request_id equal to the X-Request-Id header; for 401 a
// `WWW-Authenticate: Bearer` challenge.
::testing::AssertionResult IsError(const HttpResponse& response, long status, std::string_view code);
// The error model whatever the status and code: {"error":{"code","message",
// "request_id"}}, each a non-empty string, request_id equal to the
// X-Request-Id header (IsError's checks but the status, the code's value and
// the challenge). For answers a test cannot predict.
::testing::AssertionResult HasErrorModel(const HttpResponse& response);

// --- The server under test ----------------------------------------------------
struct ServerOptions {
  bool dev = true;              // --dev
  // --config: this file, with kFastPasswordHashing appended when it has no
  // [auth] table of its own (the server reads a copy in its temp dir). Empty:
  // a file with only kFastPasswordHashing. A test that sets [auth] itself
  // and signs users in should set those two keys too.
  std::string config_file;
  std::string data_dir;         // --data DIR; empty: <server temp dir>/data (dev) / not passed
  std::string listen = "127.0.0.1:0";  // --listen; empty: not passed
  // Without --dev there is no dev.env: the caller names where the server
  // listens and which CA signs its certificate.
  std::string base_url;
  std::string ca_file;
  // true: wait for health 200. false: wait for any HTTP answer (sealed start).
  bool wait_ready = true;
  std::chrono::seconds start_timeout{30};
};

// Cheap Argon2id for every server a test starts (unless its config has an
// [auth] table): tests check behaviour, not cost, and the default 64 MiB
// hash takes seconds under the sanitizers. Each hash records its parameters,
// so nothing else changes.
inline constexpr char kFastPasswordHashing[] =
    "\n[auth]\npassword_hash_memory_kib = 256\npassword_hash_iterations = 1\n";

class KuraServer {
 public:
  // Starts `kura serve …` and waits until it answers (see ServerOptions). On
  // failure returns nullptr and puts the reason and the server's log in *error.
  static std::unique_ptr<KuraServer> Start(ServerOptions options, std::string* error);
  // Stops the server (SIGTERM, then SIGKILL) and removes its temp dir.
  ~KuraServer();

  // Sends SIGTERM, waits up to `grace` for the exit, then SIGKILLs.
  // Returns the exit code (128+N when killed by signal N).
  int Stop(std::chrono::seconds grace = std::chrono::seconds(40));
  // Starts the server again with the same options and data dir.
  bool Restart(std::string* error);
  void Signal(int signo);
  // Waits for the process to exit; nullopt on timeout.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  const std::string& base_url() const { return base_url_; }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& root_token() const { return root_token_; }  // dev mode
  void set_root_token(std::string token) { root_token_ = std::move(token); }
  const std::string& data_dir() const { return options_.data_dir; }
  const std::string& dir() const { return dir_->path(); }
  // stdout + stderr of every run so far.
  std::string Log() const;

  HttpClient& http() { return *http_; }
  // Environment for client commands: KURA_ADDR, KURA_CACERT, and KURA_TOKEN
  // when `token` is not empty.
  Env ClientEnv(const std::string& token) const;
  // Runs `kura args…` as a client of this server.
  ProcessResult Cli(const std::vector<std::string>& args, const std::string& token,
                    const std::string& stdin_data = "");

 private:
  KuraServer(ServerOptions options);
  bool Launch(std::string* error);
  // The --config file to pass (see ServerOptions::config_file); "" and
  // *error on failure.
  std::string EffectiveConfig(std::string* error);

  ServerOptions options_;
  std::unique_ptr<TempDir> dir_;
  pid_t pid_ = -1;
  std::string base_url_;
  std::string ca_file_;
  std::string root_token_;
  std::unique_ptr<HttpClient> http_;
};

// --- A tenant to test against -------------------------------------------------
// Collection `customers` of every test tenant:
//   email (indexed, mask email, required), phone (last4), name (partial),
//   national_id (hidden, sensitive), note (none, internal).
nlohmann::json CustomersSchema();

// The first admin user every test tenant is created with. The password must
// pass the password policy (length, not the username, cracklib).
inline constexpr char kTestAdminUsername[] = "admin";
inline constexpr char kTestAdminPassword[] = "Orchid-Lantern-Quarry-58";

struct TestTenant {
  std::string id;
  std::string admin_key;  // API key with the built-in `admin` role
  std::string admin_key_id;
  std::string admin_session;  // session token of kTestAdminUsername (role `admin`)
};

// Signs `username` of `tenant` in with a password (POST /v1/auth/login).
// Returns the session token; "" on failure (*error set).
std::string SignIn(KuraServer& server, const std::string& tenant, const std::string& username,
                   const std::string& password, std::string* error);

// The way a tenant is set up (SPEC §1: staff, root included, do not administer
// a tenant): the root token creates tenant `id` with its first admin
// (kTestAdminUsername / kTestAdminPassword); that admin signs in and, with
// the session, PUTs `customers` (CustomersSchema) and creates an API key with
// the `admin` role. nullopt (and *error) on any failure.
std::optional<TestTenant> CreateTestTenant(KuraServer& server, const std::string& id, std::string* error);

// Creates an API key of `role` in `tenant` with the given token (a tenant
// admin's key or session; root is refused). Returns {"id","key",…}; null json
// on failure (*error set).
nlohmann::json CreateApiKey(KuraServer& server, const std::string& token, const std::string& tenant,
                            const std::string& role, std::string* error,
                            const std::optional<std::string>& expires_at = std::nullopt);

// Path helpers.
std::string RecordsPath(const std::string& tenant, const std::string& collection);
std::string RecordPath(const std::string& tenant, const std::string& collection, const std::string& id);

// Every record id of a collection, following `next` (admin key).
std::optional<std::vector<std::string>> ListAllRecordIds(HttpClient& http, const std::string& token,
                                                         const std::string& tenant, const std::string& collection);

}  // namespace kura::e2e

#endif  // KURA_TESTS_HARNESS_H_
