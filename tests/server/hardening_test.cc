// Hardening of updnsd end to end, each test against the real daemon on free
// loopback ports:
//   - crash consistency: dyndns2 updates from concurrent clients, SIGKILL at
//     random moments, restart on the same store, every acknowledged update
//     still there and the zone serial never going back;
//   - a full LMDB map (MDB_MAP_FULL): 911 and SERVFAIL with the cause in the
//     log, queries still answered, updates back after raising map_size;
//   - connection limits and slow clients on DNS over TCP and on HTTP while
//     UDP keeps answering;
//   - UDP response rate limiting (server.rrl) as a client sees it;
//   - the failed-login throttle of dyndns2 and the JSON API (also as unit
//     cases of server::LoginThrottle with a fake clock);
//   - malformed DNS messages (UDP and TCP) and HTTP requests, each answered
//     in a defined way while the daemon keeps serving.
//
// Timings are deadlines, never fixed sleeps standing for "long enough": the
// suite runs on loaded 2-core machines. Random choices print their seed.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "server/throttle.h"
#include "tests/server/dyndns_fixture.h"

namespace updns::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* kUpdateSecret = "aGFyZGVuaW5nLXRlc3QtdXBkYXRlLWtleS1zZWNyZXQ=";
constexpr const char* kAlicePassword = "alice secret 1";

bool HasSuccessWord(const std::string& body) {
  return body.find("good") != std::string::npos || body.find("nochg") != std::string::npos ||
         body.find("OK") != std::string::npos;
}

long long Ms(Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

// ---------------------------------------------------------------------------
// The daemon

// What a test changes in the daemon's config; the rest is fixed: one query
// loop on a free port of 127.0.0.1, HTTP on another, dyn.example.
struct Settings {
  unsigned workers = 1;
  std::string server_extra;  // lines under `server:` ("  key: value\n")
  std::string map_size = "64MiB";
  std::string http_extra;  // lines under `http:`
  std::string sections;    // whole top-level sections
  std::string zone_extra;  // lines under the dyn.example zone ("    key: value\n")
};

class Daemon : public DyndnsDaemon {
 public:
  bool Start(const Settings& settings, std::string* error) {
    settings_ = settings;
    return StartFresh([&] { return Config(); }, [&](std::string* e) { return Launch(e); }, error);
  }

  // Writes `settings` as the config (same ports and store), stops the daemon
  // (SIGKILL when `kill`, else SIGTERM) and starts it again.
  bool Restart(const Settings& settings, bool kill, std::string* error) {
    settings_ = settings;
    if (kill) {
      process_.Kill();
    } else if (!Stop()) {
      *error = "updnsd did not stop on SIGTERM";
      return false;
    }
    WriteFile(config_path(), Config());
    return Launch(error);
  }

  std::string Config() const { return ConfigFor(settings_); }

  std::string ConfigFor(const Settings& s) const {
    std::string text = "server:\n  listen: [\"127.0.0.1@" + std::to_string(dns_port_) + "\"]\n";
    text += "  workers: " + std::to_string(s.workers) + "\n" + s.server_extra;
    text += "storage:\n  path: " + db_path().string() + "\n  map_size: " + s.map_size + "\n";
    text += "http:\n  listen: [\"127.0.0.1:" + std::to_string(http_port_) + "\"]\n" + s.http_extra;
    text += s.sections;
    text += ZonesConfig(30) + s.zone_extra;
    return text;
  }

  // A config with placeholder ports, for --check: `storage_extra` and
  // `http_extra` are lines under those sections.
  std::string CheckConfig(const std::string& storage_extra, const std::string& http_extra) const {
    return "server:\n  listen: [\"127.0.0.1@5300\"]\nstorage:\n  path: " + db_path().string() +
           "\n" + storage_extra + "http:\n  listen: [\"127.0.0.1:5301\"]\n" + http_extra +
           "zones:\n  - name: dyn.example\n";
  }

  // updnsd --config FILE --check on `text` written to a scratch file.
  CommandResult Check(const std::string& text) const {
    std::filesystem::path path = dir() / "check.yaml";
    WriteFile(path, text);
    return RunCommand({UPDNSD_PATH, "--config", path.string(), "--check"}, "", dir());
  }

  void AddAccount(const std::string& name, const std::string& password) const {
    CommandResult r =
        Ctl({"account", "add", name, "--email", name + "@example.org"}, password + "\n");
    ASSERT_EQ(r.exit_code, 0) << "account add " << name << ": " << r.Describe();
  }
  void AddHost(const std::string& fqdn, const std::string& account) const {
    CommandResult r = Ctl({"host", "add", fqdn, "--account", account});
    ASSERT_EQ(r.exit_code, 0) << "host add " << fqdn << ": " << r.Describe();
  }
  // A new token for `fqdn` ("" after a failed expectation).
  std::string CreateToken(const std::string& fqdn) const {
    CommandResult r = Ctl({"token", "create", fqdn});
    EXPECT_EQ(r.exit_code, 0) << "token create " << fqdn << ": " << r.Describe();
    return r.out.substr(0, r.out.find('\n'));
  }

  std::vector<std::string> A(const std::string& host) const {
    return Addresses(host, LDNS_RR_TYPE_A);
  }
  // How often `text` occurs in the log.
  size_t LogCount(const std::string& text) const {
    std::string log_text = log();
    size_t count = 0;
    for (size_t at = log_text.find(text); at != std::string::npos; at = log_text.find(text, at + 1))
      ++count;
    return count;
  }

 private:
  Settings settings_;
};

// A fixture owning one daemon: its log is printed when the test failed, and
// it must still run at the end and stop cleanly.
class DaemonTest : public ::testing::Test {
 protected:
  void StartDaemon(const Settings& settings) {
    std::string error;
    ASSERT_TRUE(daemon_.Start(settings, &error)) << error;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << daemon_.log();
    if (!daemon_not_started_) {
      EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
      EXPECT_TRUE(daemon_.Stop()) << "updnsd did not stop on SIGTERM";
    }
  }

  // One request with "Connection: close" from `source` (a loopback address
  // of this host: 127.0.0.1, 127.0.0.2, ...) to the HTTP port.
  HttpResult HttpFrom(const std::string& source, const std::string& request,
                      milliseconds timeout = 10s) const {
    HttpResult result;
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    SocketAddress to = Loopback4(daemon_.http_port());
    if (!fd.ok() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        ::connect(fd.get(), to.get(), to.length) != 0 ||
        !SendAll(fd, request.data(), request.size())) {
      result.raw = "<cannot connect from " + source + ">";
      return result;
    }
    std::string text;
    auto deadline = Clock::now() + timeout;
    char chunk[4096];
    while (Clock::now() < deadline) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(Ms(deadline - Clock::now()))) <= 0) continue;
      ssize_t n = ::recv(fd.get(), chunk, sizeof chunk, 0);
      if (n <= 0) break;
      text.append(chunk, static_cast<size_t>(n));
    }
    return ParseCurlOutput(text);
  }

  // GET /nic/update for `host` with `myip` and Basic credentials.
  HttpResult UpdateFrom(const std::string& source, const std::string& host, const std::string& myip,
                        const std::string& user, const std::string& password) const {
    return HttpFrom(source, UpdateRequest("/nic/update?hostname=" + host + "&myip=" + myip,
                                          BasicAuth(user, password), false));
  }

  // POST /api/v1/login.
  HttpResult LoginFrom(const std::string& source, const std::string& name,
                       const std::string& password, const std::string& path = "/api/v1/login") const {
    std::string body = json{{"name", name}, {"password", password}}.dump();
    return HttpFrom(source,
                    "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body);
  }

  // A normal request still gets its answer: /metrics over HTTP, retried
  // for up to `within` (slots may be busy for a moment).
  void ExpectHttpServing(const std::string& after, milliseconds within = 0ms) const {
    auto deadline = Clock::now() + within;
    HttpResult r;
    do {
      r = HttpFrom("127.0.0.1", "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      if (r.status == 200) return;
      std::this_thread::sleep_for(100ms);
    } while (Clock::now() < deadline);
    EXPECT_EQ(r.status, 200) << "after " << after << ": " << r.raw.substr(0, 200);
  }

  Daemon daemon_;
  bool daemon_not_started_ = false;
};

// ---------------------------------------------------------------------------
// 1. Crash consistency

class CrashTest : public DaemonTest {};

TEST_F(CrashTest, AcknowledgedUpdatesSurviveSigkillAtRandomMoments) {
  constexpr int kClients = 4, kHostsPerClient = 2, kRounds = 20;
  constexpr int kHosts = kClients * kHostsPerClient;
  Settings settings;
  settings.sections = "dyndns:\n  nochg_limit: 1000\n";
  ASSERT_NO_FATAL_FAILURE(StartDaemon(settings));
  ASSERT_NO_FATAL_FAILURE(daemon_.AddAccount("alice", kAlicePassword));
  std::vector<std::string> hosts, tokens;
  for (int h = 0; h < kHosts; ++h) {
    std::string name = std::to_string(h);
    name.insert(0, "crash");
    hosts.push_back(name + ".dyn.example");
    ASSERT_NO_FATAL_FAILURE(daemon_.AddHost(hosts.back(), "alice"));
    tokens.push_back(daemon_.CreateToken(hosts.back()));
  }

  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("random seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  // What may be in the store per host: the last acknowledged address (or
  // what a restart showed), and every address sent after it whose answer
  // never came (it may or may not have been committed before the kill).
  struct HostState {
    std::optional<std::string> durable;
    std::vector<std::string> unresolved;
  };
  std::vector<HostState> state(kHosts);
  std::optional<uint32_t> last_serial = daemon_.Serial();
  ASSERT_TRUE(last_serial);
  int total_acked = 0;
  auto test_start = Clock::now();

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::atomic<bool> stop{false};
    std::mutex mutex;  // guards `state`, `errors` and `acked` while clients run
    std::vector<std::string> errors;
    int acked = 0;
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        HttpConnection connection;
        if (!connection.Connect(daemon_.http_port())) return;  // killed already
        for (int i = 0; !stop.load(); ++i) {
          int h = c * kHostsPerClient + i % kHostsPerClient;
          // Unique per round, client and request: never a `nochg`.
          std::string address = "10." + std::to_string(round) + "." +
                                std::to_string(c * 64 + i / 256) + "." + std::to_string(i % 256);
          {
            std::lock_guard lock(mutex);
            state[h].unresolved.push_back(address);
          }
          HttpResult r = connection.Exchange(
              UpdateRequest("/nic/update?hostname=" + hosts[h] + "&myip=" + address,
                            BasicAuth(hosts[h], tokens[h])),
              5s);
          if (r.status == 0) return;  // the daemon is gone: this one stays unresolved
          std::lock_guard lock(mutex);
          if (r.status == 200 && r.Lines() == std::vector<std::string>{"good " + address}) {
            // The writer applies requests in order: everything sent before
            // for this host is superseded.
            state[h].durable = address;
            state[h].unresolved.clear();
            ++acked;
          } else {
            errors.push_back(hosts[h] + " " + address + ": " + r.raw);
            return;
          }
        }
      });
    }
    // Kill at a random moment, sometimes before anything was answered.
    auto kill_at = Clock::now() + milliseconds(std::uniform_int_distribution<int>(0, 300)(rng));
    while (Clock::now() < kill_at) std::this_thread::sleep_for(2ms);
    // What a resolver saw is committed: the serial may not go back below it.
    std::optional<uint32_t> seen = daemon_.Serial();
    daemon_.process().Kill();
    stop = true;
    for (std::thread& t : clients) t.join();
    for (const std::string& e : errors) ADD_FAILURE() << e;
    total_acked += acked;

    std::string error;
    ASSERT_TRUE(daemon_.Restart(settings, /*kill=*/true, &error))
        << "the store did not open after SIGKILL: " << error;
    std::optional<uint32_t> serial = daemon_.Serial();
    ASSERT_TRUE(serial);
    EXPECT_GE(*serial, *last_serial) << "the serial went back across a restart";
    if (seen) {
      EXPECT_GE(*serial, *seen) << "a serial answered before the kill was lost";
    }
    last_serial = serial;

    std::map<std::string, std::string> listed;
    std::stringstream host_list(daemon_.HostList());
    for (std::string line; std::getline(host_list, line);) {
      std::vector<std::string> cells;
      std::stringstream cells_in(line);
      for (std::string cell; std::getline(cells_in, cell, '\t');) cells.push_back(cell);
      if (cells.size() > 3) listed[cells[0]] = cells[3];  // HOST ... A
    }
    for (int h = 0; h < kHosts; ++h) {
      std::vector<std::string> now = daemon_.A(hosts[h]);
      std::string seen_text = now.empty() ? "<none>" : now.size() == 1 ? now[0] : "<several>";
      std::set<std::string> allowed(state[h].unresolved.begin(), state[h].unresolved.end());
      std::string allowed_text = state[h].durable ? *state[h].durable : "<none>";
      if (state[h].durable) allowed.insert(*state[h].durable);
      for (const std::string& a : state[h].unresolved) allowed_text += " or " + a;
      bool ok = now.empty() ? !state[h].durable : now.size() == 1 && allowed.count(now[0]) > 0;
      EXPECT_TRUE(ok) << hosts[h] << " has A " << seen_text << ", expected " << allowed_text;
      // The host record and the zone data are written in one transaction.
      EXPECT_EQ(listed[hosts[h]], now.empty() ? "-" : now[0])
          << hosts[h] << ": updnsctl host list disagrees with DNS";
      // What the store holds now is durable: the next round starts from it.
      if (now.size() == 1) state[h].durable = now[0];
      state[h].unresolved.clear();
    }
  }
  std::cerr << kRounds << " kills, " << total_acked << " acknowledged updates in "
            << Ms(Clock::now() - test_start) << " ms\n";
  EXPECT_GT(total_acked, 0) << "no update was ever acknowledged: the test proved nothing";
}

