// dyndns2 end to end: the real updnsd with its HTTP listener, provisioned
// with the real updnsctl, updated by curl, ddclient, inadyn and our own raw
// HTTP/1.1 client, and checked through DNS answers (ldns over UDP), the SOA
// serial and `updnsctl host list`.
//
// Loopback limits what can be shown end to end: every request comes from
// 127.0.0.1, a private source, so the rule "a private myip from a public
// source is replaced by the source" is tested at the unit level through
// update::ParseDyndnsRequest with a public sockaddr (last tests).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "tests/server/dyndns_fixture.h"
#include "update/dyndns2.h"

namespace updns::test {
namespace {

constexpr const char* kAlicePassword = "alice secret 1";
constexpr const char* kBobPassword = "bob-secret-2";
const std::string kHome = "home.dyn.example";
const std::string kOffice = "office.dyn.example";
const std::string kBobHost = "bob.dyn.example";

// The store as a client could see it: every host's line and the serial.
struct Snapshot {
  std::string hosts;
  std::optional<uint32_t> serial;
  bool operator==(const Snapshot&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Snapshot& s) {
  return out << "serial " << (s.serial ? std::to_string(*s.serial) : "<none>") << ", hosts:\n"
             << s.hosts;
}

bool HasSuccessWord(const std::string& body) {
  return body.find("good") != std::string::npos || body.find("nochg") != std::string::npos ||
         body.find("OK") != std::string::npos;
}

class DyndnsTest : public ::testing::Test {
 protected:
  virtual DyndnsOptions Options() const { return {}; }

  void SetUp() override {
    std::string error;
    ASSERT_TRUE(daemon_.Start(Options(), &error)) << error;
    // alice owns home and office, bob owns bob; tokens are made per test.
    ASSERT_NO_FATAL_FAILURE(AddAccount("alice", kAlicePassword));
    ASSERT_NO_FATAL_FAILURE(AddAccount("bob", kBobPassword));
    ASSERT_NO_FATAL_FAILURE(AddHost(kHome, "alice"));
    ASSERT_NO_FATAL_FAILURE(AddHost(kOffice, "alice"));
    ASSERT_NO_FATAL_FAILURE(AddHost(kBobHost, "bob"));
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << daemon_.log();
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(daemon_.Stop()) << "updnsd did not stop on SIGTERM";
  }

  void AddAccount(const std::string& name, const std::string& password) {
    CommandResult r =
        daemon_.Ctl({"account", "add", name, "--email", name + "@example.org"}, password + "\n");
    ASSERT_EQ(r.exit_code, 0) << "account add " << name << ": " << r.Describe();
  }

  void AddHost(const std::string& fqdn, const std::string& account) {
    CommandResult r = daemon_.Ctl({"host", "add", fqdn, "--account", account});
    ASSERT_EQ(r.exit_code, 0) << "host add " << fqdn << ": " << r.Describe();
  }

  // A new token for `fqdn`, as updnsctl prints it (the first stdout line).
  std::string CreateToken(const std::string& fqdn) {
    CommandResult r = daemon_.Ctl({"token", "create", fqdn});
    EXPECT_EQ(r.exit_code, 0) << "token create " << fqdn << ": " << r.Describe();
    std::string token = r.out.substr(0, r.out.find('\n'));
    EXPECT_GE(token.size(), 22u) << "a token of at least 128 bits, got '" << token << "'";
    return token;
  }

  Snapshot Snap() const { return {daemon_.HostList(), daemon_.Serial()}; }

  std::vector<std::string> A(const std::string& host) const {
    return daemon_.Addresses(host, LDNS_RR_TYPE_A);
  }
  std::vector<std::string> Aaaa(const std::string& host) const {
    return daemon_.Addresses(host, LDNS_RR_TYPE_AAAA);
  }

  std::string Url(const std::string& path_and_query) const {
    return "http://127.0.0.1:" + std::to_string(daemon_.http_port()) + path_and_query;
  }

  // curl -i with `args` (credentials, data, ...) and the URL last.
  HttpResult Curl(std::vector<std::string> args, const std::string& path_and_query) {
    std::vector<std::string> argv = {"curl", "-sS", "-i", "--noproxy", "*", "--max-time", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(Url(path_and_query));
    CommandResult r = RunCommand(argv, "", daemon_.dir());
    EXPECT_EQ(r.exit_code, 0) << "curl " << path_and_query << ": " << r.Describe();
    return ParseCurlOutput(r.out);
  }

  // One request on a new connection (Connection: close).
  HttpResult Get(const std::string& target, const std::string& authorization = "") {
    HttpConnection connection;
    if (!connection.Connect(daemon_.http_port())) return {};
    return connection.Exchange(UpdateRequest(target, authorization, false));
  }

  // Expects 401 with the Basic challenge and the body "badauth".
  void ExpectBadAuth(const HttpResult& r, const std::string& what) {
    EXPECT_EQ(r.status, 401) << what << "\n" << r.raw;
    EXPECT_EQ(r.Header("www-authenticate").value_or("<none>"), "Basic realm=\"updns\"")
        << what << "\n"
        << r.raw;
    EXPECT_EQ(r.Lines(), std::vector<std::string>{"badauth"}) << what << "\n" << r.raw;
  }

  DyndnsDaemon daemon_;
};

// ---------------------------------------------------------------------------
// Successful updates with curl

TEST_F(DyndnsTest, CurlTokenUpdateIsGoodThenNochgAndVisibleInDnsWithNewSerial) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  std::string token = CreateToken(kHome);
  std::optional<uint32_t> serial_before = daemon_.Serial();
  ASSERT_TRUE(serial_before);
  EXPECT_TRUE(A(kHome).empty()) << "a new host has no address yet";

  HttpResult r =
      Curl({"-u", kHome + ":" + token}, "/nic/update?hostname=" + kHome + "&myip=198.51.100.10");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.10"}) << r.raw;
  EXPECT_NE(r.Header("content-type").value_or("").find("text/plain"), std::string::npos) << r.raw;

  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.10"});
  std::optional<uint32_t> serial_after = daemon_.Serial();
  ASSERT_TRUE(serial_after);
  EXPECT_GT(*serial_after, *serial_before);
  // The record carries the zone's host_ttl.
  Packet pkt = daemon_.Query(kHome + ".", LDNS_RR_TYPE_A);
  ASSERT_TRUE(pkt);
  ASSERT_EQ(ldns_pkt_ancount(pkt.get()), 1u);
  EXPECT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0)), Options().host_ttl);
  EXPECT_TRUE(ldns_pkt_aa(pkt.get()));

