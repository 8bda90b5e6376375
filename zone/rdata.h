// Record data in wire form, by type: which types carry domain names and
// fields of fixed layout, whether an rdata has the layout of its type, and
// the form two rdatas compare in. Shared by everything that stores records
// from outside (RFC 2136 UPDATE, master files), so that the store only ever
// holds rdata a reader of its type can take apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace updns::zone {

// Where names are read from: a whole message (compression pointers allowed,
// never into the header) or one stored rdata (no pointers).
struct WireSource {
  const uint8_t* bytes;
  size_t size;
  bool pointers;
};

// Reads the name at `pos` (RFC 1035 §4.1.4), appending its uncompressed form
// to `out`, lowercased when `lower`. Its bytes in the stream must end by
// `end`; a pointer must lead strictly before every label seen so far, which
// rules out loops. Returns the stream position after the name, or 0.
size_t ReadName(const WireSource& src, size_t pos, size_t end, bool lower, std::string& out);

// Appends the rdata in [pos, end) of `src` to `out` with its names
// decompressed (and lowercased when `lower`). False when the bytes do not
// have the layout of `type`. The types whose layout is known are those with
// names inside (RFC 3597 §4 says which may arrive compressed; all of them
// are taken either way), SOA, HINFO, TXT and the fixed-size addresses;
// every other type is opaque (RFC 3597) and always fits.
bool CopyRdata(uint16_t type, const WireSource& src, size_t pos, size_t end, bool lower,
               std::string& out);

// CopyRdata's check on one uncompressed rdata, as stored.
bool RdataHasLayout(uint16_t type, std::string_view rdata);

// The form two rdatas are compared in: names inside lowercased (RFC 2136
// §1.1.1 compares names case-insensitively; RFC 4034 §6.2 lists the types).
std::string CanonicalRdata(uint16_t type, std::string_view rdata);

}  // namespace updns::zone
