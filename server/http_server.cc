#include "server/http_server.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/log.h"
#include "server/http_request_parser.h"
#include "server/tls.h"

namespace updns::server {
namespace {

constexpr size_t kReadChunk = size_t{64} * 1024;
// After the last response of a connection we send FIN and keep reading (and
// discarding) for a while: closing with unread input makes the kernel send
// RST, which can destroy the response before the client has read it.
constexpr unsigned kLingerMs = 2000;

// The queue behind Post() and every HttpReply. Shared, because a reply may
// outlive the server: once `async` is null the server has stopped and tasks
// are dropped.
struct TaskQueue {
  std::mutex mutex;
  std::vector<std::function<void()>> tasks;  // guarded by mutex
  uv_async_t* async = nullptr;               // guarded by mutex

  void Post(std::function<void()> task) {
    std::unique_lock lock(mutex);
    if (async == nullptr) return;  // `task` dies after unlocking (see Close)
    tasks.push_back(std::move(task));
    uv_async_send(async);  // under the lock: Close() cannot free it meanwhile
  }
  std::vector<std::function<void()>> Take() {
    std::lock_guard lock(mutex);
    return std::exchange(tasks, {});
  }
  // Tasks are destroyed by the caller, outside the lock: a task may hold the
  // last copy of an HttpReply, whose destructor posts.
  std::vector<std::function<void()>> Close() {
    std::lock_guard lock(mutex);
    async = nullptr;
    return std::exchange(tasks, {});
  }
};

enum class State {
  kHandshake,  // HTTPS: the TLS handshake is under way (read timer)
  kIdle,       // between requests (idle timer)
  kReading,    // a request has begun (read timer, from its first byte)
  kHandling,   // the handler has the request; not reading, no timer
  kWriting,    // the response is in the socket's queue (idle timer)
  kLingering,  // FIN sent, discarding input until EOF (linger timer)
};

struct Connection;

struct Listener {
  HttpServer::Impl* server;
  bool tls;  // an HTTPS listener
  uv_tcp_t handle{};
};

struct WriteRequest {
  uv_write_t req{};
  Connection* connection;
  std::string bytes;
};

const char* ReasonPhrase(int status) {
  const char* text = http_status_str(static_cast<http_status>(status));
  return std::strcmp(text, "<unknown>") == 0 ? "Unknown" : text;
}

// Plain text bodies of the errors the server answers itself.
HttpResponse ErrorResponse(int status) {
  HttpResponse r;
  r.status = status;
  r.body = status == 400   ? "bad request\n"
           : status == 408 ? "request timeout\n"
           : status == 413 ? "request body too large\n"
           : status == 431 ? "request header fields too large\n"
                           : "internal server error\n";
  return r;
}

// What escaped from user code (a handler or a posted task), for the log.
// REQUIRES: called inside a catch block.
const char* CurrentExceptionText() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();  // the object lives until the caller's handler ends
  } catch (...) {
    return "unknown exception";
  }
}

bool IsSafeHeaderText(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::string HttpDate() {
  char text[64];
  time_t now = time(nullptr);
  tm utc{};
  gmtime_r(&now, &utc);
  size_t n = strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text, n);
}

// Writes sockaddr `peer` as text, turning ::ffff:a.b.c.d into a.b.c.d (the
// dyndns code takes the client's address as its IPv4 address).
void NormalizePeer(sockaddr_storage& peer, std::string& text) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (peer.ss_family == AF_INET6) {
    sockaddr_in6 a6;
    std::memcpy(&a6, &peer, sizeof a6);
    if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
      sockaddr_in a4{};
      a4.sin_family = AF_INET;
      a4.sin_port = a6.sin6_port;
      std::memcpy(&a4.sin_addr, &a6.sin6_addr.s6_addr[12], 4);
      peer = {};
      std::memcpy(&peer, &a4, sizeof a4);
    } else {
      inet_ntop(AF_INET6, &a6.sin6_addr, buf, sizeof buf);
    }
  }
  if (peer.ss_family == AF_INET) {
    sockaddr_in a4;
    std::memcpy(&a4, &peer, sizeof a4);
    inet_ntop(AF_INET, &a4.sin_addr, buf, sizeof buf);
  }
  text = buf;
}

