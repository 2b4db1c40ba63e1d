// kura login|logout|whoami|passwd|step-up, kura totp enroll|confirm: a user's
// or staff member's own sign-in (SPEC §3).
//
// The CLI keeps no session state of its own: `login` hands the session token
// to the shell (KURA_TOKEN=… on stdout, or a 0600 file with --token-file) and
// every later command reads it from KURA_TOKEN like any other token.
#include <algorithm>
#include <cctype>
#include <memory>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {

// What the server says when the password was right but a second factor is
// needed (vault/identity.cc, kTotpNeeded). Matching the message keeps the
// wire contract as it is: the error code alone (unauthenticated) does not
// tell this from a wrong password.
constexpr char kTotpNeededMarker[] = "needs a TOTP code";

std::string ErrorMessage(const Response& response) {
  auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return "";
  const auto& e = body["error"];
  return StringField(e, "message");
}


// A token as one shell assignment. Tokens are URL-safe text, so this quotes
// only what a future format might add.
std::string ShellAssignment(const std::string& token) {
  bool plain = std::all_of(token.begin(), token.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~';
  });
  if (plain) return "KURA_TOKEN=" + token;
  std::string quoted = "'";
  for (char c : token) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return "KURA_TOKEN=" + quoted + "'";
}

// Hands a fresh session to the user. Stdout carries only what a script would
// evaluate (`KURA_TOKEN=…`, or with --format json the server's body); notes
// go to stderr.
int FinishSignIn(Context* ctx, const Response& response, const std::string& token_file) {
  auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
    *ctx->err << "kura: unexpected answer from the server\n";
    return kExitError;
  }
  std::string token = body["token"].get<std::string>();
  if (!token_file.empty()) {
    Status written = WritePrivateFile(token_file, ShellAssignment(token) + "\n");
    if (!written.ok()) {
      // A session nobody can use should not linger until it expires.
      ClientFlags saved = ctx->flags;
      ctx->flags.token = token;
      ctx->flags.negotiate = false;
      int ignored = kExitOk;
      Send(ctx, {"POST", "/v1/auth/logout", std::nullopt, {}}, &ignored);
      ctx->flags = saved;
      WipeSecret(&token);
      *ctx->err << "kura: " << written.message() << "\nkura: the new session was signed out again\n";
      return kExitUsage;
    }
  }
  if (ctx->format() == Format::kJson) {
    PrintRawBody(*ctx->out, response.body);
  } else if (token_file.empty()) {
    *ctx->out << ShellAssignment(token) << "\n";
  }
  WipeSecret(&token);
  if (ctx->format() == Format::kJson) return kExitOk;

  std::ostream& note = *ctx->err;
  note << "Signed in";
  if (body.contains("auth_method") && body["auth_method"].is_string()) {
    note << " (" << body["auth_method"].get<std::string>() << ")";
  }
  if (body.contains("expires_at")) note << "; the session expires at " << ScalarText(body["expires_at"]);
  note << ".\n";
  if (token_file.empty()) {
    note << "Export KURA_TOKEN for the next commands, e.g. set -a; eval \"$(kura login …)\"; set +a\n";
  } else {
    note << "Session token written to " << token_file << "; load it with: set -a; . " << token_file
         << "; set +a\n";
  }
  if (body.contains("recovery_codes_left") && body["recovery_codes_left"].is_number_integer()) {
    note << "A recovery code was used up; " << body["recovery_codes_left"].get<long long>()
         << " left. If the authenticator is lost, ask an administrator to reset TOTP.\n";
  }
  std::string restriction = body.contains("restriction") && body["restriction"].is_string()
                                ? body["restriction"].get<std::string>()
                                : "";
  if (restriction == "password_change") {
    note << "Your password has expired or was set by an administrator: this session can only change it.\n"
            "Next: kura passwd\n";
  } else if (restriction == "totp_enrollment") {
    note << "TOTP is required for this account: this session can only enrol it.\n"
            "Next: kura totp enroll\n";
  } else if (!restriction.empty()) {
    note << "This session is restricted (" << restriction << ") until sign-in is finished.\n";
  }
  return kExitOk;
}

