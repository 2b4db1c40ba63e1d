#include "core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace kura {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kura_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "kura.toml").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& text) {
    std::ofstream(path_, std::ios::trunc) << text;
    return path_;
  }

  // Loads `text` into a default Config and returns the status.
  Status Load(const std::string& text, Config* out = nullptr) {
    Config c;
    Status s = LoadConfigFile(Write(text), &c);
    if (out) *out = c;
    return s;
  }

  std::filesystem::path dir_;
  std::string path_;  // fixed per test, so expectations can name it before Load() runs
};

// A TLS-ready config that ValidateConfig accepts, for cross-field tests.
Config ValidConfig() {
  Config c;
  c.listener.tls_cert = "/etc/kura/tls/server-chain.pem";
  c.listener.tls_key = "/etc/kura/tls/server.key";
  return c;
}

TEST_F(ConfigFileTest, ReadsEveryKey) {
  Config c;
  ASSERT_TRUE(Load(R"(
region = "eu"
site = "nl-ams"

[listener]
address = "0.0.0.0:9443"
tls_cert = "/etc/kura/tls/server-chain.pem"
tls_key = "/etc/kura/tls/server.key"
tls_profile = "compatibility"
plain_http = false
max_body_bytes = 2097152
max_header_bytes = 8192
read_timeout = "10s"
write_timeout = "2m"
idle_timeout = "1h30m"
drain_timeout = "0s"
threads = 4
max_connections = 500
hsts_max_age = 3600

[storage]
engine = "sqlite"
path = "/var/lib/kura"
dsn = "host=db1 dbname=kura"

[seal]
type = "shamir"
key_file = "/etc/kura/kek.key"

[records]
keep_versions = 3
max_page_size = 25
retention_interval = "10m"

[audit]
checkpoint_interval = "5m"

[log]
level = "debug"
access_log = "/var/log/kura/access.log"
)", &c).ok());
  EXPECT_EQ(c.region, "eu");
  EXPECT_EQ(c.site, "nl-ams");
  EXPECT_EQ(c.listener.address, "0.0.0.0:9443");
  EXPECT_EQ(c.listener.tls_cert, "/etc/kura/tls/server-chain.pem");
  EXPECT_EQ(c.listener.tls_key, "/etc/kura/tls/server.key");
  EXPECT_EQ(c.listener.tls_profile, "compatibility");
  EXPECT_FALSE(c.listener.plain_http);
  EXPECT_EQ(c.listener.max_body_bytes, 2097152u);
  EXPECT_EQ(c.listener.max_header_bytes, 8192u);
  EXPECT_EQ(c.listener.read_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.listener.write_timeout, std::chrono::seconds(120));
  EXPECT_EQ(c.listener.idle_timeout, std::chrono::seconds(5400));
  EXPECT_EQ(c.listener.drain_timeout, std::chrono::seconds(0));
  EXPECT_EQ(c.listener.threads, 4);
  EXPECT_EQ(c.listener.max_connections, 500);
  EXPECT_EQ(c.listener.hsts_max_age, 3600u);
  EXPECT_EQ(c.storage.engine, "sqlite");
  EXPECT_EQ(c.storage.path, "/var/lib/kura");
  EXPECT_EQ(c.storage.dsn, "host=db1 dbname=kura");
  EXPECT_EQ(c.seal.type, "shamir");
  EXPECT_EQ(c.seal.key_file, "/etc/kura/kek.key");
  EXPECT_EQ(c.records.keep_versions, 3);
  EXPECT_EQ(c.records.max_page_size, 25);
  EXPECT_EQ(c.records.retention_interval, std::chrono::seconds(600));
  EXPECT_EQ(c.audit.checkpoint_interval, std::chrono::seconds(300));
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.access_log, "/var/log/kura/access.log");
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
}

