#include "crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <array>
#include <climits>
#include <cstring>

#include "crypto/aead_internal.h"
#include "crypto/openssl_internal.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

using internal::GcmImpl;

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

// EncryptInto and DecryptInto (below) through OpenSSL's EVP.
Status OpenSslEncryptInto(ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView plaintext,
                          std::uint8_t* out, std::uint8_t* tag_out) {
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

Status OpenSslDecryptInto(ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView ciphertext,
                          ByteView tag, std::uint8_t* out) {
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

// libsodium takes the associated data in one piece: the format's version
// byte and the caller's associated data, joined on the stack when they fit.
class JoinedAad {
 public:
  JoinedAad(ByteView prefix, ByteView aad) {
    const std::size_t size = prefix.size() + aad.size();
    std::uint8_t* at = size <= small_.size() ? small_.data() : (large_.resize(size), large_.data());
    if (!prefix.empty()) std::memcpy(at, prefix.data(), prefix.size());
    if (!aad.empty()) std::memcpy(at + prefix.size(), aad.data(), aad.size());
    view_ = ByteView(at, size);
  }
  ByteView view() const { return view_; }

 private:
  std::array<std::uint8_t, 256> small_;
  Bytes large_;
  ByteView view_;
};

// The key schedule, wiped when done. libsodium's one-call functions expand
// the key into a state on their own stack and leave it there (its first two
// round keys are the key itself): the memory test found a KEK that way.
class ExpandedKey {
 public:
  explicit ExpandedKey(ByteView key) { crypto_aead_aes256gcm_beforenm(&state_, key.data()); }
  ~ExpandedKey() { sodium_memzero(&state_, sizeof state_); }
  ExpandedKey(const ExpandedKey&) = delete;
  ExpandedKey& operator=(const ExpandedKey&) = delete;
  const crypto_aead_aes256gcm_state* state() const { return &state_; }

 private:
  crypto_aead_aes256gcm_state state_;
};

Status SodiumEncryptInto(ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView plaintext,
                         std::uint8_t* out, std::uint8_t* tag_out) {
  const JoinedAad joined(aad_prefix, aad);
  // libsodium declares its buffers non-null, even empty ones.
  std::uint8_t none = 0;
  if (plaintext.empty()) out = &none;
  const std::uint8_t* in = plaintext.empty() ? &none : plaintext.data();
  ExpandedKey expanded(key);
  unsigned long long tag_len = 0;
  if (crypto_aead_aes256gcm_encrypt_detached_afternm(out, tag_out, &tag_len, in, plaintext.size(), joined.view().data(),
                                                     joined.view().size(), nullptr, iv.data(), expanded.state()) != 0 ||
      tag_len != kAeadTagSize) {
    return InternalError("AES-256-GCM encrypt failed");
  }
  return Status::Ok();
}

Status SodiumDecryptInto(ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView ciphertext,
                         ByteView tag, std::uint8_t* out) {
  const JoinedAad joined(aad_prefix, aad);
  // libsodium declares its buffers non-null, even empty ones.
  std::uint8_t none = 0;
  if (ciphertext.empty()) out = &none;
  const std::uint8_t* in = ciphertext.empty() ? &none : ciphertext.data();
  ExpandedKey expanded(key);
  if (crypto_aead_aes256gcm_decrypt_detached_afternm(out, nullptr, in, ciphertext.size(), tag.data(),
                                                     joined.view().data(), joined.view().size(), iv.data(),
                                                     expanded.state()) != 0) {
    if (!ciphertext.empty()) sodium_memzero(out, ciphertext.size());
    return DataLossError("ciphertext failed authentication");
  }
  return Status::Ok();
}

// libsodium's AES-256-GCM for short texts where it can run (AES-NI and
// CLMUL; 96-bit nonces only, which every sealed record has), OpenSSL's EVP
// otherwise. Every record read and write seals or opens one: EVP allocates a
// context, looks up the provider's implementation and counts references on
// the shared cipher object, which two I/O threads contend for — about 1.2 µs
// for a 300-byte seal (1.5 µs on two threads at once) against 0.5 µs through
// libsodium. OpenSSL's stitched AES-GCM is about twice as fast per byte, so
// texts over 2 KiB (the crossover, on one thread and on two) go to it again
// (docs/performance.md). Same bytes either way.
constexpr std::size_t kLibsodiumMaxText = 2048;

GcmImpl ChooseImpl(ByteView iv, std::size_t text_size) {
  return iv.size() == kAeadNonceSize && text_size <= kLibsodiumMaxText && internal::LibsodiumGcmAvailable()
             ? GcmImpl::kLibsodium
             : GcmImpl::kOpenSsl;
}

Status CheckLibsodiumCanRun(ByteView iv) {
  if (iv.size() != kAeadNonceSize || !internal::LibsodiumGcmAvailable()) {
    return InvalidArgumentError("libsodium's AES-256-GCM needs a 96-bit IV and AES-NI");
  }
  return Status::Ok();
}

// Encrypts into `out` (plaintext.size() bytes) and `tag_out` (16 bytes).
Status EncryptInto(GcmImpl impl, ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView plaintext,
                   std::uint8_t* out, std::uint8_t* tag_out) {
  KURA_RETURN_IF_ERROR(CheckSizes(key, iv, aad_prefix.size() + aad.size(), plaintext.size()));
  if (impl == GcmImpl::kLibsodium) {
    KURA_RETURN_IF_ERROR(CheckLibsodiumCanRun(iv));
    return SodiumEncryptInto(key, iv, aad_prefix, aad, plaintext, out, tag_out);
  }
  return OpenSslEncryptInto(key, iv, aad_prefix, aad, plaintext, out, tag_out);
}

// Decrypts into `out` (ciphertext.size() bytes). On a tag mismatch returns
// DataLoss and zeroes `out`, so unauthenticated plaintext never escapes.
Status DecryptInto(GcmImpl impl, ByteView key, ByteView iv, ByteView aad_prefix, ByteView aad, ByteView ciphertext,
                   ByteView tag, std::uint8_t* out) {
  KURA_RETURN_IF_ERROR(CheckSizes(key, iv, aad_prefix.size() + aad.size(), ciphertext.size()));
  // Only full-length tags: a truncated tag would weaken the forgery bound.
  if (tag.size() != kAeadTagSize) return InvalidArgumentError("AES-256-GCM tag must be 16 bytes");
  if (impl == GcmImpl::kLibsodium) {
    KURA_RETURN_IF_ERROR(CheckLibsodiumCanRun(iv));
    return SodiumDecryptInto(key, iv, aad_prefix, aad, ciphertext, tag, out);
  }
  return OpenSslDecryptInto(key, iv, aad_prefix, aad, ciphertext, tag, out);
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
  const ByteView nonce_view(nonce, kAeadNonceSize);
  KURA_RETURN_IF_ERROR(EncryptInto(ChooseImpl(nonce_view, plaintext.size()), key.view(), nonce_view,
                                   ByteView(&version, 1), associated_data, plaintext, body, tag));
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
  KURA_RETURN_IF_ERROR(DecryptInto(ChooseImpl(nonce, body_size), key.view(), nonce, version, associated_data, body, tag,
                                   plaintext.data()));
  return plaintext;
}

Status Aes256GcmEncrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext, Bytes* ciphertext, Bytes* tag) {
  return internal::Aes256GcmEncryptWith(ChooseImpl(iv, plaintext.size()), key, iv, aad, plaintext, ciphertext, tag);
}

Status Aes256GcmDecrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag, Bytes* plaintext) {
  return internal::Aes256GcmDecryptWith(ChooseImpl(iv, ciphertext.size()), key, iv, aad, ciphertext, tag, plaintext);
}

namespace internal {

bool LibsodiumGcmAvailable() {
  static const bool available = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() == 1;
  return available;
}

Status Aes256GcmEncryptWith(GcmImpl impl, ByteView key, ByteView iv, ByteView aad, ByteView plaintext,
                            Bytes* ciphertext, Bytes* tag) {
  Bytes ct(plaintext.size());
  Bytes t(kAeadTagSize);
  KURA_RETURN_IF_ERROR(EncryptInto(impl, key, iv, {}, aad, plaintext, ct.data(), t.data()));
  *ciphertext = std::move(ct);
  *tag = std::move(t);
  return Status::Ok();
}

Status Aes256GcmDecryptWith(GcmImpl impl, ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag,
                            Bytes* plaintext) {
  Bytes pt(ciphertext.size());
  KURA_RETURN_IF_ERROR(DecryptInto(impl, key, iv, {}, aad, ciphertext, tag, pt.data()));
  *plaintext = std::move(pt);
  return Status::Ok();
}

}  // namespace internal

}  // namespace kura::crypto
