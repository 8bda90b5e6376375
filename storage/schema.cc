#include "storage/schema.h"

namespace updns::storage {
namespace {

inline unsigned char Lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

}  // namespace

bool EncodeCanonicalName(std::string_view wire, char* out, size_t* out_size) noexcept {
  // Find the label offsets first: canonical order writes them root-first.
  uint8_t offsets[128];
  size_t count = 0, pos = 0;
  while (true) {
    if (pos >= wire.size() || pos > 254) return false;
    auto len = static_cast<unsigned char>(wire[pos]);
    if (len == 0) break;
    if (len > 63 || count == 127) return false;
    offsets[count++] = static_cast<uint8_t>(pos);
    pos += 1 + len;
  }
  if (pos + 1 > 255) return false;
  size_t n = 0;
  for (size_t i = count; i-- > 0;) {
    size_t at = offsets[i];
    auto len = static_cast<unsigned char>(wire[at]);
    for (size_t j = 1; j <= len; ++j) {
      unsigned char c = Lower(static_cast<unsigned char>(wire[at + j]));
      if (c <= 1) {
        out[n++] = 1;
        out[n++] = static_cast<char>(c + 1);
      } else {
        out[n++] = static_cast<char>(c);
      }
    }
    out[n++] = 0;
  }
  *out_size = n;
  return true;
}

std::string CanonicalName(std::string_view wire_name) {
  char buffer[NodeKey::kMaxSize];
  size_t size = 0;
  if (!EncodeCanonicalName(wire_name, buffer, &size)) return {};
  return std::string(buffer, size);
}

std::string WireNameFromCanonical(std::string_view canonical) {
  // Collect labels root-first, then emit them leaf-first.
  std::string labels[128];
  size_t count = 0;
  std::string current;
  for (size_t i = 0; i < canonical.size(); ++i) {
    char c = canonical[i];
    if (c == 0) {
      if (current.empty() || current.size() > 63 || count == 127) return {};
      labels[count++] = std::move(current);
      current.clear();
    } else if (c == 1) {
      if (i + 1 >= canonical.size() || (canonical[i + 1] != 1 && canonical[i + 1] != 2)) return {};
      current.push_back(static_cast<char>(canonical[++i] - 1));
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) return {};
  std::string wire;
  for (size_t i = count; i-- > 0;) {
    wire.push_back(static_cast<char>(labels[i].size()));
    wire += labels[i];
  }
  wire.push_back(0);
  return wire.size() > 255 ? std::string() : wire;
}

size_t CommonAncestorLength(std::string_view a, std::string_view b) noexcept {
  size_t limit = a.size() < b.size() ? a.size() : b.size();
  size_t last_boundary = 0;
  for (size_t i = 0; i < limit; ++i) {
    if (a[i] != b[i]) break;
    if (a[i] == 0) last_boundary = i + 1;
  }
  return last_boundary;
}

size_t CanonicalLabelCount(std::string_view canonical) noexcept {
  size_t count = 0;
  for (char c : canonical) count += c == 0;
  return count;
}

bool NodeKey::Assign(uint32_t zone_id, std::string_view wire_name) noexcept {
  data_[0] = static_cast<char>(zone_id >> 24);
  data_[1] = static_cast<char>(zone_id >> 16);
  data_[2] = static_cast<char>(zone_id >> 8);
  data_[3] = static_cast<char>(zone_id);
  size_t n = 0;
  if (!EncodeCanonicalName(wire_name, data_ + kZoneIdSize, &n)) return false;
  size_ = kZoneIdSize + n;
  return true;
}

bool NodeKey::AssignEncoded(std::string_view key) noexcept {
  if (key.size() < kZoneIdSize || key.size() > kMaxSize) return false;
  std::memcpy(data_, key.data(), key.size());
  size_ = key.size();
  return true;
}

std::string ZoneRecord::Encode() const {
  std::string out(1, static_cast<char>(kVersion));
  out += EncodeU32(zone_id);
  out += EncodeU32(delegation_count);
  out.push_back(static_cast<char>(source_digest.size()));
  out += source_digest;
  return out;
}

Result<ZoneRecord> ZoneRecord::Decode(std::string_view v) {
  if (v.size() < 10 || static_cast<uint8_t>(v[0]) != kVersion)
    return Status::Corrupt("zone record: unknown version or truncated");
  ZoneRecord r;
  r.zone_id = DecodeU32(v.substr(1));
  r.delegation_count = DecodeU32(v.substr(5));
  size_t digest_size = static_cast<uint8_t>(v[9]);
  if (v.size() != 10 + digest_size) return Status::Corrupt("zone record: bad length");
  r.source_digest = std::string(v.substr(10));
  return r;
}

uint64_t ReadGeneration(const Txn& txn) noexcept {
  auto v = txn.Get(Table::kMeta, kMetaGenerationKey);
  return v && v->size() == 8 ? DecodeU64(*v) : 0;
}

Status BumpGeneration(WriteTxn& txn) {
  return txn.Put(Table::kMeta, kMetaGenerationKey, EncodeU64(ReadGeneration(txn) + 1));
}

Result<uint32_t> AllocateZoneId(WriteTxn& txn) {
  auto v = txn.Get(Table::kMeta, kMetaNextZoneIdKey);
  uint32_t id = v && v->size() == 4 ? DecodeU32(*v) : 1;
  if (Status s = txn.Put(Table::kMeta, kMetaNextZoneIdKey, EncodeU32(id + 1)); !s.ok()) return s;
  return id;
}

Result<ZoneRecord> ReadZoneRecord(const Txn& txn, std::string_view apex_wire) {
  std::string key = CanonicalName(apex_wire);
  if (key.empty() && apex_wire.size() != 1) return Status::Invalid("malformed zone name");
  auto v = txn.Get(Table::kZones, key);
  if (!v) return Status::NotFound("zone not in the store");
  return ZoneRecord::Decode(*v);
}

}  // namespace updns::storage
