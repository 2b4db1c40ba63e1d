// SQLite-specific behaviour of the Store: files, durability, group commit,
// failure handling and schema versioning. Backend-neutral behaviour is in
// store_conformance_test.cc.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/audit_sql.h"
#include "store/audit_test_util.h"
#include "store/migrations.h"
#include "store/sqlite_internal.h"
#include "store/store.h"

namespace kura::store {
namespace {

namespace fs = std::filesystem;
using testing::CheckChain;
using testing::TestEvent;
using testing::TestLink;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("kura_sqlite_store_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    path_ = (dir_ / "data" / "kura.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Store> Open(bool durable = true, int max_batch = 256) {
    SqliteOptions options;
    options.path = path_;
    options.durable = durable;
    options.max_batch = max_batch;
    auto store = OpenSqliteStore(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Runs SQL on the file through a separate raw connection.
  std::string QueryText(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      out = text ? text : "";
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  void ExecRaw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Entries whose tenant or principal has no row for the entry's block in
  // the trail index (audit_sql.h): a trail would miss them. Always "0".
  std::string EntriesMissingFromTheTrailIndex() {
    return QueryText(
        "SELECT COUNT(*) FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM audit_tenant_blocks b "
        "WHERE b.tenant_id = a.tenant_id AND b.block = a.seq >> " +
        std::to_string(kAuditBlockShift) +
        ") OR NOT EXISTS (SELECT 1 FROM audit_principal_blocks b WHERE b.principal = a.principal AND b.block = "
        "a.seq >> " +
        std::to_string(kAuditBlockShift) + ")");
  }

  static mode_t Mode(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  }

  static TenantRow Tenant(const std::string& id) {
    TenantRow t;
    t.id = id;
    t.name = "n";
    t.region = "eu";
    t.created_at = 1;
    t.data_key_version = 2;
    return t;
  }
  static RecordWrite Record(const std::string& id, std::int64_t version, Bytes ciphertext) {
    RecordWrite w;
    w.tenant_id = "acme";
    w.collection = "people";
    w.id = id;
    w.version = version;
    w.ciphertext = std::move(ciphertext);
    w.index = {{"email", ToBytes("hmac-" + id)}};
    w.at = 100;
    w.key_version = 2;  // the tenant's data_key_version: the store refuses any other
    return w;
  }
  static void MakeTenant(Store& s) {
    ASSERT_TRUE(s.CreateTenant(Tenant("acme"), nullptr).ok());
    CollectionRow c;
    c.tenant_id = "acme";
    c.name = "people";
    c.schema_json = "{}";
    ASSERT_TRUE(s.PutCollection(c, nullptr).ok());
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, DataSurvivesCloseAndReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    MakeTenant(*store);
    ASSERT_TRUE(store->InsertMeta("root", ToBytes("hash"), nullptr).ok());
    ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes("c1")), nullptr).ok());
    ASSERT_TRUE(store->UpdateRecord(Record("r1", 2, ToBytes("c2")), 1, nullptr).ok());
    ASSERT_TRUE(
        store->CreateApiKey({"k1", "acme", "n", "admin", ToBytes("kh"), 5, std::nullopt, std::nullopt}, nullptr).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->GetMeta("root"), ToBytes("hash"));
  EXPECT_EQ(store->GetTenant("acme")->data_key_version, 2);
  auto rec = store->GetRecord("acme", "people", "r1", std::nullopt);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->version, 2);
  EXPECT_EQ(rec->ciphertext, ToBytes("c2"));
  EXPECT_EQ(store->GetRecord("acme", "people", "r1", 1)->ciphertext, ToBytes("c1"));
  EXPECT_EQ(store->FindRecords("acme", "people", "email", ToBytes("hmac-r1"), {})->items.size(), 1u);
  EXPECT_EQ(store->FindApiKeyByHash(ToBytes("kh"))->id, "k1");
  // And it still writes.
  EXPECT_TRUE(store->UpdateRecord(Record("r1", 3, ToBytes("c3")), 2, nullptr).ok());
}

TEST_F(SqliteStoreTest, FilesAreOwnerOnly) {
  ::umask(022);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);  // a write, so the WAL exists
  EXPECT_EQ(Mode(path_), 0600u);
  EXPECT_EQ(Mode((dir_ / "data").string()), 0700u);
  EXPECT_EQ(Mode(dir_.string()), 0700u);
  for (const char* suffix : {"-wal", "-shm"}) {
    if (fs::exists(path_ + suffix)) {
      EXPECT_EQ(Mode(path_ + suffix), 0600u) << suffix;
    }
  }
  store.reset();

  // A file left with a wider mode is tightened at open.
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Mode(path_), 0600u);
}

