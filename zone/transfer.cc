#include "zone/transfer.h"

#include <algorithm>
#include <cstring>

#include "storage/node.h"
#include "storage/schema.h"
#include "zone/journal.h"
#include "zone/wire.h"

namespace updns::zone {
namespace {

using storage::LoadU16;
using storage::LoadU32;

constexpr uint16_t kFlagQR = 0x8000, kFlagAA = 0x0400, kFlagTC = 0x0200, kFlagRD = 0x0100,
                   kFlagCD = 0x0010;
constexpr size_t kMinMessage = 512;
constexpr size_t kMaxMessage = 65535;

// The uncompressed wire name of a canonical node name (storage/schema.h),
// written to `out` (kMaxNameSize bytes) without allocating. 0 when malformed.
size_t WireFromCanonical(std::string_view canonical, uint8_t* out) noexcept {
  // Labels come root first; find them, then write them leaf first.
  size_t starts[kMaxLabels], sizes[kMaxLabels];
  size_t count = 0, start = 0, size = 0;
  for (size_t i = 0; i < canonical.size(); ++i) {
    char c = canonical[i];
    if (c == 0) {
      if (size == 0 || size > 63 || count == kMaxLabels) return 0;
      starts[count] = start;
      sizes[count++] = size;
      start = i + 1;
      size = 0;
    } else {
      if (c == 1 && (i + 1 >= canonical.size() || (canonical[i + 1] != 1 && canonical[i + 1] != 2)))
        return 0;
      if (c == 1) ++i;
      ++size;
    }
  }
  if (size != 0) return 0;
  size_t n = 0;
  for (size_t l = count; l-- > 0;) {
    if (n + 1 + sizes[l] + 1 > kMaxNameSize) return 0;
    out[n++] = static_cast<uint8_t>(sizes[l]);
    for (size_t i = starts[l]; canonical[i] != 0; ++i) {
      char c = canonical[i];
      out[n++] = c == 1 ? static_cast<uint8_t>(canonical[++i] - 1) : static_cast<uint8_t>(c);
    }
  }
  out[n++] = 0;
  return n;
}

// The zone's current SOA, read from `txn`: views into the map.
struct ZoneSoa {
  uint32_t zone_id = 0;
  SoaRecord soa;
};
Result<ZoneSoa> ReadZoneSoa(const storage::Txn& txn, std::string_view apex) {
  auto record = storage::ReadZoneRecord(txn, apex);
  if (!record.ok()) return record.status();
  storage::NodeKey key;
  if (!key.Assign(record->zone_id, apex)) return Status::Invalid("malformed zone name");
  auto value = txn.Get(storage::Table::kNodes, key.view());
  storage::RRsetView set;
  if (!value || !storage::NodeView(*value).Find(type::kSOA, set) || set.body.size() < 2)
    return Status::Corrupt("the zone has no SOA record");
  size_t len = LoadU16(set.body.data());
  if (len < 22 || 2 + len > set.body.size())
    return Status::Corrupt("the zone's SOA record is malformed");
  return ZoneSoa{record->zone_id, {set.rclass, set.ttl, set.body.substr(2, len)}};
}

bool IsCurrent(const TransferRequest& request, uint32_t serial) noexcept {
  return request.client_serial &&
         (*request.client_serial == serial || SerialAfter(*request.client_serial, serial));
}

// Writes the header placeholder and, if asked, the question. False when not
// even that fits.
bool BeginMessage(MessageWriter& w, std::string_view question, std::string_view zone,
                  bool with_question) noexcept {
  uint8_t header[kHeaderSize] = {};
  if (!w.PutBytes(header, kHeaderSize)) return false;
  if (with_question) {
    if (!w.PutBytes(question.data(), question.size())) return false;
    w.AddCompressionTarget(kHeaderSize, zone);
  }
  return true;
}

// Adds the OPT RR (room for it was kept out of the writer's limit) and fills
// in the header.
void EndMessage(MessageWriter& w, size_t limit, uint16_t id, uint16_t request_flags, bool edns,
                uint16_t udp_payload, uint16_t flags, uint8_t rcode, bool with_question,
                uint16_t answers) noexcept {
  uint16_t additional = 0;
  if (edns) {
    w.SetLimit(limit);
    const uint8_t opt[kOptRecordSize] = {0,
                                         static_cast<uint8_t>(type::kOPT >> 8),
                                         static_cast<uint8_t>(type::kOPT & 0xff),
                                         static_cast<uint8_t>(udp_payload >> 8),
                                         static_cast<uint8_t>(udp_payload),
                                         0,
                                         0,
                                         0,
                                         0,
                                         0,
                                         0};
    if (w.PutBytes(opt, sizeof opt)) additional = 1;
  }
  w.SetU16(0, id);
  w.SetU16(2,
           static_cast<uint16_t>(kFlagQR | flags | (request_flags & (kFlagRD | kFlagCD)) | rcode));
  w.SetU16(4, with_question ? 1 : 0);
  w.SetU16(6, answers);
  w.SetU16(8, 0);
  w.SetU16(10, additional);
}

// Writes one RR; the owner becomes a pointer when it repeats the previous
// RR's owner (the writer's compression table is small, and this is the
// common case: RRsets of one node, RRs of one RRset). All or nothing.
class RRWriter {
 public:
  explicit RRWriter(MessageWriter& w) : w_(w) {}

