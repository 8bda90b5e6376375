// updnsd as the primary that standard secondaries follow, end to end:
//   - Knot DNS (knotd) bootstraps dyn.example by AXFR, then follows dyndns2
//     and RFC 2136 (nsupdate) changes by NOTIFY and IXFR, every transfer
//     signed with TSIG; afterwards it answers like updnsd;
//   - NSD does the same with AXFR only (`request-xfr: AXFR`);
//   - a 100,000-host zone goes out by AXFR to a raw TCP client that stops
//     reading for 1.5 s: every record arrives exactly once and updnsd's private
//     memory stays far below the zone's size;
//   - IXFR falls back to AXFR when the journal (storage.journal_entries: 2)
//     no longer reaches back to the client's serial;
//   - the transfer ACL: an unlisted address unsigned -> REFUSED, a bad
//     signature or unknown key -> NOTAUTH with the TSIG error.
//
// Every daemon runs on free loopback ports in a temp dir and is killed with
// its process group when the test ends. Waits poll for conditions with
// deadlines; no fixed sleeps decide an outcome.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <unordered_map>

#include "tests/server/dyndns_fixture.h"

namespace updns::test {
namespace {

// Secrets of the TSIG keys (base64 of "xfr-secret", "ddns-secret").
constexpr const char* kXfrSecret = "eGZyLXNlY3JldA==";
constexpr const char* kDdnsSecret = "ZGRucy1zZWNyZXQ=";
// A secret that is not xfr-key's (base64 of "not-the-secret").
constexpr const char* kWrongSecret = "bm90LXRoZS1zZWNyZXQ=";

const std::string kApex = "dyn.example.";

// The updnsd log line of a transfer of `serial` to 127.0.0.1 with xfr-key.
std::string TransferLogLine(const char* kind, uint32_t serial, const char* format) {
  return "event=transfer type=" + std::string(kind) + " zone=dyn.example. serial=" +
         std::to_string(serial) + " peer=127.0.0.1 key=xfr-key. format=" + format;
}

// A UDP query with up to three tries (1 s each); nullptr when no answer
// with the query's ID came back.
Packet QueryUdp(const SocketAddress& server, const std::string& name, ldns_rr_type type) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    uint16_t id = RandomId();
    std::optional<Bytes> answer =
        ExchangeUdp(server, MakeQuery(name, type, {.id = id}), milliseconds(1000));
    if (!answer || WireId(*answer) != id) continue;
    if (Packet pkt = Parse(*answer)) return pkt;
  }
  return nullptr;
}

// The zone's SOA serial as `server` answers it, or nullopt.
std::optional<uint32_t> SoaSerial(const SocketAddress& server) {
  Packet pkt = QueryUdp(server, kApex, LDNS_RR_TYPE_SOA);
  if (!pkt || ldns_pkt_get_rcode(pkt.get()) != LDNS_RCODE_NOERROR) return std::nullopt;
  ldns_rr_list* answer = ldns_pkt_answer(pkt.get());
  if (ldns_rr_list_rr_count(answer) != 1) return std::nullopt;
  ldns_rr* soa = ldns_rr_list_rr(answer, 0);
  if (ldns_rr_get_type(soa) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(soa) < 3) return std::nullopt;
  return ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
}

std::string RcodeName(unsigned rcode) {
  ldns_lookup_table* entry = ldns_lookup_by_id(ldns_rcodes, static_cast<int>(rcode));
  return entry ? entry->name : "RCODE" + std::to_string(rcode);
}

// What the comparison looks at: rcode, AA, and the answer section.
std::string AnswerSummary(const Packet& pkt) {
  if (!pkt) return "<no answer>";
  std::string text = RcodeName(ldns_pkt_get_rcode(pkt.get()));
  text += ldns_pkt_aa(pkt.get()) ? " aa" : " no-aa";
  for (const std::string& rr : SectionTexts(pkt.get(), LDNS_SECTION_ANSWER)) text += "\n" + rr;
  return text;
}

struct Question {
  std::string name;  // absolute
  ldns_rr_type type;
};

std::string QuestionText(const Question& q) {
  char* type = ldns_rr_type2str(q.type);
  std::string text = q.name + " " + (type ? type : "?");
  std::free(type);
  return text;
}

// ---------------------------------------------------------------------------
// updnsd as a primary

struct PrimaryOptions {
  // Pick one more free port, for a secondary that updnsd sends NOTIFY to.
  bool with_secondary = false;
  std::string notify_key;              // the zone's `notify_key:`; empty = unsigned NOTIFY
  std::string transfer = "[xfr-key]";  // the zone's `transfer:` list, YAML
  uint32_t journal_entries = 0;        // storage.journal_entries; 0 = the default
  std::string map_size = "64MiB";
  std::string zone_text;  // the zone file; empty = HttpUpdnsd::ZoneText()
  milliseconds start_timeout = milliseconds(20000);
};

// updnsd with keys xfr-key and ddns-key, dyn.example with the transfer ACL
// of the options, UPDATE by ddns-key for A/AAAA/TXT below the apex, and
// NOTIFY to 127.0.0.1@secondary_port() when asked for.
class XfrPrimary : public DyndnsDaemon {
 public:
  bool Start(const PrimaryOptions& options, std::string* error) {
    options_ = options;
    zone_written_ = false;
    without_file_ = false;
    return StartFresh([this] { return XfrConfigText(); },
                      [this](std::string* e) { return LaunchPrimary(e); }, error,
                      options.with_secondary ? &secondary_port_ : nullptr);
  }

  uint16_t secondary_port() const { return secondary_port_; }

  // Rewrites the config from `options` and sends SIGHUP; true once the
  // reload is logged as applied.
  bool Reload(const PrimaryOptions& options) {
    options_ = options;
    return ReloadWith(XfrConfigText());
  }

  // SIGTERM, then again on the same store and ports with the zone's
  // `file:` dropped from the config: the zone is served from the store
  // only, and the new process never reads the master file.
  bool RestartWithoutZoneFile(std::string* error) {
    if (!Stop()) {
      *error = "updnsd did not stop on SIGTERM";
      return false;
    }
    without_file_ = true;
    WriteFile(config_path(), XfrConfigText());
    return LaunchPrimary(error);
  }

  std::string XfrConfigText() const {
    std::string d = dir().string();
    std::string text;
    text += "server:\n  listen: [\"127.0.0.1@" + std::to_string(dns_port_) + "\"]\n";
    text += "  workers: 1\n";
    text += "storage:\n  path: " + d + "/db\n  map_size: " + options_.map_size + "\n";
    if (options_.journal_entries != 0)
      text += "  journal_entries: " + std::to_string(options_.journal_entries) + "\n";
    text += "http:\n  listen: [\"127.0.0.1:" + std::to_string(http_port_) + "\"]\n";
    text += "keys:\n";
    text +=
        "  - name: xfr-key\n    algorithm: hmac-sha256\n    secret: " + std::string(kXfrSecret) +
        "\n";
    text +=
        "  - name: ddns-key\n    algorithm: hmac-sha256\n    secret: " + std::string(kDdnsSecret) +
        "\n";
    // Quick resends: a secondary still starting up gets its NOTIFY soon after.
    text += "notify:\n  retry_initial: 200\n  retry_max: 2000\n";
    text += "zones:\n  - name: dyn.example\n";
    if (!without_file_) text += "    file: " + zone_path().string() + "\n";
    text += "    host_ttl: 60\n";
    if (options_.with_secondary)
      text += "    notify: [\"127.0.0.1@" + std::to_string(secondary_port_) + "\"]\n";
    if (!options_.notify_key.empty()) text += "    notify_key: " + options_.notify_key + "\n";
    text += "    transfer: " + options_.transfer + "\n";
    text += "    update:\n      - key: ddns-key\n        names: [\"*.dyn.example\"]\n";
    text += "        types: [A, AAAA, TXT]\n";
    return text;
  }

