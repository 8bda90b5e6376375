// server::Notifier against a real UDP socket standing in for a secondary:
// what it sends, when it resends, and that answers stop it. The secondaries
// that really follow the zone (Knot, NSD) are in xfr_secondary_test.cc.
#include "server/notifier.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/update/store_fixture.h"
#include "zone/zone_edit.h"

namespace updns::server {
namespace {

using testing_support::Serial;
using testing_support::TempDir;
using testing_support::Wire;

// A UDP socket on a free loopback port.
class FakeSecondary {
 public:
  FakeSecondary() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~FakeSecondary() { close(fd_); }

  config::Endpoint endpoint() const {
    auto parsed = config::ParseEndpoint("127.0.0.1@" + std::to_string(port_), 53);
    EXPECT_TRUE(parsed.ok());
    return *parsed;
  }

  struct Received {
    std::vector<uint8_t> message;
    sockaddr_in from{};
  };
  // The next datagram within `timeout`, or nullopt.
  std::optional<Received> Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    Received r;
    r.message.resize(512);
    socklen_t length = sizeof(r.from);
    ssize_t n = recvfrom(fd_, r.message.data(), r.message.size(), 0,
                         reinterpret_cast<sockaddr*>(&r.from), &length);
    if (n < 0) return std::nullopt;
    r.message.resize(static_cast<size_t>(n));
    return r;
  }
  // Answers `notify` with its ID, QR set and `rcode`.
  void Answer(const Received& notify, uint8_t rcode = 0) {
    std::vector<uint8_t> answer = notify.message;
    answer[2] |= 0x80;
    answer[3] = (answer[3] & 0xf0) | rcode;
    Send(answer, notify);
  }
  // Sends `message` back to where `notify` came from.
  void Send(const std::vector<uint8_t>& message, const Received& notify) {
    sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<const sockaddr*>(&notify.from),
           sizeof(notify.from));
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = testing_support::OpenStoreWithZone(dir_); }

  std::unique_ptr<Notifier> Start(std::vector<config::Endpoint> targets, uint32_t retry_ms = 100,
                                  std::optional<tsig::Key> key = std::nullopt) {
    NotifierOptions options;
    options.zones.push_back({Wire("dyn.example"), std::move(targets), std::move(key)});
    options.retry_initial_ms = retry_ms;
    options.retry_max_ms = retry_ms * 4;
    options.poll_interval_ms = 50;
    auto notifier = Notifier::Create(*store_, std::move(options));
    EXPECT_TRUE(notifier.ok()) << notifier.status().message();
    (*notifier)->Start();
    return std::move(notifier).value();
  }

  uint32_t BumpSerial() {
    auto txn = store_->BeginWrite();
    EXPECT_TRUE(txn.ok());
    EXPECT_TRUE(zone::FinishZoneChanges(*txn, {Wire("dyn.example")}).ok());
    EXPECT_TRUE(txn->Commit().ok());
    auto read = store_->BeginRead();
    return Serial(*read, "dyn.example");
  }

  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

// The NOTIFY of RFC 1996 §3: opcode NOTIFY, AA, the apex SOA as question.
void ExpectNotifyFor(const std::vector<uint8_t>& m, std::string_view apex_wire) {
  ASSERT_GE(m.size(), 12 + apex_wire.size() + 4);
  EXPECT_EQ(m[2] & 0x80, 0) << "QR must be clear";
  EXPECT_EQ(m[2] >> 3 & 0x0f, 4) << "opcode NOTIFY";
  EXPECT_NE(m[2] & 0x04, 0) << "AA";
  EXPECT_EQ(m[5], 1) << "one question";
  EXPECT_EQ(std::string(m.begin() + 12, m.begin() + 12 + apex_wire.size()), apex_wire);
  size_t at = 12 + apex_wire.size();
  EXPECT_EQ(m[at + 1], 6) << "type SOA";
  EXPECT_EQ(m[at + 3], 1) << "class IN";
}

TEST_F(NotifierTest, AnnouncesAtStartAndStopsWhenAnswered) {
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()});
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  ExpectNotifyFor(first->message, Wire("dyn.example"));
  secondary.Answer(*first);
  // Answered: no resend within several retry intervals.
  EXPECT_FALSE(secondary.Receive(std::chrono::milliseconds(600)));
  EXPECT_EQ(notifier->stats().acknowledged, 1u);
  EXPECT_EQ(notifier->stats().sent, 1u);
}

