// Helpers of the dyndns2 end-to-end tests: updnsd with its HTTP listener on
// a free loopback port serving a zone of its own, updnsctl and other
// programs (curl, ddclient, inadyn) run to completion with their output
// captured, a small HTTP/1.1 client on raw sockets, and DNS look-ups on ldns.
// Header-only; builds on daemon_fixture.h (processes, sockets, ldns).
#pragma once

#include <atomic>
#include <map>

#include "tests/server/daemon_fixture.h"

namespace updns::test {

// ---------------------------------------------------------------------------
// Programs run to completion

struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally (signal, timeout, exec failure)
  bool timed_out = false;
  std::string out, err;
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") + "\nstdout:\n" +
           out + "\nstderr:\n" + err;
  }
};

// Runs argv (argv[0] looked up in PATH when it has no '/') in `scratch` with
// `stdin_text` on its stdin; its stdout and stderr go to files in `scratch`.
// Killed (its whole process group) after `timeout`.
inline CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text,
                                const std::filesystem::path& scratch,
                                milliseconds timeout = milliseconds(20000)) {
  static std::atomic<unsigned> counter{0};
  std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::filesystem::path in_path = scratch / ("cmd-" + tag + ".in");
  std::filesystem::path out_path = scratch / ("cmd-" + tag + ".out");
  std::filesystem::path err_path = scratch / ("cmd-" + tag + ".err");
  WriteFile(in_path, stdin_text);
  CommandResult result;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Fd in(::open(in_path.c_str(), O_RDONLY | O_CLOEXEC));
  Fd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  Fd err(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!in.ok() || !out.ok() || !err.ok()) {
    result.err = "cannot create the capture files in " + scratch.string();
    return result;
  }
  std::string dir = scratch.string();
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    result.err = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in.get(), STDIN_FILENO);
    ::dup2(out.get(), STDOUT_FILENO);
    ::dup2(err.get(), STDERR_FILENO);
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  auto deadline = Clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  std::error_code ignored;
  std::filesystem::remove(in_path, ignored);
  std::filesystem::remove(out_path, ignored);
  std::filesystem::remove(err_path, ignored);
  return result;
}

// Whether `program` is found in PATH (or is an executable path).
inline bool HaveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  std::stringstream split(dirs);
  for (std::string dir; std::getline(split, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

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
    SocketAddress server = Loopback4(port);
    fd_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_.ok()) return false;
    int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd_.get(), server.get(), server.length) == 0) return true;
    if (errno != EINPROGRESS) return false;
    pollfd p{fd_.get(), POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    return error == 0;
  }

  // Writes all of `text`; false when the peer is gone.
  bool Send(std::string_view text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::send(fd_.get(), text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) return false;
        pollfd p{fd_.get(), POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  }

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

// updnsd serving dyn.example (from a zone file in its temp dir) over UDP and
// TCP on one free port of 127.0.0.1 and dyndns2 over HTTP on another.
class DyndnsDaemon {
 public:
  // A fresh store on new ports. False with a message (and the daemon's log)
  // when it would not start and answer within 10 s.
  bool Start(const DyndnsOptions& options, std::string* error) {
    if (!dir_.ok()) {
      *error = "cannot create a temp dir";
      return false;
    }
    WriteFile(zone_path(), ZoneText());
    for (int attempt = 0; attempt < 3; ++attempt) {
      dns_port_ = PickFreePort(false);
      http_port_ = PickFreePort(false);
      if (dns_port_ == 0 || http_port_ == 0 || dns_port_ == http_port_) continue;
      WriteFile(config_path(), ConfigText(options));
      std::filesystem::remove_all(dir_.path() / "db");
      if (Launch(error)) return true;
    }
    return false;
  }

  // SIGKILL (no clean shutdown), then starts again on the same store and
  // ports: what was acknowledged must have survived.
  bool KillAndRestart(std::string* error) {
    process_.Kill();
    return Launch(error);
  }

  bool WaitForLog(const std::string& text, milliseconds timeout) const {
    auto deadline = Clock::now() + timeout;
    while (log().find(text) == std::string::npos) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  // Starts updnsd on the written config and waits until it answers the
  // zone's SOA and accepts HTTP connections.
  bool Launch(std::string* error) {
    std::filesystem::remove(log_path());
    if (!process_.Start({UPDNSD_PATH, "--config", config_path().string()}, dir_.path(), log_path(),
                        log_path(), error)) {
      return false;
    }
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && process_.Running()) {
      if (Serial() && HttpConnection().Connect(http_port_, milliseconds(200))) {
        WaitForLog("updnsd started", milliseconds(2000));
        return true;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    *error = process_.Running()
                 ? "updnsd did not answer within 10 s"
                 : "updnsd exited at start (" + DescribeWaitStatus(process_.status()) + ")";
    *error += "; its log:\n" + log();
    process_.Kill();
    return false;
  }

  // SIGTERM, then waits up to `timeout`. False when it did not exit in time.
  bool Stop(milliseconds timeout = milliseconds(5000)) { return process_.Stop(SIGTERM, timeout); }

  static std::string ZoneText() {
    return "$ORIGIN dyn.example.\n"
           "$TTL 3600\n"
           "@ IN SOA ns1.dyn.example. hostmaster.dyn.example. 1000 3600 900 1209600 300\n"
           "@ IN NS ns1\n"
           "ns1 IN A 192.0.2.53\n";
  }

  std::string ConfigText(const DyndnsOptions& o) const {
    std::string d = dir_.path().string();
    std::string text;
    text += "server:\n  listen: [\"127.0.0.1@" + std::to_string(dns_port_) + "\"]\n";
    text += "  workers: 1\n";
    text += "storage:\n  path: " + d + "/db\n  map_size: 64MiB\n";
    text += "http:\n  listen: [\"127.0.0.1:" + std::to_string(http_port_) + "\"]\n";
    text += "  read_timeout: " + std::to_string(o.read_timeout_ms) + "\n";
    text += "  max_request_size: " + std::to_string(o.max_request_size) + "\n";
    text += "dyndns:\n";
    text += "  nochg_limit: " + std::to_string(o.nochg_limit) + "\n";
    text += "  nochg_window: " + std::to_string(o.nochg_window) + "\n";
    text += "  abuse_lock: " + std::to_string(o.abuse_lock) + "\n";
    text += "zones:\n  - name: dyn.example\n    file: " + zone_path().string() + "\n";
    text += "    host_ttl: " + std::to_string(o.host_ttl) + "\n";
    return text;
  }

  // updnsctl --config CONFIG args..., `stdin_text` on its stdin.
  CommandResult Ctl(const std::vector<std::string>& args,
                    const std::string& stdin_text = "") const {
    std::vector<std::string> argv = {UPDNSCTL_PATH, "--config", config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, stdin_text, dir_.path());
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
  uint16_t dns_port() const { return dns_port_; }
  uint16_t http_port() const { return http_port_; }
  Process& process() { return process_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_path() const { return dir_.path() / "updns.yaml"; }
  std::filesystem::path zone_path() const { return dir_.path() / "dyn.example.zone"; }
  std::filesystem::path log_path() const { return dir_.path() / "updnsd.log"; }
  std::string log() const { return ReadFile(log_path()); }

 private:
  TempDir dir_;
  Process process_;
  uint16_t dns_port_ = 0;
  uint16_t http_port_ = 0;
};

}  // namespace updns::test
