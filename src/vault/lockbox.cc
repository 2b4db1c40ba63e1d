// The customer lockbox (SPEC §2 Access grant; docs/lockbox.md): staff ask,
// the tenant's approvers (or a security officer) decide, and an approved
// request is a grant for a limited time. The grants themselves are enforced
// in RoleOf (vault.cc): a staff principal's permissions on a tenant are the
// union of its active grants, read on every request, so a revocation holds on
// the next request and an expiry needs no job.
#include <algorithm>

#include "core/bytes.h"
#include "core/log.h"
#include "core/secret.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

constexpr char kLockboxMetaPrefix[] = "lockbox.tenant/";
constexpr std::int64_t kPendingLifetimeSeconds = 12 * 3600;  // unanswered requests lapse (SPEC §2)
constexpr std::int64_t kMaxGrantSeconds = 8 * 3600;          // SPEC §2: at most 8 h
constexpr std::size_t kRequestIdRandomBytes = 10;
constexpr std::size_t kMaxDetail = 2000;  // code points
constexpr std::size_t kMaxTicket = 128;
constexpr std::size_t kMaxWebhookUrl = 2048;
constexpr int kMaxApprovals = 5;
constexpr char kLockboxDenied[] = "permission denied";
// A grant with users.admin administers the tenant, but never makes anyone
// (the staff member's own account, a key) an administrator or an approver:
// that would outlive the grant and let staff approve their own requests.
constexpr char kNoEscalation[] =
    "permission denied: under an access grant, staff cannot hand out or touch users.admin or access.approve";

const std::vector<std::string_view>& ReasonCodes() {
  static const std::vector<std::string_view> kCodes = {"customer_support", "incident", "legal", "other"};
  return kCodes;
}

// The status as of `now`: stored decisions stand; a pending request lapses
// after 12 h and a grant at its end, by time alone.
std::string StatusAt(const store::AccessRequestRow& r, std::int64_t now) {
  if (r.status == "pending" && now >= r.expires_at) return "expired";
  if (r.status == "approved" && now >= r.grant_ends_at) return "expired";
  return r.status;
}

json RequestJson(const store::AccessRequestRow& r, std::int64_t now) {
  json approvals = json::array();
  for (const auto& a : r.approvals) approvals.push_back({{"approver", a.approver}, {"at", TimeJson(a.at)}});
  json permissions = json::parse(r.permissions_json, nullptr, /*allow_exceptions=*/false);
  json actions = json::array();
  std::string view = "masked";
  if (permissions.is_array()) {
    for (const json& p : permissions) {
      if (p.is_object() && p.contains("action")) actions.push_back(p["action"]);
      if (p.is_object()) view = p.value("view", view);
    }
  }
  std::string status = StatusAt(r, now);
  bool granted = r.grant_ends_at > 0;
  return {{"id", r.id},
          {"tenant", r.tenant_id},
          {"requester", r.requester},
          {"permissions", actions},
          {"collections", ParseStringArray(r.collections_json)},
          {"view", view},
          {"duration_seconds", r.duration_s},
          {"reason", r.reason},
          {"detail", r.detail},
          {"ticket", r.ticket},
          {"status", status},
          {"required_approvals", r.required_approvals},
          {"approvals", approvals},
          {"created_at", TimeJson(r.created_at)},
          {"expires_at", granted ? TimeJson(r.grant_ends_at) : TimeJson(r.expires_at)},
          {"grant", granted ? json{{"id", r.id}, {"starts_at", TimeJson(r.grant_starts_at)},
                                   {"ends_at", TimeJson(r.grant_ends_at)}}
                            : json(nullptr)},
          {"decided_by", r.decided_by.empty() ? json(nullptr) : json(r.decided_by)},
          {"decided_at", r.decided_at > 0 ? TimeJson(r.decided_at) : json(nullptr)},
          {"decision_reason", r.decision_reason.empty() ? json(nullptr) : json(r.decision_reason)}};
}