void PrintRecoveryCodes(const nlohmann::json& b, std::ostream& out) {
  out << "TOTP is enrolled.\n";
  if (!b.contains("recovery_codes") || !b["recovery_codes"].is_array()) return;
  out << "Recovery codes (each one signs in once in place of a TOTP code):\n";
  for (const auto& code : b["recovery_codes"]) out << "  " << ScalarText(code) << "\n";
  out << "\nThey are shown only once: store them now, somewhere safe and apart from the\n"
         "authenticator device. kura keeps only their hashes.\n";
}

void AddLogin(CLI::App* app, Context* ctx) {
  struct Args {
    std::string tenant, username, token_file;
    bool totp = false, recovery_code = false, kerberos = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app->add_subcommand(
      "login", "Sign in with a password (and TOTP code) or Kerberos; prints KURA_TOKEN=<session token>");
  auto* tenant = cmd->add_option("--tenant", args->tenant, "Tenant of the user; without it, sign in as staff");
  auto* username = cmd->add_option("-u,--username", args->username, "User name (asked for when not given)");
  auto* totp = cmd->add_flag("--totp", args->totp, "Ask for the TOTP code before the first attempt");
  auto* recovery = cmd->add_flag("--recovery-code", args->recovery_code,
                                 "Use a one-time recovery code instead of a TOTP code (lost authenticator)");
  cmd->add_flag("--kerberos", args->kerberos,
                "Staff: sign in with the Kerberos ticket from the ticket cache (kinit; KRB5CCNAME)")
      ->excludes(tenant)
      ->excludes(username)
      ->excludes(totp)
      ->excludes(recovery);
  totp->excludes(recovery);
  cmd->add_option("--token-file", args->token_file,
                  "Write KURA_TOKEN=<token> to FILE (mode 0600, replaced atomically) instead of printing it");
  // No --token: a sign-in must not send an older session's token anywhere.
  AddClientFlags(cmd, ctx, /*with_token=*/false);
  SetAction(cmd, ctx, [ctx, args]() -> int {
    ctx->flags.token.clear();
    int code = kExitOk;
    if (args->kerberos) {
      ctx->flags.negotiate = true;
      auto response = Send(ctx, {"GET", "/v1/auth/kerberos", std::nullopt, {}}, &code);
      if (!response) return code;
      if (ExitCodeForHttpStatus(response->status) != kExitOk) {
        code = ReportHttpError(ctx, *response);
        if (response->status == 401) {
          *ctx->err << "kura: no usable Kerberos ticket for this server? Check `klist`, run `kinit`, and that "
                       "the server's HTTP/<host> principal is in your realm\n";
        }
        return code;
      }
      return FinishSignIn(ctx, *response, args->token_file);
    }

    std::string name = args->username;
    if (name.empty()) {
      auto read = ReadLine("Username: ", *ctx->in, *ctx->err);
      if (!read.ok()) return UsageError(ctx, read.status());
      name = std::move(read).value();
    }
    auto password = ReadPassword("Password: ", *ctx->in, *ctx->err);
    if (!password.ok()) return UsageError(ctx, password.status());
    nlohmann::json body = {{"username", name}, {"password", *password}};
    WipeSecret(&*password);
    if (!args->tenant.empty()) body["tenant"] = args->tenant;
    if (args->totp) {
      auto read = ReadLine("TOTP code: ", *ctx->in, *ctx->err);
      if (!read.ok()) return UsageError(ctx, read.status());
      body["totp"] = *read;
    } else if (args->recovery_code) {
      auto read = ReadSecretLine("Recovery code: ", *ctx->in, *ctx->err);
      if (!read.ok()) return UsageError(ctx, read.status());
      body["recovery_code"] = *read;
      WipeSecret(&*read);
    }
    auto response = Send(ctx, {"POST", "/v1/auth/login", body, {}}, &code);
    if (response && response->status == 401 && !args->totp && !args->recovery_code &&
        ErrorMessage(*response).find(kTotpNeededMarker) != std::string::npos) {
      // The password was right and the account has TOTP: ask for the code
      // and sign in again (a missing code does not count as a failure).
      auto read = ReadLine("TOTP code: ", *ctx->in, *ctx->err);
      if (!read.ok()) {
        WipeSecret(&body["password"].get_ref<std::string&>());
        return UsageError(ctx, read.status());
      }
      body["totp"] = *read;
      response = Send(ctx, {"POST", "/v1/auth/login", body, {}}, &code);
    }
    // The request body held the password; do not keep it longer than needed.
    WipeSecret(&body["password"].get_ref<std::string&>());
    if (!response) return code;
    if (ExitCodeForHttpStatus(response->status) != kExitOk) return ReportHttpError(ctx, *response);
    return FinishSignIn(ctx, *response, args->token_file);
  });
}

void AddLogout(CLI::App* app, Context* ctx) {
  CLI::App* cmd = app->add_subcommand("logout", "End the session in KURA_TOKEN (the token stops working at once)");
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx]() -> int {
    return CallAndPrint(ctx, {"POST", "/v1/auth/logout", std::nullopt, {}},
                        [](const nlohmann::json&, std::ostream& out) {
                          out << "Signed out; the session token no longer works.\n";
                        });
  });
}

