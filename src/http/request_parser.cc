#include "http/request_parser.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace kura::http {
namespace {

void Store(WipedString* slot, boost::beast::string_view value, bool* duplicate) {
  if (!slot->empty()) *duplicate = true;
  slot->assign(value.data(), value.size());
}

}  // namespace

void RequestData::Clear() {
  method = Method::kOther;
  for (WipedString* s : {&method_text, &target, &authorization, &content_type, &if_match, &reason, &request_id, &body}) {
    Wipe(*s);
  }
  expect_continue = false;
  duplicate_header = false;
}

RequestParser::RequestParser(RequestData* data, std::uint32_t max_header_bytes, std::uint64_t max_body_bytes)
    : data_(data), body_limit_(max_body_bytes) {
  data_->Clear();
  header_limit(max_header_bytes);
  body_limit(max_body_bytes);
}

void RequestParser::on_request_impl(verb method, string_view method_str, string_view target, int, error_code&) {
  switch (method) {
    case verb::get:
      data_->method = Method::kGet;
      break;
    case verb::post:
      data_->method = Method::kPost;
      break;
    case verb::put:
      data_->method = Method::kPut;
      break;
    case verb::delete_:
      data_->method = Method::kDelete;
      break;
    case verb::head:
      data_->method = Method::kHead;
      break;
    default:
      data_->method = Method::kOther;
      break;
  }
  data_->method_text.assign(method_str.data(), std::min<std::size_t>(method_str.size(), 16));
  data_->target.assign(target.data(), target.size());
}

void RequestParser::on_field_impl(field name, string_view name_string, string_view value, error_code&) {
  bool* dup = &data_->duplicate_header;
  switch (name) {
    case field::authorization:
      Store(&data_->authorization, value, dup);
      return;
    case field::content_type:
      Store(&data_->content_type, value, dup);
      return;
    case field::if_match:
      Store(&data_->if_match, value, dup);
      return;
    case field::expect:
      if (boost::beast::iequals(value, "100-continue")) data_->expect_continue = true;
      return;
    default:
      break;
  }
  if (boost::beast::iequals(name_string, "x-request-id")) {
    Store(&data_->request_id, value, dup);
  } else if (boost::beast::iequals(name_string, "x-kura-reason")) {
    Store(&data_->reason, value, dup);
  }
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) {
  if (content_length) {
    if (*content_length > body_limit_) {
      ec = boost::beast::http::error::body_limit;
      return;
    }
    data_->body.reserve(static_cast<std::size_t>(*content_length));
  }
}

std::size_t RequestParser::on_body_impl(string_view body, error_code& ec) {
  if (data_->body.size() + body.size() > body_limit_) {
    ec = boost::beast::http::error::body_limit;
    return 0;
  }
  data_->body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) {
  return on_body_impl(body, ec);
}

}  // namespace kura::http
