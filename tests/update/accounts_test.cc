#include "update/accounts.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "storage/node.h"
#include "storage/schema.h"
#include "tests/update/store_fixture.h"
#include "update/credentials.h"
#include "zone/zone_edit.h"

namespace updns::update {
namespace {

using storage::AccountRecord;
using storage::HostRecord;
using storage::State;
using storage::Table;
using testing_support::NodeValue;
using testing_support::Says;
using testing_support::Serial;
using testing_support::Wire;

constexpr uint64_t kNow = 1700000000;

class AccountsTest : public testing::Test {
 protected:
  void SetUp() override {
    store_ = testing_support::OpenStoreWithZone(dir_);
    ASSERT_NE(store_, nullptr);
  }

  // Runs `fn` in a write transaction; commits (after FinishZoneChanges) only
  // when it succeeds, like updnsctl.
  Status Write(const std::function<Status(storage::WriteTxn&, std::set<std::string>&)>& fn) {
    auto txn = store_->BeginWrite();
    if (!txn.ok()) return txn.status();
    std::set<std::string> zones;
    if (Status s = fn(*txn, zones); !s.ok()) return s;
    last_changed_zones_ = zones;
    if (Status s = zone::FinishZoneChanges(*txn, zones); !s.ok()) return s;
    return txn->Commit();
  }

  storage::ReadTxn Read() {
    auto txn = store_->BeginRead();
    EXPECT_TRUE(txn.ok());
    return std::move(txn).value();
  }

  Status NewAccount(std::string_view name, uint32_t host_limit = 100,
                    std::string_view password = "pw") {
    return Write([&](storage::WriteTxn& txn, std::set<std::string>&) {
      return CreateAccount(txn, name, std::string(name) + "@example.com", password, host_limit,
                           kNow);
    });
  }

  Status NewHost(std::string_view fqdn, std::string_view account) {
    return Write([&](storage::WriteTxn& txn, std::set<std::string>& zones) {
      return AddHost(txn, fqdn, account, zones_, kNow, zones);
    });
  }

  // Raw bytes of a host record, to show that an operation left it alone.
  std::string RawHost(std::string_view name) {
    auto txn = Read();
    auto value = txn.Get(Table::kHosts, name);
    return value ? std::string(*value) : std::string();
  }

  size_t NodeCount() {
    auto txn = Read();
    auto cursor = txn.OpenCursor(Table::kNodes);
    size_t n = 0;
    for (bool more = cursor->First(); more; more = cursor->Next()) ++n;
    return n;
  }

