// Bad input is refused with the error model and leaves nothing behind:
// malformed JSON, wrong types, unknown fields, missing required fields,
// oversize bodies (413), bad ids in the path, bad If-Match, bad paging
// parameters, unknown routes (404) and methods (405).
#include <string>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

struct Case {
  std::string name;
  HttpRequest request;
  long status = 400;
  std::string code = "invalid_argument";
};

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    server_ = KuraServer::Start({}, &error);
    if (server_ == nullptr) {
      setup_error_ = error;
      return;
    }
    auto tenant = CreateTestTenant(*server_, "bad-input-e2e", &error);
    if (!tenant) {
      setup_error_ = error;
      return;
    }
    tenant_ = *tenant;
    HttpResponse r = server_->http().Post(RecordsPath(tenant_.id, "customers"),
                                          {{"data", {{"email", "exists@example.com"}}}}, tenant_.admin_key);
    if (r.status != 201) {
      setup_error_ = "create record: " + r.Describe();
      return;
    }
    record_ = r.json["id"];
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  std::size_t RecordCount() {
    auto ids = ListAllRecordIds(server_->http(), tenant_.admin_key, tenant_.id, "customers");
    EXPECT_TRUE(ids.has_value()) << "cannot list records";
    return ids ? ids->size() : 0;
  }

  // Sends every case with `token` unless it has one; checks the answer.
  void Run(const std::vector<Case>& cases, const std::string& token) {
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name);
      HttpRequest request = c.request;
      if (!request.token) request.token = token;
      HttpResponse r = server_->http().Send(request);
      EXPECT_TRUE(IsError(r, c.status, c.code));
      // Messages never echo the values sent.
      if (r.json.is_object() && r.json["error"].is_object()) {
        EXPECT_EQ(r.json["error"].value("message", "").find("canary"), std::string::npos)
            << "error message repeats input: " << r.body;
      }
    }
  }

  HttpRequest Post(const std::string& path, std::string body) {
    return {.method = "POST", .path = path, .body = std::move(body)};
  }
  std::string Records() { return RecordsPath(tenant_.id, "customers"); }
  std::string Record(const std::string& id) { return RecordPath(tenant_.id, "customers", id); }

  static inline std::unique_ptr<KuraServer> server_;
  static inline TestTenant tenant_;
  static inline std::string record_;
  static inline std::string setup_error_;
};

TEST_F(BadInputTest, RecordBodiesAreValidatedAndNothingIsStored) {
  static constexpr char kValidThenNul[] = "{\"data\":{\"email\":\"a@example.com\"}}\0{\"canary\":[";
  const std::size_t before = RecordCount();
  ASSERT_GE(before, 1u);
  const std::string p = Records();
  Run(
      {
          {"malformed JSON", Post(p, R"({"data":{"email":"canary@example.com")")},
          {"number beyond a double", Post(p, R"({"data":{"email":"canary@example.com","note":1e999999}})")},
          {"not JSON", Post(p, "email=canary@example.com")},
          {"empty body", Post(p, "")},
          {"JSON array", Post(p, R"([{"email":"canary@example.com"}])")},
          {"data not an object", Post(p, R"({"data":"canary@example.com"})")},
          {"number for a string field", Post(p, R"({"data":{"email":424242,"note":"canary-note"}})")},
          {"array for a string field", Post(p, R"({"data":{"email":"a@example.com","phone":["canary"]}})")},
          {"null for a required field", Post(p, R"({"data":{"email":null}})")},
          {"unknown field", Post(p, R"({"data":{"email":"a@example.com","shoe_size":"canary"}})")},
          {"unknown top-level member", Post(p, R"({"data":{"email":"a@example.com"},"colour":"canary"})")},
          {"missing required field", Post(p, R"({"data":{"note":"canary"}})")},
          {"missing data", Post(p, R"({"subject":"canary"})")},
          {"subject of the wrong type", Post(p, R"({"data":{"email":"a@example.com"},"subject":7})")},
          {"invalid UTF-8", Post(p, "{\"data\":{\"email\":\"a\xff\xfe@example.com\"}}")},
          // The JSON parser would stop at the NUL and take the rest for nothing.
          {"valid JSON, a NUL byte, more", Post(p, std::string(kValidThenNul, sizeof kValidThenNul - 1))},
      },
      tenant_.admin_key);
  EXPECT_EQ(RecordCount(), before) << "a refused request stored a record";
}

