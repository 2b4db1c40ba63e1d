// The SQLite backend of Store.
//
// Writes: one writer thread owns the only write connection. Callers enqueue an
// operation and block; the writer takes up to max_batch queued operations,
// runs them in one transaction, each inside its own SAVEPOINT (so a failing
// operation, e.g. a version conflict, rolls back alone; consecutive record
// creates share one, or none at the start of the transaction, see RunGroup),
// and COMMITs once. With
// synchronous=FULL that single commit is the single fsync every operation of
// the batch waits for: throughput grows with concurrency instead of being
// capped at one fsync per write.
//
// Audit log: the writer thread also holds the chain's head (next sequence
// number, last entry hash) in memory, loaded at open from audit_head. An
// operation's audit entry is linked and inserted in the operation's own
// savepoint right after its change succeeded, so the two commit together; the
// audit_head row is rewritten once per batch, before COMMIT. Whenever a
// transaction is rolled back as a whole, the in-memory head is put back and
// re-read from the database at the start of the next batch.
//
// Reads: a pool of read-only connections. In WAL mode readers never block the
// writer or each other, and each statement starts a fresh snapshot that
// includes every commit that finished before it, so a read sees every write
// that returned before the read started.
#include "store/sqlite_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "store/audit_sql.h"
#include "store/identity_internal.h"
#include "store/lockbox_internal.h"
#include "store/migrations.h"
#include "store/record_cache.h"
#include "store/sqlite_internal.h"
#include "store/wake_flag_internal.h"

