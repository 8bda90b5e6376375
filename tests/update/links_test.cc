#include "update/links.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <latch>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/schema.h"
#include "tests/update/store_fixture.h"
#include "update/accounts.h"
#include "update/credentials.h"
#include "update/dyndns2.h"
#include "update/outbox.h"
#include "zone/zone_edit.h"

namespace updns::update {
namespace {

using storage::OneTimeTokenRecord;
using storage::SessionRecord;
using storage::State;
using storage::Table;
using testing_support::Says;

constexpr uint64_t kNow = 1700000000;
constexpr std::string_view kResetUrl = "https://dyn.example/reset?token=";

// prefix + n. (Not "literal" + std::to_string(n): GCC 12 at -O3 warns
// about it falsely, -Wrestrict.)
std::string Numbered(std::string prefix, int n) { return prefix.append(std::to_string(n)); }

// Every key and value of every table, to show that nothing changed.
using Snapshot = std::map<std::pair<int, std::string>, std::string>;

class LinksTest : public testing::Test {
 protected:
  void SetUp() override {
    store_ = testing_support::OpenStoreWithZone(dir_);
    ASSERT_NE(store_, nullptr);
  }

  // Runs `fn` in a write transaction and commits only when it succeeds.
  Status Write(const std::function<Status(storage::WriteTxn&)>& fn) {
    auto txn = store_->BeginWrite();
    if (!txn.ok()) return txn.status();
    if (Status s = fn(*txn); !s.ok()) return s;
    return txn->Commit();
  }

  storage::ReadTxn Read() {
    auto txn = store_->BeginRead();
    EXPECT_TRUE(txn.ok());
    return std::move(txn).value();
  }

  Snapshot TakeSnapshot() {
    auto txn = Read();
    Snapshot all;
    for (int t = 0; t < static_cast<int>(Table::kCount); ++t) {
      auto cursor = txn.OpenCursor(static_cast<Table>(t));
      EXPECT_TRUE(cursor.ok());
      for (bool more = cursor->First(); more; more = cursor->Next())
        all[{t, std::string(cursor->key())}] = std::string(cursor->value());
    }
    return all;
  }

  void NewAccount(std::string_view name, uint32_t host_limit = 10,
                  std::string_view password = "old password") {
    ASSERT_TRUE(Write([&](storage::WriteTxn& txn) {
                  return CreateAccount(txn, name, std::string(name) + "@example.com", password,
                                       host_limit, kNow);
                }).ok());
  }

  void NewReseller(std::string_view name, std::string_view password = "reseller pw") {
    Status s = Write([&](storage::WriteTxn& txn) {
      return CreateReseller(txn, name, std::string(name) + "@reseller.example", password, kNow);
    });
    ASSERT_TRUE(s.ok()) << s.message();
  }

  void NewHost(std::string_view fqdn, std::string_view account) {
    Status s = Write([&](storage::WriteTxn& txn) {
      std::set<std::string> zones;
      if (Status a = AddHost(txn, fqdn, account, zones_, kNow, zones); !a.ok()) return a;
      return zone::FinishZoneChanges(txn, zones);
    });
    ASSERT_TRUE(s.ok()) << s.message();
  }

  std::string NewToken(std::string_view fqdn) {
    std::string token;
    EXPECT_TRUE(Write([&](storage::WriteTxn& txn) {
                  auto created = CreateToken(txn, fqdn, kNow);
                  if (!created.ok()) return created.status();
                  token = *created;
                  return Status::Ok();
                }).ok());
    return token;
  }

  // Uses the host's token once, as a router would: a dyndns2 update applied
  // through a write transaction.
  void UseToken(std::string_view fqdn, const std::string& token, std::string_view ip) {
    DyndnsIdentity identity = Authenticate(*store_, fqdn, token);
    ASSERT_EQ(identity.kind, DyndnsIdentity::Kind::kHost) << fqdn;
    DyndnsRequest request;
    request.hostnames = {std::string(fqdn)};
    auto wire_ip = std::string(4, '\0');
    ASSERT_EQ(inet_pton(AF_INET, std::string(ip).c_str(), wire_ip.data()), 1);
    request.ipv4 = wire_ip;
    request.source = std::string(ip);
    std::vector<DyndnsHostResult> results;
    DyndnsUpdate update(
        request, identity, DyndnsPolicy{}, [](std::string_view) { return 60u; },
        [&](std::vector<DyndnsHostResult> r) { results = std::move(r); });
    Status s = Write([&](storage::WriteTxn& txn) {
      WriteContext context(kNow + 10);
      if (Status a = update.Apply(txn, context); !a.ok()) return a;
      return zone::FinishZoneChanges(txn, context.changed_zones());
    });
    update.Done(s);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].code, DyndnsCode::kGood);
  }