  r = Curl({"-u", kHome + ":" + token}, "/nic/update?hostname=" + kHome + "&myip=198.51.100.10");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"nochg 198.51.100.10"}) << r.raw;
  EXPECT_EQ(daemon_.Serial(), serial_after) << "nochg must not bump the serial";

  // dig agrees with ldns.
  if (HaveProgram("dig")) {
    CommandResult dig = RunCommand(
        {"dig", "+short", "-p", std::to_string(daemon_.dns_port()), "@127.0.0.1", kHome, "A"}, "",
        daemon_.dir());
    EXPECT_EQ(dig.exit_code, 0) << dig.Describe();
    EXPECT_EQ(dig.out, "198.51.100.10\n") << dig.Describe();
  }
}

TEST_F(DyndnsTest, MetricsCountTheWritersCommitsAndRequests) {
  auto counter = [](const std::string& body, const std::string& name) -> std::optional<uint64_t> {
    size_t at = body.find("\n" + name + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::stoull(body.substr(at + name.size() + 2));
  };
  HttpResult before = Get("/metrics");
  ASSERT_EQ(before.status, 200) << before.raw;
  EXPECT_NE(before.body.find("# TYPE updns_writer_commits_total counter"), std::string::npos)
      << before.body;
  std::optional<uint64_t> commits = counter(before.body, "updns_writer_commits_total");
  std::optional<uint64_t> requests = counter(before.body, "updns_writer_requests_total");
  ASSERT_TRUE(commits && requests) << before.body;

  std::string token = CreateToken(kHome);
  HttpResult update =
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.70", BasicAuth(kHome, token));
  ASSERT_EQ(update.status, 200) << update.raw;

  HttpResult after = Get("/metrics");
  ASSERT_EQ(after.status, 200) << after.raw;
  EXPECT_EQ(counter(after.body, "updns_writer_commits_total"), *commits + 1) << after.body;
  EXPECT_EQ(counter(after.body, "updns_writer_requests_total"), *requests + 1) << after.body;
  EXPECT_EQ(counter(after.body, "updns_writer_failed_commits_total"), 0u) << after.body;
}

TEST_F(DyndnsTest, AccountPasswordUpdatesSeveralHostsOneLineEachInOrder) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  std::string auth = "alice:" + std::string(kAlicePassword);
  HttpResult r = Curl({"-u", auth}, "/nic/update?hostname=" + kHome + "&myip=203.0.113.1");
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 203.0.113.1"}) << r.raw;

  // office changes, home does not: the lines tell the order apart.
  std::optional<uint32_t> serial = daemon_.Serial();
  r = Curl({"-u", auth}, "/nic/update?hostname=" + kOffice + "," + kHome + "&myip=203.0.113.1");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), (std::vector<std::string>{"good 203.0.113.1", "nochg 203.0.113.1"}))
      << r.raw;
  r = Curl({"-u", auth}, "/nic/update?hostname=" + kHome + "," + kOffice + "&myip=203.0.113.2");
  EXPECT_EQ(r.Lines(), (std::vector<std::string>{"good 203.0.113.2", "good 203.0.113.2"})) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"203.0.113.2"});
  EXPECT_EQ(A(kOffice), std::vector<std::string>{"203.0.113.2"});
  ASSERT_TRUE(serial && daemon_.Serial());
  EXPECT_GT(*daemon_.Serial(), *serial);

  // A mix: each host gets its own line, in request order.
  r = Curl({"-u", auth}, "/nic/update?hostname=" + kOffice + ",nothere.dyn.example," + kHome +
                             "&myip=203.0.113.3");
  EXPECT_EQ(r.Lines(), (std::vector<std::string>{"good 203.0.113.3", "nohost", "good 203.0.113.3"}))
      << r.raw;
}

TEST_F(DyndnsTest, MyipTakesBothFamiliesInEitherOrderWithPrefixAndMyipv6) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  std::string token = CreateToken(kHome);
  std::vector<std::string> auth = {"-u", kHome + ":" + token};
  auto addresses_of = [](const std::string& line) {
    // "good A,B" -> {A, B}, order-free.
    std::set<std::string> out;
    size_t space = line.find(' ');
    if (space == std::string::npos) return out;
    std::stringstream in(line.substr(space + 1));
    for (std::string item; std::getline(in, item, ',');) out.insert(item);
    return out;
  };

  HttpResult r = Curl(auth, "/nic/update?hostname=" + kHome + "&myip=198.51.100.20,2001:db8::20");
  ASSERT_EQ(r.Lines().size(), 1u) << r.raw;
  EXPECT_EQ(r.Lines()[0].rfind("good ", 0), 0u) << r.raw;
  EXPECT_EQ(addresses_of(r.Lines()[0]), (std::set<std::string>{"198.51.100.20", "2001:db8::20"}));
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.20"});
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::20"});

  // IPv6 first, with /64 on it.
  r = Curl(auth, "/nic/update?hostname=" + kHome + "&myip=2001:db8::21/64,198.51.100.21");
  ASSERT_EQ(r.Lines().size(), 1u) << r.raw;
  EXPECT_EQ(r.Lines()[0].rfind("good ", 0), 0u) << r.raw;
  EXPECT_EQ(addresses_of(r.Lines()[0]), (std::set<std::string>{"198.51.100.21", "2001:db8::21"}));
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.21"});
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::21"});

  // myipv6 beside myip.
  r = Curl(auth, "/nic/update?hostname=" + kHome + "&myip=198.51.100.22&myipv6=2001:db8::22");
  ASSERT_EQ(r.Lines().size(), 1u) << r.raw;
  EXPECT_EQ(addresses_of(r.Lines()[0]), (std::set<std::string>{"198.51.100.22", "2001:db8::22"}));
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.22"});
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::22"});

  // myipv6 alone changes AAAA only.
  r = Curl(auth, "/nic/update?hostname=" + kHome + "&myipv6=2001:db8::23");
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 2001:db8::23"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.22"});
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::23"});
}

TEST_F(DyndnsTest, Ipv4UpdateLeavesAaaaAloneAndViceVersa) {
  std::string token = CreateToken(kHome);
  std::string auth = BasicAuth(kHome, token);
  HttpResult r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.30,2001:db8::30", auth);
  ASSERT_EQ(r.status, 200) << r.raw;

  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.31", auth);
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.31"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.31"});
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::30"}) << "AAAA must stay";

  r = Get("/nic/update?hostname=" + kHome + "&myip=2001:db8::31", auth);
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 2001:db8::31"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.31"}) << "A must stay";
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::31"});

  std::map<std::string, std::string> fields = daemon_.HostFields(kHome);
  EXPECT_EQ(fields["A"], "198.51.100.31");
  EXPECT_EQ(fields["AAAA"], "2001:db8::31");
}

