// Runs the real updnsctl for the account, host and token commands against a
// temporary store, and checks the store afterwards.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/update/store_fixture.h"
#include "tests/update/updnsctl_fixture.h"
#include "update/accounts.h"
#include "update/credentials.h"

namespace updns::update {
namespace {

using testing_support::Serial;

using test::Lines;
using test::ReadFile;

class UpdnsctlTest : public testing_support::UpdnsctlFixture {
 protected:
  void SetUp() override {
    WriteConfigAndImportZone("accounts:\n  host_limit: 3\n"
                             "zones:\n  - name: dyn.example\n    host_ttl: 30\n");
  }
};

TEST_F(UpdnsctlTest, AccountsHostsAndTokens) {
  Outcome added =
      Run({"account", "add", "Bob", "--email", "bob@example.com"}, "hunter2 with spaces\n");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.out.find("account bob created (host limit 3)"), std::string::npos) << added.out;

  uint32_t serial_before = 0;
  {
    auto store = OpenStore();
    auto txn = store->BeginRead();
    auto account = GetAccount(*txn, "bob");
    ASSERT_TRUE(account.ok());
    EXPECT_EQ(account->email, "bob@example.com");
    EXPECT_EQ(account->host_limit, 3u);
    EXPECT_TRUE(VerifyPassword("hunter2 with spaces", account->password_hash));
    serial_before = Serial(*txn, "dyn.example");
  }

