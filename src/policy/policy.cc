#include "policy/policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace kura::policy {
namespace {

struct ActionEntry {
  Action action;
  std::string_view name;
};

// The one table of action names; AllActions, ActionName and ParseAction read it.
constexpr ActionEntry kActionTable[] = {
    {Action::kRecordRead, "record.read"},     {Action::kRecordWrite, "record.write"},
    {Action::kRecordDelete, "record.delete"}, {Action::kRecordExport, "record.export"},
    {Action::kFileRead, "file.read"},         {Action::kFileWrite, "file.write"},
    {Action::kAuditRead, "audit.read"},       {Action::kUsersAdmin, "users.admin"},
    {Action::kAccessApprove, "access.approve"},
};

constexpr std::string_view kWildcard = "*";
// Bounds keep a role small enough to load on every request.
constexpr std::size_t kMaxPermissions = 256;
constexpr std::size_t kMaxCollectionsPerPermission = 256;

std::string_view JsonTypeName(const nlohmann::json& v) { return v.type_name(); }

Result<Permission> ParsePermission(const nlohmann::json& body, const std::string& path) {
  if (!body.is_object()) {
    return InvalidArgumentError(path + ": expected an object, got " + std::string(JsonTypeName(body)));
  }
  for (const auto& [key, value] : body.items()) {
    (void)value;
    if (key != "action" && key != "collections" && key != "view") {
      return InvalidArgumentError(path + ": unknown key '" + key + "'");
    }
  }
  Permission permission;

  auto action_it = body.find("action");
  if (action_it == body.end()) return InvalidArgumentError(path + ".action: required");
  if (!action_it->is_string()) {
    return InvalidArgumentError(path + ".action: expected a string, got " + std::string(JsonTypeName(*action_it)));
  }
  auto action = ParseAction(action_it->get_ref<const std::string&>());
  if (!action) {
    return InvalidArgumentError(path + ".action: unknown action '" + action_it->get<std::string>() + "'");
  }
  permission.action = *action;

  // Collections are required even for actions that are not about a collection
  // (users.admin): an explicit ["*"] keeps every grant visible in the role body.
  auto coll_it = body.find("collections");
  if (coll_it == body.end()) return InvalidArgumentError(path + ".collections: required");
  if (!coll_it->is_array()) {
    return InvalidArgumentError(path + ".collections: expected an array, got " +
                                std::string(JsonTypeName(*coll_it)));
  }
  if (coll_it->empty()) return InvalidArgumentError(path + ".collections: must not be empty");
  if (coll_it->size() > kMaxCollectionsPerPermission) {
    return InvalidArgumentError(path + ".collections: too many entries");
  }
  for (std::size_t i = 0; i < coll_it->size(); ++i) {
    const auto& c = (*coll_it)[i];
    std::string cpath = path + ".collections[" + std::to_string(i) + "]";
    if (!c.is_string()) {
      return InvalidArgumentError(cpath + ": expected a string, got " + std::string(JsonTypeName(c)));
    }
    const auto& name = c.get_ref<const std::string&>();
    if (name != kWildcard && !IsValidName(name)) {
      return InvalidArgumentError(cpath + ": invalid collection name");
    }
    if (std::find(permission.collections.begin(), permission.collections.end(), name) ==
        permission.collections.end()) {
      permission.collections.push_back(name);
    }
  }

  // Absent view means masked: the least a grant can give (deny by default).
  permission.view = FieldView::kMasked;
  auto view_it = body.find("view");
  if (view_it != body.end()) {
    if (!view_it->is_string()) {
      return InvalidArgumentError(path + ".view: expected a string, got " + std::string(JsonTypeName(*view_it)));
    }
    const auto& view = view_it->get_ref<const std::string&>();
    if (view == "full") {
      permission.view = FieldView::kFull;
    } else if (view == "masked") {
      permission.view = FieldView::kMasked;
    } else {
      return InvalidArgumentError(path + ".view: unknown view '" + view + "' (full|masked)");
    }
  }
  return permission;
}

bool Matches(const Permission& permission, std::string_view collection) {
  for (const auto& c : permission.collections) {
    if (c == kWildcard) return true;
    // Actions that are not about a collection pass "": any listed entry counts.
    if (collection.empty()) return true;
    if (c == collection) return true;
  }
  return false;
}

}  // namespace

const std::vector<Action>& AllActions() {
  static const std::vector<Action> kAll = [] {
    std::vector<Action> v;
    for (const auto& e : kActionTable) v.push_back(e.action);
    return v;
  }();
  return kAll;
}

std::string_view ActionName(Action action) {
  for (const auto& e : kActionTable) {
    if (e.action == action) return e.name;
  }
  return "unknown";
}

std::optional<Action> ParseAction(std::string_view name) {
  for (const auto& e : kActionTable) {
    if (e.name == name) return e.action;
  }
  return std::nullopt;
}

Role BuiltinAdminRole() {
  Role role;
  role.name = std::string(kAdminRoleName);
  for (Action a : AllActions()) {
    role.permissions.push_back(Permission{a, {std::string(kWildcard)}, FieldView::kFull});
  }
  return role;
}

Result<Role> ParseRole(std::string name, const nlohmann::json& body) {
  if (!body.is_object()) {
    return InvalidArgumentError("role: expected an object, got " + std::string(JsonTypeName(body)));
  }
  for (const auto& [key, value] : body.items()) {
    (void)value;
    if (key != "permissions" && key != "name") return InvalidArgumentError("role: unknown key '" + key + "'");
  }
  // "name" is accepted so that a body read with GET can be sent back with PUT;
  // it must then agree with the name the role is stored under.
  if (auto n = body.find("name"); n != body.end()) {
    if (!n->is_string()) return InvalidArgumentError("name: expected a string, got " + std::string(JsonTypeName(*n)));
    if (n->get_ref<const std::string&>() != name) return InvalidArgumentError("name: does not match the role name");
  }
  auto it = body.find("permissions");
  if (it == body.end()) return InvalidArgumentError("permissions: required");
  if (!it->is_array()) {
    return InvalidArgumentError("permissions: expected an array, got " + std::string(JsonTypeName(*it)));
  }
  if (it->size() > kMaxPermissions) return InvalidArgumentError("permissions: too many entries");
  Role role;
  role.name = std::move(name);
  for (std::size_t i = 0; i < it->size(); ++i) {
    KURA_ASSIGN_OR_RETURN(Permission p, ParsePermission((*it)[i], "permissions[" + std::to_string(i) + "]"));
    role.permissions.push_back(std::move(p));
  }
  return role;
}

nlohmann::json RoleToJson(const Role& role) {
  nlohmann::json permissions = nlohmann::json::array();
  for (const auto& p : role.permissions) {
    permissions.push_back({{"action", ActionName(p.action)},
                           {"collections", p.collections},
                           {"view", p.view == FieldView::kFull ? "full" : "masked"}});
  }
  return {{"name", role.name}, {"permissions", std::move(permissions)}};
}

Decision Decide(const Role& role, Action action, std::string_view collection) {
  Decision decision;
  for (const auto& p : role.permissions) {
    if (p.action != action || !Matches(p, collection)) continue;
    decision.allowed = true;
    // The most open view wins: one full grant is enough to see full values.
    if (p.view == FieldView::kFull) decision.view = FieldView::kFull;
  }
  return decision;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name.front())) return false;
  for (char c : name) {
    if (!lower_or_digit(c) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace kura::policy
