// kura logs in to PostgreSQL with Kerberos (GSSAPI), end to end: a real MIT
// KDC (tests/krb/kdc.sh, realm KURA.TEST) issues postgres/localhost, kura and
// stranger; a real PostgreSQL 15 (tests/pg/pg-server.sh with
// KURA_PG_GSS_KEYTAB) lets role kura in over TCP only with `hostssl … gss
// include_realm=0`, so its password no longer works. `kura serve --dev
// --config` with `[storage] gss_keytab` and a DSN without password serves a
// record; PostgreSQL itself (pg_stat_gssapi and pg_stat_ssl over the
// superuser's Unix socket, and its connection log) shows that every kura
// session was authenticated by GSSAPI as kura@KURA.TEST and still runs over
// TLS. A keytab of a principal PostgreSQL does not map stops the start with
// the database's authentication failure; a missing or too-open keytab is a
// configuration error naming the file's line.
//
// One KDC and one PostgreSQL for the whole test (a few seconds); skips when
// krb5kdc or PostgreSQL 15 is not installed (fails with KURA_REQUIRE_PG=1).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "pg_support.h"

namespace kura::e2e {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kRealm[] = "KURA.TEST";

std::string KdcScript() {
  const char* source = std::getenv("KURA_SOURCE_DIR");
  return (((source != nullptr && *source != '\0') ? fs::path(source) / "tests" : fs::path(__FILE__).parent_path()) /
          "krb" / "kdc.sh")
      .string();
}

// The value of `export NAME=value` (kdc.sh prints no quotes).
std::string ExportLine(const std::string& out, const std::string& name) {
  std::istringstream lines(out);
  const std::string prefix = "export " + name + "=";
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(prefix)) return line.substr(prefix.size());
  }
  return "";
}

// `kura serve --dev --config FILE` that is expected to stop by itself.
ProcessResult ServeOnce(const TempDir& dir, const std::string& config) {
  return RunProcess({KuraBinary(), "serve", "--dev", "--config", config, "--data", dir.Sub("data-refused"), "--listen",
                     "127.0.0.1:0"},
                    {}, "", std::chrono::seconds(60));
}

class PostgresGssTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!fs::exists("/usr/sbin/krb5kdc")) why = "krb5kdc is not installed (scripts/install-deps)";
    if (!PgInstalled()) why = "PostgreSQL 15 is not installed (scripts/install-deps)";
    if (!why.empty()) {
      if (PgRequired()) FAIL() << why;
      GTEST_SKIP() << why << " (set KURA_REQUIRE_PG=1 to fail instead)";
    }
    // pg-server.sh runs PostgreSQL as user postgres when we are root: it must
    // reach its directory inside ours.
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);

    // The realm, with the database's service principal (libpq asks for
    // postgres/<the DSN's host>, here localhost), kura's client principal
    // and one PostgreSQL does not map to role kura.
    const std::string krb = dir_.Sub("krb");
    ProcessResult r = RunProcess({"bash", KdcScript(), "start", krb});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    kdc_started_ = true;
    krb5_config_ = ExportLine(r.out, "KRB5_CONFIG");
    ASSERT_FALSE(krb5_config_.empty()) << r.Describe();
    for (const auto& [principal, keytab] :
         {std::pair{std::string("postgres/localhost"), dir_.Sub("postgres.keytab")},
          std::pair{std::string("kura"), KuraKeytab()}, std::pair{std::string("stranger"), StrangerKeytab()}}) {
      r = RunProcess({"bash", KdcScript(), "keytab", krb, principal, keytab});
      ASSERT_EQ(r.exit_code, 0) << r.Describe();
    }
    // kura serve and psql inherit the realm's configuration, and nothing
    // else of Kerberos: kura must set up its own credentials. A ticket cache
    // named here would be kura's only if it ignored its private one.
    ::setenv("KRB5_CONFIG", krb5_config_.c_str(), 1);
    ::setenv("KRB5CCNAME", ("FILE:" + StrayCcache()).c_str(), 1);
    for (const char* name : {"KRB5_CLIENT_KTNAME", "KRB5_KTNAME", "PGGSSENCMODE", "PGPASSWORD", "PGPASSFILE"}) {
      ::unsetenv(name);
    }

    r = RunProcess({"bash", PgScript("pg-server.sh"), "start", PgDir()},
                   {{"KURA_PG_GSS_KEYTAB", dir_.Sub("postgres.keytab")}, {"KURA_PG_GSS_REALM", kRealm}}, "",
                   std::chrono::seconds(180));
    pg_started_ = true;
    ASSERT_EQ(r.exit_code, 0) << r.Describe() << "\n" << Tail(ReadFile(PgDir() + "/server.log"), 3000);
    dsn_ = PgExportValue(r.out, "KURA_TEST_PG_DSN");
    admin_dsn_ = PgExportValue(r.out, "KURA_TEST_PG_ADMIN_DSN");
    ASSERT_FALSE(dsn_.empty()) << r.Describe();
    ASSERT_FALSE(admin_dsn_.empty()) << r.Describe();
    ASSERT_EQ(dsn_.find("password"), std::string::npos) << "the GSSAPI server's DSN carries a password";
  }

  void TearDown() override {
    if (pg_started_) {
      ProcessResult r = RunProcess({"bash", PgScript("pg-server.sh"), "stop", PgDir()});
      EXPECT_EQ(r.exit_code, 0) << r.Describe();
    }
    if (kdc_started_) {
      ProcessResult r = RunProcess({"bash", KdcScript(), "stop", dir_.Sub("krb")});
      EXPECT_EQ(r.exit_code, 0) << r.Describe();
    }
    for (const char* name : {"KRB5_CONFIG", "KRB5CCNAME"}) ::unsetenv(name);
  }

  std::string PgDir() const { return dir_.Sub("pg"); }
  std::string KuraKeytab() const { return dir_.Sub("kura.keytab"); }
  std::string StrangerKeytab() const { return dir_.Sub("stranger.keytab"); }
  std::string StrayCcache() const { return dir_.Sub("stray-ccache"); }

  // A kura configuration on the GSSAPI server, logging in with `keytab`.
  std::string WriteConfig(const std::string& name, const std::string& keytab) {
    const std::string path = dir_.Sub(name);
    const std::string text =
        "region = \"jp\"\nsite = \"tokyo-1\"\n\n[storage]\nengine = \"postgres\"\ndsn = " + PgToml(dsn_) +
        "\ngss_keytab = " + PgToml(keytab) + "\npool_size = 2\nconnect_timeout = \"5s\"\n";
    EXPECT_TRUE(WriteFile(path, text));
    return path;
  }

  TempDir dir_{"kura-pg-gss"};
  bool kdc_started_ = false;
  bool pg_started_ = false;
  std::string krb5_config_;
  std::string dsn_;        // TLS verify-full, no password
  std::string admin_dsn_;  // superuser over the Unix socket
};

