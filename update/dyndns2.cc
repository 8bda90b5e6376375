#include "update/dyndns2.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "storage/accounts.h"
#include "update/accounts.h"
#include "update/credentials.h"
#include "zone/name.h"
#include "zone/zone_edit.h"

namespace updns::update {
namespace {

constexpr size_t kMaxParamLength = 4096;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding; inadyn sends "%3a" in IPv6.
Result<std::string> UrlDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%') {
      int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      int lo = hi >= 0 ? HexValue(in[i + 2]) : -1;
      if (lo < 0) return Status::Invalid("bad percent-encoding in the request");
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return Status::Invalid("bad Basic credentials");
    bits = bits << 6 | static_cast<uint32_t>(v);
    if ((count += 6) >= 8) {
      count -= 8;
      out.push_back(static_cast<char>(bits >> count));
    }
  }
  return out;
}

std::string Lowercase(std::string s) {
  for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  return s;
}

bool IsPrivate4(const uint8_t* a) {
  return a[0] == 10 || a[0] == 127 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xF0) == 16) ||
         (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
         (a[0] == 100 && (a[1] & 0xC0) == 64);  // RFC 6598 carrier-grade NAT
}

bool IsPrivate6(const uint8_t* a) {
  static const uint8_t kZero[16] = {};
  bool loopback_or_any = std::memcmp(a, kZero, 15) == 0 && a[15] <= 1;
  return loopback_or_any || (a[0] & 0xFE) == 0xFC || (a[0] == 0xFE && (a[1] & 0xC0) == 0x80);
}

// A source address as raw bytes: 4 for IPv4 (also IPv4-mapped IPv6), else 16.
std::string RawAddress(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss).sin_addr;
    return std::string(reinterpret_cast<const char*>(&a), 4);
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) return std::string(reinterpret_cast<const char*>(&a) + 12, 4);
    return std::string(reinterpret_cast<const char*>(&a), 16);
  }
  return {};
}

std::string AddressText(std::string_view raw) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(raw.size() == 4 ? AF_INET : AF_INET6, raw.data(), text, sizeof text);
  return text;
}

bool IsPrivate(std::string_view raw) {
  const auto* a = reinterpret_cast<const uint8_t*>(raw.data());
  return raw.size() == 4 ? IsPrivate4(a) : IsPrivate6(a);
}

// One address as dyndns clients send it: "192.0.2.1", "2001:db8::1/64".
Result<std::string> ParseAddress(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (size_t slash = text.find('/'); slash != std::string_view::npos) text = text.substr(0, slash);
  std::string s(text);
  uint8_t raw[16];
  std::string address;
  if (inet_pton(AF_INET, s.c_str(), raw) == 1) {
    address.assign(reinterpret_cast<char*>(raw), 4);
  } else if (inet_pton(AF_INET6, s.c_str(), raw) == 1) {
    // An IPv4-mapped address is an IPv4 update.
    bool mapped = IN6_IS_ADDR_V4MAPPED(reinterpret_cast<in6_addr*>(raw));
    address.assign(reinterpret_cast<char*>(raw) + (mapped ? 12 : 0), mapped ? 4 : 16);
  } else {
    return Status::Invalid("'" + s + "' is not an IP address");
  }
  // No host can be reached at an unspecified, multicast or broadcast address.
  const auto* a = reinterpret_cast<const uint8_t*>(address.data());
  static const uint8_t kZero[16] = {};
  bool unusable = address.size() == 4
                      ? (a[0] == 0 || a[0] >= 224)
                      : (std::memcmp(a, kZero, 16) == 0 || a[0] == 0xFF);
  if (unusable) return Status::Invalid("'" + s + "' cannot be a host's address");
  return address;
}

// The same rule as host names in the store: a host that cannot exist is
// `notfqdn`, not `nohost`.
bool IsValidHostname(std::string_view name) {
  auto normalized = NormalizeHostName(name);
  return normalized.ok() && *normalized == name;
}

}  // namespace

