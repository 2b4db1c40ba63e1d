#include "http/handlers.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ops/fake_vault_for_test.h"

namespace kura::http {
namespace {

using nlohmann::json;

class HandlersTest : public ::testing::Test {
 protected:
  Response Call(Method method, std::string_view target, std::string_view token = "key-token",
                std::string_view body = "", std::string_view content_type = "application/json",
                std::string_view if_match = "") {
    const std::size_t q = target.find('?');
    Request r;
    r.method = method;
    r.path = target.substr(0, q);
    r.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    authorization_ = token.empty() ? std::string() : "Bearer " + std::string(token);
    r.authorization = authorization_;
    r.body = body;
    r.content_type = content_type;
    r.if_match = if_match;
    r.reason = "support ticket 42";
    r.request_id = "rid-1";
    r.client_address = "192.0.2.7";
    RouteMatch m = router_.Match(method, r.path);
    if (m.kind != RouteMatch::Kind::kFound) return RouteErrorResponse(m, r.request_id);
    return handlers_.Handle(m, r, /*draining=*/false);
  }
  static json Body(const Response& r) { return json::parse(r.body); }
  static std::string Code(const Response& r) { return Body(r)["error"]["code"]; }

  ops::testing::FakeVault vault_;
  Router router_;
  Handlers handlers_{&vault_};
  std::string authorization_;
};

TEST_F(HandlersTest, GetRecordPassesParametersAndSetsETag) {
  Response r = Call(Method::kGet, "/v1/t/acme/collections/customers/records/r1?version=2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.etag, 2);
  json b = Body(r);
  EXPECT_EQ(b["call"], "GetRecord");
  EXPECT_EQ(b["tenant"], "acme");
  EXPECT_EQ(b["collection"], "customers");
  EXPECT_EQ(b["id"], "r1");
  EXPECT_EQ(b["version"], 2);
  EXPECT_EQ(r.principal, "apikey:k1");

  vault::RequestContext ctx = vault_.LastContext();
  EXPECT_EQ(ctx.request_id, "rid-1");
  EXPECT_EQ(ctx.client_address, "192.0.2.7");
  EXPECT_EQ(ctx.reason, "support ticket 42");
}

TEST_F(HandlersTest, CreateIs201AndDeleteIs204) {
  Response r = Call(Method::kPost, "/v1/t/acme/collections/customers/records", "key-token", R"({"data":{"a":1}})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["body"]["data"]["a"], 1);
  EXPECT_EQ(r.etag, 1);

  r = Call(Method::kDelete, "/v1/t/acme/collections/customers/records/r1");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(HandlersTest, IfMatchIsParsedAndStaleIsConflict) {
  Response r = Call(Method::kPut, "/v1/t/acme/collections/c/records/r1", "key-token", R"({"data":{}})",
                    "application/json; charset=utf-8", "\"3\"");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["if_match"], 3);
  EXPECT_EQ(r.etag, 4);

  r = Call(Method::kPut, "/v1/t/acme/collections/c/records/r1", "key-token", R"({"data":{}})", "application/json",
           "\"2\"");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "conflict");

  r = Call(Method::kPut, "/v1/t/acme/collections/c/records/r1", "key-token", R"({"data":{}})", "application/json", "3");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_argument");

  r = Call(Method::kPut, "/v1/t/acme/collections/c/records/r1", "key-token", R"({"data":{}})");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Body(r)["if_match"].is_null());
}

TEST_F(HandlersTest, MalformedAndNonObjectBodiesAre400) {
  const char* path = "/v1/t/acme/collections/c/records";
  Response r = Call(Method::kPost, path, "key-token", R"({"data": {"name": "Hana Secret")");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_argument");
  std::string message = Body(r)["error"]["message"];
  EXPECT_EQ(message.rfind("malformed JSON", 0), 0u) << message;
  EXPECT_EQ(message.find("Hana"), std::string::npos);  // never echo the input

  // A number no double holds: the parser throws out_of_range, not parse_error.
  r = Call(Method::kPost, path, "key-token", R"({"data": {"age": 1e999999}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_argument");
  message = Body(r)["error"]["message"];
  EXPECT_EQ(message.rfind("malformed JSON", 0), 0u) << message;
  EXPECT_EQ(message.find("999"), std::string::npos) << message;

  r = Call(Method::kPost, path, "key-token", "[1,2]");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(Body(r)["error"]["message"].get<std::string>().find("JSON object"), std::string::npos);

  r = Call(Method::kPost, path, "key-token", R"({"data":{}})", "text/plain");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(Body(r)["error"]["message"].get<std::string>().find("Content-Type"), std::string::npos);

  r = Call(Method::kPost, path, "key-token", std::string(100, '[') + std::string(100, ']'));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(vault_.writes_done, 0);
}

TEST_F(HandlersTest, EmptyBodyIsAnEmptyObject) {
  Response r = Call(Method::kPost, "/v1/sys/init", "", "", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["body"], json::object());
}

TEST_F(HandlersTest, MissingOrBadTokensAre401WithChallenge) {
  Response r = Call(Method::kGet, "/v1/t/acme/collections/c/records/r1", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Code(r), "unauthenticated");
  EXPECT_EQ(r.www_authenticate, R"(Bearer realm="kura")");

  r = Call(Method::kGet, "/v1/t/acme/collections/c/records/r1", "not a token");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.www_authenticate.find("invalid_token"), std::string_view::npos);

