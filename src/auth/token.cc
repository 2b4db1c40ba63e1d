#include "auth/token.h"

#include "core/bytes.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace kura::auth {
namespace {

// The secret part must be exactly the canonical encoding of 32 bytes: this
// rejects padded, truncated and non-canonical variants of the same bytes, so
// one secret has exactly one accepted spelling (and one hash). Checked on
// every request, without decoding the secret.
bool IsValidSecret(std::string_view s) { return IsCanonicalBase64Url(s, kTokenSecretBytes); }

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
