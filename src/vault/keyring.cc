#include "vault/keyring.h"

#include <mutex>

#include "crypto/random.h"

namespace kura::vault {

const SecretBytes* TenantKeys::DataKey(std::int64_t version) const {
  if (version == data_key_version) return data_key.empty() ? nullptr : &data_key;
  auto it = older_data_keys.find(version);
  return it == older_data_keys.end() ? nullptr : &it->second;
}

Result<KekSet> OpenKekVersions(const SecretBytes& seal_key, const std::vector<store::KekVersionRow>& rows) {
  if (rows.empty()) return FailedPreconditionError("the key store holds no KEK");
  KekSet keks;
  for (const store::KekVersionRow& row : rows) {
    auto kek = crypto::UnwrapKey(seal_key, row.wrapped, crypto::KeyPurpose::kKek, "", row.version);
    // Every version is wrapped by the same seal key: one that does not open
    // means the seal key is not this vault's. No detail: it would help
    // someone guessing.
    if (!kek.ok()) return InvalidArgumentError("the seal key does not match this vault");
    keks.emplace(row.version, std::move(kek).value());
  }
  return keks;
}

Result<std::pair<SecretBytes, store::KekVersionRow>> NewKekVersion(const SecretBytes& seal_key, std::int64_t version,
                                                                   std::int64_t now) {
  SecretBytes kek = crypto::RandomSecret(kTenantKeySize);
  store::KekVersionRow row;
  row.version = version;
  row.created_at = now;
  KURA_ASSIGN_OR_RETURN(row.wrapped, crypto::WrapKey(seal_key, kek, crypto::KeyPurpose::kKek, "", version));
  return std::make_pair(std::move(kek), std::move(row));
}

Result<store::WrappedKeyRow> WrapUnder(const KekSet& keks, const SecretBytes& key, crypto::KeyPurpose purpose,
                                       const std::string& owner, std::int64_t version, std::int64_t now) {
  if (keks.empty()) return FailedPreconditionError(kSealed);
  const auto& [kek_version, kek] = *keks.rbegin();
  store::WrappedKeyRow row;
  row.owner = owner;
  row.purpose = static_cast<int>(purpose);
  row.version = version;
  row.kek_version = kek_version;
  row.created_at = now;
  KURA_ASSIGN_OR_RETURN(row.wrapped, crypto::WrapKey(kek, key, purpose, owner, version));
  return row;
}

Result<SecretBytes> UnwrapFrom(const KekSet& keks, const store::WrappedKeyRow& row) {
  auto kek = keks.find(row.kek_version);
  if (kek == keks.end()) return AbortedError("KEK version " + std::to_string(row.kek_version) + " is not loaded");
  auto key = crypto::UnwrapKey(kek->second, row.wrapped, static_cast<crypto::KeyPurpose>(row.purpose), row.owner,
                               row.version);
  if (!key.ok()) {
    return DataLossError("a wrapped key of '" + (row.owner.empty() ? std::string("the vault") : row.owner) +
                         "' failed its integrity check");
  }
  return key;
}

void Keyring::Unseal(SecretBytes seal_key, KekSet keks, SecretBytes secrets_key) {
  std::unique_lock lock(mu_);
  seal_key_ = std::move(seal_key);
  keks_ = std::move(keks);
  secrets_key_ = std::move(secrets_key);
  ++generation_;
  tenants_.clear();
  sealed_.store(false, std::memory_order_release);
}

void Keyring::Seal() {
  std::unique_lock lock(mu_);
  sealed_.store(true, std::memory_order_release);
  seal_key_.Wipe();
  keks_.clear();  // SecretBytes wipe themselves
  secrets_key_.Wipe();
  ++generation_;
  tenants_.clear();  // last owner of each TenantKeys wipes it
}

Status Keyring::ReplaceKekVersions(const std::vector<store::KekVersionRow>& rows) {
  std::unique_lock lock(mu_);
  if (IsSealed() || seal_key_.empty()) return FailedPreconditionError(kSealed);
  KURA_ASSIGN_OR_RETURN(KekSet keks, OpenKekVersions(seal_key_, rows));
  keks_ = std::move(keks);
  return Status::Ok();
}

Result<Keyring::Rotation> Keyring::PrepareRotation(std::int64_t version, const std::vector<store::WrappedKeyRow>& keys,
                                                   std::int64_t now) const {
  std::shared_lock lock(mu_);
  if (IsSealed() || seal_key_.empty()) return FailedPreconditionError(kSealed);
  KURA_ASSIGN_OR_RETURN(auto made, NewKekVersion(seal_key_, version, now));
  KekSet next;
  next.emplace(version, std::move(made.first));
  Rotation rotation;
  rotation.kek = std::move(made.second);
  for (const store::WrappedKeyRow& row : keys) {
    KURA_ASSIGN_OR_RETURN(SecretBytes key, UnwrapFrom(keks_, row));
    KURA_ASSIGN_OR_RETURN(store::WrappedKeyRow rewrapped,
                          WrapUnder(next, key, static_cast<crypto::KeyPurpose>(row.purpose), row.owner, row.version,
                                    row.created_at));
    rotation.rewrapped.push_back(std::move(rewrapped));
  }
  return rotation;
}

Result<std::vector<store::KekVersionRow>> Keyring::RewrapKekVersions(
    const SecretBytes& new_seal_key, const std::vector<store::KekVersionRow>& rows) const {
  std::shared_lock lock(mu_);
  if (IsSealed() || seal_key_.empty()) return FailedPreconditionError(kSealed);
  KURA_ASSIGN_OR_RETURN(KekSet keks, OpenKekVersions(seal_key_, rows));
  std::vector<store::KekVersionRow> out;
  for (const store::KekVersionRow& row : rows) {
    store::KekVersionRow resealed = row;
    KURA_ASSIGN_OR_RETURN(resealed.wrapped, crypto::WrapKey(new_seal_key, keks.at(row.version),
                                                            crypto::KeyPurpose::kKek, "", row.version));
    out.push_back(std::move(resealed));
  }
  return out;
}

Result<store::WrappedKeyRow> Keyring::WrapNewKey(const SecretBytes& key, crypto::KeyPurpose purpose,
                                                 const std::string& owner, std::int64_t version,
                                                 std::int64_t now) const {
  std::shared_lock lock(mu_);
  if (IsSealed()) return FailedPreconditionError(kSealed);
  return WrapUnder(keks_, key, purpose, owner, version, now);
}

Result<std::vector<store::WrappedKeyRow>> Keyring::NewTenantKeys(const std::string& tenant_id,
                                                                 std::int64_t now) const {
  SecretBytes data_key = crypto::RandomSecret(kTenantKeySize);
  SecretBytes index_key = crypto::RandomSecret(kTenantKeySize);
  std::shared_lock lock(mu_);
  if (IsSealed()) return FailedPreconditionError(kSealed);
  std::vector<store::WrappedKeyRow> rows;
  KURA_ASSIGN_OR_RETURN(auto dek, WrapUnder(keks_, data_key, crypto::KeyPurpose::kDataKey, tenant_id, 1, now));
  KURA_ASSIGN_OR_RETURN(auto idx,
                        WrapUnder(keks_, index_key, crypto::KeyPurpose::kIndexKey, tenant_id, kFixedKeyVersion, now));
  rows.push_back(std::move(dek));
  rows.push_back(std::move(idx));
  return rows;
}

Result<Bytes> Keyring::WrapSecret(const SecretBytes& secret, crypto::KeyPurpose purpose,
                                  std::string_view owner) const {
  std::shared_lock lock(mu_);
  if (IsSealed() || secrets_key_.empty()) return FailedPreconditionError(kSealed);
  return crypto::WrapKey(secrets_key_, secret, purpose, owner, kFixedKeyVersion);
}

Result<SecretBytes> Keyring::UnwrapSecret(ByteView wrapped, crypto::KeyPurpose purpose, std::string_view owner) const {
  std::shared_lock lock(mu_);
  if (IsSealed() || secrets_key_.empty()) return FailedPreconditionError(kSealed);
  auto secret = crypto::UnwrapKey(secrets_key_, wrapped, purpose, owner, kFixedKeyVersion);
  if (!secret.ok()) return DataLossError("a wrapped secret failed its integrity check");
  return secret;
}

std::shared_ptr<const TenantKeys> Keyring::Cached(const std::string& tenant_id) const {
  std::shared_lock lock(mu_);
  if (IsSealed()) return nullptr;
  auto it = tenants_.find(tenant_id);
  return it == tenants_.end() ? nullptr : it->second;
}

std::uint64_t Keyring::Generation() const {
  std::shared_lock lock(mu_);
  return generation_;
}

Result<std::shared_ptr<const TenantKeys>> Keyring::Load(const std::string& tenant_id, std::int64_t data_key_version,
                                                        const std::vector<store::WrappedKeyRow>& rows,
                                                        std::uint64_t generation) {
  // Unwrapping under the exclusive lock: a Seal() cannot slip in between
  // reading the KEKs and caching what they unwrapped. Cache misses are rare.
  std::unique_lock lock(mu_);
  if (IsSealed()) return FailedPreconditionError(kSealed);
  if (auto it = tenants_.find(tenant_id); it != tenants_.end() && it->second->data_key_version == data_key_version) {
    return it->second;
  }
  auto keys = std::make_shared<TenantKeys>();
  keys->data_key_version = data_key_version;
  for (const store::WrappedKeyRow& row : rows) {
    auto purpose = static_cast<crypto::KeyPurpose>(row.purpose);
    if (purpose != crypto::KeyPurpose::kDataKey && purpose != crypto::KeyPurpose::kIndexKey) continue;
    KURA_ASSIGN_OR_RETURN(SecretBytes key, UnwrapFrom(keks_, row));
    if (purpose == crypto::KeyPurpose::kIndexKey) {
      keys->index_key = std::move(key);
    } else if (row.version == data_key_version) {
      keys->data_key = std::move(key);
    } else {
      keys->older_data_keys.emplace(row.version, std::move(key));
    }
  }
  if (keys->data_key.empty() || keys->index_key.empty()) {
    // What a copy of the data store shows once its tenant's keys were
    // destroyed (crypto-shredded): its ciphertext can never be opened again.
    return DataLossError("the keys of tenant '" + tenant_id + "' were destroyed; its data cannot be decrypted");
  }
  std::shared_ptr<const TenantKeys> out = std::move(keys);
  if (generation == generation_) tenants_[tenant_id] = out;
  return out;
}

void Keyring::Forget(const std::string& tenant_id) {
  std::unique_lock lock(mu_);
  ++generation_;
  tenants_.erase(tenant_id);
}

}  // namespace kura::vault
