// The production start: `kura serve --config FILE` with a Shamir seal starts
// sealed, answers 503 `sealed` on every data route, is initialised with
// `kura operator init --shares 5 --threshold 3`, unseals with any 3 of the 5
// shares (not with 2, not with a wrong set) and seals again on request.
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

class SealedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // TLS material as an operator makes it.
    tls_dir_ = dir_.Sub("tls");
    ProcessResult tls = RunProcess({KuraBinary(), "operator", "tls", "--out", tls_dir_});
    ASSERT_EQ(tls.exit_code, 0) << tls.Describe();
    for (const char* f : {"ca.pem", "server-chain.pem", "server.key"}) {
      ASSERT_TRUE(std::filesystem::exists(tls_dir_ + "/" + f)) << "kura operator tls --out did not write " << f;
    }
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    config_ = dir_.Sub("kura.toml");
    ASSERT_TRUE(WriteConfig(config_, port_, dir_.Sub("data")));
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  bool WriteConfig(const std::string& path, int port, const std::string& data_dir) {
    return WriteFile(path, "region = \"jp\"\n"
                           "site = \"e2e-1\"\n"
                           "\n[listener]\n"
                           "address = \"127.0.0.1:" + std::to_string(port) + "\"\n"
                           "tls_cert = \"" + tls_dir_ + "/server-chain.pem\"\n"
                           "tls_key = \"" + tls_dir_ + "/server.key\"\n"
                           "\n[storage]\n"
                           "engine = \"sqlite\"\n"
                           "path = \"" + data_dir + "\"\n"
                           "\n[seal]\n"
                           "type = \"shamir\"\n");
  }

  std::unique_ptr<KuraServer> StartSealed(const std::string& config, int port, std::string* error) {
    ServerOptions options;
    options.dev = false;
    options.config_file = config;
    options.listen = "";
    options.base_url = "https://127.0.0.1:" + std::to_string(port);
    options.ca_file = tls_dir_ + "/ca.pem";
    options.wait_ready = false;  // sealed: health answers 503
    return KuraServer::Start(options, error);
  }

  void StartServer() {
    std::string error;
    server_ = StartSealed(config_, port_, &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  // Shares of another vault: well-formed, but they recombine to a wrong KEK.
  std::vector<std::string> ForeignShares() {
    const int port = FreePort();
    const std::string config = dir_.Sub("foreign.toml");
    EXPECT_TRUE(WriteConfig(config, port, dir_.Sub("foreign-data")));
    std::string error;
    auto foreign = StartSealed(config, port, &error);
    EXPECT_NE(foreign, nullptr) << error;
    if (foreign == nullptr) return {};
    ProcessResult init = foreign->Cli({"operator", "init", "--shares", "5", "--threshold", "3", "--format", "json"}, "");
    EXPECT_EQ(init.exit_code, 0) << init.Describe();
    std::vector<std::string> shares;
    if (init.json.is_object() && init.json["shares"].is_array()) {
      for (const auto& s : init.json["shares"]) shares.push_back(s.get<std::string>());
    }
    EXPECT_EQ(shares.size(), 5u);
    return shares;
  }

  // Asserts the vault is sealed: health 503 and data routes 503 `sealed`.
  void ExpectSealed(bool initialized) {
    auto& http = server_->http();
    HttpResponse health = http.Get("/v1/sys/health");
    EXPECT_EQ(health.status, 503) << health.Describe();
    EXPECT_EQ(health.json.value("live", false), true) << health.Describe();
    EXPECT_EQ(health.json.value("ready", true), false) << health.Describe();
    EXPECT_EQ(health.json.value("sealed", false), true) << health.Describe();
    EXPECT_EQ(health.json.value("initialized", !initialized), initialized) << health.Describe();

    HttpResponse status = http.Get("/v1/sys/seal-status");
    EXPECT_EQ(status.status, 200) << status.Describe();
    EXPECT_EQ(status.json.value("sealed", false), true) << status.Describe();
    EXPECT_EQ(status.json.value("type", ""), "shamir") << status.Describe();

    const std::string token = root_.empty() ? "kura_root_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" : root_;
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/v1/tenants"},
             {"POST", "/v1/tenants"},
             {"GET", "/v1/whoami"},
             {"GET", "/v1/t/acme/collections/customers"},
             {"GET", "/v1/t/acme/collections/customers/records/r1"},
             {"POST", "/v1/t/acme/collections/customers/records"},
             {"GET", "/v1/t/acme/collections/customers/records?email=a%40b.example"},
         }) {
      SCOPED_TRACE(method + " " + path);
      HttpRequest request{.method = method, .path = path};
      if (method == "POST") request.body = R"({"id":"acme","name":"Acme"})";
      EXPECT_TRUE(IsError(http.Send(request), 503, "sealed")) << "without a token";
      request.token = token;
      EXPECT_TRUE(IsError(http.Send(request), 503, "sealed")) << "with a token";
    }
  }

  void ExpectUnsealed() {
    HttpResponse health = server_->http().Get("/v1/sys/health");
    EXPECT_EQ(health.status, 200) << health.Describe();
    EXPECT_EQ(health.json.value("sealed", true), false) << health.Describe();
    EXPECT_EQ(health.json.value("ready", false), true) << health.Describe();
    EXPECT_EQ(health.json.value("initialized", false), true) << health.Describe();
  }

  ProcessResult Operator(const std::vector<std::string>& args) { return server_->Cli(args, root_); }

  int Progress() { return server_->http().Get("/v1/sys/seal-status").json.value("progress", -1); }

  TempDir dir_;
  std::string tls_dir_, config_, root_;
  int port_ = 0;
  std::unique_ptr<KuraServer> server_;
};

