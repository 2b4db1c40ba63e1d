// The 401/403 matrix: every route × every kind of caller → the expected
// status, each cell asserted, each error body checked against the error model.
//
// Callers: no token, a garbage token, an expired key, a revoked key, an admin
// key of another tenant, a limited key (record.read on one collection only),
// the tenant's admin key, the session of the tenant's first admin user (made
// with the tenant) and the root token. Rules (team contract, SPEC §1):
//   - bad/expired/revoked/missing token → 401 + WWW-Authenticate: Bearer;
//   - root manages tenants (create with the first admin, list, get, delete)
//     and the system routes; it neither administers a tenant (collections,
//     roles, API keys, users, sign-in policy → 403) nor reads or writes
//     records (403): that is the tenant's own admin's work;
//   - an API key or a user acts only in their own tenant, within their role;
//     the built-in `admin` role may do everything there including
//     administration;
//   - a lookup by an indexed field needs record.read; walking the whole
//     collection (no filter) is bulk export and needs record.export too;
//   - anything else → 403.
// Root is the last caller of every row, and `POST /v1/sys/seal` the last row,
// so its root cell (which seals the vault) runs last.
#include <algorithm>
#include <functional>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

enum Caller { kNone, kGarbage, kExpired, kRevoked, kOther, kLimited, kAdmin, kAdminUser, kRoot, kCallerCount };
const char* const kCallerNames[] = {"none",    "garbage", "expired",    "revoked", "other-tenant",
                                    "limited", "admin",   "admin-user", "root"};

constexpr const char* kMatrixTenant = "matrix-e2e";
constexpr const char* kOtherTenant = "matrix-other";

// Expected status for one cell; several values where the contract allows a
// choice (PUT of a collection or role: 201 when created, 200 when replaced).
using Expect = std::set<long>;
const Expect k401 = {401}, k403 = {403}, k200 = {200}, k201 = {201}, k204 = {204}, kPut = {200, 201};

struct Route {
  std::string name;  // for the table: "GET /v1/tenants"
  // Builds the request for one caller (may create what the cell consumes,
  // e.g. a record to delete). `setup_error` reports a failed preparation.
  std::function<HttpRequest(Caller, std::string* setup_error)> make;
  // Expected status for callers that authenticate (other, limited, admin,
  // root); the admin user's session is held to the admin key's column.
  Expect other, limited, admin, root;
  bool is_public = false;  // no authentication: 200 for every caller
};

class AccessMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server_ = KuraServer::Start({}, &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  // Creates the tenant of the matrix and every credential.
  void Prepare() {
    std::string error;
    auto& http = server_->http();
    const std::string root = server_->root_token();

    // The expiring key first: its expiry passes while the rest is set up.
    // Six seconds ahead (five or more, as Rfc3339 drops the fraction) keep
    // the check that it works until then safe on a slow machine.
    auto tenant = CreateTestTenant(*server_, kMatrixTenant, &error);
    ASSERT_TRUE(tenant) << error;
    const auto expires = std::chrono::system_clock::now() + std::chrono::seconds(6);
    json expiring = CreateApiKey(*server_, tenant->admin_session, kMatrixTenant, "admin", &error, Rfc3339(expires));
    ASSERT_FALSE(expiring.is_null()) << error;
    tokens_[kExpired] = expiring["key"];
    HttpResponse before = http.Get("/v1/whoami", tokens_[kExpired]);
    EXPECT_EQ(before.status, 200) << "a key before its expires_at: " << before.Describe();

    tokens_[kNone] = "";
    tokens_[kGarbage] = "kura_key_garbage_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    tokens_[kAdmin] = tenant->admin_key;
    tokens_[kAdminUser] = tenant->admin_session;
    tokens_[kRoot] = root;

    auto other = CreateTestTenant(*server_, kOtherTenant, &error);
    ASSERT_TRUE(other) << error;
    tokens_[kOther] = other->admin_key;

    // `orders`: a second collection the limited role has no permission on.
    HttpResponse r = http.Put(std::string("/v1/t/") + kMatrixTenant + "/collections/orders",
                              {{"fields", {{"item", {{"type", "string"}, {"class", "internal"}}}}}}, tokens_[kAdmin]);
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.Describe();
    r = http.Put(std::string("/v1/t/") + kMatrixTenant + "/roles/reader",
                 {{"permissions", {{{"action", "record.read"}, {"collections", {"customers"}}, {"view", "full"}}}}},
                 tokens_[kAdmin]);
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.Describe();
    json limited = CreateApiKey(*server_, tokens_[kAdmin], kMatrixTenant, "reader", &error);
    ASSERT_FALSE(limited.is_null()) << error;
    tokens_[kLimited] = limited["key"];

    json revoked = CreateApiKey(*server_, tokens_[kAdmin], kMatrixTenant, "admin", &error);
    ASSERT_FALSE(revoked.is_null()) << error;
    tokens_[kRevoked] = revoked["key"];
    ASSERT_EQ(http.Get("/v1/whoami", tokens_[kRevoked]).status, 200);
    r = http.Delete(std::string("/v1/t/") + kMatrixTenant + "/apikeys/" + revoked["id"].get<std::string>(),
                    tokens_[kAdmin]);
    ASSERT_EQ(r.status, 204) << r.Describe();

    record_ = NewRecord(kMatrixTenant, "customers", tokens_[kAdmin], &error);
    ASSERT_FALSE(record_.empty()) << error;
    order_ = NewRecord(kMatrixTenant, "orders", tokens_[kAdmin], &error, {{"item", "tea"}});
    ASSERT_FALSE(order_.empty()) << error;
    other_record_ = NewRecord(kOtherTenant, "customers", tokens_[kOther], &error);
    ASSERT_FALSE(other_record_.empty()) << error;

    // The matrix needs the key expired: refused from its expires_at on.
    const auto wait_at_most = std::chrono::duration_cast<std::chrono::milliseconds>(expires + std::chrono::seconds(30) -
                                                                                    std::chrono::system_clock::now());
    ASSERT_TRUE(WaitUntil([&] { return http.Get("/v1/whoami", tokens_[kExpired]).status == 401; }, wait_at_most,
                          std::chrono::milliseconds(250)))
        << "a key still accepted 30 s after its expires_at " << Rfc3339(expires);
  }

  std::string NewRecord(const std::string& tenant, const std::string& collection, const std::string& token,
                        std::string* error, json data = {{"email", "matrix@example.com"}}) {
    HttpResponse r = server_->http().Post(RecordsPath(tenant, collection), {{"data", data}}, token);
    if (r.status != 201 || !r.json["id"].is_string()) {
      *error = "create record: " + r.Describe();
      return "";
    }
    return r.json["id"];
  }

  std::vector<Route> Routes() {
    const std::string t = std::string("/v1/t/") + kMatrixTenant;
    const std::string root = server_->root_token();
    const std::string admin = tokens_[kAdmin];
    auto get = [](std::string path) {
      return [path](Caller, std::string*) { return HttpRequest{.method = "GET", .path = path}; };
    };
    auto with_body = [](std::string method, std::string path, json body) {
      return [method, path, body](Caller, std::string*) {
        return HttpRequest{.method = method, .path = path, .body = body.dump()};
      };
    };
    auto del = [](std::function<std::string(Caller, std::string*)> path) {
      return [path](Caller c, std::string* e) { return HttpRequest{.method = "DELETE", .path = path(c, e)}; };
    };
    const json customer = {{"data", {{"email", "cell@example.com"}}}};
    static int serial = 0;
    auto unique = [](const std::string& prefix) { return prefix + std::to_string(++serial); };

    std::vector<Route> routes = {
        {"GET /v1/sys/health", get("/v1/sys/health"), k200, k200, k200, k200, true},
        {"GET /v1/sys/seal-status", get("/v1/sys/seal-status"), k200, k200, k200, k200, true},
        {"GET /v1/whoami", get("/v1/whoami"), k200, k200, k200, k200},
        // Tenants: operator only.
        {"GET /v1/tenants", get("/v1/tenants"), k403, k403, k403, k200},
        {"POST /v1/tenants",
         [unique](Caller, std::string*) {
           return HttpRequest{.method = "POST",
                              .path = "/v1/tenants",
                              .body = json({{"id", unique("cell-tenant-")}, {"name", "Cell"}}).dump()};
         },
         k403, k403, k403, k201},
        {"GET /v1/tenants/{t}", get(std::string("/v1/tenants/") + kMatrixTenant), k403, k403, k403, k200},
        {"DELETE /v1/tenants/{t}", del([this, root, unique](Caller c, std::string* e) {
           // Root deletes a tenant made for the cell; the others try theirs.
           if (c != kRoot) return std::string("/v1/tenants/") + kMatrixTenant;
           std::string id = unique("doomed-");
           HttpResponse r = server_->http().Post("/v1/tenants", {{"id", id}, {"name", "Doomed"}}, root);
           if (r.status != 201) *e = "create tenant to delete: " + r.Describe();
           return "/v1/tenants/" + id;
         }),
         k403, k403, k403, k204},
        // Tenant administration: the tenant's admin role only; staff, root
        // included, need an approved access grant (none here).
        {"GET /v1/t/{t}/collections", get(t + "/collections"), k403, {200, 403}, k200, k403},
        {"GET /v1/t/{t}/collections/customers", get(t + "/collections/customers"), k403, k200, k200, k403},
        {"GET /v1/t/{t}/collections/orders", get(t + "/collections/orders"), k403, k403, k200, k403},
        {"PUT /v1/t/{t}/collections/{c}",
         with_body("PUT", t + "/collections/scratch", {{"fields", {{"x", {{"type", "string"}}}}}}), k403, k403, kPut,
         k403},
        {"GET /v1/t/{t}/roles", get(t + "/roles"), k403, k403, k200, k403},
        {"GET /v1/t/{t}/roles/{r}", get(t + "/roles/reader"), k403, k403, k200, k403},
        {"PUT /v1/t/{t}/roles/{r}",
         with_body("PUT", t + "/roles/scratch",
                   {{"permissions", {{{"action", "record.read"}, {"collections", {"orders"}}, {"view", "masked"}}}}}),
         k403, k403, kPut, k403},
        {"DELETE /v1/t/{t}/roles/{r}", del([this, t, admin, unique](Caller, std::string* e) {
           std::string name = unique("doomed-role-");
           HttpResponse r = server_->http().Put(
               t + "/roles/" + name,
               {{"permissions", {{{"action", "record.read"}, {"collections", {"orders"}}, {"view", "full"}}}}}, admin);
           if (r.status != 201 && r.status != 200) *e = "create role to delete: " + r.Describe();
           return t + "/roles/" + name;
         }),
         k403, k403, k204, k403},
        {"GET /v1/t/{t}/apikeys", get(t + "/apikeys"), k403, k403, k200, k403},
        {"POST /v1/t/{t}/apikeys",
         with_body("POST", t + "/apikeys", {{"name", "cell"}, {"role", "reader"}, {"expires_at", nullptr}}), k403, k403,
         k201, k403},
        {"DELETE /v1/t/{t}/apikeys/{id}", del([this, t, admin](Caller, std::string* e) {
           std::string error;
           json key = CreateApiKey(*server_, admin, kMatrixTenant, "reader", &error);
           if (key.is_null()) {
             *e = error;
             return t + "/apikeys/none";
           }
           return t + "/apikeys/" + key["id"].get<std::string>();
         }),
         k403, k403, k204, k403},
        {"GET /v1/t/{t}/users", get(t + "/users"), k403, k403, k200, k403},
        {"GET /v1/t/{t}/users/{u}", get(t + "/users/" + kTestAdminUsername), k403, k403, k200, k403},
        {"GET /v1/t/{t}/auth-policy", get(t + "/auth-policy"), k403, k403, k200, k403},
        // Records: tenant keys within their role; never root.
        {"POST …/customers/records", with_body("POST", RecordsPath(kMatrixTenant, "customers"), customer), k403, k403,
         k201, k403},
        {"GET …/customers/records/{id}", get(RecordPath(kMatrixTenant, "customers", record_)), k403, k200, k200, k403},
        {"PUT …/customers/records/{id}",
         with_body("PUT", RecordPath(kMatrixTenant, "customers", record_), {{"data", {{"email", "put@example.com"}}}}),
         k403, k403, k200, k403},
        {"DELETE …/customers/records/{id}", del([this, admin](Caller, std::string* e) {
           return RecordPath(kMatrixTenant, "customers", NewRecord(kMatrixTenant, "customers", admin, e));
         }),
         k403, k403, k204, k403},
        {"GET …/customers/records/{id}/versions", get(RecordPath(kMatrixTenant, "customers", record_) + "/versions"),
         k403, k200, k200, k403},
        {"GET …/customers/records?email=", get(RecordsPath(kMatrixTenant, "customers") + "?email=matrix%40example.com"),
         k403, k200, k200, k403},
        // Walking a whole collection without a filter is bulk export (SPEC §3):
        // it needs record.export, which the limited role lacks.
        {"GET …/customers/records (walk)", get(RecordsPath(kMatrixTenant, "customers") + "?limit=5"), k403, k403, k200,
         k403},
        {"GET …/orders/records/{id}", get(RecordPath(kMatrixTenant, "orders", order_)), k403, k403, k200, k403},
        {"POST …/orders/records",
         with_body("POST", RecordsPath(kMatrixTenant, "orders"), {{"data", {{"item", "cake"}}}}), k403, k403, k201,
         k403},
        // The other tenant's record: only its own key.
        {"GET /v1/t/{other}/…/records/{id}", get(RecordPath(kOtherTenant, "customers", other_record_)), k200, k403,
         k403, k403},
        // Last: root seals the vault.
        {"POST /v1/sys/seal", with_body("POST", "/v1/sys/seal", json::object()), k403, k403, k403, {200, 204}},
    };
    return routes;
  }

  std::unique_ptr<KuraServer> server_;
  std::string tokens_[kCallerCount];
  std::string record_, order_, other_record_;
};

