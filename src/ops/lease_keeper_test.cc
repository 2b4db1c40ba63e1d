#include "ops/lease_keeper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/test_dir_for_test.h"
#include "ops/fake_vault_for_test.h"
#include "ops/health.h"
#include "ops/storage_monitor.h"
#include "store/store_test_util.h"

namespace kura::ops {
namespace {

using std::chrono::milliseconds;

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = store::OpenScratchSqliteStore(dir_.Sub("kura.db"));
    ASSERT_NE(store_, nullptr);
  }

  static bool WaitFor(const std::function<bool()>& cond, milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (cond()) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return cond();
  }

  TestDir dir_;  // declared first: removed after the store closes
  std::unique_ptr<store::Store> store_;
};

TEST_F(LeaseKeeperTest, OneOfTwoNodesRunsTheJobsAndTheOtherTakesOver) {
  std::atomic<int> a_starts{0}, a_stops{0}, b_starts{0};
  LeaseKeeper a(store_.get(), "audit-background", "node-a", milliseconds(600),
                [&](bool on) { (on ? a_starts : a_stops).fetch_add(1); });
  LeaseKeeper b(store_.get(), "audit-background", "node-b", milliseconds(600),
                [&](bool on) { if (on) b_starts.fetch_add(1); });
  a.Start();
  ASSERT_TRUE(WaitFor([&] { return a.holding(); }, milliseconds(2000)));
  b.Start();
  // Several ttls: a keeps renewing, b never gets it.
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_TRUE(a.holding());
  EXPECT_FALSE(b.holding());
  EXPECT_EQ(a_starts.load(), 1);
  EXPECT_EQ(b_starts.load(), 0);
  // a stops (releasing the lease): b takes over within a renewal period.
  a.Stop();
  EXPECT_FALSE(a.holding());
  EXPECT_EQ(a_stops.load(), 1);
  // holding() turns true just before the keeper calls back: wait for both.
  ASSERT_TRUE(WaitFor([&] { return b.holding() && b_starts.load() > 0; }, milliseconds(2000)));
  EXPECT_EQ(b_starts.load(), 1);

  // Health shows the node, its lease and the store's view of it.
  StorageMonitor monitor(store_.get(), "sqlite", milliseconds(50));
  monitor.Start();
  SetHealthSources(&monitor, &b);
  testing::FakeVault vault;
  nlohmann::json h = CheckHealth(vault).ToJson();
  SetHealthSources(nullptr, nullptr);
  monitor.Stop();
  EXPECT_EQ(h["ready"], true);
  EXPECT_EQ(h["storage"]["engine"], "sqlite");
  EXPECT_EQ(h["storage"]["reachable"], true);
  EXPECT_EQ(h["storage"]["primary"], true);
  EXPECT_FALSE(h["storage"].contains("replication"));
  EXPECT_EQ(h["storage"]["node"]["id"], "node-b");
  EXPECT_EQ(h["storage"]["node"]["holds_lease"], true);
  EXPECT_EQ(h["storage"]["node"]["lease"], "audit-background");
  ASSERT_EQ(h["storage"]["leases"].size(), 1u) << h.dump();
  EXPECT_EQ(h["storage"]["leases"][0]["holder"], "node-b");
}

TEST_F(LeaseKeeperTest, HolderThatStopsRenewingIsReplacedAfterTheTtl) {
  // A node that died without releasing: its row stays until the ttl passes.
  ASSERT_TRUE(*store_->HoldLease("audit-background", "dead-node", milliseconds(800)));
  LeaseKeeper b(store_.get(), "audit-background", "node-b", milliseconds(300), nullptr);
  const auto start = std::chrono::steady_clock::now();
  b.Start();
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_FALSE(b.holding());
  ASSERT_TRUE(WaitFor([&] { return b.holding(); }, milliseconds(2000)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(700));
}

TEST(LeaseKeeperTtlTest, ThreeCheckpointIntervalsWithinBounds) {
  EXPECT_EQ(LeaseKeeper::TtlFor(milliseconds(1000)), milliseconds(3000));
  EXPECT_EQ(LeaseKeeper::TtlFor(milliseconds(5000)), milliseconds(15000));
  EXPECT_EQ(LeaseKeeper::TtlFor(std::chrono::seconds(60)), milliseconds(30000));
  const std::string id = LeaseKeeper::DefaultNodeId("tokyo-1", "/var/lib/kura");
  EXPECT_EQ(id.rfind("tokyo-1/", 0), 0u) << id;
  EXPECT_EQ(id, LeaseKeeper::DefaultNodeId("tokyo-1", "/var/lib/kura"));  // stable across restarts
  EXPECT_NE(id, LeaseKeeper::DefaultNodeId("tokyo-1", "/var/lib/kura-2"));
  EXPECT_NE(id, LeaseKeeper::DefaultNodeId("osaka-1", "/var/lib/kura"));
}

}  // namespace
}  // namespace kura::ops
