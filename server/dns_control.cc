#include "server/dns_control.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <span>

#include "common/log.h"
#include "zone/name.h"
#include "zone/wire.h"

namespace updns::server {
namespace {

constexpr uint8_t kFormErr = 1, kServFail = 2, kRefused = 5, kNotAuth = 9;
constexpr size_t kMaxUpdateAnswer = 12 + zone::kMaxNameSize + 4 + 512;

uint64_t Now() { return static_cast<uint64_t>(std::time(nullptr)); }

std::string AddressText(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof(text));
  } else if (address->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
              sizeof(text));
  }
  return text;
}

std::string KeyText(const tsig::Verified& verified) {
  return verified.key != nullptr ? zone::TextFromWireName(verified.key->name) : "-";
}

// An answer carrying only the header and, when it parses, the question:
// for requests refused or failed before any processing.
size_t ErrorAnswer(const uint8_t* request, size_t size, uint8_t rcode, uint8_t* out,
                   size_t capacity) {
  if (size < zone::kHeaderSize || capacity < zone::kHeaderSize) return 0;
  std::memcpy(out, request, 4);
  out[2] = static_cast<uint8_t>(0x80 | (request[2] & 0x79));  // QR, opcode, RD
  out[3] = rcode;
  std::memset(out + 4, 0, 8);
  size_t end = zone::kHeaderSize;
  if (request[4] == 0 && request[5] == 1) {
    uint8_t name[zone::kMaxNameSize];
    size_t name_size = 0;
    size_t after = zone::ReadName(request, size, zone::kHeaderSize, name, &name_size);
    if (after != 0 && after + 4 <= size && after + 4 <= capacity &&
        after == zone::kHeaderSize + name_size) {  // the first name is never compressed
      std::memcpy(out + end, request + end, after + 4 - end);
      end = after + 4;
      out[5] = 1;
    }
  }
  return end;
}

// Appends the TSIG answer for `request` (signed, or the unsigned error
// record); on failure the answer goes out unsigned, which the client
// rejects as it should.
size_t Sign(uint8_t* out, size_t capacity, size_t size, const tsig::Verified& request) {
  auto signed_answer = tsig::SignResponse(std::span<uint8_t>(out, capacity), size, request, Now());
  if (!signed_answer.ok()) {
    Log(LogLevel::kWarning, "tsig_sign_failed",
        {{"key", zone::TextFromWireName(request.key_name.view())},
         {"error", signed_answer.status()}});
    return size;
  }
  return signed_answer->size;
}

bool IsTsigError(tsig::Outcome outcome) {
  return outcome == tsig::Outcome::kBadKey || outcome == tsig::Outcome::kBadSig ||
         outcome == tsig::Outcome::kBadTime || outcome == tsig::Outcome::kBadTrunc;
}

// The UDP size a client accepts (RFC 6891), within what we offer.
size_t UdpLimit(const zone::Query& query, uint16_t udp_payload) {
  if (!query.has_edns) return 512;
  return std::clamp<size_t>(query.edns_payload, 512, udp_payload);
}

}  // namespace

const TransferAccess* DnsPolicy::FindTransfer(std::string_view apex) const {
  for (const TransferAccess& access : transfer) {
    if (access.apex == apex) return &access;
  }
  return nullptr;
}

Result<tsig::Key> TsigKeyOf(const config::KeyConfig& key) {
  auto algorithm = tsig::ParseAlgorithm(key.algorithm);
  if (!algorithm.ok()) return algorithm.status().WithContext("key '" + key.name + "': ");
  auto name = zone::LowercaseWireNameFromText(key.name);
  if (!name.ok()) return name.status().WithContext("key '" + key.name + "': ");
  return tsig::Key{*name, *algorithm, key.secret};
}

