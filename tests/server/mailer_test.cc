// server::Mailer against a real SMTP server on loopback: tests/data/smtp_sink.py
// (Debian python3-aiosmtpd), started per test on a free port, appends every
// message it accepts to a file the test reads. Skipped when no python3 can
// import aiosmtpd.
#include "server/mailer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/accounts.h"
#include "storage/store.h"
#include "tests/server/smtp_sink.h"
#include "tests/support/process.h"
#include "update/outbox.h"

namespace updns::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::ParseSinkFile;
using test::Received;

constexpr const char* kSinkScript = UPDNS_SOURCE_DIR "/tests/data/smtp_sink.py";
constexpr uint64_t kCreatedAt = 1700000000;  // Tue, 14 Nov 2023 22:13:20 +0000
constexpr const char* kResetLink = "https://dyn.example/reset?token=Zm9vYmFyYmF6";

uint64_t Now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// A python3 that can import aiosmtpd ("" when none can). Debian's package
// goes with /usr/bin/python3, which a python3 first in PATH may not be.
const std::string& Python() {
  static const std::string python = [] {
    for (std::string candidate : {"/usr/bin/python3", "python3"}) {
      std::string probe = candidate + " -c 'import aiosmtpd' >/dev/null 2>&1";
      if (std::system(probe.c_str()) == 0) return candidate;
    }
    return std::string();
  }();
  return python;
}

// The shared WaitUntil, polling every 20 ms.
bool WaitUntilEvery20ms(const std::function<bool()>& condition, milliseconds timeout) {
  return test::WaitUntil(condition, timeout, milliseconds(20));
}

// A loopback TCP socket bound to a port the kernel chose. Listening, it is
// a relay that accepts connections and never says a word.
class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot bind a loopback socket";
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  uint16_t port() const { return port_; }
  bool Listen() { return ::listen(fd_, 8) == 0; }
  // The next connection within `timeout`, or -1. The caller closes it.
  int Accept(milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
    return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }

 private:
  int fd_;
  uint16_t port_ = 0;
};

// A port nothing listens on (for a moment; good enough on loopback).
uint16_t FreePort() { return Socket().port(); }

// tests/data/smtp_sink.py as a child process, stopped by the destructor.
class SmtpSink {
 public:
  SmtpSink(uint16_t port, const std::string& file, const std::string& log,
           const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {Python(), kSinkScript, std::to_string(port), file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out[1], STDOUT_FILENO);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    if (err >= 0) ::close(err);
    // Ready when it says so (the listener is up), or failed.
    std::string said;
    auto deadline = Clock::now() + milliseconds(15000);
    while (pid_ > 0 && said.find("ready") == std::string::npos && Clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) == 1) {
        char buffer[64];
        ssize_t n = ::read(out[0], buffer, sizeof(buffer));
        if (n <= 0) break;
        said.append(buffer, static_cast<size_t>(n));
      }
    }
    // Kept open until the sink ends: a closed pipe would kill it on a write.
    out_ = out[0];
    ready_ = said.find("ready") != std::string::npos;
  }
  ~SmtpSink() {
    if (out_ >= 0) ::close(out_);
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!WaitUntilEvery20ms([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                            milliseconds(5000))) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  SmtpSink(const SmtpSink&) = delete;
  SmtpSink& operator=(const SmtpSink&) = delete;
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool ready_ = false;
};

class MailerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Python().empty())
      GTEST_SKIP() << "no python3 with aiosmtpd (Debian python3-aiosmtpd); skipping";
    std::string pattern = ::testing::TempDir() + "updns_mailer_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    sink_file_ = dir_ + "/received.txt";
    OpenStore();
    config_.smtp = "smtp://127.0.0.1:" + std::to_string(FreePort());
    config_.from = "updns@example.org";
    config_.retry_initial_seconds = 1;
    config_.retry_max_seconds = 2;
    timing_.poll_interval = milliseconds(200);
    timing_.connect_timeout = milliseconds(2000);
    timing_.send_timeout = milliseconds(5000);
  }
  void TearDown() override {
    if (HasFailure() && !dir_.empty()) {
      std::string log = Slurp(dir_ + "/sink.log");
      if (!log.empty()) std::fprintf(stderr, "smtp_sink.py said:\n%s\n", log.c_str());
    }
    store_.reset();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // (Re)opens the store, as a restarted daemon would.
  void OpenStore() {
    store_.reset();
    storage::Options options;
    options.path = dir_ + "/db";
    options.map_size = uint64_t{16} << 20;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
  }

  void UseRelay(uint16_t port) { config_.smtp = "smtp://127.0.0.1:" + std::to_string(port); }
  uint16_t RelayPort() const {
    return static_cast<uint16_t>(std::stoi(config_.smtp.substr(config_.smtp.rfind(':') + 1)));
  }

  std::unique_ptr<SmtpSink> StartSink(const std::vector<std::string>& extra = {}) {
    auto sink = std::make_unique<SmtpSink>(RelayPort(), sink_file_, dir_ + "/sink.log", extra);
    EXPECT_TRUE(sink->ready()) << "smtp_sink.py did not start; its log:\n"
                               << Slurp(dir_ + "/sink.log");
    return sink;
  }

  // A sink on the relay port of `config` (StartSink: of config_).
  std::unique_ptr<SmtpSink> StartSinkOn(const config::MailConfig& config) {
    config::MailConfig saved = config_;
    config_ = config;
    auto sink = StartSink();
    config_ = saved;
    return sink;
  }

  std::unique_ptr<Mailer> MakeMailer() {
    return std::make_unique<Mailer>(*store_, config_, timing_);
  }

  uint64_t Queue(std::string to, std::string subject, std::string body,
                 uint64_t created_at = kCreatedAt) {
    storage::MailRecord mail;
    mail.to = std::move(to);
    mail.subject = std::move(subject);
    mail.body = std::move(body);
    mail.created_at = created_at;
    auto txn = store_->BeginWrite();
    EXPECT_TRUE(txn.ok()) << txn.status().message();
    if (!txn.ok()) return 0;
    auto id = update::EnqueueMail(*txn, std::move(mail));
    EXPECT_TRUE(id.ok()) << id.status().message();
    Status committed = txn->Commit();
    EXPECT_TRUE(committed.ok()) << committed.message();
    return id.ok() ? *id : 0;
  }

  uint64_t QueueReset(std::string to) {
    return Queue(std::move(to), "Reset your updns password",
                 std::string("Hello,\n\nyour account was unlinked. Set a new password here:\n") +
                     kResetLink + "\n\n.a line that starts with a dot\n");
  }

  std::vector<std::pair<uint64_t, storage::MailRecord>> Outbox() {
    auto txn = store_->BeginRead();
    EXPECT_TRUE(txn.ok()) << txn.status().message();
    if (!txn.ok()) return {};
    auto mails = update::ListMail(*txn);
    EXPECT_TRUE(mails.ok()) << mails.status().message();
    return mails.ok() ? std::move(mails).value() : decltype(Outbox()){};
  }

  static std::string Slurp(const std::string& path) { return test::ReadFile(path); }

  std::vector<Received> ReceivedMail() const { return ParseSinkFile(Slurp(sink_file_)); }

  std::string dir_;
  std::string sink_file_;
  std::unique_ptr<storage::Store> store_;
  config::MailConfig config_;
  MailerTiming timing_;
};

testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "lacks '" << part << "' in:\n" << text;
}

