// The query parser and the message writer (zone/wire.h), cross-checked
// against ldns.
#include "zone/wire.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/ldns_wire.h"

namespace updns::zone {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using Bytes = std::vector<uint8_t>;

using test::Wire;  // through ldns

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c += 32;
  return s;
}

struct QuerySpec {
  const char* name;
  uint16_t qtype = LDNS_RR_TYPE_A;
  uint16_t qclass = LDNS_RR_CLASS_IN;
  uint16_t id = 0x1234;
  bool edns = false;
  uint16_t payload = 4096;
  uint8_t version = 0;
  bool do_bit = false;
};

Bytes ToWire(const ldns_pkt* pkt) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, pkt, &size), LDNS_STATUS_OK);
  Bytes out(wire, wire + size);
  free(wire);
  return out;
}

Bytes LdnsQuery(const QuerySpec& spec) {
  PktPtr pkt(ldns_pkt_query_new(ldns_dname_new_frm_str(spec.name),
                                static_cast<ldns_rr_type>(spec.qtype),
                                static_cast<ldns_rr_class>(spec.qclass), LDNS_RD));
  EXPECT_NE(pkt, nullptr);
  ldns_pkt_set_id(pkt.get(), spec.id);
  if (spec.edns) {
    ldns_pkt_set_edns_udp_size(pkt.get(), spec.payload);
    ldns_pkt_set_edns_version(pkt.get(), spec.version);
    ldns_pkt_set_edns_do(pkt.get(), spec.do_bit);
  }
  return ToWire(pkt.get());
}

