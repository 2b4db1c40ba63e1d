#include "ops/notifier.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "core/log.h"

namespace kura::ops {
namespace {

constexpr std::int64_t kMaxBackoffSeconds = 600;

// libcurl's global state must be set up once, before threads use it.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;
struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string UrlPart(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return "";
  std::string out(value);
  curl_free(value);
  return out;
}

bool IsLocalhostName(const std::string& host) {
  if (host.size() != 9) return false;
  std::string lower = host;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower == "localhost";
}

// Loopback: an address literal in 127.0.0.0/8 or ::1, or the name
// "localhost", which Post pins to 127.0.0.1 (a resolver could map it
// anywhere). inet_pton takes strict dotted decimal only (no "0177.1" octal or
// short forms that other parsers read differently).
bool IsLoopbackHost(const std::string& host) {
  if (IsLocalhostName(host)) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    in6_addr v6{};
    std::string inner = host.substr(1, host.size() - 2);
    return inet_pton(AF_INET6, inner.c_str(), &v6) == 1 && std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
  }
  return false;
}

// Parses with libcurl's own URL parser, so the address checked is the one
// the request goes to (the parsed handle is what curl sends with). Null when
// the URL is malformed or not allowed.
CurlUrl ParseAllowedUrl(std::string_view text) {
  InitCurlOnce();
  CurlUrl url(curl_url());
  if (!url) return nullptr;
  std::string copy(text);
  if (curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), 0) != CURLUE_OK) return nullptr;
  const std::string scheme = UrlPart(url.get(), CURLUPART_SCHEME);
  if (scheme == "https") return url;
  if (scheme == "http" && IsLoopbackHost(UrlPart(url.get(), CURLUPART_HOST))) return url;
  return nullptr;
}

size_t DiscardBody(char*, size_t size, size_t count, void*) { return size * count; }

int AbortIfStopping(void* abort_flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(abort_flag)->load() ? 1 : 0;
}

}  // namespace

Notifier::Notifier(NotificationQueue* queue, NotifierOptions options) : queue_(queue), options_(std::move(options)) {
  InitCurlOnce();
}

Notifier::Notifier(store::Store* store, NotifierOptions options)
    : owned_queue_(std::make_unique<StoreNotificationQueue>(store)),
      queue_(owned_queue_.get()),
      options_(std::move(options)) {
  InitCurlOnce();
}

std::int64_t Notifier::BackoffSeconds(int attempts) {
  if (attempts < 0) attempts = 0;
  // 2^10 already exceeds the cap; avoid shifting further.
  if (attempts >= 10) return kMaxBackoffSeconds;
  return std::min<std::int64_t>(std::int64_t{1} << attempts, kMaxBackoffSeconds);
}

bool Notifier::IsAllowedUrl(std::string_view url) { return ParseAllowedUrl(url) != nullptr; }

void Notifier::Start() {
  if (thread_.joinable()) return;
  {
    // Restartable: a node that lost its lease and got it back starts again.
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  abort_.store(false);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kura-notify");
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, options_.interval, [this] { return stopping_; })) {
      lock.unlock();
      if (auto run = RunOnce(); !run.ok()) {
        log::Warn("lockbox notifications: cannot read the outbox: " + run.status().message());
      }
      lock.lock();
    }
  });
}

void Notifier::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  abort_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // A later RunOnce (tests, or Start again) works normally.
  abort_.store(false);
}

Result<int> Notifier::RunOnce() {
  std::lock_guard run_lock(run_mu_);
  const std::int64_t now = ToUnixSeconds(options_.clock->Now());
  KURA_ASSIGN_OR_RETURN(std::vector<store::OutboxRow> due, queue_->Due(now, options_.batch));
  int delivered = 0;
  cannot_sign_ = false;
  for (auto& row : due) {
    // Stopping (lease lost, shutdown): what is left stays due for the next
    // holder of the lease. Nothing can be signed (sealed): neither can the
    // rest, which waits for a later pass.
    if (abort_.load() || cannot_sign_) break;
    if (Deliver(std::move(row))) ++delivered;
  }
  return delivered;
}

