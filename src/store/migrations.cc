#include "store/migrations.h"

#include <array>

#include "store/audit_sql.h"

namespace kura::store {
namespace {

// Migration 1: the spine's schema. docs/formats/database.md explains every
// table and column. Foreign keys cascade as a safety net; the store also
// deletes children explicitly so no backend depends on cascades being on.
constexpr std::array<std::string_view, 11> kInitial = {
    R"sql(CREATE TABLE meta (
  name {text} PRIMARY KEY,
  value {bytes} NOT NULL
))sql",
    R"sql(CREATE TABLE tenants (
  id {text} PRIMARY KEY,
  name {text} NOT NULL,
  region {text} NOT NULL,
  created_at BIGINT NOT NULL,
  wrapped_data_key {bytes} NOT NULL,
  data_key_version BIGINT NOT NULL,
  wrapped_index_key {bytes} NOT NULL
))sql",
    R"sql(CREATE TABLE collections (
  tenant_id {text} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name {text} NOT NULL,
  schema_json {text} NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, name)
))sql",
    R"sql(CREATE TABLE records (
  tenant_id {text} NOT NULL,
  collection {text} NOT NULL,
  id {text} NOT NULL,
  current_version BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  subject_hmac {bytes},
  PRIMARY KEY (tenant_id, collection, id),
  FOREIGN KEY (tenant_id, collection) REFERENCES collections (tenant_id, name) ON DELETE CASCADE
))sql",
    R"sql(CREATE TABLE record_versions (
  tenant_id {text} NOT NULL,
  collection {text} NOT NULL,
  record_id {text} NOT NULL,
  version BIGINT NOT NULL,
  ciphertext {bytes} NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, collection, record_id, version),
  FOREIGN KEY (tenant_id, collection, record_id) REFERENCES records (tenant_id, collection, id) ON DELETE CASCADE
))sql",
    R"sql(CREATE TABLE record_index (
  tenant_id {text} NOT NULL,
  collection {text} NOT NULL,
  field {text} NOT NULL,
  hmac {bytes} NOT NULL,
  record_id {text} NOT NULL,
  PRIMARY KEY (tenant_id, collection, field, hmac, record_id),
  FOREIGN KEY (tenant_id, collection, record_id) REFERENCES records (tenant_id, collection, id) ON DELETE CASCADE
))sql",
    // The primary key serves lookups (tenant, collection, field, hmac) in
    // record-id order; this one serves replacing and deleting a record's entries.
    R"sql(CREATE INDEX record_index_by_record ON record_index (tenant_id, collection, record_id))sql",
    R"sql(CREATE TABLE roles (
  tenant_id {text} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name {text} NOT NULL,
  permissions_json {text} NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, name)
))sql",
    R"sql(CREATE TABLE api_keys (
  id {text} PRIMARY KEY,
  tenant_id {text} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name {text} NOT NULL,
  role {text} NOT NULL,
  key_hash {bytes} NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT
))sql",
    R"sql(CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash))sql",
    R"sql(CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id))sql",
};

// Migration 2: the audit log (docs/formats/audit.md for what an entry says,
// database.md for the tables). No foreign key to `tenants`: the log outlives
// the tenants it describes, and deleting a tenant leaves its trail intact.
constexpr std::array<std::string_view, 6> kAuditLog = {
    R"sql(CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  tenant_id {text} NOT NULL,
  principal {text} NOT NULL,
  action {text} NOT NULL,
  resource {text} NOT NULL,
  outcome {text} NOT NULL,
  entry {bytes} NOT NULL,
  hash {bytes} NOT NULL
))sql",
    // Trails: a tenant's entries (and a principal's) in sequence order, so
    // `… = ? AND seq > ? ORDER BY seq LIMIT ?` walks one index range.
    R"sql(CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, seq))sql",
    R"sql(CREATE INDEX audit_log_by_principal ON audit_log (principal, seq))sql",
    // The chain's head: the next sequence number and the last entry's hash,
    // in one row (id = 1). PostgreSQL nodes lock it (SELECT … FOR UPDATE) to
    // append, so every node extends the same chain; SQLite's single writer
    // keeps it current in the same transactions.
    R"sql(CREATE TABLE audit_head (
  id BIGINT PRIMARY KEY,
  next_seq BIGINT NOT NULL,
  last_hash {bytes}
))sql",
    R"sql(INSERT INTO audit_head (id, next_seq, last_hash) VALUES (1, 0, NULL))sql",
    R"sql(CREATE TABLE audit_checkpoints (
  tree_size BIGINT PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  root {bytes} NOT NULL,
  note {text} NOT NULL,
  signature {bytes} NOT NULL
))sql",
};

