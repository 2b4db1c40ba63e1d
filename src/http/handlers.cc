#include "http/handlers.h"

#include <nlohmann/json.hpp>
#include <string>

#include "core/json.h"
#include "core/secret.h"
#include "http/request_parsing.h"
#include "ops/health.h"
#include "vault/vault.h"

namespace kura::http {
namespace {

using nlohmann::json;

std::string Dump(const json& body) { return body.dump(-1, ' ', false, json::error_handler_t::replace); }

// Wipes every string value in `value` (object keys are field names, kept).
void WipeJsonStrings(json& value) {
  switch (value.type()) {
    case json::value_t::string:
      Wipe(value.get_ref<std::string&>());
      break;
    case json::value_t::object:
    case json::value_t::array:
      for (json& item : value) WipeJsonStrings(item);
      break;
    default:
      break;
  }
}

Response FromReply(const vault::Reply& reply) {
  Response r;
  if (reply.no_content) {
    r.status = 204;
  } else {
    r.status = reply.created ? 201 : 200;
    // Not `?:`: with `reply` const, its result is a const string, which `=`
    // can only copy, and the Dump() text would be freed unwiped
    // (MemoryTest.RequestBytesAreWipedOnceAnswered).
    if (reply.body_text.empty()) {
      r.body = Dump(reply.body);
    } else {
      r.body = reply.body_text;  // the caller wipes body_text
    }
  }
  r.etag = reply.version;
  return r;
}

Response FromResult(const Result<vault::Reply>& result, std::string_view request_id) {
  if (!result.ok()) return StatusResponse(result.status(), request_id);
  return FromReply(*result);
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (std::size_t i = 0; i < kJson.size(); ++i) {
    char ch = media[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != kJson[i]) return false;
  }
  return true;
}

// An empty body stands for {} (POST /v1/sys/seal, keyfile init): clients need
// not invent one. A non-empty body must say it is JSON and be a JSON object.
Result<json> ParseBody(const Request& request) {
  if (request.body.empty()) return json::object();
  if (!IsJsonMediaType(request.content_type)) {
    return InvalidArgumentError("request body must be sent with Content-Type: application/json");
  }
  KURA_ASSIGN_OR_RETURN(json body, ParseUntrustedJson(request.body));
  if (!body.is_object()) return InvalidArgumentError("request body must be a JSON object");
  return body;
}

vault::PageParams Page(QueryParams& q) {
  vault::PageParams page;
  page.after = std::move(q.after);
  page.limit = q.limit;
  return page;
}

}  // namespace

Response RouteErrorResponse(const RouteMatch& match, std::string_view request_id) {
  switch (match.kind) {
    case RouteMatch::Kind::kMethodNotAllowed: {
      Response r = ErrorResponse(405, "method_not_allowed", "method not allowed on this path", request_id);
      r.allow = match.allow;
      return r;
    }
    case RouteMatch::Kind::kBadParameter:
      return ErrorResponse(400, "invalid_argument", "path parameters must be 1-128 characters of [A-Za-z0-9_-]",
                           request_id);
    case RouteMatch::Kind::kNotFound:
    case RouteMatch::Kind::kFound:
      break;
  }
  return ErrorResponse(404, "not_found", "no such route", request_id);
}

Response Handlers::Handle(const RouteMatch& match, const Request& request, bool draining) const {
  const RouteTraits& traits = match.traits;
  const std::string_view id = request.request_id;

  // Health and seal status are for probes and operators and need nothing;
  // they are the only routes the audit log does not record (docs/formats/audit.md).
  if (match.route == RouteId::kHealth || match.route == RouteId::kSealStatus) {
    if (!request.query.empty()) return ErrorResponse(400, "invalid_argument", "this route takes no query", id);
    Response r;
    if (match.route == RouteId::kHealth) {
      ops::Health health = ops::CheckHealth(*vault_, draining);
      r.status = health.HttpStatus();
      r.body = Dump(health.ToJson());
    } else {
      r.body = Dump(vault_->GetSealStatus().ToJson());
    }
    return r;
  }

  vault::Caller caller;
  caller.context.request_id = std::string(request.request_id);
  caller.context.client_address = std::string(request.client_address);
  caller.context.reason = std::string(request.reason.substr(0, kMaxReasonBytes));

  // Every refusal before the vault call is audited here; the vault audits
  // everything after. If the entry cannot be made durable, 503 it is.
  auto reject = [&](const Status& status) {
    Response r = Reject(match, request, caller, status);
    if (traits.auth) r.principal = caller.principal.id.empty() ? "-" : caller.principal.LogName();
    return r;
  };

  if (!traits.allowed_sealed && vault_->IsSealed()) return reject(FailedPreconditionError("the vault is sealed"));
  if (request.reason.size() > kMaxReasonBytes) {
    return reject(InvalidArgumentError("X-Kura-Reason is longer than 256 bytes"));
  }

  // Authenticate before looking at anything else the client sent: an
  // unauthenticated caller learns nothing about what a route would accept.
  std::string negotiate_reply;  // the mutual-authentication token of a Kerberos request
  if (traits.auth) {
    const bool kerberos_route = match.route == RouteId::kKerberosLogin;
    if (HasAuthScheme(request.authorization, "negotiate")) {
      Result<std::string_view> token = ParseNegotiate(request.authorization);
      std::string client_principal;
      Result<vault::NegotiateResult> negotiated =
          token.ok() ? vault_->AuthenticateNegotiate(*token, &client_principal)
                     : Result<vault::NegotiateResult>(token.status());
      if (!negotiated.ok()) {
        Response r = Reject(match, request, caller, negotiated.status(),
                            client_principal.empty() ? "" : "kerberos:" + client_principal);
        if (r.status == 401) r.www_authenticate = "Negotiate";
        return r;
      }
      caller.principal = std::move(negotiated->principal);
      negotiate_reply = std::move(negotiated->output_token);
    } else {
      Result<std::string_view> token =
          kerberos_route ? Result<std::string_view>(UnauthenticatedError("this route takes Authorization: Negotiate"))
                         : ParseBearer(request.authorization);
      if (!token.ok()) {
        Response r = reject(token.status());
        // RFC 4559 / RFC 6750 §3: the challenge, without an error attribute
        // when no credentials were sent at all.
        if (r.status == 401 && kerberos_route) r.www_authenticate = "Negotiate";
        else if (request.authorization.empty() && r.status == 401) r.www_authenticate = R"(Bearer realm="kura")";
        return r;
      }
      Result<vault::Principal> principal = vault_->Authenticate(*token);
      if (!principal.ok()) return reject(principal.status());
      caller.principal = std::move(principal).value();
    }
    // A session that must first change its password or enrol TOTP reaches
    // only the routes that let it do so.
    if (!caller.principal.restriction.empty() && !traits.restricted_ok) {
      return reject(PermissionDeniedError("finish signing in first: " + caller.principal.restriction +
                                          " (POST /v1/auth/password or /v1/auth/totp/enroll)"));
    }
  }

  Response r = Dispatch(match, request, caller);
  if (traits.auth) r.principal = caller.principal.LogName();
  if (!negotiate_reply.empty() && r.status < 400) r.www_authenticate = "Negotiate " + negotiate_reply;
  return r;
}

Response Handlers::Reject(const RouteMatch& match, const Request& request, const vault::Caller& caller,
                          const Status& status, std::string claimed_principal) const {
  vault::AuditTarget target = AuditTargetOf(match, request);
  target.claimed_principal = std::move(claimed_principal);
  Status audited = vault_->AuditRejected(caller, target, status);
  return StatusResponse(audited.ok() ? status : audited, request.request_id);
}

vault::AuditTarget AuditTargetOf(const RouteMatch& match, const Request& request) {
  vault::AuditTarget target;
  target.action = AuditActionOf(match.route);
  std::string_view path = request.path;
  if (path.starts_with("/v1/")) path.remove_prefix(4);
  if (path.starts_with("t/") && match.param_count > 0) {
    target.tenant = std::string(match.params[0]);
    path.remove_prefix(2 + match.params[0].size());
    if (path.starts_with("/")) path.remove_prefix(1);
  } else if (match.route == RouteId::kGetTenant || match.route == RouteId::kDeleteTenant ||
             match.route == RouteId::kRotateTenantKey || match.route == RouteId::kGetTenantKeyRotation) {
    target.tenant = std::string(match.params[0]);
  }
  target.resource = std::string(path);
  return target;
}

std::string_view AuditActionOf(RouteId route) {
  namespace a = vault::actions;
  switch (route) {
    case RouteId::kHealth:
    case RouteId::kSealStatus:
      return "";
    case RouteId::kInit:
      return a::kInit;
    case RouteId::kUnseal:
      return a::kUnseal;
    case RouteId::kSeal:
      return a::kSeal;
    case RouteId::kRotateKek:
      return a::kKekRotate;
    case RouteId::kListKeys:
      return a::kKeysRead;
    case RouteId::kWhoami:
      return a::kWhoami;
    case RouteId::kCreateTenant:
      return a::kTenantCreate;
    case RouteId::kListTenants:
      return a::kTenantList;
    case RouteId::kGetTenant:
      return a::kTenantRead;
    case RouteId::kDeleteTenant:
      return a::kTenantDelete;
    case RouteId::kRotateTenantKey:
      return a::kDataKeyRotate;
    case RouteId::kGetTenantKeyRotation:
      return a::kDataKeyRotationRead;
    case RouteId::kListCollections:
      return a::kCollectionList;
    case RouteId::kPutCollection:
      return a::kCollectionWrite;
    case RouteId::kGetCollection:
      return a::kCollectionRead;
    case RouteId::kListRoles:
      return a::kRoleList;
    case RouteId::kPutRole:
      return a::kRoleWrite;
    case RouteId::kGetRole:
      return a::kRoleRead;
    case RouteId::kDeleteRole:
      return a::kRoleDelete;
    case RouteId::kCreateApiKey:
      return a::kApiKeyCreate;
    case RouteId::kListApiKeys:
      return a::kApiKeyList;
    case RouteId::kRevokeApiKey:
      return a::kApiKeyRevoke;
    case RouteId::kCreateRecord:
      return a::kRecordCreate;
    case RouteId::kFindRecords:
      return a::kRecordFind;
    case RouteId::kGetRecord:
      return a::kRecordRead;
    case RouteId::kUpdateRecord:
      return a::kRecordUpdate;
    case RouteId::kDeleteRecord:
      return a::kRecordDelete;
    case RouteId::kListVersions:
      return a::kRecordVersions;
    case RouteId::kTenantAudit:
    case RouteId::kSysAudit:
      return a::kAuditRead;
    case RouteId::kAuditCheckpoints:
    case RouteId::kAuditProof:
    case RouteId::kAuditConsistency:
    case RouteId::kAuditPubkey:
      return a::kAuditProof;
    case RouteId::kLogin:
      return a::kLogin;
    case RouteId::kKerberosLogin:
      return a::kKerberosLogin;
    case RouteId::kLogout:
      return a::kLogout;
    case RouteId::kChangePassword:
      return a::kPasswordChange;
    case RouteId::kStepUp:
      return a::kStepUp;
    case RouteId::kTotpEnroll:
      return a::kTotpEnroll;
    case RouteId::kTotpConfirm:
      return a::kTotpConfirm;
    case RouteId::kCreateUser:
    case RouteId::kCreateStaff:
      return a::kUserCreate;
    case RouteId::kListUsers:
    case RouteId::kListStaff:
      return a::kUserList;
    case RouteId::kGetUser:
    case RouteId::kGetStaff:
      return a::kUserRead;
    case RouteId::kUpdateUser:
    case RouteId::kUpdateStaff:
      return a::kUserUpdate;
    case RouteId::kDeleteUser:
    case RouteId::kDeleteStaff:
      return a::kUserDelete;
    case RouteId::kRevokeUserSessions:
    case RouteId::kRevokeStaffSessions:
      return a::kSessionRevoke;
    case RouteId::kGetTenantAuthPolicy:
    case RouteId::kGetStaffAuthPolicy:
      return a::kAuthPolicyRead;
    case RouteId::kPutTenantAuthPolicy:
    case RouteId::kPutStaffAuthPolicy:
      return a::kAuthPolicyWrite;
    case RouteId::kRevokeRootToken:
      return a::kRootTokenRevoke;
    case RouteId::kCreateAccessRequest:
      return a::kAccessRequest;
    case RouteId::kListAccessRequests:
      return a::kAccessList;
    case RouteId::kGetAccessRequest:
      return a::kAccessRead;
    case RouteId::kApproveAccessRequest:
      return a::kAccessApprove;
    case RouteId::kDenyAccessRequest:
      return a::kAccessDeny;
    case RouteId::kRevokeAccessRequest:
      return a::kAccessRevoke;
    case RouteId::kGetLockboxPolicy:
      return a::kLockboxPolicyRead;
    case RouteId::kPutLockboxPolicy:
      return a::kLockboxPolicyWrite;
  }
  return "";
}

Response Handlers::Dispatch(const RouteMatch& match, const Request& request, const vault::Caller& caller) const {
  const RouteTraits& traits = match.traits;
  const std::string_view id = request.request_id;
  auto reject = [&](const Status& status) { return Reject(match, request, caller, status); };
  QueryParams query;
  if (Status s = ParseQuery(request.query, traits, &query); !s.ok()) return reject(s);
  std::optional<std::int64_t> if_match;
  if (traits.if_match) {
    Result<std::optional<std::int64_t>> parsed = ParseIfMatch(request.if_match);
    if (!parsed.ok()) return reject(parsed.status());
    if_match = *parsed;
  }
  json body;
  if (traits.body) {
    Result<json> parsed = ParseBody(request);
    if (!parsed.ok()) return reject(parsed.status());
    body = std::move(parsed).value();
  }

  const auto& p = match.params;
  const std::string t(p[0]);
  Result<vault::Reply> result = InternalError("route without a handler");
  switch (match.route) {
    case RouteId::kHealth:
    case RouteId::kSealStatus:
      break;  // answered above
    case RouteId::kInit:
      result = vault_->Initialize(caller.context, body);
      break;
    case RouteId::kUnseal:
      result = vault_->Unseal(caller.context, body);
      break;
    case RouteId::kSeal:
      result = vault_->Seal(caller);
      break;
    case RouteId::kRotateKek:
      result = vault_->RotateKek(caller);
      break;
    case RouteId::kListKeys:
      result = vault_->ListKeys(caller);
      break;
    case RouteId::kWhoami:
      result = vault_->Whoami(caller);
      break;
    case RouteId::kCreateTenant:
      result = vault_->CreateTenant(caller, body);
      break;
    case RouteId::kListTenants:
      result = vault_->ListTenants(caller, Page(query));
      break;
    case RouteId::kGetTenant:
      result = vault_->GetTenant(caller, t);
      break;
    case RouteId::kDeleteTenant:
      result = vault_->DeleteTenant(caller, t);
      break;
    case RouteId::kRotateTenantKey:
      result = vault_->RotateTenantKey(caller, t);
      break;
    case RouteId::kGetTenantKeyRotation:
      result = vault_->GetTenantKeyRotation(caller, t);
      break;
    case RouteId::kListCollections:
      result = vault_->ListCollections(caller, t);
      break;
    case RouteId::kPutCollection:
      result = vault_->PutCollection(caller, t, std::string(p[1]), body);
      break;
    case RouteId::kGetCollection:
      result = vault_->GetCollection(caller, t, std::string(p[1]));
      break;
    case RouteId::kListRoles:
      result = vault_->ListRoles(caller, t);
      break;
    case RouteId::kPutRole:
      result = vault_->PutRole(caller, t, std::string(p[1]), body);
      break;
    case RouteId::kGetRole:
      result = vault_->GetRole(caller, t, std::string(p[1]));
      break;
    case RouteId::kDeleteRole:
      result = vault_->DeleteRole(caller, t, std::string(p[1]));
      break;
    case RouteId::kCreateApiKey:
      result = vault_->CreateApiKey(caller, t, body);
      break;
    case RouteId::kListApiKeys:
      result = vault_->ListApiKeys(caller, t);
      break;
    case RouteId::kRevokeApiKey:
      result = vault_->RevokeApiKey(caller, t, std::string(p[1]));
      break;
    case RouteId::kCreateRecord:
      result = vault_->CreateRecord(caller, t, std::string(p[1]), body);
      break;
    case RouteId::kFindRecords:
      result = vault_->FindRecords(caller, t, std::string(p[1]), query.filters, Page(query));
      break;
    case RouteId::kGetRecord:
      result = vault_->GetRecord(caller, t, std::string(p[1]), std::string(p[2]), query.version);
      break;
    case RouteId::kUpdateRecord:
      result = vault_->UpdateRecord(caller, t, std::string(p[1]), std::string(p[2]), body, if_match);
      break;
    case RouteId::kDeleteRecord:
      result = vault_->DeleteRecord(caller, t, std::string(p[1]), std::string(p[2]));
      break;
    case RouteId::kListVersions:
      result = vault_->ListVersions(caller, t, std::string(p[1]), std::string(p[2]));
      break;
    case RouteId::kTenantAudit:
      result = vault_->TenantAuditTrail(caller, t, query.filters);
      break;
    case RouteId::kSysAudit:
      result = vault_->SystemAuditTrail(caller, query.filters);
      break;
    case RouteId::kAuditCheckpoints:
      result = vault_->ListCheckpoints(caller, query.filters);
      break;
    case RouteId::kAuditProof:
      result = vault_->InclusionProof(caller, t, query.filters);
      break;
    case RouteId::kAuditConsistency:
      result = vault_->ConsistencyProof(caller, query.filters);
      break;
    case RouteId::kAuditPubkey:
      result = vault_->AuditPublicKey(caller);
      break;
    case RouteId::kLogin:
      result = vault_->Login(caller.context, body);
      break;
    case RouteId::kKerberosLogin:
      result = vault_->KerberosLogin(caller);
      break;
    case RouteId::kLogout:
      result = vault_->Logout(caller);
      break;
    case RouteId::kChangePassword:
      result = vault_->ChangePassword(caller, body);
      break;
    case RouteId::kStepUp:
      result = vault_->StepUp(caller, body);
      break;
    case RouteId::kTotpEnroll:
      result = vault_->TotpEnroll(caller);
      break;
    case RouteId::kTotpConfirm:
      result = vault_->TotpConfirm(caller, body);
      break;
    case RouteId::kCreateUser:
      result = vault_->CreateUser(caller, t, body);
      break;
    case RouteId::kListUsers:
      result = vault_->ListUsers(caller, t, Page(query));
      break;
    case RouteId::kGetUser:
      result = vault_->GetUser(caller, t, std::string(p[1]));
      break;
    case RouteId::kUpdateUser:
      result = vault_->UpdateUser(caller, t, std::string(p[1]), body);
      break;
    case RouteId::kDeleteUser:
      result = vault_->DeleteUser(caller, t, std::string(p[1]));
      break;
    case RouteId::kRevokeUserSessions:
      result = vault_->RevokeUserSessions(caller, t, std::string(p[1]));
      break;
    // Staff: the same calls with no tenant.
    case RouteId::kCreateStaff:
      result = vault_->CreateUser(caller, "", body);
      break;
    case RouteId::kListStaff:
      result = vault_->ListUsers(caller, "", Page(query));
      break;
    case RouteId::kGetStaff:
      result = vault_->GetUser(caller, "", t);
      break;
    case RouteId::kUpdateStaff:
      result = vault_->UpdateUser(caller, "", t, body);
      break;
    case RouteId::kDeleteStaff:
      result = vault_->DeleteUser(caller, "", t);
      break;
    case RouteId::kRevokeStaffSessions:
      result = vault_->RevokeUserSessions(caller, "", t);
      break;
    case RouteId::kGetTenantAuthPolicy:
      result = vault_->GetAuthPolicy(caller, t);
      break;
    case RouteId::kPutTenantAuthPolicy:
      result = vault_->PutAuthPolicy(caller, t, body);
      break;
    case RouteId::kGetStaffAuthPolicy:
      result = vault_->GetAuthPolicy(caller, "");
      break;
    case RouteId::kPutStaffAuthPolicy:
      result = vault_->PutAuthPolicy(caller, "", body);
      break;
    case RouteId::kRevokeRootToken:
      result = vault_->RevokeRootToken(caller);
      break;
    case RouteId::kCreateAccessRequest:
      result = vault_->CreateAccessRequest(caller, body);
      break;
    case RouteId::kListAccessRequests:
      result = vault_->ListAccessRequests(caller, t, query.filters, Page(query));
      break;
    case RouteId::kGetAccessRequest:
      result = vault_->GetAccessRequest(caller, t, std::string(p[1]));
      break;
    case RouteId::kApproveAccessRequest:
      result = vault_->ApproveAccessRequest(caller, t, std::string(p[1]), body);
      break;
    case RouteId::kDenyAccessRequest:
      result = vault_->DenyAccessRequest(caller, t, std::string(p[1]), body);
      break;
    case RouteId::kRevokeAccessRequest:
      result = vault_->RevokeAccessRequest(caller, t, std::string(p[1]));
      break;
    case RouteId::kGetLockboxPolicy:
      result = vault_->GetLockboxPolicy(caller, t);
      break;
    case RouteId::kPutLockboxPolicy:
      result = vault_->PutLockboxPolicy(caller, t, body);
      break;
  }
  Response response = FromResult(result, id);
  // What the request sent (passwords, shares, record data) and what the
  // reply carries (new tokens and keys, decrypted records) is in the
  // response text now or no longer needed: wiped before it is released.
  WipeJsonStrings(body);
  if (result.ok()) {
    WipeJsonStrings(result->body);
    Wipe(result->body_text);
  }
  return response;
}

}  // namespace kura::http
