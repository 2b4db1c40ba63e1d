// Sign-in, sessions, password policy, TOTP, step-up and their audit entries,
// through the vault's public interface over a real SQLite store and a fake
// clock (issue 4's acceptance tests at the vault level).
#include "vault/vault.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "auth/totp.h"
#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::SealKind;
using testing::VaultFixture;

// The refusal texts a client sees (identity.cc): every failed password
// sign-in shares one message, so the cases cannot be told apart from outside.
constexpr char kBadLogin[] = "sign-in failed: wrong username or password, or the account is locked or disabled";
constexpr char kTotpNeeded[] = "sign-in needs a TOTP code (\"totp\") or a recovery code (\"recovery_code\")";

// Passwords that pass the strength rules (length, common list, username,
// cracklib).
constexpr char kAlicePassword[] = "zq8#Lm2vR!pW9tKd";
constexpr char kHanaPassword[] = "Hv4$Tn7wQ!xB2mZe";
const std::vector<std::string>& StrongPasswords() {
  static const std::vector<std::string> kPasswords = {"Rk3%Yb8nW@sP5qLj", "Gm6&Xc1vT#eN9zHa", "Pw2*Jd7kF!uQ4rBs",
                                                      "Ce9^Lz3hM$yV6tKo", "Nt5@Qa8gS%wD1xJi", "Bf7!Ux2mR&kH4pZc"};
  return kPasswords;
}

class IdentityTest : public VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(SealKind::kKeyfile);
    ASSERT_NE(v_, nullptr);
    root_token_ = InitKeyfile(*v_);
    root_ = Must(*v_, root_token_);
  }

  std::int64_t Now() const { return ToUnixSeconds(clock_.Now()); }
  void Advance(std::chrono::seconds d) { clock_.Advance(d); }

  static RequestContext Ctx() { return RequestContext{"req-login", "192.0.2.7", ""}; }

  static json LoginBody(const std::string& username, const std::string& password, const std::string& tenant = "") {
    json body = {{"username", username}, {"password", password}};
    if (!tenant.empty()) body["tenant"] = tenant;
    return body;
  }

  Result<Reply> Login(const std::string& username, const std::string& password, const std::string& tenant = "") {
    return v_->Login(Ctx(), LoginBody(username, password, tenant));
  }

  // Signs in (must succeed) and returns the session token.
  std::string LoginToken(const json& body) {
    auto reply = Ok(v_->Login(Ctx(), body));
    return reply.body["token"].get<std::string>();
  }

  // Creates tenant `t` as root with its first admin (kTenantAdmin), the
  // operator's whole part in a tenant. Staff do not administer a tenant, so
  // that admin signs in and makes an admin API key, which Admin(t) then acts
  // with: unlike a session, it does not run out while the clock is advanced,
  // and no sign-in policy the test sets restricts it.
  void MakeTenant(const std::string& t) {
    Ok(v_->CreateTenant(root_, {{"id", t},
                                {"name", "Tenant " + t},
                                {"admin", {{"username", kTenantAdmin}, {"password", kTenantAdminPassword}}}}));
    Caller session = SignIn(*v_, t, kTenantAdmin, kTenantAdminPassword);
    admins_[t] = Must(*v_, Ok(v_->CreateApiKey(session, t, {{"name", "admin key"}, {"role", "admin"}})).body["key"]);
  }
  // The admin key of a tenant made with MakeTenant.
  const Caller& Admin(const std::string& t) const { return admins_.at(t); }

  void MakeUser(const Caller& admin, const std::string& tenant, const std::string& username,
                const std::string& password, const std::vector<std::string>& roles) {
    Ok(v_->CreateUser(admin, tenant, {{"username", username}, {"password", password}, {"roles", roles}}));
  }

  std::string Code(std::int64_t at) const { return auth::TotpCode(totp_secret_, at); }

  // Creates operator `name` as root, signs in (restricted to TOTP
  // enrolment), enrols and confirms TOTP. Leaves the TOTP secret in
  // totp_secret_, the recovery codes in recovery_codes_, and the clock one
  // step after the confirmation (so the next code is fresh). Returns the
  // session token, now unrestricted.
  std::string EnrolledOperator(const std::string& name, const std::string& password) {
    MakeUser(root_, "", name, password, {staff_roles::kOperator});
    std::string token = LoginToken(LoginBody(name, password));
    Caller staff = Must(*v_, token);
    auto enroll = Ok(v_->TotpEnroll(staff));
    totp_secret_ = Ok(auth::Base32Decode(enroll.body["secret"].get<std::string>()));
    auto confirm = Ok(v_->TotpConfirm(staff, {{"code", Code(Now())}}));
    recovery_codes_ = confirm.body["recovery_codes"].get<std::vector<std::string>>();
    Advance(seconds(30));
    return token;
  }

  // The system trail's items matching `filters` (read as root).
  json Trail(const AuditFilters& filters) {
    AuditFilters f = filters;
    f["limit"] = "1000";
    return Ok(v_->SystemAuditTrail(root_, f)).body["items"];
  }

  std::unique_ptr<Vault> v_;
  std::string root_token_;
  Caller root_;
  std::map<std::string, Caller> admins_;  // tenant → its admin key (MakeTenant)
  Bytes totp_secret_;
  std::vector<std::string> recovery_codes_;
};

// --- 1. Bootstrap ------------------------------------------------------------------

