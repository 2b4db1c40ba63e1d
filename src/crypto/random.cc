#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "crypto/openssl_internal.h"

namespace kura::crypto {
namespace {

void Fill(std::uint8_t* out, std::size_t n) {
  // RAND_bytes takes an int length; fill in chunks so any size_t works.
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, INT_MAX);
    if (RAND_bytes(out, static_cast<int>(chunk)) != 1) {
      // A key or nonce from a failed CSPRNG would be predictable; there is
      // no safe fallback, so stop the process.
      internal::FatalOpenSslError("RAND_bytes");
    }
    out += chunk;
    n -= chunk;
  }
}

}  // namespace

Bytes RandomBytes(std::size_t n) {
  Bytes out(n);
  if (n > 0) Fill(out.data(), n);
  return out;
}

SecretBytes RandomSecret(std::size_t n) {
  SecretBytes out(n);
  if (n > 0) Fill(out.data(), n);
  return out;
}

std::string RandomToken(std::size_t n) {
  // The raw bytes are wiped after encoding. Not guarded: this runs on every
  // record create, and the encoded token is an ordinary string anyway.
  SecretBytes raw = SecretBytes::Transient(n);
  if (n > 0) Fill(raw.data(), n);
  return Base64UrlEncode(raw.view());
}

}  // namespace kura::crypto