TEST_F(SqliteStoreTest, UsesWalJournal) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(QueryText("PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStoreTest, ConcurrentWritersShareCommits) {
  constexpr int kThreads = 32;
  constexpr int kPerThread = 40;
  auto store = Open(/*durable=*/true);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  auto before = GroupCommitStatsForTest(*store);
  ASSERT_TRUE(before.ok());

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "r-" + std::to_string(t) + "-" + std::to_string(i);
        if (!store->InsertRecord(Record(id, 1, Bytes(300, 0x5a)), nullptr).ok()) ++failures;
        // Every write that returned is visible to a read that starts after it.
        if (!store->GetRecord("acme", "people", id, std::nullopt).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  auto after = GroupCommitStatsForTest(*store);
  ASSERT_TRUE(after.ok());
  std::int64_t ops = after->ops - before->ops;
  std::int64_t commits = after->commits - before->commits;
  EXPECT_EQ(ops, kThreads * kPerThread);
  EXPECT_LT(commits, ops) << "no two writes shared a commit";
  EXPECT_GT(commits, 0);

  PageRequest all;
  all.limit = 1000;
  std::size_t count = 0;
  for (;;) {
    auto page = store->ListRecords("acme", "people", all);
    ASSERT_TRUE(page.ok());
    count += page->items.size();
    if (!page->next) break;
    all.after = *page->next;
  }
  EXPECT_EQ(count, static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_F(SqliteStoreTest, WalIsCheckpointedInTheBackground) {
  auto store = Open(/*durable=*/false);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  // Each commit appends a few pages to the WAL; well past the threshold.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(store->InsertRecord(Record("r" + std::to_string(i), 1, Bytes(2000, 0x11)), nullptr).ok());
  }
  GroupCommitStats stats;
  for (int i = 0; i < 200 && stats.database_syncs == 0; ++i) {
    stats = *GroupCommitStatsForTest(*store);
    if (stats.database_syncs == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GT(stats.checkpoints, 0);
  // The checkpoint thread syncs the pages it copied, so that the writer's
  // catch-up does not have to (each sync follows its checkpoint).
  EXPECT_GT(stats.database_syncs, 0);
  EXPECT_LE(stats.database_syncs, stats.checkpoints);
  // Data written before and after checkpoints reads back.
  EXPECT_EQ(store->GetRecord("acme", "people", "r0", std::nullopt)->ciphertext.size(), 2000u);
  EXPECT_TRUE(store->GetRecord("acme", "people", "r1999", std::nullopt).ok());
}

TEST_F(SqliteStoreTest, WalRestartsWhileReadersAndWritersRun) {
  // Checkpoints copy the WAL back while commits go on; the WAL must still
  // start over from its beginning now and then, or it grows without bound.
  auto store = Open(/*durable=*/false);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) (void)store->GetRecord("acme", "people", "r0", std::nullopt);
  });
  constexpr int kRecords = 4000;  // ~4 WAL frames each: ~64 MiB of WAL without restarts
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(store->InsertRecord(Record("r" + std::to_string(i), 1, Bytes(2000, 0x11)), nullptr).ok());
  }
  done = true;
  reader.join();
  const auto wal_bytes = std::filesystem::file_size(path_ + "-wal");
  EXPECT_LT(wal_bytes, 40u << 20) << "the WAL never restarted";
  EXPECT_TRUE(store->GetRecord("acme", "people", "r" + std::to_string(kRecords - 1), std::nullopt).ok());
}

TEST_F(SqliteStoreTest, MaxBatchOneCommitsEveryWriteAlone) {
  auto store = Open(/*durable=*/false, /*max_batch=*/1);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(store->PutMeta("k" + std::to_string(t * 100 + i), ToBytes("v"), nullptr).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto stats = GroupCommitStatsForTest(*store);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->commits, stats->ops);
}

TEST_F(SqliteStoreTest, FullDiskIsUnavailableAndRecovers) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("before", 1, Bytes(100, 1)), nullptr).ok());

  // The file may not grow past its current size: the next page allocation
  // fails with SQLITE_FULL, as on a full disk.
  ASSERT_TRUE(ExecOnWriterForTest(*store, "PRAGMA max_page_count = 1").ok());
  Status failed;
  std::string failed_id;
  for (int i = 0; i < 200 && failed.ok(); ++i) {
    failed_id = "big-" + std::to_string(i);
    failed = store->InsertRecord(Record(failed_id, 1, Bytes(16384, 0xab)), nullptr);
  }
  ASSERT_EQ(failed.code(), StatusCode::kUnavailable) << failed.ToString();
  EXPECT_EQ(failed.message().find("big-"), std::string::npos);
  // Nothing of the failed write is visible; earlier data is intact.
  EXPECT_EQ(store->GetRecord("acme", "people", failed_id, std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->FindRecords("acme", "people", "email", ToBytes("hmac-" + failed_id), {})->items.empty());
  EXPECT_TRUE(store->GetRecord("acme", "people", "before", std::nullopt).ok());
  // Small writes that fit in free pages may still work; large ones keep failing.
  EXPECT_EQ(store->InsertRecord(Record("big-again", 1, Bytes(65536, 0xcd)), nullptr).code(), StatusCode::kUnavailable);

  // The cause goes away: the same store writes again.
  ASSERT_TRUE(ExecOnWriterForTest(*store, "PRAGMA max_page_count = 1073741823").ok());
  ASSERT_TRUE(store->InsertRecord(Record(failed_id, 1, Bytes(16384, 0xab)), nullptr).ok());
  EXPECT_TRUE(store->InsertRecord(Record("big-again", 1, Bytes(65536, 0xcd)), nullptr).ok());
  EXPECT_EQ(store->GetRecord("acme", "people", "big-again", std::nullopt)->ciphertext.size(), 65536u);
}