TEST_F(ConfigFileTest, SpecAppendixBSkeletonLoads) {
  Config c;
  Status s = Load(R"(region = "jp"                      # jp | us | eu | in
site = "tokyo-1"

[listener]
address = "127.0.0.1:8443"
tls_cert = "/etc/kura/tls/server-chain.pem"   # leaf + intermediate
tls_key = "/etc/kura/tls/server.key"

[storage]
engine = "sqlite"                  # sqlite | postgres
path = "/var/lib/kura"             # sqlite
# dsn = "host=db1,db2 dbname=kura user=kura sslmode=verify-full target_session_attrs=read-write"

[seal]
type = "shamir"                    # keyfile | shamir | passphrase | pkcs11

[audit]
checkpoint_interval = "60s"
)", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.site, "tokyo-1");
  EXPECT_EQ(c.seal.type, "shamir");
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST_F(ConfigFileTest, EmptyFileKeepsDefaults) {
  Config c;
  ASSERT_TRUE(Load("# nothing here\n", &c).ok());
  Config d;
  EXPECT_EQ(c.region, d.region);
  EXPECT_EQ(c.listener.address, d.listener.address);
  EXPECT_EQ(c.listener.max_body_bytes, d.listener.max_body_bytes);
  EXPECT_EQ(c.storage.path, d.storage.path);
  EXPECT_EQ(c.seal.type, d.seal.type);
  EXPECT_EQ(c.audit.checkpoint_interval, d.audit.checkpoint_interval);
}

TEST_F(ConfigFileTest, OnlyKeysPresentOverride) {
  // Pretend these are the --dev defaults; the file changes one key of a table.
  Config c;
  c.storage.path = "/tmp/dev-data";
  c.listener.address = "127.0.0.1:0";
  c.listener.tls_cert = "/tmp/dev-data/tls/server-chain.pem";
  c.listener.plain_http = true;
  c.records.keep_versions = 7;
  std::string path = Write("[listener]\nplain_http = false\n\n[records]\nmax_page_size = 9\n");
  ASSERT_TRUE(LoadConfigFile(path, &c).ok());
  EXPECT_FALSE(c.listener.plain_http);
  EXPECT_EQ(c.records.max_page_size, 9);
  // Untouched by the file:
  EXPECT_EQ(c.storage.path, "/tmp/dev-data");
  EXPECT_EQ(c.listener.address, "127.0.0.1:0");
  EXPECT_EQ(c.listener.tls_cert, "/tmp/dev-data/tls/server-chain.pem");
  EXPECT_EQ(c.records.keep_versions, 7);
}

TEST_F(ConfigFileTest, DottedKeysWork) {
  Config c;
  ASSERT_TRUE(Load("listener.address = \"[::1]:0\"\nlog.level = \"warn\"\n", &c).ok());
  EXPECT_EQ(c.listener.address, "[::1]:0");
  EXPECT_EQ(c.log.level, "warn");
}

TEST_F(ConfigFileTest, FailedLoadLeavesConfigUntouched) {
  Config c;
  c.region = "us";
  std::string path = Write("region = \"eu\"\n[listener]\nthreads = \"many\"\n");
  Status s = LoadConfigFile(path, &c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(c.region, "us");
}

TEST_F(ConfigFileTest, MissingFileIsNotFound) {
  Config c;
  Status s = LoadConfigFile((dir_ / "absent.toml").string(), &c);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("absent.toml"));
}

TEST_F(ConfigFileTest, SyntaxErrorNamesLine) {
  Status s = Load("region = \"jp\"\n\n[listener\naddress = \"x\"\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith(path_ + ":3: "));
}

TEST_F(ConfigFileTest, DuplicateKeyIsSyntaxError) {
  Status s = Load("site = \"a\"\nsite = \"b\"\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith(path_ + ":2: "));
}

TEST_F(ConfigFileTest, UnknownTopLevelKey) {
  Status s = Load("region = \"jp\"\n\nregoin = \"jp\"\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), path_ + ":3: regoin: unknown key");
}

TEST_F(ConfigFileTest, UnknownNestedKey) {
  Status s = Load("[listener]\naddress = \"127.0.0.1:1\"\n\n\ntls_crt = \"x\"\n");
  EXPECT_EQ(s.message(), path_ + ":5: listener.tls_crt: unknown key");
}

TEST_F(ConfigFileTest, UnknownTable) {
  Status s = Load("site = \"x\"\n[lisener]\naddress = \"127.0.0.1:1\"\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith(path_ + ":2: lisener: unknown key"));
}

TEST_F(ConfigFileTest, SectionMustBeTable) {
  Status s = Load("\nlistener = 5\n");
  EXPECT_EQ(s.message(), path_ + ":2: listener: expected a table, got an integer");
}

TEST_F(ConfigFileTest, WrongTypes) {
  EXPECT_EQ(Load("[listener]\nthreads = \"4\"\n").message(),
            path_ + ":2: listener.threads: expected an integer, got a string");
  EXPECT_EQ(Load("[listener]\n\nplain_http = \"yes\"\n").message(),
            path_ + ":3: listener.plain_http: expected a boolean, got a string");
  EXPECT_EQ(Load("site = 12\n").message(), path_ + ":1: site: expected a string, got an integer");
  EXPECT_THAT(Load("[audit]\ncheckpoint_interval = 60\n").message(),
              StartsWith(path_ + ":2: audit.checkpoint_interval: expected a duration string"));
  EXPECT_EQ(Load("[records]\nkeep_versions = 2.5\n").message(),
            path_ + ":2: records.keep_versions: expected an integer, got a float");
  EXPECT_EQ(Load("[storage]\npath = [\"a\"]\n").message(),
            path_ + ":2: storage.path: expected a string, got an array");
}

TEST_F(ConfigFileTest, InvalidValues) {
  EXPECT_THAT(Load("region = \"mars\"\n").message(), StartsWith(path_ + ":1: region: \"mars\" is not a known region"));
  EXPECT_THAT(Load("[listener]\naddress = \"localhost\"\n").message(),
              StartsWith(path_ + ":2: listener.address: \"localhost\" is not HOST:PORT"));
  EXPECT_THAT(Load("[listener]\naddress = \"127.0.0.1:70000\"\n").message(),
              StartsWith(path_ + ":2: listener.address:"));
  EXPECT_THAT(Load("[listener]\naddress = \"::1:80\"\n").message(), StartsWith(path_ + ":2: listener.address:"));
  EXPECT_THAT(Load("[listener]\ntls_profile = \"legacy\"\n").message(),
              StartsWith(path_ + ":2: listener.tls_profile: \"legacy\" is not one of modern | compatibility"));
  EXPECT_THAT(Load("[listener]\nmax_connections = 0\n").message(),
              StartsWith(path_ + ":2: listener.max_connections: 0 is out of range"));
  EXPECT_THAT(Load("[listener]\nmax_header_bytes = -1\n").message(),
              StartsWith(path_ + ":2: listener.max_header_bytes: -1 is out of range"));
  EXPECT_THAT(Load("[records]\nkeep_versions = 0\n").message(),
              StartsWith(path_ + ":2: records.keep_versions: 0 is out of range"));
  EXPECT_THAT(Load("[storage]\nengine = \"mysql\"\n").message(),
              StartsWith(path_ + ":2: storage.engine: \"mysql\" is not one of sqlite | postgres"));
  EXPECT_THAT(Load("[storage]\npath = \"\"\n").message(), StartsWith(path_ + ":2: storage.path: must not be empty"));
  EXPECT_THAT(Load("[seal]\ntype = \"pkcs11\"\n").message(),
              StartsWith(path_ + ":1: seal.module: required for type = \"pkcs11\""));
  EXPECT_THAT(Load("[seal]\ntype = \"magic\"\n").message(), StartsWith(path_ + ":2: seal.type: \"magic\" is not one of"));
  EXPECT_THAT(Load("[log]\nlevel = \"loud\"\n").message(), StartsWith(path_ + ":2: log.level: \"loud\" is not one of"));
}

TEST_F(ConfigFileTest, Durations) {
  Config c;
  ASSERT_TRUE(Load("[listener]\nread_timeout = \"1d\"\nwrite_timeout = \"90s\"\nidle_timeout = \"2h\"\n", &c).ok());
  EXPECT_EQ(c.listener.read_timeout, std::chrono::seconds(86400));
  EXPECT_EQ(c.listener.write_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.listener.idle_timeout, std::chrono::seconds(7200));
  for (const char* bad : {"60", "s", "", "5x", "-5s", "1.5h", "5 m", "99999999999h"}) {
    Status s = Load(std::string("[listener]\nread_timeout = \"") + bad + "\"\n");
    EXPECT_THAT(s.message(), StartsWith(path_ + ":2: listener.read_timeout: ")) << bad;
  }
  EXPECT_THAT(Load("[listener]\nread_timeout = \"0s\"\n").message(),
              StartsWith(path_ + ":2: listener.read_timeout: must be greater than zero"));
}

TEST_F(ConfigFileTest, ReadsPostgresKeys) {
  Config c = ValidConfig();
  Status s = Load(R"(region = "jp"
site = "tokyo-1"

[storage]
engine = "postgres"
dsn = "host=db1,db2 dbname=kura user=kura target_session_attrs=read-write"
password_file = "/etc/kura/pg-password"
pool_size = 16
connect_timeout = "3s"
statement_timeout = "2s"

[storage.primary]
site = "tokyo-1"
region = "jp"

[storage.replica]
site = "osaka-1"
region = "jp"
)",
                  &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.storage.engine, "postgres");
  EXPECT_EQ(c.storage.dsn, "host=db1,db2 dbname=kura user=kura target_session_attrs=read-write");
  EXPECT_EQ(c.storage.password_file, "/etc/kura/pg-password");
  EXPECT_EQ(c.storage.pool_size, 16);
  EXPECT_EQ(c.storage.connect_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.storage.statement_timeout, std::chrono::seconds(2));
  ASSERT_TRUE(c.storage.primary.has_value());
  EXPECT_EQ(c.storage.primary->site, "tokyo-1");
  EXPECT_EQ(c.storage.primary->region, "jp");
  EXPECT_EQ(c.storage.primary->origin, path_ + ":14");
  ASSERT_TRUE(c.storage.replica.has_value());
  EXPECT_EQ(c.storage.replica->site, "osaka-1");
  EXPECT_EQ(c.storage.replica->region, "jp");
  EXPECT_EQ(c.storage.replica->origin, path_ + ":18");
  EXPECT_EQ(c.region_origin, path_ + ":1");
  // The DSN holds no password, so password_file is allowed beside it.
  c.listener.tls_cert = "/c";
  c.listener.tls_key = "/k";
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
}

TEST_F(ConfigFileTest, PostgresDefaults) {
  Config c;
  ASSERT_TRUE(Load("[storage]\nengine = \"postgres\"\ndsn = \"host=db1\"\n", &c).ok());
  EXPECT_EQ(c.storage.pool_size, 8);
  EXPECT_EQ(c.storage.connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.storage.statement_timeout, std::chrono::seconds(5));
  EXPECT_TRUE(c.storage.password_file.empty());
  EXPECT_FALSE(c.storage.primary.has_value());
  EXPECT_FALSE(c.storage.replica.has_value());
  EXPECT_TRUE(c.region_origin.empty());
}

TEST_F(ConfigFileTest, RecordCacheSize) {
  Config c;
  ASSERT_TRUE(Load("[storage]\npath = \"/d\"\n", &c).ok());
  EXPECT_EQ(c.storage.record_cache_mib, 64);
  ASSERT_TRUE(Load("[storage]\nrecord_cache_mib = 0\n", &c).ok());
  EXPECT_EQ(c.storage.record_cache_mib, 0);
  ASSERT_TRUE(Load("[storage]\nrecord_cache_mib = 512\n", &c).ok());
  EXPECT_EQ(c.storage.record_cache_mib, 512);
  EXPECT_EQ(Load("[storage]\nrecord_cache_mib = -1\n").message(),
            path_ + ":2: storage.record_cache_mib: -1 is out of range [0, 65536]");
  EXPECT_EQ(Load("[storage]\nrecord_cache_mib = \"64M\"\n").message(),
            path_ + ":2: storage.record_cache_mib: expected an integer, got a string");
}

TEST_F(ConfigFileTest, BadPostgresKeys) {
  EXPECT_EQ(Load("[storage]\npool_size = 0\n").message(), path_ + ":2: storage.pool_size: 0 is out of range [1, 1000]");
  EXPECT_EQ(Load("[storage]\npool_size = \"8\"\n").message(),
            path_ + ":2: storage.pool_size: expected an integer, got a string");
  EXPECT_THAT(Load("[storage]\nconnect_timeout = 5\n").message(),
              StartsWith(path_ + ":2: storage.connect_timeout: expected a duration string"));
  EXPECT_THAT(Load("[storage]\nstatement_timeout = \"0s\"\n").message(),
              StartsWith(path_ + ":2: storage.statement_timeout: must be greater than zero"));
  EXPECT_THAT(Load("[storage]\nstatement_timeout = \"2d\"\n").message(),
              StartsWith(path_ + ":2: storage.statement_timeout: \"2d\" is longer than the maximum"));
  EXPECT_EQ(Load("[storage]\npassword_file = 5\n").message(),
            path_ + ":2: storage.password_file: expected a string, got an integer");
  EXPECT_EQ(Load("[storage]\ndsn = \"x\"\npasword_file = \"/p\"\n").message(),
            path_ + ":3: storage.pasword_file: unknown key");
}

TEST_F(ConfigFileTest, BadSiteTables) {
  EXPECT_EQ(Load("[storage.replica]\nsite = \"osaka-1\"\nregion = \"jp\"\nzone = \"a\"\n").message(),
            path_ + ":4: storage.replica.zone: unknown key");
  EXPECT_EQ(Load("[storage.mirror]\nsite = \"osaka-1\"\n").message(), path_ + ":1: storage.mirror: unknown key");
  EXPECT_THAT(Load("[storage.replica]\nsite = \"osaka-1\"\nregion = \"mars\"\n").message(),
              StartsWith(path_ + ":3: storage.replica.region: \"mars\" is not a known region"));
  EXPECT_THAT(Load("\n[storage.replica]\nsite = \"osaka-1\"\n").message(),
              StartsWith(path_ + ":2: storage.replica.region: required"));
  EXPECT_THAT(Load("[storage.primary]\nregion = \"jp\"\n").message(),
              StartsWith(path_ + ":1: storage.primary.site: required"));
  EXPECT_EQ(Load("[storage.primary]\nsite = \"\"\nregion = \"jp\"\n").message(),
            path_ + ":2: storage.primary.site: must not be empty");
  EXPECT_EQ(Load("[storage]\nreplica = \"osaka-1\"\n").message(),
            path_ + ":2: storage.replica: expected a table, got a string");
}

// A replica (or primary) outside the deployment's region: refused, naming
// both regions and where each was set.
TEST_F(ConfigFileTest, ReplicaOutsideRegionRefused) {
  Config c = ValidConfig();
  ASSERT_TRUE(Load(R"(region = "jp"
site = "tokyo-1"

[storage]
engine = "postgres"
dsn = "host=db1,db2 dbname=kura user=kura"

[storage.primary]
site = "tokyo-1"
region = "jp"

[storage.replica]
site = "frankfurt-1"
region = "eu"
)",
                   &c)
                  .ok());
  c.listener.tls_cert = "/c";
  c.listener.tls_key = "/k";
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), path_ +
                             ":14: storage.replica.region: site \"frankfurt-1\" is in region \"eu\", outside "
                             "this deployment's region \"jp\" (set at " +
                             path_ + ":1); the database and its mirror must stay in the deployment's region");
}

TEST_F(ConfigFileTest, PrimaryOutsideRegionRefused) {
  Config c = ValidConfig();
  ASSERT_TRUE(Load("region = \"us\"\n[storage]\nengine = \"postgres\"\ndsn = \"host=db1\"\n"
                   "primary = { site = \"tokyo-1\", region = \"jp\" }\n",
                   &c)
                  .ok());
  c.listener.tls_cert = "/c";
  c.listener.tls_key = "/k";
  Status s = ValidateConfig(c);
  EXPECT_THAT(s.message(), StartsWith(path_ + ":5: storage.primary.region: site \"tokyo-1\" is in region \"jp\""));
  EXPECT_THAT(s.message(), HasSubstr("region \"us\" (set at " + path_ + ":1)"));
}

TEST(ValidateConfigTest, AcceptsValidConfig) { EXPECT_TRUE(ValidateConfig(ValidConfig()).ok()); }

TEST(ValidateConfigTest, TlsFilesRequiredUnlessPlainHttp) {
  Config c;
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("listener.tls_cert: required"));
  c.listener.tls_cert = "cert.pem";
  EXPECT_THAT(ValidateConfig(c).message(), StartsWith("listener.tls_key: required"));
  Config plain;
  plain.listener.plain_http = true;
  EXPECT_TRUE(ValidateConfig(plain).ok());
}

