// Every client command against a fake transport: the request it sends, what
// it prints, and the exit code it returns.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/app.h"
#include "cli/commands_test_util.h"
#include "crypto/signing.h"

namespace kura::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using nlohmann::json;
using test_support::CommandsTest;

TEST_F(CommandsTest, HelpExitsZeroEverywhere) {
  const std::vector<std::vector<std::string>> commands = {
      {},
      {"status"},
      {"operator"},
      {"operator", "init"},
      {"operator", "unseal"},
      {"operator", "seal"},
      {"tenant"},
      {"tenant", "create"},
      {"tenant", "get"},
      {"tenant", "list"},
      {"tenant", "delete"},
      {"collection", "put"},
      {"collection", "get"},
      {"collection", "list"},
      {"role", "put"},
      {"role", "get"},
      {"role", "list"},
      {"role", "delete"},
      {"apikey", "create"},
      {"apikey", "list"},
      {"apikey", "revoke"},
      {"record", "put"},
      {"record", "get"},
      {"record", "find"},
      {"record", "delete"},
      {"record", "versions"},
      {"audit", "verify"},
      {"audit", "proof"},
      {"audit", "tail"},
      {"audit", "pubkey"},
  };
  for (auto args : commands) {
    args.push_back("--help");
    EXPECT_EQ(Run(args), kExitOk) << ::testing::PrintToString(args);
    EXPECT_THAT(out(), HasSubstr("Usage")) << ::testing::PrintToString(args);
  }
  EXPECT_TRUE(server_.requests.empty());
}

// The help's list of exit codes names every one the commands return.
TEST_F(CommandsTest, HelpListsEveryExitCode) {
  ASSERT_EQ(Run({"--help"}), kExitOk);
  std::string text = out();
  std::replace(text.begin(), text.end(), '\n', ' ');
  for (int code = kExitOk; code <= kExitTampered; ++code) {
    const std::string listed = (code == kExitOk ? "Exit codes: " : " ") + std::to_string(code) + " ";
    EXPECT_THAT(text, HasSubstr(listed)) << code;
  }
}

