// kura access request|list|show|approve|deny|revoke and kura lockbox get|set:
// the lockbox (SPEC §2). Staff ask for time-bound access to a tenant; the
// tenant's approvers (or a security officer) decide; the tenant's admins set
// the rules (how many approvals, whether only its own count, the longest
// grant, the webhook approvers are notified through).
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cli/app.h"

namespace kura::cli {
namespace {

std::string RequestsPath(const std::string& tenant) { return TenantPath(tenant) + "/access-requests"; }
std::string RequestPath(const std::string& tenant, const std::string& id) {
  return RequestsPath(tenant) + "/" + EscapeComponent(id);
}

std::string Join(const nlohmann::json& array) {
  if (!array.is_array()) return ScalarText(array);
  std::string out;
  for (const auto& item : array) out += (out.empty() ? "" : ",") + ScalarText(item);
  return out.empty() ? "-" : out;
}

// "2h", "90m", "45s": the shortest exact form of a duration in seconds.
std::string DurationText(const nlohmann::json& seconds) {
  if (!seconds.is_number_integer()) return ScalarText(seconds);
  long long s = seconds.get<long long>();
  if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

// How far the approvals are: "1/2".
std::string ApprovalCount(const nlohmann::json& r) {
  size_t given = r.contains("approvals") && r["approvals"].is_array() ? r["approvals"].size() : 0;
  return std::to_string(given) + "/" + ScalarText(r.value("required_approvals", nlohmann::json(1)));
}

void PrintRequest(const nlohmann::json& r, std::ostream& out) {
  PrintFields(out, r, {"id", "tenant", "requester", "status"});
  if (r.contains("permissions")) out << "permissions: " << Join(r["permissions"]) << "\n";
  if (r.contains("collections")) out << "collections: " << Join(r["collections"]) << "\n";
  PrintFields(out, r, {"view"});
  if (r.contains("duration_seconds")) out << "duration: " << DurationText(r["duration_seconds"]) << "\n";
  PrintFields(out, r, {"reason", "detail", "ticket", "created_at", "expires_at"});
  if (r.contains("required_approvals")) out << "approvals: " << ApprovalCount(r) << "\n";
  if (r.contains("approvals") && r["approvals"].is_array()) {
    for (const auto& a : r["approvals"]) {
      if (!a.is_object()) continue;
      out << "  " << ScalarText(a.value("approver", nlohmann::json())) << " at "
          << ScalarText(a.value("at", nlohmann::json())) << "\n";
    }
  }
  if (r.contains("grant") && r["grant"].is_object()) {
    out << "grant: " << ScalarText(r["grant"].value("starts_at", nlohmann::json())) << " to "
        << ScalarText(r["grant"].value("ends_at", nlohmann::json())) << "\n";
  }
  for (const char* key : {"decided_by", "decided_at", "decision_reason"}) {
    if (r.contains(key) && !r[key].is_null()) PrintFields(out, r, {key});
  }
}

// A one-line account of a decision, then the request.
void PrintDecision(const nlohmann::json& r, std::ostream& out) {
  std::string status = ScalarText(r.value("status", nlohmann::json()));
  std::string id = ScalarText(r.value("id", nlohmann::json()));
  if (status == "approved") {
    out << "Approved: access request " << id << " is a grant until "
        << ScalarText(r.value("expires_at", nlohmann::json())) << ".\n";
  } else if (status == "pending") {
    out << "Approval recorded (" << ApprovalCount(r) << "); access request " << id << " waits for more.\n";
  } else if (status == "denied") {
    out << "Denied access request " << id << ".\n";
  }
  PrintRequest(r, out);
}

void PrintPolicy(const nlohmann::json& p, std::ostream& out) {
  PrintFields(out, p, {"own_approval_only", "approvals_required"});
  if (p.contains("max_duration_seconds")) out << "max_duration: " << DurationText(p["max_duration_seconds"]) << "\n";
  PrintFields(out, p, {"webhook_url", "webhook_secret_set"});
  if (p.contains("webhook_secret")) {
    out << "webhook_secret: " << ScalarText(p["webhook_secret"]) << "\n"
        << "\nThe webhook secret is shown only once: give it to the receiver now. Each delivery carries\n"
        << "webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks, v1: HMAC-SHA256).\n";
  }
}

void AddRequest(CLI::App* group, Context* ctx) {
  struct Args {
    std::string tenant, duration, reason, detail, ticket, view;
    std::vector<std::string> permissions, collections;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = group->add_subcommand(
      "request", "Ask for time-bound access to a tenant's data (staff); the tenant's approvers are notified");
  cmd->add_option("--tenant", args->tenant, "Tenant whose data is needed")->required();
  cmd->add_option("--permission", args->permissions,
                  "Permission (repeat, or comma-separated): record.read, record.write, record.export, file.read, …")
      ->required()
      ->delimiter(',');
  cmd->add_option("--collection", args->collections, "Collection (repeat, or comma-separated; * for all)")
      ->required()
      ->delimiter(',');
  cmd->add_option("--duration", args->duration, "How long the grant lasts once approved, such as 2h (at most 8h)")
      ->required();
  cmd->add_option("--reason", args->reason, "Reason code")
      ->required()
      ->check(CLI::IsMember({"customer_support", "incident", "legal", "other"}));
  cmd->add_option("--detail", args->detail, "What is needed and why, for the approvers")->required();
  cmd->add_option("--ticket", args->ticket, "Ticket reference, such as SUP-123")->required();
  cmd->add_option("--view", args->view, "Field view of the grant (default: masked)")
      ->check(CLI::IsMember({"masked", "full"}));
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx, args] {
    nlohmann::json body = {
        {"tenant", args->tenant},     {"permissions", args->permissions}, {"collections", args->collections},
        {"duration", args->duration}, {"reason", args->reason},           {"detail", args->detail},
        {"ticket", args->ticket}};
    if (!args->view.empty()) body["view"] = args->view;
    return CallAndPrint(ctx, {"POST", "/v1/access-requests", body, {}}, [](const nlohmann::json& r, std::ostream& out) {
      out << "Access request " << ScalarText(r.value("id", nlohmann::json())) << " is "
          << ScalarText(r.value("status", nlohmann::json())) << "; it needs "
          << ScalarText(r.value("required_approvals", nlohmann::json(1))) << " approval(s) and lapses at "
          << ScalarText(r.value("expires_at", nlohmann::json())) << " unless decided.\n";
      PrintRequest(r, out);
    });
  });
}

void AddList(CLI::App* group, Context* ctx) {
  struct Args {
    std::string tenant, status;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = group->add_subcommand("list", "List a tenant's access requests and grants, newest first (all pages)");
  cmd->add_option("--tenant", args->tenant, "Tenant")->required();
  cmd->add_option("--status", args->status, "Only requests in this state")
      ->check(CLI::IsMember({"pending", "approved", "denied", "revoked", "expired"}));
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx, args]() -> int {
    // Follows `next` so the list is complete; --format json prints the merged
    // items in the server's list shape.
    std::string path = RequestsPath(args->tenant);
    if (!args->status.empty()) path += "?status=" + EscapeComponent(args->status);
    int code = kExitOk;
    auto all = ListAllPages(ctx, path, &code);
    if (!all) return code;
    nlohmann::json items = std::move(*all);
    if (ctx->format() == Format::kJson) {
      *ctx->out << nlohmann::json{{"items", items}, {"next", nullptr}}.dump() << "\n";
      return static_cast<int>(kExitOk);
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : items) {
      if (!r.is_object()) continue;
      nlohmann::json row = r;
      row["permissions"] = Join(r.value("permissions", nlohmann::json::array()));
      row["collections"] = Join(r.value("collections", nlohmann::json::array()));
      row["duration"] = DurationText(r.value("duration_seconds", nlohmann::json()));
      row["approvals"] = ApprovalCount(r);
      rows.push_back(std::move(row));
    }
    PrintTable(*ctx->out, rows,
               {{"id", "id"},
                {"status", "status"},
                {"requester", "requester"},
                {"permissions", "permissions"},
                {"collections", "collections"},
                {"duration", "duration"},
                {"approvals", "approvals"},
                {"ticket", "ticket"},
                {"created", "created_at"},
                {"expires", "expires_at"}});
    return static_cast<int>(kExitOk);
  });
}

// show, approve, deny and revoke: one request of one tenant.
struct OneRequest {
  std::string tenant, id, reason;
};

CLI::App* AddOneRequestCommand(CLI::App* group, const std::string& name, const std::string& help,
                               const std::shared_ptr<OneRequest>& args) {
  CLI::App* cmd = group->add_subcommand(name, help);
  cmd->add_option("ID", args->id, "Access request id")->required();
  cmd->add_option("--tenant", args->tenant, "Tenant")->required();
  return cmd;
}

}  // namespace

void AddAccessCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand(
      "access", "Lockbox: staff access requests to a tenant's data, and their approval, denial and revocation");
  group->require_subcommand(1);

  AddRequest(group, ctx);
  AddList(group, ctx);
  {
    auto args = std::make_shared<OneRequest>();
    CLI::App* cmd = AddOneRequestCommand(group, "show", "Show one access request (or grant)", args);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"GET", RequestPath(args->tenant, args->id), std::nullopt, {}}, PrintRequest);
    });
  }
  {
    auto args = std::make_shared<OneRequest>();
    CLI::App* cmd = AddOneRequestCommand(
        group, "approve",
        "Approve a request (an approver of the tenant, or a security officer); needs a recent sign-in "
        "(kura step-up)",
        args);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      // A refusal for want of a recent sign-in gets the `kura step-up` hint
      // from ReportHttpError.
      return CallAndPrint(ctx, {"POST", RequestPath(args->tenant, args->id) + "/approve", nlohmann::json::object(), {}},
                          PrintDecision);
    });
  }
  {
    auto args = std::make_shared<OneRequest>();
    CLI::App* cmd = AddOneRequestCommand(group, "deny", "Deny a pending request", args);
    cmd->add_option("--reason", args->reason, "Why, for the requester and the audit trail");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      nlohmann::json body = nlohmann::json::object();
      if (!args->reason.empty()) body["reason"] = args->reason;
      return CallAndPrint(ctx, {"POST", RequestPath(args->tenant, args->id) + "/deny", body, {}}, PrintDecision);
    });
  }
  {
    auto args = std::make_shared<OneRequest>();
    CLI::App* cmd = AddOneRequestCommand(
        group, "revoke",
        "Revoke a grant (approvers, security officers) or withdraw a pending request (also its requester); "
        "takes effect on the next request",
        args);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      return CallAndPrint(ctx, {"DELETE", RequestPath(args->tenant, args->id), std::nullopt, {}},
                          [args](const nlohmann::json&, std::ostream& out) {
                            out << "Revoked access request " << args->id << ": it grants nothing from now on.\n";
                          });
    });
  }
}

