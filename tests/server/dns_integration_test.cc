// End-to-end tests of the authoritative answers: each test starts updnsd on
// free loopback ports, serving tests/data/test.example.zone (and
// neg.example.zone), sends queries with ldns over its own sockets and checks
// the answers against RFC 1034/1035, 2181, 4592, 6891, 7766 and 8482.
#include <gtest/gtest.h>

#include <cctype>
#include <iterator>
#include <set>

#include "tests/server/daemon_fixture.h"

namespace updns::test {
namespace {

using namespace std::chrono_literals;

// --- What the zone files say (tests/data/*.zone) ---------------------------

// Negative answers: SOA TTL 3600, MINIMUM 300 -> the SOA with TTL 300.
constexpr const char* kSoaNegative =
    "test.example. 300 IN SOA ns1.test.example. hostmaster.test.example. 2024010101 3600 900 "
    "1209600 300";
// The same SOA as an answer keeps its own TTL.
constexpr const char* kSoaPositive =
    "test.example. 3600 IN SOA ns1.test.example. hostmaster.test.example. 2024010101 3600 900 "
    "1209600 300";
// neg.example: SOA TTL 120 < MINIMUM 900 -> the SOA with TTL 120.
constexpr const char* kNegSoaNegative =
    "neg.example. 120 IN SOA ns1.neg.example. hostmaster.neg.example. 1 3600 900 1209600 900";

const std::vector<std::string> kNone;

constexpr const char* kHostA = "host.test.example. 3600 IN A 192.0.2.10";
constexpr const char* kHostAaaa = "host.test.example. 60 IN AAAA 2001:db8::10";

const std::vector<std::string> kSubNs = {"sub.test.example. 3600 IN NS ns.sub.test.example.",
                                         "sub.test.example. 3600 IN NS ns.elsewhere.example."};
const std::vector<std::string> kSubGlue = {"ns.sub.test.example. 3600 IN A 192.0.2.53",
                                           "ns.sub.test.example. 3600 IN AAAA 2001:db8::53"};

// --- Expectations ----------------------------------------------------------

std::string RcodeText(unsigned rcode) {
  static const char* const kNames[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                       "NXDOMAIN", "NOTIMP",  "REFUSED"};
  std::string name = rcode < std::size(kNames) ? kNames[rcode] : rcode == 16 ? "BADVERS" : "RCODE";
  return name + "(" + std::to_string(rcode) + ")";
}

struct Expect {
  ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR;
  bool aa = true;
  bool tc = false;
  std::vector<std::string> answer;
  std::vector<std::string> authority;
  // Checked only when set; never includes the OPT record.
  std::optional<std::vector<std::string>> additional;
};

void Check(const Packet& p, const Expect& e) {
  ASSERT_NE(p, nullptr) << "no parsable answer";
  EXPECT_EQ(RcodeText(FullRcode(p.get())), RcodeText(e.rcode));
  EXPECT_EQ(ldns_pkt_aa(p.get()), e.aa) << "AA flag";
  EXPECT_EQ(ldns_pkt_tc(p.get()), e.tc) << "TC flag";
  EXPECT_EQ(SectionTexts(p.get(), LDNS_SECTION_ANSWER), Sorted(e.answer)) << "answer section";
  EXPECT_EQ(SectionTexts(p.get(), LDNS_SECTION_AUTHORITY), Sorted(e.authority))
      << "authority section";
  if (e.additional) {
    EXPECT_EQ(SectionTexts(p.get(), LDNS_SECTION_ADDITIONAL), Sorted(*e.additional))
        << "additional section";
  }
}

// Where the question of an uncompressed query ends (12 + QNAME + 4), or 0.
size_t QuestionEnd(const Bytes& m) {
  size_t at = 12;
  while (at < m.size() && m[at] != 0) at += 1 + m[at];
  return at + 5 <= m.size() ? at + 5 : 0;
}

// Raw header fields.
unsigned WireRcode(const Bytes& m) { return m[3] & 0x0f; }
bool WireQr(const Bytes& m) { return (m[2] & 0x80) != 0; }
unsigned WireOpcode(const Bytes& m) { return (m[2] >> 3) & 0x0f; }
unsigned WireQdcount(const Bytes& m) { return static_cast<unsigned>(m[4] << 8 | m[5]); }

std::vector<std::string> Lowercase(std::vector<std::string> texts) {
  for (std::string& text : texts)
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return std::tolower(c); });
  return Sorted(std::move(texts));
}

enum class Via { kUdp, kTcp };

// --- The fixture -------------------------------------------------------------

class DnsTest : public ::testing::Test {
 protected:
  virtual UpdnsOptions Options() const { return {}; }

  void SetUp() override {
    std::string error;
    started_ = daemon_.Start(Options(), &error);
    ASSERT_TRUE(started_) << error;
  }

  void TearDown() override {
    if (started_ && !stopped_) StopAndExpectCleanExit();
  }

  // SIGTERM must stop the daemon within 5 s with exit status 0.
  void StopAndExpectCleanExit() {
    stopped_ = true;
    auto begin = Clock::now();
    bool in_time = daemon_.Stop(5000ms);
    auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
    ASSERT_TRUE(in_time) << "updnsd did not exit within 5 s of SIGTERM (killed); its log:\n"
                         << daemon_.log();
    int status = daemon_.process().status();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "updnsd stopped with " << DescribeWaitStatus(status) << " after " << took.count()
        << " ms; its log:\n"
        << daemon_.log();
  }

