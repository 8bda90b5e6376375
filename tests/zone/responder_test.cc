// The authoritative answer path (zone/responder.h): a zone imported into a
// real store, queries built by ldns, answers parsed back by ldns.
#include "zone/responder.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "storage/node.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "zone/zone_file.h"

// Every allocation of this test binary is counted, so that a test can check
// that Respond() allocates nothing.
namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace updns::zone {
namespace {

namespace fs = std::filesystem;

struct PktFree {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using Bytes = std::vector<uint8_t>;

const std::string kBigTxt = [] {
  std::string txt;
  for (char c : {'a', 'b', 'c', 'd'}) {
    txt += " \"";
    txt.append(250, c);
    txt += '"';
  }
  return txt;
}();

const std::string kExampleZone = R"($TTL 3600
$ORIGIN example.com.
@ 7200 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@ IN NS ns1
@ IN NS ns2.other.net.
@ IN MX 10 mail
@ IN MX 20 mx.other.net.
@ IN MX 30 NS1
mail IN A 192.0.2.25
ns1 IN A 192.0.2.1
ns1 IN AAAA 2001:db8::1
www IN A 192.0.2.10
www IN A 192.0.2.11
www IN AAAA 2001:db8::10
alias1 IN CNAME alias2
alias2 IN CNAME www
dangling IN CNAME nowhere
out IN CNAME www.other.net.
loop1 IN CNAME loop2
loop2 IN CNAME loop1
*.wild IN A 192.0.2.50
*.wild IN TXT "wild"
real.wild IN A 192.0.2.51
*.cw IN CNAME www
host.ent.deep IN A 192.0.2.60
sub IN NS ns.sub
sub IN NS ns1
sub IN NS ns.elsewhere.net.
sub IN DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
ns.sub IN A 192.0.2.70
ns.sub IN AAAA 2001:db8::70
_sip._udp IN SRV 10 5 5060 sipserver
sipserver IN A 192.0.2.80
big IN TXT)" + kBigTxt + "\n";

// A second zone whose SOA TTL is below its MINIMUM.
const std::string kOtherZone = R"($ORIGIN other.test.
@ 60 IN SOA ns hostmaster 1 7200 3600 1209600 300
@ 60 IN NS ns
ns 60 IN A 192.0.2.200
)";

const std::string kSoa =
    "example.com. 300 SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 "
    "300";

std::string Wire(const char* text) {
  std::unique_ptr<ldns_rdf, void (*)(ldns_rdf*)> rdf(ldns_dname_new_frm_str(text),
                                                     ldns_rdf_deep_free);
  EXPECT_NE(rdf, nullptr) << text;
  if (!rdf) return {};
  std::string wire(reinterpret_cast<const char*>(ldns_rdf_data(rdf.get())),
                   ldns_rdf_size(rdf.get()));
  for (char& c : wire)
    if (c >= 'A' && c <= 'Z') c += 32;
  return wire;
}

struct QueryOptions {
  bool edns = false;
  uint16_t payload = 1232;
  uint8_t version = 0;
  bool do_bit = false;
  uint16_t qclass = LDNS_RR_CLASS_IN;
  uint16_t id = 0xbeef;
};

Bytes MakeQuery(const char* name, uint16_t qtype, const QueryOptions& o = {}) {
  PktPtr pkt(ldns_pkt_query_new(ldns_dname_new_frm_str(name), static_cast<ldns_rr_type>(qtype),
                                static_cast<ldns_rr_class>(o.qclass), LDNS_RD));
  EXPECT_NE(pkt, nullptr);
  ldns_pkt_set_id(pkt.get(), o.id);
  if (o.edns) {
    ldns_pkt_set_edns_udp_size(pkt.get(), o.payload);
    ldns_pkt_set_edns_version(pkt.get(), o.version);
    ldns_pkt_set_edns_do(pkt.get(), o.do_bit);
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, pkt.get(), &size), LDNS_STATUS_OK);
  Bytes out(wire, wire + size);
  free(wire);
  return out;
}

std::string Text(char* owned) {
  std::string out = owned ? owned : "(null)";
  free(owned);
  return out;
}

// "owner ttl TYPE rdata...", as ldns prints the parts.
std::string RRText(const ldns_rr* rr) {
  std::string out = Text(ldns_rdf2str(ldns_rr_owner(rr)));
  out += ' ';
  out += std::to_string(ldns_rr_ttl(rr));
  out += ' ';
  out += Text(ldns_rr_type2str(ldns_rr_get_type(rr)));
  for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
    out += ' ';
    out += Text(ldns_rdf2str(ldns_rr_rdf(rr, i)));
  }
  return out;
}