  bool Put(const JournalRR& rr) noexcept {
    size_t mark = w_.size();
    bool same_owner = last_offset_ != 0 && rr.owner.size() == last_size_ &&
                      std::memcmp(rr.owner.data(), last_, last_size_) == 0;
    uint16_t offset = 0;
    bool ok = same_owner ? w_.PutPointer(last_offset_) : w_.PutName(rr.owner, &offset);
    uint8_t fixed[8] = {static_cast<uint8_t>(rr.type >> 8),   static_cast<uint8_t>(rr.type),
                        static_cast<uint8_t>(rr.rclass >> 8), static_cast<uint8_t>(rr.rclass),
                        static_cast<uint8_t>(rr.ttl >> 24),   static_cast<uint8_t>(rr.ttl >> 16),
                        static_cast<uint8_t>(rr.ttl >> 8),    static_cast<uint8_t>(rr.ttl)};
    ok = ok && w_.PutBytes(fixed, sizeof fixed);
    size_t rdlength_at = w_.size();
    ok = ok && w_.PutU16(0) && w_.PutRdata(rr.type, rr.rdata);
    if (!ok) {
      w_.Rewind(mark);
      return false;
    }
    w_.SetU16(rdlength_at, static_cast<uint16_t>(w_.size() - rdlength_at - 2));
    if (!same_owner && offset != 0 && rr.owner.size() <= sizeof last_) {
      std::memcpy(last_, rr.owner.data(), rr.owner.size());
      last_size_ = rr.owner.size();
      last_offset_ = offset;
    }
    return true;
  }

 private:
  MessageWriter& w_;
  uint8_t last_[kMaxNameSize];
  size_t last_size_ = 0;
  uint16_t last_offset_ = 0;  // 0: none (offset 0 is the header, never a name)
};

}  // namespace

// ---- TransferStream ----

struct TransferStream::State {
  // Declared before the cursor: members are destroyed in reverse order, and
  // the cursor must close before its transaction ends.
  storage::ReadTxn txn;
  std::optional<storage::Cursor> nodes;

  uint16_t id = 0, request_flags = 0;
  bool edns = false;
  std::string zone, question;
  TransferOptions options;
  ZoneSoa current;

  // Where the answer stands: leading SOA, the body, trailing SOA, end.
  enum class Phase { kLeadSoa, kBody, kTrailSoa, kEnd } phase = Phase::kLeadSoa;
  bool first_message = true;
  bool done = false;

  // AXFR body: the node under `nodes`, its RRset and the RR in it.
  std::string prefix;  // the zone id: the zone's key range
  bool node_valid = false;
  std::string_view node;
  uint8_t owner[kMaxNameSize];
  size_t owner_size = 0;
  bool at_apex = false;
  size_t rrset_index = 0;
  storage::RRsetView rrset;
  bool rrset_loaded = false;
  size_t rr_offset = 0;

