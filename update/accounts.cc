#include "update/accounts.h"

#include <algorithm>

#include "storage/node.h"
#include "storage/schema.h"
#include "update/credentials.h"
#include "zone/name.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"

namespace updns::update {
namespace {

using storage::AccountRecord;
using storage::HostRecord;
using storage::State;
using storage::Table;

constexpr size_t kMaxAccountName = 63;
constexpr size_t kMaxHostName = 253;  // presentation form, no final dot
constexpr size_t kMaxLabel = 63;
constexpr size_t kMaxEmail = 254;
constexpr size_t kMaxEmailLocal = 64;
constexpr size_t kMaxShown = 80;  // of untrusted text in a message

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

// Untrusted text quoted for a message: bounded, controls replaced, so that a
// name sent to the API cannot forge lines in a log or a reply.
std::string QuoteForMessage(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, kMaxShown)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (text.size() > kMaxShown) out += "...";
  return out + "'";
}

namespace {

std::string AccountLabel(std::string_view name) { return "account " + QuoteForMessage(name); }
std::string HostLabel(std::string_view name) { return "host " + QuoteForMessage(name); }

// `name`: a valid host name from NormalizeHostName, or a configured zone
// name; both always convert (empty string otherwise).
std::string WireFromText(std::string_view name) {
  auto wire = zone::LowercaseWireNameFromText(name);
  return wire.ok() ? std::move(wire).value() : std::string();
}

std::string NormalizeZoneName(std::string_view name) {
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

std::string TypeName(uint16_t type) {
  switch (type) {
    case zone::type::kA:
      return "A";
    case zone::type::kNS:
      return "NS";
    case zone::type::kCNAME:
      return "CNAME";
    case zone::type::kSOA:
      return "SOA";
    case zone::type::kPTR:
      return "PTR";
    case zone::type::kMX:
      return "MX";
    case zone::type::kTXT:
      return "TXT";
    case zone::type::kAAAA:
      return "AAAA";
    case zone::type::kSRV:
      return "SRV";
    case zone::type::kDS:
      return "DS";
    default:
      return "TYPE" + std::to_string(type);
  }
}

}  // namespace

Status CheckEmail(std::string_view email) {
  std::string what = "e-mail address " + QuoteForMessage(email);
  if (email.empty()) return Status::Invalid("the e-mail address is empty");
  if (email.size() > kMaxEmail) return Status::Invalid(what + " is longer than 254 bytes");
  size_t at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos)
    return Status::Invalid(what + " needs exactly one '@'");
  std::string_view local = email.substr(0, at), domain = email.substr(at + 1);
  if (local.empty() || local.size() > kMaxEmailLocal)
    return Status::Invalid(what + ": the part before '@' must have 1 to 64 characters");
  for (char c : local) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f ||
        std::string_view("\"(),:;<>[\\]").find(c) != std::string_view::npos)
      return Status::Invalid(what +
                             " contains a space, a control character or one of \"(),:;<>[\\]");
  }
  if (domain.find('.') == std::string_view::npos)
    return Status::Invalid(what + ": the domain after '@' needs a dot (e.g. example.com)");
  if (!NormalizeHostName(domain).ok())
    return Status::Invalid(what + ": the domain after '@' is not a valid host name");
  return Status::Ok();
}

