#include "vault/vault.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "crypto/random.h"
#include "vault/vault_test_util.h"

namespace kura::vault {
namespace {

using nlohmann::json;
using testing::SealKind;
using testing::VaultFixture;

class VaultTest : public VaultFixture {};

// --- Seal lifecycle ------------------------------------------------------------

TEST_F(VaultTest, KeyfileInitUnsealSealCycle) {
  auto v = OpenVault(SealKind::kKeyfile);
  SealStatus s = v->GetSealStatus();
  EXPECT_FALSE(s.initialized);
  EXPECT_TRUE(s.sealed);
  EXPECT_EQ(s.type, "keyfile");
  EXPECT_TRUE(v->IsSealed());
  EXPECT_EQ(v->AutoUnseal().code(), StatusCode::kFailedPrecondition);  // not initialised
  EXPECT_EQ(v->Unseal({}, json::object()).status().code(), StatusCode::kFailedPrecondition);

  auto init = Ok(v->Initialize({}, json::object()));
  EXPECT_EQ(init.body["shares"], json::array());
  std::string root_token = init.body["root_token"];
  EXPECT_TRUE(root_token.starts_with("kura_root_"));
  EXPECT_FALSE(v->IsSealed());
  EXPECT_TRUE(v->GetSealStatus().initialized);
  EXPECT_EQ(v->GetSealStatus().ToJson(),
            json::parse(R"({"initialized":true,"sealed":false,"type":"keyfile","progress":0,"threshold":0})"));
  struct stat st;
  ASSERT_EQ(::stat(KeyPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto again = v->Initialize({}, json::object());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);

  Caller root = Must(*v, root_token);
  std::string admin_token = SetUpTenant(*v, root, "acme");
  Caller admin = Must(*v, admin_token);
  auto rec = Ok(v->CreateRecord(admin, "acme", "customers", {{"data", {{"email", "a@b.example"}}}}));
  std::string id = rec.body["id"];

  // Only root may seal.
  EXPECT_EQ(v->Seal(admin).status().code(), StatusCode::kPermissionDenied);
  auto sealed = Ok(v->Seal(root));
  EXPECT_EQ(sealed.body["sealed"], true);
  EXPECT_TRUE(v->IsSealed());
  EXPECT_EQ(v->GetRecord(admin, "acme", "customers", id, std::nullopt).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(v->GetRecord(admin, "acme", "customers", id, std::nullopt).status().message(), "vault is sealed");
  EXPECT_EQ(v->Seal(root).status().code(), StatusCode::kFailedPrecondition);

  // The key file seal unseals without input, through the route or AutoUnseal.
  auto unsealed = Ok(v->Unseal({}, json::object()));
  EXPECT_EQ(unsealed.body["sealed"], false);
  EXPECT_EQ(Ok(v->GetRecord(admin, "acme", "customers", id, std::nullopt)).body["data"]["email"], "a@b.example");
  Ok(v->Seal(root));
  ASSERT_TRUE(v->AutoUnseal().ok());
  EXPECT_FALSE(v->IsSealed());

  // A restart opens sealed, remembers it is initialised, and auto-unseals.
  v.reset();
  v = OpenVault(SealKind::kKeyfile);
  EXPECT_TRUE(v->IsSealed());
  EXPECT_TRUE(v->GetSealStatus().initialized);
  ASSERT_TRUE(v->AutoUnseal().ok());
  admin = Must(*v, admin_token);
  EXPECT_EQ(Ok(v->GetRecord(admin, "acme", "customers", id, std::nullopt)).body["data"]["email"], "a@b.example");
  EXPECT_TRUE(v->Authenticate(root_token).ok());
}

TEST_F(VaultTest, InitBodyMustMatchConfiguredSeal) {
  auto v = OpenVault(SealKind::kKeyfile);
  for (const char* body : {R"({"seal":"shamir","shares":3,"threshold":2})", R"({"shares":3})",
                           R"({"threshold":2})", R"({"seal":"pkcs11"})", R"({"seal":1})", R"({"extra":true})",
                           R"([])"}) {
    auto r = v->Initialize({}, json::parse(body));
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
  }
  EXPECT_FALSE(v->GetSealStatus().initialized);
  EXPECT_FALSE(std::filesystem::exists(KeyPath()));  // nothing made
  EXPECT_TRUE(v->Initialize({}, json::parse(R"({"seal":"keyfile"})")).ok());
}

TEST_F(VaultTest, ShamirInitUnsealSealCycle) {
  auto v = OpenVault(SealKind::kShamir);
  EXPECT_EQ(v->GetSealStatus().type, "shamir");
  for (const char* body : {R"({})", R"({"seal":"keyfile"})", R"({"seal":"shamir","shares":3})",
                           R"({"seal":"shamir","shares":3,"threshold":4})",
                           R"({"seal":"shamir","shares":3,"threshold":1})",
                           R"({"seal":"shamir","shares":0,"threshold":0})",
                           R"({"seal":"shamir","shares":"5","threshold":3})"}) {
    EXPECT_EQ(v->Initialize({}, json::parse(body)).status().code(), StatusCode::kInvalidArgument) << body;
  }
  auto init = Ok(v->Initialize({}, json::parse(R"({"seal":"shamir","shares":5,"threshold":3})")));
  ASSERT_EQ(init.body["shares"].size(), 5u);
  std::vector<std::string> shares = init.body["shares"];
  Caller root = Must(*v, init.body["root_token"]);
  std::string admin_token = SetUpTenant(*v, root, "acme");
  std::string id =
      Ok(v->CreateRecord(Must(*v, admin_token), "acme", "customers", {{"data", {{"email", "x@y.example"}}}}))
          .body["id"];

  Ok(v->Seal(root));
  EXPECT_EQ(v->GetSealStatus().threshold, 3);
  EXPECT_EQ(v->GetSealStatus().progress, 0);
  auto r1 = Ok(v->Unseal({}, {{"share", shares[0]}}));
  EXPECT_EQ(r1.body["sealed"], true);
  EXPECT_EQ(r1.body["progress"], 1);
  EXPECT_EQ(r1.body["threshold"], 3);
  // A repeated or malformed share is refused without losing progress.
  EXPECT_EQ(v->Unseal({}, {{"share", shares[0]}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v->Unseal({}, {{"share", "not-a-share"}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v->Unseal({}, json::object()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v->GetSealStatus().progress, 1);
  EXPECT_EQ(Ok(v->Unseal({}, {{"share", shares[3]}})).body["progress"], 2);
  EXPECT_TRUE(v->IsSealed());
  auto done = Ok(v->Unseal({}, {{"share", shares[4]}}));
  EXPECT_EQ(done.body["sealed"], false);
  EXPECT_EQ(done.body["progress"], 3);
  EXPECT_EQ(done.body["threshold"], 3);
  EXPECT_FALSE(v->IsSealed());
  EXPECT_EQ(Ok(v->GetRecord(Must(*v, admin_token), "acme", "customers", id, std::nullopt)).body["data"]["email"],
            "x@y.example");
  EXPECT_EQ(v->AutoUnseal().code(), StatusCode::kOk);  // already unsealed: nothing to do

  // A restart needs the shares again; AutoUnseal cannot help.
  v.reset();
  v = OpenVault(SealKind::kShamir);
  EXPECT_TRUE(v->IsSealed());
  EXPECT_EQ(v->AutoUnseal().code(), StatusCode::kFailedPrecondition);
  for (int i : {2, 0, 1}) Ok(v->Unseal({}, {{"share", shares[i]}}));
  EXPECT_FALSE(v->IsSealed());
}

TEST_F(VaultTest, WrongSharesAreRefusedAndResetProgress) {
  // Shares of another vault with the same parameters.
  std::vector<std::string> foreign;
  {
    testing::TempDir other_dir;
    store::SqliteOptions so;
    so.path = other_dir.path() + "/kura.db";
    so.durable = false;
    Options options;
    options.store = Ok(store::OpenSqliteStore(so));
    options.key_store = OpenKeyStore(other_dir.path() + "/keys.db");
    options.seal = crypto::MakeShamirSeal();
    options.clock = &clock_;
    auto other = Ok(Vault::Open(std::move(options)));
    foreign = Ok(other->Initialize({}, json::parse(R"({"seal":"shamir","shares":3,"threshold":2})"))).body["shares"];
  }
  auto v = OpenVault(SealKind::kShamir);
  auto init = Ok(v->Initialize({}, json::parse(R"({"seal":"shamir","shares":3,"threshold":2})")));
  std::vector<std::string> shares = init.body["shares"];
  Ok(v->Seal(Must(*v, init.body["root_token"])));

  Ok(v->Unseal({}, {{"share", foreign[0]}}));
  auto wrong = v->Unseal({}, {{"share", foreign[1]}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(), "unseal failed: shares do not match this vault");
  EXPECT_TRUE(v->IsSealed());
  EXPECT_EQ(v->GetSealStatus().progress, 0);

  // Mixing one right share with one foreign share fails the same way.
  Ok(v->Unseal({}, {{"share", shares[0]}}));
  auto mixed = v->Unseal({}, {{"share", foreign[2]}});
  EXPECT_EQ(mixed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(v->IsSealed());

  // Afterwards the right shares still work.
  Ok(v->Unseal({}, {{"share", shares[2]}}));
  Ok(v->Unseal({}, {{"share", shares[1]}}));
  EXPECT_FALSE(v->IsSealed());
}

TEST_F(VaultTest, WrongKeyFileIsRefused) {
  {
    auto v = OpenVault(SealKind::kKeyfile);
    InitKeyfile(*v);
  }
  // Replace the key file with other bytes of the right length and mode.
  std::filesystem::remove(KeyPath());
  {
    Bytes other = crypto::RandomBytes(32);
    std::ofstream out(KeyPath(), std::ios::binary);
    out.write(reinterpret_cast<const char*>(other.data()), static_cast<std::streamsize>(other.size()));
  }
  ::chmod(KeyPath().c_str(), 0600);
  auto v = OpenVault(SealKind::kKeyfile);
  Status s = v->AutoUnseal();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(v->IsSealed());
}

TEST_F(VaultTest, ConcurrentInitHasExactlyOneWinner) {
  auto v = OpenVault(SealKind::kKeyfile);
  std::atomic<int> wins{0};
  std::atomic<int> already{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = v->Initialize({}, json::object());
      if (r.ok()) ++wins;
      if (r.status().code() == StatusCode::kAlreadyExists) ++already;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(already.load(), 7);
}

TEST_F(VaultTest, SecondVaultOnTheSameStoreCannotInitialiseAgain) {
  auto first = OpenVault(SealKind::kShamir);
  Ok(first->Initialize({}, json::parse(R"({"shares":2,"threshold":2})")));
  // Another process sharing the database, which had not seen the init yet.
  store::SqliteOptions so;
  so.path = DbPath();
  so.durable = false;
  Options options;
  options.store = Ok(store::OpenSqliteStore(so));
  options.key_store = OpenKeyStore(KeysPath());
  options.seal = crypto::MakeShamirSeal();
  options.clock = &clock_;
  auto second = Ok(Vault::Open(std::move(options)));
  EXPECT_EQ(second->Initialize({}, json::parse(R"({"shares":2,"threshold":2})")).status().code(),
            StatusCode::kAlreadyExists);
}

TEST_F(VaultTest, DevInitializeReturnsAndChecksTheRootToken) {
  std::string token;
  {
    auto v = OpenVault(SealKind::kKeyfile);
    token = Ok(v->DevInitialize(""));
    EXPECT_TRUE(token.starts_with("kura_root_"));
    EXPECT_FALSE(v->IsSealed());
    EXPECT_EQ(Ok(v->DevInitialize(token)), token);
  }
  auto v = OpenVault(SealKind::kKeyfile);
  EXPECT_TRUE(v->IsSealed());
  EXPECT_EQ(v->DevInitialize("kura_root_wrong").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(Ok(v->DevInitialize(token)), token);
  EXPECT_FALSE(v->IsSealed());
  EXPECT_TRUE(v->Authenticate(token).ok());
}

TEST_F(VaultTest, DevInitializeNeedsTheKeyfileSeal) {
  auto v = OpenVault(SealKind::kShamir);
  EXPECT_EQ(v->DevInitialize("").status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(VaultTest, SealedVaultRefusesEveryDataCall) {
  auto v = OpenVault(SealKind::kKeyfile);
  Caller root = Must(*v, InitKeyfile(*v));
  Caller admin = Must(*v, SetUpTenant(*v, root, "acme"));
  std::string id = Ok(v->CreateRecord(admin, "acme", "customers", {{"data", {{"email", "a@b.example"}}}})).body["id"];
  Ok(v->Seal(root));
  json body = {{"data", {{"email", "c@d.example"}}}};
  std::vector<std::pair<std::string, Status>> calls = {
      {"Whoami", v->Whoami(admin).status()},
      {"CreateTenant", v->CreateTenant(root, {{"id", "x"}, {"name", "X"}}).status()},
      {"GetTenant", v->GetTenant(root, "acme").status()},
      {"ListTenants", v->ListTenants(root, {}).status()},
      {"DeleteTenant", v->DeleteTenant(root, "acme").status()},
      {"PutCollection", v->PutCollection(admin, "acme", "c", json::parse(R"({"fields":{"a":{"type":"string"}}})")).status()},
      {"GetCollection", v->GetCollection(admin, "acme", "customers").status()},
      {"ListCollections", v->ListCollections(admin, "acme").status()},
      {"PutRole", v->PutRole(admin, "acme", "r", json::parse(R"({"permissions":[]})")).status()},
      {"GetRole", v->GetRole(admin, "acme", "admin").status()},
      {"ListRoles", v->ListRoles(admin, "acme").status()},
      {"DeleteRole", v->DeleteRole(admin, "acme", "r").status()},
      {"CreateApiKey", v->CreateApiKey(admin, "acme", {{"name", "k"}, {"role", "admin"}}).status()},
      {"ListApiKeys", v->ListApiKeys(admin, "acme").status()},
      {"RevokeApiKey", v->RevokeApiKey(admin, "acme", admin.principal.id).status()},
      {"CreateRecord", v->CreateRecord(admin, "acme", "customers", body).status()},
      {"GetRecord", v->GetRecord(admin, "acme", "customers", id, std::nullopt).status()},
      {"UpdateRecord", v->UpdateRecord(admin, "acme", "customers", id, body, std::nullopt).status()},
      {"DeleteRecord", v->DeleteRecord(admin, "acme", "customers", id).status()},
      {"ListVersions", v->ListVersions(admin, "acme", "customers", id).status()},
      {"FindRecords", v->FindRecords(admin, "acme", "customers", {{"email", "a@b.example"}}, {}).status()},
  };
  for (const auto& [name, status] : calls) {
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << name << ": " << status.ToString();
    EXPECT_EQ(status.message(), "vault is sealed") << name;
  }
  // Nothing changed while sealed.
  ASSERT_TRUE(v->AutoUnseal().ok());
  EXPECT_EQ(Ok(v->GetRecord(admin, "acme", "customers", id, std::nullopt)).body["version"], 1);
  EXPECT_TRUE(v->Authenticate(SetUpTenant(*v, root, "other")).ok());
}

// --- Records ---------------------------------------------------------------------

class RecordTest : public VaultFixture {
 protected:
  void SetUp() override {
    v_ = OpenVault(SealKind::kKeyfile, /*keep_versions=*/3);
    root_token_ = InitKeyfile(*v_);
    root_ = Must(*v_, root_token_);
    admin_token_ = SetUpTenant(*v_, root_, "acme");
    admin_ = Must(*v_, admin_token_);
  }

  std::string Create(const json& data, std::optional<std::string> subject = std::nullopt) {
    json body = {{"data", data}};
    if (subject) body["subject"] = *subject;
    auto reply = Ok(v_->CreateRecord(admin_, "acme", "customers", body));
    EXPECT_TRUE(reply.created);
    EXPECT_EQ(reply.version, 1);
    return reply.body["id"];
  }

  std::vector<std::string> FindIds(const std::string& field, const std::string& value) {
    auto reply = Ok(v_->FindRecords(admin_, "acme", "customers", {{field, value}}, {}));
    std::vector<std::string> ids;
    for (const auto& item : reply.body["items"]) ids.push_back(item["id"]);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::unique_ptr<Vault> v_;
  std::string root_token_;
  Caller root_;
  std::string admin_token_;
  Caller admin_;
};

// A row read ahead (Vault::PrefetchRecord) serves the one GetRecord of that
// record that runs with it installed, after the usual checks; nothing else.
TEST_F(RecordTest, PrefetchedRowServesOnlyItsOwnRead) {
  std::string id = Create({{"email", "hana@example.jp"}});
  std::string other = Create({{"email", "kenji@example.jp"}});
  std::unique_ptr<RecordPrefetch> prefetch;
  v_->PrefetchRecord("acme", "customers", id, [&](std::unique_ptr<RecordPrefetch> p) { prefetch = std::move(p); });
  ASSERT_NE(prefetch, nullptr);  // SQLite reads in place: done at once
  EXPECT_TRUE(prefetch->answered());
  // The record moves on after the read ahead: a read served from the
  // prefetch shows the version it holds.
  Ok(v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", {{"email", "new@example.jp"}}}}, std::nullopt));

  prefetch->Install();
  // Not for another record, nor an explicit version, nor a caller without the right.
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", other, std::nullopt)).body["data"]["email"],
            "kenji@example.jp");
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, 2)).version, 2);
  EXPECT_EQ(v_->GetRecord(root_, "acme", "customers", id, std::nullopt).status().code(), StatusCode::kPermissionDenied);
  auto served = Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(served.version, 1);
  EXPECT_EQ(served.body["data"]["email"], "hana@example.jp");
  // Once only: the next read reads anew.
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt)).version, 2);
  prefetch->Uninstall();

  // A missing record is an answer too (the request reports NotFound); names
  // that cannot be a record's are not read at all.
  std::unique_ptr<RecordPrefetch> missing;
  v_->PrefetchRecord("acme", "customers", "0000000000000000000000000A",
                     [&](std::unique_ptr<RecordPrefetch> p) { missing = std::move(p); });
  ASSERT_NE(missing, nullptr);
  EXPECT_TRUE(missing->answered());
  bool called = false;
  v_->PrefetchRecord("acme", "customers", "../x", [&](std::unique_ptr<RecordPrefetch> p) {
    called = true;
    EXPECT_EQ(p, nullptr);
  });
  EXPECT_TRUE(called);
}

// A full-view read sends the decrypted document as it was sealed, spliced
// into the reply (Reply::body_text) rather than parsed and printed again:
// what a client parses must be what the parsed form says, whatever the values
// hold — a field called "subject", values that look like the document's own
// members, quotes, backslashes, non-ASCII. A masked view is built parsed.
TEST_F(RecordTest, FullViewReadSendsTheSealedDocumentAsItIs) {
  Ok(v_->PutCollection(admin_, "acme", "tricky", json::parse(R"({"fields":{
      "subject":{"type":"string"}, "obj":{"type":"object"}, "note":{"type":"string","mask":"partial"}}})")));
  Ok(v_->PutRole(admin_, "acme", "peek", json::parse(R"({"permissions":[
      {"action":"record.read","collections":["tricky"],"view":"masked"}]})")));
  Caller peek = Must(*v_, Ok(v_->CreateApiKey(admin_, "acme", {{"name", "p"}, {"role", "peek"}})).body["key"]);
  const json data = {{"subject", R"(x","subject":"forged"})"},
                     {"obj", {{"subject", nullptr}, {"k", "\\\"}"}, {"n", {1.5, -2, true}}}},
                     {"note", "\u5c71\u7530 ,\"subject\":null}"}};
  for (const std::optional<std::string>& subject :
       {std::optional<std::string>(), std::optional<std::string>(R"(cust "7" \ ,"subject":null})")}) {
    json body = {{"data", data}};
    if (subject) body["subject"] = *subject;
    const std::string id = Ok(v_->CreateRecord(admin_, "acme", "tricky", body)).body["id"];

    auto full = v_->GetRecord(admin_, "acme", "tricky", id, std::nullopt);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    EXPECT_TRUE(full->body.is_null());
    ASSERT_FALSE(full->body_text.empty());
    EXPECT_EQ(full->version, 1);
    EXPECT_EQ(json::parse(full->body_text), json({{"id", id},
                                                  {"version", 1},
                                                  {"data", data},
                                                  {"subject", subject ? json(*subject) : json(nullptr)},
                                                  {"created_at", "2030-01-01T00:00:00Z"},
                                                  {"updated_at", "2030-01-01T00:00:00Z"}}));

    auto masked = v_->GetRecord(peek, "acme", "tricky", id, std::nullopt);
    ASSERT_TRUE(masked.ok()) << masked.status().ToString();
    EXPECT_TRUE(masked->body_text.empty());
    EXPECT_EQ(masked->body["id"], id);
    EXPECT_EQ(masked->body["data"]["subject"], data["subject"]);
    EXPECT_NE(masked->body["data"]["note"], data["note"]);
  }
}

TEST_F(RecordTest, CreateReadUpdateDelete) {
  json data = {{"email", "hana@example.jp"}, {"phone", "+81 90 1234 5678"}, {"age", 31}};
  std::string id = Create(data, "cust-42");
  EXPECT_EQ(id.size(), 26u);  // 12 hex digits of milliseconds + base64url of 10 random bytes

  auto got = Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(got.version, 1);
  EXPECT_EQ(got.body["id"], id);
  EXPECT_EQ(got.body["version"], 1);
  EXPECT_EQ(got.body["data"], data);
  EXPECT_EQ(got.body["subject"], "cust-42");
  EXPECT_EQ(got.body["created_at"], "2030-01-01T00:00:00Z");
  EXPECT_EQ(got.body["updated_at"], "2030-01-01T00:00:00Z");

  clock_.Advance(std::chrono::hours(1));
  json data2 = {{"email", "hana@example.jp"}, {"note", "moved"}};
  auto upd = Ok(v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", data2}}, 1));
  EXPECT_EQ(upd.body, json({{"id", id}, {"version", 2}}));
  EXPECT_EQ(upd.version, 2);

  got = Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(got.body["version"], 2);
  EXPECT_EQ(got.body["data"], data2);
  EXPECT_EQ(got.body["subject"], "cust-42");  // left out on update: kept
  EXPECT_EQ(got.body["created_at"], "2030-01-01T00:00:00Z");
  EXPECT_EQ(got.body["updated_at"], "2030-01-01T01:00:00Z");

  // An older version stays readable.
  auto v1 = Ok(v_->GetRecord(admin_, "acme", "customers", id, 1));
  EXPECT_EQ(v1.body["data"], data);
  EXPECT_EQ(v1.version, 1);

  // Unconditional update; explicit null subject removes it.
  auto upd3 = Ok(v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", data2}, {"subject", nullptr}},
                                  std::nullopt));
  EXPECT_EQ(upd3.body["version"], 3);
  EXPECT_TRUE(Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt)).body["subject"].is_null());

  auto del = Ok(v_->DeleteRecord(admin_, "acme", "customers", id));
  EXPECT_TRUE(del.no_content);
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->DeleteRecord(admin_, "acme", "customers", id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", data2}}, std::nullopt).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(v_->ListVersions(admin_, "acme", "customers", id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(FindIds("email", "hana@example.jp").empty());
}

// The HTTP server's I/O thread calls record reads and creates under an
// AuditDeferral: the call returns before its entry (and a create's write) is
// durable, and OnDurable says when it is.
TEST_F(RecordTest, DeferredAuditCompletesReadsAndCreates) {
  auto await_durable = [](AuditDeferral& d) {
    std::promise<Status> done;
    auto result = done.get_future();
    d.OnDurable([&done](Status s) { done.set_value(std::move(s)); });
    return result.get();
  };
  auto entries = [&](const std::string& action) {
    auto trail = Ok(v_->TenantAuditTrail(admin_, "acme", {{"action", action}, {"limit", "1000"}}));
    return trail.body["items"].size();
  };
  std::string id = Create({{"email", "hana@example.jp"}});
  const std::size_t reads = entries("record.read");
  {
    AuditDeferral d;
    d.Install();
    auto reply = v_->GetRecord(admin_, "acme", "customers", id, std::nullopt);
    d.Uninstall();
    EXPECT_EQ(Ok(std::move(reply)).body["data"]["email"], "hana@example.jp");
    EXPECT_TRUE(await_durable(d).ok());
  }
  EXPECT_EQ(entries("record.read"), reads + 1);

  // A create, deferred: the record and its entry are there once OnDurable says so.
  const std::size_t creates = entries("record.create");
  std::string created;
  {
    AuditDeferral d;
    d.Install(/*changes=*/true);
    auto reply = v_->CreateRecord(admin_, "acme", "customers", {{"data", {{"email", "ken@example.jp"}}}});
    d.Uninstall();
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    created = reply->body["id"];
    EXPECT_TRUE(await_durable(d).ok());
  }
  EXPECT_EQ(entries("record.create"), creates + 1);
  auto read = Ok(v_->GetRecord(admin_, "acme", "customers", created, std::nullopt));
  EXPECT_EQ(read.body["data"]["email"], "ken@example.jp");

  // Without `changes` a create waits as before: nothing is left pending.
  {
    AuditDeferral d;
    d.Install();
    auto reply = v_->CreateRecord(admin_, "acme", "customers", {{"data", {{"email", "mei@example.jp"}}}});
    d.Uninstall();
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_TRUE(await_durable(d).ok());
  }
  EXPECT_EQ(entries("record.create"), creates + 2);

  // A failed read under a deferral is audited too, and reported durable.
  const std::size_t failed_reads = entries("record.read");
  {
    AuditDeferral d;
    d.Install();
    auto reply = v_->GetRecord(admin_, "acme", "customers", "no-such-record", std::nullopt);
    d.Uninstall();
    EXPECT_EQ(reply.status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(await_durable(d).ok());
  }
  EXPECT_EQ(entries("record.read"), failed_reads + 1);
}

// Regression: an id starting with '-' was taken for an option by the CLI.
TEST_F(RecordTest, RecordIdsNeverStartWithAPunctuationMark) {
  for (int i = 0; i < 300; ++i) {
    std::string id = Create({{"email", "a@b.example"}});
    ASSERT_EQ(id.size(), 26u);
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(id[0]))) << id;
  }
}

// Ids carry their creation time first, so inserts close in time share B-tree
// pages (one group commit writes few pages); the random part keeps them unique.
TEST_F(RecordTest, RecordIdsSortByCreationTimeAndAreUnique) {
  std::string earlier = Create({{"email", "a@b.example"}});
  clock_.Advance(std::chrono::milliseconds(1));
  std::string later = Create({{"email", "a@b.example"}});
  EXPECT_LT(earlier, later);
  std::string same_ms = Create({{"email", "a@b.example"}});
  EXPECT_NE(later, same_ms);
  EXPECT_EQ(later.substr(0, 12), same_ms.substr(0, 12));
}

TEST_F(RecordTest, StaleIfMatchIsAConflict) {
  std::string id = Create({{"email", "a@b.example"}});
  Ok(v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", {{"email", "c@b.example"}}}}, 1));
  auto stale = v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", {{"email", "d@b.example"}}}}, 1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted);
  auto future = v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", {{"email", "d@b.example"}}}}, 7);
  EXPECT_EQ(future.status().code(), StatusCode::kAborted);
  auto got = Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(got.body["version"], 2);
  EXPECT_EQ(got.body["data"]["email"], "c@b.example");
}

TEST_F(RecordTest, ConcurrentConditionalUpdatesHaveOneWinner) {
  std::string id = Create({{"email", "a@b.example"}});
  std::atomic<int> ok{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto r = v_->UpdateRecord(admin_, "acme", "customers", id,
                                {{"data", {{"email", "t" + std::to_string(i) + "@b.example"}}}}, 1);
      if (r.ok()) ++ok;
      if (r.status().code() == StatusCode::kAborted) ++conflicts;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflicts.load(), 5);
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt)).body["version"], 2);
}

TEST_F(RecordTest, KeepsTheConfiguredNumberOfVersions) {
  std::string id = Create({{"email", "v1@b.example"}});
  for (int i = 2; i <= 5; ++i) {
    clock_.Advance(std::chrono::minutes(1));
    Ok(v_->UpdateRecord(admin_, "acme", "customers", id,
                        {{"data", {{"email", "v" + std::to_string(i) + "@b.example"}}}}, i - 1));
  }
  auto versions = Ok(v_->ListVersions(admin_, "acme", "customers", id));
  ASSERT_EQ(versions.body["items"].size(), 3u);  // keep_versions = 3
  EXPECT_EQ(versions.body["items"][0]["version"], 5);
  EXPECT_EQ(versions.body["items"][1]["version"], 4);
  EXPECT_EQ(versions.body["items"][2]["version"], 3);
  EXPECT_EQ(versions.body["items"][0]["created_at"], "2030-01-01T00:04:00Z");
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, 3)).body["data"]["email"], "v3@b.example");
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", id, 2).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", id, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", id, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RecordTest, FindsByBlindIndex) {
  std::string a = Create({{"email", "Alice@Example.com"}, {"age", 30}});
  std::string b = Create({{"email", "bob@example.com"}, {"age", 30}});
  std::string c = Create({{"email", "carol@example.com"}, {"age", 41}});
  EXPECT_EQ(FindIds("email", "alice@example.com"), std::vector<std::string>{a});
  EXPECT_EQ(FindIds("email", "  ALICE@example.COM "), std::vector<std::string>{a});  // normalised
  EXPECT_EQ(FindIds("email", "dave@example.com"), std::vector<std::string>{});
  std::vector<std::string> thirty = {a, b};
  std::sort(thirty.begin(), thirty.end());
  EXPECT_EQ(FindIds("age", "30"), thirty);
  EXPECT_EQ(FindIds("age", "41"), std::vector<std::string>{c});

  // Each item has GetRecord's shape.
  auto found = Ok(v_->FindRecords(admin_, "acme", "customers", {{"email", "carol@example.com"}}, {}));
  ASSERT_EQ(found.body["items"].size(), 1u);
  EXPECT_EQ(found.body["items"][0], Ok(v_->GetRecord(admin_, "acme", "customers", c, std::nullopt)).body);
  EXPECT_TRUE(found.body["next"].is_null());

  // The index follows updates.
  Ok(v_->UpdateRecord(admin_, "acme", "customers", c, {{"data", {{"email", "carol@new.example"}}}}, 1));
  EXPECT_TRUE(FindIds("email", "carol@example.com").empty());
  EXPECT_EQ(FindIds("email", "carol@new.example"), std::vector<std::string>{c});
  EXPECT_TRUE(FindIds("age", "41").empty());

  // Pagination.
  PageParams page;
  page.limit = 1;
  auto p1 = Ok(v_->FindRecords(admin_, "acme", "customers", {{"age", "30"}}, page));
  ASSERT_EQ(p1.body["items"].size(), 1u);
  ASSERT_TRUE(p1.body["next"].is_string());
  page.after = p1.body["next"];
  auto p2 = Ok(v_->FindRecords(admin_, "acme", "customers", {{"age", "30"}}, page));
  ASSERT_EQ(p2.body["items"].size(), 1u);
  EXPECT_NE(p1.body["items"][0]["id"], p2.body["items"][0]["id"]);

  // Bad lookups.
  auto code = [&](const std::map<std::string, std::string>& f, PageParams p = {}) {
    return v_->FindRecords(admin_, "acme", "customers", f, p).status().code();
  };
  EXPECT_EQ(code({{"phone", "1234"}}), StatusCode::kInvalidArgument);  // not indexed
  EXPECT_EQ(code({{"nope", "x"}}), StatusCode::kInvalidArgument);      // unknown field
  EXPECT_EQ(code({{"age", "thirty"}}), StatusCode::kInvalidArgument);  // wrong type
  EXPECT_EQ(code({{"email", "a"}, {"age", "30"}}), StatusCode::kInvalidArgument);
  PageParams zero;
  zero.limit = 0;
  EXPECT_EQ(code({{"age", "30"}}, zero), StatusCode::kInvalidArgument);
  PageParams bad_after;
  bad_after.after = "../../x";
  EXPECT_EQ(code({{"age", "30"}}, bad_after), StatusCode::kInvalidArgument);

  // No filter: a paginated walk of the collection (admin has record.export).
  auto all = Ok(v_->FindRecords(admin_, "acme", "customers", {}, {}));
  EXPECT_EQ(all.body["items"].size(), 3u);
}

TEST_F(RecordTest, MaskedViewForAMaskedRole) {
  Ok(v_->PutRole(admin_, "acme", "support", json::parse(R"({"permissions":[
      {"action":"record.read","collections":["customers"],"view":"masked"}]})")));
  Ok(v_->PutRole(admin_, "acme", "billing", json::parse(R"({"permissions":[
      {"action":"record.read","collections":["customers"],"view":"masked"},
      {"action":"record.read","collections":["*"],"view":"full"}]})")));
  Caller support = Must(*v_, Ok(v_->CreateApiKey(admin_, "acme", {{"name", "s"}, {"role", "support"}})).body["key"]);
  Caller billing = Must(*v_, Ok(v_->CreateApiKey(admin_, "acme", {{"name", "b"}, {"role", "billing"}})).body["key"]);
  json data = {{"email", "alice@example.com"},
               {"phone", "+81 90 1234 5678"},
               {"name", "\u5c71\u7530\u82b1\u5b50"},
               {"age", 31},
               {"note", "prefers mornings"}};
  std::string id = Create(data, "cust-7");

  auto masked = Ok(v_->GetRecord(support, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(masked.body["data"], json({{"email", "a****@example.com"},
                                       {"phone", "************5678"},
                                       {"name", "\u5c71**\u5b50"},
                                       {"note", "prefers mornings"}}));  // age is hidden
  EXPECT_EQ(masked.body["subject"], "cust-7");
  auto found = Ok(v_->FindRecords(support, "acme", "customers", {{"email", "alice@example.com"}}, {}));
  ASSERT_EQ(found.body["items"].size(), 1u);
  EXPECT_EQ(found.body["items"][0]["data"], masked.body["data"]);

  // Full wins when any matching permission gives it.
  EXPECT_EQ(Ok(v_->GetRecord(billing, "acme", "customers", id, std::nullopt)).body["data"], data);
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt)).body["data"], data);

