// Changes to a zone's DNS data inside a caller's write transaction: the
// building blocks that host updates, RFC 2136 and tools share. None of these
// bumps the zone serial or the store generation by itself; the caller does
// that once per commit (update/writer.h, or FinishZoneChanges below).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "zone/journal.h"

namespace updns::zone {

// One owner name of a zone, loaded for change and written back with
// StoreNode(). Every change to a zone's records goes through this pair, so
// that the zone's journal (zone/journal.h) sees each RR removed and added.
struct EditableNode {
  uint32_t zone_id = 0;
  storage::NodeKey key;
  storage::NodeBuilder node;  // edit this
  std::string original;       // the stored value as loaded; empty when absent
  bool existed() const { return !original.empty(); }
};

// Loads `name` (lowercase wire, inside the zone at `apex`) for change; a
// name without a node loads as an empty node.
Status LoadNodeForEdit(const storage::Txn& txn, std::string_view apex, std::string_view name,
                       EditableNode& out);

// Writes `node.node` back, or deletes the node when it is empty (a name
// without records does not exist: AXFR could not carry it to secondaries),
// and stages the RR-level difference against `node.original` for the zone's
// journal (zone/journal.h), in `txn`: a rolled-back (nested) transaction
// drops its staging too. On success `node.original` becomes the stored
// value, so the node can be edited and stored again. A change of the apex
// SOA is journaled as the entry's old SOA, not as RRs.
Status StoreNode(storage::WriteTxn& txn, EditableNode& node);

// Sets the A and AAAA RRsets of `host` (wire name inside the zone whose apex
// is `apex`, both lowercase) to the given addresses (4 / 16 raw bytes; empty
// removes that RRset), with `ttl`. Other RRsets of the name are kept; a
// name left without records is removed.
Status WriteHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host,
                          std::string_view ipv4, std::string_view ipv6, uint32_t ttl);

// Removes the host's A and AAAA; deletes the node when nothing else is left.
Status RemoveHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host);

// Increments the SOA serial of the zone at `apex` (RFC 1982 arithmetic) and
// returns the new serial. The changes staged since the last serial change
// become one journal entry (old SOA -> new SOA), trimmed to `limits`.
Result<uint32_t> BumpSerial(storage::WriteTxn& txn, std::string_view apex,
                            const JournalLimits& limits = {});

// The SOA serial of the zone at `apex`.
Result<uint32_t> ReadSerial(const storage::Txn& txn, std::string_view apex);

// Makes the zone's serial come after `previous` in RFC 1982 order (setting it
// to previous + 1 when it does not already). Then, when the SOA changed since
// the last journal entry (by this call or an earlier StoreNode of the apex),
// the staged changes become an entry as in BumpSerial.
Status EnsureSerialAfter(storage::WriteTxn& txn, std::string_view apex, uint32_t previous,
                         const JournalLimits& limits = {});

// Bumps the serial of every zone in `apexes` once (one journal entry per
// zone, each zone's journal trimmed to `limits`) and the store generation,
// as the last step of a transaction that changed them.
Status FinishZoneChanges(storage::WriteTxn& txn, const std::set<std::string>& apexes,
                         const JournalLimits& limits = {});

}  // namespace updns::zone
