// RFC 2136 UPDATE: the message parser, the per-zone key policy, and the
// write request that applies an update through the writer (update/writer.h).
// UPDATE and dyndns2 changes thus share one order and one group commit, and
// neither is answered before its commit is durable.
//
// How the server uses it, per UPDATE message (opcode 5, QR clear):
//   1. ParseUpdateMessage() on the loop thread; an error is answered FORMERR
//      there and never reaches the writer.
//   2. TSIG (RFC 8945) is verified by the server and its RR removed; a bad
//      signature is the server's NOTAUTH + TSIG error, not ours.
//   3. Submit an UpdateRequest; its callback, on the writer thread, gets the
//      RCODE once the outcome is durable (or rolled back).
//   4. BuildUpdateResponse() writes the answer; the server signs it.
//
// RCODEs (the internal error is separate: see UpdateRequest::Done):
//   FORMERR   malformed message, or a record RFC 2136 §3.2/§3.4.1.3 forbids
//             (TTL or rdata where none may be, meta type, unknown class)
//   NOTAUTH   the zone is not in the store, or its class is not IN
//             (RFC 2136 §3.1.2, "not authoritative")
//   REFUSED   unsigned, a key without a rule for the zone, or an RR the key
//             may not change (RFC 2136 §3.3; BIND and Knot answer policy
//             denials REFUSED; NOTAUTH stays for "not ours" and, with a TSIG
//             error, for failed signatures, RFC 8945 §5.2); also an RRset
//             that would outgrow what a DNS message can carry
//   NOTZONE   a prerequisite or update name outside the zone
//   NXDOMAIN, YXDOMAIN, NXRRSET, YXRRSET   a prerequisite failed (§3.2.5)
//   SERVFAIL  the store failed or the commit did not happen
// On any of these, nothing of the request is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/store.h"
#include "update/writer.h"

namespace updns::update {

namespace rcode {
inline constexpr uint8_t kNoError = 0, kFormErr = 1, kServFail = 2, kNXDomain = 3, kNotImp = 4,
                         kRefused = 5, kYXDomain = 6, kYXRRset = 7, kNXRRset = 8, kNotAuth = 9,
                         kNotZone = 10;
}  // namespace rcode

// "NOERROR", "NXRRSET", ...; "RCODE<n>" for others. For logs and tests.
std::string RcodeText(uint8_t rcode);

// One rule of a zone's `update:` list. A request is allowed an RR when some
// rule of its key matches both the RR's owner and its type.
struct UpdateRule {
  std::string key;  // TSIG key name, lowercase wire form
  // Lowercase wire names. A leading "*" label matches any name strictly
  // below the rest; any other name matches itself. Empty: the whole zone.
  std::vector<std::string> names;
  // Empty: every type except SOA and NS.
  std::vector<uint16_t> types;
};

// Zone apex (lowercase wire) -> its rules; a zone without rules takes no
// UPDATE. Immutable once shared: a config reload builds a new map and swaps
// the pointer the server hands to new requests; requests in flight keep
// theirs.
using UpdatePolicy = std::map<std::string, std::vector<UpdateRule>>;
using UpdatePolicyPtr = std::shared_ptr<const UpdatePolicy>;

// One record of the prerequisite or update section.
struct UpdateRR {
  std::string owner;  // lowercase wire form
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  // Uncompressed, names in rdata with their case; empty iff RDLENGTH was 0.
  std::string rdata;
};

// An UPDATE message (RFC 2136 §2) as the writer needs it; owns its data.
struct UpdateMessage {
  uint16_t id = 0;
  std::string zone;  // ZNAME, lowercase wire form
  uint16_t zone_class = 0;
  std::vector<UpdateRR> prerequisites;
  std::vector<UpdateRR> updates;
};

// Parses an UPDATE message; the additional section is checked and dropped.
// Every length is checked against the message. Invalid (answer FORMERR),
// saying what and where, for: a response or another opcode, ZOCOUNT other
// than 1, a zone type other than SOA, a truncated or overlong record, a
// malformed or forward-pointing compressed name, rdata that does not fit its
// type (e.g. an A of 3 bytes), trailing bytes.
Result<UpdateMessage> ParseUpdateMessage(const uint8_t* message, size_t size);

// Writes the response to `request` into `out`: the request's ID, QR,
// opcode UPDATE, `rcode`, and its zone section echoed (other counts 0).
// When the zone section cannot be read, only the header, with FORMERR.
// Returns the size written, or 0 (send nothing) when the request is shorter
// than a header or `capacity` cannot hold the answer.
size_t BuildUpdateResponse(const uint8_t* request, size_t size, uint8_t rcode, uint8_t* out,
                           size_t capacity) noexcept;

// Applies one UPDATE in the writer (RFC 2136 §3): zone, key policy,
// prerequisites, prescan and per-RR authorization, then the update section,
// in the request's nested transaction. Behaviour beyond the RFC:
//  - Owner names, and names inside rdata, compare case-insensitively; the
//    case sent is stored. TTL is not compared. Adding an RR already present
//    changes nothing unless its TTL differs: then the RRset takes the new
//    TTL (one TTL per RRset, RFC 2181 §5.2), as BIND does.
//  - CNAME: added only to a name without other data (RRSIG/NSEC excepted),
//    replacing a different CNAME; other data at a CNAME name is ignored.
//  - SOA: never deleted; an added SOA replaces the apex SOA only when its
//    serial is greater (RFC 1982). The zone then serves exactly that serial:
//    the writer bumps each changed zone's serial by one per group, so the
//    serial one below it is stored here. Without an SOA in the update, the
//    serial goes up by one per group that changed the zone; an update that
//    changes nothing leaves it alone.
//  - NS at the apex: its RRset is never deleted, nor its last RR. Deleting
//    every RRset of the apex keeps SOA and NS.
//  - Deleting every RRset of a name (ANY/ANY) needs the key to be allowed
//    every type the name holds (SOA and NS at the apex excepted). Deleting
//    the SOA or the apex NS RRset, which the RFC always ignores, needs only
//    a rule for the name.
//  - Hosts (storage/accounts.h) whose name is changed here have their
//    record follow the node: ipv4/ipv6
//    become the first A/AAAA left (or empty) and updated_at/updated_from are
//    set when one of them changed. A zone re-import re-applies hosts with
//    one A, one AAAA and the zone's host_ttl: further A/AAAA added here, or
//    their TTL, and non-host names last until the next import of a changed
//    file, as with dyndns2.
//  - NS added or removed below the apex keeps the zone's delegation count.
class UpdateRequest : public WriteRequest {
 public:
  // Runs on the writer thread with the RCODE to answer.
  using Callback = std::function<void(uint8_t rcode)>;

  // `key`: the verified TSIG key name (lowercase wire form; empty when
  // unsigned). `client`: the source address as text, for logs and hosts'
  // updated_from. `policy` must not be null.
  UpdateRequest(UpdateMessage message, std::string key, std::string client, UpdatePolicyPtr policy,
                Callback done);

  Status Apply(storage::WriteTxn& txn, WriteContext& context) override;
  // Calls the callback: the RCODE Apply decided, or SERVFAIL when the store
  // or the commit failed. Logs refusals and failures.
  void Done(const Status& status) override;

 private:
  UpdateMessage message_;
  std::string key_;
  std::string client_;
  UpdatePolicyPtr policy_;
  Callback done_;
  uint8_t rcode_ = rcode::kNoError;
  size_t changed_names_ = 0;
};

}  // namespace updns::update