TEST_F(MailerTest, DeliversQueuedMailAndEmptiesTheOutbox) {
  auto sink = StartSink();
  uint64_t id = QueueReset("alice@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)))
      << "the mail was not delivered";
  mailer->Stop();
  EXPECT_EQ(mailer->stats().delivered, 1u);
  EXPECT_EQ(mailer->stats().failed_attempts, 0u);

  std::vector<Received> received = ReceivedMail();
  ASSERT_EQ(received.size(), 1u) << Slurp(sink_file_);
  EXPECT_EQ(received[0].envelope, "MAIL FROM:<updns@example.org> RCPT TO:<alice@example.net>");
  const std::string& m = received[0].message;
  // Headers, then an empty line, then the body; all with CRLF.
  EXPECT_EQ(m.rfind("From: updns@example.org\r\n", 0), 0u) << m;
  EXPECT_TRUE(Contains(m, "\r\nTo: alice@example.net\r\n"));
  EXPECT_TRUE(Contains(m, "\r\nSubject: Reset your updns password\r\n"));
  EXPECT_TRUE(Contains(m, "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
  EXPECT_TRUE(Contains(m, "\r\nMessage-ID: <updns." + std::to_string(id) + "." +
                              std::to_string(kCreatedAt) + "@example.org>\r\n"));
  EXPECT_TRUE(Contains(m, "\r\nMIME-Version: 1.0\r\n"));
  EXPECT_TRUE(Contains(m, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_TRUE(Contains(m, "\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello,\r\n\r\nyour account"));
  EXPECT_TRUE(Contains(m, "\r\n" + std::string(kResetLink) + "\r\n"));
  // curl dot-stuffed the line and the relay undid it: the text is intact.
  EXPECT_TRUE(Contains(m, "\r\n\r\n.a line that starts with a dot\r\n"));
  EXPECT_EQ(m.find("\n..a line"), std::string::npos) << m;
}

TEST_F(MailerTest, EncodesANonAsciiSubjectAndKeepsAUtf8Body) {
  auto sink = StartSink();
  std::string long_subject;
  for (int i = 0; i < 10; ++i) long_subject += "Passwort zurücksetzen ";
  Queue("bob@example.net", long_subject, "Grüße aus Köln\r\nzweite Zeile\rdritte\n");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)));
  mailer->Stop();
  std::vector<Received> received = ReceivedMail();
  ASSERT_EQ(received.size(), 1u);
  const std::string& m = received[0].message;
  EXPECT_TRUE(Contains(m, "\r\nSubject: =?UTF-8?B?"));
  // Folded into several encoded words, each at most 75 characters.
  std::string subject =
      m.substr(m.find("Subject: ") + 9, m.find("\r\nDate:") - m.find("Subject: ") - 9);
  std::istringstream words(subject);
  int count = 0;
  for (std::string word; words >> word; ++count) {
    EXPECT_LE(word.size(), 75u) << word;
    EXPECT_EQ(word.rfind("=?UTF-8?B?", 0), 0u) << word;
  }
  EXPECT_GT(count, 1);
  // The body goes as 8-bit UTF-8 with its line ends made CRLF.
  EXPECT_TRUE(Contains(m, "\r\n\r\nGrüße aus Köln\r\nzweite Zeile\r\ndritte\r\n"));
}

TEST_F(MailerTest, RetriesWithBackoffUntilTheRelayComesUp) {
  uint64_t id = QueueReset("carol@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  // Nothing listens: the attempt fails, is recorded, the mail stays.
  std::vector<std::pair<uint64_t, storage::MailRecord>> outbox;
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        outbox = Outbox();
        return outbox.size() == 1 && outbox[0].second.attempts >= 1;
      },
      milliseconds(10000)));
  EXPECT_EQ(outbox[0].first, id);
  EXPECT_FALSE(outbox[0].second.last_error.empty());
  EXPECT_TRUE(Contains(outbox[0].second.last_error, "127.0.0.1"));
  EXPECT_LE(outbox[0].second.next_attempt_at, Now() + config_.retry_max_seconds);
  EXPECT_GE(mailer->stats().failed_attempts, 1u);
  EXPECT_EQ(mailer->stats().delivered, 0u);

  // The relay comes up: the next retry delivers, without a Wake().
  auto sink = StartSink();
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)))
      << "not delivered after the retry";
  mailer->Stop();
  ASSERT_EQ(ReceivedMail().size(), 1u);
  EXPECT_TRUE(Contains(ReceivedMail()[0].message, kResetLink));
  EXPECT_EQ(mailer->stats().delivered, 1u);
}

// A reload's relay: tried at once for mail deferred by the old one, without
// waiting out its backoff.
TEST_F(MailerTest, ANewRelayIsTriedAtOnceForDeferredMail) {
  config_.retry_initial_seconds = 600;
  config_.retry_max_seconds = 600;
  QueueReset("gina@example.net");
  auto mailer = MakeMailer();
  mailer->Start();
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        auto outbox = Outbox();
        return outbox.size() == 1 && outbox[0].second.attempts >= 1;
      },
      milliseconds(10000)))
      << "the first attempt, to a port where nothing listens";

  UseRelay(FreePort());
  auto sink = StartSink();
  mailer->Reconfigure(config_);
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)))
      << "deferred for 600 s by the old relay, the mail must go to the new one now";
  mailer->Stop();
  EXPECT_EQ(ReceivedMail().size(), 1u);
}

// mail.smtp set by a reload starts a mailer that started without it;
// cleared again, mail stays queued.
TEST_F(MailerTest, AReloadCanTurnDeliveryOnAndOff) {
  config::MailConfig with_relay = config_;
  config_.smtp.clear();
  auto sink = StartSinkOn(with_relay);
  auto mailer = MakeMailer();
  mailer->Start();
  EXPECT_FALSE(mailer->enabled());
  QueueReset("hank@example.net");
  mailer->Wake();
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(Outbox().size(), 1u) << "no relay, no delivery";

  mailer->Reconfigure(with_relay);
  EXPECT_TRUE(mailer->enabled());
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)));

  mailer->Reconfigure(config_);
  QueueReset("ivy@example.net");
  mailer->Wake();
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(Outbox().size(), 1u) << "mail.smtp cleared again";
  mailer->Stop();
  EXPECT_EQ(ReceivedMail().size(), 1u);
}

