#include "server/dns_worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <list>

#include "common/log.h"
#include "zone/responder.h"

namespace updns::server {
namespace {

constexpr int kBatch = 64;             // datagrams per recvmmsg/sendmmsg
constexpr int kRoundsPerWakeup = 16;   // then yield to the loop (TCP, stop)
constexpr size_t kMaxUdpQuery = 4096;  // larger datagrams are not queries we answer
constexpr size_t kMaxUdpAnswer = 4096;
constexpr size_t kMaxTcpMessage = 65535;
constexpr size_t kTcpPendingLimit = 1 << 20;  // stop reading a client that does not read
constexpr size_t kControlSize = CMSG_SPACE(sizeof(in6_pktinfo));

struct UdpListener;
struct TcpListener;
struct TcpConnection;

bool IsWildcard(const config::Endpoint& ep) {
  if (ep.family() == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(ep.address).sin_addr.s_addr == htonl(INADDR_ANY);
  const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ep.address).sin6_addr;
  return IN6_IS_ADDR_UNSPECIFIED(&a6);
}

Result<int> OpenSocket(const config::Endpoint& ep, int socktype, bool pktinfo) {
  const char* proto = socktype == SOCK_DGRAM ? "udp" : "tcp";
  auto fail = [&](int fd, const char* what) -> Status {
    std::string message = std::string("cannot ") + what + " " + ep.text + " (" + proto +
                          "): " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return Status::IoError(message);
  };
  int fd = socket(ep.family(), socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "create a socket for");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return fail(fd, "set SO_REUSEPORT on");
  if (socktype == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ep.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (pktinfo) {
    // A wildcard socket must answer from the address the query was sent to.
    int rc = ep.family() == AF_INET
                 ? setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one)
                 : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    if (rc != 0) return fail(fd, "enable packet info on");
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ep.address), ep.address_length) != 0)
    return fail(fd, "bind");
  return fd;
}

}  // namespace

struct DnsWorker::Impl {
  explicit Impl(const DnsWorkerOptions& o) : options(o) {}

  DnsWorkerOptions options;
  int index = 0;
  uv_loop_t loop{};
  uv_async_t stop_async{};
  std::unique_ptr<zone::Responder> responder;
  std::vector<std::unique_ptr<UdpListener>> udp;
  std::vector<std::unique_ptr<TcpListener>> tcp;
  std::list<TcpConnection*> connections;
  bool stopping = false;

  // Batch buffers: UDP callbacks on one loop never overlap, so one set serves
  // every UDP socket of the loop.
  mmsghdr in_msgs[kBatch]{};
  mmsghdr out_msgs[kBatch]{};
  iovec in_iov[kBatch]{};
  iovec out_iov[kBatch]{};
  sockaddr_storage peers[kBatch]{};
  alignas(cmsghdr) uint8_t in_control[kBatch][kControlSize]{};
  alignas(cmsghdr) uint8_t out_control[kBatch][kControlSize]{};
  uint8_t in_buffers[kBatch][kMaxUdpQuery];
  uint8_t out_buffers[kBatch][kMaxUdpAnswer];
  uint8_t tcp_out[2 + kMaxTcpMessage];

  void OnStop();
};

namespace {

struct UdpListener {
  DnsWorker::Impl* worker;
  int fd;
  bool pktinfo;
  uv_poll_t poll{};
};

struct TcpListener {
  DnsWorker::Impl* worker;
  uv_tcp_t handle{};
};

struct TcpConnection {
  DnsWorker::Impl* worker;
  uv_tcp_t handle{};
  uv_timer_t idle{};
  std::list<TcpConnection*>::iterator position;
  std::vector<uint8_t> in;
  size_t used = 0;
  size_t pending_write = 0;  // bytes handed to uv_write and not yet done
  bool reading = true;
  int open_handles = 2;
};

struct WriteRequest {
  uv_write_t req{};
  TcpConnection* connection;
  std::vector<uint8_t> bytes;
};

// Builds the control message that makes the answer leave from the address
// the query arrived at.
size_t ReplyControl(const msghdr& in, uint8_t* out) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&in); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&in), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      info.ipi_spec_dst = info.ipi_addr;
      info.ipi_ifindex = 0;
      auto* reply = reinterpret_cast<cmsghdr*>(out);
      reply->cmsg_level = IPPROTO_IP;
      reply->cmsg_type = IP_PKTINFO;
      reply->cmsg_len = CMSG_LEN(sizeof info);
      std::memcpy(CMSG_DATA(reply), &info, sizeof info);
      return CMSG_SPACE(sizeof info);
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      auto* reply = reinterpret_cast<cmsghdr*>(out);
      reply->cmsg_level = IPPROTO_IPV6;
      reply->cmsg_type = IPV6_PKTINFO;
      reply->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      std::memcpy(CMSG_DATA(reply), CMSG_DATA(c), sizeof(in6_pktinfo));
      return CMSG_SPACE(sizeof(in6_pktinfo));
    }
  }
  return 0;
}