namespace {

// What AddHost needs to know about the zone a host name falls in.
struct Placement {
  std::string zone;       // configured name, lowercase, no final dot
  std::string apex_wire;  // lowercase
  uint32_t host_ttl = 0;
  uint32_t zone_id = 0;
};

Result<Placement> PlaceHost(const storage::Txn& txn, const std::string& host,
                            const std::vector<HostZone>& zones) {
  const HostZone* best = nullptr;
  std::string best_name;
  bool at_apex = false;
  for (const HostZone& candidate : zones) {
    std::string name = NormalizeZoneName(candidate.name);
    bool apex = name == host;
    bool inside = apex || name == "." ||
                  (host.size() > name.size() &&
                   host.compare(host.size() - name.size(), name.size(), name) == 0 &&
                   host[host.size() - name.size() - 1] == '.');
    if (!inside) continue;
    size_t length = name == "." ? 0 : name.size();
    if (best == nullptr || length > (best_name == "." ? 0 : best_name.size())) {
      best = &candidate;
      best_name = name;
      at_apex = apex;
    }
  }
  if (best == nullptr) {
    std::string list;
    for (const HostZone& z : zones) list += (list.empty() ? "" : ", ") + NormalizeZoneName(z.name);
    return Status::Invalid(HostLabel(host) + " is not inside any configured zone (" +
                           (list.empty() ? std::string("none configured") : list) + ")");
  }
  if (at_apex) {
    return Status::Invalid(HostLabel(host) + " is the apex of zone " + best_name +
                           "; a host must be a name below it");
  }
  Placement placement{best_name, WireFromText(best_name), best->host_ttl, 0};
  auto record = storage::ReadZoneRecord(txn, placement.apex_wire);
  if (!record.ok()) {
    if (record.status().IsNotFound()) {
      return Status::NotFound(HostLabel(host) + ": zone " + best_name +
                              " is not in the store; load its zone file first");
    }
    return record.status().WithContext(HostLabel(host) + ": zone " + best_name + ": ");
  }
  placement.zone_id = record->zone_id;
  return placement;
}

// The zone's own data must not be shadowed by a host: no records at the name
// (a host would take over its A/AAAA), no delegation above it (the name
// would be occluded: resolvers are referred away before reaching it).
Status CheckZoneData(const storage::Txn& txn, const std::string& host, const Placement& placement) {
  std::string wire = WireFromText(host);
  // Walk from the host up to (not including) the apex.
  for (size_t pos = 0; wire.size() - pos > placement.apex_wire.size();
       pos += 1 + static_cast<unsigned char>(wire[pos])) {
    storage::NodeKey key;
    if (!key.Assign(placement.zone_id, std::string_view(wire).substr(pos)))
      return Status::Invalid(HostLabel(host) + " is not a valid name");
    auto value = txn.Get(Table::kNodes, key.view());
    if (!value) continue;
    storage::NodeView node(*value);
    if (!node.Valid()) return Status::Corrupt(HostLabel(host) + ": malformed node in the store");
    if (pos == 0 && node.rrset_count() > 0) {
      std::string types;
      node.ForEach([&](const storage::RRsetView& rrset) {
        types += (types.empty() ? "" : ", ") + TypeName(rrset.type);
        return true;
      });
      return Status::Exists(HostLabel(host) + ": zone " + placement.zone +
                            " already has records at this name (" + types +
                            "); remove them from the zone file or choose another name");
    }
    storage::RRsetView ns;
    if (pos > 0 && node.Find(zone::type::kNS, ns)) {
      std::string cut = zone::TextFromWireName(std::string_view(wire).substr(pos));
      cut.pop_back();
      return Status::Invalid(HostLabel(host) + " is below the delegation at " + cut + " in zone " +
                             placement.zone);
    }
  }
  return Status::Ok();
}

Status PutHost(storage::WriteTxn& txn, const HostRecord& host) {
  return txn.Put(Table::kHosts, host.name, host.Encode()).WithContext(HostLabel(host.name) + ": ");
}

Status PutAccount(storage::WriteTxn& txn, const AccountRecord& account) {
  return txn.Put(Table::kAccounts, account.name, account.Encode())
      .WithContext(AccountLabel(account.name) + ": ");
}

// Host names of an account, from the index, in name order.
Result<std::vector<std::string>> AccountHostNames(const storage::Txn& txn,
                                                  const std::string& account) {
  std::string prefix = storage::AccountHostKey(account, "");
  auto cursor = txn.OpenCursor(Table::kAccountHosts);
  if (!cursor.ok()) return cursor.status();
  std::vector<std::string> names;
  for (bool more = cursor->Seek(prefix); more && cursor->key().substr(0, prefix.size()) == prefix;
       more = cursor->Next()) {
    names.emplace_back(cursor->key().substr(prefix.size()));
  }
  return names;
}

Status RemoveHost(storage::WriteTxn& txn, const HostRecord& host,
                  std::set<std::string>& changed_zones) {
  std::string apex = WireFromText(host.zone);
  auto zone = storage::ReadZoneRecord(txn, apex);
  // A zone gone from the store took the host's node with it.
  if (zone.ok()) {
    storage::NodeKey key;
    if (key.Assign(zone->zone_id, WireFromText(host.name)) && txn.Get(Table::kNodes, key.view())) {
      Status s = zone::RemoveHostAddresses(txn, apex, WireFromText(host.name));
      if (!s.ok()) return s.WithContext(HostLabel(host.name) + ": ");
      changed_zones.insert(apex);
    }
  } else if (!zone.status().IsNotFound()) {
    return zone.status().WithContext(HostLabel(host.name) + ": zone " + host.zone + ": ");
  }
  if (Status s = txn.Delete(Table::kHosts, host.name); !s.ok())
    return s.WithContext(HostLabel(host.name) + ": ");
  Status s = txn.Delete(Table::kAccountHosts, storage::AccountHostKey(host.account, host.name));
  if (!s.ok() && !s.IsNotFound()) return s.WithContext(HostLabel(host.name) + ": ");
  return Status::Ok();
}

void SetNewToken(HostRecord& host, std::string_view token, uint64_t now) {
  host.token_digest = TokenDigest(token);
  host.token_created_at = now;
  host.token_used = false;
  host.token_last_used_at = 0;
  host.token_last_used_from.clear();
}

}  // namespace

