#include "update/links.h"

#include <ctime>
#include <utility>

#include "update/accounts.h"
#include "update/credentials.h"
#include "update/outbox.h"

namespace updns::update {
namespace {

using storage::AccountRecord;
using storage::HostRecord;
using storage::OneTimeTokenRecord;
using storage::ResellerRecord;
using storage::SessionRecord;
using storage::State;
using storage::Table;

// A one-time token longer than this is not ours; don't hash megabytes.
constexpr size_t kMaxTokenInput = 256;

std::string AccountLabel(std::string_view name) { return "account " + QuoteForMessage(name); }
std::string ResellerLabel(std::string_view name) { return "reseller " + QuoteForMessage(name); }
std::string HostLabel(std::string_view name) { return "host " + QuoteForMessage(name); }

// Reseller names follow the account name rules; the messages say "reseller".
Result<std::string> NormalizeResellerName(std::string_view name) {
  auto normalized = NormalizeAccountName(name);
  if (normalized.ok()) return normalized;
  std::string message(normalized.status().message());
  for (std::string_view prefix : {"the account name", "account name"}) {
    if (message.rfind(prefix, 0) == 0) {
      size_t word = prefix.find("account");
      message.replace(word, 7, "reseller");
      break;
    }
  }
  return Status::Invalid(std::move(message));
}

std::string FormatUtc(uint64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
  return text;
}

std::string FormatDuration(uint64_t seconds) {
  if (seconds % 3600 == 0) {
    uint64_t hours = seconds / 3600;
    return std::to_string(hours) + (hours == 1 ? " hour" : " hours");
  }
  uint64_t minutes = (seconds + 59) / 60;
  return std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
}

Status PutAccount(storage::WriteTxn& txn, const AccountRecord& account) {
  return txn.Put(Table::kAccounts, account.name, account.Encode())
      .WithContext(AccountLabel(account.name) + ": ");
}

Status PutReseller(storage::WriteTxn& txn, const ResellerRecord& reseller) {
  return txn.Put(Table::kResellers, reseller.name, reseller.Encode())
      .WithContext(ResellerLabel(reseller.name) + ": ");
}

// Deletes the sessions of `account` that `match` selects. A full scan: the
// sessions table is keyed by token digest, and links change rarely.
template <typename Match>
Status EndSessions(storage::WriteTxn& txn, const std::string& account, Match match) {
  std::vector<std::string> doomed;
  {
    auto cursor = txn.OpenCursor(Table::kSessions);
    if (!cursor.ok()) return cursor.status();
    for (bool more = cursor->First(); more; more = cursor->Next()) {
      auto session = SessionRecord::Decode(cursor->value());
      if (session.ok() && session->account == account && match(*session))
        doomed.emplace_back(cursor->key());
    }
  }
  for (const std::string& key : doomed) {
    if (Status s = txn.Delete(Table::kSessions, key); !s.ok())
      return s.WithContext(AccountLabel(account) + ": ");
  }
  return Status::Ok();
}

// Deletes the one-time tokens that `match` selects.
template <typename Match>
Status DeleteOneTimeTokens(storage::WriteTxn& txn, Match match) {
  auto cursor = txn.OpenCursor(Table::kOneTime);
  if (!cursor.ok()) return cursor.status();
  std::vector<std::string> doomed;
  for (bool more = cursor->First(); more; more = cursor->Next()) {
    auto record = OneTimeTokenRecord::Decode(cursor->value());
    if (record.ok() && match(*record)) doomed.emplace_back(cursor->key());
  }
  for (const std::string& key : doomed) {
    if (Status s = txn.Delete(Table::kOneTime, key); !s.ok()) return s;
  }
  return Status::Ok();
}

// Stores a one-time token record and returns the clear token.
Result<std::string> PutOneTimeToken(storage::WriteTxn& txn, const OneTimeTokenRecord& record) {
  auto token = NewToken();
  if (!token.ok()) return token.status();
  if (Status s = txn.Put(Table::kOneTime, TokenDigest(*token), record.Encode()); !s.ok()) return s;
  return token;
}

// The record of a one-time token of `purpose`, checked for expiry. `what`
// names the kind of link in messages; none of them names an account.
Result<OneTimeTokenRecord> FindOneTimeToken(const storage::Txn& txn, std::string_view token,
                                            OneTimeTokenRecord::Purpose purpose,
                                            std::string_view what, uint64_t now) {
  std::string unknown = "this " + std::string(what) +
                        " is not valid: it is unknown or was used already; ask for a new one";
  if (token.empty() || token.size() > kMaxTokenInput) return Status::Invalid(unknown);
  auto value = txn.Get(Table::kOneTime, TokenDigest(token));
  if (!value) return Status::Invalid(unknown);
  auto record = OneTimeTokenRecord::Decode(*value);
  if (!record.ok()) return record.status().WithContext(std::string(what) + ": ");
  if (record->purpose != purpose) return Status::Invalid(unknown);
  if (now >= record->expires_at) {
    return Status::Invalid("this " + std::string(what) + " expired at " +
                           FormatUtc(record->expires_at) + "; ask for a new one");
  }
  return record;
}

std::string JoinNames(const std::vector<std::string>& names) {
  constexpr size_t kMaxListed = 10;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListed; ++i)
    out += (i == 0 ? "" : ", ") + names[i];
  if (names.size() > kMaxListed)
    out += " and " + std::to_string(names.size() - kMaxListed) + " more";
  return out;
}

LinkOutcome Refused(std::string_view rule, std::string message) {
  LinkOutcome outcome;
  outcome.refusal.rule = std::string(rule);
  outcome.refusal.message = std::move(message);
  return outcome;
}

}  // namespace

