// The query path: zone::ParseQuery and the whole answer path of
// zone::Responder over UDP and TCP, against a store made once per process.
// Every answer must be a DNS message ldns can parse, no larger than the
// transport allows, answering the query it was given.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "storage/store.h"
#include "tests/fuzz/fuzz_targets.h"
#include "zone/responder.h"
#include "zone/wire.h"

// After every header that includes the C++ library: ldns defines `bool`.
#include <ldns/ldns.h>

namespace updns::fuzz {
namespace {

// Every kind of answer has a name here: wildcards (and names that block
// them), empty non-terminals, CNAME chains (in zone, dangling, looping, out
// of zone, into a wildcard, into a delegation, into a child zone), a
// delegation with glue and DS, a child zone served beside its parent, MX and
// SRV targets for the additional section, names with odd bytes, an unknown
// type and RRsets too large for UDP.
const char* const kParentZone = R"($ORIGIN test.example.
$TTL 3600
@       IN SOA  ns1 hostmaster 2024010101 3600 900 1209600 300
        IN NS   ns1
        IN NS   ns.sub
        IN MX   10 mail
        IN MX   20 ns.sub
        IN TXT  "v=spf1 mx -all"
ns1     IN A    192.0.2.1
ns1     IN AAAA 2001:db8::1
mail    IN A    192.0.2.25
mail    IN AAAA 2001:db8::25
host    IN A    192.0.2.10
host 60 IN AAAA 2001:db8::10
MiXeD   IN A    192.0.2.12
_sip._udp IN SRV 10 60 5060 host
_none._tcp IN SRV 0 0 0 .
a.b.c   IN A    192.0.2.11
*.wild  IN A    192.0.2.20
*.wild  IN AAAA 2001:db8::20
*.wild  IN MX   10 host
exists.wild IN TXT "exists"
sub.wild IN A   192.0.2.21
*.deep.wild IN TXT "deep"
*.cw    IN CNAME host
cname1  IN CNAME cname2
cname2  IN CNAME host
towild  IN CNAME x.wild
tosub   IN CNAME host.sub
tochild IN CNAME www.child
dangling IN CNAME nothere
outside IN CNAME www.example.org.
loop1   IN CNAME loop2
loop2   IN CNAME loop1
c0 IN CNAME c1
c1 IN CNAME c2
c2 IN CNAME c3
c3 IN CNAME c4
c4 IN CNAME c5
c5 IN CNAME c6
c6 IN CNAME c7
c7 IN CNAME c8
c8 IN CNAME c9
c9 IN CNAME host
sub     IN NS   ns.sub
sub     IN NS   ns.elsewhere.example.
sub     IN DS   60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
ns.sub  IN A    192.0.2.53
ns.sub  IN AAAA 2001:db8::53
child   IN NS   ns1.child
ns1.child IN A  192.0.2.54
odd\.dot IN A   192.0.2.13
\000\255 IN TXT "binary owner"
unknown IN TYPE65280 \# 3 abcdef
ptr     IN PTR  host
many    IN A    192.0.2.100
many    IN A    192.0.2.101
many    IN A    192.0.2.102
many    IN A    192.0.2.103
many    IN A    192.0.2.104
many    IN A    192.0.2.105
many    IN A    192.0.2.106
many    IN A    192.0.2.107
a01234567890123456789012345678901234567890123456789012345678901.b01234567890123456789012345678901234567890123456789012345678901.c01234567890123456789012345678901234567890123456789012345678901.d01234567890123456789012345678901234567890123456 IN A 192.0.2.14  ; 255 bytes: the longest name there can be
big     IN TXT  "big-0-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvw"
big     IN TXT  "big-1-bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwx"
big     IN TXT  "big-2-cdefghijklmnopqrstuvwxyz0123456789cdefghijklmnopqrstuvwxyz0123456789cdefghijklmnopqrstuvwxyz0123456789cdefghijklmnopqrstuvwxyz0123456789cdefghijklmnopqrstuvwxyz0123456789cdefghijklmnopqrstuvwxyz0123456789cdefghijklmnopqrstuvwxy"
big     IN TXT  "big-3-defghijklmnopqrstuvwxyz0123456789defghijklmnopqrstuvwxyz0123456789defghijklmnopqrstuvwxyz0123456789defghijklmnopqrstuvwxyz0123456789defghijklmnopqrstuvwxyz0123456789defghijklmnopqrstuvwxyz0123456789defghijklmnopqrstuvwxyz"
)";

// Served beside its parent, which delegates to it.
const char* const kChildZone = R"($ORIGIN child.test.example.
@    60 IN SOA ns1 hostmaster 7 3600 900 1209600 600
@    60 IN NS  ns1
ns1  60 IN A   192.0.2.54
www  60 IN CNAME back.test.example.
*    60 IN TXT "child wildcard"
)";

