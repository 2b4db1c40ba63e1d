// Store: kura's persistence interface. Backends: SQLite (embedded default,
// sqlite_store.cc) and PostgreSQL (postgres_store.cc). The Store sees only ciphertext,
// hashes and metadata, never a key or a plaintext field value.
//
// Every mutating call is atomic and durable when it returns OK (the SQLite
// backend commits with synchronous=FULL; concurrent writers share one commit,
// i.e. one fsync, through a group-commit writer thread; the PostgreSQL backend
// returns only after the server acknowledged COMMIT, so its
// synchronous_commit setting decides local and standby durability). Reads see
// every write that returned before they started.
//
// SQL stays portable (no engine-specific syntax beyond what PostgreSQL and
// SQLite both accept); every backend passes the same conformance suite
// (store_conformance_test.cc).
//
// Thread safety: all methods are safe to call concurrently from any thread.
// Writes may block the calling thread until the shared commit is durable.
#ifndef KURA_STORE_STORE_H_
#define KURA_STORE_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

namespace kura::store {

struct TenantRow {
  std::string id;
  std::string name;
  std::string region;
  std::int64_t created_at = 0;   // unix seconds
  // The current data key version: new ciphertext must be made under it. The
  // keys themselves live in the key store (key_store.h), never here.
  std::int64_t data_key_version = 1;
};

struct CollectionRow {
  std::string tenant_id;
  std::string name;
  std::string schema_json;       // the schema (metadata, not personal data)
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

// One blind-index entry of a record: HMAC of a normalised field value.
struct IndexEntry {
  std::string field;
  Bytes hmac;
};

// A new record version to write. The ciphertext holds the data and subject.
struct RecordWrite {
  std::string tenant_id;
  std::string collection;
  std::string id;
  std::int64_t version = 1;      // the version being written
  Bytes ciphertext;
  Bytes subject_hmac;            // blind index of the subject key, empty if none
  std::vector<IndexEntry> index; // replaces the record's index entries
  std::int64_t at = 0;           // unix seconds of this write
  int keep_versions = 10;        // keep the newest N versions, delete older ones
  // The tenant's data key version that sealed `ciphertext`. The write is
  // refused (Aborted) unless it equals tenants.data_key_version, checked in
  // the write's transaction: once a rotation moved the current version on,
  // no new ciphertext under an older key can appear (docs/operations/key-rotation.md).
  std::int64_t key_version = 1;
};

struct RecordRow {
  std::string tenant_id;
  std::string collection;
  std::string id;
  std::int64_t version = 0;      // the version this row holds
  std::int64_t current_version = 0;
  Bytes ciphertext;
  std::int64_t created_at = 0;   // of the record (version 1)
  std::int64_t updated_at = 0;   // of this version
  std::int64_t key_version = 1;  // the data key version that sealed `ciphertext`
};

// --- DEK rotation: re-encrypting a tenant's record versions under a new data
// key version, in batches, resumable (docs/operations/key-rotation.md).

// The place of one record version; the keyset cursor of a re-encryption
// (versions are visited in (collection, record_id, version) order).
struct RecordVersionKey {
  std::string collection;        // "" (with record_id "" and version 0): before the first
  std::string record_id;
  std::int64_t version = 0;
};

// A stored record version as re-encryption sees it.
struct StoredCiphertext {
  RecordVersionKey key;
  std::int64_t key_version = 1;
  Bytes ciphertext;
};

// One re-encrypted version: replaces the ciphertext and key version of `key`
// if the row still holds `from_key_version` (compare-and-set).
struct CiphertextRewrite {
  RecordVersionKey key;
  std::int64_t from_key_version = 1;
  Bytes ciphertext;              // sealed under the rotation's to_version
};

// The state of a tenant's last DEK rotation (one row per tenant).
struct KeyRotationRow {
  std::string tenant_id;
  std::int64_t to_version = 0;   // versions below it are re-encrypted to it
  std::string state = "running"; // running | done
  RecordVersionKey cursor;       // every version up to here has been visited
  std::int64_t total = 0;        // versions under older keys when the job started
  std::int64_t done = 0;         // versions re-encrypted so far
  std::int64_t started_at = 0;   // unix seconds
  std::int64_t finished_at = 0;  // 0 while running
};

struct VersionInfo {
  std::int64_t version = 0;
  std::int64_t created_at = 0;
};

// Keyset pagination: `after` is the last id of the previous page ("" = start).
struct PageRequest {
  std::string after;
  int limit = 50;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::optional<std::string> next;  // pass as `after` to get the next page
};

struct RoleRow {
  std::string tenant_id;
  std::string name;
  std::string permissions_json;
  std::int64_t updated_at = 0;
};

struct ApiKeyRow {
  std::string id;
  std::string tenant_id;
  std::string name;
  std::string role;
  Bytes key_hash;                      // SHA-256 of the secret part; unique
  std::int64_t created_at = 0;
  std::optional<std::int64_t> expires_at;
  std::optional<std::int64_t> revoked_at;
};

// --- Identity: tenant users and staff, and their sessions. Secrets are kept
// only in protected form: passwords as Argon2id hashes, the TOTP secret
// sealed by the vault (AEAD ciphertext), recovery codes and session tokens
// as SHA-256 hashes.

// A user: of a tenant (tenant_id = the tenant) or staff (tenant_id = "").
struct UserRow {
  std::string tenant_id;             // "" for staff
  std::string username;
  std::string roles_json;            // JSON array of role names
  std::string password_hash;         // encoded Argon2id; "" = no password (Kerberos-only staff)
  std::int64_t password_changed_at = 0;  // unix seconds
  std::string password_history_json = "[]";  // JSON array of previous hashes, newest first
  std::string kerberos_principal;    // staff: "alice@CORP.EXAMPLE" mapped to this user; "" = none
  Bytes totp_secret_sealed;          // empty = no TOTP enrolment
  bool totp_confirmed = false;
  std::int64_t totp_last_step = 0;   // last accepted TOTP time step (replay guard)
  std::string recovery_codes_json = "[]";  // JSON array of hex hashes of unused codes
  int failed_count = 0;              // lockout bookkeeping (auth::LoginFailures)
  std::int64_t failed_window_start = 0;
  std::int64_t locked_until = 0;
  bool disabled = false;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::int64_t version = 1;          // bumped by every update (optimistic concurrency)
};

// A session: an opaque token (stored as its SHA-256) of one user.
struct SessionRow {
  Bytes token_hash;                  // SHA-256 of the token; unique
  std::string tenant_id;             // "" for staff
  std::string username;
  std::string method;                // "password", "password+totp", "recovery_code", "kerberos"
  std::string restriction;           // "" = none; "password_change" | "totp_enrollment"
  std::int64_t created_at = 0;       // unix seconds
  std::int64_t last_seen_at = 0;     // idle timeout counts from here
  std::int64_t expires_at = 0;       // absolute end of life
  std::int64_t authenticated_at = 0; // last (step-up) authentication, for sensitive actions
  std::optional<std::int64_t> revoked_at;
};

// --- Lockbox: staff access requests and the grants they become (SPEC §2).

// One approval of an access request.
struct ApprovalRow {
  std::string approver;   // "user:<tenant>/<name>" or "staff:<name>"
  std::int64_t at = 0;    // unix seconds
};

// An access request; approved, it is the grant. Status is stored for the
// decided states; "pending" and "approved" turn into "expired" by time alone
// (the reader compares expires_at / grant_ends_at with its clock), so expiry
// needs no job.
struct AccessRequestRow {
  std::string id;                    // URL-safe, unique
  std::string tenant_id;
  std::string requester;             // staff username
  std::string permissions_json;      // JSON array of action names
  std::string collections_json;      // JSON array of collection names ("*" = all)
  std::int64_t duration_s = 0;       // asked grant length
  std::string reason;                // customer_support | incident | legal | other
  std::string detail;                // free text
  std::string ticket;
  std::string status = "pending";    // pending | approved | denied | revoked
  int required_approvals = 1;
  std::vector<ApprovalRow> approvals;
  std::int64_t created_at = 0;
  std::int64_t expires_at = 0;       // a pending request lapses here (created + 12 h)
  std::int64_t grant_starts_at = 0;  // approved: the grant's window
  std::int64_t grant_ends_at = 0;
  std::string decided_by;            // denied/revoked: who; approved: the last approver
  std::int64_t decided_at = 0;
  std::string decision_reason;       // deny / revoke reason
  std::int64_t version = 1;          // bumped by every update (optimistic concurrency)
};

// A notification waiting for (or done with) delivery to a webhook.
struct OutboxRow {
  std::int64_t id = 0;               // assigned by the store, increasing
  std::string tenant_id;
  std::string url;
  std::string payload_json;
  int attempts = 0;
  std::int64_t next_attempt_at = 0;  // unix seconds
  std::optional<std::int64_t> delivered_at;
  std::string last_error;            // "" or why the last attempt failed (no secrets)
};

// --- Audit log (docs/formats/audit.md). The store keeps the entries and the
// chain in order; what an entry says and how it is hashed is the audit
// module's (src/audit), reached through AuditLink so the store depends on no
// hashing code.

// One stored audit entry. `entry` is the canonical encoding (opaque here) and
// `hash` its leaf hash; the other columns repeat fields of the entry so trails
// can be filtered in SQL (a verifier checks they agree with `entry`).
struct AuditRow {
  std::int64_t seq = 0;      // 0, 1, 2, … without gaps: the Merkle leaf index
  std::int64_t at_ms = 0;    // unix milliseconds
  std::string tenant_id;     // "" for entries about no tenant
  std::string principal;
  std::string action;
  std::string resource;
  std::string outcome;
  Bytes entry;
  Bytes hash;
};

// The sequence numbers an entry can have: 0 … kMaxAuditSeq - 1. No log
// reaches 2^62 entries, so a number at or past it (or below 0) means the rows
// were altered; code that reads seq columns it has no reason to trust (a
// verifier) keeps within this range rather than overflow past it.
inline constexpr std::int64_t kMaxAuditSeq = std::int64_t{1} << 62;

// An entry waiting for its place in the chain. The store calls Link() while it
// holds the chain's head (inside the transaction that appends the entry, in
// append order), passing the entry's sequence number and the previous entry's
// hash (empty for seq 0). Link must be fast, must not call the store, and is
// called at most once per successful append (again after a retried
// transaction is fine: it must be a pure function of its arguments).
class AuditLink {
 public:
  virtual ~AuditLink() = default;
  virtual AuditRow Link(std::int64_t seq, ByteView prev_hash) const = 0;
};

// The audit chain's head row, rewritten in the transaction of every append:
// the next sequence number and the last entry's leaf hash (empty before the
// first entry).
struct AuditHeadRow {
  std::int64_t next_seq = 0;
  Bytes last_hash;
};

// The seq range a table's rows occupy; highest < lowest when there are none.
struct SeqBounds {
  std::int64_t lowest = 0;
  std::int64_t highest = -1;
};

// A signed checkpoint (tree head). `note` is the signed text and `signature`
// the Ed25519 signature over it; the store keeps them verbatim.
struct AuditCheckpointRow {
  std::int64_t tree_size = 0;
  std::int64_t at_ms = 0;
  Bytes root;
  std::string note;
  Bytes signature;
};

// Filters of a trail query; empty strings and nullopt match everything.
struct AuditQuery {
  std::optional<std::string> tenant_id;  // nullopt: every tenant (sys trail)
  std::string principal;
  std::string action;
  std::string resource;        // exact match
  std::string outcome;
  std::optional<std::int64_t> from_ms;   // at_ms >= from_ms
  std::optional<std::int64_t> to_ms;     // at_ms < to_ms
  std::optional<std::int64_t> after_seq; // keyset pagination: seq > after_seq
  int limit = 50;
  // The newest `limit` matches instead of the oldest (still returned oldest
  // first, with no next page): `kura audit tail` without walking the trail.
  bool newest = false;
};

// --- Coordination and status of the storage itself.

// A named lease as the database records it (GetStorageStatus).
struct LeaseRow {
  std::string name;
  std::string holder;              // node id of the holder ("" if none)
  std::int64_t expires_in_ms = 0;  // by the database's clock; <= 0: expired
};

// One standby as the primary sees it (PostgreSQL's pg_stat_replication).
struct StandbyRow {
  std::string application_name;  // "" when the role may not read it
  std::string state;             // streaming, catchup, startup, backup, stopping
  std::string sync_state;        // sync, potential, quorum, async
  std::optional<std::int64_t> replay_lag_ms;  // nullopt: no recent activity or unknown
};

// What GetStorageStatus reports: the engine, the role of the database kura
// writes to and the standbys that primary streams to.
struct StorageStatus {
  std::string engine;                 // "sqlite" | "postgres"
  bool primary = true;                // false: the server is in recovery (a standby)
  std::string synchronous_standby_names;  // the primary's setting ("" = none)
  // true when pg_stat_replication could be read in full (the role needs
  // pg_monitor / pg_read_all_stats to see its columns).
  bool replication_visible = true;
  std::vector<StandbyRow> standbys;
  std::vector<LeaseRow> leases;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- Meta: small named values (seal configuration, KEK check, root token hash).
  // NotFound when absent.
  virtual Result<Bytes> GetMeta(const std::string& key) = 0;
  virtual Status PutMeta(const std::string& key, ByteView value, const AuditLink* audit) = 0;
  // Inserts only if absent: AlreadyExists otherwise (used once, at init).
  virtual Status InsertMeta(const std::string& key, ByteView value, const AuditLink* audit) = 0;