TEST_F(IdentityTest, BootstrapStaffThenTenantAdmin) {
  // Root makes the first operator, with a password and no TOTP yet.
  auto created = Ok(v_->CreateUser(
      root_, "", {{"username", "alice"}, {"password", kAlicePassword}, {"roles", {staff_roles::kOperator}}}));
  EXPECT_TRUE(created.created);
  EXPECT_EQ(created.body["username"], "alice");
  EXPECT_EQ(created.body["totp"], false);
  EXPECT_TRUE(created.body["tenant"].is_null());
  EXPECT_FALSE(created.body.dump().find(kAlicePassword) != std::string::npos);

  // Staff always need TOTP: the first sign-in gives a session that may only enrol.
  auto login = Ok(Login("alice", kAlicePassword));
  EXPECT_EQ(login.body["restriction"], kRestrictTotpEnrollment);
  EXPECT_EQ(login.body["auth_method"], "password");
  EXPECT_EQ(login.body["expires_at"], FormatRfc3339(FromUnixSeconds(Now() + 8 * 3600)));
  std::string token = login.body["token"];
  Caller alice = Must(*v_, token);
  EXPECT_EQ(alice.principal.kind, PrincipalKind::kStaff);
  EXPECT_EQ(alice.principal.id, "alice");
  EXPECT_EQ(alice.principal.tenant_id, "");
  EXPECT_EQ(alice.principal.roles, std::vector<std::string>{staff_roles::kOperator});
  EXPECT_EQ(alice.principal.restriction, kRestrictTotpEnrollment);
  EXPECT_EQ(alice.principal.LogName(), "staff:alice");

  // What a restricted session may do: whoami, enrol, confirm. (Everything
  // else is refused by the HTTP layer's route traits on `restriction`; the
  // vault itself refuses step-up.)
  auto who = Ok(v_->Whoami(alice));
  EXPECT_EQ(who.body["kind"], "staff");
  EXPECT_EQ(who.body["restriction"], kRestrictTotpEnrollment);
  EXPECT_EQ(v_->StepUp(alice, {{"password", kAlicePassword}}).status().code(), StatusCode::kPermissionDenied);

  auto enroll = Ok(v_->TotpEnroll(alice));
  std::string secret_text = enroll.body["secret"];
  EXPECT_TRUE(enroll.body["uri"].get<std::string>().starts_with("otpauth://totp/"));
  EXPECT_NE(enroll.body["uri"].get<std::string>().find("secret=" + secret_text), std::string::npos);
  EXPECT_NE(enroll.body["qr_svg"].get<std::string>().find("<svg"), std::string::npos);
  totp_secret_ = Ok(auth::Base32Decode(secret_text));
  EXPECT_EQ(totp_secret_.size(), auth::kTotpSecretBytes);

  // A wrong code does not confirm (and the session stays restricted).
  std::string right = Code(Now());
  std::string wrong = right;
  wrong[5] = wrong[5] == '9' ? '0' : static_cast<char>(wrong[5] + 1);
  EXPECT_EQ(v_->TotpConfirm(alice, {{"code", wrong}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Must(*v_, token).principal.restriction, kRestrictTotpEnrollment);

  auto confirm = Ok(v_->TotpConfirm(alice, {{"code", right}}));
  EXPECT_EQ(confirm.body["recovery_codes"].size(), 10u);
  // Confirmation lifts the restriction of this very session.
  alice = Must(*v_, token);
  EXPECT_EQ(alice.principal.restriction, "");
  EXPECT_EQ(alice.principal.auth_method, "password+totp");
  EXPECT_EQ(Ok(v_->Whoami(alice)).body["restriction"], nullptr);
  // A confirmed enrolment is not replaced by the user.
  EXPECT_EQ(v_->TotpEnroll(alice).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(v_->TotpConfirm(alice, {{"code", right}}).status().code(), StatusCode::kAlreadyExists);

  // The confirmation code is used up: it does not sign in.
  json replayed = LoginBody("alice", kAlicePassword);
  replayed["totp"] = right;
  EXPECT_EQ(v_->Login(Ctx(), replayed).status().code(), StatusCode::kUnauthenticated);

  // From now on a password alone is not enough.
  Advance(seconds(30));
  auto no_code = Login("alice", kAlicePassword);
  EXPECT_EQ(no_code.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(no_code.status().message(), kTotpNeeded);
  json with_code = LoginBody("alice", kAlicePassword);
  with_code["totp"] = Code(Now());
  auto full = Ok(v_->Login(Ctx(), with_code));
  EXPECT_TRUE(full.body["restriction"].is_null());
  EXPECT_EQ(full.body["auth_method"], "password+totp");
  alice = Must(*v_, full.body["token"]);

  // The operator makes a tenant with its first admin; a weak admin password
  // leaves nothing behind.
  auto weak = v_->CreateTenant(
      alice, {{"id", "acme"}, {"name", "Acme"}, {"admin", {{"username", "hana"}, {"password", "short"}}}});
  EXPECT_EQ(weak.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(weak.status().message().starts_with("admin.password is too short")) << weak.status().message();
  EXPECT_EQ(v_->GetTenant(alice, "acme").status().code(), StatusCode::kNotFound);

  auto tenant = Ok(v_->CreateTenant(
      alice, {{"id", "acme"}, {"name", "Acme"}, {"admin", {{"username", "hana"}, {"password", kHanaPassword}}}}));
  EXPECT_EQ(tenant.body["admin"], "hana");

  // The tenant admin signs in with `tenant`; tenants need no TOTP by default.
  auto hana_login = Ok(Login("hana", kHanaPassword, "acme"));
  EXPECT_TRUE(hana_login.body["restriction"].is_null());
  Caller hana = Must(*v_, hana_login.body["token"]);
  EXPECT_EQ(hana.principal.kind, PrincipalKind::kUser);
  EXPECT_EQ(hana.principal.tenant_id, "acme");
  EXPECT_EQ(hana.principal.roles, std::vector<std::string>{"admin"});
  EXPECT_EQ(hana.principal.LogName(), "user:acme/hana");
  auto users = Ok(v_->ListUsers(hana, "acme", {}));
  ASSERT_EQ(users.body["items"].size(), 1u);
  EXPECT_EQ(users.body["items"][0]["username"], "hana");
  EXPECT_EQ(users.body["items"][0]["roles"], json::array({"admin"}));

  // Tenant and staff name spaces are apart: without `tenant` hana is unknown,
  // and alice is no user of acme.
  auto as_staff = Login("hana", kHanaPassword);
  EXPECT_EQ(as_staff.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(as_staff.status().message(), kBadLogin);
  auto in_tenant = Login("alice", kAlicePassword, "acme");
  EXPECT_EQ(in_tenant.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(in_tenant.status().message(), kBadLogin);
  // And a tenant admin does not manage staff.
  EXPECT_EQ(
      v_->CreateUser(hana, "",
                     {{"username", "eve"}, {"password", StrongPasswords()[0]}, {"roles", {staff_roles::kOperator}}})
          .status()
          .code(),
      StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->ListUsers(hana, "", {}).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(IdentityTest, StaffRolesAreChecked) {
  auto bad = v_->CreateUser(root_, "", {{"username", "bob"}, {"password", kAlicePassword}, {"roles", {"admin"}}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto none = v_->CreateUser(root_, "", {{"username", "bob"}, {"password", kAlicePassword}, {"roles", json::array()}});
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  // Only an operator (or root) manages staff.
  MakeUser(root_, "", "audrey", kAlicePassword, {staff_roles::kAuditor});
  Caller audrey = Must(*v_, LoginToken(LoginBody("audrey", kAlicePassword)));
  EXPECT_EQ(v_->CreateUser(audrey, "",
                           {{"username", "bob"}, {"password", kHanaPassword}, {"roles", {staff_roles::kOperator}}})
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->CreateTenant(audrey, {{"id", "acme"}, {"name", "Acme"}}).status().code(),
            StatusCode::kPermissionDenied);
}

// --- 2. Password policy ------------------------------------------------------------

TEST_F(IdentityTest, StrengthRulesOnCreateUpdateAndChange) {
  MakeTenant("acme");
  struct Case {
    std::string password;
    std::string message_prefix;
  };
  const std::vector<Case> weak = {
      {"Sh0rt!pw", "password is too short: at least 12 characters"},
      {"password1234", "password is too common"},
      {"QWERTYUIOP123", "password is too common"},
      {"xX-Hana-Wonderland-24", "password contains the username"},
      {"aaaaaaaaaaaaaaaa", "password is too weak: "},
  };
  for (const Case& c : weak) {
    auto r =
        v_->CreateUser(Admin("acme"), "acme", {{"username", "hana"}, {"password", c.password}, {"roles", {"admin"}}});
    ASSERT_FALSE(r.ok()) << c.password;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.password;
    EXPECT_TRUE(r.status().message().starts_with(c.message_prefix)) << c.password << ": " << r.status().message();
    EXPECT_EQ(r.status().message().find(c.password), std::string::npos) << "password echoed";
  }
  EXPECT_EQ(v_->GetUser(Admin("acme"), "acme", "hana").status().code(), StatusCode::kNotFound);

  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  // An administrator's reset goes through the same rules.
  for (const Case& c : weak) {
    auto r = v_->UpdateUser(Admin("acme"), "acme", "hana", {{"password", c.password}});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.password;
  }

  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Caller hana = Must(*v_, token);
  for (const Case& c : weak) {
    auto r = v_->ChangePassword(hana, {{"current_password", kHanaPassword}, {"new_password", c.password}});
    ASSERT_FALSE(r.ok()) << c.password;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.password;
    EXPECT_TRUE(r.status().message().starts_with(c.message_prefix)) << c.password << ": " << r.status().message();
  }
  // A wrong current password is refused before the new one is looked at.
  auto wrong_current =
      v_->ChangePassword(hana, {{"current_password", "not-the-password-1"}, {"new_password", StrongPasswords()[0]}});
  EXPECT_EQ(wrong_current.status().code(), StatusCode::kUnauthenticated);
  // None of the refused changes took effect.
  EXPECT_TRUE(Login("hana", kHanaPassword, "acme").ok());
}

TEST_F(IdentityTest, PasswordHistoryOfFive) {
  MakeTenant("acme");
  const std::vector<std::string>& p = StrongPasswords();  // p[0] is the first password
  MakeUser(Admin("acme"), "acme", "hana", p[0], {"admin"});
  Caller hana = Must(*v_, LoginToken(LoginBody("hana", p[0], "acme")));
  auto change = [&](const std::string& from, const std::string& to) {
    return v_->ChangePassword(hana, {{"current_password", from}, {"new_password", to}});
  };

  // The current password is not a new one.
  auto same = change(p[0], p[0]);
  EXPECT_EQ(same.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(same.status().message(), "new_password: one of the last 5 passwords; choose another");

  // Four changes: p[0] .. p[4] are now the last five.
  for (int i = 1; i <= 4; ++i) {
    auto r = change(p[i - 1], p[i]);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_TRUE(r->no_content);
  }
  for (int i = 0; i <= 4; ++i) {
    auto r = change(p[4], p[i]);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "p[" << i << "] reused";
  }
  // The fifth change pushes p[0] out of the history: it is accepted again.
  Ok(change(p[4], p[5]));
  EXPECT_EQ(change(p[5], p[1]).status().code(), StatusCode::kInvalidArgument);  // still within the last five
  Ok(change(p[5], p[0]));

  // The new password signs in, the old one does not.
  EXPECT_TRUE(Login("hana", p[0], "acme").ok());
  auto old = Login("hana", p[5], "acme");
  EXPECT_EQ(old.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(old.status().message(), kBadLogin);
}

TEST_F(IdentityTest, ExpiredPasswordRestrictsTheSessionUntilChanged) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::int64_t set_at = Now();
  EXPECT_EQ(Ok(v_->GetUser(Admin("acme"), "acme", "hana")).body["password_expires_at"],
            FormatRfc3339(FromUnixSeconds(set_at + 90 * 86400)));

  Advance(std::chrono::hours(24 * 90) - seconds(1));
  EXPECT_TRUE(Ok(Login("hana", kHanaPassword, "acme")).body["restriction"].is_null());

  Advance(seconds(2));  // past 90 days
  auto login = Ok(Login("hana", kHanaPassword, "acme"));
  EXPECT_EQ(login.body["restriction"], kRestrictPasswordChange);
  std::string token = login.body["token"];
  Caller hana = Must(*v_, token);
  EXPECT_EQ(hana.principal.restriction, kRestrictPasswordChange);
  // Nothing but the change (and whoami): the vault refuses enrolment and step-up.
  EXPECT_EQ(v_->TotpEnroll(hana).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->StepUp(hana, {{"password", kHanaPassword}}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Ok(v_->Whoami(hana)).body["restriction"], kRestrictPasswordChange);
  // The expired password is still the current one: not reusable.
  EXPECT_EQ(
      v_->ChangePassword(hana, {{"current_password", kHanaPassword}, {"new_password", kHanaPassword}}).status().code(),
      StatusCode::kInvalidArgument);

  const std::string& next = StrongPasswords()[0];
  Ok(v_->ChangePassword(hana, {{"current_password", kHanaPassword}, {"new_password", next}}));
  EXPECT_EQ(Must(*v_, token).principal.restriction, "");
  EXPECT_TRUE(Ok(Login("hana", next, "acme")).body["restriction"].is_null());
}

TEST_F(IdentityTest, ExpiredStaffPasswordLeavesTotpEnrolmentDue) {
  MakeUser(root_, "", "bob", kAlicePassword, {staff_roles::kSupport});
  Advance(std::chrono::hours(24 * 91));
  std::string token = LoginToken(LoginBody("bob", kAlicePassword));
  EXPECT_EQ(Must(*v_, token).principal.restriction, kRestrictPasswordChange);
  Ok(v_->ChangePassword(Must(*v_, token), {{"current_password", kAlicePassword}, {"new_password", kHanaPassword}}));
  // The password is new, TOTP is still missing.
  EXPECT_EQ(Must(*v_, token).principal.restriction, kRestrictTotpEnrollment);
}

TEST_F(IdentityTest, AdministratorResetForcesAChangeAtNextSignIn) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"reader"});
  const std::string& reset = StrongPasswords()[0];
  Ok(v_->UpdateUser(Admin("acme"), "acme", "hana", {{"password", reset}}));
  EXPECT_EQ(Login("hana", kHanaPassword, "acme").status().code(), StatusCode::kUnauthenticated);
  auto login = Ok(Login("hana", reset, "acme"));
  EXPECT_EQ(login.body["restriction"], kRestrictPasswordChange);
}

TEST_F(IdentityTest, AdministratorResetForcesAChangeEvenWithoutPasswordExpiry) {
  // With "passwords never expire" (max_age_days 0), a password an
  // administrator set must still be changed at the next sign-in.
  MakeTenant("acme");
  Ok(v_->PutAuthPolicy(Admin("acme"), "acme", {{"max_age_days", 0}}));
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"reader"});
  EXPECT_TRUE(Ok(Login("hana", kHanaPassword, "acme")).body["restriction"].is_null());
  const std::string& reset = StrongPasswords()[0];
  Ok(v_->UpdateUser(Admin("acme"), "acme", "hana", {{"password", reset}}));
  auto login = Ok(Login("hana", reset, "acme"));
  EXPECT_EQ(login.body["restriction"], kRestrictPasswordChange);
}

// --- 3. Lockout ---------------------------------------------------------------------

TEST_F(IdentityTest, LockoutAfterFiveFailuresAndItsExpiry) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});

  auto wrong = Login("hana", "wrong-password-0", "acme");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status().message(), kBadLogin);
  for (int i = 1; i < 5; ++i) {
    Advance(minutes(2));  // all five within the 15-minute window
    auto r = Login("hana", "wrong-password-" + std::to_string(i), "acme");
    EXPECT_EQ(r.status().code(), wrong.status().code());
    EXPECT_EQ(r.status().message(), wrong.status().message());
  }
  std::int64_t locked_at = Now();
  EXPECT_FALSE(Ok(v_->GetUser(Admin("acme"), "acme", "hana")).body["locked_until"].is_null());

  // Locked: the right password is refused, and looks just like a wrong one.
  auto locked = Login("hana", kHanaPassword, "acme");
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.status().code(), wrong.status().code());
  EXPECT_EQ(locked.status().message(), wrong.status().message());

  // An unknown user (in a known tenant, in an unknown tenant, or not even a
  // valid name) is refused identically.
  for (const auto& [user, tenant] : std::vector<std::pair<std::string, std::string>>{
           {"nobody", "acme"}, {"hana", "globex"}, {"Not A Name!", "acme"}}) {
    auto r = Login(user, kHanaPassword, tenant);
    ASSERT_FALSE(r.ok()) << user;
    EXPECT_EQ(r.status().code(), wrong.status().code()) << user;
    EXPECT_EQ(r.status().message(), wrong.status().message()) << user;
  }

  // Failures while locked do not extend the lock.
  Advance(minutes(10));
  EXPECT_EQ(Login("hana", "wrong-password-x", "acme").status().message(), kBadLogin);
  Advance(seconds(locked_at + 15 * 60 - 1 - Now()));
  EXPECT_EQ(Login("hana", kHanaPassword, "acme").status().message(), kBadLogin);  // 1 s to go
  Advance(seconds(1));
  auto after = Login("hana", kHanaPassword, "acme");
  EXPECT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(Ok(v_->GetUser(Admin("acme"), "acme", "hana")).body["locked_until"].is_null());
}

TEST_F(IdentityTest, FailuresSpreadBeyondTheWindowDoNotLock) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  // Five failures over 16 minutes: the fifth opens a new window.
  for (int i = 0; i < 5; ++i) {
    if (i > 0) Advance(minutes(4));
    EXPECT_EQ(Login("hana", "wrong-password-" + std::to_string(i), "acme").status().message(), kBadLogin);
  }
  auto r = Login("hana", kHanaPassword, "acme");
  EXPECT_TRUE(r.ok()) << r.status().ToString();

  // A success resets the count: four more failures do not lock either.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(Login("hana", "wrong-password-y", "acme").ok());
  EXPECT_TRUE(Login("hana", kHanaPassword, "acme").ok());
}

TEST_F(IdentityTest, DisabledUserLooksLikeAWrongPassword) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  Ok(v_->UpdateUser(Admin("acme"), "acme", "hana", {{"disabled", true}}));
  auto r = Login("hana", kHanaPassword, "acme");
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(), kBadLogin);
  Ok(v_->UpdateUser(Admin("acme"), "acme", "hana", {{"disabled", false}}));
  EXPECT_TRUE(Login("hana", kHanaPassword, "acme").ok());
}