TEST(ValidateConfigTest, PlainHttpOnlyOnLoopback) {
  Config c;
  c.listener.plain_http = true;
  for (const char* ok : {"127.0.0.1:0", "localhost:8080", "[::1]:8443", "127.1.2.3:1"}) {
    c.listener.address = ok;
    EXPECT_TRUE(ValidateConfig(c).ok()) << ok;
  }
  for (const char* bad : {"0.0.0.0:8080", "10.0.0.1:80", "[::]:80", "example.com:80"}) {
    c.listener.address = bad;
    EXPECT_THAT(ValidateConfig(c).message(), StartsWith("listener.plain_http: only allowed on a loopback")) << bad;
  }
}

TEST(ValidateConfigTest, PostgresNeedsDsn) {
  Config c = ValidConfig();
  c.storage.engine = "postgres";
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("storage.dsn: required when storage.engine is \"postgres\""));
  c.storage.dsn = "host=db1 dbname=kura user=kura";
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
}

TEST(ValidateConfigTest, PasswordFileExcludesPasswordInDsn) {
  Config c = ValidConfig();
  c.storage.engine = "postgres";
  c.storage.dsn = "host=db1 user=kura password=hunter2-secret";
  // A password in the DSN alone is the operator's choice (libpq accepts it).
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.storage.password_file = "/etc/kura/pg-password";
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("storage.dsn: holds a password although storage.password_file is set"));
  // The message must not echo the DSN or the password.
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("hunter2")));
  c.storage.dsn = "postgresql://kura:hunter2-secret@db1/kura";
  EXPECT_THAT(ValidateConfig(c).message(), ::testing::Not(HasSubstr("hunter2")));
  EXPECT_FALSE(ValidateConfig(c).ok());
  c.storage.dsn = "host=db1 user=kura";
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
}

