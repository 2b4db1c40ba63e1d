// The HTTPS front door: Boost.Beast/Asio with C++20 coroutines, one
// io_context per I/O thread, each with its own SO_REUSEPORT acceptor. It
// translates HTTP to vault calls and back; it decides nothing itself.
//
// Thread safety: Create/Run from one thread; Shutdown() from any thread or a
// signal-handling context of the server itself.
#ifndef KURA_HTTP_SERVER_H_
#define KURA_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/status.h"

namespace kura::vault {
class Vault;
}

namespace kura::http {

class Server {
 public:
  // Loads TLS material and binds the listener (port 0 picks a free port), but
  // does not serve yet. InvalidArgument for unusable TLS files or addresses,
  // Unavailable when the address cannot be bound. `vault` must outlive the server.
  static Result<std::unique_ptr<Server>> Create(const Config& config, vault::Vault* vault);
  virtual ~Server() = default;

  virtual std::uint16_t port() const = 0;
  // "https://127.0.0.1:8443" (or http:// in plain dev mode).
  virtual std::string url() const = 0;

  // Serves until Shutdown() or SIGTERM/SIGINT, then stops accepting, lets
  // in-flight requests finish (up to listener.drain_timeout) and returns.
  // SIGHUP reloads the TLS certificate and key without a restart.
  virtual Status Run() = 0;
  virtual void Shutdown() = 0;

  // How many times an idle TLS connection gave its record buffers back.
  virtual std::int64_t idle_tls_buffers_released() const = 0;
};

}  // namespace kura::http

#endif  // KURA_HTTP_SERVER_H_
