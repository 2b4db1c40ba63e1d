#include "crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <climits>
#include <cstring>

#include "crypto/openssl_internal.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

// Fetched once and shared (immutable, reference-counted): avoids OpenSSL's
// implicit algorithm lookup on every record encryption.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) internal::FatalOpenSslError("EVP_CIPHER_fetch(AES-256-GCM)");
    return c;
  }();
  return cipher;
}

// EVP update calls take int lengths.
bool FitsInt(std::size_t n) { return n <= static_cast<std::size_t>(INT_MAX); }

Status CheckSizes(ByteView key, ByteView iv, std::size_t aad_size, std::size_t text_size) {
  if (key.size() != kAeadKeySize) return InvalidArgumentError("AES-256-GCM key must be 32 bytes");
  if (iv.empty()) return InvalidArgumentError("AES-256-GCM IV must not be empty");
  if (!FitsInt(iv.size()) || !FitsInt(aad_size) || !FitsInt(text_size)) {
    return InvalidArgumentError("AES-256-GCM input too large");
  }
  return Status::Ok();
}

// Initialises `ctx` for AES-256-GCM with an IV of any length (GCM hashes IVs
// other than 96 bits; the published vectors include such IVs).
Status InitContext(EVP_CIPHER_CTX* ctx, bool encrypt, ByteView key, ByteView iv) {
  if (iv.size() == kAeadNonceSize) {
    // GCM's default IV length (every sealed record's): one call, no
    // parameter to pass — this runs for every record read and written.
    const int ok = encrypt ? EVP_EncryptInit_ex2(ctx, Aes256Gcm(), key.data(), iv.data(), nullptr)
                           : EVP_DecryptInit_ex2(ctx, Aes256Gcm(), key.data(), iv.data(), nullptr);
    if (ok != 1) return internal::OpenSslError("AES-256-GCM init");
    return Status::Ok();
  }
  std::size_t iv_len = iv.size();
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &iv_len),
      OSSL_PARAM_construct_end(),
  };
  int ok = encrypt ? EVP_EncryptInit_ex2(ctx, Aes256Gcm(), nullptr, nullptr, params)
                   : EVP_DecryptInit_ex2(ctx, Aes256Gcm(), nullptr, nullptr, params);
  if (ok != 1) return internal::OpenSslError("AES-256-GCM init");
  ok = encrypt ? EVP_EncryptInit_ex2(ctx, nullptr, key.data(), iv.data(), nullptr)
               : EVP_DecryptInit_ex2(ctx, nullptr, key.data(), iv.data(), nullptr);
  if (ok != 1) return internal::OpenSslError("AES-256-GCM key/IV");
  return Status::Ok();
}

// Feeds associated data in pieces (the sealed format's version byte, then
// the caller's associated data); GCM accepts AAD in several updates before
// any text.
Status AddAad(EVP_CIPHER_CTX* ctx, bool encrypt, ByteView aad) {
  if (aad.empty()) return Status::Ok();
  int len = 0;
  int ok = encrypt ? EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size()))
                   : EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size()));
  if (ok != 1) return internal::OpenSslError("AES-256-GCM AAD");
  return Status::Ok();
}

// Encrypts into `out` (plaintext.size() bytes) and `tag_out` (16 bytes).
Status EncryptInto(ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView plaintext, std::uint8_t* out,
                   std::uint8_t* tag_out) {
  KURA_RETURN_IF_ERROR(CheckSizes(key, iv, aad_prefix.size() + aad.size(), plaintext.size()));
  internal::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return internal::OpenSslError("EVP_CIPHER_CTX_new");
  KURA_RETURN_IF_ERROR(InitContext(ctx.get(), true, key, iv));
  KURA_RETURN_IF_ERROR(AddAad(ctx.get(), true, aad_prefix));
  KURA_RETURN_IF_ERROR(AddAad(ctx.get(), true, aad));
  int len = 0;
  std::size_t written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), out, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1) {
      return internal::OpenSslError("AES-256-GCM encrypt");
    }
    written = static_cast<std::size_t>(len);
  }
  std::uint8_t final_block[16];
  if (EVP_EncryptFinal_ex(ctx.get(), final_block, &len) != 1) return internal::OpenSslError("AES-256-GCM final");
  // GCM is a stream mode: all output comes from the update call.
  if (written + static_cast<std::size_t>(len) != plaintext.size() || len != 0) {
    return InternalError("AES-256-GCM produced an unexpected length");
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag_out, kAeadTagSize),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_CIPHER_CTX_get_params(ctx.get(), params) != 1) return internal::OpenSslError("AES-256-GCM get tag");
  return Status::Ok();
}

