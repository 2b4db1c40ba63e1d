// Kerberos sign-in end to end (SPEC §3 Authentication, issue 4): a real MIT
// KDC for the throwaway realm KURA.TEST on 127.0.0.1 (tests/krb/kdc.sh), the
// real `kura serve` with a keytab for HTTP/localhost, and three clients that
// share no code with kura: curl (`--negotiate -u :`), `kura login
// --kerberos`, and a few lines of GSSAPI here for the cases curl cannot
// stage (a token presented after its ticket expired, Negotiate on a route
// whose challenge is Bearer).
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kKdcRealm[] = "KURA.TEST";
// kdc.sh sets `clockskew = 3` in the realm: the acceptor forgives a ticket's
// end time by this much.
constexpr int kClockSkewSeconds = 3;
constexpr char kBobPassword[] = "Correct-Horse-Battery-Staple-7";

// --- A minimal GSSAPI client ---------------------------------------------------

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = text.back() == '=' ? (text[text.size() - 2] == '=' ? 2 : 1) : 0;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string GssError(OM_uint32 major, OM_uint32 minor) {
  std::string out;
  for (auto [code, type] : {std::pair{major, GSS_C_GSS_CODE}, std::pair{minor, GSS_C_MECH_CODE}}) {
    OM_uint32 more = 0;
    do {
      OM_uint32 m = 0;
      gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
      if (GSS_ERROR(gss_display_status(&m, code, type, GSS_C_NO_OID, &more, &text))) break;
      out.append(static_cast<const char*>(text.value), text.length).append("; ");
      gss_release_buffer(&m, &text);
    } while (more != 0);
  }
  return out;
}

// One SPNEGO exchange with HTTP@<host>, mutual authentication requested, the
// credentials from $KRB5CCNAME — what a browser or curl does, done by hand so
// a test decides when the token is presented and where.
class NegotiateClient {
 public:
  explicit NegotiateClient(const std::string& host) {
    std::string service = "HTTP@" + host;
    gss_buffer_desc text = {service.size(), service.data()};
    OM_uint32 minor = 0;
    OM_uint32 major = gss_import_name(&minor, &text, GSS_C_NT_HOSTBASED_SERVICE, &target_);
    if (GSS_ERROR(major)) error_ = "gss_import_name: " + GssError(major, minor);
  }
  ~NegotiateClient() {
    OM_uint32 minor = 0;
    if (ctx_ != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx_, GSS_C_NO_BUFFER);
    if (target_ != GSS_C_NO_NAME) gss_release_name(&minor, &target_);
  }
  NegotiateClient(const NegotiateClient&) = delete;
  NegotiateClient& operator=(const NegotiateClient&) = delete;

  // The value for "Authorization: Negotiate <token>"; empty on failure.
  std::string Start() {
    if (!error_.empty()) return {};
    gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
    OM_uint32 minor = 0;
    OM_uint32 major =
        gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx_, target_, Spnego(), GSS_C_MUTUAL_FLAG, 0,
                             GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, nullptr, &output, nullptr, nullptr);
    std::string token(static_cast<const char*>(output.value), output.length);
    gss_release_buffer(&minor, &output);
    // With mutual authentication the context completes only with the reply.
    if (major != GSS_S_CONTINUE_NEEDED) {
      error_ = "gss_init_sec_context: " + GssError(major, minor);
      return {};
    }
    return Base64(token);
  }

  // Feeds the server's "WWW-Authenticate: Negotiate <token>": true when the
  // context completes, i.e. the server proved it holds the service key.
  bool Finish(const std::string& server_token) {
    std::optional<std::string> token = Unbase64(server_token);
    if (!token) {
      error_ = "the server's Negotiate token is not base64: '" + server_token + "'";
      return false;
    }
    gss_buffer_desc input = {token->size(), token->data()};
    gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
    OM_uint32 minor = 0;
    OM_uint32 flags = 0;
    OM_uint32 major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx_, target_, Spnego(), GSS_C_MUTUAL_FLAG, 0,
                                           GSS_C_NO_CHANNEL_BINDINGS, &input, nullptr, &output, &flags, nullptr);
    gss_release_buffer(&minor, &output);
    if (major != GSS_S_COMPLETE) {
      error_ = "gss_init_sec_context (mutual): " + GssError(major, minor);
      return false;
    }
    return (flags & GSS_C_MUTUAL_FLAG) != 0;
  }

  const std::string& error() const { return error_; }

 private:
  static gss_OID Spnego() {
    static gss_OID_desc oid = {6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};  // 1.3.6.1.5.5.2
    return &oid;
  }

  gss_name_t target_ = GSS_C_NO_NAME;
  gss_ctx_id_t ctx_ = GSS_C_NO_CONTEXT;
  std::string error_;
};

