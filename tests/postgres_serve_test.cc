// `kura serve` on PostgreSQL, end to end: the real binary in dev mode with a
// `--config pg.toml` that selects `engine = "postgres"`, against a real
// PostgreSQL 15 started by tests/pg/pg-server.sh (TLS verify-full, SCRAM
// password from a 0600 password file). Over HTTPS: tenant, collection, API
// key, record create/read, stale If-Match → 409, restart → data still there;
// then psql reads the tables directly and finds no plaintext field value.
// And the region rule: a replica configured in another region stops
// `kura serve` with a message naming both regions and the file's line.
//
// Where the PostgreSQL server comes from (as for the store tests,
// src/store/pg_test_env.h):
//   1. KURA_TEST_PG_DSN, if set (any PostgreSQL whose role may create schemas);
//   2. else, with PostgreSQL 15 installed, a throwaway server that
//      tests/pg/pg-server.sh starts in /tmp/kura-pg-e2e-<build hash>, shared by
//      the test processes of this build and stopped by `pg-server.sh linger`
//      once none has used it for 15 s;
//   3. else the PostgreSQL test skips (fails with KURA_REQUIRE_PG=1).
// Each test run uses a schema of its own (search_path in the DSN), dropped at
// the end.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "pg_support.h"

namespace kura::e2e {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Shared with the other PostgreSQL tests (pg_support.h).
struct PgServerView {
  std::string dsn;
  std::string why;
};
PgServerView Server() { return {SharedPgDsn(), SharedPgWhyNot()}; }

class PostgresServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Server().dsn.empty()) return;
    if (PgRequired()) FAIL() << "no PostgreSQL for the tests: " << Server().why;
    GTEST_SKIP() << "no PostgreSQL for the tests: " << Server().why << " (set KURA_REQUIRE_PG=1 to fail instead)";
  }
  void TearDown() override {
    if (!schema_.empty()) {
      ProcessResult r =
          PgSql(Server().dsn, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      EXPECT_EQ(r.exit_code, 0) << r.Describe();
    }
  }

  // Creates an empty schema and returns a DSN whose search_path is it.
  std::string FreshSchemaDsn() {
    static std::atomic<int> counter{0};
    schema_ = "kura_e2e_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    ProcessResult r = PgSql(Server().dsn, "CREATE SCHEMA " + schema_);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return PgDsnWithSchema(Server().dsn, schema_);
  }

  std::string schema_;
};

