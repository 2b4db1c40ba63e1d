// Retention (crypto-shredding by age) on a real SQLite store with the fake
// clock: records past their collection's retention are destroyed with every
// version and index entry, each audited as record.expire by "system"; records
// inside it, records updated since, and collections without retention stay.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using testing::SealKind;

constexpr auto kDay = std::chrono::hours(24);

class RetentionTest : public testing::VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(SealKind::kKeyfile);
    ASSERT_NE(v_, nullptr);
    root_ = Must(*v_, InitKeyfile(*v_));
    // acme.customers keeps records 365 days (SetUpTenant's schema).
    acme_key_ = SetUpTenant(*v_, root_, "acme");
    beta_key_ = SetUpTenant(*v_, root_, "beta");
    Caller acme = Must(*v_, acme_key_);
    Ok(v_->PutCollection(acme, "acme", "archive",
                         json::parse(R"({"fields":{"sku":{"type":"string","index":true}}})")));
    Ok(v_->PutCollection(acme, "acme", "visits",
                         json::parse(R"({"fields":{"sku":{"type":"string","index":true}},"retention_days":30})")));
  }

  std::string Create(const std::string& key, const std::string& tenant, const std::string& collection,
                     const json& data) {
    return Ok(v_->CreateRecord(Must(*v_, key), tenant, collection, {{"data", data}})).body["id"];
  }

  StatusCode GetCode(const std::string& key, const std::string& tenant, const std::string& collection,
                     const std::string& id, std::optional<std::int64_t> version = std::nullopt) {
    return v_->GetRecord(Must(*v_, key), tenant, collection, id, version).status().code();
  }

  json ExpireEntries() {
    return Ok(v_->SystemAuditTrail(root_, {{"action", actions::kRecordExpire}, {"limit", "1000"}})).body["items"];
  }

  std::unique_ptr<Vault> v_;
  Caller root_;
  std::string acme_key_, beta_key_;
};

TEST_F(RetentionTest, DestroysRecordsPastRetentionOnly) {
  // Day 0.
  const std::string old_customer = Create(acme_key_, "acme", "customers", {{"email", "old@x.example"}});
  const std::string updated_customer = Create(acme_key_, "acme", "customers", {{"email", "upd@x.example"}});
  const std::string archived = Create(acme_key_, "acme", "archive", {{"sku", "A-1"}});
  const std::string visit = Create(acme_key_, "acme", "visits", {{"sku", "V-1"}});
  const std::string beta_customer = Create(beta_key_, "beta", "customers", {{"email", "beta@x.example"}});
  // Day 200: a new customer, and a second version of another.
  clock_.Advance(200 * kDay);
  const std::string new_customer = Create(acme_key_, "acme", "customers", {{"email", "new@x.example"}});
  Ok(v_->UpdateRecord(Must(*v_, acme_key_), "acme", "customers", updated_customer,
                      {{"data", {{"email", "upd2@x.example"}}}}, 1));
  const std::string new_beta = Create(beta_key_, "beta", "customers", {{"email", "beta2@x.example"}});

  // Day 200: only the visit (30 days) is past its retention.
  auto first = v_->ExpireRecords(100);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(GetCode(acme_key_, "acme", "visits", visit), StatusCode::kNotFound);

  // Day 400: the day-0 customers of both tenants are past 365 days; the
  // customer updated at day 200 and the one created then are not; the
  // archive has no retention.
  clock_.Advance(200 * kDay);
  auto destroyed = v_->ExpireRecords(100);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status().ToString();
  EXPECT_EQ(*destroyed, 2);

  EXPECT_EQ(GetCode(acme_key_, "acme", "customers", old_customer), StatusCode::kNotFound);
  EXPECT_EQ(GetCode(acme_key_, "acme", "customers", old_customer, 1), StatusCode::kNotFound);
  EXPECT_EQ(v_->ListVersions(Must(*v_, acme_key_), "acme", "customers", old_customer).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(GetCode(beta_key_, "beta", "customers", beta_customer), StatusCode::kNotFound);
  // Its blind-index entry went with it.
  auto found = Ok(v_->FindRecords(Must(*v_, acme_key_), "acme", "customers", {{"email", "old@x.example"}}, {}));
  EXPECT_TRUE(found.body["items"].empty()) << found.body.dump();

  // Kept: updated since, created since, and no retention at all — with
  // every version of the updated one.
  EXPECT_EQ(GetCode(acme_key_, "acme", "customers", updated_customer), StatusCode::kOk);
  EXPECT_EQ(GetCode(acme_key_, "acme", "customers", updated_customer, 1), StatusCode::kOk);
  EXPECT_EQ(GetCode(acme_key_, "acme", "customers", new_customer), StatusCode::kOk);
  EXPECT_EQ(GetCode(beta_key_, "beta", "customers", new_beta), StatusCode::kOk);
  EXPECT_EQ(GetCode(acme_key_, "acme", "archive", archived), StatusCode::kOk);
  auto kept = Ok(v_->FindRecords(Must(*v_, acme_key_), "acme", "customers", {{"email", "new@x.example"}}, {}));
  EXPECT_EQ(kept.body["items"].size(), 1u);

  // One entry per destroyed record: principal system, its tenant and path.
  json entries = ExpireEntries();
  ASSERT_EQ(entries.size(), 3u) << entries.dump();
  std::set<std::string> seen;
  for (const json& e : entries) {
    EXPECT_EQ(e["principal"], "system");
    EXPECT_EQ(e["outcome"], "success");
    seen.insert(e["tenant"].get<std::string>() + " " + e["resource"].get<std::string>());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"acme collections/visits/records/" + visit,
                                         "acme collections/customers/records/" + old_customer,
                                         "beta collections/customers/records/" + beta_customer}));

  // Nothing more is due.
  EXPECT_EQ(Ok(v_->ExpireRecords(100)), 0);
  EXPECT_EQ(ExpireEntries().size(), 3u);
}

