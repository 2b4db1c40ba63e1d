// The PostgreSQL backend of Store.
//
// A small fixed pool of libpq connections; every call checks one out, runs one
// statement (reads) or one transaction (writes) on it and returns it. Each
// connection prepares a statement the first time it runs it. A write returns
// OK only after the server answered COMMIT, so its durability (and with a
// synchronous standby, its replication) is whatever PostgreSQL's
// synchronous_commit promises.
//
// Concurrency is PostgreSQL's: READ COMMITTED, and compare-and-set as
// `UPDATE … WHERE current_version = $n` whose affected-row count decides. A
// concurrent updater of the same row waits for the first to commit and then
// re-checks the WHERE clause against the new row, so exactly one of them
// writes each version — across any number of kura nodes on the database.
#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "store/migrations.h"
#include "store/postgres_internal.h"

namespace kura::store {
namespace {

using pg::Connection;
using pg::Params;
using pg::Rows;

// --- SQL: the statements of sqlite_store.cc with numbered parameters, nothing
// else changed (standard SQL both engines accept; no extensions). Text columns
// are COLLATE "C" in this engine's schema (migrations.cc), so `id > $n ORDER
// BY id` pages in the same bytewise order as SQLite. Constants have static
// storage: each connection's prepared-statement map is keyed by their address.

constexpr char kGetMeta[] = "SELECT value FROM meta WHERE name = $1";
constexpr char kPutMeta[] =
    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
constexpr char kInsertMeta[] = "INSERT INTO meta (name, value) VALUES ($1, $2)";

constexpr char kInsertTenant[] =
    "INSERT INTO tenants (id, name, region, created_at, wrapped_data_key, data_key_version, wrapped_index_key) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr char kGetTenant[] =
    "SELECT id, name, region, created_at, wrapped_data_key, data_key_version, wrapped_index_key "
    "FROM tenants WHERE id = $1";
constexpr char kListTenants[] =
    "SELECT id, name, region, created_at, wrapped_data_key, data_key_version, wrapped_index_key "
    "FROM tenants WHERE id > $1 ORDER BY id LIMIT $2";
// Locks the tenant row: a concurrent insert of a child row (which needs a
// key-share lock on it through the foreign key) waits until the delete is done
// and then fails with a foreign-key violation instead of leaving an orphan.
constexpr char kLockTenant[] = "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE";
// Children first, so no delete depends on ON DELETE CASCADE.
constexpr const char* kDeleteTenantRows[] = {
    "DELETE FROM record_index WHERE tenant_id = $1",
    "DELETE FROM record_versions WHERE tenant_id = $1",
    "DELETE FROM records WHERE tenant_id = $1",
    "DELETE FROM collections WHERE tenant_id = $1",
    "DELETE FROM roles WHERE tenant_id = $1",
    "DELETE FROM api_keys WHERE tenant_id = $1",
    "DELETE FROM tenants WHERE id = $1",
};

constexpr char kCollectionExists[] = "SELECT 1 FROM collections WHERE tenant_id = $1 AND name = $2";
constexpr char kUpsertCollection[] =
    "INSERT INTO collections (tenant_id, name, schema_json, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (tenant_id, name) DO UPDATE SET schema_json = excluded.schema_json, "
    "updated_at = excluded.updated_at";
constexpr char kGetCollection[] =
    "SELECT tenant_id, name, schema_json, created_at, updated_at FROM collections "
    "WHERE tenant_id = $1 AND name = $2";
constexpr char kListCollections[] =
    "SELECT tenant_id, name, schema_json, created_at, updated_at FROM collections "
    "WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3";

constexpr char kInsertRecord[] =
    "INSERT INTO records (tenant_id, collection, id, current_version, created_at, updated_at, subject_hmac) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
// The compare-and-set: only the expected current version is replaced.
constexpr char kCasRecord[] =
    "UPDATE records SET current_version = $1, updated_at = $2, subject_hmac = $3 "
    "WHERE tenant_id = $4 AND collection = $5 AND id = $6 AND current_version = $7";
constexpr char kCurrentVersion[] =
    "SELECT current_version FROM records WHERE tenant_id = $1 AND collection = $2 AND id = $3";
constexpr char kInsertVersion[] =
    "INSERT INTO record_versions (tenant_id, collection, record_id, version, ciphertext, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6)";
constexpr char kPruneVersions[] =
    "DELETE FROM record_versions WHERE tenant_id = $1 AND collection = $2 AND record_id = $3 AND version <= $4";
// A field listed twice with the same value is one entry, not a conflict.
constexpr char kInsertIndex[] =
    "INSERT INTO record_index (tenant_id, collection, field, hmac, record_id) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT DO NOTHING";
constexpr char kDeleteIndex[] =
    "DELETE FROM record_index WHERE tenant_id = $1 AND collection = $2 AND record_id = $3";
constexpr char kDeleteVersions[] =
    "DELETE FROM record_versions WHERE tenant_id = $1 AND collection = $2 AND record_id = $3";
constexpr char kDeleteRecord[] = "DELETE FROM records WHERE tenant_id = $1 AND collection = $2 AND id = $3";
constexpr char kGetCurrentRecord[] =
    "SELECT r.current_version, r.created_at, v.version, v.ciphertext, v.created_at "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = $1 AND r.collection = $2 AND r.id = $3";
constexpr char kGetRecordVersion[] =
    "SELECT r.current_version, r.created_at, v.version, v.ciphertext, v.created_at "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id "
    "WHERE r.tenant_id = $1 AND r.collection = $2 AND r.id = $3 AND v.version = $4";
constexpr char kListVersions[] =
    "SELECT version, created_at FROM record_versions WHERE tenant_id = $1 AND collection = $2 "
    "AND record_id = $3 ORDER BY version DESC";
constexpr char kListRecords[] =
    "SELECT r.id, r.current_version, r.created_at, v.ciphertext, v.created_at "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = $1 AND r.collection = $2 AND r.id > $3 ORDER BY r.id LIMIT $4";
constexpr char kFindRecords[] =
    "SELECT r.id, r.current_version, r.created_at, v.ciphertext, v.created_at "
    "FROM record_index i "
    "JOIN records r ON r.tenant_id = i.tenant_id AND r.collection = i.collection AND r.id = i.record_id "
    "JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE i.tenant_id = $1 AND i.collection = $2 AND i.field = $3 AND i.hmac = $4 AND i.record_id > $5 "
    "ORDER BY i.record_id LIMIT $6";

constexpr char kRoleExists[] = "SELECT 1 FROM roles WHERE tenant_id = $1 AND name = $2";
constexpr char kUpsertRole[] =
    "INSERT INTO roles (tenant_id, name, permissions_json, updated_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (tenant_id, name) DO UPDATE SET permissions_json = excluded.permissions_json, "
    "updated_at = excluded.updated_at";
constexpr char kGetRole[] =
    "SELECT tenant_id, name, permissions_json, updated_at FROM roles WHERE tenant_id = $1 AND name = $2";
constexpr char kListRoles[] =
    "SELECT tenant_id, name, permissions_json, updated_at FROM roles WHERE tenant_id = $1 ORDER BY name";
constexpr char kDeleteRole[] = "DELETE FROM roles WHERE tenant_id = $1 AND name = $2";

constexpr char kInsertApiKey[] =
    "INSERT INTO api_keys (id, tenant_id, name, role, key_hash, created_at, expires_at, revoked_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
constexpr char kFindApiKey[] =
    "SELECT id, tenant_id, name, role, key_hash, created_at, expires_at, revoked_at FROM api_keys "
    "WHERE key_hash = $1";
constexpr char kListApiKeys[] =
    "SELECT id, tenant_id, name, role, key_hash, created_at, expires_at, revoked_at FROM api_keys "
    "WHERE tenant_id = $1 ORDER BY id";
// The first revocation time stands; revoking again changes nothing.
constexpr char kRevokeApiKey[] =
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE tenant_id = $2 AND id = $3";

constexpr int kDefaultPageLimit = 50;
constexpr int kMaxPageLimit = 1000;
// Attempts of one transaction: serialization failures and deadlocks are
// retried with a short randomised back-off, then reported as Unavailable.
constexpr int kMaxAttempts = 4;
// The client waits this much longer than the server's statement_timeout, so
// normally the server cancels a slow statement (and the connection survives)
// before the client gives up on the connection.
constexpr std::chrono::milliseconds kClientGrace{1000};

int PageLimit(const PageRequest& page) {
  if (page.limit <= 0) return kDefaultPageLimit;
  return page.limit > kMaxPageLimit ? kMaxPageLimit : page.limit;
}

template <typename Row>
void FinishPage(Page<Row>& page, int limit, std::string Row::*key) {
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.pop_back();
    page.next = page.items.back().*key;
  }
}

TenantRow ReadTenant(const Rows& r, int i) {
  TenantRow t;
  t.id = r.Text(i, 0);
  t.name = r.Text(i, 1);
  t.region = r.Text(i, 2);
  t.created_at = r.Int(i, 3);
  t.wrapped_data_key = r.GetBytes(i, 4);
  t.data_key_version = r.Int(i, 5);
  t.wrapped_index_key = r.GetBytes(i, 6);
  return t;
}

CollectionRow ReadCollection(const Rows& r, int i) {
  CollectionRow c;
  c.tenant_id = r.Text(i, 0);
  c.name = r.Text(i, 1);
  c.schema_json = r.Text(i, 2);
  c.created_at = r.Int(i, 3);
  c.updated_at = r.Int(i, 4);
  return c;
}

RoleRow ReadRole(const Rows& r, int i) {
  RoleRow role;
  role.tenant_id = r.Text(i, 0);
  role.name = r.Text(i, 1);
  role.permissions_json = r.Text(i, 2);
  role.updated_at = r.Int(i, 3);
  return role;
}

ApiKeyRow ReadApiKey(const Rows& r, int i) {
  ApiKeyRow k;
  k.id = r.Text(i, 0);
  k.tenant_id = r.Text(i, 1);
  k.name = r.Text(i, 2);
  k.role = r.Text(i, 3);
  k.key_hash = r.GetBytes(i, 4);
  k.created_at = r.Int(i, 5);
  k.expires_at = r.OptionalInt(i, 6);
  k.revoked_at = r.OptionalInt(i, 7);
  return k;
}

// Columns: id, current_version, created_at, ciphertext, version created_at.
RecordRow ReadListedRecord(const Rows& r, int i, const std::string& tenant_id, const std::string& collection) {
  RecordRow row;
  row.tenant_id = tenant_id;
  row.collection = collection;
  row.id = r.Text(i, 0);
  row.current_version = r.Int(i, 1);
  row.version = row.current_version;
  row.created_at = r.Int(i, 2);
  row.ciphertext = r.GetBytes(i, 3);
  row.updated_at = r.Int(i, 4);
  return row;
}

// Reads the password file: one line, owned by us, no access for group or
// others (the same rule libpq applies to ~/.pgpass), so a password never
// sits in a world-readable configuration.
Result<std::string> ReadPasswordFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return InvalidArgumentError("cannot open database password file " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("database password file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return InvalidArgumentError("database password file " + path +
                                " is readable by group or others; chmod 600 it");
  }
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 4096) break;
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty() || out.size() > 4096 || out.find('\n') != std::string::npos) {
    return InvalidArgumentError("database password file " + path + " must hold exactly one line");
  }
  return out;
}

