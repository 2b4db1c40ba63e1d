// Test fixture for the vault: a real SQLite store in a temporary directory,
// a key-file or Shamir seal, and a fake clock. Tests only.
#ifndef KURA_VAULT_VAULT_TEST_UTIL_H_
#define KURA_VAULT_VAULT_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/clock.h"
#include "crypto/seal.h"
#include "store/key_store.h"
#include "store/store.h"
#include "vault/vault.h"

namespace kura::vault::testing {

enum class SealKind { kKeyfile, kShamir };

class TempDir {
 public:
  TempDir() {
    std::string base = std::filesystem::temp_directory_path() / "kura-vault-test-XXXXXX";
    char* made = ::mkdtemp(base.data());
    EXPECT_NE(made, nullptr);
    path_ = base;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class VaultFixture : public ::testing::Test {
 protected:
  // 2030-01-01T00:00:00Z
  VaultFixture() : clock_(FromUnixSeconds(1893456000)) {}

  std::string DbPath() const { return dir_.path() + "/kura.db"; }
  std::string KeyPath() const { return dir_.path() + "/kek.key"; }
  std::string KeysPath() const { return dir_.path() + "/keys.db"; }

  // The SQLite key store at `path` (fails the test if it cannot be opened).
  static std::unique_ptr<store::KeyStore> OpenKeyStore(const std::string& path) {
    store::SqliteKeyStoreOptions ko;
    ko.path = path;
    ko.durable = false;
    auto ks = store::OpenSqliteKeyStore(ko);
    EXPECT_TRUE(ks.ok()) << ks.status().ToString();
    return ks.ok() ? std::move(ks).value() : nullptr;
  }

  std::unique_ptr<Vault> OpenVault(SealKind kind, int keep_versions = 10, int max_page_size = 100) {
    store::SqliteOptions so;
    so.path = DbPath();
    so.durable = false;
    auto store = store::OpenSqliteStore(so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    Options options;
    options.store = std::move(store).value();
    options.key_store = OpenKeyStore(KeysPath());
    options.seal = kind == SealKind::kKeyfile ? crypto::MakeKeyfileSeal(KeyPath()) : crypto::MakeShamirSeal();
    options.clock = &clock_;
    options.keep_versions = keep_versions;
    options.max_page_size = max_page_size;
    // Cheap password hashes: the tests check behaviour, not cost.
    options.identity.argon2 = auth::Argon2Params{1, 64 * 1024};
    auto vault = Vault::Open(std::move(options));
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    return vault.ok() ? std::move(vault).value() : nullptr;
  }

  static Caller As(const Principal& p) { return Caller{p, RequestContext{"req-test", "127.0.0.1", ""}}; }

  // Authenticates a token that must be valid.
  static Caller Must(Vault& v, const std::string& token) {
    auto p = v.Authenticate(token);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return As(p.ok() ? *p : Principal{});
  }

  template <typename T>
  static T Ok(Result<T> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) throw std::runtime_error(r.status().ToString());  // stops the test here
    return std::move(r).value();
  }
  // A reply as a client reads it: `body` also when the vault gave it as text
  // (Reply::body_text, a record read in full view).
  static Reply Ok(Result<Reply> r) {
    Reply reply = Ok<Reply>(std::move(r));
    if (!reply.body_text.empty()) reply.body = nlohmann::json::parse(reply.body_text);
    return reply;
  }

  // Initialises a key-file vault and returns the root token.
  std::string InitKeyfile(Vault& v) {
    auto reply = Ok(v.Initialize(RequestContext{}, nlohmann::json::object()));
    return reply.body["root_token"].get<std::string>();
  }

  // The first admin every tenant of SetUpTenant is created with.
  static constexpr char kTenantAdmin[] = "admin";
  static constexpr char kTenantAdminPassword[] = "Orchid-Lantern-Quarry-58";

  // Signs `username` of tenant `t` in with `password` and authenticates the
  // session token (which must work).
  static Caller SignIn(Vault& v, const std::string& t, const std::string& username, const std::string& password) {
    auto reply = Ok(v.Login(RequestContext{"req-test", "127.0.0.1", ""},
                            {{"username", username}, {"password", password}, {"tenant", t}}));
    EXPECT_TRUE(reply.body["restriction"].is_null()) << reply.body.dump();
    return Must(v, reply.body["token"].get<std::string>());
  }

  // Creates tenant `t` as `creator` (root or an operator) with its first
  // admin (kTenantAdmin); staff do not administer a tenant, so that admin
  // signs in and adds a customers collection (email indexed + masked email,
  // phone last4, name partial, age indexed integer, note unmasked) and an
  // admin API key, which is returned. `admin_session`, when given, receives
  // the admin's session.
  std::string SetUpTenant(Vault& v, const Caller& creator, const std::string& t, Caller* admin_session = nullptr) {
    Ok(v.CreateTenant(creator, {{"id", t},
                                {"name", "Tenant " + t},
                                {"admin", {{"username", kTenantAdmin}, {"password", kTenantAdminPassword}}}}));
    Caller admin = SignIn(v, t, kTenantAdmin, kTenantAdminPassword);
    Ok(v.PutCollection(admin, t, "customers", nlohmann::json::parse(R"({"fields":{
        "email":{"type":"string","class":"personal","index":true,"mask":"email"},
        "phone":{"type":"string","class":"personal","mask":"last4"},
        "name":{"type":"string","class":"personal","mask":"partial"},
        "age":{"type":"integer","index":true,"mask":"hidden"},
        "note":{"type":"string"}},"required":["email"],"retention_days":365})")));
    auto key = Ok(v.CreateApiKey(admin, t, {{"name", "admin key"}, {"role", "admin"}}));
    if (admin_session != nullptr) *admin_session = admin;
    return key.body["key"].get<std::string>();
  }

  TempDir dir_;
  FakeClock clock_;
};

}  // namespace kura::vault::testing

#endif  // KURA_VAULT_VAULT_TEST_UTIL_H_
