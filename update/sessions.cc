#include "update/sessions.h"

#include <vector>

#include "update/credentials.h"

namespace updns::update {
namespace {

using storage::SessionRecord;
using storage::Table;

// A token of NewToken's shape; anything else cannot name a session, and
// refusing it early keeps odd bytes out of the digest and the log.
bool IsTokenShaped(std::string_view token) {
  if (token.size() != kTokenLength) return false;
  for (char c : token) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

// Deletes every key for which `match` holds, at most `limit`. Keys are
// collected first: deleting under a moving cursor is easy to get wrong.
template <typename Match>
Result<size_t> DeleteWhere(storage::WriteTxn& txn, Match match, size_t limit) {
  std::vector<std::string> doomed;
  {
    auto cursor = txn.OpenCursor(Table::kSessions);
    if (!cursor.ok()) return cursor.status();
    for (bool more = cursor->First(); more && doomed.size() < limit; more = cursor->Next()) {
      auto session = SessionRecord::Decode(cursor->value());
      // An unreadable record can never be used: clean it up as well.
      if (!session.ok() || match(*session)) doomed.emplace_back(cursor->key());
    }
  }
  for (const std::string& key : doomed) {
    if (Status s = txn.Delete(Table::kSessions, key); !s.ok()) return s;
  }
  return doomed.size();
}

}  // namespace

Result<NewSession> CreateSession(storage::WriteTxn& txn, std::string_view account,
                                 std::string_view reseller, uint64_t now, uint64_t ttl) {
  auto token = NewToken();
  if (!token.ok()) return token.status();
  NewSession session;
  session.token = std::move(token).value();
  session.record.account = std::string(account);
  session.record.via_reseller = !reseller.empty();
  session.record.reseller = std::string(reseller);
  session.record.created_at = now;
  session.record.expires_at = now + ttl;
  if (Status s = txn.Put(Table::kSessions, TokenDigest(session.token), session.record.Encode());
      !s.ok())
    return s.WithContext("session of account '" + std::string(account) + "': ");
  return session;
}

SessionLookup FindSession(const storage::Txn& txn, std::string_view token, uint64_t now) {
  using State = SessionLookup::State;
  SessionLookup lookup;
  if (!IsTokenShaped(token)) return lookup;
  auto value = txn.Get(Table::kSessions, TokenDigest(token));
  if (!value) return lookup;
  auto session = SessionRecord::Decode(*value);
  if (!session.ok()) return lookup;
  lookup.session = std::move(session).value();
  if (now > lookup.session.expires_at) {
    lookup.state = State::kExpired;
    return lookup;
  }
  lookup.state = State::kRevoked;
  auto account_value = txn.Get(Table::kAccounts, lookup.session.account);
  if (!account_value) return lookup;
  auto account = storage::AccountRecord::Decode(*account_value);
  if (!account.ok() || !SessionGrantsAccess(lookup.session, *account)) return lookup;
  lookup.account = std::move(account).value();
  lookup.state = State::kValid;
  return lookup;
}

bool SessionGrantsAccess(const SessionRecord& session, const storage::AccountRecord& account) {
  if (account.name != session.account || account.state != storage::State::kActive) return false;
  // A reseller session lives only while that same reseller stays linked.
  if (session.via_reseller) return account.linked_reseller == session.reseller;
  return account.linked_reseller.empty() && !account.password_hash.empty();
}

Status DeleteSession(storage::WriteTxn& txn, std::string_view token) {
  if (!IsTokenShaped(token)) return Status::NotFound("no such session");
  Status s = txn.Delete(Table::kSessions, TokenDigest(token));
  if (s.IsNotFound()) return Status::NotFound("no such session");
  return s;
}

Status DeleteSessionIfDead(storage::WriteTxn& txn, std::string_view token, uint64_t now) {
  SessionLookup lookup = FindSession(txn, token, now);
  if (lookup.state != SessionLookup::State::kExpired &&
      lookup.state != SessionLookup::State::kRevoked)
    return Status::Ok();
  Status s = txn.Delete(Table::kSessions, TokenDigest(token));
  return s.IsNotFound() ? Status::Ok() : s;
}

Result<size_t> PurgeExpiredSessions(storage::WriteTxn& txn, uint64_t now, size_t limit) {
  return DeleteWhere(
      txn, [&](const SessionRecord& session) { return now > session.expires_at; }, limit);
}

}  // namespace updns::update