TEST_F(NotifierTest, ResendsWithTheSameIdUntilAnswered) {
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()});
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  auto start = std::chrono::steady_clock::now();
  auto second = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(second);
  auto third = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(third);
  auto elapsed = std::chrono::steady_clock::now() - start;
  // 100 ms, then 200 ms: backoff, not a tight loop.
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_EQ(second->message, first->message);
  EXPECT_EQ(third->message, first->message);
  secondary.Answer(*third);
  EXPECT_FALSE(secondary.Receive(std::chrono::milliseconds(1000)));
}

TEST_F(NotifierTest, EverySerialChangeIsAnnouncedWithANewId) {
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()});
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  secondary.Answer(*first);
  // A change committed by someone else (as updnsctl would): found by polling.
  BumpSerial();
  auto second = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(second);
  ExpectNotifyFor(second->message, Wire("dyn.example"));
  EXPECT_NE(std::vector<uint8_t>(second->message.begin(), second->message.begin() + 2),
            std::vector<uint8_t>(first->message.begin(), first->message.begin() + 2));
  secondary.Answer(*second);
  EXPECT_FALSE(secondary.Receive(std::chrono::milliseconds(500)));
  EXPECT_EQ(notifier->stats().acknowledged, 2u);
}

TEST_F(NotifierTest, AnAnswerFromAnotherAddressOrIdIsIgnored) {
  FakeSecondary secondary, stranger;
  auto notifier = Start({secondary.endpoint()});
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  stranger.Answer(*first);  // right ID, wrong address
  FakeSecondary::Received forged = *first;
  forged.message[0] ^= 0xff;  // right address, wrong ID
  secondary.Answer(forged);
  ASSERT_TRUE(secondary.Receive(std::chrono::seconds(5))) << "the forged answers stopped the resends";
  EXPECT_EQ(notifier->stats().acknowledged, 0u);
}

// With a key, the NOTIFY is signed, and only an answer signed with the key
// over the NOTIFY's MAC stops the resends.
TEST_F(NotifierTest, SignedNotifyCountsOnlyASignedAnswer) {
  auto key = tsig::MakeKey("notify.dyn.example", "hmac-sha256",
                           "c2VjcmV0IG9mIHRoZSBub3RpZnkga2V5IGZvciB0ZXN0cw==");
  ASSERT_TRUE(key.ok()) << key.status().message();
  tsig::KeyRing ring;
  ASSERT_TRUE(ring.Add(*key).ok());
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()}, 100, *key);
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  tsig::Verified request = tsig::VerifyRequest(first->message, ring, now);
  ASSERT_EQ(request.outcome, tsig::Outcome::kOk) << tsig::OutcomeName(request.outcome);
  EXPECT_EQ(request.key->name, key->name);

  // An unsigned answer (as a spoofer or a keyless secondary sends) is not one.
  FakeSecondary::Received without_tsig = *first;
  without_tsig.message.resize(tsig::StripRecord(without_tsig.message, request));
  secondary.Answer(without_tsig);
  auto resent = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(resent) << "an unsigned answer stopped the resends";
  EXPECT_EQ(resent->message[0], first->message[0]);
  EXPECT_EQ(resent->message[1], first->message[1]);
  EXPECT_EQ(notifier->stats().acknowledged, 0u);

  // The secondary's signed answer to the latest send.
  std::vector<uint8_t> answer = resent->message;
  tsig::Verified latest = tsig::VerifyRequest(answer, ring, now);
  ASSERT_EQ(latest.outcome, tsig::Outcome::kOk);
  answer.resize(tsig::StripRecord(answer, latest));
  answer[2] |= 0x80;
  size_t unsigned_size = answer.size();
  answer.resize(unsigned_size + tsig::ResponseRecordSize(latest));
  auto signed_answer = tsig::SignResponse(answer, unsigned_size, latest, now);
  ASSERT_TRUE(signed_answer.ok()) << signed_answer.status().message();
  answer.resize(signed_answer->size);
  secondary.Send(answer, *resent);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (notifier->stats().acknowledged == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(notifier->stats().acknowledged, 1u);
  // At most one resend may have crossed the answer; then none for longer
  // than the longest retry interval (400 ms).
  (void)secondary.Receive(std::chrono::milliseconds(100));
  EXPECT_FALSE(secondary.Receive(std::chrono::milliseconds(800)));
}

