// udp_load: a batched DNS-over-UDP load generator, for when dnsperf's one
// send and one receive system call per query make the client, not the
// server, the bottleneck (on a 2-core machine dnsperf saturates its core
// near 125,000 queries/s).
//
// Replays a dnsperf query file ("name TYPE" per line) in a loop over S
// connected UDP sockets, keeping up to Q queries in flight in all, sending
// and receiving with sendmmsg/recvmmsg in batches of up to 64. Closed loop,
// like dnsperf: a query is answered, or lost after --timeout. Each answer is
// matched to its query by socket and ID; its rcode is counted. Prints the
// same summary lines as dnsperf ("Queries sent:", "Queries completed:",
// "Queries lost:", "Response codes:", "Queries per second:"), so scripts
// parse either.
//
// Plain POSIX sockets and poll; no dependencies. One thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: udp_load --port PORT --queries FILE [options]\n"
    "\n"
    "  --server ADDR        IPv4 address (default 127.0.0.1)\n"
    "  --port PORT          server port (required)\n"
    "  --queries FILE       dnsperf query file: 'name TYPE' per line (required)\n"
    "  -l, --duration S     seconds to send (default 10)\n"
    "  -s, --sockets N      UDP sockets (source ports; default 8)\n"
    "  -q, --outstanding Q  queries in flight in all (default 200)\n"
    "  -t, --timeout S      a query unanswered this long is lost (default 1)\n"
    "  -e, --edns           add an OPT record (payload 1232); default: plain queries, as dnsperf\n";

constexpr int kBatch = 64;
constexpr size_t kMaxQuery = 300;
constexpr size_t kMaxAnswer = 4096;

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

int TypeCode(const std::string& t) {
  static const struct {
    const char* name;
    int code;
  } kTypes[] = {{"A", 1},     {"NS", 2},    {"CNAME", 5}, {"SOA", 6},   {"PTR", 12},
                {"MX", 15},   {"TXT", 16},  {"AAAA", 28}, {"SRV", 33},  {"DS", 43},
                {"DNSKEY", 48}, {"CAA", 257}, {"ANY", 255}};
  for (const auto& k : kTypes)
    if (t == k.name) return k.code;
  if (t.rfind("TYPE", 0) == 0) return std::atoi(t.c_str() + 4);
  return -1;
}

// Wire form of a query with ID 0 (patched per send); empty when malformed.
std::string BuildQuery(const std::string& name, int type, bool edns) {
  std::string q("\0\0\0\0\0\1\0\0\0\0\0", 11);
  q.push_back(edns ? 1 : 0);
  size_t start = 0;
  std::string n = name;
  if (!n.empty() && n.back() == '.') n.pop_back();
  while (!n.empty() && start <= n.size()) {
    size_t dot = n.find('.', start);
    if (dot == std::string::npos) dot = n.size();
    size_t len = dot - start;
    if (len == 0 || len > 63) return {};
    q.push_back(char(len));
    q.append(n, start, len);
    start = dot + 1;
  }
  q.push_back(0);
  q.push_back(char(type >> 8));
  q.push_back(char(type));
  q.push_back(0);
  q.push_back(1);
  if (edns) q.append(std::string("\0\0\x29\x04\xd0\0\0\0\0\0\0", 11));
  return q.size() <= kMaxQuery ? q : std::string();
}

struct Slot {
  bool busy = false;
  uint32_t generation = 0;
  uint64_t sent_ns = 0;
};

struct Pending {  // send order, for the timeout sweep
  uint16_t id;
  uint32_t generation;
  uint64_t sent_ns;
};

struct Sock {
  int fd = -1;
  std::vector<Slot> slots = std::vector<Slot>(65536);
  std::deque<Pending> order;
  uint16_t next_id = 0;
  int in_flight = 0;
};