  testing_support::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::vector<HostZone> zones_ = {{"dyn.example", 60}, {"other.example", 300}};
  std::set<std::string> last_changed_zones_;
};

// --- Names ------------------------------------------------------------------

TEST(NamesTest, AccountNames) {
  EXPECT_EQ(*NormalizeAccountName("Alice"), "alice");
  EXPECT_EQ(*NormalizeAccountName("a"), "a");
  EXPECT_EQ(*NormalizeAccountName("0.b_c-d"), "0.b_c-d");
  EXPECT_EQ(*NormalizeAccountName(std::string(63, 'x')), std::string(63, 'x'));
  for (const char* bad : {"", "-bob", ".bob", "_bob", "bob!", "bo b", "bob@example", "b\xc3\xb6"}) {
    auto name = NormalizeAccountName(bad);
    EXPECT_TRUE(name.status().IsInvalid()) << bad;
  }
  EXPECT_TRUE(
      Says(NormalizeAccountName(std::string(64, 'x')).status(), Status::Code::kInvalid, {"63"}));
  EXPECT_TRUE(Says(NormalizeAccountName("bob!").status(), Status::Code::kInvalid,
                   {"'bob!'", "letters, digits"}));
  // Control characters never reach a message as they are.
  EXPECT_EQ(NormalizeAccountName("a\nb").status().message().find('\n'), std::string_view::npos);
}

TEST(NamesTest, HostNames) {
  EXPECT_EQ(*NormalizeHostName("Home.DYN.example."), "home.dyn.example");
  EXPECT_EQ(*NormalizeHostName("a-1.dyn.example"), "a-1.dyn.example");
  std::string label63(63, 'a');
  EXPECT_TRUE(NormalizeHostName(label63 + ".dyn.example").ok());
  for (const char* bad :
       {"", ".", "home", "home..dyn.example", ".home.dyn.example", "-home.dyn.example",
        "home-.dyn.example", "ho_me.dyn.example", "*.dyn.example", "ho me.dyn.example",
        "home.dyn.example..", "h\xc3\xb6me.dyn.example"}) {
    EXPECT_TRUE(NormalizeHostName(bad).status().IsInvalid()) << bad;
  }
  EXPECT_TRUE(NormalizeHostName(std::string(64, 'a') + ".dyn.example").status().IsInvalid());
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name += "example";
  EXPECT_TRUE(Says(NormalizeHostName(long_name).status(), Status::Code::kInvalid, {"253"}));
}

// --- Accounts ---------------------------------------------------------------

TEST_F(AccountsTest, CreateAndGetAccount) {
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return CreateAccount(txn, "Alice", "alice@Example.com", "s3cret", 7, kNow);
              }).ok());
  EXPECT_TRUE(last_changed_zones_.empty());
  auto txn = Read();
  auto account = GetAccount(txn, "ALICE");
  ASSERT_TRUE(account.ok()) << account.status().message();
  EXPECT_EQ(account->name, "alice");
  EXPECT_EQ(account->email, "alice@Example.com");
  EXPECT_EQ(account->state, State::kActive);
  EXPECT_EQ(account->host_limit, 7u);
  EXPECT_EQ(account->created_at, kNow);
  EXPECT_EQ(account->password_hash.rfind("scrypt$", 0), 0u);
  EXPECT_TRUE(VerifyPassword("s3cret", account->password_hash));
  EXPECT_FALSE(VerifyPassword("s3cre", account->password_hash));
  EXPECT_TRUE(Says(GetAccount(txn, "bob").status(), Status::Code::kNotFound,
                   {"account 'bob' does not exist"}));
  EXPECT_EQ(*CountHosts(txn, "alice"), 0u);
}

TEST_F(AccountsTest, CreateAccountRules) {
  ASSERT_TRUE(NewAccount("alice").ok());
  EXPECT_TRUE(Says(NewAccount("Alice"), Status::Code::kExists, {"account 'alice' already exists"}));
  EXPECT_TRUE(Says(NewAccount("al ice"), Status::Code::kInvalid, {"'al ice'"}));
  EXPECT_TRUE(Says(NewAccount("bob", 100, ""), Status::Code::kInvalid,
                   {"account 'bob'", "password is empty"}));
  EXPECT_TRUE(Says(NewAccount("bob", 100, std::string(1025, 'p')), Status::Code::kInvalid,
                   {"account 'bob'", "1024"}));
  for (const char* email :
       {"", "bob", "bob@", "@example.com", "bob@localhost", "b ob@example.com", "bob@@example.com",
        "bob@exa mple.com", "bob@example..com", "<bob>@example.com", "bob@-example.com"}) {
    Status s = Write([&](storage::WriteTxn& txn, std::set<std::string>&) {
      return CreateAccount(txn, "bob", email, "pw", 1, kNow);
    });
    EXPECT_TRUE(Says(s, Status::Code::kInvalid, {"account 'bob'", "e-mail"})) << email;
  }
  Status long_email = Write([&](storage::WriteTxn& txn, std::set<std::string>&) {
    return CreateAccount(txn, "bob", std::string(250, 'b') + "@example.com", "pw", 1, kNow);
  });
  EXPECT_TRUE(Says(long_email, Status::Code::kInvalid, {"254"}));
  auto txn = Read();
  EXPECT_TRUE(GetAccount(txn, "bob").status().IsNotFound());  // nothing was written
}

