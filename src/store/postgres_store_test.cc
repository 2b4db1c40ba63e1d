// PostgreSQL-specific behaviour of the Store; the shared behaviour is in
// store_conformance_test.cc. Needs a server: see pg_test_env.h.
#include "store/postgres_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/audit_test_util.h"
#include "store/migrations.h"
#include "store/pg_test_env.h"
#include "store/postgres_internal.h"
#include "store/store.h"
#include "store/store_test_util.h"

namespace kura::store {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

RecordWrite Record(const std::string& id, std::int64_t version, const std::string& ciphertext) {
  RecordWrite w;
  w.tenant_id = "acme";
  w.collection = "people";
  w.id = id;
  w.version = version;
  w.ciphertext = B(ciphertext);
  w.at = 1700000000 + version;
  return w;
}

// A libpq connection of the test itself (a second client beside the store).
class Client {
 public:
  explicit Client(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {}
  ~Client() { PQfinish(conn_); }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return PQerrorMessage(conn_); }
  // Runs SQL; returns the first column of the first row ("" if none), or
  // "ERROR: …" on failure.
  std::string Query(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    std::string out;
    auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    } else if (PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

// The DSN without its password=… pair (key=value form only).
std::string WithoutPassword(const std::string& dsn, std::string* password) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    if (err != nullptr) PQfreemem(err);
    return "";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    if (std::string(o->keyword) == "password") {
      *password = o->val;
      continue;
    }
    std::string v = o->val;
    std::string quoted;
    for (char c : v) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    out += std::string(o->keyword) + "='" + quoted + "' ";
  }
  PQconninfoFree(opts);
  return out;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KURA_SKIP_WITHOUT_PG();
    auto dsn = testing::FreshPgDsn();
    ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
    dsn_ = *dsn;
  }

  std::unique_ptr<Store> Open(int pool_size = 4, int statement_timeout_ms = 5000) {
    PostgresOptions o;
    o.dsn = dsn_;
    o.pool_size = pool_size;
    o.statement_timeout_ms = statement_timeout_ms;
    auto store = OpenPostgresStore(o);
    if (!store.ok()) {
      ADD_FAILURE() << store.status().ToString();
      return nullptr;
    }
    return std::move(store).value();
  }

  void MakeTenant(Store& s) {
    ASSERT_TRUE(s.CreateTenant(Tenant("acme"), nullptr).ok());
    ASSERT_TRUE(s.PutCollection({"acme", "people", "{}", 1, 1}, nullptr).ok());
  }

  std::string dsn_;
};

// --- Without a server

TEST(PostgresRenderSqlTest, TextComparesBytewiseInBothEngines) {
  EXPECT_EQ(RenderSql("CREATE TABLE t (id {text} PRIMARY KEY, v {bytes})", Dialect::kSqlite),
            "CREATE TABLE t (id TEXT PRIMARY KEY, v BLOB)");
  EXPECT_EQ(RenderSql("CREATE TABLE t (id {text} PRIMARY KEY, v {bytes})", Dialect::kPostgres),
            "CREATE TABLE t (id TEXT COLLATE \"C\" PRIMARY KEY, v BYTEA)");
}

TEST(PostgresErrorStatusTest, MapsSqlstatesWithoutServerText) {
  EXPECT_EQ(pg::ErrorStatus("23505", "tenant").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(pg::ErrorStatus("23503", "record").code(), StatusCode::kNotFound);
  EXPECT_EQ(pg::ErrorStatus("23502", "record").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pg::ErrorStatus("22021", "record").code(), StatusCode::kInvalidArgument);
  for (const char* state : {"08006", "08001", "57P01", "57P03", "25006", "53300", "57014", "55P03", "40001", "40P01"}) {
    EXPECT_EQ(pg::ErrorStatus(state, "x").code(), StatusCode::kUnavailable) << state;
  }
  EXPECT_EQ(pg::ErrorStatus("", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(pg::ErrorStatus("XX001", "x").code(), StatusCode::kDataLoss);
  EXPECT_EQ(pg::ErrorStatus("0A000", "x").code(), StatusCode::kInternal);
  // The server's own text (which may quote values) is kept out, except for
  // class 42 (a bug in our SQL, naming objects, not data).
  Status dup = pg::ErrorStatus("23505", "tenant", "Key (id)=(secret-value) already exists");
  EXPECT_EQ(dup.message().find("secret-value"), std::string::npos);
  Status bad = pg::ErrorStatus("22P02", "tenant", "invalid input syntax for type bigint: \"secret-value\"");
  EXPECT_EQ(bad.message().find("secret-value"), std::string::npos);
  EXPECT_NE(pg::ErrorStatus("42P01", "tenant", "relation \"tenantz\" does not exist").message().find("tenantz"),
            std::string::npos);
  EXPECT_TRUE(pg::IsRetryable("40001"));
  EXPECT_TRUE(pg::IsRetryable("40P01"));
  EXPECT_FALSE(pg::IsRetryable("23505"));
}

TEST(PostgresOpenTest, RefusesBadOptions) {
  PostgresOptions o;
  EXPECT_EQ(OpenPostgresStore(o).status().code(), StatusCode::kInvalidArgument);
  o.dsn = "host=localhost port=notaport password=hunter2 = =";
  auto bad = OpenPostgresStore(o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("hunter2"), std::string::npos);
  o.dsn = "host=localhost";
  o.pool_size = 0;
  EXPECT_EQ(OpenPostgresStore(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(PostgresOpenTest, RefusesPasswordFileOpenToOthers) {
  fs::path file = fs::path(::testing::TempDir()) / ("kura_pg_pw_" + std::to_string(::getpid()));
  std::ofstream(file) << "secret\n";
  ::chmod(file.c_str(), 0644);
  PostgresOptions o;
  o.dsn = "host=127.0.0.1 port=1";
  o.password_file = file.string();
  auto s = OpenPostgresStore(o);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(s.status().message().find("secret"), std::string::npos);
  o.password_file = file.string() + ".missing";
  EXPECT_EQ(OpenPostgresStore(o).status().code(), StatusCode::kInvalidArgument);
  fs::remove(file);
}

TEST(PostgresOpenTest, UnreachableServerIsUnavailableWithinTheConnectTimeout) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  PostgresOptions o;
  o.dsn = "host=127.0.0.1 port=1 dbname=kura user=kura password=secret-pw sslmode=disable";
  o.connect_timeout_s = 2;
  auto start = Clock::now();
  auto s = OpenPostgresStore(o);
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(s.status().message().find("secret-pw"), std::string::npos);
}

// --- With a server

TEST_F(PostgresStoreTest, ConnectsWithTlsVerifyFullAndPasswordFile) {
  std::string password;
  std::string bare = WithoutPassword(dsn_, &password);
  if (password.empty()) GTEST_SKIP() << "the test DSN carries no password";
  fs::path file = fs::path(::testing::TempDir()) / ("kura_pg_pw_ok_" + std::to_string(::getpid()));
  {
    std::ofstream out(file);
    out << password << "\n";
  }
  ::chmod(file.c_str(), 0600);
  PostgresOptions o;
  o.dsn = bare;
  o.password_file = file.string();
  auto store = OpenPostgresStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->PutMeta("m", B("v"), nullptr).ok());
  fs::remove(file);

  // Without the password the server refuses the login: Unavailable.
  o.password_file.clear();
  ::setenv("PGPASSFILE", "/nonexistent", 1);
  auto refused = OpenPostgresStore(o);
  ::unsetenv("PGPASSFILE");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);

  // The test server's session runs over TLS.
  Client c(dsn_);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.Query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
}

TEST_F(PostgresStoreTest, RecoversAfterBackendsAreTerminated) {
  auto store = Open(/*pool_size=*/2);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, "v1"), nullptr).ok());

  auto pids = PostgresBackendPidsForTest(*store);
  ASSERT_TRUE(pids.ok());
  ASSERT_FALSE(pids->empty());
  Client admin(dsn_);
  ASSERT_TRUE(admin.ok()) << admin.error();
  for (int pid : *pids) {
    EXPECT_EQ(admin.Query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")"), "t");
  }
  // pg_terminate_backend only signals; wait until the sessions are gone.
  for (int i = 0; i < 100; ++i) {
    std::string alive = admin.Query("SELECT count(*) FROM pg_stat_activity WHERE pid IN (" +
                                    [&] {
                                      std::string list;
                                      for (int pid : *pids) list += (list.empty() ? "" : ",") + std::to_string(pid);
                                      return list;
                                    }() +
                                    ")");
    if (alive == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // The very next calls succeed on fresh connections: a read, then a write.
  auto got = store->GetRecord("acme", "people", "r1", std::nullopt);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ciphertext, B("v1"));
  ASSERT_TRUE(store->UpdateRecord(Record("r1", 2, "v2"), 1, nullptr).ok());
  auto stats = PostgresPoolStatsForTest(*store);
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->dropped, 1);
  EXPECT_GE(stats->opened, 2);

  // Again, this time terminating while a write is queued behind nothing:
  // every connection of the pool is replaced as needed.
  auto again = PostgresBackendPidsForTest(*store);
  ASSERT_TRUE(again.ok());
  for (int pid : *again) {
    admin.Query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(store->UpdateRecord(Record("r1", 3, "v3"), 2, nullptr).ok());
  EXPECT_EQ(store->GetRecord("acme", "people", "r1", std::nullopt)->version, 3);
}

