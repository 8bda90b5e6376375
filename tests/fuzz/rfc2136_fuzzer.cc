// RFC 2136 UPDATE (update/rfc2136.h): the message parser, the answer
// builder, and an accepted message applied by UpdateRequest as the writer
// would, unsigned, with a key allowed the whole zone and with a key limited
// to some names and types, each in a transaction that is then aborted, so
// that every input meets the same zone.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_targets.h"
#include "update/rfc2136.h"
#include "update/writer.h"

namespace updns::fuzz {
namespace {

const char* const kZone = R"($ORIGIN test.example.
$TTL 3600
@       IN SOA  ns1 hostmaster 2024010101 3600 900 1209600 300
        IN NS   ns1
        IN NS   ns2
        IN MX   10 mail
ns1     IN A    192.0.2.1
ns2     IN A    192.0.2.2
mail    IN A    192.0.2.25
host    IN A    192.0.2.10
host    IN AAAA 2001:db8::10
host    IN TXT  "text"
alias   IN CNAME host
*.wild  IN A    192.0.2.20
a.b.c   IN A    192.0.2.11
home.dyn IN A   198.51.100.7
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.53
)";

const std::string kApex("\4test\7example\0", 14);
const std::string kFullKey("\12update-key\0", 12);
const std::string kLimitedKey("\7dyn-key\0", 9);

struct State {
  std::unique_ptr<storage::Store> store;
  update::UpdatePolicyPtr policy;
};

State& TheState() {
  static State state = [] {
    SetLogLevel(LogLevel::kError);  // every refusal is a warning: one per input
    State s;
    std::string dir = ScratchDir("rfc2136");
    s.store = OpenStore(dir + "/store", uint64_t{64} << 20);
    ImportZone(*s.store, dir, "test.example", kZone);

    auto policy = std::make_shared<update::UpdatePolicy>();
    (*policy)[kApex].push_back(update::UpdateRule{kFullKey, {}, {}});
    // "*.dyn.test.example" and "dyn.test.example", A and AAAA only.
    (*policy)[kApex].push_back(update::UpdateRule{
        kLimitedKey,
        {std::string("\1*\3dyn\4test\7example\0", 20), std::string("\3dyn\4test\7example\0", 18)},
        {1, 28}});
    s.policy = std::move(policy);
    return s;
  }();
  return state;
}

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

void Apply(const update::UpdateMessage& message, const std::string& key, State& state) {
  auto txn = state.store->BeginWrite();
  Check(txn.ok(), "a write transaction on the rfc2136 store");
  // As the writer does: the request in its own nested transaction.
  auto nested = txn->BeginNested();
  Check(nested.ok(), "a nested transaction");
  int rcode = -1;
  update::UpdateRequest request(message, key, "192.0.2.99", state.policy,
                                [&rcode](uint8_t r) { rcode = r; });
  update::WriteContext context(1767225600);
  Status status = request.Apply(*nested, context);
  request.Done(status);
  Check(rcode >= 0 && rcode <= update::rcode::kNotZone, "an UPDATE gets an RCODE of RFC 2136");
  if (key.empty()) Check(context.changed_zones().empty(), "nothing changes without a key");
  // Both transactions abort here: the next input meets the same zone.
}

}  // namespace

int FuzzRfc2136(const uint8_t* data, size_t size) {
  uint8_t out[512];
  for (uint8_t rcode :
       {update::rcode::kNoError, update::rcode::kFormErr, update::rcode::kNotZone}) {
    size_t n = update::BuildUpdateResponse(data, size, rcode, out, sizeof out);
    if (n == 0) continue;
    Check(n >= 12 && n <= sizeof out, "an UPDATE answer is at least a header");
    Check(Load16(out) == Load16(data), "an UPDATE answer has the request's ID");
    Check(out[2] & 0x80, "an UPDATE answer has QR set");
  }

  auto message = update::ParseUpdateMessage(data, size);
  if (!message.ok()) {
    Check(!message.status().message().empty(), "a refused UPDATE says why");
    return 0;
  }
  Check(message->zone.size() <= 255, "ZNAME is a name");
  State& state = TheState();
  for (const std::string* key : {&kFullKey, &kLimitedKey}) Apply(*message, *key, state);
  Apply(*message, std::string(), state);
  return 0;
}

}  // namespace updns::fuzz