// An audit entry that cannot be made durable fails its call at once, leaves
// nothing behind, and the chain carries on intact once space returns.
TEST_F(SqliteStoreTest, FullDiskFailsAuditAppendsAndTheChainRecovers) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  std::vector<std::unique_ptr<TestLink>> links;
  auto link = [&](const std::string& payload, std::size_t size = 0) -> const TestLink& {
    links.push_back(std::make_unique<TestLink>(payload + std::string(size, '.')));
    return *links.back();
  };
  std::vector<std::string> durable;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->AppendAudit(link("before-" + std::to_string(i))).ok());
    durable.push_back("before-" + std::to_string(i));
  }

  ASSERT_TRUE(ExecOnWriterForTest(*store, "PRAGMA max_page_count = 1").ok());
  // Entries big enough to need new pages; some may still fit in free ones.
  Status failed;
  for (int i = 0; i < 200 && failed.ok(); ++i) {
    auto start = std::chrono::steady_clock::now();
    failed = store->AppendAudit(link("full-" + std::to_string(i), 16384));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    if (failed.ok()) durable.push_back("full-" + std::to_string(i) + std::string(16384, '.'));
  }
  ASSERT_EQ(failed.code(), StatusCode::kUnavailable) << failed.ToString();
  // An audited change fails with its entry: neither is written.
  TestLink write_entry("insert" + std::string(16384, '.'));
  Status write = store->InsertRecord(Record("during", 1, Bytes(16384, 0xab)), &write_entry);
  EXPECT_EQ(write.code(), StatusCode::kUnavailable) << write.ToString();
  EXPECT_EQ(store->GetRecord("acme", "people", "during", std::nullopt).status().code(), StatusCode::kNotFound);
  // Concurrent appends while full: each fails (or, if it fit, is durable).
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        std::string payload = "busy-" + std::to_string(t) + "-" + std::to_string(i) + std::string(8192, '.');
        TestLink l(payload);
        Status s = store->AppendAudit(l);
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          durable.push_back(payload);
        } else {
          EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(*store->AuditSize(), static_cast<std::int64_t>(durable.size()));

  // Space returns: the same store appends again, right after the last entry.
  ASSERT_TRUE(ExecOnWriterForTest(*store, "PRAGMA max_page_count = 1073741823").ok());
  ASSERT_TRUE(store->AppendAudit(link("after", 16384)).ok());
  durable.push_back("after" + std::string(16384, '.'));
  TestLink write_again("insert-again");
  ASSERT_TRUE(store->InsertRecord(Record("during", 1, Bytes(16384, 0xab)), &write_again).ok());
  durable.push_back("insert-again");
  std::vector<std::string> payloads = CheckChain(*store);
  std::sort(payloads.begin(), payloads.end());
  std::sort(durable.begin(), durable.end());
  EXPECT_EQ(payloads, durable);
  // And across a reopen.
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AppendAudit(link("reopened")).ok());
  EXPECT_EQ(CheckChain(*store).size(), durable.size() + 1);
}

TEST_F(SqliteStoreTest, FailedCommitFailsTheBatchAndTheStoreRecovers) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  auto before = GroupCommitStatsForTest(*store);
  // A deferred foreign-key violation passes the operation and fails COMMIT.
  Status s = ExecOnWriterForTest(*store,
                                 "PRAGMA defer_foreign_keys = ON; "
                                 "INSERT INTO records (tenant_id, collection, id, current_version, created_at, "
                                 "updated_at) VALUES ('acme', 'no-such-collection', 'x', 1, 0, 0)");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_EQ(GroupCommitStatsForTest(*store)->commits, before->commits);
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM records"), "0");
  // The next batch commits normally.
  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes("c")), nullptr).ok());
  EXPECT_TRUE(store->GetRecord("acme", "people", "r1", std::nullopt).ok());
  EXPECT_EQ(GroupCommitStatsForTest(*store)->commits, before->commits + 1);
}

// Batches whose COMMIT fails take their appends with them; the in-memory
// chain head must fall back, or the next entry would link to an entry that
// does not exist (or skip a sequence number).
TEST_F(SqliteStoreTest, FailedCommitsRestoreTheAuditHead) {
  auto store = Open(/*durable=*/false);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> durable;
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i);
        // Several tenants and principals, so that rolled-back batches take
        // first-in-block entries (and their trail index rows) with them.
        TestEvent event;
        event.payload = payload;
        event.tenant = "tenant-" + std::to_string(t % 3);
        event.principal = "principal-" + std::to_string(i % 4);
        TestLink l(event);
        Status s = i % 5 == 4 ? store->PutMeta(payload, ToBytes("v"), &l) : store->AppendAudit(l);
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          durable.push_back(payload);
        } else {
          EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
          ++unavailable;
        }
      }
    });
  }
  // Two ways a batch's transaction is lost after some of its operations
  // appended: a deferred foreign-key violation passes its operation and fails
  // COMMIT; a ROLLBACK inside an operation ends the transaction mid-batch (as
  // SQLite does itself after some I/O errors). Either way the whole batch,
  // appends included, is gone.
  int failed = 0;
  for (int i = 0; i < 80; ++i) {
    Status s = ExecOnWriterForTest(
        *store, i % 2 == 0 ? "PRAGMA defer_foreign_keys = ON; "
                             "INSERT INTO records (tenant_id, collection, id, current_version, created_at, "
                             "updated_at) VALUES ('acme', 'no-such-collection', 'x', 1, 0, 0)"
                           : "ROLLBACK");
    if (s.code() == StatusCode::kUnavailable) ++failed;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 80);
  EXPECT_GT(unavailable.load(), 0) << "no append shared a batch with a failed commit";

  std::vector<std::string> payloads = CheckChain(*store);
  std::sort(payloads.begin(), payloads.end());
  std::sort(durable.begin(), durable.end());
  EXPECT_EQ(payloads, durable);
  store.reset();
  EXPECT_EQ(EntriesMissingFromTheTrailIndex(), "0");
}