TEST_F(DyndnsTest, CredentialsAsQueryParametersAndHeaderPrecedence) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  std::string token = CreateToken(kHome);

  // user/pass parameters, no Authorization header.
  HttpResult r = Curl(
      {}, "/nic/update?hostname=" + kHome + "&myip=198.51.100.40&user=" + kHome + "&pass=" + token);
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.40"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.40"});

  // Account credentials as parameters too.
  r = Curl({}, "/nic/update?hostname=" + kOffice +
                   "&myip=198.51.100.41&user=alice&pass=" + std::string("alice%20secret%201"));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.41"}) << r.raw;

  // A right Authorization header wins over wrong parameters...
  r = Curl({"-u", kHome + ":" + token},
           "/nic/update?hostname=" + kHome + "&myip=198.51.100.42&user=" + kHome + "&pass=wrong");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.42"}) << r.raw;

  // ...and a wrong one over right parameters.
  Snapshot before = Snap();
  r = Curl({"-u", kHome + ":wrong"}, "/nic/update?hostname=" + kHome +
                                         "&myip=198.51.100.43&user=" + kHome + "&pass=" + token);
  ExpectBadAuth(r, "wrong Basic, right parameters");
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.42"});
}

TEST_F(DyndnsTest, PostFormBodyTrailingSlashPathAndPercentEncoding) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  std::string token = CreateToken(kHome);
  std::vector<std::string> auth = {"-u", kHome + ":" + token};

  // POST with an application/x-www-form-urlencoded body.
  std::vector<std::string> post = auth;
  post.insert(post.end(), {"--data", "hostname=" + kHome + "&myip=198.51.100.50"});
  HttpResult r = Curl(post, "/nic/update");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.50"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.50"});

  // The /nic/update/ spelling.
  r = Curl(auth, "/nic/update/?hostname=" + kHome + "&myip=198.51.100.51");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.51"}) << r.raw;

  // inadyn-style "%3a" (and "%3A") in an IPv6 address, "%2E" in the name.
  r = Curl(auth, "/nic/update?hostname=home%2Edyn.example&myip=2001%3adb8%3A%3a51");
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 2001:db8::51"}) << r.raw;
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::51"});

  // Names in any case, with the final dot, in the user and in hostname.
  r = Curl({"-u", "Home.DYN.example:" + token},
           "/nic/update?hostname=HOME.Dyn.Example.&myip=198.51.100.52");
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.52"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.52"});
}

TEST_F(DyndnsTest, MissingMyipUsesSourceAddressAndPrivateMyipFromPrivateSourceStays) {
  if (!HaveProgram("curl")) GTEST_SKIP() << "curl is not installed";
  std::string token = CreateToken(kHome);
  HttpResult r = Curl({"-u", kHome + ":" + token}, "/nic/update?hostname=" + kHome);
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 127.0.0.1"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"127.0.0.1"});

  // The source (127.0.0.1) is private itself: a private myip is kept.
  r = Curl({"-u", kHome + ":" + token}, "/nic/update?hostname=" + kHome + "&myip=192.168.1.10");
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 192.168.1.10"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"192.168.1.10"});
}

// ---------------------------------------------------------------------------
// Refusals: the code, and the store unchanged

TEST_F(DyndnsTest, WrongOrMissingCredentialsAre401AndChangeNothing) {
  std::string token = CreateToken(kHome);
  Snapshot before = Snap();
  ASSERT_TRUE(before.serial);

  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.60",
                    BasicAuth(kHome, std::string(1, token[0] == 'x' ? 'y' : 'x') + token.substr(1))),
                "wrong token");
  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.60"), "no credentials");
  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.60",
                    BasicAuth("alice", "not the password")),
                "wrong account password");
  ExpectBadAuth(
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.60", BasicAuth("nobody", "whatever")),
      "unknown user");
  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.60", BasicAuth(kHome, "")),
                "empty password");
  // The token of one host is no password for another host's name.
  std::string office_token = CreateToken(kOffice);
  before = Snap();
  ExpectBadAuth(
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.60", BasicAuth(kHome, office_token)),
      "office's token as home's password");
  if (HaveProgram("curl")) {
    HttpResult curl = Curl({"-u", kHome + ":wrong"}, "/nic/update?hostname=" + kHome);
    ExpectBadAuth(curl, "curl with a wrong token");
    EXPECT_FALSE(HasSuccessWord(curl.body)) << curl.raw;
  }
  EXPECT_EQ(Snap(), before);
  EXPECT_TRUE(A(kHome).empty());
}

// Credentials that cannot even be decoded are failed credentials: the
// client must hear badauth (401 with the challenge), as for wrong ones.
TEST_F(DyndnsTest, UndecodableBasicCredentialsAreBadauth) {
  Snapshot before = Snap();
  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.61", "Basic !!!!"),
                "Authorization: Basic !!!! (not base64)");
  ExpectBadAuth(
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.61", "Basic " + Base64(kHome)),
      "Basic credentials without ':'");
  EXPECT_EQ(Snap(), before);
}

TEST_F(DyndnsTest, DisabledAccountCannotUpdateByPasswordOrToken) {
  std::string token = CreateToken(kHome);
  CommandResult disable = daemon_.Ctl({"account", "disable", "alice"});
  ASSERT_EQ(disable.exit_code, 0) << disable.Describe();
  Snapshot before = Snap();
  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.62",
                    BasicAuth("alice", kAlicePassword)),
                "password of a disabled account");
  ExpectBadAuth(
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.62", BasicAuth(kHome, token)),
      "token of a disabled account's host");
  EXPECT_EQ(Snap(), before);
  CommandResult enable = daemon_.Ctl({"account", "enable", "alice"});
  ASSERT_EQ(enable.exit_code, 0) << enable.Describe();
  HttpResult r =
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.62", BasicAuth(kHome, token));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.62"}) << r.raw;
}