// --- curl ------------------------------------------------------------------------

struct CurlResult {
  ProcessResult process;
  long status = 0;                  // of the last response
  std::vector<std::string> blocks;  // every response's header block, in order
  json body;                        // the last response's body, parsed
  std::string raw_body;

  // A header of the last response ("" if absent); name case-insensitive.
  std::string Header(std::string_view name) const {
    if (blocks.empty()) return "";
    std::istringstream lines(blocks.back());
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos || colon != name.size()) continue;
      bool same = true;
      for (std::size_t i = 0; i < colon; ++i) {
        same = same &&
               std::tolower(static_cast<unsigned char>(line[i])) == std::tolower(static_cast<unsigned char>(name[i]));
      }
      if (!same) continue;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(value.begin());
      return value;
    }
    return "";
  }
  std::string Describe() const {
    std::string headers;
    for (const std::string& b : blocks) headers += b + "\n";
    return process.Describe() + "\n--- headers ---\n" + headers + "--- body ---\n" + Tail(raw_body, 2000);
  }
};

// --- The fixture -----------------------------------------------------------------

class KerberosTest : public ::testing::Test {
 protected:
  // One realm per test process. Its export lines go into this process's
  // environment before the server starts (the server inherits KRB5_CONFIG,
  // KRB5_KTNAME and the replay cache location) and before any GSSAPI call
  // here, so nothing reads the host's Kerberos configuration.
  static void SetUpTestSuite() {
    setup_error_ = new std::string();
    const char* source = std::getenv("KURA_SOURCE_DIR");
    script_ = new std::string(
        ((source != nullptr && *source != '\0') ? fs::path(source) / "tests" : fs::path(__FILE__).parent_path()) /
        "krb" / "kdc.sh");
    if (!fs::exists(*script_)) {
      *setup_error_ = *script_ + " not found (set KURA_SOURCE_DIR)";
      return;
    }
    if (!fs::exists("/usr/sbin/krb5kdc")) {
      *setup_error_ = "krb5kdc is not installed: run scripts/install-deps (krb5-kdc krb5-admin-server krb5-user)";
      return;
    }
    realm_dir_ = new TempDir("kura-e2e-krb");
    ProcessResult r = RunProcess({"bash", *script_, "start", realm_dir_->path()});
    if (r.exit_code != 0) {
      *setup_error_ = "kdc.sh start failed: " + r.Describe();
      return;
    }
    std::istringstream lines(r.out);
    std::string line;
    while (std::getline(lines, line)) {
      constexpr std::string_view kExport = "export ";
      if (!line.starts_with(kExport)) continue;
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(kExport.size(), eq - kExport.size());
      std::string value = line.substr(eq + 1);
      setenv(key.c_str(), value.c_str(), 1);
    }
    for (const char* name : {"KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME", "KRB5RCACHEDIR", "KRB5RCACHENAME"}) {
      if (std::getenv(name) == nullptr) *setup_error_ += std::string("kdc.sh start did not export ") + name + "\n";
    }
    if (!setup_error_->empty()) *setup_error_ += r.Describe();
  }

  static void TearDownTestSuite() {
    if (realm_dir_ != nullptr) {
      ProcessResult r = RunProcess({"bash", *script_, "stop", realm_dir_->path()});
      if (r.exit_code != 0) ADD_FAILURE() << "kdc.sh stop failed: " << r.Describe();
      delete realm_dir_;
      realm_dir_ = nullptr;
    }
    delete script_;
    delete setup_error_;
    script_ = setup_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_->empty()) << *setup_error_;
    // Cheap password hashes (bob gets a password): the tests check behaviour.
    const std::string config = dir_.Sub("kura.toml");
    ASSERT_TRUE(WriteFile(config,
                          "[auth]\npassword_hash_memory_kib = 256\npassword_hash_iterations = 1\n"
                          "[log]\nlevel = \"info\"\n"
                          "[kerberos]\nenabled = true\n"
                          "keytab = \"" +
                              RealmDir() + "/http.keytab\"\n" + "service_principal = \"HTTP/localhost@" + kKdcRealm +
                              "\"\n" + "map_realms = [\"" + kKdcRealm + "\"]\n"));
    ServerOptions options;
    options.config_file = config;
    std::string error;
    server_ = KuraServer::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;
    // The server listens on 127.0.0.1; a Kerberos client names the service
    // after the URL's host, and the service principal is HTTP/localhost.
    const std::string& base = server_->base_url();
    port_ = base.substr(base.rfind(':') + 1);
    ASSERT_EQ(base, "https://127.0.0.1:" + port_);
    url_ = "https://localhost:" + port_;
    http_ = std::make_unique<HttpClient>(url_, server_->ca_file());

