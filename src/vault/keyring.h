// Keyring: the unsealed key material of a running vault (docs/formats/keys.md):
//
//   seal key ──wraps──▶ KEK versions ──wrap──▶ tenant data keys (versions),
//                                              tenant index keys,
//                                              the vault's secrets key and
//                                              audit signing key
//
// The seal key is what the seal yields; it is kept while unsealed because it
// wraps new KEK versions (rotation) and opens the ones other nodes made. The
// KEK versions come from the key store (store/key_store.h); the newest is
// current and wraps every new key. Tenant keys are unwrapped on first use and
// cached. The secrets key wraps the vault's small secrets (users' TOTP
// secrets), so a KEK rotation never touches a row of the data store.
//
// Every key lives in SecretBytes (locked, wiped memory). Seal() drops them all
// at once; keys still held by an in-flight request (through the shared_ptr)
// are wiped when that request lets go of them.
//
// Thread safety: all methods are safe to call concurrently.
#ifndef KURA_VAULT_KEYRING_H_
#define KURA_VAULT_KEYRING_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/secret.h"
#include "core/status.h"
#include "crypto/envelope.h"
#include "store/key_store.h"

namespace kura::vault {

struct TenantKeys {
  std::int64_t data_key_version = 1;                    // current: new writes use it
  SecretBytes data_key;                                 // the current version's key
  std::map<std::int64_t, SecretBytes> older_data_keys;  // versions still live during re-encryption
  SecretBytes index_key;                                // blind index (not rotated by rotate-key)
  // The key of `version`, or nullptr when that version is unknown or destroyed.
  const SecretBytes* DataKey(std::int64_t version) const;
};

constexpr std::size_t kTenantKeySize = 32;
// Version of the keys that do not rotate (index key, secrets key, signing key).
constexpr std::int64_t kFixedKeyVersion = 1;

// Unwrapped KEK versions by version; the largest is current.
using KekSet = std::map<std::int64_t, SecretBytes>;

// Unwraps every stored KEK version with `seal_key` (AAD: purpose kKek, owner
// "", the version). InvalidArgument when one does not open: the seal key is
// not this vault's (a wrong share, passphrase or key file); FailedPrecondition
// when there is none.
Result<KekSet> OpenKekVersions(const SecretBytes& seal_key, const std::vector<store::KekVersionRow>& rows);
// A new random KEK of `version`: returns the key and its row (wrapped by
// `seal_key`).
Result<std::pair<SecretBytes, store::KekVersionRow>> NewKekVersion(const SecretBytes& seal_key, std::int64_t version,
                                                                   std::int64_t now);
// Wraps `key` under the current KEK of `keks` as (owner, purpose, version).
Result<store::WrappedKeyRow> WrapUnder(const KekSet& keks, const SecretBytes& key, crypto::KeyPurpose purpose,
                                       const std::string& owner, std::int64_t version, std::int64_t now);
// Unwraps a stored key with its KEK version from `keys`. Aborted when `keks`
// lacks that version (another node rotated: reload the KEK versions);
// DataLoss when the wrap fails its integrity check.
Result<SecretBytes> UnwrapFrom(const KekSet& keks, const store::WrappedKeyRow& row);

// What every operation refused while sealed answers.
constexpr char kSealed[] = "vault is sealed";

class Keyring {
 public:
  bool IsSealed() const { return sealed_.load(std::memory_order_acquire); }

  // Takes the seal key, the opened KEK versions and the secrets key, and
  // opens for business.
  void Unseal(SecretBytes seal_key, KekSet keks, SecretBytes secrets_key);
  // Wipes every key.
  void Seal();

  // Replaces the KEK versions with `rows` opened by the seal key (after a
  // rotation, here or by another node). FailedPrecondition when sealed;
  // InvalidArgument when they do not open with the seal key held.
  Status ReplaceKekVersions(const std::vector<store::KekVersionRow>& rows);
  // Makes the next KEK version (wrapped by the seal key held) and rewraps
  // `keys` under it, for KeyStore::RotateKek. Install the KEK with
  // ReplaceKekVersions once stored. FailedPrecondition when sealed; Aborted
  // when a key's KEK version is unknown; DataLoss when one fails to unwrap.
  struct Rotation {
    store::KekVersionRow kek;
    std::vector<store::WrappedKeyRow> rewrapped;
  };
  Result<Rotation> PrepareRotation(std::int64_t version, const std::vector<store::WrappedKeyRow>& keys,
                                   std::int64_t now) const;
  // The KEK versions rewrapped by `new_seal_key` (seal migration).
  // FailedPrecondition when sealed.
  Result<std::vector<store::KekVersionRow>> RewrapKekVersions(const SecretBytes& new_seal_key,
                                                              const std::vector<store::KekVersionRow>& rows) const;

  // A new key of `owner`, wrapped under the current KEK, for the key store.
  // FailedPrecondition when sealed.
  Result<store::WrappedKeyRow> WrapNewKey(const SecretBytes& key, crypto::KeyPurpose purpose, const std::string& owner,
                                          std::int64_t version, std::int64_t now) const;
  // A new tenant's data key (version 1) and index key, wrapped for the key
  // store. FailedPrecondition when sealed.
  Result<std::vector<store::WrappedKeyRow>> NewTenantKeys(const std::string& tenant_id, std::int64_t now) const;

  // The cached keys of a tenant, or nullptr.
  std::shared_ptr<const TenantKeys> Cached(const std::string& tenant_id) const;
  // Changes whenever cached keys are dropped. Read it before reading the
  // tenant's rows and pass it to Load, so keys of a tenant deleted (or
  // rotated) meanwhile are not cached.
  std::uint64_t Generation() const;
  // Unwraps a tenant's keys from its key-store rows (`data_key_version` from
  // its data-store row) and caches them. FailedPrecondition when sealed;
  // Aborted when a row's KEK version is unknown (reload, try again);
  // DataLoss when the current data key or the index key is missing
  // (destroyed: crypto-shredded) or a wrap fails its integrity check.
  Result<std::shared_ptr<const TenantKeys>> Load(const std::string& tenant_id, std::int64_t data_key_version,
                                                 const std::vector<store::WrappedKeyRow>& rows,
                                                 std::uint64_t generation);
  // Wraps / unwraps a small secret of the vault's own (a TOTP secret) under
  // the secrets key. FailedPrecondition when sealed; Unwrap: DataLoss when
  // the wrap was altered or belongs to another purpose or owner.
  Result<Bytes> WrapSecret(const SecretBytes& secret, crypto::KeyPurpose purpose, std::string_view owner) const;
  Result<SecretBytes> UnwrapSecret(ByteView wrapped, crypto::KeyPurpose purpose, std::string_view owner) const;
  // Drops a tenant's cached keys (tenant deleted, data key rotated).
  void Forget(const std::string& tenant_id);

 private:
  std::atomic<bool> sealed_{true};
  mutable std::shared_mutex mu_;
  SecretBytes seal_key_;
  KekSet keks_;
  SecretBytes secrets_key_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, std::shared_ptr<const TenantKeys>> tenants_;
};

}  // namespace kura::vault

#endif  // KURA_VAULT_KEYRING_H_