TEST_F(DyndnsTest, ForeignHostsAreNotYours) {
  std::string home_token = CreateToken(kHome);
  Snapshot before = Snap();

  // Token of home used for office (user = home, hostname = office).
  HttpResult r =
      Get("/nic/update?hostname=" + kOffice + "&myip=198.51.100.70", BasicAuth(kHome, home_token));
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"!yours"}) << r.raw;
  EXPECT_EQ(Snap(), before);

  // alice's password for bob's host.
  r = Get("/nic/update?hostname=" + kBobHost + "&myip=198.51.100.70",
          BasicAuth("alice", kAlicePassword));
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"!yours"}) << r.raw;
  EXPECT_EQ(Snap(), before);
  EXPECT_TRUE(A(kBobHost).empty());
  EXPECT_TRUE(A(kOffice).empty());
}

TEST_F(DyndnsTest, UnknownHostBadNamesAndTooManyHosts) {
  std::string auth = BasicAuth("alice", kAlicePassword);
  Snapshot before = Snap();

  HttpResult r = Get("/nic/update?hostname=nothere.dyn.example&myip=198.51.100.80", auth);
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"nohost"}) << r.raw;
  EXPECT_EQ(Snap(), before);

  for (const char* bad : {"bad..name", "nodot", "bad..name.dyn.example", ".dyn.example"}) {
    r = Get(std::string("/nic/update?hostname=") + bad + "&myip=198.51.100.80", auth);
    EXPECT_EQ(r.status, 200) << bad << "\n" << r.raw;
    EXPECT_EQ(r.Lines(), std::vector<std::string>{"notfqdn"}) << bad << "\n" << r.raw;
  }
  // 21 names (two of them alice's own hosts): numhost, nothing applied.
  std::string names = kHome + "," + kOffice;
  for (int i = 0; i < 19; ++i) names += ",h" + std::to_string(i) + ".dyn.example";
  r = Get("/nic/update?hostname=" + names + "&myip=198.51.100.81", auth);
  EXPECT_EQ(r.status, 200) << r.raw;
  ASSERT_FALSE(r.Lines().empty()) << r.raw;
  for (const std::string& line : r.Lines()) EXPECT_EQ(line, "numhost") << r.raw;
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;
  EXPECT_EQ(Snap(), before);
  EXPECT_TRUE(A(kHome).empty());

  // Exactly 20 is allowed.
  names = kHome + "," + kOffice;
  for (int i = 0; i < 18; ++i) names += ",h" + std::to_string(i) + ".dyn.example";
  r = Get("/nic/update?hostname=" + names + "&myip=198.51.100.82", auth);
  std::vector<std::string> expected = {"good 198.51.100.82", "good 198.51.100.82"};
  expected.resize(20, "nohost");
  EXPECT_EQ(r.Lines(), expected) << r.raw;
}

// Host names are letter-digit-hyphen labels (update/accounts.h; updnsctl
// refuses others), so no host can have such a name: it is not a name of this
// service at all, the same as "bad..name".
TEST_F(DyndnsTest, NamesBreakingTheHostNameRuleAreNotfqdn) {
  std::string auth = BasicAuth("alice", kAlicePassword);
  for (const char* bad : {"-x.dyn.example", "x-.dyn.example", "x_y.dyn.example"}) {
    CommandResult add = daemon_.Ctl({"host", "add", bad, "--account", "alice"});
    EXPECT_NE(add.exit_code, 0) << "updnsctl refuses " << bad;
    Snapshot before = Snap();
    HttpResult r = Get(std::string("/nic/update?hostname=") + bad + "&myip=198.51.100.80", auth);
    EXPECT_EQ(r.status, 200) << bad << "\n" << r.raw;
    EXPECT_EQ(r.Lines(), std::vector<std::string>{"notfqdn"}) << bad << "\n" << r.raw;
    EXPECT_EQ(Snap(), before);
  }
}

TEST_F(DyndnsTest, DisabledHostIsFatal) {
  std::string token = CreateToken(kHome);
  HttpResult r =
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.90", BasicAuth(kHome, token));
  ASSERT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.90"}) << r.raw;

  CommandResult disable = daemon_.Ctl({"host", "disable", kHome});
  ASSERT_EQ(disable.exit_code, 0) << disable.Describe();
  Snapshot before = Snap();
  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.91", BasicAuth(kHome, token));
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"fatal"}) << r.raw;
  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.91",
          BasicAuth("alice", kAlicePassword));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"fatal"}) << r.raw;
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.90"})
      << "a disabled host keeps its records";

  CommandResult enable = daemon_.Ctl({"host", "enable", kHome});
  ASSERT_EQ(enable.exit_code, 0) << enable.Describe();
  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.92", BasicAuth(kHome, token));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.92"}) << r.raw;
}

TEST_F(DyndnsTest, TooManyNochgLocksTheHostEvenForAChangedAddress) {
  std::string token = CreateToken(kHome);
  std::string auth = BasicAuth(kHome, token);
  std::string target = "/nic/update?hostname=" + kHome + "&myip=198.51.100.100";
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(daemon_.http_port()));
  HttpResult r = connection.Exchange(UpdateRequest(target, auth));
  ASSERT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.100"}) << r.raw;
  for (unsigned i = 0; i < Options().nochg_limit; ++i) {
    r = connection.Exchange(UpdateRequest(target, auth));
    EXPECT_EQ(r.Lines(), std::vector<std::string>{"nochg 198.51.100.100"}) << "nochg #" << i + 1;
  }
  r = connection.Exchange(UpdateRequest(target, auth));
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"abuse"}) << "nochg #" << Options().nochg_limit + 1;

  Snapshot before = Snap();
  r = connection.Exchange(
      UpdateRequest("/nic/update?hostname=" + kHome + "&myip=198.51.100.101", auth));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"abuse"}) << "a changed address while locked";
  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.102",
          BasicAuth("alice", kAlicePassword));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"abuse"}) << "account credentials while locked";
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.100"});

  // Other hosts are not affected.
  r = Get("/nic/update?hostname=" + kOffice + "&myip=198.51.100.101",
          BasicAuth("alice", kAlicePassword));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.101"}) << r.raw;
}

