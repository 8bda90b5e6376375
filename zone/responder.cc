#include "zone/responder.h"

#include <algorithm>
#include <cstring>

#include "storage/node.h"
#include "storage/schema.h"

namespace updns::zone {
namespace {

using storage::LoadU16;
using storage::LoadU32;
using storage::NodeKey;
using storage::NodeView;
using storage::RRsetView;

constexpr int kMaxCnameChain = 8;
constexpr size_t kMaxAdditionalTargets = 16;
constexpr uint16_t kFlagQR = 0x8000, kFlagAA = 0x0400, kFlagTC = 0x0200, kFlagRD = 0x0100,
                   kFlagCD = 0x0010;

// A name written into the answer whose A/AAAA may go into the additional
// section: the name as stored, and where the message holds a copy of it.
struct AdditionalTarget {
  std::string_view name;
  uint16_t offset;
  bool required;  // in-domain glue (RFC 9471): TC if it does not fit
};

struct Sections {
  uint16_t answer = 0, authority = 0, additional = 0;
  uint16_t flags = 0;
  uint8_t rcode = rcode::kNoError;
  uint16_t extended_rcode = 0;
  AdditionalTarget targets[kMaxAdditionalTargets];
  size_t target_count = 0;
  size_t cut_canonical_size = 0;  // referrals: glue lies below the cut
};

// Where a name leads inside one zone.
enum class Outcome { kFound, kWildcard, kDelegation, kEmptyNonTerminal, kNxDomain };
struct Located {
  Outcome outcome;
  std::string_view node;     // the node (kFound, kWildcard, kDelegation: the cut)
  size_t cut_canonical = 0;  // kDelegation: canonical size of the cut name
};

bool InZone(const ZoneEntry& zone, const NodeKey& key) noexcept {
  return key.name_part().substr(0, zone.canonical.size()) == zone.canonical;
}

// Label count of a canonical prefix = number of separators in it.
size_t LabelsIn(std::string_view canonical) noexcept { return storage::CanonicalLabelCount(canonical); }

// Case-insensitive equality of two uncompressed wire names (length bytes are
// below 64, so lowercasing leaves them alone).
bool SameName(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}

// The wire-format suffix of `wire` that has `labels` labels.
std::string_view WireSuffix(std::string_view wire, size_t total_labels, size_t labels) noexcept {
  size_t at = 0;
  for (size_t skip = total_labels - labels; skip > 0; --skip) at += 1 + static_cast<uint8_t>(wire[at]);
  return wire.substr(at);
}

class Resolver {
 public:
  Resolver(const storage::ReadTxn& txn, storage::Cursor& cursor, const Query& q,
           Transport transport, MessageWriter& w, Sections& s)
      : txn_(txn), cursor_(cursor), q_(q), transport_(transport), w_(w), s_(s) {}

  void Resolve(const ZoneEntry& zone) noexcept;

 private:
  Located Locate(const ZoneEntry& zone, const NodeKey& key) noexcept;
  // Writes every RR of `rrset`; the owner is a pointer to `owner_offset` or,
  // when that is 0, `owner` compressed. All or nothing: false when it does
  // not fit. `last_rdata` (optional) gets where the last RR's rdata starts.
  bool PutRRset(uint16_t owner_offset, std::string_view owner, const RRsetView& rrset,
                const uint8_t* header, uint16_t& count, size_t* last_rdata = nullptr) noexcept;
  void PutNegative(const ZoneEntry& zone) noexcept;
  void PutReferral(std::string_view name, size_t name_labels, const NodeKey& key,
                   const Located& cut) noexcept;
  void PutAdditional(const ZoneEntry& zone) noexcept;
  void Truncate() noexcept;
  void NoteTarget(uint16_t rrtype, std::string_view rdata, size_t packet_rdata) noexcept;