TEST_F(IdentityTest, AdministratorUnlocks) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Login("hana", "wrong-password-z", "acme").ok());
  EXPECT_FALSE(Login("hana", kHanaPassword, "acme").ok());
  Ok(v_->UpdateUser(Admin("acme"), "acme", "hana", {{"unlock", true}}));
  EXPECT_TRUE(Login("hana", kHanaPassword, "acme").ok());
}

// --- 4. Sessions --------------------------------------------------------------------

TEST_F(IdentityTest, IdleTimeout) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Advance(minutes(14));
  EXPECT_TRUE(v_->Authenticate(token).ok());  // use: the idle clock starts again
  Advance(minutes(14));
  EXPECT_TRUE(v_->Authenticate(token).ok());
  Advance(minutes(16));
  auto idle = v_->Authenticate(token);
  EXPECT_EQ(idle.status().code(), StatusCode::kUnauthenticated);
  // Idle is final: later use does not revive it.
  EXPECT_EQ(v_->Authenticate(token).status().code(), StatusCode::kUnauthenticated);
}

// The HTTP server's I/O thread checks a session under an AuditDeferral: the
// record of its use is queued to the store's writer, not waited for, and
// still keeps the session from going idle.
TEST_F(IdentityTest, IdleTimeoutWithTheUseQueued) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  auto use_deferred = [&]() -> Status {
    AuditDeferral d;
    d.Install();
    auto principal = v_->Authenticate(token);
    // An audited read after it: its entry is queued behind the session's
    // use, so once it is durable the use is written too.
    if (principal.ok()) {
      auto read = v_->GetUser(As(*principal), "acme", "hana");
      EXPECT_TRUE(read.ok()) << read.status().ToString();
    }
    d.Uninstall();
    std::promise<Status> durable;
    auto result = durable.get_future();
    d.OnDurable([&durable](Status s) { durable.set_value(std::move(s)); });
    EXPECT_TRUE(result.get().ok());
    return principal.status();
  };
  Advance(minutes(14));
  EXPECT_TRUE(use_deferred().ok());  // use: the idle clock starts again
  Advance(minutes(14));
  EXPECT_TRUE(use_deferred().ok());
  Advance(minutes(14));
  EXPECT_TRUE(v_->Authenticate(token).ok());
  Advance(minutes(16));
  EXPECT_EQ(use_deferred().code(), StatusCode::kUnauthenticated);
}