  // Waits (options.start_timeout: a big zone is imported first) until updnsd
  // answers the SOA, has logged its start and takes HTTP connections.
  bool LaunchPrimary(std::string* error) {
    // Once: StartFresh wrote the default zone before its first launch.
    if (!options_.zone_text.empty() && !zone_written_) WriteFile(zone_path(), options_.zone_text);
    zone_written_ = true;
    if (!StartProcess(error)) return false;
    auto deadline = Clock::now() + options_.start_timeout;
    while (Clock::now() < deadline && process_.Running()) {
      if (log().find("event=started") != std::string::npos && Serial() &&
          HttpConnection().Connect(http_port_, milliseconds(200))) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    *error = process_.Running()
                 ? "updnsd did not answer in time"
                 : "updnsd exited at start (" + DescribeWaitStatus(process_.status()) + ")";
    *error += "; its log:\n" + log();
    process_.Kill();
    return false;
  }

  // updnsctl, failing the test on a non-zero exit.
  void CtlOk(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    CommandResult r = Ctl(args, stdin_text);
    EXPECT_EQ(r.exit_code, 0) << "updnsctl " << args[0] << " " << args[1] << ": " << r.Describe();
  }

  // A host of a new account with a fresh update token; returns the token.
  std::string AddHostWithToken(const std::string& account, const std::string& fqdn) {
    CtlOk({"account", "add", account, "--email", account + "@example.org"}, "password 1234\n");
    CtlOk({"host", "add", fqdn, "--account", account});
    CommandResult r = Ctl({"token", "create", fqdn});
    EXPECT_EQ(r.exit_code, 0) << "token create " << fqdn << ": " << r.Describe();
    return r.out.substr(0, r.out.find('\n'));
  }

  // GET /nic/update with a host's token; the body's lines.
  std::vector<std::string> Dyndns(const std::string& fqdn, const std::string& token,
                                  const std::string& params) {
    HttpConnection connection;
    if (!connection.Connect(http_port_)) return {"<cannot connect>"};
    HttpResult r = connection.Exchange(UpdateRequest("/nic/update?hostname=" + fqdn + "&" + params,
                                                     BasicAuth(fqdn, token), false));
    if (r.status != 200) return {"HTTP " + std::to_string(r.status) + ": " + r.raw};
    return r.Lines();
  }

  // nsupdate -y hmac-sha256:ddns-key:SECRET with `commands` and one send.
  CommandResult Nsupdate(const std::vector<std::string>& commands) const {
    std::string script = "server 127.0.0.1 " + std::to_string(dns_port_) + "\nzone dyn.example\n";
    for (const std::string& c : commands) script += c + "\n";
    script += "send\n";
    return RunCommand(
        {"nsupdate", "-t", "10", "-y", std::string("hmac-sha256:ddns-key:") + kDdnsSecret}, script,
        dir(), milliseconds(30000));
  }

 private:
  PrimaryOptions options_;
  bool zone_written_ = false;
  bool without_file_ = false;
  uint16_t secondary_port_ = 0;
};

// ---------------------------------------------------------------------------
// Secondaries

// Knot DNS 3.2 as a secondary of 127.0.0.1@primary_port for dyn.example,
// transfers and SOA checks signed with xfr-key, NOTIFY accepted from
// 127.0.0.1 only when signed with xfr-key (updnsd's notify_key). Everything in its temp dir; logs
// at info level to knot.log.
class KnotSecondary {
 public:
  bool Start(uint16_t port, uint16_t primary_port, std::string* error) {
    if (!dir_.ok()) {
      *error = "cannot create a temp dir";
      return false;
    }
    port_ = port;
    std::string d = dir_.path().string();
    std::string conf;
    conf += "server:\n    rundir: " + d + "\n";
    conf += "    listen: 127.0.0.1@" + std::to_string(port) + "\n";
    conf += "    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n";
    conf += "log:\n  - target: stderr\n    any: info\n";
    conf += "database:\n    storage: " + d + "\n";
    conf += "key:\n  - id: xfr-key\n    algorithm: hmac-sha256\n    secret: " +
            std::string(kXfrSecret) + "\n";
    conf += "remote:\n  - id: primary\n    address: 127.0.0.1@" + std::to_string(primary_port) +
            "\n    key: xfr-key\n";
    conf +=
        "acl:\n  - id: notify-from-primary\n    address: 127.0.0.1\n    key: xfr-key\n"
        "    action: notify\n";
    conf += "template:\n  - id: default\n    storage: " + d + "\n    zonefile-sync: -1\n";
    conf += "zone:\n  - domain: dyn.example\n    master: primary\n";
    conf += "    acl: notify-from-primary\n";
    WriteFile(dir_.path() / "knot.conf", conf);
    if (!process_.Start({"/usr/sbin/knotd", "-c", (dir_.path() / "knot.conf").string()},
                        dir_.path(), log_path(), log_path(), error)) {
      return false;
    }
    auto ready = [&] {
      return log().find("server started") != std::string::npos &&
             QueryUdp(address(), kApex, LDNS_RR_TYPE_SOA) != nullptr;
    };
    return AwaitStart(
        process_, "knotd", "knotd did not start within 10 s", ready, milliseconds(20),
        [&] { return log(); }, error);
  }

  SocketAddress address() const { return Loopback4(port_); }
  std::string log() const { return ReadFile(log_path()); }
  std::filesystem::path log_path() const { return dir_.path() / "knot.log"; }
  Process& process() { return process_; }

 private:
  TempDir dir_;
  Process process_;
  uint16_t port_ = 0;
};

// NSD 4.6 as a secondary: `request-xfr: AXFR` from the primary with
// xfr-key, NOTIFY from 127.0.0.1 without a key. Log at verbosity 2 in
// nsd.log.
class NsdSecondary {
 public:
  bool Start(uint16_t port, uint16_t primary_port, std::string* error) {
    if (!dir_.ok()) {
      *error = "cannot create a temp dir";
      return false;
    }
    port_ = port;
    std::string d = dir_.path().string();
    std::string text = "server:\n";
    text += "  port: " + std::to_string(port) + "\n";
    text += "  ip-address: 127.0.0.1\n  do-ip4: yes\n  do-ip6: no\n";
    text += "  username: \"\"\n  chroot: \"\"\n";
    text += "  zonesdir: \"" + d + "\"\n  xfrdir: \"" + d + "\"\n";
    text += "  pidfile: \"" + d + "/nsd.pid\"\n";
    text += "  xfrdfile: \"" + d + "/xfrd.state\"\n";
    text += "  zonelistfile: \"" + d + "/zone.list\"\n";
    text += "  logfile: \"" + d + "/nsd.log\"\n";
    text += "  database: \"\"\n  verbosity: 2\n  server-count: 1\n  refuse-any: no\n";
    text += "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n";
    text += "remote-control:\n  control-enable: no\n";
    text += "key:\n  name: xfr-key\n  algorithm: hmac-sha256\n  secret: \"" +
            std::string(kXfrSecret) + "\"\n";
    text += "zone:\n  name: dyn.example\n  zonefile: \"" + d + "/dyn.example.zone\"\n";
    text += "  request-xfr: AXFR 127.0.0.1@" + std::to_string(primary_port) + " xfr-key\n";
    text += "  allow-notify: 127.0.0.1 NOKEY\n";
    WriteFile(dir_.path() / "nsd.conf", text);
    if (!process_.Start({kNsdPath, "-d", "-c", (dir_.path() / "nsd.conf").string()}, dir_.path(),
                        dir_.path() / "nsd.out", dir_.path() / "nsd.out", error)) {
      return false;
    }
    auto ready = [&] { return QueryUdp(address(), kApex, LDNS_RR_TYPE_SOA) != nullptr; };
    return AwaitStart(
        process_, "nsd", "nsd did not answer within 10 s", ready, milliseconds(20),
        [&] { return log(); }, error);
  }

