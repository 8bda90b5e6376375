// server::ResponseRateLimiter: budgets, slip, and what shares a bucket.
#include "server/rrl.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace updns::server {
namespace {

using Verdict = ResponseRateLimiter::Verdict;

sockaddr_storage Address(const char* text) {
  sockaddr_storage storage{};
  if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in*>(&storage)->sin_addr) == 1) {
    storage.ss_family = AF_INET;
  } else {
    inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6*>(&storage)->sin6_addr);
    storage.ss_family = AF_INET6;
  }
  return storage;
}

const std::string kWww("\3www\7example\0", 13);
const std::string kMail("\4mail\7example\0", 14);

// Counts the verdicts of `n` answers at one instant.
struct Counts {
  int send = 0, slip = 0, drop = 0;
};
Counts Tally(ResponseRateLimiter& rrl, const char* client, int n, uint64_t now_ms,
           AnswerClass kind = AnswerClass::kPositive, const std::string& name = kWww) {
  sockaddr_storage address = Address(client);
  Counts counts;
  for (int i = 0; i < n; ++i) {
    switch (rrl.Account(reinterpret_cast<sockaddr*>(&address), kind, name, now_ms)) {
      case Verdict::kSend: ++counts.send; break;
      case Verdict::kSlip: ++counts.slip; break;
      case Verdict::kDrop: ++counts.drop; break;
    }
  }
  return counts;
}

TEST(RrlTest, OffSendsEverything) {
  ResponseRateLimiter rrl(RrlOptions{.rate = 0});
  EXPECT_FALSE(rrl.enabled());
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 10000, 0).send, 10000);
}

TEST(RrlTest, RateAnswersPerSecondThenOneInSlipTruncated) {
  ResponseRateLimiter rrl(RrlOptions{.rate = 10, .slip = 2});
  Counts c = Tally(rrl, "192.0.2.1", 30, 1000);
  EXPECT_EQ(c.send, 10);
  EXPECT_EQ(c.slip, 10);
  EXPECT_EQ(c.drop, 10);
  EXPECT_EQ(rrl.limited(), 20u);
  // 100 ms later one more answer's worth has come back.
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 5, 1100).send, 1);
  // A second later the whole budget.
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 20, 2200).send, 10);
}

TEST(RrlTest, SlipZeroDropsAndSlipOneTruncatesAll) {
  ResponseRateLimiter drop_all(RrlOptions{.rate = 5, .slip = 0});
  Counts d = Tally(drop_all, "192.0.2.1", 20, 0);
  EXPECT_EQ(d.send, 5);
  EXPECT_EQ(d.drop, 15);
  ResponseRateLimiter truncate_all(RrlOptions{.rate = 5, .slip = 1});
  Counts t = Tally(truncate_all, "192.0.2.1", 20, 0);
  EXPECT_EQ(t.send, 5);
  EXPECT_EQ(t.slip, 15);
}

TEST(RrlTest, ANetworkSharesABudgetOtherNetworksDoNot) {
  ResponseRateLimiter rrl(RrlOptions{.rate = 10});
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 10, 0).send, 10);
  EXPECT_EQ(Tally(rrl, "192.0.2.200", 10, 0).send, 0) << "same /24";
  EXPECT_EQ(Tally(rrl, "192.0.3.1", 10, 0).send, 10) << "another /24";
  EXPECT_EQ(Tally(rrl, "2001:db8:0:1::1", 10, 0).send, 10);
  EXPECT_EQ(Tally(rrl, "2001:db8:0:1:ffff::2", 10, 0).send, 0) << "same /56";
  EXPECT_EQ(Tally(rrl, "2001:db8:0:100::1", 10, 0).send, 10) << "another /56";
}

TEST(RrlTest, NamesAndAnswerClassesHaveTheirOwnBudgets) {
  ResponseRateLimiter rrl(RrlOptions{.rate = 10});
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 10, 0, AnswerClass::kPositive, kWww).send, 10);
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 10, 0, AnswerClass::kPositive, kMail).send, 10);
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 10, 0, AnswerClass::kNxdomain, kWww).send, 10);
  EXPECT_EQ(Tally(rrl, "192.0.2.1", 10, 0, AnswerClass::kPositive, kWww).send, 0);
}

}  // namespace
}  // namespace updns::server
