// Accounts, hosts and update tokens in the store.
//
//   accounts       account name (lowercase)            -> AccountRecord
//   hosts          host name (lowercase, no final dot)  -> HostRecord
//   account_hosts  account name + 0x00 + host name      -> "" (index)
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

  std::string Encode() const;
  static Result<AccountRecord> Decode(std::string_view value);
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
