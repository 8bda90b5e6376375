#include "server/dns_worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <unordered_map>

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
// A zone transfer writes ahead of the client by at most this much, so a
// slow secondary costs a bounded buffer, not the whole zone.
constexpr size_t kTransferWindow = 256 * 1024;

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

// Where the answer to an UPDATE received over UDP goes once it is durable.
struct UdpReturn {
  int fd;
  sockaddr_storage peer;
  socklen_t peer_length;
  alignas(cmsghdr) uint8_t control[kControlSize];
  size_t control_length;
};

struct DnsWorker::Impl {
  explicit Impl(const DnsWorkerOptions& o) : options(o) {}

  DnsWorkerOptions options;
  int index = 0;
  uv_loop_t loop{};
  uv_async_t stop_async{};
  std::unique_ptr<zone::Responder> responder;
  std::unique_ptr<DnsControl> control;
  DnsCounters counters;
  std::vector<std::unique_ptr<UdpListener>> udp;
  std::vector<std::unique_ptr<TcpListener>> tcp;
  std::list<TcpConnection*> connections;
  bool stopping = false;

  // UPDATE answers come back from the writer thread through `completions`.
  // Tickets name their client: a UDP return address, or a TCP connection
  // (which may have closed meanwhile: then the answer is dropped).
  uv_async_t completion_async{};
  std::mutex completion_mutex;
  std::vector<DnsControl::Completion> completions;  // guarded by completion_mutex
  bool completions_closed = false;                  // guarded by completion_mutex
  uint64_t next_ticket = 0;
  std::unordered_map<uint64_t, UdpReturn> udp_returns;
  std::unordered_map<uint64_t, TcpConnection*> connections_by_ticket;

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

  // A reload's settings, from Reconfigure() to the loop.
  uv_async_t reconfigure_async{};
  std::mutex reconfigure_mutex;
  std::condition_variable reconfigure_applied;
  std::optional<DnsWorkerOptions> reconfigured;  // guarded by reconfigure_mutex
  bool reconfigure_closed = false;               // guarded by reconfigure_mutex

  void OnStop();
  void DeliverCompletions();
  void ApplyReconfigure();
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
  uint64_t ticket = 0;
  sockaddr_storage peer{};
  std::vector<uint8_t> in;
  size_t used = 0;
  size_t pending_write = 0;  // bytes handed to uv_write and not yet done
  bool reading = true;
  // A zone transfer in progress: later messages wait until it is sent.
  std::unique_ptr<TransferSession> transfer;
  int open_handles = 2;
};

struct WriteRequest {
  uv_write_t req{};
  TcpConnection* connection;
  std::vector<uint8_t> bytes;
};

uint64_t NowMs(uv_loop_t* loop) { return uv_now(loop); }

