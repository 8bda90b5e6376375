#include "server/dns_counters.h"

namespace updns::server {

size_t QtypeSlot(uint16_t qtype) noexcept {
  // In kQtypeNames' order.
  switch (qtype) {
    case 1:
      return 0;  // A
    case 2:
      return 1;  // NS
    case 5:
      return 2;  // CNAME
    case 6:
      return 3;  // SOA
    case 12:
      return 4;  // PTR
    case 15:
      return 5;  // MX
    case 16:
      return 6;  // TXT
    case 28:
      return 7;  // AAAA
    case 33:
      return 8;  // SRV
    case 35:
      return 9;  // NAPTR
    case 43:
      return 10;  // DS
    case 48:
      return 11;  // DNSKEY
    case 64:
      return 12;  // SVCB
    case 65:
      return 13;  // HTTPS
    case 257:
      return 14;  // CAA
    case 255:
      return 15;  // ANY
    default:
      return kQtypeSlots - 1;
  }
}

size_t RcodeSlot(unsigned rcode) noexcept {
  if (rcode <= 10) return rcode;
  if (rcode == 16) return 11;  // BADVERS
  return kRcodeSlots - 1;
}

void DnsCounters::CountAnswer(zone::Transport transport, const zone::Query& query,
                              const uint8_t* answer) noexcept {
  unsigned rcode = answer[3] & 0x0f;
  // The responder answers BADVERS to any EDNS version but 0, as header
  // rcode 0 plus the OPT's upper bits; reading the OPT back is not needed.
  if (rcode == 0 && query.has_edns && query.edns_version > 0) rcode = 16;
  // Without a question (FORMERR on a header alone) the qtype is stale.
  size_t qtype = query.question.empty() ? kQtypeSlots - 1 : QtypeSlot(query.qtype);
  size_t proto = transport == zone::Transport::kTcp;
  queries[proto][qtype][RcodeSlot(rcode)].Add();
  if (answer[2] & 0x02) truncated[proto].Add();
}

void DnsCounters::CountUpdate(const uint8_t* answer, size_t size) noexcept {
  if (size < zone::kHeaderSize) return;
  updates[RcodeSlot(answer[3] & 0x0f)].Add();
}

void DnsTotals::Add(const DnsCounters& loop) noexcept {
  for (size_t p = 0; p < 2; ++p) {
    for (size_t t = 0; t < kQtypeSlots; ++t) {
      for (size_t r = 0; r < kRcodeSlots; ++r) queries[p][t][r] += loop.queries[p][t][r].value();
    }
    truncated[p] += loop.truncated[p].value();
    transfers_served[p] += loop.transfers_served[p].value();
    transfers_refused[p] += loop.transfers_refused[p].value();
  }
  rrl_dropped += loop.rrl_dropped.value();
  rrl_slipped += loop.rrl_slipped.value();
  for (size_t r = 0; r < kRcodeSlots; ++r) updates[r] += loop.updates[r].value();
}

}  // namespace updns::server
