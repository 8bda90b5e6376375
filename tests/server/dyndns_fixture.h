// Helpers of the dyndns2 end-to-end tests: updnsd with its HTTP listener on
// a free loopback port serving a zone of its own, a small HTTP/1.1 client on
// raw sockets, and DNS look-ups on ldns. Header-only; builds on
// daemon_fixture.h (sockets, ldns) and tests/support/process.h (updnsctl
// and other programs such as curl, ddclient, inadyn run to completion).
#pragma once

#include <functional>
#include <map>

#include "tests/server/daemon_fixture.h"

namespace updns::test {

// ---------------------------------------------------------------------------
// HTTP

inline std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t group = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) group |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) group |= static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[group >> 18 & 63]);
    out.push_back(kAlphabet[group >> 12 & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[group >> 6 & 63] : '=');
    out.push_back(i + 2 < in.size() ? kAlphabet[group & 63] : '=');
  }
  return out;
}

inline std::string BasicAuth(const std::string& user, const std::string& password) {
  return "Basic " + Base64(user + ":" + password);
}

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct HttpResult {
  int status = 0;  // 0: no (complete) response
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string raw;  // everything received, for messages

  // First header of that (lowercase) name, or nullopt.
  std::optional<std::string> Header(const std::string& name) const {
    for (const auto& [key, value] : headers)
      if (key == name) return value;
    return std::nullopt;
  }
  // Body lines without their line ends.
  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    std::stringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
    return lines;
  }
};

// Parses the head of a response ("HTTP/1.1 200 OK\r\nName: value\r\n...").
inline bool ParseHead(const std::string& head, HttpResult& result) {
  std::stringstream in(head);
  std::string line;
  if (!std::getline(in, line)) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  result.status_line = line;
  if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return false;
  result.status = std::atoi(line.c_str() + 9);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    result.headers.emplace_back(Lower(line.substr(0, colon)), value);
  }
  return true;
}

// Splits what curl -i printed (possibly several heads, e.g. "100 Continue")
// into the final response.
inline HttpResult ParseCurlOutput(const std::string& text) {
  HttpResult result;
  result.raw = text;
  size_t start = 0;
  while (true) {
    size_t end = text.find("\r\n\r\n", start);
    if (end == std::string::npos) return result;
    HttpResult head;
    if (!ParseHead(text.substr(start, end + 4 - start), head)) return result;
    start = end + 4;
    if (head.status >= 100 && head.status < 200) continue;
    head.body = text.substr(start);
    head.raw = text;
    return head;
  }
}

// A client connection speaking HTTP/1.1 over TCP, kept alive between requests.
class HttpConnection {
 public:
  bool Connect(uint16_t port, milliseconds timeout = milliseconds(2000)) {
    buffer_.clear();
    return ConnectTcp(fd_, Loopback4(port), timeout);
  }

  // Writes all of `text`; false when the peer is gone.
  bool Send(std::string_view text) { return SendAll(fd_, text.data(), text.size()); }