std::vector<std::string> Section(const ldns_rr_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i)
    out.push_back(RRText(ldns_rr_list_rr(list, i)));
  return out;
}

// An expected RR is either its full text or, without a blank, its type.
void ExpectSection(const std::vector<std::string>& got, const std::vector<std::string>& want,
                   const char* section) {
  ASSERT_EQ(got.size(), want.size()) << section << ": " << testing::PrintToString(got);
  for (size_t i = 0; i < got.size(); ++i) {
    if (want[i].find(' ') == std::string::npos) {
      std::string type = got[i].substr(0, got[i].find(' ', got[i].find(' ') + 1));
      type = got[i].substr(type.size() + 1);
      type = type.substr(0, type.find(' '));
      EXPECT_EQ(type, want[i]) << section << " " << i << ": " << got[i];
    } else {
      EXPECT_EQ(got[i], want[i]) << section << " " << i;
    }
  }
}

class ResponderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/updns_responder_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    storage::Options options;
    options.path = (dir_ / "store").string();
    options.map_size = uint64_t{64} << 20;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    Import("example.com", kExampleZone);
    Import("other.test", kOtherZone);
    responder_ = Create({Wire("example.com."), Wire("other.test.")});
    ASSERT_NE(responder_, nullptr);
    ASSERT_TRUE(responder_->BeginBatch().ok());
  }
  void TearDown() override {
    if (responder_) responder_->EndBatch();
    responder_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  void Import(const char* zone, const std::string& text) {
    std::string path = (dir_ / (std::string(zone) + ".zone")).string();
    std::ofstream(path) << text;
    auto result = ImportZoneFile(*store_, zone, path);
    ASSERT_TRUE(result.ok()) << result.status().message();
  }

  std::unique_ptr<Responder> Create(std::vector<std::string> zones) {
    ResponderOptions options;
    options.zones = std::move(zones);
    auto responder = Responder::Create(*store_, options);
    EXPECT_TRUE(responder.ok()) << responder.status().message();
    return responder.ok() ? std::move(responder).value() : nullptr;
  }

  // The raw answer; empty when Respond() gave none.
  Bytes RespondRaw(const Bytes& query, Transport transport, Responder* responder = nullptr) {
    static uint8_t out[65536];
    size_t size = (responder ? responder : responder_.get())
                      ->Respond(query.data(), query.size(), transport, out, sizeof out);
    return Bytes(out, out + size);
  }
  PktPtr Respond(const Bytes& query, Transport transport, Responder* responder = nullptr) {
    Bytes answer = RespondRaw(query, transport, responder);
    EXPECT_FALSE(answer.empty());
    if (transport == Transport::kUdp) {
      EXPECT_LE(answer.size(), 1232u);
    }
    ldns_pkt* raw = nullptr;
    EXPECT_EQ(ldns_wire2pkt(&raw, answer.data(), answer.size()), LDNS_STATUS_OK);
    return PktPtr(raw);
  }

  fs::path dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Responder> responder_;
};

struct Case {
  const char* qname;
  uint16_t qtype;
  Transport transport;
  bool edns;
  // expected
  int rcode;
  bool aa;
  bool tc;
  std::vector<std::string> answer, authority, additional;
};

constexpr auto kUdp = Transport::kUdp;
constexpr auto kTcp = Transport::kTcp;
constexpr int kNoError = LDNS_RCODE_NOERROR, kNx = LDNS_RCODE_NXDOMAIN,
              kRefused = LDNS_RCODE_REFUSED;

const std::vector<std::string> kSubReferral = {
    "sub.example.com. 3600 NS ns.sub.example.com.",
    "sub.example.com. 3600 NS ns1.example.com.",
    "sub.example.com. 3600 NS ns.elsewhere.net.",
};
const std::vector<std::string> kSubGlue = {
    "ns.sub.example.com. 3600 A 192.0.2.70",
    "ns.sub.example.com. 3600 AAAA 2001:db8::70",
    "ns1.example.com. 3600 A 192.0.2.1",
    "ns1.example.com. 3600 AAAA 2001:db8::1",
};
const std::vector<std::string> kWww = {"www.example.com. 3600 A 192.0.2.10",
                                       "www.example.com. 3600 A 192.0.2.11"};