TEST_F(DyndnsTest, BadAddressIs400WithoutSuccessWords) {
  std::string token = CreateToken(kHome);
  Snapshot before = Snap();
  for (const char* bad :
       {"999.1.1.1", "1.2.3", "2001:db8::zz", "198.51.100.1,198.51.100.2", "hello"}) {
    HttpResult r =
        Get(std::string("/nic/update?hostname=") + kHome + "&myip=" + bad, BasicAuth(kHome, token));
    EXPECT_EQ(r.status, 400) << "myip=" << bad << "\n" << r.raw;
    EXPECT_FALSE(HasSuccessWord(r.body)) << "myip=" << bad << "\n" << r.raw;
  }
  HttpResult r =
      Get("/nic/update?hostname=" + kHome + "&myipv6=198.51.100.1", BasicAuth(kHome, token));
  EXPECT_EQ(r.status, 400) << "an IPv4 address as myipv6\n" << r.raw;
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;
  r = Get("/nic/update?hostname=" + kHome + "&myip=%zz", BasicAuth(kHome, token));
  EXPECT_EQ(r.status, 400) << "bad percent-encoding\n" << r.raw;
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(daemon_.HostFields(kHome)["TOKEN_USED"], "no");
}

// ---------------------------------------------------------------------------
// Tokens

TEST_F(DyndnsTest, TokenUseIsRecordedAndExchangeInvalidatesOnlyTheOldToken) {
  std::string home_token = CreateToken(kHome);
  std::string office_token = CreateToken(kOffice);
  std::map<std::string, std::string> fields = daemon_.HostFields(kHome);
  EXPECT_EQ(fields["TOKEN"], "yes");
  EXPECT_EQ(fields["TOKEN_USED"], "no");
  EXPECT_EQ(fields["LAST_UPDATE"], "-");

  HttpResult r =
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.110", BasicAuth(kHome, home_token));
  ASSERT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.110"}) << r.raw;
  fields = daemon_.HostFields(kHome);
  EXPECT_EQ(fields["TOKEN_USED"], "yes");
  EXPECT_NE(fields["LAST_UPDATE"], "-");
  EXPECT_FALSE(fields["LAST_UPDATE"].empty());
  EXPECT_EQ(daemon_.HostFields(kOffice)["TOKEN_USED"], "no");

  // office used once, then home's token is exchanged.
  r = Get("/nic/update?hostname=" + kOffice + "&myip=198.51.100.111",
          BasicAuth(kOffice, office_token));
  ASSERT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.111"}) << r.raw;
  std::map<std::string, std::string> office_before = daemon_.HostFields(kOffice);
  std::string new_home_token = CreateToken(kHome);
  EXPECT_NE(new_home_token, home_token);
  EXPECT_EQ(daemon_.HostFields(kHome)["TOKEN_USED"], "no") << "a new token starts unused";
  EXPECT_EQ(daemon_.HostFields(kOffice), office_before) << "no other host is touched";

  Snapshot before = Snap();
  ExpectBadAuth(
      Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.112", BasicAuth(kHome, home_token)),
      "the old token after the exchange");
  EXPECT_EQ(Snap(), before);
  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.112",
          BasicAuth(kHome, new_home_token));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.112"}) << r.raw;
  r = Get("/nic/update?hostname=" + kOffice + "&myip=198.51.100.113",
          BasicAuth(kOffice, office_token));
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.113"}) << "office's token";
  EXPECT_EQ(daemon_.HostFields(kHome)["TOKEN_USED"], "yes");

  // A revoked token fails too.
  CommandResult revoke = daemon_.Ctl({"token", "revoke", kHome});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.Describe();
  ExpectBadAuth(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.114",
                    BasicAuth(kHome, new_home_token)),
                "a revoked token");
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.112"});
}

// ---------------------------------------------------------------------------
// Real clients

TEST_F(DyndnsTest, DdclientUpdatesAHost) {
  if (!HaveProgram("ddclient")) GTEST_SKIP() << "ddclient is not installed";
  std::string token = CreateToken(kHome);
  std::filesystem::path conf = daemon_.dir() / "ddclient.conf";
  WriteFile(conf,
            "daemon=0\n"
            "syslog=no\n"
            "ssl=no\n"
            "protocol=dyndns2\n"
            "server=127.0.0.1:" +
                std::to_string(daemon_.http_port()) +
                "\n"
                "usev4=ipv4, ipv4=203.0.113.7\n"
                "login=" +
                kHome +
                "\n"
                "password='" +
                token + "'\n" + kHome + "\n");
  ::chmod(conf.c_str(), 0600);
  std::optional<uint32_t> serial = daemon_.Serial();
  CommandResult r =
      RunCommand({"ddclient", "-foreground", "-daemon=0", "-file", conf.string(), "-cache",
                  (daemon_.dir() / "ddclient.cache").string(), "-verbose", "-noquiet"},
                 "", daemon_.dir(), milliseconds(30000));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("203.0.113.7"), std::string::npos) << r.Describe();
  EXPECT_NE((r.out + r.err).find("SUCCESS:"), std::string::npos) << r.Describe();
  EXPECT_EQ((r.out + r.err).find("FAILED"), std::string::npos) << r.Describe();
  EXPECT_EQ(A(kHome), std::vector<std::string>{"203.0.113.7"}) << r.Describe();
  ASSERT_TRUE(serial && daemon_.Serial());
  EXPECT_GT(*daemon_.Serial(), *serial);
  EXPECT_EQ(daemon_.HostFields(kHome)["TOKEN_USED"], "yes");
}

TEST_F(DyndnsTest, InadynUpdatesAHostOverIpv4AndIpv6) {
  if (!HaveProgram("inadyn")) GTEST_SKIP() << "inadyn is not installed";
  std::string token = CreateToken(kHome);
  // inadyn reads its address from checkip-command, sends HTTP/1.0 with
  // Basic auth and "%3a" for the colons of an IPv6 address.
  auto run = [&](const std::string& address, const std::string& name) {
    std::filesystem::path conf = daemon_.dir() / (name + ".conf");
    std::filesystem::path cache = daemon_.dir() / (name + "-cache");
    WriteFile(conf,
              "period = 300\n"
              "allow-ipv6 = true\n"
              "custom updns {\n"
              "  ddns-server = \"127.0.0.1:" +
                  std::to_string(daemon_.http_port()) +
                  "\"\n"
                  "  ddns-path = \"/nic/update?hostname=%h&myip=%i\"\n"
                  "  ssl = false\n"
                  "  username = \"" +
                  kHome +
                  "\"\n"
                  "  password = \"" +
                  token +
                  "\"\n"
                  "  hostname = \"" +
                  kHome +
                  "\"\n"
                  "  checkip-command = \"echo " +
                  address +
                  "\"\n"
                  "}\n");
    ::chmod(conf.c_str(), 0600);
    std::filesystem::create_directory(cache);
    return RunCommand({"inadyn", "--foreground", "--once", "--no-pidfile", "--loglevel=debug",
                       "--cache-dir=" + cache.string(), "-f", conf.string()},
                      "", daemon_.dir(), milliseconds(30000));
  };

  std::optional<uint32_t> serial = daemon_.Serial();
  CommandResult r = run("203.0.113.9", "inadyn4");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("Successful alias table update"), std::string::npos)
      << r.Describe();
  EXPECT_EQ(A(kHome), std::vector<std::string>{"203.0.113.9"}) << r.Describe();
  ASSERT_TRUE(serial && daemon_.Serial());
  EXPECT_GT(*daemon_.Serial(), *serial);
  EXPECT_EQ(daemon_.HostFields(kHome)["TOKEN_USED"], "yes");

  r = run("2001:db8::9", "inadyn6");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("Successful alias table update"), std::string::npos)
      << r.Describe();
  EXPECT_EQ(Aaaa(kHome), std::vector<std::string>{"2001:db8::9"}) << r.Describe();
  EXPECT_EQ(A(kHome), std::vector<std::string>{"203.0.113.9"}) << "an IPv6 update keeps A";
}

