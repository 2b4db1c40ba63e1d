#include "vault/vault.h"

#include <mutex>

#include "auth/token.h"
#include "crypto/seal.h"
#include "store/store.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

// How long a cached API key, role or schema may be used before it is read
// again. Changes through this process apply at once; the TTL only bounds how
// stale a change made by another node on the same database can be.
constexpr std::chrono::seconds kCacheTtl{10};
constexpr std::size_t kCacheEntries = 10000;

// One message for every authentication failure: which of unknown, expired or
// revoked applied must not be learnable from outside.
constexpr char kBadToken[] = "invalid, expired or revoked token";

}  // namespace

std::string Principal::LogName() const {
  switch (kind) {
    case PrincipalKind::kRoot:
      return "root";
    case PrincipalKind::kApiKey:
      return "apikey:" + id;
    case PrincipalKind::kUser:
      return "user:" + tenant_id + "/" + id;
    case PrincipalKind::kStaff:
      return "staff:" + id;
  }
  return "unknown";
}

bool Principal::HasRole(std::string_view role_name) const {
  for (const std::string& r : roles) {
    if (r == role_name) return true;
  }
  return false;
}

json SealStatus::ToJson() const {
  return {{"initialized", initialized},
          {"sealed", sealed},
          {"type", type},
          {"progress", progress},
          {"threshold", threshold}};
}

Result<std::unique_ptr<Vault>> Vault::Open(Options options) {
  if (!options.store) return InvalidArgumentError("vault: no store");
  if (!options.key_store) return InvalidArgumentError("vault: no key store");
  if (!options.seal) return InvalidArgumentError("vault: no seal");
  if (options.clock == nullptr) return InvalidArgumentError("vault: no clock");
  if (!IsKnownRegion(options.region)) return InvalidArgumentError("vault: unknown region '" + options.region + "'");
  if (options.keep_versions < 1) return InvalidArgumentError("vault: keep_versions must be at least 1");
  if (options.max_page_size < 1) return InvalidArgumentError("vault: max_page_size must be at least 1");
  auto vault = std::make_unique<VaultImpl>(std::move(options));
  KURA_RETURN_IF_ERROR(vault->Load());
  return std::unique_ptr<Vault>(std::move(vault));
}

VaultImpl::VaultImpl(Options options)
    : store_(std::move(options.store)),
      key_store_(std::move(options.key_store)),
      seal_(std::move(options.seal)),
      clock_(options.clock),
      region_(std::move(options.region)),
      keep_versions_(options.keep_versions),
      max_page_size_(options.max_page_size),
      identity_(std::move(options.identity)),
      api_keys_(clock_, kCacheTtl, kCacheEntries),
      roles_(clock_, kCacheTtl, kCacheEntries),
      schemas_(clock_, kCacheTtl, kCacheEntries) {}

Status VaultImpl::Load() {
  auto meta = store_->GetMeta(kInitMetaKey);
  std::unique_lock lock(state_mu_);
  seal_type_ = std::string(seal_->Type());
  if (!meta.ok()) {
    if (meta.status().code() == StatusCode::kNotFound) return Status::Ok();  // not initialised yet
    return meta.status();
  }
  json doc;
  try {
    doc = json::parse(AsString(*meta));
  } catch (const json::exception&) {
    return DataLossError("vault meta entry '" + std::string(kInitMetaKey) + "' is not valid JSON");
  }
  auto fail = [] { return DataLossError("vault meta entry '" + std::string(kInitMetaKey) + "' is malformed"); };
  if (doc.is_object() && doc.value("format", 0) == 1) {
    // Pre-release: the keys of such a vault sat in its data store, which
    // migration 7 emptied. There is no upgrade path.
    return FailedPreconditionError(
        "this data directory was made by an earlier kura, before the key store (keys.db) existed; "
        "it cannot be opened: initialise a new one");
  }
  if (!doc.is_object() || doc.value("format", 0) != kInitMetaFormat || !doc.contains("root_token_hash") ||
      !doc["root_token_hash"].is_string()) {
    return fail();
  }
  // An empty hash: the root token was revoked (RevokeRootToken).
  auto hash = HexDecode(doc["root_token_hash"].get<std::string>());
  if (!hash || (hash->size() != 32 && !hash->empty())) return fail();
  // The seal the KEK versions are wrapped with is recorded beside them in the
  // key store, so a seal migration changes both in one transaction.
  auto seal_text = key_store_->GetMeta(store::kKeyMetaSeal);
  if (!seal_text.ok()) {
    if (seal_text.status().code() == StatusCode::kNotFound) {
      return FailedPreconditionError(
          "the vault is initialised but its key store holds no keys: keys.db (or the key_* tables) is missing or "
          "belongs to another vault; restore the key store that goes with this data");
    }
    return seal_text.status();
  }
  json seal = json::parse(*seal_text, nullptr, /*allow_exceptions=*/false);
  if (!seal.is_object() || !seal.contains("type") || !seal["type"].is_string()) {
    return DataLossError("the key store's seal description is malformed");
  }
  std::string type = seal["type"].get<std::string>();
  if (type != seal_->Type()) {
    return FailedPreconditionError("this vault was initialised with the '" + type + "' seal, but the '" +
                                   std::string(seal_->Type()) + "' seal is configured");
  }
  initialized_ = true;
  root_token_hash_ = std::move(*hash);
  threshold_ = seal.value("threshold", 0);
  return Status::Ok();
}

