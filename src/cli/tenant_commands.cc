// kura tenant create|get|list|delete (operator: root token), and
// kura tenant rotate-key (an operator or the tenant's admin).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "cli/app.h"
#include "cli/input.h"

namespace kura::cli {
namespace {

void PrintTenant(const nlohmann::json& t, std::ostream& out) {
  // "admin": the first admin's user name, when one was created.
  PrintFields(out, t, {"id", "name", "region", "created_at", "admin"});
}

// "[#########...........]  45%  4500/10000"
std::string ProgressBar(std::int64_t done, std::int64_t total) {
  constexpr int kWidth = 30;
  const double share = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
  const int filled = static_cast<int>(share * kWidth);
  std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                    std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] ";
  std::string percent = std::to_string(static_cast<int>(share * 100));
  return bar + std::string(3 - std::min<std::size_t>(3, percent.size()), ' ') + percent + "%  " +
         std::to_string(done) + "/" + std::to_string(total);
}

void PrintRotation(const nlohmann::json& r, std::ostream& out) {
  const std::string state = StringField(r, "state");
  out << "tenant:            " << StringField(r, "tenant") << "\n"
      << "data key version:  " << IntegerField(r, "data_key_version", 0) << "\n";
  if (state == "none") {
    out << "rotation:          none yet\n";
    return;
  }
  out << "rotation:          to version " << IntegerField(r, "to_version", 0) << ", " << state << "\n"
      << "re-encrypted:      " << ProgressBar(IntegerField(r, "done", 0), IntegerField(r, "total", 0)) << "\n"
      << "started:           " << StringField(r, "started_at") << "\n";
  if (state == "done") {
    out << "finished:          " << StringField(r, "finished_at") << " (older data key versions destroyed)\n";
  }
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
  {
    struct Args {
      std::string id;
      bool status = false;
      bool no_wait = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "rotate-key",
        "Rotate a tenant's data key: new writes use a new key at once, a background job re-encrypts every record "
        "version, then the old key is destroyed (an operator or the tenant's admin)");
    cmd->add_option("ID", args->id, "Tenant id")->required();
    auto* status = cmd->add_flag("--status", args->status, "Show the progress of the last rotation; start none");
    cmd->add_flag("--no-wait", args->no_wait, "Start the rotation and return without waiting for the re-encryption")
        ->excludes(status);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args]() -> int {
      const std::string path = "/v1/tenants/" + EscapeComponent(args->id) + "/rotate-key";
      if (args->status) return CallAndPrint(ctx, {"GET", path, std::nullopt, {}}, PrintRotation);
      if (args->no_wait) return CallAndPrint(ctx, {"POST", path, std::nullopt, {}}, PrintRotation);
      int code = kExitOk;
      if (!Call(ctx, {"POST", path, std::nullopt, {}}, &code)) return code;
      // The bar goes to a terminal only: a redirected stderr gets no
      // carriage-return noise, just the final status on stdout.
      const bool bar = ctx->err == &std::cerr && ::isatty(STDERR_FILENO) == 1;
      for (;;) {
        auto r = Call(ctx, {"GET", path, std::nullopt, {}}, &code);
        if (!r) return code;
        nlohmann::json body = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
        const std::string state = StringField(body, "state");
        if (bar) {
          *ctx->err << "\r" << ProgressBar(IntegerField(body, "done", 0), IntegerField(body, "total", 0)) << std::flush;
        }
        if (state != "running") {
          if (bar) *ctx->err << "\n";
          if (ctx->format() == Format::kJson) {
            *ctx->out << body.dump() << "\n";
          } else {
            PrintRotation(body, *ctx->out);
          }
          return static_cast<int>(kExitOk);
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    });
  }
}

}  // namespace kura::cli
