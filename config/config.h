// The daemon's configuration: one YAML file, loaded and validated here.
// No yaml-cpp type leaves this folder; callers see plain structs.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace updns::config {

// An address to listen on or send to: "127.0.0.1@5353", "::1@5353", or an
// address alone (the default port of the context is used).
struct Endpoint {
  std::string text;  // as written in the file, for messages
  sockaddr_storage address{};
  socklen_t address_length = 0;
  int family() const { return address.ss_family; }
  uint16_t port() const;
};

// The same endpoints as written, in the same order: what a reload compares.
bool SameEndpoints(const std::vector<Endpoint>& a, const std::vector<Endpoint>& b);

struct ServerConfig {
  std::vector<Endpoint> listen;  // DNS over UDP and TCP; default 127.0.0.1@53
  unsigned workers = 0;          // query loops; 0 in the file is invalid, absent = cores
  bool cpu_affinity = false;     // pin query loop i to CPU i (modulo the CPUs we may use)
  unsigned tcp_idle_timeout_ms = 10000;
  unsigned tcp_max_connections = 256;  // per worker loop
  uint16_t udp_payload = 1232;         // our EDNS payload size, 512..4096
  // UDP response rate limiting (server/rrl.h): answers per second per client
  // network and answer kind; 0 = off.
  uint32_t rrl_rate = 0;
  uint32_t rrl_slip = 2;         // over the limit 1 in slip answers goes out TC; 0 = drop all
  uint8_t rrl_ipv4_prefix = 24;  // a client network's size
  uint8_t rrl_ipv6_prefix = 56;
};

struct StorageConfig {
  std::string path = "./var/db";             // LMDB environment directory
  uint64_t map_size = uint64_t{1} << 30;     // bytes; "1GiB", "512MiB", 1048576
  // Each zone's change journal (IXFR's source) keeps at most this many
  // change sets and this many bytes; the oldest go first.
  uint32_t journal_max_entries = 1000;
  uint64_t journal_max_bytes = uint64_t{16} << 20;
  // updnsd reads the whole store once after start (Store::Prefetch), so that
  // queries after a reboot do not wait on the disk page by page.
  bool prefetch = true;
};

// A TSIG key (RFC 8945) for UPDATE, zone transfers and NOTIFY.
struct KeyConfig {
  std::string name;       // lowercased, no trailing dot
  std::string algorithm;  // hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512
  // The raw secret, decoded from base64 written inline (`secret`) or read at
  // load time from `secret_file`. Never log it.
  std::string secret;
  int line = 0;
};

// An address prefix: 127.0.0.0/8, ::1, 2001:db8::/32.
struct Prefix {
  std::string text;  // as written, for messages
  int family = 0;    // AF_INET or AF_INET6
  uint8_t bytes[16] = {};
  unsigned length = 0;  // bits
  bool Contains(const sockaddr* address) const;
};

// Who may send RFC 2136 UPDATE to a zone: one TSIG key, limited to names
// and types.
struct UpdateRuleConfig {
  std::string key;                 // a name from `keys`
  // Lowercased names inside the zone; "*.sub.zone" means every name below
  // sub.zone. Empty = the whole zone.
  std::vector<std::string> names;
  std::vector<uint16_t> types;     // empty = every type but SOA and NS
};

// Notify and transfer settings of the secondaries that follow a zone.
struct NotifyConfig {
  uint32_t retry_initial_ms = 1000;  // first retry of an unanswered NOTIFY,
  uint32_t retry_max_ms = 60000;     // then doubling up to this, until answered
};

// The HTTPS certificate and key, as written in the file (relative paths
// from the daemon's working directory). Read by the HTTP server at start and
// again on SIGHUP, not here: a renewed certificate needs no config reload.
struct TlsConfig {
  std::string cert;  // PEM: the certificate, then its intermediates
  std::string key;   // PEM: its private key, unencrypted
};

// The dyndns2 and JSON API listener. Neither `listen` nor `tls_listen`
// address = HTTP disabled.
struct HttpConfig {
  // "127.0.0.1:8053", "[::1]:8053", "127.0.0.1@8053"; port 80 when absent.
  std::vector<Endpoint> listen;
  // HTTPS, same syntax; port 443 when absent. Non-empty exactly when `tls`
  // is given (the file is refused otherwise).
  std::vector<Endpoint> tls_listen;
  TlsConfig tls;
  uint32_t max_request_size = 8192;   // request line + headers, bytes
  uint32_t max_body_size = 65536;     // bytes
  unsigned read_timeout_ms = 10000;   // a request must arrive within this
  unsigned idle_timeout_ms = 30000;   // keep-alive connection without a request
  unsigned max_connections = 1024;
  // Failed logins, dyndns2 and the JSON API together (server/throttle.h):
  // attempts allowed at once per name and client address (IPv6: its /64)
  // and per client address whatever the names; 0 = no such limit. The
  // allowance refills evenly over the window: beyond the limit, one more
  // attempt every window/limit seconds.
  unsigned login_per_name = 10;
  unsigned login_per_address = 30;
  unsigned login_window_seconds = 300;
  // Who may GET /metrics: clients in these prefixes; empty = everyone
  // (others get 403).
  std::vector<Prefix> metrics_allow;