void AddWhoami(CLI::App* app, Context* ctx) {
  CLI::App* cmd = app->add_subcommand("whoami", "Show who the token in KURA_TOKEN belongs to");
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx]() -> int {
    return CallAndPrint(ctx, {"GET", "/v1/whoami", std::nullopt, {}}, [](const nlohmann::json& b, std::ostream& out) {
      PrintFields(out, b, {"kind", "id", "username", "tenant", "role"});
      if (b.contains("roles") && b["roles"].is_array()) {
        std::string roles;
        for (const auto& r : b["roles"]) roles += (roles.empty() ? "" : ",") + ScalarText(r);
        out << "roles: " << (roles.empty() ? "-" : roles) << "\n";
      }
      PrintFields(out, b, {"auth_method", "authenticated_at", "restriction"});
    });
  });
}

void AddPasswd(CLI::App* app, Context* ctx) {
  CLI::App* cmd = app->add_subcommand(
      "passwd", "Change your own password (asks for the current one and the new one twice, without echo)");
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx]() -> int {
    auto current = ReadPassword("Current password: ", *ctx->in, *ctx->err);
    if (!current.ok()) return UsageError(ctx, current.status());
    auto next = ReadNewPassword("New password: ", *ctx->in, *ctx->err);
    if (!next.ok()) {
      WipeSecret(&*current);
      return UsageError(ctx, next.status());
    }
    nlohmann::json body = {{"current_password", *current}, {"new_password", *next}};
    WipeSecret(&*current);
    WipeSecret(&*next);
    int code = CallAndPrint(ctx, {"POST", "/v1/auth/password", body, {}},
                            [](const nlohmann::json&, std::ostream& out) { out << "Password changed.\n"; });
    for (const char* key : {"current_password", "new_password"}) WipeSecret(&body[key].get_ref<std::string&>());
    return code;
  });
}

void AddStepUp(CLI::App* app, Context* ctx) {
  auto with_password = std::make_shared<bool>(false);
  CLI::App* cmd = app->add_subcommand(
      "step-up",
      "Authenticate the session again before a sensitive action (asks for a TOTP code, or the password with "
      "--password)");
  cmd->add_flag("--password", *with_password, "Use the password (accounts without TOTP)");
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx, with_password]() -> int {
    nlohmann::json body;
    if (*with_password) {
      auto password = ReadPassword("Password: ", *ctx->in, *ctx->err);
      if (!password.ok()) return UsageError(ctx, password.status());
      body = {{"password", *password}};
      WipeSecret(&*password);
    } else {
      auto totp = ReadLine("TOTP code: ", *ctx->in, *ctx->err);
      if (!totp.ok()) return UsageError(ctx, totp.status());
      body = {{"totp", *totp}};
    }
    int code = kExitOk;
    auto response = Send(ctx, {"POST", "/v1/auth/step-up", body, {}}, &code);
    if (body.contains("password")) WipeSecret(&body["password"].get_ref<std::string&>());
    if (!response) return code;
    if (ExitCodeForHttpStatus(response->status) != kExitOk) {
      code = ReportHttpError(ctx, *response);
      if (response->status == 400 && !*with_password && ErrorMessage(*response).starts_with("password")) {
        *ctx->err << "kura: this account has no TOTP: run `kura step-up --password`\n";
      }
      return code;
    }
    if (ctx->format() == Format::kJson) {
      PrintRawBody(*ctx->out, response->body);
      return kExitOk;
    }
    auto b = nlohmann::json::parse(response->body, nullptr, false);
    *ctx->out << "Authenticated again";
    if (b.is_object() && b.contains("fresh_until")) {
      *ctx->out << "; sensitive actions are allowed until " << ScalarText(b["fresh_until"]);
    }
    *ctx->out << ".\n";
    return kExitOk;
  });
}

