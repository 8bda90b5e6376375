// The JSON API (/api/v1) end to end: the real updnsd on free loopback ports,
// accounts and resellers made with the real updnsctl, requests as raw
// HTTP/1.1 on our own sockets, dyndns2 updates with the host tokens the API
// handed out, and the outbox read from the store itself (the reset token
// is only in the mail's body).
//
// Covered: login, hosts, tokens CSV, link refused then accepted, reseller
// login, unlink with its reset mail, password reset; the 1:1 link rule
// under concurrency; host moves; session expiry; logout; and the error
// answers (400, 401, 403, 404, 405, 409, 413, 422, 429).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "storage/store.h"
#include "tests/server/api_client.h"
#include "update/outbox.h"

namespace updns::test {
namespace {

using json = nlohmann::json;

struct ApiDaemonOptions {
  unsigned session_ttl = 3600;  // seconds
  unsigned move_ttl = 3600;     // seconds
};

// updnsd serving dyn.example, with HTTP, the API lifetimes of `options` and
// mail.reset_url set (no SMTP relay: queued mail stays in the outbox).
class ApiDaemon : public HttpUpdnsd {
 public:
  bool Start(const ApiDaemonOptions& options, std::string* error) {
    return StartFresh([&] { return ConfigText(options); },
                      [&](std::string* e) { return LaunchUntilHttp(e); }, error);
  }

  std::string ConfigText(const ApiDaemonOptions& o) const {
    std::string text = ListenersAndStorageConfig() + ZonesConfig(30);
    text += "mail:\n  reset_url: \"" + std::string(kResetUrl) + "\"\n";
    text += "api:\n  session_ttl: " + std::to_string(o.session_ttl) + "\n";
    text += "  move_ttl: " + std::to_string(o.move_ttl) + "\n";
    return text;
  }

  bool Stop() { return process_.Stop(SIGTERM, milliseconds(5000)); }
};

class ApiTest : public ::testing::Test, protected ApiClient {
 protected:
  const HttpUpdnsd& api_daemon() const override { return daemon_; }

  virtual ApiDaemonOptions Options() const { return {}; }

  void SetUp() override {
    std::string error;
    ASSERT_TRUE(daemon_.Start(Options(), &error)) << error;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "updnsd log:\n" << daemon_.log();
    EXPECT_TRUE(daemon_.process().Running()) << "updnsd died during the test";
    EXPECT_TRUE(daemon_.Stop()) << "updnsd did not stop on SIGTERM";
  }

  // --- HTTP ---

  void AddHostViaApi(const std::string& token, const std::string& host) {
    Reply r = Call("POST", "/api/v1/hosts", json{{"hostname", host}}, token);
    ASSERT_EQ(r.status(), 201) << "add " << host << ": " << r.Describe();
    // Stored and answered lowercase, without a final dot.
    std::string stored = Lower(host);
    if (!stored.empty() && stored.back() == '.') stored.pop_back();
    EXPECT_EQ(r.body.value("hostname", ""), stored);
    EXPECT_EQ(r.http.Header("location").value_or(""), "/api/v1/hosts/" + stored);
  }

  std::string NewHostToken(const std::string& session, const std::string& host) {
    Reply r = Call("POST", "/api/v1/hosts/" + host + "/token", session);
    EXPECT_EQ(r.status(), 200) << r.Describe();
    EXPECT_EQ(r.body.value("hostname", ""), host);
    return r.body.value("token", "");
  }

  // A dyndns2 update authenticated with `user` and `password` (Basic).
  HttpResult Update(const std::string& host, const std::string& ip, const std::string& user,
                    const std::string& password) {
    HttpConnection connection;
    if (!connection.Connect(daemon_.http_port())) return {};
    return connection.Exchange(UpdateRequest("/nic/update?hostname=" + host + "&myip=" + ip,
                                             BasicAuth(user, password), false));
  }

  // Makes sure `host` has a token that has been used once.
  void UseToken(const std::string& host, const std::string& token, const std::string& ip) {
    HttpResult r = Update(host, ip, host, token);
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_EQ(r.body, "good " + ip + "\n") << host;
  }

  // An account with one host whose token has been used: ready to link.
  // Returns its session token.
  std::string LinkableAccount(const std::string& name, const std::string& host) {
    AddAccount(name, name + "-password");
    std::string session = Login(name, name + "-password");
    AddHostViaApi(session, host);
    std::string token = NewHostToken(session, host);
    UseToken(host, token, "192.0.2.77");
    return session;
  }

