#include "cli/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "cli/output.h"

namespace kura::cli {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "[::1]" || host == "::1" || host.starts_with("127.");
}

struct UrlParts {
  std::string scheme;
  std::string host;
  std::string base;  // scheme://host[:port][/prefix] without a trailing '/'
};

Result<UrlParts> ParseAddr(const std::string& addr) {
  UrlParts parts;
  CURLU* url = curl_url();
  if (url == nullptr) return InternalError("out of memory");
  auto cleanup = [url] { curl_url_cleanup(url); };
  // No default scheme: an address without https:// is a mistake worth reporting.
  if (curl_url_set(url, CURLUPART_URL, addr.c_str(), 0) != CURLUE_OK) {
    cleanup();
    return InvalidArgumentError("address \"" + addr + "\" is not a URL such as https://127.0.0.1:8443");
  }
  char* scheme = nullptr;
  char* host = nullptr;
  if (curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) parts.scheme = scheme;
  if (curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK) parts.host = host;
  curl_free(scheme);
  curl_free(host);
  cleanup();
  std::transform(parts.scheme.begin(), parts.scheme.end(), parts.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (parts.scheme != "https" && parts.scheme != "http") {
    return InvalidArgumentError("address \"" + addr + "\" must start with https://");
  }
  if (parts.host.empty()) return InvalidArgumentError("address \"" + addr + "\" has no host");
  // A bearer token over plain HTTP can be read by anyone on the path; the
  // server offers plain HTTP only in dev mode on loopback, so the client
  // refuses everything else rather than leak the token.
  if (parts.scheme == "http" && !IsLoopbackHost(parts.host)) {
    return InvalidArgumentError("refusing to send credentials over plain HTTP to \"" + parts.host +
                                "\"; use https://");
  }
  parts.base = addr;
  while (!parts.base.empty() && parts.base.back() == '/') parts.base.pop_back();
  return parts;
}

std::size_t WriteBody(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::size_t WriteHeader(char* data, std::size_t size, std::size_t n, void* user) {
  std::string_view line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = std::string(value);
  }
  return size * n;
}

class CurlTransport : public Transport {
 public:
  CurlTransport(ClientOptions options, UrlParts parts) : options_(std::move(options)), parts_(std::move(parts)) {}

  Result<Response> Send(const Request& request) override {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return InternalError("cannot initialise libcurl");
    Response response;
    std::string url = parts_.base + request.path;
    std::string body_text;
    curl_slist* headers = nullptr;
    char error[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method == "GET") curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
    // Redirects are not followed: a token must only ever go to the address the
    // operator configured (a 307 to another region is reported instead).
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.cacert.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.cacert.c_str());
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "kura-cli/0.1");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, WriteHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);

    headers = curl_slist_append(headers, "Accept: application/json");
    std::string auth;
    if (options_.negotiate) {
      // libcurl answers the server's "WWW-Authenticate: Negotiate" challenge
      // with a GSS-API token from the ticket cache; the empty user name and
      // password make it use the cached credentials instead of asking. The
      // server's mutual-authentication token is checked by libcurl, and no
      // credential is delegated (CURLOPT_GSSAPI_DELEGATION stays "none").
      curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_NEGOTIATE));
      curl_easy_setopt(curl, CURLOPT_USERPWD, ":");
      curl_easy_setopt(curl, CURLOPT_GSSAPI_DELEGATION, static_cast<long>(CURLGSSAPI_DELEGATION_NONE));
    } else if (!options_.token.empty()) {
      auth = "Authorization: Bearer " + options_.token;
      headers = curl_slist_append(headers, auth.c_str());
    }
    for (const auto& [name, value] : request.headers) {
      std::string line = name + ": " + value;
      headers = curl_slist_append(headers, line.c_str());
    }
    if (request.body) {
      body_text = request.body->dump();
      headers = curl_slist_append(headers, "Content-Type: application/json");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_text.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_text.size()));
    } else if (request.method != "GET" && request.method != "DELETE") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    // The header list held the token; clear our copy of the line.
    std::fill(auth.begin(), auth.end(), '\0');
    if (rc != CURLE_OK) {
      std::string detail = error[0] != '\0' ? error : curl_easy_strerror(rc);
      return UnavailableError("cannot reach " + parts_.base + ": " + detail);
    }
    return response;
  }

 private:
  ClientOptions options_;
  UrlParts parts_;
};

}  // namespace

int ExitCodeForHttpStatus(long status) {
  if (status >= 200 && status < 300) return kExitOk;
  switch (status) {
    case 400:
    case 413:
    case 422: return kExitInvalidInput;
    case 401: return kExitUnauthenticated;
    case 403: return kExitPermissionDenied;
    case 404: return kExitNotFound;
    case 409: return kExitConflict;
    case 503: return kExitUnavailable;
    default: return kExitError;
  }
}

Result<std::unique_ptr<Transport>> MakeCurlTransport(const ClientOptions& options) {
  GlobalInit();
  KURA_ASSIGN_OR_RETURN(UrlParts parts, ParseAddr(options.addr));
  return std::unique_ptr<Transport>(std::make_unique<CurlTransport>(options, std::move(parts)));
}

std::string EscapeComponent(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string DescribeErrorResponse(const Response& response) {
  std::string out = "HTTP " + std::to_string(response.status);
  auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const auto& e = body["error"];
    std::string message = StringField(e, "message"), code = StringField(e, "code"),
                request_id = StringField(e, "request_id");
    out = message.empty() ? out : message;
    std::string detail;
    if (!code.empty()) detail = code;
    detail += (detail.empty() ? "" : ", ") + std::string("HTTP ") + std::to_string(response.status);
    if (!request_id.empty()) detail += ", request " + request_id;
    return out + " (" + detail + ")";
  }
  if (response.status == 307 || response.status == 308) {
    auto it = response.headers.find("location");
    if (it != response.headers.end()) return out + ": redirected to " + it->second;
  }
  std::string excerpt = response.body.substr(0, 200);
  std::replace(excerpt.begin(), excerpt.end(), '\n', ' ');
  return excerpt.empty() ? out : out + ": " + excerpt;
}

}  // namespace kura::cli