// --- Reseller accounts ----------------------------------------------------------

Status CreateReseller(storage::WriteTxn& txn, std::string_view name, std::string_view email,
                      std::string_view password, uint64_t now) {
  auto normalized = NormalizeResellerName(name);
  if (!normalized.ok()) return normalized.status();
  const std::string label = ResellerLabel(*normalized) + ": ";
  if (Status s = CheckEmail(email); !s.ok()) return s.WithContext(label);
  if (txn.Get(Table::kResellers, *normalized))
    return Status::Exists(ResellerLabel(*normalized) + " already exists");
  auto hash = HashPassword(password);
  if (!hash.ok()) return hash.status().WithContext(label);
  ResellerRecord reseller;
  reseller.name = *normalized;
  reseller.email = std::string(email);
  reseller.password_hash = std::move(hash).value();
  reseller.created_at = now;
  return PutReseller(txn, reseller);
}

Result<ResellerRecord> GetReseller(const storage::Txn& txn, std::string_view name) {
  auto normalized = NormalizeResellerName(name);
  if (!normalized.ok()) return normalized.status();
  auto value = txn.Get(Table::kResellers, *normalized);
  if (!value) return Status::NotFound(ResellerLabel(*normalized) + " does not exist");
  auto record = ResellerRecord::Decode(*value);
  if (!record.ok()) return record.status().WithContext(ResellerLabel(*normalized) + ": ");
  return record;
}

Result<std::vector<ResellerRecord>> ListResellers(const storage::Txn& txn) {
  auto cursor = txn.OpenCursor(Table::kResellers);
  if (!cursor.ok()) return cursor.status();
  std::vector<ResellerRecord> resellers;
  for (bool more = cursor->First(); more; more = cursor->Next()) {
    auto record = ResellerRecord::Decode(cursor->value());
    if (!record.ok()) return record.status().WithContext(ResellerLabel(cursor->key()) + ": ");
    resellers.push_back(std::move(record).value());
  }
  return resellers;
}

Status DeleteReseller(storage::WriteTxn& txn, std::string_view name) {
  auto reseller = GetReseller(txn, name);
  if (!reseller.ok()) return reseller.status();
  if (!reseller->linked_account.empty()) {
    return Status::Invalid(ResellerLabel(reseller->name) + " is linked to " +
                           AccountLabel(reseller->linked_account) + "; unlink it first");
  }
  return txn.Delete(Table::kResellers, reseller->name)
      .WithContext(ResellerLabel(reseller->name) + ": ");
}

// --- Link -------------------------------------------------------------------

