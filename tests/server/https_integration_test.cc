// HTTPS end to end: the real updnsd with a plain HTTP and an HTTPS listener,
// a certificate from a CA the test makes with the openssl command, driven by
// curl, ddclient (ssl=yes) and a TLS client on the OpenSSL API; updates
// checked over DNS. Also: old protocols, plain HTTP and silence on the HTTPS
// port; the certificate reloaded on SIGHUP while a keep-alive connection
// goes on; a broken key on SIGHUP refused; a bad key at start.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "tests/server/tls_fixture.h"

namespace updns::test {
namespace {

const std::string kHome = "home.dyn.example";
constexpr long kFirstSerial = 0x1001;
constexpr long kRenewedSerial = 0x2002;

struct HttpsOptions {
  unsigned read_timeout_ms = 10000;
  unsigned max_connections = 1024;
};

// updnsd serving dyn.example over DNS, plain HTTP on http_port() and HTTPS
// on https_port() with the certificate "server" of its CA (serial 0x1001).
class HttpsDaemon : public HttpUpdnsd {
 public:
  bool Start(const HttpsOptions& options, std::string* error) {
    extra_args_ = {"--verbose"};  // the TLS failures are debug lines
    if (!dir_.ok() || !ca_.Create(dir_.path(), error) ||
        !ca_.Issue("server", "updns first", kFirstSerial, error)) {
      return false;
    }
    return StartFresh([&] { return ConfigText(options); },
                      [&](std::string* e) { return LaunchUntilHttp(e); }, error, &https_port_);
  }

  std::string ConfigText(const HttpsOptions& o) const {
    std::string text = ListenersAndStorageConfig();
    text += "  tls_listen: [\"127.0.0.1:" + std::to_string(https_port_) + "\"]\n";
    text += "  tls: {cert: " + ca_.cert("server").string() +
            ", key: " + ca_.key("server").string() + "}\n";
    text += "  read_timeout: " + std::to_string(o.read_timeout_ms) + "\n";
    text += "  max_connections: " + std::to_string(o.max_connections) + "\n";
    return text + ZonesConfig(30);
  }

  bool WaitForLog(const std::string& text, milliseconds timeout = milliseconds(5000)) const {
    return WaitForFileText(log_path(), text, timeout, milliseconds(5));
  }
  size_t CountInLog(const std::string& text) const { return CountOf(log(), text); }

  std::vector<std::string> Addresses(const std::string& name) const {
    std::optional<Bytes> answer = ExchangeUdp(
        Loopback4(dns_port_), MakeQuery(name + ".", LDNS_RR_TYPE_A), milliseconds(1000));
    if (!answer) return {"<no answer>"};
    Packet pkt = Parse(*answer);
    std::vector<std::string> out;
    ldns_rr_list* rrs = pkt ? ldns_pkt_answer(pkt.get()) : nullptr;
    for (size_t i = 0; rrs && i < ldns_rr_list_rr_count(rrs); ++i) {
      char* text = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(rrs, i), 0));
      out.push_back(text ? text : "");
      std::free(text);
    }
    return out;
  }

  const TestCa& ca() const { return ca_; }
  uint16_t https_port() const { return https_port_; }

 private:
  TestCa ca_;
  uint16_t https_port_ = 0;
};

class HttpsTest : public ::testing::Test {
 protected:
  virtual HttpsOptions Options() const { return {}; }

