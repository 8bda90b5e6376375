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

Status StoreNode(storage::WriteTxn& txn, EditableNode& node, bool keep_empty) {
  if (node.node.empty() && !keep_empty) {
    if (!node.existed()) return Status::Ok();
    return txn.Delete(storage::Table::kNodes, node.key.view());
  }
  auto encoded = node.node.Encode();
  if (!encoded.ok()) return encoded.status();
  return txn.Put(storage::Table::kNodes, node.key.view(), *encoded);
}

Status WriteHostAddresses(storage::WriteTxn& txn, std::string_view apex, std::string_view host,
                          std::string_view ipv4, std::string_view ipv6, uint32_t ttl) {
  EditableNode at;
  if (Status s = LoadNodeForEdit(txn, apex, host, at); !s.ok()) return s;
  at.node.RemoveRRset(type::kA);
  at.node.RemoveRRset(type::kAAAA);
  if (!ipv4.empty()) at.node.Add(type::kA, kClassIN, ttl, ipv4);
  if (!ipv6.empty()) at.node.Add(type::kAAAA, kClassIN, ttl, ipv6);
  return StoreNode(txn, at, /*keep_empty=*/true);
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
  auto value = txn.Get(storage::Table::kNodes, soa.at.key.view());
  storage::RRsetView set;
  if (!value || !storage::NodeView(*value).Find(type::kSOA, set) || set.body.size() < 2 + 22)
    return Status::Corrupt("zone has no SOA record");
  if (!soa.at.node.Load(*value)) return Status::Corrupt("malformed node value in the store");
  soa.rdata = std::string(set.body.substr(2, storage::LoadU16(set.body.data())));
  soa.serial_at = soa.rdata.size() - 20;
  soa.rclass = set.rclass;
  soa.ttl = set.ttl;
  return Status::Ok();
}

Status StoreSerial(storage::WriteTxn& txn, SoaAt& soa, uint32_t serial) {
  for (int i = 0; i < 4; ++i) soa.rdata[soa.serial_at + i] = static_cast<char>(serial >> (24 - 8 * i));
  soa.at.node.RemoveRRset(type::kSOA);
  soa.at.node.Add(type::kSOA, soa.rclass, soa.ttl, soa.rdata);
  auto encoded = soa.at.node.Encode();
  if (!encoded.ok()) return encoded.status();
  return txn.Put(storage::Table::kNodes, soa.at.key.view(), *encoded);
}

// RFC 1982 §3.2: a is greater than b.
bool SerialAfter(uint32_t a, uint32_t b) {
  return a != b && static_cast<uint32_t>(a - b) < 0x80000000u;
}

}  // namespace

Result<uint32_t> ReadSerial(const storage::Txn& txn, std::string_view apex) {
  SoaAt soa;
  if (Status s = LoadSoa(txn, apex, soa); !s.ok()) return s;
  return soa.serial();
}

Status EnsureSerialAfter(storage::WriteTxn& txn, std::string_view apex, uint32_t previous) {
  SoaAt soa;
  if (Status s = LoadSoa(txn, apex, soa); !s.ok()) return s;
  if (SerialAfter(soa.serial(), previous)) return Status::Ok();
  return StoreSerial(txn, soa, previous + 1);
}

Result<uint32_t> BumpSerial(storage::WriteTxn& txn, std::string_view apex) {
  SoaAt soa;
  if (Status s = LoadSoa(txn, apex, soa); !s.ok()) return s;
  uint32_t serial = soa.serial() + 1;  // wraps, as RFC 1982 allows
  if (Status s = StoreSerial(txn, soa, serial); !s.ok()) return s;
  return serial;
}

Status FinishZoneChanges(storage::WriteTxn& txn, const std::set<std::string>& apexes) {
  for (const std::string& apex : apexes) {
    auto serial = BumpSerial(txn, apex);
    if (!serial.ok()) return serial.status();
  }
  return apexes.empty() ? Status::Ok() : storage::BumpGeneration(txn);
}

}  // namespace updns::zone