Status VaultImpl::ReloadRootTokenHash() {
  auto meta = store_->GetMeta(kInitMetaKey);
  if (!meta.ok()) return meta.status().code() == StatusCode::kNotFound ? Status::Ok() : meta.status();
  json doc = json::parse(AsString(*meta), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("root_token_hash") || !doc["root_token_hash"].is_string()) {
    return DataLossError("vault meta entry '" + std::string(kInitMetaKey) + "' is malformed");
  }
  auto hash = HexDecode(doc["root_token_hash"].get<std::string>());
  if (!hash || (hash->size() != 32 && !hash->empty())) {
    return DataLossError("vault meta entry '" + std::string(kInitMetaKey) + "' is malformed");
  }
  std::unique_lock lock(state_mu_);
  root_token_hash_ = std::move(*hash);
  return Status::Ok();
}

bool VaultImpl::IsInitialized() const {
  std::shared_lock lock(state_mu_);
  return initialized_;
}

// --- Seal lifecycle ----------------------------------------------------------

SealStatus VaultImpl::SealStatusLocked() const {
  SealStatus s;
  std::shared_lock lock(state_mu_);
  s.initialized = initialized_;
  s.sealed = keyring_.IsSealed();
  s.type = seal_type_;
  s.threshold = threshold_;
  s.progress = s.sealed ? progress_ : 0;
  return s;
}

bool VaultImpl::ServesInline() const { return store_->NonBlocking(); }

SealStatus VaultImpl::GetSealStatus() const {
  std::lock_guard lock(lifecycle_mu_);
  return SealStatusLocked();
}

