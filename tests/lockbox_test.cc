// The lockbox end to end (SPEC §2 Access grant): a support engineer asks for
// access, the tenant's webhook hears of it, the tenant's admin approves after
// a fresh sign-in, the engineer reads within the grant and nothing outside
// it, every use names the grant in the tenant's audit trail, and a revocation
// holds on the very next request.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "identity_support.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

// A webhook receiver: appends {"delivery","body","verified","age"} per POST
// to a file, 200. It checks each delivery's signature as a receiver would,
// with Python's hmac and the secret the test saved to argv[3] (Standard
// Webhooks v1: base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>"
// under the bytes of "whsec_<base64>") — code that shares nothing with kura.
constexpr char kReceiver[] =
    "import base64, hashlib, hmac, http.server, json, sys, time\n"
    "out, secret_file = sys.argv[2], sys.argv[3]\n"
    "def verified(headers, body):\n"
    "    key = base64.b64decode(open(secret_file).read().strip()[len('whsec_'):])\n"
    "    signed = (headers['webhook-id'] + '.' + headers['webhook-timestamp'] + '.').encode() + body\n"
    "    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()\n"
    "    given = [s.split(',', 1)[1] for s in headers.get('webhook-signature', '').split() if s.startswith('v1,')]\n"
    "    return any(hmac.compare_digest(expected, g) for g in given)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
    "        with open(out, 'a') as f:\n"
    "            f.write(json.dumps({'delivery': self.headers.get('X-Kura-Delivery'), 'body': body.decode(),\n"
    "                                'verified': verified(self.headers, body),\n"
    "                                'age': abs(time.time() - int(self.headers['webhook-timestamp']))}) + '\\n')\n"
    "        self.send_response(200)\n"
    "        self.end_headers()\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

class LockboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string config = dir_.Sub("kura.toml");
    ASSERT_TRUE(WriteFile(config, kCheapPasswordHashConfig));
    ServerOptions options;
    options.config_file = config;
    std::string error;
    server_ = KuraServer::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;

    // The tenant, created by the root token with its first admin, who sets
    // up the data and the webhook.
    HttpResponse r = http().Post(
        "/v1/tenants",
        {{"id", "acme"}, {"name", "Acme KK"}, {"admin", {{"username", "hana"}, {"password", kUserPassword}}}},
        server_->root_token());
    ASSERT_EQ(r.status, 201) << r.Describe();
    admin_ = SignInUser(*server_, "acme", "hana");
    for (const char* collection : {"customers", "billing"}) {
      r = http().Put(std::string("/v1/t/acme/collections/") + collection, CustomersSchema(), admin_);
      ASSERT_EQ(r.status, 201) << r.Describe();
      r = http().Post(RecordsPath("acme", collection),
                      {{"data", {{"email", "mika@example.com"}, {"phone", "+81-90-1234-5678"}}}}, admin_);
      ASSERT_EQ(r.status, 201) << r.Describe();
      records_.push_back(r.json["id"]);
    }

    receiver_port_ = FreePort();
    deliveries_ = dir_.Sub("deliveries.jsonl");
    receiver_ = BackgroundProcess::Spawn(
        {"python3", "-c", kReceiver, std::to_string(receiver_port_), deliveries_, dir_.Sub("webhook-secret")},
        dir_.Sub("receiver.log"), &error);
    ASSERT_NE(receiver_, nullptr) << error;
    ASSERT_TRUE(WaitForPort(receiver_port_, std::chrono::seconds(10)));
    r = http().Put("/v1/t/acme/lockbox", {{"webhook_url", "http://127.0.0.1:" + std::to_string(receiver_port_) + "/hook"}},
                   admin_);
    ASSERT_EQ(r.status, 200) << r.Describe();
    // The webhook's signing secret, shown this once, goes to the receiver.
    ASSERT_TRUE(r.json["webhook_secret"].is_string()) << r.Describe();
    ASSERT_TRUE(WriteFile(dir_.Sub("webhook-secret"), r.json["webhook_secret"].get<std::string>()));
    EXPECT_FALSE(http().Get("/v1/t/acme/lockbox", admin_).json.contains("webhook_secret"));

    support_ = MakeStaff(*server_, server_->root_token(), "sam", {"support"});
  }

  HttpClient& http() { return server_->http(); }

  // The deliveries received so far, waiting up to `timeout` for at least `n`.
  std::vector<json> Deliveries(std::size_t n, std::chrono::seconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::vector<json> out;
      std::string text = ReadFile(deliveries_);
      std::size_t pos = 0;
      while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) break;
        out.push_back(json::parse(text.substr(pos, nl - pos)));
        pos = nl + 1;
      }
      if (out.size() >= n || std::chrono::steady_clock::now() > until) return out;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  json Request(const std::vector<std::string>& permissions, const std::vector<std::string>& collections) {
    return {{"tenant", "acme"},        {"permissions", permissions},
            {"collections", collections}, {"duration", "1h"},
            {"reason", "customer_support"}, {"detail", "customer cannot see their invoice"},
            {"ticket", "SUP-123"}};
  }

  TempDir dir_{"kura-lockbox"};
  std::unique_ptr<KuraServer> server_;
  std::string admin_;
  std::vector<std::string> records_;  // customers, billing
  int receiver_port_ = 0;
  std::string deliveries_;
  std::unique_ptr<BackgroundProcess> receiver_;
  SignedIn support_;
};

