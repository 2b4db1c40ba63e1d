// Vault: kura's service layer and the only place that combines policy,
// crypto and storage into a request flow. http and cli translate to and from
// these calls; they decide nothing themselves.
//
// Bodies go in and out as JSON (the shapes of SPEC Appendix A). Every call
// checks the caller's rights first (deny by default) and returns a Status whose
// code http maps to the HTTP status (see core/status.h). While the vault is
// sealed every data call returns FailedPrecondition.
//
// Thread safety: all methods are safe to call concurrently. Writes block the
// calling thread until durable (group commit): http runs them off the I/O
// threads.
#ifndef KURA_VAULT_VAULT_H_
#define KURA_VAULT_VAULT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/password.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/status.h"

namespace kura::auth {
class KerberosAcceptor;
}
namespace kura::store {
class Store;
class KeyStore;
struct RecordRow;
}
namespace kura::crypto {
class Seal;
struct SealInitOptions;
}

namespace kura::vault {

enum class PrincipalKind {
  kRoot,    // the operator's root token (bootstrap credential)
  kApiKey,  // a tenant's service account
  kUser,    // a tenant user, signed in (session)
  kStaff,   // a staff user, signed in (session) or by Kerberos on the request
};

// Staff roles (SPEC §1, Appendix A).
namespace staff_roles {
inline constexpr char kSupport[] = "support";
inline constexpr char kSecurityOfficer[] = "security_officer";
inline constexpr char kAuditor[] = "auditor";
inline constexpr char kOperator[] = "operator";
}  // namespace staff_roles

// What a session may still do before it is a full one.
inline constexpr char kRestrictPasswordChange[] = "password_change";  // the password has expired
inline constexpr char kRestrictTotpEnrollment[] = "totp_enrollment";  // staff must enrol TOTP first

struct Principal {
  PrincipalKind kind = PrincipalKind::kApiKey;
  std::string id;         // api key id, "root", or the username of a user / staff member
  std::string tenant_id;  // api keys and tenant users: their tenant ("" for staff)
  std::string role;       // api keys: their role's name
  std::vector<std::string> roles;  // users: tenant roles; staff: staff roles
  // Users and staff: how they proved who they are ("password",
  // "password+totp", "recovery_code", "kerberos"), when they last did so
  // (unix seconds; step-up for sensitive actions), and what a restricted
  // session may only do ("" = unrestricted; kRestrict*).
  std::string auth_method;
  std::int64_t authenticated_at = 0;
  std::string restriction;
  Bytes session_hash;     // the session's token hash ("" for Kerberos on the request)
  // Safe to log: "root", "apikey:<id>", "user:<tenant>/<name>", "staff:<name>". Never the token.
  std::string LogName() const;
  bool HasRole(std::string_view role_name) const;
};

// What the transport knows about a request; recorded, never trusted for rights.
struct RequestContext {
  std::string request_id;
  std::string client_address;
  std::string reason;  // X-Kura-Reason, may be empty
};

struct Caller {
  Principal principal;
  RequestContext context;
};

// What a request is about, for its audit entry: action ("record.read"),
// tenant ("" for none) and resource (the request path after "/v1/", without
// "t/{tenant}/": "collections/customers/records/<id>"). Vault methods name
// their own; the transport names it only for requests it refuses before any
// vault call (AuditRejected).
struct AuditTarget {
  std::string action;
  std::string tenant;
  std::string resource;
  // Who the refused request claimed to be when no principal was established
  // ("kerberos:bob@CORP.EXAMPLE" for a valid ticket of an unmapped principal).
  std::string claimed_principal;
};

// A call's answer: JSON body, whether something was created (201), and for
// records the version (sent as ETag).
struct Reply {
  nlohmann::json body;
  // Instead of `body` (then null): the body already serialised. A record read
  // in full view splices its decrypted document into the reply as it is,
  // rather than parse it and print it again. Holds field values: whoever
  // sends it wipes it (Wipe).
  std::string body_text;
  bool created = false;
  std::optional<std::int64_t> version;
  bool no_content = false;  // 204: body is empty
};

// Filters of an audit trail (GET /v1/t/{t}/audit, GET /v1/sys/audit), from
// the query string: principal, action, resource, outcome (exact matches),
// from / to (RFC 3339 or unix milliseconds; from inclusive, to exclusive),
// after (the last seq of the previous page), limit (at most 1,000) — or,
// instead of limit, last=N: the newest N matches (1 ≤ N ≤ 1,000), oldest
// first, with no next page (what `kura audit tail` asks for).
using AuditFilters = std::map<std::string, std::string>;

struct SealStatus {
  bool initialized = false;
  bool sealed = true;
  std::string type;   // "keyfile" | "shamir" | "passphrase" | "pkcs11"
  int progress = 0;   // shares given so far (shamir)
  int threshold = 0;
  nlohmann::json ToJson() const;
};

struct PageParams {
  std::string after;
  std::optional<int> limit;  // default 50, at most Options::max_page_size
};

// Sign-in settings (configuration [auth], [kerberos]).
struct IdentityOptions {
  auth::Argon2Params argon2;                        // for new password hashes
  std::chrono::seconds session_idle{15 * 60};       // idle timeout
  std::chrono::seconds session_lifetime{8 * 3600};  // absolute lifetime
  std::chrono::seconds step_up_window{5 * 60};      // sensitive actions need authentication this recent
  // Password policy for staff (require_totp is always on for staff) and the
  // default for tenants without their own (PUT /v1/t/{t}/auth-policy).
  auth::PasswordPolicy staff_policy;
  auth::PasswordPolicy tenant_policy;
  std::string totp_issuer = "kura";
  // Kerberos (GET /v1/auth/kerberos, Negotiate on staff routes); null = off.
  std::shared_ptr<const auth::KerberosAcceptor> kerberos;
  // Principals "name@REALM" of these realms map to the staff user "name"
  // unless a staff user names the principal explicitly ("kerberos" field).
  std::vector<std::string> kerberos_map_realms;
};

struct Options {
  std::unique_ptr<store::Store> store;
  // The wrapped keys (KEK versions, tenant data and index keys, the vault's
  // own keys), kept apart from `store` (docs/formats/keys.md). Required.
  std::unique_ptr<store::KeyStore> key_store;
  std::unique_ptr<crypto::Seal> seal;
  const Clock* clock = &Clock::Real();
  std::string region = "jp";      // region of this deployment; tenants default to it
  int keep_versions = 10;         // versions kept per record
  int max_page_size = 100;
  IdentityOptions identity;
};

// What one background re-encryption step did (Vault::ReencryptStep).
struct ReencryptProgress {
  bool idle = true;             // no rotation is running: nothing was done
  std::string tenant;           // the tenant whose rotation the step advanced
  std::int64_t scanned = 0;     // record versions read under older keys
  std::int64_t rewritten = 0;   // of those, re-encrypted (the rest changed meanwhile)
  bool finished = false;        // none left: the old keys were destroyed, the rotation is done
};

// A Kerberos authentication of one request (Authorization: Negotiate).
struct NegotiateResult {
  Principal principal;
  std::string output_token;  // base64, for "WWW-Authenticate: Negotiate <token>"
};

// The audit action names (SPEC §4), one per kind of request.
namespace actions {
inline constexpr char kInit[] = "sys.init";
inline constexpr char kUnseal[] = "sys.unseal";
inline constexpr char kSeal[] = "sys.seal";
inline constexpr char kWhoami[] = "auth.whoami";
inline constexpr char kTenantCreate[] = "tenant.create";
inline constexpr char kTenantRead[] = "tenant.read";
inline constexpr char kTenantList[] = "tenant.list";
inline constexpr char kTenantDelete[] = "tenant.delete";
inline constexpr char kCollectionList[] = "collection.list";
inline constexpr char kCollectionWrite[] = "collection.write";
inline constexpr char kCollectionRead[] = "collection.read";
inline constexpr char kRoleList[] = "role.list";
inline constexpr char kRoleWrite[] = "role.write";
inline constexpr char kRoleRead[] = "role.read";
inline constexpr char kRoleDelete[] = "role.delete";
inline constexpr char kApiKeyCreate[] = "apikey.create";
inline constexpr char kApiKeyList[] = "apikey.list";
inline constexpr char kApiKeyRevoke[] = "apikey.revoke";
inline constexpr char kRecordCreate[] = "record.create";
inline constexpr char kRecordFind[] = "record.find";    // with a filter: a lookup
inline constexpr char kRecordList[] = "record.list";    // without: an export
inline constexpr char kRecordRead[] = "record.read";
inline constexpr char kRecordUpdate[] = "record.update";
inline constexpr char kRecordDelete[] = "record.delete";
inline constexpr char kRecordVersions[] = "record.versions";
// DEK rotation (rotation.cc): the request that starts one, reading its
// progress, and the background job's end (principal "system").
inline constexpr char kDataKeyRotate[] = "key.rotate";
inline constexpr char kDataKeyRotationRead[] = "key.rotation.read";
inline constexpr char kDataKeyReencrypted[] = "key.reencrypt";
inline constexpr char kRecordExpire[] = "record.expire";  // destroyed by retention (principal "system")
// The key hierarchy (keys.cc): KEK rotation, the key listing, seal
// migration, and every destruction of keys (a tenant's, crypto-shredding;
// old data key versions after a rotation).
inline constexpr char kKekRotate[] = "sys.rotate";
inline constexpr char kKeysRead[] = "sys.keys.read";
inline constexpr char kSealMigrate[] = "sys.seal.migrate";
inline constexpr char kKeyDestroy[] = "key.destroy";
inline constexpr char kAuditRead[] = "audit.read";
inline constexpr char kAuditProof[] = "audit.proof";
inline constexpr char kCheckpoint[] = "audit.checkpoint";
inline constexpr char kLogin[] = "auth.login";
inline constexpr char kKerberosLogin[] = "auth.kerberos";
inline constexpr char kLogout[] = "auth.logout";
inline constexpr char kPasswordChange[] = "auth.password";
inline constexpr char kStepUp[] = "auth.step_up";
inline constexpr char kTotpEnroll[] = "auth.totp.enroll";
inline constexpr char kTotpConfirm[] = "auth.totp.confirm";
inline constexpr char kUserCreate[] = "user.create";
inline constexpr char kUserRead[] = "user.read";
inline constexpr char kUserList[] = "user.list";
inline constexpr char kUserUpdate[] = "user.update";
inline constexpr char kUserDelete[] = "user.delete";
inline constexpr char kSessionRevoke[] = "session.revoke";
inline constexpr char kSessionPurge[] = "session.purge";  // ended sessions deleted (principal "system")
inline constexpr char kAuthPolicyRead[] = "auth_policy.read";
inline constexpr char kAuthPolicyWrite[] = "auth_policy.write";
inline constexpr char kRootTokenRevoke[] = "sys.root_token.revoke";
inline constexpr char kAccessRequest[] = "access.request";
inline constexpr char kAccessList[] = "access.list";
inline constexpr char kAccessRead[] = "access.read";
inline constexpr char kAccessApprove[] = "access.approve";
inline constexpr char kAccessDeny[] = "access.deny";
inline constexpr char kAccessRevoke[] = "access.revoke";
inline constexpr char kLockboxPolicyRead[] = "lockbox.read";
inline constexpr char kLockboxPolicyWrite[] = "lockbox.write";
}  // namespace actions

// Lets a thread that must not block (an HTTP I/O thread) call the vault
// without waiting for audit entries to become durable: while an
// AuditDeferral is installed on the calling thread, entries appended on their
// own (reads, denials, failures) are queued and the call returns at once; the
// caller then waits with OnDurable() and must not send the response unless
// the status it gets is OK (otherwise it answers with that status: the entry
// of what it was about to send could be lost).
//
// Changes wait too, unless the deferral is installed with `changes`: then a
// record create is handed to the store without waiting, the reply assumes
// it commits, and OnDurable reports the write's own failure (its failure
// entry appended first) — the caller answers with that status instead. An
// Aborted outcome means nothing was written: the caller may run the request
// again the ordinary, blocking way. Install a deferral only around calls that
// write nothing else, and with `changes` only when the vault ServesInline().
// (A session's record of use — bookkeeping without an entry, whose failure
// fails no request — is queued then, not waited for: Store::TouchSessionAsync.)
//
// Thread safety: Install/OnDurable on the calling thread; completions arrive
// from the store's threads.
class AuditDeferral {
 public:
  AuditDeferral();
  ~AuditDeferral();  // uninstalls if still installed
  AuditDeferral(const AuditDeferral&) = delete;
  AuditDeferral& operator=(const AuditDeferral&) = delete;

