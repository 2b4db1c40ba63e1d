// DEK rotation on a real SQLite store: the job re-encrypts in batches, resumes
// from the cursor stored with each batch (also in a reopened vault), skips
// versions changed meanwhile, and at the end destroys the old key. On
// PostgreSQL, writes and reads of a vault whose cached keys predate a
// rotation made by another vault on the same database (another node) still
// succeed.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/bytes.h"
#include "store/key_store.h"
#include "store/pg_test_env.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using testing::SealKind;

class RotationTest : public testing::VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(SealKind::kKeyfile);
    ASSERT_NE(v_, nullptr);
    root_ = Must(*v_, InitKeyfile(*v_));
    acme_key_ = SetUpTenant(*v_, root_, "acme");
    beta_key_ = SetUpTenant(*v_, root_, "beta");
    // A second handle on the same database: what is stored, as a reader of
    // the file would see it.
    store::SqliteOptions so;
    so.path = DbPath();
    so.durable = false;
    auto store = store::OpenSqliteStore(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  // The vault again on the same files (a restart); unsealed.
  std::unique_ptr<Vault> OpenOther() {
    auto other = OpenVault(SealKind::kKeyfile);
    EXPECT_NE(other, nullptr);
    if (other) {
      EXPECT_TRUE(other->AutoUnseal().ok());
    }
    return other;
  }

  std::string Create(Vault& v, const std::string& key, const std::string& tenant, const json& data) {
    return Ok(v.CreateRecord(Must(v, key), tenant, "customers", {{"data", data}})).body["id"];
  }

  json Read(Vault& v, const std::string& key, const std::string& tenant, const std::string& id,
            std::optional<std::int64_t> version = std::nullopt) {
    return Ok(v.GetRecord(Must(v, key), tenant, "customers", id, version)).body["data"];
  }

  std::int64_t KeyVersionOf(const std::string& tenant, const std::string& id, std::int64_t version) {
    auto row = store_->GetRecord(tenant, "customers", id, version);
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    return row.ok() ? row->key_version : -1;
  }

  // Writes 20 acme records, the first 5 updated once (25 versions); returns
  // id → current data.
  std::map<std::string, json> Fill() {
    std::map<std::string, json> out;
    for (int i = 0; i < 20; ++i) {
      json data = {{"email", "p" + std::to_string(i) + "@acme.example"}, {"note", "n" + std::to_string(i)}};
      std::string id = Create(*v_, acme_key_, "acme", data);
      if (i < 5) {
        data["note"] = "updated";
        Ok(v_->UpdateRecord(Must(*v_, acme_key_), "acme", "customers", id, {{"data", data}}, 1));
      }
      out[id] = data;
    }
    return out;
  }

  void ExpectAll(Vault& v, const std::map<std::string, json>& records) {
    for (const auto& [id, data] : records) EXPECT_EQ(Read(v, acme_key_, "acme", id), data) << id;
  }

  std::unique_ptr<Vault> v_;
  std::unique_ptr<store::Store> store_;
  Caller root_;
  std::string acme_key_, beta_key_;
};