  // An account with `hosts` active hosts whose tokens have all been used.
  void ReadyAccount(std::string_view name, int hosts = 1) {
    NewAccount(name);
    for (int i = 0; i < hosts; ++i) {
      std::string fqdn = Numbered("h", i).append(".").append(name).append(".dyn.example");
      NewHost(fqdn, name);
      UseToken(fqdn, NewToken(fqdn), Numbered("198.51.100.", i + 1));
    }
  }

  Result<LinkOutcome> Link(std::string_view account, std::string_view reseller) {
    Result<LinkOutcome> outcome = Status::IoError("not run");
    Status s = Write([&](storage::WriteTxn& txn) {
      outcome = LinkAccount(txn, account, reseller, kNow);
      return outcome.ok() ? Status::Ok() : outcome.status();
    });
    if (!s.ok() && outcome.ok()) return s;
    return outcome;
  }

  Status Unlink(std::string_view account, uint64_t now = kNow, uint64_t ttl = 3600) {
    UnlinkOptions options;
    options.reset_url = std::string(kResetUrl);
    options.reset_ttl = ttl;
    return Write([&](storage::WriteTxn& txn) { return UnlinkAccount(txn, account, options, now); });
  }

  // The reset token in the newest outbox mail to `to`.
  std::string ResetTokenFromMail(std::string_view to) {
    auto txn = Read();
    auto mails = ListMail(txn);
    EXPECT_TRUE(mails.ok());
    std::string token;
    for (const auto& [id, mail] : *mails) {
      if (mail.to != to) continue;
      size_t at = mail.body.find(kResetUrl);
      if (at == std::string::npos) continue;
      token = mail.body.substr(at + kResetUrl.size(), kTokenLength);
    }
    return token;
  }

  std::string PasswordHash(std::string_view account) {
    auto txn = Read();
    auto record = GetAccount(txn, account);
    EXPECT_TRUE(record.ok());
    return record.ok() ? record->password_hash : std::string();
  }

  void PutSession(std::string_view key, std::string_view account, bool via_reseller) {
    SessionRecord session;
    session.account = std::string(account);
    session.via_reseller = via_reseller;
    session.created_at = kNow;
    session.expires_at = kNow + 3600;
    ASSERT_TRUE(Write([&](storage::WriteTxn& txn) {
                  return txn.Put(Table::kSessions, TokenDigest(key), session.Encode());
                }).ok());
  }

  bool HasSession(std::string_view key) {
    auto txn = Read();
    return txn.Get(Table::kSessions, TokenDigest(key)).has_value();
  }

  testing_support::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::vector<HostZone> zones_ = {{"dyn.example", 60}};
};

// --- Reseller accounts ------------------------------------------------------------

TEST_F(LinksTest, CreateListGetDeleteResellers) {
  NewReseller("Shop-B");
  NewReseller("alpha");
  {
    auto txn = Read();
    auto reseller = GetReseller(txn, "SHOP-b");
    ASSERT_TRUE(reseller.ok()) << reseller.status().message();
    EXPECT_EQ(reseller->name, "shop-b");
    EXPECT_EQ(reseller->email, "Shop-B@reseller.example");
    EXPECT_TRUE(reseller->linked_account.empty());
    EXPECT_EQ(reseller->created_at, kNow);
    EXPECT_TRUE(VerifyPassword("reseller pw", reseller->password_hash));
    EXPECT_FALSE(VerifyPassword("wrong", reseller->password_hash));
    auto all = ListResellers(txn);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].name, "alpha");
    EXPECT_EQ((*all)[1].name, "shop-b");
    EXPECT_TRUE(Says(GetReseller(txn, "nobody").status(), Status::Code::kNotFound,
                     {"reseller 'nobody' does not exist"}));
  }
  EXPECT_TRUE(Write([](storage::WriteTxn& txn) { return DeleteReseller(txn, "alpha"); }).ok());
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& txn) { return DeleteReseller(txn, "alpha"); }),
                   Status::Code::kNotFound, {"alpha"}));
  auto txn = Read();
  EXPECT_EQ(ListResellers(txn)->size(), 1u);
}