// Checks the DSN parses and warns when it turns certificate checks off.
Status CheckDsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    // libpq's message may quote the DSN, and the DSN may hold a password.
    if (err != nullptr) PQfreemem(err);
    return InvalidArgumentError("the PostgreSQL connection string (dsn) is not valid");
  }
  std::string sslmode;
  std::string host;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "sslmode") == 0) sslmode = o->val;
    if (std::strcmp(o->keyword, "host") == 0) host = o->val;
  }
  PQconninfoFree(opts);
  const bool unix_socket = !host.empty() && host.front() == '/';
  if (!sslmode.empty() && sslmode != "verify-full" && !unix_socket) {
    log::Warn("store: PostgreSQL sslmode=" + sslmode +
              " does not verify the server's certificate and name; use sslmode=verify-full");
  }
  return Status::Ok();
}

}  // namespace

class PostgresStore final : public Store {
 public:
  static Result<std::unique_ptr<PostgresStore>> Open(const PostgresOptions& options);
  ~PostgresStore() override = default;

  Result<Bytes> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, ByteView value) override;
  Status InsertMeta(const std::string& key, ByteView value) override;

  Status CreateTenant(const TenantRow& tenant) override;
  Result<TenantRow> GetTenant(const std::string& id) override;
  Result<Page<TenantRow>> ListTenants(const PageRequest& page) override;
  Status DeleteTenant(const std::string& id) override;

  Result<bool> PutCollection(const CollectionRow& collection) override;
  Result<CollectionRow> GetCollection(const std::string& tenant_id, const std::string& name) override;
  Result<Page<CollectionRow>> ListCollections(const std::string& tenant_id, const PageRequest& page) override;

  Status InsertRecord(const RecordWrite& write) override;
  Status UpdateRecord(const RecordWrite& write, std::int64_t expected_version) override;
  Status DeleteRecord(const std::string& tenant_id, const std::string& collection, const std::string& id) override;
  Result<RecordRow> GetRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                              std::optional<std::int64_t> version) override;
  Result<std::vector<VersionInfo>> ListVersions(const std::string& tenant_id, const std::string& collection,
                                                const std::string& id) override;
  Result<Page<RecordRow>> ListRecords(const std::string& tenant_id, const std::string& collection,
                                      const PageRequest& page) override;
  Result<Page<RecordRow>> FindRecords(const std::string& tenant_id, const std::string& collection,
                                      const std::string& field, ByteView hmac, const PageRequest& page) override;

  Result<bool> PutRole(const RoleRow& role) override;
  Result<RoleRow> GetRole(const std::string& tenant_id, const std::string& name) override;
  Result<std::vector<RoleRow>> ListRoles(const std::string& tenant_id) override;
  Status DeleteRole(const std::string& tenant_id, const std::string& name) override;

  Status CreateApiKey(const ApiKeyRow& key) override;
  Result<ApiKeyRow> FindApiKeyByHash(ByteView key_hash) override;
  Result<std::vector<ApiKeyRow>> ListApiKeys(const std::string& tenant_id) override;
  Status RevokeApiKey(const std::string& tenant_id, const std::string& id, std::int64_t at) override;

  PostgresPoolStats Stats() const { return {opened_.load(), dropped_.load(), retries_.load()}; }
  std::vector<int> IdleBackendPids() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int> pids;
    for (const auto& c : idle_) pids.push_back(c->backend_pid());
    return pids;
  }

 private:
  // A connection checked out of the pool, returned (or dropped) on destruction.
  class Lease {
   public:
    Lease(PostgresStore* store, std::unique_ptr<Connection> conn) : store_(store), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (conn_) store_->Release(std::move(conn_));
    }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    PostgresStore* store_;
    std::unique_ptr<Connection> conn_;
  };

  explicit PostgresStore(PostgresOptions options, pg::ConnectOptions connect)
      : options_(std::move(options)), connect_(std::move(connect)), free_slots_(options_.pool_size) {}

  Result<std::unique_ptr<Connection>> Connect();
  Result<Lease> Acquire();
  void Release(std::unique_ptr<Connection> conn);

  // Runs `fn(Connection&) -> Status` (one read statement) on a pooled
  // connection. A read is idempotent: if the connection turns out to be lost,
  // it runs once more on a fresh one.
  template <typename F>
  Status Read(F&& fn);
  // Runs `fn(Connection&) -> Status` inside BEGIN … COMMIT; rolls back when
  // fn fails. Runs it again (fresh transaction) after a serialization failure
  // or deadlock, and after a lost connection as long as COMMIT had not been
  // sent (nothing can have been written then). A connection lost during
  // COMMIT leaves the outcome unknown: Unavailable, never a silent retry.
  template <typename F>
  Status Transact(F&& fn);
  // Runs one writing statement `fn(Connection&) -> Status` in autocommit
  // mode: one round trip instead of three, and its success means the
  // server committed it. Serialization failures and deadlocks are retried;
  // a lost connection is not (the statement may have been applied).
  template <typename F>
  Status WriteOne(F&& fn);

  const PostgresOptions options_;
  const pg::ConnectOptions connect_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // most recently used last
  int free_slots_;                                 // connections that may be checked out now

  std::atomic<std::int64_t> opened_{0};
  std::atomic<std::int64_t> dropped_{0};
  std::atomic<std::int64_t> retries_{0};
};

