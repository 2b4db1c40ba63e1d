// The key hierarchy end to end (issue 5; docs/formats/keys.md):
// - KEK rotation (`kura operator rotate`) while writers and readers keep
//   going over HTTPS: no request fails, every record reads back identical,
//   and only the new KEK version is left in keys.db;
// - crypto-shredding: a copy of the data store (kura.db only, as an old
//   backup holds) started after its tenant was deleted opens the other
//   tenants' records but not the deleted tenant's, and keys.db holds no key
//   of it (read with the sqlite3 shell);
// - seal migration (`kura operator migrate-seal`) from a key file to a
//   passphrase and to Shamir shares: the new seal unseals, every record
//   reads back, the old key no longer opens the vault;
// - key versions and ages (`kura operator keys`).
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/bytes.h"
#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

json Data(const std::string& tag, int i) {
  return {{"email", tag + std::to_string(i) + "@example.com"},
          {"name", "Person " + tag + std::to_string(i)},
          {"phone", "+81-90-5555-" + std::to_string(1000 + i)},
          {"note", "note " + std::to_string(i)}};
}

// Writes `n` records into `tenant`; returns id → data.
std::map<std::string, json> Fill(KuraServer& server, const TestTenant& tenant, const std::string& tag, int n) {
  std::map<std::string, json> out;
  for (int i = 0; i < n; ++i) {
    json data = Data(tag, i);
    HttpResponse r = server.http().Post(RecordsPath(tenant.id, "customers"), {{"data", data}}, tenant.admin_key);
    EXPECT_EQ(r.status, 201) << r.Describe();
    if (r.status == 201) out[r.json["id"]] = data;
  }
  return out;
}

// Every record of `records` reads back with exactly its data.
void ExpectReadBack(HttpClient& http, const TestTenant& tenant, const std::map<std::string, json>& records) {
  for (const auto& [id, data] : records) {
    HttpResponse r = http.Get(RecordPath(tenant.id, "customers", id), tenant.admin_key);
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.json["data"], data) << id;
  }
}