bool Notifier::Deliver(store::OutboxRow row) {
  CurlUrl url = ParseAllowedUrl(row.url);
  if (!url) {
    // The vault validates the URL when a tenant sets it; checking again here
    // keeps a row written any other way from sending personal data in the
    // clear or to a scheme curl would also speak (file://, ftp://, …).
    row.attempts += 1;
    GiveUp(&row, "the webhook URL is not https:// (or http:// to a loopback address)");
    return false;
  }
  const std::int64_t sent_at = ToUnixSeconds(options_.clock->Now());
  std::string signature;
  if (options_.signer) {
    Result<std::string> signed_ = options_.signer(row, sent_at);
    if (!signed_.ok()) {
      // Not the receiver's failure (the vault is sealed): no attempt is
      // counted, and the row is tried again once it can be signed.
      log::Warn("lockbox notifications: cannot sign them, they wait: " + signed_.status().message());
      cannot_sign_ = true;
      return false;
    }
    signature = std::move(*signed_);
  }
  Attempt attempt = Post(url.get(), row, sent_at, signature);
  if (attempt.aborted) return false;  // unchanged: still due
  const std::int64_t now = ToUnixSeconds(options_.clock->Now());
  row.attempts += 1;
  if (attempt.delivered) {
    row.delivered_at = now;
    row.last_error.clear();
    if (Status s = queue_->Update(row); !s.ok()) {
      // The receiver has it; it may get it again (and de-duplicate by the id).
      log::Warn("lockbox notification " + std::to_string(row.id) + ": delivered, but cannot record it: " + s.message());
    }
    return true;
  }
  if (row.attempts >= options_.max_attempts) {
    GiveUp(&row, attempt.error);
    return false;
  }
  row.next_attempt_at = now + BackoffSeconds(row.attempts);
  row.last_error = attempt.error;
  if (Status s = queue_->Update(row); !s.ok()) {
    log::Warn("lockbox notification " + std::to_string(row.id) + ": cannot record a failed attempt: " + s.message());
  }
  return false;
}

void Notifier::GiveUp(store::OutboxRow* row, const std::string& why) {
  row->next_attempt_at = kNeverAgain;
  row->last_error = "given up after " + std::to_string(row->attempts) + " attempt(s): " + why;
  // Neither the URL (it may carry the receiver's secret) nor the payload.
  log::Warn("lockbox notification " + std::to_string(row->id) + " of tenant " + row->tenant_id + ": " +
            row->last_error);
  if (Status s = queue_->Update(*row); !s.ok()) {
    log::Warn("lockbox notification " + std::to_string(row->id) + ": cannot record it: " + s.message());
  }
}

Notifier::Attempt Notifier::Post(void* curl_url, const store::OutboxRow& row, std::int64_t timestamp,
                                 const std::string& signature) {
  Attempt out;
  std::unique_ptr<CURL, CurlEasyDeleter> curl(curl_easy_init());
  if (!curl) {
    out.error = "cannot create an HTTP client";
    return out;
  }
  CURL* c = curl.get();
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next != nullptr) {
      headers.release();
      headers.reset(next);
    }
  };
  add_header("Content-Type: application/json");
  add_header("X-Kura-Delivery: " + std::to_string(row.id));
  add_header("webhook-id: " + std::to_string(row.id));
  add_header("webhook-timestamp: " + std::to_string(timestamp));
  if (!signature.empty()) add_header("webhook-signature: " + signature);
  // No "Expect: 100-continue" round trip for larger payloads.
  add_header("Expect:");
  char errbuf[CURL_ERROR_SIZE] = {};
  const bool https = UrlPart(static_cast<CURLU*>(curl_url), CURLUPART_SCHEME) == "https";

  curl_easy_setopt(c, CURLOPT_CURLU, static_cast<CURLU*>(curl_url));
  // Only the scheme that was checked; redirects are not followed (a receiver
  // could otherwise bounce the payload anywhere, also to plain HTTP).
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // Plain HTTP is loopback only: never through a proxy from the environment,
  // and "localhost" is 127.0.0.1 whatever the resolver says.
  std::unique_ptr<curl_slist, SlistDeleter> pinned;
  if (!https) {
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLU* u = static_cast<CURLU*>(curl_url);
    if (IsLocalhostName(UrlPart(u, CURLUPART_HOST))) {
      char* port = nullptr;
      std::string port_text = "80";
      if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK && port != nullptr) {
        port_text = port;
        curl_free(port);
      }
      pinned.reset(curl_slist_append(nullptr, (UrlPart(u, CURLUPART_HOST) + ":" + port_text + ":127.0.0.1").c_str()));
      curl_easy_setopt(c, CURLOPT_RESOLVE, pinned.get());
    }
  }
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kura-notifier");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, row.payload_json.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(row.payload_json.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, AbortIfStopping);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &abort_);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_ABORTED_BY_CALLBACK && abort_.load()) {
    out.aborted = true;
    return out;
  }
  if (rc != CURLE_OK) {
    // curl's text names the host and the failure, never the body it sent.
    out.error = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    return out;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) {
    out.delivered = true;
  } else {
    out.error = "HTTP " + std::to_string(status);
  }
  return out;
}

}  // namespace kura::ops
