#include "zone/journal.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "storage/codec.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "zone/wire.h"

namespace updns::zone {
namespace {

using storage::LoadU16;
using storage::LoadU32;
using storage::Table;

constexpr uint8_t kStateVersion = 1, kEntryVersion = 1, kSoaVersion = 1;
constexpr char kKindState = 0, kKindEntry = 1, kKindOldSoa = 2, kKindStaged = 3;
constexpr char kRemoved = 0, kAdded = 1;
constexpr size_t kEntryHeaderSize = 1 + 4 + 4;

std::string ZoneKey(uint32_t zone_id, char kind) { return storage::EncodeU32(zone_id) + kind; }
std::string EntryKey(uint32_t zone_id, uint64_t sequence) {
  return ZoneKey(zone_id, kKindEntry) + storage::EncodeU64(sequence);
}

void AppendU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void AppendU32(std::string& out, uint32_t v) {
  AppendU16(out, static_cast<uint16_t>(v >> 16));
  AppendU16(out, static_cast<uint16_t>(v));
}

// The SOA as entries hold it (without the version byte of the staged row).
void AppendSoa(std::string& out, const SoaRecord& soa) {
  AppendU16(out, soa.rclass);
  AppendU32(out, soa.ttl);
  AppendU16(out, static_cast<uint16_t>(soa.rdata.size()));
  out.append(soa.rdata);
}

// Reads an SOA at `*pos` of `bytes`; false when it does not fit or is too
// short to hold two names and five u32s.
bool ParseSoa(std::string_view bytes, size_t* pos, SoaRecord* soa) noexcept {
  if (*pos + 8 > bytes.size()) return false;
  const char* p = bytes.data() + *pos;
  soa->rclass = LoadU16(p);
  soa->ttl = LoadU32(p + 2);
  size_t rdlength = LoadU16(p + 6);
  if (rdlength < 22 || *pos + 8 + rdlength > bytes.size()) return false;
  soa->rdata = bytes.substr(*pos + 8, rdlength);
  *pos += 8 + rdlength;
  return true;
}

// Checks the RR at `*pos` and moves past it.
bool SkipRR(std::string_view bytes, size_t* pos) noexcept {
  if (*pos >= bytes.size()) return false;
  size_t owner_size = static_cast<uint8_t>(bytes[*pos]);
  size_t at = *pos + 1;
  if (owner_size == 0 || at + owner_size + 10 > bytes.size()) return false;
  // Transfers write the owner as a name: it must be one.
  if (WireNameLength(bytes.substr(at, owner_size)) != owner_size) return false;
  at += owner_size;
  size_t rdlength = LoadU16(bytes.data() + at + 8);
  if (at + 10 + rdlength > bytes.size()) return false;
  *pos = at + 10 + rdlength;
  return true;
}

void AppendRR(std::string& out, std::string_view owner, uint16_t type, uint16_t rclass,
              uint32_t ttl, std::string_view rdata) {
  out.push_back(static_cast<char>(owner.size()));
  out.append(owner);
  AppendU16(out, type);
  AppendU16(out, rclass);
  AppendU32(out, ttl);
  AppendU16(out, static_cast<uint16_t>(rdata.size()));
  out.append(rdata);
}

// The RRs of a node value as RRset views, in type order; false when the
// value is not a well-formed node. An empty value is a node without RRsets.
bool CollectRRsets(std::string_view value, std::vector<storage::RRsetView>& out) {
  if (value.empty()) return true;
  storage::NodeView node(value);
  if (!node.Valid()) return false;
  node.ForEach([&](const storage::RRsetView& set) {
    out.push_back(set);
    return true;
  });
  return true;
}

// The rdatas of an RRset body (u16 rdlength + rdata, repeated).
std::vector<std::string_view> Rdatas(const storage::RRsetView& set) {
  std::vector<std::string_view> rdatas;
  for (size_t pos = 0; pos + 2 <= set.body.size();) {
    size_t len = LoadU16(set.body.data() + pos);
    rdatas.push_back(set.body.substr(pos + 2, len));
    pos += 2 + len;
  }
  return rdatas;
}

class Stager {
 public:
  Stager(storage::WriteTxn& txn, uint32_t zone_id, std::string_view owner)
      : txn_(txn), prefix_(ZoneKey(zone_id, kKindStaged)), owner_(owner) {}

