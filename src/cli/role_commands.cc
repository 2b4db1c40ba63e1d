// kura role put|get|list|delete.
#include <memory>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {

std::string RolePath(const std::string& tenant, const std::string& name) {
  return TenantPath(tenant) + "/roles/" + EscapeComponent(name);
}

void PrintRole(const nlohmann::json& r, std::ostream& out) {
  PrintFields(out, r, {"name", "updated_at"});
  if (r.is_object() && r.contains("permissions") && r["permissions"].is_array()) {
    out << "permissions:\n";
    for (const auto& p : r["permissions"]) {
      std::string collections;
      if (p.contains("collections") && p["collections"].is_array()) {
        for (const auto& c : p["collections"]) collections += (collections.empty() ? "" : ",") + ScalarText(c);
      }
      out << "  " << ScalarText(p.value("action", nlohmann::json())) << " on "
          << (collections.empty() ? "-" : collections);
      if (p.contains("view")) out << " (" << ScalarText(p["view"]) << " view)";
      out << "\n";
    }
  }
}

}  // namespace

void AddRoleCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("role", "Define, show, list and delete a tenant's roles");
  group->require_subcommand(1);
  struct Args {
    std::string tenant, name, file;
  };

  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("put", "Create or replace a role");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("NAME", args->name, "Role name")->required();
    cmd->add_option("--file", args->file, "Role JSON ({\"permissions\":[…]}), or - for standard input")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      auto role = ReadJsonFile(args->file, *ctx->in);
      if (!role.ok()) return UsageError(ctx, role.status());
      return CallAndPrint(ctx, {"PUT", RolePath(args->tenant, args->name), *role, {}}, PrintRole);
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("get", "Show a role");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("NAME", args->name, "Role name")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"GET", RolePath(args->tenant, args->name), std::nullopt, {}}, PrintRole);
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("list", "List a tenant's roles");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"GET", TenantPath(args->tenant) + "/roles", std::nullopt, {}},
                          [](const nlohmann::json& b, std::ostream& out) {
                            // One row per role with its actions, e.g. "record.read,record.write".
                            nlohmann::json rows = nlohmann::json::array();
                            for (const auto& role : ItemsOf(b)) {
                              std::string actions;
                              if (role.is_object() && role.contains("permissions") && role["permissions"].is_array()) {
                                for (const auto& p : role["permissions"]) {
                                  std::string action = p.is_object() && p.contains("action") ? ScalarText(p["action"]) : "?";
                                  if (("," + actions + ",").find("," + action + ",") == std::string::npos) {
                                    actions += (actions.empty() ? "" : ",") + action;
                                  }
                                }
                              }
                              rows.push_back({{"name", role.is_object() ? role.value("name", nlohmann::json()) : nlohmann::json()},
                                              {"actions", actions.empty() ? "-" : actions}});
                            }
                            PrintTable(out, rows, {{"name", "name"}, {"actions", "actions"}});
                          });
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("delete", "Delete a role");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("NAME", args->name, "Role name")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"DELETE", RolePath(args->tenant, args->name), std::nullopt, {}},
                          [args](const nlohmann::json&, std::ostream& out) {
                            out << "Deleted role " << args->name << ".\n";
                          });
    });
  }
}

}  // namespace kura::cli