TEST_F(MailerTest, BackoffDoublesUpToRetryMax) {
  config_.retry_initial_seconds = 1;
  config_.retry_max_seconds = 2;
  QueueReset("dave@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  // next_attempt_at after attempt n is (time of attempt n) + min(1 * 2^(n-1), 2),
  // and attempt n+1 happens at the earliest at next_attempt_at(n).
  std::vector<uint64_t> next;  // next_attempt_at after 1, 2, 3 attempts
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        auto outbox = Outbox();
        if (outbox.size() != 1) return false;
        uint32_t attempts = outbox[0].second.attempts;
        if (attempts == next.size() + 1) next.push_back(outbox[0].second.next_attempt_at);
        return next.size() >= 3;
      },
      milliseconds(15000)))
      << "saw " << next.size() << " attempts";
  mailer->Stop();
  EXPECT_GE(next[1] - next[0], 2u);  // the second delay is 2 s...
  EXPECT_LE(next[1] - next[0], 3u);
  EXPECT_GE(next[2] - next[1], 2u);  // ...and so is the third: 4 s capped at retry_max
  EXPECT_LE(next[2] - next[1], 3u);
}

TEST_F(MailerTest, WakeSendsNewMailAtOnce) {
  timing_.poll_interval = milliseconds(60000);
  auto sink = StartSink();
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  std::this_thread::sleep_for(milliseconds(300));  // the first (empty) pass is over
  QueueReset("erin@example.net");
  auto start = Clock::now();
  mailer->Wake();
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(5000)));
  EXPECT_LT(Clock::now() - start, milliseconds(3000));
  mailer->Stop();
  EXPECT_EQ(ReceivedMail().size(), 1u);
}

TEST_F(MailerTest, PollsForMailQueuedByAnotherProcess) {
  // updnsctl cannot Wake() the daemon's mailer: the periodic rescan finds it.
  timing_.poll_interval = milliseconds(500);
  auto sink = StartSink();
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  std::this_thread::sleep_for(milliseconds(300));
  QueueReset("frank@example.net");
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(5000)));
  mailer->Stop();
  EXPECT_EQ(ReceivedMail().size(), 1u);
}

TEST_F(MailerTest, MailSurvivesAStopBeforeSendingAndANewMailerDeliversIt) {
  // The first mailer talks to a relay that never answers and is stopped in
  // the middle of the session: nothing is lost, no attempt is counted.
  Socket black_hole;
  ASSERT_TRUE(black_hole.Listen());
  UseRelay(black_hole.port());
  uint64_t id = QueueReset("grace@example.net");
  {
    auto mailer = MakeMailer();
    ASSERT_TRUE(mailer);
    mailer->Start();
    int connection = black_hole.Accept(milliseconds(5000));
    ASSERT_GE(connection, 0) << "the mailer did not connect";
    mailer->Stop();
    ::close(connection);
    EXPECT_EQ(mailer->stats().delivered, 0u);
    EXPECT_EQ(mailer->stats().failed_attempts, 0u);
  }
  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].first, id);
  EXPECT_EQ(outbox[0].second.attempts, 0u);

  // A restarted daemon: the store reopened, a new mailer, a working relay.
  OpenStore();
  UseRelay(FreePort());
  auto sink = StartSink();
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)));
  mailer->Stop();
  std::vector<Received> received = ReceivedMail();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].envelope, "MAIL FROM:<updns@example.org> RCPT TO:<grace@example.net>");
}

TEST_F(MailerTest, StopIsPromptWhileARelayStalls) {
  timing_.send_timeout = milliseconds(60000);  // a stalled session would last a minute
  Socket black_hole;
  ASSERT_TRUE(black_hole.Listen());
  UseRelay(black_hole.port());
  QueueReset("heidi@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  int connection = black_hole.Accept(milliseconds(5000));
  ASSERT_GE(connection, 0) << "the mailer did not connect";
  std::this_thread::sleep_for(milliseconds(300));  // well inside the session now
  auto start = Clock::now();
  mailer->Stop();
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  ::close(connection);
  EXPECT_LT(took, milliseconds(1000)) << "Stop() took " << took.count() << " ms";
  ASSERT_EQ(Outbox().size(), 1u);
  EXPECT_EQ(Outbox()[0].second.attempts, 0u);
  mailer->Stop();  // idempotent
}

TEST_F(MailerTest, StalledSessionTimesOutAsAFailedAttempt) {
  timing_.send_timeout = milliseconds(1000);
  Socket black_hole;
  ASSERT_TRUE(black_hole.Listen());
  UseRelay(black_hole.port());
  QueueReset("ivan@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  std::vector<std::pair<uint64_t, storage::MailRecord>> outbox;
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        outbox = Outbox();
        return outbox.size() == 1 && outbox[0].second.attempts >= 1;
      },
      milliseconds(8000)));
  mailer->Stop();
  EXPECT_TRUE(Contains(outbox[0].second.last_error, "timed out")) << outbox[0].second.last_error;
}