// A reload that adds a key to a zone announces it again, signed.
TEST_F(NotifierTest, AKeyAddedByAReloadSignsTheNextNotify) {
  auto key = tsig::MakeKey("notify.dyn.example", "hmac-sha256", "YWJjZGVmZ2hpamtsbW5vcA==");
  ASSERT_TRUE(key.ok()) << key.status().message();
  tsig::KeyRing ring;
  ASSERT_TRUE(ring.Add(*key).ok());
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()});
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  EXPECT_EQ(tsig::VerifyRequest(first->message, ring, now).outcome, tsig::Outcome::kUnsigned);
  secondary.Answer(*first);

  NotifierOptions reloaded;
  reloaded.zones.push_back({Wire("dyn.example"), {secondary.endpoint()}, *key});
  notifier->Reconfigure(std::move(reloaded));
  auto signed_notify = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(signed_notify) << "the changed zone was not announced again";
  ExpectNotifyFor(signed_notify->message, Wire("dyn.example"));
  EXPECT_EQ(tsig::VerifyRequest(signed_notify->message, ring, now).outcome, tsig::Outcome::kOk);
}

// A reload's shorter backoff brings an unanswered NOTIFY's resend forward
// and spaces the next ones by it; the zone itself is not announced afresh.
TEST_F(NotifierTest, AReloadedBackoffAppliesToAPendingResend) {
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()}, /*retry_ms=*/30000);
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  EXPECT_FALSE(secondary.Receive(std::chrono::milliseconds(300))) << "the next send is 30 s away";

  NotifierOptions reloaded;
  reloaded.zones.push_back({Wire("dyn.example"), {secondary.endpoint()}, std::nullopt});
  reloaded.retry_initial_ms = 100;
  reloaded.retry_max_ms = 200;
  notifier->Reconfigure(std::move(reloaded));
  auto resend = secondary.Receive(std::chrono::seconds(2));
  ASSERT_TRUE(resend) << "retry_max 200 ms caps the pending resend";
  EXPECT_EQ(resend->message, first->message) << "a resend, not a new announcement";
  auto again = secondary.Receive(std::chrono::seconds(2));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->message, first->message);
}

TEST_F(NotifierTest, ARefusalIsNotRetried) {
  FakeSecondary secondary;
  auto notifier = Start({secondary.endpoint()});
  auto first = secondary.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  secondary.Answer(*first, /*REFUSED*/ 5);
  EXPECT_FALSE(secondary.Receive(std::chrono::milliseconds(600)));
  EXPECT_EQ(notifier->stats().rejected, 1u);
}

TEST_F(NotifierTest, EachTargetIsTrackedAlone) {
  FakeSecondary a, b;
  auto notifier = Start({a.endpoint(), b.endpoint()});
  auto to_a = a.Receive(std::chrono::seconds(5));
  auto to_b = b.Receive(std::chrono::seconds(5));
  ASSERT_TRUE(to_a && to_b);
  a.Answer(*to_a);
  EXPECT_FALSE(a.Receive(std::chrono::milliseconds(500)));
  EXPECT_TRUE(b.Receive(std::chrono::seconds(5))) << "b did not answer: resent";
}

}  // namespace
}  // namespace updns::server
