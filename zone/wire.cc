#include "zone/wire.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace updns::zone {
namespace {

inline uint16_t Load16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint8_t Lower(uint8_t c) noexcept { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

}  // namespace

size_t ReadName(const uint8_t* packet, size_t size, size_t pos, uint8_t* out,
                size_t* out_size) noexcept {
  size_t n = 0;
  size_t end = 0;  // position after the name in the original byte stream
  size_t lowest = pos;  // pointers must point strictly before every label seen
  while (true) {
    if (pos >= size) return 0;
    uint8_t len = packet[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= size) return 0;
      size_t target = static_cast<size_t>(len & 0x3F) << 8 | packet[pos + 1];
      if (end == 0) end = pos + 2;
      if (target >= lowest) return 0;  // forward pointer or loop
      pos = lowest = target;
      continue;
    }
    if (len & 0xC0) return 0;  // extended label types are obsolete
    if (n + 1 + len > kMaxNameSize || pos + 1 + len > size) return 0;
    out[n++] = len;
    if (len == 0) break;
    for (size_t i = 1; i <= len; ++i) out[n++] = Lower(packet[pos + i]);
    pos += 1 + len;
  }
  *out_size = n;
  return end ? end : pos + 1;
}

size_t WireNameLength(std::string_view bytes) noexcept {
  size_t pos = 0;
  while (pos < bytes.size() && pos < kMaxNameSize) {
    auto len = static_cast<uint8_t>(bytes[pos]);
    if (len == 0) return pos + 1;
    if (len > 63) return 0;
    pos += 1 + len;
  }
  return 0;
}

ParseOutcome ParseQuery(const uint8_t* p, size_t size, Query& q) noexcept {
  if (size < kHeaderSize) return ParseOutcome::kDrop;
  q.id = Load16(p);
  q.flags = Load16(p + 2);
  if (q.flags & 0x8000) return ParseOutcome::kDrop;  // a response: never answer it
  q.opcode = (q.flags >> 11) & 0x0F;
  q.question = {};
  q.has_edns = false;
  q.edns_do = false;
  q.edns_version = 0;
  q.edns_payload = 0;
  q.has_tsig = false;
  uint16_t qdcount = Load16(p + 4), ancount = Load16(p + 6), nscount = Load16(p + 8),
           arcount = Load16(p + 10);
  if (qdcount != 1) return q.opcode == opcode::kQuery ? ParseOutcome::kFormErr : ParseOutcome::kNotImp;

  // QNAME: no compression is possible in the first name of a message.
  size_t pos = kHeaderSize, n = 0;
  q.label_count = 0;
  while (true) {
    if (pos >= size) return ParseOutcome::kFormErr;
    uint8_t len = p[pos];
    if (len & 0xC0) return ParseOutcome::kFormErr;
    if (n + 1 + len > kMaxNameSize || pos + 1 + len > size) return ParseOutcome::kFormErr;
    if (len == 0) {
      q.qname[n++] = 0;
      ++pos;
      break;
    }
    q.label_offsets[q.label_count++] = static_cast<uint8_t>(n);
    q.qname[n++] = len;
    for (size_t i = 1; i <= len; ++i) q.qname[n++] = Lower(p[pos + i]);
    pos += 1 + len;
  }
  q.qname_size = static_cast<uint8_t>(n);
  if (pos + 4 > size) return ParseOutcome::kFormErr;
  q.qtype = Load16(p + pos);
  q.qclass = Load16(p + pos + 2);
  pos += 4;
  q.question = {reinterpret_cast<const char*>(p + kHeaderSize), pos - kHeaderSize};
  if (q.opcode != opcode::kQuery) return ParseOutcome::kNotImp;
  // IXFR carries the client's SOA in the authority section (RFC 1995 §3);
  // it is skipped here and read by the transfer code.
  if (ancount != 0 || (nscount != 0 && !(q.qtype == type::kIXFR && nscount == 1)))
    return ParseOutcome::kFormErr;

  // The additional section: at most one OPT, owned by the root.
  uint8_t scratch[kMaxNameSize];
  for (uint32_t i = 0; i < uint32_t{nscount} + arcount; ++i) {
    size_t name_size = 0;
    size_t after = ReadName(p, size, pos, scratch, &name_size);
    if (after == 0 || after + 10 > size) return ParseOutcome::kFormErr;
    uint16_t rtype = Load16(p + after), rclass = Load16(p + after + 2);
    uint32_t ttl = static_cast<uint32_t>(Load16(p + after + 4)) << 16 | Load16(p + after + 6);
    uint16_t rdlength = Load16(p + after + 8);
    size_t rdata = after + 10;
    if (rdata + rdlength > size) return ParseOutcome::kFormErr;
    if (i < nscount) {
      pos = rdata + rdlength;
      continue;
    }
    if (rtype == type::kOPT) {
      if (q.has_edns || name_size != 1) return ParseOutcome::kFormErr;
      for (size_t o = rdata; o < rdata + rdlength;) {  // options must tile the rdata
        if (o + 4 > rdata + rdlength) return ParseOutcome::kFormErr;
        o += 4 + Load16(p + o + 2);
        if (o > rdata + rdlength) return ParseOutcome::kFormErr;
      }
      q.has_edns = true;
      q.edns_payload = rclass;
      q.edns_version = static_cast<uint8_t>(ttl >> 16);
      q.edns_do = ttl & 0x8000;
    } else if (rtype == type::kTSIG) {
      q.has_tsig = true;  // checked (last, once, MAC) by the caller's TSIG code
    }
    pos = rdata + rdlength;
  }
  return ParseOutcome::kOk;
}

