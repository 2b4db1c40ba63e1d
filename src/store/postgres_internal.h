// Module-internal PostgreSQL helpers: one libpq connection with its prepared
// statements, bounded waits on every round trip, parameters and results in
// binary form, and the single SQLSTATE → Status mapping.
//
// Only the store module includes this header (and its tests); libpq-fe.h
// stays inside the module.
//
// Thread safety: a Connection is used by one thread at a time (the store's
// pool checks a connection out for the length of one call).
#ifndef KURA_STORE_POSTGRES_INTERNAL_H_
#define KURA_STORE_POSTGRES_INTERNAL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "store/migrations.h"
#include "store/store.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace kura::store::pg {

// The one place PostgreSQL errors become Status (STYLE.md §4). `what` names
// the object or operation ("record", "api key"). `sqlstate` is the five-char
// code of the error ("" for a failure without one: lost connection, timeout).
//   class 08, 57P01-57P03, 53xxx, 25006, 57014, 55P03, no SQLSTATE → Unavailable
//   40001, 40P01 (serialization failure, deadlock; retried first)    → Unavailable
//   23505 unique violation                                            → AlreadyExists
//   23503 foreign key violation                                       → NotFound
//   other 23xxx, class 22 (data exception, e.g. bad UTF-8)            → InvalidArgument
//   XX001, XX002 (data corrupted, index corrupted)                    → DataLoss
//   anything else                                                     → Internal
// Messages name the object and the SQLSTATE, never a parameter: PostgreSQL's
// own message and DETAIL often quote values ("Key (id)=(…) already exists"),
// so they are added only for class 42 (syntax, undefined object: bugs whose
// text holds identifiers, not data).
Status ErrorStatus(std::string_view sqlstate, std::string_view what, std::string_view server_message = {});

// Round trips (a request sent and its answers read, a pipeline counting once)
// made by every Connection of this process since it started; for tests and
// benchmarks that count the round trips of an operation.
std::int64_t RoundTripsForTest();

// true for the SQLSTATEs after which the transaction may simply be run again.
bool IsRetryable(std::string_view sqlstate);
// true for the SQLSTATEs after which the connection must not be reused
// (connection failure, server shutting down, a standby after failover).
bool IsConnectionFatal(std::string_view sqlstate);

// Bound parameters of one statement. Text and bytes are sent in binary format
// (exact bytes, no quoting, no length limit by NUL); integers as decimal text
// so they fit any integer type the server inferred. The referenced text and
// bytes must outlive the call they are passed to.
class Params {
 public:
  Params& Add(std::int64_t value);
  Params& Add(std::string_view text);
  Params& Add(ByteView bytes);
  Params& AddNull();
  // A value in PostgreSQL's text input form, parsed by the server as the
  // parameter's type (an array literal); `text` must outlive the Params.
  Params& AddTextForm(const std::string& text);
  // NULL when empty (nullable byte columns such as subject_hmac).
  Params& AddOrNull(ByteView bytes);
  Params& AddOrNull(const std::optional<std::int64_t>& value);

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  // Decimal renderings of integer parameters; a deque-like stable store so
  // values_ can point into it while more parameters are added.
  std::vector<std::unique_ptr<char[]>> numbers_;
};

