// Two kura nodes on one PostgreSQL database (the shared test server of
// pg_support.h, a schema of its own), end to end:
//   - concurrent If-Match updates of the same records through both nodes:
//     every 2xx update is a distinct version and the final version counts
//     them all (no lost update);
//   - the background jobs (audit checkpoints, SIEM export) run on exactly
//     one node, the holder of the "audit-background" lease, visible in
//     /v1/sys/health; kill -9 that node and the other takes the lease over
//     after its ttl and checkpoints continue;
//   - the audit chain written by both nodes verifies (`kura audit verify
//     --config`).
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "pg_support.h"

namespace kura::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

json NodeHealth(KuraServer& s) {
  HttpResponse h = s.http().Get("/v1/sys/health");
  if (h.status != 200 || !h.json.is_object()) return json();
  return h.json["storage"].value("node", json());
}

bool HoldsLease(KuraServer& s) { return NodeHealth(s).value("holds_lease", false); }
long long CheckpointRuns(KuraServer& s) { return NodeHealth(s).value("checkpoint_runs", 0LL); }

class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (SharedPgDsn().empty()) {
      if (PgRequired()) FAIL() << "no PostgreSQL for the tests: " << SharedPgWhyNot();
      GTEST_SKIP() << "no PostgreSQL for the tests: " << SharedPgWhyNot();
    }
    schema_ = "kura_two_nodes_" + std::to_string(::getpid());
    ProcessResult r = PgSql(SharedPgDsn(), "CREATE SCHEMA " + schema_);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  void TearDown() override {
    if (schema_.empty()) return;
    PgSql(SharedPgDsn(), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }
  std::string schema_;
};