// `scheme` ("http", "https") names the listener in messages.
Result<int> OpenListenSocket(const config::Endpoint& ep, const char* scheme) {
  auto fail = [&](int fd, const char* what) -> Status {
    std::string message = std::string("cannot ") + what + " " + ep.text + " (" + scheme +
                          "): " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return Status::IoError(message);
  };
  int fd = socket(ep.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "create a socket for");
  int one = 1;
  // REUSEADDR only: restarts do not wait for TIME_WAIT, yet a second daemon
  // on the same port fails instead of silently sharing it (REUSEPORT would).
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ep.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ep.address), ep.address_length) != 0)
    return fail(fd, "bind");
  return fd;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return &value;
  return nullptr;
}

struct HttpServer::Impl {
  Impl(const HttpServerOptions& o, HttpHandler h) : options(o), handler(std::move(h)) {}

  HttpServerOptions options;
  HttpHandler handler;
  uv_loop_t loop{};
  uv_async_t stop_async{};
  uv_async_t post_async{};
  std::shared_ptr<TaskQueue> queue = std::make_shared<TaskQueue>();
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unordered_map<uint64_t, Connection*> connections;  // by id
  uint64_t next_id = 1;
  bool stopping = false;
  std::thread thread;
  bool started = false;
  char read_buffer[kReadChunk];  // one stream is read at a time per loop
  std::string plaintext;         // decrypted input of the TLS stream being read

  // What new HTTPS connections use; ReloadTls() swaps it from another
  // thread. Connections keep the SSL_CTX they started with (SSL_new takes a
  // reference), so a swap never disturbs them.
  std::mutex tls_mutex;
  std::shared_ptr<const TlsContext> tls_context;  // guarded by tls_mutex

  TlsFiles tls_files() const { return {options.tls_cert, options.tls_key, "http.tls"}; }
  std::shared_ptr<const TlsContext> CurrentTlsContext() {
    std::lock_guard lock(tls_mutex);
    return tls_context;
  }

  void OnStop();
  void RunTasks();
  void Deliver(uint64_t id, const HttpResponse& response);
};

namespace {

void StartTimer(Connection* c, unsigned ms);
bool Send(Connection* c, std::string bytes);
const char* PeerText(Connection* c);

struct Connection final : HttpParserEvents {
  Connection(HttpServer::Impl* s, uint64_t i)
      : server(s),
        id(i),
        parser(HttpParserLimits{s->options.max_header_bytes, s->options.max_body_bytes}, this) {}

  void OnRequestBegin() override {
    state = State::kReading;
    StartTimer(this, server->options.read_timeout_ms);  // from the first byte, never extended
  }
  bool OnExpectContinue() override { return Send(this, "HTTP/1.1 100 Continue\r\n\r\n"); }

  HttpServer::Impl* server;
  uint64_t id;
  uv_tcp_t handle{};
  uv_timer_t timer{};
  uv_shutdown_t shutdown{};
  int open_handles = 2;
  State state = State::kIdle;
  HttpRequestParser parser;         // also holds the request being parsed
  std::unique_ptr<TlsSession> tls;  // HTTPS only: bytes pass through it both ways
  size_t pending_write = 0;
  bool close_after_write = false;
};

// Lives as long as any copy of its HttpReply: Send once, or a 500 from the
// destructor so that a forgotten reply does not hang the connection.
struct ReplySlot {
  std::shared_ptr<TaskQueue> queue;
  HttpServer::Impl* server;  // only used by the task, which runs only while it lives
  uint64_t connection_id;
  std::atomic<bool> used{false};