// Record creates in one batch share one savepoint; when one of them fails,
// even half-way through its rows, the group is rolled back and run again one
// by one: the failed create leaves no row and no entry, the others commit
// with their entries, and the chain stays whole.
// An entry linked with the wrong sequence number: the store refuses it.
class MislinkedLink : public TestLink {
 public:
  using TestLink::TestLink;
  AuditRow Link(std::int64_t seq, ByteView prev_hash) const override {
    AuditRow row = TestLink::Link(seq, prev_hash);
    ++row.seq;
    return row;
  }
};

TEST_F(SqliteStoreTest, AFailedCreateAmongABatchOfCreatesLeavesNoRowAndNoEntry) {
  auto store = Open(/*durable=*/false);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 60;
  std::mutex mu;
  std::vector<std::string> committed;  // audit payloads whose write returned OK
  std::vector<std::string> created;    // record ids
  std::vector<std::string> refused;    // record ids
  std::atomic<int> unexpected{0};
  // Both ways back must happen: a failed group after other operations (back
  // to its savepoint) and one that started the transaction (rolled back with
  // it). Which batches form depends on timing, so rounds run until both have.
  constexpr int kMaxRounds = 40;
  Result<GroupCommitStats> stats = InternalError("no round ran");
  for (int round = 0; round < kMaxRounds; ++round) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const std::string id = "g-" + std::to_string(round) + "-" + std::to_string(t) + "-" + std::to_string(i);
          TestLink link(id);
          Status s;
          bool should_fail = false;
          if (i % 9 == 4) {
            // An audit entry alone, between the creates.
            s = store->AppendAudit(link);
          } else if (i % 13 == 6) {
            // Not repeatable: ends the group before it.
            s = store->PutMeta(id, ToBytes("v"), &link);
          } else {
            RecordWrite w = Record(id, 1, Bytes(200, 0x5a));
            MislinkedLink mislinked(id);
            const AuditLink* audit = &link;
            if (i % 7 == 3) {
              // Fails half-way: the record's rows are in when its entry is
              // refused.
              audit = &mislinked;
              should_fail = true;
            } else if (i % 11 == 5) {
              // Fails before any row: not the tenant's data key version.
              w.key_version = 1;
              should_fail = true;
            }
            s = store->InsertRecord(w, audit);
            std::lock_guard<std::mutex> lock(mu);
            (s.ok() ? created : refused).push_back(id);
          }
          std::lock_guard<std::mutex> lock(mu);
          if (s.ok() == should_fail) ++unexpected;
          if (s.ok()) committed.push_back(id);
        }
      });
    }
    for (auto& th : threads) th.join();
    stats = GroupCommitStatsForTest(*store);
    ASSERT_TRUE(stats.ok());
    if (stats->transaction_retries > 0 && stats->group_retries > stats->transaction_retries) break;
  }
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_GT(stats->group_retries - stats->transaction_retries, 0) << "no failed group after other operations";
  EXPECT_GT(stats->transaction_retries, 0) << "no failed group at the start of a transaction";

  for (const std::string& id : refused) {
    EXPECT_EQ(store->GetRecord("acme", "people", id, std::nullopt).status().code(), StatusCode::kNotFound) << id;
  }
  for (const std::string& id : created) {
    EXPECT_TRUE(store->GetRecord("acme", "people", id, std::nullopt).ok()) << id;
  }
  // No row of a refused create is left in any of the record tables.
  const std::string n = std::to_string(created.size());
  EXPECT_EQ(QueryText("SELECT count(*) FROM records"), n);
  EXPECT_EQ(QueryText("SELECT count(*) FROM record_versions"), n);
  EXPECT_EQ(QueryText("SELECT count(*) FROM record_index"), n);

  std::vector<std::string> payloads = CheckChain(*store);
  std::sort(payloads.begin(), payloads.end());
  std::sort(committed.begin(), committed.end());
  EXPECT_EQ(payloads, committed);
}

