// The PostgreSQL backend of KeyStore: its own tables (key_meta,
// key_kek_versions, key_wrapped_keys, key_schema_migrations) in the data
// store's database, a table set with a backup of its own (pg_dump -t 'key_*'
// for the keys, -T 'key_*' for the data; docs/formats/keys.md).
//
// One connection behind a mutex, reopened after a failure: key-store calls
// are rare. Several kura nodes share the tables; a KEK rotation locks every
// KEK row (FOR UPDATE) before it rewraps, and every key insert takes a key
// share lock on its KEK row through the foreign key, so an insert racing a
// rotation waits for it and then fails (NotFound: its KEK version is gone)
// instead of leaving a key wrapped by a deleted KEK.
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "store/key_store.h"
#include "store/key_store_internal.h"
#include "store/postgres_internal.h"

namespace kura::store {
namespace {

using pg::Connection;
using pg::Params;
using pg::Rows;

constexpr int kMaxAttempts = 4;

constexpr char kGetMeta[] = "SELECT value FROM key_meta WHERE name = $1";
constexpr char kPutMeta[] =
    "INSERT INTO key_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
constexpr char kListKeks[] = "SELECT version, wrapped, created_at FROM key_kek_versions ORDER BY version";
constexpr char kLockKeks[] = "SELECT version, wrapped, created_at FROM key_kek_versions ORDER BY version FOR UPDATE";
constexpr char kInsertKek[] = "INSERT INTO key_kek_versions (version, wrapped, created_at) VALUES ($1, $2, $3)";
constexpr char kUpdateKek[] = "UPDATE key_kek_versions SET wrapped = $1 WHERE version = $2";
constexpr char kDeleteOlderKeks[] = "DELETE FROM key_kek_versions WHERE version < $1";
constexpr char kInsertKey[] =
    "INSERT INTO key_wrapped_keys (owner, purpose, version, kek_version, wrapped, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6)";
constexpr char kRewrapKey[] =
    "UPDATE key_wrapped_keys SET wrapped = $1, kek_version = $2 "
    "WHERE owner = $3 AND purpose = $4 AND version = $5 AND kek_version < $2";
constexpr char kCountOtherKek[] = "SELECT COUNT(*) FROM key_wrapped_keys WHERE kek_version <> $1";
constexpr char kListKeys[] =
    "SELECT owner, purpose, version, kek_version, wrapped, created_at FROM key_wrapped_keys "
    "WHERE owner = $1 ORDER BY purpose, version";
constexpr char kListAllKeys[] =
    "SELECT owner, purpose, version, kek_version, wrapped, created_at FROM key_wrapped_keys "
    "ORDER BY owner, purpose, version";
constexpr char kDestroyKeys[] = "DELETE FROM key_wrapped_keys WHERE owner = $1";
constexpr char kDestroyKeysBelow[] =
    "DELETE FROM key_wrapped_keys WHERE owner = $1 AND purpose = $2 AND version < $3";

std::vector<WrappedKeyRow> ReadKeys(const Rows& r) {
  std::vector<WrappedKeyRow> out;
  for (int i = 0; i < r.size(); ++i) {
    WrappedKeyRow row;
    row.owner = r.Text(i, 0);
    row.purpose = static_cast<int>(r.Int(i, 1));
    row.version = r.Int(i, 2);
    row.kek_version = r.Int(i, 3);
    row.wrapped = r.GetBytes(i, 4);
    row.created_at = r.Int(i, 5);
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<KekVersionRow> ReadKeks(const Rows& r) {
  std::vector<KekVersionRow> out;
  for (int i = 0; i < r.size(); ++i) out.push_back({r.Int(i, 0), r.GetBytes(i, 1), r.Int(i, 2)});
  return out;
}

class PostgresKeyStore final : public KeyStore {
 public:
  PostgresKeyStore(pg::ConnectOptions connect, std::unique_ptr<Connection> conn)
      : connect_(std::move(connect)), conn_(std::move(conn)) {}

  Result<std::string> GetMeta(const std::string& name) override {
    std::string value;
    KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetMeta, Params().Add(std::string_view(name)), "key store meta"));
      if (r.empty()) return NotFoundError("key store meta '" + name + "' not found");
      value = r.Text(0, 0);
      return Status::Ok();
    }));
    return value;
  }

  Result<std::vector<KekVersionRow>> ListKekVersions() override {
    std::vector<KekVersionRow> out;
    KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListKeks, Params(), "KEK versions"));
      out = ReadKeks(r);
      return Status::Ok();
    }));
    return out;
  }

  Status Initialize(const KekVersionRow& kek, const std::string& seal_json) override {
    return Transact([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kLockKeks, Params(), "KEK versions"));
      if (!r.empty()) return AlreadyExistsError("the key store already holds a KEK");
      // Two nodes initialising at once: the primary key decides.
      KURA_RETURN_IF_ERROR(InsertKek(c, kek, /*taken=*/AlreadyExistsError("the key store already holds a KEK")));
      return PutMeta(c, kKeyMetaSeal, seal_json);
    });
  }

  Status RotateKek(const KekVersionRow& kek, const std::vector<WrappedKeyRow>& rewrapped) override {
    return Transact([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kLockKeks, Params(), "KEK versions"));
      auto keks = ReadKeks(r);
      if (!keks.empty() && keks.back().version >= kek.version) return AbortedError("KEK version taken");
      KURA_RETURN_IF_ERROR(InsertKek(c, kek, AbortedError("KEK version taken")));
      for (const WrappedKeyRow& key : rewrapped) {
        if (key.kek_version != kek.version) return InvalidArgumentError("rewrapped key under another KEK");
        KURA_ASSIGN_OR_RETURN(Rows u, c.Exec(kRewrapKey,
                                             Params()
                                                 .Add(ByteView(key.wrapped))
                                                 .Add(kek.version)
                                                 .Add(std::string_view(key.owner))
                                                 .Add(static_cast<std::int64_t>(key.purpose))
                                                 .Add(key.version),
                                             "rewrap key"));
        if (u.affected() != 1) return AbortedError("a key changed during KEK rotation");
      }
      KURA_ASSIGN_OR_RETURN(Rows n, c.Exec(kCountOtherKek, Params().Add(kek.version), "KEK rotation"));
      if (n.size() != 1 || n.Int(0, 0) != 0) return AbortedError("a key was added during KEK rotation");
      auto deleted = c.Exec(kDeleteOlderKeks, Params().Add(kek.version), "delete older KEK versions");
      // The foreign key refuses to drop a KEK version that still wraps a key.
      if (!deleted.ok() && deleted.status().code() == StatusCode::kNotFound) {
        return AbortedError("a key was added during KEK rotation");
      }
      return deleted.status();
    });
  }

  Status ResealKeks(const std::vector<KekVersionRow>& keks, const std::string& seal_json) override {
    return Transact([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kLockKeks, Params(), "KEK versions"));
      std::set<std::int64_t> want, have;
      for (const auto& k : keks) want.insert(k.version);
      for (const auto& k : ReadKeks(r)) have.insert(k.version);
      if (want != have || want.size() != keks.size()) return AbortedError("the KEK versions changed");
      for (const KekVersionRow& k : keks) {
        KURA_RETURN_IF_ERROR(
            c.Exec(kUpdateKek, Params().Add(ByteView(k.wrapped)).Add(k.version), "reseal KEK").status());
      }
      return PutMeta(c, kKeyMetaSeal, seal_json);
    });
  }

  Status InsertKeys(const std::vector<WrappedKeyRow>& keys) override {
    return Transact([&](Connection& c) -> Status {
      for (const WrappedKeyRow& key : keys) {
        KURA_RETURN_IF_ERROR(c.Exec(kInsertKey,
                                    Params()
                                        .Add(std::string_view(key.owner))
                                        .Add(static_cast<std::int64_t>(key.purpose))
                                        .Add(key.version)
                                        .Add(key.kek_version)
                                        .Add(ByteView(key.wrapped))
                                        .Add(key.created_at),
                                    "wrapped key")
                                 .status());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<WrappedKeyRow>> ListKeys(const std::string& owner) override {
    std::vector<WrappedKeyRow> out;
    KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListKeys, Params().Add(std::string_view(owner)), "wrapped keys"));
      out = ReadKeys(r);
      return Status::Ok();
    }));
    return out;
  }

  Result<std::vector<WrappedKeyRow>> ListAllKeys() override {
    std::vector<WrappedKeyRow> out;
    KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListAllKeys, Params(), "wrapped keys"));
      out = ReadKeys(r);
      return Status::Ok();
    }));
    return out;
  }

  Result<int> DestroyKeys(const std::string& owner) override {
    int n = 0;
    KURA_RETURN_IF_ERROR(Transact([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDestroyKeys, Params().Add(std::string_view(owner)), "destroy keys"));
      n = static_cast<int>(r.affected());
      return Status::Ok();
    }));
    return n;
  }

  Result<int> DestroyKeysBelow(const std::string& owner, int purpose, std::int64_t version) override {
    int n = 0;
    KURA_RETURN_IF_ERROR(Transact([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDestroyKeysBelow,
                                           Params()
                                               .Add(std::string_view(owner))
                                               .Add(static_cast<std::int64_t>(purpose))
                                               .Add(version),
                                           "destroy keys"));
      n = static_cast<int>(r.affected());
      return Status::Ok();
    }));
    return n;
  }

 private:
  static Status InsertKek(Connection& c, const KekVersionRow& kek, Status taken) {
    auto r = c.Exec(kInsertKek, Params().Add(kek.version).Add(ByteView(kek.wrapped)).Add(kek.created_at),
                    "KEK version");
    if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) return taken;
    return r.status();
  }

  static Status PutMeta(Connection& c, const std::string& name, const std::string& value) {
    return c.Exec(kPutMeta, Params().Add(std::string_view(name)).Add(std::string_view(value)), "key store meta")
        .status();
  }

  // The connection, reopened if the last one broke. Called with mu_ held.
  Result<Connection*> Conn() {
    if (conn_ && (conn_->broken() || !conn_->Idle() || !conn_->ProbeIdle())) conn_.reset();
    if (!conn_) {
      KURA_ASSIGN_OR_RETURN(conn_, Connection::Open(connect_));
    }
    return conn_.get();
  }

  // One read statement; once more on a fresh connection if it was lost.
  template <typename F>
  Status Read(F&& fn) {
    std::lock_guard lock(mu_);
    Status s;
    for (int attempt = 0; attempt < 2; ++attempt) {
      KURA_ASSIGN_OR_RETURN(Connection * c, Conn());
      s = fn(*c);
      if (s.ok() || !c->broken()) return s;
    }
    return s;
  }

  // BEGIN … COMMIT, rolled back when fn fails; run again after a
  // serialization failure, a deadlock, or a connection lost before COMMIT
  // was sent (nothing committed then). A connection lost during COMMIT
  // leaves the outcome unknown: Unavailable.
  template <typename F>
  Status Transact(F&& fn) {
    std::lock_guard lock(mu_);
    Status s;
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      KURA_ASSIGN_OR_RETURN(Connection * c, Conn());
      s = c->ExecSimple("BEGIN", "begin transaction");
      if (s.ok()) s = fn(*c);
      if (s.ok()) {
        s = c->ExecSimple("COMMIT", "commit");
        if (s.ok() && c->SyncReplicationCancelled()) {
          return UnavailableError("key store: commit not confirmed by the synchronous standby");
        }
        if (s.ok() || c->broken()) {
          return s.ok() ? s : UnavailableError("key store: connection lost during commit; the change may or may "
                                               "not have been applied");
        }
      } else if (!c->broken() && !c->Idle()) {
        c->ExecSimple("ROLLBACK", "rollback").IgnoreError();
      }
      // Only a lost connection or a retryable conflict (both Unavailable)
      // runs again; the callers' own outcomes (Aborted, …) never do.
      if (s.code() != StatusCode::kUnavailable || (!c->broken() && !pg::IsRetryable(c->last_sqlstate()))) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 << attempt));
    }
    return s;
  }

  const pg::ConnectOptions connect_;
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> OpenPostgresKeyStore(const PostgresOptions& options) {
  if (options.dsn.empty()) return InvalidArgumentError("the PostgreSQL connection string (dsn) is empty");
  KURA_ASSIGN_OR_RETURN(pg::ConnectOptions connect, pg::MakeConnectOptions(options));
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(connect));
  pg::PostgresMigrationTarget target(*conn);
  KURA_RETURN_IF_ERROR(
      ApplyMigrations(target, ToUnixSeconds(Clock::Real().Now()), KeyStoreMigrations(), kKeyMigrationsTable).status());
  return std::unique_ptr<KeyStore>(new PostgresKeyStore(std::move(connect), std::move(conn)));
}

}  // namespace kura::store