void AddTotp(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("totp", "Enrol an authenticator app (TOTP) for your own account");
  group->require_subcommand(1);
  {
    struct Args {
      std::string qr;
      bool no_confirm = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "enroll",
        "Start TOTP enrolment: prints the secret and otpauth URI, then asks for the first code and prints the "
        "recovery codes once");
    cmd->add_option("--qr", args->qr, "Write the QR code (SVG) for the authenticator app to FILE (mode 0600)");
    cmd->add_flag("--no-confirm", args->no_confirm,
                  "Only start the enrolment; finish it later with `kura totp confirm CODE`");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args]() -> int {
      int code = kExitOk;
      auto response = Call(ctx, {"POST", "/v1/auth/totp/enroll", std::nullopt, {}}, &code);
      if (!response) return code;
      auto b = nlohmann::json::parse(response->body, nullptr, false);
      if (!b.is_object() || !b.contains("uri") || !b.contains("secret")) {
        *ctx->err << "kura: unexpected answer from the server\n";
        return static_cast<int>(kExitError);
      }
      if (!args->qr.empty()) {
        Status written = b.contains("qr_svg") && b["qr_svg"].is_string()
                             ? WritePrivateFile(args->qr, b["qr_svg"].get<std::string>())
                             : InvalidArgumentError("the server sent no QR code");
        // The enrolment has started either way; the URI and secret below work too.
        if (!written.ok()) *ctx->err << "kura: " << written.message() << "\n";
      }
      if (ctx->format() == Format::kJson) {
        PrintRawBody(*ctx->out, response->body);
      } else {
        *ctx->out << "Add this account to your authenticator app";
        if (!args->qr.empty()) *ctx->out << " (scan the QR code in " << args->qr << ")";
        *ctx->out << ":\n  secret: " << ScalarText(b["secret"]) << "\n  uri: " << ScalarText(b["uri"]) << "\n";
      }
      if (args->no_confirm) {
        if (ctx->format() != Format::kJson) *ctx->out << "Then finish with: kura totp confirm CODE\n";
        return static_cast<int>(kExitOk);
      }
      auto first = ReadLine("Code shown by the app: ", *ctx->in, *ctx->err);
      if (!first.ok()) {
        *ctx->err << "kura: no code entered; finish later with: kura totp confirm CODE\n";
        return static_cast<int>(kExitUsage);
      }
      return CallAndPrint(ctx, {"POST", "/v1/auth/totp/confirm", nlohmann::json{{"code", *first}}, {}},
                          PrintRecoveryCodes);
    });
  }
  {
    auto code = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand(
        "confirm", "Finish TOTP enrolment with the app's current code; prints the recovery codes once");
    cmd->add_option("CODE", *code, "The 6-digit code the app shows now")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, code]() -> int {
      return CallAndPrint(ctx, {"POST", "/v1/auth/totp/confirm", nlohmann::json{{"code", *code}}, {}},
                          PrintRecoveryCodes);
    });
  }
}

}  // namespace

void AddAuthCommands(CLI::App* app, Context* ctx) {
  AddLogin(app, ctx);
  AddLogout(app, ctx);
  AddWhoami(app, ctx);
  AddPasswd(app, ctx);
  AddStepUp(app, ctx);
  AddTotp(app, ctx);
}

}  // namespace kura::cli
