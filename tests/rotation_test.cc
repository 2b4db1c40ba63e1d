// DEK rotation end to end (issue 5, "Rotation under concurrent load"): `kura
// tenant rotate-key` makes a new data key version while writers and readers
// keep going, the lease holder's job re-encrypts every record version, and
// then the old key is gone — from the data store (no record version under
// it, read with the sqlite3 shell) and from the key store (keys.db). A
// `kill -9` in the middle of the re-encryption is survived: the restarted
// server resumes from the persisted cursor and completes the job.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

json RecordData(const std::string& tag, int i) {
  return {{"email", tag + std::to_string(i) + "@example.com"},
          {"phone", "+81-90-1234-" + std::to_string(1000 + i)},
          {"name", "Person " + tag + std::to_string(i)},
          {"note", "note " + std::to_string(i)}};
}

class RotationTest : public ::testing::Test {
 protected:
  // Starts a dev server with `keys_toml` as its [keys] table and a tenant.
  void StartServer(const std::string& keys_toml) {
    dir_ = std::make_unique<TempDir>("kura-e2e-rotation");
    const std::string config = dir_->Sub("kura.toml");
    ASSERT_TRUE(WriteFile(config, "[keys]\n" + keys_toml));
    ServerOptions options;
    options.config_file = config;
    std::string error;
    server_ = KuraServer::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;
    auto tenant = CreateTestTenant(*server_, kTenant, &error);
    ASSERT_TRUE(tenant) << error;
    tenant_ = *tenant;
  }

  // Creates `n` records from `threads` clients (every fifth one updated to
  // version 2); returns id → the data of its current version.
  std::map<std::string, json> WriteRecords(int n, int threads) {
    std::map<std::string, json> written;
    std::mutex mu;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        HttpClient http(server_->base_url(), server_->ca_file());
        for (int i = t; i < n; i += threads) {
          json data = RecordData("fill", i);
          HttpResponse r = http.Post(RecordsPath(kTenant, "customers"), {{"data", data}}, tenant_.admin_key);
          EXPECT_EQ(r.status, 201) << r.Describe();
          if (r.status != 201) continue;
          const std::string id = r.json["id"];
          if (i % 5 == 0) {
            data["note"] = "updated " + std::to_string(i);
            HttpResponse u = http.Put(RecordPath(kTenant, "customers", id), {{"data", data}}, tenant_.admin_key);
            EXPECT_EQ(u.status, 200) << u.Describe();
          }
          std::lock_guard lock(mu);
          written[id] = data;
        }
      });
    }
    for (auto& t : pool) t.join();
    return written;
  }

  void ExpectRecords(const std::map<std::string, json>& written) {
    HttpClient& http = server_->http();
    for (const auto& [id, data] : written) {
      HttpResponse r = http.Get(RecordPath(kTenant, "customers", id), tenant_.admin_key);
      ASSERT_EQ(r.status, 200) << id << ": " << r.Describe();
      EXPECT_EQ(r.json["data"], data) << id;
    }
  }

  json RotationStatus() {
    HttpResponse r = server_->http().Get("/v1/tenants/" + std::string(kTenant) + "/rotate-key",
                                         server_->root_token());
    EXPECT_EQ(r.status, 200) << r.Describe();
    return r.json;
  }

  json WaitUntilDone(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json status;
    while (std::chrono::steady_clock::now() < deadline) {
      status = RotationStatus();
      if (status.value("state", "") == "done") return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "the rotation did not finish: " << status.dump() << "\n" << Tail(server_->Log());
    return status;
  }

  // Nothing of the tenant is left under a data key version below `version`,
  // and the key store holds no data key of the tenant but `version`.
  void ExpectOnlyKeyVersion(std::int64_t version) {
    const std::string db = server_->data_dir() + "/kura.db";
    const std::string v = std::to_string(version);
    EXPECT_EQ(SqliteShell(db, "SELECT COUNT(*) FROM record_versions WHERE tenant_id = '" + std::string(kTenant) +
                                  "' AND key_version < " + v),
              "0");
    EXPECT_NE(SqliteShell(db, "SELECT COUNT(*) FROM record_versions WHERE tenant_id = '" + std::string(kTenant) +
                                  "' AND key_version = " + v),
              "0");
    // Purpose 1 = data key (docs/formats/keys.md).
    EXPECT_EQ(SqliteShell(server_->data_dir() + "/keys.db",
                          "SELECT group_concat(version) FROM key_wrapped_keys WHERE owner = '" + std::string(kTenant) +
                              "' AND purpose = 1"),
              v);
  }

  static constexpr char kTenant[] = "rot";
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<KuraServer> server_;
  TestTenant tenant_;
};

