// BindLoopback: a test's own listener or receiver on 127.0.0.1. Test-only.
#ifndef KURA_CORE_LOOPBACK_FOR_TEST_H_
#define KURA_CORE_LOOPBACK_FOR_TEST_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

namespace kura {

// Binds the socket `fd` (TCP or UDP) to 127.0.0.1:`port`, 0 meaning any free
// port; returns the port it got, or -1 (a bad fd, a port in use).
inline int BindLoopback(int fd, int port = 0) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

}  // namespace kura

#endif  // KURA_CORE_LOOPBACK_FOR_TEST_H_
