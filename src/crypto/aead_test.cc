#include "crypto/aead.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <tuple>

#include "core/bytes.h"
#include "crypto/aead_internal.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

Bytes Hex(std::string text) {
  std::erase(text, ' ');
  std::optional<Bytes> out = HexDecode(text);
  EXPECT_TRUE(out.has_value()) << text;
  return out.value_or(Bytes{});
}

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases
// 13-16 (256-bit keys), and NIST CAVP gcmEncryptExtIV256.rsp.
const GcmVector kVectors[] = {
    {"McGrewViega13", "00000000000000000000000000000000 00000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"McGrewViega14", "00000000000000000000000000000000 00000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"McGrewViega15", "feffe9928665731c6d6a8f9467308308 feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "",
     "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72 "
     "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa "
     "8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"McGrewViega16", "feffe9928665731c6d6a8f9467308308 feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeef abaddad2",
     "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72 "
     "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa "
     "8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    // [Keylen = 256] [IVlen = 96] [PTlen = 128] [AADlen = 128] [Taglen = 128] Count = 0
    {"CavpExtIV256_Pt128_Aad128_0", "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
     "ac93a1a6145299bde902f21a", "1e0889016f67601c8ebea4943bc23ad6", "2d71bcfa914e4ac045b2aa60955fad24",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
    // [Keylen = 256] [IVlen = 96] [PTlen = 0] [AADlen = 128] [Taglen = 128] Count = 1
    {"CavpExtIV256_Pt0_Aad128_1", "4457ff33683cca6ca493878bdc00373893a9763412eef8cddb54f91318e0da88",
     "699d1f29d7b8c55300bb1fd2", "6749daeea367d0e9809e2dc2f309e6e3", "", "", "d60c74d2517fde4a74e0cd4709ed43a9"},
};

// Names the vector in test output instead of dumping the struct's bytes.
void PrintTo(const GcmVector& v, std::ostream* os) { *os << v.name; }

using internal::GcmImpl;

// Every vector through each implementation, and through the public function
// (which picks one).
enum class Via { kPublic, kLibsodium, kOpenSsl };

class GcmVectorTest : public testing::TestWithParam<std::tuple<GcmVector, Via>> {
 protected:
  void SetUp() override {
    const GcmVector& v = std::get<0>(GetParam());
    if (via() == Via::kLibsodium && (!internal::LibsodiumGcmAvailable() || Hex(v.iv).size() != kAeadNonceSize)) {
      GTEST_SKIP() << "libsodium's AES-256-GCM: 96-bit IVs on AES-NI CPUs only";
    }
  }
  Via via() const { return std::get<1>(GetParam()); }
  Status Encrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext, Bytes* ciphertext, Bytes* tag) {
    if (via() == Via::kPublic) return Aes256GcmEncrypt(key, iv, aad, plaintext, ciphertext, tag);
    return internal::Aes256GcmEncryptWith(Impl(), key, iv, aad, plaintext, ciphertext, tag);
  }
  Status Decrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag, Bytes* plaintext) {
    if (via() == Via::kPublic) return Aes256GcmDecrypt(key, iv, aad, ciphertext, tag, plaintext);
    return internal::Aes256GcmDecryptWith(Impl(), key, iv, aad, ciphertext, tag, plaintext);
  }

 private:
  GcmImpl Impl() const { return via() == Via::kLibsodium ? GcmImpl::kLibsodium : GcmImpl::kOpenSsl; }
};

TEST_P(GcmVectorTest, EncryptMatchesPublishedCiphertextAndTag) {
  const GcmVector& v = std::get<0>(GetParam());
  Bytes ciphertext, tag;
  ASSERT_TRUE(Encrypt(Hex(v.key), Hex(v.iv), Hex(v.aad), Hex(v.plaintext), &ciphertext, &tag).ok());
  EXPECT_EQ(HexEncode(ciphertext), HexEncode(Hex(v.ciphertext)));
  EXPECT_EQ(HexEncode(tag), HexEncode(Hex(v.tag)));
}

TEST_P(GcmVectorTest, DecryptRecoversPlaintext) {
  const GcmVector& v = std::get<0>(GetParam());
  Bytes plaintext;
  ASSERT_TRUE(Decrypt(Hex(v.key), Hex(v.iv), Hex(v.aad), Hex(v.ciphertext), Hex(v.tag), &plaintext).ok());
  EXPECT_EQ(HexEncode(plaintext), HexEncode(Hex(v.plaintext)));
}

