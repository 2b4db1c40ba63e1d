// Module-internal SQLite helpers: one connection with its prepared-statement
// cache, a statement cursor, and the single SQLite → Status mapping.
//
// Only the store module includes this header (and its tests); sqlite3.h stays
// inside the module.
//
// Thread safety: a Connection is used by one thread at a time (the store opens
// SQLite in multi-thread mode, SQLITE_OPEN_NOMUTEX); the store's writer thread
// owns the write connection and readers lease connections from a pool.
#ifndef KURA_STORE_SQLITE_INTERNAL_H_
#define KURA_STORE_SQLITE_INTERNAL_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/bytes.h"
#include "core/status.h"
#include "store/migrations.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kura::store::sqlite {

// The one place SQLite result codes become Status (STYLE.md §4). `what` names
// the object or operation ("insert record", "tenant"), `path` the database
// file. Messages carry the object and SQLite's generic error string, never a
// bound value, so no ciphertext, hash or id can leak through them.
//   SQLITE_FULL, IOERR, READONLY, CANTOPEN, BUSY, LOCKED, NOMEM → Unavailable
//   SQLITE_CORRUPT, NOTADB                                       → DataLoss
//   PRIMARY KEY / UNIQUE constraint                              → AlreadyExists
//   FOREIGN KEY constraint                                       → NotFound
//   NOT NULL / CHECK constraint, TOOBIG, RANGE                   → InvalidArgument
//   anything else                                                → Internal
// `detail` (SQLite's connection message, e.g. "no such column: x") is added to
// Internal errors only: those are bugs, and SQLite never puts bound values in it.
Status ErrorStatus(int rc, std::string_view what, std::string_view path,
                   std::string_view detail = {});

// Stored in the SQLite header (PRAGMA application_id): 'kura' in ASCII. Marks
// the file as a kura database so `file(1)` and kura itself can tell it apart
// from other SQLite files; a file with another id is refused at open.
inline constexpr std::int64_t kApplicationId = 0x6B757261;

class Connection;

// A prepared statement borrowed from a Connection's cache. Binds are 1-based.
// Text and blob binds are SQLITE_STATIC: the bound memory must outlive the
// Statement. The destructor resets the statement and clears its bindings, so
// no read snapshot stays open after the cursor goes out of scope.
class Statement {
 public:
  Statement(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept;
  ~Statement();

  void Bind(int index, std::int64_t value);
  void Bind(int index, std::string_view value);
  void Bind(int index, ByteView value);
  void BindNull(int index);
  // Makes the statement ready to bind and run again (same SQL, new values).
  void Reset();

  // Steps once. true: a row is available; false: done. Errors map through
  // ErrorStatus with `what`.
  Result<bool> Step(std::string_view what);
  // Steps to completion for statements that return no rows.
  Status Run(std::string_view what);

  std::int64_t ColumnInt(int col) const;
  std::string ColumnText(int col) const;
  Bytes ColumnBytes(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  Connection* conn_;
  sqlite3_stmt* stmt_;
};

struct ConnectionOptions {
  std::string path;
  bool create = false;      // SQLITE_OPEN_CREATE
  bool read_only = false;   // query_only: a reader may never write
  // SQLITE_OPEN_READONLY: not even SQLite may write the file (no recovery
  // into it, no checkpoint at close); for a store opened read-only.
  bool file_read_only = false;
  // With file_read_only: SQLite's `immutable` (no locks, no `-wal`/`-shm`):
  // only for a file nothing can be writing, such as one on read-only media.
  bool immutable = false;
  bool durable = true;      // synchronous=FULL (else NORMAL)
  int busy_timeout_ms = 10000;
  int cache_kib = 0;        // page cache size; 0 = SQLite's default (2 MiB)
  // One write(2) per commit for the WAL (sqlite_wal_vfs.h). Only with
  // durable = true: the shim relies on the sync of every commit.
  bool gather_wal_writes = false;
};

// One sqlite3 handle plus its statement cache. Owns the handle.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Returns a cached prepared statement for `sql`. The cache is keyed by the
  // address of `sql`, so callers pass string constants with static storage;
  // each SQL text is compiled once per connection.
  Result<Statement> Prepare(const char* sql);
  // Runs SQL text without parameters (DDL, PRAGMA, BEGIN/COMMIT). Not cached.
  Status Exec(std::string_view sql, std::string_view what);
  // Runs a query without parameters that yields one integer.
  Result<std::int64_t> QueryInt(std::string_view sql, std::string_view what);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  std::int64_t Changes() const;
  // true when no transaction is open (SQLite may roll one back on its own
  // after an I/O error, a full disk or an out-of-memory condition).
  bool InAutocommit() const;

  Status Error(int rc, std::string_view what) const;
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

 private:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// Creates missing directories of `dir` with mode 0700 (existing ones are left
// as the operator set them). Unavailable when one cannot be made.
Status MakeDirectories(const std::filesystem::path& dir);
// Creates a database file with mode 0600 (and sets 0600 on leftover -wal and
// -shm files) before SQLite opens it, which would create it 0644 minus umask
// and copy that mode to its side files. Unavailable on failure.
Status PrepareDatabaseFile(const std::string& path);

// The database's lock file, `<path>.lock`, held with an exclusive flock while
// a store that writes is open: SQLite itself lets any number of processes
// write one file, but kura's writer keeps state beside the database (the
// audit chain's head, the record cache) that another writer would make
// stale. The kernel releases the lock when the process dies, however it dies.
class DatabaseLock {
 public:
  // FailedPrecondition when another open store (in any process) holds it;
  // Unavailable when the file cannot be created or locked.
  static Result<DatabaseLock> Acquire(const std::string& db_path);
  DatabaseLock() = default;
  DatabaseLock(DatabaseLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DatabaseLock& operator=(DatabaseLock&& other) noexcept;
  DatabaseLock(const DatabaseLock&) = delete;
  DatabaseLock& operator=(const DatabaseLock&) = delete;
  ~DatabaseLock();

 private:
  explicit DatabaseLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Runs ApplyMigrations on a connection (the writer, before its thread starts).
// SQLite's exclusive schema lock is BEGIN IMMEDIATE.
class SqliteMigrationTarget : public MigrationTarget {
 public:
  explicit SqliteMigrationTarget(Connection& conn) : conn_(conn) {}
  Dialect dialect() const override { return Dialect::kSqlite; }
  Status Execute(const std::string& sql) override { return conn_.Exec(sql, "schema migration"); }
  Result<std::int64_t> QueryInt(const std::string& sql) override { return conn_.QueryInt(sql, "schema version"); }
  Status BeginExclusive() override { return conn_.Exec("BEGIN IMMEDIATE", "schema migration"); }
  Status Commit() override { return conn_.Exec("COMMIT", "schema migration"); }
  void Rollback() override {
    if (!conn_.InAutocommit()) conn_.Exec("ROLLBACK", "schema migration").IgnoreError();
  }

 private:
  Connection& conn_;
};

}  // namespace kura::store::sqlite

#endif  // KURA_STORE_SQLITE_INTERNAL_H_