// ---------------------------------------------------------------------------
// 2. A full map

class MapFullTest : public DaemonTest {
 protected:
  static Settings KeyedSettings(const std::string& map_size) {
    Settings s;
    s.map_size = map_size;
    s.sections =
        "dyndns:\n  nochg_limit: 1000\nkeys:\n  - {name: ddns-key, algorithm: hmac-sha256, "
        "secret: " +
        std::string(kUpdateSecret) + "}\n";
    s.zone_extra = "    update:\n      - {key: ddns-key}\n";
    return s;
  }

  // nsupdate with ddns-key on `commands` (each update ends with "send").
  CommandResult Nsupdate(const std::string& commands) const {
    std::string script = "server 127.0.0.1 " + std::to_string(daemon_.dns_port()) +
                         "\nzone dyn.example\n" + commands;
    return RunCommand({"nsupdate", "-y", std::string("hmac-sha256:ddns-key:") + kUpdateSecret},
                      script, daemon_.dir(), 60s);
  }

  // One UPDATE adding 16 TXT records of 200 bytes at fill-N.
  static std::string FillUpdate(int n) {
    std::string name = "fill-" + std::to_string(n) + ".dyn.example";
    std::string commands;
    for (int i = 0; i < 16; ++i) {
      commands +=
          "update add " + name + " 300 TXT \"" + std::to_string(i) + std::string(200, 'x') + "\"\n";
    }
    return commands + "send\n";
  }

  // A query for `name` is answered NOERROR with data (over TCP: the fill
  // records do not fit a UDP answer).
  void ExpectAnswered(const std::string& name, ldns_rr_type type, const std::string& when) const {
    std::optional<Bytes> answer = ExchangeTcp(daemon_.dns(), MakeQuery(name + ".", type), 3000ms);
    ASSERT_TRUE(answer) << name << " unanswered " << when;
    Packet pkt = Parse(*answer);
    ASSERT_TRUE(pkt) << name << ": answer not parsed " << when;
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR) << name << " " << when;
    EXPECT_GE(ldns_pkt_ancount(pkt.get()), 1u) << name << " " << when;
  }
};

