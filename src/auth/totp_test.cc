#include "auth/totp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

#include "core/bytes.h"

namespace kura::auth {
namespace {

// RFC 6238 Appendix B seeds: the ASCII digits "1234567890" repeated to the
// hash's output size.
const Bytes kSeed20 = ToBytes("12345678901234567890");
const Bytes kSeed32 = ToBytes("12345678901234567890123456789012");
const Bytes kSeed64 = ToBytes("1234567890123456789012345678901234567890123456789012345678901234");

struct RfcVector {
  std::int64_t time;
  const char* sha1;
  const char* sha256;
  const char* sha512;
};

// RFC 6238 Appendix B, every row.
// clang-format off
constexpr RfcVector kRfc6238Vectors[] = {
    {59, "94287082", "46119246", "90693936"},
    {1111111109, "07081804", "68084774", "25091201"},
    {1111111111, "14050471", "67062674", "99943326"},
    {1234567890, "89005924", "91819424", "93441116"},
    {2000000000, "69279037", "90698825", "38618901"},
    {20000000000, "65353130", "77737706", "47863826"},
};
// clang-format on

TotpParams Rfc(TotpAlgorithm algorithm) {
  TotpParams p;
  p.algorithm = algorithm;
  p.digits = 8;
  return p;
}

TEST(TotpTest, Rfc6238AppendixBVectors) {
  for (const auto& v : kRfc6238Vectors) {
    SCOPED_TRACE(v.time);
    EXPECT_EQ(TotpCode(kSeed20, v.time, Rfc(TotpAlgorithm::kSha1)), v.sha1);
    EXPECT_EQ(TotpCode(kSeed32, v.time, Rfc(TotpAlgorithm::kSha256)), v.sha256);
    EXPECT_EQ(TotpCode(kSeed64, v.time, Rfc(TotpAlgorithm::kSha512)), v.sha512);
  }
}

TEST(TotpTest, Rfc6238VectorsVerify) {
  for (const auto& v : kRfc6238Vectors) {
    SCOPED_TRACE(v.time);
    TotpParams p = Rfc(TotpAlgorithm::kSha512);
    auto step = VerifyTotp(kSeed64, v.sha512, v.time, -1, p);
    ASSERT_TRUE(step.has_value());
    EXPECT_EQ(*step, v.time / 30);
  }
}

TEST(TotpTest, Rfc4226AppendixDHotpValues) {
  // TOTP with step T is HOTP with counter T: the six-digit HOTP values of
  // RFC 4226 Appendix D for counters 0..9.
  const char* expected[] = {"755224", "287082", "359152", "969429", "338314",
                            "254676", "287922", "162583", "399871", "520489"};
  for (int counter = 0; counter < 10; ++counter) {
    EXPECT_EQ(TotpCode(kSeed20, counter * 30 + 29), expected[counter]) << counter;
  }
}

TEST(TotpTest, StepIsFloorOfTimeOverPeriod) {
  EXPECT_EQ(TotpStep(0), 0);
  EXPECT_EQ(TotpStep(29), 0);
  EXPECT_EQ(TotpStep(30), 1);
  EXPECT_EQ(TotpStep(59), 1);
  EXPECT_EQ(TotpStep(-1), -1);
  TotpParams p;
  p.period_seconds = 60;
  EXPECT_EQ(TotpStep(1234567890, p), 1234567890 / 60);
}

TEST(TotpTest, CodesAreZeroPaddedToTheirDigits) {
  // 1111111109 gives a code with a leading zero for SHA-1, 8 digits.
  EXPECT_EQ(TotpCode(kSeed20, 1111111109, Rfc(TotpAlgorithm::kSha1)), "07081804");
  for (int digits = 6; digits <= 8; ++digits) {
    TotpParams p;
    p.digits = digits;
    for (std::int64_t t = 0; t < 3000; t += 30) {
      std::string code = TotpCode(kSeed20, t, p);
      ASSERT_EQ(code.size(), static_cast<std::size_t>(digits));
      ASSERT_EQ(code.find_first_not_of("0123456789"), std::string::npos);
    }
  }
  // The six-digit code is the eight-digit one's last six digits (mod 10^6).
  EXPECT_EQ(TotpCode(kSeed20, 59), "287082");
}

TEST(TotpTest, NewSecretsAreRandomAndOfTheRecommendedSize) {
  Bytes a = NewTotpSecret();
  Bytes b = NewTotpSecret();
  EXPECT_EQ(a.size(), kTotpSecretBytes);
  EXPECT_EQ(b.size(), 20u);
  EXPECT_NE(a, b);
}

TEST(TotpTest, Base32Rfc4648Vectors) {
  // RFC 4648 §10, without the '=' padding otpauth URIs leave out.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "MY"},
      {"fo", "MZXQ"},
      {"foo", "MZXW6"},
      {"foob", "MZXW6YQ"},
      {"fooba", "MZXW6YTB"},
      {"foobar", "MZXW6YTBOI"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base32Encode(AsBytes(plain)), encoded) << plain;
    auto decoded = Base32Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(AsString(*decoded), plain);
  }
  EXPECT_EQ(Base32Encode(kSeed20), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

TEST(TotpTest, Base32DecodeIsLenientAboutCasePaddingAndSpaces) {
  for (const char* text : {"MZXW6YQ=", "mzxw6yq", "MZXW 6YQ", "mzxw6yq=", "MzXw 6y Q==="}) {
    auto decoded = Base32Decode(text);
    ASSERT_TRUE(decoded.ok()) << text;
    EXPECT_EQ(AsString(*decoded), "foob") << text;
  }
}

TEST(TotpTest, Base32DecodeRefusesInvalidInput) {
  for (const char* text : {"MZXW6!", "MZXW0", "MZXW1YQ", "MZ-XW", "M", "MZX", "MZXW6YTBO"}) {
    auto decoded = Base32Decode(text);
    ASSERT_FALSE(decoded.ok()) << text;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(TotpTest, Base32RoundTripsRandomBytes) {
  for (std::size_t n = 0; n < 70; ++n) {
    Bytes data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i * 37 + n);
    std::string text = Base32Encode(data);
    EXPECT_EQ(text.size(), (n * 8 + 4) / 5);
    auto decoded = Base32Decode(text);
    ASSERT_TRUE(decoded.ok()) << n;
    EXPECT_EQ(*decoded, data);
  }
}

class VerifyTotpTest : public ::testing::Test {
 protected:
  // A fixed secret and time keep the test deterministic; the codes of the
  // steps used are checked to be distinct below.
  const Bytes secret_ = kSeed20;
  const std::int64_t now_ = 1'700'000'015;
  const std::int64_t step_ = 1'700'000'015 / 30;

  std::string CodeAt(std::int64_t step) const { return TotpCode(secret_, step * 30); }

  void SetUp() override {
    std::set<std::string> codes;
    for (std::int64_t d = -3; d <= 3; ++d) codes.insert(CodeAt(step_ + d));
    ASSERT_EQ(codes.size(), 7u);
  }
};

TEST_F(VerifyTotpTest, AcceptsTheCurrentCodeAndReturnsItsStep) {
  auto step = VerifyTotp(secret_, CodeAt(step_), now_, 0);
  ASSERT_TRUE(step.has_value());
  EXPECT_EQ(*step, step_);
}

TEST_F(VerifyTotpTest, AcceptsOneStepOfSkewEitherWay) {
  auto before = VerifyTotp(secret_, CodeAt(step_ - 1), now_, 0);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(*before, step_ - 1);
  auto after = VerifyTotp(secret_, CodeAt(step_ + 1), now_, 0);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after, step_ + 1);
}

TEST_F(VerifyTotpTest, RefusesTwoStepsAway) {
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_ - 2), now_, 0).has_value());
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_ + 2), now_, 0).has_value());
}