// A hand-made message, for what ldns will not produce.
class Builder {
 public:
  Builder& Header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
    for (uint16_t v : {id, flags, qd, an, ns, ar}) U16(v);
    return *this;
  }
  Builder& Raw(std::string_view bytes) {
    b_.insert(b_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  Builder& U16(uint16_t v) {
    b_.push_back(static_cast<uint8_t>(v >> 8));
    b_.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  Builder& U32(uint32_t v) { return U16(v >> 16).U16(v & 0xffff); }
  Builder& Question(std::string_view name, uint16_t qtype = 1) {
    return Raw(name).U16(qtype).U16(1);
  }
  // An OPT record; `rdata` holds the options.
  Builder& Opt(uint16_t payload = 1232, uint32_t ttl = 0, std::string_view rdata = {},
               std::string_view owner = std::string_view("\0", 1)) {
    return Raw(owner)
        .U16(41)
        .U16(payload)
        .U32(ttl)
        .U16(static_cast<uint16_t>(rdata.size()))
        .Raw(rdata);
  }
  const Bytes& bytes() const { return b_; }

 private:
  Bytes b_;
};

ParseOutcome Parse(const Bytes& packet, Query& q) {
  return ParseQuery(packet.data(), packet.size(), q);
}
ParseOutcome Parse(const Bytes& packet) {
  Query q;
  return Parse(packet, q);
}

// ---- ParseQuery ----

TEST(ParseQueryTest, AgreesWithLdns) {
  const std::vector<QuerySpec> specs = {
      {"www.example.com."},
      {"WwW.ExAmPlE.CoM.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, 0xffff},
      {".", LDNS_RR_TYPE_NS, LDNS_RR_CLASS_IN, 0},
      {"a.b.c.d.e.f.g.example.", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH, 7},
      {"_sip._udp.Example.", LDNS_RR_TYPE_SRV, LDNS_RR_CLASS_IN, 42, true, 1232},
      {"host.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_IN, 9, true, 512, 0, true},
      {"x.example.", LDNS_RR_TYPE_MX, LDNS_RR_CLASS_IN, 1, true, 65535, 1, false},
      {"\\000\\.\\255.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 2, true, 100, 2, true},
  };
  for (const QuerySpec& spec : specs) {
    SCOPED_TRACE(spec.name);
    Bytes wire = LdnsQuery(spec);
    ldns_pkt* raw = nullptr;
    ASSERT_EQ(ldns_wire2pkt(&raw, wire.data(), wire.size()), LDNS_STATUS_OK);
    PktPtr pkt(raw);

    Query q;
    ASSERT_EQ(Parse(wire, q), ParseOutcome::kOk);
    const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
    const ldns_rdf* owner = ldns_rr_owner(question);
    std::string owner_wire(reinterpret_cast<const char*>(ldns_rdf_data(owner)),
                           ldns_rdf_size(owner));
    EXPECT_EQ(q.qname_view(), Lower(owner_wire));
    EXPECT_EQ(q.label_count, ldns_dname_label_count(owner));
    for (size_t i = 0; i < q.label_count; ++i) {
      // Each offset points at a label's length byte; they tile the name.
      size_t at = q.label_offsets[i];
      size_t next = i + 1 < q.label_count ? q.label_offsets[i + 1] : q.qname_size - 1u;
      EXPECT_EQ(at + 1 + q.qname[at], next);
    }
    EXPECT_EQ(q.id, ldns_pkt_id(pkt.get()));
    EXPECT_EQ(q.opcode, 0);
    EXPECT_EQ(q.flags & 0x0100, 0x0100);  // RD as sent
    EXPECT_EQ(q.qtype, ldns_rr_get_type(question));
    EXPECT_EQ(q.qclass, ldns_rr_get_class(question));
    // The question verbatim, case kept.
    EXPECT_EQ(q.question, std::string_view(reinterpret_cast<const char*>(wire.data()) + 12,
                                           owner_wire.size() + 4));
    EXPECT_EQ(q.has_edns, ldns_pkt_edns(pkt.get()));
    EXPECT_EQ(q.has_edns, spec.edns);
    if (spec.edns) {
      EXPECT_EQ(q.edns_payload, ldns_pkt_edns_udp_size(pkt.get()));
      EXPECT_EQ(q.edns_version, ldns_pkt_edns_version(pkt.get()));
      EXPECT_EQ(q.edns_do, ldns_pkt_edns_do(pkt.get()));
      EXPECT_EQ(q.edns_payload, spec.payload);
      EXPECT_EQ(q.edns_version, spec.version);
      EXPECT_EQ(q.edns_do, spec.do_bit);
    }
  }
}

TEST(ParseQueryTest, ResetsEdnsStateBetweenQueries) {
  Query q;
  ASSERT_EQ(Parse(LdnsQuery({"a.example.", 1, 1, 1, true, 4096, 0, true}), q), ParseOutcome::kOk);
  EXPECT_TRUE(q.has_edns);
  ASSERT_EQ(Parse(LdnsQuery({"b.example."}), q), ParseOutcome::kOk);
  EXPECT_FALSE(q.has_edns);
  EXPECT_FALSE(q.edns_do);
  EXPECT_EQ(q.qname_view(), Wire("b.example."));
}

TEST(ParseQueryTest, AcceptsOptionsAndOtherAdditionalRecords) {
  // NSID request and a client cookie, tiling the rdata exactly.
  std::string options(
      "\x00\x03\x00\x00"
      "\x00\x0a\x00\x08"
      "abcdefgh",
      16);
  Builder b;
  b.Header(1, 0, 1, 0, 0, 2).Question(Wire("example.")).Opt(1232, 0x00008000, options);
  // A second, non-OPT record owned by a compressed name (e.g. a TSIG).
  b.Raw("\xc0\x0c").U16(250).U16(255).U32(0).U16(3).Raw("xyz");
  Query q;
  ASSERT_EQ(Parse(b.bytes(), q), ParseOutcome::kOk);
  EXPECT_TRUE(q.has_edns);
  EXPECT_TRUE(q.edns_do);
  EXPECT_EQ(q.edns_payload, 1232);
}

TEST(ParseQueryTest, DropsWhatDeservesNoAnswer) {
  Bytes good = LdnsQuery({"example."});
  for (size_t size = 0; size < kHeaderSize; ++size) {
    Bytes short_packet(good.begin(), good.begin() + size);
    EXPECT_EQ(Parse(short_packet), ParseOutcome::kDrop) << size;
  }
  Bytes response = good;
  response[2] |= 0x80;  // QR
  EXPECT_EQ(Parse(response), ParseOutcome::kDrop);
}

TEST(ParseQueryTest, QuestionCount) {
  Builder none;
  none.Header(1, 0, 0, 0, 0, 0);
  Query q;
  EXPECT_EQ(Parse(none.bytes(), q), ParseOutcome::kFormErr);
  EXPECT_TRUE(q.question.empty());
  Builder two;
  two.Header(1, 0, 2, 0, 0, 0).Question(Wire("a.example.")).Question(Wire("b.example."));
  EXPECT_EQ(Parse(two.bytes(), q), ParseOutcome::kFormErr);
  EXPECT_TRUE(q.question.empty());
}

TEST(ParseQueryTest, MalformedQuestions) {
  struct Case {
    const char* why;
    std::string question;  // QNAME + QTYPE + QCLASS (or less)
  };
  std::string long_name;
  for (int i = 0; i < 4; ++i) long_name += std::string("\x3f") + std::string(63, 'a');
  long_name += '\0';  // 4 * 64 + 1 = 257 bytes
  std::string tail("\x00\x01\x00\x01", 4);
  const std::vector<Case> cases = {
      {"label of 64", std::string("\x40") + std::string(64, 'a') + std::string("\0", 1) + tail},
      {"extended label 0x40", std::string("\x41"
                                          "a\x00",
                                          3) +
                                  tail},
      {"extended label 0x80", std::string("\x81"
                                          "a\x00",
                                          3) +
                                  tail},
      {"compression pointer", std::string("\x01"
                                          "a\xc0\x0c",
                                          4) +
                                  tail},
      {"name over 255", long_name + tail},
      {"no root label", std::string("\x07"
                                    "example",
                                    8)},
      {"label past the end", std::string("\x07"
                                         "exa",
                                         4)},
      {"no qtype", Wire("example.")},
      {"half a qclass", Wire("example.") + std::string("\x00\x01\x00", 3)},
      {"empty", ""},
  };
  for (const Case& c : cases) {
    Builder b;
    b.Header(1, 0, 1, 0, 0, 0).Raw(c.question);
    Query q;
    EXPECT_EQ(Parse(b.bytes(), q), ParseOutcome::kFormErr) << c.why;
    EXPECT_TRUE(q.question.empty()) << c.why;
  }
  // The longest legal name (255 bytes) parses.
  std::string max_name;
  for (int i = 0; i < 3; ++i) max_name += std::string("\x3f") + std::string(63, 'a');
  max_name += std::string("\x3d") + std::string(61, 'b') + std::string("\0", 1);
  ASSERT_EQ(max_name.size(), 255u);
  Builder b;
  b.Header(1, 0, 1, 0, 0, 0).Question(max_name);
  Query q;
  ASSERT_EQ(Parse(b.bytes(), q), ParseOutcome::kOk);
  EXPECT_EQ(q.qname_size, 255);
  EXPECT_EQ(q.label_count, 4);
}

TEST(ParseQueryTest, MalformedAdditionalSection) {
  const std::string q = Wire("example.");
  auto parse = [&](uint16_t arcount, std::string_view additional, uint16_t an = 0) {
    Builder b;
    b.Header(1, 0, 1, an, 0, arcount).Question(q).Raw(additional);
    Query query;
    ParseOutcome outcome = Parse(b.bytes(), query);
    if (outcome == ParseOutcome::kFormErr) {
      EXPECT_FALSE(query.question.empty());
    }
    return outcome;
  };
  auto opt = [](uint16_t payload = 1232, std::string_view rdata = {},
                std::string_view owner = std::string_view("\0", 1)) {
    Builder b;
    b.Opt(payload, 0, rdata, owner);
    return std::string(b.bytes().begin(), b.bytes().end());
  };
  EXPECT_EQ(parse(1, opt()), ParseOutcome::kOk);
  std::string full = opt(1232, std::string("\x00\x0a\x00\x02"
                                           "ab",
                                           6));
  EXPECT_EQ(parse(1, full), ParseOutcome::kOk);
  for (size_t cut = 0; cut < full.size(); ++cut)
    EXPECT_EQ(parse(1, full.substr(0, cut)), ParseOutcome::kFormErr) << "OPT cut at " << cut;
  EXPECT_EQ(parse(2, opt()), ParseOutcome::kFormErr) << "arcount beyond the packet";
  EXPECT_EQ(parse(2, opt() + opt()), ParseOutcome::kFormErr) << "two OPTs";
  EXPECT_EQ(parse(1, opt(1232, {}, Wire("example."))), ParseOutcome::kFormErr) << "OPT owner";
  EXPECT_EQ(parse(1, opt(1232, {}, "\xc0\x0c")), ParseOutcome::kFormErr) << "OPT owner pointer";
  EXPECT_EQ(parse(1, opt(1232, std::string("\x00\x0a\x00\x03"
                                           "ab",
                                           6))),
            ParseOutcome::kFormErr)
      << "option longer than the rdata";
  EXPECT_EQ(parse(1, opt(1232, std::string("\x00\x0a\x00", 3))), ParseOutcome::kFormErr)
      << "half an option header";
  EXPECT_EQ(parse(1, opt(1232, std::string("\x00\x0a\x00\x00\x00", 5))), ParseOutcome::kFormErr)
      << "a stray byte after the options";
  // A record whose owner is a pointer loop.
  EXPECT_EQ(parse(1, std::string("\xc0\x1d\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", 12)),
            ParseOutcome::kFormErr);
  // Answers in a query.
  EXPECT_EQ(parse(0, "", 1), ParseOutcome::kFormErr);
}

TEST(ParseQueryTest, UnknownOpcodes) {
  for (uint8_t opcode : {1, 2, 3, 4, 5, 6, 15}) {
    Builder b;
    b.Header(1, static_cast<uint16_t>(opcode << 11), 1, 0, 0, 0).Question(Wire("example."));
    Query q;
    EXPECT_EQ(Parse(b.bytes(), q), ParseOutcome::kNotImp) << int(opcode);
    EXPECT_EQ(q.opcode, opcode);
    EXPECT_EQ(q.question.size(), Wire("example.").size() + 4);
  }
}

// ---- ReadName ----

TEST(ReadNameTest, ReadsCompressedNames) {
  Builder b;
  b.Header(0, 0, 0, 0, 0, 0);
  b.Raw(Wire("Example.COM."));  // 12..24
  b.Raw("\x03WwW\xc0\x0c");     // 25: www -> example.com
  b.Raw(
      "\x01"
      "a\xc0\x19");   // 31: a -> www.example.com (pointer to a name with a pointer)
  b.Raw("\xc0\x1f");  // 35: a bare pointer to that
  const Bytes& p = b.bytes();
  uint8_t out[kMaxNameSize];
  size_t size = 0;
  EXPECT_EQ(ReadName(p.data(), p.size(), 12, out, &size), 25u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), size), Wire("example.com."));
  EXPECT_EQ(ReadName(p.data(), p.size(), 25, out, &size), 31u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), size), Wire("www.example.com."));
  EXPECT_EQ(ReadName(p.data(), p.size(), 31, out, &size), 35u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), size), Wire("a.www.example.com."));
  EXPECT_EQ(ReadName(p.data(), p.size(), 35, out, &size), 37u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), size), Wire("a.www.example.com."));
  // The root name.
  Bytes root = {0};
  EXPECT_EQ(ReadName(root.data(), root.size(), 0, out, &size), 1u);
  EXPECT_EQ(size, 1u);
}

