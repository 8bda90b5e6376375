// Many UDP clients at once against the real daemon: updnsd with two query
// workers (SO_REUSEPORT sockets, recvmmsg/sendmmsg batches), 32 client
// sockets on their own threads (half over ::1 where the host has it), 2,048
// queries in all. Every query must get exactly one answer, and that answer
// must be the one for its own question: same ID, the question echoed byte
// for byte (QNAME case too), the right rcode and flags, and the records the
// zone says. Most names are unique per query (wildcard and NXDOMAIN names),
// so an answer built for one packet of a batch and sent for another, or sent
// to the wrong peer, shows up as a wrong owner or question.
//
// Nothing is retried: on loopback a datagram is lost only when a receive
// buffer overflows, and the test keeps that from happening instead of
// hiding it. A UDP socket's default receive buffer (net.core.rmem_default,
// 212,992 bytes) holds 256 small datagrams on loopback (skb truesize 832
// bytes each; measured on Linux 6.18). Each client keeps at most
// kWindow = 4 queries in flight, so at most 32 x 4 = 128 queries can wait
// in the daemon's sockets at any moment, even if the kernel's reuseport
// hash sent every client to the same worker and that worker were not
// scheduled at all (a loaded 2-core machine). The clients' own buffers are
// raised to 1 MiB so that even the largest answers (about 1.1 KB) could
// never fill them. The server's drop counters (/proc/net/udp) are printed
// with any failure, so an overflow would be named as such.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <set>
#include <sstream>

#include "tests/server/daemon_fixture.h"

