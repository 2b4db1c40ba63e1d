#include "crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <cstdlib>
#include <string>

#include "core/log.h"
#include "crypto/openssl_internal.h"

namespace kura::crypto {
namespace {

constexpr std::size_t kMaxHkdfOutput = 255 * kSha256Size;

// Algorithm objects are fetched once and shared: a fetched EVP_MD / EVP_KDF
// is immutable and reference-counted, so concurrent use is safe, and
// an explicit fetch avoids OpenSSL's per-call implicit lookup on the hot path
// (audit entries are hashed per request).
const EVP_MD* Sha256Md() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) internal::FatalOpenSslError("EVP_MD_fetch(SHA256)");
    return m;
  }();
  return md;
}

EVP_KDF* HkdfAlgorithm() {
  static EVP_KDF* kdf = [] {
    EVP_KDF* k = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (k == nullptr) internal::FatalOpenSslError("EVP_KDF_fetch(HKDF)");
    return k;
  }();
  return kdf;
}

// HMAC-SHA-256 with libsodium: its state lives on the stack, with no
// allocation, provider lookup or lock per call. OpenSSL 3's EVP_MAC looks
// the digest up by name on every init, under a lock the I/O threads share:
// a blind index per create cost ~3 µs on a loaded server that way, against
// ~1 µs here (docs/performance.md). Same function, same output.
Bytes Hmac(ByteView key, ByteView first, ByteView second) {
  if (key.empty()) {
    log::Error("HmacSha256 called with an empty key");
    std::abort();
  }
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, key.data(), key.size());
  crypto_auth_hmacsha256_update(&state, first.data(), first.size());
  crypto_auth_hmacsha256_update(&state, second.data(), second.size());
  Bytes out(kSha256Size);
  crypto_auth_hmacsha256_final(&state, out.data());
  // The state holds the key's inner and outer pads.
  sodium_memzero(&state, sizeof state);
  return out;
}

SecretBytes Hkdf(const SecretBytes& ikm, ByteView salt, std::string_view info, std::size_t out_len) {
  if (ikm.empty() || out_len == 0 || out_len > kMaxHkdfOutput) {
    log::Error("HkdfSha256 called with an empty key or an invalid output length");
    std::abort();
  }
  internal::KdfCtxPtr ctx(EVP_KDF_CTX_new(HkdfAlgorithm()));
  if (!ctx) internal::FatalOpenSslError("EVP_KDF_CTX_new");
  char digest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers but only reads octet strings here.
  OSSL_PARAM params[5];
  int n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] =
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) internal::FatalOpenSslError("EVP_KDF_derive");
  return out;
}

}  // namespace

Bytes Sha256(ByteView data) {
  Bytes out(kSha256Size);
  unsigned int out_len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &out_len, Sha256Md(), nullptr) != 1 || out_len != kSha256Size) {
    internal::FatalOpenSslError("EVP_Digest(SHA256)");
  }
  return out;
}

Bytes HmacSha256(const SecretBytes& key, ByteView data) { return Hmac(key.view(), data, {}); }

SecretBytes HkdfSha256(const SecretBytes& ikm, std::string_view info, std::size_t out_len) {
  return Hkdf(ikm, {}, info, out_len);
}

SecretBytes HkdfSha256(const SecretBytes& ikm, ByteView salt, std::string_view info, std::size_t out_len) {
  return Hkdf(ikm, salt, info, out_len);
}

Bytes BlindIndex(const SecretBytes& index_key, std::string_view domain, std::string_view normalised_value) {
  // The NUL separator makes (domain, value) pairs injective only if the
  // domain itself has no NUL: "a\0b" + "c" would equal "a" + "b\0c".
  if (domain.find('\0') != std::string_view::npos) {
    log::Error("BlindIndex domain contains NUL");
    std::abort();
  }
  std::string prefix(domain);
  prefix.push_back('\0');
  return Hmac(index_key.view(), AsBytes(prefix), AsBytes(normalised_value));
}

}  // namespace kura::crypto
