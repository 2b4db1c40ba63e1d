// RetentionJob over a real vault (SQLite store, fake clock): a pass works
// through every due record in batches; the thread runs passes until Stop.
#include "ops/retention.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "vault/vault_test_util.h"

namespace kura::ops {
namespace {

using nlohmann::json;

class RetentionJobTest : public vault::testing::VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(vault::testing::SealKind::kKeyfile);
    ASSERT_NE(v_, nullptr);
    root_ = Must(*v_, InitKeyfile(*v_));
    key_ = SetUpTenant(*v_, root_, "acme");  // customers: 365 days
  }

  std::string CreateCustomer(int i) {
    return Ok(v_->CreateRecord(Must(*v_, key_), "acme", "customers",
                               {{"data", {{"email", "c" + std::to_string(i) + "@x.example"}}}}))
        .body["id"];
  }

  std::size_t CustomerCount() {
    return Ok(v_->FindRecords(Must(*v_, key_), "acme", "customers", {}, {})).body["items"].size();
  }

  std::unique_ptr<vault::Vault> v_;
  vault::Caller root_;
  std::string key_;
};

TEST_F(RetentionJobTest, OnePassDestroysEverythingDueInBatches) {
  for (int i = 0; i < 7; ++i) CreateCustomer(i);
  RetentionOptions options;
  options.batch_size = 3;
  options.pause = std::chrono::milliseconds(1);
  RetentionJob job(v_.get(), options);
  EXPECT_EQ(job.RunPass(), 0);  // nothing is due yet
  clock_.Advance(std::chrono::hours(24 * 366));
  const std::int64_t before = RetentionJob::DestroyedInProcess();
  EXPECT_EQ(job.RunPass(), 7);
  EXPECT_EQ(RetentionJob::DestroyedInProcess() - before, 7);
  EXPECT_EQ(CustomerCount(), 0u);
}

TEST_F(RetentionJobTest, SealedPassDestroysNothing) {
  CreateCustomer(1);
  clock_.Advance(std::chrono::hours(24 * 366));
  Ok(v_->Seal(root_));
  RetentionJob job(v_.get(), RetentionOptions{});
  EXPECT_EQ(job.RunPass(), 0);
  ASSERT_TRUE(v_->AutoUnseal().ok());
  EXPECT_EQ(CustomerCount(), 1u);
}

TEST_F(RetentionJobTest, ThreadRunsPassesUntilStopped) {
  for (int i = 0; i < 3; ++i) CreateCustomer(i);
  clock_.Advance(std::chrono::hours(24 * 366));
  RetentionOptions options;
  options.interval = std::chrono::milliseconds(10);
  RetentionJob job(v_.get(), options);
  job.Start();
  // Not a timing assertion: wait (generously) for the effect.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (CustomerCount() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  job.Stop();
  EXPECT_EQ(CustomerCount(), 0u);
  // Restartable, and Stop twice is harmless.
  job.Start();
  job.Stop();
  job.Stop();
}

TEST_F(RetentionJobTest, EndedSessionsAreDeletedADayAfterTheyEndWithTheirEntries) {
  // SetUp signed the admin in once; two more sessions, one of them revoked.
  auto sign_in = [&] {
    return Ok(v_->Login(vault::RequestContext{"req-test", "127.0.0.1", ""},
                        {{"username", kTenantAdmin}, {"password", kTenantAdminPassword}, {"tenant", "acme"}}))
        .body["token"]
        .get<std::string>();
  };
  const std::string kept = sign_in();
  const std::string revoked = sign_in();
  Ok(v_->Logout(Must(*v_, revoked)));
  auto purge_entries = [&] {
    return Ok(v_->SystemAuditTrail(root_, {{"action", vault::actions::kSessionPurge}}))
        .body["items"]
        .size();
  };
  RetentionOptions options;
  options.batch_size = 2;
  options.pause = std::chrono::milliseconds(1);
  RetentionJob job(v_.get(), options);
  EXPECT_EQ(job.PurgeSessions(), 0);  // the revocation is not a day old
  EXPECT_TRUE(v_->Authenticate(kept).ok());

  clock_.Advance(std::chrono::hours(25));  // the revocation is; the others expired (at 8 h) only 17 h ago
  EXPECT_EQ(job.PurgeSessions(), 1);
  EXPECT_EQ(purge_entries(), 1u);
  clock_.Advance(std::chrono::hours(8));  // now every session ended more than a day ago
  EXPECT_EQ(job.PurgeSessions(), 2);  // SetUp's and `kept`: a full batch of 2, then a call that finds none
  EXPECT_EQ(purge_entries(), 2u);
  EXPECT_EQ(job.PurgeSessions(), 0);  // nothing left, and no entry for nothing
  EXPECT_EQ(purge_entries(), 2u);
  EXPECT_FALSE(v_->Authenticate(kept).ok());

  // Sealed, nothing is deleted (the operator's "stop everything").
  sign_in();
  clock_.Advance(std::chrono::hours(33));
  Ok(v_->Seal(root_));
  EXPECT_EQ(job.PurgeSessions(), 0);
  ASSERT_TRUE(v_->AutoUnseal().ok());
  EXPECT_EQ(job.PurgeSessions(), 1);
  EXPECT_EQ(purge_entries(), 3u);
}

}  // namespace
}  // namespace kura::ops
