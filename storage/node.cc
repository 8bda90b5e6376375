#include "storage/node.h"

#include <algorithm>

namespace updns::storage {

NodeView::NodeView(std::string_view bytes) noexcept : bytes_(bytes) {
  if (bytes.size() < 2 || static_cast<uint8_t>(bytes[0]) != kVersion) return;
  // count_ is set only once every RRset checked out: ForEach and Find walk
  // count_ RRsets without bounds checks, so an invalid view must have none.
  size_t count = static_cast<uint8_t>(bytes[1]);
  size_t pos = 2;
  uint32_t previous_type = 0;  // 0 is no RR type, so every real one is above it
  for (size_t i = 0; i < count; ++i) {
    if (pos + 12 > bytes.size()) return;
    // Find() stops at the first type above the one sought, and an answer
    // reads the first RR of a CNAME set: types must ascend strictly, and an
    // RRset hold at least one RR.
    uint16_t type = LoadU16(bytes.data() + pos);
    if (type <= previous_type || LoadU16(bytes.data() + pos + 8) == 0) return;
    previous_type = type;
    size_t body = LoadU16(bytes.data() + pos + 10);
    size_t end = pos + 12 + body;
    if (end > bytes.size()) return;
    // Each RR's rdlength must stay inside the body.
    size_t rr_pos = pos + 12, rr_count = LoadU16(bytes.data() + pos + 8);
    for (size_t j = 0; j < rr_count; ++j) {
      if (rr_pos + 2 > end) return;
      rr_pos += 2 + LoadU16(bytes.data() + rr_pos);
    }
    if (rr_pos != end) return;
    pos = end;
  }
  valid_ = pos == bytes.size();
  if (valid_) count_ = count;
}

size_t NodeView::Decode(size_t pos, RRsetView& out) const noexcept {
  const char* p = bytes_.data() + pos;
  out.type = LoadU16(p);
  out.rclass = LoadU16(p + 2);
  out.ttl = LoadU32(p + 4);
  out.rr_count = LoadU16(p + 8);
  out.type_class_ttl = std::string_view(p, 8);
  size_t body = LoadU16(p + 10);
  out.body = std::string_view(p + 12, body);
  return pos + 12 + body;
}

bool NodeView::Find(uint16_t type, RRsetView& out) const noexcept {
  bool found = false;
  ForEach([&](const RRsetView& r) {
    if (r.type < type) return true;
    if (r.type == type) {
      out = r;
      found = true;
    }
    return false;
  });
  return found;
}

bool NodeBuilder::Load(std::string_view bytes) {
  NodeView view(bytes);
  if (!view.Valid()) return false;
  rrsets_.clear();
  view.ForEach([&](const RRsetView& r) {
    RRset set{r.type, r.rclass, r.ttl, {}};
    for (size_t pos = 0; pos < r.body.size();) {
      size_t len = LoadU16(r.body.data() + pos);
      set.rdatas.emplace_back(r.body.substr(pos + 2, len));
      pos += 2 + len;
    }
    rrsets_.push_back(std::move(set));
    return true;
  });
  return true;
}

NodeBuilder::RRset* NodeBuilder::FindSet(uint16_t type) {
  auto it = std::lower_bound(rrsets_.begin(), rrsets_.end(), type,
                             [](const RRset& s, uint16_t t) { return s.type < t; });
  return it != rrsets_.end() && it->type == type ? &*it : nullptr;
}

void NodeBuilder::Add(uint16_t type, uint16_t rclass, uint32_t ttl, std::string_view rdata) {
  RRset* set = FindSet(type);
  if (!set) {
    auto it = std::lower_bound(rrsets_.begin(), rrsets_.end(), type,
                               [](const RRset& s, uint16_t t) { return s.type < t; });
    set = &*rrsets_.insert(it, RRset{type, rclass, ttl, {}});
  }
  set->ttl = ttl;
  if (std::find(set->rdatas.begin(), set->rdatas.end(), rdata) == set->rdatas.end())
    set->rdatas.emplace_back(rdata);
}

bool NodeBuilder::RemoveRRset(uint16_t type) {
  RRset* set = FindSet(type);
  if (!set) return false;
  rrsets_.erase(rrsets_.begin() + (set - rrsets_.data()));
  return true;
}

bool NodeBuilder::RemoveRR(uint16_t type, std::string_view rdata) {
  RRset* set = FindSet(type);
  if (!set) return false;
  auto it = std::find(set->rdatas.begin(), set->rdatas.end(), rdata);
  if (it == set->rdatas.end()) return false;
  set->rdatas.erase(it);
  if (set->rdatas.empty()) RemoveRRset(type);
  return true;
}

bool NodeBuilder::Has(uint16_t type) const {
  return std::any_of(rrsets_.begin(), rrsets_.end(), [&](const RRset& s) { return s.type == type; });
}

Result<std::string> NodeBuilder::Encode() const {
  if (rrsets_.size() > 255) return Status::Invalid("a name owns more than 255 RRsets");
  auto put16 = [](std::string& s, uint32_t v) {
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v));
  };
  std::string out;
  out.push_back(static_cast<char>(NodeView::kVersion));
  out.push_back(static_cast<char>(rrsets_.size()));
  for (const RRset& set : rrsets_) {
    size_t body = 0;
    for (const auto& rdata : set.rdatas) body += 2 + rdata.size();
    if (body > 65535 || set.rdatas.size() > 65535)
      return Status::Invalid("RRset of type " + std::to_string(set.type) +
                             " is larger than a DNS message can carry");
    put16(out, set.type);
    put16(out, set.rclass);
    put16(out, set.ttl >> 16);
    put16(out, set.ttl & 0xffff);
    put16(out, static_cast<uint32_t>(set.rdatas.size()));
    put16(out, static_cast<uint32_t>(body));
    for (const auto& rdata : set.rdatas) {
      put16(out, static_cast<uint32_t>(rdata.size()));
      out += rdata;
    }
  }
  return out;
}

}  // namespace updns::storage
