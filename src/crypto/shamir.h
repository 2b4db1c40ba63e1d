// Shamir secret sharing of the KEK over GF(256), using Debian's libgfshare for
// the field arithmetic.
//
// Share text format (docs/formats/shamir-share.md): base64url of
//   version (1 byte = 1) || threshold (1) || x coordinate (1) || y bytes
#ifndef KURA_CRYPTO_SHAMIR_H_
#define KURA_CRYPTO_SHAMIR_H_

#include <string>
#include <vector>

#include "core/secret.h"
#include "core/status.h"

namespace kura::crypto {

struct ShamirShare {
  int threshold = 0;
  int x = 0;            // 1..255, distinct per share
  SecretBytes y;
};

// Splits `secret` into `shares` shares of which any `threshold` recombine.
// InvalidArgument unless 2 <= threshold <= shares <= 255 (1-of-1 also allowed).
Result<std::vector<std::string>> SplitSecret(const SecretBytes& secret, int shares, int threshold);

// Parses one share's text. InvalidArgument when malformed.
Result<ShamirShare> ParseShare(std::string_view text);

// Recombines parsed shares. InvalidArgument when fewer than the threshold,
// duplicates, or mismatched thresholds/lengths. Note: k-1 shares of a k-of-n
// split, forced through the arithmetic, yield unrelated bytes; callers verify
// the result (the vault checks it against a KEK check value).
Result<SecretBytes> CombineShares(const std::vector<ShamirShare>& shares);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_SHAMIR_H_