// ---------------------------------------------------------------------------
// Many clients at once

TEST_F(DyndnsTest, ConcurrentKeepAliveUpdatesAreAllInDns) {
  constexpr int kThreads = 8, kPerThread = 50, kHosts = 20;
  std::vector<std::string> hosts, tokens;
  for (int h = 0; h < kHosts; ++h) {
    // (Built in steps: GCC 12 warns falsely on "c" + std::string.)
    std::string name = std::to_string(h);
    name.insert(0, 1, 'c');
    hosts.push_back(name + ".dyn.example");
    ASSERT_NO_FATAL_FAILURE(AddHost(hosts.back(), h % 2 ? "alice" : "bob"));
    tokens.push_back(CreateToken(hosts.back()));
  }
  std::optional<uint32_t> serial_before = daemon_.Serial();
  ASSERT_TRUE(serial_before);

  // Host h is updated by thread h % kThreads only, so each host's updates
  // follow one another and its last acknowledged address is well defined.
  struct Outcome {
    std::vector<std::string> errors;
    std::map<int, std::string> last_acked;  // host index -> address
    int good = 0;
  };
  std::vector<Outcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Outcome& out = outcomes[t];
      std::vector<int> mine;
      for (int h = t; h < kHosts; h += kThreads) mine.push_back(h);
      HttpConnection connection;
      if (!connection.Connect(daemon_.http_port())) {
        out.errors.push_back("thread " + std::to_string(t) + ": cannot connect");
        return;
      }
      for (int i = 0; i < kPerThread; ++i) {
        int h = mine[i % mine.size()];
        std::string address = "198.18." + std::to_string(t) + "." + std::to_string(i + 1);
        std::string request = UpdateRequest("/nic/update?hostname=" + hosts[h] + "&myip=" + address,
                                            BasicAuth(hosts[h], tokens[h]));
        HttpResult r = connection.Exchange(request);
        if (r.status == 0) {
          // The server may close a keep-alive connection; reconnect once.
          if (!connection.Connect(daemon_.http_port())) {
            out.errors.push_back("reconnect failed");
            return;
          }
          r = connection.Exchange(request);
        }
        std::vector<std::string> lines = r.Lines();
        if (r.status == 200 && lines.size() == 1 &&
            (lines[0] == "good " + address || lines[0] == "nochg " + address)) {
          out.last_acked[h] = address;
          ++out.good;
        } else {
          out.errors.push_back(hosts[h] + " " + address + ": " + std::to_string(r.status) + " " +
                               r.raw);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  std::cerr << kThreads * kPerThread << " updates in " << elapsed.count() << " ms\n";

  std::map<int, std::string> last_acked;
  int good = 0;
  for (const Outcome& out : outcomes) {
    for (const std::string& e : out.errors) ADD_FAILURE() << e;
    last_acked.insert(out.last_acked.begin(), out.last_acked.end());
    good += out.good;
  }
  EXPECT_EQ(good, kThreads * kPerThread);
  ASSERT_EQ(last_acked.size(), static_cast<size_t>(kHosts));
  for (const auto& [h, address] : last_acked) {
    EXPECT_EQ(A(hosts[h]), std::vector<std::string>{address}) << hosts[h];
    EXPECT_EQ(daemon_.HostFields(hosts[h])["A"], address) << hosts[h];
  }
  ASSERT_TRUE(daemon_.Serial());
  EXPECT_GT(*daemon_.Serial(), *serial_before);

  // Acknowledged means durable: SIGKILL, restart, the same answers.
  std::optional<uint32_t> serial = daemon_.Serial();
  std::string error;
  ASSERT_TRUE(daemon_.KillAndRestart(&error)) << error;
  for (const auto& [h, address] : last_acked)
    EXPECT_EQ(A(hosts[h]), std::vector<std::string>{address}) << hosts[h] << " after a restart";
  EXPECT_EQ(daemon_.Serial(), serial);
}

// ---------------------------------------------------------------------------
// Malformed and hostile requests

class DyndnsMalformedTest : public DyndnsTest {
 protected:
  DyndnsOptions Options() const override {
    DyndnsOptions o;
    o.read_timeout_ms = 700;
    return o;
  }

  // A complete update still works on a fresh connection.
  void ExpectStillServing(const std::string& token, const std::string& address) {
    HttpResult r =
        Get("/nic/update?hostname=" + kHome + "&myip=" + address, BasicAuth(kHome, token));
    EXPECT_EQ(r.Lines(), std::vector<std::string>{"good " + address}) << r.raw;
    EXPECT_EQ(A(kHome), std::vector<std::string>{address});
  }
};

TEST_F(DyndnsMalformedTest, OversizedHeadersAre431) {
  std::string token = CreateToken(kHome);
  Snapshot before = Snap();
  HttpConnection connection;
  ASSERT_TRUE(connection.Connect(daemon_.http_port()));
  std::string request = "GET /nic/update?hostname=" + kHome +
                        "&myip=198.51.100.120 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " +
                        BasicAuth(kHome, token) + "\r\nX-Fill: " + std::string(9000, 'a') +
                        "\r\n\r\n";
  connection.Send(request);  // the server may close before it has read everything
  HttpResult r = connection.Read(milliseconds(5000));
  EXPECT_EQ(r.status, 431) << r.raw.substr(0, 300);
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw.substr(0, 300);
  EXPECT_NE(connection.WaitClosed(milliseconds(3000)), HttpConnection::FillState::kTimeout)
      << "the connection is closed after a 431";

  // Many small headers adding up over the limit.
  HttpConnection many;
  ASSERT_TRUE(many.Connect(daemon_.http_port()));
  request = "GET /nic/update HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 600; ++i) request += "X-H" + std::to_string(i) + ": 0123456789\r\n";
  many.Send(request + "\r\n");
  r = many.Read(milliseconds(5000));
  EXPECT_EQ(r.status, 431) << r.raw.substr(0, 300);
  EXPECT_EQ(Snap(), before);
  ExpectStillServing(token, "198.51.100.121");
}

TEST_F(DyndnsMalformedTest, TruncatedRequestsThenCloseLeaveTheDaemonServing) {
  std::string token = CreateToken(kHome);
  Snapshot before = Snap();
  {
    HttpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.http_port()));
    c.Send("GET /nic/update?hostname=" + kHome + "&myip=198.51.100.130 HTTP/1.1\r\nHost: 12");
  }
  {
    // A POST whose body stops short of its Content-Length.
    HttpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.http_port()));
    c.Send("POST /nic/update HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " +
           BasicAuth(kHome, token) +
           "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
           "hostname=" +
           kHome + "&myip=198.51.100.131");
    std::this_thread::sleep_for(milliseconds(50));
  }
  {
    // Half-close after a partial request: the server may answer 400 or
    // just close; either way it must not apply anything.
    HttpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.http_port()));
    c.Send("GET /nic/update?hostname=" + kHome + "&myip=198.51.100.132 HTTP/1.1\r\n");
    ::shutdown(c.fd(), SHUT_WR);
    EXPECT_NE(c.WaitClosed(milliseconds(3000)), HttpConnection::FillState::kTimeout);
    EXPECT_FALSE(HasSuccessWord(c.buffer())) << c.buffer();
  }
  {
    // Garbage instead of a request line.
    HttpConnection c;
    ASSERT_TRUE(c.Connect(daemon_.http_port()));
    HttpResult r = c.Exchange("\x16\x03\x01 not http at all\r\n\r\n", milliseconds(3000));
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;
  }
  EXPECT_EQ(Snap(), before);
  ExpectStillServing(token, "198.51.100.133");
}

