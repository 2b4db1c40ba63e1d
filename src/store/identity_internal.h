// Module-internal: the argument checks of the identity methods (users,
// sessions) that both backends make before touching the database, so they
// refuse the same calls with the same Status.
//
// Only the store module includes this header.
#ifndef KURA_STORE_IDENTITY_INTERNAL_H_
#define KURA_STORE_IDENTITY_INTERNAL_H_

#include <cstdint>
#include <string>

#include "core/status.h"
#include "store/store.h"

namespace kura::store {

// What a write on `users` names in its errors: a unique violation there is
// either the (tenant_id, username) key or the Kerberos principal index.
inline constexpr char kUserWhat[] = "user (username or Kerberos principal)";

// CreateUser: InvalidArgument for an empty username or a version below 1.
inline Status CheckNewUser(const UserRow& user) {
  if (user.username.empty()) return InvalidArgumentError("user: the username is empty");
  if (user.version < 1) return InvalidArgumentError("user: a new user starts at version 1 or above");
  return Status::Ok();
}

// UpdateUser: the new version is expected_version + 1 (like UpdateRecord),
// and a session opened with the update is the same user's and has a token.
inline Status CheckUserUpdate(const UserRow& user, std::int64_t expected_version, const SessionRow* session) {
  if (user.version != expected_version + 1) {
    return InvalidArgumentError("user: the new version must be the expected version plus one");
  }
  if (session != nullptr) {
    if (session->tenant_id != user.tenant_id || session->username != user.username) {
      return InvalidArgumentError("session: it must belong to the user being updated");
    }
    if (session->token_hash.empty()) return InvalidArgumentError("session: the token hash is empty");
  }
  return Status::Ok();
}

}  // namespace kura::store

#endif  // KURA_STORE_IDENTITY_INTERNAL_H_
