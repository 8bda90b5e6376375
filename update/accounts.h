// Accounts, hosts and update tokens: the rules, applied inside a caller's
// transaction. updnsctl calls these on its own WriteTxn; the daemon's writer
// calls them from a WriteRequest's Apply. Records: storage/accounts.h.
//
// Names: account names are [a-z0-9][a-z0-9._-]{0,62} (input is lowercased).
// Host names are FQDNs of letter-digit-hyphen labels, taken in any case with
// or without the final dot, and stored lowercase without it.
//
// Zone changes: operations that change DNS data insert the lowercased wire
// apex of each changed zone into `changed_zones`. The caller bumps those
// serials once before committing (zone::FinishZoneChanges, or the writer
// does it for its group). On error, the transaction may hold partial writes:
// abort it (or the nested transaction) rather than commit.
//
// Errors name the account or host at fault: NotFound (no such account/host),
// Exists (duplicate), Invalid (a rule refused the request), or the store's
// own error.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/accounts.h"
#include "storage/store.h"

namespace updns::update {

// A configured zone as the host rules need it (built from config::ZoneConfig).
struct HostZone {
  std::string name;        // lowercase, no final dot, e.g. "dyn.example"
  uint32_t host_ttl = 60;  // TTL of the hosts' A/AAAA records
};

// Untrusted text quoted for a message: at most 80 bytes shown, control
// characters replaced, so that a name sent to the API cannot forge lines in
// a log or a reply.
std::string QuoteForMessage(std::string_view text);

// Invalid, naming the address, unless `email` looks like local@domain.tld
// (one '@', no spaces or specials in the local part, at most 254 bytes).
Status CheckEmail(std::string_view email);

// The normalized form of a name, or Invalid saying what is wrong with it.
Result<std::string> NormalizeAccountName(std::string_view name);
Result<std::string> NormalizeHostName(std::string_view fqdn);

// --- Accounts ---------------------------------------------------------------

// Creates an active account. The e-mail must look like local@domain.tld
// (no spaces, at most 254 bytes). The password is stored as an scrypt hash
// (update/credentials.h): empty or longer than 1024 bytes is refused.
// Exists when the name is taken.
Status CreateAccount(storage::WriteTxn& txn, std::string_view name, std::string_view email,
                     std::string_view password, uint32_t host_limit, uint64_t now);

Result<storage::AccountRecord> GetAccount(const storage::Txn& txn, std::string_view name);
// Every account, sorted by name.
Result<std::vector<storage::AccountRecord>> ListAccounts(const storage::Txn& txn);
// Number of hosts the account owns (0 for an unknown account).
Result<size_t> CountHosts(const storage::Txn& txn, std::string_view account);

// Enables or disables an account. A disabled account cannot log in or gain
// hosts; its hosts stay in DNS. Setting the current state again is OK.
Status SetAccountState(storage::WriteTxn& txn, std::string_view name, storage::State state);

// Deletes the account and every host it owns, with their DNS nodes.
Status DeleteAccount(storage::WriteTxn& txn, std::string_view name,
                     std::set<std::string>& changed_zones);

// --- Hosts ------------------------------------------------------------------

// Adds host `fqdn` to `account` and creates its DNS node, empty: the name
// answers NODATA until its first update. The name must lie strictly below
// one of `zones` (the closest enclosing one is used; its apex is refused),
// that zone must be in the store, the name must not be taken by another host
// nor by the zone's own data (records at the name, or a delegation above
// it), and the account must exist, be active and be below its host limit.
Status AddHost(storage::WriteTxn& txn, std::string_view fqdn, std::string_view account,
               const std::vector<HostZone>& zones, uint64_t now,
               std::set<std::string>& changed_zones);

Result<storage::HostRecord> GetHost(const storage::Txn& txn, std::string_view fqdn);
// Hosts sorted by name: all of them, or those of one account (NotFound when
// that account does not exist).
Result<std::vector<storage::HostRecord>> ListHosts(
    const storage::Txn& txn, std::optional<std::string_view> account = std::nullopt);

// Enables or disables a host. A disabled host refuses updates (dyndns2
// `fatal`) and keeps its current records in DNS.
Status SetHostState(storage::WriteTxn& txn, std::string_view fqdn, storage::State state);

// Deletes the host, its index entry, its token and its A/AAAA (the node goes
// when nothing else is left in it).
Status DeleteHost(storage::WriteTxn& txn, std::string_view fqdn,
                  std::set<std::string>& changed_zones);

// --- Update tokens ------------------------------------------------------------

// Gives the host a new token and returns it in clear: the only time it is
// seen. Any previous token stops working in the same transaction; the new one
// starts unused. No other host is touched.
Result<std::string> CreateToken(storage::WriteTxn& txn, std::string_view fqdn, uint64_t now);

// Removes the host's token. NotFound when the host has none.
Status RevokeToken(storage::WriteTxn& txn, std::string_view fqdn);

struct HostToken {
  std::string hostname;  // as stored: lowercase, no final dot
  std::string token;     // clear
};

// Creates a token for every active host of the account that has none, all in
// `txn`, and returns them sorted by host name (empty when none was missing).
Result<std::vector<HostToken>> CreateMissingTokens(storage::WriteTxn& txn, std::string_view account,
                                                   uint64_t now);

inline constexpr std::string_view kTokensCsvFileName = "spdyn_update_token.csv";

// RFC 4180 CSV: "hostname,token" then one row per pair, CRLF line ends;
// fields with a comma, quote, CR or LF are quoted, quotes doubled.
std::string TokensCsv(const std::vector<HostToken>& tokens);

}  // namespace updns::update