TEST_F(LinksTest, CreateResellerRules) {
  NewReseller("shop");
  auto create = [&](std::string_view name, std::string_view email, std::string_view password) {
    return Write(
        [&](storage::WriteTxn& txn) { return CreateReseller(txn, name, email, password, kNow); });
  };
  EXPECT_TRUE(Says(create("SHOP", "a@b.example", "pw"), Status::Code::kExists,
                   {"reseller 'shop' already exists"}));
  EXPECT_TRUE(Says(create("bad name", "a@b.example", "pw"), Status::Code::kInvalid,
                   {"reseller name 'bad name'", "letters, digits"}));
  EXPECT_TRUE(Says(create("", "a@b.example", "pw"), Status::Code::kInvalid,
                   {"the reseller name is empty"}));
  EXPECT_TRUE(Says(create("other", "no-at-sign", "pw"), Status::Code::kInvalid,
                   {"reseller 'other'", "exactly one '@'"}));
  EXPECT_TRUE(Says(create("other", "a@localhost", "pw"), Status::Code::kInvalid, {"needs a dot"}));
  EXPECT_TRUE(Says(create("other", "a b@x.example", "pw"), Status::Code::kInvalid, {"a space"}));
  EXPECT_TRUE(create("other", "a@b.example", "").IsInvalid());
  EXPECT_TRUE(create("other", "a@b.example", std::string(kMaxPasswordSize + 1, 'x')).IsInvalid());
  // A reseller may share an account's name: they are different logins.
  NewAccount("shared");
  EXPECT_TRUE(create("shared", "s@b.example", "pw").ok());
}

// --- Link rules -------------------------------------------------------------------

TEST_F(LinksTest, NoActiveHostsRefused) {
  NewAccount("alice");
  NewReseller("shop");
  Snapshot before = TakeSnapshot();
  auto outcome = Link("alice", "shop");
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  EXPECT_FALSE(outcome->linked);
  EXPECT_EQ(outcome->refusal.rule, kRuleNoActiveHosts);
  EXPECT_NE(outcome->refusal.message.find("no active host"), std::string::npos);
  EXPECT_TRUE(outcome->refusal.hosts_without_token.empty());
  EXPECT_EQ(TakeSnapshot(), before);

  // A disabled host does not count as active either.
  NewHost("off.dyn.example", "alice");
  ASSERT_TRUE(Write([](storage::WriteTxn& txn) {
                return SetHostState(txn, "off.dyn.example", State::kDisabled);
              }).ok());
  EXPECT_EQ(Link("alice", "shop")->refusal.rule, kRuleNoActiveHosts);
}

