#include "server/http_request_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace updns::server {

struct HttpRequestParser::Impl {
  Impl(const HttpParserLimits& l, HttpParserEvents* e) : limits(l), events(e) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
  }

  Outcome Fail(int status) {
    error_status = status;
    failed = true;
    return Outcome::kError;
  }

  HttpParserLimits limits;
  HttpParserEvents* events;
  http_parser parser{};
  std::string in;  // bytes read and not yet parsed (pipelined requests)
  size_t in_pos = 0;
  bool failed = false;
  int error_status = 0;  // set by a callback that fails the request

  // The request being parsed.
  HttpRequest request;
  std::string url;
  bool last_was_value = true;  // header callbacks: a new name starts a header
  bool headers_complete = false;
  bool message_complete = false;
  bool keep_alive = false;
  size_t header_bytes = 0;   // fed to the parser before the headers completed
  size_t trailer_bytes = 0;  // chunked trailer fields
};

namespace {

using Impl = HttpRequestParser::Impl;

Impl* Of(http_parser* p) { return static_cast<Impl*>(p->data); }

bool HasNul(const char* at, size_t length) { return std::memchr(at, '\0', length) != nullptr; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

// Trailer fields of a chunked body are counted against the header limit
// and dropped: nothing may smuggle a header (say Authorization) in after
// the body, and http-parser alone would allow 80 KiB of them per request.
int OnTrailer(Impl* c, size_t length) {
  c->trailer_bytes += length;
  if (c->trailer_bytes <= c->limits.max_header_bytes) return 0;
  c->error_status = 431;
  return -1;
}

// http-parser callbacks. Data arrives in pieces split anywhere, so each
// callback appends. A nonzero return stops the parser with an error.
int OnMessageBegin(http_parser* p) {
  Impl* c = Of(p);
  if (c->events) c->events->OnRequestBegin();
  return 0;
}

int OnUrl(http_parser* p, const char* at, size_t length) {
  if (HasNul(at, length)) return -1;
  Of(p)->url.append(at, length);
  return 0;
}

int OnHeaderField(http_parser* p, const char* at, size_t length) {
  Impl* c = Of(p);
  if (HasNul(at, length)) return -1;
  if (c->headers_complete) return OnTrailer(c, length);
  if (c->last_was_value) c->request.headers.emplace_back();
  c->last_was_value = false;
  std::string& name = c->request.headers.back().first;
  for (size_t i = 0; i < length; ++i)
    name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
  return 0;
}

int OnHeaderValue(http_parser* p, const char* at, size_t length) {
  Impl* c = Of(p);
  if (HasNul(at, length)) return -1;
  if (c->headers_complete) return OnTrailer(c, length);
  if (c->request.headers.empty()) return -1;
  c->last_was_value = true;
  c->request.headers.back().second.append(at, length);
  return 0;
}

int OnHeadersComplete(http_parser* p) {
  Impl* c = Of(p);
  HttpRequest& r = c->request;
  c->headers_complete = true;
  // A CONNECT tunnel or absolute URLs longer than http_parser_url can index
  // are nothing we serve.
  http_parser_url u;
  http_parser_url_init(&u);
  if (p->method == HTTP_CONNECT || c->url.size() > UINT16_MAX ||
      http_parser_parse_url(c->url.data(), c->url.size(), 0, &u) != 0)
    return -1;
  auto field = [&](int f) {
    return (u.field_set & (1 << f)) ? c->url.substr(u.field_data[f].off, u.field_data[f].len)
                                    : std::string();
  };
  r.path = field(UF_PATH);
  if (r.path.empty()) r.path.push_back('/');  // not `= "/"`: GCC 12 -Wrestrict false positive
  r.query = field(UF_QUERY);
  r.method = http_method_str(static_cast<http_method>(p->method));
  r.http_major = p->http_major;
  r.http_minor = p->http_minor;
  for (auto& [name, value] : r.headers) {
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  }
  // Refuse a declared body before it is sent.
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->limits.max_body_bytes) {
    c->error_status = 413;
    return -1;
  }
  const std::string* expect = r.Header("expect");
  if (expect && EqualsNoCase(*expect, "100-continue") && r.http_minor >= 1 && c->events &&
      !c->events->OnExpectContinue())
    return -1;
  return 0;  // 1 would mean "no body" to http-parser
}

int OnBody(http_parser* p, const char* at, size_t length) {
  Impl* c = Of(p);
  if (c->request.body.size() + length > c->limits.max_body_bytes) {
    c->error_status = 413;  // chunked bodies have no length up front
    return -1;
  }
  c->request.body.append(at, length);
  return 0;
}

int OnMessageComplete(http_parser* p) {
  Impl* c = Of(p);
  c->message_complete = true;
  c->keep_alive = http_should_keep_alive(p) != 0;
  // Pipelined bytes stay in the buffer until the response has been sent.
  http_parser_pause(p, 1);
  return 0;
}

const http_parser_settings kSettings = {
    .on_message_begin = OnMessageBegin,
    .on_url = OnUrl,
    .on_header_field = OnHeaderField,
    .on_header_value = OnHeaderValue,
    .on_headers_complete = OnHeadersComplete,
    .on_body = OnBody,
    .on_message_complete = OnMessageComplete,
};

}  // namespace

