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
//
// Audit log: one chain for all nodes. A transaction that appends locks the
// single audit_head row (SELECT … FOR UPDATE) after its changes, links and
// inserts its entries, moves the head and commits; the next appender, on any
// node, waits for that commit and continues from it. So that the head lock
// is not one commit per write, every audited write and every AppendAudit of
// a store goes through its appender thread (group commit, like the SQLite
// engine's writer): callers queue and block; the appender runs what was
// queued meanwhile as one transaction — BEGIN, each write in a SAVEPOINT of
// its own (a write that fails alone is rolled back to it and keeps its
// error), then one head lock, the entries of the writes that succeeded and
// of the plain appends in multi-row INSERTs, the head update, and one COMMIT
// — and wakes them with the outcome. A write and its entry thus always
// commit together. Writes whose statements do not depend on each other's
// results (InsertRecord: PipelinedWrite) skip the savepoints: the batch's
// BEGIN, their statements and the head lock go in one libpq pipeline (one
// round trip), and only if a statement fails or a check refuses does the
// batch run again write by write. A batch that fails as a whole follows
// Transact's rules (retried after a deadlock, a serialization failure or a
// connection lost before COMMIT; Unavailable when COMMIT's answer is lost or
// the standby did not confirm it). The head lock is always taken after
// every row lock of the batch, on every node, so the lock order is the same
// everywhere; the deadlocks left (two nodes' batches locking the same rows
// in opposite orders) are PostgreSQL's to detect, and the batch is retried.
#include "store/postgres_store.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/log.h"
#include "store/audit_sql.h"
#include "store/identity_internal.h"
#include "store/lockbox_internal.h"
#include "store/migrations.h"
#include "store/postgres_internal.h"
#include "store/wake_flag_internal.h"

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
    "INSERT INTO tenants (id, name, region, created_at, data_key_version) "
    "VALUES ($1, $2, $3, $4, $5)";
constexpr char kGetTenant[] =
    "SELECT id, name, region, created_at, data_key_version "
    "FROM tenants WHERE id = $1";
constexpr char kListTenants[] =
    "SELECT id, name, region, created_at, data_key_version "
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
    // Users before their sessions: a concurrent UpdateUser that opens a
    // session holds the user's row lock, so the users DELETE waits for it to
    // commit, and the sessions DELETE (a new statement, a new snapshot under
    // READ COMMITTED) then sees the session it added.
    "DELETE FROM users WHERE tenant_id = $1",
    "DELETE FROM sessions WHERE tenant_id = $1",
    // Lockbox: requests (grants) and their notifications, delivered or not.
    // A concurrent CreateAccessRequest inserts its notifications after its
    // request, whose foreign-key lock on the tenant row waits for this
    // transaction: it then fails and leaves no notification behind.
    "DELETE FROM access_requests WHERE tenant_id = $1",
    "DELETE FROM notification_outbox WHERE tenant_id = $1",
    "DELETE FROM key_rotations WHERE tenant_id = $1",
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
    "INSERT INTO record_versions (tenant_id, collection, record_id, version, ciphertext, created_at, key_version) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)";
// The data key version a record write must be sealed under. FOR SHARE: a
// rotation's UPDATE of data_key_version waits until this write commits, and
// a write that starts after the rotation committed reads the new version, so
// once the rotation is visible no ciphertext under an older key can still
// appear (what lets the re-encryption job destroy the old key when it finds
// none left).
constexpr char kDataKeyVersion[] = "SELECT data_key_version FROM tenants WHERE id = $1 FOR SHARE";
// The new records of a batch, several per statement (RecordInserts): the
// columns as arrays, one element per record.
constexpr char kDataKeyVersions[] =
    "SELECT id, data_key_version FROM tenants WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE";
constexpr char kInsertRecords[] =
    "INSERT INTO records (tenant_id, collection, id, current_version, created_at, updated_at, subject_hmac) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], "
    "$7::bytea[])";
constexpr char kInsertVersions[] =
    "INSERT INTO record_versions (tenant_id, collection, record_id, version, ciphertext, created_at, key_version) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::bigint[], "
    "$7::bigint[])";
constexpr char kInsertIndexEntries[] =
    "INSERT INTO record_index (tenant_id, collection, field, hmac, record_id) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[]) ON CONFLICT DO NOTHING";
constexpr char kRaiseDataKeyVersion[] =
    "UPDATE tenants SET data_key_version = $1 WHERE id = $2 AND data_key_version < $1";
constexpr char kTenantIdExists[] = "SELECT 1 FROM tenants WHERE id = $1";
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
    "SELECT r.current_version, r.created_at, v.version, v.ciphertext, v.created_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = $1 AND r.collection = $2 AND r.id = $3";
// Several current versions in one statement (RunReadBatchAsOneStatement): the
// keys as three arrays, each looked up by the subquery's index scans (LIMIT 1
// keeps the planner from flattening it into a join it might run as a scan);
// n = the key's position.
constexpr char kGetCurrentRecords[] =
    "SELECT k.n, x.current_version, x.created_at, x.version, x.ciphertext, x.updated_at, x.key_version "
    "FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(tenant_id, collection, id, n) "
    "CROSS JOIN LATERAL (SELECT r.current_version, r.created_at, v.version, v.ciphertext, "
    "v.created_at AS updated_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = k.tenant_id AND r.collection = k.collection AND r.id = k.id LIMIT 1) x";
constexpr char kGetRecordVersion[] =
    "SELECT r.current_version, r.created_at, v.version, v.ciphertext, v.created_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id "
    "WHERE r.tenant_id = $1 AND r.collection = $2 AND r.id = $3 AND v.version = $4";
constexpr char kListVersions[] =
    "SELECT version, created_at FROM record_versions WHERE tenant_id = $1 AND collection = $2 "
    "AND record_id = $3 ORDER BY version DESC";
constexpr char kListRecords[] =
    "SELECT r.id, r.current_version, r.created_at, v.ciphertext, v.created_at, v.key_version "
    "FROM records r JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE r.tenant_id = $1 AND r.collection = $2 AND r.id > $3 ORDER BY r.id LIMIT $4";
constexpr char kFindRecords[] =
    "SELECT r.id, r.current_version, r.created_at, v.ciphertext, v.created_at, v.key_version "
    "FROM record_index i "
    "JOIN records r ON r.tenant_id = i.tenant_id AND r.collection = i.collection AND r.id = i.record_id "
    "JOIN record_versions v ON v.tenant_id = r.tenant_id AND v.collection = r.collection "
    "AND v.record_id = r.id AND v.version = r.current_version "
    "WHERE i.tenant_id = $1 AND i.collection = $2 AND i.field = $3 AND i.hmac = $4 AND i.record_id > $5 "
    "ORDER BY i.record_id LIMIT $6";

// DEK rotation (sqlite_store.cc explains each).
constexpr char kScanBelowKey[] =
    "SELECT collection, record_id, version, key_version, ciphertext FROM record_versions "
    "WHERE tenant_id = $1 AND (collection, record_id, version) > ($2, $3, $4) AND key_version < $5 "
    "ORDER BY collection, record_id, version LIMIT $6";
constexpr char kCountBelowKey[] =
    "SELECT COUNT(*) FROM record_versions WHERE tenant_id = $1 AND key_version < $2";
constexpr char kRewriteCiphertext[] =
    "UPDATE record_versions SET ciphertext = $1, key_version = $2 "
    "WHERE tenant_id = $3 AND collection = $4 AND record_id = $5 AND version = $6 AND key_version = $7";
constexpr char kAdvanceRotation[] =
    "UPDATE key_rotations SET cursor_collection = $1, cursor_record_id = $2, cursor_version = $3, done = done + $4 "
    "WHERE tenant_id = $5 AND to_version = $6 AND state = 'running'";
constexpr char kPutRotation[] =
    "INSERT INTO key_rotations (tenant_id, to_version, state, cursor_collection, cursor_record_id, cursor_version, "
    "total, done, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT (tenant_id) DO UPDATE SET to_version = excluded.to_version, state = excluded.state, "
    "cursor_collection = excluded.cursor_collection, cursor_record_id = excluded.cursor_record_id, "
    "cursor_version = excluded.cursor_version, total = excluded.total, done = excluded.done, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at";
constexpr char kGetRotation[] =
    "SELECT tenant_id, to_version, state, cursor_collection, cursor_record_id, cursor_version, total, done, "
    "started_at, finished_at FROM key_rotations WHERE tenant_id = $1";
constexpr char kListRunningRotations[] =
    "SELECT tenant_id, to_version, state, cursor_collection, cursor_record_id, cursor_version, total, done, "
    "started_at, finished_at FROM key_rotations WHERE state = 'running' ORDER BY tenant_id";

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

// Users and sessions. Every column of a user, in the order ReadUser reads.
#define KURA_USER_COLUMNS                                                                                      \
  "tenant_id, username, roles_json, password_hash, password_changed_at, password_history_json, "              \
  "kerberos_principal, totp_secret_sealed, totp_confirmed, totp_last_step, recovery_codes_json, failed_count, " \
  "failed_window_start, locked_until, disabled, created_at, updated_at, version"
// A tenant user's tenant must exist (users has no foreign key to tenants:
// staff belong to none). KEY SHARE conflicts with DeleteTenant's FOR UPDATE
// (kLockTenant), so a user cannot be added to a tenant being deleted.
constexpr char kShareTenant[] = "SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE";
constexpr char kInsertUser[] =
    "INSERT INTO users (" KURA_USER_COLUMNS ") "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
constexpr char kGetUser[] = "SELECT " KURA_USER_COLUMNS " FROM users WHERE tenant_id = $1 AND username = $2";
constexpr char kFindStaffByKerberos[] =
    "SELECT " KURA_USER_COLUMNS " FROM users WHERE kerberos_principal = $1 AND tenant_id = ''";
constexpr char kListUsers[] =
    "SELECT " KURA_USER_COLUMNS " FROM users WHERE tenant_id = $1 AND username > $2 ORDER BY username LIMIT $3";
#undef KURA_USER_COLUMNS
// The compare-and-set on version; the key and created_at never change.
constexpr char kCasUser[] =
    "UPDATE users SET roles_json = $1, password_hash = $2, password_changed_at = $3, password_history_json = $4, "
    "kerberos_principal = $5, totp_secret_sealed = $6, totp_confirmed = $7, totp_last_step = $8, "
    "recovery_codes_json = $9, failed_count = $10, failed_window_start = $11, locked_until = $12, disabled = $13, "
    "updated_at = $14, version = $15 "
    "WHERE tenant_id = $16 AND username = $17 AND version = $18";
constexpr char kUserVersion[] = "SELECT version FROM users WHERE tenant_id = $1 AND username = $2";
constexpr char kDeleteUser[] = "DELETE FROM users WHERE tenant_id = $1 AND username = $2";
constexpr char kDeleteUserSessions[] = "DELETE FROM sessions WHERE tenant_id = $1 AND username = $2";

constexpr char kInsertSession[] =
    "INSERT INTO sessions (token_hash, tenant_id, username, method, restriction, created_at, last_seen_at, "
    "expires_at, authenticated_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
constexpr char kFindSession[] =
    "SELECT token_hash, tenant_id, username, method, restriction, created_at, last_seen_at, expires_at, "
    "authenticated_at, revoked_at FROM sessions WHERE token_hash = $1";
constexpr char kSessionExists[] = "SELECT 1 FROM sessions WHERE token_hash = $1";
// Only ever forward: concurrent requests of one session may finish in any order.
constexpr char kTouchSession[] =
    "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND last_seen_at < $1";
constexpr char kUpdateSession[] =
    "UPDATE sessions SET method = $1, restriction = $2, authenticated_at = $3 WHERE token_hash = $4";
constexpr char kRevokeSession[] =
    "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";
constexpr char kRevokeUserSessions[] =
    "UPDATE sessions SET revoked_at = $1 WHERE tenant_id = $2 AND username = $3 AND revoked_at IS NULL";
constexpr char kPurgeEndedSessions[] =
    "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expires_at < $1 OR "
    "revoked_at < $1 LIMIT $2)";

// Lockbox. Every column of an access request, in the order
// ReadAccessRequest reads.
#define KURA_REQUEST_COLUMNS                                                                                   \
  "tenant_id, id, requester, permissions_json, collections_json, duration_s, reason, detail, ticket, status, " \
  "required_approvals, approvals_json, created_at, expires_at, grant_starts_at, grant_ends_at, decided_by, "   \
  "decided_at, decision_reason, version"
constexpr char kInsertAccessRequest[] =
    "INSERT INTO access_requests (" KURA_REQUEST_COLUMNS ") "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