TEST_F(ResponderTest, AnswersTable) {
  const std::vector<Case> cases = {
      // Hits.
      {"www.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNoError, true, false, kWww, {}, {}},
      {"www.example.com.",
       LDNS_RR_TYPE_AAAA,
       kTcp,
       true,
       kNoError,
       true,
       false,
       {"www.example.com. 3600 AAAA 2001:db8::10"},
       {},
       {}},
      {"example.com.",
       LDNS_RR_TYPE_SOA,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"example.com. 7200 SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 "
        "1209600 300"},
       {},
       {}},
      {"example.com.",
       LDNS_RR_TYPE_NS,
       kUdp,
       true,
       kNoError,
       true,
       false,
       {"example.com. 3600 NS ns1.example.com.", "example.com. 3600 NS ns2.other.net."},
       {},
       {"ns1.example.com. 3600 A 192.0.2.1", "ns1.example.com. 3600 AAAA 2001:db8::1"}},
      // MX: in-zone exchange in the additional section, the other not.
      {"example.com.",
       LDNS_RR_TYPE_MX,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"example.com. 3600 MX 10 mail.example.com.", "example.com. 3600 MX 20 mx.other.net.",
        "example.com. 3600 MX 30 NS1.example.com."},
       {},
       {"mail.example.com. 3600 A 192.0.2.25", "NS1.example.com. 3600 A 192.0.2.1",
        "NS1.example.com. 3600 AAAA 2001:db8::1"}},
      {"_sip._udp.example.com.",
       LDNS_RR_TYPE_SRV,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"_sip._udp.example.com. 3600 SRV 10 5 5060 sipserver.example.com."},
       {},
       {"sipserver.example.com. 3600 A 192.0.2.80"}},
      {"host.ent.deep.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"host.ent.deep.example.com. 3600 A 192.0.2.60"},
       {},
       {}},
      // NODATA, NXDOMAIN, empty non-terminals.
      {"www.example.com.", LDNS_RR_TYPE_MX, kUdp, false, kNoError, true, false, {}, {kSoa}, {}},
      {"nx.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNx, true, false, {}, {kSoa}, {}},
      {"a.b.nx.example.com.", LDNS_RR_TYPE_A, kUdp, true, kNx, true, false, {}, {kSoa}, {}},
      {"deep.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNoError, true, false, {}, {kSoa}, {}},
      {"ent.deep.example.com.",
       LDNS_RR_TYPE_TXT,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {},
       {kSoa},
       {}},
      {"x.ent.deep.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNx, true, false, {}, {kSoa}, {}},
      {"nx.other.test.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNx,
       true,
       false,
       {},
       {"other.test. 60 SOA ns.other.test. hostmaster.other.test. 1 7200 3600 1209600 300"},
       {}},
      // Wildcards (RFC 4592).
      {"foo.wild.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"foo.wild.example.com. 3600 A 192.0.2.50"},
       {},
       {}},
      {"a.b.wild.example.com.",
       LDNS_RR_TYPE_TXT,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"a.b.wild.example.com. 3600 TXT \"wild\""},
       {},
       {}},
      {"foo.wild.example.com.",
       LDNS_RR_TYPE_MX,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {},
       {kSoa},
       {}},
      {"*.wild.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"*.wild.example.com. 3600 A 192.0.2.50"},
       {},
       {}},
      {"real.wild.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"real.wild.example.com. 3600 A 192.0.2.51"},
       {},
       {}},
      {"real.wild.example.com.",
       LDNS_RR_TYPE_TXT,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {},
       {kSoa},
       {}},
      // The closest encloser real.wild exists: *.wild does not apply below it.
      {"x.real.wild.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNx, true, false, {}, {kSoa}, {}},
      {"x.*.wild.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNx, true, false, {}, {kSoa}, {}},
      {"wild.example.com.", LDNS_RR_TYPE_A, kUdp, false, kNoError, true, false, {}, {kSoa}, {}},
      {"x.cw.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"x.cw.example.com. 3600 CNAME www.example.com.", kWww[0], kWww[1]},
       {},
       {}},
      // CNAMEs.
      {"alias1.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"alias1.example.com. 3600 CNAME alias2.example.com.",
        "alias2.example.com. 3600 CNAME www.example.com.", kWww[0], kWww[1]},
       {},
       {}},
      {"alias1.example.com.",
       LDNS_RR_TYPE_CNAME,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"alias1.example.com. 3600 CNAME alias2.example.com."},
       {},
       {}},
      {"alias1.example.com.",
       LDNS_RR_TYPE_MX,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"alias1.example.com. 3600 CNAME alias2.example.com.",
        "alias2.example.com. 3600 CNAME www.example.com."},
       {kSoa},
       {}},
      {"dangling.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNx,
       true,
       false,
       {"dangling.example.com. 3600 CNAME nowhere.example.com."},
       {kSoa},
       {}},
      {"out.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"out.example.com. 3600 CNAME www.other.net."},
       {},
       {}},
      {"loop1.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"loop1.example.com. 3600 CNAME loop2.example.com.",
        "loop2.example.com. 3600 CNAME loop1.example.com."},
       {},
       {}},
      // Referrals: at the cut, below it, for the glue; DS is the parent's.
      {"sub.example.com.",
       LDNS_RR_TYPE_NS,
       kUdp,
       false,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      {"sub.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       true,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      {"www.sub.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      {"a.b.c.sub.example.com.",
       LDNS_RR_TYPE_MX,
       kTcp,
       false,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      {"ns.sub.example.com.",
       LDNS_RR_TYPE_A,
       kUdp,
       false,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      {"sub.example.com.",
       LDNS_RR_TYPE_ANY,
       kTcp,
       false,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      {"sub.example.com.",
       LDNS_RR_TYPE_DS,
       kUdp,
       false,
       kNoError,
       true,
       false,
       {"sub.example.com. 3600 DS 60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118"},
       {},
       {}},
      {"x.sub.example.com.",
       LDNS_RR_TYPE_DS,
       kUdp,
       false,
       kNoError,
       false,
       false,
       {},
       kSubReferral,
       kSubGlue},
      // Not ours.
      {"www.example.org.", LDNS_RR_TYPE_A, kUdp, false, kRefused, false, false, {}, {}, {}},
      {"com.", LDNS_RR_TYPE_A, kUdp, true, kRefused, false, false, {}, {}, {}},
      // Size: TC over UDP without EDNS (512), full with EDNS or over TCP.
      {"big.example.com.", LDNS_RR_TYPE_TXT, kUdp, false, kNoError, true, true, {}, {}, {}},
      {"big.example.com.", LDNS_RR_TYPE_TXT, kUdp, true, kNoError, true, false, {"TXT"}, {}, {}},
      {"big.example.com.", LDNS_RR_TYPE_TXT, kTcp, false, kNoError, true, false, {"TXT"}, {}, {}},
      // ANY (RFC 8482): one RRset over UDP, all over TCP.
      {"www.example.com.", LDNS_RR_TYPE_ANY, kUdp, false, kNoError, true, false, kWww, {}, {}},
      {"www.example.com.",
       LDNS_RR_TYPE_ANY,
       kTcp,
       false,
       kNoError,
       true,
       false,
       {kWww[0], kWww[1], "www.example.com. 3600 AAAA 2001:db8::10"},
       {},
       {}},
      {"example.com.",
       LDNS_RR_TYPE_ANY,
       kTcp,
       true,
       kNoError,
       true,
       false,
       {"NS", "NS", "SOA", "MX", "MX", "MX"},
       {},
       {"ns1.example.com. 3600 A 192.0.2.1", "ns1.example.com. 3600 AAAA 2001:db8::1",
        "mail.example.com. 3600 A 192.0.2.25"}},
      {"big.example.com.", LDNS_RR_TYPE_ANY, kUdp, false, kNoError, true, true, {}, {}, {}},
      {"nx.example.com.", LDNS_RR_TYPE_ANY, kUdp, false, kNx, true, false, {}, {kSoa}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.qname) + " " +
                 Text(ldns_rr_type2str(static_cast<ldns_rr_type>(c.qtype))) +
                 (c.transport == kTcp ? " tcp" : " udp") + (c.edns ? " edns" : ""));
    QueryOptions options;
    options.edns = c.edns;
    Bytes query = MakeQuery(c.qname, c.qtype, options);
    PktPtr pkt = Respond(query, c.transport);
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), c.rcode);
    EXPECT_EQ(ldns_pkt_aa(pkt.get()), c.aa);
    EXPECT_EQ(ldns_pkt_tc(pkt.get()), c.tc);
    EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
    EXPECT_TRUE(ldns_pkt_rd(pkt.get()));
    EXPECT_FALSE(ldns_pkt_ra(pkt.get()));
    EXPECT_EQ(ldns_pkt_id(pkt.get()), 0xbeef);
    EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
    EXPECT_EQ(ldns_pkt_edns(pkt.get()), c.edns);
    if (c.edns) {
      EXPECT_EQ(ldns_pkt_edns_udp_size(pkt.get()), 1232);
      EXPECT_EQ(ldns_pkt_edns_version(pkt.get()), 0);
      EXPECT_EQ(ldns_pkt_edns_extended_rcode(pkt.get()), 0);
    }
    ExpectSection(Section(ldns_pkt_answer(pkt.get())), c.answer, "answer");
    ExpectSection(Section(ldns_pkt_authority(pkt.get())), c.authority, "authority");
    ExpectSection(Section(ldns_pkt_additional(pkt.get())), c.additional, "additional");
  }
}

