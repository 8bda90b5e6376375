// The request side of one HTTP/1.x connection, apart from the socket:
// bytes in, requests out, parsed by the http-parser library within the
// server's size limits. HttpServer keeps one per connection; tests and the
// fuzzers (tests/fuzz/) drive it directly.
//
// Bytes may arrive split anywhere; the requests parsed do not depend on how.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "server/http_server.h"

namespace updns::server {

struct HttpParserLimits {
  size_t max_header_bytes = 8192;  // request line + headers; also chunked trailers
  size_t max_body_bytes = 65536;
};

// What the connection does while a request is parsed. Both run inside
// Parse().
class HttpParserEvents {
 public:
  virtual ~HttpParserEvents() = default;
  // The first byte of a request was parsed (its read deadline starts now).
  virtual void OnRequestBegin() {}
  // The headers of an HTTP/1.1 request with "Expect: 100-continue" are
  // complete and within the limits: the client waits for "100 Continue"
  // before it sends the body. Returning false fails the request (400).
  virtual bool OnExpectContinue() { return true; }
};

class HttpRequestParser {
 public:
  enum class Outcome {
    kNeedMore,  // every buffered byte is parsed; a request may have begun
    kRequest,   // request() is complete; parsing waits for Next()
    kError,     // error_status() is the answer (400, 413, 431); the connection ends
  };

  // `events` (optional) must outlive the parser.
  explicit HttpRequestParser(const HttpParserLimits& limits, HttpParserEvents* events = nullptr);
  ~HttpRequestParser();
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Buffers bytes read from the connection, for Parse().
  void Append(std::string_view bytes);
  // Parses buffered bytes until a request is complete, the buffer is used
  // up, or the request fails. Bytes after a complete request stay buffered
  // (pipelining). Returns kRequest again until Next(), and kError for ever
  // once it failed.
  Outcome Parse();
  // Forgets the complete request, keeping request().peer and peer_text, so
  // that Parse() goes on with the bytes buffered after it.
  void Next();
  // Drops every buffered byte (input read after the last response).
  void DiscardInput();

  // The request being parsed; complete after kRequest. Set peer and
  // peer_text once, before the first Parse().
  HttpRequest& request();
  // The complete request allows another one on this connection.
  bool keep_alive() const;
  // The HTTP status to answer after kError, else 0.
  int error_status() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace updns::server