Result<DnsPolicyPtr> MakeDnsPolicy(const config::Config& config) {
  auto policy = std::make_shared<DnsPolicy>();
  auto wire = [](std::string_view text) -> Result<std::string> {
    auto name = zone::LowercaseWireNameFromText(text);
    if (!name.ok()) return name.status().WithContext(std::string(text) + ": ");
    return name;
  };
  for (const config::KeyConfig& key : config.keys) {
    auto tsig_key = TsigKeyOf(key);
    if (!tsig_key.ok()) return tsig_key.status();
    if (Status s = policy->keys.Add(std::move(tsig_key).value()); !s.ok())
      return s.WithContext("key '" + key.name + "': ");
  }
  auto update = std::make_shared<update::UpdatePolicy>();
  for (const config::ZoneConfig& zone : config.zones) {
    auto apex = wire(zone.name);
    if (!apex.ok()) return apex.status();
    TransferAccess access;
    access.apex = *apex;
    for (const std::string& key : zone.transfer_keys) {
      auto name = wire(key);
      if (!name.ok()) return name.status();
      access.keys.push_back(std::move(name).value());
    }
    access.prefixes = zone.transfer_prefixes;
    policy->transfer.push_back(std::move(access));
    if (zone.update.empty()) continue;
    std::vector<update::UpdateRule>& rules = (*update)[*apex];
    for (const config::UpdateRuleConfig& rule_config : zone.update) {
      update::UpdateRule rule;
      auto key = wire(rule_config.key);
      if (!key.ok()) return key.status();
      rule.key = std::move(key).value();
      for (const std::string& pattern : rule_config.names) {
        auto name = wire(pattern);
        if (!name.ok()) return name.status();
        rule.names.push_back(std::move(name).value());
      }
      rule.types = rule_config.types;
      rules.push_back(std::move(rule));
    }
  }
  policy->update = std::move(update);
  return DnsPolicyPtr(std::move(policy));
}

TransferSession::TransferSession(std::unique_ptr<zone::TransferStream> stream,
                                 std::optional<tsig::Verified> request, DnsPolicyPtr policy,
                                 unsigned* active)
    : stream_(std::move(stream)),
      policy_(std::move(policy)),
      request_(std::move(request)),
      active_(active) {
  if (request_) signer_.emplace(*request_);
  ++*active_;
}

TransferSession::~TransferSession() { --*active_; }

size_t TransferSession::Next(uint8_t* out, size_t capacity) {
  size_t size = stream_->Next(out, capacity);
  if (size == 0 || !signer_) return size;
  auto signed_message = signer_->Sign(std::span<uint8_t>(out, capacity), size, Now());
  if (!signed_message.ok()) {
    // The stream reserved room for the record, so this is a bug; the
    // secondary would reject the unsigned message, and end the transfer.
    Log(LogLevel::kError, "transfer_sign_failed", {{"error", signed_message.status()}});
    return 0;
  }
  return signed_message->size;
}

DnsControl::DnsControl(const storage::Store& store, DnsPolicyPtr policy, update::Writer* writer,
                       uint16_t udp_payload, Deliver deliver, DnsCounters* counters)
    : store_(store),
      policy_(std::move(policy)),
      writer_(writer),
      udp_payload_(udp_payload),
      deliver_(std::move(deliver)),
      counters_(counters ? counters : &unused_counters_) {}

void DnsControl::SetPolicy(DnsPolicyPtr policy) {
  policy_ = policy ? std::move(policy) : std::make_shared<DnsPolicy>();
}

DnsControl::Outcome DnsControl::Handle(uint8_t* message, size_t size, zone::Transport transport,
                                       const sockaddr* peer, zone::Responder& responder,
                                       uint8_t* out, size_t capacity, uint64_t ticket) {
  if (size < zone::kHeaderSize) return {};
  if ((message[2] >> 3 & 0x0f) == zone::opcode::kUpdate)
    return HandleUpdate(message, size, peer, out, capacity, ticket);
  auto transfer = zone::ParseTransferRequest(message, size);
  if (transfer.ok()) return HandleTransfer(message, size, *transfer, transport, peer, out, capacity);
  if (transfer.status().code() == Status::Code::kInvalid) {
    Log(LogLevel::kDebug, "transfer_malformed",
        {{"peer", AddressText(peer)}, {"error", transfer.status()}});
    return {Outcome::Kind::kAnswer, ErrorAnswer(message, size, kFormErr, out, capacity)};
  }
  return HandleSignedQuery(message, size, transport, responder, out, capacity);
}

DnsControl::Outcome DnsControl::HandleSignedQuery(uint8_t* message, size_t size,
                                                  zone::Transport transport,
                                                  zone::Responder& responder, uint8_t* out,
                                                  size_t capacity) {
  tsig::Verified verified =
      tsig::VerifyRequest(std::span<const uint8_t>(message, size), policy_->keys, Now());
  size_t limit = transport == zone::Transport::kTcp
                     ? capacity
                     : std::min(capacity, UdpLimit(responder.last_query(), udp_payload_));
  if (verified.outcome == tsig::Outcome::kOk) {
    size_t unsigned_size = tsig::StripRecord(std::span<uint8_t>(message, size), verified);
    size_t reserve = tsig::ResponseRecordSize(verified);
    if (limit <= reserve + zone::kHeaderSize) return {};
    size_t answer = responder.Respond(message, unsigned_size, transport, out, limit - reserve);
    if (answer == 0 || answer == zone::Responder::kHandOff) return {};
    return {Outcome::Kind::kAnswer, Sign(out, limit, answer, verified)};
  }
  if (IsTsigError(verified.outcome)) {
    size_t answer = ErrorAnswer(message, size, kNotAuth, out, limit);
    return {Outcome::Kind::kAnswer, answer == 0 ? 0 : Sign(out, limit, answer, verified)};
  }
  uint8_t rcode = verified.outcome == tsig::Outcome::kInternal ? kServFail : kFormErr;
  return {Outcome::Kind::kAnswer, ErrorAnswer(message, size, rcode, out, limit)};
}

