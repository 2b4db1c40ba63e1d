// Cryptographically secure randomness (OpenSSL RAND_bytes).
#ifndef KURA_CRYPTO_RANDOM_H_
#define KURA_CRYPTO_RANDOM_H_

#include <cstddef>
#include <string>

#include "core/bytes.h"
#include "core/secret.h"

namespace kura::crypto {

// Aborts if the system CSPRNG fails: no caller can do anything safe without it.
Bytes RandomBytes(std::size_t n);
SecretBytes RandomSecret(std::size_t n);
// base64url of n random bytes: for ids (16 bytes) and bearer tokens (32 bytes).
std::string RandomToken(std::size_t n);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_RANDOM_H_
