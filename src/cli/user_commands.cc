// kura user create|get|list|update|delete|revoke-sessions, kura auth-policy
// get|set, kura operator revoke-root: managing people who sign in (SPEC §3).
//
// With --tenant T the commands manage tenant T's users (/v1/t/T/users, a
// tenant admin); without it, or with --staff, kura's own staff
// (/v1/sys/staff, an operator or the root token).
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {


// Which population a command manages.
struct Scope {
  std::string tenant;  // empty: staff
  bool staff = false;

  std::string UsersPath() const { return tenant.empty() ? "/v1/sys/staff" : TenantPath(tenant) + "/users"; }
  std::string UserPath(const std::string& username) const { return UsersPath() + "/" + EscapeComponent(username); }
  std::string PolicyPath() const { return tenant.empty() ? "/v1/sys/auth-policy" : TenantPath(tenant) + "/auth-policy"; }
};

// --tenant T | --staff (the default); returns --tenant so callers can make
// staff-only flags exclude it.
CLI::Option* AddScopeFlags(CLI::App* cmd, Scope* scope, const char* what) {
  auto* tenant = cmd->add_option("--tenant", scope->tenant, std::string("Tenant whose ") + what +
                                                                " to manage (a tenant admin); without it: staff");
  cmd->add_flag("--staff", scope->staff, std::string("Manage kura's staff ") + what + " (the default; an operator)")
      ->excludes(tenant);
  return tenant;
}

std::string JoinStrings(const nlohmann::json& array) {
  std::string out;
  if (!array.is_array()) return ScalarText(array);
  for (const auto& item : array) out += (out.empty() ? "" : ",") + ScalarText(item);
  return out.empty() ? "-" : out;
}

void PrintUser(const nlohmann::json& u, std::ostream& out) {
  PrintFields(out, u, {"username", "tenant"});
  if (u.contains("roles")) out << "roles: " << JoinStrings(u["roles"]) << "\n";
  PrintFields(out, u, {"kerberos", "password_set", "password_changed_at", "password_expires_at", "totp",
                       "locked_until", "disabled", "created_at", "updated_at"});
}

// Sends a request whose body holds a password, then wipes the body's copy.
int CallWithSecret(Context* ctx, const std::string& method, const std::string& path, nlohmann::json body,
                   const TextPrinter& text) {
  int code = CallAndPrint(ctx, {method, path, body, {}}, text);
  if (body.contains("password") && body["password"].is_string()) WipeSecret(&body["password"].get_ref<std::string&>());
  return code;
}

void AddUserCreate(CLI::App* group, Context* ctx) {
  struct Args {
    Scope scope;
    std::string username, kerberos;
    std::vector<std::string> roles;
    bool password_stdin = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = group->add_subcommand(
      "create", "Create a user (asks for the password twice without echo, or reads it with --password-stdin)");
  cmd->add_option("USERNAME", args->username, "User name (1-64 of a-z, 0-9, '_', '-')")->required();
  CLI::Option* tenant = AddScopeFlags(cmd, &args->scope, "users");
  cmd->add_option("--role", args->roles, "Role (repeat, or comma-separated); staff: operator, …")
      ->required()
      ->delimiter(',');
  cmd->add_flag("--password-stdin", args->password_stdin, "Read the password as one line of standard input");
  cmd->add_option("--kerberos", args->kerberos,
                  "Staff: Kerberos principal (name@REALM) that signs in as this user; no password is asked then")
      ->excludes(tenant);
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx, args]() -> int {
    nlohmann::json body = {{"username", args->username}, {"roles", args->roles}};
    if (!args->kerberos.empty()) body["kerberos"] = args->kerberos;
    // A Kerberos-only staff member has no password unless one is piped in.
    if (args->kerberos.empty() || args->password_stdin) {
      auto password = args->password_stdin
                          ? ReadPassword("", *ctx->in, *ctx->err)
                          : ReadNewPassword("Password for " + args->username + ": ", *ctx->in, *ctx->err);
      if (!password.ok()) return UsageError(ctx, password.status());
      body["password"] = *password;
      WipeSecret(&*password);
    }
    return CallWithSecret(ctx, "POST", args->scope.UsersPath(), std::move(body), PrintUser);
  });
}