  // A masked reader may not walk the whole collection without record.export.
  EXPECT_EQ(v_->FindRecords(support, "acme", "customers", {}, {}).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(RecordTest, BadBodiesAreRefusedAndNothingIsStored) {
  std::vector<json> bad = {
      json::array(),
      json::object(),
      {{"data", "x"}},
      {{"data", {{"email", "a@b.example"}}}, {"extra", 1}},
      {{"data", {{"email", "a@b.example"}, {"unknown", 1}}}},
      {{"data", {{"email", 42}}}},
      {{"data", {{"email", "a@b.example"}, {"age", "31"}}}},
      {{"data", {{"email", "a@b.example"}, {"age", 31.5}}}},
      {{"data", {{"phone", "123"}}}},  // required email missing
      {{"data", {{"email", "a@b.example"}}}, {"subject", 42}},
      {{"data", {{"email", "a@b.example"}}}, {"subject", ""}},
      {{"data", {{"email", "a@b.example"}}}, {"subject", std::string(300, 's')}},
      {{"data", {{"email", "a@b.example"}, {"note", std::string(600 * 1024, 'n')}}}},
  };
  for (const auto& body : bad) {
    auto r = v_->CreateRecord(admin_, "acme", "customers", body);
    ASSERT_FALSE(r.ok()) << body.dump().substr(0, 200);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body.dump().substr(0, 200);
  }
  EXPECT_EQ(Ok(v_->FindRecords(admin_, "acme", "customers", {}, {})).body["items"].size(), 0u);

  // Same for updates: the record stays as it was.
  std::string id = Create({{"email", "keep@b.example"}});
  for (const auto& body : bad) {
    EXPECT_EQ(v_->UpdateRecord(admin_, "acme", "customers", id, body, std::nullopt).status().code(),
              StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(v_->UpdateRecord(admin_, "acme", "customers", id, {{"data", {{"email", "x@y.z"}}}}, 0).status().code(),
            StatusCode::kInvalidArgument);
  auto got = Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt));
  EXPECT_EQ(got.body["version"], 1);
  EXPECT_EQ(got.body["data"]["email"], "keep@b.example");

  // Bad ids and names.
  for (const std::string& bad_id : std::vector<std::string>{"", "../etc", "a b", "a/b", std::string(65, 'a'),
                                                            std::string("a\0b", 3)}) {
    EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", bad_id, std::nullopt).status().code(),
              StatusCode::kInvalidArgument)
        << bad_id;
  }
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", "AAAAAAAAAAAAAAAAAAAAAA", std::nullopt).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(v_->CreateRecord(admin_, "acme", "nope", {{"data", json::object()}}).status().code(),
            StatusCode::kNotFound);