TEST_F(LinksTest, BlockingHostsListedUntilEveryTokenWasUsed) {
  NewAccount("alice");
  NewReseller("shop");
  NewHost("b.dyn.example", "alice");
  NewHost("a.dyn.example", "alice");
  NewHost("c.dyn.example", "alice");
  NewHost("off.dyn.example", "alice");  // disabled, no token: never blocks
  ASSERT_TRUE(Write([](storage::WriteTxn& txn) {
                return SetHostState(txn, "off.dyn.example", State::kDisabled);
              }).ok());
  std::string token_b = NewToken("b.dyn.example");

  // a and c have no token, b's token is unused.
  Snapshot before = TakeSnapshot();
  auto outcome = Link("alice", "shop");
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  EXPECT_FALSE(outcome->linked);
  const LinkRefusal& r = outcome->refusal;
  EXPECT_EQ(r.rule, kRuleHostsWithoutToken);
  EXPECT_EQ(r.hosts_without_token, (std::vector<std::string>{"a.dyn.example", "c.dyn.example"}));
  EXPECT_EQ(r.tokens_unused, (std::vector<std::string>{"b.dyn.example"}));
  for (const char* name : {"a.dyn.example", "b.dyn.example", "c.dyn.example"})
    EXPECT_NE(r.message.find(name), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("off.dyn.example"), std::string::npos) << r.message;
  EXPECT_EQ(TakeSnapshot(), before);

  // Tokens for all: now only unused ones block.
  std::string token_a = NewToken("a.dyn.example");
  std::string token_c = NewToken("c.dyn.example");
  before = TakeSnapshot();
  outcome = Link("alice", "shop");
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->refusal.rule, kRuleTokensUnused);
  EXPECT_TRUE(outcome->refusal.hosts_without_token.empty());
  EXPECT_EQ(outcome->refusal.tokens_unused,
            (std::vector<std::string>{"a.dyn.example", "b.dyn.example", "c.dyn.example"}));
  EXPECT_NE(outcome->refusal.message.find("never used"), std::string::npos);
  EXPECT_EQ(TakeSnapshot(), before);

  UseToken("a.dyn.example", token_a, "198.51.100.1");
  UseToken("b.dyn.example", token_b, "198.51.100.2");
  outcome = Link("alice", "shop");
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->refusal.rule, kRuleTokensUnused);
  EXPECT_EQ(outcome->refusal.tokens_unused, (std::vector<std::string>{"c.dyn.example"}));

  UseToken("c.dyn.example", token_c, "198.51.100.3");
  outcome = Link("alice", "shop");
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->linked) << outcome->refusal.message;
  EXPECT_TRUE(outcome->refusal.rule.empty());
  auto txn = Read();
  EXPECT_EQ(GetAccount(txn, "alice")->linked_reseller, "shop");
  EXPECT_EQ(GetReseller(txn, "shop")->linked_account, "alice");
}

TEST_F(LinksTest, OneToOneRule) {
  ReadyAccount("alice");
  ReadyAccount("bob");
  NewReseller("shop");
  NewReseller("other");
  ASSERT_TRUE(Link("alice", "shop")->linked);

  // The same account to a second reseller, or again to the same one.
  Snapshot before = TakeSnapshot();
  for (const char* reseller : {"other", "shop"}) {
    auto outcome = Link("alice", reseller);
    ASSERT_TRUE(outcome.ok());
    EXPECT_FALSE(outcome->linked);
    EXPECT_EQ(outcome->refusal.rule, kRuleAccountLinked);
    EXPECT_NE(outcome->refusal.message.find("already linked to reseller 'shop'"), std::string::npos)
        << outcome->refusal.message;
  }
  // A second account to the linked reseller; the answer does not name alice.
  auto outcome = Link("bob", "shop");
  ASSERT_TRUE(outcome.ok());
  EXPECT_FALSE(outcome->linked);
  EXPECT_EQ(outcome->refusal.rule, kRuleResellerLinked);
  EXPECT_EQ(outcome->refusal.message.find("alice"), std::string::npos);
  EXPECT_EQ(TakeSnapshot(), before);

  EXPECT_TRUE(Link("bob", "other")->linked);
}

TEST_F(LinksTest, DisabledAndUnknown) {
  ReadyAccount("alice");
  NewReseller("shop");
  ASSERT_TRUE(Write([](storage::WriteTxn& txn) {
                return SetAccountState(txn, "alice", State::kDisabled);
              }).ok());
  Snapshot before = TakeSnapshot();
  EXPECT_EQ(Link("alice", "shop")->refusal.rule, kRuleAccountDisabled);
  EXPECT_EQ(TakeSnapshot(), before);
  EXPECT_TRUE(Says(Link("nobody", "shop").status(), Status::Code::kNotFound, {"nobody"}));
  EXPECT_TRUE(Says(Link("alice", "nobody").status(), Status::Code::kNotFound,
                   {"reseller 'nobody' does not exist"}));
  EXPECT_TRUE(Link("alice", "bad name").status().IsInvalid());
}