// --- Open, pool

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const PostgresOptions& options) {
  if (options.dsn.empty()) return InvalidArgumentError("the PostgreSQL connection string (dsn) is empty");
  if (options.pool_size < 1) return InvalidArgumentError("the PostgreSQL pool size must be at least 1");
  if (options.statement_timeout_ms < 1 || options.connect_timeout_s < 1 || options.acquire_timeout_ms < 0) {
    return InvalidArgumentError("PostgreSQL timeouts must be positive");
  }
  KURA_RETURN_IF_ERROR(CheckDsn(options.dsn));

  pg::ConnectOptions connect;
  // Defaults the DSN may override. verify-full: the connection carries
  // ciphertext, key hashes and wrapped keys, and the server's identity must
  // be checked, not just the channel encrypted.
  connect.defaults = {{"sslmode", "verify-full"},
                      {"connect_timeout", std::to_string(options.connect_timeout_s)},
                      {"application_name", "kura"}};
  connect.dsn = options.dsn;
  if (!options.password_file.empty()) {
    KURA_ASSIGN_OR_RETURN(std::string password, ReadPasswordFile(options.password_file));
    connect.overrides.emplace_back("password", std::move(password));
  }
  connect.round_trip_timeout = std::chrono::milliseconds(options.statement_timeout_ms) + kClientGrace;
  const std::string timeout = std::to_string(options.statement_timeout_ms);
  // lock_timeout: a write blocked behind another session's lock fails
  // (Unavailable) rather than waiting out the whole statement timeout;
  // idle_in_transaction: a client that vanished mid-transaction releases
  // its locks soon.
  connect.session_setup = "SET statement_timeout = " + timeout + "; SET lock_timeout = " + timeout +
                          "; SET idle_in_transaction_session_timeout = " +
                          std::to_string(options.statement_timeout_ms * 4 + 1000) +
                          "; SET client_min_messages = warning";

  std::unique_ptr<PostgresStore> store(new PostgresStore(options, std::move(connect)));
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> first, store->Connect());
  pg::PostgresMigrationTarget target(*first);
  KURA_RETURN_IF_ERROR(ApplyMigrations(target, ToUnixSeconds(Clock::Real().Now())).status());
  {
    std::lock_guard<std::mutex> lock(store->mu_);
    store->idle_.push_back(std::move(first));
  }
  return store;
}

