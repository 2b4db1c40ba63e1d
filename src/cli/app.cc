#include "cli/app.h"

#include <algorithm>

namespace kura::cli {
namespace {

// The server names the HTTP route; people need the command.
std::string SignInHint(const Response& response) {
  if (response.status != 403) return "";
  auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return "";
  std::string message = StringField(body["error"], "message");
  if (message.find("/v1/auth/step-up") != std::string::npos) {
    return "run `kura step-up` (or `kura step-up --password`), then repeat the command";
  }
  if (message.find("password_change") != std::string::npos || message.find("expired password") != std::string::npos) {
    return "this session must change its password first (expired, or set by an administrator): run `kura passwd`";
  }
  if (message.find("totp_enrollment") != std::string::npos) {
    return "enrol TOTP first: run `kura totp enroll`";
  }
  return "";
}

}  // namespace

void AddClientFlags(CLI::App* command, Context* ctx, bool with_token) {
  auto owned = std::make_shared<ClientFlags>();
  ctx->command_flags[command] = owned;
  ClientFlags* flags = owned.get();
  command->add_option("--addr", flags->addr, "Server address")
      ->envname("KURA_ADDR")
      ->capture_default_str()
      ->group("Connection");
  // The environment is the better place for the token: arguments are visible
  // to every user of the machine in the process list.
  if (with_token) {
    command->add_option("--token", flags->token, "Bearer token (root token, API key or session); prefer KURA_TOKEN")
        ->envname("KURA_TOKEN")
        ->group("Connection");
  }
  command->add_option("--cacert", flags->cacert, "PEM file of the CA that signed the server's certificate")
      ->envname("KURA_CACERT")
      ->group("Connection");
  command->add_option("--format", flags->format, "Output: text for people, json (the server's body) for scripts")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

void SetAction(CLI::App* command, Context* ctx, std::function<int()> run) {
  command->callback([ctx, command, run = std::move(run)] {
    auto it = ctx->command_flags.find(command);
    if (it != ctx->command_flags.end()) ctx->flags = *it->second;
    ctx->action = run;
  });
}

void ConfigureRootApp(CLI::App* app) {
  app->description("kura: a self-hosted vault for personal data");
  app->require_subcommand(1);
  app->footer(
      "Client commands read KURA_ADDR, KURA_TOKEN and KURA_CACERT.\n"
      "Exit codes: 0 ok, 1 error, 2 usage, 3 unauthenticated, 4 permission denied, 5 not found,\n"
      "6 conflict, 7 sealed/unavailable, 8 invalid input, 9 cannot connect/TLS failure,\n"
      "10 audit log tampered (kura audit verify|proof).");
}

CLI::App* AddClientCommands(CLI::App* app, Context* ctx) {
  AddStatusCommand(app, ctx);
  CLI::App* op = AddOperatorCommands(app, ctx);
  AddTenantCommands(app, ctx);
  AddCollectionCommands(app, ctx);
  AddRoleCommands(app, ctx);
  AddApiKeyCommands(app, ctx);
  AddRecordCommands(app, ctx);
  AddAuthCommands(app, ctx);
  AddUserCommands(app, ctx);
  AddAuthPolicyCommands(app, ctx);
  AddRevokeRootCommand(op, ctx);
  AddAccessCommands(app, ctx);
  AddLockboxCommands(app, ctx);
  return op;
}

int Run(CLI::App* app, Context* ctx, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 consumes the vector from the back
  try {
    app->parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = app->exit(e, *ctx->out, *ctx->err);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!ctx->action) {
    *ctx->err << "kura: no command given; run with --help\n";
    return kExitUsage;
  }
  try {
    return ctx->action();
  } catch (const nlohmann::json::exception&) {
    // The last guard against a server's answer of a shape a command did not
    // expect (StringField and the text printers' fallback are the first): a
    // clear error, not an abort that prints the library's message — which
    // would quote the answer.
    *ctx->err << "kura: the server's answer is not of the expected shape\n";
    return kExitError;
  }
}

std::optional<Response> Send(Context* ctx, const Request& request, int* exit_code) {
  ClientOptions options{ctx->flags.addr, ctx->flags.token, ctx->flags.cacert, ctx->flags.negotiate};
  auto transport = ctx->connect(options);
  if (!transport.ok()) {
    *ctx->err << "kura: " << transport.status().message() << "\n";
    *exit_code = kExitUsage;
    return std::nullopt;
  }
  auto response = (*transport)->Send(request);
  if (!response.ok()) {
    *ctx->err << "kura: " << response.status().message() << "\n";
    *exit_code = kExitConnect;
    return std::nullopt;
  }
  return std::move(response).value();
}

int ReportHttpError(Context* ctx, const Response& response) {
  if (ctx->format() == Format::kJson) PrintRawBody(*ctx->out, response.body);
  *ctx->err << "kura: error: " << DescribeErrorResponse(response) << "\n";
  std::string hint = SignInHint(response);
  if (!hint.empty()) *ctx->err << "kura: " << hint << "\n";
  int code = ExitCodeForHttpStatus(response.status);
  return code == kExitOk ? kExitError : code;
}

std::optional<Response> Call(Context* ctx, const Request& request, int* exit_code) {
  auto response = Send(ctx, request, exit_code);
  if (!response) return std::nullopt;
  if (ExitCodeForHttpStatus(response->status) != kExitOk) {
    *exit_code = ReportHttpError(ctx, *response);
    return std::nullopt;
  }
  return response;
}

std::optional<nlohmann::json> ListAllPages(Context* ctx, const std::string& base, int* exit_code) {
  nlohmann::json items = nlohmann::json::array();
  std::string after;
  for (int pages = 0; pages < 100000; ++pages) {
    std::string path = base;
    if (!after.empty()) path += (base.find('?') == std::string::npos ? "?after=" : "&after=") + EscapeComponent(after);
    auto response = Call(ctx, {"GET", path, std::nullopt, {}}, exit_code);
    if (!response) return std::nullopt;
    auto body = nlohmann::json::parse(response->body, nullptr, false);
    if (!body.is_object() || !body.contains("items") || !body["items"].is_array()) {
      *ctx->err << "kura: unexpected answer from the server\n";
      *exit_code = kExitError;
      return std::nullopt;
    }
    for (auto& item : body["items"]) items.push_back(std::move(item));
    if (!body.contains("next") || !body["next"].is_string() || body["next"].get<std::string>().empty()) break;
    if (body["next"].get<std::string>() == after) {
      // The same page again, for ever (up to the bound above).
      *ctx->err << "kura: the server's listing does not advance (the same next cursor twice)\n";
      *exit_code = kExitError;
      return std::nullopt;
    }
    after = body["next"].get<std::string>();
  }
  return items;
}

int CallAndPrint(Context* ctx, const Request& request, const TextPrinter& text) {
  int code = kExitOk;
  auto response = Call(ctx, request, &code);
  if (!response) return code;
  if (ctx->format() == Format::kJson) {
    PrintRawBody(*ctx->out, response->body);
    return kExitOk;
  }
  if (response->body.empty()) {
    if (text) text(nlohmann::json(), *ctx->out);
    return kExitOk;
  }
  auto body = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    PrintRawBody(*ctx->out, response->body);
  } else if (text) {
    try {
      text(body, *ctx->out);
    } catch (const nlohmann::json::exception&) {
      // An answer of an unexpected shape: show it rather than fail.
      PrintRawBody(*ctx->out, response->body);
    }
  } else {
    PrintAllFields(*ctx->out, body);
  }
  return kExitOk;
}

int UsageError(Context* ctx, const Status& status) {
  *ctx->err << "kura: " << status.message() << "\n";
  return kExitUsage;
}

std::string TenantPath(const std::string& tenant) { return "/v1/t/" + EscapeComponent(tenant); }

}  // namespace kura::cli