constexpr char kGetAccessRequest[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = $1 AND id = $2";
// Newest first (`id < $n ORDER BY id DESC`); one text per combination.
constexpr char kListAccessRequests[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2";
constexpr char kListAccessRequestsAfter[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = $1 AND id < $2 "
    "ORDER BY id DESC LIMIT $3";
constexpr char kListAccessRequestsByStatus[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = $1 AND status = $2 "
    "ORDER BY id DESC LIMIT $3";
constexpr char kListAccessRequestsByStatusAfter[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests WHERE tenant_id = $1 AND status = $2 AND id < $3 "
    "ORDER BY id DESC LIMIT $4";
// The grant window is half-open: it starts at grant_starts_at and is over
// at grant_ends_at.
constexpr char kActiveGrants[] =
    "SELECT " KURA_REQUEST_COLUMNS " FROM access_requests "
    "WHERE tenant_id = $1 AND requester = $2 AND status = 'approved' AND grant_ends_at > $3 "
    "AND grant_starts_at <= $3 ORDER BY id";
#undef KURA_REQUEST_COLUMNS
// The compare-and-set on version; the key, requester and created_at never
// change.
constexpr char kCasAccessRequest[] =
    "UPDATE access_requests SET permissions_json = $1, collections_json = $2, duration_s = $3, reason = $4, "
    "detail = $5, ticket = $6, status = $7, required_approvals = $8, approvals_json = $9, expires_at = $10, "
    "grant_starts_at = $11, grant_ends_at = $12, decided_by = $13, decided_at = $14, decision_reason = $15, "
    "version = $16 WHERE tenant_id = $17 AND id = $18 AND version = $19";
constexpr char kAccessRequestVersion[] = "SELECT version FROM access_requests WHERE tenant_id = $1 AND id = $2";

#define KURA_OUTBOX_COLUMNS "id, tenant_id, url, payload_json, attempts, next_attempt_at, delivered_at, last_error"
// The id is the engine's (an identity column, migrations.cc {serial_pk}).
constexpr char kInsertNotification[] =
    "INSERT INTO notification_outbox (tenant_id, url, payload_json, attempts, next_attempt_at, delivered_at, "
    "last_error) VALUES ($1, $2, $3, $4, $5, $6, $7)";
constexpr char kDueNotifications[] =
    "SELECT " KURA_OUTBOX_COLUMNS " FROM notification_outbox "
    "WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2";
#undef KURA_OUTBOX_COLUMNS
constexpr char kUpdateNotification[] =
    "UPDATE notification_outbox SET attempts = $1, next_attempt_at = $2, delivered_at = $3, last_error = $4 "
    "WHERE id = $5";

// Audit log. Every transaction that appends locks the one head row first:
// whatever node appends, entries get consecutive sequence numbers and each
// links to the committed entry before it. The lock is held to COMMIT.
constexpr char kLockAuditHead[] = "SELECT next_seq, last_hash FROM audit_head WHERE id = 1 FOR UPDATE";
constexpr char kUpdateAuditHead[] = "UPDATE audit_head SET next_seq = $1, last_hash = $2 WHERE id = 1";
// Locks the head like kLockAuditHead, and fails (division by zero, SQLSTATE
// 22012) unless it is still ($1, $2): the head this node moved it to last.
// A missing head row fails too. Lets a batch of entries linked after that
// head go in the same pipeline as the lock and the COMMIT.
constexpr char kLockAuditHeadIfUnmoved[] =
    "WITH h AS (SELECT next_seq, last_hash FROM audit_head WHERE id = 1 FOR UPDATE) "
    "SELECT 1 / COALESCE((SELECT CASE WHEN next_seq = $1 AND last_hash IS NOT DISTINCT FROM $2 THEN 1 ELSE 0 END "
    "FROM h), 0)";
constexpr char kDivisionByZero[] = "22012";
constexpr char kAuditSize[] = "SELECT next_seq FROM audit_head WHERE id = 1";
constexpr char kAuditSeqBounds[] = "SELECT min(seq), max(seq) FROM audit_log";
constexpr char kReadAuditHead[] = "SELECT next_seq, last_hash FROM audit_head WHERE id = 1";
constexpr char kReadAudit[] =
    "SELECT seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash FROM audit_log "
    "WHERE seq >= $1 AND seq < $2 ORDER BY seq";
constexpr char kAuditLeafHashes[] = "SELECT seq, hash FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq";
constexpr char kInsertCheckpoint[] =
    "INSERT INTO audit_checkpoints (tree_size, at_ms, root, note, signature) VALUES ($1, $2, $3, $4, $5)";
constexpr char kListCheckpoints[] =
    "SELECT tree_size, at_ms, root, note, signature FROM audit_checkpoints WHERE tree_size > $1 "
    "ORDER BY tree_size LIMIT $2";
constexpr char kLatestCheckpoint[] =
    "SELECT tree_size, at_ms, root, note, signature FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";

// Leases. Acquire-or-renew in one statement on the database's clock: the
// row is inserted if absent; if present it is taken over only when this node
// already holds it or it has expired. A concurrent contender on another node
// waits for the row lock and re-checks the WHERE against the committed row, so
// exactly one node gets it. RETURNING yields a row only when this node holds
// the lease afterwards. EXTRACT(EPOCH FROM clock_timestamp()) is standard
// enough for the PostgreSQL-compatible engines kura targets.
#define KURA_PG_NOW_MS "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
constexpr char kHoldLease[] =
    "INSERT INTO leases (name, holder, expires_at_ms) VALUES ($1, $2, " KURA_PG_NOW_MS " + $3) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms "
    "WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= " KURA_PG_NOW_MS " "
    "RETURNING holder";
constexpr char kReleaseLease[] = "DELETE FROM leases WHERE name = $1 AND holder = $2";
constexpr char kListLeases[] =
    "SELECT name, holder, expires_at_ms - " KURA_PG_NOW_MS " FROM leases ORDER BY name";
#undef KURA_PG_NOW_MS
// Replication, as the server kura is connected to sees it. Needs pg_monitor
// (or pg_read_all_stats) for the columns of other roles' sessions: without
// it the rows are there but state and names are NULL.
constexpr char kRecoveryState[] = "SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names')";
constexpr char kReplication[] =
    "SELECT application_name, state, sync_state, "
    "CAST(EXTRACT(EPOCH FROM replay_lag) * 1000 AS BIGINT) FROM pg_stat_replication ORDER BY application_name";

// Multi-row INSERTs of audit entries, all in the group commit's one pipeline:
// n entries take one statement per bit of n (at most 32 rows each), e.g. 19 =
// 16 + 2 + 1, each statement costing PostgreSQL a bind and an executor run.
// Sizes are fixed so each text is prepared once per connection.
constexpr int kAuditColumnsPerRow = 9;
constexpr int kMaxAuditRowsPerStatement = 32;
int AuditRowsPerStatement(std::size_t left) {
  int n = kMaxAuditRowsPerStatement;
  while (static_cast<std::size_t>(n) > left) n /= 2;
  return n;
}
const char* InsertAuditSql(int rows) {
  auto build = [](int n) {
    std::string sql =
        "INSERT INTO audit_log (seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash) VALUES ";
    int p = 0;
    for (int r = 0; r < n; ++r) {
      sql += r == 0 ? "(" : ", (";
      for (int c = 0; c < kAuditColumnsPerRow; ++c) {
        if (c != 0) sql += ", ";
        sql += "$" + std::to_string(++p);
      }
      sql += ")";
    }
    return sql;
  };
  // Index k: 2^k rows.
  static_assert(kMaxAuditRowsPerStatement == 1 << 5);
  static const std::array<std::string, 6> texts = {build(1), build(2), build(4), build(8), build(16), build(32)};
  return texts[static_cast<std::size_t>(std::bit_width(static_cast<unsigned>(rows)) - 1)].c_str();
}
// Reads of current versions: batches running at a time (one reader thread
// each) and reads per batch (one pipeline).
constexpr int kReadLeaders = 2;
constexpr std::size_t kMaxReadBatch = 64;
// Ops (audited writes and AppendAudit calls) carried by one appender
// transaction at most.
constexpr std::size_t kMaxAppendBatch = 1024;
// Writes run in savepoints of one transaction at most: past 64
// subtransactions a backend's subtransaction cache overflows, which slows
// every other session's snapshots until the transaction ends.
constexpr std::size_t kMaxSavepointsPerBatch = 64;

constexpr int kDefaultPageLimit = 50;
constexpr int kMaxPageLimit = 1000;
// Attempts of one transaction: serialization failures and deadlocks are
// retried with a short randomised back-off, then reported as Unavailable.
constexpr int kMaxAttempts = 4;

int PageLimit(const PageRequest& page) {
  if (page.limit <= 0) return kDefaultPageLimit;
  return page.limit > kMaxPageLimit ? kMaxPageLimit : page.limit;
}

int PageLimit(int limit) {
  if (limit <= 0) return kDefaultPageLimit;
  return limit > kMaxPageLimit ? kMaxPageLimit : limit;
}

// Columns: kAuditColumns (audit_sql.h).
AuditRow ReadAuditRow(const Rows& r, int i) {
  AuditRow a;
  a.seq = r.Int(i, 0);
  a.at_ms = r.Int(i, 1);
  a.tenant_id = r.Text(i, 2);
  a.principal = r.Text(i, 3);
  a.action = r.Text(i, 4);
  a.resource = r.Text(i, 5);
  a.outcome = r.Text(i, 6);
  a.entry = r.GetBytes(i, 7);
  a.hash = r.GetBytes(i, 8);
  return a;
}

AuditCheckpointRow ReadCheckpoint(const Rows& r, int i) {
  AuditCheckpointRow c;
  c.tree_size = r.Int(i, 0);
  c.at_ms = r.Int(i, 1);
  c.root = r.GetBytes(i, 2);
  c.note = r.Text(i, 3);
  c.signature = r.GetBytes(i, 4);
  return c;
}

// An entry that could not be appended fails its call as Unavailable: the
// cause (lock timeout, a bad value the server refused) is never the caller's
// fault, and must not read as "already exists" or "not found". Internal (a
// malformed entry) and DataLoss stay what they are.
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

// The chain's head as the locking statement (kLockAuditHead) read it.
using AuditHead = AuditHeadRow;

Result<AuditHead> ReadAuditHead(const Rows& head) {
  if (head.empty()) return DataLossError("audit log: the head row is missing");
  AuditHead h;
  h.next_seq = head.Int(0, 0);
  if (!head.IsNull(0, 1)) h.last_hash = head.GetBytes(0, 1);
  return h;
}

// What appending `links` after a head takes: the linked rows and the
// statements that insert them and move the head. `steps` point into
// `params`, which point into `rows`; none of them changes once planned.
struct AuditAppendPlan {
  std::vector<AuditRow> rows;
  std::vector<Params> params;
  AuditHead after;  // the head once the rows are in
};

// Links each entry of `links` to the previous one, starting after `head`,
// and adds the statements to `steps`. `own[i]` (if given) receives Internal
// for a malformed entry, which is skipped; with `own` null a malformed entry
// fails the whole call.
Status PlanAuditAppend(AuditHead head, const std::vector<const AuditLink*>& links, std::vector<Status>* own,
                       AuditAppendPlan& plan, std::vector<pg::Step>& steps) {
  KURA_RETURN_IF_ERROR(CheckAuditAppendSeq(head.next_seq));
  std::int64_t seq = head.next_seq;
  Bytes prev = std::move(head.last_hash);
  std::vector<AuditRow>& rows = plan.rows;
  rows.reserve(links.size());
  for (std::size_t i = 0; i < links.size(); ++i) {
    AuditRow row = links[i]->Link(seq, prev);
    if (row.seq != seq || row.hash.empty()) {
      Status bad = InternalError("audit log: the entry was linked with another sequence number or without a hash");
      if (own == nullptr) return bad;
      (*own)[i] = std::move(bad);
      continue;
    }
    prev = row.hash;
    ++seq;
    rows.push_back(std::move(row));
  }
  plan.after = AuditHead{seq, prev};
  if (rows.empty()) return Status::Ok();
  // Sized before the first is taken: the steps point into them.
  plan.params.reserve(rows.size() + 1);
  for (std::size_t at = 0; at < rows.size();) {
    const std::size_t left = rows.size() - at;
    const int n = AuditRowsPerStatement(left);
    Params& p = plan.params.emplace_back();
    for (int k = 0; k < n; ++k) {
      const AuditRow& r = rows[at + static_cast<std::size_t>(k)];
      p.Add(r.seq).Add(r.at_ms).Add(std::string_view(r.tenant_id)).Add(std::string_view(r.principal));
      p.Add(std::string_view(r.action)).Add(std::string_view(r.resource)).Add(std::string_view(r.outcome));
      p.Add(ByteView(r.entry)).Add(ByteView(r.hash));
    }
    steps.push_back({InsertAuditSql(n), &p, "audit entry"});
    at += static_cast<std::size_t>(n);
  }
  Params& head_params = plan.params.emplace_back();
  head_params.Add(seq).Add(ByteView(rows.back().hash));
  steps.push_back({kUpdateAuditHead, &head_params, "audit head"});
  return Status::Ok();
}

// Appends `links` in order after `head` (locked by the caller's transaction
// on `c`) in one pipeline (PlanAuditAppend). `after` (if given) receives the
// head once they are in.
Status AppendAfterHead(Connection& c, AuditHead head, const std::vector<const AuditLink*>& links,
                       std::vector<Status>* own, AuditHead* after = nullptr) {
  AuditAppendPlan plan;
  std::vector<pg::Step> steps;
  KURA_RETURN_IF_ERROR(PlanAuditAppend(std::move(head), links, own, plan, steps));
  if (!steps.empty()) KURA_RETURN_IF_ERROR(c.Pipeline(steps).status());
  if (after != nullptr) *after = std::move(plan.after);
  return Status::Ok();
}

// Locks the head inside the caller's transaction on `c`, then
// AppendAfterHead.
Status AppendLocked(Connection& c, const std::vector<const AuditLink*>& links, std::vector<Status>* own,
                    AuditHead* after = nullptr) {
  KURA_ASSIGN_OR_RETURN(Rows locked, c.Exec(kLockAuditHead, Params(), "audit head"));
  KURA_ASSIGN_OR_RETURN(AuditHead head, ReadAuditHead(locked));
  return AppendAfterHead(c, std::move(head), links, own, after);
}

// A write whose statements do not depend on each other's results: the
// appender may send those of a whole batch in one pipeline (one round trip)
// instead of running each write in its own savepoint. `Accepts` then looks
// at the results; if it refuses any (or any statement failed), the batch is
// rolled back and run write by write, which finds each write's own answer.
class PipelinedWrite {
 public:
  virtual ~PipelinedWrite() = default;
  // Appends its statements; they point into this object.
  virtual void AddSteps(std::vector<pg::Step>& steps) const = 0;
  // The results of its steps, in order, starting at results[first].
  virtual bool Accepts(const std::vector<Rows>& results, std::size_t first) const = 0;
  // A new record (InsertRecord): its rows may go with other new records'
  // in the same statements (RecordInserts).
  virtual const RecordWrite* NewRecord() const { return nullptr; }
};

// The error for a COMMIT whose answer never came (the connection broke).
Status CommitOutcomeUnknown() {
  return UnavailableError("database: connection lost during commit; the write may or may not have been applied");
}

// The error for a commit whose wait for the synchronous standby was
// cancelled (Connection::SyncReplicationCancelled).
Status NotReplicated() {
  return UnavailableError(
      "database: the commit was not confirmed by the synchronous standby (committed on the primary only)");
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
  t.data_key_version = r.Int(i, 4);
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

// Columns: KURA_USER_COLUMNS.
UserRow ReadUser(const Rows& r, int i) {
  UserRow u;
  u.tenant_id = r.Text(i, 0);
  u.username = r.Text(i, 1);
  u.roles_json = r.Text(i, 2);
  u.password_hash = r.Text(i, 3);
  u.password_changed_at = r.Int(i, 4);
  u.password_history_json = r.Text(i, 5);
  u.kerberos_principal = r.Text(i, 6);
  if (!r.IsNull(i, 7)) u.totp_secret_sealed = r.GetBytes(i, 7);  // NULL: not enrolled
  u.totp_confirmed = r.Int(i, 8) != 0;
  u.totp_last_step = r.Int(i, 9);
  u.recovery_codes_json = r.Text(i, 10);
  u.failed_count = static_cast<int>(r.Int(i, 11));
  u.failed_window_start = r.Int(i, 12);
  u.locked_until = r.Int(i, 13);
  u.disabled = r.Int(i, 14) != 0;
  u.created_at = r.Int(i, 15);
  u.updated_at = r.Int(i, 16);
  u.version = r.Int(i, 17);
  return u;
}

SessionRow ReadSession(const Rows& r, int i) {
  SessionRow s;
  s.token_hash = r.GetBytes(i, 0);
  s.tenant_id = r.Text(i, 1);
  s.username = r.Text(i, 2);
  s.method = r.Text(i, 3);
  s.restriction = r.Text(i, 4);
  s.created_at = r.Int(i, 5);
  s.last_seen_at = r.Int(i, 6);
  s.expires_at = r.Int(i, 7);
  s.authenticated_at = r.Int(i, 8);
  s.revoked_at = r.OptionalInt(i, 9);
  return s;
}

// Columns: KURA_REQUEST_COLUMNS. DataLoss when the stored approvals are damaged.
Result<AccessRequestRow> ReadAccessRequest(const Rows& r, int i) {
  AccessRequestRow a;
  a.tenant_id = r.Text(i, 0);
  a.id = r.Text(i, 1);
  a.requester = r.Text(i, 2);
  a.permissions_json = r.Text(i, 3);
  a.collections_json = r.Text(i, 4);
  a.duration_s = r.Int(i, 5);
  a.reason = r.Text(i, 6);
  a.detail = r.Text(i, 7);
  a.ticket = r.Text(i, 8);
  a.status = r.Text(i, 9);
  a.required_approvals = static_cast<int>(r.Int(i, 10));
  KURA_ASSIGN_OR_RETURN(a.approvals, DecodeApprovals(r.Text(i, 11)));
  a.created_at = r.Int(i, 12);
  a.expires_at = r.Int(i, 13);
  a.grant_starts_at = r.Int(i, 14);
  a.grant_ends_at = r.Int(i, 15);
  a.decided_by = r.Text(i, 16);
  a.decided_at = r.Int(i, 17);
  a.decision_reason = r.Text(i, 18);
  a.version = r.Int(i, 19);
  return a;
}

// Columns: KURA_OUTBOX_COLUMNS.
OutboxRow ReadNotification(const Rows& r, int i) {
  OutboxRow n;
  n.id = r.Int(i, 0);
  n.tenant_id = r.Text(i, 1);
  n.url = r.Text(i, 2);
  n.payload_json = r.Text(i, 3);
  n.attempts = static_cast<int>(r.Int(i, 4));
  n.next_attempt_at = r.Int(i, 5);
  n.delivered_at = r.OptionalInt(i, 6);
  n.last_error = r.Text(i, 7);
  return n;
}

// Columns: id, current_version, created_at, ciphertext, version created_at, key_version.
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
  row.key_version = r.Int(i, 5);
  return row;
}

KeyRotationRow ReadKeyRotation(const Rows& r, int i) {
  KeyRotationRow k;
  k.tenant_id = r.Text(i, 0);
  k.to_version = r.Int(i, 1);
  k.state = r.Text(i, 2);
  k.cursor.collection = r.Text(i, 3);
  k.cursor.record_id = r.Text(i, 4);
  k.cursor.version = r.Int(i, 5);
  k.total = r.Int(i, 6);
  k.done = r.Int(i, 7);
  k.started_at = r.Int(i, 8);
  k.finished_at = r.Int(i, 9);
  return k;
}

}  // namespace

class PostgresStore final : public Store {
 public:
  static Result<std::unique_ptr<PostgresStore>> Open(const PostgresOptions& options);
  ~PostgresStore() override;

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
  void GetRecordAsync(std::string tenant_id, std::string collection, std::string id,
                      std::function<void(Result<RecordRow>)> done) override;
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

  PostgresPoolStats Stats() const {
    return {opened_.load(),        dropped_.load(),       retries_.load(),
            audit_commits_.load(), audit_appends_.load(), read_statements_.load()};
  }
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
  // fn fails. Runs it again (fresh transaction) after a serialization
  // failure or deadlock, and after a lost connection as long as COMMIT had
  // not been sent (nothing can have been written then). A connection lost
  // during COMMIT leaves the outcome unknown: Unavailable, never a silent
  // retry; so does a COMMIT whose synchronous-standby wait was cancelled.
  //
  // With `audit`, fn and its entry go to the appender thread instead
  // (RunAppendBatch): fn runs there inside a savepoint of the batch's
  // transaction, the entry is appended with the batch's others after every
  // change, and the caller blocks until that transaction committed (or
  // failed); same retry and outcome rules, for the batch as a whole.
  //
  // `pipelined` (with `audit` only): fn's statements for the appender's
  // pipelined run of a batch (PipelinedWrite).
  template <typename F>
  Status Transact(const AuditLink* audit, F&& fn, const PipelinedWrite* pipelined = nullptr);
  template <typename F>
  Status Transact(F&& fn) {
    return Transact(nullptr, std::forward<F>(fn));
  }
  // Runs one writing statement `fn(Connection&) -> Status` in autocommit
  // mode: one round trip instead of three, and its success means the
  // server committed it. Serialization failures and deadlocks are retried;
  // a lost connection is not (the statement may have been applied).
  template <typename F>
  Status WriteOne(F&& fn);
  // A single-statement write: autocommitted (WriteOne) without an audit
  // entry, in a transaction with its entry (Transact) otherwise.
  template <typename F>
  Status WriteAudited(const AuditLink* audit, F&& fn) {
    return audit == nullptr ? WriteOne(std::forward<F>(fn)) : Transact(audit, std::forward<F>(fn));
  }

  // Group commit of audited writes and of AppendAudit: callers queue an op
  // and wait; one appender thread takes everything queued into one
  // transaction (each write in its own savepoint, then one head lock, one
  // multi-row insert of the entries and one COMMIT) and wakes them with the
  // outcome.
  struct PendingOp {
    // The write, run by the appender on its connection; null for a plain
    // append (AppendAudit, AppendAuditAsync).
    Status (*run)(void* ctx, Connection& c) = nullptr;
    void* ctx = nullptr;
    // The same write as statements that may be pipelined; null if it has none.
    const PipelinedWrite* pipelined = nullptr;
    const AuditLink* link = nullptr;
    Status result;
    // AppendAuditAsync: nobody waits; the appender completes and frees it.
    std::unique_ptr<AuditLink> owned;
    AuditCompletion completion;

    // Completion is a futex per op (as the SQLite writer's): the appender
    // wakes exactly the callers of the batch it finished, not every waiter
    // of every batch (a shared condition variable's notify_all woke them
    // all, and most went back to sleep: two context switches each).
    WakeFlag done;
    // Called by the appender once `result` is final.
    void Finish() { done.Set(); }
    void Wait() { done.Wait(); }
  };
  // How one attempt at a batch's transaction ended.
  enum class BatchTry {
    kFinished,  // every op's result is final (committed, or the outcome is unknown)
    kRerun,     // some ops were dropped with a final error; run the rest again
    kFailed,    // rolled back as a whole; the caller decides on a retry
  };
  // Queues `op` and waits until the appender finished it.
  Status Enqueue(PendingOp& op);

  // Reads of a record's current version from concurrent callers are
  // coalesced: up to kReadLeaders batches run at a time, each one pipeline
  // (one round trip) of the caller leading it and everything queued (up to
  // kMaxReadBatch). A blocking caller (GetRecord) that finds a slot leads a
  // batch itself, and when done hands the lead to the next blocking caller
  // queued or to a reader thread; GetRecordAsync's reads are led by the
  // reader threads, which complete them on their own thread. On this kind of
  // machine a round trip's system calls and wake-ups cost far more than the
  // statement, on both sides of the connection.
  struct PendingRead {
    const std::string* tenant_id = nullptr;
    const std::string* collection = nullptr;
    const std::string* id = nullptr;
    Status status;
    std::optional<RecordRow> row;
    // A blocking caller: set (under read_mu_) before `done` when it is
    // handed the lead.
    bool lead = false;
    WakeFlag done;
    // GetRecordAsync: owns its strings; whoever ran it calls and frees it.
    std::string owned_tenant_id, owned_collection, owned_id;
    std::function<void(Result<RecordRow>)> completion;

    Result<RecordRow> TakeResult() {
      if (!status.ok()) return status;
      if (!row) return NotFoundError("record not found");
      return std::move(*row);
    }
  };
  Result<RecordRow> GetCurrentRecordCoalesced(const std::string& tenant_id, const std::string& collection,
                                              const std::string& id);
  // Runs batches while there is work: with `self` (a blocking caller that
  // holds the lead) once, then hands the lead on; without (a reader thread)
  // until the queue is empty. Takes a lead slot already counted.
  void LeadReads(PendingRead* self);
  void RunReadBatch(const std::vector<PendingRead*>& batch);
  // The whole batch as one kGetCurrentRecords. False when the server refused
  // the statement (nothing answered); true when every read has its answer.
  bool RunReadBatchAsOneStatement(const std::vector<PendingRead*>& batch);
  // Gives a free lead slot (counted, under read_mu_) to a reader thread.
  void WakeReaderLocked();
  void ReaderLoop();
  void AppenderLoop();
  void RunAppendBatch(std::vector<PendingOp*>& batch);
  // One attempt: on kFailed, `failure` is why and `failure_sqlstate` the
  // SQLSTATE behind it ("" if none).
  BatchTry TryAppendBatch(Connection& c, std::vector<PendingOp*>& live, Status& failure, std::string& failure_sqlstate);
  // A batch of audit entries alone, linked after the head this node's last
  // append left (own_head_), in one round trip: BEGIN, the head's lock with
  // a check that it has not moved, the entries, the head and COMMIT. nullopt
  // when the head had moved (another node appended): nothing was written,
  // and the batch goes the usual way.
  std::optional<BatchTry> TryAppendAfterOwnHead(Connection& c, std::vector<PendingOp*>& live, Status& failure,
                                                std::string& failure_sqlstate);

  const PostgresOptions options_;
  const pg::ConnectOptions connect_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // most recently used last
  int free_slots_;                                 // connections that may be checked out now

  std::atomic<std::int64_t> opened_{0};
  std::atomic<std::int64_t> dropped_{0};
  std::atomic<std::int64_t> retries_{0};
  std::atomic<std::int64_t> audit_commits_{0};
  std::atomic<std::int64_t> read_statements_{0};
  std::atomic<std::int64_t> audit_appends_{0};
  // Appender thread only. The chain's head as this node's last committed
  // append left it; unset when not known. After the head was found moved,
  // the next own_head_skips_ batches go the usual way (own_head_backoff_
  // doubles with each miss in a row, up to 64), so nodes appending in turn
  // do not each pay a refused round trip per batch.
  std::optional<AuditHead> own_head_;
  int own_head_skips_ = 0;
  int own_head_backoff_ = 0;

  std::mutex read_mu_;
  std::deque<PendingRead*> read_queue_;
  int read_leaders_ = 0;    // batches running or handed to a reader
  int readers_wanted_ = 0;  // lead slots handed to reader threads, not yet taken
  bool read_stopping_ = false;
  std::condition_variable reader_cv_;
  std::vector<std::thread> readers_;

  std::mutex append_mu_;
  std::condition_variable append_cv_;  // the appender waits for work
  std::deque<PendingOp*> append_queue_;
  bool append_stopping_ = false;
  std::thread appender_;
};

// --- Open, pool

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const PostgresOptions& options) {
  if (options.dsn.empty()) return InvalidArgumentError("the PostgreSQL connection string (dsn) is empty");
  if (options.pool_size < 1) return InvalidArgumentError("the PostgreSQL pool size must be at least 1");
  if (options.statement_timeout_ms < 1 || options.connect_timeout_s < 1 || options.acquire_timeout_ms < 0) {
    return InvalidArgumentError("PostgreSQL timeouts must be positive");
  }
  KURA_ASSIGN_OR_RETURN(pg::ConnectOptions connect, pg::MakeConnectOptions(options));

  std::unique_ptr<PostgresStore> store(new PostgresStore(options, std::move(connect)));
  KURA_ASSIGN_OR_RETURN(std::unique_ptr<Connection> first, store->Connect());
  pg::PostgresMigrationTarget target(*first);
  KURA_RETURN_IF_ERROR(options.read_only ? ReadSchemaVersion(target).status()
                                         : ApplyMigrations(target, ToUnixSeconds(Clock::Real().Now())).status());
  {
    std::lock_guard<std::mutex> lock(store->mu_);
    store->idle_.push_back(std::move(first));
  }
  store->appender_ = std::thread([s = store.get()] { s->AppenderLoop(); });
  for (int i = 0; i < kReadLeaders; ++i) store->readers_.emplace_back([s = store.get()] { s->ReaderLoop(); });
  return store;
}

PostgresStore::~PostgresStore() {
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    read_stopping_ = true;
  }
  reader_cv_.notify_all();
  for (auto& reader : readers_) reader.join();
  // Left without a leader only if every lead slot is held by a blocking
  // caller, which cannot be while the store is destroyed.
  for (PendingRead* r : read_queue_) {
    if (!r->completion) continue;
    std::unique_ptr<PendingRead> owned(r);
    owned->completion(UnavailableError("database is closed"));
  }
  {
    std::lock_guard<std::mutex> lock(append_mu_);
    append_stopping_ = true;
  }
  append_cv_.notify_one();
  if (appender_.joinable()) appender_.join();
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
Status PostgresStore::Transact(const AuditLink* audit, F&& fn, const PipelinedWrite* pipelined) {
  if (audit != nullptr) {
    // The appender runs fn while this thread waits, so fn (and what it
    // captures by reference) outlives its use.
    using Fn = std::remove_reference_t<F>;
    PendingOp op;
    op.run = [](void* ctx, Connection& c) -> Status { return (*static_cast<Fn*>(ctx))(c); };
    op.ctx = const_cast<void*>(static_cast<const void*>(&fn));
    op.pipelined = pipelined;
    op.link = audit;
    return Enqueue(op);
  }
  static thread_local std::minstd_rand jitter(std::random_device{}());
  Status s;
  bool lost_once = false;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    KURA_ASSIGN_OR_RETURN(Lease lease, Acquire());
    Connection& c = *lease;
    s = c.ExecSimple("BEGIN", "begin transaction");
    if (s.ok()) s = fn(c);
    // Before a ROLLBACK, whose round trip resets it.
    std::string sqlstate = c.last_sqlstate();
    if (s.ok()) {
      s = c.ExecSimple("COMMIT", "commit");
      if (s.ok() && c.SyncReplicationCancelled()) return NotReplicated();
      if (s.ok()) return s;
      if (c.broken()) return CommitOutcomeUnknown();
      sqlstate = c.last_sqlstate();
      if (!c.Idle()) c.ExecSimple("ROLLBACK", "rollback").IgnoreError();
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
    if (!pg::IsRetryable(sqlstate)) return s;
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
    if (s.ok() && lease->SyncReplicationCancelled()) return NotReplicated();
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

Status PostgresStore::PutMeta(const std::string& key, ByteView value, const AuditLink* audit) {
  return WriteAudited(audit,
                      [&](Connection& c) { return c.Exec(kPutMeta, Params().Add(key).Add(value), "meta").status(); });
}

Status PostgresStore::InsertMeta(const std::string& key, ByteView value, const AuditLink* audit) {
  return WriteAudited(
      audit, [&](Connection& c) { return c.Exec(kInsertMeta, Params().Add(key).Add(value), "meta value").status(); });
}

// --- Tenants

Status PostgresStore::CreateTenant(const TenantRow& t, const AuditLink* audit) {
  return WriteAudited(audit, [&](Connection& c) {
    Params p;
    p.Add(t.id).Add(t.name).Add(t.region).Add(t.created_at).Add(t.data_key_version);
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

Status PostgresStore::DeleteTenant(const std::string& id, const AuditLink* audit) {
  return Transact(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows exists, c.Exec(kLockTenant, Params().Add(id), "tenant"));
    if (exists.empty()) return NotFoundError("tenant not found");
    // One transaction: the tenant goes completely or not at all.
    for (const char* sql : kDeleteTenantRows) {
      KURA_RETURN_IF_ERROR(c.Exec(sql, Params().Add(id), "delete tenant").status());
    }
    return Status::Ok();
  });
}

Status PostgresStore::SetTenantDataKeyVersion(const std::string& id, std::int64_t version, const AuditLink* audit) {
  // The UPDATE waits for record writes holding the tenant row FOR SHARE (their
  // version check), so once it commits no write under an older version can.
  return Transact(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows u, c.Exec(kRaiseDataKeyVersion, Params().Add(version).Add(id), "tenant"));
    if (u.affected() == 1) return Status::Ok();
    KURA_ASSIGN_OR_RETURN(Rows exists, c.Exec(kTenantIdExists, Params().Add(id), "tenant"));
    if (exists.empty()) return NotFoundError("tenant not found");
    return AbortedError("the tenant's data key version is already at or above the new one");
  });
}

// --- Collections

Result<bool> PostgresStore::PutCollection(const CollectionRow& col, const AuditLink* audit) {
  bool created = false;
  KURA_RETURN_IF_ERROR(Transact(audit, [&](Connection& c) -> Status {
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
  p.Add(w.key_version);
  return c.Exec(kInsertVersion, p, "record version").status();
}

// Refuses a write sealed under a data key version that is no longer the
// tenant's current one (a rotation moved on since the caller loaded its keys).
Status CheckDataKeyVersion(Connection& c, const RecordWrite& w) {
  KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDataKeyVersion, Params().Add(w.tenant_id), "tenant"));
  if (r.empty()) return NotFoundError("tenant not found");
  const std::int64_t current = r.Int(0, 0);
  if (current != w.key_version) {
    return AbortedError("data key version " + std::to_string(w.key_version) + " is not the tenant's current (" +
                        std::to_string(current) + ")");
  }
  return Status::Ok();
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

namespace {

// InsertRecord's statements for a pipelined batch: the same as its
// function runs, none depending on another's result; the data key version
// is checked once the results are in.
class InsertRecordSteps final : public PipelinedWrite {
 public:
  explicit InsertRecordSteps(const RecordWrite& w) : w_(w) {
    params_.reserve(3 + w.index.size());
    params_.emplace_back().Add(w.tenant_id);
    params_.emplace_back()
        .Add(w.tenant_id)
        .Add(w.collection)
        .Add(w.id)
        .Add(w.version)
        .Add(w.at)
        .Add(w.at)
        .AddOrNull(w.subject_hmac);
    params_.emplace_back()
        .Add(w.tenant_id)
        .Add(w.collection)
        .Add(w.id)
        .Add(w.version)
        .Add(ByteView(w.ciphertext))
        .Add(w.at)
        .Add(w.key_version);
    for (const IndexEntry& e : w.index) {
      params_.emplace_back().Add(w.tenant_id).Add(w.collection).Add(e.field).Add(ByteView(e.hmac)).Add(w.id);
    }
  }
  void AddSteps(std::vector<pg::Step>& steps) const override {
    steps.push_back({kDataKeyVersion, &params_[0], "tenant"});
    steps.push_back({kInsertRecord, &params_[1], "record"});
    steps.push_back({kInsertVersion, &params_[2], "record version"});
    for (std::size_t i = 3; i < params_.size(); ++i) steps.push_back({kInsertIndex, &params_[i], "record index entry"});
  }
  bool Accepts(const std::vector<Rows>& results, std::size_t first) const override {
    const Rows& tenant = results[first];
    return !tenant.empty() && tenant.Int(0, 0) == w_.key_version;
  }
  const RecordWrite* NewRecord() const override { return &w_; }

 private:
  const RecordWrite& w_;
  std::vector<Params> params_;
};

// PostgreSQL array literals, built element by element; every text and
// bytea element quoted, so no value is ever read as NULL or as syntax.
class ArrayLiteral {
 public:
  void AddText(std::string_view value) {
    Open();
    text_ += '"';
    for (char ch : value) {
      if (ch == '"' || ch == '\\') text_ += '\\';
      text_ += ch;
    }
    text_ += '"';
  }
  // bytea in its hex input form; NULL when empty and `empty_is_null`.
  void AddBytes(ByteView value, bool empty_is_null = false) {
    Open();
    if (empty_is_null && value.empty()) {
      text_ += "NULL";
      return;
    }
    text_ += "\"\\\\x";
    text_ += HexEncode(value);
    text_ += '"';
  }
  void AddInt(std::int64_t value) {
    Open();
    text_ += std::to_string(value);
  }
  const std::string& Close() {
    text_ += '}';
    return text_;
  }

 private:
  void Open() { text_ += text_.empty() ? "{" : ","; }
  std::string text_;
};

// The new records of a pipelined batch, as four statements whatever their
// number (InsertRecordSteps sends four or more per record). Measured under
// the create load: PostgreSQL ran the batch's statements one after another
// in the appender's one backend, ~4 per create, while the machine stood a
// quarter idle; as arrays, PostgreSQL's CPU per create fell by a quarter
// (docs/performance.md). A refused element (a duplicate id) fails the statement, and
// the batch then runs write by write as for any refused pipelined write.
class RecordInserts {
 public:
  explicit RecordInserts(const std::vector<const RecordWrite*>& writes) : writes_(writes) {
    ArrayLiteral tenants;
    std::vector<std::string_view> seen;
    for (const RecordWrite* w : writes) {
      if (std::find(seen.begin(), seen.end(), w->tenant_id) != seen.end()) continue;
      seen.push_back(w->tenant_id);
      tenants.AddText(w->tenant_id);
    }
    AddColumn(tenant_params_, tenants);
    ArrayLiteral r[7], v[7], x[5];
    for (const RecordWrite* w : writes) {
      r[0].AddText(w->tenant_id), r[1].AddText(w->collection), r[2].AddText(w->id), r[3].AddInt(w->version);
      r[4].AddInt(w->at), r[5].AddInt(w->at), r[6].AddBytes(ByteView(w->subject_hmac), /*empty_is_null=*/true);
      v[0].AddText(w->tenant_id), v[1].AddText(w->collection), v[2].AddText(w->id), v[3].AddInt(w->version);
      v[4].AddBytes(ByteView(w->ciphertext)), v[5].AddInt(w->at), v[6].AddInt(w->key_version);
      for (const IndexEntry& e : w->index) {
        x[0].AddText(w->tenant_id), x[1].AddText(w->collection), x[2].AddText(e.field);
        x[3].AddBytes(ByteView(e.hmac)), x[4].AddText(w->id);
        has_index_ = true;
      }
    }
    for (auto& column : r) AddColumn(record_params_, column);
    for (auto& column : v) AddColumn(version_params_, column);
    for (auto& column : x) AddColumn(index_params_, column);
  }
  void AddSteps(std::vector<pg::Step>& steps) const {
    steps.push_back({kDataKeyVersions, &tenant_params_, "tenant"});
    steps.push_back({kInsertRecords, &record_params_, "record"});
    steps.push_back({kInsertVersions, &version_params_, "record version"});
    if (has_index_) steps.push_back({kInsertIndexEntries, &index_params_, "record index entry"});
  }
  // Every write was sealed under its tenant's current data key version.
  bool Accepts(const std::vector<Rows>& results, std::size_t first) const {
    const Rows& tenants = results[first];
    for (const RecordWrite* w : writes_) {
      bool current = false;
      for (int i = 0; i < tenants.size() && !current; ++i) {
        current = tenants.Text(i, 0) == w->tenant_id && tenants.Int(i, 1) == w->key_version;
      }
      if (!current) return false;
    }
    return true;
  }

 private:
  void AddColumn(Params& params, ArrayLiteral& column) {
    // Params keeps pointers: the texts live in columns_ (a deque: stable).
    params.AddTextForm(columns_.emplace_back(column.Close()));
  }

  std::vector<const RecordWrite*> writes_;
  std::deque<std::string> columns_;
  Params tenant_params_, record_params_, version_params_, index_params_;
  bool has_index_ = false;
};

}  // namespace

Status PostgresStore::InsertRecord(const RecordWrite& w, const AuditLink* audit) {
  if (w.version != 1) return InvalidArgumentError("a new record starts at version 1");
  std::optional<InsertRecordSteps> steps;
  if (audit != nullptr) steps.emplace(w);
  return Transact(
      audit,
      [&](Connection& c) -> Status {
        KURA_RETURN_IF_ERROR(CheckDataKeyVersion(c, w));
        Params p;
        p.Add(w.tenant_id).Add(w.collection).Add(w.id).Add(w.version).Add(w.at).Add(w.at).AddOrNull(w.subject_hmac);
        KURA_RETURN_IF_ERROR(c.Exec(kInsertRecord, p, "record").status());
        KURA_RETURN_IF_ERROR(InsertVersionRow(c, w));
        return InsertIndexRows(c, w);
      },
      steps.has_value() ? &*steps : nullptr);
}

Status PostgresStore::UpdateRecord(const RecordWrite& w, std::int64_t expected_version, const AuditLink* audit) {
  if (w.version != expected_version + 1) {
    return InvalidArgumentError("the new version must be the expected version plus one");
  }
  return Transact(audit, [&](Connection& c) -> Status {
    KURA_RETURN_IF_ERROR(CheckDataKeyVersion(c, w));
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

Status PostgresStore::DeleteRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                                   const AuditLink* audit) {
  return Transact(audit, [&](Connection& c) -> Status {
    std::int64_t deleted = 0;
    for (const char* sql : {kDeleteIndex, kDeleteVersions, kDeleteRecord}) {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(sql, Params().Add(tenant_id).Add(collection).Add(id), "delete record"));
      deleted = r.affected();  // of the last statement: the records row itself
    }
    if (deleted == 0) return NotFoundError("record not found");
    return Status::Ok();
  });
}

namespace {

// Row i, columns from `col` on: those of kGetCurrentRecord.
RecordRow ReadRecordRow(const Rows& r, const std::string& tenant_id, const std::string& collection,
                        const std::string& id, int i = 0, int col = 0) {
  RecordRow row;
  row.tenant_id = tenant_id;
  row.collection = collection;
  row.id = id;
  row.current_version = r.Int(i, col);
  row.created_at = r.Int(i, col + 1);
  row.version = r.Int(i, col + 2);
  row.ciphertext = r.GetBytes(i, col + 3);
  row.updated_at = r.Int(i, col + 4);
  row.key_version = r.Int(i, col + 5);
  return row;
}
}  // namespace

Result<RecordRow> PostgresStore::GetCurrentRecordCoalesced(const std::string& tenant_id, const std::string& collection,
                                                           const std::string& id) {
  PendingRead me;
  me.tenant_id = &tenant_id;
  me.collection = &collection;
  me.id = &id;
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    if (read_leaders_ < kReadLeaders) {
      ++read_leaders_;
      me.lead = true;
    } else {
      read_queue_.push_back(&me);
    }
  }
  if (!me.lead) me.done.Wait();  // read for, or handed the lead
  if (me.lead) LeadReads(&me);
  return me.TakeResult();
}

void PostgresStore::GetRecordAsync(std::string tenant_id, std::string collection, std::string id,
                                   std::function<void(Result<RecordRow>)> done) {
  auto read = std::make_unique<PendingRead>();
  read->owned_tenant_id = std::move(tenant_id);
  read->owned_collection = std::move(collection);
  read->owned_id = std::move(id);
  read->tenant_id = &read->owned_tenant_id;
  read->collection = &read->owned_collection;
  read->id = &read->owned_id;
  read->completion = std::move(done);
  {
    std::lock_guard<std::mutex> lock(read_mu_);
    if (!read_stopping_) {
      read_queue_.push_back(read.get());
      if (read_leaders_ < kReadLeaders) {
        ++read_leaders_;
        WakeReaderLocked();
      }
      read.release();
      return;
    }
  }
  read->completion(UnavailableError("database is closed"));
}

void PostgresStore::WakeReaderLocked() {
  ++readers_wanted_;
  reader_cv_.notify_one();
}

void PostgresStore::ReaderLoop() {
  pthread_setname_np(pthread_self(), "kura-pg-read");
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(read_mu_);
      reader_cv_.wait(lock, [this] { return read_stopping_ || readers_wanted_ > 0; });
      if (readers_wanted_ == 0) return;  // stopping, and no lead left to take
      --readers_wanted_;
    }
    LeadReads(nullptr);
  }
}

void PostgresStore::LeadReads(PendingRead* self) {
  for (;;) {
    std::vector<PendingRead*> batch;
    if (self != nullptr) batch.push_back(self);
    {
      std::lock_guard<std::mutex> lock(read_mu_);
      while (!read_queue_.empty() && batch.size() < kMaxReadBatch) {
        batch.push_back(read_queue_.front());
        read_queue_.pop_front();
      }
      if (batch.empty()) {
        --read_leaders_;
        return;
      }
    }
    RunReadBatch(batch);
    for (PendingRead* r : batch) {
      if (r == self) continue;
      if (r->completion) {
        std::unique_ptr<PendingRead> owned(r);
        owned->completion(owned->TakeResult());
      } else {
        r->done.Set();  // the caller may return and destroy it: touch it no more
      }
    }
    if (self == nullptr) continue;
    // A blocking caller returns with its own answer and hands the lead on.
    PendingRead* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(read_mu_);
      if (read_queue_.empty()) {
        --read_leaders_;
      } else if (read_queue_.front()->completion) {
        WakeReaderLocked();
      } else {
        next = read_queue_.front();
        read_queue_.pop_front();
        next->lead = true;
      }
    }
    if (next != nullptr) next->done.Set();
    return;
  }
}

bool PostgresStore::RunReadBatchAsOneStatement(const std::vector<PendingRead*>& batch) {
  ArrayLiteral tenants, collections, ids;
  for (const PendingRead* r : batch) {
    tenants.AddText(*r->tenant_id);
    collections.AddText(*r->collection);
    ids.AddText(*r->id);
  }
  Params params;
  params.AddTextForm(tenants.Close()).AddTextForm(collections.Close()).AddTextForm(ids.Close());
  bool refused = false;
  Status s = Read([&](Connection& c) -> Status {
    read_statements_.fetch_add(1, std::memory_order_relaxed);
    auto rows = c.Exec(kGetCurrentRecords, params, "records");
    if (!rows.ok()) {
      refused = !c.broken();
      return rows.status();
    }
    for (PendingRead* r : batch) r->row.reset();
    for (int i = 0; i < rows->size(); ++i) {
      const std::int64_t n = rows->Int(i, 0);
      if (n < 1 || n > static_cast<std::int64_t>(batch.size())) return InternalError("records: bad position");
      PendingRead& r = *batch[static_cast<std::size_t>(n - 1)];
      r.row = ReadRecordRow(*rows, *r.tenant_id, *r.collection, *r.id, i, 1);
    }
    return Status::Ok();
  });
  if (s.ok()) return true;
  // A key the server refused (bad UTF-8) fails the whole statement: the
  // per-read pipeline then finds which read it was.
  if (refused && s.code() != StatusCode::kUnavailable) return false;
  for (PendingRead* r : batch) r->status = s;
  return true;
}

void PostgresStore::RunReadBatch(const std::vector<PendingRead*>& batch) {
  std::vector<PendingRead*> pending = batch;
  while (!pending.empty()) {
    // Two reads or more: one statement instead of one each (measured in
    // docs/performance.md, "2026-11-26 (night, second session)").
    if (pending.size() >= 2 && RunReadBatchAsOneStatement(pending)) return;
    std::vector<Params> params(pending.size());
    std::vector<pg::Step> steps;
    steps.reserve(pending.size());
    for (std::size_t i = 0; i < pending.size(); ++i) {
      params[i].Add(*pending[i]->tenant_id).Add(*pending[i]->collection).Add(*pending[i]->id);
      steps.push_back({kGetCurrentRecord, &params[i], "record"});
    }
    std::size_t failed_step = 0;
    bool refused = false;
    Status s = Read([&](Connection& c) -> Status {
      read_statements_.fetch_add(static_cast<std::int64_t>(steps.size()), std::memory_order_relaxed);
      auto results = c.Pipeline(steps, &failed_step);
      if (!results.ok()) {
        refused = !c.broken();
        return results.status();
      }
      for (std::size_t i = 0; i < pending.size(); ++i) {
        PendingRead& r = *pending[i];
        if (!(*results)[i].empty()) r.row = ReadRecordRow((*results)[i], *r.tenant_id, *r.collection, *r.id);
      }
      return Status::Ok();
    });
    if (s.ok()) return;
    if (!refused || s.code() == StatusCode::kUnavailable || failed_step >= pending.size()) {
      // The database, the connection or the pool failed them all alike.
      for (PendingRead* r : pending) r->status = s;
      return;
    }
    // The server refused one statement and skipped the ones after it: that
    // read has its answer, the others go again.
    pending[failed_step]->status = std::move(s);
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(failed_step));
  }
}

Result<RecordRow> PostgresStore::GetRecord(const std::string& tenant_id, const std::string& collection,
                                           const std::string& id, std::optional<std::int64_t> version) {
  if (!version.has_value()) return GetCurrentRecordCoalesced(tenant_id, collection, id);
  std::optional<RecordRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(
        Rows r, c.Exec(kGetRecordVersion, Params().Add(tenant_id).Add(collection).Add(id).Add(*version), "record"));
    if (!r.empty()) out = ReadRecordRow(r, tenant_id, collection, id);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("record version not found");
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

Result<std::vector<StoredCiphertext>> PostgresStore::ScanRecordVersionsBelowKey(const std::string& tenant_id,
                                                                              std::int64_t below_key_version,
                                                                              const RecordVersionKey& after,
                                                                              int limit) {
  if (limit < 1 || limit > 10000) return InvalidArgumentError("limit must be 1-10000");
  std::vector<StoredCiphertext> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(after.collection).Add(after.record_id).Add(after.version).Add(below_key_version);
    p.Add(static_cast<std::int64_t>(limit));
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kScanBelowKey, p, "record versions"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) {
      StoredCiphertext v;
      v.key.collection = r.Text(i, 0);
      v.key.record_id = r.Text(i, 1);
      v.key.version = r.Int(i, 2);
      v.key_version = r.Int(i, 3);
      v.ciphertext = r.GetBytes(i, 4);
      out.push_back(std::move(v));
    }
    return Status::Ok();
  }));
  return out;
}