TEST_P(GcmVectorTest, DecryptRejectsAlteredTagAndAad) {
  const GcmVector& v = std::get<0>(GetParam());
  Bytes tag = Hex(v.tag);
  tag[0] ^= 0x01;
  Bytes plaintext = {0xaa};
  Status s = Decrypt(Hex(v.key), Hex(v.iv), Hex(v.aad), Hex(v.ciphertext), tag, &plaintext);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(plaintext, Bytes{0xaa}) << "output must not be touched on failure";

  Bytes aad = Hex(v.aad);
  aad.push_back(0x00);
  s = Decrypt(Hex(v.key), Hex(v.iv), aad, Hex(v.ciphertext), Hex(v.tag), &plaintext);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
}

std::string VectorName(const testing::TestParamInfo<std::tuple<GcmVector, Via>>& info) {
  static const char* const kVia[] = {"Public", "Libsodium", "OpenSsl"};
  return std::string(std::get<0>(info.param).name) + "_" + kVia[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(Published, GcmVectorTest,
                         testing::Combine(testing::ValuesIn(kVectors),
                                          testing::Values(Via::kPublic, Via::kLibsodium, Via::kOpenSsl)),
                         VectorName);

// The two implementations agree on record-sized inputs with random keys,
// nonces and associated data, and each opens what the other sealed.
TEST(Aes256GcmTest, LibsodiumAndOpenSslAgree) {
  if (!internal::LibsodiumGcmAvailable()) GTEST_SKIP() << "no AES-NI: only OpenSSL runs here";
  for (std::size_t size : {0, 1, 15, 16, 17, 300, 4096, 65537}) {
    const Bytes key = RandomBytes(kAeadKeySize), iv = RandomBytes(kAeadNonceSize);
    const Bytes aad = RandomBytes(size % 300), plaintext = RandomBytes(size);
    Bytes ct1, tag1, ct2, tag2, back;
    ASSERT_TRUE(internal::Aes256GcmEncryptWith(GcmImpl::kLibsodium, key, iv, aad, plaintext, &ct1, &tag1).ok());
    ASSERT_TRUE(internal::Aes256GcmEncryptWith(GcmImpl::kOpenSsl, key, iv, aad, plaintext, &ct2, &tag2).ok());
    EXPECT_EQ(ct1, ct2) << size;
    EXPECT_EQ(tag1, tag2) << size;
    ASSERT_TRUE(internal::Aes256GcmDecryptWith(GcmImpl::kOpenSsl, key, iv, aad, ct1, tag1, &back).ok());
    EXPECT_EQ(back, plaintext);
    ASSERT_TRUE(internal::Aes256GcmDecryptWith(GcmImpl::kLibsodium, key, iv, aad, ct2, tag2, &back).ok());
    EXPECT_EQ(back, plaintext);
  }
  // libsodium is never asked for what it cannot do.
  Bytes ct, tag;
  EXPECT_EQ(internal::Aes256GcmEncryptWith(GcmImpl::kLibsodium, Bytes(32), Bytes(16), {}, {}, &ct, &tag).code(),
            StatusCode::kInvalidArgument);
}

TEST(Aes256GcmTest, RejectsWrongKeySizeAndTruncatedTag) {
  Bytes ct, tag;
  EXPECT_EQ(Aes256GcmEncrypt(Bytes(16), Bytes(12), {}, {}, &ct, &tag).code(), StatusCode::kInvalidArgument);
  Bytes pt;
  EXPECT_EQ(Aes256GcmDecrypt(Bytes(32), Bytes(12), {}, {}, Bytes(12), &pt).code(), StatusCode::kInvalidArgument);
}

SecretBytes TestKey() { return RandomSecret(kAeadKeySize); }

TEST(AeadSealTest, RoundTripAndLayout) {
  SecretBytes key = TestKey();
  const Bytes plaintext = ToBytes("the quick brown fox");
  const Bytes aad = ToBytes("context");
  Result<Bytes> sealed = AeadSeal(key, plaintext, aad);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  ASSERT_EQ(sealed->size(), plaintext.size() + kAeadOverhead);
  EXPECT_EQ((*sealed)[0], kAeadFormatV1);

  Result<SecretBytes> opened = AeadOpen(key, *sealed, aad);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->Equals(plaintext));
}

TEST(AeadSealTest, EmptyPlaintextRoundTrips) {
  SecretBytes key = TestKey();
  Result<Bytes> sealed = AeadSeal(key, {}, ToBytes("ad"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), kAeadOverhead);
  Result<SecretBytes> opened = AeadOpen(key, *sealed, ToBytes("ad"));
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->empty());
}