TEST_F(CommandsTest, ClientHelpNamesEnvironment) {
  ASSERT_EQ(Run({"record", "get", "--help"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("KURA_ADDR"));
  EXPECT_THAT(out(), HasSubstr("KURA_TOKEN"));
  EXPECT_THAT(out(), HasSubstr("KURA_CACERT"));
}

TEST_F(CommandsTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_EQ(Run({"frobnicate"}), kExitUsage);
  EXPECT_EQ(Run({"record"}), kExitUsage);
  EXPECT_EQ(Run({"record", "frobnicate"}), kExitUsage);
  EXPECT_EQ(Run({"record", "get", "t"}), kExitUsage);  // missing COLL and ID
  EXPECT_EQ(Run({"tenant", "create", "acme"}), kExitUsage);  // --name is required
  EXPECT_EQ(Run({"tenant", "list", "--format", "yaml"}), kExitUsage);
  EXPECT_EQ(Run({"record", "find", "t", "c", "no-equals-sign"}), kExitUsage);
  EXPECT_EQ(Run({"record", "put", "t", "c", "--data", "{}", "--if-match", "2"}), kExitUsage);  // needs --id
  EXPECT_EQ(Run({"apikey", "create", "t", "--name", "n", "--role", "r", "--expires-at", "tomorrow"}), kExitUsage);
  EXPECT_EQ(Run({"operator", "init", "--shares", "5"}), kExitUsage);  // needs --threshold
  EXPECT_EQ(Run({"operator", "init", "--shares", "2", "--threshold", "3"}), kExitUsage);
  EXPECT_TRUE(server_.requests.empty());
}

TEST_F(CommandsTest, FlagsAndDefaultsReachTheTransport) {
  ASSERT_EQ(Run({"tenant", "get", "acme", "--addr", "https://kura.example:9443", "--token", "tok", "--cacert",
                 "/ca.pem"}),
            kExitOk);
  ASSERT_EQ(server_.requests.size(), 1u);
  EXPECT_EQ(server_.requests[0].options.addr, "https://kura.example:9443");
  EXPECT_EQ(server_.requests[0].options.token, "tok");
  EXPECT_EQ(server_.requests[0].options.cacert, "/ca.pem");
  ASSERT_EQ(Run({"tenant", "get", "acme"}), kExitOk);
  EXPECT_EQ(server_.requests[1].options.addr, kDefaultAddr);
}

TEST_F(CommandsTest, EnvironmentIsUsedAndFlagsOverrideIt) {
  ::setenv("KURA_ADDR", "https://env.example:1", 1);
  ::setenv("KURA_TOKEN", "env-token", 1);
  ::setenv("KURA_CACERT", "/env-ca.pem", 1);
  ASSERT_EQ(Run({"tenant", "get", "acme"}), kExitOk);
  ASSERT_EQ(Run({"tenant", "get", "acme", "--token", "flag-token"}), kExitOk);
  ::unsetenv("KURA_ADDR");
  ::unsetenv("KURA_TOKEN");
  ::unsetenv("KURA_CACERT");
  ASSERT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(server_.requests[0].options.addr, "https://env.example:1");
  EXPECT_EQ(server_.requests[0].options.token, "env-token");
  EXPECT_EQ(server_.requests[0].options.cacert, "/env-ca.pem");
  EXPECT_EQ(server_.requests[1].options.token, "flag-token");
}

TEST_F(CommandsTest, HttpStatusesMapToExitCodes) {
  const std::pair<long, int> cases[] = {{400, 8}, {401, 3}, {403, 4}, {404, 5}, {409, 6},
                                        {413, 8}, {422, 8}, {429, 1}, {500, 1}, {503, 7}};
  for (auto [status, code] : cases) {
    server_.Answer(status, R"({"error":{"code":"x","message":"went wrong","request_id":"r1"}})");
    EXPECT_EQ(Run({"tenant", "get", "acme"}), code) << status;
    EXPECT_THAT(err(), HasSubstr("went wrong")) << status;
    EXPECT_THAT(out(), IsEmpty()) << "text mode prints errors on stderr only";
  }
}

TEST_F(CommandsTest, ErrorInJsonModePrintsServerBody) {
  const std::string body = R"({"error":{"code":"not_found","message":"no such tenant","request_id":"r9"}})";
  server_.Answer(404, body);
  EXPECT_EQ(Run({"tenant", "get", "nope", "--format", "json"}), kExitNotFound);
  EXPECT_EQ(out(), body + "\n");
  EXPECT_THAT(err(), HasSubstr("no such tenant (not_found, HTTP 404, request r9)"));
}

TEST_F(CommandsTest, TransportFailureExitsNine) {
  server_.FailTransport();
  EXPECT_EQ(Run({"tenant", "list"}), kExitConnect);
  EXPECT_THAT(err(), HasSubstr("Connection refused"));
}

TEST_F(CommandsTest, BadAddressIsUsageError) {
  // The real connector validates the address before any network use.
  EXPECT_EQ(ExitCodeForHttpStatus(200), kExitOk);
  in_.str("");
  out_.str("");
  err_.str("");
  app_ = std::make_unique<CLI::App>("", "kura");
  ctx_ = std::make_unique<Context>();
  ctx_->out = &out_;
  ctx_->err = &err_;
  ConfigureRootApp(app_.get());
  AddClientCommands(app_.get(), ctx_.get());
  EXPECT_EQ(cli::Run(app_.get(), ctx_.get(), {"tenant", "list", "--addr", "http://kura.example.com"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("plain HTTP"));
}

TEST_F(CommandsTest, Status) {
  server_.Answer(200, R"({"live":true,"ready":true,"sealed":false,"initialized":true})");
  server_.Answer(200, R"({"initialized":true,"sealed":false,"type":"keyfile","progress":0,"threshold":1})");
  EXPECT_EQ(Run({"status"}), kExitOk);
  EXPECT_EQ(server_.requests[0].request.path, "/v1/sys/health");
  EXPECT_EQ(server_.requests[1].request.path, "/v1/sys/seal-status");
  EXPECT_THAT(out(), HasSubstr("sealed: false"));
  EXPECT_THAT(out(), HasSubstr("seal type: keyfile"));
  EXPECT_THAT(out(), HasSubstr("ready: true"));

  // Sealed: the 503 answer is printed, and the exit code says "unavailable".
  server_.Answer(503, R"({"live":true,"ready":false,"sealed":true,"initialized":true})");
  server_.Answer(200, R"({"initialized":true,"sealed":true,"type":"shamir","progress":1,"threshold":3})");
  EXPECT_EQ(Run({"status"}), kExitUnavailable);
  EXPECT_THAT(out(), HasSubstr("unseal progress: 1/3"));
  EXPECT_THAT(out(), HasSubstr("ready: false"));

  const std::string health = R"({"live":true,"ready":false,"sealed":true,"initialized":false})";
  server_.Answer(503, health);
  EXPECT_EQ(Run({"status", "--format", "json"}), kExitUnavailable);
  EXPECT_EQ(out(), health + "\n");
}

TEST_F(CommandsTest, OperatorInit) {
  server_.Answer(200, R"({"shares":["s1","s2","s3"],"root_token":"kura_root_abc"})");
  EXPECT_EQ(Run({"operator", "init", "--shares", "3", "--threshold", "2"}), kExitOk);
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/sys/init");
  EXPECT_EQ(*Last().body, json({{"seal", "shamir"}, {"shares", 3}, {"threshold", 2}}));
  EXPECT_THAT(out(), HasSubstr("Unseal share 2: s2"));
  EXPECT_THAT(out(), HasSubstr("Root token: kura_root_abc"));

  server_.Answer(200, R"({"shares":[],"root_token":"kura_root_x"})");
  EXPECT_EQ(Run({"operator", "init"}), kExitOk);
  EXPECT_EQ(*Last().body, json::object());

  // --seal names the configured seal (the server checks it); no shares.
  server_.Answer(200, R"({"shares":[],"root_token":"kura_root_y"})");
  EXPECT_EQ(Run({"operator", "init", "--seal", "pkcs11"}), kExitOk);
  EXPECT_EQ(*Last().body, json({{"seal", "pkcs11"}}));
  EXPECT_THAT(out(), HasSubstr("Root token: kura_root_y"));
  EXPECT_THAT(out(), Not(HasSubstr("share")));
  server_.Answer(200, R"({"shares":[],"root_token":"kura_root_z"})");
  EXPECT_EQ(Run({"operator", "init", "--seal", "passphrase"}), kExitOk);
  EXPECT_EQ(*Last().body, json({{"seal", "passphrase"}}));
  EXPECT_EQ(Run({"operator", "init", "--seal", "hsm"}), kExitUsage);
  EXPECT_EQ(Run({"operator", "init", "--seal", "pkcs11", "--shares", "3", "--threshold", "2"}), kExitUsage);
}

TEST_F(CommandsTest, OperatorUnsealFromArgumentAndStdin) {
  server_.Answer(200, R"({"initialized":true,"sealed":true,"progress":1,"threshold":2})");
  EXPECT_EQ(Run({"operator", "unseal", "share-one"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/unseal");
  EXPECT_EQ(*Last().body, json({{"share", "share-one"}}));
  EXPECT_THAT(out(), HasSubstr("Still sealed: 1 of 2"));

  server_.Answer(200, R"({"initialized":true,"sealed":false,"progress":0,"threshold":2})");
  EXPECT_EQ(Run({"operator", "unseal"}, "  share-two \n"), kExitOk);
  EXPECT_EQ(*Last().body, json({{"share", "share-two"}}));
  EXPECT_THAT(out(), HasSubstr("Unsealed."));
  EXPECT_THAT(out() + err(), Not(HasSubstr("share-two")));

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"operator", "unseal"}, ""), kExitUsage);
  EXPECT_EQ(server_.requests.size(), before);
}

TEST_F(CommandsTest, OperatorSeal) {
  server_.Answer(200, "{}");
  EXPECT_EQ(Run({"operator", "seal"}), kExitOk);
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/sys/seal");
}

TEST_F(CommandsTest, TenantCommands) {
  server_.Answer(201, R"({"id":"acme","name":"Acme KK","region":"jp","created_at":"2026-01-01T00:00:00Z"})");
  EXPECT_EQ(Run({"tenant", "create", "acme", "--name", "Acme KK", "--region", "jp"}), kExitOk);
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/tenants");
  EXPECT_EQ(*Last().body, json({{"id", "acme"}, {"name", "Acme KK"}, {"region", "jp"}}));
  EXPECT_THAT(out(), HasSubstr("name: Acme KK"));

  EXPECT_EQ(Run({"tenant", "create", "b", "--name", "B"}), kExitOk);
  EXPECT_FALSE(Last().body->contains("region"));

  EXPECT_EQ(Run({"tenant", "get", "a/../b"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/tenants/a%2F..%2Fb");

  server_.Answer(204, "");
  EXPECT_EQ(Run({"tenant", "delete", "acme"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/tenants/acme");
  EXPECT_THAT(out(), HasSubstr("Deleted tenant acme"));
}

TEST_F(CommandsTest, TenantListFollowsPages) {
  server_.Answer(200, R"({"items":[{"id":"a","name":"A","region":"jp"}],"next":"a"})");
  server_.Answer(200, R"({"items":[{"id":"b","name":"B","region":"eu"}],"next":null})");
  EXPECT_EQ(Run({"tenant", "list"}), kExitOk);
  ASSERT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(server_.requests[0].request.path, "/v1/tenants");
  EXPECT_EQ(server_.requests[1].request.path, "/v1/tenants?after=a");
  EXPECT_THAT(out(), HasSubstr("ID  NAME  REGION  CREATED\n"));
  EXPECT_THAT(out(), HasSubstr("b   B     eu      -\n"));

  server_.Answer(200, R"({"items":[{"id":"a"}],"next":null})");
  EXPECT_EQ(Run({"tenant", "list", "--format", "json"}), kExitOk);
  EXPECT_EQ(json::parse(out()), json({{"items", {{{"id", "a"}}}}, {"next", nullptr}}));

  // A server that answers with the same cursor again is not followed round.
  const std::size_t before = server_.requests.size();
  server_.Answer(200, R"({"items":[{"id":"a"}],"next":"a"})");
  server_.Answer(200, R"({"items":[{"id":"a"}],"next":"a"})");
  EXPECT_EQ(Run({"tenant", "list"}), kExitError);
  EXPECT_THAT(err(), HasSubstr("does not advance"));
  EXPECT_EQ(server_.requests.size(), before + 2);
}

TEST_F(CommandsTest, CollectionCommands) {
  json schema = {{"fields", {{"email", {{"type", "string"}, {"index", true}}}}}, {"required", {"email"}}};
  auto dir = std::filesystem::temp_directory_path() / ("kura_cli_commands_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / "schema.json").string();
  std::ofstream(file) << schema.dump();

  server_.Answer(201, schema.dump());
  EXPECT_EQ(Run({"collection", "put", "acme", "customers", "--schema", file}), kExitOk);
  EXPECT_EQ(Last().method, "PUT");
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers");
  EXPECT_EQ(*Last().body, schema);
  EXPECT_THAT(out(), HasSubstr("\"email\""));

  EXPECT_EQ(Run({"collection", "put", "acme", "notes", "--schema", "-"}, schema.dump()), kExitOk);
  EXPECT_EQ(*Last().body, schema);

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"collection", "put", "acme", "x", "--schema", (dir / "missing.json").string()}), kExitUsage);
  EXPECT_EQ(Run({"collection", "put", "acme", "x", "--schema", "-"}, "{not json"), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("standard input: malformed JSON at byte"));
  EXPECT_EQ(Run({"collection", "put", "acme", "x", "--schema", "-"}, R"({"fields":{"n":{"max":1e999}}})"), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("standard input: malformed JSON: a number is out of range"));
  EXPECT_THAT(err(), Not(HasSubstr("999")));
  EXPECT_EQ(server_.requests.size(), before);

  EXPECT_EQ(Run({"collection", "get", "acme", "customers"}), kExitOk);
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers");

  server_.Answer(200, R"({"items":[{"name":"customers"},{"name":"notes"}]})");
  EXPECT_EQ(Run({"collection", "list", "acme"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/collections");
  EXPECT_THAT(out(), HasSubstr("notes"));
  std::filesystem::remove_all(dir);
}

TEST_F(CommandsTest, RoleCommands) {
  json role = {{"permissions", {{{"action", "record.read"}, {"collections", {"customers"}}, {"view", "masked"}}}}};
  server_.Answer(201, json({{"name", "support"}, {"permissions", role["permissions"]}}).dump());
  EXPECT_EQ(Run({"role", "put", "acme", "support", "--file", "-"}, role.dump()), kExitOk);
  EXPECT_EQ(Last().method, "PUT");
  EXPECT_EQ(Last().path, "/v1/t/acme/roles/support");
  EXPECT_EQ(*Last().body, role);
  EXPECT_THAT(out(), HasSubstr("record.read on customers (masked view)"));

  EXPECT_EQ(Run({"role", "get", "acme", "support"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/roles/support");
  server_.Answer(200, R"({"items":[{"name":"admin","permissions":[{"action":"record.read"},{"action":"record.write"},
                          {"action":"record.read"}]},{"name":"empty","permissions":[]}]})");
  EXPECT_EQ(Run({"role", "list", "acme"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/roles");
  EXPECT_EQ(out(), "NAME   ACTIONS\nadmin  record.read,record.write\nempty  -\n");
  server_.Answer(204, "");
  EXPECT_EQ(Run({"role", "delete", "acme", "support"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/t/acme/roles/support");
}

TEST_F(CommandsTest, ApiKeyCommands) {
  server_.Answer(201, R"({"id":"k1","name":"app","role":"admin","key":"kura_key_k1_secret"})");
  EXPECT_EQ(Run({"apikey", "create", "acme", "--name", "app", "--role", "admin"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/apikeys");
  EXPECT_EQ(*Last().body, json({{"name", "app"}, {"role", "admin"}, {"expires_at", nullptr}}));
  EXPECT_THAT(out(), HasSubstr("key: kura_key_k1_secret"));
  EXPECT_THAT(out(), HasSubstr("shown only once"));

  EXPECT_EQ(Run({"apikey", "create", "acme", "--name", "app", "--role", "admin", "--expires-at",
                 "2027-01-31T00:00:00+09:00"}),
            kExitOk);
  EXPECT_EQ((*Last().body)["expires_at"], "2027-01-31T00:00:00+09:00");

  server_.Answer(200, R"({"items":[{"id":"k1","name":"app","role":"admin","created_at":"2026-01-01T00:00:00Z",
                          "expires_at":null,"revoked_at":null}]})");
  EXPECT_EQ(Run({"apikey", "list", "acme"}), kExitOk);
  EXPECT_EQ(Last().method, "GET");
  EXPECT_THAT(out(), HasSubstr("k1"));

  server_.Answer(204, "");
  EXPECT_EQ(Run({"apikey", "revoke", "acme", "k1"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/t/acme/apikeys/k1");
}

TEST_F(CommandsTest, RecordPutCreatesAndUpdates) {
  server_.Answer(201, R"({"id":"r1","version":1})");
  EXPECT_EQ(Run({"record", "put", "acme", "customers", "--data", R"({"email":"a@b"})", "--subject", "cust-1"}),
            kExitOk);
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records");
  EXPECT_EQ(*Last().body, json({{"data", {{"email", "a@b"}}}, {"subject", "cust-1"}}));
  EXPECT_EQ(out(), "id: r1\nversion: 1\n");

  server_.Answer(200, R"({"id":"r1","version":3})");
  EXPECT_EQ(Run({"record", "put", "acme", "customers", "--id", "r1", "--if-match", "2", "--data", "-"},
                R"({"email":"c@d"})"),
            kExitOk);
  EXPECT_EQ(Last().method, "PUT");
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records/r1");
  EXPECT_EQ(*Last().body, json({{"data", {{"email", "c@d"}}}}));
  ASSERT_EQ(Last().headers.size(), 1u);
  EXPECT_EQ(Last().headers[0], (std::pair<std::string, std::string>{"If-Match", "\"2\""}));

  server_.Answer(409, R"({"error":{"code":"aborted","message":"version conflict","request_id":"r"}})");
  EXPECT_EQ(Run({"record", "put", "acme", "customers", "--id", "r1", "--if-match", "2", "--data", "{}"}),
            kExitConflict);

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"record", "put", "acme", "customers", "--data", R"({"email": "secret@x"  )"}), kExitUsage);
  EXPECT_THAT(err(), Not(HasSubstr("secret@x")));
  EXPECT_EQ(server_.requests.size(), before);
}

TEST_F(CommandsTest, RecordGetFindDeleteVersions) {
  server_.Answer(200, R"({"id":"r1","version":2,"data":{"email":"a***@b.example"},"subject":"c",
                          "created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-02T00:00:00Z"})");
  EXPECT_EQ(Run({"record", "get", "acme", "customers", "r1"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records/r1");
  EXPECT_THAT(out(), HasSubstr("version: 2\n"));
  EXPECT_THAT(out(), HasSubstr("a***@b.example"));

  EXPECT_EQ(Run({"record", "get", "acme", "customers", "r1", "--version", "1"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records/r1?version=1");

  server_.Answer(200, R"({"items":[{"id":"r1","version":2,"data":{"email":"x"}}],"next":"r1"})");
  EXPECT_EQ(Run({"record", "find", "acme", "customers", "email=a+b@c.example", "--limit", "5", "--after", "r0"}),
            kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records?email=a%2Bb%40c.example&limit=5&after=r0");
  EXPECT_THAT(out(), HasSubstr("r1"));
  EXPECT_THAT(err(), HasSubstr("--after r1"));

  EXPECT_EQ(Run({"record", "find", "acme", "customers"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records");

  server_.Answer(200, R"({"items":[{"version":2,"created_at":"x"},{"version":1,"created_at":"y"}]})");
  EXPECT_EQ(Run({"record", "versions", "acme", "customers", "r1"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records/r1/versions");
  EXPECT_THAT(out(), HasSubstr("VERSION  CREATED\n2        x\n1        y\n"));

  server_.Answer(204, "");
  EXPECT_EQ(Run({"record", "delete", "acme", "customers", "r1"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/t/acme/collections/customers/records/r1");
}

TEST_F(CommandsTest, JsonFormatPrintsServerBodyVerbatim) {
  const std::string body = R"({"id":"r1","version":1,"data":{"email":"a@b"}})";
  server_.Answer(200, body);
  EXPECT_EQ(Run({"record", "get", "acme", "customers", "r1", "--format", "json"}), kExitOk);
  EXPECT_EQ(out(), body + "\n");
}

TEST_F(CommandsTest, UnexpectedBodyShapeIsPrintedNotFatal) {
  server_.Answer(200, "[1,2,3]");
  EXPECT_EQ(Run({"operator", "unseal", "s"}), kExitOk);
  EXPECT_EQ(out(), "[1,2,3]\n");
  server_.Answer(200, "not json at all");
  EXPECT_EQ(Run({"tenant", "get", "a"}), kExitOk);
  EXPECT_EQ(out(), "not json at all\n");
}

// Fields of the wrong type once ended the process with an uncaught
// nlohmann::json::type_error (nlohmann's value() throws on a type mismatch).
TEST_F(CommandsTest, FieldsOfTheWrongTypeAreNotFatal) {
  // A 403 whose error message is not a string.
  server_.Answer(403, R"({"error":{"code":"permission_denied","message":5}})");
  EXPECT_EQ(Run({"tenant", "get", "a"}), kExitPermissionDenied);
  EXPECT_THAT(err(), HasSubstr("HTTP 403"));

  // Audit entries with fields of other types: printed as far as they can be.
  server_.Answer(200, R"({"items":[{"seq":"7","principal":1,"action":"record.read"},3,"x"]})");
  EXPECT_EQ(Run({"audit", "tail"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("record.read"));

  // A checkpoint listing that does not advance: once paged for ever.
  const std::string pem_file =
      (std::filesystem::temp_directory_path() / ("kura-commands-test-" + std::to_string(::getpid()) + ".pem")).string();
  { std::ofstream(pem_file) << crypto::PublicKeyToPem(crypto::SigningKey::Generate().public_key()); }
  const std::string page = R"({"items":[{"tree_size":5,"root":"00","note":"n\n","signature":"00"}]})";
  server_.Answer(200, page);
  server_.Answer(200, page);
  EXPECT_EQ(Run({"audit", "verify", "--pubkey", pem_file}), kExitError);
  EXPECT_THAT(err(), HasSubstr("listed checkpoint 5 after 5"));
  std::filesystem::remove(pem_file);

  // Status: a seal status whose fields hold other types than booleans and
  // numbers reaches the last guard, a clear error without the answer's text.
  server_.Answer(200, R"({"live":true,"ready":true,"sealed":false,"initialized":true})");
  server_.Answer(200, R"({"initialized":true,"sealed":"no","type":"keyfile","progress":"a","threshold":"b"})");
  EXPECT_EQ(Run({"status"}), kExitError);
  EXPECT_EQ(err(), "kura: the server's answer is not of the expected shape\n");
}

}  // namespace
}  // namespace kura::cli
