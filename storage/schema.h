// The store's layout: which table holds what, and how keys and values are
// encoded. Integers are big-endian so that byte order is sort order; every
// value starts with a version byte.
//
//   meta   "schema"       -> u32 schema version (Store::kSchemaVersion)
//          "generation"   -> u64, bumped by every transaction that changes
//                            DNS data; query loops rebuild caches when it moves
//          "next_zone_id" -> u32
//   zones  NameKey(apex) without zone id -> ZoneRecord
//   nodes  u32 zone id + NameKey(owner)   -> node value (storage/node.h)
//   journal u32 zone id + u8 kind + ...   -> the zone's change journal for
//          IXFR and what the open transaction staged for it; the kinds and
//          their values are laid out in zone/journal.h
//   accounts, hosts, account_hosts, resellers, sessions, onetime, outbox:
//          see storage/accounts.h
//
// NameKey: the owner name in canonical DNS order (RFC 4034 §6.1): labels from
// the root down, each lowercased and followed by a 0x00 separator. Inside a
// label, 0x00 is written 0x01 0x01 and 0x01 as 0x01 0x02, so the separator
// sorts below every label byte and the encoding stays unambiguous. Thus a
// zone is one contiguous key range, a name's descendants are exactly the keys
// that start with its key, and "example\0dyn\0" sorts before
// "example\0dyn\0host\0".
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/store.h"

namespace updns::storage {

inline constexpr std::string_view kMetaSchemaKey = "schema";
inline constexpr std::string_view kMetaGenerationKey = "generation";
inline constexpr std::string_view kMetaNextZoneIdKey = "next_zone_id";

inline std::string EncodeU32(uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  return std::string(b, 4);
}
inline std::string EncodeU64(uint64_t v) {
  return EncodeU32(uint32_t(v >> 32)) + EncodeU32(uint32_t(v));
}
// REQUIRES: s.size() >= 4 / >= 8.
inline uint32_t DecodeU32(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint64_t DecodeU64(std::string_view s) {
  return uint64_t{DecodeU32(s)} << 32 | DecodeU32(s.substr(4));
}

// A node key built in place: zone id + canonical name, never allocating.
// Fits every valid name: 4 + at most 508 bytes of escaped labels and
// separators, within LMDB's 511-byte key limit.
class NodeKey {
 public:
  static constexpr size_t kMaxSize = 512;
  static constexpr size_t kZoneIdSize = 4;

  // `wire_name` is an uncompressed wire-format name (length-prefixed labels,
  // ending with the root label). Returns false for a malformed name.
  bool Assign(uint32_t zone_id, std::string_view wire_name) noexcept;
  // Adopts an existing encoded key (e.g. read from a cursor).
  bool AssignEncoded(std::string_view key) noexcept;

  std::string_view view() const noexcept { return {data_, size_}; }
  // The canonical name part, without the zone id.
  std::string_view name_part() const noexcept {
    return {data_ + kZoneIdSize, size_ - kZoneIdSize};
  }
  uint32_t zone_id() const noexcept { return DecodeU32({data_, kZoneIdSize}); }

 private:
  char data_[kMaxSize];
  size_t size_ = 0;
};

// Canonical encoding of a wire-format name (see above), without a zone id.
// Returns false for a malformed name. `out` receives at most 508 bytes.
bool EncodeCanonicalName(std::string_view wire_name, char* out, size_t* out_size) noexcept;
std::string CanonicalName(std::string_view wire_name);
// Reverse of the canonical encoding: the lowercased wire-format name.
// Returns an empty string when `canonical` is not a valid encoding.
std::string WireNameFromCanonical(std::string_view canonical);

// The longest common ancestor of two canonical names, as a prefix length of
// `a` that ends at a label separator (0 = the root).
size_t CommonAncestorLength(std::string_view a, std::string_view b) noexcept;
// Number of labels in a canonical name (0 for the root).
size_t CanonicalLabelCount(std::string_view canonical) noexcept;

// The value of a zones entry.
struct ZoneRecord {
  static constexpr uint8_t kVersion = 1;
  uint32_t zone_id = 0;
  uint32_t delegation_count = 0;  // nodes below the apex that own NS
  std::string source_digest;      // SHA-256 of the imported master file, raw

  std::string Encode() const;
  static Result<ZoneRecord> Decode(std::string_view value);
};

// The store generation (0 in a new store).
uint64_t ReadGeneration(const Txn& txn) noexcept;
// Increments the generation; call once in every transaction that changes DNS data.
Status BumpGeneration(WriteTxn& txn);
// Hands out the next zone id (ids start at 1 and are never reused).
Result<uint32_t> AllocateZoneId(WriteTxn& txn);

// The zones entry for an apex given as a wire-format name; NotFound if absent.
Result<ZoneRecord> ReadZoneRecord(const Txn& txn, std::string_view apex_wire);

}  // namespace updns::storage
