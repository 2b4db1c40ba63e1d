// The passphrase and PKCS#11 seals end to end, through the real binary:
// - pkcs11: a SoftHSM2 token made in a temp dir; `kura operator init --seal
//   pkcs11` creates the non-extractable key on it; a restart unseals by itself
//   and the records written before are readable; a wrong PIN or a missing key
//   stops the start with a clear error;
// - passphrase: initialised from a passphrase file, restarted without one it
//   starts sealed; `kura operator unseal` with the right passphrase unseals,
//   wrong ones are refused with one and the same message.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kToken[] = "kura-e2e";
constexpr char kPin[] = "5678";
constexpr char kSoPin[] = "87654321";

class SealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tls_dir_ = dir_.Sub("tls");
    ProcessResult tls = RunProcess({KuraBinary(), "operator", "tls", "--out", tls_dir_});
    ASSERT_EQ(tls.exit_code, 0) << tls.Describe();
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    config_ = dir_.Sub("kura.toml");
  }

  void TearDown() override { ::unsetenv("SOFTHSM2_CONF"); }

  // A config with the given [seal] table body.
  bool WriteConfig(const std::string& seal) {
    return WriteFile(config_, "region = \"jp\"\nsite = \"e2e-1\"\n"
                              "\n[listener]\n"
                              "address = \"127.0.0.1:" + std::to_string(port_) + "\"\n"
                              "tls_cert = \"" + tls_dir_ + "/server-chain.pem\"\n"
                              "tls_key = \"" + tls_dir_ + "/server.key\"\n"
                              "\n[storage]\nengine = \"sqlite\"\npath = \"" + dir_.Sub("data") + "\"\n"
                              "\n[seal]\n" + seal);
  }

  std::string WriteSecret(const std::string& name, const std::string& text) {
    const std::string path = dir_.Sub(name);
    EXPECT_TRUE(WriteFile(path, text));
    EXPECT_EQ(::chmod(path.c_str(), 0600), 0);
    return path;
  }

  ServerOptions Options(bool wait_ready) const {
    ServerOptions options;
    options.dev = false;
    options.config_file = config_;
    options.listen = "";
    options.base_url = "https://127.0.0.1:" + std::to_string(port_);
    options.ca_file = tls_dir_ + "/ca.pem";
    options.wait_ready = wait_ready;
    return options;
  }

  // `kura serve` that is expected to refuse to start: its exit and stderr.
  ProcessResult ServeExpectingFailure() {
    return RunProcess({KuraBinary(), "serve", "--config", config_}, {}, "", std::chrono::seconds(60));
  }

  // SoftHSM2 token in the test's temp dir; the server inherits SOFTHSM2_CONF.
  void MakeToken() {
    const std::string hsm = dir_.Sub("hsm");
    std::filesystem::create_directories(hsm + "/tokens");
    ASSERT_TRUE(WriteFile(hsm + "/softhsm2.conf", "directories.tokendir = " + hsm +
                                                      "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
                                                      "slots.removable = false\n"));
    ASSERT_EQ(::setenv("SOFTHSM2_CONF", (hsm + "/softhsm2.conf").c_str(), 1), 0);
    ProcessResult r = RunProcess({"softhsm2-util", "--init-token", "--free", "--label", kToken, "--pin", kPin,
                                  "--so-pin", kSoPin});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  std::string Pkcs11Seal(const std::string& pin_file, const std::string& key_label = "kura-kek") {
    return "type = \"pkcs11\"\nmodule = \"" + std::string(kModule) + "\"\ntoken_label = \"" + kToken +
           "\"\nkey_label = \"" + key_label + "\"\npin_file = \"" + pin_file + "\"\n";
  }

  TempDir dir_;
  std::string tls_dir_, config_;
  int port_ = 0;
};