Result<LinkOutcome> LinkAccount(storage::WriteTxn& txn, std::string_view account_name,
                                std::string_view reseller_name, uint64_t /*now*/) {
  auto account = GetAccount(txn, account_name);
  if (!account.ok()) return account.status();
  auto reseller = GetReseller(txn, reseller_name);
  if (!reseller.ok()) return reseller.status();
  const std::string who = AccountLabel(account->name);

  if (account->state != State::kActive)
    return Refused(kRuleAccountDisabled, who + " is disabled and cannot be linked");
  if (!account->linked_reseller.empty()) {
    return Refused(kRuleAccountLinked, who + " is already linked to " +
                                           ResellerLabel(account->linked_reseller) +
                                           "; unlink it first");
  }
  if (!reseller->linked_account.empty()) {
    return Refused(kRuleResellerLinked,
                   ResellerLabel(reseller->name) + " is already linked to another account");
  }

  auto hosts = ListHosts(txn, account->name);
  if (!hosts.ok()) return hosts.status();
  size_t active = 0;
  LinkRefusal blocking;
  for (const HostRecord& host : *hosts) {
    if (host.state != State::kActive) continue;
    ++active;
    if (!host.has_token()) {
      blocking.hosts_without_token.push_back(host.name);
    } else if (!host.token_used) {
      blocking.tokens_unused.push_back(host.name);
    }
  }
  if (active == 0) {
    return Refused(kRuleNoActiveHosts,
                   who +
                       " has no active host; add a host, give it an update token and use "
                       "that token for an update before linking");
  }
  if (!blocking.hosts_without_token.empty() || !blocking.tokens_unused.empty()) {
    LinkOutcome outcome;
    outcome.refusal = std::move(blocking);
    LinkRefusal& r = outcome.refusal;
    std::string message =
        "every active host needs an update token that has been used at "
        "least once;";
    if (!r.hosts_without_token.empty()) {
      r.rule = std::string(kRuleHostsWithoutToken);
      message += " without a token: " + JoinNames(r.hosts_without_token);
      if (!r.tokens_unused.empty()) message += ";";
    } else {
      r.rule = std::string(kRuleTokensUnused);
    }
    if (!r.tokens_unused.empty()) message += " token never used: " + JoinNames(r.tokens_unused);
    r.message = std::move(message);
    return outcome;
  }

  // Every check passed: write both sides of the link.
  account->linked_reseller = reseller->name;
  reseller->linked_account = account->name;
  if (Status s = PutAccount(txn, *account); !s.ok()) return s;
  if (Status s = PutReseller(txn, *reseller); !s.ok()) return s;
  // The account's own password no longer logs in, nor do its sessions.
  if (Status s = EndSessions(txn, account->name,
                             [](const SessionRecord& session) { return !session.via_reseller; });
      !s.ok())
    return s;
  LinkOutcome outcome;
  outcome.linked = true;
  return outcome;
}

Status UnlinkAccount(storage::WriteTxn& txn, std::string_view account_name,
                     const UnlinkOptions& options, uint64_t now) {
  auto account = GetAccount(txn, account_name);
  if (!account.ok()) return account.status();
  const std::string who = AccountLabel(account->name);
  if (account->linked_reseller.empty()) return Status::Invalid(who + " is not linked");
  if (options.reset_url.empty())
    return Status::Invalid(who + ": no password reset URL is configured (mail.reset_url)");
  if (options.reset_ttl == 0) return Status::Invalid(who + ": the reset link lifetime is 0");

  // The reseller side; a reseller that is gone or points elsewhere is left
  // alone, so that a damaged link can still be undone from the account.
  const std::string reseller_name = account->linked_reseller;
  if (auto value = txn.Get(Table::kResellers, reseller_name)) {
    auto reseller = ResellerRecord::Decode(*value);
    if (!reseller.ok()) return reseller.status().WithContext(ResellerLabel(reseller_name) + ": ");
    if (reseller->linked_account == account->name) {
      reseller->linked_account.clear();
      if (Status s = PutReseller(txn, *reseller); !s.ok()) return s;
    }
  }

  account->linked_reseller.clear();
  account->password_hash.clear();
  if (Status s = PutAccount(txn, *account); !s.ok()) return s;
  if (Status s = EndSessions(txn, account->name, [](const SessionRecord&) { return true; });
      !s.ok())
    return s;

  OneTimeTokenRecord record;
  record.purpose = OneTimeTokenRecord::Purpose::kPasswordReset;
  record.account = account->name;
  record.created_at = now;
  record.expires_at = now + options.reset_ttl;
  auto token = PutOneTimeToken(txn, record);
  if (!token.ok()) return token.status().WithContext(who + ": ");

  storage::MailRecord mail;
  mail.to = account->email;
  mail.subject = "Set a new password for your " + options.from_name + " account";
  mail.body = "Hello,\n\nyour " + options.from_name + " account \"" + account->name +
              "\" is no longer linked to the reseller account \"" + reseller_name +
              "\". Its previous password no longer works.\n\n"
              "Set a new password here:\n\n" +
              options.reset_url + *token + "\n\nThe link works once and expires at " +
              FormatUtc(record.expires_at) + " (in " + FormatDuration(options.reset_ttl) +
              ").\n\n-- \n" + options.from_name + "\n";
  mail.created_at = now;
  auto id = EnqueueMail(txn, std::move(mail));
  if (!id.ok()) return id.status().WithContext(who + ": ");
  return Status::Ok();
}

Status ResetPassword(storage::WriteTxn& txn, std::string_view token, std::string_view password,
                     uint64_t now) {
  auto hash = HashPassword(password);
  if (!hash.ok()) return hash.status().WithContext("new password: ");
  return ResetPasswordHash(txn, token, std::move(hash).value(), now);
}