  SocketAddress address() const { return Loopback4(port_); }
  std::string log() const {
    return ReadFile(dir_.path() / "nsd.out") + ReadFile(dir_.path() / "nsd.log");
  }
  Process& process() { return process_; }

 private:
  TempDir dir_;
  Process process_;
  uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------
// A zone transfer client on raw TCP, with ldns for the messages

struct TransferQuery {
  ldns_rr_type type = LDNS_RR_TYPE_AXFR;
  uint32_t ixfr_serial = 0;          // IXFR: the client's serial
  std::string key_name;              // sign with this key ("" = unsigned)...
  std::string key_secret;            // ...and this base64 secret
  std::string source = "127.0.0.1";  // the client's address
  milliseconds stall{0};             // stop reading this long after the first message
};

struct TransferResult {
  std::string error;   // empty when a complete answer came
  unsigned rcode = 0;  // of the first message
  size_t messages = 0;
  uint64_t bytes = 0;                 // DNS messages, without the length prefixes
  std::vector<std::string> records;   // RrText of every answer RR, in order
  std::vector<uint32_t> soa_serials;  // serial of each SOA among them, in order
  bool second_is_soa = false;         // IXFR incremental format
  Packet first;                       // the first message
  bool first_tsig_valid = false;      // signed request: the first answer's TSIG verified
};

// Connects from `source` to 127.0.0.1@port, sends the request and reads
// the answer: until the second SOA of the AXFR format, the third of the
// incremental format, or the end of a single-message answer (an error, or
// IXFR "up to date"). Every message is checked to parse and carry NOERROR.
TransferResult RunTransfer(uint16_t port, const TransferQuery& query,
                           milliseconds timeout = milliseconds(60000)) {
  TransferResult result;
  // The request.
  ldns_rdf* owner = ldns_dname_new_frm_str(kApex.c_str());
  Packet request(ldns_pkt_query_new(owner, query.type, LDNS_RR_CLASS_IN, 0));
  ldns_pkt_set_id(request.get(), RandomId());
  if (query.type == LDNS_RR_TYPE_IXFR) {
    ldns_rr* soa = nullptr;
    std::string soa_text =
        kApex + " 0 IN SOA . . " + std::to_string(query.ixfr_serial) + " 0 0 0 0";
    if (ldns_rr_new_frm_str(&soa, soa_text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) {
      result.error = "cannot build the IXFR SOA";
      return result;
    }
    ldns_pkt_push_rr(request.get(), LDNS_SECTION_AUTHORITY, soa);
  }
  ldns_rdf* request_mac = nullptr;
  if (!query.key_name.empty()) {
    if (ldns_pkt_tsig_sign(request.get(), query.key_name.c_str(), query.key_secret.c_str(), 300,
                           "hmac-sha256.", nullptr) != LDNS_STATUS_OK) {
      result.error = "ldns cannot sign the request";
      return result;
    }
    request_mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(request.get()), 3));
  }
  std::unique_ptr<ldns_rdf, void (*)(ldns_rdf*)> mac_owner(request_mac, ldns_rdf_deep_free);
  uint8_t* wire = nullptr;
  size_t wire_size = 0;
  if (ldns_pkt2wire(&wire, request.get(), &wire_size) != LDNS_STATUS_OK) {
    result.error = "cannot encode the request";
    return result;
  }
  Bytes request_wire(wire, wire + wire_size);
  std::free(wire);

  // The connection, from `source`.
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, query.source.c_str(), &from.sin_addr);
  SocketAddress to = Loopback4(port);
  if (!fd.ok() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd.get(), to.get(), to.length) != 0) {
    result.error = std::string("cannot connect from ") + query.source + ": " + std::strerror(errno);
    return result;
  }
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  Bytes framed = Framed(request_wire);
  if (::send(fd.get(), framed.data(), framed.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(framed.size())) {
    result.error = "cannot send the request";
    return result;
  }
  auto read_exactly = [&](uint8_t* out, size_t count) {
    size_t done = 0;
    while (done < count) {
      ssize_t n = ::recv(fd.get(), out + done, count - done, 0);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return false;
      }
    }
    return true;
  };

  auto deadline = Clock::now() + timeout;
  uint32_t final_serial = 0;
  size_t final_soas = 0;
  Bytes message;
  while (Clock::now() < deadline) {
    uint8_t length[2];
    if (!read_exactly(length, 2)) {
      result.error = "connection closed or timed out after " + std::to_string(result.messages) +
                     " messages, " + std::to_string(result.records.size()) + " records";
      return result;
    }
    message.resize(static_cast<size_t>(length[0] << 8 | length[1]));
    if (!read_exactly(message.data(), message.size())) {
      result.error = "a message was cut short";
      return result;
    }
    ++result.messages;
    result.bytes += message.size();
    Packet pkt = Parse(message);
    if (!pkt) {
      result.error = "message " + std::to_string(result.messages) + " does not parse";
      return result;
    }
    unsigned rcode = ldns_pkt_get_rcode(pkt.get());
    if (result.messages == 1) {
      result.rcode = rcode;
      if (request_mac != nullptr) {
        result.first_tsig_valid =
            ldns_pkt_tsig_verify(pkt.get(), message.data(), message.size(), query.key_name.c_str(),
                                 query.key_secret.c_str(), request_mac);
      }
    }
    if (rcode != LDNS_RCODE_NOERROR) {
      if (result.messages != 1)
        result.error =
            "message " + std::to_string(result.messages) + " has rcode " + RcodeName(rcode);
      if (result.messages == 1) result.first = std::move(pkt);
      return result;
    }
    ldns_rr_list* answer = ldns_pkt_answer(pkt.get());
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer); ++i) {
      ldns_rr* rr = ldns_rr_list_rr(answer, i);
      result.records.push_back(RrText(rr));
      if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA) continue;
      uint32_t serial = ldns_rdf2native_int32(ldns_rr_rdf(rr, 2));
      result.soa_serials.push_back(serial);
      if (result.records.size() == 1) final_serial = serial;
      if (final_soas == 0 && result.records.size() != 1) continue;  // the first RR was no SOA
      if (result.records.size() == 2) result.second_is_soa = true;
      if (serial == final_serial) ++final_soas;
    }
    if (result.records.empty() || result.soa_serials.empty() || final_soas == 0) {
      result.error = "the answer does not start with the SOA";
      return result;
    }
    bool single_soa =
        query.type == LDNS_RR_TYPE_IXFR && result.messages == 1 && result.records.size() == 1;
    if (result.messages == 1) result.first = std::move(pkt);
    if (single_soa) return result;  // up to date
    if (final_soas == (result.second_is_soa ? 3u : 2u)) return result;
    if (result.messages == 1 && query.stall.count() > 0) {
      std::this_thread::sleep_for(query.stall);
    }
  }
  result.error = "the transfer did not end in time";
  return result;
}

