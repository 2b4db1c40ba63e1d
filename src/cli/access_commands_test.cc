// The lockbox commands (kura access …, kura lockbox …) and `kura tenant create
// --admin-username` against a fake transport: the requests they send, what
// they print, and their exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/app.h"
#include "cli/commands_test_util.h"

namespace kura::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kPending[] = R"({"id":"ar_7","tenant":"acme","requester":"sam","permissions":["record.read"],
  "collections":["customers"],"view":"masked","duration_seconds":7200,"reason":"customer_support",
  "detail":"refund question","ticket":"SUP-1","status":"pending","required_approvals":2,"approvals":[],
  "created_at":"2026-05-01T10:00:00Z","expires_at":"2026-05-01T22:00:00Z","grant":null,"decided_by":null,
  "decided_at":null,"decision_reason":null})";
constexpr char kApproved[] = R"({"id":"ar_7","tenant":"acme","requester":"sam","permissions":["record.read"],
  "collections":["customers"],"view":"masked","duration_seconds":7200,"reason":"customer_support",
  "detail":"refund question","ticket":"SUP-1","status":"approved","required_approvals":1,
  "approvals":[{"approver":"user:acme/hana","at":"2026-05-01T10:05:00Z"}],"created_at":"2026-05-01T10:00:00Z",
  "expires_at":"2026-05-01T12:05:00Z","grant":{"id":"ar_7","starts_at":"2026-05-01T10:05:00Z",
  "ends_at":"2026-05-01T12:05:00Z"},"decided_by":"user:acme/hana","decided_at":"2026-05-01T10:05:00Z",
  "decision_reason":null})";
constexpr char kStepUpNeeded[] =
    R"({"error":{"code":"permission_denied","message":"this action needs a recent sign-in: authenticate again with POST /v1/auth/step-up","request_id":"r9"}})";

class AccessCommandsTest : public test_support::CommandsTest {};

TEST_F(AccessCommandsTest, HelpExitsZeroEverywhere) {
  const std::vector<std::vector<std::string>> commands = {
      {"access"},           {"access", "request"}, {"access", "list"}, {"access", "show"}, {"access", "approve"},
      {"access", "deny"},   {"access", "revoke"},  {"lockbox"},        {"lockbox", "get"}, {"lockbox", "set"},
      {"tenant", "create"},
  };
  for (auto args : commands) {
    args.push_back("--help");
    EXPECT_EQ(Run(args), kExitOk) << ::testing::PrintToString(args);
    EXPECT_THAT(out(), HasSubstr("Usage")) << ::testing::PrintToString(args);
  }
  EXPECT_TRUE(server_.requests.empty());
}

TEST_F(AccessCommandsTest, RequestSendsEveryField) {
  server_.Answer(201, kPending);
  ASSERT_EQ(Run({"access",       "request",
                 "--tenant",     "acme",
                 "--permission", "record.read",
                 "--permission", "file.read",
                 "--collection", "customers,orders",
                 "--duration",   "2h",
                 "--reason",     "customer_support",
                 "--detail",     "refund question",
                 "--ticket",     "SUP-1",
                 "--view",       "full"}),
            kExitOk)
      << err();
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/access-requests");
  EXPECT_EQ(*Last().body, json({{"tenant", "acme"},
                                {"permissions", {"record.read", "file.read"}},
                                {"collections", {"customers", "orders"}},
                                {"duration", "2h"},
                                {"reason", "customer_support"},
                                {"detail", "refund question"},
                                {"ticket", "SUP-1"},
                                {"view", "full"}}));
  EXPECT_THAT(out(), HasSubstr("Access request ar_7 is pending; it needs 2 approval(s) and lapses at "
                               "2026-05-01T22:00:00Z"));
  EXPECT_THAT(out(), HasSubstr("duration: 2h"));
  EXPECT_THAT(out(), HasSubstr("approvals: 0/2"));
}

