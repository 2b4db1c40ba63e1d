// kura collection put|get|list.
#include <memory>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {

std::string CollectionPath(const std::string& tenant, const std::string& name) {
  return TenantPath(tenant) + "/collections/" + EscapeComponent(name);
}

void PrintCollection(const nlohmann::json& c, std::ostream& out) {
  PrintFields(out, c, {"name", "created_at", "updated_at"});
  // The schema is the interesting part: show it readable.
  nlohmann::json schema = c.is_object() && c.contains("schema") ? c["schema"] : c;
  if (schema.is_object() && schema.contains("fields")) {
    out << "schema:\n" << schema.dump(2) << "\n";
  } else if (!c.contains("name")) {
    PrintAllFields(out, c);
  }
}

}  // namespace

void AddCollectionCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("collection", "Define and show collections (record schemas)");
  group->require_subcommand(1);
  struct Args {
    std::string tenant, name, schema;
  };

  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("put", "Create or replace a collection's schema");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("NAME", args->name, "Collection name")->required();
    cmd->add_option("--schema", args->schema, "Schema JSON file, or - for standard input")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      auto schema = ReadJsonFile(args->schema, *ctx->in);
      if (!schema.ok()) return UsageError(ctx, schema.status());
      return CallAndPrint(ctx, {"PUT", CollectionPath(args->tenant, args->name), *schema, {}}, PrintCollection);
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("get", "Show a collection's schema");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    cmd->add_option("NAME", args->name, "Collection name")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"GET", CollectionPath(args->tenant, args->name), std::nullopt, {}}, PrintCollection);
    });
  }
  {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("list", "List a tenant's collections");
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"GET", TenantPath(args->tenant) + "/collections", std::nullopt, {}},
                          [](const nlohmann::json& b, std::ostream& out) {
                            PrintTable(out, ItemsOf(b),
                                       {{"name", "name"}, {"created", "created_at"}, {"updated", "updated_at"}});
                          });
    });
  }
}

}  // namespace kura::cli