TEST_F(ResponderTest, PreservesQuestionCase) {
  Bytes query = MakeQuery("WwW.ExAmPlE.CoM.", LDNS_RR_TYPE_A);
  Bytes answer = RespondRaw(query, kUdp);
  ASSERT_GT(answer.size(), query.size());
  // The question comes back byte for byte.
  EXPECT_TRUE(std::equal(query.begin() + 12, query.end(), answer.begin() + 12));
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&raw, answer.data(), answer.size()), LDNS_STATUS_OK);
  PktPtr pkt(raw);
  ExpectSection(Section(ldns_pkt_answer(pkt.get())),
                {"WwW.ExAmPlE.CoM. 3600 A 192.0.2.10", "WwW.ExAmPlE.CoM. 3600 A 192.0.2.11"},
                "answer");
  // Wildcard answers carry the QNAME as asked.
  pkt = Respond(MakeQuery("FoO.WiLd.example.COM.", LDNS_RR_TYPE_A), kUdp);
  ExpectSection(Section(ldns_pkt_answer(pkt.get())), {"FoO.WiLd.example.COM. 3600 A 192.0.2.50"},
                "answer");
}

TEST_F(ResponderTest, HeaderErrors) {
  // FORMERR: no question.
  Bytes none = {0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
  PktPtr pkt = Respond(none, kUdp);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_FORMERR);
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 0x1234);
  EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 0);
  // FORMERR: two OPT records; the question is echoed.
  Bytes two_opts = MakeQuery("www.example.com.", LDNS_RR_TYPE_A, {.edns = true});
  Bytes opt(two_opts.end() - 11, two_opts.end());
  two_opts.insert(two_opts.end(), opt.begin(), opt.end());
  two_opts[11] = 2;
  pkt = Respond(two_opts, kUdp);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_FORMERR);
  EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
  // FORMERR: OPT as a question.
  pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_OPT), kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_FORMERR);

  // Not plain queries: handed to the server's control path (TSIG, UPDATE,
  // transfers) untouched.
  for (uint16_t type : {LDNS_RR_TYPE_AXFR, LDNS_RR_TYPE_IXFR}) {
    Bytes transfer = MakeQuery("example.com.", static_cast<ldns_rr_type>(type));
    EXPECT_EQ(responder_->Respond(transfer.data(), transfer.size(), kTcp, nullptr, 0),
              Responder::kHandOff);
  }
  Bytes update = MakeQuery("example.com.", LDNS_RR_TYPE_SOA);
  update[2] = static_cast<uint8_t>((update[2] & 0x87) | (5 << 3));
  EXPECT_EQ(responder_->Respond(update.data(), update.size(), kUdp, nullptr, 0), Responder::kHandOff);
  Bytes signed_query = MakeQuery("www.example.com.", LDNS_RR_TYPE_A);
  const uint8_t tsig_rr[] = {0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0};  // root owner, TSIG, ANY, rdlength 0
  signed_query.insert(signed_query.end(), tsig_rr, tsig_rr + sizeof(tsig_rr));
  signed_query[11] = 1;
  EXPECT_EQ(responder_->Respond(signed_query.data(), signed_query.size(), kUdp, nullptr, 0),
            Responder::kHandOff);
  // AXFR of another class or EDNS version is answered here (REFUSED, BADVERS).
  Bytes chaos_axfr = MakeQuery("example.com.", LDNS_RR_TYPE_AXFR);
  chaos_axfr[chaos_axfr.size() - 1] = 3;  // class CH
  pkt = Respond(chaos_axfr, kTcp);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);

  // NOTIMP: opcode STATUS (2), opcode echoed.
  Bytes status = MakeQuery("www.example.com.", LDNS_RR_TYPE_A);
  status[2] = static_cast<uint8_t>((status[2] & 0x87) | (2 << 3));
  pkt = Respond(status, kUdp);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOTIMPL);
  EXPECT_EQ(ldns_pkt_get_opcode(pkt.get()), LDNS_PACKET_STATUS);
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);

  // BADVERS: EDNS version 1. The extended RCODE 16 is 1 in the OPT, 0 in the header.
  pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_A, {.edns = true, .version = 1}), kUdp);
  ASSERT_NE(pkt, nullptr);
  ASSERT_TRUE(ldns_pkt_edns(pkt.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), 0);
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(pkt.get()), 1);
  EXPECT_EQ(ldns_pkt_edns_version(pkt.get()), 0);
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
  EXPECT_FALSE(ldns_pkt_aa(pkt.get()));

  // REFUSED: class CH.
  pkt = Respond(MakeQuery("version.bind.", LDNS_RR_TYPE_TXT, {.qclass = LDNS_RR_CLASS_CH}), kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);
  pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_A, {.qclass = LDNS_RR_CLASS_CH}), kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);

  // Responses and runts get no answer at all.
  Bytes response = MakeQuery("www.example.com.", LDNS_RR_TYPE_A);
  response[2] |= 0x80;
  EXPECT_TRUE(RespondRaw(response, kUdp).empty());
  EXPECT_TRUE(RespondRaw(Bytes(none.begin(), none.begin() + 11), kUdp).empty());
}