TEST_F(VerifyTotpTest, WiderSkewAcceptsMore) {
  TotpParams p;
  p.skew_steps = 2;
  EXPECT_EQ(VerifyTotp(secret_, CodeAt(step_ - 2), now_, 0, p), step_ - 2);
  p.skew_steps = 0;
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_ - 1), now_, 0, p).has_value());
  EXPECT_EQ(VerifyTotp(secret_, CodeAt(step_), now_, 0, p), step_);
}

TEST_F(VerifyTotpTest, RefusesReplayOfTheSameStep) {
  auto first = VerifyTotp(secret_, CodeAt(step_), now_, 0);
  ASSERT_TRUE(first.has_value());
  // The caller stored *first as last_used_step: the same code again fails,
  // even a second later within the same step.
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_), now_, *first).has_value());
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_), now_ + 1, *first).has_value());
}

TEST_F(VerifyTotpTest, RefusesStepsOlderThanTheLastUsedOne) {
  // The next code was used (skew ahead): the current and previous codes,
  // though within the window, are older and refused.
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_), now_, step_ + 1).has_value());
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_ - 1), now_, step_).has_value());
  // A later step than the last used one is still fine.
  EXPECT_EQ(VerifyTotp(secret_, CodeAt(step_ + 1), now_, step_), step_ + 1);
}