Result<std::int64_t> PostgresStore::CountRecordVersionsBelowKey(const std::string& tenant_id,
                                                                std::int64_t below_key_version) {
  std::int64_t count = 0;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r,
                          c.Exec(kCountBelowKey, Params().Add(tenant_id).Add(below_key_version), "record versions"));
    count = r.empty() ? 0 : r.Int(0, 0);
    return Status::Ok();
  }));
  return count;
}

Result<std::int64_t> PostgresStore::RewriteRecordCiphertexts(const std::string& tenant_id, std::int64_t to_version,
                                                             const std::vector<CiphertextRewrite>& rewrites,
                                                             const RecordVersionKey& cursor) {
  std::int64_t rewritten = 0;
  Status s = Transact([&](Connection& c) -> Status {
    rewritten = 0;  // a retried transaction counts again from the start
    // Every UPDATE of the batch in one pipeline: one round trip instead of
    // one per version (the cursor's UPDATE needs their count, so it follows).
    std::vector<Params> params(rewrites.size());
    std::vector<pg::Step> steps;
    steps.reserve(rewrites.size());
    for (std::size_t i = 0; i < rewrites.size(); ++i) {
      const CiphertextRewrite& w = rewrites[i];
      params[i].Add(ByteView(w.ciphertext)).Add(to_version).Add(tenant_id).Add(w.key.collection).Add(w.key.record_id);
      params[i].Add(w.key.version).Add(w.from_key_version);
      steps.push_back({kRewriteCiphertext, &params[i], "re-encrypted record version"});
    }
    if (!steps.empty()) {
      KURA_ASSIGN_OR_RETURN(std::vector<Rows> results, c.Pipeline(steps));
      for (const Rows& r : results) rewritten += r.affected();
    }
    Params p;
    p.Add(cursor.collection).Add(cursor.record_id).Add(cursor.version).Add(rewritten).Add(tenant_id).Add(to_version);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kAdvanceRotation, p, "key rotation"));
    if (r.affected() == 0) {
      return AbortedError("no key rotation to version " + std::to_string(to_version) + " is running");
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return rewritten;
}

Status PostgresStore::PutKeyRotation(const KeyRotationRow& k, const AuditLink* audit) {
  return Transact(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows t, c.Exec(kShareTenant, Params().Add(k.tenant_id), "tenant"));
    if (t.empty()) return NotFoundError("tenant not found");
    Params p;
    p.Add(k.tenant_id).Add(k.to_version).Add(k.state).Add(k.cursor.collection).Add(k.cursor.record_id);
    p.Add(k.cursor.version).Add(k.total).Add(k.done).Add(k.started_at).Add(k.finished_at);
    return c.Exec(kPutRotation, p, "key rotation").status();
  });
}