TEST_F(MapFullTest, UpdatesFailWithTheCauseLoggedQueriesGoOnAndALargerMapHeals) {
  if (!HaveProgram("nsupdate")) GTEST_SKIP() << "nsupdate (bind9-dnsutils) is not installed";
  // 1MiB is the smallest map the config takes, and the daemon starts with it.
  CommandResult small = daemon_.Check(daemon_.CheckConfig("  map_size: 1000KiB\n", ""));
  EXPECT_EQ(small.exit_code, 1) << small.Describe();
  EXPECT_NE(small.err.find("at least 1MiB"), std::string::npos) << small.Describe();
  ASSERT_NO_FATAL_FAILURE(StartDaemon(KeyedSettings("1MiB")));
  ASSERT_NO_FATAL_FAILURE(daemon_.AddAccount("alice", kAlicePassword));
  ASSERT_NO_FATAL_FAILURE(daemon_.AddHost("home.dyn.example", "alice"));
  std::string token = daemon_.CreateToken("home.dyn.example");
  std::string auth = BasicAuth("home.dyn.example", token);

  // Fill the map with RFC 2136 updates until one fails.
  int filled = 0;
  bool servfail = false;
  auto deadline = Clock::now() + 40s;
  while (!servfail && Clock::now() < deadline && filled < 2000) {
    std::string commands;
    for (int i = 0; i < 20; ++i) commands += FillUpdate(filled++);
    CommandResult r = Nsupdate(commands);
    if (r.err.find("update failed: SERVFAIL") != std::string::npos) {
      servfail = true;
    } else {
      ASSERT_EQ(r.exit_code, 0) << "an update failed otherwise: " << r.Describe();
    }
  }
  ASSERT_TRUE(servfail) << "1MiB never filled up after " << filled << " updates";
  EXPECT_GE(daemon_.LogCount("map is full"), 1u) << "the SERVFAIL's cause is not logged";
  EXPECT_GE(daemon_.LogCount("raise storage.map_size"), 1u) << "the log does not say what to do";
  ASSERT_NO_FATAL_FAILURE(ExpectAnswered("dyn.example", LDNS_RR_TYPE_SOA, "with the map full"));
  ASSERT_NO_FATAL_FAILURE(
      ExpectAnswered("fill-0.dyn.example", LDNS_RR_TYPE_TXT, "with the map full"));

  // Small dyndns2 updates still fit for a while; they answer 911 once
  // nothing fits any more.
  size_t full_lines_before = daemon_.LogCount("map is full");
  std::string last_good;
  HttpResult r;
  int small_goods = 0;
  for (int i = 0; i < 2000 && Clock::now() < deadline + 20s; ++i) {
    std::string address = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    HttpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.http_port()));
    r = c.Exchange(
        UpdateRequest("/nic/update?hostname=home.dyn.example&myip=" + address, auth, false));
    if (r.Lines() != std::vector<std::string>{"good " + address}) break;
    last_good = address;
    ++small_goods;
  }
  std::cerr << "1MiB map: the first SERVFAIL within " << filled
            << " UPDATEs of 16 TXT records; then " << small_goods
            << " dyndns2 updates were good before the first 911\n";
  ASSERT_EQ(r.Lines(), std::vector<std::string>{"911"}) << r.raw;
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;
  // The host keeps its last acknowledged address, and resolvers see it.
  if (!last_good.empty()) {
    EXPECT_EQ(daemon_.A("home.dyn.example"), std::vector<std::string>{last_good});
  }
  ASSERT_NO_FATAL_FAILURE(ExpectAnswered("dyn.example", LDNS_RR_TYPE_SOA, "after the 911"));
  EXPECT_GT(daemon_.LogCount("map is full"), full_lines_before)
      << "the dyndns2 update's 911 left no log line naming the full map";
  // Small RFC 2136 updates fail the same way (near the edge, one may still
  // fit now and then: pages freed by the failed transactions).
  std::string small_updates;
  for (int i = 0; i < 40; ++i) {
    small_updates +=
        "update add small" + std::to_string(i) + ".dyn.example 300 A 192.0.2.1\nsend\n";
  }
  CommandResult refused = Nsupdate(small_updates);
  EXPECT_NE(refused.err.find("update failed: SERVFAIL"), std::string::npos) << refused.Describe();
  ASSERT_NO_FATAL_FAILURE(ExpectAnswered("ns1.dyn.example", LDNS_RR_TYPE_A, "at the end"));

  // Raise the map; restart; both kinds of update work again, and nothing
  // written before is lost.
  std::string error;
  ASSERT_TRUE(daemon_.Restart(KeyedSettings("16MiB"), /*kill=*/false, &error)) << error;
  ASSERT_NO_FATAL_FAILURE(
      ExpectAnswered("fill-0.dyn.example", LDNS_RR_TYPE_TXT, "after the restart"));
  if (!last_good.empty()) {
    EXPECT_EQ(daemon_.A("home.dyn.example"), std::vector<std::string>{last_good});
  }
  r = UpdateFrom("127.0.0.1", "home.dyn.example", "10.9.9.9", "home.dyn.example", token);
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 10.9.9.9"}) << r.raw;
  EXPECT_EQ(daemon_.A("home.dyn.example"), std::vector<std::string>{"10.9.9.9"});
  CommandResult healed = Nsupdate("update add healed.dyn.example 300 A 192.0.2.1\nsend\n");
  EXPECT_EQ(healed.exit_code, 0) << healed.Describe();
  EXPECT_EQ(daemon_.A("healed.dyn.example"), std::vector<std::string>{"192.0.2.1"});
}

// ---------------------------------------------------------------------------
// 3. Connection limits and slow clients

class LimitsTest : public DaemonTest {
 protected:
  static constexpr int kTcpMax = 4, kHttpMax = 4;
  static constexpr int kTcpIdleMs = 1500, kHttpIdleMs = 1500, kHttpReadMs = 1000;

  void SetUp() override {
    Settings s;
    s.server_extra = "  tcp_max_connections: " + std::to_string(kTcpMax) +
                     "\n  tcp_idle_timeout: " + std::to_string(kTcpIdleMs) + "\n";
    s.http_extra = "  max_connections: " + std::to_string(kHttpMax) +
                   "\n  idle_timeout: " + std::to_string(kHttpIdleMs) +
                   "\n  read_timeout: " + std::to_string(kHttpReadMs) + "\n";
    ASSERT_NO_FATAL_FAILURE(StartDaemon(s));
  }

  // UDP answers within `within` while the test holds its connections.
  void ExpectUdpPrompt(const std::string& when, milliseconds within = 1000ms) const {
    auto start = Clock::now();
    std::optional<Bytes> answer =
        ExchangeUdp(daemon_.dns(), MakeQuery("dyn.example.", LDNS_RR_TYPE_SOA), within);
    EXPECT_TRUE(answer.has_value()) << "no UDP answer within " << within.count() << " ms " << when;
    if (answer) {
      EXPECT_LT(Ms(Clock::now() - start), within.count()) << when;
    }
  }

  std::optional<Bytes> TcpQuery(TcpConnection& c) const {
    if (!c.Send(MakeQuery("dyn.example.", LDNS_RR_TYPE_SOA))) return std::nullopt;
    return c.Read(3000ms);
  }
};

TEST_F(LimitsTest, DnsTcpConnectionsBeyondTheLimitAreClosedAndIdleOnesTimeOut) {
  // Fill the worker's slots with connections that answered once and then
  // idle. A connection the server still counts (a readiness probe closing)
  // may take a slot for a moment, so each is retried until it is served.
  std::vector<std::unique_ptr<TcpConnection>> held;
  std::vector<Clock::time_point> last_activity;
  auto deadline = Clock::now() + 10s;
  while (held.size() < kTcpMax && Clock::now() < deadline) {
    auto c = std::make_unique<TcpConnection>();
    if (!c->Connect(daemon_.dns(), 2000ms)) continue;
    if (!TcpQuery(*c)) continue;
    held.push_back(std::move(c));
    last_activity.push_back(Clock::now());
  }
  ASSERT_EQ(held.size(), static_cast<size_t>(kTcpMax)) << "the limit's connections were not served";

  // Beyond the limit: accepted and closed at once, nothing answered.
  for (int i = 0; i < 3; ++i) {
    TcpConnection extra;
    ASSERT_TRUE(extra.Connect(daemon_.dns(), 2000ms));
    extra.Send(MakeQuery("dyn.example.", LDNS_RR_TYPE_SOA));
    TcpConnection::CloseState state = extra.WaitClosed(3000ms);
    EXPECT_TRUE(state == TcpConnection::CloseState::kClosed ||
                state == TcpConnection::CloseState::kReset)
        << "connection " << kTcpMax + 1 + i << " was not closed at once";
  }
  ExpectUdpPrompt("with every TCP slot taken");

  // The idle ones are closed after tcp_idle_timeout, not much earlier.
  for (size_t i = 0; i < held.size(); ++i) {
    TcpConnection::CloseState state = held[i]->WaitClosed(milliseconds(kTcpIdleMs + 4000));
    EXPECT_EQ(state, TcpConnection::CloseState::kClosed) << "idle connection " << i;
    EXPECT_GE(Ms(Clock::now() - last_activity[i]), kTcpIdleMs * 8 / 10) << "closed too early";
  }
  // Their slots are free again.
  TcpConnection after;
  ASSERT_TRUE(after.Connect(daemon_.dns(), 2000ms));
  EXPECT_TRUE(TcpQuery(after).has_value()) << "no TCP answer after the idle connections closed";
}