TEST_F(PostgresStoreTest, ServerTerminatedMidUseFailsFastAndRecovers) {
  auto store = Open(/*pool_size=*/1);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  Client admin(dsn_);
  ASSERT_TRUE(admin.ok());
  // Hold a lock on the tenant row so DeleteTenant blocks inside its
  // transaction, then terminate the store's session while it waits.
  ASSERT_EQ(admin.Query("BEGIN"), "");
  ASSERT_EQ(admin.Query("SELECT id FROM tenants WHERE id = 'acme' FOR UPDATE"), "acme");
  int pid = PostgresBackendPidsForTest(*store)->at(0);
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Client k(dsn_);
    k.Query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    // Give the store a moment to notice, then release the row lock.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    admin.Query("ROLLBACK");
  });
  auto start = Clock::now();
  Status s = store->DeleteTenant("acme", nullptr);
  killer.join();
  // The lost connection is retried once on a fresh one (nothing had been
  // committed), which then succeeds because the lock is gone — or reports
  // Unavailable; it never hangs and never reports success falsely.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  if (s.ok()) {
    EXPECT_EQ(store->GetTenant("acme").status().code(), StatusCode::kNotFound);
  } else {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  }
  EXPECT_TRUE(store->CreateTenant(Tenant("next"), nullptr).ok());
}

TEST_F(PostgresStoreTest, LockWaitIsBoundedByTheStatementTimeout) {
  auto store = Open(/*pool_size=*/2, /*statement_timeout_ms=*/500);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, "v1"), nullptr).ok());
  Client other(dsn_);
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other.Query("BEGIN"), "");
  ASSERT_EQ(other.Query("SELECT id FROM records WHERE id = 'r1' FOR UPDATE"), "r1");
  auto start = Clock::now();
  Status s = store->UpdateRecord(Record("r1", 2, "v2"), 1, nullptr);
  auto took = Clock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_LT(took, std::chrono::milliseconds(2000));
  ASSERT_EQ(other.Query("ROLLBACK"), "");
  // Nothing was written, and the store works on.
  EXPECT_EQ(store->GetRecord("acme", "people", "r1", std::nullopt)->version, 1);
  EXPECT_TRUE(store->UpdateRecord(Record("r1", 2, "v2"), 1, nullptr).ok());
}

TEST_F(PostgresStoreTest, TwoStoresOnOneDatabaseShareWritesAndConflicts) {
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  MakeTenant(*a);
  ASSERT_TRUE(a->InsertRecord(Record("r1", 1, "from-a"), nullptr).ok());
  auto seen = b->GetRecord("acme", "people", "r1", std::nullopt);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->ciphertext, B("from-a"));
  EXPECT_EQ(b->InsertRecord(Record("r1", 1, "dup"), nullptr).code(), StatusCode::kAlreadyExists);

  ASSERT_TRUE(b->UpdateRecord(Record("r1", 2, "from-b"), 1, nullptr).ok());
  EXPECT_EQ(a->UpdateRecord(Record("r1", 2, "stale-a"), 1, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(a->GetRecord("acme", "people", "r1", std::nullopt)->ciphertext, B("from-b"));

  // Concurrent compare-and-set through both instances: every successful
  // update is a distinct version, none lost.
  constexpr int kThreads = 8;
  constexpr int kUpdates = 40;
  std::vector<std::vector<std::int64_t>> written(kThreads);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = (t % 2 == 0) ? *a : *b;
      for (int i = 0; i < kUpdates;) {
        auto cur = s.GetRecord("acme", "people", "r1", std::nullopt);
        if (!cur.ok()) {
          ++errors;
          return;
        }
        std::int64_t next = cur->current_version + 1;
        Status st = s.UpdateRecord(Record("r1", next, "t" + std::to_string(t)), cur->current_version, nullptr);
        if (st.ok()) {
          written[t].push_back(next);
          ++i;
        } else if (st.code() != StatusCode::kAborted) {
          ++errors;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  std::set<std::int64_t> all;
  for (const auto& v : written) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kUpdates));
  EXPECT_EQ(*all.begin(), 3);
  EXPECT_EQ(*all.rbegin(), 2 + kThreads * kUpdates);
  EXPECT_EQ(b->GetRecord("acme", "people", "r1", std::nullopt)->current_version, 2 + kThreads * kUpdates);
}

// Two kura nodes on one database: whichever node appends, the entries form
// one gap-free chain, each linked to the entry committed before it.
// Two stores on one database are two kura nodes: only one holds a lease;
// when the holder stops renewing, the other takes it after the ttl, judged by
// the database's clock.
TEST_F(PostgresStoreTest, TwoNodesShareOneLease) {
  using std::chrono::milliseconds;
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const milliseconds ttl(1000);
  ASSERT_TRUE(*a->HoldLease("audit-background", "node-a", ttl));
  // While node-a renews (every ttl/3), node-b never gets it.
  const auto until = std::chrono::steady_clock::now() + milliseconds(2000);
  int b_attempts = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto held_a = a->HoldLease("audit-background", "node-a", ttl);
    ASSERT_TRUE(held_a.ok()) << held_a.status().ToString();
    EXPECT_TRUE(*held_a);
    auto held_b = b->HoldLease("audit-background", "node-b", ttl);
    ASSERT_TRUE(held_b.ok()) << held_b.status().ToString();
    EXPECT_FALSE(*held_b);
    ++b_attempts;
    std::this_thread::sleep_for(ttl / 3);
  }
  EXPECT_GE(b_attempts, 4);
  // node-a stops: node-b takes over within about a ttl.
  const auto stopped = std::chrono::steady_clock::now();
  bool b_holds = false;
  while (!b_holds && std::chrono::steady_clock::now() - stopped < milliseconds(3000)) {
    std::this_thread::sleep_for(milliseconds(50));
    b_holds = *b->HoldLease("audit-background", "node-b", ttl);
  }
  ASSERT_TRUE(b_holds);
  EXPECT_GE(std::chrono::steady_clock::now() - stopped, milliseconds(500));
  EXPECT_FALSE(*a->HoldLease("audit-background", "node-a", ttl));
  auto status = a->GetStorageStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->engine, "postgres");
  EXPECT_TRUE(status->primary);
  ASSERT_EQ(status->leases.size(), 1u);
  EXPECT_EQ(status->leases[0].holder, "node-b");
}