std::string ExpectText(const Expect& e) {
  std::string s;
  for (long v : e) s += (s.empty() ? "" : "/") + std::to_string(v);
  return s;
}

TEST_F(AccessMatrixTest, EveryRouteForEveryCaller) {
  ASSERT_NO_FATAL_FAILURE(Prepare());
  auto& http = server_->http();
  std::ostringstream table;
  table << std::left << std::setw(42) << "route";
  for (int c = 0; c < kCallerCount; ++c) table << std::setw(14) << kCallerNames[c];
  table << "\n";
  int failures = 0;
  struct Cell {
    std::string request_id, name, outcome;  // outcome "": no entry expected
  };
  std::vector<Cell> cells;

  for (const Route& route : Routes()) {
    table << std::setw(42) << route.name;
    for (int ci = 0; ci < kCallerCount; ++ci) {
      const Caller caller = static_cast<Caller>(ci);
      SCOPED_TRACE(route.name + " as " + kCallerNames[ci]);
      Expect expected;
      if (route.is_public) {
        expected = k200;
      } else {
        switch (caller) {
          case kNone: case kGarbage: case kExpired: case kRevoked: expected = k401; break;
          case kOther: expected = route.other; break;
          case kLimited: expected = route.limited; break;
          case kAdmin:
          case kAdminUser:
            expected = route.admin;
            break;
          case kRoot: expected = route.root; break;
          default: break;
        }
      }
      std::string setup_error;
      HttpRequest request = route.make(caller, &setup_error);
      ASSERT_TRUE(setup_error.empty()) << setup_error;
      if (caller != kNone) request.token = tokens_[caller];
      const std::string request_id = "matrix-" + std::to_string(cells.size());
      request.headers.push_back("X-Request-Id: " + request_id);
      HttpResponse r = http.Send(request);
      // The outcome its audit entry must name: the answer's error code, or
      // "success"; health and seal status are not audited.
      std::string outcome = r.status < 300 ? "success" : r.json["error"].value("code", "?");
      cells.push_back({request_id, route.name + " as " + kCallerNames[ci], route.is_public ? "" : outcome});

      const bool ok = expected.count(r.status) != 0;
      table << std::setw(14) << (std::to_string(r.status) + (ok ? "" : "!=" + ExpectText(expected)));
      if (!ok) ++failures;
      EXPECT_TRUE(ok) << "expected " << ExpectText(expected) << ", got " << r.Describe();
      EXPECT_FALSE(r.Header("x-request-id").empty()) << "every response carries X-Request-Id";
      if (r.status == 401) {
        EXPECT_TRUE(IsError(r, 401, "unauthenticated"));
      }
      if (r.status == 403) {
        EXPECT_TRUE(IsError(r, 403, "permission_denied"));
      }
    }
    table << "\n";
  }
  std::cout << "\n401/403 matrix (status; \"!=\" marks a cell that differs from the contract)\n"
            << table.str() << failures << " cell(s) differ\n";

  // The root cell of the last row sealed the vault.
  HttpResponse health = http.Get("/v1/sys/health");
  EXPECT_EQ(health.status, 503) << health.Describe();
  EXPECT_EQ(health.json.value("sealed", false), true) << health.Describe();

  // Every cell left exactly one audit entry naming its outcome (SPEC §4).
  HttpResponse unseal = http.Post("/v1/sys/unseal", json::object());
  ASSERT_EQ(unseal.status, 200) << unseal.Describe();
  std::map<std::string, std::vector<json>> entries;  // request id → entries
  std::string after;
  for (int page = 0; page < 1000; ++page) {
    HttpResponse trail = http.Get("/v1/sys/audit?limit=1000" + (after.empty() ? "" : "&after=" + after),
                                  server_->root_token());
    ASSERT_EQ(trail.status, 200) << trail.Describe();
    for (const json& item : trail.json["items"]) {
      json entry = json::parse(item["entry"].get<std::string>());
      entries[entry["request_id"].get<std::string>()].push_back(entry);
    }
    if (!trail.json["next"].is_string()) break;
    after = trail.json["next"];
  }
  for (const Cell& cell : cells) {
    SCOPED_TRACE(cell.name);
    const auto& found = entries[cell.request_id];
    if (cell.outcome.empty()) {
      EXPECT_TRUE(found.empty()) << "health and seal status are not audited";
      continue;
    }
    // Deleting a tenant destroys its keys first, which is audited on its own
    // (action key.destroy, same request id): one more entry for that cell.
    std::vector<json> request_entries;
    int key_destroys = 0;
    for (const json& entry : found) {
      if (entry["action"] == "key.destroy") {
        ++key_destroys;
      } else {
        request_entries.push_back(entry);
      }
    }
    EXPECT_EQ(key_destroys, cell.name == "DELETE /v1/tenants/{t} as root" ? 1 : 0);
    ASSERT_EQ(request_entries.size(), 1u) << "entries with request id " << cell.request_id;
    EXPECT_EQ(request_entries[0]["outcome"], cell.outcome) << request_entries[0].dump();
    EXPECT_FALSE(request_entries[0]["action"].get<std::string>().empty()) << request_entries[0].dump();
  }
}

