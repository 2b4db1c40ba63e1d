// Bearer tokens: the root token, tenant API keys and sign-in sessions.
//
// Text forms (all characters URL- and header-safe):
//   root token  kura_root_<secret>
//   API key     kura_key_<id>_<secret>
//   session     kura_sess_<secret>
// where <secret> is base64url (no padding) of 32 random bytes (43 characters)
// and <id> is 24 lowercase hex characters (12 random bytes). The id alphabet
// has no '_', and the secret has a fixed length, so a key splits unambiguously
// even though base64url secrets may themselves contain '_'. The id is not a
// secret: it names the key in lists, logs and the revoke route. A session
// token is opaque: the vault finds the session by the token's hash.
//
// Tokens are stored only as TokenHash(): SHA-256 of the whole token text. The
// 256-bit secret makes a slow password hash unnecessary, and a fast hash keeps
// authentication cheap on every request.
//
// Thread safety: free functions; safe for concurrent use.
#ifndef KURA_AUTH_TOKEN_H_
#define KURA_AUTH_TOKEN_H_

#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"

namespace kura::auth {

constexpr std::string_view kRootTokenPrefix = "kura_root_";
constexpr std::string_view kApiKeyPrefix = "kura_key_";
constexpr std::string_view kSessionTokenPrefix = "kura_sess_";
constexpr std::size_t kTokenSecretBytes = 32;
constexpr std::size_t kTokenSecretChars = 43;  // base64url of 32 bytes, unpadded
constexpr std::size_t kApiKeyIdBytes = 12;
constexpr std::size_t kApiKeyIdChars = 24;     // lowercase hex

enum class TokenKind { kRoot, kApiKey, kSession };

struct ParsedToken {
  TokenKind kind = TokenKind::kApiKey;
  std::string key_id;  // API keys only
};

struct NewApiKey {
  std::string id;     // public identifier
  std::string token;  // the full key, shown to the caller once
};

// A fresh root token.
std::string GenerateRootToken();
// A fresh API key and its id.
NewApiKey GenerateApiKey();
// A fresh session token (256 random bits), shown to the client once at
// sign-in; the store keeps only its TokenHash().
std::string GenerateSessionToken();

// Splits a presented token into its kind (and key id). Unauthenticated with a
// generic message when the text is not a well-formed kura token; the message
// never echoes the token.
Result<ParsedToken> ParseToken(std::string_view token);

// SHA-256 of the whole token text: what the store keeps.
Bytes TokenHash(std::string_view token);

// Whether `id` has the form of an API key id (for ids taken from URLs).
bool IsValidApiKeyId(std::string_view id);

}  // namespace kura::auth

#endif  // KURA_AUTH_TOKEN_H_
