// The staff-without-grant matrix end to end (issue 6): every tenant data and
// administration route × every staff role and the root token → 403 with the
// error model, and one audit entry per call recording the denial. Staff here
// have no approved access grant on the tenant (one has a pending request,
// which is not a grant), so whatever their role, the tenant is closed to them.
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "identity_support.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

constexpr char kStaffTenant[] = "staffmx";
constexpr char kTenantAdmin[] = "hana";

struct StaffRoute {
  std::string name;  // for the table
  std::string method;
  std::string path;
  std::optional<json> body;
};

struct StaffCaller {
  std::string label;      // the column: the staff role, or "root"
  std::string principal;  // as the audit log names it
  std::string token;
};

class StaffMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string config = dir_.Sub("kura.toml");
    ASSERT_TRUE(WriteFile(config, kCheapPasswordHashConfig));
    ServerOptions options;
    options.config_file = config;
    std::string error;
    server_ = KuraServer::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;
    const std::string root = server_->root_token();

    // The operator's part: the tenant with its first admin. The rest is the
    // admin's: a collection, a record, a role, an API key.
    HttpResponse r = http().Post("/v1/tenants",
                                 {{"id", kStaffTenant},
                                  {"name", "Staff Matrix KK"},
                                  {"admin", {{"username", kTenantAdmin}, {"password", kUserPassword}}}},
                                 root);
    ASSERT_EQ(r.status, 201) << r.Describe();
    admin_ = SignInUser(*server_, kStaffTenant, kTenantAdmin);
    ASSERT_FALSE(admin_.empty());
    r = http().Put(T() + "/collections/customers", CustomersSchema(), admin_);
    ASSERT_EQ(r.status, 201) << r.Describe();
    r = http().Post(RecordsPath(kStaffTenant, "customers"), {{"data", {{"email", "mika@example.com"}}}}, admin_);
    ASSERT_EQ(r.status, 201) << r.Describe();
    record_ = r.json["id"].get<std::string>();
    r = http().Put(T() + "/roles/reader",
                   {{"permissions", {{{"action", "record.read"}, {"collections", {"customers"}}, {"view", "masked"}}}}},
                   admin_);
    ASSERT_EQ(r.status, 201) << r.Describe();
    r = http().Post(T() + "/apikeys", {{"name", "app"}, {"role", "reader"}}, admin_);
    ASSERT_EQ(r.status, 201) << r.Describe();
    key_id_ = r.json["id"].get<std::string>();

    // One staff member of each role, and the root token.
    for (const char* role : {"support", "security_officer", "auditor", "operator"}) {
      std::string name = std::string("mx-") + role;
      for (char& c : name) c = c == '_' ? '-' : c;
      SignedIn staff = MakeStaff(*server_, root, name, {role});
      ASSERT_FALSE(staff.token.empty()) << role;
      callers_.push_back({role, "staff:" + name, staff.token});
    }
    callers_.push_back({"root", "root", root});

    // A request still pending is no grant.
    r = http().Post("/v1/access-requests",
                    {{"tenant", kStaffTenant},
                     {"permissions", {"record.read", "record.write", "record.export", "users.admin"}},
                     {"collections", {"*"}},
                     {"duration", "1h"},
                     {"reason", "customer_support"},
                     {"detail", "the customer cannot sign in"},
                     {"ticket", "SUP-9"}},
                    callers_[0].token);
    ASSERT_EQ(r.status, 201) << r.Describe();
  }

  HttpClient& http() { return server_->http(); }
  static std::string T() { return std::string("/v1/t/") + kStaffTenant; }

  std::vector<StaffRoute> Routes() const {
    const std::string t = T();
    const std::string record = RecordPath(kStaffTenant, "customers", record_);
    const json customer = {{"data", {{"email", "cell@example.com"}}}};
    const json role = {{"permissions", {{{"action", "record.read"}, {"collections", {"*"}}, {"view", "full"}}}}};
    return {
        // Records.
        {"POST …/records", "POST", RecordsPath(kStaffTenant, "customers"), customer},
        {"GET …/records/{id}", "GET", record, std::nullopt},
        {"GET …/records/{id}?version=1", "GET", record + "?version=1", std::nullopt},
        {"PUT …/records/{id}", "PUT", record, json{{"data", {{"email", "put@example.com"}}}}},
        {"DELETE …/records/{id}", "DELETE", record, std::nullopt},
        {"GET …/records/{id}/versions", "GET", record + "/versions", std::nullopt},
        {"GET …/records?email= (find)", "GET", RecordsPath(kStaffTenant, "customers") + "?email=mika%40example.com",
         std::nullopt},
        {"GET …/records (export)", "GET", RecordsPath(kStaffTenant, "customers") + "?limit=5", std::nullopt},
        // Collections.
        {"GET /v1/t/{t}/collections", "GET", t + "/collections", std::nullopt},
        {"GET /v1/t/{t}/collections/{c}", "GET", t + "/collections/customers", std::nullopt},
        {"PUT /v1/t/{t}/collections/{c} (new)", "PUT", t + "/collections/scratch",
         json{{"fields", {{"x", {{"type", "string"}}}}}}},
        {"PUT /v1/t/{t}/collections/{c} (replace)", "PUT", t + "/collections/customers", CustomersSchema()},
        // Roles.
        {"GET /v1/t/{t}/roles", "GET", t + "/roles", std::nullopt},
        {"GET /v1/t/{t}/roles/{r}", "GET", t + "/roles/reader", std::nullopt},
        {"PUT /v1/t/{t}/roles/{r}", "PUT", t + "/roles/scratch", role},
        {"PUT /v1/t/{t}/roles/{r} (widen)", "PUT", t + "/roles/reader", role},
        {"DELETE /v1/t/{t}/roles/{r}", "DELETE", t + "/roles/reader", std::nullopt},
        // API keys.
        {"GET /v1/t/{t}/apikeys", "GET", t + "/apikeys", std::nullopt},
        {"POST /v1/t/{t}/apikeys", "POST", t + "/apikeys", json{{"name", "mine"}, {"role", "admin"}}},
        {"DELETE /v1/t/{t}/apikeys/{id}", "DELETE", t + "/apikeys/" + key_id_, std::nullopt},
        // Users.
        {"GET /v1/t/{t}/users", "GET", t + "/users", std::nullopt},
        {"POST /v1/t/{t}/users", "POST", t + "/users",
         json{{"username", "mole"}, {"password", kUserPassword}, {"roles", {"admin"}}}},
        {"GET /v1/t/{t}/users/{u}", "GET", t + "/users/" + kTenantAdmin, std::nullopt},
        {"PUT /v1/t/{t}/users/{u}", "PUT", t + "/users/" + kTenantAdmin, json{{"password", kStaffPassword}}},
        {"DELETE /v1/t/{t}/users/{u}", "DELETE", t + "/users/" + kTenantAdmin, std::nullopt},
        {"DELETE /v1/t/{t}/users/{u}/sessions", "DELETE", t + "/users/" + kTenantAdmin + "/sessions", std::nullopt},
        // Sign-in policy and lockbox policy.
        {"GET /v1/t/{t}/auth-policy", "GET", t + "/auth-policy", std::nullopt},
        {"PUT /v1/t/{t}/auth-policy", "PUT", t + "/auth-policy", json{{"require_totp", false}}},
        {"GET /v1/t/{t}/lockbox", "GET", t + "/lockbox", std::nullopt},
        {"PUT /v1/t/{t}/lockbox", "PUT", t + "/lockbox", json{{"own_approval_only", false}}},
    };
  }

  TempDir dir_{"kura-staff-matrix"};
  std::unique_ptr<KuraServer> server_;
  std::string admin_;
  std::string record_;
  std::string key_id_;
  std::vector<StaffCaller> callers_;
};

