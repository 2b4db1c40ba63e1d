#include "crypto/shamir.h"

#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

std::vector<ShamirShare> ParseAll(const std::vector<std::string>& texts) {
  std::vector<ShamirShare> out;
  for (const std::string& t : texts) {
    Result<ShamirShare> s = ParseShare(t);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) out.push_back(std::move(s).value());
  }
  return out;
}

ShamirShare Copy(const ShamirShare& s) { return ShamirShare{s.threshold, s.x, s.y.Clone()}; }

std::vector<ShamirShare> Subset(const std::vector<ShamirShare>& all, unsigned mask) {
  std::vector<ShamirShare> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (mask & (1u << i)) out.push_back(Copy(all[i]));
  }
  return out;
}

std::string Encode(std::initializer_list<std::uint8_t> bytes) { return Base64UrlEncode(Bytes(bytes)); }

bool IsValidSplit(int n, int k) { return (n == 1 && k == 1) || (k >= 2 && k <= n); }

// For every n in 1..6 and k <= n: every subset of at least k shares
// recombines to the secret; every (k-1)-subset, forced through the
// interpolation by rewriting its threshold, yields something else.
TEST(ShamirTest, EveryThresholdSubsetRecombinesAndSmallerOnesDoNot) {
  for (int n = 1; n <= 6; ++n) {
    for (int k = 1; k <= n; ++k) {
      SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(k));
      SecretBytes secret = RandomSecret(32);
      Result<std::vector<std::string>> texts = SplitSecret(secret, n, k);
      if (!IsValidSplit(n, k)) {
        EXPECT_EQ(texts.status().code(), StatusCode::kInvalidArgument);
        continue;
      }
      ASSERT_TRUE(texts.ok()) << texts.status().ToString();
      ASSERT_EQ(texts->size(), static_cast<std::size_t>(n));
      std::vector<ShamirShare> shares = ParseAll(*texts);
      ASSERT_EQ(shares.size(), static_cast<std::size_t>(n));

      int full_subsets = 0, short_subsets = 0;
      for (unsigned mask = 1; mask < (1u << n); ++mask) {
        const int size = std::popcount(mask);
        std::vector<ShamirShare> subset = Subset(shares, mask);
        if (size >= k) {
          Result<SecretBytes> got = CombineShares(subset);
          ASSERT_TRUE(got.ok()) << "mask " << mask << ": " << got.status().ToString();
          EXPECT_TRUE(got->Equals(secret.view())) << "mask " << mask;
          ++full_subsets;
        } else {
          EXPECT_EQ(CombineShares(subset).status().code(), StatusCode::kInvalidArgument) << "mask " << mask;
          if (size == k - 1) {
            for (ShamirShare& s : subset) s.threshold = k - 1;
            Result<SecretBytes> forced = CombineShares(subset);
            ASSERT_TRUE(forced.ok()) << "mask " << mask << ": " << forced.status().ToString();
            EXPECT_EQ(forced->size(), secret.size());
            EXPECT_FALSE(forced->Equals(secret.view())) << "mask " << mask;
            ++short_subsets;
          }
        }
      }
      EXPECT_GT(full_subsets, 0);
      if (k >= 2) {
        EXPECT_GT(short_subsets, 0);
      }
    }
  }
}

TEST(ShamirTest, ShareTextLayout) {
  SecretBytes secret = RandomSecret(32);
  Result<std::vector<std::string>> texts = SplitSecret(secret, 5, 3);
  ASSERT_TRUE(texts.ok());
  for (std::size_t i = 0; i < texts->size(); ++i) {
    std::optional<Bytes> raw = Base64UrlDecode((*texts)[i]);
    ASSERT_TRUE(raw.has_value());
    ASSERT_EQ(raw->size(), 3u + 32u);
    EXPECT_EQ((*raw)[0], 1);                                 // version
    EXPECT_EQ((*raw)[1], 3);                                 // threshold
    EXPECT_EQ((*raw)[2], static_cast<std::uint8_t>(i + 1));  // x = 1..n
    // URL-safe alphabet, no padding.
    EXPECT_EQ((*texts)[i].find_first_of("+/="), std::string::npos);
  }
  Result<ShamirShare> parsed = ParseShare((*texts)[4]);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->threshold, 3);
  EXPECT_EQ(parsed->x, 5);
  EXPECT_EQ(parsed->y.size(), 32u);
}

TEST(ShamirTest, OneOfOneShareHoldsTheSecret) {
  SecretBytes secret = RandomSecret(32);
  Result<std::vector<std::string>> texts = SplitSecret(secret, 1, 1);
  ASSERT_TRUE(texts.ok());
  std::vector<ShamirShare> shares = ParseAll(*texts);
  ASSERT_EQ(shares.size(), 1u);
  EXPECT_TRUE(shares[0].y.Equals(secret.view()));
}

