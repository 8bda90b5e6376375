// AXFR and IXFR answer streams (zone/transfer.h): requests built by ldns,
// every message parsed back by ldns, IXFR applied to the old zone by a small
// applier here and compared with the new zone's AXFR.
#include "zone/transfer.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "storage/schema.h"
#include "storage/store.h"
#include "zone/journal.h"
#include "zone/name.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"
#include "zone/zone_file.h"

// Every allocation of this binary is counted, with its size, so that a test
// can check what a transfer holds on the heap.
namespace {
std::atomic<int64_t> g_allocations{0};
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_bytes{0};

void* Counted(size_t size) {
  void* p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  int64_t live =
      g_live_bytes.fetch_add(int64_t(malloc_usable_size(p))) + int64_t(malloc_usable_size(p));
  int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
  }
  return p;
}
void Uncounted(void* p) {
  if (!p) return;
  g_live_bytes.fetch_sub(int64_t(malloc_usable_size(p)));
  std::free(p);
}
}  // namespace

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t size) { return Counted(size); }
void* operator new[](size_t size) { return Counted(size); }
void operator delete(void* p) noexcept { Uncounted(p); }
void operator delete[](void* p) noexcept { Uncounted(p); }
void operator delete(void* p, size_t) noexcept { Uncounted(p); }
void operator delete[](void* p, size_t) noexcept { Uncounted(p); }
#pragma GCC diagnostic pop