TEST_F(PostgresStoreTest, TwoNodesAppendToOneAuditChain) {
  auto a = Open(/*pool_size=*/4);
  auto b = Open(/*pool_size=*/4);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  MakeTenant(*a);
  constexpr int kThreads = 12;
  constexpr int kPerThread = 40;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = (t % 2 == 0) ? *a : *b;
      for (int i = 0; i < kPerThread; ++i) {
        std::string payload = (t % 2 == 0 ? "a" : "b") + std::to_string(t) + "-" + std::to_string(i);
        testing::TestLink link(payload);
        // Plain appends (group-committed per node) and audited writes
        // (each in its own transaction) contend for the one head.
        Status st = i % 4 == 3 ? s.InsertRecord(Record(payload, 1, "c"), &link) : s.AppendAudit(link);
        if (!st.ok()) {
          ADD_FAILURE() << st.ToString();
          ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  std::vector<std::string> payloads = testing::CheckChain(*a);
  ASSERT_EQ(payloads.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(std::set<std::string>(payloads.begin(), payloads.end()).size(), payloads.size());
  EXPECT_EQ(testing::CheckChain(*b), payloads);
  // Both nodes' entries are in it, interleaved.
  int switches = 0;
  for (std::size_t i = 1; i < payloads.size(); ++i) switches += payloads[i][0] != payloads[i - 1][0] ? 1 : 0;
  EXPECT_GT(switches, 1);
  Client c(dsn_);
  EXPECT_EQ(c.Query("SELECT next_seq FROM audit_head WHERE id = 1"), std::to_string(kThreads * kPerThread));
  EXPECT_EQ(c.Query("SELECT count(*) FROM audit_log"), std::to_string(kThreads * kPerThread));
}

// Fail closed, never hang: while another session holds the chain's head, an
// append waits at most the lock timeout and fails Unavailable; it works again
// as soon as the head is free.
TEST_F(PostgresStoreTest, AuditAppendBehindAHeldHeadFailsInTime) {
  auto store = Open(/*pool_size=*/2, /*statement_timeout_ms=*/500);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("first")).ok());
  Client holder(dsn_);
  ASSERT_TRUE(holder.ok());
  ASSERT_EQ(holder.Query("BEGIN"), "");
  ASSERT_EQ(holder.Query("SELECT next_seq FROM audit_head WHERE id = 1 FOR UPDATE"), "1");

  auto start = Clock::now();
  Status s = store->AppendAudit(testing::TestLink("blocked"));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  testing::TestLink write_entry("blocked-write");
  Status w = store->InsertRecord(Record("r1", 1, "c"), &write_entry);
  EXPECT_EQ(w.code(), StatusCode::kUnavailable) << w.ToString();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  // The write went with its entry.
  EXPECT_EQ(store->GetRecord("acme", "people", "r1", std::nullopt).status().code(), StatusCode::kNotFound);

  ASSERT_EQ(holder.Query("COMMIT"), "");
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("second")).ok());
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"first", "second"}));
}

// A head altered past the end of the sequence range: appends fail closed
// (Unavailable, the batch's error for every request) instead of overflowing
// the next number, and nothing is written.
TEST_F(PostgresStoreTest, AuditHeadAtTheEndOfTheRangeFailsAppendsClosed) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("first")).ok());
  Client c(dsn_);
  ASSERT_EQ(c.Query("UPDATE audit_head SET next_seq = 9223372036854775807 WHERE id = 1"), "");
  for (int i = 0; i < 2; ++i) {  // the first with the store's own head, then after reading it again
    Status s = store->AppendAudit(testing::TestLink("after"));
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("out of range"), std::string::npos) << s.ToString();
  }
  EXPECT_EQ(c.Query("SELECT count(*) FROM audit_log"), "1");
  ASSERT_EQ(c.Query("UPDATE audit_head SET next_seq = 1 WHERE id = 1"), "");
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("second")).ok());
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"first", "second"}));
}

TEST_F(PostgresStoreTest, AuditAppendsRecoverAfterBackendsAreTerminated) {
  auto store = Open(/*pool_size=*/2);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("before")).ok());
  auto pids = PostgresBackendPidsForTest(*store);
  ASSERT_TRUE(pids.ok());
  Client admin(dsn_);
  for (int pid : *pids) admin.Query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Status s = store->AppendAudit(testing::TestLink("after"));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"before", "after"}));
}

// When a commit's wait for the synchronous standby is cancelled, PostgreSQL
// still answers COMMIT with success, plus a WARNING (SQLSTATE 01000). The
// write is then on the primary only, so the store reports Unavailable rather
// than OK. A synchronous standby is out of reach of this test, so the same
// signal is produced by a deferred trigger that raises a plain WARNING (also
// 01000) while the transaction commits.
TEST_F(PostgresStoreTest, CommitWarningOfUnconfirmedReplicationIsUnavailable) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  Client c(dsn_);
  ASSERT_EQ(c.Query("CREATE FUNCTION warn_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE WARNING 'canceling wait for synchronous replication (simulated)'; "
                    "RETURN NULL; END $$"),
            "");
  ASSERT_EQ(c.Query("CREATE CONSTRAINT TRIGGER warn_at_commit AFTER INSERT ON audit_log "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION warn_at_commit()"),
            "");
  Status s = store->AppendAudit(testing::TestLink("unconfirmed"));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("standby"), std::string::npos) << s.message();
  testing::TestLink write_entry("unconfirmed-write");
  Status w = store->InsertRecord(Record("r1", 1, "c"), &write_entry);
  EXPECT_EQ(w.code(), StatusCode::kUnavailable) << w.ToString();

  ASSERT_EQ(c.Query("DROP TRIGGER warn_at_commit ON audit_log"), "");
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("confirmed")).ok());
  // Committed locally all the same: Unavailable means "not confirmed", and
  // the chain stays whole.
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"unconfirmed", "unconfirmed-write", "confirmed"}));
}

