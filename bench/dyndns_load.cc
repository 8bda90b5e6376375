// dyndns_load: a load generator for the dyndns2 endpoint (GET /nic/update).
//
// Opens C keep-alive HTTP/1.1 connections to HOST:PORT and keeps up to P
// requests in flight on each (P = 1: one at a time; P > 1: pipelined), each
// request a token-authenticated update (Basic auth, host name + token) of one
// host from a CSV file (header `hostname,token`, as `updnsctl token
// create-missing --csv` writes it). With --rate R the requests are paced to
// R per second in all (a steady background update load, as bench/compare
// uses while it measures queries); without it, as fast as answers come. Every connection owns a disjoint share of
// the hosts and updates them round-robin, alternating each host between two
// addresses, so every update is a real change ("good ..."); --seed picks the
// address pair (198.18.0.0/15), so that a later run never starts with the
// address an earlier run left behind.
//
// Counts only responses that arrive between the end of the warm-up and the
// end of the run for the rate; requests still in flight at the end are
// drained and checked but not counted in the rate. Prints the totals, the
// rate, the result codes and the latency percentiles; exits 1 when any
// response was not "200 good ..." or a connection failed.
//
// Plain POSIX sockets and epoll, one event loop per thread; no dependencies.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: dyndns_load --port PORT --csv FILE [options]\n"
    "\n"
    "  --host ADDR          server address (IPv4 or IPv6 literal; default 127.0.0.1)\n"
    "  --port PORT          server HTTP port (required)\n"
    "  --csv FILE           hostname,token CSV (required)\n"
    "  -c, --connections C  keep-alive connections (default 8)\n"
    "  -p, --pipeline P     requests in flight per connection (default 1 = one at a time)\n"
    "  -d, --duration D     measured seconds (default 10)\n"
    "  -w, --warmup W       seconds of load before measuring (default 1)\n"
    "  -t, --threads T      client event-loop threads (default 1)\n"
    "  -r, --rate R         send at most R requests/s in all (paced; default 0 = as fast\n"
    "                       as the connections allow), e.g. a background update load\n"
    "  --hosts N            use only the first N hosts of the CSV\n"
    "  --seed S             address pair for this run (default: from the clock)\n"
    "  --quiet              print only the one-line summary\n";

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string csv;
  int connections = 8;
  int pipeline = 1;
  double duration = 10;
  double warmup = 1;
  int threads = 1;
  double rate = 0;  // requests/s over all threads; 0 = unpaced
  size_t max_hosts = 0;
  uint32_t seed = 0;
  bool seed_set = false;
  bool quiet = false;
};

struct HostEntry {
  std::string name;
  std::string auth;  // "Basic base64(name:token)"
  uint64_t sent = 0;  // requests sent for this host (alternates the address)
};

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t g = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (i + 1 < in.size()) g |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    if (i + 2 < in.size()) g |= static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[g >> 18 & 63]);
    out.push_back(kAlphabet[g >> 12 & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[g >> 6 & 63] : '=');
    out.push_back(i + 2 < in.size() ? kAlphabet[g & 63] : '=');
  }
  return out;
}

// One CSV field, RFC 4180 quoting.
std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        fields.back().push_back(ch);
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      fields.emplace_back();
    } else if (ch != '\r') {
      fields.back().push_back(ch);
    }
  }
  return fields;
}

bool LoadHosts(const Options& o, std::vector<HostEntry>& hosts) {
  std::ifstream in(o.csv);
  if (!in) {
    std::fprintf(stderr, "dyndns_load: cannot read %s\n", o.csv.c_str());
    return false;
  }
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty() || line == "\r") continue;
    auto fields = SplitCsvLine(line);
    if (header) {
      header = false;
      if (fields.size() >= 2 && fields[0] == "hostname" && fields[1] == "token") continue;
      std::fprintf(stderr, "dyndns_load: %s: expected the header 'hostname,token'\n",
                   o.csv.c_str());
      return false;
    }
    if (fields.size() < 2 || fields[0].empty() || fields[1].empty()) {
      std::fprintf(stderr, "dyndns_load: %s: bad line '%s'\n", o.csv.c_str(), line.c_str());
      return false;
    }
    hosts.push_back({fields[0], "Basic " + Base64(fields[0] + ":" + fields[1]), 0});
    if (o.max_hosts && hosts.size() == o.max_hosts) break;
  }
  if (hosts.empty()) {
    std::fprintf(stderr, "dyndns_load: %s has no hosts\n", o.csv.c_str());
    return false;
  }
  return true;
}

