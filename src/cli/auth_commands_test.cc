// The sign-in and user commands against a fake transport: the requests they
// send (and what they never send), what they print, and their exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/app.h"
#include "cli/commands_test_util.h"

namespace kura::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using nlohmann::json;

constexpr char kTotpNeeded[] =
    R"json({"error":{"code":"unauthenticated","message":"sign-in needs a TOTP code (\"totp\") or a recovery code (\"recovery_code\")","request_id":"r1"}})json";
constexpr char kBadLogin[] =
    R"({"error":{"code":"unauthenticated","message":"sign-in failed: wrong username or password, or the account is locked or disabled","request_id":"r2"}})";
constexpr char kSession[] =
    R"({"token":"kura_sess_abc123","expires_at":"2026-05-01T12:00:00Z","auth_method":"password+totp","restriction":null})";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

class AuthCommandsTest : public test_support::CommandsTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kura_cli_auth_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(AuthCommandsTest, HelpExitsZeroEverywhere) {
  const std::vector<std::vector<std::string>> commands = {
      {"login"},           {"logout"},           {"whoami"},          {"passwd"},
      {"step-up"},         {"totp"},             {"totp", "enroll"},  {"totp", "confirm"},
      {"user"},            {"user", "create"},   {"user", "get"},     {"user", "list"},
      {"user", "update"},  {"user", "delete"},   {"user", "revoke-sessions"},
      {"auth-policy"},     {"auth-policy", "get"}, {"auth-policy", "set"},
      {"operator", "revoke-root"},
  };
  for (auto args : commands) {
    args.push_back("--help");
    EXPECT_EQ(Run(args), kExitOk) << ::testing::PrintToString(args);
    EXPECT_THAT(out(), HasSubstr("Usage")) << ::testing::PrintToString(args);
  }
  EXPECT_TRUE(server_.requests.empty());
}

TEST_F(AuthCommandsTest, LoginWithPasswordPrintsShellAssignment) {
  server_.Answer(200, R"({"token":"kura_sess_abc123","expires_at":"2026-05-01T12:00:00Z","auth_method":"password",
                          "restriction":null})");
  // An older token in the environment is never sent with a sign-in.
  ::setenv("KURA_TOKEN", "kura_sess_old", 1);
  int code = Run({"login", "--username", "alice", "--tenant", "acme"}, " pass word \n");
  ::unsetenv("KURA_TOKEN");
  ASSERT_EQ(code, kExitOk) << err();
  ASSERT_EQ(server_.requests.size(), 1u);
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/auth/login");
  // Blanks inside and around a password are part of it.
  EXPECT_EQ(*Last().body, json({{"username", "alice"}, {"password", " pass word "}, {"tenant", "acme"}}));
  EXPECT_EQ(server_.requests[0].options.token, "");
  EXPECT_FALSE(server_.requests[0].options.negotiate);
  EXPECT_EQ(out(), "KURA_TOKEN=kura_sess_abc123\n");
  EXPECT_THAT(err(), HasSubstr("expires at 2026-05-01T12:00:00Z"));
  EXPECT_THAT(err(), Not(HasSubstr("pass word")));
}

TEST_F(AuthCommandsTest, LoginAsksForUsernameAndStaffHasNoTenant) {
  server_.Answer(200, kSession);
  ASSERT_EQ(Run({"login"}, "bob\nsecret-pw\n"), kExitOk) << err();
  EXPECT_EQ(*Last().body, json({{"username", "bob"}, {"password", "secret-pw"}}));
}

TEST_F(AuthCommandsTest, LoginAsksForTotpOnlyWhenTheServerNeedsIt) {
  server_.Answer(401, kTotpNeeded);
  server_.Answer(200, kSession);
  ASSERT_EQ(Run({"login", "-u", "alice"}, "pw-1\n123456\n"), kExitOk) << err();
  ASSERT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(*server_.requests[0].request.body, json({{"username", "alice"}, {"password", "pw-1"}}));
  EXPECT_EQ(*server_.requests[1].request.body,
            json({{"username", "alice"}, {"password", "pw-1"}, {"totp", "123456"}}));
  EXPECT_EQ(out(), "KURA_TOKEN=kura_sess_abc123\n");
  EXPECT_THAT(err(), Not(HasSubstr("error")));
}