namespace updns::zone {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

struct PktFree {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
struct RrFree {
  void operator()(ldns_rr* p) const noexcept { ldns_rr_free(p); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;

// Uses most kinds of records: compressible rdata names (NS, MX, CNAME, SOA,
// SRV is not compressed), a delegation with glue, a wildcard, an unknown type
// and an RRset too big to share a small message.
const std::string kZone = [] {
  std::string big = " \"" + std::string(250, 'x') + "\"";
  return std::string(R"($ORIGIN dyn.example.
@ 3600 IN SOA ns1 hostmaster 10 7200 3600 1209600 300
@ 3600 IN NS ns1
@ 3600 IN NS ns2.other.example.
@ 3600 IN MX 10 mail
@ 3600 IN TXT "v=spf1 -all"
mail 300 IN A 192.0.2.25
ns1 3600 IN A 192.0.2.1
ns1 3600 IN AAAA 2001:db8::1
www 60 IN A 192.0.2.10
www 60 IN A 192.0.2.11
alias 300 IN CNAME www
_sip._udp 300 IN SRV 10 5 5060 sip
sip 300 IN A 192.0.2.80
*.wild 300 IN A 192.0.2.20
sub 3600 IN NS ns.sub
sub 3600 IN NS ns1
ns.sub 3600 IN A 192.0.2.30
odd 300 IN TYPE65534 \# 3 abcdef
big 300 IN TXT)") +
         big + big + big + "\n";
}();

std::string Wire(std::string_view text) {
  auto wire = LowercaseWireNameFromText(text);
  EXPECT_TRUE(wire.ok()) << text;
  return wire.ok() ? *wire : std::string();
}
std::string V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{char(a), char(b), char(c), char(d)};
}

std::string Text(char* owned) {
  std::string out = owned ? owned : "(null)";
  free(owned);
  return out;
}
// One RR as ldns prints it, in canonical form (lowercase names), one line.
std::string RRText(const ldns_rr* rr) {
  RrPtr copy(ldns_rr_clone(rr));
  ldns_rr2canonical(copy.get());
  std::string text = Text(ldns_rr2str(copy.get()));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}
std::string RRFromText(const char* text) {
  ldns_rr* raw = nullptr;
  EXPECT_EQ(ldns_rr_new_frm_str(&raw, text, 0, nullptr, nullptr), LDNS_STATUS_OK) << text;
  RrPtr rr(raw);
  return rr ? RRText(rr.get()) : std::string();
}
uint32_t SoaSerial(const ldns_rr* rr) { return ldns_rdf2native_int32(ldns_rr_rdf(rr, 2)); }

// The zone's RRs as ldns reads the master file, SOA apart.
struct ZoneContent {
  std::string soa;
  std::multiset<std::string> rrs;
};
ZoneContent ParseZoneText(const std::string& text) {
  ZoneContent zone;
  FILE* f = fmemopen(const_cast<char*>(text.data()), text.size(), "r");
  EXPECT_NE(f, nullptr);
  ldns_zone* parsed = nullptr;
  int line = 0;
  ldns_status st = ldns_zone_new_frm_fp_l(&parsed, f, nullptr, 3600, LDNS_RR_CLASS_IN, &line);
  std::fclose(f);
  EXPECT_EQ(st, LDNS_STATUS_OK) << ldns_get_errorstr_by_id(st) << " line " << line;
  if (st != LDNS_STATUS_OK) return zone;
  zone.soa = RRText(ldns_zone_soa(parsed));
  ldns_rr_list* rrs = ldns_zone_rrs(parsed);
  for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); ++i)
    zone.rrs.insert(RRText(ldns_rr_list_rr(rrs, i)));
  ldns_zone_deep_free(parsed);
  return zone;
}

struct RequestOptions {
  std::optional<uint32_t> client_serial;
  bool edns = false;
  uint8_t edns_version = 0;
  uint16_t id = 0x4242;
};
Bytes MakeRequest(const char* zone, uint16_t qtype, const RequestOptions& o = {}) {
  PktPtr pkt(ldns_pkt_query_new(ldns_dname_new_frm_str(zone), static_cast<ldns_rr_type>(qtype),
                                LDNS_RR_CLASS_IN, 0));
  ldns_pkt_set_id(pkt.get(), o.id);
  if (o.client_serial) {
    // Names in the SOA come out compressed against the question.
    std::string soa = std::string(zone) + " 3600 IN SOA ns1." + zone + " hostmaster." + zone + " " +
                      std::to_string(*o.client_serial) + " 7200 3600 1209600 300";
    ldns_rr* rr = nullptr;
    EXPECT_EQ(ldns_rr_new_frm_str(&rr, soa.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK);
    ldns_pkt_push_rr(pkt.get(), LDNS_SECTION_AUTHORITY, rr);
  }
  if (o.edns) {
    ldns_pkt_set_edns_udp_size(pkt.get(), 1232);
    ldns_pkt_set_edns_version(pkt.get(), o.edns_version);
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, pkt.get(), &size), LDNS_STATUS_OK);
  Bytes out(wire, wire + size);
  free(wire);
  return out;
}

TransferRequest Parse(const Bytes& packet) {
  auto request = ParseTransferRequest(packet.data(), packet.size());
  EXPECT_TRUE(request.ok()) << request.status().message();
  return request.ok() ? *request : TransferRequest{};
}

// A whole transfer, every message parsed by ldns and checked.
struct Transfer {
  TransferFormat format = TransferFormat::kAxfr;
  std::vector<std::string> answers;   // in order, canonical text
  std::vector<uint32_t> soa_serials;  // of each SOA among the answers, in order
  size_t messages = 0;
  size_t largest = 0;
  size_t bytes = 0;
  size_t uncompressed = 0;  // what the answers would take without compression
};

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path("/tmp") /
           ("updns_transfer_test_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    storage::Options options;
    options.path = (dir_ / "store").string();
    options.map_size = uint64_t{1} << 30;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void Import(const std::string& zone, const std::string& text, const JournalLimits& limits = {}) {
    std::string path = (dir_ / (zone + ".zone")).string();
    std::ofstream(path, std::ios::binary) << text;
    auto result = ImportZoneFile(*store_, zone, path, false, 60, limits);
    ASSERT_TRUE(result.ok()) << result.status().message();
  }

  template <typename Fn>
  void Commit(Fn change, const JournalLimits& limits = {}) {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    change(*txn);
    Status s = FinishZoneChanges(*txn, {Wire("dyn.example")}, limits);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(txn->Commit().ok());
  }
  void SetHost(storage::WriteTxn& txn, const char* host, const std::string& v4,
               const std::string& v6 = "", uint32_t ttl = 60) {
    Status s = WriteHostAddresses(txn, Wire("dyn.example"), Wire(host), v4, v6, ttl);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  uint32_t Serial() {
    auto txn = store_->BeginRead();
    auto serial = ReadSerial(*txn, Wire("dyn.example"));
    EXPECT_TRUE(serial.ok());
    return serial.ok() ? *serial : 0;
  }

  // Runs a transfer to the end, checking every message.
  Transfer Run(const Bytes& packet, size_t capacity = 65535, size_t reserve = 0) {
    Transfer t;
    TransferRequest request = Parse(packet);
    TransferOptions options;
    options.reserve = reserve;
    auto stream = TransferStream::Start(*store_, request, options);
    EXPECT_TRUE(stream.ok()) << stream.status().message();
    if (!stream.ok()) return t;
    t.format = (*stream)->format();
    std::vector<uint8_t> buffer(capacity);
    while (size_t size = (*stream)->Next(buffer.data(), buffer.size())) {
      EXPECT_LE(size, std::min<size_t>(capacity, 65535) - reserve);
      t.largest = std::max(t.largest, size);
      t.bytes += size;
      ldns_pkt* raw = nullptr;
      ldns_status st = ldns_wire2pkt(&raw, buffer.data(), size);
      EXPECT_EQ(st, LDNS_STATUS_OK)
          << "message " << t.messages << ": " << ldns_get_errorstr_by_id(st);
      PktPtr pkt(raw);
      if (!pkt) break;
      EXPECT_EQ(ldns_pkt_id(pkt.get()), request.id);
      EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
      EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
      EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
      EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
      EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), t.messages == 0 ? 1 : 0);
      EXPECT_EQ(ldns_pkt_nscount(pkt.get()), 0);
      EXPECT_EQ(ldns_pkt_edns(pkt.get()), request.has_edns);
      if (t.messages == 0) {
        ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
        EXPECT_EQ(uint16_t(ldns_rr_get_type(q)), request.qtype);
      }
      ldns_rr_list* answers = ldns_pkt_answer(pkt.get());
      EXPECT_GT(ldns_rr_list_rr_count(answers), 0u);
      for (size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
        ldns_rr* rr = ldns_rr_list_rr(answers, i);
        t.answers.push_back(RRText(rr));
        t.uncompressed += ldns_rr_uncompressed_size(rr);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA) t.soa_serials.push_back(SoaSerial(rr));
      }
      ++t.messages;
      if (t.messages > 100000) break;
    }
    EXPECT_TRUE((*stream)->status().ok()) << (*stream)->status().message();
    EXPECT_EQ((*stream)->records(), t.answers.size());
    return t;
  }

  // The zone as AXFR gives it, checked for AXFR's shape.
  ZoneContent Axfr(size_t capacity = 65535) {
    Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR), capacity);
    ZoneContent zone;
    EXPECT_EQ(t.format, TransferFormat::kAxfr);
    EXPECT_GE(t.answers.size(), 2u);
    if (t.answers.size() < 2) return zone;
    EXPECT_EQ(t.answers.front(), t.answers.back());
    EXPECT_EQ(t.soa_serials.size(), 2u);  // the SOA only at both ends
    zone.soa = t.answers.front();
    zone.rrs.insert(t.answers.begin() + 1, t.answers.end() - 1);
    return zone;
  }

  fs::path dir_;
  std::unique_ptr<storage::Store> store_;
};

