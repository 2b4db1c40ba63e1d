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
enum class KeyPurpose : std::uint8_t { kDataKey = 1, kIndexKey = 2, kKekCheck = 3 };

// AAD for a record version: "kura/record/v1" 0 tenant 0 collection 0 id 0 version.
// Components are length-checked ids that cannot contain NUL.
Bytes RecordAssociatedData(std::string_view tenant, std::string_view collection, std::string_view record_id,
                           std::int64_t version);

// AAD for a key wrapped under the KEK: "kura/key/v1" 0 purpose 0 owner 0 key_version.
Bytes KeyAssociatedData(KeyPurpose purpose, std::string_view owner, std::int64_t key_version);

// Wraps a key (AEAD under the KEK with KeyAssociatedData).
Result<Bytes> WrapKey(const SecretBytes& kek, const SecretBytes& key, KeyPurpose purpose, std::string_view owner,
                      std::int64_t key_version);
// DataLoss when the wrap was altered, moved or made under another KEK.
Result<SecretBytes> UnwrapKey(const SecretBytes& kek, ByteView wrapped, KeyPurpose purpose, std::string_view owner,
                              std::int64_t key_version);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_ENVELOPE_H_