DnsControl::Outcome DnsControl::HandleUpdate(uint8_t* message, size_t size, const sockaddr* peer,
                                             uint8_t* out, size_t capacity, uint64_t ticket) {
  size_t limit = std::min(capacity, kMaxUpdateAnswer);
  auto answer = [&](uint8_t rcode) {
    counters_->updates[RcodeSlot(rcode)].Add();
    return Outcome{Outcome::Kind::kAnswer, update::BuildUpdateResponse(message, size, rcode, out, limit)};
  };
  tsig::Verified verified =
      tsig::VerifyRequest(std::span<const uint8_t>(message, size), policy_->keys, Now());
  std::string client = AddressText(peer);
  switch (verified.outcome) {
    case tsig::Outcome::kOk:
      break;
    case tsig::Outcome::kUnsigned:
      Log(LogLevel::kInfo, "rfc2136_refused",
          {{"peer", client}, {"msg", "not signed (UPDATE needs a TSIG key)"}});
      return answer(kRefused);
    case tsig::Outcome::kFormErr:
      return answer(kFormErr);
    case tsig::Outcome::kInternal:
      return answer(kServFail);
    default: {
      Log(LogLevel::kInfo, "rfc2136_refused",
          {{"peer", client},
           {"key", zone::TextFromWireName(verified.key_name.view())},
           {"tsig", tsig::OutcomeName(verified.outcome)}});
      Outcome outcome = answer(kNotAuth);
      if (outcome.size != 0) outcome.size = Sign(out, limit, outcome.size, verified);
      return outcome;
    }
  }
  size = tsig::StripRecord(std::span<uint8_t>(message, size), verified);
  auto parsed = update::ParseUpdateMessage(message, size);
  if (!parsed.ok() || writer_ == nullptr) {
    if (!parsed.ok()) {
      Log(LogLevel::kInfo, "rfc2136_malformed",
          {{"peer", client}, {"key", KeyText(verified)}, {"error", parsed.status()}});
    }
    Outcome outcome = answer(parsed.ok() ? kRefused : kFormErr);
    if (outcome.size != 0) outcome.size = Sign(out, limit, outcome.size, verified);
    return outcome;
  }
  // The answer is built when the outcome is durable, on the writer thread,
  // from a copy of the request (the loop's buffer is reused meanwhile).
  auto done = [request = std::vector<uint8_t>(message, message + size), verified, ticket,
               policy = policy_, deliver = deliver_](uint8_t rcode) {
    Completion completion;
    completion.ticket = ticket;
    completion.answer.resize(kMaxUpdateAnswer);
    size_t answer_size = update::BuildUpdateResponse(request.data(), request.size(), rcode,
                                                     completion.answer.data(), completion.answer.size());
    if (answer_size != 0) answer_size = Sign(completion.answer.data(), completion.answer.size(), answer_size, verified);
    completion.answer.resize(answer_size);
    deliver(std::move(completion));
  };
  writer_->Submit(std::make_unique<update::UpdateRequest>(std::move(parsed).value(), verified.key->name,
                                                          std::move(client), policy_->update,
                                                          std::move(done)));
  return {Outcome::Kind::kPending, 0};
}