Result<std::unique_ptr<Connection>> PostgresStore::Connect() {
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(connect_));
  opened_.fetch_add(1, std::memory_order_relaxed);
  return conn;
}

Result<PostgresStore::Lease> PostgresStore::Acquire() {
  std::unique_ptr<Connection> conn;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(options_.acquire_timeout_ms),
                      [this] { return free_slots_ > 0; })) {
      return UnavailableError("database: every pooled connection is busy");
    }
    --free_slots_;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (conn && !conn->ProbeIdle()) {
    // Terminated while idle (server restart, failover, pg_terminate_backend).
    conn.reset();
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!conn) {
    auto fresh = Connect();
    if (!fresh.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++free_slots_;
      }
      cv_.notify_one();
      return fresh.status();
    }
    conn = std::move(fresh).value();
  }
  return Lease(this, std::move(conn));
}

void PostgresStore::Release(std::unique_ptr<Connection> conn) {
  if (conn->broken() || !conn->Idle()) {
    // A connection in an unknown state is never reused; the next call opens
    // a fresh one (after a failover, on the new primary).
    conn.reset();
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn) idle_.push_back(std::move(conn));
    ++free_slots_;
  }
  cv_.notify_one();
}

template <typename F>
Status PostgresStore::Read(F&& fn) {
  Status s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    KURA_ASSIGN_OR_RETURN(Lease lease, Acquire());
    s = fn(*lease);
    if (s.ok() || !lease->broken()) return s;
    retries_.fetch_add(1, std::memory_order_relaxed);
  }
  return s;
}

