// The SQLite backend of KeyStore: its own file (<data>/keys.db), apart from
// the data store's kura.db, so copying or backing up one never copies the
// other.
//
// One connection behind a mutex: key-store calls are rare (unseal, a tenant's
// first use, rotation, deletion), and a single writer keeps every
// transaction trivially serial.
#include <filesystem>
#include <mutex>
#include <set>

#include "core/clock.h"
#include "store/key_store.h"
#include "store/key_store_internal.h"
#include "store/sqlite_internal.h"

namespace kura::store {
namespace {

using sqlite::Connection;

constexpr char kGetMeta[] = "SELECT value FROM key_meta WHERE name = ?1";
constexpr char kPutMeta[] =
    "INSERT INTO key_meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
constexpr char kListKeks[] = "SELECT version, wrapped, created_at FROM key_kek_versions ORDER BY version";
constexpr char kCountKeks[] = "SELECT COUNT(*) FROM key_kek_versions";
constexpr char kInsertKek[] = "INSERT INTO key_kek_versions (version, wrapped, created_at) VALUES (?1, ?2, ?3)";
constexpr char kUpdateKek[] = "UPDATE key_kek_versions SET wrapped = ?1 WHERE version = ?2";
constexpr char kDeleteOlderKeks[] = "DELETE FROM key_kek_versions WHERE version < ?1";
constexpr char kInsertKey[] =
    "INSERT INTO key_wrapped_keys (owner, purpose, version, kek_version, wrapped, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
// Only a key still wrapped by an older KEK version is rewrapped.
constexpr char kRewrapKey[] =
    "UPDATE key_wrapped_keys SET wrapped = ?1, kek_version = ?2 "
    "WHERE owner = ?3 AND purpose = ?4 AND version = ?5 AND kek_version < ?2";
constexpr char kCountOtherKek[] = "SELECT COUNT(*) FROM key_wrapped_keys WHERE kek_version <> ?1";
constexpr char kListKeys[] =
    "SELECT owner, purpose, version, kek_version, wrapped, created_at FROM key_wrapped_keys "
    "WHERE owner = ?1 ORDER BY purpose, version";
constexpr char kListAllKeys[] =
    "SELECT owner, purpose, version, kek_version, wrapped, created_at FROM key_wrapped_keys "
    "ORDER BY owner, purpose, version";
constexpr char kDestroyKeys[] = "DELETE FROM key_wrapped_keys WHERE owner = ?1";
constexpr char kDestroyKeysBelow[] =
    "DELETE FROM key_wrapped_keys WHERE owner = ?1 AND purpose = ?2 AND version < ?3";

WrappedKeyRow ReadKey(sqlite::Statement& st) {
  WrappedKeyRow row;
  row.owner = st.ColumnText(0);
  row.purpose = static_cast<int>(st.ColumnInt(1));
  row.version = st.ColumnInt(2);
  row.kek_version = st.ColumnInt(3);
  row.wrapped = st.ColumnBytes(4);
  row.created_at = st.ColumnInt(5);
  return row;
}

class SqliteKeyStore final : public KeyStore {
 public:
  explicit SqliteKeyStore(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}