TEST_F(LimitsTest, DnsTcpPartialMessagesAreClosedAfterTheIdleTimeout) {
  // A length prefix announcing 65535 bytes, a few of them, then silence.
  TcpConnection c;
  ASSERT_TRUE(c.Connect(daemon_.dns(), 2000ms));
  Bytes partial = {0xff, 0xff};
  partial.insert(partial.end(), 100, 0x00);
  ASSERT_TRUE(c.SendRaw(partial));
  auto sent = Clock::now();
  EXPECT_EQ(c.WaitClosed(milliseconds(kTcpIdleMs + 4000)), TcpConnection::CloseState::kClosed);
  EXPECT_GE(Ms(Clock::now() - sent), kTcpIdleMs * 8 / 10);
  ExpectUdpPrompt("after a partial TCP message");
}

// Slowloris over DNS TCP: a client that sends one byte of its message now
// and then, each before the idle timeout ends, holds its connection (and a
// slot of tcp_max_connections) forever, because every read restarts the
// idle timer (server/dns_worker.cc OnTcpRead). Disabled until the daemon
// bounds the time a message may take to arrive; see the report.
TEST_F(LimitsTest, DnsTcpSlowMessagesAreClosedWithinABound) {
  std::vector<std::unique_ptr<TcpConnection>> slow;
  auto deadline = Clock::now() + 10s;
  while (slow.size() < kTcpMax && Clock::now() < deadline) {
    auto c = std::make_unique<TcpConnection>();
    if (!c->Connect(daemon_.dns(), 2000ms) || !TcpQuery(*c)) continue;  // holds a slot
    slow.push_back(std::move(c));
  }
  ASSERT_EQ(slow.size(), static_cast<size_t>(kTcpMax));
  for (auto& c : slow) ASSERT_TRUE(c->SendRaw({0x00, 0x40}));  // 64 bytes follow... slowly
  auto start = Clock::now();
  bool all_closed = false;
  while (!all_closed && Clock::now() - start < milliseconds(kTcpIdleMs * 4)) {
    all_closed = true;
    for (auto& c : slow) {
      if (c->WaitClosed(10ms) != TcpConnection::CloseState::kTimeout) continue;
      all_closed = false;
      c->SendRaw({0x00});  // one more byte, well within the idle timeout
    }
    std::this_thread::sleep_for(milliseconds(kTcpIdleMs / 3));
  }
  EXPECT_TRUE(all_closed) << "slow TCP clients kept their connections for "
                          << Ms(Clock::now() - start) << " ms (tcp_idle_timeout " << kTcpIdleMs
                          << " ms)";
  TcpConnection after;
  ASSERT_TRUE(after.Connect(daemon_.dns(), 2000ms));
  EXPECT_TRUE(TcpQuery(after).has_value()) << "every TCP slot is held by slow clients";
}

TEST_F(LimitsTest, HttpConnectionsBeyondTheLimitAreClosedAndIdleOnesTimeOut) {
  const std::string metrics = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::unique_ptr<HttpConnection>> held;
  std::vector<Clock::time_point> last_activity;
  auto deadline = Clock::now() + 10s;
  while (held.size() < kHttpMax && Clock::now() < deadline) {
    auto c = std::make_unique<HttpConnection>();
    if (!c->Connect(daemon_.http_port())) continue;
    if (c->Exchange(metrics, 3000ms).status != 200) continue;
    held.push_back(std::move(c));
    last_activity.push_back(Clock::now());
  }
  ASSERT_EQ(held.size(), static_cast<size_t>(kHttpMax))
      << "the limit's connections were not served";

  // Beyond max_connections: accepted and closed at once without an answer
  // (README: "beyond it, connections are closed at once").
  for (int i = 0; i < 3; ++i) {
    HttpConnection extra;
    ASSERT_TRUE(extra.Connect(daemon_.http_port()));
    extra.Send(metrics);
    HttpConnection::FillState state = extra.WaitClosed(3000ms);
    EXPECT_TRUE(state == HttpConnection::FillState::kClosed ||
                state == HttpConnection::FillState::kReset)
        << "connection " << kHttpMax + 1 + i << " was not closed";
    EXPECT_TRUE(extra.buffer().empty())
        << "an over-limit connection was answered: " << extra.buffer();
  }
  ExpectUdpPrompt("with every HTTP slot taken");

  // Keep-alive connections idle out after http.idle_timeout.
  for (size_t i = 0; i < held.size(); ++i) {
    HttpConnection::FillState state = held[i]->WaitClosed(milliseconds(kHttpIdleMs + 4000));
    EXPECT_EQ(state, HttpConnection::FillState::kClosed) << "idle connection " << i;
    EXPECT_GE(Ms(Clock::now() - last_activity[i]), kHttpIdleMs * 8 / 10) << "closed too early";
  }
  ExpectHttpServing("the idle connections closed");
}

TEST_F(LimitsTest, HttpSlowlorisGets408AtTheReadTimeoutWhileUdpAnswers) {
  // Every slot held by a client that sends its request one byte at a time.
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 's') + "\r\n\r\n";
  std::vector<std::unique_ptr<HttpConnection>> slow;
  std::vector<Clock::time_point> first_byte;
  std::vector<HttpConnection::FillState> states(kHttpMax, HttpConnection::FillState::kTimeout);
  std::vector<long long> closed_after(kHttpMax, -1);
  // Each holds a slot for sure: one request answered first (see above).
  auto deadline = Clock::now() + 10s;
  while (slow.size() < kHttpMax && Clock::now() < deadline) {
    auto c = std::make_unique<HttpConnection>();
    if (!c->Connect(daemon_.http_port())) continue;
    if (c->Exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 3000ms).status != 200) continue;
    slow.push_back(std::move(c));
  }
  ASSERT_EQ(slow.size(), static_cast<size_t>(kHttpMax))
      << "the limit's connections were not served";
  for (auto& c : slow) {
    ASSERT_TRUE(c->Send(request.substr(0, 1)));
    first_byte.push_back(Clock::now());
  }
  size_t next = 1;
  bool udp_checked = false;
  auto give_up = Clock::now() + milliseconds(kHttpReadMs + 6000);
  while (Clock::now() < give_up && next < request.size()) {
    bool open = false;
    for (int i = 0; i < kHttpMax; ++i) {
      if (closed_after[i] >= 0) continue;
      HttpConnection::FillState s = slow[i]->Fill(Clock::now() + 10ms);
      if (s == HttpConnection::FillState::kTimeout) {
        open = true;
        slow[i]->Send(request.substr(next, 1));
        continue;
      }
      if (s == HttpConnection::FillState::kData) s = slow[i]->WaitClosed(3000ms);
      states[i] = s;
      closed_after[i] = Ms(Clock::now() - first_byte[i]);
    }
    if (!open) break;
    ++next;
    if (!udp_checked) {
      ExpectUdpPrompt("with every HTTP slot held by slow clients");
      udp_checked = true;
    }
    std::this_thread::sleep_for(100ms);
  }
  for (int i = 0; i < kHttpMax; ++i) {
    EXPECT_EQ(slow[i]->buffer().rfind("HTTP/1.1 408", 0), 0u)
        << "slow client " << i << " got: " << slow[i]->buffer().substr(0, 100);
    EXPECT_NE(states[i], HttpConnection::FillState::kTimeout)
        << "slow client " << i << " not closed";
    EXPECT_GE(closed_after[i], kHttpReadMs * 8 / 10) << "slow client " << i;
    EXPECT_LT(closed_after[i], kHttpReadMs + 5000) << "slow client " << i;
  }
  // A timed-out client that does not close keeps its slot while the
  // server lingers (2 s) after the 408; then the slots are free again.
  ExpectHttpServing("the slow clients were timed out", 5000ms);
}

// ---------------------------------------------------------------------------
// 4. UDP response rate limiting

// What came back for a run of identical queries from one socket.
struct Flood {
  int sent = 0;
  int full = 0;       // NOERROR with an answer, TC clear
  int truncated = 0;  // TC set, no answer records
  int other = 0;
  long long send_ms = 0;  // from the first send to the last
};

// Sends `count` queries for `name` A from one socket, `spacing` apart (0:
// as fast as possible), and collects answers until 700 ms pass without one.
Flood FloodQueries(const SocketAddress& server, const std::string& name, int count,
                   milliseconds spacing) {
  Flood f;
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int buffer = 1 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  if (::connect(fd.get(), server.get(), server.length) != 0) return f;
  std::set<uint16_t> ids;
  // Reads answers until `until`; with `silence`, until that long passes
  // without one.
  auto collect = [&](Clock::time_point until, milliseconds silence) {
    while (true) {
      auto left = Ms(until - Clock::now());
      pollfd p{fd.get(), POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return;
      uint8_t answer[4096];
      ssize_t n = ::recv(fd.get(), answer, sizeof answer, 0);
      if (n < 12) continue;
      uint16_t id = static_cast<uint16_t>(answer[0] << 8 | answer[1]);
      if (!ids.erase(id)) continue;
      bool tc = answer[2] & 0x02;
      unsigned rcode = answer[3] & 0x0f, ancount = answer[6] << 8 | answer[7];
      if (!tc && rcode == 0 && ancount > 0) {
        ++f.full;
      } else if (tc && ancount == 0) {
        ++f.truncated;
      } else {
        ++f.other;
      }
      if (silence > 0ms) until = Clock::now() + silence;
    }
  };
  auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    uint16_t id = static_cast<uint16_t>(i + 1);
    Bytes query = MakeQuery(name, LDNS_RR_TYPE_A, {.id = id});
    ids.insert(id);
    ::send(fd.get(), query.data(), query.size(), 0);
    ++f.sent;
    if (spacing > 0ms) collect(start + spacing * (i + 1), 0ms);
  }
  f.send_ms = Ms(Clock::now() - start);
  collect(Clock::now() + 700ms, 700ms);
  return f;
}

