// Handlers: turn a routed request into vault calls and the vault's answer into
// a Response. They translate, never decide: rights, validation of bodies and
// everything else about data is the vault's. Internal to the http module.
//
// Thread safety: const and stateless apart from the vault pointer; Handle()
// may run concurrently on I/O threads (health, seal status) and on the
// blocking pool (everything audited).
#ifndef KURA_HTTP_HANDLERS_H_
#define KURA_HTTP_HANDLERS_H_

#include <string>
#include <string_view>

#include "http/response.h"
#include "http/router.h"

#include "vault/vault.h"

namespace kura::http {

// The transport's view of one request. Every field views memory owned by the
// connection, which outlives the call.
struct Request {
  Method method = Method::kOther;
  std::string_view path;           // without the query string
  std::string_view query;          // after '?', still percent-encoded
  std::string_view authorization;  // raw header value
  std::string_view content_type;
  std::string_view if_match;
  std::string_view reason;  // X-Kura-Reason
  std::string_view body;
  std::string_view request_id;
  std::string_view client_address;
};

constexpr std::size_t kMaxReasonBytes = 256;

class Handlers {
 public:
  // `vault` must outlive the handlers.
  explicit Handlers(vault::Vault* vault) : vault_(vault) {}
  const vault::Vault& vault() const { return *vault_; }
  // Reads ahead the record of a kGetRecord match (vault::RecordPrefetch).
  void PrefetchRecord(const RouteMatch& match, std::function<void(std::unique_ptr<vault::RecordPrefetch>)> done) const {
    vault_->PrefetchRecord(std::string(match.params[0]), std::string(match.params[1]), std::string(match.params[2]),
                           std::move(done));
  }

  // Answers a request whose route was found (match.kind == kFound). Runs the
  // vault call on the calling thread: audited routes block until their entry
  // (and change) is durable, so the server calls this for them on its
  // blocking pool — or, for record reads and creates when the vault
  // ServesInline(), on its I/O thread under a vault::AuditDeferral.
  // `draining`: the server is shutting down (health then says not ready).
  Response Handle(const RouteMatch& match, const Request& request, bool draining) const;

 private:
  // A refusal before the vault call: audited first (under
  // `claimed_principal` when no principal was established but the request
  // proved a name, e.g. a valid Kerberos ticket); 503 instead when its entry
  // cannot be made durable.
  Response Reject(const RouteMatch& match, const Request& request, const vault::Caller& caller,
                  const Status& status, std::string claimed_principal = "") const;
  // Everything after authentication: query, If-Match, body, the vault call.
  Response Dispatch(const RouteMatch& match, const Request& request, const vault::Caller& caller) const;

  vault::Vault* vault_;
};

// The answer for a route that was not found: 404 not_found, 405
// method_not_allowed (+ Allow), or 400 for a path parameter that is not a
// URL-safe id.
Response RouteErrorResponse(const RouteMatch& match, std::string_view request_id);

// What a request refused before the vault call is about, for its audit entry:
// the route's action, the tenant of the path, and the path after "/v1/"
// without "t/{tenant}/".
vault::AuditTarget AuditTargetOf(const RouteMatch& match, const Request& request);
std::string_view AuditActionOf(RouteId route);

}  // namespace kura::http

#endif  // KURA_HTTP_HANDLERS_H_