TEST_F(LinksTest, LinkEndsOwnPasswordSessionsOnly) {
  ReadyAccount("alice");
  ReadyAccount("bob");
  NewReseller("shop");
  PutSession("alice-own", "alice", false);
  PutSession("alice-via", "alice", true);  // cannot exist yet, but stays if it does
  PutSession("bob-own", "bob", false);
  ASSERT_TRUE(Link("alice", "shop")->linked);
  EXPECT_FALSE(HasSession("alice-own"));
  EXPECT_TRUE(HasSession("alice-via"));
  EXPECT_TRUE(HasSession("bob-own"));
}

// Two writers race to link: LMDB serializes their transactions, and the
// second sees the first's link.
TEST_F(LinksTest, ConcurrentLinksToOneResellerOnlyOneWins) {
  for (int round = 0; round < 3; ++round) {
    std::string a = Numbered("a", round), b = Numbered("b", round);
    std::string reseller = Numbered("shop", round);
    ReadyAccount(a);
    ReadyAccount(b);
    NewReseller(reseller);
    std::latch start(2);
    Result<LinkOutcome> outcomes[2] = {Status::IoError("not run"), Status::IoError("not run")};
    Status commits[2];
    auto attempt = [&](int i, const std::string& account) {
      start.arrive_and_wait();
      auto txn = store_->BeginWrite();
      if (!txn.ok()) {
        commits[i] = txn.status();
        return;
      }
      outcomes[i] = LinkAccount(*txn, account, reseller, kNow);
      commits[i] = txn->Commit();
    };
    std::thread first(attempt, 0, a), second(attempt, 1, b);
    first.join();
    second.join();
    int linked = 0;
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(commits[i].ok()) << commits[i].message();
      ASSERT_TRUE(outcomes[i].ok()) << outcomes[i].status().message();
      if (outcomes[i]->linked) {
        ++linked;
      } else {
        EXPECT_EQ(outcomes[i]->refusal.rule, kRuleResellerLinked);
      }
    }
    EXPECT_EQ(linked, 1);
    auto txn = Read();
    std::string winner = outcomes[0]->linked ? a : b, loser = outcomes[0]->linked ? b : a;
    EXPECT_EQ(GetReseller(txn, reseller)->linked_account, winner);
    EXPECT_EQ(GetAccount(txn, winner)->linked_reseller, reseller);
    EXPECT_TRUE(GetAccount(txn, loser)->linked_reseller.empty());
  }
}

TEST_F(LinksTest, ConcurrentLinksOfOneAccountOnlyOneWins) {
  ReadyAccount("alice");
  NewReseller("one");
  NewReseller("two");
  std::latch start(2);
  Result<LinkOutcome> outcomes[2] = {Status::IoError("not run"), Status::IoError("not run")};
  auto attempt = [&](int i, const std::string& reseller) {
    start.arrive_and_wait();
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    outcomes[i] = LinkAccount(*txn, "alice", reseller, kNow);
    ASSERT_TRUE(txn->Commit().ok());
  };
  std::thread first(attempt, 0, "one"), second(attempt, 1, "two");
  first.join();
  second.join();
  ASSERT_TRUE(outcomes[0].ok() && outcomes[1].ok());
  EXPECT_NE(outcomes[0]->linked, outcomes[1]->linked);
  int loser = outcomes[0]->linked ? 1 : 0;
  EXPECT_EQ(outcomes[loser]->refusal.rule, kRuleAccountLinked);
  auto txn = Read();
  std::string linked_to = GetAccount(txn, "alice")->linked_reseller;
  EXPECT_EQ(GetReseller(txn, linked_to)->linked_account, "alice");
  EXPECT_TRUE(GetReseller(txn, linked_to == "one" ? "two" : "one")->linked_account.empty());
}

// --- Unlink and password reset ---------------------------------------------------

