#include "auth/totp.h"

#include <openssl/evp.h>
#include <qrencode.h>

#include <cstdlib>
#include <mutex>
#include <set>

#include "core/secret.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace kura::auth {
namespace {

constexpr std::string_view kBase32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::size_t kRecoveryCodeBytes = 10;  // 80 bits = 16 base32 characters
constexpr std::size_t kRecoveryCodeChars = 16;
constexpr std::size_t kRecoveryGroupChars = 4;
constexpr int kQrQuietZone = 4;  // modules of white around the symbol (ISO/IEC 18004)

bool ValidParams(const TotpParams& params) {
  return params.digits >= 6 && params.digits <= 8 && params.period_seconds > 0 && params.skew_steps >= 0;
}

// Parameters come from code and validated configuration, never from a
// request: invalid ones are a programming error, and computing a code with
// them (a division by a zero period) must not happen.
void CheckParams(const TotpParams& params) {
  if (!ValidParams(params)) std::abort();
}

const char* DigestName(TotpAlgorithm algorithm) {
  switch (algorithm) {
    case TotpAlgorithm::kSha256:
      return "SHA256";
    case TotpAlgorithm::kSha512:
      return "SHA512";
    case TotpAlgorithm::kSha1:
      break;
  }
  return "SHA1";
}

int Base32Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

// RFC 4226 §5.3: HMAC of the big-endian counter, dynamic truncation, modulo
// 10^digits.
std::string HotpCode(ByteView secret, std::uint64_t counter, const TotpParams& params) {
  std::uint8_t message[8];
  for (int i = 7; i >= 0; --i) {
    message[i] = static_cast<std::uint8_t>(counter & 0xFF);
    counter >>= 8;
  }
  // HMAC accepts an empty key; OpenSSL wants a non-null pointer for it.
  static const std::uint8_t kNoKey = 0;
  const std::uint8_t* key = secret.empty() ? &kNoKey : secret.data();
  std::uint8_t mac[EVP_MAX_MD_SIZE];
  std::size_t mac_len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, DigestName(params.algorithm), nullptr, key, secret.size(), message,
                sizeof(message), mac, sizeof(mac), &mac_len) == nullptr ||
      mac_len < 20) {
    // Only memory exhaustion or a broken OpenSSL installation gets here; no
    // caller could continue safely (as in crypto/hash.h).
    std::abort();
  }
  std::size_t offset = mac[mac_len - 1] & 0x0F;
  std::uint32_t binary = (static_cast<std::uint32_t>(mac[offset] & 0x7F) << 24) |
                         (static_cast<std::uint32_t>(mac[offset + 1]) << 16) |
                         (static_cast<std::uint32_t>(mac[offset + 2]) << 8) | mac[offset + 3];
  OPENSSL_cleanse(mac, sizeof(mac));
  std::uint32_t modulus = 1;
  for (int i = 0; i < params.digits; ++i) modulus *= 10;
  std::string code = std::to_string(binary % modulus);
  return std::string(static_cast<std::size_t>(params.digits) - code.size(), '0') + code;
}

bool IsUnreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// RFC 3986 percent-encoding of everything but the unreserved characters, so
// an issuer or account name cannot inject ':' '?' '&' or '#' into the URI.
std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (IsUnreserved(c)) {
      out.push_back(c);
    } else {
      auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

// libqrencode initialises shared Reed-Solomon tables lazily; enrolment is
// rare, so serialising it costs nothing and removes any doubt about how the
// installed library was built.
std::mutex& QrMutex() {
  static std::mutex mu;
  return mu;
}

// Upper case without separators, or "" when the text cannot be a recovery code.
std::string NormaliseRecoveryCode(std::string_view code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (kBase32Alphabet.find(c) == std::string_view::npos) return "";
    out.push_back(c);
    if (out.size() > kRecoveryCodeChars) return "";
  }
  return out.size() == kRecoveryCodeChars ? out : "";
}

}  // namespace

Bytes NewTotpSecret() { return crypto::RandomBytes(kTotpSecretBytes); }

std::string Base32Encode(ByteView bytes) {
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kBase32Alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kBase32Alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

Result<Bytes> Base32Decode(std::string_view text) {
  Bytes out;
  std::uint32_t buffer = 0;
  int bits = 0;
  std::size_t chars = 0;
  for (char c : text) {
    if (c == ' ' || c == '=') continue;
    int v = Base32Value(c);
    if (v < 0) return InvalidArgumentError("invalid base32: unexpected character");
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    ++chars;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>((buffer >> (bits - 8)) & 0xFF));
      bits -= 8;
    }
  }
  // 1, 3 or 6 characters after the last full 8-character block encode no
  // whole byte: no encoder produces them.
  std::size_t tail = chars % 8;
  if (tail == 1 || tail == 3 || tail == 6) return InvalidArgumentError("invalid base32: truncated input");
  return out;
}