// --- Audited writes, group-committed by the appender

// Blocks the store's appender inside a batch: a client holds the chain's
// head, an AppendAudit ("blocker") waits for it on the appender's
// connection, and everything queued meanwhile becomes the next batch: one
// transaction, one savepoint per write.
class HeldHead {
 public:
  HeldHead(const std::string& dsn, Store& store) : holder_(dsn), store_(store) {
    EXPECT_TRUE(holder_.ok()) << holder_.error();
    EXPECT_EQ(holder_.Query("BEGIN"), "");
    EXPECT_NE(holder_.Query("SELECT next_seq FROM audit_head WHERE id = 1 FOR UPDATE"), "");
    blocker_ = std::thread([this] { blocked_ = store_.AppendAudit(blocker_link_); });
    // Until the appender's connection waits for the head.
    const std::string me = holder_.Query("SELECT pg_backend_pid()");
    for (int i = 0; i < 200; ++i) {
      if (holder_.Query("SELECT count(*) FROM pg_stat_activity WHERE " + me + " = ANY(pg_blocking_pids(pid))") == "1") {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // Lets the blocker's batch commit; the next batch starts at once.
  Status Release() {
    EXPECT_EQ(holder_.Query("COMMIT"), "");
    blocker_.join();
    return blocked_;
  }

 private:
  Client holder_;
  Store& store_;
  testing::TestLink blocker_link_{"blocker"};
  Status blocked_;
  std::thread blocker_;
};

// Runs `fn` on a thread of its own once the previous one is queued (a short
// pause keeps the queue order), so a test knows which ops share a batch.
class Writers {
 public:
  template <typename F>
  void Start(F fn) {
    threads_.emplace_back(std::move(fn));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

TEST_F(PostgresStoreTest, BatchedWriteThatFailsAloneKeepsTheOthersAndOnlyTheirEntries) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("cas", 1, "v1"), nullptr).ok());
  ASSERT_TRUE(store->UpdateRecord(Record("cas", 2, "v2"), 1, nullptr).ok());
  ASSERT_TRUE(store->InsertRecord(Record("dup", 1, "v1"), nullptr).ok());
  const std::int64_t commits_before = PostgresPoolStatsForTest(*store)->audit_commits;

  testing::TestLink good1("good-1"), stale("stale-update"), good2("good-2"), dup("dup-create"), good3("good-3");
  testing::TestLink fresh_update("fresh-update");
  Status s_good1, s_stale, s_good2, s_dup, s_good3, s_fresh;
  {
    HeldHead head(dsn_, *store);
    Writers w;
    w.Start([&] { s_good1 = store->InsertRecord(Record("g1", 1, "c1"), &good1); });
    // If-Match: version 1, but the record is at version 2.
    w.Start([&] { s_stale = store->UpdateRecord(Record("cas", 2, "stale"), 1, &stale); });
    w.Start([&] { s_good2 = store->InsertRecord(Record("g2", 1, "c2"), &good2); });
    w.Start([&] { s_dup = store->InsertRecord(Record("dup", 1, "again"), &dup); });
    w.Start([&] { s_good3 = store->InsertRecord(Record("g3", 1, "c3"), &good3); });
    w.Start([&] { s_fresh = store->UpdateRecord(Record("cas", 3, "v3"), 2, &fresh_update); });
    ASSERT_TRUE(head.Release().ok());
    w.Join();
  }
  EXPECT_TRUE(s_good1.ok()) << s_good1.ToString();
  EXPECT_EQ(s_stale.code(), StatusCode::kAborted) << s_stale.ToString();
  EXPECT_TRUE(s_good2.ok()) << s_good2.ToString();
  EXPECT_EQ(s_dup.code(), StatusCode::kAlreadyExists) << s_dup.ToString();
  EXPECT_TRUE(s_good3.ok()) << s_good3.ToString();
  EXPECT_TRUE(s_fresh.ok()) << s_fresh.ToString();
  // Two transactions: the blocker's, and one for all six writes.
  EXPECT_EQ(PostgresPoolStatsForTest(*store)->audit_commits - commits_before, 2);

  for (const char* id : {"g1", "g2", "g3"}) {
    auto got = store->GetRecord("acme", "people", id, std::nullopt);
    ASSERT_TRUE(got.ok()) << id << ": " << got.status().ToString();
    EXPECT_EQ(got->version, 1);
  }
  auto cas = store->GetRecord("acme", "people", "cas", std::nullopt);
  ASSERT_TRUE(cas.ok());
  EXPECT_EQ(cas->current_version, 3);
  EXPECT_EQ(cas->ciphertext, B("v3"));
  EXPECT_EQ(store->GetRecord("acme", "people", "dup", std::nullopt)->ciphertext, B("v1"));
  EXPECT_EQ(testing::CheckChain(*store),
            (std::vector<std::string>{"blocker", "good-1", "good-2", "good-3", "fresh-update"}));
}

// A batch of creates only is pipelined; one create refused by the server
// (a duplicate id), one sealed under a data key the tenant has rotated past
// and one for a missing tenant send the batch down the write-by-write path,
// where each finds its own answer and the good ones commit.
TEST_F(PostgresStoreTest, PipelinedCreatesFallBackWriteByWriteWhenOneIsRefused) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->SetTenantDataKeyVersion("acme", 2, nullptr).ok());
  auto Create = [](const std::string& id) {
    RecordWrite w = Record(id, 1, "c-" + id);
    w.key_version = 2;
    w.index.push_back({"email", B("hmac-" + id)});
    return w;
  };
  ASSERT_TRUE(store->InsertRecord(Create("dup"), nullptr).ok());
  testing::TestLink good1("good-1"), dup("dup"), stale("stale-key"), nowhere("no-tenant"), good2("good-2");
  Status s_good1, s_dup, s_stale, s_nowhere, s_good2;
  {
    HeldHead head(dsn_, *store);
    Writers w;
    w.Start([&] { s_good1 = store->InsertRecord(Create("g1"), &good1); });
    w.Start([&] { s_dup = store->InsertRecord(Create("dup"), &dup); });
    w.Start([&] {
      RecordWrite old = Create("old-key");
      old.key_version = 1;
      s_stale = store->InsertRecord(old, &stale);
    });
    w.Start([&] {
      RecordWrite lost = Create("lost");
      lost.tenant_id = "nobody";
      s_nowhere = store->InsertRecord(lost, &nowhere);
    });
    w.Start([&] { s_good2 = store->InsertRecord(Create("g2"), &good2); });
    ASSERT_TRUE(head.Release().ok());
    w.Join();
  }
  EXPECT_TRUE(s_good1.ok()) << s_good1.ToString();
  EXPECT_EQ(s_dup.code(), StatusCode::kAlreadyExists) << s_dup.ToString();
  EXPECT_EQ(s_stale.code(), StatusCode::kAborted) << s_stale.ToString();
  EXPECT_EQ(s_nowhere.code(), StatusCode::kNotFound) << s_nowhere.ToString();
  EXPECT_TRUE(s_good2.ok()) << s_good2.ToString();
  EXPECT_EQ(store->GetRecord("acme", "people", "old-key", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetRecord("acme", "people", "dup", std::nullopt)->ciphertext, B("c-dup"));
  for (const char* id : {"g1", "g2"}) {
    auto found = store->FindRecords("acme", "people", "email", B(std::string("hmac-") + id), {});
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    ASSERT_EQ(found->items.size(), 1u) << id;
    EXPECT_EQ(found->items[0].id, id);
  }
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"blocker", "good-1", "good-2"}));

  // And without a refusal the creates commit as one pipelined batch.
  Client c(dsn_);
  std::vector<std::unique_ptr<testing::TestLink>> links;
  std::vector<Status> results(6);
  {
    HeldHead head(dsn_, *store);
    Writers w;
    for (int i = 0; i < 6; ++i) {
      links.push_back(std::make_unique<testing::TestLink>("p" + std::to_string(i)));
      w.Start([&, i] { results[i] = store->InsertRecord(Create("p" + std::to_string(i)), links[i].get()); });
    }
    const std::int64_t before = pg::RoundTripsForTest();
    ASSERT_TRUE(head.Release().ok());
    w.Join();
    // The blocker's commit and the creates' batch: 3 round trips each (the
    // blocker's first is already counted), far fewer than one per create.
    EXPECT_LE(pg::RoundTripsForTest() - before, 6);
  }
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.Query("SELECT count(*) FROM records WHERE id LIKE 'p%'"), "6");
  EXPECT_EQ(c.Query("SELECT count(*) FROM record_index WHERE record_id LIKE 'p%'"), "6");
}