// A batch of creates reads the tenant's data key version once (it changes no
// tenant); a rotation among them must be seen by the creates after it. In the
// order the audit log records, every committed create carries the version
// current at its place.
TEST_F(SqliteStoreTest, CreatesSeeADataKeyRotationCommittedBeforeThem) {
  auto store = Open(/*durable=*/false);
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  constexpr std::int64_t kFirstVersion = 2;  // Record()'s and the new tenant's
  constexpr int kRotations = 40;
  std::atomic<std::int64_t> believed{kFirstVersion};
  std::atomic<bool> rotating{true};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; rotating.load() || i < 20; ++i) {
        const std::string id = "k-" + std::to_string(t) + "-" + std::to_string(i);
        RecordWrite w = Record(id, 1, Bytes(64, 0x5a));
        w.key_version = believed.load();
        TestLink link("c " + std::to_string(w.key_version));
        Status s = store->InsertRecord(w, &link);
        if (!s.ok()) {
          ASSERT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
          ++refused;
        }
      }
    });
  }
  // At least kRotations, and on until a create has raced one (bounded).
  std::int64_t last = kFirstVersion;
  while (last < kFirstVersion + kRotations || (refused.load() == 0 && last < kFirstVersion + 10 * kRotations)) {
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    TestLink link("r " + std::to_string(last + 1));
    const Status rotated = store->SetTenantDataKeyVersion("acme", last + 1, &link);
    EXPECT_TRUE(rotated.ok()) << rotated.ToString();
    if (!rotated.ok()) break;  // not ASSERT: the creating threads must be stopped and joined
    believed.store(++last);
  }
  rotating.store(false);
  for (auto& th : threads) th.join();
  EXPECT_GT(refused.load(), 0) << "no create raced a rotation";

  std::int64_t current = kFirstVersion;
  int creates = 0;
  for (const std::string& entry : CheckChain(*store)) {
    const std::int64_t version = std::stoll(entry.substr(2));
    if (entry[0] == 'r') {
      current = version;
    } else {
      ++creates;
      EXPECT_EQ(version, current) << "a create under version " << version << " committed after rotation to " << current;
    }
  }
  EXPECT_GT(creates, 0);
  EXPECT_EQ(current, last);
}

TEST_F(SqliteStoreTest, AuditChainContinuesAfterReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(store->AppendAudit(TestLink(p)).ok());
  }
  EXPECT_EQ(QueryText("SELECT next_seq FROM audit_head WHERE id = 1"), "3");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (const char* p : {"d", "e"}) ASSERT_TRUE(store->AppendAudit(TestLink(p)).ok());
  EXPECT_EQ(CheckChain(*store), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

// The head row and the log are written together; if the file was altered so
// that they disagree, appending neither collides with existing entries for
// ever nor hides a removed tail.
TEST_F(SqliteStoreTest, AuditHeadIsReconciledWithTheLogAtOpen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(store->AppendAudit(TestLink(p)).ok());
  }
  // A head behind the log: the chain continues after the last entry.
  ExecRaw("UPDATE audit_head SET next_seq = 1");
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->AppendAudit(TestLink("d")).ok());
    EXPECT_EQ(CheckChain(*store), (std::vector<std::string>{"a", "b", "c", "d"}));
  }
  EXPECT_EQ(QueryText("SELECT next_seq FROM audit_head WHERE id = 1"), "4");
  // A missing head row is recreated from the log.
  ExecRaw("DELETE FROM audit_head");
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->AppendAudit(TestLink("e")).ok());
    EXPECT_EQ(CheckChain(*store), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  }
  // Entries removed from the tail: the head keeps its place, so the hole
  // stays visible (a verifier reports the missing entries).
  ExecRaw("DELETE FROM audit_log WHERE seq >= 3");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AppendAudit(TestLink("f")).ok());
  EXPECT_EQ(*store->AuditSize(), 6);
  EXPECT_EQ(store->ReadAudit(5, 1)->at(0).seq, 5);
  EXPECT_EQ(store->AuditLeafHashes(0, 6).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(store->AuditLeafHashes(0, 3)->size(), 3u);
}

// A last entry moved to the end of the sequence range (an altered file): the
// store opens — `kura audit verify` must still read the log and name the
// entry — but never appends after it, where the next number would overflow.
TEST_F(SqliteStoreTest, AuditHeadAtTheEndOfTheRangeFailsAppendsClosed) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    MakeTenant(*store);
    for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(store->AppendAudit(TestLink(p)).ok());
  }
  ExecRaw("UPDATE audit_log SET seq = 9223372036854775807 WHERE seq = 2");
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    Status s = store->AppendAudit(TestLink("d"));
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_NE(s.message().find("out of range"), std::string::npos) << s.ToString();
    // A write goes only with its entry.
    TestLink write_entry("w");
    EXPECT_EQ(store->InsertRecord(Record("r1", 1, ToBytes("c1")), &write_entry).code(), StatusCode::kDataLoss);
    EXPECT_EQ(store->GetRecord("acme", "people", "r1", std::nullopt).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(store->ReadAudit(0, 10)->size(), 2u);  // [0, 10): the moved entry is not there
  }
  EXPECT_EQ(QueryText("SELECT count(*) || ' ' || max(seq) FROM audit_log"), "3 9223372036854775807");
  EXPECT_EQ(QueryText("SELECT next_seq FROM audit_head WHERE id = 1"), "3");  // left as found
  // The head row itself altered past the range: the same.
  ExecRaw("UPDATE audit_log SET seq = 2 WHERE seq = 9223372036854775807");
  ExecRaw("UPDATE audit_head SET next_seq = 9223372036854775807");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->AppendAudit(TestLink("d")).code(), StatusCode::kDataLoss);
  EXPECT_EQ(QueryText("SELECT count(*) FROM audit_log"), "3");
}