  // Incremental body: entries [sequence, last], and where in the entry.
  uint64_t sequence = 0, last = 0;
  JournalEntryView entry;
  int entry_part = 0;  // 0 old SOA, 1 removed RRs, 2 new SOA, 3 added RRs
  size_t entry_pos = 0;

  explicit State(storage::ReadTxn t) : txn(std::move(t)) {}
};

namespace {

// The AXFR walk: positions `st` on the next node of the zone (or past it).
template <typename State>
bool LoadNode(State& st, bool found) noexcept {
  st.node_valid = found && st.nodes->key().starts_with(st.prefix);
  st.rrset_index = 0;
  st.rrset_loaded = false;
  st.rr_offset = 0;
  if (!st.node_valid) return true;
  st.node = st.nodes->value();
  st.owner_size = WireFromCanonical(st.nodes->key().substr(st.prefix.size()), st.owner);
  st.at_apex =
      st.owner_size == st.zone.size() && std::memcmp(st.owner, st.zone.data(), st.owner_size) == 0;
  return st.owner_size != 0 && storage::NodeView(st.node).Valid();
}

}  // namespace

TransferStream::TransferStream(std::unique_ptr<State> state) : state_(std::move(state)) {}
TransferStream::~TransferStream() = default;

uint32_t TransferStream::serial() const noexcept { return state_->current.soa.serial(); }

Result<std::unique_ptr<TransferStream>> TransferStream::Start(const storage::Store& store,
                                                              const TransferRequest& request,
                                                              const TransferOptions& options) {
  if (request.qtype != type::kAXFR && request.qtype != type::kIXFR)
    return Status::Invalid("not a transfer request: QTYPE " + std::to_string(request.qtype));
  auto txn = store.BeginRead();
  if (!txn.ok()) return txn.status();
  auto state = std::make_unique<State>(std::move(txn).value());
  State& st = *state;
  st.id = request.id;
  st.request_flags = request.flags;
  st.edns = request.has_edns;
  st.zone = request.zone;
  st.question = request.question;
  st.options = options;
  auto current = ReadZoneSoa(st.txn, st.zone);
  if (!current.ok()) {
    if (current.status().IsNotFound())
      return Status::NotFound("transfer: the zone is not in the store");
    return current.status().WithContext("transfer: ");
  }
  st.current = *current;
  const uint32_t serial = st.current.soa.serial();

  TransferFormat format = TransferFormat::kAxfr;
  if (request.qtype == type::kIXFR && IsCurrent(request, serial)) {
    format = TransferFormat::kUpToDate;
  } else if (request.qtype == type::kIXFR && request.client_serial) {
    // Newest first: follow the chain back from the current serial to the
    // client's. A gap (an entry trimmed, a change made without journal)
    // breaks it, and so does an entry that does not parse.
    JournalInfo info = ReadJournalInfo(st.txn, st.current.zone_id);
    uint32_t expected = serial;
    for (uint64_t seq = info.next; seq-- > info.first;) {
      auto value = ReadJournalEntry(st.txn, st.current.zone_id, seq);
      JournalEntryView entry;
      if (!value || !entry.Parse(*value) || entry.new_serial() != expected) break;
      expected = entry.old_serial();
      if (expected == *request.client_serial) {
        format = TransferFormat::kIncremental;
        st.sequence = seq;
        st.last = info.next - 1;
        break;
      }
    }
  }
  if (format == TransferFormat::kAxfr) {
    auto cursor = st.txn.OpenCursor(storage::Table::kNodes);
    if (!cursor.ok()) return cursor.status();
    st.nodes.emplace(std::move(cursor).value());
    st.prefix = storage::EncodeU32(st.current.zone_id);
  }
  std::unique_ptr<TransferStream> stream(new TransferStream(std::move(state)));
  stream->format_ = format;
  if (format == TransferFormat::kAxfr) {
    if (!LoadNode(*stream->state_, stream->state_->nodes->Seek(stream->state_->prefix)))
      return Status::Corrupt("transfer: a malformed node in the zone");
  } else if (format == TransferFormat::kIncremental) {
    auto value = ReadJournalEntry(stream->state_->txn, stream->state_->current.zone_id,
                                  stream->state_->sequence);
    if (!value || !stream->state_->entry.Parse(*value))
      return Status::Corrupt("transfer: a journal entry changed under the snapshot");
  }
  return stream;
}

namespace {

// The RR the answer continues with, or false at the end of the body.
// `error` is set for a corrupt node or entry.
template <typename State>
bool PeekBody(State& st, TransferFormat format, JournalRR& rr, const char*& error) noexcept {
  if (format == TransferFormat::kIncremental) {
    while (true) {
      switch (st.entry_part) {
        case 0:
        case 2: {
          const SoaRecord& soa = st.entry_part == 0 ? st.entry.old_soa() : st.entry.new_soa();
          rr = {st.zone, type::kSOA, soa.rclass, soa.ttl, soa.rdata};
          return true;
        }
        case 1:
        case 3: {
          size_t end = st.entry_part == 1 ? st.entry.added_begin() : st.entry.end();
          if (st.entry_pos < end) {
            size_t pos = st.entry_pos;
            rr = st.entry.ReadRR(&pos);
            return true;
          }
          if (st.entry_part == 1) {
            st.entry_part = 2;
            continue;
          }
          if (st.sequence == st.last) return false;
          auto value = ReadJournalEntry(st.txn, st.current.zone_id, ++st.sequence);
          if (!value || !st.entry.Parse(*value)) {
            error = "a journal entry is missing or malformed";
            return false;
          }
          st.entry_part = 0;
          continue;
        }
      }
      return false;
    }
  }
  if (format != TransferFormat::kAxfr) return false;
  while (st.node_valid) {
    if (!st.rrset_loaded) {
      size_t index = 0;
      bool found = false;
      storage::NodeView(st.node).ForEach([&](const storage::RRsetView& set) {
        if (index++ != st.rrset_index) return true;
        st.rrset = set;
        found = true;
        return false;
      });
      if (!found) {
        if (!LoadNode(st, st.nodes->Next())) {
          error = "a malformed node in the zone";
          return false;
        }
        continue;
      }
      st.rrset_loaded = true;
      st.rr_offset = 0;
      // The apex SOA opens and closes the transfer, never in between.
      if (st.at_apex && st.rrset.type == type::kSOA) st.rr_offset = st.rrset.body.size();
    }
    if (st.rr_offset + 2 <= st.rrset.body.size()) {
      size_t len = LoadU16(st.rrset.body.data() + st.rr_offset);
      rr = {std::string_view(reinterpret_cast<const char*>(st.owner), st.owner_size), st.rrset.type,
            st.rrset.rclass, st.rrset.ttl, st.rrset.body.substr(st.rr_offset + 2, len)};
      return true;
    }
    ++st.rrset_index;
    st.rrset_loaded = false;
  }
  return false;
}

template <typename State>
void AdvanceBody(State& st, TransferFormat format) noexcept {
  if (format == TransferFormat::kIncremental) {
    switch (st.entry_part) {
      case 0:
        st.entry_part = 1;
        st.entry_pos = st.entry.removed_begin();
        break;
      case 2:
        st.entry_part = 3;
        st.entry_pos = st.entry.added_begin();
        break;
      default: {
        size_t pos = st.entry_pos;
        (void)st.entry.ReadRR(&pos);
        st.entry_pos = pos;
      }
    }
    return;
  }
  st.rr_offset += 2 + LoadU16(st.rrset.body.data() + st.rr_offset);
}

}  // namespace

size_t TransferStream::Next(uint8_t* out, size_t capacity) noexcept {
  State& st = *state_;
  if (st.done) return 0;
  size_t limit = std::min(capacity, kMaxMessage);
  if (limit < st.options.reserve + kMinMessage) {
    st.done = true;
    status_ = Status::Invalid("transfer: a message buffer of " + std::to_string(capacity) +
                              " bytes leaves less than 512 after the " +
                              std::to_string(st.options.reserve) + " reserved");
    return 0;
  }
  limit -= st.options.reserve;
  MessageWriter w(out, limit - (st.edns ? kOptRecordSize : 0));
  const bool with_question = st.first_message;
  (void)BeginMessage(w, st.question, st.zone, with_question);  // fits: limit >= 512
  RRWriter writer(w);
  uint16_t answers = 0;
  const char* error = nullptr;
  const JournalRR soa{st.zone, type::kSOA, st.current.soa.rclass, st.current.soa.ttl,
                      st.current.soa.rdata};
  while (st.phase != State::Phase::kEnd && answers < 0xFFFF) {
    JournalRR rr;
    if (st.phase == State::Phase::kLeadSoa || st.phase == State::Phase::kTrailSoa) {
      rr = soa;
    } else if (!PeekBody(st, format_, rr, error)) {
      if (error) break;
      st.phase =
          format_ == TransferFormat::kUpToDate ? State::Phase::kEnd : State::Phase::kTrailSoa;
      continue;
    }
    if (!writer.Put(rr)) {
      if (answers == 0) error = "an RR does not fit in an empty message";
      break;
    }
    ++answers;
    ++records_;
    switch (st.phase) {
      case State::Phase::kLeadSoa:
        st.phase = State::Phase::kBody;
        break;
      case State::Phase::kTrailSoa:
        st.phase = State::Phase::kEnd;
        break;
      default:
        AdvanceBody(st, format_);
    }
  }
  if (error) {
    // RFC 5936 §2.2: a transfer that cannot be completed ends with an error
    // RCODE; what was sent before does not make a zone.
    status_ = Status::Corrupt(std::string("transfer of serial ") +
                              std::to_string(st.current.soa.serial()) + ": " + error);
    w.Rewind(0);
    (void)BeginMessage(w, st.question, st.zone, true);
    EndMessage(w, limit, st.id, st.request_flags, st.edns, st.options.udp_payload, 0,
               rcode::kServFail, true, 0);
    st.done = true;
    return w.size();
  }
  EndMessage(w, limit, st.id, st.request_flags, st.edns, st.options.udp_payload, kFlagAA,
             rcode::kNoError, with_question, answers);
  st.first_message = false;
  if (st.phase == State::Phase::kEnd) st.done = true;
  return w.size();
}

// ---- UDP ----

size_t AnswerIxfrOverUdp(const storage::Txn& txn, const TransferRequest& request,
                         const TransferOptions& options, uint8_t* out, size_t capacity) noexcept {
  // A client's UDP size may be 512 with the TSIG inside it: no minimum but
  // room for the header, the question and the OPT RR.
  size_t limit = std::min(capacity, kMaxMessage);
  if (limit < options.reserve + kHeaderSize + kOptRecordSize) return 0;
  limit -= options.reserve;
  MessageWriter w(out, limit - (request.has_edns ? kOptRecordSize : 0));
  if (!BeginMessage(w, request.question, request.zone, true)) return 0;
  // Reading the SOA allocates only on errors (the Status message).
  auto current = ReadZoneSoa(txn, request.zone);
  if (!current.ok()) {
    EndMessage(w, limit, request.id, request.flags, request.has_edns, options.udp_payload, 0,
               rcode::kServFail, true, 0);
    return w.size();
  }
  uint16_t answers = 0, flags = kFlagAA;
  if (IsCurrent(request, current->soa.serial())) {
    RRWriter writer(w);
    if (writer.Put({request.zone, type::kSOA, current->soa.rclass, current->soa.ttl,
                    current->soa.rdata})) {
      answers = 1;
    } else {
      flags |= kFlagTC;
    }
  } else {
    flags |= kFlagTC;  // the difference goes over TCP
  }
  EndMessage(w, limit, request.id, request.flags, request.has_edns, options.udp_payload, flags,
             rcode::kNoError, true, answers);
  return w.size();
}

// ---- Parsing ----

Result<TransferRequest> ParseTransferRequest(const uint8_t* p, size_t size) {
  auto not_transfer = [] { return Status::NotFound("not a zone transfer request"); };
  if (size < kHeaderSize) return not_transfer();
  auto load16 = [p](size_t at) { return static_cast<uint16_t>(p[at] << 8 | p[at + 1]); };
  TransferRequest request;
  request.id = load16(0);
  request.flags = load16(2);
  if ((request.flags & kFlagQR) || ((request.flags >> 11) & 0x0F) != opcode::kQuery)
    return not_transfer();
  uint16_t qdcount = load16(4), ancount = load16(6), nscount = load16(8), arcount = load16(10);
  if (qdcount != 1) return not_transfer();

  uint8_t name[kMaxNameSize];
  size_t name_size = 0;
  size_t pos = ReadName(p, size, kHeaderSize, name, &name_size);
  if (pos == 0 || pos + 4 > size) return not_transfer();
  // The question is echoed verbatim: a compression pointer in it would point
  // into our own header (the query path refuses those too).
  if (pos - kHeaderSize != name_size) return not_transfer();
  request.qtype = load16(pos);
  uint16_t qclass = load16(pos + 2);
  pos += 4;
  if ((request.qtype != type::kAXFR && request.qtype != type::kIXFR) || qclass != kClassIN)
    return not_transfer();
  request.zone.assign(reinterpret_cast<const char*>(name), name_size);
  request.question.assign(reinterpret_cast<const char*>(p + kHeaderSize), pos - kHeaderSize);
  const char* what = request.qtype == type::kAXFR ? "AXFR request: " : "IXFR request: ";
  auto invalid = [what](const char* why) { return Status::Invalid(std::string(what) + why); };

  if (ancount != 0) return invalid("the answer section must be empty");
  if (request.qtype == type::kAXFR && nscount != 0)
    return invalid("the authority section must be empty (RFC 5936 section 4.1)");
  if (request.qtype == type::kIXFR && nscount != 1)
    return invalid("the authority section must hold the client's SOA (RFC 1995 section 3)");

  // Every record after the question: authority (IXFR's SOA), then additional.
  for (size_t i = 0; i < size_t{nscount} + arcount; ++i) {
    bool authority = i < nscount;
    size_t after = ReadName(p, size, pos, name, &name_size);
    if (after == 0 || after + 10 > size) return invalid("a record is truncated or malformed");
    uint16_t rtype = load16(after), rclass = load16(after + 2);
    uint32_t ttl = uint32_t{load16(after + 4)} << 16 | load16(after + 6);
    size_t rdata = after + 10, rdlength = load16(after + 8);
    if (rdata + rdlength > size) return invalid("a record's rdata runs past the message");
    if (authority) {
      if (rtype != type::kSOA || name_size != request.zone.size() ||
          std::memcmp(name, request.zone.data(), name_size) != 0)
        return invalid("the authority section must hold the SOA of the zone asked for");
      // MNAME and RNAME may be compressed; the five u32s end the rdata.
      uint8_t scratch[kMaxNameSize];
      size_t scratch_size = 0;
      size_t at = ReadName(p, rdata + rdlength, rdata, scratch, &scratch_size);
      if (at != 0) at = ReadName(p, rdata + rdlength, at, scratch, &scratch_size);
      if (at == 0 || at + 20 != rdata + rdlength) return invalid("the SOA's rdata is malformed");
      request.client_serial = uint32_t{load16(at)} << 16 | load16(at + 2);
    } else if (rtype == type::kOPT) {
      if (request.has_edns || name_size != 1)
        return invalid("more than one OPT record, or one not owned by the root");
      request.has_edns = true;
      if ((ttl >> 16 & 0xFF) != 0)
        return Status::Unsupported(std::string(what) + "EDNS version " +
                                   std::to_string(ttl >> 16 & 0xFF) + " (only 0 is known)");
    }
    (void)rclass;
    pos = rdata + rdlength;
  }
  return request;
}

}  // namespace updns::zone