std::string_view DyndnsCodeText(DyndnsCode code) {
  switch (code) {
    case DyndnsCode::kGood: return "good";
    case DyndnsCode::kNochg: return "nochg";
    case DyndnsCode::kBadAuth: return "badauth";
    case DyndnsCode::kNoHost: return "nohost";
    case DyndnsCode::kNotYours: return "!yours";
    case DyndnsCode::kNotFqdn: return "notfqdn";
    case DyndnsCode::kNumHost: return "numhost";
    case DyndnsCode::kAbuse: return "abuse";
    case DyndnsCode::kFatal: return "fatal";
    case DyndnsCode::kDnsErr: return "dnserr";
    case DyndnsCode::k911: return "911";
  }
  return "911";
}

Result<DyndnsRequest> ParseDyndnsRequest(std::string_view query, const std::string* authorization,
                                         const sockaddr_storage& source) {
  DyndnsRequest r;
  std::string source_raw = RawAddress(source);
  r.source = source_raw.empty() ? std::string() : AddressText(source_raw);
  std::string hostnames, myip, myipv6, user, pass;
  bool have_myip = false, have_myipv6 = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.size() > kMaxParamLength) return Status::Invalid("request parameter too long");
    size_t eq = pair.find('=');
    auto key = UrlDecode(pair.substr(0, eq));
    auto value = UrlDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key.ok()) return key.status();
    if (!value.ok()) return value.status();
    if (*key == "hostname") {
      hostnames = *value;
    } else if (*key == "myip") {
      myip = *value;
      have_myip = true;
    } else if (*key == "myipv6") {
      myipv6 = *value;
      have_myipv6 = true;
    } else if (*key == "user" || *key == "username") {
      user = *value;
    } else if (*key == "pass" || *key == "password") {
      pass = *value;
    }
    // Other parameters (wildcard, mx, backmx, offline, system) are accepted
    // and ignored, as clients send them by habit.
  }

  if (authorization) {
    std::string_view a = *authorization;
    if (a.size() > 6 && Lowercase(std::string(a.substr(0, 6))) == "basic ") {
      // Credentials that do not decode are failed credentials (badauth),
      // not a malformed request.
      auto decoded = Base64Decode(a.substr(6));
      size_t colon = decoded.ok() ? decoded->find(':') : std::string::npos;
      user = colon == std::string::npos ? std::string() : decoded->substr(0, colon);
      pass = colon == std::string::npos ? std::string() : decoded->substr(colon + 1);
    }
  }
  r.user = Lowercase(user);
  r.password = pass;

  for (size_t start = 0; start <= hostnames.size() && !hostnames.empty();) {
    size_t comma = hostnames.find(',', start);
    std::string name = hostnames.substr(start, comma == std::string::npos ? comma : comma - start);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty() && name.back() == '.') name.pop_back();
    r.hostnames.push_back(Lowercase(name));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }

  auto assign = [&](const std::string& raw) -> Status {
    std::string& slot = raw.size() == 4 ? r.ipv4 : r.ipv6;
    if (!slot.empty() && slot != raw)
      return Status::Invalid("more than one " + std::string(raw.size() == 4 ? "IPv4" : "IPv6") +
                             " address given");
    slot = raw;
    return Status::Ok();
  };
  for (size_t start = 0; have_myip && start <= myip.size();) {
    size_t comma = myip.find(',', start);
    std::string_view item =
        std::string_view(myip).substr(start, comma == std::string::npos ? comma : comma - start);
    if (!item.empty()) {
      auto raw = ParseAddress(item);
      if (!raw.ok()) return raw.status();
      if (Status s = assign(*raw); !s.ok()) return s;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (have_myipv6 && !myipv6.empty()) {
    auto raw = ParseAddress(myipv6);
    if (!raw.ok()) return raw.status();
    if (raw->size() != 16) return Status::Invalid("myipv6 '" + myipv6 + "' is not an IPv6 address");
    r.ipv6 = *raw;  // an explicit myipv6 wins over an IPv6 inside myip
  }
  if (r.ipv4.empty() && r.ipv6.empty() && !source_raw.empty()) {
    (source_raw.size() == 4 ? r.ipv4 : r.ipv6) = source_raw;
  }
  // A router behind NAT may report its private address; from a public
  // source, the source is the address the world can reach.
  if (!source_raw.empty() && !IsPrivate(source_raw)) {
    std::string& same_family = source_raw.size() == 4 ? r.ipv4 : r.ipv6;
    if (!same_family.empty() && IsPrivate(same_family)) same_family = source_raw;
  }
  return r;
}

std::optional<DyndnsIdentity> AuthenticateHostToken(const storage::Txn& txn, std::string_view user,
                                                    std::string_view token) {
  auto value = txn.Get(storage::Table::kHosts, user);
  if (!value) return std::nullopt;
  auto host = storage::HostRecord::Decode(*value);
  if (!host.ok() || !host->has_token() || !TokenMatches(token, host->token_digest))
    return DyndnsIdentity{};
  auto owner = txn.Get(storage::Table::kAccounts, host->account);
  auto account = owner ? storage::AccountRecord::Decode(*owner) : Status::NotFound("");
  if (!account.ok() || account->state != storage::State::kActive) return DyndnsIdentity{};
  return DyndnsIdentity{DyndnsIdentity::Kind::kHost, host->name, host->token_digest};
}

DyndnsIdentity Authenticate(const storage::Store& store, std::string_view user,
                            std::string_view password) {
  if (user.empty() || password.empty()) return {};
  std::string account_name, password_hash;
  {
    auto txn = store.BeginRead();
    if (!txn.ok()) return {};
    if (auto identity = AuthenticateHostToken(*txn, user, password)) return *identity;
    auto value = txn->Get(storage::Table::kAccounts, user);
    auto account = value ? storage::AccountRecord::Decode(*value)
                         : Result<storage::AccountRecord>(Status::NotFound("no such account"));
    // A linked account logs in through its reseller account only.
    if (account.ok() && account->state == storage::State::kActive &&
        account->linked_reseller.empty()) {
      account_name = account->name;
      password_hash = account->password_hash;
    }
  }  // the snapshot ends here, before the deliberately slow hash
  // Unknown, disabled and linked names cost a hash too: timing must not tell
  // which account names exist.
  bool matches = VerifyPassword(password, password_hash.empty() ? DummyPasswordHash() : password_hash);
  if (!matches || account_name.empty()) return {};
  return {DyndnsIdentity::Kind::kAccount, account_name, {}};
}

DyndnsUpdate::DyndnsUpdate(DyndnsRequest request, DyndnsIdentity identity, DyndnsPolicy policy,
                           std::function<uint32_t(std::string_view)> host_ttl, Callback done)
    : request_(std::move(request)),
      identity_(std::move(identity)),
      policy_(policy),
      host_ttl_(std::move(host_ttl)),
      done_(std::move(done)) {}

Status DyndnsUpdate::Apply(storage::WriteTxn& txn, WriteContext& context) {
  results_.clear();
  if (request_.hostnames.empty()) {
    results_.push_back({DyndnsCode::kNotFqdn, {}});
    return Status::Ok();
  }
  if (request_.hostnames.size() > policy_.max_hosts) {
    results_.push_back({DyndnsCode::kNumHost, {}});
    return Status::Ok();
  }
  for (const std::string& hostname : request_.hostnames) {
    results_.push_back(ApplyHost(txn, context, hostname));
    if (results_.back().code == DyndnsCode::k911) return Status::IoError("store write failed");
  }
  return Status::Ok();
}

DyndnsHostResult DyndnsUpdate::ApplyHost(storage::WriteTxn& txn, WriteContext& context,
                                         const std::string& hostname) {
  if (!IsValidHostname(hostname)) return {DyndnsCode::kNotFqdn, {}};
  auto value = txn.Get(storage::Table::kHosts, hostname);
  if (!value) return {DyndnsCode::kNoHost, {}};
  auto decoded = storage::HostRecord::Decode(*value);
  if (!decoded.ok()) return {DyndnsCode::k911, {}};
  storage::HostRecord host = std::move(decoded).value();
  const bool by_token = identity_.kind == DyndnsIdentity::Kind::kHost;
  if (by_token ? host.name != identity_.name : host.account != identity_.name)
    return {DyndnsCode::kNotYours, {}};
  // The token may have been exchanged since it was checked.
  if (by_token && host.token_digest != identity_.token_digest) return {DyndnsCode::kBadAuth, {}};
  if (host.state != storage::State::kActive) return {DyndnsCode::kFatal, {}};
  const uint64_t now = context.now();
  if (host.locked_until > now) return {DyndnsCode::kAbuse, {}};

  std::string addresses;
  for (const std::string* raw : {&request_.ipv4, &request_.ipv6}) {
    if (raw->empty()) continue;
    if (!addresses.empty()) addresses.push_back(',');
    addresses += AddressText(*raw);
  }
  std::string ipv4 = request_.ipv4.empty() ? host.ipv4 : request_.ipv4;
  std::string ipv6 = request_.ipv6.empty() ? host.ipv6 : request_.ipv6;
  DyndnsHostResult result{DyndnsCode::kGood, addresses};
  if (ipv4 == host.ipv4 && ipv6 == host.ipv6) {
    // Unchanged: count it; too many in one window locks the host.
    if (now - host.nochg_window_start >= policy_.nochg_window) {
      host.nochg_window_start = now;
      host.nochg_count = 0;
    }
    if (++host.nochg_count > policy_.nochg_limit) {
      host.locked_until = now + policy_.abuse_lock;
      result = {DyndnsCode::kAbuse, {}};
    } else {
      result.code = DyndnsCode::kNochg;
    }
  } else {
    auto apex = zone::LowercaseWireNameFromText(host.zone);
    auto wire = zone::LowercaseWireNameFromText(host.name);
    if (!apex.ok() || !wire.ok()) return {DyndnsCode::kDnsErr, {}};
    Status s = zone::WriteHostAddresses(txn, *apex, *wire, ipv4, ipv6, host_ttl_(host.zone));
    if (s.IsNotFound()) return {DyndnsCode::kDnsErr, {}};
    if (!s.ok()) return {DyndnsCode::k911, {}};
    context.ZoneChanged(*apex);
    host.ipv4 = ipv4;
    host.ipv6 = ipv6;
    host.updated_at = now;
    host.updated_from = request_.source;
    host.nochg_count = 0;
    host.nochg_window_start = now;
    host.locked_until = 0;
  }
  if (by_token) {
    host.token_used = true;
    host.token_last_used_at = now;
    host.token_last_used_from = request_.source;
  }
  if (!txn.Put(storage::Table::kHosts, hostname, host.Encode()).ok()) return {DyndnsCode::k911, {}};
  return result;
}

void DyndnsUpdate::Done(const Status& status) {
  if (!status.ok()) {
    // Nothing of this request was committed.
    std::vector<DyndnsHostResult> failed(std::max<size_t>(request_.hostnames.size(), 1),
                                         {DyndnsCode::k911, {}});
    return done_(std::move(failed));
  }
  done_(std::move(results_));
}

std::string FormatDyndnsResults(const std::vector<DyndnsHostResult>& results) {
  std::string body;
  for (const DyndnsHostResult& r : results) {
    body += DyndnsCodeText(r.code);
    if (!r.addresses.empty() && (r.code == DyndnsCode::kGood || r.code == DyndnsCode::kNochg)) {
      body += ' ';
      body += r.addresses;
    }
    body += '\n';
  }
  return body;
}

}  // namespace updns::update
