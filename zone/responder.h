// Answers DNS queries from the store: the authoritative lookup (RFC 1034
// §4.3.2 with RFC 2181, RFC 4592 wildcards, RFC 6891 EDNS, RFC 8482 ANY)
// written straight into the caller's buffer.
//
// One Responder per query loop. It keeps one LMDB read transaction and one
// cursor, renewed per batch of packets, and a cache of the served zones'
// apex data that is rebuilt only when the store generation moves.
// Not thread-safe; Respond() is noexcept and allocation-free.
#pragma once

#include <cstdint>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/store.h"
#include "zone/wire.h"

namespace updns::zone {

enum class Transport { kUdp, kTcp };

// What a served zone looks like to the query path.
struct ZoneEntry {
  uint32_t id = 0;
  std::string apex;       // lowercased wire name
  uint8_t apex_labels = 0;
  std::string canonical;  // storage::CanonicalName(apex)
  uint8_t soa_header[8];  // type SOA, class IN, TTL = negative TTL
  std::string soa_rdata;
  bool has_delegations = false;
};

// The served zones, longest apex first so that the first match is the
// closest enclosing zone.
class ZoneIndex {
 public:
  // Loads the configured zones (lowercased wire names) present in the store.
  // Zones configured but absent, or without a usable SOA, are left out and
  // listed in missing().
  void Load(const storage::Txn& txn, const std::vector<std::string>& zone_names);
  const ZoneEntry* Find(const Query& query) const noexcept;
  const std::vector<ZoneEntry>& zones() const noexcept { return zones_; }
  const std::vector<std::string>& missing() const noexcept { return missing_; }

 private:
  std::vector<ZoneEntry> zones_;
  std::vector<std::string> missing_;
};

struct ResponderOptions {
  std::vector<std::string> zones;  // configured zone names, lowercased wire form
  uint16_t udp_payload = 1232;     // what we advertise and the largest UDP answer
};

class Responder {
 public:
  static Result<std::unique_ptr<Responder>> Create(const storage::Store& store,
                                                   ResponderOptions options);

  // Takes a fresh snapshot for the next packets and refreshes the zone
  // cache if the store changed. Call before Respond(), then EndBatch().
  Status BeginBatch() noexcept;
  // Releases the snapshot so that idle loops pin no old pages.
  void EndBatch() noexcept;

  // Returned by Respond() for a message that is not a plain query: an
  // UPDATE, an AXFR or IXFR, or anything signed with TSIG. Those need keys,
  // policy and the writer, which the server's control path has
  // (server/dns_control.h); the query path stays free of them.
  static constexpr size_t kHandOff = SIZE_MAX;

  // Writes the answer to `query` into `out` (capacity >= 512) and returns
  // its size, 0 when the packet deserves no answer, or kHandOff.
  // REQUIRES: between BeginBatch() and EndBatch().
  size_t Respond(const uint8_t* query, size_t size, Transport transport, uint8_t* out,
                 size_t capacity) noexcept;

  // The message the last Respond() parsed: for the control path, after a
  // kHandOff.
  const Query& last_query() const noexcept { return query_; }
  const ZoneIndex& zone_index() const noexcept { return index_; }
  // Serves `zones` (lowercased wire names) from the next BeginBatch() on:
  // a reload that adds or removes zones.
  void SetZones(std::vector<std::string> zones);
  uint64_t generation() const noexcept { return generation_; }

 private:
  Responder(storage::ReadTxn txn, storage::Cursor cursor, ResponderOptions options)
      : txn_(std::move(txn)), cursor_(std::move(cursor)), options_(std::move(options)) {}

  storage::ReadTxn txn_;
  storage::Cursor cursor_;
  ResponderOptions options_;
  ZoneIndex index_;
  uint64_t generation_ = ~uint64_t{0};
  Query query_;
};

}  // namespace updns::zone