TEST_F(LinksTest, UnlinkClearsBothSidesQueuesMailAndKillsPassword) {
  ReadyAccount("alice");
  NewReseller("shop");
  ASSERT_TRUE(VerifyPassword("old password", PasswordHash("alice")));
  ASSERT_TRUE(Link("alice", "shop")->linked);
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& txn) { return DeleteReseller(txn, "shop"); }),
                   Status::Code::kInvalid, {"reseller 'shop' is linked", "unlink it first"}));
  PutSession("via-reseller", "alice", true);

  Status s = Unlink("alice", kNow + 100, 3600);
  ASSERT_TRUE(s.ok()) << s.message();
  {
    auto txn = Read();
    EXPECT_TRUE(GetAccount(txn, "alice")->linked_reseller.empty());
    EXPECT_TRUE(GetReseller(txn, "shop")->linked_account.empty());
    EXPECT_FALSE(VerifyPassword("old password", GetAccount(txn, "alice")->password_hash));
    auto mails = ListMail(txn);
    ASSERT_TRUE(mails.ok());
    ASSERT_EQ(mails->size(), 1u);
    const storage::MailRecord& mail = (*mails)[0].second;
    EXPECT_EQ(mail.to, "alice@example.com");
    EXPECT_EQ(mail.subject, "Set a new password for your updns account");
    EXPECT_EQ(mail.created_at, kNow + 100);
    EXPECT_EQ(mail.attempts, 0u);
    EXPECT_NE(mail.body.find("\"alice\""), std::string::npos) << mail.body;
    EXPECT_NE(mail.body.find("\"shop\""), std::string::npos) << mail.body;
    EXPECT_NE(mail.body.find("expires at 2023-11-14 23:15 UTC (in 1 hour)"), std::string::npos)
        << mail.body;
  }
  EXPECT_FALSE(HasSession("via-reseller"));
  std::string token = ResetTokenFromMail("alice@example.com");
  ASSERT_EQ(token.size(), kTokenLength);
  {
    auto txn = Read();
    auto value = txn.Get(Table::kOneTime, TokenDigest(token));
    ASSERT_TRUE(value.has_value());
    auto record = OneTimeTokenRecord::Decode(*value);
    ASSERT_TRUE(record.ok());
    EXPECT_EQ(record->purpose, OneTimeTokenRecord::Purpose::kPasswordReset);
    EXPECT_EQ(record->account, "alice");
    EXPECT_EQ(record->expires_at, kNow + 100 + 3600);
  }
  // Unlinked: the reseller may go, and the account may link again.
  EXPECT_TRUE(Write([](storage::WriteTxn& txn) { return DeleteReseller(txn, "shop"); }).ok());
  NewReseller("shop2");
  EXPECT_TRUE(Link("alice", "shop2")->linked);
}

TEST_F(LinksTest, UnlinkRefusals) {
  ReadyAccount("alice");
  NewReseller("shop");
  EXPECT_TRUE(Says(Unlink("alice"), Status::Code::kInvalid, {"account 'alice' is not linked"}));
  EXPECT_TRUE(Says(Unlink("nobody"), Status::Code::kNotFound, {"nobody"}));
  ASSERT_TRUE(Link("alice", "shop")->linked);
  UnlinkOptions no_url;
  EXPECT_TRUE(
      Says(Write([&](storage::WriteTxn& txn) { return UnlinkAccount(txn, "alice", no_url, kNow); }),
           Status::Code::kInvalid, {"mail.reset_url"}));
  auto txn = Read();
  EXPECT_EQ(GetAccount(txn, "alice")->linked_reseller, "shop");
  EXPECT_TRUE(ListMail(txn)->empty());
}

TEST_F(LinksTest, ResetPasswordIsOneTime) {
  ReadyAccount("alice");
  NewReseller("shop");
  ASSERT_TRUE(Link("alice", "shop")->linked);
  ASSERT_TRUE(Unlink("alice").ok());
  std::string token = ResetTokenFromMail("alice@example.com");
  ASSERT_EQ(token.size(), kTokenLength);

  auto reset = [&](std::string_view t, std::string_view password, uint64_t now = kNow + 60) {
    return Write([&](storage::WriteTxn& txn) { return ResetPassword(txn, t, password, now); });
  };
  // A reset token is no move token.
  EXPECT_TRUE(Write([&](storage::WriteTxn& txn) {
                return MoveHost(txn, token, "alice", kNow + 60).status();
              }).IsInvalid());
  // A password HashPassword refuses leaves the token usable.
  EXPECT_TRUE(Says(reset(token, ""), Status::Code::kInvalid, {"new password"}));
  Status s = reset(token, "new password");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(VerifyPassword("new password", PasswordHash("alice")));
  EXPECT_FALSE(VerifyPassword("old password", PasswordHash("alice")));

  Status again = reset(token, "third password");
  EXPECT_TRUE(Says(again, Status::Code::kInvalid, {"not valid", "used already"}));
  EXPECT_EQ(again.message().find("alice"), std::string_view::npos);
  EXPECT_TRUE(VerifyPassword("new password", PasswordHash("alice")));
  EXPECT_TRUE(Says(reset("", "x"), Status::Code::kInvalid, {"not valid"}));
  EXPECT_TRUE(Says(reset(std::string(100000, 'a'), "x"), Status::Code::kInvalid, {"not valid"}));
  EXPECT_TRUE(
      Says(reset("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x"), Status::Code::kInvalid, {"not valid"}));
}

