// Module-only: the embedded list of the most common passwords, consulted by
// CheckPasswordStrength (password.cc) before libcrack2. A few hundred entries
// compiled into the binary, so the check needs no file and cannot be skipped
// by a missing one.
//
// Thread safety: read-only data; safe for concurrent use.
#ifndef KURA_AUTH_COMMON_PASSWORDS_H_
#define KURA_AUTH_COMMON_PASSWORDS_H_

#include <cstddef>
#include <string_view>

namespace kura::auth {

// Whether `password` is on the list, compared case-insensitively (ASCII).
// Exact matches only: variations are libcrack2's job.
bool IsCommonPassword(std::string_view password);

// Number of entries (tests check the list is not accidentally emptied).
std::size_t CommonPasswordCountForTest();

}  // namespace kura::auth

#endif  // KURA_AUTH_COMMON_PASSWORDS_H_