  // The outbox as the store has it, read directly (read-only) while the
  // daemon runs: `updnsctl outbox list` does not show bodies.
  std::vector<storage::MailRecord> Outbox() {
    std::vector<storage::MailRecord> mails;
    storage::Options options;
    options.path = daemon_.db_path().string();
    options.map_size = uint64_t{64} << 20;
    options.read_only = true;
    auto store = storage::Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return mails;
    auto txn = (*store)->BeginRead();
    EXPECT_TRUE(txn.ok()) << txn.status().message();
    if (!txn.ok()) return mails;
    auto listed = update::ListMail(*txn);
    EXPECT_TRUE(listed.ok()) << listed.status().message();
    if (!listed.ok()) return mails;
    for (auto& [id, mail] : *listed) mails.push_back(std::move(mail));
    return mails;
  }

  ApiDaemon daemon_;
};

// The whole flow of the issue, in order.
TEST_F(ApiTest, AccountHostsTokensLinkUnlinkAndPasswordReset) {
  const std::string home = "home.dyn.example", office = "office.dyn.example";
  ASSERT_NO_FATAL_FAILURE(AddAccount("alice", "alice old password"));
  ASSERT_NO_FATAL_FAILURE(AddReseller("shop", "shop password"));

  std::string session = Login("alice", "alice old password");
  ASSERT_FALSE(session.empty());
  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(session, home));
  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(session, office));

  Reply hosts = Call("GET", "/api/v1/hosts", session);
  ASSERT_EQ(hosts.status(), 200) << hosts.Describe();
  ASSERT_EQ(hosts.body["hosts"].size(), 2u) << hosts.Describe();
  for (const json& host : hosts.body["hosts"]) {
    EXPECT_FALSE(host["has_token"].get<bool>());
    EXPECT_TRUE(host["ipv4"].is_null());
    EXPECT_TRUE(host["last_update"].is_null());
  }

  // No tokens yet: the link is refused, naming both hosts.
  json link = {{"reseller", "shop"}, {"password", "shop password"}};
  Reply refused = Call("POST", "/api/v1/link", link, session);
  EXPECT_EQ(refused.status(), 409) << refused.Describe();
  EXPECT_EQ(refused.code(), "hosts_without_token");
  EXPECT_EQ(refused.body["error"]["hosts_without_token"], json({home, office}));

