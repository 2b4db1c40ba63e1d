// Records over HTTPS with libcurl: CRUD, versions and If-Match, ETag, lookup
// by blind index, masked views and pagination (SPEC §2, Appendix A).
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

class RecordsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    server_ = KuraServer::Start({}, &error);
    if (server_ == nullptr) {
      setup_error_ = error;
      return;
    }
    auto tenant = CreateTestTenant(*server_, "records-e2e", &error);
    if (!tenant) {
      setup_error_ = error;
      return;
    }
    tenant_ = *tenant;
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  HttpClient& http() { return server_->http(); }
  const std::string& key() { return tenant_.admin_key; }
  std::string Records() { return RecordsPath(tenant_.id, "customers"); }
  std::string Record(const std::string& id) { return RecordPath(tenant_.id, "customers", id); }

  // POSTs a record with the admin key and returns its id ("" on failure).
  std::string Create(const json& data, const std::string& collection = "customers") {
    HttpResponse r = http().Post(RecordsPath(tenant_.id, collection), {{"data", data}}, key());
    EXPECT_EQ(r.status, 201) << r.Describe();
    if (r.status != 201 || !r.json.contains("id") || !r.json["id"].is_string()) return "";
    EXPECT_EQ(r.json.value("version", 0), 1) << r.Describe();
    return r.json["id"].get<std::string>();
  }

  static inline std::unique_ptr<KuraServer> server_;
  static inline TestTenant tenant_;
  static inline std::string setup_error_;
};

json Customer(const std::string& email, const std::string& note = "first") {
  return {{"email", email},
          {"phone", "+81-90-1234-5678"},
          {"name", "Mika Tanaka"},
          {"national_id", "123-45-6789"},
          {"note", note}};
}

TEST_F(RecordsTest, CreateReadUpdateDeleteWithVersionsAndETag) {
  const json v1 = Customer("crud@example.com", "first");
  HttpResponse created = http().Post(Records(), {{"data", v1}, {"subject", "cust-42"}}, key());
  ASSERT_EQ(created.status, 201) << created.Describe();
  ASSERT_TRUE(created.json["id"].is_string()) << created.Describe();
  EXPECT_EQ(created.json["version"], 1);
  EXPECT_FALSE(created.Header("x-request-id").empty());
  const std::string id = created.json["id"];

  HttpResponse got = http().Get(Record(id), key());
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.json["id"], id);
  EXPECT_EQ(got.json["version"], 1);
  EXPECT_EQ(got.json["data"], v1);
  EXPECT_EQ(got.json["subject"], "cust-42");
  EXPECT_TRUE(got.json["created_at"].is_string()) << got.Describe();
  EXPECT_TRUE(got.json["updated_at"].is_string()) << got.Describe();
  EXPECT_EQ(got.Header("etag"), "\"1\"");

  // Update with the current version.
  const json v2 = Customer("crud@example.com", "second");
  HttpResponse updated = http().Put(Record(id), {{"data", v2}}, key(), {"If-Match: \"1\""});
  ASSERT_EQ(updated.status, 200) << updated.Describe();
  EXPECT_EQ(updated.json["id"], id);
  EXPECT_EQ(updated.json["version"], 2);

  got = http().Get(Record(id), key());
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.json["version"], 2);
  EXPECT_EQ(got.json["data"], v2);
  EXPECT_EQ(got.Header("etag"), "\"2\"");

  // A stale If-Match is a conflict and changes nothing.
  HttpResponse stale = http().Put(Record(id), {{"data", Customer("crud@example.com", "lost")}}, key(),
                                  {"If-Match: \"1\""});
  EXPECT_TRUE(IsError(stale, 409, "conflict"));
  got = http().Get(Record(id), key());
  EXPECT_EQ(got.json["version"], 2);
  EXPECT_EQ(got.json["data"], v2);

  // Older versions stay readable.
  HttpResponse old = http().Get(Record(id) + "?version=1", key());
  ASSERT_EQ(old.status, 200) << old.Describe();
  EXPECT_EQ(old.json["version"], 1);
  EXPECT_EQ(old.json["data"], v1);

  const json v3 = Customer("crud@example.com", "third");
  updated = http().Put(Record(id), {{"data", v3}}, key(), {"If-Match: \"2\""});
  ASSERT_EQ(updated.status, 200) << updated.Describe();
  EXPECT_EQ(updated.json["version"], 3);

  HttpResponse versions = http().Get(Record(id) + "/versions", key());
  ASSERT_EQ(versions.status, 200) << versions.Describe();
  ASSERT_TRUE(versions.json["items"].is_array()) << versions.Describe();
  std::vector<int> numbers;
  for (const auto& item : versions.json["items"]) {
    numbers.push_back(item.value("version", -1));
    EXPECT_TRUE(item.contains("created_at")) << item.dump();
  }
  std::sort(numbers.begin(), numbers.end());
  EXPECT_EQ(numbers, (std::vector<int>{1, 2, 3}));

  HttpResponse deleted = http().Delete(Record(id), key());
  EXPECT_EQ(deleted.status, 204) << deleted.Describe();
  EXPECT_TRUE(deleted.body.empty()) << deleted.Describe();
  EXPECT_TRUE(IsError(http().Get(Record(id), key()), 404, "not_found"));
  EXPECT_TRUE(IsError(http().Get(Record(id) + "/versions", key()), 404, "not_found"));
  EXPECT_TRUE(IsError(http().Delete(Record(id), key()), 404, "not_found"));
  EXPECT_TRUE(IsError(http().Put(Record(id), {{"data", v3}}, key(), {"If-Match: \"3\""}), 404, "not_found"));
}