// Webhooks: https anywhere, plain http only to this machine (tests, a local
// relay). The host is parsed, not matched as a prefix: "http://127.0.0.1@x/"
// and "http://127.0.0.1.x/" go elsewhere. The notifier checks again with
// libcurl's parser before sending.
bool IsLoopbackIpv4(std::string_view host) {
  int parts = 0;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = host.find('.', start);
    std::string_view part = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    if (std::stoi(std::string(part)) > 255) return false;
    if (parts == 0 && part != "127") return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

bool IsAcceptableWebhookUrl(std::string_view url) {
  if (url.size() > kMaxWebhookUrl) return false;
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  std::string_view rest;
  bool https = url.starts_with("https://");
  if (https) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  if (https) return true;
  std::string_view host = authority;
  if (host.starts_with("[")) {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "[::1]" || IsLoopbackIpv4(host);
}

}  // namespace

// --- The tenant's lockbox policy ----------------------------------------------------

Result<VaultImpl::LockboxPolicy> VaultImpl::LockboxPolicyFor(const std::string& tenant) {
  LockboxPolicy policy;
  KURA_ASSIGN_OR_RETURN(std::optional<json> doc, ReadTenantMeta(tenant, kLockboxMetaPrefix + tenant));
  if (doc) {
    policy.own_approval_only = doc->value("own_approval_only", false);
    policy.approvals_required = doc->value("approvals_required", 1);
    policy.max_duration_s = doc->value("max_duration_seconds", kMaxGrantSeconds);
    policy.webhook_url = doc->value("webhook_url", "");
    if (auto sealed = HexDecode(doc->value("webhook_secret_sealed", "")); sealed) {
      policy.webhook_secret_sealed = std::move(*sealed);
    }
    if (auto sealed = HexDecode(doc->value("webhook_previous_secret_sealed", "")); sealed) {
      policy.webhook_previous_secret_sealed = std::move(*sealed);
      policy.webhook_previous_until = doc->value("webhook_previous_until", std::int64_t{0});
    }
  }
  return policy;
}

namespace {
json LockboxPolicyJson(const VaultImpl::LockboxPolicy& p) {
  return {{"own_approval_only", p.own_approval_only},
          {"approvals_required", p.approvals_required},
          {"max_duration_seconds", p.max_duration_s},
          {"webhook_url", p.webhook_url.empty() ? json(nullptr) : json(p.webhook_url)},
          {"webhook_secret_set", !p.webhook_secret_sealed.empty()}};
}

// A webhook secret as receivers hold it (Standard Webhooks): "whsec_" and
// the base64 of its bytes. 32 bytes: the full strength of HMAC-SHA256.
constexpr std::size_t kWebhookSecretBytes = 32;
constexpr char kWebhookSecretPrefix[] = "whsec_";
// After a rotation the old secret signs beside the new one this long (as
// other webhook senders do), so a receiver switches without a gap.
constexpr std::int64_t kWebhookRotationOverlapSeconds = 24 * 3600;
}  // namespace

Result<Reply> VaultImpl::GetLockboxPolicy(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kLockboxPolicyRead, tenant, "lockbox");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_ASSIGN_OR_RETURN(LockboxPolicy policy, LockboxPolicyFor(tenant));
    Reply reply;
    reply.body = LockboxPolicyJson(policy);
    return reply;
  }());
}