  // Tokens for every host, as the CSV download.
  Reply csv = Call("POST", "/api/v1/tokens/missing", session);
  ASSERT_EQ(csv.status(), 200) << csv.Describe();
  EXPECT_EQ(csv.http.Header("content-type").value_or("").rfind("text/csv", 0), 0u)
      << csv.Describe();
  EXPECT_EQ(csv.http.Header("content-disposition").value_or(""),
            "attachment; filename=\"spdyn_update_token.csv\"");
  std::vector<std::string> lines = csv.http.Lines();
  ASSERT_EQ(lines.size(), 3u) << csv.http.body;
  EXPECT_EQ(lines[0], "hostname,token");
  std::map<std::string, std::string> tokens;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t comma = lines[i].find(',');
    ASSERT_NE(comma, std::string::npos) << lines[i];
    tokens[lines[i].substr(0, comma)] = lines[i].substr(comma + 1);
  }
  ASSERT_EQ(tokens.size(), 2u);
  ASSERT_TRUE(tokens.count(home) && tokens.count(office)) << csv.http.body;
  // A second call finds nothing missing: the header alone.
  Reply again = Call("POST", "/api/v1/tokens/missing", session);
  EXPECT_EQ(again.http.Lines(), std::vector<std::string>{"hostname,token"});

  // Tokens exist but were never used: refused again, with both named.
  refused = Call("POST", "/api/v1/link", link, session);
  EXPECT_EQ(refused.status(), 409) << refused.Describe();
  EXPECT_EQ(refused.code(), "tokens_unused");
  EXPECT_EQ(refused.body["error"]["tokens_unused"], json({home, office}));
  EXPECT_EQ(refused.body["error"]["hosts_without_token"], json::array());

  // Each token used once by a dyndns2 client.
  ASSERT_NO_FATAL_FAILURE(UseToken(home, tokens[home], "192.0.2.10"));
  ASSERT_NO_FATAL_FAILURE(UseToken(office, tokens[office], "192.0.2.11"));
  hosts = Call("GET", "/api/v1/hosts", session);
  ASSERT_EQ(hosts.body["hosts"].size(), 2u) << hosts.Describe();
  const json& first = hosts.body["hosts"][0];
  EXPECT_EQ(first["hostname"], home);
  EXPECT_EQ(first["ipv4"], "192.0.2.10");
  EXPECT_TRUE(first["ipv6"].is_null());
  EXPECT_TRUE(first["has_token"].get<bool>());
  EXPECT_TRUE(first["token_used"].get<bool>());
  EXPECT_EQ(first["last_update_ip"], "127.0.0.1");
  ASSERT_TRUE(first["last_update"].is_string());
  EXPECT_EQ(first["last_update"].get<std::string>().size(), 20u) << first["last_update"];

  // Wrong reseller password: refused before any rule is looked at.
  Reply wrong =
      Call("POST", "/api/v1/link", json{{"reseller", "shop"}, {"password", "nope"}}, session);
  EXPECT_EQ(wrong.status(), 403) << wrong.Describe();
  EXPECT_EQ(wrong.code(), "invalid_reseller_credentials");

  Reply linked = Call("POST", "/api/v1/link", link, session);
  ASSERT_EQ(linked.status(), 200) << linked.Describe();
  EXPECT_EQ(linked.body["linked"], "shop");

  // The password session ended with the link; the password no longer logs
  // in, neither over the API nor for dyndns2.
  EXPECT_EQ(Call("GET", "/api/v1/account", session).status(), 401);
  Reply old_login =
      Call("POST", "/api/v1/login", json{{"name", "alice"}, {"password", "alice old password"}});
  EXPECT_EQ(old_login.status(), 403) << old_login.Describe();
  EXPECT_EQ(old_login.code(), "login_via_reseller");
  EXPECT_NE(old_login.body["error"]["message"].get<std::string>().find("reseller"),
            std::string::npos);
  EXPECT_EQ(Update(home, "192.0.2.12", "alice", "alice old password").status, 401);

  // The reseller's credentials log in to the account.
  std::string reseller_session = Login("shop", "shop password", "/api/v1/login/reseller");
  ASSERT_FALSE(reseller_session.empty());
  Reply account = Call("GET", "/api/v1/account", reseller_session);
  ASSERT_EQ(account.status(), 200) << account.Describe();
  EXPECT_EQ(account.body["name"], "alice");
  EXPECT_EQ(account.body["email"], "alice@example.org");
  EXPECT_EQ(account.body["state"], "active");
  EXPECT_EQ(account.body["host_count"], 2);
  EXPECT_EQ(account.body["linked_reseller"], "shop");
  EXPECT_EQ(account.body["login"], "reseller");

  // Unlink: the reseller session ends, one reset mail is queued.
  Reply unlinked = Call("DELETE", "/api/v1/link", reseller_session);
  ASSERT_EQ(unlinked.status(), 200) << unlinked.Describe();
  EXPECT_EQ(unlinked.body["unlinked"], "shop");
  EXPECT_EQ(Call("GET", "/api/v1/account", reseller_session).status(), 401);
  Reply not_linked =
      Call("POST", "/api/v1/login/reseller", json{{"name", "shop"}, {"password", "shop password"}});
  EXPECT_EQ(not_linked.status(), 403);
  EXPECT_EQ(not_linked.code(), "not_linked");

  CommandResult outbox = daemon_.Ctl({"outbox", "list"});
  ASSERT_EQ(outbox.exit_code, 0) << outbox.Describe();
  std::vector<std::string> outbox_lines;
  std::stringstream outbox_in(outbox.out);
  for (std::string line; std::getline(outbox_in, line);) {
    if (!line.empty()) outbox_lines.push_back(line);
  }
  ASSERT_EQ(outbox_lines.size(), 2u) << "header and one mail:\n" << outbox.out;
  EXPECT_NE(outbox_lines[1].find("alice@example.org"), std::string::npos) << outbox.out;

  std::vector<storage::MailRecord> mails = Outbox();
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].to, "alice@example.org");
  std::string reset_token = ResetToken(mails[0].body);
  ASSERT_FALSE(reset_token.empty()) << mails[0].body;

  // Until the reset, the old password stays dead.
  EXPECT_EQ(
      Call("POST", "/api/v1/login", json{{"name", "alice"}, {"password", "alice old password"}})
          .status(),
      401);
  Reply reset = Call("POST", "/api/v1/password/reset",
                     json{{"token", reset_token}, {"password", "alice new password"}});
  ASSERT_EQ(reset.status(), 200) << reset.Describe();
  EXPECT_EQ(reset.body["name"], "alice");
  std::string fresh = Login("alice", "alice new password");
  ASSERT_FALSE(fresh.empty());
  account = Call("GET", "/api/v1/account", fresh);
  EXPECT_EQ(account.status(), 200);
  EXPECT_TRUE(account.body["linked_reseller"].is_null()) << account.Describe();
  EXPECT_EQ(account.body["login"], "password");
  EXPECT_EQ(
      Call("POST", "/api/v1/login", json{{"name", "alice"}, {"password", "alice old password"}})
          .status(),
      401);

  // The reset token worked once.
  Reply second = Call("POST", "/api/v1/password/reset",
                      json{{"token", reset_token}, {"password", "another password"}});
  EXPECT_EQ(second.status(), 400) << second.Describe();
  EXPECT_EQ(second.code(), "invalid_token");
  EXPECT_EQ(Call("POST", "/api/v1/password/reset",
                 json{{"token", "abcdefghijklmnopqrstuvwxyz234567"}, {"password", "x"}})
                .status(),
            400);

  // Unlinking an unlinked account is a conflict.
  Reply twice = Call("DELETE", "/api/v1/link", fresh);
  EXPECT_EQ(twice.status(), 409) << twice.Describe();
  EXPECT_EQ(twice.code(), "not_linked");
}