TEST_F(VerifyTotpTest, RefusesWrongAndMalformedCodes) {
  std::string good = CodeAt(step_);
  std::string wrong = good;
  wrong[0] = good[0] == '9' ? '0' : static_cast<char>(good[0] + 1);
  std::string fullwidth_digit = "\xef\xbc\x91" + good.substr(1);  // U+FF11 FULLWIDTH DIGIT ONE
  for (const std::string& code : {wrong, good.substr(0, 5), good + "0", std::string("12345a"), " " + good.substr(1),
                                  good.substr(1) + " ", std::string(""), std::string("-12345"), std::string("+12345"),
                                  fullwidth_digit, good.substr(0, 3) + "-" + good.substr(3)}) {
    EXPECT_FALSE(VerifyTotp(secret_, code, now_, 0).has_value()) << code;
  }
}

TEST_F(VerifyTotpTest, RefusesAnEmptySecretAndInvalidParameters) {
  EXPECT_FALSE(VerifyTotp({}, CodeAt(step_), now_, 0).has_value());
  TotpParams p;
  p.digits = 5;
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_).substr(1), now_, 0, p).has_value());
  p.digits = 6;
  p.period_seconds = 0;
  EXPECT_FALSE(VerifyTotp(secret_, CodeAt(step_), now_, 0, p).has_value());
}

TEST_F(VerifyTotpTest, OtherSecretsDoNotVerify) {
  Bytes other = kSeed20;
  other[0] ^= 1;
  int accepted = 0;
  for (std::int64_t d = -20; d <= 20; ++d) {
    if (VerifyTotp(other, CodeAt(step_ + d), now_, 0).has_value()) ++accepted;
  }
  // 41 codes against 3 acceptable ones of another secret: a chance match is
  // about 1e-4 and this data is fixed, so any acceptance would be a bug.
  EXPECT_EQ(accepted, 0);
}

TEST(TotpUriTest, HasTheKeyUriShape) {
  EXPECT_EQ(TotpUri("kura", "alice", kSeed20),
            "otpauth://totp/kura:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=kura&algorithm=SHA1&digits=6"
            "&period=30");
}

