// SIGHUP against the real updnsd: a reload adds and removes zones, changes
// transfer ACLs, names the settings that need a restart, and a broken file
// changes nothing. The query loops keep answering throughout.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "tests/server/daemon_fixture.h"
#include "tests/server/dyndns_fixture.h"

namespace updns::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kReloadZone = R"($ORIGIN reload.example.
@ 3600 IN SOA ns1 hostmaster 7 3600 900 1209600 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
)";

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(daemon_.Start({}, &error)) << error;
    base_config_ = daemon_.ConfigText({});
    WriteFile(daemon_.dir() / "reload.example.zone", kReloadZone);
  }

  void WriteConfig(const std::string& text) { WriteFile(daemon_.dir() / "updns.yaml", text); }

  // Sends SIGHUP and waits for one more log line with `outcome`.
  bool Reload(const std::string& outcome) {
    const size_t before = CountOf(daemon_.log(), outcome);
    return ::kill(daemon_.process().pid(), SIGHUP) == 0 &&
           WaitUntil([&] { return CountOf(daemon_.log(), outcome) > before; }, 10s, 10ms);
  }

  unsigned Rcode(const std::string& name, ldns_rr_type type) {
    std::optional<Bytes> answer = ExchangeUdp(daemon_.udp4(), MakeQuery(name, type), 2000ms);
    if (!answer) return 99;
    Packet pkt = Parse(*answer);
    return pkt ? FullRcode(pkt.get()) : 98;
  }

  std::vector<std::string> Answer(const std::string& name, ldns_rr_type type) {
    std::optional<Bytes> answer = ExchangeUdp(daemon_.udp4(), MakeQuery(name, type), 2000ms);
    if (!answer) return {"no answer"};
    Packet pkt = Parse(*answer);
    return pkt ? SectionTexts(pkt.get(), LDNS_SECTION_ANSWER) : std::vector<std::string>{"unparsable"};
  }

  unsigned AxfrRcode(const std::string& zone) {
    std::optional<Bytes> answer = ExchangeTcp(daemon_.udp4(), MakeQuery(zone, LDNS_RR_TYPE_AXFR), 2000ms);
    if (!answer) return 99;
    Packet pkt = Parse(*answer);
    return pkt ? FullRcode(pkt.get()) : 98;
  }

  std::string ReloadZoneConfig(const std::string& transfer = "") const {
    std::string text = "  - name: reload.example\n    file: " +
                       (daemon_.dir() / "reload.example.zone").string() + "\n";
    if (!transfer.empty()) text += "    transfer: [" + transfer + "]\n";
    return text;
  }

  UpdnsDaemon daemon_;
  std::string base_config_;
};