  // --- Tenants. CreateTenant: AlreadyExists on a duplicate id.
  virtual Status CreateTenant(const TenantRow& tenant, const AuditLink* audit) = 0;
  virtual Result<TenantRow> GetTenant(const std::string& id) = 0;
  virtual Result<Page<TenantRow>> ListTenants(const PageRequest& page) = 0;
  // Deletes the tenant and every row that belongs to it. NotFound if absent.
  virtual Status DeleteTenant(const std::string& id, const AuditLink* audit) = 0;
  // Moves the tenant's current data key version up to `version` (a new data
  // key exists in the key store). NotFound if the tenant is absent; Aborted
  // if its version is already `version` or above.
  virtual Status SetTenantDataKeyVersion(const std::string& id, std::int64_t version, const AuditLink* audit) = 0;

  // --- Collections. PutCollection inserts or replaces; returns true if created.
  virtual Result<bool> PutCollection(const CollectionRow& collection, const AuditLink* audit) = 0;
  virtual Result<CollectionRow> GetCollection(const std::string& tenant_id, const std::string& name) = 0;
  virtual Result<Page<CollectionRow>> ListCollections(const std::string& tenant_id, const PageRequest& page) = 0;

  // --- Records.
  // Both writes: Aborted when write.key_version is not the tenant's current
  // data_key_version (the caller reloads its keys and retries), NotFound when
  // the tenant does not exist.
  // Writes version 1 of a new record. AlreadyExists if the id is taken.
  virtual Status InsertRecord(const RecordWrite& write, const AuditLink* audit) = 0;
  // InsertRecord for a caller that must not block: `done` gets what
  // InsertRecord would return, on a store thread, once the write (and its
  // entry) committed or failed. Only for stores whose NonBlocking() is true;
  // the default runs InsertRecord on the calling thread.
  virtual void InsertRecordAsync(RecordWrite write, std::unique_ptr<AuditLink> audit,
                                 std::function<void(Status)> done) {
    done(InsertRecord(write, audit.get()));
  }
  // True when reads are local (no network round trip) and InsertRecordAsync
  // and AppendAuditAsync queue without blocking the caller (a group-commit
  // writer thread): then an I/O thread may serve records itself.
  virtual bool NonBlocking() const { return false; }
  // Writes write.version (= expected_version + 1) if the record's current version
  // is expected_version: Aborted (conflict) if not, NotFound if no such record.
  // Replaces the index entries and prunes versions beyond keep_versions.
  virtual Status UpdateRecord(const RecordWrite& write, std::int64_t expected_version,
                              const AuditLink* audit) = 0;
  // Deletes every version and index entry. NotFound if absent.
  virtual Status DeleteRecord(const std::string& tenant_id, const std::string& collection,
                              const std::string& id, const AuditLink* audit) = 0;
  // The current version, or the given one. NotFound if absent or pruned.
  virtual Result<RecordRow> GetRecord(const std::string& tenant_id, const std::string& collection,
                                      const std::string& id, std::optional<std::int64_t> version) = 0;
  // GetRecord of the current version for a caller that must not block:
  // `done` gets what GetRecord would return, on a store thread (or at once,
  // on the calling thread, for a store that reads in place: the default).
  virtual void GetRecordAsync(std::string tenant_id, std::string collection, std::string id,
                              std::function<void(Result<RecordRow>)> done) {
    done(GetRecord(tenant_id, collection, id, std::nullopt));
  }
  // Kept versions, newest first. NotFound if the record does not exist.
  virtual Result<std::vector<VersionInfo>> ListVersions(const std::string& tenant_id, const std::string& collection,
                                                        const std::string& id) = 0;
  // Current versions ordered by id.
  virtual Result<Page<RecordRow>> ListRecords(const std::string& tenant_id, const std::string& collection,
                                              const PageRequest& page) = 0;
  // Current versions whose index entry for `field` equals `hmac`, ordered by id.
  virtual Result<Page<RecordRow>> FindRecords(const std::string& tenant_id, const std::string& collection,
                                              const std::string& field, ByteView hmac,
                                              const PageRequest& page) = 0;