TEST_F(DyndnsMalformedTest, OtherMethodsPathsAndBodiesAreRefused) {
  std::string token = CreateToken(kHome);
  std::string auth = BasicAuth(kHome, token);
  Snapshot before = Snap();
  HttpConnection c;
  ASSERT_TRUE(c.Connect(daemon_.http_port()));
  HttpResult r = c.Exchange("PUT /nic/update?hostname=" + kHome +
                            "&myip=198.51.100.135 HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
                            "\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(r.status, 405) << r.raw;
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;
  r = Get("/nic/updates?hostname=" + kHome + "&myip=198.51.100.135", auth);
  EXPECT_EQ(r.status, 404) << r.raw;
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw;

  // A body over max_body_size (64 KiB).
  HttpConnection big;
  ASSERT_TRUE(big.Connect(daemon_.http_port()));
  std::string body = "hostname=" + kHome + "&myip=198.51.100.135&x=" + std::string(70000, 'a');
  big.Send("POST /nic/update HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
           "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n");
  big.Send(body);  // may fail half-way when the server has closed already
  r = big.Read(milliseconds(5000));
  EXPECT_EQ(r.status, 413) << r.raw.substr(0, 300);
  EXPECT_FALSE(HasSuccessWord(r.body)) << r.raw.substr(0, 300);
  EXPECT_EQ(Snap(), before);
  ExpectStillServing(token, "198.51.100.136");
}

TEST_F(DyndnsMalformedTest, PipelinedRequestsAreAnsweredInOrder) {
  std::string token = CreateToken(kHome);
  std::string auth = BasicAuth(kHome, token);
  std::string batch;
  for (int i = 0; i < 5; ++i)
    batch += UpdateRequest(
        "/nic/update?hostname=" + kHome + "&myip=198.51.100." + std::to_string(160 + i / 2), auth);
  HttpConnection c;
  ASSERT_TRUE(c.Connect(daemon_.http_port()));
  ASSERT_TRUE(c.Send(batch));
  const char* expected[] = {"good 198.51.100.160", "nochg 198.51.100.160", "good 198.51.100.161",
                            "nochg 198.51.100.161", "good 198.51.100.162"};
  for (const char* line : expected) {
    HttpResult r = c.Read(milliseconds(5000));
    EXPECT_EQ(r.Lines(), std::vector<std::string>{line}) << r.raw;
  }
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.162"});
}

TEST_F(DyndnsMalformedTest, SlowRequestTimesOutWith408) {
  std::string token = CreateToken(kHome);
  Snapshot before = Snap();
  HttpConnection c;
  ASSERT_TRUE(c.Connect(daemon_.http_port()));
  std::string request = UpdateRequest("/nic/update?hostname=" + kHome + "&myip=198.51.100.140",
                                      BasicAuth(kHome, token));
  // One byte every 100 ms: the whole request would take far longer than
  // read_timeout (700 ms), which counts from the first byte.
  auto start = Clock::now();
  HttpConnection::FillState state = HttpConnection::FillState::kTimeout;
  for (size_t i = 0; i < request.size() - 1 && Clock::now() - start < std::chrono::seconds(5);
       ++i) {
    if (!c.Send(request.substr(i, 1))) {
      state = HttpConnection::FillState::kReset;
      break;
    }
    state = c.Fill(Clock::now() + milliseconds(100));
    if (state != HttpConnection::FillState::kTimeout) break;
  }
  if (state == HttpConnection::FillState::kData) state = c.WaitClosed(milliseconds(2000));
  auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_NE(state, HttpConnection::FillState::kTimeout) << "the connection was never closed";
  EXPECT_LT(elapsed.count(), 2500) << "read_timeout 700 ms was not enforced";
  EXPECT_EQ(c.buffer().rfind("HTTP/1.1 408", 0), 0u) << "got: " << c.buffer();
  EXPECT_FALSE(HasSuccessWord(c.buffer().substr(c.buffer().find("\r\n\r\n") + 1))) << c.buffer();

  EXPECT_EQ(Snap(), before);
  ExpectStillServing(token, "198.51.100.141");
}

// ---------------------------------------------------------------------------
// Abuse windows with short timings

class DyndnsShortWindowTest : public DyndnsTest {
 protected:
  DyndnsOptions Options() const override {
    DyndnsOptions o;
    o.nochg_limit = 3;
    o.nochg_window = 2;
    o.abuse_lock = 2;
    return o;
  }
};

TEST_F(DyndnsShortWindowTest, NochgWindowResetsAndAbuseLockExpires) {
  std::string token = CreateToken(kHome);
  std::string auth = BasicAuth(kHome, token);
  std::string same = "/nic/update?hostname=" + kHome + "&myip=198.51.100.150";
  HttpResult r = Get(same, auth);
  ASSERT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.150"}) << r.raw;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Get(same, auth).Lines()[0], "nochg 198.51.100.150");
  // The window (2 s) passes: the count starts again.
  std::this_thread::sleep_for(milliseconds(3100));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Get(same, auth).Lines()[0], "nochg 198.51.100.150") << "after the window, #" << i;
  EXPECT_EQ(Get(same, auth).Lines(), std::vector<std::string>{"abuse"});
  EXPECT_EQ(Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.151", auth).Lines(),
            std::vector<std::string>{"abuse"});
  // The lock (2 s) ends.
  std::this_thread::sleep_for(milliseconds(3100));
  r = Get("/nic/update?hostname=" + kHome + "&myip=198.51.100.151", auth);
  EXPECT_EQ(r.Lines(), std::vector<std::string>{"good 198.51.100.151"}) << r.raw;
  EXPECT_EQ(A(kHome), std::vector<std::string>{"198.51.100.151"});
}