// What kind of answer `answer` is, and the name its rate-limit bucket is
// keyed on (server/rrl.h).
AnswerClass Classify(const uint8_t* answer, const zone::Responder& responder,
                     std::string_view* name) {
  const zone::Query& query = responder.last_query();
  *name = query.qname_view();
  uint8_t rcode = answer[3] & 0x0f;
  bool authoritative = answer[2] & 0x04;
  uint16_t answers = static_cast<uint16_t>(answer[6] << 8 | answer[7]);
  AnswerClass kind = rcode == 3 ? AnswerClass::kNxdomain
                     : rcode != 0 ? AnswerClass::kError
                     : answers > 0 ? AnswerClass::kPositive
                     : authoritative ? AnswerClass::kNodata
                                     : AnswerClass::kReferral;
  if (kind == AnswerClass::kNxdomain || kind == AnswerClass::kReferral) {
    // Random names under one zone are one flood, not many.
    if (const zone::ZoneEntry* zone = responder.zone_index().Find(query)) *name = zone->apex;
  }
  return kind;
}

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
      if (size == zone::Responder::kHandOff) {
        uint64_t ticket = ++w.next_ticket;
        const auto* peer = reinterpret_cast<const sockaddr*>(&w.peers[i]);
        DnsControl::Outcome outcome =
            w.control->Handle(w.in_buffers[i], w.in_msgs[i].msg_len, zone::Transport::kUdp, peer,
                              *w.responder, w.out_buffers[answers], kMaxUdpAnswer, ticket);
        size = outcome.kind == DnsControl::Outcome::Kind::kAnswer ? outcome.size : 0;
        if (outcome.kind == DnsControl::Outcome::Kind::kPending) {
          UdpReturn& back = w.udp_returns[ticket];
          back.fd = listener->fd;
          back.peer = w.peers[i];
          back.peer_length = in.msg_namelen;
          back.control_length = listener->pktinfo ? ReplyControl(in, back.control) : 0;
        }
      } else if (size != 0) {
        w.counters.CountAnswer(zone::Transport::kUdp, w.responder->last_query(),
                               w.out_buffers[answers]);
      }
      if (size == 0) continue;
      if (w.options.rrl && size >= zone::kHeaderSize) {
        std::string_view name;
        AnswerClass kind = Classify(w.out_buffers[answers], *w.responder, &name);
        auto verdict = w.options.rrl->Account(reinterpret_cast<const sockaddr*>(&w.peers[i]), kind,
                                              name, NowMs(&w.loop));
        if (verdict == ResponseRateLimiter::Verdict::kDrop) {
          w.counters.rrl_dropped.Add();
          continue;
        }
        if (verdict == ResponseRateLimiter::Verdict::kSlip) {
          // TC and the question only: a real client comes back over TCP.
          uint8_t* a = w.out_buffers[answers];
          w.counters.rrl_slipped.Add();
          if (!(a[2] & 0x02)) w.counters.CountTruncated(zone::Transport::kUdp);
          a[2] |= 0x02;
          std::memset(a + 6, 0, 6);
          size = zone::kHeaderSize + w.responder->last_query().question.size();
        }
      }
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
  c->worker->connections_by_ticket.erase(c->ticket);
  c->transfer.reset();  // ends its read transaction now, not when the handles close
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
void ProcessMessages(TcpConnection* c);
void PumpTransfer(TcpConnection* c);

bool Closing(TcpConnection* c) { return uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->handle)); }

// Reads again once a client has taken enough of what was written to it, and
// no transfer is holding its later messages back.
void ResumeReading(TcpConnection* c) {
  if (c->reading || c->transfer || c->pending_write >= kTcpPendingLimit / 2 || Closing(c)) return;
  c->reading = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->handle), AllocTcp, OnTcpRead);
}