namespace kura::store {
namespace {

using sqlite::Connection;
using sqlite::Statement;

// --- SQL. Portable to PostgreSQL except for the transaction-control lines
// marked SQLite. Positional `?` parameters are bound in order of appearance
// (a PostgreSQL backend numbers them $1, $2, …). Constants have static
// storage: the per-connection statement cache is keyed by their address.

// Transaction control (SQLite): IMMEDIATE takes the write lock at BEGIN, so a
// batch never fails half-way on lock upgrade.
constexpr char kBegin[] = "BEGIN IMMEDIATE";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";
constexpr char kSavepoint[] = "SAVEPOINT op";
constexpr char kRelease[] = "RELEASE SAVEPOINT op";
constexpr char kRollbackTo[] = "ROLLBACK TO SAVEPOINT op";
constexpr char kGroupSavepoint[] = "SAVEPOINT ops";
constexpr char kGroupRelease[] = "RELEASE SAVEPOINT ops";
constexpr char kGroupRollbackTo[] = "ROLLBACK TO SAVEPOINT ops";

constexpr char kGetMeta[] = "SELECT value FROM meta WHERE name = ?";
constexpr char kPutMeta[] =
    "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
constexpr char kInsertMeta[] = "INSERT INTO meta (name, value) VALUES (?, ?)";

constexpr char kInsertTenant[] =
    "INSERT INTO tenants (id, name, region, created_at, data_key_version) "
    "VALUES (?, ?, ?, ?, ?)";
constexpr char kGetTenant[] =
    "SELECT id, name, region, created_at, data_key_version "
    "FROM tenants WHERE id = ?";
constexpr char kListTenants[] =
    "SELECT id, name, region, created_at, data_key_version "
    "FROM tenants WHERE id > ? ORDER BY id LIMIT ?";
constexpr char kTenantExists[] = "SELECT 1 FROM tenants WHERE id = ?";
// Children first, so no delete depends on ON DELETE CASCADE being enabled.
constexpr const char* kDeleteTenantRows[] = {
    "DELETE FROM record_index WHERE tenant_id = ?",
    "DELETE FROM record_versions WHERE tenant_id = ?",
    "DELETE FROM records WHERE tenant_id = ?",
    "DELETE FROM collections WHERE tenant_id = ?",
    "DELETE FROM roles WHERE tenant_id = ?",
    "DELETE FROM api_keys WHERE tenant_id = ?",
    // Users before their sessions: see DeleteUser.
    "DELETE FROM users WHERE tenant_id = ?",
    "DELETE FROM sessions WHERE tenant_id = ?",
    // Lockbox: requests (grants) and their notifications, delivered or not.
    "DELETE FROM access_requests WHERE tenant_id = ?",
    "DELETE FROM notification_outbox WHERE tenant_id = ?",
    "DELETE FROM key_rotations WHERE tenant_id = ?",
    "DELETE FROM tenants WHERE id = ?",
};

constexpr char kCollectionExists[] = "SELECT 1 FROM collections WHERE tenant_id = ? AND name = ?";
constexpr char kUpsertCollection[] =
    "INSERT INTO collections (tenant_id, name, schema_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant_id, name) DO UPDATE SET schema_json = excluded.schema_json, "
    "updated_at = excluded.updated_at";
constexpr char kGetCollection[] =
    "SELECT tenant_id, name, schema_json, created_at, updated_at FROM collections "
    "WHERE tenant_id = ? AND name = ?";
constexpr char kListCollections[] =
    "SELECT tenant_id, name, schema_json, created_at, updated_at FROM collections "
    "WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?";

constexpr char kInsertRecord[] =
    "INSERT INTO records (tenant_id, collection, id, current_version, created_at, updated_at, subject_hmac) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";
// The compare-and-set: only the expected current version is replaced.
constexpr char kCasRecord[] =
    "UPDATE records SET current_version = ?, updated_at = ?, subject_hmac = ? "
    "WHERE tenant_id = ? AND collection = ? AND id = ? AND current_version = ?";
constexpr char kCurrentVersion[] =
    "SELECT current_version FROM records WHERE tenant_id = ? AND collection = ? AND id = ?";
constexpr char kInsertVersion[] =
    "INSERT INTO record_versions (tenant_id, collection, record_id, version, ciphertext, created_at, key_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";
// The data key version a record write must be sealed under (SQLite serialises
// writers, so what this reads holds until the write commits).
constexpr char kDataKeyVersion[] = "SELECT data_key_version FROM tenants WHERE id = ?";
constexpr char kRaiseDataKeyVersion[] =
    "UPDATE tenants SET data_key_version = ?1 WHERE id = ?2 AND data_key_version < ?1";
constexpr char kPruneVersions[] =
    "DELETE FROM record_versions WHERE tenant_id = ? AND collection = ? AND record_id = ? AND version <= ?";
// A field listed twice with the same value is one entry, not a conflict.
constexpr char kInsertIndex[] =
    "INSERT INTO record_index (tenant_id, collection, field, hmac, record_id) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING";
constexpr char kDeleteIndex[] = "DELETE FROM record_index WHERE tenant_id = ? AND collection = ? AND record_id = ?";
constexpr char kDeleteVersions[] =
    "DELETE FROM record_versions WHERE tenant_id = ? AND collection = ? AND record_id = ?";
constexpr char kDeleteRecord[] = "DELETE FROM records WHERE tenant_id = ? AND collection = ? AND id = ?";
constexpr char kGetCurrentRecord[] =
    "SELECT r.current_version, r.created_at, v.version, v.ciphertext, v.created_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = ? AND r.collection = ? AND r.id = ?";
constexpr char kGetRecordVersion[] =
    "SELECT r.current_version, r.created_at, v.version, v.ciphertext, v.created_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id "
    "WHERE r.tenant_id = ? AND r.collection = ? AND r.id = ? AND v.version = ?";
constexpr char kListVersions[] =
    "SELECT version, created_at FROM record_versions WHERE tenant_id = ? AND collection = ? AND record_id = ? "
    "ORDER BY version DESC";
constexpr char kListRecords[] =
    "SELECT r.id, r.current_version, r.created_at, v.ciphertext, v.created_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = ? AND r.collection = ? AND r.id > ? ORDER BY r.id LIMIT ?";
constexpr char kFindRecords[] =
    "SELECT r.id, r.current_version, r.created_at, v.ciphertext, v.created_at, v.key_version "
    "FROM record_index i "
    "JOIN records r ON r.tenant_id = i.tenant_id AND r.collection = i.collection AND r.id = i.record_id "
    "JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE i.tenant_id = ? AND i.collection = ? AND i.field = ? AND i.hmac = ? AND i.record_id > ? "
    "ORDER BY i.record_id LIMIT ?";

// DEK rotation. The scan walks the primary key from the cursor (a row-value
// comparison both engines plan as an index range) and filters key_version on
// the way: rows already re-encrypted cost a key comparison, not a fetch.
constexpr char kScanBelowKey[] =
    "SELECT collection, record_id, version, key_version, ciphertext FROM record_versions "
    "WHERE tenant_id = ? AND (collection, record_id, version) > (?, ?, ?) AND key_version < ? "
    "ORDER BY collection, record_id, version LIMIT ?";
constexpr char kCountBelowKey[] =
    "SELECT COUNT(*) FROM record_versions WHERE tenant_id = ? AND key_version < ?";
// Compare-and-set on (row, old key version): a version pruned, deleted or
// already rewritten meanwhile matches nothing.
constexpr char kRewriteCiphertext[] =
    "UPDATE record_versions SET ciphertext = ?, key_version = ? "
    "WHERE tenant_id = ? AND collection = ? AND record_id = ? AND version = ? AND key_version = ?";
constexpr char kAdvanceRotation[] =
    "UPDATE key_rotations SET cursor_collection = ?, cursor_record_id = ?, cursor_version = ?, done = done + ? "
    "WHERE tenant_id = ? AND to_version = ? AND state = 'running'";
constexpr char kPutRotation[] =
    "INSERT INTO key_rotations (tenant_id, to_version, state, cursor_collection, cursor_record_id, cursor_version, "
    "total, done, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant_id) DO UPDATE SET to_version = excluded.to_version, state = excluded.state, "
    "cursor_collection = excluded.cursor_collection, cursor_record_id = excluded.cursor_record_id, "
    "cursor_version = excluded.cursor_version, total = excluded.total, done = excluded.done, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at";
constexpr char kGetRotation[] =
    "SELECT tenant_id, to_version, state, cursor_collection, cursor_record_id, cursor_version, total, done, "
    "started_at, finished_at FROM key_rotations WHERE tenant_id = ?";
constexpr char kListRunningRotations[] =
    "SELECT tenant_id, to_version, state, cursor_collection, cursor_record_id, cursor_version, total, done, "
    "started_at, finished_at FROM key_rotations WHERE state = 'running' ORDER BY tenant_id";

constexpr char kRoleExists[] = "SELECT 1 FROM roles WHERE tenant_id = ? AND name = ?";
constexpr char kUpsertRole[] =
    "INSERT INTO roles (tenant_id, name, permissions_json, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (tenant_id, name) DO UPDATE SET permissions_json = excluded.permissions_json, "
    "updated_at = excluded.updated_at";
constexpr char kGetRole[] =
    "SELECT tenant_id, name, permissions_json, updated_at FROM roles WHERE tenant_id = ? AND name = ?";
constexpr char kListRoles[] =
    "SELECT tenant_id, name, permissions_json, updated_at FROM roles WHERE tenant_id = ? ORDER BY name";
constexpr char kDeleteRole[] = "DELETE FROM roles WHERE tenant_id = ? AND name = ?";

constexpr char kInsertApiKey[] =
    "INSERT INTO api_keys (id, tenant_id, name, role, key_hash, created_at, expires_at, revoked_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kFindApiKey[] =
    "SELECT id, tenant_id, name, role, key_hash, created_at, expires_at, revoked_at FROM api_keys "
    "WHERE key_hash = ?";
constexpr char kListApiKeys[] =
    "SELECT id, tenant_id, name, role, key_hash, created_at, expires_at, revoked_at FROM api_keys "
    "WHERE tenant_id = ? ORDER BY id";
// The first revocation time stands; revoking again changes nothing.
constexpr char kRevokeApiKey[] =
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND id = ?";

// Users and sessions. Every column of a user, in the order ReadUser reads.
#define KURA_USER_COLUMNS                                                                                      \
  "tenant_id, username, roles_json, password_hash, password_changed_at, password_history_json, "              \
  "kerberos_principal, totp_secret_sealed, totp_confirmed, totp_last_step, recovery_codes_json, failed_count, " \
  "failed_window_start, locked_until, disabled, created_at, updated_at, version"
constexpr char kInsertUser[] =
    "INSERT INTO users (" KURA_USER_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kGetUser[] = "SELECT " KURA_USER_COLUMNS " FROM users WHERE tenant_id = ? AND username = ?";
constexpr char kFindStaffByKerberos[] =
    "SELECT " KURA_USER_COLUMNS " FROM users WHERE kerberos_principal = ? AND tenant_id = ''";
constexpr char kListUsers[] =
    "SELECT " KURA_USER_COLUMNS " FROM users WHERE tenant_id = ? AND username > ? ORDER BY username LIMIT ?";
#undef KURA_USER_COLUMNS
// The compare-and-set on version; the key and created_at never change.
constexpr char kCasUser[] =
    "UPDATE users SET roles_json = ?, password_hash = ?, password_changed_at = ?, password_history_json = ?, "
    "kerberos_principal = ?, totp_secret_sealed = ?, totp_confirmed = ?, totp_last_step = ?, "
    "recovery_codes_json = ?, failed_count = ?, failed_window_start = ?, locked_until = ?, disabled = ?, "
    "updated_at = ?, version = ? "
    "WHERE tenant_id = ? AND username = ? AND version = ?";
constexpr char kUserVersion[] = "SELECT version FROM users WHERE tenant_id = ? AND username = ?";
constexpr char kDeleteUser[] = "DELETE FROM users WHERE tenant_id = ? AND username = ?";
constexpr char kDeleteUserSessions[] = "DELETE FROM sessions WHERE tenant_id = ? AND username = ?";

constexpr char kInsertSession[] =
    "INSERT INTO sessions (token_hash, tenant_id, username, method, restriction, created_at, last_seen_at, "
    "expires_at, authenticated_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kFindSession[] =
    "SELECT token_hash, tenant_id, username, method, restriction, created_at, last_seen_at, expires_at, "
    "authenticated_at, revoked_at FROM sessions WHERE token_hash = ?";
constexpr char kSessionExists[] = "SELECT 1 FROM sessions WHERE token_hash = ?";
// Only ever forward: concurrent requests of one session may finish in any order.
constexpr char kTouchSession[] = "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?";
constexpr char kUpdateSession[] =
    "UPDATE sessions SET method = ?, restriction = ?, authenticated_at = ? WHERE token_hash = ?";
constexpr char kRevokeSession[] = "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL";
constexpr char kRevokeUserSessions[] =
    "UPDATE sessions SET revoked_at = ? WHERE tenant_id = ? AND username = ? AND revoked_at IS NULL";
constexpr char kPurgeEndedSessions[] =
    "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expires_at < ?1 OR "
    "revoked_at < ?1 LIMIT ?2)";

// Lockbox. Every column of an access request, in the order
// ReadAccessRequest reads.
#define KURA_REQUEST_COLUMNS                                                                                   \
  "tenant_id, id, requester, permissions_json, collections_json, duration_s, reason, detail, ticket, status, " \
  "required_approvals, approvals_json, created_at, expires_at, grant_starts_at, grant_ends_at, decided_by, "   \
  "decided_at, decision_reason, version"
constexpr char kInsertAccessRequest[] =
    "INSERT INTO access_requests (" KURA_REQUEST_COLUMNS ") "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kGetAccessRequest[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = ? AND id = ?";
// Newest first: ids grow with time, so the keyset runs downwards (`id < ?`
// for the page after `after`). One text per combination of (first page or
// not) × (status filter or not), so each uses its index range directly.
constexpr char kListAccessRequests[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = ? ORDER BY id DESC LIMIT ?";
constexpr char kListAccessRequestsAfter[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?";
constexpr char kListAccessRequestsByStatus[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = ? AND status = ? "
    "ORDER BY id DESC LIMIT ?";
constexpr char kListAccessRequestsByStatusAfter[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = ? AND status = ? AND id < ? "
    "ORDER BY id DESC LIMIT ?";
// The grant window is half-open: it starts at grant_starts_at and is over
// at grant_ends_at.
constexpr char kActiveGrants[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests "
    "WHERE tenant_id = ? AND requester = ? AND status = 'approved' AND grant_ends_at > ? AND grant_starts_at <= ? "
    "ORDER BY id";
#undef KURA_REQUEST_COLUMNS
// The compare-and-set on version; the key, requester and created_at never
// change.
constexpr char kCasAccessRequest[] =
    "UPDATE access_requests SET permissions_json = ?, collections_json = ?, duration_s = ?, reason = ?, "
    "detail = ?, ticket = ?, status = ?, required_approvals = ?, approvals_json = ?, expires_at = ?, "
    "grant_starts_at = ?, grant_ends_at = ?, decided_by = ?, decided_at = ?, decision_reason = ?, version = ? "
    "WHERE tenant_id = ? AND id = ? AND version = ?";
constexpr char kAccessRequestVersion[] = "SELECT version FROM access_requests WHERE tenant_id = ? AND id = ?";

#define KURA_OUTBOX_COLUMNS "id, tenant_id, url, payload_json, attempts, next_attempt_at, delivered_at, last_error"
// The id is the engine's (migrations.cc, {serial_pk}).
constexpr char kInsertNotification[] =
    "INSERT INTO notification_outbox (tenant_id, url, payload_json, attempts, next_attempt_at, delivered_at, "
    "last_error) VALUES (?, ?, ?, ?, ?, ?, ?)";
constexpr char kDueNotifications[] =
    "SELECT " KURA_OUTBOX_COLUMNS " FROM notification_outbox "
    "WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?";
#undef KURA_OUTBOX_COLUMNS
constexpr char kUpdateNotification[] =
    "UPDATE notification_outbox SET attempts = ?, next_attempt_at = ?, delivered_at = ?, last_error = ? "
    "WHERE id = ?";

// Audit log. The writer thread holds the chain's head in memory; these keep
// the audit_head row (the head as of the last commit) in step with it.
constexpr char kInsertAudit[] =
    "INSERT INTO audit_log (seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
// One row per key and block (audit_sql.h); the first entry of each inserts it.
constexpr char kInsertTenantBlock[] = "INSERT OR IGNORE INTO audit_tenant_blocks (tenant_id, block) VALUES (?, ?)";
constexpr char kInsertPrincipalBlock[] =
    "INSERT OR IGNORE INTO audit_principal_blocks (principal, block) VALUES (?, ?)";
constexpr char kReadAuditHead[] = "SELECT next_seq, last_hash FROM audit_head WHERE id = 1";
constexpr char kLastAuditRow[] = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
// An upsert, so a head row that went missing is put back.
constexpr char kWriteAuditHead[] =
    "INSERT INTO audit_head (id, next_seq, last_hash) VALUES (1, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET next_seq = excluded.next_seq, last_hash = excluded.last_hash";
constexpr char kAuditSize[] = "SELECT next_seq FROM audit_head WHERE id = 1";
constexpr char kReadAudit[] =
    "SELECT seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash FROM audit_log "
    "WHERE seq >= ? AND seq < ? ORDER BY seq";
constexpr char kAuditSeqBounds[] = "SELECT min(seq), max(seq) FROM audit_log";
constexpr char kAuditLeafHashes[] = "SELECT seq, hash FROM audit_log WHERE seq >= ? AND seq < ? ORDER BY seq";
constexpr char kInsertCheckpoint[] =
    "INSERT INTO audit_checkpoints (tree_size, at_ms, root, note, signature) VALUES (?, ?, ?, ?, ?)";
constexpr char kListCheckpoints[] =
    "SELECT tree_size, at_ms, root, note, signature FROM audit_checkpoints WHERE tree_size > ? "
    "ORDER BY tree_size LIMIT ?";
constexpr char kLatestCheckpoint[] =
    "SELECT tree_size, at_ms, root, note, signature FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";

// Leases: the statement of postgres_store.cc, with the host's clock passed in
// as ?4 (an SQLite database has one node, so its clock is the only one).
constexpr char kHoldLease[] =
    "INSERT INTO leases (name, holder, expires_at_ms) VALUES (?1, ?2, ?4 + ?3) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms "
    "WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= ?4 "
    "RETURNING holder";
constexpr char kReleaseLease[] = "DELETE FROM leases WHERE name = ? AND holder = ?";
constexpr char kListLeases[] = "SELECT name, holder, expires_at_ms - ? FROM leases ORDER BY name";

std::int64_t NowUnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// WAL frames (pages) written since the last checkpoint request after which
// the background thread checkpoints (about 4 MiB), and the WAL size after which
// the writer does it itself because the background thread fell behind (about
// 128 MiB). Under steady appends the same hot pages (the audit log's and the
// indexes' rightmost leaves) are rewritten by every commit; a checkpoint
// copies each page once however often it changed, so checkpointing after
// every commit would copy and fsync far more per commit. Much larger
// checkpoints, though, write the database file in bursts that the commits'
// own WAL fsyncs queue behind: with 16 MiB the audited GET's p99 was 15–17 ms,
// with 4 MiB 11–12 ms, at the same throughput (docs/performance.md).
constexpr int kCheckpointFrames = 1000;
constexpr int kWriterCheckpointFrames = 32000;
// Batches that try to finish a background checkpoint, and how long each
// waits for readers (CatchUpCheckpoint).
constexpr int kCatchUpTries = 16;
constexpr int kCatchUpWaits = 20;
constexpr std::chrono::microseconds kCatchUpWait{50};

constexpr int kDefaultPageLimit = 50;
constexpr int kMaxPageLimit = 1000;
// Idle read connections kept open; more are opened under load and closed after.
constexpr std::size_t kMaxIdleReaders = 16;

int PageLimit(const PageRequest& page) {
  if (page.limit <= 0) return kDefaultPageLimit;
  return page.limit > kMaxPageLimit ? kMaxPageLimit : page.limit;
}

int PageLimit(int limit) {
  if (limit <= 0) return kDefaultPageLimit;
  return limit > kMaxPageLimit ? kMaxPageLimit : limit;
}

// Columns: kAuditColumns (audit_sql.h).
AuditRow ReadAuditRow(const Statement& st) {
  AuditRow r;
  r.seq = st.ColumnInt(0);
  r.at_ms = st.ColumnInt(1);
  r.tenant_id = st.ColumnText(2);
  r.principal = st.ColumnText(3);
  r.action = st.ColumnText(4);
  r.resource = st.ColumnText(5);
  r.outcome = st.ColumnText(6);
  r.entry = st.ColumnBytes(7);
  r.hash = st.ColumnBytes(8);
  return r;
}

AuditCheckpointRow ReadCheckpoint(const Statement& st) {
  AuditCheckpointRow c;
  c.tree_size = st.ColumnInt(0);
  c.at_ms = st.ColumnInt(1);
  c.root = st.ColumnBytes(2);
  c.note = st.ColumnText(3);
  c.signature = st.ColumnBytes(4);
  return c;
}

// An entry that could not be appended fails its operation as Unavailable:
// whatever the cause (full disk, a duplicate sequence number), it is never
// the caller's fault, and a caller must not read it as "record exists" or
// "not found". Internal (a malformed entry) and DataLoss stay what they are.
Status AuditAppendError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
    case StatusCode::kUnavailable:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return s;
    default:
      return UnavailableError("audit log: cannot append the entry: " + s.message());
  }
}

// Binds a byte string or NULL when empty (subject_hmac, nullable).
void BindOptionalBytes(Statement& st, int index, ByteView value) {
  if (value.empty()) {
    st.BindNull(index);
  } else {
    st.Bind(index, value);
  }
}

void BindOptionalInt(Statement& st, int index, const std::optional<std::int64_t>& value) {
  if (value.has_value()) {
    st.Bind(index, *value);
  } else {
    st.BindNull(index);
  }
}

TenantRow ReadTenant(const Statement& st) {
  TenantRow t;
  t.id = st.ColumnText(0);
  t.name = st.ColumnText(1);
  t.region = st.ColumnText(2);
  t.created_at = st.ColumnInt(3);
  t.data_key_version = st.ColumnInt(4);
  return t;
}

CollectionRow ReadCollection(const Statement& st) {
  CollectionRow c;
  c.tenant_id = st.ColumnText(0);
  c.name = st.ColumnText(1);
  c.schema_json = st.ColumnText(2);
  c.created_at = st.ColumnInt(3);
  c.updated_at = st.ColumnInt(4);
  return c;
}

RoleRow ReadRole(const Statement& st) {
  RoleRow r;
  r.tenant_id = st.ColumnText(0);
  r.name = st.ColumnText(1);
  r.permissions_json = st.ColumnText(2);
  r.updated_at = st.ColumnInt(3);
  return r;
}

ApiKeyRow ReadApiKey(const Statement& st) {
  ApiKeyRow k;
  k.id = st.ColumnText(0);
  k.tenant_id = st.ColumnText(1);
  k.name = st.ColumnText(2);
  k.role = st.ColumnText(3);
  k.key_hash = st.ColumnBytes(4);
  k.created_at = st.ColumnInt(5);
  if (!st.ColumnIsNull(6)) k.expires_at = st.ColumnInt(6);
  if (!st.ColumnIsNull(7)) k.revoked_at = st.ColumnInt(7);
  return k;
}

// Columns: KURA_USER_COLUMNS.
UserRow ReadUser(const Statement& st) {
  UserRow u;
  u.tenant_id = st.ColumnText(0);
  u.username = st.ColumnText(1);
  u.roles_json = st.ColumnText(2);
  u.password_hash = st.ColumnText(3);
  u.password_changed_at = st.ColumnInt(4);
  u.password_history_json = st.ColumnText(5);
  u.kerberos_principal = st.ColumnText(6);
  u.totp_secret_sealed = st.ColumnBytes(7);  // NULL: not enrolled, empty
  u.totp_confirmed = st.ColumnInt(8) != 0;
  u.totp_last_step = st.ColumnInt(9);
  u.recovery_codes_json = st.ColumnText(10);
  u.failed_count = static_cast<int>(st.ColumnInt(11));
  u.failed_window_start = st.ColumnInt(12);
  u.locked_until = st.ColumnInt(13);
  u.disabled = st.ColumnInt(14) != 0;
  u.created_at = st.ColumnInt(15);
  u.updated_at = st.ColumnInt(16);
  u.version = st.ColumnInt(17);
  return u;
}

SessionRow ReadSession(const Statement& st) {
  SessionRow s;
  s.token_hash = st.ColumnBytes(0);
  s.tenant_id = st.ColumnText(1);
  s.username = st.ColumnText(2);
  s.method = st.ColumnText(3);
  s.restriction = st.ColumnText(4);
  s.created_at = st.ColumnInt(5);
  s.last_seen_at = st.ColumnInt(6);
  s.expires_at = st.ColumnInt(7);
  s.authenticated_at = st.ColumnInt(8);
  if (!st.ColumnIsNull(9)) s.revoked_at = st.ColumnInt(9);
  return s;
}

// Columns: KURA_REQUEST_COLUMNS. DataLoss when the stored approvals are damaged.
Result<AccessRequestRow> ReadAccessRequest(const Statement& st) {
  AccessRequestRow r;
  r.tenant_id = st.ColumnText(0);
  r.id = st.ColumnText(1);
  r.requester = st.ColumnText(2);
  r.permissions_json = st.ColumnText(3);
  r.collections_json = st.ColumnText(4);
  r.duration_s = st.ColumnInt(5);
  r.reason = st.ColumnText(6);
  r.detail = st.ColumnText(7);
  r.ticket = st.ColumnText(8);
  r.status = st.ColumnText(9);
  r.required_approvals = static_cast<int>(st.ColumnInt(10));
  KURA_ASSIGN_OR_RETURN(r.approvals, DecodeApprovals(st.ColumnText(11)));
  r.created_at = st.ColumnInt(12);
  r.expires_at = st.ColumnInt(13);
  r.grant_starts_at = st.ColumnInt(14);
  r.grant_ends_at = st.ColumnInt(15);
  r.decided_by = st.ColumnText(16);
  r.decided_at = st.ColumnInt(17);
  r.decision_reason = st.ColumnText(18);
  r.version = st.ColumnInt(19);
  return r;
}

// Columns: KURA_OUTBOX_COLUMNS.
OutboxRow ReadNotification(const Statement& st) {
  OutboxRow n;
  n.id = st.ColumnInt(0);
  n.tenant_id = st.ColumnText(1);
  n.url = st.ColumnText(2);
  n.payload_json = st.ColumnText(3);
  n.attempts = static_cast<int>(st.ColumnInt(4));
  n.next_attempt_at = st.ColumnInt(5);
  if (!st.ColumnIsNull(6)) n.delivered_at = st.ColumnInt(6);
  n.last_error = st.ColumnText(7);
  return n;
}

// Columns: id, current_version, created_at, ciphertext, version created_at, key_version.
RecordRow ReadListedRecord(const Statement& st, const std::string& tenant_id, const std::string& collection) {
  RecordRow r;
  r.tenant_id = tenant_id;
  r.collection = collection;
  r.id = st.ColumnText(0);
  r.current_version = st.ColumnInt(1);
  r.version = r.current_version;
  r.created_at = st.ColumnInt(2);
  r.ciphertext = st.ColumnBytes(3);
  r.updated_at = st.ColumnInt(4);
  r.key_version = st.ColumnInt(5);
  return r;
}

KeyRotationRow ReadKeyRotation(const Statement& st) {
  KeyRotationRow k;
  k.tenant_id = st.ColumnText(0);
  k.to_version = st.ColumnInt(1);
  k.state = st.ColumnText(2);
  k.cursor.collection = st.ColumnText(3);
  k.cursor.record_id = st.ColumnText(4);
  k.cursor.version = st.ColumnInt(5);
  k.total = st.ColumnInt(6);
  k.done = st.ColumnInt(7);
  k.started_at = st.ColumnInt(8);
  k.finished_at = st.ColumnInt(9);
  return k;
}

}  // namespace

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<SqliteStore>> Open(const SqliteOptions& options);
  ~SqliteStore() override;

  Result<Bytes> GetMeta(const std::string& key) override;
  Status PutMeta(const std::string& key, ByteView value, const AuditLink* audit) override;
  Status InsertMeta(const std::string& key, ByteView value, const AuditLink* audit) override;

  Status CreateTenant(const TenantRow& tenant, const AuditLink* audit) override;
  Result<TenantRow> GetTenant(const std::string& id) override;
  Result<Page<TenantRow>> ListTenants(const PageRequest& page) override;
  Status DeleteTenant(const std::string& id, const AuditLink* audit) override;
  Status SetTenantDataKeyVersion(const std::string& id, std::int64_t version, const AuditLink* audit) override;

  Result<bool> PutCollection(const CollectionRow& collection, const AuditLink* audit) override;
  Result<CollectionRow> GetCollection(const std::string& tenant_id, const std::string& name) override;
  Result<Page<CollectionRow>> ListCollections(const std::string& tenant_id, const PageRequest& page) override;

  Status InsertRecord(const RecordWrite& write, const AuditLink* audit) override;
  Status UpdateRecord(const RecordWrite& write, std::int64_t expected_version, const AuditLink* audit) override;
  Status DeleteRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                      const AuditLink* audit) override;
  Result<RecordRow> GetRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                              std::optional<std::int64_t> version) override;
  Result<std::vector<VersionInfo>> ListVersions(const std::string& tenant_id, const std::string& collection,
                                                const std::string& id) override;
  Result<Page<RecordRow>> ListRecords(const std::string& tenant_id, const std::string& collection,
                                      const PageRequest& page) override;
  Result<Page<RecordRow>> FindRecords(const std::string& tenant_id, const std::string& collection,
                                      const std::string& field, ByteView hmac, const PageRequest& page) override;

  Result<std::vector<StoredCiphertext>> ScanRecordVersionsBelowKey(const std::string& tenant_id,
                                                                 std::int64_t below_key_version,
                                                                 const RecordVersionKey& after, int limit) override;
  Result<std::int64_t> CountRecordVersionsBelowKey(const std::string& tenant_id,
                                                   std::int64_t below_key_version) override;
  Result<std::int64_t> RewriteRecordCiphertexts(const std::string& tenant_id, std::int64_t to_version,
                                                const std::vector<CiphertextRewrite>& rewrites,
                                                const RecordVersionKey& cursor) override;
  Status PutKeyRotation(const KeyRotationRow& rotation, const AuditLink* audit) override;
  Result<KeyRotationRow> GetKeyRotation(const std::string& tenant_id) override;
  Result<std::vector<KeyRotationRow>> ListRunningKeyRotations() override;

  Result<bool> PutRole(const RoleRow& role, const AuditLink* audit) override;
  Result<RoleRow> GetRole(const std::string& tenant_id, const std::string& name) override;
  Result<std::vector<RoleRow>> ListRoles(const std::string& tenant_id) override;
  Status DeleteRole(const std::string& tenant_id, const std::string& name, const AuditLink* audit) override;

  Status CreateApiKey(const ApiKeyRow& key, const AuditLink* audit) override;
  Result<ApiKeyRow> FindApiKeyByHash(ByteView key_hash) override;
  Result<std::vector<ApiKeyRow>> ListApiKeys(const std::string& tenant_id) override;
  Status RevokeApiKey(const std::string& tenant_id, const std::string& id, std::int64_t at,
                      const AuditLink* audit) override;

  Status CreateUser(const UserRow& user, const AuditLink* audit) override;
  Result<UserRow> GetUser(const std::string& tenant_id, const std::string& username) override;
  Result<UserRow> FindStaffByKerberos(const std::string& principal) override;
  Result<Page<UserRow>> ListUsers(const std::string& tenant_id, const PageRequest& page) override;
  Status UpdateUser(const UserRow& user, std::int64_t expected_version, const SessionRow* session,
                    const AuditLink* audit) override;
  Status DeleteUser(const std::string& tenant_id, const std::string& username, const AuditLink* audit) override;

  Result<SessionRow> FindSession(ByteView token_hash) override;
  Status TouchSession(ByteView token_hash, std::int64_t last_seen_at) override;
  void TouchSessionAsync(Bytes token_hash, std::int64_t last_seen_at, std::function<void(Status)> done) override;
  Status UpdateSession(const SessionRow& session, const AuditLink* audit) override;
  Status RevokeSession(ByteView token_hash, std::int64_t at, const AuditLink* audit) override;
  Result<int> PurgeEndedSessions(std::int64_t ended_before, int limit, const AuditLink* audit) override;
  Result<int> RevokeUserSessions(const std::string& tenant_id, const std::string& username, std::int64_t at,
                                 const AuditLink* audit) override;

  Status CreateAccessRequest(const AccessRequestRow& request, const std::vector<OutboxRow>& notify,
                             const AuditLink* audit) override;
  Result<AccessRequestRow> GetAccessRequest(const std::string& tenant_id, const std::string& id) override;
  Result<Page<AccessRequestRow>> ListAccessRequests(const std::string& tenant_id, const std::string& status,
                                                    const PageRequest& page) override;
  Result<std::vector<AccessRequestRow>> ActiveGrants(const std::string& tenant_id, const std::string& requester,
                                                     std::int64_t now) override;
  Status UpdateAccessRequest(const AccessRequestRow& request, std::int64_t expected_version,
                             const AuditLink* audit) override;
  Result<std::vector<OutboxRow>> DueNotifications(std::int64_t now, int limit) override;
  Status UpdateNotification(const OutboxRow& row) override;

  Status AppendAudit(const AuditLink& entry) override;
  void AppendAuditAsync(std::unique_ptr<AuditLink> entry, AuditCompletion done) override;
  bool NonBlocking() const override { return true; }
  void InsertRecordAsync(RecordWrite write, std::unique_ptr<AuditLink> audit, AuditCompletion done) override;
  Result<std::int64_t> AuditSize() override;
  Result<SeqBounds> AuditSeqBounds() override;
  Result<AuditHeadRow> ReadAuditHeadRow() override;
  Result<std::vector<AuditRow>> ReadAudit(std::int64_t from_seq, int limit) override;
  Result<std::vector<Bytes>> AuditLeafHashes(std::int64_t begin, std::int64_t end) override;
  Result<Page<AuditRow>> FindAudit(const AuditQuery& query) override;
  Status PutAuditCheckpoint(const AuditCheckpointRow& checkpoint) override;
  Result<std::vector<AuditCheckpointRow>> ListAuditCheckpoints(std::int64_t after_size, int limit) override;
  Result<AuditCheckpointRow> LatestAuditCheckpoint() override;
  Result<bool> HoldLease(const std::string& name, const std::string& node_id,
                         std::chrono::milliseconds ttl) override;
  Status ReleaseLease(const std::string& name, const std::string& node_id) override;
  Result<StorageStatus> GetStorageStatus() override;

  Result<std::vector<std::string>> ListRecordsUpdatedBefore(const std::string& tenant_id, const std::string& collection,
                                                            std::int64_t updated_before, const std::string& after_id,
                                                            int limit) override;
  Status ExpireRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                      std::int64_t updated_before, const AuditLink* audit) override;