// A share with one character changed to another of the same kind, so it stays
// well-formed text but no longer matches.
std::string Tamper(std::string share) {
  for (std::size_t i = share.size() / 2; i < share.size(); ++i) {
    char& c = share[i];
    if (c >= '0' && c <= '9') { c = (c == '0') ? '1' : '0'; return share; }
    if (c >= 'a' && c <= 'f') { c = (c == 'a') ? 'b' : 'a'; return share; }
    if (c >= 'A' && c <= 'F') { c = (c == 'A') ? 'B' : 'A'; return share; }
  }
  return share + "0";
}

TEST_F(SealedTest, ShamirInitUnsealAndSeal) {
  ExpectSealed(/*initialized=*/false);
  {
    // Clients see the sealed state as exit code 7.
    ProcessResult r = server_->Cli({"tenant", "list"}, "kura_root_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    EXPECT_EQ(r.exit_code, 7) << r.Describe();
  }

  ProcessResult init = Operator({"operator", "init", "--shares", "5", "--threshold", "3", "--format", "json"});
  ASSERT_EQ(init.exit_code, 0) << init.Describe();
  ASSERT_TRUE(init.json.is_object()) << init.Describe();
  ASSERT_TRUE(init.json["shares"].is_array()) << init.Describe();
  ASSERT_EQ(init.json["shares"].size(), 5u) << init.Describe();
  ASSERT_TRUE(init.json["root_token"].is_string()) << init.Describe();
  std::vector<std::string> shares;
  for (const auto& s : init.json["shares"]) shares.push_back(s.get<std::string>());
  EXPECT_EQ(std::set<std::string>(shares.begin(), shares.end()).size(), 5u) << "shares must differ";
  root_ = init.json["root_token"];
  EXPECT_EQ(root_.rfind("kura_root_", 0), 0u);

  // Initialising leaves the vault unsealed; a second init is refused.
  ExpectUnsealed();
  ProcessResult again = Operator({"operator", "init", "--shares", "5", "--threshold", "3"});
  EXPECT_EQ(again.exit_code, 6) << again.Describe();
  HttpResponse t = server_->http().Post("/v1/tenants", {{"id", "sealed-e2e"}, {"name", "Sealed"}}, root_);
  ASSERT_EQ(t.status, 201) << t.Describe();
  auto tenant = [&] { return server_->http().Get("/v1/tenants/sealed-e2e", root_); };

  // Seal (root only).
  ProcessResult seal = Operator({"operator", "seal"});
  ASSERT_EQ(seal.exit_code, 0) << seal.Describe();
  ExpectSealed(/*initialized=*/true);

  // Two of three shares: still sealed.
  for (int i = 0; i < 2; ++i) {
    ProcessResult r = Operator({"operator", "unseal", shares[i]});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(Progress(), i + 1);
  }
  ExpectSealed(/*initialized=*/true);
  // The third: unsealed, and the data is there.
  ProcessResult third = Operator({"operator", "unseal", shares[2]});
  ASSERT_EQ(third.exit_code, 0) << third.Describe();
  ExpectUnsealed();
  EXPECT_EQ(tenant().status, 200);

  // A wrong share set (two of ours, one of another vault) is refused and
  // leaves the vault sealed with its progress reset.
  const std::vector<std::string> foreign = ForeignShares();
  ASSERT_EQ(foreign.size(), 5u);
  ASSERT_EQ(Operator({"operator", "seal"}).exit_code, 0);
  ExpectSealed(/*initialized=*/true);
  ASSERT_EQ(Operator({"operator", "unseal", shares[0]}).exit_code, 0);
  ASSERT_EQ(Operator({"operator", "unseal", shares[1]}).exit_code, 0);
  ProcessResult wrong = Operator({"operator", "unseal", foreign[2]});
  EXPECT_EQ(wrong.exit_code, 8) << "a share of another vault: " << wrong.Describe();
  ExpectSealed(/*initialized=*/true);
  EXPECT_EQ(Progress(), 0) << "a failed attempt forgets the shares given";

  // Any other 3 of the 5 shares work, here over HTTP directly.
  for (int i : {4, 3, 2}) {
    HttpResponse r = server_->http().Post("/v1/sys/unseal", {{"share", shares[i]}});
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.json.value("threshold", 0), 3) << r.Describe();
    ASSERT_TRUE(r.json.is_object() && r.json["sealed"].is_boolean()) << r.Describe();
    EXPECT_EQ(r.json["sealed"].get<bool>(), i != 2) << r.Describe();
  }
  ExpectUnsealed();
  EXPECT_EQ(tenant().status, 200);

  // Only root may seal.
  ProcessResult denied = server_->Cli({"operator", "seal"}, "");
  EXPECT_EQ(denied.exit_code, 3) << denied.Describe();
  ExpectUnsealed();

  // A tampered share does not unseal either.
  ASSERT_EQ(Operator({"operator", "seal"}).exit_code, 0);
  ExpectSealed(/*initialized=*/true);
  ASSERT_EQ(Operator({"operator", "unseal", shares[0]}).exit_code, 0);
  ASSERT_EQ(Operator({"operator", "unseal", shares[1]}).exit_code, 0);
  ProcessResult tampered = Operator({"operator", "unseal", Tamper(shares[3])});
  EXPECT_NE(tampered.exit_code, 0) << "a tampered share completed the unseal: " << tampered.Describe();
  ExpectSealed(/*initialized=*/true);
  ProcessResult list = server_->Cli({"tenant", "list"}, root_);
  EXPECT_EQ(list.exit_code, 7) << list.Describe();
}

TEST_F(SealedTest, RestartStartsSealedAndUnsealsWithTheSameShares) {
  ProcessResult init = Operator({"operator", "init", "--shares", "3", "--threshold", "2", "--format", "json"});
  ASSERT_EQ(init.exit_code, 0) << init.Describe();
  ASSERT_EQ(init.json["shares"].size(), 3u) << init.Describe();
  root_ = init.json["root_token"];
  HttpResponse t = server_->http().Post("/v1/tenants", {{"id", "restart-sealed"}, {"name", "R"}}, root_);
  ASSERT_EQ(t.status, 201) << t.Describe();

  EXPECT_EQ(server_->Stop(), 0) << Tail(server_->Log());
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  ExpectSealed(/*initialized=*/true);
  for (int i : {2, 0}) ASSERT_EQ(Operator({"operator", "unseal", init.json["shares"][i].get<std::string>()}).exit_code, 0);
  ExpectUnsealed();
  EXPECT_EQ(server_->http().Get("/v1/tenants/restart-sealed", root_).status, 200);
}

}  // namespace
}  // namespace kura::e2e