Result<KeyRotationRow> PostgresStore::GetKeyRotation(const std::string& tenant_id) {
  std::optional<KeyRotationRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetRotation, Params().Add(tenant_id), "key rotation"));
    if (!r.empty()) out = ReadKeyRotation(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("no key rotation");
  return std::move(*out);
}

Result<std::vector<KeyRotationRow>> PostgresStore::ListRunningKeyRotations() {
  std::vector<KeyRotationRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListRunningRotations, Params(), "key rotations"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadKeyRotation(r, i));
    return Status::Ok();
  }));
  return out;
}

// --- Roles

Result<bool> PostgresStore::PutRole(const RoleRow& role, const AuditLink* audit) {
  bool created = false;
  KURA_RETURN_IF_ERROR(Transact(audit, [&](Connection& c) -> Status {
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

Status PostgresStore::DeleteRole(const std::string& tenant_id, const std::string& name, const AuditLink* audit) {
  return WriteAudited(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDeleteRole, Params().Add(tenant_id).Add(name), "role"));
    if (r.affected() == 0) return NotFoundError("role not found");
    return Status::Ok();
  });
}

// --- API keys

Status PostgresStore::CreateApiKey(const ApiKeyRow& k, const AuditLink* audit) {
  return WriteAudited(audit, [&](Connection& c) {
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

Status PostgresStore::RevokeApiKey(const std::string& tenant_id, const std::string& id, std::int64_t at,
                                   const AuditLink* audit) {
  return WriteAudited(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kRevokeApiKey, Params().Add(at).Add(tenant_id).Add(id), "api key"));
    if (r.affected() == 0) return NotFoundError("api key not found");
    return Status::Ok();
  });
}

// --- Users

namespace {

// The columns users shares between INSERT and UPDATE, from roles_json to
// disabled ($3…$15 of kInsertUser, $1…$13 of kCasUser).
void AddUserState(Params& p, const UserRow& u) {
  p.Add(u.roles_json).Add(u.password_hash).Add(u.password_changed_at).Add(u.password_history_json);
  p.Add(u.kerberos_principal).AddOrNull(ByteView(u.totp_secret_sealed));
  p.Add(static_cast<std::int64_t>(u.totp_confirmed ? 1 : 0)).Add(u.totp_last_step).Add(u.recovery_codes_json);
  p.Add(static_cast<std::int64_t>(u.failed_count)).Add(u.failed_window_start).Add(u.locked_until);
  p.Add(static_cast<std::int64_t>(u.disabled ? 1 : 0));
}

Status InsertSessionRow(Connection& c, const SessionRow& s) {
  Params p;
  p.Add(ByteView(s.token_hash)).Add(s.tenant_id).Add(s.username).Add(s.method).Add(s.restriction);
  p.Add(s.created_at).Add(s.last_seen_at).Add(s.expires_at).Add(s.authenticated_at).AddOrNull(s.revoked_at);
  return c.Exec(kInsertSession, p, "session").status();
}

}  // namespace

Status PostgresStore::CreateUser(const UserRow& u, const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckNewUser(u));
  return Transact(audit, [&](Connection& c) -> Status {
    if (!u.tenant_id.empty()) {
      KURA_ASSIGN_OR_RETURN(Rows tenant, c.Exec(kShareTenant, Params().Add(u.tenant_id), "tenant"));
      if (tenant.empty()) return NotFoundError("user: the tenant it belongs to does not exist");
    }
    Params p;
    p.Add(u.tenant_id).Add(u.username);
    AddUserState(p, u);
    p.Add(u.created_at).Add(u.updated_at).Add(u.version);
    return c.Exec(kInsertUser, p, kUserWhat).status();
  });
}

