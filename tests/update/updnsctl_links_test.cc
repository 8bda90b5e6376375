// Runs the real updnsctl for the reseller, link, unlink and outbox commands
// against a temporary store, and checks the store afterwards.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "storage/accounts.h"
#include "tests/support/process.h"
#include "tests/update/store_fixture.h"
#include "tests/update/updnsctl_fixture.h"
#include "update/accounts.h"
#include "update/credentials.h"
#include "update/links.h"
#include "update/outbox.h"

namespace updns::update {
namespace {

using test::Lines;

class UpdnsctlLinksTest : public testing_support::UpdnsctlFixture {
 protected:
  void SetUp() override {
    WriteConfigAndImportZone("zones:\n  - name: dyn.example\n"
                             "mail:\n  reset_url: https://dyn.example/reset?t=\n"
                             "api:\n  reset_ttl: 7200\n");
  }

  // Marks the host's token as used, as a dyndns2 update with it would.
  void MarkTokenUsed(const std::string& fqdn) {
    auto store = OpenStore();
    auto txn = store->BeginWrite();
    ASSERT_TRUE(txn.ok());
    auto host = GetHost(*txn, fqdn);
    ASSERT_TRUE(host.ok() && host->has_token()) << fqdn;
    host->token_used = true;
    ASSERT_TRUE(txn->Put(storage::Table::kHosts, host->name, host->Encode()).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
};

TEST_F(UpdnsctlLinksTest, ResellerLinkUnlinkOutbox) {
  Outcome added =
      Run({"reseller", "add", "Shop", "--email", "shop@reseller.example"}, "reseller secret\n");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.out.find("reseller shop created"), std::string::npos) << added.out;
  Outcome no_password = Run({"reseller", "add", "other", "--email", "o@reseller.example"});
  EXPECT_EQ(no_password.exit_code, 1);
  EXPECT_NE(no_password.err.find("no password on stdin"), std::string::npos) << no_password.err;
  Outcome duplicate = Run({"reseller", "add", "SHOP", "--email", "shop@reseller.example"}, "pw\n");
  EXPECT_EQ(duplicate.exit_code, 1);
  EXPECT_NE(duplicate.err.find("reseller 'shop' already exists"), std::string::npos);

  ASSERT_EQ(Run({"account", "add", "bob", "--email", "bob@example.com"}, "old pw\n").exit_code, 0);
  for (const char* host : {"home.dyn.example", "office.dyn.example"})
    ASSERT_EQ(Run({"host", "add", host, "--account", "bob"}).exit_code, 0);
  ASSERT_EQ(Run({"token", "create", "home.dyn.example"}).exit_code, 0);

  // office has no token, home's is unused: refused, both named, nothing linked.
  Outcome refused = Run({"link", "bob", "--reseller", "shop"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("link refused (hosts_without_token)"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("blocking host: office.dyn.example (no update token)"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("blocking host: home.dyn.example (token never used)"),
            std::string::npos)
      << refused.err;
  ASSERT_EQ(Run({"token", "create", "office.dyn.example"}).exit_code, 0);
  MarkTokenUsed("home.dyn.example");
  refused = Run({"link", "bob", "--reseller", "shop"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("link refused (tokens_unused)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("office.dyn.example (token never used)"), std::string::npos);
  EXPECT_EQ(refused.err.find("home.dyn.example"), std::string::npos) << refused.err;
  {
    auto store = OpenStore();
    auto txn = store->BeginRead();
    EXPECT_TRUE(GetAccount(*txn, "bob")->linked_reseller.empty());
    EXPECT_TRUE(GetReseller(*txn, "shop")->linked_account.empty());
  }

  MarkTokenUsed("office.dyn.example");
  Outcome linked = Run({"link", "Bob", "--reseller", "SHOP"});
  ASSERT_EQ(linked.exit_code, 0) << linked.err;
  EXPECT_NE(linked.out.find("account bob linked to reseller shop"), std::string::npos);

  Outcome listed = Run({"reseller", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::vector<std::string> rows = Lines(listed.out);
  ASSERT_EQ(rows.size(), 2u) << listed.out;
  EXPECT_EQ(rows[0], "NAME\tEMAIL\tLINKED_ACCOUNT\tCREATED");
  EXPECT_EQ(rows[1].rfind("shop\tshop@reseller.example\tbob\t", 0), 0u) << rows[1];
  Outcome shown = Run({"account", "show", "bob"});
  EXPECT_NE(shown.out.find("linked reseller: shop\n"), std::string::npos) << shown.out;

  Outcome delete_linked = Run({"reseller", "delete", "shop"});
  EXPECT_EQ(delete_linked.exit_code, 1);
  EXPECT_NE(delete_linked.err.find("unlink it first"), std::string::npos) << delete_linked.err;

  Outcome empty_outbox = Run({"outbox", "list"});
  ASSERT_EQ(empty_outbox.exit_code, 0);
  EXPECT_EQ(Lines(empty_outbox.out).size(), 1u) << empty_outbox.out;

  Outcome unlinked = Run({"unlink", "bob"});
  ASSERT_EQ(unlinked.exit_code, 0) << unlinked.err;
  EXPECT_NE(unlinked.out.find("account bob unlinked from reseller shop; password reset mail "
                              "queued to bob@example.com"),
            std::string::npos)
      << unlinked.out;
  // The reset token goes only into the mail.
  EXPECT_EQ(unlinked.out.find("reset?t="), std::string::npos);
  {
    auto store = OpenStore();
    auto txn = store->BeginRead();
    auto account = GetAccount(*txn, "bob");
    EXPECT_TRUE(account->linked_reseller.empty());
    EXPECT_FALSE(VerifyPassword("old pw", account->password_hash));
    EXPECT_TRUE(GetReseller(*txn, "shop")->linked_account.empty());
    auto mails = ListMail(*txn);
    ASSERT_TRUE(mails.ok());
    ASSERT_EQ(mails->size(), 1u);
    const storage::MailRecord& mail = (*mails)[0].second;
    EXPECT_EQ(mail.to, "bob@example.com");
    const std::string url = "https://dyn.example/reset?t=";
    size_t at = mail.body.find(url);
    ASSERT_NE(at, std::string::npos) << mail.body;
    std::string token = mail.body.substr(at + url.size(), kTokenLength);
    auto value = txn->Get(storage::Table::kOneTime, TokenDigest(token));
    ASSERT_TRUE(value.has_value()) << mail.body;
    auto record = storage::OneTimeTokenRecord::Decode(*value);
    ASSERT_TRUE(record.ok());
    EXPECT_EQ(record->expires_at - record->created_at, 7200u);
    EXPECT_NE(mail.body.find("(in 2 hours)"), std::string::npos) << mail.body;
  }

  Outcome outbox = Run({"outbox", "list"});
  ASSERT_EQ(outbox.exit_code, 0) << outbox.err;
  rows = Lines(outbox.out);
  ASSERT_EQ(rows.size(), 2u) << outbox.out;
  EXPECT_EQ(rows[0], "ID\tTO\tSUBJECT\tATTEMPTS\tNEXT_ATTEMPT\tLAST_ERROR");
  EXPECT_EQ(rows[1].rfind("1\tbob@example.com\tSet a new password for your updns account\t0\t", 0),
            0u)
      << rows[1];
  EXPECT_EQ(rows[1].substr(rows[1].size() - 2), "\t-") << rows[1];

  Outcome again = Run({"unlink", "bob"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("account 'bob' is not linked"), std::string::npos) << again.err;
  Outcome deleted = Run({"reseller", "delete", "shop"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(Lines(Run({"reseller", "list"}).out).size(), 1u);
}

TEST_F(UpdnsctlLinksTest, UsageAndNotFound) {
  EXPECT_EQ(Run({"link", "bob"}).exit_code, 2);
  EXPECT_EQ(Run({"link", "--reseller", "shop"}).exit_code, 2);
  EXPECT_EQ(Run({"unlink"}).exit_code, 2);
  EXPECT_EQ(Run({"outbox"}).exit_code, 2);
  EXPECT_EQ(Run({"reseller", "add", "x"}, "pw\n").exit_code, 2);
  EXPECT_EQ(Run({"reseller", "frobnicate"}).exit_code, 2);
  Outcome missing = Run({"link", "nobody", "--reseller", "shop"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("account 'nobody' does not exist"), std::string::npos) << missing.err;
  // Without mail.reset_url there is no reset link to send: refused.
  std::string no_mail = dir_.Write(
      "no-mail.yaml", "storage:\n  path: " + dir_.File("db") + "\nzones:\n  - name: dyn.example\n");
  config_.swap(no_mail);
  Outcome unlink = Run({"unlink", "bob"});
  config_.swap(no_mail);
  EXPECT_EQ(unlink.exit_code, 1);
  EXPECT_NE(unlink.err.find("unlink needs mail.reset_url"), std::string::npos) << unlink.err;
  Outcome help = Run({"--help"});
  EXPECT_NE(help.out.find("link ACCOUNT --reseller NAME"), std::string::npos);
  EXPECT_NE(help.out.find("outbox list"), std::string::npos);
}

}  // namespace
}  // namespace updns::update