TEST_F(RotationTest, DekRotationUnderConcurrentWritersAndReaders) {
  // Small batches so the job runs through many while the load goes on.
  ASSERT_NO_FATAL_FAILURE(StartServer("reencrypt_batch = 25\nreencrypt_pause_ms = 10\n"));
  const std::map<std::string, json> before = WriteRecords(300, 4);
  ASSERT_EQ(before.size(), 300u);
  EXPECT_EQ(RotationStatus()["state"], "none");

  // Writers create and update their own records; readers read the records
  // written before, by id and through the blind index. Nothing may fail.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::map<std::string, json> during;  // written while rotating: id → current data
  std::vector<std::thread> load;
  for (int w = 0; w < 2; ++w) {
    load.emplace_back([&, w] {
      HttpClient http(server_->base_url(), server_->ca_file());
      for (int i = 0; !stop; ++i) {
        json data = RecordData("w" + std::to_string(w) + "-", i);
        HttpResponse r = http.Post(RecordsPath(kTenant, "customers"), {{"data", data}}, tenant_.admin_key);
        if (r.status != 201) {
          ADD_FAILURE() << "create: " << r.Describe();
          ++failures;
          continue;
        }
        const std::string id = r.json["id"];
        data["note"] = "changed";
        r = http.Put(RecordPath(kTenant, "customers", id), {{"data", data}}, tenant_.admin_key, {"If-Match: \"1\""});
        if (r.status != 200) {
          ADD_FAILURE() << "update: " << r.Describe();
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        during[id] = data;
      }
    });
  }
  for (int rd = 0; rd < 2; ++rd) {
    load.emplace_back([&, rd] {
      HttpClient http(server_->base_url(), server_->ca_file());
      std::vector<std::pair<std::string, json>> items(before.begin(), before.end());
      for (std::size_t i = rd; !stop; i += 7) {
        const auto& [id, data] = items[i % items.size()];
        HttpResponse r = http.Get(RecordPath(kTenant, "customers", id), tenant_.admin_key);
        if (r.status != 200 || r.json["data"] != data) {
          ADD_FAILURE() << "read " << id << ": " << r.Describe();
          ++failures;
        }
        const std::string email = data["email"];
        r = http.Get(RecordsPath(kTenant, "customers") + "?email=" + UrlEncode(email), tenant_.admin_key);
        if (r.status != 200 || r.json["items"].size() != 1u || r.json["items"][0]["data"] != data) {
          ADD_FAILURE() << "find " << email << ": " << r.Describe();
          ++failures;
        }
      }
    });
  }

  // Through the CLI, which waits for the job and prints the final status.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ProcessResult cli = server_->Cli({"tenant", "rotate-key", kTenant, "--format", "json"}, server_->root_token());
  EXPECT_EQ(cli.exit_code, 0) << cli.Describe();
  EXPECT_EQ(cli.json["state"], "done") << cli.Describe();
  EXPECT_EQ(cli.json["to_version"], 2) << cli.Describe();
  EXPECT_EQ(cli.json["data_key_version"], 2) << cli.Describe();
  // At least every version written before the rotation was re-encrypted.
  EXPECT_GE(cli.json["done"].get<std::int64_t>(), 360) << cli.Describe();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_FALSE(during.empty());

  ExpectRecords(before);
  ExpectRecords(during);
  ExpectOnlyKeyVersion(2);
  // The job's end and the key destruction are in the audit trail.
  HttpResponse audit = server_->http().Get("/v1/sys/audit?action=key.reencrypt", server_->root_token());
  ASSERT_EQ(audit.status, 200) << audit.Describe();
  ASSERT_EQ(audit.json["items"].size(), 1u) << audit.Describe();
  EXPECT_EQ(audit.json["items"][0]["principal"], "system");
  EXPECT_EQ(audit.json["items"][0]["outcome"], "success");

  // A second rotation goes the same way, and the CLI shows it.
  ProcessResult again = server_->Cli({"tenant", "rotate-key", kTenant}, server_->root_token());
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_NE(again.out.find("to version 3, done"), std::string::npos) << again.Describe();
  ExpectOnlyKeyVersion(3);
  ExpectRecords(before);
}

TEST_F(RotationTest, KillNineMidReencryptionResumesAndCompletes) {
  // A slow job (10 versions per batch, 150 ms apart) so the kill lands in
  // the middle of it.
  ASSERT_NO_FATAL_FAILURE(StartServer("reencrypt_batch = 10\nreencrypt_pause_ms = 150\n"));
  const std::map<std::string, json> written = WriteRecords(300, 4);
  ASSERT_EQ(written.size(), 300u);

  ProcessResult start = server_->Cli({"tenant", "rotate-key", kTenant, "--no-wait", "--format", "json"},
                                     server_->root_token());
  ASSERT_EQ(start.exit_code, 0) << start.Describe();
  EXPECT_EQ(start.json["state"], "running");
  const std::int64_t total = start.json["total"];
  EXPECT_EQ(total, 360);  // 300 records, 60 of them with a second version
  // A second start while it runs is refused.
  HttpResponse busy = server_->http().Post("/v1/tenants/" + std::string(kTenant) + "/rotate-key", json::object(),
                                           server_->root_token());
  EXPECT_TRUE(IsError(busy, 409, "conflict")) << busy.Describe();

  std::int64_t done_before_kill = 0;
  for (int i = 0; i < 200 && done_before_kill < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    done_before_kill = RotationStatus()["done"];
  }
  ASSERT_GE(done_before_kill, 60);
  ASSERT_LT(done_before_kill, total) << "the job finished before the kill; make it slower";
  server_->Signal(SIGKILL);
  ASSERT_TRUE(server_->WaitExit(std::chrono::seconds(10)).has_value());

  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  // Resumed, not restarted: the progress persisted with each batch is there.
  json resumed = RotationStatus();
  EXPECT_GE(resumed["done"].get<std::int64_t>(), done_before_kill) << resumed.dump();
  json done = WaitUntilDone(std::chrono::seconds(120));
  EXPECT_EQ(done["done"], total) << done.dump();
  ProcessResult status = server_->Cli({"tenant", "rotate-key", kTenant, "--status"}, server_->root_token());
  EXPECT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_NE(status.out.find("older data key versions destroyed"), std::string::npos) << status.Describe();
  ExpectOnlyKeyVersion(2);
  ExpectRecords(written);
}

TEST_F(RotationTest, TenantAdminsMayRotateTheirOwnKeyOnly) {
  ASSERT_NO_FATAL_FAILURE(StartServer("reencrypt_batch = 100\n"));
  std::string error;
  auto other = CreateTestTenant(*server_, "rot-other", &error);
  ASSERT_TRUE(other) << error;
  HttpClient& http = server_->http();
  const std::string path = "/v1/tenants/" + std::string(kTenant) + "/rotate-key";
  // Another tenant's admin, and a tenant key without users.admin: refused.
  EXPECT_TRUE(IsError(http.Get(path, other->admin_key), 403, "permission_denied"));
  HttpResponse role = http.Put("/v1/t/" + std::string(kTenant) + "/roles/reader",
                               {{"permissions", {{{"action", "record.read"}, {"collections", {"customers"}},
                                                  {"view", "full"}}}}},
                               tenant_.admin_key);
  ASSERT_EQ(role.status / 100, 2) << role.Describe();
  json reader = CreateApiKey(*server_, tenant_.admin_key, kTenant, "reader", &error);
  ASSERT_FALSE(reader.is_null()) << error;
  EXPECT_TRUE(IsError(http.Post(path, json::object(), reader["key"]), 403, "permission_denied"));
  // The tenant's own admin: allowed.
  HttpResponse started = http.Post(path, json::object(), tenant_.admin_session);
  EXPECT_EQ(started.status, 201) << started.Describe();
  EXPECT_EQ(started.json["to_version"], 2);
  EXPECT_EQ(http.Get("/v1/tenants/nobody/rotate-key", server_->root_token()).status, 404);
}

}  // namespace
}  // namespace kura::e2e