Result<UserRow> PostgresStore::GetUser(const std::string& tenant_id, const std::string& username) {
  std::optional<UserRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetUser, Params().Add(tenant_id).Add(username), "user"));
    if (!r.empty()) out = ReadUser(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("user not found");
  return std::move(*out);
}

Result<UserRow> PostgresStore::FindStaffByKerberos(const std::string& principal) {
  // '' is "no principal", shared by every user without one: never a match.
  if (principal.empty()) return NotFoundError("no staff user for this Kerberos principal");
  std::optional<UserRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kFindStaffByKerberos, Params().Add(principal), "user"));
    if (!r.empty()) out = ReadUser(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("no staff user for this Kerberos principal");
  return std::move(*out);
}

Result<Page<UserRow>> PostgresStore::ListUsers(const std::string& tenant_id, const PageRequest& page) {
  const int limit = PageLimit(page);
  Page<UserRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(page.after).Add(static_cast<std::int64_t>(limit) + 1);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListUsers, p, "users"));
    out.items.clear();
    for (int i = 0; i < r.size(); ++i) out.items.push_back(ReadUser(r, i));
    return Status::Ok();
  }));
  FinishPage(out, limit, &UserRow::username);
  return out;
}

Status PostgresStore::UpdateUser(const UserRow& u, std::int64_t expected_version, const SessionRow* session,
                                 const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckUserUpdate(u, expected_version, session));
  return Transact(audit, [&](Connection& c) -> Status {
    {
      Params p;
      AddUserState(p, u);
      p.Add(u.updated_at).Add(u.version).Add(u.tenant_id).Add(u.username).Add(expected_version);
      KURA_ASSIGN_OR_RETURN(Rows cas, c.Exec(kCasUser, p, kUserWhat));
      if (cas.affected() == 0) {
        KURA_ASSIGN_OR_RETURN(Rows cur, c.Exec(kUserVersion, Params().Add(u.tenant_id).Add(u.username), "user"));
        if (cur.empty()) return NotFoundError("user not found");
        return AbortedError("user version conflict: expected version " + std::to_string(expected_version) +
                            ", current version is " + std::to_string(cur.Int(0, 0)));
      }
    }
    // Same transaction: the sign-in's counters and its session commit together.
    if (session != nullptr) return InsertSessionRow(c, *session);
    return Status::Ok();
  });
}

