// VaultImpl: the one implementation of Vault (vault.h). Module-internal.
//
// Files: vault.cc (open, seal lifecycle, authentication, rights checks),
// admin.cc (tenants, collections, roles, API keys), records.cc (records),
// audit.cc (the audit log), identity.cc (users, sign-in, sessions),
// lockbox.cc (access requests and grants).
//
// Locking: lifecycle_mu_ serialises the seal lifecycle (the Seal object is not
// thread-safe) and guards unseal progress; state_mu_ guards what Open/Init
// learn from the meta entry (read on every request, written once); the
// Keyring and the caches lock themselves. Order: lifecycle_mu_ → state_mu_ →
// keyring.
#ifndef KURA_VAULT_VAULT_IMPL_H_
#define KURA_VAULT_VAULT_IMPL_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <thread>
#include <shared_mutex>
#include <string>

#include "audit/entry.h"
#include "audit/merkle.h"
#include "crypto/seal.h"
#include "crypto/signing.h"
#include "policy/policy.h"
#include "store/key_store.h"
#include "store/store.h"
#include "vault/keyring.h"
#include "vault/schema.h"
#include "vault/ttl_cache.h"
#include "vault/vault.h"

namespace kura::vault {

// The meta entry written once by Initialize (docs/formats/vault-meta.md).
constexpr char kInitMetaKey[] = "vault.init";
constexpr int kInitMetaFormat = 2;  // 1: before the key store (refused)

class VaultImpl;

// The audit entry of one request (audit.cc). Made at the start of a vault
// call with what the call is about; the call hands Change() to the store
// write that carries out the request, so the entry commits with the change;
// Finish() appends the entry on its own for every other outcome (reads,
// denials, failures) and turns the call's result into Unavailable when the
// entry cannot be made durable. Not thread-safe: one per call.
class AuditScope {
 public:
  AuditScope(VaultImpl* vault, const Caller& caller, std::string_view action, std::string tenant,
             std::string resource);
  AuditScope(VaultImpl* vault, const RequestContext& context, std::string principal, std::string_view action,
             std::string tenant, std::string resource);
  ~AuditScope();
  AuditScope(const AuditScope&) = delete;
  AuditScope& operator=(const AuditScope&) = delete;

  void set_tenant(std::string tenant) { event_.tenant = std::move(tenant); }
  void set_resource(std::string resource) { event_.resource = std::move(resource); }
  void set_lookup(std::string lookup) { event_.lookup = std::move(lookup); }
  void set_principal(std::string principal) { event_.principal = std::move(principal); }
  // Names the access grants (comma-separated ids) the current call acts
  // under, in the entry of the scope open on this thread (each vault call
  // runs on one thread; nested scopes restore the outer one).
  static void NoteGrant(const std::string& grant_ids);
  // The outcome recorded when the call fails, instead of the status code's
  // name ("locked_out" for a sign-in refused because of a lockout).
  void set_failure_outcome(std::string outcome) { failure_outcome_ = std::move(outcome); }
  // The entry to commit with the change, outcome "success". Valid until Finish.
  const store::AuditLink* Change();
  // The entry to commit with a change made although the request fails with
  // `outcome` (a failed sign-in counts against its account): Finish(outcome)
  // then appends nothing more once the change committed.
  const store::AuditLink* FailureChange(const Status& outcome);
  Result<Reply> Finish(Result<Reply> result);
  Status Finish(Status status);
  // For a change handed to the store without waiting (AuditDeferral with
  // changes): the entry to commit with it (outcome "success"; nullptr in the
  // unaudited benchmark build) and the event to record if it fails. The
  // scope appends nothing after this.
  struct Detached {
    std::unique_ptr<store::AuditLink> change;
    audit::Event failure;
  };
  Detached Detach();

 private:
  class ChangeEntry;
  VaultImpl* vault_;
  audit::Event event_;
  std::string failure_outcome_;
  std::unique_ptr<ChangeEntry> change_;
  std::optional<StatusCode> change_outcome_;  // set by FailureChange
  AuditScope* outer_ = nullptr;                // the scope open on this thread before this one
  bool detached_ = false;
};

class VaultImpl final : public Vault {
 public:
  explicit VaultImpl(Options options);
  // Reads the meta entry. DataLoss when it is unreadable.
  Status Load();

