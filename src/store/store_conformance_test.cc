// The Store conformance suite: every backend must pass it unchanged.
//
// It is value-parameterised over a StoreFactory; each backend is one
// INSTANTIATE_TEST_SUITE_P line at the bottom (SQLite, PostgreSQL). Each test
// gets a fresh, empty store from the factory. The PostgreSQL instantiation
// needs a server (pg_test_env.h): without one it is skipped, or fails when
// KURA_REQUIRE_PG=1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/audit_test_util.h"
#include "store/pg_test_env.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "store/store_test_util.h"

namespace kura::store {
namespace {

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<Store>()> make;
  // Non-empty: why this backend cannot run here; its tests are skipped.
  std::function<std::string()> unavailable = [] { return std::string(); };
};

std::string FactoryName(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }
// GoogleTest prints parameters in failure messages and test listings.
[[maybe_unused]] void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

// --- SQLite factory: one fresh database per test under a per-process temp
// directory that is removed when the test program ends.

std::filesystem::path SqliteRoot() {
  static const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / ("kura_store_conformance_" + std::to_string(::getpid()));
  return root;
}

class SqliteRootCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(SqliteRoot(), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kSqliteCleanup =
    ::testing::AddGlobalTestEnvironment(new SqliteRootCleanup);

// durable = false: no sync per commit (fast); durable = true: what `kura
// serve` runs, the writer's WAL writes gathered by sqlite_wal_vfs.
StoreFactory SqliteFactory(bool durable) {
  return {durable ? "sqlite_durable" : "sqlite", [durable] {
            static std::atomic<int> counter{0};
            SqliteOptions options;
            options.path = (SqliteRoot() / ("db" + std::to_string(counter++)) / "kura.db").string();
            options.durable = durable;
            auto store = OpenSqliteStore(options);
            if (!store.ok()) {
              ADD_FAILURE() << store.status().ToString();
              return std::unique_ptr<Store>();
            }
            return std::move(store).value();
          }};
}

// --- PostgreSQL factory: one fresh schema per test on the test server.

StoreFactory PostgresFactory() {
  return {"postgres",
          [] {
            auto dsn = testing::FreshPgDsn();
            if (!dsn.ok()) {
              ADD_FAILURE() << "KURA_REQUIRE_PG is set but: " << dsn.status().ToString();
              return std::unique_ptr<Store>();
            }
            PostgresOptions options;
            options.dsn = *dsn;
            auto store = OpenPostgresStore(options);
            if (!store.ok()) {
              ADD_FAILURE() << store.status().ToString();
              return std::unique_ptr<Store>();
            }
            return std::move(store).value();
          },
          [] { return testing::PgSkipReason(); }};
}

// --- Helpers

CollectionRow Collection(const std::string& tenant, const std::string& name, const std::string& schema = "{}",
                         std::int64_t at = 1700000100) {
  CollectionRow c;
  c.tenant_id = tenant;
  c.name = name;
  c.schema_json = schema;
  c.created_at = at;
  c.updated_at = at;
  return c;
}

RecordWrite Record(const std::string& tenant, const std::string& coll, const std::string& id,
                   std::int64_t version, const std::string& ciphertext, std::vector<IndexEntry> index = {},
                   std::int64_t at = 1700000200) {
  RecordWrite w;
  w.tenant_id = tenant;
  w.collection = coll;
  w.id = id;
  w.version = version;
  w.ciphertext = B(ciphertext);
  w.subject_hmac = B("subject-" + id);
  w.index = std::move(index);
  w.at = at;
  return w;
}

ApiKeyRow Key(const std::string& tenant, const std::string& id, const std::string& hash) {
  ApiKeyRow k;
  k.id = id;
  k.tenant_id = tenant;
  k.name = "key " + id;
  k.role = "admin";
  k.key_hash = B(hash);
  k.created_at = 1700000300;
  return k;
}

// A user with every column set to something other than its default, so a
// column that is not stored or read back shows up.
UserRow User(const std::string& tenant, const std::string& name) {
  UserRow u;
  u.tenant_id = tenant;
  u.username = name;
  u.roles_json = R"(["reader"])";
  u.password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaC0" + name;
  u.password_changed_at = 1700000400;
  u.password_history_json = R"(["$argon2id$old"])";
  u.totp_secret_sealed = {0x00, 0x01, 0xfe, 0x00, 0xff};
  u.totp_confirmed = true;
  u.totp_last_step = 56666666;
  u.recovery_codes_json = R"(["ab12","cd34"])";
  u.failed_count = 2;
  u.failed_window_start = 1700000450;
  u.locked_until = 1700000900;
  u.disabled = false;
  u.created_at = 1700000400;
  u.updated_at = 1700000500;
  u.version = 1;
  return u;
}

SessionRow Session(const std::string& tenant, const std::string& name, const std::string& token_hash) {
  SessionRow s;
  s.token_hash = B(token_hash);
  s.tenant_id = tenant;
  s.username = name;
  s.method = "password+totp";
  s.restriction = "";
  s.created_at = 1700001000;
  s.last_seen_at = 1700001000;
  s.expires_at = 1700044200;
  s.authenticated_at = 1700001000;
  return s;
}

void ExpectSameUser(const UserRow& got, const UserRow& want) {
  EXPECT_EQ(got.tenant_id, want.tenant_id);
  EXPECT_EQ(got.username, want.username);
  EXPECT_EQ(got.roles_json, want.roles_json);
  EXPECT_EQ(got.password_hash, want.password_hash);
  EXPECT_EQ(got.password_changed_at, want.password_changed_at);
  EXPECT_EQ(got.password_history_json, want.password_history_json);
  EXPECT_EQ(got.kerberos_principal, want.kerberos_principal);
  EXPECT_EQ(got.totp_secret_sealed, want.totp_secret_sealed);
  EXPECT_EQ(got.totp_confirmed, want.totp_confirmed);
  EXPECT_EQ(got.totp_last_step, want.totp_last_step);
  EXPECT_EQ(got.recovery_codes_json, want.recovery_codes_json);
  EXPECT_EQ(got.failed_count, want.failed_count);
  EXPECT_EQ(got.failed_window_start, want.failed_window_start);
  EXPECT_EQ(got.locked_until, want.locked_until);
  EXPECT_EQ(got.disabled, want.disabled);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.updated_at, want.updated_at);
  EXPECT_EQ(got.version, want.version);
}

std::vector<std::string> Usernames(const std::vector<UserRow>& rows) {
  std::vector<std::string> names;
  for (const auto& u : rows) names.push_back(u.username);
  return names;
}

std::vector<std::string> Ids(const std::vector<RecordRow>& rows) {
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.id);
  return ids;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (std::string why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }

  // A tenant with one collection "people", ready for records.
  void MakeTenant(const std::string& id, const std::vector<std::string>& collections = {"people"}) {
    ASSERT_TRUE(store_->CreateTenant(Tenant(id), nullptr).ok());
    for (const auto& c : collections) {
      auto created = store_->PutCollection(Collection(id, c), nullptr);
      ASSERT_TRUE(created.ok()) << created.status().ToString();
    }
  }

  std::unique_ptr<Store> store_;
};

// --- Meta

TEST_P(StoreConformanceTest, MetaGetPutInsertOnce) {
  EXPECT_EQ(store_->GetMeta("seal").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(store_->InsertMeta("seal", B("first"), nullptr).ok());
  auto again = store_->InsertMeta("seal", B("second"), nullptr);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  ASSERT_EQ(*store_->GetMeta("seal"), B("first"));

  ASSERT_TRUE(store_->PutMeta("seal", B("replaced"), nullptr).ok());
  EXPECT_EQ(*store_->GetMeta("seal"), B("replaced"));

  ASSERT_TRUE(store_->PutMeta("other", B(""), nullptr).ok());
  auto empty = store_->GetMeta("other");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  Bytes binary = {0x00, 0xff, 0x10, 0x00};
  ASSERT_TRUE(store_->PutMeta("bin", binary, nullptr).ok());
  EXPECT_EQ(*store_->GetMeta("bin"), binary);
}

// --- Tenants

TEST_P(StoreConformanceTest, TenantCreateDuplicateGet) {
  TenantRow t = Tenant("acme");
  t.data_key_version = 3;
  ASSERT_TRUE(store_->CreateTenant(t, nullptr).ok());

  auto got = store_->GetTenant("acme");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, "acme");
  EXPECT_EQ(got->name, t.name);
  EXPECT_EQ(got->region, "eu");
  EXPECT_EQ(got->created_at, t.created_at);
  EXPECT_EQ(got->data_key_version, 3);

  // The current data key version only moves up.
  EXPECT_TRUE(store_->SetTenantDataKeyVersion("acme", 4, nullptr).ok());
  EXPECT_EQ(store_->GetTenant("acme")->data_key_version, 4);
  EXPECT_EQ(store_->SetTenantDataKeyVersion("acme", 4, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->SetTenantDataKeyVersion("acme", 2, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->GetTenant("acme")->data_key_version, 4);
  EXPECT_EQ(store_->SetTenantDataKeyVersion("nobody", 2, nullptr).code(), StatusCode::kNotFound);

  TenantRow dup = Tenant("acme");
  dup.name = "Other";
  EXPECT_EQ(store_->CreateTenant(dup, nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetTenant("acme")->name, t.name);

  EXPECT_EQ(store_->GetTenant("nobody").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, TenantListPagination) {
  auto empty = store_->ListTenants({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->items.empty());
  EXPECT_FALSE(empty->next.has_value());

  for (const char* id : {"t4", "t1", "t6", "t0", "t3", "t5", "t2"})
    ASSERT_TRUE(store_->CreateTenant(Tenant(id), nullptr).ok());

  std::vector<std::string> seen;
  PageRequest req;
  req.limit = 3;
  int pages = 0;
  for (;;) {
    auto page = store_->ListTenants(req);
    ASSERT_TRUE(page.ok());
    ++pages;
    EXPECT_LE(page->items.size(), 3u);
    for (const auto& t : page->items) seen.push_back(t.id);
    if (!page->next) break;
    EXPECT_EQ(*page->next, page->items.back().id);
    req.after = *page->next;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"t0", "t1", "t2", "t3", "t4", "t5", "t6"}));

  // A page that ends exactly at the last row has no next cursor.
  req = {};
  req.after = "t3";
  req.limit = 3;
  auto last = store_->ListTenants(req);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->items.size(), 3u);
  EXPECT_FALSE(last->next.has_value());
}

TEST_P(StoreConformanceTest, DeleteTenantRemovesEverythingOfItsOwn) {
  for (const char* id : {"gone", "kept"}) {
    MakeTenant(id, {"people", "orders"});
    ASSERT_TRUE(store_->InsertRecord(Record(id, "people", "r1", 1, "c1", {{"email", B("h-email")}}), nullptr).ok());
    ASSERT_TRUE(store_->UpdateRecord(Record(id, "people", "r1", 2, "c2", {{"email", B("h-email")}}), 1, nullptr).ok());
    ASSERT_TRUE(store_->InsertRecord(Record(id, "orders", "o1", 1, "c3", {{"sku", B("h-sku")}}), nullptr).ok());
    ASSERT_TRUE(store_->PutRole({id, "reader", "{}", 1}, nullptr).ok());
    ASSERT_TRUE(store_->CreateApiKey(Key(id, std::string("k-") + id, std::string("hash-") + id), nullptr).ok());
    ASSERT_TRUE(store_->PutMeta(std::string("meta-") + id, B("v"), nullptr).ok());
  }

  ASSERT_TRUE(store_->DeleteTenant("gone", nullptr).ok());

  EXPECT_EQ(store_->GetTenant("gone").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCollection("gone", "people").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListCollections("gone", {})->items.empty());
  EXPECT_EQ(store_->GetRecord("gone", "people", "r1", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("gone", "people", "r1", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListVersions("gone", "people", "r1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListRecords("gone", "people", {})->items.empty());
  EXPECT_TRUE(store_->ListRecords("gone", "orders", {})->items.empty());
  EXPECT_TRUE(store_->FindRecords("gone", "people", "email", B("h-email"), {})->items.empty());
  EXPECT_EQ(store_->GetRole("gone", "reader").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListRoles("gone")->empty());
  EXPECT_EQ(store_->FindApiKeyByHash(B("hash-gone")).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListApiKeys("gone")->empty());

  // The other tenant is untouched; meta is not tenant data.
  EXPECT_TRUE(store_->GetTenant("kept").ok());
  EXPECT_EQ(store_->GetRecord("kept", "people", "r1", std::nullopt)->version, 2);
  EXPECT_EQ(store_->ListVersions("kept", "people", "r1")->size(), 2u);
  EXPECT_EQ(store_->FindRecords("kept", "people", "email", B("h-email"), {})->items.size(), 1u);
  EXPECT_TRUE(store_->GetRole("kept", "reader").ok());
  EXPECT_TRUE(store_->FindApiKeyByHash(B("hash-kept")).ok());
  EXPECT_TRUE(store_->GetMeta("meta-gone").ok());

  EXPECT_EQ(store_->DeleteTenant("gone", nullptr).code(), StatusCode::kNotFound);

  // The id can be reused and starts empty.
  MakeTenant("gone");
  EXPECT_TRUE(store_->ListRecords("gone", "people", {})->items.empty());
  EXPECT_TRUE(store_->InsertRecord(Record("gone", "people", "r1", 1, "fresh"), nullptr).ok());
  EXPECT_EQ(store_->ListVersions("gone", "people", "r1")->size(), 1u);
}

// --- Collections

TEST_P(StoreConformanceTest, CollectionsPutGetList) {
  ASSERT_TRUE(store_->CreateTenant(Tenant("acme"), nullptr).ok());

  auto created = store_->PutCollection(Collection("acme", "people", R"({"fields":{}})", 100), nullptr);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(*created);

  CollectionRow replacement = Collection("acme", "people", R"({"fields":{"email":{}}})", 200);
  auto replaced = store_->PutCollection(replacement, nullptr);
  ASSERT_TRUE(replaced.ok());
  EXPECT_FALSE(*replaced);

  auto got = store_->GetCollection("acme", "people");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tenant_id, "acme");
  EXPECT_EQ(got->name, "people");
  EXPECT_EQ(got->schema_json, replacement.schema_json);
  EXPECT_EQ(got->created_at, 100);  // creation time survives a replace
  EXPECT_EQ(got->updated_at, 200);

  EXPECT_EQ(store_->GetCollection("acme", "nothing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCollection("other", "people").status().code(), StatusCode::kNotFound);
  // A collection belongs to an existing tenant.
  EXPECT_EQ(store_->PutCollection(Collection("nobody", "people"), nullptr).status().code(), StatusCode::kNotFound);

  for (const char* n : {"c", "a", "e", "b", "d"})
    ASSERT_TRUE(store_->PutCollection(Collection("acme", n), nullptr).ok());
  ASSERT_TRUE(store_->CreateTenant(Tenant("zeta"), nullptr).ok());
  ASSERT_TRUE(store_->PutCollection(Collection("zeta", "aa"), nullptr).ok());

  std::vector<std::string> names;
  PageRequest req;
  req.limit = 4;
  for (;;) {
    auto page = store_->ListCollections("acme", req);
    ASSERT_TRUE(page.ok());
    for (const auto& c : page->items) {
      EXPECT_EQ(c.tenant_id, "acme");
      names.push_back(c.name);
    }
    if (!page->next) break;
    req.after = *page->next;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e", "people"}));
}

// --- Records

TEST_P(StoreConformanceTest, RecordInsertDuplicateGet) {
  MakeTenant("acme");
  RecordWrite w = Record("acme", "people", "r1", 1, "cipher-1", {{"email", B("h1")}}, 500);
  ASSERT_TRUE(store_->InsertRecord(w, nullptr).ok());

  auto got = store_->GetRecord("acme", "people", "r1", std::nullopt);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->tenant_id, "acme");
  EXPECT_EQ(got->collection, "people");
  EXPECT_EQ(got->id, "r1");
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->current_version, 1);
  EXPECT_EQ(got->ciphertext, B("cipher-1"));
  EXPECT_EQ(got->created_at, 500);
  EXPECT_EQ(got->updated_at, 500);

  auto v1 = store_->GetRecord("acme", "people", "r1", 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->ciphertext, B("cipher-1"));

  RecordWrite dup = Record("acme", "people", "r1", 1, "other");
  EXPECT_EQ(store_->InsertRecord(dup, nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->ciphertext, B("cipher-1"));

  // Same id in another collection is another record.
  ASSERT_TRUE(store_->PutCollection(Collection("acme", "orders"), nullptr).ok());
  EXPECT_TRUE(store_->InsertRecord(Record("acme", "orders", "r1", 1, "order"), nullptr).ok());

  EXPECT_EQ(store_->GetRecord("acme", "people", "r2", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 2).status().code(), StatusCode::kNotFound);
  // A record belongs to an existing collection.
  EXPECT_EQ(store_->InsertRecord(Record("acme", "nothing", "r1", 1, "x"), nullptr).code(), StatusCode::kNotFound);

  // A record without subject or index entries.
  RecordWrite bare = Record("acme", "people", "bare", 1, "c");
  bare.subject_hmac.clear();
  EXPECT_TRUE(store_->InsertRecord(bare, nullptr).ok());
  EXPECT_EQ(store_->GetRecord("acme", "people", "bare", std::nullopt)->ciphertext, B("c"));
}

TEST_P(StoreConformanceTest, RecordUpdateCompareAndSet) {
  MakeTenant("acme");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "v1", {}, 500), nullptr).ok());

  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", 2, "v2", {}, 600), 1, nullptr).ok());
  auto cur = store_->GetRecord("acme", "people", "r1", std::nullopt);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(cur->version, 2);
  EXPECT_EQ(cur->current_version, 2);
  EXPECT_EQ(cur->ciphertext, B("v2"));
  EXPECT_EQ(cur->created_at, 500);
  EXPECT_EQ(cur->updated_at, 600);

  auto old = store_->GetRecord("acme", "people", "r1", 1);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->version, 1);
  EXPECT_EQ(old->current_version, 2);
  EXPECT_EQ(old->ciphertext, B("v1"));
  EXPECT_EQ(old->updated_at, 500);

  // Stale expectation: conflict, nothing written.
  Status stale = store_->UpdateRecord(Record("acme", "people", "r1", 2, "lost", {}, 700), 1, nullptr);
  EXPECT_EQ(stale.code(), StatusCode::kAborted);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->ciphertext, B("v2"));
  EXPECT_EQ(store_->ListVersions("acme", "people", "r1")->size(), 2u);
  // An expectation from the future is a conflict too.
  EXPECT_EQ(store_->UpdateRecord(Record("acme", "people", "r1", 6, "x"), 5, nullptr).code(), StatusCode::kAborted);

  // The new version must follow the expected one.
  EXPECT_EQ(store_->UpdateRecord(Record("acme", "people", "r1", 5, "x"), 2, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->version, 2);

  EXPECT_EQ(store_->UpdateRecord(Record("acme", "people", "missing", 2, "x"), 1, nullptr).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateRecord(Record("nobody", "people", "r1", 2, "x"), 1, nullptr).code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, RecordVersionsPrunedToKeepVersions) {
  MakeTenant("acme");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "v1", {}, 1000), nullptr).ok());
  for (int v = 2; v <= 6; ++v) {
    RecordWrite w = Record("acme", "people", "r1", v, "v" + std::to_string(v), {}, 1000 + v);
    w.keep_versions = 3;
    ASSERT_TRUE(store_->UpdateRecord(w, v - 1, nullptr).ok()) << v;
  }
  auto versions = store_->ListVersions("acme", "people", "r1");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].version, 6);
  EXPECT_EQ((*versions)[0].created_at, 1006);
  EXPECT_EQ((*versions)[1].version, 5);
  EXPECT_EQ((*versions)[2].version, 4);
  EXPECT_EQ((*versions)[2].created_at, 1004);

  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 3).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 4)->ciphertext, B("v4"));
  // Creation time of the record outlives its first version.
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->created_at, 1000);

  // keep_versions = 1 keeps only the current one.
  RecordWrite w = Record("acme", "people", "r1", 7, "v7");
  w.keep_versions = 1;
  ASSERT_TRUE(store_->UpdateRecord(w, 6, nullptr).ok());
  versions = store_->ListVersions("acme", "people", "r1");
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ((*versions)[0].version, 7);

  // Default keep_versions (10).
  for (int v = 8; v <= 20; ++v)
    ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", v, "x"), v - 1, nullptr).ok());
  versions = store_->ListVersions("acme", "people", "r1");
  ASSERT_EQ(versions->size(), 10u);
  EXPECT_EQ(versions->front().version, 20);
  EXPECT_EQ(versions->back().version, 11);

  EXPECT_EQ(store_->ListVersions("acme", "people", "missing").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, RecordDelete) {
  MakeTenant("acme");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "v1", {{"email", B("h")}}), nullptr).ok());
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", 2, "v2", {{"email", B("h")}}), 1, nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r2", 1, "other", {{"email", B("h")}}), nullptr).ok());

  ASSERT_TRUE(store_->DeleteRecord("acme", "people", "r1", nullptr).ok());
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListVersions("acme", "people", "r1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Ids(store_->FindRecords("acme", "people", "email", B("h"), {})->items),
            std::vector<std::string>{"r2"});
  EXPECT_EQ(Ids(store_->ListRecords("acme", "people", {})->items), std::vector<std::string>{"r2"});
  EXPECT_EQ(store_->UpdateRecord(Record("acme", "people", "r1", 3, "x"), 2, nullptr).code(), StatusCode::kNotFound);

  EXPECT_EQ(store_->DeleteRecord("acme", "people", "r1", nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteRecord("acme", "people", "never", nullptr).code(), StatusCode::kNotFound);

  // The id is free again and starts over at version 1.
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "again"), nullptr).ok());
  auto versions = store_->ListVersions("acme", "people", "r1");
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->ciphertext, B("again"));
}