template <typename F>
Status PostgresStore::Transact(F&& fn) {
  static thread_local std::minstd_rand jitter(std::random_device{}());
  Status s;
  bool lost_once = false;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    KURA_ASSIGN_OR_RETURN(Lease lease, Acquire());
    Connection& c = *lease;
    s = c.ExecSimple("BEGIN", "begin transaction");
    if (s.ok()) s = fn(c);
    if (s.ok()) {
      s = c.ExecSimple("COMMIT", "commit");
      if (s.ok()) return s;
      if (c.broken()) {
        return UnavailableError("database: connection lost during commit; the write may or may not have been applied");
      }
    } else if (!c.broken() && !c.Idle()) {
      c.ExecSimple("ROLLBACK", "rollback").IgnoreError();
    }
    if (c.broken() && !lost_once) {
      // Nothing was committed: the server rolls back a transaction whose
      // connection is gone. Once, on a fresh connection.
      lost_once = true;
      retries_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!pg::IsRetryable(c.last_sqlstate())) return s;
    retries_.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + jitter() % (5 << attempt)));
  }
  return s;
}

template <typename F>
Status PostgresStore::WriteOne(F&& fn) {
  static thread_local std::minstd_rand jitter(std::random_device{}());
  Status s;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    KURA_ASSIGN_OR_RETURN(Lease lease, Acquire());
    s = fn(*lease);
    if (s.ok() || !pg::IsRetryable(lease->last_sqlstate())) return s;
    retries_.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + jitter() % (5 << attempt)));
  }
  return s;
}

// --- Meta

Result<Bytes> PostgresStore::GetMeta(const std::string& key) {
  std::optional<Bytes> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetMeta, Params().Add(key), "meta"));
    if (!r.empty()) out = r.GetBytes(0, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("meta value not found");
  return std::move(*out);
}

