#include "crypto/random.h"

#include <gtest/gtest.h>

#include <set>

namespace kura::crypto {
namespace {

TEST(RandomTest, SizesAreExact) {
  EXPECT_TRUE(RandomBytes(0).empty());
  EXPECT_EQ(RandomBytes(1).size(), 1u);
  EXPECT_EQ(RandomBytes(1000).size(), 1000u);
  EXPECT_EQ(RandomSecret(32).size(), 32u);
  EXPECT_TRUE(RandomSecret(0).empty());
}

TEST(RandomTest, OutputsDiffer) {
  std::set<Bytes> seen;
  for (int i = 0; i < 100; ++i) seen.insert(RandomBytes(16));
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_FALSE(RandomSecret(32).Equals(RandomSecret(32).view()));
}

TEST(RandomTest, TokenIsBase64UrlOfNBytes) {
  std::string token = RandomToken(32);
  EXPECT_EQ(token.size(), 43u);  // 32 bytes, unpadded base64url
  std::optional<Bytes> raw = Base64UrlDecode(token);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_EQ(RandomToken(16).size(), 22u);
  EXPECT_NE(RandomToken(32), RandomToken(32));
}

}  // namespace
}  // namespace kura::crypto