// Migration 3: leases for background work that must run on one node at a
// time (Store::HoldLease). One row per lease; expires_at_ms is unix
// milliseconds by the database's clock.
constexpr std::array<std::string_view, 1> kLeases = {
    R"sql(CREATE TABLE leases (
  name {text} PRIMARY KEY,
  holder {text} NOT NULL,
  expires_at_ms BIGINT NOT NULL
))sql",
};

// Migration 4: identity — tenant users and staff (tenant_id ''), and their
// sessions. Secrets only in protected form: password_hash is an encoded
// Argon2id hash, totp_secret_sealed the vault's AEAD ciphertext (NULL = no
// enrolment), recovery codes and session tokens SHA-256 hashes. No foreign
// key from users to tenants, since staff belong to none; DeleteTenant removes a
// tenant's users and sessions explicitly. Flags are BIGINT 0/1, which both
// engines store and compare alike.
constexpr std::array<std::string_view, 4> kIdentity = {
    R"sql(CREATE TABLE users (
  tenant_id {text} NOT NULL,
  username {text} NOT NULL,
  roles_json {text} NOT NULL,
  password_hash {text} NOT NULL,
  password_changed_at BIGINT NOT NULL,
  password_history_json {text} NOT NULL,
  kerberos_principal {text} NOT NULL,
  totp_secret_sealed {bytes},
  totp_confirmed BIGINT NOT NULL,
  totp_last_step BIGINT NOT NULL,
  recovery_codes_json {text} NOT NULL,
  failed_count BIGINT NOT NULL,
  failed_window_start BIGINT NOT NULL,
  locked_until BIGINT NOT NULL,
  disabled BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, username)
))sql",
    // A Kerberos principal maps to at most one user. Partial, so the many
    // users without one ('') do not collide.
    R"sql(CREATE UNIQUE INDEX users_by_kerberos ON users (kerberos_principal) WHERE kerberos_principal <> '')sql",
    // A session belongs to one user and goes with it (the store also deletes
    // sessions explicitly, like every other child row).
    R"sql(CREATE TABLE sessions (
  token_hash {bytes} PRIMARY KEY,
  tenant_id {text} NOT NULL,
  username {text} NOT NULL,
  method {text} NOT NULL,
  restriction {text} NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  authenticated_at BIGINT NOT NULL,
  revoked_at BIGINT,
  FOREIGN KEY (tenant_id, username) REFERENCES users (tenant_id, username) ON DELETE CASCADE
))sql",
    // A user's sessions (revoke all, delete the user) and the foreign key's
    // cascade.
    R"sql(CREATE INDEX sessions_by_user ON sessions (tenant_id, username))sql",
};

