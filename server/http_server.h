// An HTTP/1.1 server on its own libuv loop and thread, parsing with the
// http-parser library. Requests are handed to one handler; the handler
// answers through the Reply it is given, at once or later (e.g. after the
// writer's commit), from any thread.
//
// Limits: request line + headers, body size, connection count and a read
// timeout (also against clients that send slowly). HTTP/1.0 and 1.1,
// keep-alive; pipelined requests are answered one after another.
//
// HTTPS listeners (tls_listen) serve the same requests over TLS 1.2/1.3
// (server/tls.h) with the same limits; their connections count towards
// max_connections, and the TLS handshake must complete within the read
// timeout. A failed handshake (plain HTTP, TLS 1.1, garbage) closes that
// connection only and is logged at debug level with the peer.
//
// Errors the server answers itself (400, 408, 413, 431, 500) carry a short
// plain-text body and close the connection. Those bodies never contain
// "good", "nochg" or "OK", which dyndns clients look for as substrings.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace updns::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // URL path, not decoded: "/nic/update"
  std::string query;   // raw query string without '?', not decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  sockaddr_storage peer{};  // the client's address
  std::string peer_text;    // "192.0.2.1" or "2001:db8::1" (no port)
                            // IPv4-mapped IPv6 peers (::ffff:a.b.c.d) are given
                            // as AF_INET in both `peer` and `peer_text`.
  unsigned http_major = 1, http_minor = 1;

  // First header of that (lowercase) name, or nullptr.
  const std::string* Header(std::string_view name) const;
};

// The body is not sent for HEAD requests nor for 1xx, 204 and 304 responses.
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
};

// Sends the response to its request. Callable once, from any thread; if the
// client is gone by then, or the server stopped, the response is dropped.
// Later calls are ignored. If every copy is destroyed without a call, the
// client gets a 500. Copies may outlive the server.
// The server owns framing: Content-Length, Connection and Transfer-Encoding
// in `headers` are ignored, and so is any header with CR, LF or NUL in it.
using HttpReply = std::function<void(HttpResponse)>;
// Runs on the loop thread and should return quickly; slow work replies later.
// The request is valid only during the call (copy what a later reply needs).
// No further request of that connection is parsed until the reply is sent.
// An exception from the handler is logged and answered with a 500.
using HttpHandler = std::function<void(const HttpRequest&, HttpReply)>;

struct HttpServerOptions {
  std::vector<config::Endpoint> listen;      // plain HTTP
  std::vector<config::Endpoint> tls_listen;  // HTTPS; needs tls_cert and tls_key
  std::string tls_cert;                      // PEM: the certificate, then its intermediates
  std::string tls_key;                       // PEM: its unencrypted private key

  size_t max_header_bytes = 8192;  // request line + headers
  size_t max_body_bytes = 65536;
  unsigned read_timeout_ms = 10000;  // a request must arrive completely within this
  unsigned idle_timeout_ms = 30000;  // between keep-alive requests
  unsigned max_connections = 1024;
};

class HttpServer {
 public:
  // Binds the listeners now, so that start-up fails early naming the address:
  // "cannot bind 127.0.0.1@8053 (http): Address already in use". Listeners use
  // SO_REUSEADDR but not SO_REUSEPORT: a second daemon on the port must fail.
  // With tls_listen, also loads the certificate and key, failing with
  // "http.tls.key FILE: key does not match the certificate CERT" and such.
  static Result<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options,
                                                    HttpHandler handler);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Runs the loop on a new thread. Call at most once.
  void Start();
  // Closes every listener and connection (pending replies are dropped), lets
  // the loop finish and joins its thread. Safe to call more than once.
  // REQUIRES: not called from the loop thread (a handler or a posted task).
  void Stop();

  // Runs `task` on the server's loop thread (thread-safe). Tasks run in the
  // order posted; tasks posted after Stop() are destroyed without running.
  // An exception from a task is logged and dropped.
  void Post(std::function<void()> task);

  // Reads tls_cert and tls_key again (e.g. renewed files). On success, HTTPS
  // connections accepted after the return use the new certificate, while
  // connections already open go on with the old one until they close. On
  // failure nothing changes: the old certificate keeps serving and the
  // error names the file at fault. Invalid when there is no tls_listen.
  // Thread-safe; reads the files on the calling thread.
  Status ReloadTls();

  // A reload's limits: header and body sizes, read and idle timeouts and
  // max_connections, from `limits`, for what happens on the loop from then
  // on (a connection keeps the sizes it was accepted with). The listeners
  // and the TLS files stay. Thread-safe.
  void SetLimits(const HttpServerOptions& limits);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace updns::server
