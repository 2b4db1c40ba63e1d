#include "auth/token.h"

#include <gtest/gtest.h>

#include <set>

#include "core/bytes.h"

namespace kura::auth {
namespace {

TEST(TokenTest, RootTokenHasItsFormAndParses) {
  std::string token = GenerateRootToken();
  ASSERT_TRUE(token.starts_with("kura_root_"));
  EXPECT_EQ(token.size(), kRootTokenPrefix.size() + 43);
  auto secret = Base64UrlDecode(token.substr(kRootTokenPrefix.size()));
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->size(), 32u);
  auto parsed = ParseToken(token);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->kind, TokenKind::kRoot);
  EXPECT_EQ(parsed->key_id, "");
}

TEST(TokenTest, ApiKeyHasItsFormAndParsesToItsId) {
  // Many keys, so secrets containing '_' and '-' are certainly among them.
  bool saw_underscore_in_secret = false;
  for (int i = 0; i < 200; ++i) {
    NewApiKey key = GenerateApiKey();
    ASSERT_TRUE(key.token.starts_with("kura_key_" + key.id + "_"));
    EXPECT_TRUE(IsValidApiKeyId(key.id)) << key.id;
    EXPECT_EQ(key.id.find('_'), std::string::npos);
    std::string secret = key.token.substr(kApiKeyPrefix.size() + key.id.size() + 1);
    EXPECT_EQ(secret.size(), 43u);
    if (secret.find('_') != std::string::npos) saw_underscore_in_secret = true;
    auto parsed = ParseToken(key.token);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->kind, TokenKind::kApiKey);
    EXPECT_EQ(parsed->key_id, key.id);
  }
  EXPECT_TRUE(saw_underscore_in_secret);
}

TEST(TokenTest, SessionTokenHasItsFormAndParses) {
  std::string token = GenerateSessionToken();
  ASSERT_TRUE(token.starts_with("kura_sess_"));
  EXPECT_EQ(token.size(), kSessionTokenPrefix.size() + 43);
  auto secret = Base64UrlDecode(token.substr(kSessionTokenPrefix.size()));
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->size(), 32u);
  auto parsed = ParseToken(token);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->kind, TokenKind::kSession);
  EXPECT_EQ(parsed->key_id, "");
}

TEST(TokenTest, SessionAndRootTokensWithTheSameSecretAreDistinct) {
  // The prefix is part of the hashed text: a session secret replayed under
  // the root prefix is another token with another hash.
  std::string session = GenerateSessionToken();
  std::string as_root = "kura_root_" + session.substr(kSessionTokenPrefix.size());
  auto parsed = ParseToken(as_root);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, TokenKind::kRoot);
  EXPECT_NE(TokenHash(as_root), TokenHash(session));
}

TEST(TokenTest, TokensAreUnique) {
  std::set<std::string> seen;
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(seen.insert(GenerateRootToken()).second);
    EXPECT_TRUE(seen.insert(GenerateSessionToken()).second);
    NewApiKey key = GenerateApiKey();
    EXPECT_TRUE(seen.insert(key.token).second);
    EXPECT_TRUE(ids.insert(key.id).second);
  }
}