Status PostgresStore::PutMeta(const std::string& key, ByteView value) {
  return WriteOne([&](Connection& c) { return c.Exec(kPutMeta, Params().Add(key).Add(value), "meta").status(); });
}

Status PostgresStore::InsertMeta(const std::string& key, ByteView value) {
  return WriteOne(
      [&](Connection& c) { return c.Exec(kInsertMeta, Params().Add(key).Add(value), "meta value").status(); });
}

// --- Tenants

Status PostgresStore::CreateTenant(const TenantRow& t) {
  return WriteOne([&](Connection& c) {
    Params p;
    p.Add(t.id).Add(t.name).Add(t.region).Add(t.created_at).Add(ByteView(t.wrapped_data_key));
    p.Add(t.data_key_version).Add(ByteView(t.wrapped_index_key));
    return c.Exec(kInsertTenant, p, "tenant").status();
  });
}

Result<TenantRow> PostgresStore::GetTenant(const std::string& id) {
  std::optional<TenantRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetTenant, Params().Add(id), "tenant"));
    if (!r.empty()) out = ReadTenant(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("tenant not found");
  return std::move(*out);
}

Result<Page<TenantRow>> PostgresStore::ListTenants(const PageRequest& page) {
  const int limit = PageLimit(page);
  Page<TenantRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(
        Rows r, c.Exec(kListTenants, Params().Add(page.after).Add(static_cast<std::int64_t>(limit) + 1), "tenants"));
    out.items.clear();
    for (int i = 0; i < r.size(); ++i) out.items.push_back(ReadTenant(r, i));
    return Status::Ok();
  }));
  FinishPage(out, limit, &TenantRow::id);
  return out;
}

Status PostgresStore::DeleteTenant(const std::string& id) {
  return Transact([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows exists, c.Exec(kLockTenant, Params().Add(id), "tenant"));
    if (exists.empty()) return NotFoundError("tenant not found");
    // One transaction: the tenant goes completely or not at all.
    for (const char* sql : kDeleteTenantRows) {
      KURA_RETURN_IF_ERROR(c.Exec(sql, Params().Add(id), "delete tenant").status());
    }
    return Status::Ok();
  });
}

// --- Collections

Result<bool> PostgresStore::PutCollection(const CollectionRow& col) {
  bool created = false;
  KURA_RETURN_IF_ERROR(Transact([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows exists, c.Exec(kCollectionExists, Params().Add(col.tenant_id).Add(col.name),
                                              "collection"));
    created = exists.empty();
    Params p;
    p.Add(col.tenant_id).Add(col.name).Add(col.schema_json).Add(col.created_at).Add(col.updated_at);
    return c.Exec(kUpsertCollection, p, "collection").status();
  }));
  return created;
}

Result<CollectionRow> PostgresStore::GetCollection(const std::string& tenant_id, const std::string& name) {
  std::optional<CollectionRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetCollection, Params().Add(tenant_id).Add(name), "collection"));
    if (!r.empty()) out = ReadCollection(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("collection not found");
  return std::move(*out);
}

Result<Page<CollectionRow>> PostgresStore::ListCollections(const std::string& tenant_id, const PageRequest& page) {
  const int limit = PageLimit(page);
  Page<CollectionRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(page.after).Add(static_cast<std::int64_t>(limit) + 1);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListCollections, p, "collections"));
    out.items.clear();
    for (int i = 0; i < r.size(); ++i) out.items.push_back(ReadCollection(r, i));
    return Status::Ok();
  }));
  FinishPage(out, limit, &CollectionRow::name);
  return out;
}

// --- Records

namespace {

Status InsertVersionRow(Connection& c, const RecordWrite& w) {
  Params p;
  p.Add(w.tenant_id).Add(w.collection).Add(w.id).Add(w.version).Add(ByteView(w.ciphertext)).Add(w.at);
  return c.Exec(kInsertVersion, p, "record version").status();
}

Status InsertIndexRows(Connection& c, const RecordWrite& w) {
  for (const IndexEntry& e : w.index) {
    Params p;
    p.Add(w.tenant_id).Add(w.collection).Add(e.field).Add(ByteView(e.hmac)).Add(w.id);
    KURA_RETURN_IF_ERROR(c.Exec(kInsertIndex, p, "record index entry").status());
  }
  return Status::Ok();
}

}  // namespace