// Two accounts try to link the same reseller at the same moment, several
// times over: exactly one wins each time, the other is told why.
TEST_F(ApiTest, ConcurrentLinksToOneResellerExactlyOneWins) {
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::string r = std::to_string(round);
    ASSERT_NO_FATAL_FAILURE(AddReseller("shop" + r, "shop password"));
    std::string a = LinkableAccount("a" + r, "a" + r + ".dyn.example");
    std::string b = LinkableAccount("b" + r, "b" + r + ".dyn.example");
    ASSERT_FALSE(a.empty() || b.empty());

    json link = {{"reseller", "shop" + r}, {"password", "shop password"}};
    std::atomic<bool> go{false};
    Reply ra, rb;
    std::thread ta([&] {
      while (!go) std::this_thread::yield();
      ra = Call("POST", "/api/v1/link", link, a);
    });
    std::thread tb([&] {
      while (!go) std::this_thread::yield();
      rb = Call("POST", "/api/v1/link", link, b);
    });
    go = true;
    ta.join();
    tb.join();
    std::multiset<int> statuses = {ra.status(), rb.status()};
    EXPECT_EQ(statuses, (std::multiset<int>{200, 409})) << "round " << round << "\n"
                                                        << ra.Describe() << "\n"
                                                        << rb.Describe();
    const Reply& loser = ra.status() == 409 ? ra : rb;
    EXPECT_EQ(loser.code(), "reseller_linked") << loser.Describe();

    // The store agrees: the reseller is linked to the winner only.
    std::string winner = ra.status() == 200 ? "a" + r : "b" + r;
    CommandResult list = daemon_.Ctl({"reseller", "list"});
    EXPECT_NE(list.out.find(winner), std::string::npos) << list.Describe();
    std::string reseller_session = Login("shop" + r, "shop password", "/api/v1/login/reseller");
    EXPECT_EQ(Call("GET", "/api/v1/account", reseller_session).body.value("name", ""), winner);
  }
}