TEST_F(BadInputTest, UpdatesAreValidatedAndNothingChanges) {
  HttpResponse before = server_->http().Get(Record(record_), tenant_.admin_key);
  ASSERT_EQ(before.status, 200) << before.Describe();
  const std::string good = R"({"data":{"email":"changed@example.com"}})";
  auto put = [&](std::string body, std::vector<std::string> headers = {}) {
    return HttpRequest{.method = "PUT", .path = Record(record_), .body = std::move(body), .headers = headers};
  };
  Run(
      {
          {"malformed JSON", put(R"({"data":)")},
          {"wrong type", put(R"({"data":{"email":true}})")},
          {"unknown field", put(R"({"data":{"email":"a@example.com","shoe_size":"canary"}})")},
          {"missing required", put(R"({"data":{}})")},
          {"If-Match not a quoted number", put(good, {"If-Match: garbage"})},
          {"If-Match with letters", put(good, {"If-Match: \"abc\""})},
      },
      tenant_.admin_key);
  HttpResponse after = server_->http().Get(Record(record_), tenant_.admin_key);
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(after.json["version"], before.json["version"]);
  EXPECT_EQ(after.json["data"], before.json["data"]);
}

TEST_F(BadInputTest, OversizeBodyIs413) {
  const std::size_t before = RecordCount();
  const std::string big = R"({"data":{"email":"big@example.com","note":")" + std::string(2 << 20, 'x') + "\"}}";
  // Without and with `Expect: 100-continue` (the server may answer before the body).
  Run(
      {
          {"2 MiB body", Post(Records(), big), 413, "payload_too_large"},
          {"2 MiB body, Expect: 100-continue",
           {.method = "POST", .path = Records(), .body = big, .headers = {"Expect: 100-continue"}},
           413,
           "payload_too_large"},
      },
      tenant_.admin_key);
  EXPECT_EQ(RecordCount(), before);
  // The server is fine afterwards.
  EXPECT_EQ(server_->http().Get("/v1/sys/health").status, 200);
}

TEST_F(BadInputTest, BadIdsInThePath) {
  const std::string t = "/v1/t/" + tenant_.id;
  auto get = [](std::string path) { return HttpRequest{.method = "GET", .path = std::move(path)}; };
  Run(
      {
          {"record id with a space", get(Record("bad%20id"))},
          {"record id with a quote", get(Record("x%27y"))},
          {"record id ..", get(Record("%2E%2E"))},
          {"record id of 300 characters", get(Record(std::string(300, 'a')))},
          {"record id with a slash", get(Record("a%2Fb"))},
          {"collection name in capitals", get(t + "/collections/Customers")},
          {"collection name with a space", get(t + "/collections/bad%20name/records")},
          {"collection put with a bad name",
           {.method = "PUT", .path = t + "/collections/bad!name", .body = R"({"fields":{}})"}},
          {"role name with a dot", get(t + "/roles/a.b")},
      },
      tenant_.admin_key);
  Run(
      {
          {"tenant id with !", get("/v1/tenants/Bad%21")},
          {"tenant id of 100 characters", get("/v1/tenants/" + std::string(100, 't'))},
          {"tenant create with a bad id", Post("/v1/tenants", R"({"id":"Bad Id!","name":"x"})")},
          {"tenant create with an unknown member", Post("/v1/tenants", R"({"id":"okay1","name":"x","colour":1})")},
          {"tenant create without a name", Post("/v1/tenants", R"({"id":"okay2"})")},
          {"tenant create with a wrong type", Post("/v1/tenants", R"({"id":7,"name":"x"})")},
      },
      server_->root_token());
  for (const char* id : {"okay1", "okay2"}) {
    EXPECT_EQ(server_->http().Get(std::string("/v1/tenants/") + id, server_->root_token()).status, 404) << id;
  }
}

