#include "zone/rdata.h"

#include "zone/wire.h"

namespace updns::zone {
namespace {

char Lower(uint8_t c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

// Copies the rdata in [pos, end) field by field, decompressing its names.
class RdataWalker {
 public:
  RdataWalker(const WireSource& src, size_t pos, size_t end, bool lower, std::string& out)
      : src_(src), pos_(pos), end_(end), lower_(lower), out_(out) {}

  bool Name() {
    size_t next = ReadName(src_, pos_, end_, lower_, out_);
    if (next == 0) return false;
    pos_ = next;
    return true;
  }
  bool Bytes(size_t n) {
    if (end_ - pos_ < n) return false;
    out_.append(reinterpret_cast<const char*>(src_.bytes + pos_), n);
    pos_ += n;
    return true;
  }
  bool String() { return pos_ < end_ && Bytes(1 + size_t{src_.bytes[pos_]}); }
  bool StringsToEnd() {
    while (pos_ < end_) {
      if (!String()) return false;
    }
    return true;
  }
  bool Rest() { return Bytes(end_ - pos_); }
  bool AtEnd() const { return pos_ == end_; }

 private:
  const WireSource& src_;
  size_t pos_, end_;
  bool lower_;
  std::string& out_;
};

bool WalkRdata(uint16_t t, RdataWalker& w) {
  switch (t) {
    case type::kA:
      return w.Bytes(4) && w.AtEnd();
    case type::kAAAA:
      return w.Bytes(16) && w.AtEnd();
    case type::kNS:
    case type::kMD:
    case type::kMF:
    case type::kCNAME:
    case type::kMB:
    case type::kMG:
    case type::kMR:
    case type::kPTR:
    case type::kDNAME:
      return w.Name() && w.AtEnd();
    case type::kSOA:
      return w.Name() && w.Name() && w.Bytes(20) && w.AtEnd();
    case type::kMINFO:
    case type::kRP:
      return w.Name() && w.Name() && w.AtEnd();
    case type::kMX:
    case type::kAFSDB:
    case type::kRT:
    case type::kKX:
      return w.Bytes(2) && w.Name() && w.AtEnd();
    case type::kSRV:
      return w.Bytes(6) && w.Name() && w.AtEnd();
    case type::kPX:
      return w.Bytes(2) && w.Name() && w.Name() && w.AtEnd();
    case type::kNAPTR:
      return w.Bytes(4) && w.String() && w.String() && w.String() && w.Name() && w.AtEnd();
    case type::kHINFO:
      return w.String() && w.String() && w.AtEnd();
    case type::kTXT:
    case type::kSPF:
      return w.String() && w.StringsToEnd();
    default:
      return w.Rest();
  }
}

}  // namespace

size_t ReadName(const WireSource& src, size_t pos, size_t end, bool lower, std::string& out) {
  size_t after = 0;  // set at the first pointer
  size_t lowest = pos;
  size_t limit = end;  // labels reached through a pointer may lie anywhere before
  size_t length = 0;
  while (true) {
    if (pos >= limit) return 0;
    uint8_t len = src.bytes[pos];
    if ((len & 0xC0) == 0xC0) {
      if (!src.pointers || pos + 1 >= limit) return 0;
      size_t target = static_cast<size_t>(len & 0x3F) << 8 | src.bytes[pos + 1];
      if (target >= lowest || target < kHeaderSize) return 0;
      if (after == 0) after = pos + 2;
      pos = lowest = target;
      limit = src.size;
      continue;
    }
    if (len & 0xC0) return 0;  // extended label types are obsolete (RFC 6891 §5)
    if (length + 1 + len > zone::kMaxNameSize || pos + 1 + len > limit) return 0;
    out.push_back(static_cast<char>(len));
    length += 1 + len;
    if (len == 0) break;
    for (size_t i = 1; i <= len; ++i) {
      out.push_back(lower ? Lower(src.bytes[pos + i]) : static_cast<char>(src.bytes[pos + i]));
    }
    pos += 1 + len;
  }
  return after ? after : pos + 1;
}

bool CopyRdata(uint16_t type, const WireSource& src, size_t pos, size_t end, bool lower,
               std::string& out) {
  RdataWalker walker(src, pos, end, lower, out);
  return WalkRdata(type, walker);
}

bool RdataHasLayout(uint16_t type, std::string_view rdata) {
  std::string copy;
  copy.reserve(rdata.size());
  const WireSource src{reinterpret_cast<const uint8_t*>(rdata.data()), rdata.size(), false};
  return CopyRdata(type, src, 0, rdata.size(), /*lower=*/false, copy);
}

std::string CanonicalRdata(uint16_t type, std::string_view rdata) {
  // Only names are lowercased: the other fields are copied as they are.
  std::string out;
  out.reserve(rdata.size());
  const WireSource src{reinterpret_cast<const uint8_t*>(rdata.data()), rdata.size(), false};
  return CopyRdata(type, src, 0, rdata.size(), /*lower=*/true, out) ? out : std::string(rdata);
}

}  // namespace updns::zone
