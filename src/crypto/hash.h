// Hashes and MACs: SHA-256 and HKDF-SHA-256 (OpenSSL), HMAC-SHA-256 (libsodium).
#ifndef KURA_CRYPTO_HASH_H_
#define KURA_CRYPTO_HASH_H_

#include <string_view>

#include "core/bytes.h"
#include "core/secret.h"

namespace kura::crypto {

constexpr std::size_t kSha256Size = 32;

// These never fail for valid input; an OpenSSL failure (memory exhaustion)
// aborts, since no caller could continue safely. Thread-safe.
Bytes Sha256(ByteView data);
// Precondition: key is not empty.
Bytes HmacSha256(const SecretBytes& key, ByteView data);
// RFC 5869 HKDF-SHA-256 (for deriving sub-keys with a label), with an empty
// salt (HashLen zero bytes, RFC 5869 §2.2). Precondition: ikm is not empty and
// 1 <= out_len <= 255 * 32; violating it aborts (a programming error).
SecretBytes HkdfSha256(const SecretBytes& ikm, std::string_view info, std::size_t out_len);
// The same with an explicit salt (RFC 5869 test vectors; non-secret salts).
SecretBytes HkdfSha256(const SecretBytes& ikm, ByteView salt, std::string_view info, std::size_t out_len);

// Blind index of a field value: HMAC-SHA-256(index_key, domain || 0x00 || value).
// `domain` separates fields ("customers/email") so equal values in different
// fields give different indexes. Precondition: `domain` contains no NUL (it is
// built from validated collection and field names); violating it aborts.
Bytes BlindIndex(const SecretBytes& index_key, std::string_view domain, std::string_view normalised_value);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_HASH_H_