TEST_F(RecordsTest, UpdateWithoutIfMatchIsUnconditional) {
  const std::string id = Create(Customer("nomatch@example.com"));
  ASSERT_FALSE(id.empty());
  HttpResponse r = http().Put(Record(id), {{"data", Customer("nomatch@example.com", "again")}}, key());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["version"], 2);
}

TEST_F(RecordsTest, KeepsTheNewestTenVersions) {
  const std::string id = Create(Customer("many@example.com", "v1"));
  ASSERT_FALSE(id.empty());
  for (int v = 1; v < 12; ++v) {
    HttpResponse r = http().Put(Record(id), {{"data", Customer("many@example.com", "v" + std::to_string(v + 1))}},
                                key(), {"If-Match: \"" + std::to_string(v) + "\""});
    ASSERT_EQ(r.status, 200) << "update to v" << v + 1 << ": " << r.Describe();
  }
  HttpResponse versions = http().Get(Record(id) + "/versions", key());
  ASSERT_EQ(versions.status, 200) << versions.Describe();
  std::vector<int> numbers;
  for (const auto& item : versions.json["items"]) numbers.push_back(item.value("version", -1));
  std::sort(numbers.begin(), numbers.end());
  EXPECT_EQ(numbers, (std::vector<int>{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_TRUE(IsError(http().Get(Record(id) + "?version=1", key()), 404, "not_found"));
  HttpResponse v3 = http().Get(Record(id) + "?version=3", key());
  ASSERT_EQ(v3.status, 200) << v3.Describe();
  EXPECT_EQ(v3.json["data"]["note"], "v3");
}

TEST_F(RecordsTest, LookupByBlindIndexNormalisesCaseAndWhitespace) {
  const std::string id = Create(Customer("Mika.Tanaka@Example.com"));
  const std::string other = Create(Customer("someone.else@example.com"));
  ASSERT_FALSE(id.empty());
  ASSERT_FALSE(other.empty());

  for (const std::string& query : {std::string("mika.tanaka@example.com"), std::string("Mika.Tanaka@Example.com"),
                                   std::string("  MIKA.TANAKA@EXAMPLE.COM  ")}) {
    SCOPED_TRACE("email=" + query);
    HttpResponse r = http().Get(Records() + "?email=" + UrlEncode(query), key());
    ASSERT_EQ(r.status, 200) << r.Describe();
    ASSERT_TRUE(r.json["items"].is_array()) << r.Describe();
    ASSERT_EQ(r.json["items"].size(), 1u) << r.Describe();
    EXPECT_EQ(r.json["items"][0]["id"], id);
    // The record keeps the value as written; only the index is normalised.
    EXPECT_EQ(r.json["items"][0]["data"]["email"], "Mika.Tanaka@Example.com");
    EXPECT_TRUE(r.json.contains("next") && r.json["next"].is_null()) << r.Describe();
  }

  HttpResponse none = http().Get(Records() + "?email=" + UrlEncode("nobody@example.com"), key());
  ASSERT_EQ(none.status, 200) << none.Describe();
  EXPECT_TRUE(none.json["items"].is_array() && none.json["items"].empty()) << none.Describe();

  // After an update the index follows the new value.
  HttpResponse upd = http().Put(Record(id), {{"data", Customer("mika.new@example.com")}}, key());
  ASSERT_EQ(upd.status, 200) << upd.Describe();
  HttpResponse old_value = http().Get(Records() + "?email=" + UrlEncode("mika.tanaka@example.com"), key());
  ASSERT_EQ(old_value.status, 200) << old_value.Describe();
  EXPECT_TRUE(old_value.json["items"].empty()) << old_value.Describe();
  HttpResponse new_value = http().Get(Records() + "?email=" + UrlEncode("MIKA.NEW@example.com"), key());
  ASSERT_EQ(new_value.status, 200) << new_value.Describe();
  ASSERT_EQ(new_value.json["items"].size(), 1u) << new_value.Describe();
  EXPECT_EQ(new_value.json["items"][0]["id"], id);

  // Only indexed fields can be searched, one at a time.
  EXPECT_TRUE(IsError(http().Get(Records() + "?phone=" + UrlEncode("+81-90-1234-5678"), key()), 400,
                      "invalid_argument"));
  EXPECT_TRUE(IsError(http().Get(Records() + "?email=a%40b.example&note=x", key()), 400, "invalid_argument"));
}

// Every mask rule of SPEC §2 as a role with "view":"masked" sees it.
TEST_F(RecordsTest, MaskedViewAppliesEveryMaskRule) {
  HttpResponse role = http().Put("/v1/t/" + tenant_.id + "/roles/masked-reader",
                                 {{"permissions",
                                   {{{"action", "record.read"}, {"collections", {"customers"}}, {"view", "masked"}}}}},
                                 key());
  ASSERT_TRUE(role.status == 200 || role.status == 201) << role.Describe();
  std::string error;
  json masked_key = CreateApiKey(*server_, key(), tenant_.id, "masked-reader", &error);
  ASSERT_FALSE(masked_key.is_null()) << error;
  const std::string masked = masked_key["key"];

  const json data = {{"email", "alice.sato@example.com"},
                     {"phone", "+81-90-1234-5678"},
                     {"name", "Alice Sato"},
                     {"national_id", "987-65-4321"},
                     {"note", "prefers e-mail"}};
  const std::string id = Create(data);
  ASSERT_FALSE(id.empty());

  // The admin key has the full view.
  HttpResponse full = http().Get(Record(id), key());
  ASSERT_EQ(full.status, 200) << full.Describe();
  EXPECT_EQ(full.json["data"], data);

  auto check_masked = [&](const json& d) {
    SCOPED_TRACE("masked data: " + d.dump());
    ASSERT_TRUE(d.is_object());
    // email: first character of the local part, then the domain.
    ASSERT_TRUE(d.contains("email") && d["email"].is_string());
    const std::string email = d["email"];
    EXPECT_EQ(email.front(), 'a');
    EXPECT_TRUE(email.ends_with("@example.com"));
    EXPECT_EQ(email.find("lice.sato"), std::string::npos);
    EXPECT_NE(email.find('*'), std::string::npos);
    // last4: only the last four characters stay.
    ASSERT_TRUE(d.contains("phone") && d["phone"].is_string());
    const std::string phone = d["phone"];
    EXPECT_TRUE(phone.ends_with("5678"));
    const std::string phone_head = phone.substr(0, phone.size() - 4);
    EXPECT_FALSE(phone_head.empty());
    EXPECT_EQ(phone_head.find_first_not_of('*'), std::string::npos) << phone;
    // partial: first and last character.
    ASSERT_TRUE(d.contains("name") && d["name"].is_string());
    const std::string name = d["name"];
    ASSERT_GE(name.size(), 3u);
    EXPECT_EQ(name.front(), 'A');
    EXPECT_EQ(name.back(), 'o');
    EXPECT_EQ(name.substr(1, name.size() - 2).find_first_not_of('*'), std::string::npos) << name;
    // hidden: left out.
    EXPECT_FALSE(d.contains("national_id"));
    // none: unchanged.
    EXPECT_EQ(d["note"], "prefers e-mail");
  };

  HttpResponse view = http().Get(Record(id), masked);
  ASSERT_EQ(view.status, 200) << view.Describe();
  check_masked(view.json["data"]);
  EXPECT_EQ(view.body.find("987-65-4321"), std::string::npos) << view.body;
  EXPECT_EQ(view.body.find("alice.sato"), std::string::npos) << view.body;

  HttpResponse found = http().Get(Records() + "?email=" + UrlEncode("alice.sato@example.com"), masked);
  ASSERT_EQ(found.status, 200) << found.Describe();
  ASSERT_EQ(found.json["items"].size(), 1u) << found.Describe();
  check_masked(found.json["items"][0]["data"]);

  // A read-only role cannot write.
  EXPECT_TRUE(IsError(http().Post(Records(), {{"data", data}}, masked), 403, "permission_denied"));
  EXPECT_TRUE(IsError(http().Put(Record(id), {{"data", data}}, masked), 403, "permission_denied"));
  EXPECT_TRUE(IsError(http().Delete(Record(id), masked), 403, "permission_denied"));
}

TEST_F(RecordsTest, PaginationWithLimitAndNext) {
  const json schema = {{"fields", {{"email", {{"type", "string"}, {"class", "personal"}, {"index", true}}},
                                   {"n", {{"type", "string"}, {"class", "internal"}}}}},
                       {"required", {"email"}},
                       {"retention_days", 30}};
  HttpResponse put = http().Put("/v1/t/" + tenant_.id + "/collections/pages", schema, key());
  ASSERT_TRUE(put.status == 201 || put.status == 200) << put.Describe();

  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) {
    std::string id = Create({{"email", "same@example.com"}, {"n", std::to_string(i)}}, "pages");
    ASSERT_FALSE(id.empty());
    created.insert(id);
  }
  const std::string base = RecordsPath(tenant_.id, "pages");

  for (const std::string& filter : {std::string(""), std::string("email=same%40example.com&")}) {
    SCOPED_TRACE(filter.empty() ? "list" : "find");
    std::set<std::string> seen;
    std::string after;
    int pages = 0;
    for (;;) {
      std::string path = base + "?" + filter + "limit=3";
      if (!after.empty()) path += "&after=" + UrlEncode(after);
      HttpResponse r = http().Get(path, key());
      ASSERT_EQ(r.status, 200) << r.Describe();
      ASSERT_TRUE(r.json["items"].is_array()) << r.Describe();
      EXPECT_LE(r.json["items"].size(), 3u);
      if (pages == 0) {
        EXPECT_EQ(r.json["items"].size(), 3u);
        EXPECT_TRUE(r.json["next"].is_string()) << r.Describe();
      }
      for (const auto& item : r.json["items"]) {
        EXPECT_TRUE(seen.insert(item["id"].get<std::string>()).second) << "duplicate " << item["id"];
      }
      ++pages;
      ASSERT_LE(pages, 5) << "pagination does not end";
      ASSERT_TRUE(r.json.contains("next")) << r.Describe();
      if (r.json["next"].is_null()) break;
      ASSERT_TRUE(r.json["next"].is_string()) << r.Describe();
      after = r.json["next"];
    }
    EXPECT_EQ(seen, created);
    EXPECT_GE(pages, 3);
  }

  // Without a limit one page holds all seven.
  HttpResponse all = http().Get(base, key());
  ASSERT_EQ(all.status, 200) << all.Describe();
  EXPECT_EQ(all.json["items"].size(), 7u);
  EXPECT_TRUE(all.json["next"].is_null()) << all.Describe();
}

TEST_F(RecordsTest, CollectionsRolesAndKeysAreListed) {
  HttpResponse collections = http().Get("/v1/t/" + tenant_.id + "/collections", key());
  ASSERT_EQ(collections.status, 200) << collections.Describe();
  EXPECT_NE(collections.body.find("customers"), std::string::npos) << collections.Describe();

  HttpResponse schema = http().Get("/v1/t/" + tenant_.id + "/collections/customers", key());
  ASSERT_EQ(schema.status, 200) << schema.Describe();
  EXPECT_NE(schema.body.find("national_id"), std::string::npos) << schema.Describe();

  HttpResponse keys = http().Get("/v1/t/" + tenant_.id + "/apikeys", key());
  ASSERT_EQ(keys.status, 200) << keys.Describe();
  EXPECT_NE(keys.body.find(tenant_.admin_key_id), std::string::npos) << keys.Describe();
  // API keys are shown once, at creation; never listed.
  const std::string prefix = "kura_key_" + tenant_.admin_key_id + "_";
  ASSERT_EQ(tenant_.admin_key.rfind(prefix, 0), 0u) << "API key format is kura_key_<id>_<secret>";
  const std::string secret = tenant_.admin_key.substr(prefix.size());
  EXPECT_EQ(secret.size(), 43u) << "base64url of 32 bytes";
  EXPECT_EQ(keys.body.find(secret), std::string::npos) << "the key's secret part is listed";

  // Listed: the built-in admin role (the key's) and a role defined here,
  // with its permissions as given.
  const json permissions = {{{"action", "record.read"}, {"collections", {"customers"}}, {"view", "masked"}}};
  HttpResponse put = http().Put("/v1/t/" + tenant_.id + "/roles/listed-reader", {{"permissions", permissions}}, key());
  ASSERT_TRUE(put.status == 200 || put.status == 201) << put.Describe();
  HttpResponse roles = http().Get("/v1/t/" + tenant_.id + "/roles", key());
  ASSERT_EQ(roles.status, 200) << roles.Describe();
  ASSERT_TRUE(roles.json["items"].is_array()) << roles.Describe();
  std::map<std::string, json> listed;  // name → permissions
  for (const json& role : roles.json["items"]) listed[role.value("name", "")] = role.value("permissions", json());
  EXPECT_TRUE(listed.contains("admin")) << roles.Describe();
  ASSERT_TRUE(listed.contains("listed-reader")) << roles.Describe();
  EXPECT_EQ(listed["listed-reader"], permissions) << roles.Describe();
  HttpResponse whoami = http().Get("/v1/whoami", key());
  ASSERT_EQ(whoami.status, 200) << whoami.Describe();
  EXPECT_NE(whoami.body.find(tenant_.id), std::string::npos) << whoami.Describe();
}

}  // namespace
}  // namespace kura::e2e
