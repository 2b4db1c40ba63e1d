#include "vault/keyring.h"

#include <mutex>

#include "crypto/random.h"

namespace kura::vault {

bool Keyring::KekMatches(const SecretBytes& kek, ByteView check_value) {
  // The check value is a random key wrapped under the KEK: only the right KEK
  // opens it, and it says nothing about the KEK to someone reading the store.
  return crypto::UnwrapKey(kek, check_value, crypto::KeyPurpose::kKekCheck, kKekCheckOwner, kKekCheckVersion).ok();
}

Result<Bytes> Keyring::MakeCheckValue(const SecretBytes& kek) {
  SecretBytes probe = crypto::RandomSecret(kTenantKeySize);
  return crypto::WrapKey(kek, probe, crypto::KeyPurpose::kKekCheck, kKekCheckOwner, kKekCheckVersion);
}

void Keyring::Unseal(SecretBytes kek) {
  std::unique_lock lock(mu_);
  kek_ = std::move(kek);
  ++generation_;
  tenants_.clear();
  sealed_.store(false, std::memory_order_release);
}

void Keyring::Seal() {
  std::unique_lock lock(mu_);
  sealed_.store(true, std::memory_order_release);
  kek_.Wipe();
  ++generation_;
  tenants_.clear();  // last owner of each TenantKeys wipes it
}

Status Keyring::NewTenantKeys(store::TenantRow* row) {
  auto keys = std::make_shared<TenantKeys>();
  keys->data_key = crypto::RandomSecret(kTenantKeySize);
  keys->index_key = crypto::RandomSecret(kTenantKeySize);
  keys->data_key_version = 1;
  std::shared_lock lock(mu_);
  if (IsSealed() || kek_.empty()) return FailedPreconditionError("vault is sealed");
  KURA_ASSIGN_OR_RETURN(row->wrapped_data_key, crypto::WrapKey(kek_, keys->data_key, crypto::KeyPurpose::kDataKey,
                                                               row->id, keys->data_key_version));
  KURA_ASSIGN_OR_RETURN(row->wrapped_index_key,
                        crypto::WrapKey(kek_, keys->index_key, crypto::KeyPurpose::kIndexKey, row->id, 1));
  row->data_key_version = keys->data_key_version;
  return Status::Ok();
}

Result<Bytes> Keyring::WrapSecret(const SecretBytes& secret, crypto::KeyPurpose purpose,
                                  std::string_view owner) const {
  std::shared_lock lock(mu_);
  if (IsSealed() || kek_.empty()) return FailedPreconditionError("vault is sealed");
  return crypto::WrapKey(kek_, secret, purpose, owner, 1);
}

Result<SecretBytes> Keyring::UnwrapSecret(ByteView wrapped, crypto::KeyPurpose purpose, std::string_view owner) const {
  std::shared_lock lock(mu_);
  if (IsSealed() || kek_.empty()) return FailedPreconditionError("vault is sealed");
  auto secret = crypto::UnwrapKey(kek_, wrapped, purpose, owner, 1);
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

Result<std::shared_ptr<const TenantKeys>> Keyring::Load(const store::TenantRow& row, std::uint64_t generation) {
  // Unwrapping under the exclusive lock: a Seal() cannot slip in between
  // reading the KEK and caching what it unwrapped. Cache misses are rare.
  std::unique_lock lock(mu_);
  if (IsSealed() || kek_.empty()) return FailedPreconditionError("vault is sealed");
  if (auto it = tenants_.find(row.id); it != tenants_.end()) return it->second;
  auto keys = std::make_shared<TenantKeys>();
  auto data_key =
      crypto::UnwrapKey(kek_, row.wrapped_data_key, crypto::KeyPurpose::kDataKey, row.id, row.data_key_version);
  auto index_key = crypto::UnwrapKey(kek_, row.wrapped_index_key, crypto::KeyPurpose::kIndexKey, row.id, 1);
  if (!data_key.ok() || !index_key.ok()) {
    return DataLossError("keys of tenant '" + row.id + "' failed their integrity check");
  }
  keys->data_key = std::move(data_key).value();
  keys->index_key = std::move(index_key).value();
  keys->data_key_version = row.data_key_version;
  std::shared_ptr<const TenantKeys> out = std::move(keys);
  if (generation == generation_) tenants_.emplace(row.id, out);
  return out;
}

void Keyring::Forget(const std::string& tenant_id) {
  std::unique_lock lock(mu_);
  ++generation_;
  tenants_.erase(tenant_id);
}

}  // namespace kura::vault
