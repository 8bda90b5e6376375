// Master files (RFC 1035 §5) in and out of the store, through ldns.
// Not on the query path.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/store.h"
#include "zone/journal.h"

namespace updns::zone {

struct ImportResult {
  size_t records = 0;    // RRs written
  size_t nodes = 0;      // owner names written
  bool skipped = false;  // only_if_changed and the files were unchanged
  // How the import decided: whether the files' bytes were read at all, and
  // whether they were parsed. A skip by stamps reads nothing.
  bool read = false;
  bool parsed = false;
};

// A file changed less than this long before an import read it may change
// again within the same file-system timestamp tick (up to 2 s on FAT) and
// keep its stamp, so the next import reads it again rather than trusting it.
inline constexpr std::chrono::seconds kSourceSettleTime{3};

// One file an import read, as it was when read: the master file first, then
// each $INCLUDE in the order read (a file included twice appears twice).
struct SourceFile {
  std::string path;   // as opened; a relative one resolves against the working directory
  uint64_t size = 0;  // bytes read
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  // Unchanged while read and older than kSourceSettleTime then: an identical
  // stat later proves the bytes identical.
  bool settled = false;
};

// Loads `path` as the master file of `zone_name` (presentation form) in one
// write transaction: the zone's nodes are replaced, its id kept, the store
// generation bumped. $ORIGIN, $TTL, $INCLUDE, relative names and RFC 3597
// unknown types are understood. Records outside the zone, an apex without SOA
// or NS, or a parse error fail with "FILE:LINE: what" and change nothing.
//
// Every import records, in the same transaction as the zone, the files it
// read (SourceFile) and the SHA-256 of their bytes in order. With
// only_if_changed:
//  - every recorded file still has the same device, inode, size, mtime and
//    ctime and was settled: skipped, nothing read (a stat per file);
//  - otherwise, when the same paths hold the same bytes (digest and each
//    file's size): skipped without parsing; the stamps are refreshed;
//  - a zone recorded without stamps (a store written before they existed):
//    parsed, and skipped with stamps recorded when the digest is the same;
//  - anything else, a file gone included: imported as without the flag.
// A skip changes no DNS data and does not bump the store generation.
//
// Memory, process-wide on glibc: a parse sets M_TRIM_THRESHOLD to 4 MB (the
// default makes ldns's per-record buffers grow and shrink the heap for every
// record) and ends with malloc_trim(0), so that a daemon does not keep the
// hundreds of MB a big zone's parse frees.
//
// Hosts (storage/accounts.h) are the dynamic layer over the file: their A
// and AAAA (with `host_ttl`) are written back over the file's data at their
// names. The zone's SOA serial never goes back: when the file's serial is
// not above the one served so far, the import serves that one plus one.
//
// Journal: re-importing a zone journals the real difference between what
// was served and what the import serves (one entry, old SOA -> new SOA),
// found by merging the stored nodes with the file's in key order, so that
// secondaries follow by IXFR; the file is in memory anyway, the stored zone
// is read from the map. A difference bigger than journal_limits.max_bytes
// clears the zone's journal instead (IXFR falls back to AXFR). A first
// import starts an empty journal.
Result<ImportResult> ImportZoneFile(storage::Store& store, std::string_view zone_name,
                                   const std::string& path, bool only_if_changed = false,
                                   uint32_t host_ttl = 60,
                                   const JournalLimits& journal_limits = {});

// The files the last import of `zone_name` read, as recorded then. NotFound
// when none are recorded: no import yet, or one by a version before stamps.
Result<std::vector<SourceFile>> ReadZoneSources(const storage::Store& store,
                                                std::string_view zone_name);

// Writes the zone as a master file ($ORIGIN, then one RR per line in
// canonical order). NotFound when the zone is not in the store.
Status ExportZone(const storage::Store& store, std::string_view zone_name, std::ostream& out);

}  // namespace updns::zone
