#include "storage/accounts.h"

#include "storage/codec.h"

namespace updns::storage {

std::string AccountRecord::Encode() const {
  Encoder e;
  e.U8(kVersion).Bytes(name).Bytes(email).Bytes(password_hash).U8(static_cast<uint8_t>(state));
  e.U32(host_limit).U64(created_at).Bytes(linked_reseller);
  return e.Take();
}

Result<AccountRecord> AccountRecord::Decode(std::string_view value) {
  Decoder d(value);
  if (d.U8() != kVersion) return Status::Corrupt("account record: unknown version");
  AccountRecord r;
  r.name = d.Bytes();
  r.email = d.Bytes();
  r.password_hash = d.Bytes();
  r.state = static_cast<State>(d.U8());
  r.host_limit = d.U32();
  r.created_at = d.U64();
  r.linked_reseller = d.Bytes();
  if (!d.ok() || !d.at_end()) return Status::Corrupt("account record: bad length");
  return r;
}

std::string HostRecord::Encode() const {
  Encoder e;
  e.U8(kVersion).Bytes(name).Bytes(account).Bytes(zone).U8(static_cast<uint8_t>(state));
  e.Bytes(ipv4).Bytes(ipv6).U64(created_at).U64(updated_at).Bytes(updated_from);
  e.Bytes(token_digest).U64(token_created_at).U8(token_used ? 1 : 0).U64(token_last_used_at);
  e.Bytes(token_last_used_from);
  e.U32(nochg_count).U64(nochg_window_start).U64(locked_until);
  return e.Take();
}

Result<HostRecord> HostRecord::Decode(std::string_view value) {
  Decoder d(value);
  if (d.U8() != kVersion) return Status::Corrupt("host record: unknown version");
  HostRecord r;
  r.name = d.Bytes();
  r.account = d.Bytes();
  r.zone = d.Bytes();
  r.state = static_cast<State>(d.U8());
  r.ipv4 = d.Bytes();
  r.ipv6 = d.Bytes();
  r.created_at = d.U64();
  r.updated_at = d.U64();
  r.updated_from = d.Bytes();
  r.token_digest = d.Bytes();
  r.token_created_at = d.U64();
  r.token_used = d.U8() != 0;
  r.token_last_used_at = d.U64();
  r.token_last_used_from = d.Bytes();
  r.nochg_count = d.U32();
  r.nochg_window_start = d.U64();
  r.locked_until = d.U64();
  if (!d.ok() || !d.at_end()) return Status::Corrupt("host record: bad length");
  if (!r.ipv4.empty() && r.ipv4.size() != 4) return Status::Corrupt("host record: bad IPv4");
  if (!r.ipv6.empty() && r.ipv6.size() != 16) return Status::Corrupt("host record: bad IPv6");
  return r;
}

std::string ResellerRecord::Encode() const {
  Encoder e;
  e.U8(kVersion).Bytes(name).Bytes(email).Bytes(password_hash).Bytes(linked_account);
  e.U64(created_at);
  return e.Take();
}

Result<ResellerRecord> ResellerRecord::Decode(std::string_view value) {
  Decoder d(value);
  if (d.U8() != kVersion) return Status::Corrupt("reseller record: unknown version");
  ResellerRecord r;
  r.name = d.Bytes();
  r.email = d.Bytes();
  r.password_hash = d.Bytes();
  r.linked_account = d.Bytes();
  r.created_at = d.U64();
  if (!d.ok() || !d.at_end()) return Status::Corrupt("reseller record: bad length");
  return r;
}

std::string SessionRecord::Encode() const {
  Encoder e;
  e.U8(kVersion).Bytes(account).U8(via_reseller ? 1 : 0).U64(created_at).U64(expires_at);
  e.Bytes(reseller);
  return e.Take();
}

Result<SessionRecord> SessionRecord::Decode(std::string_view value) {
  Decoder d(value);
  if (d.U8() != kVersion) return Status::Corrupt("session record: unknown version");
  SessionRecord r;
  r.account = d.Bytes();
  r.via_reseller = d.U8() != 0;
  r.created_at = d.U64();
  r.expires_at = d.U64();
  r.reseller = d.Bytes();
  if (!d.ok() || !d.at_end()) return Status::Corrupt("session record: bad length");
  return r;
}

std::string OneTimeTokenRecord::Encode() const {
  Encoder e;
  e.U8(kVersion).U8(static_cast<uint8_t>(purpose)).Bytes(account).Bytes(host);
  e.U64(created_at).U64(expires_at);
  return e.Take();
}

Result<OneTimeTokenRecord> OneTimeTokenRecord::Decode(std::string_view value) {
  Decoder d(value);
  if (d.U8() != kVersion) return Status::Corrupt("one-time token record: unknown version");
  OneTimeTokenRecord r;
  r.purpose = static_cast<Purpose>(d.U8());
  r.account = d.Bytes();
  r.host = d.Bytes();
  r.created_at = d.U64();
  r.expires_at = d.U64();
  if (!d.ok() || !d.at_end()) return Status::Corrupt("one-time token record: bad length");
  return r;
}

std::string MailRecord::Encode() const {
  Encoder e;
  e.U8(kVersion).Bytes(to).Bytes(subject).Bytes(body).U64(created_at).U32(attempts);
  e.U64(next_attempt_at).Bytes(last_error);
  return e.Take();
}

Result<MailRecord> MailRecord::Decode(std::string_view value) {
  Decoder d(value);
  if (d.U8() != kVersion) return Status::Corrupt("mail record: unknown version");
  MailRecord r;
  r.to = d.Bytes();
  r.subject = d.Bytes();
  r.body = d.Bytes();
  r.created_at = d.U64();
  r.attempts = d.U32();
  r.next_attempt_at = d.U64();
  r.last_error = d.Bytes();
  if (!d.ok() || !d.at_end()) return Status::Corrupt("mail record: bad length");
  return r;
}

std::string AccountHostKey(std::string_view account, std::string_view host) {
  std::string key(account);
  key.push_back('\0');
  key += host;
  return key;
}

}  // namespace updns::storage