TEST_F(StaffMatrixTest, EveryTenantRouteForEveryStaffRoleIsDeniedAndAudited) {
  const std::vector<StaffRoute> routes = Routes();
  struct Cell {
    std::string request_id, name;
    std::size_t caller;
  };
  std::vector<Cell> cells;
  std::ostringstream table;
  table << std::left << std::setw(42) << "route";
  for (const StaffCaller& c : callers_) table << std::setw(18) << c.label;
  table << "\n";
  int failures = 0;

  for (const StaffRoute& route : routes) {
    table << std::setw(42) << route.name;
    for (std::size_t ci = 0; ci < callers_.size(); ++ci) {
      const StaffCaller& caller = callers_[ci];
      SCOPED_TRACE(route.name + " as " + caller.label);
      const std::string request_id = "staffmx-" + std::to_string(cells.size());
      HttpRequest request{.method = route.method, .path = route.path};
      if (route.body) request.body = route.body->dump();
      request.token = caller.token;
      request.headers.push_back("X-Request-Id: " + request_id);
      HttpResponse r = http().Send(request);
      cells.push_back({request_id, route.name + " as " + caller.label, ci});
      const bool ok = r.status == 403;
      table << std::setw(18) << (std::to_string(r.status) + (ok ? "" : "!=403"));
      if (!ok) ++failures;
      EXPECT_TRUE(IsError(r, 403, "permission_denied")) << r.Describe();
    }
    table << "\n";
  }
  std::cout << "\nStaff without a grant × tenant routes (status; \"!=\" marks a cell that is not 403)\n"
            << table.str() << failures << " cell(s) differ\n";

  // Each call left exactly one entry, recording the denial under no grant.
  std::map<std::string, std::vector<json>> entries;  // request id → entries
  for (const StaffCaller& caller : callers_) {
    HttpResponse trail = http().Get(
        "/v1/sys/audit?limit=1000&tenant=" + std::string(kStaffTenant) + "&principal=" + UrlEncode(caller.principal),
        server_->root_token());
    ASSERT_EQ(trail.status, 200) << trail.Describe();
    EXPECT_TRUE(trail.json["next"].is_null()) << "one page holds them all";
    for (const json& item : trail.json["items"]) {
      EXPECT_EQ(item["principal"], caller.principal);
      json entry = json::parse(item["entry"].get<std::string>());
      entries[entry["request_id"].get<std::string>()].push_back(entry);
    }
  }
  for (const Cell& cell : cells) {
    SCOPED_TRACE(cell.name);
    const auto& found = entries[cell.request_id];
    ASSERT_EQ(found.size(), 1u) << "entries with request id " << cell.request_id;
    EXPECT_EQ(found[0]["outcome"], "permission_denied") << found[0].dump();
    EXPECT_EQ(found[0]["principal"], callers_[cell.caller].principal) << found[0].dump();
    EXPECT_EQ(found[0]["tenant"], kStaffTenant) << found[0].dump();
    EXPECT_EQ(found[0]["grant_id"], "") << found[0].dump();
    EXPECT_FALSE(found[0]["action"].get<std::string>().empty()) << found[0].dump();
  }

  // Nothing changed: the record, the role, the key, the admin are as they were.
  HttpResponse r = http().Get(RecordPath(kStaffTenant, "customers", record_), admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["version"], 1);
  EXPECT_EQ(r.json["data"]["email"], "mika@example.com");
  EXPECT_EQ(http().Get(T() + "/collections/scratch", admin_).status, 404);
  EXPECT_EQ(http().Get(T() + "/roles/scratch", admin_).status, 404);
  r = http().Get(T() + "/roles/reader", admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["permissions"][0]["view"], "masked") << r.Describe();
  EXPECT_EQ(http().Get(T() + "/users/mole", admin_).status, 404);
  r = http().Get(T() + "/apikeys", admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(r.json["items"].size(), 1u) << r.Describe();
  EXPECT_TRUE(r.json["items"][0]["revoked_at"].is_null()) << r.Describe();
  EXPECT_FALSE(SignInUser(*server_, kStaffTenant, kTenantAdmin).empty()) << "the admin's password is unchanged";
}

}  // namespace
}  // namespace kura::e2e
