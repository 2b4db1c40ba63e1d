// Envelope encryption: the KEK wraps per-tenant keys; per-tenant keys encrypt
// records. Associated data binds every ciphertext to where it belongs, so a
// ciphertext moved to another tenant, collection, record or version fails to
// open (docs/formats/ciphertext.md).
#ifndef KURA_CRYPTO_ENVELOPE_H_
#define KURA_CRYPTO_ENVELOPE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/secret.h"
#include "core/status.h"

namespace kura::crypto {

// Key purposes wrapped under the KEK, bound into the wrap's associated data.
enum class KeyPurpose : std::uint8_t {
  kDataKey = 1,
  kIndexKey = 2,
  kKekCheck = 3,
  kAuditSigningKey = 4,
  kTotpSecret = 5,     // a user's TOTP secret; owner "<tenant>/<username>" ("/<username>" for staff)
  kKek = 6,            // a KEK version wrapped by the seal key; owner ""
  kSecretsKey = 7,     // the vault's key for its small secrets (kTotpSecret wraps); owner ""
  kWebhookSecret = 8,  // a tenant's webhook signing secret; owner "<tenant>"
};

// AAD for a record version: "kura/record/v1" 0 tenant 0 collection 0 id 0 version,
// version as 8 bytes big-endian two's complement.
// Precondition: no component contains NUL (they are validated ids; a NUL would
// make two different locations share one AAD). Violating it is a programming
// error and aborts; code holding unvalidated input uses SealRecord/OpenRecord
// or checks with IsValidAssociatedDataComponent first.
Bytes RecordAssociatedData(std::string_view tenant, std::string_view collection, std::string_view record_id,
                           std::int64_t version);

// AAD for a key wrapped under the KEK: "kura/key/v1" 0 purpose 0 owner 0 key_version,
// purpose as one byte, key_version as 8 bytes big-endian. `owner` is a tenant id,
// or empty for keys that belong to the whole vault. Same precondition (no NUL).
Bytes KeyAssociatedData(KeyPurpose purpose, std::string_view owner, std::int64_t key_version);

// True when `component` can go into an associated-data layout (no NUL byte).
bool IsValidAssociatedDataComponent(std::string_view component);

// AeadSeal/AeadOpen of one record version under its tenant's data key, with
// RecordAssociatedData. InvalidArgument when a component contains NUL or the key
// is not 32 bytes; OpenRecord: DataLoss when the ciphertext was altered, made
// under another key or belongs to another tenant/collection/record/version.
Result<Bytes> SealRecord(const SecretBytes& data_key, ByteView plaintext, std::string_view tenant,
                         std::string_view collection, std::string_view record_id, std::int64_t version);
Result<SecretBytes> OpenRecord(const SecretBytes& data_key, ByteView sealed, std::string_view tenant,
                               std::string_view collection, std::string_view record_id, std::int64_t version);

// Wraps a key (AEAD under the KEK with KeyAssociatedData). InvalidArgument when
// the KEK is not 32 bytes, the key is empty or `owner` contains NUL.
Result<Bytes> WrapKey(const SecretBytes& kek, const SecretBytes& key, KeyPurpose purpose, std::string_view owner,
                      std::int64_t key_version);
// DataLoss when the wrap was altered, moved or made under another KEK;
// InvalidArgument when it is truncated or has an unknown format version.
Result<SecretBytes> UnwrapKey(const SecretBytes& kek, ByteView wrapped, KeyPurpose purpose, std::string_view owner,
                              std::int64_t key_version);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_ENVELOPE_H_
