// TSIG (RFC 8945): HMAC signatures on DNS messages. The server verifies a
// request (UPDATE, AXFR/IXFR query) and signs its answer, or signs every
// message of a transfer stream; as a client it signs its own request
// (NOTIFY) and verifies the answer.
//
// Messages are raw wire bytes. Only the header, the record boundaries and
// the TSIG RR are read, every length is checked against the message, and
// no input makes these functions read outside it. Signing appends the TSIG
// RR in place in the caller's buffer and never writes past its end.
//
// Time is passed in (seconds since the epoch) so that the caller owns the
// clock. Functions are reentrant; a KeyRing is immutable once built and may
// be read from any thread; a StreamSigner or StreamVerifier serves one
// transfer on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace updns::tsig {

enum class Algorithm : uint8_t { kHmacSha1, kHmacSha256, kHmacSha384, kHmacSha512 };

// A configured algorithm name: "hmac-sha256", any case, trailing dot
// optional. The error lists the names we support.
Result<Algorithm> ParseAlgorithm(std::string_view text);
// "hmac-sha256": the name configs and logs use.
std::string_view AlgorithmName(Algorithm algorithm) noexcept;
// The name as TSIG RRs carry it: uncompressed lowercase wire form of
// "hmac-sha256.".
std::string_view AlgorithmWireName(Algorithm algorithm) noexcept;
// Bytes of the algorithm's full HMAC output (20, 32, 48, 64).
size_t MacLength(Algorithm algorithm) noexcept;

struct Key {
  std::string name;  // lowercase uncompressed wire form
  Algorithm algorithm = Algorithm::kHmacSha256;
  std::string secret;  // raw bytes, not base64

  bool operator==(const Key&) const = default;
};

// Decodes a base64 secret as `tsig-keygen`, `keymgr` and config files write
// it (RFC 4648, padded, no whitespace). The error says what is wrong and
// where.
Result<std::string> DecodeSecret(std::string_view base64);
// A key from its configured parts: presentation name ("update.dyn.example"),
// algorithm name and base64 secret. The error names the part at fault.
Result<Key> MakeKey(std::string_view name, std::string_view algorithm,
                    std::string_view base64_secret);

// The keys a server accepts, by name.
class KeyRing {
 public:
  // Invalid for a malformed name or an empty secret; Exists when a key of
  // that name (compared case-insensitively) is already present.
  Status Add(Key key);
  // The key named `wire_name` (uncompressed wire form, any case), or nullptr.
  // The pointer stays valid as long as the ring (Add does not move keys).
  const Key* Find(std::string_view wire_name) const noexcept;
  size_t size() const noexcept { return keys_.size(); }

 private:
  // Transparent, so Find looks names up without building a std::string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };
  std::unordered_map<std::string, Key, NameHash, std::equal_to<>> keys_;  // by lowercase name
};

// TSIG error field values (RFC 8945 §3): not RCODEs.
namespace error {
inline constexpr uint16_t kNoError = 0, kBadSig = 16, kBadKey = 17, kBadTime = 18, kBadTrunc = 22;
}

inline constexpr uint16_t kFudge = 300;  // seconds, what we put in every TSIG RR
inline constexpr size_t kMaxMacSize = 64;

// A MAC as a TSIG RR carries it (possibly truncated by its signer).
struct Mac {
  uint8_t bytes[kMaxMacSize] = {};
  uint8_t size = 0;
  std::span<const uint8_t> view() const noexcept { return {bytes, size}; }
};

// A name read from a message: lowercase, uncompressed wire form.
struct WireName {
  uint8_t bytes[255] = {};
  uint8_t size = 0;
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(bytes), size}; }
};

// What checking a message's TSIG found, in RFC 8945 §5.2 order (key, MAC,
// time, truncation): the first failing check decides.
enum class Outcome : uint8_t {
  kUnsigned,  // no TSIG RR (stream: an unsigned message in the middle)
  kOk,        // the MAC verifies with the key, within the time window
  kFormErr,   // TSIG RR not last, repeated, malformed, or a MAC size RFC 8945
              // §5.2.2.1 forbids: answer FORMERR without a TSIG RR
  kBadKey,    // unknown key, or the algorithm is not the key's
  kBadSig,    // the MAC does not verify (or the peer sent none)
  kBadTime,   // the MAC verifies but |now - time signed| > fudge
  kBadTrunc,  // the MAC verifies but is truncated: we require full MACs
  kInternal,  // OpenSSL failed (out of memory): answer SERVFAIL
};
// "BADSIG", "FORMERR", ... for logs.
std::string_view OutcomeName(Outcome outcome) noexcept;
// The RCODE a server answers a request with: NOTAUTH (9) for the four TSIG
// errors, FORMERR, SERVFAIL for kInternal, and NOERROR (0) for kOk and
// kUnsigned, where the request's own processing decides.
uint8_t ResponseRcode(Outcome outcome) noexcept;

// A message's TSIG RR and the verdict on it. Fields other than `outcome` are
// meaningful from kBadKey on (not for kUnsigned, kFormErr, kInternal).
struct Verified {
  Outcome outcome = Outcome::kUnsigned;
  // The key that matched name and algorithm (kOk, kBadSig, kBadTime,
  // kBadTrunc); points into the KeyRing or at the caller's Key.
  const Key* key = nullptr;
  // Where the TSIG RR starts. The message as it was before it was signed is
  // [0, record_offset) with ARCOUNT one less (see StripRecord).
  size_t record_offset = 0;
  Mac mac;  // the MAC as received
  uint64_t time_signed = 0;
  uint16_t fudge = 0;
  uint16_t original_id = 0;
  uint16_t error = 0;      // the TSIG error field: a peer's verdict in answers
  uint64_t peer_time = 0;  // BADTIME answers: the peer's clock (Other Data)
  WireName key_name;       // the RR's owner
  WireName algorithm_name;
};