  const storage::ReadTxn& txn_;
  storage::Cursor& cursor_;
  const Query& q_;
  Transport transport_;
  MessageWriter& w_;
  Sections& s_;
  size_t question_end_ = 0;
  bool truncated_ = false;
};

Located Resolver::Locate(const ZoneEntry& zone, const NodeKey& key) noexcept {
  std::string_view name = key.name_part();
  const size_t apex = zone.canonical.size();

  // A cut above the name hides everything below it, glue included. The
  // ancestors' keys are prefixes of the name's key, ending at separators.
  if (zone.has_delegations) {
    for (size_t i = apex; i + 1 < name.size(); ++i) {
      if (name[i] != 0) continue;
      auto node = txn_.Get(storage::Table::kNodes, key.view().substr(0, NodeKey::kZoneIdSize + i + 1));
      RRsetView ns;
      if (node && NodeView(*node).Find(type::kNS, ns)) return {Outcome::kDelegation, *node, i + 1};
    }
  }

  if (cursor_.Seek(key.view()) && cursor_.key() == key.view()) {
    std::string_view node = cursor_.value();
    RRsetView ns;
    if (name.size() > apex && q_.qtype != type::kDS && NodeView(node).Find(type::kNS, ns))
      return {Outcome::kDelegation, node, name.size()};
    return {Outcome::kFound, node, 0};
  }

  // Absent. Its canonical neighbours tell the rest: a successor below it
  // makes it an empty non-terminal, and the closest encloser is the longest
  // common ancestor with either neighbour (every ancestor of an existing name
  // exists), so no per-label probing is needed.
  std::string_view zone_prefix = key.view().substr(0, NodeKey::kZoneIdSize);
  size_t encloser = apex;
  bool have_successor = cursor_.key().size() > 0;
  if (have_successor && cursor_.key().substr(0, NodeKey::kZoneIdSize) == zone_prefix) {
    std::string_view successor = cursor_.key().substr(NodeKey::kZoneIdSize);
    if (successor.substr(0, name.size()) == name) return {Outcome::kEmptyNonTerminal, {}, 0};
    encloser = std::max(encloser, storage::CommonAncestorLength(name, successor));
  }
  if (have_successor ? cursor_.Prev() : cursor_.Last()) {
    if (cursor_.key().substr(0, NodeKey::kZoneIdSize) == zone_prefix) {
      encloser = std::max(encloser,
                          storage::CommonAncestorLength(name, cursor_.key().substr(NodeKey::kZoneIdSize)));
    }
  }

  // RFC 4592: the wildcard is the closest encloser's "*" child.
  char wildcard[NodeKey::kMaxSize];
  size_t size = NodeKey::kZoneIdSize + encloser;
  if (size + 2 > sizeof wildcard) return {Outcome::kNxDomain, {}, 0};
  std::memcpy(wildcard, key.view().data(), size);
  wildcard[size++] = '*';
  wildcard[size++] = 0;
  if (auto node = txn_.Get(storage::Table::kNodes, {wildcard, size}))
    return {Outcome::kWildcard, *node, 0};
  return {Outcome::kNxDomain, {}, 0};
}

void Resolver::NoteTarget(uint16_t rrtype, std::string_view rdata, size_t packet_rdata) noexcept {
  size_t at;
  switch (rrtype) {
    case type::kNS: at = 0; break;
    case type::kMX: at = 2; break;
    case type::kSRV: at = 6; break;
    default: return;
  }
  if (s_.target_count == kMaxAdditionalTargets || rdata.size() <= at) return;
  std::string_view target = rdata.substr(at);
  size_t len = WireNameLength(target);
  if (len == 0 || len == 1) return;  // malformed, or "." (no service)
  // A host named twice (say as NS and as MX) gets its addresses once: the
  // same RRset twice in a message is a duplicate (RFC 2181 §5).
  for (size_t i = 0; i < s_.target_count; ++i) {
    if (SameName(s_.targets[i].name, target.substr(0, len))) return;
  }
  uint16_t offset = packet_rdata + at < 0x4000 ? static_cast<uint16_t>(packet_rdata + at) : 0;
  s_.targets[s_.target_count++] = {target.substr(0, len), offset, false};
}

bool Resolver::PutRRset(uint16_t owner_offset, std::string_view owner, const RRsetView& rrset,
                        const uint8_t* header, uint16_t& count, size_t* last_rdata) noexcept {
  size_t mark = w_.size();
  size_t targets_mark = s_.target_count;
  uint16_t written = 0;
  for (size_t pos = 0; pos + 2 <= rrset.body.size();) {
    size_t rdlength = LoadU16(rrset.body.data() + pos);
    std::string_view rdata = rrset.body.substr(pos + 2, rdlength);
    pos += 2 + rdlength;
    bool ok = owner_offset ? w_.PutPointer(owner_offset) : w_.PutName(owner, &owner_offset);
    ok = ok && w_.PutBytes(header ? static_cast<const void*>(header) : rrset.type_class_ttl.data(), 8);
    size_t rdlength_at = w_.size();
    ok = ok && w_.PutU16(0);
    size_t rdata_at = w_.size();
    ok = ok && w_.PutRdata(rrset.type, rdata);
    if (!ok) {
      w_.Rewind(mark);
      s_.target_count = targets_mark;
      return false;
    }
    w_.SetU16(rdlength_at, static_cast<uint16_t>(w_.size() - rdlength_at - 2));
    NoteTarget(rrset.type, rdata, rdata_at);
    if (last_rdata) *last_rdata = rdata_at;
    ++written;
  }
  count += written;
  return true;
}

void Resolver::Truncate() noexcept {
  // RFC 2181 §9: a required RRset did not fit. Send the question with TC set
  // so that the client retries over TCP.
  w_.Rewind(question_end_);
  s_.answer = s_.authority = s_.additional = 0;
  s_.target_count = 0;
  s_.flags |= kFlagTC;
  truncated_ = true;
}

void Resolver::PutNegative(const ZoneEntry& zone) noexcept {
  RRsetView soa;
  soa.type = type::kSOA;
  // The body format is (u16 rdlength, rdata): build a view over the cached one.
  // Two names and five u32s: an SOA rdata is at most 2 * 255 + 20 bytes.
  uint8_t body[2 + 2 * kMaxNameSize + 20];
  if (zone.soa_rdata.size() + 2 > sizeof body) return;
  body[0] = static_cast<uint8_t>(zone.soa_rdata.size() >> 8);
  body[1] = static_cast<uint8_t>(zone.soa_rdata.size());
  std::memcpy(body + 2, zone.soa_rdata.data(), zone.soa_rdata.size());
  soa.body = {reinterpret_cast<const char*>(body), 2 + zone.soa_rdata.size()};
  if (!PutRRset(0, zone.apex, soa, zone.soa_header, s_.authority)) Truncate();
}

void Resolver::PutReferral(std::string_view name, size_t name_labels, const NodeKey& key,
                           const Located& cut) noexcept {
  s_.flags &= ~kFlagAA;
  RRsetView ns;
  NodeView(cut.node).Find(type::kNS, ns);
  // The cut is an ancestor-or-self of `name`, so its wire form is a suffix.
  std::string_view cut_canonical = key.name_part().substr(0, cut.cut_canonical);
  std::string_view cut_name = WireSuffix(name, name_labels, LabelsIn(cut_canonical));
  if (!PutRRset(0, cut_name, ns, nullptr, s_.authority)) return Truncate();
  // Name servers at or below the cut cannot be reached without their glue.
  for (size_t i = 0; i < s_.target_count; ++i) {
    NodeKey target;
    if (target.Assign(key.zone_id(), s_.targets[i].name) &&
        target.name_part().substr(0, cut_canonical.size()) == cut_canonical) {
      s_.targets[i].required = true;
    }
  }
}

void Resolver::PutAdditional(const ZoneEntry& zone) noexcept {
  static constexpr uint16_t kAddressTypes[] = {type::kA, type::kAAAA};
  for (size_t i = 0; i < s_.target_count && !truncated_; ++i) {
    const AdditionalTarget& target = s_.targets[i];
    NodeKey key;
    if (!key.Assign(zone.id, target.name) || !InZone(zone, key)) continue;
    auto node = txn_.Get(storage::Table::kNodes, key.view());
    if (!node) continue;
    NodeView view(*node);
    for (uint16_t address_type : kAddressTypes) {
      RRsetView rrset;
      if (!view.Find(address_type, rrset)) continue;
      if (!PutRRset(target.offset, target.name, rrset, nullptr, s_.additional) && target.required)
        return Truncate();
    }
  }
}

void Resolver::Resolve(const ZoneEntry& zone) noexcept {
  question_end_ = w_.size();
  s_.flags |= kFlagAA;
  std::string_view name = q_.qname_view();
  size_t name_labels = q_.label_count;
  uint16_t owner_offset = kHeaderSize;  // the question's QNAME
  // The names the chain went through (views into the query and the map), so
  // that a loop ends the chain instead of repeating its CNAMEs in the answer.
  std::string_view visited[kMaxCnameChain + 1];
  visited[0] = name;

  for (int hop = 0; hop <= kMaxCnameChain; ++hop) {
    NodeKey key;
    if (!key.Assign(zone.id, name)) return;
    Located found = Locate(zone, key);
    switch (found.outcome) {
      case Outcome::kDelegation:
        // A chain that runs into a delegation ends there; the resolver
        // follows the last CNAME itself.
        if (hop == 0) {
          PutReferral(name, name_labels, key, found);
          PutAdditional(zone);
        }
        return;
      case Outcome::kNxDomain:
        s_.rcode = rcode::kNXDomain;  // RFC 6604: the last name in the chain decides
        return PutNegative(zone);
      case Outcome::kEmptyNonTerminal:
        return PutNegative(zone);
      case Outcome::kFound:
      case Outcome::kWildcard:
        break;
    }

    NodeView node(found.node);
    if (!node.Valid()) {
      s_.rcode = rcode::kServFail;
      return;
    }
    if (q_.qtype == type::kANY) {
      // RFC 8482: over UDP one RRset is enough; over TCP, everything.
      bool all = transport_ == Transport::kTcp;
      node.ForEach([&](const RRsetView& rrset) {
        if (!PutRRset(owner_offset, name, rrset, nullptr, s_.answer)) {
          Truncate();
          return false;
        }
        return all;
      });
      if (!truncated_) PutAdditional(zone);
      return;
    }
    RRsetView rrset;
    if (node.Find(q_.qtype, rrset)) {
      if (!PutRRset(owner_offset, name, rrset, nullptr, s_.answer)) return Truncate();
      return PutAdditional(zone);
    }
    if (!node.Find(type::kCNAME, rrset)) return PutNegative(zone);

    // Follow the CNAME while its target stays inside this zone.
    size_t target_at = 0;
    if (!PutRRset(owner_offset, name, rrset, nullptr, s_.answer, &target_at)) return Truncate();
    std::string_view target_name = rrset.body.substr(2, LoadU16(rrset.body.data()));
    NodeKey target;
    if (WireNameLength(target_name) != target_name.size() ||
        !target.Assign(zone.id, target_name) || !InZone(zone, target)) {
      return;
    }
    for (int i = 0; i <= hop; ++i) {
      if (SameName(visited[i], target_name)) return;  // a loop: every CNAME of it is in
    }
    if (hop < kMaxCnameChain) visited[hop + 1] = target_name;
    name = target_name;  // a view into the map, valid for the whole read txn
    name_labels = LabelsIn(target.name_part());
    owner_offset = target_at < 0x4000 ? static_cast<uint16_t>(target_at) : 0;
  }
}

}  // namespace

void ZoneIndex::Load(const storage::Txn& txn, const std::vector<std::string>& zone_names) {
  zones_.clear();
  missing_.clear();
  for (const std::string& apex : zone_names) {
    auto record = storage::ReadZoneRecord(txn, apex);
    NodeKey key;
    if (!record.ok() || !key.Assign(record->zone_id, apex)) {
      missing_.push_back(apex);
      continue;
    }
    auto node = txn.Get(storage::Table::kNodes, key.view());
    RRsetView soa;
    if (!node || !NodeView(*node).Find(type::kSOA, soa) || soa.body.size() < 2 + 22) {
      missing_.push_back(apex);
      continue;
    }
    ZoneEntry entry;
    entry.id = record->zone_id;
    entry.apex = apex;
    entry.canonical = std::string(key.name_part());
    entry.apex_labels = static_cast<uint8_t>(LabelsIn(entry.canonical));
    entry.has_delegations = record->delegation_count > 0;
    entry.soa_rdata = std::string(soa.body.substr(2, LoadU16(soa.body.data())));
    // The MINIMUM is read from the last 4 bytes: the first SOA's rdata must
    // hold at least two names and five u32s, not only the RRset's body.
    if (entry.soa_rdata.size() < 22) {
      missing_.push_back(apex);
      continue;
    }
    // RFC 2308 §5: negative answers live min(SOA TTL, SOA MINIMUM).
    uint32_t minimum = LoadU32(entry.soa_rdata.data() + entry.soa_rdata.size() - 4);
    uint32_t ttl = std::min(soa.ttl, minimum);
    std::memcpy(entry.soa_header, soa.type_class_ttl.data(), 4);
    entry.soa_header[4] = static_cast<uint8_t>(ttl >> 24);
    entry.soa_header[5] = static_cast<uint8_t>(ttl >> 16);
    entry.soa_header[6] = static_cast<uint8_t>(ttl >> 8);
    entry.soa_header[7] = static_cast<uint8_t>(ttl);
    zones_.push_back(std::move(entry));
  }
  std::sort(zones_.begin(), zones_.end(),
            [](const ZoneEntry& a, const ZoneEntry& b) { return a.apex_labels > b.apex_labels; });
}

const ZoneEntry* ZoneIndex::Find(const Query& q) const noexcept {
  for (const ZoneEntry& zone : zones_) {
    if (zone.apex_labels > q.label_count) continue;
    size_t start = zone.apex_labels == 0 ? q.qname_size - 1u
                                         : q.label_offsets[q.label_count - zone.apex_labels];
    if (q.qname_size - start == zone.apex.size() &&
        std::memcmp(q.qname + start, zone.apex.data(), zone.apex.size()) == 0) {
      return &zone;
    }
  }
  return nullptr;
}

Result<std::unique_ptr<Responder>> Responder::Create(const storage::Store& store,
                                                     ResponderOptions options) {
  auto txn = store.BeginRead();
  if (!txn.ok()) return txn.status();
  auto cursor = txn->OpenCursor(storage::Table::kNodes);
  if (!cursor.ok()) return cursor.status();
  std::unique_ptr<Responder> responder(
      new Responder(std::move(txn).value(), std::move(cursor).value(), std::move(options)));
  responder->index_.Load(responder->txn_, responder->options_.zones);
  responder->generation_ = storage::ReadGeneration(responder->txn_);
  responder->txn_.Reset();
  return responder;
}

Status Responder::BeginBatch() noexcept {
  if (Status s = txn_.Renew(); !s.ok()) return s;
  if (Status s = storage::ReadTxn::RenewCursor(txn_, cursor_); !s.ok()) return s;
  uint64_t generation = storage::ReadGeneration(txn_);
  if (generation != generation_) {
    index_.Load(txn_, options_.zones);
    generation_ = generation;
  }
  return Status::Ok();
}

void Responder::EndBatch() noexcept { txn_.Reset(); }

void Responder::SetZones(std::vector<std::string> zones) {
  options_.zones = std::move(zones);
  generation_ = ~uint64_t{0};  // the next BeginBatch() reloads the index
}

size_t Responder::Respond(const uint8_t* in, size_t in_size, Transport transport, uint8_t* out,
                          size_t capacity) noexcept {
  Query& q = query_;
  ParseOutcome parsed = ParseQuery(in, in_size, q);
  if (parsed == ParseOutcome::kDrop) return 0;
  bool transfer = (q.qtype == type::kAXFR || q.qtype == type::kIXFR) && q.qclass == kClassIN &&
                  !(q.has_edns && q.edns_version > 0);
  if ((parsed == ParseOutcome::kNotImp && q.opcode == opcode::kUpdate) ||
      (parsed == ParseOutcome::kOk && (q.has_tsig || transfer))) {
    return kHandOff;
  }

  size_t limit = 512;
  if (transport == Transport::kTcp) {
    limit = 65535;
  } else if (q.has_edns) {
    limit = std::clamp<size_t>(q.edns_payload, 512, options_.udp_payload);
  }
  limit = std::min(limit, capacity);
  MessageWriter w(out, limit - (q.has_edns ? kOptRecordSize : 0));
  Sections s;
  s.flags = kFlagQR | (q.opcode << 11) | (q.flags & (kFlagRD | kFlagCD));
  uint8_t header[kHeaderSize] = {};
  (void)w.PutBytes(header, kHeaderSize);
  uint16_t qdcount = 0;
  if (!q.question.empty() && w.PutBytes(q.question.data(), q.question.size())) {
    qdcount = 1;
    w.AddCompressionTarget(kHeaderSize, q.qname_view());
  }

  if (parsed == ParseOutcome::kFormErr) {
    s.rcode = rcode::kFormErr;
  } else if (parsed == ParseOutcome::kNotImp) {
    s.rcode = rcode::kNotImp;
  } else if (q.has_edns && q.edns_version > 0) {
    s.extended_rcode = rcode::kBadVers;
  } else if (q.qclass != kClassIN) {
    s.rcode = rcode::kRefused;
  } else if (q.qtype == type::kOPT || q.qtype == type::kTSIG || q.qtype == type::kTKEY) {
    s.rcode = rcode::kFormErr;  // meta-types are not questions (RFC 6895 §3.1)
  } else if (q.qtype == type::kMAILA || q.qtype == type::kMAILB) {
    s.rcode = rcode::kNotImp;
  } else if (const ZoneEntry* zone = index_.Find(q)) {
    Resolver(txn_, cursor_, q, transport, w, s).Resolve(*zone);
  } else {
    s.rcode = rcode::kRefused;
  }

  if (q.has_edns) {
    // RFC 6891 §7: OPT in every answer to an EDNS query; room was reserved.
    w.SetLimit(limit);
    uint16_t extended = s.extended_rcode ? s.extended_rcode : s.rcode;
    uint8_t opt[kOptRecordSize] = {0,
                                   static_cast<uint8_t>(type::kOPT >> 8),
                                   static_cast<uint8_t>(type::kOPT & 0xff),
                                   static_cast<uint8_t>(options_.udp_payload >> 8),
                                   static_cast<uint8_t>(options_.udp_payload),
                                   static_cast<uint8_t>(extended >> 4),
                                   0,
                                   // RFC 3225 §3: the DO bit is copied from the query.
                                   static_cast<uint8_t>(q.edns_do ? 0x80 : 0),
                                   0, 0, 0};
    (void)w.PutBytes(opt, sizeof opt);
    ++s.additional;
    s.rcode = static_cast<uint8_t>(extended & 0x0F);
  }
  w.SetU16(0, q.id);
  w.SetU16(2, static_cast<uint16_t>(s.flags | s.rcode));
  w.SetU16(4, qdcount);
  w.SetU16(6, s.answer);
  w.SetU16(8, s.authority);
  w.SetU16(10, s.additional);
  return w.size();
}

}  // namespace updns::zone