  void SetUp() override {
    if (!HaveProgram("openssl")) GTEST_SKIP() << "the openssl command is not installed";
    std::string error;
    ASSERT_TRUE(daemon_.Start(Options(), &error)) << error;
    CommandResult r = daemon_.Ctl({"account", "add", "alice", "--email", "alice@example.org"},
                                  "alice secret 1\n");
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    r = daemon_.Ctl({"host", "add", kHome, "--account", "alice"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    r = daemon_.Ctl({"token", "create", kHome});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    token_ = r.out.substr(0, r.out.find('\n'));
  }

  void TearDown() override {
    if (IsSkipped()) return;
    if (HasFailure()) std::cerr << "updnsd log:\n" << daemon_.log();
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(daemon_.process().Stop(SIGTERM, milliseconds(5000)));
  }

  std::string HttpsUrl(const std::string& path_and_query) const {
    return "https://127.0.0.1:" + std::to_string(daemon_.https_port()) + path_and_query;
  }

  CommandResult Curl(std::vector<std::string> args, const std::string& path_and_query) {
    std::vector<std::string> argv = {"curl",      "-sS",      "-i",
                                     "--noproxy", "*",        "--max-time",
                                     "10",        "--cacert", daemon_.ca().ca_file().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(HttpsUrl(path_and_query));
    return RunCommand(argv, "", daemon_.dir());
  }

  std::string UpdateTarget(const std::string& ip) const {
    return "/nic/update?hostname=" + kHome + "&myip=" + ip;
  }

  // A good update over a new HTTPS connection: the response's status, and
  // its body's first line.
  HttpResult UpdateOverTls(const std::string& ip) {
    TlsClient client;
    if (!client.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()})) {
      HttpResult none;
      none.raw = "TLS connect failed: " + client.error();
      return none;
    }
    return client.Exchange(UpdateRequest(UpdateTarget(ip), BasicAuth(kHome, token_), false));
  }

  // Replaces the served files by a new certificate of the same CA.
  void RenewCertificate(long serial, const std::string& cn) {
    std::string error;
    ASSERT_TRUE(daemon_.ca().Issue("renewed", cn, static_cast<unsigned>(serial), &error)) << error;
    std::filesystem::rename(daemon_.ca().cert("renewed"), daemon_.ca().cert("server"));
    std::filesystem::rename(daemon_.ca().key("renewed"), daemon_.ca().key("server"));
  }

  HttpsDaemon daemon_;
  std::string token_;
};

TEST_F(HttpsTest, CurlUpdateOverHttpsIsGoodAndInDns) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  CommandResult r = Curl({"-u", kHome + ":" + token_}, UpdateTarget("198.51.100.20"));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  HttpResult response = ParseCurlOutput(r.out);
  EXPECT_EQ(response.status, 200) << response.raw;
  EXPECT_EQ(response.Lines(), std::vector<std::string>{"good 198.51.100.20"}) << response.raw;
  EXPECT_EQ(daemon_.Addresses(kHome), std::vector<std::string>{"198.51.100.20"});

  // The other endpoints are served over HTTPS too, and plain HTTP goes on.
  r = Curl({}, "/metrics");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("updns_writer_requests_total"), std::string::npos) << r.Describe();
  HttpConnection plain;
  ASSERT_TRUE(plain.Connect(daemon_.http_port()));
  HttpResult again =
      plain.Exchange(UpdateRequest(UpdateTarget("198.51.100.20"), BasicAuth(kHome, token_), false));
  EXPECT_EQ(again.Lines(), std::vector<std::string>{"nochg 198.51.100.20"}) << again.raw;
}

TEST_F(HttpsTest, ServesTls12AndTls13WithModernCiphersOnly) {
  TlsClient tls13, tls12, cbc;
  ASSERT_TRUE(tls13.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}))
      << tls13.error();
  EXPECT_EQ(tls13.Version(), "TLSv1.3");
  ASSERT_TRUE(tls12.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string(),
                                                   .max_version = TLS1_2_VERSION}))
      << tls12.error();
  EXPECT_EQ(tls12.Version(), "TLSv1.2");
  EXPECT_EQ(tls12.Exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
  // A TLS 1.2 client offering only CBC suites finds none in common.
  EXPECT_FALSE(cbc.Connect(daemon_.https_port(), {.max_version = TLS1_2_VERSION,
                                                  .tls12_ciphers = "ECDHE-ECDSA-AES128-SHA"}));
  EXPECT_NE(cbc.error().find("handshake failure"), std::string::npos) << cbc.error();
}

