// Reseller accounts, the account <-> reseller link, password resets and
// host moves: the rules, applied inside a caller's write transaction (the
// daemon's writer for the API, updnsctl's own transaction for operators).
// Records: storage/accounts.h. Every function's checks and writes happen in
// that one transaction, so two concurrent link attempts cannot both succeed:
// LMDB serializes write transactions, and the second sees the first's link.
//
// Names follow update/accounts.h: reseller names obey the account name rules
// (and are unique among resellers; an account may share a reseller's name).
//
// Sessions: a link or an unlink changes who may act for the account, so
// LinkAccount ends the account's own-password sessions and UnlinkAccount
// ends all of its sessions (including those opened via the reseller).
//
// Errors: NotFound (no such account, reseller or host), Invalid (a rule
// refused the request; the message says which), Exists (duplicate reseller),
// or the store's own error. On error the transaction may hold partial
// writes: abort it rather than commit. A LinkOutcome refusal is not an error
// and writes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/accounts.h"
#include "storage/store.h"

namespace updns::update {

// --- Reseller accounts (operators) -----------------------------------------

// Creates an unlinked reseller account. E-mail and password rules as for
// CreateAccount. Exists when a reseller of that name exists.
Status CreateReseller(storage::WriteTxn& txn, std::string_view name, std::string_view email,
                      std::string_view password, uint64_t now);
Result<storage::ResellerRecord> GetReseller(const storage::Txn& txn, std::string_view name);
// Every reseller, sorted by name.
Result<std::vector<storage::ResellerRecord>> ListResellers(const storage::Txn& txn);
// Refused (Invalid) while the reseller is linked: unlink first.
Status DeleteReseller(storage::WriteTxn& txn, std::string_view name);

// --- Link ------------------------------------------------------------------

// LinkRefusal::rule values, stable machine codes for the API, checked in
// this order (the first that fails is reported).
inline constexpr std::string_view kRuleAccountDisabled = "account_disabled";
inline constexpr std::string_view kRuleAccountLinked = "account_linked";    // to any reseller
inline constexpr std::string_view kRuleResellerLinked = "reseller_linked";  // to any account
// The account has no active host: the token rule would hold vacuously and
// prove nothing, so the link is refused until a host exists and is updated.
inline constexpr std::string_view kRuleNoActiveHosts = "no_active_hosts";
// Some active host has no update token (hosts_without_token lists them;
// tokens_unused is filled too, so one answer names every blocking host).
inline constexpr std::string_view kRuleHostsWithoutToken = "hosts_without_token";
// Every active host has a token, but some were never used (tokens_unused).
inline constexpr std::string_view kRuleTokensUnused = "tokens_unused";

// Why a link was refused.
struct LinkRefusal {
  std::string rule;     // one of the kRule* codes above
  std::string message;  // a sentence for people
  // Filled for the two host rules, sorted by name; disabled hosts never block.
  std::vector<std::string> hosts_without_token;  // active hosts with no token
  std::vector<std::string> tokens_unused;        // active hosts whose token was never used
};

struct LinkOutcome {
  bool linked = false;
  LinkRefusal refusal;  // when !linked
};

// Links `account` to `reseller` when: the account is active and not linked;
// the reseller is not linked; the account has at least one active host, and
// every active host has an update token that has been used at least once.
// On success sets account.linked_reseller and reseller.linked_account and
// ends the account's own-password sessions. On refusal nothing is written.
// NotFound for an unknown account or reseller, Invalid for a malformed name.
// (Credentials are checked by the caller before.)
Result<LinkOutcome> LinkAccount(storage::WriteTxn& txn, std::string_view account,
                                std::string_view reseller, uint64_t now);

struct UnlinkOptions {
  std::string reset_url;            // the reset link is reset_url + token; required
  uint64_t reset_ttl = 24 * 3600;   // seconds the reset link stays valid; > 0
  std::string from_name = "updns";  // for the mail text
};

// Removes both sides of the link, clears the account's password (the old
// one stops working; only the reset link sets a new one), ends the
// account's sessions, stores a one-time kPasswordReset token expiring at
// now + reset_ttl and queues a mail to the account's e-mail with
// reset_url + token and the expiry, all in `txn`. NotFound for an unknown
// account; Invalid when it is not linked or reset_url is empty.
Status UnlinkAccount(storage::WriteTxn& txn, std::string_view account, const UnlinkOptions& options,
                     uint64_t now);

// Sets a new password with a reset token; the token and every other reset
// token of the account then die. Invalid for an unknown, used or expired
// token (the message never names the account) and for a password that
// HashPassword refuses (the token then stays valid once the txn aborts).
Status ResetPassword(storage::WriteTxn& txn, std::string_view token, std::string_view password,
                     uint64_t now);
// The same with the new password already hashed (update/credentials.h
// HashPassword), so that the daemon hashes before its writer, not inside it.
Status ResetPasswordHash(storage::WriteTxn& txn, std::string_view token,
                         std::string password_hash, uint64_t now);

// --- Host moves ------------------------------------------------------------

// Issues a one-time move token for `host`, owned by `account`, valid for
// `ttl` seconds. Returned in clear, the only time it is seen; an earlier
// move token of the host stops working. NotFound when the account or host
// does not exist or the host is not the account's; Invalid for ttl 0.
Result<std::string> CreateMoveToken(storage::WriteTxn& txn, std::string_view account,
                                    std::string_view host, uint64_t now, uint64_t ttl = 24 * 3600);

// Moves the host named by the token to `target_account` if the token is
// valid, unused and unexpired, the host still belongs to the account that
// issued it, and the target is active, not that account, and below its
// host limit. The token then dies. The host's update token and DNS data stay
// as they are. Returns the host name. Invalid for a bad token or a broken
// rule, NotFound for an unknown target account.
Result<std::string> MoveHost(storage::WriteTxn& txn, std::string_view token,
                             std::string_view target_account, uint64_t now);

}  // namespace updns::update