  bool enabled() const { return !listen.empty() || !tls_listen.empty(); }
};

struct AccountsConfig {
  uint32_t host_limit = 100;  // hosts per new account
};

struct DyndnsConfig {
  unsigned max_hosts = 20;               // host names per update request
  unsigned nochg_limit = 5;              // `nochg` answers tolerated per window...
  unsigned nochg_window_seconds = 600;   // ...of this length
  unsigned abuse_lock_seconds = 3600;    // then the host answers `abuse` this long
};

// Outgoing mail (the password-reset mail queued on unlink), sent by the
// daemon's mailer (server/mailer.h) to one SMTP relay.
struct MailConfig {
  // "smtp://HOST[:PORT]" (port 25; see starttls) or "smtps://HOST[:PORT]"
  // (TLS from the first byte, port 465). Empty = mail off: queued mail stays
  // in the outbox until a relay is configured.
  std::string smtp;
  std::string from;       // envelope sender and From: address; required with smtp
  std::string reset_url;  // the reset mail's link is reset_url + token; http(s)
  bool starttls = false;  // smtp:// only: refuse to send unless the relay takes STARTTLS
  std::string username;   // SMTP AUTH; empty = no AUTH
  // The AUTH password, written inline or read at load time from
  // `password_file` (one trailing newline dropped). A secret: never log it.
  std::string password;
  std::string password_file;            // as written; empty when the password is inline or absent
  uint32_t retry_initial_seconds = 30;  // first retry after a failed attempt,
  uint32_t retry_max_seconds = 3600;    // then doubling per attempt up to this
};

// Lifetimes of what the JSON API hands out.
struct ApiConfig {
  uint32_t session_ttl_seconds = 86400;  // a login session
  uint32_t reset_ttl_seconds = 86400;    // a password-reset link
  uint32_t move_ttl_seconds = 86400;     // a host move token
};

struct ZoneConfig {
  std::string name;  // lowercased, no trailing dot except for the root "."
  std::string file;  // optional master file, relative to the working directory
  uint32_t host_ttl = 60;  // TTL of dyndns hosts' A/AAAA records, 0..86400
  std::vector<Endpoint> notify;          // secondaries sent NOTIFY on every serial change
  std::string notify_key;                // the key NOTIFY is signed with (TSIG); empty = unsigned
  // Zone transfers (AXFR/IXFR) are allowed to a request signed with one of
  // `transfer_keys` or coming from one of `transfer_prefixes`; none = refused.
  std::vector<std::string> transfer_keys;
  std::vector<Prefix> transfer_prefixes;
  std::vector<UpdateRuleConfig> update;  // none = RFC 2136 UPDATE refused
  int line = 0;      // where the zone is declared, for messages
};

struct Config {
  std::string source;  // the file it came from
  ServerConfig server;
  StorageConfig storage;
  std::vector<KeyConfig> keys;
  std::vector<ZoneConfig> zones;
  NotifyConfig notify;
  HttpConfig http;
  AccountsConfig accounts;
  DyndnsConfig dyndns;
  MailConfig mail;
  ApiConfig api;

  // nullptr when `name` (any case, trailing dot or not) is not configured.
  const ZoneConfig* FindZone(std::string_view name) const;
  // nullptr when no key has that name (any case, trailing dot or not).
  const KeyConfig* FindKey(std::string_view name) const;
};

// Reads and validates a file. Errors read "FILE:LINE: key 'a.b': what is wrong"
// and name the first problem found; list indexes count from 0 ("zones[0]").
// Absent keys and sections take the defaults above. A file that cannot be read
// is an IoError; everything else is Invalid (also an unreadable
// mail.password_file, which is read here, relative to the working directory).
Result<Config> LoadConfig(const std::string& path);

// Same from text; `source` names it in messages.
Result<Config> ParseConfig(std::string_view text, std::string_view source);

// Parses "ADDRESS[@PORT]" (IPv4 or IPv6, no brackets needed).
Result<Endpoint> ParseEndpoint(std::string_view text, uint16_t default_port);

// Parses "ADDRESS[/BITS]"; an address alone is a host prefix (/32, /128).
Result<Prefix> ParsePrefix(std::string_view text);

// Parses an HTTP listen address: everything ParseEndpoint takes, and also the
// usual "IPV4:PORT" and "[IPV6]:PORT". A bare IPv6 address takes no ":PORT"
// (it would be part of the address); write "[::1]:8053" or "::1@8053".
Result<Endpoint> ParseHttpEndpoint(std::string_view text, uint16_t default_port);

}  // namespace updns::config