  // Installs this deferral on the current thread (until Uninstall or destruction).
  void Install(bool changes = false);
  bool defers_changes() const { return changes_; }
  void Uninstall();
  // Calls `done` once every entry queued while installed is durable (OK) or
  // has failed (Unavailable) — at once, on this thread, when nothing is
  // pending; otherwise later, on a store thread. Call once, after Uninstall.
  void OnDurable(std::function<void(Status)> done);
  // True when an entry (or a change) was queued while installed — whether or
  // not it has completed since: its outcome must then be awaited with
  // OnDurable before anything is sent.
  bool Queued() const;

  // The deferral installed on this thread, or nullptr (the vault's use).
  static AuditDeferral* Current();
  struct State;
  const std::shared_ptr<State>& state() const { return state_; }

 private:
  std::shared_ptr<State> state_;
  AuditDeferral* outer_ = nullptr;
  bool installed_ = false;
  bool changes_ = false;
};

// A record's current version read ahead of the request that wants it
// (Vault::PrefetchRecord), so that a thread that must not block (an HTTP I/O
// thread) can serve a record GET on a store whose reads are a network round
// trip: the read happens off the thread, then the request runs on it with the
// prefetch installed, and the vault's read of that same record for the
// request takes the row instead of reading. Nothing is decided by the
// prefetch: the request is authorised, audited and answered as ever (the row
// read a moment earlier is as current as one read during the request).
//
// Thread safety: Install/Uninstall on the thread that runs the request.
class RecordPrefetch {
 public:
  RecordPrefetch(std::string tenant, std::string collection, std::string id, Result<store::RecordRow> row);
  ~RecordPrefetch();  // uninstalls if still installed
  RecordPrefetch(const RecordPrefetch&) = delete;
  RecordPrefetch& operator=(const RecordPrefetch&) = delete;