// As SQLite's hex() spells it.
std::string UpperHex(const std::string& bytes) {
  std::string out = HexEncode(AsBytes(bytes));
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

class KeysTest : public ::testing::Test {
 protected:
  void StartDev() {
    std::string error;
    server_ = KuraServer::Start(ServerOptions{}, &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  TestTenant Tenant(const std::string& id) {
    std::string error;
    auto t = CreateTestTenant(*server_, id, &error);
    EXPECT_TRUE(t.has_value()) << error;
    return t.value_or(TestTenant{});
  }

  std::string KeysDb() const { return server_->data_dir() + "/keys.db"; }
  std::string DataDb() const { return server_->data_dir() + "/kura.db"; }

  std::unique_ptr<KuraServer> server_;
};

TEST_F(KeysTest, KekRotationUnderConcurrentLoadLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartDev());
  TestTenant a = Tenant("rot-a");
  TestTenant b = Tenant("rot-b");
  std::map<std::string, json> records_a = Fill(*server_, a, "a", 15);
  std::map<std::string, json> records_b = Fill(*server_, b, "b", 15);
  const std::string old_kek = SqliteShell(KeysDb(), "SELECT hex(wrapped) FROM key_kek_versions");
  ASSERT_FALSE(old_kek.empty());

  // Writers and readers over HTTPS, each with its own connection, until the
  // rotations are done. Every request must succeed.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, requests{0};
  std::mutex mu;
  std::map<std::string, json> written_a;
  std::vector<std::thread> load;
  for (int w = 0; w < 2; ++w) {
    load.emplace_back([&, w] {
      HttpClient http(server_->base_url(), server_->ca_file());
      for (int i = 0; !stop; ++i) {
        json data = Data("load" + std::to_string(w) + "-", i);
        HttpResponse r = http.Post(RecordsPath(a.id, "customers"), {{"data", data}}, a.admin_key);
        ++requests;
        if (r.status != 201) {
          ++failures;
          ADD_FAILURE() << r.Describe();
          continue;
        }
        std::lock_guard lock(mu);
        written_a[r.json["id"]] = data;
      }
    });
  }
  for (int rd = 0; rd < 2; ++rd) {
    load.emplace_back([&, rd] {
      HttpClient http(server_->base_url(), server_->ca_file());
      const auto& records = rd == 0 ? records_a : records_b;
      const TestTenant& t = rd == 0 ? a : b;
      while (!stop) {
        for (const auto& [id, data] : records) {
          HttpResponse r = http.Get(RecordPath(t.id, "customers", id), t.admin_key);
          ++requests;
          if (r.status != 200 || r.json["data"] != data) {
            ++failures;
            ADD_FAILURE() << r.Describe();
          }
          if (stop) break;
        }
      }
    });
  }
  // A tenant made during the rotations gets its keys under whichever KEK is
  // current; none may be stranded.
  for (int i = 1; i <= 3; ++i) {
    ProcessResult rotate = server_->Cli({"operator", "rotate", "--format", "json"}, server_->root_token());
    EXPECT_EQ(rotate.exit_code, 0) << rotate.Describe() << server_->Log();
    EXPECT_EQ(rotate.json.value("kek_version", 0), i + 1) << rotate.Describe();
    if (i == 2) Tenant("rot-c");
  }
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(requests.load(), 0);

  HttpClient http(server_->base_url(), server_->ca_file());
  ExpectReadBack(http, a, records_a);
  ExpectReadBack(http, a, written_a);
  ExpectReadBack(http, b, records_b);

  // keys.db: only KEK version 4, every key wrapped by it, the old KEK's
  // wrapped bytes gone from the file (and its write-ahead log).
  EXPECT_EQ(SqliteShell(KeysDb(), "SELECT group_concat(version) FROM key_kek_versions"), "4");
  EXPECT_EQ(SqliteShell(KeysDb(), "SELECT COUNT(*) FROM key_wrapped_keys WHERE kek_version <> 4"), "0");
  EXPECT_EQ(SqliteShell(KeysDb(), "SELECT COUNT(DISTINCT owner) FROM key_wrapped_keys"), "4");  // vault, a, b, c
  for (const std::string& f : {KeysDb(), KeysDb() + "-wal"}) {
    EXPECT_EQ(UpperHex(ReadFile(f)).find(old_kek), std::string::npos) << f;
  }

  // A restart unseals with the seal key alone and reads everything back.
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  HttpClient again(server_->base_url(), server_->ca_file());
  ExpectReadBack(again, a, records_a);
  ExpectReadBack(again, b, records_b);
}

TEST_F(KeysTest, DeletedTenantIsUnreadableInAnOldCopyOfTheDataStore) {
  ASSERT_NO_FATAL_FAILURE(StartDev());
  TestTenant a = Tenant("shred-a");
  TestTenant b = Tenant("shred-b");
  std::map<std::string, json> records_a = Fill(*server_, a, "a", 5);
  std::map<std::string, json> records_b = Fill(*server_, b, "b", 5);

  // The "old backup": kura.db alone, copied consistently while running.
  TempDir backup("kura-e2e-shred-backup");
  const std::string copy = backup.Sub("kura.db");
  SqliteShell(DataDb(), ".backup '" + copy + "'");
  ASSERT_TRUE(std::filesystem::exists(copy));
  EXPECT_EQ(SqliteShell(copy, "SELECT COUNT(*) FROM tenants"), "2");

  HttpResponse del = server_->http().Delete("/v1/tenants/" + a.id, server_->root_token());
  ASSERT_EQ(del.status, 204) << del.Describe();
  // The key store holds no key of A, and never held one in the data store.
  EXPECT_EQ(SqliteShell(KeysDb(), "SELECT COUNT(*) FROM key_wrapped_keys WHERE owner = '" + a.id + "'"), "0");
  EXPECT_EQ(SqliteShell(KeysDb(), "SELECT COUNT(*) FROM key_wrapped_keys WHERE owner = '" + b.id + "'"), "2");
  // The destruction is in the audit log, before the tenant's deletion.
  HttpResponse trail = server_->http().Get("/v1/sys/audit?limit=1000&action=key.destroy", server_->root_token());
  ASSERT_EQ(trail.status, 200) << trail.Describe();
  bool destroyed = false;
  for (const auto& e : trail.json["items"]) {
    destroyed = destroyed || (e.value("tenant", "") == a.id && e.value("outcome", "") == "success");
  }
  EXPECT_TRUE(destroyed) << trail.json.dump();

  // Start on the old copy of the data store with the current key store.
  ASSERT_EQ(server_->Stop(), 0);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(DataDb() + suffix);
  std::filesystem::copy_file(copy, DataDb());
  ::chmod(DataDb().c_str(), 0600);
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;

  // B reads back; A's rows are there, its ciphertext is not readable: a clear
  // error, and the server carries on.
  HttpClient http(server_->base_url(), server_->ca_file());
  ExpectReadBack(http, b, records_b);
  for (const auto& [id, data] : records_a) {
    HttpResponse r = http.Get(RecordPath(a.id, "customers", id), a.admin_key);
    EXPECT_EQ(r.status, 500) << r.Describe();
    EXPECT_NE(r.body.find("destroyed"), std::string::npos) << r.Describe();
    EXPECT_EQ(r.body.find(data["email"].get<std::string>()), std::string::npos);
  }
  EXPECT_EQ(http.Get("/v1/sys/health").status, 200);
  // The tenant of the restored copy, keys already gone, can still be deleted.
  HttpResponse again = http.Delete("/v1/tenants/" + a.id, server_->root_token());
  EXPECT_EQ(again.status, 204) << again.Describe();
  ExpectReadBack(http, b, records_b);
}

TEST_F(KeysTest, KeyVersionsAndAgesAreListed) {
  ASSERT_NO_FATAL_FAILURE(StartDev());
  TestTenant a = Tenant("ages-a");
  ProcessResult keys = server_->Cli({"operator", "keys", "--format", "json"}, server_->root_token());
  ASSERT_EQ(keys.exit_code, 0) << keys.Describe();
  ASSERT_EQ(keys.json["kek_versions"].size(), 1u) << keys.out;
  EXPECT_EQ(keys.json["kek_versions"][0].value("version", 0), 1);
  EXPECT_TRUE(keys.json["kek_versions"][0]["created_at"].is_string());
  EXPECT_EQ(keys.json["kek_versions"][0].value("age_days", -1), 0);
  ASSERT_EQ(keys.json["tenants"].size(), 1u) << keys.out;
  const json& t = keys.json["tenants"][0];
  EXPECT_EQ(t.value("tenant", ""), a.id);
  EXPECT_EQ(t.value("data_key_version", 0), 1);
  ASSERT_EQ(t["data_keys"].size(), 1u);
  EXPECT_TRUE(t["data_keys"][0].value("current", false));
  EXPECT_TRUE(t["index_key"].is_object());
  EXPECT_EQ(keys.json["vault_keys"].size(), 2u);  // secrets key, audit signing key
  EXPECT_EQ(keys.out.find("wrapped"), std::string::npos);  // versions and ages, never key material

  ProcessResult table = server_->Cli({"operator", "keys"}, server_->root_token());
  ASSERT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_NE(table.out.find("AGE (DAYS)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(a.id), std::string::npos) << table.out;
  // A tenant's own admin may not read the vault's key listing.
  EXPECT_EQ(server_->http().Get("/v1/sys/keys", a.admin_key).status, 403);
}

// Seal migration runs on a stopped server, from the configuration it ran
// with to the one it runs with afterwards.
class SealMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tls_dir_ = dir_.Sub("tls");
    ProcessResult tls = RunProcess({KuraBinary(), "operator", "tls", "--out", tls_dir_});
    ASSERT_EQ(tls.exit_code, 0) << tls.Describe();
    port_ = FreePort();
    ASSERT_GT(port_, 0);
  }

  std::string Config(const std::string& name, const std::string& seal) {
    const std::string path = dir_.Sub(name);
    EXPECT_TRUE(WriteFile(path, "region = \"jp\"\nsite = \"e2e-1\"\n"
                                "\n[listener]\n"
                                "address = \"127.0.0.1:" + std::to_string(port_) + "\"\n"
                                "tls_cert = \"" + tls_dir_ + "/server-chain.pem\"\n"
                                "tls_key = \"" + tls_dir_ + "/server.key\"\n"
                                "\n[storage]\nengine = \"sqlite\"\npath = \"" + dir_.Sub("data") + "\"\n"
                                "\n[seal]\n" + seal + std::string(kFastPasswordHashing)));
    return path;
  }

  std::unique_ptr<KuraServer> Start(const std::string& config, bool wait_ready) {
    ServerOptions options;
    options.dev = false;
    options.config_file = config;
    options.listen = "";
    options.base_url = "https://127.0.0.1:" + std::to_string(port_);
    options.ca_file = tls_dir_ + "/ca.pem";
    options.wait_ready = wait_ready;
    std::string error;
    auto server = KuraServer::Start(options, &error);
    EXPECT_NE(server, nullptr) << error;
    return server;
  }

  // A key-file vault with a tenant and records; stopped afterwards.
  void MakeKeyfileVault() {
    old_config_ = Config("old.toml", "type = \"keyfile\"\n");
    auto server = Start(old_config_, /*wait_ready=*/false);
    ASSERT_NE(server, nullptr);
    ProcessResult init = server->Cli({"operator", "init", "--format", "json"}, "");
    ASSERT_EQ(init.exit_code, 0) << init.Describe() << server->Log();
    root_ = init.json.value("root_token", "");
    server->set_root_token(root_);
    std::string error;
    auto tenant = CreateTestTenant(*server, "mig", &error);
    ASSERT_TRUE(tenant) << error;
    tenant_ = *tenant;
    records_ = Fill(*server, tenant_, "m", 5);
    ASSERT_EQ(server->Stop(), 0);
  }

  ProcessResult Migrate(const std::string& to_config, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {KuraBinary(), "operator", "migrate-seal", "--config", old_config_,
                                     "--to-config", to_config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProcess(argv, {}, "", std::chrono::seconds(120));
  }

  // The old key file no longer opens the vault: with the seal description
  // set back to the key file (as if the migration were undone by hand), the
  // start is refused by the key check itself.
  void ExpectOldKeyFileRefused() {
    SqliteShell(dir_.Sub("data") + "/keys.db",
                "UPDATE key_meta SET value = '{\"type\":\"keyfile\"}' WHERE name = 'seal'");
    ProcessResult old = RunProcess({KuraBinary(), "serve", "--config", old_config_}, {}, "", std::chrono::seconds(60));
    EXPECT_NE(old.exit_code, 0) << old.Describe();
    EXPECT_NE(old.err.find("does not match this vault"), std::string::npos) << old.Describe();
  }

  TempDir dir_{"kura-e2e-migrate"};
  std::string tls_dir_, old_config_, root_;
  int port_ = 0;
  TestTenant tenant_;
  std::map<std::string, json> records_;
};

TEST_F(SealMigrationTest, KeyfileToPassphrase) {
  ASSERT_NO_FATAL_FAILURE(MakeKeyfileVault());
  const std::string pass = dir_.Sub("pass");
  ASSERT_TRUE(WriteFile(pass, "correct horse battery staple\n"));
  ASSERT_EQ(::chmod(pass.c_str(), 0600), 0);
  const std::string new_config = Config("new.toml", "type = \"passphrase\"\npassphrase_file = \"" + pass + "\"\n");

  // Refused before anything changes: the old seal must unseal first.
  const std::string wrong_old = Config("wrong.toml", "type = \"keyfile\"\nkey_file = \"" + dir_.Sub("nokey") + "\"\n");
  ProcessResult refused = RunProcess({KuraBinary(), "operator", "migrate-seal", "--config", wrong_old, "--to-config",
                                      new_config});
  EXPECT_NE(refused.exit_code, 0) << refused.Describe();
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("data") + "/passphrase-seal.json"));

  ProcessResult migrated = Migrate(new_config);
  ASSERT_EQ(migrated.exit_code, 0) << migrated.Describe();
  EXPECT_NE(migrated.out.find("passphrase seal"), std::string::npos) << migrated.out;

  auto server = Start(new_config, /*wait_ready=*/true);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->http().Get("/v1/sys/seal-status").json.value("type", ""), "passphrase");
  ExpectReadBack(server->http(), tenant_, records_);
  ASSERT_EQ(server->Stop(), 0);
  ExpectOldKeyFileRefused();
}