TEST(ReadNameTest, RejectsLoopsAndForwardPointers) {
  uint8_t out[kMaxNameSize];
  size_t size = 0;
  auto read = [&](const Bytes& p, size_t pos) {
    return ReadName(p.data(), p.size(), pos, out, &size);
  };
  Builder self;
  self.Header(0, 0, 0, 0, 0, 0).Raw("\xc0\x0c");
  EXPECT_EQ(read(self.bytes(), 12), 0u) << "pointer to itself";
  Builder pair;
  pair.Header(0, 0, 0, 0, 0, 0).Raw("\xc0\x0e\xc0\x0c");
  EXPECT_EQ(read(pair.bytes(), 12), 0u) << "forward pointer";
  EXPECT_EQ(read(pair.bytes(), 14), 0u) << "two pointers pointing at each other";
  Builder label_loop;
  label_loop.Header(0, 0, 0, 0, 0, 0)
      .Raw(
          "\x01"
          "a\xc0\x0c");
  EXPECT_EQ(read(label_loop.bytes(), 12), 0u) << "a label then a pointer back to it";
  Builder forward;
  forward.Header(0, 0, 0, 0, 0, 0).Raw("\xc0\x0e").Raw(Wire("example."));
  EXPECT_EQ(read(forward.bytes(), 12), 0u) << "forward pointer to a good name";
  Builder cut;
  cut.Header(0, 0, 0, 0, 0, 0)
      .Raw(
          "\x01"
          "a\xc0");
  EXPECT_EQ(read(cut.bytes(), 12), 0u) << "pointer cut short";
  Builder past;
  past.Header(0, 0, 0, 0, 0, 0)
      .Raw(
          "\x05"
          "ab");
  EXPECT_EQ(read(past.bytes(), 12), 0u) << "label past the end";
  EXPECT_EQ(read(past.bytes(), 40), 0u) << "start past the end";
  for (const char* bad : {"\x40"
                          "a",
                          "\x80"
                          "a"}) {
    Builder ext;
    ext.Header(0, 0, 0, 0, 0, 0).Raw(std::string(bad, 2) + std::string("\0", 1));
    EXPECT_EQ(read(ext.bytes(), 12), 0u) << "extended label type";
  }
}