    // alice: a Kerberos-only staff member, mapped explicitly (no password,
    // no TOTP enrolment: the KDC is the factor).
    HttpResponse r = server_->http().Post(
        "/v1/sys/staff",
        {{"username", "alice"}, {"roles", {"auditor"}}, {"kerberos", std::string("alice@") + kKdcRealm}},
        server_->root_token());
    ASSERT_EQ(r.status, 201) << r.Describe();
  }

  static std::string RealmDir() { return realm_dir_->path(); }
  static std::string CcacheName() { return std::getenv("KRB5CCNAME"); }

  // Replaces the realm's ticket cache ($KRB5CCNAME) with a fresh TGT.
  static void Kinit(const std::string& principal, const std::string& lifetime = "") {
    std::vector<std::string> argv = {"bash", *script_, "kinit", RealmDir(), principal};
    if (!lifetime.empty()) argv.push_back(lifetime);
    ProcessResult r = RunProcess(argv);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  // The environment a Kerberos client of this server needs.
  Env KrbEnv() const { return {{"KRB5_CONFIG", std::getenv("KRB5_CONFIG")}, {"KRB5CCNAME", CcacheName()}}; }

  // curl --negotiate -u : against `url` (the server's CA unless `insecure`).
  CurlResult CurlNegotiate(const std::string& url, const std::vector<std::string>& extra = {}, bool insecure = false) {
    static int n = 0;
    const std::string headers = dir_.Sub("curl-headers-" + std::to_string(++n));
    const std::string body = dir_.Sub("curl-body-" + std::to_string(n));
    std::vector<std::string> argv = {"curl", "-sS", "--negotiate", "-u",           ":",          "-D", headers,
                                     "-o",   body,  "-w",          "%{http_code}", "--max-time", "60"};
    if (insecure) {
      argv.push_back("-k");
    } else {
      argv.insert(argv.end(), {"--cacert", server_->ca_file()});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    CurlResult out;
    out.process = RunProcess(argv, KrbEnv());
    out.status = std::strtol(out.process.out.c_str(), nullptr, 10);
    // -D writes every response's header block, each ended by an empty line.
    std::istringstream lines(ReadFile(headers));
    std::string line, block;
    while (std::getline(lines, line)) {
      if (line == "\r" || line.empty()) {
        if (!block.empty()) out.blocks.push_back(block);
        block.clear();
      } else {
        block += line + "\n";
      }
    }
    if (!block.empty()) out.blocks.push_back(block);
    out.raw_body = ReadFile(body);
    out.body = json::parse(out.raw_body, nullptr, /*allow_exceptions=*/false);
    return out;
  }

  // GET `path` with "Authorization: Negotiate <token>", sent by the harness's
  // client (so the request id comes back in X-Request-Id).
  HttpResponse GetWithNegotiate(const std::string& path, const std::string& token) {
    return http_->Get(path, std::nullopt, {"Authorization: Negotiate " + token});
  }

  // The system trail's entries of `action` (root).
  std::vector<json> Entries(const std::string& action) {
    HttpResponse r = server_->http().Get("/v1/sys/audit?limit=1000&action=" + action, server_->root_token());
    EXPECT_EQ(r.status, 200) << r.Describe();
    std::vector<json> out;
    for (const json& item : r.json["items"]) out.push_back(item);
    return out;
  }

  // The entry of request `request_id` (matched in the signed entry text).
  std::optional<json> EntryOfRequest(const std::string& action, const std::string& request_id) {
    for (const json& e : Entries(action)) {
      json entry = json::parse(e.value("entry", ""), nullptr, /*allow_exceptions=*/false);
      if (entry.is_object() && entry.value("request_id", "") == request_id) return e;
    }
    return std::nullopt;
  }

  // A refusal of a Kerberos sign-in: 401, a bare Negotiate challenge (the
  // client may try again with other credentials), the error model, and the
  // same message whatever the reason — the client learns nothing about why.
  static void ExpectRefused(const HttpResponse& r) {
    EXPECT_EQ(r.status, 401) << r.Describe();
    EXPECT_EQ(r.Header("WWW-Authenticate"), "Negotiate") << r.Describe();
    EXPECT_EQ(r.json["error"]["code"], "unauthenticated") << r.Describe();
    EXPECT_EQ(r.json["error"]["message"], "Kerberos authentication failed") << r.Describe();
    EXPECT_FALSE(r.json.contains("token")) << r.Describe();
  }

  // The session `token` is a full staff session of `username` by Kerberos.
  void ExpectKerberosSession(const std::string& token, const std::string& username) {
    HttpResponse r = http_->Get("/v1/whoami", token);
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.json["kind"], "staff") << r.Describe();
    EXPECT_EQ(r.json["username"], username) << r.Describe();
    EXPECT_EQ(r.json["auth_method"], "kerberos") << r.Describe();
    EXPECT_TRUE(r.json["restriction"].is_null()) << r.Describe();
    // A full session: it reaches a staff route beyond whoami (no TOTP asked).
    EXPECT_EQ(http_->Get("/v1/sys/audit?limit=1", token).status, 200);
  }

  static std::string* script_;
  static std::string* setup_error_;
  static TempDir* realm_dir_;

  TempDir dir_{"kura-e2e-krb-client"};
  std::unique_ptr<KuraServer> server_;
  std::string port_;
  std::string url_;                   // https://localhost:PORT
  std::unique_ptr<HttpClient> http_;  // to url_, verifying the server's CA
};

