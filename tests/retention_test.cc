// Retention end to end: a real server whose retention job runs every second
// ([records] retention_interval = "1s") destroys the records whose last
// update is older than their collection's retention_days, and audits each
// as record.expire by "system".
//
// The server's clock cannot be moved, so the test ages records instead: it
// sets their last-update time 400 days back in the SQLite database with the
// sqlite3 shell while the server runs (only the timestamp; the ciphertext is
// the server's own).
#include <chrono>
#include <string>
#include <thread>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

constexpr char kRetentionTenant[] = "ret";

TEST(RetentionE2eTest, JobDestroysRecordsPastRetentionOnly) {
  TempDir dir("kura-e2e-retention");
  const std::string config = dir.Sub("kura.toml");
  ASSERT_TRUE(WriteFile(config, "[records]\nretention_interval = \"1s\"\n"));
  ServerOptions options;
  options.config_file = config;
  std::string error;
  auto server = KuraServer::Start(options, &error);
  ASSERT_NE(server, nullptr) << error;
  auto tenant = CreateTestTenant(*server, kRetentionTenant, &error);  // customers: 365 days
  ASSERT_TRUE(tenant.has_value()) << error;
  HttpClient& http = server->http();
  ASSERT_EQ(http.Put("/v1/t/" + std::string(kRetentionTenant) + "/collections/archive",
                     {{"fields", {{"sku", {{"type", "string"}}}}}}, tenant->admin_session)
                    .status /
                100,
            2);

  auto create = [&](const std::string& collection, const json& data) {
    HttpResponse r = http.Post(RecordsPath(kRetentionTenant, collection), {{"data", data}}, tenant->admin_key);
    EXPECT_EQ(r.status, 201) << r.Describe();
    return r.json.value("id", std::string());
  };
  const std::string old_customer = create("customers", {{"email", "old@x.example"}});
  const std::string fresh_customer = create("customers", {{"email", "fresh@x.example"}});
  const std::string old_archive = create("archive", {{"sku", "A-1"}});
  ASSERT_FALSE(old_customer.empty() || fresh_customer.empty() || old_archive.empty());

  // 400 days ago: past the customers' 365 days; the archive keeps forever.
  const std::string db = server->data_dir() + "/kura.db";
  const std::string age = "UPDATE records SET updated_at = updated_at - 400 * 86400 WHERE tenant_id = '" +
                          std::string(kRetentionTenant) + "' AND id IN ('" + old_customer + "', '" + old_archive +
                          "');";
  ProcessResult aged = RunProcess({"sqlite3", "-cmd", ".timeout 10000", db, age});
  ASSERT_EQ(aged.exit_code, 0) << aged.Describe();

  // Wait (generously) for the job's next pass.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  long status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    status = http.Get(RecordPath(kRetentionTenant, "customers", old_customer), tenant->admin_key).status;
    if (status == 404) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(status, 404) << Tail(server->Log());
  EXPECT_EQ(http.Get(RecordPath(kRetentionTenant, "customers", old_customer) + "?version=1", tenant->admin_key).status,
            404);
  HttpResponse lookup =
      http.Get(RecordsPath(kRetentionTenant, "customers") + "?email=old%40x.example", tenant->admin_key);
  ASSERT_EQ(lookup.status, 200) << lookup.Describe();
  EXPECT_TRUE(lookup.json["items"].empty()) << lookup.Describe();
  EXPECT_EQ(http.Get(RecordPath(kRetentionTenant, "customers", fresh_customer), tenant->admin_key).status, 200);
  EXPECT_EQ(http.Get(RecordPath(kRetentionTenant, "archive", old_archive), tenant->admin_key).status, 200);

  HttpResponse trail = http.Get("/v1/sys/audit?action=record.expire&limit=100", server->root_token());
  ASSERT_EQ(trail.status, 200) << trail.Describe();
  ASSERT_EQ(trail.json["items"].size(), 1u) << trail.Describe();
  const json& entry = trail.json["items"][0];
  EXPECT_EQ(entry["principal"], "system");
  EXPECT_EQ(entry["tenant"], kRetentionTenant);
  EXPECT_EQ(entry["resource"], "collections/customers/records/" + old_customer);
  EXPECT_EQ(entry["outcome"], "success");
}

}  // namespace
}  // namespace kura::e2e