TEST_F(PostgresServeTest, DevModeOnPostgresKeepsRecordsEncrypted) {
  TempDir dir("kura-pg-serve");
  const std::string dsn = FreshSchemaDsn();
  ASSERT_FALSE(HasFailure());

  std::string kura_dsn = dsn, password;
  if (dsn.find("://") == std::string::npos) PgSplitPassword(dsn, &kura_dsn, &password);
  std::string config =
      "region = \"jp\"\nsite = \"tokyo-1\"\n\n[storage]\nengine = \"postgres\"\ndsn = " + PgToml(kura_dsn) +
      "\npool_size = 4\nconnect_timeout = \"5s\"\nstatement_timeout = \"10s\"\n";
  if (!password.empty()) {
    const std::string pw_file = dir.Sub("pg-password");
    ASSERT_TRUE(WriteFile(pw_file, password + "\n"));
    ASSERT_EQ(::chmod(pw_file.c_str(), 0600), 0);
    config += "password_file = " + PgToml(pw_file) + "\n";
  }
  config +=
      "\n[storage.primary]\nsite = \"tokyo-1\"\nregion = \"jp\"\n"
      "\n[storage.replica]\nsite = \"osaka-1\"\nregion = \"jp\"\n";
  const std::string pg_toml = dir.Sub("pg.toml");
  ASSERT_TRUE(WriteFile(pg_toml, config));
  // The configuration holds no password: it lives in the 0600 file only.
  if (!password.empty()) {
    EXPECT_EQ(ReadFile(pg_toml).find(password), std::string::npos);
  }

  std::string error;
  auto server = KuraServer::Start({.dev = true, .config_file = pg_toml, .data_dir = dir.Sub("data")}, &error);
  ASSERT_NE(server, nullptr) << error;
  // Dev mode still keeps its TLS files, key file and dev.env in the data
  // directory, but no SQLite database: the records are in PostgreSQL.
  EXPECT_TRUE(fs::exists(dir.Sub("data/tls/ca.pem")));
  EXPECT_TRUE(fs::exists(dir.Sub("data/kek.key")));
  EXPECT_TRUE(fs::exists(dir.Sub("data/dev.env")));
  EXPECT_FALSE(fs::exists(dir.Sub("data/kura.db")));
  if (!password.empty()) {
    EXPECT_EQ(server->Log().find(password), std::string::npos) << "password in the server log";
  }

  auto tenant = CreateTestTenant(*server, "pg-e2e", &error);
  ASSERT_TRUE(tenant) << error;

  // Distinctive values, so finding them in the database is unambiguous.
  const std::string marker = "pg-marker-" + std::to_string(::getpid()) + "-q7Zx";
  const json data = {{"email", "hanako." + marker + "@example.jp"},
                     {"phone", "+81-90-5555-0142"},
                     {"name", "Hanako Yamada " + marker},
                     {"national_id", "NID-" + marker},
                     {"note", "note " + marker}};
  HttpResponse created = server->http().Post(RecordsPath(tenant->id, "customers"),
                                             {{"data", data}, {"subject", "subject-" + marker}}, tenant->admin_key);
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string id = created.json.value("id", "");
  ASSERT_FALSE(id.empty()) << created.Describe();
  EXPECT_EQ(created.json.value("version", 0), 1);

  HttpResponse got = server->http().Get(RecordPath(tenant->id, "customers", id), tenant->admin_key);
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.json["data"], data);
  EXPECT_EQ(got.Header("etag"), "\"1\"");

  json updated = data;
  updated["note"] = "second " + marker;
  HttpResponse put = server->http().Put(RecordPath(tenant->id, "customers", id), {{"data", updated}}, tenant->admin_key,
                                        {"If-Match: \"1\""});
  ASSERT_EQ(put.status, 200) << put.Describe();
  EXPECT_EQ(put.json.value("version", 0), 2);
  HttpResponse stale = server->http().Put(RecordPath(tenant->id, "customers", id), {{"data", data}}, tenant->admin_key,
                                          {"If-Match: \"1\""});
  EXPECT_TRUE(IsError(stale, 409, "conflict"));

  // The blind index lives in PostgreSQL too.
  HttpResponse found = server->http().Get(
      RecordsPath(tenant->id, "customers") + "?email=" + UrlEncode("hanako." + marker + "@example.jp"),
      tenant->admin_key);
  ASSERT_EQ(found.status, 200) << found.Describe();
  EXPECT_EQ(found.json["items"].size(), 1u) << found.Describe();

  // A restart (same data dir, same database) keeps everything: the vault
  // unseals itself with the dev key file and the record is there.
  const std::string root = server->root_token();
  ASSERT_TRUE(server->Restart(&error)) << error;
  EXPECT_EQ(server->root_token(), root);
  got = server->http().Get(RecordPath(tenant->id, "customers", id), tenant->admin_key);
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.json["data"], updated);
  EXPECT_EQ(got.json.value("version", 0), 2);
  HttpResponse v1 = server->http().Get(RecordPath(tenant->id, "customers", id) + "?version=1", tenant->admin_key);
  ASSERT_EQ(v1.status, 200) << v1.Describe();
  EXPECT_EQ(v1.json["data"], data);

  // Straight from the database: both versions are stored, as ciphertext.
  ProcessResult count = PgSql(dsn, "SELECT count(*) FROM record_versions WHERE record_id = '" + id + "'");
  ASSERT_EQ(count.exit_code, 0) << count.Describe();
  EXPECT_EQ(count.out, "2\n");
  ProcessResult rows = PgSql(dsn, "SELECT t::text FROM record_versions t");
  ASSERT_EQ(rows.exit_code, 0) << rows.Describe();
  ASSERT_NE(rows.out.find(id), std::string::npos) << rows.out;
  for (const std::string& needle : {marker, std::string("5555-0142"), std::string("Yamada")}) {
    EXPECT_EQ(rows.out.find(needle), std::string::npos) << "plaintext \"" << needle << "\" in record_versions";
    EXPECT_EQ(rows.out.find(PgHex(needle)), std::string::npos) << "hex of \"" << needle << "\" in record_versions";
  }
  // And nowhere else in kura's tables either (index, records, keys, …).
  ProcessResult tables =
      PgSql(dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = '" + schema_ + "' ORDER BY 1");
  ASSERT_EQ(tables.exit_code, 0) << tables.Describe();
  std::istringstream names(tables.out);
  int table_count = 0;
  for (std::string table; std::getline(names, table);) {
    if (table.empty()) continue;
    ++table_count;
    ProcessResult dump = PgSql(dsn, "SELECT t::text FROM \"" + table + "\" t");
    ASSERT_EQ(dump.exit_code, 0) << dump.Describe();
    EXPECT_EQ(dump.out.find(marker), std::string::npos) << "plaintext in table " << table;
    EXPECT_EQ(dump.out.find(PgHex(marker)), std::string::npos) << "hex plaintext in table " << table;
    EXPECT_EQ(dump.out.find(root), std::string::npos) << "root token in table " << table;
    EXPECT_EQ(dump.out.find(tenant->admin_key), std::string::npos) << "API key in table " << table;
  }
  EXPECT_GE(table_count, 5) << tables.out;

  EXPECT_EQ(server->Stop(), 0) << server->Log();
}

