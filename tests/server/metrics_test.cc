// server/metrics.h without a daemon: the exposition a snapshot renders to,
// the DNS and HTTP update counters, and /metrics' access rule.
#include "server/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/server/prometheus_text.h"

namespace updns::server {
namespace {

using test::ParsePrometheusText;
using test::PrometheusText;

TEST(MetricsRenderTest, AnEmptySnapshotIsValidTextWithEveryFamilyTyped) {
  MetricsSnapshot snapshot;
  snapshot.store = storage::Store::Stats{};
  std::string text = RenderMetrics(snapshot);
  PrometheusText parsed = ParsePrometheusText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error << "\n" << text;
  EXPECT_EQ(parsed.types["updns_dns_queries_total"], "counter");
  EXPECT_EQ(parsed.types["updns_updates_total"], "counter");
  EXPECT_EQ(parsed.types["updns_writer_commit_seconds"], "histogram");
  EXPECT_EQ(parsed.types["updns_writer_batch_size"], "histogram");
  EXPECT_EQ(parsed.types["updns_mail_outbox"], "gauge");
  EXPECT_EQ(parsed.types["updns_lmdb_map_size_bytes"], "gauge");
  EXPECT_EQ(parsed.types["updns_lmdb_readers_used"], "gauge");
  EXPECT_EQ(parsed.types["updns_notify_failed_total"], "counter");
  EXPECT_EQ(parsed.types["updns_transfers_total"], "counter");
  // Zero DNS series are left out; fixed ones are always there.
  for (const auto& [series, value] : parsed.samples)
    EXPECT_NE(series.rfind("updns_dns_queries_total", 0), 0u) << series;
  EXPECT_TRUE(parsed.Has("updns_dns_truncated_total{proto=\"udp\"}"));
  EXPECT_TRUE(parsed.Has("updns_transfers_total{type=\"IXFR\",result=\"refused\"}"));
}

TEST(MetricsRenderTest, CountsLandInTheirSeriesAndHistogramsAreCumulative) {
  MetricsSnapshot s;
  s.dns.queries[0][QtypeSlot(1)][RcodeSlot(0)] = 5;    // udp A NOERROR
  s.dns.queries[1][QtypeSlot(6)][RcodeSlot(3)] = 2;    // tcp SOA NXDOMAIN
  s.dns.queries[0][QtypeSlot(99)][RcodeSlot(16)] = 1;  // udp other BADVERS
  s.dns.truncated[0] = 4;
  s.dns.updates[RcodeSlot(5)] = 3;  // rfc2136 REFUSED
  s.dns.transfers_served[0] = 7;
  s.updates.dyndns[0] = 9;  // good
  s.updates.dyndns[3] = 1;  // !yours
  s.updates.api_status[401] = 2;
  s.writer.commits = 3;
  for (double size : {1.0, 3.0, 300.0}) s.writer.batch_size.Observe(size);
  for (double seconds : {0.0001, 0.003, 10.0}) s.writer.commit_seconds.Observe(seconds);
  s.mailer.failed_attempts = 6;
  s.mailer_enabled = true;
  s.notifier.sent = 8;
  s.notifier.failed = 1;
  s.store = storage::Store::Stats{1 << 26, 4096, 100, 512, 3, 2};

  std::string text = RenderMetrics(s);
  PrometheusText p = ParsePrometheusText(text);
  ASSERT_TRUE(p.ok()) << p.error << "\n" << text;
  EXPECT_EQ(p.Value("updns_dns_queries_total{proto=\"udp\",qtype=\"A\",rcode=\"NOERROR\"}"), 5);
  EXPECT_EQ(p.Value("updns_dns_queries_total{proto=\"tcp\",qtype=\"SOA\",rcode=\"NXDOMAIN\"}"), 2);
  EXPECT_EQ(p.Value("updns_dns_queries_total{proto=\"udp\",qtype=\"other\",rcode=\"BADVERS\"}"), 1);
  EXPECT_EQ(p.Value("updns_dns_truncated_total{proto=\"udp\"}"), 4);
  EXPECT_EQ(p.Value("updns_updates_total{path=\"rfc2136\",result=\"REFUSED\"}"), 3);
  EXPECT_EQ(p.Value("updns_updates_total{path=\"dyndns2\",result=\"good\"}"), 9);
  EXPECT_EQ(p.Value("updns_updates_total{path=\"dyndns2\",result=\"!yours\"}"), 1);
  EXPECT_EQ(p.Value("updns_updates_total{path=\"api\",result=\"401\"}"), 2);
  EXPECT_EQ(p.Value("updns_transfers_total{type=\"AXFR\",result=\"served\"}"), 7);
  EXPECT_EQ(p.Value("updns_writer_commits_total"), 3);
  EXPECT_EQ(p.Value("updns_writer_batch_size_bucket{le=\"1\"}"), 1);
  EXPECT_EQ(p.Value("updns_writer_batch_size_bucket{le=\"4\"}"), 2);
  EXPECT_EQ(p.Value("updns_writer_batch_size_bucket{le=\"512\"}"), 3);
  EXPECT_EQ(p.Value("updns_writer_batch_size_bucket{le=\"+Inf\"}"), 3);
  EXPECT_EQ(p.Value("updns_writer_batch_size_sum"), 304);
  EXPECT_EQ(p.Value("updns_writer_batch_size_count"), 3);
  EXPECT_EQ(p.Value("updns_writer_commit_seconds_bucket{le=\"0.0005\"}"), 1);
  EXPECT_EQ(p.Value("updns_writer_commit_seconds_bucket{le=\"0.005\"}"), 2);
  EXPECT_EQ(p.Value("updns_writer_commit_seconds_bucket{le=\"5\"}"), 2);
  EXPECT_EQ(p.Value("updns_writer_commit_seconds_bucket{le=\"+Inf\"}"), 3);
  EXPECT_NEAR(p.Value("updns_writer_commit_seconds_sum"), 10.0031, 1e-9);
  EXPECT_EQ(p.Value("updns_mail_failed_attempts_total"), 6);
  EXPECT_EQ(p.Value("updns_mail_delivery_enabled"), 1);
  EXPECT_EQ(p.Value("updns_mail_outbox"), 2);
  EXPECT_EQ(p.Value("updns_notify_sent_total"), 8);
  EXPECT_EQ(p.Value("updns_notify_failed_total"), 1);
  EXPECT_EQ(p.Value("updns_lmdb_map_size_bytes"), 1 << 26);
  EXPECT_EQ(p.Value("updns_lmdb_pages_used"), 100);
  EXPECT_EQ(p.Value("updns_lmdb_used_bytes"), 409600);
  EXPECT_EQ(p.Value("updns_lmdb_readers_max"), 512);
  EXPECT_EQ(p.Value("updns_lmdb_readers_used"), 3);
}

TEST(MetricsRenderTest, WithoutStoreStatsTheLmdbFamiliesAreLeftOut) {
  MetricsSnapshot s;
  PrometheusText p = ParsePrometheusText(RenderMetrics(s));
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_FALSE(p.types.count("updns_lmdb_map_size_bytes"));
  EXPECT_FALSE(p.types.count("updns_mail_outbox"));
}

TEST(MetricsTextCheckerTest, RejectsWhatPrometheusWouldReject) {
  EXPECT_FALSE(ParsePrometheusText("x 1\n").ok()) << "no TYPE";
  EXPECT_FALSE(ParsePrometheusText("# HELP x h\n# TYPE x counter\nx{a=b} 1\n").ok());
  EXPECT_FALSE(ParsePrometheusText("# HELP x h\n# TYPE x counter\nx one\n").ok());
  EXPECT_FALSE(ParsePrometheusText("# HELP x h\n# TYPE x counter\nx 1").ok()) << "no newline";
  EXPECT_TRUE(ParsePrometheusText("# HELP x h\n# TYPE x counter\nx{a=\"b\\\"\"} 1\n").ok());
}

// A query as the responder leaves it, and an answer header.
struct Exchange {
  zone::Query query;
  uint8_t answer[12] = {0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0};
  Exchange(uint16_t qtype, uint8_t rcode) {
    query.qtype = qtype;
    query.question = std::string_view("\0\0\1\0\1", 5);  // only its emptiness matters
    answer[3] = rcode;
  }
};

TEST(DnsCountersTest, CountsByTransportQtypeAndRcodeAndTruncation) {
  DnsCounters loop;
  Exchange a(1, 0);
  loop.CountAnswer(zone::Transport::kUdp, a.query, a.answer);
  loop.CountAnswer(zone::Transport::kUdp, a.query, a.answer);
  Exchange txt(16, 3);
  txt.answer[2] |= 0x02;  // TC
  loop.CountAnswer(zone::Transport::kUdp, txt.query, txt.answer);
  Exchange caa(257, 5);
  loop.CountAnswer(zone::Transport::kTcp, caa.query, caa.answer);
  Exchange odd(4242, 0);
  odd.query.has_edns = true;
  odd.query.edns_version = 1;  // answered BADVERS
  loop.CountAnswer(zone::Transport::kUdp, odd.query, odd.answer);
  Exchange headless(1, 1);
  headless.query.question = {};  // FORMERR before the question: qtype unknown
  loop.CountAnswer(zone::Transport::kTcp, headless.query, headless.answer);

  DnsTotals totals;
  totals.Add(loop);
  totals.Add(loop);  // two loops with the same counts
  EXPECT_EQ(totals.queries[0][QtypeSlot(1)][0], 4u);
  EXPECT_EQ(totals.queries[0][QtypeSlot(16)][3], 2u);
  EXPECT_EQ(totals.queries[1][QtypeSlot(257)][5], 2u);
  EXPECT_EQ(totals.queries[0][kQtypeSlots - 1][RcodeSlot(16)], 2u);
  EXPECT_EQ(kRcodeNames[RcodeSlot(16)], "BADVERS");
  EXPECT_EQ(totals.queries[1][kQtypeSlots - 1][1], 2u);
  EXPECT_EQ(totals.truncated[0], 2u);
  EXPECT_EQ(totals.truncated[1], 0u);
  EXPECT_EQ(kQtypeNames[QtypeSlot(65)], "HTTPS");
  EXPECT_EQ(kRcodeNames[RcodeSlot(12)], "other");

  uint8_t update_answer[12] = {0, 1, 0xa8, 9, 0, 1, 0, 0, 0, 0, 0, 0};
  loop.CountUpdate(update_answer, sizeof update_answer);
  loop.CountUpdate(update_answer, 3);  // too short: not an answer
  EXPECT_EQ(loop.updates[RcodeSlot(9)].value(), 1u);
}

TEST(UpdateCountersTest, DyndnsCountsOneResultPerLineByItsFirstWord) {
  UpdateCounters counters;
  counters.CountDyndns("good 192.0.2.1\nnochg 192.0.2.1\n!yours\nnohost\n");
  counters.CountDyndns("badauth\n");
  counters.CountDyndns("911 too many failed logins; retry after 5 seconds\n");
  counters.CountDyndns("badrequest: hostname is missing\n");
  counters.CountDyndns("method not allowed\n");
  counters.CountDyndns("");
  UpdateTotals t = counters.Totals();
  auto count = [&](std::string_view word) {
    for (size_t i = 0; i < kDyndnsWordSlots; ++i)
      if (kDyndnsWords[i] == word) return t.dyndns[i];
    return ~uint64_t{0};
  };
  EXPECT_EQ(count("good"), 1u);
  EXPECT_EQ(count("nochg"), 1u);
  EXPECT_EQ(count("!yours"), 1u);
  EXPECT_EQ(count("nohost"), 1u);
  EXPECT_EQ(count("badauth"), 1u);
  EXPECT_EQ(count("911"), 1u);
  EXPECT_EQ(count("badrequest"), 1u);
  EXPECT_EQ(count("other"), 1u);
}

TEST(UpdateCountersTest, RepliesAreCountedAsTheyLeaveApiGetsAreNot) {
  UpdateCounters counters;
  HttpResponse sent;
  HttpReply sink = [&](HttpResponse r) { sent = std::move(r); };
  HttpResponse good;
  good.body = "good 192.0.2.9\n";
  counters.CountingDyndnsReply(sink)(good);
  EXPECT_EQ(sent.body, good.body) << "the response goes out unchanged";

  HttpRequest post;
  post.method = "POST";
  HttpRequest get;
  get.method = "GET";
  HttpResponse unauthorized;
  unauthorized.status = 401;
  counters.CountingApiReply(post, sink)(unauthorized);
  counters.CountingApiReply(get, sink)(unauthorized);
  UpdateTotals t = counters.Totals();
  EXPECT_EQ(t.dyndns[0], 1u);
  EXPECT_EQ(t.api_status[401], 1u);
  counters.CountApi(42);  // out of range: ignored
  counters.CountApi(600);
}

HttpRequest RequestFrom(const char* address, const char* method = "GET") {
  HttpRequest request;
  request.method = method;
  request.path = "/metrics";
  request.peer_text = address;
  auto* sin = reinterpret_cast<sockaddr_in*>(&request.peer);
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, address, &sin->sin_addr);
  return request;
}

TEST(MetricsResponseTest, OnlyAllowedPrefixesMayScrape) {
  MetricsSources sources;
  auto prefix = config::ParsePrefix("10.0.0.0/8");
  ASSERT_TRUE(prefix.ok());
  sources.allow.push_back(*prefix);
  HttpResponse refused = MetricsResponse(sources, RequestFrom("127.0.0.1"));
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("http.metrics_allow"), std::string::npos) << refused.body;
  HttpResponse allowed = MetricsResponse(sources, RequestFrom("10.20.30.40"));
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(allowed.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(ParsePrometheusText(allowed.body).ok());
  EXPECT_EQ(MetricsResponse(sources, RequestFrom("10.20.30.40", "POST")).status, 405);
  sources.allow.clear();  // the default: everyone
  EXPECT_EQ(MetricsResponse(sources, RequestFrom("127.0.0.1")).status, 200);
}

}  // namespace
}  // namespace updns::server
