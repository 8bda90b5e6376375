// The DNS messages the query path hands off (zone::Responder::kHandOff) as
// a query loop handles them: server::DnsControl with TSIG keys, transfer
// access rules and an update policy, over UDP and TCP, from an address the
// transfer rules allow or not. TSIG-signed queries, AXFR and IXFR (the
// stream drained to its end), and UPDATE up to the point where it would be
// queued for the writer (there is none: the rfc2136 target applies updates).
//
// The first input byte chooses how the rest is sent:
//   bit 0     TCP (else UDP)
//   bits 1-2  signed now with: 0 nothing, 1 update-key, 2 xfr-key, 3 a key
//             the server does not know (the signature is made here, at the
//             current time, so that valid ones exist)
//   bit 3     from 127.0.0.1, which may transfer (else 192.0.2.1)
//   bit 4     from ::1 (overrides bit 3)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/log.h"
#include "config/config.h"
#include "server/dns_control.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tsig/tsig.h"
#include "update/rfc2136.h"
#include "update/writer.h"
#include "zone/responder.h"

// After every header that includes the C++ library: ldns defines `bool`.
#include <ldns/ldns.h>

namespace updns::fuzz {
namespace {

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";

const char* const kZone = R"($ORIGIN test.example.
$TTL 3600
@       IN SOA  ns1 hostmaster 2024010101 3600 900 1209600 300
        IN NS   ns1
        IN MX   10 mail
ns1     IN A    192.0.2.1
mail    IN A    192.0.2.25
host    IN A    192.0.2.10
*.wild  IN A    192.0.2.20
alias   IN CNAME host
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.53
big     IN TXT  "big-0-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvw"
big     IN TXT  "big-1-bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwxyz0123456789bcdefghijklmnopqrstuvwx"
)";

struct State {
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<zone::Responder> responder;
  std::unique_ptr<server::DnsControl> control;
  std::vector<tsig::Key> keys;  // update-key, xfr-key, unknown-key
};

config::Config MakeConfig() {
  config::Config c;
  for (const char* name : {"update-key", "xfr-key"}) {
    config::KeyConfig key;
    key.name = name;
    key.algorithm = name[0] == 'x' ? "hmac-sha1" : "hmac-sha256";
    key.secret = std::string(kSecret);
    c.keys.push_back(key);
  }
  config::ZoneConfig zone;
  zone.name = "test.example";
  zone.transfer_keys = {"xfr-key"};
  auto loopback4 = config::ParsePrefix("127.0.0.0/8");
  auto loopback6 = config::ParsePrefix("::1");
  Check(loopback4.ok() && loopback6.ok(), "transfer prefixes parse");
  zone.transfer_prefixes = {*loopback4, *loopback6};
  config::UpdateRuleConfig rule;
  rule.key = "update-key";
  zone.update.push_back(rule);
  c.zones.push_back(zone);
  return c;
}

// Two changes through the real writer, so that IXFR has a journal to read.
void MakeHistory(storage::Store& store, const update::UpdatePolicyPtr& policy) {
  update::Writer writer(store);
  writer.Start();
  for (uint8_t last : {77, 78}) {
    update::UpdateMessage message;
    message.zone = std::string("\4test\7example\0", 14);
    message.zone_class = 1;
    update::UpdateRR rr;
    rr.owner = std::string("\3new\4test\7example\0", 18);
    rr.type = 1;
    rr.rclass = 1;
    rr.ttl = 60;
    rr.rdata = std::string("\xc0\x00\x02", 3) + static_cast<char>(last);
    message.updates.push_back(rr);
    writer.Submit(std::make_unique<update::UpdateRequest>(std::move(message),
                                                          std::string("\12update-key\0", 12),
                                                          "127.0.0.1", policy, [](uint8_t) {}));
  }
  writer.Stop();
}

State& TheState() {
  static State state = [] {
    SetLogLevel(LogLevel::kError);  // refusals are logged at info, once per input
    State s;
    std::string dir = ScratchDir("dns_control");
    s.store = OpenStore(dir + "/store", uint64_t{64} << 20);
    ImportZone(*s.store, dir, "test.example", kZone);

    auto policy = server::MakeDnsPolicy(MakeConfig());
    Check(policy.ok(), "the fuzz DNS policy builds");
    MakeHistory(*s.store, (*policy)->update);

    zone::ResponderOptions responder_options;
    responder_options.zones = {std::string("\4test\7example\0", 14)};
    auto responder = zone::Responder::Create(*s.store, responder_options);
    Check(responder.ok(), "a responder over the dns_control store");
    s.responder = std::move(responder).value();
    s.control = std::make_unique<server::DnsControl>(*s.store, *policy, nullptr, 1232,
                                                     [](server::DnsControl::Completion) {});
    for (const char* name : {"update-key.", "xfr-key.", "unknown-key."}) {
      auto key = tsig::MakeKey(name, name[0] == 'x' ? "hmac-sha1" : "hmac-sha256",
                               "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
      Check(key.ok(), "the fuzz signing keys");
      s.keys.push_back(std::move(key).value());
    }
    return s;
  }();
  return state;
}

struct PktFree {
  void operator()(ldns_pkt* p) const noexcept { ldns_pkt_free(p); }
};

void CheckMessage(const uint8_t* message, size_t size, size_t capacity) {
  Check(size <= capacity, "an answer fits its buffer");
  if (size == 0) return;
  ldns_pkt* raw = nullptr;
  ldns_status status = ldns_wire2pkt(&raw, message, size);
  std::unique_ptr<ldns_pkt, PktFree> pkt(raw);
  if (status != LDNS_STATUS_OK) std::fprintf(stderr, "ldns: %s\n", ldns_get_errorstr_by_id(status));
  Check(status == LDNS_STATUS_OK, "ldns parses every answer of the control path");
  Check(message[2] & 0x80, "an answer has QR set");
}

sockaddr_storage Peer(uint8_t flags) {
  return Address(flags & 16 ? "::1" : flags & 8 ? "127.0.0.1" : "192.0.2.1");
}

}  // namespace

int FuzzDnsControl(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  State& state = TheState();
  const uint8_t flags = data[0];
  const zone::Transport transport = flags & 1 ? zone::Transport::kTcp : zone::Transport::kUdp;
  // Room for a TSIG RR after the message, whichever key signs it.
  size_t room = 0;
  for (const tsig::Key& key : state.keys) room = std::max(room, tsig::RecordSize(key));
  std::vector<uint8_t> message(size - 1 + room);
  std::memcpy(message.data(), data + 1, size - 1);
  size_t message_size = size - 1;
  if (int signer = (flags >> 1) & 3; signer != 0) {
    auto signed_message = tsig::SignRequest(message, message_size, state.keys[signer - 1],
                                            static_cast<uint64_t>(std::time(nullptr)));
    if (signed_message.ok()) message_size = signed_message->size;
  }
  sockaddr_storage peer = Peer(flags);

  static uint8_t out[65536];
  const size_t capacity = transport == zone::Transport::kTcp ? 65535 : 4096;
  Check(state.responder->BeginBatch().ok(), "a read snapshot of the dns_control store");
  size_t n = state.responder->Respond(message.data(), message_size, transport, out, capacity);
  if (n == zone::Responder::kHandOff) {
    auto outcome = state.control->Handle(message.data(), message_size, transport,
                                         reinterpret_cast<const sockaddr*>(&peer), *state.responder,
                                         out, capacity, 1);
    using Kind = server::DnsControl::Outcome::Kind;
    Check(outcome.kind != Kind::kPending, "no UPDATE is queued without a writer");
    if (outcome.kind == Kind::kAnswer) CheckMessage(out, outcome.size, capacity);
    if (outcome.kind == Kind::kTransfer) {
      Check(transport == zone::Transport::kTcp, "transfers stream over TCP only");
      Check(outcome.transfer != nullptr, "a transfer has a session");
      int messages = 0;
      while (size_t m = outcome.transfer->Next(out, 65535)) {
        CheckMessage(out, m, 65535);
        Check(++messages < 10000, "a transfer of a small zone ends");
      }
      Check(messages > 0, "a transfer sends at least one message");
    }
  }
  state.responder->EndBatch();
  return 0;
}

}  // namespace updns::fuzz