  // Reads one response (Content-Length framed, or to EOF without one).
  // status 0 when none came complete within `timeout`; `raw` then holds
  // what did come.
  HttpResult Read(milliseconds timeout = milliseconds(10000)) {
    HttpResult result;
    auto deadline = Clock::now() + timeout;
    size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (Fill(deadline) != FillState::kData) {
        result.raw = std::exchange(buffer_, {});
        return result;
      }
    }
    HttpResult head;
    if (!ParseHead(buffer_.substr(0, head_end + 4), head)) {
      result.raw = std::exchange(buffer_, {});
      return result;
    }
    size_t body_start = head_end + 4;
    if (auto length = head.Header("content-length")) {
      size_t want = std::strtoul(length->c_str(), nullptr, 10);
      while (buffer_.size() < body_start + want) {
        if (Fill(deadline) != FillState::kData) {
          result.raw = std::exchange(buffer_, {});
          return result;
        }
      }
      head.body = buffer_.substr(body_start, want);
      head.raw = buffer_.substr(0, body_start + want);
      buffer_.erase(0, body_start + want);
      return head;
    }
    while (Fill(deadline) == FillState::kData) {
    }
    head.body = buffer_.substr(body_start);
    head.raw = std::exchange(buffer_, {});
    return head;
  }

  HttpResult Exchange(std::string_view request, milliseconds timeout = milliseconds(10000)) {
    if (!Send(request)) return {};
    return Read(timeout);
  }

  enum class FillState { kData, kClosed, kReset, kTimeout };
  // Appends what arrives next to buffer() and says what happened.
  FillState Fill(Clock::time_point deadline) {
    char chunk[4096];
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return FillState::kTimeout;
      pollfd p{fd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r <= 0) continue;
      ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
        return FillState::kData;
      }
      if (n == 0) return FillState::kClosed;
      if (errno == EAGAIN || errno == EINTR) continue;
      return FillState::kReset;
    }
  }

  // Reads until the server closes (kClosed or kReset) or `timeout` passes.
  // What came meanwhile stays in buffer().
  FillState WaitClosed(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    FillState state;
    while ((state = Fill(deadline)) == FillState::kData) {
    }
    return state;
  }

  void Close() { fd_.Reset(); }
  int fd() const { return fd_.get(); }
  std::string& buffer() { return buffer_; }

 private:
  Fd fd_;
  std::string buffer_;
};

// A GET request line and headers for /nic/update.
inline std::string UpdateRequest(const std::string& target, const std::string& authorization,
                                 bool keep_alive = true) {
  std::string text = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: updns-test\r\n";
  if (!authorization.empty()) text += "Authorization: " + authorization + "\r\n";
  if (!keep_alive) text += "Connection: close\r\n";
  return text + "\r\n";
}

// ---------------------------------------------------------------------------
// updnsd with HTTP

struct DyndnsOptions {
  unsigned nochg_limit = 3;
  unsigned nochg_window = 600;  // seconds
  unsigned abuse_lock = 3600;   // seconds
  unsigned read_timeout_ms = 10000;
  unsigned max_request_size = 8192;
  unsigned host_ttl = 30;
};

inline constexpr const char* kZone = "dyn.example";

// What the updnsd daemons of the HTTP tests share: a temp dir with the
// config, the zone file of dyn.example, the store and the log; the process;
// a DNS and an HTTP port on 127.0.0.1; updnsctl on the same config.
class HttpUpdnsd {
 public:
  static std::string ZoneText() {
    return "$ORIGIN dyn.example.\n"
           "$TTL 3600\n"
           "@ IN SOA ns1.dyn.example. hostmaster.dyn.example. 1000 3600 900 1209600 300\n"
           "@ IN NS ns1\n"
           "ns1 IN A 192.0.2.53\n";
  }

  // updnsctl --config CONFIG args..., `stdin_text` on its stdin.
  CommandResult Ctl(const std::vector<std::string>& args,
                    const std::string& stdin_text = "") const {
    return RunUpdnsctl(config_path(), args, stdin_text, dir_.path());
  }

