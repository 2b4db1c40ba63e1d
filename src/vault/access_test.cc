// The access matrix: every vault call × every kind of principal, plus the
// credentials that must not authenticate at all.
#include <gtest/gtest.h>

#include <functional>

#include "vault/vault.h"
#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using testing::SealKind;
using testing::VaultFixture;

constexpr StatusCode kOk = StatusCode::kOk;
constexpr StatusCode kDenied = StatusCode::kPermissionDenied;
constexpr StatusCode kNotFound = StatusCode::kNotFound;

// Root manages tenants and seals; it neither administers a tenant nor
// reaches records (SPEC §1: staff need an approved grant for either). The
// tenant's first admin user (a session) holds the built-in admin role, like
// the admin key.
enum Who { kRoot, kAdmin, kAdminUser, kLimited, kOther, kWhoCount };
constexpr const char* kWhoNames[] = {"root", "acme admin key", "acme admin user", "acme limited key",
                                     "globex admin key"};

class AccessTest : public VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(SealKind::kKeyfile);
    root_token_ = InitKeyfile(*v_);
    callers_[kRoot] = Must(*v_, root_token_);
    admin_token_ = SetUpTenant(*v_, callers_[kRoot], "acme", &callers_[kAdminUser]);
    callers_[kAdmin] = Must(*v_, admin_token_);
    Ok(v_->PutCollection(callers_[kAdmin], "acme", "orders", json::parse(R"({"fields":{"sku":{"type":"string"}}})")));
    // Reads customers (masked) and nothing else.
    Ok(v_->PutRole(callers_[kAdmin], "acme", "reader", json::parse(R"({"permissions":[
        {"action":"record.read","collections":["customers"],"view":"masked"}]})")));
    callers_[kLimited] =
        Must(*v_, Ok(v_->CreateApiKey(callers_[kAdmin], "acme", {{"name", "r"}, {"role", "reader"}})).body["key"]);
    callers_[kOther] = Must(*v_, SetUpTenant(*v_, callers_[kRoot], "globex"));
  }

  std::string NewRecord() {
    return Ok(v_->CreateRecord(callers_[kAdmin], "acme", "customers", {{"data", {{"email", "a@b.example"}}}}))
        .body["id"];
  }
  std::string Unique(const std::string& prefix) { return prefix + std::to_string(++counter_); }

  std::unique_ptr<Vault> v_;
  std::string root_token_;
  std::string admin_token_;
  Caller callers_[kWhoCount];
  int counter_ = 0;
};

struct Row {
  const char* call;
  std::function<Status(Vault&, const Caller&)> run;
  StatusCode expected[kWhoCount];
};