TEST_F(AccountsTest, ListAndState) {
  ASSERT_TRUE(NewAccount("carol").ok());
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewAccount("bob").ok());
  {
    auto txn = Read();
    auto accounts = ListAccounts(txn);
    ASSERT_TRUE(accounts.ok());
    ASSERT_EQ(accounts->size(), 3u);
    EXPECT_EQ((*accounts)[0].name, "alice");
    EXPECT_EQ((*accounts)[1].name, "bob");
    EXPECT_EQ((*accounts)[2].name, "carol");
  }
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return SetAccountState(txn, "Bob", State::kDisabled);
              }).ok());
  EXPECT_EQ(GetAccount(Read(), "bob")->state, State::kDisabled);
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return SetAccountState(txn, "bob", State::kActive);
              }).ok());
  EXPECT_EQ(GetAccount(Read(), "bob")->state, State::kActive);
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                     return SetAccountState(txn, "dave", State::kDisabled);
                   }),
                   Status::Code::kNotFound, {"account 'dave' does not exist"}));
}

// --- Hosts ------------------------------------------------------------------

TEST_F(AccountsTest, AddHostCreatesRecordIndexAndNode) {
  ASSERT_TRUE(NewAccount("alice").ok());
  uint32_t serial = Serial(Read(), "dyn.example");
  uint64_t generation = storage::ReadGeneration(Read());
  size_t nodes = NodeCount();
  ASSERT_NE(serial, 0u);

  Status s = NewHost("Home.Dyn.Example.", "Alice");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(last_changed_zones_.empty()) << "no DNS data changes before the first update";

  auto txn = Read();
  auto host = GetHost(txn, "home.dyn.example");
  ASSERT_TRUE(host.ok()) << host.status().message();
  EXPECT_EQ(host->name, "home.dyn.example");
  EXPECT_EQ(host->account, "alice");
  EXPECT_EQ(host->zone, "dyn.example");
  EXPECT_EQ(host->state, State::kActive);
  EXPECT_EQ(host->created_at, kNow);
  EXPECT_TRUE(host->ipv4.empty());
  EXPECT_TRUE(host->ipv6.empty());
  EXPECT_FALSE(host->has_token());
  EXPECT_TRUE(txn.Get(Table::kAccountHosts, storage::AccountHostKey("alice", "home.dyn.example"))
                  .has_value());
  EXPECT_EQ(*CountHosts(txn, "alice"), 1u);

  // No records yet, so no node: a name without records could not be
  // transferred to secondaries. The first update creates it.
  EXPECT_FALSE(NodeValue(txn, "dyn.example", "home.dyn.example").has_value());
  EXPECT_EQ(NodeCount(), nodes);
  EXPECT_EQ(Serial(txn, "dyn.example"), serial);
  EXPECT_EQ(storage::ReadGeneration(txn), generation);
}