Result<std::string> NormalizeAccountName(std::string_view name) {
  std::string what = "account name " + QuoteForMessage(name);
  if (name.empty()) return Status::Invalid("the account name is empty");
  if (name.size() > kMaxAccountName) return Status::Invalid(what + " is longer than 63 characters");
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  if (!IsLowerAlnum(out[0])) return Status::Invalid(what + " must start with a letter or digit");
  for (char c : out) {
    if (!IsLowerAlnum(c) && c != '.' && c != '_' && c != '-')
      return Status::Invalid(what + " may contain only letters, digits, '.', '_' and '-'");
  }
  return out;
}

Result<std::string> NormalizeHostName(std::string_view fqdn) {
  std::string what = "host name " + QuoteForMessage(fqdn);
  if (!fqdn.empty() && fqdn.back() == '.') fqdn.remove_suffix(1);
  if (fqdn.empty()) return Status::Invalid("the host name is empty");
  if (fqdn.size() > kMaxHostName) return Status::Invalid(what + " is longer than 253 characters");
  std::string out(fqdn);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  if (out.find('.') == std::string::npos) return Status::Invalid(what + " is not fully qualified");
  size_t start = 0;
  while (start <= out.size()) {
    size_t dot = std::min(out.find('.', start), out.size());
    std::string_view label = std::string_view(out).substr(start, dot - start);
    if (label.empty()) return Status::Invalid(what + " has an empty label");
    if (label.size() > kMaxLabel)
      return Status::Invalid(what + " has a label longer than 63 characters");
    if (label.front() == '-' || label.back() == '-')
      return Status::Invalid(what + ": a label may not start or end with '-'");
    for (char c : label) {
      if (!IsLowerAlnum(c) && c != '-')
        return Status::Invalid(what + " may contain only letters, digits, '-' and dots");
    }
    start = dot + 1;
  }
  return out;
}

// --- Accounts ---------------------------------------------------------------

Status CreateAccount(storage::WriteTxn& txn, std::string_view name, std::string_view email,
                     std::string_view password, uint32_t host_limit, uint64_t now) {
  auto normalized = NormalizeAccountName(name);
  if (!normalized.ok()) return normalized.status();
  const std::string label = AccountLabel(*normalized) + ": ";
  if (Status s = CheckEmail(email); !s.ok()) return s.WithContext(label);
  if (txn.Get(Table::kAccounts, *normalized))
    return Status::Exists(AccountLabel(*normalized) + " already exists");
  auto hash = HashPassword(password);
  if (!hash.ok()) return hash.status().WithContext(label);
  AccountRecord account;
  account.name = *normalized;
  account.email = std::string(email);
  account.password_hash = std::move(hash).value();
  account.state = State::kActive;
  account.host_limit = host_limit;
  account.created_at = now;
  return PutAccount(txn, account);
}

Result<AccountRecord> GetAccount(const storage::Txn& txn, std::string_view name) {
  auto normalized = NormalizeAccountName(name);
  if (!normalized.ok()) return normalized.status();
  auto value = txn.Get(Table::kAccounts, *normalized);
  if (!value) return Status::NotFound(AccountLabel(*normalized) + " does not exist");
  auto record = AccountRecord::Decode(*value);
  if (!record.ok()) return record.status().WithContext(AccountLabel(*normalized) + ": ");
  return record;
}