TEST(ReadNameTest, RejectsNamesLongerThan255ThroughPointers) {
  // A chain of 63-byte labels, each pointing at the previous one: the fourth
  // makes 4 * 64 + 1 = 257 bytes.
  Builder b;
  b.Header(0, 0, 0, 0, 0, 0);
  std::vector<size_t> starts;
  std::string label = std::string("\x3f") + std::string(63, 'x');
  for (int i = 0; i < 4; ++i) {
    starts.push_back(b.bytes().size());
    b.Raw(label);
    if (i == 0) {
      b.Raw(std::string("\0", 1));
    } else {
      b.U16(static_cast<uint16_t>(0xC000 | starts[i - 1]));
    }
  }
  const Bytes& p = b.bytes();
  uint8_t out[kMaxNameSize];
  size_t size = 0;
  EXPECT_NE(ReadName(p.data(), p.size(), starts[2], out, &size), 0u);
  EXPECT_EQ(size, 193u);
  EXPECT_EQ(ReadName(p.data(), p.size(), starts[3], out, &size), 0u);
}

TEST(WireNameLengthTest, Lengths) {
  EXPECT_EQ(WireNameLength(Wire("example.com.")), 13u);
  EXPECT_EQ(WireNameLength(Wire("example.com.") + "trailing"), 13u);
  EXPECT_EQ(WireNameLength(std::string("\0", 1)), 1u);
  EXPECT_EQ(WireNameLength(""), 0u);
  EXPECT_EQ(WireNameLength(std::string("\x03"
                                       "ab",
                                       3)),
            0u);
  EXPECT_EQ(WireNameLength(std::string("\xc0\x0c", 2)), 0u);
  std::string too_long;
  for (int i = 0; i < 4; ++i) too_long += std::string("\x3f") + std::string(63, 'a');
  EXPECT_EQ(WireNameLength(too_long + std::string("\0", 1)), 0u);
}