// Migration 5: the lockbox — staff access requests (approved, a request is
// the grant) and the outbox of webhook notifications about them. A request
// belongs to its tenant (foreign key: creating one for a missing tenant is
// NotFound, and on PostgreSQL the insert's key-share lock waits for a
// concurrent DeleteTenant). Its approvals are one JSON text column, read and
// written whole with the request under its version. "expired" is never
// stored: it follows from expires_at / grant_ends_at and the reader's clock.
// The outbox id is the engine's own increasing key ({serial_pk}); outbox rows
// have no foreign key, and DeleteTenant removes them explicitly.
constexpr std::array<std::string_view, 5> kLockbox = {
    R"sql(CREATE TABLE access_requests (
  tenant_id {text} NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id {text} NOT NULL,
  requester {text} NOT NULL,
  permissions_json {text} NOT NULL,
  collections_json {text} NOT NULL,
  duration_s BIGINT NOT NULL,
  reason {text} NOT NULL,
  detail {text} NOT NULL,
  ticket {text} NOT NULL,
  status {text} NOT NULL,
  required_approvals BIGINT NOT NULL,
  approvals_json {text} NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  grant_starts_at BIGINT NOT NULL,
  grant_ends_at BIGINT NOT NULL,
  decided_by {text} NOT NULL,
  decided_at BIGINT NOT NULL,
  decision_reason {text} NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, id)
))sql",
    // ActiveGrants, on every staff request to tenant data: one index range
    // (tenant, requester, 'approved', grant_ends_at > now), grant_starts_at
    // checked on the few rows in it.
    R"sql(CREATE INDEX access_requests_active ON access_requests (tenant_id, requester, status, grant_ends_at))sql",
    // ListAccessRequests with a status filter, newest first (`id < ? ORDER BY
    // id DESC`); without one the primary key serves.
    R"sql(CREATE INDEX access_requests_by_status ON access_requests (tenant_id, status, id))sql",
    R"sql(CREATE TABLE notification_outbox (
  id {serial_pk},
  tenant_id {text} NOT NULL,
  url {text} NOT NULL,
  payload_json {text} NOT NULL,
  attempts BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  delivered_at BIGINT,
  last_error {text} NOT NULL
))sql",
    // DueNotifications: undelivered rows (delivered_at IS NULL) by
    // next_attempt_at.
    R"sql(CREATE INDEX notification_outbox_due ON notification_outbox (delivered_at, next_attempt_at))sql",
};

// Migration 6: DEK rotation. Each record version remembers which version of
// the tenant's data key encrypted it (rows written before this migration are
// under version 1, every tenant's first key), and `key_rotations` holds the
// progress of a tenant's background re-encryption: one row per tenant, the
// last rotation, its keyset cursor over (collection, record_id, version) and
// its counts, so a job resumes where it stopped after a crash or on another
// node. docs/formats/database.md.
constexpr std::array<std::string_view, 2> kKeyRotation = {
    R"sql(ALTER TABLE record_versions ADD COLUMN key_version BIGINT NOT NULL DEFAULT 1)sql",
    R"sql(CREATE TABLE key_rotations (
  tenant_id {text} PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  to_version BIGINT NOT NULL,
  state {text} NOT NULL,
  cursor_collection {text} NOT NULL,
  cursor_record_id {text} NOT NULL,
  cursor_version BIGINT NOT NULL,
  total BIGINT NOT NULL,
  done BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL
))sql",
};

// Migration 7: the tenants' wrapped keys move to the key store
// (docs/formats/keys.md), so no backup of the data store holds a key; the
// current data key version stays (writes are checked against it).
constexpr std::array<std::string_view, 2> kKeyStoreSplit = {
    R"sql(ALTER TABLE tenants DROP COLUMN wrapped_data_key)sql",
    R"sql(ALTER TABLE tenants DROP COLUMN wrapped_index_key)sql",
};

// Migration 8 (SQLite only): `audit_log` keyed by its rowid. Declared
// `seq BIGINT PRIMARY KEY`, SQLite kept the table in rowid order plus a
// separate unique index on `seq`: every appended entry was inserted twice.
// With `seq INTEGER PRIMARY KEY` the sequence number is the rowid (entries
// are numbered 0, 1, 2, … by kura, never by the engine). PostgreSQL already
// stores the table this way; it records the version and runs nothing.
constexpr std::array<std::string_view, 6> kAuditLogRowid = {
    R"sql(CREATE TABLE audit_log_by_seq (
  seq {seq_pk},
  at_ms BIGINT NOT NULL,
  tenant_id {text} NOT NULL,
  principal {text} NOT NULL,
  action {text} NOT NULL,
  resource {text} NOT NULL,
  outcome {text} NOT NULL,
  entry {bytes} NOT NULL,
  hash {bytes} NOT NULL
))sql",
    R"sql(INSERT INTO audit_log_by_seq (seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash)