  void Send(HttpResponse response) {
    if (used.exchange(true)) return;
    queue->Post(
        [server = server, id = connection_id, r = std::move(response)] { server->Deliver(id, r); });
  }
  ~ReplySlot() {
    if (!used.load()) Send(ErrorResponse(500));
  }
};

uv_handle_t* AsHandle(auto* h) { return reinterpret_cast<uv_handle_t*>(h); }
uv_stream_t* AsStream(Connection* c) { return reinterpret_cast<uv_stream_t*>(&c->handle); }

void CloseConnection(Connection* c) {
  if (uv_is_closing(AsHandle(&c->handle))) return;
  c->server->connections.erase(c->id);
  auto on_closed = [](uv_handle_t* h) {
    auto* conn = static_cast<Connection*>(h->data);
    if (--conn->open_handles == 0) delete conn;
  };
  uv_close(AsHandle(&c->handle), on_closed);
  uv_close(AsHandle(&c->timer), on_closed);
}

void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
void Fail(Connection* c, int status);
void AfterWrite(Connection* c);
void Dispatch(Connection* c);

void StartReading(Connection* c) {
  uv_read_start(
      AsStream(c),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* conn = static_cast<Connection*>(h->data);
        *buf = uv_buf_init(conn->server->read_buffer, kReadChunk);
      },
      OnRead);
}

void StartTimer(Connection* c, unsigned ms) {
  uv_timer_start(
      &c->timer,
      [](uv_timer_t* t) {
        auto* conn = static_cast<Connection*>(t->data);
        if (conn->state == State::kReading) return Fail(conn, 408);  // slowloris
        if (conn->state == State::kHandshake)  // the same, before a byte of HTTP
          Log(LogLevel::kDebug, "tls_handshake_timeout",
              {{"peer", PeerText(conn)}, {"msg", "TLS handshake not done within the read timeout"}});
        if (conn->state != State::kHandling) CloseConnection(conn);
      },
      ms, 0);
}

void OnWritten(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> write(static_cast<WriteRequest*>(req->data));
  Connection* c = write->connection;
  c->pending_write -= write->bytes.size();
  if (uv_is_closing(AsHandle(&c->handle))) return;  // cancelled by close
  if (status < 0) return CloseConnection(c);
  if (c->pending_write == 0 && c->state == State::kWriting) AfterWrite(c);
}

const char* PeerText(Connection* c) { return c->parser.request().peer_text.c_str(); }

// Queues `bytes` as they are, copying only what the socket does not take at once.
bool SendRaw(Connection* c, std::string bytes) {
  if (bytes.empty()) return true;  // e.g. TLS had nothing to say
  size_t done = 0;
  if (c->pending_write == 0) {
    uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(AsStream(c), &buf, 1);
    if (n < 0 && n != UV_EAGAIN) return false;
    done = n > 0 ? static_cast<size_t>(n) : 0;
  }
  if (done == bytes.size()) return true;
  auto write = std::make_unique<WriteRequest>();
  write->connection = c;
  write->bytes = bytes.substr(done);
  write->req.data = write.get();
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  if (uv_write(&write->req, AsStream(c), &buf, 1, OnWritten) != 0) return false;
  c->pending_write += write->bytes.size();
  static_cast<void>(write.release());  // owned by OnWritten now
  return true;
}

// Queues response bytes, encrypted on an HTTPS connection.
bool Send(Connection* c, std::string bytes) {
  if (c->tls) {
    if (!c->tls->Send(bytes).ok()) return false;
    bytes = c->tls->TakeOutput();
  }
  return SendRaw(c, std::move(bytes));
}

// Sends FIN after what is queued, then discards input until EOF or the
// linger timer (see kLingerMs).
void Linger(Connection* c) {
  c->state = State::kLingering;
  c->parser.DiscardInput();
  auto on_shutdown = [](uv_shutdown_t*, int) {};
  if (uv_shutdown(&c->shutdown, AsStream(c), on_shutdown) != 0) return CloseConnection(c);
  StartTimer(c, kLingerMs);
  StartReading(c);
}