Result<Reply> VaultImpl::PutLockboxPolicy(const Caller& caller, const std::string& tenant, const json& body) {
  AuditScope scope(this, caller, actions::kLockboxPolicyWrite, tenant, "lockbox");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    // Only the tenant's own admins: a grant can never loosen the lockbox.
    if (caller.principal.kind != PrincipalKind::kUser && caller.principal.kind != PrincipalKind::kApiKey) {
      return PermissionDeniedError("permission denied: only the tenant's own administrators set its lockbox");
    }
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckObject(
        body, {"own_approval_only", "approvals_required", "max_duration", "webhook_url", "rotate_webhook_secret"}));
    KURA_ASSIGN_OR_RETURN(LockboxPolicy policy, LockboxPolicyFor(tenant));
    if (body.contains("own_approval_only")) {
      if (!body["own_approval_only"].is_boolean()) return InvalidArgumentError("own_approval_only: must be true or false");
      policy.own_approval_only = body["own_approval_only"].get<bool>();
    }
    KURA_ASSIGN_OR_RETURN(auto approvals, OptionalInteger(body, "approvals_required"));
    if (approvals) {
      if (*approvals < 1 || *approvals > kMaxApprovals) {
        return InvalidArgumentError("approvals_required: must be between 1 and " + std::to_string(kMaxApprovals));
      }
      policy.approvals_required = static_cast<int>(*approvals);
    }
    KURA_ASSIGN_OR_RETURN(auto max_duration, OptionalString(body, "max_duration"));
    if (max_duration) {
      auto d = ParseDuration(*max_duration);
      if (!d || d->count() < 60 || d->count() > kMaxGrantSeconds) {
        return InvalidArgumentError("max_duration: a duration between 1m and 8h, such as \"2h\"");
      }
      policy.max_duration_s = d->count();
    }
    if (body.contains("webhook_url")) {
      KURA_ASSIGN_OR_RETURN(auto url, OptionalString(body, "webhook_url"));
      if (url && !IsAcceptableWebhookUrl(*url)) {
        return InvalidArgumentError("webhook_url: an https:// URL (plain http only to a loopback address)");
      }
      policy.webhook_url = url.value_or("");
    }
    bool rotate = false;
    if (body.contains("rotate_webhook_secret")) {
      if (!body["rotate_webhook_secret"].is_boolean()) {
        return InvalidArgumentError("rotate_webhook_secret: must be true or false");
      }
      rotate = body["rotate_webhook_secret"].get<bool>();
      if (rotate && policy.webhook_url.empty()) {
        return InvalidArgumentError("rotate_webhook_secret: the tenant has no webhook_url");
      }
    }
    // Every webhook has a secret its deliveries are signed with, made here
    // and shown in this reply only (like an API key): when the webhook is
    // set, when it has none (set before deliveries were signed), and when
    // asked to rotate. No webhook, no secret.
    SecretBytes new_secret;
    if (policy.webhook_url.empty()) {
      policy.webhook_secret_sealed.clear();
      policy.webhook_previous_secret_sealed.clear();
    } else if (rotate || policy.webhook_secret_sealed.empty()) {
      if (!policy.webhook_secret_sealed.empty()) {
        policy.webhook_previous_secret_sealed = policy.webhook_secret_sealed;
        policy.webhook_previous_until = NowSeconds() + kWebhookRotationOverlapSeconds;
      }
      new_secret = crypto::RandomSecret(kWebhookSecretBytes);
      KURA_ASSIGN_OR_RETURN(policy.webhook_secret_sealed,
                            keyring_.WrapSecret(new_secret, crypto::KeyPurpose::kWebhookSecret, tenant));
    }
    if (policy.webhook_previous_until <= NowSeconds()) policy.webhook_previous_secret_sealed.clear();
    json doc = LockboxPolicyJson(policy);
    doc.erase("webhook_secret_set");
    doc["webhook_url"] = policy.webhook_url;
    if (!policy.webhook_secret_sealed.empty()) doc["webhook_secret_sealed"] = HexEncode(policy.webhook_secret_sealed);
    if (!policy.webhook_previous_secret_sealed.empty()) {
      doc["webhook_previous_secret_sealed"] = HexEncode(policy.webhook_previous_secret_sealed);
      doc["webhook_previous_until"] = policy.webhook_previous_until;
    }
    KURA_RETURN_IF_ERROR(WriteTenantMeta(tenant, kLockboxMetaPrefix + tenant, doc, scope.Change()));
    Reply reply;
    reply.body = LockboxPolicyJson(policy);
    if (!new_secret.empty()) {
      // Built in one buffer that moves into the reply (whose strings are
      // wiped once it is sent); the encoding's own buffer is wiped here.
      std::string encoded = Base64Encode(new_secret.view());
      std::string shown;
      shown.reserve(sizeof(kWebhookSecretPrefix) - 1 + encoded.size());
      shown.append(kWebhookSecretPrefix).append(encoded);
      Wipe(encoded);
      reply.body["webhook_secret"] = std::move(shown);
    }
    return reply;
  }());
}