TEST_F(IdentityTest, AbsoluteLifetimeDespiteUse) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::int64_t start = Now();
  auto login = Ok(Login("hana", kHanaPassword, "acme"));
  std::string token = login.body["token"];
  EXPECT_EQ(login.body["expires_at"], FormatRfc3339(FromUnixSeconds(start + 8 * 3600)));
  // Used every 10 minutes: never idle.
  while (Now() + 10 * 60 < start + 8 * 3600) {
    Advance(minutes(10));
    ASSERT_TRUE(v_->Authenticate(token).ok()) << "at +" << (Now() - start) << " s";
  }
  Advance(seconds(start + 8 * 3600 - 1 - Now()));
  EXPECT_TRUE(v_->Authenticate(token).ok());  // 1 s before the end
  Advance(seconds(1));
  EXPECT_EQ(v_->Authenticate(token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(IdentityTest, LogoutRevokeDisableAndDeleteEndSessions) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  MakeUser(Admin("acme"), "acme", "ken", StrongPasswords()[0], {"reader"});
  std::string hana_token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Caller hana = Must(*v_, hana_token);

  // Logout ends this session only.
  std::string first = LoginToken(LoginBody("ken", StrongPasswords()[0], "acme"));
  std::string second = LoginToken(LoginBody("ken", StrongPasswords()[0], "acme"));
  auto out = Ok(v_->Logout(Must(*v_, first)));
  EXPECT_TRUE(out.no_content);
  EXPECT_EQ(v_->Authenticate(first).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(v_->Authenticate(second).ok());
  // Logout needs a session: root and API keys have none.
  EXPECT_EQ(v_->Logout(root_).status().code(), StatusCode::kPermissionDenied);

  // The tenant admin revokes every session of ken.
  std::string third = LoginToken(LoginBody("ken", StrongPasswords()[0], "acme"));
  auto revoked = Ok(v_->RevokeUserSessions(hana, "acme", "ken"));
  EXPECT_EQ(revoked.body["revoked"], 2);  // second and third; first was already gone
  EXPECT_EQ(v_->Authenticate(second).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(v_->Authenticate(third).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(v_->Authenticate(hana_token).ok());  // other users keep theirs
  EXPECT_EQ(v_->RevokeUserSessions(hana, "acme", "nobody").status().code(), StatusCode::kNotFound);

  // Disabled: the session is refused while the account is disabled.
  std::string fourth = LoginToken(LoginBody("ken", StrongPasswords()[0], "acme"));
  Ok(v_->UpdateUser(hana, "acme", "ken", {{"disabled", true}}));
  EXPECT_EQ(v_->Authenticate(fourth).status().code(), StatusCode::kUnauthenticated);
  Ok(v_->UpdateUser(hana, "acme", "ken", {{"disabled", false}}));

  // Deleted: the session is gone, also for a new account of the same name.
  std::string fifth = LoginToken(LoginBody("ken", StrongPasswords()[0], "acme"));
  EXPECT_TRUE(v_->Authenticate(fifth).ok());
  EXPECT_TRUE(Ok(v_->DeleteUser(hana, "acme", "ken")).no_content);
  EXPECT_EQ(v_->Authenticate(fifth).status().code(), StatusCode::kUnauthenticated);
  MakeUser(hana, "acme", "ken", StrongPasswords()[0], {"reader"});
  EXPECT_EQ(v_->Authenticate(fifth).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(v_->GetUser(hana, "acme", "nobody").status().code(), StatusCode::kNotFound);
}

TEST_F(IdentityTest, TenantDeletionEndsItsSessions) {
  std::string alice_token = EnrolledOperator("alice", kAlicePassword);
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Ok(v_->DeleteTenant(Must(*v_, alice_token), "acme"));
  EXPECT_EQ(v_->Authenticate(token).status().code(), StatusCode::kUnauthenticated);
}

// --- 5. TOTP and step-up ------------------------------------------------------------

TEST_F(IdentityTest, TotpSignInReplayAndSkew) {
  EnrolledOperator("alice", kAlicePassword);
  auto with = [&](const std::string& code) {
    json body = LoginBody("alice", kAlicePassword);
    body["totp"] = code;
    return v_->Login(Ctx(), body);
  };
  std::int64_t t = Now();
  auto ok = with(Code(t));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body["auth_method"], "password+totp");
  EXPECT_TRUE(ok->body["restriction"].is_null());
  EXPECT_EQ(Must(*v_, ok->body["token"]).principal.auth_method, "password+totp");

  // The same code again, same moment: a replay.
  auto replay = with(Code(t));
  EXPECT_EQ(replay.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(replay.status().message(), kTotpNeeded);

  // Three steps later: a code two steps old is refused (skew is one step),
  // a code one step old is accepted, and then the current one.
  Advance(seconds(90));
  EXPECT_EQ(with(Code(Now() - 60)).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(with(Code(Now() - 30)).ok());
  EXPECT_EQ(with(Code(Now() - 30)).status().code(), StatusCode::kUnauthenticated);  // used
  EXPECT_TRUE(with(Code(Now())).ok());
  // A code of the next step is accepted too, and then nothing older.
  Advance(seconds(30));
  EXPECT_TRUE(with(Code(Now() + 30)).ok());
  EXPECT_EQ(with(Code(Now())).status().code(), StatusCode::kUnauthenticated);
  // Garbage is refused like a wrong code.
  EXPECT_EQ(with("12345").status().code(), StatusCode::kUnauthenticated);

  // A right code after a wrong password is still a wrong password.
  Advance(seconds(60));
  json bad = LoginBody("alice", "wrong-password-0");
  bad["totp"] = Code(Now());
  auto bad_password = v_->Login(Ctx(), bad);
  EXPECT_EQ(bad_password.status().message(), kBadLogin);
}

TEST_F(IdentityTest, MissingCodeDoesNotCountTowardsLockout) {
  EnrolledOperator("alice", kAlicePassword);
  for (int i = 0; i < 7; ++i) {
    auto r = Login("alice", kAlicePassword);
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(r.status().message(), kTotpNeeded);
  }
  json body = LoginBody("alice", kAlicePassword);
  body["totp"] = Code(Now());
  EXPECT_TRUE(v_->Login(Ctx(), body).ok());
}

TEST_F(IdentityTest, WrongCodesLockTheAccount) {
  EnrolledOperator("alice", kAlicePassword);
  for (int i = 0; i < 5; ++i) {
    json body = LoginBody("alice", kAlicePassword);
    body["totp"] = "000000" == Code(Now()) ? "111111" : "000000";
    EXPECT_EQ(v_->Login(Ctx(), body).status().code(), StatusCode::kUnauthenticated);
  }
  json body = LoginBody("alice", kAlicePassword);
  body["totp"] = Code(Now());
  auto locked = v_->Login(Ctx(), body);
  EXPECT_EQ(locked.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(locked.status().message(), kBadLogin);
}

TEST_F(IdentityTest, RecoveryCodesWorkOnce) {
  EnrolledOperator("alice", kAlicePassword);
  ASSERT_EQ(recovery_codes_.size(), 10u);
  auto with = [&](const std::string& code) {
    json body = LoginBody("alice", kAlicePassword);
    body["recovery_code"] = code;
    return v_->Login(Ctx(), body);
  };
  auto first = with(recovery_codes_[0]);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->body["auth_method"], "recovery_code");
  EXPECT_EQ(first->body["recovery_codes_left"], 9);
  EXPECT_EQ(Must(*v_, first->body["token"]).principal.auth_method, "recovery_code");
  EXPECT_EQ(with(recovery_codes_[0]).status().code(), StatusCode::kUnauthenticated);

  // Case, dashes and spaces do not matter.
  std::string loose;
  for (char c : recovery_codes_[1]) {
    if (c != '-') loose += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  auto second = with(loose);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->body["recovery_codes_left"], 8);
  EXPECT_EQ(with(recovery_codes_[1]).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(with("AAAA-BBBB-CCCC-DDDD").status().code(), StatusCode::kUnauthenticated);
  // The codes need the password too.
  json no_password = LoginBody("alice", "wrong-password-0");
  no_password["recovery_code"] = recovery_codes_[2];
  EXPECT_EQ(v_->Login(Ctx(), no_password).status().message(), kBadLogin);
  EXPECT_TRUE(with(recovery_codes_[2]).ok());
}

TEST_F(IdentityTest, StepUpGuardsSensitiveActions) {
  std::string token = EnrolledOperator("alice", kAlicePassword);
  Caller alice = Must(*v_, token);
  Ok(v_->CreateTenant(alice, {{"id", "acme"}, {"name", "Acme"}}));
  Ok(v_->CreateTenant(alice, {{"id", "globex"}, {"name", "Globex"}}));

  // Signed in 30 s ago (the enrolment): fresh enough.
  EXPECT_TRUE(Ok(v_->DeleteTenant(alice, "globex")).no_content);

  // Six minutes later (the session kept alive by use): too old.
  Advance(minutes(3));
  alice = Must(*v_, token);
  Advance(minutes(3));
  alice = Must(*v_, token);
  auto stale = v_->DeleteTenant(alice, "acme");
  EXPECT_EQ(stale.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Ok(v_->GetTenant(alice, "acme")).body.is_object());  // still there

  // Step-up takes the strongest factor: with TOTP enrolled, the password won't do.
  EXPECT_EQ(v_->StepUp(alice, {{"password", kAlicePassword}}).status().code(), StatusCode::kInvalidArgument);
  std::string wrong = Code(Now()) == "000000" ? "111111" : "000000";
  EXPECT_EQ(v_->StepUp(alice, {{"totp", wrong}}).status().code(), StatusCode::kUnauthenticated);
  auto stepped = Ok(v_->StepUp(alice, {{"totp", Code(Now())}}));
  EXPECT_EQ(stepped.body["authenticated_at"], FormatRfc3339(clock_.Now()));
  EXPECT_EQ(stepped.body["fresh_until"], FormatRfc3339(FromUnixSeconds(Now() + 300)));
  // The same code cannot step up twice.
  EXPECT_EQ(v_->StepUp(alice, {{"totp", Code(Now())}}).status().code(), StatusCode::kUnauthenticated);

  alice = Must(*v_, token);  // the principal carries the new authentication time
  EXPECT_EQ(alice.principal.authenticated_at, Now());
  EXPECT_TRUE(Ok(v_->DeleteTenant(alice, "acme")).no_content);
}

TEST_F(IdentityTest, StepUpWithPasswordWithoutTotp) {
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Advance(minutes(10));
  Caller hana = Must(*v_, token);
  std::int64_t before = hana.principal.authenticated_at;
  EXPECT_EQ(v_->StepUp(hana, json::object()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->StepUp(hana, {{"password", "wrong-password-0"}}).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(Must(*v_, token).principal.authenticated_at, before);
  Ok(v_->StepUp(hana, {{"password", kHanaPassword}}));
  EXPECT_EQ(Must(*v_, token).principal.authenticated_at, Now());

  // A tenant may demand TOTP for step-up.
  Ok(v_->PutAuthPolicy(Admin("acme"), "acme", {{"step_up_requires_totp", true}}));
  EXPECT_EQ(v_->StepUp(hana, {{"password", kHanaPassword}}).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(IdentityTest, LockedAccountCannotStepUp) {
  // A session is no way around a lockout: step-up counts failures like a
  // sign-in and refuses every guess while the account is locked.
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"admin"});
  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Advance(minutes(1));
  Caller hana = Must(*v_, token);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(v_->StepUp(hana, {{"password", "wrong-password-" + std::to_string(i)}}).status().code(),
              StatusCode::kUnauthenticated);
  }
  // Five wrong step-ups lock the account like five wrong sign-ins.
  EXPECT_FALSE(Ok(v_->GetUser(Admin("acme"), "acme", "hana")).body["locked_until"].is_null());
  EXPECT_EQ(Login("hana", kHanaPassword, "acme").status().message(), kBadLogin);
  // While locked, step-up must not succeed either.
  EXPECT_EQ(v_->StepUp(hana, {{"password", kHanaPassword}}).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(Must(*v_, token).principal.authenticated_at, hana.principal.authenticated_at);
}

// --- 6. Audit -------------------------------------------------------------------------

TEST_F(IdentityTest, SignInEventsAreAudited) {
  std::string alice_token = EnrolledOperator("alice", kAlicePassword);
  Caller alice = Must(*v_, alice_token);
  Ok(v_->CreateTenant(
      alice, {{"id", "acme"}, {"name", "Acme"}, {"admin", {{"username", "hana"}, {"password", kHanaPassword}}}}));

  // hana signs in, makes the tenant an admin key (the tenant's users are
  // its admins' to manage, not staff's), changes her password, signs out.
  std::string token = LoginToken(LoginBody("hana", kHanaPassword, "acme"));
  Caller hana = Must(*v_, token);
  Caller acme_admin =
      Must(*v_, Ok(v_->CreateApiKey(hana, "acme", {{"name", "admin key"}, {"role", "admin"}})).body["key"]);
  Ok(v_->ChangePassword(hana, {{"current_password", kHanaPassword}, {"new_password", StrongPasswords()[1]}}));
  Ok(v_->Logout(hana));
  // Four wrong passwords, the fifth locks, then a try while locked.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Login("hana", "wrong-password-" + std::to_string(i), "acme").ok());
  EXPECT_FALSE(Login("hana", StrongPasswords()[1], "acme").ok());
  // An unknown user and a disabled one.
  EXPECT_FALSE(Login("nobody", kHanaPassword, "acme").ok());
  MakeUser(acme_admin, "acme", "ken", StrongPasswords()[0], {"reader"});
  Ok(v_->UpdateUser(acme_admin, "acme", "ken", {{"disabled", true}}));
  EXPECT_FALSE(Login("ken", StrongPasswords()[0], "acme").ok());
  // alice: a wrong second factor.
  json bad_code = LoginBody("alice", kAlicePassword);
  bad_code["totp"] = Code(Now()) == "000000" ? "111111" : "000000";
  EXPECT_FALSE(v_->Login(Ctx(), bad_code).ok());

  // The lock runs out; hana signs in again, gets her current password wrong
  // in a change, and omar, another admin of acme, revokes her sessions (the
  // operator manages staff, not the users of a tenant).
  MakeUser(acme_admin, "acme", "omar", StrongPasswords()[3], {"admin"});
  Caller omar = Must(*v_, LoginToken(LoginBody("omar", StrongPasswords()[3], "acme")));
  EXPECT_EQ(v_->RevokeUserSessions(alice, "acme", "hana").status().code(), StatusCode::kPermissionDenied);
  Advance(minutes(15));
  std::string second = LoginToken(LoginBody("hana", StrongPasswords()[1], "acme"));
  EXPECT_EQ(v_->ChangePassword(Must(*v_, second),
                               {{"current_password", "wrong-password-9"}, {"new_password", StrongPasswords()[2]}})
                .status()
                .code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(Ok(v_->RevokeUserSessions(omar, "acme", "hana")).body["revoked"], 1);
  EXPECT_EQ(v_->Authenticate(second).status().code(), StatusCode::kUnauthenticated);

  auto count = [&](const std::string& principal, const std::string& action, const std::string& outcome) {
    json items = Trail({{"principal", principal}, {"action", action}, {"outcome", outcome}});
    for (const json& item : items) {
      EXPECT_EQ(item["principal"], principal);
      EXPECT_EQ(item["action"], action);
      EXPECT_EQ(item["outcome"], outcome);
    }
    return items.size();
  };
  const std::string hana_name = "user:acme/hana";
  EXPECT_EQ(count(hana_name, actions::kLogin, "success"), 2u);
  EXPECT_EQ(count(hana_name, actions::kLogin, "bad_password"), 4u);
  // The failure that locks, then the refusal while locked.
  EXPECT_EQ(count(hana_name, actions::kLogin, "locked_out"), 2u);
  EXPECT_EQ(count("user:acme/nobody", actions::kLogin, "unknown_user"), 1u);
  EXPECT_EQ(count("user:acme/ken", actions::kLogin, "disabled"), 1u);
  EXPECT_EQ(count("staff:alice", actions::kLogin, "bad_second_factor"), 1u);
  EXPECT_EQ(count("staff:alice", actions::kLogin, "success"), 1u);  // the first, restricted sign-in
  EXPECT_EQ(count("staff:alice", actions::kTotpEnroll, "success"), 1u);
  EXPECT_EQ(count("staff:alice", actions::kTotpConfirm, "success"), 1u);
  EXPECT_EQ(count(hana_name, actions::kPasswordChange, "success"), 1u);
  EXPECT_EQ(count(hana_name, actions::kPasswordChange, "bad_password"), 1u);
  EXPECT_EQ(count(hana_name, actions::kLogout, "success"), 1u);
  EXPECT_EQ(count("user:acme/omar", actions::kSessionRevoke, "success"), 1u);
  EXPECT_EQ(count("staff:alice", actions::kSessionRevoke, "permission_denied"), 1u);
  EXPECT_EQ(count("user:acme/omar", actions::kLogin, "success"), 1u);
  // Every sign-in attempt left exactly one entry: 2 + 4 + 2 + 1 + 1 + 1 + 1 + 1.
  EXPECT_EQ(Trail({{"action", actions::kLogin}}).size(), 13u);

  // Where they happened: the login entries name the tenant and resource.
  json revoke = Trail({{"action", actions::kSessionRevoke}, {"outcome", "success"}});
  ASSERT_EQ(revoke.size(), 1u);
  EXPECT_EQ(revoke[0]["tenant"], "acme");
  EXPECT_EQ(revoke[0]["resource"], "users/hana/sessions");
  for (const json& item : Trail({{"principal", hana_name}, {"action", actions::kLogin}})) {
    EXPECT_EQ(item["tenant"], "acme");
    EXPECT_EQ(item["resource"], "auth/login");
  }
  // Secrets never reach the log.
  for (const json& item : Trail({})) {
    const std::string entry = item["entry"];
    for (const std::string& secret : {std::string(kHanaPassword), std::string(kAlicePassword), StrongPasswords()[0],
                                      StrongPasswords()[1], token, second, alice_token}) {
      EXPECT_EQ(entry.find(secret), std::string::npos) << "secret in audit entry " << item["seq"];
    }
  }
}

// --- 7. Tenant isolation and user roles ---------------------------------------------

TEST_F(IdentityTest, TenantUsersStayInTheirTenant) {
  Caller acme_admin, globex_admin;
  std::string acme_key = SetUpTenant(*v_, root_, "acme", &acme_admin);
  SetUpTenant(*v_, root_, "globex", &globex_admin);
  MakeUser(acme_admin, "acme", "hana", kHanaPassword, {"admin"});
  MakeUser(globex_admin, "globex", "gina", StrongPasswords()[0], {"admin"});
  Caller hana = Must(*v_, LoginToken(LoginBody("hana", kHanaPassword, "acme")));

  EXPECT_EQ(v_->GetUser(hana, "globex", "gina").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->ListUsers(hana, "globex", {}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(
      v_->CreateUser(hana, "globex", {{"username", "mole"}, {"password", StrongPasswords()[1]}, {"roles", {"admin"}}})
          .status()
          .code(),
      StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->UpdateUser(hana, "globex", "gina", {{"disabled", true}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->RevokeUserSessions(hana, "globex", "gina").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->DeleteUser(hana, "globex", "gina").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->GetAuthPolicy(hana, "globex").status().code(), StatusCode::kPermissionDenied);
  // A missing user of another tenant looks the same as an existing one.
  EXPECT_EQ(v_->GetUser(hana, "globex", "nobody").status().code(), StatusCode::kPermissionDenied);
  // gina is untouched and still signs in.
  EXPECT_TRUE(Login("gina", StrongPasswords()[0], "globex").ok());
  // Her own tenant, hana manages: its first admin and herself.
  EXPECT_EQ(Ok(v_->ListUsers(hana, "acme", {})).body["items"].size(), 2u);

  // Records: a user's roles give the rights.
  Caller admin_key = Must(*v_, acme_key);
  std::string id =
      Ok(v_->CreateRecord(admin_key, "acme", "customers", {{"data", {{"email", "a@b.example"}}}})).body["id"];
  Ok(v_->PutRole(hana, "acme", "reader", json::parse(R"({"permissions":[
      {"action":"record.read","collections":["customers"],"view":"full"}]})")));
  MakeUser(hana, "acme", "rita", StrongPasswords()[1], {"reader"});
  Caller rita = Must(*v_, LoginToken(LoginBody("rita", StrongPasswords()[1], "acme")));
  EXPECT_EQ(rita.principal.roles, std::vector<std::string>{"reader"});
  auto read = Ok(v_->GetRecord(rita, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(read.body["data"]["email"], "a@b.example");
  EXPECT_EQ(v_->CreateRecord(rita, "acme", "customers", {{"data", {{"email", "c@d.example"}}}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->ListUsers(rita, "acme", {}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->GetRecord(rita, "globex", "customers", id, std::nullopt).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->GetRecord(hana, "globex", "customers", id, std::nullopt).status().code(),
            StatusCode::kPermissionDenied);

  // Roles changed by the admin apply to the next request of the same session.
  std::string rita_token = LoginToken(LoginBody("rita", StrongPasswords()[1], "acme"));
  Ok(v_->UpdateUser(hana, "acme", "rita", {{"roles", {"nothing"}}}));
  EXPECT_EQ(v_->GetRecord(Must(*v_, rita_token), "acme", "customers", id, std::nullopt).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(IdentityTest, StaffDoNotManageATenantsUsers) {
  // Root and operators make a tenant with its first admin; from there the
  // tenant's users and sign-in policy are its admins' (SPEC §1).
  std::string alice_token = EnrolledOperator("alice", kAlicePassword);
  Caller alice = Must(*v_, alice_token);
  MakeTenant("acme");
  MakeUser(Admin("acme"), "acme", "hana", kHanaPassword, {"reader"});
  for (const Caller* staff : {&root_, &alice}) {
    const std::string who = staff->principal.LogName();
    EXPECT_EQ(
        v_->CreateUser(*staff, "acme", {{"username", "mole"}, {"password", StrongPasswords()[1]}, {"roles", {"admin"}}})
            .status()
            .code(),
        StatusCode::kPermissionDenied)
        << who;
    EXPECT_EQ(v_->GetUser(*staff, "acme", "hana").status().code(), StatusCode::kPermissionDenied) << who;
    EXPECT_EQ(v_->ListUsers(*staff, "acme", {}).status().code(), StatusCode::kPermissionDenied) << who;
    EXPECT_EQ(v_->UpdateUser(*staff, "acme", "hana", {{"roles", {"admin"}}}).status().code(),
              StatusCode::kPermissionDenied)
        << who;
    EXPECT_EQ(v_->UpdateUser(*staff, "acme", "hana", {{"unlock", true}}).status().code(), StatusCode::kPermissionDenied)
        << who;
    EXPECT_EQ(v_->RevokeUserSessions(*staff, "acme", "hana").status().code(), StatusCode::kPermissionDenied) << who;
    EXPECT_EQ(v_->DeleteUser(*staff, "acme", "hana").status().code(), StatusCode::kPermissionDenied) << who;
    EXPECT_EQ(v_->GetAuthPolicy(*staff, "acme").status().code(), StatusCode::kPermissionDenied) << who;
    EXPECT_EQ(v_->PutAuthPolicy(*staff, "acme", {{"require_totp", true}}).status().code(),
              StatusCode::kPermissionDenied)
        << who;
  }
  // Nothing changed: hana is still a reader without TOTP, mole was never made.
  auto hana = Ok(v_->GetUser(Admin("acme"), "acme", "hana"));
  EXPECT_EQ(hana.body["roles"], json::array({"reader"}));
  EXPECT_EQ(v_->GetUser(Admin("acme"), "acme", "mole").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Ok(v_->GetAuthPolicy(Admin("acme"), "acme")).body["require_totp"], false);
  EXPECT_TRUE(Ok(Login("hana", kHanaPassword, "acme")).body["restriction"].is_null());
}

// --- 8. Root token revocation -----------------------------------------------------------

TEST_F(IdentityTest, OperatorRevokesTheRootToken) {
  std::string token = EnrolledOperator("alice", kAlicePassword);
  MakeUser(root_, "", "audrey", kHanaPassword, {staff_roles::kAuditor});
  Caller audrey = Must(*v_, LoginToken(LoginBody("audrey", kHanaPassword)));
  EXPECT_EQ(v_->RevokeRootToken(audrey).status().code(), StatusCode::kPermissionDenied);

  // Not fresh: refused.
  Advance(minutes(4));
  Must(*v_, token);
  Advance(minutes(2));
  Caller alice = Must(*v_, token);
  EXPECT_EQ(v_->RevokeRootToken(alice).status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(v_->Authenticate(root_token_).ok());

  Ok(v_->StepUp(alice, {{"totp", Code(Now())}}));
  alice = Must(*v_, token);
  EXPECT_TRUE(Ok(v_->RevokeRootToken(alice)).no_content);
  auto refused = v_->Authenticate(root_token_);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(v_->RevokeRootToken(alice).status().code(), StatusCode::kNotFound);
  // The operator carries on.
  Ok(v_->CreateTenant(alice, {{"id", "acme"}, {"name", "Acme"}}));
}

TEST_F(IdentityTest, RootRevokesItself) {
  EXPECT_TRUE(Ok(v_->RevokeRootToken(root_)).no_content);
  EXPECT_EQ(v_->Authenticate(root_token_).status().code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace kura::vault