  // --- DEK rotation (record versions under older data keys).
  // Versions of `tenant_id`'s records with key_version < below_key_version,
  // in (collection, record_id, version) order, strictly after `after`, at
  // most `limit` (1-10000, else InvalidArgument).
  virtual Result<std::vector<StoredCiphertext>> ScanRecordVersionsBelowKey(const std::string& tenant_id,
                                                                         std::int64_t below_key_version,
                                                                         const RecordVersionKey& after,
                                                                         int limit) = 0;
  // How many versions of `tenant_id` have key_version < below_key_version.
  virtual Result<std::int64_t> CountRecordVersionsBelowKey(const std::string& tenant_id,
                                                           std::int64_t below_key_version) = 0;
  // In one transaction: rewrites each version of `rewrites` to its new
  // ciphertext under `to_version` where the row still has from_key_version
  // (a version pruned, deleted or rewritten meanwhile is skipped), then moves
  // the running rotation of the tenant to `to_version` forward: cursor =
  // `cursor`, done += rows rewritten. Returns the rows rewritten. Aborted
  // (nothing written) when no rotation to `to_version` is running. No audit
  // entry: batches change no content; the rotation's start and end are
  // audited.
  virtual Result<std::int64_t> RewriteRecordCiphertexts(const std::string& tenant_id, std::int64_t to_version,
                                                        const std::vector<CiphertextRewrite>& rewrites,
                                                        const RecordVersionKey& cursor) = 0;
  // Inserts or replaces the tenant's rotation row. NotFound without the tenant.
  virtual Status PutKeyRotation(const KeyRotationRow& rotation, const AuditLink* audit) = 0;
  // NotFound when the tenant never rotated its data key.
  virtual Result<KeyRotationRow> GetKeyRotation(const std::string& tenant_id) = 0;
  // Rotations in state "running", by tenant id.
  virtual Result<std::vector<KeyRotationRow>> ListRunningKeyRotations() = 0;