TEST_F(LinksTest, ResetTokenExpires) {
  ReadyAccount("alice");
  NewReseller("shop");
  ASSERT_TRUE(Link("alice", "shop")->linked);
  ASSERT_TRUE(Unlink("alice", kNow, 600).ok());
  std::string token = ResetTokenFromMail("alice@example.com");
  Status s = Write([&](storage::WriteTxn& txn) {
    return ResetPassword(txn, token, "late password", kNow + 600);
  });
  EXPECT_TRUE(Says(s, Status::Code::kInvalid, {"expired"}));
  EXPECT_EQ(s.message().find("alice"), std::string_view::npos);
  EXPECT_TRUE(PasswordHash("alice").empty());
}

TEST_F(LinksTest, ResetKillsOlderResetLinks) {
  ReadyAccount("alice");
  NewReseller("shop");
  ASSERT_TRUE(Link("alice", "shop")->linked);
  ASSERT_TRUE(Unlink("alice").ok());
  std::string first = ResetTokenFromMail("alice@example.com");
  ASSERT_TRUE(Link("alice", "shop")->linked);
  ASSERT_TRUE(Unlink("alice").ok());
  std::string second = ResetTokenFromMail("alice@example.com");
  ASSERT_NE(first, second);
  ASSERT_TRUE(Write([&](storage::WriteTxn& txn) {
                return ResetPassword(txn, second, "pw2", kNow + 1);
              }).ok());
  EXPECT_TRUE(Write([&](storage::WriteTxn& txn) {
                return ResetPassword(txn, first, "pw1", kNow + 1);
              }).IsInvalid());
  EXPECT_TRUE(VerifyPassword("pw2", PasswordHash("alice")));
}

// --- Host moves ---------------------------------------------------------------------

TEST_F(LinksTest, MoveHostWithToken) {
  NewAccount("alice");
  NewAccount("bob", 2);
  NewHost("home.dyn.example", "alice");
  std::string update_token = NewToken("home.dyn.example");
  std::string before_digest;
  {
    auto txn = Read();
    before_digest = GetHost(txn, "home.dyn.example")->token_digest;
  }
  std::string move_token;
  ASSERT_TRUE(Write([&](storage::WriteTxn& txn) {
                auto t = CreateMoveToken(txn, "alice", "HOME.dyn.example.", kNow);
                if (!t.ok()) return t.status();
                move_token = *t;
                return Status::Ok();
              }).ok());
  ASSERT_EQ(move_token.size(), kTokenLength);

  Result<std::string> moved = Status::IoError("not run");
  ASSERT_TRUE(Write([&](storage::WriteTxn& txn) {
                moved = MoveHost(txn, move_token, "Bob", kNow + 10);
                return moved.status();
              }).ok())
      << moved.status().message();
  EXPECT_EQ(*moved, "home.dyn.example");
  {
    auto txn = Read();
    auto host = GetHost(txn, "home.dyn.example");
    EXPECT_EQ(host->account, "bob");
    EXPECT_EQ(host->token_digest, before_digest);
    EXPECT_EQ(ListHosts(txn, "bob")->size(), 1u);
    EXPECT_TRUE(ListHosts(txn, "alice")->empty());
    EXPECT_FALSE(
        txn.Get(Table::kAccountHosts, storage::AccountHostKey("alice", "home.dyn.example")));
    EXPECT_TRUE(txn.Get(Table::kAccountHosts, storage::AccountHostKey("bob", "home.dyn.example")));
    EXPECT_FALSE(txn.Get(Table::kOneTime, TokenDigest(move_token)));
  }
  // The update token still works, now on bob's host.
  UseToken("home.dyn.example", update_token, "198.51.100.9");

  // Used: refused.
  Status again = Write([&](storage::WriteTxn& txn) {
    return MoveHost(txn, move_token, "alice", kNow + 20).status();
  });
  EXPECT_TRUE(Says(again, Status::Code::kInvalid, {"move token is not valid"}));
}