  GroupCommitStats Stats() const {
    // Syncs read first: each follows its checkpoint's count, so a snapshot
    // never shows more syncs than checkpoints.
    const std::int64_t database_syncs = database_syncs_.load();
    return {commits_.load(), ops_.load(),           checkpoints_.load(),
            database_syncs,  group_retries_.load(), transaction_retries_.load()};
  }
  Status ExecOnWriter(const std::string& sql) {
    return Write([&](Connection& c) {
      record_cache_.BeginChangeAll();  // the statement may change any record
      return c.Exec(sql, "test statement");
    });
  }
  RecordCache::Stats CacheStats() const { return record_cache_.stats(); }

  // The data key versions of the tenants whose records the writer created
  // since its last operation of another kind. A record create changes no
  // tenant, so within a run of them a version read once holds: a batch of
  // creates reads it once, not once per create. Writer thread only.
  class DataKeyVersions {
   public:
    const std::int64_t* Find(const std::string& tenant_id) const {
      for (const auto& [tenant, version] : entries_) {
        if (tenant == tenant_id) return &version;
      }
      return nullptr;
    }
    void Remember(const std::string& tenant_id, std::int64_t version) { entries_.emplace_back(tenant_id, version); }
    void Forget() { entries_.clear(); }

   private:
    std::vector<std::pair<std::string, std::int64_t>> entries_;  // a few tenants per batch
  };

 private:
  // How the writer may run an operation (see RunBatch).
  enum class OpKind {
    // In a savepoint of its own, so that its failure undoes its rows alone.
    kChange,
    // May run again after its rows were rolled back: it reads nothing but
    // its inputs and the database and changes nothing outside the
    // transaction. Consecutive ones share one savepoint.
    kRepeatableChange,
    // An audit entry on its own (no change): a failed INSERT of one row
    // undoes itself, so it needs no savepoint; repeatable too.
    kAppendOnly,
  };
  // One queued write. Lives on the calling thread's stack until Finish(), so
  // queuing allocates nothing per operation; its caller sleeps on its own
  // WakeFlag (wake_flag_internal.h).
  struct WriteOp {
    Status (*run)(void* ctx, Connection& conn) = nullptr;
    void* ctx = nullptr;
    // The entry describing this write, appended in the op's savepoint after
    // `run` succeeded; nullptr for none.
    const AuditLink* audit = nullptr;
    Status result;
    WakeFlag done;
    OpKind kind = OpKind::kChange;
    // Set for an operation nobody waits for (AppendAuditAsync): called by the
    // writer instead of the wake-up; it owns and frees the operation.
    void (*complete)(WriteOp* op) = nullptr;

    // Called by the writer once `result` is final.
    void Finish() {
      if (complete != nullptr) {
        complete(this);
        return;
      }
      done.Set();
    }
    void Wait() { done.Wait(); }
  };

  // A read connection borrowed from the pool, returned on destruction.
  class Reader {
   public:
    Reader(SqliteStore* store, std::unique_ptr<Connection> conn) : store_(store), conn_(std::move(conn)) {}
    Reader(Reader&&) = default;
    ~Reader() {
      if (conn_) store_->ReturnReader(std::move(conn_));
    }
    Connection& operator*() { return *conn_; }

   private:
    SqliteStore* store_;
    std::unique_ptr<Connection> conn_;
  };

  SqliteStore(SqliteOptions options, sqlite::DatabaseLock lock, std::unique_ptr<Connection> writer)
      : options_(std::move(options)),
        lock_(std::move(lock)),
        writer_(std::move(writer)),
        record_cache_(options_.record_cache_bytes) {}

