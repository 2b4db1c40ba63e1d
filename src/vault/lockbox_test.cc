// The customer lockbox (issue 6) at the vault level: access requests, their
// approval rules, grants enforced on every call, revocation, expiry by time
// alone, races, and the staff-without-grant matrix. A real SQLite store and a
// fake clock; no background job runs anywhere in these tests, so every expiry
// seen here is enforced by the request path itself.
#include "vault/vault.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "auth/totp.h"
#include "core/bytes.h"
#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::SealKind;
using testing::VaultFixture;

constexpr char kTenant[] = "acme";
constexpr char kOtherTenant[] = "globex";
// Passwords that pass the strength rules (length, common list, cracklib).
constexpr char kStaffPassword[] = "zq8#Lm2vR!pW9tKd";
constexpr char kUserPassword[] = "Gm6&Xc1vT#eN9zHa";
constexpr char kEmail[] = "mika@example.com";

class LockboxTest : public VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(SealKind::kKeyfile);
    ASSERT_NE(v_, nullptr);
    root_ = Must(*v_, InitKeyfile(*v_));
    admin_key_ = Must(*v_, SetUpTenant(*v_, root_, kTenant));
    // A second collection, outside the grants the tests ask for.
    Ok(v_->PutCollection(admin_key_, kTenant, "orders",
                         json::parse(R"({"fields":{"item":{"type":"string","class":"internal"}}})")));
    customer_ = Ok(v_->CreateRecord(admin_key_, kTenant, "customers",
                                    {{"data", {{"email", kEmail}, {"phone", "+81-90-1234-5678"}}}}))
                    .body["id"]
                    .get<std::string>();
    order_ = Ok(v_->CreateRecord(admin_key_, kTenant, "orders", {{"data", {{"item", "tea"}}}}))
                 .body["id"]
                 .get<std::string>();
  }

  std::int64_t Now() const { return ToUnixSeconds(clock_.Now()); }
  void Advance(seconds d) { clock_.Advance(d); }

  // --- Principals ------------------------------------------------------------------

  // Root creates staff member `name` with `roles`; they sign in, enrol TOTP
  // and confirm it (as identity_test.cc). Returns the now unrestricted session
  // token; the TOTP secret is kept for later sign-ins and step-ups.
  std::string MakeStaff(const std::string& name, const std::vector<std::string>& roles) {
    Ok(v_->CreateUser(root_, "", {{"username", name}, {"password", kStaffPassword}, {"roles", roles}}));
    auto login = Ok(v_->Login(Ctx(), {{"username", name}, {"password", kStaffPassword}}));
    std::string token = login.body["token"];
    Caller staff = Must(*v_, token);
    auto enroll = Ok(v_->TotpEnroll(staff));
    totp_[name] = Ok(auth::Base32Decode(enroll.body["secret"].get<std::string>()));
    Ok(v_->TotpConfirm(staff, {{"code", auth::TotpCode(totp_[name], Now())}}));
    last_step_[name] = Now() / 30;
    staff_tokens_[name] = token;
    return token;
  }

  // A fresh sign-in of staff member `name` (password + TOTP); the clock moves
  // to the next TOTP step when this one's code was already used.
  Caller StaffSignIn(const std::string& name) {
    if (last_step_[name] == Now() / 30) Advance(seconds(30));
    last_step_[name] = Now() / 30;
    auto login = Ok(v_->Login(
        Ctx(), {{"username", name}, {"password", kStaffPassword}, {"totp", auth::TotpCode(totp_[name], Now())}}));
    EXPECT_TRUE(login.body["restriction"].is_null()) << login.body.dump();
    staff_tokens_[name] = login.body["token"].get<std::string>();
    return Must(*v_, staff_tokens_[name]);
  }

  // The current principal of staff member `name`'s latest session.
  Caller Staff(const std::string& name) { return Must(*v_, staff_tokens_.at(name)); }

  // A session of a user of `tenant` (signed in now, so fresh for step-up).
  std::string UserToken(const std::string& tenant, const std::string& name, const std::string& password) {
    auto login = Ok(v_->Login(Ctx(), {{"username", name}, {"password", password}, {"tenant", tenant}}));
    EXPECT_TRUE(login.body["restriction"].is_null()) << login.body.dump();
    return login.body["token"];
  }
  // The tenant's first admin, signed in now.
  Caller FreshAdmin(const std::string& tenant = kTenant) {
    return Must(*v_, UserToken(tenant, kTenantAdmin, kTenantAdminPassword));
  }

  static RequestContext Ctx() { return RequestContext{"req-lockbox", "192.0.2.9", ""}; }

  // --- Requests ------------------------------------------------------------------------

  static json RequestBody(const std::vector<std::string>& permissions, const std::vector<std::string>& collections,
                          const std::string& duration = "2h", const std::string& tenant = kTenant) {
    return {{"tenant", tenant},
            {"permissions", permissions},
            {"collections", collections},
            {"duration", duration},
            {"reason", "customer_support"},
            {"detail", "the customer cannot see their invoice"},
            {"ticket", "SUP-123"}};
  }

  // `staff` asks for access; returns the request id.
  std::string Ask(const Caller& staff, const json& body) {
    auto reply = Ok(v_->CreateAccessRequest(staff, body));
    EXPECT_TRUE(reply.created);
    EXPECT_EQ(reply.body["status"], "pending");
    return reply.body["id"];
  }

  // The request's status as the tenant's admin key sees it now.
  std::string StatusOf(const std::string& id, const std::string& tenant = kTenant) {
    return Ok(v_->GetAccessRequest(admin_key_, tenant, id)).body["status"];
  }

  // Asks as `staff` and has the tenant's admin (freshly signed in) approve.
  std::string Granted(const Caller& staff, const json& body) {
    std::string id = Ask(staff, body);
    auto approved = Ok(v_->ApproveAccessRequest(FreshAdmin(body["tenant"]), body["tenant"], id, json::object()));
    EXPECT_EQ(approved.body["status"], "approved") << approved.body.dump();
    return id;
  }

  Result<Reply> ReadCustomer(const Caller& c) { return v_->GetRecord(c, kTenant, "customers", customer_, std::nullopt); }

  // The system trail's items matching `filters` (read as root).
  json Trail(AuditFilters filters) {
    filters["limit"] = "1000";
    return Ok(v_->SystemAuditTrail(root_, filters)).body["items"];
  }

  std::unique_ptr<Vault> v_;
  Caller root_;
  Caller admin_key_;  // acme's admin API key
  std::string customer_, order_;
  std::map<std::string, Bytes> totp_;
  std::map<std::string, std::int64_t> last_step_;  // TOTP step of the last code used
  std::map<std::string, std::string> staff_tokens_;
};