TEST_F(LinksTest, MoveHostRules) {
  NewAccount("alice");
  NewAccount("bob", 1);
  NewAccount("carol");
  NewHost("one.dyn.example", "alice");
  NewHost("two.dyn.example", "alice");
  NewHost("bobs.dyn.example", "bob");
  auto issue = [&](std::string_view account, std::string_view host, uint64_t ttl = 600) {
    std::string token;
    Status s = Write([&](storage::WriteTxn& txn) {
      auto t = CreateMoveToken(txn, account, host, kNow, ttl);
      if (!t.ok()) return t.status();
      token = *t;
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.message();
    return token;
  };
  auto move = [&](std::string_view token, std::string_view target, uint64_t now = kNow + 1) {
    return Write(
        [&](storage::WriteTxn& txn) { return MoveHost(txn, token, target, now).status(); });
  };

  // Only the owner issues move tokens.
  EXPECT_TRUE(Says(Write([&](storage::WriteTxn& txn) {
                     return CreateMoveToken(txn, "bob", "one.dyn.example", kNow).status();
                   }),
                   Status::Code::kNotFound,
                   {"host 'one.dyn.example' is not a host of account 'bob'"}));
  EXPECT_TRUE(Write([&](storage::WriteTxn& txn) {
                return CreateMoveToken(txn, "alice", "none.dyn.example", kNow).status();
              }).IsNotFound());

  // bob is full (1 of 1); the token survives the refusal.
  std::string token = issue("alice", "one.dyn.example");
  Snapshot before = TakeSnapshot();
  EXPECT_TRUE(Says(move(token, "bob"), Status::Code::kInvalid,
                   {"account 'bob' has reached its host limit (1 of 1 hosts)"}));
  EXPECT_TRUE(Says(move(token, "alice"), Status::Code::kInvalid, {"already belongs"}));
  EXPECT_TRUE(move(token, "nobody").IsNotFound());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn) {
                return SetAccountState(txn, "carol", State::kDisabled);
              }).ok());
  EXPECT_TRUE(Says(move(token, "carol"), Status::Code::kInvalid, {"account 'carol' is disabled"}));
  ASSERT_TRUE(Write([](storage::WriteTxn& txn) {
                return SetAccountState(txn, "carol", State::kActive);
              }).ok());
  EXPECT_EQ(TakeSnapshot(), before);

  // Expired.
  EXPECT_TRUE(Says(move(token, "carol", kNow + 600), Status::Code::kInvalid, {"expired"}));
  // A new move token for the host replaces the old one.
  std::string newer = issue("alice", "one.dyn.example");
  EXPECT_TRUE(Says(move(token, "carol"), Status::Code::kInvalid, {"not valid"}));
  EXPECT_TRUE(move("", "carol").IsInvalid());
  ASSERT_TRUE(move(newer, "carol").ok());

  // The host is gone before the token is used.
  std::string gone = issue("alice", "two.dyn.example");
  ASSERT_TRUE(Write([](storage::WriteTxn& txn) {
                std::set<std::string> zones;
                if (Status s = DeleteHost(txn, "two.dyn.example", zones); !s.ok()) return s;
                return zone::FinishZoneChanges(txn, zones);
              }).ok());
  EXPECT_TRUE(Says(move(gone, "carol"), Status::Code::kInvalid, {"no longer exists"}));
  EXPECT_TRUE(Write([&](storage::WriteTxn& txn) {
                return CreateMoveToken(txn, "carol", "one.dyn.example", kNow, 0).status();
              }).IsInvalid());
}

}  // namespace
}  // namespace updns::update
