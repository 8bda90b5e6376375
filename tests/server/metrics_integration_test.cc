// GET /metrics end to end: updnsd (tests/server/dyndns_fixture.h) gets DNS
// queries over UDP and TCP, dyndns2 updates, an RFC 2136 UPDATE and a JSON
// API login; the scrape before and after must be valid Prometheus text and
// the series must have moved by exactly what was sent. Also
// http.metrics_allow (403 for 127.0.0.1 when only other prefixes may
// scrape) and the key=value form of every line the daemon logged.
#include <gtest/gtest.h>

#include <regex>

#include "tests/server/dyndns_fixture.h"
#include "tests/server/prometheus_text.h"

namespace updns::test {
namespace {

const std::string kHost = "home.dyn.example";
constexpr const char* kUpdateSecret = "ZGRucy1zZWNyZXQ=";
constexpr const char* kTransferSecret = "eGZyLXNlY3JldA==";
constexpr const char* kWrongSecret = "bm90LXRoZS1zZWNyZXQ=";

// DyndnsDaemon with http.metrics_allow set (absent when `allow` is empty),
// and a TXT RRset too large for a 512-byte UDP answer at big.dyn.example.
class MetricsDaemon : public DyndnsDaemon {
 public:
  bool Start(const std::string& allow, std::string* error) {
    auto config = [&] {
      // StartFresh has written the zone file just before it asks for the config.
      std::string zone = ZoneText();
      for (int i = 0; i < 8; ++i) zone += "big IN TXT \"" + std::string(100, 'a' + i) + "\"\n";
      WriteFile(zone_path(), zone);
      std::string text = ConfigText(DyndnsOptions{});
      // Keys for RFC 2136 and transfers (the zone is the config's last part).
      text.insert(text.find("zones:\n"),
                  "keys:\n  - {name: ddns-key, algorithm: hmac-sha256, secret: " +
                      std::string(kUpdateSecret) +
                      "}\n  - {name: xfr-key, algorithm: hmac-sha384, secret: " +
                      std::string(kTransferSecret) + "}\n");
      text += "    transfer: [xfr-key]\n    update:\n      - {key: ddns-key}\n";
      if (!allow.empty()) {
        size_t at = text.find("dyndns:\n");
        text.insert(at, "  metrics_allow: " + allow + "\n");
      }
      return text;
    };
    return StartFresh(
        config, [&](std::string* e) { return Launch(e); }, error);
  }
};

class MetricsTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& allow = "") {
    std::string error;
    ASSERT_TRUE(daemon_.Start(allow, &error)) << error;
    CommandResult r = daemon_.Ctl({"account", "add", "alice", "--email", "alice@example.org"},
                                  "alice password\n");
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    r = daemon_.Ctl({"host", "add", kHost, "--account", "alice"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << daemon_.log();
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(daemon_.Stop()) << "updnsd did not stop on SIGTERM";
  }

  HttpResult Request(const std::string& text) {
    HttpConnection connection;
    if (!connection.Connect(daemon_.http_port())) return {};
    return connection.Exchange(text);
  }
  HttpResult Get(const std::string& target, const std::string& authorization = "") {
    return Request(UpdateRequest(target, authorization, false));
  }

  // Scrapes /metrics; fails the test when the text is not valid.
  PrometheusText Scrape() {
    HttpResult r = Get("/metrics");
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.Header("content-type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
    PrometheusText parsed = ParsePrometheusText(r.body);
    EXPECT_TRUE(parsed.ok()) << parsed.error << "\n" << r.body;
    return parsed;
  }

  std::optional<Bytes> Udp(const std::string& name, ldns_rr_type type) {
    return ExchangeUdp(daemon_.dns(), MakeQuery(name, type), milliseconds(2000));
  }
  std::optional<Bytes> Tcp(const std::string& name, ldns_rr_type type) {
    return ExchangeTcp(daemon_.dns(), MakeQuery(name, type), milliseconds(2000));
  }

  MetricsDaemon daemon_;
};

std::string Queries(const char* proto, const char* qtype, const char* rcode) {
  return std::string("updns_dns_queries_total{proto=\"") + proto + "\",qtype=\"" + qtype +
         "\",rcode=\"" + rcode + "\"}";
}
std::string Updates(const char* path, const char* result) {
  return std::string("updns_updates_total{path=\"") + path + "\",result=\"" + result + "\"}";
}

// An unsigned RFC 2136 UPDATE of dyn.example (empty prerequisites and
// updates): refused, since UPDATE needs a TSIG key.
Bytes UnsignedUpdate() {
  Bytes message = {0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  const uint8_t zone[] = {3, 'd', 'y', 'n', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 6, 0, 1};
  message.insert(message.end(), std::begin(zone), std::end(zone));
  return message;
}

TEST_F(MetricsTest, EveryKindOfRequestMovesItsSeriesByExactlyWhatWasSent) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  std::string token;
  {
    CommandResult r = daemon_.Ctl({"token", "create", kHost});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    token = r.out.substr(0, r.out.find('\n'));
  }
  PrometheusText before = Scrape();
  ASSERT_TRUE(before.ok());

  // DNS: 3 SOA over UDP, 2 SOA over TCP, 1 TXT for a name that is not there,
  // 1 question outside our zones (REFUSED), a large TXT over UDP and TCP.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Udp("dyn.example.", LDNS_RR_TYPE_SOA));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Tcp("dyn.example.", LDNS_RR_TYPE_SOA));
  ASSERT_TRUE(Udp("nothere.dyn.example.", LDNS_RR_TYPE_TXT));
  ASSERT_TRUE(Tcp("www.example.org.", LDNS_RR_TYPE_AAAA));
  // 8 x 100 bytes of TXT: truncated over UDP without EDNS, whole over TCP.
  std::optional<Bytes> truncated = Udp("big.dyn.example.", LDNS_RR_TYPE_TXT);
  ASSERT_TRUE(truncated && truncated->size() >= 12);
  EXPECT_TRUE((*truncated)[2] & 0x02) << "TC";
  std::optional<Bytes> whole = Tcp("big.dyn.example.", LDNS_RR_TYPE_TXT);
  ASSERT_TRUE(whole && whole->size() > 800);
  EXPECT_FALSE((*whole)[2] & 0x02);
  // dyndns2: good, nochg, badauth.
  std::string target = "/nic/update?hostname=" + kHost + "&myip=198.51.100.7";
  EXPECT_EQ(Get(target, BasicAuth(kHost, token)).body, "good 198.51.100.7\n");
  EXPECT_EQ(Get(target, BasicAuth(kHost, token)).body, "nochg 198.51.100.7\n");
  EXPECT_EQ(Get(target, BasicAuth(kHost, "wrong token")).body, "badauth\n");
  // RFC 2136 without a key.
  std::optional<Bytes> refused = ExchangeUdp(daemon_.dns(), UnsignedUpdate(), milliseconds(2000));
  ASSERT_TRUE(refused && refused->size() >= 12);
  EXPECT_EQ((*refused)[3] & 0x0f, 5) << "REFUSED";
  // The API: a failed login (401) counts; a GET does not.
  std::string body = R"({"name":"alice","password":"wrong"})";
  HttpResult login = Request(
      "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(login.status, 401) << login.raw;
  EXPECT_EQ(Get("/api/v1/hosts").status, 401);

  PrometheusText after = Scrape();
  ASSERT_TRUE(after.ok());
  auto moved = [&](const std::string& series) {
    return after.Value(series) - before.Value(series);
  };
  EXPECT_EQ(moved(Queries("udp", "SOA", "NOERROR")), 3);
  EXPECT_EQ(moved(Queries("tcp", "SOA", "NOERROR")), 2);
  EXPECT_EQ(moved(Queries("udp", "TXT", "NXDOMAIN")), 1);
  EXPECT_EQ(moved(Queries("tcp", "AAAA", "REFUSED")), 1);
  EXPECT_EQ(moved(Queries("udp", "TXT", "NOERROR")), 1);
  EXPECT_EQ(moved(Queries("tcp", "TXT", "NOERROR")), 1);
  EXPECT_EQ(moved("updns_dns_truncated_total{proto=\"udp\"}"), 1);
  EXPECT_EQ(moved("updns_dns_truncated_total{proto=\"tcp\"}"), 0);
  // Every answered query is in exactly one series: 9 in all.
  double all_queries = 0;
  for (const auto& [series, value] : after.samples)
    if (series.rfind("updns_dns_queries_total", 0) == 0)
      all_queries += value - before.Value(series);
  EXPECT_EQ(all_queries, 9);

  EXPECT_EQ(moved(Updates("dyndns2", "good")), 1);
  EXPECT_EQ(moved(Updates("dyndns2", "nochg")), 1);
  EXPECT_EQ(moved(Updates("dyndns2", "badauth")), 1);
  EXPECT_EQ(moved(Updates("rfc2136", "REFUSED")), 1);
  EXPECT_EQ(moved(Updates("api", "401")), 1) << "the POST only";

  // The writer: at least the good update was committed; the histograms
  // saw every group.
  double commits = after.Value("updns_writer_commits_total");
  EXPECT_GE(commits - before.Value("updns_writer_commits_total"), 1);
  EXPECT_EQ(after.Value("updns_writer_failed_commits_total"), 0);
  EXPECT_EQ(after.Value("updns_writer_batch_size_count"), commits);
  EXPECT_EQ(after.Value("updns_writer_commit_seconds_count"), commits);
  EXPECT_EQ(after.Value("updns_writer_commit_seconds_bucket{le=\"+Inf\"}"), commits);
  EXPECT_GE(after.Value("updns_writer_batch_size_sum"), commits);
  EXPECT_GT(after.Value("updns_writer_commit_seconds_sum"), 0);

  // LMDB, the outbox, NOTIFY (none configured), mail (no relay).
  EXPECT_EQ(after.Value("updns_lmdb_map_size_bytes"), 64 << 20);
  EXPECT_GT(after.Value("updns_lmdb_page_size_bytes"), 0);
  EXPECT_GT(after.Value("updns_lmdb_pages_used"), 1);
  EXPECT_EQ(after.Value("updns_lmdb_used_bytes"),
            after.Value("updns_lmdb_pages_used") * after.Value("updns_lmdb_page_size_bytes"));
  EXPECT_EQ(after.Value("updns_lmdb_readers_max"), 512);
  EXPECT_GE(after.Value("updns_lmdb_readers_used"), 1) << "the query loop keeps a reader slot";
  EXPECT_LE(after.Value("updns_lmdb_readers_used"), 512);
  EXPECT_TRUE(after.Has("updns_mail_outbox"));
  EXPECT_EQ(after.Value("updns_mail_outbox"), 0);
  EXPECT_EQ(after.Value("updns_mail_delivery_enabled"), 0);
  EXPECT_EQ(after.Value("updns_notify_sent_total"), 0);
  EXPECT_EQ(after.types["updns_writer_commit_seconds"], "histogram");
  EXPECT_EQ(after.types["updns_lmdb_readers_used"], "gauge");

  // Every line logged so far is "TIME level=L event=E key=value...".
  std::regex line_form(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ level=(debug|info|warning|error) event=[a-z0-9_]+)"
      R"(( [a-z0-9_]+=([^" =]+|"([^"\\]|\\.)*"))*)");
  std::stringstream log(daemon_.log());
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines)
    EXPECT_TRUE(std::regex_match(line, line_form)) << line;
  EXPECT_GE(lines, 4);
  EXPECT_NE(daemon_.log().find(" level=info event=listening addr=127.0.0.1@" +
                               std::to_string(daemon_.dns_port()) + " proto=udp\n"),
            std::string::npos);
  EXPECT_NE(daemon_.log().find(" level=info event=rfc2136_refused peer=127.0.0.1 "),
            std::string::npos)
      << "the refusal names its peer";
}

