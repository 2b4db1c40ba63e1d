#include "ops/notifier.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/loopback_for_test.h"
#include "core/test_dir_for_test.h"
#include "crypto/dev_tls.h"
#include "store/store_test_util.h"

namespace kura::ops {
namespace {

using std::chrono::seconds;

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// A webhook receiver on 127.0.0.1: records each request and answers with the
// next queued status (200 when the queue is empty). One request per
// connection. Plain HTTP, or given `tls` HTTPS with that certificate chain
// and key.
class TinyHttpServer {
 public:
  struct Received {
    std::string method, path, body;
    std::map<std::string, std::string> headers;  // names lower-case
  };

  explicit TinyHttpServer(const crypto::DevTlsPaths* tls = nullptr) {
    if (tls != nullptr) {
      tls_.reset(SSL_CTX_new(TLS_server_method()));
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(tls_.get(), tls->server_chain.c_str()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(tls_.get(), tls->server_key.c_str(), SSL_FILETYPE_PEM), 1);
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    port_ = BindLoopback(fd_);
    EXPECT_GT(port_, 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyHttpServer() {
    stop_.store(true);
    thread_.join();
    ::close(fd_);
  }

  void Answer(int status) {
    std::lock_guard lock(mu_);
    answers_.push_back(status);
  }
  std::string Url(const std::string& path = "/hook") const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  std::vector<Received> received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  void Loop() {
    // OpenSSL writes with write(2): a client that already hung up must give
    // this thread EPIPE, not a SIGPIPE that ends the test binary.
    sigset_t sigpipe;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      timeval tv{10, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (tls_) {
        std::unique_ptr<SSL, SslFree> ssl(SSL_new(tls_.get()));
        SSL_set_fd(ssl.get(), conn);
        // A client that does not trust the certificate hangs up during the
        // handshake: nothing is received.
        if (SSL_accept(ssl.get()) == 1) {
          Serve(Connection{conn, ssl.get()});
          SSL_shutdown(ssl.get());
        }
        ERR_clear_error();
      } else {
        Serve(Connection{conn, nullptr});
      }
      ::close(conn);
    }
  }

  // An accepted connection, plain (ssl == nullptr) or TLS.
  struct Connection {
    int fd;
    SSL* ssl;
    ssize_t Recv(char* buf, size_t size) const {
      return ssl ? SSL_read(ssl, buf, static_cast<int>(size)) : ::recv(fd, buf, size, 0);
    }
    void Send(const std::string& data) const {
      if (ssl) {
        SSL_write(ssl, data.data(), static_cast<int>(data.size()));
      } else {
        ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      }
    }
  };

  void Serve(const Connection& conn) {
    std::string data;
    char buf[4096];
    size_t header_end = std::string::npos;
    while (header_end == std::string::npos) {
      ssize_t n = conn.Recv(buf, sizeof buf);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
      header_end = data.find("\r\n\r\n");
    }
    Received r;
    std::string head = data.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
    r.method = request_line.substr(0, sp1);
    r.path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        size_t v = line.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = end + 2;
    }
    size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    r.body = data.substr(header_end + 4);
    while (r.body.size() < length) {
      ssize_t n = conn.Recv(buf, sizeof buf);
      if (n <= 0) return;
      r.body.append(buf, static_cast<size_t>(n));
    }
    int status = 200;
    {
      std::lock_guard lock(mu_);
      if (!answers_.empty()) {
        status = answers_.front();
        answers_.pop_front();
      }
      received_.push_back(std::move(r));
    }
    std::string reply = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    conn.Send(reply);
  }

  std::unique_ptr<SSL_CTX, SslCtxFree> tls_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::deque<int> answers_;
  std::vector<Received> received_;
  std::thread thread_;
};

// An in-memory outbox with the store's semantics.
class FakeQueue : public NotificationQueue {
 public:
  Result<std::vector<store::OutboxRow>> Due(std::int64_t now, int limit) override {
    std::lock_guard lock(mu_);
    if (fail_due) return UnavailableError("database unreachable");
    std::vector<store::OutboxRow> out;
    for (const auto& [id, row] : rows_) {
      if (static_cast<int>(out.size()) >= limit) break;
      if (!row.delivered_at && row.next_attempt_at <= now) out.push_back(row);
    }
    return out;
  }
  Status Update(const store::OutboxRow& row) override {
    std::lock_guard lock(mu_);
    auto it = rows_.find(row.id);
    if (it == rows_.end()) return NotFoundError("no such notification");
    it->second = row;
    return Status::Ok();
  }
  void Add(store::OutboxRow row) {
    std::lock_guard lock(mu_);
    rows_[row.id] = std::move(row);
  }
  store::OutboxRow Get(std::int64_t id) {
    std::lock_guard lock(mu_);
    return rows_.at(id);
  }

  bool fail_due = false;

 private:
  std::mutex mu_;
  std::map<std::int64_t, store::OutboxRow> rows_;
};

// For the threaded test only: polls `cond` until it holds (or a generous
// deadline passes, which fails the test).
bool WaitFor(const std::function<bool()>& cond) {
  const auto until = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

constexpr std::int64_t kStart = 1'800'000'000;
constexpr char kPayload[] = R"({"event":"access.requested","tenant":"acme","id":"ar_1"})";

store::OutboxRow Row(std::int64_t id, std::string url) {
  store::OutboxRow row;
  row.id = id;
  row.tenant_id = "acme";
  row.url = std::move(url);
  row.payload_json = kPayload;
  row.next_attempt_at = kStart;
  return row;
}

class NotifierTest : public ::testing::Test {
 protected:
  NotifierOptions Options() {
    NotifierOptions o;
    o.clock = &clock_;
    return o;
  }

  FakeClock clock_{FromUnixSeconds(kStart)};
  FakeQueue queue_;
  TinyHttpServer server_;
};

TEST_F(NotifierTest, DeliversOnceWithTheDeliveryHeader) {
  queue_.Add(Row(7, server_.Url("/hooks/kura")));
  Notifier notifier(&queue_, Options());

  auto run = notifier.RunOnce();
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(*run, 1);
  auto got = server_.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].path, "/hooks/kura");
  EXPECT_EQ(got[0].headers["x-kura-delivery"], "7");
  EXPECT_EQ(got[0].headers["content-type"], "application/json");
  EXPECT_EQ(got[0].body, kPayload);

  store::OutboxRow row = queue_.Get(7);
  ASSERT_TRUE(row.delivered_at.has_value());
  EXPECT_EQ(*row.delivered_at, kStart);
  EXPECT_EQ(row.attempts, 1);
  EXPECT_EQ(row.last_error, "");

  // Delivered means done: later passes send nothing.
  clock_.Advance(seconds(3600));
  ASSERT_EQ(*notifier.RunOnce(), 0);
  EXPECT_EQ(server_.received().size(), 1u);
}

TEST_F(NotifierTest, SignsEachAttemptWithTheStandardWebhooksHeaders) {
  server_.Answer(503);
  queue_.Add(Row(9, server_.Url()));
  NotifierOptions options = Options();
  std::vector<std::pair<std::int64_t, std::int64_t>> asked;  // (row id, timestamp)
  options.signer = [&](const store::OutboxRow& row, std::int64_t at) -> Result<std::string> {
    asked.emplace_back(row.id, at);
    EXPECT_EQ(row.payload_json, kPayload);
    return "v1,sig-" + std::to_string(at);
  };
  Notifier notifier(&queue_, options);

  ASSERT_EQ(*notifier.RunOnce(), 0);  // 503: tried again later, signed anew
  clock_.Advance(seconds(Notifier::BackoffSeconds(1)));
  ASSERT_EQ(*notifier.RunOnce(), 1);
  auto got = server_.received();
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(asked.size(), 2u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::int64_t at = kStart + (i == 0 ? 0 : Notifier::BackoffSeconds(1));
    EXPECT_EQ(asked[i], std::make_pair(std::int64_t{9}, at));
    // The same id on every attempt (receivers de-duplicate by it); the time
    // and signature of this attempt.
    EXPECT_EQ(got[i].headers["webhook-id"], "9");
    EXPECT_EQ(got[i].headers["webhook-timestamp"], std::to_string(at));
    EXPECT_EQ(got[i].headers["webhook-signature"], "v1,sig-" + std::to_string(at));
    EXPECT_EQ(got[i].body, kPayload);
  }
}

TEST_F(NotifierTest, UnsignableDeliveryWaitsWithoutCountingAnAttempt) {
  queue_.Add(Row(3, server_.Url()));
  queue_.Add(Row(4, server_.Url()));
  NotifierOptions options = Options();
  bool sealed = true;
  int asked = 0;
  options.signer = [&](const store::OutboxRow&, std::int64_t) -> Result<std::string> {
    ++asked;
    if (sealed) return FailedPreconditionError("kura is sealed");
    return std::string();  // the tenant's webhook has no secret: sent unsigned
  };
  Notifier notifier(&queue_, options);

  ASSERT_EQ(*notifier.RunOnce(), 0);
  EXPECT_EQ(asked, 1) << "the pass stops at the first row it cannot sign";
  EXPECT_TRUE(server_.received().empty());
  for (std::int64_t id : {3, 4}) {
    store::OutboxRow row = queue_.Get(id);
    EXPECT_EQ(row.attempts, 0);
    EXPECT_EQ(row.next_attempt_at, kStart);  // still due
    EXPECT_FALSE(row.delivered_at.has_value());
  }

  sealed = false;
  ASSERT_EQ(*notifier.RunOnce(), 2);
  auto got = server_.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].headers.count("webhook-signature"), 0u);
  EXPECT_EQ(got[0].headers["webhook-id"], "3");
  EXPECT_EQ(queue_.Get(3).attempts, 1);
  EXPECT_EQ(queue_.Get(4).attempts, 1);
}

TEST_F(NotifierTest, RetriesAfterBackoffWhenTheReceiverFails) {
  server_.Answer(500);
  server_.Answer(200);
  queue_.Add(Row(1, server_.Url()));
  Notifier notifier(&queue_, Options());

  ASSERT_EQ(*notifier.RunOnce(), 0);
  store::OutboxRow row = queue_.Get(1);
  EXPECT_FALSE(row.delivered_at.has_value());
  EXPECT_EQ(row.attempts, 1);
  EXPECT_EQ(row.last_error, "HTTP 500");
  EXPECT_EQ(row.next_attempt_at, kStart + 2);

  // Not due before the backoff has passed.
  ASSERT_EQ(*notifier.RunOnce(), 0);
  clock_.Advance(seconds(1));
  ASSERT_EQ(*notifier.RunOnce(), 0);
  EXPECT_EQ(server_.received().size(), 1u);

  clock_.Advance(seconds(1));
  ASSERT_EQ(*notifier.RunOnce(), 1);
  auto got = server_.received();
  ASSERT_EQ(got.size(), 2u);
  // The same id both times: the receiver can tell a retry from a new event.
  EXPECT_EQ(got[0].headers["x-kura-delivery"], "1");
  EXPECT_EQ(got[1].headers["x-kura-delivery"], "1");
  row = queue_.Get(1);
  ASSERT_TRUE(row.delivered_at.has_value());
  EXPECT_EQ(*row.delivered_at, kStart + 2);
  EXPECT_EQ(row.attempts, 2);
  EXPECT_EQ(row.last_error, "");
}

TEST_F(NotifierTest, BackoffDoublesUpToTenMinutes) {
  EXPECT_EQ(Notifier::BackoffSeconds(1), 2);
  EXPECT_EQ(Notifier::BackoffSeconds(2), 4);
  EXPECT_EQ(Notifier::BackoffSeconds(5), 32);
  EXPECT_EQ(Notifier::BackoffSeconds(9), 512);
  EXPECT_EQ(Notifier::BackoffSeconds(10), 600);
  EXPECT_EQ(Notifier::BackoffSeconds(40), 600);
}

TEST_F(NotifierTest, GivesUpAfterTenAttempts) {
  for (int i = 0; i < 10; ++i) server_.Answer(503);
  queue_.Add(Row(3, server_.Url()));
  Notifier notifier(&queue_, Options());
  for (int attempt = 1; attempt <= 9; ++attempt) {
    ASSERT_EQ(*notifier.RunOnce(), 0);
    store::OutboxRow row = queue_.Get(3);
    ASSERT_EQ(row.attempts, attempt);
    ASSERT_EQ(row.next_attempt_at, ToUnixSeconds(clock_.Now()) + Notifier::BackoffSeconds(attempt));
    clock_.Advance(seconds(Notifier::BackoffSeconds(attempt)));
  }
  ASSERT_EQ(*notifier.RunOnce(), 0);
  store::OutboxRow row = queue_.Get(3);
  EXPECT_EQ(row.attempts, 10);
  EXPECT_EQ(row.next_attempt_at, Notifier::kNeverAgain);
  EXPECT_NE(row.last_error.find("given up"), std::string::npos) << row.last_error;
  EXPECT_NE(row.last_error.find("HTTP 503"), std::string::npos) << row.last_error;
  EXPECT_EQ(server_.received().size(), 10u);

  // Never again, however long one waits.
  clock_.Advance(seconds(86400 * 365));
  ASSERT_EQ(*notifier.RunOnce(), 0);
  EXPECT_EQ(server_.received().size(), 10u);
}

TEST_F(NotifierTest, RefusesPlainHttpOffLoopback) {
  // TEST-NET-1: refused before any connection is tried.
  queue_.Add(Row(4, "http://192.0.2.1/hook"));
  queue_.Add(Row(5, "file:///etc/passwd"));
  Notifier notifier(&queue_, Options());
  ASSERT_EQ(*notifier.RunOnce(), 0);
  for (std::int64_t id : {4, 5}) {
    store::OutboxRow row = queue_.Get(id);
    EXPECT_FALSE(row.delivered_at.has_value());
    EXPECT_EQ(row.attempts, 1);
    EXPECT_EQ(row.next_attempt_at, Notifier::kNeverAgain);
    EXPECT_NE(row.last_error.find("given up"), std::string::npos) << row.last_error;
    EXPECT_EQ(row.last_error.find(kPayload), std::string::npos);
  }
}

TEST_F(NotifierTest, AllowsHttpsAndLoopbackHttpOnly) {
  EXPECT_TRUE(Notifier::IsAllowedUrl("https://hooks.example.com/kura?k=1"));
  EXPECT_TRUE(Notifier::IsAllowedUrl("HTTPS://hooks.example.com/"));
  EXPECT_TRUE(Notifier::IsAllowedUrl("http://127.0.0.1:8080/hook"));
  EXPECT_TRUE(Notifier::IsAllowedUrl("http://127.10.20.30/hook"));
  EXPECT_TRUE(Notifier::IsAllowedUrl("http://[::1]:9000/hook"));
  // Pinned to 127.0.0.1 when sent (see LocalhostIsPinnedToLoopback).
  EXPECT_TRUE(Notifier::IsAllowedUrl("http://localhost:8080/hook"));

  EXPECT_FALSE(Notifier::IsAllowedUrl("http://hooks.example.com/"));
  EXPECT_FALSE(Notifier::IsAllowedUrl("http://10.0.0.1/"));
  EXPECT_FALSE(Notifier::IsAllowedUrl("http://[::2]/"));
  // Other names are whatever the resolver says: not loopback.
  EXPECT_FALSE(Notifier::IsAllowedUrl("http://localhost.evil.example/"));
  EXPECT_FALSE(Notifier::IsAllowedUrl("http://127.0.0.1.evil.example/"));
  // The host is after the "@".
  EXPECT_FALSE(Notifier::IsAllowedUrl("http://127.0.0.1@evil.example/"));
  EXPECT_FALSE(Notifier::IsAllowedUrl("ftp://127.0.0.1/"));
  EXPECT_FALSE(Notifier::IsAllowedUrl("file:///etc/passwd"));
  EXPECT_FALSE(Notifier::IsAllowedUrl("gopher://127.0.0.1/"));
  EXPECT_FALSE(Notifier::IsAllowedUrl(""));
  EXPECT_FALSE(Notifier::IsAllowedUrl("not a url"));
}

TEST_F(NotifierTest, LocalhostIsPinnedToLoopback) {
  queue_.Add(Row(12, "http://LocalHost:" + std::to_string(server_.port()) + "/hook"));
  Notifier notifier(&queue_, Options());
  ASSERT_EQ(*notifier.RunOnce(), 1);
  ASSERT_EQ(server_.received().size(), 1u);
  EXPECT_EQ(server_.received()[0].headers["x-kura-delivery"], "12");
}

TEST_F(NotifierTest, DownReceiverRecordsTheErrorAndRetriesLater) {
  // A port nobody listens on: bound, then closed.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int port = BindLoopback(fd);
  ::close(fd);
  ASSERT_GT(port, 0);

  queue_.Add(Row(9, "http://127.0.0.1:" + std::to_string(port) + "/hook"));
  Notifier notifier(&queue_, Options());
  ASSERT_EQ(*notifier.RunOnce(), 0);
  store::OutboxRow row = queue_.Get(9);
  EXPECT_FALSE(row.delivered_at.has_value());
  EXPECT_EQ(row.attempts, 1);
  EXPECT_EQ(row.next_attempt_at, kStart + 2);
  EXPECT_FALSE(row.last_error.empty());
  EXPECT_EQ(row.last_error.find("HTTP"), std::string::npos) << row.last_error;
  EXPECT_EQ(row.last_error.find(kPayload), std::string::npos);
}

TEST_F(NotifierTest, HttpsVerifiesTheReceiver) {
  TestDir dir;
  auto tls = crypto::EnsureDevTls(dir.path());
  ASSERT_TRUE(tls.ok()) << tls.status().ToString();
  TinyHttpServer https(&*tls);
  queue_.Add(Row(11, https.Url()));

  // Its CA is not among the system's: the handshake fails and nothing is sent.
  Notifier untrusting(&queue_, Options());
  ASSERT_EQ(*untrusting.RunOnce(), 0);
  store::OutboxRow row = queue_.Get(11);
  EXPECT_FALSE(row.delivered_at.has_value());
  EXPECT_EQ(row.attempts, 1);
  EXPECT_NE(row.last_error.find("certificate"), std::string::npos) << row.last_error;
  EXPECT_TRUE(https.received().empty());

  // Trusting that CA, the same receiver gets it.
  NotifierOptions options = Options();
  options.ca_file = tls->ca_cert;
  Notifier trusting(&queue_, options);
  clock_.Advance(seconds(Notifier::BackoffSeconds(1)));
  ASSERT_EQ(*trusting.RunOnce(), 1);
  ASSERT_EQ(https.received().size(), 1u);
  EXPECT_EQ(https.received()[0].headers["x-kura-delivery"], "11");
  EXPECT_EQ(https.received()[0].body, kPayload);
  EXPECT_TRUE(queue_.Get(11).delivered_at.has_value());
}

TEST_F(NotifierTest, OutboxErrorIsReturned) {
  queue_.fail_due = true;
  Notifier notifier(&queue_, Options());
  auto run = notifier.RunOnce();
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kUnavailable);
}

