// Router: maps (method, path) to one of kura's routes. Pure logic, no I/O;
// internal to the http module.
//
// Thread safety: immutable after construction; Match() is safe from any thread.
#ifndef KURA_HTTP_ROUTER_H_
#define KURA_HTTP_ROUTER_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kura::http {

enum class Method : std::uint8_t { kGet, kPost, kPut, kDelete, kHead, kOther };

enum class RouteId : std::uint8_t {
  kHealth,
  kSealStatus,
  kInit,
  kUnseal,
  kSeal,
  kRotateKek,
  kListKeys,
  kWhoami,
  kCreateTenant,
  kListTenants,
  kGetTenant,
  kDeleteTenant,
  kRotateTenantKey,
  kGetTenantKeyRotation,
  kListCollections,
  kPutCollection,
  kGetCollection,
  kListRoles,
  kPutRole,
  kGetRole,
  kDeleteRole,
  kCreateApiKey,
  kListApiKeys,
  kRevokeApiKey,
  kCreateRecord,
  kFindRecords,
  kGetRecord,
  kUpdateRecord,
  kDeleteRecord,
  kListVersions,
  kTenantAudit,
  kSysAudit,
  kAuditCheckpoints,
  kAuditProof,
  kAuditConsistency,
  kAuditPubkey,
  kLogin,
  kKerberosLogin,
  kLogout,
  kChangePassword,
  kStepUp,
  kTotpEnroll,
  kTotpConfirm,
  kCreateUser,
  kListUsers,
  kGetUser,
  kUpdateUser,
  kDeleteUser,
  kRevokeUserSessions,
  kCreateStaff,
  kListStaff,
  kGetStaff,
  kUpdateStaff,
  kDeleteStaff,
  kRevokeStaffSessions,
  kGetTenantAuthPolicy,
  kPutTenantAuthPolicy,
  kGetStaffAuthPolicy,
  kPutStaffAuthPolicy,
  kRevokeRootToken,
  kCreateAccessRequest,
  kListAccessRequests,
  kGetAccessRequest,
  kApproveAccessRequest,
  kDenyAccessRequest,
  kRevokeAccessRequest,
  kGetLockboxPolicy,
  kPutLockboxPolicy,
};

// What a route needs from the transport.
struct RouteTraits {
  bool auth = true;             // needs a bearer token
  bool allowed_sealed = false;  // answers while sealed (sys routes)
  bool body = false;            // takes a JSON object body
  bool paging = false;          // accepts ?limit=&after=
  bool version = false;         // accepts ?version=N
  bool filters = false;         // accepts ?<field>=<value>
  bool if_match = false;        // honours If-Match
  bool all_params = false;      // every query parameter goes to filters (the vault parses them)
  // A restricted session (expired password, TOTP enrolment due) may call it:
  // the routes that let the user finish signing in.
  bool restricted_ok = false;
  // Also answers HEAD, as its GET without the content (RFC 9110 §9.3.2): the
  // probes' routes, which read no tenant data and are not audited, so a load
  // balancer's HEAD check works as it does against Vault's sys/health.
  bool head = false;
};

struct RouteMatch {
  enum class Kind : std::uint8_t {
    kFound,
    kNotFound,          // no pattern matches the path: 404
    kMethodNotAllowed,  // a pattern matches but not for this method: 405 + Allow
    kBadParameter,      // a path parameter is not a URL-safe id: 400
  };
  Kind kind = Kind::kNotFound;
  RouteId route = RouteId::kHealth;
  RouteTraits traits;
  std::string_view pattern;  // e.g. "/v1/t/{t}/collections/{c}" (static storage)
  std::string_view allow;    // kMethodNotAllowed: "GET, PUT" (static storage)
  // Path parameters in pattern order; they view the matched path.
  std::array<std::string_view, 3> params{};
  int param_count = 0;
};

class Router {
 public:
  // The routes of this milestone (see vault/vault.h and the README).
  Router();

  // `path` is the request target without the query string.
  RouteMatch Match(Method method, std::string_view path) const;

 private:
  static constexpr int kMaxSegments = 8;
  struct Entry {
    Method method;
    RouteId route;
    RouteTraits traits;
    std::string_view pattern;
    std::array<std::string_view, kMaxSegments> segments{};  // "{…}" marks a parameter
    int segment_count = 0;
    std::string_view allow;  // every method of this pattern
  };
  std::vector<Entry> entries_;
  std::vector<std::string> allow_storage_;  // backs Entry::allow
};

std::string_view MethodName(Method method);

// Ids and names in paths: 1–128 characters of [A-Za-z0-9_-] (base64url and
// kura names). Anything else (including '%'-escapes) is refused with 400, so
// no decoded byte of a path ever reaches the vault.
bool IsUrlSafeId(std::string_view segment);

}  // namespace kura::http

#endif  // KURA_HTTP_ROUTER_H_