TEST_F(RotationTest, BatchesResumeFromTheStoredCursorAndTheEndDestroysTheOldKey) {
  const std::map<std::string, json> records = Fill();
  const std::string beta_id = Create(*v_, beta_key_, "beta", {{"email", "b@beta.example"}});
  const std::string first = records.begin()->first;
  // An old copy of a version (as a backup of the data store would hold it).
  const Bytes old_ciphertext = store_->GetRecord("acme", "customers", first, 1)->ciphertext;
  EXPECT_EQ(Ok(v_->GetTenantKeyRotation(root_, "acme")).body["state"], "none");
  EXPECT_TRUE(Ok(v_->ReencryptStep(10)).idle);

  Reply started = Ok(v_->RotateTenantKey(root_, "acme"));
  EXPECT_TRUE(started.created);
  EXPECT_EQ(started.body["state"], "running");
  EXPECT_EQ(started.body["to_version"], 2);
  EXPECT_EQ(started.body["total"], 25);
  EXPECT_EQ(v_->RotateTenantKey(root_, "acme").status().code(), StatusCode::kAborted);
  // New writes use the new version at once.
  const std::string fresh = Create(*v_, acme_key_, "acme", {{"email", "new@acme.example"}});
  EXPECT_EQ(KeyVersionOf("acme", fresh, 1), 2);

  ReencryptProgress step = Ok(v_->ReencryptStep(10));
  EXPECT_FALSE(step.idle);
  EXPECT_EQ(step.tenant, "acme");
  EXPECT_EQ(step.scanned, 10);
  EXPECT_EQ(step.rewritten, 10);
  EXPECT_EQ(Ok(v_->GetTenantKeyRotation(root_, "acme")).body["done"], 10);

  // A restart (another vault on the same files) continues at the cursor.
  v_.reset();
  v_ = OpenOther();
  ASSERT_NE(v_, nullptr);
  step = Ok(v_->ReencryptStep(10));
  EXPECT_EQ(step.rewritten, 10);
  EXPECT_EQ(Ok(v_->GetTenantKeyRotation(root_, "acme")).body["done"], 20);
  // Meanwhile both versions open: old ones with the old key, new with the new.
  ExpectAll(*v_, records);
  step = Ok(v_->ReencryptStep(10));
  EXPECT_EQ(step.scanned, 5);  // the version written after the rotation is not visited
  EXPECT_FALSE(step.finished);
  step = Ok(v_->ReencryptStep(10));
  EXPECT_TRUE(step.finished);
  EXPECT_TRUE(Ok(v_->ReencryptStep(10)).idle);

  json status = Ok(v_->GetTenantKeyRotation(root_, "acme")).body;
  EXPECT_EQ(status["state"], "done");
  EXPECT_EQ(status["done"], 25);
  EXPECT_EQ(status["data_key_version"], 2);
  EXPECT_FALSE(status["finished_at"].is_null());
  EXPECT_EQ(store_->CountRecordVersionsBelowKey("acme", 2).value(), 0);
  EXPECT_EQ(KeyVersionOf("acme", first, 1), 2);
  EXPECT_EQ(KeyVersionOf("beta", beta_id, 1), 1);  // other tenants untouched
  ExpectAll(*v_, records);
  EXPECT_EQ(Read(*v_, beta_key_, "beta", beta_id)["email"], "b@beta.example");
  auto found = Ok(v_->FindRecords(Must(*v_, acme_key_), "acme", "customers", {{"email", "p7@acme.example"}}, {}));
  EXPECT_EQ(found.body["items"].size(), 1u);

  // The old key is gone: the old copy of the version no longer opens.
  ASSERT_TRUE(store::ExecOnWriterForTest(*store_, "UPDATE record_versions SET key_version = 1, ciphertext = X'" +
                                                      HexEncode(old_ciphertext) + "' WHERE record_id = '" + first +
                                                      "' AND version = 1")
                  .ok());
  auto lost = v_->GetRecord(Must(*v_, acme_key_), "acme", "customers", first, 1);
  EXPECT_EQ(lost.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(lost.status().message().find("destroyed"), std::string::npos) << lost.status().ToString();

  // The end is audited, by the system.
  json entries = Ok(v_->SystemAuditTrail(root_, {{"action", actions::kDataKeyReencrypted}})).body["items"];
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["principal"], "system");
  EXPECT_EQ(entries[0]["tenant"], "acme");
}

TEST_F(RotationTest, VersionsChangedDuringTheJobAreNotRewrittenOrLost) {
  std::map<std::string, json> records = Fill();
  Ok(v_->RotateTenantKey(root_, "acme"));
  EXPECT_EQ(Ok(v_->ReencryptStep(4)).rewritten, 4);
  // Updates behind and ahead of the cursor, and a delete.
  int n = 0;
  for (auto it = records.begin(); it != records.end();) {
    if (n % 3 == 0) {
      it->second["note"] = "during";
      Ok(v_->UpdateRecord(Must(*v_, acme_key_), "acme", "customers", it->first, {{"data", it->second}}, std::nullopt));
      ++it;
    } else if (n == 4) {
      Ok(v_->DeleteRecord(Must(*v_, acme_key_), "acme", "customers", it->first));
      it = records.erase(it);
    } else {
      ++it;
    }
    ++n;
  }
  for (int i = 0; i < 20; ++i) {
    if (Ok(v_->ReencryptStep(4)).finished) break;
  }
  EXPECT_EQ(Ok(v_->GetTenantKeyRotation(root_, "acme")).body["state"], "done");
  EXPECT_EQ(store_->CountRecordVersionsBelowKey("acme", 2).value(), 0);
  ExpectAll(*v_, records);
}

