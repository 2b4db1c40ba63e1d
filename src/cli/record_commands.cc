// kura record put|get|find|delete|versions.
#include <memory>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {

struct Args {
  std::string tenant, collection, id, data, subject, filter, after;
  std::int64_t if_match = 0;
  std::int64_t version = 0;
  int limit = 0;
};

std::string RecordsPath(const Args& a) {
  return TenantPath(a.tenant) + "/collections/" + EscapeComponent(a.collection) + "/records";
}

std::string RecordPath(const Args& a) { return RecordsPath(a) + "/" + EscapeComponent(a.id); }

void AddRecordArgs(CLI::App* cmd, Args* a, bool with_id) {
  cmd->add_option("TENANT", a->tenant, "Tenant id")->required();
  cmd->add_option("COLL", a->collection, "Collection name")->required();
  if (with_id) cmd->add_option("ID", a->id, "Record id")->required();
}

void PrintRecord(const nlohmann::json& r, std::ostream& out) {
  PrintFields(out, r, {"id", "version", "subject", "created_at", "updated_at"});
  if (r.is_object() && r.contains("data")) out << "data: " << r["data"].dump(2) << "\n";
}

void PrintWriteResult(const nlohmann::json& r, std::ostream& out) { PrintFields(out, r, {"id", "version"}); }

}  // namespace

void AddRecordCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("record", "Store, read, find and delete records");
  group->require_subcommand(1);

  {
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "put", "Create a record, or with --id write a new version of an existing one");
    AddRecordArgs(cmd, a.get(), false);
    cmd->add_option("--data", a->data, "Record data: inline JSON, @FILE, or - for standard input")->required();
    cmd->add_option("--subject", a->subject, "Data subject key (the person the record is about)");
    auto* id = cmd->add_option("--id", a->id, "Update this record instead of creating one");
    cmd->add_option("--if-match", a->if_match, "Only update if the current version is V (else exit 6)")
        ->check(CLI::PositiveNumber)
        ->needs(id);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, a] {
      auto data = ReadJsonArgument(a->data, *ctx->in);
      if (!data.ok()) return UsageError(ctx, data.status());
      nlohmann::json body = {{"data", std::move(data).value()}};
      if (!a->subject.empty()) body["subject"] = a->subject;
      if (a->id.empty()) return CallAndPrint(ctx, {"POST", RecordsPath(*a), body, {}}, PrintWriteResult);
      Request request{"PUT", RecordPath(*a), body, {}};
      if (a->if_match > 0) request.headers.emplace_back("If-Match", "\"" + std::to_string(a->if_match) + "\"");
      return CallAndPrint(ctx, request, PrintWriteResult);
    });
  }
  {
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("get", "Show a record (masked as your role's view says)");
    AddRecordArgs(cmd, a.get(), true);
    cmd->add_option("--version", a->version, "An older kept version")->check(CLI::PositiveNumber);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, a] {
      std::string path = RecordPath(*a);
      if (a->version > 0) path += "?version=" + std::to_string(a->version);
      return CallAndPrint(ctx, {"GET", path, std::nullopt, {}}, PrintRecord);
    });
  }
  {
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("find", "Find records by an indexed field (exact match), one page");
    AddRecordArgs(cmd, a.get(), false);
    cmd->add_option("FIELD=VALUE", a->filter, "Indexed field and value, e.g. email=a@b.example")
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              auto eq = v.find('=');
              return eq == std::string::npos || eq == 0 ? "expected FIELD=VALUE" : std::string();
            },
            "FIELD=VALUE"));
    cmd->add_option("--limit", a->limit, "Page size")->check(CLI::Range(1, 10000));
    cmd->add_option("--after", a->after, "Cursor from the previous page's next");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, a] {
      std::vector<std::string> query;
      if (!a->filter.empty()) {
        auto eq = a->filter.find('=');
        query.push_back(EscapeComponent(a->filter.substr(0, eq)) + "=" + EscapeComponent(a->filter.substr(eq + 1)));
      }
      if (a->limit > 0) query.push_back("limit=" + std::to_string(a->limit));
      if (!a->after.empty()) query.push_back("after=" + EscapeComponent(a->after));
      std::string path = RecordsPath(*a);
      for (std::size_t i = 0; i < query.size(); ++i) path += (i == 0 ? "?" : "&") + query[i];
      std::ostream* err = ctx->err;
      return CallAndPrint(ctx, {"GET", path, std::nullopt, {}}, [err](const nlohmann::json& b, std::ostream& out) {
        nlohmann::json items = ItemsOf(b);
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& item : items) {
          nlohmann::json row = item;
          if (row.is_object() && row.contains("data")) row["data"] = row["data"].dump();
          rows.push_back(std::move(row));
        }
        PrintTable(out, rows, {{"id", "id"}, {"version", "version"}, {"updated", "updated_at"}, {"data", "data"}});
        if (b.is_object() && b.contains("next") && b["next"].is_string()) {
          *err << "More results: add --after " << b["next"].get<std::string>() << "\n";
        }
      });
    });
  }
  {
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("delete", "Delete a record and every kept version");
    AddRecordArgs(cmd, a.get(), true);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, a] {
      return CallAndPrint(ctx, {"DELETE", RecordPath(*a), std::nullopt, {}},
                          [a](const nlohmann::json&, std::ostream& out) { out << "Deleted record " << a->id << ".\n"; });
    });
  }
  {
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("versions", "List a record's kept versions, newest first");
    AddRecordArgs(cmd, a.get(), true);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, a] {
      return CallAndPrint(ctx, {"GET", RecordPath(*a) + "/versions", std::nullopt, {}},
                          [](const nlohmann::json& b, std::ostream& out) {
                            PrintTable(out, ItemsOf(b), {{"version", "version"}, {"created", "created_at"}});
                          });
    });
  }
}

}  // namespace kura::cli
