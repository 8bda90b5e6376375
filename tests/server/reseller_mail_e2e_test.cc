// The reseller link workflow end to end through the real daemon and its
// mailer: updnsd on free loopback ports with `mail.smtp` pointing at a real
// SMTP server (tests/data/smtp_sink.py on Debian python3-aiosmtpd, started
// by the test on a free port), accounts and resellers made with the real
// updnsctl, the API driven with raw HTTP/1.1, dyndns2 updates with the
// tokens the API handed out. The password-reset mail is read from what the
// SMTP server received, and its link is used.
//
// Covered: the whole flow (link, reseller login, unlink, the mail arrives,
// the reset link sets a new password once, the outbox empties); SMTP down
// during the unlink (the mail stays queued with its failed attempts and is
// delivered once the server comes up); and the same across a daemon restart
// (nothing queued is lost). Skipped when /usr/bin/python3 cannot import
// aiosmtpd.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "tests/server/api_client.h"
#include "tests/server/smtp_sink.h"

namespace updns::test {
namespace {

using json = nlohmann::json;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kSinkScript = UPDNS_SOURCE_DIR "/tests/data/smtp_sink.py";
constexpr const char* kFrom = "updns@example.org";

// Whether Debian's python3 can import aiosmtpd (python3-aiosmtpd).
bool HaveAiosmtpd() {
  static const bool have =
      std::system((std::string(kPython) + " -c 'import aiosmtpd' >/dev/null 2>&1").c_str()) == 0;
  return have;
}

// updnsd serving dyn.example with HTTP (dyndns2 and the API) and its mailer
// sending to smtp://127.0.0.1:smtp_port(), retrying after 1 s, then 2 s.
class MailDaemon : public HttpUpdnsd {
 public:
  // A fresh store on new ports (DNS, HTTP and the SMTP relay's). False with
  // a message (and the daemon's log) when it would not start.
  bool Start(std::string* error) {
    return StartFresh([&] { return ConfigText(); },
                      [&](std::string* e) { return Launch(e); }, error, &smtp_port_);
  }

  // Starts updnsd on the written config and store; true once it logged its
  // start and takes HTTP connections.
  bool Launch(std::string* error) { return LaunchUntilHttp(error); }

  std::string ConfigText() const {
    std::string text = ListenersAndStorageConfig() + ZonesConfig(30);
    text += "mail:\n";
    text += "  smtp: smtp://127.0.0.1:" + std::to_string(smtp_port_) + "\n";
    text += "  from: " + std::string(kFrom) + "\n";
    text += "  reset_url: \"" + std::string(kResetUrl) + "\"\n";
    text += "  retry_initial: 1\n";
    text += "  retry_max: 2\n";
    return text;
  }

  // SIGTERM; false when it did not exit (cleanly) within 5 s.
  bool Stop() {
    if (!process_.Stop(SIGTERM, milliseconds(5000))) return false;
    return WIFEXITED(process_.status()) && WEXITSTATUS(process_.status()) == 0;
  }

  uint16_t smtp_port() const { return smtp_port_; }

  // Points mail.smtp at another free port and sends SIGHUP; true once the
  // reload is logged as applied.
  bool ReloadWithAnotherRelay() {
    smtp_port_ = PickFreePort(false);
    return ReloadWith(ConfigText());
  }

 private:
  uint16_t smtp_port_ = 0;
};

// tests/data/smtp_sink.py on 127.0.0.1:port, appending what it accepts to
// `mail_file`; killed (process group) when the object goes away.
class SmtpSink {
 public:
  SmtpSink(uint16_t port, std::filesystem::path mail_file, std::filesystem::path dir, int serial)
      : port_(port),
        mail_file_(std::move(mail_file)),
        out_path_(dir / ("sink-" + std::to_string(serial) + ".out")),
        err_path_(dir / ("sink-" + std::to_string(serial) + ".err")) {}