Result<std::string> VaultImpl::SignWebhookDelivery(const std::string& tenant, std::string_view delivery_id,
                                                   std::int64_t timestamp, std::string_view body) {
  KURA_RETURN_IF_ERROR(RequireUnsealed());
  KURA_ASSIGN_OR_RETURN(LockboxPolicy policy, LockboxPolicyFor(tenant));
  if (policy.webhook_secret_sealed.empty()) return std::string();
  std::string signed_content;
  signed_content.reserve(delivery_id.size() + body.size() + 24);
  signed_content.append(delivery_id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  auto sign = [&](ByteView sealed) -> Result<std::string> {
    KURA_ASSIGN_OR_RETURN(SecretBytes secret,
                          keyring_.UnwrapSecret(sealed, crypto::KeyPurpose::kWebhookSecret, tenant));
    return "v1," + Base64Encode(crypto::HmacSha256(secret, AsBytes(signed_content)));
  };
  KURA_ASSIGN_OR_RETURN(std::string signatures, sign(policy.webhook_secret_sealed));
  // Within the overlap after a rotation, also with the old secret: the
  // header lists both, space-separated, and a receiver accepts either.
  if (!policy.webhook_previous_secret_sealed.empty() && timestamp < policy.webhook_previous_until) {
    KURA_ASSIGN_OR_RETURN(std::string previous, sign(policy.webhook_previous_secret_sealed));
    signatures += " " + previous;
  }
  return signatures;
}

// --- Requests --------------------------------------------------------------------------

Result<Reply> VaultImpl::CreateAccessRequest(const Caller& caller, const json& body) {
  AuditScope scope(this, caller, actions::kAccessRequest, "", "access-requests");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    if (caller.principal.kind != PrincipalKind::kStaff) {
      return PermissionDeniedError("permission denied: access requests are made by staff members");
    }
    KURA_RETURN_IF_ERROR(CheckObject(
        body, {"tenant", "permissions", "collections", "duration", "view", "reason", "detail", "ticket"}));
    KURA_ASSIGN_OR_RETURN(std::string tenant, RequiredString(body, "tenant"));
    if (!policy::IsValidName(tenant)) return InvalidArgumentError("tenant: invalid name");
    scope.set_tenant(tenant);
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_ASSIGN_OR_RETURN(LockboxPolicy lockbox, LockboxPolicyFor(tenant));

    // The grant is stored as role permissions (policy::ParseRole's format):
    // the same decision code enforces it as any role.
    auto list = [&](const char* key) -> Result<std::vector<std::string>> {
      auto it = body.find(key);
      if (it == body.end() || !it->is_array() || it->empty()) {
        return InvalidArgumentError(std::string(key) + ": a non-empty array of strings");
      }
      std::vector<std::string> out;
      for (const json& v : *it) {
        if (!v.is_string()) return InvalidArgumentError(std::string(key) + ": a non-empty array of strings");
        out.push_back(v.get<std::string>());
      }
      return out;
    };
    KURA_ASSIGN_OR_RETURN(std::vector<std::string> permission_names, list("permissions"));
    KURA_ASSIGN_OR_RETURN(std::vector<std::string> collections, list("collections"));
    KURA_ASSIGN_OR_RETURN(auto view, OptionalString(body, "view"));
    std::string view_name = view.value_or("masked");  // the least a helper needs, unless asked
    json permissions = json::array();
    for (const std::string& name : permission_names) {
      permissions.push_back({{"action", name}, {"collections", collections}, {"view", view_name}});
    }
    auto parsed = policy::ParseRole("grant", {{"permissions", permissions}});
    if (!parsed.ok()) return InvalidArgumentError(parsed.status().message());
    // Approving belongs to the tenant's people and security officers, never
    // to a grant: staff cannot approve their way into more access.
    for (const std::string& name : permission_names) {
      if (name == policy::ActionName(policy::Action::kAccessApprove)) {
        return InvalidArgumentError("permissions: access.approve cannot be granted to staff");
      }
    }

    KURA_ASSIGN_OR_RETURN(std::string duration_text, RequiredString(body, "duration"));
    auto duration = ParseDuration(duration_text);
    if (!duration || duration->count() < 60 || duration->count() > lockbox.max_duration_s) {
      return InvalidArgumentError("duration: between 1m and " + std::to_string(lockbox.max_duration_s / 60) +
                                  "m for this tenant, such as \"2h\"");
    }
    KURA_ASSIGN_OR_RETURN(std::string reason, RequiredString(body, "reason"));
    const auto& codes = ReasonCodes();
    if (std::find(codes.begin(), codes.end(), reason) == codes.end()) {
      return InvalidArgumentError("reason: one of customer_support, incident, legal, other");
    }
    KURA_ASSIGN_OR_RETURN(std::string detail, RequiredString(body, "detail"));
    if (detail.empty() || CodePointCount(detail) > kMaxDetail) {
      return InvalidArgumentError("detail: 1-" + std::to_string(kMaxDetail) + " characters saying why");
    }
    KURA_ASSIGN_OR_RETURN(std::string ticket, RequiredString(body, "ticket"));
    if (ticket.empty() || ticket.size() > kMaxTicket ||
        !std::all_of(ticket.begin(), ticket.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
      return InvalidArgumentError("ticket: 1-128 printable characters without spaces, such as \"SUP-123\"");
    }

    std::int64_t now = NowSeconds();
    store::AccessRequestRow row;
    row.id = NewTimeOrderedId(clock_->Now(), kRequestIdRandomBytes);
    row.tenant_id = tenant;
    row.requester = caller.principal.id;
    row.permissions_json = permissions.dump();
    row.collections_json = json(collections).dump();
    row.duration_s = duration->count();
    row.reason = reason;
    row.detail = detail;
    row.ticket = ticket;
    row.status = "pending";
    row.required_approvals = lockbox.approvals_required;
    row.created_at = now;
    row.expires_at = now + kPendingLifetimeSeconds;
    row.version = 1;
    scope.set_resource("access-requests/" + row.id);

    // Approvers learn of it from the webhook (delivered with retries by the
    // notifier, from the outbox written with the request) and the list route.
    std::vector<store::OutboxRow> notify;
    if (!lockbox.webhook_url.empty()) {
      store::OutboxRow n;
      n.tenant_id = tenant;
      n.url = lockbox.webhook_url;
      n.payload_json = json{{"event", "access_request.created"}, {"tenant", tenant}, {"request", RequestJson(row, now)}}.dump();
      n.next_attempt_at = now;
      notify.push_back(std::move(n));
    }
    KURA_RETURN_IF_ERROR(store_->CreateAccessRequest(row, notify, scope.Change()));
    Reply reply;
    reply.body = RequestJson(row, now);
    reply.created = true;
    return reply;
  }());
}