// ---- Requests ----

TEST_F(TransferTest, ParsesRequestsBuiltByLdns) {
  TransferRequest axfr = Parse(MakeRequest("Dyn.Example.", LDNS_RR_TYPE_AXFR, {.id = 7}));
  EXPECT_EQ(axfr.qtype, type::kAXFR);
  EXPECT_EQ(axfr.id, 7);
  EXPECT_EQ(axfr.zone, Wire("dyn.example"));
  EXPECT_EQ(axfr.question.substr(0, 5), std::string("\3Dyn", 4) + '\7');  // case kept
  EXPECT_FALSE(axfr.client_serial.has_value());
  EXPECT_FALSE(axfr.has_edns);

  TransferRequest ixfr = Parse(
      MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = 4000000000u, .edns = true}));
  EXPECT_EQ(ixfr.qtype, type::kIXFR);
  ASSERT_TRUE(ixfr.client_serial.has_value());
  EXPECT_EQ(*ixfr.client_serial, 4000000000u);
  EXPECT_TRUE(ixfr.has_edns);
}

TEST_F(TransferTest, RejectsWhatIsNotAWellFormedTransferRequest) {
  auto status = [](const Bytes& p) { return ParseTransferRequest(p.data(), p.size()).status(); };
  EXPECT_TRUE(status(MakeRequest("dyn.example.", LDNS_RR_TYPE_A)).IsNotFound());
  EXPECT_TRUE(status(MakeRequest("dyn.example.", LDNS_RR_TYPE_SOA)).IsNotFound());
  // IXFR without the client's SOA (RFC 1995 §3), AXFR with one.
  EXPECT_TRUE(status(MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR)).IsInvalid());
  EXPECT_TRUE(
      status(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR, {.client_serial = 1})).IsInvalid());
  // The SOA of another zone.
  {
    Bytes p = MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = 1});
    PktPtr pkt;
    ldns_pkt* raw = nullptr;
    ASSERT_EQ(ldns_wire2pkt(&raw, p.data(), p.size()), LDNS_STATUS_OK);
    pkt.reset(raw);
    ldns_rr* soa = ldns_rr_list_rr(ldns_pkt_authority(pkt.get()), 0);
    ldns_rdf* owner = ldns_rr_owner(soa);
    ldns_rr_set_owner(soa, ldns_dname_new_frm_str("other.example."));
    ldns_rdf_deep_free(owner);
    uint8_t* wire = nullptr;
    size_t size = 0;
    ASSERT_EQ(ldns_pkt2wire(&wire, pkt.get(), &size), LDNS_STATUS_OK);
    Bytes other(wire, wire + size);
    free(wire);
    EXPECT_TRUE(status(other).IsInvalid());
  }
  EXPECT_EQ(
      status(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR, {.edns = true, .edns_version = 1}))
          .code(),
      Status::Code::kUnsupported);
  // A response is never a request.
  Bytes response = MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR);
  response[2] |= 0x80;
  EXPECT_TRUE(status(response).IsNotFound());

  // Every truncation of a valid IXFR request fails cleanly.
  Bytes full = MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = 9, .edns = true});
  ASSERT_TRUE(ParseTransferRequest(full.data(), full.size()).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + n);
    EXPECT_FALSE(ParseTransferRequest(cut.data(), cut.size()).ok()) << n;
  }
  // A SOA rdlength that does not match its names and numbers.
  // A SOA whose rdlength does not match its names and numbers: one byte
  // more, taken from an extra byte at the end (the SOA is the last record).
  Bytes bad = MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = 9});
  bad.push_back(0);
  {
    size_t pos = 12;
    while (bad[pos] != 0) pos += 1 + bad[pos];
    pos += 1 + 4;  // root label, qtype, qclass
    ASSERT_EQ(bad[pos] & 0xC0, 0xC0) << "ldns compresses the SOA's owner";
    pos += 2 + 8;  // owner pointer, type, class, ttl
    uint16_t rdlength = uint16_t((bad[pos] << 8 | bad[pos + 1]) + 1);
    bad[pos] = uint8_t(rdlength >> 8);
    bad[pos + 1] = uint8_t(rdlength);
  }
  EXPECT_TRUE(status(bad).IsInvalid()) << status(bad).message();
}

