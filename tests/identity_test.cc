// Identity end to end (SPEC §3 Authentication, §9 auth routes): the real
// binary over real HTTPS. The bootstrap (root token → first operator → TOTP
// enrolment → tenant with its first admin → root token revoked), sign-in
// with TOTP computed by an independent implementation (Python's hmac), replay
// and lockout refused with the same answer as a wrong password, restricted
// sessions, step-up, sessions revoked, every sign-in event in the audit log.
#include <string>
#include <vector>

#include "harness.h"
#include "identity_support.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

constexpr const char* kOperatorPassword = kStaffPassword;
constexpr const char* kAdminPassword = kUserPassword;

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Cheap password hashes: the tests check behaviour, not cost.
    config_ = dir_.Sub("kura.toml");
    ASSERT_TRUE(WriteFile(config_, "[auth]\npassword_hash_memory_kib = 256\npassword_hash_iterations = 1\n"));
    ServerOptions options;
    options.config_file = config_;
    std::string error;
    server_ = KuraServer::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  HttpClient& http() { return server_->http(); }

  HttpResponse Login(const json& body) { return http().Post("/v1/auth/login", body); }

  // Root creates staff `name` with `roles`; the first sign-in is restricted
  // to TOTP enrolment, which this completes. Returns the TOTP secret and a
  // full session token.
  std::pair<std::string, std::string> MakeStaff(const std::string& name, const std::vector<std::string>& roles) {
    HttpResponse r = http().Post("/v1/sys/staff", {{"username", name}, {"roles", roles}, {"password", kOperatorPassword}},
                                 server_->root_token());
    EXPECT_EQ(r.status, 201) << r.Describe();
    r = Login({{"username", name}, {"password", kOperatorPassword}});
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.json["restriction"], "totp_enrollment") << r.Describe();
    std::string token = r.json.value("token", "");
    r = http().Post("/v1/auth/totp/enroll", json::object(), token);
    EXPECT_EQ(r.status, 200) << r.Describe();
    std::string secret = r.json.value("secret", "");
    EXPECT_NE(r.json.value("uri", "").find("otpauth://totp/"), std::string::npos) << r.Describe();
    EXPECT_NE(r.json.value("qr_svg", "").find("<svg"), std::string::npos);
    confirm_code_ = TotpNow(secret);
    r = http().Post("/v1/auth/totp/confirm", {{"code", confirm_code_}}, token);
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.json["recovery_codes"].size(), 10u) << r.Describe();
    recovery_codes_ = r.json["recovery_codes"];
    return {secret, token};
  }

  // Root creates tenant `tenant` with its first admin `admin`
  // (kAdminPassword), the operator's whole part in a tenant; the admin signs
  // in. Returns the admin's session token.
  std::string MakeTenant(const std::string& tenant, const std::string& admin) {
    HttpResponse r = http().Post(
        "/v1/tenants",
        {{"id", tenant}, {"name", "Tenant " + tenant}, {"admin", {{"username", admin}, {"password", kAdminPassword}}}},
        server_->root_token());
    EXPECT_EQ(r.status, 201) << r.Describe();
    r = Login({{"username", admin}, {"password", kAdminPassword}, {"tenant", tenant}});
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_TRUE(r.json["restriction"].is_null()) << r.Describe();
    return r.json.value("token", "");
  }

  // Every entry of the system trail with `action` (root).
  std::vector<json> Entries(const std::string& action) {
    HttpResponse r = http().Get("/v1/sys/audit?limit=1000&action=" + action, server_->root_token());
    EXPECT_EQ(r.status, 200) << r.Describe();
    std::vector<json> out;
    for (const json& item : r.json["items"]) out.push_back(item);
    return out;
  }

  static bool HasEntry(const std::vector<json>& entries, const std::string& principal, const std::string& outcome) {
    for (const json& e : entries) {
      if (e.value("principal", "") == principal && e.value("outcome", "") == outcome) return true;
    }
    return false;
  }

  TempDir dir_{"kura-identity"};
  std::string config_;
  std::unique_ptr<KuraServer> server_;
  json recovery_codes_;
  std::string confirm_code_;  // the code that confirmed the last enrolment
};