  // True when the store answered (the row, or NotFound); otherwise the
  // caller runs the request the ordinary way, which reads (and reports) anew.
  bool answered() const;
  void Install();
  void Uninstall();

  // The vault's: the row if a prefetch of this record is installed on this
  // thread and not yet taken (once).
  static std::optional<Result<store::RecordRow>> Take(const std::string& tenant, const std::string& collection,
                                                      const std::string& id);

 private:
  std::string tenant_, collection_, id_;
  std::unique_ptr<Result<store::RecordRow>> row_;
  RecordPrefetch* outer_ = nullptr;
  bool installed_ = false;
};

class Vault {
 public:
  // Opens the vault sealed. If the seal can unseal by itself (key file) and
  // the vault is initialised, call AutoUnseal() next.
  static Result<std::unique_ptr<Vault>> Open(Options options);
  virtual ~Vault() = default;

  // --- Seal lifecycle (sys routes) -------------------------------------
  virtual SealStatus GetSealStatus() const = 0;
  virtual bool IsSealed() const = 0;
  // True when the store never blocks a caller for long (local reads, queued
  // writes): record reads, and creates under an AuditDeferral with changes,
  // may then run on an I/O thread.
  virtual bool ServesInline() const = 0;
  // Vault calls made for clients (not background jobs) since the vault was
  // opened: background jobs compare it between batches to tell an idle server
  // from a busy one.
  virtual std::uint64_t RequestsServed() const = 0;
  // POST /v1/sys/init {"seal":"shamir","shares":5,"threshold":3} (keyfile: {}).
  // → {"shares":[…],"root_token":"…"} once; AlreadyExists when initialised.
  // Leaves the vault unsealed.
  virtual Result<Reply> Initialize(const RequestContext& ctx, const nlohmann::json& body) = 0;
  // POST /v1/sys/unseal {"share":"…"} → SealStatus JSON. A wrong KEK (bad
  // shares) resets progress and returns InvalidArgument.
  virtual Result<Reply> Unseal(const RequestContext& ctx, const nlohmann::json& body) = 0;
  // Unseals with a seal that needs no input (key file). FailedPrecondition when
  // not initialised or the seal needs operator input.
  virtual Status AutoUnseal() = 0;
  // POST /v1/sys/seal: root only. Wipes every key from memory.
  virtual Result<Reply> Seal(const Caller& caller) = 0;
  // Dev mode: initialise with the key file seal if not yet done and return the
  // root token. Later starts return the token given by `known_root_token`
  // after checking it is still the valid root token. Used by `serve --dev`.
  virtual Result<std::string> DevInitialize(const std::string& known_root_token) = 0;