TEST_P(StoreConformanceTest, RecordListPagination) {
  MakeTenant("acme", {"people", "orders"});
  MakeTenant("other");
  for (const char* id : {"r3", "r1", "r5", "r2", "r4"}) {
    ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", id, 1, std::string("c-") + id), nullptr).ok());
  }
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "orders", "o1", 1, "o"), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("other", "people", "r0", 1, "x"), nullptr).ok());
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r2", 2, "c-r2-v2", {}, 900), 1, nullptr).ok());

  std::vector<RecordRow> all;
  PageRequest req;
  req.limit = 2;
  int pages = 0;
  for (;;) {
    auto page = store_->ListRecords("acme", "people", req);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    for (auto& r : page->items) all.push_back(r);
    if (!page->next) break;
    req.after = *page->next;
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(Ids(all), (std::vector<std::string>{"r1", "r2", "r3", "r4", "r5"}));
  for (const auto& r : all) {
    EXPECT_EQ(r.tenant_id, "acme");
    EXPECT_EQ(r.collection, "people");
  }
  // The listing carries the current version.
  EXPECT_EQ(all[1].version, 2);
  EXPECT_EQ(all[1].current_version, 2);
  EXPECT_EQ(all[1].ciphertext, B("c-r2-v2"));
  EXPECT_EQ(all[1].updated_at, 900);
  EXPECT_EQ(all[0].ciphertext, B("c-r1"));

  EXPECT_TRUE(store_->ListRecords("acme", "nothing", {})->items.empty());
}

TEST_P(StoreConformanceTest, FindRecordsByBlindIndex) {
  MakeTenant("acme", {"people", "orders"});
  ASSERT_TRUE(
      store_->InsertRecord(Record("acme", "people", "r1", 1, "a", {{"email", B("h1")}, {"phone", B("p1")}}), nullptr)
          .ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r2", 1, "b", {{"email", B("h1")}}), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r3", 1, "c", {{"email", B("h2")}}), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "orders", "o1", 1, "d", {{"email", B("h1")}}), nullptr).ok());
  // The same entry twice is one entry.
  ASSERT_TRUE(
      store_->InsertRecord(Record("acme", "people", "r4", 1, "e", {{"tag", B("t")}, {"tag", B("t")}}), nullptr).ok());

  auto found = store_->FindRecords("acme", "people", "email", B("h1"), {});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(Ids(found->items), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(found->items[0].ciphertext, B("a"));
  EXPECT_EQ(found->items[0].tenant_id, "acme");
  EXPECT_EQ(found->items[0].collection, "people");
  EXPECT_FALSE(found->next.has_value());

  EXPECT_EQ(Ids(store_->FindRecords("acme", "people", "tag", B("t"), {})->items), std::vector<std::string>{"r4"});
  // Field names separate entries with equal hashes.
  EXPECT_TRUE(store_->FindRecords("acme", "people", "phone", B("h1"), {})->items.empty());
  EXPECT_TRUE(store_->FindRecords("acme", "people", "email", B("nope"), {})->items.empty());

  PageRequest req;
  req.limit = 1;
  auto first = store_->FindRecords("acme", "people", "email", B("h1"), req);
  ASSERT_EQ(Ids(first->items), std::vector<std::string>{"r1"});
  ASSERT_TRUE(first->next.has_value());
  req.after = *first->next;
  auto second = store_->FindRecords("acme", "people", "email", B("h1"), req);
  EXPECT_EQ(Ids(second->items), std::vector<std::string>{"r2"});
  EXPECT_FALSE(second->next.has_value());

  // An update replaces the record's entries.
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", 2, "a2", {{"email", B("h3")}}), 1, nullptr).ok());
  EXPECT_EQ(Ids(store_->FindRecords("acme", "people", "email", B("h1"), {})->items),
            std::vector<std::string>{"r2"});
  EXPECT_TRUE(store_->FindRecords("acme", "people", "phone", B("p1"), {})->items.empty());
  auto moved = store_->FindRecords("acme", "people", "email", B("h3"), {});
  ASSERT_EQ(Ids(moved->items), std::vector<std::string>{"r1"});
  EXPECT_EQ(moved->items[0].version, 2);
  EXPECT_EQ(moved->items[0].ciphertext, B("a2"));

  // A failed (stale) update leaves the entries alone.
  EXPECT_EQ(store_->UpdateRecord(Record("acme", "people", "r2", 8, "x", {{"email", B("h9")}}), 7, nullptr).code(),
            StatusCode::kAborted);
  EXPECT_EQ(Ids(store_->FindRecords("acme", "people", "email", B("h1"), {})->items),
            std::vector<std::string>{"r2"});
  EXPECT_TRUE(store_->FindRecords("acme", "people", "email", B("h9"), {})->items.empty());
}

// --- Roles

TEST_P(StoreConformanceTest, Roles) {
  MakeTenant("acme");
  MakeTenant("other");
  auto created = store_->PutRole({"acme", "support", R"({"people":["read"]})", 10}, nullptr);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(*created);
  auto replaced = store_->PutRole({"acme", "support", R"({"people":["read","update"]})", 20}, nullptr);
  ASSERT_TRUE(replaced.ok());
  EXPECT_FALSE(*replaced);
  ASSERT_TRUE(store_->PutRole({"acme", "analyst", "{}", 30}, nullptr).ok());
  ASSERT_TRUE(store_->PutRole({"other", "zzz", "{}", 40}, nullptr).ok());

  auto got = store_->GetRole("acme", "support");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tenant_id, "acme");
  EXPECT_EQ(got->name, "support");
  EXPECT_EQ(got->permissions_json, R"({"people":["read","update"]})");
  EXPECT_EQ(got->updated_at, 20);

  auto list = store_->ListRoles("acme");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "analyst");
  EXPECT_EQ((*list)[1].name, "support");

  ASSERT_TRUE(store_->DeleteRole("acme", "analyst", nullptr).ok());
  EXPECT_EQ(store_->GetRole("acme", "analyst").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteRole("acme", "analyst", nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRole("acme", "zzz").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListRoles("acme")->size(), 1u);
  EXPECT_EQ(store_->PutRole({"nobody", "r", "{}", 1}, nullptr).status().code(), StatusCode::kNotFound);
}

// --- API keys

TEST_P(StoreConformanceTest, ApiKeys) {
  MakeTenant("acme");
  MakeTenant("other");
  ApiKeyRow k1 = Key("acme", "k1", "hash-1");
  k1.expires_at = 1800000000;
  ASSERT_TRUE(store_->CreateApiKey(k1, nullptr).ok());
  ASSERT_TRUE(store_->CreateApiKey(Key("acme", "k0", "hash-0"), nullptr).ok());
  ASSERT_TRUE(store_->CreateApiKey(Key("other", "k9", "hash-9"), nullptr).ok());

  EXPECT_EQ(store_->CreateApiKey(Key("acme", "k1", "hash-new"), nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateApiKey(Key("acme", "k2", "hash-1"), nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateApiKey(Key("nobody", "k3", "hash-3"), nullptr).code(), StatusCode::kNotFound);

  auto found = store_->FindApiKeyByHash(B("hash-1"));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->id, "k1");
  EXPECT_EQ(found->tenant_id, "acme");
  EXPECT_EQ(found->name, "key k1");
  EXPECT_EQ(found->role, "admin");
  EXPECT_EQ(found->key_hash, B("hash-1"));
  EXPECT_EQ(found->created_at, 1700000300);
  EXPECT_EQ(found->expires_at, std::optional<std::int64_t>(1800000000));
  EXPECT_FALSE(found->revoked_at.has_value());
  EXPECT_FALSE(store_->FindApiKeyByHash(B("hash-0"))->expires_at.has_value());
  EXPECT_EQ(store_->FindApiKeyByHash(B("hash-x")).status().code(), StatusCode::kNotFound);

  auto list = store_->ListApiKeys("acme");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "k0");
  EXPECT_EQ((*list)[1].id, "k1");

  ASSERT_TRUE(store_->RevokeApiKey("acme", "k1", 1750000000, nullptr).ok());
  EXPECT_EQ(store_->FindApiKeyByHash(B("hash-1"))->revoked_at, std::optional<std::int64_t>(1750000000));
  // Revoking again keeps the first revocation time.
  ASSERT_TRUE(store_->RevokeApiKey("acme", "k1", 1760000000, nullptr).ok());
  EXPECT_EQ(store_->FindApiKeyByHash(B("hash-1"))->revoked_at, std::optional<std::int64_t>(1750000000));

  EXPECT_EQ(store_->RevokeApiKey("acme", "missing", 1, nullptr).code(), StatusCode::kNotFound);
  // A key of another tenant cannot be revoked through this one.
  EXPECT_EQ(store_->RevokeApiKey("acme", "k9", 1, nullptr).code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->FindApiKeyByHash(B("hash-9"))->revoked_at.has_value());
}

// --- Users