DnsControl::Outcome DnsControl::HandleTransfer(uint8_t* message, size_t size,
                                               const zone::TransferRequest& request,
                                               zone::Transport transport, const sockaddr* peer,
                                               uint8_t* out, size_t capacity) {
  tsig::Verified verified =
      tsig::VerifyRequest(std::span<const uint8_t>(message, size), policy_->keys, Now());
  const char* kind = request.qtype == zone::type::kAXFR ? "AXFR" : "IXFR";
  std::string zone_name = zone::TextFromWireName(request.zone);
  std::string client = AddressText(peer);
  bool is_signed = verified.outcome == tsig::Outcome::kOk;
  size_t kind_slot = request.qtype == zone::type::kAXFR ? 0 : 1;
  auto refuse = [&](uint8_t rcode, const char* why) {
    counters_->transfers_refused[kind_slot].Add();
    Log(LogLevel::kInfo, "transfer_refused",
        {{"type", kind},
         {"zone", zone_name},
         {"peer", client},
         {"key", KeyText(verified)},
         {"msg", why}});
    size_t answer = ErrorAnswer(message, size, rcode, out, capacity);
    if (answer != 0 && (is_signed || IsTsigError(verified.outcome)))
      answer = Sign(out, capacity, answer, verified);
    return Outcome{Outcome::Kind::kAnswer, answer};
  };
  if (verified.outcome == tsig::Outcome::kFormErr || verified.outcome == tsig::Outcome::kInternal) {
    counters_->transfers_refused[kind_slot].Add();
    return {Outcome::Kind::kAnswer,
            ErrorAnswer(message, size, verified.outcome == tsig::Outcome::kFormErr ? kFormErr : kServFail,
                        out, capacity)};
  }
  if (IsTsigError(verified.outcome)) return refuse(kNotAuth, std::string(tsig::OutcomeName(verified.outcome)).c_str());
  const TransferAccess* access = policy_->FindTransfer(request.zone);
  if (access == nullptr) return refuse(kNotAuth, "not a zone served here");
  bool by_key = is_signed && std::find(access->keys.begin(), access->keys.end(), verified.key->name) !=
                                 access->keys.end();
  bool by_address = std::any_of(access->prefixes.begin(), access->prefixes.end(),
                                [&](const config::Prefix& prefix) { return prefix.Contains(peer); });
  if (!by_key && !by_address) return refuse(kRefused, "no 'transfer' entry of the zone allows it");

  zone::TransferOptions options;
  options.reserve = is_signed ? tsig::ResponseRecordSize(verified) : 0;
  options.udp_payload = udp_payload_;
  if (transport == zone::Transport::kUdp) {
    // RFC 5936 §4.2: AXFR only over TCP. IXFR over UDP gets the SOA when
    // the client is current, TC otherwise (RFC 1995 §2).
    if (request.qtype == zone::type::kAXFR) return refuse(kRefused, "AXFR over UDP");
    auto txn = store_.BeginRead();
    if (!txn.ok()) {
      counters_->transfers_refused[kind_slot].Add();
      return {Outcome::Kind::kAnswer, ErrorAnswer(message, size, kServFail, out, capacity)};
    }
    size_t limit = request.has_edns ? std::min<size_t>(capacity, udp_payload_) : 512;
    size_t answer = zone::AnswerIxfrOverUdp(*txn, request, options, out, limit);
    if (answer != 0 && is_signed) answer = Sign(out, limit, answer, verified);
    counters_->transfers_served[kind_slot].Add();
    return {Outcome::Kind::kAnswer, answer};
  }
  if (active_transfers_ >= kMaxTransfers)
    return refuse(kRefused, "too many transfers in progress on this loop; the secondary retries");
  auto stream = zone::TransferStream::Start(store_, request, options);
  if (!stream.ok()) {
    counters_->transfers_refused[kind_slot].Add();
    Log(LogLevel::kWarning, "transfer_failed",
        {{"type", kind}, {"zone", zone_name}, {"peer", client}, {"error", stream.status()}});
    uint8_t rcode = stream.status().code() == Status::Code::kNotFound ? kNotAuth : kServFail;
    size_t answer = ErrorAnswer(message, size, rcode, out, capacity);
    if (answer != 0 && is_signed) answer = Sign(out, capacity, answer, verified);
    return {Outcome::Kind::kAnswer, answer};
  }
  static constexpr const char* kFormats[] = {"full", "incremental", "up_to_date"};
  Log(LogLevel::kInfo, "transfer",
      {{"type", kind},
       {"zone", zone_name},
       {"serial", (*stream)->serial()},
       {"peer", client},
       {"key", KeyText(verified)},
       {"format", kFormats[static_cast<int>((*stream)->format())]}});
  counters_->transfers_served[kind_slot].Add();
  Outcome outcome;
  outcome.kind = Outcome::Kind::kTransfer;
  outcome.transfer = std::make_unique<TransferSession>(
      std::move(stream).value(), is_signed ? std::optional<tsig::Verified>(verified) : std::nullopt,
      policy_, &active_transfers_);
  return outcome;
}

}  // namespace updns::server
