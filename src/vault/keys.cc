// The key hierarchy's flows (docs/formats/keys.md): unsealing with a seal
// key, the vault's own keys, KEK rotation, the key listing, seal migration,
// and the key steps of a tenant's data key rotation.
#include <map>

#include "crypto/random.h"
#include "crypto/seal.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

constexpr int kMaxKeyStoreAttempts = 5;

std::string PurposeName(int purpose) {
  switch (static_cast<crypto::KeyPurpose>(purpose)) {
    case crypto::KeyPurpose::kDataKey:
      return "data_key";
    case crypto::KeyPurpose::kIndexKey:
      return "index_key";
    case crypto::KeyPurpose::kAuditSigningKey:
      return "audit_signing_key";
    case crypto::KeyPurpose::kSecretsKey:
      return "secrets_key";
    default:
      return "purpose_" + std::to_string(purpose);
  }
}

json Age(std::int64_t created_at, std::int64_t now) {
  std::int64_t age = std::max<std::int64_t>(0, now - created_at);
  return {{"created_at", TimeJson(created_at)}, {"age_seconds", age}, {"age_days", age / kSecondsPerDay}};
}

}  // namespace

// --- Unsealing -------------------------------------------------------------------

Status VaultImpl::UnsealWith(SecretBytes seal_key) {
  KURA_ASSIGN_OR_RETURN(auto rows, key_store_->ListKekVersions());
  if (rows.empty()) {
    return FailedPreconditionError("the key store holds no KEK: keys.db (or the key_* tables) is missing; "
                                   "restore the key store that goes with this data");
  }
  // Opening the KEK versions is the check of the seal key: only the right
  // one opens them, and they say nothing about it to a reader of the store.
  KURA_ASSIGN_OR_RETURN(KekSet keks, OpenKekVersions(seal_key, rows));
  KURA_RETURN_IF_ERROR(LoadSigningKey(keks));
  KURA_ASSIGN_OR_RETURN(SecretBytes secrets_key, VaultKey(keks, crypto::KeyPurpose::kSecretsKey));
  keyring_.Unseal(std::move(seal_key), std::move(keks), std::move(secrets_key));
  return Status::Ok();
}

Result<SecretBytes> VaultImpl::VaultKey(const KekSet& keks, crypto::KeyPurpose purpose) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    KURA_ASSIGN_OR_RETURN(auto rows, key_store_->ListKeys(""));
    for (const store::WrappedKeyRow& row : rows) {
      if (row.purpose == static_cast<int>(purpose) && row.version == kFixedKeyVersion) return UnwrapFrom(keks, row);
    }
    // First unseal of this vault: make the key. Another node may race us;
    // the key store's primary key decides, and the loser reads the winner's.
    SecretBytes key = crypto::RandomSecret(kTenantKeySize);
    KURA_ASSIGN_OR_RETURN(auto row, WrapUnder(keks, key, purpose, "", kFixedKeyVersion, NowSeconds()));
    Status s = key_store_->InsertKeys({row});
    if (s.ok()) return key;
    if (s.code() != StatusCode::kAlreadyExists) return s;
  }
  return UnavailableError("the vault's " + PurposeName(static_cast<int>(purpose)) + " could not be read");
}

Status VaultImpl::RefreshKekVersions() {
  KURA_ASSIGN_OR_RETURN(auto rows, key_store_->ListKekVersions());
  return keyring_.ReplaceKekVersions(rows);
}

Status VaultImpl::InsertWrappedKeys(const std::function<Result<std::vector<store::WrappedKeyRow>>()>& make) {
  for (int attempt = 0;; ++attempt) {
    KURA_ASSIGN_OR_RETURN(auto rows, make());
    Status s = key_store_->InsertKeys(rows);
    // NotFound: the KEK version they were wrapped with was rotated away
    // (by another node) meanwhile. Wrap again under the new one.
    if (s.code() != StatusCode::kNotFound || attempt + 1 >= kMaxKeyStoreAttempts) return s;
    KURA_RETURN_IF_ERROR(RefreshKekVersions());
  }
}

// --- Data key versions (rotation.cc builds the job on these) --------------------