// The region rule needs no database: the configuration is refused before
// kura connects to anything.
TEST(PostgresServeRegionTest, ReplicaInAnotherRegionIsRefused) {
  TempDir dir("kura-pg-region");
  const std::string pg_toml = dir.Sub("pg.toml");
  ASSERT_TRUE(WriteFile(pg_toml,
                        "region = \"jp\"\n"                                        // 1
                        "site = \"tokyo-1\"\n"                                     // 2
                        "\n"                                                       // 3
                        "[storage]\n"                                              // 4
                        "engine = \"postgres\"\n"                                  // 5
                        "dsn = \"host=127.0.0.1 port=1 dbname=kura user=kura\"\n"  // 6
                        "\n"                                                       // 7
                        "[storage.primary]\n"                                      // 8
                        "site = \"tokyo-1\"\n"                                     // 9
                        "region = \"jp\"\n"                                        // 10
                        "\n"                                                       // 11
                        "[storage.replica]\n"                                      // 12
                        "site = \"frankfurt-1\"\n"                                 // 13
                        "region = \"eu\"\n"));                                     // 14
  ProcessResult r = RunProcess(
      {KuraBinary(), "serve", "--dev", "--config", pg_toml, "--data", dir.Sub("data"), "--listen", "127.0.0.1:0"}, {},
      "", std::chrono::seconds(30));
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.exit_code, 2) << r.Describe();  // a configuration error is a usage error
  EXPECT_NE(r.err.find(pg_toml + ":14: storage.replica.region"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("\"eu\""), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("\"jp\""), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(pg_toml + ":1"), std::string::npos) << r.Describe();
  EXPECT_FALSE(fs::exists(dir.Sub("data/dev.env")));

  // A primary in another region is refused the same way.
  ASSERT_TRUE(WriteFile(pg_toml,
                        "region = \"eu\"\n"
                        "[storage]\n"
                        "engine = \"postgres\"\n"
                        "dsn = \"host=127.0.0.1 port=1 dbname=kura user=kura\"\n"
                        "primary = { site = \"tokyo-1\", region = \"jp\" }\n"));
  r = RunProcess(
      {KuraBinary(), "serve", "--dev", "--config", pg_toml, "--data", dir.Sub("data"), "--listen", "127.0.0.1:0"}, {},
      "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find(pg_toml + ":5: storage.primary.region"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("\"jp\""), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("\"eu\""), std::string::npos) << r.Describe();
}

}  // namespace
}  // namespace kura::e2e
