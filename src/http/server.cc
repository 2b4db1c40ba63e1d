#include "http/server.h"

#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <charconv>
#include <chrono>
#include <csignal>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth/token.h"
#include "core/log.h"
#include "core/secret.h"
#include "http/asio_internal.h"
#include "http/handlers.h"
#include "http/request_parser.h"
#include "http/request_parsing.h"
#include "http/response.h"
#include "http/router.h"
#include "http/tls_context.h"
#include "vault/vault.h"

namespace kura::http {
namespace {

using SteadyClock = std::chrono::steady_clock;
using steady_timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, executor>;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
// A connection's read buffer: wiped whenever it is released or reallocated.
using RequestBuffer = boost::beast::basic_flat_buffer<WipingAllocator<char>>;

// Mutating calls block until their group commit is durable. Many threads let
// many of them wait at once, so one sync serves a whole batch.
constexpr int kBlockingThreads = 128;
// Bytes asked of the socket per read (an SSL record is at most 16 KiB).
constexpr std::size_t kReadChunk = 8192;
// Connections over the limit still get a 503; beyond this many at once they
// are just closed, so a flood cannot buy TLS handshakes with our CPU.
constexpr int kMaxShedConnections = 64;
// How long a closing connection may take to finish its TLS close or to let
// the client's unread request bytes drain (so it sees our error, not a reset).
constexpr std::chrono::seconds kLingerTime{2};
// How long a TLS connection waits for its next request before giving its
// record buffers back (checked by the once-a-second sweep).
constexpr std::chrono::seconds kTlsBufferIdleRelease{1};

class ServerImpl;

// What the timeout sweep and the drain need to know about a connection. Lives
// in the connection's coroutine frame; linked into its worker's list.
struct ConnectionState {
  ConnectionState* prev = nullptr;
  ConnectionState* next = nullptr;
  tcp_socket* socket = nullptr;  // the lowest layer
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  bool idle = false;  // between requests, no byte of the next one read yet
  SteadyClock::time_point idle_since;
  SSL* tls = nullptr;        // the connection's TLS session (none in plain HTTP)
  bool tls_buffers = false;  // it holds its record buffers (see Sweep)
};

enum class ReadResult { kRequest, kClosed, kBadRequest, kHeaderTooLarge, kBodyTooLarge };

struct ParsedAddress {
  std::string host;
  std::uint16_t port = 0;
};

Result<ParsedAddress> ParseListenAddress(const std::string& address) {
  ParsedAddress out;
  std::string_view port_text;
  if (!address.empty() && address.front() == '[') {
    std::size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return InvalidArgumentError("listener.address must be HOST:PORT or [IPv6]:PORT, got \"" + address + "\"");
    }
    out.host = address.substr(1, close - 1);
    port_text = std::string_view(address).substr(close + 2);
  } else {
    std::size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return InvalidArgumentError("listener.address must be HOST:PORT, got \"" + address + "\"");
    }
    out.host = address.substr(0, colon);
    port_text = std::string_view(address).substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535) {
    return InvalidArgumentError("listener.address has an invalid port: \"" + address + "\"");
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

Result<asio::ip::address> ResolveHost(const std::string& host) {
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(host, ec);
  if (!ec) return addr;
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) return InvalidArgumentError("cannot resolve listener host \"" + host + "\"");
  return results.begin()->endpoint().address();
}

// Replaces anything that could forge or break an access log line.
void AppendSanitised(std::string_view text, std::size_t max, std::string* out) {
  if (text.size() > max) text = text.substr(0, max);
  for (char ch : text) out->push_back(ch > 0x20 && ch < 0x7f && ch != '"' ? ch : '?');
}

// One I/O thread: its own io_context (run by exactly one thread, so no
// locking and no strands), its own SO_REUSEPORT acceptor, and the list of its
// connections. Everything here is touched only from that thread, except
// `io` itself (post) and the counters of the server.
class Worker {
 public:
  Worker(ServerImpl* server, int index) : server_(server), index_(index) { head_.prev = head_.next = &head_; }
  // Connection coroutines still suspended in io_ are destroyed with it, after
  // the timers: tell Unlink not to touch them then.
  ~Worker() { destroying_ = true; }

  Status Bind(const tcp::endpoint& endpoint, bool reuse);
  std::uint16_t LocalPort() const {
    error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }
  void Start();
  void BeginDrain();
  // After the I/O thread stopped (drain timeout): close what is still open so
  // clients see the end now, not when the server object is destroyed.
  void CloseAll();
  void SetTlsContext(std::shared_ptr<ssl::context> context) { tls_ = std::move(context); }
  void RunLoop();
  asio::io_context& io() { return io_; }

