#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace kura::e2e {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The client variables a developer may have exported in the shell that runs
// the tests; a test sets them explicitly or not at all.
bool IsClientVariable(std::string_view entry) {
  for (std::string_view name : {"KURA_ADDR=", "KURA_TOKEN=", "KURA_CACERT="}) {
    if (entry.substr(0, name.size()) == name) return true;
  }
  return false;
}

std::vector<std::string> BuildEnvironment(const Env& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (IsClientVariable(entry)) continue;
    auto eq = entry.find('=');
    if (eq != std::string_view::npos && env.count(std::string(entry.substr(0, eq))) != 0) continue;
    out.emplace_back(entry);
  }
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void EnsureCurlInit() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (e.g. after 100 Continue)
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string value = line.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  (*headers)[name] = value;
  return size * n;
}

nlohmann::json ParseJsonOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return nullptr;
  return j;
}

}  // namespace

std::string KuraBinary() {
  const char* b = std::getenv("KURA_BINARY");
  return b != nullptr ? b : "kura";
}

// --- TempDir --------------------------------------------------------------------

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + std::string(prefix) +
                     ".XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("KURA_E2E_KEEP") != nullptr) {
    std::cerr << "[harness] keeping " << path_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

// --- Helpers --------------------------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  return static_cast<bool>(out);
}

Env ParseEnvFile(const std::string& path) {
  Env env;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    env[line.substr(0, eq)] = value;
  }
  return env;
}

namespace {

// Binds a loopback TCP socket to `port` (0: any) and returns the port it got,
// or -1; the socket is closed again.
int BindLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  int got = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) got = ntohs(addr.sin_port);
  }
  close(fd);
  return got;
}

}  // namespace

int FreePort() {
  // Below the kernel's ephemeral range: a port from that range, free a
  // moment ago, can be taken by any outgoing connection (the tests' own HTTPS
  // clients make many, two tests at a time) before the server binds it.
  int ephemeral_low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  range >> ephemeral_low;
  if (ephemeral_low > 11000) {
    thread_local std::mt19937 pick(std::random_device{}());
    std::uniform_int_distribution<int> ports(10000, ephemeral_low - 1);
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (int port = BindLoopback(ports(pick)); port > 0) return port;
    }
  }
  return BindLoopback(0);
}

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Tail(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "…" + text.substr(text.size() - max_bytes);
}

