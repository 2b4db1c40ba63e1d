// The key hierarchy in the vault (keys.cc, keyring.cc): KEK rotation seen by
// a second vault on the same stores (another node), crypto-shredding on
// tenant delete, seal migration, key ages.
#include <gtest/gtest.h>

#include <string>

#include "crypto/seal.h"
#include "store/key_store.h"
#include "store/pg_test_env.h"
#include "vault/vault.h"
#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using testing::SealKind;

class KeysVaultTest : public testing::VaultFixture {
 protected:
  std::string CreateRecord(Vault& v, const Caller& admin, const std::string& t, const std::string& email) {
    auto rec = Ok(v.CreateRecord(admin, t, "customers", {{"data", {{"email", email}}}}));
    return rec.body["id"];
  }
  std::string Email(Vault& v, const Caller& admin, const std::string& t, const std::string& id) {
    auto rec = v.GetRecord(admin, t, "customers", id, std::nullopt);
    if (!rec.ok()) return "error: " + rec.status().ToString();
    return Ok(std::move(rec)).body["data"]["email"];
  }
};

// Two nodes: two vaults on one PostgreSQL database (data and key store).
class TwoNodeKeysTest : public KeysVaultTest {
 protected:
  std::unique_ptr<Vault> OpenNode(const std::string& dsn) {
    store::PostgresOptions po;
    po.dsn = dsn;
    Options options;
    options.store = Ok(store::OpenPostgresStore(po));
    options.key_store = Ok(store::OpenPostgresKeyStore(po));
    options.seal = crypto::MakeKeyfileSeal(KeyPath());
    options.clock = &clock_;
    options.identity.argon2 = auth::Argon2Params{1, 64 * 1024};
    return Ok(Vault::Open(std::move(options)));
  }
};

TEST_F(TwoNodeKeysTest, KekRotationReachesAnotherNodeOnItsNextMiss) {
  KURA_SKIP_WITHOUT_PG();
  const std::string dsn = Ok(store::testing::FreshPgDsn());
  auto v1 = OpenNode(dsn);
  const std::string root_token = InitKeyfile(*v1);
  Caller root1 = Must(*v1, root_token);
  Caller a1 = Must(*v1, SetUpTenant(*v1, root1, "a"));
  std::string ra = CreateRecord(*v1, a1, "a", "a@example.com");

  // "Another node": a second vault on the same data store and key store.
  auto v2 = OpenNode(dsn);
  ASSERT_TRUE(v2->AutoUnseal().ok());
  Caller root2 = Must(*v2, root_token);
  std::string key_a = Ok(v1->CreateApiKey(a1, "a", {{"name", "k2"}, {"role", "admin"}})).body["key"];
  Caller a2 = Must(*v2, key_a);
  EXPECT_EQ(Email(*v2, a2, "a", ra), "a@example.com");  // a's keys now cached on v2

  auto rotated = Ok(v1->RotateKek(root1));
  EXPECT_EQ(rotated.body["kek_version"], 2);
  EXPECT_EQ(rotated.body["rewrapped"], 4);  // a's two keys, the secrets key, the signing key
  store::PostgresOptions po;
  po.dsn = dsn;
  auto keys = Ok(store::OpenPostgresKeyStore(po));
  auto keks = Ok(keys->ListKekVersions());
  ASSERT_EQ(keks.size(), 1u);
  EXPECT_EQ(keks[0].version, 2);
  EXPECT_EQ(Email(*v2, a2, "a", ra), "a@example.com");  // cached keys are unaffected

  // v1 makes a tenant under KEK 2; v2, still holding KEK 1, reads its keys
  // on a miss, meets KEK 2 and picks it up.
  Caller b1 = Must(*v1, SetUpTenant(*v1, root1, "b"));
  std::string rb = CreateRecord(*v1, b1, "b", "b@example.com");
  Caller b2 = Must(*v2, Ok(v1->CreateApiKey(b1, "b", {{"name", "k2"}, {"role", "admin"}})).body["key"]);
  EXPECT_EQ(Email(*v2, b2, "b", rb), "b@example.com");

  // And the other way round: v2 rotates to KEK 3; v1 wraps a new tenant's
  // keys under KEK 2, which is gone: it reloads and wraps again.
  EXPECT_EQ(Ok(v2->RotateKek(root2)).body["kek_version"], 3);
  Caller c1 = Must(*v1, SetUpTenant(*v1, root1, "c"));
  std::string rc = CreateRecord(*v1, c1, "c", "c@example.com");
  EXPECT_EQ(Email(*v1, c1, "c", rc), "c@example.com");
  for (const auto& k : Ok(keys->ListAllKeys())) EXPECT_EQ(k.kek_version, 3) << k.owner;
}