  // --- Roles. PutRole inserts or replaces; returns true if created.
  virtual Result<bool> PutRole(const RoleRow& role, const AuditLink* audit) = 0;
  virtual Result<RoleRow> GetRole(const std::string& tenant_id, const std::string& name) = 0;
  virtual Result<std::vector<RoleRow>> ListRoles(const std::string& tenant_id) = 0;
  virtual Status DeleteRole(const std::string& tenant_id, const std::string& name, const AuditLink* audit) = 0;

  // --- API keys.
  virtual Status CreateApiKey(const ApiKeyRow& key, const AuditLink* audit) = 0;
  // NotFound when no key has this hash.
  virtual Result<ApiKeyRow> FindApiKeyByHash(ByteView key_hash) = 0;
  virtual Result<std::vector<ApiKeyRow>> ListApiKeys(const std::string& tenant_id) = 0;
  // Sets revoked_at. NotFound if no such key in the tenant.
  virtual Status RevokeApiKey(const std::string& tenant_id, const std::string& id, std::int64_t at,
                              const AuditLink* audit) = 0;

  // --- Users (staff: tenant_id ""). CreateUser: AlreadyExists on a duplicate
  // (tenant_id, username), or a staff kerberos_principal already mapped.
  virtual Status CreateUser(const UserRow& user, const AuditLink* audit) = 0;
  virtual Result<UserRow> GetUser(const std::string& tenant_id, const std::string& username) = 0;
  // The staff user mapped to a Kerberos principal. NotFound when none.
  virtual Result<UserRow> FindStaffByKerberos(const std::string& principal) = 0;
  // Users of a tenant (or staff for ""), ordered by username.
  virtual Result<Page<UserRow>> ListUsers(const std::string& tenant_id, const PageRequest& page) = 0;
  // Replaces the row (matched by tenant_id + username) if its stored version is
  // `expected_version`; stores user.version as given (the caller sets it to
  // expected_version + 1). Aborted on a version conflict, NotFound if absent,
  // AlreadyExists if the new kerberos_principal is another staff user's.
  // `session`, when given, is inserted in the same transaction (a sign-in
  // updates the account's counters and opens its session atomically).
  virtual Status UpdateUser(const UserRow& user, std::int64_t expected_version, const SessionRow* session,
                            const AuditLink* audit) = 0;
  // Deletes the user and every session of theirs. NotFound if absent.
  virtual Status DeleteUser(const std::string& tenant_id, const std::string& username, const AuditLink* audit) = 0;