std::string Describe(const Flood& f) {
  return std::to_string(f.sent) + " sent in " + std::to_string(f.send_ms) +
         " ms: " + std::to_string(f.full) + " answered, " + std::to_string(f.truncated) +
         " truncated, " + std::to_string(f.other) + " other, " +
         std::to_string(f.sent - f.full - f.truncated - f.other) + " dropped";
}

class RrlTest : public DaemonTest {};

TEST_F(RrlTest, OneNameFromOneClientIsLimitedToTheRateWithEverySecondExcessAnswerTruncated) {
  constexpr int kRate = 10;
  Settings s;
  s.server_extra = "  rrl: {rate: " + std::to_string(kRate) + ", slip: 2}\n";
  ASSERT_NO_FATAL_FAILURE(StartDaemon(s));
  ASSERT_NO_FATAL_FAILURE(daemon_.AddAccount("alice", kAlicePassword));
  ASSERT_NO_FATAL_FAILURE(daemon_.AddHost("other.dyn.example", "alice"));

  // A burst: the bucket holds one second's worth of answers.
  Flood burst = FloodQueries(daemon_.dns(), "ns1.dyn.example.", 60, 0ms);
  SCOPED_TRACE("burst: " + Describe(burst));
  std::cerr << "rate " << kRate << "/s, burst: " << Describe(burst) << "\n";
  // Refill during the burst: rate per second of it (and one for rounding).
  int refill = static_cast<int>(kRate * burst.send_ms / 1000) + 1;
  EXPECT_GE(burst.full, kRate);
  EXPECT_LE(burst.full, kRate + refill);
  int limited = burst.sent - burst.full;
  EXPECT_GE(burst.truncated, limited / 2 - 1) << "every 2nd limited answer goes out TC";
  EXPECT_LE(burst.truncated, limited / 2 + 1) << "every 2nd limited answer goes out TC";
  EXPECT_EQ(burst.other, 0);

  // Right after it, another name from the same client is not limited, and
  // (for the NODATA answer class) neither is a third.
  std::optional<Bytes> other =
      ExchangeUdp(daemon_.dns(), MakeQuery("dyn.example.", LDNS_RR_TYPE_NS), 2000ms);
  ASSERT_TRUE(other.has_value()) << "another name is limited too";
  EXPECT_EQ((*other)[2] & 0x02, 0) << "another name's answer was truncated";
  Packet nodata = daemon_.Query("other.dyn.example.", LDNS_RR_TYPE_A);
  ASSERT_TRUE(nodata);
  EXPECT_FALSE(ldns_pkt_tc(nodata.get()));

  // Sustained: after a second the bucket is full again; then at 4x the rate
  // for about 2 s, about `rate` answers per second come through.
  std::this_thread::sleep_for(1200ms);
  Flood paced = FloodQueries(daemon_.dns(), "ns1.dyn.example.", 80, 25ms);
  SCOPED_TRACE("paced: " + Describe(paced));
  std::cerr << "rate " << kRate << "/s, paced: " << Describe(paced) << "\n";
  double expected = kRate + kRate * paced.send_ms / 1000.0;
  EXPECT_GE(paced.full, expected - 4);
  EXPECT_LE(paced.full, expected + 4);
  int paced_limited = paced.sent - paced.full;
  EXPECT_GE(paced.truncated, paced_limited / 2 - 1);
  EXPECT_LE(paced.truncated, paced_limited / 2 + 1);
  EXPECT_EQ(paced.other, 0);
}

TEST_F(RrlTest, WithoutRrlNothingIsLimited) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon({}));
  // Paced in small groups so that no socket buffer overflows on a loaded
  // machine: this is about the limiter, not about UDP loss.
  Flood flood = FloodQueries(daemon_.dns(), "ns1.dyn.example.", 120, 2ms);
  EXPECT_EQ(flood.full, 120) << Describe(flood);
  EXPECT_EQ(flood.truncated, 0) << Describe(flood);
}

// ---------------------------------------------------------------------------
// 5. Failed-login throttle

// Unit cases with a fake clock.
sockaddr_storage Peer(const char* text) {
  sockaddr_storage s{};
  if (std::string_view(text).find(':') != std::string_view::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&s);
    v6->sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, text, &v6->sin6_addr);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&s);
    v4->sin_family = AF_INET;
    ::inet_pton(AF_INET, text, &v4->sin_addr);
  }
  return s;
}

TEST(LoginThrottleTest, PerNameLimitRefillsEvenlyAndSparesOtherAddresses) {
  server::LoginThrottle throttle({.per_name = 3, .per_address = 100, .window_ms = 6000});
  sockaddr_storage attacker = Peer("192.0.2.1"), victim = Peer("198.51.100.7");
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(throttle.Begin("account", "alice", attacker, 1000).refused());
  auto refused = throttle.Begin("account", "alice", attacker, 1000);
  EXPECT_EQ(refused.retry_after, 2u) << "one more attempt every window/limit = 2 s";
  // A refused attempt costs nothing: after the wait, exactly one more.
  EXPECT_TRUE(throttle.Begin("account", "alice", attacker, 2999).refused());
  EXPECT_FALSE(throttle.Begin("account", "alice", attacker, 3000).refused());
  EXPECT_TRUE(throttle.Begin("account", "alice", attacker, 3000).refused());
  // Someone else at another address, the same name: not locked out.
  auto other = throttle.Begin("account", "alice", victim, 3000);
  EXPECT_FALSE(other.refused());
  // Other kinds of names have their own budgets.
  EXPECT_FALSE(throttle.Begin("host", "alice", attacker, 3000).refused());
  // A success forgets the name's failures.
  throttle.Succeeded(other);
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(throttle.Begin("account", "alice", victim, 3000).refused());
}

TEST(LoginThrottleTest, PerAddressLimitCoversEveryNameAndIpv6CountsBySlash64) {
  server::LoginThrottle throttle({.per_name = 100, .per_address = 4, .window_ms = 4000});
  sockaddr_storage a = Peer("2001:db8:1:2::1"), same_net = Peer("2001:db8:1:2:ffff::9"),
                   other_net = Peer("2001:db8:1:3::1");
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(throttle.Begin("account", "n" + std::to_string(i), a, 0).refused());
  EXPECT_EQ(throttle.Begin("account", "fresh", same_net, 0).retry_after, 1u);
  EXPECT_FALSE(throttle.Begin("account", "fresh", other_net, 0).refused());
  EXPECT_EQ(server::LoginThrottle::AddressKey(a), "2001:db8:1:2::/64");
  // A success gives its own charge back but does not wipe the address's
  // other failures (or one valid account would reset an attacker's budget).
  EXPECT_FALSE(throttle.Begin("account", "x", a, 1000).refused());
  auto ok = throttle.Begin("account", "mine", a, 2000);
  ASSERT_FALSE(ok.refused());
  throttle.Succeeded(ok);
  EXPECT_FALSE(throttle.Begin("account", "y", a, 2000).refused());
  EXPECT_TRUE(throttle.Begin("account", "z", a, 2000).refused());
  // Refund: neither a success nor a failure.
  server::LoginThrottle refunds({.per_name = 1, .per_address = 1, .window_ms = 1000});
  auto attempt = refunds.Begin("account", "n", a, 0);
  ASSERT_FALSE(attempt.refused());
  refunds.Refund(attempt);
  EXPECT_FALSE(refunds.Begin("account", "n", a, 0).refused());
}

TEST(LoginThrottleTest, TheTableStaysBoundedAndFailsOpen) {
  server::LoginThrottle throttle(
      {.per_name = 1, .per_address = 1, .window_ms = 60000, .max_entries = 64});
  // Far more clients than the table holds: old entries are forgotten, the
  // newest one is still limited.
  for (int i = 0; i < 1000; ++i) {
    std::string address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250);
    sockaddr_storage peer = Peer(address.c_str());
    EXPECT_FALSE(throttle.Begin("account", "a", peer, 0).refused()) << address;
    EXPECT_TRUE(throttle.Begin("account", "a", peer, 0).refused()) << address;
  }
}