// ---------------------------------------------------------------------------
// Memory of a process, from /proc/PID/status

struct MemorySample {
  uint64_t rss_kib = 0;       // VmRSS: everything resident, the LMDB map's file pages too
  uint64_t rss_anon_kib = 0;  // RssAnon: the process's private memory (heap, stacks)
  uint64_t hwm_kib = 0;       // VmHWM: peak VmRSS since start or the last clear_refs 5
};

MemorySample ReadMemory(pid_t pid) {
  MemorySample sample;
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  auto field = [&](const std::string& name) -> uint64_t {
    size_t at = status.find("\n" + name + ":");
    if (at == std::string::npos) return 0;
    return std::strtoull(status.c_str() + at + name.size() + 2, nullptr, 10);
  };
  sample.rss_kib = field("VmRSS");
  sample.rss_anon_kib = field("RssAnon");
  sample.hwm_kib = field("VmHWM");
  return sample;
}

// Samples a process's memory every millisecond on a thread of its own and
// keeps the peaks.
class MemoryWatch {
 public:
  explicit MemoryWatch(pid_t pid) : pid_(pid) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        MemorySample s = ReadMemory(pid_);
        peak_rss_.store(std::max(peak_rss_.load(), s.rss_kib));
        peak_anon_.store(std::max(peak_anon_.load(), s.rss_anon_kib));
        samples_.fetch_add(1);
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
  }
  ~MemoryWatch() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  uint64_t peak_rss_kib() const { return peak_rss_.load(); }
  uint64_t peak_anon_kib() const { return peak_anon_.load(); }
  uint64_t samples() const { return samples_.load(); }

 private:
  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> peak_rss_{0}, peak_anon_{0}, samples_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// The secondaries follow the primary

// What both servers are asked after each round of changes. `home` has no
// records until the first round (see HostWithoutRecordsAnswersAlike).
std::vector<Question> ComparedQuestions(bool with_home) {
  std::vector<Question> questions = {
      {kApex, LDNS_RR_TYPE_SOA},
      {kApex, LDNS_RR_TYPE_NS},
      {"ns1." + kApex, LDNS_RR_TYPE_A},
      {"home." + kApex, LDNS_RR_TYPE_A},
      {"home." + kApex, LDNS_RR_TYPE_AAAA},
      {"home." + kApex, LDNS_RR_TYPE_TXT},
      {"office." + kApex, LDNS_RR_TYPE_A},
      {"foo." + kApex, LDNS_RR_TYPE_A},
      {"foo." + kApex, LDNS_RR_TYPE_TXT},
      {"bar." + kApex, LDNS_RR_TYPE_AAAA},
      {"gone." + kApex, LDNS_RR_TYPE_A},
      {"nothing-here." + kApex, LDNS_RR_TYPE_A},
  };
  if (!with_home)
    std::erase_if(questions, [](const Question& q) { return q.name.rfind("home.", 0) == 0; });
  return questions;
}

