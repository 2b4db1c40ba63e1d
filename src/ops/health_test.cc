#include "ops/health.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ops/fake_vault_for_test.h"

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
  EXPECT_EQ(j["ready"], true);
  EXPECT_EQ(h.HttpStatus(), 200);
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

TEST(HealthTest, UnreachableDatabaseIsReportedButDoesNotChangeReadiness) {
  Health h;
  h.ready = true;
  StorageSnapshot snap;
  snap.engine = "postgres";
  snap.reachable = false;
  snap.error = "database: server unavailable";
  h.storage = snap;
  nlohmann::json j = h.ToJson();
  EXPECT_EQ(h.HttpStatus(), 200);
  EXPECT_EQ(j["storage"]["reachable"], false);
  EXPECT_EQ(j["storage"]["error"], "database: server unavailable");
  EXPECT_FALSE(j["storage"].contains("primary"));
}

TEST(HealthTest, NoStorageObjectWithoutRegisteredSources) {
  testing::FakeVault vault;
  EXPECT_FALSE(CheckHealth(vault).ToJson().contains("storage"));
}

}  // namespace
}  // namespace kura::ops
