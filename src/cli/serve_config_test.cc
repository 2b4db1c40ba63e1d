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
  EXPECT_THAT(postgres.status().message(), StartsWith("storage.dsn: required"));
}

// --dev --config pg.toml: dev mode on PostgreSQL. The file picks the engine;
// dev TLS, the key file and dev.env stay in the data directory.
TEST_F(ServeConfigTest, DevOnPostgres) {
  std::string file = Write(
      "[storage]\nengine = \"postgres\"\ndsn = \"host=localhost dbname=kura user=kura\"\npool_size = 3\n"
      "statement_timeout = \"2s\"\n");
  auto plan = BuildServePlan({.dev = true, .config_file = file, .data_dir = (dir_ / "data").string()});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->config.storage.engine, "postgres");
  EXPECT_EQ(plan->config.storage.dsn, "host=localhost dbname=kura user=kura");
  EXPECT_EQ(plan->config.storage.pool_size, 3);
  EXPECT_EQ(plan->config.storage.statement_timeout, std::chrono::seconds(2));
  EXPECT_TRUE(plan->dev_tls);
  EXPECT_EQ(plan->key_file, (dir_ / "data/kek.key").string());
  EXPECT_EQ(plan->dev_env, (dir_ / "data/dev.env").string());
  EXPECT_EQ(plan->config.listener.tls_cert, (dir_ / "data/tls/server-chain.pem").string());
}

TEST_F(ServeConfigTest, PasswordFileMustBePrivate) {
  const std::string pw = (dir_ / "pg-password").string();
  std::ofstream(pw) << "s3cret\n";
  std::filesystem::permissions(pw, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                       std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  std::string file =
      Write("[storage]\nengine = \"postgres\"\ndsn = \"host=localhost user=kura\"\npassword_file = \"" + pw + "\"\n");
  auto plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), StartsWith("storage.password_file: " + pw + " is readable"));
  EXPECT_THAT(plan.status().message(), HasSubstr("chmod 600"));
  EXPECT_THAT(plan.status().message(), ::testing::Not(HasSubstr("s3cret")));

  std::filesystem::permissions(pw, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->config.storage.password_file, pw);

  auto missing = BuildServePlan({.dev = true,
                                 .config_file = Write("[storage]\nengine = \"postgres\"\ndsn = \"host=h\"\n"
                                                      "password_file = \"" +
                                                      (dir_ / "none").string() + "\"\n")});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), StartsWith("storage.password_file: cannot read"));

  // With a password file, the DSN must not carry one too.
  auto both = BuildServePlan({.dev = true,
                              .config_file = Write("[storage]\nengine = \"postgres\"\n"
                                                   "dsn = \"host=h password=inline\"\npassword_file = \"" +
                                                   pw + "\"\n")});
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), StartsWith("storage.dsn: holds a password"));
  EXPECT_THAT(both.status().message(), ::testing::Not(HasSubstr("inline")));
}

TEST_F(ServeConfigTest, GssKeytabMustExistAndBePrivate) {
  namespace fs = std::filesystem;
  const std::string keytab = (dir_ / "kura.keytab").string();
  // Not a real keytab: kura only checks the file; libpq's krb5 reads it.
  std::ofstream(keytab) << "\x05\x02not-a-secret";
  auto config = [&](const std::string& path) {
    return Write("[storage]\n"                                          // 1
                 "engine = \"postgres\"\n"                              // 2
                 "dsn = \"host=localhost dbname=kura user=kura\"\n"     // 3
                 "gss_keytab = \"" + path + "\"\n");                    // 4
  };
  const std::string file = config(keytab);

  fs::permissions(keytab, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  auto plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(plan.status().message(), file + ":4: storage.gss_keytab: " + keytab +
                                         " is readable or writable by group or others; chmod 600 it");
  fs::permissions(keytab, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("is readable or writable by group or others"));

  fs::permissions(keytab, fs::perms::owner_read);
  plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->config.storage.gss_keytab, keytab);
  EXPECT_EQ(plan->config.storage.gss_keytab_origin, file + ":4");

  // A relative path is made absolute (libpq reads the keytab long after start).
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  plan = BuildServePlan({.dev = true, .config_file = config("./sub/../kura.keytab")});
  fs::current_path(cwd);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->config.storage.gss_keytab, keytab);

  const std::string missing = (dir_ / "none.keytab").string();
  plan = BuildServePlan({.dev = true, .config_file = config(missing)});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(),
              StartsWith(file + ":4: storage.gss_keytab: cannot read " + missing + ": No such file"));

  plan = BuildServePlan({.dev = true, .config_file = config(dir_.string())});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), file + ":4: storage.gss_keytab: " + dir_.string() + " is not a regular file");

  // A keytab with the SQLite engine is a configuration mistake, not ignored.
  plan = BuildServePlan({.dev = true, .config_file = Write("[storage]\ngss_keytab = \"" + keytab + "\"\n")});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), file + ":2: storage.gss_keytab: only with storage.engine = \"postgres\"");
}

TEST_F(ServeConfigTest, ReplicaInAnotherRegionRefused) {
  std::string file = Write(
      "region = \"jp\"\nsite = \"tokyo-1\"\n[storage]\nengine = \"postgres\"\ndsn = \"host=db1,db2 user=kura\"\n"
      "[storage.primary]\nsite = \"tokyo-1\"\nregion = \"jp\"\n"
      "[storage.replica]\nsite = \"mumbai-1\"\nregion = \"in\"\n");
  auto plan = BuildServePlan({.dev = true, .config_file = file});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), StartsWith(file +
                                                  ":11: storage.replica.region: site \"mumbai-1\" is in "
                                                  "region \"in\", outside this deployment's region \"jp\" "
                                                  "(set at " +
                                                  file + ":1)"));

  // The same sites in the same region start.
  std::string ok = Write(
      "region = \"jp\"\n[storage]\nengine = \"postgres\"\ndsn = \"host=db1,db2 user=kura\"\n"
      "[storage.primary]\nsite = \"tokyo-1\"\nregion = \"jp\"\n"
      "[storage.replica]\nsite = \"osaka-1\"\nregion = \"jp\"\n");
  auto good = BuildServePlan({.dev = true, .config_file = ok});
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_TRUE(good->config.storage.replica.has_value());
  EXPECT_EQ(good->config.storage.replica->site, "osaka-1");
}

}  // namespace
}  // namespace kura::cli
