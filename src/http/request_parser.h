// RequestParser: Beast's HTTP/1.1 request parser, keeping only what kura
// reads (method, target, six headers, body) in a RequestData the connection
// owns and reuses, so a steady keep-alive connection parses without heap
// allocations. Internal to the http module.
//
// Thread safety: one parser per connection, used by its coroutine only.
#ifndef KURA_HTTP_REQUEST_PARSER_H_
#define KURA_HTTP_REQUEST_PARSER_H_

#include <boost/beast/http/basic_parser.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/secret.h"
#include "http/router.h"

namespace kura::http {

// What kura reads of one request; a connection reuses it (Clear() keeps the
// strings' capacity). Every string is a WipedString: the bytes of a request
// (a bearer token, a password, a share, record data) are wiped when the next
// request clears them and whenever a buffer is released.
struct RequestData {
  Method method = Method::kOther;
  WipedString method_text;  // for the access log when the method is unknown
  WipedString target;
  WipedString authorization;
  WipedString content_type;
  WipedString if_match;
  WipedString reason;
  WipedString request_id;  // X-Request-Id as sent (validated later)
  bool expect_continue = false;
  // A header kura reads appeared twice: ambiguous, refused with 400.
  bool duplicate_header = false;
  WipedString body;

  // Wipes every field (a connection keeps its RequestData between requests).
  void Clear();
};

class RequestParser : public boost::beast::http::basic_parser<true> {
 public:
  // `data` must outlive the parser; it is cleared here.
  RequestParser(RequestData* data, std::uint32_t header_limit, std::uint64_t body_limit);

 private:
  using error_code = boost::system::error_code;
  using string_view = boost::beast::string_view;
  using field = boost::beast::http::field;
  using verb = boost::beast::http::verb;

  void on_request_impl(verb method, string_view method_str, string_view target, int version, error_code& ec) override;
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(field name, string_view name_string, string_view value, error_code& ec) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code&) override {}

  RequestData* data_;
  std::uint64_t body_limit_;
};

}  // namespace kura::http

#endif  // KURA_HTTP_REQUEST_PARSER_H_