TEST_F(SqliteStoreTest, AuditTablesAndIndexes) {
  { ASSERT_NE(Open(), nullptr); }
  EXPECT_EQ(QueryText("SELECT name FROM schema_migrations WHERE version = 2"), "audit_log");
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM audit_head"), "1");
  // The trail index is by block (migration 10): no per-entry index to update.
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log'"), "0");
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('audit_tenant_blocks', "
                      "'audit_principal_blocks')"),
            "2");
  // A tenant's or a principal's trail, either way round, walks that key's
  // blocks and, in each, a range of the log — never the whole log, never a
  // sort.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto plan = [&](const AuditQuery& q) {
    sqlite3_stmt* st = nullptr;
    std::string sql = std::string("EXPLAIN QUERY PLAN ") + FindAuditSql(Dialect::kSqlite, AuditFilterMask(q));
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::string details;
    while (sqlite3_step(st) == SQLITE_ROW) {
      details += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      details += "; ";
    }
    sqlite3_finalize(st);
    return details;
  };
  for (bool newest : {false, true}) {
    AuditQuery q;
    q.newest = newest;
    q.tenant_id = "a";
    q.action = "record.read";
    std::string details = plan(q);
    EXPECT_NE(details.find("SEARCH b USING PRIMARY KEY (tenant_id=? AND block>?)"), std::string::npos) << details;
    EXPECT_NE(details.find("SEARCH a USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), std::string::npos) << details;
    EXPECT_EQ(details.find("TEMP B-TREE"), std::string::npos) << details;
    q.tenant_id.reset();
    q.principal = "apikey:k";
    details = plan(q);
    EXPECT_NE(details.find("SEARCH b USING PRIMARY KEY (principal=? AND block>?)"), std::string::npos) << details;
    EXPECT_NE(details.find("SEARCH a USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), std::string::npos) << details;
    EXPECT_EQ(details.find("TEMP B-TREE"), std::string::npos) << details;
  }
  sqlite3_close(db);
}

// Every entry has its trail index rows, whichever batch of its block it
// came in and across a reopen, and each key one row per block
// (FailedCommitsRestoreTheAuditHead checks the same after rolled-back
// batches).
TEST_F(SqliteStoreTest, TrailIndexRowsFollowTheEntries) {
  std::vector<std::unique_ptr<TestLink>> links;
  auto append = [&](Store& store, int i) {
    TestEvent e;
    e.payload = std::to_string(i);
    e.tenant = i % 50 == 7 ? "rare" : "busy";
    e.principal = "p" + std::to_string(i % 3);
    links.push_back(std::make_unique<TestLink>(e));
    ASSERT_TRUE(store.AppendAudit(*links.back()).ok());
  };
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 100; ++i) append(*store, i);
  }
  {
    auto store = Open();  // the writer's memory of which rows exist is gone
    ASSERT_NE(store, nullptr);
    for (int i = 100; i < 200; ++i) append(*store, i);
  }
  EXPECT_EQ(EntriesMissingFromTheTrailIndex(), "0");
  // One row per key and block: blocks 0–3 (seq 0–199); "rare" at 7, 57, 107, 157.
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM audit_tenant_blocks WHERE tenant_id = 'busy'"), "4");
  EXPECT_EQ(QueryText("SELECT group_concat(block) FROM audit_tenant_blocks WHERE tenant_id = 'rare'"), "0,1,2");
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM audit_principal_blocks"), "12");
}

TEST_F(SqliteStoreTest, MigrationsAppliedOnce) {
  for (int i = 0; i < 3; ++i) {
    auto store = Open();
    ASSERT_NE(store, nullptr);
  }
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM schema_migrations"), std::to_string(AllMigrations().size()));
  EXPECT_EQ(QueryText("SELECT MAX(version) FROM schema_migrations"), std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(QueryText("SELECT name FROM schema_migrations WHERE version = 1"), "initial");
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  { ASSERT_NE(Open(), nullptr); }
  ExecRaw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
          std::to_string(LatestSchemaVersion() + 1) + ", 'from_the_future', 0)");
  SqliteOptions options;
  options.path = path_;
  auto store = OpenSqliteStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().message();
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// `kura audit verify` of a data directory, perhaps beside its server: reads
// work, writes are refused, and the file is left as it was — no migration, no
// checkpoint into it at close.
TEST_F(SqliteStoreTest, ReadOnlyOpenReadsAndChangesNothing) {
  SqliteOptions options;
  options.path = path_;
  options.read_only = true;
  {
    auto missing = OpenSqliteStore(options);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
    EXPECT_FALSE(fs::exists(dir_ / "data")) << "a read-only open created the directory";
  }
  auto writer = Open();
  ASSERT_NE(writer, nullptr);
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(writer->AppendAudit(TestLink(p)).ok());
  {
    auto reader = OpenSqliteStore(options);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ(CheckChain(**reader), (std::vector<std::string>{"a", "b", "c"}));
    Status append = (*reader)->AppendAudit(TestLink("d"));
    EXPECT_EQ(append.code(), StatusCode::kFailedPrecondition) << append.ToString();
    EXPECT_EQ((*reader)->PutMeta("k", ToBytes("v"), nullptr).code(), StatusCode::kFailedPrecondition);
    // The server's appends go on beside it and are seen.
    ASSERT_TRUE(writer->AppendAudit(TestLink("e")).ok());
    EXPECT_EQ(CheckChain(**reader), (std::vector<std::string>{"a", "b", "c", "e"}));
  }
  writer.reset();

  // An older schema is read as it is, not migrated.
  ExecRaw("DELETE FROM schema_migrations WHERE version = " + std::to_string(LatestSchemaVersion()));
  const std::string before = FileBytes(path_);
  {
    auto reader = OpenSqliteStore(options);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->ReadAudit(0, 10)->size(), 4u);
  }
  EXPECT_TRUE(FileBytes(path_) == before) << "a read-only open changed the file";
  EXPECT_EQ(QueryText("SELECT MAX(version) FROM schema_migrations"), std::to_string(LatestSchemaVersion() - 1));

  ExecRaw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
          std::to_string(LatestSchemaVersion() + 1) + ", 'from_the_future', 0)");
  auto newer = OpenSqliteStore(options);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("newer"), std::string::npos) << newer.status().message();

  options.exclusive = true;
  EXPECT_EQ(OpenSqliteStore(options).status().code(), StatusCode::kInvalidArgument);
}