// Refused calls leave the state as it was: a tenant admin cannot delete its
// own tenant, a limited key can neither mint an admin key nor widen its own
// role, the built-in admin role can be neither replaced nor deleted, root
// cannot administer the tenant, revoked and expired keys stay refused.
TEST_F(AccessMatrixTest, DeniedCallsChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(Prepare());
  auto& http = server_->http();
  const std::string root = server_->root_token();
  const std::string t = std::string("/v1/t/") + kMatrixTenant;

  EXPECT_EQ(http.Delete(std::string("/v1/tenants/") + kMatrixTenant, tokens_[kAdmin]).status, 403);
  EXPECT_EQ(http.Get(std::string("/v1/tenants/") + kMatrixTenant, root).status, 200);

  EXPECT_EQ(http.Delete(RecordPath(kMatrixTenant, "customers", record_), tokens_[kLimited]).status, 403);
  EXPECT_EQ(http.Delete(RecordPath(kMatrixTenant, "customers", record_), tokens_[kOther]).status, 403);
  EXPECT_EQ(http.Delete(RecordPath(kMatrixTenant, "customers", record_), root).status, 403);
  EXPECT_EQ(http.Get(RecordPath(kMatrixTenant, "customers", record_), tokens_[kAdmin]).status, 200);

  HttpResponse reader_before = http.Get(t + "/roles/reader", tokens_[kAdmin]);
  ASSERT_EQ(reader_before.status, 200) << reader_before.Describe();
  ASSERT_TRUE(reader_before.json["permissions"].is_array()) << reader_before.Describe();
  HttpResponse admin_before = http.Get(t + "/roles/admin", tokens_[kAdmin]);
  ASSERT_EQ(admin_before.status, 200) << admin_before.Describe();
  ASSERT_TRUE(admin_before.json["permissions"].is_array()) << admin_before.Describe();

  // A limited key cannot mint itself an admin key.
  HttpResponse r = http.Post(t + "/apikeys", {{"name", "escalate"}, {"role", "admin"}}, tokens_[kLimited]);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  // Nor widen its own role.
  r = http.Put(t + "/roles/reader",
               {{"permissions", {{{"action", "record.write"}, {"collections", {"*"}}, {"view", "full"}}}}},
               tokens_[kLimited]);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Post(RecordsPath(kMatrixTenant, "customers"), {{"data", {{"email", "x@example.com"}}}}, tokens_[kLimited]);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Get(t + "/roles/reader", tokens_[kAdmin]);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["permissions"], reader_before.json["permissions"]) << "the limited key widened its role";

  // The built-in admin role can be neither replaced nor deleted.
  r = http.Put(t + "/roles/admin", {{"permissions", {{{"action", "record.read"}, {"collections", {"orders"}}}}}},
               tokens_[kAdmin]);
  EXPECT_TRUE(r.status == 400 || r.status == 403) << r.Describe();
  r = http.Delete(t + "/roles/admin", tokens_[kAdminUser]);
  EXPECT_TRUE(r.status == 400 || r.status == 403) << r.Describe();
  r = http.Get(t + "/roles/admin", tokens_[kAdmin]);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["permissions"], admin_before.json["permissions"]) << r.Describe();
  // A stored replacement would be listed beside the built-in role.
  r = http.Get(t + "/roles", tokens_[kAdmin]);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(r.json["items"].is_array()) << r.Describe();
  EXPECT_EQ(std::count_if(r.json["items"].begin(), r.json["items"].end(),
                          [](const json& role) { return role.value("name", "") == "admin"; }),
            1)
      << r.Describe();
  // Both admin credentials still administer the tenant.
  EXPECT_EQ(http.Get(t + "/apikeys", tokens_[kAdmin]).status, 200);
  EXPECT_EQ(http.Get(t + "/apikeys", tokens_[kAdminUser]).status, 200);

  // Root made the tenant and its first admin; from there on the tenant is
  // its admin's: root's attempts to administer it are refused and leave
  // nothing behind.
  r = http.Put(t + "/collections/by-root", {{"fields", {{"x", {{"type", "string"}}}}}}, root);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Put(t + "/roles/by-root", {{"permissions", {{{"action", "record.read"}, {"collections", {"*"}}}}}}, root);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Post(t + "/apikeys", {{"name", "by-root"}, {"role", "admin"}}, root);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Post(t + "/users", {{"username", "by-root"}, {"password", kTestAdminPassword}, {"roles", {"admin"}}}, root);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Put(t + "/users/" + kTestAdminUsername, {{"disabled", true}}, root);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  r = http.Put(t + "/auth-policy", {{"min_length", 20}}, root);
  EXPECT_TRUE(IsError(r, 403, "permission_denied"));
  EXPECT_EQ(http.Get(t + "/collections/by-root", tokens_[kAdmin]).status, 404);
  EXPECT_EQ(http.Get(t + "/roles/by-root", tokens_[kAdmin]).status, 404);
  EXPECT_EQ(http.Get(t + "/users/by-root", tokens_[kAdmin]).status, 404);
  // No key minted by the limited key's attempt or root's.
  r = http.Get(t + "/apikeys", tokens_[kAdmin]);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(r.json["items"].is_array() && !r.json["items"].empty()) << r.Describe();
  for (const json& key : r.json["items"]) {
    const std::string name = key.value("name", "");
    EXPECT_TRUE(name != "escalate" && name != "by-root") << key.dump();
  }
  r = http.Get(t + "/auth-policy", tokens_[kAdmin]);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_NE(r.json.value("min_length", 0), 20) << r.Describe();
  r = http.Get("/v1/whoami", tokens_[kAdminUser]);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["kind"], "user") << r.Describe();

  // Revoked and expired keys stay refused; the same answer for both (no oracle).
  HttpResponse revoked = http.Get("/v1/whoami", tokens_[kRevoked]);
  HttpResponse expired = http.Get("/v1/whoami", tokens_[kExpired]);
  HttpResponse garbage = http.Get("/v1/whoami", tokens_[kGarbage]);
  EXPECT_TRUE(IsError(revoked, 401, "unauthenticated"));
  EXPECT_TRUE(IsError(expired, 401, "unauthenticated"));
  EXPECT_EQ(revoked.json["error"]["message"], garbage.json["error"]["message"]);
  EXPECT_EQ(expired.json["error"]["message"], garbage.json["error"]["message"]);
}

}  // namespace
}  // namespace kura::e2e