Result<VaultImpl::InitOutcome> VaultImpl::InitializeLocked(const std::string& type,
                                                           const crypto::SealInitOptions& seal_options,
                                                           AuditScope& scope) {
  if (IsInitialized()) return AlreadyExistsError("vault is already initialised");
  // Another node sharing the database may have initialised it already; check
  // before making key material (the insert below is the real arbiter).
  if (auto meta = store_->GetMeta(kInitMetaKey); meta.ok()) {
    return AlreadyExistsError("vault is already initialised");
  } else if (meta.status().code() != StatusCode::kNotFound) {
    return meta.status();
  }

  InitOutcome outcome;
  SecretBytes seal_key;
  auto init = seal_->Initialize(seal_options);
  if (init.ok()) {
    seal_key = std::move(init->kek);
    outcome.shares = std::move(init->shares);
  } else if (init.status().code() == StatusCode::kAlreadyExists && type != "shamir") {
    // A seal file (key file, passphrase salt, token-wrapped key) left by an
    // earlier start that stopped before the vault was initialised (nothing is
    // encrypted under it yet): use it rather than fail forever on the file
    // that exists.
    KURA_ASSIGN_OR_RETURN(auto existing, seal_->AutoUnseal());
    if (!existing) return init.status();
    seal_key = std::move(*existing);
  } else {
    return init.status();
  }

  // KEK version 1 into the key store, with the seal's description. One left
  // by an earlier start that stopped before the meta entry below is reused
  // if this seal key opens it (UnsealWith checks).
  KURA_ASSIGN_OR_RETURN(auto keks, key_store_->ListKekVersions());
  if (keks.empty()) {
    json seal_doc = {{"type", type}};
    if (type == "shamir") {
      seal_doc["shares"] = seal_options.shares;
      seal_doc["threshold"] = seal_options.threshold;
    }
    KURA_ASSIGN_OR_RETURN(auto first, NewKekVersion(seal_key, 1, NowSeconds()));
    Status s = key_store_->Initialize(first.second, seal_doc.dump());
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) return s;
  }
  {
    KURA_ASSIGN_OR_RETURN(auto stored, key_store_->ListKekVersions());
    if (!OpenKekVersions(seal_key, stored).ok()) {
      return AlreadyExistsError("the key store already holds the keys of another vault");
    }
  }

  outcome.root_token = auth::GenerateRootToken();
  Bytes root_hash = auth::TokenHash(outcome.root_token);
  json doc = {{"format", kInitMetaFormat},
              {"root_token_hash", HexEncode(root_hash)},
              {"initialized_at", FormatRfc3339(clock_->Now())}};
  std::string text = doc.dump();
  // Exactly one initialisation wins, even across processes sharing the store.
  KURA_RETURN_IF_ERROR(store_->InsertMeta(kInitMetaKey, AsBytes(text), scope.Change()));
  {
    std::unique_lock lock(state_mu_);
    initialized_ = true;
    root_token_hash_ = std::move(root_hash);
    threshold_ = type == "shamir" ? seal_options.threshold : 0;
  }
  progress_ = 0;
  KURA_RETURN_IF_ERROR(UnsealWith(std::move(seal_key)));
  api_keys_.Clear();
  return outcome;
}

Result<Reply> VaultImpl::Initialize(const RequestContext& ctx, const json& body) {
  AuditScope scope(this, ctx, "anonymous", actions::kInit, "", "sys/init");
  return scope.Finish(InitializeRequest(body, scope));
}

Result<Reply> VaultImpl::InitializeRequest(const json& body, AuditScope& scope) {
  KURA_RETURN_IF_ERROR(CheckObject(body, {"seal", "shares", "threshold"}));
  std::lock_guard lock(lifecycle_mu_);
  std::string configured(seal_->Type());
  KURA_ASSIGN_OR_RETURN(auto type, OptionalString(body, "seal"));
  if (type && *type != configured) {
    return InvalidArgumentError("seal: this server is configured for the '" + configured + "' seal");
  }
  KURA_ASSIGN_OR_RETURN(auto shares, OptionalInteger(body, "shares"));
  KURA_ASSIGN_OR_RETURN(auto threshold, OptionalInteger(body, "threshold"));
  crypto::SealInitOptions options;
  if (configured == "shamir") {
    if (!shares) return InvalidArgumentError("shares: required for the shamir seal");
    if (!threshold) return InvalidArgumentError("threshold: required for the shamir seal");
    if (*shares < 1 || *shares > 255) return InvalidArgumentError("shares: must be between 1 and 255");
    if (*threshold < 1 || *threshold > *shares) {
      return InvalidArgumentError("threshold: must be between 1 and shares");
    }
    if (*threshold == 1 && *shares != 1) {
      // With threshold 1 every share is the KEK itself: say so rather than
      // hand out n copies of the key.
      return InvalidArgumentError("threshold: must be at least 2 (or use 1 share with threshold 1)");
    }
    options.shares = static_cast<int>(*shares);
    options.threshold = static_cast<int>(*threshold);
  } else if (shares || threshold) {
    return InvalidArgumentError(std::string(shares ? "shares" : "threshold") + ": only for the shamir seal");
  }
  KURA_ASSIGN_OR_RETURN(InitOutcome outcome, InitializeLocked(configured, options, scope));
  Reply reply;
  reply.body = {{"shares", outcome.shares}, {"root_token", outcome.root_token}};
  return reply;
}