  // --- Authentication ------------------------------------------------------
  // Resolves a bearer token (root token, API key or session token).
  // Unauthenticated for unknown, expired, idle, revoked tokens and disabled
  // users (one message for all: no oracle).
  virtual Result<Principal> Authenticate(std::string_view bearer_token) = 0;
  // Resolves "Authorization: Negotiate <token>" to the staff user the client
  // principal maps to. Unauthenticated (generic) when Kerberos is off, the
  // token fails or the principal maps to no enabled staff user. When the
  // ticket was valid, `client_principal` (if not null) receives its principal
  // ("bob@CORP.EXAMPLE"), so a refusal can be audited under that name.
  virtual Result<NegotiateResult> AuthenticateNegotiate(std::string_view token_base64,
                                                        std::string* client_principal) = 0;
  // GET /v1/whoami
  virtual Result<Reply> Whoami(const Caller& caller) = 0;

  // --- Sign-in and sessions (SPEC §3; docs/identity.md) ------------------------
  // POST /v1/auth/login {"username","password","totp"?,"recovery_code"?,
  // "tenant"?} (no tenant: staff) → {"token","expires_at","restriction"}.
  // Every failure is Unauthenticated with one message, whatever failed
  // (unknown user, wrong password, locked, disabled), and takes as long as a
  // wrong password; except a missing or wrong second factor after a correct
  // password, which says that a TOTP code is needed.
  virtual Result<Reply> Login(const RequestContext& ctx, const nlohmann::json& body) = 0;
  // GET /v1/auth/kerberos: a session for the staff user of an already
  // authenticated Negotiate principal.
  virtual Result<Reply> KerberosLogin(const Caller& caller) = 0;
  // POST /v1/auth/logout: revokes the caller's session. 204.
  virtual Result<Reply> Logout(const Caller& caller) = 0;
  // POST /v1/auth/password {"current_password","new_password"}: policy,
  // history; clears a password_change restriction. 204.
  virtual Result<Reply> ChangePassword(const Caller& caller, const nlohmann::json& body) = 0;
  // POST /v1/auth/step-up {"password"?,"totp"?}: fresh authentication of the
  // session with the strongest factor the user has (TOTP when enrolled).
  virtual Result<Reply> StepUp(const Caller& caller, const nlohmann::json& body) = 0;
  // POST /v1/auth/totp/enroll → {"secret","uri","qr_svg"} (replaces an
  // unconfirmed enrolment; FailedPrecondition when one is confirmed).
  virtual Result<Reply> TotpEnroll(const Caller& caller) = 0;
  // POST /v1/auth/totp/confirm {"code"} → {"recovery_codes":[…]} (shown once);
  // clears a totp_enrollment restriction.
  virtual Result<Reply> TotpConfirm(const Caller& caller, const nlohmann::json& body) = 0;