// --- Server: verify a request, sign its answer ----------------------------

// Finds and checks the TSIG RR of a request. kUnsigned when no record is a
// TSIG RR (a query without records past the question costs nothing more);
// kFormErr also when the records cannot be walked, signed or not. Allocates
// only when there is a MAC to compute.
Verified VerifyRequest(std::span<const uint8_t> message, const KeyRing& keys,
                       uint64_t now) noexcept;

// Removes the TSIG RR: decrements ARCOUNT in `message` and returns
// record_offset, the size of the message without the record.
// REQUIRES: `verified` came from this message, outcome kOk (or kBadKey on).
size_t StripRecord(std::span<uint8_t> message, const Verified& verified) noexcept;

struct Signed {
  size_t size = 0;  // the message's size with its TSIG RR
  Mac mac;          // the MAC written (size 0 when unsigned)
};

// Bytes of the TSIG RR SignResponse appends for `request`. Reserve them
// when building the answer.
size_t ResponseRecordSize(const Verified& request) noexcept;

// Appends the TSIG RR answering `request` to the answer in
// buffer[0, message_size) and increments ARCOUNT; buffer.size() is the
// capacity. By request.outcome (RFC 8945 §5.3):
//   kOk        signed; the digest covers the request MAC (§4.3.3)
//   kBadTime   signed, error BADTIME, the request's time signed, our clock
//              in Other Data (§5.2.3)
//   kBadTrunc  signed, error BADTRUNC
//   kBadKey, kBadSig  unsigned (empty MAC) with the error (§5.3.2)
// The caller sets the RCODE (ResponseRcode). Invalid, leaving the buffer
// unchanged, when the record does not fit, ARCOUNT is full, or the outcome
// has no TSIG answer (kUnsigned, kFormErr, kInternal).
// REQUIRES: request.key still valid.
Result<Signed> SignResponse(std::span<uint8_t> buffer, size_t message_size, const Verified& request,
                            uint64_t now);

// Signs the answer to a zone transfer request, message by message
// (RFC 8945 §5.3.1): the first digest covers the request MAC, the message
// and all TSIG variables; each later one the prior MAC, the message and the
// timers. Every message is signed.
class StreamSigner {
 public:
  // REQUIRES: request.outcome == kOk; *request.key outlives the signer.
  explicit StreamSigner(const Verified& request) noexcept
      : key_(request.key), prior_mac_(request.mac) {}

  // As SignResponse, for the next message of the stream.
  Result<Signed> Sign(std::span<uint8_t> buffer, size_t message_size, uint64_t now);

 private:
  const Key* key_;
  Mac prior_mac_;
  bool first_ = true;
};

// --- Client: sign a request, verify its answer -----------------------------

// Bytes of the TSIG RR SignRequest or StreamSigner appends with `key`.
size_t RecordSize(const Key& key) noexcept;

// Signs a request (e.g. NOTIFY) in place, as SignResponse. Keep the
// returned MAC to verify the answer.
Result<Signed> SignRequest(std::span<uint8_t> buffer, size_t message_size, const Key& key,
                           uint64_t now);

// Checks the answer to a request signed with `key` whose MAC was
// `request_mac`. kUnsigned (no TSIG RR) must be treated as a failure. An
// unsigned error answer from the peer is kBadSig with the peer's verdict in
// `error`; a signed BADTIME answer is kOk with error BADTIME and the peer's
// clock in `peer_time`.
Verified VerifyResponse(std::span<const uint8_t> message, const Key& key, const Mac& request_mac,
                        uint64_t now) noexcept;

// Checks a multi-message answer (AXFR/IXFR) to a request signed with `key`.
// Accepts unsigned messages between signed ones as RFC 8945 §5.3.1 allows
// (up to 99 in a row); they are folded into the next signed one's MAC.
class StreamVerifier {
 public:
  // `request_mac`: SignRequest's MAC of the transfer request. REQUIRES: `key`
  // outlives the verifier.
  StreamVerifier(const Key& key, const Mac& request_mac);
  ~StreamVerifier();
  StreamVerifier(const StreamVerifier&) = delete;
  StreamVerifier& operator=(const StreamVerifier&) = delete;

  // The next message. kOk for a signed message that verifies; kUnsigned for
  // an accepted unsigned one; kBadSig when an unsigned message cannot be
  // accepted (the first one, or the 100th in a row). After any failure every
  // later call fails the same way.
  Verified Verify(std::span<const uint8_t> message, uint64_t now) noexcept;
  // Whether the stream so far ends with a verified signed message: check it
  // after the last message.
  bool Complete() const noexcept {
    return started_ && unsigned_run_ == 0 && failed_ == Outcome::kOk;
  }

 private:
  struct Running;  // the HMAC over everything since the last signed message
  const Key& key_;
  Mac prior_mac_;
  std::unique_ptr<Running> running_;
  bool started_ = false;
  int unsigned_run_ = 0;
  Outcome failed_ = Outcome::kOk;  // kOk while no message failed
};

}  // namespace updns::tsig