Status PostgresStore::InsertRecord(const RecordWrite& w) {
  if (w.version != 1) return InvalidArgumentError("a new record starts at version 1");
  return Transact([&](Connection& c) -> Status {
    Params p;
    p.Add(w.tenant_id).Add(w.collection).Add(w.id).Add(w.version).Add(w.at).Add(w.at).AddOrNull(w.subject_hmac);
    KURA_RETURN_IF_ERROR(c.Exec(kInsertRecord, p, "record").status());
    KURA_RETURN_IF_ERROR(InsertVersionRow(c, w));
    return InsertIndexRows(c, w);
  });
}

Status PostgresStore::UpdateRecord(const RecordWrite& w, std::int64_t expected_version) {
  if (w.version != expected_version + 1) {
    return InvalidArgumentError("the new version must be the expected version plus one");
  }
  return Transact([&](Connection& c) -> Status {
    {
      Params p;
      p.Add(w.version).Add(w.at).AddOrNull(w.subject_hmac).Add(w.tenant_id).Add(w.collection).Add(w.id);
      p.Add(expected_version);
      KURA_ASSIGN_OR_RETURN(Rows cas, c.Exec(kCasRecord, p, "record"));
      if (cas.affected() == 0) {
        KURA_ASSIGN_OR_RETURN(Rows cur,
                              c.Exec(kCurrentVersion, Params().Add(w.tenant_id).Add(w.collection).Add(w.id), "record"));
        if (cur.empty()) return NotFoundError("record not found");
        return AbortedError("record version conflict: expected version " + std::to_string(expected_version) +
                            ", current version is " + std::to_string(cur.Int(0, 0)));
      }
    }
    KURA_RETURN_IF_ERROR(InsertVersionRow(c, w));
    KURA_RETURN_IF_ERROR(
        c.Exec(kDeleteIndex, Params().Add(w.tenant_id).Add(w.collection).Add(w.id), "record index entry").status());
    KURA_RETURN_IF_ERROR(InsertIndexRows(c, w));
    // Versions are contiguous (1..current, pruned from the oldest), so
    // "older than the newest keep" is a single range.
    const int keep = w.keep_versions < 1 ? 1 : w.keep_versions;
    const std::int64_t oldest_kept = w.version - keep + 1;
    if (oldest_kept > 1) {
      Params p;
      p.Add(w.tenant_id).Add(w.collection).Add(w.id).Add(oldest_kept - 1);
      KURA_RETURN_IF_ERROR(c.Exec(kPruneVersions, p, "prune record versions").status());
    }
    return Status::Ok();
  });
}

Status PostgresStore::DeleteRecord(const std::string& tenant_id, const std::string& collection,
                                   const std::string& id) {
  return Transact([&](Connection& c) -> Status {
    std::int64_t deleted = 0;
    for (const char* sql : {kDeleteIndex, kDeleteVersions, kDeleteRecord}) {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(sql, Params().Add(tenant_id).Add(collection).Add(id), "delete record"));
      deleted = r.affected();  // of the last statement: the records row itself
    }
    if (deleted == 0) return NotFoundError("record not found");
    return Status::Ok();
  });
}

Result<RecordRow> PostgresStore::GetRecord(const std::string& tenant_id, const std::string& collection,
                                           const std::string& id, std::optional<std::int64_t> version) {
  std::optional<RecordRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(collection).Add(id);
    if (version.has_value()) p.Add(*version);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(version.has_value() ? kGetRecordVersion : kGetCurrentRecord, p, "record"));
    if (r.empty()) return Status::Ok();
    RecordRow row;
    row.tenant_id = tenant_id;
    row.collection = collection;
    row.id = id;
    row.current_version = r.Int(0, 0);
    row.created_at = r.Int(0, 1);
    row.version = r.Int(0, 2);
    row.ciphertext = r.GetBytes(0, 3);
    row.updated_at = r.Int(0, 4);
    out = std::move(row);
    return Status::Ok();
  }));
  if (!out) return NotFoundError(version.has_value() ? "record version not found" : "record not found");
  return std::move(*out);
}

Result<std::vector<VersionInfo>> PostgresStore::ListVersions(const std::string& tenant_id,
                                                             const std::string& collection, const std::string& id) {
  std::vector<VersionInfo> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r,
                          c.Exec(kListVersions, Params().Add(tenant_id).Add(collection).Add(id), "record versions"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(VersionInfo{r.Int(i, 0), r.Int(i, 1)});
    return Status::Ok();
  }));
  // Every existing record has at least its current version.
  if (out.empty()) return NotFoundError("record not found");
  return out;
}