TEST_F(AccessCommandsTest, RequestWithoutViewLeavesItToTheServerAndChecksTheReason) {
  server_.Answer(201, kPending);
  ASSERT_EQ(Run({"access", "request", "--tenant", "acme", "--permission", "record.read", "--collection", "*",
                 "--duration", "30m", "--reason", "incident", "--detail", "outage", "--ticket", "INC-9"}),
            kExitOk)
      << err();
  EXPECT_FALSE(Last().body->contains("view"));

  // A reason code the server does not know never leaves the machine.
  size_t sent = server_.requests.size();
  EXPECT_EQ(Run({"access", "request", "--tenant", "acme", "--permission", "record.read", "--collection", "c",
                 "--duration", "1h", "--reason", "curiosity", "--detail", "x", "--ticket", "T-1"}),
            kExitUsage);
  // Nor a request without a ticket.
  EXPECT_EQ(Run({"access", "request", "--tenant", "acme", "--permission", "record.read", "--collection", "c",
                 "--duration", "1h", "--reason", "other", "--detail", "x"}),
            kExitUsage);
  EXPECT_EQ(server_.requests.size(), sent);
}

TEST_F(AccessCommandsTest, ListFollowsPagesWithTheStatusFilter) {
  server_.Answer(200, std::string(R"({"items":[)") + kPending + R"(],"next":"ar_7"})");
  server_.Answer(200, std::string(R"({"items":[)") + kApproved + R"(],"next":null})");
  ASSERT_EQ(Run({"access", "list", "--tenant", "acme co", "--status", "pending"}), kExitOk) << err();
  ASSERT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(server_.requests[0].request.method, "GET");
  EXPECT_EQ(server_.requests[0].request.path, "/v1/t/acme%20co/access-requests?status=pending");
  EXPECT_EQ(server_.requests[1].request.path, "/v1/t/acme%20co/access-requests?status=pending&after=ar_7");
  EXPECT_THAT(out(), HasSubstr("ID"));
  EXPECT_THAT(out(), HasSubstr("APPROVALS"));
  EXPECT_THAT(out(), HasSubstr("record.read"));
  EXPECT_THAT(out(), HasSubstr("0/2"));
  EXPECT_THAT(out(), HasSubstr("1/1"));
  EXPECT_THAT(out(), HasSubstr("approved"));

  // JSON: the merged items in the server's list shape.
  server_.Answer(200, std::string(R"({"items":[)") + kPending + R"(],"next":null})");
  ASSERT_EQ(Run({"access", "list", "--tenant", "acme", "--format", "json"}), kExitOk) << err();
  EXPECT_EQ(Last().path, "/v1/t/acme/access-requests");
  json body = json::parse(out());
  ASSERT_EQ(body["items"].size(), 1u);
  EXPECT_EQ(body["items"][0]["id"], "ar_7");
  EXPECT_TRUE(body["next"].is_null());

  EXPECT_EQ(Run({"access", "list", "--tenant", "acme", "--status", "granted"}), kExitUsage);
}

TEST_F(AccessCommandsTest, ShowPrintsTheGrant) {
  server_.Answer(200, kApproved);
  ASSERT_EQ(Run({"access", "show", "ar_7", "--tenant", "acme"}), kExitOk) << err();
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/t/acme/access-requests/ar_7");
  EXPECT_THAT(out(), HasSubstr("status: approved"));
  EXPECT_THAT(out(), HasSubstr("user:acme/hana at 2026-05-01T10:05:00Z"));
  EXPECT_THAT(out(), HasSubstr("grant: 2026-05-01T10:05:00Z to 2026-05-01T12:05:00Z"));
  EXPECT_THAT(out(), Not(HasSubstr("decision_reason")));

  server_.Answer(404, R"({"error":{"code":"not_found","message":"no such access request"}})");
  EXPECT_EQ(Run({"access", "show", "nope", "--tenant", "acme"}), kExitNotFound);
}

TEST_F(AccessCommandsTest, ApproveSendsAnEmptyObjectAndSaysWhatItBecame) {
  server_.Answer(200, kApproved);
  ASSERT_EQ(Run({"access", "approve", "ar_7", "--tenant", "acme"}), kExitOk) << err();
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/t/acme/access-requests/ar_7/approve");
  EXPECT_EQ(*Last().body, json::object());
  EXPECT_THAT(out(), HasSubstr("Approved: access request ar_7 is a grant until 2026-05-01T12:05:00Z."));

  // The first of two approvals: still pending.
  std::string half = kPending;
  half.replace(half.find(R"("approvals":[])"), 14,
               R"("approvals":[{"approver":"user:acme/hana","at":"2026-05-01T10:05:00Z"}])");
  server_.Answer(200, half);
  ASSERT_EQ(Run({"access", "approve", "ar_7", "--tenant", "acme"}), kExitOk) << err();
  EXPECT_THAT(out(), HasSubstr("Approval recorded (1/2)"));
}

