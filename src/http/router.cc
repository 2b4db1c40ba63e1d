#include "http/router.h"

#include <map>
#include <string>

namespace kura::http {
namespace {

struct Spec {
  Method method;
  std::string_view pattern;
  RouteId route;
  RouteTraits traits;
};

constexpr RouteTraits kProbe{.auth = false, .allowed_sealed = true, .head = true};
constexpr RouteTraits kOpenBody{.auth = false, .allowed_sealed = true, .body = true};
constexpr RouteTraits kAuth{};
constexpr RouteTraits kAuthBody{.body = true};
constexpr RouteTraits kPaged{.paging = true};
constexpr RouteTraits kParams{.all_params = true};
constexpr RouteTraits kSignIn{.auth = false, .body = true};
constexpr RouteTraits kFinishSignIn{.restricted_ok = true};
constexpr RouteTraits kFinishSignInBody{.body = true, .restricted_ok = true};

// The table: one line per (method, pattern). Order does not matter: patterns
// never overlap (a literal segment never sits where another pattern has a
// parameter at the same depth with the same tail).
const Spec kSpecs[] = {
    {Method::kGet, "/v1/sys/health", RouteId::kHealth, kProbe},
    {Method::kGet, "/v1/sys/seal-status", RouteId::kSealStatus, kProbe},
    {Method::kPost, "/v1/sys/init", RouteId::kInit, kOpenBody},
    {Method::kPost, "/v1/sys/unseal", RouteId::kUnseal, kOpenBody},
    {Method::kPost, "/v1/sys/seal", RouteId::kSeal, kAuth},
    {Method::kPost, "/v1/sys/rotate", RouteId::kRotateKek, kAuth},
    {Method::kGet, "/v1/sys/keys", RouteId::kListKeys, kAuth},
    {Method::kGet, "/v1/whoami", RouteId::kWhoami, kFinishSignIn},
    {Method::kPost, "/v1/auth/login", RouteId::kLogin, kSignIn},
    {Method::kGet, "/v1/auth/kerberos", RouteId::kKerberosLogin, kAuth},
    {Method::kPost, "/v1/auth/logout", RouteId::kLogout, kFinishSignIn},
    {Method::kPost, "/v1/auth/password", RouteId::kChangePassword, kFinishSignInBody},
    {Method::kPost, "/v1/auth/step-up", RouteId::kStepUp, kAuthBody},
    {Method::kPost, "/v1/auth/totp/enroll", RouteId::kTotpEnroll, kFinishSignIn},
    {Method::kPost, "/v1/auth/totp/confirm", RouteId::kTotpConfirm, kFinishSignInBody},
    {Method::kPost, "/v1/t/{t}/users", RouteId::kCreateUser, kAuthBody},
    {Method::kGet, "/v1/t/{t}/users", RouteId::kListUsers, kPaged},
    {Method::kGet, "/v1/t/{t}/users/{u}", RouteId::kGetUser, kAuth},
    {Method::kPut, "/v1/t/{t}/users/{u}", RouteId::kUpdateUser, kAuthBody},
    {Method::kDelete, "/v1/t/{t}/users/{u}", RouteId::kDeleteUser, kAuth},
    {Method::kDelete, "/v1/t/{t}/users/{u}/sessions", RouteId::kRevokeUserSessions, kAuth},
    {Method::kPost, "/v1/sys/staff", RouteId::kCreateStaff, kAuthBody},
    {Method::kGet, "/v1/sys/staff", RouteId::kListStaff, kPaged},
    {Method::kGet, "/v1/sys/staff/{u}", RouteId::kGetStaff, kAuth},
    {Method::kPut, "/v1/sys/staff/{u}", RouteId::kUpdateStaff, kAuthBody},
    {Method::kDelete, "/v1/sys/staff/{u}", RouteId::kDeleteStaff, kAuth},
    {Method::kDelete, "/v1/sys/staff/{u}/sessions", RouteId::kRevokeStaffSessions, kAuth},
    {Method::kGet, "/v1/t/{t}/auth-policy", RouteId::kGetTenantAuthPolicy, kAuth},
    {Method::kPut, "/v1/t/{t}/auth-policy", RouteId::kPutTenantAuthPolicy, kAuthBody},
    {Method::kGet, "/v1/sys/auth-policy", RouteId::kGetStaffAuthPolicy, kAuth},
    {Method::kPut, "/v1/sys/auth-policy", RouteId::kPutStaffAuthPolicy, kAuthBody},
    {Method::kDelete, "/v1/sys/root-token", RouteId::kRevokeRootToken, kAuth},
    {Method::kPost, "/v1/access-requests", RouteId::kCreateAccessRequest, kAuthBody},
    {Method::kGet, "/v1/t/{t}/access-requests", RouteId::kListAccessRequests,
     RouteTraits{.paging = true, .filters = true}},
    {Method::kGet, "/v1/t/{t}/access-requests/{id}", RouteId::kGetAccessRequest, kAuth},
    {Method::kPost, "/v1/t/{t}/access-requests/{id}/approve", RouteId::kApproveAccessRequest, kAuthBody},
    {Method::kPost, "/v1/t/{t}/access-requests/{id}/deny", RouteId::kDenyAccessRequest, kAuthBody},
    {Method::kDelete, "/v1/t/{t}/access-requests/{id}", RouteId::kRevokeAccessRequest, kAuth},
    {Method::kGet, "/v1/t/{t}/lockbox", RouteId::kGetLockboxPolicy, kAuth},
    {Method::kPut, "/v1/t/{t}/lockbox", RouteId::kPutLockboxPolicy, kAuthBody},
    {Method::kPost, "/v1/tenants", RouteId::kCreateTenant, kAuthBody},
    {Method::kGet, "/v1/tenants", RouteId::kListTenants, kPaged},
    {Method::kGet, "/v1/tenants/{t}", RouteId::kGetTenant, kAuth},
    {Method::kDelete, "/v1/tenants/{t}", RouteId::kDeleteTenant, kAuth},
    {Method::kPost, "/v1/tenants/{t}/rotate-key", RouteId::kRotateTenantKey, kAuth},
    {Method::kGet, "/v1/tenants/{t}/rotate-key", RouteId::kGetTenantKeyRotation, kAuth},
    {Method::kGet, "/v1/t/{t}/collections", RouteId::kListCollections, kAuth},
    {Method::kPut, "/v1/t/{t}/collections/{c}", RouteId::kPutCollection, kAuthBody},
    {Method::kGet, "/v1/t/{t}/collections/{c}", RouteId::kGetCollection, kAuth},
    {Method::kGet, "/v1/t/{t}/roles", RouteId::kListRoles, kAuth},
    {Method::kPut, "/v1/t/{t}/roles/{r}", RouteId::kPutRole, kAuthBody},
    {Method::kGet, "/v1/t/{t}/roles/{r}", RouteId::kGetRole, kAuth},
    {Method::kDelete, "/v1/t/{t}/roles/{r}", RouteId::kDeleteRole, kAuth},
    {Method::kPost, "/v1/t/{t}/apikeys", RouteId::kCreateApiKey, kAuthBody},
    {Method::kGet, "/v1/t/{t}/apikeys", RouteId::kListApiKeys, kAuth},
    {Method::kDelete, "/v1/t/{t}/apikeys/{id}", RouteId::kRevokeApiKey, kAuth},
    {Method::kPost, "/v1/t/{t}/collections/{c}/records", RouteId::kCreateRecord, kAuthBody},
    {Method::kGet, "/v1/t/{t}/collections/{c}/records", RouteId::kFindRecords,
     RouteTraits{.paging = true, .filters = true}},
    {Method::kGet, "/v1/t/{t}/collections/{c}/records/{id}", RouteId::kGetRecord, RouteTraits{.version = true}},
    {Method::kPut, "/v1/t/{t}/collections/{c}/records/{id}", RouteId::kUpdateRecord,
     RouteTraits{.body = true, .if_match = true}},
    {Method::kDelete, "/v1/t/{t}/collections/{c}/records/{id}", RouteId::kDeleteRecord, kAuth},
    {Method::kGet, "/v1/t/{t}/collections/{c}/records/{id}/versions", RouteId::kListVersions, kAuth},
    {Method::kGet, "/v1/t/{t}/audit", RouteId::kTenantAudit, kParams},
    {Method::kGet, "/v1/sys/audit", RouteId::kSysAudit, kParams},
    {Method::kGet, "/v1/sys/audit/checkpoints", RouteId::kAuditCheckpoints, kParams},
    {Method::kGet, "/v1/sys/audit/proof/{seq}", RouteId::kAuditProof, kParams},
    {Method::kGet, "/v1/sys/audit/consistency", RouteId::kAuditConsistency, kParams},
    {Method::kGet, "/v1/sys/audit/pubkey", RouteId::kAuditPubkey, kAuth},
};

// Splits "/a/b/c" into {"a","b","c"}; false when there are too many segments
// or the path does not start with '/'. Empty segments are kept (and then
// match nothing), so "/v1/tenants/" is not "/v1/tenants".
template <std::size_t N>
bool Split(std::string_view path, std::array<std::string_view, N>* out, int* count) {
  if (path.empty() || path[0] != '/') return false;
  *count = 0;
  std::size_t pos = 1;
  for (;;) {
    if (*count == static_cast<int>(N)) return false;
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) {
      (*out)[(*count)++] = path.substr(pos);
      return true;
    }
    (*out)[(*count)++] = path.substr(pos, slash - pos);
    pos = slash + 1;
  }
}

bool IsParam(std::string_view segment) { return !segment.empty() && segment.front() == '{'; }

}  // namespace