TEST_F(AuthCommandsTest, LoginWrongPasswordIsNotRetried) {
  server_.Answer(401, kBadLogin);
  EXPECT_EQ(Run({"login", "-u", "alice"}, "wrong\n123456\n"), kExitUnauthenticated);
  EXPECT_EQ(server_.requests.size(), 1u);
  EXPECT_THAT(err(), HasSubstr("sign-in failed"));
  EXPECT_THAT(out(), IsEmpty());

  // A wrong code after the retry is reported as is.
  server_.Answer(401, kTotpNeeded);
  server_.Answer(401, R"({"error":{"code":"unauthenticated","message":"sign-in failed: wrong TOTP or recovery code"}})");
  EXPECT_EQ(Run({"login", "-u", "alice"}, "pw\n000000\n"), kExitUnauthenticated);
  EXPECT_EQ(server_.requests.size(), 3u);
  EXPECT_THAT(err(), HasSubstr("wrong TOTP"));

  // No code typed: a usage error, nothing more sent.
  server_.Answer(401, kTotpNeeded);
  EXPECT_EQ(Run({"login", "-u", "alice"}, "pw\n"), kExitUsage);
  EXPECT_EQ(server_.requests.size(), 4u);
}

TEST_F(AuthCommandsTest, LoginTotpAndRecoveryCodeUpFront) {
  server_.Answer(200, kSession);
  ASSERT_EQ(Run({"login", "-u", "alice", "--totp"}, "pw\n 654321 \n"), kExitOk) << err();
  EXPECT_EQ(*Last().body, json({{"username", "alice"}, {"password", "pw"}, {"totp", "654321"}}));

  server_.Answer(200, R"({"token":"kura_sess_r","expires_at":"x","auth_method":"recovery_code","restriction":null,
                          "recovery_codes_left":7})");
  ASSERT_EQ(Run({"login", "-u", "alice", "--recovery-code"}, "pw\nabcd-efgh\n"), kExitOk) << err();
  EXPECT_EQ(*Last().body, json({{"username", "alice"}, {"password", "pw"}, {"recovery_code", "abcd-efgh"}}));
  EXPECT_THAT(err(), HasSubstr("7 left"));

  EXPECT_EQ(Run({"login", "--totp", "--recovery-code"}), kExitUsage);
  EXPECT_EQ(server_.requests.size(), 2u);
}

TEST_F(AuthCommandsTest, LoginRestrictionsNameTheNextCommand) {
  server_.Answer(200, R"({"token":"kura_sess_x","expires_at":"x","auth_method":"password","restriction":"password_change"})");
  ASSERT_EQ(Run({"login", "-u", "a"}, "pw\n"), kExitOk);
  EXPECT_THAT(err(), HasSubstr("kura passwd"));
  server_.Answer(200, R"({"token":"kura_sess_x","expires_at":"x","auth_method":"password","restriction":"totp_enrollment"})");
  ASSERT_EQ(Run({"login", "-u", "a"}, "pw\n"), kExitOk);
  EXPECT_THAT(err(), HasSubstr("kura totp enroll"));
}

TEST_F(AuthCommandsTest, LoginJsonPrintsTheServersBody) {
  server_.Answer(200, kSession);
  ASSERT_EQ(Run({"login", "-u", "a", "--format", "json"}, "pw\n"), kExitOk);
  EXPECT_EQ(out(), std::string(kSession) + "\n");
  EXPECT_THAT(err(), IsEmpty());
}

TEST_F(AuthCommandsTest, LoginTokenFileIsPrivateAndReplacedAtomically) {
  auto file = dir_ / "session.env";
  std::ofstream(file) << "KURA_TOKEN=kura_sess_previous\n";
  ::chmod(file.c_str(), 0644);
  server_.Answer(200, kSession);
  ASSERT_EQ(Run({"login", "-u", "a", "--token-file", file.string()}, "pw\n"), kExitOk) << err();
  EXPECT_EQ(ReadFile(file), "KURA_TOKEN=kura_sess_abc123\n");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(out(), IsEmpty()) << "the token goes to the file only";
  EXPECT_THAT(err(), HasSubstr(file.string()));
  // No temporary file is left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(AuthCommandsTest, LoginTokenFileFailureSignsTheSessionOut) {
  server_.Answer(200, kSession);
  server_.Answer(204, "");
  auto file = dir_ / "no-such-dir" / "session.env";
  EXPECT_EQ(Run({"login", "-u", "a", "--token-file", file.string()}, "pw\n"), kExitUsage);
  ASSERT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(Last().path, "/v1/auth/logout");
  EXPECT_EQ(server_.requests[1].options.token, "kura_sess_abc123");
  EXPECT_THAT(out(), IsEmpty());
  EXPECT_THAT(err(), Not(HasSubstr("kura_sess_abc123")));
}