  // True once the sink says "ready" (it accepts connections), within 15 s.
  bool Start(std::string* error) {
    std::filesystem::remove(out_path_);
    if (!process_.Start({kPython, kSinkScript, std::to_string(port_), mail_file_.string()},
                        out_path_.parent_path(), out_path_, err_path_, error)) {
      return false;
    }
    bool ready = WaitUntil(
        [&] {
          return ReadFile(out_path_).find("ready") != std::string::npos || !process_.Running();
        },
        milliseconds(15000), milliseconds(20));
    if (ready && process_.Running() && ReadFile(out_path_).find("ready") != std::string::npos)
      return true;
    *error =
        "smtp_sink.py did not start on port " + std::to_string(port_) +
        (process_.Running() ? " within 15 s" : " (" + DescribeWaitStatus(process_.status()) + ")") +
        "; its stderr:\n" + ReadFile(err_path_);
    process_.Kill();
    return false;
  }

  bool Stop() { return process_.Stop(SIGTERM, milliseconds(5000)); }
  std::string err() const { return ReadFile(err_path_); }

 private:
  uint16_t port_;
  std::filesystem::path mail_file_, out_path_, err_path_;
  Process process_;
};

// One line of `updnsctl outbox list`.
struct OutboxLine {
  std::string id, to, subject, next_attempt, last_error;
  unsigned attempts = 0;
};

class ResellerMailTest : public ::testing::Test, protected ApiClient {
 protected:
  const HttpUpdnsd& api_daemon() const override { return daemon_; }

  void SetUp() override {
    if (!HaveAiosmtpd()) {
      GTEST_SKIP() << kPython
                   << " cannot import aiosmtpd (install Debian python3-aiosmtpd); skipping the "
                      "end-to-end mail tests";
    }
    std::string error;
    ASSERT_TRUE(daemon_.Start(&error)) << error;
  }

  void TearDown() override {
    if (IsSkipped()) return;
    if (HasFailure()) {
      std::cerr << "updnsd log:\n" << daemon_.log();
      std::cerr << "SMTP sink received:\n" << ReadFile(mail_file()) << "\n";
      for (auto& sink : sinks_) std::cerr << "smtp_sink.py stderr:\n" << sink->err() << "\n";
    }
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(daemon_.Stop()) << "updnsd did not stop cleanly on SIGTERM";
    for (auto& sink : sinks_) sink->Stop();
  }

  std::filesystem::path mail_file() const { return daemon_.dir() / "received-mail.txt"; }

  // Starts the SMTP server on the port the daemon's config names.
  void StartSink() {
    auto sink = std::make_unique<SmtpSink>(daemon_.smtp_port(), mail_file(), daemon_.dir(),
                                           static_cast<int>(sinks_.size()));
    std::string error;
    ASSERT_TRUE(sink->Start(&error)) << error;
    sinks_.push_back(std::move(sink));
  }

  std::vector<Received> ReceivedMail() const { return ParseSinkFile(ReadFile(mail_file())); }

  // Waits up to `timeout` for the sink to have received `count` messages.
  bool WaitForMail(size_t count, milliseconds timeout) const {
    return WaitUntil([&] { return ReceivedMail().size() >= count; }, timeout);
  }

  // `updnsctl outbox list`, parsed; a failed expectation when it fails.
  std::vector<OutboxLine> OutboxList() {
    CommandResult r = daemon_.Ctl({"outbox", "list"});
    EXPECT_EQ(r.exit_code, 0) << "outbox list: " << r.Describe();
    std::vector<OutboxLine> lines;
    std::stringstream in(r.out);
    std::string header;
    std::getline(in, header);
    EXPECT_EQ(header.rfind("ID\tTO\tSUBJECT\tATTEMPTS", 0), 0u) << r.out;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      std::vector<std::string> cells;
      std::stringstream cells_in(line);
      for (std::string cell; std::getline(cells_in, cell, '\t');) cells.push_back(cell);
      cells.resize(6);
      OutboxLine entry;
      entry.id = cells[0];
      entry.to = cells[1];
      entry.subject = cells[2];
      entry.attempts = static_cast<unsigned>(std::strtoul(cells[3].c_str(), nullptr, 10));
      entry.next_attempt = cells[4];
      entry.last_error = cells[5];
      lines.push_back(entry);
    }
    return lines;
  }