TEST(TotpUriTest, PercentEncodesIssuerAndAccount) {
  EXPECT_EQ(TotpUri("Example Co", "alice@example.com", kSeed20),
            "otpauth://totp/Example%20Co:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            "&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30");
  // Characters that would change the URI's structure are encoded.
  std::string uri = TotpUri("a:b&c?d#e/f", "x:y&z=1", kSeed20);
  EXPECT_TRUE(uri.starts_with("otpauth://totp/a%3Ab%26c%3Fd%23e%2Ff:x%3Ay%26z%3D1?secret=")) << uri;
  EXPECT_NE(uri.find("&issuer=a%3Ab%26c%3Fd%23e%2Ff&"), std::string::npos) << uri;
  // UTF-8 bytes are encoded one by one, upper-case hex.
  EXPECT_TRUE(TotpUri("蔵", "bob", kSeed20).starts_with("otpauth://totp/%E8%94%B5:bob?"));
}

TEST(TotpUriTest, CarriesNonDefaultParameters) {
  TotpParams p;
  p.algorithm = TotpAlgorithm::kSha256;
  p.digits = 8;
  p.period_seconds = 60;
  std::string uri = TotpUri("kura", "alice", kSeed32, p);
  EXPECT_NE(uri.find("&algorithm=SHA256&digits=8&period=60"), std::string::npos) << uri;
  p.algorithm = TotpAlgorithm::kSha512;
  EXPECT_NE(TotpUri("kura", "alice", kSeed64, p).find("&algorithm=SHA512&"), std::string::npos);
}

TEST(TotpUriTest, WithoutIssuerTheLabelIsTheAccount) {
  EXPECT_EQ(TotpUri("", "alice", kSeed20),
            "otpauth://totp/alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30");
}

TEST(QrCodeSvgTest, IsAnSvgWithViewBoxQuietZoneAndFinderPatterns) {
  std::string uri = TotpUri("kura", "alice@example.com", NewTotpSecret());
  auto svg = QrCodeSvg(uri);
  ASSERT_TRUE(svg.ok()) << svg.status().ToString();
  EXPECT_TRUE(svg->starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")) << *svg;
  EXPECT_TRUE(svg->ends_with("</svg>"));
  EXPECT_EQ(svg->find('\n'), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*svg, m, std::regex("viewBox=\"0 0 (\\d+) (\\d+)\""))) << *svg;
  int size = std::stoi(m[1]);
  EXPECT_EQ(m[1], m[2]);
  // QR versions are 21 + 4k modules wide, plus a 4-module quiet zone each side.
  int width = size - 8;
  EXPECT_GE(width, 21);
  EXPECT_EQ((width - 21) % 4, 0);
  // <svg>, its white <rect>, one <path>, </svg>: nothing else.
  EXPECT_EQ(std::count(svg->begin(), svg->end(), '<'), 4);
  ASSERT_NE(svg->find("<path "), std::string::npos);
  // The top rows of the three finder patterns: 7 dark modules, bordered by
  // the white separator, at the quiet zone's offset.
  EXPECT_NE(svg->find("M4 4h7v1h-7z"), std::string::npos);
  EXPECT_NE(svg->find("M" + std::to_string(4 + width - 7) + " 4h7v1h-7z"), std::string::npos);
  EXPECT_NE(svg->find("M4 " + std::to_string(4 + width - 7) + "h7v1h-7z"), std::string::npos);
}

TEST(QrCodeSvgTest, DifferentTextsGiveDifferentCodes) {
  auto a = QrCodeSvg("otpauth://totp/kura:alice?secret=AAAA");
  auto b = QrCodeSvg("otpauth://totp/kura:bob?secret=AAAA");
  auto a2 = QrCodeSvg("otpauth://totp/kura:alice?secret=AAAA");
  ASSERT_TRUE(a.ok() && b.ok() && a2.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(*a, *a2);
}

TEST(QrCodeSvgTest, RefusesEmptyTooLongAndNulText) {
  EXPECT_FALSE(QrCodeSvg("").ok());
  EXPECT_FALSE(QrCodeSvg(std::string_view("ab\0cd", 5)).ok());
  // More than a version-40 symbol holds at level M (2331 bytes).
  auto too_long = QrCodeSvg(std::string(4000, 'x'));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kInternal);
}

TEST(RecoveryCodesTest, CountFormatAndUniqueness) {
  RecoveryCodes rc = GenerateRecoveryCodes();
  ASSERT_EQ(rc.codes.size(), 10u);
  ASSERT_EQ(rc.hashes.size(), 10u);
  std::regex shape("[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}");
  std::regex hex("[0-9a-f]{64}");
  std::set<std::string> codes(rc.codes.begin(), rc.codes.end());
  std::set<std::string> hashes(rc.hashes.begin(), rc.hashes.end());
  EXPECT_EQ(codes.size(), 10u);
  EXPECT_EQ(hashes.size(), 10u);
  for (std::size_t i = 0; i < rc.codes.size(); ++i) {
    EXPECT_TRUE(std::regex_match(rc.codes[i], shape)) << rc.codes[i];
    EXPECT_TRUE(std::regex_match(rc.hashes[i], hex)) << rc.hashes[i];
    EXPECT_EQ(RecoveryCodeHash(rc.codes[i]), rc.hashes[i]);
  }
  EXPECT_EQ(GenerateRecoveryCodes(3).codes.size(), 3u);
  EXPECT_TRUE(GenerateRecoveryCodes(0).codes.empty());
  EXPECT_TRUE(GenerateRecoveryCodes(-1).hashes.empty());
  // Another set shares nothing with the first.
  for (const auto& code : GenerateRecoveryCodes().codes) EXPECT_EQ(codes.count(code), 0u);
}

TEST(RecoveryCodesTest, HashIsSha256OfTheNormalisedCode) {
  // SHA-256("AAAAAAAAAAAAAAAA").
  const std::string expected = "991204fba2b6216d476282d375ab88d20e6108d109aecded97ef424ddd114706";
  for (const char* text : {"AAAA-AAAA-AAAA-AAAA", "aaaa-aaaa-aaaa-aaaa", "AAAAAAAAAAAAAAAA", "aaaaaaaaaaaaaaaa",
                           "AAAA AAAA AAAA AAAA", " aaAA-aaAA aaAA-aaAA "}) {
    EXPECT_EQ(RecoveryCodeHash(text), expected) << text;
  }
  RecoveryCodes rc = GenerateRecoveryCodes(1);
  std::string lower = rc.codes[0];
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string bare;
  for (char c : rc.codes[0]) {
    if (c != '-') bare.push_back(c);
  }
  EXPECT_EQ(RecoveryCodeHash(lower), rc.hashes[0]);
  EXPECT_EQ(RecoveryCodeHash(bare), rc.hashes[0]);
}

TEST(RecoveryCodesTest, GarbageHasNoHash) {
  for (const char* text : {"", "-", "AAAA-AAAA-AAAA", "AAAA-AAAA-AAAA-AAA", "AAAA-AAAA-AAAA-AAAAA",
                           "AAAA-AAAA-AAAA-AAA0", "AAAA-AAAA-AAAA-AAA1", "AAAA-AAAA-AAAA-AAA8", "AAAA_AAAA_AAAA_AAAA",
                           "AAAA-AAAA-AAAA-AAA!", "123456", "AAAA-AAAA-AAAA-AAA\xc3\x84"}) {
    EXPECT_EQ(RecoveryCodeHash(text), "") << text;
  }
}

}  // namespace
}  // namespace kura::auth