struct Counters {
  uint64_t measured = 0;  // responses inside the measured window
  uint64_t total = 0;     // every response, warm-up and drain included
  uint64_t good = 0, nochg = 0, other_code = 0, non_200 = 0;
  uint64_t connection_errors = 0;
  std::map<std::string, uint64_t> other_examples;  // first word of odd answers
  std::vector<uint32_t> latency_us;                // measured window only
};

struct Conn {
  int fd = -1;
  std::vector<HostEntry*> hosts;  // this connection's share
  size_t next_host = 0;
  std::deque<Clock::time_point> in_flight;  // send times, in order
  std::string out;                          // bytes not yet written
  size_t out_pos = 0;
  std::string in;  // bytes read and not yet parsed
  bool want_write = false;
  bool dead = false;
};

struct Shared {
  const Options* options;
  std::string host_header;
  Clock::time_point measure_from, measure_until;
  std::atomic<bool> stop_sending{false};
};

int Connect(const Options& o) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, o.host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(o.port));
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, o.host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(o.port));
    len = sizeof *a6;
  } else {
    std::fprintf(stderr, "dyndns_load: '%s' is not an IP address\n", o.host.c_str());
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::fprintf(stderr, "dyndns_load: connect: %s\n", std::strerror(errno));
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void QueueRequest(Shared& shared, Conn& c) {
  HostEntry& h = *c.hosts[c.next_host];
  c.next_host = (c.next_host + 1) % c.hosts.size();
  // 198.18.0.0/15: 16 bits of seed, 1 bit alternating per host.
  uint32_t low = (shared.options->seed & 0xFFFF) << 1 | static_cast<uint32_t>(h.sent++ & 1);
  char ip[32];
  std::snprintf(ip, sizeof ip, "198.%u.%u.%u", 18 + (low >> 16), (low >> 8) & 255, low & 255);
  c.out.append("GET /nic/update?hostname=").append(h.name).append("&myip=").append(ip);
  c.out.append(" HTTP/1.1\r\nHost: ").append(shared.host_header);
  c.out.append("\r\nUser-Agent: updns-dyndns-load/1\r\nAuthorization: ").append(h.auth);
  c.out.append("\r\n\r\n");
  c.in_flight.push_back(Clock::now());
}

// Paces one thread's requests to `rate` per second from `start` on (rate 0:
// no limit). A thread that fell behind catches up by at most one burst of
// what its connections can take.
struct Pacer {
  double rate = 0;
  Clock::time_point start;
  uint64_t issued = 0;
  bool Allow() {
    if (rate <= 0) return true;
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (static_cast<double>(issued) >= elapsed * rate + 1) return false;
    ++issued;
    return true;
  }
};

void Fill(Shared& shared, Conn& c, Pacer& pacer) {
  if (shared.stop_sending.load(std::memory_order_relaxed)) return;
  while (static_cast<int>(c.in_flight.size()) < shared.options->pipeline && pacer.Allow())
    QueueRequest(shared, c);
}

// Writes what the socket takes. False on an error.
bool Flush(Conn& c) {
  while (c.out_pos < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return false;
    c.out_pos += static_cast<size_t>(n);
  }
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
  }
  return true;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if ((s[i] | 0x20) != (prefix[i] | 0x20)) return false;
  return true;
}

// Parses complete responses from c.in. False on a protocol error.
bool ParseResponses(Shared& shared, Conn& c, Counters& k) {
  size_t pos = 0;
  while (true) {
    size_t end = c.in.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    std::string_view head(c.in.data() + pos, end - pos);
    int status = 0;
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return false;
    status = std::atoi(std::string(head.substr(9, 3)).c_str());
    size_t length = 0;
    bool close_after = false;
    for (size_t line = head.find("\r\n"); line != std::string_view::npos;) {
      size_t next = head.find("\r\n", line + 2);
      std::string_view field = head.substr(line + 2, next == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : next - line - 2);
      if (StartsWithNoCase(field, "content-length:"))
        length = std::strtoul(std::string(field.substr(15)).c_str(), nullptr, 10);
      if (StartsWithNoCase(field, "connection:") && field.find("close") != std::string_view::npos)
        close_after = true;
      line = next;
    }
    size_t body_at = end + 4;
    if (c.in.size() < body_at + length) break;  // body not complete yet
    std::string_view body(c.in.data() + body_at, length);
    pos = body_at + length;
    if (status == 100) continue;  // never sent without Expect, but harmless
    if (c.in_flight.empty()) return false;  // a response nobody asked for
    Clock::time_point sent = c.in_flight.front();
    c.in_flight.pop_front();
    Clock::time_point now = Clock::now();
    ++k.total;
    if (now >= shared.measure_from && now < shared.measure_until) {
      ++k.measured;
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count();
      k.latency_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    }
    if (status != 200) {
      ++k.non_200;
      ++k.other_examples[std::to_string(status) + " " +
                         std::string(body.substr(0, body.find('\n')))];
    } else if (body.substr(0, 5) == "good ") {
      ++k.good;
    } else if (body.substr(0, 5) == "nochg") {
      ++k.nochg;
    } else {
      ++k.other_code;
      ++k.other_examples[std::string(body.substr(0, body.find('\n')))];
    }
    if (close_after) {
      c.in.erase(0, pos);
      return false;
    }
  }
  c.in.erase(0, pos);
  return true;
}