  // --- Users: tenant users (tenant = the tenant; tenant admins with
  // users.admin) and staff (tenant = ""; the operator, or the root token).
  // POST /v1/t/{t}/users, /v1/sys/staff {"username","password"?,"roles",
  // "kerberos"? (staff)} → 201. GET one / list; PATCH-like PUT {"roles"?,
  // "password"? (admin reset: the user must change it at next sign-in),
  // "disabled"?, "kerberos"?, "reset_totp"?}; DELETE → 204;
  // DELETE …/{u}/sessions → {"revoked":N}.
  virtual Result<Reply> CreateUser(const Caller& caller, const std::string& tenant, const nlohmann::json& body) = 0;
  virtual Result<Reply> GetUser(const Caller& caller, const std::string& tenant, const std::string& username) = 0;
  virtual Result<Reply> ListUsers(const Caller& caller, const std::string& tenant, const PageParams& page) = 0;
  virtual Result<Reply> UpdateUser(const Caller& caller, const std::string& tenant, const std::string& username,
                                   const nlohmann::json& body) = 0;
  virtual Result<Reply> DeleteUser(const Caller& caller, const std::string& tenant, const std::string& username) = 0;
  virtual Result<Reply> RevokeUserSessions(const Caller& caller, const std::string& tenant,
                                           const std::string& username) = 0;
  // GET/PUT /v1/t/{t}/auth-policy, /v1/sys/auth-policy (tenant = "").
  virtual Result<Reply> GetAuthPolicy(const Caller& caller, const std::string& tenant) = 0;
  virtual Result<Reply> PutAuthPolicy(const Caller& caller, const std::string& tenant,
                                      const nlohmann::json& body) = 0;
  // DELETE /v1/sys/root-token: ends the bootstrap credential (root itself, or
  // an operator after step-up). 204.
  virtual Result<Reply> RevokeRootToken(const Caller& caller) = 0;

