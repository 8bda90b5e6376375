// RFC 2136 UPDATE with TSIG and zone transfers end to end: the real updnsd
// driven by BIND's nsupdate and Knot's kdig (Debian bind9-dnsutils,
// knot-dnsutils), answers checked over DNS. Secondaries that follow the
// zone (Knot, NSD) are in xfr_secondary_test.cc.
#include <gtest/gtest.h>

#include "tests/server/dyndns_fixture.h"

namespace updns::test {
namespace {

constexpr const char* kUpdateSecret = "dXBkYXRlLWtleS1zZWNyZXQtZm9yLXRlc3Rz";
constexpr const char* kTransferSecret = "eGZyLWtleS1zZWNyZXQtZm9yLXRoZS10ZXN0cw==";
constexpr const char* kOtherSecret = "b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVk";

// updnsd with dyn.example updatable by ddns-key (names below the apex, types
// A, AAAA and TXT) and by apex-key (the whole zone, every type), and
// transferable with xfr-key only.
class KeyedDaemon : public DyndnsDaemon {
 public:
  bool StartWithKeys(std::string* error) {
    return StartFresh([&] { return KeyedConfigText(); }, [&](std::string* e) { return Launch(e); },
                      error);
  }

  std::string KeyedConfigText() const {
    std::string text = ListenersAndStorageConfig();
    text += "keys:\n";
    text += "  - {name: ddns-key, algorithm: hmac-sha256, secret: " + std::string(kUpdateSecret) + "}\n";
    text += "  - {name: apex-key, algorithm: hmac-sha512, secret: " + std::string(kUpdateSecret) + "}\n";
    text += "  - {name: xfr-key, algorithm: hmac-sha384, secret: " + std::string(kTransferSecret) + "}\n";
    text += ZonesConfig(30);
    text += "    transfer: [xfr-key]\n";
    text += "    update:\n";
    text += "      - {key: ddns-key, names: ['*.dyn.example'], types: [A, AAAA, TXT]}\n";
    text += "      - {key: apex-key}\n";
    return text;
  }
};

class Rfc2136Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(daemon_.StartWithKeys(&error)) << error;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << daemon_.log();
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(daemon_.Stop()) << "updnsd did not stop on SIGTERM";
  }

  // Runs nsupdate with `key` ("hmac-sha256:ddns-key:SECRET", or empty for
  // none) on `commands`, which are framed with server, zone and send.
  CommandResult Nsupdate(const std::string& key, const std::string& commands, bool tcp = false) {
    std::vector<std::string> argv = {"nsupdate"};
    if (tcp) argv.push_back("-v");
    if (!key.empty()) {
      argv.push_back("-y");
      argv.push_back(key);
    }
    std::string script = "server 127.0.0.1 " + std::to_string(daemon_.dns_port()) + "\n" +
                         "zone dyn.example\n" + commands + "send\n";
    return RunCommand(argv, script, daemon_.dir());
  }
  CommandResult Update(const std::string& commands, bool tcp = false) {
    return Nsupdate(std::string("hmac-sha256:ddns-key:") + kUpdateSecret, commands, tcp);
  }

  // Expects nsupdate to have failed with `rcode` ("YXDOMAIN", "NOTAUTH(BADSIG)").
  void ExpectFailure(const CommandResult& r, const std::string& rcode) {
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find("update failed: " + rcode), std::string::npos) << r.Describe();
  }

  std::vector<std::string> Rdata(const std::string& name, ldns_rr_type type) {
    return daemon_.Addresses(name, type);
  }

  // kdig with `args` against the daemon; stdout.
  CommandResult Kdig(std::vector<std::string> args) {
    std::vector<std::string> argv = {"kdig", "@127.0.0.1", "-p", std::to_string(daemon_.dns_port()),
                                     "+noall", "+answer", "+time=5", "+retry=0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", daemon_.dir());
  }

  KeyedDaemon daemon_;
};

const std::vector<std::string> kNone = {};