TEST_F(MailerTest, RelayRefusalIsRecordedAndOtherMailStillGoes) {
  auto sink = StartSink({"--reject", "nobody"});
  uint64_t refused = QueueReset("nobody@example.net");
  QueueReset("judy@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  std::vector<std::pair<uint64_t, storage::MailRecord>> outbox;
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        outbox = Outbox();
        return outbox.size() == 1 && outbox[0].second.attempts >= 1;
      },
      milliseconds(10000)));
  mailer->Stop();
  EXPECT_EQ(outbox[0].first, refused);
  EXPECT_TRUE(Contains(outbox[0].second.last_error, "550"));
  std::vector<Received> received = ReceivedMail();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_TRUE(Contains(received[0].envelope, "<judy@example.net>"));
}

TEST_F(MailerTest, AuthenticatesWithTheConfiguredCredentials) {
  auto sink = StartSink({"--auth", "relay-user:pa ss:word"});
  config_.username = "relay-user";
  config_.password = "wrong";
  QueueReset("kim@example.net");
  {
    auto mailer = MakeMailer();
    ASSERT_TRUE(mailer);
    mailer->Start();
    ASSERT_TRUE(
        WaitUntilEvery20ms([&] { return !Outbox().empty() && Outbox()[0].second.attempts >= 1; },
                           milliseconds(10000)));
    mailer->Stop();
    EXPECT_TRUE(ReceivedMail().empty());
    EXPECT_FALSE(Outbox()[0].second.last_error.empty());
  }
  config_.password = "pa ss:word";
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  mailer->Wake();
  ASSERT_TRUE(WaitUntilEvery20ms([&] { return Outbox().empty(); }, milliseconds(10000)));
  mailer->Stop();
  EXPECT_EQ(ReceivedMail().size(), 1u);
}

TEST_F(MailerTest, RequiredStarttlsIsNeverSkipped) {
  // The sink offers no STARTTLS: with starttls required, nothing goes in clear.
  config_.starttls = true;
  auto sink = StartSink();
  QueueReset("leo@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  std::vector<std::pair<uint64_t, storage::MailRecord>> outbox;
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        outbox = Outbox();
        return outbox.size() == 1 && outbox[0].second.attempts >= 1;
      },
      milliseconds(10000)));
  mailer->Stop();
  EXPECT_TRUE(ReceivedMail().empty());
  EXPECT_FALSE(outbox[0].second.last_error.empty());
}

TEST_F(MailerTest, RecipientThatCouldInjectHeadersIsNeverSent) {
  auto sink = StartSink();
  Queue("mallory@example.net\r\nBcc: victim@example.org", "hi", "body");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  std::vector<std::pair<uint64_t, storage::MailRecord>> outbox;
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] {
        outbox = Outbox();
        return outbox.size() == 1 && outbox[0].second.attempts >= 1;
      },
      milliseconds(10000)));
  mailer->Stop();
  EXPECT_TRUE(Contains(outbox[0].second.last_error, "not a plain mail address"));
  EXPECT_TRUE(ReceivedMail().empty());
}

TEST_F(MailerTest, WithoutARelayMailStaysQueued) {
  config_.smtp.clear();
  QueueReset("mike@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  EXPECT_FALSE(mailer->enabled());
  mailer->Start();
  mailer->Wake();
  std::this_thread::sleep_for(milliseconds(300));
  mailer->Stop();
  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].second.attempts, 0u);
  EXPECT_EQ(outbox[0].second.last_error, "");
}

TEST_F(MailerTest, MailRemovedByAnOperatorMeanwhileIsForgotten) {
  // A failing mail, then removed (updnsctl outbox delete) while deferred.
  uint64_t id = QueueReset("nina@example.net");
  auto mailer = MakeMailer();
  ASSERT_TRUE(mailer);
  mailer->Start();
  ASSERT_TRUE(WaitUntilEvery20ms(
      [&] { return !Outbox().empty() && Outbox()[0].second.attempts >= 1; }, milliseconds(10000)));
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(update::RemoveMail(*txn, id).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  auto sink = StartSink();
  std::this_thread::sleep_for(milliseconds(2500));  // past the next retry
  mailer->Stop();
  EXPECT_TRUE(Outbox().empty());
  EXPECT_TRUE(ReceivedMail().empty());
}

}  // namespace
}  // namespace updns::server
