#include "policy/policy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

namespace kura::policy {
namespace {

using nlohmann::json;

TEST(ActionTest, EveryActionNameRoundTrips) {
  std::set<std::string_view> names;
  for (Action a : AllActions()) {
    std::string_view name = ActionName(a);
    ASSERT_TRUE(ParseAction(name).has_value()) << name;
    EXPECT_EQ(*ParseAction(name), a);
    names.insert(name);
  }
  EXPECT_EQ(AllActions().size(), 9u);
  EXPECT_EQ(names.size(), AllActions().size());  // names are distinct
  EXPECT_EQ(names, (std::set<std::string_view>{"record.read", "record.write", "record.delete", "record.export",
                                                "file.read", "file.write", "audit.read", "users.admin",
                                                "access.approve"}));
}

TEST(ActionTest, UnknownNamesAreRejected) {
  EXPECT_FALSE(ParseAction("").has_value());
  EXPECT_FALSE(ParseAction("record").has_value());
  EXPECT_FALSE(ParseAction("Record.Read").has_value());
  EXPECT_FALSE(ParseAction("record.read ").has_value());
  EXPECT_FALSE(ParseAction("*").has_value());
}

TEST(ParseRoleTest, AcceptsSpecExample) {
  json body = json::parse(
      R"({"permissions":[{"action":"record.read","collections":["customers"],"view":"masked"}]})");
  auto role = ParseRole("app", body);
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  EXPECT_EQ(role->name, "app");
  ASSERT_EQ(role->permissions.size(), 1u);
  EXPECT_EQ(role->permissions[0].action, Action::kRecordRead);
  EXPECT_EQ(role->permissions[0].collections, std::vector<std::string>{"customers"});
  EXPECT_EQ(role->permissions[0].view, FieldView::kMasked);
}

TEST(ParseRoleTest, ViewDefaultsToMaskedAndWildcardIsAccepted) {
  auto role = ParseRole("r", json::parse(R"({"permissions":[{"action":"record.write","collections":["*"]}]})"));
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  EXPECT_EQ(role->permissions[0].view, FieldView::kMasked);
  EXPECT_EQ(role->permissions[0].collections, std::vector<std::string>{"*"});
}

TEST(ParseRoleTest, EmptyPermissionListIsARoleThatMayDoNothing) {
  auto role = ParseRole("nobody", json::parse(R"({"permissions":[]})"));
  ASSERT_TRUE(role.ok());
  EXPECT_FALSE(Decide(*role, Action::kRecordRead, "customers").allowed);
}

TEST(ParseRoleTest, RoundTripsThroughJson) {
  json body = json::parse(R"({"permissions":[
      {"action":"record.read","collections":["customers","orders"],"view":"full"},
      {"action":"users.admin","collections":["*"],"view":"masked"}]})");
  auto role = ParseRole("ops", body);
  ASSERT_TRUE(role.ok());
  json out = RoleToJson(*role);
  EXPECT_EQ(out["name"], "ops");
  auto again = ParseRole("ops", out);  // GET body can be sent back with PUT
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(RoleToJson(*again), out);
}

void ExpectInvalid(const std::string& text, const std::string& needle) {
  auto role = ParseRole("r", json::parse(text));
  ASSERT_FALSE(role.ok()) << text;
  EXPECT_EQ(role.status().code(), StatusCode::kInvalidArgument) << text;
  EXPECT_NE(role.status().message().find(needle), std::string::npos)
      << text << " → " << role.status().message() << " (wanted '" << needle << "')";
}

TEST(ParseRoleTest, RejectsBadBodies) {
  ExpectInvalid(R"([])", "expected an object");
  ExpectInvalid(R"({})", "permissions: required");
  ExpectInvalid(R"({"permissions":{}})", "permissions: expected an array");
  ExpectInvalid(R"({"permissions":[],"extra":1})", "unknown key 'extra'");
  ExpectInvalid(R"({"permissions":[1]})", "permissions[0]: expected an object");
  ExpectInvalid(R"({"permissions":[{"collections":["a"]}]})", "permissions[0].action: required");
  ExpectInvalid(R"({"permissions":[{"action":"record.steal","collections":["a"]}]})",
                "permissions[0].action: unknown action");
  ExpectInvalid(R"({"permissions":[{"action":7,"collections":["a"]}]})", "permissions[0].action: expected a string");
  ExpectInvalid(R"({"permissions":[{"action":"record.read"}]})", "permissions[0].collections: required");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":[]}]})",
                "permissions[0].collections: must not be empty");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":"customers"}]})",
                "permissions[0].collections: expected an array");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":[1]}]})",
                "permissions[0].collections[0]: expected a string");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":["Bad Name"]}]})",
                "permissions[0].collections[0]: invalid collection name");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":[""]}]})",
                "permissions[0].collections[0]: invalid collection name");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":["a"],"view":"partial"}]})",
                "permissions[0].view: unknown view");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":["a"],"view":true}]})",
                "permissions[0].view: expected a string");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":["a"],"scope":"x"}]})",
                "permissions[0]: unknown key 'scope'");
  ExpectInvalid(R"({"permissions":[{"action":"record.read","collections":["a"]},{"action":"nope","collections":["a"]}]})",
                "permissions[1].action");
  ExpectInvalid(R"({"name":"other","permissions":[]})", "name: does not match");
}