TEST_F(AuthCommandsTest, LoginKerberosUsesNegotiate) {
  server_.Answer(200, R"({"token":"kura_sess_k","expires_at":"x","auth_method":"kerberos","restriction":null})");
  ::setenv("KURA_TOKEN", "kura_sess_old", 1);
  int code = Run({"login", "--kerberos"});
  ::unsetenv("KURA_TOKEN");
  ASSERT_EQ(code, kExitOk) << err();
  ASSERT_EQ(server_.requests.size(), 1u);
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/auth/kerberos");
  EXPECT_FALSE(Last().body.has_value());
  EXPECT_TRUE(server_.requests[0].options.negotiate);
  EXPECT_EQ(server_.requests[0].options.token, "");
  EXPECT_EQ(out(), "KURA_TOKEN=kura_sess_k\n");

  server_.Answer(401, R"({"error":{"code":"unauthenticated","message":"this route takes Authorization: Negotiate"}})");
  EXPECT_EQ(Run({"login", "--kerberos"}), kExitUnauthenticated);
  EXPECT_THAT(err(), HasSubstr("kinit"));

  EXPECT_EQ(Run({"login", "--kerberos", "--username", "a"}), kExitUsage);
  EXPECT_EQ(Run({"login", "--kerberos", "--tenant", "acme"}), kExitUsage);
}

TEST_F(AuthCommandsTest, LogoutAndWhoami) {
  server_.Answer(204, "");
  ASSERT_EQ(Run({"logout", "--token", "kura_sess_abc"}), kExitOk);
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/auth/logout");
  EXPECT_EQ(server_.requests.back().options.token, "kura_sess_abc");
  EXPECT_THAT(out(), HasSubstr("Signed out"));

  server_.Answer(200, R"({"kind":"staff","id":"alice","username":"alice","tenant":null,"roles":["operator","auditor"],
                          "auth_method":"password+totp","authenticated_at":"2026-01-01T00:00:00Z","restriction":null})");
  ASSERT_EQ(Run({"whoami"}), kExitOk);
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/whoami");
  EXPECT_THAT(out(), HasSubstr("kind: staff\n"));
  EXPECT_THAT(out(), HasSubstr("roles: operator,auditor\n"));
  EXPECT_THAT(out(), HasSubstr("auth_method: password+totp\n"));
}

TEST_F(AuthCommandsTest, Passwd) {
  server_.Answer(204, "");
  ASSERT_EQ(Run({"passwd"}, "old pw\nnew-long-pw\nnew-long-pw\n"), kExitOk) << err();
  EXPECT_EQ(Last().path, "/v1/auth/password");
  EXPECT_EQ(*Last().body, json({{"current_password", "old pw"}, {"new_password", "new-long-pw"}}));
  EXPECT_THAT(out(), HasSubstr("Password changed."));
  EXPECT_THAT(out() + err(), Not(HasSubstr("new-long-pw")));

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"passwd"}, "old\nnew-one\nnew-two\n"), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("differ"));
  EXPECT_EQ(Run({"passwd"}, "old\nnew-one\n"), kExitUsage);
  EXPECT_EQ(server_.requests.size(), before);

  server_.Answer(422, R"({"error":{"code":"invalid_argument","message":"new_password: too short"}})");
  EXPECT_EQ(Run({"passwd"}, "old\nshort\nshort\n"), kExitInvalidInput);
}

