// A client of the JSON API (/api/v1) for the end-to-end tests: one request
// per connection as raw HTTP/1.1 (HttpConnection of dyndns_fixture.h), the
// answer parsed as JSON; and the reset token of a password-reset mail.
// Header-only.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/server/dyndns_fixture.h"

namespace updns::test {

// mail.reset_url of the daemons the API tests start.
inline constexpr const char* kResetUrl = "https://dyn.example/reset?token=";

// The reset token in a reset mail's body: what follows kResetUrl.
inline std::string ResetToken(const std::string& body) {
  size_t at = body.find(kResetUrl);
  if (at == std::string::npos) return "";
  at += std::string_view(kResetUrl).size();
  size_t end = at;
  while (end < body.size() && std::isalnum(static_cast<unsigned char>(body[end]))) ++end;
  return body.substr(at, end - at);
}

// An answer of the API: the HTTP result and its body as JSON (null when the
// body is not JSON).
struct Reply {
  HttpResult http;
  nlohmann::json body;
  int status() const { return http.status; }
  // error.code of an error answer, "" otherwise.
  std::string code() const {
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return "";
    return body["error"].value("code", "");
  }
  // For failure messages: what came back.
  std::string Describe() const {
    if (http.status != 0) return http.raw;
    return http.raw.empty() ? "<no answer>" : "<no answer>; received:\n" + http.raw;
  }
};

// The API calls of a test fixture, and its provisioning with updnsctl,
// against the daemon api_daemon(). Mixed into the fixture next to
// ::testing::Test.
class ApiClient {
 public:
  virtual ~ApiClient() = default;

 protected:
  virtual const HttpUpdnsd& api_daemon() const = 0;

  // --- Provisioning with updnsctl ---

  void AddAccount(const std::string& name, const std::string& password,
                  const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"account", "add", name, "--email", name + "@example.org"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = api_daemon().Ctl(args, password + "\n");
    ASSERT_EQ(r.exit_code, 0) << "account add " << name << ": " << r.Describe();
  }

  void AddReseller(const std::string& name, const std::string& password) {
    CommandResult r = api_daemon().Ctl(
        {"reseller", "add", name, "--email", name + "@shop.example"}, password + "\n");
    ASSERT_EQ(r.exit_code, 0) << "reseller add " << name << ": " << r.Describe();
  }

  // --- HTTP ---

  // One request on a new connection. `body` is sent as is (with a
  // Content-Length) when given.
  Reply Raw(const std::string& method, const std::string& path,
            const std::optional<std::string>& body, const std::string& token = "",
            const std::string& extra_headers = "") {
    std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    request += "Connection: close\r\n";
    if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
    request += extra_headers;
    if (body) {
      request += "Content-Type: application/json\r\n";
      request += "Content-Length: " + std::to_string(body->size()) + "\r\n\r\n" + *body;
    } else {
      request += method == "POST" ? "Content-Length: 0\r\n\r\n" : "\r\n";
    }
    Reply reply;
    HttpConnection connection;
    if (!connection.Connect(api_daemon().http_port())) return reply;
    reply.http = connection.Exchange(request);
    reply.body = nlohmann::json::parse(reply.http.body, nullptr, false);
    if (reply.body.is_discarded()) reply.body = nullptr;
    return reply;
  }

  Reply Call(const std::string& method, const std::string& path, const nlohmann::json& body,
             const std::string& token = "") {
    return Raw(method, path, body.dump(), token);
  }
  Reply Call(const std::string& method, const std::string& path, const std::string& token = "") {
    return Raw(method, path, std::nullopt, token);
  }

  // Logs in and returns the session token ("" after a failed expectation).
  std::string Login(const std::string& name, const std::string& password,
                    const std::string& path = "/api/v1/login") {
    Reply r = Call("POST", path, nlohmann::json{{"name", name}, {"password", password}});
    EXPECT_EQ(r.status(), 200) << "login " << name << " at " << path << ": " << r.Describe();
    if (r.status() != 200 || !r.body.is_object() || !r.body.contains("token")) return "";
    return r.body["token"].get<std::string>();
  }
};

}  // namespace updns::test