TEST_P(StoreConformanceTest, UserCreateGetDuplicate) {
  MakeTenant("acme");
  UserRow alice = User("acme", "alice");
  ASSERT_TRUE(store_->CreateUser(alice, nullptr).ok());

  auto got = store_->GetUser("acme", "alice");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameUser(*got, alice);

  UserRow dup = User("acme", "alice");
  dup.roles_json = R"(["admin"])";
  EXPECT_EQ(store_->CreateUser(dup, nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUser("acme", "alice")->roles_json, alice.roles_json);

  EXPECT_EQ(store_->GetUser("acme", "bob").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUser("other", "alice").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUser("", "alice").status().code(), StatusCode::kNotFound);

  // Defaults round-trip too: no TOTP enrolment (empty, not a zero-length
  // value that reads back differently), flags set the other way.
  UserRow plain = User("acme", "plain");
  plain.totp_secret_sealed.clear();
  plain.totp_confirmed = false;
  plain.disabled = true;
  plain.password_hash = "";
  ASSERT_TRUE(store_->CreateUser(plain, nullptr).ok());
  ExpectSameUser(*store_->GetUser("acme", "plain"), plain);

  // A tenant user needs its tenant; a staff user (tenant "") needs none.
  EXPECT_EQ(store_->CreateUser(User("nobody", "alice"), nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUser("nobody", "alice").status().code(), StatusCode::kNotFound);
  UserRow empty_name = User("acme", "");
  EXPECT_EQ(store_->CreateUser(empty_name, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreConformanceTest, StaffAndTenantUsersWithTheSameNameAreDistinct) {
  MakeTenant("acme");
  MakeTenant("other");
  UserRow tenant_alice = User("acme", "alice");
  UserRow other_alice = User("other", "alice");
  other_alice.roles_json = R"(["auditor"])";
  UserRow staff_alice = User("", "alice");
  staff_alice.roles_json = R"(["operator"])";
  ASSERT_TRUE(store_->CreateUser(tenant_alice, nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(other_alice, nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(staff_alice, nullptr).ok());
  EXPECT_EQ(store_->CreateUser(User("", "alice"), nullptr).code(), StatusCode::kAlreadyExists);

  EXPECT_EQ(store_->GetUser("acme", "alice")->roles_json, tenant_alice.roles_json);
  EXPECT_EQ(store_->GetUser("other", "alice")->roles_json, other_alice.roles_json);
  ExpectSameUser(*store_->GetUser("", "alice"), staff_alice);

  // Deleting one leaves the others.
  ASSERT_TRUE(store_->DeleteUser("", "alice", nullptr).ok());
  EXPECT_EQ(store_->GetUser("", "alice").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetUser("acme", "alice").ok());
  EXPECT_TRUE(store_->GetUser("other", "alice").ok());
}

TEST_P(StoreConformanceTest, KerberosPrincipalMapsToOneStaffUser) {
  MakeTenant("acme");
  UserRow carol = User("", "carol");
  carol.kerberos_principal = "carol@CORP.EXAMPLE";
  ASSERT_TRUE(store_->CreateUser(carol, nullptr).ok());
  // Many users without a principal ('') do not collide.
  ASSERT_TRUE(store_->CreateUser(User("", "dave"), nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(User("", "erin"), nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(User("acme", "frank"), nullptr).ok());

  auto found = store_->FindStaffByKerberos("carol@CORP.EXAMPLE");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ExpectSameUser(*found, carol);
  EXPECT_EQ(store_->FindStaffByKerberos("CAROL@CORP.EXAMPLE").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindStaffByKerberos("nobody@CORP.EXAMPLE").status().code(), StatusCode::kNotFound);
  // '' means "no principal": it never finds one of the unmapped users.
  EXPECT_EQ(store_->FindStaffByKerberos("").status().code(), StatusCode::kNotFound);

  // A principal already mapped is refused, for staff and tenant users alike.
  UserRow again = User("", "carol2");
  again.kerberos_principal = "carol@CORP.EXAMPLE";
  EXPECT_EQ(store_->CreateUser(again, nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUser("", "carol2").status().code(), StatusCode::kNotFound);
  UserRow tenant_user = User("acme", "carol");
  tenant_user.kerberos_principal = "carol@CORP.EXAMPLE";
  EXPECT_EQ(store_->CreateUser(tenant_user, nullptr).code(), StatusCode::kAlreadyExists);

  // Only staff are found by principal.
  UserRow mapped_tenant_user = User("acme", "grace");
  mapped_tenant_user.kerberos_principal = "grace@CORP.EXAMPLE";
  ASSERT_TRUE(store_->CreateUser(mapped_tenant_user, nullptr).ok());
  EXPECT_EQ(store_->FindStaffByKerberos("grace@CORP.EXAMPLE").status().code(), StatusCode::kNotFound);

  // UpdateUser: taking another user's principal is refused and changes nothing.
  UserRow dave = *store_->GetUser("", "dave");
  dave.kerberos_principal = "carol@CORP.EXAMPLE";
  dave.version = 2;
  EXPECT_EQ(store_->UpdateUser(dave, 1, nullptr, nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUser("", "dave")->version, 1);
  EXPECT_EQ(store_->FindStaffByKerberos("carol@CORP.EXAMPLE")->username, "carol");

  // Moving a principal: unmap it from carol, then dave can take it.
  carol.kerberos_principal = "";
  carol.version = 2;
  ASSERT_TRUE(store_->UpdateUser(carol, 1, nullptr, nullptr).ok());
  EXPECT_EQ(store_->FindStaffByKerberos("carol@CORP.EXAMPLE").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->UpdateUser(dave, 1, nullptr, nullptr).ok());
  EXPECT_EQ(store_->FindStaffByKerberos("carol@CORP.EXAMPLE")->username, "dave");
}

TEST_P(StoreConformanceTest, ListUsersPagesAndIsolatesTenants) {
  MakeTenant("acme");
  MakeTenant("other");
  auto empty = store_->ListUsers("acme", {});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->items.empty());
  EXPECT_FALSE(empty->next.has_value());

  for (const char* name : {"u4", "u1", "u6", "u0", "u3", "u5", "u2"})
    ASSERT_TRUE(store_->CreateUser(User("acme", name), nullptr).ok());
  for (const char* name : {"u1", "x9"}) ASSERT_TRUE(store_->CreateUser(User("other", name), nullptr).ok());
  for (const char* name : {"ops", "u2"}) ASSERT_TRUE(store_->CreateUser(User("", name), nullptr).ok());

  std::vector<std::string> seen;
  PageRequest req;
  req.limit = 3;
  int pages = 0;
  for (;;) {
    auto page = store_->ListUsers("acme", req);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    EXPECT_LE(page->items.size(), 3u);
    for (const auto& u : page->items) {
      EXPECT_EQ(u.tenant_id, "acme");
      seen.push_back(u.username);
    }
    if (!page->next) break;
    EXPECT_EQ(*page->next, page->items.back().username);
    req.after = *page->next;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"u0", "u1", "u2", "u3", "u4", "u5", "u6"}));

  // A page that ends exactly at the last user has no next cursor.
  req = {};
  req.after = "u3";
  req.limit = 3;
  auto last = store_->ListUsers("acme", req);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(Usernames(last->items), (std::vector<std::string>{"u4", "u5", "u6"}));
  EXPECT_FALSE(last->next.has_value());

  EXPECT_EQ(Usernames(store_->ListUsers("other", {})->items), (std::vector<std::string>{"u1", "x9"}));
  // "" lists staff, and only staff.
  auto staff = store_->ListUsers("", {});
  ASSERT_TRUE(staff.ok());
  EXPECT_EQ(Usernames(staff->items), (std::vector<std::string>{"ops", "u2"}));
  for (const auto& u : staff->items) EXPECT_EQ(u.tenant_id, "");
  ExpectSameUser(staff->items[0], User("", "ops"));
  EXPECT_TRUE(store_->ListUsers("nobody", {})->items.empty());
}

TEST_P(StoreConformanceTest, UserUpdateCompareAndSet) {
  MakeTenant("acme");
  UserRow alice = User("acme", "alice");
  ASSERT_TRUE(store_->CreateUser(alice, nullptr).ok());

  UserRow next = alice;
  next.version = 2;
  next.roles_json = R"(["admin","reader"])";
  next.password_hash = "$argon2id$new";
  next.password_changed_at = 1700002000;
  next.password_history_json = R"(["$argon2id$v=19$old","$argon2id$older"])";
  next.totp_secret_sealed = B("sealed-secret-2");
  next.totp_confirmed = false;
  next.totp_last_step = 56666700;
  next.recovery_codes_json = "[]";
  next.failed_count = 0;
  next.failed_window_start = 0;
  next.locked_until = 0;
  next.disabled = true;
  next.updated_at = 1700002000;
  Status s = store_->UpdateUser(next, 1, nullptr, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameUser(*store_->GetUser("acme", "alice"), next);

  // A stale writer (expected version 1 again) loses and changes nothing.
  UserRow stale = alice;
  stale.version = 2;
  stale.failed_count = 5;
  s = store_->UpdateUser(stale, 1, nullptr, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
  ExpectSameUser(*store_->GetUser("acme", "alice"), next);

  // The next version must be expected + 1.
  UserRow skip = next;
  skip.version = 5;
  EXPECT_EQ(store_->UpdateUser(skip, 2, nullptr, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetUser("acme", "alice")->version, 2);

  UserRow missing = User("acme", "nobody");
  missing.version = 2;
  EXPECT_EQ(store_->UpdateUser(missing, 1, nullptr, nullptr).code(), StatusCode::kNotFound);
  // The same name as staff is another user.
  UserRow staff = User("", "alice");
  staff.version = 2;
  EXPECT_EQ(store_->UpdateUser(staff, 1, nullptr, nullptr).code(), StatusCode::kNotFound);

  // created_at stays what CreateUser wrote.
  UserRow third = next;
  third.version = 3;
  third.created_at = 1;
  ASSERT_TRUE(store_->UpdateUser(third, 2, nullptr, nullptr).ok());
  EXPECT_EQ(store_->GetUser("acme", "alice")->created_at, alice.created_at);
  EXPECT_EQ(store_->GetUser("acme", "alice")->version, 3);
}

TEST_P(StoreConformanceTest, UpdateUserOpensItsSessionAtomically) {
  MakeTenant("acme");
  ASSERT_TRUE(store_->CreateUser(User("acme", "alice"), nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(User("acme", "bob"), nullptr).ok());

  // A sign-in: counters reset, session opened, in one call.
  UserRow signed_in = *store_->GetUser("acme", "alice");
  signed_in.version = 2;
  signed_in.failed_count = 0;
  SessionRow session = Session("acme", "alice", "token-hash-1");
  Status s = store_->UpdateUser(signed_in, 1, &session, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store_->GetUser("acme", "alice")->failed_count, 0);
  auto found = store_->FindSession(B("token-hash-1"));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->username, "alice");

  // A version conflict opens no session.
  UserRow stale = signed_in;
  SessionRow lost = Session("acme", "alice", "token-hash-2");
  EXPECT_EQ(store_->UpdateUser(stale, 1, &lost, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->FindSession(B("token-hash-2")).status().code(), StatusCode::kNotFound);

  // A session that cannot be inserted (its hash is taken) undoes the update.
  UserRow next = signed_in;
  next.version = 3;
  next.failed_count = 4;
  SessionRow taken = Session("acme", "alice", "token-hash-1");
  taken.method = "kerberos";
  EXPECT_EQ(store_->UpdateUser(next, 2, &taken, nullptr).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUser("acme", "alice")->version, 2);
  EXPECT_EQ(store_->GetUser("acme", "alice")->failed_count, 0);
  EXPECT_EQ(store_->FindSession(B("token-hash-1"))->method, "password+totp");

  // A session of another user, or without a token hash, is refused.
  SessionRow bobs = Session("acme", "bob", "token-hash-3");
  EXPECT_EQ(store_->UpdateUser(next, 2, &bobs, nullptr).code(), StatusCode::kInvalidArgument);
  SessionRow staffs = Session("", "alice", "token-hash-3");
  EXPECT_EQ(store_->UpdateUser(next, 2, &staffs, nullptr).code(), StatusCode::kInvalidArgument);
  SessionRow no_hash = Session("acme", "alice", "");
  EXPECT_EQ(store_->UpdateUser(next, 2, &no_hash, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->FindSession(B("token-hash-3")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUser("acme", "alice")->version, 2);
}

TEST_P(StoreConformanceTest, DeleteUserRemovesTheirSessions) {
  MakeTenant("acme");
  UserRow alice = User("acme", "alice");
  ASSERT_TRUE(store_->CreateUser(alice, nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(User("acme", "bob"), nullptr).ok());
  ASSERT_TRUE(store_->CreateUser(User("", "alice"), nullptr).ok());
  std::int64_t version = 1;
  for (const char* hash : {"a1", "a2"}) {
    UserRow u = alice;
    u.version = version + 1;
    SessionRow session = Session("acme", "alice", hash);
    ASSERT_TRUE(store_->UpdateUser(u, version, &session, nullptr).ok());
    ++version;
  }
  UserRow bob = User("acme", "bob");
  bob.version = 2;
  SessionRow bob_session = Session("acme", "bob", "b1");
  ASSERT_TRUE(store_->UpdateUser(bob, 1, &bob_session, nullptr).ok());
  UserRow staff = User("", "alice");
  staff.version = 2;
  SessionRow staff_session = Session("", "alice", "s1");
  ASSERT_TRUE(store_->UpdateUser(staff, 1, &staff_session, nullptr).ok());

  ASSERT_TRUE(store_->DeleteUser("acme", "alice", nullptr).ok());
  EXPECT_EQ(store_->GetUser("acme", "alice").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindSession(B("a1")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindSession(B("a2")).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->FindSession(B("b1")).ok());
  EXPECT_TRUE(store_->FindSession(B("s1")).ok());
  EXPECT_TRUE(store_->GetUser("", "alice").ok());

  EXPECT_EQ(store_->DeleteUser("acme", "alice", nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteUser("acme", "nobody", nullptr).code(), StatusCode::kNotFound);

  // The name can be reused and starts without sessions.
  ASSERT_TRUE(store_->CreateUser(alice, nullptr).ok());
  EXPECT_EQ(*store_->RevokeUserSessions("acme", "alice", 1700009000, nullptr), 0);
}

TEST_P(StoreConformanceTest, DeleteTenantRemovesItsUsersAndSessions) {
  for (const char* id : {"gone", "kept"}) {
    MakeTenant(id);
    ASSERT_TRUE(store_->CreateUser(User(id, "alice"), nullptr).ok());
    UserRow u = User(id, "alice");
    u.version = 2;
    SessionRow session = Session(id, "alice", std::string("session-") + id);
    ASSERT_TRUE(store_->UpdateUser(u, 1, &session, nullptr).ok());
  }
  ASSERT_TRUE(store_->CreateUser(User("", "alice"), nullptr).ok());
  UserRow staff = User("", "alice");
  staff.version = 2;
  SessionRow staff_session = Session("", "alice", "session-staff");
  ASSERT_TRUE(store_->UpdateUser(staff, 1, &staff_session, nullptr).ok());

  ASSERT_TRUE(store_->DeleteTenant("gone", nullptr).ok());

  EXPECT_EQ(store_->GetUser("gone", "alice").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListUsers("gone", {})->items.empty());
  EXPECT_EQ(store_->FindSession(B("session-gone")).status().code(), StatusCode::kNotFound);
  // The other tenant and staff are untouched.
  EXPECT_TRUE(store_->GetUser("kept", "alice").ok());
  EXPECT_TRUE(store_->FindSession(B("session-kept")).ok());
  EXPECT_TRUE(store_->GetUser("", "alice").ok());
  EXPECT_TRUE(store_->FindSession(B("session-staff")).ok());

  // The id can be reused and starts without users.
  MakeTenant("gone");
  EXPECT_TRUE(store_->ListUsers("gone", {})->items.empty());
  EXPECT_TRUE(store_->CreateUser(User("gone", "alice"), nullptr).ok());
}

// --- Sessions

class SessionConformance : public StoreConformanceTest {
 protected:
  // Opens `hash` for tenant/name (creating the user on first use).
  void Open(const std::string& tenant, const std::string& name, const std::string& hash) {
    auto user = store_->GetUser(tenant, name);
    if (!user.ok()) {
      ASSERT_TRUE(store_->CreateUser(User(tenant, name), nullptr).ok());
      user = store_->GetUser(tenant, name);
      ASSERT_TRUE(user.ok());
    }
    UserRow next = *user;
    next.version = user->version + 1;
    SessionRow session = Session(tenant, name, hash);
    Status s = store_->UpdateUser(next, user->version, &session, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
};

TEST_P(SessionConformance, FindTouchUpdate) {
  MakeTenant("acme");
  Open("acme", "alice", "h1");
  EXPECT_EQ(store_->FindSession(B("nope")).status().code(), StatusCode::kNotFound);

  auto found = store_->FindSession(B("h1"));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  SessionRow want = Session("acme", "alice", "h1");
  EXPECT_EQ(found->token_hash, want.token_hash);
  EXPECT_EQ(found->tenant_id, "acme");
  EXPECT_EQ(found->username, "alice");
  EXPECT_EQ(found->method, want.method);
  EXPECT_EQ(found->restriction, "");
  EXPECT_EQ(found->created_at, want.created_at);
  EXPECT_EQ(found->last_seen_at, want.last_seen_at);
  EXPECT_EQ(found->expires_at, want.expires_at);
  EXPECT_EQ(found->authenticated_at, want.authenticated_at);
  EXPECT_FALSE(found->revoked_at.has_value());

  // Touch only moves forward; an older or equal time is OK and changes nothing.
  ASSERT_TRUE(store_->TouchSession(B("h1"), 1700002000).ok());
  EXPECT_EQ(store_->FindSession(B("h1"))->last_seen_at, 1700002000);
  Status s = store_->TouchSession(B("h1"), 1700001500);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store_->FindSession(B("h1"))->last_seen_at, 1700002000);
  EXPECT_TRUE(store_->TouchSession(B("h1"), 1700002000).ok());
  EXPECT_EQ(store_->FindSession(B("h1"))->last_seen_at, 1700002000);
  EXPECT_EQ(store_->TouchSession(B("nope"), 1700003000).code(), StatusCode::kNotFound);

  // The non-blocking form completes once with what TouchSession returns.
  auto touch_async = [&](const std::string& hash, std::int64_t at) {
    std::promise<Status> completed;
    std::future<Status> result = completed.get_future();
    store_->TouchSessionAsync(B(hash), at, [&completed](Status s) { completed.set_value(std::move(s)); });
    EXPECT_EQ(result.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return result.get();
  };
  s = touch_async("h1", 1700002100);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store_->FindSession(B("h1"))->last_seen_at, 1700002100);
  s = touch_async("h1", 1700002050);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store_->FindSession(B("h1"))->last_seen_at, 1700002100);
  EXPECT_EQ(touch_async("nope", 1700003000).code(), StatusCode::kNotFound);

  // UpdateSession replaces method, restriction and authenticated_at only.
  SessionRow step_up = *store_->FindSession(B("h1"));
  step_up.method = "kerberos";
  step_up.restriction = "password_change";
  step_up.authenticated_at = 1700002500;
  step_up.created_at = 1;
  step_up.last_seen_at = 1;
  step_up.expires_at = 1;
  step_up.username = "mallory";
  ASSERT_TRUE(store_->UpdateSession(step_up, nullptr).ok());
  auto updated = store_->FindSession(B("h1"));
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->method, "kerberos");
  EXPECT_EQ(updated->restriction, "password_change");
  EXPECT_EQ(updated->authenticated_at, 1700002500);
  EXPECT_EQ(updated->username, "alice");
  EXPECT_EQ(updated->created_at, want.created_at);
  EXPECT_EQ(updated->last_seen_at, 1700002100);
  EXPECT_EQ(updated->expires_at, want.expires_at);
  // Finishing the restricted sign-in clears the restriction.
  step_up.restriction = "";
  ASSERT_TRUE(store_->UpdateSession(step_up, nullptr).ok());
  EXPECT_EQ(store_->FindSession(B("h1"))->restriction, "");

  SessionRow missing = Session("acme", "alice", "nope");
  EXPECT_EQ(store_->UpdateSession(missing, nullptr).code(), StatusCode::kNotFound);
}

TEST_P(SessionConformance, RevokeOnce) {
  MakeTenant("acme");
  Open("acme", "alice", "h1");
  Open("acme", "alice", "h2");

  ASSERT_TRUE(store_->RevokeSession(B("h1"), 1700003000, nullptr).ok());
  // Revoked sessions are still found, with their revocation time.
  auto revoked = store_->FindSession(B("h1"));
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at, std::optional<std::int64_t>(1700003000));
  EXPECT_FALSE(store_->FindSession(B("h2"))->revoked_at.has_value());

  // A second revocation is NotFound and keeps the first time.
  EXPECT_EQ(store_->RevokeSession(B("h1"), 1700004000, nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->FindSession(B("h1"))->revoked_at, std::optional<std::int64_t>(1700003000));
  EXPECT_EQ(store_->RevokeSession(B("nope"), 1700004000, nullptr).code(), StatusCode::kNotFound);
}

TEST_P(SessionConformance, RevokeUserSessionsCountsAndIsolates) {
  MakeTenant("acme");
  MakeTenant("other");
  for (const char* hash : {"a1", "a2", "a3"}) Open("acme", "alice", hash);
  Open("acme", "bob", "b1");
  Open("", "alice", "s1");
  Open("other", "alice", "o1");
  ASSERT_TRUE(store_->RevokeSession(B("a3"), 1700003000, nullptr).ok());

  auto count = store_->RevokeUserSessions("acme", "alice", 1700005000, nullptr);
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, 2);
  EXPECT_EQ(store_->FindSession(B("a1"))->revoked_at, std::optional<std::int64_t>(1700005000));
  EXPECT_EQ(store_->FindSession(B("a2"))->revoked_at, std::optional<std::int64_t>(1700005000));
  // Already revoked: keeps its own time.
  EXPECT_EQ(store_->FindSession(B("a3"))->revoked_at, std::optional<std::int64_t>(1700003000));
  // Other users, staff of the same name and other tenants are untouched.
  for (const char* hash : {"b1", "s1", "o1"}) {
    EXPECT_FALSE(store_->FindSession(B(hash))->revoked_at.has_value()) << hash;
  }

  EXPECT_EQ(*store_->RevokeUserSessions("acme", "alice", 1700006000, nullptr), 0);
  EXPECT_EQ(*store_->RevokeUserSessions("acme", "nobody", 1700006000, nullptr), 0);
  EXPECT_EQ(*store_->RevokeUserSessions("", "alice", 1700006000, nullptr), 1);
  EXPECT_FALSE(store_->FindSession(B("o1"))->revoked_at.has_value());
}

TEST_P(SessionConformance, PurgeEndedSessionsDeletesOnlyEndedOnesWithTheirEntry) {
  MakeTenant("acme");
  // Every session of Open() expires at 1700044200.
  for (const char* hash : {"e1", "e2", "e3", "e4", "revoked"}) Open("acme", "alice", hash);
  Open("", "staff", "s1");
  ASSERT_TRUE(store_->RevokeSession(B("revoked"), 1700002000, nullptr).ok());
  const std::int64_t size = *store_->AuditSize();

  // Before any expiry only the revoked one has ended.
  testing::TestEvent event;
  event.payload = "purge";
  testing::TestLink first(event);
  auto purged = store_->PurgeEndedSessions(1700003000, 10, &first);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(store_->FindSession(B("revoked")).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->FindSession(B("e1")).ok());
  EXPECT_EQ(*store_->AuditSize(), size + 1);  // the entry, with the delete

  // Nothing more has ended: NotFound, and no entry.
  testing::TestLink none(event);
  EXPECT_EQ(store_->PurgeEndedSessions(1700003000, 10, &none).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->AuditSize(), size + 1);

  // After the expiry, in batches of `limit`, staff sessions included.
  std::vector<std::unique_ptr<testing::TestLink>> links;
  int total = 0;
  for (;;) {
    links.push_back(std::make_unique<testing::TestLink>(event));
    auto batch = store_->PurgeEndedSessions(1700044201, 2, links.back().get());
    if (batch.status().code() == StatusCode::kNotFound) break;
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    EXPECT_LE(*batch, 2);
    total += *batch;
  }
  EXPECT_EQ(total, 5);  // e1…e4 and the staff session s1
  for (const char* hash : {"e1", "e2", "e3", "e4", "s1"}) {
    EXPECT_EQ(store_->FindSession(B(hash)).status().code(), StatusCode::kNotFound) << hash;
  }
  EXPECT_EQ(*store_->AuditSize(), size + 1 + 3);  // batches of 2, 2, 1
  EXPECT_TRUE(store_->GetUser("acme", "alice").ok());  // users stay
  EXPECT_EQ(store_->PurgeEndedSessions(1700044201, 0, nullptr).status().code(), StatusCode::kInvalidArgument);
}

// --- Concurrency

TEST_P(StoreConformanceTest, ConcurrentCompareAndSetUpdates) {
  constexpr int kThreads = 16;
  constexpr int kUpdatesPerThread = 200;
  MakeTenant("acme");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "hot", 1, "initial"), nullptr).ok());

  std::vector<std::vector<std::int64_t>> written(kThreads);
  std::atomic<int> conflicts{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kUpdatesPerThread;) {
        auto cur = store_->GetRecord("acme", "people", "hot", std::nullopt);
        if (!cur.ok()) {
          ++errors;
          return;
        }
        std::int64_t next = cur->current_version + 1;
        RecordWrite w = Record("acme", "people", "hot", next,
                               "t" + std::to_string(t) + "-v" + std::to_string(next));
        Status s = store_->UpdateRecord(w, cur->current_version, nullptr);
        if (s.ok()) {
          written[t].push_back(next);
          ++i;
        } else if (s.code() == StatusCode::kAborted) {
          ++conflicts;
        } else {
          ++errors;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);

  std::set<std::int64_t> all;
  std::size_t successes = 0;
  for (const auto& v : written) {
    successes += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(successes, static_cast<std::size_t>(kThreads * kUpdatesPerThread));
  // No version was written twice, and none is missing.
  EXPECT_EQ(all.size(), successes);
  EXPECT_EQ(*all.begin(), 2);
  EXPECT_EQ(*all.rbegin(), static_cast<std::int64_t>(successes) + 1);

  auto final_row = store_->GetRecord("acme", "people", "hot", std::nullopt);
  ASSERT_TRUE(final_row.ok());
  EXPECT_EQ(final_row->current_version, static_cast<std::int64_t>(successes) + 1);
  // The stored content of the last version is the one its writer wrote.
  int last_writer = -1;
  for (int t = 0; t < kThreads; ++t) {
    if (std::find(written[t].begin(), written[t].end(), final_row->current_version) != written[t].end()) {
      last_writer = t;
    }
  }
  ASSERT_GE(last_writer, 0);
  EXPECT_EQ(final_row->ciphertext, B("t" + std::to_string(last_writer) + "-v" +
                                     std::to_string(final_row->current_version)));
  EXPECT_EQ(store_->ListVersions("acme", "people", "hot")->size(), 10u);
}

// --- Lockbox

// A request with every column set to something other than its default, so a
// column that is not stored or read back shows up.
AccessRequestRow Request(const std::string& tenant, const std::string& id, const std::string& requester = "bob",
                         const std::string& status = "pending") {
  AccessRequestRow r;
  r.id = id;
  r.tenant_id = tenant;
  r.requester = requester;
  r.permissions_json = R"(["record.read","record.list"])";
  r.collections_json = R"(["people"])";
  r.duration_s = 7200;
  r.reason = "customer_support";
  r.detail = "Ticket asks why the export failed";
  r.ticket = "SUP-" + id;
  r.status = status;
  r.required_approvals = 2;
  r.approvals = {{"user:" + tenant + "/alice", 1700000600}};
  r.created_at = 1700000500;
  r.expires_at = 1700000500 + 12 * 3600;
  r.grant_starts_at = 0;
  r.grant_ends_at = 0;
  r.decided_by = "";
  r.decided_at = 0;
  r.decision_reason = "";
  r.version = 1;
  return r;
}

// An approved request: a grant over [starts, ends).
AccessRequestRow Grant(const std::string& tenant, const std::string& id, const std::string& requester,
                       std::int64_t starts, std::int64_t ends, const std::string& status = "approved") {
  AccessRequestRow r = Request(tenant, id, requester, status);
  r.approvals = {{"user:" + tenant + "/alice", starts - 10}, {"staff:carol", starts}};
  r.grant_starts_at = starts;
  r.grant_ends_at = ends;
  r.decided_by = "staff:carol";
  r.decided_at = starts;
  return r;
}

OutboxRow Notification(const std::string& tenant, const std::string& url, std::int64_t next_attempt_at = 1700000500,
                       const std::string& payload = R"({"event":"access_request.created"})") {
  OutboxRow n;
  n.tenant_id = tenant;
  n.url = url;
  n.payload_json = payload;
  n.next_attempt_at = next_attempt_at;
  return n;
}

void ExpectSameRequest(const AccessRequestRow& got, const AccessRequestRow& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.tenant_id, want.tenant_id);
  EXPECT_EQ(got.requester, want.requester);
  EXPECT_EQ(got.permissions_json, want.permissions_json);
  EXPECT_EQ(got.collections_json, want.collections_json);
  EXPECT_EQ(got.duration_s, want.duration_s);
  EXPECT_EQ(got.reason, want.reason);
  EXPECT_EQ(got.detail, want.detail);
  EXPECT_EQ(got.ticket, want.ticket);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.required_approvals, want.required_approvals);
  ASSERT_EQ(got.approvals.size(), want.approvals.size());
  for (std::size_t i = 0; i < want.approvals.size(); ++i) {
    EXPECT_EQ(got.approvals[i].approver, want.approvals[i].approver) << i;
    EXPECT_EQ(got.approvals[i].at, want.approvals[i].at) << i;
  }
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.expires_at, want.expires_at);
  EXPECT_EQ(got.grant_starts_at, want.grant_starts_at);
  EXPECT_EQ(got.grant_ends_at, want.grant_ends_at);
  EXPECT_EQ(got.decided_by, want.decided_by);
  EXPECT_EQ(got.decided_at, want.decided_at);
  EXPECT_EQ(got.decision_reason, want.decision_reason);
  EXPECT_EQ(got.version, want.version);
}

std::vector<std::string> RequestIds(const std::vector<AccessRequestRow>& rows) {
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(r.id);
  return ids;
}

std::vector<std::string> Urls(const std::vector<OutboxRow>& rows) {
  std::vector<std::string> urls;
  for (const auto& n : rows) urls.push_back(n.url);
  return urls;
}

TEST_P(StoreConformanceTest, AccessRequestCreateGetDuplicate) {
  MakeTenant("acme");
  MakeTenant("beta");
  AccessRequestRow r = Request("acme", "req-1");
  Status s = store_->CreateAccessRequest(r, {}, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto got = store_->GetAccessRequest("acme", "req-1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameRequest(*got, r);

  // A duplicate id in the tenant is refused and changes nothing.
  AccessRequestRow dup = Request("acme", "req-1", "mallory");
  dup.detail = "other";
  EXPECT_EQ(store_->CreateAccessRequest(dup, {}, nullptr).code(), StatusCode::kAlreadyExists);
  ExpectSameRequest(*store_->GetAccessRequest("acme", "req-1"), r);

  // Requests are keyed per tenant: another tenant's request is not found
  // under this one.
  EXPECT_EQ(store_->GetAccessRequest("beta", "req-1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-2").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateAccessRequest(Request("beta", "req-1", "dave"), {}, nullptr).ok());
  EXPECT_EQ(store_->GetAccessRequest("beta", "req-1")->requester, "dave");
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-1")->requester, "bob");

  // The tenant must exist.
  EXPECT_EQ(store_->CreateAccessRequest(Request("nobody", "req-9"), {}, nullptr).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetAccessRequest("nobody", "req-9").status().code(), StatusCode::kNotFound);

  // Refused arguments: no id, tenant or requester, a status that is never
  // stored ("expired" follows from the times), a version below 1.
  AccessRequestRow bad = Request("acme", "");
  EXPECT_EQ(store_->CreateAccessRequest(bad, {}, nullptr).code(), StatusCode::kInvalidArgument);
  bad = Request("", "req-3");
  EXPECT_EQ(store_->CreateAccessRequest(bad, {}, nullptr).code(), StatusCode::kInvalidArgument);
  bad = Request("acme", "req-3", "");
  EXPECT_EQ(store_->CreateAccessRequest(bad, {}, nullptr).code(), StatusCode::kInvalidArgument);
  bad = Request("acme", "req-3", "bob", "expired");
  EXPECT_EQ(store_->CreateAccessRequest(bad, {}, nullptr).code(), StatusCode::kInvalidArgument);
  bad = Request("acme", "req-3");
  bad.version = 0;
  EXPECT_EQ(store_->CreateAccessRequest(bad, {}, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-3").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, AccessRequestApprovalsRoundTrip) {
  MakeTenant("acme");
  // None, and several with awkward text and large times, in their order.
  AccessRequestRow none = Request("acme", "a-none");
  none.approvals.clear();
  AccessRequestRow many = Request("acme", "a-many");
  many.approvals = {{"user:acme/zoë \"quoted\" \\ back", 1700000700},
                    {"staff:carol", 0},
                    {"user:acme/alice", 4102444800},
                    {"staff:\xe6\x97\xa5\xe6\x9c\xac", 1700000800}};
  for (const auto& r : {none, many}) {
    Status s = store_->CreateAccessRequest(r, {}, nullptr);
    ASSERT_TRUE(s.ok()) << r.id << ": " << s.ToString();
    auto got = store_->GetAccessRequest("acme", r.id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameRequest(*got, r);
  }
  // An approval appended by an update comes back too.
  AccessRequestRow next = many;
  next.version = 2;
  next.approvals.push_back({"user:acme/erin", 1700000900});
  ASSERT_TRUE(store_->UpdateAccessRequest(next, 1, nullptr).ok());
  ExpectSameRequest(*store_->GetAccessRequest("acme", "a-many"), next);

  // An approver that is not UTF-8 cannot be stored as JSON text: refused.
  AccessRequestRow bad = Request("acme", "a-bad");
  bad.approvals = {{std::string("user:acme/\xff\xfe"), 1}};
  EXPECT_EQ(store_->CreateAccessRequest(bad, {}, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetAccessRequest("acme", "a-bad").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, ListAccessRequestsNewestFirstFilteredAndPaged) {
  MakeTenant("acme");
  MakeTenant("beta");
  // Ids grow with time; inserted out of order, listed newest first.
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"r03", "denied"}, {"r01", "pending"}, {"r07", "approved"}, {"r05", "denied"},
      {"r02", "approved"}, {"r06", "pending"}, {"r04", "revoked"}};
  for (const auto& [id, status] : requests) {
    ASSERT_TRUE(store_->CreateAccessRequest(Request("acme", id, "bob", status), {}, nullptr).ok()) << id;
  }
  // Another tenant's requests never show up, even with ids in between.
  for (const char* id : {"r00", "r035", "r99"}) {
    ASSERT_TRUE(store_->CreateAccessRequest(Request("beta", id), {}, nullptr).ok());
  }

  auto all = store_->ListAccessRequests("acme", "", {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(RequestIds(all->items), (std::vector<std::string>{"r07", "r06", "r05", "r04", "r03", "r02", "r01"}));
  EXPECT_FALSE(all->next.has_value());
  ExpectSameRequest(all->items[0], Request("acme", "r07", "bob", "approved"));

  // Pages of 3: each next is the last id of its page; the keyset runs down.
  std::vector<std::string> paged;
  std::vector<std::size_t> sizes;
  PageRequest page{"", 3};
  for (int guard = 0; guard < 10; ++guard) {
    auto p = store_->ListAccessRequests("acme", "", page);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    sizes.push_back(p->items.size());
    for (const auto& r : p->items) paged.push_back(r.id);
    if (!p->next) break;
    EXPECT_EQ(*p->next, p->items.back().id);
    page.after = *p->next;
  }
  EXPECT_EQ(paged, RequestIds(all->items));
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));

  // An exact fit ends without a next.
  auto fit = store_->ListAccessRequests("acme", "", {"r04", 3});
  ASSERT_TRUE(fit.ok());
  EXPECT_EQ(RequestIds(fit->items), (std::vector<std::string>{"r03", "r02", "r01"}));
  EXPECT_FALSE(fit->next.has_value());
  // `after` need not be an existing id: everything older than it.
  EXPECT_EQ(RequestIds(store_->ListAccessRequests("acme", "", {"r045", 10})->items),
            (std::vector<std::string>{"r04", "r03", "r02", "r01"}));
  EXPECT_TRUE(store_->ListAccessRequests("acme", "", {"r01", 10})->items.empty());

  // The stored status filters, with its own paging.
  EXPECT_EQ(RequestIds(store_->ListAccessRequests("acme", "pending", {})->items),
            (std::vector<std::string>{"r06", "r01"}));
  EXPECT_EQ(RequestIds(store_->ListAccessRequests("acme", "revoked", {})->items), (std::vector<std::string>{"r04"}));
  auto denied = store_->ListAccessRequests("acme", "denied", {"", 1});
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(RequestIds(denied->items), (std::vector<std::string>{"r05"}));
  ASSERT_TRUE(denied->next.has_value());
  auto denied2 = store_->ListAccessRequests("acme", "denied", {*denied->next, 1});
  ASSERT_TRUE(denied2.ok());
  EXPECT_EQ(RequestIds(denied2->items), (std::vector<std::string>{"r03"}));
  // A full last page may still say next; the page after it is empty.
  if (denied2->next) {
    EXPECT_TRUE(store_->ListAccessRequests("acme", "denied", {*denied2->next, 1})->items.empty());
  }
  EXPECT_EQ(RequestIds(store_->ListAccessRequests("acme", "approved", {"r07", 10})->items),
            (std::vector<std::string>{"r02"}));
  // "expired" is never stored, so it matches nothing here.
  EXPECT_TRUE(store_->ListAccessRequests("acme", "expired", {})->items.empty());

  EXPECT_EQ(RequestIds(store_->ListAccessRequests("beta", "", {})->items),
            (std::vector<std::string>{"r99", "r035", "r00"}));
  EXPECT_TRUE(store_->ListAccessRequests("nobody", "", {})->items.empty());
}

TEST_P(StoreConformanceTest, ActiveGrantsAreTheApprovedWindowsContainingNow) {
  MakeTenant("acme");
  MakeTenant("beta");
  constexpr std::int64_t kStart = 1700010000;
  constexpr std::int64_t kEnd = 1700017200;
  ASSERT_TRUE(store_->CreateAccessRequest(Grant("acme", "g1", "bob", kStart, kEnd), {}, nullptr).ok());
  // Not bob's grants on acme: another requester, another tenant, and bob's
  // requests on acme that are not approved (same window).
  ASSERT_TRUE(store_->CreateAccessRequest(Grant("acme", "g2", "dave", kStart, kEnd), {}, nullptr).ok());
  ASSERT_TRUE(store_->CreateAccessRequest(Grant("beta", "g3", "bob", kStart, kEnd), {}, nullptr).ok());
  for (const char* status : {"denied", "revoked", "pending"}) {
    ASSERT_TRUE(store_->CreateAccessRequest(Grant("acme", std::string("x-") + status, "bob", kStart, kEnd, status),
                                            {}, nullptr)
                    .ok());
  }

  auto ids_at = [&](const std::string& tenant, const std::string& requester, std::int64_t now) {
    auto grants = store_->ActiveGrants(tenant, requester, now);
    EXPECT_TRUE(grants.ok()) << grants.status().ToString();
    return grants.ok() ? RequestIds(*grants) : std::vector<std::string>{"error"};
  };
  using Ids = std::vector<std::string>;
  // The window is [start, end): the start is in it, the end is not.
  EXPECT_EQ(ids_at("acme", "bob", kStart - 1), Ids{});
  EXPECT_EQ(ids_at("acme", "bob", kStart), Ids{"g1"});
  EXPECT_EQ(ids_at("acme", "bob", kStart + 3600), Ids{"g1"});
  EXPECT_EQ(ids_at("acme", "bob", kEnd - 1), Ids{"g1"});
  EXPECT_EQ(ids_at("acme", "bob", kEnd), Ids{});
  EXPECT_EQ(ids_at("acme", "dave", kStart), Ids{"g2"});
  EXPECT_EQ(ids_at("beta", "bob", kStart), Ids{"g3"});
  EXPECT_EQ(ids_at("beta", "dave", kStart), Ids{});
  EXPECT_EQ(ids_at("acme", "carol", kStart), Ids{});
  EXPECT_EQ(ids_at("nobody", "bob", kStart), Ids{});

  // The rows come back whole.
  auto grants = store_->ActiveGrants("acme", "bob", kStart);
  ASSERT_TRUE(grants.ok());
  ASSERT_EQ(grants->size(), 1u);
  ExpectSameRequest(grants->front(), Grant("acme", "g1", "bob", kStart, kEnd));

  // Overlapping grants are all active where they overlap.
  ASSERT_TRUE(store_->CreateAccessRequest(Grant("acme", "g0", "bob", kStart + 60, kEnd + 60), {}, nullptr).ok());
  EXPECT_EQ(ids_at("acme", "bob", kStart + 60), (Ids{"g0", "g1"}));
  EXPECT_EQ(ids_at("acme", "bob", kEnd), Ids{"g0"});

  // Revoking (an update of the stored status) ends the grant at once.
  AccessRequestRow revoked = Grant("acme", "g1", "bob", kStart, kEnd);
  revoked.status = "revoked";
  revoked.decided_by = "user:acme/alice";
  revoked.decision_reason = "done";
  revoked.version = 2;
  ASSERT_TRUE(store_->UpdateAccessRequest(revoked, 1, nullptr).ok());
  EXPECT_EQ(ids_at("acme", "bob", kStart + 120), Ids{"g0"});
}

TEST_P(StoreConformanceTest, AccessRequestUpdateCompareAndSet) {
  MakeTenant("acme");
  MakeTenant("beta");
  AccessRequestRow r = Request("acme", "req-1");
  ASSERT_TRUE(store_->CreateAccessRequest(r, {}, nullptr).ok());

  // The second approval makes the grant.
  AccessRequestRow approved = r;
  approved.version = 2;
  approved.status = "approved";
  approved.approvals.push_back({"staff:carol", 1700001000});
  approved.grant_starts_at = 1700001000;
  approved.grant_ends_at = 1700008200;
  approved.decided_by = "staff:carol";
  approved.decided_at = 1700001000;
  Status s = store_->UpdateAccessRequest(approved, 1, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameRequest(*store_->GetAccessRequest("acme", "req-1"), approved);

  // A concurrent deny read version 1 too: it loses and changes nothing.
  AccessRequestRow denied = r;
  denied.version = 2;
  denied.status = "denied";
  denied.decision_reason = "not needed";
  EXPECT_EQ(store_->UpdateAccessRequest(denied, 1, nullptr).code(), StatusCode::kAborted);
  ExpectSameRequest(*store_->GetAccessRequest("acme", "req-1"), approved);

  // The new version must be expected + 1, and the row must still be valid.
  AccessRequestRow skip = approved;
  skip.version = 5;
  EXPECT_EQ(store_->UpdateAccessRequest(skip, 2, nullptr).code(), StatusCode::kInvalidArgument);
  AccessRequestRow expired = approved;
  expired.version = 3;
  expired.status = "expired";
  EXPECT_EQ(store_->UpdateAccessRequest(expired, 2, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-1")->version, 2);

  // Absent: NotFound, also for the same id under another tenant.
  AccessRequestRow missing = Request("acme", "req-9");
  missing.version = 2;
  EXPECT_EQ(store_->UpdateAccessRequest(missing, 1, nullptr).code(), StatusCode::kNotFound);
  AccessRequestRow elsewhere = approved;
  elsewhere.tenant_id = "beta";
  EXPECT_EQ(store_->UpdateAccessRequest(elsewhere, 1, nullptr).code(), StatusCode::kNotFound);

  // The requester and created_at stay what CreateAccessRequest wrote.
  AccessRequestRow revoked = approved;
  revoked.version = 3;
  revoked.status = "revoked";
  revoked.requester = "mallory";
  revoked.created_at = 1;
  revoked.decided_by = "user:acme/alice";
  revoked.decided_at = 1700002000;
  revoked.decision_reason = "work finished";
  ASSERT_TRUE(store_->UpdateAccessRequest(revoked, 2, nullptr).ok());
  auto got = store_->GetAccessRequest("acme", "req-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->requester, "bob");
  EXPECT_EQ(got->created_at, r.created_at);
  EXPECT_EQ(got->status, "revoked");
  EXPECT_EQ(got->decision_reason, "work finished");
  EXPECT_EQ(got->version, 3);
}

TEST_P(StoreConformanceTest, ConcurrentDecisionsOnOneRequestHaveOneWinner) {
  constexpr int kThreads = 8;
  MakeTenant("acme");
  ASSERT_TRUE(store_->CreateAccessRequest(Request("acme", "req-1"), {}, nullptr).ok());
  std::atomic<int> won{0};
  std::atomic<int> aborted{0};
  std::atomic<int> errors{0};
  std::vector<int> winner_status(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half approve, half deny, all from version 1.
      AccessRequestRow next = Request("acme", "req-1");
      next.version = 2;
      next.status = t % 2 == 0 ? "approved" : "denied";
      next.decided_by = "user:acme/approver" + std::to_string(t);
      Status s = store_->UpdateAccessRequest(next, 1, nullptr);
      if (s.ok()) {
        ++won;
        winner_status[t] = 1;
      } else if (s.code() == StatusCode::kAborted) {
        ++aborted;
      } else {
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(aborted.load(), kThreads - 1);
  auto got = store_->GetAccessRequest("acme", "req-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  // The stored decision is the winner's, whole.
  int winner = static_cast<int>(std::find(winner_status.begin(), winner_status.end(), 1) - winner_status.begin());
  ASSERT_LT(winner, kThreads);
  EXPECT_EQ(got->decided_by, "user:acme/approver" + std::to_string(winner));
  EXPECT_EQ(got->status, winner % 2 == 0 ? "approved" : "denied");
}

TEST_P(StoreConformanceTest, NotificationsAreInsertedWithTheirRequestOnly) {
  MakeTenant("acme");
  const std::int64_t now = 1700000500;
  OutboxRow first = Notification("acme", "https://hooks.acme.example/lockbox", now,
                                 R"({"event":"access_request.created","id":"req-1"})");
  OutboxRow second = Notification("acme", "https://soc.example/hook", now);
  second.attempts = 0;
  second.last_error = "";
  Status s = store_->CreateAccessRequest(Request("acme", "req-1"), {first, second}, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();

  auto due = store_->DueNotifications(now, 10);
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  ASSERT_EQ(due->size(), 2u);
  // In insertion order, with increasing store-assigned ids, every column back.
  EXPECT_EQ(Urls(*due), (std::vector<std::string>{first.url, second.url}));
  EXPECT_GT((*due)[0].id, 0);
  EXPECT_LT((*due)[0].id, (*due)[1].id);
  EXPECT_EQ((*due)[0].tenant_id, "acme");
  EXPECT_EQ((*due)[0].payload_json, first.payload_json);
  EXPECT_EQ((*due)[0].attempts, 0);
  EXPECT_EQ((*due)[0].next_attempt_at, now);
  EXPECT_FALSE((*due)[0].delivered_at.has_value());
  EXPECT_EQ((*due)[0].last_error, "");

  // A duplicate request inserts none of its notifications.
  EXPECT_EQ(store_->CreateAccessRequest(Request("acme", "req-1"), {Notification("acme", "https://dup.example")},
                                        nullptr)
                .code(),
            StatusCode::kAlreadyExists);
  // Nor does a request for a missing tenant.
  EXPECT_EQ(store_->CreateAccessRequest(Request("nobody", "req-2"), {Notification("nobody", "https://x.example")},
                                        nullptr)
                .code(),
            StatusCode::kNotFound);
  // A notification without a URL is refused, and so is its request.
  EXPECT_EQ(store_->CreateAccessRequest(Request("acme", "req-3"), {Notification("acme", "")}, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-3").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Urls(*store_->DueNotifications(now + 86400, 100)), (std::vector<std::string>{first.url, second.url}));

  // A request without notifications is fine.
  ASSERT_TRUE(store_->CreateAccessRequest(Request("acme", "req-4"), {}, nullptr).ok());
  EXPECT_EQ(store_->DueNotifications(now + 86400, 100)->size(), 2u);
}

TEST_P(StoreConformanceTest, DueNotificationsAndTheirAttempts) {
  MakeTenant("acme");
  MakeTenant("beta");
  const std::int64_t now = 1700001000;
  ASSERT_TRUE(store_->CreateAccessRequest(Request("acme", "req-1"),
                                          {Notification("acme", "https://a.example/1", now - 60),
                                           Notification("acme", "https://a.example/2", now),
                                           Notification("acme", "https://a.example/later", now + 300)},
                                          nullptr)
                  .ok());
  ASSERT_TRUE(store_->CreateAccessRequest(Request("beta", "req-1"),
                                          {Notification("beta", "https://b.example/1", now - 120)}, nullptr)
                  .ok());
  const std::int64_t audit_size = *store_->AuditSize();

  // Due: not delivered and next_attempt_at <= now, oldest (lowest id) first,
  // across tenants, at most `limit`.
  auto due = store_->DueNotifications(now, 10);
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(Urls(*due), (std::vector<std::string>{"https://a.example/1", "https://a.example/2", "https://b.example/1"}));
  EXPECT_EQ(Urls(*store_->DueNotifications(now, 2)),
            (std::vector<std::string>{"https://a.example/1", "https://a.example/2"}));
  EXPECT_EQ(Urls(*store_->DueNotifications(now - 61, 10)), std::vector<std::string>{"https://b.example/1"});
  EXPECT_EQ(Urls(*store_->DueNotifications(now - 121, 10)), std::vector<std::string>{});
  EXPECT_EQ(store_->DueNotifications(now + 300, 10)->size(), 4u);

  // A failed attempt: counted, retried later, with its reason.
  OutboxRow failed = (*due)[0];
  failed.attempts = 1;
  failed.next_attempt_at = now + 30;
  failed.last_error = "HTTP 503";
  Status s = store_->UpdateNotification(failed);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Urls(*store_->DueNotifications(now, 10)),
            (std::vector<std::string>{"https://a.example/2", "https://b.example/1"}));
  auto retry = store_->DueNotifications(now + 30, 10);
  ASSERT_TRUE(retry.ok());
  ASSERT_EQ(retry->size(), 3u);
  EXPECT_EQ((*retry)[0].id, failed.id);
  EXPECT_EQ((*retry)[0].attempts, 1);
  EXPECT_EQ((*retry)[0].next_attempt_at, now + 30);
  EXPECT_EQ((*retry)[0].last_error, "HTTP 503");
  EXPECT_FALSE((*retry)[0].delivered_at.has_value());

  // Delivered: never due again, whatever the time.
  OutboxRow delivered = (*retry)[0];
  delivered.attempts = 2;
  delivered.delivered_at = now + 31;
  delivered.last_error = "";
  ASSERT_TRUE(store_->UpdateNotification(delivered).ok());
  OutboxRow beta = (*due)[2];
  beta.attempts = 1;
  beta.delivered_at = now;
  ASSERT_TRUE(store_->UpdateNotification(beta).ok());
  EXPECT_EQ(Urls(*store_->DueNotifications(now + 86400, 10)),
            (std::vector<std::string>{"https://a.example/2", "https://a.example/later"}));

  // Unknown id: NotFound. Attempts are bookkeeping: no audit entry.
  OutboxRow unknown = delivered;
  unknown.id = delivered.id + 1000000;
  EXPECT_EQ(store_->UpdateNotification(unknown).code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->AuditSize(), audit_size);
}

TEST_P(StoreConformanceTest, DeleteTenantRemovesItsAccessRequestsAndNotifications) {
  constexpr std::int64_t kStart = 1700010000;
  for (const char* id : {"gone", "kept"}) {
    MakeTenant(id);
    ASSERT_TRUE(store_->CreateAccessRequest(Grant(id, "g1", "bob", kStart, kStart + 3600),
                                            {Notification(id, std::string("https://") + id + ".example")}, nullptr)
                    .ok());
    ASSERT_TRUE(store_->CreateAccessRequest(Request(id, "p1"), {}, nullptr).ok());
  }
  // A delivered notification of the deleted tenant goes too.
  ASSERT_TRUE(store_->CreateAccessRequest(Request("gone", "p2"), {Notification("gone", "https://gone.example/2")},
                                          nullptr)
                  .ok());
  std::int64_t highest_id = 0;
  auto before = store_->DueNotifications(kStart, 100);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 3u);
  for (OutboxRow n : *before) {
    highest_id = std::max(highest_id, n.id);
    if (n.url != "https://gone.example/2") continue;
    n.delivered_at = kStart;
    ASSERT_TRUE(store_->UpdateNotification(n).ok());
  }

  ASSERT_TRUE(store_->DeleteTenant("gone", nullptr).ok());
  EXPECT_EQ(store_->GetAccessRequest("gone", "g1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListAccessRequests("gone", "", {})->items.empty());
  EXPECT_TRUE(store_->ActiveGrants("gone", "bob", kStart)->empty());
  EXPECT_EQ(Urls(*store_->DueNotifications(kStart, 100)), (std::vector<std::string>{"https://kept.example"}));
  // The other tenant keeps everything.
  EXPECT_EQ(RequestIds(store_->ListAccessRequests("kept", "", {})->items), (std::vector<std::string>{"p1", "g1"}));
  EXPECT_EQ(RequestIds(*store_->ActiveGrants("kept", "bob", kStart)), (std::vector<std::string>{"g1"}));

  // The id can be reused and starts without requests or notifications;
  // nothing of the deleted tenant can be found through the reused ids.
  MakeTenant("gone");
  EXPECT_TRUE(store_->ListAccessRequests("gone", "", {})->items.empty());
  EXPECT_TRUE(store_->ActiveGrants("gone", "bob", kStart)->empty());
  ASSERT_TRUE(store_->CreateAccessRequest(Request("gone", "g1"), {}, nullptr).ok());
  EXPECT_EQ(store_->GetAccessRequest("gone", "g1")->status, "pending");
  EXPECT_EQ(store_->DueNotifications(kStart, 100)->size(), 1u);

  // An id is never reused, even after the rows with the highest ones were
  // deleted: a delivery worker holding an old id cannot mark a new
  // notification delivered.
  ASSERT_TRUE(store_->CreateAccessRequest(Request("gone", "p3"), {Notification("gone", "https://gone.example/3")},
                                          nullptr)
                  .ok());
  auto due = store_->DueNotifications(kStart, 100);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(Urls(*due), (std::vector<std::string>{"https://kept.example", "https://gone.example/3"}));
  ASSERT_EQ(due->size(), 2u);
  EXPECT_GT((*due)[1].id, highest_id);
}

// --- Audit log

using testing::BrokenLink;
using testing::CheckChain;
using testing::TestEvent;
using testing::TestHash;
using testing::TestLink;

TEST_P(StoreConformanceTest, AuditAppendReadAndLeafHashes) {
  ASSERT_EQ(*store_->AuditSize(), 0);
  auto none = store_->AuditSeqBounds();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_LT(none->highest, none->lowest);  // no rows
  auto empty_head = store_->ReadAuditHeadRow();
  ASSERT_TRUE(empty_head.ok()) << empty_head.status().ToString();
  EXPECT_EQ(empty_head->next_seq, 0);
  EXPECT_TRUE(empty_head->last_hash.empty());
  EXPECT_TRUE(store_->ReadAudit(0, 10)->empty());
  EXPECT_TRUE(store_->AuditLeafHashes(0, 0)->empty());
  EXPECT_EQ(store_->AuditLeafHashes(0, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->LatestAuditCheckpoint().status().code(), StatusCode::kNotFound);

  std::vector<std::unique_ptr<TestLink>> links;
  for (int i = 0; i < 5; ++i) {
    TestEvent e;
    e.payload = "p" + std::to_string(i);
    e.tenant = i % 2 == 0 ? "acme" : "";
    e.principal = "apikey:k" + std::to_string(i);
    e.action = "record.read";
    e.resource = "people/r" + std::to_string(i);
    e.outcome = i == 3 ? "permission_denied" : "success";
    e.at_ms = 1700000000000 + i;
    links.push_back(std::make_unique<TestLink>(e));
    Status s = store_->AppendAudit(*links.back());
    ASSERT_TRUE(s.ok()) << s.ToString();
    // Linked once: SQLite's single writer links each entry exactly once; a
    // retried PostgreSQL transaction may link it again.
    if (GroupCommitStatsForTest(*store_).ok()) {
      EXPECT_EQ(links.back()->calls(), 1);
    } else {
      EXPECT_GE(links.back()->calls(), 1);
    }
  }
  EXPECT_EQ(*store_->AuditSize(), 5);
  auto bounds = store_->AuditSeqBounds();
  ASSERT_TRUE(bounds.ok()) << bounds.status().ToString();
  EXPECT_EQ(bounds->lowest, 0);
  EXPECT_EQ(bounds->highest, 4);

  auto rows = store_->ReadAudit(0, 10);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 5u);
  // The head row counts the entries and names the last one.
  auto head = store_->ReadAuditHeadRow();
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->next_seq, 5);
  EXPECT_EQ(head->last_hash, rows->back().hash);
  const AuditRow& r3 = (*rows)[3];
  EXPECT_EQ(r3.seq, 3);
  EXPECT_EQ(r3.at_ms, 1700000000003);
  EXPECT_EQ(r3.tenant_id, "");
  EXPECT_EQ(r3.principal, "apikey:k3");
  EXPECT_EQ(r3.action, "record.read");
  EXPECT_EQ(r3.resource, "people/r3");
  EXPECT_EQ(r3.outcome, "permission_denied");
  EXPECT_EQ(r3.entry, B("3|" + testing::Hex((*rows)[2].hash) + "|p3"));
  EXPECT_EQ(r3.hash, TestHash(r3.entry));
  EXPECT_EQ((*rows)[0].entry, B("0||p0"));  // seq 0 links to nothing

  auto middle = store_->ReadAudit(2, 2);
  ASSERT_EQ(middle->size(), 2u);
  EXPECT_EQ((*middle)[0].seq, 2);
  EXPECT_EQ((*middle)[1].seq, 3);
  EXPECT_TRUE(store_->ReadAudit(5, 10)->empty());
  EXPECT_TRUE(store_->ReadAudit(0, 0)->empty());
  EXPECT_EQ(store_->ReadAudit(-1, 10).status().code(), StatusCode::kInvalidArgument);

  auto leaves = store_->AuditLeafHashes(1, 4);
  ASSERT_TRUE(leaves.ok()) << leaves.status().ToString();
  ASSERT_EQ(leaves->size(), 3u);
  EXPECT_EQ((*leaves)[0], (*rows)[1].hash);
  EXPECT_EQ((*leaves)[2], (*rows)[3].hash);
  EXPECT_TRUE(store_->AuditLeafHashes(5, 5)->empty());
  EXPECT_EQ(store_->AuditLeafHashes(0, 6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AuditLeafHashes(3, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AuditLeafHashes(-1, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->AuditLeafHashes(6, 6).status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(CheckChain(*store_), (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
}

// The non-blocking forms: each completion comes exactly once with what the
// blocking call would have returned, and the chain is the same one.
TEST_P(StoreConformanceTest, AsyncAppendsAndInsertsCompleteOnce) {
  MakeTenant("acme");
  constexpr int kAppends = 200;
  std::mutex mu;
  std::condition_variable cv;
  int completed = 0;
  int failed = 0;
  auto done = [&](Status s) {
    std::lock_guard lock(mu);
    ++completed;
    if (!s.ok()) ++failed;
    cv.notify_all();
  };
  for (int i = 0; i < kAppends; ++i) {
    store_->AppendAuditAsync(std::make_unique<TestLink>("a" + std::to_string(i)), done);
  }
  RecordWrite w = Record("acme", "people", "r-async", 1, "cipher-async", {{"email", B("h-async")}}, 700);
  store_->InsertRecordAsync(w, std::make_unique<TestLink>("insert"), done);
  // The same id again: AlreadyExists, and its entry is not appended.
  store_->InsertRecordAsync(Record("acme", "people", "r-async", 1, "other"), std::make_unique<TestLink>("dup"), done);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return completed == kAppends + 2; }));
    EXPECT_EQ(failed, 1);  // the duplicate
  }
  auto got = store_->GetRecord("acme", "people", "r-async", std::nullopt);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ciphertext, B("cipher-async"));
  std::vector<std::string> chain = CheckChain(*store_);
  EXPECT_EQ(chain.size(), static_cast<std::size_t>(kAppends + 1));
  EXPECT_EQ(std::count(chain.begin(), chain.end(), "insert"), 1);
  EXPECT_EQ(std::count(chain.begin(), chain.end(), "dup"), 0);
}

TEST_P(StoreConformanceTest, AuditLeafHashesOfThousandsOfEntries) {
  constexpr int kEntries = 3000;
  std::vector<std::unique_ptr<TestLink>> links;
  std::vector<std::thread> threads;
  for (int i = 0; i < kEntries; ++i) links.push_back(std::make_unique<TestLink>("e" + std::to_string(i)));
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kEntries; i = next++) {
        if (!store_->AppendAudit(*links[static_cast<std::size_t>(i)]).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  auto start = std::chrono::steady_clock::now();
  auto leaves = store_->AuditLeafHashes(0, kEntries);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(leaves.ok()) << leaves.status().ToString();
  ASSERT_EQ(leaves->size(), static_cast<std::size_t>(kEntries));
  // One range scan; generous bound for a sanitizer build on a shared machine.
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 1000);
  EXPECT_EQ(CheckChain(*store_).size(), static_cast<std::size_t>(kEntries));
}

TEST_P(StoreConformanceTest, AuditEntryAppendedWithEveryChange) {
  std::vector<std::unique_ptr<TestLink>> links;
  auto link = [&](const std::string& payload) -> const AuditLink* {
    links.push_back(std::make_unique<TestLink>(payload));
    return links.back().get();
  };
  std::int64_t expected = 0;
  auto appended = [&](const std::string& what) {
    auto size = store_->AuditSize();
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, ++expected) << what;
  };
  ASSERT_TRUE(store_->InsertMeta("init", B("x"), link("insert-meta")).ok());
  appended("insert meta");
  ASSERT_TRUE(store_->PutMeta("init", B("y"), link("put-meta")).ok());
  appended("put meta");
  ASSERT_TRUE(store_->CreateTenant(Tenant("acme"), link("create-tenant")).ok());
  appended("create tenant");
  auto created = store_->PutCollection(Collection("acme", "people"), link("put-collection"));
  ASSERT_TRUE(created.ok() && *created);
  appended("put collection");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "c1"), link("insert-record")).ok());
  appended("insert record");
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", 2, "c2"), 1, link("update-record")).ok());
  appended("update record");
  ASSERT_TRUE(store_->DeleteRecord("acme", "people", "r1", link("delete-record")).ok());
  appended("delete record");
  ASSERT_TRUE(store_->PutRole({"acme", "reader", "{}", 1}, link("put-role")).ok());
  appended("put role");
  ASSERT_TRUE(store_->DeleteRole("acme", "reader", link("delete-role")).ok());
  appended("delete role");
  ASSERT_TRUE(store_->CreateApiKey(Key("acme", "k1", "h1"), link("create-key")).ok());
  appended("create api key");
  ASSERT_TRUE(store_->RevokeApiKey("acme", "k1", 5, link("revoke-key")).ok());
  appended("revoke api key");
  ASSERT_TRUE(store_->DeleteTenant("acme", link("delete-tenant")).ok());
  appended("delete tenant");
  // Without an entry (store tests only) nothing is appended.
  ASSERT_TRUE(store_->PutMeta("quiet", B("z"), nullptr).ok());
  EXPECT_EQ(*store_->AuditSize(), expected);

  EXPECT_EQ(CheckChain(*store_),
            (std::vector<std::string>{"insert-meta", "put-meta", "create-tenant", "put-collection", "insert-record",
                                      "update-record", "delete-record", "put-role", "delete-role", "create-key",
                                      "revoke-key", "delete-tenant"}));
}

TEST_P(StoreConformanceTest, AuditEntryAppendedWithEveryIdentityChange) {
  MakeTenant("acme");
  std::vector<std::unique_ptr<TestLink>> links;
  auto link = [&](const std::string& payload) -> const AuditLink* {
    links.push_back(std::make_unique<TestLink>(payload));
    return links.back().get();
  };
  std::int64_t expected = 0;
  auto appended = [&](const std::string& what) {
    auto size = store_->AuditSize();
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, ++expected) << what;
  };
  ASSERT_TRUE(store_->CreateUser(User("acme", "alice"), link("create-user")).ok());
  appended("create user");
  ASSERT_TRUE(store_->CreateUser(User("", "ops"), link("create-staff")).ok());
  appended("create staff");
  UserRow alice = User("acme", "alice");
  alice.version = 2;
  ASSERT_TRUE(store_->UpdateUser(alice, 1, nullptr, link("update-user")).ok());
  appended("update user");
  alice.version = 3;
  SessionRow session = Session("acme", "alice", "h1");
  ASSERT_TRUE(store_->UpdateUser(alice, 2, &session, link("sign-in")).ok());
  appended("update user with session");
  // Touching is bookkeeping: no entry of its own.
  ASSERT_TRUE(store_->TouchSession(B("h1"), 1700002000).ok());
  EXPECT_EQ(*store_->AuditSize(), expected);
  session.method = "kerberos";
  ASSERT_TRUE(store_->UpdateSession(session, link("step-up")).ok());
  appended("update session");
  ASSERT_TRUE(store_->RevokeSession(B("h1"), 1700003000, link("sign-out")).ok());
  appended("revoke session");
  alice.version = 4;
  SessionRow second = Session("acme", "alice", "h2");
  ASSERT_TRUE(store_->UpdateUser(alice, 3, &second, link("sign-in-2")).ok());
  appended("second sign-in");
  ASSERT_EQ(*store_->RevokeUserSessions("acme", "alice", 1700004000, link("revoke-all")), 1);
  appended("revoke user sessions");
  // Revoking none is still a successful call with its entry.
  ASSERT_EQ(*store_->RevokeUserSessions("acme", "alice", 1700004000, link("revoke-none")), 0);
  appended("revoke no sessions");
  ASSERT_TRUE(store_->DeleteUser("acme", "alice", link("delete-user")).ok());
  appended("delete user");

  // Failed identity changes append nothing.
  TestLink never("never");
  UserRow stale = User("", "ops");
  stale.version = 3;
  SessionRow lost = Session("", "ops", "h3");
  std::vector<std::pair<std::string, Status>> failures = {
      {"duplicate user", store_->CreateUser(User("", "ops"), &never)},
      {"user without tenant", store_->CreateUser(User("nobody", "x"), &never)},
      {"update conflict", store_->UpdateUser(stale, 2, &lost, &never)},
      {"update missing", store_->UpdateUser(alice, 3, nullptr, &never)},
      {"delete missing user", store_->DeleteUser("acme", "alice", &never)},
      {"update missing session", store_->UpdateSession(session, &never)},
      {"revoke deleted session", store_->RevokeSession(B("h1"), 1700005000, &never)},
      {"revoke missing", store_->RevokeSession(B("nope"), 1700005000, &never)},
  };
  for (const auto& [what, status] : failures) EXPECT_FALSE(status.ok()) << what;
  EXPECT_EQ(*store_->AuditSize(), expected);
  EXPECT_EQ(store_->FindSession(B("h3")).status().code(), StatusCode::kNotFound);

  EXPECT_EQ(CheckChain(*store_),
            (std::vector<std::string>{"create-user", "create-staff", "update-user", "sign-in", "step-up", "sign-out",
                                      "sign-in-2", "revoke-all", "revoke-none", "delete-user"}));
}

TEST_P(StoreConformanceTest, AuditEntryAppendedWithEveryLockboxChange) {
  MakeTenant("acme");
  std::vector<std::unique_ptr<TestLink>> links;
  auto link = [&](const std::string& payload) -> const AuditLink* {
    links.push_back(std::make_unique<TestLink>(payload));
    return links.back().get();
  };
  std::int64_t expected = 0;
  auto appended = [&](const std::string& what) {
    auto size = store_->AuditSize();
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, ++expected) << what;
  };
  AccessRequestRow r = Request("acme", "req-1");
  ASSERT_TRUE(store_->CreateAccessRequest(r, {Notification("acme", "https://a.example")}, link("request")).ok());
  appended("create access request with a notification");
  ASSERT_TRUE(store_->CreateAccessRequest(Request("acme", "req-2"), {}, link("request-2")).ok());
  appended("create access request");
  r.version = 2;
  r.status = "approved";
  ASSERT_TRUE(store_->UpdateAccessRequest(r, 1, link("approve")).ok());
  appended("approve");
  r.version = 3;
  r.status = "revoked";
  ASSERT_TRUE(store_->UpdateAccessRequest(r, 2, link("revoke")).ok());
  appended("revoke");
  // Delivery attempts are bookkeeping: no entry of their own.
  OutboxRow n = store_->DueNotifications(1700000500, 10)->at(0);
  n.delivered_at = 1700000600;
  ASSERT_TRUE(store_->UpdateNotification(n).ok());
  EXPECT_EQ(*store_->AuditSize(), expected);

  // Failed lockbox changes append nothing, and leave no notification.
  TestLink never("never");
  AccessRequestRow stale = r;
  stale.version = 3;
  AccessRequestRow missing = Request("acme", "req-9");
  missing.version = 2;
  AccessRequestRow skip = r;
  skip.version = 9;
  std::vector<std::pair<std::string, Status>> failures = {
      {"duplicate request",
       store_->CreateAccessRequest(Request("acme", "req-1"), {Notification("acme", "https://b.example")}, &never)},
      {"request without tenant", store_->CreateAccessRequest(Request("nobody", "req-1"), {}, &never)},
      {"invalid request", store_->CreateAccessRequest(Request("acme", "req-3", "bob", "expired"), {}, &never)},
      {"update conflict", store_->UpdateAccessRequest(stale, 2, &never)},
      {"update missing", store_->UpdateAccessRequest(missing, 1, &never)},
      {"update bad version", store_->UpdateAccessRequest(skip, 3, &never)},
  };
  for (const auto& [what, status] : failures) EXPECT_FALSE(status.ok()) << what;
  EXPECT_EQ(*store_->AuditSize(), expected);
  EXPECT_TRUE(store_->DueNotifications(1800000000, 10)->empty());

  // Deleting the tenant (with its requests and notifications) is one entry.
  ASSERT_TRUE(store_->DeleteTenant("acme", link("delete-tenant")).ok());
  appended("delete tenant");

  EXPECT_EQ(CheckChain(*store_),
            (std::vector<std::string>{"request", "request-2", "approve", "revoke", "delete-tenant"}));
}

TEST_P(StoreConformanceTest, AuditEntryThatCannotBeAppendedFailsItsLockboxChange) {
  MakeTenant("acme");
  BrokenLink broken(BrokenLink::Defect::kNoHash);
  Status s = store_->CreateAccessRequest(Request("acme", "req-1"), {Notification("acme", "https://a.example")},
                                         &broken);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  // The request and its notification went with the entry.
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->DueNotifications(1800000000, 10)->empty());

  ASSERT_TRUE(store_->CreateAccessRequest(Request("acme", "req-1"), {}, nullptr).ok());
  AccessRequestRow next = Request("acme", "req-1");
  next.version = 2;
  next.status = "denied";
  EXPECT_EQ(store_->UpdateAccessRequest(next, 1, &broken).code(), StatusCode::kInternal);
  EXPECT_EQ(store_->GetAccessRequest("acme", "req-1")->status, "pending");
  EXPECT_EQ(*store_->AuditSize(), 0);
}

TEST_P(StoreConformanceTest, AuditFailedChangeAppendsNothing) {
  MakeTenant("acme");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "c1"), nullptr).ok());
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", 2, "c2"), 1, nullptr).ok());
  ASSERT_TRUE(store_->CreateApiKey(Key("acme", "k1", "h1"), nullptr).ok());
  ASSERT_TRUE(store_->InsertMeta("init", B("x"), nullptr).ok());
  TestLink first("first");
  ASSERT_TRUE(store_->AppendAudit(first).ok());

  TestLink never("never");
  struct Case {
    std::string what;
    Status status;
    StatusCode want;
  };
  std::vector<Case> cases = {
      {"conflict", store_->UpdateRecord(Record("acme", "people", "r1", 2, "x"), 1, &never), StatusCode::kAborted},
      {"update missing", store_->UpdateRecord(Record("acme", "people", "nope", 2, "x"), 1, &never),
       StatusCode::kNotFound},
      {"bad version", store_->UpdateRecord(Record("acme", "people", "r1", 9, "x"), 2, &never),
       StatusCode::kInvalidArgument},
      {"duplicate record", store_->InsertRecord(Record("acme", "people", "r1", 1, "x"), &never),
       StatusCode::kAlreadyExists},
      {"record without collection", store_->InsertRecord(Record("acme", "nothing", "r9", 1, "x"), &never),
       StatusCode::kNotFound},
      {"delete missing record", store_->DeleteRecord("acme", "people", "nope", &never), StatusCode::kNotFound},
      {"duplicate tenant", store_->CreateTenant(Tenant("acme"), &never), StatusCode::kAlreadyExists},
      {"delete missing tenant", store_->DeleteTenant("nobody", &never), StatusCode::kNotFound},
      {"collection without tenant", store_->PutCollection(Collection("nobody", "c"), &never).status(),
       StatusCode::kNotFound},
      {"role without tenant", store_->PutRole({"nobody", "r", "{}", 1}, &never).status(), StatusCode::kNotFound},
      {"delete missing role", store_->DeleteRole("acme", "nope", &never), StatusCode::kNotFound},
      {"duplicate key", store_->CreateApiKey(Key("acme", "k1", "h2"), &never), StatusCode::kAlreadyExists},
      {"revoke missing key", store_->RevokeApiKey("acme", "nope", 1, &never), StatusCode::kNotFound},
      {"duplicate meta", store_->InsertMeta("init", B("y"), &never), StatusCode::kAlreadyExists},
  };
  for (const Case& c : cases) EXPECT_EQ(c.status.code(), c.want) << c.what << ": " << c.status.ToString();
  EXPECT_EQ(*store_->AuditSize(), 1);

  // The chain continues right after the last appended entry.
  TestLink next("next");
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r1", 3, "c3"), 2, &next).ok());
  EXPECT_EQ(CheckChain(*store_), (std::vector<std::string>{"first", "next"}));
}

TEST_P(StoreConformanceTest, AuditEntryThatCannotBeAppendedFailsItsChange) {
  MakeTenant("acme");
  TestLink first("first");
  ASSERT_TRUE(store_->AppendAudit(first).ok());
  for (auto defect : {BrokenLink::Defect::kNoHash, BrokenLink::Defect::kWrongSeq}) {
    BrokenLink broken(defect);
    Status s = store_->InsertRecord(Record("acme", "people", "r1", 1, "c1"), &broken);
    EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
    // The change went with its entry: no change without its entry.
    EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(store_->AppendAudit(broken).code(), StatusCode::kInternal);
    EXPECT_EQ(*store_->AuditSize(), 1);
  }
  TestLink second("second");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "c1"), &second).ok());
  EXPECT_EQ(CheckChain(*store_), (std::vector<std::string>{"first", "second"}));
}

TEST_P(StoreConformanceTest, AuditConcurrentAppendsFormOneGapFreeChain) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 60;
  MakeTenant("acme");
  std::int64_t commits_before = 0;
  std::int64_t ops_before = 0;
  if (auto stats = GroupCommitStatsForTest(*store_); stats.ok()) {
    commits_before = stats->commits;
    ops_before = stats->ops;
  }

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i);
        TestLink link(payload);
        Status s;
        if (i % 10 == 9) {
          // Audited writes interleave with the plain appends.
          s = store_->InsertRecord(Record("acme", "people", payload, 1, "c"), &link);
        } else {
          s = store_->AppendAudit(link);
        }
        if (!s.ok()) {
          ADD_FAILURE() << s.ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);

  std::vector<std::string> payloads = CheckChain(*store_);
  ASSERT_EQ(payloads.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::set<std::string> unique(payloads.begin(), payloads.end());
  EXPECT_EQ(unique.size(), payloads.size());
  // Each thread's entries are in the order it appended them.
  for (int t = 0; t < kThreads; ++t) {
    int last = -1;
    for (const std::string& p : payloads) {
      std::string prefix = "t" + std::to_string(t) + "-";
      if (p.compare(0, prefix.size(), prefix) != 0) continue;
      int i = std::stoi(p.substr(prefix.size()));
      EXPECT_GT(i, last);
      last = i;
    }
  }

  // Appends shared commits.
  if (auto stats = GroupCommitStatsForTest(*store_); stats.ok()) {
    std::int64_t commits = stats->commits - commits_before;
    std::int64_t ops = stats->ops - ops_before;
    EXPECT_EQ(ops, kThreads * kPerThread);
    EXPECT_LT(commits, ops);
  }
  if (auto stats = PostgresPoolStatsForTest(*store_); stats.ok()) {
    EXPECT_EQ(stats->audit_appends, kThreads * kPerThread * 9 / 10);
    EXPECT_LT(stats->audit_commits, stats->audit_appends);
  }
}

TEST_P(StoreConformanceTest, AuditCheckpoints) {
  EXPECT_TRUE(store_->ListAuditCheckpoints(0, 10)->empty());
  EXPECT_EQ(store_->LatestAuditCheckpoint().status().code(), StatusCode::kNotFound);
  auto cp = [](std::int64_t size) {
    AuditCheckpointRow c;
    c.tree_size = size;
    c.at_ms = 1700000000000 + size;
    c.root = Bytes(32, static_cast<std::uint8_t>(size));
    c.root[0] = 0;  // binary, with a NUL
    c.note = "kura audit\n" + std::to_string(size) + "\n";
    c.signature = Bytes(64, 0xee);
    c.signature[1] = 0;
    return c;
  };
  for (std::int64_t size : {10, 5, 20}) ASSERT_TRUE(store_->PutAuditCheckpoint(cp(size)).ok()) << size;
  AuditCheckpointRow other = cp(10);
  other.note = "forged";
  EXPECT_EQ(store_->PutAuditCheckpoint(other).code(), StatusCode::kAlreadyExists);

  auto all = store_->ListAuditCheckpoints(0, 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].tree_size, 5);
  EXPECT_EQ((*all)[1].tree_size, 10);
  EXPECT_EQ((*all)[2].tree_size, 20);
  AuditCheckpointRow want = cp(10);
  EXPECT_EQ((*all)[1].at_ms, want.at_ms);
  EXPECT_EQ((*all)[1].root, want.root);
  EXPECT_EQ((*all)[1].note, want.note);  // the first one stands
  EXPECT_EQ((*all)[1].signature, want.signature);

  auto after = store_->ListAuditCheckpoints(5, 10);
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].tree_size, 10);
  auto one = store_->ListAuditCheckpoints(0, 1);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].tree_size, 5);
  EXPECT_TRUE(store_->ListAuditCheckpoints(20, 10)->empty());

  auto latest = store_->LatestAuditCheckpoint();
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->tree_size, 20);
  EXPECT_EQ(latest->signature, cp(20).signature);
}

TEST_P(StoreConformanceTest, FindAuditFiltersAndPages) {
  // 40 entries: tenants acme/other/none, two principals, three actions.
  std::vector<std::unique_ptr<TestLink>> links;
  for (int i = 0; i < 40; ++i) {
    TestEvent e;
    e.payload = std::to_string(i);
    e.tenant = i % 3 == 0 ? "acme" : i % 3 == 1 ? "other" : "";
    e.principal = i % 2 == 0 ? "apikey:a" : "root";
    e.action = i % 4 == 0 ? "record.read" : i % 4 == 1 ? "record.update" : "auth";
    e.resource = "people/r" + std::to_string(i % 5);
    e.outcome = i % 7 == 0 ? "permission_denied" : "success";
    e.at_ms = 1000 + 10 * i;
    links.push_back(std::make_unique<TestLink>(e));
    ASSERT_TRUE(store_->AppendAudit(*links.back()).ok());
  }
  auto seqs = [&](const AuditQuery& q) {
    std::vector<std::int64_t> out;
    auto page = store_->FindAudit(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (page.ok()) {
      for (const auto& r : page->items) out.push_back(r.seq);
    }
    return out;
  };
  auto expect = [](auto pred) {
    std::vector<std::int64_t> out;
    for (int i = 0; i < 40; ++i) {
      if (pred(i)) out.push_back(i);
    }
    return out;
  };
  AuditQuery q;
  q.limit = 100;
  EXPECT_EQ(seqs(q), expect([](int) { return true; }));  // the sys trail: everything
  q.tenant_id = "acme";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 3 == 0; }));
  q.tenant_id = "";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 3 == 2; }));  // entries about no tenant
  q.tenant_id = "nobody";
  EXPECT_TRUE(seqs(q).empty());

  q = {};
  q.limit = 100;
  q.principal = "root";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 2 == 1; }));
  q.action = "record.update";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 4 == 1; }));
  q = {};
  q.limit = 100;
  q.resource = "people/r3";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 5 == 3; }));
  q.resource = "people/r";  // exact match, not a prefix
  EXPECT_TRUE(seqs(q).empty());
  q = {};
  q.limit = 100;
  q.outcome = "permission_denied";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 7 == 0; }));
  q = {};
  q.limit = 100;
  q.from_ms = 1100;  // at_ms >= 1100: i >= 10
  q.to_ms = 1200;    // at_ms < 1200: i < 20
  EXPECT_EQ(seqs(q), expect([](int i) { return i >= 10 && i < 20; }));
  q.tenant_id = "other";
  q.principal = "apikey:a";
  q.action = "auth";
  EXPECT_EQ(seqs(q), expect([](int i) { return i >= 10 && i < 20 && i % 3 == 1 && i % 2 == 0 && i % 4 >= 2; }));

  // Keyset pagination over a filtered trail.
  q = {};
  q.tenant_id = "acme";
  q.limit = 4;
  std::vector<std::int64_t> walked;
  int pages = 0;
  for (;;) {
    auto page = store_->FindAudit(q);
    ASSERT_TRUE(page.ok());
    ++pages;
    EXPECT_LE(page->items.size(), 4u);
    for (const auto& r : page->items) {
      walked.push_back(r.seq);
      EXPECT_EQ(r.tenant_id, "acme");
      EXPECT_EQ(r.entry, B(std::to_string(r.seq) + "|" +
                           testing::Hex(r.seq == 0 ? Bytes() : TestHash(store_->ReadAudit(r.seq - 1, 1)->at(0).entry)) +
                           "|" + std::to_string(r.seq)));
    }
    if (!page->next) break;
    EXPECT_EQ(*page->next, std::to_string(page->items.back().seq));
    q.after_seq = std::stoll(*page->next);
  }
  EXPECT_EQ(walked, expect([](int i) { return i % 3 == 0; }));
  EXPECT_EQ(pages, 4);  // 14 entries: 4 + 4 + 4 + 2
  q.after_seq = 39;
  EXPECT_TRUE(seqs(q).empty());

  // The newest matches: still oldest first, and no next page.
  q = {};
  q.tenant_id = "acme";
  q.limit = 3;
  q.newest = true;
  auto newest = store_->FindAudit(q);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  EXPECT_FALSE(newest->next.has_value());
  EXPECT_EQ(seqs(q), (std::vector<std::int64_t>{33, 36, 39}));
  q.after_seq = 35;  // fewer than the limit after the cursor
  EXPECT_EQ(seqs(q), (std::vector<std::int64_t>{36, 39}));
  q = {};
  q.limit = 100;
  q.newest = true;
  q.principal = "root";
  q.action = "record.update";
  EXPECT_EQ(seqs(q), expect([](int i) { return i % 4 == 1; }));  // all of them, oldest first
}

