// The WAL-gathering VFS shim (sqlite_wal_vfs.h) against real SQLite files:
// what one connection commits through it, others read at once and every
// reopen finds; a commit costs a write or two instead of two per page; a
// gathered write that fails fails its commit and loses nothing committed.
#include "store/sqlite_wal_vfs.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "store/sqlite_internal.h"

namespace kura::store::sqlite {
namespace {

class WalVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("kura_wal_vfs_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "t.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A connection in WAL mode with synchronous = FULL; `vfs` nullptr = default.
  sqlite3* OpenDb(const char* vfs) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    Exec(db, "PRAGMA journal_mode = WAL");
    Exec(db, "PRAGMA synchronous = FULL");
    // Checkpoints only when a test asks: the WAL then only grows.
    Exec(db, "PRAGMA wal_autocheckpoint = 0");
    return db;
  }
  static int Exec(sqlite3* db, const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    return rc;
  }
  static std::string Text(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  // write(2)-family calls made by this process so far.
  static long long WriteCalls() {
    std::ifstream io("/proc/self/io");
    std::string key;
    long long value = 0;
    while (io >> key >> value) {
      if (key == "syscw:") return value;
    }
    ADD_FAILURE() << "no syscw in /proc/self/io";
    return 0;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(WalVfsTest, RegistersOnceUnderOneName) {
  const char* name = WalBatchingVfsName();
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(WalBatchingVfsName(), name);
  EXPECT_NE(sqlite3_vfs_find(name), nullptr);
  // Not the default: connections that do not ask keep SQLite's own VFS.
  EXPECT_NE(sqlite3_vfs_find(nullptr), sqlite3_vfs_find(name));
}

TEST_F(WalVfsTest, CommitsAreReadByOtherConnectionsAtOnceAndKeptAcrossReopen) {
  sqlite3* writer = OpenDb(WalBatchingVfsName());
  // A tiny page cache makes SQLite spill pages to the WAL in the middle of
  // a transaction, read them back and overwrite them before the commit.
  ASSERT_EQ(Exec(writer, "PRAGMA cache_size = 8"), SQLITE_OK);
  ASSERT_EQ(Exec(writer, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)"), SQLITE_OK);
  sqlite3* reader = OpenDb(nullptr);

  long long rows = 0;
  long long bytes = 0;
  auto commit = [&](int n, int size) {
    ASSERT_EQ(Exec(writer, "BEGIN"), SQLITE_OK);
    ASSERT_EQ(Exec(writer, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < " +
                               std::to_string(n) + ") INSERT INTO t (v) SELECT randomblob(" + std::to_string(size) +
                               ") FROM s"),
              SQLITE_OK);
    // Rewrite half of what this transaction inserted: pages written twice.
    ASSERT_EQ(Exec(writer, "UPDATE t SET v = randomblob(" + std::to_string(size) + ") WHERE k > " +
                               std::to_string(rows) + " AND k % 2 = 0"),
              SQLITE_OK);
    ASSERT_EQ(Exec(writer, "COMMIT"), SQLITE_OK);
    rows += n;
    bytes += static_cast<long long>(n) * size;
    // Another connection, on SQLite's own VFS, sees the commit at once.
    EXPECT_EQ(Text(reader, "SELECT count(*) || ' ' || sum(length(v)) FROM t"),
              std::to_string(rows) + " " + std::to_string(bytes));
  };
  for (int i = 0; i < 10; ++i) commit(50 + i * 13, 700);
  commit(400, 3000);    // ~1.2 MB: gathered, then written in pieces
  commit(1200, 3000);   // ~3.6 MB: larger than what is gathered at once
  // The WAL starts over from its beginning (header rewritten at offset 0).
  ASSERT_EQ(sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr), SQLITE_OK);
  for (int i = 0; i < 5; ++i) commit(32, 1000);
  EXPECT_EQ(Text(reader, "PRAGMA integrity_check"), "ok");

  // Without a checkpoint at close, the WAL alone carries the last commits.
  ASSERT_EQ(Exec(writer, "PRAGMA wal_checkpoint(PASSIVE)"), SQLITE_OK);
  for (int i = 0; i < 3; ++i) commit(64, 900);
  sqlite3_close(reader);
  sqlite3_close(writer);

  sqlite3* again = OpenDb(nullptr);
  EXPECT_EQ(Text(again, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(Text(again, "SELECT count(*) || ' ' || sum(length(v)) FROM t"),
            std::to_string(rows) + " " + std::to_string(bytes));
  sqlite3_close(again);
}

TEST_F(WalVfsTest, ACommitIsAFewWritesNotTwoPerPage) {
  auto writes_of_one_commit = [&](const char* vfs) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    std::filesystem::remove(path_ + "-wal", ec);
    std::filesystem::remove(path_ + "-shm", ec);
    sqlite3* db = OpenDb(vfs);
    EXPECT_EQ(Exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)"), SQLITE_OK);
    long long before = WriteCalls();
    // ~40 pages of 4 KiB in one transaction.
    EXPECT_EQ(Exec(db, "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 40) "
                       "INSERT INTO t (v) SELECT randomblob(3500) FROM s"),
              SQLITE_OK);
    long long calls = WriteCalls() - before;
    EXPECT_EQ(Text(db, "SELECT count(*) FROM t"), "40");
    sqlite3_close(db);
    return calls;
  };
  long long plain = writes_of_one_commit(nullptr);
  long long gathered = writes_of_one_commit(WalBatchingVfsName());
  EXPECT_GE(plain, 80) << "SQLite's own VFS writes a frame header and a page per page";
  EXPECT_LE(gathered, 4) << "the shim writes the commit in pieces of up to 124 KiB";
}

TEST_F(WalVfsTest, AGatheredWriteThatFailsFailsItsCommitAndLosesNothing) {
  sqlite3* writer = OpenDb(WalBatchingVfsName());
  ASSERT_EQ(Exec(writer, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)"), SQLITE_OK);
  ASSERT_EQ(Exec(writer, "INSERT INTO t (v) VALUES (randomblob(2000)), (randomblob(2000))"), SQLITE_OK);
  sqlite3* reader = OpenDb(nullptr);
  ASSERT_EQ(Text(reader, "SELECT count(*) FROM t"), "2");

  // Files may not grow past the WAL's present size: the commit's gathered
  // write (at xSync) fails as a full disk would.
  const auto wal_size = static_cast<rlim_t>(std::filesystem::file_size(path_ + "-wal"));
  struct rlimit old_limit {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old_limit;
  limit.rlim_cur = wal_size;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  int rc = Exec(writer, "INSERT INTO t (v) SELECT randomblob(3000) FROM t");
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  signal(SIGXFSZ, old_handler);
  EXPECT_NE(rc, SQLITE_OK);
  EXPECT_TRUE((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL) << sqlite3_errstr(rc);

  // Nothing of it is visible or kept; the next commit works.
  EXPECT_EQ(Text(reader, "SELECT count(*) FROM t"), "2");
  EXPECT_EQ(Exec(writer, "INSERT INTO t (v) VALUES (randomblob(100))"), SQLITE_OK);
  EXPECT_EQ(Text(reader, "SELECT count(*) FROM t"), "3");
  sqlite3_close(reader);
  sqlite3_close(writer);
  sqlite3* again = OpenDb(nullptr);
  EXPECT_EQ(Text(again, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(Text(again, "SELECT count(*) FROM t"), "3");
  sqlite3_close(again);
}

TEST_F(WalVfsTest, ConnectionRefusesItWithoutASyncPerCommit) {
  ConnectionOptions options;
  options.path = path_;
  options.create = true;
  options.durable = false;
  options.gather_wal_writes = true;
  auto conn = Connection::Open(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.status().message().find("synchronous = FULL"), std::string::npos) << conn.status().ToString();
  options.durable = true;
  EXPECT_TRUE(Connection::Open(options).ok());
}

}  // namespace
}  // namespace kura::store::sqlite
