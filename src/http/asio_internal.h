// The Asio/Beast types of the http module, with a concrete executor type:
// Boost 1.74's type-erased any_io_executor costs measurably per operation.
// Internal to the http module: nothing outside src/http includes Asio.
#ifndef KURA_HTTP_ASIO_INTERNAL_H_
#define KURA_HTTP_ASIO_INTERNAL_H_

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kura::http {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

using executor = asio::io_context::executor_type;
template <typename T = void>
using awaitable = asio::awaitable<T, executor>;
inline constexpr asio::use_awaitable_t<executor> use_awaitable;
using tcp_socket = asio::basic_stream_socket<tcp, executor>;
using tcp_acceptor = asio::basic_socket_acceptor<tcp, executor>;
using tls_stream = ssl::stream<tcp_socket>;

}  // namespace kura::http

#endif  // KURA_HTTP_ASIO_INTERNAL_H_
