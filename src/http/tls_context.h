// Server TLS contexts as SPEC §3 asks: TLS 1.2 and 1.3 only; for 1.2 ECDHE
// with AES-GCM and SHA-2 only (the "modern" profile); the full chain file
// (leaf + intermediate) served. Internal to the http module.
//
// Thread safety: a built context is shared read-only by many connections
// (OpenSSL allows concurrent SSL_new on one SSL_CTX). Reload builds a new one.
#ifndef KURA_HTTP_TLS_CONTEXT_H_
#define KURA_HTTP_TLS_CONTEXT_H_

#include <memory>
#include <string_view>

#include "core/config.h"
#include "core/status.h"
#include "http/asio_internal.h"

namespace kura::http {

// TLS 1.2 suites of each profile (OpenSSL names), strongest first.
// modern: ECDHE-{ECDSA,RSA} with AES-256-GCM / AES-128-GCM (SHA-384/256).
// compatibility: modern, then ECDHE with CHACHA20-POLY1305 and ECDHE with
// AES-CBC + SHA-256/384, for old clients an operator chooses to serve. Still no
// RSA key exchange, SHA-1 MACs, 3DES, RC4 or TLS < 1.2.
std::string_view Tls12CipherList(std::string_view profile);
// TLS 1.3 suites (both profiles).
inline constexpr std::string_view kTls13Suites =
    "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";

// Builds a server context from listener.tls_cert (PEM chain: leaf first),
// listener.tls_key and listener.tls_profile. InvalidArgument naming the file
// when it cannot be read, the key does not match, or the profile is unknown.
Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const Config::Listener& listener);

}  // namespace kura::http

#endif  // KURA_HTTP_TLS_CONTEXT_H_