// Two nodes: two vaults on one PostgreSQL database (SQLite has one node). The
// first caches acme's keys, the second rotates: the first's writes sealed
// under the old version are refused by the store and sealed again, its reads
// of versions under the new key reload the keys, and nothing fails.
class TwoNodeRotationTest : public testing::VaultFixture {
 protected:
  std::unique_ptr<Vault> OpenNode(const std::string& dsn) {
    store::PostgresOptions po;
    po.dsn = dsn;
    auto store = store::OpenPostgresStore(po);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    auto key_store = store::OpenPostgresKeyStore(po);
    EXPECT_TRUE(key_store.ok()) << key_store.status().ToString();
    if (!store.ok() || !key_store.ok()) return nullptr;
    Options options;
    options.store = std::move(store).value();
    options.key_store = std::move(key_store).value();
    options.seal = crypto::MakeKeyfileSeal(KeyPath());
    options.clock = &clock_;
    options.identity.argon2 = auth::Argon2Params{1, 64 * 1024};
    auto vault = Vault::Open(std::move(options));
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    return vault.ok() ? std::move(vault).value() : nullptr;
  }
};

TEST_F(TwoNodeRotationTest, AVaultWithKeysFromBeforeAnotherNodesRotationWritesAndReadsOn) {
  KURA_SKIP_WITHOUT_PG();
  auto dsn = store::testing::FreshPgDsn();
  ASSERT_TRUE(dsn.ok()) << dsn.status().ToString();
  auto a = OpenNode(*dsn);
  ASSERT_NE(a, nullptr);
  Caller root = Must(*a, InitKeyfile(*a));
  const std::string key = SetUpTenant(*a, root, "acme");
  auto b = OpenNode(*dsn);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->AutoUnseal().ok());

  std::map<std::string, json> records;
  for (int i = 0; i < 12; ++i) {
    json data = {{"email", "p" + std::to_string(i) + "@acme.example"}};
    records[Ok(a->CreateRecord(Must(*a, key), "acme", "customers", {{"data", data}})).body["id"]] = data;
  }
  auto expect_all = [&](Vault& v) {
    for (const auto& [id, data] : records) {
      EXPECT_EQ(Ok(v.GetRecord(Must(v, key), "acme", "customers", id, std::nullopt)).body["data"], data) << id;
    }
  };
  expect_all(*a);  // a caches acme's keys (version 1)

  Ok(b->RotateTenantKey(root, "acme"));
  // a's write sealed under version 1 is refused by the store, sealed again.
  json late = {{"email", "late@acme.example"}};
  records[Ok(a->CreateRecord(Must(*a, key), "acme", "customers", {{"data", late}})).body["id"]] = late;
  auto& [first, data] = *records.begin();
  const std::int64_t current = *Ok(a->GetRecord(Must(*a, key), "acme", "customers", first, std::nullopt)).version;
  data["note"] = "conditional";
  Reply updated = Ok(a->UpdateRecord(Must(*a, key), "acme", "customers", first, {{"data", data}}, current));
  EXPECT_EQ(updated.version, current + 1);
  // Versions b wrote or re-encrypted under version 2 open on a too.
  json theirs = {{"email", "theirs@acme.example"}};
  records[Ok(b->CreateRecord(Must(*b, key), "acme", "customers", {{"data", theirs}})).body["id"]] = theirs;
  for (int i = 0; i < 10; ++i) {
    if (Ok(b->ReencryptStep(5)).finished) break;
  }
  json status = Ok(a->GetTenantKeyRotation(root, "acme")).body;
  EXPECT_EQ(status["state"], "done");
  EXPECT_EQ(status["data_key_version"], 2);
  expect_all(*a);
  expect_all(*b);
}

TEST_F(RotationTest, OperatorsAndTheTenantsAdminsOnly) {
  Caller acme_admin = Must(*v_, acme_key_);
  EXPECT_EQ(v_->GetTenantKeyRotation(acme_admin, "beta").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v_->RotateTenantKey(acme_admin, "beta").status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(v_->RotateTenantKey(acme_admin, "acme").ok());
  EXPECT_EQ(v_->RotateTenantKey(root_, "nobody").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->GetTenantKeyRotation(root_, "nobody").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace kura::vault