  SealStatus GetSealStatus() const override;
  bool IsSealed() const override { return keyring_.IsSealed(); }
  bool ServesInline() const override;
  std::uint64_t RequestsServed() const override { return requests_served_.load(std::memory_order_relaxed); }
  Result<Reply> Initialize(const RequestContext& ctx, const nlohmann::json& body) override;
  Result<Reply> Unseal(const RequestContext& ctx, const nlohmann::json& body) override;
  Status AutoUnseal() override;
  Result<Reply> Seal(const Caller& caller) override;
  Result<std::string> DevInitialize(const std::string& known_root_token) override;

  Result<Principal> Authenticate(std::string_view bearer_token) override;
  Result<NegotiateResult> AuthenticateNegotiate(std::string_view token_base64, std::string* client_principal) override;
  Result<Reply> Whoami(const Caller& caller) override;

  Result<Reply> Login(const RequestContext& ctx, const nlohmann::json& body) override;
  Result<Reply> KerberosLogin(const Caller& caller) override;
  Result<Reply> Logout(const Caller& caller) override;
  Result<Reply> ChangePassword(const Caller& caller, const nlohmann::json& body) override;
  Result<Reply> StepUp(const Caller& caller, const nlohmann::json& body) override;
  Result<Reply> TotpEnroll(const Caller& caller) override;
  Result<Reply> TotpConfirm(const Caller& caller, const nlohmann::json& body) override;
  Result<Reply> CreateUser(const Caller& caller, const std::string& tenant, const nlohmann::json& body) override;
  Result<Reply> GetUser(const Caller& caller, const std::string& tenant, const std::string& username) override;
  Result<Reply> ListUsers(const Caller& caller, const std::string& tenant, const PageParams& page) override;
  Result<Reply> UpdateUser(const Caller& caller, const std::string& tenant, const std::string& username,
                           const nlohmann::json& body) override;
  Result<Reply> DeleteUser(const Caller& caller, const std::string& tenant, const std::string& username) override;
  Result<Reply> RevokeUserSessions(const Caller& caller, const std::string& tenant,
                                   const std::string& username) override;
  Result<Reply> GetAuthPolicy(const Caller& caller, const std::string& tenant) override;
  Result<Reply> PutAuthPolicy(const Caller& caller, const std::string& tenant, const nlohmann::json& body) override;
  Result<Reply> RevokeRootToken(const Caller& caller) override;