SELECT seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash FROM audit_log ORDER BY seq)sql",
    R"sql(DROP TABLE audit_log)sql",
    R"sql(ALTER TABLE audit_log_by_seq RENAME TO audit_log)sql",
    R"sql(CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, seq))sql",
    R"sql(CREATE INDEX audit_log_by_principal ON audit_log (principal, seq))sql",
};

// Migration 9 (SQLite only): the record tables keyed by their primary keys
// alone (WITHOUT ROWID). Each was a rowid table plus a separate index on its
// primary key, so a new record was inserted into six b-trees for three rows
// (seven with the index by record); now into three (four). The same columns,
// rows, foreign keys and the one secondary index. The new tables are built
// beside the old ones, children pointing at the new parent; the old ones are
// dropped children first (nothing cascades), and the renames carry the
// children's foreign keys along to the new name. PostgreSQL stores tables in
// heaps with separate indexes either way; it records the version and runs
// nothing.
constexpr std::array<std::string_view, 13> kRecordTablesWithoutRowid = {
    R"sql(CREATE TABLE records_by_key (
  tenant_id {text} NOT NULL,
  collection {text} NOT NULL,
  id {text} NOT NULL,
  current_version BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  subject_hmac {bytes},
  PRIMARY KEY (tenant_id, collection, id),
  FOREIGN KEY (tenant_id, collection) REFERENCES collections (tenant_id, name) ON DELETE CASCADE
) {without_rowid})sql",
    R"sql(INSERT INTO records_by_key (tenant_id, collection, id, current_version, created_at, updated_at, subject_hmac)
SELECT tenant_id, collection, id, current_version, created_at, updated_at, subject_hmac FROM records)sql",
    R"sql(CREATE TABLE record_versions_by_key (
  tenant_id {text} NOT NULL,
  collection {text} NOT NULL,
  record_id {text} NOT NULL,
  version BIGINT NOT NULL,
  ciphertext {bytes} NOT NULL,
  created_at BIGINT NOT NULL,
  key_version BIGINT NOT NULL DEFAULT 1,
  PRIMARY KEY (tenant_id, collection, record_id, version),
  FOREIGN KEY (tenant_id, collection, record_id) REFERENCES records_by_key (tenant_id, collection, id) ON DELETE CASCADE
) {without_rowid})sql",
    R"sql(INSERT INTO record_versions_by_key (tenant_id, collection, record_id, version, ciphertext, created_at, key_version)
SELECT tenant_id, collection, record_id, version, ciphertext, created_at, key_version FROM record_versions)sql",
    R"sql(CREATE TABLE record_index_by_key (
  tenant_id {text} NOT NULL,
  collection {text} NOT NULL,
  field {text} NOT NULL,
  hmac {bytes} NOT NULL,
  record_id {text} NOT NULL,
  PRIMARY KEY (tenant_id, collection, field, hmac, record_id),
  FOREIGN KEY (tenant_id, collection, record_id) REFERENCES records_by_key (tenant_id, collection, id) ON DELETE CASCADE
) {without_rowid})sql",
    R"sql(INSERT INTO record_index_by_key (tenant_id, collection, field, hmac, record_id)
SELECT tenant_id, collection, field, hmac, record_id FROM record_index)sql",
    R"sql(DROP TABLE record_index)sql",
    R"sql(DROP TABLE record_versions)sql",
    R"sql(DROP TABLE records)sql",
    R"sql(ALTER TABLE records_by_key RENAME TO records)sql",
    R"sql(ALTER TABLE record_versions_by_key RENAME TO record_versions)sql",
    R"sql(ALTER TABLE record_index_by_key RENAME TO record_index)sql",
    R"sql(CREATE INDEX record_index_by_record ON record_index (tenant_id, collection, record_id))sql",
};

