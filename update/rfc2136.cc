#include "update/rfc2136.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "common/log.h"
#include "storage/accounts.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "zone/journal.h"
#include "zone/name.h"
#include "zone/rdata.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"

namespace updns::update {
namespace {

namespace type = zone::type;
using zone::IsMetaType;
using zone::TypeText;
using zone::kClassANY;
using zone::kClassIN;
using zone::kHeaderSize;

constexpr uint16_t kClassNONE = 254;
constexpr size_t kMaxRdataSize = 65535;  // a node stores rdlength as u16

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Load32(const uint8_t* p) { return uint32_t{Load16(p)} << 16 | Load16(p + 2); }

std::string ClassText(uint16_t c) {
  if (c == kClassIN) return "IN";
  if (c == kClassANY) return "ANY";
  if (c == kClassNONE) return "NONE";
  return "CLASS" + std::to_string(c);
}

// Types that are questions or transport, never data (RFC 6895 §3.1: 128-255
// are QTYPEs and meta-TYPEs; 0 is reserved; OPT lives in no zone).

uint32_t SoaSerial(std::string_view rdata) {
  return storage::LoadU32(rdata.data() + rdata.size() - 20);
}

std::string WithSoaSerial(std::string rdata, uint32_t serial) {
  for (int i = 0; i < 4; ++i)
    rdata[rdata.size() - 20 + i] = static_cast<char>(serial >> (24 - 8 * i));
  return rdata;
}

std::string Show(std::string_view wire_name) { return zone::TextFromWireName(wire_name); }

std::string Show(const UpdateRR& rr) {
  return Show(rr.owner) + " " + ClassText(rr.rclass) + " " + TypeText(rr.type);
}

Status Malformed(std::string what) { return Status::Invalid("malformed UPDATE: " + what); }

// Reads one record at `pos`; `out` null for the additional section, whose
// rdata is only skipped.
Status ReadRecord(const zone::WireSource& src, size_t& pos, const std::string& where,
                  UpdateRR* out) {
  UpdateRR rr;
  size_t after = zone::ReadName(src, pos, src.size, /*lower=*/true, rr.owner);
  if (after == 0) return Malformed(where + ": bad or truncated owner name");
  if (src.size - after < 10) return Malformed(where + ": truncated after the owner name");
  const uint8_t* p = src.bytes + after;
  rr.type = Load16(p);
  rr.rclass = Load16(p + 2);
  rr.ttl = Load32(p + 4);
  size_t rdlength = Load16(p + 8);
  size_t start = after + 10;
  if (src.size - start < rdlength)
    return Malformed(where + " (" + Show(rr) + "): RDLENGTH " + std::to_string(rdlength) +
                     " runs past the end of the message");
  pos = start + rdlength;
  if (out == nullptr) return Status::Ok();
  bool fits = zone::CopyRdata(rr.type, src, start, start + rdlength, /*lower=*/false, rr.rdata);
  // Empty rdata is how ANY and NONE records say "no value" (RFC 2136 §2.4).
  bool empty_ok = rdlength == 0 && (rr.rclass == kClassANY || rr.rclass == kClassNONE);
  if (empty_ok) {
    rr.rdata.clear();
  } else if (!fits) {
    return Malformed(where + " (" + Show(rr) + "): " + std::to_string(rdlength) +
                     " bytes of rdata do not form a " + TypeText(rr.type) + " record");
  } else if (rr.rdata.size() > kMaxRdataSize) {
    return Malformed(where + " (" + Show(rr) +
                     "): rdata longer than 65535 bytes once decompressed");
  }
  *out = std::move(rr);
  return Status::Ok();
}

// ---- Policy --------------------------------------------------------------------

bool NameMatches(const std::string& pattern, std::string_view name) {
  if (pattern.size() >= 2 && pattern[0] == 1 && pattern[1] == '*') {
    std::string_view base = std::string_view(pattern).substr(2);
    return name.size() > base.size() && zone::IsSubdomain(name, base);
  }
  return name == pattern;
}

bool RuleNameMatches(const UpdateRule& rule, std::string_view name) {
  if (rule.names.empty()) return true;
  return std::any_of(rule.names.begin(), rule.names.end(),
                     [&](const std::string& pattern) { return NameMatches(pattern, name); });
}

bool RuleTypeMatches(const UpdateRule& rule, uint16_t t) {
  if (rule.types.empty()) return t != type::kSOA && t != type::kNS;
  return std::find(rule.types.begin(), rule.types.end(), t) != rule.types.end();
}

// ---- Applying one update -------------------------------------------------------

struct StoredRR {
  std::string rdata;      // as stored
  std::string canonical;  // as compared
};

struct RRset {
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  std::vector<StoredRR> rrs;
};

// One owner name as this update leaves it.
struct Node {
  zone::EditableNode edit;
  std::vector<RRset> sets;  // ascending type, as in the store
  bool had_ns = false;      // before the update
  bool touched = false;     // an update RR named it