// Trails over a log of several hundred entries, checked against the log
// itself: SQLite finds a key's entries by block of 64 (audit_sql.h), so the
// keys here are dense and sparse, and cursors fall on and beside the blocks'
// edges.
TEST_P(StoreConformanceTest, FindAuditMatchesTheLogAcrossManyEntries) {
  constexpr int kEntries = 300;
  auto tenant_of = [](int i) -> std::string {
    if (i == 3 || i == 64 || i == 65 || i == 200 || i == 299) return "rare";
    return i % 4 == 0 ? "" : "busy";
  };
  auto principal_of = [](int i) -> std::string {
    if (i == 0 || i == 63 || i == 128) return "apikey:once-a-block";
    return i % 3 == 0 ? "root" : "apikey:app";
  };
  std::vector<std::unique_ptr<TestLink>> links;
  for (int i = 0; i < kEntries; ++i) {
    TestEvent e;
    e.payload = std::to_string(i);
    e.tenant = tenant_of(i);
    e.principal = principal_of(i);
    e.action = i % 5 == 0 ? "record.update" : "record.read";
    links.push_back(std::make_unique<TestLink>(e));
    ASSERT_TRUE(store_->AppendAudit(*links.back()).ok());
  }
  // Every page of a query, following `next`, from after_seq on.
  auto walk = [&](AuditQuery q) {
    std::vector<std::int64_t> out;
    for (int pages = 0; pages < kEntries + 2; ++pages) {
      auto page = store_->FindAudit(q);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      for (const auto& r : page->items) out.push_back(r.seq);
      if (!page->next) break;
      q.after_seq = std::stoll(*page->next);
    }
    return out;
  };
  struct Filter {
    std::optional<std::string> tenant;
    std::string principal;
    std::string action;
  };
  const std::vector<Filter> filters = {
      {"rare", "", ""},
      {"busy", "", ""},
      {"", "", ""},
      {"nobody", "", ""},
      {std::nullopt, "apikey:once-a-block", ""},
      {std::nullopt, "root", "record.update"},
      {"busy", "apikey:app", ""},
      {"rare", "root", ""},
      {std::nullopt, "", "record.update"},
  };
  for (const Filter& f : filters) {
    auto matches = [&](int i) {
      return (!f.tenant || tenant_of(i) == *f.tenant) && (f.principal.empty() || principal_of(i) == f.principal) &&
             (f.action.empty() || (i % 5 == 0 ? "record.update" : "record.read") == f.action);
    };
    for (std::int64_t after : {-1, 2, 3, 62, 63, 64, 127, 128, 250, 299}) {
      for (int limit : {7, 64, 500}) {
        std::vector<std::int64_t> want;
        for (int i = static_cast<int>(after) + 1; i < kEntries; ++i) {
          if (matches(i)) want.push_back(i);
        }
        AuditQuery q;
        q.tenant_id = f.tenant;
        q.principal = f.principal;
        q.action = f.action;
        q.limit = limit;
        q.after_seq = after == -1 ? std::nullopt : std::optional<std::int64_t>(after);
        const std::string what = "tenant " + f.tenant.value_or("(any)") + ", principal " + f.principal + ", action " +
                                 f.action + ", after " + std::to_string(after) + ", limit " + std::to_string(limit);
        EXPECT_EQ(walk(q), want) << what;
        // The newest `limit` of them, oldest first.
        q.newest = true;
        auto newest = store_->FindAudit(q);
        ASSERT_TRUE(newest.ok()) << what << ": " << newest.status().ToString();
        std::vector<std::int64_t> got;
        for (const auto& r : newest->items) got.push_back(r.seq);
        if (static_cast<int>(want.size()) > limit) want.erase(want.begin(), want.end() - limit);
        EXPECT_EQ(got, want) << what << ", newest";
      }
    }
  }
}