TEST_F(RetentionTest, WorksInBatches) {
  for (int i = 0; i < 5; ++i) Create(acme_key_, "acme", "visits", {{"sku", "V-" + std::to_string(i)}});
  clock_.Advance(31 * kDay);
  EXPECT_EQ(Ok(v_->ExpireRecords(2)), 2);
  EXPECT_EQ(Ok(v_->ExpireRecords(2)), 2);
  EXPECT_EQ(Ok(v_->ExpireRecords(2)), 1);
  EXPECT_EQ(Ok(v_->ExpireRecords(2)), 0);
  EXPECT_EQ(ExpireEntries().size(), 5u);
  EXPECT_EQ(v_->ExpireRecords(0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RetentionTest, APassWalksPastKeptRecordsToEveryExpiredOne) {
  // 250 visits on day 0; the first 150 (by id: ids grow with time) are
  // updated on day 20 and kept on day 40, the last 100 are not. A pass lists
  // pages of 100 from where the last one ended: the kept ones fill the first
  // page and part of the second, and every expired one is still reached.
  std::vector<std::string> visits;
  for (int i = 0; i < 250; ++i)
    visits.push_back(Create(acme_key_, "acme", "visits", {{"sku", "V-" + std::to_string(i)}}));
  std::sort(visits.begin(), visits.end());
  clock_.Advance(20 * kDay);
  Caller acme = Must(*v_, acme_key_);
  for (int i = 0; i < 150; ++i)
    Ok(v_->UpdateRecord(acme, "acme", "visits", visits[i], {{"data", {{"sku", "kept"}}}}, 1));
  clock_.Advance(20 * kDay);
  EXPECT_EQ(Ok(v_->ExpireRecords(1000)), 100);
  for (int i = 0; i < 250; ++i) {
    EXPECT_EQ(GetCode(acme_key_, "acme", "visits", visits[i]), i < 150 ? StatusCode::kOk : StatusCode::kNotFound) << i;
  }
  EXPECT_EQ(Ok(v_->ExpireRecords(1000)), 0);
}

TEST_F(RetentionTest, NothingIsDestroyedWhileSealed) {
  const std::string visit = Create(acme_key_, "acme", "visits", {{"sku", "V-1"}});
  clock_.Advance(31 * kDay);
  Ok(v_->Seal(root_));
  EXPECT_EQ(v_->ExpireRecords(100).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(v_->AutoUnseal().ok());
  EXPECT_EQ(GetCode(acme_key_, "acme", "visits", visit), StatusCode::kOk);
  EXPECT_EQ(Ok(v_->ExpireRecords(100)), 1);
}

}  // namespace
}  // namespace kura::vault