  r = Call(Method::kGet, "/v1/t/acme/collections/c/records/r1", "wrong-token");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.www_authenticate.find("invalid_token"), std::string_view::npos);
  EXPECT_EQ(vault_.reads_done, 0);
}

TEST_F(HandlersTest, AuthenticationComesBeforeInputValidation) {
  Response r = Call(Method::kPost, "/v1/t/acme/collections/c/records", "", "{bad");
  EXPECT_EQ(r.status, 401);
  r = Call(Method::kGet, "/v1/tenants?limit=abc", "");
  EXPECT_EQ(r.status, 401);
}

TEST_F(HandlersTest, VaultErrorsMapToStatuses) {
  EXPECT_EQ(Call(Method::kGet, "/v1/t/acme/collections/c/records/missing").status, 404);
  EXPECT_EQ(Call(Method::kGet, "/v1/t/acme/collections/c/records/r1", "root-token").status, 403);
  Response r = Call(Method::kGet, "/v1/t/acme/collections/c/records/corrupt");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(Code(r), "data_loss");
  r = Call(Method::kGet, "/v1/t/acme/collections/c/records/broken");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret detail"), std::string::npos);
  r = Call(Method::kPost, "/v1/tenants", "root-token", R"({"id":"taken"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "already_exists");
}

TEST_F(HandlersTest, QueryParametersReachTheVault) {
  Response r = Call(Method::kGet, "/v1/t/acme/collections/c/records?email=a%40b.example&limit=5&after=x1");
  ASSERT_EQ(r.status, 200) << r.body;
  json b = Body(r);
  EXPECT_EQ(b["filters"]["email"], "a@b.example");
  EXPECT_EQ(b["limit"], 5);
  EXPECT_EQ(b["after"], "x1");

  r = Call(Method::kGet, "/v1/tenants?limit=3", "root-token");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["limit"], 3);

  EXPECT_EQ(Call(Method::kGet, "/v1/t/acme/collections/c/records?email=%zz").status, 400);
  EXPECT_EQ(Call(Method::kGet, "/v1/t/acme/roles?x=1").status, 400);
}

TEST_F(HandlersTest, SealedAnswers503ExceptSysRoutes) {
  vault_.sealed = true;
  Response r = Call(Method::kGet, "/v1/t/acme/collections/c/records/r1");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "sealed");
  EXPECT_GT(r.retry_after, 0);
  // Even without a token: nothing is served while sealed.
  EXPECT_EQ(Call(Method::kGet, "/v1/tenants", "").status, 503);

  r = Call(Method::kGet, "/v1/sys/health", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r)["sealed"], true);
  EXPECT_EQ(Body(r)["live"], true);
  r = Call(Method::kGet, "/v1/sys/seal-status", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["sealed"], true);
  EXPECT_EQ(Call(Method::kPost, "/v1/sys/unseal", "", R"({"share":"x"})").status, 200);
}