std::string Serialize(const HttpResponse& r, const HttpRequest& request, bool keep_alive) {
  // RFC 9110: no body for HEAD, 1xx, 204 and 304; no Content-Length for 1xx/204.
  bool no_body = request.method == "HEAD" || r.status < 200 || r.status == 204 || r.status == 304;
  bool no_length = r.status < 200 || r.status == 204;
  std::string out;
  out.reserve(256 + r.body.size());
  out += "HTTP/1.1 " + std::to_string(r.status) + " " + ReasonPhrase(r.status) + "\r\n";
  out += "Date: " + HttpDate() + "\r\n";
  if (!no_body && IsSafeHeaderText(r.content_type))
    out += "Content-Type: " + r.content_type + "\r\n";
  if (!no_length) out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [name, value] : r.headers) {
    // The server owns framing, and CR/LF in a value would split the response.
    if (name.empty() || !IsSafeHeaderText(name) || !IsSafeHeaderText(value) ||
        name.find(':') != std::string::npos || EqualsNoCase(name, "content-length") ||
        EqualsNoCase(name, "connection") || EqualsNoCase(name, "transfer-encoding"))
      continue;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out += "\r\n";
  if (!no_body) out += r.body;
  return out;
}

void WriteResponse(Connection* c, const HttpResponse& response, bool keep_alive) {
  c->state = State::kWriting;
  c->close_after_write = !keep_alive;
  uv_read_stop(AsStream(c));
  if (!Send(c, Serialize(response, c->parser.request(), keep_alive))) return CloseConnection(c);
  if (c->pending_write == 0) return AfterWrite(c);
  StartTimer(c, c->server->options.idle_timeout_ms);  // a client that does not read
}

// Answers an error the server detected itself and closes the connection.
void Fail(Connection* c, int status) { WriteResponse(c, ErrorResponse(status), false); }

// Parses buffered bytes until a request is complete (then the handler gets
// it), the buffer is used up, or the request fails.
void Process(Connection* c) {
  if (c->state != State::kIdle && c->state != State::kReading) return;
  switch (c->parser.Parse()) {
    case HttpRequestParser::Outcome::kNeedMore:
      return;
    case HttpRequestParser::Outcome::kError:
      return Fail(c, c->parser.error_status());
    case HttpRequestParser::Outcome::kRequest:
      return Dispatch(c);
  }
}

// The response is in the kernel: close, or go on with the next request.
void AfterWrite(Connection* c) {
  if (c->close_after_write) {
    if (c->tls) {
      c->tls->Close();  // close_notify: the client knows the response is whole
      if (!SendRaw(c, c->tls->TakeOutput())) return CloseConnection(c);
    }
    return Linger(c);
  }
  c->parser.Next();
  c->state = State::kIdle;
  StartTimer(c, c->server->options.idle_timeout_ms);
  Process(c);  // pipelined bytes read with the previous request
  if (c->state == State::kIdle || c->state == State::kReading) StartReading(c);
}

// HTTPS input: decrypt, send what TLS answers (handshake, alerts), then
// parse the plaintext as on a plain connection.
void OnTlsRead(Connection* c, std::string_view ciphertext) {
  std::string& plaintext = c->server->plaintext;
  plaintext.clear();
  Result<TlsSession::Progress> progress = c->tls->Receive(ciphertext, plaintext);
  if (!SendRaw(c, c->tls->TakeOutput())) return CloseConnection(c);
  if (!progress.ok()) {
    // A scanner, plain HTTP or an old client on the HTTPS port: this
    // connection ends, after the alert that tells the client why.
    Log(LogLevel::kDebug, "tls_failed",
        {{"peer", PeerText(c)},
         {"stage", c->state == State::kHandshake ? "handshake" : "connection"},
         {"error", progress.status()}});
    uv_read_stop(AsStream(c));
    return Linger(c);
  }
  if (*progress == TlsSession::Progress::kClosed) return CloseConnection(c);  // as at EOF
  if (c->state == State::kHandshake) {
    if (!c->tls->established()) return;
    Log(LogLevel::kDebug, "tls_established", {{"peer", PeerText(c)}, {"session", c->tls->Describe()}});
    c->state = State::kIdle;
    StartTimer(c, c->server->options.idle_timeout_ms);
  }
  if (plaintext.empty()) return;
  c->parser.Append(plaintext);
  Process(c);
}