TEST_P(StoreConformanceTest, DeleteTenantKeepsItsAuditTrail) {
  std::vector<std::unique_ptr<TestLink>> links;
  auto link = [&](const std::string& payload, const std::string& tenant) -> const AuditLink* {
    TestEvent e;
    e.payload = payload;
    e.tenant = tenant;
    links.push_back(std::make_unique<TestLink>(e));
    return links.back().get();
  };
  ASSERT_TRUE(store_->CreateTenant(Tenant("gone"), link("create", "gone")).ok());
  ASSERT_TRUE(store_->PutCollection(Collection("gone", "people"), link("collection", "gone")).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("gone", "people", "r1", 1, "c"), link("insert", "gone")).ok());
  ASSERT_TRUE(store_->AppendAudit(*link("read", "gone")).ok());
  ASSERT_TRUE(store_->DeleteTenant("gone", link("delete", "gone")).ok());
  EXPECT_EQ(store_->GetTenant("gone").status().code(), StatusCode::kNotFound);

  AuditQuery q;
  q.tenant_id = "gone";
  auto trail = store_->FindAudit(q);
  ASSERT_TRUE(trail.ok());
  ASSERT_EQ(trail->items.size(), 5u);
  EXPECT_EQ(trail->items.back().entry.back(), 'e');  // "…|delete"
  EXPECT_EQ(CheckChain(*store_), (std::vector<std::string>{"create", "collection", "insert", "read", "delete"}));
}