  Process& process() { return process_; }
  uint16_t dns_port() const { return dns_port_; }
  uint16_t http_port() const { return http_port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path db_path() const { return dir_.path() / "db"; }
  std::filesystem::path config_path() const { return dir_.path() / "updns.yaml"; }
  std::filesystem::path zone_path() const { return dir_.path() / "dyn.example.zone"; }
  std::filesystem::path log_path() const { return dir_.path() / "updnsd.log"; }
  std::string log() const { return ReadFile(log_path()); }

  // Writes `config_text` as the config and sends SIGHUP; true once the
  // daemon logged the reload as applied (within 10 s).
  bool ReloadWith(const std::string& config_text) {
    const size_t before = CountOf(log(), "event=reloaded ");
    WriteFile(config_path(), config_text);
    return ::kill(process_.pid(), SIGHUP) == 0 &&
           WaitUntil([&] { return CountOf(log(), "event=reloaded ") > before; },
                     std::chrono::milliseconds(10000));
  }

 protected:
  // A fresh store on new ports: writes the zone file, then up to three
  // times picks free DNS and HTTP ports (and `*extra_port`, when given, all
  // distinct), writes `config_text()`, removes the store and calls
  // `launch`. False with a message when no try launched.
  bool StartFresh(const std::function<std::string()>& config_text,
                  const std::function<bool(std::string*)>& launch, std::string* error,
                  uint16_t* extra_port = nullptr) {
    if (!dir_.ok()) {
      *error = "cannot create a temp dir";
      return false;
    }
    WriteFile(zone_path(), ZoneText());
    for (int attempt = 0; attempt < 3; ++attempt) {
      dns_port_ = PickFreePort(false);
      http_port_ = PickFreePort(false);
      if (dns_port_ == 0 || http_port_ == 0 || dns_port_ == http_port_) continue;
      if (extra_port != nullptr) {
        *extra_port = PickFreePort(false);
        if (*extra_port == 0 || *extra_port == dns_port_ || *extra_port == http_port_) continue;
      }
      WriteFile(config_path(), config_text());
      std::filesystem::remove_all(db_path());
      if (launch(error)) return true;
    }
    return false;
  }

  // Starts updnsd on the written config (its log removed first); false
  // with a message when it cannot be started.
  bool StartProcess(std::string* error) {
    std::filesystem::remove(log_path());
    std::vector<std::string> argv = {UPDNSD_PATH, "--config", config_path().string()};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    return process_.Start(argv, dir_.path(), log_path(), log_path(), error);
  }

  // The start of a config: DNS on dns_port_ (one worker), the store in the
  // temp dir, HTTP on http_port_; the caller may add http options.
  std::string ListenersAndStorageConfig() const {
    std::string d = dir_.path().string();
    std::string text;
    text += "server:\n  listen: [\"127.0.0.1@" + std::to_string(dns_port_) + "\"]\n";
    text += "  workers: 1\n";
    text += "storage:\n  path: " + d + "/db\n  map_size: 64MiB\n";
    text += "http:\n  listen: [\"127.0.0.1:" + std::to_string(http_port_) + "\"]\n";
    return text;
  }

  // The zones section: dyn.example from zone_path() with `host_ttl`.
  std::string ZonesConfig(unsigned host_ttl) const {
    return "zones:\n  - name: dyn.example\n    file: " + zone_path().string() + "\n" +
           "    host_ttl: " + std::to_string(host_ttl) + "\n";
  }

  // StartProcess(), then waits up to 10 s for updnsd to have logged its
  // start and to take HTTP connections; false with a message (and the log)
  // when it does not, the process then killed.
  bool LaunchUntilHttp(std::string* error) {
    if (!StartProcess(error)) return false;
    auto started = [&] {
      return log().find("event=started") != std::string::npos &&
             HttpConnection().Connect(http_port_, milliseconds(200));
    };
    return AwaitStart(process_, "updnsd", "updnsd did not start within 10 s", started,
                      milliseconds(20), [&] { return log(); }, error);
  }

  TempDir dir_;
  Process process_;
  uint16_t dns_port_ = 0;
  uint16_t http_port_ = 0;
  std::vector<std::string> extra_args_;  // for updnsd after --config, e.g. "--verbose"
};

// updnsd serving dyn.example (from a zone file in its temp dir) over UDP and
// TCP on one free port of 127.0.0.1 and dyndns2 over HTTP on another.
class DyndnsDaemon : public HttpUpdnsd {
 public:
  // A fresh store on new ports. False with a message (and the daemon's log)
  // when it would not start and answer within 10 s.
  bool Start(const DyndnsOptions& options, std::string* error) {
    return StartFresh([&] { return ConfigText(options); },
                      [&](std::string* e) { return Launch(e); }, error);
  }

  // SIGKILL (no clean shutdown), then starts again on the same store and
  // ports: what was acknowledged must have survived.
  bool KillAndRestart(std::string* error) {
    process_.Kill();
    return Launch(error);
  }

  bool WaitForLog(const std::string& text, milliseconds timeout) const {
    return WaitForFileText(log_path(), text, timeout, milliseconds(5));
  }