  // Queues `fn(Connection&) -> Status` for the writer thread and blocks until
  // the batch carrying it has committed (or failed). With `audit`, the entry
  // is appended right after fn succeeds, in the same savepoint: the change
  // and its entry commit together or not at all.
  template <typename F>
  Status Write(const AuditLink* audit, F&& fn, OpKind kind = OpKind::kChange) {
    if (options_.read_only) return ReadOnlyError();
    using Fn = std::remove_reference_t<F>;
    WriteOp op;
    op.run = [](void* ctx, Connection& conn) -> Status { return (*static_cast<Fn*>(ctx))(conn); };
    op.ctx = const_cast<void*>(static_cast<const void*>(&fn));
    op.audit = audit;
    op.kind = kind;
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (stopping_) return UnavailableError("database is closed");
      queue_.push_back(&op);
    }
    queue_cv_.notify_one();
    op.Wait();
    return std::move(op.result);
  }
  template <typename F>
  Status Write(F&& fn) {
    return Write(nullptr, std::forward<F>(fn));
  }
  // The same without waiting: the operation (with `fn` and `audit`) lives on
  // the heap and the writer calls `done` with its result after the batch
  // carrying it has committed or failed.
  template <typename F>
  void WriteAsync(std::unique_ptr<AuditLink> audit, F fn, AuditCompletion done, OpKind kind = OpKind::kChange) {
    struct AsyncOp {
      WriteOp op;
      F fn;
      std::unique_ptr<AuditLink> audit;
      AuditCompletion done;
    };
    if (options_.read_only) {
      done(ReadOnlyError());
      return;
    }
    auto async = std::unique_ptr<AsyncOp>(new AsyncOp{{}, std::move(fn), std::move(audit), std::move(done)});
    async->op.run = [](void* ctx, Connection& conn) -> Status { return static_cast<AsyncOp*>(ctx)->fn(conn); };
    async->op.ctx = async.get();
    async->op.audit = async->audit.get();
    async->op.kind = kind;
    async->op.complete = [](WriteOp* op) {
      std::unique_ptr<AsyncOp> owned(static_cast<AsyncOp*>(op->ctx));
      owned->done(std::move(op->result));
    };
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (!stopping_) queue_.push_back(&async.release()->op);
    }
    if (!async) {
      queue_cv_.notify_one();
      return;
    }
    async->done(UnavailableError("database is closed"));
  }

  static Result<std::unique_ptr<SqliteStore>> OpenReadOnly(const SqliteOptions& options);
  static Status ReadOnlyError() { return FailedPreconditionError("the database is open read-only"); }

  void WriterLoop();
  void CheckpointLoop();
  // sqlite3_wal_hook: runs on the writer thread after every commit.
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int frames);
  void RunBatch(std::vector<WriteOp*>& batch);
  static Status Exec(Connection& c, const char* sql, std::string_view what);
  // Runs one operation (and appends its entry), in a savepoint of its own
  // or not; sets op.result. A non-OK return: the transaction is gone, or a
  // savepoint could not be handled — the batch must be abandoned.
  Status RunOp(Connection& c, WriteOp& op, bool savepoint);
  // Runs consecutive repeatable operations under one savepoint, or under
  // none when they start the transaction.
  Status RunGroup(Connection& c, std::span<WriteOp*> group, bool starts_transaction);
  void CatchUpCheckpoint();
  int SyncCheckpointedPages();

  // The audit chain's head: the next sequence number and the hash of the
  // last entry (empty before the first).
  struct AuditHead {
    std::int64_t next_seq = 0;
    Bytes last_hash;
  };
  // Reads the head from audit_head, reconciled with the log's last row, into
  // head_ (writer connection; at open, or inside a batch's transaction).
  Status LoadAuditHead(Connection& c);
  // Links `link` to the head, inserts the row (and its trail index rows)
  // and advances head_ — only once the row is in, so a failed append leaves
  // head_ as it was.
  Status AppendAuditRow(Connection& c, const AuditLink& link);
  // Inserts the block rows `row` needs (audit_sql.h), unless block_keys_
  // says this block has them already.
  Status IndexAuditBlock(Connection& c, const AuditRow& row);
  // A rolled-back savepoint took the appends it carried with it, block rows
  // included: puts the in-memory head back and forgets which block rows exist.
  void RewindAuditHead(AuditHead saved) {
    head_ = std::move(saved);
    block_keys_.Forget();
  }
  // The same for a rolled-back transaction, and has the next batch re-read
  // the head from the database.
  void RestoreAuditHead(AuditHead saved) {
    RewindAuditHead(std::move(saved));
    head_reload_ = true;
  }
  // Fails every operation of a batch whose transaction is gone.
  static void FailAll(std::vector<WriteOp*>& batch, const Status& status, bool keep_own_errors);

  Result<Reader> AcquireReader();
  void ReturnReader(std::unique_ptr<Connection> conn);

  template <typename Row>
  static void FinishPage(Page<Row>& page, int limit, std::string Row::*key) {
    if (static_cast<int>(page.items.size()) > limit) {
      page.items.pop_back();
      page.next = page.items.back().*key;
    }
  }

  const SqliteOptions options_;
  sqlite::DatabaseLock lock_;           // held (options_.exclusive) until every connection closed
  std::unique_ptr<Connection> writer_;  // used only by writer_thread_ after Open
  bool immutable_ = false;              // read_only, on a directory SQLite cannot add its index to (OpenReadOnly)
  std::thread writer_thread_;

  // Audit chain head, owned by the writer thread (after Open). head_ runs
  // ahead of the database inside a batch; stored_next_seq_ is next_seq of the
  // audit_head row as last committed (-1: unknown or missing, rewrite it).
  AuditHead head_;
  std::int64_t stored_next_seq_ = -1;
  bool head_reload_ = false;  // re-read the head at the next batch
  // The tenants and principals whose block row for the current block is in
  // the database or in the open transaction (writer thread). Forgetting is
  // always safe: the insert is OR IGNORE.
  class BlockKeys {
   public:
    // Whether the tenant or the principal (which: the out-parameters) is
    // seen in `block` for the first time since the last Forget.
    bool FirstInBlock(std::int64_t block, const std::string& tenant, const std::string& principal, bool* tenant_first,
                      bool* principal_first) {
      if (block != block_) {
        Forget();
        block_ = block;
      }
      *tenant_first = tenants_.insert(tenant).second;
      *principal_first = principals_.insert(principal).second;
      return *tenant_first || *principal_first;
    }
    void Forget() {
      block_ = -1;
      tenants_.clear();
      principals_.clear();
    }

   private:
    std::int64_t block_ = -1;
    std::unordered_set<std::string> tenants_;
    std::unordered_set<std::string> principals_;
  };
  BlockKeys block_keys_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<WriteOp*> queue_;
  bool stopping_ = false;

  std::atomic<std::int64_t> commits_{0};
  std::atomic<std::int64_t> group_retries_{0};
  std::atomic<std::int64_t> transaction_retries_{0};
  DataKeyVersions data_key_versions_;
  std::atomic<std::int64_t> ops_{0};

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;

  // Current record versions as read, sealed; changes mark it on the writer
  // thread (record_cache.h).
  RecordCache record_cache_;

  // Background WAL checkpoints (see CheckpointLoop).
  std::unique_ptr<Connection> checkpointer_;
  std::thread checkpoint_thread_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  bool checkpoint_stopping_ = false;
  // Writer thread only: the WAL size (frames) at which OnWalCommit next asks
  // for a checkpoint. A PASSIVE checkpoint does not shrink the WAL: the next
  // commit after a complete one starts writing it from the beginning again,
  // which OnWalCommit sees as a smaller frame count.
  int next_checkpoint_frames_ = kCheckpointFrames;
  int last_wal_frames_ = 0;
  // Set by the checkpoint thread after a checkpoint; the writer then copies
  // what that one missed, so the WAL can restart (see CatchUpCheckpoint).
  std::atomic<bool> catch_up_wanted_{false};
  int catch_up_tries_ = 0;  // writer thread only
  int writer_busy_timeout_ms_ = sqlite::ConnectionOptions{}.busy_timeout_ms;
  std::atomic<std::int64_t> checkpoints_{0};
  std::atomic<std::int64_t> database_syncs_{0};  // by the checkpoint thread
};

// --- Open / close

namespace {

bool WalIsEmpty(const std::string& db_path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(db_path + "-wal", ec);
  return ec == std::errc::no_such_file_or_directory || (!ec && size == 0);
}

bool DirectoryIsWritable(const std::filesystem::path& dir) {
  return ::access((dir.empty() ? std::filesystem::path(".") : dir).c_str(), W_OK) == 0;
}

// Whether the database carries kura's application id: false when it has none
// yet (a new file), an error when it carries another application's.
Result<bool> HasKuraApplicationId(Connection& c, const std::string& path) {
  KURA_ASSIGN_OR_RETURN(std::int64_t app_id, c.QueryInt("PRAGMA application_id", "read application id"));
  if (app_id != 0 && app_id != sqlite::kApplicationId) {
    return FailedPreconditionError("database " + path + " belongs to another application, not kura");
  }
  return app_id != 0;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteOptions& options) {
  if (options.path.empty()) return InvalidArgumentError("database path is empty");
  if (options.max_batch < 1) return InvalidArgumentError("max_batch must be at least 1");
  if (options.read_only) return OpenReadOnly(options);
  std::filesystem::path path(options.path);
  KURA_RETURN_IF_ERROR(sqlite::MakeDirectories(path.parent_path()));
  sqlite::DatabaseLock lock;
  if (options.exclusive) {
    KURA_ASSIGN_OR_RETURN(lock, sqlite::DatabaseLock::Acquire(options.path));
  }
  KURA_RETURN_IF_ERROR(sqlite::PrepareDatabaseFile(options.path));

  sqlite::ConnectionOptions wopts;
  wopts.path = options.path;
  wopts.create = true;
  wopts.durable = options.durable;
  // The writer's cache stays valid across its own transactions (nobody else
  // writes), so a large one keeps the hot B-tree pages of every table in
  // memory instead of re-reading them from the OS on each batch. Readers
  // drop their cache whenever the database changed, so they keep the default.
  wopts.cache_kib = 64 * 1024;
  // Only the writer writes the WAL; with every commit synced, a commit's
  // frames can reach the file in one gathered write (sqlite_wal_vfs.h).
  wopts.gather_wal_writes = options.durable;
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::Open(wopts));
  // WAL is persistent in the file; readers then run beside the writer.
  KURA_RETURN_IF_ERROR(writer->Exec("PRAGMA journal_mode = WAL", "enable WAL"));
  KURA_ASSIGN_OR_RETURN(std::int64_t wal,
                        writer->QueryInt("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'",
                                         "enable WAL"));
  if (wal != 1) return UnavailableError("database " + options.path + ": cannot switch to WAL journal mode");

  // Deleted rows (pruned versions, erased records, deleted tenants) are
  // overwritten with zeros in the database file rather than left readable in
  // free space until reuse: erasure should mean erasure.
  KURA_RETURN_IF_ERROR(writer->Exec("PRAGMA secure_delete = ON", "configure"));
  KURA_ASSIGN_OR_RETURN(bool has_id, HasKuraApplicationId(*writer, options.path));
  if (!has_id) {
    KURA_RETURN_IF_ERROR(
        writer->Exec("PRAGMA application_id = " + std::to_string(sqlite::kApplicationId), "set application id"));
  }

  sqlite::SqliteMigrationTarget target(*writer);
  KURA_RETURN_IF_ERROR(ApplyMigrations(target, ToUnixSeconds(Clock::Real().Now())).status());

  std::unique_ptr<SqliteStore> store(new SqliteStore(options, std::move(lock), std::move(writer)));
  // The writer thread starts below; until then the writer connection is ours.
  KURA_RETURN_IF_ERROR(store->LoadAuditHead(*store->writer_));
  // Open one reader now so a broken setup fails at open, not at first read.
  {
    KURA_ASSIGN_OR_RETURN(Reader reader, store->AcquireReader());
  }
  // Checkpoints copy the WAL back into the database file (and, when durable,
  // fsync it). SQLite runs them inside the committing writer by default,
  // stalling a whole batch of callers; a PASSIVE checkpoint on its own
  // connection runs beside the writer and the readers instead.
  sqlite::ConnectionOptions copts;
  copts.path = options.path;
  copts.durable = options.durable;
  KURA_ASSIGN_OR_RETURN(store->checkpointer_, Connection::Open(copts));
  sqlite3_wal_hook(store->writer_->raw(), &SqliteStore::OnWalCommit, store.get());
  store->checkpoint_thread_ = std::thread([s = store.get()] { s->CheckpointLoop(); });
  store->writer_thread_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::OpenReadOnly(const SqliteOptions& options) {
  // Nothing here creates, locks, migrates or writes (SqliteOptions::read_only):
  // no writer connection, no writer or checkpoint thread; readers only, on a
  // file SQLite opens read-only.
  if (options.exclusive) return InvalidArgumentError("a read-only store holds no exclusive lock");
  std::error_code ec;
  const std::filesystem::path path(options.path);
  if (!std::filesystem::is_regular_file(path, ec)) return NotFoundError("no kura database at " + options.path);
  std::unique_ptr<SqliteStore> store(new SqliteStore(options, sqlite::DatabaseLock(), nullptr));
  {
    auto probe = store->AcquireReader();
    if (!probe.ok()) {
      // SQLite reads a WAL database through its `-shm` index, creating it
      // (and an empty `-wal`) when missing — which a read-only directory, such
      // as a backup on read-only media, does not allow. Without WAL content
      // there is nothing to index: the file alone is the whole database.
      if (DirectoryIsWritable(path.parent_path())) return probe.status();
      if (!WalIsEmpty(options.path)) {
        return UnavailableError("database " + options.path + ": its -wal file holds commits, and SQLite cannot add " +
                                "the -shm index it needs to read them in this read-only directory; verify a " +
                                "copy of the directory made elsewhere");
      }
      store->immutable_ = true;
    }
  }
  KURA_ASSIGN_OR_RETURN(Reader reader, store->AcquireReader());
  KURA_ASSIGN_OR_RETURN(bool has_id, HasKuraApplicationId(*reader, options.path));
  if (!has_id) return FailedPreconditionError("database " + options.path + " is not a kura database");
  sqlite::SqliteMigrationTarget target(*reader);
  auto version = ReadSchemaVersion(target);
  if (!version.ok()) {
    return Status(version.status().code(), "database " + options.path + ": " + version.status().message());
  }
  return store;
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    checkpoint_stopping_ = true;
  }
  checkpoint_cv_.notify_one();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  // The writer closes last: closing the last connection checkpoints the WAL
  // completely and removes it.
  idle_readers_.clear();
  checkpointer_.reset();
  writer_.reset();
}

// --- Checkpoints

int SqliteStore::OnWalCommit(void* self, sqlite3* db, const char* name, int frames) {
  auto* store = static_cast<SqliteStore*>(self);
  if (frames >= kWriterCheckpointFrames) {
    // The background thread is not keeping up: bound the WAL here.
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    store->checkpoints_.fetch_add(1, std::memory_order_relaxed);
    store->next_checkpoint_frames_ = kCheckpointFrames;
  } else {
    // The WAL restarted from its beginning (after a complete checkpoint):
    // count again from there, and no catch-up is needed any more.
    if (frames < store->last_wal_frames_) {
      store->next_checkpoint_frames_ = kCheckpointFrames;
      store->catch_up_wanted_.store(false, std::memory_order_release);
      store->catch_up_tries_ = 0;
    }
    store->last_wal_frames_ = frames;
    if (frames < store->next_checkpoint_frames_) return SQLITE_OK;
    // While the writer is finishing the last background checkpoint, a new
    // one would hold SQLite's checkpoint lock and make every catch-up
    // attempt fail as busy: ask again once the catch-up is done.
    if (store->catch_up_wanted_.load(std::memory_order_acquire)) return SQLITE_OK;
    // Once per kCheckpointFrames new frames, not after every commit while
    // the WAL stays large (readers can hold a checkpoint back for a while).
    store->next_checkpoint_frames_ = frames + kCheckpointFrames;
    {
      std::lock_guard<std::mutex> lock(store->checkpoint_mu_);
      store->checkpoint_wanted_ = true;
    }
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteStore::CheckpointLoop() {
  pthread_setname_np(pthread_self(), "kura-store-ckpt");
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(checkpoint_mu_);
      checkpoint_cv_.wait(lock, [this] { return checkpoint_wanted_ || checkpoint_stopping_; });
      if (checkpoint_stopping_) return;
      checkpoint_wanted_ = false;
    }
    const char* step = "checkpoint";
    int rc = sqlite3_wal_checkpoint_v2(checkpointer_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc == SQLITE_OK) {
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
      step = "sync of the checkpointed pages";
      rc = SyncCheckpointedPages();
    }
    if (rc == SQLITE_OK) {
      catch_up_wanted_.store(true, std::memory_order_release);
    } else if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
      // Not fatal: the WAL keeps every commit durable; the next commit asks again.
      log::Warn("store: WAL checkpoint failed: " + checkpointer_->Error(rc, step).message());
    }
  }
}

int SqliteStore::SyncCheckpointedPages() {
  // A checkpoint that stops short of the WAL's end (commits go on while it
  // copies) writes pages into the database file without syncing it; SQLite
  // syncs the file only when a checkpoint reaches the end, i.e. in the
  // writer's catch-up, which then flushed every page the background
  // checkpoints had copied since the last catch-up (a median 6.4 ms under
  // load, every request waiting; docs/performance.md). Synced here, off the
  // writer, the catch-up has only its own few pages left to sync. Through the
  // checkpointer's own file descriptor: a write error it reports is still
  // reported to the writer's descriptor too, so SQLite's own sync sees it.
  sqlite3_file* file = nullptr;
  int rc = sqlite3_file_control(checkpointer_->raw(), "main", SQLITE_FCNTL_FILE_POINTER, &file);
  if (rc != SQLITE_OK || file == nullptr || file->pMethods == nullptr) return rc == SQLITE_OK ? SQLITE_MISUSE : rc;
  rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
  if (rc == SQLITE_OK) database_syncs_.fetch_add(1, std::memory_order_relaxed);
  return rc;
}

// --- Writer

void SqliteStore::WriterLoop() {
  // Named so `top -H` and profilers show where commit time goes.
  pthread_setname_np(pthread_self(), "kura-store-wr");
  std::vector<WriteOp*> batch;
  batch.reserve(static_cast<std::size_t>(options_.max_batch));
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued write is done
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    // Committed or rolled back: the records it changed may be cached again.
    record_cache_.EndChanges();
    // After Finish() the op's owner may return and destroy it: touch nothing after.
    for (WriteOp* op : batch) op->Finish();
    batch.clear();
  }
}