// Migration 10 (SQLite only): the trail indexes by block (audit_sql.h says
// why). The block rows of the entries already logged are derived from them;
// the two per-entry indexes go. PostgreSQL keeps its indexes (its appends
// run on the database server, in one round trip per batch).
static_assert(kAuditBlockShift == 6, "migration 10 numbers the blocks as seq >> 6");
constexpr std::array<std::string_view, 6> kAuditBlockIndex = {
    R"sql(CREATE TABLE audit_tenant_blocks (
  tenant_id {text} NOT NULL,
  block BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, block)
) {without_rowid})sql",
    R"sql(CREATE TABLE audit_principal_blocks (
  principal {text} NOT NULL,
  block BIGINT NOT NULL,
  PRIMARY KEY (principal, block)
) {without_rowid})sql",
    R"sql(INSERT INTO audit_tenant_blocks (tenant_id, block) SELECT DISTINCT tenant_id, seq >> 6 FROM audit_log)sql",
    R"sql(INSERT INTO audit_principal_blocks (principal, block) SELECT DISTINCT principal, seq >> 6 FROM audit_log)sql",
    R"sql(DROP INDEX audit_log_by_tenant)sql",
    R"sql(DROP INDEX audit_log_by_principal)sql",
};

constexpr std::array<Migration, 10> kMigrations = {
    Migration{1, "initial", kInitial},
    Migration{2, "audit_log", kAuditLog},
    Migration{3, "leases", kLeases},
    Migration{4, "identity", kIdentity},
    Migration{5, "lockbox", kLockbox},
    Migration{6, "key_rotation", kKeyRotation},
    Migration{7, "key_store_split", kKeyStoreSplit},
    Migration{8, "audit_log_rowid", kAuditLogRowid, Dialect::kSqlite},
    Migration{9, "record_tables_without_rowid", kRecordTablesWithoutRowid, Dialect::kSqlite},
    Migration{10, "audit_block_index", kAuditBlockIndex, Dialect::kSqlite},
};

std::string MaxVersionSql(const std::string& history) { return "SELECT COALESCE(MAX(version), 0) FROM " + history; }

Status CheckNotNewer(std::int64_t current, std::int64_t latest) {
  if (current <= latest) return Status::Ok();
  return FailedPreconditionError("database schema version " + std::to_string(current) +
                                 " is newer than this kura binary supports (" + std::to_string(latest) +
                                 "); run a newer kura or restore a matching backup");
}

}  // namespace

std::span<const Migration> AllMigrations() { return kMigrations; }

std::int64_t LatestSchemaVersion() { return kMigrations.back().version; }

std::string RenderSql(std::string_view sql, Dialect dialect) {
  // The per-engine type map: the one place engine type names differ.
  static constexpr std::string_view kBytes = "{bytes}";
  static constexpr std::string_view kText = "{text}";
  static constexpr std::string_view kSerialPk = "{serial_pk}";
  static constexpr std::string_view kSeqPk = "{seq_pk}";
  static constexpr std::string_view kWithoutRowid = "{without_rowid}";
  const bool sqlite = dialect == Dialect::kSqlite;
  std::string_view bytes_type = sqlite ? "BLOB" : "BYTEA";
  // SQLite compares TEXT bytewise (BINARY). PostgreSQL compares by the
  // database's collation, which may be a natural-language one; "C" makes ids
  // order and compare bytewise there too, so keyset pagination
  // (`id > $n ORDER BY id`) walks the same order in both engines and can use
  // the primary-key index.
  std::string_view text_type = sqlite ? "TEXT" : "TEXT COLLATE \"C\"";
  // An increasing 64-bit key the engine assigns on insert and never hands
  // out twice. SQLite: INTEGER PRIMARY KEY is the rowid; AUTOINCREMENT keeps
  // the largest id ever used (sqlite_sequence), so deleting the newest rows
  // does not let the next insert reuse their ids — a worker still holding
  // an old id must never update a newer row. PostgreSQL: a standard identity
  // column (BIGINT from a sequence, which never goes back). No single
  // spelling works in both.
  std::string_view serial_pk =
      sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
  // A key kura assigns in increasing order. SQLite: the rowid itself, so
  // the table is its own index; PostgreSQL: an ordinary primary key.
  std::string_view seq_pk = sqlite ? "INTEGER PRIMARY KEY" : "BIGINT PRIMARY KEY";
  // A table stored as one b-tree on its primary key (after the closing
  // parenthesis). SQLite: WITHOUT ROWID; PostgreSQL has no such choice.
  std::string_view without_rowid = sqlite ? "WITHOUT ROWID" : "";
  std::string out;
  out.reserve(sql.size());
  for (std::size_t i = 0; i < sql.size();) {
    if (sql.compare(i, kBytes.size(), kBytes) == 0) {
      out += bytes_type;
      i += kBytes.size();
    } else if (sql.compare(i, kText.size(), kText) == 0) {
      out += text_type;
      i += kText.size();
    } else if (sql.compare(i, kSerialPk.size(), kSerialPk) == 0) {
      out += serial_pk;
      i += kSerialPk.size();
    } else if (sql.compare(i, kSeqPk.size(), kSeqPk) == 0) {
      out += seq_pk;
      i += kSeqPk.size();
    } else if (sql.compare(i, kWithoutRowid.size(), kWithoutRowid) == 0) {
      out += without_rowid;
      i += kWithoutRowid.size();
    } else {
      out += sql[i++];
    }
  }
  return out;
}