  // Starts updnsd on the written config and waits until it answers the
  // zone's SOA and accepts HTTP connections.
  bool Launch(std::string* error) {
    if (!StartProcess(error)) return false;
    auto answers = [&] {
      if (!Serial() || !HttpConnection().Connect(http_port_, milliseconds(200))) return false;
      WaitForLog("event=started", milliseconds(2000));
      return true;
    };
    return AwaitStart(process_, "updnsd", "updnsd did not answer within 10 s", answers,
                      milliseconds(20), [&] { return log(); }, error);
  }

  // SIGTERM, then waits up to `timeout`. False when it did not exit in time.
  bool Stop(milliseconds timeout = milliseconds(5000)) { return process_.Stop(SIGTERM, timeout); }

  std::string ConfigText(const DyndnsOptions& o) const {
    std::string text = ListenersAndStorageConfig();
    text += "  read_timeout: " + std::to_string(o.read_timeout_ms) + "\n";
    text += "  max_request_size: " + std::to_string(o.max_request_size) + "\n";
    text += "dyndns:\n";
    text += "  nochg_limit: " + std::to_string(o.nochg_limit) + "\n";
    text += "  nochg_window: " + std::to_string(o.nochg_window) + "\n";
    text += "  abuse_lock: " + std::to_string(o.abuse_lock) + "\n";
    text += ZonesConfig(o.host_ttl);
    return text;
  }

  // The output of `updnsctl host list` (header line included), or a text
  // naming the failure.
  std::string HostList() const {
    CommandResult r = Ctl({"host", "list"});
    if (r.exit_code != 0) return "host list failed: " + r.Describe();
    return r.out;
  }

  // The fields of one host's line of `host list`, keyed by the header names
  // (HOST, ACCOUNT, STATE, A, AAAA, TOKEN, TOKEN_USED, LAST_UPDATE).
  std::map<std::string, std::string> HostFields(const std::string& host) const {
    std::map<std::string, std::string> fields;
    std::stringstream in(HostList());
    std::string header_line;
    if (!std::getline(in, header_line)) return fields;
    auto split = [](const std::string& line) {
      std::vector<std::string> cells;
      std::stringstream cells_in(line);
      for (std::string cell; std::getline(cells_in, cell, '\t');) cells.push_back(cell);
      return cells;
    };
    std::vector<std::string> names = split(header_line);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> cells = split(line);
      if (cells.empty() || cells[0] != host) continue;
      for (size_t i = 0; i < names.size() && i < cells.size(); ++i) fields[names[i]] = cells[i];
    }
    return fields;
  }

  // The zone's SOA serial as the daemon answers it over UDP.
  std::optional<uint32_t> Serial() const {
    Packet pkt = Query(std::string(kZone) + ".", LDNS_RR_TYPE_SOA);
    if (!pkt || ldns_pkt_ancount(pkt.get()) != 1) return std::nullopt;
    ldns_rr* soa = ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0);
    if (ldns_rr_get_type(soa) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(soa) < 3) return std::nullopt;
    return ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
  }

  Packet Query(const std::string& name, ldns_rr_type type) const {
    std::optional<Bytes> answer = ExchangeUdp(dns(), MakeQuery(name, type), milliseconds(1000));
    if (!answer) return nullptr;
    return Parse(*answer);
  }

  // The rdata of `name`'s answer RRs of `type` ("198.51.100.1"), sorted;
  // {"<no answer>"} when the daemon did not answer.
  std::vector<std::string> Addresses(const std::string& name, ldns_rr_type type) const {
    Packet pkt = Query(name + ".", type);
    if (!pkt) return {"<no answer>"};
    std::vector<std::string> out;
    ldns_rr_list* answer = ldns_pkt_answer(pkt.get());
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer); ++i) {
      ldns_rr* rr = ldns_rr_list_rr(answer, i);
      if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < 1) continue;
      char* text = ldns_rdf2str(ldns_rr_rdf(rr, 0));
      out.push_back(text ? text : "");
      std::free(text);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  SocketAddress dns() const { return Loopback4(dns_port_); }
};

}  // namespace updns::test