void OnWritten(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> write(static_cast<WriteRequest*>(req->data));
  TcpConnection* c = write->connection;
  c->pending_write -= write->bytes.size();
  if (status < 0) return CloseConnection(c);
  if (Closing(c)) return;
  if (c->transfer) return PumpTransfer(c);
  ResumeReading(c);
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

bool SendFramed(TcpConnection* c, uint8_t* framed, size_t size) {
  framed[0] = static_cast<uint8_t>(size >> 8);
  framed[1] = static_cast<uint8_t>(size);
  return Send(c, framed, size + 2);
}

// Writes the transfer's next messages while the client keeps up; called
// again as writes complete. When it ends, the messages that queued behind it
// are answered.
void PumpTransfer(TcpConnection* c) {
  DnsWorker::Impl& w = *c->worker;
  while (c->transfer && c->pending_write < kTransferWindow) {
    size_t size = c->transfer->Next(w.tcp_out + 2, kMaxTcpMessage);
    if (size == 0) {
      c->transfer.reset();
      break;
    }
    uv_timer_again(&c->idle);  // a long transfer is not an idle connection
    if (!SendFramed(c, w.tcp_out, size)) return CloseConnection(c);
  }
  if (c->transfer) return;
  ProcessMessages(c);
  if (!Closing(c)) ResumeReading(c);
}

void AllocTcp(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<TcpConnection*>(h->data);
  if (c->in.size() - c->used < 4096) c->in.resize(c->used + 16384);
  *buf = uv_buf_init(reinterpret_cast<char*>(c->in.data() + c->used),
                     static_cast<unsigned>(c->in.size() - c->used));
}

// Answers every complete message buffered, in order (RFC 7766 §6.2.1.1
// allows any order; keeping it costs nothing here), until a zone transfer
// starts: the rest waits for it.
void ProcessMessages(TcpConnection* c) {
  DnsWorker::Impl& w = *c->worker;
  size_t pos = 0;
  bool ok = true;
  if (c->used >= 2 && !w.responder->BeginBatch().ok()) return CloseConnection(c);
  while (ok && !c->transfer && c->used - pos >= 2) {
    size_t length = static_cast<size_t>(c->in[pos]) << 8 | c->in[pos + 1];
    if (c->used - pos - 2 < length) break;
    uint8_t* message = c->in.data() + pos + 2;
    size_t size = w.responder->Respond(message, length, zone::Transport::kTcp, w.tcp_out + 2,
                                       kMaxTcpMessage);
    pos += 2 + length;
    if (size == zone::Responder::kHandOff) {
      DnsControl::Outcome outcome =
          w.control->Handle(message, length, zone::Transport::kTcp,
                            reinterpret_cast<const sockaddr*>(&c->peer), *w.responder,
                            w.tcp_out + 2, kMaxTcpMessage, c->ticket);
      if (outcome.kind == DnsControl::Outcome::Kind::kTransfer) {
        c->transfer = std::move(outcome.transfer);
        break;
      }
      if (outcome.kind != DnsControl::Outcome::Kind::kAnswer || outcome.size == 0) continue;
      size = outcome.size;
    } else if (size == 0) {
      ok = false;  // not a query: this peer is not speaking DNS to us
      break;
    } else {
      w.counters.CountAnswer(zone::Transport::kTcp, w.responder->last_query(), w.tcp_out + 2);
    }
    ok = SendFramed(c, w.tcp_out, size);
  }
  if (c->used >= 2) w.responder->EndBatch();
  if (!ok) return CloseConnection(c);
  if (pos > 0) uv_timer_again(&c->idle);
  std::memmove(c->in.data(), c->in.data() + pos, c->used - pos);
  c->used -= pos;
  if (c->in.size() > 4 * 16384 && c->used < 16384) c->in.resize(16384);
  if (c->transfer) {
    if (c->reading) {
      c->reading = false;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->handle));
    }
    PumpTransfer(c);
  } else if (c->pending_write > kTcpPendingLimit && c->reading) {
    c->reading = false;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->handle));
  }
}

void OnTcpRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* c = static_cast<TcpConnection*>(stream->data);
  if (nread < 0) return CloseConnection(c);
  c->used += static_cast<size_t>(nread);
  // The idle timer is restarted by complete messages only (ProcessMessages):
  // a client trickling the bytes of a message must finish it within the
  // idle timeout, or it could hold its connection slot forever.
  ProcessMessages(c);
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
  c->ticket = ++w.next_ticket;
  w.connections_by_ticket[c->ticket] = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->handle)) != 0 ||
      w.connections.size() > w.options.tcp_max_connections) {
    // Over the limit: accepting and closing at once tells the client to
    // retry elsewhere instead of leaving it in the backlog.
    return CloseConnection(c);
  }
  int peer_length = sizeof(c->peer);
  uv_tcp_getpeername(&c->handle, reinterpret_cast<sockaddr*>(&c->peer), &peer_length);
  uv_tcp_nodelay(&c->handle, 1);
  uv_timer_start(&c->idle, OnIdle, w.options.tcp_idle_timeout_ms, w.options.tcp_idle_timeout_ms);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->handle), AllocTcp, OnTcpRead);
}

}  // namespace

// Sends the UPDATE answers the writer finished.
void DnsWorker::Impl::DeliverCompletions() {
  std::vector<DnsControl::Completion> ready;
  {
    std::lock_guard lock(completion_mutex);
    ready.swap(completions);
  }
  for (DnsControl::Completion& done : ready) {
    counters.CountUpdate(done.answer.data(), done.answer.size());
    if (auto back = udp_returns.find(done.ticket); back != udp_returns.end()) {
      iovec iov{done.answer.data(), done.answer.size()};
      msghdr h{};
      h.msg_name = &back->second.peer;
      h.msg_namelen = back->second.peer_length;
      h.msg_iov = &iov;
      h.msg_iovlen = 1;
      h.msg_control = back->second.control_length ? back->second.control : nullptr;
      h.msg_controllen = back->second.control_length;
      // Non-blocking: with the socket buffer full the answer is lost like
      // any UDP answer, and the client retries (the update is applied once:
      // a retry finds its prerequisites or its records in place).
      (void)sendmsg(back->second.fd, &h, MSG_DONTWAIT);
      udp_returns.erase(back);
    } else if (auto conn = connections_by_ticket.find(done.ticket);
               conn != connections_by_ticket.end() && !done.answer.empty()) {
      std::vector<uint8_t> framed(done.answer.size() + 2);
      std::memcpy(framed.data() + 2, done.answer.data(), done.answer.size());
      if (!SendFramed(conn->second, framed.data(), done.answer.size()))
        CloseConnection(conn->second);
    }
  }
}