// Through the daemon with the default limits (10 per name and address, 30
// per address, refilling over 300 s): refusals and who they spare.
class ThrottleTest : public DaemonTest {
 protected:
  // The default budgets (10 per name, 30 per address) over an hour, so that
  // what refills while a slow machine runs 31 scrypt checks stays below one
  // attempt (the default 300 s window refills one per address every 10 s).
  void SetUp() override {
    Settings s;
    s.http_extra = "  login_throttle: {per_name: 10, per_address: 30, window: 3600}\n";
    ASSERT_NO_FATAL_FAILURE(StartDaemon(s));
    ASSERT_NO_FATAL_FAILURE(daemon_.AddAccount("alice", kAlicePassword));
    ASSERT_NO_FATAL_FAILURE(daemon_.AddHost("home.dyn.example", "alice"));
    token_ = daemon_.CreateToken("home.dyn.example");
  }

  void ExpectThrottled(const HttpResult& r, const std::string& what) const {
    EXPECT_EQ(r.status, 429) << what << ": " << r.raw;
    std::optional<std::string> retry = r.Header("retry-after");
    ASSERT_TRUE(retry.has_value()) << what << ": " << r.raw;
    EXPECT_GE(std::atoi(retry->c_str()), 1) << what;
    EXPECT_LE(std::atoi(retry->c_str()), 3600) << what;
    EXPECT_FALSE(HasSuccessWord(r.body)) << what << ": " << r.raw;
  }

  std::string token_;
};

TEST_F(ThrottleTest, Dyndns2FailuresAreThrottledPerNameAndPerAddressButSpareOtherAddresses) {
  const std::string host = "home.dyn.example";
  for (int i = 0; i < 10; ++i) {
    HttpResult r = UpdateFrom("127.0.0.1", host, "10.0.0.1", host, "wrong-" + std::to_string(i));
    EXPECT_EQ(r.status, 401) << "failure " << i << ": " << r.raw;
    EXPECT_EQ(r.Lines(), std::vector<std::string>{"badauth"}) << r.raw;
  }
  HttpResult r = UpdateFrom("127.0.0.1", host, "10.0.0.1", host, "wrong-10");
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(r, "11th wrong token"));
  ASSERT_FALSE(r.Lines().empty());
  EXPECT_EQ(r.Lines()[0].rfind("911", 0), 0u) << "scripts reading the body must see 911: " << r.raw;
  // The right token from the same address waits too...
  ASSERT_NO_FATAL_FAILURE(
      ExpectThrottled(UpdateFrom("127.0.0.1", host, "10.0.0.2", host, token_), "right token"));
  EXPECT_TRUE(daemon_.A(host).empty());
  // ...but the host's owner at another address is not locked out.
  r = UpdateFrom("127.0.0.2", host, "10.0.0.3", host, token_);
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 10.0.0.3"}) << r.raw;

  // Walking a list of names from one address: 20 more failures make 30.
  for (int i = 0; i < 20; ++i) {
    std::string name = "guess" + std::to_string(i);
    r = UpdateFrom("127.0.0.1", host, "10.0.0.4", name, "password");
    EXPECT_EQ(r.status, 401) << name << ": " << r.raw;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(
      UpdateFrom("127.0.0.1", host, "10.0.0.4", "alice", kAlicePassword), "a 31st attempt"));
  r = UpdateFrom("127.0.0.2", host, "10.0.0.5", "alice", kAlicePassword);
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 10.0.0.5"}) << r.raw;
  EXPECT_EQ(daemon_.A(host), std::vector<std::string>{"10.0.0.5"});
}

TEST_F(ThrottleTest, ApiLoginFailuresAreThrottledPerNameAndPerAddressButSpareOtherAddresses) {
  for (int i = 0; i < 10; ++i) {
    HttpResult r = LoginFrom("127.0.0.1", "alice", "wrong");
    EXPECT_EQ(r.status, 401) << "failure " << i << ": " << r.raw;
  }
  HttpResult r = LoginFrom("127.0.0.1", "alice", kAlicePassword);
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(r, "right password after 10 failures"));
  EXPECT_NE(r.body.find("too_many_attempts"), std::string::npos) << r.raw;
  r = LoginFrom("127.0.0.2", "alice", kAlicePassword);
  EXPECT_EQ(r.status, 200) << "alice at another address: " << r.raw;

  for (int i = 0; i < 20; ++i) {
    r = LoginFrom("127.0.0.1", "guess" + std::to_string(i), "password");
    EXPECT_EQ(r.status, 401) << r.raw;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(LoginFrom("127.0.0.1", "bob", "x"), "a 31st attempt"));
  r = LoginFrom("127.0.0.2", "alice", kAlicePassword);
  EXPECT_EQ(r.status, 200) << r.raw;
}

// The reseller login has its own budget per reseller name; the right
// password clears that name's failures, and it counts as right even though
// no account is linked yet (403, not 401).
TEST_F(ThrottleTest, ResellerLoginFailuresAreThrottledAndTheRightPasswordClearsThem) {
  const std::string path = "/api/v1/login/reseller";
  CommandResult added =
      daemon_.Ctl({"reseller", "add", "shop", "--email", "shop@shop.example"}, "shop-secret\n");
  ASSERT_EQ(added.exit_code, 0) << added.Describe();
  for (int i = 0; i < 9; ++i) {
    HttpResult r = LoginFrom("127.0.0.1", "shop", "wrong", path);
    EXPECT_EQ(r.status, 401) << "failure " << i << ": " << r.raw;
  }
  HttpResult r = LoginFrom("127.0.0.1", "shop", "shop-secret", path);
  EXPECT_EQ(r.status, 403) << r.raw;
  EXPECT_NE(r.body.find("not_linked"), std::string::npos) << r.raw;
  // Ten failures again before the name is refused: the success wiped the nine.
  for (int i = 0; i < 10; ++i) {
    r = LoginFrom("127.0.0.1", "shop", "wrong", path);
    EXPECT_EQ(r.status, 401) << "failure " << i << " after the success: " << r.raw;
  }
  ASSERT_NO_FATAL_FAILURE(
      ExpectThrottled(LoginFrom("127.0.0.1", "shop", "shop-secret", path), "11th attempt"));
  r = LoginFrom("127.0.0.2", "shop", "shop-secret", path);
  EXPECT_EQ(r.status, 403) << "the reseller at another address: " << r.raw;
}

// With short windows from the config: refused while throttled, accepted
// after Retry-After; and one budget shared by dyndns2 and the API. Needs
// the http.login_throttle keys (see the report); skipped while updnsd does
// not know them.
class ThrottleWindowTest : public ThrottleTest {
 protected:
  // One attempt per name refills every 8 s: long enough that three failed
  // scrypt checks on a loaded machine finish before it, short enough to wait.
  static constexpr int kPerName = 3, kPerAddress = 6, kWindowSeconds = 24;

  void SetUp() override {
    Settings s;
    s.http_extra = "  login_throttle: {per_name: " + std::to_string(kPerName) +
                   ", per_address: " + std::to_string(kPerAddress) +
                   ", window: " + std::to_string(kWindowSeconds) + "}\n";
    CommandResult check = daemon_.Check(daemon_.CheckConfig("", s.http_extra));
    if (check.exit_code != 0) {
      daemon_not_started_ = true;
      GTEST_SKIP() << "updnsd does not take http.login_throttle yet: " << check.err;
    }
    ASSERT_NO_FATAL_FAILURE(StartDaemon(s));
    ASSERT_NO_FATAL_FAILURE(daemon_.AddAccount("alice", kAlicePassword));
    ASSERT_NO_FATAL_FAILURE(daemon_.AddHost("home.dyn.example", "alice"));
    token_ = daemon_.CreateToken("home.dyn.example");
  }

  // Retries `attempt` every 200 ms until it is not throttled; how long that
  // took after `refused_at`, or -1 after `limit`.
  long long AcceptedAfter(const std::function<HttpResult()>& attempt, Clock::time_point refused_at,
                          milliseconds limit, HttpResult* last) const {
    while (Clock::now() - refused_at < limit) {
      *last = attempt();
      if (last->status != 429) return Ms(Clock::now() - refused_at);
      std::this_thread::sleep_for(200ms);
    }
    return -1;
  }
};

