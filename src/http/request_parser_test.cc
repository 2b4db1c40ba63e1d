#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace kura::http {
namespace {

// Feeds `text` to a fresh parser the way the server does; returns the error.
boost::system::error_code Parse(std::string_view text, RequestData* data, std::uint32_t header_limit = 16384,
                                std::uint64_t body_limit = 1 << 20, bool* done = nullptr) {
  RequestParser parser(data, header_limit, body_limit);
  boost::system::error_code ec;
  while (!text.empty() && !parser.is_done()) {
    std::size_t n = parser.put(boost::asio::buffer(text.data(), text.size()), ec);
    if (ec) return ec;
    text.remove_prefix(n);
    if (n == 0) break;
  }
  if (done) *done = parser.is_done();
  return ec;
}

TEST(RequestParserTest, KeepsTheHeadersKuraReads) {
  RequestData data;
  bool done = false;
  auto ec = Parse(
      "PUT /v1/t/acme/collections/c/records/r1?x=1 HTTP/1.1\r\n"
      "Host: localhost\r\n"
      "authorization: Bearer tok\r\n"
      "Content-Type: application/json\r\n"
      "If-Match: \"3\"\r\n"
      "X-Kura-Reason: support\r\n"
      "x-request-id: abc\r\n"
      "Content-Length: 2\r\n"
      "\r\n"
      "{}",
      &data, 16384, 1 << 20, &done);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(done);
  EXPECT_EQ(data.method, Method::kPut);
  EXPECT_EQ(data.target, "/v1/t/acme/collections/c/records/r1?x=1");
  EXPECT_EQ(data.authorization, "Bearer tok");
  EXPECT_EQ(data.content_type, "application/json");
  EXPECT_EQ(data.if_match, "\"3\"");
  EXPECT_EQ(data.reason, "support");
  EXPECT_EQ(data.request_id, "abc");
  EXPECT_EQ(data.body, "{}");
  EXPECT_FALSE(data.duplicate_header);
  EXPECT_FALSE(data.expect_continue);
}

TEST(RequestParserTest, ChunkedBodyAndExpect) {
  RequestData data;
  bool done = false;
  auto ec = Parse(
      "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
      &data, 16384, 1 << 20, &done);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(done);
  EXPECT_EQ(data.body, "{\"a\":1}");
  EXPECT_TRUE(data.expect_continue);
}

TEST(RequestParserTest, DuplicateAuthorizationIsFlagged) {
  RequestData data;
  auto ec = Parse("GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n", &data);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(data.duplicate_header);
}

TEST(RequestParserTest, Limits) {
  RequestData data;
  std::string big = "GET / HTTP/1.1\r\nX-Pad: " + std::string(4000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Parse(big, &data, 1024), boost::beast::http::error::header_limit);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", &data, 1024, 10),
            boost::beast::http::error::body_limit);
  EXPECT_EQ(
      Parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'x') + "\r\n0\r\n\r\n",
            &data, 1024, 10),
      boost::beast::http::error::body_limit);
}

TEST(RequestParserTest, ReuseClearsThePreviousRequest) {
  RequestData data;
  ASSERT_FALSE(Parse("POST /a HTTP/1.1\r\nAuthorization: Bearer x\r\nContent-Length: 1\r\n\r\nx", &data));
  ASSERT_FALSE(Parse("GET /b HTTP/1.1\r\n\r\n", &data));
  EXPECT_EQ(data.target, "/b");
  EXPECT_EQ(data.method, Method::kGet);
  EXPECT_TRUE(data.authorization.empty());
  EXPECT_TRUE(data.body.empty());
}

TEST(RequestParserTest, MalformedRequestLine) {
  RequestData data;
  EXPECT_TRUE(Parse("GARBAGE\r\n\r\n", &data));
}

}  // namespace
}  // namespace kura::http