TEST_F(Rfc2136Test, AddsAndDeletesRecordsDurablyWithOneSerialStepPerUpdate) {
  std::optional<uint32_t> serial = daemon_.Serial();
  ASSERT_TRUE(serial);
  CommandResult add = Update(
      "update add a.dyn.example 300 A 192.0.2.1\n"
      "update add a.dyn.example 300 A 192.0.2.2\n"
      "update add a.dyn.example 300 TXT \"hello world\"\n"
      "update add b.dyn.example 300 AAAA 2001:db8::2\n");
  ASSERT_EQ(add.exit_code, 0) << add.Describe();
  EXPECT_EQ(Rdata("a.dyn.example", LDNS_RR_TYPE_A), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_EQ(Rdata("a.dyn.example", LDNS_RR_TYPE_TXT), std::vector<std::string>{"\"hello world\""});
  EXPECT_EQ(Rdata("b.dyn.example", LDNS_RR_TYPE_AAAA), std::vector<std::string>{"2001:db8::2"});
  EXPECT_EQ(daemon_.Serial(), *serial + 1);

  // One RR, one RRset, then the whole name; over TCP this time.
  ASSERT_EQ(Update("update delete a.dyn.example A 192.0.2.1\n", true).exit_code, 0);
  EXPECT_EQ(Rdata("a.dyn.example", LDNS_RR_TYPE_A), std::vector<std::string>{"192.0.2.2"});
  ASSERT_EQ(Update("update delete a.dyn.example TXT\n").exit_code, 0);
  EXPECT_EQ(Rdata("a.dyn.example", LDNS_RR_TYPE_TXT), kNone);
  EXPECT_EQ(Rdata("a.dyn.example", LDNS_RR_TYPE_A), std::vector<std::string>{"192.0.2.2"});
  ASSERT_EQ(Update("update delete b.dyn.example\n").exit_code, 0);
  Packet gone = daemon_.Query("b.dyn.example.", LDNS_RR_TYPE_AAAA);
  ASSERT_TRUE(gone);
  EXPECT_EQ(ldns_pkt_get_rcode(gone.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(daemon_.Serial(), *serial + 4);

  // Deleting what is not there changes nothing, not even the serial.
  ASSERT_EQ(Update("update delete nothing.dyn.example A\n").exit_code, 0);
  EXPECT_EQ(daemon_.Serial(), *serial + 4);

  // Acknowledged means durable: a SIGKILL loses none of it.
  std::string error;
  ASSERT_TRUE(daemon_.KillAndRestart(&error)) << error;
  EXPECT_EQ(Rdata("a.dyn.example", LDNS_RR_TYPE_A), std::vector<std::string>{"192.0.2.2"});
  EXPECT_EQ(daemon_.Serial(), *serial + 4);
}

TEST_F(Rfc2136Test, EachPrerequisiteKindPassesAndFails) {
  ASSERT_EQ(Update("update add p.dyn.example 300 A 192.0.2.7\n").exit_code, 0);
  struct Case {
    std::string prerequisite;
    std::string failure;  // the rcode when it fails; empty when it holds
  };
  const std::vector<Case> cases = {
      {"prereq nxdomain new.dyn.example", ""},
      {"prereq nxdomain p.dyn.example", "YXDOMAIN"},
      {"prereq yxdomain p.dyn.example", ""},
      {"prereq yxdomain new.dyn.example", "NXDOMAIN"},
      {"prereq nxrrset p.dyn.example AAAA", ""},
      {"prereq nxrrset p.dyn.example A", "YXRRSET"},
      {"prereq yxrrset p.dyn.example A", ""},
      {"prereq yxrrset p.dyn.example TXT", "NXRRSET"},
      {"prereq yxrrset p.dyn.example A 192.0.2.7", ""},
      {"prereq yxrrset p.dyn.example A 192.0.2.8", "NXRRSET"},
  };
  int marker = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.prerequisite);
    // Each update adds a TXT only if its prerequisite holds.
    std::string text = "m" + std::to_string(++marker);
    CommandResult r = Update(c.prerequisite + "\nupdate add mark.dyn.example 60 TXT " + text + "\n");
    std::vector<std::string> marks = Rdata("mark.dyn.example", LDNS_RR_TYPE_TXT);
    bool applied = std::find(marks.begin(), marks.end(), "\"" + text + "\"") != marks.end();
    if (c.failure.empty()) {
      EXPECT_EQ(r.exit_code, 0) << r.Describe();
      EXPECT_TRUE(applied);
    } else {
      ExpectFailure(r, c.failure);
      EXPECT_FALSE(applied) << "a failed prerequisite must leave the update section unapplied";
    }
  }
}

TEST_F(Rfc2136Test, KeysAndPolicyDecideWhoMayUpdateWhat) {
  std::optional<uint32_t> serial = daemon_.Serial();
  const std::string add = "update add k.dyn.example 300 A 192.0.2.9\n";
  ExpectFailure(Nsupdate("", add), "REFUSED");
  ExpectFailure(Nsupdate(std::string("hmac-sha256:ddns-key:") + kOtherSecret, add), "NOTAUTH(BADSIG)");
  ExpectFailure(Nsupdate(std::string("hmac-sha256:unknown-key:") + kUpdateSecret, add),
                "NOTAUTH(BADKEY)");
  // The algorithm is the key's: ddns-key is hmac-sha256, not -sha512.
  ExpectFailure(Nsupdate(std::string("hmac-sha512:ddns-key:") + kUpdateSecret, add), "NOTAUTH(BADKEY)");
  // ddns-key: names below the apex, types A, AAAA, TXT only.
  ExpectFailure(Update("update add dyn.example 300 MX 10 mail.dyn.example\n"), "REFUSED");
  ExpectFailure(Update("update add alias.dyn.example 300 CNAME k.dyn.example\n"), "REFUSED");
  ExpectFailure(Update("update add dyn.example 300 TXT \"apex\"\n"), "REFUSED");
  // One refused RR refuses the whole update.
  ExpectFailure(Update(add + "update add alias.dyn.example 300 CNAME k.dyn.example\n"), "REFUSED");
  EXPECT_EQ(Rdata("k.dyn.example", LDNS_RR_TYPE_A), kNone);
  EXPECT_EQ(daemon_.Serial(), serial) << "refused updates must not touch the zone";
  // apex-key may change the apex, but never delete its SOA or last NS.
  std::string apex_key = std::string("hmac-sha512:apex-key:") + kUpdateSecret;
  CommandResult mx = Nsupdate(apex_key, "update add dyn.example 300 MX 10 mail.dyn.example\n");
  ASSERT_EQ(mx.exit_code, 0) << mx.Describe();
  EXPECT_EQ(Rdata("dyn.example", LDNS_RR_TYPE_MX), std::vector<std::string>{"10"});
  CommandResult keep = Nsupdate(apex_key, "update delete dyn.example SOA\nupdate delete dyn.example NS\n");
  ASSERT_EQ(keep.exit_code, 0) << keep.Describe();
  EXPECT_TRUE(daemon_.Serial());
  EXPECT_EQ(Rdata("dyn.example", LDNS_RR_TYPE_NS), std::vector<std::string>{"ns1.dyn.example."});
  // Outside the zone: NOTZONE.
  ExpectFailure(Update("update add k.other.example 300 A 192.0.2.9\n"), "NOTZONE");
}

TEST_F(Rfc2136Test, CnameAndOtherDataExcludeEachOther) {
  std::string apex_key = std::string("hmac-sha512:apex-key:") + kUpdateSecret;
  ASSERT_EQ(Nsupdate(apex_key, "update add c.dyn.example 300 A 192.0.2.3\n").exit_code, 0);
  // A CNAME where other data is: ignored (RFC 2136 §3.4.2.2), not an error.
  ASSERT_EQ(Nsupdate(apex_key, "update add c.dyn.example 300 CNAME x.dyn.example\n").exit_code, 0);
  EXPECT_EQ(Rdata("c.dyn.example", LDNS_RR_TYPE_CNAME), kNone);
  ASSERT_EQ(Nsupdate(apex_key, "update add alias.dyn.example 300 CNAME c.dyn.example\n").exit_code, 0);
  ASSERT_EQ(Nsupdate(apex_key, "update add alias.dyn.example 300 TXT \"other\"\n").exit_code, 0);
  EXPECT_EQ(Rdata("alias.dyn.example", LDNS_RR_TYPE_CNAME), std::vector<std::string>{"c.dyn.example."});
  Packet txt = daemon_.Query("alias.dyn.example.", LDNS_RR_TYPE_TXT);
  ASSERT_TRUE(txt);
  // The answer follows the CNAME to c's (absent) TXT: no TXT at alias.
  for (const std::string& rr : SectionTexts(txt.get(), LDNS_SECTION_ANSWER))
    EXPECT_EQ(rr.find("\"other\""), std::string::npos) << rr;
}

TEST_F(Rfc2136Test, UpdatesOfADyndnsHostKeepItsHostRecordConsistent) {
  CommandResult account = daemon_.Ctl({"account", "add", "alice", "--email", "alice@example.org"},
                                      "alice password\n");
  ASSERT_EQ(account.exit_code, 0) << account.Describe();
  ASSERT_EQ(daemon_.Ctl({"host", "add", "home.dyn.example", "--account", "alice"}).exit_code, 0);
  ASSERT_EQ(Update("update delete home.dyn.example A\nupdate add home.dyn.example 60 A 198.51.100.4\n")
                .exit_code,
            0);
  EXPECT_EQ(Rdata("home.dyn.example", LDNS_RR_TYPE_A), std::vector<std::string>{"198.51.100.4"});
  EXPECT_EQ(daemon_.HostFields("home.dyn.example")["A"], "198.51.100.4");
  // Deleting the host's only records removes its name, on the primary as on
  // the secondaries.
  ASSERT_EQ(Update("update delete home.dyn.example A\n").exit_code, 0);
  Packet gone = daemon_.Query("home.dyn.example.", LDNS_RR_TYPE_A);
  ASSERT_TRUE(gone);
  EXPECT_EQ(ldns_pkt_get_rcode(gone.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_NE(daemon_.HostFields("home.dyn.example")["A"], "198.51.100.4");
}

TEST_F(Rfc2136Test, TransfersNeedTheTransferKey) {
  ASSERT_EQ(Update("update add t.dyn.example 300 A 192.0.2.11\n").exit_code, 0);
  std::string xfr_key = std::string("hmac-sha384:xfr-key:") + kTransferSecret;
  // kdig checks the TSIG of every message it receives.
  CommandResult axfr = Kdig({"dyn.example", "AXFR", "-y", xfr_key});
  ASSERT_EQ(axfr.exit_code, 0) << axfr.Describe();
  EXPECT_NE(axfr.out.find("t.dyn.example."), std::string::npos) << axfr.out;
  std::vector<std::string> lines = Lines(axfr.out);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_NE(lines.front().find("SOA"), std::string::npos);
  EXPECT_NE(lines.back().find("SOA"), std::string::npos);

  CommandResult unsigned_axfr = Kdig({"dyn.example", "AXFR"});
  EXPECT_NE(unsigned_axfr.exit_code, 0);
  EXPECT_NE((unsigned_axfr.out + unsigned_axfr.err).find("REFUSED"), std::string::npos)
      << unsigned_axfr.Describe();
  CommandResult wrong_key =
      Kdig({"dyn.example", "AXFR", "-y", std::string("hmac-sha384:xfr-key:") + kOtherSecret});
  EXPECT_NE(wrong_key.exit_code, 0);
  EXPECT_NE((wrong_key.out + wrong_key.err).find("BADSIG"), std::string::npos) << wrong_key.Describe();
  // The update key is not a transfer key.
  CommandResult update_key =
      Kdig({"dyn.example", "AXFR", "-y", std::string("hmac-sha256:ddns-key:") + kUpdateSecret});
  EXPECT_NE((update_key.out + update_key.err).find("REFUSED"), std::string::npos) << update_key.Describe();
}

TEST_F(Rfc2136Test, IxfrSendsTheDifferenceSinceTheClientsSerial) {
  std::optional<uint32_t> before = daemon_.Serial();
  ASSERT_TRUE(before);
  ASSERT_EQ(Update("update add i.dyn.example 300 A 192.0.2.21\n").exit_code, 0);
  ASSERT_EQ(Update("update delete i.dyn.example A 192.0.2.21\nupdate add i.dyn.example 300 A 192.0.2.22\n")
                .exit_code,
            0);
  std::string xfr_key = std::string("hmac-sha384:xfr-key:") + kTransferSecret;
  CommandResult ixfr = Kdig({"dyn.example", "IXFR=" + std::to_string(*before), "-y", xfr_key});
  ASSERT_EQ(ixfr.exit_code, 0) << ixfr.Describe();
  std::vector<std::string> lines = Lines(ixfr.out);
  // current SOA, (old SOA, removed..., new SOA, added...) per step, current SOA.
  ASSERT_EQ(lines.size(), 9u) << ixfr.out;
  EXPECT_NE(lines[1].find(std::to_string(*before)), std::string::npos) << ixfr.out;
  EXPECT_NE(lines[3].find("192.0.2.21"), std::string::npos) << "added in the first step\n" << ixfr.out;
  EXPECT_NE(lines[5].find("192.0.2.21"), std::string::npos) << "removed in the second\n" << ixfr.out;
  EXPECT_NE(lines[7].find("192.0.2.22"), std::string::npos) << ixfr.out;

  // A client that is current gets the SOA alone, over UDP as over TCP.
  std::string now = std::to_string(*daemon_.Serial());
  for (const char* transport : {"+tcp", "+notcp"}) {
    CommandResult current = Kdig({"dyn.example", "IXFR=" + now, transport});
    SCOPED_TRACE(transport);
    EXPECT_EQ(Lines(current.out).size(), 0u) << "unsigned: refused\n" << current.Describe();
  }
  CommandResult current = Kdig({"dyn.example", "IXFR=" + now, "-y", xfr_key});
  ASSERT_EQ(current.exit_code, 0) << current.Describe();
  ASSERT_EQ(Lines(current.out).size(), 1u) << current.out;
  EXPECT_NE(current.out.find(now), std::string::npos);
}

}  // namespace
}  // namespace updns::test