// --- Leases

TEST_P(StoreConformanceTest, LeaseIsHeldByOneNodeUntilItExpires) {
  using std::chrono::milliseconds;
  // node-a takes the free lease and renews it; node-b cannot take it meanwhile.
  auto a = store_->HoldLease("jobs", "node-a", milliseconds(800));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(*a);
  auto b = store_->HoldLease("jobs", "node-b", milliseconds(800));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(*b);
  EXPECT_TRUE(*store_->HoldLease("jobs", "node-a", milliseconds(800)));
  // Another lease name is independent.
  EXPECT_TRUE(*store_->HoldLease("other", "node-b", milliseconds(60000)));

  auto status = store_->GetStorageStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_FALSE(status->engine.empty());
  EXPECT_TRUE(status->primary);
  ASSERT_EQ(status->leases.size(), 2u);
  EXPECT_EQ(status->leases[0].name, "jobs");
  EXPECT_EQ(status->leases[0].holder, "node-a");
  EXPECT_GT(status->leases[0].expires_in_ms, 0);
  EXPECT_LE(status->leases[0].expires_in_ms, 800);
  EXPECT_EQ(status->leases[1].holder, "node-b");

  // node-a stops renewing: node-b gets it once the ttl has passed, not before.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(*store_->HoldLease("jobs", "node-b", milliseconds(800)));
  std::this_thread::sleep_for(milliseconds(700));
  EXPECT_TRUE(*store_->HoldLease("jobs", "node-b", milliseconds(800)));
  // …and node-a, coming back, finds it taken.
  EXPECT_FALSE(*store_->HoldLease("jobs", "node-a", milliseconds(800)));

  // Releasing by a non-holder changes nothing; by the holder frees it at once.
  ASSERT_TRUE(store_->ReleaseLease("jobs", "node-a").ok());
  EXPECT_FALSE(*store_->HoldLease("jobs", "node-a", milliseconds(800)));
  ASSERT_TRUE(store_->ReleaseLease("jobs", "node-b").ok());
  EXPECT_TRUE(*store_->HoldLease("jobs", "node-a", milliseconds(800)));

  EXPECT_EQ(store_->HoldLease("", "node-a", milliseconds(10)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->HoldLease("jobs", "", milliseconds(10)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->HoldLease("jobs", "node-a", milliseconds(0)).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreConformanceTest, ConcurrentContendersGetOneHolder) {
  constexpr int kThreads = 8;
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto held = store_->HoldLease("race", "node-" + std::to_string(t), std::chrono::seconds(30));
      if (held.ok() && *held) winners.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

// --- Retention (crypto-shredding by age)

TEST_P(StoreConformanceTest, ListRecordsUpdatedBeforeSeesOnlyOldCurrentVersions) {
  MakeTenant("acme", {"people", "orders"});
  MakeTenant("other");
  // r1: written at 100 and never again; r2: written at 100, updated at 300;
  // r3: written at 200; r4: written at 100 (another collection); r5 (another tenant).
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "a", {}, 100), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r2", 1, "b", {}, 100), nullptr).ok());
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "r2", 2, "b2", {}, 300), 1, nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r3", 1, "c", {}, 200), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "orders", "r4", 1, "d", {}, 100), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("other", "people", "r5", 1, "e", {}, 100), nullptr).ok());

  auto old = store_->ListRecordsUpdatedBefore("acme", "people", 201, "", 10);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(*old, (std::vector<std::string>{"r1", "r3"}));
  // The cutoff is exclusive, and the limit holds.
  EXPECT_EQ(*store_->ListRecordsUpdatedBefore("acme", "people", 200, "", 10), std::vector<std::string>{"r1"});
  EXPECT_EQ(*store_->ListRecordsUpdatedBefore("acme", "people", 1000, "", 2), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_TRUE(store_->ListRecordsUpdatedBefore("acme", "people", 100, "", 10)->empty());
  EXPECT_TRUE(store_->ListRecordsUpdatedBefore("acme", "nothing", 1000, "", 10)->empty());
  EXPECT_EQ(store_->ListRecordsUpdatedBefore("acme", "people", 1000, "", 0).status().code(),
            StatusCode::kInvalidArgument);
  // Continued past an id: the pages of one pass, in id order, none twice.
  EXPECT_EQ(*store_->ListRecordsUpdatedBefore("acme", "people", 1000, "r1", 10),
            (std::vector<std::string>{"r2", "r3"}));
  EXPECT_EQ(*store_->ListRecordsUpdatedBefore("acme", "people", 201, "r1", 10), std::vector<std::string>{"r3"});
  EXPECT_EQ(*store_->ListRecordsUpdatedBefore("acme", "people", 201, "r10", 1), std::vector<std::string>{"r3"});
  EXPECT_TRUE(store_->ListRecordsUpdatedBefore("acme", "people", 1000, "r3", 10)->empty());
}

TEST_P(StoreConformanceTest, ExpireRecordDestroysEveryVersionAndIndexEntry) {
  MakeTenant("acme", {"people", "orders"});
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "v1", {{"email", B("h")}}, 100), nullptr).ok());
  ASSERT_TRUE(
      store_->UpdateRecord(Record("acme", "people", "r1", 2, "v2", {{"email", B("h")}}, 150), 1, nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r2", 1, "keep", {{"email", B("h")}}, 100), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "orders", "r1", 1, "o", {{"email", B("h")}}, 100), nullptr).ok());

  std::vector<std::unique_ptr<TestLink>> links;
  links.push_back(std::make_unique<TestLink>("expire-r1"));
  ASSERT_TRUE(store_->ExpireRecord("acme", "people", "r1", 200, links.back().get()).ok());
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 2).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListVersions("acme", "people", "r1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Ids(store_->FindRecords("acme", "people", "email", B("h"), {})->items),
            std::vector<std::string>{"r2"});
  // The same id in another collection is another record.
  EXPECT_EQ(store_->GetRecord("acme", "orders", "r1", std::nullopt)->ciphertext, B("o"));
  EXPECT_EQ(Ids(store_->FindRecords("acme", "orders", "email", B("h"), {})->items),
            std::vector<std::string>{"r1"});
  // One entry, appended with the change.
  EXPECT_EQ(CheckChain(*store_), std::vector<std::string>{"expire-r1"});

  // Gone: NotFound, and nothing appended.
  TestLink never("never");
  EXPECT_EQ(store_->ExpireRecord("acme", "people", "r1", 200, &never).code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->AuditSize(), 1);
}

TEST_P(StoreConformanceTest, ExpireRecordKeepsARecordUpdatedSinceTheCutoff) {
  MakeTenant("acme");
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "r1", 1, "v1", {{"email", B("h")}}, 100), nullptr).ok());
  // Listed as old…
  ASSERT_EQ(*store_->ListRecordsUpdatedBefore("acme", "people", 200, "", 10), std::vector<std::string>{"r1"});
  // …then updated before the job gets to it: it stays, with its versions,
  // index entries, and no entry in the audit log.
  ASSERT_TRUE(
      store_->UpdateRecord(Record("acme", "people", "r1", 2, "v2", {{"email", B("h")}}, 250), 1, nullptr).ok());
  TestLink never("never");
  EXPECT_EQ(store_->ExpireRecord("acme", "people", "r1", 200, &never).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->ciphertext, B("v2"));
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 1)->ciphertext, B("v1"));
  EXPECT_EQ(Ids(store_->FindRecords("acme", "people", "email", B("h"), {})->items),
            std::vector<std::string>{"r1"});
  EXPECT_EQ(*store_->AuditSize(), 0);
}