// ---- AXFR ----

TEST_F(TransferTest, AxfrHasEveryRecordOnceBetweenTwoSoas) {
  Import("dyn.example", kZone);
  // A host without addresses keeps an empty node: nothing to transfer.
  Commit([&](storage::WriteTxn& txn) {
    SetHost(txn, "empty.dyn.example", "");
    SetHost(txn, "h1.dyn.example", V4(198, 51, 100, 1), std::string(16, '\x20'));
  });
  ZoneContent want = ParseZoneText(kZone);
  want.rrs.insert(RRFromText("h1.dyn.example. 60 IN A 198.51.100.1"));
  want.rrs.insert(RRFromText("h1.dyn.example. 60 IN AAAA 2020:2020:2020:2020:2020:2020:2020:2020"));

  for (size_t capacity : {size_t{65535}, size_t{900}}) {
    SCOPED_TRACE(capacity);
    Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR), capacity);
    ASSERT_GE(t.answers.size(), 2u);
    EXPECT_EQ(t.soa_serials, (std::vector<uint32_t>{11, 11}));
    EXPECT_EQ(t.answers.front(), t.answers.back());
    std::multiset<std::string> got(t.answers.begin() + 1, t.answers.end() - 1);
    EXPECT_EQ(got, want.rrs);  // a multiset: each exactly once
    if (capacity == 900) {
      EXPECT_GE(t.messages, 2u);
    } else {
      EXPECT_EQ(t.messages, 1u);
    }
  }
}