 private:
  friend class ConnectionGuard;

  awaitable<void> Accept();
  awaitable<void> Sweep();
  awaitable<void> Serve(tcp_socket socket, bool reject);
  template <typename Stream>
  awaitable<bool> Session(Stream& stream, ConnectionState& state, const std::string& client, bool reject);
  template <typename Stream>
  awaitable<ReadResult> ReadRequest(Stream& stream, ConnectionState& state, RequestBuffer& buffer,
                                    RequestParser& parser, RequestData& data);
  awaitable<Response> RunBlocking(const RouteMatch& match, const Request& request);
  // Runs a read on this thread and waits, without blocking the thread, for
  // the durability of the audit entries it appended.
  // With `prefetch`, installed around the handler only: a thread-local must
  // not stay installed across a suspension, when other connections run.
  awaitable<Response> RunInline(const RouteMatch& match, const Request& request,
                                vault::RecordPrefetch* prefetch = nullptr);
  // A record GET on a store that reads over the network: the row is read
  // ahead off this thread (vault::RecordPrefetch), then RunInline.
  awaitable<Response> RunPrefetchedInline(const RouteMatch& match, const Request& request);
  awaitable<Response> RunOnPoolThenAwait(const RouteMatch& match, const Request& request);
  // Sends `response` only once every audit entry (and change) `deferral`
  // queued is durable; otherwise the error instead.
  awaitable<Response> AwaitDurable(vault::AuditDeferral& deferral, const RouteMatch& match, const Request& request,
                                   Response& response);
  awaitable<void> Linger(ConnectionState& state, RequestBuffer& buffer);
  Response Process(const RouteMatch& match, const Request& request);

  void Link(ConnectionState* c) {
    c->next = &head_;
    c->prev = head_.prev;
    head_.prev->next = c;
    head_.prev = c;
    ++connections_;
  }
  void Unlink(ConnectionState* c) {
    c->prev->next = c->next;
    c->next->prev = c->prev;
    --connections_;
    if (draining_ && connections_ == 0 && !destroying_) sweep_timer_.cancel();
  }

  ServerImpl* server_;
  int index_;
  // Declared before io_: when io_ is destroyed with suspended connection
  // coroutines, their frames unlink themselves from this list.
  ConnectionState head_;
  int connections_ = 0;
  bool draining_ = false;
  bool destroying_ = false;
  std::shared_ptr<ssl::context> tls_;  // for new connections; null = plain HTTP
  asio::io_context io_{1};
  tcp_acceptor acceptor_{io_};
  steady_timer sweep_timer_{io_};
  steady_timer backoff_timer_{io_};
};

// Registers a connection with its worker for the lifetime of its coroutine.
class ConnectionGuard {
 public:
  ConnectionGuard(Worker* worker, ConnectionState* state) : worker_(worker), state_(state) { worker_->Link(state_); }
  ~ConnectionGuard() { worker_->Unlink(state_); }
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

 private:
  Worker* worker_;
  ConnectionState* state_;
};

class ServerImpl : public Server {
 public:
  ServerImpl(const Config& config, vault::Vault* vault)
      : config_(config), handlers_(vault), signals_(control_io_), drain_timer_(control_io_) {}
  ~ServerImpl() override {
    // Queued jobs hold work guards and coroutine handles of the workers'
    // io_contexts: they must go first.
    pool_.reset();
  }

  Status Init();

  std::uint16_t port() const override { return port_; }
  std::string url() const override { return url_; }
  Status Run() override;
  void Shutdown() override {
    asio::post(control_io_, [this] { BeginDrain(); });
  }

  const Config::Listener& listener() const { return config_.listener; }
  const Router& router() const { return router_; }
  const Handlers& handlers() const { return handlers_; }
  const std::string& hsts() const { return hsts_; }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  asio::thread_pool& pool() { return *pool_; }

  std::atomic<int> active_connections{0};
  std::atomic<int> shed_connections{0};
  std::atomic<std::int64_t> tls_buffers_released{0};
  std::int64_t idle_tls_buffers_released() const override { return tls_buffers_released.load(); }

 private:
  void WaitSignal();
  void BeginDrain();
  void StopWorkers();
  void ReloadTls();

  Config config_;
  Router router_;
  Handlers handlers_;
  std::string hsts_;
  std::uint16_t port_ = 0;
  std::string url_;
  std::atomic<bool> draining_{false};
  bool running_ = false;