Status PostgresStore::DeleteUser(const std::string& tenant_id, const std::string& username,
                                 const AuditLink* audit) {
  return Transact(audit, [&](Connection& c) -> Status {
    // The user's row first: it waits for a concurrent UpdateUser, so the
    // sessions DELETE after it also removes a session that update opened.
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDeleteUser, Params().Add(tenant_id).Add(username), "user"));
    if (r.affected() == 0) return NotFoundError("user not found");
    // The foreign key cascades too; explicit, so nothing depends on it.
    return c.Exec(kDeleteUserSessions, Params().Add(tenant_id).Add(username), "delete user sessions").status();
  });
}

// --- Sessions

Result<SessionRow> PostgresStore::FindSession(ByteView token_hash) {
  std::optional<SessionRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kFindSession, Params().Add(token_hash), "session"));
    if (!r.empty()) out = ReadSession(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("session not found");
  return std::move(*out);
}

Status PostgresStore::TouchSession(ByteView token_hash, std::int64_t last_seen_at) {
  // Autocommitted: the UPDATE is the write; the existence check after an
  // unchanged row only tells "already newer" (OK) from "no such session".
  return WriteOne([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kTouchSession, Params().Add(last_seen_at).Add(token_hash), "session"));
    if (r.affected() != 0) return Status::Ok();
    KURA_ASSIGN_OR_RETURN(Rows exists, c.Exec(kSessionExists, Params().Add(token_hash), "session"));
    if (exists.empty()) return NotFoundError("session not found");
    return Status::Ok();
  });
}

Status PostgresStore::UpdateSession(const SessionRow& s, const AuditLink* audit) {
  return WriteAudited(audit, [&](Connection& c) -> Status {
    Params p;
    p.Add(s.method).Add(s.restriction).Add(s.authenticated_at).Add(ByteView(s.token_hash));
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kUpdateSession, p, "session"));
    if (r.affected() == 0) return NotFoundError("session not found");
    return Status::Ok();
  });
}

Status PostgresStore::RevokeSession(ByteView token_hash, std::int64_t at, const AuditLink* audit) {
  return WriteAudited(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kRevokeSession, Params().Add(at).Add(token_hash), "session"));
    if (r.affected() == 0) return NotFoundError("session not found or already revoked");
    return Status::Ok();
  });
}

Result<int> PostgresStore::RevokeUserSessions(const std::string& tenant_id, const std::string& username,
                                              std::int64_t at, const AuditLink* audit) {
  int revoked = 0;
  KURA_RETURN_IF_ERROR(WriteAudited(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r,
                          c.Exec(kRevokeUserSessions, Params().Add(at).Add(tenant_id).Add(username), "session"));
    revoked = static_cast<int>(r.affected());
    return Status::Ok();
  }));
  return revoked;
}

Result<int> PostgresStore::PurgeEndedSessions(std::int64_t ended_before, int limit, const AuditLink* audit) {
  if (limit < 1) return InvalidArgumentError("limit must be at least 1");
  int purged = 0;
  KURA_RETURN_IF_ERROR(WriteAudited(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(
        Rows r, c.Exec(kPurgeEndedSessions, Params().Add(ended_before).Add(std::int64_t{limit}), "purge sessions"));
    purged = static_cast<int>(r.affected());
    // Rolls back, so the entry is not written either.
    return purged == 0 ? NotFoundError("no session has ended") : Status::Ok();
  }));
  return purged;
}

// --- Lockbox

namespace {

// The columns access_requests shares between INSERT and UPDATE, from
// permissions_json to ticket ($4…$9 of kInsertAccessRequest, $1…$6 of
// kCasAccessRequest).
void AddRequestTerms(Params& p, const AccessRequestRow& r) {
  p.Add(r.permissions_json).Add(r.collections_json).Add(r.duration_s).Add(r.reason).Add(r.detail).Add(r.ticket);
}

// Rows of an access-request query; DataLoss when stored approvals are damaged.
Status ReadAccessRequests(const Rows& r, std::vector<AccessRequestRow>& out) {
  out.clear();
  for (int i = 0; i < r.size(); ++i) {
    KURA_ASSIGN_OR_RETURN(AccessRequestRow request, ReadAccessRequest(r, i));
    out.push_back(std::move(request));
  }
  return Status::Ok();
}

}  // namespace

Status PostgresStore::CreateAccessRequest(const AccessRequestRow& r, const std::vector<OutboxRow>& notify,
                                          const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckNewAccessRequest(r, notify));
  KURA_ASSIGN_OR_RETURN(std::string approvals, EncodeApprovals(r.approvals));
  return Transact(audit, [&](Connection& c) -> Status {
    {
      Params p;
      p.Add(r.tenant_id).Add(r.id).Add(r.requester);
      AddRequestTerms(p, r);
      p.Add(r.status).Add(static_cast<std::int64_t>(r.required_approvals)).Add(approvals);
      p.Add(r.created_at).Add(r.expires_at).Add(r.grant_starts_at).Add(r.grant_ends_at);
      p.Add(r.decided_by).Add(r.decided_at).Add(r.decision_reason).Add(r.version);
      // A duplicate id is AlreadyExists, a missing tenant NotFound (foreign key).
      KURA_RETURN_IF_ERROR(c.Exec(kInsertAccessRequest, p, kAccessRequestWhat).status());
    }
    // Same transaction, after the request: a request that cannot be inserted
    // leaves no notification behind, and a notification that cannot be
    // inserted undoes the request.
    for (const OutboxRow& n : notify) {
      Params p;
      p.Add(n.tenant_id).Add(n.url).Add(n.payload_json).Add(static_cast<std::int64_t>(n.attempts));
      p.Add(n.next_attempt_at).AddOrNull(n.delivered_at).Add(n.last_error);
      KURA_RETURN_IF_ERROR(c.Exec(kInsertNotification, p, "notification").status());
    }
    return Status::Ok();
  });
}

Result<AccessRequestRow> PostgresStore::GetAccessRequest(const std::string& tenant_id, const std::string& id) {
  std::vector<AccessRequestRow> found;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kGetAccessRequest, Params().Add(tenant_id).Add(id), kAccessRequestWhat));
    return ReadAccessRequests(r, found);
  }));
  if (found.empty()) return NotFoundError("access request not found");
  return std::move(found.front());
}

Result<Page<AccessRequestRow>> PostgresStore::ListAccessRequests(const std::string& tenant_id,
                                                                 const std::string& status,
                                                                 const PageRequest& page) {
  const int limit = PageLimit(page);
  const bool first = page.after.empty();
  const char* sql = status.empty() ? (first ? kListAccessRequests : kListAccessRequestsAfter)
                                   : (first ? kListAccessRequestsByStatus : kListAccessRequestsByStatusAfter);
  Page<AccessRequestRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id);
    if (!status.empty()) p.Add(status);
    if (!first) p.Add(page.after);
    p.Add(static_cast<std::int64_t>(limit) + 1);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(sql, p, "access requests"));
    return ReadAccessRequests(r, out.items);
  }));
  FinishPage(out, limit, &AccessRequestRow::id);
  return out;
}

Result<std::vector<AccessRequestRow>> PostgresStore::ActiveGrants(const std::string& tenant_id,
                                                                  const std::string& requester, std::int64_t now) {
  std::vector<AccessRequestRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kActiveGrants, Params().Add(tenant_id).Add(requester).Add(now),
                                         "access grants"));
    return ReadAccessRequests(r, out);
  }));
  return out;
}

