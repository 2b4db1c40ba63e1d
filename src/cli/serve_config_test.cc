#include "cli/serve_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace kura::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ServeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kura_serve_config_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    std::string path = (dir_ / "kura.toml").string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ServeConfigTest, NeedsDevOrConfig) {
  auto plan = BuildServePlan({});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("needs --config FILE"));
}

TEST_F(ServeConfigTest, DevDefaults) {
  auto plan = BuildServePlan({.dev = true});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto expected = (std::filesystem::current_path() / "kura-data").lexically_normal().string();
  EXPECT_TRUE(plan->dev);
  EXPECT_TRUE(plan->dev_tls);
  EXPECT_EQ(plan->data_dir, expected);
  EXPECT_EQ(plan->config.storage.path, expected);
  EXPECT_EQ(plan->config.listener.address, "127.0.0.1:8443");
  EXPECT_EQ(plan->db_path, expected + "/kura.db");
  EXPECT_EQ(plan->key_file, expected + "/kek.key");
  EXPECT_EQ(plan->config.seal.key_file, expected + "/kek.key");
  EXPECT_EQ(plan->dev_env, expected + "/dev.env");
  EXPECT_EQ(plan->config.listener.tls_cert, expected + "/tls/server-chain.pem");
  EXPECT_EQ(plan->config.listener.tls_key, expected + "/tls/server.key");
  EXPECT_EQ(plan->config.seal.type, "keyfile");
}

TEST_F(ServeConfigTest, DevFlagsOverrideDefaults) {
  auto plan = BuildServePlan({.dev = true, .data_dir = (dir_ / "data/").string(), .listen = "127.0.0.1:0"});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->data_dir, (dir_ / "data").string());
  EXPECT_EQ(plan->config.listener.address, "127.0.0.1:0");
  EXPECT_EQ(plan->config.listener.tls_cert, (dir_ / "data/tls/server-chain.pem").string());
}

TEST_F(ServeConfigTest, FileOverridesDevDefaultsAndFlagsOverrideFile) {
  std::string file = Write(
      "region = \"eu\"\n[listener]\naddress = \"127.0.0.1:9000\"\n[storage]\npath = \"" + (dir_ / "from-file").string() +
      "\"\n[records]\nkeep_versions = 3\n");
  auto plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->config.region, "eu");
  EXPECT_EQ(plan->config.listener.address, "127.0.0.1:9000");
  EXPECT_EQ(plan->data_dir, (dir_ / "from-file").string());
  EXPECT_EQ(plan->config.records.keep_versions, 3);
  EXPECT_TRUE(plan->dev_tls);

  plan = BuildServePlan({.dev = true, .config_file = file, .data_dir = (dir_ / "flag").string(), .listen = "127.0.0.1:1"});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->data_dir, (dir_ / "flag").string());
  EXPECT_EQ(plan->config.listener.address, "127.0.0.1:1");
  EXPECT_EQ(plan->config.region, "eu");
}

TEST_F(ServeConfigTest, DevWithOwnTlsFilesSkipsDevTls) {
  std::string file = Write("[listener]\ntls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\n");
  auto plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->dev_tls);
  EXPECT_EQ(plan->config.listener.tls_cert, "/etc/c.pem");
}

TEST_F(ServeConfigTest, ProductionNeedsTls) {
  auto plan = BuildServePlan({.config_file = Write("[storage]\npath = \"/var/lib/kura\"\n")});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), StartsWith("listener.tls_cert: required"));

  plan = BuildServePlan({.config_file = Write("[listener]\ntls_cert = \"/c\"\ntls_key = \"/k\"\n[seal]\ntype = \"shamir\"\n"),
                         .data_dir = (dir_ / "d").string()});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_FALSE(plan->dev);
  EXPECT_FALSE(plan->dev_tls);
  EXPECT_EQ(plan->config.seal.type, "shamir");
  EXPECT_EQ(plan->key_file, (dir_ / "d/kek.key").string());
}

TEST_F(ServeConfigTest, ExplicitKeyFileKept) {
  auto plan = BuildServePlan({.dev = true, .config_file = Write("[seal]\nkey_file = \"/secure/kek.key\"\n")});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->key_file, "/secure/kek.key");
}

TEST_F(ServeConfigTest, PlainHttpOnlyWithDevOnLoopback) {
  std::string file = Write("[listener]\nplain_http = true\n");
  auto dev = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_FALSE(dev->dev_tls);

  auto prod = BuildServePlan({.config_file = file});
  ASSERT_FALSE(prod.ok());
  EXPECT_THAT(prod.status().message(), HasSubstr("only allowed with --dev"));

  auto exposed = BuildServePlan({.dev = true, .config_file = file, .listen = "0.0.0.0:8080"});
  ASSERT_FALSE(exposed.ok());
  EXPECT_THAT(exposed.status().message(), HasSubstr("loopback"));
}

TEST_F(ServeConfigTest, BadFileAndFlagsAreReported) {
  std::string file = Write("[listener]\naddress = \"127.0.0.1:1\"\nbogus = 1\n");
  auto plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), file + ":3: listener.bogus: unknown key");

  auto missing = BuildServePlan({.dev = true, .config_file = (dir_ / "none.toml").string()});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  auto listen = BuildServePlan({.dev = true, .listen = "not-an-address"});
  ASSERT_FALSE(listen.ok());
  EXPECT_THAT(listen.status().message(), StartsWith("listener.address:"));

  auto postgres = BuildServePlan({.dev = true, .config_file = Write("[storage]\nengine = \"postgres\"\n")});
  ASSERT_FALSE(postgres.ok());
  EXPECT_THAT(postgres.status().message(), HasSubstr("not supported yet"));
}

}  // namespace
}  // namespace kura::cli