Result<std::vector<AccountRecord>> ListAccounts(const storage::Txn& txn) {
  auto cursor = txn.OpenCursor(Table::kAccounts);
  if (!cursor.ok()) return cursor.status();
  std::vector<AccountRecord> accounts;
  for (bool more = cursor->First(); more; more = cursor->Next()) {
    auto record = AccountRecord::Decode(cursor->value());
    if (!record.ok()) return record.status().WithContext(AccountLabel(cursor->key()) + ": ");
    accounts.push_back(std::move(record).value());
  }
  return accounts;
}

Result<size_t> CountHosts(const storage::Txn& txn, std::string_view account) {
  auto normalized = NormalizeAccountName(account);
  if (!normalized.ok()) return normalized.status();
  auto names = AccountHostNames(txn, *normalized);
  if (!names.ok()) return names.status();
  return names->size();
}

Status SetAccountState(storage::WriteTxn& txn, std::string_view name, State state) {
  auto account = GetAccount(txn, name);
  if (!account.ok()) return account.status();
  if (account->state == state) return Status::Ok();
  account->state = state;
  return PutAccount(txn, *account);
}

Status DeleteAccount(storage::WriteTxn& txn, std::string_view name,
                     std::set<std::string>& changed_zones) {
  auto account = GetAccount(txn, name);
  if (!account.ok()) return account.status();
  auto names = AccountHostNames(txn, account->name);
  if (!names.ok()) return names.status();
  for (const std::string& host_name : *names) {
    auto value = txn.Get(Table::kHosts, host_name);
    if (!value) {
      // A dangling index entry: drop it with the account.
      Status s =
          txn.Delete(Table::kAccountHosts, storage::AccountHostKey(account->name, host_name));
      if (!s.ok()) return s.WithContext(AccountLabel(account->name) + ": ");
      continue;
    }
    auto host = HostRecord::Decode(*value);
    if (!host.ok()) return host.status().WithContext(HostLabel(host_name) + ": ");
    if (Status s = RemoveHost(txn, *host, changed_zones); !s.ok()) return s;
  }
  return txn.Delete(Table::kAccounts, account->name)
      .WithContext(AccountLabel(account->name) + ": ");
}

// --- Hosts ------------------------------------------------------------------

Status AddHost(storage::WriteTxn& txn, std::string_view fqdn, std::string_view account,
               const std::vector<HostZone>& zones, uint64_t now,
               std::set<std::string>& changed_zones) {
  auto name = NormalizeHostName(fqdn);
  if (!name.ok()) return name.status();
  auto placement = PlaceHost(txn, *name, zones);
  if (!placement.ok()) return placement.status();
  if (txn.Get(Table::kHosts, *name)) return Status::Exists(HostLabel(*name) + " already exists");
  auto owner = GetAccount(txn, account);
  if (!owner.ok()) return owner.status().WithContext(HostLabel(*name) + ": ");
  if (owner->state != State::kActive) {
    return Status::Invalid(HostLabel(*name) + ": " + AccountLabel(owner->name) + " is disabled");
  }
  auto count = CountHosts(txn, owner->name);
  if (!count.ok()) return count.status();
  if (*count >= owner->host_limit) {
    return Status::Invalid(HostLabel(*name) + ": " + AccountLabel(owner->name) +
                           " has reached its host limit (" + std::to_string(*count) + " of " +
                           std::to_string(owner->host_limit) + " hosts)");
  }
  if (Status s = CheckZoneData(txn, *name, *placement); !s.ok()) return s;

  HostRecord host;
  host.name = *name;
  host.account = owner->name;
  host.zone = placement->zone;
  host.state = State::kActive;
  host.created_at = now;
  if (Status s = PutHost(txn, host); !s.ok()) return s;
  if (Status s =
          txn.Put(Table::kAccountHosts, storage::AccountHostKey(host.account, host.name), "");
      !s.ok())
    return s.WithContext(HostLabel(host.name) + ": ");
  // No DNS change yet: a name without records cannot be transferred to
  // secondaries, so the host's name appears with its first address.
  (void)changed_zones;
  return Status::Ok();
}

