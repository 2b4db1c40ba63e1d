// The CLI's view of the server: one JSON request, one response, over HTTPS.
//
// Transport is an interface so command tests can record requests and answer
// them without a server; MakeCurlTransport() is the real one (libcurl, TLS
// verified against --cacert / KURA_CACERT or the system trust store).
//
// Also home of the exit codes scripts rely on (docs/cli.md) and the mapping
// from HTTP statuses to them.
//
// Thread safety: a Transport is used from one thread.
#ifndef KURA_CLI_CLIENT_H_
#define KURA_CLI_CLIENT_H_

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kura::cli {

// Process exit codes; a contract with scripts, never renumber.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,             // anything not listed below (HTTP 5xx other than 503, 405, 429…)
  kExitUsage = 2,             // bad command line or local input
  kExitUnauthenticated = 3,   // HTTP 401
  kExitPermissionDenied = 4,  // HTTP 403
  kExitNotFound = 5,          // HTTP 404
  kExitConflict = 6,          // HTTP 409
  kExitUnavailable = 7,       // HTTP 503: sealed or unavailable
  kExitInvalidInput = 8,      // HTTP 400, 413, 422
  kExitConnect = 9,           // cannot connect, TLS failure, timeout
  kExitTampered = 10,         // audit verification failed: the log or a checkpoint is not what was signed
};

// The exit code for a completed HTTP exchange with this status.
int ExitCodeForHttpStatus(long status);

struct ClientOptions {
  std::string addr;    // "https://host:port"; http:// only to a loopback host
  std::string token;   // bearer token; empty = send none
  std::string cacert;  // PEM file of the CA to trust; empty = system store
  // Authenticate with Kerberos (SPNEGO, RFC 4559) from the user's ticket cache
  // (KRB5CCNAME) instead of the bearer token, which is then not sent.
  // Credentials are never delegated to the server.
  bool negotiate = false;
};

struct Request {
  std::string method;                      // GET | POST | PUT | DELETE
  std::string path;                        // "/v1/…", already escaped, may carry "?query"
  std::optional<nlohmann::json> body;      // sent as application/json
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends one request. Any HTTP status is a Response; Unavailable only when no
  // HTTP answer was received (connect, TLS, timeout).
  virtual Result<Response> Send(const Request& request) = 0;
};

// Checks the options (InvalidArgument for a malformed address, or plain HTTP to
// a host that is not loopback) and returns a libcurl transport.
Result<std::unique_ptr<Transport>> MakeCurlTransport(const ClientOptions& options);

// Percent-escapes one path segment or query component (RFC 3986 unreserved kept).
std::string EscapeComponent(std::string_view text);

// One line for stderr describing a failed response: the server's error
// message, code and request id when the body has the error model, otherwise
// the status and a short excerpt of the body.
std::string DescribeErrorResponse(const Response& response);

}  // namespace kura::cli

#endif  // KURA_CLI_CLIENT_H_