std::int64_t TotpStep(std::int64_t unix_time, const TotpParams& params) {
  CheckParams(params);
  // Floor division, so times before the epoch fall in negative steps rather
  // than sharing step 0 with the first period.
  std::int64_t step = unix_time / params.period_seconds;
  if (unix_time % params.period_seconds != 0 && unix_time < 0) --step;
  return step;
}

std::string TotpCode(ByteView secret, std::int64_t unix_time, const TotpParams& params) {
  CheckParams(params);
  return HotpCode(secret, static_cast<std::uint64_t>(TotpStep(unix_time, params)), params);
}

std::optional<std::int64_t> VerifyTotp(ByteView secret, std::string_view code, std::int64_t now,
                                       std::int64_t last_used_step, const TotpParams& params) {
  if (!ValidParams(params) || secret.empty()) return std::nullopt;
  if (code.size() != static_cast<std::size_t>(params.digits)) return std::nullopt;
  for (char c : code) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::int64_t current = TotpStep(now, params);
  std::optional<std::int64_t> matched;
  // Every candidate step is computed and compared, in constant time, whether
  // or not an earlier one matched: the time taken says nothing about which
  // step (if any) the code belongs to. Steps at or before last_used_step are
  // skipped: that code, or an older one, was already used (replay).
  for (std::int64_t step = current - params.skew_steps; step <= current + params.skew_steps; ++step) {
    if (step < 0 || step <= last_used_step) continue;
    std::string expected = HotpCode(secret, static_cast<std::uint64_t>(step), params);
    // The latest matching step wins, so the replay guard covers the most.
    if (ConstantTimeEquals(AsBytes(expected), AsBytes(code))) matched = step;
  }
  return matched;
}

std::string TotpUri(std::string_view issuer, std::string_view account, ByteView secret, const TotpParams& params) {
  std::string label = issuer.empty() ? PercentEncode(account) : PercentEncode(issuer) + ":" + PercentEncode(account);
  std::string uri = "otpauth://totp/" + label + "?secret=" + Base32Encode(secret);
  if (!issuer.empty()) uri += "&issuer=" + PercentEncode(issuer);
  uri += "&algorithm=" + std::string(DigestName(params.algorithm));
  uri += "&digits=" + std::to_string(params.digits);
  uri += "&period=" + std::to_string(params.period_seconds);
  return uri;
}

Result<std::string> QrCodeSvg(std::string_view text) {
  if (text.empty() || text.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("QR code text must be non-empty and contain no NUL");
  }
  std::string input(text);
  QRcode* qr;
  {
    std::lock_guard<std::mutex> lock(QrMutex());
    qr = QRcode_encodeString(input.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  }
  if (qr == nullptr) return InternalError("QR code encoding failed (text too long for a QR code?)");
  int width = qr->width;
  int size = width + 2 * kQrQuietZone;
  // One path of unit squares; horizontal runs of dark modules are merged
  // into one rectangle each, which keeps the SVG a few kilobytes.
  std::string d;
  for (int y = 0; y < width; ++y) {
    int x = 0;
    while (x < width) {
      if ((qr->data[y * width + x] & 1) == 0) {
        ++x;
        continue;
      }
      int run = 1;
      while (x + run < width && (qr->data[y * width + x + run] & 1) != 0) ++run;
      d += "M" + std::to_string(x + kQrQuietZone) + " " + std::to_string(y + kQrQuietZone) + "h" + std::to_string(run) +
           "v1h-" + std::to_string(run) + "z";
      x += run;
    }
  }
  QRcode_free(qr);
  std::string n = std::to_string(size);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + n + " " + n +
         "\" shape-rendering=\"crispEdges\"><rect width=\"" + n + "\" height=\"" + n +
         "\" fill=\"#fff\"/><path fill=\"#000\" d=\"" + d + "\"/></svg>";
}

RecoveryCodes GenerateRecoveryCodes(int count) {
  RecoveryCodes result;
  std::set<std::string> seen;
  while (count > 0 && static_cast<int>(result.codes.size()) < count) {
    std::string raw = Base32Encode(crypto::RandomBytes(kRecoveryCodeBytes));
    // Two equal codes in one set are astronomically unlikely, but one hash
    // standing for two codes would make the second unusable: draw again.
    if (!seen.insert(raw).second) continue;
    std::string shown;
    for (std::size_t i = 0; i < raw.size(); i += kRecoveryGroupChars) {
      if (i != 0) shown.push_back('-');
      shown.append(raw, i, kRecoveryGroupChars);
    }
    result.hashes.push_back(HexEncode(crypto::Sha256(AsBytes(raw))));
    result.codes.push_back(std::move(shown));
  }
  return result;
}

std::string RecoveryCodeHash(std::string_view code) {
  std::string normalised = NormaliseRecoveryCode(code);
  if (normalised.empty()) return "";
  return HexEncode(crypto::Sha256(AsBytes(normalised)));
}

}  // namespace kura::auth