TEST_F(ApiTest, HostsAddDeleteAndTokenRenewal) {
  ASSERT_NO_FATAL_FAILURE(AddAccount("carol", "carol password", {"--host-limit", "2"}));
  ASSERT_NO_FATAL_FAILURE(AddAccount("dave", "dave password"));
  std::string carol = Login("carol", "carol password");
  std::string dave = Login("dave", "dave password");

  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(carol, "Mixed.Dyn.Example."));
  Reply exists = Call("POST", "/api/v1/hosts", json{{"hostname", "mixed.dyn.example"}}, dave);
  EXPECT_EQ(exists.status(), 409) << exists.Describe();
  EXPECT_EQ(exists.code(), "host_exists");
  Reply outside = Call("POST", "/api/v1/hosts", json{{"hostname", "host.other.example"}}, carol);
  EXPECT_EQ(outside.status(), 422) << outside.Describe();
  EXPECT_EQ(outside.code(), "invalid_hostname");
  Reply apex = Call("POST", "/api/v1/hosts", json{{"hostname", "dyn.example"}}, carol);
  EXPECT_EQ(apex.status(), 422) << apex.Describe();
  Reply bad = Call("POST", "/api/v1/hosts", json{{"hostname", "no spaces.dyn.example"}}, carol);
  EXPECT_EQ(bad.status(), 422) << bad.Describe();
  Reply taken_by_zone = Call("POST", "/api/v1/hosts", json{{"hostname", "ns1.dyn.example"}}, carol);
  EXPECT_EQ(taken_by_zone.status(), 409) << taken_by_zone.Describe();
  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(carol, "second.dyn.example"));
  Reply limit = Call("POST", "/api/v1/hosts", json{{"hostname", "third.dyn.example"}}, carol);
  EXPECT_EQ(limit.status(), 403) << limit.Describe();
  EXPECT_EQ(limit.code(), "host_limit_reached");

  // A new token replaces the old one.
  std::string first = NewHostToken(carol, "mixed.dyn.example");
  ASSERT_NO_FATAL_FAILURE(UseToken("mixed.dyn.example", first, "192.0.2.20"));
  std::string second = NewHostToken(carol, "mixed.dyn.example");
  EXPECT_NE(first, second);
  EXPECT_EQ(Update("mixed.dyn.example", "192.0.2.21", "mixed.dyn.example", first).status, 401);
  ASSERT_NO_FATAL_FAILURE(UseToken("mixed.dyn.example", second, "192.0.2.21"));
  Reply listed = Call("GET", "/api/v1/hosts", carol);
  EXPECT_EQ(listed.body["hosts"][0]["ipv4"], "192.0.2.21") << listed.Describe();

  // Someone else's host is not found, whatever is asked of it.
  EXPECT_EQ(Call("DELETE", "/api/v1/hosts/mixed.dyn.example", dave).status(), 404);
  EXPECT_EQ(Call("POST", "/api/v1/hosts/mixed.dyn.example/token", dave).status(), 404);
  EXPECT_EQ(Call("POST", "/api/v1/hosts/mixed.dyn.example/move-token", dave).status(), 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/hosts/nothere.dyn.example", carol).status(), 404);

  Reply deleted = Call("DELETE", "/api/v1/hosts/mixed.dyn.example", carol);
  EXPECT_EQ(deleted.status(), 204) << deleted.Describe();
  EXPECT_EQ(Call("DELETE", "/api/v1/hosts/mixed.dyn.example", carol).status(), 404);
  Reply account = Call("GET", "/api/v1/account", carol);
  EXPECT_EQ(account.body["host_count"], 1) << account.Describe();
  EXPECT_EQ(account.body["host_limit"], 2);
  // The freed slot takes a host again, and the name is free for dave.
  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(dave, "mixed.dyn.example"));
}

TEST_F(ApiTest, MoveTokenMovesAHostOnceKeepingItsUpdateToken) {
  ASSERT_NO_FATAL_FAILURE(AddAccount("erin", "erin password"));
  ASSERT_NO_FATAL_FAILURE(AddAccount("frank", "frank password"));
  std::string erin = Login("erin", "erin password");
  std::string frank = Login("frank", "frank password");
  const std::string host = "mover.dyn.example";
  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(erin, host));
  std::string update_token = NewHostToken(erin, host);
  ASSERT_NO_FATAL_FAILURE(UseToken(host, update_token, "192.0.2.30"));

  Reply issued = Call("POST", "/api/v1/hosts/" + host + "/move-token", erin);
  ASSERT_EQ(issued.status(), 200) << issued.Describe();
  std::string move_token = issued.body.value("token", "");
  ASSERT_FALSE(move_token.empty());

  // The owner cannot move it to itself.
  Reply self = Call("POST", "/api/v1/hosts/move", json{{"token", move_token}}, erin);
  EXPECT_EQ(self.status(), 409) << self.Describe();

  Reply moved = Call("POST", "/api/v1/hosts/move", json{{"token", move_token}}, frank);
  ASSERT_EQ(moved.status(), 200) << moved.Describe();
  EXPECT_EQ(moved.body["hostname"], host);
  EXPECT_EQ(Call("GET", "/api/v1/hosts", erin).body["hosts"], json::array());
  Reply franks = Call("GET", "/api/v1/hosts", frank);
  ASSERT_EQ(franks.body["hosts"].size(), 1u) << franks.Describe();
  EXPECT_EQ(franks.body["hosts"][0]["hostname"], host);
  EXPECT_TRUE(franks.body["hosts"][0]["token_used"].get<bool>());

  // Used once: refused the second time, by anyone.
  Reply reused = Call("POST", "/api/v1/hosts/move", json{{"token", move_token}}, erin);
  EXPECT_EQ(reused.status(), 400) << reused.Describe();
  EXPECT_EQ(reused.code(), "invalid_token");
  // The host's update token still works.
  HttpResult update = Update(host, "192.0.2.31", host, update_token);
  EXPECT_EQ(update.body, "good 192.0.2.31\n") << update.raw;
  // The old owner has no say any more.
  EXPECT_EQ(Call("POST", "/api/v1/hosts/" + host + "/move-token", erin).status(), 404);
}