void Kill(int epoll_fd, Conn& c, Counters& k) {
  if (c.dead) return;
  c.dead = true;
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  ++k.connection_errors;
}

void UpdateInterest(int epoll_fd, Conn& c, size_t index) {
  bool want = !c.out.empty();
  if (want == c.want_write) return;
  c.want_write = want;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = index;
  epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
}

void RunThread(Shared& shared, std::vector<Conn>& conns, Counters& k) {
  Pacer pacer{shared.options->rate / shared.options->threads, Clock::now(), 0};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < conns.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  auto top_up = [&] {
    for (size_t i = 0; i < conns.size(); ++i) {
      if (conns[i].dead) continue;
      Fill(shared, conns[i], pacer);
      if (!Flush(conns[i])) Kill(ep, conns[i], k);
      UpdateInterest(ep, conns[i], i);
    }
  };
  top_up();
  const Clock::time_point drain_deadline = shared.measure_until + std::chrono::seconds(10);
  std::vector<epoll_event> events(256);
  char buffer[64 * 1024];
  while (true) {
    Clock::time_point now = Clock::now();
    if (now >= shared.measure_until) shared.stop_sending.store(true, std::memory_order_relaxed);
    bool pending = false;
    for (const Conn& c : conns) pending |= !c.dead && !c.in_flight.empty();
    if (shared.stop_sending.load(std::memory_order_relaxed) && !pending) break;
    if (now >= drain_deadline) {
      for (Conn& c : conns) {
        if (!c.dead && !c.in_flight.empty()) {
          std::fprintf(stderr, "dyndns_load: %zu responses missing after the drain\n",
                       c.in_flight.size());
          Kill(ep, c, k);
        }
      }
      break;
    }
    // Paced: wake every millisecond to send what the rate allows by now.
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), pacer.rate > 0 ? 1 : 50);
    for (int e = 0; e < n; ++e) {
      size_t i = events[e].data.u64;
      Conn& c = conns[i];
      if (c.dead) continue;
      if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        bool ok = true;
        while (true) {
          ssize_t r = recv(c.fd, buffer, sizeof buffer, 0);
          if (r > 0) {
            c.in.append(buffer, static_cast<size_t>(r));
            if (static_cast<size_t>(r) < sizeof buffer) break;
            continue;
          }
          if (r < 0 && errno == EINTR) continue;
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          ok = false;  // EOF or error
          break;
        }
        bool parsed = ParseResponses(shared, c, k);
        if (!ok || !parsed) {
          if (!c.in_flight.empty() || !parsed)
            std::fprintf(stderr, "dyndns_load: connection lost with %zu requests in flight\n",
                         c.in_flight.size());
          Kill(ep, c, k);
          continue;
        }
        Fill(shared, c, pacer);
      }
      if (!Flush(c)) {
        Kill(ep, c, k);
        continue;
      }
      UpdateInterest(ep, c, i);
    }
    if (pacer.rate > 0) top_up();
  }
  for (Conn& c : conns)
    if (!c.dead) close(c.fd);
  close(ep);
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "dyndns_load: %s needs a value\n\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = std::atoi(value());
    else if (a == "--csv") o.csv = value();
    else if (a == "-c" || a == "--connections") o.connections = std::atoi(value());
    else if (a == "-p" || a == "--pipeline") o.pipeline = std::atoi(value());
    else if (a == "-d" || a == "--duration") o.duration = std::atof(value());
    else if (a == "-w" || a == "--warmup") o.warmup = std::atof(value());
    else if (a == "-t" || a == "--threads") o.threads = std::atoi(value());
    else if (a == "-r" || a == "--rate") o.rate = std::atof(value());
    else if (a == "--hosts") o.max_hosts = std::strtoul(value(), nullptr, 10);
    else if (a == "--seed") o.seed = static_cast<uint32_t>(std::strtoul(value(), nullptr, 10)), o.seed_set = true;
    else if (a == "--quiet") o.quiet = true;
    else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "dyndns_load: unknown argument '%s'\n\n%s", a.c_str(), kUsage);
      return false;
    }
  }
  if (o.port <= 0 || o.port > 65535 || o.csv.empty() || o.connections < 1 || o.pipeline < 1 ||
      o.duration <= 0 || o.warmup < 0 || o.threads < 1 || o.rate < 0) {
    std::fprintf(stderr, "dyndns_load: bad or missing arguments\n\n%s", kUsage);
    return false;
  }
  if (!o.seed_set)
    o.seed = static_cast<uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  std::vector<HostEntry> hosts;
  if (!LoadHosts(o, hosts)) return 2;
  if (hosts.size() < static_cast<size_t>(o.connections)) {
    std::fprintf(stderr,
                 "dyndns_load: %zu hosts for %d connections: every connection needs its own "
                 "host(s), or two connections would race on one host's address\n",
                 hosts.size(), o.connections);
    return 2;
  }
  o.threads = std::min(o.threads, o.connections);

  Shared shared;
  shared.options = &o;
  shared.host_header = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                       ":" + std::to_string(o.port);

  // Connection i gets hosts i, i+C, i+2C, ...; thread t gets connections t, t+T, ...
  std::vector<std::vector<Conn>> per_thread(o.threads);
  for (int i = 0; i < o.connections; ++i) {
    Conn c;
    c.fd = Connect(o);
    if (c.fd < 0) return 1;
    for (size_t h = i; h < hosts.size(); h += o.connections) c.hosts.push_back(&hosts[h]);
    per_thread[i % o.threads].push_back(std::move(c));
  }

  auto start = Clock::now();
  shared.measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(o.warmup));
  shared.measure_until = shared.measure_from + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(o.duration));
  std::vector<Counters> counters(o.threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t)
    threads.emplace_back(
        [&, t] { RunThread(shared, per_thread[t], counters[t]); });
  for (auto& t : threads) t.join();

  Counters all;
  for (Counters& k : counters) {
    all.measured += k.measured;
    all.total += k.total;
    all.good += k.good;
    all.nochg += k.nochg;
    all.other_code += k.other_code;
    all.non_200 += k.non_200;
    all.connection_errors += k.connection_errors;
    for (auto& [text, n] : k.other_examples) all.other_examples[text] += n;
    all.latency_us.insert(all.latency_us.end(), k.latency_us.begin(), k.latency_us.end());
  }
  auto percentile = [&](double q) -> double {
    if (all.latency_us.empty()) return 0;
    size_t at = std::min(all.latency_us.size() - 1,
                         static_cast<size_t>(q * static_cast<double>(all.latency_us.size())));
    std::nth_element(all.latency_us.begin(), all.latency_us.begin() + at, all.latency_us.end());
    return all.latency_us[at] / 1000.0;
  };
  double rate = static_cast<double>(all.measured) / o.duration;
  double p50 = percentile(0.50), p99 = percentile(0.99);
  double max = all.latency_us.empty()
                   ? 0
                   : *std::max_element(all.latency_us.begin(), all.latency_us.end()) / 1000.0;
  bool clean = all.nochg == 0 && all.other_code == 0 && all.non_200 == 0 &&
               all.connection_errors == 0 && all.good == all.total;
  if (!o.quiet) {
    std::printf("target          %s:%d, %zu hosts, %d connections x %d in flight, %d thread(s)\n",
                o.host.c_str(), o.port, hosts.size(), o.connections, o.pipeline, o.threads);
    if (o.rate > 0) std::printf("paced           %.0f requests/s\n", o.rate);
    std::printf("window          %.1f s measured after %.1f s warm-up\n", o.duration, o.warmup);
    std::printf("requests        %" PRIu64 " in the window, %" PRIu64 " in all\n", all.measured,
                all.total);
    std::printf("codes           good %" PRIu64 ", nochg %" PRIu64 ", other %" PRIu64
                ", non-200 %" PRIu64 ", connection errors %" PRIu64 "\n",
                all.good, all.nochg, all.other_code, all.non_200, all.connection_errors);
    for (auto& [text, n] : all.other_examples)
      std::printf("  unexpected    %" PRIu64 " x '%s'\n", n, text.c_str());
    std::printf("latency         p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, max);
    std::printf("rate            %.0f updates/s\n", rate);
  }
  // One machine-readable line for scripts.
  std::printf("RESULT connections=%d pipeline=%d requests=%" PRIu64 " total=%" PRIu64
              " rate=%.0f good=%" PRIu64 " nochg=%" PRIu64 " other=%" PRIu64 " non200=%" PRIu64
              " conn_errors=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f ok=%d\n",
              o.connections, o.pipeline, all.measured, all.total, rate, all.good, all.nochg,
              all.other_code, all.non_200, all.connection_errors, p50, p99, clean ? 1 : 0);
  return clean ? 0 : 1;
}
