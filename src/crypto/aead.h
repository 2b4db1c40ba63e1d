// AES-256-GCM authenticated encryption (libsodium with AES-NI and 96-bit
// nonces, OpenSSL EVP otherwise; the same bytes either way).
//
// The sealed format (docs/formats/ciphertext.md):
//   version (1 byte, kAeadFormatV1) || nonce (12) || ciphertext || tag (16)
// The version byte is also bound into the associated data, so a downgrade to
// another format is detected. Nonces are random 96-bit values; a key encrypts
// far fewer than 2^32 messages before rotation, which keeps the collision bound.
//
// Thread safety: free functions; safe for concurrent use.
#ifndef KURA_CRYPTO_AEAD_H_
#define KURA_CRYPTO_AEAD_H_

#include <cstdint>

#include "core/bytes.h"
#include "core/secret.h"
#include "core/status.h"

namespace kura::crypto {

constexpr std::uint8_t kAeadFormatV1 = 0x01;
constexpr std::size_t kAeadKeySize = 32;
constexpr std::size_t kAeadNonceSize = 12;
constexpr std::size_t kAeadTagSize = 16;
constexpr std::size_t kAeadOverhead = 1 + kAeadNonceSize + kAeadTagSize;

// Encrypts with a fresh random nonce. InvalidArgument if the key is not 32 bytes.
Result<Bytes> AeadSeal(const SecretBytes& key, ByteView plaintext, ByteView associated_data);

// Decrypts the sealed format into transient (wiped, unguarded) memory. DataLoss when the tag does not verify (wrong key,
// altered ciphertext, tag, nonce or associated data); InvalidArgument when the
// input is too short or has an unknown version byte.
Result<SecretBytes> AeadOpen(const SecretBytes& key, ByteView sealed, ByteView associated_data);

// Raw AES-256-GCM with a caller-chosen IV, for published test vectors.
// Encrypt writes ciphertext (same size as plaintext) and a 16-byte tag.
Status Aes256GcmEncrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext, Bytes* ciphertext,
                        Bytes* tag);
// DataLoss when the tag does not verify.
Status Aes256GcmDecrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag,
                        Bytes* plaintext);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_AEAD_H_