TEST_F(KeysVaultTest, RotationNeedsAnOperatorAndAnUnsealedVault) {
  auto v = OpenVault(SealKind::kKeyfile);
  Caller root = Must(*v, InitKeyfile(*v));
  Caller admin = Must(*v, SetUpTenant(*v, root, "a"));
  EXPECT_EQ(v->RotateKek(admin).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v->ListKeys(admin).status().code(), StatusCode::kPermissionDenied);
  Ok(v->Seal(root));
  EXPECT_EQ(v->RotateKek(root).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(KeysVaultTest, RotatedKekKeepsEveryRecordAndSecret) {
  auto v = OpenVault(SealKind::kKeyfile);
  Caller root = Must(*v, InitKeyfile(*v));
  Caller admin = Must(*v, SetUpTenant(*v, root, "a"));
  std::string id = CreateRecord(*v, admin, "a", "keep@example.com");
  for (int i = 0; i < 3; ++i) Ok(v->RotateKek(root));
  // After a restart (a fresh keyring) everything opens under KEK 4 alone.
  v.reset();
  v = OpenVault(SealKind::kKeyfile);
  ASSERT_TRUE(v->AutoUnseal().ok());
  Caller again = SignIn(*v, "a", kTenantAdmin, kTenantAdminPassword);
  EXPECT_EQ(Email(*v, again, "a", id), "keep@example.com");
  auto keys = OpenKeyStore(KeysPath());
  for (const auto& k : Ok(keys->ListAllKeys())) EXPECT_EQ(k.kek_version, 4);
}

TEST_F(KeysVaultTest, DeletingATenantDestroysItsKeysFirst) {
  auto v = OpenVault(SealKind::kKeyfile);
  Caller root = Must(*v, InitKeyfile(*v));
  SetUpTenant(*v, root, "a");
  SetUpTenant(*v, root, "b");
  auto keys = OpenKeyStore(KeysPath());
  EXPECT_EQ(Ok(keys->ListKeys("a")).size(), 2u);
  EXPECT_TRUE(Ok(v->DeleteTenant(root, "a")).no_content);
  EXPECT_TRUE(Ok(keys->ListKeys("a")).empty());
  EXPECT_EQ(Ok(keys->ListKeys("b")).size(), 2u);
  EXPECT_EQ(v->DeleteTenant(root, "a").status().code(), StatusCode::kNotFound);
  // The same id can be created again, with new keys.
  SetUpTenant(*v, root, "a");
  EXPECT_EQ(Ok(keys->ListKeys("a")).size(), 2u);
}

TEST_F(KeysVaultTest, MigrateSealToShamirThenTheKeyFileNoLongerOpens) {
  auto v = OpenVault(SealKind::kKeyfile);
  Caller root = Must(*v, InitKeyfile(*v));
  Caller admin = Must(*v, SetUpTenant(*v, root, "a"));
  std::string id = CreateRecord(*v, admin, "a", "mig@example.com");

  crypto::SealInitOptions bad;
  bad.shares = 3;
  bad.threshold = 5;
  EXPECT_EQ(v->MigrateSeal(crypto::MakeShamirSeal(), bad).status().code(), StatusCode::kInvalidArgument);
  crypto::SealInitOptions options;
  options.shares = 3;
  options.threshold = 2;
  auto migrated = Ok(v->MigrateSeal(crypto::MakeShamirSeal(), options));
  EXPECT_EQ(migrated.body["type"], "shamir");
  std::vector<std::string> shares = migrated.body["shares"];
  ASSERT_EQ(shares.size(), 3u);
  EXPECT_TRUE(v->IsSealed());  // the migrating vault lets go of the old seal's keys
  v.reset();

  // The key file seal is refused (the key store records shamir) …
  store::SqliteOptions so;
  so.path = DbPath();
  so.durable = false;
  {
    Options o;
    o.store = Ok(store::OpenSqliteStore(so));
    o.key_store = OpenKeyStore(KeysPath());
    o.seal = crypto::MakeKeyfileSeal(KeyPath());
    o.clock = &clock_;
    EXPECT_EQ(Vault::Open(std::move(o)).status().code(), StatusCode::kFailedPrecondition);
  }
  // … and the shares unseal, with every record readable.
  auto s = OpenVault(SealKind::kShamir);
  EXPECT_EQ(s->GetSealStatus().threshold, 2);
  Ok(s->Unseal({}, {{"share", shares[1]}}));
  Ok(s->Unseal({}, {{"share", shares[2]}}));
  ASSERT_FALSE(s->IsSealed());
  Caller again = SignIn(*s, "a", kTenantAdmin, kTenantAdminPassword);
  EXPECT_EQ(Email(*s, again, "a", id), "mig@example.com");
}

TEST_F(KeysVaultTest, KeyAgesFollowTheClock) {
  auto v = OpenVault(SealKind::kKeyfile);
  Caller root = Must(*v, InitKeyfile(*v));
  SetUpTenant(*v, root, "a");
  clock_.Advance(std::chrono::hours(24 * 10));
  auto listed = Ok(v->ListKeys(root)).body;
  ASSERT_EQ(listed["kek_versions"].size(), 1u);
  EXPECT_EQ(listed["kek_versions"][0]["age_days"], 10);
  EXPECT_EQ(listed["kek_versions"][0]["current"], true);
  ASSERT_EQ(listed["tenants"].size(), 1u);
  EXPECT_EQ(listed["tenants"][0]["tenant"], "a");
  EXPECT_EQ(listed["tenants"][0]["data_keys"][0]["age_days"], 10);
  EXPECT_EQ(listed["tenants"][0]["data_keys"][0]["current"], true);
  EXPECT_EQ(listed["tenants"][0]["index_key"]["version"], 1);
  Ok(v->RotateKek(root));
  listed = Ok(v->ListKeys(root)).body;
  EXPECT_EQ(listed["kek_versions"][0]["age_days"], 0);
  // A rewrap keeps a key's own creation time: its age goes on.
  EXPECT_EQ(listed["tenants"][0]["data_keys"][0]["age_days"], 10);
}

}  // namespace
}  // namespace kura::vault