void AddUserUpdate(CLI::App* group, Context* ctx) {
  struct Args {
    Scope scope;
    std::string username, kerberos;
    std::vector<std::string> roles;
    bool disable = false, enable = false, unlock = false, reset_totp = false;
    bool password = false, password_stdin = false, no_kerberos = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = group->add_subcommand("update", "Change a user's roles, password, state or second factor");
  cmd->add_option("USERNAME", args->username, "User name")->required();
  CLI::Option* tenant = AddScopeFlags(cmd, &args->scope, "users");
  cmd->add_option("--role", args->roles, "New roles, replacing the old ones (repeat, or comma-separated)")
      ->delimiter(',');
  auto* disable = cmd->add_flag("--disable", args->disable, "Disable the account: no sign-in, sessions refused");
  cmd->add_flag("--enable", args->enable, "Enable the account again")->excludes(disable);
  cmd->add_flag("--unlock", args->unlock, "Clear a lockout after failed sign-ins");
  cmd->add_flag("--reset-totp", args->reset_totp,
                "Remove the user's TOTP and recovery codes (lost authenticator); they enrol again");
  auto* password = cmd->add_flag("--password", args->password,
                                 "Set a new password (asked twice without echo); the user must change it at the "
                                 "next sign-in");
  cmd->add_flag("--password-stdin", args->password_stdin, "Like --password, read as one line of standard input")
      ->excludes(password);
  auto* kerberos = cmd->add_option("--kerberos", args->kerberos, "Staff: map this Kerberos principal (name@REALM)")
                       ->excludes(tenant);
  cmd->add_flag("--no-kerberos", args->no_kerberos, "Staff: remove the Kerberos principal")
      ->excludes(kerberos)
      ->excludes(tenant);
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx, args]() -> int {
    nlohmann::json body = nlohmann::json::object();
    if (!args->roles.empty()) body["roles"] = args->roles;
    if (args->disable) body["disabled"] = true;
    if (args->enable) body["disabled"] = false;
    if (args->unlock) body["unlock"] = true;
    if (args->reset_totp) body["reset_totp"] = true;
    if (!args->kerberos.empty()) body["kerberos"] = args->kerberos;
    if (args->no_kerberos) body["kerberos"] = nullptr;
    const bool set_password = args->password || args->password_stdin;
    if (body.empty() && !set_password) {
      return UsageError(ctx, InvalidArgumentError("nothing to change: give --role, --disable, --enable, --unlock, "
                                                  "--reset-totp, --password or --kerberos"));
    }
    if (set_password) {
      auto password = args->password_stdin
                          ? ReadPassword("", *ctx->in, *ctx->err)
                          : ReadNewPassword("Password for " + args->username + ": ", *ctx->in, *ctx->err);
      if (!password.ok()) return UsageError(ctx, password.status());
      body["password"] = *password;
      WipeSecret(&*password);
    }
    return CallWithSecret(ctx, "PUT", args->scope.UserPath(args->username), std::move(body),
                          [set_password](const nlohmann::json& b, std::ostream& out) {
                            PrintUser(b, out);
                            if (set_password) {
                              out << "\nThe user must choose a new password at the next sign-in.\n";
                            }
                          });
  });
}

}  // namespace

void AddUserCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand(
      "user", "Create, show, list, change and delete users who sign in (--tenant T: a tenant's; else staff)");
  group->require_subcommand(1);
  struct Args {
    Scope scope;
    std::string username;
  };

  AddUserCreate(group, ctx);
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("get", "Show a user (never a password or TOTP secret)");
    cmd->add_option("USERNAME", args->username, "User name")->required();
    AddScopeFlags(cmd, &args->scope, "users");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"GET", args->scope.UserPath(args->username), std::nullopt, {}}, PrintUser);
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("list", "List users (all pages)");
    AddScopeFlags(cmd, &args->scope, "users");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args]() -> int {
      int code = kExitOk;
      auto items = ListAllPages(ctx, args->scope.UsersPath(), &code);
      if (!items) return code;
      if (ctx->format() == Format::kJson) {
        *ctx->out << nlohmann::json{{"items", *items}, {"next", nullptr}}.dump() << "\n";
        return static_cast<int>(kExitOk);
      }
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& u : *items) {
        if (!u.is_object()) continue;
        nlohmann::json row = u;
        row["roles"] = JoinStrings(u.value("roles", nlohmann::json::array()));
        row["state"] = u.value("disabled", false) ? "disabled" : !u.value("locked_until", nlohmann::json()).is_null() ? "locked" : "active";
        rows.push_back(std::move(row));
      }
      PrintTable(*ctx->out, rows,
                 {{"username", "username"}, {"roles", "roles"}, {"totp", "totp"}, {"state", "state"},
                  {"created", "created_at"}});
      return static_cast<int>(kExitOk);
    });
  }
  AddUserUpdate(group, ctx);
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("delete", "Delete a user and end their sessions");
    cmd->add_option("USERNAME", args->username, "User name")->required();
    AddScopeFlags(cmd, &args->scope, "users");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"DELETE", args->scope.UserPath(args->username), std::nullopt, {}},
                          [args](const nlohmann::json&, std::ostream& out) {
                            out << "Deleted user " << args->username << ".\n";
                          });
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("revoke-sessions", "End every session of a user at once");
    cmd->add_option("USERNAME", args->username, "User name")->required();
    AddScopeFlags(cmd, &args->scope, "users");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"DELETE", args->scope.UserPath(args->username) + "/sessions", std::nullopt, {}},
                          [args](const nlohmann::json& b, std::ostream& out) {
                            out << "Revoked " << ScalarText(b.is_object() ? b.value("revoked", nlohmann::json(0))
                                                                          : nlohmann::json(0))
                                << " session(s) of " << args->username << ".\n";
                          });
    });
  }
}

void AddAuthPolicyCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand(
      "auth-policy", "Show or change the sign-in policy (password rules, lockout, TOTP) of a tenant or of staff");
  group->require_subcommand(1);
  auto print_policy = [](const nlohmann::json& p, std::ostream& out) {
    PrintFields(out, p, {"min_length", "max_age_days", "history", "lockout_threshold", "lockout_window_seconds",
                         "lockout_duration_seconds", "require_totp", "step_up_requires_totp"});
  };
  {
    auto scope = std::make_shared<Scope>();
    CLI::App* cmd = group->add_subcommand("get", "Show the sign-in policy");
    AddScopeFlags(cmd, scope.get(), "policy");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, scope, print_policy] {
      return CallAndPrint(ctx, {"GET", scope->PolicyPath(), std::nullopt, {}}, print_policy);
    });
  }
  {
    struct Args {
      Scope scope;
      std::string require_totp, step_up_requires_totp;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("set", "Change some of the sign-in policy; what is not given stays");
    AddScopeFlags(cmd, &args->scope, "policy");
    struct NumberFlag {
      const char* flag;
      const char* key;
      const char* help;
    };
    static const NumberFlag kNumbers[] = {
        {"--min-length", "min_length", "Shortest password allowed (8-128)"},
        {"--max-age-days", "max_age_days", "Days until a password must be changed (0: never)"},
        {"--history", "history", "How many earlier passwords may not be reused (0-24)"},
        {"--lockout-threshold", "lockout_threshold", "Failed sign-ins that lock the account (1-100)"},
        {"--lockout-window-seconds", "lockout_window_seconds", "Window the failures are counted in (60-86400)"},
        {"--lockout-duration-seconds", "lockout_duration_seconds", "How long a lockout lasts (60-86400)"},
    };
    // CLI11 needs a stable variable per option; the map is filled only with
    // the flags given (see the action).
    auto values = std::make_shared<std::map<std::string, long long>>();
    std::vector<std::pair<CLI::Option*, std::string>> given;
    for (const auto& n : kNumbers) {
      CLI::Option* opt = cmd->add_option(n.flag, (*values)[n.key], n.help);
      given.emplace_back(opt, n.key);
    }
    cmd->add_option("--require-totp", args->require_totp, "Every password sign-in needs TOTP (staff: always true)")
        ->check(CLI::IsMember({"true", "false"}));
    cmd->add_option("--step-up-requires-totp", args->step_up_requires_totp,
                    "Step-up for sensitive actions needs TOTP, not the password")
        ->check(CLI::IsMember({"true", "false"}));
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args, values, given, print_policy]() -> int {
      nlohmann::json body = nlohmann::json::object();
      for (const auto& [opt, key] : given) {
        if (opt->count() > 0) body[key] = (*values)[key];
      }
      if (!args->require_totp.empty()) body["require_totp"] = args->require_totp == "true";
      if (!args->step_up_requires_totp.empty()) body["step_up_requires_totp"] = args->step_up_requires_totp == "true";
      if (body.empty()) return UsageError(ctx, InvalidArgumentError("nothing to change; see --help for the settings"));
      return CallAndPrint(ctx, {"PUT", args->scope.PolicyPath(), body, {}}, print_policy);
    });
  }
}

void AddRevokeRootCommand(CLI::App* operator_group, Context* ctx) {
  CLI::App* cmd = operator_group->add_subcommand(
      "revoke-root",
      "Revoke the root token for good, once operators sign in with `kura login` (root token, or an operator "
      "after `kura step-up`)");
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx]() -> int {
    return CallAndPrint(ctx, {"DELETE", "/v1/sys/root-token", std::nullopt, {}},
                        [](const nlohmann::json&, std::ostream& out) {
                          out << "Root token revoked: it no longer works. Staff sign in with `kura login`.\n";
                        });
  });
}

}  // namespace kura::cli