// --- DEK rotation: key versions of record versions, re-encryption batches.

TEST_P(StoreConformanceTest, RecordWritesMustUseTheTenantsCurrentKeyVersion) {
  TenantRow t = Tenant("acme");
  t.data_key_version = 3;
  ASSERT_TRUE(store_->CreateTenant(t, nullptr).ok());
  ASSERT_TRUE(store_->PutCollection(Collection("acme", "people"), nullptr).ok());

  RecordWrite w = Record("acme", "people", "r1", 1, "under-3");
  w.key_version = 3;
  ASSERT_TRUE(store_->InsertRecord(w, nullptr).ok());
  auto got = store_->GetRecord("acme", "people", "r1", std::nullopt);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->key_version, 3);

  // Sealed under an older (or unknown) key version: refused, nothing written.
  RecordWrite stale = Record("acme", "people", "r2", 1, "under-2");
  stale.key_version = 2;
  EXPECT_EQ(store_->InsertRecord(stale, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r2", std::nullopt).status().code(), StatusCode::kNotFound);
  RecordWrite stale_update = Record("acme", "people", "r1", 2, "v2-under-2");
  stale_update.key_version = 2;
  EXPECT_EQ(store_->UpdateRecord(stale_update, 1, nullptr).code(), StatusCode::kAborted);
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", std::nullopt)->current_version, 1);

  RecordWrite update = Record("acme", "people", "r1", 2, "v2-under-3");
  update.key_version = 3;
  ASSERT_TRUE(store_->UpdateRecord(update, 1, nullptr).ok());
  EXPECT_EQ(store_->GetRecord("acme", "people", "r1", 2)->key_version, 3);
  auto listed = store_->ListRecords("acme", "people", PageRequest{});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].key_version, 3);
}

