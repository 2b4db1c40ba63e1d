#include "crypto/signing.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cctype>
#include <string>

#include "crypto/openssl_internal.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

using MdCtxPtr = internal::OsslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;

// The private key object is rebuilt for each signature rather than kept: the
// seed stays in guarded memory, and OpenSSL's copy (which it wipes on free)
// lives only for the duration of one Sign(). Checkpoints are signed at an
// interval, so the cost of re-deriving the key does not matter.
internal::PkeyPtr PrivateKey(const SecretBytes& seed) {
  internal::PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!pkey) internal::FatalOpenSslError("EVP_PKEY_new_raw_private_key(ED25519)");
  return pkey;
}

internal::PkeyPtr PublicKey(ByteView public_key) {
  if (public_key.size() != kEd25519PublicKeySize) return nullptr;
  internal::PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (!pkey) internal::ClearOpenSslErrors();
  return pkey;
}

}  // namespace

SigningKey SigningKey::Generate() {
  auto key = FromSeed(RandomSecret(kEd25519SeedSize));
  if (!key.ok()) internal::FatalOpenSslError("Ed25519 key generation");
  return std::move(key).value();
}

Result<SigningKey> SigningKey::FromSeed(const SecretBytes& seed) {
  if (seed.size() != kEd25519SeedSize) {
    return InvalidArgumentError("an Ed25519 seed must be " + std::to_string(kEd25519SeedSize) + " bytes");
  }
  internal::PkeyPtr pkey = PrivateKey(seed);
  Bytes public_key(kEd25519PublicKeySize);
  std::size_t len = public_key.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), public_key.data(), &len) != 1 || len != kEd25519PublicKeySize) {
    return internal::OpenSslError("EVP_PKEY_get_raw_public_key");
  }
  return SigningKey(seed.Clone(), std::move(public_key));
}

Bytes SigningKey::Sign(ByteView message) const {
  internal::PkeyPtr pkey = PrivateKey(seed_);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) internal::FatalOpenSslError("EVP_MD_CTX_new");
  // Ed25519 is "pure" EdDSA: it hashes the message itself, so no digest is
  // named (NULL md) and the message is passed whole in one call.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    internal::FatalOpenSslError("EVP_DigestSignInit(ED25519)");
  }
  Bytes signature(kEd25519SignatureSize);
  std::size_t len = signature.size();
  if (EVP_DigestSign(ctx.get(), signature.data(), &len, message.data(), message.size()) != 1 ||
      len != kEd25519SignatureSize) {
    internal::FatalOpenSslError("EVP_DigestSign(ED25519)");
  }
  return signature;
}

bool VerifySignature(ByteView public_key, ByteView message, ByteView signature) {
  if (signature.size() != kEd25519SignatureSize) return false;
  internal::PkeyPtr pkey = PublicKey(public_key);
  if (!pkey) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) internal::FatalOpenSslError("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    internal::ClearOpenSslErrors();
    return false;
  }
  const bool ok =
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(), message.size()) == 1;
  // A failed verification leaves reasons on the thread's error queue; they
  // must not surface in a later, unrelated error report.
  if (!ok) internal::ClearOpenSslErrors();
  return ok;
}

std::string PublicKeyToPem(ByteView public_key) {
  internal::PkeyPtr pkey = PublicKey(public_key);
  if (!pkey) return "";
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) internal::FatalOpenSslError("BIO_new");
  if (PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) internal::FatalOpenSslError("PEM_write_bio_PUBKEY");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type
  return std::string(data, static_cast<std::size_t>(len));
}

Result<Bytes> PublicKeyFromPem(std::string_view pem) {
  const Status invalid = InvalidArgumentError("not a PEM Ed25519 public key");
  if (pem.empty() || pem.size() > 64 * 1024) return invalid;
  internal::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) internal::FatalOpenSslError("BIO_new_mem_buf");
  internal::PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    internal::ClearOpenSslErrors();
    return invalid;
  }
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) return invalid;
  // Exactly one key: anything but white space after the first PEM block
  // (a second key, say) makes the input ambiguous.
  char c;
  while (BIO_read(bio.get(), &c, 1) == 1) {
    if (!std::isspace(static_cast<unsigned char>(c))) return invalid;
  }
  internal::ClearOpenSslErrors();
  Bytes public_key(kEd25519PublicKeySize);
  std::size_t len = public_key.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), public_key.data(), &len) != 1 || len != kEd25519PublicKeySize) {
    internal::ClearOpenSslErrors();
    return invalid;
  }
  return public_key;
}

}  // namespace kura::crypto