std::string* KerberosTest::script_ = nullptr;
std::string* KerberosTest::setup_error_ = nullptr;
TempDir* KerberosTest::realm_dir_ = nullptr;

TEST_F(KerberosTest, CurlNegotiateSignsInAndTheSessionWorks) {
  ASSERT_NO_FATAL_FAILURE(Kinit("alice"));
  CurlResult c = CurlNegotiate(url_ + "/v1/auth/kerberos");
  ASSERT_EQ(c.process.exit_code, 0) << c.Describe();
  ASSERT_EQ(c.status, 200) << c.Describe();
  // The mutual-authentication token: the server proves it holds the key.
  const std::string challenge = c.Header("WWW-Authenticate");
  ASSERT_TRUE(challenge.starts_with("Negotiate ")) << c.Describe();
  EXPECT_TRUE(Unbase64(challenge.substr(10)).has_value()) << c.Describe();

  ASSERT_TRUE(c.body.is_object()) << c.Describe();
  EXPECT_EQ(c.body["auth_method"], "kerberos") << c.Describe();
  EXPECT_TRUE(c.body["restriction"].is_null()) << c.Describe();
  EXPECT_TRUE(c.body["expires_at"].is_string()) << c.Describe();
  const std::string token = c.body.value("token", "");
  ASSERT_FALSE(token.empty()) << c.Describe();
  ExpectKerberosSession(token, "alice");

  // The sign-in is in the system trail under alice's name.
  bool found = false;
  for (const json& e : Entries("auth.kerberos")) {
    found =
        found || (e.value("outcome", "") == "success" && e.value("principal", "").find("alice") != std::string::npos);
  }
  EXPECT_TRUE(found) << "no successful auth.kerberos entry for alice";

  // A client that waits to be asked (a browser) is asked: the route
  // challenges a request without credentials with Negotiate.
  HttpResponse bare = http_->Get("/v1/auth/kerberos");
  EXPECT_EQ(bare.status, 401) << bare.Describe();
  EXPECT_EQ(bare.Header("WWW-Authenticate"), "Negotiate") << bare.Describe();
}