// Decrypts into `out` (ciphertext.size() bytes). On a tag mismatch returns
// DataLoss and zeroes `out`, so unauthenticated plaintext never escapes.
Status DecryptInto(ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView ciphertext, ByteView tag,
                   std::uint8_t* out) {
  KURA_RETURN_IF_ERROR(CheckSizes(key, iv, aad_prefix.size() + aad.size(), ciphertext.size()));
  // Only full-length tags: a truncated tag would weaken the forgery bound.
  if (tag.size() != kAeadTagSize) return InvalidArgumentError("AES-256-GCM tag must be 16 bytes");
  internal::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return internal::OpenSslError("EVP_CIPHER_CTX_new");
  KURA_RETURN_IF_ERROR(InitContext(ctx.get(), false, key, iv));
  KURA_RETURN_IF_ERROR(AddAad(ctx.get(), false, aad_prefix));
  KURA_RETURN_IF_ERROR(AddAad(ctx.get(), false, aad));
  int len = 0;
  if (!ciphertext.empty()) {
    if (EVP_DecryptUpdate(ctx.get(), out, &len, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1) {
      return internal::OpenSslError("AES-256-GCM decrypt");
    }
  }
  // OpenSSL only reads the tag; the parameter API wants a non-const pointer.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, const_cast<std::uint8_t*>(tag.data()), tag.size()),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_CIPHER_CTX_set_params(ctx.get(), params) != 1) return internal::OpenSslError("AES-256-GCM set tag");
  std::uint8_t final_block[16];
  if (EVP_DecryptFinal_ex(ctx.get(), final_block, &len) != 1) {
    if (!ciphertext.empty()) OPENSSL_cleanse(out, ciphertext.size());
    internal::ClearOpenSslErrors();
    return DataLossError("ciphertext failed authentication");
  }
  return Status::Ok();
}

}  // namespace

Result<Bytes> AeadSeal(const SecretBytes& key, ByteView plaintext, ByteView associated_data) {
  if (key.size() != kAeadKeySize) return InvalidArgumentError("AEAD key must be 32 bytes");
  const std::uint8_t version = kAeadFormatV1;
  Bytes out(kAeadOverhead + plaintext.size());
  out[0] = version;
  std::uint8_t* nonce = out.data() + 1;
  std::uint8_t* body = nonce + kAeadNonceSize;
  std::uint8_t* tag = body + plaintext.size();
  // Random 96-bit nonces: no counter state to persist or lose across
  // restarts and replicas; keys are rotated long before 2^32 messages.
  PublicRandomBytes(nonce, kAeadNonceSize);
  KURA_RETURN_IF_ERROR(EncryptInto(key.view(), ByteView(nonce, kAeadNonceSize), ByteView(&version, 1), associated_data,
                                   plaintext, body, tag));
  return out;
}

Result<SecretBytes> AeadOpen(const SecretBytes& key, ByteView sealed, ByteView associated_data) {
  if (key.size() != kAeadKeySize) return InvalidArgumentError("AEAD key must be 32 bytes");
  if (sealed.size() < kAeadOverhead) return InvalidArgumentError("ciphertext too short");
  if (sealed[0] != kAeadFormatV1) return InvalidArgumentError("unknown ciphertext format version");
  const std::size_t body_size = sealed.size() - kAeadOverhead;
  ByteView version = sealed.subspan(0, 1);
  ByteView nonce = sealed.subspan(1, kAeadNonceSize);
  ByteView body = sealed.subspan(1 + kAeadNonceSize, body_size);
  ByteView tag = sealed.subspan(1 + kAeadNonceSize + body_size, kAeadTagSize);
  // Transient: AeadOpen runs on every record read; callers that keep the result
  // for long (an unwrapped key) move it into guarded memory.
  SecretBytes plaintext = SecretBytes::Transient(body_size);
  KURA_RETURN_IF_ERROR(DecryptInto(key.view(), nonce, version, associated_data, body, tag, plaintext.data()));
  return plaintext;
}

Status Aes256GcmEncrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext, Bytes* ciphertext, Bytes* tag) {
  Bytes ct(plaintext.size());
  Bytes t(kAeadTagSize);
  KURA_RETURN_IF_ERROR(EncryptInto(key, iv, {}, aad, plaintext, ct.data(), t.data()));
  *ciphertext = std::move(ct);
  *tag = std::move(t);
  return Status::Ok();
}

Status Aes256GcmDecrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag, Bytes* plaintext) {
  Bytes pt(ciphertext.size());
  KURA_RETURN_IF_ERROR(DecryptInto(key, iv, {}, aad, ciphertext, tag, pt.data()));
  *plaintext = std::move(pt);
  return Status::Ok();
}

}  // namespace kura::crypto