TEST_F(TwoNodesTest, NoLostUpdateOneChainAndBackgroundJobsMoveWhenTheirNodeDies) {
  TempDir dir("kura-two-nodes");
  const std::string dsn = PgDsnWithSchema(SharedPgDsn(), schema_);
  std::string error;
  std::string config = PgServeToml(dsn, dir.path(), "pool_size = 4\n", &error);
  ASSERT_FALSE(config.empty()) << error;
  // checkpoint_interval 1 s → lease ttl 3 s (LeaseKeeper::TtlFor).
  config += "\n[audit]\ncheckpoint_interval = \"1s\"\n";
  const std::string pg_toml = dir.Sub("pg.toml");
  ASSERT_TRUE(WriteFile(pg_toml, config));

  auto a = KuraServer::Start({.dev = true, .config_file = pg_toml, .data_dir = dir.Sub("a")}, &error);
  ASSERT_NE(a, nullptr) << error;
  // Node b shares the vault: the same key file and root token, its own TLS
  // files and listener.
  fs::create_directories(dir.Sub("b"));
  fs::copy_file(dir.Sub("a/kek.key"), dir.Sub("b/kek.key"));
  // Only the token: with a's address in it, the harness would talk to a
  // until b rewrites the file.
  ASSERT_TRUE(WriteFile(dir.Sub("b/dev.env"), "KURA_TOKEN=" + a->root_token() + "\n"));
  ASSERT_EQ(::chmod(dir.Sub("b/dev.env").c_str(), 0600), 0);
  auto b = KuraServer::Start({.dev = true, .config_file = pg_toml, .data_dir = dir.Sub("b")}, &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_EQ(b->root_token(), a->root_token());

  auto tenant = CreateTestTenant(*a, "two-nodes", &error);
  ASSERT_TRUE(tenant) << error;

  // Exactly one node holds the lease (a started first).
  const auto lease_deadline = Clock::now() + std::chrono::seconds(10);
  while (!HoldsLease(*a) && !HoldsLease(*b) && Clock::now() < lease_deadline) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_NE(HoldsLease(*a), HoldsLease(*b)) << "a: " << NodeHealth(*a) << " b: " << NodeHealth(*b);
  KuraServer* holder = HoldsLease(*a) ? a.get() : b.get();
  KuraServer* other = holder == a.get() ? b.get() : a.get();
  EXPECT_NE(a->base_url(), b->base_url());
  EXPECT_NE(NodeHealth(*a).value("id", ""), NodeHealth(*b).value("id", ""));

  // Records written through a, updated through both.
  constexpr int kRecords = 3;
  std::vector<std::string> ids;
  for (int i = 0; i < kRecords; ++i) {
    HttpResponse r = a->http().Post(RecordsPath(tenant->id, "customers"),
                                    {{"data", {{"email", "r" + std::to_string(i) + "@two.example"}, {"note", "0"}}}},
                                    tenant->admin_key);
    ASSERT_EQ(r.status, 201) << r.Describe();
    ids.push_back(r.json.value("id", ""));
  }

  std::mutex mu;
  std::map<std::string, std::vector<long long>> versions;  // record → versions acknowledged by a 2xx
  std::atomic<int> conflicts{0}, failures{0};
  std::vector<std::string> odd;
  std::atomic<bool> stop{false};
  auto updater = [&](KuraServer* node, int w) {
    HttpClient http(node->base_url(), node->ca_file());
    for (int i = 0; !stop.load(); ++i) {
      const std::string& id = ids[static_cast<std::size_t>((i + w) % kRecords)];
      HttpResponse got = http.Get(RecordPath(tenant->id, "customers", id), tenant->admin_key);
      if (got.status != 200) {
        failures.fetch_add(1);
        continue;
      }
      const std::string etag = got.Header("etag");
      json data = got.json["data"];
      data["note"] = "w" + std::to_string(w) + "-" + std::to_string(i);
      HttpResponse put = http.Put(RecordPath(tenant->id, "customers", id), {{"data", data}}, tenant->admin_key,
                                  {"If-Match: " + etag});
      if (put.status == 200) {
        std::lock_guard lock(mu);
        versions[id].push_back(put.json.value("version", 0LL));
      } else if (put.status == 409) {
        conflicts.fetch_add(1);
      } else {
        failures.fetch_add(1);
        std::lock_guard lock(mu);
        if (odd.size() < 3) odd.push_back(put.Describe());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) threads.emplace_back(updater, w % 2 == 0 ? a.get() : b.get(), w);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << (odd.empty() ? "" : odd.front());
  EXPECT_GT(conflicts.load(), 0) << "the writers never raced; the test proves nothing";
  int total = 0;
  for (const std::string& id : ids) {
    std::vector<long long>& v = versions[id];
    std::set<long long> distinct(v.begin(), v.end());
    EXPECT_EQ(distinct.size(), v.size()) << "two 2xx updates of " << id << " got the same version";
    HttpResponse got = b->http().Get(RecordPath(tenant->id, "customers", id), tenant->admin_key);
    ASSERT_EQ(got.status, 200) << got.Describe();
    // Version 1 + one version per acknowledged update: none was lost.
    EXPECT_EQ(got.json.value("version", 0LL), 1 + static_cast<long long>(v.size())) << id;
    total += static_cast<int>(v.size());
  }
  EXPECT_GT(total, 10);

  // The checkpoint job ran on the holder only.
  EXPECT_GT(CheckpointRuns(*holder), 0);
  EXPECT_EQ(CheckpointRuns(*other), 0);
  EXPECT_TRUE(HoldsLease(*holder));
  EXPECT_FALSE(HoldsLease(*other));
  ProcessResult before = PgSql(dsn, "SELECT count(*) FROM audit_checkpoints");
  ASSERT_EQ(before.exit_code, 0) << before.Describe();
  const int checkpoints_before = std::stoi(before.out);
  EXPECT_GT(checkpoints_before, 0);

  // The holder dies without letting go: the other node takes over after the
  // lease's ttl (3 s) and checkpoints continue there.
  holder->Signal(SIGKILL);
  holder->WaitExit(std::chrono::seconds(10));
  const auto killed = Clock::now();
  while (!HoldsLease(*other) && Clock::now() - killed < std::chrono::seconds(15)) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(HoldsLease(*other)) << NodeHealth(*other);
  std::cerr << "[two nodes] lease moved "
            << std::chrono::duration_cast<milliseconds>(Clock::now() - killed).count() << " ms after the kill\n";
  for (int i = 0; i < 5; ++i) {
    HttpResponse got = other->http().Get(RecordPath(tenant->id, "customers", ids[0]), tenant->admin_key);
    ASSERT_EQ(got.status, 200) << got.Describe();
  }
  const auto wait_cp = Clock::now();
  int checkpoints_after = checkpoints_before;
  while (checkpoints_after <= checkpoints_before && Clock::now() - wait_cp < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(milliseconds(250));
    ProcessResult now = PgSql(dsn, "SELECT count(*) FROM audit_checkpoints");
    if (now.exit_code == 0) checkpoints_after = std::stoi(now.out);
  }
  EXPECT_GT(checkpoints_after, checkpoints_before) << "no checkpoint after the lease moved";
  EXPECT_GT(CheckpointRuns(*other), 0);

  // One chain, written by both nodes, verifies.
  EXPECT_EQ(other->Stop(), 0) << Tail(other->Log());
  ProcessResult verify = RunProcess({KuraBinary(), "audit", "verify", "--config", pg_toml, "--format", "json"}, {},
                                    "", std::chrono::seconds(60));
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();
}

}  // namespace
}  // namespace kura::e2e
