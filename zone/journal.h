// The zone change journal: for each zone, the change sets that produced its
// recent serials, so that secondaries can follow by IXFR (RFC 1995). It is
// written in the same write transaction as the changes it describes.
//
// How it is filled: zone_edit's StoreNode() stages the RR-level difference
// of every node it writes (StageNodeChange); staging rows live in the store,
// so a nested transaction that is rolled back takes its staging with it, and
// an RR added and then removed before the entry is made cancels out. When
// the serial moves (BumpSerial, EnsureSerialAfter), the staged changes become
// one entry (SealJournalEntry) and the journal is trimmed to its limits.
// Code outside zone/ changes zones through zone/zone_edit.h, not through the
// writing functions below.
//
// Layout in the `journal` table (integers big-endian, so byte order is
// sort order and a zone's rows are one key range):
//   u32 zone id, 0x00              -> state: u8 version 1, u64 first
//                                     sequence, u64 next sequence, u64 bytes
//                                     (sum of the entries' value sizes)
//   u32 zone id, 0x01, u64 seq     -> entry (below), oldest first
//   u32 zone id, 0x02              -> staged: u8 version 1, SOA (below):
//                                     the SOA before the first change not
//                                     yet in an entry
//   u32 zone id, 0x03, SHA-256(RR) -> staged: u8 0 removed / 1 added, RR
// Entries are keyed by a sequence number, not by serial: serials wrap (RFC
// 1982) and a chain is valid only where each entry's old serial is the
// previous entry's new serial, which readers check.
//
// Entry value: u8 version 1, u32 old serial, u32 new serial, old SOA, new
// SOA, u32 removed count, u32 added count, the removed RRs, the added RRs.
// SOA: u16 class, u32 ttl, u16 rdlength, rdata (owner: the zone apex).
// RR: u8 owner length, owner (lowercase uncompressed wire), u16 type,
// u16 class, u32 ttl, u16 rdlength, rdata. The apex SOA is never among the
// RRs: its change is the entry's old and new SOA.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/store.h"

namespace updns::zone {

struct JournalLimits {
  // Entries kept per zone; 0 keeps none (IXFR then always falls back to AXFR).
  uint32_t max_entries = 1000;
  // Sum of a zone's entry sizes; an entry bigger than this is not kept.
  uint64_t max_bytes = uint64_t{16} << 20;
};

// RFC 1982 §3.2: serial `a` is greater than `b` (false when equal or when
// the two are exactly 2^31 apart, where the order is undefined).
bool SerialAfter(uint32_t a, uint32_t b) noexcept;

// A zone version's SOA. The view points into whatever holds the bytes.
struct SoaRecord {
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  std::string_view rdata;  // uncompressed; at least 22 bytes
  uint32_t serial() const noexcept;
};

// One RR of an entry; views point into the entry's bytes.
struct JournalRR {
  std::string_view owner;  // lowercase uncompressed wire name
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  std::string_view rdata;
};

// Read-only, allocation-free walk over one entry value. Parse() checks every
// length once, so the reads after it need no checks.
class JournalEntryView {
 public:
  // False when `value` is not a well-formed entry of a known version.
  bool Parse(std::string_view value) noexcept;

  // The serials an entry goes from and to, read from its first 9 bytes
  // without parsing the rest (for walking a chain of entries); nullopt when
  // too short or of an unknown version.
  struct Serials {
    uint32_t from = 0, to = 0;
  };
  static std::optional<Serials> PeekSerials(std::string_view value) noexcept;

  uint32_t old_serial() const noexcept { return old_soa_.serial(); }
  uint32_t new_serial() const noexcept { return new_soa_.serial(); }
  const SoaRecord& old_soa() const noexcept { return old_soa_; }
  const SoaRecord& new_soa() const noexcept { return new_soa_; }
  uint32_t removed_count() const noexcept { return removed_; }
  uint32_t added_count() const noexcept { return added_; }
  // Offsets for ReadRR: the removed RRs run from removed_begin() to
  // added_begin(), the added RRs from there to end().
  size_t removed_begin() const noexcept { return removed_begin_; }
  size_t added_begin() const noexcept { return added_begin_; }
  size_t end() const noexcept { return bytes_.size(); }
  // The RR at `*pos`, moving `*pos` past it.
  // REQUIRES: Parse() returned true; *pos is one of the offsets above or
  // where an earlier ReadRR left it, and below end().
  JournalRR ReadRR(size_t* pos) const noexcept;