TEST_F(ConfigFileTest, ReadsGssKeytabWithItsLine) {
  Config c;
  Status s = Load(
      "[storage]\n"                                                                    // 1
      "engine = \"postgres\"\n"                                                        // 2
      "dsn = \"host=db1 dbname=kura user=kura krbsrvname=postgres\"\n"                 // 3
      "gss_keytab = \"/etc/kura/kura.keytab\"\n",                                      // 4
      &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.storage.gss_keytab, "/etc/kura/kura.keytab");
  EXPECT_EQ(c.storage.gss_keytab_origin, path_ + ":4");
  c.listener.tls_cert = "/etc/kura/tls/server-chain.pem";
  c.listener.tls_key = "/etc/kura/tls/server.key";
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
  // Not set: no keytab, no origin (password or peer authentication as before).
  Config d;
  ASSERT_TRUE(Load("[storage]\nengine = \"postgres\"\ndsn = \"host=db1\"\n", &d).ok());
  EXPECT_EQ(d.storage.gss_keytab, "");
  EXPECT_EQ(d.storage.gss_keytab_origin, "");
}

TEST_F(ConfigFileTest, GssKeytabBadValues) {
  EXPECT_THAT(Load("[storage]\ngss_keytab = \"\"\n").message(),
              StartsWith(path_ + ":2: storage.gss_keytab: must not be empty"));
  EXPECT_THAT(Load("[storage]\n\ngss_keytab = 7\n").message(),
              StartsWith(path_ + ":3: storage.gss_keytab: expected a string, got an integer"));
  // The key is gss_keytab, not a guess at libpq's or krb5's spelling.
  EXPECT_THAT(Load("[storage]\ngss_principal_keytab = \"/k\"\n").message(),
              StartsWith(path_ + ":2: storage.gss_principal_keytab: unknown key"));
}

TEST_F(ConfigFileTest, GssKeytabCrossFieldErrorsNameItsLine) {
  Config c;
  ASSERT_TRUE(Load("[storage]\n"
                   "engine = \"postgres\"\n"
                   "dsn = \"host=db1 user=kura\"\n"
                   "password_file = \"/etc/kura/pg-password\"\n"
                   "gss_keytab = \"/etc/kura/kura.keytab\"\n",
                   &c)
                  .ok());
  c.listener.tls_cert = "/etc/kura/tls/server-chain.pem";
  c.listener.tls_key = "/etc/kura/tls/server.key";
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), path_ + ":5: storage.gss_keytab: set only one of storage.password_file and "
                                 "storage.gss_keytab (kura authenticates to PostgreSQL one way)");
}