  static std::string Describe(const std::vector<OutboxLine>& lines) {
    std::string text = std::to_string(lines.size()) + " queued:";
    for (const OutboxLine& l : lines) {
      text += "\n  " + l.id + " to " + l.to + " attempts " + std::to_string(l.attempts) + " next " +
              l.next_attempt + " error '" + l.last_error + "'";
    }
    return text;
  }

  // --- HTTP ---

  void AddHost(const std::string& session, const std::string& host) {
    Reply r = Call("POST", "/api/v1/hosts", json{{"hostname", host}}, session);
    ASSERT_EQ(r.status(), 201) << "add " << host << ": " << r.Describe();
  }

  // POST /api/v1/tokens/missing: hostname -> token from the CSV.
  std::map<std::string, std::string> MissingTokens(const std::string& session) {
    std::map<std::string, std::string> tokens;
    Reply csv = Call("POST", "/api/v1/tokens/missing", session);
    EXPECT_EQ(csv.status(), 200) << csv.Describe();
    EXPECT_EQ(csv.http.Header("content-type").value_or("").rfind("text/csv", 0), 0u)
        << csv.Describe();
    EXPECT_EQ(csv.http.Header("content-disposition").value_or(""),
              "attachment; filename=\"spdyn_update_token.csv\"");
    std::vector<std::string> lines = csv.http.Lines();
    EXPECT_FALSE(lines.empty()) << csv.Describe();
    if (lines.empty()) return tokens;
    EXPECT_EQ(lines[0], "hostname,token");
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t comma = lines[i].find(',');
      EXPECT_NE(comma, std::string::npos) << lines[i];
      if (comma == std::string::npos) continue;
      tokens[lines[i].substr(0, comma)] = lines[i].substr(comma + 1);
    }
    return tokens;
  }

  // One dyndns2 update with the host's token; must answer "good IP".
  void UseToken(const std::string& host, const std::string& token, const std::string& ip) {
    HttpConnection connection;
    ASSERT_TRUE(connection.Connect(daemon_.http_port()));
    HttpResult r = connection.Exchange(UpdateRequest("/nic/update?hostname=" + host + "&myip=" + ip,
                                                     BasicAuth(host, token), false));
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(r.body, "good " + ip + "\n") << host;
  }

  // alice with two hosts whose CSV tokens were each used once, linked to
  // reseller "shop"; the old password refused, the reseller login working.
  // Returns the reseller session.
  std::string LinkedAccount() {
    const std::string home = "home.dyn.example", office = "office.dyn.example";
    AddAccount("alice", kOldPassword);
    if (HasFatalFailure()) return "";
    AddReseller("shop", kShopPassword);
    if (HasFatalFailure()) return "";
    std::string session = Login("alice", kOldPassword);
    EXPECT_FALSE(session.empty());
    if (session.empty()) return "";
    AddHost(session, home);
    AddHost(session, office);
    if (HasFatalFailure()) return "";

    json link = {{"reseller", "shop"}, {"password", kShopPassword}};
    Reply refused = Call("POST", "/api/v1/link", link, session);
    EXPECT_EQ(refused.status(), 409) << refused.Describe();
    EXPECT_EQ(refused.code(), "hosts_without_token") << refused.Describe();

    std::map<std::string, std::string> tokens = MissingTokens(session);
    EXPECT_EQ(tokens.size(), 2u);
    EXPECT_TRUE(tokens.count(home) && tokens.count(office));
    if (tokens.size() != 2 || !tokens.count(home) || !tokens.count(office)) return "";

    refused = Call("POST", "/api/v1/link", link, session);
    EXPECT_EQ(refused.status(), 409) << refused.Describe();
    EXPECT_EQ(refused.code(), "tokens_unused") << refused.Describe();

    UseToken(home, tokens[home], "192.0.2.10");
    UseToken(office, tokens[office], "192.0.2.11");
    if (HasFatalFailure()) return "";

    Reply linked = Call("POST", "/api/v1/link", link, session);
    EXPECT_EQ(linked.status(), 200) << linked.Describe();
    if (linked.status() != 200) return "";
    EXPECT_EQ(linked.body.value("linked", ""), "shop") << linked.Describe();

    Reply old_login =
        Call("POST", "/api/v1/login", json{{"name", "alice"}, {"password", kOldPassword}});
    EXPECT_EQ(old_login.status(), 403) << old_login.Describe();
    EXPECT_EQ(old_login.code(), "login_via_reseller") << old_login.Describe();

    std::string reseller_session = Login("shop", kShopPassword, "/api/v1/login/reseller");
    if (reseller_session.empty()) return "";
    Reply account = Call("GET", "/api/v1/account", reseller_session);
    EXPECT_EQ(account.status(), 200) << account.Describe();
    EXPECT_EQ(account.body.value("name", ""), "alice") << account.Describe();
    EXPECT_EQ(account.body.value("login", ""), "reseller") << account.Describe();
    EXPECT_TRUE(OutboxList().empty()) << "nothing is queued before the unlink";
    return reseller_session;
  }