  // --- Sessions.
  // NotFound when no session has this hash (revoked ones are still found).
  virtual Result<SessionRow> FindSession(ByteView token_hash) = 0;
  // Sets last_seen_at (only ever forward). Bookkeeping of a request that is
  // audited on its own: carries no audit entry. NotFound if absent.
  virtual Status TouchSession(ByteView token_hash, std::int64_t last_seen_at) = 0;
  // TouchSession for a caller that must not block (an I/O thread, on a store
  // whose NonBlocking() is true): queues the update and returns at once;
  // `done` gets what TouchSession would return, on a store thread, and must
  // not block. The default runs TouchSession on the calling thread.
  virtual void TouchSessionAsync(Bytes token_hash, std::int64_t last_seen_at, std::function<void(Status)> done) {
    done(TouchSession(token_hash, last_seen_at));
  }
  // Replaces method, restriction and authenticated_at (step-up, finishing a
  // restricted sign-in). NotFound if absent.
  virtual Status UpdateSession(const SessionRow& session, const AuditLink* audit) = 0;
  // Sets revoked_at on one session (NotFound if absent or already revoked), or
  // on every unrevoked session of a user (returns how many; 0 is fine).
  virtual Status RevokeSession(ByteView token_hash, std::int64_t at, const AuditLink* audit) = 0;
  virtual Result<int> RevokeUserSessions(const std::string& tenant_id, const std::string& username, std::int64_t at,
                                         const AuditLink* audit) = 0;
  // Deletes up to `limit` sessions that ended before `ended_before` (their
  // absolute expiry, or their revocation, is earlier), with `audit` in the
  // same transaction; returns how many. NotFound, with nothing written and
  // no entry, when none had ended.
  virtual Result<int> PurgeEndedSessions(std::int64_t ended_before, int limit, const AuditLink* audit) = 0;