TEST_F(NotifierTest, BackgroundThreadDeliversAndRestarts) {
  queue_.Add(Row(21, server_.Url()));
  NotifierOptions o = Options();
  o.interval = std::chrono::milliseconds(20);
  Notifier notifier(&queue_, o);
  notifier.Start();
  ASSERT_TRUE(WaitFor([&] { return queue_.Get(21).delivered_at.has_value(); }));
  notifier.Stop();
  EXPECT_EQ(server_.received().size(), 1u);

  // Started again (the lease came back): new work is picked up.
  queue_.Add(Row(22, server_.Url()));
  notifier.Start();
  ASSERT_TRUE(WaitFor([&] { return queue_.Get(22).delivered_at.has_value(); }));
  notifier.Stop();
  EXPECT_EQ(server_.received()[1].headers["x-kura-delivery"], "22");
}

// The same flow on the real outbox: a request created with its notification
// in one transaction, delivered by a notifier over the SQLite store.
TEST_F(NotifierTest, DeliversFromTheSqliteOutbox) {
  TestDir dir;
  std::unique_ptr<store::Store> db = store::OpenScratchSqliteStore(dir.Sub("kura.db"));
  ASSERT_NE(db, nullptr);

  store::TenantRow tenant;
  tenant.id = "acme";
  tenant.name = "Acme";
  tenant.region = "jp";
  tenant.created_at = kStart;
  ASSERT_TRUE(db->CreateTenant(tenant, nullptr).ok());
  store::AccessRequestRow request;
  request.id = "ar_1";
  request.tenant_id = "acme";
  request.requester = "sam";
  request.permissions_json = R"(["record.read"])";
  request.collections_json = R"(["customers"])";
  request.duration_s = 7200;
  request.reason = "customer_support";
  request.created_at = kStart;
  request.expires_at = kStart + 12 * 3600;
  store::OutboxRow note = Row(0, server_.Url());
  ASSERT_TRUE(db->CreateAccessRequest(request, {note}, nullptr).ok());
  auto due = db->DueNotifications(kStart, 10);
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  ASSERT_EQ(due->size(), 1u);
  const std::int64_t id = (*due)[0].id;

  server_.Answer(500);
  Notifier notifier(db.get(), Options());
  ASSERT_EQ(*notifier.RunOnce(), 0);
  due = db->DueNotifications(kStart + 2, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1);
  EXPECT_EQ((*due)[0].last_error, "HTTP 500");
  EXPECT_EQ((*due)[0].next_attempt_at, kStart + 2);

  clock_.Advance(seconds(2));
  ASSERT_EQ(*notifier.RunOnce(), 1);
  auto got = server_.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].headers["x-kura-delivery"], std::to_string(id));
  EXPECT_EQ(got[1].body, kPayload);
  due = db->DueNotifications(kStart + 86400, 10);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->empty());
}

}  // namespace
}  // namespace kura::ops