// --- Webhook signing ------------------------------------------------------------------------

// The key inside a "whsec_<base64>" secret.
Bytes WebhookKey(const std::string& secret) {
  EXPECT_TRUE(secret.starts_with("whsec_")) << secret;
  std::string b64 = secret.substr(6);
  EXPECT_EQ(b64.size(), 44u) << "32 bytes, padded";
  std::replace(b64.begin(), b64.end(), '+', '-');
  std::replace(b64.begin(), b64.end(), '/', '_');
  auto key = Base64UrlDecode(b64);
  EXPECT_TRUE(key.has_value());
  return key.value_or(Bytes{});
}

// Standard Webhooks v1, computed with OpenSSL directly (not kura's HMAC).
std::string ExpectedSignature(const Bytes& key, const std::string& id, std::int64_t at, const std::string& body) {
  std::string content = id + "." + std::to_string(at) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &len);
  return "v1," + Base64Encode(ByteView(mac, len));
}

TEST_F(LockboxTest, WebhookSecretIsShownOnceAndSignsEveryDelivery) {
  constexpr std::int64_t kAt = 1790000000;
  const std::string body = R"({"event":"access_request.created"})";
  // No webhook, no secret: nothing is signed, and there is nothing to rotate.
  EXPECT_EQ(Ok(v_->GetLockboxPolicy(admin_key_, kTenant)).body["webhook_secret_set"], false);
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kTenant, "1", kAt, body)), "");
  EXPECT_EQ(v_->PutLockboxPolicy(admin_key_, kTenant, {{"rotate_webhook_secret", true}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->PutLockboxPolicy(admin_key_, kTenant, {{"rotate_webhook_secret", "yes"}}).status().code(),
            StatusCode::kInvalidArgument);

  // Setting the webhook makes its secret, shown in that reply only.
  auto set = Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"webhook_url", "https://hooks.acme.example/kura"}}));
  ASSERT_TRUE(set.body.contains("webhook_secret")) << set.body.dump();
  EXPECT_EQ(set.body["webhook_secret_set"], true);
  const Bytes key = WebhookKey(set.body["webhook_secret"]);
  auto got = Ok(v_->GetLockboxPolicy(admin_key_, kTenant));
  EXPECT_FALSE(got.body.contains("webhook_secret")) << got.body.dump();
  EXPECT_FALSE(got.body.contains("webhook_secret_sealed")) << got.body.dump();
  EXPECT_EQ(got.body["webhook_secret_set"], true);
  // Kept wrapped: neither the key nor its text is in the database files.
  for (const std::string& file : {DbPath(), DbPath() + "-wal"}) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(AsString(key)), std::string::npos) << file;
    EXPECT_EQ(bytes.find(set.body["webhook_secret"].get<std::string>().substr(6)), std::string::npos) << file;
    EXPECT_EQ(bytes.find(HexEncode(key)), std::string::npos) << file;
  }

  // Deliveries are signed with it; another id, time or body signs differently.
  const std::string signature = Ok(v_->SignWebhookDelivery(kTenant, "42", kAt, body));
  EXPECT_EQ(signature, ExpectedSignature(key, "42", kAt, body));
  EXPECT_NE(Ok(v_->SignWebhookDelivery(kTenant, "43", kAt, body)), signature);
  EXPECT_NE(Ok(v_->SignWebhookDelivery(kTenant, "42", kAt + 1, body)), signature);
  EXPECT_NE(Ok(v_->SignWebhookDelivery(kTenant, "42", kAt, body + " ")), signature);
  // Another tenant's webhook (none here) signs nothing with it.
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kOtherTenant, "42", kAt, body)), "");

  // Other changes, a new URL included, keep the secret (and do not show it).
  auto other = Ok(v_->PutLockboxPolicy(admin_key_, kTenant,
                                       {{"approvals_required", 2}, {"webhook_url", "https://hooks2.acme.example/k"}}));
  EXPECT_FALSE(other.body.contains("webhook_secret"));
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kTenant, "42", kAt, body)), signature);

  // Rotation: a new secret, shown once. For a day the old one signs too (the
  // header lists both), so the receiver can switch without a gap; then only
  // the new one.
  auto rotated = Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"rotate_webhook_secret", true}}));
  const Bytes new_key = WebhookKey(rotated.body["webhook_secret"]);
  EXPECT_NE(new_key, key);
  const std::int64_t now = Now();
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kTenant, "42", now, body)),
            ExpectedSignature(new_key, "42", now, body) + " " + ExpectedSignature(key, "42", now, body));
  const std::int64_t day_later = now + 24 * 3600;
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kTenant, "42", day_later, body)),
            ExpectedSignature(new_key, "42", day_later, body));

  // Sealed: nothing can be signed (the notifier keeps the delivery for later).
  Ok(v_->Seal(root_));
  EXPECT_EQ(v_->SignWebhookDelivery(kTenant, "42", day_later, body).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(v_->AutoUnseal().ok());
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kTenant, "42", day_later, body)),
            ExpectedSignature(new_key, "42", day_later, body));

  // A second rotation a day later: the first secret is gone for good.
  Advance(seconds(24 * 3600));
  auto again = Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"rotate_webhook_secret", true}}));
  const Bytes third_key = WebhookKey(again.body["webhook_secret"]);
  const std::string signed_now = Ok(v_->SignWebhookDelivery(kTenant, "7", Now(), body));
  EXPECT_EQ(signed_now,
            ExpectedSignature(third_key, "7", Now(), body) + " " + ExpectedSignature(new_key, "7", Now(), body));
  EXPECT_EQ(signed_now.find(ExpectedSignature(key, "7", Now(), body).substr(3)), std::string::npos);

  // No webhook any more: the secret goes with it.
  auto cleared = Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"webhook_url", nullptr}}));
  EXPECT_EQ(cleared.body["webhook_secret_set"], false);
  EXPECT_EQ(Ok(v_->SignWebhookDelivery(kTenant, "42", kAt, body)), "");
}

