// kura apikey create|list|revoke.
#include <memory>

#include "cli/app.h"
#include "core/clock.h"

namespace kura::cli {

void AddApiKeyCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("apikey", "Create, list and revoke a tenant's API keys");
  group->require_subcommand(1);

  {
    struct Args {
      std::string tenant, name, role, expires_at;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("create", "Create an API key; the key is printed only this once");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("--name", args->name, "What the key is for, e.g. the application's name")->required();
    cmd->add_option("--role", args->role, "Role the key acts with")->required();
    cmd->add_option("--expires-at", args->expires_at, "Expiry time, RFC 3339 (e.g. 2027-01-31T00:00:00Z)")
        ->check(CLI::Validator(
            [](std::string& value) -> std::string {
              return ParseRfc3339(value) ? std::string() : "not an RFC 3339 time: " + value;
            },
            "RFC3339"));
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      nlohmann::json body = {{"name", args->name}, {"role", args->role}, {"expires_at", nullptr}};
      if (!args->expires_at.empty()) body["expires_at"] = args->expires_at;
      return CallAndPrint(ctx, {"POST", TenantPath(args->tenant) + "/apikeys", body, {}},
                          [](const nlohmann::json& b, std::ostream& out) {
                            PrintFields(out, b, {"id", "name", "role", "expires_at", "key"});
                            out << "\nThe key is shown only once: store it now (e.g. in your application's "
                                   "secret store).\n";
                          });
    });
  }
  {
    auto tenant = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("list", "List a tenant's API keys (never the keys themselves)");
    cmd->add_option("TENANT", *tenant, "Tenant id")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, tenant] {
      return CallAndPrint(ctx, {"GET", TenantPath(*tenant) + "/apikeys", std::nullopt, {}},
                          [](const nlohmann::json& b, std::ostream& out) {
                            PrintTable(out, ItemsOf(b),
                                       {{"id", "id"},
                                        {"name", "name"},
                                        {"role", "role"},
                                        {"created", "created_at"},
                                        {"expires", "expires_at"},
                                        {"revoked", "revoked_at"}});
                          });
    });
  }
  {
    struct Args {
      std::string tenant, id;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("revoke", "Revoke an API key at once");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("ID", args->id, "Key id (as listed)")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx,
                          {"DELETE", TenantPath(args->tenant) + "/apikeys/" + EscapeComponent(args->id),
                           std::nullopt, {}},
                          [args](const nlohmann::json&, std::ostream& out) {
                            out << "Revoked API key " << args->id << ".\n";
                          });
    });
  }
}

}  // namespace kura::cli
