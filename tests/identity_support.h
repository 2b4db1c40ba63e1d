// Sign-in helpers for end-to-end tests: staff with TOTP enrolled, tenant
// users signed in. TOTP codes come from Python's standard library, an
// implementation that shares no code with kura.
#ifndef KURA_TESTS_IDENTITY_SUPPORT_H_
#define KURA_TESTS_IDENTITY_SUPPORT_H_

#include <string>
#include <vector>

#include "harness.h"

namespace kura::e2e {

// A password every policy check accepts (tests only).
inline constexpr char kStaffPassword[] = "Correct-Horse-Battery-Staple-7";
inline constexpr char kUserPassword[] = "Vermilion-Teapot-Harbour-42";

// The server config line that makes password hashing cheap in tests.
inline constexpr char kCheapPasswordHashConfig[] =
    "[auth]\npassword_hash_memory_kib = 256\npassword_hash_iterations = 1\n";

// RFC 6238 code of `secret_base32` for the time step `offset` steps from now.
std::string TotpNow(const std::string& secret_base32, int offset = 0);

struct SignedIn {
  std::string token;          // session token
  std::string totp_secret;    // staff: base32 TOTP secret ("" for tenant users)
  std::string confirm_code;   // staff: the code that confirmed the enrolment
  nlohmann::json recovery_codes;
};

// `creator` (root or an operator's session) creates staff `name` with
// `roles`; the staff member signs in, enrols TOTP and confirms it.
// Failures are reported with gtest's EXPECT and leave fields empty.
SignedIn MakeStaff(KuraServer& server, const std::string& creator, const std::string& name,
                   const std::vector<std::string>& roles);

// Signs tenant user `name` of `tenant` in with kUserPassword.
std::string SignInUser(KuraServer& server, const std::string& tenant, const std::string& name);

}  // namespace kura::e2e

#endif  // KURA_TESTS_IDENTITY_SUPPORT_H_