// Creates that share a batch travel as arrays, one statement per table:
// ids and field names an array literal must quote or escape, bytes that are
// not text, an empty subject (NULL) beside set ones, records without index
// entries beside ones with two: every value comes back as it was written.
TEST_F(PostgresStoreTest, BatchedCreatesKeepEveryCharacterAndByte) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  const std::vector<std::string> ids = {"q\"uote", "back\\slash", "comma,{brace}",
                                        "NULL",    "sp ace",      "\xc3\xbcn\xc3\xaf"};
  auto Create = [&](std::size_t i) {
    RecordWrite w = Record(ids[i], 1, std::string("\x00\\\"{},x\x00", 8) + ids[i]);
    if (i % 2 == 0) w.subject_hmac = B(std::string("\x00\x5c\x22", 3) + ids[i]);
    if (i % 3 != 0) {
      w.index.push_back({"e\"mail", B("\\x00" + ids[i])});
      w.index.push_back({"NULL", B(std::string("\x00", 1) + ids[i])});
    }
    return w;
  };
  std::vector<std::unique_ptr<testing::TestLink>> links;
  std::vector<Status> results(ids.size());
  {
    HeldHead head(dsn_, *store);
    Writers w;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      links.push_back(std::make_unique<testing::TestLink>("c" + std::to_string(i)));
      w.Start([&, i] { results[i] = store->InsertRecord(Create(i), links[i].get()); });
    }
    const std::int64_t before = pg::RoundTripsForTest();
    ASSERT_TRUE(head.Release().ok());
    w.Join();
    // As one pipelined batch, not write by write (which would take several
    // round trips per create).
    EXPECT_LE(pg::RoundTripsForTest() - before, 6);
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << ids[i] << ": " << results[i].ToString();
    const RecordWrite want = Create(i);
    auto got = store->GetRecord("acme", "people", ids[i], std::nullopt);
    ASSERT_TRUE(got.ok()) << ids[i] << ": " << got.status().ToString();
    EXPECT_EQ(got->ciphertext, want.ciphertext) << ids[i];
    EXPECT_EQ(got->version, 1);
    EXPECT_EQ(got->updated_at, want.at);
    for (const IndexEntry& e : want.index) {
      auto found = store->FindRecords("acme", "people", e.field, e.hmac, {});
      ASSERT_TRUE(found.ok()) << found.status().ToString();
      ASSERT_EQ(found->items.size(), 1u) << ids[i] << " by " << e.field;
      EXPECT_EQ(found->items[0].id, ids[i]);
    }
  }
  Client c(dsn_);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.Query("SELECT count(*) FROM records WHERE subject_hmac IS NULL"), "3");
  EXPECT_EQ(c.Query("SELECT encode(subject_hmac, 'hex') FROM records WHERE id = 'q\"uote'"), "005c227122756f7465");
  EXPECT_EQ(c.Query("SELECT count(*) FROM record_index"), "8");
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"blocker", "c0", "c1", "c2", "c3", "c4", "c5"}));
}

// A write whose entry is malformed fails alone (Internal) and takes its
// change with it; the batch is run again without it.
TEST_F(PostgresStoreTest, BatchedWriteWithAMalformedEntryLeavesNoChange) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  testing::TestLink good1("good-1"), good2("good-2"), plain("plain");
  testing::BrokenLink broken(testing::BrokenLink::Defect::kNoHash);
  Status s_good1, s_broken, s_good2, s_plain, s_plain_broken;
  {
    HeldHead head(dsn_, *store);
    Writers w;
    w.Start([&] { s_good1 = store->InsertRecord(Record("g1", 1, "c1"), &good1); });
    w.Start([&] { s_broken = store->InsertRecord(Record("bad", 1, "c"), &broken); });
    w.Start([&] { s_plain_broken = store->AppendAudit(broken); });
    w.Start([&] { s_plain = store->AppendAudit(plain); });
    w.Start([&] { s_good2 = store->InsertRecord(Record("g2", 1, "c2"), &good2); });
    ASSERT_TRUE(head.Release().ok());
    w.Join();
  }
  EXPECT_TRUE(s_good1.ok()) << s_good1.ToString();
  EXPECT_EQ(s_broken.code(), StatusCode::kInternal) << s_broken.ToString();
  EXPECT_EQ(s_plain_broken.code(), StatusCode::kInternal) << s_plain_broken.ToString();
  EXPECT_TRUE(s_plain.ok()) << s_plain.ToString();
  EXPECT_TRUE(s_good2.ok()) << s_good2.ToString();
  EXPECT_EQ(store->GetRecord("acme", "people", "bad", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->GetRecord("acme", "people", "g2", std::nullopt).ok());
  EXPECT_EQ(testing::CheckChain(*store), (std::vector<std::string>{"blocker", "good-1", "plain", "good-2"}));
}