TEST_F(TransferTest, AxfrKeepsTheReserveAndEdns) {
  Import("dyn.example", kZone);
  Commit([&](storage::WriteTxn& txn) {
    for (int i = 0; i < 300; ++i) {
      std::string host = "host" + std::to_string(i) + ".dyn.example";
      SetHost(txn, host.c_str(), V4(10, 0, uint8_t(i >> 8), uint8_t(i)));
    }
  });
  ZoneContent small = Axfr();
  for (size_t reserve : {size_t{0}, size_t{100}, size_t{300}}) {
    SCOPED_TRACE(reserve);
    Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR, {.edns = true}), 1200, reserve);
    EXPECT_GT(t.messages, 5u);
    EXPECT_LE(t.largest, 1200 - reserve);
    // Close to full: the reserve is what is left over, not much more.
    EXPECT_GT(t.largest, 1200 - reserve - 100);
    std::multiset<std::string> got(t.answers.begin() + 1, t.answers.end() - 1);
    EXPECT_EQ(got, small.rrs);
  }
  // Names are compressed: the answers take much less than their
  // uncompressed size (a host RR: 24 bytes instead of 34).
  Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR));
  EXPECT_LT(t.bytes, t.uncompressed * 8 / 10) << t.bytes << " of " << t.uncompressed;
}

TEST_F(TransferTest, TooSmallABufferOrAHugeRecordEndsWithAnError) {
  Import("dyn.example", kZone);
  TransferRequest request = Parse(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR));
  TransferOptions options;
  options.reserve = 200;
  auto stream = TransferStream::Start(*store_, request, options);
  ASSERT_TRUE(stream.ok());
  uint8_t buffer[600];
  EXPECT_EQ((*stream)->Next(buffer, sizeof buffer), 0u);  // 400 left: below 512
  EXPECT_TRUE((*stream)->status().IsInvalid());

  // The big TXT (3 x 251 bytes) does not fit in 512: an error answer.
  options.reserve = 0;
  stream = TransferStream::Start(*store_, request, options);
  ASSERT_TRUE(stream.ok());
  size_t size = 0, messages = 0, last = 0;
  while ((size = (*stream)->Next(buffer, 512)) != 0) {
    last = size;
    ++messages;
    ldns_pkt* raw = nullptr;
    ASSERT_EQ(ldns_wire2pkt(&raw, buffer, size), LDNS_STATUS_OK);
    PktPtr pkt(raw);
    if (!(*stream)->status().ok()) {
      EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
      EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
    }
  }
  EXPECT_GT(messages, 0u);
  EXPECT_GT(last, 0u);
  EXPECT_FALSE((*stream)->status().ok());
  EXPECT_NE((*stream)->status().message().find("does not fit"), std::string_view::npos)
      << (*stream)->status().message();
}

TEST_F(TransferTest, UnknownZoneIsNotFound) {
  Import("dyn.example", kZone);
  auto stream =
      TransferStream::Start(*store_, Parse(MakeRequest("nope.example.", LDNS_RR_TYPE_AXFR)));
  EXPECT_TRUE(stream.status().IsNotFound()) << stream.status().message();
}

// ---- IXFR ----