const char* RcodeName(int r) {
  static const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                 "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};
  return r >= 0 && r < 11 ? kNames[r] : "RCODE?";
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1", file;
  int port = 0, sockets = 8, outstanding = 200;
  double duration = 10, timeout = 1;
  bool edns = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "udp_load: %s needs a value\n\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--server") server = value();
    else if (a == "--port") port = std::atoi(value());
    else if (a == "--queries") file = value();
    else if (a == "-l" || a == "--duration") duration = std::atof(value());
    else if (a == "-s" || a == "--sockets") sockets = std::atoi(value());
    else if (a == "-q" || a == "--outstanding") outstanding = std::atoi(value());
    else if (a == "-t" || a == "--timeout") timeout = std::atof(value());
    else if (a == "-e" || a == "--edns") edns = true;
    else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "udp_load: unknown argument '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (port <= 0 || port > 65535 || file.empty() || sockets < 1 || outstanding < sockets ||
      duration <= 0 || timeout <= 0) {
    std::fprintf(stderr, "udp_load: bad or missing arguments\n\n%s", kUsage);
    return 2;
  }

  std::vector<std::string> queries;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    size_t space = line.find_first_of(" \t");
    if (line.empty() || line[0] == '#' || space == std::string::npos) continue;
    std::string name = line.substr(0, space), type = line.substr(line.find_first_not_of(" \t", space));
    while (!type.empty() && (type.back() == '\r' || type.back() == ' ')) type.pop_back();
    int code = TypeCode(type);
    std::string q = code < 0 ? std::string() : BuildQuery(name, code, edns);
    if (q.empty()) {
      std::fprintf(stderr, "udp_load: %s: cannot use line '%s'\n", file.c_str(), line.c_str());
      return 2;
    }
    queries.push_back(std::move(q));
  }
  if (queries.empty()) {
    std::fprintf(stderr, "udp_load: %s has no queries\n", file.c_str());
    return 2;
  }

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, server.c_str(), &to.sin_addr) != 1) {
    std::fprintf(stderr, "udp_load: '%s' is not an IPv4 address\n", server.c_str());
    return 2;
  }
  std::vector<Sock> socks(sockets);
  std::vector<pollfd> polls(sockets);
  for (int s = 0; s < sockets; ++s) {
    socks[s].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int size = 4 << 20;
    setsockopt(socks[s].fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(socks[s].fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (socks[s].fd < 0 || connect(socks[s].fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      std::fprintf(stderr, "udp_load: socket: %s\n", std::strerror(errno));
      return 1;
    }
    polls[s] = {socks[s].fd, POLLIN, 0};
  }
  const int per_socket = outstanding / sockets;

  static uint8_t out[kBatch][kMaxQuery];
  static uint8_t answers[kBatch][kMaxAnswer];
  mmsghdr out_msgs[kBatch], in_msgs[kBatch];
  iovec out_iov[kBatch], in_iov[kBatch];
  uint64_t sent = 0, completed = 0, lost = 0, unexpected = 0, rcodes[16] = {};
  size_t next_query = 0;
  const uint64_t timeout_ns = uint64_t(timeout * 1e9);
  const uint64_t start = NowNs(), stop_sending = start + uint64_t(duration * 1e9);
  uint64_t last_sweep = start, end = stop_sending;

  while (true) {
    uint64_t now = NowNs();
    bool sending = now < stop_sending;
    int in_flight_total = 0;
    for (Sock& k : socks) {
      // Send what this socket's share of the window allows, in one call.
      int n = 0;
      while (sending && n < kBatch && k.in_flight + n < per_socket) {
        uint16_t id = k.next_id++;
        Slot& slot = k.slots[id];
        if (slot.busy) continue;
        const std::string& q = queries[next_query];
        if (++next_query == queries.size()) next_query = 0;
        std::memcpy(out[n], q.data(), q.size());
        out[n][0] = uint8_t(id >> 8);
        out[n][1] = uint8_t(id);
        out_iov[n] = {out[n], q.size()};
        out_msgs[n] = {};
        out_msgs[n].msg_hdr.msg_iov = &out_iov[n];
        out_msgs[n].msg_hdr.msg_iovlen = 1;
        slot.busy = true;
        slot.sent_ns = now;
        ++slot.generation;
        k.order.push_back({id, slot.generation, now});
        ++n;
      }
      int done = 0;
      while (done < n) {
        int r = sendmmsg(k.fd, out_msgs + done, n - done, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;  // socket buffer full: the rest go as lost below
        done += r;
      }
      sent += done;
      k.in_flight += n;  // unsent ones stay busy and time out: counted as lost
      in_flight_total += k.in_flight;
    }
    if (!sending && in_flight_total == 0) break;
    if (!sending && now > end + timeout_ns) break;

    int ready = poll(polls.data(), polls.size(), 1);
    if (ready > 0) {
      for (int s = 0; s < sockets; ++s) {
        if (!(polls[s].revents & POLLIN)) continue;
        Sock& k = socks[s];
        while (true) {
          for (int i = 0; i < kBatch; ++i) {
            in_iov[i] = {answers[i], kMaxAnswer};
            in_msgs[i] = {};
            in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
            in_msgs[i].msg_hdr.msg_iovlen = 1;
          }
          int r = recvmmsg(k.fd, in_msgs, kBatch, MSG_DONTWAIT, nullptr);
          if (r <= 0) break;
          for (int i = 0; i < r; ++i) {
            if (in_msgs[i].msg_len < 12) {
              ++unexpected;
              continue;
            }
            uint16_t id = uint16_t(answers[i][0] << 8 | answers[i][1]);
            Slot& slot = k.slots[id];
            if (!slot.busy || !(answers[i][2] & 0x80)) {
              ++unexpected;  // late (already counted lost) or not an answer
              continue;
            }
            slot.busy = false;
            --k.in_flight;
            ++completed;
            ++rcodes[answers[i][3] & 0x0F];
          }
          if (r < kBatch) break;
        }
      }
    }
    now = NowNs();
    if (now - last_sweep > 10000000) {  // every 10 ms: queries past their timeout are lost
      last_sweep = now;
      for (Sock& k : socks) {
        while (!k.order.empty()) {
          const Pending& p = k.order.front();
          Slot& slot = k.slots[p.id];
          if (slot.busy && slot.generation == p.generation) {
            if (now - p.sent_ns < timeout_ns) break;
            slot.busy = false;
            --k.in_flight;
            ++lost;
          }
          k.order.pop_front();
        }
      }
    }
  }
  double elapsed = double(stop_sending - start) / 1e9;
  std::printf("[Status] udp_load: %d sockets, %d in flight, %zu distinct queries%s\n", sockets,
              outstanding, queries.size(), edns ? ", EDNS" : "");
  std::printf("  Queries sent:         %" PRIu64 "\n", sent);
  std::printf("  Queries completed:    %" PRIu64 " (%.2f%%)\n", completed,
              sent ? 100.0 * double(completed) / double(sent) : 0.0);
  std::printf("  Queries lost:         %" PRIu64 " (%.2f%%)\n", lost, sent ? 100.0 * double(lost) / double(sent) : 0.0);
  std::printf("  Unexpected answers:   %" PRIu64 "\n", unexpected);
  std::printf("  Response codes:       ");
  bool first = true;
  for (int r = 0; r < 16; ++r) {
    if (!rcodes[r]) continue;
    std::printf("%s%s %" PRIu64 " (%.2f%%)", first ? "" : ", ", RcodeName(r), rcodes[r],
                100.0 * double(rcodes[r]) / double(completed));
    first = false;
  }
  std::printf("\n  Run time (s):         %.6f\n", elapsed);
  std::printf("  Queries per second:   %.6f\n", double(completed) / elapsed);
  for (Sock& k : socks) close(k.fd);
  return 0;
}