  // Sends `query` and returns the answer bytes (nullopt on timeout). Checks
  // what every answer must do: same id, QR set, the question echoed byte for
  // byte (so also the QNAME case).
  std::optional<Bytes> Exchange(const Bytes& query, Via via, const SocketAddress& server) {
    std::optional<Bytes> answer =
        via == Via::kUdp ? ExchangeUdp(server, query, 2000ms) : ExchangeTcp(server, query, 2000ms);
    if (!answer) {
      ADD_FAILURE() << "no answer within 2 s over " << (via == Via::kUdp ? "UDP" : "TCP");
      return std::nullopt;
    }
    if (answer->size() < 12) {
      ADD_FAILURE() << "answer shorter than a header: " << answer->size() << " bytes";
      return std::nullopt;
    }
    EXPECT_EQ(WireId(*answer), WireId(query)) << "answer id";
    EXPECT_TRUE(WireQr(*answer)) << "QR flag of the answer";
    size_t end = QuestionEnd(query);
    if (end != 0 && WireQdcount(*answer) == 1) {
      EXPECT_TRUE(answer->size() >= end &&
                  std::equal(query.begin() + 12, query.begin() + end, answer->begin() + 12))
          << "the question is not echoed as sent";
    }
    return answer;
  }

  Packet Ask(const std::string& name, ldns_rr_type type, QueryOptions options = {},
             Via via = Via::kUdp) {
    return AskAt(daemon_.udp4(), name, type, options, via);
  }

  Packet AskAt(const SocketAddress& server, const std::string& name, ldns_rr_type type,
               QueryOptions options, Via via) {
    Bytes query = MakeQuery(name, type, options);
    if (query.empty()) {
      ADD_FAILURE() << "cannot build a query for " << name;
      return nullptr;
    }
    std::optional<Bytes> answer = Exchange(query, via, server);
    if (!answer) return nullptr;
    last_answer_size_ = answer->size();
    Packet p = Parse(*answer);
    EXPECT_NE(p, nullptr) << "ldns cannot parse the answer to " << name;
    if (p) {
      EXPECT_EQ(ldns_pkt_qdcount(p.get()), 1u) << "question count";
    }
    return p;
  }

  Packet Tcp(const std::string& name, ldns_rr_type type, QueryOptions options = {}) {
    return Ask(name, type, options, Via::kTcp);
  }

  // Sends raw bytes over UDP; nullopt when nothing comes back in `timeout`.
  std::optional<Bytes> Raw(const Bytes& bytes, milliseconds timeout = 2000ms) {
    return ExchangeUdp(daemon_.udp4(), bytes, timeout);
  }

  // After odd packets: the daemon still runs and answers.
  void ExpectAlive() {
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died; its log:\n" << daemon_.log();
    Check(Ask("host.test.example.", LDNS_RR_TYPE_A), {.answer = {kHostA}});
  }

  UpdnsDaemon daemon_;
  bool started_ = false;
  bool stopped_ = false;
  size_t last_answer_size_ = 0;
};

// --- Positive answers --------------------------------------------------------

TEST_F(DnsTest, AHit) {
  Check(Ask("host.test.example.", LDNS_RR_TYPE_A), {.answer = {kHostA}, .additional = kNone});
}

TEST_F(DnsTest, AaaaHit) {
  Check(Ask("host.test.example.", LDNS_RR_TYPE_AAAA), {.answer = {kHostAaaa}, .additional = kNone});
}

TEST_F(DnsTest, ApexSoaKeepsItsOwnTtl) {
  Check(Ask("test.example.", LDNS_RR_TYPE_SOA), {.answer = {kSoaPositive}});
}

// --- Negative answers (RFC 2308) -------------------------------------------

TEST_F(DnsTest, NodataHasSoaWithNegativeTtl) {
  Check(Ask("host.test.example.", LDNS_RR_TYPE_TXT), {.authority = {kSoaNegative}});
}

TEST_F(DnsTest, UnknownTypeIsNodata) {
  Check(Ask("host.test.example.", static_cast<ldns_rr_type>(65000)), {.authority = {kSoaNegative}});
}

TEST_F(DnsTest, NxdomainHasSoaWithNegativeTtl) {
  Check(Ask("nothere.test.example.", LDNS_RR_TYPE_A),
        {.rcode = LDNS_RCODE_NXDOMAIN, .authority = {kSoaNegative}});
  Check(Ask("deeper.nothere.test.example.", LDNS_RR_TYPE_AAAA),
        {.rcode = LDNS_RCODE_NXDOMAIN, .authority = {kSoaNegative}});
}

TEST_F(DnsTest, NegativeTtlIsSoaTtlWhenBelowMinimum) {
  Check(Ask("nothere.neg.example.", LDNS_RR_TYPE_A),
        {.rcode = LDNS_RCODE_NXDOMAIN, .authority = {kNegSoaNegative}});
  Check(Ask("ns1.neg.example.", LDNS_RR_TYPE_TXT), {.authority = {kNegSoaNegative}});
}

