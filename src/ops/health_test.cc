#include "ops/health.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/test_dir_for_test.h"
#include "ops/fake_vault_for_test.h"
#include "store/sqlite_store.h"
#include "store/store_test_util.h"

namespace kura::ops {
namespace {

TEST(HealthTest, ReadyWhenInitialisedAndUnsealed) {
  testing::FakeVault vault;
  Health h = CheckHealth(vault);
  EXPECT_TRUE(h.live);
  EXPECT_TRUE(h.ready);
  EXPECT_FALSE(h.sealed);
  EXPECT_TRUE(h.initialized);
  EXPECT_EQ(h.HttpStatus(), 200);
  EXPECT_EQ(h.ToJson(), nlohmann::json::parse(R"({"live":true,"ready":true,"sealed":false,"initialized":true})"));
}

TEST(HealthTest, SealedIsLiveButNotReady) {
  testing::FakeVault vault;
  vault.sealed = true;
  Health h = CheckHealth(vault);
  EXPECT_TRUE(h.live);
  EXPECT_FALSE(h.ready);
  EXPECT_TRUE(h.sealed);
  EXPECT_EQ(h.HttpStatus(), 503);
  EXPECT_EQ(h.ToJson()["sealed"], true);
}

TEST(HealthTest, UninitialisedIsNotReady) {
  testing::FakeVault vault;
  vault.initialized = false;
  vault.sealed = true;
  Health h = CheckHealth(vault);
  EXPECT_FALSE(h.ready);
  EXPECT_FALSE(h.initialized);
  EXPECT_EQ(h.HttpStatus(), 503);
}

TEST(HealthTest, DrainingIsNotReady) {
  testing::FakeVault vault;
  Health h = CheckHealth(vault, /*draining=*/true);
  EXPECT_TRUE(h.live);
  EXPECT_FALSE(h.ready);
  EXPECT_FALSE(h.sealed);
  EXPECT_EQ(h.HttpStatus(), 503);
}

TEST(HealthTest, StorageObjectShowsReplication) {
  Health h;
  h.ready = true;
  h.sealed = false;
  h.initialized = true;
  StorageSnapshot snap;
  snap.engine = "postgres";
  snap.reachable = true;
  snap.checked_at_ms = 5;
  snap.last_ok_at_ms = 5;
  store::StorageStatus st;
  st.engine = "postgres";
  st.primary = true;
  st.synchronous_standby_names = "FIRST 1 (standby1)";
  st.standbys.push_back({"standby1", "streaming", "sync", 3});
  st.standbys.push_back({"standby2", "streaming", "async", std::nullopt});
  snap.status = st;
  h.storage = snap;
  h.node = NodeHealth{"tokyo-1/vm/1", "audit-background", true, 4};
  nlohmann::json j = h.ToJson();
  const nlohmann::json& s = j["storage"];
  EXPECT_EQ(s["engine"], "postgres");
  EXPECT_EQ(s["primary"], true);
  EXPECT_EQ(s["replication"]["synchronous_standby_names"], "FIRST 1 (standby1)");
  ASSERT_EQ(s["replication"]["standbys"].size(), 2u);
  EXPECT_EQ(s["replication"]["standbys"][0],
            nlohmann::json::parse(
                R"({"application_name":"standby1","state":"streaming","sync_state":"sync","replay_lag_ms":3})"));
  EXPECT_TRUE(s["replication"]["standbys"][1]["replay_lag_ms"].is_null());
  EXPECT_EQ(s["node"]["holds_lease"], true);
  EXPECT_EQ(s["node"]["checkpoint_runs"], 4);
}

// The monitor's poll fails (here the store's leases table is gone, so its
// status query errors as it would on a lost database): health says so, and
// readiness is still the vault's alone.
TEST(HealthTest, UnreachableDatabaseIsReportedButDoesNotChangeReadiness) {
  TestDir dir;
  std::unique_ptr<store::Store> db = store::OpenScratchSqliteStore(dir.Sub("kura.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(store::ExecOnWriterForTest(*db, "DROP TABLE leases").ok());
  StorageMonitor monitor(db.get(), "sqlite", std::chrono::seconds(2));
  monitor.PollOnce();

  SetHealthSources(&monitor, nullptr);
  testing::FakeVault vault;
  Health h = CheckHealth(vault);
  SetHealthSources(nullptr, nullptr);
  EXPECT_TRUE(h.ready);
  EXPECT_EQ(h.HttpStatus(), 200);
  ASSERT_TRUE(h.storage.has_value());
  EXPECT_FALSE(h.storage->reachable);
  EXPECT_FALSE(h.storage->error.empty());
  nlohmann::json j = h.ToJson();
  EXPECT_EQ(j["storage"]["reachable"], false);
  EXPECT_EQ(j["storage"]["error"], h.storage->error);
  EXPECT_FALSE(j["storage"].contains("primary"));
}

TEST(HealthTest, NoStorageObjectWithoutRegisteredSources) {
  testing::FakeVault vault;
  EXPECT_FALSE(CheckHealth(vault).ToJson().contains("storage"));
}

}  // namespace
}  // namespace kura::ops