Status PostgresStore::UpdateAccessRequest(const AccessRequestRow& r, std::int64_t expected_version,
                                          const AuditLink* audit) {
  KURA_RETURN_IF_ERROR(CheckAccessRequestUpdate(r, expected_version));
  KURA_ASSIGN_OR_RETURN(std::string approvals, EncodeApprovals(r.approvals));
  // A transaction (like UpdateUser), so the version read after a missed
  // compare-and-set belongs to the same unit of work. Concurrent updaters of
  // one request (an approve racing a deny) queue on its row lock; each
  // re-checks `version = expected` against the committed row, so one wins
  // and the others get Aborted.
  return Transact(audit, [&](Connection& c) -> Status {
    Params p;
    AddRequestTerms(p, r);
    p.Add(r.status).Add(static_cast<std::int64_t>(r.required_approvals)).Add(approvals);
    p.Add(r.expires_at).Add(r.grant_starts_at).Add(r.grant_ends_at);
    p.Add(r.decided_by).Add(r.decided_at).Add(r.decision_reason).Add(r.version);
    p.Add(r.tenant_id).Add(r.id).Add(expected_version);
    KURA_ASSIGN_OR_RETURN(Rows cas, c.Exec(kCasAccessRequest, p, kAccessRequestWhat));
    if (cas.affected() != 0) return Status::Ok();
    KURA_ASSIGN_OR_RETURN(Rows cur, c.Exec(kAccessRequestVersion, Params().Add(r.tenant_id).Add(r.id),
                                           kAccessRequestWhat));
    if (cur.empty()) return NotFoundError("access request not found");
    return AbortedError("access request version conflict: expected version " + std::to_string(expected_version) +
                        ", current version is " + std::to_string(cur.Int(0, 0)));
  });
}

Result<std::vector<OutboxRow>> PostgresStore::DueNotifications(std::int64_t now, int limit) {
  std::vector<OutboxRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kDueNotifications,
                                         Params().Add(now).Add(static_cast<std::int64_t>(PageLimit(limit))),
                                         "notifications"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadNotification(r, i));
    return Status::Ok();
  }));
  return out;
}

Status PostgresStore::UpdateNotification(const OutboxRow& n) {
  // Bookkeeping of the delivery worker: no audit entry (the notification's
  // request was audited when it was made), so one autocommitted statement.
  return WriteOne([&](Connection& c) -> Status {
    Params p;
    p.Add(static_cast<std::int64_t>(n.attempts)).Add(n.next_attempt_at).AddOrNull(n.delivered_at);
    p.Add(n.last_error).Add(n.id);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kUpdateNotification, p, "notification"));
    if (r.affected() == 0) return NotFoundError("notification not found");
    return Status::Ok();
  });
}

// --- Audit log

Status PostgresStore::Enqueue(PendingOp& op) {
  {
    std::lock_guard<std::mutex> lock(append_mu_);
    if (append_stopping_) return UnavailableError("database is closed");
    append_queue_.push_back(&op);
  }
  append_cv_.notify_one();
  // No timeout of our own: every round trip of the appender is bounded
  // (statement timeout + grace, pool acquire timeout), so the batch ends.
  op.Wait();
  return std::move(op.result);
}

Status PostgresStore::AppendAudit(const AuditLink& entry) {
  PendingOp op;
  op.link = &entry;
  return Enqueue(op);
}

void PostgresStore::AppendAuditAsync(std::unique_ptr<AuditLink> entry, AuditCompletion done) {
  auto op = std::make_unique<PendingOp>();
  op->link = entry.get();
  op->owned = std::move(entry);
  op->completion = std::move(done);
  {
    std::lock_guard<std::mutex> lock(append_mu_);
    if (!append_stopping_) append_queue_.push_back(op.release());
  }
  if (!op) {
    append_cv_.notify_one();
    return;
  }
  op->completion(UnavailableError("database is closed"));
}

void PostgresStore::AppenderLoop() {
  pthread_setname_np(pthread_self(), "kura-pg-audit");
  std::vector<PendingOp*> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(append_mu_);
      append_cv_.wait(lock, [this] { return append_stopping_ || !append_queue_.empty(); });
      if (append_queue_.empty()) return;  // stopping, and every queued op is done
      std::size_t savepoints = 0;
      while (!append_queue_.empty() && batch.size() < kMaxAppendBatch) {
        PendingOp* op = append_queue_.front();
        if (op->run != nullptr && op->pipelined == nullptr) {
          if (savepoints == kMaxSavepointsPerBatch) break;
          ++savepoints;
        }
        batch.push_back(op);
        append_queue_.pop_front();
      }
    }
    // While this batch commits, new ops queue up for the next one.
    RunAppendBatch(batch);
    for (PendingOp* op : batch) {
      if (op->completion) {
        std::unique_ptr<PendingOp> owned(op);
        owned->completion(std::move(owned->result));
      } else {
        op->Finish();  // the caller may return and destroy its op: touch it no more
      }
    }
    batch.clear();
  }
}

void PostgresStore::RunAppendBatch(std::vector<PendingOp*>& batch) {
  static thread_local std::minstd_rand jitter(std::random_device{}());
  // The ops still to run; one whose result became final alone (a malformed
  // entry) leaves it, and the rest run again in a fresh transaction.
  std::vector<PendingOp*> live(batch.begin(), batch.end());
  bool lost_once = false;
  Status failure;
  for (int attempt = 0; attempt < kMaxAttempts;) {
    auto lease = Acquire();
    if (!lease.ok()) {
      failure = lease.status();
      break;
    }
    Connection& c = **lease;
    std::string sqlstate;
    BatchTry t = TryAppendBatch(c, live, failure, sqlstate);
    if (t == BatchTry::kFinished) return;
    if (t == BatchTry::kRerun) {
      if (live.empty()) return;
      continue;
    }
    // The same rules as Transact, for the batch as a whole.
    if (c.broken() && !lost_once) {
      lost_once = true;
      retries_.fetch_add(1, std::memory_order_relaxed);
      ++attempt;
      continue;
    }
    if (!pg::IsRetryable(sqlstate)) break;
    retries_.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + jitter() % (5 << attempt)));
    ++attempt;
  }
  // Nothing of the batch was committed. An op that failed on its own keeps
  // its error (nothing of it was written either way); the others fail with
  // the transaction's.
  for (PendingOp* op : live) {
    if (!op->result.ok()) continue;
    if (op->run != nullptr) {
      op->result = AuditAppendError(failure);
    } else {
      op->result =
          failure.code() == StatusCode::kUnavailable ? failure : UnavailableError("audit log: " + failure.message());
    }
  }
}

PostgresStore::BatchTry PostgresStore::TryAppendBatch(Connection& c, std::vector<PendingOp*>& live, Status& failure,
                                                      std::string& failure_sqlstate) {
  auto fail = [&](Status s) {
    // Before the ROLLBACK, whose round trip resets it.
    failure_sqlstate = c.last_sqlstate();
    if (!c.broken() && !c.Idle()) c.ExecSimple("ROLLBACK", "rollback").IgnoreError();
    failure = std::move(s);
    return BatchTry::kFailed;
  };
  for (PendingOp* op : live) op->result = Status::Ok();
  const bool entries_only =
      std::all_of(live.begin(), live.end(), [](const PendingOp* op) { return op->run == nullptr; });
  if (entries_only && own_head_.has_value()) {
    if (own_head_skips_ > 0) {
      --own_head_skips_;
    } else if (auto done = TryAppendAfterOwnHead(c, live, failure, failure_sqlstate); done.has_value()) {
      return *done;
    }
  }
  Status s;
  // Set when the pipelined run locked the head.
  std::optional<AuditHead> head;
  const bool pipelined = std::all_of(
      live.begin(), live.end(), [](const PendingOp* op) { return op->run == nullptr || op->pipelined != nullptr; });
  if (pipelined) {
    // One round trip for BEGIN, every write and the head lock (still last).
    std::vector<pg::Step> steps;
    steps.push_back({"BEGIN", nullptr, "begin transaction"});
    // When every write of the batch is a new record (the create load),
    // their rows go together, a statement per table (RecordInserts).
    std::vector<const RecordWrite*> new_records;
    std::size_t writes = 0;
    for (const PendingOp* op : live) {
      if (op->pipelined == nullptr) continue;
      ++writes;
      if (const RecordWrite* w = op->pipelined->NewRecord(); w != nullptr) new_records.push_back(w);
    }
    std::optional<RecordInserts> inserts;
    if (new_records.size() >= 2 && new_records.size() == writes) inserts.emplace(new_records);
    const std::size_t inserts_first = steps.size();
    if (inserts.has_value()) inserts->AddSteps(steps);
    std::vector<std::size_t> first(live.size());
    for (std::size_t i = 0; !inserts.has_value() && i < live.size(); ++i) {
      first[i] = steps.size();
      if (live[i]->pipelined != nullptr) live[i]->pipelined->AddSteps(steps);
    }
    const Params no_params;
    steps.push_back({kLockAuditHead, &no_params, "audit head"});
    std::size_t failed_step = 0;
    auto results = c.Pipeline(steps, &failed_step);
    bool accepted = results.ok();
    if (accepted && inserts.has_value()) accepted = inserts->Accepts(*results, inserts_first);
    for (std::size_t i = 0; accepted && !inserts.has_value() && i < live.size(); ++i) {
      if (live[i]->pipelined != nullptr) accepted = live[i]->pipelined->Accepts(*results, first[i]);
    }
    if (accepted) {
      auto read = ReadAuditHead(results->back());
      if (!read.ok()) return fail(read.status());
      head = std::move(read).value();
    } else if (!results.ok() && (c.broken() || pg::IsRetryable(c.last_sqlstate()) || failed_step == 0 ||
                                 failed_step + 1 == steps.size())) {
      // The transaction's own failure (BEGIN, the head, the connection,
      // a deadlock), not one write's.
      return fail(AuditAppendError(results.status()));
    } else {
      // One write refused (a duplicate id, a rotated data key, a missing
      // tenant): run the batch write by write, which finds its answer.
      if (!c.Idle()) s = c.ExecSimple("ROLLBACK", "rollback");
      if (!s.ok()) return fail(std::move(s));
    }
  }
  if (!head.has_value()) {
    s = c.ExecSimple("BEGIN", "begin transaction");
    if (!s.ok()) return fail(std::move(s));
  }
  for (PendingOp* op : live) {
    if (op->run == nullptr || head.has_value()) continue;
    // A savepoint per write: one that fails alone (a stale If-Match, a
    // duplicate id, its own lock timeout) is undone alone and keeps its
    // error; the batch goes on.
    s = c.ExecSimple("SAVEPOINT op", "savepoint");
    if (!s.ok()) return fail(std::move(s));
    op->result = op->run(op->ctx, c);
    if (!op->result.ok()) {
      // A deadlock or serialization failure may involve locks that earlier
      // ops of the batch hold: the whole transaction goes and is retried.
      if (c.broken() || pg::IsRetryable(c.last_sqlstate())) {
        Status why = std::move(op->result);
        op->result = Status::Ok();
        return fail(std::move(why));
      }
      s = c.ExecSimple("ROLLBACK TO SAVEPOINT op", "rollback to savepoint");
      if (!s.ok()) return fail(std::move(s));
    }
    s = c.ExecSimple("RELEASE SAVEPOINT op", "release savepoint");
    if (!s.ok()) return fail(std::move(s));
  }
  // Last, after every change of the batch: the head lock is held only from
  // here to COMMIT, and always after any row lock an op took, by every
  // node, so lock order is the same everywhere.
  std::vector<PendingOp*> appending;
  std::vector<const AuditLink*> links;
  for (PendingOp* op : live) {
    if (op->result.ok()) {
      appending.push_back(op);
      links.push_back(op->link);
    }
  }
  std::vector<Status> own(links.size());
  std::optional<AuditHead> after;
  if (head.has_value()) {
    s = AppendAfterHead(c, std::move(*head), links, &own, &after.emplace());
  } else if (!links.empty()) {
    s = AppendLocked(c, links, &own, &after.emplace());
  }
  if (!s.ok()) {
    own_head_.reset();
    return fail(std::move(s));
  }
  std::int64_t appended = 0;
  std::vector<PendingOp*> dropped;
  for (std::size_t i = 0; i < appending.size(); ++i) {
    if (own[i].ok()) {
      // PostgresPoolStats::audit_appends counts AppendAudit entries only.
      if (appending[i]->run == nullptr) ++appended;
      continue;
    }
    appending[i]->result = std::move(own[i]);
    // A write whose entry cannot be appended must not commit without it;
    // its change is already part of the transaction, so the batch is rolled
    // back and run again without it.
    if (appending[i]->run != nullptr) dropped.push_back(appending[i]);
  }
  if (!dropped.empty()) {
    own_head_.reset();
    c.ExecSimple("ROLLBACK", "rollback").IgnoreError();
    std::erase_if(live, [&](PendingOp* op) { return std::find(dropped.begin(), dropped.end(), op) != dropped.end(); });
    return BatchTry::kRerun;
  }
  s = c.ExecSimple("COMMIT", "commit");
  // A head not moved by this batch (no entry) is not known either: it was
  // not locked when nothing was appended.
  own_head_ = s.ok() && !appending.empty() ? std::move(after) : std::nullopt;
  if (!s.ok() && !c.broken()) return fail(std::move(s));
  const bool unknown = !s.ok();
  const bool unreplicated = s.ok() && c.SyncReplicationCancelled();
  for (PendingOp* op : live) {
    if (!op->result.ok()) continue;
    if (unknown) {
      op->result = CommitOutcomeUnknown();
    } else if (unreplicated) {
      op->result = NotReplicated();
    }
  }
  if (s.ok()) {
    audit_commits_.fetch_add(1, std::memory_order_relaxed);
    audit_appends_.fetch_add(appended, std::memory_order_relaxed);
  }
  return BatchTry::kFinished;
}