TEST_F(DnsTest, EmptyNonTerminalIsNodataNotNxdomain) {
  Check(Ask("a.b.c.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"a.b.c.test.example. 3600 IN A 192.0.2.11"}});
  Check(Ask("b.c.test.example.", LDNS_RR_TYPE_A), {.authority = {kSoaNegative}});
  Check(Ask("c.test.example.", LDNS_RR_TYPE_AAAA), {.authority = {kSoaNegative}});
  Check(Ask("x.b.c.test.example.", LDNS_RR_TYPE_A),
        {.rcode = LDNS_RCODE_NXDOMAIN, .authority = {kSoaNegative}});
}

// --- Wildcards (RFC 4592) ----------------------------------------------------

TEST_F(DnsTest, WildcardMatchesOneLabel) {
  Check(Ask("x.wild.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"x.wild.test.example. 3600 IN A 192.0.2.20"}});
  Check(Ask("x.wild.test.example.", LDNS_RR_TYPE_AAAA),
        {.answer = {"x.wild.test.example. 3600 IN AAAA 2001:db8::20"}});
}

TEST_F(DnsTest, WildcardMatchesSeveralLabels) {
  Check(Ask("a.b.wild.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"a.b.wild.test.example. 3600 IN A 192.0.2.20"}});
}

TEST_F(DnsTest, WildcardDoesNotApplyToExistingNames) {
  Check(Ask("exists.wild.test.example.", LDNS_RR_TYPE_A), {.authority = {kSoaNegative}});
  Check(Ask("exists.wild.test.example.", LDNS_RR_TYPE_TXT),
        {.answer = {"exists.wild.test.example. 3600 IN TXT \"exists\""}});
  Check(Ask("sub.wild.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"sub.wild.test.example. 3600 IN A 192.0.2.21"}});
  Check(Ask("sub.wild.test.example.", LDNS_RR_TYPE_AAAA), {.authority = {kSoaNegative}});
}

TEST_F(DnsTest, WildcardDoesNotApplyBelowExistingName) {
  // The closest encloser of x.sub.wild is sub.wild, which has no *.
  Check(Ask("x.sub.wild.test.example.", LDNS_RR_TYPE_A),
        {.rcode = LDNS_RCODE_NXDOMAIN, .authority = {kSoaNegative}});
  // The closest encloser of x.deep.wild is deep.wild, which has *.deep.wild.
  Check(Ask("x.deep.wild.test.example.", LDNS_RR_TYPE_TXT),
        {.answer = {"x.deep.wild.test.example. 3600 IN TXT \"deep\""}});
  Check(Ask("x.deep.wild.test.example.", LDNS_RR_TYPE_A), {.authority = {kSoaNegative}});
}

TEST_F(DnsTest, WildcardNodata) {
  Check(Ask("x.wild.test.example.", LDNS_RR_TYPE_TXT), {.authority = {kSoaNegative}});
}

TEST_F(DnsTest, WildcardOwnerIsQueryName) {
  Packet p = Ask("Mixed.Case.Wild.test.example.", LDNS_RR_TYPE_A);
  Check(p, {.answer = {"mixed.case.wild.test.example. 3600 IN A 192.0.2.20"}});
}

TEST_F(DnsTest, WildcardNameQueriedLiterally) {
  Check(Ask("*.wild.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"*.wild.test.example. 3600 IN A 192.0.2.20"}});
}

TEST_F(DnsTest, WildcardCname) {
  Check(Ask("x.cw.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"x.cw.test.example. 3600 IN CNAME host.test.example.", kHostA}});
}

// --- CNAME -------------------------------------------------------------------

TEST_F(DnsTest, CnameChainInZone) {
  Check(Ask("cname1.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"cname1.test.example. 3600 IN CNAME cname2.test.example.",
                    "cname2.test.example. 3600 IN CNAME host.test.example.", kHostA}});
  Check(Ask("cname1.test.example.", LDNS_RR_TYPE_AAAA),
        {.answer = {"cname1.test.example. 3600 IN CNAME cname2.test.example.",
                    "cname2.test.example. 3600 IN CNAME host.test.example.", kHostAaaa}});
}

TEST_F(DnsTest, CnameChainToNodata) {
  Check(Ask("cname1.test.example.", LDNS_RR_TYPE_TXT),
        {.answer = {"cname1.test.example. 3600 IN CNAME cname2.test.example.",
                    "cname2.test.example. 3600 IN CNAME host.test.example."},
         .authority = {kSoaNegative}});
}

TEST_F(DnsTest, CnameChainToNxdomain) {
  Check(Ask("dangling1.test.example.", LDNS_RR_TYPE_A),
        {.rcode = LDNS_RCODE_NXDOMAIN,
         .answer = {"dangling1.test.example. 3600 IN CNAME dangling2.test.example.",
                    "dangling2.test.example. 3600 IN CNAME nothere.test.example."},
         .authority = {kSoaNegative}});
}

TEST_F(DnsTest, CnameOutOfZone) {
  Check(Ask("outside.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"outside.test.example. 3600 IN CNAME www.example.org."}});
}

TEST_F(DnsTest, CnameLoopTerminates) {
  // Each RR of the loop once (RFC 2181 §5: no duplicate RRs).
  Check(Ask("loop1.test.example.", LDNS_RR_TYPE_A),
        {.answer = {"loop1.test.example. 3600 IN CNAME loop2.test.example.",
                    "loop2.test.example. 3600 IN CNAME loop1.test.example."}});
  Check(Ask("loop1.test.example.", LDNS_RR_TYPE_A, {}, Via::kTcp),
        {.answer = {"loop1.test.example. 3600 IN CNAME loop2.test.example.",
                    "loop2.test.example. 3600 IN CNAME loop1.test.example."}});
  ExpectAlive();
}

TEST_F(DnsTest, QtypeCnameReturnsTheCname) {
  Check(Ask("cname1.test.example.", LDNS_RR_TYPE_CNAME),
        {.answer = {"cname1.test.example. 3600 IN CNAME cname2.test.example."}});
}

// --- Delegation ----------------------------------------------------------------

TEST_F(DnsTest, ReferralAtCut) {
  const Expect referral{.aa = false, .authority = kSubNs, .additional = kSubGlue};
  Check(Ask("sub.test.example.", LDNS_RR_TYPE_A), referral);
  Check(Ask("sub.test.example.", LDNS_RR_TYPE_NS), referral);
}

TEST_F(DnsTest, ReferralBelowCut) {
  const Expect referral{.aa = false, .authority = kSubNs, .additional = kSubGlue};
  Check(Ask("x.sub.test.example.", LDNS_RR_TYPE_A), referral);
  Check(Ask("a.b.sub.test.example.", LDNS_RR_TYPE_AAAA), referral);
}

TEST_F(DnsTest, GlueIsNotAnAnswer) {
  const Expect referral{.aa = false, .authority = kSubNs, .additional = kSubGlue};
  Check(Ask("ns.sub.test.example.", LDNS_RR_TYPE_A), referral);
  Check(Ask("ns.sub.test.example.", LDNS_RR_TYPE_AAAA), referral);
}

TEST_F(DnsTest, DsAtCutIsAnsweredByParent) {
  Check(Ask("sub.test.example.", LDNS_RR_TYPE_DS), {.authority = {kSoaNegative}});
}

// --- Additional section processing ------------------------------------------

TEST_F(DnsTest, MxCarriesTargetAddresses) {
  Check(Ask("test.example.", LDNS_RR_TYPE_MX),
        {.answer = {"test.example. 3600 IN MX 10 mail.test.example."},
         .additional = {{"mail.test.example. 3600 IN A 192.0.2.25",
                         "mail.test.example. 3600 IN AAAA 2001:db8::25"}}});
}

TEST_F(DnsTest, SrvCarriesTargetAddresses) {
  Check(Ask("_sip._udp.test.example.", LDNS_RR_TYPE_SRV),
        {.answer = {"_sip._udp.test.example. 3600 IN SRV 10 60 5060 host.test.example."},
         .additional = {{kHostA, kHostAaaa}}});
}

TEST_F(DnsTest, ApexNsCarriesGlue) {
  Check(Ask("test.example.", LDNS_RR_TYPE_NS),
        {.answer = {"test.example. 3600 IN NS ns1.test.example.",
                    "test.example. 3600 IN NS ns2.test.example."},
         .additional = {{"ns1.test.example. 3600 IN A 192.0.2.1",
                         "ns1.test.example. 3600 IN AAAA 2001:db8::1",
                         "ns2.test.example. 3600 IN A 192.0.2.2"}}});
}

// --- Refusals and errors ---------------------------------------------------------

TEST_F(DnsTest, RefusedOutsideOurZones) {
  const Expect refused{.rcode = LDNS_RCODE_REFUSED, .aa = false};
  Check(Ask("www.example.org.", LDNS_RR_TYPE_A), refused);
  Check(Ask("example.", LDNS_RR_TYPE_SOA), refused);
  // A suffix of the zone name that is not on a label boundary.
  Check(Ask("xtest.example.", LDNS_RR_TYPE_A), refused);
  Check(Ask(".", LDNS_RR_TYPE_NS), refused);
}

TEST_F(DnsTest, NotimpForUnknownOpcodes) {
  for (unsigned opcode : {2u /* STATUS */, 3u /* unassigned */, 15u}) {
    SCOPED_TRACE("opcode " + std::to_string(opcode));
    Bytes query = MakeQuery("host.test.example.", LDNS_RR_TYPE_A);
    query[2] = static_cast<uint8_t>((query[2] & 0x87) | opcode << 3);
    std::optional<Bytes> answer = Raw(query);
    ASSERT_TRUE(answer.has_value()) << "no answer";
    ASSERT_GE(answer->size(), 12u);
    EXPECT_EQ(WireId(*answer), WireId(query));
    EXPECT_TRUE(WireQr(*answer));
    EXPECT_EQ(WireOpcode(*answer), opcode) << "the opcode is copied into the answer";
    EXPECT_EQ(RcodeText(WireRcode(*answer)), RcodeText(LDNS_RCODE_NOTIMPL));
  }
  ExpectAlive();
}

TEST_F(DnsTest, FormerrWithoutQuestion) {
  Bytes query = MakeQuery("host.test.example.", LDNS_RR_TYPE_A);
  query.resize(12);
  query[5] = 0;  // QDCOUNT 0
  std::optional<Bytes> answer = Raw(query);
  ASSERT_TRUE(answer.has_value()) << "no answer";
  ASSERT_GE(answer->size(), 12u);
  EXPECT_EQ(WireId(*answer), WireId(query));
  EXPECT_TRUE(WireQr(*answer));
  EXPECT_EQ(RcodeText(WireRcode(*answer)), RcodeText(LDNS_RCODE_FORMERR));
  ExpectAlive();
}

TEST_F(DnsTest, FormerrWithTwoQuestions) {
  Bytes query = MakeQuery("host.test.example.", LDNS_RR_TYPE_A);
  size_t end = QuestionEnd(query);
  ASSERT_EQ(end, query.size());
  Bytes second = MakeQuery("mail.test.example.", LDNS_RR_TYPE_A);
  query.insert(query.end(), second.begin() + 12, second.end());
  query[5] = 2;  // QDCOUNT 2
  std::optional<Bytes> answer = Raw(query);
  ASSERT_TRUE(answer.has_value()) << "no answer";
  ASSERT_GE(answer->size(), 12u);
  EXPECT_EQ(WireId(*answer), WireId(query));
  EXPECT_TRUE(WireQr(*answer));
  EXPECT_EQ(RcodeText(WireRcode(*answer)), RcodeText(LDNS_RCODE_FORMERR));
  ExpectAlive();
}

TEST_F(DnsTest, FormerrForTruncatedQuestion) {
  Bytes query = MakeQuery("host.test.example.", LDNS_RR_TYPE_A);
  for (size_t cut : {size_t{12 + 3}, size_t{12 + 6}, query.size() - 2}) {
    SCOPED_TRACE("question cut after " + std::to_string(cut) + " bytes");
    Bytes truncated(query.begin(), query.begin() + static_cast<ptrdiff_t>(cut));
    std::optional<Bytes> answer = Raw(truncated);
    ASSERT_TRUE(answer.has_value()) << "no answer";
    ASSERT_GE(answer->size(), 12u);
    EXPECT_EQ(WireId(*answer), WireId(query));
    EXPECT_TRUE(WireQr(*answer));
    EXPECT_EQ(RcodeText(WireRcode(*answer)), RcodeText(LDNS_RCODE_FORMERR));
  }
  ExpectAlive();
}

TEST_F(DnsTest, ResponseGetsNoAnswer) {
  Bytes packet = MakeQuery("host.test.example.", LDNS_RR_TYPE_A);
  packet[2] |= 0x80;  // QR: this is a response
  EXPECT_FALSE(Raw(packet, 300ms).has_value()) << "a packet with QR=1 was answered";
  ExpectAlive();
}

// --- EDNS (RFC 6891) ---------------------------------------------------------------

TEST_F(DnsTest, EdnsQueryGetsOpt) {
  for (Via via : {Via::kUdp, Via::kTcp}) {
    SCOPED_TRACE(via == Via::kUdp ? "UDP" : "TCP");
    Packet p = Ask("host.test.example.", LDNS_RR_TYPE_A, {.edns = true, .payload = 1232}, via);
    Check(p, {.answer = {kHostA}, .additional = kNone});
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(ldns_pkt_edns(p.get())) << "no OPT in the answer";
    EXPECT_EQ(ldns_pkt_edns_version(p.get()), 0);
    EXPECT_GE(ldns_pkt_edns_udp_size(p.get()), 512);
  }
  // Negative answers and refusals carry OPT too.
  Packet nx = Ask("nothere.test.example.", LDNS_RR_TYPE_A, {.edns = true});
  Check(nx, {.rcode = LDNS_RCODE_NXDOMAIN, .authority = {kSoaNegative}});
  ASSERT_NE(nx, nullptr);
  EXPECT_TRUE(ldns_pkt_edns(nx.get())) << "no OPT in the NXDOMAIN answer";
  Packet refused = Ask("www.example.org.", LDNS_RR_TYPE_A, {.edns = true});
  Check(refused, {.rcode = LDNS_RCODE_REFUSED, .aa = false});
  ASSERT_NE(refused, nullptr);
  EXPECT_TRUE(ldns_pkt_edns(refused.get())) << "no OPT in the REFUSED answer";
}

TEST_F(DnsTest, NoOptWithoutEdns) {
  Packet p = Ask("host.test.example.", LDNS_RR_TYPE_A);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(ldns_pkt_edns(p.get())) << "OPT in the answer to a query without OPT";
}

TEST_F(DnsTest, EdnsVersion1GetsBadvers) {
  Packet p = Ask("host.test.example.", LDNS_RR_TYPE_A, {.edns = true, .edns_version = 1});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(RcodeText(FullRcode(p.get())), RcodeText(16)) << "extended RCODE BADVERS";
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(p.get()), 1);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR) << "lower 4 bits of BADVERS";
  EXPECT_TRUE(ldns_pkt_edns(p.get())) << "BADVERS needs an OPT";
  EXPECT_EQ(ldns_pkt_edns_version(p.get()), 0) << "we speak version 0";
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0u);
}

// --- Truncation ------------------------------------------------------------------

TEST_F(DnsTest, LargeAnswerIsTruncatedOverUdpWithoutEdns) {
  Packet p = Ask("big.test.example.", LDNS_RR_TYPE_TXT);
  ASSERT_NE(p, nullptr);
  EXPECT_LE(last_answer_size_, 512u);
  EXPECT_EQ(RcodeText(FullRcode(p.get())), RcodeText(LDNS_RCODE_NOERROR));
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_TRUE(ldns_pkt_tc(p.get())) << "TC must be set: the RRset does not fit in 512 bytes";
  // RFC 2181 §9 allows some of the RRset to stay; nothing else may be there.
  std::vector<std::string> all = BigTxt();
  for (const std::string& rr : SectionTexts(p.get(), LDNS_SECTION_ANSWER))
    EXPECT_NE(std::find(all.begin(), all.end(), rr), all.end()) << rr;
  EXPECT_LT(ldns_pkt_ancount(p.get()), 4u);
}

TEST_F(DnsTest, LargeAnswerIsTruncatedWithSmallEdnsPayload) {
  Packet p = Ask("big.test.example.", LDNS_RR_TYPE_TXT, {.edns = true, .payload = 512});
  ASSERT_NE(p, nullptr);
  EXPECT_LE(last_answer_size_, 512u);
  EXPECT_TRUE(ldns_pkt_tc(p.get())) << "TC must be set: the RRset does not fit in 512 bytes";
  EXPECT_TRUE(ldns_pkt_edns(p.get())) << "no OPT in the truncated answer";
}

TEST_F(DnsTest, LargeAnswerIsWholeOverTcp) {
  Check(Tcp("big.test.example.", LDNS_RR_TYPE_TXT), {.answer = BigTxt()});
}

TEST_F(DnsTest, LargeAnswerIsWholeOverUdpWithEdnsPayload4096) {
  Packet p = Ask("big.test.example.", LDNS_RR_TYPE_TXT, {.edns = true, .payload = 4096});
  Check(p, {.answer = BigTxt()});
  EXPECT_GT(last_answer_size_, 512u);
}

// --- ANY (RFC 8482) ------------------------------------------------------------------

TEST_F(DnsTest, AnyOverUdpReturnsOneRrset) {
  for (const char* name : {"host.test.example.", "test.example."}) {
    SCOPED_TRACE(name);
    Packet p = Ask(name, LDNS_RR_TYPE_ANY);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(RcodeText(FullRcode(p.get())), RcodeText(LDNS_RCODE_NOERROR));
    EXPECT_TRUE(ldns_pkt_aa(p.get()));
    EXPECT_FALSE(ldns_pkt_tc(p.get()));
    ldns_rr_list* answer = ldns_pkt_answer(p.get());
    ASSERT_GE(ldns_rr_list_rr_count(answer), 1u) << "empty answer to ANY";
    std::set<std::pair<std::string, int>> rrsets;
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer); ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(answer, i);
      std::string text = RrText(rr);
      rrsets.insert({text.substr(0, text.find(' ')), ldns_rr_get_type(rr)});
    }
    EXPECT_EQ(rrsets.size(), 1u) << "RFC 8482: one RRset over UDP; answer:\n"
                                 << ::testing::PrintToString(
                                        SectionTexts(p.get(), LDNS_SECTION_ANSWER));
    EXPECT_EQ(rrsets.begin()->first, name);
  }
}

TEST_F(DnsTest, AnyOverTcpReturnsAllRrsets) {
  Check(Tcp("host.test.example.", LDNS_RR_TYPE_ANY), {.answer = {kHostA, kHostAaaa}});
  Check(Tcp("test.example.", LDNS_RR_TYPE_ANY),
        {.answer = {kSoaPositive, "test.example. 3600 IN NS ns1.test.example.",
                    "test.example. 3600 IN NS ns2.test.example.",
                    "test.example. 3600 IN MX 10 mail.test.example.",
                    "test.example. 3600 IN TXT \"v=spf1 mx -all\""}});
}

// --- QNAME case ------------------------------------------------------------------

TEST_F(DnsTest, QnameCaseIsPreserved) {
  for (Via via : {Via::kUdp, Via::kTcp}) {
    SCOPED_TRACE(via == Via::kUdp ? "UDP" : "TCP");
    // Exchange() compares the question bytes; this checks it through ldns too.
    Packet p = Ask("HoSt.TeSt.ExAmPlE.", LDNS_RR_TYPE_A, {}, via);
    Check(p, {.answer = {kHostA}});
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(ldns_rr_list_rr_count(ldns_pkt_question(p.get())), 1u);
    char* qname = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p.get()), 0)));
    EXPECT_STREQ(qname, "HoSt.TeSt.ExAmPlE.");
    std::free(qname);
  }
  // Names in RDATA may be compressed against the question and so take its
  // case (NSD does the same; names compare case-insensitively, RFC 4343):
  // compare these answers in lower case.
  Packet nx = Ask("NOTHERE.TEST.EXAMPLE.", LDNS_RR_TYPE_A);
  ASSERT_NE(nx, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(nx.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(Lowercase(SectionTexts(nx.get(), LDNS_SECTION_AUTHORITY)), Lowercase({kSoaNegative}));
  Packet referral = Ask("SUB.Test.Example.", LDNS_RR_TYPE_A);
  ASSERT_NE(referral, nullptr);
  EXPECT_FALSE(ldns_pkt_aa(referral.get()));
  EXPECT_EQ(Lowercase(SectionTexts(referral.get(), LDNS_SECTION_AUTHORITY)), Lowercase(kSubNs));
  EXPECT_EQ(Lowercase(SectionTexts(referral.get(), LDNS_SECTION_ADDITIONAL)), Lowercase(kSubGlue));
}

// --- TCP (RFC 7766) -------------------------------------------------------------------

TEST_F(DnsTest, TcpPipelinedQueriesInOneWrite) {
  Bytes a = MakeQuery("host.test.example.", LDNS_RR_TYPE_A, {.id = 0x1111});
  Bytes aaaa = MakeQuery("host.test.example.", LDNS_RR_TYPE_AAAA, {.id = 0x2222});
  Bytes both = Framed(a);
  Bytes second = Framed(aaaa);
  both.insert(both.end(), second.begin(), second.end());
  TcpConnection connection;
  ASSERT_TRUE(connection.Connect(daemon_.udp4(), 2000ms));
  ASSERT_TRUE(connection.SendRaw(both));
  std::set<uint16_t> ids;
  for (int i = 0; i < 2; ++i) {
    std::optional<Bytes> answer = connection.Read(2000ms);
    ASSERT_TRUE(answer.has_value()) << "answer " << i + 1 << " of 2 missing";
    Packet p = Parse(*answer);
    ASSERT_NE(p, nullptr);
    uint16_t id = ldns_pkt_id(p.get());
    ids.insert(id);
    // Answers may come in any order (RFC 7766 §6.2.1.1); match them by id.
    if (id == 0x1111) Check(p, {.answer = {kHostA}});
    if (id == 0x2222) Check(p, {.answer = {kHostAaaa}});
  }
  EXPECT_EQ(ids, (std::set<uint16_t>{0x1111, 0x2222}));
}

TEST_F(DnsTest, TcpSequentialQueriesOnOneConnection) {
  TcpConnection connection;
  ASSERT_TRUE(connection.Connect(daemon_.udp4(), 2000ms));
  const std::vector<std::pair<std::string, std::string>> queries = {
      {"host.test.example.", kHostA},
      {"mail.test.example.", "mail.test.example. 3600 IN A 192.0.2.25"},
      {"ns1.test.example.", "ns1.test.example. 3600 IN A 192.0.2.1"},
      {"x.wild.test.example.", "x.wild.test.example. 3600 IN A 192.0.2.20"},
      {"ns2.test.example.", "ns2.test.example. 3600 IN A 192.0.2.2"}};
  uint16_t id = 100;
  for (const auto& [name, rr] : queries) {
    SCOPED_TRACE(name);
    Bytes query = MakeQuery(name, LDNS_RR_TYPE_A, {.id = ++id});
    ASSERT_TRUE(connection.Send(query));
    std::optional<Bytes> answer = connection.Read(2000ms);
    ASSERT_TRUE(answer.has_value()) << "no answer on the open connection";
    EXPECT_EQ(WireId(*answer), id);
    Check(Parse(*answer), {.answer = {rr}});
  }
}

TEST_F(DnsTest, TcpQueryWrittenInPieces) {
  TcpConnection connection;
  ASSERT_TRUE(connection.Connect(daemon_.udp4(), 2000ms));
  Bytes framed = Framed(MakeQuery("host.test.example.", LDNS_RR_TYPE_A, {.id = 0x3333}));
  ASSERT_TRUE(connection.SendRaw(Bytes(framed.begin(), framed.begin() + 1)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(connection.SendRaw(Bytes(framed.begin() + 1, framed.begin() + 9)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(connection.SendRaw(Bytes(framed.begin() + 9, framed.end())));
  std::optional<Bytes> answer = connection.Read(2000ms);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(WireId(*answer), 0x3333);
  Check(Parse(*answer), {.answer = {kHostA}});
}

class DnsIdleTimeoutTest : public DnsTest {
 protected:
  UpdnsOptions Options() const override { return {.tcp_idle_timeout_ms = 1000}; }
};

TEST_F(DnsIdleTimeoutTest, ServerClosesIdleConnections) {
  TcpConnection used, silent;
  ASSERT_TRUE(used.Connect(daemon_.udp4(), 2000ms));
  ASSERT_TRUE(silent.Connect(daemon_.udp4(), 2000ms));
  ASSERT_TRUE(used.Send(MakeQuery("host.test.example.", LDNS_RR_TYPE_A, {.id = 7})));
  ASSERT_TRUE(used.Read(2000ms).has_value());
  auto begin = Clock::now();
  EXPECT_EQ(used.WaitClosed(3000ms), TcpConnection::CloseState::kClosed)
      << "the connection with a query was not closed (read() == 0) within 1 s + 2 s";
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
  EXPECT_GE(took.count(), 500) << "closed long before the 1000 ms idle timeout";
  EXPECT_EQ(silent.WaitClosed(2000ms), TcpConnection::CloseState::kClosed)
      << "the connection that never sent a query was not closed";
}

// --- IPv6 ----------------------------------------------------------------------------

TEST_F(DnsTest, Ipv6ListenerAnswers) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "::1 is not available on this host";
  Check(AskAt(daemon_.udp6(), "host.test.example.", LDNS_RR_TYPE_A, {}, Via::kUdp),
        {.answer = {kHostA}});
  Check(AskAt(daemon_.udp6(), "host.test.example.", LDNS_RR_TYPE_AAAA, {}, Via::kTcp),
        {.answer = {kHostAaaa}});
}

// --- Process ---------------------------------------------------------------------------

TEST_F(DnsTest, SigtermStopsCleanly) { StopAndExpectCleanExit(); }

// storage.prefetch (on by default) reads the store once after start.
TEST_F(DnsTest, StoreIsPrefetchedAfterStart) {
  ASSERT_TRUE(daemon_.WaitForLog("event=prefetched bytes=", 5000ms)) << daemon_.log();
  EXPECT_NE(daemon_.log().find("stopped=false"), std::string::npos) << daemon_.log();
}

// Without mail.smtp the mailer never opens libcurl, and with it the 28
// libraries it brings: start-up does not pay for them (server/mailer.h).
TEST_F(DnsTest, LibcurlIsNotLoadedWithoutMail) {
  std::string maps = ReadFile("/proc/" + std::to_string(daemon_.process().pid()) + "/maps");
  ASSERT_NE(maps.find("libldns"), std::string::npos) << maps;
  EXPECT_EQ(maps.find("libcurl"), std::string::npos) << maps;
}

TEST_F(DnsTest, SigtermStopsCleanlyWithOpenTcpConnections) {
  TcpConnection idle, busy;
  ASSERT_TRUE(idle.Connect(daemon_.udp4(), 2000ms));
  ASSERT_TRUE(busy.Connect(daemon_.udp4(), 2000ms));
  ASSERT_TRUE(busy.Send(MakeQuery("host.test.example.", LDNS_RR_TYPE_A)));
  ASSERT_TRUE(busy.Read(2000ms).has_value());
  // Half a query: the server waits for the rest.
  ASSERT_TRUE(busy.SendRaw({0x00, 0x30, 0x12}));
  std::this_thread::sleep_for(20ms);
  StopAndExpectCleanExit();
}

// SIGTERM as soon as the daemon answers at all (no wait for its "started"
// log line): the daemon must already handle it and exit 0. Repeated because
// the window, if there is one, is short.
TEST(UpdnsdSignalTest, SigtermRightAfterFirstAnswerStopsCleanly) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    UpdnsDaemon daemon;
    std::string error;
    ASSERT_TRUE(daemon.Start({.wait_for_started_log = false, .poll_interval = 0ms}, &error))
        << error;
    ASSERT_TRUE(daemon.Stop(5000ms)) << "updnsd did not exit within 5 s of SIGTERM; its log:\n"
                                     << daemon.log();
    int status = daemon.process().status();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "updnsd stopped with " << DescribeWaitStatus(status) << "; its log:\n"
        << daemon.log();
  }
}

struct CheckRun {
  int status = -1;
  std::string out;
  std::string err;
};

CheckRun RunCheck(const TempDir& dir, const std::string& config_name, const std::string& text) {
  CheckRun run;
  std::filesystem::path config = dir.path() / config_name;
  WriteFile(config, text);
  Process process;
  std::string error;
  std::filesystem::path out = dir.path() / (config_name + ".out");
  std::filesystem::path err = dir.path() / (config_name + ".err");
  if (!process.Start({UPDNSD_PATH, "--config", config.string(), "--check"}, dir.path(), out, err,
                     &error)) {
    ADD_FAILURE() << error;
    return run;
  }
  if (!process.WaitExit(5000ms)) {
    ADD_FAILURE() << "updnsd --check did not exit within 5 s";
    process.Kill();
    return run;
  }
  run.status = process.status();
  run.out = ReadFile(out);
  run.err = ReadFile(err);
  return run;
}

TEST(UpdnsdCheckTest, BadConfigExits1NamingFileAndLine) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  CheckRun run = RunCheck(dir, "bad.yaml",
                          "server:\n"
                          "  listen: [\"127.0.0.1@5353\"]\n"
                          "  workers: 0\n"
                          "storage:\n"
                          "  path: db\n");
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 1)
      << DescribeWaitStatus(run.status);
  // "FILE:LINE: ..." with the path as given on the command line.
  std::string where = (dir.path() / "bad.yaml").string() + ":3";
  EXPECT_NE(run.err.find(where), std::string::npos) << "'" << where << "' not in: " << run.err;
}

// The `storage` and `zones` sections of a config for --check: a store in
// `dir` and test.example from its file.
std::string StoreAndTestZone(const TempDir& dir) {
  return "storage:\n  path: " + (dir.path() / "db").string() +
         "\nzones:\n  - name: test.example\n    file: " +
         (TestDataDir() / "test.example.zone").string() + "\n";
}

TEST(UpdnsdCheckTest, GoodConfigExits0Silently) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  CheckRun run = RunCheck(dir, "good.yaml",
                          "server:\n"
                          "  listen: [\"127.0.0.1@5353\"]\n"
                          "  workers: 2\n" +
                              StoreAndTestZone(dir));
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0)
      << DescribeWaitStatus(run.status) << "\n"
      << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "");
}

// The mailer opens libcurl only when it runs; --check opens it now.
TEST(UpdnsdCheckTest, MailConfigLoadsTheSmtpClient) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  CheckRun run = RunCheck(dir, "mail.yaml",
                          StoreAndTestZone(dir) +
                              "mail:\n"
                              "  smtp: smtp://127.0.0.1:25\n"
                              "  from: updns@test.example\n");
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0)
      << DescribeWaitStatus(run.status) << "\n"
      << run.err;
  EXPECT_EQ(run.err, "");
}

}  // namespace
}  // namespace updns::test