// Expects `secondary` to answer every question exactly as `primary` does
// (rcode, AA, answer section) and returns the primary's answers by question.
std::map<std::string, std::string> ExpectSameAnswers(const SocketAddress& primary,
                                                     const SocketAddress& secondary,
                                                     const std::string& secondary_name,
                                                     bool with_home = true) {
  std::map<std::string, std::string> answers;
  for (const Question& q : ComparedQuestions(with_home)) {
    std::string ours = AnswerSummary(QueryUdp(primary, q.name, q.type));
    std::string theirs = AnswerSummary(QueryUdp(secondary, q.name, q.type));
    EXPECT_EQ(theirs, ours) << QuestionText(q) << ": " << secondary_name
                            << " (left) answers unlike updnsd (right)";
    answers[QuestionText(q)] = ours;
  }
  return answers;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// updnsd with a secondary, and the changes both secondary tests make in
// three rounds of one or more commits each: a dyndns2 update of two hosts
// over HTTP, then nsupdate adds, then an nsupdate that replaces and deletes.
class SecondaryTest : public ::testing::Test {
 protected:
  void StartPrimary(std::string notify_key = "") {
    std::string error;
    PrimaryOptions options;
    options.with_secondary = true;
    options.notify_key = std::move(notify_key);
    ASSERT_TRUE(primary_.Start(options, &error)) << error;
    // Provisioned before the secondary starts: the first AXFR carries them.
    home_token_ = primary_.AddHostWithToken("alice", "home.dyn.example");
    office_token_ = primary_.AddHostWithToken("bob", "office.dyn.example");
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(primary_.Dyndns("office.dyn.example", office_token_, "myip=203.0.113.9"),
              std::vector<std::string>{"good 203.0.113.9"});
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << primary_.log();
    EXPECT_TRUE(primary_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(primary_.Stop()) << "updnsd did not stop on SIGTERM";
  }

  // Waits until `secondary` answers the primary's current serial.
  bool WaitSynced(const SocketAddress& secondary, uint32_t* serial) {
    std::optional<uint32_t> want = primary_.Serial();
    if (!want) return false;
    *serial = *want;
    return WaitUntil([&] { return SoaSerial(secondary) == want; }, milliseconds(30000));
  }

  // Round `round` of the changes; false (with a failure) when the primary
  // did not take them.
  bool ChangeRound(int round) {
    if (round == 0) return DyndnsRound();
    if (round == 1) return NsupdateAddRound();
    return NsupdateReplaceRound();
  }

  // Round 0: dyndns2 over HTTP (token auth), IPv4 and IPv6 of home and a new
  // IPv4 of office.
  bool DyndnsRound() {
    std::vector<std::string> home =
        primary_.Dyndns("home.dyn.example", home_token_, "myip=198.51.100.7&myipv6=2001:db8::7");
    std::vector<std::string> office =
        primary_.Dyndns("office.dyn.example", office_token_, "myip=203.0.113.10");
    EXPECT_EQ(home, std::vector<std::string>{"good 198.51.100.7,2001:db8::7"});
    EXPECT_EQ(office, std::vector<std::string>{"good 203.0.113.10"});
    return home == std::vector<std::string>{"good 198.51.100.7,2001:db8::7"} &&
           office == std::vector<std::string>{"good 203.0.113.10"};
  }

  // Round 1: RFC 2136 adds (A, TXT, AAAA) with TSIG.
  bool NsupdateAddRound() {
    CommandResult r = primary_.Nsupdate({"update add foo.dyn.example. 60 A 192.0.2.10",
                                         "update add foo.dyn.example. 60 TXT \"hello world\"",
                                         "update add bar.dyn.example. 60 AAAA 2001:db8::10",
                                         "update add gone.dyn.example. 60 A 192.0.2.66"});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return r.exit_code == 0;
  }

  // Round 2: replace foo's A, delete gone, add a TXT to home.
  bool NsupdateReplaceRound() {
    CommandResult r = primary_.Nsupdate(
        {"update delete foo.dyn.example. A", "update add foo.dyn.example. 60 A 192.0.2.11",
         "update delete gone.dyn.example.", "update add home.dyn.example. 60 TXT \"router\""});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return r.exit_code == 0;
  }

  // The primary's own answers after round 3, so that equal answers cannot
  // mean "both empty".
  void ExpectFinalContent(std::map<std::string, std::string>& answers) {
    EXPECT_TRUE(Contains(answers["home.dyn.example. A"], "home.dyn.example. 60 IN A 198.51.100.7"))
        << answers["home.dyn.example. A"];
    EXPECT_TRUE(Contains(answers["home.dyn.example. AAAA"], "IN AAAA 2001:db8::7"))
        << answers["home.dyn.example. AAAA"];
    EXPECT_TRUE(Contains(answers["home.dyn.example. TXT"], "IN TXT \"router\""))
        << answers["home.dyn.example. TXT"];
    EXPECT_TRUE(Contains(answers["office.dyn.example. A"], "IN A 203.0.113.10"))
        << answers["office.dyn.example. A"];
    EXPECT_TRUE(Contains(answers["foo.dyn.example. A"], "IN A 192.0.2.11") &&
                !Contains(answers["foo.dyn.example. A"], "192.0.2.10"))
        << answers["foo.dyn.example. A"];
    EXPECT_TRUE(Contains(answers["foo.dyn.example. TXT"], "\"hello world\""))
        << answers["foo.dyn.example. TXT"];
    EXPECT_TRUE(Contains(answers["bar.dyn.example. AAAA"], "IN AAAA 2001:db8::10"))
        << answers["bar.dyn.example. AAAA"];
    EXPECT_EQ(answers["gone.dyn.example. A"].rfind("NXDOMAIN aa", 0), 0u)
        << answers["gone.dyn.example. A"];
    EXPECT_EQ(answers["nothing-here.dyn.example. A"].rfind("NXDOMAIN aa", 0), 0u)
        << answers["nothing-here.dyn.example. A"];
  }


  XfrPrimary primary_;
  std::string home_token_, office_token_;
};

class KnotSecondaryTest : public SecondaryTest {
 protected:
  void SetUp() override {
    if (!HaveProgram("/usr/sbin/knotd")) GTEST_SKIP() << "knotd is not installed (apt knot)";
    // Knot takes NOTIFY signed with xfr-key only; NSD below takes it unsigned.
    ASSERT_NO_FATAL_FAILURE(StartPrimary("xfr-key"));
    std::string error;
    ASSERT_TRUE(knot_.Start(primary_.secondary_port(), primary_.dns_port(), &error)) << error;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "knotd log:\n" << knot_.log();
    if (!IsSkipped()) SecondaryTest::TearDown();
  }
  KnotSecondary knot_;
};

TEST_F(KnotSecondaryTest, BootstrapsByAxfrThenFollowsDyndnsAndNsupdateByNotifyAndIxfr) {
  // Bootstrap: AXFR, signed with xfr-key (the ACL lists only the key).
  uint32_t serial = 0;
  ASSERT_TRUE(WaitSynced(knot_.address(), &serial))
      << "knotd never answered the primary's serial " << serial << "; knotd log:\n"
      << knot_.log();
  EXPECT_TRUE(Contains(primary_.log(), TransferLogLine("AXFR", serial, "full"))) << primary_.log();
  EXPECT_TRUE(Contains(knot_.log(), "AXFR, incoming, remote 127.0.0.1@" +
                                        std::to_string(primary_.dns_port()) + ", finished"))
      << knot_.log();
  ExpectSameAnswers(primary_.dns(), knot_.address(), "knotd", /*with_home=*/false);

  // Each round: NOTIFY, then Knot's IXFR, answered incrementally. Knot's
  // next refresh by timer is an hour away (SOA refresh 3600), so following
  // within the deadline takes the NOTIFY.
  std::vector<uint32_t> serials;
  for (int round = 0; round < 3; ++round) {
    uint32_t before = serial;
    size_t notifies_before = CountOf(knot_.log(), "notify, incoming");
    ASSERT_TRUE(ChangeRound(round)) << "round " << round << " of changes failed";
    ASSERT_TRUE(WaitSynced(knot_.address(), &serial))
        << "round " << round << ": knotd did not reach serial " << serial << "; knotd log:\n"
        << knot_.log();
    ASSERT_NE(serial, before) << "round " << round << " did not change the serial";
    serials.push_back(serial);
    EXPECT_GT(CountOf(knot_.log(), "notify, incoming"), notifies_before) << knot_.log();
    EXPECT_TRUE(Contains(primary_.log(), TransferLogLine("IXFR", serial, "incremental")))
        << "round " << round << "\n"
        << primary_.log();
  }

  std::string klog = knot_.log();
  std::string remote = "remote 127.0.0.1@" + std::to_string(primary_.dns_port());
  EXPECT_EQ(CountOf(klog, "AXFR, incoming, " + remote + ", started"), 1u)
      << "only the bootstrap is an AXFR\n"
      << klog;
  EXPECT_GE(CountOf(klog, "IXFR, incoming, " + remote + ", finished"), 3u) << klog;
  EXPECT_FALSE(Contains(klog, "fallback to AXFR")) << klog;
  EXPECT_FALSE(Contains(klog, "error")) << klog;
  EXPECT_TRUE(Contains(klog, "zone updated")) << klog;
  EXPECT_TRUE(primary_.WaitForLog(
      "event=notify_acknowledged zone=dyn.example. serial=" + std::to_string(serials.back()) +
          " peer=127.0.0.1@" + std::to_string(primary_.secondary_port()),
      milliseconds(10000)))
      << primary_.log();
  // No transfer went out unsigned or refused; every NOTIFY was signed (Knot
  // refuses others) and answered with a signature that verified.
  EXPECT_FALSE(Contains(primary_.log(), "key=-")) << primary_.log();
  EXPECT_FALSE(Contains(primary_.log(), "refused")) << primary_.log();
  EXPECT_FALSE(Contains(primary_.log(), "event=notify_rejected")) << primary_.log();
  EXPECT_FALSE(Contains(primary_.log(), "event=notify_answer_unverified")) << primary_.log();

  std::map<std::string, std::string> answers =
      ExpectSameAnswers(primary_.dns(), knot_.address(), "knotd");
  ExpectFinalContent(answers);
}

// A host added with updnsctl that has never been updated owns no records:
// whatever updnsd answers for it, a secondary (which sees only the
// transferred records) must answer the same.
TEST_F(KnotSecondaryTest, HostWithoutRecordsAnswersAlike) {
  uint32_t serial = 0;
  ASSERT_TRUE(WaitSynced(knot_.address(), &serial)) << knot_.log();
  for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA}) {
    Question q{"home." + kApex, type};
    EXPECT_EQ(AnswerSummary(QueryUdp(knot_.address(), q.name, q.type)),
              AnswerSummary(QueryUdp(primary_.dns(), q.name, q.type)))
        << QuestionText(q) << ": knotd (left) answers unlike updnsd (right)";
  }
}

class NsdSecondaryTest : public SecondaryTest {
 protected:
  void SetUp() override {
    if (!NsdInstalled()) GTEST_SKIP() << "nsd is not installed";
    ASSERT_NO_FATAL_FAILURE(StartPrimary());
    std::string error;
    ASSERT_TRUE(nsd_.Start(primary_.secondary_port(), primary_.dns_port(), &error)) << error;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "nsd log:\n" << nsd_.log();
    if (!IsSkipped()) SecondaryTest::TearDown();
  }
  NsdSecondary nsd_;
};

