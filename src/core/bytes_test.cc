#include "core/bytes.h"

#include <gtest/gtest.h>

#include <string>

namespace kura {
namespace {

TEST(Base64UrlTest, Rfc4648Vectors) {
  // RFC 4648 §10 vectors, in the URL alphabet without padding.
  EXPECT_EQ(Base64UrlEncode(AsBytes("")), "");
  EXPECT_EQ(Base64UrlEncode(AsBytes("f")), "Zg");
  EXPECT_EQ(Base64UrlEncode(AsBytes("fo")), "Zm8");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foo")), "Zm9v");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foob")), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode(AsBytes("fooba")), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode(AsBytes("foobar")), "Zm9vYmFy");
}

TEST(Base64Test, Rfc4648VectorsWithPaddingAndTheStandardAlphabet) {
  EXPECT_EQ(Base64Encode(AsBytes("")), "");
  EXPECT_EQ(Base64Encode(AsBytes("f")), "Zg==");
  EXPECT_EQ(Base64Encode(AsBytes("fo")), "Zm8=");
  EXPECT_EQ(Base64Encode(AsBytes("foo")), "Zm9v");
  EXPECT_EQ(Base64Encode(AsBytes("foob")), "Zm9vYg==");
  EXPECT_EQ(Base64Encode(AsBytes("fooba")), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode(AsBytes("foobar")), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(Bytes{0xfb, 0xff, 0xbf}), "+/+/");
}

TEST(Base64UrlTest, UsesUrlAlphabet) {
  Bytes b = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(Base64UrlEncode(b), "-_-_");
  auto d = Base64UrlDecode("-_-_");
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, b);
}

TEST(Base64UrlTest, RoundTripsEveryLength) {
  for (std::size_t n = 0; n < 70; ++n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 37 + n);
    auto d = Base64UrlDecode(Base64UrlEncode(b));
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(*d, b) << n;
  }
}

TEST(Base64UrlTest, AcceptsPadding) {
  auto d = Base64UrlDecode("Zg==");
  ASSERT_TRUE(d);
  EXPECT_EQ(AsString(*d), "f");
  d = Base64UrlDecode("Zm8=");
  ASSERT_TRUE(d);
  EXPECT_EQ(AsString(*d), "fo");
}

TEST(Base64UrlTest, RefusesInvalidInput) {
  EXPECT_FALSE(Base64UrlDecode("Zm9v+A"));  // standard alphabet '+'
  EXPECT_FALSE(Base64UrlDecode("Zm9v/A"));  // standard alphabet '/'
  EXPECT_FALSE(Base64UrlDecode("Zm 9v"));
  EXPECT_FALSE(Base64UrlDecode("Zm9v\n"));
  EXPECT_FALSE(Base64UrlDecode("Z"));      // 6 bits cannot be a byte
  EXPECT_FALSE(Base64UrlDecode("Zm9vY"));  // length 5 ≡ 1 (mod 4)
  EXPECT_FALSE(Base64UrlDecode("Zm=9"));   // padding in the middle
}

TEST(Base64UrlTest, RefusesNonCanonicalTrailingBits) {
  // "Zg" is "f"; "Zh" carries the same byte with non-zero padding bits.
  ASSERT_TRUE(Base64UrlDecode("Zg"));
  EXPECT_FALSE(Base64UrlDecode("Zh"));
  EXPECT_FALSE(Base64UrlDecode("Zv"));
  ASSERT_TRUE(Base64UrlDecode("Zm8"));
  EXPECT_FALSE(Base64UrlDecode("Zm9"));
}

// The check without decoding agrees with decoding and encoding back, for
// every length up to 40 bytes and every last character, and refuses padding,
// other lengths and characters outside the alphabet.
TEST(Base64UrlTest, CanonicalCheckAgreesWithTheRoundTrip) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t n = 0; n <= 40; ++n) {
    Bytes data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i * 37 + n);
    std::string text = Base64UrlEncode(data);
    EXPECT_TRUE(IsCanonicalBase64Url(text, n)) << n;
    EXPECT_FALSE(IsCanonicalBase64Url(text, n + 1)) << n;
    if (n > 0) {
      EXPECT_FALSE(IsCanonicalBase64Url(text, n - 1)) << n;
    }
    if (text.empty()) continue;
    EXPECT_FALSE(IsCanonicalBase64Url(text + "=", n));
    for (char c : alphabet) {
      text.back() = c;
      auto decoded = Base64UrlDecode(text);
      const bool canonical = decoded && decoded->size() == n && Base64UrlEncode(*decoded) == text;
      EXPECT_EQ(IsCanonicalBase64Url(text, n), canonical) << n << " " << c;
    }
    text.front() = '+';
    EXPECT_FALSE(IsCanonicalBase64Url(text, n));
  }
}

TEST(HexTest, EncodesLowercase) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "0001abff");
  EXPECT_EQ(HexEncode(Bytes{}), "");
}

TEST(HexTest, RoundTripsAndAcceptsUppercase) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<std::uint8_t>(i);
  auto d = HexDecode(HexEncode(all));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, all);
  auto u = HexDecode("ABFF");
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (Bytes{0xab, 0xff}));
}

TEST(HexTest, RefusesInvalidInput) {
  EXPECT_FALSE(HexDecode("abc"));   // odd length
  EXPECT_FALSE(HexDecode("zz"));
  EXPECT_FALSE(HexDecode("0x12"));
  EXPECT_FALSE(HexDecode("12 3"));
  EXPECT_FALSE(HexDecode("1g"));
}

TEST(BytesTest, StringConversions) {
  Bytes b = ToBytes("kura");
  EXPECT_EQ(b, (Bytes{'k', 'u', 'r', 'a'}));
  EXPECT_EQ(AsString(b), "kura");
  EXPECT_EQ(AsBytes("ab").size(), 2u);
}

}  // namespace
}  // namespace kura