  // --- Lockbox.
  // Inserts a request (AlreadyExists on a duplicate id) and, when `notify`
  // is not empty, the notifications for it, in one transaction.
  virtual Status CreateAccessRequest(const AccessRequestRow& request, const std::vector<OutboxRow>& notify,
                                     const AuditLink* audit) = 0;
  // NotFound when no request of the tenant has this id.
  virtual Result<AccessRequestRow> GetAccessRequest(const std::string& tenant_id, const std::string& id) = 0;
  // Requests of a tenant, newest first (keyset on id, which grows with time);
  // `status` "" = all stored statuses, else that stored status only.
  virtual Result<Page<AccessRequestRow>> ListAccessRequests(const std::string& tenant_id, const std::string& status,
                                                            const PageRequest& page) = 0;
  // Approved requests of `requester` on `tenant_id` whose grant window
  // contains `now` (grant_starts_at <= now < grant_ends_at): the active grants.
  virtual Result<std::vector<AccessRequestRow>> ActiveGrants(const std::string& tenant_id,
                                                             const std::string& requester, std::int64_t now) = 0;
  // Replaces the request if its stored version is `expected_version`
  // (request.version must be expected_version + 1): Aborted on a conflict,
  // NotFound if absent.
  virtual Status UpdateAccessRequest(const AccessRequestRow& request, std::int64_t expected_version,
                                     const AuditLink* audit) = 0;
  // Notifications due at `now` (not delivered, next_attempt_at <= now),
  // oldest first, at most `limit`.
  virtual Result<std::vector<OutboxRow>> DueNotifications(std::int64_t now, int limit) = 0;
  // Records an attempt: delivered (delivered_at set) or failed (attempts,
  // next_attempt_at, last_error). Bookkeeping of the delivery worker: no
  // audit entry. NotFound if absent.
  virtual Status UpdateNotification(const OutboxRow& row) = 0;

