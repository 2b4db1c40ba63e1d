// The `kura` command line: CLI11 app construction, the shared client flags
// and the run loop that turns parse results and server answers into exit codes.
//
// Each command group lives in its own file (tenant_commands.cc, …) and adds its
// subcommands to the app. A leaf command's callback only stores the action to
// run in Context::action; Run() calls it after parsing succeeded, so CLI11's
// exceptions never cross a command's work.
//
// Thread safety: single-threaded, like a process's main().
#ifndef KURA_CLI_APP_H_
#define KURA_CLI_APP_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/output.h"

namespace kura::cli {

// Defaults for a client: the address `kura serve --dev` listens on.
inline constexpr char kDefaultAddr[] = "https://127.0.0.1:8443";

struct ClientFlags {
  std::string addr = kDefaultAddr;
  std::string token;
  std::string cacert;
  std::string format = "text";
  bool negotiate = false;  // Kerberos (SPNEGO) instead of the token; set by `login --kerberos`
};

using Connector = std::function<Result<std::unique_ptr<Transport>>(const ClientOptions&)>;

struct Context {
  Connector connect = MakeCurlTransport;
  std::istream* in = &std::cin;
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  ClientFlags flags;             // the chosen leaf command's flags, copied in before its action runs
  std::function<int()> action;  // set by the chosen leaf command
  // Each leaf command binds its own ClientFlags: CLI11 reads environment
  // variables for every subcommand, parsed or not, so one shared variable
  // would let an unparsed command's KURA_TOKEN overwrite a parsed --token.
  std::map<const CLI::App*, std::shared_ptr<ClientFlags>> command_flags;

  Format format() const { return ParseFormat(flags.format); }
};

// Adds --addr/--token/--cacert (with KURA_ADDR/KURA_TOKEN/KURA_CACERT) and
// --format to a leaf command that talks to the server. `with_token` false
// leaves out --token/KURA_TOKEN, for commands that must not send one (sign-in).
void AddClientFlags(CLI::App* command, Context* ctx, bool with_token = true);

// Makes `command` store `run` as the action once it was parsed.
void SetAction(CLI::App* command, Context* ctx, std::function<int()> run);

// Builds the client command tree (everything but `serve` and `operator tls`,
// which need the server libraries). Returns the `operator` group so main can
// add `tls` to it.
CLI::App* AddClientCommands(CLI::App* app, Context* ctx);

// Per group (each in its own .cc file).
void AddStatusCommand(CLI::App* app, Context* ctx);
CLI::App* AddOperatorCommands(CLI::App* app, Context* ctx);
void AddTenantCommands(CLI::App* app, Context* ctx);
void AddCollectionCommands(CLI::App* app, Context* ctx);
void AddRoleCommands(CLI::App* app, Context* ctx);
void AddApiKeyCommands(CLI::App* app, Context* ctx);
void AddRecordCommands(CLI::App* app, Context* ctx);
// auth_commands.cc: login, logout, whoami, passwd, step-up, totp.
void AddAuthCommands(CLI::App* app, Context* ctx);
// user_commands.cc: user …, auth-policy …, and `operator revoke-root`.
void AddUserCommands(CLI::App* app, Context* ctx);
void AddAuthPolicyCommands(CLI::App* app, Context* ctx);
void AddRevokeRootCommand(CLI::App* operator_group, Context* ctx);
// access_commands.cc: access request|list|show|approve|deny|revoke, lockbox get|set.
void AddAccessCommands(CLI::App* app, Context* ctx);
void AddLockboxCommands(CLI::App* app, Context* ctx);

// Configures the root app (name, description, subcommand required, help on
// every subcommand).
void ConfigureRootApp(CLI::App* app);

// Parses `args` (without the program name) and runs the chosen action.
// Returns the process exit code: 0 for --help, kExitUsage for parse errors.
int Run(CLI::App* app, Context* ctx, std::vector<std::string> args);

// --- Helpers for command implementations ------------------------------

// Prints the server's body (json) or calls `text` with the parsed body (text).
using TextPrinter = std::function<void(const nlohmann::json& body, std::ostream& out)>;

// Sends one request with the context's flags and prints the outcome. Returns
// the exit code (kExitConnect on transport failure, the HTTP mapping otherwise).
int CallAndPrint(Context* ctx, const Request& request, const TextPrinter& text);

// Sends one request with the context's flags; any HTTP answer is returned.
// On a local or transport failure it reports on stderr, sets `*exit_code`
// (kExitUsage for a bad address, kExitConnect otherwise) and returns nullopt.
std::optional<Response> Send(Context* ctx, const Request& request, int* exit_code);

// Reports a non-2xx response (stderr; the body on stdout with --format json)
// and returns its exit code. Answers that ask for a sign-in step (step-up,
// password change, TOTP enrolment) get a hint naming the command that does it.
int ReportHttpError(Context* ctx, const Response& response);

// Like CallAndPrint, but hands back the response for callers that print
// something special (pagination, status). `*exit_code` is set on failure, and
// the failure already reported on stderr.
std::optional<Response> Call(Context* ctx, const Request& request, int* exit_code);

// Every item of a paged list answer, following `next` (`base` may carry a
// query already); nullopt (with *exit_code set and the error reported) on
// failure.
std::optional<nlohmann::json> ListAllPages(Context* ctx, const std::string& base, int* exit_code);

// Reports a local error (bad input, unreadable file) and returns kExitUsage.
int UsageError(Context* ctx, const Status& status);

// "/v1/t/{tenant}" with the tenant escaped.
std::string TenantPath(const std::string& tenant);

}  // namespace kura::cli

#endif  // KURA_CLI_APP_H_