TEST_F(AccountsTest, AddHostRules) {
  ASSERT_TRUE(NewAccount("alice", 2).ok());
  ASSERT_TRUE(NewAccount("bob").ok());
  uint32_t serial = Serial(Read(), "dyn.example");
  size_t nodes = NodeCount();

  EXPECT_TRUE(
      Says(NewHost("ho_me.dyn.example", "alice"), Status::Code::kInvalid, {"'ho_me.dyn.example'"}));
  EXPECT_TRUE(Says(NewHost("home.elsewhere.example", "alice"), Status::Code::kInvalid,
                   {"host 'home.elsewhere.example' is not inside any configured zone (dyn.example, "
                    "other.example)"}));
  EXPECT_TRUE(Says(NewHost("xdyn.example", "alice"), Status::Code::kInvalid,
                   {"not inside any configured zone"}));
  EXPECT_TRUE(Says(NewHost("DYN.example.", "alice"), Status::Code::kInvalid,
                   {"host 'dyn.example' is the apex of zone dyn.example"}));
  EXPECT_TRUE(Says(NewHost("home.other.example", "alice"), Status::Code::kNotFound,
                   {"host 'home.other.example'", "zone other.example is not in the store"}));
  EXPECT_TRUE(Says(NewHost("home.dyn.example", "nobody"), Status::Code::kNotFound,
                   {"host 'home.dyn.example'", "account 'nobody' does not exist"}));
  EXPECT_TRUE(Says(NewHost("static.dyn.example", "alice"), Status::Code::kExists,
                   {"host 'static.dyn.example'", "already has records at this name (A, TXT)"}));
  EXPECT_TRUE(Says(NewHost("ns1.dyn.example", "alice"), Status::Code::kExists, {"(A)"}));
  EXPECT_TRUE(Says(NewHost("sub.dyn.example", "alice"), Status::Code::kExists, {"(NS)"}));
  EXPECT_TRUE(Says(NewHost("home.sub.dyn.example", "alice"), Status::Code::kInvalid,
                   {"host 'home.sub.dyn.example' is below the delegation at sub.dyn.example"}));
  EXPECT_TRUE(Says(NewHost("a.b.ns.sub.dyn.example", "alice"), Status::Code::kInvalid,
                   {"below the delegation at sub.dyn.example"}));
  // Nothing of the refused requests reached the store.
  EXPECT_EQ(NodeCount(), nodes);
  EXPECT_EQ(Serial(Read(), "dyn.example"), serial);
  EXPECT_TRUE(ListHosts(Read())->empty());

  ASSERT_TRUE(NewHost("home.dyn.example", "alice").ok());
  EXPECT_TRUE(Says(NewHost("HOME.dyn.example", "bob"), Status::Code::kExists,
                   {"host 'home.dyn.example' already exists"}));
  ASSERT_TRUE(NewHost("deep.down.dyn.example", "alice").ok());  // below an empty non-terminal
  EXPECT_TRUE(Says(
      NewHost("third.dyn.example", "alice"), Status::Code::kInvalid,
      {"host 'third.dyn.example'", "account 'alice' has reached its host limit (2 of 2 hosts)"}));
  ASSERT_TRUE(NewHost("third.dyn.example", "bob").ok());

  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return SetAccountState(txn, "bob", State::kDisabled);
              }).ok());
  EXPECT_TRUE(Says(NewHost("fourth.dyn.example", "bob"), Status::Code::kInvalid,
                   {"host 'fourth.dyn.example'", "account 'bob' is disabled"}));
  EXPECT_EQ(NodeCount(), nodes) << "hosts get nodes with their first address";
}

TEST_F(AccountsTest, ClosestConfiguredZoneWins) {
  // sub.dyn.example is delegated in dyn.example, and also served by us.
  std::string sub_zone =
      dir_.Write("sub.zone",
                 "$ORIGIN sub.dyn.example.\n$TTL 300\n"
                 "@ IN SOA ns.sub.dyn.example. h.dyn.example. 1 3600 900 1209600 300\n"
                 "  IN NS ns\nns IN A 192.0.2.53\n");
  ASSERT_TRUE(zone::ImportZoneFile(*store_, "sub.dyn.example", sub_zone).ok());
  zones_.push_back({"SUB.dyn.example.", 120});
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewHost("home.sub.dyn.example", "alice").ok());
  EXPECT_EQ(GetHost(Read(), "home.sub.dyn.example")->zone, "sub.dyn.example");
  EXPECT_TRUE(Says(NewHost("sub.dyn.example", "alice"), Status::Code::kInvalid,
                   {"is the apex of zone sub.dyn.example"}));
}