// ---- MessageWriter ----

// Writes a header for `answers` answer RRs; the caller fills them.
void PutHeader(MessageWriter& w, uint16_t answers) {
  uint8_t header[kHeaderSize] = {0x12, 0x34, 0x84, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
  ASSERT_TRUE(w.PutBytes(header, sizeof header));
  w.SetU16(6, answers);
}

// Appends one RR: owner compressed, then type/class/TTL, then rdata.
bool PutRR(MessageWriter& w, const std::string& owner, uint16_t type, std::string_view rdata) {
  size_t mark = w.size();
  bool ok = w.PutName(owner) && w.PutU16(type) && w.PutU16(1) && w.PutU16(0) && w.PutU16(300);
  size_t rdlength_at = w.size();
  ok = ok && w.PutU16(0) && w.PutRdata(type, rdata);
  if (!ok) {
    w.Rewind(mark);
    return false;
  }
  w.SetU16(rdlength_at, static_cast<uint16_t>(w.size() - rdlength_at - 2));
  return true;
}

std::string NameText(const ldns_rdf* rdf) {
  char* text = ldns_rdf2str(rdf);
  std::string out = text ? text : "";
  free(text);
  return out;
}

TEST(MessageWriterTest, CompressionParsesBackWithLdns) {
  struct RR {
    const char* owner;
    uint16_t type;
    const char* target;  // a name in the rdata
  };
  const std::vector<RR> rrs = {
      {"www.Example.COM.", LDNS_RR_TYPE_CNAME, "web.example.com."},
      {"WEB.example.com.", LDNS_RR_TYPE_NS, "ns1.EXAMPLE.com."},
      {"example.com.", LDNS_RR_TYPE_MX, "Mail.Example.Com."},
      {"a.b.mail.example.com.", LDNS_RR_TYPE_PTR, "other.net."},
      {"x.OTHER.net.", LDNS_RR_TYPE_CNAME, "."},
      {".", LDNS_RR_TYPE_NS, "a.root-servers.net."},
      {"example.com.", LDNS_RR_TYPE_SRV, "sip.example.com."},
      {"deep.a.b.mail.example.com.", LDNS_RR_TYPE_CNAME, "b.MAIL.example.com."},
  };
  uint8_t buffer[1024];
  MessageWriter w(buffer, sizeof buffer);
  PutHeader(w, static_cast<uint16_t>(rrs.size()));
  size_t uncompressed = kHeaderSize;
  for (const RR& rr : rrs) {
    std::string rdata;
    if (rr.type == LDNS_RR_TYPE_MX) rdata = std::string("\x00\x0a", 2);
    if (rr.type == LDNS_RR_TYPE_SRV) rdata = std::string("\x00\x01\x00\x02\x13\xc4", 6);
    rdata += Wire(rr.target);
    ASSERT_TRUE(PutRR(w, Wire(rr.owner), rr.type, rdata)) << rr.owner;
    uncompressed += Wire(rr.owner).size() + 10 + rdata.size();
  }
  EXPECT_LT(w.size(), uncompressed - 60);

  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&raw, buffer, w.size()), LDNS_STATUS_OK);
  PktPtr pkt(raw);
  ldns_rr_list* answer = ldns_pkt_answer(pkt.get());
  ASSERT_EQ(ldns_rr_list_rr_count(answer), rrs.size());
  for (size_t i = 0; i < rrs.size(); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answer, i);
    EXPECT_EQ(Lower(NameText(ldns_rr_owner(rr))), Lower(rrs[i].owner)) << i;
    EXPECT_EQ(ldns_rr_get_type(rr), rrs[i].type);
    size_t name_field = rrs[i].type == LDNS_RR_TYPE_MX    ? 1
                        : rrs[i].type == LDNS_RR_TYPE_SRV ? 3
                                                          : 0;
    EXPECT_EQ(Lower(NameText(ldns_rr_rdf(rr, name_field))), Lower(rrs[i].target)) << i;
  }
  // The first spelling of a name is kept as written.
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buffer) + kHeaderSize, 17),
            Wire("www.Example.COM."));
}