Result<Reply> VaultImpl::Unseal(const RequestContext& ctx, const json& body) {
  AuditScope scope(this, ctx, "anonymous", actions::kUnseal, "", "sys/unseal");
  return scope.Finish(UnsealRequest(body));
}

Result<Reply> VaultImpl::UnsealRequest(const json& body) {
  KURA_RETURN_IF_ERROR(CheckObject(body, {"share"}));
  std::lock_guard lock(lifecycle_mu_);
  if (!IsInitialized()) return FailedPreconditionError("vault is not initialised");
  Reply reply;
  if (!keyring_.IsSealed()) {
    reply.body = SealStatusLocked().ToJson();
    return reply;
  }
  // Operator input: Shamir shares, or a passphrase typed at `kura operator
  // unseal`. A passphrase seal given no input uses its file or variable.
  const bool passphrase = seal_->Type() == "passphrase";
  if (seal_->Type() != "shamir" && !(passphrase && body.contains("share"))) {
    // Seals that need no operator input unseal from their own source.
    KURA_RETURN_IF_ERROR(AutoUnsealLocked());
    reply.body = SealStatusLocked().ToJson();
    return reply;
  }
  KURA_ASSIGN_OR_RETURN(std::string share, RequiredString(body, "share"));
  // A malformed or repeated share is refused by the seal without losing the
  // shares already given (the seal decides when progress must start over).
  KURA_ASSIGN_OR_RETURN(crypto::UnsealProgress p, seal_->Submit(share));
  progress_ = p.progress;
  if (!p.kek) {
    reply.body = SealStatusLocked().ToJson();
    return reply;
  }
  progress_ = 0;
  seal_->Reset();
  Status unsealed = UnsealWith(std::move(*p.kek));
  if (unsealed.code() == StatusCode::kInvalidArgument) {
    // No hint about which share was wrong: that would help someone guessing.
    // A passphrase always reaches this check after the full KDF, so every
    // wrong passphrase gets this one message after the same work.
    return InvalidArgumentError(passphrase ? "unseal failed: the passphrase does not match this vault"
                                           : "unseal failed: shares do not match this vault");
  }
  KURA_RETURN_IF_ERROR(unsealed);
  SealStatus status = SealStatusLocked();
  status.progress = p.progress;
  status.threshold = p.threshold;
  reply.body = status.ToJson();
  return reply;
}

Status VaultImpl::AutoUnsealLocked() {
  if (!IsInitialized()) return FailedPreconditionError("vault is not initialised");
  if (!keyring_.IsSealed()) return Status::Ok();
  KURA_ASSIGN_OR_RETURN(auto kek, seal_->AutoUnseal());
  if (!kek) {
    return FailedPreconditionError("the " + std::string(seal_->Type()) + " seal needs operator input to unseal");
  }
  Status unsealed = UnsealWith(std::move(*kek));
  if (unsealed.code() == StatusCode::kInvalidArgument) {
    return InvalidArgumentError("unseal failed: the key does not match this vault");
  }
  return unsealed;
}

Status VaultImpl::AutoUnseal() {
  std::lock_guard lock(lifecycle_mu_);
  AuditScope scope(this, RequestContext{}, "system", actions::kUnseal, "", "sys/unseal");
  return scope.Finish(AutoUnsealLocked());
}

Result<Reply> VaultImpl::Seal(const Caller& caller) {
  AuditScope scope(this, caller, actions::kSeal, "", "sys/seal");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator}));
    std::lock_guard lock(lifecycle_mu_);
    if (keyring_.IsSealed()) return FailedPreconditionError(kSealed);
    keyring_.Seal();
    {
      std::lock_guard signing(signing_mu_);
      signing_key_.reset();
    }
    seal_->Reset();
    progress_ = 0;
    api_keys_.Clear();
    roles_.Clear();
    schemas_.Clear();
    Reply reply;
    reply.body = SealStatusLocked().ToJson();
    return reply;
  }());
}