TEST_F(AccountsTest, HostStateListAndDelete) {
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewAccount("bob").ok());
  ASSERT_TRUE(NewHost("b.dyn.example", "alice").ok());
  ASSERT_TRUE(NewHost("a.dyn.example", "alice").ok());
  ASSERT_TRUE(NewHost("c.dyn.example", "bob").ok());

  {
    auto txn = Read();
    auto all = ListHosts(txn);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ((*all)[0].name, "a.dyn.example");
    EXPECT_EQ((*all)[2].name, "c.dyn.example");
    auto alices = ListHosts(txn, "Alice");
    ASSERT_TRUE(alices.ok());
    ASSERT_EQ(alices->size(), 2u);
    EXPECT_EQ((*alices)[0].name, "a.dyn.example");
    EXPECT_EQ((*alices)[1].name, "b.dyn.example");
    EXPECT_TRUE(Says(ListHosts(txn, "zed").status(), Status::Code::kNotFound, {"account 'zed'"}));
    EXPECT_TRUE(Says(GetHost(txn, "x.dyn.example").status(), Status::Code::kNotFound,
                     {"host 'x.dyn.example' does not exist"}));
  }

  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return SetHostState(txn, "A.dyn.example", State::kDisabled);
              }).ok());
  EXPECT_TRUE(last_changed_zones_.empty());
  EXPECT_EQ(GetHost(Read(), "a.dyn.example")->state, State::kDisabled);
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                     return SetHostState(txn, "x.dyn.example", State::kDisabled);
                   }),
                   Status::Code::kNotFound, {"host 'x.dyn.example' does not exist"}));

  // Give b addresses, then delete it: record, index and node go.
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>& zones) {
                zones.insert(Wire("dyn.example"));
                return zone::WriteHostAddresses(txn, Wire("dyn.example"), Wire("b.dyn.example"),
                                                std::string("\xc0\x00\x02\x63", 4), "", 60);
              }).ok());
  uint32_t serial = Serial(Read(), "dyn.example");
  size_t nodes = NodeCount();
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>& zones) {
                return DeleteHost(txn, "b.dyn.example.", zones);
              }).ok());
  EXPECT_EQ(last_changed_zones_, std::set<std::string>{Wire("dyn.example")});
  auto txn = Read();
  EXPECT_TRUE(GetHost(txn, "b.dyn.example").status().IsNotFound());
  EXPECT_FALSE(
      txn.Get(Table::kAccountHosts, storage::AccountHostKey("alice", "b.dyn.example")).has_value());
  EXPECT_FALSE(NodeValue(txn, "dyn.example", "b.dyn.example").has_value());
  EXPECT_EQ(NodeCount(), nodes - 1);
  EXPECT_EQ(Serial(txn, "dyn.example"), serial + 1);
  EXPECT_EQ(*CountHosts(txn, "alice"), 1u);
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& t, std::set<std::string>& zones) {
                     return DeleteHost(t, "b.dyn.example", zones);
                   }),
                   Status::Code::kNotFound, {"host 'b.dyn.example' does not exist"}));
}

// --- Tokens -----------------------------------------------------------------

TEST_F(AccountsTest, CreateTokenReplacesOnlyThatHostsToken) {
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewHost("a.dyn.example", "alice").ok());
  ASSERT_TRUE(NewHost("b.dyn.example", "alice").ok());
  std::string first;
  ASSERT_TRUE(Write([&](storage::WriteTxn& txn, std::set<std::string>&) {
                auto token = CreateToken(txn, "a.dyn.example", kNow);
                if (token.ok()) first = *token;
                return token.status();
              }).ok());
  EXPECT_TRUE(last_changed_zones_.empty());
  ASSERT_EQ(first.size(), kTokenLength);
  {
    auto host = GetHost(Read(), "a.dyn.example");
    EXPECT_TRUE(host->has_token());
    EXPECT_TRUE(TokenMatches(first, host->token_digest));
    EXPECT_EQ(host->token_digest.find(first), std::string::npos);
    EXPECT_EQ(host->token_created_at, kNow);
    EXPECT_FALSE(host->token_used);
  }
  // The token was used once...
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                auto host = GetHost(txn, "a.dyn.example");
                host->token_used = true;
                host->token_last_used_at = kNow + 5;
                host->token_last_used_from = "192.0.2.200";
                return txn.Put(Table::kHosts, host->name, host->Encode());
              }).ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return CreateToken(txn, "b.dyn.example", kNow).status();
              }).ok());
  std::string other_before = RawHost("b.dyn.example");

  // ...then exchanged: the old one stops matching at once.
  std::string second;
  ASSERT_TRUE(Write([&](storage::WriteTxn& txn, std::set<std::string>&) {
                auto token = CreateToken(txn, "A.dyn.example.", kNow + 10);
                if (token.ok()) second = *token;
                return token.status();
              }).ok());
  EXPECT_NE(first, second);
  auto host = GetHost(Read(), "a.dyn.example");
  EXPECT_FALSE(TokenMatches(first, host->token_digest));
  EXPECT_TRUE(TokenMatches(second, host->token_digest));
  EXPECT_EQ(host->token_created_at, kNow + 10);
  EXPECT_FALSE(host->token_used);
  EXPECT_EQ(host->token_last_used_at, 0u);
  EXPECT_TRUE(host->token_last_used_from.empty());
  EXPECT_EQ(RawHost("b.dyn.example"), other_before);

  EXPECT_TRUE(Says(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                     return CreateToken(txn, "zz.dyn.example", kNow).status();
                   }),
                   Status::Code::kNotFound, {"host 'zz.dyn.example' does not exist"}));
}