HttpRequestParser::HttpRequestParser(const HttpParserLimits& limits, HttpParserEvents* events)
    : impl_(std::make_unique<Impl>(limits, events)) {}

HttpRequestParser::~HttpRequestParser() = default;

void HttpRequestParser::Append(std::string_view bytes) { impl_->in.append(bytes); }

HttpRequestParser::Outcome HttpRequestParser::Parse() {
  Impl& c = *impl_;
  if (c.failed) return Outcome::kError;
  while (!c.message_complete && c.in_pos < c.in.size()) {
    size_t feed = c.in.size() - c.in_pos;
    bool in_headers = !c.headers_complete;
    if (in_headers) {
      // Never let the parser see more header bytes than the limit allows.
      if (c.header_bytes >= c.limits.max_header_bytes) return c.Fail(431);
      feed = std::min(feed, c.limits.max_header_bytes - c.header_bytes);
    }
    size_t n = http_parser_execute(&c.parser, &kSettings, c.in.data() + c.in_pos, feed);
    c.in_pos += n;
    if (in_headers) c.header_bytes += n;
    if (c.message_complete) break;
    http_errno err = HTTP_PARSER_ERRNO(&c.parser);
    if (err == HPE_HEADER_OVERFLOW) return c.Fail(431);
    if (err != HPE_OK) return c.Fail(c.error_status ? c.error_status : 400);
    if (!c.headers_complete && c.header_bytes >= c.limits.max_header_bytes) return c.Fail(431);
  }
  c.in.erase(0, c.in_pos);
  c.in_pos = 0;
  return c.message_complete ? Outcome::kRequest : Outcome::kNeedMore;
}

void HttpRequestParser::Next() {
  Impl& c = *impl_;
  sockaddr_storage peer = c.request.peer;
  std::string peer_text = std::move(c.request.peer_text);
  c.request = HttpRequest{};
  c.request.peer = peer;
  c.request.peer_text = std::move(peer_text);
  c.url.clear();
  c.last_was_value = true;
  c.headers_complete = c.message_complete = c.keep_alive = false;
  c.header_bytes = c.trailer_bytes = 0;
  c.error_status = 0;
  http_parser_pause(&c.parser, 0);
}

void HttpRequestParser::DiscardInput() {
  impl_->in.clear();
  impl_->in_pos = 0;
}

HttpRequest& HttpRequestParser::request() { return impl_->request; }
bool HttpRequestParser::keep_alive() const { return impl_->keep_alive; }
int HttpRequestParser::error_status() const { return impl_->error_status; }

}  // namespace updns::server