TEST_F(SealTest, Pkcs11InitCreatesKeyAndServerAutoUnsealsAtStart) {
  if (!std::filesystem::exists(kModule)) GTEST_SKIP() << "SoftHSM2 is not installed (scripts/install-deps)";
  ASSERT_NO_FATAL_FAILURE(MakeToken());
  const std::string pin_file = WriteSecret("hsm.pin", std::string(kPin) + "\n");
  ASSERT_TRUE(WriteConfig(Pkcs11Seal(pin_file)));

  std::string error;
  auto server = KuraServer::Start(Options(/*wait_ready=*/false), &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(server->http().Get("/v1/sys/health").status, 503);
  EXPECT_EQ(server->http().Get("/v1/sys/seal-status").json.value("type", ""), "pkcs11");

  // The wrong seal type is refused; the right one creates the key.
  ProcessResult wrong = server->Cli({"operator", "init", "--seal", "passphrase"}, "");
  EXPECT_EQ(wrong.exit_code, 8) << wrong.Describe();
  ProcessResult init = server->Cli({"operator", "init", "--seal", "pkcs11", "--format", "json"}, "");
  ASSERT_EQ(init.exit_code, 0) << init.Describe() << server->Log();
  const std::string root = init.json.value("root_token", "");
  ASSERT_EQ(root.rfind("kura_root_", 0), 0u) << init.Describe();
  ASSERT_EQ(server->http().Get("/v1/sys/health").status, 200);
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("data") + "/pkcs11-kek.json"));

  // pkcs11-tool: the key is on the token and can never be extracted.
  ProcessResult objects = RunProcess({"pkcs11-tool", "--module", kModule, "--token-label", kToken, "--login", "--pin",
                                      kPin, "--list-objects", "--type", "secrkey"});
  ASSERT_EQ(objects.exit_code, 0) << objects.Describe();
  EXPECT_NE(objects.out.find("label:      kura-kek"), std::string::npos) << objects.out;
  EXPECT_NE(objects.out.find("never extractable"), std::string::npos) << objects.out;
  EXPECT_EQ(objects.out.find("VALUE:"), std::string::npos) << objects.out;

  // Data written before the restart.
  server->set_root_token(root);
  std::optional<TestTenant> tenant = CreateTestTenant(*server, "hsm-tenant", &error);
  ASSERT_TRUE(tenant.has_value()) << error;
  json data = {{"email", "hsm@example.com"}, {"name", "Hana Sato"}, {"phone", "+81 3 1234 5678"}};
  HttpResponse put = server->http().Post(RecordsPath(tenant->id, "customers"), {{"data", data}}, tenant->admin_key);
  ASSERT_EQ(put.status, 201) << put.Describe();
  const std::string id = put.json["id"];

  // Restart: unsealed by itself (health 200) and the record reads back.
  ASSERT_TRUE(server->Restart(&error)) << error;
  HttpResponse health = server->http().Get("/v1/sys/health");
  ASSERT_EQ(health.status, 200) << health.Describe() << server->Log();
  EXPECT_NE(server->Log().find("unsealed with the PKCS#11 token 'kura-e2e'"), std::string::npos) << server->Log();
  HttpResponse got = server->http().Get(RecordPath(tenant->id, "customers", id), tenant->admin_key);
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.json["data"]["email"], "hsm@example.com") << got.Describe();
  EXPECT_EQ(got.json["data"]["name"], "Hana Sato") << got.Describe();

  // `kura operator seal` then an unseal call: the token unseals again, no input.
  ASSERT_EQ(server->Cli({"operator", "seal"}, root).exit_code, 0);
  EXPECT_EQ(server->http().Get("/v1/sys/health").status, 503);
  HttpResponse unseal = server->http().Post("/v1/sys/unseal", json::object());
  EXPECT_EQ(unseal.status, 200) << unseal.Describe();
  EXPECT_EQ(unseal.json.value("sealed", true), false) << unseal.Describe();
  EXPECT_EQ(server->http().Get("/v1/sys/health").status, 200);
  server->Stop();

  // Wrong PIN at start: a clear error naming the cause, never the PIN; exit 1.
  const std::string wrong_pin = WriteSecret("wrong.pin", "999999\n");
  ASSERT_TRUE(WriteConfig(Pkcs11Seal(wrong_pin)));
  ProcessResult bad = ServeExpectingFailure();
  EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
  EXPECT_NE(bad.err.find("cannot unseal with the PKCS#11 token 'kura-e2e'"), std::string::npos) << bad.Describe();
  EXPECT_NE(bad.err.find("wrong PIN"), std::string::npos) << bad.Describe();
  EXPECT_NE(bad.err.find("CKR_PIN_INCORRECT"), std::string::npos) << bad.Describe();
  EXPECT_EQ(bad.err.find("999999"), std::string::npos) << bad.Describe();
  EXPECT_EQ(bad.err.find(kPin), std::string::npos) << bad.Describe();

  // A key label that is not on the token: the same, naming the label.
  ASSERT_TRUE(WriteConfig(Pkcs11Seal(pin_file, "no-such-key")));
  bad = ServeExpectingFailure();
  EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
  EXPECT_NE(bad.err.find("key label 'no-such-key' not found"), std::string::npos) << bad.Describe();

  // A PIN file others can read is refused.
  ASSERT_EQ(::chmod(pin_file.c_str(), 0644), 0);
  ASSERT_TRUE(WriteConfig(Pkcs11Seal(pin_file)));
  bad = ServeExpectingFailure();
  EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
  EXPECT_NE(bad.err.find("accessible by group or others"), std::string::npos) << bad.Describe();
}