TEST_F(NsdSecondaryTest, FollowsByNotifyAndAxfrSignedWithTsig) {
  uint32_t serial = 0;
  ASSERT_TRUE(WaitSynced(nsd_.address(), &serial))
      << "nsd never answered the primary's serial " << serial << "; nsd log:\n"
      << nsd_.log();
  EXPECT_TRUE(Contains(primary_.log(), TransferLogLine("AXFR", serial, "full"))) << primary_.log();
  ExpectSameAnswers(primary_.dns(), nsd_.address(), "nsd", /*with_home=*/false);

  for (int round = 0; round < 3; ++round) {
    uint32_t before = serial;
    ASSERT_TRUE(ChangeRound(round)) << "round " << round << " of changes failed";
    ASSERT_TRUE(WaitSynced(nsd_.address(), &serial))
        << "round " << round << ": nsd did not reach serial " << serial << "; nsd log:\n"
        << nsd_.log();
    ASSERT_NE(serial, before);
    EXPECT_TRUE(Contains(primary_.log(), TransferLogLine("AXFR", serial, "full")))
        << "round " << round << "\n"
        << primary_.log();
    EXPECT_TRUE(Contains(nsd_.log(), "received update to serial " + std::to_string(serial)))
        << nsd_.log();
  }
  EXPECT_TRUE(Contains(nsd_.log(), "TSIG verified with key xfr-key")) << nsd_.log();
  EXPECT_FALSE(Contains(primary_.log(), "type=IXFR")) << "NSD was told to use AXFR only";
  EXPECT_FALSE(Contains(primary_.log(), "key=-")) << primary_.log();
  EXPECT_FALSE(Contains(primary_.log(), "refused")) << primary_.log();
  EXPECT_TRUE(primary_.WaitForLog(
      "event=notify_acknowledged zone=dyn.example. serial=" + std::to_string(serial) +
          " peer=127.0.0.1@" + std::to_string(primary_.secondary_port()),
      milliseconds(10000)))
      << primary_.log();

  std::map<std::string, std::string> answers =
      ExpectSameAnswers(primary_.dns(), nsd_.address(), "nsd");
  ExpectFinalContent(answers);
}

// ---------------------------------------------------------------------------
// A big zone: every record once, memory bounded

constexpr int kBigHosts = 100000;

// dyn.example with kBigHosts hosts: an A each, an AAAA every second one.
std::string BigZoneText() {
  std::string text = HttpUpdnsd::ZoneText();
  text.reserve(text.size() + kBigHosts * 60);
  char line[128];
  for (int i = 0; i < kBigHosts; ++i) {
    std::snprintf(line, sizeof line, "host%d 60 IN A 10.%d.%d.%d\n", i, i >> 16 & 255, i >> 8 & 255,
                  i & 255);
    text += line;
    if (i % 2 == 0) {
      std::snprintf(line, sizeof line, "host%d 60 IN AAAA 2001:db8:%x:%x::1\n", i, i >> 16,
                    i & 0xffff);
      text += line;
    }
  }
  return text;
}

// The zone's RRs as RrText, parsed from the master file by ldns.
std::vector<std::string> ZoneRecords(const std::string& text, std::string* error) {
  std::vector<std::string> records;
  FILE* in = fmemopen(const_cast<char*>(text.data()), text.size(), "r");
  if (in == nullptr) {
    *error = "fmemopen failed";
    return records;
  }
  ldns_zone* zone = nullptr;
  int line = 0;
  ldns_status status = ldns_zone_new_frm_fp_l(&zone, in, nullptr, 3600, LDNS_RR_CLASS_IN, &line);
  std::fclose(in);
  if (status != LDNS_STATUS_OK) {
    *error = std::string("ldns cannot parse the zone: ") + ldns_get_errorstr_by_id(status) +
             " at line " + std::to_string(line);
    return records;
  }
  records.push_back(RrText(ldns_zone_soa(zone)));
  ldns_rr_list* rrs = ldns_zone_rrs(zone);
  for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); ++i)
    records.push_back(RrText(ldns_rr_list_rr(rrs, i)));
  ldns_zone_deep_free(zone);
  return records;
}