  for (const char* host : {"home.dyn.example", "Office.dyn.example."}) {
    Outcome host_added = Run({"host", "add", host, "--account", "bob"});
    ASSERT_EQ(host_added.exit_code, 0) << host_added.err;
  }
  Outcome shown = Run({"account", "show", "bob"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("name: bob\n"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("email: bob@example.com\n"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("state: active\n"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("hosts: 2\n"), std::string::npos) << shown.out;

  std::string csv_path = dir_.File("spdyn_update_token.csv");
  Outcome created = Run({"token", "create-missing", "--account", "bob", "--csv", csv_path});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(created.err.find("created 2 token(s) for account bob"), std::string::npos)
      << created.err;
  EXPECT_TRUE(created.out.empty()) << created.out;
  std::string csv = ReadFile(csv_path);
  struct stat info {};
  ASSERT_EQ(stat(csv_path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_EQ(csv.rfind("hostname,token\r\n", 0), 0u) << csv;
  std::vector<std::string> rows = Lines(csv);
  ASSERT_EQ(rows.size(), 3u) << csv;
  {
    auto store = OpenStore();
    auto txn = store->BeginRead();
    for (size_t i = 1; i < rows.size(); ++i) {
      std::string row = rows[i];
      ASSERT_FALSE(row.empty());
      ASSERT_EQ(row.back(), '\r');
      row.pop_back();
      size_t comma = row.find(',');
      ASSERT_NE(comma, std::string::npos);
      std::string host_name = row.substr(0, comma), token = row.substr(comma + 1);
      EXPECT_EQ(token.size(), kTokenLength);
      auto host = GetHost(*txn, host_name);
      ASSERT_TRUE(host.ok()) << host_name;
      EXPECT_TRUE(TokenMatches(token, host->token_digest)) << host_name;
    }
    EXPECT_EQ(rows[1].substr(0, rows[1].find(',')), "home.dyn.example");
    EXPECT_EQ(rows[2].substr(0, rows[2].find(',')), "office.dyn.example");
    // Adding hosts changes no DNS data: their names appear with their first
    // address.
    EXPECT_EQ(Serial(*txn, "dyn.example"), serial_before);
  }
  // The file is never replaced: it may hold the only copy of tokens.
  Outcome again = Run({"token", "create-missing", "--account", "bob", "--csv", csv_path});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(ReadFile(csv_path), csv);

  Outcome listed = Run({"host", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::vector<std::string> lines = Lines(listed.out);
  ASSERT_EQ(lines.size(), 3u) << listed.out;
  EXPECT_EQ(lines[0], "HOST\tACCOUNT\tSTATE\tA\tAAAA\tTOKEN\tTOKEN_USED\tLAST_UPDATE");
  EXPECT_EQ(lines[1], "home.dyn.example\tbob\tactive\t-\t-\tyes\tno\t-");
  EXPECT_EQ(lines[2], "office.dyn.example\tbob\tactive\t-\t-\tyes\tno\t-");

  Outcome disabled = Run({"host", "disable", "office.dyn.example"});
  ASSERT_EQ(disabled.exit_code, 0) << disabled.err;
  Outcome by_account = Run({"host", "list", "--account", "bob"});
  ASSERT_EQ(by_account.exit_code, 0) << by_account.err;
  EXPECT_NE(by_account.out.find("office.dyn.example\tbob\tdisabled\t"), std::string::npos)
      << by_account.out;

  // A single token, printed once on stdout.
  Outcome token = Run({"token", "create", "home.dyn.example"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  ASSERT_EQ(token.out.size(), kTokenLength + 1) << token.out;
  {
    auto store = OpenStore();
    auto txn = store->BeginRead();
    EXPECT_TRUE(TokenMatches(token.out.substr(0, kTokenLength),
                             GetHost(*txn, "home.dyn.example")->token_digest));
  }
  Outcome revoked = Run({"token", "revoke", "home.dyn.example"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  Outcome revoked_again = Run({"token", "revoke", "home.dyn.example"});
  EXPECT_EQ(revoked_again.exit_code, 1);
  EXPECT_NE(revoked_again.err.find("host 'home.dyn.example' has no update token"),
            std::string::npos)
      << revoked_again.err;

  Outcome listed_accounts = Run({"account", "list"});
  ASSERT_EQ(listed_accounts.exit_code, 0) << listed_accounts.err;
  EXPECT_NE(listed_accounts.out.find("bob\tactive\t2\t3\tbob@example.com\t"), std::string::npos)
      << listed_accounts.out;

  Outcome deleted = Run({"account", "delete", "bob"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_NE(deleted.out.find("account bob deleted with 2 host(s)"), std::string::npos)
      << deleted.out;
  EXPECT_EQ(Lines(Run({"host", "list"}).out).size(), 1u);  // the header only
}

TEST_F(UpdnsctlTest, ErrorsNameTheHostOrAccount) {
  ASSERT_EQ(Run({"account", "add", "bob", "--email", "bob@example.com"}, "pw\n").exit_code, 0);
  ASSERT_EQ(Run({"host", "add", "home.dyn.example", "--account", "bob"}).exit_code, 0);

  Outcome duplicate = Run({"host", "add", "home.dyn.example", "--account", "bob"});
  EXPECT_EQ(duplicate.exit_code, 1);
  EXPECT_NE(duplicate.err.find("host 'home.dyn.example' already exists"), std::string::npos)
      << duplicate.err;

  Outcome outside = Run({"host", "add", "home.example.org", "--account", "bob"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.err.find("host 'home.example.org' is not inside any configured zone"),
            std::string::npos)
      << outside.err;

  Outcome static_name = Run({"host", "add", "static.dyn.example", "--account", "bob"});
  EXPECT_EQ(static_name.exit_code, 1);
  EXPECT_NE(static_name.err.find("host 'static.dyn.example'"), std::string::npos)
      << static_name.err;

  Outcome no_account = Run({"host", "add", "x.dyn.example", "--account", "carol"});
  EXPECT_EQ(no_account.exit_code, 1);
  EXPECT_NE(no_account.err.find("account 'carol' does not exist"), std::string::npos)
      << no_account.err;

  Outcome no_host = Run({"host", "delete", "nothere.dyn.example"});
  EXPECT_EQ(no_host.exit_code, 1);
  EXPECT_NE(no_host.err.find("host 'nothere.dyn.example' does not exist"), std::string::npos)
      << no_host.err;

  Outcome taken = Run({"account", "add", "BOB", "--email", "b@example.com"}, "pw\n");
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_NE(taken.err.find("account 'bob' already exists"), std::string::npos) << taken.err;

  Outcome no_password = Run({"account", "add", "carol", "--email", "c@example.com"}, "");
  EXPECT_EQ(no_password.exit_code, 1);
  EXPECT_NE(no_password.err.find("password"), std::string::npos) << no_password.err;
  Outcome empty_line = Run({"account", "add", "carol", "--email", "c@example.com"}, "\n");
  EXPECT_EQ(empty_line.exit_code, 1);

  // Usage errors: exit 2.
  EXPECT_EQ(Run({"host", "add", "x.dyn.example"}).exit_code, 2);
  EXPECT_EQ(Run({"account", "add", "carol"}, "pw\n").exit_code, 2);
  EXPECT_EQ(
      Run({"account", "add", "carol", "--email", "c@example.com", "--host-limit", "lots"}, "pw\n")
          .exit_code,
      2);
  EXPECT_EQ(Run({"token", "create-missing"}).exit_code, 2);
  EXPECT_EQ(Run({"token", "create", "a.dyn.example", "b.dyn.example"}).exit_code, 2);
  EXPECT_EQ(Run({"host", "list", "--bogus", "1"}).exit_code, 2);
  EXPECT_EQ(Run({"account", "frobnicate", "bob"}).exit_code, 2);

  // The failures changed nothing.
  Outcome listed = Run({"host", "list"});
  EXPECT_EQ(Lines(listed.out).size(), 2u) << listed.out;
  Outcome accounts = Run({"account", "list"});
  EXPECT_EQ(Lines(accounts.out).size(), 2u) << accounts.out;
}

TEST_F(UpdnsctlTest, CsvToStdout) {
  ASSERT_EQ(
      Run({"account", "add", "bob", "--email", "bob@example.com", "--host-limit", "5"}, "pw\n")
          .exit_code,
      0);
  ASSERT_EQ(Run({"host", "add", "a.dyn.example", "--account", "bob"}).exit_code, 0);
  Outcome created = Run({"token", "create-missing", "--account", "bob"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::vector<std::string> rows = Lines(created.out);
  ASSERT_EQ(rows.size(), 2u) << created.out;
  EXPECT_EQ(rows[0], "hostname,token\r");
  EXPECT_EQ(rows[1].rfind("a.dyn.example,", 0), 0u);
  EXPECT_NE(created.err.find("created 1 token(s)"), std::string::npos);
  Outcome none = Run({"token", "create-missing", "--account", "bob"});
  ASSERT_EQ(none.exit_code, 0);
  EXPECT_EQ(none.out, "hostname,token\r\n");
  EXPECT_NE(none.err.find("created 0 token(s)"), std::string::npos);
}

}  // namespace
}  // namespace updns::update
