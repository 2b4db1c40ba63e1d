// kura tenant create|get|list|delete (operator: root token).
#include <algorithm>
#include <memory>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {

void PrintTenant(const nlohmann::json& t, std::ostream& out) {
  // "admin": the first admin's user name, when one was created.
  PrintFields(out, t, {"id", "name", "region", "created_at", "admin"});
}


}  // namespace

void AddTenantCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("tenant", "Create, show, list and delete tenants (root token)");
  group->require_subcommand(1);

  {
    struct Args {
      std::string id, name, region, admin_username;
      bool admin_password_stdin = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("create", "Create a tenant with its own data keys (and its first admin)");
    cmd->add_option("ID", args->id, "Tenant id (URL-safe)")->required();
    cmd->add_option("--name", args->name, "Display name")->required();
    cmd->add_option("--region", args->region, "Region (jp | us | eu | in); default: the server's region");
    auto* admin = cmd->add_option("--admin-username", args->admin_username,
                                  "Create the tenant's first admin with this user name (asks for the password twice "
                                  "without echo); staff cannot add one later without a lockbox grant");
    cmd->add_flag("--admin-password-stdin", args->admin_password_stdin,
                  "Read the admin's password as one line of standard input")
        ->needs(admin);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args]() -> int {
      nlohmann::json body = {{"id", args->id}, {"name", args->name}};
      if (!args->region.empty()) body["region"] = args->region;
      if (!args->admin_username.empty()) {
        auto password = args->admin_password_stdin
                            ? ReadPassword("", *ctx->in, *ctx->err)
                            : ReadNewPassword("Password for " + args->admin_username + ": ", *ctx->in, *ctx->err);
        if (!password.ok()) return UsageError(ctx, password.status());
        body["admin"] = {{"username", args->admin_username}, {"password", *password}};
        WipeSecret(&*password);
      }
      int code = CallAndPrint(ctx, {"POST", "/v1/tenants", body, {}}, PrintTenant);
      if (body.contains("admin")) WipeSecret(&body["admin"]["password"].get_ref<std::string&>());
      return code;
    });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("get", "Show one tenant");
    cmd->add_option("ID", *id, "Tenant id")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, id] {
      return CallAndPrint(ctx, {"GET", "/v1/tenants/" + EscapeComponent(*id), std::nullopt, {}}, PrintTenant);
    });
  }
  {
    CLI::App* cmd = group->add_subcommand("list", "List every tenant (all pages)");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx] {
      // Follows `next` so the list is complete; --format json prints the
      // merged items in the server's list shape.
      int code = kExitOk;
      auto all = ListAllPages(ctx, "/v1/tenants", &code);
      if (!all) return code;
      nlohmann::json items = std::move(*all);
      if (ctx->format() == Format::kJson) {
        *ctx->out << nlohmann::json{{"items", items}, {"next", nullptr}}.dump() << "\n";
      } else {
        PrintTable(*ctx->out, items, {{"id", "id"}, {"name", "name"}, {"region", "region"}, {"created", "created_at"}});
      }
      return static_cast<int>(kExitOk);
    });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("delete", "Delete a tenant: destroys its keys, so its data is unrecoverable");
    cmd->add_option("ID", *id, "Tenant id")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, id] {
      return CallAndPrint(ctx, {"DELETE", "/v1/tenants/" + EscapeComponent(*id), std::nullopt, {}},
                          [id](const nlohmann::json&, std::ostream& out) { out << "Deleted tenant " << *id << ".\n"; });
    });
  }
}

}  // namespace kura::cli