TEST(MessageWriterTest, PointsAtLongestSuffix) {
  uint8_t buffer[512];
  MessageWriter w(buffer, sizeof buffer);
  PutHeader(w, 0);
  uint16_t first = 0, second = 0;
  ASSERT_TRUE(w.PutName(Wire("a.b.example."), &first));
  EXPECT_EQ(first, kHeaderSize);
  ASSERT_TRUE(w.PutName(Wire("c.B.EXAMPLE."), &second));  // case-insensitive match
  EXPECT_EQ(second, kHeaderSize + 13);
  // "c" then a pointer to "b.example" (offset 12 + 2).
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buffer) + second, 4),
            std::string_view("\x01"
                             "c\xc0\x0e",
                             4));
  // An exact repeat is one pointer.
  size_t before = w.size();
  ASSERT_TRUE(w.PutName(Wire("A.b.example.")));
  EXPECT_EQ(w.size(), before + 2);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buffer) + before, 2), "\xc0\x0c");
  // Nothing shared but the root: written whole.
  before = w.size();
  ASSERT_TRUE(w.PutName(Wire("example.org.")));
  EXPECT_EQ(w.size(), before + Wire("example.org.").size());
  // A name known through AddCompressionTarget.
  uint8_t other[512];
  MessageWriter w2(other, sizeof other);
  PutHeader(w2, 0);
  std::string qname = Wire("Host.Dyn.Example.");
  ASSERT_TRUE(w2.PutBytes(qname.data(), qname.size()));
  w2.AddCompressionTarget(kHeaderSize, Lower(qname));
  before = w2.size();
  ASSERT_TRUE(w2.PutName(Wire("dyn.example.")));
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(other) + before, 2), "\xc0\x11");
}