Result<Page<RecordRow>> PostgresStore::ListRecords(const std::string& tenant_id, const std::string& collection,
                                                   const PageRequest& page) {
  const int limit = PageLimit(page);
  Page<RecordRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(collection).Add(page.after).Add(static_cast<std::int64_t>(limit) + 1);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListRecords, p, "records"));
    out.items.clear();
    for (int i = 0; i < r.size(); ++i) out.items.push_back(ReadListedRecord(r, i, tenant_id, collection));
    return Status::Ok();
  }));
  FinishPage(out, limit, &RecordRow::id);
  return out;
}

Result<Page<RecordRow>> PostgresStore::FindRecords(const std::string& tenant_id, const std::string& collection,
                                                   const std::string& field, ByteView hmac,
                                                   const PageRequest& page) {
  const int limit = PageLimit(page);
  Page<RecordRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(collection).Add(field).Add(hmac).Add(page.after);
    p.Add(static_cast<std::int64_t>(limit) + 1);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kFindRecords, p, "records"));
    out.items.clear();
    for (int i = 0; i < r.size(); ++i) out.items.push_back(ReadListedRecord(r, i, tenant_id, collection));
    return Status::Ok();
  }));
  FinishPage(out, limit, &RecordRow::id);
  return out;
}

// --- Roles

Result<bool> PostgresStore::PutRole(const RoleRow& role) {
  bool created = false;
  KURA_RETURN_IF_ERROR(Transact([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows exists, c.Exec(kRoleExists, Params().Add(role.tenant_id).Add(role.name), "role"));
    created = exists.empty();
    Params p;
    p.Add(role.tenant_id).Add(role.name).Add(role.permissions_json).Add(role.updated_at);
    return c.Exec(kUpsertRole, p, "role").status();
  }));
  return created;
}

Result<RoleRow> PostgresStore::GetRole(const std::string& tenant_id, const std::string& name) {
  std::optional<RoleRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetRole, Params().Add(tenant_id).Add(name), "role"));
    if (!r.empty()) out = ReadRole(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("role not found");
  return std::move(*out);
}

Result<std::vector<RoleRow>> PostgresStore::ListRoles(const std::string& tenant_id) {
  std::vector<RoleRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListRoles, Params().Add(tenant_id), "roles"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadRole(r, i));
    return Status::Ok();
  }));
  return out;
}

Status PostgresStore::DeleteRole(const std::string& tenant_id, const std::string& name) {
  return WriteOne([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDeleteRole, Params().Add(tenant_id).Add(name), "role"));
    if (r.affected() == 0) return NotFoundError("role not found");
    return Status::Ok();
  });
}

// --- API keys

Status PostgresStore::CreateApiKey(const ApiKeyRow& k) {
  return WriteOne([&](Connection& c) {
    Params p;
    p.Add(k.id).Add(k.tenant_id).Add(k.name).Add(k.role).Add(ByteView(k.key_hash)).Add(k.created_at);
    p.AddOrNull(k.expires_at).AddOrNull(k.revoked_at);
    return c.Exec(kInsertApiKey, p, "api key").status();
  });
}

Result<ApiKeyRow> PostgresStore::FindApiKeyByHash(ByteView key_hash) {
  std::optional<ApiKeyRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kFindApiKey, Params().Add(key_hash), "api key"));
    if (!r.empty()) out = ReadApiKey(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("api key not found");
  return std::move(*out);
}

Result<std::vector<ApiKeyRow>> PostgresStore::ListApiKeys(const std::string& tenant_id) {
  std::vector<ApiKeyRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListApiKeys, Params().Add(tenant_id), "api keys"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadApiKey(r, i));
    return Status::Ok();
  }));
  return out;
}

Status PostgresStore::RevokeApiKey(const std::string& tenant_id, const std::string& id, std::int64_t at) {
  return WriteOne([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kRevokeApiKey, Params().Add(at).Add(tenant_id).Add(id), "api key"));
    if (r.affected() == 0) return NotFoundError("api key not found");
    return Status::Ok();
  });
}

// --- Entry points

Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& options) {
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<PostgresStore> store, PostgresStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

Result<PostgresPoolStats> PostgresPoolStatsForTest(Store& store) {
  auto* s = dynamic_cast<PostgresStore*>(&store);
  if (s == nullptr) return InvalidArgumentError("not a PostgreSQL store");
  return s->Stats();
}

Result<std::vector<int>> PostgresBackendPidsForTest(Store& store) {
  auto* s = dynamic_cast<PostgresStore*>(&store);
  if (s == nullptr) return InvalidArgumentError("not a PostgreSQL store");
  return s->IdleBackendPids();
}

}  // namespace kura::store