void SqliteStore::FailAll(std::vector<WriteOp*>& batch, const Status& status, bool keep_own_errors) {
  for (WriteOp* op : batch) {
    if (keep_own_errors && !op->result.ok()) continue;
    op->result = status;
  }
}

void SqliteStore::CatchUpCheckpoint() {
  // Commits go on while the checkpoint thread copies, and readers keep
  // reading from the WAL, so the WAL would never start over from its
  // beginning and would grow until kWriterCheckpointFrames. Between two
  // batches the writer copies the few frames committed since and waits, very
  // briefly, for the readers still on the WAL to finish their (short) read
  // transactions, after which the next commit restarts the WAL. A long reader
  // (an audit export, a verification) is not waited for: the next batches
  // try again, a bounded number of times.
  if (!catch_up_wanted_.load(std::memory_order_acquire)) return;
  sqlite3* db = writer_->raw();
  // SQLite's own busy handler sleeps at least a millisecond; a reader's
  // transaction lasts microseconds.
  sqlite3_busy_handler(
      db,
      [](void*, int tries) -> int {
        if (tries >= kCatchUpWaits) return 0;
        std::this_thread::sleep_for(kCatchUpWait);
        return 1;
      },
      nullptr);
  int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
  sqlite3_busy_timeout(db, writer_busy_timeout_ms_);  // back to the writer's own
  if (rc == SQLITE_OK || ++catch_up_tries_ >= kCatchUpTries) {
    catch_up_wanted_.store(false, std::memory_order_release);
    catch_up_tries_ = 0;
  }
}

Status SqliteStore::Exec(Connection& c, const char* sql, std::string_view what) {
  KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
  return st.Run(what);
}

Status SqliteStore::RunOp(Connection& c, WriteOp& op, bool savepoint) {
  // Any other operation may change a tenant (a data key rotation does).
  if (op.kind == OpKind::kChange) data_key_versions_.Forget();
  if (savepoint) KURA_RETURN_IF_ERROR(Exec(c, kSavepoint, "savepoint"));
  // Only ops that append can move the head; copy it only for those.
  std::optional<AuditHead> op_start;
  if (op.audit != nullptr) op_start = head_;
  op.result = op.run(op.ctx, c);
  if (op.result.ok() && op.audit != nullptr) {
    // After the change, in its savepoint: the entry commits with it or
    // not at all, and a failed change appends nothing.
    op.result = AuditAppendError(AppendAuditRow(c, *op.audit));
  }
  if (c.InAutocommit()) {
    // SQLite rolled the whole transaction back (I/O error, full disk, out of
    // memory): the batch's earlier operations are gone too.
    return op.result.ok() ? UnavailableError("transaction rolled back") : op.result;
  }
  if (!op.result.ok()) {
    if (op_start.has_value()) RewindAuditHead(std::move(*op_start));
    if (savepoint) KURA_RETURN_IF_ERROR(Exec(c, kRollbackTo, "rollback to savepoint"));
  }
  if (savepoint) KURA_RETURN_IF_ERROR(Exec(c, kRelease, "release savepoint"));
  return Status::Ok();
}

Status SqliteStore::RunGroup(Connection& c, std::span<WriteOp*> group, bool starts_transaction) {
  // A savepoint costs more than its two statements: from it on, SQLite
  // copies every page a change touches first (into the statement journal),
  // and the pages a batch of creates touches are the same few b-tree leaves
  // each time — about a fifth of the writer's time per create when every
  // create had its own (docs/performance.md). Repeatable operations all
  // succeed almost always, so they run under one savepoint; if one fails,
  // perhaps half-way, the group is rolled back and run again the careful
  // way, each in its own savepoint. A group that starts the transaction (a
  // batch of creates) needs no savepoint at all: rolling the transaction
  // back undoes it as well, and the transaction begins again.
  const AuditHead group_start = head_;
  const bool savepoint = !starts_transaction;
  if (savepoint) KURA_RETURN_IF_ERROR(Exec(c, kGroupSavepoint, "savepoint"));
  bool failed = false;
  for (WriteOp* op : group) {
    KURA_RETURN_IF_ERROR(RunOp(c, *op, /*savepoint=*/false));
    if (!op->result.ok()) {
      failed = true;
      break;
    }
  }
  if (failed) {
    if (savepoint) {
      KURA_RETURN_IF_ERROR(Exec(c, kGroupRollbackTo, "rollback to savepoint"));
    } else {
      KURA_RETURN_IF_ERROR(Exec(c, kRollback, "rollback"));
      KURA_RETURN_IF_ERROR(Exec(c, kBegin, "begin transaction"));
      transaction_retries_.fetch_add(1, std::memory_order_relaxed);
    }
    RewindAuditHead(group_start);
    group_retries_.fetch_add(1, std::memory_order_relaxed);
    for (WriteOp* op : group) {
      KURA_RETURN_IF_ERROR(RunOp(c, *op, /*savepoint=*/op->kind != OpKind::kAppendOnly));
    }
  }
  return savepoint ? Exec(c, kGroupRelease, "release savepoint") : Status::Ok();
}

void SqliteStore::RunBatch(std::vector<WriteOp*>& batch) {
  CatchUpCheckpoint();
  Connection& c = *writer_;
  // The head as of the batch's start: every way the transaction can be
  // rolled back as a whole puts it back (and has it re-read next time).
  AuditHead batch_start = head_;
  auto abandon = [&](const Status& why) {
    if (!c.InAutocommit()) Exec(c, kRollback, "rollback").IgnoreError();
    RestoreAuditHead(batch_start);
    FailAll(batch, UnavailableError("write not committed: " + why.message()), /*keep_own_errors=*/false);
  };

  data_key_versions_.Forget();  // read again in this transaction
  Status s = Exec(c, kBegin, "begin transaction");
  if (!s.ok()) {
    abandon(s);
    return;
  }
  if (head_reload_) {
    // After a rollback, re-read the head inside this transaction (which
    // holds the write lock): what the database says is what the chain
    // continues from.
    s = LoadAuditHead(c);
    if (!s.ok()) {
      abandon(s);
      return;
    }
    head_reload_ = false;
    batch_start = head_;
  }
  for (std::size_t i = 0; i < batch.size();) {
    // A run of repeatable operations shares one savepoint (see RunGroup);
    // any other operation has its own, unless it appends only (a run of
    // appends alone needs none).
    std::size_t end = i;
    bool changes = false;
    for (; end < batch.size() && batch[end]->kind != OpKind::kChange; ++end) {
      changes = changes || batch[end]->kind == OpKind::kRepeatableChange;
    }
    if (changes && end - i >= 2) {
      s = RunGroup(c, std::span<WriteOp*>(batch).subspan(i, end - i), /*starts_transaction=*/i == 0);
      i = end;
    } else {
      WriteOp& op = *batch[i++];
      s = RunOp(c, op, /*savepoint=*/op.kind != OpKind::kAppendOnly);
    }
    if (!s.ok()) {
      abandon(s);
      return;
    }
  }
  if (head_.next_seq != stored_next_seq_) {
    // Once per batch, however many entries it appended.
    auto st = c.Prepare(kWriteAuditHead);
    if (st.ok()) {
      st->Bind(1, head_.next_seq);
      if (head_.last_hash.empty()) {
        st->BindNull(2);
      } else {
        st->Bind(2, ByteView(head_.last_hash));
      }
      s = st->Run("audit head");
    } else {
      s = st.status();
    }
    if (!s.ok()) {
      abandon(s);
      return;
    }
  }
  s = Exec(c, kCommit, "commit");
  if (!s.ok()) {
    if (!c.InAutocommit()) Exec(c, kRollback, "rollback").IgnoreError();
    RestoreAuditHead(std::move(batch_start));
    // Operations that failed on their own keep their error (nothing of theirs
    // was written either); every one that would have succeeded is Unavailable.
    FailAll(batch, UnavailableError("write not committed: " + s.message()), /*keep_own_errors=*/true);
    return;
  }
  stored_next_seq_ = head_.next_seq;
  commits_.fetch_add(1, std::memory_order_relaxed);
  ops_.fetch_add(static_cast<std::int64_t>(batch.size()), std::memory_order_relaxed);
}

// --- Audit chain head (writer thread)

Status SqliteStore::LoadAuditHead(Connection& c) {
  AuditHead head;
  bool have_head = false;
  {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kReadAuditHead));
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit head"));
    if (row) {
      have_head = true;
      head.next_seq = st.ColumnInt(0);
      head.last_hash = st.ColumnBytes(1);  // NULL before the first entry: empty
    }
  }
  {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kLastAuditRow));
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit log"));
    // The head and the log's last row are written in the same transactions
    // and agree unless the file was altered. Entries beyond the head would
    // make every append collide with them (fail closed for good), so the
    // chain continues after the last row; a head beyond the last row (rows
    // removed from the tail) is kept, so the gap stays visible to a verifier.
    if (!have_head) log::Warn("store: the audit_head row is missing; recreating it from the audit log");
    bool rewrite = !have_head;
    const std::int64_t last_seq = row ? st.ColumnInt(0) : -1;
    if (row && last_seq >= head.next_seq) {
      if (have_head) log::Warn("store: audit_head is behind the audit log; continuing after the last entry");
      head.last_hash = st.ColumnBytes(1);
      if (last_seq < kMaxAuditSeq) {
        head.next_seq = last_seq + 1;
        rewrite = true;
      } else {
        // Not last_seq + 1, which may overflow: a head CheckAuditAppendSeq
        // refuses, so every append fails closed; the head row is not
        // rewritten for it.
        head.next_seq = kMaxAuditSeq;
      }
    }
    have_head = !rewrite;
  }
  head_ = std::move(head);
  // -1 makes the next batch write the row, even if it appends nothing.
  stored_next_seq_ = have_head ? head_.next_seq : -1;
  return Status::Ok();
}

Status SqliteStore::AppendAuditRow(Connection& c, const AuditLink& link) {
  KURA_RETURN_IF_ERROR(CheckAuditAppendSeq(head_.next_seq));
  AuditRow row = link.Link(head_.next_seq, head_.last_hash);
  if (row.seq != head_.next_seq || row.hash.empty()) {
    return InternalError("audit log: the entry was linked with another sequence number or without a hash");
  }
  // Before the entry: should its insert fail (it undoes itself, without a
  // savepoint), a block row with no entry of its key costs a trail query a
  // few rows read, where an entry without its block row would be missing
  // from the trail.
  KURA_RETURN_IF_ERROR(IndexAuditBlock(c, row));
  KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertAudit));
  st.Bind(1, row.seq);
  st.Bind(2, row.at_ms);
  st.Bind(3, row.tenant_id);
  st.Bind(4, row.principal);
  st.Bind(5, row.action);
  st.Bind(6, row.resource);
  st.Bind(7, row.outcome);
  st.Bind(8, ByteView(row.entry));
  st.Bind(9, ByteView(row.hash));
  Status s = st.Run("audit entry");
  if (!s.ok()) {
    // A row with this sequence number exists: the in-memory head is behind
    // the database (another writer on the file?). Re-read it next batch.
    if (s.code() == StatusCode::kAlreadyExists) head_reload_ = true;
    return s;
  }
  ++head_.next_seq;
  head_.last_hash = std::move(row.hash);
  return Status::Ok();
}

Status SqliteStore::IndexAuditBlock(Connection& c, const AuditRow& row) {
  bool tenant_first = false;
  bool principal_first = false;
  const std::int64_t block = row.seq >> kAuditBlockShift;
  if (!block_keys_.FirstInBlock(block, row.tenant_id, row.principal, &tenant_first, &principal_first)) {
    return Status::Ok();
  }
  auto insert = [&](const char* sql, const std::string& key) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
    st.Bind(1, key);
    st.Bind(2, block);
    return st.Run("audit trail index");
  };
  Status s = tenant_first ? insert(kInsertTenantBlock, row.tenant_id) : Status::Ok();
  if (s.ok() && principal_first) s = insert(kInsertPrincipalBlock, row.principal);
  // Not inserted after all: this block's keys must be inserted again.
  if (!s.ok()) block_keys_.Forget();
  return s;
}

// --- Reader pool

Result<SqliteStore::Reader> SqliteStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Reader(this, std::move(conn));
    }
  }
  sqlite::ConnectionOptions ropts;
  ropts.path = options_.path;
  ropts.read_only = true;
  ropts.file_read_only = options_.read_only;
  ropts.immutable = immutable_;
  ropts.durable = options_.durable;
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(ropts));
  return Reader(this, std::move(conn));
}

void SqliteStore::ReturnReader(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
  // else: closed here, outside any statement (the Statement was reset already).
}

// --- Meta

Result<Bytes> SqliteStore::GetMeta(const std::string& key) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetMeta));
  st.Bind(1, key);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("meta value"));
  if (!row) return NotFoundError("meta value not found");
  return st.ColumnBytes(0);
}

Status SqliteStore::PutMeta(const std::string& key, ByteView value, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kPutMeta));
    st.Bind(1, key);
    st.Bind(2, value);
    return st.Run("meta value");
  });
}

Status SqliteStore::InsertMeta(const std::string& key, ByteView value, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertMeta));
    st.Bind(1, key);
    st.Bind(2, value);
    return st.Run("meta value");
  });
}

// --- Tenants

Status SqliteStore::CreateTenant(const TenantRow& t, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertTenant));
    st.Bind(1, t.id);
    st.Bind(2, t.name);
    st.Bind(3, t.region);
    st.Bind(4, t.created_at);
    st.Bind(5, t.data_key_version);
    return st.Run("tenant");
  });
}

Result<TenantRow> SqliteStore::GetTenant(const std::string& id) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetTenant));
  st.Bind(1, id);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenant"));
  if (!row) return NotFoundError("tenant not found");
  return ReadTenant(st);
}

Result<Page<TenantRow>> SqliteStore::ListTenants(const PageRequest& page) {
  const int limit = PageLimit(page);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListTenants));
  st.Bind(1, page.after);
  st.Bind(2, static_cast<std::int64_t>(limit) + 1);
  Page<TenantRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenants"));
    if (!row) break;
    out.items.push_back(ReadTenant(st));
  }
  FinishPage(out, limit, &TenantRow::id);
  return out;
}

Status SqliteStore::DeleteTenant(const std::string& id, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    record_cache_.BeginChangeAll();
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kTenantExists));
      st.Bind(1, id);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenant"));
      if (!row) return NotFoundError("tenant not found");
    }
    // All in this operation's savepoint of one transaction: the tenant goes
    // completely or not at all.
    for (const char* sql : kDeleteTenantRows) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
      st.Bind(1, id);
      KURA_RETURN_IF_ERROR(st.Run("delete tenant"));
    }
    return Status::Ok();
  });
}

