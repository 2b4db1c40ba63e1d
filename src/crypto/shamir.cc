#include "crypto/shamir.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>

extern "C" {
#include <libgfshare.h>
}

#include "core/bytes.h"
#include "core/log.h"

namespace kura::crypto {
namespace {

constexpr std::uint8_t kShareFormatV1 = 1;
constexpr std::size_t kShareHeaderSize = 3;  // version, threshold, x
constexpr int kMaxShares = 255;              // x is one non-zero byte
// Generous for a 32-byte KEK; bounds the work a malformed share can cause.
constexpr std::size_t kMaxSecretSize = 1024;
constexpr std::size_t kMaxShareTextSize = 2048;

// libgfshare draws the random polynomial coefficients through the global
// function pointer `gfshare_fill_rand`. Depending on the build it is NULL
// (Debian's 2.0.0: splitting would crash) or a helper based on random(),
// which is neither cryptographically secure nor seeded unpredictably: its
// output would let anyone holding k-1 shares predict the coefficients and
// recover the KEK. We point it at OpenSSL's CSPRNG before any use. The
// library also calls it to scrub its buffers on free.
void FillRandForGfshare(unsigned char* buffer, unsigned int count) {
  if (count == 0) return;
  if (RAND_bytes(buffer, static_cast<int>(count)) != 1) {
    // Predictable coefficients would leak the secret; there is no fallback.
    log::Error("RAND_bytes failed while splitting a secret");
    std::abort();
  }
}

void EnsureGfshareRandom() {
  // The pointer is process-global; set it exactly once, before the first
  // split or free, and never again, so concurrent callers never race on it.
  static std::once_flag once;
  std::call_once(once, [] { gfshare_fill_rand = FillRandForGfshare; });
}

struct GfshareCtxFree {
  void operator()(gfshare_ctx* ctx) const { gfshare_ctx_free(ctx); }
};
using GfshareCtxPtr = std::unique_ptr<gfshare_ctx, GfshareCtxFree>;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

Result<std::vector<std::string>> SplitSecret(const SecretBytes& secret, int shares, int threshold) {
  if (secret.empty() || secret.size() > kMaxSecretSize) {
    return InvalidArgumentError("secret to split must be 1 to 1024 bytes");
  }
  const bool one_of_one = shares == 1 && threshold == 1;
  if (!one_of_one && !(threshold >= 2 && threshold <= shares && shares <= kMaxShares)) {
    return InvalidArgumentError("shares and threshold must satisfy 2 <= threshold <= shares <= 255 (or 1 of 1)");
  }
  EnsureGfshareRandom();

  std::vector<unsigned char> xs(static_cast<std::size_t>(shares));
  for (int i = 0; i < shares; ++i) xs[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i + 1);

  const auto size = static_cast<unsigned int>(secret.size());
  GfshareCtxPtr ctx(
      gfshare_ctx_init_enc(xs.data(), static_cast<unsigned int>(shares), static_cast<unsigned char>(threshold), size));
  if (!ctx) return InternalError("cannot initialise secret sharing");
  // libgfshare takes a non-const pointer; give it a locked copy.
  SecretBytes secret_copy = secret.Clone();
  gfshare_ctx_enc_setsecret(ctx.get(), secret_copy.data());

  std::vector<std::string> out;
  out.reserve(xs.size());
  SecretBytes encoded(kShareHeaderSize + secret.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    encoded.data()[0] = kShareFormatV1;
    encoded.data()[1] = static_cast<std::uint8_t>(threshold);
    encoded.data()[2] = xs[i];
    gfshare_ctx_enc_getshare(ctx.get(), static_cast<unsigned char>(i), encoded.data() + kShareHeaderSize);
    out.push_back(Base64UrlEncode(encoded.view()));
  }
  return out;
}

Result<ShamirShare> ParseShare(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  if (text.empty()) return InvalidArgumentError("share is empty");
  if (text.size() > kMaxShareTextSize) return InvalidArgumentError("share is too long");
  std::optional<Bytes> raw = Base64UrlDecode(text);
  if (!raw) return InvalidArgumentError("share is not valid base64url");
  // Move the decoded bytes into locked memory and wipe the heap copy.
  SecretBytes bytes = SecretBytes::FromBytes(*raw);
  OPENSSL_cleanse(raw->data(), raw->size());
  if (bytes.size() < kShareHeaderSize + 1) return InvalidArgumentError("share is too short");
  if (bytes.data()[0] != kShareFormatV1) return InvalidArgumentError("unknown share format version");
  ShamirShare share;
  share.threshold = bytes.data()[1];
  share.x = bytes.data()[2];
  if (share.threshold < 1) return InvalidArgumentError("share has threshold 0");
  if (share.x < 1) return InvalidArgumentError("share has x coordinate 0");
  share.y = SecretBytes::FromBytes(bytes.view().subspan(kShareHeaderSize));
  return share;
}

Result<SecretBytes> CombineShares(const std::vector<ShamirShare>& shares) {
  if (shares.empty()) return InvalidArgumentError("no shares given");
  const int threshold = shares.front().threshold;
  const std::size_t size = shares.front().y.size();
  if (threshold < 1 || threshold > kMaxShares) return InvalidArgumentError("share threshold out of range");
  if (size == 0 || size > kMaxSecretSize) return InvalidArgumentError("share length out of range");
  bool seen[256] = {};
  for (const ShamirShare& s : shares) {
    if (s.threshold != threshold) return InvalidArgumentError("shares have different thresholds");
    if (s.y.size() != size) return InvalidArgumentError("shares have different lengths");
    if (s.x < 1 || s.x > kMaxShares) return InvalidArgumentError("share x coordinate out of range");
    if (seen[s.x]) return InvalidArgumentError("duplicate share");
    seen[s.x] = true;
  }
  if (static_cast<int>(shares.size()) < threshold) return InvalidArgumentError("fewer shares than the threshold");
  EnsureGfshareRandom();  // gfshare_ctx_free scrubs through it

  // Interpolate through exactly `threshold` points: extra shares add nothing
  // and a damaged extra share should not spoil an otherwise good set.
  const auto count = static_cast<std::size_t>(threshold);
  std::vector<unsigned char> xs(count);
  for (std::size_t i = 0; i < count; ++i) xs[i] = static_cast<unsigned char>(shares[i].x);
  GfshareCtxPtr ctx(gfshare_ctx_init_dec(xs.data(), static_cast<unsigned int>(count), static_cast<unsigned int>(size)));
  if (!ctx) return InternalError("cannot initialise secret recombination");
  SecretBytes y(size);
  for (std::size_t i = 0; i < count; ++i) {
    // libgfshare takes a non-const pointer (it copies the share in).
    std::copy(shares[i].y.data(), shares[i].y.data() + size, y.data());
    gfshare_ctx_dec_giveshare(ctx.get(), static_cast<unsigned char>(i), y.data());
  }
  SecretBytes secret(size);
  gfshare_ctx_dec_extract(ctx.get(), secret.data());
  return secret;
}

}  // namespace kura::crypto
