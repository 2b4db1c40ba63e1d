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

}  // namespace
}  // namespace kura::ops