Result<std::string> VaultImpl::DevInitialize(const std::string& known_root_token) {
  std::lock_guard lock(lifecycle_mu_);
  if (seal_->Type() != "keyfile") return FailedPreconditionError("dev mode needs the keyfile seal");
  if (!IsInitialized()) {
    AuditScope scope(this, RequestContext{}, "system", actions::kInit, "", "sys/init");
    auto outcome = InitializeLocked("keyfile", crypto::SealInitOptions{}, scope);
    KURA_RETURN_IF_ERROR(scope.Finish(outcome.status()));
    return outcome->root_token;
  }
  {
    AuditScope scope(this, RequestContext{}, "system", actions::kUnseal, "", "sys/unseal");
    KURA_RETURN_IF_ERROR(scope.Finish(AutoUnsealLocked()));
  }
  Bytes hash = auth::TokenHash(known_root_token);
  std::shared_lock state(state_mu_);
  if (root_token_hash_.empty()) return std::string();  // revoked: staff sign in instead
  if (known_root_token.empty() || !ConstantTimeEquals(hash, root_token_hash_)) {
    return UnauthenticatedError("the saved root token is not valid for this vault");
  }
  return known_root_token;
}

// --- Authentication ----------------------------------------------------------

Result<Principal> VaultImpl::Authenticate(std::string_view bearer_token) {
  auto parsed = auth::ParseToken(bearer_token);
  if (!parsed.ok()) return UnauthenticatedError(kBadToken);
  Bytes hash = auth::TokenHash(bearer_token);
  Principal principal;

  if (parsed->kind == auth::TokenKind::kRoot) {
    // Checked against the stored hash on every use, not the copy loaded at
    // start: a revocation through another node holds here at once. The root
    // token is used rarely (bootstrap), so the read costs nothing that counts.
    KURA_RETURN_IF_ERROR(ReloadRootTokenHash());
    std::shared_lock lock(state_mu_);
    if (!initialized_ || !ConstantTimeEquals(hash, root_token_hash_)) return UnauthenticatedError(kBadToken);
    principal.kind = PrincipalKind::kRoot;
    principal.id = "root";
    return principal;
  }
  if (parsed->kind == auth::TokenKind::kSession) return AuthenticateSession(hash);

  std::string cache_key(AsString(hash));
  std::optional<store::ApiKeyRow> row = api_keys_.Get(cache_key);
  if (!row) {
    std::uint64_t generation = api_keys_.Generation();
    auto found = store_->FindApiKeyByHash(hash);
    if (!found.ok()) {
      if (found.status().code() == StatusCode::kNotFound) return UnauthenticatedError(kBadToken);
      return found.status();  // the store failed: not the caller's fault
    }
    row = std::move(found).value();
    api_keys_.Put(cache_key, *row, generation);
  }
  // The store matched the hash; compare again in constant time and check the
  // id, so a store bug can never let one key stand in for another.
  if (!ConstantTimeEquals(row->key_hash, hash) || row->id != parsed->key_id) {
    return UnauthenticatedError(kBadToken);
  }
  if (row->revoked_at.has_value()) return UnauthenticatedError(kBadToken);
  if (row->expires_at.has_value() && NowSeconds() >= *row->expires_at) return UnauthenticatedError(kBadToken);
  principal.kind = PrincipalKind::kApiKey;
  principal.id = row->id;
  principal.tenant_id = row->tenant_id;
  principal.role = row->role;
  return principal;
}

Result<Reply> VaultImpl::Whoami(const Caller& caller) {
  AuditScope scope(this, caller, actions::kWhoami, "", "whoami");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    const Principal& p = caller.principal;
    Reply reply;
    switch (p.kind) {
      case PrincipalKind::kRoot:
        reply.body = {{"kind", "root"}, {"id", "root"}, {"tenant", nullptr}, {"role", nullptr}};
        break;
      case PrincipalKind::kApiKey:
        reply.body = {{"kind", "apikey"}, {"id", p.id}, {"tenant", p.tenant_id}, {"role", p.role}};
        break;
      case PrincipalKind::kUser:
      case PrincipalKind::kStaff:
        reply.body = {{"kind", p.kind == PrincipalKind::kUser ? "user" : "staff"},
                      {"id", p.id},
                      {"username", p.id},
                      {"tenant", p.tenant_id.empty() ? json(nullptr) : json(p.tenant_id)},
                      {"roles", p.roles},
                      {"auth_method", p.auth_method},
                      {"authenticated_at", TimeJson(p.authenticated_at)},
                      {"restriction", p.restriction.empty() ? json(nullptr) : json(p.restriction)}};
        break;
    }
    return reply;
  }());
}