TEST_F(BadInputTest, BadPagingAndVersionParameters) {
  auto get = [](std::string path) { return HttpRequest{.method = "GET", .path = std::move(path)}; };
  Run(
      {
          {"limit=abc", get(Records() + "?limit=abc")},
          {"limit=0", get(Records() + "?limit=0")},
          {"limit=-1", get(Records() + "?limit=-1")},
          {"limit=10x", get(Records() + "?limit=10x")},
          {"limit on a find", get(Records() + "?email=a%40example.com&limit=zero")},
          {"version=abc", get(Record(record_) + "?version=abc")},
          {"version=0", get(Record(record_) + "?version=0")},
      },
      tenant_.admin_key);
}

TEST_F(BadInputTest, SchemasRolesAndKeysAreValidated) {
  const std::string t = "/v1/t/" + tenant_.id;
  auto put = [](std::string path, std::string body) {
    return HttpRequest{.method = "PUT", .path = std::move(path), .body = std::move(body)};
  };
  Run(
      {
          {"unknown field type", put(t + "/collections/c1", R"({"fields":{"x":{"type":"strnig"}}})")},
          {"unknown mask", put(t + "/collections/c2", R"({"fields":{"x":{"type":"string","mask":"blur"}}})")},
          {"unknown class", put(t + "/collections/c3", R"({"fields":{"x":{"type":"string","class":"secret"}}})")},
          {"required names no field",
           put(t + "/collections/c4", R"({"fields":{"x":{"type":"string"}},"required":["y"]})")},
          {"unknown schema member", put(t + "/collections/c5", R"({"fields":{"x":{"type":"string"}},"colour":1})")},
          {"bad field name", put(t + "/collections/c6", R"({"fields":{"Bad Field":{"type":"string"}}})")},
          {"malformed schema JSON", put(t + "/collections/c7", R"({"fields":)")},
          {"unknown action",
           put(t + "/roles/r1", R"({"permissions":[{"action":"record.steal","collections":["customers"]}]})")},
          {"unknown view",
           put(t + "/roles/r2",
               R"({"permissions":[{"action":"record.read","collections":["customers"],"view":"partial"}]})")},
          {"empty collection list",
           put(t + "/roles/r3", R"({"permissions":[{"action":"record.read","collections":[]}]})")},
          {"permissions not a list", put(t + "/roles/r4", R"({"permissions":"all"})")},
          {"api key with a bad expiry", Post(t + "/apikeys", R"({"name":"k","role":"admin","expires_at":"tomorrow"})")},
          {"api key without a role", Post(t + "/apikeys", R"({"name":"k"})")},
          {"number beyond a double", Post(t + "/apikeys", R"({"name":"k","role":"admin","expires_at":1e999999})")},
      },
      tenant_.admin_key);
  auto& http = server_->http();
  for (const char* c : {"c1", "c2", "c3", "c4", "c5", "c6", "c7"}) {
    EXPECT_EQ(http.Get(t + "/collections/" + c, tenant_.admin_key).status, 404) << "collection " << c << " was stored";
  }
  for (const char* r : {"r1", "r2", "r3", "r4"}) {
    EXPECT_EQ(http.Get(t + "/roles/" + r, tenant_.admin_key).status, 404) << "role " << r << " was stored";
  }
  HttpResponse keys = http.Get(t + "/apikeys", tenant_.admin_key);
  ASSERT_EQ(keys.status, 200) << keys.Describe();
  EXPECT_EQ(keys.body.find("\"k\""), std::string::npos) << "a refused API key was stored: " << keys.body;
}

TEST_F(BadInputTest, UnknownRoutesAndMethods) {
  Run(
      {
          {"unknown route", {.method = "GET", .path = "/v1/nothing-here"}, 404, "not_found"},
          {"unknown route outside /v1", {.method = "GET", .path = "/admin"}, 404, "not_found"},
          {"unknown tenant sub-route", {.method = "GET", .path = "/v1/t/" + tenant_.id + "/bogus"}, 404, "not_found"},
          {"PATCH a record", {.method = "PATCH", .path = Record(record_), .body = "{}"}, 405, "method_not_allowed"},
          {"DELETE the records collection", {.method = "DELETE", .path = Records()}, 405, "method_not_allowed"},
          {"PUT /v1/sys/health", {.method = "PUT", .path = "/v1/sys/health", .body = "{}"}, 405,
           "method_not_allowed"},
      },
      tenant_.admin_key);
}

}  // namespace
}  // namespace kura::e2e