namespace updns::test {
namespace {

using namespace std::chrono_literals;

constexpr int kSockets = 32;
constexpr int kQueriesPerSocket = 64;
constexpr int kWindow = 4;  // queries in flight per socket (see the top of the file)
constexpr auto kDeadline = 30s;  // for the whole burst; a loaded machine is slow, not lossy

constexpr const char* kHostA = "host.test.example. 3600 IN A 192.0.2.10";
constexpr const char* kHostAaaa = "host.test.example. 60 IN AAAA 2001:db8::10";
constexpr const char* kSoaNegative =
    "test.example. 300 IN SOA ns1.test.example. hostmaster.test.example. 2024010101 3600 900 "
    "1209600 300";

// What the answer to one query must be.
struct Expected {
  std::string name;  // as sent (case kept)
  ldns_rr_type type = LDNS_RR_TYPE_A;
  QueryOptions options;
  ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR;
  bool aa = true;
  bool tc = false;  // then the answer section is only checked to be a subset
  std::vector<std::string> answer;     // sorted RrText
  std::vector<std::string> authority;  // sorted RrText
};

// Query `seq` of socket `socket`: a mix of every kind of answer, most of
// them with a name no other query uses.
Expected Case(int socket, int seq) {
  const std::string tag = std::to_string(socket) + "-" + std::to_string(seq);
  Expected e;
  e.options.edns = seq % 2 == 0;
  e.options.payload = 1232;
  switch ((socket + seq) % 9) {
    case 0:  // a wildcard answer: the owner is this query's own name
    case 1: {
      // Mixed case: the question must come back as sent, the owner lowercased.
      e.name = "Q" + tag + ".WiLd.test.example.";
      e.type = (seq % 3 == 0) ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A;
      std::string owner = "q" + tag + ".wild.test.example.";
      e.answer = {e.type == LDNS_RR_TYPE_A ? owner + " 3600 IN A 192.0.2.20"
                                           : owner + " 3600 IN AAAA 2001:db8::20"};
      break;
    }
    case 2:
    case 3:  // NXDOMAIN with the SOA, negative TTL
      e.name = "nx" + tag + ".test.example.";
      e.rcode = LDNS_RCODE_NXDOMAIN;
      e.authority = {kSoaNegative};
      break;
    case 4:
      e.name = "host.test.example.";
      e.answer = {kHostA};
      break;
    case 5:
      e.name = "HOST.test.example.";
      e.type = LDNS_RR_TYPE_AAAA;
      e.answer = {kHostAaaa};
      break;
    case 6:  // a CNAME chain inside the zone
      e.name = "cname1.test.example.";
      e.answer = {"cname1.test.example. 3600 IN CNAME cname2.test.example.",
                  "cname2.test.example. 3600 IN CNAME host.test.example.", kHostA};
      break;
    case 7:  // a referral: no AA, the cut's NS in authority
      e.name = "www" + tag + ".sub.test.example.";
      e.aa = false;
      e.authority = {"sub.test.example. 3600 IN NS ns.elsewhere.example.",
                     "sub.test.example. 3600 IN NS ns.sub.test.example."};
      break;
    case 8:  // a large answer: whole with EDNS 4096, truncated (TC) without EDNS
      e.name = "big.test.example.";
      e.type = LDNS_RR_TYPE_TXT;
      e.options.payload = 4096;
      e.answer = BigTxt();
      e.tc = !e.options.edns;
      break;
  }
  std::sort(e.answer.begin(), e.answer.end());
  std::sort(e.authority.begin(), e.authority.end());
  return e;
}

// Where the question section of a query ends (header + QNAME + 4).
size_t QuestionEnd(const Bytes& m) {
  size_t pos = 12;
  while (pos < m.size() && m[pos] != 0) pos += 1 + m[pos];
  return pos + 5 <= m.size() ? pos + 5 : 0;
}

// Checks one answer against what it must be; empty when it is right.
std::string Check(const Bytes& query, const Bytes& answer, const Expected& e) {
  std::ostringstream why;
  if (answer.size() < 12) return "answer shorter than a header";
  if (WireId(answer) != WireId(query)) why << "id " << WireId(answer) << " for " << WireId(query) << "; ";
  if (!(answer[2] & 0x80)) why << "QR clear; ";
  size_t end = QuestionEnd(query);
  if (answer.size() < end || !std::equal(query.begin() + 12, query.begin() + end, answer.begin() + 12))
    why << "question not echoed as sent; ";
  Packet p = Parse(answer);
  if (!p) return why.str() + "ldns cannot parse the answer";
  if (FullRcode(p.get()) != static_cast<unsigned>(e.rcode))
    why << "rcode " << FullRcode(p.get()) << ", want " << e.rcode << "; ";
  if (ldns_pkt_aa(p.get()) != e.aa) why << "AA " << ldns_pkt_aa(p.get()) << "; ";
  if (ldns_pkt_tc(p.get()) != e.tc) why << "TC " << ldns_pkt_tc(p.get()) << "; ";
  if (ldns_pkt_edns(p.get()) != e.options.edns) why << "OPT present " << ldns_pkt_edns(p.get()) << "; ";
  std::vector<std::string> answers = SectionTexts(p.get(), LDNS_SECTION_ANSWER);
  if (e.tc) {
    for (const std::string& rr : answers)
      if (!std::binary_search(e.answer.begin(), e.answer.end(), rr)) why << "stray answer " << rr << "; ";
  } else if (answers != e.answer) {
    why << "answer section:";
    for (const std::string& rr : answers) why << " [" << rr << "]";
    why << "; ";
  }
  if (!e.tc && SectionTexts(p.get(), LDNS_SECTION_AUTHORITY) != e.authority) {
    why << "authority section:";
    for (const std::string& rr : SectionTexts(p.get(), LDNS_SECTION_AUTHORITY)) why << " [" << rr << "]";
    why << "; ";
  }
  return why.str();
}

// The daemon's UDP sockets on `port` in /proc/net/udp{,6}: "drops=N" each.
std::string ServerDrops(uint16_t port) {
  std::ostringstream out;
  for (const char* table : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::vector<std::string> lines = Lines(ReadFile(table));
    for (size_t i = 1; i < lines.size(); ++i) {
      std::istringstream fields(lines[i]);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode, ref, ptr, drops;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode >>
          ref >> ptr >> drops;
      size_t colon = local.rfind(':');
      if (colon == std::string::npos || std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
      out << table << " " << local << " queues(tx:rx)=" << queues << " drops=" << drops << "\n";
    }
  }
  return out.str();
}

// One client socket's share of the burst.
struct Client {
  Fd fd;
  std::vector<Bytes> queries;
  std::vector<Expected> expected;
  std::vector<int> answered;  // answers seen per query (must end at exactly 1)
  std::vector<std::string> problems;
  size_t received = 0;
};

void RunClient(Client& c, std::latch& go) {
  std::map<uint16_t, size_t> in_flight;  // id -> query index
  size_t next = 0;
  const size_t total = c.queries.size();
  go.arrive_and_wait();
  auto deadline = Clock::now() + kDeadline;
  Bytes buffer(65536);
  while (c.received < total) {
    while (next < total && in_flight.size() < static_cast<size_t>(kWindow)) {
      const Bytes& q = c.queries[next];
      if (::send(c.fd.get(), q.data(), q.size(), 0) != static_cast<ssize_t>(q.size())) {
        c.problems.push_back("send: " + std::string(std::strerror(errno)));
        return;
      }
      in_flight[WireId(q)] = next++;
    }
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{c.fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::recv(c.fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      c.problems.push_back("recv: " + std::string(std::strerror(errno)));
      return;
    }
    Bytes answer(buffer.begin(), buffer.begin() + n);
    auto it = in_flight.find(WireId(answer));
    if (it == in_flight.end()) {
      c.problems.push_back("an answer with id " + std::to_string(WireId(answer)) +
                           " that no query in flight has (duplicate or stray)");
      continue;
    }
    size_t index = it->second;
    in_flight.erase(it);
    ++c.answered[index];
    ++c.received;
    std::string why = Check(c.queries[index], answer, c.expected[index]);
    if (!why.empty()) c.problems.push_back(c.expected[index].name + ": " + why);
  }
  for (auto& [id, index] : in_flight)
    c.problems.push_back("no answer within " + std::to_string(kDeadline.count()) + " s to " +
                         c.expected[index].name + " (id " + std::to_string(id) + ")");
  for (size_t i = next; i < total; ++i) c.problems.push_back("never sent: " + c.expected[i].name);
}

TEST(UdpBurstTest, EveryQueryOfManyConcurrentClientsGetsItsOwnRightAnswer) {
  UpdnsDaemon daemon;  // workers: 2 (daemon_fixture.h)
  std::string error;
  ASSERT_TRUE(daemon.Start({}, &error)) << error;
  ASSERT_NE(daemon.log().find("workers=2"), std::string::npos)
      << "the burst must reach several workers; log:\n"
      << daemon.log();

  const bool ipv6 = HasIpv6Loopback();
  std::vector<Client> clients(kSockets);
  std::mt19937 rng(std::random_device{}());
  for (int s = 0; s < kSockets; ++s) {
    Client& c = clients[s];
    SocketAddress server = ipv6 && s % 2 == 1 ? daemon.udp6() : daemon.udp4();
    c.fd = Fd(::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(c.fd.ok()) << std::strerror(errno);
    int size = 1 << 20;
    ::setsockopt(c.fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    ASSERT_EQ(::connect(c.fd.get(), server.get(), server.length), 0) << std::strerror(errno);
    uint16_t first_id = static_cast<uint16_t>(rng());
    for (int q = 0; q < kQueriesPerSocket; ++q) {
      Expected e = Case(s, q);
      QueryOptions options = e.options;
      options.id = static_cast<uint16_t>(first_id + q);  // unique on this socket
      Bytes query = MakeQuery(e.name, e.type, options);
      ASSERT_FALSE(query.empty()) << e.name;
      c.queries.push_back(std::move(query));
      c.expected.push_back(std::move(e));
    }
    c.answered.assign(kQueriesPerSocket, 0);
  }

  std::latch go(kSockets);
  std::vector<std::thread> threads;
  auto begin = Clock::now();
  for (Client& c : clients) threads.emplace_back([&c, &go] { RunClient(c, go); });
  for (std::thread& t : threads) t.join();
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);

  size_t received = 0, wrong = 0;
  std::ostringstream report;
  for (int s = 0; s < kSockets; ++s) {
    received += clients[s].received;
    for (const std::string& p : clients[s].problems) {
      if (++wrong <= 20) report << "socket " << s << ": " << p << "\n";
    }
  }
  const size_t total = size_t{kSockets} * kQueriesPerSocket;
  EXPECT_EQ(received, total) << "answers received in " << took.count() << " ms";
  EXPECT_EQ(wrong, 0u) << wrong << " problems (first 20):\n"
                       << report.str() << "daemon sockets:\n"
                       << ServerDrops(daemon.port());
  EXPECT_TRUE(daemon.process().Running()) << "updnsd died; log:\n" << daemon.log();
  EXPECT_TRUE(daemon.Stop()) << "updnsd did not stop on SIGTERM; log:\n" << daemon.log();
}

}  // namespace
}  // namespace updns::test
