// The dyndns2 protocol (the one routers, ddclient and inadyn speak), apart
// from HTTP: parsing a request's parameters and credentials, authenticating
// them against the store, and the writer request that applies the update.
// server/ adapts it to HTTP.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/store.h"
#include "update/writer.h"

namespace updns::update {

// One result line per host, in request order.
enum class DyndnsCode { kGood, kNochg, kBadAuth, kNoHost, kNotYours, kNotFqdn, kNumHost, kAbuse,
                        kFatal, kDnsErr, k911 };
std::string_view DyndnsCodeText(DyndnsCode code);

struct DyndnsPolicy {
  size_t max_hosts = 20;
  uint32_t nochg_limit = 5;       // nochg answers allowed per window
  uint64_t nochg_window = 600;    // seconds
  uint64_t abuse_lock = 3600;     // seconds a host answers `abuse`
};

struct DyndnsRequest {
  std::vector<std::string> hostnames;  // as sent, lowercased, final dot removed
  std::string ipv4;                    // 4 raw bytes, or empty: leave A alone
  std::string ipv6;                    // 16 raw bytes, or empty: leave AAAA alone
  std::string user, password;          // empty user = no credentials given
  std::string source;                  // the client's address as text
};

// Builds the request from the URL query (or form body) and the
// Authorization header (nullptr if absent). Basic auth wins over user/pass
// parameters. Without myip/myipv6 the source address is used; a private
// myip (RFC 1918, ULA, loopback, link-local) sent from a public source is
// replaced by the source. Errors (bad address, bad encoding) are Invalid
// with a message for the client.
Result<DyndnsRequest> ParseDyndnsRequest(std::string_view query, const std::string* authorization,
                                         const sockaddr_storage& source);

// Who the credentials belong to.
struct DyndnsIdentity {
  enum class Kind { kNone, kAccount, kHost } kind = Kind::kNone;
  std::string name;          // account name or host name
  std::string token_digest;  // kHost: the digest that matched
};

// Token authentication, cheap enough for an event loop: nullopt when `user`
// does not name a host (then it is an account: use Authenticate, off the
// loop), else the identity, kNone when the token or its account fails.
std::optional<DyndnsIdentity> AuthenticateHostToken(const storage::Txn& txn, std::string_view user,
                                                    std::string_view token);
// Checks the credentials, host token or account password (scrypt, slow).
// kNone when they fail: wrong password, unknown name, disabled or linked
// account, wrong token.
DyndnsIdentity Authenticate(const storage::Store& store, std::string_view user,
                            std::string_view password);

struct DyndnsHostResult {
  DyndnsCode code;
  std::string addresses;  // "192.0.2.1", "2001:db8::1" or both, comma separated
};

// Applies one dyndns2 request in the writer. `done` runs on the writer
// thread after the commit with one result per host name (all `911` when the
// store failed).
class DyndnsUpdate : public WriteRequest {
 public:
  using Callback = std::function<void(std::vector<DyndnsHostResult>)>;
  // `zone_ttls`: host TTL per configured zone (lowercase text name).
  DyndnsUpdate(DyndnsRequest request, DyndnsIdentity identity, DyndnsPolicy policy,
               std::function<uint32_t(std::string_view zone)> host_ttl, Callback done);
  Status Apply(storage::WriteTxn& txn, WriteContext& context) override;
  void Done(const Status& status) override;

 private:
  DyndnsHostResult ApplyHost(storage::WriteTxn& txn, WriteContext& context,
                             const std::string& hostname);

  DyndnsRequest request_;
  DyndnsIdentity identity_;
  DyndnsPolicy policy_;
  std::function<uint32_t(std::string_view)> host_ttl_;
  Callback done_;
  std::vector<DyndnsHostResult> results_;
};

// The response body: one line per host ("good 192.0.2.1"), each ending "\n".
std::string FormatDyndnsResults(const std::vector<DyndnsHostResult>& results);

}  // namespace updns::update
