// TOTP second factor (RFC 6238 over RFC 4226, HMAC from OpenSSL), its
// otpauth:// enrolment URI and QR code (SVG, libqrencode), and recovery codes.
//
// Replay: Verify returns the time step a code matched; the caller stores it
// and passes it back as `last_used_step`, so a code (or an older one) is
// accepted only once.
//
// Thread safety: free functions; safe for concurrent use.
#ifndef KURA_AUTH_TOTP_H_
#define KURA_AUTH_TOTP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

namespace kura::auth {

enum class TotpAlgorithm { kSha1, kSha256, kSha512 };

struct TotpParams {
  TotpAlgorithm algorithm = TotpAlgorithm::kSha1;  // what authenticator apps support
  int digits = 6;                                   // 6..8
  std::int64_t period_seconds = 30;
  int skew_steps = 1;  // codes of this many steps before/after now are accepted
};

constexpr std::size_t kTotpSecretBytes = 20;  // 160 bits (RFC 4226 §4 recommends it)

// A fresh random secret.
Bytes NewTotpSecret();
// RFC 4648 base32, upper case, without padding (what otpauth URIs carry).
std::string Base32Encode(ByteView bytes);
// Accepts upper/lower case, ignores spaces and '=' padding. InvalidArgument otherwise.
Result<Bytes> Base32Decode(std::string_view text);

// The code for the time step containing `unix_time` (zero-padded to digits).
std::string TotpCode(ByteView secret, std::int64_t unix_time, const TotpParams& params = {});
// The time step of `unix_time`.
std::int64_t TotpStep(std::int64_t unix_time, const TotpParams& params = {});
// The step whose code equals `code` within now ± skew_steps and is later than
// `last_used_step`; nullopt otherwise (wrong, malformed, expired or replayed).
// Compares in constant time.
std::optional<std::int64_t> VerifyTotp(ByteView secret, std::string_view code, std::int64_t now,
                                       std::int64_t last_used_step, const TotpParams& params = {});

// otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30
// (issuer and account percent-encoded).
std::string TotpUri(std::string_view issuer, std::string_view account, ByteView secret,
                    const TotpParams& params = {});
// `text` as a QR code in SVG (black modules on white, 4-module quiet zone).
// Internal when libqrencode fails.
Result<std::string> QrCodeSvg(std::string_view text);

// Recovery codes: shown once at TOTP confirmation, stored only as hashes, each
// usable once. A code is 16 base32 characters (80 random bits) shown in four
// groups: "ABCD-EFGH-IJKL-MNOP". With 80 bits a fast hash suffices.
struct RecoveryCodes {
  std::vector<std::string> codes;   // to show
  std::vector<std::string> hashes;  // lowercase hex SHA-256 of the normalised code, to store
};
RecoveryCodes GenerateRecoveryCodes(int count = 10);
// Hash of a presented code, normalised (case, '-' and spaces ignored). "" when
// the text cannot be a recovery code.
std::string RecoveryCodeHash(std::string_view code);

}  // namespace kura::auth

#endif  // KURA_AUTH_TOTP_H_