Status VaultImpl::RequireLockboxReader(const Caller& caller, const std::string& tenant) {
  const Principal& p = caller.principal;
  if (p.kind == PrincipalKind::kStaff) {
    // Staff see every request of the tenant only as security officers and
    // auditors; others (the requester) see their own.
    return Status::Ok();
  }
  if ((p.kind != PrincipalKind::kUser && p.kind != PrincipalKind::kApiKey) || p.tenant_id != tenant) {
    return PermissionDeniedError(kLockboxDenied);
  }
  KURA_ASSIGN_OR_RETURN(auto role, RoleOf(p, tenant));
  if (!policy::Decide(*role, policy::Action::kAccessApprove, "").allowed &&
      !policy::Decide(*role, policy::Action::kUsersAdmin, "").allowed &&
      !policy::Decide(*role, policy::Action::kAuditRead, "").allowed) {
    return PermissionDeniedError(kLockboxDenied);
  }
  return Status::Ok();
}

bool VaultImpl::SeesEveryRequest(const Principal& p) const {
  return p.kind != PrincipalKind::kStaff || p.HasRole(staff_roles::kSecurityOfficer) ||
         p.HasRole(staff_roles::kAuditor);
}

Result<Reply> VaultImpl::ListAccessRequests(const Caller& caller, const std::string& tenant,
                                            const std::map<std::string, std::string>& filters,
                                            const PageParams& page) {
  AuditScope scope(this, caller, actions::kAccessList, tenant, "access-requests");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireLockboxReader(caller, tenant));
    std::string wanted;
    for (const auto& [key, value] : filters) {
      if (key != "status") return InvalidArgumentError("unknown query parameter '" + key + "'");
      if (value != "pending" && value != "approved" && value != "denied" && value != "revoked" && value != "expired") {
        return InvalidArgumentError("status: one of pending, approved, denied, revoked, expired");
      }
      wanted = value;
    }
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_ASSIGN_OR_RETURN(store::PageRequest req, ToPageRequest(page));
    // "expired" is not stored: it is pending or approved with its time past.
    std::string stored = wanted == "expired" ? "" : wanted;
    KURA_ASSIGN_OR_RETURN(auto rows, store_->ListAccessRequests(tenant, stored, req));
    std::int64_t now = NowSeconds();
    bool every = SeesEveryRequest(caller.principal);
    json items = json::array();
    for (const auto& row : rows.items) {
      if (!every && row.requester != caller.principal.id) continue;
      if (!wanted.empty() && StatusAt(row, now) != wanted) continue;
      items.push_back(RequestJson(row, now));
    }
    Reply reply;
    reply.body = {{"items", std::move(items)}, {"next", rows.next ? json(*rows.next) : json(nullptr)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::GetAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id) {
  AuditScope scope(this, caller, actions::kAccessRead, tenant, "access-requests/" + id);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireLockboxReader(caller, tenant));
    auto row = store_->GetAccessRequest(tenant, id);
    if (row.status().code() == StatusCode::kNotFound) return NotFoundError("access request '" + id + "' not found");
    KURA_RETURN_IF_ERROR(row.status());
    if (!SeesEveryRequest(caller.principal) && row->requester != caller.principal.id) {
      return NotFoundError("access request '" + id + "' not found");
    }
    Reply reply;
    reply.body = RequestJson(*row, NowSeconds());
    return reply;
  }());
}