void AddLockboxCommands(CLI::App* app, Context* ctx) {
  CLI::App* group =
      app->add_subcommand("lockbox", "Show or change a tenant's lockbox rules for staff access (tenant admins)");
  group->require_subcommand(1);
  {
    auto tenant = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("get", "Show the lockbox rules");
    cmd->add_option("--tenant", *tenant, "Tenant")->required();
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, tenant] {
      return CallAndPrint(ctx, {"GET", TenantPath(*tenant) + "/lockbox", std::nullopt, {}}, PrintPolicy);
    });
  }
  {
    struct Args {
      std::string tenant, own_approval_only, max_duration, webhook_url;
      int approvals_required = 0;
      bool no_webhook = false;
      bool rotate_secret = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("set", "Change some of the lockbox rules; what is not given stays");
    cmd->add_option("--tenant", args->tenant, "Tenant")->required();
    cmd->add_option("--own-approval-only", args->own_approval_only,
                    "Only the tenant's own approvers count (security officers cannot approve)")
        ->check(CLI::IsMember({"true", "false"}));
    auto* approvals = cmd->add_option("--approvals-required", args->approvals_required,
                                      "Approvals a request needs before it becomes a grant")
                          ->check(CLI::PositiveNumber);
    cmd->add_option("--max-duration", args->max_duration, "Longest grant the tenant allows, such as 4h (at most 8h)");
    auto* webhook = cmd->add_option("--webhook-url", args->webhook_url,
                                    "Where approvers are notified of new requests: https:// (plain http:// only to "
                                    "a loopback address)");
    auto* no_webhook = cmd->add_flag("--no-webhook", args->no_webhook, "Notify through no webhook (the list stays)")
                           ->excludes(webhook);
    cmd->add_flag("--rotate-webhook-secret", args->rotate_secret,
                  "Replace the secret deliveries are signed with (shown once; the old one also signs for 24 h)")
        ->excludes(no_webhook);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args, approvals]() -> int {
      nlohmann::json body = nlohmann::json::object();
      if (!args->own_approval_only.empty()) body["own_approval_only"] = args->own_approval_only == "true";
      if (approvals->count() > 0) body["approvals_required"] = args->approvals_required;
      if (!args->max_duration.empty()) body["max_duration"] = args->max_duration;
      if (!args->webhook_url.empty()) body["webhook_url"] = args->webhook_url;
      if (args->no_webhook) body["webhook_url"] = nullptr;
      if (args->rotate_secret) body["rotate_webhook_secret"] = true;
      if (body.empty()) {
        return UsageError(ctx, InvalidArgumentError("nothing to change: give --own-approval-only, "
                                                    "--approvals-required, --max-duration, --webhook-url, "
                                                    "--no-webhook or --rotate-webhook-secret"));
      }
      return CallAndPrint(ctx, {"PUT", TenantPath(args->tenant) + "/lockbox", body, {}}, PrintPolicy);
    });
  }
}

}  // namespace kura::cli