void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread < 0) return CloseConnection(c);  // EOF or error; a partial request is dropped
  if (nread == 0 || c->state == State::kLingering) return;
  std::string_view bytes(buf->base, static_cast<size_t>(nread));
  if (c->tls) return OnTlsRead(c, bytes);
  c->parser.Append(bytes);
  Process(c);
}

void Dispatch(Connection* c) {
  Connection& conn = *c;
  HttpServer::Impl& server = *c->server;
  conn.state = State::kHandling;
  uv_read_stop(AsStream(c));
  uv_timer_stop(&c->timer);
  auto slot = std::make_shared<ReplySlot>();
  slot->queue = server.queue;
  slot->server = &server;
  slot->connection_id = c->id;
  try {
    server.handler(conn.parser.request(), [slot](HttpResponse r) { slot->Send(std::move(r)); });
  } catch (...) {  // a handler bug must not unwind through libuv
    Log(LogLevel::kError, "http_handler_failed",
        {{"method", conn.parser.request().method},
         {"path", conn.parser.request().path},
         {"peer", conn.parser.request().peer_text},
         {"error", CurrentExceptionText()}});
    slot->Send(ErrorResponse(500));  // ignored if the handler already replied
  }
}

void OnConnection(uv_stream_t* listener_stream, int status) {
  auto* listener = static_cast<Listener*>(listener_stream->data);
  HttpServer::Impl& s = *listener->server;
  if (status < 0 || s.stopping) return;
  auto* c = new Connection(&s, s.next_id++);
  uv_tcp_init(&s.loop, &c->handle);
  uv_timer_init(&s.loop, &c->timer);
  c->handle.data = c->timer.data = c;
  s.connections.emplace(c->id, c);
  if (uv_accept(listener_stream, AsStream(c)) != 0 ||
      s.connections.size() > s.options.max_connections) {
    // Over the limit: accepting and closing at once tells the client to
    // come back later instead of leaving it waiting in the backlog.
    return CloseConnection(c);
  }
  HttpRequest& request = c->parser.request();
  int length = sizeof request.peer;
  if (uv_tcp_getpeername(&c->handle, reinterpret_cast<sockaddr*>(&request.peer), &length) != 0)
    return CloseConnection(c);
  NormalizePeer(request.peer, request.peer_text);
  uv_tcp_nodelay(&c->handle, 1);
  if (listener->tls) {
    std::shared_ptr<const TlsContext> context = s.CurrentTlsContext();
    auto session = TlsSession::Accept(*context);
    if (!session.ok()) {
      Log(LogLevel::kError, "tls_session_failed", {{"peer", PeerText(c)}, {"error", session.status()}});
      return CloseConnection(c);
    }
    c->tls = std::move(session).value();
    // The handshake has the read timeout of a request: a client that
    // trickles its hello is cut off like one that trickles its headers.
    c->state = State::kHandshake;
    StartTimer(c, s.options.read_timeout_ms);
  } else {
    StartTimer(c, s.options.idle_timeout_ms);
  }
  StartReading(c);
}

}  // namespace

void HttpServer::Impl::Deliver(uint64_t id, const HttpResponse& response) {
  auto it = connections.find(id);
  if (it == connections.end()) return;  // the client went away meanwhile
  Connection* c = it->second;
  if (c->state != State::kHandling) return;
  WriteResponse(c, response, c->parser.keep_alive());
}

void HttpServer::Impl::RunTasks() {
  for (auto& task : queue->Take()) {
    try {
      task();
    } catch (...) {
      Log(LogLevel::kError, "http_task_failed", {{"error", CurrentExceptionText()}});
    }
  }
}

