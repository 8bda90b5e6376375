// Shared helpers of the end-to-end DNS tests: temp dirs, free ports, the
// daemons (updnsd, nsd), and a small DNS client on ldns with our own
// sockets. Header-only; every function is inline. Child processes and file
// helpers come from tests/support/process.h.
#pragma once

// stdbool.h first: without __bool_true_false_are_defined, ldns/common.h
// #defines bool, true and false, which breaks C++ headers included after it.
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/process.h"

namespace updns::test {

using Bytes = std::vector<uint8_t>;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/updns-test-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---------------------------------------------------------------------------
// Addresses and ports

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

inline SocketAddress Loopback4(uint16_t port) {
  SocketAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.length = sizeof(sockaddr_in);
  return a;
}

inline SocketAddress Loopback6(uint16_t port) {
  SocketAddress a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = in6addr_loopback;
  a.length = sizeof(sockaddr_in6);
  return a;
}

// Binds a socket of `type` to `address`; an invalid Fd when that fails.
inline Fd BindSocket(const SocketAddress& address, int type) {
  Fd fd(::socket(address.family(), type | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return fd;
  if (address.family() == AF_INET6) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd.get(), address.get(), address.length) != 0) fd.Reset();
  return fd;
}

inline uint16_t BoundPort(const Fd& fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &length) != 0) return 0;
  if (storage.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

// Whether ::1 can be bound here (no IPv6 in some containers).
inline bool HasIpv6Loopback() {
  static const bool has = BindSocket(Loopback6(0), SOCK_DGRAM).ok();
  return has;
}

// A port free for UDP and TCP on 127.0.0.1 (and on ::1 when `with_ipv6`), as
// the kernel hands them out for port 0. Someone else may take it before the
// caller binds it: callers retry with a new port when their server fails.
inline uint16_t PickFreePort(bool with_ipv6) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    Fd udp = BindSocket(Loopback4(0), SOCK_DGRAM);
    if (!udp.ok()) continue;
    uint16_t port = BoundPort(udp);
    if (port == 0) continue;
    Fd tcp = BindSocket(Loopback4(port), SOCK_STREAM);
    if (!tcp.ok()) continue;
    if (with_ipv6) {
      Fd udp6 = BindSocket(Loopback6(port), SOCK_DGRAM);
      Fd tcp6 = BindSocket(Loopback6(port), SOCK_STREAM);
      if (!udp6.ok() || !tcp6.ok()) continue;
    }
    return port;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// DNS messages (ldns)

struct PktDeleter {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Packet = std::unique_ptr<ldns_pkt, PktDeleter>;

struct QueryOptions {
  bool edns = false;
  uint16_t payload = 4096;
  uint8_t edns_version = 0;
  std::optional<uint16_t> id;  // random when absent
};

inline uint16_t RandomId() {
  static std::mt19937 rng(std::random_device{}());
  return static_cast<uint16_t>(rng());
}

// A query for `name` (presentation form, case kept) and `type`, class IN,
// RD clear, in wire form.
inline Bytes MakeQuery(const std::string& name, ldns_rr_type type,
                       const QueryOptions& options = {}) {
  ldns_rdf* owner = ldns_dname_new_frm_str(name.c_str());
  if (owner == nullptr) return {};
  Packet pkt(ldns_pkt_query_new(owner, type, LDNS_RR_CLASS_IN, 0));
  ldns_pkt_set_id(pkt.get(), options.id ? *options.id : RandomId());
  ldns_pkt_set_rd(pkt.get(), false);
  if (options.edns) {
    ldns_pkt_set_edns_udp_size(pkt.get(), options.payload);
    ldns_pkt_set_edns_version(pkt.get(), options.edns_version);
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, pkt.get(), &size) != LDNS_STATUS_OK) return {};
  Bytes bytes(wire, wire + size);
  std::free(wire);
  return bytes;
}

inline uint16_t WireId(const Bytes& message) {
  return message.size() < 2 ? 0 : static_cast<uint16_t>(message[0] << 8 | message[1]);
}

// Parses an answer; nullptr when ldns cannot.
inline Packet Parse(const Bytes& message) {
  ldns_pkt* pkt = nullptr;
  if (ldns_wire2pkt(&pkt, message.data(), message.size()) != LDNS_STATUS_OK) return nullptr;
  return Packet(pkt);
}

// The full (extended) RCODE: OPT's upper 8 bits and the header's lower 4.
inline unsigned FullRcode(const ldns_pkt* pkt) {
  return static_cast<unsigned>(ldns_pkt_edns_extended_rcode(pkt)) << 4 |
         static_cast<unsigned>(ldns_pkt_get_rcode(pkt));
}

// One RR in presentation form with single spaces, no newline, and its owner
// lowercased ("x.wild.test.example. 3600 IN A 192.0.2.20").
inline std::string RrText(const ldns_rr* rr) {
  ldns_rr* copy = ldns_rr_clone(rr);
  if (ldns_rr_owner(copy) != nullptr) ldns_dname2canonical(ldns_rr_owner(copy));
  char* text = ldns_rr2str(copy);
  ldns_rr_free(copy);
  std::string out;
  for (const char* c = text; c && *c; ++c) {
    if (*c == '\n') continue;
    out += *c == '\t' ? ' ' : *c;
  }
  std::free(text);
  return out;
}

// A section as a sorted list of RrText strings (duplicates kept).
inline std::vector<std::string> SectionTexts(const ldns_pkt* pkt, ldns_pkt_section section) {
  std::vector<std::string> texts;
  ldns_rr_list* list = ldns_pkt_get_section_clone(pkt, section);
  for (size_t i = 0; list && i < ldns_rr_list_rr_count(list); ++i)
    texts.push_back(RrText(ldns_rr_list_rr(list, i)));
  ldns_rr_list_deep_free(list);
  std::sort(texts.begin(), texts.end());
  return texts;
}

inline std::vector<std::string> Sorted(std::vector<std::string> texts) {
  std::sort(texts.begin(), texts.end());
  return texts;
}

// ---------------------------------------------------------------------------
// Transport

// Sends one datagram and returns the first one that comes back within
// `timeout`, or nullopt.
inline std::optional<Bytes> ExchangeUdp(const SocketAddress& server, const Bytes& query,
                                        milliseconds timeout) {
  Fd fd(::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.ok() || ::connect(fd.get(), server.get(), server.length) != 0) return std::nullopt;
  if (::send(fd.get(), query.data(), query.size(), 0) != static_cast<ssize_t>(query.size()))
    return std::nullopt;
  pollfd p{fd.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  Bytes answer(65535);
  ssize_t n = ::recv(fd.get(), answer.data(), answer.size(), 0);
  if (n < 0) return std::nullopt;
  answer.resize(static_cast<size_t>(n));
  return answer;
}

inline Bytes Framed(const Bytes& message) {
  Bytes out(message.size() + 2);
  out[0] = static_cast<uint8_t>(message.size() >> 8);
  out[1] = static_cast<uint8_t>(message.size());
  std::copy(message.begin(), message.end(), out.begin() + 2);
  return out;
}

// A non-blocking TCP socket (TCP_NODELAY) in `fd`, connected to `server`
// within `timeout`; false when that fails.
inline bool ConnectTcp(Fd& fd, const SocketAddress& server, milliseconds timeout) {
  fd = Fd(::socket(server.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.ok()) return false;
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd.get(), server.get(), server.length) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
  return error == 0;
}

// Writes all `size` bytes at `data` to the non-blocking socket `fd`, in one
// send() call where the kernel allows; false when the peer is gone.
inline bool SendAll(const Fd& fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::send(fd.get(), bytes + done, size - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return false;
      pollfd p{fd.get(), POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// A DNS-over-TCP client connection (RFC 1035 §4.2.2 two-byte framing).
class TcpConnection {
 public:
  bool Connect(const SocketAddress& server, milliseconds timeout) {
    return ConnectTcp(fd_, server, timeout);
  }

  // Writes all of `bytes` in one send() call where the kernel allows.
  bool SendRaw(const Bytes& bytes) { return SendAll(fd_, bytes.data(), bytes.size()); }

  bool Send(const Bytes& message) { return SendRaw(Framed(message)); }

  // Reads one framed message; nullopt on timeout, close or error.
  std::optional<Bytes> Read(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    Bytes length_bytes;
    if (!ReadExactly(2, deadline, length_bytes)) return std::nullopt;
    size_t length = static_cast<size_t>(length_bytes[0] << 8 | length_bytes[1]);
    Bytes message;
    if (!ReadExactly(length, deadline, message)) return std::nullopt;
    return message;
  }

  enum class CloseState { kClosed, kReset, kTimeout, kData };
  // Waits for the peer to close: kClosed when read() returns 0.
  CloseState WaitClosed(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return CloseState::kTimeout;
      pollfd p{fd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r == 0) return CloseState::kTimeout;
      if (r < 0) continue;
      uint8_t byte;
      ssize_t n = ::recv(fd_.get(), &byte, 1, 0);
      if (n == 0) return CloseState::kClosed;
      if (n > 0) return CloseState::kData;
      if (errno == EAGAIN || errno == EINTR) continue;
      return CloseState::kReset;
    }
  }

 private:
  bool ReadExactly(size_t count, Clock::time_point deadline, Bytes& out) {
    out.resize(count);
    size_t done = 0;
    while (done < count) {
      ssize_t n = ::recv(fd_.get(), out.data() + done, count - done, 0);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) return false;
      if (errno != EAGAIN && errno != EINTR) return false;
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_.get(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
    }
    return true;
  }

  Fd fd_;
};

inline std::optional<Bytes> ExchangeTcp(const SocketAddress& server, const Bytes& query,
                                        milliseconds timeout) {
  TcpConnection connection;
  if (!connection.Connect(server, timeout) || !connection.Send(query)) return std::nullopt;
  return connection.Read(timeout);
}

// ---------------------------------------------------------------------------
// Servers

inline const char* kZones[][2] = {{"test.example", "test.example.zone"},
                                  {"neg.example", "neg.example.zone"}};

// The TXT RRset of big.test.example in tests/data/test.example.zone (four
// 240-byte strings: too large for a 512-byte UDP answer), as RrText prints it.
inline std::vector<std::string> BigTxt() {
  std::vector<std::string> texts;
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (int i = 0; i < 4; ++i) {
    std::string repeated;
    for (int k = 0; k < 8; ++k) repeated += alphabet.substr(static_cast<size_t>(i));
    std::string s = ("big-txt-record-" + std::to_string(i) + "-" + repeated).substr(0, 240);
    texts.push_back("big.test.example. 3600 IN TXT \"" + s + "\"");
  }
  return texts;
}

inline std::filesystem::path TestDataDir() {
  return std::filesystem::path(UPDNS_SOURCE_DIR) / "tests" / "data";
}

// Waits up to 10 s, while `process` runs, for `ready`, probing every `step`.
// False when it did not get ready: *error then says why (`not_ready` when it
// still runs, else how `program` exited) followed by `log()`, and the
// process is killed.
inline bool AwaitStart(Process& process, const std::string& program, const std::string& not_ready,
                       const std::function<bool()>& ready, milliseconds step,
                       const std::function<std::string()>& log, std::string* error) {
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && process.Running()) {
    if (ready()) return true;
    std::this_thread::sleep_for(step);
  }
  *error = process.Running()
               ? not_ready
               : program + " exited at start (" + DescribeWaitStatus(process.status()) + ")";
  *error += "; its log:\n" + log();
  process.Kill();
  return false;
}

// True once `server` answers the SOA query of test.example with NOERROR and
// the SOA, i.e. the zone is loaded and a worker is listening.
inline bool AnswersSoa(const SocketAddress& server) {
  Bytes query = MakeQuery("test.example.", LDNS_RR_TYPE_SOA);
  std::optional<Bytes> answer = ExchangeUdp(server, query, milliseconds(100));
  if (!answer) return false;
  Packet pkt = Parse(*answer);
  return pkt && ldns_pkt_get_rcode(pkt.get()) == LDNS_RCODE_NOERROR &&
         ldns_pkt_ancount(pkt.get()) == 1;
}

struct UpdnsOptions {
  unsigned tcp_idle_timeout_ms = 10000;
  // After the first answer, also wait (up to 2 s) for the "event=started"
  // log line, written just before the daemon installs its signal handlers.
  bool wait_for_started_log = true;
  // Between readiness probes; 0 probes as fast as the answers come back.
  milliseconds poll_interval = milliseconds(20);
};

// updnsd serving tests/data/*.zone from its own temp dir, on a free port of
// 127.0.0.1 (and ::1 when the host has it).
class UpdnsDaemon {
 public:
  // Tries a few ports; false with a message (and the daemon's log) when the
  // daemon would not start and answer within 10 s.
  bool Start(const UpdnsOptions& options, std::string* error) {
    if (!dir_.ok()) {
      *error = "cannot create a temp dir";
      return false;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = PickFreePort(HasIpv6Loopback());
      if (port_ == 0) {
        *error = "no free port";
        return false;
      }
      std::filesystem::path config = dir_.path() / "updns.yaml";
      WriteFile(config, ConfigText(options));
      std::filesystem::remove_all(dir_.path() / "db");
      std::filesystem::remove(log_path());
      if (!process_.Start({UPDNSD_PATH, "--config", config.string()}, dir_.path(), log_path(),
                          log_path(), error)) {
        return false;
      }
      auto answers = [&] {
        if (!AnswersSoa(udp4())) return false;
        if (options.wait_for_started_log) WaitForLog("event=started", milliseconds(2000));
        return true;
      };
      if (AwaitStart(process_, "updnsd", "updnsd did not answer the SOA query within 10 s", answers,
                     options.poll_interval, [&] { return log(); }, error)) {
        return true;
      }
    }
    return false;
  }

  // Waits until the log contains `text`; false after `timeout`.
  bool WaitForLog(const std::string& text, milliseconds timeout) const {
    return WaitForFileText(log_path(), text, timeout, milliseconds(2));
  }

  std::string ConfigText(const UpdnsOptions& options) const {
    std::string p = std::to_string(port_);
    std::string text = "server:\n  listen: [\"127.0.0.1@" + p + "\"";
    if (HasIpv6Loopback()) text += ", \"::1@" + p + "\"";
    text += "]\n  workers: 2\n";
    text += "  tcp_idle_timeout: " + std::to_string(options.tcp_idle_timeout_ms) + "\n";
    text += "storage:\n  path: " + (dir_.path() / "db").string() + "\n  map_size: 64MiB\n";
    text += "zones:\n";
    for (const auto& zone : kZones) {
      text += std::string("  - name: ") + zone[0] + "\n";
      text += "    file: " + (TestDataDir() / zone[1]).string() + "\n";
    }
    return text;
  }

  // SIGTERM, then waits up to `timeout`. False when it did not exit in time.
  bool Stop(milliseconds timeout = milliseconds(5000)) { return process_.Stop(SIGTERM, timeout); }

  Process& process() { return process_; }
  uint16_t port() const { return port_; }
  SocketAddress udp4() const { return Loopback4(port_); }
  SocketAddress udp6() const { return Loopback6(port_); }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path log_path() const { return dir_.path() / "updnsd.log"; }
  std::string log() const { return ReadFile(log_path()); }

 private:
  TempDir dir_;
  Process process_;
  uint16_t port_ = 0;
};

inline constexpr const char* kNsdPath = "/usr/sbin/nsd";

inline bool NsdInstalled() { return ::access(kNsdPath, X_OK) == 0; }

// Debian's nsd in the foreground (-d) on a free port of 127.0.0.1, serving
// the same zone files, everything it writes kept in its temp dir.
class NsdDaemon {
 public:
  bool Start(std::string* error) {
    if (!dir_.ok()) {
      *error = "cannot create a temp dir";
      return false;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = PickFreePort(false);
      if (port_ == 0) {
        *error = "no free port";
        return false;
      }
      std::filesystem::path config = dir_.path() / "nsd.conf";
      WriteFile(config, ConfigText());
      std::filesystem::remove(log_path());
      if (!process_.Start({kNsdPath, "-d", "-c", config.string()}, dir_.path(), log_path(),
                          log_path(), error)) {
        return false;
      }
      auto nsd_log = [&] { return ReadFile(log_path()) + ReadFile(dir_.path() / "nsd.log"); };
      if (AwaitStart(process_, "nsd", "nsd did not answer the SOA query within 10 s",
                     [&] { return AnswersSoa(udp4()); }, milliseconds(20), nsd_log, error)) {
        return true;
      }
    }
    return false;
  }

  std::string ConfigText() const {
    std::string d = dir_.path().string();
    std::string text = "server:\n";
    text += "  port: " + std::to_string(port_) + "\n";
    text += "  ip-address: 127.0.0.1\n";
    text += "  do-ip4: yes\n  do-ip6: no\n";
    text += "  username: \"\"\n  chroot: \"\"\n";
    text += "  zonesdir: \"" + d + "\"\n";
    text += "  pidfile: \"" + d + "/nsd.pid\"\n";
    text += "  xfrdfile: \"" + d + "/xfrd.state\"\n";
    text += "  zonelistfile: \"" + d + "/zone.list\"\n";
    text += "  logfile: \"" + d + "/nsd.log\"\n";
    text += "  database: \"\"\n";
    text += "  verbosity: 0\n  server-count: 1\n";
    text += "  refuse-any: no\n";
    text += "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n";
    text += "remote-control:\n  control-enable: no\n";
    for (const auto& zone : kZones) {
      text += std::string("zone:\n  name: ") + zone[0] + "\n";
      text += "  zonefile: \"" + (TestDataDir() / zone[1]).string() + "\"\n";
    }
    return text;
  }

  bool Stop(milliseconds timeout = milliseconds(5000)) { return process_.Stop(SIGTERM, timeout); }

  uint16_t port() const { return port_; }
  SocketAddress udp4() const { return Loopback4(port_); }
  std::filesystem::path log_path() const { return dir_.path() / "nsd.out"; }

 private:
  TempDir dir_;
  Process process_;
  uint16_t port_ = 0;
};

}  // namespace updns::test