// Applies an IXFR answer (RFC 1995 §4) to `zone`, which is at `serial`.
// Returns false (with a test failure) when the answer does not apply.
bool ApplyIxfr(const Transfer& t, ZoneContent& zone, uint32_t serial) {
  const auto& a = t.answers;
  EXPECT_GE(a.size(), 1u);
  if (a.empty()) return false;
  const std::string current = a.front();
  auto is_soa = [](const std::string& rr) { return rr.find("\tSOA\t") != std::string::npos; };
  if (a.size() == 1) {
    zone.soa = current;
    return true;
  }
  EXPECT_TRUE(is_soa(a[1])) << "not the incremental format: " << a[1];
  EXPECT_EQ(a.back(), current);
  size_t i = 1, soa_index = 1;  // soa_serials[0] is the leading current SOA
  while (i + 1 < a.size()) {
    // Old SOA, deletions, new SOA, additions.
    EXPECT_TRUE(is_soa(a[i]));
    EXPECT_EQ(t.soa_serials[soa_index], serial) << "a gap in the chain";
    for (++i; i < a.size() && !is_soa(a[i]); ++i) {
      auto it = zone.rrs.find(a[i]);
      EXPECT_NE(it, zone.rrs.end()) << "deletes what is not there: " << a[i];
      if (it == zone.rrs.end()) return false;
      zone.rrs.erase(it);
    }
    EXPECT_LT(i, a.size());
    serial = t.soa_serials[++soa_index];
    zone.soa = a[i];
    for (++i; i < a.size() && !is_soa(a[i]); ++i) {
      EXPECT_EQ(zone.rrs.count(a[i]), 0u) << "adds what is there: " << a[i];
      zone.rrs.insert(a[i]);
    }
    ++soa_index;
    if (i + 1 == a.size()) break;  // the closing current SOA
  }
  EXPECT_EQ(zone.soa, current);
  return true;
}

TEST_F(TransferTest, IxfrChainRebuildsTheNewZone) {
  Import("dyn.example", kZone);
  ZoneContent old_zone = Axfr();
  const uint32_t old_serial = Serial();
  Commit([&](storage::WriteTxn& txn) {
    SetHost(txn, "h1.dyn.example", V4(198, 51, 100, 1));
    SetHost(txn, "h2.dyn.example", V4(198, 51, 100, 2), std::string(16, '\x01'));
  });
  ZoneContent middle_zone = Axfr();
  const uint32_t middle_serial = Serial();
  Commit([&](storage::WriteTxn& txn) {
    SetHost(txn, "h1.dyn.example", V4(198, 51, 100, 11));  // changed
    ASSERT_TRUE(RemoveHostAddresses(txn, Wire("dyn.example"), Wire("h2.dyn.example")).ok());
    SetHost(txn, "www.dyn.example", V4(192, 0, 2, 10), "", 120);  // TTL change, .11 gone
  });
  Commit([&](storage::WriteTxn& txn) {
    EditableNode apex;
    ASSERT_TRUE(LoadNodeForEdit(txn, Wire("dyn.example"), Wire("dyn.example"), apex).ok());
    std::string ns2 = Wire("ns2.other.example");
    ASSERT_TRUE(apex.node.RemoveRR(type::kNS, ns2));
    apex.node.Add(type::kMX, kClassIN, 3600, std::string("\0\x14", 2) + Wire("mx.other.example"));
    ASSERT_TRUE(StoreNode(txn, apex).ok());
  });
  // And a zone file import with its own differences.
  std::string edited = kZone;
  edited.replace(edited.find("mail 300 IN A 192.0.2.25"), 24, "mail 300 IN A 192.0.2.26");
  edited.replace(edited.find("SOA ns1 hostmaster 10"), 21, "SOA ns1 hostmaster 99");
  edited += "new 300 IN TXT \"from the file\"\n";
  Import("dyn.example", edited);
  ZoneContent new_zone = Axfr();
  ASSERT_EQ(Serial(), 99u);

  for (size_t capacity : {size_t{65535}, size_t{600}}) {
    SCOPED_TRACE(capacity);
    Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = old_serial}),
                     capacity);
    EXPECT_EQ(t.format, TransferFormat::kIncremental);
    ZoneContent zone = old_zone;
    ASSERT_TRUE(ApplyIxfr(t, zone, old_serial));
    EXPECT_EQ(zone.soa, new_zone.soa);
    EXPECT_EQ(zone.rrs, new_zone.rrs);
    // The leading SOA, then old/new per entry (4 entries), then the closing one.
    EXPECT_EQ(t.soa_serials.size(), 2u + 2 * 4);
    EXPECT_EQ(t.soa_serials.front(), 99u);
    EXPECT_EQ(t.soa_serials[1], old_serial);
  }
  // From a serial in the middle of the chain.
  Transfer t =
      Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = middle_serial}));
  EXPECT_EQ(t.format, TransferFormat::kIncremental);
  ASSERT_TRUE(ApplyIxfr(t, middle_zone, middle_serial));
  EXPECT_EQ(middle_zone.rrs, new_zone.rrs);
}