// An immutable connection (a read-only store on read-only media) finds its
// file whatever the path holds that a URI would read otherwise, and adds
// nothing beside it.
TEST_F(SqliteStoreTest, ImmutableConnectionReadsTheFileAloneAtAnyPath) {
  path_ = (dir_ / "odd ?name#with%25" / "kura.db").string();
  { ASSERT_NE(Open(), nullptr); }
  ASSERT_FALSE(fs::exists(path_ + "-wal"));
  sqlite::ConnectionOptions options;
  options.path = path_;
  options.immutable = true;
  EXPECT_EQ(sqlite::Connection::Open(options).status().code(), StatusCode::kInvalidArgument);
  options.file_read_only = true;
  auto conn = sqlite::Connection::Open(options);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto version = (*conn)->QueryInt("SELECT MAX(version) FROM schema_migrations", "read");
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, LatestSchemaVersion());
  conn->reset();
  EXPECT_FALSE(fs::exists(path_ + "-wal"));
  EXPECT_FALSE(fs::exists(path_ + "-shm"));
}

TEST_F(SqliteStoreTest, NotADatabaseIsDataLoss) {
  fs::create_directories(dir_ / "data");
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(8192, 'x');
  }
  SqliteOptions options;
  options.path = path_;
  auto store = OpenSqliteStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status().ToString();
  EXPECT_NE(store.status().message().find("kura.db"), std::string::npos);
}

TEST_F(SqliteStoreTest, MarksFileAndRefusesForeignSqliteFiles) {
  { ASSERT_NE(Open(), nullptr); }
  EXPECT_EQ(QueryText("PRAGMA application_id"), std::to_string(0x6B757261));
  ExecRaw("PRAGMA application_id = 42");
  SqliteOptions options;
  options.path = path_;
  auto store = OpenSqliteStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SqliteStoreTest, DeletedCiphertextLeavesNoTraceInTheFile) {
  const std::string marker = "ERASE-ME-0123456789-ERASE-ME";
  auto file_contains = [&](const std::string& needle) {
    std::ifstream in(path_, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return data.find(needle) != std::string::npos;
  };
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    MakeTenant(*store);
    ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes(marker + "-v1")), nullptr).ok());
    RecordWrite w = Record("r1", 2, ToBytes("second"));
    w.keep_versions = 1;  // prunes version 1
    ASSERT_TRUE(store->UpdateRecord(w, 1, nullptr).ok());
    ASSERT_TRUE(store->InsertRecord(Record("r2", 1, ToBytes(marker + "-r2")), nullptr).ok());
    ASSERT_TRUE(store->DeleteRecord("acme", "people", "r2", nullptr).ok());
  }
  // Closing checkpoints the WAL into the file.
  EXPECT_FALSE(fs::exists(path_ + "-wal"));
  EXPECT_FALSE(file_contains(marker));
  EXPECT_TRUE(file_contains("second"));
}

TEST_F(SqliteStoreTest, RejectsBadOptions) {
  SqliteOptions options;
  EXPECT_EQ(OpenSqliteStore(options).status().code(), StatusCode::kInvalidArgument);
  options.path = path_;
  options.max_batch = 0;
  EXPECT_EQ(OpenSqliteStore(options).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, StoresBytesVerbatimAndEmptySubjectAsNull) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes("MARKER-CIPHERTEXT")), nullptr).ok());
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM record_versions WHERE ciphertext = CAST('MARKER-CIPHERTEXT' AS BLOB)"),
            "1");
  EXPECT_EQ(QueryText("SELECT COUNT(*) FROM records WHERE subject_hmac IS NULL"), "1");
  EXPECT_EQ(QueryText("SELECT typeof(hmac) FROM record_index"), "blob");
}

// --- The record cache (record_cache.h) and the database lock

