// Failover, end to end: a PostgreSQL 15 primary with a synchronous streaming
// standby (tests/pg/pg-replication.sh: TLS verify-full, synchronous_commit =
// on, synchronous_standby_names = 'FIRST 1 (standby1)'), kura on a two-host
// DSN with target_session_attrs=read-write, writers creating records through
// kura over HTTPS. Then kill -9 of the primary: requests fail fast with 503,
// nothing hangs; promotion of the standby: kura serves again without a
// restart; every write that got a 2xx is there, and `kura audit verify
// --config` passes on the promoted database. Health and `kura status` show
// the replication state before the failure.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
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

long long MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

// The pair of servers; stopped (by PID, via the script) when the test ends.
class Replication {
 public:
  explicit Replication(std::string dir) : dir_(std::move(dir)) {}
  ~Replication() { Run("stop"); }
  ProcessResult Run(const std::string& cmd) {
    return RunProcess({"bash", PgScript("pg-replication.sh"), cmd, dir_}, {}, "", std::chrono::seconds(120));
  }

 private:
  std::string dir_;
};

struct Write {
  std::string id;
  std::string email;
};

TEST(FailoverTest, KillPrimaryFailFastPromoteStandbyNothingLost) {
  if (!PgInstalled()) {
    if (PgRequired()) FAIL() << "PostgreSQL 15 is not installed";
    GTEST_SKIP() << "PostgreSQL 15 is not installed (set KURA_REQUIRE_PG=1 to fail instead)";
  }
  TempDir dir("kura-failover");
  // As root the servers run as user postgres, which must reach DIR/pg.
  ASSERT_EQ(::chmod(dir.path().c_str(), 0711), 0);
  Replication pg(dir.Sub("pg"));
  ProcessResult started = pg.Run("start");
  ASSERT_EQ(started.exit_code, 0) << started.Describe();
  const std::string dsn = PgExportValue(started.out, "KURA_PG_DSN");
  const std::string password = PgExportValue(started.out, "KURA_PG_PASSWORD");
  ASSERT_FALSE(dsn.empty()) << started.out;
  ASSERT_NE(dsn.find("target_session_attrs=read-write"), std::string::npos);
  ASSERT_NE(dsn.find("sslmode=verify-full"), std::string::npos);

  const std::string pw_file = dir.Sub("pg-password");
  ASSERT_TRUE(WriteFile(pw_file, password + "\n"));
  ASSERT_EQ(::chmod(pw_file.c_str(), 0600), 0);
  // statement_timeout bounds every database wait (kura's client gives up
  // 1 s later); connect_timeout bounds each host of a new connection.
  const std::string config =
      "region = \"jp\"\nsite = \"tokyo-1\"\n\n[storage]\nengine = \"postgres\"\ndsn = " + PgToml(dsn) +
      "\npassword_file = " + PgToml(pw_file) +
      "\npool_size = 4\nconnect_timeout = \"2s\"\nstatement_timeout = \"2s\"\n"
      "\n[storage.primary]\nsite = \"tokyo-1\"\nregion = \"jp\"\n"
      "\n[storage.replica]\nsite = \"osaka-1\"\nregion = \"jp\"\n"
      "\n[audit]\ncheckpoint_interval = \"1s\"\n";
  const std::string pg_toml = dir.Sub("pg.toml");
  ASSERT_TRUE(WriteFile(pg_toml, config));

  std::string error;
  auto server = KuraServer::Start({.dev = true, .config_file = pg_toml, .data_dir = dir.Sub("data")}, &error);
  ASSERT_NE(server, nullptr) << error;

  // Health shows the engine, the primary and its synchronous standby.
  HttpResponse health = server->http().Get("/v1/sys/health");
  ASSERT_EQ(health.status, 200) << health.Describe();
  const json& storage = health.json["storage"];
  EXPECT_EQ(storage["engine"], "postgres") << health.body;
  EXPECT_EQ(storage["reachable"], true) << health.body;
  EXPECT_EQ(storage["primary"], true) << health.body;
  EXPECT_EQ(storage["replication"]["synchronous_standby_names"], "FIRST 1 (standby1)") << health.body;
  ASSERT_EQ(storage["replication"]["standbys"].size(), 1u) << health.body;
  EXPECT_EQ(storage["replication"]["standbys"][0]["application_name"], "standby1") << health.body;
  EXPECT_EQ(storage["replication"]["standbys"][0]["state"], "streaming") << health.body;
  EXPECT_EQ(storage["replication"]["standbys"][0]["sync_state"], "sync") << health.body;
  ProcessResult status = server->Cli({"status"}, "");
  EXPECT_EQ(status.exit_code, 0) << status.Describe();
  EXPECT_NE(status.out.find("storage: postgres, primary"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("standby: standby1 streaming sync"), std::string::npos) << status.out;

  auto tenant = CreateTestTenant(*server, "failover", &error);
  ASSERT_TRUE(tenant) << error;

  // Writers: create records until told to stop; remember every 2xx.
  enum Phase { kBefore = 0, kDown = 1, kPromoted = 2 };
  std::atomic<int> phase{kBefore};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<Write> acked;
  std::atomic<int> ok_before{0}, ok_after{0}, unavailable{0}, other{0};
  std::atomic<long long> slowest_down_ms{0};
  std::vector<std::string> odd;
  auto writer = [&](int w) {
    HttpClient http(server->base_url(), server->ca_file());
    for (int i = 0; !stop.load(); ++i) {
      const std::string email = "w" + std::to_string(w) + "-" + std::to_string(i) + "@failover.example";
      HttpRequest req;
      req.method = "POST";
      req.path = RecordsPath(tenant->id, "customers");
      req.body = json{{"data", {{"email", email}, {"name", "Writer " + std::to_string(w)}}}}.dump();
      req.token = tenant->admin_key;
      req.timeout_ms = 30000;
      const int p = phase.load();
      const auto t0 = Clock::now();
      HttpResponse r = http.Send(req);
      const long long took = MsSince(t0);
      if (r.status == 201 || r.status == 200) {
        std::lock_guard lock(mu);
        acked.push_back({r.json.value("id", ""), email});
        (p == kPromoted ? ok_after : ok_before).fetch_add(1);
      } else if (r.status == 503) {
        unavailable.fetch_add(1);
        if (p == kDown) {
          long long prev = slowest_down_ms.load();
          while (took > prev && !slowest_down_ms.compare_exchange_weak(prev, took)) {
          }
        }
        std::this_thread::sleep_for(milliseconds(50));
      } else {
        other.fetch_add(1);
        std::lock_guard lock(mu);
        if (odd.size() < 5) odd.push_back(r.Describe());
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
  };
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) writers.emplace_back(writer, w);

  std::this_thread::sleep_for(milliseconds(1500));
  // An auditor verifies the log on the standby while the writers go on: a
  // read-only session, nothing to migrate — the primary is not touched.
  {
    std::string standby_dsn, unused_password;
    PgSplitPassword(PgExportValue(started.out, "KURA_PG_DSN_STANDBY"), &standby_dsn, &unused_password);
    ASSERT_FALSE(standby_dsn.empty()) << started.out;
    const std::string standby_toml = dir.Sub("standby.toml");
    ASSERT_TRUE(
        WriteFile(standby_toml, "region = \"jp\"\nsite = \"osaka-1\"\n\n[storage]\nengine = \"postgres\"\ndsn = " +
                                    PgToml(standby_dsn) + "\npassword_file = " + PgToml(pw_file) + "\n"));
    ProcessResult audited = RunProcess({KuraBinary(), "audit", "verify", "--config", standby_toml, "--format", "json"},
                                       {}, "", std::chrono::seconds(60));
    EXPECT_EQ(audited.exit_code, 0) << audited.Describe();
    EXPECT_GT(audited.json.is_object() ? audited.json.value("entries", 0) : 0, 0) << audited.Describe();
  }
  // The primary's machine is gone.
  const auto killed_at = Clock::now();
  phase = kDown;
  ProcessResult killed = pg.Run("kill-primary");
  ASSERT_EQ(killed.exit_code, 0) << killed.Describe();
  // Requests sent now must fail fast with 503: probe with a read, timed.
  HttpClient probe(server->base_url(), server->ca_file());
  bool saw_503 = false;
  const auto probe_until = Clock::now() + std::chrono::seconds(15);
  while (!saw_503 && Clock::now() < probe_until) {
    const auto t0 = Clock::now();
    HttpRequest get;
    get.path = RecordsPath(tenant->id, "customers") + "?limit=1";
    get.token = tenant->admin_key;
    get.timeout_ms = 30000;
    HttpResponse r = probe.Send(get);
    const long long took = MsSince(t0);
    // statement_timeout 2 s + 1 s client grace, plus connect_timeout 2 s per host.
    EXPECT_LT(took, 8000) << "a request hung for " << took << " ms: " << r.Describe();
    if (r.status == 503) {
      saw_503 = true;
      EXPECT_TRUE(IsError(r, 503, "unavailable")) << r.Describe();
    }
  }
  EXPECT_TRUE(saw_503) << "no 503 within 15 s of losing the primary";
  {
    // A record GET with an API key is read ahead on the store's reader
    // threads; without a database it fails as fast, the same way.
    const auto t0 = Clock::now();
    HttpRequest get;
    get.path = RecordPath(tenant->id, "customers", "0000000000000000000000000A");
    get.token = tenant->admin_key;
    get.timeout_ms = 30000;
    HttpResponse r = probe.Send(get);
    const long long took = MsSince(t0);
    EXPECT_LT(took, 8000) << "a record GET hung for " << took << " ms: " << r.Describe();
    EXPECT_TRUE(IsError(r, 503, "unavailable")) << r.Describe();
  }
  // Health keeps its meaning (the vault is unsealed: 200) and reports the
  // lost database, from the monitor's cached copy, without waiting on it.
  bool saw_unreachable = false;
  const auto health_until = Clock::now() + std::chrono::seconds(8);
  while (!saw_unreachable && Clock::now() < health_until) {
    const auto t0 = Clock::now();
    HttpResponse h = probe.Get("/v1/sys/health");
    EXPECT_LT(MsSince(t0), 2000) << "health waited on the database";
    EXPECT_EQ(h.status, 200) << h.Describe();
    saw_unreachable = h.json.is_object() && h.json["storage"].value("reachable", true) == false;
    if (!saw_unreachable) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(saw_unreachable) << "health never showed the database as unreachable";

  // The operator promotes the standby; kura finds it by itself.
  ProcessResult promoted = pg.Run("promote");
  ASSERT_EQ(promoted.exit_code, 0) << promoted.Describe();
  phase = kPromoted;
  const auto promoted_at = Clock::now();
  const auto until = Clock::now() + std::chrono::seconds(20);
  while (ok_after.load() < 10 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(50));
  const long long recovery_ms = MsSince(promoted_at);
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_GE(ok_before.load(), 1);
  EXPECT_GE(ok_after.load(), 10) << "kura did not serve writes again within 20 s of the promotion";
  EXPECT_GT(unavailable.load(), 0);
  EXPECT_LT(slowest_down_ms.load(), 8000);
  EXPECT_EQ(other.load(), 0) << (odd.empty() ? "" : odd.front());
  std::cerr << "[failover] acked before: " << ok_before.load() << ", after promotion: " << ok_after.load()
            << ", 503s: " << unavailable.load() << ", slowest 503 while down: " << slowest_down_ms.load()
            << " ms, first write " << recovery_ms << " ms after promotion (" << MsSince(killed_at)
            << " ms since the kill)\n";

  // Every acknowledged write is on the promoted server.
  int missing = 0;
  for (const Write& w : acked) {
    HttpResponse got = server->http().Get(RecordPath(tenant->id, "customers", w.id), tenant->admin_key);
    if (got.status != 200 || got.json["data"].value("email", "") != w.email) {
      if (++missing <= 3) ADD_FAILURE() << "acknowledged write " << w.id << " lost: " << got.Describe();
    }
  }
  EXPECT_EQ(missing, 0);
  // Health shows the promoted server: reachable, a primary, no standby yet.
  bool promoted_seen = false;
  const auto seen_until = Clock::now() + std::chrono::seconds(8);
  json after_storage;
  while (!promoted_seen && Clock::now() < seen_until) {
    HttpResponse after = server->http().Get("/v1/sys/health");
    EXPECT_EQ(after.status, 200) << after.Describe();
    after_storage = after.json.is_object() ? after.json["storage"] : json();
    promoted_seen = after_storage.value("reachable", false) && after_storage.value("primary", false) &&
                    after_storage["replication"]["standbys"].empty();
    if (!promoted_seen) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(promoted_seen) << after_storage;
  EXPECT_EQ(after_storage["replication"]["synchronous_standby_names"], "") << after_storage;

  // A clean stop signs the last checkpoint; then the whole log verifies
  // offline on the promoted database.
  EXPECT_EQ(server->Stop(), 0) << Tail(server->Log());
  ProcessResult verify = RunProcess({KuraBinary(), "audit", "verify", "--config", pg_toml, "--format", "json"}, {},
                                    "", std::chrono::seconds(60));
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();
}

}  // namespace
}  // namespace kura::e2e