// --- Decisions ---------------------------------------------------------------------------

Result<std::string> VaultImpl::ApproverName(const Caller& caller, const std::string& tenant, bool for_revoke) {
  const Principal& p = caller.principal;
  if (p.kind == PrincipalKind::kUser && p.tenant_id == tenant) {
    KURA_ASSIGN_OR_RETURN(auto role, RoleOf(p, tenant));
    if (policy::Decide(*role, policy::Action::kAccessApprove, "").allowed) return p.LogName();
  }
  // A tenant's automation (an API key with access.approve) may cut staff
  // access; approving needs a person with a fresh sign-in.
  if (for_revoke && p.kind == PrincipalKind::kApiKey && p.tenant_id == tenant) {
    KURA_ASSIGN_OR_RETURN(auto role, RoleOf(p, tenant));
    if (policy::Decide(*role, policy::Action::kAccessApprove, "").allowed) return p.LogName();
  }
  if (p.kind == PrincipalKind::kStaff && p.HasRole(staff_roles::kSecurityOfficer)) {
    // A tenant may accept only its own approvals; a security officer can
    // always stop access (revoke), never start it against that choice.
    if (for_revoke) return p.LogName();
    KURA_ASSIGN_OR_RETURN(LockboxPolicy lockbox, LockboxPolicyFor(tenant));
    if (!lockbox.own_approval_only) return p.LogName();
    return PermissionDeniedError("permission denied: this tenant approves access requests itself");
  }
  return PermissionDeniedError(kLockboxDenied);
}

