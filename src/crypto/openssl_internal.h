// Module-only helpers for calling OpenSSL: owning pointers for its handle
// types and the one place where OpenSSL's error queue becomes a Status.
#ifndef KURA_CRYPTO_OPENSSL_INTERNAL_H_
#define KURA_CRYPTO_OPENSSL_INTERNAL_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>

#include <memory>
#include <string_view>

#include "core/status.h"

namespace kura::crypto::internal {

template <typename T, void (*Free)(T*)>
struct OsslDeleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using OsslPtr = std::unique_ptr<T, OsslDeleter<T, Free>>;

using CipherCtxPtr = OsslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using KdfCtxPtr = OsslPtr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using PkeyPtr = OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = OsslPtr<X509, X509_free>;
using BioPtr = OsslPtr<BIO, BIO_free_all>;

// Drains OpenSSL's thread-local error queue into an Internal status
// "<what>: <openssl reason>". OpenSSL reasons name the failing operation,
// never key or data bytes, so they are safe to put in a message.
Status OpenSslError(std::string_view what);

// Clears the thread's OpenSSL error queue, so an expected failure (for
// example a GCM tag mismatch) does not leak into a later, unrelated report.
void ClearOpenSslErrors();

// Logs and aborts: for OpenSSL failures in functions whose contract has no
// error path (hashing with a valid algorithm only fails on memory exhaustion
// or a broken build, and no caller could continue safely).
[[noreturn]] void FatalOpenSslError(std::string_view what);

}  // namespace kura::crypto::internal

#endif  // KURA_CRYPTO_OPENSSL_INTERNAL_H_