void DnsWorker::Impl::OnStop() {
  stopping = true;
  {
    std::lock_guard lock(completion_mutex);
    completions_closed = true;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&completion_async), nullptr);
  {
    std::lock_guard lock(reconfigure_mutex);
    reconfigure_closed = true;
  }
  reconfigure_applied.notify_all();
  uv_close(reinterpret_cast<uv_handle_t*>(&reconfigure_async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_async), nullptr);
  for (auto& l : udp) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), [](uv_handle_t* h) {
      close(static_cast<UdpListener*>(h->data)->fd);
    });
  }
  for (auto& l : tcp) uv_close(reinterpret_cast<uv_handle_t*>(&l->handle), nullptr);
  while (!connections.empty()) CloseConnection(connections.front());
}

void DnsWorker::Impl::ApplyReconfigure() {
  std::lock_guard lock(reconfigure_mutex);
  if (!reconfigured) return;
  options.zones = std::move(reconfigured->zones);
  options.policy = std::move(reconfigured->policy);
  options.rrl = std::move(reconfigured->rrl);
  options.tcp_idle_timeout_ms = reconfigured->tcp_idle_timeout_ms;
  options.tcp_max_connections = reconfigured->tcp_max_connections;
  reconfigured.reset();
  responder->SetZones(options.zones);
  control->SetPolicy(options.policy);
  reconfigure_applied.notify_all();
}

void DnsWorker::Reconfigure(const DnsWorkerOptions& options) {
  Impl& w = *impl_;
  std::unique_lock lock(w.reconfigure_mutex);
  if (w.reconfigure_closed) return;
  w.reconfigured = options;
  uv_async_send(&w.reconfigure_async);  // under the lock: OnStop cannot close it meanwhile
  // A running loop applies it before the next packet it reads; wait for
  // that, so that the caller's "reloaded" is true when it is said.
  if (started_) {
    w.reconfigure_applied.wait(lock, [&w] { return !w.reconfigured || w.reconfigure_closed; });
  }
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
  uv_async_init(&impl->loop, &impl->completion_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->DeliverCompletions(); });
  impl->completion_async.data = impl.get();
  uv_async_init(&impl->loop, &impl->reconfigure_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->ApplyReconfigure(); });
  impl->reconfigure_async.data = impl.get();
  DnsPolicyPtr policy = options.policy ? options.policy : std::make_shared<DnsPolicy>();
  impl->control = std::make_unique<DnsControl>(
      store, std::move(policy), options.writer, options.udp_payload,
      [w = impl.get()](DnsControl::Completion done) {
        std::lock_guard lock(w->completion_mutex);
        if (w->completions_closed) return;
        w->completions.push_back(std::move(done));
        uv_async_send(&w->completion_async);  // under the lock: OnStop cannot close it meanwhile
      },
      &impl->counters);
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
    if (impl->options.cpu >= 0) {
      cpu_set_t cpus;
      CPU_ZERO(&cpus);
      CPU_SET(impl->options.cpu, &cpus);
      if (int rc = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus); rc != 0) {
        Log(LogLevel::kWarning, "cpu_pin_failed",
            {{"loop", impl->index},
             {"cpu", impl->options.cpu},
             {"key", "server.cpu_affinity"},
             {"error", std::strerror(rc)}});
      }
    }
    uv_run(&impl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl->loop);
  });
}

const DnsCounters& DnsWorker::counters() const noexcept { return impl_->counters; }

void DnsWorker::Stop() {
  if (thread_.joinable()) {
    uv_async_send(&impl_->stop_async);
    thread_.join();
  }
}

}  // namespace updns::server
