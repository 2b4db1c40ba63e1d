#include "store/migrations.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <string>

#include "store/sqlite_internal.h"

namespace kura::store {
namespace {

namespace fs = std::filesystem;

TEST(RenderSqlTest, MapsBytesTypePerDialect) {
  EXPECT_EQ(RenderSql("CREATE TABLE t (a {bytes} NOT NULL, b TEXT, c {bytes})", Dialect::kSqlite),
            "CREATE TABLE t (a BLOB NOT NULL, b TEXT, c BLOB)");
  EXPECT_EQ(RenderSql("CREATE TABLE t (a {bytes} NOT NULL, b TEXT, c {bytes})", Dialect::kPostgres),
            "CREATE TABLE t (a BYTEA NOT NULL, b TEXT, c BYTEA)");
  EXPECT_EQ(RenderSql("SELECT '{byte}'", Dialect::kSqlite), "SELECT '{byte}'");
}

TEST(MigrationListTest, VersionsAreContiguousAndPortable) {
  auto all = AllMigrations();
  ASSERT_FALSE(all.empty());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(all[i].name.find('\''), std::string_view::npos);
    for (std::string_view stmt : all[i].statements) {
      // Engine-specific syntax stays out of the shared schema.
      for (std::string_view banned : {"AUTOINCREMENT", "WITHOUT ROWID", "STRICT", "INSERT OR", "BLOB", "BYTEA",
                                      "INTEGER PRIMARY KEY", "SERIAL", ";"}) {
        EXPECT_EQ(stmt.find(banned), std::string_view::npos) << banned << " in: " << stmt;
      }
    }
  }
  EXPECT_EQ(LatestSchemaVersion(), all.back().version);
}

class MigrationRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("kura_migrations_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    sqlite::ConnectionOptions options;
    options.path = (dir_ / "m.db").string();
    options.create = true;
    options.durable = false;
    auto conn = sqlite::Connection::Open(options);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
  }
  void TearDown() override {
    conn_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::int64_t Int(const std::string& sql) {
    auto v = conn_->QueryInt(sql, "test");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : -1;
  }

  fs::path dir_;
  std::unique_ptr<sqlite::Connection> conn_;
};

constexpr std::array<std::string_view, 1> kCreateA = {"CREATE TABLE a (x BIGINT)"};
constexpr std::array<std::string_view, 2> kCreateB = {"CREATE TABLE b (y {bytes})",
                                                      "INSERT INTO b (y) VALUES (NULL)"};
constexpr std::array<std::string_view, 2> kBroken = {"CREATE TABLE c (z TEXT)", "THIS IS NOT SQL"};

TEST_F(MigrationRunnerTest, AppliesEachMigrationOnce) {
  const std::array<Migration, 2> list = {Migration{1, "create_a", kCreateA}, Migration{2, "create_b", kCreateB}};
  sqlite::SqliteMigrationTarget target(*conn_);
  auto v = ApplyMigrations(target, 42, list);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 2);
  // Running again does nothing (re-running CREATE TABLE would fail).
  v = ApplyMigrations(target, 43, list);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 2);
  EXPECT_EQ(Int("SELECT COUNT(*) FROM schema_migrations"), 2);
  EXPECT_EQ(Int("SELECT COUNT(*) FROM b"), 1);
  EXPECT_EQ(Int("SELECT applied_at FROM schema_migrations WHERE version = 2"), 42);
}

TEST_F(MigrationRunnerTest, AppliesOnlyNewMigrations) {
  sqlite::SqliteMigrationTarget target(*conn_);
  const std::array<Migration, 1> v1 = {Migration{1, "create_a", kCreateA}};
  ASSERT_TRUE(ApplyMigrations(target, 1, v1).ok());
  const std::array<Migration, 2> v2 = {Migration{1, "create_a", kCreateA}, Migration{2, "create_b", kCreateB}};
  auto v = ApplyMigrations(target, 2, v2);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 2);
  EXPECT_EQ(Int("SELECT applied_at FROM schema_migrations WHERE version = 1"), 1);
  EXPECT_EQ(Int("SELECT applied_at FROM schema_migrations WHERE version = 2"), 2);
}

TEST_F(MigrationRunnerTest, RefusesNewerSchema) {
  sqlite::SqliteMigrationTarget target(*conn_);
  const std::array<Migration, 2> newer = {Migration{1, "create_a", kCreateA}, Migration{2, "create_b", kCreateB}};
  ASSERT_TRUE(ApplyMigrations(target, 1, newer).ok());
  const std::array<Migration, 1> older = {Migration{1, "create_a", kCreateA}};
  auto v = ApplyMigrations(target, 2, older);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(v.status().message().find("newer"), std::string::npos);
}

TEST_F(MigrationRunnerTest, FailedMigrationIsRolledBack) {
  sqlite::SqliteMigrationTarget target(*conn_);
  const std::array<Migration, 2> list = {Migration{1, "create_a", kCreateA}, Migration{2, "broken", kBroken}};
  auto v = ApplyMigrations(target, 1, list);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("broken"), std::string::npos);
  EXPECT_EQ(Int("SELECT MAX(version) FROM schema_migrations"), 1);
  // The first statement of the failed migration was undone with it.
  EXPECT_EQ(Int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'c'"), 0);
  EXPECT_TRUE(conn_->InAutocommit());
}

TEST(SqliteErrorTest, MapsResultCodes) {
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_FULL, "record", "/d/kura.db").code(), StatusCode::kUnavailable);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_IOERR_FSYNC, "record", "/d/kura.db").code(), StatusCode::kUnavailable);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_READONLY, "record", "/d/kura.db").code(), StatusCode::kUnavailable);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_BUSY, "record", "/d/kura.db").code(), StatusCode::kUnavailable);
  Status corrupt = sqlite::ErrorStatus(SQLITE_CORRUPT, "record", "/d/kura.db");
  EXPECT_EQ(corrupt.code(), StatusCode::kDataLoss);
  EXPECT_NE(corrupt.message().find("kura.db"), std::string::npos);
  EXPECT_NE(corrupt.message().find("record"), std::string::npos);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_NOTADB, "open", "/d/kura.db").code(), StatusCode::kDataLoss);
  Status dup = sqlite::ErrorStatus(SQLITE_CONSTRAINT_PRIMARYKEY, "tenant", "/d/kura.db");
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "tenant already exists");
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_CONSTRAINT_UNIQUE, "api key", "").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_CONSTRAINT_FOREIGNKEY, "record", "").code(), StatusCode::kNotFound);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_CONSTRAINT_NOTNULL, "record", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sqlite::ErrorStatus(SQLITE_ERROR, "record", "", "no such table: x").code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace kura::store