TEST_F(AccountsTest, RevokeToken) {
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewHost("a.dyn.example", "alice").ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return CreateToken(txn, "a.dyn.example", kNow).status();
              }).ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return RevokeToken(txn, "a.dyn.example");
              }).ok());
  auto host = GetHost(Read(), "a.dyn.example");
  EXPECT_FALSE(host->has_token());
  EXPECT_EQ(host->token_created_at, 0u);
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                     return RevokeToken(txn, "a.dyn.example");
                   }),
                   Status::Code::kNotFound, {"host 'a.dyn.example' has no update token"}));
}

TEST_F(AccountsTest, CreateMissingTokensOnlyForActiveHostsWithoutOne) {
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewAccount("bob").ok());
  for (const char* name : {"d.dyn.example", "a.dyn.example", "b.dyn.example", "c.dyn.example"}) {
    ASSERT_TRUE(NewHost(name, "alice").ok());
  }
  ASSERT_TRUE(NewHost("e.dyn.example", "bob").ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return SetHostState(txn, "b.dyn.example", State::kDisabled);
              }).ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>&) {
                return CreateToken(txn, "c.dyn.example", kNow).status();
              }).ok());
  std::string c_before = RawHost("c.dyn.example");
  std::string b_before = RawHost("b.dyn.example");
  std::string e_before = RawHost("e.dyn.example");

  std::vector<HostToken> tokens;
  ASSERT_TRUE(Write([&](storage::WriteTxn& txn, std::set<std::string>&) {
                auto created = CreateMissingTokens(txn, "Alice", kNow + 1);
                if (created.ok()) tokens = *created;
                return created.status();
              }).ok());
  EXPECT_TRUE(last_changed_zones_.empty());
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].hostname, "a.dyn.example");
  EXPECT_EQ(tokens[1].hostname, "d.dyn.example");
  EXPECT_NE(tokens[0].token, tokens[1].token);
  auto txn = Read();
  for (const HostToken& pair : tokens) {
    auto host = GetHost(txn, pair.hostname);
    EXPECT_EQ(pair.token.size(), kTokenLength);
    EXPECT_TRUE(TokenMatches(pair.token, host->token_digest)) << pair.hostname;
    EXPECT_EQ(host->token_created_at, kNow + 1);
    EXPECT_FALSE(host->token_used);
  }
  EXPECT_EQ(RawHost("c.dyn.example"), c_before);
  EXPECT_EQ(RawHost("b.dyn.example"), b_before);
  EXPECT_EQ(RawHost("e.dyn.example"), e_before);

  // A second run finds nothing missing.
  ASSERT_TRUE(Write([&](storage::WriteTxn& t, std::set<std::string>&) {
                auto created = CreateMissingTokens(t, "alice", kNow + 2);
                if (created.ok()) tokens = *created;
                return created.status();
              }).ok());
  EXPECT_TRUE(tokens.empty());
  EXPECT_TRUE(Says(Write([](storage::WriteTxn& t, std::set<std::string>&) {
                     return CreateMissingTokens(t, "nobody", kNow).status();
                   }),
                   Status::Code::kNotFound, {"account 'nobody' does not exist"}));
}