  void Unlink(const std::string& reseller_session) {
    Reply unlinked = Call("DELETE", "/api/v1/link", reseller_session);
    ASSERT_EQ(unlinked.status(), 200) << unlinked.Describe();
    EXPECT_EQ(unlinked.body.value("unlinked", ""), "shop") << unlinked.Describe();
  }

  // Checks the one reset mail the sink received and returns its token.
  std::string CheckResetMail() {
    std::vector<Received> mails = ReceivedMail();
    EXPECT_EQ(mails.size(), 1u) << "exactly one mail, no duplicates:\n" << ReadFile(mail_file());
    if (mails.empty()) return "";
    const Received& mail = mails[0];
    EXPECT_EQ(mail.envelope, "MAIL FROM:<" + std::string(kFrom) + "> RCPT TO:<alice@example.org>");
    EXPECT_EQ(mail.Header("To"), "alice@example.org") << mail.message;
    EXPECT_EQ(mail.Header("From"), kFrom) << mail.message;
    EXPECT_FALSE(mail.Header("Subject").empty()) << mail.message;
    std::string body = mail.Body();
    EXPECT_NE(body.find(kResetUrl), std::string::npos) << mail.message;
    std::string token = ResetToken(body);
    EXPECT_EQ(token.size(), 32u) << "the reset token in:\n" << mail.message;
    // The link stands on a line of its own.
    EXPECT_NE(body.find("\r\n" + std::string(kResetUrl) + token + "\r\n"), std::string::npos)
        << mail.message;
    return token;
  }

  // Uses the reset link once, logs in with the new password, and checks
  // that the link is dead afterwards.
  void ResetPasswordWith(const std::string& token) {
    Reply reset =
        Call("POST", "/api/v1/password/reset", json{{"token", token}, {"password", kNewPassword}});
    ASSERT_EQ(reset.status(), 200) << reset.Describe();
    EXPECT_EQ(reset.body.value("name", ""), "alice") << reset.Describe();
    std::string fresh = Login("alice", kNewPassword);
    ASSERT_FALSE(fresh.empty());
    Reply account = Call("GET", "/api/v1/account", fresh);
    EXPECT_EQ(account.status(), 200) << account.Describe();
    EXPECT_EQ(account.body.value("login", ""), "password") << account.Describe();
    EXPECT_TRUE(account.body.contains("linked_reseller") &&
                account.body["linked_reseller"].is_null())
        << account.Describe();
    Reply old_login =
        Call("POST", "/api/v1/login", json{{"name", "alice"}, {"password", kOldPassword}});
    EXPECT_EQ(old_login.status(), 401) << old_login.Describe();

    Reply again = Call("POST", "/api/v1/password/reset",
                       json{{"token", token}, {"password", "yet another password"}});
    EXPECT_EQ(again.status(), 400) << again.Describe();
    EXPECT_EQ(again.code(), "invalid_token") << again.Describe();
    // The refused second use changed nothing.
    EXPECT_FALSE(Login("alice", kNewPassword).empty());
  }

  // Waits until `updnsctl outbox list` shows one mail to alice with at
  // least `attempts` failed attempts; returns what it showed last.
  std::vector<OutboxLine> WaitForQueuedAttempts(unsigned attempts, milliseconds timeout) {
    std::vector<OutboxLine> outbox;
    WaitUntil(
        [&] {
          outbox = OutboxList();
          return outbox.size() == 1 && outbox[0].attempts >= attempts;
        },
        timeout, milliseconds(200));
    return outbox;
  }