Result<Reply> VaultImpl::DecideAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                             const json& body, Decision decision) {
  std::string_view action = decision == Decision::kApprove ? actions::kAccessApprove
                            : decision == Decision::kDeny  ? actions::kAccessDeny
                                                           : actions::kAccessRevoke;
  AuditScope scope(this, caller, action, tenant, "access-requests/" + id);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    if (decision == Decision::kRevoke) {
      if (!body.is_null()) return InvalidArgumentError("this route takes no body");
    } else {
      KURA_RETURN_IF_ERROR(CheckObject(body, {"reason"}));
    }
    KURA_ASSIGN_OR_RETURN(auto reason, decision == Decision::kRevoke ? Result<std::optional<std::string>>(std::nullopt)
                                                                     : OptionalString(body, "reason"));
    if (reason && CodePointCount(*reason) > kMaxDetail) return InvalidArgumentError("reason: too long");
    // Approving is sensitive: a fresh authentication within the step-up window.
    if (decision == Decision::kApprove) KURA_RETURN_IF_ERROR(RequireFreshAuth(caller));
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      auto found = store_->GetAccessRequest(tenant, id);
      if (found.status().code() == StatusCode::kNotFound) return NotFoundError("access request '" + id + "' not found");
      KURA_RETURN_IF_ERROR(found.status());
      store::AccessRequestRow row = std::move(found).value();
      std::int64_t now = NowSeconds();
      std::string status = StatusAt(row, now);
      const Principal& p = caller.principal;
      bool requester = p.kind == PrincipalKind::kStaff && p.id == row.requester;
      std::string name;
      if (decision == Decision::kRevoke && requester && status == "pending") {
        name = p.LogName();  // withdrawing one's own request
      } else {
        KURA_ASSIGN_OR_RETURN(name, ApproverName(caller, tenant, decision == Decision::kRevoke));
        if (requester) return PermissionDeniedError("permission denied: nobody decides on their own request");
      }
      std::int64_t expected = row.version;
      switch (decision) {
        case Decision::kApprove: {
          if (status != "pending") return AbortedError("the request is " + status + ", not pending");
          for (const auto& a : row.approvals) {
            if (a.approver == name) return AlreadyExistsError("you have already approved this request");
          }
          row.approvals.push_back({name, now});
          if (static_cast<int>(row.approvals.size()) >= row.required_approvals) {
            row.status = "approved";
            row.grant_starts_at = now;
            row.grant_ends_at = now + row.duration_s;
            row.decided_by = name;
            row.decided_at = now;
          }
          break;
        }
        case Decision::kDeny:
          if (status != "pending") return AbortedError("the request is " + status + ", not pending");
          row.status = "denied";
          row.decided_by = name;
          row.decided_at = now;
          row.decision_reason = reason.value_or("");
          break;
        case Decision::kRevoke:
          if (status != "pending" && status != "approved") {
            return AbortedError("the request is " + status + ": nothing to revoke");
          }
          row.status = "revoked";
          row.decided_by = name;
          row.decided_at = now;
          // A grant ends now; the window stays on record.
          if (row.grant_ends_at > now) row.grant_ends_at = now;
          break;
      }
      row.version = expected + 1;
      Status s = store_->UpdateAccessRequest(row, expected, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;  // decided concurrently: look again
      KURA_RETURN_IF_ERROR(s);
      if (decision == Decision::kRevoke) {
        Reply reply;
        reply.no_content = true;
        return reply;
      }
      Reply reply;
      reply.body = RequestJson(row, now);
      return reply;
    }
    return UnavailableError("too many concurrent decisions on this request, try again");
  }());
}

Result<Reply> VaultImpl::ApproveAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                              const json& body) {
  return DecideAccessRequest(caller, tenant, id, body, Decision::kApprove);
}

Result<Reply> VaultImpl::DenyAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id,
                                           const json& body) {
  return DecideAccessRequest(caller, tenant, id, body, Decision::kDeny);
}

