// Master files (RFC 1035 §5) in and out of the store, through ldns.
// Not on the query path.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/store.h"
#include "zone/journal.h"

namespace updns::zone {

struct ImportResult {
  size_t records = 0;    // RRs written
  size_t nodes = 0;      // owner names written
  bool skipped = false;  // only_if_changed and the file was unchanged
};

// Loads `path` as the master file of `zone_name` (presentation form) in one
// write transaction: the zone's nodes are replaced, its id kept, the store
// generation bumped. $ORIGIN, $TTL, $INCLUDE, relative names and RFC 3597
// unknown types are understood. Records outside the zone, an apex without SOA
// or NS, or a parse error fail with "FILE:LINE: what" and change nothing.
// With only_if_changed, a file whose SHA-256 matches the last import is
// skipped.
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

// Writes the zone as a master file ($ORIGIN, then one RR per line in
// canonical order). NotFound when the zone is not in the store.
Status ExportZone(const storage::Store& store, std::string_view zone_name, std::ostream& out);

}  // namespace updns::zone