 private:
  std::string_view bytes_;
  SoaRecord old_soa_, new_soa_;
  uint32_t removed_ = 0, added_ = 0;
  size_t removed_begin_ = 0, added_begin_ = 0;
};

// Where a zone's entries are: sequences [first, next).
struct JournalInfo {
  uint64_t first = 0;
  uint64_t next = 0;
  uint64_t bytes = 0;  // sum of the entries' value sizes
  uint64_t entries() const noexcept { return next - first; }
};
JournalInfo ReadJournalInfo(const storage::Txn& txn, uint32_t zone_id) noexcept;

// The value of entry `sequence` (view into the map, valid for the txn), or
// nullopt when it is not (or no longer) in the journal.
std::optional<std::string_view> ReadJournalEntry(const storage::Txn& txn, uint32_t zone_id,
                                                 uint64_t sequence) noexcept;

// The zone's entries as owned values, oldest first: for tools and tests.
struct OwnedRR {
  std::string owner;
  uint16_t type = 0, rclass = 0;
  uint32_t ttl = 0;
  std::string rdata;
  friend bool operator==(const OwnedRR&, const OwnedRR&) = default;
};
struct JournalEntry {
  uint64_t sequence = 0;
  uint32_t old_serial = 0, new_serial = 0;
  std::string old_soa_rdata, new_soa_rdata;
  std::vector<OwnedRR> removed, added;
};
// Corrupt when an entry does not parse.
Result<std::vector<JournalEntry>> ReadJournal(const storage::Txn& txn, uint32_t zone_id);

// Staged rows (changes and the noted SOA) not yet in an entry; 0 after every
// commit that went through FinishZoneChanges.
size_t StagedChangeCount(const storage::Txn& txn, uint32_t zone_id);

// ---- Writing: called by zone/zone_edit.cc and zone/zone_file.cc ----

// Stages the RR-level difference between two values of the node `owner`
// (lowercase wire) of zone `zone_id`: RRs only in `old_value` as removed,
// RRs only in `new_value` as added; an RRset whose TTL or class changed is
// removed and added whole. Either value may be empty (no node). A change of
// the SOA RRset is not staged as RRs; the old SOA is noted (NoteOldSoa).
// Corrupt when a value is not a well-formed node.
Status StageNodeChange(storage::WriteTxn& txn, uint32_t zone_id, std::string_view owner,
                       std::string_view old_value, std::string_view new_value);

// Notes `soa` as the SOA of the version that the staged changes start from,
// unless one is noted already (the first one wins).
Status NoteOldSoa(storage::WriteTxn& txn, uint32_t zone_id, const SoaRecord& soa);

// Turns the noted old SOA, the staged changes and `new_soa` into the zone's
// next entry, clears the staging and trims the oldest entries to `limits`.
// Does nothing (and keeps the staging) when no old SOA is noted or its
// serial equals the new one: an entry always moves the serial. When the
// entry alone would pass limits.max_bytes (or max_entries is 0), every entry
// of the zone is dropped instead, so that IXFR from any older serial falls
// back to AXFR. The entry is built in memory: its size is bounded by
// max_bytes, whatever the size of the zone or of the change.
Status SealJournalEntry(storage::WriteTxn& txn, uint32_t zone_id, const SoaRecord& new_soa,
                        const JournalLimits& limits);

// Drops the zone's entries and staging: IXFR from any serial before now
// falls back to AXFR.
Status ClearJournal(storage::WriteTxn& txn, uint32_t zone_id);

}  // namespace updns::zone