TEST_F(HttpsTest, OldTlsPlainHttpAndGarbageOnTheHttpsPortAreRefusedAndServingGoesOn) {
  TlsClient old;
  EXPECT_FALSE(
      old.Connect(daemon_.https_port(),
                  {.min_version = TLS1_1_VERSION, .max_version = TLS1_1_VERSION, .legacy = true}))
      << "TLS 1.1 was accepted";
  EXPECT_NE(old.error().find("protocol version"), std::string::npos) << old.error();
  EXPECT_TRUE(daemon_.WaitForLog("unsupported protocol"));

  HttpConnection plain;
  ASSERT_TRUE(plain.Connect(daemon_.https_port()));
  ASSERT_TRUE(plain.Send(UpdateRequest(UpdateTarget("198.51.100.21"), BasicAuth(kHome, token_))));
  EXPECT_NE(plain.WaitClosed(milliseconds(5000)), HttpConnection::FillState::kTimeout);
  EXPECT_EQ(plain.buffer().find("HTTP/1."), std::string::npos) << plain.buffer();
  EXPECT_TRUE(daemon_.WaitForLog("event=tls_failed peer=127.0.0.1 stage=handshake"));

  HttpConnection garbage;
  ASSERT_TRUE(garbage.Connect(daemon_.https_port()));
  ASSERT_TRUE(garbage.Send(std::string("\x16\x03\x01\x00\x05hello-not-tls", 18)));
  EXPECT_NE(garbage.WaitClosed(milliseconds(5000)), HttpConnection::FillState::kTimeout);

  EXPECT_TRUE(daemon_.Addresses(kHome).empty()) << "the plain request must not have updated";
  HttpResult r = UpdateOverTls("198.51.100.22");
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.22"}) << r.raw;
}

class HttpsShortTimeoutTest : public HttpsTest {
 protected:
  HttpsOptions Options() const override { return {.read_timeout_ms = 800, .max_connections = 3}; }
};

TEST_F(HttpsShortTimeoutTest, HandshakeMustCompleteWithinTheReadTimeout) {
  // Silence, and a client hello cut short: both cut off after the read
  // timeout (800 ms), long before the idle timeout (30 s).
  HttpConnection silent, partial;
  ASSERT_TRUE(silent.Connect(daemon_.https_port()));
  ASSERT_TRUE(partial.Connect(daemon_.https_port()));
  auto start = Clock::now();
  ASSERT_TRUE(partial.Send(std::string("\x16\x03\x01\x01\x00\x01\x00", 7)));
  EXPECT_NE(silent.WaitClosed(milliseconds(5000)), HttpConnection::FillState::kTimeout);
  EXPECT_NE(partial.WaitClosed(milliseconds(5000)), HttpConnection::FillState::kTimeout);
  EXPECT_LT(Clock::now() - start, milliseconds(3000));
  EXPECT_TRUE(daemon_.WaitForLog("TLS handshake not done within the read timeout"));

  // After the handshake a slow request gets 408, encrypted.
  TlsClient slow;
  ASSERT_TRUE(slow.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}))
      << slow.error();
  ASSERT_TRUE(slow.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(slow.Read().status, 408);
}