Result<Reply> VaultImpl::RevokeAccessRequest(const Caller& caller, const std::string& tenant, const std::string& id) {
  return DecideAccessRequest(caller, tenant, id, json(), Decision::kRevoke);
}

// --- Grants in force -------------------------------------------------------------------------

Result<std::shared_ptr<const policy::Role>> VaultImpl::GrantedRole(const Principal& principal,
                                                                  const std::string& tenant) {
  KURA_ASSIGN_OR_RETURN(auto grants, store_->ActiveGrants(tenant, principal.id, NowSeconds()));
  if (grants.empty()) {
    return PermissionDeniedError("permission denied: staff reach a tenant's data only through an approved access grant");
  }
  auto merged = std::make_shared<policy::Role>();
  merged->name = "grant";
  std::string ids;
  for (const auto& g : grants) {
    json permissions = json::parse(g.permissions_json, nullptr, /*allow_exceptions=*/false);
    auto role = policy::ParseRole("grant", {{"permissions", permissions}});
    if (!role.ok()) return DataLossError("access grant '" + g.id + "' is malformed");
    merged->permissions.insert(merged->permissions.end(), role->permissions.begin(), role->permissions.end());
    ids += (ids.empty() ? "" : ",") + g.id;
  }
  // Every action taken under a grant names it in its audit entry.
  AuditScope::NoteGrant(ids);
  return std::shared_ptr<const policy::Role>(std::move(merged));
}

// --- No escalation under a grant ---------------------------------------------------------------

namespace {
bool Escalates(const policy::Role& role) {
  return policy::Decide(role, policy::Action::kUsersAdmin, "").allowed ||
         policy::Decide(role, policy::Action::kAccessApprove, "").allowed;
}
}  // namespace

Status VaultImpl::RequireNoGrantEscalation(const Caller& caller, const std::string& tenant,
                                           const std::vector<std::string>& role_names) {
  if (caller.principal.kind != PrincipalKind::kStaff) return Status::Ok();
  for (const std::string& name : role_names) {
    auto role = LoadRole(tenant, name);
    if (!role.ok()) {
      if (role.status().code() == StatusCode::kNotFound) continue;  // a role that does not exist gives nothing
      return role.status();
    }
    if (Escalates(**role)) return PermissionDeniedError(kNoEscalation);
  }
  return Status::Ok();
}

Status VaultImpl::RequireNoGrantEscalation(const Caller& caller, const std::string&, const policy::Role& role) {
  if (caller.principal.kind != PrincipalKind::kStaff) return Status::Ok();
  if (Escalates(role)) return PermissionDeniedError(kNoEscalation);
  return Status::Ok();
}

// --- Tenant-scoped meta values -------------------------------------------------------------------

Result<std::optional<json>> VaultImpl::ReadTenantMeta(const std::string& tenant, const std::string& key) {
  auto meta = store_->GetMeta(key);
  if (!meta.ok()) {
    if (meta.status().code() == StatusCode::kNotFound) return std::optional<json>();
    return meta.status();
  }
  json doc = json::parse(AsString(*meta), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return DataLossError("stored setting '" + key + "' is malformed");
  // A value names its tenant's creation time: one left behind by a deleted
  // tenant of the same id does not apply to a new one.
  auto row = store_->GetTenant(tenant);
  if (!row.ok() && row.status().code() != StatusCode::kNotFound) return row.status();
  if (!row.ok() || doc.value("tenant_created_at", std::int64_t{-1}) != row->created_at) return std::optional<json>();
  return std::optional<json>(std::move(doc));
}

Status VaultImpl::WriteTenantMeta(const std::string& tenant, const std::string& key, json value,
                                  const store::AuditLink* audit) {
  auto row = store_->GetTenant(tenant);
  if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
  KURA_RETURN_IF_ERROR(row.status());
  value["tenant_created_at"] = row->created_at;
  std::string text = value.dump();
  return store_->PutMeta(key, AsBytes(text), audit);
}

}  // namespace kura::vault
