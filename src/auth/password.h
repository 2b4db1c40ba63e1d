// Passwords: Argon2id hashing (libsodium), the password policy (strength,
// maximum age, history, lockout) as pure logic. No I/O: the vault keeps the
// hashes and counters in the store and asks here.
//
// Hashes are libsodium's encoded strings ("$argon2id$v=19$m=65536,t=3,p=1$…"):
// the parameters are recorded in every hash, so they can be raised later and
// an old hash is recognised (NeedsRehash) and upgraded at the next sign-in.
//
// Thread safety: free functions and plain values; safe for concurrent use
// (the libcrack2 check is serialised internally).
#ifndef KURA_AUTH_PASSWORD_H_
#define KURA_AUTH_PASSWORD_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kura::auth {

// Argon2id cost. Defaults: 64 MiB, 3 passes (docs/performance.md measures
// sign-ins/s with them); tests use small values through the configuration.
struct Argon2Params {
  std::uint64_t iterations = 3;                 // libsodium opslimit (>= 1)
  std::size_t memory_bytes = 64u * 1024 * 1024; // libsodium memlimit (>= 8 KiB)
};

// Encoded Argon2id hash of `password` with a fresh random salt.
// Internal when libsodium fails (out of memory).
Result<std::string> HashPassword(std::string_view password, const Argon2Params& params);
// Whether `password` matches `encoded`. False for a malformed hash.
// Takes as long as hashing with the parameters recorded in `encoded`.
bool VerifyPassword(std::string_view encoded, std::string_view password);
// Whether `encoded` was made with parameters other than `params` (or is not a
// valid Argon2id hash): the caller rehashes after a successful sign-in.
bool NeedsRehash(std::string_view encoded, const Argon2Params& params);

// Password policy (SPEC §3), per tenant and for staff.
struct PasswordPolicy {
  int min_length = 12;              // in Unicode code points
  int max_age_days = 90;            // 0 = passwords never expire
  int history = 5;                  // previous passwords refused (0 = none)
  int lockout_threshold = 5;        // failures within lockout_window lock the account
  std::chrono::seconds lockout_window{15 * 60};
  std::chrono::seconds lockout_duration{15 * 60};
  bool require_totp = false;        // staff: always true
};

// Checks a new password against the policy's strength rules, in this order:
// length (code points; invalid UTF-8 is refused), the embedded list of the
// most common passwords (case-insensitive), the password containing the
// username (case-insensitive, usernames of 3+ characters), and libcrack2's
// FascistCheck with Debian's dictionary. InvalidArgument whose message says
// which rule failed (never echoing the password); OK otherwise.
Status CheckPasswordStrength(std::string_view password, std::string_view username, const PasswordPolicy& policy);

// Whether a password set at `changed_at` (unix seconds) has expired at `now`.
bool PasswordExpired(std::int64_t changed_at, std::int64_t now, const PasswordPolicy& policy);

// Whether `password` matches the current hash or one of the `previous` hashes
// (newest first; only the first policy.history - 1 of them are consulted, so
// with history 5 the current and four previous passwords are refused).
bool PasswordReused(std::string_view password, std::string_view current_hash,
                    const std::vector<std::string>& previous, const PasswordPolicy& policy);
// The history to store after a change: the old current hash in front of
// `previous`, trimmed to policy.history - 1 entries.
std::vector<std::string> NextPasswordHistory(std::string current_hash, std::vector<std::string> previous,
                                             const PasswordPolicy& policy);

// Failed sign-ins of one account, as kept in its row.
struct LoginFailures {
  int count = 0;                 // failures in the current window
  std::int64_t window_start = 0; // unix seconds of the window's first failure
  std::int64_t locked_until = 0; // unix seconds; 0 = not locked
};
bool IsLockedOut(const LoginFailures& failures, std::int64_t now);
// Counts one failure at `now` (a new window starts when the old one is over
// or the account was unlocked by time); locks the account for
// lockout_duration when the count reaches the threshold.
LoginFailures RecordLoginFailure(LoginFailures failures, std::int64_t now, const PasswordPolicy& policy);

}  // namespace kura::auth

#endif  // KURA_AUTH_PASSWORD_H_
