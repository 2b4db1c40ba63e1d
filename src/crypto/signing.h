// Ed25519 signatures (OpenSSL EVP), for audit checkpoints.
//
// A SigningKey holds the 32-byte private seed in guarded memory; the public
// key is 32 raw bytes (RFC 8032). PEM forms are SubjectPublicKeyInfo, the form
// `openssl pkeyutl -verify -pubin -rawin` reads.
//
// Thread safety: SigningKey is immutable after creation; Sign() may run
// concurrently.
#ifndef KURA_CRYPTO_SIGNING_H_
#define KURA_CRYPTO_SIGNING_H_

#include <string>

#include "core/bytes.h"
#include "core/secret.h"
#include "core/status.h"

namespace kura::crypto {

constexpr std::size_t kEd25519PublicKeySize = 32;
constexpr std::size_t kEd25519SeedSize = 32;
constexpr std::size_t kEd25519SignatureSize = 64;

class SigningKey {
 public:
  // A new random key.
  static SigningKey Generate();
  // From a 32-byte seed (as stored, after unwrapping). InvalidArgument for
  // any other size.
  static Result<SigningKey> FromSeed(const SecretBytes& seed);

  const SecretBytes& seed() const { return seed_; }
  const Bytes& public_key() const { return public_key_; }
  // 64-byte signature over `message`.
  Bytes Sign(ByteView message) const;

 private:
  SigningKey(SecretBytes seed, Bytes public_key) : seed_(std::move(seed)), public_key_(std::move(public_key)) {}
  SecretBytes seed_;
  Bytes public_key_;
};

// Whether `signature` is a valid Ed25519 signature of `message` under the raw
// 32-byte `public_key`. False for malformed keys or signatures.
bool VerifySignature(ByteView public_key, ByteView message, ByteView signature);

// PEM (SubjectPublicKeyInfo) of a raw Ed25519 public key, and back.
// InvalidArgument for anything that is not one Ed25519 public key.
std::string PublicKeyToPem(ByteView public_key);
Result<Bytes> PublicKeyFromPem(std::string_view pem);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_SIGNING_H_