TEST_F(ApiTest, ErrorAnswersAreJsonWithTheRightStatus) {
  ASSERT_NO_FATAL_FAILURE(AddAccount("gina", "gina password"));
  std::string gina = Login("gina", "gina password");

  auto expect_error = [](const Reply& r, int status, const std::string& code,
                         const std::string& what) {
    EXPECT_EQ(r.status(), status) << what << "\n" << r.Describe();
    EXPECT_EQ(r.code(), code) << what << "\n" << r.Describe();
    EXPECT_TRUE(r.body["error"]["message"].is_string()) << what;
    EXPECT_EQ(r.http.Header("content-type").value_or(""), "application/json") << what;
  };

  expect_error(Raw("POST", "/api/v1/login", std::string("{\"name\": \"gina\",")), 400,
               "invalid_json", "truncated JSON");
  expect_error(Raw("POST", "/api/v1/login", std::string("")), 400, "invalid_json", "empty body");
  expect_error(Raw("POST", "/api/v1/login", std::string(100, '[') + std::string(100, ']')), 400,
               "invalid_json", "deep nesting");
  expect_error(Raw("POST", "/api/v1/login", std::string("[1, 2]")), 422, "invalid_body",
               "an array");
  Reply missing = Call("POST", "/api/v1/login", json{{"name", "gina"}});
  expect_error(missing, 422, "missing_field", "no password");
  EXPECT_EQ(missing.body["error"]["field"], "password");
  Reply typed = Call("POST", "/api/v1/login", json{{"name", 7}, {"password", "x"}});
  expect_error(typed, 422, "invalid_field", "a number as name");
  EXPECT_EQ(typed.body["error"]["field"], "name");
  expect_error(Call("POST", "/api/v1/hosts", json{{"host", "x.dyn.example"}}, gina), 422,
               "missing_field", "hostname missing");
  expect_error(Call("POST", "/api/v1/link", json{{"reseller", "x"}}, gina), 422, "missing_field",
               "link without password");

  // Bodies above the API's limit (16 KiB) and the server's (64 KiB).
  std::string big = "{\"name\": \"" + std::string(20000, 'a') + "\", \"password\": \"x\"}";
  expect_error(Raw("POST", "/api/v1/login", big), 413, "body_too_large", "20 kB body");
  Reply huge = Raw("POST", "/api/v1/login", std::string(70000, ' '));
  EXPECT_EQ(huge.status(), 413) << huge.Describe();

  // Authentication.
  expect_error(Call("GET", "/api/v1/account"), 401, "missing_token", "no Authorization");
  EXPECT_EQ(Call("GET", "/api/v1/hosts").http.Header("www-authenticate").value_or(""),
            "Bearer realm=\"updns\"");
  expect_error(Raw("GET", "/api/v1/account", std::nullopt, "",
                   "Authorization: Basic " + Base64("gina:gina password") + "\r\n"),
               401, "invalid_token", "Basic instead of Bearer");
  expect_error(Call("GET", "/api/v1/account", std::string("abcdefghijklmnopqrstuvwxyz234567")), 401,
               "invalid_session", "unknown token");
  expect_error(Call("GET", "/api/v1/account", std::string("not a token")), 401, "invalid_session",
               "malformed token");
  expect_error(Call("POST", "/api/v1/login", json{{"name", "gina"}, {"password", "wrong"}}), 401,
               "invalid_credentials", "wrong password");
  expect_error(Call("POST", "/api/v1/login", json{{"name", "nobody"}, {"password", "x"}}), 401,
               "invalid_credentials", "unknown account");
  expect_error(Call("POST", "/api/v1/login/reseller", json{{"name", "nobody"}, {"password", "x"}}),
               401, "invalid_credentials", "unknown reseller");

  // Routing.
  expect_error(Call("GET", "/api/v1/nothing", gina), 404, "not_found", "unknown endpoint");
  expect_error(Call("GET", "/api/v1", gina), 404, "not_found", "the bare prefix");
  Reply method = Call("GET", "/api/v1/login");
  expect_error(method, 405, "method_not_allowed", "GET login");
  EXPECT_EQ(method.http.Header("allow").value_or(""), "POST");
  expect_error(Call("PUT", "/api/v1/hosts", gina), 405, "method_not_allowed", "PUT hosts");

  // A disabled account cannot log in, and its sessions stop working.
  ASSERT_EQ(daemon_.Ctl({"account", "disable", "gina"}).exit_code, 0);
  expect_error(Call("GET", "/api/v1/account", gina), 401, "invalid_session", "disabled account");
  expect_error(Call("POST", "/api/v1/login", json{{"name", "gina"}, {"password", "gina password"}}),
               403, "account_disabled", "disabled login");
  ASSERT_EQ(daemon_.Ctl({"account", "enable", "gina"}).exit_code, 0);

  // Logout ends the session.
  std::string again = Login("gina", "gina password");
  EXPECT_EQ(Call("GET", "/api/v1/account", again).status(), 200);
  EXPECT_EQ(Call("POST", "/api/v1/logout", again).status(), 204);
  expect_error(Call("GET", "/api/v1/account", again), 401, "invalid_session", "after logout");

  // Failed logins are throttled per name and address.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Call("POST", "/api/v1/login", json{{"name", "gina"}, {"password", "guess"}}).status(),
              401);
  }
  Reply throttled = Call("POST", "/api/v1/login", json{{"name", "gina"}, {"password", "guess"}});
  expect_error(throttled, 429, "too_many_attempts", "11th failure");
  EXPECT_TRUE(throttled.http.Header("retry-after").has_value());
  // Even the right password waits out the window.
  EXPECT_EQ(
      Call("POST", "/api/v1/login", json{{"name", "gina"}, {"password", "gina password"}}).status(),
      429);
}

