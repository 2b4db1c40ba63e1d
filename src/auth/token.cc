#include "auth/token.h"

#include "crypto/hash.h"
#include "crypto/random.h"

namespace kura::auth {
namespace {

// The 6-bit value of a base64url character, or -1.
int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// The secret part must be exactly the canonical encoding of 32 bytes: this
// rejects padded, truncated and non-canonical variants of the same bytes, so
// one secret has exactly one accepted spelling (and one hash). 43 characters
// carry 258 bits; the canonical spelling has the last character's two spare
// bits zero. (Checked here, on every request, without decoding the secret.)
static_assert(kTokenSecretChars * 6 == kTokenSecretBytes * 8 + 2);
bool IsValidSecret(std::string_view s) {
  if (s.size() != kTokenSecretChars) return false;
  for (char c : s) {
    if (Base64UrlValue(c) < 0) return false;
  }
  return (Base64UrlValue(s.back()) & 0x3) == 0;
}

Status Malformed() { return UnauthenticatedError("invalid, expired or revoked token"); }

}  // namespace

std::string GenerateRootToken() {
  return std::string(kRootTokenPrefix) + crypto::RandomToken(kTokenSecretBytes);
}

std::string GenerateSessionToken() {
  return std::string(kSessionTokenPrefix) + crypto::RandomToken(kTokenSecretBytes);
}

NewApiKey GenerateApiKey() {
  NewApiKey key;
  key.id = HexEncode(crypto::RandomBytes(kApiKeyIdBytes));
  key.token = std::string(kApiKeyPrefix) + key.id + "_" + crypto::RandomToken(kTokenSecretBytes);
  return key;
}

bool IsValidApiKeyId(std::string_view id) {
  if (id.size() != kApiKeyIdChars) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<ParsedToken> ParseToken(std::string_view token) {
  if (token.starts_with(kRootTokenPrefix)) {
    if (!IsValidSecret(token.substr(kRootTokenPrefix.size()))) return Malformed();
    return ParsedToken{TokenKind::kRoot, ""};
  }
  if (token.starts_with(kSessionTokenPrefix)) {
    if (!IsValidSecret(token.substr(kSessionTokenPrefix.size()))) return Malformed();
    return ParsedToken{TokenKind::kSession, ""};
  }
  if (token.starts_with(kApiKeyPrefix)) {
    std::string_view rest = token.substr(kApiKeyPrefix.size());
    if (rest.size() != kApiKeyIdChars + 1 + kTokenSecretChars) return Malformed();
    std::string_view id = rest.substr(0, kApiKeyIdChars);
    if (!IsValidApiKeyId(id) || rest[kApiKeyIdChars] != '_') return Malformed();
    if (!IsValidSecret(rest.substr(kApiKeyIdChars + 1))) return Malformed();
    return ParsedToken{TokenKind::kApiKey, std::string(id)};
  }
  return Malformed();
}

Bytes TokenHash(std::string_view token) { return crypto::Sha256(AsBytes(token)); }

}  // namespace kura::auth