  std::vector<std::unique_ptr<Worker>> workers_;
  asio::io_context control_io_{1};
  asio::signal_set signals_;
  asio::steady_timer drain_timer_;
  int workers_done_ = 0;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> control_work_;
  // Declared after workers_ so it is destroyed before them (see ~ServerImpl).
  std::unique_ptr<asio::thread_pool> pool_;
};

// ---------------------------------------------------------------------------
// Worker

Status Worker::Bind(const tcp::endpoint& endpoint, bool reuse) {
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse) acceptor_.set_option(reuse_port(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on " + endpoint.address().to_string() + ":" +
                            std::to_string(endpoint.port()) + ": " + ec.message());
  }
  return Status::Ok();
}

void Worker::Start() {
  auto log_failure = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error(std::string("http: task failed: ") + ex.what());
    }
  };
  asio::co_spawn(io_.get_executor(), Accept(), log_failure);
  asio::co_spawn(io_.get_executor(), Sweep(), log_failure);
}

void Worker::RunLoop() {
  const std::string name = "kura-io-" + std::to_string(index_);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& e) {
      // A handler threw: log it and keep serving the other connections.
      log::Error(std::string("http: I/O thread caught: ") + e.what());
    }
  }
}

void Worker::BeginDrain() {
  draining_ = true;
  error_code ec;
  acceptor_.close(ec);
  backoff_timer_.cancel();
  // Idle keep-alive connections are closed now; busy ones finish their
  // current request, answer it with Connection: close and end.
  for (ConnectionState* c = head_.next; c != &head_; c = c->next) {
    if (c->idle && c->socket != nullptr) c->socket->close(ec);
  }
  if (connections_ == 0) sweep_timer_.cancel();
}

void Worker::CloseAll() {
  error_code ec;
  acceptor_.close(ec);
  for (ConnectionState* c = head_.next; c != &head_; c = c->next) {
    if (c->socket != nullptr) c->socket->close(ec);
  }
}

awaitable<void> Worker::Accept() {
  const int max_connections = server_->listener().max_connections;
  for (;;) {
    tcp_socket socket(io_);
    error_code ec;
    co_await acceptor_.async_accept(socket, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || draining_ || !acceptor_.is_open()) co_return;
      // Out of file descriptors or similar: back off instead of spinning.
      log::Warn("http: accept failed: " + ec.message());
      backoff_timer_.expires_after(std::chrono::milliseconds(100));
      co_await backoff_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    bool reject = false;
    if (server_->active_connections.fetch_add(1, std::memory_order_relaxed) >= max_connections) {
      server_->active_connections.fetch_sub(1, std::memory_order_relaxed);
      if (server_->shed_connections.fetch_add(1, std::memory_order_relaxed) >= kMaxShedConnections) {
        server_->shed_connections.fetch_sub(1, std::memory_order_relaxed);
        socket.close(ec);
        continue;
      }
      reject = true;
    }
    asio::co_spawn(io_.get_executor(), Serve(std::move(socket), reject), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::Error(std::string("http: connection failed: ") + ex.what());
      }
    });
  }
}