TEST(ShamirTest, SplitsAreRandomised) {
  SecretBytes secret = RandomSecret(32);
  Result<std::vector<std::string>> a = SplitSecret(secret, 3, 2);
  Result<std::vector<std::string>> b = SplitSecret(secret, 3, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)[0], (*b)[0]);  // fresh polynomial coefficients each time
}

TEST(ShamirTest, MaximumShareCount) {
  SecretBytes secret = RandomSecret(32);
  Result<std::vector<std::string>> texts = SplitSecret(secret, 255, 3);
  ASSERT_TRUE(texts.ok());
  std::vector<ShamirShare> shares = ParseAll(*texts);
  std::vector<ShamirShare> pick;
  pick.push_back(Copy(shares[254]));
  pick.push_back(Copy(shares[100]));
  pick.push_back(Copy(shares[0]));
  Result<SecretBytes> got = CombineShares(pick);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->Equals(secret.view()));
}

TEST(ShamirTest, SplitRejectsBadParameters) {
  SecretBytes secret = RandomSecret(32);
  for (auto [n, k] : std::vector<std::pair<int, int>>{{3, 4}, {3, 1}, {3, 0}, {0, 0}, {256, 2}, {2, -1}, {-1, 1}}) {
    EXPECT_EQ(SplitSecret(secret, n, k).status().code(), StatusCode::kInvalidArgument) << n << "/" << k;
  }
  SecretBytes empty;
  EXPECT_EQ(SplitSecret(empty, 3, 2).status().code(), StatusCode::kInvalidArgument);
}

TEST(ShamirTest, CombineRefusesFewerThanThresholdDuplicatesAndMismatches) {
  SecretBytes secret = RandomSecret(32);
  Result<std::vector<std::string>> texts = SplitSecret(secret, 5, 3);
  ASSERT_TRUE(texts.ok());
  std::vector<ShamirShare> shares = ParseAll(*texts);

  EXPECT_EQ(CombineShares({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CombineShares(Subset(shares, 0b00011)).status().code(), StatusCode::kInvalidArgument);

  std::vector<ShamirShare> dup = Subset(shares, 0b00011);
  dup.push_back(Copy(shares[0]));
  EXPECT_EQ(CombineShares(dup).status().code(), StatusCode::kInvalidArgument);

  std::vector<ShamirShare> mixed = Subset(shares, 0b00111);
  mixed[1].threshold = 2;
  EXPECT_EQ(CombineShares(mixed).status().code(), StatusCode::kInvalidArgument);

  std::vector<ShamirShare> lengths = Subset(shares, 0b00111);
  lengths[2].y = RandomSecret(31);
  EXPECT_EQ(CombineShares(lengths).status().code(), StatusCode::kInvalidArgument);

  std::vector<ShamirShare> bad_x = Subset(shares, 0b00111);
  bad_x[0].x = 0;
  EXPECT_EQ(CombineShares(bad_x).status().code(), StatusCode::kInvalidArgument);
  bad_x[0].x = 256;
  EXPECT_EQ(CombineShares(bad_x).status().code(), StatusCode::kInvalidArgument);
}

TEST(ShamirTest, ParseRejectsMalformedText) {
  EXPECT_EQ(ParseShare("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseShare("   ").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseShare("not base64!").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseShare("AQID+/").status().code(), StatusCode::kInvalidArgument);              // standard alphabet
  EXPECT_EQ(ParseShare(Encode({1, 2, 1})).status().code(), StatusCode::kInvalidArgument);     // no y
  EXPECT_EQ(ParseShare(Encode({2, 2, 1, 7})).status().code(), StatusCode::kInvalidArgument);  // version
  EXPECT_EQ(ParseShare(Encode({1, 0, 1, 7})).status().code(), StatusCode::kInvalidArgument);  // threshold 0
  EXPECT_EQ(ParseShare(Encode({1, 2, 0, 7})).status().code(), StatusCode::kInvalidArgument);  // x 0
  EXPECT_EQ(ParseShare(std::string(5000, 'A')).status().code(), StatusCode::kInvalidArgument);
}

TEST(ShamirTest, ParseToleratesSurroundingWhitespace) {
  Result<ShamirShare> s = ParseShare("  " + Encode({1, 2, 9, 7, 8}) + "\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->threshold, 2);
  EXPECT_EQ(s->x, 9);
  EXPECT_TRUE(s->y.Equals(Bytes{7, 8}));
}

}  // namespace
}  // namespace kura::crypto