TEST_F(KerberosTest, CliLoginKerberos) {
  ASSERT_NO_FATAL_FAILURE(Kinit("alice"));
  Env env = KrbEnv();
  env["KURA_ADDR"] = url_;
  env["KURA_CACERT"] = server_->ca_file();
  ProcessResult r = RunProcess({KuraBinary(), "login", "--kerberos"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // Text output: a shell assignment, KURA_TOKEN=<session token>.
  std::string token;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with("KURA_TOKEN=")) token = line.substr(std::string_view("KURA_TOKEN=").size());
  }
  if (token.size() >= 2 && token.front() == '\'' && token.back() == '\'') token = token.substr(1, token.size() - 2);
  ASSERT_FALSE(token.empty()) << r.Describe();
  ExpectKerberosSession(token, "alice");

  // --format json prints the server's answer.
  ASSERT_NO_FATAL_FAILURE(Kinit("alice"));
  r = RunProcess({KuraBinary(), "login", "--kerberos", "--format", "json"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.json["auth_method"], "kerberos") << r.Describe();
  ASSERT_TRUE(r.json["token"].is_string()) << r.Describe();
  ExpectKerberosSession(r.json["token"], "alice");

  // bob has a valid ticket but no staff user: refused, exit 3
  // (unauthenticated), with the hint about tickets.
  ASSERT_NO_FATAL_FAILURE(Kinit("bob"));
  r = RunProcess({KuraBinary(), "login", "--kerberos"}, env);
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_EQ(r.out.find("KURA_TOKEN"), std::string::npos) << r.Describe();
}

TEST_F(KerberosTest, PrincipalWithNoStaffUserIsRefused) {
  // bob@KURA.TEST is in a mapped realm, but there is no staff user "bob".
  ASSERT_NO_FATAL_FAILURE(Kinit("bob"));
  CurlResult c = CurlNegotiate(url_ + "/v1/auth/kerberos");
  EXPECT_EQ(c.process.exit_code, 0) << c.Describe();
  EXPECT_EQ(c.status, 401) << c.Describe();
  EXPECT_EQ(c.Header("WWW-Authenticate"), "Negotiate") << c.Describe();
  EXPECT_FALSE(c.body.contains("token")) << c.Describe();

  // The same by hand, to find this very request in the audit trail.
  NegotiateClient client("localhost");
  std::string token = client.Start();
  ASSERT_FALSE(token.empty()) << client.error();
  HttpResponse r = GetWithNegotiate("/v1/auth/kerberos", token);
  ExpectRefused(r);
  const std::string request_id = r.Header("X-Request-Id");
  ASSERT_FALSE(request_id.empty()) << r.Describe();
  std::optional<json> entry = EntryOfRequest("auth.kerberos", request_id);
  ASSERT_TRUE(entry.has_value()) << "no auth.kerberos entry for request " << request_id;
  EXPECT_EQ((*entry)["outcome"], "unauthenticated") << entry->dump();
  // Why it failed is for the operator's log, not the client.
  EXPECT_NE(server_->Log().find("bob@KURA.TEST maps to no staff user"), std::string::npos) << Tail(server_->Log());
}

TEST_F(KerberosTest, RealmMappingReachesStaffOfTheSameName) {
  ASSERT_NO_FATAL_FAILURE(Kinit("bob"));
  EXPECT_EQ(CurlNegotiate(url_ + "/v1/auth/kerberos").status, 401);

  // Staff "bob" with a password and no Kerberos principal: map_realms =
  // ["KURA.TEST"] maps bob@KURA.TEST to him.
  HttpResponse r =
      server_->http().Post("/v1/sys/staff", {{"username", "bob"}, {"roles", {"auditor"}}, {"password", kBobPassword}},
                           server_->root_token());
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_TRUE(r.json["kerberos"].is_null()) << r.Describe();

  CurlResult c = CurlNegotiate(url_ + "/v1/auth/kerberos");
  ASSERT_EQ(c.status, 200) << c.Describe();
  const std::string token = c.body.value("token", "");
  ASSERT_FALSE(token.empty()) << c.Describe();
  ExpectKerberosSession(token, "bob");
}

TEST_F(KerberosTest, ExpiredTicketIsRefused) {
  // A 4-second TGT. MIT's client builds no request from an expired ticket,
  // so two tokens are built now: one is presented at once (accepted: the
  // ticket itself is good), the other after the ticket's end plus the
  // realm's clock skew (tests/krb/README.md).
  constexpr int kLifetimeSeconds = 4;
  ASSERT_NO_FATAL_FAILURE(Kinit("alice", std::to_string(kLifetimeSeconds) + "s"));
  const std::time_t latest_end = std::time(nullptr) + kLifetimeSeconds;
  NegotiateClient now("localhost");
  NegotiateClient later("localhost");
  std::string token_now = now.Start();
  std::string token_later = later.Start();
  ASSERT_FALSE(token_now.empty()) << now.error();
  ASSERT_FALSE(token_later.empty()) << later.error();

  HttpResponse r = GetWithNegotiate("/v1/auth/kerberos", token_now);
  ASSERT_EQ(r.status, 200) << r.Describe();

  // Wait for a state (the ticket expired, one more second for whole-second
  // timestamps); nothing is measured.
  while (std::time(nullptr) <= latest_end + kClockSkewSeconds + 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  r = GetWithNegotiate("/v1/auth/kerberos", token_later);
  ExpectRefused(r);
  EXPECT_NE(server_->Log().find("xpired"), std::string::npos) << Tail(server_->Log());

  // curl, with only the expired TGT in the cache, gets no ticket at all.
  CurlResult c = CurlNegotiate(url_ + "/v1/auth/kerberos");
  EXPECT_EQ(c.status, 401) << c.Describe();
  EXPECT_FALSE(c.body.contains("token")) << c.Describe();
}

TEST_F(KerberosTest, TicketForAnotherServiceIsRefused) {
  // The client asks for HTTP/otherhost (the URL's host); the server's keytab
  // holds only HTTP/localhost. The dev certificate does not name otherhost,
  // hence -k for this request only: TLS is not what is tested here.
  ASSERT_NO_FATAL_FAILURE(Kinit("alice"));
  CurlResult c = CurlNegotiate("https://otherhost:" + port_ + "/v1/auth/kerberos",
                               {"--resolve", "otherhost:" + port_ + ":127.0.0.1"}, /*insecure=*/true);
  EXPECT_EQ(c.process.exit_code, 0) << c.Describe();
  EXPECT_EQ(c.status, 401) << c.Describe();
  EXPECT_EQ(c.Header("WWW-Authenticate"), "Negotiate") << c.Describe();
  EXPECT_FALSE(c.body.contains("token")) << c.Describe();
  // curl did get (and present) a ticket for the other service.
  ProcessResult klist = RunProcess({"klist"}, KrbEnv());
  EXPECT_NE(klist.out.find(std::string("HTTP/otherhost@") + kKdcRealm), std::string::npos) << klist.Describe();

  // By hand too, on the verified connection: refused like every other failure.
  NegotiateClient client("otherhost");
  std::string token = client.Start();
  ASSERT_FALSE(token.empty()) << client.error();
  ExpectRefused(GetWithNegotiate("/v1/auth/kerberos", token));
}

TEST_F(KerberosTest, NegotiateOnAnotherRoute) {
  ASSERT_NO_FATAL_FAILURE(Kinit("alice"));
  // curl sends its token on the first request when Negotiate is the only
  // scheme it may use, so it needs no Negotiate challenge from the route.
  CurlResult c = CurlNegotiate(url_ + "/v1/whoami");
  ASSERT_EQ(c.status, 200) << c.Describe();
  EXPECT_EQ(c.body["kind"], "staff") << c.Describe();
  EXPECT_EQ(c.body["username"], "alice") << c.Describe();
  EXPECT_EQ(c.body["auth_method"], "kerberos") << c.Describe();
  EXPECT_TRUE(c.Header("WWW-Authenticate").starts_with("Negotiate ")) << c.Describe();

  // Any route takes a Negotiate header in place of a bearer token; the
  // answer carries the mutual-authentication token, which the client checks.
  NegotiateClient client("localhost");
  std::string token = client.Start();
  ASSERT_FALSE(token.empty()) << client.error();
  HttpResponse r = GetWithNegotiate("/v1/whoami", token);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["kind"], "staff") << r.Describe();
  EXPECT_EQ(r.json["username"], "alice") << r.Describe();
  EXPECT_EQ(r.json["auth_method"], "kerberos") << r.Describe();
  EXPECT_TRUE(r.json["restriction"].is_null()) << r.Describe();
  const std::string challenge = r.Header("WWW-Authenticate");
  ASSERT_TRUE(challenge.starts_with("Negotiate ")) << r.Describe();
  EXPECT_TRUE(client.Finish(challenge.substr(10))) << client.error();

  // A refused Negotiate header on such a route is a 401 with a Negotiate
  // challenge too.
  ASSERT_NO_FATAL_FAILURE(Kinit("bob"));
  NegotiateClient bob("localhost");
  std::string bob_token = bob.Start();
  ASSERT_FALSE(bob_token.empty()) << bob.error();
  ExpectRefused(GetWithNegotiate("/v1/whoami", bob_token));

  // Without credentials, such a route challenges for a bearer token only: a
  // client that waits for a Negotiate challenge (a browser) gets its session
  // from /v1/auth/kerberos.
  HttpResponse bare = http_->Get("/v1/whoami");
  EXPECT_EQ(bare.status, 401) << bare.Describe();
  EXPECT_EQ(bare.Header("WWW-Authenticate"), "Bearer realm=\"kura\"") << bare.Describe();
}

}  // namespace
}  // namespace kura::e2e
