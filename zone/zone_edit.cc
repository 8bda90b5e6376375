#include "zone/zone_edit.h"

#include "storage/node.h"
#include "storage/schema.h"
#include "zone/wire.h"

namespace updns::zone {

Status LoadNodeForEdit(const storage::Txn& txn, std::string_view apex, std::string_view name,
                       EditableNode& out) {
  auto record = storage::ReadZoneRecord(txn, apex);
  if (!record.ok()) return record.status();
  out.zone_id = record->zone_id;
  if (!out.key.Assign(record->zone_id, name)) return Status::Invalid("malformed owner name");
  out.node = storage::NodeBuilder();
  out.original.clear();
  if (auto value = txn.Get(storage::Table::kNodes, out.key.view())) {
    if (!out.node.Load(*value)) return Status::Corrupt("malformed node value in the store");
    out.original.assign(value->data(), value->size());
  }
  return Status::Ok();
}

Status StoreNode(storage::WriteTxn& txn, EditableNode& node) {
  std::string value;  // empty: no node
  if (!node.node.empty()) {
    auto encoded = node.node.Encode();
    if (!encoded.ok()) return encoded.status();
    value = std::move(encoded).value();
  }
  if (value == node.original) return Status::Ok();
  std::string owner = storage::WireNameFromCanonical(node.key.name_part());
  if (owner.empty()) return Status::Invalid("malformed owner name");
  // Staged in this transaction, so that a rolled-back request takes its
  // journal changes with it.
  if (Status s = StageNodeChange(txn, node.zone_id, owner, node.original, value); !s.ok())
    return s;
  Status s = value.empty() ? txn.Delete(storage::Table::kNodes, node.key.view())
                           : txn.Put(storage::Table::kNodes, node.key.view(), value);
  if (s.ok()) node.original = std::move(value);
  return s;
}

Status WriteHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host,
                          std::string_view ipv4, std::string_view ipv6, uint32_t ttl) {
  EditableNode at;
  if (Status s = LoadNodeForEdit(txn, apex, host, at); !s.ok()) return s;
  at.node.RemoveRRset(type::kA);
  at.node.RemoveRRset(type::kAAAA);
  if (!ipv4.empty()) at.node.Add(type::kA, kClassIN, ttl, ipv4);
  if (!ipv6.empty()) at.node.Add(type::kAAAA, kClassIN, ttl, ipv6);
  return StoreNode(txn, at);
}

Status RemoveHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host) {
  EditableNode at;
  if (Status s = LoadNodeForEdit(txn, apex, host, at); !s.ok()) return s;
  if (!at.existed()) return Status::Ok();
  at.node.RemoveRRset(type::kA);
  at.node.RemoveRRset(type::kAAAA);
  return StoreNode(txn, at);
}

namespace {

// The apex SOA's rdata and where its serial sits.
struct SoaAt {
  EditableNode at;
  uint32_t zone_id = 0;
  std::string rdata;
  size_t serial_at = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  uint32_t serial() const { return storage::LoadU32(rdata.data() + serial_at); }
};

Status LoadSoa(const storage::Txn& txn, std::string_view apex, SoaAt& soa) {
  auto record = storage::ReadZoneRecord(txn, apex);
  if (!record.ok()) return record.status();
  if (!soa.at.key.Assign(record->zone_id, apex)) return Status::Invalid("malformed zone name");
  soa.zone_id = record->zone_id;
  auto value = txn.Get(storage::Table::kNodes, soa.at.key.view());
  storage::RRsetView set;
  if (!value || !storage::NodeView(*value).Find(type::kSOA, set) || set.body.size() < 2 + 22 ||
      storage::LoadU16(set.body.data()) < 22)
    return Status::Corrupt("zone has no SOA record");
  if (!soa.at.node.Load(*value)) return Status::Corrupt("malformed node value in the store");
  soa.rdata = std::string(set.body.substr(2, storage::LoadU16(set.body.data())));
  soa.serial_at = soa.rdata.size() - 20;
  soa.rclass = set.rclass;
  soa.ttl = set.ttl;
  return Status::Ok();
}

SoaRecord Record(const SoaAt& soa) { return {soa.rclass, soa.ttl, soa.rdata}; }

// Writes the SOA with a new serial. The version before it is noted as the
// start of the next journal entry (unless an earlier change noted one).
Status StoreSerial(storage::WriteTxn& txn, SoaAt& soa, uint32_t serial) {
  if (Status s = NoteOldSoa(txn, soa.zone_id, Record(soa)); !s.ok()) return s;
  for (int i = 0; i < 4; ++i) soa.rdata[soa.serial_at + i] = static_cast<char>(serial >> (24 - 8 * i));
  soa.at.node.RemoveRRset(type::kSOA);
  soa.at.node.Add(type::kSOA, soa.rclass, soa.ttl, soa.rdata);
  auto encoded = soa.at.node.Encode();
  if (!encoded.ok()) return encoded.status();
  return txn.Put(storage::Table::kNodes, soa.at.key.view(), *encoded);
}

}  // namespace

Result<uint32_t> ReadSerial(const storage::Txn& txn, std::string_view apex) {
  SoaAt soa;
  if (Status s = LoadSoa(txn, apex, soa); !s.ok()) return s;
  return soa.serial();
}

Status EnsureSerialAfter(storage::WriteTxn& txn, std::string_view apex, uint32_t previous,
                         const JournalLimits& limits) {
  SoaAt soa;
  if (Status s = LoadSoa(txn, apex, soa); !s.ok()) return s;
  if (!SerialAfter(soa.serial(), previous)) {
    if (Status s = StoreSerial(txn, soa, previous + 1); !s.ok()) return s;
  }
  // Also when the serial was already right: a new SOA stored through
  // StoreNode (a zone import) noted the old one.
  return SealJournalEntry(txn, soa.zone_id, Record(soa), limits);
}

Result<uint32_t> BumpSerial(storage::WriteTxn& txn, std::string_view apex,
                            const JournalLimits& limits) {
  SoaAt soa;
  if (Status s = LoadSoa(txn, apex, soa); !s.ok()) return s;
  uint32_t serial = soa.serial() + 1;  // wraps, as RFC 1982 allows
  if (Status s = StoreSerial(txn, soa, serial); !s.ok()) return s;
  if (Status s = SealJournalEntry(txn, soa.zone_id, Record(soa), limits); !s.ok()) return s;
  return serial;
}

Status FinishZoneChanges(storage::WriteTxn& txn, const std::set<std::string>& apexes,
                         const JournalLimits& limits) {
  for (const std::string& apex : apexes) {
    auto serial = BumpSerial(txn, apex, limits);
    if (!serial.ok()) return serial.status();
  }
  return apexes.empty() ? Status::Ok() : storage::BumpGeneration(txn);
}

}  // namespace updns::zone