Result<std::int64_t> VaultImpl::CreateDataKeyVersion(const std::string& tenant, AuditScope& scope) {
  KURA_RETURN_IF_ERROR(RequireUnsealed());
  auto row = store_->GetTenant(tenant);
  if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
  if (!row.ok()) return row.status();
  // Above every version the key store has: one left by an attempt that
  // stopped before the data store moved is never reused.
  std::int64_t next = row->data_key_version;
  KURA_ASSIGN_OR_RETURN(auto existing, key_store_->ListKeys(tenant));
  for (const auto& k : existing) {
    if (k.purpose == static_cast<int>(crypto::KeyPurpose::kDataKey)) next = std::max(next, k.version);
  }
  ++next;
  SecretBytes data_key = crypto::RandomSecret(kTenantKeySize);
  Status stored = InsertWrappedKeys([&]() -> Result<std::vector<store::WrappedKeyRow>> {
    KURA_ASSIGN_OR_RETURN(auto wrapped,
                          keyring_.WrapNewKey(data_key, crypto::KeyPurpose::kDataKey, tenant, next, NowSeconds()));
    return std::vector<store::WrappedKeyRow>{std::move(wrapped)};
  });
  if (stored.code() == StatusCode::kAlreadyExists) {
    return AbortedError("another data key version of tenant '" + tenant + "' is being made; try again");
  }
  KURA_RETURN_IF_ERROR(stored);
  // From this commit on, writes under an older version are refused by the
  // data store (and sealed again under this one).
  Status moved = store_->SetTenantDataKeyVersion(tenant, next, scope.Change());
  keyring_.Forget(tenant);
  if (moved.code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
  KURA_RETURN_IF_ERROR(moved);
  return next;
}

Status VaultImpl::DestroyDataKeysBelow(const std::string& tenant, std::int64_t version) {
  AuditScope scope(this, RequestContext{}, "system", actions::kKeyDestroy, tenant,
                   "tenants/" + tenant + "/keys/data_key/below/" + std::to_string(version));
  return scope.Finish([&]() -> Status {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    auto destroyed = key_store_->DestroyKeysBelow(tenant, static_cast<int>(crypto::KeyPurpose::kDataKey), version);
    // Forget either way: nothing cached may outlive a key the store lost.
    keyring_.Forget(tenant);
    return destroyed.status();
  }());
}

// --- KEK rotation --------------------------------------------------------------------

Result<Reply> VaultImpl::RotateKek(const Caller& caller) {
  AuditScope scope(this, caller, actions::kKekRotate, "", "sys/keys/kek");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator}));
    KURA_RETURN_IF_ERROR(RequireFreshAuth(caller));
    std::lock_guard lock(kek_rotate_mu_);
    for (int attempt = 0; attempt < kMaxKeyStoreAttempts; ++attempt) {
      // Requests go on meanwhile: cached tenant keys do not change, and a
      // key wrapped or read under the old version while this runs either
      // lands before the rotation (and is rewrapped) or retries after it.
      KURA_RETURN_IF_ERROR(RefreshKekVersions());
      KURA_ASSIGN_OR_RETURN(auto keks, key_store_->ListKekVersions());
      if (keks.empty()) return FailedPreconditionError("the key store holds no KEK");
      std::int64_t next = keks.back().version + 1;
      KURA_ASSIGN_OR_RETURN(auto keys, key_store_->ListAllKeys());
      auto rotation = keyring_.PrepareRotation(next, keys, NowSeconds());
      if (rotation.status().code() == StatusCode::kAborted) continue;  // rotated elsewhere since the refresh
      KURA_RETURN_IF_ERROR(rotation.status());
      Status s = key_store_->RotateKek(rotation->kek, rotation->rewrapped);
      if (s.code() == StatusCode::kAborted) continue;  // keys added or destroyed meanwhile: list again
      KURA_RETURN_IF_ERROR(s);
      KURA_RETURN_IF_ERROR(RefreshKekVersions());
      Reply reply;
      reply.body = {{"kek_version", next}, {"rewrapped", rotation->rewrapped.size()}};
      return reply;
    }
    return UnavailableError("the keys kept changing during the KEK rotation; try again");
  }());
}

// --- Key listing (compliance: versions and ages) -----------------------------------