TEST_F(HandlersTest, HealthWhenReady) {
  Response r = Call(Method::kGet, "/v1/sys/health", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r), json::parse(R"({"live":true,"ready":true,"sealed":false,"initialized":true})"));
}

TEST_F(HandlersTest, RouteErrors) {
  Response r = Call(Method::kGet, "/v1/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "not_found");
  EXPECT_EQ(Body(r)["error"]["request_id"], "rid-1");

  r = Call(Method::kPost, "/v1/sys/health");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Code(r), "method_not_allowed");
  EXPECT_EQ(r.allow, "GET, HEAD");

  r = Call(Method::kGet, "/v1/tenants/a%20b");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_argument");
}

// Refusals before the vault call are audited here, with the route's action,
// the path's tenant and resource, and the outcome the client is told.
TEST_F(HandlersTest, RefusalsBeforeTheVaultAreAudited) {
  Response r = Call(Method::kGet, "/v1/t/acme/collections/customers/records/r1", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(vault_.rejected_audits, 1);
  vault::AuditTarget target = vault_.LastRejectedTarget();
  EXPECT_EQ(target.action, "record.read");
  EXPECT_EQ(target.tenant, "acme");
  EXPECT_EQ(target.resource, "collections/customers/records/r1");
  EXPECT_EQ(vault_.LastRejectedOutcome(), "unauthenticated");

  r = Call(Method::kGet, "/v1/t/acme/collections/customers/records/r1", "wrong-token");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(vault_.rejected_audits, 2);

  r = Call(Method::kGet, "/v1/t/acme/collections/customers/records/r1?bogus=1");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(vault_.rejected_audits, 3);
  EXPECT_EQ(vault_.LastRejectedOutcome(), "invalid_argument");

  r = Call(Method::kPost, "/v1/t/acme/collections/customers/records", "key-token", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(vault_.rejected_audits, 4);
  EXPECT_EQ(vault_.LastRejectedTarget().action, "record.create");

  vault_.sealed = true;
  r = Call(Method::kGet, "/v1/tenants/acme", "root-token");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(vault_.LastRejectedTarget().tenant, "acme");
  EXPECT_EQ(vault_.LastRejectedTarget().resource, "tenants/acme");
  EXPECT_EQ(vault_.LastRejectedOutcome(), "sealed");

  // Calls that reach the vault are the vault's to audit.
  vault_.sealed = false;
  int before = vault_.rejected_audits;
  EXPECT_EQ(Call(Method::kGet, "/v1/t/acme/collections/customers/records/r1").status, 200);
  EXPECT_EQ(vault_.rejected_audits, before);
}

// When the refusal's entry cannot be made durable, the client gets 503, not
// the refusal: no answer without its entry.
TEST_F(HandlersTest, UnauditableRefusalIs503) {
  vault_.audit_fails = true;
  Response r = Call(Method::kGet, "/v1/t/acme/collections/customers/records/r1", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "unavailable");
}

TEST_F(HandlersTest, AuditRoutesPassTheirQueryToTheVault) {
  Response r = Call(Method::kGet, "/v1/t/acme/audit?action=record.read&after=7&limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  json b = Body(r);
  EXPECT_EQ(b["call"], "TenantAuditTrail");
  EXPECT_EQ(b["filters"]["action"], "record.read");
  EXPECT_EQ(b["filters"]["after"], "7");
  EXPECT_EQ(b["filters"]["limit"], "5");
  r = Call(Method::kGet, "/v1/sys/audit/proof/12?tree_size=40");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["seq"], "12");
  EXPECT_EQ(Body(r)["filters"]["tree_size"], "40");
  EXPECT_EQ(Call(Method::kGet, "/v1/sys/audit/checkpoints").status, 200);
  EXPECT_EQ(Call(Method::kGet, "/v1/sys/audit/consistency?from=1&to=2").status, 200);
  EXPECT_EQ(Call(Method::kGet, "/v1/sys/audit/pubkey").status, 200);
  EXPECT_EQ(Call(Method::kGet, "/v1/sys/audit?tenant=acme").status, 200);
}

}  // namespace
}  // namespace kura::http