Result<HostRecord> GetHost(const storage::Txn& txn, std::string_view fqdn) {
  auto name = NormalizeHostName(fqdn);
  if (!name.ok()) return name.status();
  auto value = txn.Get(Table::kHosts, *name);
  if (!value) return Status::NotFound(HostLabel(*name) + " does not exist");
  auto record = HostRecord::Decode(*value);
  if (!record.ok()) return record.status().WithContext(HostLabel(*name) + ": ");
  return record;
}

Result<std::vector<HostRecord>> ListHosts(const storage::Txn& txn,
                                          std::optional<std::string_view> account) {
  std::vector<HostRecord> hosts;
  if (account) {
    auto owner = GetAccount(txn, *account);
    if (!owner.ok()) return owner.status();
    auto names = AccountHostNames(txn, owner->name);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      auto host = GetHost(txn, name);
      if (host.status().IsNotFound()) continue;  // dangling index entry
      if (!host.ok()) return host.status();
      hosts.push_back(std::move(host).value());
    }
    return hosts;
  }
  auto cursor = txn.OpenCursor(Table::kHosts);
  if (!cursor.ok()) return cursor.status();
  for (bool more = cursor->First(); more; more = cursor->Next()) {
    auto host = HostRecord::Decode(cursor->value());
    if (!host.ok()) return host.status().WithContext(HostLabel(cursor->key()) + ": ");
    hosts.push_back(std::move(host).value());
  }
  return hosts;
}

Status SetHostState(storage::WriteTxn& txn, std::string_view fqdn, State state) {
  auto host = GetHost(txn, fqdn);
  if (!host.ok()) return host.status();
  if (host->state == state) return Status::Ok();
  host->state = state;
  return PutHost(txn, *host);
}

Status DeleteHost(storage::WriteTxn& txn, std::string_view fqdn,
                  std::set<std::string>& changed_zones) {
  auto host = GetHost(txn, fqdn);
  if (!host.ok()) return host.status();
  return RemoveHost(txn, *host, changed_zones);
}

// --- Update tokens ------------------------------------------------------------

Result<std::string> CreateToken(storage::WriteTxn& txn, std::string_view fqdn, uint64_t now) {
  auto host = GetHost(txn, fqdn);
  if (!host.ok()) return host.status();
  auto token = NewToken();
  if (!token.ok()) return token.status().WithContext(HostLabel(host->name) + ": ");
  SetNewToken(*host, *token, now);
  if (Status s = PutHost(txn, *host); !s.ok()) return s;
  return token;
}

Status RevokeToken(storage::WriteTxn& txn, std::string_view fqdn) {
  auto host = GetHost(txn, fqdn);
  if (!host.ok()) return host.status();
  if (!host->has_token()) return Status::NotFound(HostLabel(host->name) + " has no update token");
  host->token_digest.clear();
  host->token_created_at = 0;
  host->token_used = false;
  host->token_last_used_at = 0;
  host->token_last_used_from.clear();
  return PutHost(txn, *host);
}

Result<std::vector<HostToken>> CreateMissingTokens(storage::WriteTxn& txn, std::string_view account,
                                                   uint64_t now) {
  auto hosts = ListHosts(txn, account);
  if (!hosts.ok()) return hosts.status();
  std::vector<HostToken> created;
  for (HostRecord& host : *hosts) {
    if (host.state != State::kActive || host.has_token()) continue;
    auto token = NewToken();
    if (!token.ok()) return token.status().WithContext(HostLabel(host.name) + ": ");
    SetNewToken(host, *token, now);
    if (Status s = PutHost(txn, host); !s.ok()) return s;
    created.push_back(HostToken{host.name, std::move(token).value()});
  }
  return created;
}

namespace {

void AppendCsvField(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += field;
    return;
  }
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

std::string TokensCsv(const std::vector<HostToken>& tokens) {
  std::string out = "hostname,token\r\n";
  for (const HostToken& pair : tokens) {
    AppendCsvField(out, pair.hostname);
    out.push_back(',');
    AppendCsvField(out, pair.token);
    out += "\r\n";
  }
  return out;
}

}  // namespace updns::update