TEST(DecideTest, DeniesByDefault) {
  Role empty{"empty", {}};
  for (Action a : AllActions()) {
    EXPECT_FALSE(Decide(empty, a, "customers").allowed);
    EXPECT_FALSE(Decide(empty, a, "").allowed);
  }
  Role reader{"reader", {{Action::kRecordRead, {"customers"}, FieldView::kFull}}};
  EXPECT_FALSE(Decide(reader, Action::kRecordWrite, "customers").allowed);
  EXPECT_FALSE(Decide(reader, Action::kRecordDelete, "customers").allowed);
  EXPECT_FALSE(Decide(reader, Action::kUsersAdmin, "").allowed);
}

TEST(DecideTest, ScopesToCollections) {
  Role reader{"reader", {{Action::kRecordRead, {"customers", "orders"}, FieldView::kFull}}};
  EXPECT_TRUE(Decide(reader, Action::kRecordRead, "customers").allowed);
  EXPECT_TRUE(Decide(reader, Action::kRecordRead, "orders").allowed);
  EXPECT_FALSE(Decide(reader, Action::kRecordRead, "payroll").allowed);
  EXPECT_FALSE(Decide(reader, Action::kRecordRead, "customer").allowed);   // no prefix match
  EXPECT_FALSE(Decide(reader, Action::kRecordRead, "customers2").allowed);
}

TEST(DecideTest, WildcardMatchesEveryCollection) {
  Role all{"all", {{Action::kRecordRead, {"*"}, FieldView::kMasked}}};
  EXPECT_TRUE(Decide(all, Action::kRecordRead, "customers").allowed);
  EXPECT_TRUE(Decide(all, Action::kRecordRead, "anything").allowed);
  EXPECT_TRUE(Decide(all, Action::kRecordRead, "").allowed);
  EXPECT_EQ(Decide(all, Action::kRecordRead, "x").view, FieldView::kMasked);
}

TEST(DecideTest, NonCollectionActionsNeedAnyEntry) {
  Role admin{"a", {{Action::kUsersAdmin, {"customers"}, FieldView::kFull}}};
  EXPECT_TRUE(Decide(admin, Action::kUsersAdmin, "").allowed);
}

TEST(DecideTest, FullWinsOverMasked) {
  Role role{"mixed",
            {{Action::kRecordRead, {"*"}, FieldView::kMasked}, {Action::kRecordRead, {"customers"}, FieldView::kFull}}};
  auto d = Decide(role, Action::kRecordRead, "customers");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.view, FieldView::kFull);
  auto other = Decide(role, Action::kRecordRead, "orders");
  EXPECT_TRUE(other.allowed);
  EXPECT_EQ(other.view, FieldView::kMasked);
  // Order of permissions does not matter.
  Role reversed{"rev", {role.permissions[1], role.permissions[0]}};
  EXPECT_EQ(Decide(reversed, Action::kRecordRead, "customers").view, FieldView::kFull);
  // A full grant for another action does not open the view.
  Role write_full{"wf",
                  {{Action::kRecordRead, {"*"}, FieldView::kMasked}, {Action::kRecordWrite, {"*"}, FieldView::kFull}}};
  EXPECT_EQ(Decide(write_full, Action::kRecordRead, "customers").view, FieldView::kMasked);
}

TEST(DecideTest, BuiltinAdminHasEverythingInFull) {
  Role admin = BuiltinAdminRole();
  EXPECT_EQ(admin.name, "admin");
  for (Action a : AllActions()) {
    auto d = Decide(admin, a, "customers");
    EXPECT_TRUE(d.allowed) << ActionName(a);
    EXPECT_EQ(d.view, FieldView::kFull);
    EXPECT_TRUE(Decide(admin, a, "").allowed);
  }
}

TEST(NameTest, IsValidName) {
  EXPECT_TRUE(IsValidName("acme"));
  EXPECT_TRUE(IsValidName("a"));
  EXPECT_TRUE(IsValidName("0"));
  EXPECT_TRUE(IsValidName("customers_2024-eu"));
  EXPECT_TRUE(IsValidName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidName(std::string(65, 'a')));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("_acme"));
  EXPECT_FALSE(IsValidName("-acme"));
  EXPECT_FALSE(IsValidName("Acme"));
  EXPECT_FALSE(IsValidName("ac me"));
  EXPECT_FALSE(IsValidName("a.b"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("*"));
  EXPECT_FALSE(IsValidName("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidName(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace kura::policy
