#include "http/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <string>

namespace kura::http {
namespace {

constexpr std::string_view kModern12 =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr std::string_view kCompatibility12 =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:"
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256";

// The last OpenSSL error, for operators (file problems, key mismatch); the
// queue is cleared so it does not leak into an unrelated later call.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  std::string text = "unknown OpenSSL error";
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

// Only HTTP/1.1 is spoken: select it when a client offers ALPN, and go on
// without ALPN when it does not offer it (e.g. openssl s_client).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
               void*) {
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof(kHttp11) && std::equal(kHttp11, kHttp11 + len, in + i + 1)) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::string_view Tls12CipherList(std::string_view profile) {
  return profile == "compatibility" ? kCompatibility12 : kModern12;
}

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const Config::Listener& listener) {
  if (listener.tls_profile != "modern" && listener.tls_profile != "compatibility") {
    return InvalidArgumentError("listener.tls_profile must be \"modern\" or \"compatibility\"");
  }
  if (listener.tls_cert.empty() || listener.tls_key.empty()) {
    return InvalidArgumentError("listener.tls_cert and listener.tls_key are required for HTTPS");
  }
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) return InternalError("SSL_CTX_new: " + OpenSslError());
  // ssl::context takes ownership of the handle.
  auto context = std::make_shared<ssl::context>(raw);
  SSL_CTX* ctx = context->native_handle();

  // TLS 1.0/1.1 are broken or deprecated (RFC 8996).
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return InternalError("cannot restrict TLS versions: " + OpenSslError());
  }
  // No compression (CRIME), no renegotiation (a DoS lever and historically a
  // source of injection bugs), and our cipher order rather than the client's.
  // CLEANSE_PLAINTEXT: OpenSSL wipes each decrypted record once it has
  // handed it over, instead of keeping it until the next one overwrites it
  // (a request's bearer token, password or share would otherwise stay there).
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_CLEANSE_PLAINTEXT);
  const std::string list12(Tls12CipherList(listener.tls_profile));
  const std::string list13(kTls13Suites);
  if (SSL_CTX_set_cipher_list(ctx, list12.c_str()) != 1 || SSL_CTX_set_ciphersuites(ctx, list13.c_str()) != 1) {
    return InternalError("cannot set cipher suites: " + OpenSslError());
  }
  // Key exchange groups: X25519 first, then the NIST curves clients expect.
  if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
    return InternalError("cannot set key exchange groups: " + OpenSslError());
  }
  // The chain file carries the leaf and its intermediate(s): clients that only
  // trust the root can then build the path themselves.
  if (SSL_CTX_use_certificate_chain_file(ctx, listener.tls_cert.c_str()) != 1) {
    return InvalidArgumentError("cannot load TLS certificate chain " + listener.tls_cert + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, listener.tls_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgumentError("cannot load TLS private key " + listener.tls_key + ": " + OpenSslError());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return InvalidArgumentError("TLS private key " + listener.tls_key + " does not match the certificate " +
                                listener.tls_cert);
  }
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return context;
}

}  // namespace kura::http