  // Stages one RR as removed or added. The key is a digest of the RR (an
  // RR may be up to 64 KiB, an LMDB key at most 511 bytes), so the opposite
  // change of the same RR finds it and both cancel out.
  Status Stage(char op, const storage::RRsetView& set, std::string_view rdata) {
    rr_.clear();
    AppendRR(rr_, owner_, set.type, set.rclass, set.ttl, rdata);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    if (EVP_Digest(rr_.data(), rr_.size(), digest, &digest_size, EVP_sha256(), nullptr) != 1)
      return Status::IoError("journal: SHA-256 failed (OpenSSL)");
    key_.assign(prefix_);
    key_.append(reinterpret_cast<const char*>(digest), digest_size);
    if (auto staged = txn_.Get(Table::kJournal, key_); staged && !staged->empty()) {
      if ((*staged)[0] != op) return txn_.Delete(Table::kJournal, key_);
      return Status::Ok();  // already staged the same way
    }
    value_.assign(1, op);
    value_ += rr_;
    return txn_.Put(Table::kJournal, key_, value_);
  }

  Status StageAll(char op, const storage::RRsetView& set) {
    for (std::string_view rdata : Rdatas(set)) {
      if (Status s = Stage(op, set, rdata); !s.ok()) return s;
    }
    return Status::Ok();
  }

