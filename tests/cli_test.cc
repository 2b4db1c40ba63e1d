// The `kura` CLI as a client of a real server: every client command used as a
// script would use it, --format json, and the documented exit codes
// (0 ok, 2 usage, 3 unauthenticated, 4 denied, 5 not found, 6 conflict,
// 8 invalid input, 9 cannot connect / TLS failure).
#include <algorithm>
#include <cctype>
#include <cstring>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitUnauthenticated = 3;
constexpr int kExitDenied = 4;
constexpr int kExitNotFound = 5;
constexpr int kExitConflict = 6;
constexpr int kExitInvalid = 8;
constexpr int kExitConnect = 9;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    server_ = KuraServer::Start({}, &error);
    if (server_ == nullptr) setup_error_ = error;
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  ProcessResult Root(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    return server_->Cli(args, server_->root_token(), stdin_data);
  }

  // As root: tenant `id` with its first admin (kTestAdminUsername /
  // kTestAdminPassword), the operator's whole part in a tenant.
  void CreateTenantWithAdmin(const std::string& id, const json& extra = json::object()) {
    json body = {{"id", id},
                 {"name", "CLI " + id},
                 {"admin", {{"username", kTestAdminUsername}, {"password", kTestAdminPassword}}}};
    body.update(extra);
    HttpResponse r = server_->http().Post("/v1/tenants", body, server_->root_token());
    EXPECT_EQ(r.status, 201) << r.Describe();
  }

  // `kura login` as the tenant's first admin (password on stdin); returns
  // the session token ("" on failure).
  std::string AdminLogin(const std::string& tenant) {
    ProcessResult r = server_->Cli({"login", "--tenant", tenant, "--username", kTestAdminUsername, "--format", "json"},
                                   "", std::string(kTestAdminPassword) + "\n");
    EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();
    if (!r.json.is_object() || !r.json["token"].is_string()) {
      ADD_FAILURE() << "login --format json: no token: " << r.Describe();
      return "";
    }
    EXPECT_TRUE(r.json["restriction"].is_null()) << r.Describe();
    return r.json["token"];
  }

  // Tenant `id` with the customers collection, set up by its admin with the
  // CLI; returns an admin key.
  std::string SetUpTenant(const std::string& id) {
    CreateTenantWithAdmin(id);
    const std::string admin = AdminLogin(id);
    const std::string schema_file = server_->dir() + "/" + id + "-schema.json";
    WriteFile(schema_file, CustomersSchema().dump());
    ProcessResult r = server_->Cli({"collection", "put", id, "customers", "--schema", schema_file}, admin);
    EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();
    r = server_->Cli({"apikey", "create", id, "--name", "app", "--role", "admin", "--format", "json"}, admin);
    EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();
    if (!r.json.is_object() || !r.json["key"].is_string()) {
      ADD_FAILURE() << "apikey create --format json: no key: " << r.Describe();
      return "";
    }
    return r.json["key"];
  }

  static inline std::unique_ptr<KuraServer> server_;
  static inline std::string setup_error_;
};

