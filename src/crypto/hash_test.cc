#include "crypto/hash.h"

#include <gtest/gtest.h>

#include <string>

#include "core/bytes.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

SecretBytes Key(const Bytes& bytes) { return SecretBytes::FromBytes(bytes); }
SecretBytes Key(std::string_view text) { return SecretBytes::FromBytes(AsBytes(text)); }
Bytes Repeat(std::uint8_t b, std::size_t n) { return Bytes(n, b); }
Bytes Range(int first, int last) {  // inclusive
  Bytes out;
  for (int i = first; i <= last; ++i) out.push_back(static_cast<std::uint8_t>(i));
  return out;
}

TEST(Sha256Test, KnownDigests) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// RFC 4231 §4.2-4.8, HMAC-SHA-256 outputs.
TEST(HmacSha256Test, Rfc4231TestCase1) {
  EXPECT_EQ(HexEncode(HmacSha256(Key(Repeat(0x0b, 20)), AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256Test, Rfc4231TestCase2) {
  EXPECT_EQ(HexEncode(HmacSha256(Key("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Test, Rfc4231TestCase3) {
  EXPECT_EQ(HexEncode(HmacSha256(Key(Repeat(0xaa, 20)), Repeat(0xdd, 50))),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256Test, Rfc4231TestCase4) {
  EXPECT_EQ(HexEncode(HmacSha256(Key(Range(0x01, 0x19)), Repeat(0xcd, 50))),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256Test, Rfc4231TestCase5Truncated) {
  Bytes mac = HmacSha256(Key(Repeat(0x0c, 20)), AsBytes("Test With Truncation"));
  mac.resize(16);
  EXPECT_EQ(HexEncode(mac), "a3b6167473100ee06e0c796c2955552b");
}

TEST(HmacSha256Test, Rfc4231TestCase6LargeKey) {
  EXPECT_EQ(
      HexEncode(HmacSha256(Key(Repeat(0xaa, 131)), AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, Rfc4231TestCase7LargeKeyAndData) {
  EXPECT_EQ(HexEncode(HmacSha256(Key(Repeat(0xaa, 131)),
                                 AsBytes("This is a test using a larger than block-size key and a larger than "
                                         "block-size data. The key needs to be hashed before being used by the "
                                         "HMAC algorithm."))),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// RFC 5869 Appendix A.
TEST(HkdfSha256Test, Rfc5869TestCase1) {
  const Bytes info = Range(0xf0, 0xf9);
  SecretBytes okm = HkdfSha256(Key(Repeat(0x0b, 22)), Range(0x00, 0x0c), AsString(info), 42);
  EXPECT_EQ(HexEncode(okm.view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfSha256Test, Rfc5869TestCase3NoSaltNoInfo) {
  SecretBytes okm = HkdfSha256(Key(Repeat(0x0b, 22)), "", 42);
  EXPECT_EQ(HexEncode(okm.view()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfSha256Test, DifferentLabelsGiveDifferentKeys) {
  SecretBytes ikm = RandomSecret(32);
  SecretBytes a = HkdfSha256(ikm, "kura/index", 32);
  SecretBytes b = HkdfSha256(ikm, "kura/data", 32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_FALSE(a.Equals(b.view()));
  EXPECT_TRUE(a.Equals(HkdfSha256(ikm, "kura/index", 32).view()));
}

TEST(BlindIndexTest, IsHmacOfDomainNulValue) {
  SecretBytes key = RandomSecret(32);
  std::string message = std::string("customers/email") + '\0' + "alice@example.com";
  EXPECT_EQ(BlindIndex(key, "customers/email", "alice@example.com"), HmacSha256(key, AsBytes(message)));
}

TEST(BlindIndexTest, SeparatesDomainsKeysAndValues) {
  SecretBytes key = RandomSecret(32);
  SecretBytes other_key = RandomSecret(32);
  const Bytes base = BlindIndex(key, "customers/email", "a@example.com");
  EXPECT_EQ(base.size(), kSha256Size);
  EXPECT_EQ(base, BlindIndex(key, "customers/email", "a@example.com"));  // deterministic: lookups work
  EXPECT_NE(base, BlindIndex(key, "customers/phone", "a@example.com"));
  EXPECT_NE(base, BlindIndex(key, "customers/email", "b@example.com"));
  EXPECT_NE(base, BlindIndex(other_key, "customers/email", "a@example.com"));
  // The separator keeps the domain/value boundary: ("ab","c") != ("a","bc").
  EXPECT_NE(BlindIndex(key, "ab", "c"), BlindIndex(key, "a", "bc"));
}

TEST(BlindIndexDeathTest, DomainWithNulAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SecretBytes key = RandomSecret(32);
  EXPECT_DEATH(BlindIndex(key, std::string_view("a\0b", 3), "v"), "");
}

}  // namespace
}  // namespace kura::crypto