class ApiShortLivedTest : public ApiTest {
 protected:
  ApiDaemonOptions Options() const override { return {.session_ttl = 1, .move_ttl = 1}; }
};

TEST_F(ApiShortLivedTest, ExpiredSessionsAndMoveTokensAreRefused) {
  ASSERT_NO_FATAL_FAILURE(AddAccount("hank", "hank password"));
  ASSERT_NO_FATAL_FAILURE(AddAccount("ivy", "ivy password"));
  std::string hank = Login("hank", "hank password");
  ASSERT_NO_FATAL_FAILURE(AddHostViaApi(hank, "short.dyn.example"));
  Reply issued = Call("POST", "/api/v1/hosts/short.dyn.example/move-token", hank);
  ASSERT_EQ(issued.status(), 200) << issued.Describe();
  EXPECT_EQ(Call("GET", "/api/v1/account", hank).status(), 200);

  std::this_thread::sleep_for(milliseconds(2500));
  Reply expired = Call("GET", "/api/v1/account", hank);
  EXPECT_EQ(expired.status(), 401) << expired.Describe();
  EXPECT_EQ(expired.code(), "session_expired");
  // The expired session is deleted lazily: soon it is simply unknown.
  std::string code;
  for (int i = 0; i < 100 && code != "invalid_session"; ++i) {
    code = Call("GET", "/api/v1/account", hank).code();
    if (code != "invalid_session") std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(code, "invalid_session");

  std::string ivy = Login("ivy", "ivy password");
  Reply late = Call("POST", "/api/v1/hosts/move", json{{"token", issued.body["token"]}}, ivy);
  EXPECT_EQ(late.status(), 400) << late.Describe();
  EXPECT_EQ(late.code(), "invalid_token");
}

}  // namespace
}  // namespace updns::test