std::string SanitizerReport(const std::string& log) {
  std::size_t first = std::string::npos;
  for (std::string_view marker :
       {"AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:"}) {
    first = std::min(first, log.find(marker));
  }
  if (first == std::string::npos) return "";
  const std::size_t line = log.rfind('\n', first);
  return log.substr(line == std::string::npos ? 0 : line + 1, 6000);
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

// --- Processes ------------------------------------------------------------------

std::string ProcessResult::Describe() const {
  std::ostringstream s;
  s << "exit=" << exit_code << (timed_out ? " (timed out)" : "") << "\n--- stdout ---\n"
    << Tail(out, 3000) << "\n--- stderr ---\n"
    << Tail(err, 3000);
  return s.str();
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const Env& env, const std::string& stdin_data,
                         std::chrono::milliseconds timeout) {
  ProcessResult result;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    result.err = "pipe2 failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);

  std::vector<std::string> args = argv;
  std::vector<std::string> envs = BuildEnvironment(env);
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(envs);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, c_args[0], &actions, nullptr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    result.err = "posix_spawnp " + argv[0] + ": " + std::strerror(rc);
    result.exit_code = 127;
    return result;
  }

  // A child that exits early must not kill us with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  int in_fd = in[1];
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int out_fd = out[0], err_fd = err[0];
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    std::vector<pollfd> fds;
    if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
    if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
    int n = poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 200)));
    if (n < 0 && errno != EINTR) break;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == in_fd) {
        ssize_t w = write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) written = stdin_data.size();
        if (written >= stdin_data.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t r = read(p.fd, buf, sizeof buf);
      if (r > 0) {
        (p.fd == out_fd ? result.out : result.err).append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || errno != EAGAIN) {
        close(p.fd);
        if (p.fd == out_fd) out_fd = -1;
        else err_fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = DecodeWaitStatus(status);
  result.json = ParseJsonOrNull(result.out);
  return result;
}

std::string SqliteShell(const std::string& db, const std::string& sql) {
  ProcessResult r = RunProcess({"sqlite3", db, sql});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::unique_ptr<BackgroundProcess> BackgroundProcess::Spawn(const std::vector<std::string>& argv,
                                                            const std::string& log_path, std::string* error) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = BuildEnvironment({});
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(envs);
  std::unique_ptr<BackgroundProcess> p(new BackgroundProcess());
  int rc = posix_spawnp(&p->pid_, c_args[0], &actions, nullptr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    *error = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return nullptr;
  }
  return p;
}

bool BackgroundProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

BackgroundProcess::~BackgroundProcess() {
  if (!Running()) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 250; ++i) {
    if (!Running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  do {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (Clock::now() < deadline);
  return false;
}

// --- HTTPS ----------------------------------------------------------------------

std::string HttpResponse::Header(std::string_view name) const {
  std::string key(name);
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = headers.find(key);
  return it == headers.end() ? "" : it->second;
}

std::string HttpResponse::Describe() const {
  std::ostringstream s;
  if (status == 0) {
    s << "transport error: " << error;
    return s.str();
  }
  s << "HTTP " << status << " body=" << Tail(body, 2000);
  return s.str();
}

HttpClient::HttpClient(std::string base_url, std::string ca_file)
    : base_url_(std::move(base_url)), ca_file_(std::move(ca_file)) {
  EnsureCurlInit();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResponse HttpClient::Send(const HttpRequest& request) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache: keep-alive between requests
  HttpResponse response;
  std::string url = base_url_ + request.path;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(10000L, request.timeout_ms));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);  // send bad paths as written
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response.headers);

  struct curl_slist* headers = nullptr;
  bool has_expect = false;
  for (const auto& h : request.headers) {
    headers = curl_slist_append(headers, h.c_str());
    if (h.rfind("Expect:", 0) == 0) has_expect = true;
  }
  if (!has_expect) headers = curl_slist_append(headers, "Expect:");
  std::string auth;
  if (request.token) {
    auth = "Authorization: Bearer " + *request.token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  if (request.body) {
    // A Content-Type of the request's own (an empty "Content-Type:" sends
    // none) stands; otherwise the body is JSON.
    const bool has_content_type = std::any_of(request.headers.begin(), request.headers.end(), [](const std::string& h) {
      constexpr std::string_view kName = "content-type:";
      return h.size() >= kName.size() && std::equal(kName.begin(), kName.end(), h.begin(), [](char a, char b) {
               return a == std::tolower(static_cast<unsigned char>(b));
             });
    });
    if (!has_content_type) headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body->size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body->data());
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET" || request.body) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    response.status = 0;
    response.error = std::string(curl_easy_strerror(rc)) + (errbuf[0] != '\0' ? std::string(": ") + errbuf : "");
    return response;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  response.json = ParseJsonOrNull(response.body);
  return response;
}

HttpResponse HttpClient::Get(const std::string& path, const std::optional<std::string>& token,
                             const std::vector<std::string>& headers) {
  return Send({.method = "GET", .path = path, .body = std::nullopt, .token = token, .headers = headers});
}

HttpResponse HttpClient::Delete(const std::string& path, const std::optional<std::string>& token) {
  return Send({.method = "DELETE", .path = path, .body = std::nullopt, .token = token, .headers = {}});
}

HttpResponse HttpClient::Post(const std::string& path, const nlohmann::json& body,
                              const std::optional<std::string>& token) {
  return Send({.method = "POST", .path = path, .body = body.dump(), .token = token, .headers = {}});
}

HttpResponse HttpClient::Put(const std::string& path, const nlohmann::json& body,
                             const std::optional<std::string>& token, const std::vector<std::string>& headers) {
  return Send({.method = "PUT", .path = path, .body = body.dump(), .token = token, .headers = headers});
}

::testing::AssertionResult HasErrorModel(const HttpResponse& r) {
  const nlohmann::json& j = r.json;
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) {
    return ::testing::AssertionFailure() << "no {\"error\":{…}} object in body: " << r.Describe();
  }
  const nlohmann::json& e = j["error"];
  if (!e.contains("code") || !e["code"].is_string() || e["code"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "error.code missing or empty: " << r.Describe();
  }
  if (!e.contains("message") || !e["message"].is_string() || e["message"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "error.message missing or empty: " << r.Describe();
  }
  if (!e.contains("request_id") || !e["request_id"].is_string() || e["request_id"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "error.request_id missing or empty: " << r.Describe();
  }
  if (e["request_id"].get<std::string>() != r.Header("x-request-id")) {
    return ::testing::AssertionFailure() << "error.request_id \"" << e["request_id"].get<std::string>()
                                         << "\" differs from X-Request-Id \"" << r.Header("x-request-id") << "\"";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsError(const HttpResponse& r, long status, std::string_view code) {
  if (r.status != status) {
    return ::testing::AssertionFailure() << "expected HTTP " << status << " (" << code << "), got " << r.Describe();
  }
  if (::testing::AssertionResult model = HasErrorModel(r); !model) return model;
  if (r.json["error"]["code"] != code) {
    return ::testing::AssertionFailure() << "error.code should be \"" << code << "\": " << r.Describe();
  }
  if (status == 401 && r.Header("www-authenticate").rfind("Bearer", 0) != 0) {
    return ::testing::AssertionFailure() << "401 without WWW-Authenticate: Bearer (got \""
                                         << r.Header("www-authenticate") << "\")";
  }
  return ::testing::AssertionSuccess();
}

// --- KuraServer -----------------------------------------------------------------

KuraServer::KuraServer(ServerOptions options) : options_(std::move(options)), dir_(std::make_unique<TempDir>()) {}

std::unique_ptr<KuraServer> KuraServer::Start(ServerOptions options, std::string* error) {
  std::unique_ptr<KuraServer> server(new KuraServer(std::move(options)));
  if (server->options_.dev && server->options_.data_dir.empty()) server->options_.data_dir = server->dir_->Sub("data");
  if (!server->Launch(error)) return nullptr;
  return server;
}

namespace {

// Whether a TOML text has an [auth] table (or an [auth.…] one) of its own.
bool HasAuthTable(const std::string& toml) {
  std::istringstream in(toml);
  std::string line;
  while (std::getline(in, line)) {
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.rfind("[auth]", 0) == 0 || line.rfind("[auth.", 0) == 0) return true;
  }
  return false;
}

}  // namespace

// Written again at every launch: a test may change its own file between a
// stop and a restart.
std::string KuraServer::EffectiveConfig(std::string* error) {
  std::string text;
  if (!options_.config_file.empty()) {
    std::ifstream in(options_.config_file, std::ios::binary);
    // A file that cannot be read is passed as it is: the server's own answer
    // to it is what such a test checks.
    if (!in) return options_.config_file;
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    if (HasAuthTable(text)) return options_.config_file;
  }
  const std::string path = dir_->Sub("effective-kura.toml");
  if (!WriteFile(path, text + kFastPasswordHashing)) {
    *error = "cannot write " + path;
    return "";
  }
  return path;
}

bool KuraServer::Launch(std::string* error) {
  std::vector<std::string> args = {KuraBinary(), "serve"};
  if (options_.dev) args.push_back("--dev");
  const std::string config = EffectiveConfig(error);
  if (config.empty()) return false;
  args.insert(args.end(), {"--config", config});
  if (!options_.data_dir.empty()) args.insert(args.end(), {"--data", options_.data_dir});
  if (!options_.listen.empty()) args.insert(args.end(), {"--listen", options_.listen});

  const std::string out_path = dir_->Sub("server.out");
  const std::string err_path = dir_->Sub("server.err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  std::vector<std::string> envs = BuildEnvironment({});
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(envs);
  const std::string dev_env = options_.data_dir + "/dev.env";
  // Start the server from its temp dir, so a relative default (./kura-data)
  // can never land in the source tree.
  std::string cwd = fs::current_path().string();
  fs::current_path(dir_->path());
  int rc = posix_spawn(&pid_, c_args[0], &actions, nullptr, c_args.data(), c_env.data());
  fs::current_path(cwd);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    *error = "cannot start " + args[0] + ": " + std::strerror(rc);
    return false;
  }

  auto fail = [&](const std::string& why) {
    *error = why + "\n--- server log (" + dir_->path() + ") ---\n" + Tail(Log());
    Stop(std::chrono::seconds(5));
    return false;
  };
  const auto deadline = Clock::now() + options_.start_timeout;
  auto exited = [&]() -> std::optional<int> {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return DecodeWaitStatus(status);
    }
    return std::nullopt;
  };

  // In dev mode the address comes from dev.env, which a restart rewrites (a
  // new port with --listen …:0): read it again on every attempt, so a file
  // left by the previous run is never trusted longer than it is right.
  if (!options_.dev) {
    base_url_ = options_.base_url;
    ca_file_ = options_.ca_file;
    http_ = std::make_unique<HttpClient>(base_url_, ca_file_);
  }
  HttpResponse last;
  for (;;) {
    if (auto code = exited()) return fail("kura exited with " + std::to_string(*code) + " while starting");
    if (options_.dev) {
      Env env = ParseEnvFile(dev_env);
      if (env.count("KURA_ADDR") && env.count("KURA_CACERT") && env.count("KURA_TOKEN")) {
        if (!http_ || env["KURA_ADDR"] != base_url_ || env["KURA_CACERT"] != ca_file_) {
          base_url_ = env["KURA_ADDR"];
          ca_file_ = env["KURA_CACERT"];
          http_ = std::make_unique<HttpClient>(base_url_, ca_file_);
        }
        root_token_ = env["KURA_TOKEN"];
      }
    }
    if (http_) {
      last = http_->Get("/v1/sys/health");
      if (last.status == 200 || (!options_.wait_ready && last.status != 0)) return true;
    }
    if (Clock::now() > deadline) {
      if (!http_) return fail("timed out waiting for " + dev_env);
      return fail("timed out waiting for GET " + base_url_ + "/v1/sys/health (" +
                  std::string(options_.wait_ready ? "200" : "any answer") + "); last: " + last.Describe());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

KuraServer::~KuraServer() {
  if (pid_ > 0) Stop();
}

void KuraServer::Signal(int signo) {
  if (pid_ > 0) kill(pid_, signo);
}

std::optional<int> KuraServer::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return r == -1 ? -1 : DecodeWaitStatus(status);
    }
    if (Clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int KuraServer::Stop(std::chrono::seconds grace) {
  if (pid_ <= 0) return -1;
  http_.reset();  // close our keep-alive connection: nothing left to drain
  kill(pid_, SIGTERM);
  if (auto code = WaitExit(grace)) return *code;
  std::cerr << "[harness] kura (pid " << pid_ << ") ignored SIGTERM for " << grace.count() << "s: SIGKILL\n";
  kill(pid_, SIGKILL);
  return WaitExit(std::chrono::seconds(10)).value_or(-1);
}

bool KuraServer::Restart(std::string* error) {
  if (pid_ > 0) Stop();
  return Launch(error);
}

std::string KuraServer::Log() const {
  return "[stdout]\n" + ReadFile(dir_->Sub("server.out")) + "\n[stderr]\n" + ReadFile(dir_->Sub("server.err"));
}

Env KuraServer::ClientEnv(const std::string& token) const {
  Env env = {{"KURA_ADDR", base_url_}, {"KURA_CACERT", ca_file_}};
  if (!token.empty()) env["KURA_TOKEN"] = token;
  return env;
}

ProcessResult KuraServer::Cli(const std::vector<std::string>& args, const std::string& token,
                              const std::string& stdin_data) {
  std::vector<std::string> argv = {KuraBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, ClientEnv(token), stdin_data);
}

// --- Tenants --------------------------------------------------------------------

nlohmann::json CustomersSchema() {
  return {
      {"fields",
       {
           {"email", {{"type", "string"}, {"class", "personal"}, {"index", true}, {"mask", "email"}}},
           {"phone", {{"type", "string"}, {"class", "personal"}, {"mask", "last4"}}},
           {"name", {{"type", "string"}, {"class", "personal"}, {"mask", "partial"}}},
           {"national_id", {{"type", "string"}, {"class", "sensitive"}, {"mask", "hidden"}}},
           {"note", {{"type", "string"}, {"class", "internal"}, {"mask", "none"}}},
       }},
      {"required", {"email"}},
      {"retention_days", 365},
  };
}

nlohmann::json CreateApiKey(KuraServer& server, const std::string& token, const std::string& tenant,
                            const std::string& role, std::string* error, const std::optional<std::string>& expires_at) {
  nlohmann::json body = {{"name", "e2e-" + role}, {"role", role}, {"expires_at", nullptr}};
  if (expires_at) body["expires_at"] = *expires_at;
  HttpResponse r = server.http().Post("/v1/t/" + tenant + "/apikeys", body, token);
  if (r.status != 201 || !r.json.is_object() || !r.json.contains("key") || !r.json["key"].is_string() ||
      !r.json.contains("id") || !r.json["id"].is_string()) {
    *error = "POST /v1/t/" + tenant + "/apikeys (role " + role + "): " + r.Describe();
    return nullptr;
  }
  return r.json;
}

std::string SignIn(KuraServer& server, const std::string& tenant, const std::string& username,
                   const std::string& password, std::string* error) {
  HttpResponse r =
      server.http().Post("/v1/auth/login", {{"username", username}, {"password", password}, {"tenant", tenant}});
  if (r.status != 200 || !r.json.is_object() || !r.json.contains("token") || !r.json["token"].is_string()) {
    *error = "POST /v1/auth/login " + username + "@" + tenant + ": " + r.Describe();
    return "";
  }
  if (r.json.contains("restriction") && !r.json["restriction"].is_null()) {
    *error = "sign-in of " + username + "@" + tenant + " is restricted: " + r.Describe();
    return "";
  }
  return r.json["token"].get<std::string>();
}

std::optional<TestTenant> CreateTestTenant(KuraServer& server, const std::string& id, std::string* error) {
  HttpResponse r = server.http().Post("/v1/tenants",
                                      {{"id", id},
                                       {"name", "Tenant " + id},
                                       {"admin", {{"username", kTestAdminUsername}, {"password", kTestAdminPassword}}}},
                                      server.root_token());
  if (r.status != 201) {
    *error = "POST /v1/tenants " + id + ": " + r.Describe();
    return std::nullopt;
  }
  std::string session = SignIn(server, id, kTestAdminUsername, kTestAdminPassword, error);
  if (session.empty()) return std::nullopt;
  r = server.http().Put("/v1/t/" + id + "/collections/customers", CustomersSchema(), session);
  if (r.status != 201 && r.status != 200) {
    *error = "PUT customers collection (as the tenant admin): " + r.Describe();
    return std::nullopt;
  }
  nlohmann::json key = CreateApiKey(server, session, id, "admin", error);
  if (key.is_null()) return std::nullopt;
  return TestTenant{id, key["key"].get<std::string>(), key["id"].get<std::string>(), session};
}

std::string RecordsPath(const std::string& tenant, const std::string& collection) {
  return "/v1/t/" + tenant + "/collections/" + collection + "/records";
}

std::string RecordPath(const std::string& tenant, const std::string& collection, const std::string& id) {
  return RecordsPath(tenant, collection) + "/" + id;
}

std::optional<std::vector<std::string>> ListAllRecordIds(HttpClient& http, const std::string& token,
                                                         const std::string& tenant, const std::string& collection) {
  std::vector<std::string> ids;
  std::string after;
  for (int page = 0; page < 1000; ++page) {
    std::string path = RecordsPath(tenant, collection) + "?limit=100";
    if (!after.empty()) path += "&after=" + UrlEncode(after);
    HttpResponse r = http.Get(path, token);
    if (r.status != 200 || !r.json.is_object() || !r.json.contains("items") || !r.json["items"].is_array()) {
      return std::nullopt;
    }
    for (const auto& item : r.json["items"]) ids.push_back(item.value("id", ""));
    if (!r.json.contains("next") || r.json["next"].is_null()) return ids;
    if (!r.json["next"].is_string()) return std::nullopt;
    after = r.json["next"].get<std::string>();
  }
  return std::nullopt;
}

}  // namespace kura::e2e