TEST_F(AuthCommandsTest, StepUp) {
  server_.Answer(200, R"({"authenticated_at":"2026-01-01T00:00:00Z","fresh_until":"2026-01-01T00:05:00Z"})");
  ASSERT_EQ(Run({"step-up"}, "123456\n"), kExitOk) << err();
  EXPECT_EQ(Last().path, "/v1/auth/step-up");
  EXPECT_EQ(*Last().body, json({{"totp", "123456"}}));
  EXPECT_THAT(out(), HasSubstr("until 2026-01-01T00:05:00Z"));

  server_.Answer(200, R"({"authenticated_at":"a","fresh_until":"b"})");
  ASSERT_EQ(Run({"step-up", "--password"}, "my pw\n"), kExitOk);
  EXPECT_EQ(*Last().body, json({{"password", "my pw"}}));

  server_.Answer(400, R"({"error":{"code":"invalid_argument","message":"password: required"}})");
  EXPECT_EQ(Run({"step-up"}, "123456\n"), kExitInvalidInput);
  EXPECT_THAT(err(), HasSubstr("kura step-up --password"));

  server_.Answer(401, R"({"error":{"code":"unauthenticated","message":"step-up failed: wrong totp"}})");
  EXPECT_EQ(Run({"step-up"}, "000000\n"), kExitUnauthenticated);
}

TEST_F(AuthCommandsTest, ForbiddenAnswersHintAtTheSignInStep) {
  server_.Answer(403, R"({"error":{"code":"permission_denied","message":"this action needs a recent sign-in: authenticate again with POST /v1/auth/step-up"}})");
  EXPECT_EQ(Run({"tenant", "delete", "acme"}), kExitPermissionDenied);
  EXPECT_THAT(err(), HasSubstr("run `kura step-up`"));

  server_.Answer(403, R"json({"error":{"code":"permission_denied","message":"finish signing in first: totp_enrollment (POST /v1/auth/password or /v1/auth/totp/enroll)"}})json");
  EXPECT_EQ(Run({"tenant", "list"}), kExitPermissionDenied);
  EXPECT_THAT(err(), HasSubstr("kura totp enroll"));

  server_.Answer(403, R"({"error":{"code":"permission_denied","message":"permission denied"}})");
  EXPECT_EQ(Run({"tenant", "get", "a"}), kExitPermissionDenied);
  EXPECT_THAT(err(), Not(HasSubstr("run `kura")));
}

