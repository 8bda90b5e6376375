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

// Writes `node.node` back: deletes the node when it is empty (unless
// `keep_empty`, for hosts that must answer NODATA rather than NXDOMAIN) and
// journals the difference against `node.original`.
Status StoreNode(storage::WriteTxn& txn, EditableNode& node, bool keep_empty = false);

// Sets the A and AAAA RRsets of `host` (wire name inside the zone whose apex
// is `apex`, both lowercase) to the given addresses (4 / 16 raw bytes; empty
// removes that RRset), with `ttl`. Other RRsets of the name are kept. The
// node is created when missing and kept even when it ends up empty, so that
// a host without addresses answers NODATA rather than NXDOMAIN.
Status WriteHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host,
                          std::string_view ipv4, std::string_view ipv6, uint32_t ttl);

// Removes the host's A and AAAA; deletes the node when nothing else is left.
Status RemoveHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host);

// Increments the SOA serial of the zone at `apex` (RFC 1982 arithmetic) and
// returns the new serial.
Result<uint32_t> BumpSerial(storage::WriteTxn& txn, std::string_view apex);

// The SOA serial of the zone at `apex`.
Result<uint32_t> ReadSerial(const storage::Txn& txn, std::string_view apex);

// Makes the zone's serial come after `previous` in RFC 1982 order (setting it
// to previous + 1 when it does not already).
Status EnsureSerialAfter(storage::WriteTxn& txn, std::string_view apex, uint32_t previous);

// Bumps the serial of every zone in `apexes` once and the store generation,
// as the last step of a transaction that changed them.
Status FinishZoneChanges(storage::WriteTxn& txn, const std::set<std::string>& apexes);

}  // namespace updns::zone
