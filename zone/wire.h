// DNS wire format on the query path: the query parser and the answer
// writer with name compression. Allocation-free and noexcept; every length
// read from a packet is checked before use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace updns::zone {

namespace type {
inline constexpr uint16_t kA = 1, kNS = 2, kMD = 3, kMF = 4, kCNAME = 5, kSOA = 6, kMB = 7, kMG = 8,
                          kMR = 9, kPTR = 12, kHINFO = 13, kMINFO = 14, kMX = 15, kTXT = 16,
                          kRP = 17, kAFSDB = 18, kRT = 21, kPX = 26, kAAAA = 28, kSRV = 33,
                          kNAPTR = 35, kKX = 36, kDNAME = 39, kOPT = 41, kDS = 43, kRRSIG = 46,
                          kNSEC = 47, kSPF = 99, kTKEY = 249, kTSIG = 250, kIXFR = 251, kAXFR = 252,
                          kMAILB = 253, kMAILA = 254, kANY = 255;
}  // namespace type
inline constexpr uint16_t kClassIN = 1, kClassANY = 255;

namespace rcode {
inline constexpr uint8_t kNoError = 0, kFormErr = 1, kServFail = 2, kNXDomain = 3, kNotImp = 4,
                         kRefused = 5, kNotAuth = 9;
inline constexpr uint16_t kBadVers = 16;  // extended: needs EDNS
}  // namespace rcode

namespace opcode {
inline constexpr uint8_t kQuery = 0, kNotify = 4, kUpdate = 5;
}

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxNameSize = 255;
inline constexpr size_t kMaxLabels = 128;
inline constexpr size_t kOptRecordSize = 11;  // root owner, type, class, ttl, rdlength 0

// A parsed query. Views point into the packet it came from.
struct Query {
  uint16_t id = 0;
  uint8_t opcode = 0;
  uint16_t flags = 0;           // header flags word as received
  std::string_view question;    // the question section verbatim (QNAME case kept)
  uint8_t qname[kMaxNameSize];  // lowercased, uncompressed wire form
  uint8_t qname_size = 0;
  uint8_t label_count = 0;              // labels in qname, root excluded
  uint8_t label_offsets[kMaxLabels];    // where each label starts in qname
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool has_edns = false;
  uint8_t edns_version = 0;
  uint16_t edns_payload = 0;   // as sent, before clamping
  bool edns_do = false;
  bool has_tsig = false;  // a TSIG RR came in the additional section

  std::string_view qname_view() const noexcept {
    return {reinterpret_cast<const char*>(qname), qname_size};
  }
};

enum class ParseOutcome {
  kOk,
  kFormErr,  // answer FORMERR; `question` is set when the question parsed
  kNotImp,   // an opcode we do not implement
  kDrop,     // not worth an answer: a response, or shorter than a header
};

ParseOutcome ParseQuery(const uint8_t* packet, size_t size, Query& out) noexcept;

// "A", "aaaa", "TYPE65" (RFC 3597) -> the type number; Invalid naming the
// text when it is none of these.
Result<uint16_t> TypeFromText(std::string_view text);
// The mnemonic of a type, or "TYPEnnn".
std::string TypeText(uint16_t type);
// Types that are not data: 0, OPT, and the query-only range 128-255 (TKEY,
// TSIG, IXFR, AXFR, MAILA, MAILB, ANY).
bool IsMetaType(uint16_t type) noexcept;

// Reads a possibly compressed name at `pos` of `packet`, writing its
// uncompressed lowercased form to `out` (kMaxNameSize bytes). Returns the
// position after the name in the packet, or 0 for a malformed name
// (bad label type, overlong, pointer loop or forward pointer).
size_t ReadName(const uint8_t* packet, size_t size, size_t pos, uint8_t* out,
                size_t* out_size) noexcept;

// Writes a DNS message into a caller's buffer, compressing names against
// those already written. Every Put* returns false, writing nothing, when the
// bytes would pass `limit`; the caller decides what truncation means.
class MessageWriter {
 public:
  MessageWriter(uint8_t* buffer, size_t limit) noexcept : buf_(buffer), limit_(limit) {}

  size_t size() const noexcept { return size_; }
  size_t limit() const noexcept { return limit_; }
  uint8_t* data() noexcept { return buf_; }
  // Forgets everything written after `size` (also compression targets).
  void Rewind(size_t size) noexcept;
  void SetLimit(size_t limit) noexcept { limit_ = limit; }

  bool PutBytes(const void* bytes, size_t n) noexcept;
  bool PutU16(uint16_t v) noexcept;
  // Writes an uncompressed wire name compressed; `*offset` (if given) gets
  // where it starts, usable as a pointer target for later owners.
  bool PutName(std::string_view wire_name, uint16_t* offset = nullptr) noexcept;
  // Writes a compression pointer to a name written earlier.
  bool PutPointer(uint16_t offset) noexcept;
  // Writes rdata of `type`, compressing the names RFC 3597 §4 allows.
  bool PutRdata(uint16_t type, std::string_view rdata) noexcept;
  // Records the labels of a name already in the buffer at `offset` (e.g. the
  // question's QNAME) as compression targets.
  void AddCompressionTarget(uint16_t offset, std::string_view wire_name) noexcept;

  void SetU16(size_t at, uint16_t v) noexcept {
    buf_[at] = static_cast<uint8_t>(v >> 8);
    buf_[at + 1] = static_cast<uint8_t>(v);
  }

 private:
  static constexpr size_t kMaxTargets = 64;
  bool MatchesAt(uint16_t offset, std::string_view suffix) const noexcept;
  void RememberLabels(size_t start, std::string_view wire_name, size_t labels_written) noexcept;

  uint8_t* buf_;
  size_t limit_;
  size_t size_ = 0;
  uint16_t targets_[kMaxTargets];  // label starts of names in the buffer
  size_t target_count_ = 0;
};

// Length of the uncompressed wire name at the start of `bytes`, or 0 when
// malformed.
size_t WireNameLength(std::string_view bytes) noexcept;

}  // namespace updns::zone