  // --- Lockbox: staff reach tenant data only through approved, time-bound
  // grants (SPEC §2; docs/lockbox.md).
  // POST /v1/access-requests {"tenant","permissions":[…],"collections":[…],
  // "duration":"2h","view":"masked"|"full"?,"reason":"customer_support"|
  // "incident"|"legal"|"other","detail","ticket"} (staff) → 201
  // {"id","status":"pending","expires_at",…}; approvers are notified.
  virtual Result<Reply> CreateAccessRequest(const Caller& caller, const nlohmann::json& body) = 0;
  // GET /v1/t/{t}/access-requests[?status=&limit=&after=] and GET one:
  // the tenant's approvers and admins, security officers and auditors, and
  // the requester for their own. Status as of now: pending, approved,
  // denied, revoked or expired.
  virtual Result<Reply> ListAccessRequests(const Caller& caller, const std::string& tenant,
                                           const std::map<std::string, std::string>& filters,
                                           const PageParams& page) = 0;
  virtual Result<Reply> GetAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id) = 0;
  // POST …/{id}/approve {} — sensitive (step-up); never by the requester;
  // by a user of the tenant with access.approve, or a security officer
  // unless the tenant accepts only its own approvals; each approver once.
  // Enough approvals make the grant: valid from now for its duration.
  virtual Result<Reply> ApproveAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                             const nlohmann::json& body) = 0;
  // POST …/{id}/deny {"reason"?} by an approver.
  virtual Result<Reply> DenyAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                          const nlohmann::json& body) = 0;
  // DELETE …/{id}: revokes a grant (approvers of the tenant, security
  // officers) or withdraws a pending request (also its requester). 204.
  virtual Result<Reply> RevokeAccessRequest(const Caller& caller, const std::string& tenant,
                                            const std::string& id) = 0;
  // GET/PUT /v1/t/{t}/lockbox {"own_approval_only","approvals_required",
  // "max_duration","webhook_url"} (tenant admins).
  virtual Result<Reply> GetLockboxPolicy(const Caller& caller, const std::string& tenant) = 0;
  virtual Result<Reply> PutLockboxPolicy(const Caller& caller, const std::string& tenant,
                                         const nlohmann::json& body) = 0;
  // The signature of one webhook delivery of the tenant's notifications
  // (Standard Webhooks, v1: HMAC-SHA256 under the tenant's webhook secret of
  // "<delivery_id>.<timestamp>.<body>"), as the `webhook-signature` header
  // value "v1,<base64>" — followed by " v1,<base64>" under the previous
  // secret for a day after a rotation; "" when the tenant's webhook has no
  // secret (set before deliveries were signed). FailedPrecondition while sealed. For the
  // notifier: no caller, not audited (it reveals nothing but a MAC).
  virtual Result<std::string> SignWebhookDelivery(const std::string& tenant, std::string_view delivery_id,
                                                  std::int64_t timestamp, std::string_view body) = 0;

  // --- Tenants (operator) ----------------------------------------------------
  // POST /v1/tenants {"id","name","region"?} → 201.
  virtual Result<Reply> CreateTenant(const Caller& caller, const nlohmann::json& body) = 0;
  virtual Result<Reply> GetTenant(const Caller& caller, const std::string& tenant) = 0;
  virtual Result<Reply> ListTenants(const Caller& caller, const PageParams& page) = 0;
  // DELETE /v1/tenants/{t}: destroys the tenant's keys and rows. 204.
  virtual Result<Reply> DeleteTenant(const Caller& caller, const std::string& tenant) = 0;

  // --- The key hierarchy (docs/formats/keys.md) ----------------------------
  // POST /v1/sys/rotate (operator) → 200 {"kek_version","rewrapped"}: a new
  // KEK version rewraps every key in one key-store transaction and the older
  // versions are destroyed; requests keep running meanwhile. Other nodes
  // pick the new version up on their next key-store read.
  virtual Result<Reply> RotateKek(const Caller& caller) = 0;
  // GET /v1/sys/keys (operator, security_officer, auditor) → {"kek_versions":
  // [{"version","created_at","age_days"}], "vault_keys":[{"purpose",…}],
  // "tenants":[{"tenant","data_key_version","data_keys":[{"version",
  // "created_at","age_days","kek_version"}],"index_key":{…}}]}: versions and
  // ages, no key material.
  virtual Result<Reply> ListKeys(const Caller& caller) = 0;
  // Seal migration (offline: `kura operator migrate-seal`, with every node
  // stopped). The vault must be unsealed with its current seal (which proves
  // that seal); `to` is initialised (or, when its files exist from an
  // interrupted migration, opened), its key is checked to come back from
  // `to` alone where it can (not for shamir), and every KEK version is
  // rewrapped under it together with the new seal description in one
  // key-store transaction: until that commits the old seal stays the one
  // that works. Returns {"type","shares"} (shares: shamir only, shown once).
  // FailedPrecondition when sealed or `to` is the configured seal type and
  // file; InvalidArgument for bad shamir options.
  virtual Result<Reply> MigrateSeal(std::unique_ptr<crypto::Seal> to, const crypto::SealInitOptions& options) = 0;

  // --- DEK rotation (docs/operations/key-rotation.md) -----------------------
  // POST /v1/tenants/{t}/rotate-key (an operator, or the tenant's admins:
  // users.admin) → 202 with the rotation's status: a new data key version is
  // current at once (new writes use it), and the lease holder's background
  // job re-encrypts every record version under older versions, then destroys
  // them. Aborted (409) while a rotation of the tenant is still running.
  virtual Result<Reply> RotateTenantKey(const Caller& caller, const std::string& tenant) = 0;
  // GET /v1/tenants/{t}/rotate-key (same principals) → {"tenant",
  // "data_key_version","state":"none"|"running"|"done","to_version","total",
  // "done","remaining","started_at","finished_at"}.
  virtual Result<Reply> GetTenantKeyRotation(const Caller& caller, const std::string& tenant) = 0;
  // The background job's step (ops::Reencryptor, lease holder only): takes
  // a running rotation (round robin over tenants), re-encrypts up to
  // `batch_size` record versions still under older keys in one store
  // transaction and records the cursor with them; with none left it checks
  // the whole tenant once more, destroys the older data keys (audited
  // key.destroy) and marks the rotation done (audited key.reencrypt).
  // FailedPrecondition while sealed; DataLoss when a version's key is gone.
  virtual Result<ReencryptProgress> ReencryptStep(int batch_size) = 0;

  // --- Tenant administration (root, or a key whose role has users.admin) ---
  // PUT /v1/t/{t}/collections/{c} → 201 created / 200 replaced, body = schema.
  virtual Result<Reply> PutCollection(const Caller& caller, const std::string& tenant, const std::string& collection,
                                      const nlohmann::json& body) = 0;
  // GET /v1/t/{t}/collections/{c} (any principal of the tenant with a
  // permission on that collection, or admin).
  virtual Result<Reply> GetCollection(const Caller& caller, const std::string& tenant,
                                      const std::string& collection) = 0;
  virtual Result<Reply> ListCollections(const Caller& caller, const std::string& tenant) = 0;
  // PUT /v1/t/{t}/roles/{r} → 201/200; GET; GET list; DELETE → 204.
  virtual Result<Reply> PutRole(const Caller& caller, const std::string& tenant, const std::string& role,
                                const nlohmann::json& body) = 0;
  virtual Result<Reply> GetRole(const Caller& caller, const std::string& tenant, const std::string& role) = 0;
  virtual Result<Reply> ListRoles(const Caller& caller, const std::string& tenant) = 0;
  virtual Result<Reply> DeleteRole(const Caller& caller, const std::string& tenant, const std::string& role) = 0;
  // POST /v1/t/{t}/apikeys {"name","role","expires_at":null|RFC3339} → 201
  // {"id","key",…}: the key is returned only here. GET list (never the key).
  // DELETE /v1/t/{t}/apikeys/{id} revokes → 204.
  virtual Result<Reply> CreateApiKey(const Caller& caller, const std::string& tenant, const nlohmann::json& body) = 0;
  virtual Result<Reply> ListApiKeys(const Caller& caller, const std::string& tenant) = 0;
  virtual Result<Reply> RevokeApiKey(const Caller& caller, const std::string& tenant, const std::string& key_id) = 0;

  // --- Records (tenant principals with the matching permission) ------------
  // POST …/records {"data":{…},"subject":"…"?} → 201 {"id","version":1}.
  virtual Result<Reply> CreateRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                     const nlohmann::json& body) = 0;
  // GET …/records/{id}[?version=N] → {"id","version","data","subject",
  // "created_at","updated_at"}, masked per the caller's view.
  virtual Result<Reply> GetRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                  const std::string& id, std::optional<std::int64_t> version) = 0;
  // Reads the current version of a record without blocking the caller, for
  // a GetRecord to come (RecordPrefetch); `done` runs on a store thread, or
  // at once on this one. Null when the names cannot be a record's (the
  // request then reports that itself).
  virtual void PrefetchRecord(const std::string& tenant, const std::string& collection, const std::string& id,
                              std::function<void(std::unique_ptr<RecordPrefetch>)> done) = 0;
  // PUT …/records/{id} {"data":{…},"subject"?}; if_match = If-Match version
  // (nullopt: unconditional). Stale → Aborted. → {"id","version"}.
  virtual Result<Reply> UpdateRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                     const std::string& id, const nlohmann::json& body,
                                     std::optional<std::int64_t> if_match) = 0;
  // DELETE …/records/{id} → 204.
  virtual Result<Reply> DeleteRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                     const std::string& id) = 0;
  // GET …/records/{id}/versions → {"items":[{"version","created_at"}]}.
  virtual Result<Reply> ListVersions(const Caller& caller, const std::string& tenant, const std::string& collection,
                                     const std::string& id) = 0;
  // GET …/records[?field=value][&limit=&after=] → {"items":[record…],"next"}.
  // At most one filter, on an indexed field (InvalidArgument otherwise).
  virtual Result<Reply> FindRecords(const Caller& caller, const std::string& tenant, const std::string& collection,
                                    const std::map<std::string, std::string>& filters, const PageParams& page) = 0;

  // --- Audit log (docs/formats/audit.md) ---------------------------------
  // Every call above leaves exactly one audit entry, committed with the
  // change for writes and durable before the call returns for everything
  // else; when the entry cannot be made durable the call fails with
  // Unavailable and changes nothing. Health and seal status are not audited.
  //
  // Records a request the transport refused before any vault call (missing
  // or malformed credentials, sealed, malformed query, header or body). OK
  // once durable; Unavailable when the entry cannot be made durable (the
  // transport must then answer 503 instead of `outcome`).
  virtual Status AuditRejected(const Caller& caller, const AuditTarget& target, const Status& outcome) = 0;
  // GET /v1/t/{t}/audit (principals of the tenant with audit.read) →
  // {"items":[{"seq","at","principal",…,"entry","hash"}],"next"}: each item
  // carries its canonical entry and leaf hash, so it can be proven included.
  virtual Result<Reply> TenantAuditTrail(const Caller& caller, const std::string& tenant,
                                         const AuditFilters& filters) = 0;
  // GET /v1/sys/audit: every tenant's entries (operator; later the auditor
  // and the security officer).
  virtual Result<Reply> SystemAuditTrail(const Caller& caller, const AuditFilters& filters) = 0;
  // GET /v1/sys/audit/checkpoints[?after=N&limit=] (any authenticated
  // principal: they hold hashes only) → {"items":[{"tree_size","at","root",
  // "note","signature"}],"latest":…}.
  virtual Result<Reply> ListCheckpoints(const Caller& caller, const AuditFilters& filters) = 0;
  // GET /v1/sys/audit/proof/{seq}?tree_size=N → {"seq","tree_size",
  // "leaf_hash","proof":[hex…]} (RFC 6962 inclusion proof).
  virtual Result<Reply> InclusionProof(const Caller& caller, const std::string& seq, const AuditFilters& filters) = 0;
  // GET /v1/sys/audit/consistency?from=M&to=N → {"from","to","proof":[hex…]}.
  virtual Result<Reply> ConsistencyProof(const Caller& caller, const AuditFilters& filters) = 0;
  // GET /v1/sys/audit/pubkey → {"key_id","public_key_pem"}.
  virtual Result<Reply> AuditPublicKey(const Caller& caller) = 0;
  // Signs a checkpoint over every entry appended so far, unless the latest
  // checkpoint already covers them. Run at an interval and on shutdown.
  // FailedPrecondition while sealed.
  virtual Status WriteCheckpoint() = 0;
  // Records an event of the server itself (start, stop), principal "system";
  // `resource` may name what it concerns (e.g. the configuration's digest).
  virtual Status AuditSystemEvent(const std::string& action, const std::string& resource, const Status& outcome) = 0;

  // --- Retention (docs/operations/retention.md) ----------------------------
  // Crypto-shredding by age, run by the lease holder's background job:
  // destroys up to `max_records` records whose current version was written
  // more than their collection's retention_days ago — every version's
  // ciphertext, their index entries and the record row — each with its own
  // audit entry (principal "system", action record.expire, resource
  // collections/{c}/records/{id} of the tenant), committed with the delete.
  // A record updated meanwhile is kept. Returns how many were destroyed;
  // fewer than `max_records` means none is due now. FailedPrecondition while
  // sealed (nothing is destroyed then); Unavailable when the store or the
  // audit log cannot be written.
  virtual Result<std::int64_t> ExpireRecords(int max_records) = 0;
  // Deletes up to `max_sessions` sessions that ended — expired or revoked —
  // more than kSessionKeptAfterEnd ago: their rows say who signed in and
  // when, personal data kept no longer than it serves (the sign-ins and
  // sign-outs themselves are in the audit log). One audit entry per call
  // that deleted any (principal "system", action session.purge, resource
  // "sessions"), committed with the delete. Returns how many; fewer than
  // `max_sessions` means none is due now. FailedPrecondition while sealed.
  virtual Result<std::int64_t> PurgeEndedSessions(int max_sessions) = 0;
};

// How long an ended session's row is kept: a day, a margin far beyond any
// clock difference between nodes, so no node can still be treating the
// session as live when another deletes it.
inline constexpr std::int64_t kSessionKeptAfterEnd = 24 * 60 * 60;

}  // namespace kura::vault

#endif  // KURA_VAULT_VAULT_H_
