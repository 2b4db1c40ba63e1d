#include "crypto/signing.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/bytes.h"
#include "core/test_dir_for_test.h"

namespace kura::crypto {
namespace {

Bytes Unhex(std::string_view hex) { return HexDecode(hex).value(); }

SigningKey KeyFromHexSeed(std::string_view hex) {
  auto key = SigningKey::FromSeed(SecretBytes::FromBytes(Unhex(hex)));
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

// RFC 8032 §7.1, TEST 1: the empty message.
TEST(SigningTest, Rfc8032Test1) {
  SigningKey key = KeyFromHexSeed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  EXPECT_EQ(HexEncode(key.public_key()), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const Bytes signature = key.Sign({});
  EXPECT_EQ(HexEncode(signature),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
            "d25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(VerifySignature(key.public_key(), {}, signature));
}

// RFC 8032 §7.1, TEST 2: one byte, 0x72.
TEST(SigningTest, Rfc8032Test2) {
  SigningKey key = KeyFromHexSeed("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  EXPECT_EQ(HexEncode(key.public_key()), "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  const Bytes message = Unhex("72");
  const Bytes signature = key.Sign(message);
  EXPECT_EQ(HexEncode(signature),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
            "387b2eaeb4302aeeb00d291612bb0c00");
  EXPECT_TRUE(VerifySignature(key.public_key(), message, signature));
}

// RFC 8032 §7.1, TEST 3: two bytes, 0xaf82.
TEST(SigningTest, Rfc8032Test3) {
  SigningKey key = KeyFromHexSeed("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");
  EXPECT_EQ(HexEncode(key.public_key()), "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025");
  const Bytes message = Unhex("af82");
  const Bytes signature = key.Sign(message);
  EXPECT_EQ(HexEncode(signature),
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
            "4a7c15e9716ed28dc027beceea1ec40a");
  EXPECT_TRUE(VerifySignature(key.public_key(), message, signature));
}

TEST(SigningTest, FromSeedRejectsWrongSizes) {
  EXPECT_EQ(SigningKey::FromSeed(SecretBytes(31)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::FromSeed(SecretBytes(33)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::FromSeed(SecretBytes()).status().code(), StatusCode::kInvalidArgument);
}

TEST(SigningTest, GenerateGivesDistinctWorkingKeys) {
  SigningKey a = SigningKey::Generate();
  SigningKey b = SigningKey::Generate();
  EXPECT_EQ(a.seed().size(), kEd25519SeedSize);
  EXPECT_EQ(a.public_key().size(), kEd25519PublicKeySize);
  EXPECT_NE(a.public_key(), b.public_key());
  // The seed alone reproduces the key (it is what the vault stores wrapped).
  auto again = SigningKey::FromSeed(a.seed());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key(), a.public_key());
  const Bytes message = ToBytes("kura-audit-checkpoint v1\n");
  EXPECT_EQ(again->Sign(message), a.Sign(message));  // Ed25519 is deterministic
  EXPECT_TRUE(VerifySignature(a.public_key(), message, a.Sign(message)));
  EXPECT_FALSE(VerifySignature(b.public_key(), message, a.Sign(message)));
}

TEST(SigningTest, TamperingIsRejected) {
  SigningKey key = SigningKey::Generate();
  const Bytes message = ToBytes("tree size 42");
  const Bytes signature = key.Sign(message);
  ASSERT_TRUE(VerifySignature(key.public_key(), message, signature));

  Bytes other_message = message;
  other_message.back() ^= 1;
  EXPECT_FALSE(VerifySignature(key.public_key(), other_message, signature));
  Bytes longer = message;
  longer.push_back('\n');
  EXPECT_FALSE(VerifySignature(key.public_key(), longer, signature));

  for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{63}}) {
    Bytes bad = signature;
    bad[i] ^= 0x01;
    EXPECT_FALSE(VerifySignature(key.public_key(), message, bad)) << "byte " << i;
  }
  Bytes bad_key = key.public_key();
  bad_key[0] ^= 0x01;
  EXPECT_FALSE(VerifySignature(bad_key, message, signature));

  // Malformed sizes are simply invalid, never a crash.
  EXPECT_FALSE(VerifySignature(key.public_key(), message, ByteView(signature).first(63)));
  EXPECT_FALSE(VerifySignature(key.public_key(), message, {}));
  EXPECT_FALSE(VerifySignature(ByteView(key.public_key()).first(31), message, signature));
  EXPECT_FALSE(VerifySignature({}, message, signature));
}

TEST(SigningTest, PemRoundTrip) {
  SigningKey key = SigningKey::Generate();
  const std::string pem = PublicKeyToPem(key.public_key());
  EXPECT_EQ(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u) << pem;
  EXPECT_NE(pem.find("-----END PUBLIC KEY-----\n"), std::string::npos);
  auto back = PublicKeyFromPem(pem);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, key.public_key());
}

// The SubjectPublicKeyInfo of the RFC 8032 TEST 1 key (RFC 8410 §10.1 shows
// the same structure): a fixed 12-byte prefix and the raw key.
TEST(SigningTest, PemIsSubjectPublicKeyInfo) {
  const Bytes public_key = Unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  EXPECT_EQ(PublicKeyToPem(public_key),
            "-----BEGIN PUBLIC KEY-----\n"
            "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
            "-----END PUBLIC KEY-----\n");
}

TEST(SigningTest, PemRejectsOtherInput) {
  EXPECT_EQ(PublicKeyToPem(Bytes(31, 1)), "");
  EXPECT_EQ(PublicKeyFromPem("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PublicKeyFromPem("not pem").status().code(), StatusCode::kInvalidArgument);
  // An X25519 key has the same size but is not a signing key.
  EXPECT_EQ(PublicKeyFromPem("-----BEGIN PUBLIC KEY-----\n"
                             "MCowBQYDK2VuAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
                             "-----END PUBLIC KEY-----\n")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  // Two keys in one file are ambiguous.
  const std::string pem = PublicKeyToPem(SigningKey::Generate().public_key());
  EXPECT_EQ(PublicKeyFromPem(pem + pem).status().code(), StatusCode::kInvalidArgument);
  // Damaged base64.
  std::string damaged = pem;
  damaged[30] = '*';
  EXPECT_EQ(PublicKeyFromPem(damaged).status().code(), StatusCode::kInvalidArgument);
  // Trailing white space is fine.
  EXPECT_TRUE(PublicKeyFromPem(pem + "\n\n").ok());
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

int ShellStatus(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Anyone can check a kura signature with the OpenSSL command line, given the
// PEM public key: that is the independent verification the audit log promises.
TEST(SigningTest, OpenSslCommandLineVerifies) {
  if (ShellStatus("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  TestDir dir;
  SigningKey key = SigningKey::Generate();
  const std::string message = "kura-audit-checkpoint v1\n0123456789abcdef\n7\nroot\n1700000000000\n";
  WriteFile(dir.path() + "/pub.pem", PublicKeyToPem(key.public_key()));
  WriteFile(dir.path() + "/msg", message);
  WriteFile(dir.path() + "/sig", AsString(key.Sign(AsBytes(message))));
  const std::string verify = "cd '" + dir.path() +
                             "' && openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg -sigfile sig "
                             ">out 2>&1";
  EXPECT_EQ(ShellStatus(verify), 0);

  // And OpenSSL refuses the signature for a changed message.
  WriteFile(dir.path() + "/msg", message + "x");
  EXPECT_NE(ShellStatus(verify), 0);

  // The other way round: OpenSSL signs with a key we derived, we verify.
  WriteFile(dir.path() + "/msg", message);
  ASSERT_EQ(ShellStatus("cd '" + dir.path() +
                        "' && openssl genpkey -algorithm ed25519 -out key.pem 2>/dev/null && "
                        "openssl pkey -in key.pem -pubout -out pub2.pem && "
                        "openssl pkeyutl -sign -inkey key.pem -rawin -in msg -out sig2"),
            0);
  std::ifstream pub_in(dir.path() + "/pub2.pem");
  std::string pub2((std::istreambuf_iterator<char>(pub_in)), std::istreambuf_iterator<char>());
  std::ifstream sig_in(dir.path() + "/sig2", std::ios::binary);
  std::string sig2((std::istreambuf_iterator<char>(sig_in)), std::istreambuf_iterator<char>());
  auto public_key = PublicKeyFromPem(pub2);
  ASSERT_TRUE(public_key.ok());
  EXPECT_TRUE(VerifySignature(*public_key, AsBytes(message), AsBytes(sig2)));
}

}  // namespace
}  // namespace kura::crypto