TEST_F(ResponderTest, Edns) {
  // DO is echoed (RFC 3225 §3); our payload size is advertised.
  PktPtr pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_A,
                                 {.edns = true, .payload = 4096, .do_bit = true}),
                       kUdp);
  ASSERT_TRUE(ldns_pkt_edns(pkt.get()));
  EXPECT_TRUE(ldns_pkt_edns_do(pkt.get()));
  EXPECT_EQ(ldns_pkt_edns_udp_size(pkt.get()), 1232);
  pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_A, {.edns = true}), kUdp);
  ASSERT_TRUE(ldns_pkt_edns(pkt.get()));
  EXPECT_FALSE(ldns_pkt_edns_do(pkt.get()));
  // A payload below 512 counts as 512: the big TXT is still truncated, and
  // the OPT is still there.
  pkt = Respond(MakeQuery("big.example.com.", LDNS_RR_TYPE_TXT, {.edns = true, .payload = 100}),
                kUdp);
  EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
  EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
  Bytes raw = RespondRaw(
      MakeQuery("big.example.com.", LDNS_RR_TYPE_TXT, {.edns = true, .payload = 600}), kUdp);
  EXPECT_LE(raw.size(), 600u);
  // NXDOMAIN with EDNS keeps the OPT and the SOA.
  pkt = Respond(MakeQuery("nx.example.com.", LDNS_RR_TYPE_A, {.edns = true}), kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(ldns_pkt_edns(pkt.get()));
  ExpectSection(Section(ldns_pkt_authority(pkt.get())), {kSoa}, "authority");
}