TEST(MessageWriterTest, RewindForgetsCompressionTargets) {
  uint8_t buffer[512];
  std::memset(buffer, 0xee, sizeof buffer);
  MessageWriter w(buffer, sizeof buffer);
  PutHeader(w, 0);
  ASSERT_TRUE(w.PutName(Wire("example.")));
  size_t mark = w.size();
  ASSERT_TRUE(w.PutName(Wire("x.foo.bar.")));
  w.Rewind(mark);
  EXPECT_EQ(w.size(), mark);
  w.Rewind(mark + 100);  // forward: no effect
  EXPECT_EQ(w.size(), mark);
  // Overwrite the forgotten bytes with something else, then write a name
  // that would have matched them: it must not point into the rewound part.
  ASSERT_TRUE(w.PutBytes("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 11));
  size_t at = w.size();
  ASSERT_TRUE(w.PutName(Wire("y.foo.bar.")));
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buffer) + at, w.size() - at),
            Wire("y.foo.bar."));
  // What was written before the mark is still a target.
  at = w.size();
  ASSERT_TRUE(w.PutName(Wire("example.")));
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buffer) + at, 2), "\xc0\x0c");
}

TEST(MessageWriterTest, RewindIntoANameForgetsItsLabels) {
  uint8_t buffer[512];
  MessageWriter w(buffer, sizeof buffer);
  PutHeader(w, 0);
  ASSERT_TRUE(w.PutName(Wire("abc.foo.bar.")));  // 12: abc, 16: foo, 20: bar
  w.Rewind(18);  // inside "foo": the labels at 12 and 16 now run past the end
  // The stale bytes after 18 still spell "o.bar."; a pointer to 16 would
  // make the message read "fo" + whatever is written next.
  size_t at = w.size();
  ASSERT_TRUE(w.PutName(Wire("x.foo.bar.")));
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buffer) + at, w.size() - at),
            Wire("x.foo.bar."));
  uint8_t out[kMaxNameSize];
  size_t size = 0;
  ASSERT_NE(ReadName(buffer, w.size(), at, out, &size), 0u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(out), size), Wire("x.foo.bar."));
}

TEST(MessageWriterTest, RefusesMalformedNames) {
  uint8_t buffer[512];
  std::memset(buffer, 0xee, sizeof buffer);
  MessageWriter w(buffer, sizeof buffer);
  PutHeader(w, 0);
  for (const std::string& bad : {std::string(),
                                 std::string("\x03"
                                             "ab",
                                             3),
                                 std::string("\x01"
                                             "a\xc0\x0c",
                                             4),
                                 Wire("example.") + "x"}) {
    EXPECT_FALSE(w.PutName(bad)) << testing::PrintToString(bad);
    EXPECT_EQ(w.size(), kHeaderSize);
  }
  EXPECT_EQ(buffer[kHeaderSize], 0xee);
}

TEST(MessageWriterTest, LimitsAreRespected) {
  uint8_t buffer[64];
  std::memset(buffer, 0xee, sizeof buffer);
  const size_t limit = 30;
  MessageWriter w(buffer, limit);
  EXPECT_EQ(w.limit(), limit);
  PutHeader(w, 0);                                      // 12
  EXPECT_FALSE(w.PutBytes("0123456789abcdefghi", 19));  // 31 > 30
  EXPECT_EQ(w.size(), 12u);
  std::string name = Wire("example.com.");       // 13 bytes
  ASSERT_TRUE(w.PutName(name));                  // 25
  EXPECT_FALSE(w.PutName(Wire("abcdef.org.")));  // 12 bytes: 37
  EXPECT_EQ(w.size(), 25u);
  // Needs 4 + 2 bytes: "www" then a pointer -> 31.
  EXPECT_FALSE(w.PutName(Wire("www.example.com.")));
  EXPECT_EQ(w.size(), 25u);
  EXPECT_TRUE(w.PutName(Wire("ab.example.com.")));  // 3 + 2 = 30: exactly the limit
  EXPECT_EQ(w.size(), 30u);
  EXPECT_FALSE(w.PutU16(1));
  EXPECT_FALSE(w.PutPointer(12));
  EXPECT_FALSE(w.PutBytes("x", 1));
  EXPECT_TRUE(w.PutBytes("", 0));
  EXPECT_EQ(w.size(), 30u);
  for (size_t i = limit; i < sizeof buffer; ++i) EXPECT_EQ(buffer[i], 0xee) << i;

  // PutRdata: the MX preference fits, the name does not -> nothing written.
  MessageWriter m(buffer, limit);
  PutHeader(m, 0);
  ASSERT_TRUE(m.PutBytes("0123456789", 10));  // 22
  std::string mx = std::string("\x00\x0a", 2) + Wire("mail.example.net.");
  EXPECT_FALSE(m.PutRdata(LDNS_RR_TYPE_MX, mx));
  EXPECT_EQ(m.size(), 22u);
  std::string soa = Wire("ns.example.") + Wire("h.example.") + std::string(20, '\x01');
  EXPECT_FALSE(m.PutRdata(LDNS_RR_TYPE_SOA, soa));
  EXPECT_EQ(m.size(), 22u);
  EXPECT_FALSE(m.PutRdata(LDNS_RR_TYPE_TXT, std::string(9, 't')));
  EXPECT_EQ(m.size(), 22u);
  EXPECT_TRUE(m.PutRdata(LDNS_RR_TYPE_TXT, std::string(8, 't')));
  EXPECT_EQ(m.size(), 30u);
  for (size_t i = limit; i < sizeof buffer; ++i) EXPECT_EQ(buffer[i], 0xee) << i;

  // A failed name leaves no compression target behind.
  MessageWriter t(buffer, 20);
  PutHeader(t, 0);
  EXPECT_FALSE(t.PutName(Wire("toolong.example.")));
  t.SetLimit(512 < sizeof buffer ? 512 : sizeof buffer);
  size_t at = t.size();
  ASSERT_TRUE(t.PutName(Wire("example.")));
  EXPECT_EQ(t.size() - at, Wire("example.").size());
}