TEST(XfrBigZoneTest, AxfrOf100kHostsSendsEveryRecordOnceWithBoundedMemory) {
  std::string zone_text = BigZoneText();
  std::string error;
  std::vector<std::string> expected = ZoneRecords(zone_text, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(expected.size(), 3u + kBigHosts + kBigHosts / 2);

  XfrPrimary primary;
  PrimaryOptions options;
  options.transfer = "[xfr-key, 127.0.0.0/8]";
  options.map_size = "512MiB";
  options.zone_text = zone_text;
  options.start_timeout = milliseconds(120000);  // the import of 150k records comes first
  ASSERT_TRUE(primary.Start(options, &error)) << error;
  ASSERT_TRUE(Contains(primary.log(), "records=150003")) << primary.log();
  // Reading the master file (at every start, to see whether it changed)
  // leaves tens of MiB of freed heap in the process, which malloc would
  // hand out again without RssAnon moving: a server that built the whole
  // answer in memory could hide in it. So the transfer is measured in a
  // second process on the same store that never reads the file.
  ASSERT_TRUE(primary.RestartWithoutZoneFile(&error)) << error;
  ASSERT_EQ(primary.Serial(), 1000u);
  pid_t pid = primary.process().pid();

  // Settle, then take the baseline: private memory and the peak RSS reset.
  MemorySample before = ReadMemory(pid);
  ASSERT_GT(before.rss_anon_kib, 0u) << "no RssAnon in /proc/" << pid << "/status";
  WriteFile("/proc/" + std::to_string(pid) + "/clear_refs", "5");

  TransferResult result;
  {
    MemoryWatch watch(pid);
    TransferQuery query;
    // A slow secondary: it reads the first message, then nothing for a
    // second. Whatever updnsd would buffer for it piles up meanwhile.
    query.stall = milliseconds(1500);
    result = RunTransfer(primary.dns_port(), query, milliseconds(120000));
    watch.Stop();
    MemorySample after = ReadMemory(pid);
    ASSERT_TRUE(result.error.empty()) << result.error;
    ASSERT_GT(watch.samples(), 100u) << "the memory was hardly sampled";

    uint64_t anon_growth = watch.peak_anon_kib() > before.rss_anon_kib
                               ? watch.peak_anon_kib() - before.rss_anon_kib
                               : 0;
    uint64_t zone_kib = result.bytes / 1024;
    std::cerr << "AXFR: " << result.records.size() << " records in " << result.messages
              << " messages, " << zone_kib << " KiB of DNS messages (zone file "
              << zone_text.size() / 1024 << " KiB)\n"
              << "updnsd RssAnon before " << before.rss_anon_kib << " KiB, peak "
              << watch.peak_anon_kib() << " KiB (+" << anon_growth << "); VmRSS before "
              << before.rss_kib << " KiB, peak " << watch.peak_rss_kib() << " KiB, VmHWM "
              << after.hwm_kib << " KiB (the LMDB map's file pages count in VmRSS); "
              << watch.samples() << " samples\n";
    // The bound: updnsd writes at most 256 KiB ahead of the client
    // (server/dns_worker.cc kTransferWindow) and keeps no copy of the zone;
    // 1 MiB leaves room for that window, the connection's buffers and
    // malloc's rounding (about 0.4 MiB is seen). A server that built the
    // answer in memory would grow by at least the transfer's size (over
    // 4 MiB here), and the zone as parsed objects takes tens of MiB (what
    // the import at start leaves behind). VmRSS is not the measure: it also
    // counts the LMDB map's file pages, which the transfer reads once each
    // (the page cache, shared, dropped under pressure).
    constexpr uint64_t kLimitKib = 1024;
    EXPECT_GT(zone_kib, 4 * kLimitKib) << "the zone is too small to show the bound";
#if defined(__SANITIZE_ADDRESS__)
    // Under ASan (`make sanitize`) RssAnon measures ASan: its shadow memory
    // (a 30 MiB baseline here) and its allocator's redzones and quarantine
    // of freed blocks, not updnsd's buffering. The bound holds in the other
    // builds; here only the transfer itself is checked.
#else
    EXPECT_LT(anon_growth, kLimitKib) << "updnsd's private memory grew during the AXFR";
    // Freed heap is reused without RssAnon moving, so growth can hide in
    // at most all of the baseline; an answer built in memory cannot.
    EXPECT_LT(before.rss_anon_kib + kLimitKib, zone_kib)
        << "updnsd's baseline private memory could absorb an in-memory answer";
#endif
  }

  // Every record exactly once, the SOA first and last.
  EXPECT_EQ(result.rcode, LDNS_RCODE_NOERROR);
  ASSERT_GE(result.records.size(), 2u);
  EXPECT_EQ(result.records.front(), expected.front());
  EXPECT_EQ(result.records.back(), expected.front());
  EXPECT_EQ(result.soa_serials.size(), 2u);
  std::unordered_map<std::string, int> seen;
  for (size_t i = 1; i + 1 < result.records.size(); ++i) ++seen[result.records[i]];
  size_t duplicates = 0, missing = 0, extra = 0;
  std::string examples;
  for (const auto& [rr, count] : seen) {
    if (count > 1 && ++duplicates <= 3) examples += "twice: " + rr + "\n";
  }
  std::set<std::string> expected_set(expected.begin() + 1, expected.end());
  for (const std::string& rr : expected_set) {
    if (seen.count(rr) == 0 && ++missing <= 3) examples += "missing: " + rr + "\n";
  }
  for (const auto& [rr, count] : seen) {
    if (expected_set.count(rr) == 0 && ++extra <= 3) examples += "unexpected: " + rr + "\n";
  }
  EXPECT_EQ(duplicates, 0u) << examples;
  EXPECT_EQ(missing, 0u) << examples;
  EXPECT_EQ(extra, 0u) << examples;
  EXPECT_EQ(result.records.size(), expected.size() + 1);
  EXPECT_TRUE(primary.WaitForLog(
      "event=transfer type=AXFR zone=dyn.example. serial=1000 peer=127.0.0.1 key=- format=full",
      milliseconds(2000)))
      << primary.log();
  EXPECT_TRUE(primary.process().Running());
  EXPECT_TRUE(primary.Stop());
}

// ---------------------------------------------------------------------------
// IXFR from the journal, and its fallback

class XfrPrimaryTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << primary_.log();
    EXPECT_TRUE(primary_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(primary_.Stop()) << "updnsd did not stop on SIGTERM";
  }
  XfrPrimary primary_;
};