TEST_F(ResponderTest, NegativeAnswersCarryLongSoas) {
  // MNAME and RNAME of 248 bytes each: an SOA rdata of 516 bytes.
  std::string mname, rname;
  for (int i = 0; i < 3; ++i) {
    mname += std::string(60, char('a' + i)) + ".";
    rname += std::string(60, char('p' + i)) + ".";
  }
  mname += std::string(53, 'm') + ".long.test.";
  rname += std::string(53, 'r') + ".long.test.";
  Import("long.test", "$ORIGIN long.test.\n@ 600 IN SOA " + mname + " " + rname +
                          " 1 2 3 4 5\n@ IN NS ns\nns IN A 192.0.2.9\n");
  auto responder = Create({Wire("long.test.")});
  ASSERT_NE(responder, nullptr);
  ASSERT_TRUE(responder->BeginBatch().ok());
  PktPtr pkt =
      Respond(MakeQuery("nx.long.test.", LDNS_RR_TYPE_A, {.edns = true}), kUdp, responder.get());
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
  ExpectSection(Section(ldns_pkt_authority(pkt.get())),
                {"long.test. 5 SOA " + mname + " " + rname + " 1 2 3 4 5"}, "authority");
  // Even compressed it needs more than 512 bytes: TC without EDNS.
  pkt = Respond(MakeQuery("nx.long.test.", LDNS_RR_TYPE_A), kUdp, responder.get());
  EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
  EXPECT_EQ(ldns_pkt_nscount(pkt.get()), 0);
  responder->EndBatch();
}

// Writes `value` as the node of `owner` in zone `zone_id`, and bumps the generation.
void PutNode(storage::Store& store, uint32_t zone_id, const char* owner, const std::string& value) {
  auto txn = store.BeginWrite();
  ASSERT_TRUE(txn.ok());
  storage::NodeKey key;
  ASSERT_TRUE(key.Assign(zone_id, Wire(owner)));
  ASSERT_TRUE(txn->Put(storage::Table::kNodes, key.view(), value).ok());
  ASSERT_TRUE(storage::BumpGeneration(*txn).ok());
  ASSERT_TRUE(txn->Commit().ok());
}