TEST_F(AccessCommandsTest, ApproveOnAStaleSessionHintsAtStepUp) {
  server_.Answer(403, kStepUpNeeded);
  EXPECT_EQ(Run({"access", "approve", "ar_7", "--tenant", "acme"}), kExitPermissionDenied);
  EXPECT_THAT(err(), HasSubstr("recent sign-in"));
  EXPECT_THAT(err(), HasSubstr("kura step-up"));
  EXPECT_THAT(out(), IsEmpty());

  // Other refusals get no such hint.
  server_.Answer(403, R"({"error":{"code":"permission_denied","message":"nobody approves their own request"}})");
  EXPECT_EQ(Run({"access", "approve", "ar_7", "--tenant", "acme"}), kExitPermissionDenied);
  EXPECT_THAT(err(), Not(HasSubstr("step-up")));
}

TEST_F(AccessCommandsTest, DenyWithAndWithoutAReason) {
  std::string denied = kPending;
  denied.replace(denied.find(R"("status":"pending")"), 18, R"("status":"denied")");
  server_.Answer(200, denied);
  ASSERT_EQ(Run({"access", "deny", "ar_7", "--tenant", "acme", "--reason", "no ticket on file"}), kExitOk) << err();
  EXPECT_EQ(Last().path, "/v1/t/acme/access-requests/ar_7/deny");
  EXPECT_EQ(*Last().body, json({{"reason", "no ticket on file"}}));
  EXPECT_THAT(out(), HasSubstr("Denied access request ar_7."));

  server_.Answer(200, denied);
  ASSERT_EQ(Run({"access", "deny", "ar_7", "--tenant", "acme"}), kExitOk) << err();
  EXPECT_EQ(*Last().body, json::object());

  server_.Answer(409, R"({"error":{"code":"conflict","message":"the request is approved, not pending"}})");
  EXPECT_EQ(Run({"access", "deny", "ar_7", "--tenant", "acme"}), kExitConflict);
}

TEST_F(AccessCommandsTest, RevokeDeletes) {
  server_.Answer(204, "");
  ASSERT_EQ(Run({"access", "revoke", "ar/7", "--tenant", "acme"}), kExitOk) << err();
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/t/acme/access-requests/ar%2F7");
  EXPECT_FALSE(Last().body.has_value());
  EXPECT_THAT(out(), HasSubstr("Revoked access request ar/7"));
  // --tenant is required.
  EXPECT_EQ(Run({"access", "revoke", "ar_7"}), kExitUsage);
}