struct Server {
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<zone::Responder> responder;  // test.example and child.test.example
};

std::unique_ptr<zone::Responder> MakeResponder(const storage::Store& store,
                                               std::vector<std::string> zones) {
  zone::ResponderOptions options;
  options.zones = std::move(zones);
  auto responder = zone::Responder::Create(store, options);
  Check(responder.ok(), "a responder over the fuzz store");
  Check(responder.value()->zone_index().missing().empty(), "every fuzz zone is served");
  return std::move(responder).value();
}

Server& TheServer() {
  static Server server = [] {
    Server s;
    std::string dir = ScratchDir("query");
    s.store = OpenStore(dir + "/store", uint64_t{16} << 20);
    ImportZone(*s.store, dir, "test.example", kParentZone);
    ImportZone(*s.store, dir, "child.test.example", kChildZone);
    // The root zone is not here: it cannot be imported yet (its key in the
    // zones table would be empty, which LMDB refuses).
    s.responder = MakeResponder(*s.store, {std::string("\4test\7example\0", 14),
                                           std::string("\5child\4test\7example\0", 20)});
    return s;
  }();
  return server;
}

struct PktFree {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

void CheckAnswer(const uint8_t* query, size_t query_size, zone::Transport transport,
                 size_t capacity, const uint8_t* answer, size_t size) {
  zone::Query q;
  zone::ParseOutcome parsed = zone::ParseQuery(query, query_size, q);
  if (parsed == zone::ParseOutcome::kDrop) {
    Check(size == 0, "a dropped query gets no answer");
    return;
  }
  Check(size >= zone::kHeaderSize, "every query worth an answer gets one");
  size_t limit = 65535;
  if (transport == zone::Transport::kUdp)
    limit = q.has_edns && parsed == zone::ParseOutcome::kOk
                ? std::max<size_t>(512, std::min<size_t>(q.edns_payload, 1232))
                : 512;
  Check(size <= std::min(limit, capacity), "the answer fits the transport and the buffer");
  Check(Load16(answer) == Load16(query), "the answer has the query's ID");
  Check(answer[2] & 0x80, "the answer has QR set");
  Check(((answer[2] >> 3) & 0x0F) == ((query[2] >> 3) & 0x0F), "the answer has the query's opcode");
  Check(Load16(answer + 4) <= 1, "at most one question in the answer");
  if (Load16(answer + 4) == 1) {
    Check(size >= zone::kHeaderSize + q.question.size() &&
              std::string_view(reinterpret_cast<const char*>(answer) + zone::kHeaderSize,
                               q.question.size()) == q.question,
          "the question is echoed as sent");
  }
  if (answer[2] & 0x02) {  // TC: only the question (and OPT) is left
    Check(Load16(answer + 6) == 0 && Load16(answer + 8) == 0, "a truncated answer has no RRs");
  }

  ldns_pkt* raw = nullptr;
  ldns_status status = ldns_wire2pkt(&raw, answer, size);
  std::unique_ptr<ldns_pkt, PktFree> pkt(raw);
  if (status != LDNS_STATUS_OK) std::fprintf(stderr, "ldns: %s\n", ldns_get_errorstr_by_id(status));
  Check(status == LDNS_STATUS_OK, "ldns parses every answer");
  if (parsed == zone::ParseOutcome::kOk && q.has_edns) {
    Check(ldns_pkt_edns(pkt.get()), "an EDNS query gets OPT in its answer");
  }
}

void Answer(zone::Responder& responder, const uint8_t* data, size_t size) {
  // Larger than any answer: a TCP answer is at most 65535 bytes.
  static uint8_t out[65536 + 64];
  Check(responder.BeginBatch().ok(), "a read snapshot of the fuzz store");
  struct Call {
    zone::Transport transport;
    size_t capacity;
  };
  for (Call call : {Call{zone::Transport::kUdp, 65536}, Call{zone::Transport::kTcp, 65536},
                    Call{zone::Transport::kUdp, 512}}) {
    size_t n = responder.Respond(data, size, call.transport, out, call.capacity);
    // UPDATE, AXFR, IXFR and TSIG-signed messages leave the query path for
    // the server's control path.
    if (n == zone::Responder::kHandOff) continue;
    CheckAnswer(data, size, call.transport, call.capacity, out, n);
  }
  responder.EndBatch();
}

}  // namespace

int FuzzQuery(const uint8_t* data, size_t size) {
  Answer(*TheServer().responder, data, size);
  return 0;
}

}  // namespace updns::fuzz