// --- Expiry by time alone ----------------------------------------------------------------

TEST_F(LockboxTest, PendingRequestExpiresAfterTwelveHours) {
  MakeStaff("sam", {staff_roles::kSupport});
  std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  auto pending = Ok(v_->GetAccessRequest(admin_key_, kTenant, id));
  EXPECT_EQ(pending.body["expires_at"], FormatRfc3339(FromUnixSeconds(Now() + 12 * 3600)));

  Advance(hours(12) - seconds(1));
  EXPECT_EQ(StatusOf(id), "pending");
  Advance(seconds(1));
  EXPECT_EQ(StatusOf(id), "expired");
  // The list agrees, under either filter.
  auto expired = Ok(v_->ListAccessRequests(admin_key_, kTenant, {{"status", "expired"}}, {}));
  ASSERT_EQ(expired.body["items"].size(), 1u);
  EXPECT_EQ(expired.body["items"][0]["id"], id);
  EXPECT_TRUE(Ok(v_->ListAccessRequests(admin_key_, kTenant, {{"status", "pending"}}, {})).body["items"].empty());

  // Too late to decide: an approver (freshly signed in) is refused.
  Caller admin = FreshAdmin();
  EXPECT_EQ(v_->ApproveAccessRequest(admin, kTenant, id, json::object()).status().code(), StatusCode::kAborted);
  EXPECT_EQ(v_->DenyAccessRequest(admin, kTenant, id, json::object()).status().code(), StatusCode::kAborted);
  EXPECT_EQ(StatusOf(id), "expired");
  EXPECT_EQ(ReadCustomer(StaffSignIn("sam")).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(LockboxTest, GrantEndsAtItsEndTime) {
  MakeStaff("sam", {staff_roles::kSupport});
  std::string id = Granted(Staff("sam"), RequestBody({"record.read"}, {"customers"}, "1h"));
  const std::int64_t end = Now() + 3600;
  auto granted = Ok(v_->GetAccessRequest(admin_key_, kTenant, id));
  EXPECT_EQ(granted.body["grant"]["ends_at"], FormatRfc3339(FromUnixSeconds(end)));
  EXPECT_TRUE(ReadCustomer(Staff("sam")).ok());

  // The staff session would idle out over an hour: sign in again near the end.
  Advance(seconds(end - 60 - Now()));
  Caller sam = StaffSignIn("sam");
  Advance(seconds(end - 1 - Now()));
  sam = Staff("sam");
  EXPECT_TRUE(ReadCustomer(sam).ok()) << "one second before the end";
  EXPECT_EQ(StatusOf(id), "approved");
  Advance(seconds(1));
  sam = Staff("sam");
  EXPECT_EQ(ReadCustomer(sam).status().code(), StatusCode::kPermissionDenied) << "at the end";
  EXPECT_EQ(StatusOf(id), "expired");
  // An expired grant cannot be revoked back into anything either.
  EXPECT_EQ(v_->RevokeAccessRequest(FreshAdmin(), kTenant, id).status().code(), StatusCode::kAborted);
}

TEST_F(LockboxTest, DurationIsBoundedByTheTenantsMaximum) {
  MakeStaff("sam", {staff_roles::kSupport});
  EXPECT_EQ(v_->CreateAccessRequest(Staff("sam"), RequestBody({"record.read"}, {"customers"}, "9h")).status().code(),
            StatusCode::kInvalidArgument);
  Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"max_duration", "1h"}}));
  EXPECT_EQ(v_->CreateAccessRequest(Staff("sam"), RequestBody({"record.read"}, {"customers"}, "2h")).status().code(),
            StatusCode::kInvalidArgument);
  Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}, "1h"));
}

// --- Who may approve --------------------------------------------------------------------------

