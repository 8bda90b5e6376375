// The DNS counters of one query loop, for GET /metrics (server/metrics.h).
//
// Each loop owns one DnsCounters and is its only writer; the HTTP loop reads
// them at scrape time and sums the loops. A counter is a std::atomic written
// with a relaxed load and store, not fetch_add: with one writer no update
// is lost, on x86-64 and arm64 that is a plain load, add and store (no
// locked instruction, no fence), and a reader on another thread still sees
// whole values, never torn ones. Each loop's block is cache-line aligned and
// written only by its loop, so loops never contend for a line; a scrape
// costs the loops one cache miss per line it read. Nothing allocates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "zone/responder.h"
#include "zone/wire.h"

namespace updns::server {

// One writer thread; any reader thread.
class LoopCounter {
 public:
  void Add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// The query types that get their own label; the rest count as "other".
inline constexpr std::string_view kQtypeNames[] = {
    "A",     "NS", "CNAME",  "SOA",  "PTR",   "MX",  "TXT", "AAAA", "SRV",
    "NAPTR", "DS", "DNSKEY", "SVCB", "HTTPS", "CAA", "ANY", "other"};
inline constexpr size_t kQtypeSlots = std::size(kQtypeNames);
// Rcodes by name; BADVERS (16) is an extended rcode; the rest is "other".
inline constexpr std::string_view kRcodeNames[] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN",
    "YXRRSET", "NXRRSET", "NOTAUTH",  "NOTZONE",  "BADVERS", "other"};
inline constexpr size_t kRcodeSlots = std::size(kRcodeNames);
inline constexpr std::string_view kProtocolNames[] = {"udp", "tcp"};
inline constexpr std::string_view kTransferNames[] = {"AXFR", "IXFR"};

size_t QtypeSlot(uint16_t qtype) noexcept;
// `rcode` is the full (extended) rcode.
size_t RcodeSlot(unsigned rcode) noexcept;

struct alignas(64) DnsCounters {
  // Answers the query path wrote, by transport, query type and rcode.
  // Messages handed to the control path (UPDATE, AXFR/IXFR, TSIG-signed
  // queries) are counted below, not here.
  LoopCounter queries[2][kQtypeSlots][kRcodeSlots];
  LoopCounter truncated[2];  // answers sent with TC set, by transport
  LoopCounter rrl_dropped;   // UDP answers the rate limiter dropped
  LoopCounter rrl_slipped;   // ... or sent truncated instead (also in truncated)
  // RFC 2136 UPDATE answers by rcode: refusals at once, the rest after the
  // writer's commit.
  LoopCounter updates[kRcodeSlots];
  // Zone transfers by kind (AXFR, IXFR): started (IXFR over UDP answered
  // included), and refused or failed.
  LoopCounter transfers_served[2];
  LoopCounter transfers_refused[2];

  // Counts one answer the query path wrote for `query` (Responder's
  // last_query()). REQUIRES: answer_size >= zone::kHeaderSize.
  void CountAnswer(zone::Transport transport, const zone::Query& query,
                   const uint8_t* answer) noexcept;
  void CountTruncated(zone::Transport transport) noexcept {
    truncated[transport == zone::Transport::kTcp].Add();
  }
  // The rcode of an UPDATE answer (header rcode; UPDATE has no extended ones
  // but BADVERS, which is not used).
  void CountUpdate(const uint8_t* answer, size_t size) noexcept;
};

// The same counts as plain numbers: a snapshot, or the sum over loops.
struct DnsTotals {
  uint64_t queries[2][kQtypeSlots][kRcodeSlots] = {};
  uint64_t truncated[2] = {};
  uint64_t rrl_dropped = 0;
  uint64_t rrl_slipped = 0;
  uint64_t updates[kRcodeSlots] = {};
  uint64_t transfers_served[2] = {};
  uint64_t transfers_refused[2] = {};

  // Adds what `loop` has counted so far; any thread.
  void Add(const DnsCounters& loop) noexcept;
};

}  // namespace updns::server
