// Versioned schema migrations, shared by every Store backend.
//
// The schema is written once, here, in SQL that SQLite and PostgreSQL both
// accept. The only engine differences are two column types, written as
// placeholders in the migration text and rendered by RenderSql():
//
//   placeholder   SQLite   PostgreSQL
//   {bytes}       BLOB     BYTEA
//   {text}        TEXT     TEXT COLLATE "C"   (bytewise order in both)
//
// Everything else uses BIGINT (both engines) and standard
// constraints. A backend runs the migrations through ApplyMigrations() with a
// MigrationTarget that knows how to execute SQL and take the engine's
// exclusive schema lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction
// plus pg_advisory_xact_lock).
//
// Applied migrations are recorded in `schema_migrations` (version, name,
// applied_at). Each migration runs once, in its own transaction, together with
// its schema_migrations row. A database whose schema is newer than this binary
// knows is refused (FailedPrecondition): an older binary must not write data it
// does not understand. See docs/formats/database.md.
#ifndef KURA_STORE_MIGRATIONS_H_
#define KURA_STORE_MIGRATIONS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kura::store {

enum class Dialect { kSqlite, kPostgres };

struct Migration {
  std::int64_t version;                       // 1, 2, 3, … without gaps
  std::string_view name;                      // [a-z0-9_]+, recorded in schema_migrations
  std::span<const std::string_view> statements;  // portable SQL, `{bytes}` placeholders
};

// Every migration this binary knows, in version order.
std::span<const Migration> AllMigrations();
// The schema version this binary writes (the last migration's version).
std::int64_t LatestSchemaVersion();

// Replaces the type placeholders with the dialect's type names.
std::string RenderSql(std::string_view sql, Dialect dialect);

// What ApplyMigrations needs from a backend connection. Not thread-safe; used
// once at open, on the connection that will write.
class MigrationTarget {
 public:
  virtual ~MigrationTarget() = default;
  virtual Dialect dialect() const = 0;
  // Runs one statement without parameters.
  virtual Status Execute(const std::string& sql) = 0;
  // Runs a query without parameters that yields one integer.
  virtual Result<std::int64_t> QueryInt(const std::string& sql) = 0;
  // Opens a transaction that excludes every other schema writer.
  virtual Status BeginExclusive() = 0;
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;
};

// Brings the schema up to the last of `migrations` (default: AllMigrations()).
// Returns the schema version now in effect. FailedPrecondition when the
// database is newer than the last known migration; a failing migration is
// rolled back and its error returned.
Result<std::int64_t> ApplyMigrations(MigrationTarget& target, std::int64_t now_unix,
                                     std::span<const Migration> migrations = AllMigrations());

}  // namespace kura::store

#endif  // KURA_STORE_MIGRATIONS_H_
