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
  kIdle,       // between requests (idle timer)
  kReading,    // a request has begun (read timer, from its first byte)
  kHandling,   // the handler has the request; not reading, no timer
  kWriting,    // the response is in the socket's queue (idle timer)
  kLingering,  // FIN sent, discarding input until EOF (linger timer)
};

struct Connection;

struct Listener {
  HttpServer::Impl* server;
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

Result<int> OpenListenSocket(const config::Endpoint& ep) {
  auto fail = [&](int fd, const char* what) -> Status {
    std::string message =
        std::string("cannot ") + what + " " + ep.text + " (http): " + std::strerror(errno);
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

  void OnStop();
  void RunTasks();
  void Deliver(uint64_t id, const HttpResponse& response);
};

namespace {

struct Connection {
  HttpServer::Impl* server;
  uint64_t id;
  uv_tcp_t handle{};
  uv_timer_t timer{};
  uv_shutdown_t shutdown{};
  int open_handles = 2;
  State state = State::kIdle;
  http_parser parser{};
  std::string in;  // bytes read and not yet parsed (pipelined requests)
  size_t in_pos = 0;
  size_t pending_write = 0;
  bool close_after_write = false;

  // The request being parsed.
  HttpRequest request;
  std::string url;
  bool last_was_value = true;  // header callbacks: a new name starts a header
  bool headers_complete = false;
  bool message_complete = false;
  bool keep_alive = false;
  size_t header_bytes = 0;
  int error_status = 0;  // set by a callback that fails the request

  void ResetRequest() {
    sockaddr_storage peer = request.peer;
    std::string peer_text = std::move(request.peer_text);
    request = HttpRequest{};
    request.peer = peer;
    request.peer_text = std::move(peer_text);
    url.clear();
    last_was_value = true;
    headers_complete = message_complete = keep_alive = false;
    header_bytes = 0;
    error_status = 0;
  }
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
extern const http_parser_settings kParserSettings;

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

// Queues `bytes`, copying only what the socket does not take at once.
bool Send(Connection* c, std::string bytes) {
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
  if (!Send(c, Serialize(response, c->request, keep_alive))) return CloseConnection(c);
  if (c->pending_write == 0) return AfterWrite(c);
  StartTimer(c, c->server->options.idle_timeout_ms);  // a client that does not read
}

// Answers an error the server detected itself and closes the connection.
void Fail(Connection* c, int status) { WriteResponse(c, ErrorResponse(status), false); }

// Feeds buffered bytes to the parser until a request is complete (then the
// handler gets it), the buffer is empty, or the request fails.
void Process(Connection* c) {
  const HttpServerOptions& o = c->server->options;
  while ((c->state == State::kIdle || c->state == State::kReading) && c->in_pos < c->in.size()) {
    size_t feed = c->in.size() - c->in_pos;
    bool in_headers = !c->headers_complete;
    if (in_headers) {
      // Never let the parser see more header bytes than the limit allows.
      if (c->header_bytes >= o.max_header_bytes) return Fail(c, 431);
      feed = std::min(feed, o.max_header_bytes - c->header_bytes);
    }
    size_t n = http_parser_execute(&c->parser, &kParserSettings, c->in.data() + c->in_pos, feed);
    c->in_pos += n;
    if (in_headers) c->header_bytes += n;
    if (c->message_complete) break;
    http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (err == HPE_HEADER_OVERFLOW) return Fail(c, 431);
    if (err != HPE_OK) return Fail(c, c->error_status ? c->error_status : 400);
    if (!c->headers_complete && c->header_bytes >= o.max_header_bytes) return Fail(c, 431);
  }
  c->in.erase(0, c->in_pos);
  c->in_pos = 0;
  if (c->message_complete) Dispatch(c);
}

// The response is in the kernel: close, or go on with the next request.
void AfterWrite(Connection* c) {
  if (c->close_after_write) {
    c->state = State::kLingering;
    c->in.clear();
    c->in_pos = 0;
    auto on_shutdown = [](uv_shutdown_t*, int) {};
    if (uv_shutdown(&c->shutdown, AsStream(c), on_shutdown) != 0) return CloseConnection(c);
    StartTimer(c, kLingerMs);
    StartReading(c);
    return;
  }
  c->ResetRequest();
  http_parser_pause(&c->parser, 0);
  c->state = State::kIdle;
  StartTimer(c, c->server->options.idle_timeout_ms);
  Process(c);  // pipelined bytes read with the previous request
  if (c->state == State::kIdle || c->state == State::kReading) StartReading(c);
}

void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread < 0) return CloseConnection(c);  // EOF or error; a partial request is dropped
  if (nread == 0 || c->state == State::kLingering) return;
  c->in.append(buf->base, static_cast<size_t>(nread));
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
    server.handler(conn.request, [slot](HttpResponse r) { slot->Send(std::move(r)); });
  } catch (...) {  // a handler bug must not unwind through libuv
    Log(LogLevel::kError, "http handler failed on %s %s: %s", conn.request.method.c_str(),
        conn.request.path.c_str(), CurrentExceptionText());
    slot->Send(ErrorResponse(500));  // ignored if the handler already replied
  }
}

// http-parser callbacks. Data arrives in pieces split anywhere, so each
// callback appends. A nonzero return stops the parser with an error.
Connection* Of(http_parser* p) { return static_cast<Connection*>(p->data); }

bool HasNul(const char* at, size_t length) { return std::memchr(at, '\0', length) != nullptr; }

int OnMessageBegin(http_parser* p) {
  Connection* c = Of(p);
  c->state = State::kReading;
  StartTimer(c, c->server->options.read_timeout_ms);  // from the first byte, never extended
  return 0;
}

int OnUrl(http_parser* p, const char* at, size_t length) {
  if (HasNul(at, length)) return -1;
  Of(p)->url.append(at, length);
  return 0;
}

int OnHeaderField(http_parser* p, const char* at, size_t length) {
  Connection* c = Of(p);
  if (HasNul(at, length)) return -1;
  if (c->last_was_value) c->request.headers.emplace_back();
  c->last_was_value = false;
  std::string& name = c->request.headers.back().first;
  for (size_t i = 0; i < length; ++i)
    name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
  return 0;
}

int OnHeaderValue(http_parser* p, const char* at, size_t length) {
  Connection* c = Of(p);
  if (HasNul(at, length) || c->request.headers.empty()) return -1;
  c->last_was_value = true;
  c->request.headers.back().second.append(at, length);
  return 0;
}

int OnHeadersComplete(http_parser* p) {
  Connection* c = Of(p);
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
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->server->options.max_body_bytes) {
    c->error_status = 413;
    return -1;
  }
  const std::string* expect = r.Header("expect");
  if (expect && EqualsNoCase(*expect, "100-continue") && r.http_minor >= 1 &&
      !Send(c, "HTTP/1.1 100 Continue\r\n\r\n"))
    return -1;
  return 0;  // 1 would mean "no body" to http-parser
}