  static constexpr const char* kOldPassword = "alice old password";
  static constexpr const char* kNewPassword = "alice new password";
  static constexpr const char* kShopPassword = "shop password";

  MailDaemon daemon_;
  std::vector<std::unique_ptr<SmtpSink>> sinks_;
};

// The whole flow with the SMTP server up: the reset mail arrives, its link
// sets a new password once, and the outbox ends empty.
TEST_F(ResellerMailTest, UnlinkMailArrivesAndItsLinkResetsThePassword) {
  ASSERT_NO_FATAL_FAILURE(StartSink());
  std::string reseller_session = LinkedAccount();
  ASSERT_FALSE(reseller_session.empty());
  ASSERT_FALSE(HasFailure());

  ASSERT_NO_FATAL_FAILURE(Unlink(reseller_session));
  auto unlinked_at = Clock::now();
  ASSERT_TRUE(WaitForMail(1, milliseconds(10000)))
      << "the reset mail did not reach the SMTP server within 10 s; outbox: "
      << Describe(OutboxList());
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - unlinked_at);
  // The API wakes the mailer: no waiting for its outbox poll.
  EXPECT_LT(took.count(), 3000) << "the mail took " << took.count() << " ms";
  std::string token = CheckResetMail();
  ASSERT_FALSE(token.empty());

  // It leaves the outbox once the relay accepted it.
  std::vector<OutboxLine> outbox;
  EXPECT_TRUE(WaitUntil([&] { return (outbox = OutboxList()).empty(); }, milliseconds(5000)))
      << Describe(outbox);
  EXPECT_NE(daemon_.log().find("event=mail_delivered"), std::string::npos)
      << "the delivery is logged";
  // Sent with the libcurl the mailer opened at run time (not linked).
  EXPECT_NE(ReadFile("/proc/" + std::to_string(daemon_.process().pid()) + "/maps").find("libcurl"),
            std::string::npos);

  ASSERT_NO_FATAL_FAILURE(ResetPasswordWith(token));
  EXPECT_TRUE(OutboxList().empty()) << Describe(OutboxList());
  EXPECT_EQ(ReceivedMail().size(), 1u) << "one mail only";
}

// SMTP down during the unlink: the unlink succeeds, the mail stays queued
// with its failed attempts recorded, and is delivered (once) when the
// server comes up, by the retry alone.
TEST_F(ResellerMailTest, SmtpDownDuringUnlinkMailIsDeliveredWhenItComesUp) {
  std::string reseller_session = LinkedAccount();
  ASSERT_FALSE(reseller_session.empty());
  ASSERT_FALSE(HasFailure());

  ASSERT_NO_FATAL_FAILURE(Unlink(reseller_session));
  std::vector<OutboxLine> outbox = WaitForQueuedAttempts(2, milliseconds(6000));
  ASSERT_EQ(outbox.size(), 1u) << Describe(outbox);
  EXPECT_GE(outbox[0].attempts, 2u) << "retried after retry_initial (1 s): " << Describe(outbox);
  EXPECT_EQ(outbox[0].to, "alice@example.org");
  EXPECT_FALSE(outbox[0].last_error.empty()) << Describe(outbox);
  std::string log = daemon_.log();
  size_t failed = log.find("event=mail_attempt_failed");
  ASSERT_NE(failed, std::string::npos) << "the failed attempt is logged";
  std::string line = log.substr(failed, log.find('\n', failed) - failed);
  EXPECT_NE(line.find(" to=alice@example.org "), std::string::npos) << line;
  EXPECT_NE(line.find(" attempt=1 "), std::string::npos) << line;
  EXPECT_TRUE(ReceivedMail().empty());

  ASSERT_NO_FATAL_FAILURE(StartSink());
  auto up_at = Clock::now();
  ASSERT_TRUE(WaitForMail(1, milliseconds(10000)))
      << "not delivered within 10 s of the SMTP server coming up; outbox: "
      << Describe(OutboxList());
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - up_at);
  // retry_max is 2 s: the next attempt is at most 2 s away.
  EXPECT_LT(took.count(), 4500) << "the mail took " << took.count() << " ms after SMTP came up";
  EXPECT_TRUE(WaitUntil([&] { return (outbox = OutboxList()).empty(); }, milliseconds(5000)))
      << Describe(outbox);

  std::string token = CheckResetMail();
  ASSERT_FALSE(token.empty());
  ASSERT_NO_FATAL_FAILURE(ResetPasswordWith(token));
  EXPECT_TRUE(OutboxList().empty());
  EXPECT_EQ(ReceivedMail().size(), 1u) << "one mail only";
}