void MessageWriter::Rewind(size_t size) noexcept {
  if (size >= size_) return;
  size_ = size;
  while (target_count_ > 0 && targets_[target_count_ - 1] >= size) --target_count_;
  // A rewind into the middle of a name leaves targets before `size` whose
  // labels run past it, into bytes that will be overwritten: compressing
  // against them would corrupt later names. They belong to the last name
  // written, so they are the last targets.
  while (target_count_ > 0) {
    size_t p = targets_[target_count_ - 1];
    while (p < size && buf_[p] != 0 && (buf_[p] & 0xC0) != 0xC0) p += 1 + buf_[p];
    bool complete = p < size && (buf_[p] == 0 || p + 2 <= size);
    if (complete) break;
    --target_count_;
  }
}

bool MessageWriter::PutBytes(const void* bytes, size_t n) noexcept {
  if (size_ + n > limit_) return false;
  std::memcpy(buf_ + size_, bytes, n);
  size_ += n;
  return true;
}

bool MessageWriter::PutU16(uint16_t v) noexcept {
  uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  return PutBytes(b, 2);
}

bool MessageWriter::PutPointer(uint16_t offset) noexcept { return PutU16(0xC000 | offset); }

bool MessageWriter::MatchesAt(uint16_t offset, std::string_view suffix) const noexcept {
  size_t p = offset, s = 0;
  for (int hops = 0; hops < 64;) {
    uint8_t len = buf_[p];
    if ((len & 0xC0) == 0xC0) {
      p = static_cast<size_t>(len & 0x3F) << 8 | buf_[p + 1];
      ++hops;
      continue;
    }
    if (s >= suffix.size() || len != static_cast<uint8_t>(suffix[s])) return false;
    if (len == 0) return true;
    for (size_t i = 1; i <= len; ++i) {
      if (Lower(buf_[p + i]) != Lower(static_cast<uint8_t>(suffix[s + i]))) return false;
    }
    p += 1 + len;
    s += 1 + len;
  }
  return false;
}

void MessageWriter::RememberLabels(size_t start, std::string_view wire, size_t labels) noexcept {
  size_t at = 0;
  for (size_t i = 0; i < labels && target_count_ < kMaxTargets; ++i) {
    if (start + at >= 0x4000) return;  // beyond what a pointer can reach
    targets_[target_count_++] = static_cast<uint16_t>(start + at);
    at += 1 + static_cast<uint8_t>(wire[at]);
  }
}

void MessageWriter::AddCompressionTarget(uint16_t offset, std::string_view wire) noexcept {
  size_t labels = 0;
  for (size_t at = 0; at < wire.size() && wire[at] != 0; at += 1 + static_cast<uint8_t>(wire[at]))
    ++labels;
  RememberLabels(offset, wire, labels);
}

bool MessageWriter::PutName(std::string_view wire, uint16_t* offset) noexcept {
  // Everything below assumes one well-formed name, root label last: an empty
  // or malformed one would make it copy past `wire` (or SIZE_MAX bytes).
  if (wire.empty() || WireNameLength(wire) != wire.size()) return false;
  // The longest suffix of `wire` already in the message becomes a pointer.
  size_t starts[kMaxLabels];
  size_t labels = 0;
  for (size_t at = 0; at < wire.size() && wire[at] != 0 && labels < kMaxLabels;
       at += 1 + static_cast<uint8_t>(wire[at])) {
    starts[labels++] = at;
  }
  size_t matched_label = labels;
  uint16_t target = 0;
  for (size_t i = 0; i < labels && matched_label == labels; ++i) {
    std::string_view suffix = wire.substr(starts[i]);
    for (size_t t = 0; t < target_count_; ++t) {
      if (MatchesAt(targets_[t], suffix)) {
        matched_label = i;
        target = targets_[t];
        break;
      }
    }
  }
  size_t prefix = matched_label < labels ? starts[matched_label] : wire.size() - 1;
  size_t needed = prefix + (matched_label < labels ? 2 : 1);
  if (size_ + needed > limit_) return false;
  size_t start = size_;
  if (offset) *offset = static_cast<uint16_t>(start < 0x4000 ? start : 0);
  std::memcpy(buf_ + size_, wire.data(), prefix);
  size_ += prefix;
  if (matched_label < labels) {
    PutPointer(target);
  } else {
    buf_[size_++] = 0;
  }
  RememberLabels(start, wire, matched_label);
  return true;
}