TEST_P(StoreConformanceTest, KeyRotationRowPutGetListAndDeletedWithItsTenant) {
  MakeTenant("acme");
  MakeTenant("beta");
  EXPECT_EQ(store_->GetKeyRotation("acme").status().code(), StatusCode::kNotFound);

  KeyRotationRow k;
  k.tenant_id = "acme";
  k.to_version = 2;
  k.cursor = RecordVersionKey{"people", "r9", 4};
  k.total = 10;
  k.done = 3;
  k.started_at = 1700000000;
  ASSERT_TRUE(store_->PutKeyRotation(k, nullptr).ok());
  KeyRotationRow b = k;
  b.tenant_id = "beta";
  b.state = "done";
  b.finished_at = 1700000100;
  ASSERT_TRUE(store_->PutKeyRotation(b, nullptr).ok());

  auto got = store_->GetKeyRotation("acme");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->to_version, 2);
  EXPECT_EQ(got->state, "running");
  EXPECT_EQ(got->cursor.collection, "people");
  EXPECT_EQ(got->cursor.record_id, "r9");
  EXPECT_EQ(got->cursor.version, 4);
  EXPECT_EQ(got->total, 10);
  EXPECT_EQ(got->done, 3);
  EXPECT_EQ(got->started_at, 1700000000);
  EXPECT_EQ(got->finished_at, 0);

  auto running = store_->ListRunningKeyRotations();
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].tenant_id, "acme");

  // Replaced whole: the next rotation of a tenant overwrites the last one.
  k.state = "done";
  k.finished_at = 1700000200;
  ASSERT_TRUE(store_->PutKeyRotation(k, nullptr).ok());
  EXPECT_EQ(store_->GetKeyRotation("acme")->state, "done");
  EXPECT_TRUE(store_->ListRunningKeyRotations()->empty());

  k.tenant_id = "nobody";
  EXPECT_EQ(store_->PutKeyRotation(k, nullptr).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteTenant("acme", nullptr).ok());
  EXPECT_EQ(store_->GetKeyRotation("acme").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetKeyRotation("beta").ok());
}

TEST_P(StoreConformanceTest, ScanBelowKeyPagesInKeyOrderAndRewriteIsCompareAndSet) {
  MakeTenant("acme", {"people", "orders"});
  MakeTenant("beta");
  // acme: people/a (versions 1, 2), people/b (1), orders/a (1); beta: people/a (1).
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "a", 1, "pa1"), nullptr).ok());
  ASSERT_TRUE(store_->UpdateRecord(Record("acme", "people", "a", 2, "pa2"), 1, nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "people", "b", 1, "pb1"), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("acme", "orders", "a", 1, "oa1"), nullptr).ok());
  ASSERT_TRUE(store_->InsertRecord(Record("beta", "people", "a", 1, "beta"), nullptr).ok());

  EXPECT_EQ(store_->CountRecordVersionsBelowKey("acme", 2).value(), 4);
  EXPECT_EQ(store_->CountRecordVersionsBelowKey("acme", 1).value(), 0);
  EXPECT_EQ(store_->ScanRecordVersionsBelowKey("acme", 2, {}, 0).status().code(), StatusCode::kInvalidArgument);

  // Pages of 3 from the start, then from the last one seen.
  auto first = store_->ScanRecordVersionsBelowKey("acme", 2, RecordVersionKey{}, 3);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].key.collection, "orders");
  EXPECT_EQ((*first)[0].ciphertext, B("oa1"));
  EXPECT_EQ((*first)[1].key.record_id, "a");
  EXPECT_EQ((*first)[1].key.version, 1);
  EXPECT_EQ((*first)[2].key.version, 2);
  EXPECT_EQ((*first)[2].key_version, 1);
  auto second = store_->ScanRecordVersionsBelowKey("acme", 2, first->back().key, 3);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].key.record_id, "b");
  EXPECT_TRUE(store_->ScanRecordVersionsBelowKey("acme", 2, (*second)[0].key, 3)->empty());

  // Without a running rotation to version 2, nothing is rewritten.
  std::vector<CiphertextRewrite> batch;
  for (const auto& v : *first) batch.push_back(CiphertextRewrite{v.key, v.key_version, B("new-" + v.key.record_id)});
  EXPECT_EQ(store_->RewriteRecordCiphertexts("acme", 2, batch, first->back().key).status().code(),
            StatusCode::kAborted);
  EXPECT_EQ(store_->CountRecordVersionsBelowKey("acme", 2).value(), 4);

  KeyRotationRow k;
  k.tenant_id = "acme";
  k.to_version = 2;
  k.total = 4;
  ASSERT_TRUE(store_->PutKeyRotation(k, nullptr).ok());
  // One entry expects a key version the row no longer has (rewritten by
  // someone else meanwhile): skipped, the others rewritten.
  batch[0].from_key_version = 5;
  auto rewritten = store_->RewriteRecordCiphertexts("acme", 2, batch, first->back().key);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
  EXPECT_EQ(*rewritten, 2);
  EXPECT_EQ(store_->GetRecord("acme", "orders", "a", 1)->ciphertext, B("oa1"));
  auto pa2 = store_->GetRecord("acme", "people", "a", 2);
  EXPECT_EQ(pa2->ciphertext, B("new-a"));
  EXPECT_EQ(pa2->key_version, 2);
  EXPECT_EQ(store_->GetRecord("acme", "people", "a", 1)->key_version, 2);
  EXPECT_EQ(store_->CountRecordVersionsBelowKey("acme", 2).value(), 2);
  EXPECT_EQ(store_->CountRecordVersionsBelowKey("beta", 2).value(), 1);  // another tenant's untouched
  auto progress = store_->GetKeyRotation("acme");
  EXPECT_EQ(progress->done, 2);
  EXPECT_EQ(progress->cursor.collection, "people");
  EXPECT_EQ(progress->cursor.record_id, "a");
  EXPECT_EQ(progress->cursor.version, 2);

  // The same batch again (a retried or duplicated step) rewrites nothing.
  batch[0].from_key_version = 1;
  batch.erase(batch.begin());
  EXPECT_EQ(store_->RewriteRecordCiphertexts("acme", 2, batch, first->back().key).value(), 0);
  // A scan from the start now sees only what is left under older keys.
  auto left = store_->ScanRecordVersionsBelowKey("acme", 2, RecordVersionKey{}, 10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].key.collection, "orders");
  EXPECT_EQ((*left)[1].key.record_id, "b");
  // A version deleted meanwhile is skipped too.
  ASSERT_TRUE(store_->DeleteRecord("acme", "people", "b", nullptr).ok());
  std::vector<CiphertextRewrite> gone = {CiphertextRewrite{(*left)[1].key, 1, B("x")}};
  EXPECT_EQ(store_->RewriteRecordCiphertexts("acme", 2, gone, (*left)[1].key).value(), 0);
  EXPECT_EQ(store_->GetKeyRotation("acme")->done, 2);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest, ::testing::Values(SqliteFactory(false), SqliteFactory(true)),
                         FactoryName);
INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformanceTest, ::testing::Values(PostgresFactory()), FactoryName);
INSTANTIATE_TEST_SUITE_P(Sqlite, SessionConformance, ::testing::Values(SqliteFactory(false), SqliteFactory(true)),
                         FactoryName);
INSTANTIATE_TEST_SUITE_P(Postgres, SessionConformance, ::testing::Values(PostgresFactory()), FactoryName);

}  // namespace
}  // namespace kura::store