  Result<Reply> CreateAccessRequest(const Caller& caller, const nlohmann::json& body) override;
  Result<Reply> ListAccessRequests(const Caller& caller, const std::string& tenant,
                                   const std::map<std::string, std::string>& filters, const PageParams& page) override;
  Result<Reply> GetAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id) override;
  Result<Reply> ApproveAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                     const nlohmann::json& body) override;
  Result<Reply> DenyAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                  const nlohmann::json& body) override;
  Result<Reply> RevokeAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id) override;
  Result<Reply> GetLockboxPolicy(const Caller& caller, const std::string& tenant) override;
  Result<Reply> PutLockboxPolicy(const Caller& caller, const std::string& tenant, const nlohmann::json& body) override;
  Result<std::string> SignWebhookDelivery(const std::string& tenant, std::string_view delivery_id,
                                          std::int64_t timestamp, std::string_view body) override;

  // A tenant's lockbox settings (lockbox.cc).
  struct LockboxPolicy {
    bool own_approval_only = false;    // security officers may not approve for this tenant
    int approvals_required = 1;
    std::int64_t max_duration_s = 8 * 3600;
    std::string webhook_url;           // approvers' webhook; "" = none
    Bytes webhook_secret_sealed;       // its signing secret, wrapped (WrapSecret); empty = none
    // The secret before the last rotation, still signing beside the new one
    // until `previous_until` (unix seconds), so receivers can switch over.
    Bytes webhook_previous_secret_sealed;
    std::int64_t webhook_previous_until = 0;
  };

  Result<Reply> CreateTenant(const Caller& caller, const nlohmann::json& body) override;
  Result<Reply> GetTenant(const Caller& caller, const std::string& tenant) override;
  Result<Reply> ListTenants(const Caller& caller, const PageParams& page) override;
  Result<Reply> DeleteTenant(const Caller& caller, const std::string& tenant) override;
  // DEK rotation (rotation.cc).
  Result<Reply> RotateTenantKey(const Caller& caller, const std::string& tenant) override;
  Result<Reply> GetTenantKeyRotation(const Caller& caller, const std::string& tenant) override;
  Result<ReencryptProgress> ReencryptStep(int batch_size) override;
  // The key hierarchy (keys.cc).
  Result<Reply> RotateKek(const Caller& caller) override;
  Result<Reply> ListKeys(const Caller& caller) override;
  Result<Reply> MigrateSeal(std::unique_ptr<crypto::Seal> to, const crypto::SealInitOptions& options) override;

  Result<Reply> PutCollection(const Caller& caller, const std::string& tenant, const std::string& collection,
                              const nlohmann::json& body) override;
  Result<Reply> GetCollection(const Caller& caller, const std::string& tenant, const std::string& collection) override;
  Result<Reply> ListCollections(const Caller& caller, const std::string& tenant) override;
  Result<Reply> PutRole(const Caller& caller, const std::string& tenant, const std::string& role,
                        const nlohmann::json& body) override;
  Result<Reply> GetRole(const Caller& caller, const std::string& tenant, const std::string& role) override;
  Result<Reply> ListRoles(const Caller& caller, const std::string& tenant) override;
  Result<Reply> DeleteRole(const Caller& caller, const std::string& tenant, const std::string& role) override;
  Result<Reply> CreateApiKey(const Caller& caller, const std::string& tenant, const nlohmann::json& body) override;
  Result<Reply> ListApiKeys(const Caller& caller, const std::string& tenant) override;
  Result<Reply> RevokeApiKey(const Caller& caller, const std::string& tenant, const std::string& key_id) override;

  Result<Reply> CreateRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                             const nlohmann::json& body) override;
  Result<Reply> GetRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                          const std::string& id, std::optional<std::int64_t> version) override;
  void PrefetchRecord(const std::string& tenant, const std::string& collection, const std::string& id,
                      std::function<void(std::unique_ptr<RecordPrefetch>)> done) override;
  Result<Reply> UpdateRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                             const std::string& id, const nlohmann::json& body,
                             std::optional<std::int64_t> if_match) override;
  Result<Reply> DeleteRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                             const std::string& id) override;
  Result<Reply> ListVersions(const Caller& caller, const std::string& tenant, const std::string& collection,
                             const std::string& id) override;
  Result<Reply> FindRecords(const Caller& caller, const std::string& tenant, const std::string& collection,
                            const std::map<std::string, std::string>& filters, const PageParams& page) override;

  Status AuditRejected(const Caller& caller, const AuditTarget& target, const Status& outcome) override;
  Result<Reply> TenantAuditTrail(const Caller& caller, const std::string& tenant,
                                 const AuditFilters& filters) override;
  Result<Reply> SystemAuditTrail(const Caller& caller, const AuditFilters& filters) override;
  Result<Reply> ListCheckpoints(const Caller& caller, const AuditFilters& filters) override;
  Result<Reply> InclusionProof(const Caller& caller, const std::string& seq, const AuditFilters& filters) override;
  Result<Reply> ConsistencyProof(const Caller& caller, const AuditFilters& filters) override;
  Result<Reply> AuditPublicKey(const Caller& caller) override;
  Status WriteCheckpoint() override;
  Status AuditSystemEvent(const std::string& action, const std::string& resource, const Status& outcome) override;
  Result<std::int64_t> ExpireRecords(int max_records) override;  // retention.cc
  Result<std::int64_t> PurgeEndedSessions(int max_sessions) override;  // retention.cc

 private:
  friend class AuditScope;

  // --- audit (audit.cc).
  // Appends an entry on its own (group-committed). Unavailable when it cannot
  // be made durable.
  Status AppendEntry(const audit::Event& event);
  // Hands a new record to the store without waiting; `deferral` gets the
  // outcome (a failure only after its failure entry is durable).
  void InsertRecordDeferred(AuditDeferral& deferral, store::RecordWrite write, AuditScope& scope);
  // Unwraps (or, on first unseal of a vault that has none, creates) the
  // checkpoint signing key. Called with the KEK versions before the keyring
  // takes them.
  Status LoadSigningKey(const KekSet& keks);
  Result<Reply> AuditTrail(const std::optional<std::string>& tenant, const AuditFilters& filters);
  std::int64_t NowMillis() const;

  // --- identity (identity.cc).
  // A tenant's (or, for "", the staff's) sign-in policy.
  struct AuthPolicy {
    auth::PasswordPolicy password;
    bool step_up_requires_totp = false;  // sensitive actions need TOTP, not just the password
  };
  Result<AuthPolicy> PolicyFor(const std::string& tenant);
  const std::string& DummyPasswordHash();
  // Argon2id through a bounded number of slots (one per core).
  class PasswordSlot;
  bool VerifyPasswordBounded(std::string_view encoded, std::string_view password);
  Result<std::string> HashPasswordBounded(std::string_view password, const auth::Argon2Params& params);
  Result<Principal> AuthenticateSession(ByteView token_hash);
  // Checks a user body {"username","password"?,"roles","kerberos"? (staff)}
  // against the names, roles and password policy, and makes the row (the
  // password hashed). Used by CreateUser and by CreateTenant's "admin".
  Result<store::UserRow> PrepareUser(const std::string& tenant, const nlohmann::json& body);
  // Root, or a staff member holding one of `roles`.
  Status RequireStaff(const Caller& caller, std::initializer_list<std::string_view> roles) const;
  // Who may manage the users of `tenant` ("" = staff: the operator).
  Status RequireUserAdmin(const Caller& caller, const std::string& tenant);
  // Sensitive actions: a session principal must have authenticated within
  // the step-up window (root and per-request Kerberos always have).
  Status RequireFreshAuth(const Caller& caller) const;
  // The session of a signed-in user or staff member (PermissionDenied else).
  Result<store::SessionRow> SessionOf(const Caller& caller);
  Result<SecretBytes> TotpSecretOf(const store::UserRow& user) const;

  // --- lockbox (lockbox.cc).
  Result<LockboxPolicy> LockboxPolicyFor(const std::string& tenant);
  // Staff administering a tenant under a grant may not create or change
  // users, keys or roles that hold users.admin or access.approve (an
  // unknown role name gives nothing and passes). OK for everyone else.
  Status RequireNoGrantEscalation(const Caller& caller, const std::string& tenant,
                                  const std::vector<std::string>& role_names);
  Status RequireNoGrantEscalation(const Caller& caller, const std::string& tenant, const policy::Role& role);
  // The permissions a staff member holds on `tenant`: the union of its
  // active grants (PermissionDenied when none); notes their ids in the
  // current audit entry.
  Result<std::shared_ptr<const policy::Role>> GrantedRole(const Principal& principal, const std::string& tenant);
  // Who may see a tenant's requests: its users and keys with access.approve,
  // users.admin or audit.read, and staff (who see all as security officers
  // and auditors, else their own).
  Status RequireLockboxReader(const Caller& caller, const std::string& tenant);
  bool SeesEveryRequest(const Principal& principal) const;
  // The approver's audit name if the caller may decide on `tenant`'s requests.
  Result<std::string> ApproverName(const Caller& caller, const std::string& tenant, bool for_revoke);
  enum class Decision { kApprove, kDeny, kRevoke };
  Result<Reply> DecideAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                    const nlohmann::json& body, Decision decision);
  // Per-tenant settings in the meta table, bound to the tenant's creation
  // time so a deleted tenant's settings never apply to a new one of the same
  // id. Read: nullopt when absent or left behind. Write: NotFound without
  // the tenant.
  Result<std::optional<nlohmann::json>> ReadTenantMeta(const std::string& tenant, const std::string& key);
  Status WriteTenantMeta(const std::string& tenant, const std::string& key, nlohmann::json value,
                         const store::AuditLink* audit);

  // --- lifecycle (vault.cc); the *Locked forms expect lifecycle_mu_ held.
  struct InitOutcome {
    std::vector<std::string> shares;
    std::string root_token;
  };
  Result<InitOutcome> InitializeLocked(const std::string& type, const crypto::SealInitOptions& seal_options,
                                       AuditScope& scope);
  Status AutoUnsealLocked();
  Result<Reply> InitializeRequest(const nlohmann::json& body, AuditScope& scope);
  Result<Reply> UnsealRequest(const nlohmann::json& body);
  SealStatus SealStatusLocked() const;
  bool IsInitialized() const;
  // Reads the root token's hash from the meta entry again (empty: revoked).
  Status ReloadRootTokenHash();

  // --- rights (vault.cc). Each returns PermissionDenied before anything
  // about the tenant's contents is looked at.
  Status RequireUnsealed() const;
  // Root, or a principal of `tenant` (API key or user) whose roles have users.admin.
  Status RequireTenantAdmin(const Caller& caller, const std::string& tenant);
  // A principal of `tenant` whose roles allow `action` on `collection`.
  Result<policy::Decision> RequireRecordRight(const Caller& caller, const std::string& tenant,
                                              const std::string& collection, policy::Action action);
  // The permissions of an API key or user of `tenant`, their roles merged
  // (PermissionDenied for anyone else).
  Result<std::shared_ptr<const policy::Role>> RoleOf(const Principal& principal, const std::string& tenant);
  // Loads a stored role (NotFound when absent), through the cache.
  Result<std::shared_ptr<const policy::Role>> LoadRole(const std::string& tenant, const std::string& role);

  // --- the key hierarchy (keys.cc).
  // Opens the key hierarchy with a candidate seal key: the KEK versions
  // (which checks the seal key: InvalidArgument when it is not this vault's),
  // the secrets key and the signing key (made on first unseal), then unseals
  // the keyring. FailedPrecondition when the key store holds no KEK.
  Status UnsealWith(SecretBytes seal_key);
  // The vault's own key of `purpose` (owner ""), unwrapped with `keks`, or
  // made and stored when there is none yet (another node racing: its key).
  Result<SecretBytes> VaultKey(const KekSet& keks, crypto::KeyPurpose purpose);
  // Reads the KEK versions again (another node rotated). Then a load that
  // met an unknown KEK version can be retried.
  Status RefreshKekVersions();
  // Stores new wrapped keys, rewrapping once under a KEK version that
  // another node made meanwhile. `make` builds the rows from the keyring.
  Status InsertWrappedKeys(const std::function<Result<std::vector<store::WrappedKeyRow>>()>& make);
  // DEK rotation's key steps (rotation.cc builds on them).
  // Makes DEK version n+1 in the key store, then moves tenants.data_key_version to it in the data
  // store (audited, "key.rotate"), and forgets the tenant's cached keys. Returns the new version.
  Result<std::int64_t> CreateDataKeyVersion(const std::string& tenant, AuditScope& scope);
  // Destroys every DEK version of `tenant` below `version` in the key store (audited, "key.destroy").
  Status DestroyDataKeysBelow(const std::string& tenant, std::int64_t version);

  // --- shared lookups.
  Status RequireTenantExists(const std::string& tenant);
  Result<std::shared_ptr<const TenantKeys>> KeysOf(const std::string& tenant);
  Result<std::shared_ptr<const CollectionSchema>> SchemaOf(const std::string& tenant, const std::string& collection);
  Result<store::PageRequest> ToPageRequest(const PageParams& page) const;
  void ForgetTenant(const std::string& tenant);

  // --- records (records.cc).
  // The decrypted document of a record version: {"data": {…}, "subject": …}.
  Result<SecretBytes> OpenRecordText(const TenantKeys& keys, const store::RecordRow& row) const;
  Result<nlohmann::json> OpenRecord(const TenantKeys& keys, const store::RecordRow& row) const;
  nlohmann::json RecordBody(const store::RecordRow& row, const nlohmann::json& plain,
                            const CollectionSchema& schema, policy::FieldView view) const;
  // The tenant's keys able to open a ciphertext under `key_version`: `keys`
  // when they know it, else reloaded once (another node rotated, or the
  // cached keys predate a rotation). DataLoss when that version is destroyed.
  Result<std::shared_ptr<const TenantKeys>> KeysFor(const std::string& tenant,
                                                    std::shared_ptr<const TenantKeys> keys,
                                                    std::int64_t key_version);
  // After a write came back Aborted: true (and the tenant's cached keys
  // forgotten) when `keys` is no longer the tenant's current data key
  // version, so the write is to be sealed again under the new one.
  Result<bool> KeysOutdated(const std::string& tenant, const TenantKeys& keys);
  Result<store::RecordWrite> SealRecord(const TenantKeys& keys, const CollectionSchema& schema,
                                        const std::string& tenant, const std::string& collection, const std::string& id,
                                        std::int64_t version, const nlohmann::json& data, std::string_view data_text,
                                        const std::optional<std::string>& subject) const;

  // --- DEK rotation (rotation.cc).
  // Who may rotate a tenant's data key or watch the rotation: an operator
  // (root, staff "operator") or the tenant's admins (users.admin).
  Status RequireKeyRotationRight(const Caller& caller, const std::string& tenant);
  nlohmann::json RotationJson(const std::string& tenant, std::int64_t current_version,
                              const std::optional<store::KeyRotationRow>& rotation) const;
  // Finishes `rotation` once nothing under an older key is left.
  Result<ReencryptProgress> FinishRotation(const store::KeyRotationRow& rotation);
  std::mutex rotation_start_mu_;  // serialises RotateTenantKey on this node
  std::mutex rotation_mu_;   // serialises ReencryptStep (one job thread per node)
  std::string last_rotated_tenant_;  // round robin over running rotations (guarded by rotation_mu_)

  std::int64_t NowSeconds() const { return ToUnixSeconds(clock_->Now()); }

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::KeyStore> key_store_;
  std::unique_ptr<crypto::Seal> seal_;
  std::mutex kek_rotate_mu_;  // one KEK rotation at a time on this node
  const Clock* clock_;
  std::string region_;
  int keep_versions_;
  int max_page_size_;

  Keyring keyring_;
  std::atomic<std::uint64_t> requests_served_{0};  // AuditScopes of clients (not "system")

  mutable std::mutex lifecycle_mu_;
  int progress_ = 0;  // shares given so far (guarded by lifecycle_mu_)

  mutable std::shared_mutex state_mu_;
  bool initialized_ = false;
  std::string seal_type_;
  int threshold_ = 0;
  Bytes root_token_hash_;

  // The checkpoint signing key while unsealed (guarded by signing_mu_), and
  // its public key (readable while sealed once known).
  mutable std::mutex signing_mu_;
  std::shared_ptr<const crypto::SigningKey> signing_key_;
  Bytes audit_public_key_;
  // Leaf hashes for roots and proofs come from the store.
  class StoreLeaves final : public audit::LeafHashSource {
   public:
    explicit StoreLeaves(store::Store* store) : store_(store) {}
    Result<std::vector<Bytes>> LeafHashes(std::int64_t begin, std::int64_t end) override {
      return store_->AuditLeafHashes(begin, end);
    }

   private:
    store::Store* store_;
  };
  StoreLeaves leaves_{store_.get()};
  audit::TreeReader tree_{&leaves_};

  IdentityOptions identity_;
  // Verified for unknown users, so their sign-in takes as long (DummyPasswordHash).
  std::once_flag dummy_once_;
  std::counting_semaphore<256> password_slots_{
      static_cast<std::ptrdiff_t>(std::clamp(std::thread::hardware_concurrency(), 1u, 256u))};
  std::string dummy_password_hash_;

  // API keys by token hash, roles and schemas by "tenant\0name".
  TtlCache<store::ApiKeyRow> api_keys_;
  TtlCache<std::shared_ptr<const policy::Role>> roles_;
  TtlCache<std::shared_ptr<const CollectionSchema>> schemas_;
};

// Cache key of a (tenant, name) pair; names cannot contain NUL.
inline std::string PairKey(const std::string& tenant, const std::string& name) { return tenant + '\0' + name; }

// Shared by VaultImpl's files.
constexpr char kDenied[] = "permission denied";
constexpr std::int64_t kSecondsPerDay = 24 * 60 * 60;
// Compare-and-swap updates of a row (users, access requests) retry this often
// when another request changed it in between.
constexpr int kUpdateRetries = 16;

inline bool IsKnownRegion(std::string_view region) {
  return region == "jp" || region == "us" || region == "eu" || region == "in";
}

// A 204 reply.
inline Reply NoContent() {
  Reply reply;
  reply.no_content = true;
  return reply;
}

}  // namespace kura::vault

#endif  // KURA_VAULT_VAULT_IMPL_H_