TEST_F(TransferTest, IxfrFallsBackToAxfrPastTheJournal) {
  Import("dyn.example", kZone);
  JournalLimits two;
  two.max_entries = 2;
  std::vector<uint32_t> serials = {Serial()};
  for (int i = 0; i < 4; ++i) {
    Commit(
        [&](storage::WriteTxn& txn) {
          SetHost(txn, "h1.dyn.example", V4(198, 51, 100, uint8_t(i)));
        },
        two);
    serials.push_back(Serial());
  }
  ZoneContent now = Axfr();
  // serials[0] and [1] are trimmed away; [2] still starts a chain.
  for (int i : {0, 1}) {
    SCOPED_TRACE(i);
    Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = serials[i]}));
    EXPECT_EQ(t.format, TransferFormat::kAxfr);
    ASSERT_GE(t.answers.size(), 3u);
    EXPECT_EQ(t.soa_serials, (std::vector<uint32_t>{serials[4], serials[4]}));
    EXPECT_EQ(t.answers.front(), now.soa);
    EXPECT_EQ(t.answers.back(), now.soa);
    std::multiset<std::string> got(t.answers.begin() + 1, t.answers.end() - 1);
    EXPECT_EQ(got, now.rrs);
  }
  Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = serials[2]}));
  EXPECT_EQ(t.format, TransferFormat::kIncremental);
  EXPECT_EQ(t.soa_serials, (std::vector<uint32_t>{serials[4], serials[2], serials[3], serials[3],
                                                  serials[4], serials[4]}));
  // A serial the zone never had: no chain reaches it.
  t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = serials[0] - 5}));
  EXPECT_EQ(t.format, TransferFormat::kAxfr);
}

TEST_F(TransferTest, IxfrFromCurrentOrNewerSerialIsOneSoa) {
  Import("dyn.example", kZone);
  Commit([&](storage::WriteTxn& txn) { SetHost(txn, "h1.dyn.example", V4(198, 51, 100, 1)); });
  const uint32_t serial = Serial();
  for (uint32_t client : {serial, serial + 5}) {
    SCOPED_TRACE(client);
    Transfer t = Run(
        MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = client, .edns = true}));
    EXPECT_EQ(t.format, TransferFormat::kUpToDate);
    EXPECT_EQ(t.messages, 1u);
    ASSERT_EQ(t.answers.size(), 1u);
    EXPECT_EQ(t.soa_serials, std::vector<uint32_t>{serial});
  }
}

TEST_F(TransferTest, IxfrOverUdpIsSoaWhenCurrentElseTruncated) {
  Import("dyn.example", kZone);
  const uint32_t serial = Serial();
  auto txn = store_->BeginRead();
  ASSERT_TRUE(txn.ok());
  uint8_t out[1232];
  for (bool edns : {false, true}) {
    for (uint32_t client : {serial, serial - 1}) {
      SCOPED_TRACE(std::to_string(edns) + " " + std::to_string(client));
      TransferRequest request = Parse(
          MakeRequest("dyn.example.", LDNS_RR_TYPE_IXFR, {.client_serial = client, .edns = edns}));
      TransferOptions options;
      options.reserve = 100;
      size_t size = AnswerIxfrOverUdp(*txn, request, options, out, 512);
      ASSERT_GT(size, 0u);
      EXPECT_LE(size, 412u);
      ldns_pkt* raw = nullptr;
      ASSERT_EQ(ldns_wire2pkt(&raw, out, size), LDNS_STATUS_OK);
      PktPtr pkt(raw);
      EXPECT_EQ(ldns_pkt_id(pkt.get()), request.id);
      EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
      EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
      EXPECT_EQ(ldns_pkt_edns(pkt.get()), edns);
      EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NOERROR);
      if (client == serial) {
        EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
        ASSERT_EQ(ldns_pkt_ancount(pkt.get()), 1);
        ldns_rr* soa = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
        EXPECT_EQ(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
        EXPECT_EQ(SoaSerial(soa), serial);
      } else {
        EXPECT_TRUE(ldns_pkt_tc(pkt.get()));
        EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 0);
      }
    }
  }
}