TEST_F(SealMigrationTest, KeyfileToShamir) {
  ASSERT_NO_FATAL_FAILURE(MakeKeyfileVault());
  const std::string new_config = Config("shamir.toml", "type = \"shamir\"\n");
  ProcessResult missing = Migrate(new_config);
  EXPECT_EQ(missing.exit_code, 2) << missing.Describe();  // shares and threshold are required
  ProcessResult migrated = Migrate(new_config, {"--shares", "3", "--threshold", "2"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.Describe();
  std::vector<std::string> shares;
  for (std::size_t at = 0; (at = migrated.out.find("\n  ", at)) != std::string::npos;) {
    at += 3;
    shares.push_back(migrated.out.substr(at, migrated.out.find('\n', at) - at));
  }
  ASSERT_EQ(shares.size(), 3u) << migrated.out;

  auto server = Start(new_config, /*wait_ready=*/false);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->http().Get("/v1/sys/seal-status").json.value("threshold", 0), 2);
  for (int i : {2, 0}) {
    ProcessResult unseal = server->Cli({"operator", "unseal", shares[i]}, "");
    ASSERT_EQ(unseal.exit_code, 0) << unseal.Describe() << server->Log();
  }
  ASSERT_EQ(server->http().Get("/v1/sys/health").status, 200) << server->Log();
  ExpectReadBack(server->http(), tenant_, records_);
  ASSERT_EQ(server->Stop(), 0);
  ExpectOldKeyFileRefused();
}

}  // namespace
}  // namespace kura::e2e