  RRset* Find(uint16_t t) {
    for (RRset& s : sets) {
      if (s.type == t) return &s;
    }
    return nullptr;
  }
  bool Has(uint16_t t) { return Find(t) != nullptr; }
  void Erase(uint16_t t) {
    sets.erase(
        std::remove_if(sets.begin(), sets.end(), [&](const RRset& s) { return s.type == t; }),
        sets.end());
  }
  RRset& Insert(uint16_t t, uint16_t rclass, uint32_t ttl) {
    auto it = std::find_if(sets.begin(), sets.end(), [&](const RRset& s) { return s.type > t; });
    return *sets.insert(it, RRset{t, rclass, ttl, {}});
  }
};

// RFC 2136 §3 for one message, against the store as the nested transaction
// sees it. Each step either passes or sets the RCODE and returns its error.
class Applier {
 public:
  Applier(storage::WriteTxn& txn, const UpdateMessage& message, std::string_view client,
          uint64_t now)
      : txn_(txn), m_(message), apex_(message.zone), client_(client), now_(now) {}

  Status Run(const UpdatePolicy& policy, std::string_view key, WriteContext& context);
  uint8_t rcode() const { return rcode_; }
  size_t changed() const { return changed_; }

 private:
  Status Fail(uint8_t rcode, std::string why) {
    rcode_ = rcode;
    return Status::Invalid(std::move(why));
  }
  // A store error: the internal code is kept for the log, the client sees SERVFAIL.
  Status StoreFailed(const Status& s) {
    rcode_ = rcode::kServFail;
    return s.WithContext("zone " + Show(apex_) + ": ");
  }
  Result<Node*> Load(const std::string& name);
  bool Allowed(std::string_view name, uint16_t t) const;
  Status CheckPrerequisites();
  Status Prescan();
  Status Authorize(const UpdateRR& rr, const std::string& where);
  Status ApplyRecord(const UpdateRR& rr);
  void Add(Node& node, const UpdateRR& rr);
  void DeleteRR(Node& node, const UpdateRR& rr);
  Status Store(WriteContext& context);
  Result<std::optional<storage::HostRecord>> HostAt(const std::string& name);
  Status FollowHost(storage::HostRecord& host, Node& node);