TEST_F(HttpsShortTimeoutTest, HttpsConnectionsCountTowardsMaxConnections) {
  std::vector<std::unique_ptr<TlsClient>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<TlsClient>());
    ASSERT_TRUE(
        open.back()->Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}))
        << i << ": " << open.back()->error();
  }
  // One too many, be it HTTPS or plain HTTP: closed at once.
  TlsClient extra;
  EXPECT_FALSE(extra.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}));
  HttpConnection plain;
  ASSERT_TRUE(plain.Connect(daemon_.http_port()));
  EXPECT_NE(plain.WaitClosed(milliseconds(2000)), HttpConnection::FillState::kTimeout);
  open.pop_back();
  // Room again once one leaves (its close reaches the server shortly).
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    served = UpdateOverTls("198.51.100.23").status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpsTest, SighupReloadsTheCertificateWhileOpenConnectionsGoOn) {
  TlsClient before;
  ASSERT_TRUE(before.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}))
      << before.error();
  EXPECT_EQ(before.PeerSerial(), kFirstSerial);
  HttpResult r =
      before.Exchange(UpdateRequest(UpdateTarget("198.51.100.30"), BasicAuth(kHome, token_)));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.30"}) << r.raw;

  ASSERT_NO_FATAL_FAILURE(RenewCertificate(kRenewedSerial, "updns renewed"));
  ASSERT_EQ(::kill(daemon_.process().pid(), SIGHUP), 0);
  ASSERT_TRUE(daemon_.WaitForLog("event=tls_certificate_reloaded")) << daemon_.log();
  EXPECT_NE(daemon_.log().find("serial 0x2002"), std::string::npos) << daemon_.log();

  TlsClient after;
  ASSERT_TRUE(after.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}))
      << after.error();
  EXPECT_EQ(after.PeerSerial(), kRenewedSerial);
  EXPECT_EQ(after.PeerCommonName(), "updns renewed");
  r = after.Exchange(UpdateRequest(UpdateTarget("198.51.100.31"), BasicAuth(kHome, token_)));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.31"}) << r.raw;

  // The keep-alive connection from before the reload still works.
  r = before.Exchange(UpdateRequest(UpdateTarget("198.51.100.32"), BasicAuth(kHome, token_)));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.32"}) << r.raw;
  EXPECT_EQ(before.PeerSerial(), kFirstSerial);
  EXPECT_EQ(daemon_.Addresses(kHome), std::vector<std::string>{"198.51.100.32"});

  // curl sees the new certificate too.
  if (HaveProgram("curl")) {
    CommandResult c = Curl({"-v"}, "/metrics");
    EXPECT_EQ(c.exit_code, 0) << c.Describe();
    EXPECT_NE(c.err.find("CN=updns renewed"), std::string::npos) << c.Describe();
  }
}

TEST_F(HttpsTest, BrokenOrMismatchedKeyOnSighupIsRefusedAndTheOldCertificateServes) {
  std::filesystem::path key = daemon_.ca().key("server");
  std::string good_key = ReadFile(key);
  WriteFile(key, "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n");
  ASSERT_EQ(::kill(daemon_.process().pid(), SIGHUP), 0);
  ASSERT_TRUE(daemon_.WaitForLog("event=tls_reload_failed")) << daemon_.log();
  EXPECT_NE(daemon_.log().find("http.tls.key " + key.string() + ": "), std::string::npos)
      << daemon_.log();

  // A key of another certificate: refused as not matching.
  std::string error;
  ASSERT_TRUE(daemon_.ca().Issue("other", "other", 0x3003, &error)) << error;
  std::filesystem::copy_file(daemon_.ca().key("other"), key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::kill(daemon_.process().pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForFileText(daemon_.log_path(), "key does not match the certificate",
                              milliseconds(5000), milliseconds(5)))
      << daemon_.log();
  EXPECT_EQ(daemon_.CountInLog("event=tls_reload_failed"), 2u) << daemon_.log();

  TlsClient client;
  ASSERT_TRUE(client.Connect(daemon_.https_port(), {.ca_file = daemon_.ca().ca_file().string()}))
      << client.error();
  EXPECT_EQ(client.PeerSerial(), kFirstSerial);
  HttpResult r =
      client.Exchange(UpdateRequest(UpdateTarget("198.51.100.40"), BasicAuth(kHome, token_)));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.40"}) << r.raw;

  // Fixed files load on the next SIGHUP.
  WriteFile(key, good_key);
  ASSERT_EQ(::kill(daemon_.process().pid(), SIGHUP), 0);
  EXPECT_TRUE(daemon_.WaitForLog("event=tls_certificate_reloaded")) << daemon_.log();
}

TEST_F(HttpsTest, DdclientUpdatesOverHttps) {
  if (!HaveProgram("ddclient")) GTEST_SKIP() << "ddclient is not installed";
  if (RunCommand({"perl", "-MIO::Socket::SSL", "-e", "1"}, "", daemon_.dir()).exit_code != 0)
    GTEST_SKIP() << "ddclient's ssl=yes needs IO::Socket::SSL (Debian libio-socket-ssl-perl)";
  std::filesystem::path conf = daemon_.dir() / "ddclient.conf";
  // ssl_ca_file: ddclient 3.10 hands it to IO::Socket::SSL, which checks
  // the certificate against it and the name "127.0.0.1" against its SAN.
  WriteFile(conf,
            "daemon=0\nsyslog=no\nssl=yes\nssl_ca_file=" + daemon_.ca().ca_file().string() +
                "\nprotocol=dyndns2\nserver=127.0.0.1:" + std::to_string(daemon_.https_port()) +
                "\nusev4=ipv4, ipv4=203.0.113.9\nlogin=" + kHome + "\npassword='" + token_ + "'\n" +
                kHome + "\n");
  ::chmod(conf.c_str(), 0600);
  CommandResult r =
      RunCommand({"ddclient", "-foreground", "-daemon=0", "-file", conf.string(), "-cache",
                  (daemon_.dir() / "ddclient.cache").string(), "-verbose", "-noquiet"},
                 "", daemon_.dir(), milliseconds(30000));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("using SSL"), std::string::npos) << r.Describe();
  EXPECT_NE((r.out + r.err).find("SUCCESS:"), std::string::npos) << r.Describe();
  EXPECT_EQ((r.out + r.err).find("FAILED"), std::string::npos) << r.Describe();
  EXPECT_EQ(daemon_.Addresses(kHome), std::vector<std::string>{"203.0.113.9"}) << r.Describe();
}