TEST_F(ReloadTest, AddedZoneAnswersAndRemovedZoneIsRefused) {
  ASSERT_EQ(Rcode("www.reload.example.", LDNS_RR_TYPE_A), LDNS_RCODE_REFUSED);
  ASSERT_EQ(Rcode("neg.example.", LDNS_RR_TYPE_SOA), LDNS_RCODE_NOERROR);

  // reload.example added with its file; neg.example removed.
  std::string text = base_config_;
  size_t neg = text.find("  - name: neg.example\n");
  ASSERT_NE(neg, std::string::npos) << text;
  size_t neg_end = text.find('\n', text.find("    file:", neg)) + 1;
  text.erase(neg, neg_end - neg);
  WriteConfig(text + ReloadZoneConfig());
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();

  EXPECT_EQ(Answer("www.reload.example.", LDNS_RR_TYPE_A),
            std::vector<std::string>{"www.reload.example. 3600 IN A 192.0.2.80"});
  EXPECT_EQ(Rcode("neg.example.", LDNS_RR_TYPE_SOA), LDNS_RCODE_REFUSED);
  EXPECT_EQ(Rcode("host.test.example.", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
  EXPECT_NE(daemon_.log().find("zones=2 added=1 removed=1"), std::string::npos) << "counted wrong:\n" << daemon_.log();
}

TEST_F(ReloadTest, BrokenFileChangesNothing) {
  WriteConfig(base_config_ + ReloadZoneConfig());
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();
  ASSERT_EQ(Rcode("www.reload.example.", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);

  // A YAML error: logged with file and line, and everything stays served.
  WriteConfig(base_config_ + "  - name: broken.example\n    host_ttl: [\n");
  ASSERT_TRUE(Reload("event=reload_refused")) << daemon_.log();
  std::string log = daemon_.log();
  EXPECT_NE(log.find("updns.yaml:"), std::string::npos) << log;
  EXPECT_EQ(Rcode("www.reload.example.", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
  EXPECT_EQ(Rcode("neg.example.", LDNS_RR_TYPE_SOA), LDNS_RCODE_NOERROR);

  // A valid YAML file with a bad value: the same.
  WriteConfig(base_config_ + "  - name: other.example\n    host_ttl: 999999\n");
  ASSERT_TRUE(Reload("event=reload_refused")) << daemon_.log();
  EXPECT_NE(daemon_.log().find("host_ttl"), std::string::npos) << daemon_.log();
  EXPECT_EQ(Rcode("www.reload.example.", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
  EXPECT_EQ(Rcode("other.example.", LDNS_RR_TYPE_SOA), LDNS_RCODE_REFUSED);

  // A zone file that does not load: the zone is logged and the rest applies.
  WriteFile(daemon_.dir() / "bad.zone", "$ORIGIN bad.example.\n@ IN SOA garbage\n");
  WriteConfig(base_config_ + ReloadZoneConfig() + "  - name: bad.example\n    file: " +
              (daemon_.dir() / "bad.zone").string() + "\n");
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();
  EXPECT_NE(daemon_.log().find("event=zone_load_failed zone=bad.example"), std::string::npos) << daemon_.log();
  EXPECT_EQ(Rcode("www.reload.example.", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
}

TEST_F(ReloadTest, TransferAclFollowsTheFile) {
  WriteConfig(base_config_ + ReloadZoneConfig());
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();
  EXPECT_EQ(AxfrRcode("reload.example."), LDNS_RCODE_REFUSED);

  WriteConfig(base_config_ + ReloadZoneConfig("127.0.0.0/8"));
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();
  EXPECT_EQ(AxfrRcode("reload.example."), LDNS_RCODE_NOERROR);

  WriteConfig(base_config_ + ReloadZoneConfig());
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();
  EXPECT_EQ(AxfrRcode("reload.example."), LDNS_RCODE_REFUSED);
}

TEST_F(ReloadTest, SettingsBoundAtStartAreNamed) {
  std::string text = base_config_;
  size_t workers = text.find("workers: 2");
  ASSERT_NE(workers, std::string::npos);
  text.replace(workers, 10, "workers: 3");
  WriteConfig(text);
  ASSERT_TRUE(Reload("event=reloaded ")) << daemon_.log();
  EXPECT_NE(daemon_.log().find("server.workers"), std::string::npos) << daemon_.log();
  EXPECT_NE(daemon_.log().find("restart updnsd to apply it"), std::string::npos);
  EXPECT_EQ(Rcode("host.test.example.", LDNS_RR_TYPE_A), LDNS_RCODE_NOERROR);
}

// HTTP limits and metrics_allow follow the file too (the listeners stay).
TEST(HttpReloadTest, LimitsAndMetricsAllowFollowTheFile) {
  DyndnsDaemon daemon;
  std::string error;
  ASSERT_TRUE(daemon.Start({}, &error)) << error;
  const std::string padded = "GET /nic/update?hostname=x HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                             std::string(3000, 'a') + "\r\nConnection: close\r\n\r\n";
  const std::string metrics = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto exchange = [&](const std::string& request) {
    HttpConnection c;
    return c.Connect(daemon.http_port()) ? c.Exchange(request).status : -1;
  };
  EXPECT_EQ(exchange(padded), 401) << "3 KB of headers are within 8 KiB";
  EXPECT_EQ(exchange(metrics), 200);

  DyndnsOptions smaller;
  smaller.max_request_size = 1024;
  std::string text = daemon.ConfigText(smaller);
  size_t http = text.find("http:\n");
  ASSERT_NE(http, std::string::npos) << text;
  text.insert(http + 6, "  metrics_allow: [\"10.0.0.0/8\"]\n");
  ASSERT_TRUE(daemon.ReloadWith(text)) << daemon.log();
  // The HTTP loop applies the posted limits before the next connection's
  // first read; poll briefly in case the reload raced the accept.
  int status = 0;
  for (int i = 0; i < 50 && (status = exchange(padded)) != 431; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(status, 431) << "max_request_size 1024 after the reload";
  EXPECT_EQ(exchange(metrics), 403) << "127.0.0.1 is outside metrics_allow after the reload";
  EXPECT_EQ(daemon.log().find("http limits"), std::string::npos) << "not a restart setting";
}

// http.login_throttle applies on reload, with every budget full again; a
// reload that leaves it alone keeps the budgets as they are.
TEST(HttpReloadTest, LoginThrottleFollowsTheFile) {
  DyndnsDaemon daemon;
  std::string error;
  ASSERT_TRUE(daemon.Start({}, &error)) << error;
  auto with_throttle = [&](unsigned per_name) {
    std::string text = daemon.ConfigText({});
    size_t http = text.find("http:\n");
    EXPECT_NE(http, std::string::npos) << text;
    return text.insert(http + 6, "  login_throttle: {per_name: " + std::to_string(per_name) +
                                     ", per_address: 100, window: 3600}\n");
  };
  const std::string body = R"({"name":"nobody","password":"wrong"})";
  auto login = [&] {
    HttpConnection c;
    if (!c.Connect(daemon.http_port())) return -1;
    return c
        .Exchange("POST /api/v1/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body)
        .status;
  };

  ASSERT_TRUE(daemon.ReloadWith(with_throttle(2))) << daemon.log();
  EXPECT_EQ(login(), 401);
  EXPECT_EQ(login(), 401);
  EXPECT_EQ(login(), 429) << "per_name 2";
  // The same throttle again: the failures stay counted.
  ASSERT_TRUE(daemon.ReloadWith(with_throttle(2))) << daemon.log();
  EXPECT_EQ(login(), 429) << "an unchanged throttle keeps its budgets";
  ASSERT_TRUE(daemon.ReloadWith(with_throttle(3))) << daemon.log();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(login(), 401) << "failure " << i << " under per_name 3";
  EXPECT_EQ(login(), 429) << "per_name 3";
  EXPECT_EQ(daemon.log().find("login_throttle"), std::string::npos) << "not a restart setting";
}

}  // namespace
}  // namespace updns::test