TEST_F(LockboxTest, RotatedWebhookSecretOverlapsTheOldOneSoReceiversSwitchWithoutAGap) {
  HttpResponse r = http().Put("/v1/t/acme/lockbox", {{"rotate_webhook_secret", true}}, admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(r.json["webhook_secret"].is_string()) << r.Describe();
  const std::string rotated = r.json["webhook_secret"];

  // The receiver still holds the old secret: the delivery is signed with
  // both, and verifies.
  auto ask = [&](const char* collection) {
    HttpResponse asked = http().Post("/v1/access-requests", Request({"record.read"}, {collection}), support_.token);
    ASSERT_EQ(asked.status, 201) << asked.Describe();
  };
  ask("customers");
  std::vector<json> got = Deliveries(1, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 1u) << ReadFile(dir_.Sub("receiver.log")) << server_->Log();
  EXPECT_EQ(got[0]["verified"], true) << got[0].dump();

  // Switched to the new one: verifies.
  ASSERT_TRUE(WriteFile(dir_.Sub("webhook-secret"), rotated));
  ask("billing");
  got = Deliveries(2, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 2u) << ReadFile(dir_.Sub("receiver.log")) << server_->Log();
  EXPECT_EQ(got[1]["verified"], true) << got[1].dump();

  // A secret that is neither: does not.
  ASSERT_TRUE(WriteFile(dir_.Sub("webhook-secret"), "whsec_" + std::string(43, 'A') + "="));
  ask("customers");
  got = Deliveries(3, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 3u) << ReadFile(dir_.Sub("receiver.log")) << server_->Log();
  EXPECT_EQ(got[2]["verified"], false) << got[2].dump();
}

TEST_F(LockboxTest, RequestNotifyApproveUseRevoke) {
  const std::string customer = RecordPath("acme", "customers", records_[0]);
  const std::string invoice = RecordPath("acme", "billing", records_[1]);

  // No grant, no data: whatever the staff role.
  EXPECT_TRUE(IsError(http().Get(customer, support_.token), 403, "permission_denied"));

  HttpResponse r = http().Post("/v1/access-requests", Request({"record.read"}, {"customers"}), support_.token);
  ASSERT_EQ(r.status, 201) << r.Describe();
  const std::string id = r.json["id"];
  EXPECT_EQ(r.json["status"], "pending");
  const std::string request_path = "/v1/t/acme/access-requests/" + id;

  // The approvers hear of it: the webhook receiver gets the request.
  std::vector<json> got = Deliveries(1, std::chrono::seconds(20));
  ASSERT_EQ(got.size(), 1u) << ReadFile(dir_.Sub("receiver.log")) << server_->Log();
  json payload = json::parse(got[0]["body"].get<std::string>());
  EXPECT_EQ(payload["event"], "access_request.created");
  EXPECT_EQ(payload["request"]["id"], id);
  EXPECT_EQ(payload["request"]["ticket"], "SUP-123");
  EXPECT_FALSE(got[0]["delivery"].is_null());
  // Signed with the tenant's secret, at the time it was sent.
  EXPECT_EQ(got[0]["verified"], true) << got[0].dump();
  EXPECT_LT(got[0]["age"].get<double>(), 300.0) << got[0].dump();
  // ... and the list route shows it pending.
  r = http().Get("/v1/t/acme/access-requests?status=pending", admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(r.json["items"].size(), 1u);
  EXPECT_EQ(r.json["items"][0]["id"], id);

  // Nobody approves their own request.
  EXPECT_TRUE(IsError(http().Post(request_path + "/approve", json::object(), support_.token), 403, "permission_denied"));
  // The tenant's admin, signed in moments ago, approves.
  r = http().Post(request_path + "/approve", json::object(), admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["status"], "approved");
  EXPECT_FALSE(r.json["grant"].is_null());

  // Within the grant: read customers (masked by default).
  r = http().Get(customer, support_.token);
  ASSERT_EQ(r.status, 200) << r.Describe();
  // The email rule keeps the local part's first character and the domain.
  EXPECT_EQ(r.json["data"]["email"], "m***@example.com")
      << "a grant without view=full sees masked fields: " << r.Describe();
  // Outside it: another collection, another permission, an export.
  EXPECT_TRUE(IsError(http().Get(invoice, support_.token), 403, "permission_denied"));
  EXPECT_TRUE(IsError(http().Post(RecordsPath("acme", "customers"), {{"data", {{"email", "x@y.example"}}}}, support_.token),
                      403, "permission_denied"));
  EXPECT_TRUE(IsError(http().Get(RecordsPath("acme", "customers"), support_.token), 403, "permission_denied"));
  // Nor can the grant be turned into more: tenant administration needs users.admin.
  EXPECT_TRUE(IsError(http().Post("/v1/t/acme/apikeys", {{"name", "mine"}, {"role", "admin"}}, support_.token), 403,
                      "permission_denied"));

  // The tenant sees the use, under the grant's id.
  r = http().Get("/v1/t/acme/audit?action=record.read&principal=staff:sam", admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  bool allowed_read_named = false;
  for (const json& item : r.json["items"]) {
    json entry = json::parse(item["entry"].get<std::string>());
    if (item["outcome"] == "success") allowed_read_named = allowed_read_named || entry["grant_id"] == id;
  }
  EXPECT_TRUE(allowed_read_named) << r.Describe();

  // Revoked: the next request is denied.
  r = http().Delete(request_path, admin_);
  ASSERT_EQ(r.status, 204) << r.Describe();
  EXPECT_TRUE(IsError(http().Get(customer, support_.token), 403, "permission_denied"));
  r = http().Get(request_path, admin_);
  EXPECT_EQ(r.json["status"], "revoked") << r.Describe();

  // Every step is in the tenant's trail.
  for (const char* action : {"access.request", "access.approve", "access.revoke"}) {
    r = http().Get(std::string("/v1/t/acme/audit?outcome=success&action=") + action, admin_);
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_FALSE(r.json["items"].empty()) << action;
  }
}

TEST_F(LockboxTest, DeniedRequestGivesNothing) {
  HttpResponse r = http().Post("/v1/access-requests", Request({"record.read"}, {"*"}), support_.token);
  ASSERT_EQ(r.status, 201) << r.Describe();
  const std::string path = "/v1/t/acme/access-requests/" + r.json["id"].get<std::string>();
  r = http().Post(path + "/deny", {{"reason", "no ticket in our system"}}, admin_);
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["status"], "denied");
  // Decided once: a later approval is refused.
  EXPECT_TRUE(IsError(http().Post(path + "/approve", json::object(), admin_), 409, "conflict"));
  EXPECT_TRUE(
      IsError(http().Get(RecordPath("acme", "customers", records_[0]), support_.token), 403, "permission_denied"));
}

TEST_F(LockboxTest, RootTokenAdministersNoTenant) {
  // After the bootstrap, the root token creates tenants and staff, nothing inside a tenant.
  const std::string root = server_->root_token();
  EXPECT_TRUE(IsError(http().Get("/v1/t/acme/collections", root), 403, "permission_denied"));
  EXPECT_TRUE(IsError(http().Post("/v1/t/acme/apikeys", {{"name", "k"}, {"role", "admin"}}, root), 403,
                      "permission_denied"));
  EXPECT_TRUE(IsError(http().Post("/v1/t/acme/users", {{"username", "x"}, {"password", kUserPassword}, {"roles", {"admin"}}},
                                  root),
                      403, "permission_denied"));
  EXPECT_TRUE(IsError(http().Get(RecordPath("acme", "customers", records_[0]), root), 403, "permission_denied"));
}

}  // namespace
}  // namespace kura::e2e