// RFC 2136 by rcode and zone transfers, driven by nsupdate and kdig.
TEST_F(MetricsTest, SignedUpdatesAndTransfersAreCountedByOutcome) {
  if (!HaveProgram("nsupdate") || !HaveProgram("kdig"))
    GTEST_SKIP() << "nsupdate or kdig is not installed";
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto nsupdate = [&](const std::string& secret, const std::string& commands) {
    std::string script = "server 127.0.0.1 " + std::to_string(daemon_.dns_port()) +
                         "\nzone dyn.example\n" + commands + "send\n";
    return RunCommand({"nsupdate", "-y", "hmac-sha256:ddns-key:" + secret}, script, daemon_.dir());
  };
  auto kdig = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "kdig", "@127.0.0.1", "-p", std::to_string(daemon_.dns_port()), "+time=5", "+retry=0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", daemon_.dir());
  };
  PrometheusText before = Scrape();

  CommandResult added = nsupdate(kUpdateSecret, "update add t.dyn.example 300 A 192.0.2.11\n");
  EXPECT_EQ(added.exit_code, 0) << added.Describe();
  CommandResult unmet = nsupdate(
      kUpdateSecret, "prereq yxrrset nothing.dyn.example A\nupdate delete t.dyn.example\n");
  EXPECT_NE(unmet.exit_code, 0) << unmet.Describe();
  CommandResult bad_key = nsupdate(kWrongSecret, "update add u.dyn.example 300 A 192.0.2.12\n");
  EXPECT_NE(bad_key.exit_code, 0) << bad_key.Describe();
  CommandResult axfr =
      kdig({"dyn.example", "AXFR", "-y", std::string("hmac-sha384:xfr-key:") + kTransferSecret});
  EXPECT_EQ(axfr.exit_code, 0) << axfr.Describe();
  CommandResult refused_axfr = kdig({"dyn.example", "AXFR"});
  EXPECT_NE(refused_axfr.exit_code, 0) << refused_axfr.Describe();

  PrometheusText after = Scrape();
  ASSERT_TRUE(after.ok());
  auto moved = [&](const std::string& series) {
    return after.Value(series) - before.Value(series);
  };
  EXPECT_EQ(moved(Updates("rfc2136", "NOERROR")), 1);
  EXPECT_EQ(moved(Updates("rfc2136", "NXRRSET")), 1);
  EXPECT_EQ(moved(Updates("rfc2136", "NOTAUTH")), 1);
  EXPECT_EQ(moved("updns_transfers_total{type=\"AXFR\",result=\"served\"}"), 1);
  EXPECT_EQ(moved("updns_transfers_total{type=\"AXFR\",result=\"refused\"}"), 1);
  EXPECT_EQ(moved("updns_transfers_total{type=\"IXFR\",result=\"served\"}"), 0);
  EXPECT_GE(moved("updns_writer_commits_total"), 1);
  EXPECT_NE(daemon_.log().find(" event=transfer_refused type=AXFR zone=dyn.example. "
                               "peer=127.0.0.1 key=- msg="),
            std::string::npos);
}

TEST_F(MetricsTest, MetricsAllowRefusesAddressesOutsideItsPrefixes) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"(["10.0.0.0/8", "::1"])"));
  HttpResult r = Get("/metrics");
  EXPECT_EQ(r.status, 403) << r.raw;
  EXPECT_EQ(r.body.find("updns_"), std::string::npos) << "no metric leaks: " << r.body;
  // The rest of the HTTP service is not affected.
  EXPECT_EQ(Get("/nic/update?hostname=" + kHost, BasicAuth(kHost, "x")).status, 401);
}

TEST_F(MetricsTest, MetricsAllowLetsItsPrefixesScrape) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"(["127.0.0.0/8"])"));
  PrometheusText p = Scrape();
  EXPECT_TRUE(p.Has("updns_writer_commits_total"));
}

}  // namespace
}  // namespace updns::test