void HttpServer::Impl::OnStop() {
  stopping = true;
  auto dropped = queue->Close();
  uv_close(AsHandle(&stop_async), nullptr);
  uv_close(AsHandle(&post_async), nullptr);
  for (auto& l : listeners) uv_close(AsHandle(&l->handle), nullptr);
  while (!connections.empty()) CloseConnection(connections.begin()->second);
  dropped.clear();  // outside the queue's lock: may destroy replies, which post
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
  if (!impl_->started) {
    // Never started: run the loop once so that every handle closes.
    impl_->OnStop();
    uv_run(&impl_->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl_->loop);
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options,
                                                       HttpHandler handler) {
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  if (int rc = uv_loop_init(&impl->loop); rc != 0)
    return Status::IoError(std::string("cannot create an event loop: ") + uv_strerror(rc));
  uv_async_init(&impl->loop, &impl->stop_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->OnStop(); });
  uv_async_init(&impl->loop, &impl->post_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->RunTasks(); });
  impl->stop_async.data = impl->post_async.data = impl.get();
  impl->queue->async = &impl->post_async;
  // From here the server's destructor closes whatever was opened.
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(impl)));
  Impl& w = *server->impl_;
  if (!options.tls_listen.empty()) {
    auto context = TlsContext::Load(w.tls_files());
    if (!context.ok()) return context.status();
    Log(LogLevel::kInfo, "tls_certificate",
        {{"key", "http.tls"}, {"certificate", (*context)->description()}});
    w.tls_context = std::move(context).value();
  }
  for (bool tls : {false, true}) {
    const char* scheme = tls ? "https" : "http";
    for (const config::Endpoint& ep : tls ? options.tls_listen : options.listen) {
      auto fd = OpenListenSocket(ep, scheme);
      if (!fd.ok()) return fd.status();
      auto listener = std::make_unique<Listener>(Listener{&w, tls});
      uv_tcp_init(&w.loop, &listener->handle);
      listener->handle.data = listener.get();
      int rc = uv_tcp_open(&listener->handle, *fd);
      if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->handle), 511, OnConnection);
      w.listeners.push_back(std::move(listener));  // closed (with its fd) by OnStop
      if (rc != 0) {
        return Status::IoError("cannot listen on " + ep.text + " (" + scheme +
                               "): " + uv_strerror(rc));
      }
    }
  }
  return server;
}

Status HttpServer::ReloadTls() {
  if (impl_->options.tls_listen.empty())
    return Status::Invalid("no HTTPS listener (http.tls_listen) is configured; nothing to reload");
  // Loaded on the caller's thread: file reads never stall the loop.
  auto context = TlsContext::Load(impl_->tls_files());
  if (!context.ok()) return context.status();
  Log(LogLevel::kInfo, "tls_certificate_reloaded",
      {{"key", "http.tls"}, {"certificate", (*context)->description()}});
  std::lock_guard lock(impl_->tls_mutex);
  impl_->tls_context = std::move(context).value();
  return Status::Ok();
}

void HttpServer::Start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] {
    // libuv writes with writev(2): a peer that reset the connection would
    // raise SIGPIPE and kill the process. Blocked in this thread only, the
    // write fails with EPIPE instead; the process's disposition is untouched.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    uv_run(&impl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl->loop);
  });
}

void HttpServer::Stop() {
  if (impl_->thread.joinable()) {
    uv_async_send(&impl_->stop_async);
    impl_->thread.join();
  }
}

void HttpServer::Post(std::function<void()> task) { impl_->queue->Post(std::move(task)); }

void HttpServer::SetLimits(const HttpServerOptions& limits) {
  Post([impl = impl_.get(), limits] {
    HttpServerOptions& o = impl->options;
    o.max_header_bytes = limits.max_header_bytes;
    o.max_body_bytes = limits.max_body_bytes;
    o.read_timeout_ms = limits.read_timeout_ms;
    o.idle_timeout_ms = limits.idle_timeout_ms;
    o.max_connections = limits.max_connections;
  });
}

}  // namespace updns::server
