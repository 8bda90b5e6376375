// The account holders' JSON API under /api/v1 on the HTTP listener: login
// sessions, hosts and their update tokens, the reseller link, password
// reset and host moves. Requests and answers are JSON (nlohmann-json);
// every error answer is
//   {"error": {"code": "machine_code", "message": "a sentence", ...}}
// with a fitting status (400 bad JSON or token, 401 no/bad session or
// credentials, 403 refused, 404, 405, 409 conflict, 413, 422 missing or
// wrong-typed field, naming it in "field", 429 too many attempts or busy).
//
// Endpoints (Bearer = needs "Authorization: Bearer TOKEN" of a session):
//   POST   /api/v1/login                    {"name","password"} -> {"token","expires_at"}
//   POST   /api/v1/login/reseller           {"name","password"} -> {"token","expires_at","account"}
//   POST   /api/v1/logout                   Bearer -> 204
//   GET    /api/v1/account                  Bearer
//   GET    /api/v1/hosts                    Bearer -> {"hosts": [...]}
//   POST   /api/v1/hosts                    Bearer {"hostname"} -> 201 host
//   DELETE /api/v1/hosts/{fqdn}             Bearer -> 204
//   POST   /api/v1/hosts/{fqdn}/token       Bearer -> {"hostname","token"}
//   POST   /api/v1/hosts/{fqdn}/move-token  Bearer -> {"hostname","token","expires_at"}
//   POST   /api/v1/hosts/move               Bearer {"token"} -> {"hostname"}
//   POST   /api/v1/tokens/missing           Bearer -> text/csv attachment
//   POST   /api/v1/link                     Bearer {"reseller","password"} -> {"linked"}
//   DELETE /api/v1/link                     Bearer -> {"unlinked","reset_mail_to"}
//   POST   /api/v1/password/reset           {"token","password"} -> {"name"}
//
// Threads: Handle() runs on the HTTP loop and only does cheap work there
// (JSON parsing, SHA-256 of a session token, read transactions). Password
// checks (scrypt) run on the service's own small thread pool; every change
// goes to the writer as one request, so it is durable before the answer,
// which is sent from the writer thread after the commit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/dyndns_service.h"
#include "server/http_server.h"
#include "server/throttle.h"
#include "storage/store.h"
#include "update/accounts.h"
#include "update/writer.h"

namespace updns::server {

struct ApiServiceOptions {
  std::vector<update::HostZone> zones;  // where API-added hosts may go
  uint64_t session_ttl = 12 * 3600;     // seconds a login session lasts
  uint64_t reset_ttl = 24 * 3600;       // seconds a password-reset link stays valid
  uint64_t move_ttl = 24 * 3600;        // seconds a host move token stays valid
  std::string reset_url;                // the reset mail's link is reset_url + token
  std::string mail_from_name = "updns";
  // Bodies above this are answered 413 in JSON (the HTTP server's own limit
  // still applies first, with its plain-text 413).
  size_t max_body_bytes = 16384;
  unsigned password_threads = 2;
  // Password checks waiting for a thread; more are answered 429 at once.
  size_t max_pending_password_checks = 64;
  // Failed logins (account, reseller, and the reseller password of a link)
  // are throttled per name and client address and per client address
  // (server/throttle.h): over the limit, 429 with Retry-After. Shared with
  // dyndns2 so that both count against one budget; null = one of the
  // service's own with the default ThrottleOptions.
  std::shared_ptr<LoginThrottle> throttle;
  // Called (on the writer thread) after a commit that queued mail, e.g. to
  // wake the mailer. May be empty.
  std::function<void()> on_mail_queued;
};

class ApiService {
 public:
  // The store and the writer must outlive the service. Destroying the
  // service waits for password checks in progress.
  ApiService(const storage::Store& store, update::Writer& writer, ApiServiceOptions options);
  ~ApiService();
  ApiService(const ApiService&) = delete;
  ApiService& operator=(const ApiService&) = delete;

  // True for the paths this service answers ("/api/v1" and below).
  static bool Handles(std::string_view path);

  // Answers one request under /api/v1. Runs on the HTTP loop.
  void Handle(const HttpRequest& request, HttpReply reply);
  // A reload's zones, TTLs and URLs for the requests that start from now
  // on. The throttle, password_threads and on_mail_queued stay as
  // constructed. Thread-safe.
  void Reconfigure(ApiServiceOptions options);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace updns::server