// The rows of one statement, in binary format. Owns the PGresult.
class Rows {
 public:
  explicit Rows(PGresult* result) : result_(result) {}
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  bool empty() const { return size() == 0; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  std::int64_t affected() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  Bytes GetBytes(int row, int col) const;
  // BIGINT, INTEGER or SMALLINT columns.
  std::int64_t Int(int row, int col) const;
  std::optional<std::int64_t> OptionalInt(int row, int col) const;

 private:
  PGresult* result_;
};

struct ConnectOptions {
  // libpq keyword/value pairs applied before the DSN (defaults the DSN may
  // override) and after it (settings it may not).
  std::vector<std::pair<std::string, std::string>> defaults;
  std::string dsn;
  std::vector<std::pair<std::string, std::string>> overrides;
  // Client-side bound on one round trip; the server's statement_timeout is
  // set a little lower, so normally the server cancels first and the
  // connection stays usable.
  std::chrono::milliseconds round_trip_timeout{6000};
  // SQL run once on each new connection (session settings).
  std::string session_setup;
};

// One statement of a pipeline (Connection::Pipeline).
struct Step {
  // A string constant with static storage, prepared on first use like
  // Exec's; with `params` null, SQL text without parameters, not prepared
  // (BEGIN).
  const char* sql = nullptr;
  const Params* params = nullptr;
  std::string_view what;
};

// One libpq connection plus its prepared statements. Owns the PGconn.
class Connection {
 public:
  // Unavailable when the server cannot be reached or refuses the login; the
  // message is libpq's (host, port, reason), which never holds the password.
  static Result<std::unique_ptr<Connection>> Open(const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a statement prepared on this connection on first use. The statement
  // is keyed by the address of `sql`, so callers pass string constants with
  // static storage; each is parsed and planned once per connection.
  Result<Rows> Exec(const char* sql, const Params& params, std::string_view what);
  // Sends every step, then a sync point, in libpq pipeline mode and reads
  // the results: one round trip for all of them. Returns one Rows per step,
  // in order. The first step that fails is the error (mapped as Exec's);
  // the server skips the steps after it. An explicit transaction begun in
  // the pipeline is then left aborted (not Idle): the caller rolls it back.
  // `failed_step` (if given) receives the index of the step that failed.
  Result<std::vector<Rows>> Pipeline(const std::vector<Step>& steps, std::size_t* failed_step = nullptr);
  // Runs SQL text without parameters (BEGIN/COMMIT, DDL). Not prepared.
  Status ExecSimple(std::string_view sql, std::string_view what);
  // Runs a query without parameters that yields one integer.
  Result<std::int64_t> QueryInt(std::string_view sql, std::string_view what);

  // Checks an idle connection before reuse: a server that terminated the
  // session (pg_terminate_backend, shutdown, failover) has already sent its
  // farewell and closed the socket. Returns false if the connection is dead.
  bool ProbeIdle();

  // The connection broke (or timed out) and must be dropped, not pooled.
  bool broken() const { return broken_; }
  // SQLSTATE of the last failed command ("" if none or not from the server).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  // The server's backend process id (pg_backend_pid()).
  int backend_pid() const;
  // true when no transaction is open on the server side.
  bool Idle() const;
  // true when the last round trip (a COMMIT, or an autocommitted statement)
  // succeeded with a WARNING of SQLSTATE 01000 or 57P01: what PostgreSQL
  // sends when a session's wait for its synchronous standby is cancelled
  // (statement timeout, cancel request, shutdown). The transaction is then
  // committed locally but perhaps not on the standby, so it is not durable
  // in the sense the deployment asked for. A warning on COMMIT has no other
  // common cause with these codes (its other warning, "no transaction in
  // progress", is 25P01), so the check is a cheap code comparison and never
  // depends on the (localised) message text.
  bool SyncReplicationCancelled() const { return sync_rep_cancelled_; }

 private:
  Connection(PGconn* conn, std::chrono::milliseconds timeout) : conn_(conn), timeout_(timeout) {}

  // Sends with `send` and collects the last result within the round-trip
  // bound. On failure maps the error and marks the connection.
  template <typename Send>
  Result<Rows> RoundTrip(Send&& send, std::string_view what);
  Status Fail(std::string_view sqlstate, std::string_view what, std::string_view server_message);
  // Waits (within `deadline`) until a result is ready and returns it; null
  // when a command's results are complete. Sets `lost` when the connection
  // failed or timed out.
  PGresult* NextResult(std::chrono::steady_clock::time_point deadline, bool& lost);
  // Flushes libpq's send buffer within `deadline`; false if that failed.
  bool Flush(std::chrono::steady_clock::time_point deadline);
  bool WaitSocket(std::chrono::steady_clock::time_point deadline, short events);
  Status Lost(std::string_view what, std::string_view why);
  // libpq notice receiver: logs warnings (by SQLSTATE) and notes the above.
  static void OnNotice(void* self, const PGresult* result);

  PGconn* conn_;
  std::chrono::milliseconds timeout_;
  std::unordered_map<const char*, std::string> prepared_;  // SQL constant → statement name
  bool broken_ = false;
  bool sync_rep_cancelled_ = false;
  std::string last_sqlstate_;
};

// The connection options of a store (data or key store) on `options`:
// sslmode=verify-full, connect_timeout and application_name as defaults the
// DSN may override, the password file's password, the statement and lock
// timeouts as session settings. InvalidArgument for a DSN that does not
// parse or an unreadable or too-open password file.
Result<ConnectOptions> MakeConnectOptions(const PostgresOptions& options);

// Runs ApplyMigrations on one connection. Every schema change, including the
// runner's CREATE TABLE IF NOT EXISTS schema_migrations, happens inside a
// transaction holding pg_advisory_xact_lock(kMigrationLockKey), so several
// kura nodes starting at once migrate one after the other: the first applies,
// the others find the work done. The lock ends with the transaction, so a
// node that dies mid-migration cannot keep it.
inline constexpr std::int64_t kMigrationLockKey = 0x6B75726100000001;  // 'kura', 1

class PostgresMigrationTarget : public MigrationTarget {
 public:
  explicit PostgresMigrationTarget(Connection& conn) : conn_(conn) {}
  Dialect dialect() const override { return Dialect::kPostgres; }
  Status Execute(const std::string& sql) override;
  Result<std::int64_t> QueryInt(const std::string& sql) override { return conn_.QueryInt(sql, "schema version"); }
  Status BeginExclusive() override;
  Status Commit() override;
  void Rollback() override;

 private:
  Connection& conn_;
  bool in_transaction_ = false;
};

}  // namespace kura::store::pg

#endif  // KURA_STORE_POSTGRES_INTERNAL_H_