TEST(ValidateConfigTest, GssKeytabRules) {
  Config c = ValidConfig();
  c.storage.gss_keytab = "/etc/kura/kura.keytab";
  // Only the PostgreSQL engine logs in to a database.
  EXPECT_EQ(ValidateConfig(c).message(), "storage.gss_keytab: only with storage.engine = \"postgres\"");
  c.storage.gss_keytab_origin = "kura.toml:7";
  EXPECT_EQ(ValidateConfig(c).message(), "kura.toml:7: storage.gss_keytab: only with storage.engine = \"postgres\"");

  c.storage.engine = "postgres";
  c.storage.dsn = "host=db1.example dbname=kura user=kura sslmode=verify-full";
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
  // Still a DSN first.
  c.storage.dsn = "";
  EXPECT_THAT(ValidateConfig(c).message(), StartsWith("storage.dsn: required"));

  // One way to authenticate: no password file, no password in the DSN.
  c.storage.dsn = "host=db1.example dbname=kura user=kura";
  c.storage.password_file = "/etc/kura/pg-password";
  EXPECT_THAT(ValidateConfig(c).message(),
              StartsWith("kura.toml:7: storage.gss_keytab: set only one of storage.password_file and storage.gss_keytab"));
  c.storage.password_file.clear();
  for (const char* dsn : {"host=db1 user=kura password=hunter2-secret", "postgresql://kura:hunter2-secret@db1/kura",
                          "postgresql://db1/kura?password=hunter2-secret"}) {
    c.storage.dsn = dsn;
    Status s = ValidateConfig(c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << dsn;
    EXPECT_THAT(s.message(), StartsWith("storage.dsn: holds a password although storage.gss_keytab is set")) << dsn;
    EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("hunter2"))) << dsn;
  }

  // TLS stays the channel: GSSAPI encryption would bypass sslmode=verify-full.
  for (const char* dsn : {"host=db1 user=kura gssencmode=prefer", "host=db1 user=kura gssencmode='require'",
                          "postgresql://kura@db1/kura?sslmode=verify-full&gssencmode=require",
                          "host=db1 gssencmode=disable gssencmode=prefer"}) {
    c.storage.dsn = dsn;
    EXPECT_THAT(ValidateConfig(c).message(), StartsWith("storage.dsn: sets gssencmode")) << dsn;
  }
  for (const char* dsn : {"host=db1 user=kura gssencmode=disable", "postgresql://kura@db1/kura?gssencmode=disable",
                          "host=db1 user=kura krbsrvname=postgres application_name='gssencmode=require'"}) {
    c.storage.dsn = dsn;
    EXPECT_TRUE(ValidateConfig(c).ok()) << dsn << ": " << ValidateConfig(c).ToString();
  }
  // Without a keytab the DSN's gssencmode is the operator's business.
  c.storage.gss_keytab.clear();
  c.storage.gss_keytab_origin.clear();
  c.storage.dsn = "host=db1 gssencmode=prefer";
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(DsnParameterTest, KeyValueAndUriForms) {
  EXPECT_FALSE(DsnParameter("", "host").has_value());
  EXPECT_EQ(DsnParameter("host=db1 dbname=kura", "host"), "db1");
  EXPECT_FALSE(DsnParameter("host=db1 dbname=kura", "user").has_value());
  EXPECT_EQ(DsnParameter("  host = db1  gssencmode = disable ", "gssencmode"), "disable");
  EXPECT_EQ(DsnParameter("application_name='a b\\'c' host=h", "application_name"), "a b'c");
  EXPECT_EQ(DsnParameter("options=-c\\ x=1 host=h", "options"), "-c x=1");
  EXPECT_EQ(DsnParameter("host=h sslmode=", "sslmode"), "");
  // libpq: the last occurrence wins.
  EXPECT_EQ(DsnParameter("gssencmode=disable gssencmode=prefer", "gssencmode"), "prefer");
  // A key inside a value is not a key.
  EXPECT_FALSE(DsnParameter("application_name='gssencmode=require'", "gssencmode").has_value());
  EXPECT_EQ(DsnParameter("postgresql://kura@db1:5432,db2/kura?gssenc%6Dode=dis%61ble&x=1", "gssencmode"), "disable");
  EXPECT_EQ(DsnParameter("postgres://db1/kura?krbsrvname=pg", "krbsrvname"), "pg");
  EXPECT_FALSE(DsnParameter("postgresql://kura:pw@db1/kura", "password").has_value());  // userinfo is not a parameter
  EXPECT_FALSE(DsnParameter("postgresql://db1/kura", "host").has_value());
}

TEST(ValidateConfigTest, PostgresPoolAndTimeouts) {
  Config c = ValidConfig();
  c.storage.engine = "postgres";
  c.storage.dsn = "host=db1";
  c.storage.pool_size = 0;
  EXPECT_THAT(ValidateConfig(c).message(), StartsWith("storage.pool_size:"));
  c.storage.pool_size = 4;
  c.storage.connect_timeout = std::chrono::seconds(0);
  EXPECT_THAT(ValidateConfig(c).message(), StartsWith("storage.connect_timeout:"));
  c.storage.connect_timeout = std::chrono::seconds(5);
  c.storage.statement_timeout = std::chrono::seconds(100000);
  EXPECT_THAT(ValidateConfig(c).message(), StartsWith("storage.statement_timeout:"));
  c.storage.statement_timeout = std::chrono::seconds(2);
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ValidateConfigTest, SitesOnlyWithPostgres) {
  Config c = ValidConfig();
  c.storage.replica = Config::Site{"osaka-1", "jp", ""};
  EXPECT_THAT(ValidateConfig(c).message(), StartsWith("storage.replica: only with storage.engine = \"postgres\""));
  c.storage.engine = "postgres";
  c.storage.dsn = "host=db1";
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ValidateConfigTest, SiteOutsideRegionWithoutFile) {
  Config c = ValidConfig();
  c.storage.engine = "postgres";
  c.storage.dsn = "host=db1";
  c.storage.primary = Config::Site{"tokyo-1", "jp", ""};
  c.storage.replica = Config::Site{"virginia-1", "us", ""};
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "storage.replica.region: site \"virginia-1\" is in region \"us\", outside this deployment's region "
            "\"jp\" (the default); the database and its mirror must stay in the deployment's region");
}