 private:
  storage::WriteTxn& txn_;
  std::string prefix_;
  std::string_view owner_;
  std::string rr_, key_, value_;  // reused per RR
};

// The first RR of an SOA RRset as a SoaRecord; false when too short.
bool SoaOf(const storage::RRsetView& set, SoaRecord* soa) {
  if (set.body.size() < 2) return false;
  size_t len = LoadU16(set.body.data());
  if (len < 22 || 2 + len > set.body.size()) return false;
  *soa = {set.rclass, set.ttl, set.body.substr(2, len)};
  return true;
}

Status DeletePrefix(storage::WriteTxn& txn, std::string_view prefix) {
  auto cursor = txn.OpenCursor(Table::kJournal);
  if (!cursor.ok()) return cursor.status();
  // After a delete the cursor stands on the entry that followed.
  for (bool more = cursor->Seek(prefix); more && cursor->key().starts_with(prefix);
       more = cursor->Next()) {
    if (Status s = cursor->Delete(); !s.ok()) return s;
  }
  return Status::Ok();
}

std::string EncodeState(const JournalInfo& info) {
  storage::Encoder e;
  e.U8(kStateVersion).U64(info.first).U64(info.next).U64(info.bytes);
  return e.Take();
}

Status PutState(storage::WriteTxn& txn, uint32_t zone_id, const JournalInfo& info) {
  return txn.Put(Table::kJournal, ZoneKey(zone_id, kKindState), EncodeState(info));
}

}  // namespace

bool SerialAfter(uint32_t a, uint32_t b) noexcept {
  return a != b && static_cast<uint32_t>(a - b) < 0x80000000u;
}

uint32_t SoaRecord::serial() const noexcept { return LoadU32(rdata.data() + rdata.size() - 20); }

std::optional<JournalEntryView::Serials> JournalEntryView::PeekSerials(
    std::string_view value) noexcept {
  if (value.size() < kEntryHeaderSize || static_cast<uint8_t>(value[0]) != kEntryVersion)
    return std::nullopt;
  return Serials{LoadU32(value.data() + 1), LoadU32(value.data() + 5)};
}

bool JournalEntryView::Parse(std::string_view value) noexcept {
  auto serials = PeekSerials(value);
  if (!serials) return false;
  size_t pos = kEntryHeaderSize;
  if (!ParseSoa(value, &pos, &old_soa_) || !ParseSoa(value, &pos, &new_soa_)) return false;
  if (old_soa_.serial() != serials->from || new_soa_.serial() != serials->to) return false;
  if (pos + 8 > value.size()) return false;
  removed_ = LoadU32(value.data() + pos);
  added_ = LoadU32(value.data() + pos + 4);
  pos += 8;
  removed_begin_ = pos;
  for (uint32_t i = 0; i < removed_; ++i) {
    if (!SkipRR(value, &pos)) return false;
  }
  added_begin_ = pos;
  for (uint32_t i = 0; i < added_; ++i) {
    if (!SkipRR(value, &pos)) return false;
  }
  bytes_ = value;
  return pos == value.size();
}

JournalRR JournalEntryView::ReadRR(size_t* pos) const noexcept {
  JournalRR rr;
  size_t owner_size = static_cast<uint8_t>(bytes_[*pos]);
  rr.owner = bytes_.substr(*pos + 1, owner_size);
  const char* p = bytes_.data() + *pos + 1 + owner_size;
  rr.type = LoadU16(p);
  rr.rclass = LoadU16(p + 2);
  rr.ttl = LoadU32(p + 4);
  size_t rdlength = LoadU16(p + 8);
  rr.rdata = {p + 10, rdlength};
  *pos += 1 + owner_size + 10 + rdlength;
  return rr;
}

JournalInfo ReadJournalInfo(const storage::Txn& txn, uint32_t zone_id) noexcept {
  JournalInfo info;
  auto value = txn.Get(Table::kJournal, ZoneKey(zone_id, kKindState));
  if (!value || value->size() != 25 || static_cast<uint8_t>((*value)[0]) != kStateVersion)
    return info;
  info.first = storage::DecodeU64(value->substr(1));
  info.next = storage::DecodeU64(value->substr(9));
  info.bytes = storage::DecodeU64(value->substr(17));
  if (info.next < info.first) return JournalInfo{};
  return info;
}

std::optional<std::string_view> ReadJournalEntry(const storage::Txn& txn, uint32_t zone_id,
                                                 uint64_t sequence) noexcept {
  char key[13];
  for (int i = 0; i < 4; ++i) key[i] = static_cast<char>(zone_id >> (24 - 8 * i));
  key[4] = kKindEntry;
  for (int i = 0; i < 8; ++i) key[5 + i] = static_cast<char>(sequence >> (56 - 8 * i));
  return txn.Get(Table::kJournal, {key, sizeof key});
}

Result<std::vector<JournalEntry>> ReadJournal(const storage::Txn& txn, uint32_t zone_id) {
  std::vector<JournalEntry> entries;
  JournalInfo info = ReadJournalInfo(txn, zone_id);
  for (uint64_t seq = info.first; seq < info.next; ++seq) {
    auto value = ReadJournalEntry(txn, zone_id, seq);
    JournalEntryView view;
    if (!value || !view.Parse(*value))
      return Status::Corrupt("journal of zone id " + std::to_string(zone_id) + ": entry " +
                             std::to_string(seq) + " is missing or malformed");
    JournalEntry entry;
    entry.sequence = seq;
    entry.old_serial = view.old_serial();
    entry.new_serial = view.new_serial();
    entry.old_soa_rdata = std::string(view.old_soa().rdata);
    entry.new_soa_rdata = std::string(view.new_soa().rdata);
    auto copy = [&](size_t begin, size_t end, std::vector<OwnedRR>& out) {
      for (size_t pos = begin; pos < end;) {
        JournalRR rr = view.ReadRR(&pos);
        out.push_back({std::string(rr.owner), rr.type, rr.rclass, rr.ttl, std::string(rr.rdata)});
      }
    };
    copy(view.removed_begin(), view.added_begin(), entry.removed);
    copy(view.added_begin(), view.end(), entry.added);
    entries.push_back(std::move(entry));
  }
  return entries;
}

size_t StagedChangeCount(const storage::Txn& txn, uint32_t zone_id) {
  auto cursor = txn.OpenCursor(Table::kJournal);
  if (!cursor.ok()) return 0;
  size_t count = 0;
  for (char kind : {kKindOldSoa, kKindStaged}) {
    std::string prefix = ZoneKey(zone_id, kind);
    for (bool more = cursor->Seek(prefix); more && cursor->key().starts_with(prefix);
         more = cursor->Next()) {
      ++count;
    }
  }
  return count;
}

Status StageNodeChange(storage::WriteTxn& txn, uint32_t zone_id, std::string_view owner,
                       std::string_view old_value, std::string_view new_value) {
  if (old_value == new_value) return Status::Ok();
  std::vector<storage::RRsetView> before, after;
  if (!CollectRRsets(old_value, before) || !CollectRRsets(new_value, after))
    return Status::Corrupt("journal: a malformed node value");
  Stager stager(txn, zone_id, owner);
  // Notes the SOA a change starts from; the SOA's own change is the entry's
  // old and new SOA, never RRs of it.
  auto note_soa = [&](const storage::RRsetView& set) {
    SoaRecord soa;
    if (!SoaOf(set, &soa)) return Status::Corrupt("journal: a malformed SOA record");
    return NoteOldSoa(txn, zone_id, soa);
  };
  // Both lists are in type order: merge them.
  size_t i = 0, j = 0;
  while (i < before.size() || j < after.size()) {
    Status s;
    if (j == after.size() || (i < before.size() && before[i].type < after[j].type)) {
      const auto& set = before[i++];
      s = set.type == type::kSOA ? note_soa(set) : stager.StageAll(kRemoved, set);
    } else if (i == before.size() || after[j].type < before[i].type) {
      const auto& set = after[j++];
      // An SOA appears only with a new zone, whose journal starts after it.
      if (set.type != type::kSOA) s = stager.StageAll(kAdded, set);
    } else {
      const auto& old_set = before[i++];
      const auto& new_set = after[j++];
      bool same = old_set.type_class_ttl == new_set.type_class_ttl && old_set.body == new_set.body;
      if (same) continue;
      if (old_set.type == type::kSOA) {
        s = note_soa(old_set);
      } else if (old_set.type_class_ttl != new_set.type_class_ttl) {
        // RFC 2181 §5.2: the TTL belongs to the RRset, so every RR changed.
        s = stager.StageAll(kRemoved, old_set);
        if (s.ok()) s = stager.StageAll(kAdded, new_set);
      } else {
        std::vector<std::string_view> old_rdatas = Rdatas(old_set), new_rdatas = Rdatas(new_set);
        for (std::string_view rdata : old_rdatas) {
          if (s.ok() && std::find(new_rdatas.begin(), new_rdatas.end(), rdata) == new_rdatas.end())
            s = stager.Stage(kRemoved, old_set, rdata);
        }
        for (std::string_view rdata : new_rdatas) {
          if (s.ok() && std::find(old_rdatas.begin(), old_rdatas.end(), rdata) == old_rdatas.end())
            s = stager.Stage(kAdded, new_set, rdata);
        }
      }
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status NoteOldSoa(storage::WriteTxn& txn, uint32_t zone_id, const SoaRecord& soa) {
  std::string key = ZoneKey(zone_id, kKindOldSoa);
  if (txn.Get(Table::kJournal, key)) return Status::Ok();
  std::string value(1, static_cast<char>(kSoaVersion));
  AppendSoa(value, soa);
  return txn.Put(Table::kJournal, key, value);
}

Status ClearJournal(storage::WriteTxn& txn, uint32_t zone_id) {
  return DeletePrefix(txn, storage::EncodeU32(zone_id));
}

Status SealJournalEntry(storage::WriteTxn& txn, uint32_t zone_id, const SoaRecord& new_soa,
                        const JournalLimits& limits) {
  const std::string old_soa_key = ZoneKey(zone_id, kKindOldSoa);
  auto noted = txn.Get(Table::kJournal, old_soa_key);
  if (!noted) return Status::Ok();
  SoaRecord old_soa;
  size_t pos = 1;
  if (noted->empty() || static_cast<uint8_t>((*noted)[0]) != kSoaVersion ||
      !ParseSoa(*noted, &pos, &old_soa) || pos != noted->size())
    return Status::Corrupt("journal of zone id " + std::to_string(zone_id) +
                           ": the noted SOA is malformed");
  if (old_soa.serial() == new_soa.serial()) return Status::Ok();

  // Views into the staged rows: the map does not change until the entry is
  // built, and nothing is copied that would pass max_bytes.
  size_t size = kEntryHeaderSize + 2 * 8 + old_soa.rdata.size() + new_soa.rdata.size() + 8;
  bool too_big = limits.max_entries == 0 || size > limits.max_bytes;
  std::vector<std::string_view> removed, added;
  const std::string staged_prefix = ZoneKey(zone_id, kKindStaged);
  {
    auto cursor = txn.OpenCursor(Table::kJournal);
    if (!cursor.ok()) return cursor.status();
    for (bool more = cursor->Seek(staged_prefix);
         !too_big && more && cursor->key().starts_with(staged_prefix); more = cursor->Next()) {
      std::string_view row = cursor->value();
      size_t rr_pos = 1;
      if (row.empty() || !SkipRR(row, &rr_pos) || rr_pos != row.size() ||
          (row[0] != kRemoved && row[0] != kAdded))
        return Status::Corrupt("journal of zone id " + std::to_string(zone_id) +
                               ": a malformed staged change");
      (row[0] == kRemoved ? removed : added).push_back(row.substr(1));
      size += row.size() - 1;
      too_big = size > limits.max_bytes;
    }
  }
  if (too_big) return ClearJournal(txn, zone_id);

  // Staging rows come in digest order; byte order instead groups the RRs of
  // one owner and type, which keeps transfers compact and entries stable.
  std::sort(removed.begin(), removed.end());
  std::sort(added.begin(), added.end());
  std::string entry;
  entry.reserve(size);
  entry.push_back(static_cast<char>(kEntryVersion));
  AppendU32(entry, old_soa.serial());
  AppendU32(entry, new_soa.serial());
  AppendSoa(entry, old_soa);
  AppendSoa(entry, new_soa);
  AppendU32(entry, static_cast<uint32_t>(removed.size()));
  AppendU32(entry, static_cast<uint32_t>(added.size()));
  for (std::string_view rr : removed) entry.append(rr);
  for (std::string_view rr : added) entry.append(rr);
  removed.clear();
  added.clear();

  if (Status s = DeletePrefix(txn, staged_prefix); !s.ok()) return s;
  if (Status s = txn.Delete(Table::kJournal, old_soa_key); !s.ok()) return s;
  JournalInfo info = ReadJournalInfo(txn, zone_id);
  if (Status s = txn.Put(Table::kJournal, EntryKey(zone_id, info.next), entry); !s.ok()) return s;
  ++info.next;
  info.bytes += entry.size();
  // Oldest first, until within both limits.
  while (info.entries() > 0 &&
         (info.entries() > limits.max_entries || info.bytes > limits.max_bytes)) {
    std::string key = EntryKey(zone_id, info.first);
    if (auto oldest = txn.Get(Table::kJournal, key)) {
      info.bytes -= std::min<uint64_t>(info.bytes, oldest->size());
      if (Status s = txn.Delete(Table::kJournal, key); !s.ok()) return s;
    }
    ++info.first;
  }
  return PutState(txn, zone_id, info);
}

}  // namespace updns::zone
