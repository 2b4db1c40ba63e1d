#include "cli/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loopback_for_test.h"

namespace kura::cli {
namespace {

using ::testing::HasSubstr;

TEST(ExitCodeTest, MapsEveryDocumentedStatus) {
  EXPECT_EQ(ExitCodeForHttpStatus(200), 0);
  EXPECT_EQ(ExitCodeForHttpStatus(201), 0);
  EXPECT_EQ(ExitCodeForHttpStatus(204), 0);
  EXPECT_EQ(ExitCodeForHttpStatus(400), 8);
  EXPECT_EQ(ExitCodeForHttpStatus(413), 8);
  EXPECT_EQ(ExitCodeForHttpStatus(422), 8);
  EXPECT_EQ(ExitCodeForHttpStatus(401), 3);
  EXPECT_EQ(ExitCodeForHttpStatus(403), 4);
  EXPECT_EQ(ExitCodeForHttpStatus(404), 5);
  EXPECT_EQ(ExitCodeForHttpStatus(409), 6);
  EXPECT_EQ(ExitCodeForHttpStatus(503), 7);
  EXPECT_EQ(ExitCodeForHttpStatus(307), 1);
  EXPECT_EQ(ExitCodeForHttpStatus(405), 1);
  EXPECT_EQ(ExitCodeForHttpStatus(429), 1);
  EXPECT_EQ(ExitCodeForHttpStatus(500), 1);
}

TEST(DescribeErrorResponseTest, UsesTheErrorModel) {
  Response r{409, R"({"error":{"code":"aborted","message":"version conflict","request_id":"req-1"}})", {}};
  EXPECT_EQ(DescribeErrorResponse(r), "version conflict (aborted, HTTP 409, request req-1)");
}

TEST(DescribeErrorResponseTest, FallsBackToStatusAndExcerpt) {
  EXPECT_EQ(DescribeErrorResponse({502, "Bad Gateway\n", {}}), "HTTP 502: Bad Gateway ");
  EXPECT_EQ(DescribeErrorResponse({500, "", {}}), "HTTP 500");
  EXPECT_EQ(DescribeErrorResponse({307, "", {{"location", "https://eu.example/v1/x"}}}),
            "HTTP 307: redirected to https://eu.example/v1/x");
  EXPECT_EQ(DescribeErrorResponse({500, R"({"error":"flat"})", {}}), R"(HTTP 500: {"error":"flat"})");
}

TEST(EscapeComponentTest, KeepsUnreservedEscapesTheRest) {
  EXPECT_EQ(EscapeComponent("abc-XYZ_0.9~"), "abc-XYZ_0.9~");
  EXPECT_EQ(EscapeComponent("a/b"), "a%2Fb");
  EXPECT_EQ(EscapeComponent("a b+c@d?e&f=g#"), "a%20b%2Bc%40d%3Fe%26f%3Dg%23");
  EXPECT_EQ(EscapeComponent("ü"), "%C3%BC");
  EXPECT_EQ(EscapeComponent(".."), "..");
}

TEST(MakeCurlTransportTest, ValidatesAddress) {
  EXPECT_TRUE(MakeCurlTransport({"https://127.0.0.1:8443", "", ""}).ok());
  EXPECT_TRUE(MakeCurlTransport({"https://kura.example.com", "", ""}).ok());
  EXPECT_TRUE(MakeCurlTransport({"http://127.0.0.1:8080", "", ""}).ok());
  EXPECT_TRUE(MakeCurlTransport({"http://localhost:8080/", "", ""}).ok());
  EXPECT_TRUE(MakeCurlTransport({"http://[::1]:8080", "", ""}).ok());
  auto plain = MakeCurlTransport({"http://kura.example.com", "tok", ""});
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(plain.status().message(), HasSubstr("plain HTTP"));
  EXPECT_FALSE(MakeCurlTransport({"ftp://127.0.0.1", "", ""}).ok());
  EXPECT_FALSE(MakeCurlTransport({"127.0.0.1:8443", "", ""}).ok());
  EXPECT_FALSE(MakeCurlTransport({"", "", ""}).ok());
}

// A port on loopback that nothing listens on.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = BindLoopback(fd);
  ::close(fd);
  return port;
}

TEST(CurlTransportTest, ConnectionRefusedIsUnavailable) {
  auto t = MakeCurlTransport({"https://127.0.0.1:" + std::to_string(ClosedPort()), "secret-token", ""});
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Send({"GET", "/v1/sys/health", std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("cannot reach https://127.0.0.1:"));
  EXPECT_THAT(r.status().message(), ::testing::Not(HasSubstr("secret-token")));
}

// A port on loopback that listens but never accepts: the kernel completes
// the TCP handshake into the backlog, so a client gets as far as TLS set-up.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    port_ = BindLoopback(fd_);
    EXPECT_GT(port_, 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(CurlTransportTest, MissingCaFileIsUnavailable) {
  // The CA file is loaded once connected (a closed port fails before that).
  SilentListener listener;
  auto t = MakeCurlTransport({"https://127.0.0.1:" + std::to_string(listener.port()), "", "/nonexistent/ca.pem"});
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Send({"GET", "/v1/sys/health", std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  // libcurl's error names the file it could not load.
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/ca.pem"));
}

}  // namespace
}  // namespace kura::cli