TEST(DsnHasPasswordTest, KeyValueForm) {
  EXPECT_FALSE(DsnHasPassword(""));
  EXPECT_FALSE(DsnHasPassword("host=db1 dbname=kura user=kura sslmode=verify-full"));
  EXPECT_TRUE(DsnHasPassword("host=db1 password=x"));
  EXPECT_TRUE(DsnHasPassword("  password = 'a b' host=db1"));
  EXPECT_TRUE(DsnHasPassword("host=db1 password="));
  // The word inside another key or inside a value is not a password key.
  EXPECT_FALSE(DsnHasPassword("host=db1 passfile=/etc/kura/pgpass"));
  EXPECT_FALSE(DsnHasPassword("host=db1 application_name='password=x'"));
  EXPECT_FALSE(DsnHasPassword("host=db1 options=-cpassword\\ =x"));
  EXPECT_TRUE(DsnHasPassword("host=db1 application_name='it\\'s' password=x"));
}

TEST(DsnHasPasswordTest, UriForm) {
  EXPECT_FALSE(DsnHasPassword("postgresql://db1/kura"));
  EXPECT_FALSE(DsnHasPassword("postgresql://kura@db1:5432,db2:5432/kura?target_session_attrs=read-write"));
  EXPECT_TRUE(DsnHasPassword("postgresql://kura:secret@db1/kura"));
  EXPECT_TRUE(DsnHasPassword("postgres://kura:@db1/kura"));
  EXPECT_TRUE(DsnHasPassword("postgresql://db1/kura?sslmode=verify-full&password=x"));
  EXPECT_TRUE(DsnHasPassword("postgresql://db1/kura?pass%77ord=x"));
  EXPECT_FALSE(DsnHasPassword("postgresql://db1/kura?passfile=/etc/kura/pgpass"));
}