TEST_F(AccessCommandsTest, LockboxGetAndSet) {
  server_.Answer(200, R"({"own_approval_only":false,"approvals_required":1,"max_duration_seconds":28800,
                          "webhook_url":null})");
  ASSERT_EQ(Run({"lockbox", "get", "--tenant", "acme"}), kExitOk) << err();
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/t/acme/lockbox");
  EXPECT_THAT(out(), HasSubstr("approvals_required: 1"));
  EXPECT_THAT(out(), HasSubstr("max_duration: 8h"));
  EXPECT_THAT(out(), HasSubstr("webhook_url: -"));

  server_.Answer(200, R"({"own_approval_only":true,"approvals_required":2,"max_duration_seconds":14400,
                          "webhook_url":"https://hooks.acme.example/kura","webhook_secret_set":true,
                          "webhook_secret":"whsec_c2VjcmV0"})");
  ASSERT_EQ(Run({"lockbox", "set", "--tenant", "acme", "--own-approval-only", "true", "--approvals-required", "2",
                 "--max-duration", "4h", "--webhook-url", "https://hooks.acme.example/kura"}),
            kExitOk)
      << err();
  EXPECT_EQ(Last().method, "PUT");
  EXPECT_EQ(Last().path, "/v1/t/acme/lockbox");
  EXPECT_EQ(*Last().body, json({{"own_approval_only", true},
                                {"approvals_required", 2},
                                {"max_duration", "4h"},
                                {"webhook_url", "https://hooks.acme.example/kura"}}));
  EXPECT_THAT(out(), HasSubstr("max_duration: 4h"));
  // The new webhook's secret, shown this once.
  EXPECT_THAT(out(), HasSubstr("webhook_secret: whsec_c2VjcmV0"));
  EXPECT_THAT(out(), HasSubstr("shown only once"));

  server_.Answer(200, R"({"webhook_url":"https://hooks.acme.example/kura","webhook_secret_set":true,
                          "webhook_secret":"whsec_bmV3"})");
  ASSERT_EQ(Run({"lockbox", "set", "--tenant", "acme", "--rotate-webhook-secret"}), kExitOk) << err();
  EXPECT_EQ(*Last().body, json({{"rotate_webhook_secret", true}}));
  EXPECT_THAT(out(), HasSubstr("webhook_secret: whsec_bmV3"));

  // Only what is given changes; --no-webhook sends null.
  ASSERT_EQ(Run({"lockbox", "set", "--tenant", "acme", "--no-webhook"}), kExitOk) << err();
  EXPECT_EQ(*Last().body, json({{"webhook_url", nullptr}}));

  size_t sent = server_.requests.size();
  EXPECT_EQ(Run({"lockbox", "set", "--tenant", "acme"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("nothing to change"));
  EXPECT_EQ(Run({"lockbox", "set", "--tenant", "acme", "--approvals-required", "0"}), kExitUsage);
  EXPECT_EQ(Run({"lockbox", "set", "--tenant", "acme", "--webhook-url", "https://x.example", "--no-webhook"}),
            kExitUsage);
  EXPECT_EQ(Run({"lockbox", "set", "--tenant", "acme", "--rotate-webhook-secret", "--no-webhook"}), kExitUsage);
  EXPECT_EQ(server_.requests.size(), sent);
}

TEST_F(AccessCommandsTest, TenantCreateWithItsFirstAdmin) {
  server_.Answer(201, R"({"id":"acme","name":"Acme KK","region":"jp","created_at":"2026-05-01T10:00:00Z",
                          "admin":"hana"})");
  ASSERT_EQ(Run({"tenant", "create", "acme", "--name", "Acme KK", "--admin-username", "hana", "--admin-password-stdin"},
                " correct horse \n"),
            kExitOk)
      << err();
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/tenants");
  // Blanks inside and around a password are part of it.
  EXPECT_EQ(
      *Last().body,
      json({{"id", "acme"}, {"name", "Acme KK"}, {"admin", {{"username", "hana"}, {"password", " correct horse "}}}}));
  EXPECT_THAT(out(), HasSubstr("admin: hana"));
  EXPECT_THAT(out() + err(), Not(HasSubstr("correct horse")));

  // Without --admin-password-stdin the password is asked for twice.
  server_.Answer(201, R"({"id":"beta","name":"Beta","region":"jp","admin":"kim"})");
  ASSERT_EQ(Run({"tenant", "create", "beta", "--name", "Beta", "--admin-username", "kim"}, "pw-12345\npw-12345\n"),
            kExitOk)
      << err();
  EXPECT_EQ((*Last().body)["admin"], json({{"username", "kim"}, {"password", "pw-12345"}}));

  // Two different entries: nothing is sent.
  size_t sent = server_.requests.size();
  EXPECT_EQ(Run({"tenant", "create", "gamma", "--name", "Gamma", "--admin-username", "kim"}, "pw-1\npw-2\n"),
            kExitUsage);
  EXPECT_THAT(err(), HasSubstr("differ"));
  // --admin-password-stdin needs --admin-username.
  EXPECT_EQ(Run({"tenant", "create", "gamma", "--name", "Gamma", "--admin-password-stdin"}, "pw\n"), kExitUsage);
  EXPECT_EQ(server_.requests.size(), sent);

  // Without an admin the body is as before.
  server_.Answer(201, R"({"id":"delta","name":"Delta","region":"jp"})");
  ASSERT_EQ(Run({"tenant", "create", "delta", "--name", "Delta"}), kExitOk) << err();
  EXPECT_EQ(*Last().body, json({{"id", "delta"}, {"name", "Delta"}}));
}

}  // namespace
}  // namespace kura::cli