// Timeouts for every connection of this thread, checked once a second: one
// timer per thread instead of one timer operation per read and write.
awaitable<void> Worker::Sweep() {
  for (;;) {
    sweep_timer_.expires_after(std::chrono::seconds(1));
    error_code ec;
    co_await sweep_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (draining_ && connections_ == 0) co_return;
    const SteadyClock::time_point now = SteadyClock::now();
    for (ConnectionState* c = head_.next; c != &head_; c = c->next) {
      if (c->deadline <= now && c->socket != nullptr) {
        c->deadline = SteadyClock::time_point::max();
        c->socket->close(ec);  // the pending read or write fails and the coroutine ends
      } else if (c->tls_buffers && c->idle && now - c->idle_since >= kTlsBufferIdleRelease &&
                 SSL_free_buffers(c->tls) == 1) {
        // Between requests no record is half read or written, so OpenSSL
        // frees (and, with CLEANSE_PLAINTEXT, wipes) both; the next request
        // allocates them again.
        c->tls_buffers = false;
        server_->tls_buffers_released.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
}

awaitable<void> Worker::Serve(tcp_socket socket, bool reject) {
  struct Counter {
    ServerImpl* server;
    bool reject;
    ~Counter() { (reject ? server->shed_connections : server->active_connections).fetch_sub(1); }
  } counter{server_, reject};
  ConnectionState state;
  ConnectionGuard guard(this, &state);
  error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  const std::string client = ec ? std::string("-") : remote.address().to_string();
  const auto& l = server_->listener();

  if (!tls_) {
    state.socket = &socket;
    co_await Session(socket, state, client, reject);
    co_return;
  }
  // The connection keeps the context it started with, even across a reload.
  std::shared_ptr<ssl::context> context = tls_;
  tls_stream stream(std::move(socket), *context);
  // Asio has OpenSSL free a connection's record buffers whenever they empty,
  // i.e. after every request and response: an allocation of ~17 KiB and, with
  // CLEANSE_PLAINTEXT, a wipe of all of it, per request and per direction —
  // measured at ~5 % of a record GET's CPU (docs/performance.md). A busy
  // connection keeps them instead (each record's plaintext is still wiped as
  // it is consumed); one idle for kTlsBufferIdleRelease gives them back (Sweep),
  // so idle keep-alive connections hold no buffers.
  SSL_clear_mode(stream.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  state.tls = stream.native_handle();
  state.socket = &stream.next_layer();
  state.deadline = SteadyClock::now() + l.read_timeout;
  co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    // Scanners and clients offering only refused versions or suites end here.
    log::Debug("http: TLS handshake with " + client + " failed: " + ec.message());
    co_return;
  }
  const bool graceful = co_await Session(stream, state, client, reject);
  if (graceful && stream.next_layer().is_open()) {
    // Send close_notify but do not wait for the client's (RFC 8446 §6.1
    // allows it): marking it received makes SSL_shutdown finish after our
    // alert is written, so a client that keeps its socket open cannot hold
    // the connection (or a drain) for the linger time.
    SSL_set_shutdown(stream.native_handle(), SSL_RECEIVED_SHUTDOWN);
    state.deadline = SteadyClock::now() + kLingerTime;
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
  }
}

template <typename Stream>
awaitable<ReadResult> Worker::ReadRequest(Stream& stream, ConnectionState& state, RequestBuffer& buffer,
                                          RequestParser& parser, RequestData& data) {
  const auto& l = server_->listener();
  bool header_checked = false;
  for (;;) {
    while (buffer.size() > 0 && !parser.is_done()) {
      error_code ec;
      const std::size_t used = parser.put(buffer.data(), ec);
      // The parser copied what it keeps into RequestData: the raw bytes
      // (headers with the bearer token, the body) are wiped, not just
      // consumed, so they do not linger in the buffer.
      WipeMemory(const_cast<void*>(buffer.data().data()), used);
      buffer.consume(used);
      if (ec == boost::beast::http::error::need_more) break;
      if (ec == boost::beast::http::error::header_limit) co_return ReadResult::kHeaderTooLarge;
      if (ec == boost::beast::http::error::body_limit) co_return ReadResult::kBodyTooLarge;
      if (ec) co_return ReadResult::kBadRequest;
      if (parser.is_header_done() && !header_checked) {
        header_checked = true;
        // Checked before any body byte is read (the parser enforces it again
        // for chunked bodies as they arrive).
        if (auto length = parser.content_length(); length && *length > l.max_body_bytes) {
          co_return ReadResult::kBodyTooLarge;
        }
        if (data.expect_continue && !parser.is_done() && buffer.size() == 0) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          state.deadline = SteadyClock::now() + l.write_timeout;
          co_await asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                                     asio::redirect_error(use_awaitable, ec));
          if (ec) co_return ReadResult::kClosed;
        }
      }
      if (used == 0) break;
    }
    if (parser.is_done()) co_return ReadResult::kRequest;

    const bool idle = !parser.got_some() && buffer.size() == 0;
    if (idle && draining_) co_return ReadResult::kClosed;
    const SteadyClock::time_point now = SteadyClock::now();
    state.idle = idle;
    if (idle) state.idle_since = now;
    state.deadline = now + (idle ? l.idle_timeout : l.read_timeout);
    const std::size_t room = buffer.max_size() - buffer.size();
    if (room == 0) co_return parser.is_header_done() ? ReadResult::kBadRequest : ReadResult::kHeaderTooLarge;
    error_code ec;
    const std::size_t n = co_await stream.async_read_some(buffer.prepare(std::min(room, kReadChunk)),
                                                          asio::redirect_error(use_awaitable, ec));
    state.idle = false;
    state.tls_buffers = state.tls != nullptr;
    if (ec) co_return ReadResult::kClosed;  // EOF, reset, or closed by the sweep or the drain
    buffer.commit(n);
  }
}

Response Worker::Process(const RouteMatch& match, const Request& request) {
  try {
    return server_->handlers().Handle(match, request, server_->draining());
  } catch (const std::exception& e) {
    log::Error("request " + std::string(request.request_id) + ": handler threw: " + e.what());
    return ErrorResponse(500, "internal", "internal error; quote the request id to the operator", request.request_id);
  }
}

// Runs a blocking handler on the pool and resumes the connection's coroutine
// on this worker's thread when it is done.
awaitable<Response> Worker::RunBlocking(const RouteMatch& match, const Request& request) {
  return asio::async_initiate<const asio::use_awaitable_t<executor>, void(Response)>(
      [this, &match, &request](auto handler) {
        // Keeps this io_context running while the job is away.
        auto work = asio::make_work_guard(io_);
        asio::post(server_->pool(),
                   [this, &match, &request, handler = std::move(handler), work = std::move(work)]() mutable {
                     Response response = Process(match, request);
                     auto ex = work.get_executor();
                     asio::post(ex, [handler = std::move(handler), response = std::move(response)]() mutable {
                       handler(std::move(response));
                     });
                   });
      },
      use_awaitable);
}

namespace {

// Where a request runs. Record reads and creates with an API key, when the
// store never blocks (SQLite: local reads, a queue to the group-commit
// writer): nothing on their way takes long (cached key, role, schema and
// tenant keys, one indexed read, or one AES-GCM seal), so they run on the I/O
// thread, and the durability of their audit entry — and of a create's write —
// is awaited asynchronously: no hop to the blocking pool and back, which under
// load cost more than the request itself. On PostgreSQL the same reads make a
// network round trip, so they run on the blocking pool, but their entry is
// still queued to the store's appender and awaited here: the pool thread is
// free again as soon as the read is done. A session token's record reads run
// like an API key's: checking the session is two local reads on SQLite (and
// now and then a queued record of its use), so they run here too; on
// PostgreSQL they take the pool-then-await way, as do record reads with any
// other bearer token (the root token's, checked against the store). Everything
// else (writes, sign-ins with Argon2id, a session's create, Kerberos) runs on
// the blocking pool and waits there.
//
// A record GET with an API key on such a store (no ?version) is read ahead
// instead: the store reads the row on its own thread (coalesced with other
// reads), and the request then runs here, on the I/O thread, with that row —
// no hop to the pool and back at all. Should the read fail, the request runs
// the pool's way, which reads again and reports the failure.
enum class RunPath { kBlocking, kInline, kPoolThenAwait, kPrefetchThenInline };

RunPath ChooseRunPath(const RouteMatch& match, const Request& request, const vault::Vault& vault) {
  switch (match.route) {
    case RouteId::kGetRecord:
    case RouteId::kFindRecords:
    case RouteId::kListVersions:
    case RouteId::kCreateRecord:
      break;
    default:
      return RunPath::kBlocking;
  }
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view auth = request.authorization;
  const bool bearer = auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer;
  if (!bearer) return RunPath::kBlocking;
  const std::string_view token = auth.substr(kBearer.size());
  if (!token.starts_with(auth::kApiKeyPrefix)) {
    if (match.route == RouteId::kCreateRecord) return RunPath::kBlocking;
    const bool session = token.starts_with(auth::kSessionTokenPrefix);
    return session && vault.ServesInline() ? RunPath::kInline : RunPath::kPoolThenAwait;
  }
  if (vault.ServesInline()) return RunPath::kInline;
  if (match.route == RouteId::kGetRecord && request.query.empty()) return RunPath::kPrefetchThenInline;
  // A create's write is one transaction with its entry, which a blocking
  // store commits on the calling thread.
  return match.route == RouteId::kCreateRecord ? RunPath::kBlocking : RunPath::kPoolThenAwait;
}

}  // namespace

awaitable<Response> Worker::RunInline(const RouteMatch& match, const Request& request,
                                      vault::RecordPrefetch* prefetch) {
  vault::AuditDeferral deferral;
  deferral.Install(/*changes=*/match.route == RouteId::kCreateRecord);
  if (prefetch != nullptr) prefetch->Install();
  Response response = Process(match, request);
  if (prefetch != nullptr) prefetch->Uninstall();
  deferral.Uninstall();
  co_return co_await AwaitDurable(deferral, match, request, response);
}

awaitable<Response> Worker::RunPrefetchedInline(const RouteMatch& match, const Request& request) {
  std::unique_ptr<vault::RecordPrefetch> prefetch =
      co_await asio::async_initiate<const asio::use_awaitable_t<executor>,
                                    void(std::unique_ptr<vault::RecordPrefetch>)>(
          [this, &match](auto handler) {
            // std::function wants a copyable target; the handler is move-only.
            struct Pending {
              decltype(handler) resume;
              asio::executor_work_guard<asio::io_context::executor_type> work;
            };
            auto pending = std::make_shared<Pending>(Pending{std::move(handler), asio::make_work_guard(io_)});
            server_->handlers().PrefetchRecord(match, [pending](std::unique_ptr<vault::RecordPrefetch> prefetch) {
              auto ex = pending->work.get_executor();
              asio::post(ex,
                         [pending, prefetch = std::move(prefetch)]() mutable { pending->resume(std::move(prefetch)); });
            });
          },
          use_awaitable);
  if (!prefetch || !prefetch->answered()) co_return co_await RunOnPoolThenAwait(match, request);
  co_return co_await RunInline(match, request, prefetch.get());
}

awaitable<Response> Worker::RunOnPoolThenAwait(const RouteMatch& match, const Request& request) {
  // Lives in this frame, which waits for the pool job (as RunBlocking's
  // references to match and request do).
  vault::AuditDeferral deferral;
  Response response = co_await asio::async_initiate<const asio::use_awaitable_t<executor>, void(Response)>(
      [this, &match, &request, &deferral](auto handler) {
        auto work = asio::make_work_guard(io_);
        asio::post(server_->pool(), [this, &match, &request, &deferral, handler = std::move(handler),
                                     work = std::move(work)]() mutable {
          // Installed on the pool thread: the vault finds it there.
          deferral.Install(/*changes=*/false);
          Response response = Process(match, request);
          deferral.Uninstall();
          auto ex = work.get_executor();
          asio::post(ex, [handler = std::move(handler), response = std::move(response)]() mutable {
            handler(std::move(response));
          });
        });
      },
      use_awaitable);
  co_return co_await AwaitDurable(deferral, match, request, response);
}

awaitable<Response> Worker::AwaitDurable(vault::AuditDeferral& deferral, const RouteMatch& match,
                                         const Request& request, Response& response) {
  // By reference: both live in the caller's frame, which outlives this call.
  if (!deferral.Queued()) co_return std::move(response);
  Status durable = co_await asio::async_initiate<const asio::use_awaitable_t<executor>, void(Status)>(
      [this, &deferral](auto handler) {
        // std::function wants a copyable target; the handler is move-only.
        struct Pending {
          decltype(handler) resume;
          asio::executor_work_guard<asio::io_context::executor_type> work;
        };
        auto pending = std::make_shared<Pending>(Pending{std::move(handler), asio::make_work_guard(io_)});
        deferral.OnDurable([pending](Status s) {
          auto ex = pending->work.get_executor();
          asio::post(ex, [pending, s = std::move(s)]() mutable { pending->resume(std::move(s)); });
        });
      },
      use_awaitable);
  // A create that lost a race with a key rotation wrote nothing: run it
  // again the ordinary way, which retries with the new key.
  if (durable.code() == StatusCode::kAborted && match.route == RouteId::kCreateRecord) {
    co_return co_await RunBlocking(match, request);
  }
  // The entry of this answer (or the write) could be lost: it is not sent.
  if (!durable.ok()) co_return StatusResponse(durable, request.request_id);
  co_return std::move(response);
}

// After an error answered before the request was fully read: stop sending,
// then read and drop what the client still sends for a moment, so its TCP
// stack does not turn our unread bytes into a reset that eats the answer.
awaitable<void> Worker::Linger(ConnectionState& state, RequestBuffer& buffer) {
  error_code ec;
  state.socket->shutdown(asio::socket_base::shutdown_send, ec);
  state.deadline = SteadyClock::now() + kLingerTime;
  std::size_t total = 0;
  while (!ec && total < (8u << 20)) {
    buffer.clear();
    total +=
        co_await state.socket->async_read_some(buffer.prepare(kReadChunk), asio::redirect_error(use_awaitable, ec));
  }
}

template <typename Stream>
awaitable<bool> Worker::Session(Stream& stream, ConnectionState& state, const std::string& client, bool reject) {
  const auto& l = server_->listener();
  RequestBuffer buffer(l.max_header_bytes + kReadChunk);
  RequestData data;
  std::string request_id;
  std::string out;
  std::string log_line;
  std::optional<RequestParser> parser;
  // However the session ends: what the last request and response held. (The
  // buffer and the strings' heap memory wipe themselves when released.)
  struct ScrubOnExit {
    RequestData& data;
    std::string& out;
    ~ScrubOnExit() {
      data.Clear();
      Wipe(out);
    }
  } scrub{data, out};

  for (;;) {
    parser.emplace(&data, l.max_header_bytes, l.max_body_bytes);
    const ReadResult read = co_await ReadRequest(stream, state, buffer, *parser, data);
    if (read == ReadResult::kClosed) co_return false;
    const SteadyClock::time_point start = SteadyClock::now();

    if (IsValidRequestId(data.request_id)) {
      request_id = data.request_id;
    } else {
      NewRequestId(&request_id);
    }
    const std::string_view target = data.target;
    const std::size_t qmark = target.find('?');
    const std::string_view path = target.substr(0, qmark);
    const std::string_view query = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);

    Response response;
    bool unread_input = false;  // the request was not read to its end
    switch (read) {
      case ReadResult::kHeaderTooLarge:
        response = ErrorResponse(431, "payload_too_large",
                                 "request headers exceed " + std::to_string(l.max_header_bytes) + " bytes", request_id);
        unread_input = true;
        break;
      case ReadResult::kBodyTooLarge:
        response = ErrorResponse(413, "payload_too_large",
                                 "request body exceeds " + std::to_string(l.max_body_bytes) + " bytes", request_id);
        unread_input = true;
        break;
      case ReadResult::kBadRequest:
        response = ErrorResponse(400, "invalid_argument", "malformed HTTP request", request_id);
        unread_input = true;
        break;
      case ReadResult::kClosed:
      case ReadResult::kRequest:
        break;
    }

    if (read == ReadResult::kRequest) {
      Request request;
      request.method = data.method;
      request.path = path;
      request.query = query;
      request.authorization = data.authorization;
      request.content_type = data.content_type;
      request.if_match = data.if_match;
      request.reason = data.reason;
      request.body = data.body;
      request.request_id = request_id;
      request.client_address = client;
      if (reject) {
        response = ErrorResponse(503, "unavailable", "the server is at its connection limit", request_id);
        response.retry_after = 1;
      } else if (path.empty() || path.front() != '/') {
        response = ErrorResponse(400, "invalid_argument", "the request target must be an absolute path", request_id);
      } else if (data.duplicate_header) {
        response = ErrorResponse(400, "invalid_argument", "a request header appears more than once", request_id);
      } else {
        const RouteMatch match = server_->router().Match(data.method, path);
        if (match.kind != RouteMatch::Kind::kFound) {
          response = RouteErrorResponse(match, request_id);
        } else if (match.route != RouteId::kHealth && match.route != RouteId::kSealStatus) {
          // Every other request waits for its audit entry to be durable (a
          // write's with the change, a read's in a group commit): off the
          // I/O thread, which keeps serving other connections meanwhile.
          state.deadline = SteadyClock::time_point::max();  // the vault decides how long a write takes
          switch (ChooseRunPath(match, request, server_->handlers().vault())) {
            case RunPath::kInline:
              response = co_await RunInline(match, request);
              break;
            case RunPath::kPoolThenAwait:
              response = co_await RunOnPoolThenAwait(match, request);
              break;
            case RunPath::kPrefetchThenInline:
              response = co_await RunPrefetchedInline(match, request);
              break;
            case RunPath::kBlocking:
              response = co_await RunBlocking(match, request);
              break;
          }
        } else {
          response = Process(match, request);
        }
      }
    }

    const bool keep_alive =
        read == ReadResult::kRequest && parser->keep_alive() && !reject && !draining_ && !response.close;
    out.clear();
    const bool head = data.method == Method::kHead;
    SerializeResponse(response, ResponseMeta{request_id, server_->hsts(), keep_alive, head}, &out);
    state.deadline = SteadyClock::now() + l.write_timeout;
    error_code ec;
    co_await asio::async_write(stream, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
    const std::size_t sent_bytes = out.size();
    // Sent: tokens, shares and record data in it need not stay in memory.
    Wipe(out);
    Wipe(response.body);

    if (log::AccessEnabled()) {
      const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();
      log_line.clear();
      log_line.append(request_id).append(" ").append(client).append(" ");
      AppendSanitised(data.method == Method::kOther ? std::string_view(data.method_text) : MethodName(data.method), 16,
                      &log_line);
      log_line.push_back(' ');
      AppendSanitised(path.empty() ? "-" : path, 256, &log_line);
      if (!query.empty()) {
        log_line.append(" q=").append(QueryKeysForLog(query));
      }
      log_line.push_back(' ');
      AppendInt(response.status, &log_line);
      log_line.push_back(' ');
      AppendInt(static_cast<std::int64_t>(sent_bytes), &log_line);
      log_line.push_back(' ');
      AppendInt(micros, &log_line);
      log_line.append("us ").append(response.principal);
      log::Access(log_line);
    }

    if (ec) co_return false;
    if (unread_input) {
      co_await Linger(state, buffer);
      co_return false;
    }
    if (!keep_alive) co_return true;
  }
}

// ---------------------------------------------------------------------------
// ServerImpl

Status ServerImpl::Init() {
  const Config::Listener& l = config_.listener;
  KURA_ASSIGN_OR_RETURN(ParsedAddress parsed, ParseListenAddress(l.address));
  KURA_ASSIGN_OR_RETURN(asio::ip::address address, ResolveHost(parsed.host));
  if (l.max_connections < 1) return InvalidArgumentError("listener.max_connections must be at least 1");
  if (l.max_header_bytes < 1024) return InvalidArgumentError("listener.max_header_bytes must be at least 1024");

  std::shared_ptr<ssl::context> tls;
  if (!l.plain_http) {
    KURA_ASSIGN_OR_RETURN(tls, MakeServerTlsContext(l));
    hsts_ = "max-age=" + std::to_string(l.hsts_max_age) + "; includeSubDomains";
  }

  int threads = l.threads > 0 ? l.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, 256);
  const bool reuse = threads > 1;

  if (reuse && parsed.port != 0) {
    // SO_REUSEPORT would let us share the port with another server already
    // listening there (a second kura by mistake). Probe without it first, so
    // a taken port fails loudly instead of splitting traffic.
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    error_code ec;
    const tcp::endpoint endpoint(address, parsed.port);
    probe.open(endpoint.protocol(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(endpoint, ec);
    if (ec) return UnavailableError("cannot listen on " + l.address + ": " + ec.message());
  }

  std::uint16_t port = parsed.port;
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>(this, i);
    KURA_RETURN_IF_ERROR(worker->Bind(tcp::endpoint(address, port), reuse));
    if (i == 0) port = worker->LocalPort();  // port 0: the others join the one the kernel chose
    worker->SetTlsContext(tls);
    workers_.push_back(std::move(worker));
  }
  port_ = port;
  std::string host = address.is_v6() ? "[" + address.to_string() + "]" : parsed.host;
  url_ = std::string(l.plain_http ? "http://" : "https://") + host + ":" + std::to_string(port_);
  return Status::Ok();
}

Status ServerImpl::Run() {
  if (running_) return FailedPreconditionError("Server::Run called twice");
  running_ = true;
  pool_ = std::make_unique<asio::thread_pool>(kBlockingThreads);
  control_work_.emplace(control_io_.get_executor());

  error_code ec;
  signals_.add(SIGINT, ec);
  signals_.add(SIGTERM, ec);
  signals_.add(SIGHUP, ec);
  WaitSignal();

  std::vector<std::thread> threads;
  threads.reserve(workers_.size());
  for (auto& worker : workers_) {
    worker->Start();
    Worker* w = worker.get();
    threads.emplace_back([this, w] {
      w->RunLoop();
      asio::post(control_io_, [this] {
        if (++workers_done_ == static_cast<int>(workers_.size())) {
          drain_timer_.cancel();
          error_code ignored;
          signals_.cancel(ignored);
          control_work_.reset();
        }
      });
    });
  }
  log::Info("http: serving on " + url_ + " with " + std::to_string(workers_.size()) + " I/O threads");

  control_io_.run();
  for (std::thread& t : threads) t.join();
  for (auto& worker : workers_) worker->CloseAll();
  // Writes still running after a drain timeout finish (the vault keeps its
  // promises); writes not yet started are dropped with their connections.
  pool_->stop();
  pool_->join();
  pool_.reset();
  log::Info("http: stopped");
  return Status::Ok();
}

void ServerImpl::WaitSignal() {
  signals_.async_wait([this](const error_code& ec, int signal) {
    if (ec) return;  // cancelled: the server has stopped
    if (signal == SIGHUP) {
      ReloadTls();
    } else {
      BeginDrain();
    }
    WaitSignal();
  });
}

void ServerImpl::BeginDrain() {
  if (draining_.exchange(true)) {
    // A second SIGTERM/SIGINT (or Shutdown): stop now.
    log::Warn("http: second stop request; closing all connections");
    StopWorkers();
    return;
  }
  log::Info("http: draining (at most " + std::to_string(config_.listener.drain_timeout.count()) + " s)");
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::post(w->io(), [w] { w->BeginDrain(); });
  }
  drain_timer_.expires_after(config_.listener.drain_timeout);
  drain_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    log::Warn("http: drain timeout reached; closing the remaining connections");
    StopWorkers();
  });
}

void ServerImpl::StopWorkers() {
  for (auto& worker : workers_) worker->io().stop();
}

void ServerImpl::ReloadTls() {
  if (config_.listener.plain_http) return;
  Result<std::shared_ptr<ssl::context>> context = MakeServerTlsContext(config_.listener);
  if (!context.ok()) {
    log::Error("http: TLS reload failed, keeping the current certificate: " + context.status().message());
    return;
  }
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::post(w->io(), [w, c = *context] { w->SetTlsContext(c); });
  }
  log::Info("http: TLS certificate and key reloaded");
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(const Config& config, vault::Vault* vault) {
  if (vault == nullptr) return InvalidArgumentError("Server::Create needs a vault");
  auto server = std::make_unique<ServerImpl>(config, vault);
  KURA_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace kura::http