// ---------------------------------------------------------------------------
// The public-source rule, at the unit level: loopback cannot show it.

sockaddr_storage SourceAddress(const char* text) {
  sockaddr_storage ss{};
  if (std::strchr(text, ':')) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, text, &sin6->sin6_addr);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, text, &sin->sin_addr);
  }
  return ss;
}

std::string Raw(const char* text) {
  uint8_t raw[16];
  if (::inet_pton(AF_INET, text, raw) == 1) return std::string(reinterpret_cast<char*>(raw), 4);
  if (::inet_pton(AF_INET6, text, raw) == 1) return std::string(reinterpret_cast<char*>(raw), 16);
  return "<bad test address>";
}

TEST(DyndnsSourceRuleTest, PrivateMyipFromPublicSourceIsReplacedBySource) {
  const std::string auth = BasicAuth("h.dyn.example", "t");
  struct Case {
    const char* source;
    const char* query;
    const char* ipv4;  // expected, "" = none
    const char* ipv6;
  };
  const Case cases[] = {
      // Private IPv4 (RFC 1918, loopback, link-local) from a public IPv4 source.
      {"203.0.113.50", "hostname=h.dyn.example&myip=192.168.1.10", "203.0.113.50", ""},
      {"203.0.113.50", "hostname=h.dyn.example&myip=10.1.2.3", "203.0.113.50", ""},
      {"203.0.113.50", "hostname=h.dyn.example&myip=172.16.0.1", "203.0.113.50", ""},
      {"203.0.113.50", "hostname=h.dyn.example&myip=127.0.0.1", "203.0.113.50", ""},
      {"203.0.113.50", "hostname=h.dyn.example&myip=169.254.1.1", "203.0.113.50", ""},
      // A public myip is kept.
      {"203.0.113.50", "hostname=h.dyn.example&myip=198.51.100.7", "198.51.100.7", ""},
      // 172.32/12 is not private.
      {"203.0.113.50", "hostname=h.dyn.example&myip=172.32.0.1", "172.32.0.1", ""},
      // ULA, link-local and loopback IPv6 from a public IPv6 source.
      {"2001:db8:1::50", "hostname=h.dyn.example&myip=fd00::1", "", "2001:db8:1::50"},
      {"2001:db8:1::50", "hostname=h.dyn.example&myipv6=fe80::1", "", "2001:db8:1::50"},
      {"2001:db8:1::50", "hostname=h.dyn.example&myip=::1", "", "2001:db8:1::50"},
      {"2001:db8:1::50", "hostname=h.dyn.example&myip=2001:db8:2::9", "", "2001:db8:2::9"},
      // The rule works per family: a public IPv4 source cannot stand in for
      // a private IPv6 address, and the public IPv6 stays.
      {"203.0.113.50", "hostname=h.dyn.example&myip=192.168.1.10,2001:db8::9", "203.0.113.50",
       "2001:db8::9"},
      // From a private source a private myip stays (the loopback case).
      {"192.168.0.2", "hostname=h.dyn.example&myip=192.168.1.10", "192.168.1.10", ""},
      {"127.0.0.1", "hostname=h.dyn.example&myip=10.0.0.1", "10.0.0.1", ""},
      // No myip: the source.
      {"203.0.113.50", "hostname=h.dyn.example", "203.0.113.50", ""},
      {"2001:db8:1::50", "hostname=h.dyn.example", "", "2001:db8:1::50"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.source) + " " + c.query);
    auto parsed = update::ParseDyndnsRequest(c.query, &auth, SourceAddress(c.source));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->ipv4, *c.ipv4 ? Raw(c.ipv4) : std::string());
    EXPECT_EQ(parsed->ipv6, *c.ipv6 ? Raw(c.ipv6) : std::string());
    EXPECT_EQ(parsed->user, "h.dyn.example");
    EXPECT_EQ(parsed->password, "t");
  }
}

TEST(DyndnsSourceRuleTest, ParsesCredentialsAndNames) {
  sockaddr_storage source = SourceAddress("203.0.113.50");
  // Basic wins over parameters; parameters work alone.
  std::string basic = BasicAuth("Alice", "p:w");
  auto r = update::ParseDyndnsRequest("hostname=A.Dyn.Example.,b.dyn.example&user=x&pass=y", &basic,
                                      source);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->user, "alice");
  EXPECT_EQ(r->password, "p:w");
  EXPECT_EQ(r->hostnames, (std::vector<std::string>{"a.dyn.example", "b.dyn.example"}));
  r = update::ParseDyndnsRequest("hostname=a.dyn.example&user=x&pass=y%20z", nullptr, source);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->user, "x");
  EXPECT_EQ(r->password, "y z");
  EXPECT_EQ(r->source, "203.0.113.50");
  // Bad addresses are errors.
  EXPECT_FALSE(
      update::ParseDyndnsRequest("hostname=a.dyn.example&myip=999.1.1.1", &basic, source).ok());
  EXPECT_FALSE(
      update::ParseDyndnsRequest("hostname=a.dyn.example&myip=1.2.3.4,5.6.7.8", &basic, source)
          .ok());
}

}  // namespace
}  // namespace updns::test