Status SqliteStore::SetTenantDataKeyVersion(const std::string& id, std::int64_t version, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kRaiseDataKeyVersion));
      st.Bind(1, version);
      st.Bind(2, id);
      KURA_RETURN_IF_ERROR(st.Run("tenant"));
    }
    if (c.Changes() == 1) return Status::Ok();
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kTenantExists));
    st.Bind(1, id);
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenant"));
    if (!row) return NotFoundError("tenant not found");
    return AbortedError("the tenant's data key version is already at or above the new one");
  });
}

// --- Collections

Result<bool> SqliteStore::PutCollection(const CollectionRow& col, const AuditLink* audit) {
  bool created = false;
  Status s = Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kCollectionExists));
      st.Bind(1, col.tenant_id);
      st.Bind(2, col.name);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("collection"));
      created = !row;
    }
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kUpsertCollection));
    st.Bind(1, col.tenant_id);
    st.Bind(2, col.name);
    st.Bind(3, col.schema_json);
    st.Bind(4, col.created_at);
    st.Bind(5, col.updated_at);
    return st.Run("collection");
  });
  if (!s.ok()) return s;
  return created;
}

Result<CollectionRow> SqliteStore::GetCollection(const std::string& tenant_id, const std::string& name) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetCollection));
  st.Bind(1, tenant_id);
  st.Bind(2, name);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("collection"));
  if (!row) return NotFoundError("collection not found");
  return ReadCollection(st);
}

Result<Page<CollectionRow>> SqliteStore::ListCollections(const std::string& tenant_id, const PageRequest& page) {
  const int limit = PageLimit(page);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListCollections));
  st.Bind(1, tenant_id);
  st.Bind(2, page.after);
  st.Bind(3, static_cast<std::int64_t>(limit) + 1);
  Page<CollectionRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("collections"));
    if (!row) break;
    out.items.push_back(ReadCollection(st));
  }
  FinishPage(out, limit, &CollectionRow::name);
  return out;
}

// --- Records

namespace {

Status InsertVersionRow(Connection& c, const RecordWrite& w) {
  KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertVersion));
  st.Bind(1, w.tenant_id);
  st.Bind(2, w.collection);
  st.Bind(3, w.id);
  st.Bind(4, w.version);
  st.Bind(5, ByteView(w.ciphertext));
  st.Bind(6, w.at);
  st.Bind(7, w.key_version);
  return st.Run("record version");
}

// Refuses a write sealed under a data key version that is no longer the
// tenant's current one (a rotation moved on since the caller loaded its keys).
// `known`, when given, holds versions read earlier in the same run of record
// creates (which change no tenant; see DataKeyVersions).
Status CheckDataKeyVersion(Connection& c, const RecordWrite& w, SqliteStore::DataKeyVersions* known = nullptr) {
  std::int64_t current = 0;
  if (const std::int64_t* seen = known != nullptr ? known->Find(w.tenant_id) : nullptr) {
    current = *seen;
  } else {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDataKeyVersion));
    st.Bind(1, w.tenant_id);
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenant"));
    if (!row) return NotFoundError("tenant not found");
    current = st.ColumnInt(0);
    if (known != nullptr) known->Remember(w.tenant_id, current);
  }
  if (current != w.key_version) {
    return AbortedError("data key version " + std::to_string(w.key_version) + " is not the tenant's current (" +
                        std::to_string(current) + ")");
  }
  return Status::Ok();
}

Status InsertIndexRows(Connection& c, const RecordWrite& w) {
  if (w.index.empty()) return Status::Ok();
  KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertIndex));
  for (const IndexEntry& e : w.index) {
    st.Bind(1, w.tenant_id);
    st.Bind(2, w.collection);
    st.Bind(3, e.field);
    st.Bind(4, ByteView(e.hmac));
    st.Bind(5, w.id);
    KURA_RETURN_IF_ERROR(st.Run("record index entry"));
    st.Reset();
  }
  return Status::Ok();
}

// The rows of a new record (version 1), under the tenant's current data key.
Status InsertRecordRows(Connection& c, const RecordWrite& w, SqliteStore::DataKeyVersions* known) {
  KURA_RETURN_IF_ERROR(CheckDataKeyVersion(c, w, known));
  {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertRecord));
    st.Bind(1, w.tenant_id);
    st.Bind(2, w.collection);
    st.Bind(3, w.id);
    st.Bind(4, w.version);
    st.Bind(5, w.at);
    st.Bind(6, w.at);
    BindOptionalBytes(st, 7, w.subject_hmac);
    KURA_RETURN_IF_ERROR(st.Run("record"));
  }
  KURA_RETURN_IF_ERROR(InsertVersionRow(c, w));
  return InsertIndexRows(c, w);
}

}  // namespace

Status SqliteStore::InsertRecord(const RecordWrite& w, const AuditLink* audit) {
  if (w.version != 1) return InvalidArgumentError("a new record starts at version 1");
  return Write(
      audit, [&](Connection& c) { return InsertRecordRows(c, w, &data_key_versions_); }, OpKind::kRepeatableChange);
}

Status SqliteStore::UpdateRecord(const RecordWrite& w, std::int64_t expected_version, const AuditLink* audit) {
  if (w.version != expected_version + 1) {
    return InvalidArgumentError("the new version must be the expected version plus one");
  }
  return Write(audit, [&](Connection& c) -> Status {
    record_cache_.BeginChange(w.tenant_id, w.collection, w.id);
    KURA_RETURN_IF_ERROR(CheckDataKeyVersion(c, w));
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kCasRecord));
      st.Bind(1, w.version);
      st.Bind(2, w.at);
      BindOptionalBytes(st, 3, w.subject_hmac);
      st.Bind(4, w.tenant_id);
      st.Bind(5, w.collection);
      st.Bind(6, w.id);
      st.Bind(7, expected_version);
      KURA_RETURN_IF_ERROR(st.Run("record"));
    }
    if (c.Changes() == 0) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kCurrentVersion));
      st.Bind(1, w.tenant_id);
      st.Bind(2, w.collection);
      st.Bind(3, w.id);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("record"));
      if (!row) return NotFoundError("record not found");
      return AbortedError("record version conflict: expected version " + std::to_string(expected_version) +
                          ", current version is " + std::to_string(st.ColumnInt(0)));
    }
    KURA_RETURN_IF_ERROR(InsertVersionRow(c, w));
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteIndex));
      st.Bind(1, w.tenant_id);
      st.Bind(2, w.collection);
      st.Bind(3, w.id);
      KURA_RETURN_IF_ERROR(st.Run("record index entry"));
    }
    KURA_RETURN_IF_ERROR(InsertIndexRows(c, w));
    // Versions are contiguous (1..current, pruned from the oldest), so
    // "older than the newest keep" is a single range.
    const int keep = w.keep_versions < 1 ? 1 : w.keep_versions;
    const std::int64_t oldest_kept = w.version - keep + 1;
    if (oldest_kept > 1) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kPruneVersions));
      st.Bind(1, w.tenant_id);
      st.Bind(2, w.collection);
      st.Bind(3, w.id);
      st.Bind(4, oldest_kept - 1);
      KURA_RETURN_IF_ERROR(st.Run("prune record versions"));
    }
    return Status::Ok();
  });
}

Status SqliteStore::DeleteRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                                 const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    record_cache_.BeginChange(tenant_id, collection, id);
    for (const char* sql : {kDeleteIndex, kDeleteVersions, kDeleteRecord}) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
      st.Bind(1, tenant_id);
      st.Bind(2, collection);
      st.Bind(3, id);
      KURA_RETURN_IF_ERROR(st.Run("delete record"));
    }
    // Changes() of the last statement: the records row itself.
    if (c.Changes() == 0) return NotFoundError("record not found");
    return Status::Ok();
  });
}

Result<RecordRow> SqliteStore::GetRecord(const std::string& tenant_id, const std::string& collection,
                                         const std::string& id, std::optional<std::int64_t> version) {
  // A given version is read from the database: the cache holds current ones.
  const bool current = !version.has_value();
  if (current) {
    if (auto cached = record_cache_.Find(tenant_id, collection, id)) return std::move(*cached);
  }
  const std::uint64_t ticket = record_cache_.Ticket();
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(version.has_value() ? kGetRecordVersion : kGetCurrentRecord));
  st.Bind(1, tenant_id);
  st.Bind(2, collection);
  st.Bind(3, id);
  if (version.has_value()) st.Bind(4, *version);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("record"));
  if (!row) return NotFoundError(version.has_value() ? "record version not found" : "record not found");
  RecordRow out;
  out.tenant_id = tenant_id;
  out.collection = collection;
  out.id = id;
  out.current_version = st.ColumnInt(0);
  out.created_at = st.ColumnInt(1);
  out.version = st.ColumnInt(2);
  out.ciphertext = st.ColumnBytes(3);
  out.updated_at = st.ColumnInt(4);
  out.key_version = st.ColumnInt(5);
  if (current) record_cache_.Fill(out, ticket);
  return out;
}

Result<std::vector<VersionInfo>> SqliteStore::ListVersions(const std::string& tenant_id,
                                                           const std::string& collection, const std::string& id) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListVersions));
  st.Bind(1, tenant_id);
  st.Bind(2, collection);
  st.Bind(3, id);
  std::vector<VersionInfo> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("record versions"));
    if (!row) break;
    out.push_back(VersionInfo{st.ColumnInt(0), st.ColumnInt(1)});
  }
  // Every existing record has at least its current version.
  if (out.empty()) return NotFoundError("record not found");
  return out;
}

Result<Page<RecordRow>> SqliteStore::ListRecords(const std::string& tenant_id, const std::string& collection,
                                                 const PageRequest& page) {
  const int limit = PageLimit(page);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListRecords));
  st.Bind(1, tenant_id);
  st.Bind(2, collection);
  st.Bind(3, page.after);
  st.Bind(4, static_cast<std::int64_t>(limit) + 1);
  Page<RecordRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("records"));
    if (!row) break;
    out.items.push_back(ReadListedRecord(st, tenant_id, collection));
  }
  FinishPage(out, limit, &RecordRow::id);
  return out;
}

Result<Page<RecordRow>> SqliteStore::FindRecords(const std::string& tenant_id, const std::string& collection,
                                                 const std::string& field, ByteView hmac,
                                                 const PageRequest& page) {
  const int limit = PageLimit(page);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kFindRecords));
  st.Bind(1, tenant_id);
  st.Bind(2, collection);
  st.Bind(3, field);
  st.Bind(4, hmac);
  st.Bind(5, page.after);
  st.Bind(6, static_cast<std::int64_t>(limit) + 1);
  Page<RecordRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("records"));
    if (!row) break;
    out.items.push_back(ReadListedRecord(st, tenant_id, collection));
  }
  FinishPage(out, limit, &RecordRow::id);
  return out;
}

Result<std::vector<StoredCiphertext>> SqliteStore::ScanRecordVersionsBelowKey(const std::string& tenant_id,
                                                                            std::int64_t below_key_version,
                                                                            const RecordVersionKey& after,
                                                                            int limit) {
  if (limit < 1 || limit > 10000) return InvalidArgumentError("limit must be 1-10000");
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kScanBelowKey));
  st.Bind(1, tenant_id);
  st.Bind(2, after.collection);
  st.Bind(3, after.record_id);
  st.Bind(4, after.version);
  st.Bind(5, below_key_version);
  st.Bind(6, static_cast<std::int64_t>(limit));
  std::vector<StoredCiphertext> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("record versions"));
    if (!row) break;
    StoredCiphertext c;
    c.key.collection = st.ColumnText(0);
    c.key.record_id = st.ColumnText(1);
    c.key.version = st.ColumnInt(2);
    c.key_version = st.ColumnInt(3);
    c.ciphertext = st.ColumnBytes(4);
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::int64_t> SqliteStore::CountRecordVersionsBelowKey(const std::string& tenant_id,
                                                              std::int64_t below_key_version) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kCountBelowKey));
  st.Bind(1, tenant_id);
  st.Bind(2, below_key_version);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("record versions"));
  return row ? st.ColumnInt(0) : 0;
}

Result<std::int64_t> SqliteStore::RewriteRecordCiphertexts(const std::string& tenant_id, std::int64_t to_version,
                                                           const std::vector<CiphertextRewrite>& rewrites,
                                                           const RecordVersionKey& cursor) {
  std::int64_t rewritten = 0;
  Status s = Write([&](Connection& c) -> Status {
    rewritten = 0;
    if (!rewrites.empty()) {
      // One prepared statement for the whole batch, in the writer's one
      // transaction: a batch costs one commit however many rows it carries.
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kRewriteCiphertext));
      for (const CiphertextRewrite& w : rewrites) {
        record_cache_.BeginChange(tenant_id, w.key.collection, w.key.record_id);
        st.Bind(1, ByteView(w.ciphertext));
        st.Bind(2, to_version);
        st.Bind(3, tenant_id);
        st.Bind(4, w.key.collection);
        st.Bind(5, w.key.record_id);
        st.Bind(6, w.key.version);
        st.Bind(7, w.from_key_version);
        KURA_RETURN_IF_ERROR(st.Run("re-encrypted record version"));
        rewritten += c.Changes();
        st.Reset();
      }
    }
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kAdvanceRotation));
    st.Bind(1, cursor.collection);
    st.Bind(2, cursor.record_id);
    st.Bind(3, cursor.version);
    st.Bind(4, rewritten);
    st.Bind(5, tenant_id);
    st.Bind(6, to_version);
    KURA_RETURN_IF_ERROR(st.Run("key rotation"));
    if (c.Changes() == 0) return AbortedError("no key rotation to version " + std::to_string(to_version) + " is running");
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return rewritten;
}

Status SqliteStore::PutKeyRotation(const KeyRotationRow& k, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kTenantExists));
      st.Bind(1, k.tenant_id);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenant"));
      if (!row) return NotFoundError("tenant not found");
    }
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kPutRotation));
    st.Bind(1, k.tenant_id);
    st.Bind(2, k.to_version);
    st.Bind(3, k.state);
    st.Bind(4, k.cursor.collection);
    st.Bind(5, k.cursor.record_id);
    st.Bind(6, k.cursor.version);
    st.Bind(7, k.total);
    st.Bind(8, k.done);
    st.Bind(9, k.started_at);
    st.Bind(10, k.finished_at);
    return st.Run("key rotation");
  });
}

Result<KeyRotationRow> SqliteStore::GetKeyRotation(const std::string& tenant_id) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetRotation));
  st.Bind(1, tenant_id);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("key rotation"));
  if (!row) return NotFoundError("no key rotation");
  return ReadKeyRotation(st);
}

Result<std::vector<KeyRotationRow>> SqliteStore::ListRunningKeyRotations() {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListRunningRotations));
  std::vector<KeyRotationRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("key rotations"));
    if (!row) break;
    out.push_back(ReadKeyRotation(st));
  }
  return out;
}

// --- Roles