TEST_F(ThrottleWindowTest, TheRightCredentialsAreRefusedWhileThrottledAndAcceptedAfterRetryAfter) {
  const std::string host = "home.dyn.example";
  for (int i = 0; i < kPerName; ++i)
    EXPECT_EQ(UpdateFrom("127.0.0.1", host, "10.0.0.1", host, "wrong").status, 401);
  HttpResult r = UpdateFrom("127.0.0.1", host, "10.0.1.1", host, token_);
  auto refused_at = Clock::now();
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(r, "right token while throttled"));
  int retry_after = std::atoi(r.Header("retry-after").value_or("0").c_str());
  EXPECT_LE(retry_after, kWindowSeconds / kPerName) << "one attempt refills every window/limit";
  HttpResult last;
  long long after =
      AcceptedAfter([&] { return UpdateFrom("127.0.0.1", host, "10.0.1.1", host, token_); },
                    refused_at, milliseconds(retry_after * 1000 + 4000), &last);
  ASSERT_GE(after, 0) << "still throttled long after Retry-After " << retry_after << ": "
                      << last.raw;
  EXPECT_GE(after, retry_after * 1000 - 1200) << "accepted before Retry-After";
  EXPECT_EQ(last.Lines(), std::vector<std::string>{"good 10.0.1.1"}) << last.raw;

  // The API: the same, and a success clears the name's failures.
  for (int i = 0; i < kPerName; ++i)
    EXPECT_EQ(LoginFrom("127.0.0.2", "alice", "wrong").status, 401);
  r = LoginFrom("127.0.0.2", "alice", kAlicePassword);
  refused_at = Clock::now();
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(r, "right API password while throttled"));
  retry_after = std::atoi(r.Header("retry-after").value_or("0").c_str());
  after = AcceptedAfter([&] { return LoginFrom("127.0.0.2", "alice", kAlicePassword); }, refused_at,
                        milliseconds(retry_after * 1000 + 4000), &last);
  ASSERT_GE(after, 0) << "still throttled long after Retry-After " << retry_after << ": "
                      << last.raw;
  EXPECT_EQ(last.status, 200) << last.raw;
}

TEST_F(ThrottleWindowTest, Dyndns2AndTheApiShareOneBudget) {
  // Failures at alice's password through both doors count together.
  EXPECT_EQ(LoginFrom("127.0.0.1", "alice", "wrong").status, 401);
  EXPECT_EQ(UpdateFrom("127.0.0.1", "home.dyn.example", "10.0.0.1", "alice", "wrong").status, 401);
  EXPECT_EQ(LoginFrom("127.0.0.1", "alice", "wrong").status, 401);
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(
      UpdateFrom("127.0.0.1", "home.dyn.example", "10.0.0.1", "alice", kAlicePassword),
      "dyndns2 after failures through both"));
  ASSERT_NO_FATAL_FAILURE(ExpectThrottled(LoginFrom("127.0.0.1", "alice", kAlicePassword),
                                          "API after failures through both"));
}

// ---------------------------------------------------------------------------
// 6. Malformed input

// Raw DNS messages built byte by byte.
Bytes Header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
  return {static_cast<uint8_t>(id >> 8),
          static_cast<uint8_t>(id),
          static_cast<uint8_t>(flags >> 8),
          static_cast<uint8_t>(flags),
          0,
          static_cast<uint8_t>(qd),
          0,
          static_cast<uint8_t>(an),
          0,
          static_cast<uint8_t>(ns),
          0,
          static_cast<uint8_t>(ar)};
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// ns1.dyn.example, type A, class IN.
const Bytes kQname = {3, 'n', 's', '1', 3, 'd', 'y', 'n', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
const Bytes kTypeClassA = {0, 1, 0, 1};
// An OPT record: root owner, payload 1232, no options.
const Bytes kOpt = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};

enum class Expect { kFormErr, kNoAnswer, kAnswer };

struct MalformedCase {
  std::string what;
  Bytes message;
  Expect expect;
};

std::vector<MalformedCase> MalformedDnsCases() {
  const uint16_t id = 0x4242;
  Bytes question = Cat({kQname, kTypeClassA});
  Bytes long_name;
  for (int i = 0; i < 5; ++i) {
    long_name.push_back(63);
    long_name.insert(long_name.end(), 63, 'a');
  }
  long_name.push_back(0);
  return {
      {"a label running past the end", Cat({Header(id, 0, 1, 0, 0, 0), {63, 'a', 'b', 'c'}}),
       Expect::kFormErr},
      {"label type 0x40 (extended labels)",
       Cat({Header(id, 0, 1, 0, 0, 0), {0x41, 'a', 0}, kTypeClassA}), Expect::kFormErr},
      {"label type 0x80", Cat({Header(id, 0, 1, 0, 0, 0), {0x81, 'a', 0}, kTypeClassA}),
       Expect::kFormErr},
      {"a name over 255 bytes", Cat({Header(id, 0, 1, 0, 0, 0), long_name, kTypeClassA}),
       Expect::kFormErr},
      {"a compression pointer to itself in the question",
       Cat({Header(id, 0, 1, 0, 0, 0), {0xc0, 12}, kTypeClassA}), Expect::kFormErr},
      {"a compression pointer into the header in the question",
       Cat({Header(id, 0, 1, 0, 0, 0), {0xc0, 2}, kTypeClassA}), Expect::kFormErr},
      {"a forward pointer as the OPT owner",
       Cat({Header(id, 0, 1, 0, 0, 1), question, {0xc0, 60}, {0, 41, 4, 0, 0, 0, 0, 0, 0, 0}}),
       Expect::kFormErr},
      {"a pointer loop as the OPT owner",
       Cat({Header(id, 0, 1, 0, 0, 1),
            question,
            {0xc0, static_cast<uint8_t>(12 + question.size())},
            {0, 41, 4, 0, 0, 0, 0, 0, 0, 0}}),
       Expect::kFormErr},
      {"qdcount 0", Header(id, 0, 0, 0, 0, 0), Expect::kFormErr},
      {"qdcount 2", Cat({Header(id, 0, 2, 0, 0, 0), question, question}), Expect::kFormErr},
      {"qdcount 1 and nothing after the header", Header(id, 0, 1, 0, 0, 0), Expect::kFormErr},
      {"a question without type and class", Cat({Header(id, 0, 1, 0, 0, 0), kQname}),
       Expect::kFormErr},
      {"an answer record in a query", Cat({Header(id, 0, 1, 1, 0, 0), question}), Expect::kFormErr},
      {"arcount 1 and nothing after the question", Cat({Header(id, 0, 1, 0, 0, 1), question}),
       Expect::kFormErr},
      {"a truncated OPT record",
       Cat({Header(id, 0, 1, 0, 0, 1), question, Bytes(kOpt.begin(), kOpt.begin() + 5)}),
       Expect::kFormErr},
      {"an OPT rdlength past the end",
       Cat({Header(id, 0, 1, 0, 0, 1), question, {0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 40, 0, 10}}),
       Expect::kFormErr},
      {"OPT options not tiling the rdata",
       Cat({Header(id, 0, 1, 0, 0, 1), question, {0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 3, 0, 10, 0}}),
       Expect::kFormErr},
      {"two OPT records", Cat({Header(id, 0, 1, 0, 0, 2), question, kOpt, kOpt}), Expect::kFormErr},
      {"shorter than a header", {0x42, 0x42, 0, 0, 0}, Expect::kNoAnswer},
      {"a response (QR set)", Cat({Header(id, 0x8000, 1, 0, 0, 0), question}), Expect::kNoAnswer},
      {"a datagram over 4096 bytes", Cat({Header(id, 0, 1, 0, 0, 0), question, Bytes(5000, 0)}),
       Expect::kNoAnswer},
      // Trailing bytes are ignored (as NSD and Knot do; BIND answers FORMERR).
      {"garbage after the message", Cat({Header(id, 0, 1, 0, 0, 0), question, Bytes(20, 0xab)}),
       Expect::kAnswer},
  };
}

// A DNS answer to `id`: QR set, the RCODE.
struct WireAnswer {
  bool ok = false;
  unsigned rcode = 0;
  unsigned ancount = 0;
};

WireAnswer ReadWire(const Bytes& answer, uint16_t id) {
  WireAnswer a;
  if (answer.size() < 12 || WireId(answer) != id || !(answer[2] & 0x80)) return a;
  a.ok = true;
  a.rcode = answer[3] & 0x0f;
  a.ancount = static_cast<unsigned>(answer[6] << 8 | answer[7]);
  return a;
}

class MalformedTest : public DaemonTest {
 protected:
  void SetUp() override {
    Settings s;
    s.server_extra = "  tcp_idle_timeout: 1500\n";
    ASSERT_NO_FATAL_FAILURE(StartDaemon(s));
  }