  // Bad tenant, collection, role and key bodies store nothing either.
  auto tenants_before = Ok(v_->ListTenants(root_, {})).body["items"].size();
  for (const char* body : {R"({})", R"({"id":"Bad Id","name":"x"})", R"({"id":"ok","name":""})",
                           R"({"id":"ok","name":"x","region":"mars"})", R"({"id":"ok","name":"x","extra":1})",
                           R"({"id":"ok","name":7})", R"({"id":"ok","name":"x","admin":{"username":"u"}})",
                           R"({"id":"acme","name":"dup"})"}) {
    auto r = v_->CreateTenant(root_, json::parse(body));
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_TRUE(r.status().code() == StatusCode::kInvalidArgument || r.status().code() == StatusCode::kAlreadyExists)
        << body;
  }
  EXPECT_EQ(Ok(v_->ListTenants(root_, {})).body["items"].size(), tenants_before);
  EXPECT_EQ(v_->PutCollection(admin_, "acme", "orders", json::parse(R"({"fields":{"a":{"type":"str"}}})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->GetCollection(admin_, "acme", "orders").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->PutCollection(admin_, "acme", "Bad Name", json::parse(R"({"fields":{"a":{"type":"string"}}})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->PutRole(admin_, "acme", "r", json::parse(R"({"permissions":[{"action":"x","collections":["a"]}]})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->GetRole(admin_, "acme", "r").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->PutRole(admin_, "acme", "admin", json::parse(R"({"permissions":[]})")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->DeleteRole(admin_, "acme", "admin").status().code(), StatusCode::kInvalidArgument);
  auto keys_before = Ok(v_->ListApiKeys(admin_, "acme")).body["items"].size();
  for (const char* body : {R"({"name":"k"})", R"({"role":"admin"})", R"({"name":"k","role":"nope"})",
                           R"({"name":"k","role":"admin","expires_at":"tomorrow"})",
                           R"({"name":"k","role":"admin","expires_at":"2029-01-01T00:00:00Z"})",
                           R"({"name":"k","role":"admin","scope":"x"})"}) {
    EXPECT_EQ(v_->CreateApiKey(admin_, "acme", json::parse(body)).status().code(), StatusCode::kInvalidArgument)
        << body;
  }
  EXPECT_EQ(Ok(v_->ListApiKeys(admin_, "acme")).body["items"].size(), keys_before);
  EXPECT_EQ(v_->RevokeApiKey(admin_, "acme", "not-an-id").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v_->RevokeApiKey(admin_, "acme", std::string(24, 'a')).status().code(), StatusCode::kNotFound);
}

// Reads every file of the data directory (database, WAL, shared memory).
std::string ReadAllFiles(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

TEST_F(RecordTest, DatabaseFilesHoldNoStoredValue) {
  std::vector<std::string> secrets = {"zebra.unique.mailbox@example.org", "+81 90 5555 0199",
                                      "Quintessential Ploughwright", "subject-cust-8675309",
                                      "note-with-a-distinctive-phrase"};
  std::string id =
      Create({{"email", secrets[0]}, {"phone", secrets[1]}, {"name", secrets[2]}, {"note", secrets[4]}}, secrets[3]);
  Ok(v_->UpdateRecord(admin_, "acme", "customers", id,
                      {{"data", {{"email", secrets[0]}, {"phone", secrets[1]}, {"name", secrets[2]}}}}, 1));
  auto key = Ok(v_->CreateApiKey(admin_, "acme", {{"name", "app"}, {"role", "admin"}}));
  std::string api_key = key.body["key"];

  auto check = [&](const std::string& when) {
    std::string bytes = ReadAllFiles(dir_.path());
    ASSERT_FALSE(bytes.empty());
    for (const auto& s : secrets) {
      EXPECT_EQ(bytes.find(s), std::string::npos) << when << ": found '" << s << "'";
      std::string lower = s;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_EQ(bytes.find(lower), std::string::npos) << when << ": found normalised '" << lower << "'";
    }
    EXPECT_EQ(bytes.find(root_token_), std::string::npos) << when;
    EXPECT_EQ(bytes.find(root_token_.substr(10)), std::string::npos) << when;
    EXPECT_EQ(bytes.find(api_key), std::string::npos) << when;
    EXPECT_EQ(bytes.find(api_key.substr(api_key.size() - 43)), std::string::npos) << when;
    EXPECT_NE(bytes.find("customers"), std::string::npos) << when;  // sanity: the files were read
  };
  check("while open");
  v_.reset();  // closes the store: the WAL is checkpointed into the database
  check("after close");
}

TEST_F(RecordTest, CiphertextMovedToAnotherRecordIsDataLoss) {
  std::string a = Create({{"email", "a@b.example"}});
  std::string b = Create({{"email", "b@b.example"}});
  // Copy a's ciphertext onto b through a second, raw connection.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  std::string sql =
      "UPDATE record_versions SET ciphertext = (SELECT ciphertext FROM record_versions WHERE record_id = '" + a +
      "') WHERE record_id = '" + b + "'";
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);

  auto got = v_->GetRecord(admin_, "acme", "customers", b, std::nullopt);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find(b), std::string::npos) << got.status().message();
  EXPECT_EQ(got.status().message().find("a@b.example"), std::string::npos);
  // a is untouched; a lookup that reaches b fails the same way, never returns a's data.
  EXPECT_TRUE(v_->GetRecord(admin_, "acme", "customers", a, std::nullopt).ok());
  EXPECT_EQ(v_->FindRecords(admin_, "acme", "customers", {{"email", "b@b.example"}}, {}).status().code(),
            StatusCode::kDataLoss);
  // An update that would keep b's subject must read it and fails too.
  EXPECT_EQ(v_->UpdateRecord(admin_, "acme", "customers", b, {{"data", {{"email", "c@b.example"}}}}, 1)
                .status()
                .code(),
            StatusCode::kDataLoss);
}

TEST_F(RecordTest, FlippedCiphertextBitIsDataLoss) {
  std::string a = Create({{"email", "a@b.example"}});
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  // Flip one bit in the middle of the stored ciphertext by rewriting the blob.
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT ciphertext FROM record_versions WHERE record_id = ?", -1, &stmt, nullptr),
            SQLITE_OK);
  sqlite3_bind_text(stmt, 1, a.c_str(), -1, SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, 0));
  Bytes blob(p, p + sqlite3_column_bytes(stmt, 0));
  sqlite3_finalize(stmt);
  blob[blob.size() / 2] ^= 0x01;
  ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE record_versions SET ciphertext = ? WHERE record_id = ?", -1, &stmt,
                               nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(stmt, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, a.c_str(), -1, SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_DONE);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", a, std::nullopt).status().code(), StatusCode::kDataLoss);
}

TEST_F(RecordTest, SealDropsTenantKeysAndUnsealReloadsThem) {
  std::string id = Create({{"email", "a@b.example"}});
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt)).body["data"]["email"], "a@b.example");
  // Unsealed again, the keys are unwrapped from the key store anew.
  Ok(v_->Seal(root_));
  ASSERT_TRUE(v_->AutoUnseal().ok());
  EXPECT_EQ(Ok(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt)).body["data"]["email"], "a@b.example");
  // With the tenant's wrapped keys gone from the key store, only a keyring
  // that kept them through the seal could still open the record.
  Ok(v_->Seal(root_));
  EXPECT_EQ(Ok(OpenKeyStore(KeysPath())->DestroyKeys("acme")), 2);
  ASSERT_TRUE(v_->AutoUnseal().ok());
  EXPECT_EQ(v_->GetRecord(admin_, "acme", "customers", id, std::nullopt).status().code(), StatusCode::kDataLoss);
}