TEST_F(CliTest, TenantCollectionRoleAndApiKeyAdministration) {
  // The operator's part (here root's): tenants. One made without a first
  // admin (the CLI's `tenant create` here) has no administrator of its own.
  ProcessResult r = Root({"tenant", "create", "cli-bare", "--name", "CLI Bare KK", "--region", "jp"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = Root({"tenant", "get", "cli-bare", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_EQ(r.json["id"], "cli-bare") << r.Describe();
  EXPECT_EQ(r.json["name"], "CLI Bare KK") << r.Describe();
  EXPECT_EQ(r.json["region"], "jp") << r.Describe();
  ASSERT_NO_FATAL_FAILURE(CreateTenantWithAdmin("cli-admin", {{"name", "CLI Admin KK"}}));
  r = Root({"tenant", "list", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_NE(r.out.find("cli-admin"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("cli-bare"), std::string::npos) << r.Describe();
  // A duplicate tenant is a conflict.
  r = Root({"tenant", "create", "cli-admin", "--name", "again"});
  EXPECT_EQ(r.exit_code, kExitConflict) << r.Describe();

  // Everything inside the tenant is its admin's, signed in with the CLI;
  // root is refused (exit 4) and changes nothing.
  const std::string admin_session = AdminLogin("cli-admin");
  ASSERT_FALSE(admin_session.empty());
  auto Admin = [&](const std::vector<std::string>& args, const std::string& stdin_data = "") {
    return server_->Cli(args, admin_session, stdin_data);
  };

  // Schema from a file and from stdin.
  const std::string schema_file = server_->dir() + "/schema.json";
  ASSERT_TRUE(WriteFile(schema_file, CustomersSchema().dump()));
  r = Root({"collection", "put", "cli-admin", "customers", "--schema", schema_file});
  EXPECT_EQ(r.exit_code, kExitDenied) << r.Describe();
  r = Root({"collection", "list", "cli-admin"});
  EXPECT_EQ(r.exit_code, kExitDenied) << r.Describe();
  r = Root({"apikey", "create", "cli-admin", "--name", "by-root", "--role", "admin"});
  EXPECT_EQ(r.exit_code, kExitDenied) << r.Describe();
  r = Admin({"collection", "get", "cli-admin", "customers"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r.Describe();
  r = Admin({"collection", "put", "cli-admin", "customers", "--schema", schema_file});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = Admin({"collection", "put", "cli-admin", "notes", "--schema", "-"},
            json({{"fields", {{"text", {{"type", "string"}, {"class", "internal"}}}}}}).dump());
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = Admin({"collection", "get", "cli-admin", "customers", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_TRUE(r.json.contains("fields") && r.json["fields"].contains("email")) << r.Describe();
  r = Admin({"collection", "list", "cli-admin", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_NE(r.out.find("customers"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("notes"), std::string::npos) << r.Describe();

  // Roles.
  const json role = {{"permissions", {{{"action", "record.read"}, {"collections", {"customers"}}, {"view", "masked"}}}}};
  r = Admin({"role", "put", "cli-admin", "support", "--file", "-"}, role.dump());
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = Admin({"role", "get", "cli-admin", "support", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_NE(r.out.find("record.read"), std::string::npos) << r.Describe();
  r = Admin({"role", "list", "cli-admin", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_NE(r.out.find("support"), std::string::npos) << r.Describe();
  // An unknown action is invalid input.
  r = Admin({"role", "put", "cli-admin", "bad", "--file", "-"},
            R"({"permissions":[{"action":"record.steal","collections":["customers"]}]})");
  EXPECT_EQ(r.exit_code, kExitInvalid) << r.Describe();

  // API keys: shown once, listed without the key, revocable.
  r = Admin({"apikey", "create", "cli-admin", "--name", "svc", "--role", "support", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  ASSERT_TRUE(r.json["key"].is_string() && r.json["id"].is_string()) << r.Describe();
  const std::string key = r.json["key"], key_id = r.json["id"];
  EXPECT_EQ(key.rfind("kura_key_" + key_id + "_", 0), 0u) << key_id;
  r = Admin({"apikey", "list", "cli-admin", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_NE(r.out.find(key_id), std::string::npos) << r.Describe();
  EXPECT_EQ(r.out.find(key), std::string::npos) << "listing shows the key itself";
  EXPECT_EQ(server_->Cli({"record", "find", "cli-admin", "customers", "email=x@example.com"}, key).exit_code, kExitOk);
  r = Admin({"apikey", "revoke", "cli-admin", key_id});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = server_->Cli({"record", "find", "cli-admin", "customers", "email=x@example.com"}, key);
  EXPECT_EQ(r.exit_code, kExitUnauthenticated) << r.Describe();

  r = Admin({"role", "delete", "cli-admin", "support"});
  EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = Admin({"role", "get", "cli-admin", "support"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r.Describe();

  r = Root({"tenant", "delete", "cli-admin"});
  EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = Root({"tenant", "get", "cli-admin"});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r.Describe();
}

TEST_F(CliTest, RecordPutGetFindVersionsDelete) {
  const std::string key = SetUpTenant("cli-records");
  ASSERT_FALSE(key.empty());
  auto kura = [&](const std::vector<std::string>& args) { return server_->Cli(args, key); };

  const json data = {{"email", "Kenji.Ito@example.com"}, {"phone", "+81-80-2222-3333"}, {"note", "cli"}};
  ProcessResult r = kura({"record", "put", "cli-records", "customers", "--data", data.dump(), "--subject", "cust-7",
                          "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  ASSERT_TRUE(r.json["id"].is_string()) << r.Describe();
  EXPECT_EQ(r.json["version"], 1);
  const std::string id = r.json["id"];

  r = kura({"record", "get", "cli-records", "customers", id, "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_EQ(r.json["data"], data);
  EXPECT_EQ(r.json["subject"], "cust-7");
  EXPECT_EQ(r.json["version"], 1);

  // Default text output still shows the record.
  r = kura({"record", "get", "cli-records", "customers", id});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_NE(r.out.find("Kenji.Ito@example.com"), std::string::npos) << r.Describe();

  // Update with --if-match, from a file (@FILE).
  const std::string file = server_->dir() + "/record.json";
  json v2 = data;
  v2["note"] = "updated from a file";
  ASSERT_TRUE(WriteFile(file, v2.dump()));
  r = kura({"record", "put", "cli-records", "customers", "--id", id, "--if-match", "1", "--data", "@" + file,
            "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_EQ(r.json["version"], 2);
  // Stale If-Match → conflict.
  r = kura({"record", "put", "cli-records", "customers", "--id", id, "--if-match", "1", "--data", data.dump()});
  EXPECT_EQ(r.exit_code, kExitConflict) << r.Describe();

  r = kura({"record", "get", "cli-records", "customers", id, "--version", "1", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_EQ(r.json["data"], data);

  r = kura({"record", "find", "cli-records", "customers", "email=kenji.ito@EXAMPLE.com", "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  ASSERT_TRUE(r.json["items"].is_array()) << r.Describe();
  ASSERT_EQ(r.json["items"].size(), 1u) << r.Describe();
  EXPECT_EQ(r.json["items"][0]["id"], id);
  EXPECT_EQ(r.json["items"][0]["data"], v2);

  r = kura({"record", "find", "cli-records", "customers", "email=kenji.ito@example.com", "--limit", "1", "--format",
            "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  EXPECT_EQ(r.json["items"].size(), 1u) << r.Describe();

  r = kura({"record", "versions", "cli-records", "customers", id, "--format", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  ASSERT_TRUE(r.json["items"].is_array()) << r.Describe();
  EXPECT_EQ(r.json["items"].size(), 2u) << r.Describe();

  r = kura({"record", "delete", "cli-records", "customers", id});
  ASSERT_EQ(r.exit_code, kExitOk) << r.Describe();
  r = kura({"record", "get", "cli-records", "customers", id});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r.Describe();
  r = kura({"record", "delete", "cli-records", "customers", id});
  EXPECT_EQ(r.exit_code, kExitNotFound) << r.Describe();

  // Invalid input: an unknown field and a missing required one.
  r = kura({"record", "put", "cli-records", "customers", "--data", R"({"email":"a@example.com","shoe":"42"})"});
  EXPECT_EQ(r.exit_code, kExitInvalid) << r.Describe();
  r = kura({"record", "put", "cli-records", "customers", "--data", R"({"note":"no email"})"});
  EXPECT_EQ(r.exit_code, kExitInvalid) << r.Describe();
}

TEST_F(CliTest, ExitCodesForAuthAndConnectionFailures) {
  const std::string key = SetUpTenant("cli-exit");
  ASSERT_FALSE(key.empty());
  const std::vector<std::string> find = {"record", "find", "cli-exit", "customers", "email=a@example.com"};

  EXPECT_EQ(server_->Cli(find, key).exit_code, kExitOk);
  // No token, a garbage token.
  ProcessResult r = server_->Cli(find, "");
  EXPECT_EQ(r.exit_code, kExitUnauthenticated) << r.Describe();
  r = server_->Cli(find, "kura_key_nope_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(r.exit_code, kExitUnauthenticated) << r.Describe();
  // Root never reads records.
  r = Root(find);
  EXPECT_EQ(r.exit_code, kExitDenied) << r.Describe();
  // Flags override the environment.
  r = RunProcess({KuraBinary(), "record", "find", "cli-exit", "customers", "email=a@example.com", "--addr",
                  server_->base_url(), "--cacert", server_->ca_file(), "--token", key});
  EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();

  // Nothing listening.
  Env env = server_->ClientEnv(key);
  env["KURA_ADDR"] = "https://127.0.0.1:" + std::to_string(FreePort());
  r = RunProcess({KuraBinary(), "record", "find", "cli-exit", "customers", "email=a@example.com"}, env);
  EXPECT_EQ(r.exit_code, kExitConnect) << r.Describe();
  // A CA that did not sign the server's certificate: TLS verification fails.
  const std::string other_ca = server_->dir() + "/other-ca.pem";
  ProcessResult gen = RunProcess({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=other",
                                  "-keyout", server_->dir() + "/other-ca.key", "-out", other_ca});
  ASSERT_EQ(gen.exit_code, 0) << gen.Describe();
  env = server_->ClientEnv(key);
  env["KURA_CACERT"] = other_ca;
  r = RunProcess({KuraBinary(), "record", "find", "cli-exit", "customers", "email=a@example.com"}, env);
  EXPECT_EQ(r.exit_code, kExitConnect) << r.Describe();

  // Usage errors.
  r = server_->Cli({"record", "get", "cli-exit"}, key);
  EXPECT_EQ(r.exit_code, kExitUsage) << r.Describe();
  r = server_->Cli({"record", "frobnicate"}, key);
  EXPECT_EQ(r.exit_code, kExitUsage) << r.Describe();
  r = server_->Cli({"record", "find", "cli-exit", "customers", "email=a@example.com", "--format", "yaml"}, key);
  EXPECT_EQ(r.exit_code, kExitUsage) << r.Describe();

  r = Root({"status"});
  EXPECT_EQ(r.exit_code, kExitOk) << r.Describe();
}

// The subcommands a `--help` lists: CLI11 prints them under "Subcommands:",
// one a line indented by two spaces (a description too long for its line
// continues below, indented further), up to a blank line.
std::vector<std::string> SubcommandsInHelp(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream lines(help);
  std::string line;
  bool in_section = false;
  while (std::getline(lines, line)) {
    if (!in_section) {
      in_section = line == "Subcommands:";
    } else if (line.empty()) {
      break;
    } else if (line.size() > 2 && line.starts_with("  ") && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return names;
}

// The command a `--help` is about, from its usage line: "Usage: kura record
// get [OPTIONS] TENANT COLL ID" gives "kura record get" (options, positionals
// and SUBCOMMAND are bracketed or upper case). "" without a usage line.
std::string UsageCommand(const std::string& help) {
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("Usage: ")) continue;
    std::istringstream words(line.substr(std::strlen("Usage: ")));
    std::string word, command;
    while (words >> word && std::islower(static_cast<unsigned char>(word[0]))) {
      command += (command.empty() ? "" : " ") + word;
    }
    return command;
  }
  return "";
}

TEST_F(CliTest, EverySubcommandHasHelp) {
  // The tree is walked from `kura --help` down, so a new command is covered
  // without being listed here.
  std::vector<std::vector<std::string>> level = {{}};
  std::set<std::string> walked;
  while (!level.empty()) {
    std::vector<std::vector<std::string>> next;
    // Each run only prints; run a few at a time to keep the suite quick.
    constexpr std::size_t kBatch = 4;
    for (std::size_t first = 0; first < level.size(); first += kBatch) {
      std::vector<std::future<ProcessResult>> runs;
      for (std::size_t i = first; i < std::min(first + kBatch, level.size()); ++i) {
        std::vector<std::string> argv = {KuraBinary()};
        argv.insert(argv.end(), level[i].begin(), level[i].end());
        argv.push_back("--help");
        runs.push_back(std::async(std::launch::async, [argv] { return RunProcess(argv); }));
      }
      for (std::size_t i = first; i < first + runs.size(); ++i) {
        ProcessResult r = runs[i - first].get();
        std::string name = "kura";
        for (const auto& c : level[i]) name += " " + c;
        walked.insert(name);
        EXPECT_EQ(r.exit_code, 0) << name << " --help: " << r.Describe();
        // Only a command's own help is walked further.
        if (UsageCommand(r.out) != name) {
          ADD_FAILURE() << name << " --help: no usage line naming it: " << r.Describe();
          continue;
        }
        for (std::string& sub : SubcommandsInHelp(r.out)) {
          std::vector<std::string> path = level[i];
          path.push_back(std::move(sub));
          next.push_back(std::move(path));
        }
      }
    }
    level = std::move(next);
  }

  // A misread help must not make the walk trivially short (there are about
  // 70 commands).
  std::string all;
  for (const auto& name : walked) all += "\n  " + name;
  EXPECT_GE(walked.size(), 60u) << "commands walked:" << all;
  for (const char* known : {"kura serve", "kura record get", "kura audit verify", "kura operator unseal"}) {
    EXPECT_TRUE(walked.contains(known)) << known << " not walked; commands walked:" << all;
  }
}

}  // namespace
}  // namespace kura::e2e