TEST_F(ResponderTest, DamagedStoreDataFailsSafely) {
  uint32_t zone_id = 0;
  {
    auto txn = store_->BeginRead();
    ASSERT_TRUE(txn.ok());
    auto zone = storage::ReadZoneRecord(*txn, Wire("example.com."));
    ASSERT_TRUE(zone.ok());
    zone_id = zone->zone_id;
  }
  responder_->EndBatch();
  // A node whose bytes do not check out: SERVFAIL, not a crash.
  PutNode(*store_, zone_id, "www.example.com.", std::string("\x01\x01\x00\x01", 4));
  ASSERT_TRUE(responder_->BeginBatch().ok());
  PktPtr pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_A), kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
  responder_->EndBatch();

  // An apex SOA RRset whose first RR is too short to hold an SOA (the
  // RRset as a whole is long enough): the zone is left out, not misread.
  storage::NodeBuilder apex;
  apex.Add(LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, 60, "abc");
  apex.Add(LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, 60, std::string(30, '\0'));
  apex.Add(LDNS_RR_TYPE_NS, LDNS_RR_CLASS_IN, 60, Wire("ns1.example.com."));
  auto value = apex.Encode();
  ASSERT_TRUE(value.ok());
  PutNode(*store_, zone_id, "example.com.", *value);
  ASSERT_TRUE(responder_->BeginBatch().ok());
  EXPECT_EQ(responder_->zone_index().missing(), std::vector<std::string>{Wire("example.com.")});
  pkt = Respond(MakeQuery("nx.example.com.", LDNS_RR_TYPE_A), kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);
}

TEST_F(ResponderTest, ServesOnlyConfiguredZones) {
  auto other_only = Create({Wire("other.test.")});
  ASSERT_NE(other_only, nullptr);
  ASSERT_TRUE(other_only->BeginBatch().ok());
  PktPtr pkt = Respond(MakeQuery("www.example.com.", LDNS_RR_TYPE_A), kUdp, other_only.get());
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);
  EXPECT_FALSE(ldns_pkt_aa(pkt.get()));
  pkt = Respond(MakeQuery("ns.other.test.", LDNS_RR_TYPE_A), kUdp, other_only.get());
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 1);
  other_only->EndBatch();

  // Configured but not in the store: listed as missing, refused.
  auto with_missing = Create({Wire("absent.example."), Wire("example.com.")});
  ASSERT_NE(with_missing, nullptr);
  EXPECT_EQ(with_missing->zone_index().missing(),
            std::vector<std::string>{Wire("absent.example.")});
  EXPECT_EQ(with_missing->zone_index().zones().size(), 1u);
  ASSERT_TRUE(with_missing->BeginBatch().ok());
  pkt = Respond(MakeQuery("x.absent.example.", LDNS_RR_TYPE_A), kUdp, with_missing.get());
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);
  with_missing->EndBatch();
}

TEST_F(ResponderTest, SeesUpdatesAfterNextBatch) {
  Bytes query = MakeQuery("new.example.com.", LDNS_RR_TYPE_A);
  EXPECT_EQ(ldns_pkt_get_rcode(Respond(query, kUdp).get()), LDNS_RCODE_NXDOMAIN);
  uint64_t generation = responder_->generation();
  responder_->EndBatch();

  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    auto zone = storage::ReadZoneRecord(*txn, Wire("example.com."));
    ASSERT_TRUE(zone.ok());
    storage::NodeKey key;
    ASSERT_TRUE(key.Assign(zone->zone_id, Wire("new.example.com.")));
    storage::NodeBuilder node;
    node.Add(LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 120, std::string("\xc0\x00\x02\x63", 4));
    auto value = node.Encode();
    ASSERT_TRUE(value.ok());
    ASSERT_TRUE(txn->Put(storage::Table::kNodes, key.view(), *value).ok());
    // A new SOA MINIMUM too: the cached negative TTL must follow.
    storage::NodeKey apex;
    ASSERT_TRUE(apex.Assign(zone->zone_id, Wire("example.com.")));
    storage::NodeBuilder apex_node;
    ASSERT_TRUE(apex_node.Load(*txn->Get(storage::Table::kNodes, apex.view())));
    std::string soa = Wire("ns1.example.com.") + Wire("hostmaster.example.com.");
    for (uint32_t v : {2024010150u, 7200u, 3600u, 1209600u, 42u}) soa += storage::EncodeU32(v);
    apex_node.RemoveRRset(LDNS_RR_TYPE_SOA);
    apex_node.Add(LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, 7200, soa);
    auto apex_value = apex_node.Encode();
    ASSERT_TRUE(apex_value.ok());
    ASSERT_TRUE(txn->Put(storage::Table::kNodes, apex.view(), *apex_value).ok());
    ASSERT_TRUE(storage::BumpGeneration(*txn).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }

  ASSERT_TRUE(responder_->BeginBatch().ok());
  EXPECT_EQ(responder_->generation(), generation + 1);
  PktPtr pkt = Respond(query, kUdp);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
  ExpectSection(Section(ldns_pkt_answer(pkt.get())), {"new.example.com. 120 A 192.0.2.99"},
                "answer");
  pkt = Respond(MakeQuery("nx.example.com.", LDNS_RR_TYPE_A), kUdp);
  ExpectSection(
      Section(ldns_pkt_authority(pkt.get())),
      {"example.com. 42 SOA ns1.example.com. hostmaster.example.com. 2024010150 7200 3600 "
       "1209600 42"},
      "authority");
}

