// The value of a `nodes` entry: every RRset of one owner name in wire form,
// laid out so that answering copies bytes and decodes nothing.
//
//   u8  version (1)
//   u8  rrset count
//   per RRset, ascending by type:
//     u16 type, u16 class, u32 ttl      -- the 8 bytes that follow an owner
//     u16 rr count
//     u16 body length
//     body: per RR, u16 rdlength + rdata (uncompressed names)
//
// A node exists only while it owns at least one RRset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace updns::storage {

inline uint16_t LoadU16(const char* p) noexcept {
  return static_cast<uint16_t>(static_cast<unsigned char>(p[0]) << 8 |
                               static_cast<unsigned char>(p[1]));
}
inline uint32_t LoadU32(const char* p) noexcept {
  return uint32_t{LoadU16(p)} << 16 | LoadU16(p + 2);
}

// One RRset inside a node value. Views point into the node's bytes.
struct RRsetView {
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  uint16_t rr_count = 0;
  std::string_view type_class_ttl;  // 8 bytes, as they appear on the wire
  std::string_view body;            // rr_count x (u16 rdlength, rdata)
};

// Read-only walk over a node value; allocation-free. Valid() is false when the
// bytes are not a well-formed node (every length is checked).
class NodeView {
 public:
  static constexpr uint8_t kVersion = 1;
  explicit NodeView(std::string_view bytes) noexcept;
  bool Valid() const noexcept { return valid_; }
  size_t rrset_count() const noexcept { return count_; }
  // Finds the RRset of `type`; false when the node has none.
  bool Find(uint16_t type, RRsetView& out) const noexcept;
  // Visits RRsets in type order; `fn(const RRsetView&)` returns false to stop.
  template <typename Fn>
  void ForEach(Fn&& fn) const noexcept {
    size_t pos = 2;
    for (size_t i = 0; i < count_; ++i) {
      RRsetView r;
      pos = Decode(pos, r);
      if (!fn(r)) return;
    }
  }

 private:
  size_t Decode(size_t pos, RRsetView& out) const noexcept;
  std::string_view bytes_;
  size_t count_ = 0;
  bool valid_ = false;
};

// Builds a node value from RRs added in any order. Used by importers and
// writers, not by the query path.
class NodeBuilder {
 public:
  NodeBuilder() = default;
  // Loads an existing node value so that it can be edited. False if malformed.
  bool Load(std::string_view bytes);
  // Adds one RR. An RR equal to one present (same type, class, rdata) is not
  // added twice. The RRset's TTL becomes `ttl` (RFC 2181 §5.2: one TTL per
  // RRset; the last one given wins).
  void Add(uint16_t type, uint16_t rclass, uint32_t ttl, std::string_view rdata);
  // Removes the RRset of `type`; false when absent.
  bool RemoveRRset(uint16_t type);
  // Removes one RR with exactly this rdata; false when absent.
  bool RemoveRR(uint16_t type, std::string_view rdata);
  bool Has(uint16_t type) const;
  bool empty() const { return rrsets_.empty(); }
  // Fails if an RRset would exceed 65535 bytes.
  Result<std::string> Encode() const;

 private:
  struct RRset {
    uint16_t type, rclass;
    uint32_t ttl;
    std::vector<std::string> rdatas;
  };
  RRset* FindSet(uint16_t type);
  std::vector<RRset> rrsets_;  // sorted by type
};

}  // namespace updns::storage
