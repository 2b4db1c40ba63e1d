#include "http/response.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kura::http {
namespace {

TEST(HttpStatusForTest, MapsEveryCodeAsDocumented) {
  const std::pair<StatusCode, int> table[] = {
      {StatusCode::kOk, 200},
      {StatusCode::kInvalidArgument, 400},
      {StatusCode::kUnauthenticated, 401},
      {StatusCode::kPermissionDenied, 403},
      {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},
      {StatusCode::kAborted, 409},
      {StatusCode::kResourceExhausted, 429},
      {StatusCode::kFailedPrecondition, 503},
      {StatusCode::kUnavailable, 503},
      {StatusCode::kDataLoss, 500},
      {StatusCode::kInternal, 500},
  };
  for (const auto& [code, http] : table) {
    EXPECT_EQ(HttpStatusFor(code), http) << StatusCodeName(code);
  }
}

TEST(ErrorResponseTest, BodyShape) {
  Response r = ErrorResponse(404, "not_found", "no such \"route\"", "rid-1");
  EXPECT_EQ(r.status, 404);
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body, nlohmann::json::parse(
                      R"({"error":{"code":"not_found","message":"no such \"route\"","request_id":"rid-1"}})"));
}

TEST(StatusResponseTest, CodesAndHeaders) {
  Response r = StatusResponse(UnauthenticatedError("invalid or expired token"), "r");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "unauthenticated");
  EXPECT_NE(r.www_authenticate.find("Bearer"), std::string_view::npos);

  r = StatusResponse(FailedPreconditionError("sealed"), "r");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "sealed");
  EXPECT_GT(r.retry_after, 0);

  r = StatusResponse(AbortedError("stale"), "r");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "conflict");

  r = StatusResponse(ResourceExhaustedError("slow down"), "r");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.retry_after, 1);
}

TEST(StatusResponseTest, InternalDetailsStayInTheServer) {
  Response r = StatusResponse(InternalError("sqlite: disk I/O error at page 7"), "rid-9");
  EXPECT_EQ(r.status, 500);
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "internal");
  EXPECT_EQ(body["error"]["request_id"], "rid-9");
  EXPECT_EQ(r.body.find("sqlite"), std::string::npos);
}

TEST(SerializeResponseTest, HeadersAndBody) {
  Response r;
  r.status = 200;
  r.body = R"({"id":"r1"})";
  r.etag = 3;
  std::string out;
  SerializeResponse(r, ResponseMeta{"rid", "max-age=63072000; includeSubDomains", true}, &out);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(out.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nContent-Length: 11\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Request-Id: rid\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nStrict-Transport-Security: max-age=63072000; includeSubDomains\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nETag: \"3\"\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nCache-Control: no-store"), std::string::npos);
  EXPECT_EQ(out.find("Connection: close"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 15), "\r\n\r\n{\"id\":\"r1\"}");
}

TEST(SerializeResponseTest, HeadGetsTheHeadersWithoutTheContent) {
  Response r = ErrorResponse(405, "method_not_allowed", "no HEAD here", "rid");
  std::string out;
  SerializeResponse(r, ResponseMeta{"rid", "", true, /*head=*/true}, &out);
  EXPECT_EQ(out.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n") << out;
}

TEST(SerializeResponseTest, NoContentCloseAndPlain) {
  Response r;
  r.status = 204;
  r.retry_after = 1;
  r.allow = "GET";
  std::string out;
  SerializeResponse(r, ResponseMeta{"rid", "", false}, &out);
  EXPECT_EQ(out.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_EQ(out.find("Strict-Transport-Security"), std::string::npos);
  EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nRetry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nAllow: GET\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

}  // namespace
}  // namespace kura::http
