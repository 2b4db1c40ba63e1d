// Hashes and MACs: SHA-256 and HMAC-SHA-256 (OpenSSL), HKDF-SHA-256.
#ifndef KURA_CRYPTO_HASH_H_
#define KURA_CRYPTO_HASH_H_

#include <string_view>

#include "core/bytes.h"
#include "core/secret.h"

namespace kura::crypto {

constexpr std::size_t kSha256Size = 32;

Bytes Sha256(ByteView data);
Bytes HmacSha256(const SecretBytes& key, ByteView data);
// RFC 5869 HKDF-SHA-256 (for deriving sub-keys with a label).
SecretBytes HkdfSha256(const SecretBytes& ikm, std::string_view info, std::size_t out_len);

// Blind index of a field value: HMAC-SHA-256(index_key, domain || 0x00 || value).
// `domain` separates fields ("customers/email") so equal values in different
// fields give different indexes.
Bytes BlindIndex(const SecretBytes& index_key, std::string_view domain, std::string_view normalised_value);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_HASH_H_
