#include "auth/password.h"

#include <crack.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>

#include "auth/common_passwords.h"

namespace kura::auth {
namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";
constexpr std::int64_t kSecondsPerDay = 24 * 60 * 60;
// Usernames shorter than this are not searched for in the password: "al"
// would forbid every password containing those two letters.
constexpr std::size_t kMinUsernameForContainment = 3;
// An upper bound keeps a megabyte "password" from costing a megabyte of
// Argon2 pre-hashing per attempt, and is far beyond any passphrase.
constexpr std::size_t kMaxPasswordBytes = 1024;

// libsodium must be initialised before crypto_pwhash picks its
// implementation; a function-local static makes that happen exactly once,
// thread-safely (C++11 magic statics), however many threads sign in at once.
bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

bool ValidParams(const Argon2Params& params) {
  return params.iterations >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
         params.iterations <= crypto_pwhash_argon2id_OPSLIMIT_MAX &&
         params.memory_bytes >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
         params.memory_bytes <= crypto_pwhash_argon2id_MEMLIMIT_MAX;
}

// libsodium reads the encoded hash as a C string: refuse anything that is not
// one (embedded NUL, longer than any hash libsodium writes) or not Argon2id
// (libsodium would also accept Argon2i, which this policy does not).
bool PlausibleEncoded(std::string_view encoded) {
  return encoded.starts_with(kArgon2idPrefix) && encoded.size() < crypto_pwhash_STRBYTES &&
         encoded.find('\0') == std::string_view::npos;
}

// Decodes UTF-8 strictly (no overlong forms, no surrogates, nothing above
// U+10FFFF) and counts code points; nullopt when the bytes are not UTF-8.
std::optional<std::size_t> CountCodePoints(std::string_view text) {
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    auto b0 = static_cast<unsigned char>(text[i]);
    std::size_t len;
    std::uint32_t cp;
    if (b0 < 0x80) {
      len = 1;
      cp = b0;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07;
    } else {
      return std::nullopt;
    }
    if (i + len > text.size()) return std::nullopt;
    for (std::size_t k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    i += len;
    ++count;
  }
  return count;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// libcrack2 keeps its state in static buffers (Mangle, Lowercase, Reverse)
// and is not thread-safe: every call goes through this mutex.
std::mutex& CracklibMutex() {
  static std::mutex mu;
  return mu;
}

Status CracklibCheck(std::string_view password, std::string_view username) {
  const char* dict = GetDefaultCracklibDict();
  std::string base = dict != nullptr ? dict : "";
  // Fail closed: without its dictionary cracklib would only run its trivial
  // rules, so a missing dictionary is a broken installation, not a pass.
  if (base.empty() || ::access((base + ".pwd").c_str(), R_OK) != 0 || ::access((base + ".pwi").c_str(), R_OK) != 0) {
    return InternalError("password check unavailable: the password dictionary (cracklib) is missing");
  }
  std::string pw(password);
  // FascistCheckUser with the account's own name rather than FascistCheck:
  // the latter compares against the server process's passwd entry, which
  // says nothing about this user.
  std::string user(username);
  const char* reason;
  {
    std::lock_guard<std::mutex> lock(CracklibMutex());
    reason = FascistCheckUser(pw.c_str(), base.c_str(), user.c_str(), nullptr);
  }
  sodium_memzero(pw.data(), pw.size());
  if (reason == nullptr) return Status::Ok();
  std::string why(reason);
  if (why == "error loading dictionary") {
    return InternalError("password check unavailable: the password dictionary (cracklib) cannot be loaded");
  }
  // cracklib's reasons describe the password's shape ("it is based on a
  // dictionary word"), never its text.
  return InvalidArgumentError("password is too weak: " + why);
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, const Argon2Params& params) {
  if (!SodiumReady()) return InternalError("libsodium cannot be initialised");
  if (!ValidParams(params)) return InvalidArgumentError("Argon2id parameters out of range");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), params.iterations, params.memory_bytes,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return InternalError("Argon2id hashing failed (out of memory for " + std::to_string(params.memory_bytes) +
                         " bytes?)");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view encoded, std::string_view password) {
  if (!SodiumReady() || !PlausibleEncoded(encoded)) return false;
  std::string hash(encoded);
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool NeedsRehash(std::string_view encoded, const Argon2Params& params) {
  if (!SodiumReady() || !PlausibleEncoded(encoded)) return true;
  std::string hash(encoded);
  // 0: same algorithm and parameters; 1: other parameters; -1: malformed.
  return crypto_pwhash_str_needs_rehash(hash.c_str(), params.iterations, params.memory_bytes) != 0;
}

Status CheckPasswordStrength(std::string_view password, std::string_view username, const PasswordPolicy& policy) {
  // Every message names the rule and never the password.
  auto code_points = CountCodePoints(password);
  if (!code_points) return InvalidArgumentError("password is not valid UTF-8");
  if (password.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("password contains a NUL character");
  }
  if (*code_points < static_cast<std::size_t>(std::max(policy.min_length, 0))) {
    return InvalidArgumentError("password is too short: at least " + std::to_string(policy.min_length) + " characters");
  }
  if (password.size() > kMaxPasswordBytes) {
    return InvalidArgumentError("password is too long: at most " + std::to_string(kMaxPasswordBytes) + " bytes");
  }
  if (IsCommonPassword(password)) return InvalidArgumentError("password is too common");
  if (auto name_points = CountCodePoints(username);
      name_points && *name_points >= kMinUsernameForContainment &&
      AsciiLower(password).find(AsciiLower(username)) != std::string::npos) {
    return InvalidArgumentError("password contains the username");
  }
  return CracklibCheck(password, username);
}

bool PasswordExpired(std::int64_t changed_at, std::int64_t now, const PasswordPolicy& policy) {
  if (policy.max_age_days <= 0) return false;
  return now - changed_at >= static_cast<std::int64_t>(policy.max_age_days) * kSecondsPerDay;
}

bool PasswordReused(std::string_view password, std::string_view current_hash, const std::vector<std::string>& previous,
                    const PasswordPolicy& policy) {
  if (policy.history <= 0) return false;
  if (!current_hash.empty() && VerifyPassword(current_hash, password)) return true;
  std::size_t consulted = std::min(previous.size(), static_cast<std::size_t>(policy.history - 1));
  for (std::size_t i = 0; i < consulted; ++i) {
    if (VerifyPassword(previous[i], password)) return true;
  }
  return false;
}

std::vector<std::string> NextPasswordHistory(std::string current_hash, std::vector<std::string> previous,
                                             const PasswordPolicy& policy) {
  std::size_t keep = policy.history > 1 ? static_cast<std::size_t>(policy.history - 1) : 0;
  // An account that never had a password has no current hash to remember.
  if (!current_hash.empty()) previous.insert(previous.begin(), std::move(current_hash));
  if (previous.size() > keep) previous.resize(keep);
  return previous;
}

bool IsLockedOut(const LoginFailures& failures, std::int64_t now) {
  return failures.locked_until != 0 && now < failures.locked_until;
}

LoginFailures RecordLoginFailure(LoginFailures failures, std::int64_t now, const PasswordPolicy& policy) {
  // Failures while locked do not extend the lock: otherwise anyone who knows
  // a username could keep its owner out for ever with one guess per period.
  if (IsLockedOut(failures, now)) return failures;
  bool lock_expired = failures.locked_until != 0;
  bool window_over = failures.count == 0 || now < failures.window_start ||
                     now - failures.window_start >= policy.lockout_window.count();
  if (lock_expired || window_over) {
    failures = LoginFailures{1, now, 0};
  } else {
    ++failures.count;
  }
  if (policy.lockout_threshold > 0 && failures.count >= policy.lockout_threshold) {
    failures.locked_until = now + policy.lockout_duration.count();
  }
  return failures;
}

}  // namespace kura::auth