Result<std::int64_t> ApplyMigrations(MigrationTarget& target, std::int64_t now_unix,
                                     std::span<const Migration> migrations, std::string_view history_table) {
  if (migrations.empty()) return InternalError("no schema migrations defined");
  // A compile-time name of [a-z_] (callers pass constants), safe to inline.
  const std::string history(history_table);
  const std::int64_t latest = migrations.back().version;
  KURA_RETURN_IF_ERROR(target.Execute("CREATE TABLE IF NOT EXISTS " + history +
                                      " (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"));
  KURA_ASSIGN_OR_RETURN(std::int64_t current, target.QueryInt(MaxVersionSql(history)));
  KURA_RETURN_IF_ERROR(CheckNotNewer(current, latest));
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    KURA_RETURN_IF_ERROR(target.BeginExclusive());
    // Another process may have migrated between our read and the lock.
    auto applied = target.QueryInt("SELECT COUNT(*) FROM " + history + " WHERE version = " +
                                   std::to_string(m.version));
    if (!applied.ok()) {
      target.Rollback();
      return applied.status();
    }
    if (*applied != 0) {
      target.Rollback();
      current = m.version;
      continue;
    }
    Status s;
    // Recorded on every engine; an engine-only migration's statements run
    // only on its engine.
    if (!m.only_on.has_value() || *m.only_on == target.dialect()) {
      for (std::string_view stmt : m.statements) {
        s = target.Execute(RenderSql(stmt, target.dialect()));
        if (!s.ok()) break;
      }
    }
    if (s.ok()) {
      // name is a compile-time constant of [a-z0-9_], safe to inline.
      s = target.Execute("INSERT INTO " + history + " (version, name, applied_at) VALUES (" +
                         std::to_string(m.version) + ", '" + std::string(m.name) + "', " +
                         std::to_string(now_unix) + ")");
    }
    if (s.ok()) s = target.Commit();
    if (!s.ok()) {
      target.Rollback();
      return Status(s.code(), "schema migration " + std::to_string(m.version) + " (" + std::string(m.name) +
                                  ") failed: " + s.message());
    }
    current = m.version;
  }
  return current;
}

Result<std::int64_t> ReadSchemaVersion(MigrationTarget& target, std::span<const Migration> migrations,
                                       std::string_view history_table) {
  if (migrations.empty()) return InternalError("no schema migrations defined");
  // A compile-time name of [a-z_] (callers pass constants), safe to inline.
  const std::string history(history_table);
  // Whether the history table exists, by name, as an unqualified query
  // would find it.
  const std::string exists_sql =
      target.dialect() == Dialect::kSqlite
          ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" + history + "'"
          : "SELECT count(*) FROM (SELECT to_regclass('" + history + "') AS t) r WHERE t IS NOT NULL";
  KURA_ASSIGN_OR_RETURN(std::int64_t exists, target.QueryInt(exists_sql));
  if (exists == 0) return FailedPreconditionError("the database holds no kura schema");
  KURA_ASSIGN_OR_RETURN(std::int64_t current, target.QueryInt(MaxVersionSql(history)));
  if (current < 1) return FailedPreconditionError("the database holds no kura schema");
  KURA_RETURN_IF_ERROR(CheckNotNewer(current, migrations.back().version));
  return current;
}

}  // namespace kura::store
