// The control path of a query loop: the DNS messages that are not plain
// queries, which zone::Responder hands off (Responder::kHandOff). They need
// keys, access rules and the writer, which the query path has no business
// holding:
//   - TSIG-signed queries (a secondary checking the SOA with its key):
//     verified, answered by the Responder, the answer signed;
//   - RFC 2136 UPDATE: verified, parsed, submitted to update::Writer; the
//     answer is sent when the change is durable (DnsControl::Completion);
//   - AXFR and IXFR: access checked, then streamed over TCP message by
//     message (TransferSession); IXFR over UDP answered in one datagram.
// Errors follow RFC 8945 §5 (NOTAUTH with the TSIG error) and RFC 2136.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "server/dns_counters.h"
#include "storage/store.h"
#include "tsig/tsig.h"
#include "update/rfc2136.h"
#include "update/writer.h"
#include "zone/responder.h"
#include "zone/transfer.h"

namespace updns::server {

// Who may transfer a zone: a request signed with one of `keys`, or one from
// an address in `prefixes`.
struct TransferAccess {
  std::string apex;               // lowercased wire name
  std::vector<std::string> keys;  // TSIG key names, lowercased wire
  std::vector<config::Prefix> prefixes;
};

// Keys and access rules, shared read-only by every loop.
struct DnsPolicy {
  tsig::KeyRing keys;
  std::vector<TransferAccess> transfer;  // one per configured zone
  update::UpdatePolicyPtr update;

  const TransferAccess* FindTransfer(std::string_view apex) const;
};
using DnsPolicyPtr = std::shared_ptr<const DnsPolicy>;

// From the configuration (already validated by config::LoadConfig).
Result<DnsPolicyPtr> MakeDnsPolicy(const config::Config& config);

// A configured key as TSIG uses it. The error names the key.
Result<tsig::Key> TsigKeyOf(const config::KeyConfig& key);

// One zone transfer in progress on a TCP connection.
class TransferSession {
 public:
  // `active` counts the loop's sessions: incremented here, decremented by
  // the destructor.
  TransferSession(std::unique_ptr<zone::TransferStream> stream,
                  std::optional<tsig::Verified> request, DnsPolicyPtr policy, unsigned* active);
  ~TransferSession();
  TransferSession(const TransferSession&) = delete;
  TransferSession& operator=(const TransferSession&) = delete;
  // The next message (without the TCP length prefix), signed when the
  // request was; 0 when the transfer is complete.
  size_t Next(uint8_t* out, size_t capacity);

 private:
  std::unique_ptr<zone::TransferStream> stream_;
  DnsPolicyPtr policy_;  // keeps the key the signer points at alive
  std::optional<tsig::Verified> request_;
  std::optional<tsig::StreamSigner> signer_;
  unsigned* active_;
};

class DnsControl {
 public:
  // An UPDATE's answer, ready to send; built on the writer thread and
  // handed to the loop by `deliver`.
  struct Completion {
    uint64_t ticket = 0;  // what Handle() was given
    std::vector<uint8_t> answer;
  };
  using Deliver = std::function<void(Completion)>;

  // `writer` may be null: UPDATE is then refused. `deliver` must be
  // thread-safe; it is called on the writer thread (or at once from
  // Handle() when the writer refuses work). `counters`, when given, is the
  // loop's (it must outlive this): UPDATEs answered at once and transfers
  // are counted there; the loop counts the UPDATE answers `deliver` gets.
  DnsControl(const storage::Store& store, DnsPolicyPtr policy, update::Writer* writer,
             uint16_t udp_payload, Deliver deliver, DnsCounters* counters = nullptr);

  // A reload's keys and rules, for the messages handled from now on;
  // transfers already running keep the policy they started with.
  void SetPolicy(DnsPolicyPtr policy);

  struct Outcome {
    enum class Kind { kAnswer, kDrop, kPending, kTransfer } kind = Kind::kDrop;
    size_t size = 0;                            // kAnswer: bytes written to `out`
    std::unique_ptr<TransferSession> transfer;  // kTransfer (TCP only)
  };

  // Handles a message the responder handed off. `message` may be modified
  // (a TSIG RR is stripped in place). `out` must hold 65535 bytes for TCP
  // and at least 512 for UDP; `ticket` names the client for a kPending
  // answer. REQUIRES: between responder.BeginBatch() and EndBatch().
  Outcome Handle(uint8_t* message, size_t size, zone::Transport transport, const sockaddr* peer,
                 zone::Responder& responder, uint8_t* out, size_t capacity, uint64_t ticket);

 private:
  Outcome HandleUpdate(uint8_t* message, size_t size, const sockaddr* peer, uint8_t* out,
                       size_t capacity, uint64_t ticket);
  Outcome HandleTransfer(uint8_t* message, size_t size, const zone::TransferRequest& request,
                         zone::Transport transport, const sockaddr* peer, uint8_t* out,
                         size_t capacity);
  Outcome HandleSignedQuery(uint8_t* message, size_t size, zone::Transport transport,
                            zone::Responder& responder, uint8_t* out, size_t capacity);

  // Each transfer holds an LMDB reader slot and pins its snapshot's pages
  // until the client has read it all; slow or stuck secondaries must not
  // take them all.
  static constexpr unsigned kMaxTransfers = 32;  // per loop

  const storage::Store& store_;
  DnsPolicyPtr policy_;
  update::Writer* writer_;
  uint16_t udp_payload_;
  Deliver deliver_;
  DnsCounters* counters_;
  DnsCounters unused_counters_;  // counters_ when none were given
  unsigned active_transfers_ = 0;
};

}  // namespace updns::server