TEST_F(SealTest, PassphraseUnsealsWithTheRightPassphraseOnly) {
  const std::string passphrase = "tsuki ga kirei desu ne 1969";
  const std::string pass_file = WriteSecret("passphrase", passphrase + "\n");
  ASSERT_TRUE(WriteConfig("type = \"passphrase\"\npassphrase_file = \"" + pass_file + "\"\n"));
  std::string error;
  auto server = KuraServer::Start(Options(/*wait_ready=*/false), &error);
  ASSERT_NE(server, nullptr) << error;
  ProcessResult init = server->Cli({"operator", "init", "--seal", "passphrase", "--format", "json"}, "");
  ASSERT_EQ(init.exit_code, 0) << init.Describe() << server->Log();
  const std::string root = init.json.value("root_token", "");
  ASSERT_FALSE(root.empty()) << init.Describe();
  ASSERT_EQ(server->http().Post("/v1/tenants", {{"id", "pass-tenant"}, {"name", "P"}}, root).status, 201);
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("data") + "/passphrase-seal.json"));

  // With the file configured, a restart unseals by itself.
  ASSERT_TRUE(server->Restart(&error)) << error;
  ASSERT_EQ(server->http().Get("/v1/sys/health").status, 200) << server->Log();

  // Without it the server starts sealed and the operator types the passphrase.
  ASSERT_TRUE(WriteConfig("type = \"passphrase\"\n"));
  server->Stop();
  {
    ServerOptions options = Options(/*wait_ready=*/false);
    server = KuraServer::Start(options, &error);
    ASSERT_NE(server, nullptr) << error;
  }
  ASSERT_EQ(server->http().Get("/v1/sys/health").status, 503);
  EXPECT_NE(server->Log().find("run `kura operator unseal` with the passphrase"), std::string::npos) << server->Log();

  // Wrong passphrases: all refused with the one message, still sealed.
  std::string first_message;
  for (const std::string& wrong : {passphrase + "!", std::string("tsuki ga kirei desu ne 1968"), std::string("x")}) {
    SCOPED_TRACE(wrong);
    ProcessResult r = server->Cli({"operator", "unseal", "--format", "json"}, "", wrong + "\n");
    EXPECT_EQ(r.exit_code, 8) << r.Describe();
    HttpResponse direct = server->http().Post("/v1/sys/unseal", {{"share", wrong}});
    ASSERT_TRUE(IsError(direct, 400, "invalid_argument")) << direct.Describe();
    const std::string message = direct.json["error"]["message"];
    EXPECT_EQ(message, "unseal failed: the passphrase does not match this vault");
    if (first_message.empty()) first_message = message;
    EXPECT_EQ(message, first_message);
    EXPECT_EQ(server->http().Get("/v1/sys/health").status, 503);
  }

  // The right one (from stdin, not the process list) unseals.
  ProcessResult right = server->Cli({"operator", "unseal"}, "", passphrase + "\n");
  ASSERT_EQ(right.exit_code, 0) << right.Describe();
  EXPECT_NE(right.out.find("Unsealed."), std::string::npos) << right.Describe();
  ASSERT_EQ(server->http().Get("/v1/sys/health").status, 200);
  EXPECT_EQ(server->http().Get("/v1/tenants/pass-tenant", root).status, 200);

  // A passphrase file others can read stops the start.
  ASSERT_EQ(::chmod(pass_file.c_str(), 0644), 0);
  ASSERT_TRUE(WriteConfig("type = \"passphrase\"\npassphrase_file = \"" + pass_file + "\"\n"));
  server->Stop();
  ProcessResult bad = ServeExpectingFailure();
  EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
  EXPECT_NE(bad.err.find("passphrase file " + pass_file + " is accessible by group or others"), std::string::npos)
      << bad.Describe();
  EXPECT_EQ(bad.err.find(passphrase), std::string::npos) << bad.Describe();
}

}  // namespace
}  // namespace kura::e2e