Result<Reply> VaultImpl::ListKeys(const Caller& caller) {
  AuditScope scope(this, caller, actions::kKeysRead, "", "sys/keys");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(
        caller, {staff_roles::kOperator, staff_roles::kSecurityOfficer, staff_roles::kAuditor}));
    const std::int64_t now = NowSeconds();
    KURA_ASSIGN_OR_RETURN(auto keks, key_store_->ListKekVersions());
    KURA_ASSIGN_OR_RETURN(auto keys, key_store_->ListAllKeys());
    // The current data key version of every tenant (the data store's word).
    std::map<std::string, std::int64_t> current;
    store::PageRequest page;
    page.limit = 1000;
    for (;;) {
      KURA_ASSIGN_OR_RETURN(auto rows, store_->ListTenants(page));
      for (const auto& t : rows.items) current[t.id] = t.data_key_version;
      if (!rows.next) break;
      page.after = *rows.next;
    }
    json kek_json = json::array();
    for (const auto& k : keks) {
      json item = Age(k.created_at, now);
      item["version"] = k.version;
      item["current"] = &k == &keks.back();
      kek_json.push_back(std::move(item));
    }
    json vault_keys = json::array();
    std::map<std::string, json> tenants;
    for (const auto& k : keys) {
      json item = Age(k.created_at, now);
      item["version"] = k.version;
      item["kek_version"] = k.kek_version;
      if (k.owner.empty()) {
        item["purpose"] = PurposeName(k.purpose);
        vault_keys.push_back(std::move(item));
        continue;
      }
      json& t = tenants[k.owner];
      if (t.is_null()) {
        auto it = current.find(k.owner);
        t = {{"tenant", k.owner},
             {"data_key_version", it == current.end() ? json(nullptr) : json(it->second)},
             {"data_keys", json::array()},
             {"index_key", nullptr}};
      }
      if (k.purpose == static_cast<int>(crypto::KeyPurpose::kDataKey)) {
        item["current"] = t["data_key_version"].is_number() && t["data_key_version"].get<std::int64_t>() == k.version;
        t["data_keys"].push_back(std::move(item));
      } else if (k.purpose == static_cast<int>(crypto::KeyPurpose::kIndexKey)) {
        t["index_key"] = std::move(item);
      }
    }
    json tenant_json = json::array();
    for (auto& [id, t] : tenants) tenant_json.push_back(std::move(t));
    Reply reply;
    reply.body = {{"kek_versions", std::move(kek_json)},
                  {"vault_keys", std::move(vault_keys)},
                  {"tenants", std::move(tenant_json)}};
    return reply;
  }());
}

// --- Seal migration ----------------------------------------------------------------

Result<Reply> VaultImpl::MigrateSeal(std::unique_ptr<crypto::Seal> to, const crypto::SealInitOptions& options) {
  AuditScope scope(this, RequestContext{}, "system", actions::kSealMigrate, "", "sys/seal");
  return scope.Finish([&]() -> Result<Reply> {
    if (!to) return InvalidArgumentError("no seal to migrate to");
    std::lock_guard lock(lifecycle_mu_);
    // Unsealed with the current seal: the old seal has proved itself before
    // anything changes.
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    const std::string type(to->Type());
    scope.set_resource("sys/seal/" + type);
    if (type == "shamir") {
      if (options.shares < 1 || options.shares > 255 || options.threshold < 1 ||
          options.threshold > options.shares || (options.threshold == 1 && options.shares != 1)) {
        return InvalidArgumentError("shamir: shares 1-255 and threshold 2..shares (or 1 share, threshold 1)");
      }
    }
    SecretBytes new_key;
    std::vector<std::string> shares;
    auto init = to->Initialize(options);
    if (init.ok()) {
      new_key = std::move(init->kek);
      shares = std::move(init->shares);
    } else if (init.status().code() == StatusCode::kAlreadyExists && type != "shamir") {
      // Files of an earlier attempt that stopped before the key store
      // changed (nothing is wrapped under them yet): use them.
      KURA_ASSIGN_OR_RETURN(auto existing, to->AutoUnseal());
      if (!existing) return init.status();
      new_key = std::move(*existing);
    } else {
      return init.status();
    }
    // The new seal must give its key back before anything depends on it.
    if (type == "shamir") {
      to->Reset();
      std::optional<SecretBytes> back;
      for (int i = 0; i < options.threshold && i < static_cast<int>(shares.size()); ++i) {
        KURA_ASSIGN_OR_RETURN(auto p, to->Submit(shares[i]));
        if (p.kek) back = std::move(p.kek);
      }
      to->Reset();
      if (!back || !ConstantTimeEquals(back->view(), new_key.view())) {
        return InternalError("the new shares do not give back the new seal key");
      }
    } else if (auto back = to->AutoUnseal(); back.ok() && *back) {
      if (!ConstantTimeEquals((*back)->view(), new_key.view())) return InternalError("the new seal does not give back its key");
    } else if (!back.ok()) {
      return back.status();
    }
    KURA_ASSIGN_OR_RETURN(auto rows, key_store_->ListKekVersions());
    KURA_ASSIGN_OR_RETURN(auto resealed, keyring_.RewrapKekVersions(new_key, rows));
    // Every check passed: one transaction switches the KEK wraps and the
    // recorded seal together. Until it commits the old seal is the one
    // that works; after, the new one.
    json seal_doc = {{"type", type}};
    if (type == "shamir") {
      seal_doc["shares"] = options.shares;
      seal_doc["threshold"] = options.threshold;
    }
    KURA_RETURN_IF_ERROR(key_store_->ResealKeks(resealed, seal_doc.dump()));
    // The running vault still holds the old seal's key and seal: it seals
    // itself, and the next start uses the new seal's configuration.
    keyring_.Seal();
    {
      std::lock_guard signing(signing_mu_);
      signing_key_.reset();
    }
    seal_->Reset();
    Reply reply;
    reply.body = {{"type", type}, {"shares", shares}};
    return reply;
  }());
}

}  // namespace kura::vault