void OnUdpReadable(uv_poll_t* handle, int status, int) {
  auto* listener = static_cast<UdpListener*>(handle->data);
  DnsWorker::Impl& w = *listener->worker;
  if (status < 0) return;
  bool serving = w.responder->BeginBatch().ok();
  for (int round = 0; round < kRoundsPerWakeup; ++round) {
    for (int i = 0; i < kBatch; ++i) {
      msghdr& h = w.in_msgs[i].msg_hdr;
      w.in_iov[i] = {w.in_buffers[i], kMaxUdpQuery};
      h.msg_name = &w.peers[i];
      h.msg_namelen = sizeof w.peers[i];
      h.msg_iov = &w.in_iov[i];
      h.msg_iovlen = 1;
      h.msg_control = listener->pktinfo ? w.in_control[i] : nullptr;
      h.msg_controllen = listener->pktinfo ? kControlSize : 0;
      h.msg_flags = 0;
    }
    int received = recvmmsg(listener->fd, w.in_msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (received <= 0) break;
    int answers = 0;
    for (int i = 0; serving && i < received; ++i) {
      const msghdr& in = w.in_msgs[i].msg_hdr;
      if (in.msg_flags & MSG_TRUNC) continue;
      size_t size = w.responder->Respond(w.in_buffers[i], w.in_msgs[i].msg_len,
                                         zone::Transport::kUdp, w.out_buffers[answers],
                                         kMaxUdpAnswer);
      if (size == 0) continue;
      msghdr& out = w.out_msgs[answers].msg_hdr;
      w.out_iov[answers] = {w.out_buffers[answers], size};
      out.msg_name = &w.peers[i];
      out.msg_namelen = in.msg_namelen;
      out.msg_iov = &w.out_iov[answers];
      out.msg_iovlen = 1;
      out.msg_controllen = listener->pktinfo ? ReplyControl(in, w.out_control[answers]) : 0;
      out.msg_control = out.msg_controllen ? w.out_control[answers] : nullptr;
      out.msg_flags = 0;
      ++answers;
    }
    for (int sent = 0; sent < answers;) {
      int n = sendmmsg(listener->fd, w.out_msgs + sent, answers - sent, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // socket buffer full: UDP answers may be dropped
      sent += n;
    }
    if (received < kBatch) break;
  }
  if (serving) w.responder->EndBatch();
}

void CloseConnection(TcpConnection* c) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->handle))) return;
  c->worker->connections.erase(c->position);
  auto on_closed = [](uv_handle_t* h) {
    auto* conn = static_cast<TcpConnection*>(h->data);
    if (--conn->open_handles == 0) delete conn;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->idle), on_closed);
}

void OnIdle(uv_timer_t* timer) { CloseConnection(static_cast<TcpConnection*>(timer->data)); }

void OnTcpRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*);
void AllocTcp(uv_handle_t* h, size_t, uv_buf_t* buf);

void OnWritten(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> write(static_cast<WriteRequest*>(req->data));
  TcpConnection* c = write->connection;
  c->pending_write -= write->bytes.size();
  if (status < 0) return CloseConnection(c);
  if (!c->reading && c->pending_write < kTcpPendingLimit / 2 &&
      !uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->handle))) {
    c->reading = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->handle), AllocTcp, OnTcpRead);
  }
}

// Sends `bytes`, copying only what the socket does not take at once.
bool Send(TcpConnection* c, const uint8_t* bytes, size_t size) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->handle);
  size_t done = 0;
  if (c->pending_write == 0) {
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(const_cast<uint8_t*>(bytes)),
                               static_cast<unsigned>(size));
    int n = uv_try_write(stream, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) return false;
    done = n > 0 ? static_cast<size_t>(n) : 0;
  }
  if (done == size) return true;
  auto* write = new WriteRequest{{}, c, std::vector<uint8_t>(bytes + done, bytes + size)};
  write->req.data = write;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(write->bytes.data()),
                             static_cast<unsigned>(write->bytes.size()));
  c->pending_write += write->bytes.size();
  if (uv_write(&write->req, stream, &buf, 1, OnWritten) != 0) {
    c->pending_write -= write->bytes.size();
    delete write;
    return false;
  }
  return true;
}

void AllocTcp(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<TcpConnection*>(h->data);
  if (c->in.size() - c->used < 4096) c->in.resize(c->used + 16384);
  *buf = uv_buf_init(reinterpret_cast<char*>(c->in.data() + c->used),
                     static_cast<unsigned>(c->in.size() - c->used));
}

void OnTcpRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* c = static_cast<TcpConnection*>(stream->data);
  DnsWorker::Impl& w = *c->worker;
  if (nread < 0) return CloseConnection(c);
  c->used += static_cast<size_t>(nread);
  uv_timer_again(&c->idle);

  // Answer every complete message, in order (RFC 7766 §6.2.1.1 allows any
  // order; keeping it costs nothing here).
  size_t pos = 0;
  bool ok = true;
  if (c->used >= 2 && !w.responder->BeginBatch().ok()) return CloseConnection(c);
  while (ok && c->used - pos >= 2) {
    size_t length = static_cast<size_t>(c->in[pos]) << 8 | c->in[pos + 1];
    if (c->used - pos - 2 < length) break;
    size_t size = w.responder->Respond(c->in.data() + pos + 2, length, zone::Transport::kTcp,
                                       w.tcp_out + 2, kMaxTcpMessage);
    pos += 2 + length;
    if (size == 0) {
      ok = false;  // not a query: this peer is not speaking DNS to us
      break;
    }
    w.tcp_out[0] = static_cast<uint8_t>(size >> 8);
    w.tcp_out[1] = static_cast<uint8_t>(size);
    ok = Send(c, w.tcp_out, size + 2);
  }
  if (c->used >= 2) w.responder->EndBatch();
  if (!ok) return CloseConnection(c);
  std::memmove(c->in.data(), c->in.data() + pos, c->used - pos);
  c->used -= pos;
  if (c->in.size() > 4 * 16384 && c->used < 16384) c->in.resize(16384);
  if (c->pending_write > kTcpPendingLimit) {
    c->reading = false;
    uv_read_stop(stream);
  }
}

void OnTcpConnection(uv_stream_t* server, int status) {
  auto* listener = static_cast<TcpListener*>(server->data);
  DnsWorker::Impl& w = *listener->worker;
  if (status < 0 || w.stopping) return;
  auto* c = new TcpConnection{&w};
  uv_tcp_init(&w.loop, &c->handle);
  uv_timer_init(&w.loop, &c->idle);
  c->handle.data = c->idle.data = c;
  c->position = w.connections.insert(w.connections.end(), c);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->handle)) != 0 ||
      w.connections.size() > w.options.tcp_max_connections) {
    // Over the limit: accepting and closing at once tells the client to
    // retry elsewhere instead of leaving it in the backlog.
    return CloseConnection(c);
  }
  uv_tcp_nodelay(&c->handle, 1);
  uv_timer_start(&c->idle, OnIdle, w.options.tcp_idle_timeout_ms, w.options.tcp_idle_timeout_ms);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->handle), AllocTcp, OnTcpRead);
}

}  // namespace

void DnsWorker::Impl::OnStop() {
  stopping = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_async), nullptr);
  for (auto& l : udp) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), [](uv_handle_t* h) {
      close(static_cast<UdpListener*>(h->data)->fd);
    });
  }
  for (auto& l : tcp) uv_close(reinterpret_cast<uv_handle_t*>(&l->handle), nullptr);
  while (!connections.empty()) CloseConnection(connections.front());
}

DnsWorker::DnsWorker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsWorker::~DnsWorker() {
  Stop();
  if (!started_) {
    // Never started: run the loop once so that every handle closes.
    impl_->OnStop();
    uv_run(&impl_->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl_->loop);
  }
}

Result<std::unique_ptr<DnsWorker>> DnsWorker::Create(const storage::Store& store,
                                                     const DnsWorkerOptions& options, int index) {
  auto impl = std::make_unique<Impl>(options);
  impl->index = index;
  auto responder = zone::Responder::Create(store, {options.zones, options.udp_payload});
  if (!responder.ok()) return responder.status();
  impl->responder = std::move(responder).value();
  if (int rc = uv_loop_init(&impl->loop); rc != 0)
    return Status::IoError(std::string("cannot create an event loop: ") + uv_strerror(rc));
  uv_async_init(&impl->loop, &impl->stop_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->OnStop(); });
  impl->stop_async.data = impl.get();
  // From here the worker's destructor closes whatever was opened.
  std::unique_ptr<DnsWorker> worker(new DnsWorker(std::move(impl)));
  Impl& w = *worker->impl_;
  for (const config::Endpoint& ep : options.listen) {
    bool pktinfo = IsWildcard(ep);
    auto udp_fd = OpenSocket(ep, SOCK_DGRAM, pktinfo);
    if (!udp_fd.ok()) return udp_fd.status();
    auto udp = std::make_unique<UdpListener>(UdpListener{&w, *udp_fd, pktinfo});
    uv_poll_init(&w.loop, &udp->poll, udp->fd);
    udp->poll.data = udp.get();
    uv_poll_start(&udp->poll, UV_READABLE, OnUdpReadable);
    w.udp.push_back(std::move(udp));

    auto tcp_fd = OpenSocket(ep, SOCK_STREAM, false);
    if (!tcp_fd.ok()) return tcp_fd.status();
    auto tcp = std::make_unique<TcpListener>(TcpListener{&w});
    uv_tcp_init(&w.loop, &tcp->handle);
    tcp->handle.data = tcp.get();
    int rc = uv_tcp_open(&tcp->handle, *tcp_fd);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp->handle), 128, OnTcpConnection);
    w.tcp.push_back(std::move(tcp));  // closed (with its fd) by OnStop
    if (rc != 0) {
      return Status::IoError("cannot listen on " + ep.text + " (tcp): " + uv_strerror(rc));
    }
  }
  return worker;
}

void DnsWorker::Start() {
  started_ = true;
  thread_ = std::thread([impl = impl_.get()] {
    uv_run(&impl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl->loop);
  });
}

void DnsWorker::Stop() {
  if (thread_.joinable()) {
    uv_async_send(&impl_->stop_async);
    thread_.join();
  }
}

}  // namespace updns::server