TEST_F(RecordTest, DeletedTenantTakesItsKeysAndCredentials) {
  std::string id = Create({{"email", "a@b.example"}});
  EXPECT_TRUE(Ok(v_->DeleteTenant(root_, "acme")).no_content);
  EXPECT_EQ(v_->Authenticate(admin_token_).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(v_->GetTenant(root_, "acme").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->DeleteTenant(root_, "acme").status().code(), StatusCode::kNotFound);
  // A new tenant of the same id gets new keys and none of the old records.
  Caller admin2 = Must(*v_, SetUpTenant(*v_, root_, "acme"));
  EXPECT_EQ(v_->GetRecord(admin2, "acme", "customers", id, std::nullopt).status().code(), StatusCode::kNotFound);
  std::string id2 =
      Ok(v_->CreateRecord(admin2, "acme", "customers", {{"data", {{"email", "n@b.example"}}}})).body["id"];
  // Survives a restart: the record was sealed under the new tenant's keys.
  v_.reset();
  v_ = OpenVault(SealKind::kKeyfile);
  ASSERT_TRUE(v_->AutoUnseal().ok());
  Caller admin3 = SignIn(*v_, "acme", kTenantAdmin, kTenantAdminPassword);
  std::string key = Ok(v_->CreateApiKey(admin3, "acme", {{"name", "x"}, {"role", "admin"}})).body["key"];
  EXPECT_EQ(Ok(v_->GetRecord(Must(*v_, key), "acme", "customers", id2, std::nullopt)).body["data"]["email"],
            "n@b.example");
}

TEST_F(RecordTest, TenantAndAdminBodies) {
  auto t = Ok(v_->CreateTenant(root_, {{"id", "globex"}, {"name", "Globex \u682a\u5f0f\u4f1a\u793e"},
                                       {"region", "eu"}}));
  EXPECT_TRUE(t.created);
  EXPECT_EQ(t.body["id"], "globex");
  EXPECT_EQ(t.body["region"], "eu");
  EXPECT_EQ(t.body["created_at"], "2030-01-01T00:00:00Z");
  EXPECT_EQ(Ok(v_->GetTenant(root_, "globex")).body, t.body);
  EXPECT_EQ(Ok(v_->CreateTenant(root_, {{"id", "initech"}, {"name", "I"}})).body["region"], "jp");  // default
  EXPECT_EQ(v_->CreateTenant(root_, {{"id", "globex"}, {"name", "again"}}).status().code(),
            StatusCode::kAlreadyExists);
  PageParams page;
  page.limit = 2;
  auto p1 = Ok(v_->ListTenants(root_, page));
  EXPECT_EQ(p1.body["items"].size(), 2u);
  ASSERT_TRUE(p1.body["next"].is_string());
  page.after = p1.body["next"];
  auto p2 = Ok(v_->ListTenants(root_, page));
  EXPECT_EQ(p2.body["items"].size(), 1u);

  // Collections: created then replaced; GET returns the stored form.
  json schema = json::parse(R"({"fields":{"sku":{"type":"string","index":true}}})");
  auto c1 = Ok(v_->PutCollection(admin_, "acme", "orders", schema));
  EXPECT_TRUE(c1.created);
  EXPECT_EQ(c1.body["fields"]["sku"]["class"], "internal");
  auto c2 = Ok(v_->PutCollection(admin_, "acme", "orders", c1.body));
  EXPECT_FALSE(c2.created);
  EXPECT_EQ(Ok(v_->GetCollection(admin_, "acme", "orders")).body, c1.body);
  auto list = Ok(v_->ListCollections(admin_, "acme"));
  ASSERT_EQ(list.body["items"].size(), 2u);
  EXPECT_EQ(list.body["items"][0]["name"], "customers");
  EXPECT_EQ(list.body["items"][1]["name"], "orders");

  // Roles: admin is built in and listed.
  auto roles = Ok(v_->ListRoles(admin_, "acme"));
  ASSERT_EQ(roles.body["items"].size(), 1u);
  EXPECT_EQ(roles.body["items"][0]["name"], "admin");
  EXPECT_EQ(Ok(v_->GetRole(admin_, "acme", "admin")).body["permissions"].size(), 9u);
  auto r = Ok(v_->PutRole(admin_, "acme", "app", json::parse(R"({"permissions":[
      {"action":"record.write","collections":["orders"],"view":"full"}]})")));
  EXPECT_TRUE(r.created);
  EXPECT_FALSE(Ok(v_->PutRole(admin_, "acme", "app", r.body)).created);
  EXPECT_EQ(Ok(v_->GetRole(admin_, "acme", "app")).body, r.body);
  EXPECT_EQ(Ok(v_->ListRoles(admin_, "acme")).body["items"].size(), 2u);

  // API keys: the key is shown once, never listed.
  auto k = Ok(v_->CreateApiKey(admin_, "acme", {{"name", "app"}, {"role", "app"}, {"expires_at", "2031-01-01T00:00:00Z"}}));
  EXPECT_TRUE(k.created);
  EXPECT_EQ(k.body["expires_at"], "2031-01-01T00:00:00Z");
  std::string key = k.body["key"];
  EXPECT_TRUE(key.starts_with("kura_key_" + k.body["id"].get<std::string>() + "_"));
  auto keys = Ok(v_->ListApiKeys(admin_, "acme"));
  EXPECT_EQ(keys.body["items"].size(), 2u);
  EXPECT_EQ(keys.body.dump().find(key.substr(key.size() - 43)), std::string::npos);
  auto who = Ok(v_->Whoami(Must(*v_, key)));
  EXPECT_EQ(who.body, json({{"kind", "apikey"}, {"id", k.body["id"]}, {"tenant", "acme"}, {"role", "app"}}));
  EXPECT_EQ(Ok(v_->Whoami(root_)).body["kind"], "root");

  // Deleting a role leaves its keys with no permission at all.
  Caller app = Must(*v_, key);
  EXPECT_TRUE(v_->CreateRecord(app, "acme", "orders", {{"data", {{"sku", "A-1"}}}}).ok());
  EXPECT_TRUE(Ok(v_->DeleteRole(admin_, "acme", "app")).no_content);
  EXPECT_EQ(v_->DeleteRole(admin_, "acme", "app").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v_->CreateRecord(app, "acme", "orders", {{"data", {{"sku", "A-2"}}}}).status().code(),
            StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace kura::vault