TEST_F(XfrPrimaryTest, IxfrFallsBackToAxfrWhenTheJournalIsShorterThanTheGap) {
  PrimaryOptions options;
  options.journal_entries = 2;
  std::string error;
  ASSERT_TRUE(primary_.Start(options, &error)) << error;
  std::vector<uint32_t> serials;
  serials.push_back(primary_.Serial().value_or(0));
  for (int i = 1; i <= 4; ++i) {
    CommandResult r = primary_.Nsupdate({"update add change" + std::to_string(i) +
                                         ".dyn.example. 60 A 192.0.2." + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    std::optional<uint32_t> serial = primary_.Serial();
    ASSERT_TRUE(serial);
    ASSERT_NE(*serial, serials.back()) << "change " << i << " did not move the serial";
    serials.push_back(*serial);
  }
  const uint32_t now = serials[4];
  TransferQuery signed_query;
  signed_query.key_name = "xfr-key.";
  signed_query.key_secret = kXfrSecret;

  // The full zone, for comparing AXFR-format answers.
  TransferResult axfr = RunTransfer(primary_.dns_port(), signed_query);
  ASSERT_TRUE(axfr.error.empty()) << axfr.error;
  EXPECT_TRUE(axfr.first_tsig_valid);
  ASSERT_EQ(axfr.soa_serials, (std::vector<uint32_t>{now, now}));
  EXPECT_EQ(axfr.records.size(), 2u + 2u + 4u) << "SOA twice, NS, ns1 A, 4 changes";

  // From serials[2]: the journal's two entries reach back exactly that far.
  TransferQuery ixfr = signed_query;
  ixfr.type = LDNS_RR_TYPE_IXFR;
  ixfr.ixfr_serial = serials[2];
  TransferResult incremental = RunTransfer(primary_.dns_port(), ixfr);
  ASSERT_TRUE(incremental.error.empty()) << incremental.error;
  EXPECT_TRUE(incremental.first_tsig_valid);
  EXPECT_TRUE(incremental.second_is_soa) << "incremental format expected";
  EXPECT_EQ(incremental.soa_serials,
            (std::vector<uint32_t>{now, serials[2], serials[3], serials[3], now, now}));
  EXPECT_EQ(incremental.records.size(), 6u + 2u) << "six SOAs and the two added A records";
  EXPECT_TRUE(primary_.WaitForLog(TransferLogLine("IXFR", now, "incremental"), milliseconds(2000)));

  // From serials[0] and serials[1]: gaps of 4 and 3 changes, the journal
  // holds 2 -> the whole zone in the AXFR format.
  for (int from : {0, 1}) {
    ixfr.ixfr_serial = serials[from];
    TransferResult fallback = RunTransfer(primary_.dns_port(), ixfr);
    ASSERT_TRUE(fallback.error.empty()) << fallback.error;
    EXPECT_TRUE(fallback.first_tsig_valid);
    EXPECT_FALSE(fallback.second_is_soa)
        << "from serial " << serials[from] << ": AXFR format expected";
    EXPECT_EQ(Sorted(fallback.records), Sorted(axfr.records)) << "from serial " << serials[from];
  }
  EXPECT_EQ(CountOf(primary_.log(), TransferLogLine("IXFR", now, "full")), 2u) << primary_.log();

  // From the current serial: the SOA alone.
  ixfr.ixfr_serial = now;
  TransferResult current = RunTransfer(primary_.dns_port(), ixfr);
  ASSERT_TRUE(current.error.empty()) << current.error;
  EXPECT_EQ(current.soa_serials, std::vector<uint32_t>{now});
  EXPECT_EQ(current.records.size(), 1u);

  // kdig, a standard client, takes the fallback as a valid IXFR answer.
  if (HaveProgram("kdig")) {
    CommandResult kdig =
        RunCommand({"kdig", "-p", std::to_string(primary_.dns_port()), "@127.0.0.1", "-y",
                    std::string("hmac-sha256:xfr-key:") + kXfrSecret, "dyn.example",
                    "IXFR=" + std::to_string(serials[0]), "+noall", "+answer"},
                   "", primary_.dir());
    EXPECT_EQ(kdig.exit_code, 0) << kdig.Describe();
    EXPECT_EQ(CountOf(kdig.out, "\tSOA\t") + CountOf(kdig.out, " SOA "), 2u) << kdig.out;
    EXPECT_TRUE(Contains(kdig.out, "change4.dyn.example.")) << kdig.out;
    EXPECT_FALSE(Contains(kdig.err, "failed")) << kdig.Describe();
  }
}

// storage.journal_entries applies on reload: the next change trims the
// journal, and IXFR from beyond it falls back to the whole zone.
TEST_F(XfrPrimaryTest, ReloadedJournalLimitTrimsAtTheNextChange) {
  std::string error;
  ASSERT_TRUE(primary_.Start({}, &error)) << error;
  std::vector<uint32_t> serials{primary_.Serial().value_or(0)};
  auto change = [&](int i) {
    CommandResult r = primary_.Nsupdate({"update add change" + std::to_string(i) +
                                         ".dyn.example. 60 A 192.0.2." + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    serials.push_back(primary_.Serial().value_or(0));
    ASSERT_NE(serials.back(), serials[serials.size() - 2]) << "change " << i;
  };
  TransferQuery ixfr;
  ixfr.key_name = "xfr-key.";
  ixfr.key_secret = kXfrSecret;
  ixfr.type = LDNS_RR_TYPE_IXFR;
  auto incremental_from = [&](size_t from) {
    ixfr.ixfr_serial = serials[from];
    TransferResult result = RunTransfer(primary_.dns_port(), ixfr);
    EXPECT_TRUE(result.error.empty()) << result.error;
    return result.second_is_soa;
  };
  for (int i = 1; i <= 3; ++i) ASSERT_NO_FATAL_FAILURE(change(i));
  EXPECT_TRUE(incremental_from(0)) << "the default journal holds all three changes";

  PrimaryOptions two;
  two.journal_entries = 2;
  ASSERT_TRUE(primary_.Reload(two)) << primary_.log();
  EXPECT_FALSE(Contains(primary_.log(), "storage.journal")) << "not a restart setting";
  ASSERT_NO_FATAL_FAILURE(change(4));
  EXPECT_FALSE(incremental_from(0)) << "four changes back, the journal keeps two";
  EXPECT_FALSE(incremental_from(1));
  EXPECT_TRUE(incremental_from(2));
}

// ---------------------------------------------------------------------------
// The transfer ACL

// The TSIG error of an answer's TSIG RR, or -1 without one.
int TsigError(const ldns_pkt* pkt) {
  ldns_rr* tsig = ldns_pkt_tsig(pkt);
  if (tsig == nullptr || ldns_rr_rd_count(tsig) < 6) return -1;
  return ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
}

TEST_F(XfrPrimaryTest, TransferAclRefusesUnlistedAddressesAndRejectsBadKeys) {
  PrimaryOptions options;
  // 127.0.0.2 may transfer unsigned; 127.0.0.1 only with xfr-key.
  options.transfer = "[xfr-key, 127.0.0.2]";
  std::string error;
  ASSERT_TRUE(primary_.Start(options, &error)) << error;
  const uint16_t port = primary_.dns_port();

  TransferQuery unsigned_query;
  TransferResult r = RunTransfer(port, unsigned_query);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(RcodeName(r.rcode), "REFUSED") << "unsigned from 127.0.0.1 (not listed)";
  EXPECT_TRUE(r.records.empty());

  TransferQuery unsigned_ixfr = unsigned_query;
  unsigned_ixfr.type = LDNS_RR_TYPE_IXFR;
  unsigned_ixfr.ixfr_serial = 1;
  r = RunTransfer(port, unsigned_ixfr);
  EXPECT_EQ(RcodeName(r.rcode), "REFUSED") << "unsigned IXFR from 127.0.0.1";
  EXPECT_TRUE(r.records.empty());

  TransferQuery listed = unsigned_query;
  listed.source = "127.0.0.2";
  r = RunTransfer(port, listed);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(RcodeName(r.rcode), "NOERROR") << "unsigned from 127.0.0.2 (listed)";
  EXPECT_EQ(r.records.size(), 4u) << "SOA, NS, A, SOA";

  TransferQuery good_key = unsigned_query;
  good_key.key_name = "xfr-key.";
  good_key.key_secret = kXfrSecret;
  r = RunTransfer(port, good_key);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(RcodeName(r.rcode), "NOERROR") << "signed with xfr-key";
  EXPECT_TRUE(r.first_tsig_valid) << "the answer's TSIG does not verify";
  EXPECT_EQ(r.records.size(), 4u);

  // xfr-key's name with another secret: BADSIG (16).
  TransferQuery bad_secret = good_key;
  bad_secret.key_secret = kWrongSecret;
  r = RunTransfer(port, bad_secret);
  EXPECT_EQ(RcodeName(r.rcode), "NOTAUTH") << "wrong secret";
  ASSERT_TRUE(r.first);
  EXPECT_EQ(TsigError(r.first.get()), 16) << "BADSIG";
  EXPECT_TRUE(r.records.empty());

  // A key updnsd does not know: BADKEY (17).
  TransferQuery unknown_key = good_key;
  unknown_key.key_name = "no-such-key.";
  r = RunTransfer(port, unknown_key);
  EXPECT_EQ(RcodeName(r.rcode), "NOTAUTH") << "unknown key";
  ASSERT_TRUE(r.first);
  EXPECT_EQ(TsigError(r.first.get()), 17) << "BADKEY";
  EXPECT_TRUE(r.records.empty());

  // A valid key that the zone's list does not name (ddns-key may UPDATE,
  // not transfer): refused like an unlisted address, as BIND does; the
  // refusal is signed.
  TransferQuery other_key = good_key;
  other_key.key_name = "ddns-key.";
  other_key.key_secret = kDdnsSecret;
  r = RunTransfer(port, other_key);
  EXPECT_EQ(RcodeName(r.rcode), "REFUSED") << "ddns-key is not in the transfer list";
  EXPECT_TRUE(r.first_tsig_valid);
  EXPECT_TRUE(r.records.empty());

  // The same rules for kdig (a standard client).
  if (HaveProgram("kdig")) {
    CommandResult kdig =
        RunCommand({"kdig", "-p", std::to_string(port), "@127.0.0.1", "dyn.example", "AXFR"}, "",
                   primary_.dir());
    EXPECT_TRUE(Contains(kdig.out + kdig.err, "REFUSED")) << kdig.Describe();
    kdig = RunCommand({"kdig", "-p", std::to_string(port), "@127.0.0.1", "-y",
                       std::string("hmac-sha256:xfr-key:") + kWrongSecret, "dyn.example", "AXFR"},
                      "", primary_.dir());
    EXPECT_TRUE(Contains(kdig.out + kdig.err, "NOTAUTH") || Contains(kdig.out + kdig.err, "BADSIG"))
        << kdig.Describe();
  }
  EXPECT_TRUE(Contains(primary_.log(),
                       "event=transfer_refused type=AXFR zone=dyn.example. peer=127.0.0.1 key=-"))
      << primary_.log();
}

}  // namespace
}  // namespace updns::test
