// Keyring: the unsealed key material of a running vault: the KEK and the
// unwrapped keys of the tenants used since unsealing.
//
// Every key lives in SecretBytes (locked, wiped memory). Seal() drops the KEK
// and every cached tenant key at once; keys still held by an in-flight request
// (through the shared_ptr) are wiped when that request lets go of them.
//
// Thread safety: all methods are safe to call concurrently.
#ifndef KURA_VAULT_KEYRING_H_
#define KURA_VAULT_KEYRING_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "core/secret.h"
#include "core/status.h"
#include "crypto/envelope.h"
#include "store/store.h"

namespace kura::vault {

struct TenantKeys {
  SecretBytes data_key;   // encrypts records (AES-256-GCM)
  std::int64_t data_key_version = 1;
  SecretBytes index_key;  // keys the blind indexes (HMAC-SHA-256)
};

// The owner name and version the KEK check value is wrapped with.
constexpr std::string_view kKekCheckOwner = "kura";
constexpr std::int64_t kKekCheckVersion = 1;
constexpr std::size_t kTenantKeySize = 32;

class Keyring {
 public:
  bool IsSealed() const { return sealed_.load(std::memory_order_acquire); }

  // Verifies `kek` against the wrapped check value without keeping it.
  // DataLoss-free: returns false for a wrong KEK (or damaged check value).
  static bool KekMatches(const SecretBytes& kek, ByteView check_value);
  // A fresh check value for `kek`.
  static Result<Bytes> MakeCheckValue(const SecretBytes& kek);

  // Takes the KEK (already verified) and opens for business.
  void Unseal(SecretBytes kek);
  // Wipes the KEK and every cached tenant key.
  void Seal();

  // Makes a tenant's keys and their wrapped forms for the store row.
  // FailedPrecondition when sealed.
  Status NewTenantKeys(store::TenantRow* row);

  // The cached keys of a tenant, or nullptr.
  std::shared_ptr<const TenantKeys> Cached(const std::string& tenant_id) const;
  // Changes whenever cached keys are dropped. Read it before reading the
  // tenant row and pass it to Load, so keys of a tenant deleted meanwhile are
  // not cached.
  std::uint64_t Generation() const;
  // Unwraps a tenant's keys from its row and caches them. FailedPrecondition
  // when sealed; DataLoss when a wrapped key fails its integrity check.
  Result<std::shared_ptr<const TenantKeys>> Load(const store::TenantRow& row, std::uint64_t generation);
  // Wraps / unwraps a small secret of the vault's own (a TOTP secret) under
  // the KEK. FailedPrecondition when sealed; Unwrap: DataLoss when the wrap
  // was altered or belongs to another purpose or owner.
  Result<Bytes> WrapSecret(const SecretBytes& secret, crypto::KeyPurpose purpose, std::string_view owner) const;
  Result<SecretBytes> UnwrapSecret(ByteView wrapped, crypto::KeyPurpose purpose, std::string_view owner) const;
  // Drops a tenant's cached keys (tenant deleted).
  void Forget(const std::string& tenant_id);

 private:
  std::atomic<bool> sealed_{true};
  mutable std::shared_mutex mu_;
  SecretBytes kek_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, std::shared_ptr<const TenantKeys>> tenants_;
};

}  // namespace kura::vault

#endif  // KURA_VAULT_KEYRING_H_