std::optional<PostgresStore::BatchTry> PostgresStore::TryAppendAfterOwnHead(Connection& c,
                                                                            std::vector<PendingOp*>& live,
                                                                            Status& failure,
                                                                            std::string& failure_sqlstate) {
  if (!CheckAuditAppendSeq(own_head_->next_seq).ok()) {
    // The locking path reads the head again and fails the batch with it.
    own_head_.reset();
    return std::nullopt;
  }
  std::vector<const AuditLink*> links;
  links.reserve(live.size());
  for (const PendingOp* op : live) links.push_back(op->link);
  std::vector<Status> own(links.size());
  std::vector<pg::Step> steps;
  steps.push_back({"BEGIN", nullptr, "begin transaction"});
  Params expected;
  expected.Add(own_head_->next_seq).AddOrNull(ByteView(own_head_->last_hash));
  steps.push_back({kLockAuditHeadIfUnmoved, &expected, "audit head"});
  AuditAppendPlan plan;
  // With `own` given, a malformed entry is skipped, never the whole call
  // (and the head's range was checked above).
  PlanAuditAppend(*own_head_, links, &own, plan, steps).IgnoreError();
  steps.push_back({"COMMIT", nullptr, "commit"});
  std::size_t failed_step = 0;
  auto results = c.Pipeline(steps, &failed_step);
  if (!results.ok()) {
    own_head_.reset();
    if (c.broken()) {
      // The COMMIT may or may not have been carried out.
      for (std::size_t i = 0; i < live.size(); ++i) {
        live[i]->result = own[i].ok() ? CommitOutcomeUnknown() : std::move(own[i]);
      }
      return BatchTry::kFinished;
    }
    const std::string sqlstate = c.last_sqlstate();
    if (!c.Idle()) c.ExecSimple("ROLLBACK", "rollback").IgnoreError();
    if (failed_step == 1 && sqlstate == kDivisionByZero) {
      own_head_backoff_ = std::min(own_head_backoff_ == 0 ? 1 : 2 * own_head_backoff_, 64);
      own_head_skips_ = own_head_backoff_;
      return std::nullopt;
    }
    failure_sqlstate = sqlstate;
    failure = AuditAppendError(results.status());
    return BatchTry::kFailed;
  }
  own_head_backoff_ = 0;
  const bool unreplicated = c.SyncReplicationCancelled();
  own_head_ = std::move(plan.after);
  std::int64_t appended = 0;
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (!own[i].ok()) {
      live[i]->result = std::move(own[i]);
      continue;
    }
    ++appended;
    if (unreplicated) live[i]->result = NotReplicated();
  }
  audit_commits_.fetch_add(1, std::memory_order_relaxed);
  audit_appends_.fetch_add(appended, std::memory_order_relaxed);
  return BatchTry::kFinished;
}

Result<SeqBounds> PostgresStore::AuditSeqBounds() {
  SeqBounds bounds;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kAuditSeqBounds, Params(), "audit log"));
    if (!r.empty() && !r.IsNull(0, 0)) {
      bounds.lowest = r.Int(0, 0);
      bounds.highest = r.Int(0, 1);
    }
    return Status::Ok();
  }));
  return bounds;
}

Result<AuditHeadRow> PostgresStore::ReadAuditHeadRow() {
  Result<AuditHeadRow> head = DataLossError("audit log: the head row is missing");
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kReadAuditHead, Params(), "audit head"));
    head = ReadAuditHead(r);
    return Status::Ok();
  }));
  return head;
}

Result<std::int64_t> PostgresStore::AuditSize() {
  std::optional<std::int64_t> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kAuditSize, Params(), "audit head"));
    if (!r.empty()) out = r.Int(0, 0);
    return Status::Ok();
  }));
  if (!out) return DataLossError("audit log: the head row is missing");
  return *out;
}

Result<std::vector<AuditRow>> PostgresStore::ReadAudit(std::int64_t from_seq, int limit) {
  if (from_seq < 0) return InvalidArgumentError("audit log: negative sequence number");
  std::vector<AuditRow> out;
  if (limit <= 0) return out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kReadAudit, Params().Add(from_seq).Add(from_seq + limit), "audit log"));
    out.clear();
    out.reserve(static_cast<std::size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadAuditRow(r, i));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Bytes>> PostgresStore::AuditLeafHashes(std::int64_t begin, std::int64_t end) {
  if (begin < 0 || end < begin) return InvalidArgumentError("audit log: invalid leaf range");
  std::vector<Bytes> out;
  std::int64_t missing = -1;
  if (begin < end) {
    // One round trip over the primary key, two columns (no entry bodies).
    KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
      KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kAuditLeafHashes, Params().Add(begin).Add(end), "audit log"));
      out.clear();
      missing = -1;
      out.reserve(static_cast<std::size_t>(r.size()));
      for (int i = 0; i < r.size(); ++i) {
        if (r.Int(i, 0) != begin + i) {
          missing = begin + i;
          break;
        }
        out.push_back(r.GetBytes(i, 1));
      }
      return Status::Ok();
    }));
    if (missing < 0 && static_cast<std::int64_t>(out.size()) == end - begin) return out;
  }
  // Fewer rows than asked (or an empty range): past the end, or a hole.
  KURA_ASSIGN_OR_RETURN(std::int64_t size, AuditSize());
  if (end > size) return InvalidArgumentError("audit log: leaf range beyond the log's size");
  if (begin == end) return out;
  if (missing < 0) missing = begin + static_cast<std::int64_t>(out.size());
  return DataLossError("audit log: entry " + std::to_string(missing) + " is missing");
}

Result<Page<AuditRow>> PostgresStore::FindAudit(const AuditQuery& q) {
  const int limit = PageLimit(q.limit);
  const char* sql = FindAuditSql(Dialect::kPostgres, AuditFilterMask(q));
  Page<AuditRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    // Bound in the order AuditFilterMask documents.
    Params p;
    p.Add(q.after_seq.value_or(-1));
    if (q.tenant_id.has_value()) p.Add(std::string_view(*q.tenant_id));
    if (!q.principal.empty()) p.Add(std::string_view(q.principal));
    if (!q.action.empty()) p.Add(std::string_view(q.action));
    if (!q.resource.empty()) p.Add(std::string_view(q.resource));
    if (!q.outcome.empty()) p.Add(std::string_view(q.outcome));
    if (q.from_ms.has_value()) p.Add(*q.from_ms);
    if (q.to_ms.has_value()) p.Add(*q.to_ms);
    p.Add(static_cast<std::int64_t>(limit) + 1);
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(sql, p, "audit log"));
    out.items.clear();
    for (int i = 0; i < r.size(); ++i) out.items.push_back(ReadAuditRow(r, i));
    return Status::Ok();
  }));
  FinishAuditPage(q, limit, out);
  return out;
}

Status PostgresStore::PutAuditCheckpoint(const AuditCheckpointRow& cp) {
  return WriteOne([&](Connection& c) {
    Params p;
    p.Add(cp.tree_size).Add(cp.at_ms).Add(ByteView(cp.root)).Add(std::string_view(cp.note));
    p.Add(ByteView(cp.signature));
    return c.Exec(kInsertCheckpoint, p, "audit checkpoint").status();
  });
}

Result<std::vector<AuditCheckpointRow>> PostgresStore::ListAuditCheckpoints(std::int64_t after_size, int limit) {
  std::vector<AuditCheckpointRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(after_size).Add(static_cast<std::int64_t>(PageLimit(limit)));
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListCheckpoints, p, "audit checkpoints"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadCheckpoint(r, i));
    return Status::Ok();
  }));
  return out;
}

Result<AuditCheckpointRow> PostgresStore::LatestAuditCheckpoint() {
  std::optional<AuditCheckpointRow> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kLatestCheckpoint, Params(), "audit checkpoint"));
    if (!r.empty()) out = ReadCheckpoint(r, 0);
    return Status::Ok();
  }));
  if (!out) return NotFoundError("no audit checkpoint yet");
  return std::move(*out);
}

// --- Leases and status

Result<bool> PostgresStore::HoldLease(const std::string& name, const std::string& node_id,
                                      std::chrono::milliseconds ttl) {
  if (name.empty() || node_id.empty() || ttl.count() < 1) {
    return InvalidArgumentError("lease: a name, a node id and a positive ttl are required");
  }
  bool held = false;
  // Autocommitted, one round trip. Not retried after a lost connection (the
  // statement may have been applied); the keeper simply tries again.
  KURA_RETURN_IF_ERROR(WriteOne([&](Connection& c) -> Status {
    Params p;
    p.Add(std::string_view(name)).Add(std::string_view(node_id)).Add(static_cast<std::int64_t>(ttl.count()));
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kHoldLease, p, "lease"));
    held = !r.empty() && r.Text(0, 0) == node_id;
    return Status::Ok();
  }));
  return held;
}

Status PostgresStore::ReleaseLease(const std::string& name, const std::string& node_id) {
  return WriteOne([&](Connection& c) {
    return c.Exec(kReleaseLease, Params().Add(std::string_view(name)).Add(std::string_view(node_id)), "lease")
        .status();
  });
}

Result<StorageStatus> PostgresStore::GetStorageStatus() {
  StorageStatus out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    out = StorageStatus();
    out.engine = "postgres";
    KURA_ASSIGN_OR_RETURN(Rows rec, c.Exec(kRecoveryState, Params(), "replication state"));
    if (!rec.empty()) {
      // A boolean column in binary format is one byte.
      Bytes in_recovery = rec.GetBytes(0, 0);
      out.primary = in_recovery.empty() || in_recovery[0] == 0;
      out.synchronous_standby_names = rec.Text(0, 1);
    }
    KURA_ASSIGN_OR_RETURN(Rows repl, c.Exec(kReplication, Params(), "replication state"));
    for (int i = 0; i < repl.size(); ++i) {
      StandbyRow row;
      if (repl.IsNull(i, 1)) out.replication_visible = false;
      if (!repl.IsNull(i, 0)) row.application_name = repl.Text(i, 0);
      if (!repl.IsNull(i, 1)) row.state = repl.Text(i, 1);
      if (!repl.IsNull(i, 2)) row.sync_state = repl.Text(i, 2);
      row.replay_lag_ms = repl.OptionalInt(i, 3);
      out.standbys.push_back(std::move(row));
    }
    KURA_ASSIGN_OR_RETURN(Rows leases, c.Exec(kListLeases, Params(), "leases"));
    for (int i = 0; i < leases.size(); ++i) {
      out.leases.push_back({leases.Text(i, 0), leases.Text(i, 1), leases.Int(i, 2)});
    }
    return Status::Ok();
  }));
  return out;
}

// --- Retention

namespace {

// records.updated_at is the write time of the current version (insert and
// every update set it).
constexpr char kListUpdatedBefore[] =
    "SELECT id FROM records WHERE tenant_id = $1 AND collection = $2 AND id > $3 AND updated_at < $4 "
    "ORDER BY id LIMIT $5";
// The age test and the delete are one statement: a record updated after it
// was listed is kept.
constexpr char kDeleteRecordUpdatedBefore[] =
    "DELETE FROM records WHERE tenant_id = $1 AND collection = $2 AND id = $3 AND updated_at < $4";
constexpr char kRecordExists[] = "SELECT 1 FROM records WHERE tenant_id = $1 AND collection = $2 AND id = $3";

}  // namespace

Result<std::vector<std::string>> PostgresStore::ListRecordsUpdatedBefore(const std::string& tenant_id,
                                                                         const std::string& collection,
                                                                         std::int64_t updated_before,
                                                                         const std::string& after_id, int limit) {
  if (limit < 1) return InvalidArgumentError("limit must be at least 1");
  std::vector<std::string> out;
  KURA_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    Params p;
    p.Add(tenant_id).Add(collection).Add(after_id).Add(updated_before).Add(static_cast<std::int64_t>(limit));
    KURA_ASSIGN_OR_RETURN(Rows r, c.Exec(kListUpdatedBefore, p, "records"));
    out.clear();
    for (int i = 0; i < r.size(); ++i) out.push_back(r.Text(i, 0));
    return Status::Ok();
  }));
  return out;
}

Status PostgresStore::ExpireRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                                   std::int64_t updated_before, const AuditLink* audit) {
  return Transact(audit, [&](Connection& c) -> Status {
    KURA_ASSIGN_OR_RETURN(
        Rows deleted,
        c.Exec(kDeleteRecordUpdatedBefore, Params().Add(tenant_id).Add(collection).Add(id).Add(updated_before),
               "expire record"));
    if (deleted.affected() == 0) {
      KURA_ASSIGN_OR_RETURN(Rows exists,
                            c.Exec(kRecordExists, Params().Add(tenant_id).Add(collection).Add(id), "record"));
      if (exists.empty()) return NotFoundError("record not found");
      return AbortedError("record was updated after the retention cutoff");
    }
    for (const char* sql : {kDeleteIndex, kDeleteVersions}) {
      KURA_RETURN_IF_ERROR(c.Exec(sql, Params().Add(tenant_id).Add(collection).Add(id), "expire record").status());
    }
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