TEST_F(LockboxTest, NobodyApprovesTheirOwnRequest) {
  MakeStaff("sol", {staff_roles::kSecurityOfficer});
  MakeStaff("sam", {staff_roles::kSupport});
  // A security officer may approve others' requests, never their own.
  std::string own = Ask(Staff("sol"), RequestBody({"record.read"}, {"customers"}));
  Caller sol = StaffSignIn("sol");  // fresh: step-up is not what refuses it
  EXPECT_EQ(v_->ApproveAccessRequest(sol, kTenant, own, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->DenyAccessRequest(sol, kTenant, own, json::object()).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(own), "pending");
  EXPECT_TRUE(Ok(v_->GetAccessRequest(admin_key_, kTenant, own)).body["approvals"].empty());
  EXPECT_EQ(ReadCustomer(sol).status().code(), StatusCode::kPermissionDenied);
  // A support engineer is no approver at all.
  std::string sams = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  EXPECT_EQ(v_->ApproveAccessRequest(StaffSignIn("sam"), kTenant, sams, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  // The officer approves sam's.
  auto approved = Ok(v_->ApproveAccessRequest(StaffSignIn("sol"), kTenant, sams, json::object()));
  EXPECT_EQ(approved.body["status"], "approved");
  EXPECT_EQ(approved.body["decided_by"], "staff:sol");
  EXPECT_TRUE(ReadCustomer(Staff("sam")).ok());
  EXPECT_EQ(StatusOf(own), "pending");
}

TEST_F(LockboxTest, ApprovalNeedsAFreshAuthentication) {
  MakeStaff("sam", {staff_roles::kSupport});
  std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  std::string token = UserToken(kTenant, kTenantAdmin, kTenantAdminPassword);
  // Signed in six minutes ago (the session kept alive by use): too old.
  Advance(minutes(3));
  Must(*v_, token);
  Advance(minutes(3));
  Caller admin = Must(*v_, token);
  auto stale = v_->ApproveAccessRequest(admin, kTenant, id, json::object());
  EXPECT_EQ(stale.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(stale.status().message().find("step-up"), std::string::npos) << stale.status().ToString();
  EXPECT_EQ(StatusOf(id), "pending");
  EXPECT_EQ(ReadCustomer(Staff("sam")).status().code(), StatusCode::kPermissionDenied);

  Ok(v_->StepUp(admin, {{"password", kTenantAdminPassword}}));
  admin = Must(*v_, token);
  EXPECT_EQ(Ok(v_->ApproveAccessRequest(admin, kTenant, id, json::object())).body["status"], "approved");
  EXPECT_TRUE(ReadCustomer(Staff("sam")).ok());
}

TEST_F(LockboxTest, OnlyTheTenantsApproversDecide) {
  MakeStaff("sam", {staff_roles::kSupport});
  MakeStaff("oscar", {staff_roles::kOperator});
  MakeStaff("audrey", {staff_roles::kAuditor});
  SetUpTenant(*v_, root_, kOtherTenant);
  Ok(v_->PutRole(admin_key_, kTenant, "reader", json::parse(R"({"permissions":[
      {"action":"record.read","collections":["customers"],"view":"full"}]})")));
  Ok(v_->CreateUser(admin_key_, kTenant, {{"username", "rita"}, {"password", kUserPassword}, {"roles", {"reader"}}}));

  std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  // An admin of another tenant, freshly signed in.
  Caller globex = FreshAdmin(kOtherTenant);
  EXPECT_EQ(v_->ApproveAccessRequest(globex, kTenant, id, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->DenyAccessRequest(globex, kTenant, id, json::object()).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->RevokeAccessRequest(globex, kTenant, id).status().code(), StatusCode::kPermissionDenied);
  // A user of the tenant without access.approve.
  Caller rita = Must(*v_, UserToken(kTenant, "rita", kUserPassword));
  EXPECT_EQ(v_->ApproveAccessRequest(rita, kTenant, id, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->DenyAccessRequest(rita, kTenant, id, json::object()).status().code(), StatusCode::kPermissionDenied);
  // Staff other than security officers, and the root token.
  for (const char* name : {"oscar", "audrey"}) {
    EXPECT_EQ(v_->ApproveAccessRequest(StaffSignIn(name), kTenant, id, json::object()).status().code(),
              StatusCode::kPermissionDenied)
        << name;
  }
  EXPECT_EQ(v_->ApproveAccessRequest(root_, kTenant, id, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  // An API key has no session to be fresh: even the admin key does not approve.
  EXPECT_EQ(v_->ApproveAccessRequest(admin_key_, kTenant, id, json::object()).status().code(),
            StatusCode::kPermissionDenied);

  auto request = Ok(v_->GetAccessRequest(admin_key_, kTenant, id));
  EXPECT_EQ(request.body["status"], "pending");
  EXPECT_TRUE(request.body["approvals"].empty()) << request.body.dump();
  EXPECT_EQ(ReadCustomer(Staff("sam")).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(LockboxTest, TwoApprovalsFromTwoPeople) {
  MakeStaff("sam", {staff_roles::kSupport});
  MakeStaff("sol", {staff_roles::kSecurityOfficer});
  Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"approvals_required", 2}}));
  std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  EXPECT_EQ(Ok(v_->GetAccessRequest(admin_key_, kTenant, id)).body["required_approvals"], 2);

  Caller admin = FreshAdmin();
  auto first = Ok(v_->ApproveAccessRequest(admin, kTenant, id, json::object()));
  EXPECT_EQ(first.body["status"], "pending");
  ASSERT_EQ(first.body["approvals"].size(), 1u);
  EXPECT_EQ(first.body["approvals"][0]["approver"], "user:acme/admin");
  EXPECT_TRUE(first.body["grant"].is_null());
  EXPECT_EQ(ReadCustomer(Staff("sam")).status().code(), StatusCode::kPermissionDenied);

  // The same person again, even with a new session, does not count twice.
  EXPECT_EQ(v_->ApproveAccessRequest(admin, kTenant, id, json::object()).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(v_->ApproveAccessRequest(FreshAdmin(), kTenant, id, json::object()).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusOf(id), "pending");
  EXPECT_EQ(ReadCustomer(Staff("sam")).status().code(), StatusCode::kPermissionDenied);

  // A second person's approval makes the grant.
  auto second = Ok(v_->ApproveAccessRequest(StaffSignIn("sol"), kTenant, id, json::object()));
  EXPECT_EQ(second.body["status"], "approved");
  EXPECT_EQ(second.body["approvals"].size(), 2u);
  EXPECT_FALSE(second.body["grant"].is_null());
  EXPECT_TRUE(ReadCustomer(Staff("sam")).ok());
}

TEST_F(LockboxTest, OwnApprovalOnlyKeepsSecurityOfficersToRevoking) {
  MakeStaff("sam", {staff_roles::kSupport});
  MakeStaff("sol", {staff_roles::kSecurityOfficer});
  Ok(v_->PutLockboxPolicy(admin_key_, kTenant, {{"own_approval_only", true}}));
  // Staff cannot loosen it, not even a security officer.
  EXPECT_EQ(v_->PutLockboxPolicy(StaffSignIn("sol"), kTenant, {{"own_approval_only", false}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Ok(v_->GetLockboxPolicy(admin_key_, kTenant)).body["own_approval_only"], true);

  std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  EXPECT_EQ(v_->ApproveAccessRequest(StaffSignIn("sol"), kTenant, id, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->DenyAccessRequest(Staff("sol"), kTenant, id, json::object()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(id), "pending");
  Ok(v_->ApproveAccessRequest(FreshAdmin(), kTenant, id, json::object()));
  EXPECT_TRUE(ReadCustomer(Staff("sam")).ok());
  // But the officer can always stop access.
  EXPECT_TRUE(Ok(v_->RevokeAccessRequest(Staff("sol"), kTenant, id)).no_content);
  EXPECT_EQ(ReadCustomer(Staff("sam")).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(id), "revoked");
}

// --- What a grant gives ------------------------------------------------------------------------

TEST_F(LockboxTest, GrantGivesItsPermissionsOnItsCollectionsOnly) {
  MakeStaff("sam", {staff_roles::kSupport});
  std::string id = Granted(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  Caller sam = Staff("sam");

  // Within: a read (masked by default), a lookup, the versions, the schema.
  auto read = Ok(ReadCustomer(sam));
  EXPECT_NE(read.body["data"]["email"], kEmail) << "a grant without view \"full\" sees masked values";
  EXPECT_FALSE(read.body["data"]["email"].get<std::string>().empty());
  EXPECT_NE(read.body["data"]["phone"], "+81-90-1234-5678");
  auto found = Ok(v_->FindRecords(sam, kTenant, "customers", {{"email", kEmail}}, {}));
  ASSERT_EQ(found.body["items"].size(), 1u);
  EXPECT_NE(found.body["items"][0]["data"]["email"], kEmail);
  EXPECT_TRUE(v_->ListVersions(sam, kTenant, "customers", customer_).ok());
  EXPECT_TRUE(v_->GetCollection(sam, kTenant, "customers").ok());

  // Outside: another collection, other permissions, an export, administration.
  auto code = [](const auto& r) { return r.status().code(); };
  EXPECT_EQ(code(v_->GetRecord(sam, kTenant, "orders", order_, std::nullopt)), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->GetCollection(sam, kTenant, "orders")), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->CreateRecord(sam, kTenant, "customers", {{"data", {{"email", "x@y.example"}}}})),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->UpdateRecord(sam, kTenant, "customers", customer_, {{"data", {{"email", "x@y.example"}}}},
                                  std::nullopt)),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->DeleteRecord(sam, kTenant, "customers", customer_)), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->FindRecords(sam, kTenant, "customers", {}, {})), StatusCode::kPermissionDenied)
      << "walking a collection is an export: it needs record.export";
  EXPECT_EQ(code(v_->CreateApiKey(sam, kTenant, {{"name", "mine"}, {"role", "admin"}})), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->ListApiKeys(sam, kTenant)), StatusCode::kPermissionDenied);
  EXPECT_EQ(code(v_->TenantAuditTrail(sam, kTenant, {})), StatusCode::kPermissionDenied);
  // Nor does a grant on acme reach another tenant.
  SetUpTenant(*v_, root_, kOtherTenant);
  EXPECT_EQ(code(v_->FindRecords(sam, kOtherTenant, "customers", {{"email", kEmail}}, {})),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Ok(v_->GetRecord(admin_key_, kTenant, "customers", customer_, std::nullopt)).body["version"], 1);

  // The allowed read's audit entry names the grant (its id is the request's).
  json reads = Trail({{"action", "record.read"}, {"principal", "staff:sam"}, {"outcome", "success"}});
  ASSERT_EQ(reads.size(), 1u) << reads.dump();
  json entry = json::parse(reads[0]["entry"].get<std::string>());
  EXPECT_EQ(entry["grant_id"], id) << entry.dump();
  EXPECT_EQ(entry["tenant"], kTenant);
  // Entries of acts without any grant name none.
  json other = Trail({{"principal", "staff:sam"}, {"tenant", kOtherTenant}});
  ASSERT_FALSE(other.empty());
  for (const json& item : other) {
    EXPECT_EQ(json::parse(item["entry"].get<std::string>())["grant_id"], "") << item.dump();
  }
}

TEST_F(LockboxTest, FullViewAndExportOnlyWhenAskedFor) {
  MakeStaff("sam", {staff_roles::kSupport});
  json body = RequestBody({"record.read", "record.export"}, {"customers"});
  body["view"] = "full";
  std::string id = Ask(Staff("sam"), body);
  auto asked = Ok(v_->GetAccessRequest(admin_key_, kTenant, id));
  EXPECT_EQ(asked.body["view"], "full");
  EXPECT_EQ(asked.body["permissions"], json::array({"record.read", "record.export"}));
  Ok(v_->ApproveAccessRequest(FreshAdmin(), kTenant, id, json::object()));

  Caller sam = Staff("sam");
  EXPECT_EQ(Ok(ReadCustomer(sam)).body["data"]["email"], kEmail);
  auto walked = Ok(v_->FindRecords(sam, kTenant, "customers", {}, {}));
  ASSERT_EQ(walked.body["items"].size(), 1u);
  EXPECT_EQ(walked.body["items"][0]["data"]["email"], kEmail);
  // Export of a collection outside the grant: still refused.
  EXPECT_EQ(v_->FindRecords(sam, kTenant, "orders", {}, {}).status().code(), StatusCode::kPermissionDenied);
  json exports = Trail({{"action", "record.list"}, {"principal", "staff:sam"}, {"outcome", "success"}});
  ASSERT_EQ(exports.size(), 1u);
  EXPECT_EQ(json::parse(exports[0]["entry"].get<std::string>())["grant_id"], id);
}

TEST_F(LockboxTest, TenantAdministrationNeedsAUsersAdminGrant) {
  MakeStaff("sam", {staff_roles::kSupport});
  Caller sam = Staff("sam");
  // A record grant does not administer.
  Granted(sam, RequestBody({"record.read", "record.write"}, {"*"}));
  EXPECT_EQ(v_->CreateApiKey(sam, kTenant, {{"name", "mine"}, {"role", "admin"}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(
      v_->CreateUser(sam, kTenant, {{"username", "mole"}, {"password", kUserPassword}, {"roles", {"admin"}}})
          .status()
          .code(),
      StatusCode::kPermissionDenied);

  // One naming users.admin does.
  // (a role and a key that give neither users.admin nor access.approve).
  std::string id = Granted(sam, RequestBody({"users.admin"}, {"*"}));
  Ok(v_->PutRole(sam, kTenant, "reader",
                 json::parse(R"({"permissions":[{"action":"record.read","collections":["customers"]}]})")));
  auto key = Ok(v_->CreateApiKey(sam, kTenant, {{"name", "support key"}, {"role", "reader"}}));
  EXPECT_TRUE(key.created);
  EXPECT_TRUE(v_->ListApiKeys(sam, kTenant).ok());
  json made = Trail({{"action", "apikey.create"}, {"principal", "staff:sam"}, {"outcome", "success"}});
  ASSERT_EQ(made.size(), 1u);
  EXPECT_NE(json::parse(made[0]["entry"].get<std::string>())["grant_id"].get<std::string>().find(id),
            std::string::npos);
  // The tenant's lockbox stays its own: no grant sets it.
  EXPECT_EQ(v_->PutLockboxPolicy(sam, kTenant, {{"own_approval_only", false}}).status().code(),
            StatusCode::kPermissionDenied);

  // Approving can never be granted to staff.
  auto approve = v_->CreateAccessRequest(sam, RequestBody({"access.approve"}, {"*"}));
  EXPECT_EQ(approve.status().code(), StatusCode::kInvalidArgument) << approve.status().ToString();
  auto mixed = v_->CreateAccessRequest(sam, RequestBody({"record.read", "access.approve"}, {"customers"}));
  EXPECT_EQ(mixed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ok(v_->ListAccessRequests(admin_key_, kTenant, {{"status", "pending"}}, {})).body["items"].size(), 0u);
  // Nor do non-staff ask.
  EXPECT_EQ(v_->CreateAccessRequest(admin_key_, RequestBody({"record.read"}, {"customers"})).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->CreateAccessRequest(root_, RequestBody({"record.read"}, {"customers"})).status().code(),
            StatusCode::kPermissionDenied);
}

// A grant naming users.admin administers the tenant but cannot make anyone an
// administrator or approver: otherwise its holder could create a user with
// the built-in admin role (which includes access.approve) and approve their
// own next request under that user's name.
TEST_F(LockboxTest, UsersAdminGrantCannotBeTurnedIntoSelfApproval) {
  MakeStaff("sam", {staff_roles::kSupport});
  Granted(Staff("sam"), RequestBody({"users.admin"}, {"*"}));
  auto mole = v_->CreateUser(Staff("sam"), kTenant,
                             {{"username", "mole"}, {"password", kUserPassword}, {"roles", {"admin"}}});
  EXPECT_EQ(mole.status().code(), StatusCode::kPermissionDenied);
  // Nor an admin key, nor a role that approves.
  EXPECT_EQ(v_->CreateApiKey(Staff("sam"), kTenant, {{"name", "mine"}, {"role", "admin"}}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->PutRole(Staff("sam"), kTenant, "approver",
                        json::parse(R"({"permissions":[{"action":"access.approve","collections":["*"]}]})"))
                .status()
                .code(),
            StatusCode::kPermissionDenied);
  std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  if (mole.ok()) {
    Caller proxy = Must(*v_, UserToken(kTenant, "mole", kUserPassword));
    EXPECT_FALSE(v_->ApproveAccessRequest(proxy, kTenant, id, json::object()).ok())
        << "a user made by the requester approved the requester's request";
  }
  EXPECT_EQ(StatusOf(id), "pending");
  EXPECT_EQ(ReadCustomer(Staff("sam")).status().code(), StatusCode::kPermissionDenied);
}

// --- Revocation -----------------------------------------------------------------------------------

TEST_F(LockboxTest, RevokedByTheTenantAdminOrASecurityOfficer) {
  MakeStaff("sam", {staff_roles::kSupport});
  MakeStaff("sol", {staff_roles::kSecurityOfficer});
  std::vector<std::pair<std::string, std::function<Caller()>>> revokers = {
      {"tenant admin", [&] { return FreshAdmin(); }},
      {"security officer", [&] { return Staff("sol"); }},
  };
  for (const auto& [who, revoker] : revokers) {
    SCOPED_TRACE(who);
    std::string id = Granted(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
    Caller sam = Staff("sam");
    EXPECT_TRUE(ReadCustomer(sam).ok());
    EXPECT_TRUE(Ok(v_->RevokeAccessRequest(revoker(), kTenant, id)).no_content);
    // The very next call of the same session is denied.
    EXPECT_EQ(ReadCustomer(sam).status().code(), StatusCode::kPermissionDenied);
    auto after = Ok(v_->GetAccessRequest(admin_key_, kTenant, id));
    EXPECT_EQ(after.body["status"], "revoked");
    EXPECT_EQ(after.body["grant"]["ends_at"], FormatRfc3339(clock_.Now()));
    // Revoked once; not again, and never approved back.
    EXPECT_EQ(v_->RevokeAccessRequest(revoker(), kTenant, id).status().code(), StatusCode::kAborted);
    EXPECT_EQ(v_->ApproveAccessRequest(FreshAdmin(), kTenant, id, json::object()).status().code(),
              StatusCode::kAborted);
    EXPECT_EQ(ReadCustomer(sam).status().code(), StatusCode::kPermissionDenied);
  }
}

TEST_F(LockboxTest, RequesterWithdrawsWhilePendingOnly) {
  MakeStaff("sam", {staff_roles::kSupport});
  MakeStaff("sue", {staff_roles::kSupport});
  std::string pending = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  // Another support engineer can neither withdraw nor see it.
  EXPECT_EQ(v_->RevokeAccessRequest(Staff("sue"), kTenant, pending).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->GetAccessRequest(Staff("sue"), kTenant, pending).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Ok(v_->GetAccessRequest(Staff("sam"), kTenant, pending)).body["status"], "pending");
  EXPECT_TRUE(Ok(v_->RevokeAccessRequest(Staff("sam"), kTenant, pending)).no_content);
  EXPECT_EQ(StatusOf(pending), "revoked");
  EXPECT_EQ(v_->ApproveAccessRequest(FreshAdmin(), kTenant, pending, json::object()).status().code(),
            StatusCode::kAborted);

  // An approved grant is the tenant's (and the officers') to end, not the requester's.
  std::string approved = Granted(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  EXPECT_EQ(v_->RevokeAccessRequest(Staff("sam"), kTenant, approved).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(approved), "approved");
  EXPECT_TRUE(ReadCustomer(Staff("sam")).ok());
}

// --- Races -----------------------------------------------------------------------------------------------

TEST_F(LockboxTest, ConcurrentApproveAndDenyEndInOneDecision) {
  MakeStaff("sam", {staff_roles::kSupport});
  MakeStaff("sol", {staff_roles::kSecurityOfficer});
  constexpr int kRounds = 6;
  constexpr int kThreads = 8;
  int approved_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::string id = Ask(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
    Caller admin = FreshAdmin();
    Caller sol = StaffSignIn("sol");
    std::atomic<int> ready{0};
    std::vector<Result<Reply>> results(kThreads, Result<Reply>(InternalError("not run")));
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        // Even threads approve as the tenant admin, odd ones deny as the
        // officer; the first thread of a round alternates.
        bool approve = (i + round) % 2 == 0;
        results[i] = approve ? v_->ApproveAccessRequest(admin, kTenant, id, json::object())
                             : v_->DenyAccessRequest(sol, kTenant, id, {{"reason", "not needed"}});
      });
    }
    for (auto& t : threads) t.join();

    int succeeded = 0;
    std::string winner;
    for (int i = 0; i < kThreads; ++i) {
      if (results[i].ok()) {
        ++succeeded;
        winner = results[i]->body["status"].get<std::string>();
      } else {
        // The losers see a decided request (or, for the admin's repeated
        // approval, their approval already counted): never a server error.
        StatusCode c = results[i].status().code();
        EXPECT_TRUE(c == StatusCode::kAborted || c == StatusCode::kAlreadyExists) << results[i].status().ToString();
      }
    }
    ASSERT_EQ(succeeded, 1);
    auto final_state = Ok(v_->GetAccessRequest(admin_key_, kTenant, id));
    EXPECT_EQ(final_state.body["status"], winner);
    EXPECT_EQ(final_state.body["approvals"].size(), winner == "approved" ? 1u : 0u) << final_state.body.dump();
    if (winner == "approved") ++approved_rounds;
    EXPECT_EQ(ReadCustomer(Staff("sam")).ok(), winner == "approved");

    // One audit entry per call; exactly one of them a successful decision.
    json decisions = Trail({{"resource", "access-requests/" + id}});
    int entries = 0, successes = 0;
    for (const json& item : decisions) {
      if (item["action"] != "access.approve" && item["action"] != "access.deny") continue;
      ++entries;
      if (item["outcome"] == "success") {
        ++successes;
        EXPECT_EQ(item["action"], winner == "approved" ? "access.approve" : "access.deny");
      }
    }
    EXPECT_EQ(entries, kThreads);
    EXPECT_EQ(successes, succeeded);
    // End this round's grant so the next round starts from none.
    if (winner == "approved") Ok(v_->RevokeAccessRequest(admin, kTenant, id));
  }
  std::cout << "approve won " << approved_rounds << " of " << kRounds << " rounds\n";
}

TEST_F(LockboxTest, NoReadStartedAfterTheRevokeReturnsIsAllowed) {
  MakeStaff("sam", {staff_roles::kSupport});
  std::string id = Granted(Staff("sam"), RequestBody({"record.read"}, {"customers"}));
  Caller sam = Staff("sam");
  Caller admin = FreshAdmin();  // revoking needs no step-up; signed in now all the same
  constexpr int kReaders = 4;
  constexpr int kReadsAfter = 20;  // per reader, once the revoke has returned
  std::atomic<bool> revoked{false};
  std::atomic<int> allowed_before{0}, failed_before{0}, allowed_after{0}, denied_after{0}, other_errors{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      int after = 0;
      while (after < kReadsAfter) {
        // Whether the revoke had returned before this read started.
        bool started_after = revoked.load(std::memory_order_seq_cst);
        auto read = ReadCustomer(sam);
        if (!started_after) {
          (read.ok() ? allowed_before : failed_before).fetch_add(1);
          continue;
        }
        ++after;
        if (read.ok()) {
          allowed_after.fetch_add(1);
        } else if (read.status().code() == StatusCode::kPermissionDenied) {
          denied_after.fetch_add(1);
        } else {
          other_errors.fetch_add(1);
        }
      }
    });
  }
  // Let the readers get going under the grant, then revoke mid-stream.
  while (allowed_before.load() < kReaders * 3 && failed_before.load() == 0) std::this_thread::yield();
  // Failures up to here are real ones: nothing has been revoked yet. (Reads
  // that overlap the revoke may go either way.)
  const int failed_under_grant = failed_before.load();
  Ok(v_->RevokeAccessRequest(admin, kTenant, id));
  revoked.store(true, std::memory_order_seq_cst);
  for (auto& t : readers) t.join();

  EXPECT_EQ(failed_under_grant, 0) << "reads under the grant, before the revoke, failed";
  EXPECT_EQ(allowed_after.load(), 0) << "reads started after the revoke returned were allowed";
  EXPECT_EQ(denied_after.load(), kReaders * kReadsAfter);
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(StatusOf(id), "revoked");
}

// --- Staff without a grant ----------------------------------------------------------------------------

TEST_F(LockboxTest, StaffWithoutAGrantAreDeniedEverywhere) {
  SetUpTenant(*v_, root_, kOtherTenant);
  const std::vector<std::pair<std::string, std::string>> staff = {{"sam", staff_roles::kSupport},
                                                                  {"sol", staff_roles::kSecurityOfficer},
                                                                  {"audrey", staff_roles::kAuditor},
                                                                  {"oscar", staff_roles::kOperator}};
  for (const auto& [name, role] : staff) MakeStaff(name, {role});
  // What does not count as a grant: a pending request, a denied one, and a
  // grant on another tenant.
  Ask(Staff("sam"), RequestBody({"record.read", "record.write", "users.admin"}, {"*"}));
  std::string denied = Ask(Staff("sol"), RequestBody({"record.read"}, {"*"}));
  Ok(v_->DenyAccessRequest(FreshAdmin(), kTenant, denied, json::object()));
  Granted(Staff("oscar"), RequestBody({"record.read", "record.write", "users.admin"}, {"*"}, "2h", kOtherTenant));

  using Call = std::function<Result<Reply>(const Caller&)>;
  const std::string t = kTenant;
  const std::vector<std::pair<std::string, Call>> calls = {
      {"GetRecord", [&](const Caller& c) { return v_->GetRecord(c, t, "customers", customer_, std::nullopt); }},
      {"CreateRecord",
       [&](const Caller& c) { return v_->CreateRecord(c, t, "customers", {{"data", {{"email", "x@y.example"}}}}); }},
      {"UpdateRecord",
       [&](const Caller& c) {
         return v_->UpdateRecord(c, t, "customers", customer_, {{"data", {{"email", "x@y.example"}}}}, std::nullopt);
       }},
      {"DeleteRecord", [&](const Caller& c) { return v_->DeleteRecord(c, t, "customers", customer_); }},
      {"FindRecords (lookup)",
       [&](const Caller& c) { return v_->FindRecords(c, t, "customers", {{"email", kEmail}}, {}); }},
      {"FindRecords (export)", [&](const Caller& c) { return v_->FindRecords(c, t, "customers", {}, {}); }},
      {"ListVersions", [&](const Caller& c) { return v_->ListVersions(c, t, "customers", customer_); }},
      {"GetCollection", [&](const Caller& c) { return v_->GetCollection(c, t, "customers"); }},
      {"ListCollections", [&](const Caller& c) { return v_->ListCollections(c, t); }},
      {"PutCollection",
       [&](const Caller& c) {
         return v_->PutCollection(c, t, "scratch", {{"fields", {{"x", {{"type", "string"}}}}}});
       }},
      {"PutRole",
       [&](const Caller& c) {
         return v_->PutRole(c, t, "scratch",
                            {{"permissions", {{{"action", "record.read"}, {"collections", {"*"}}, {"view", "full"}}}}});
       }},
      {"ListRoles", [&](const Caller& c) { return v_->ListRoles(c, t); }},
      {"CreateApiKey", [&](const Caller& c) { return v_->CreateApiKey(c, t, {{"name", "mine"}, {"role", "admin"}}); }},
      {"ListApiKeys", [&](const Caller& c) { return v_->ListApiKeys(c, t); }},
      {"CreateUser",
       [&](const Caller& c) {
         return v_->CreateUser(c, t, {{"username", "mole"}, {"password", kUserPassword}, {"roles", {"admin"}}});
       }},
      {"ListUsers", [&](const Caller& c) { return v_->ListUsers(c, t, {}); }},
      {"UpdateUser", [&](const Caller& c) { return v_->UpdateUser(c, t, kTenantAdmin, {{"disabled", true}}); }},
      {"GetAuthPolicy", [&](const Caller& c) { return v_->GetAuthPolicy(c, t); }},
      {"PutAuthPolicy", [&](const Caller& c) { return v_->PutAuthPolicy(c, t, {{"require_totp", false}}); }},
      {"GetLockboxPolicy", [&](const Caller& c) { return v_->GetLockboxPolicy(c, t); }},
      {"PutLockboxPolicy", [&](const Caller& c) { return v_->PutLockboxPolicy(c, t, {{"own_approval_only", false}}); }},
  };

  std::vector<std::pair<std::string, Principal>> principals;
  for (const auto& [name, role] : staff) principals.emplace_back(role, StaffSignIn(name).principal);
  principals.emplace_back("root", root_.principal);

  int serial = 0;
  for (const auto& [label, principal] : principals) {
    std::map<std::string, std::string> request_ids;  // request id → call
    for (const auto& [call_name, call] : calls) {
      SCOPED_TRACE(label + " " + call_name);
      std::string request_id = "lockbox-matrix-" + std::to_string(serial++);
      request_ids[request_id] = call_name;
      Caller caller{principal, RequestContext{request_id, "192.0.2.10", ""}};
      auto result = call(caller);
      EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied) << result.status().ToString();
    }
    // Each call left one entry, recording the denial, under no grant.
    json items = Trail({{"principal", principal.LogName()}, {"tenant", kTenant}});
    std::map<std::string, int> seen;
    for (const json& item : items) {
      json entry = json::parse(item["entry"].get<std::string>());
      auto it = request_ids.find(entry["request_id"]);
      if (it == request_ids.end()) continue;
      ++seen[it->second];
      EXPECT_EQ(entry["outcome"], "permission_denied") << label << " " << it->second << ": " << entry.dump();
      EXPECT_EQ(entry["grant_id"], "") << label << " " << it->second;
    }
    for (const auto& [request_id, call_name] : request_ids) {
      EXPECT_EQ(seen[call_name], 1) << label << " " << call_name << " (" << request_id << ")";
    }
  }

  // Nothing changed.
  auto record = Ok(v_->GetRecord(admin_key_, kTenant, "customers", customer_, std::nullopt));
  EXPECT_EQ(record.body["version"], 1);
  EXPECT_EQ(record.body["data"]["email"], kEmail);
  EXPECT_EQ(v_->GetCollection(admin_key_, kTenant, "scratch").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->GetUser(admin_key_, kTenant, "mole").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Ok(v_->ListApiKeys(admin_key_, kTenant)).body["items"].size(), 1u);
  EXPECT_EQ(Ok(v_->GetUser(admin_key_, kTenant, kTenantAdmin)).body["disabled"], false);
}

}  // namespace
}  // namespace kura::vault