// --- Rights --------------------------------------------------------------------

Status VaultImpl::RequireUnsealed() const {
  if (keyring_.IsSealed()) return FailedPreconditionError(kSealed);
  return Status::Ok();
}

Status VaultImpl::RequireStaff(const Caller& caller, std::initializer_list<std::string_view> roles) const {
  const Principal& p = caller.principal;
  if (p.kind == PrincipalKind::kRoot) return Status::Ok();
  if (p.kind == PrincipalKind::kStaff) {
    for (std::string_view r : roles) {
      if (p.HasRole(r)) return Status::Ok();
    }
  }
  return PermissionDeniedError(kDenied);
}

Result<std::shared_ptr<const policy::Role>> VaultImpl::LoadRole(const std::string& tenant, const std::string& role) {
  if (role == policy::kAdminRoleName) {
    static const auto* const kAdmin = new std::shared_ptr<const policy::Role>(
        std::make_shared<const policy::Role>(policy::BuiltinAdminRole()));
    return *kAdmin;
  }
  std::string key = PairKey(tenant, role);
  if (auto cached = roles_.Get(key)) return *cached;
  std::uint64_t generation = roles_.Generation();
  KURA_ASSIGN_OR_RETURN(store::RoleRow row, store_->GetRole(tenant, role));
  json body = json::parse(row.permissions_json, nullptr, /*allow_exceptions=*/false);
  auto parsed = policy::ParseRole(role, body);
  if (!parsed.ok()) return DataLossError("stored role '" + role + "' of tenant '" + tenant + "' is malformed");
  auto shared = std::make_shared<const policy::Role>(std::move(parsed).value());
  roles_.Put(key, shared, generation);
  return shared;
}

Result<std::shared_ptr<const policy::Role>> VaultImpl::RoleOf(const Principal& principal, const std::string& tenant) {
  // Staff hold on a tenant exactly what its active access grants give them.
  if (principal.kind == PrincipalKind::kStaff) return GrantedRole(principal, tenant);
  if (principal.tenant_id != tenant ||
      (principal.kind != PrincipalKind::kApiKey && principal.kind != PrincipalKind::kUser)) {
    return PermissionDeniedError(kDenied);
  }
  if (principal.kind == PrincipalKind::kUser) {
    // A user holds the union of their roles' permissions.
    auto merged = std::make_shared<policy::Role>();
    merged->name = principal.id;
    for (const std::string& name : principal.roles) {
      auto role = LoadRole(tenant, name);
      if (!role.ok()) {
        if (role.status().code() == StatusCode::kNotFound) continue;  // deleted role: nothing
        return role.status();
      }
      const auto& perms = (*role)->permissions;
      merged->permissions.insert(merged->permissions.end(), perms.begin(), perms.end());
    }
    return std::shared_ptr<const policy::Role>(std::move(merged));
  }
  auto role = LoadRole(tenant, principal.role);
  if (!role.ok()) {
    // A key whose role was deleted holds no permission at all.
    if (role.status().code() == StatusCode::kNotFound) {
      return std::make_shared<const policy::Role>(policy::Role{principal.role, {}});
    }
    return role.status();
  }
  return role;
}

Status VaultImpl::RequireTenantAdmin(const Caller& caller, const std::string& tenant) {
  // The root token's part ends at creating the tenant with its first admin:
  // administering a tenant (users, roles, keys, schemas) is the tenant's own
  // business, or a staff member's under a grant naming users.admin.
  if (caller.principal.kind == PrincipalKind::kRoot) return PermissionDeniedError(kDenied);
  KURA_ASSIGN_OR_RETURN(auto role, RoleOf(caller.principal, tenant));
  if (!policy::Decide(*role, policy::Action::kUsersAdmin, "").allowed) return PermissionDeniedError(kDenied);
  return Status::Ok();
}