  // A normal query over UDP and over TCP is answered.
  void ExpectDnsServing(const std::string& after) const {
    Packet udp = daemon_.Query("ns1.dyn.example.", LDNS_RR_TYPE_A);
    ASSERT_TRUE(udp) << "no UDP answer after " << after;
    EXPECT_EQ(ldns_pkt_ancount(udp.get()), 1u) << after;
    std::optional<Bytes> tcp =
        ExchangeTcp(daemon_.dns(), MakeQuery("ns1.dyn.example.", LDNS_RR_TYPE_A), 3000ms);
    ASSERT_TRUE(tcp) << "no TCP answer after " << after;
    EXPECT_EQ(ReadWire(*tcp, WireId(*tcp)).ancount, 1u) << after;
  }
};

TEST_F(MalformedTest, MalformedUdpMessagesGetFormerrOrNoAnswerAndTheDaemonServes) {
  for (const MalformedCase& c : MalformedDnsCases()) {
    SCOPED_TRACE(c.what);
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    SocketAddress server = daemon_.dns();
    ASSERT_EQ(::connect(fd.get(), server.get(), server.length), 0);
    ASSERT_EQ(::send(fd.get(), c.message.data(), c.message.size(), 0),
              static_cast<ssize_t>(c.message.size()));
    pollfd p{fd.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, c.expect == Expect::kNoAnswer ? 300 : 3000);
    Bytes answer(65535);
    if (c.expect == Expect::kNoAnswer) {
      EXPECT_EQ(ready, 0) << "answered";
    } else {
      ASSERT_EQ(ready, 1) << "no answer";
      answer.resize(static_cast<size_t>(
          std::max<ssize_t>(0, ::recv(fd.get(), answer.data(), answer.size(), 0))));
      WireAnswer a = ReadWire(answer, 0x4242);
      ASSERT_TRUE(a.ok) << "not an answer to the message";
      if (c.expect == Expect::kFormErr) {
        EXPECT_EQ(a.rcode, 1u) << "not FORMERR";
      } else {
        EXPECT_EQ(a.rcode, 0u);
        EXPECT_EQ(a.ancount, 1u);
      }
    }
    // On the same socket, a good query is answered, and first: no late
    // answer to the bad one comes before it.
    Bytes good = MakeQuery("ns1.dyn.example.", LDNS_RR_TYPE_A, {.id = 0x1234});
    ASSERT_EQ(::send(fd.get(), good.data(), good.size(), 0), static_cast<ssize_t>(good.size()));
    ASSERT_EQ(::poll(&p, 1, 3000), 1) << "the daemon stopped answering";
    answer.resize(65535);
    answer.resize(static_cast<size_t>(
        std::max<ssize_t>(0, ::recv(fd.get(), answer.data(), answer.size(), 0))));
    EXPECT_EQ(ReadWire(answer, 0x1234).ancount, 1u) << "the next answer is not the good query's";
  }
  ExpectDnsServing("the malformed datagrams");
}

TEST_F(MalformedTest, MalformedTcpMessagesAndFramingAreAnsweredOrClosed) {
  Bytes good = MakeQuery("ns1.dyn.example.", LDNS_RR_TYPE_A, {.id = 0x1234});
  {
    SCOPED_TRACE("length 0: not DNS, the connection is closed unanswered");
    TcpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.dns(), 2000ms));
    ASSERT_TRUE(c.SendRaw({0, 0}));
    EXPECT_EQ(c.WaitClosed(3000ms), TcpConnection::CloseState::kClosed);
  }
  {
    SCOPED_TRACE("length 65535 and fewer bytes, the client then gone");
    TcpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.dns(), 2000ms));
    Bytes partial = {0xff, 0xff};
    partial.insert(partial.end(), 300, 0x11);
    ASSERT_TRUE(c.SendRaw(partial));
  }
  {
    SCOPED_TRACE("a good query, then a message shorter than a header in the same write");
    TcpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.dns(), 2000ms));
    ASSERT_TRUE(c.SendRaw(Cat({Framed(good), Framed({1, 2, 3, 4, 5})})));
    std::optional<Bytes> first = c.Read(3000ms);
    ASSERT_TRUE(first);
    EXPECT_EQ(ReadWire(*first, 0x1234).ancount, 1u);
    EXPECT_EQ(c.WaitClosed(3000ms), TcpConnection::CloseState::kClosed);
  }
  {
    SCOPED_TRACE("every malformed message framed on one connection, then a good one");
    TcpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.dns(), 2000ms));
    for (const MalformedCase& m : MalformedDnsCases()) {
      if (m.expect != Expect::kFormErr) continue;
      SCOPED_TRACE(m.what);
      ASSERT_TRUE(c.Send(m.message));
      std::optional<Bytes> answer = c.Read(3000ms);
      ASSERT_TRUE(answer) << "no FORMERR over TCP (or the connection closed)";
      WireAnswer a = ReadWire(*answer, 0x4242);
      EXPECT_TRUE(a.ok);
      EXPECT_EQ(a.rcode, 1u);
    }
    ASSERT_TRUE(c.Send(good));
    std::optional<Bytes> answer = c.Read(3000ms);
    ASSERT_TRUE(answer);
    EXPECT_EQ(ReadWire(*answer, 0x1234).ancount, 1u);
  }
  {
    SCOPED_TRACE("a frame longer than its message: the rest is ignored");
    TcpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.dns(), 2000ms));
    ASSERT_TRUE(c.Send(Cat({good, Bytes(40, 0xab)})));
    std::optional<Bytes> answer = c.Read(3000ms);
    ASSERT_TRUE(answer);
    EXPECT_EQ(ReadWire(*answer, 0x1234).ancount, 1u);
  }
  ExpectDnsServing("the malformed TCP messages");
}

struct HttpCase {
  std::string what;
  std::string request;
  int status;  // the expected answer; the connection is closed after it
};

TEST_F(MalformedTest, MalformedHttpRequestsGetA4xxAndTheConnectionIsClosed) {
  auto json_post = [](const std::string& path, const std::string& body) {
    return "POST " + path +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  const std::string nul(1, '\0');
  const std::vector<HttpCase> cases = {
      {"NUL in the request line", "GET /nic/up" + nul + "date HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"NUL in a header value", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-A: a" + nul + "b\r\n\r\n",
       400},
      {"NUL in a header name", "GET /metrics HTTP/1.1\r\nHost: x\r\nX" + nul + "A: b\r\n\r\n", 400},
      {"a header line without a colon", "GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
       400},
      {"a header of 9000 bytes",
       "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Fill: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"a URL of 9000 bytes",
       "GET /nic/update?" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
      {"a body over max_body_size",
       "POST /nic/update HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n", 413},
      {"a Content-Length that is no number",
       "POST /nic/update HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400},
      {"Content-Length and chunked together",
       "POST /nic/update HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: "
       "chunked\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"a chunk size that is no number",
       "POST /nic/update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"an HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
      {"invalid UTF-8 in a JSON body",
       json_post("/api/v1/login", "{\"name\": \"\xff\xfe\", \"password\": \"x\"}"), 400},
      {"a lone surrogate escape in a JSON body",
       json_post("/api/v1/login", "{\"name\": \"\\ud800\", \"password\": \"x\"}"), 400},
      {"an overlong UTF-8 encoding in a JSON body",
       json_post("/api/v1/login", "{\"name\": \"\xc0\xaf\", \"password\": \"x\"}"), 400},
  };
  for (const HttpCase& c : cases) {
    SCOPED_TRACE(c.what);
    HttpConnection connection;
    ASSERT_TRUE(connection.Connect(daemon_.http_port()));
    connection.Send(c.request);  // may fail half-way when the server has answered already
    HttpResult r = connection.Read(5000ms);
    EXPECT_EQ(r.status, c.status) << r.raw.substr(0, 300);
    EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw.substr(0, 300);
    if (r.status >= 400 && r.status != 429 && c.request.find("/api/") == std::string::npos) {
      EXPECT_NE(connection.WaitClosed(3000ms), HttpConnection::FillState::kTimeout)
          << "the connection stays open after " << r.status;
    }
    ExpectHttpServing(c.what);
  }
  // Invalid UTF-8 where dyndns2 expects a host name: notfqdn, not a crash.
  daemon_.AddAccount("alice", kAlicePassword);
  daemon_.AddHost("home.dyn.example", "alice");
  std::string token = daemon_.CreateToken("home.dyn.example");
  HttpResult r =
      HttpFrom("127.0.0.1", UpdateRequest("/nic/update?hostname=%ff%fe.dyn.example&myip=10.0.0.1",
                                          BasicAuth("home.dyn.example", token), false));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"notfqdn"}) << r.raw;
  ExpectDnsServing("the malformed HTTP requests");
}

}  // namespace
}  // namespace updns::test