TEST_F(AccessTest, EveryCallForEveryPrincipal) {
  Vault& v = *v_;
  const Caller& root = callers_[kRoot];
  const Caller& admin = callers_[kAdmin];
  json customer = {{"data", {{"email", "c@d.example"}}}};
  json schema = json::parse(R"({"fields":{"a":{"type":"string"}}})");
  json role = json::parse(R"({"permissions":[]})");

  std::vector<Row> rows = {
      {"Whoami", [&](Vault& v, const Caller& c) { return v.Whoami(c).status(); }, {kOk, kOk, kOk, kOk, kOk}},
      {"CreateTenant",
       [&](Vault& v, const Caller& c) {
         return v.CreateTenant(c, {{"id", Unique("t")}, {"name", "T"}}).status();
       },
       {kOk, kDenied, kDenied, kDenied, kDenied}},
      {"GetTenant",
       [&](Vault& v, const Caller& c) { return v.GetTenant(c, "acme").status(); },
       {kOk, kDenied, kDenied, kDenied, kDenied}},
      {"ListTenants",
       [&](Vault& v, const Caller& c) { return v.ListTenants(c, {}).status(); },
       {kOk, kDenied, kDenied, kDenied, kDenied}},
      {"DeleteTenant",
       [&](Vault& v, const Caller& c) {
         std::string t = Unique("d");
         Ok(v.CreateTenant(root, {{"id", t}, {"name", "D"}}));
         return v.DeleteTenant(c, t).status();
       },
       {kOk, kDenied, kDenied, kDenied, kDenied}},
      // Tenant administration (collections, roles, API keys): the tenant's
      // admin role only, root refused.
      {"PutCollection",
       [&](Vault& v, const Caller& c) { return v.PutCollection(c, "acme", Unique("c"), schema).status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"GetCollection",
       [&](Vault& v, const Caller& c) { return v.GetCollection(c, "acme", "customers").status(); },
       {kDenied, kOk, kOk, kOk, kDenied}},
      {"GetCollection(orders)",
       [&](Vault& v, const Caller& c) { return v.GetCollection(c, "acme", "orders").status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"ListCollections",
       [&](Vault& v, const Caller& c) { return v.ListCollections(c, "acme").status(); },
       {kDenied, kOk, kOk, kOk, kDenied}},
      {"PutRole",
       [&](Vault& v, const Caller& c) { return v.PutRole(c, "acme", Unique("r"), role).status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"GetRole",
       [&](Vault& v, const Caller& c) { return v.GetRole(c, "acme", "reader").status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"ListRoles",
       [&](Vault& v, const Caller& c) { return v.ListRoles(c, "acme").status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"DeleteRole",
       [&](Vault& v, const Caller& c) {
         std::string r = Unique("r");
         Ok(v.PutRole(admin, "acme", r, role));
         return v.DeleteRole(c, "acme", r).status();
       },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"CreateApiKey",
       [&](Vault& v, const Caller& c) {
         return v.CreateApiKey(c, "acme", {{"name", "k"}, {"role", "reader"}}).status();
       },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"ListApiKeys",
       [&](Vault& v, const Caller& c) { return v.ListApiKeys(c, "acme").status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"RevokeApiKey",
       [&](Vault& v, const Caller& c) {
         std::string id = Ok(v.CreateApiKey(admin, "acme", {{"name", "k"}, {"role", "reader"}})).body["id"];
         return v.RevokeApiKey(c, "acme", id).status();
       },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"CreateRecord",
       [&](Vault& v, const Caller& c) { return v.CreateRecord(c, "acme", "customers", customer).status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"GetRecord",
       [&](Vault& v, const Caller& c) {
         return v.GetRecord(c, "acme", "customers", NewRecord(), std::nullopt).status();
       },
       {kDenied, kOk, kOk, kOk, kDenied}},
      {"GetRecord(orders)",
       [&](Vault& v, const Caller& c) {
         std::string id = Ok(v.CreateRecord(admin, "acme", "orders", {{"data", {{"sku", "S"}}}})).body["id"];
         return v.GetRecord(c, "acme", "orders", id, std::nullopt).status();
       },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"UpdateRecord",
       [&](Vault& v, const Caller& c) {
         return v.UpdateRecord(c, "acme", "customers", NewRecord(), customer, 1).status();
       },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"DeleteRecord",
       [&](Vault& v, const Caller& c) { return v.DeleteRecord(c, "acme", "customers", NewRecord()).status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
      {"ListVersions",
       [&](Vault& v, const Caller& c) { return v.ListVersions(c, "acme", "customers", NewRecord()).status(); },
       {kDenied, kOk, kOk, kOk, kDenied}},
      {"FindRecords(email)",
       [&](Vault& v, const Caller& c) {
         return v.FindRecords(c, "acme", "customers", {{"email", "a@b.example"}}, {}).status();
       },
       {kDenied, kOk, kOk, kOk, kDenied}},
      {"FindRecords(all)",
       [&](Vault& v, const Caller& c) { return v.FindRecords(c, "acme", "customers", {}, {}).status(); },
       {kDenied, kOk, kOk, kDenied, kDenied}},
  };
  for (const auto& row : rows) {
    for (int who = 0; who < kWhoCount; ++who) {
      Status s = row.run(v, callers_[who]);
      EXPECT_EQ(s.code(), row.expected[who])
          << row.call << " as " << kWhoNames[who] << ": " << (s.ok() ? "OK" : s.ToString());
    }
  }
  // Only root seals (checked last: it ends the test's unsealed state).
  for (int who : {kAdmin, kAdminUser, kLimited, kOther}) {
    EXPECT_EQ(v.Seal(callers_[who]).status().code(), kDenied) << kWhoNames[who];
  }
  EXPECT_TRUE(v.Seal(root).ok());
}

TEST_F(AccessTest, DeniedBeforeNotFound) {
  Vault& v = *v_;
  const Caller& other = callers_[kOther];
  const Caller& limited = callers_[kLimited];
  const Caller& root = callers_[kRoot];
  const std::string ghost_id = "AAAAAAAAAAAAAAAAAAAAAA";
  // Another tenant's key learns nothing about acme (or a tenant that does not exist).
  for (const std::string t : {"acme", "ghost"}) {
    EXPECT_EQ(v.GetRecord(other, t, "customers", ghost_id, std::nullopt).status().code(), kDenied) << t;
    EXPECT_EQ(v.GetRecord(other, t, "nope", ghost_id, std::nullopt).status().code(), kDenied) << t;
    EXPECT_EQ(v.GetCollection(other, t, "nope").status().code(), kDenied) << t;
    EXPECT_EQ(v.GetRole(other, t, "nope").status().code(), kDenied) << t;
    EXPECT_EQ(v.ListApiKeys(other, t).status().code(), kDenied) << t;
    EXPECT_EQ(v.RevokeApiKey(other, t, std::string(24, 'a')).status().code(), kDenied) << t;
    EXPECT_EQ(v.PutCollection(other, t, "x", json::object()).status().code(), kDenied) << t;  // even a bad body
    EXPECT_EQ(v.CreateRecord(other, t, "customers", json::array()).status().code(), kDenied) << t;
  }
  // Bad names are not looked at before the rights check either.
  EXPECT_EQ(v.GetRecord(other, "BAD NAME", "x", "../", std::nullopt).status().code(), kDenied);
  // The limited key: a collection it has no right on, existing or not.
  EXPECT_EQ(v.GetRecord(limited, "acme", "orders", ghost_id, std::nullopt).status().code(), kDenied);
  EXPECT_EQ(v.GetRecord(limited, "acme", "ghosts", ghost_id, std::nullopt).status().code(), kDenied);
  EXPECT_EQ(v.GetRecord(limited, "acme", "customers", ghost_id, std::nullopt).status().code(), kNotFound);
  // Root never reaches records, whether they exist or not.
  EXPECT_EQ(v.GetRecord(root, "ghost", "customers", ghost_id, std::nullopt).status().code(), kDenied);
  EXPECT_EQ(v.GetRecord(root, "acme", "customers", NewRecord(), std::nullopt).status().code(), kDenied);
  // Nor does it administer a tenant, nor learn whether one exists that way.
  for (const std::string t : {"acme", "ghost"}) {
    EXPECT_EQ(v.ListRoles(root, t).status().code(), kDenied) << t;
    EXPECT_EQ(v.ListCollections(root, t).status().code(), kDenied) << t;
    EXPECT_EQ(v.GetCollection(root, t, "customers").status().code(), kDenied) << t;
    EXPECT_EQ(v.PutCollection(root, t, "c", json::parse(R"({"fields":{"a":{"type":"string"}}})")).status().code(),
              kDenied)
        << t;
  }
  // Principals with the right get NotFound for what does not exist.
  EXPECT_EQ(v.GetTenant(root, "ghost").status().code(), kNotFound);
  EXPECT_EQ(v.GetRole(callers_[kAdmin], "acme", "ghost").status().code(), kNotFound);
  EXPECT_EQ(v.GetRole(callers_[kAdminUser], "acme", "ghost").status().code(), kNotFound);
  EXPECT_EQ(v.GetCollection(callers_[kAdmin], "acme", "ghosts").status().code(), kNotFound);
  EXPECT_EQ(v.GetRecord(callers_[kAdmin], "acme", "ghosts", ghost_id, std::nullopt).status().code(), kNotFound);
}

TEST_F(AccessTest, ListCollectionsShowsALimitedKeyOnlyItsCollections) {
  auto all = Ok(v_->ListCollections(callers_[kAdmin], "acme"));
  EXPECT_EQ(all.body["items"].size(), 2u);
  auto limited = Ok(v_->ListCollections(callers_[kLimited], "acme"));
  ASSERT_EQ(limited.body["items"].size(), 1u);
  EXPECT_EQ(limited.body["items"][0]["name"], "customers");
}

TEST_F(AccessTest, BadCredentialsAreUnauthenticatedWithOneMessage) {
  // Expired key (fake clock), revoked key, unknown and malformed tokens.
  auto expiring = Ok(v_->CreateApiKey(callers_[kAdmin], "acme",
                                      {{"name", "temp"}, {"role", "admin"}, {"expires_at", "2030-01-01T01:00:00Z"}}));
  std::string expiring_key = expiring.body["key"];
  EXPECT_TRUE(v_->Authenticate(expiring_key).ok());
  clock_.Advance(std::chrono::minutes(59));
  EXPECT_TRUE(v_->Authenticate(expiring_key).ok());  // cached, still valid
  clock_.Advance(std::chrono::minutes(1));
  auto expired = v_->Authenticate(expiring_key);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), StatusCode::kUnauthenticated);

  auto revoked = Ok(v_->CreateApiKey(callers_[kAdmin], "acme", {{"name", "gone"}, {"role", "admin"}}));
  std::string revoked_key = revoked.body["key"];
  EXPECT_TRUE(v_->Authenticate(revoked_key).ok());  // now cached
  EXPECT_TRUE(Ok(v_->RevokeApiKey(callers_[kAdmin], "acme", revoked.body["id"])).no_content);
  auto after_revoke = v_->Authenticate(revoked_key);
  ASSERT_FALSE(after_revoke.ok());  // at once, despite the cache
  EXPECT_EQ(after_revoke.status().code(), StatusCode::kUnauthenticated);
  auto listed = Ok(v_->ListApiKeys(callers_[kAdmin], "acme"));
  bool saw_revoked = false;
  for (const auto& item : listed.body["items"]) {
    if (item["id"] == revoked.body["id"]) saw_revoked = item["revoked_at"].is_string();
  }
  EXPECT_TRUE(saw_revoked);

  // A well-formed key that was never issued; a key with another key's id.
  std::string unknown = "kura_key_" + std::string(24, '0') + "_" + revoked_key.substr(revoked_key.size() - 43);
  std::string swapped_id =
      "kura_key_" + callers_[kAdmin].principal.id + "_" + revoked_key.substr(revoked_key.size() - 43);
  std::string tampered_admin = admin_token_;
  tampered_admin.back() = tampered_admin.back() == 'A' ? 'Q' : 'A';
  std::string tampered_root = root_token_;
  tampered_root.back() = tampered_root.back() == 'A' ? 'Q' : 'A';

  std::string message = expired.status().message();
  for (const std::string& token : {revoked_key, unknown, swapped_id, tampered_admin, tampered_root, std::string(""),
                                   std::string("Bearer x"), std::string("kura_root_"),
                                   "kura_root_" + std::string(43, 'A')}) {
    auto r = v_->Authenticate(token);
    ASSERT_FALSE(r.ok()) << token;
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << token;
    EXPECT_EQ(r.status().message(), message) << token;  // no oracle
  }
  // The real ones still work.
  EXPECT_EQ(Ok(v_->Authenticate(root_token_)).kind, PrincipalKind::kRoot);
  Principal admin = Ok(v_->Authenticate(admin_token_));
  EXPECT_EQ(admin.kind, PrincipalKind::kApiKey);
  EXPECT_EQ(admin.tenant_id, "acme");
  EXPECT_EQ(admin.role, "admin");
  EXPECT_EQ(admin.LogName(), "apikey:" + admin.id);
  EXPECT_EQ(admin.LogName().find(admin_token_.substr(admin_token_.size() - 43)), std::string::npos);
}

TEST_F(AccessTest, RoleChangesApplyAtOnce) {
  const Caller& limited = callers_[kLimited];
  std::string id = NewRecord();
  EXPECT_EQ(v_->DeleteRecord(limited, "acme", "customers", id).status().code(), kDenied);
  Ok(v_->PutRole(callers_[kAdmin], "acme", "reader", json::parse(R"({"permissions":[
      {"action":"record.read","collections":["customers"],"view":"full"},
      {"action":"record.delete","collections":["customers"]}]})")));
  EXPECT_EQ(Ok(v_->GetRecord(limited, "acme", "customers", id, std::nullopt)).body["data"]["email"], "a@b.example");
  EXPECT_TRUE(v_->DeleteRecord(limited, "acme", "customers", id).ok());
}

}  // namespace
}  // namespace kura::vault