int OnBody(http_parser* p, const char* at, size_t length) {
  Connection* c = Of(p);
  if (c->request.body.size() + length > c->server->options.max_body_bytes) {
    c->error_status = 413;  // chunked bodies have no length up front
    return -1;
  }
  c->request.body.append(at, length);
  return 0;
}

int OnMessageComplete(http_parser* p) {
  Connection* c = Of(p);
  c->message_complete = true;
  c->keep_alive = http_should_keep_alive(p) != 0;
  // Pipelined bytes stay in the buffer until the response has been sent.
  http_parser_pause(p, 1);
  return 0;
}

const http_parser_settings kParserSettings = {
    .on_message_begin = OnMessageBegin,
    .on_url = OnUrl,
    .on_header_field = OnHeaderField,
    .on_header_value = OnHeaderValue,
    .on_headers_complete = OnHeadersComplete,
    .on_body = OnBody,
    .on_message_complete = OnMessageComplete,
};

void OnConnection(uv_stream_t* listener_stream, int status) {
  auto* listener = static_cast<Listener*>(listener_stream->data);
  HttpServer::Impl& s = *listener->server;
  if (status < 0 || s.stopping) return;
  auto* c = new Connection{&s, s.next_id++};
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
  int length = sizeof c->request.peer;
  if (uv_tcp_getpeername(&c->handle, reinterpret_cast<sockaddr*>(&c->request.peer), &length) != 0)
    return CloseConnection(c);
  NormalizePeer(c->request.peer, c->request.peer_text);
  uv_tcp_nodelay(&c->handle, 1);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  StartTimer(c, s.options.idle_timeout_ms);
  StartReading(c);
}

}  // namespace

void HttpServer::Impl::Deliver(uint64_t id, const HttpResponse& response) {
  auto it = connections.find(id);
  if (it == connections.end()) return;  // the client went away meanwhile
  Connection* c = it->second;
  if (c->state != State::kHandling) return;
  WriteResponse(c, response, c->keep_alive);
}

void HttpServer::Impl::RunTasks() {
  for (auto& task : queue->Take()) {
    try {
      task();
    } catch (...) {
      Log(LogLevel::kError, "http loop task failed: %s", CurrentExceptionText());
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
  for (const config::Endpoint& ep : options.listen) {
    auto fd = OpenListenSocket(ep);
    if (!fd.ok()) return fd.status();
    auto listener = std::make_unique<Listener>(Listener{&w});
    uv_tcp_init(&w.loop, &listener->handle);
    listener->handle.data = listener.get();
    int rc = uv_tcp_open(&listener->handle, *fd);
    if (rc == 0)
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->handle), 511, OnConnection);
    w.listeners.push_back(std::move(listener));  // closed (with its fd) by OnStop
    if (rc != 0)
      return Status::IoError("cannot listen on " + ep.text + " (http): " + uv_strerror(rc));
  }
  return server;
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

}  // namespace updns::server