TEST_F(ResponderTest, ZoneImportedAfterCreateIsServedAfterNextBatch) {
  auto responder = Create({Wire("late.test.")});
  ASSERT_NE(responder, nullptr);
  ASSERT_TRUE(responder->BeginBatch().ok());
  PktPtr pkt = Respond(MakeQuery("late.test.", LDNS_RR_TYPE_SOA), kUdp, responder.get());
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_REFUSED);
  responder->EndBatch();
  Import("late.test",
         "$ORIGIN late.test.\n@ IN SOA ns h 1 2 3 4 5\n@ IN NS ns\nns IN A 192.0.2.9\n");
  ASSERT_TRUE(responder->BeginBatch().ok());
  pkt = Respond(MakeQuery("late.test.", LDNS_RR_TYPE_SOA), kUdp, responder.get());
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 1);
  responder->EndBatch();
}

TEST_F(ResponderTest, MangledQueriesNeverBreakTheAnswer) {
  // Random byte flips, cuts and extensions of real queries: every answer
  // Respond() gives must parse, and fit the transport.
  std::mt19937 rng(12345);
  const std::vector<Bytes> seeds = {
      MakeQuery("www.example.com.", LDNS_RR_TYPE_A, {.edns = true}),
      MakeQuery("alias1.example.com.", LDNS_RR_TYPE_A),
      MakeQuery("sub.example.com.", LDNS_RR_TYPE_NS, {.edns = true, .do_bit = true}),
      MakeQuery("foo.wild.example.com.", LDNS_RR_TYPE_ANY),
      MakeQuery("big.example.com.", LDNS_RR_TYPE_TXT),
  };
  uint8_t out[65536];
  for (int i = 0; i < 20000; ++i) {
    Bytes q = seeds[i % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:
          q[rng() % q.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          q[rng() % q.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 2:
          q.resize(rng() % (q.size() + 1));
          break;
        case 3:
          q.push_back(static_cast<uint8_t>(rng()));
          break;
      }
      if (q.empty()) q.push_back(0);
    }
    Transport transport = rng() % 2 ? kUdp : kTcp;
    size_t size = responder_->Respond(q.data(), q.size(), transport, out, sizeof out);
    if (size == 0 || size == Responder::kHandOff) continue;  // the control path's to check
    ASSERT_GE(size, 12u);
    if (transport == kUdp) {
      ASSERT_LE(size, 1232u);
    }
    ldns_pkt* raw = nullptr;
    ASSERT_EQ(ldns_wire2pkt(&raw, out, size), LDNS_STATUS_OK) << "iteration " << i;
    ldns_pkt_free(raw);
  }
}

TEST_F(ResponderTest, RespondDoesNotAllocate) {
  const std::vector<std::pair<const char*, Bytes>> queries = {
      {"hit", MakeQuery("www.example.com.", LDNS_RR_TYPE_A)},
      {"hit with additional", MakeQuery("example.com.", LDNS_RR_TYPE_MX, {.edns = true})},
      {"nxdomain", MakeQuery("nx.example.com.", LDNS_RR_TYPE_A)},
      {"wildcard", MakeQuery("foo.wild.example.com.", LDNS_RR_TYPE_A)},
      {"referral", MakeQuery("www.sub.example.com.", LDNS_RR_TYPE_A, {.edns = true})},
      {"cname chain", MakeQuery("alias1.example.com.", LDNS_RR_TYPE_A)},
      {"truncated", MakeQuery("big.example.com.", LDNS_RR_TYPE_TXT)},
  };
  uint8_t out[65536];
  for (const auto& [what, query] : queries) {
    ASSERT_GT(responder_->Respond(query.data(), query.size(), kUdp, out, sizeof out),
              0u);  // warm-up
    size_t before = g_allocations.load();
    size_t size = responder_->Respond(query.data(), query.size(), kUdp, out, sizeof out);
    size_t after = g_allocations.load();
    EXPECT_GT(size, 0u) << what;
    EXPECT_EQ(after - before, 0u) << what;
  }
  // The counter does count.
  size_t before = g_allocations.load();
  auto* p = new std::string(100, 'x');
  EXPECT_GT(g_allocations.load(), before);
  delete p;
}

}  // namespace
}  // namespace updns::zone