Status ResetPasswordHash(storage::WriteTxn& txn, std::string_view token,
                         std::string password_hash, uint64_t now) {
  auto record = FindOneTimeToken(txn, token, OneTimeTokenRecord::Purpose::kPasswordReset,
                                 "password reset link", now);
  if (!record.ok()) return record.status();
  auto value = txn.Get(Table::kAccounts, record->account);
  if (!value) {
    return Status::Invalid("this password reset link is not valid: its account no longer exists");
  }
  auto account = AccountRecord::Decode(*value);
  if (!account.ok()) return account.status();
  account->password_hash = std::move(password_hash);
  if (Status s = PutAccount(txn, *account); !s.ok()) return s;
  // One-time: this token dies, and so do older reset links of the account.
  const std::string& owner = account->name;
  return DeleteOneTimeTokens(txn, [&](const OneTimeTokenRecord& r) {
    return r.purpose == OneTimeTokenRecord::Purpose::kPasswordReset && r.account == owner;
  });
}

// --- Host moves -----------------------------------------------------------------

Result<std::string> CreateMoveToken(storage::WriteTxn& txn, std::string_view account_name,
                                    std::string_view host_name, uint64_t now, uint64_t ttl) {
  auto account = GetAccount(txn, account_name);
  if (!account.ok()) return account.status();
  auto host = GetHost(txn, host_name);
  if (!host.ok()) return host.status();
  if (host->account != account->name)
    return Status::NotFound(HostLabel(host->name) + " is not a host of " +
                            AccountLabel(account->name));
  if (ttl == 0) return Status::Invalid(HostLabel(host->name) + ": the move token lifetime is 0");
  // One outstanding move token per host: a new one replaces the old.
  const std::string& name = host->name;
  if (Status s = DeleteOneTimeTokens(txn,
                                     [&](const OneTimeTokenRecord& r) {
                                       return r.purpose == OneTimeTokenRecord::Purpose::kHostMove &&
                                              r.host == name;
                                     });
      !s.ok())
    return s;
  OneTimeTokenRecord record;
  record.purpose = OneTimeTokenRecord::Purpose::kHostMove;
  record.account = account->name;
  record.host = host->name;
  record.created_at = now;
  record.expires_at = now + ttl;
  auto token = PutOneTimeToken(txn, record);
  if (!token.ok()) return token.status().WithContext(HostLabel(host->name) + ": ");
  return token;
}

Result<std::string> MoveHost(storage::WriteTxn& txn, std::string_view token,
                             std::string_view target_account, uint64_t now) {
  auto record =
      FindOneTimeToken(txn, token, OneTimeTokenRecord::Purpose::kHostMove, "move token", now);
  if (!record.ok()) return record.status();
  auto target = GetAccount(txn, target_account);
  if (!target.ok()) return target.status();
  auto host = GetHost(txn, record->host);
  if (host.status().IsNotFound())
    return Status::Invalid("this move token is not valid: its host no longer exists");
  if (!host.ok()) return host.status();
  const std::string what = HostLabel(host->name);
  if (host->account != record->account) {
    return Status::Invalid("this move token is not valid: " + what +
                           " changed owner since it was issued");
  }
  if (target->name == host->account)
    return Status::Invalid(what + " already belongs to " + AccountLabel(target->name));
  if (target->state != State::kActive)
    return Status::Invalid(what + ": " + AccountLabel(target->name) + " is disabled");
  auto count = CountHosts(txn, target->name);
  if (!count.ok()) return count.status();
  if (*count >= target->host_limit) {
    return Status::Invalid(what + ": " + AccountLabel(target->name) +
                           " has reached its host limit (" + std::to_string(*count) + " of " +
                           std::to_string(target->host_limit) + " hosts)");
  }

  const std::string old_owner = host->account;
  host->account = target->name;
  if (Status s = txn.Put(Table::kHosts, host->name, host->Encode()); !s.ok())
    return s.WithContext(what + ": ");
  Status s = txn.Delete(Table::kAccountHosts, storage::AccountHostKey(old_owner, host->name));
  if (!s.ok() && !s.IsNotFound()) return s.WithContext(what + ": ");
  s = txn.Put(Table::kAccountHosts, storage::AccountHostKey(target->name, host->name), "");
  if (!s.ok()) return s.WithContext(what + ": ");
  // One-time: the token dies with the move.
  s = txn.Delete(Table::kOneTime, TokenDigest(token));
  if (!s.ok()) return s.WithContext(what + ": ");
  return host->name;
}

}  // namespace updns::update