TEST(MessageWriterTest, PutRdataCompressesOnlyRfc1035Types) {
  uint8_t buffer[512];
  MessageWriter w(buffer, sizeof buffer);
  PutHeader(w, 0);
  ASSERT_TRUE(w.PutName(Wire("mail.example.com.")));  // 12: mail, 17: example, 25: com
  auto written = [&](uint16_t type, const std::string& rdata) {
    size_t at = w.size();
    EXPECT_TRUE(w.PutRdata(type, rdata));
    return std::string(reinterpret_cast<char*>(buffer) + at, w.size() - at);
  };
  EXPECT_EQ(written(LDNS_RR_TYPE_MX, std::string("\x00\x0a", 2) + Wire("mail.example.com.")),
            std::string("\x00\x0a\xc0\x0c", 4));
  EXPECT_EQ(written(LDNS_RR_TYPE_NS, Wire("ns.example.com.")), std::string("\x02"
                                                                           "ns\xc0\x11",
                                                                           5));
  EXPECT_EQ(written(LDNS_RR_TYPE_CNAME, Wire("Example.Com.")), std::string("\xc0\x11", 2));
  std::string serials(20, '\x07');
  EXPECT_EQ(written(LDNS_RR_TYPE_SOA,
                    Wire("ns.example.com.") + Wire("hostmaster.example.com.") + serials),
            std::string("\xc0\x22", 2) + std::string("\x0ahostmaster\xc0\x11", 13) + serials);
  // SRV (RFC 2782) and other later types: never compressed.
  std::string srv = std::string("\x00\x01\x00\x02\x13\xc4", 6) + Wire("mail.example.com.");
  EXPECT_EQ(written(LDNS_RR_TYPE_SRV, srv), srv);
  std::string afsdb = std::string("\x00\x01", 2) + Wire("mail.example.com.");
  EXPECT_EQ(written(LDNS_RR_TYPE_AFSDB, afsdb), afsdb);
  std::string rp = Wire("mail.example.com.") + Wire("example.com.");
  EXPECT_EQ(written(LDNS_RR_TYPE_RP, rp), rp);
  std::string txt("\x10mail.example.com", 17);
  EXPECT_EQ(written(LDNS_RR_TYPE_TXT, txt), txt);
  // Rdata that does not hold a well-formed name goes out as it is.
  EXPECT_EQ(written(LDNS_RR_TYPE_NS, std::string("\x05"
                                                 "ab",
                                                 3)),
            std::string("\x05"
                        "ab",
                        3));
  EXPECT_EQ(written(LDNS_RR_TYPE_MX, std::string("\x01", 1)), std::string("\x01", 1));
  EXPECT_EQ(written(LDNS_RR_TYPE_MX, ""), "");
}

}  // namespace
}  // namespace updns::zone