  Result<std::string> GetMeta(const std::string& name) override {
    std::lock_guard lock(mu_);
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kGetMeta));
    st.Bind(1, std::string_view(name));
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("key store meta"));
    if (!row) return NotFoundError("key store meta '" + name + "' not found");
    return st.ColumnText(0);
  }

  Result<std::vector<KekVersionRow>> ListKekVersions() override {
    std::lock_guard lock(mu_);
    return ListKeksLocked();
  }

  Status Initialize(const KekVersionRow& kek, const std::string& seal_json) override {
    std::lock_guard lock(mu_);
    return Transact([&]() -> Status {
      KURA_ASSIGN_OR_RETURN(std::int64_t n, CountLocked(kCountKeks));
      if (n != 0) return AlreadyExistsError("the key store already holds a KEK");
      KURA_RETURN_IF_ERROR(InsertKekLocked(kek));
      return PutMetaLocked(kKeyMetaSeal, seal_json);
    });
  }

  Status RotateKek(const KekVersionRow& kek, const std::vector<WrappedKeyRow>& rewrapped) override {
    std::lock_guard lock(mu_);
    Status s = Transact([&]() -> Status {
      KURA_ASSIGN_OR_RETURN(auto keks, ListKeksLocked());
      if (!keks.empty() && keks.back().version >= kek.version) return AbortedError("KEK version taken");
      KURA_RETURN_IF_ERROR(InsertKekLocked(kek));
      for (const WrappedKeyRow& key : rewrapped) {
        if (key.kek_version != kek.version) return InvalidArgumentError("rewrapped key under another KEK");
        KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kRewrapKey));
        st.Bind(1, ByteView(key.wrapped));
        st.Bind(2, kek.version);
        st.Bind(3, std::string_view(key.owner));
        st.Bind(4, static_cast<std::int64_t>(key.purpose));
        st.Bind(5, key.version);
        KURA_RETURN_IF_ERROR(st.Run("rewrap key"));
        if (conn_->Changes() != 1) return AbortedError("a key changed during KEK rotation");
      }
      {
        KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kCountOtherKek));
        st.Bind(1, kek.version);
        KURA_ASSIGN_OR_RETURN(bool row, st.Step("KEK rotation"));
        if (!row || st.ColumnInt(0) != 0) return AbortedError("a key was added during KEK rotation");
      }
      KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kDeleteOlderKeks));
      st.Bind(1, kek.version);
      Status deleted = st.Run("delete older KEK versions");
      // The foreign key refuses to drop a KEK version that still wraps a key.
      if (deleted.code() == StatusCode::kNotFound) return AbortedError("a key was added during KEK rotation");
      return deleted;
    });
    if (s.ok()) Scrub();
    return s;
  }

  Status ResealKeks(const std::vector<KekVersionRow>& keks, const std::string& seal_json) override {
    std::lock_guard lock(mu_);
    Status s = Transact([&]() -> Status {
      KURA_ASSIGN_OR_RETURN(auto stored, ListKeksLocked());
      std::set<std::int64_t> want, have;
      for (const auto& k : keks) want.insert(k.version);
      for (const auto& k : stored) have.insert(k.version);
      if (want != have || want.size() != keks.size()) return AbortedError("the KEK versions changed");
      for (const KekVersionRow& k : keks) {
        KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kUpdateKek));
        st.Bind(1, ByteView(k.wrapped));
        st.Bind(2, k.version);
        KURA_RETURN_IF_ERROR(st.Run("reseal KEK"));
      }
      return PutMetaLocked(kKeyMetaSeal, seal_json);
    });
    if (s.ok()) Scrub();
    return s;
  }

  Status InsertKeys(const std::vector<WrappedKeyRow>& keys) override {
    std::lock_guard lock(mu_);
    return Transact([&]() -> Status {
      for (const WrappedKeyRow& key : keys) {
        KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kInsertKey));
        st.Bind(1, std::string_view(key.owner));
        st.Bind(2, static_cast<std::int64_t>(key.purpose));
        st.Bind(3, key.version);
        st.Bind(4, key.kek_version);
        st.Bind(5, ByteView(key.wrapped));
        st.Bind(6, key.created_at);
        KURA_RETURN_IF_ERROR(st.Run("wrapped key"));
      }
      return Status::Ok();
    });
  }

  Result<std::vector<WrappedKeyRow>> ListKeys(const std::string& owner) override {
    std::lock_guard lock(mu_);
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kListKeys));
    st.Bind(1, std::string_view(owner));
    return ReadKeys(st);
  }

  Result<std::vector<WrappedKeyRow>> ListAllKeys() override {
    std::lock_guard lock(mu_);
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kListAllKeys));
    return ReadKeys(st);
  }

  Result<int> DestroyKeys(const std::string& owner) override {
    std::lock_guard lock(mu_);
    int n = 0;
    KURA_RETURN_IF_ERROR(Transact([&]() -> Status {
      KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kDestroyKeys));
      st.Bind(1, std::string_view(owner));
      KURA_RETURN_IF_ERROR(st.Run("destroy keys"));
      n = static_cast<int>(conn_->Changes());
      return Status::Ok();
    }));
    Scrub();
    return n;
  }

  Result<int> DestroyKeysBelow(const std::string& owner, int purpose, std::int64_t version) override {
    std::lock_guard lock(mu_);
    int n = 0;
    KURA_RETURN_IF_ERROR(Transact([&]() -> Status {
      KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kDestroyKeysBelow));
      st.Bind(1, std::string_view(owner));
      st.Bind(2, static_cast<std::int64_t>(purpose));
      st.Bind(3, version);
      KURA_RETURN_IF_ERROR(st.Run("destroy keys"));
      n = static_cast<int>(conn_->Changes());
      return Status::Ok();
    }));
    Scrub();
    return n;
  }

 private:
  template <typename F>
  Status Transact(F&& fn) {
    KURA_RETURN_IF_ERROR(conn_->Exec("BEGIN IMMEDIATE", "key store transaction"));
    Status s = fn();
    if (s.ok()) s = conn_->Exec("COMMIT", "key store commit");
    if (!s.ok() && !conn_->InAutocommit()) conn_->Exec("ROLLBACK", "key store rollback").IgnoreError();
    return s;
  }

  // After keys were destroyed or rewrapped: secure_delete zeroed the freed
  // pages, and a TRUNCATE checkpoint copies the log into the file and empties
  // the log, which otherwise keeps the old pages (and the old wrapped bytes)
  // until it is reused. Best effort: a reader holding the log open only
  // delays this to the next call; the transaction has committed either way.
  void Scrub() { conn_->Exec("PRAGMA wal_checkpoint(TRUNCATE)", "key store checkpoint").IgnoreError(); }

  Result<std::int64_t> CountLocked(const char* sql) {
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(sql));
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("key store count"));
    if (!row) return InternalError("key store count: no row");
    return st.ColumnInt(0);
  }

  Result<std::vector<KekVersionRow>> ListKeksLocked() {
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kListKeks));
    std::vector<KekVersionRow> out;
    for (;;) {
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("KEK versions"));
      if (!row) break;
      out.push_back({st.ColumnInt(0), st.ColumnBytes(1), st.ColumnInt(2)});
    }
    return out;
  }

  Status InsertKekLocked(const KekVersionRow& kek) {
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kInsertKek));
    st.Bind(1, kek.version);
    st.Bind(2, ByteView(kek.wrapped));
    st.Bind(3, kek.created_at);
    Status s = st.Run("KEK version");
    if (s.code() == StatusCode::kAlreadyExists) return AbortedError("KEK version taken");
    return s;
  }

  Status PutMetaLocked(const std::string& name, const std::string& value) {
    KURA_ASSIGN_OR_RETURN(auto st, conn_->Prepare(kPutMeta));
    st.Bind(1, std::string_view(name));
    st.Bind(2, std::string_view(value));
    return st.Run("key store meta");
  }

  static Result<std::vector<WrappedKeyRow>> ReadKeys(sqlite::Statement& st) {
    std::vector<WrappedKeyRow> out;
    for (;;) {
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("wrapped keys"));
      if (!row) break;
      out.push_back(ReadKey(st));
    }
    return out;
  }

  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> OpenSqliteKeyStore(const SqliteKeyStoreOptions& options) {
  if (options.path.empty()) return InvalidArgumentError("key store path is empty");
  KURA_RETURN_IF_ERROR(sqlite::MakeDirectories(std::filesystem::path(options.path).parent_path()));
  KURA_RETURN_IF_ERROR(sqlite::PrepareDatabaseFile(options.path));
  sqlite::ConnectionOptions copts;
  copts.path = options.path;
  copts.create = true;
  copts.durable = options.durable;
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(copts));
  KURA_RETURN_IF_ERROR(conn->Exec("PRAGMA journal_mode = WAL", "enable WAL"));
  KURA_ASSIGN_OR_RETURN(std::int64_t wal, conn->QueryInt("SELECT count(*) FROM pragma_journal_mode WHERE "
                                                         "journal_mode = 'wal'",
                                                         "enable WAL"));
  if (wal != 1) return UnavailableError("key store " + options.path + ": cannot switch to WAL journal mode");
  // A destroyed key must not linger in the file's free pages.
  KURA_RETURN_IF_ERROR(conn->Exec("PRAGMA secure_delete = ON", "configure"));
  KURA_ASSIGN_OR_RETURN(std::int64_t app_id, conn->QueryInt("PRAGMA application_id", "read application id"));
  if (app_id == 0) {
    KURA_RETURN_IF_ERROR(
        conn->Exec("PRAGMA application_id = " + std::to_string(kKeyStoreApplicationId), "set application id"));
  } else if (app_id != kKeyStoreApplicationId) {
    return FailedPreconditionError("key store " + options.path + " is not a kura key store");
  }
  sqlite::SqliteMigrationTarget target(*conn);
  KURA_RETURN_IF_ERROR(
      ApplyMigrations(target, ToUnixSeconds(Clock::Real().Now()), KeyStoreMigrations(), kKeyMigrationsTable).status());
  return std::unique_ptr<KeyStore>(new SqliteKeyStore(std::move(conn)));
}

}  // namespace kura::store