// The appender's connection is terminated while its batch waits on a row
// lock after some of its writes ran: COMMIT was never sent, so nothing was
// written, and the batch runs once more on a fresh connection. Every write
// succeeds exactly once, with exactly one entry.
TEST_F(PostgresStoreTest, BatchWhoseConnectionIsLostBeforeCommitRunsAgain) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("locked", 1, "v1"), nullptr).ok());
  Client row(dsn_);
  ASSERT_TRUE(row.ok());
  ASSERT_EQ(row.Query("BEGIN"), "");
  ASSERT_EQ(row.Query("SELECT id FROM records WHERE id = 'locked' FOR UPDATE"), "locked");
  const std::string row_pid = row.Query("SELECT pg_backend_pid()");

  std::vector<std::unique_ptr<testing::TestLink>> links;
  for (int i = 0; i < 4; ++i) links.push_back(std::make_unique<testing::TestLink>("create-" + std::to_string(i)));
  testing::TestLink update_link("update");
  std::vector<Status> results(5);
  {
    HeldHead head(dsn_, *store);
    Writers w;
    for (int i = 0; i < 4; ++i) {
      w.Start([&, i] { results[i] = store->InsertRecord(Record("c" + std::to_string(i), 1, "x"), links[i].get()); });
    }
    // Last in the batch: waits for `row`'s lock after the creates ran.
    w.Start([&] { results[4] = store->UpdateRecord(Record("locked", 2, "v2"), 1, &update_link); });
    ASSERT_TRUE(head.Release().ok());
    Client admin(dsn_);
    std::string victim;
    for (int i = 0; i < 300 && victim.empty(); ++i) {
      victim = admin.Query("SELECT pid FROM pg_stat_activity WHERE " + row_pid + " = ANY(pg_blocking_pids(pid))");
      if (victim.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_FALSE(victim.empty());
    EXPECT_EQ(admin.Query("SELECT pg_terminate_backend(" + victim + ")"), "t");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(row.Query("ROLLBACK"), "");
    w.Join();
  }
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE(PostgresPoolStatsForTest(*store)->retries, 1);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(store->GetRecord("acme", "people", "c" + std::to_string(i), std::nullopt).ok());
  EXPECT_EQ(store->GetRecord("acme", "people", "locked", std::nullopt)->current_version, 2);
  EXPECT_EQ(testing::CheckChain(*store),
            (std::vector<std::string>{"blocker", "create-0", "create-1", "create-2", "create-3", "update"}));
}

// Many writers on two nodes: creates and If-Match updates of shared records,
// all audited. Every write that returned OK is its version and has exactly
// one entry; no failed write left one; the chain verifies.
TEST_F(PostgresStoreTest, ConcurrentAuditedWritersOnTwoNodes) {
  auto a = Open(/*pool_size=*/4);
  auto b = Open(/*pool_size=*/4);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  MakeTenant(*a);
  constexpr int kShared = 3;
  for (int r = 0; r < kShared; ++r) {
    ASSERT_TRUE(a->InsertRecord(Record("shared-" + std::to_string(r), 1, "v1"), nullptr).ok());
  }
  constexpr int kThreads = 16;
  constexpr int kPerThread = 30;
  std::mutex mu;
  std::set<std::string> ok_payloads;
  std::map<std::string, std::map<std::int64_t, std::string>> versions;  // record → version → payload written
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < kPerThread; ++i) {
        const std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i);
        testing::TestLink link(payload);
        Status st;
        std::string record;
        std::int64_t version = 1;
        if (i % 3 == 0) {
          record = "shared-" + std::to_string((t + i) % kShared);
          auto cur = s.GetRecord("acme", "people", record, std::nullopt);
          if (!cur.ok()) {
            ++errors;
            continue;
          }
          version = cur->current_version + 1;
          RecordWrite w = Record(record, version, payload);
          w.keep_versions = 1000;
          st = s.UpdateRecord(w, cur->current_version, &link);
          if (st.code() == StatusCode::kAborted) continue;  // lost the race: no entry
        } else {
          record = payload;
          st = s.InsertRecord(Record(record, 1, payload), &link);
        }
        if (!st.ok()) {
          ADD_FAILURE() << st.ToString();
          ++errors;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        ok_payloads.insert(payload);
        EXPECT_TRUE(versions[record].emplace(version, payload).second) << record << " v" << version << " written twice";
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<std::string> chain = testing::CheckChain(*a);
  EXPECT_EQ(std::set<std::string>(chain.begin(), chain.end()), ok_payloads);
  EXPECT_EQ(chain.size(), ok_payloads.size());
  // Each OK write is its version, with its ciphertext.
  for (const auto& [record, written] : versions) {
    for (const auto& [v, payload] : written) {
      auto got = b->GetRecord("acme", "people", record, v);
      ASSERT_TRUE(got.ok()) << record << " v" << v << ": " << got.status().ToString();
      EXPECT_EQ(got->ciphertext, B(payload)) << record << " v" << v;
    }
    if (record.rfind("shared-", 0) == 0) {
      // Versions are contiguous: 1 (made above) plus one per OK update.
      EXPECT_EQ(b->GetRecord("acme", "people", record, std::nullopt)->current_version,
                static_cast<std::int64_t>(written.size()) + 1);
    }
  }
}

// Round trips of one audited create on an idle store (BEGIN … COMMIT of its
// batch), as the benchmark's creates do; printed, and bounded so a change
// that adds round trips is noticed.
TEST_F(PostgresStoreTest, RoundTripsOfAnAuditedCreate) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  // Warm: statements prepared on the connections the measured calls use.
  for (int i = 0; i < 4; ++i) {
    testing::TestLink link("warm-" + std::to_string(i));
    RecordWrite w = Record("warm-" + std::to_string(i), 1, "x");
    w.index.push_back({"email", B("hmac")});
    ASSERT_TRUE(store->InsertRecord(w, &link).ok());
  }
  constexpr int kCreates = 20;
  const std::int64_t before = pg::RoundTripsForTest();
  for (int i = 0; i < kCreates; ++i) {
    testing::TestLink link("c-" + std::to_string(i));
    RecordWrite w = Record("c-" + std::to_string(i), 1, "x");
    w.index.push_back({"email", B("hmac")});
    ASSERT_TRUE(store->InsertRecord(w, &link).ok());
  }
  const double per_create = static_cast<double>(pg::RoundTripsForTest() - before) / kCreates;
  std::printf("round trips per audited create (one per batch): %.1f\n", per_create);
  EXPECT_LE(per_create, 12.0);
}