  storage::WriteTxn& txn_;
  const UpdateMessage& m_;
  const std::string& apex_;
  std::string_view client_;
  uint64_t now_;
  std::vector<const UpdateRule*> rules_;  // the key's rules for this zone
  std::map<std::string, Node> nodes_;     // by lowercase wire owner
  uint8_t rcode_ = rcode::kNoError;
  bool soa_replaced_ = false;
  uint32_t soa_serial_ = 0;  // the serial the added SOA asked for
  size_t changed_ = 0;
};

Result<Node*> Applier::Load(const std::string& name) {
  auto [it, inserted] = nodes_.try_emplace(name);
  Node& node = it->second;
  if (!inserted) return &node;
  if (Status s = zone::LoadNodeForEdit(txn_, apex_, name, node.edit); !s.ok()) {
    nodes_.erase(it);
    return s;
  }
  if (node.edit.existed()) {
    storage::NodeView view(node.edit.original);
    if (!view.Valid()) {
      nodes_.erase(it);
      return Status::Corrupt("malformed node value for " + Show(name));
    }
    view.ForEach([&](const storage::RRsetView& set) {
      RRset rrset{set.type, set.rclass, set.ttl, {}};
      for (size_t pos = 0; pos < set.body.size();) {
        size_t len = storage::LoadU16(set.body.data() + pos);
        std::string_view rdata = set.body.substr(pos + 2, len);
        rrset.rrs.push_back({std::string(rdata), zone::CanonicalRdata(set.type, rdata)});
        pos += 2 + len;
      }
      node.sets.push_back(std::move(rrset));
      return true;
    });
  }
  node.had_ns = node.Has(type::kNS);
  return &node;
}

bool Applier::Allowed(std::string_view name, uint16_t t) const {
  return std::any_of(rules_.begin(), rules_.end(), [&](const UpdateRule* rule) {
    return RuleNameMatches(*rule, name) && RuleTypeMatches(*rule, t);
  });
}

Status Applier::Run(const UpdatePolicy& policy, std::string_view key, WriteContext& context) {
  const std::string zone_text = Show(apex_);
  // §3.1: the zone must be ours. Zones here are class IN only.
  if (m_.zone_class != kClassIN)
    return Fail(rcode::kNotAuth, "zone " + zone_text + " class " + ClassText(m_.zone_class) +
                                     ": only class IN is served");
  auto record = storage::ReadZoneRecord(txn_, apex_);
  if (!record.ok()) {
    if (record.status().IsNotFound())
      return Fail(rcode::kNotAuth, "zone " + zone_text + " is not served here");
    return StoreFailed(record.status());
  }
  // §3.3, coarsely, before the prerequisites: a key with no business in the
  // zone must not learn which names and RRsets exist through them.
  if (key.empty())
    return Fail(rcode::kRefused, "unsigned UPDATE for zone " + zone_text +
                                     ": updates need a TSIG key named in the zone's update rules");
  if (auto it = policy.find(apex_); it != policy.end()) {
    for (const UpdateRule& rule : it->second) {
      if (rule.key == key) rules_.push_back(&rule);
    }
  }
  if (rules_.empty())
    return Fail(rcode::kRefused, "key " + Show(key) + " has no update rule for zone " + zone_text);

  if (Status s = CheckPrerequisites(); !s.ok()) return s;
  if (Status s = Prescan(); !s.ok()) return s;
  for (const UpdateRR& rr : m_.updates) {
    if (Status s = ApplyRecord(rr); !s.ok()) return s;
  }
  return Store(context);
}

// §3.2: every prerequisite against the zone as it was before this update.
Status Applier::CheckPrerequisites() {
  // Value-dependent prerequisites, gathered per RRset (§3.2.3).
  std::map<std::pair<std::string, uint16_t>, std::vector<std::string>> expected;
  for (size_t i = 0; i < m_.prerequisites.size(); ++i) {
    const UpdateRR& rr = m_.prerequisites[i];
    const std::string where = "prerequisite " + std::to_string(i + 1) + " (" + Show(rr) + ")";
    if (rr.ttl != 0) return Fail(rcode::kFormErr, where + ": TTL must be 0");
    if (!zone::IsSubdomain(rr.owner, apex_))
      return Fail(rcode::kNotZone, where + ": name is outside zone " + Show(apex_));
    if (rr.rclass == kClassANY || rr.rclass == kClassNONE) {
      if (!rr.rdata.empty()) return Fail(rcode::kFormErr, where + ": rdata must be empty");
      auto node = Load(rr.owner);
      if (!node.ok()) return StoreFailed(node.status());
      const bool any = rr.type == type::kANY;
      const bool exists = any ? !(*node)->sets.empty() : (*node)->Has(rr.type);
      if (rr.rclass == kClassANY && !exists) {
        return any ? Fail(rcode::kNXDomain, where + ": name is not in use")
                   : Fail(rcode::kNXRRset, where + ": RRset does not exist");
      }
      if (rr.rclass == kClassNONE && exists) {
        return any ? Fail(rcode::kYXDomain, where + ": name is in use")
                   : Fail(rcode::kYXRRset, where + ": RRset exists");
      }
    } else if (rr.rclass == m_.zone_class) {
      std::vector<std::string>& rdatas = expected[{rr.owner, rr.type}];
      std::string canonical = zone::CanonicalRdata(rr.type, rr.rdata);
      if (std::find(rdatas.begin(), rdatas.end(), canonical) == rdatas.end())
        rdatas.push_back(std::move(canonical));
    } else {
      return Fail(rcode::kFormErr, where + ": class must be IN, ANY or NONE");
    }
  }
  // (No structured bindings: clang before 16 cannot capture them.)
  for (const auto& entry : expected) {
    const std::pair<std::string, uint16_t>& owner_type = entry.first;
    const std::vector<std::string>& rdatas = entry.second;
    auto node = Load(owner_type.first);
    if (!node.ok()) return StoreFailed(node.status());
    const RRset* set = (*node)->Find(owner_type.second);
    auto in_zone = [&](const std::string& c) {
      return std::any_of(set->rrs.begin(), set->rrs.end(),
                         [&](const StoredRR& rr) { return rr.canonical == c; });
    };
    auto in_request = [&](const StoredRR& rr) {
      return std::find(rdatas.begin(), rdatas.end(), rr.canonical) != rdatas.end();
    };
    if (set == nullptr || !std::all_of(rdatas.begin(), rdatas.end(), in_zone) ||
        !std::all_of(set->rrs.begin(), set->rrs.end(), in_request)) {
      return Fail(rcode::kNXRRset, "prerequisite: RRset " + Show(owner_type.first) + " " +
                                       TypeText(owner_type.second) +
                                       " does not hold exactly the records given");
    }
  }
  return Status::Ok();
}

// §3.4.1 and §3.3, record by record, before anything changes.
Status Applier::Prescan() {
  for (size_t i = 0; i < m_.updates.size(); ++i) {
    const UpdateRR& rr = m_.updates[i];
    const std::string where = "update " + std::to_string(i + 1) + " (" + Show(rr) + ")";
    if (!zone::IsSubdomain(rr.owner, apex_))
      return Fail(rcode::kNotZone, where + ": name is outside zone " + Show(apex_));
    if (rr.rclass == m_.zone_class) {
      if (IsMetaType(rr.type)) return Fail(rcode::kFormErr, where + ": this type cannot be added");
    } else if (rr.rclass == kClassANY) {
      if (rr.ttl != 0 || !rr.rdata.empty())
        return Fail(rcode::kFormErr, where + ": a deletion has TTL 0 and no rdata");
      if (IsMetaType(rr.type) && rr.type != type::kANY)
        return Fail(rcode::kFormErr, where + ": this type cannot be deleted");
    } else if (rr.rclass == kClassNONE) {
      if (rr.ttl != 0) return Fail(rcode::kFormErr, where + ": a deletion has TTL 0");
      if (IsMetaType(rr.type))
        return Fail(rcode::kFormErr, where + ": this type cannot be deleted");
    } else {
      return Fail(rcode::kFormErr, where + ": class must be IN, ANY or NONE");
    }
    if (Status s = Authorize(rr, where); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Applier::Authorize(const UpdateRR& rr, const std::string& where) {
  const bool apex = rr.owner == apex_;
  const bool named = std::any_of(rules_.begin(), rules_.end(), [&](const UpdateRule* rule) {
    return RuleNameMatches(*rule, rr.owner);
  });
  // Deletions §3.4.2.3/§3.4.2.4 always ignore (the SOA; the apex NS RRset)
  // change nothing, so they need a rule for the name only: a key without
  // SOA and NS in its types may still send "delete the apex", as it is.
  const bool ignored =
      (rr.rclass == kClassANY || rr.rclass == kClassNONE) &&
      (rr.type == type::kSOA || (apex && rr.rclass == kClassANY && rr.type == type::kNS));
  if (ignored && named) return Status::Ok();
  if (rr.rclass != kClassANY || rr.type != type::kANY) {
    if (Allowed(rr.owner, rr.type)) return Status::Ok();
    return Fail(rcode::kRefused,
                where + ": the key's update rules do not allow this name and type");
  }
  // Deleting every RRset of a name deletes whatever types it holds: each
  // must be allowed (the apex keeps SOA and NS anyway). A name with no
  // data needs a rule for the name.
  if (!named)
    return Fail(rcode::kRefused, where + ": the key's update rules do not cover this name");
  auto node = Load(rr.owner);
  if (!node.ok()) return StoreFailed(node.status());
  for (const RRset& set : (*node)->sets) {
    if (apex && (set.type == type::kSOA || set.type == type::kNS)) continue;
    if (!Allowed(rr.owner, set.type))
      return Fail(rcode::kRefused, where + ": the name holds " + TypeText(set.type) +
                                       " records, which the key's update rules do not allow");
  }
  return Status::Ok();
}

// §3.4.2.
Status Applier::ApplyRecord(const UpdateRR& rr) {
  auto loaded = Load(rr.owner);
  if (!loaded.ok()) return StoreFailed(loaded.status());
  Node& node = **loaded;
  node.touched = true;
  const bool apex = rr.owner == apex_;
  if (rr.rclass == m_.zone_class) {
    Add(node, rr);
  } else if (rr.rclass == kClassANY && rr.type == type::kANY) {
    node.sets.erase(std::remove_if(node.sets.begin(), node.sets.end(),
                                   [&](const RRset& s) {
                                     return !apex || (s.type != type::kSOA && s.type != type::kNS);
                                   }),
                    node.sets.end());
  } else if (rr.rclass == kClassANY) {
    if (!apex || (rr.type != type::kSOA && rr.type != type::kNS)) node.Erase(rr.type);
  } else {
    DeleteRR(node, rr);
  }
  return Status::Ok();
}

void Applier::Add(Node& node, const UpdateRR& rr) {
  // RFC 2181 §8: a TTL with the top bit set is taken as 0.
  const uint32_t ttl = (rr.ttl & 0x80000000u) ? 0 : rr.ttl;
  std::string canonical = zone::CanonicalRdata(rr.type, rr.rdata);
  if (rr.type == type::kSOA) {
    // Only the apex has an SOA to replace; elsewhere there is none (§3.4.2.2).
    RRset* soa = rr.owner == apex_ ? node.Find(type::kSOA) : nullptr;
    if (soa == nullptr || soa->rrs.empty() || soa->rrs.front().rdata.size() < 22) return;
    uint32_t serial = SoaSerial(rr.rdata);
    if (!zone::SerialAfter(serial, SoaSerial(soa->rrs.front().rdata))) return;
    soa->rrs = {StoredRR{rr.rdata, std::move(canonical)}};
    soa->ttl = ttl;
    soa_replaced_ = true;
    soa_serial_ = serial;
    return;
  }
  // RFC 1034 §3.6.2: a CNAME owner holds nothing else; RFC 4035 §2.5 lets
  // RRSIG and NSEC stay with it. Conflicting adds are ignored (§3.4.2.2).
  auto with_cname = [](uint16_t t) {
    return t == type::kCNAME || t == type::kRRSIG || t == type::kNSEC;
  };
  if (rr.type == type::kCNAME) {
    if (RRset* cname = node.Find(type::kCNAME)) {
      cname->ttl = ttl;
      if (cname->rrs.size() != 1 || cname->rrs.front().canonical != canonical)
        cname->rrs = {StoredRR{rr.rdata, std::move(canonical)}};
      return;
    }
    if (!std::all_of(node.sets.begin(), node.sets.end(),
                     [&](const RRset& s) { return with_cname(s.type); }))
      return;
  } else if (!with_cname(rr.type) && node.Has(type::kCNAME)) {
    return;
  }
  RRset* set = node.Find(rr.type);
  if (set == nullptr) set = &node.Insert(rr.type, rr.rclass, ttl);
  // One TTL per RRset (RFC 2181 §5.2): the last one given wins, as in BIND.
  set->ttl = ttl;
  bool present = std::any_of(set->rrs.begin(), set->rrs.end(),
                             [&](const StoredRR& s) { return s.canonical == canonical; });
  if (!present) set->rrs.push_back({rr.rdata, std::move(canonical)});
}

void Applier::DeleteRR(Node& node, const UpdateRR& rr) {
  if (rr.type == type::kSOA) return;  // §3.4.2.4: the SOA stays
  RRset* set = node.Find(rr.type);
  if (set == nullptr) return;
  const std::string canonical = zone::CanonicalRdata(rr.type, rr.rdata);
  auto matches = [&](const StoredRR& s) { return s.canonical == canonical; };
  size_t count = static_cast<size_t>(std::count_if(set->rrs.begin(), set->rrs.end(), matches));
  if (count == 0) return;
  // §3.4.2.4: the apex keeps at least one NS.
  if (rr.type == type::kNS && rr.owner == apex_ && count == set->rrs.size()) return;
  set->rrs.erase(std::remove_if(set->rrs.begin(), set->rrs.end(), matches), set->rrs.end());
  if (set->rrs.empty()) node.Erase(rr.type);
}

Result<std::optional<storage::HostRecord>> Applier::HostAt(const std::string& name) {
  std::string text = Show(name);
  if (text.size() > 1) text.pop_back();  // hosts are keyed without the final dot
  auto value = txn_.Get(storage::Table::kHosts, text);
  if (!value) return std::optional<storage::HostRecord>();
  auto host = storage::HostRecord::Decode(*value);
  if (!host.ok()) return host.status().WithContext("host " + text + ": ");
  // A host of another configured zone lives in that zone's nodes, not here.
  std::string zone_text = Show(apex_);
  if (zone_text.size() > 1) zone_text.pop_back();
  if (host->zone != zone_text) return std::optional<storage::HostRecord>();
  return std::optional<storage::HostRecord>(std::move(host).value());
}

// The host record follows its node, so that a zone re-import, which writes
// hosts' addresses back over the file, keeps what this update did.
Status Applier::FollowHost(storage::HostRecord& host, Node& node) {
  auto first = [&](uint16_t t, size_t size) {
    const RRset* set = node.Find(t);
    if (set == nullptr) return std::string();
    for (const StoredRR& rr : set->rrs) {
      if (rr.rdata.size() == size) return rr.rdata;
    }
    return std::string();
  };
  std::string ipv4 = first(type::kA, 4), ipv6 = first(type::kAAAA, 16);
  if (ipv4 == host.ipv4 && ipv6 == host.ipv6) return Status::Ok();
  host.ipv4 = std::move(ipv4);
  host.ipv6 = std::move(ipv6);
  host.updated_at = now_;
  host.updated_from = std::string(client_);
  return txn_.Put(storage::Table::kHosts, host.name, host.Encode());
}

Status Applier::Store(WriteContext& context) {
  int64_t delegation_delta = 0;
  for (auto& [name, node] : nodes_) {
    if (!node.touched) continue;
    storage::NodeBuilder builder;
    for (const RRset& set : node.sets) {
      for (const StoredRR& rr : set.rrs) {
        // The writer bumps the serial of the group's changed zones by one:
        // store one below the serial asked for, so that it is the one served.
        bool soa = soa_replaced_ && set.type == type::kSOA && name == apex_;
        builder.Add(set.type, set.rclass, set.ttl,
                    soa ? WithSoaSerial(rr.rdata, soa_serial_ - 1) : rr.rdata);
      }
    }
    auto host = HostAt(name);
    if (!host.ok()) return StoreFailed(host.status());
    const bool is_host = host->has_value();
    std::string value;
    if (!builder.empty()) {
      auto encoded = builder.Encode();
      if (!encoded.ok())
        return Fail(rcode::kRefused, Show(name) + ": " + std::string(encoded.status().message()));
      value = std::move(encoded).value();
    }
    if (value == node.edit.original) continue;
    node.edit.node = std::move(builder);
    if (Status s = zone::StoreNode(txn_, node.edit); !s.ok())
      return StoreFailed(s);
    ++changed_;
    if (name != apex_) delegation_delta += int64_t{node.Has(type::kNS)} - int64_t{node.had_ns};
    if (is_host) {
      if (Status s = FollowHost(**host, node); !s.ok()) return StoreFailed(s);
    }
  }
  if (delegation_delta != 0) {
    // The responder skips delegation lookups in zones that have none.
    auto record = storage::ReadZoneRecord(txn_, apex_);
    if (!record.ok()) return StoreFailed(record.status());
    int64_t count = std::clamp<int64_t>(int64_t{record->delegation_count} + delegation_delta, 0,
                                        std::numeric_limits<uint32_t>::max());
    record->delegation_count = static_cast<uint32_t>(count);
    if (Status s =
            txn_.Put(storage::Table::kZones, storage::CanonicalName(apex_), record->Encode());
        !s.ok())
      return StoreFailed(s);
  }
  // An SOA replaced by one whose serial is the current one plus one stores
  // the same bytes, yet the bump must still happen to reach that serial.
  if (changed_ > 0 || soa_replaced_) context.ZoneChanged(apex_);
  return Status::Ok();
}

}  // namespace

std::string RcodeText(uint8_t code) {
  static constexpr std::string_view kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                                "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (code < std::size(kNames)) return std::string(kNames[code]);
  return "RCODE" + std::to_string(code);
}

Result<UpdateMessage> ParseUpdateMessage(const uint8_t* message, size_t size) {
  if (message == nullptr || size < kHeaderSize) return Malformed("shorter than a DNS header");
  const uint16_t flags = Load16(message + 2);
  if (flags & 0x8000) return Malformed("a response, not a request");
  if (((flags >> 11) & 0x0F) != zone::opcode::kUpdate) return Malformed("the opcode is not UPDATE");
  const uint16_t zocount = Load16(message + 4), prcount = Load16(message + 6),
                 upcount = Load16(message + 8), adcount = Load16(message + 10);
  // §3.1.1.
  if (zocount != 1)
    return Malformed("ZOCOUNT is " + std::to_string(zocount) + "; an update names one zone");
  UpdateMessage m;
  m.id = Load16(message);
  const zone::WireSource src{message, size, true};
  size_t pos = zone::ReadName(src, kHeaderSize, size, /*lower=*/true, m.zone);
  if (pos == 0) return Malformed("bad or truncated zone name");
  if (size - pos < 4) return Malformed("zone section truncated");
  const uint16_t ztype = Load16(message + pos);
  m.zone_class = Load16(message + pos + 2);
  pos += 4;
  if (ztype != type::kSOA)
    return Malformed("zone section type is " + TypeText(ztype) + "; it must be SOA");
  // Each record takes at least 11 bytes: no count can make us reserve more
  // than the message could hold.
  m.prerequisites.reserve(std::min<size_t>(prcount, (size - pos) / 11));
  for (size_t i = 0; i < prcount; ++i) {
    UpdateRR& rr = m.prerequisites.emplace_back();
    if (Status s = ReadRecord(src, pos, "prerequisite " + std::to_string(i + 1), &rr); !s.ok())
      return s;
  }
  m.updates.reserve(std::min<size_t>(upcount, (size - pos) / 11));
  for (size_t i = 0; i < upcount; ++i) {
    UpdateRR& rr = m.updates.emplace_back();
    if (Status s = ReadRecord(src, pos, "update " + std::to_string(i + 1), &rr); !s.ok()) return s;
  }
  for (size_t i = 0; i < adcount; ++i) {
    if (Status s = ReadRecord(src, pos, "additional " + std::to_string(i + 1), nullptr); !s.ok())
      return s;
  }
  if (pos != size) return Malformed(std::to_string(size - pos) + " bytes after the last record");
  return m;
}

size_t BuildUpdateResponse(const uint8_t* request, size_t size, uint8_t rcode, uint8_t* out,
                           size_t capacity) noexcept {
  if (request == nullptr || out == nullptr || size < kHeaderSize || capacity < kHeaderSize)
    return 0;
  // The zone section is echoed verbatim: its name is the message's first,
  // which cannot be compressed, so checking it label by label suffices.
  size_t end = 0;
  if (Load16(request + 4) == 1) {
    size_t pos = kHeaderSize, length = 0;
    while (pos < size && length < zone::kMaxNameSize) {
      uint8_t len = request[pos];
      if (len & 0xC0) break;
      length += 1 + len;
      pos += 1 + len;
      if (len == 0) {
        if (length <= zone::kMaxNameSize && pos + 4 <= size) end = pos + 4;
        break;
      }
    }
  }
  if (end == 0) rcode = rcode::kFormErr;
  const size_t total = end == 0 ? kHeaderSize : end;
  if (total > capacity) return 0;
  std::memset(out, 0, kHeaderSize);
  out[0] = request[0];
  out[1] = request[1];
  out[2] = static_cast<uint8_t>(0x80 | zone::opcode::kUpdate << 3);
  out[3] = rcode & 0x0F;
  if (end != 0) {
    out[5] = 1;
    std::memcpy(out + kHeaderSize, request + kHeaderSize, end - kHeaderSize);
  }
  return total;
}

UpdateRequest::UpdateRequest(UpdateMessage message, std::string key, std::string client,
                             UpdatePolicyPtr policy, Callback done)
    : message_(std::move(message)),
      key_(std::move(key)),
      client_(std::move(client)),
      policy_(std::move(policy)),
      done_(std::move(done)) {
  zone::LowercaseWireName(key_);
}

Status UpdateRequest::Apply(storage::WriteTxn& txn, WriteContext& context) {
  Applier applier(txn, message_, client_, context.now());
  static const UpdatePolicy kNoPolicy;
  Status s = applier.Run(policy_ ? *policy_ : kNoPolicy, key_, context);
  rcode_ = applier.rcode();
  changed_names_ = applier.changed();
  // A refusal that somehow carried no RCODE must not read as success.
  if (!s.ok() && rcode_ == rcode::kNoError) rcode_ = rcode::kServFail;
  return s;
}

void UpdateRequest::Done(const Status& status) {
  // Apply's verdict when it refused; SERVFAIL when the store or the commit
  // failed after Apply passed, since then nothing was written.
  const uint8_t code = status.ok()                 ? rcode::kNoError
                       : rcode_ != rcode::kNoError ? rcode_
                                                   : rcode::kServFail;
  const std::string zone_text = Show(message_.zone);
  const std::string key_text = key_.empty() ? std::string("(unsigned)") : Show(key_);
  if (code == rcode::kNoError) {
    Log(LogLevel::kDebug, "rfc2136_update",
        {{"zone", zone_text},
         {"peer", client_},
         {"key", key_text},
         {"rcode", "NOERROR"},
         {"names_changed", changed_names_}});
  } else {
    LogLevel level = code == rcode::kServFail  ? LogLevel::kError
                     : code == rcode::kRefused ? LogLevel::kWarning
                                               : LogLevel::kInfo;
    Log(level, "rfc2136_update",
        {{"zone", zone_text},
         {"peer", client_},
         {"key", key_text},
         {"rcode", RcodeText(code)},
         {"error", status}});
  }
  if (done_) done_(code);
}

}  // namespace updns::update