TEST(AeadSealTest, FreshNonceEachTime) {
  SecretBytes key = TestKey();
  Result<Bytes> a = AeadSeal(key, ToBytes("same"), {});
  Result<Bytes> b = AeadSeal(key, ToBytes("same"), {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(std::equal(a->begin() + 1, a->begin() + 1 + kAeadNonceSize, b->begin() + 1));
}

// The layout is exactly version || nonce || ciphertext || tag, with the
// version byte prepended to the associated data: rebuild it with raw GCM.
TEST(AeadSealTest, FormatIsVersionNonceCiphertextTagWithVersionInAad) {
  SecretBytes key = TestKey();
  const Bytes plaintext = ToBytes("payload");
  const Bytes ad = ToBytes("ad");
  const Bytes nonce = RandomBytes(kAeadNonceSize);
  Bytes aad_with_version = {kAeadFormatV1};
  aad_with_version.insert(aad_with_version.end(), ad.begin(), ad.end());

  auto build = [&](ByteView gcm_aad) {
    Bytes ct, tag;
    EXPECT_TRUE(Aes256GcmEncrypt(key.view(), nonce, gcm_aad, plaintext, &ct, &tag).ok());
    Bytes sealed = {kAeadFormatV1};
    sealed.insert(sealed.end(), nonce.begin(), nonce.end());
    sealed.insert(sealed.end(), ct.begin(), ct.end());
    sealed.insert(sealed.end(), tag.begin(), tag.end());
    return sealed;
  };

  Result<SecretBytes> opened = AeadOpen(key, build(aad_with_version), ad);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->Equals(plaintext));

  // Without the version byte in the AAD the tag does not verify.
  EXPECT_EQ(AeadOpen(key, build(ad), ad).status().code(), StatusCode::kDataLoss);
}

TEST(AeadSealTest, EveryFlippedBitIsRejected) {
  SecretBytes key = TestKey();
  const Bytes aad = ToBytes("tenant/collection");
  Result<Bytes> sealed = AeadSeal(key, ToBytes("secret value"), aad);
  ASSERT_TRUE(sealed.ok());
  for (std::size_t i = 0; i < sealed->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes altered = *sealed;
      altered[i] ^= static_cast<std::uint8_t>(1u << bit);
      Result<SecretBytes> r = AeadOpen(key, altered, aad);
      ASSERT_FALSE(r.ok()) << "byte " << i << " bit " << bit;
      // Byte 0 is the version: an unknown version is refused before any
      // decryption; nonce, ciphertext and tag bits fail authentication.
      const StatusCode want = i == 0 ? StatusCode::kInvalidArgument : StatusCode::kDataLoss;
      EXPECT_EQ(r.status().code(), want) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(AeadSealTest, AlteredAssociatedDataIsRejected) {
  SecretBytes key = TestKey();
  const Bytes aad = ToBytes("tenant/collection/record/7");
  Result<Bytes> sealed = AeadSeal(key, ToBytes("v"), aad);
  ASSERT_TRUE(sealed.ok());
  for (std::size_t i = 0; i < aad.size(); ++i) {
    Bytes altered = aad;
    altered[i] ^= 0x01;
    EXPECT_EQ(AeadOpen(key, *sealed, altered).status().code(), StatusCode::kDataLoss) << i;
  }
  EXPECT_EQ(AeadOpen(key, *sealed, {}).status().code(), StatusCode::kDataLoss);
  Bytes longer = aad;
  longer.push_back(0);
  EXPECT_EQ(AeadOpen(key, *sealed, longer).status().code(), StatusCode::kDataLoss);
}

TEST(AeadSealTest, WrongKeyIsRejected) {
  SecretBytes key = TestKey();
  SecretBytes other = TestKey();
  Result<Bytes> sealed = AeadSeal(key, ToBytes("v"), {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AeadOpen(other, *sealed, {}).status().code(), StatusCode::kDataLoss);
}

TEST(AeadSealTest, TruncatedOrExtendedInputIsRejected) {
  SecretBytes key = TestKey();
  Result<Bytes> sealed = AeadSeal(key, ToBytes("some plaintext"), {});
  ASSERT_TRUE(sealed.ok());
  for (std::size_t len = 0; len < sealed->size(); ++len) {
    Result<SecretBytes> r = AeadOpen(key, ByteView(sealed->data(), len), {});
    ASSERT_FALSE(r.ok()) << len;
    const StatusCode want = len < kAeadOverhead ? StatusCode::kInvalidArgument : StatusCode::kDataLoss;
    EXPECT_EQ(r.status().code(), want) << len;
  }
  Bytes extended = *sealed;
  extended.push_back(0);
  EXPECT_EQ(AeadOpen(key, extended, {}).status().code(), StatusCode::kDataLoss);
}

TEST(AeadSealTest, KeyMustBe32Bytes) {
  SecretBytes short_key = RandomSecret(16);
  EXPECT_EQ(AeadSeal(short_key, ToBytes("x"), {}).status().code(), StatusCode::kInvalidArgument);
  Result<Bytes> sealed = AeadSeal(TestKey(), ToBytes("x"), {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AeadOpen(short_key, *sealed, {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kura::crypto