// ---- A big zone ----

TEST_F(TransferTest, AxfrOfOneHundredThousandHostsUsesBoundedMemory) {
  constexpr int kHosts = 100000;
  std::string text =
      "$ORIGIN dyn.example.\n@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
      "@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\n";
  for (int i = 0; i < kHosts; ++i) {
    text += "host" + std::to_string(i) + " 60 IN A 10." + std::to_string(i >> 16) + "." +
            std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "\n";
  }
  Import("dyn.example", text);
  text.clear();
  text.shrink_to_fit();

  TransferRequest request = Parse(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR));
  static uint8_t buffer[65535];
  std::vector<size_t> sizes;
  sizes.reserve(10000);
  const auto start = std::chrono::steady_clock::now();
  const int64_t before_start = g_live_bytes.load();
  const int64_t allocations_before_start = g_allocations.load();
  auto stream = TransferStream::Start(*store_, request);
  ASSERT_TRUE(stream.ok());
  ASSERT_GT(g_allocations.load(), allocations_before_start)
      << "the counting operator new is in use";
  EXPECT_LT(g_live_bytes.load() - before_start, 16 * 1024) << "a stream's own state";

  // From here on nothing of ours may allocate, and the heap as a whole
  // (LMDB's own mallocs included) must not grow with the zone: nodes are
  // read from the map, one message at a time.
  const int64_t allocations = g_allocations.load();
  const int64_t live = g_live_bytes.load();
  g_peak_bytes.store(live);
  const size_t heap_before = mallinfo2().uordblks;
  size_t heap_peak = heap_before;
  size_t records = 0, size = 0;
  while ((size = (*stream)->Next(buffer, sizeof buffer)) != 0 && sizes.size() < sizes.capacity()) {
    sizes.push_back(size);
    records += size_t(buffer[6] << 8 | buffer[7]);
    heap_peak = std::max(heap_peak, mallinfo2().uordblks);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(g_allocations.load(), allocations) << "Next() allocated";
  EXPECT_EQ(g_peak_bytes.load(), live) << "the C++ heap grew during the transfer";
  EXPECT_LT(heap_peak - heap_before, size_t{64} * 1024) << "the heap grew during the transfer";
  EXPECT_LT(seconds, 10.0);
  ASSERT_TRUE((*stream)->status().ok()) << (*stream)->status().message();
  EXPECT_EQ(records, size_t{kHosts} + 4);  // hosts, NS, ns1 A, the SOA twice
  EXPECT_EQ((*stream)->records(), records);
  EXPECT_GT(sizes.size(), 10u);
  for (size_t i = 0; i + 1 < sizes.size(); ++i)
    EXPECT_GT(sizes[i], sizeof buffer - 100) << "messages are filled";
  std::printf("AXFR of %d hosts: %zu messages, %zu records, %.3f s\n", kHosts, sizes.size(),
              records, seconds);
  stream = Result<std::unique_ptr<TransferStream>>(Status::NotFound("done"));

  // The same transfer through ldns: every host exactly once.
  Transfer t = Run(MakeRequest("dyn.example.", LDNS_RR_TYPE_AXFR));
  ASSERT_EQ(t.answers.size(), size_t{kHosts} + 4);
  std::set<std::string> unique(t.answers.begin() + 1, t.answers.end() - 1);
  EXPECT_EQ(unique.size(), size_t{kHosts} + 2);
  EXPECT_EQ(unique.count(RRFromText("host99999.dyn.example. 60 IN A 10.1.134.159")), 1u);
}

}  // namespace
}  // namespace updns::zone