  // --- Audit log.
  // Every mutating method above takes, as its last argument, the audit entry
  // that describes it (nullptr only in store tests). The entry is appended in
  // the same transaction as the change, and only if the change succeeds: a
  // failed call appends nothing, and an entry never exists without its change
  // nor a change without its entry.
  //
  // Appends one entry on its own (reads, denials, failures): durable when OK
  // is returned. Concurrent appends share one commit (group commit).
  // Unavailable when the entry cannot be made durable (disk full, I/O error,
  // read-only file system); the caller must then fail its request.
  virtual Status AppendAudit(const AuditLink& entry) = 0;
  // The same append for a caller that must not block (an I/O thread): queues
  // the entry and returns at once; `done` is called exactly once with what
  // AppendAudit would have returned, on a store thread (or on the calling
  // thread if the store has no queue), and must not block. The response that
  // depends on the entry may be sent only after `done` reports OK.
  using AuditCompletion = std::function<void(Status)>;
  virtual void AppendAuditAsync(std::unique_ptr<AuditLink> entry, AuditCompletion done) {
    Status s = AppendAudit(*entry);
    done(std::move(s));
  }
  // The number of entries (= the next sequence number).
  virtual Result<std::int64_t> AuditSize() = 0;
  // Entries with seq in [from_seq, from_seq + limit), in order.
  virtual Result<std::vector<AuditRow>> ReadAudit(std::int64_t from_seq, int limit) = 0;
  // The lowest and highest seq of any stored row, whatever the head says: a
  // verifier reading entries 0, 1, 2, … in order would never meet a row
  // altered into place at a negative seq or far past the end, which trail
  // queries would still list.
  virtual Result<SeqBounds> AuditSeqBounds() = 0;
  // The head row as stored (DataLoss when it is missing): what a verifier
  // compares the log's end with.
  virtual Result<AuditHeadRow> ReadAuditHeadRow() = 0;
  // The leaf hashes of entries [begin, end), in order. InvalidArgument if the
  // range is not within [0, AuditSize()].
  virtual Result<std::vector<Bytes>> AuditLeafHashes(std::int64_t begin, std::int64_t end) = 0;
  // Entries matching `query`, ordered by seq; `next` is the last seq (decimal)
  // when more may follow.
  virtual Result<Page<AuditRow>> FindAudit(const AuditQuery& query) = 0;
  // Checkpoints: AlreadyExists when one with this tree size exists.
  virtual Status PutAuditCheckpoint(const AuditCheckpointRow& checkpoint) = 0;
  // Checkpoints with tree_size > after_size, ascending, at most `limit`.
  virtual Result<std::vector<AuditCheckpointRow>> ListAuditCheckpoints(std::int64_t after_size, int limit) = 0;
  // The checkpoint with the largest tree size. NotFound when there is none.
  virtual Result<AuditCheckpointRow> LatestAuditCheckpoint() = 0;

  // --- Leases: background work (audit checkpoints, SIEM export, …) runs on
  // the one node holding its lease. A lease is a row (name, holder,
  // expires_at_ms); expiry is decided by the database's clock (PostgreSQL) or
  // the host's (SQLite, a single node), never by the caller's, so nodes with
  // skewed clocks still agree.
  //
  // Acquires `name` for `node_id` if it is free or expired, or renews it if
  // `node_id` already holds it; either way it then expires `ttl` after this
  // call. Returns true when `node_id` holds the lease now, false when another
  // node holds an unexpired one. Unavailable when the database cannot be
  // reached: the caller must then assume it holds nothing once its last
  // successful renewal + ttl has passed. InvalidArgument for an empty name or
  // node id or a ttl < 1 ms.
  virtual Result<bool> HoldLease(const std::string& name, const std::string& node_id,
                                 std::chrono::milliseconds ttl) = 0;
  // Gives the lease up if `node_id` holds it (another node may take it at
  // once); OK when it does not.
  virtual Status ReleaseLease(const std::string& name, const std::string& node_id) = 0;