std::string_view MethodName(Method method) {
  switch (method) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kDelete:
      return "DELETE";
    case Method::kHead:
      return "HEAD";
    case Method::kOther:
      return "OTHER";
  }
  return "OTHER";
}

bool IsUrlSafeId(std::string_view segment) {
  if (segment.empty() || segment.size() > 128) return false;
  for (char ch : segment) {
    const bool ok =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

Router::Router() {
  std::map<std::string_view, std::string> allow;
  for (const Spec& spec : kSpecs) {
    std::string& a = allow[spec.pattern];
    if (!a.empty()) a += ", ";
    a += MethodName(spec.method);
    if (spec.traits.head) a += ", HEAD";
  }
  allow_storage_.reserve(allow.size());
  std::map<std::string_view, std::string_view> allow_view;
  for (auto& [pattern, methods] : allow) {
    allow_storage_.push_back(methods);
    allow_view[pattern] = allow_storage_.back();
  }
  for (const Spec& spec : kSpecs) {
    Entry e;
    e.method = spec.method;
    e.route = spec.route;
    e.traits = spec.traits;
    e.pattern = spec.pattern;
    e.allow = allow_view[spec.pattern];
    const bool ok = Split(spec.pattern, &e.segments, &e.segment_count);
    if (!ok) std::abort();  // a broken table is a programming error
    entries_.push_back(e);
  }
}

RouteMatch Router::Match(Method method, std::string_view path) const {
  RouteMatch result;
  std::array<std::string_view, kMaxSegments> segments;
  int count = 0;
  if (!Split(path, &segments, &count)) return result;  // kNotFound

  for (const Entry& e : entries_) {
    if (e.segment_count != count) continue;
    bool match = true;
    for (int i = 0; i < count && match; ++i) {
      if (IsParam(e.segments[i])) {
        match = !segments[i].empty();
      } else {
        match = e.segments[i] == segments[i];
      }
    }
    if (!match) continue;
    if (e.method != method && !(method == Method::kHead && e.method == Method::kGet && e.traits.head)) {
      result.kind = RouteMatch::Kind::kMethodNotAllowed;
      result.pattern = e.pattern;
      result.allow = e.allow;
      continue;
    }
    result.kind = RouteMatch::Kind::kFound;
    result.route = e.route;
    result.traits = e.traits;
    result.pattern = e.pattern;
    result.allow = e.allow;
    result.param_count = 0;
    for (int i = 0; i < count; ++i) {
      if (!IsParam(e.segments[i])) continue;
      if (!IsUrlSafeId(segments[i])) {
        result.kind = RouteMatch::Kind::kBadParameter;
        return result;
      }
      result.params[result.param_count++] = segments[i];
    }
    return result;
  }
  return result;
}

}  // namespace kura::http
