#include "crypto/random.h"

#include <openssl/rand.h>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

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

// Bumped in a fork child: every thread's pool drawn before is dropped.
std::atomic<std::uint64_t> fork_generation{0};

void RegisterForkHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without the handler a fork child could repeat its parent's nonces.
    if (pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); }) != 0) {
      std::abort();
    }
  });
}

}  // namespace

void PublicRandomBytes(std::uint8_t* out, std::size_t n) {
  constexpr std::size_t kPoolSize = 4096;
  if (n >= kPoolSize / 4) {
    Fill(out, n);
    return;
  }
  RegisterForkHandler();
  thread_local std::array<std::uint8_t, kPoolSize> pool;
  thread_local std::size_t used = kPoolSize;
  thread_local std::uint64_t generation = 0;
  const std::uint64_t now = fork_generation.load(std::memory_order_relaxed);
  if (generation != now || kPoolSize - used < n) {
    Fill(pool.data(), kPoolSize);
    used = 0;
    generation = now;
  }
  std::memcpy(out, pool.data() + used, n);
  std::memset(pool.data() + used, 0, n);  // handed out: not kept
  used += n;
}

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