TEST(TokensCsvTest, Rfc4180) {
  EXPECT_EQ(kTokensCsvFileName, "spdyn_update_token.csv");
  EXPECT_EQ(TokensCsv({}), "hostname,token\r\n");
  EXPECT_EQ(
      TokensCsv({{"a.dyn.example", "abcdefghijklmnopqrstuvwxyz234567"}, {"b.dyn.example", "t2"}}),
      "hostname,token\r\n"
      "a.dyn.example,abcdefghijklmnopqrstuvwxyz234567\r\n"
      "b.dyn.example,t2\r\n");
  EXPECT_EQ(TokensCsv({{"a,b", "say \"hi\""}, {"line\nbreak", "cr\rhere"}, {"", "plain"}}),
            "hostname,token\r\n"
            "\"a,b\",\"say \"\"hi\"\"\"\r\n"
            "\"line\nbreak\",\"cr\rhere\"\r\n"
            ",plain\r\n");
  EXPECT_EQ(TokensCsv({{"\"", "x y"}}), "hostname,token\r\n\"\"\"\",x y\r\n");
}

// --- Deleting an account ----------------------------------------------------------

TEST_F(AccountsTest, DeleteAccountCascades) {
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(NewAccount("bob").ok());
  ASSERT_TRUE(NewHost("a.dyn.example", "alice").ok());
  ASSERT_TRUE(NewHost("b.dyn.example", "alice").ok());
  ASSERT_TRUE(NewHost("c.dyn.example", "bob").ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>& zones) {
                zones.insert(Wire("dyn.example"));
                for (const char* host : {"a.dyn.example", "b.dyn.example", "c.dyn.example"}) {
                  Status s = zone::WriteHostAddresses(txn, Wire("dyn.example"), Wire(host), "",
                                                      std::string(16, '\x20'), 60);
                  if (!s.ok()) return s;
                }
                return Status::Ok();
              }).ok());
  std::string bob_host = RawHost("c.dyn.example");
  uint32_t serial = Serial(Read(), "dyn.example");
  size_t nodes = NodeCount();

  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>& zones) {
                return DeleteAccount(txn, "ALICE", zones);
              }).ok());
  EXPECT_EQ(last_changed_zones_, std::set<std::string>{Wire("dyn.example")});
  auto txn = Read();
  EXPECT_TRUE(GetAccount(txn, "alice").status().IsNotFound());
  EXPECT_TRUE(GetHost(txn, "a.dyn.example").status().IsNotFound());
  EXPECT_TRUE(GetHost(txn, "b.dyn.example").status().IsNotFound());
  EXPECT_FALSE(NodeValue(txn, "dyn.example", "a.dyn.example").has_value());
  EXPECT_FALSE(NodeValue(txn, "dyn.example", "b.dyn.example").has_value());
  EXPECT_EQ(*CountHosts(txn, "alice"), 0u);
  EXPECT_EQ(NodeCount(), nodes - 2);
  EXPECT_EQ(Serial(txn, "dyn.example"), serial + 1);  // once, for both hosts
  // Bob keeps his host, untouched.
  EXPECT_EQ(RawHost("c.dyn.example"), bob_host);
  EXPECT_TRUE(NodeValue(txn, "dyn.example", "c.dyn.example").has_value());
  EXPECT_EQ(ListHosts(txn)->size(), 1u);
  EXPECT_EQ(ListAccounts(txn)->size(), 1u);

  EXPECT_TRUE(Says(Write([](storage::WriteTxn& t, std::set<std::string>& zones) {
                     return DeleteAccount(t, "alice", zones);
                   }),
                   Status::Code::kNotFound, {"account 'alice' does not exist"}));
}

TEST_F(AccountsTest, DeletingAccountWithoutHostsChangesNoZone) {
  ASSERT_TRUE(NewAccount("alice").ok());
  ASSERT_TRUE(Write([](storage::WriteTxn& txn, std::set<std::string>& zones) {
                return DeleteAccount(txn, "alice", zones);
              }).ok());
  EXPECT_TRUE(last_changed_zones_.empty());
}

}  // namespace
}  // namespace updns::update