Result<policy::Decision> VaultImpl::RequireRecordRight(const Caller& caller, const std::string& tenant,
                                                       const std::string& collection, policy::Action action) {
  // The root token is the operator's bootstrap credential: it never reaches
  // tenant data (staff do so only through an approved access grant).
  if (caller.principal.kind == PrincipalKind::kRoot) return PermissionDeniedError(kDenied);
  KURA_ASSIGN_OR_RETURN(auto role, RoleOf(caller.principal, tenant));
  policy::Decision d = policy::Decide(*role, action, collection);
  if (!d.allowed) return PermissionDeniedError(kDenied);
  return d;
}

// --- Shared lookups --------------------------------------------------------------

Status VaultImpl::RequireTenantExists(const std::string& tenant) {
  if (keyring_.Cached(tenant)) return Status::Ok();
  auto row = store_->GetTenant(tenant);
  if (!row.ok()) {
    if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
    return row.status();
  }
  return Status::Ok();
}

Result<std::shared_ptr<const TenantKeys>> VaultImpl::KeysOf(const std::string& tenant) {
  if (auto keys = keyring_.Cached(tenant)) return keys;
  for (int attempt = 0;; ++attempt) {
    std::uint64_t generation = keyring_.Generation();
    auto row = store_->GetTenant(tenant);
    if (!row.ok()) {
      if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
      return row.status();
    }
    KURA_ASSIGN_OR_RETURN(auto wrapped, key_store_->ListKeys(tenant));
    auto keys = keyring_.Load(tenant, row->data_key_version, wrapped, generation);
    if (keys.ok() || keys.status().code() != StatusCode::kAborted) return keys;
    // Wrapped by a KEK version this node has not seen: another node rotated
    // the KEK. Read the versions again, then the keys.
    if (attempt > 0) return UnavailableError("the key store changed while reading; try again");
    KURA_RETURN_IF_ERROR(RefreshKekVersions());
  }
}

Result<std::shared_ptr<const CollectionSchema>> VaultImpl::SchemaOf(const std::string& tenant,
                                                                    const std::string& collection) {
  std::string key = PairKey(tenant, collection);
  if (auto cached = schemas_.Get(key)) return *cached;
  std::uint64_t generation = schemas_.Generation();
  auto row = store_->GetCollection(tenant, collection);
  if (!row.ok()) {
    if (row.status().code() == StatusCode::kNotFound) {
      return NotFoundError("collection '" + collection + "' not found");
    }
    return row.status();
  }
  json body = json::parse(row->schema_json, nullptr, /*allow_exceptions=*/false);
  auto schema = ParseSchema(body);
  if (!schema.ok()) return DataLossError("stored schema of collection '" + collection + "' is malformed");
  auto shared = std::make_shared<const CollectionSchema>(std::move(schema).value());
  schemas_.Put(key, shared, generation);
  return shared;
}

Result<store::PageRequest> VaultImpl::ToPageRequest(const PageParams& page) const {
  store::PageRequest req;
  if (page.limit) {
    if (*page.limit < 1) return InvalidArgumentError("limit: must be at least 1");
    // Larger pages are cut to the maximum rather than refused: `next` lets the
    // caller continue, and no single request can pull more than the maximum.
    req.limit = std::min(*page.limit, max_page_size_);
  } else {
    req.limit = std::min(50, max_page_size_);
  }
  if (!page.after.empty() && !IsValidRecordId(page.after)) return InvalidArgumentError("after: invalid cursor");
  req.after = page.after;
  return req;
}

void VaultImpl::ForgetTenant(const std::string& tenant) {
  keyring_.Forget(tenant);
  api_keys_.EraseIf([&](const std::string&, const store::ApiKeyRow& row) { return row.tenant_id == tenant; });
  std::string prefix = tenant + '\0';
  auto in_tenant = [&](const std::string& key, const auto&) { return key.starts_with(prefix); };
  roles_.EraseIf(in_tenant);
  schemas_.EraseIf(in_tenant);
}

}  // namespace kura::vault
