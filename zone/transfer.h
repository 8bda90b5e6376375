// Zone transfers: the AXFR (RFC 5936) and IXFR (RFC 1995) answer streams,
// written one DNS message at a time into the caller's buffer, and the IXFR
// answer over UDP.
//
// A TransferStream owns one read transaction for the whole transfer, so
// every message comes from the same snapshot, and it keeps nothing of the
// zone in memory: nodes and journal entries are read from the LMDB map as
// the messages are written. Memory is the caller's message buffer plus a few
// hundred bytes of state, whatever the zone's size.
//
// Not on the query path: Start() allocates a little; Next() does not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/store.h"

namespace updns::zone {

// An AXFR or IXFR request.
struct TransferRequest {
  uint16_t id = 0;
  uint16_t flags = 0;    // the request's header flags word (RD and CD are echoed)
  uint16_t qtype = 0;    // type::kAXFR or type::kIXFR
  std::string zone;      // QNAME, lowercased uncompressed wire: the apex asked for
  std::string question;  // the question section verbatim (QNAME case kept)
  // IXFR: the serial of the SOA in the request's authority section.
  std::optional<uint32_t> client_serial;
  bool has_edns = false;  // an OPT RR came with it: every message carries one
};

// Parses a transfer request (from TCP, without the length prefix, or UDP).
// NotFound when the packet is not one: a response, not opcode QUERY, not
// exactly one question, QTYPE other than AXFR/IXFR or QCLASS other than IN;
// answer it as any other query. Invalid when it is one but malformed (an
// IXFR without exactly one SOA for QNAME in the authority section, bad
// lengths, records in the answer section...); answer FORMERR. Unsupported
// for EDNS versions other than 0; answer BADVERS. Every length is checked;
// names may be compressed. OPT and TSIG in the additional section are
// accepted (TSIG is checked by the caller).
Result<TransferRequest> ParseTransferRequest(const uint8_t* packet, size_t size);

struct TransferOptions {
  // Bytes left free at the end of every message, for the TSIG RR that the
  // caller appends (and counts in ARCOUNT) after Next().
  size_t reserve = 0;
  // The payload size our OPT RR advertises (the server's udp_payload).
  uint16_t udp_payload = 1232;
};

// What a stream sends: the AXFR format (also IXFR's fallback), IXFR's
// incremental format, or IXFR's single SOA for a client that is current.
enum class TransferFormat { kAxfr, kIncremental, kUpToDate };

class TransferStream {
 public:
  // Takes the snapshot and decides the format. For IXFR: the client's serial
  // is current or newer (RFC 1982) -> kUpToDate; the journal holds an
  // unbroken chain of entries from it to the current serial ->
  // kIncremental; otherwise kAxfr. NotFound when `request.zone` is not a
  // zone in the store; Corrupt when its apex has no usable SOA. The caller
  // checks first that the zone is served and the client may transfer it.
  // The stream uses one LMDB reader slot until it is destroyed, and pins the
  // snapshot's pages: limit concurrent transfers.
  static Result<std::unique_ptr<TransferStream>> Start(const storage::Store& store,
                                                       const TransferRequest& request,
                                                       const TransferOptions& options = {});
  ~TransferStream();
  TransferStream(const TransferStream&) = delete;
  TransferStream& operator=(const TransferStream&) = delete;

  // Writes the next message into `out` and returns its size, or 0 when the
  // answer is complete. Each message: the request's ID, QR and AA set,
  // names compressed within the message, at most min(capacity, 65535) -
  // reserve bytes (plus the OPT RR, counted in that). The first message
  // carries the question, the others none (RFC 5936 §2.2). When the
  // transfer cannot go on (an RR that does not fit an empty message, a
  // corrupt node or entry) the message written is an error answer (RCODE
  // SERVFAIL, no records), status() says why, and the next call returns 0.
  // With capacity - reserve below 512 nothing is written: 0, and status()
  // says why. noexcept; allocates only to build status().
  size_t Next(uint8_t* out, size_t capacity) noexcept;

  TransferFormat format() const noexcept { return format_; }
  uint32_t serial() const noexcept;  // the snapshot's SOA serial
  // OK unless the stream ended with an error answer.
  const Status& status() const noexcept { return status_; }
  // RRs written so far (both SOAs included), for logs and metrics.
  uint64_t records() const noexcept { return records_; }

 private:
  struct State;
  explicit TransferStream(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  TransferFormat format_ = TransferFormat::kAxfr;
  Status status_;
  uint64_t records_ = 0;
};

// IXFR over UDP (RFC 1995 §2) in one datagram, read from `txn`: the current
// SOA alone when the client's serial is current or newer, otherwise the
// question with TC set and no records, so that the client retries over TCP.
// SERVFAIL when the zone is not in the store. At most `capacity` - reserve
// bytes (capacity: what the client accepts over UDP); 0 when not even the
// question fits. noexcept and allocation-free.
size_t AnswerIxfrOverUdp(const storage::Txn& txn, const TransferRequest& request,
                         const TransferOptions& options, uint8_t* out, size_t capacity) noexcept;

}  // namespace updns::zone