TEST(TokenTest, MalformedTokensAreUnauthenticated) {
  std::string root = GenerateRootToken();
  std::string session = GenerateSessionToken();
  NewApiKey key = GenerateApiKey();
  std::vector<std::string> bad = {
      "",
      "kura_root_",
      "kura_key_",
      "kura_sess_",
      session + "A",                              // too long
      session.substr(0, session.size() - 1),      // too short
      session.substr(0, session.size() - 1) + "=",
      "KURA_SESS_" + session.substr(10),
      "kura_session_" + session.substr(10),
      "kura_sess_" + key.id + "_" + key.token.substr(key.token.size() - 43),  // key shape, session prefix
      "Bearer " + root,
      root + "A",                                 // too long
      root.substr(0, root.size() - 1),            // too short
      root.substr(0, root.size() - 1) + "=",      // padding / bad char
      root.substr(0, root.size() - 1) + "!",
      "KURA_ROOT_" + root.substr(10),             // wrong case prefix
      key.token + "x",
      key.token.substr(0, key.token.size() - 1),
      "kura_key_" + key.id.substr(1) + "_" + key.token.substr(key.token.size() - 43) + "A",
      "kura_key_" + std::string(24, 'G') + "_" + key.token.substr(key.token.size() - 43),  // non-hex id
      "kura_key_" + std::string(24, 'A') + "_" + key.token.substr(key.token.size() - 43),  // upper-case hex
      "kura_key_" + key.id + "-" + key.token.substr(key.token.size() - 43),                // wrong separator
      "kura_root_" + key.token.substr(key.token.size() - 43) + "\n",
  };
  for (const auto& t : bad) {
    auto parsed = ParseToken(t);
    ASSERT_FALSE(parsed.ok()) << t;
    EXPECT_EQ(parsed.status().code(), StatusCode::kUnauthenticated);
    if (!t.empty()) {
      EXPECT_EQ(parsed.status().message().find(t), std::string::npos);  // never echoed
    }
  }
}

TEST(TokenTest, NonCanonicalSecretIsRejected) {
  // 43 base64url characters carry 258 bits; the last character's two low bits
  // must be zero. Flipping them gives other text for the same bytes.
  std::string root = GenerateRootToken();
  char& last = root.back();
  std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto pos = alphabet.find(last);
  ASSERT_NE(pos, std::string::npos);
  ASSERT_EQ(pos % 4, 0u);
  last = alphabet[pos + 1];
  EXPECT_FALSE(ParseToken(root).ok());

  std::string session = GenerateSessionToken();
  auto session_pos = alphabet.find(session.back());
  ASSERT_EQ(session_pos % 4, 0u);
  session.back() = alphabet[session_pos + 3];
  EXPECT_FALSE(ParseToken(session).ok());

  // Every last character: accepted exactly when the text is the canonical
  // encoding of the bytes it decodes to.
  std::string secret = GenerateRootToken().substr(kRootTokenPrefix.size());
  for (char c : alphabet) {
    secret.back() = c;
    auto bytes = Base64UrlDecode(secret);
    const bool canonical = bytes && bytes->size() == kTokenSecretBytes && Base64UrlEncode(*bytes) == secret;
    EXPECT_EQ(ParseToken(std::string(kRootTokenPrefix) + secret).ok(), canonical) << c;
  }
}

TEST(TokenTest, HashIsSha256OfTheWholeToken) {
  // SHA-256("abc"), FIPS 180-2.
  EXPECT_EQ(HexEncode(TokenHash("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // A well-formed API key: prefix, id and secret are all hashed
  // (`printf %s TOKEN | sha256sum`).
  const std::string token = "kura_key_0123456789abcdef01234567_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
  ASSERT_TRUE(ParseToken(token).ok());
  EXPECT_EQ(HexEncode(TokenHash(token)), "588c75c8d8fa080c19bfbf26140c3d32f7f2fdaa55f256f21139318a4e4617cf");
  NewApiKey key = GenerateApiKey();
  EXPECT_EQ(TokenHash(key.token).size(), 32u);
  // Same id, different secret → different hash.
  std::string other = key.token;
  other.back() = other.back() == 'A' ? 'Q' : 'A';
  EXPECT_NE(TokenHash(other), TokenHash(key.token));
}

TEST(TokenTest, ApiKeyIdValidation) {
  EXPECT_TRUE(IsValidApiKeyId("0123456789abcdef01234567"));
  EXPECT_FALSE(IsValidApiKeyId("0123456789abcdef0123456"));
  EXPECT_FALSE(IsValidApiKeyId("0123456789abcdef012345678"));
  EXPECT_FALSE(IsValidApiKeyId("0123456789ABCDEF01234567"));
  EXPECT_FALSE(IsValidApiKeyId("0123456789abcdef0123456_"));
  EXPECT_FALSE(IsValidApiKeyId(""));
}

}  // namespace
}  // namespace kura::auth