// Plain appends in a row from one node: after the first (which finds the
// head), each batch is one round trip. When another node appended in
// between, the batch finds the head moved, writes nothing that way and goes
// the usual way; the chain stays whole and in order.
TEST_F(PostgresStoreTest, AppendsAfterTheNodesOwnHeadAreOneRoundTripEach) {
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->AppendAudit(testing::TestLink("a-0")).ok());  // learns the head, prepares the statements
  ASSERT_TRUE(a->AppendAudit(testing::TestLink("a-1")).ok());
  constexpr int kAppends = 20;
  std::int64_t before = pg::RoundTripsForTest();
  for (int i = 2; i < 2 + kAppends; ++i) ASSERT_TRUE(a->AppendAudit(testing::TestLink("a-" + std::to_string(i))).ok());
  EXPECT_EQ(pg::RoundTripsForTest() - before, kAppends);

  // Another node moves the head: a's next batch is refused by the check,
  // then appended the usual way after b's entry.
  ASSERT_TRUE(b->AppendAudit(testing::TestLink("b-0")).ok());
  before = pg::RoundTripsForTest();
  ASSERT_TRUE(a->AppendAudit(testing::TestLink("a-after-b")).ok());
  EXPECT_GT(pg::RoundTripsForTest() - before, 1);
  // After a miss the next batch goes the usual way (backing off), then a's
  // head is its own again: one round trip.
  ASSERT_TRUE(a->AppendAudit(testing::TestLink("a-backoff")).ok());
  before = pg::RoundTripsForTest();
  ASSERT_TRUE(a->AppendAudit(testing::TestLink("a-end")).ok());
  EXPECT_EQ(pg::RoundTripsForTest() - before, 1);

  std::vector<std::string> expected;
  for (int i = 0; i < 2 + kAppends; ++i) expected.push_back("a-" + std::to_string(i));
  expected.insert(expected.end(), {"b-0", "a-after-b", "a-backoff", "a-end"});
  EXPECT_EQ(testing::CheckChain(*a), expected);
  EXPECT_EQ(testing::CheckChain(*b), expected);
  Client c(dsn_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.Query("SELECT next_seq FROM audit_head WHERE id = 1"), std::to_string(expected.size()));
}

// A head row someone removed is not appended after blindly: the check fails
// and the usual way reports the loss.
TEST_F(PostgresStoreTest, AppendAfterOwnHeadRefusesAMissingHeadRow) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AppendAudit(testing::TestLink("first")).ok());
  Client c(dsn_);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c.Query("DELETE FROM audit_head"), "");
  Status s = store->AppendAudit(testing::TestLink("second"));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(c.Query("SELECT count(*) FROM audit_log"), "1");
}

// A re-encryption batch is a few round trips however many versions it
// rewrites: its UPDATEs go in one pipeline.
TEST_F(PostgresStoreTest, ReencryptionBatchIsAFewRoundTrips) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  constexpr int kVersions = 200;
  std::vector<CiphertextRewrite> batch;
  for (int i = 0; i < kVersions; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "r%04d", i);
    ASSERT_TRUE(store->InsertRecord(Record(id, 1, "old"), nullptr).ok());
    batch.push_back(CiphertextRewrite{RecordVersionKey{"people", id, 1}, 1, B(std::string("new-") + id)});
  }
  KeyRotationRow rotation;
  rotation.tenant_id = "acme";
  rotation.to_version = 2;
  rotation.total = kVersions;
  ASSERT_TRUE(store->PutKeyRotation(rotation, nullptr).ok());
  // Warm: the statements prepared on the connection the batch uses.
  ASSERT_EQ(*store->RewriteRecordCiphertexts("acme", 2, {batch[0]}, batch[0].key), 1);

  const std::int64_t before = pg::RoundTripsForTest();
  std::vector<CiphertextRewrite> rest(batch.begin() + 1, batch.end());
  auto rewritten = store->RewriteRecordCiphertexts("acme", 2, rest, rest.back().key);
  const std::int64_t trips = pg::RoundTripsForTest() - before;
  ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
  EXPECT_EQ(*rewritten, kVersions - 1);
  EXPECT_LE(trips, 6) << "one round trip per version?";
  EXPECT_EQ(*store->CountRecordVersionsBelowKey("acme", 2), 0);
  EXPECT_EQ(store->GetRecord("acme", "people", "r0199", 1)->ciphertext, B("new-r0199"));
  EXPECT_EQ(store->GetKeyRotation("acme")->done, kVersions);
}

// Concurrent reads of current versions are coalesced: one pipeline carries
// many, and each caller still gets its own row, its own NotFound, or its own
// error when the server refuses its statement.
TEST_F(PostgresStoreTest, ConcurrentReadsShareRoundTripsAndKeepTheirOwnAnswers) {
  auto store = Open(/*pool_size=*/8);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  constexpr int kRecords = 32;
  // Some ids hold what an array literal quotes or escapes (a batch's keys
  // travel as arrays).
  auto id_of = [](int n) {
    const std::string k = std::to_string(n);
    switch (n % 4) {
      case 0:
        return "r" + k;
      case 1:
        return "q\"" + k + "\"";
      case 2:
        return "b\\" + k + ",{x}";
      default:
        return "NULL " + k;
    }
  };
  for (int i = 0; i < kRecords; ++i) {
    const std::string id = id_of(i);
    ASSERT_TRUE(store->InsertRecord(Record(id, 1, "v1-" + id), nullptr).ok());
    ASSERT_TRUE(store->UpdateRecord(Record(id, 2, "v2-" + id), 1, nullptr).ok());
  }
  ASSERT_TRUE(store->GetRecord("acme", "people", "r0", std::nullopt).ok());  // warm

  constexpr int kThreads = 24;
  constexpr int kRounds = 30;
  std::atomic<int> wrong{0};
  std::atomic<bool> go{false};
  const std::int64_t before = pg::RoundTripsForTest();
  const std::int64_t statements_before = PostgresPoolStatsForTest(*store)->read_statements;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int round = 0; round < kRounds; ++round) {
        const int n = (t * kRounds + round) % kRecords;
        const std::string id = id_of(n);
        if (round % 10 == 3) {
          // Not valid UTF-8: the server refuses this one statement.
          auto bad = store->GetRecord("acme", "people", "bad\xff" + id, std::nullopt);
          if (bad.status().code() != StatusCode::kInvalidArgument) ++wrong;
        } else if (round % 10 == 7) {
          auto missing = store->GetRecord("acme", "people", "missing-" + id, std::nullopt);
          if (missing.status().code() != StatusCode::kNotFound) ++wrong;
        } else {
          auto row = store->GetRecord("acme", "people", id, std::nullopt);
          if (!row.ok() || row->id != id || row->version != 2 || row->current_version != 2 ||
              row->ciphertext != B("v2-" + id)) {
            ++wrong;
          }
        }
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  const std::int64_t trips = pg::RoundTripsForTest() - before;
  EXPECT_EQ(wrong.load(), 0);
  const int reads = kThreads * kRounds;
  std::printf("%d concurrent reads in %lld round trips\n", reads, static_cast<long long>(trips));
  // A batch goes as one statement; one with a refused read is refused
  // whole and then runs as a pipeline, which finds it, and the others go
  // again: still fewer round trips than reads (one read in ten is refused
  // here, so the statements may outnumber the reads; see the phase below).
  EXPECT_LT(trips, reads);
  std::printf("%d concurrent reads in %lld statements\n", reads,
              static_cast<long long>(PostgresPoolStatsForTest(*store)->read_statements - statements_before));

  // Present records only: batches of two reads or more go as one statement
  // each (one per read if they were pipelined).
  const std::int64_t good_before = PostgresPoolStatsForTest(*store)->read_statements;
  go = false;
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int round = 0; round < 10; ++round) {
        const std::string id = id_of((t + round) % kRecords);
        auto row = store->GetRecord("acme", "people", id, std::nullopt);
        if (!row.ok() || row->id != id || row->ciphertext != B("v2-" + id)) ++wrong;
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LT(PostgresPoolStatsForTest(*store)->read_statements - good_before, kThreads * 10);
  // A versioned read is not coalesced and still finds old versions.
  EXPECT_EQ(store->GetRecord("acme", "people", "r4", 1)->ciphertext, B("v1-r4"));
  EXPECT_EQ(store->GetRecord("acme", "people", "r4", 3).status().code(), StatusCode::kNotFound);
}