TEST_F(AuthCommandsTest, TotpEnrollWritesQrAndConfirms) {
  const std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>";
  server_.Answer(200, json({{"secret", "JBSWY3DPEHPK3PXP"},
                            {"uri", "otpauth://totp/kura:alice?secret=JBSWY3DPEHPK3PXP&issuer=kura"},
                            {"qr_svg", svg}})
                          .dump());
  server_.Answer(200, R"({"recovery_codes":["aaaa-bbbb","cccc-dddd"]})");
  auto qr = dir_ / "totp.svg";
  ASSERT_EQ(Run({"totp", "enroll", "--qr", qr.string()}, "123456\n"), kExitOk) << err();
  ASSERT_EQ(server_.requests.size(), 2u);
  EXPECT_EQ(server_.requests[0].request.method, "POST");
  EXPECT_EQ(server_.requests[0].request.path, "/v1/auth/totp/enroll");
  EXPECT_EQ(server_.requests[1].request.path, "/v1/auth/totp/confirm");
  EXPECT_EQ(*server_.requests[1].request.body, json({{"code", "123456"}}));
  EXPECT_EQ(ReadFile(qr), svg);
  struct stat st {};
  ASSERT_EQ(::stat(qr.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(out(), HasSubstr("secret: JBSWY3DPEHPK3PXP\n"));
  EXPECT_THAT(out(), HasSubstr("uri: otpauth://totp/kura:alice"));
  EXPECT_THAT(out(), HasSubstr("  aaaa-bbbb\n  cccc-dddd\n"));
  EXPECT_THAT(out(), HasSubstr("shown only once"));
  EXPECT_THAT(out(), Not(HasSubstr("<svg")));
}

TEST_F(AuthCommandsTest, TotpEnrollWithoutConfirmAndConfirmLater) {
  server_.Answer(200, R"({"secret":"S","uri":"otpauth://totp/x","qr_svg":"<svg/>"})");
  ASSERT_EQ(Run({"totp", "enroll", "--no-confirm"}), kExitOk);
  EXPECT_EQ(server_.requests.size(), 1u);
  EXPECT_THAT(out(), HasSubstr("kura totp confirm CODE"));

  // No code at the prompt: the enrolment stays pending, exit 2.
  server_.Answer(200, R"({"secret":"S","uri":"otpauth://totp/x","qr_svg":"<svg/>"})");
  EXPECT_EQ(Run({"totp", "enroll"}, ""), kExitUsage);
  EXPECT_EQ(server_.requests.size(), 2u);
  EXPECT_THAT(err(), HasSubstr("kura totp confirm"));

  server_.Answer(200, R"({"recovery_codes":["r1"]})");
  ASSERT_EQ(Run({"totp", "confirm", "654321"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/auth/totp/confirm");
  EXPECT_EQ(*Last().body, json({{"code", "654321"}}));
  EXPECT_THAT(out(), HasSubstr("  r1\n"));

  server_.Answer(400, R"({"error":{"code":"invalid_argument","message":"code: wrong or expired TOTP code"}})");
  EXPECT_EQ(Run({"totp", "confirm", "000000"}), kExitInvalidInput);
  EXPECT_EQ(Run({"totp", "confirm"}), kExitUsage);
}

TEST_F(AuthCommandsTest, UserCreateTenantAndStaff) {
  server_.Answer(201, R"({"username":"bob","tenant":"acme","roles":["support"],"password_set":true,"totp":false,
                          "disabled":false})");
  ASSERT_EQ(Run({"user", "create", "bob", "--tenant", "acme", "--role", "support"}, "Long pw 123\nLong pw 123\n"),
            kExitOk)
      << err();
  EXPECT_EQ(Last().method, "POST");
  EXPECT_EQ(Last().path, "/v1/t/acme/users");
  EXPECT_EQ(*Last().body, json({{"username", "bob"}, {"roles", {"support"}}, {"password", "Long pw 123"}}));
  EXPECT_THAT(out(), HasSubstr("roles: support\n"));
  EXPECT_THAT(out(), Not(HasSubstr("Long pw")));

  // Staff by default; several roles; the password from standard input.
  ASSERT_EQ(Run({"user", "create", "carol", "--role", "operator,auditor", "--password-stdin"}, "pipe-pw\n"), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/staff");
  EXPECT_EQ(*Last().body, json({{"username", "carol"}, {"roles", {"operator", "auditor"}}, {"password", "pipe-pw"}}));
  ASSERT_EQ(Run({"user", "create", "dave", "--staff", "--role", "operator", "--role", "auditor", "--password-stdin"},
                "x\n"),
            kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/staff");
  EXPECT_EQ((*Last().body)["roles"], json({"operator", "auditor"}));

  // A Kerberos-only staff member: no password asked.
  ASSERT_EQ(Run({"user", "create", "erin", "--role", "operator", "--kerberos", "erin@EXAMPLE.ORG"}), kExitOk);
  EXPECT_EQ(*Last().body, json({{"username", "erin"}, {"roles", {"operator"}}, {"kerberos", "erin@EXAMPLE.ORG"}}));

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"user", "create", "x", "--tenant", "acme", "--role", "r"}, "one\ntwo\n"), kExitUsage);
  EXPECT_EQ(Run({"user", "create", "x", "--tenant", "acme", "--role", "r"}, ""), kExitUsage);
  EXPECT_EQ(Run({"user", "create", "x", "--tenant", "acme"}, "p\np\n"), kExitUsage);  // --role required
  EXPECT_EQ(Run({"user", "create", "x", "--tenant", "acme", "--staff", "--role", "r"}, "p\np\n"), kExitUsage);
  EXPECT_EQ(Run({"user", "create", "x", "--tenant", "acme", "--role", "r", "--kerberos", "x@R"}), kExitUsage);
  EXPECT_EQ(server_.requests.size(), before);

  server_.Answer(409, R"({"error":{"code":"already_exists","message":"user 'bob' already exists"}})");
  EXPECT_EQ(Run({"user", "create", "bob", "--tenant", "acme", "--role", "r", "--password-stdin"}, "p\n"),
            kExitConflict);
}

TEST_F(AuthCommandsTest, UserGetListDeleteRevoke) {
  server_.Answer(200, R"({"username":"bob","tenant":"acme","roles":["a","b"],"totp":true,"disabled":false,
                          "locked_until":null})");
  ASSERT_EQ(Run({"user", "get", "bob", "--tenant", "acme"}), kExitOk);
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/t/acme/users/bob");
  EXPECT_THAT(out(), HasSubstr("roles: a,b\n"));
  ASSERT_EQ(Run({"user", "get", "a/b"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/staff/a%2Fb");

  server_.Answer(200, R"({"items":[{"username":"a","roles":["x"],"totp":true,"disabled":false,"locked_until":null,
                                    "created_at":"c1"}],"next":"a"})");
  server_.Answer(200, R"({"items":[{"username":"b","roles":["y","z"],"totp":false,"disabled":true,"locked_until":null,
                                    "created_at":"c2"},
                                   {"username":"c","roles":[],"totp":false,"disabled":false,
                                    "locked_until":"2026-01-01T00:00:00Z","created_at":"c3"}],"next":null})");
  ASSERT_EQ(Run({"user", "list", "--tenant", "acme"}), kExitOk);
  ASSERT_GE(server_.requests.size(), 2u);
  EXPECT_EQ(server_.requests[server_.requests.size() - 2].request.path, "/v1/t/acme/users");
  EXPECT_EQ(Last().path, "/v1/t/acme/users?after=a");
  EXPECT_EQ(out(),
            "USERNAME  ROLES  TOTP   STATE     CREATED\n"
            "a         x      true   active    c1\n"
            "b         y,z    false  disabled  c2\n"
            "c         -      false  locked    c3\n");

  server_.Answer(200, R"({"items":[{"username":"ops"}],"next":null})");
  ASSERT_EQ(Run({"user", "list", "--format", "json"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/staff");
  EXPECT_EQ(json::parse(out()), json({{"items", {{{"username", "ops"}}}}, {"next", nullptr}}));

  server_.Answer(204, "");
  ASSERT_EQ(Run({"user", "delete", "bob", "--tenant", "acme"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/t/acme/users/bob");
  EXPECT_THAT(out(), HasSubstr("Deleted user bob."));

  server_.Answer(200, R"({"revoked":3})");
  ASSERT_EQ(Run({"user", "revoke-sessions", "bob", "--tenant", "acme"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/t/acme/users/bob/sessions");
  EXPECT_THAT(out(), HasSubstr("Revoked 3 session(s) of bob."));
  ASSERT_EQ(Run({"user", "revoke-sessions", "alice"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/staff/alice/sessions");

  server_.Answer(404, R"({"error":{"code":"not_found","message":"user 'nope' not found"}})");
  EXPECT_EQ(Run({"user", "get", "nope", "--tenant", "acme"}), kExitNotFound);
}

TEST_F(AuthCommandsTest, UserUpdate) {
  ASSERT_EQ(Run({"user", "update", "bob", "--tenant", "acme", "--role", "a,b", "--disable", "--unlock",
                 "--reset-totp"}),
            kExitOk)
      << err();
  EXPECT_EQ(Last().method, "PUT");
  EXPECT_EQ(Last().path, "/v1/t/acme/users/bob");
  EXPECT_EQ(*Last().body, json({{"roles", {"a", "b"}}, {"disabled", true}, {"unlock", true}, {"reset_totp", true}}));

  ASSERT_EQ(Run({"user", "update", "bob", "--tenant", "acme", "--enable"}), kExitOk);
  EXPECT_EQ(*Last().body, json({{"disabled", false}}));

  server_.Answer(200, R"({"username":"bob","password_set":true})");
  ASSERT_EQ(Run({"user", "update", "bob", "--tenant", "acme", "--password"}, "Temp pw 1\nTemp pw 1\n"), kExitOk);
  EXPECT_EQ(*Last().body, json({{"password", "Temp pw 1"}}));
  EXPECT_THAT(out(), HasSubstr("must choose a new password"));

  ASSERT_EQ(Run({"user", "update", "ops", "--password-stdin"}, "piped\n"), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/staff/ops");
  EXPECT_EQ(*Last().body, json({{"password", "piped"}}));

  ASSERT_EQ(Run({"user", "update", "ops", "--kerberos", "ops@EXAMPLE.ORG"}), kExitOk);
  EXPECT_EQ(*Last().body, json({{"kerberos", "ops@EXAMPLE.ORG"}}));
  ASSERT_EQ(Run({"user", "update", "ops", "--no-kerberos"}), kExitOk);
  EXPECT_EQ(*Last().body, json({{"kerberos", nullptr}}));

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"user", "update", "bob", "--tenant", "acme"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("nothing to change"));
  EXPECT_EQ(Run({"user", "update", "bob", "--disable", "--enable"}), kExitUsage);
  EXPECT_EQ(Run({"user", "update", "bob", "--tenant", "acme", "--kerberos", "b@R"}), kExitUsage);
  EXPECT_EQ(Run({"user", "update", "bob", "--password"}, "a\nb\n"), kExitUsage);
  EXPECT_EQ(server_.requests.size(), before);
}

TEST_F(AuthCommandsTest, AuthPolicy) {
  const std::string policy =
      R"({"min_length":12,"max_age_days":90,"history":5,"lockout_threshold":5,"lockout_window_seconds":900,
          "lockout_duration_seconds":900,"require_totp":false,"step_up_requires_totp":false})";
  server_.Answer(200, policy);
  ASSERT_EQ(Run({"auth-policy", "get", "--tenant", "acme"}), kExitOk);
  EXPECT_EQ(Last().method, "GET");
  EXPECT_EQ(Last().path, "/v1/t/acme/auth-policy");
  EXPECT_THAT(out(), HasSubstr("min_length: 12\n"));
  EXPECT_THAT(out(), HasSubstr("require_totp: false\n"));
  ASSERT_EQ(Run({"auth-policy", "get"}), kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/auth-policy");

  server_.Answer(200, policy);
  ASSERT_EQ(Run({"auth-policy", "set", "--tenant", "acme", "--min-length", "14", "--max-age-days", "0",
                 "--lockout-threshold", "3", "--require-totp", "true"}),
            kExitOk)
      << err();
  EXPECT_EQ(Last().method, "PUT");
  EXPECT_EQ(Last().path, "/v1/t/acme/auth-policy");
  EXPECT_EQ(*Last().body,
            json({{"min_length", 14}, {"max_age_days", 0}, {"lockout_threshold", 3}, {"require_totp", true}}));

  ASSERT_EQ(Run({"auth-policy", "set", "--staff", "--history", "10", "--lockout-window-seconds", "600",
                 "--lockout-duration-seconds", "1200", "--step-up-requires-totp", "false"}),
            kExitOk);
  EXPECT_EQ(Last().path, "/v1/sys/auth-policy");
  EXPECT_EQ(*Last().body, json({{"history", 10},
                                {"lockout_window_seconds", 600},
                                {"lockout_duration_seconds", 1200},
                                {"step_up_requires_totp", false}}));

  std::size_t before = server_.requests.size();
  EXPECT_EQ(Run({"auth-policy", "set", "--tenant", "acme"}), kExitUsage);
  EXPECT_EQ(Run({"auth-policy", "set", "--require-totp", "yes"}), kExitUsage);
  EXPECT_EQ(Run({"auth-policy", "set", "--min-length", "many"}), kExitUsage);
  EXPECT_EQ(server_.requests.size(), before);

  server_.Answer(400, R"({"error":{"code":"invalid_argument","message":"min_length: must be between 8 and 128"}})");
  EXPECT_EQ(Run({"auth-policy", "set", "--min-length", "4"}), kExitInvalidInput);
  EXPECT_THAT(err(), HasSubstr("between 8 and 128"));
}

TEST_F(AuthCommandsTest, OperatorRevokeRoot) {
  server_.Answer(204, "");
  ASSERT_EQ(Run({"operator", "revoke-root"}), kExitOk);
  EXPECT_EQ(Last().method, "DELETE");
  EXPECT_EQ(Last().path, "/v1/sys/root-token");
  EXPECT_FALSE(Last().body.has_value());
  EXPECT_THAT(out(), HasSubstr("Root token revoked"));

  server_.Answer(404, R"({"error":{"code":"not_found","message":"the root token is already revoked"}})");
  EXPECT_EQ(Run({"operator", "revoke-root"}), kExitNotFound);
}

}  // namespace
}  // namespace kura::cli
