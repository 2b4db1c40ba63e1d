// Cryptographically secure randomness (OpenSSL RAND_bytes).
#ifndef KURA_CRYPTO_RANDOM_H_
#define KURA_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/secret.h"

namespace kura::crypto {

// Aborts if the system CSPRNG fails: no caller can do anything safe without it.
Bytes RandomBytes(std::size_t n);
SecretBytes RandomSecret(std::size_t n);
// base64url of n random bytes: for ids (16 bytes) and bearer tokens (32 bytes).
std::string RandomToken(std::size_t n);

// Random bytes for values that are public once used — AEAD nonces, record
// and request ids — never for keys or tokens. Each RAND_bytes call costs a
// getpid(2) (OpenSSL's fork check) and a lock, and a record write needs two
// such values; so each thread draws 4 KiB at a time and hands out bytes from
// it, each byte once. A child process after fork() starts with fresh pools
// (pthread_atfork), so parent and child never hand out the same bytes.
void PublicRandomBytes(std::uint8_t* out, std::size_t n);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_RANDOM_H_