// GetRecordAsync queues without blocking; the reader threads complete each
// read, on their own thread, with its own answer.
TEST_F(PostgresStoreTest, AsyncReadsCompleteOnAStoreThreadWithTheirOwnAnswers) {
  auto store = Open(/*pool_size=*/4);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  constexpr int kRecords = 16;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(store->InsertRecord(Record("a" + std::to_string(i), 1, "c" + std::to_string(i)), nullptr).ok());
  }
  constexpr int kReads = 300;
  std::mutex mu;
  std::condition_variable cv;
  int completed = 0;
  int wrong = 0;
  bool on_caller_thread = false;
  const auto caller = std::this_thread::get_id();
  const std::int64_t before = pg::RoundTripsForTest();
  for (int i = 0; i < kReads; ++i) {
    const std::string id = "a" + std::to_string(i % kRecords);
    const int kind = i % 3;  // 0: present, 1: missing, 2: refused (bad UTF-8)
    const std::string asked = kind == 0 ? id : kind == 1 ? "missing-" + id : "bad\xff" + id;
    store->GetRecordAsync("acme", "people", asked, [&, kind, id](Result<RecordRow> row) {
      bool right = kind == 0   ? row.ok() && row->id == id && row->ciphertext == B("c" + id.substr(1))
                   : kind == 1 ? row.status().code() == StatusCode::kNotFound
                               : row.status().code() == StatusCode::kInvalidArgument;
      std::lock_guard<std::mutex> lock(mu);
      if (!right) ++wrong;
      if (std::this_thread::get_id() == caller) on_caller_thread = true;
      ++completed;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return completed == kReads; })) << completed;
  EXPECT_EQ(wrong, 0);
  EXPECT_FALSE(on_caller_thread);
  // Queued reads share pipelines (each refused one costs its batch a pass).
  EXPECT_LT(pg::RoundTripsForTest() - before, kReads);
}

TEST_F(PostgresStoreTest, ConcurrentOpensMigrateOnce) {
  constexpr int kOpeners = 6;
  std::vector<std::unique_ptr<Store>> stores(kOpeners);
  std::vector<Status> results(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      PostgresOptions o;
      o.dsn = dsn_;
      o.pool_size = 1;
      auto s = OpenPostgresStore(o);
      results[i] = s.status();
      if (s.ok()) stores[i] = std::move(s).value();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();

  Client c(dsn_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.Query("SELECT count(*) FROM schema_migrations"), std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(c.Query("SELECT max(version) FROM schema_migrations"), std::to_string(LatestSchemaVersion()));

  // Every instance works on the one schema.
  ASSERT_TRUE(stores[0]->CreateTenant(Tenant("acme"), nullptr).ok());
  for (auto& s : stores) EXPECT_TRUE(s->GetTenant("acme").ok());
  // Reopening is a no-op.
  stores.clear();
  auto again = Open();
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(again->GetTenant("acme").ok());
  EXPECT_EQ(c.Query("SELECT count(*) FROM schema_migrations"), std::to_string(LatestSchemaVersion()));
}

TEST_F(PostgresStoreTest, NewerSchemaIsRefused) {
  ASSERT_NE(Open(), nullptr);
  Client c(dsn_);
  ASSERT_EQ(c.Query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)"), "");
  PostgresOptions o;
  o.dsn = dsn_;
  EXPECT_EQ(OpenPostgresStore(o).status().code(), StatusCode::kFailedPrecondition);
}

// `kura audit verify --config` on PostgreSQL: reads work beside a running
// node, the server refuses every write, and nothing is migrated or created.
TEST_F(PostgresStoreTest, ReadOnlyOpenReadsAndChangesNothing) {
  Client c(dsn_);
  PostgresOptions o;
  o.dsn = dsn_;
  o.read_only = true;
  auto empty = OpenPostgresStore(o);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kFailedPrecondition) << empty.status().ToString();
  EXPECT_EQ(c.Query("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), "0");

  auto writer = Open();
  ASSERT_NE(writer, nullptr);
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(writer->AppendAudit(testing::TestLink(p)).ok());
  ASSERT_EQ(c.Query("DELETE FROM schema_migrations WHERE version = " + std::to_string(LatestSchemaVersion())), "");
  auto reader = OpenPostgresStore(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ(testing::CheckChain(**reader), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE((*reader)->AppendAudit(testing::TestLink("d")).ok());
  EXPECT_FALSE((*reader)->PutMeta("k", ToBytes("v"), nullptr).ok());
  ASSERT_TRUE(writer->AppendAudit(testing::TestLink("e")).ok());
  EXPECT_EQ(testing::CheckChain(**reader), (std::vector<std::string>{"a", "b", "c", "e"}));
  EXPECT_EQ(c.Query("SELECT count(*) FROM meta WHERE name = 'k'"), "0");
  EXPECT_EQ(c.Query("SELECT max(version) FROM schema_migrations"), std::to_string(LatestSchemaVersion() - 1));
}

TEST_F(PostgresStoreTest, IdsOrderBytewiseAndBadTextIsInvalidArgument) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // Natural-language collations sort "a" < "B"; bytewise order (SQLite's)
  // puts "B" (0x42) first.
  for (const char* id : {"a", "B", "_", "é"}) ASSERT_TRUE(store->CreateTenant(Tenant(id), nullptr).ok()) << id;
  auto listed = store->ListTenants({});
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> order;
  for (const auto& t : listed->items) order.push_back(t.id);
  EXPECT_EQ(order, (std::vector<std::string>{"B", "_", "a", "é"}));

  // Invalid UTF-8 and NUL cannot be stored as text: InvalidArgument, and the
  // value is not echoed.
  Status bad = store->CreateTenant(Tenant(std::string("bad\xff-secret")), nullptr);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument) << bad.ToString();
  EXPECT_EQ(bad.message().find("secret"), std::string::npos);
  Status nul = store->CreateTenant(Tenant(std::string("nul\0-secret", 11)), nullptr);
  EXPECT_EQ(nul.code(), StatusCode::kInvalidArgument) << nul.ToString();
  EXPECT_EQ(nul.message().find("secret"), std::string::npos);
  // A duplicate's message does not carry the id either.
  ASSERT_TRUE(store->CreateTenant(Tenant("dup-secret"), nullptr).ok());
  Status dup = store->CreateTenant(Tenant("dup-secret"), nullptr);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  EXPECT_EQ(dup.message().find("secret"), std::string::npos) << dup.ToString();
}

}  // namespace
}  // namespace kura::store
