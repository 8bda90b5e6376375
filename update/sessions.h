// Login sessions of the JSON API. A session is a random bearer token
// (update/credentials.h NewToken) that the client sends back as
// "Authorization: Bearer TOKEN"; the store keeps only its SHA-256 in the
// `sessions` table (storage/accounts.h SessionRecord) with an expiry time.
//
// Expired sessions are refused by FindSession and left in place: the caller
// deletes them lazily (DeleteSessionIfDead) or in bulk
// (PurgeExpiredSessions).
//
// Whether a session still grants access also depends on its account
// (SessionGrantsAccess): a password session dies when the account is linked,
// a reseller session when it is unlinked, both when the account is disabled
// or deleted.
//
// Thread safety: functions work inside the caller's transaction only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/accounts.h"
#include "storage/store.h"

namespace updns::update {

struct NewSession {
  std::string token;  // clear: the only time it is seen
  storage::SessionRecord record;
};

// Creates a session for `account` valid for `ttl` seconds from `now` (it is
// refused once `now` passes `expires_at` = now + ttl). `reseller` names the
// reseller account whose credentials opened it, empty for the account's own
// password; such a session dies when the account is linked elsewhere. The
// account is not
// checked here: the caller has authenticated it. IoError when the random
// generator fails, or the store's error.
Result<NewSession> CreateSession(storage::WriteTxn& txn, std::string_view account,
                                 std::string_view reseller, uint64_t now, uint64_t ttl);

struct SessionLookup {
  enum class State {
    kValid,    // usable: `session` and `account` are filled in
    kUnknown,  // malformed or unknown token, or an unreadable record
    kExpired,  // `now` is past expires_at (`session` is filled in)
    kRevoked,  // the account no longer grants it (SessionGrantsAccess)
  } state = State::kUnknown;
  storage::SessionRecord session;
  storage::AccountRecord account;
};

// The session of bearer token `token` and its account, both read in `txn`.
// Nothing is deleted here (read transactions cannot): see
// DeleteSessionIfDead.
SessionLookup FindSession(const storage::Txn& txn, std::string_view token, uint64_t now);

// Whether `session` still grants access to `account` (its record): the
// account is active, and it is linked exactly when the session was opened
// with the reseller's credentials (a password session also needs the
// account to have a password: unlinking leaves none until it is reset).
bool SessionGrantsAccess(const storage::SessionRecord& session,
                         const storage::AccountRecord& account);

// Deletes the session of `token`. NotFound when there is none.
Status DeleteSession(storage::WriteTxn& txn, std::string_view token);

// Deletes the session of `token` if FindSession, in this transaction, finds
// it expired or revoked: the lazy clean-up after a refused request. OK when
// there is nothing to delete.
Status DeleteSessionIfDead(storage::WriteTxn& txn, std::string_view token, uint64_t now);

// Deletes every session expired by `now`, at most `limit` of them, and
// returns how many. Scans the table.
Result<size_t> PurgeExpiredSessions(storage::WriteTxn& txn, uint64_t now, size_t limit = SIZE_MAX);

}  // namespace updns::update
