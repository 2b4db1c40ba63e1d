// Authorisation as pure logic: permissions, roles, decisions, field masking.
// No I/O and no keys: the vault loads roles from the store and asks here.
// Deny by default: anything not granted by a permission is refused.
//
// Thread safety: pure functions and plain values.
#ifndef KURA_POLICY_POLICY_H_
#define KURA_POLICY_POLICY_H_

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kura::policy {

// Tenant permissions of SPEC §2.
enum class Action {
  kRecordRead,
  kRecordWrite,
  kRecordDelete,
  kRecordExport,
  kFileRead,
  kFileWrite,
  kAuditRead,
  kUsersAdmin,
  kAccessApprove,
};
const std::vector<Action>& AllActions();
std::string_view ActionName(Action action);  // "record.read"
std::optional<Action> ParseAction(std::string_view name);

enum class FieldView { kFull, kMasked };

struct Permission {
  Action action = Action::kRecordRead;
  std::vector<std::string> collections;  // "*" matches every collection
  FieldView view = FieldView::kFull;
};

struct Role {
  std::string name;
  std::vector<Permission> permissions;
};

// The built-in `admin` role every tenant has: every permission, every
// collection, full view. It cannot be replaced or deleted.
Role BuiltinAdminRole();
constexpr std::string_view kAdminRoleName = "admin";

// Parses a role body `{"permissions":[{"action":"record.read",
// "collections":["customers"],"view":"masked"}]}`. InvalidArgument naming the
// offending member on unknown actions or views, unknown keys, wrong types,
// empty collection lists or invalid collection names.
Result<Role> ParseRole(std::string name, const nlohmann::json& body);
nlohmann::json RoleToJson(const Role& role);

struct Decision {
  bool allowed = false;
  FieldView view = FieldView::kMasked;  // the most open view any matching permission gives
};

// Whether `role` may take `action` on `collection` ("" for actions that are
// not about a collection, e.g. users.admin, which then needs "*" or any entry).
Decision Decide(const Role& role, Action action, std::string_view collection);

// Masking rules of SPEC §2.
enum class MaskRule { kNone, kPartial, kEmail, kLast4, kHidden };
std::optional<MaskRule> ParseMaskRule(std::string_view name);
std::string_view MaskRuleName(MaskRule rule);

// Masks one field value. nullopt means the field is left out (kHidden).
// Strings: partial keeps the first and last character ("J**n"; 1–2 characters
// become all '*'), email keeps the first character of the local part and the
// domain ("a***@example.com"; not an e-mail address → partial), last4 keeps
// the last four characters ("*******1234"; 4 or fewer → all '*').
// Numbers are masked as their decimal text; other types become "***".
std::optional<nlohmann::json> MaskValue(MaskRule rule, const nlohmann::json& value);

// Valid names for tenants, collections, roles and fields: 1–64 of [a-z0-9_-],
// starting with a letter or digit.
bool IsValidName(std::string_view name);

}  // namespace kura::policy

#endif  // KURA_POLICY_POLICY_H_