TEST_F(IdentityTest, BootstrapOperatorTenantAdminAndRootRevocation) {
  auto [secret, operator_token] = MakeStaff("olivia", {"operator"});

  // The enrolled session is a full one now.
  HttpResponse r = http().Get("/v1/whoami", operator_token);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["kind"], "staff");
  EXPECT_EQ(r.json["roles"], json::array({"operator"}));
  EXPECT_TRUE(r.json["restriction"].is_null()) << r.Describe();

  // The operator creates a tenant with its first admin.
  r = http().Post("/v1/tenants",
                  {{"id", "acme"}, {"name", "Acme KK"}, {"admin", {{"username", "hana"}, {"password", kAdminPassword}}}},
                  operator_token);
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_EQ(r.json["admin"], "hana");

  // A weak first admin password leaves no tenant behind.
  r = http().Post("/v1/tenants", {{"id", "weak"}, {"name", "Weak"}, {"admin", {{"username", "w"}, {"password", "short"}}}},
                  operator_token);
  EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();
  EXPECT_EQ(http().Get("/v1/tenants/weak", operator_token).status, 404);

  // The tenant admin signs in with the tenant, manages the tenant, and no
  // staff member reads its records.
  r = Login({{"username", "hana"}, {"password", kAdminPassword}, {"tenant", "acme"}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::string admin_token = r.json["token"];
  r = http().Get("/v1/whoami", admin_token);
  EXPECT_EQ(r.json["kind"], "user");
  EXPECT_EQ(r.json["tenant"], "acme");
  r = http().Put("/v1/t/acme/collections/customers", CustomersSchema(), admin_token);
  ASSERT_EQ(r.status, 201) << r.Describe();
  r = http().Post(RecordsPath("acme", "customers"), {{"data", {{"email", "a@b.example"}}}}, admin_token);
  ASSERT_EQ(r.status, 201) << r.Describe();
  std::string record = r.json["id"];
  EXPECT_EQ(http().Get(RecordPath("acme", "customers", record), admin_token).status, 200);
  EXPECT_TRUE(IsError(http().Get(RecordPath("acme", "customers", record), operator_token), 403, "permission_denied"));
  // A user of acme manages no other tenant's users.
  EXPECT_TRUE(IsError(http().Get("/v1/sys/staff", admin_token), 403, "permission_denied"));

  // Sensitive: revoking the root token needs a fresh sign-in; a session made
  // minutes ago is fresh, so step up explicitly to show the route works.
  r = http().Post("/v1/auth/step-up", {{"totp", TotpNow(secret, 1)}}, operator_token);
  ASSERT_EQ(r.status, 200) << r.Describe();
  r = http().Delete("/v1/sys/root-token", operator_token);
  ASSERT_EQ(r.status, 204) << r.Describe();
  EXPECT_TRUE(IsError(http().Get("/v1/whoami", server_->root_token()), 401, "unauthenticated"));
  EXPECT_EQ(http().Get("/v1/whoami", operator_token).status, 200);
}

TEST_F(IdentityTest, RestrictedSessionReachesOnlyTheRoutesThatFinishSignIn) {
  HttpResponse r = http().Post("/v1/sys/staff",
                               {{"username", "sam"}, {"roles", {"support"}}, {"password", kOperatorPassword}},
                               server_->root_token());
  ASSERT_EQ(r.status, 201) << r.Describe();
  r = Login({{"username", "sam"}, {"password", kOperatorPassword}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(r.json["restriction"], "totp_enrollment");
  std::string token = r.json["token"];
  EXPECT_TRUE(IsError(http().Get("/v1/tenants", token), 403, "permission_denied"));
  EXPECT_EQ(http().Get("/v1/whoami", token).status, 200);
  EXPECT_EQ(http().Post("/v1/auth/logout", json::object(), token).status, 204);
  EXPECT_TRUE(IsError(http().Get("/v1/whoami", token), 401, "unauthenticated"));
}

TEST_F(IdentityTest, TotpCodeIsAcceptedOnceAndRecoveryCodesWorkOnce) {
  auto [secret, first_token] = MakeStaff("alice", {"auditor"});
  // The code that confirmed the enrolment cannot sign in.
  HttpResponse r = Login({{"username", "alice"}, {"password", kOperatorPassword}, {"totp", confirm_code_}});
  EXPECT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();
  // The next step's code works once.
  std::string next = TotpNow(secret, 1);
  r = Login({{"username", "alice"}, {"password", kOperatorPassword}, {"totp", next}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["auth_method"], "password+totp");
  r = Login({{"username", "alice"}, {"password", kOperatorPassword}, {"totp", next}});
  EXPECT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();
  // Without a code: told that one is needed (the password was right).
  r = Login({{"username", "alice"}, {"password", kOperatorPassword}});
  EXPECT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();
  EXPECT_NE(r.json["error"].value("message", "").find("TOTP"), std::string::npos) << r.Describe();
  // A recovery code works once.
  std::string code = recovery_codes_[0];
  r = Login({{"username", "alice"}, {"password", kOperatorPassword}, {"recovery_code", code}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["recovery_codes_left"], 9);
  r = Login({{"username", "alice"}, {"password", kOperatorPassword}, {"recovery_code", code}});
  EXPECT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();

  std::vector<json> logins = Entries("auth.login");
  EXPECT_TRUE(HasEntry(logins, "staff:alice", "success"));
  EXPECT_TRUE(HasEntry(logins, "staff:alice", "bad_second_factor"));
}

TEST_F(IdentityTest, LockoutAndUnknownUsersLookLikeAWrongPassword) {
  const std::string kenji = MakeTenant("acme", "kenji");
  ASSERT_FALSE(kenji.empty());
  HttpResponse r = http().Post("/v1/t/acme/users",
                               {{"username", "hana"}, {"password", kAdminPassword}, {"roles", {"admin"}}}, kenji);
  ASSERT_EQ(r.status, 201) << r.Describe();

  HttpResponse wrong = Login({{"username", "hana"}, {"password", "not-the-password-1"}, {"tenant", "acme"}});
  ASSERT_TRUE(IsError(wrong, 401, "unauthenticated")) << wrong.Describe();
  const std::string message = wrong.json["error"]["message"];
  HttpResponse unknown = Login({{"username", "nobody"}, {"password", "not-the-password-1"}, {"tenant", "acme"}});
  ASSERT_TRUE(IsError(unknown, 401, "unauthenticated")) << unknown.Describe();
  EXPECT_EQ(unknown.json["error"]["message"], message);

  for (int i = 0; i < 4; ++i) {
    r = Login({{"username", "hana"}, {"password", "not-the-password-2"}, {"tenant", "acme"}});
    ASSERT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();
  }
  // Five failures: locked. The right password is refused with the same answer.
  r = Login({{"username", "hana"}, {"password", kAdminPassword}, {"tenant", "acme"}});
  ASSERT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();
  EXPECT_EQ(r.json["error"]["message"], message);

  std::vector<json> logins = Entries("auth.login");
  EXPECT_TRUE(HasEntry(logins, "user:acme/hana", "bad_password"));
  EXPECT_TRUE(HasEntry(logins, "user:acme/hana", "locked_out"));
  EXPECT_TRUE(HasEntry(logins, "user:acme/nobody", "unknown_user"));

  // Not root (staff do not administer a tenant), the tenant's admin unlocks;
  // the password works again.
  r = http().Put("/v1/t/acme/users/hana", {{"unlock", true}}, server_->root_token());
  EXPECT_TRUE(IsError(r, 403, "permission_denied")) << r.Describe();
  r = http().Put("/v1/t/acme/users/hana", {{"unlock", true}}, kenji);
  ASSERT_EQ(r.status, 200) << r.Describe();
  r = Login({{"username", "hana"}, {"password", kAdminPassword}, {"tenant", "acme"}});
  EXPECT_EQ(r.status, 200) << r.Describe();
}

TEST_F(IdentityTest, PasswordChangeHistoryAndAdminRevocation) {
  const std::string kenji = MakeTenant("acme", "kenji");
  ASSERT_FALSE(kenji.empty());
  HttpResponse r = http().Post("/v1/t/acme/users",
                               {{"username", "hana"}, {"password", kAdminPassword}, {"roles", {"admin"}}}, kenji);
  ASSERT_EQ(r.status, 201) << r.Describe();
  r = Login({{"username", "hana"}, {"password", kAdminPassword}, {"tenant", "acme"}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::string token = r.json["token"];

  // Policy: too short, common, containing the username, reused.
  for (const char* bad : {"Short-1", "password1234", "hana-Is-Great-77", kAdminPassword}) {
    r = http().Post("/v1/auth/password", {{"current_password", kAdminPassword}, {"new_password", bad}}, token);
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << bad << ": " << r.Describe();
  }
  r = http().Post("/v1/auth/password", {{"current_password", "wrong-current-pw"}, {"new_password", "Amber-Lantern-Quay-88"}},
                  token);
  EXPECT_TRUE(IsError(r, 401, "unauthenticated")) << r.Describe();
  r = http().Post("/v1/auth/password",
                  {{"current_password", kAdminPassword}, {"new_password", "Amber-Lantern-Quay-88"}}, token);
  ASSERT_EQ(r.status, 204) << r.Describe();
  // The old password is in the history now.
  r = http().Post("/v1/auth/password",
                  {{"current_password", "Amber-Lantern-Quay-88"}, {"new_password", kAdminPassword}}, token);
  EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();

  // Revoked by the tenant's admin (root may not): the session is gone.
  r = http().Delete("/v1/t/acme/users/hana/sessions", server_->root_token());
  EXPECT_TRUE(IsError(r, 403, "permission_denied")) << r.Describe();
  EXPECT_EQ(http().Get("/v1/whoami", token).status, 200);
  r = http().Delete("/v1/t/acme/users/hana/sessions", kenji);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_GE(r.json["revoked"].get<int>(), 1);
  EXPECT_TRUE(IsError(http().Get("/v1/whoami", token), 401, "unauthenticated"));

  EXPECT_TRUE(HasEntry(Entries("auth.password"), "user:acme/hana", "success"));
  EXPECT_TRUE(HasEntry(Entries("auth.password"), "user:acme/hana", "bad_password"));
  EXPECT_TRUE(HasEntry(Entries("session.revoke"), "user:acme/kenji", "success"));
  EXPECT_TRUE(HasEntry(Entries("session.revoke"), "root", "permission_denied"));
}

}  // namespace
}  // namespace kura::e2e