TEST(ValidateConfigTest, RefusesBadFields) {
  auto check = [](auto mutate, const char* prefix) {
    Config c = ValidConfig();
    mutate(c);
    Status s = ValidateConfig(c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << prefix;
    EXPECT_THAT(s.message(), StartsWith(prefix));
  };
  check([](Config& c) { c.region = "mars"; }, "region:");
  check([](Config& c) { c.site = ""; }, "site:");
  check([](Config& c) { c.listener.address = "nope"; }, "listener.address:");
  check([](Config& c) { c.listener.address = "host:"; }, "listener.address:");
  check([](Config& c) { c.listener.address = ":80"; }, "listener.address:");
  check([](Config& c) { c.listener.tls_profile = "old"; }, "listener.tls_profile:");
  check([](Config& c) { c.listener.max_body_bytes = 0; }, "listener.max_body_bytes:");
  check([](Config& c) { c.listener.read_timeout = std::chrono::seconds(0); }, "listener.read_timeout:");
  check([](Config& c) { c.listener.threads = -1; }, "listener.threads:");
  check([](Config& c) { c.listener.max_connections = 0; }, "listener.max_connections:");
  check([](Config& c) { c.storage.engine = "mysql"; }, "storage.engine:");
  check([](Config& c) { c.storage.path = ""; }, "storage.path:");
  check([](Config& c) { c.seal.type = "hsm"; }, "seal.type:");
  check([](Config& c) { c.seal.type = "pkcs11"; }, "seal.module:");
  check([](Config& c) { c.seal.pin_file = "/etc/kura/pin"; }, "seal.pin_file: only for type = \"pkcs11\"");
  check(
      [](Config& c) {
        c.seal.type = "passphrase";
        c.seal.passphrase_file = "/etc/kura/pass";
        c.seal.passphrase_env = "KURA_PASS";
      },
      "seal.passphrase_env: set only one");
  check([](Config& c) { c.records.keep_versions = 0; }, "records.keep_versions:");
  check([](Config& c) { c.records.max_page_size = 0; }, "records.max_page_size:");
  check([](Config& c) { c.audit.checkpoint_interval = std::chrono::seconds(0); }, "audit.checkpoint_interval:");
  check([](Config& c) { c.log.level = "verbose"; }, "log.level:");
}

TEST_F(ConfigFileTest, ReadsAuditSinks) {
  Config c;
  Status s = Load(R"([audit]
checkpoint_interval = "60s"

[[audit.sink]]
name = "siem-file"
type = "file"
path = "/var/log/kura/audit.jsonl"
max_bytes = 1048576
keep_files = 3

[[audit.sink]]
name = "siem.tcp"
type = "syslog"
address = "tcp://siem.example:6514"
app_name = "kura-tokyo"
facility = "local3"

[[audit.sink]]
name = "local_syslog"
type = "syslog"
address = "unix:///dev/log"
facility = 4
)", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(c.audit.sinks.size(), 3u);
  const auto& f = c.audit.sinks[0];
  EXPECT_EQ(f.name, "siem-file");
  EXPECT_EQ(f.type, "file");
  EXPECT_EQ(f.path, "/var/log/kura/audit.jsonl");
  EXPECT_EQ(f.max_bytes, 1048576u);
  EXPECT_EQ(f.keep_files, 3);
  EXPECT_EQ(f.origin, path_ + ":4");
  const auto& t = c.audit.sinks[1];
  EXPECT_EQ(t.name, "siem.tcp");
  EXPECT_EQ(t.type, "syslog");
  EXPECT_EQ(t.address, "tcp://siem.example:6514");
  EXPECT_EQ(t.app_name, "kura-tokyo");
  EXPECT_EQ(t.facility, 19);
  EXPECT_EQ(t.origin, path_ + ":11");
  const auto& u = c.audit.sinks[2];
  EXPECT_EQ(u.address, "unix:///dev/log");
  EXPECT_EQ(u.app_name, "kura");  // default
  EXPECT_EQ(u.facility, 4);
  EXPECT_TRUE(ValidateConfig([&] {
    Config v = c;
    v.listener.tls_cert = "/c.pem";
    v.listener.tls_key = "/k.pem";
    return v;
  }()).ok());
}

TEST_F(ConfigFileTest, AuditSinkDefaults) {
  Config c;
  ASSERT_TRUE(Load("[[audit.sink]]\nname = \"a\"\ntype = \"file\"\npath = \"/tmp/a.jsonl\"\n"
                   "[[audit.sink]]\nname = \"b\"\ntype = \"syslog\"\naddress = \"udp://[::1]:514\"\n",
                   &c)
                  .ok());
  ASSERT_EQ(c.audit.sinks.size(), 2u);
  EXPECT_EQ(c.audit.sinks[0].max_bytes, std::uint64_t{64} << 20);
  EXPECT_EQ(c.audit.sinks[0].keep_files, 5);
  EXPECT_EQ(c.audit.sinks[1].app_name, "kura");
  EXPECT_EQ(c.audit.sinks[1].facility, 13);
  Config none;
  ASSERT_TRUE(Load("[audit]\ncheckpoint_interval = \"5m\"\n", &none).ok());
  EXPECT_TRUE(none.audit.sinks.empty());
}

TEST_F(ConfigFileTest, BadAuditSinks) {
  const std::string file = "[[audit.sink]]\nname = \"a\"\ntype = \"file\"\npath = \"/tmp/a\"\n";
  const std::string syslog = "[[audit.sink]]\nname = \"s\"\ntype = \"syslog\"\n";
  // Names: required, safe as a file name, unique (the message points at both).
  EXPECT_EQ(Load("[[audit.sink]]\ntype = \"file\"\npath = \"/tmp/a\"\n").message(),
            path_ + ":1: audit.sink[0].name: required (a unique name for this sink)");
  EXPECT_THAT(Load("[[audit.sink]]\nname = \"../x\"\n").message(),
              StartsWith(path_ + ":2: audit.sink[0].name: \"../x\" is not a sink name"));
  EXPECT_THAT(Load("[[audit.sink]]\nname = \".hidden\"\n").message(),
              StartsWith(path_ + ":2: audit.sink[0].name: \".hidden\" is not a sink name"));
  EXPECT_EQ(Load(file + "\n" + file).message(),
            path_ + ":7: audit.sink[1].name: \"a\" is already the name of the sink at " + path_ + ":2");
  // Type: required, known, and its own keys only.
  EXPECT_EQ(Load("[[audit.sink]]\nname = \"a\"\npath = \"/tmp/a\"\n").message(),
            path_ + ":1: audit.sink[0].type: required (file | syslog)");
  EXPECT_THAT(Load("[[audit.sink]]\nname = \"a\"\ntype = \"kafka\"\n").message(),
              StartsWith(path_ + ":3: audit.sink[0].type: \"kafka\" is not one of file | syslog"));
  EXPECT_EQ(Load(file + "address = \"udp://h:514\"\n").message(),
            path_ + ":5: audit.sink[0].address: only for type = \"syslog\"");
  EXPECT_EQ(Load(syslog + "address = \"udp://h:514\"\nkeep_files = 2\n").message(),
            path_ + ":5: audit.sink[0].keep_files: only for type = \"file\"");
  EXPECT_EQ(Load("[[audit.sink]]\nname = \"a\"\ntype = \"file\"\n").message(),
            path_ + ":1: audit.sink[0].path: required for type = \"file\" (the JSON lines file)");
  EXPECT_THAT(Load(syslog).message(), StartsWith(path_ + ":1: audit.sink[0].address: required for type = \"syslog\""));
  EXPECT_EQ(Load(file + "colour = \"red\"\n").message(), path_ + ":5: audit.sink[0].colour: unknown key");
  // Values.
  EXPECT_THAT(Load(file + "max_bytes = 100\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].max_bytes: 100 is out of range [4096, "));
  EXPECT_THAT(Load(file + "keep_files = 0\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].keep_files: 0 is out of range [1, 1000]"));
  EXPECT_EQ(Load(file + "path = \"\"\n").code(), StatusCode::kInvalidArgument);  // duplicate key: syntax error
  for (const char* bad : {"udp://host", "tcp://host:0", "tcp://host:99999", "http://h:80", "udp://::1:514", "host:514",
                          "unix://dev/log", "unix://"}) {
    EXPECT_THAT(Load(syslog + "address = \"" + bad + "\"\n").message(),
                StartsWith(path_ + ":4: audit.sink[0].address: \"" + bad + "\" "))
        << bad;
  }
  EXPECT_THAT(Load(syslog + "address = \"unix:///" + std::string(200, 'x') + "\"\n").message(),
              HasSubstr("longer than 107 bytes"));
  EXPECT_THAT(Load(syslog + "address = \"udp://h:514\"\napp_name = \"two words\"\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].app_name: \"two words\" is not 1-48 printable ASCII"));
  EXPECT_THAT(Load(syslog + "address = \"udp://h:514\"\napp_name = \"" + std::string(49, 'a') + "\"\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].app_name:"));
  EXPECT_THAT(Load(syslog + "address = \"udp://h:514\"\nfacility = 24\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].facility: 24 is out of range [0, 23]"));
  EXPECT_THAT(Load(syslog + "address = \"udp://h:514\"\nfacility = \"local9\"\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].facility: \"local9\" is not a syslog facility"));
  EXPECT_THAT(Load(syslog + "address = \"udp://h:514\"\nfacility = true\n").message(),
              StartsWith(path_ + ":5: audit.sink[0].facility: expected a facility name or number, got a boolean"));
  // Shape: an array of tables, not one table or scalars.
  EXPECT_EQ(Load("[audit.sink]\nname = \"a\"\n").message(),
            path_ + ":1: audit.sink: expected an array of tables ([[audit.sink]]), got a table");
  EXPECT_EQ(Load("[audit]\nsink = [1]\n").message(), path_ + ":2: audit.sink[0]: expected a table, got an integer");
  // A failed load changes nothing.
  Config c;
  c.audit.sinks.push_back({.name = "keep", .type = "file", .path = "/tmp/k"});
  EXPECT_FALSE(LoadConfigFile(Write(file + file), &c).ok());
  ASSERT_EQ(c.audit.sinks.size(), 1u);
  EXPECT_EQ(c.audit.sinks[0].name, "keep");
}

TEST(ValidateConfigTest, AuditSinkRules) {
  auto sink_file = [] {
    Config::Audit::SinkSettings s;
    s.name = "f";
    s.type = "file";
    s.path = "/tmp/f.jsonl";
    return s;
  };
  auto sink_syslog = [] {
    Config::Audit::SinkSettings s;
    s.name = "s";
    s.type = "syslog";
    s.address = "tcp://127.0.0.1:6514";
    return s;
  };
  Config ok = ValidConfig();
  ok.audit.sinks = {sink_file(), sink_syslog()};
  EXPECT_TRUE(ValidateConfig(ok).ok()) << ValidateConfig(ok).ToString();

  auto check = [&](auto mutate, const std::string& prefix) {
    Config c = ValidConfig();
    c.audit.sinks = {sink_file(), sink_syslog()};
    mutate(c);
    Status s = ValidateConfig(c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << prefix;
    EXPECT_THAT(s.message(), StartsWith(prefix));
  };
  check([](Config& c) { c.audit.sinks[1].name = "f"; }, "audit.sink[1].name: \"f\" is also the name of audit.sink[0]");
  check([](Config& c) { c.audit.sinks[0].name = "a/b"; }, "audit.sink[0].name:");
  check([](Config& c) { c.audit.sinks[0].type = "kafka"; }, "audit.sink[0].type:");
  check([](Config& c) { c.audit.sinks[0].path = ""; }, "audit.sink[0].path:");
  check([](Config& c) { c.audit.sinks[0].max_bytes = 10; }, "audit.sink[0].max_bytes:");
  check([](Config& c) { c.audit.sinks[0].keep_files = 0; }, "audit.sink[0].keep_files:");
  check([](Config& c) { c.audit.sinks[1].address = ""; }, "audit.sink[1].address:");
  check([](Config& c) { c.audit.sinks[1].address = "tcp://nope"; }, "audit.sink[1].address:");
  check([](Config& c) { c.audit.sinks[1].app_name = ""; }, "audit.sink[1].app_name:");
  check([](Config& c) { c.audit.sinks[1].facility = 24; }, "audit.sink[1].facility:");
  check(
      [](Config& c) {
        c.audit.sinks[1].origin = "kura.toml:9";
        c.audit.sinks[1].facility = -1;
      },
      "kura.toml:9: audit.sink[1].facility:");
}

}  // namespace
}  // namespace kura