bool MessageWriter::PutRdata(uint16_t rrtype, std::string_view rdata) noexcept {
  // RFC 3597 §4: only the RFC 1035 types may have their names compressed.
  size_t fixed_prefix = 0, names = 0;
  switch (rrtype) {
    case type::kNS: case type::kMD: case type::kMF: case type::kCNAME: case type::kMB:
    case type::kMG: case type::kMR: case type::kPTR:
      names = 1;
      break;
    case type::kMX:
      fixed_prefix = 2;
      names = 1;
      break;
    case type::kSOA: case type::kMINFO:
      names = 2;
      break;
    default:
      return PutBytes(rdata.data(), rdata.size());
  }
  // Too short to hold its fields: copied as it is, like any rdata we do not
  // understand (a false return would read as "does not fit" and truncate).
  if (rdata.size() < fixed_prefix) return PutBytes(rdata.data(), rdata.size());
  size_t mark = size_;
  if (!PutBytes(rdata.data(), fixed_prefix)) return false;
  size_t at = fixed_prefix;
  for (size_t i = 0; i < names; ++i) {
    size_t len = WireNameLength(rdata.substr(at));
    if (len == 0) {  // not a name after all: keep the bytes as they are
      Rewind(mark);
      return PutBytes(rdata.data(), rdata.size());
    }
    if (!PutName(rdata.substr(at, len))) {
      Rewind(mark);
      return false;
    }
    at += len;
  }
  if (PutBytes(rdata.data() + at, rdata.size() - at)) return true;
  Rewind(mark);
  return false;
}

namespace {

struct TypeName {
  uint16_t type;
  std::string_view name;
};
constexpr TypeName kTypeNames[] = {
    {1, "A"},        {2, "NS"},          {5, "CNAME"},  {6, "SOA"},     {12, "PTR"},
    {13, "HINFO"},   {15, "MX"},         {16, "TXT"},   {17, "RP"},     {18, "AFSDB"},
    {21, "RT"},      {26, "PX"},         {28, "AAAA"},  {29, "LOC"},    {33, "SRV"},
    {35, "NAPTR"},   {36, "KX"},         {37, "CERT"},  {39, "DNAME"},  {41, "OPT"},
    {43, "DS"},      {44, "SSHFP"},      {46, "RRSIG"}, {47, "NSEC"},   {48, "DNSKEY"},
    {50, "NSEC3"},   {51, "NSEC3PARAM"}, {52, "TLSA"},  {53, "SMIMEA"}, {59, "CDS"},
    {60, "CDNSKEY"}, {61, "OPENPGPKEY"}, {64, "SVCB"},  {65, "HTTPS"},  {99, "SPF"},
    {249, "TKEY"},   {250, "TSIG"},      {251, "IXFR"}, {252, "AXFR"},  {253, "MAILB"},
    {254, "MAILA"},  {255, "ANY"},       {256, "URI"},  {257, "CAA"},
};

}  // namespace

std::string TypeText(uint16_t t) {
  for (const TypeName& n : kTypeNames) {
    if (n.type == t) return std::string(n.name);
  }
  return "TYPE" + std::to_string(t);
}

Result<uint16_t> TypeFromText(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  for (const TypeName& n : kTypeNames) {
    if (n.name == upper) return n.type;
  }
  if (upper.size() > 4 && upper.size() <= 9 && upper.starts_with("TYPE") &&
      std::all_of(upper.begin() + 4, upper.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    unsigned long v = std::stoul(upper.substr(4));
    if (v <= 65535) return static_cast<uint16_t>(v);
  }
  return Status::Invalid("unknown record type '" + std::string(text) +
                         "' (write a mnemonic like A, AAAA, TXT, or TYPEnnn)");
}

bool IsMetaType(uint16_t t) noexcept { return t == 0 || t == type::kOPT || (t >= 128 && t <= 255); }

}  // namespace updns::zone