Result<bool> SqliteStore::PutRole(const RoleRow& role, const AuditLink* audit) {
  bool created = false;
  Status s = Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kRoleExists));
      st.Bind(1, role.tenant_id);
      st.Bind(2, role.name);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("role"));
      created = !row;
    }
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kUpsertRole));
    st.Bind(1, role.tenant_id);
    st.Bind(2, role.name);
    st.Bind(3, role.permissions_json);
    st.Bind(4, role.updated_at);
    return st.Run("role");
  });
  if (!s.ok()) return s;
  return created;
}

Result<RoleRow> SqliteStore::GetRole(const std::string& tenant_id, const std::string& name) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetRole));
  st.Bind(1, tenant_id);
  st.Bind(2, name);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("role"));
  if (!row) return NotFoundError("role not found");
  return ReadRole(st);
}

Result<std::vector<RoleRow>> SqliteStore::ListRoles(const std::string& tenant_id) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListRoles));
  st.Bind(1, tenant_id);
  std::vector<RoleRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("roles"));
    if (!row) break;
    out.push_back(ReadRole(st));
  }
  return out;
}

Status SqliteStore::DeleteRole(const std::string& tenant_id, const std::string& name, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteRole));
    st.Bind(1, tenant_id);
    st.Bind(2, name);
    KURA_RETURN_IF_ERROR(st.Run("role"));
    if (c.Changes() == 0) return NotFoundError("role not found");
    return Status::Ok();
  });
}

// --- API keys

Status SqliteStore::CreateApiKey(const ApiKeyRow& k, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertApiKey));
    st.Bind(1, k.id);
    st.Bind(2, k.tenant_id);
    st.Bind(3, k.name);
    st.Bind(4, k.role);
    st.Bind(5, ByteView(k.key_hash));
    st.Bind(6, k.created_at);
    BindOptionalInt(st, 7, k.expires_at);
    BindOptionalInt(st, 8, k.revoked_at);
    return st.Run("api key");
  });
}

Result<ApiKeyRow> SqliteStore::FindApiKeyByHash(ByteView key_hash) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kFindApiKey));
  st.Bind(1, key_hash);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("api key"));
  if (!row) return NotFoundError("api key not found");
  return ReadApiKey(st);
}

Result<std::vector<ApiKeyRow>> SqliteStore::ListApiKeys(const std::string& tenant_id) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListApiKeys));
  st.Bind(1, tenant_id);
  std::vector<ApiKeyRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("api keys"));
    if (!row) break;
    out.push_back(ReadApiKey(st));
  }
  return out;
}

Status SqliteStore::RevokeApiKey(const std::string& tenant_id, const std::string& id, std::int64_t at,
                                 const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kRevokeApiKey));
    st.Bind(1, at);
    st.Bind(2, tenant_id);
    st.Bind(3, id);
    KURA_RETURN_IF_ERROR(st.Run("api key"));
    if (c.Changes() == 0) return NotFoundError("api key not found");
    return Status::Ok();
  });
}

// --- Users

namespace {

Status InsertSessionRow(Connection& c, const SessionRow& s) {
  KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertSession));
  st.Bind(1, ByteView(s.token_hash));
  st.Bind(2, s.tenant_id);
  st.Bind(3, s.username);
  st.Bind(4, s.method);
  st.Bind(5, s.restriction);
  st.Bind(6, s.created_at);
  st.Bind(7, s.last_seen_at);
  st.Bind(8, s.expires_at);
  st.Bind(9, s.authenticated_at);
  BindOptionalInt(st, 10, s.revoked_at);
  return st.Run("session");
}

}  // namespace

Status SqliteStore::CreateUser(const UserRow& u, const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckNewUser(u));
  return Write(audit, [&](Connection& c) -> Status {
    if (!u.tenant_id.empty()) {
      // users has no foreign key to tenants (staff belong to none), so the
      // tenant is checked here; the single writer makes check and insert atomic.
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kTenantExists));
      st.Bind(1, u.tenant_id);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("tenant"));
      if (!row) return NotFoundError("user: the tenant it belongs to does not exist");
    }
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertUser));
    st.Bind(1, u.tenant_id);
    st.Bind(2, u.username);
    st.Bind(3, u.roles_json);
    st.Bind(4, u.password_hash);
    st.Bind(5, u.password_changed_at);
    st.Bind(6, u.password_history_json);
    st.Bind(7, u.kerberos_principal);
    BindOptionalBytes(st, 8, u.totp_secret_sealed);
    st.Bind(9, static_cast<std::int64_t>(u.totp_confirmed ? 1 : 0));
    st.Bind(10, u.totp_last_step);
    st.Bind(11, u.recovery_codes_json);
    st.Bind(12, static_cast<std::int64_t>(u.failed_count));
    st.Bind(13, u.failed_window_start);
    st.Bind(14, u.locked_until);
    st.Bind(15, static_cast<std::int64_t>(u.disabled ? 1 : 0));
    st.Bind(16, u.created_at);
    st.Bind(17, u.updated_at);
    st.Bind(18, u.version);
    return st.Run(kUserWhat);
  });
}

Result<UserRow> SqliteStore::GetUser(const std::string& tenant_id, const std::string& username) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetUser));
  st.Bind(1, tenant_id);
  st.Bind(2, username);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("user"));
  if (!row) return NotFoundError("user not found");
  return ReadUser(st);
}

Result<UserRow> SqliteStore::FindStaffByKerberos(const std::string& principal) {
  // '' is "no principal", shared by every user without one: never a match.
  if (principal.empty()) return NotFoundError("no staff user for this Kerberos principal");
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kFindStaffByKerberos));
  st.Bind(1, principal);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("user"));
  if (!row) return NotFoundError("no staff user for this Kerberos principal");
  return ReadUser(st);
}

Result<Page<UserRow>> SqliteStore::ListUsers(const std::string& tenant_id, const PageRequest& page) {
  const int limit = PageLimit(page);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListUsers));
  st.Bind(1, tenant_id);
  st.Bind(2, page.after);
  st.Bind(3, static_cast<std::int64_t>(limit) + 1);
  Page<UserRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("users"));
    if (!row) break;
    out.items.push_back(ReadUser(st));
  }
  FinishPage(out, limit, &UserRow::username);
  return out;
}

Status SqliteStore::UpdateUser(const UserRow& u, std::int64_t expected_version, const SessionRow* session,
                               const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckUserUpdate(u, expected_version, session));
  return Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kCasUser));
      st.Bind(1, u.roles_json);
      st.Bind(2, u.password_hash);
      st.Bind(3, u.password_changed_at);
      st.Bind(4, u.password_history_json);
      st.Bind(5, u.kerberos_principal);
      BindOptionalBytes(st, 6, u.totp_secret_sealed);
      st.Bind(7, static_cast<std::int64_t>(u.totp_confirmed ? 1 : 0));
      st.Bind(8, u.totp_last_step);
      st.Bind(9, u.recovery_codes_json);
      st.Bind(10, static_cast<std::int64_t>(u.failed_count));
      st.Bind(11, u.failed_window_start);
      st.Bind(12, u.locked_until);
      st.Bind(13, static_cast<std::int64_t>(u.disabled ? 1 : 0));
      st.Bind(14, u.updated_at);
      st.Bind(15, u.version);
      st.Bind(16, u.tenant_id);
      st.Bind(17, u.username);
      st.Bind(18, expected_version);
      KURA_RETURN_IF_ERROR(st.Run(kUserWhat));
    }
    if (c.Changes() == 0) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kUserVersion));
      st.Bind(1, u.tenant_id);
      st.Bind(2, u.username);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("user"));
      if (!row) return NotFoundError("user not found");
      return AbortedError("user version conflict: expected version " + std::to_string(expected_version) +
                          ", current version is " + std::to_string(st.ColumnInt(0)));
    }
    // In this operation's savepoint: a failed insert undoes the update too.
    if (session != nullptr) return InsertSessionRow(c, *session);
    return Status::Ok();
  });
}

Status SqliteStore::DeleteUser(const std::string& tenant_id, const std::string& username, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteUser));
      st.Bind(1, tenant_id);
      st.Bind(2, username);
      KURA_RETURN_IF_ERROR(st.Run("user"));
      if (c.Changes() == 0) return NotFoundError("user not found");
    }
    // The foreign key cascades too; explicit, so nothing depends on it.
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteUserSessions));
    st.Bind(1, tenant_id);
    st.Bind(2, username);
    return st.Run("delete user sessions");
  });
}

// --- Sessions

Result<SessionRow> SqliteStore::FindSession(ByteView token_hash) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kFindSession));
  st.Bind(1, token_hash);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("session"));
  if (!row) return NotFoundError("session not found");
  return ReadSession(st);
}

namespace {

Status TouchSessionRow(Connection& c, ByteView token_hash, std::int64_t last_seen_at) {
  {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kTouchSession));
    st.Bind(1, last_seen_at);
    st.Bind(2, token_hash);
    st.Bind(3, last_seen_at);
    KURA_RETURN_IF_ERROR(st.Run("session"));
    if (c.Changes() != 0) return Status::Ok();
  }
  // Unchanged: already seen as late or later (fine), or no such session.
  KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kSessionExists));
  st.Bind(1, token_hash);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("session"));
  if (!row) return NotFoundError("session not found");
  return Status::Ok();
}

}  // namespace

Status SqliteStore::TouchSession(ByteView token_hash, std::int64_t last_seen_at) {
  return Write([&](Connection& c) { return TouchSessionRow(c, token_hash, last_seen_at); });
}

void SqliteStore::TouchSessionAsync(Bytes token_hash, std::int64_t last_seen_at, std::function<void(Status)> done) {
  WriteAsync(
      nullptr,
      [token_hash = std::move(token_hash), last_seen_at](Connection& c) {
        return TouchSessionRow(c, token_hash, last_seen_at);
      },
      std::move(done));
}

Status SqliteStore::UpdateSession(const SessionRow& s, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kUpdateSession));
    st.Bind(1, s.method);
    st.Bind(2, s.restriction);
    st.Bind(3, s.authenticated_at);
    st.Bind(4, ByteView(s.token_hash));
    KURA_RETURN_IF_ERROR(st.Run("session"));
    if (c.Changes() == 0) return NotFoundError("session not found");
    return Status::Ok();
  });
}

Status SqliteStore::RevokeSession(ByteView token_hash, std::int64_t at, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kRevokeSession));
    st.Bind(1, at);
    st.Bind(2, token_hash);
    KURA_RETURN_IF_ERROR(st.Run("session"));
    if (c.Changes() == 0) return NotFoundError("session not found or already revoked");
    return Status::Ok();
  });
}

Result<int> SqliteStore::RevokeUserSessions(const std::string& tenant_id, const std::string& username,
                                            std::int64_t at, const AuditLink* audit) {
  int revoked = 0;
  Status s = Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kRevokeUserSessions));
    st.Bind(1, at);
    st.Bind(2, tenant_id);
    st.Bind(3, username);
    KURA_RETURN_IF_ERROR(st.Run("session"));
    revoked = static_cast<int>(c.Changes());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return revoked;
}

Result<int> SqliteStore::PurgeEndedSessions(std::int64_t ended_before, int limit, const AuditLink* audit) {
  if (limit < 1) return InvalidArgumentError("limit must be at least 1");
  int purged = 0;
  KURA_RETURN_IF_ERROR(Write(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kPurgeEndedSessions));
    st.Bind(1, ended_before);
    st.Bind(2, static_cast<std::int64_t>(limit));
    KURA_RETURN_IF_ERROR(st.Run("purge sessions"));
    purged = static_cast<int>(c.Changes());
    // Rolls back, so the entry is not written either.
    return purged == 0 ? NotFoundError("no session has ended") : Status::Ok();
  }));
  return purged;
}

// --- Lockbox

Status SqliteStore::CreateAccessRequest(const AccessRequestRow& r, const std::vector<OutboxRow>& notify,
                                        const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckNewAccessRequest(r, notify));
  KURA_ASSIGN_OR_RETURN(std::string approvals, EncodeApprovals(r.approvals));
  return Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertAccessRequest));
      st.Bind(1, r.tenant_id);
      st.Bind(2, r.id);
      st.Bind(3, r.requester);
      st.Bind(4, r.permissions_json);
      st.Bind(5, r.collections_json);
      st.Bind(6, r.duration_s);
      st.Bind(7, r.reason);
      st.Bind(8, r.detail);
      st.Bind(9, r.ticket);
      st.Bind(10, r.status);
      st.Bind(11, static_cast<std::int64_t>(r.required_approvals));
      st.Bind(12, approvals);
      st.Bind(13, r.created_at);
      st.Bind(14, r.expires_at);
      st.Bind(15, r.grant_starts_at);
      st.Bind(16, r.grant_ends_at);
      st.Bind(17, r.decided_by);
      st.Bind(18, r.decided_at);
      st.Bind(19, r.decision_reason);
      st.Bind(20, r.version);
      // A duplicate id is AlreadyExists, a missing tenant NotFound (foreign key).
      KURA_RETURN_IF_ERROR(st.Run(kAccessRequestWhat));
    }
    // In this operation's savepoint, after the request: a request that
    // cannot be inserted leaves no notification behind, and a notification
    // that cannot be inserted undoes the request.
    for (const OutboxRow& n : notify) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertNotification));
      st.Bind(1, n.tenant_id);
      st.Bind(2, n.url);
      st.Bind(3, n.payload_json);
      st.Bind(4, static_cast<std::int64_t>(n.attempts));
      st.Bind(5, n.next_attempt_at);
      BindOptionalInt(st, 6, n.delivered_at);
      st.Bind(7, n.last_error);
      KURA_RETURN_IF_ERROR(st.Run("notification"));
    }
    return Status::Ok();
  });
}

Result<AccessRequestRow> SqliteStore::GetAccessRequest(const std::string& tenant_id, const std::string& id) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kGetAccessRequest));
  st.Bind(1, tenant_id);
  st.Bind(2, id);
  KURA_ASSIGN_OR_RETURN(bool row, st.Step(kAccessRequestWhat));
  if (!row) return NotFoundError("access request not found");
  return ReadAccessRequest(st);
}

Result<Page<AccessRequestRow>> SqliteStore::ListAccessRequests(const std::string& tenant_id,
                                                               const std::string& status, const PageRequest& page) {
  const int limit = PageLimit(page);
  const bool first = page.after.empty();
  const char* sql = status.empty() ? (first ? kListAccessRequests : kListAccessRequestsAfter)
                                   : (first ? kListAccessRequestsByStatus : kListAccessRequestsByStatusAfter);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(sql));
  int i = 0;
  st.Bind(++i, tenant_id);
  if (!status.empty()) st.Bind(++i, status);
  if (!first) st.Bind(++i, page.after);
  st.Bind(++i, static_cast<std::int64_t>(limit) + 1);
  Page<AccessRequestRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("access requests"));
    if (!row) break;
    KURA_ASSIGN_OR_RETURN(AccessRequestRow request, ReadAccessRequest(st));
    out.items.push_back(std::move(request));
  }
  FinishPage(out, limit, &AccessRequestRow::id);
  return out;
}