namespace kura {
namespace {

class SealConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() / ("kura-seal-config-" + std::to_string(::getpid()) + ".toml"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  Status Load(const std::string& text, Config* c) {
    std::ofstream(path_) << text;
    return LoadConfigFile(path_, c);
  }
  std::string path_;
};

TEST_F(SealConfigTest, ReadsPkcs11Keys) {
  Config c;
  Status s = Load(R"([seal]
type = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "kura"
key_label = "kura-kek"
pin_file = "/etc/kura/hsm.pin"
)",
                  &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.seal.type, "pkcs11");
  EXPECT_EQ(c.seal.module, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(c.seal.token_label, "kura");
  EXPECT_EQ(c.seal.key_label, "kura-kek");
  EXPECT_EQ(c.seal.pin_file, "/etc/kura/hsm.pin");
  EXPECT_EQ(c.seal.origin, path_ + ":1");
}

TEST_F(SealConfigTest, ReadsPassphraseKeys) {
  Config c;
  ASSERT_TRUE(Load("[seal]\ntype = \"passphrase\"\npassphrase_env = \"KURA_PASSPHRASE\"\n", &c).ok());
  EXPECT_EQ(c.seal.type, "passphrase");
  EXPECT_EQ(c.seal.passphrase_env, "KURA_PASSPHRASE");
  Config d;
  ASSERT_TRUE(Load("[seal]\ntype = \"passphrase\"\npassphrase_file = \"/etc/kura/pass\"\n", &d).ok());
  EXPECT_EQ(d.seal.passphrase_file, "/etc/kura/pass");
  Config e;  // neither: the passphrase comes from `kura operator unseal`
  ASSERT_TRUE(Load("[seal]\ntype = \"passphrase\"\n", &e).ok());
  EXPECT_TRUE(e.seal.passphrase_file.empty());
}

TEST_F(SealConfigTest, RefusesBadSealKeysWithFileAndLine) {
  auto message = [this](const std::string& text) {
    Config c;
    return Load(text, &c).message();
  };
  const std::string pkcs11 = "[seal]\ntype = \"pkcs11\"\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n";
  EXPECT_THAT(message(pkcs11 + "key_label = \"k\"\npin_env = \"PIN\"\n"),
              StartsWith(path_ + ":1: seal.token_label: required"));
  EXPECT_THAT(message(pkcs11 + "token_label = \"t\"\npin_env = \"PIN\"\n"),
              StartsWith(path_ + ":1: seal.key_label: required"));
  EXPECT_THAT(message(pkcs11 + "token_label = \"t\"\nkey_label = \"k\"\n"),
              StartsWith(path_ + ":1: seal.pin_file: required for type = \"pkcs11\": set pin_file or pin_env"));
  EXPECT_THAT(message(pkcs11 + "token_label = \"t\"\nkey_label = \"k\"\npin_file = \"/p\"\npin_env = \"PIN\"\n"),
              StartsWith(path_ + ":7: seal.pin_env: set only one of pin_file and pin_env"));
  EXPECT_THAT(message(pkcs11 + "token_label = \"t\"\nkey_label = \"k\"\npin_env = \"1PIN\"\n"),
              StartsWith(path_ + ":6: seal.pin_env: \"1PIN\" is not an environment variable name"));
  EXPECT_THAT(message("[seal]\ntype = \"pkcs11\"\nmodule = \"libsofthsm2.so\"\n"),
              StartsWith(path_ + ":3: seal.module: \"libsofthsm2.so\" is not an absolute path"));
  EXPECT_THAT(message("[seal]\ntype = \"pkcs11\"\nmodule = \"\"\n"), StartsWith(path_ + ":3: seal.module: must not be empty"));
  EXPECT_THAT(message("[seal]\ntype = \"shamir\"\npin_file = \"/etc/kura/pin\"\n"),
              StartsWith(path_ + ":3: seal.pin_file: only for type = \"pkcs11\""));
  EXPECT_THAT(message("[seal]\ntype = \"pkcs11\"\npassphrase_env = \"X\"\n"),
              StartsWith(path_ + ":3: seal.passphrase_env: only for type = \"passphrase\""));
  EXPECT_THAT(message("[seal]\ntype = \"passphrase\"\npassphrase_file = \"/p\"\npassphrase_env = \"P\"\n"),
              StartsWith(path_ + ":4: seal.passphrase_env: set only one of passphrase_file and passphrase_env"));
  EXPECT_THAT(message("[seal]\ntype = \"passphrase\"\npin = \"1234\"\n"), StartsWith(path_ + ":3: seal.pin: unknown key"));
}

TEST(SealValidateTest, Pkcs11NeedsEveryKey) {
  Config c;
  c.listener.plain_http = true;
  c.seal.type = "pkcs11";
  c.seal.module = "/usr/lib/softhsm/libsofthsm2.so";
  c.seal.token_label = "kura";
  c.seal.key_label = "kek";
  c.seal.pin_env = "KURA_PIN";
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
  c.seal.key_label.clear();
  c.seal.origin = "kura.toml:9";
  EXPECT_EQ(ValidateConfig(c).message(), "kura.toml:9: seal.key_label: required for type = \"pkcs11\"");
}

}  // namespace
}  // namespace kura
