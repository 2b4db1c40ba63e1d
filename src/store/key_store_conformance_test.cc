// The KeyStore conformance suite: the SQLite and PostgreSQL backends pass it
// unchanged. PostgreSQL tests need a server (pg_test_env.h): without one they
// are skipped, or fail when KURA_REQUIRE_PG=1.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/key_store.h"
#include "store/pg_test_env.h"
#include "store/store_test_util.h"

namespace kura::store {
namespace {

struct KeyStoreFactory {
  std::string name;
  // Opens the key store of test `slot` (the same slot opens the same store).
  std::function<std::unique_ptr<KeyStore>(const std::string& slot)> open;
  std::function<std::string()> unavailable = [] { return std::string(); };
};

std::string KeyStoreFactoryName(const ::testing::TestParamInfo<KeyStoreFactory>& info) { return info.param.name; }
[[maybe_unused]] void PrintTo(const KeyStoreFactory& f, std::ostream* os) { *os << f.name; }

std::filesystem::path Root() {
  static const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / ("kura_key_store_" + std::to_string(::getpid()));
  return root;
}

class RootCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(Root(), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kCleanup = ::testing::AddGlobalTestEnvironment(new RootCleanup);

KeyStoreFactory SqliteKeyStoreFactory() {
  return {"sqlite", [](const std::string& slot) -> std::unique_ptr<KeyStore> {
            SqliteKeyStoreOptions o;
            o.path = (Root() / slot / "keys.db").string();
            o.durable = false;
            auto ks = OpenSqliteKeyStore(o);
            if (!ks.ok()) {
              ADD_FAILURE() << ks.status().ToString();
              return nullptr;
            }
            return std::move(ks).value();
          }};
}

KeyStoreFactory PostgresKeyStoreFactory() {
  return {"postgres",
          [](const std::string& slot) -> std::unique_ptr<KeyStore> {
            // One schema per slot, so reopening a slot reaches the same tables.
            static std::map<std::string, std::string> dsns;
            static std::mutex mu;
            std::string dsn;
            {
              std::lock_guard lock(mu);
              if (!dsns.count(slot)) {
                auto fresh = testing::FreshPgDsn();
                if (!fresh.ok()) {
                  ADD_FAILURE() << fresh.status().ToString();
                  return nullptr;
                }
                dsns[slot] = *fresh;
              }
              dsn = dsns[slot];
            }
            PostgresOptions o;
            o.dsn = dsn;
            auto ks = OpenPostgresKeyStore(o);
            if (!ks.ok()) {
              ADD_FAILURE() << ks.status().ToString();
              return nullptr;
            }
            return std::move(ks).value();
          },
          [] { return testing::PgSkipReason(); }};
}

WrappedKeyRow Key(const std::string& owner, int purpose, std::int64_t version, std::int64_t kek_version,
                  std::string_view wrapped) {
  WrappedKeyRow k;
  k.owner = owner;
  k.purpose = purpose;
  k.version = version;
  k.kek_version = kek_version;
  k.wrapped = B(wrapped);
  k.created_at = 1700000000 + version;
  return k;
}

class KeyStoreConformanceTest : public ::testing::TestWithParam<KeyStoreFactory> {
 protected:
  void SetUp() override {
    std::string why = GetParam().unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    static std::atomic<int> counter{0};
    slot_ = "ks" + std::to_string(counter++);
    ks_ = GetParam().open(slot_);
    ASSERT_NE(ks_, nullptr);
  }

  // Initialises with KEK version 1 and keys of tenants a and b and the vault.
  void Populate() {
    ASSERT_TRUE(ks_->Initialize({1, B("kek-1"), 1700000000}, R"({"type":"keyfile"})").ok());
    ASSERT_TRUE(ks_->InsertKeys({Key("a", 1, 1, 1, "a-dek-1"), Key("a", 2, 1, 1, "a-idx")}).ok());
    ASSERT_TRUE(ks_->InsertKeys({Key("b", 1, 1, 1, "b-dek-1"), Key("b", 2, 1, 1, "b-idx")}).ok());
    ASSERT_TRUE(ks_->InsertKeys({Key("", 7, 1, 1, "secrets")}).ok());
  }

  std::vector<WrappedKeyRow> All() {
    auto all = ks_->ListAllKeys();
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    return all.ok() ? *all : std::vector<WrappedKeyRow>{};
  }

  std::string slot_;
  std::unique_ptr<KeyStore> ks_;
};

TEST_P(KeyStoreConformanceTest, EmptyStoreHasNothing) {
  auto keks = ks_->ListKekVersions();
  ASSERT_TRUE(keks.ok());
  EXPECT_TRUE(keks->empty());
  EXPECT_EQ(ks_->GetMeta(kKeyMetaSeal).status().code(), StatusCode::kNotFound);
  auto keys = ks_->ListAllKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
}

TEST_P(KeyStoreConformanceTest, InitializeOnce) {
  ASSERT_TRUE(ks_->Initialize({1, B("kek-1"), 1700000000}, R"({"type":"keyfile"})").ok());
  EXPECT_EQ(ks_->Initialize({1, B("other"), 1700000001}, "{}").code(), StatusCode::kAlreadyExists);
  auto keks = ks_->ListKekVersions();
  ASSERT_TRUE(keks.ok());
  ASSERT_EQ(keks->size(), 1u);
  EXPECT_EQ((*keks)[0].version, 1);
  EXPECT_EQ((*keks)[0].wrapped, B("kek-1"));
  EXPECT_EQ((*keks)[0].created_at, 1700000000);
  auto seal = ks_->GetMeta(kKeyMetaSeal);
  ASSERT_TRUE(seal.ok());
  EXPECT_EQ(*seal, R"({"type":"keyfile"})");
}

TEST_P(KeyStoreConformanceTest, KeysRoundTripAndList) {
  Populate();
  auto a = ks_->ListKeys("a");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].purpose, 1);
  EXPECT_EQ((*a)[0].wrapped, B("a-dek-1"));
  EXPECT_EQ((*a)[0].kek_version, 1);
  EXPECT_EQ((*a)[0].created_at, 1700000001);
  EXPECT_EQ((*a)[1].purpose, 2);
  auto all = ks_->ListAllKeys();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].owner, "");  // ordered by owner
  EXPECT_EQ((*all)[1].owner, "a");
  EXPECT_EQ((*all)[4].owner, "b");
  auto none = ks_->ListKeys("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(KeyStoreConformanceTest, InsertKeysIsAtomicAndChecksKek) {
  Populate();
  // A duplicate in the batch: nothing of it stays.
  EXPECT_EQ(ks_->InsertKeys({Key("c", 1, 1, 1, "c"), Key("a", 1, 1, 1, "dup")}).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(ks_->ListKeys("c")->empty());
  // Under a KEK version that is not stored: NotFound.
  EXPECT_EQ(ks_->InsertKeys({Key("c", 1, 1, 9, "c")}).code(), StatusCode::kNotFound);
  EXPECT_TRUE(ks_->ListKeys("c")->empty());
}

TEST_P(KeyStoreConformanceTest, RotateKekRewrapsEverythingAndDropsOldVersions) {
  Populate();
  auto all = *ks_->ListAllKeys();
  std::vector<WrappedKeyRow> rewrapped;
  for (auto k : all) {
    k.kek_version = 2;
    k.wrapped = B("re-" + std::string(AsString(k.wrapped)));
    rewrapped.push_back(k);
  }
  ASSERT_TRUE(ks_->RotateKek({2, B("kek-2"), 1700000100}, rewrapped).ok());
  auto keks = *ks_->ListKekVersions();
  ASSERT_EQ(keks.size(), 1u);
  EXPECT_EQ(keks[0].version, 2);
  EXPECT_EQ(keks[0].wrapped, B("kek-2"));
  for (const auto& k : All()) {
    EXPECT_EQ(k.kek_version, 2);
    EXPECT_EQ(AsString(k.wrapped).substr(0, 3), "re-");
  }
  // The key's own version and creation time are kept.
  auto a = *ks_->ListKeys("a");
  EXPECT_EQ(a[0].version, 1);
  EXPECT_EQ(a[0].created_at, 1700000001);
  // New keys now go under version 2 only.
  EXPECT_EQ(ks_->InsertKeys({Key("c", 1, 1, 1, "c")}).code(), StatusCode::kNotFound);
  EXPECT_TRUE(ks_->InsertKeys({Key("c", 1, 1, 2, "c")}).ok());
}

TEST_P(KeyStoreConformanceTest, RotateKekAbortsWhenKeysChanged) {
  Populate();
  auto all = *ks_->ListAllKeys();
  std::vector<WrappedKeyRow> rewrapped;
  for (auto k : all) {
    k.kek_version = 2;
    rewrapped.push_back(k);
  }
  // A key added after the listing is not in the rewrap: the rotation must
  // not leave it under a deleted KEK.
  ASSERT_TRUE(ks_->InsertKeys({Key("c", 1, 1, 1, "c")}).ok());
  EXPECT_EQ(ks_->RotateKek({2, B("kek-2"), 1700000100}, rewrapped).code(), StatusCode::kAborted);
  // Nothing changed.
  auto keks = *ks_->ListKekVersions();
  ASSERT_EQ(keks.size(), 1u);
  EXPECT_EQ(keks[0].version, 1);
  for (const auto& k : All()) EXPECT_EQ(k.kek_version, 1);

  // A key destroyed after the listing: its rewrap finds nothing.
  all = *ks_->ListAllKeys();
  rewrapped.clear();
  for (auto k : all) {
    k.kek_version = 2;
    rewrapped.push_back(k);
  }
  ASSERT_EQ(*ks_->DestroyKeys("c"), 1);
  EXPECT_EQ(ks_->RotateKek({2, B("kek-2"), 1700000100}, rewrapped).code(), StatusCode::kAborted);
  EXPECT_EQ(ks_->ListKekVersions()->size(), 1u);
  // A version that is not above the stored ones.
  rewrapped.clear();
  for (auto k : All()) {
    k.kek_version = 1;
    rewrapped.push_back(k);
  }
  EXPECT_EQ(ks_->RotateKek({1, B("again"), 1700000100}, rewrapped).code(), StatusCode::kAborted);
}

TEST_P(KeyStoreConformanceTest, ResealReplacesKeksAndSealTogether) {
  Populate();
  ASSERT_TRUE(ks_->ResealKeks({{1, B("kek-1-new-seal"), 1700000000}}, R"({"type":"passphrase"})").ok());
  auto keks = *ks_->ListKekVersions();
  ASSERT_EQ(keks.size(), 1u);
  EXPECT_EQ(keks[0].wrapped, B("kek-1-new-seal"));
  EXPECT_EQ(keks[0].created_at, 1700000000);
  EXPECT_EQ(*ks_->GetMeta(kKeyMetaSeal), R"({"type":"passphrase"})");
  // The versions must match exactly; otherwise nothing changes.
  EXPECT_EQ(ks_->ResealKeks({{2, B("x"), 1}}, R"({"type":"shamir"})").code(), StatusCode::kAborted);
  EXPECT_EQ(ks_->ResealKeks({}, R"({"type":"shamir"})").code(), StatusCode::kAborted);
  EXPECT_EQ(*ks_->GetMeta(kKeyMetaSeal), R"({"type":"passphrase"})");
  EXPECT_EQ(ks_->ListKekVersions()->at(0).wrapped, B("kek-1-new-seal"));
}

TEST_P(KeyStoreConformanceTest, DestroyByOwnerAndBelowVersion) {
  Populate();
  ASSERT_TRUE(ks_->InsertKeys({Key("a", 1, 2, 1, "a-dek-2"), Key("a", 1, 3, 1, "a-dek-3")}).ok());
  auto n = ks_->DestroyKeysBelow("a", 1, 3);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  auto a = *ks_->ListKeys("a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].purpose, 1);
  EXPECT_EQ(a[0].version, 3);
  EXPECT_EQ(a[1].purpose, 2);  // the index key is another purpose: kept
  n = ks_->DestroyKeys("a");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(ks_->ListKeys("a")->empty());
  EXPECT_EQ(ks_->ListKeys("b")->size(), 2u);
  EXPECT_EQ(*ks_->DestroyKeys("a"), 0);  // again: nothing, not an error
}

TEST_P(KeyStoreConformanceTest, SurvivesReopen) {
  Populate();
  ks_.reset();
  ks_ = GetParam().open(slot_);
  ASSERT_NE(ks_, nullptr);
  EXPECT_EQ(ks_->ListAllKeys()->size(), 5u);
  EXPECT_EQ(ks_->ListKekVersions()->size(), 1u);
}

TEST_P(KeyStoreConformanceTest, ConcurrentInsertsAndRotationNeverStrandAKey) {
  Populate();
  // Writers add keys under whatever KEK is current while rotations run; at
  // the end every key must be wrapped by the one remaining KEK version.
  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::thread writer([&] {
    for (int i = 0; i < 60 && !stop; ++i) {
      for (int attempt = 0; attempt < 20; ++attempt) {
        auto keks = ks_->ListKekVersions();
        if (!keks.ok() || keks->empty()) continue;
        Status s = ks_->InsertKeys({Key("w" + std::to_string(i), 1, 1, keks->back().version, "w")});
        if (s.ok()) {
          ++inserted;
          break;
        }
        ASSERT_TRUE(s.code() == StatusCode::kNotFound || s.code() == StatusCode::kUnavailable) << s.ToString();
      }
    }
  });
  // The rotations start once the writer is writing, so that inserts race them.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (inserted.load() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  ASSERT_GT(inserted.load(), 0) << "the writer inserted nothing";
  const int inserted_before_rotations = inserted.load();
  int rotations = 0;
  for (int r = 0; r < 15; ++r) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto keks = *ks_->ListKekVersions();
      std::int64_t next = keks.back().version + 1;
      std::vector<WrappedKeyRow> rewrapped;
      for (auto k : All()) {
        k.kek_version = next;
        rewrapped.push_back(k);
      }
      Status s = ks_->RotateKek({next, B("kek"), 1700000000 + next}, rewrapped);
      if (s.ok()) {
        ++rotations;
        break;
      }
      ASSERT_TRUE(s.code() == StatusCode::kAborted || s.code() == StatusCode::kUnavailable) << s.ToString();
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(rotations, 15);
  EXPECT_GT(inserted.load(), inserted_before_rotations) << "no insert ran beside the rotations";
  auto keks = *ks_->ListKekVersions();
  ASSERT_EQ(keks.size(), 1u);
  auto all = *ks_->ListAllKeys();
  EXPECT_EQ(all.size(), 5u + static_cast<std::size_t>(inserted.load()));
  for (const auto& k : all) EXPECT_EQ(k.kek_version, keks[0].version) << k.owner;
}

class SqliteKeyStoreTest : public KeyStoreConformanceTest {};

TEST_P(SqliteKeyStoreTest, OwnFileMode0600AndDestroyedBytesGone) {
  Populate();
  std::string path = (Root() / slot_ / "keys.db").string();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_TRUE(ks_->InsertKeys({Key("z", 1, 1, 1, "ZZZ-distinctive-wrapped-bytes-ZZZ")}).ok());
  ASSERT_EQ(*ks_->DestroyKeys("z"), 1);
  // Neither the file nor its write-ahead log keeps the destroyed bytes.
  for (const std::string& f : {path, path + "-wal"}) {
    std::ifstream in(f, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find("ZZZ-distinctive-wrapped-bytes-ZZZ"), std::string::npos) << f;
  }
}

TEST_P(SqliteKeyStoreTest, RefusesTheDataStoreFile) {
  std::string path = (Root() / (slot_ + "-data") / "kura.db").string();
  {
    SqliteOptions o;
    o.path = path;
    o.durable = false;
    ASSERT_TRUE(OpenSqliteStore(o).ok());
  }
  SqliteKeyStoreOptions o;
  o.path = path;
  auto ks = OpenSqliteKeyStore(o);
  EXPECT_EQ(ks.status().code(), StatusCode::kFailedPrecondition) << ks.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Sqlite, KeyStoreConformanceTest, ::testing::Values(SqliteKeyStoreFactory()),
                         KeyStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(Postgres, KeyStoreConformanceTest, ::testing::Values(PostgresKeyStoreFactory()),
                         KeyStoreFactoryName);
INSTANTIATE_TEST_SUITE_P(Sqlite, SqliteKeyStoreTest, ::testing::Values(SqliteKeyStoreFactory()), KeyStoreFactoryName);

}  // namespace
}  // namespace kura::store