TEST(HttpsStartTest, SighupWithoutHttpsIsHarmless) {
  DyndnsDaemon daemon;
  std::string error;
  ASSERT_TRUE(daemon.Start({}, &error)) << error;
  ASSERT_EQ(::kill(daemon.process().pid(), SIGHUP), 0);
  // The config is reloaded; there is no certificate to read again.
  EXPECT_TRUE(daemon.WaitForLog("event=reloaded ", milliseconds(5000))) << daemon.log();
  EXPECT_EQ(daemon.log().find("TLS"), std::string::npos) << daemon.log();
  EXPECT_TRUE(daemon.process().Running());
  EXPECT_TRUE(daemon.Serial().has_value()) << "still answering";
  EXPECT_TRUE(daemon.Stop());
}

TEST(HttpsStartTest, BadKeyAtStartStopsTheDaemonNamingTheFile) {
  if (!HaveProgram("openssl")) GTEST_SKIP() << "the openssl command is not installed";
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  TestCa ca;
  std::string error;
  ASSERT_TRUE(ca.Create(dir.path(), &error)) << error;
  ASSERT_TRUE(ca.Issue("a", "a", 1, &error)) << error;
  ASSERT_TRUE(ca.Issue("b", "b", 2, &error)) << error;
  std::filesystem::path config = dir.path() / "updns.yaml";
  uint16_t port = PickFreePort(false);
  WriteFile(config, "server:\n  listen: [\"127.0.0.1@" + std::to_string(port) +
                        "\"]\nstorage:\n  path: " + (dir.path() / "db").string() +
                        "\n  map_size: 64MiB\nhttp:\n  tls_listen: [\"127.0.0.1:" +
                        std::to_string(port) + "\"]\n  tls: {cert: " + ca.cert("a").string() +
                        ", key: " + ca.key("b").string() + "}\n");
  std::string expected = "http.tls.key " + ca.key("b").string() +
                         ": key does not match the certificate " + ca.cert("a").string();
  CommandResult r = RunCommand({UPDNSD_PATH, "--config", config.string()}, "", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find(expected), std::string::npos) << r.Describe();
  // --check loads the files too.
  r = RunCommand({UPDNSD_PATH, "--config", config.string(), "--check"}, "", dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(r.err, expected + "\n");
}

}  // namespace
}  // namespace updns::test