Result<std::vector<AccessRequestRow>> SqliteStore::ActiveGrants(const std::string& tenant_id,
                                                                const std::string& requester, std::int64_t now) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kActiveGrants));
  st.Bind(1, tenant_id);
  st.Bind(2, requester);
  st.Bind(3, now);
  st.Bind(4, now);
  std::vector<AccessRequestRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("access grants"));
    if (!row) break;
    KURA_ASSIGN_OR_RETURN(AccessRequestRow request, ReadAccessRequest(st));
    out.push_back(std::move(request));
  }
  return out;
}

Status SqliteStore::UpdateAccessRequest(const AccessRequestRow& r, std::int64_t expected_version,
                                        const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckAccessRequestUpdate(r, expected_version));
  KURA_ASSIGN_OR_RETURN(std::string approvals, EncodeApprovals(r.approvals));
  return Write(audit, [&](Connection& c) -> Status {
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kCasAccessRequest));
      st.Bind(1, r.permissions_json);
      st.Bind(2, r.collections_json);
      st.Bind(3, r.duration_s);
      st.Bind(4, r.reason);
      st.Bind(5, r.detail);
      st.Bind(6, r.ticket);
      st.Bind(7, r.status);
      st.Bind(8, static_cast<std::int64_t>(r.required_approvals));
      st.Bind(9, approvals);
      st.Bind(10, r.expires_at);
      st.Bind(11, r.grant_starts_at);
      st.Bind(12, r.grant_ends_at);
      st.Bind(13, r.decided_by);
      st.Bind(14, r.decided_at);
      st.Bind(15, r.decision_reason);
      st.Bind(16, r.version);
      st.Bind(17, r.tenant_id);
      st.Bind(18, r.id);
      st.Bind(19, expected_version);
      KURA_RETURN_IF_ERROR(st.Run(kAccessRequestWhat));
    }
    if (c.Changes() != 0) return Status::Ok();
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kAccessRequestVersion));
    st.Bind(1, r.tenant_id);
    st.Bind(2, r.id);
    KURA_ASSIGN_OR_RETURN(bool row, st.Step(kAccessRequestWhat));
    if (!row) return NotFoundError("access request not found");
    return AbortedError("access request version conflict: expected version " + std::to_string(expected_version) +
                        ", current version is " + std::to_string(st.ColumnInt(0)));
  });
}

Result<std::vector<OutboxRow>> SqliteStore::DueNotifications(std::int64_t now, int limit) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kDueNotifications));
  st.Bind(1, now);
  st.Bind(2, static_cast<std::int64_t>(PageLimit(limit)));
  std::vector<OutboxRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("notifications"));
    if (!row) break;
    out.push_back(ReadNotification(st));
  }
  return out;
}

Status SqliteStore::UpdateNotification(const OutboxRow& n) {
  // Bookkeeping of the delivery worker: no audit entry (the notification's
  // request was audited when it was made).
  return Write([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kUpdateNotification));
    st.Bind(1, static_cast<std::int64_t>(n.attempts));
    st.Bind(2, n.next_attempt_at);
    BindOptionalInt(st, 3, n.delivered_at);
    st.Bind(4, n.last_error);
    st.Bind(5, n.id);
    KURA_RETURN_IF_ERROR(st.Run("notification"));
    if (c.Changes() == 0) return NotFoundError("notification not found");
    return Status::Ok();
  });
}

// --- Audit log

Status SqliteStore::AppendAudit(const AuditLink& entry) {
  // An operation of its own in the group-commit writer: concurrent appends
  // (every audited read) share one transaction and one fsync.
  return Write(
      &entry, [](Connection&) { return Status::Ok(); }, OpKind::kAppendOnly);
}

void SqliteStore::AppendAuditAsync(std::unique_ptr<AuditLink> entry, AuditCompletion done) {
  // An operation of its own, like AppendAudit, that nobody waits for.
  WriteAsync(
      std::move(entry), [](Connection&) { return Status::Ok(); }, std::move(done), OpKind::kAppendOnly);
}

void SqliteStore::InsertRecordAsync(RecordWrite write, std::unique_ptr<AuditLink> audit, AuditCompletion done) {
  if (write.version != 1) {
    done(InvalidArgumentError("a new record starts at version 1"));
    return;
  }
  WriteAsync(
      std::move(audit),
      [this, w = std::move(write)](Connection& c) { return InsertRecordRows(c, w, &data_key_versions_); },
      std::move(done), OpKind::kRepeatableChange);
}

Result<std::int64_t> SqliteStore::AuditSize() {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kAuditSize));
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit head"));
  if (!row) return DataLossError("audit log: the head row is missing");
  return st.ColumnInt(0);
}

Result<AuditHeadRow> SqliteStore::ReadAuditHeadRow() {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kReadAuditHead));
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit head"));
  if (!row) return DataLossError("audit log: the head row is missing");
  return AuditHeadRow{st.ColumnInt(0), st.ColumnBytes(1)};
}

Result<SeqBounds> SqliteStore::AuditSeqBounds() {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kAuditSeqBounds));
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit log"));
  SeqBounds bounds;
  if (row && !st.ColumnIsNull(0)) {
    bounds.lowest = st.ColumnInt(0);
    bounds.highest = st.ColumnInt(1);
  }
  return bounds;
}

Result<std::vector<AuditRow>> SqliteStore::ReadAudit(std::int64_t from_seq, int limit) {
  if (from_seq < 0) return InvalidArgumentError("audit log: negative sequence number");
  std::vector<AuditRow> out;
  if (limit <= 0) return out;
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kReadAudit));
  st.Bind(1, from_seq);
  st.Bind(2, from_seq + limit);
  out.reserve(static_cast<std::size_t>(std::min(limit, 4096)));
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit log"));
    if (!row) break;
    out.push_back(ReadAuditRow(st));
  }
  return out;
}

Result<std::vector<Bytes>> SqliteStore::AuditLeafHashes(std::int64_t begin, std::int64_t end) {
  if (begin < 0 || end < begin) return InvalidArgumentError("audit log: invalid leaf range");
  std::vector<Bytes> out;
  if (begin == end) {
    KURA_ASSIGN_OR_RETURN(std::int64_t size, AuditSize());
    if (end > size) return InvalidArgumentError("audit log: leaf range beyond the log's size");
    return out;
  }
  out.reserve(static_cast<std::size_t>(end - begin));
  {
    // One range scan of the primary key (two columns, no entry bodies).
    KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
    KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kAuditLeafHashes));
    st.Bind(1, begin);
    st.Bind(2, end);
    for (;;) {
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit log"));
      if (!row) break;
      if (st.ColumnInt(0) != begin + static_cast<std::int64_t>(out.size())) {
        return DataLossError("audit log: entry " + std::to_string(begin + static_cast<std::int64_t>(out.size())) +
                             " is missing");
      }
      out.push_back(st.ColumnBytes(1));
    }
  }
  if (static_cast<std::int64_t>(out.size()) == end - begin) return out;
  // Fewer rows than asked: past the end of the log, or a hole in it.
  KURA_ASSIGN_OR_RETURN(std::int64_t size, AuditSize());
  if (end > size) return InvalidArgumentError("audit log: leaf range beyond the log's size");
  return DataLossError("audit log: entry " + std::to_string(begin + static_cast<std::int64_t>(out.size())) +
                       " is missing");
}

Result<Page<AuditRow>> SqliteStore::FindAudit(const AuditQuery& q) {
  const int limit = PageLimit(q.limit);
  const unsigned mask = AuditFilterMask(q);
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(FindAuditSql(Dialect::kSqlite, mask)));
  // Bound in the order AuditFilterMask documents.
  int i = 1;
  st.Bind(i++, q.after_seq.value_or(-1));
  if (q.tenant_id.has_value()) st.Bind(i++, std::string_view(*q.tenant_id));
  if (!q.principal.empty()) st.Bind(i++, std::string_view(q.principal));
  if (!q.action.empty()) st.Bind(i++, std::string_view(q.action));
  if (!q.resource.empty()) st.Bind(i++, std::string_view(q.resource));
  if (!q.outcome.empty()) st.Bind(i++, std::string_view(q.outcome));
  if (q.from_ms.has_value()) st.Bind(i++, *q.from_ms);
  if (q.to_ms.has_value()) st.Bind(i++, *q.to_ms);
  st.Bind(i, static_cast<std::int64_t>(limit) + 1);
  Page<AuditRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit log"));
    if (!row) break;
    out.items.push_back(ReadAuditRow(st));
  }
  FinishAuditPage(q, limit, out);
  return out;
}

Status SqliteStore::PutAuditCheckpoint(const AuditCheckpointRow& cp) {
  return Write([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kInsertCheckpoint));
    st.Bind(1, cp.tree_size);
    st.Bind(2, cp.at_ms);
    st.Bind(3, ByteView(cp.root));
    st.Bind(4, std::string_view(cp.note));
    st.Bind(5, ByteView(cp.signature));
    return st.Run("audit checkpoint");
  });
}

Result<std::vector<AuditCheckpointRow>> SqliteStore::ListAuditCheckpoints(std::int64_t after_size, int limit) {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListCheckpoints));
  st.Bind(1, after_size);
  st.Bind(2, static_cast<std::int64_t>(PageLimit(limit)));
  std::vector<AuditCheckpointRow> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit checkpoints"));
    if (!row) break;
    out.push_back(ReadCheckpoint(st));
  }
  return out;
}

Result<AuditCheckpointRow> SqliteStore::LatestAuditCheckpoint() {
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kLatestCheckpoint));
  KURA_ASSIGN_OR_RETURN(bool row, st.Step("audit checkpoint"));
  if (!row) return NotFoundError("no audit checkpoint yet");
  return ReadCheckpoint(st);
}

// --- Leases and status

Result<bool> SqliteStore::HoldLease(const std::string& name, const std::string& node_id,
                                    std::chrono::milliseconds ttl) {
  if (name.empty() || node_id.empty() || ttl.count() < 1) {
    return InvalidArgumentError("lease: a name, a node id and a positive ttl are required");
  }
  bool held = false;
  KURA_RETURN_IF_ERROR(Write([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kHoldLease));
    st.Bind(1, name);
    st.Bind(2, node_id);
    st.Bind(3, static_cast<std::int64_t>(ttl.count()));
    st.Bind(4, NowUnixMillis());
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("lease"));
    held = row && st.ColumnText(0) == node_id;
    while (row) {
      KURA_ASSIGN_OR_RETURN(row, st.Step("lease"));
    }
    return Status::Ok();
  }));
  return held;
}

Status SqliteStore::ReleaseLease(const std::string& name, const std::string& node_id) {
  return Write([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kReleaseLease));
    st.Bind(1, name);
    st.Bind(2, node_id);
    return st.Run("lease");
  });
}

Result<StorageStatus> SqliteStore::GetStorageStatus() {
  StorageStatus out;
  out.engine = "sqlite";
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListLeases));
  st.Bind(1, NowUnixMillis());
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("leases"));
    if (!row) break;
    out.leases.push_back({st.ColumnText(0), st.ColumnText(1), st.ColumnInt(2)});
  }
  return out;
}

// --- Retention

namespace {

// records.updated_at is the write time of the current version (insert and
// every update set it).
constexpr char kListUpdatedBefore[] =
    "SELECT id FROM records WHERE tenant_id = ? AND collection = ? AND id > ? AND updated_at < ? ORDER BY id LIMIT ?";
// The age test and the delete are one statement: a record updated after it
// was listed is kept.
constexpr char kDeleteRecordUpdatedBefore[] =
    "DELETE FROM records WHERE tenant_id = ? AND collection = ? AND id = ? AND updated_at < ?";

}  // namespace

Result<std::vector<std::string>> SqliteStore::ListRecordsUpdatedBefore(const std::string& tenant_id,
                                                                       const std::string& collection,
                                                                       std::int64_t updated_before,
                                                                       const std::string& after_id, int limit) {
  if (limit < 1) return InvalidArgumentError("limit must be at least 1");
  KURA_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  KURA_ASSIGN_OR_RETURN(Statement st, (*r).Prepare(kListUpdatedBefore));
  st.Bind(1, tenant_id);
  st.Bind(2, collection);
  st.Bind(3, after_id);
  st.Bind(4, updated_before);
  st.Bind(5, static_cast<std::int64_t>(limit));
  std::vector<std::string> out;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, st.Step("records"));
    if (!row) break;
    out.push_back(st.ColumnText(0));
  }
  return out;
}

Status SqliteStore::ExpireRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                                 std::int64_t updated_before, const AuditLink* audit) {
  return Write(audit, [&](Connection& c) -> Status {
    record_cache_.BeginChange(tenant_id, collection, id);
    {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kDeleteRecordUpdatedBefore));
      st.Bind(1, tenant_id);
      st.Bind(2, collection);
      st.Bind(3, id);
      st.Bind(4, updated_before);
      KURA_RETURN_IF_ERROR(st.Run("expire record"));
    }
    if (c.Changes() == 0) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(kCurrentVersion));
      st.Bind(1, tenant_id);
      st.Bind(2, collection);
      st.Bind(3, id);
      KURA_ASSIGN_OR_RETURN(bool row, st.Step("record"));
      if (!row) return NotFoundError("record not found");
      return AbortedError("record was updated after the retention cutoff");
    }
    for (const char* sql : {kDeleteIndex, kDeleteVersions}) {
      KURA_ASSIGN_OR_RETURN(Statement st, c.Prepare(sql));
      st.Bind(1, tenant_id);
      st.Bind(2, collection);
      st.Bind(3, id);
      KURA_RETURN_IF_ERROR(st.Run("expire record"));
    }
    return Status::Ok();
  });
}

// --- Entry points

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store, SqliteStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

Result<GroupCommitStats> GroupCommitStatsForTest(Store& store) {
  auto* s = dynamic_cast<SqliteStore*>(&store);
  if (s == nullptr) return InvalidArgumentError("not an SQLite store");
  return s->Stats();
}

Result<RecordCacheStats> RecordCacheStatsForTest(Store& store) {
  auto* s = dynamic_cast<SqliteStore*>(&store);
  if (s == nullptr) return InvalidArgumentError("not an SQLite store");
  auto st = s->CacheStats();
  return RecordCacheStats{static_cast<std::int64_t>(st.hits), static_cast<std::int64_t>(st.misses),
                          static_cast<std::int64_t>(st.entries)};
}

Status ExecOnWriterForTest(Store& store, const std::string& sql) {
  auto* s = dynamic_cast<SqliteStore*>(&store);
  if (s == nullptr) return InvalidArgumentError("not an SQLite store");
  return s->ExecOnWriter(sql);
}

}  // namespace kura::store