  // The engine, whether the database is the primary, its standbys and the
  // leases. Reads system views on PostgreSQL; cheap, but it is a round trip:
  // call it from a monitor thread, not per request.
  virtual Result<StorageStatus> GetStorageStatus() = 0;

  // --- Retention: crypto-shredding of records past their collection's
  // retention (docs/operations/retention.md).
  //
  // Ids of the records of (tenant_id, collection) whose current version was
  // written before `updated_before` (unix seconds), ordered by id, after
  // `after_id` ("" = from the first), at most `limit` (1 or more). A pass
  // continues from the last id it saw, so it reads past the records it keeps
  // once instead of once per page.
  virtual Result<std::vector<std::string>> ListRecordsUpdatedBefore(const std::string& tenant_id,
                                                                    const std::string& collection,
                                                                    std::int64_t updated_before,
                                                                    const std::string& after_id, int limit) = 0;
  // Deletes a record — every version's ciphertext, its index entries and its
  // row — if its current version was still written before `updated_before`,
  // with `audit` in the same transaction. NotFound when absent; Aborted (and
  // nothing deleted) when it was updated since.
  virtual Status ExpireRecord(const std::string& tenant_id, const std::string& collection, const std::string& id,
                              std::int64_t updated_before, const AuditLink* audit) = 0;
};

struct SqliteOptions {
  std::string path;           // database file; created with its directory (0700)
  bool durable = true;        // synchronous=FULL; false only for unit tests
  int max_batch = 256;        // most writes one group commit may carry
  // Memory for the current versions of recently read records, kept sealed
  // (record_cache.h); 0 turns the cache off.
  std::size_t record_cache_bytes = std::size_t{64} << 20;
  // Hold `<path>.lock` (flock, exclusive) while open, so no second process
  // writes the database beside this one: a server or an offline tool that
  // changes data sets it; a reader such as `kura audit verify` does not.
  bool exclusive = false;
  // Read an existing database and change nothing in it (`kura audit verify`
  // of a data directory or a copy of one, perhaps with a server running on
  // it): the file is opened read-only, its schema is not migrated (a version
  // newer than this binary's is refused; in an older one, tables added since
  // are missing), no WAL checkpoint ever copies into it, and every write
  // fails with FailedPrecondition. SQLite may add an empty `-wal` and the
  // `-shm` index beside a database that has none; the database and an
  // existing `-wal` stay byte for byte as they were.
  bool read_only = false;
};

// Opens (creating and migrating as needed, unless read_only) an SQLite store
// in WAL mode. Unavailable when the file cannot be opened; DataLoss when
// integrity checks fail; NotFound when read_only and there is no database.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options);

struct PostgresOptions {
  // libpq connection string, key=value or URI form. May name several hosts
  // ("host=a,b … target_session_attrs=read-write"): after a failover, new
  // connections find the new primary. Defaults the DSN may override:
  // sslmode=verify-full, connect_timeout = connect_timeout_s,
  // application_name=kura.
  std::string dsn;
  // Optional file holding only the password (one line; mode 0600 or
  // stricter, else refused), so the DSN in the configuration carries none.
  std::string password_file;
  int pool_size = 8;               // connections kept; each call checks one out
  int connect_timeout_s = 5;       // per host, unless the DSN sets connect_timeout
  int statement_timeout_ms = 5000; // server-side bound; the client waits 1 s longer
  int acquire_timeout_ms = 5000;   // wait for a free pooled connection
  // Read and change nothing (`kura audit verify --config`, on the primary or
  // a hot standby): the schema is not migrated (a version newer than this
  // binary's is refused), and every session is read-only
  // (default_transaction_read_only), so the server refuses any write.
  bool read_only = false;
};

// Opens a PostgreSQL store: connects once, applies migrations under an
// advisory lock (several nodes may open at once; not when read_only) and
// returns. Unavailable when the server cannot be reached or refuses the login;
// InvalidArgument for bad options or an unreadable or too-open password file;
// FailedPrecondition when the schema is newer than this binary (or, when
// read_only, when there is no kura schema).
Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& options);

}  // namespace kura::store

#endif  // KURA_STORE_STORE_H_
