// Accounts, hosts and update tokens in the store.
//
//   accounts       account name (lowercase)            -> AccountRecord
//   hosts          host name (lowercase, no final dot)  -> HostRecord
//   account_hosts  account name + 0x00 + host name      -> "" (index)
//   resellers      reseller name (lowercase)            -> ResellerRecord
//   sessions       SHA-256(session token)               -> SessionRecord
//   onetime        SHA-256(token)                       -> OneTimeTokenRecord
//   outbox         u64 mail id (big-endian)             -> MailRecord
//   meta "next_mail_id" -> u64
//
// Secrets never appear here in clear: passwords as scrypt hashes, tokens as
// SHA-256 digests (update/credentials.h makes both).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace updns::storage {

enum class State : uint8_t { kActive = 0, kDisabled = 1 };

struct AccountRecord {
  static constexpr uint8_t kVersion = 1;
  std::string name;
  std::string email;
  std::string password_hash;  // update/credentials.h format; empty = cannot log in
  State state = State::kActive;
  uint32_t host_limit = 0;
  uint64_t created_at = 0;  // unix seconds
  // The reseller account this account is linked to (empty: not linked).
  // While linked, the account's own password no longer logs in.
  std::string linked_reseller;

  std::string Encode() const;
  static Result<AccountRecord> Decode(std::string_view value);
};

// A reseller account: a second kind of login, created by operators. Linked
// to at most one account, and that account to at most this reseller.
struct ResellerRecord {
  static constexpr uint8_t kVersion = 1;
  std::string name;
  std::string email;
  std::string password_hash;
  std::string linked_account;  // empty: not linked
  uint64_t created_at = 0;

  std::string Encode() const;
  static Result<ResellerRecord> Decode(std::string_view value);
};

// A login session of the JSON API, keyed by the SHA-256 of its bearer token.
struct SessionRecord {
  static constexpr uint8_t kVersion = 1;
  std::string account;
  bool via_reseller = false;  // logged in with the linked reseller's credentials
  std::string reseller;       // which reseller, so that a relink elsewhere ends it
  uint64_t created_at = 0;
  uint64_t expires_at = 0;

  std::string Encode() const;
  static Result<SessionRecord> Decode(std::string_view value);
};

// A one-time token (password reset or host move), keyed by its SHA-256.
struct OneTimeTokenRecord {
  static constexpr uint8_t kVersion = 1;
  enum class Purpose : uint8_t { kPasswordReset = 1, kHostMove = 2 };
  Purpose purpose = Purpose::kPasswordReset;
  std::string account;  // reset: whose password; move: the host's owner when issued
  std::string host;     // move: the host to move
  uint64_t created_at = 0;
  uint64_t expires_at = 0;

  std::string Encode() const;
  static Result<OneTimeTokenRecord> Decode(std::string_view value);
};

// A queued mail, keyed by a u64 id (big-endian, so the outbox drains in
// order). It leaves the outbox only after the relay accepted it.
struct MailRecord {
  static constexpr uint8_t kVersion = 1;
  std::string to;
  std::string subject;
  std::string body;  // plain text
  uint64_t created_at = 0;
  uint32_t attempts = 0;
  uint64_t next_attempt_at = 0;
  std::string last_error;

  std::string Encode() const;
  static Result<MailRecord> Decode(std::string_view value);
};

struct HostRecord {
  static constexpr uint8_t kVersion = 1;
  std::string name;     // lowercase FQDN, no final dot
  std::string account;  // owner's account name
  std::string zone;     // enclosing configured zone, lowercase, no final dot
  State state = State::kActive;
  std::string ipv4;     // 4 bytes, or empty when the host has no A record
  std::string ipv6;     // 16 bytes, or empty
  uint64_t created_at = 0;
  uint64_t updated_at = 0;       // last change of an address (0 = never)
  std::string updated_from;      // client address of that change (text)

  // The update token: only its SHA-256 digest is kept.
  std::string token_digest;      // 32 bytes, or empty when the host has none
  uint64_t token_created_at = 0;
  bool token_used = false;       // used at least once for an update
  uint64_t token_last_used_at = 0;
  std::string token_last_used_from;

  // Abuse control: `nochg` answers within the current window.
  uint32_t nochg_count = 0;
  uint64_t nochg_window_start = 0;
  uint64_t locked_until = 0;  // answers `abuse` until then

  bool has_token() const { return !token_digest.empty(); }
  std::string Encode() const;
  static Result<HostRecord> Decode(std::string_view value);
};

std::string AccountHostKey(std::string_view account, std::string_view host);

}  // namespace updns::storage