TEST_F(SqliteStoreTest, RecordCacheServesRepeatedReadsAndFollowsEveryChange) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  auto current = [&](const std::string& id) { return store->GetRecord("acme", "people", id, std::nullopt); };
  auto hits = [&] { return RecordCacheStatsForTest(*store)->hits; };

  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes("c1")), nullptr).ok());
  ASSERT_EQ(current("r1")->ciphertext, ToBytes("c1"));  // read from the database, kept
  const auto before = hits();
  ASSERT_EQ(current("r1")->ciphertext, ToBytes("c1"));
  EXPECT_EQ(hits(), before + 1) << "the second read is served from the cache";

  // Update: the next read sees the new version, and then serves it cached.
  ASSERT_TRUE(store->UpdateRecord(Record("r1", 2, ToBytes("c2")), 1, nullptr).ok());
  auto r = current("r1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(r->current_version, 2);
  EXPECT_EQ(r->ciphertext, ToBytes("c2"));
  EXPECT_EQ(current("r1")->ciphertext, ToBytes("c2"));
  // A read of an older version by number is not the current one.
  EXPECT_EQ(store->GetRecord("acme", "people", "r1", 1)->ciphertext, ToBytes("c1"));
  EXPECT_EQ(current("r1")->version, 2);

  // A conflicting update changes nothing, and the cached version stays right.
  EXPECT_EQ(store->UpdateRecord(Record("r1", 2, ToBytes("stale")), 1, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(current("r1")->ciphertext, ToBytes("c2"));

  // Delete, then a new record under the same id.
  ASSERT_TRUE(store->DeleteRecord("acme", "people", "r1", nullptr).ok());
  EXPECT_EQ(current("r1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(current("r1").status().code(), StatusCode::kNotFound) << "a missing record is never cached";
  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes("again")), nullptr).ok());
  EXPECT_EQ(current("r1")->ciphertext, ToBytes("again"));

  // Retention.
  ASSERT_TRUE(store->InsertRecord(Record("r2", 1, ToBytes("old")), nullptr).ok());
  ASSERT_EQ(current("r2")->ciphertext, ToBytes("old"));
  ASSERT_TRUE(store->ExpireRecord("acme", "people", "r2", 200, nullptr).ok());
  EXPECT_EQ(current("r2").status().code(), StatusCode::kNotFound);

  // Re-encryption under a new data key version.
  ASSERT_EQ(current("r1")->key_version, 2);
  ASSERT_TRUE(store->SetTenantDataKeyVersion("acme", 3, nullptr).ok());
  KeyRotationRow rotation;
  rotation.tenant_id = "acme";
  rotation.to_version = 3;
  rotation.total = 1;
  ASSERT_TRUE(store->PutKeyRotation(rotation, nullptr).ok());
  RecordVersionKey key{"people", "r1", 1};
  auto rewritten = store->RewriteRecordCiphertexts("acme", 3, {CiphertextRewrite{key, 2, ToBytes("resealed")}}, key);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
  ASSERT_EQ(*rewritten, 1);
  r = current("r1");
  EXPECT_EQ(r->ciphertext, ToBytes("resealed"));
  EXPECT_EQ(r->key_version, 3);

  // Any statement the writer runs for a test may change any record.
  ASSERT_TRUE(ExecOnWriterForTest(*store, "UPDATE record_versions SET ciphertext = x'0102'").ok());
  EXPECT_EQ(current("r1")->ciphertext, (Bytes{1, 2}));

  // The tenant goes with every record.
  ASSERT_TRUE(store->DeleteTenant("acme", nullptr).ok());
  EXPECT_EQ(current("r1").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, RecordCacheOffReadsTheDatabaseEveryTime) {
  SqliteOptions options;
  options.path = path_;
  options.record_cache_bytes = 0;
  auto store = OpenSqliteStore(options);
  ASSERT_TRUE(store.ok());
  MakeTenant(**store);
  ASSERT_TRUE((*store)->InsertRecord(Record("r1", 1, ToBytes("c1")), nullptr).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*store)->GetRecord("acme", "people", "r1", std::nullopt)->version, 1);
  auto stats = RecordCacheStatsForTest(**store);
  EXPECT_EQ(stats->hits, 0);
  EXPECT_EQ(stats->entries, 0);
}

TEST_F(SqliteStoreTest, RecordCacheNeverServesAVersionOlderThanAnAcknowledgedUpdate) {
  // Readers race a writer that updates one record over and over. Whatever a
  // reader gets must be at least the last version whose update returned
  // before the read began, and its ciphertext must be that version's.
  auto store = Open();
  ASSERT_NE(store, nullptr);
  MakeTenant(*store);
  ASSERT_TRUE(store->InsertRecord(Record("r1", 1, ToBytes("v1")), nullptr).ok());
  constexpr int kVersions = 150;
  std::atomic<std::int64_t> acknowledged{1};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        const std::int64_t floor = acknowledged.load();
        auto r = store->GetRecord("acme", "people", "r1", std::nullopt);
        if (!r.ok() || r->version < floor || r->ciphertext != ToBytes("v" + std::to_string(r->version))) {
          failures.fetch_add(1);
        }
        reads.fetch_add(1);
      }
    });
  }
  for (std::int64_t v = 2; v <= kVersions; ++v) {
    RecordWrite w = Record("r1", v, ToBytes("v" + std::to_string(v)));
    ASSERT_TRUE(store->UpdateRecord(w, v - 1, nullptr).ok());
    acknowledged.store(v);
  }
  done.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), kVersions);
  EXPECT_EQ(store->GetRecord("acme", "people", "r1", std::nullopt)->version, kVersions);
  EXPECT_GT(RecordCacheStatsForTest(*store)->hits, 0) << "the race must have involved the cache";
}

TEST_F(SqliteStoreTest, ExclusiveOpenRefusesASecondWriterUntilTheFirstCloses) {
  SqliteOptions options;
  options.path = path_;
  options.exclusive = true;
  auto first = OpenSqliteStore(options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(Mode(path_ + ".lock"), 0600u);

  auto second = OpenSqliteStore(options);
  ASSERT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another kura process"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find(path_ + ".lock"), std::string::npos) << second.status().message();

  // A reader (kura audit verify) does not take the lock and opens beside it.
  SqliteOptions reader;
  reader.path = path_;
  auto beside = OpenSqliteStore(reader);
  EXPECT_TRUE(beside.ok()) << beside.status().ToString();

  first->reset();
  auto third = OpenSqliteStore(options);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

}  // namespace
}  // namespace kura::store