TEST_F(PostgresGssTest, KuraLogsInWithItsKeytabAndNothingElse) {
  // The role's password does not open the door: pg_hba.conf only has gss for
  // kura over TCP. (The password is right; it is the method that is refused.)
  const std::string password = ReadFile(PgDir() + "/password");
  ASSERT_GT(password.size(), 8u);
  ProcessResult by_password = RunProcess(
      {PgBinDir() + "/psql", "-X", "-At", "-d", dsn_ + " gssencmode=disable password=" + password, "-c", "SELECT 1"},
      {{"KRB5CCNAME", "FILE:" + dir_.Sub("empty-ccache")}}, "", std::chrono::seconds(30));
  EXPECT_NE(by_password.exit_code, 0) << by_password.Describe();
  EXPECT_NE(by_password.err.find("GSSAPI"), std::string::npos) << by_password.Describe();

  // kura: the DSN without a password, the client keytab, nothing else.
  const std::string config = WriteConfig("gss.toml", KuraKeytab());
  std::string error;
  auto server = KuraServer::Start({.dev = true, .config_file = config}, &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_NE(server->Log().find("PostgreSQL login with Kerberos (GSSAPI)"), std::string::npos) << server->Log();

  auto tenant = CreateTestTenant(*server, "gss-e2e", &error);
  ASSERT_TRUE(tenant) << error;
  const json data = {{"email", "taro.gss@example.jp"}, {"phone", "+81-90-1234-0001"}, {"name", "Taro Kerberos"}};
  HttpResponse created = server->http().Post(RecordsPath(tenant->id, "customers"), {{"data", data}}, tenant->admin_key);
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string id = created.json.value("id", "");
  ASSERT_FALSE(id.empty()) << created.Describe();
  HttpResponse got = server->http().Get(RecordPath(tenant->id, "customers", id), tenant->admin_key);
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.json["data"], data);

  // PostgreSQL's view of kura's pooled sessions (application_name kura),
  // from a separate superuser connection over the Unix socket: each one
  // authenticated by GSSAPI as kura@KURA.TEST, on TLS, not GSSAPI-encrypted.
  ProcessResult sessions =
      PgSql(admin_dsn_,
            "SELECT g.gss_authenticated, g.principal, g.encrypted, s.ssl, a.usename FROM pg_stat_activity a "
            "JOIN pg_stat_gssapi g USING (pid) JOIN pg_stat_ssl s USING (pid) "
            "WHERE a.application_name = 'kura' AND a.backend_type = 'client backend' ORDER BY a.pid");
  ASSERT_EQ(sessions.exit_code, 0) << sessions.Describe();
  std::istringstream rows(sessions.out);
  int count = 0;
  for (std::string row; std::getline(rows, row);) {
    if (row.empty()) continue;
    ++count;
    EXPECT_EQ(row, std::string("t|kura@") + kRealm + "|f|t|kura") << sessions.out;
  }
  EXPECT_GE(count, 1) << "no kura session in pg_stat_activity:\n" << sessions.out;
  // And in its connection log (log_connections = on).
  const std::string pg_log = ReadFile(PgDir() + "/server.log");
  EXPECT_NE(pg_log.find(std::string("connection authenticated: identity=\"kura@") + kRealm + "\" method=gss"),
            std::string::npos)
      << Tail(pg_log, 3000);
  // kura never asked for GSSAPI encryption (libpq's default when it holds
  // tickets, which would bypass TLS verify-full): no such attempt was refused.
  EXPECT_EQ(pg_log.find("GSS encryption"), std::string::npos) << Tail(pg_log, 3000);
  // kura's tickets stayed in its memory ccache: the cache named in its
  // environment was never written.
  EXPECT_FALSE(fs::exists(StrayCcache()));
  EXPECT_EQ(server->Stop(), 0) << server->Log();

  // A keytab whose principal PostgreSQL does not map to role kura: the start
  // stops with the database's authentication failure, and no secret.
  const std::string stranger = WriteConfig("stranger.toml", StrangerKeytab());
  ProcessResult refused = ServeOnce(dir_, stranger);
  EXPECT_FALSE(refused.timed_out) << refused.Describe();
  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_NE(refused.err.find("cannot open the PostgreSQL database"), std::string::npos) << refused.Describe();
  EXPECT_NE(refused.err.find("GSSAPI authentication failed for user \"kura\""), std::string::npos)
      << refused.Describe();
  EXPECT_NE(refused.err.find("storage.gss_keytab " + StrangerKeytab()), std::string::npos) << refused.Describe();
  EXPECT_EQ(refused.err.find(password), std::string::npos) << "password in the error";
  EXPECT_EQ(refused.out.find(password), std::string::npos) << "password in the output";
  EXPECT_NE(ReadFile(PgDir() + "/server.log")
                .find("provided user name (kura) and authenticated user name (stranger) do not match"),
            std::string::npos)
      << Tail(ReadFile(PgDir() + "/server.log"), 3000);
}

// No database needed: the keytab is checked before kura connects to anything.
TEST(PostgresGssConfigTest, MissingOrOpenKeytabIsAConfigError) {
  TempDir dir("kura-pg-gss-config");
  const std::string keytab = dir.Sub("kura.keytab");
  const std::string config = dir.Sub("gss.toml");
  // Line 4 is gss_keytab.
  ASSERT_TRUE(WriteFile(config,
                        "[storage]\nengine = \"postgres\"\n"
                        "dsn = \"host=localhost hostaddr=127.0.0.1 port=1 dbname=kura user=kura\"\n"
                        "gss_keytab = " +
                            PgToml(keytab) + "\n"));
  ProcessResult missing = ServeOnce(dir, config);
  EXPECT_EQ(missing.exit_code, 2) << missing.Describe();  // a configuration error is a usage error
  EXPECT_NE(missing.err.find(config + ":4: storage.gss_keytab: cannot read " + keytab), std::string::npos)
      << missing.Describe();
  EXPECT_FALSE(fs::exists(dir.Sub("data-refused/dev.env")));

  ASSERT_TRUE(WriteFile(keytab, std::string("\x05\x02", 2)));
  ASSERT_EQ(::chmod(keytab.c_str(), 0644), 0);
  ProcessResult open = ServeOnce(dir, config);
  EXPECT_EQ(open.exit_code, 2) << open.Describe();
  EXPECT_NE(open.err.find(config + ":4: storage.gss_keytab: " + keytab + " is readable or writable by group or others"),
            std::string::npos)
      << open.Describe();
}

}  // namespace
}  // namespace kura::e2e