// The relay moved while a mail waits: a reload pointing mail.smtp at the
// new one delivers it, with no restart.
TEST_F(ResellerMailTest, ARelayChangedByAReloadDeliversTheQueuedMail) {
  std::string reseller_session = LinkedAccount();
  ASSERT_FALSE(reseller_session.empty());
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(Unlink(reseller_session));
  std::vector<OutboxLine> outbox = WaitForQueuedAttempts(1, milliseconds(6000));
  ASSERT_EQ(outbox.size(), 1u) << Describe(outbox);

  ASSERT_TRUE(daemon_.ReloadWithAnotherRelay()) << daemon_.log();
  EXPECT_EQ(daemon_.log().find("event=reload_needs_restart"), std::string::npos) << daemon_.log();
  ASSERT_NO_FATAL_FAILURE(StartSink());  // on the new port
  ASSERT_TRUE(WaitForMail(1, milliseconds(10000)))
      << "not delivered by the new relay; outbox: " << Describe(OutboxList());
  EXPECT_FALSE(CheckResetMail().empty());
}

// SMTP down during the unlink and the daemon restarted meanwhile: the mail
// is still queued after the restart (attempts kept) and is delivered when
// the server comes up.
TEST_F(ResellerMailTest, QueuedMailSurvivesADaemonRestart) {
  std::string reseller_session = LinkedAccount();
  ASSERT_FALSE(reseller_session.empty());
  ASSERT_FALSE(HasFailure());

  ASSERT_NO_FATAL_FAILURE(Unlink(reseller_session));
  std::vector<OutboxLine> before = WaitForQueuedAttempts(1, milliseconds(5000));
  ASSERT_EQ(before.size(), 1u) << Describe(before);
  ASSERT_GE(before[0].attempts, 1u) << Describe(before);

  // SIGTERM, then the outbox as the stopped daemon left it.
  ASSERT_TRUE(daemon_.Stop()) << "updnsd did not stop cleanly on SIGTERM";
  std::vector<OutboxLine> stopped = OutboxList();
  ASSERT_EQ(stopped.size(), 1u) << "the queued mail must survive the stop: " << Describe(stopped);
  EXPECT_EQ(stopped[0].id, before[0].id);
  EXPECT_GE(stopped[0].attempts, before[0].attempts) << Describe(stopped);

  std::string error;
  ASSERT_TRUE(daemon_.Launch(&error)) << error;
  // Still down: the restarted mailer keeps failing and keeps the mail.
  std::vector<OutboxLine> after =
      WaitForQueuedAttempts(stopped[0].attempts + 1, milliseconds(6000));
  ASSERT_EQ(after.size(), 1u) << Describe(after);
  EXPECT_EQ(after[0].id, before[0].id);
  EXPECT_GT(after[0].attempts, stopped[0].attempts)
      << "the restarted mailer retries the queued mail: " << Describe(after);
  EXPECT_TRUE(ReceivedMail().empty());

  ASSERT_NO_FATAL_FAILURE(StartSink());
  ASSERT_TRUE(WaitForMail(1, milliseconds(10000)))
      << "not delivered within 10 s of the SMTP server coming up after a restart; outbox: "
      << Describe(OutboxList());
  std::vector<OutboxLine> outbox;
  EXPECT_TRUE(WaitUntil([&] { return (outbox = OutboxList()).empty(); }, milliseconds(5000)))
      << Describe(outbox);
  std::string token = CheckResetMail();
  ASSERT_FALSE(token.empty());
  ASSERT_NO_FATAL_FAILURE(ResetPasswordWith(token));
  EXPECT_EQ(ReceivedMail().size(), 1u) << "one mail only";
}

}  // namespace
}  // namespace updns::test
