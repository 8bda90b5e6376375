#include "server/api_service.h"

#include <arpa/inet.h>

#include <atomic>
#include <ctime>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

#include "common/log.h"
#include "server/api_request.h"
#include "update/credentials.h"
#include "update/links.h"
#include "update/sessions.h"

namespace updns::server {
namespace {

using json = api::Json;
using api::Body;
using api::Endpoint;
using api::Error;
using api::Field;
using api::IsoTime;
using api::JsonResponse;
using api::kPrefix;
using api::Lower;
using api::NoContent;
using api::ParseBody;
using api::Route;
using api::StringField;
using storage::AccountRecord;
using storage::HostRecord;

constexpr size_t kMaxNameField = 256;      // account and reseller names, before normalizing
constexpr size_t kMaxHostField = 300;      // host names, before normalizing
constexpr size_t kMaxTokenField = 128;     // session, reset and move tokens
constexpr uint64_t kPurgeInterval = 3600;  // seconds between sweeps of expired sessions
constexpr size_t kPurgeBatch = 10000;

uint64_t Now() { return static_cast<uint64_t>(std::time(nullptr)); }

// --- Answers -----------------------------------------------------------------

HttpResponse StoreError(const Status& status) {
  Log(LogLevel::kError, "api_store_failed", {{"error", status}});
  return Error(503, "store_error",
               "The change could not be stored; nothing was changed. Try again later.");
}

HttpResponse TooManyAttempts(uint64_t retry_after) {
  HttpResponse response = Error(429, "too_many_attempts",
                                "Too many failed logins from your address; wait " +
                                    std::to_string(retry_after) + " seconds before trying again.");
  response.headers.emplace_back("Retry-After", std::to_string(retry_after));
  return response;
}

HttpResponse InvalidCredentials() {
  return Error(401, "invalid_credentials", "The name or the password is wrong.");
}

HttpResponse SessionRefused() {
  return Error(401, "invalid_session",
               "The session is unknown, logged out or no longer valid; log in again.");
}

HttpResponse HostNotFound(std::string_view host) {
  return Error(404, "host_not_found",
               "Host '" + std::string(host) + "' does not exist or is not in your account.");
}

json AddressJson(const std::string& bytes) {
  char text[INET6_ADDRSTRLEN];
  int family = bytes.size() == 4 ? AF_INET : bytes.size() == 16 ? AF_INET6 : 0;
  if (family == 0 || inet_ntop(family, bytes.data(), text, sizeof text) == nullptr) return nullptr;
  return text;
}

json TimeJson(uint64_t seconds) { return seconds == 0 ? json(nullptr) : json(IsoTime(seconds)); }
json TextOrNull(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }
const char* StateText(storage::State state) {
  return state == storage::State::kActive ? "active" : "disabled";
}

json HostJson(const HostRecord& host) {
  return {{"hostname", host.name},
          {"zone", host.zone},
          {"state", StateText(host.state)},
          {"ipv4", AddressJson(host.ipv4)},
          {"ipv6", AddressJson(host.ipv6)},
          {"has_token", host.has_token()},
          {"token_used", host.has_token() && host.token_used},
          {"last_update", TimeJson(host.updated_at)},
          {"last_update_ip", TextOrNull(host.updated_from)},
          {"token_last_used", TimeJson(host.has_token() ? host.token_last_used_at : 0)},
          {"created_at", TimeJson(host.created_at)}};
}

// What a writer request decided: the answer, and whether its writes stay.
struct Answer {
  HttpResponse response;
  bool commit = true;
  bool mail_queued = false;
};

Answer Commit(HttpResponse response) { return {std::move(response), true, false}; }
Answer Refuse(HttpResponse response) { return {std::move(response), false, false}; }

// A refusal for an error of the update/ rules: NotFound 404, Exists 409,
// Invalid 409 with `code_for_invalid`, anything else the store's 503.
Answer MapStatus(const Status& status, std::string_view code_for_invalid) {
  if (status.IsNotFound()) return Refuse(Error(404, "not_found", status.message()));
  if (status.IsExists()) return Refuse(Error(409, "exists", status.message()));
  if (status.IsInvalid()) return Refuse(Error(409, code_for_invalid, status.message()));
  return Refuse(StoreError(status));
}

}  // namespace

// --- The service ---------------------------------------------------------------

struct ApiService::Impl {
  using ApplyFn = std::function<Answer(storage::WriteTxn&, update::WriteContext&)>;

  Impl(const storage::Store& store, update::Writer& writer, ApiServiceOptions service_options)
      : store(store),
        writer(writer),
        options_(std::make_shared<const ApiServiceOptions>(std::move(service_options))),
        throttle(options_->throttle ? options_->throttle : std::make_shared<LoginThrottle>()),
        pool(std::max(1u, options_->password_threads)) {}

  void Handle(const HttpRequest& request, HttpReply reply);

  // Endpoints. `token` is the session's bearer token (already checked once
  // on the loop; mutations check it again inside their transaction).
  void Login(const HttpRequest& request, HttpReply reply);
  void ResellerLogin(const HttpRequest& request, HttpReply reply);
  void Logout(const std::string& token, HttpReply reply);
  HttpResponse AccountInfo(const storage::Txn& txn, const update::SessionLookup& session);
  HttpResponse ListHosts(const storage::Txn& txn, const update::SessionLookup& session);
  void AddHost(const std::string& token, const json& body, HttpReply reply);
  void DeleteHost(const std::string& token, const std::string& host, HttpReply reply);
  void NewHostToken(const std::string& token, const std::string& host, HttpReply reply);
  void NewMoveToken(const std::string& token, const std::string& host, HttpReply reply);
  void MoveHost(const std::string& token, const json& body, HttpReply reply);
  void MissingTokens(const std::string& token, HttpReply reply);
  void Link(const HttpRequest& request, const std::string& token, const json& body,
            HttpReply reply);
  void Unlink(const std::string& token, HttpReply reply);
  void ResetPassword(const json& body, HttpReply reply);

  // Runs `apply` in the writer and answers after the commit.
  void Mutate(ApplyFn apply, HttpReply reply);
  // Same, for requests of a session: `apply` gets the session's account as
  // read in the write transaction, or the request is answered 401.
  void MutateAsSession(
      const std::string& token,
      std::function<Answer(storage::WriteTxn&, update::WriteContext&, const AccountRecord&)> apply,
      HttpReply reply);
  // Runs a password check on the pool, or answers 429 when too many wait;
  // then `attempt` (if any) is given back to the throttle.
  void RunPasswordCheck(HttpReply& reply, const LoginThrottle::Attempt* attempt,
                        std::function<void(HttpReply)> check);
  // The reseller `name` when `password` is its password, nullopt when not
  // (an unknown name costs the same hash check, so timing tells nothing);
  // an error when the store could not be read. Settles `attempt` with the
  // throttle: a success clears the failures, a store error is refunded
  // and a wrong password stays charged. For the password pool: no snapshot
  // is held during the deliberately slow hash.
  Result<std::optional<storage::ResellerRecord>> CheckResellerPassword(
      const std::string& name, const std::string& password,
      const LoginThrottle::Attempt& attempt) const;
  void DeleteDeadSession(const std::string& token);
  void MaybePurgeSessions(uint64_t now);

  const storage::Store& store;
  update::Writer& writer;
  // Shared with the requests in the writer's queue, which may outlive the
  // service (they never touch `this`). A reload replaces it whole; each
  // request works with the snapshot it took.
  std::shared_ptr<const ApiServiceOptions> Options() const {
    std::lock_guard lock(options_mutex);
    return options_;
  }
  mutable std::mutex options_mutex;
  std::shared_ptr<const ApiServiceOptions> options_;  // guarded by options_mutex
  const std::shared_ptr<LoginThrottle> throttle;
  std::atomic<size_t> pending_checks{0};
  std::atomic<uint64_t> last_purge{0};
  // Last: destroyed first, so queued checks finish while the rest is alive.
  TaskPool pool;
};

void ApiService::Impl::Mutate(ApplyFn apply, HttpReply reply) {
  auto answer = std::make_shared<std::optional<Answer>>();
  auto on_mail = Options()->on_mail_queued;
  writer.Submit(std::make_unique<update::CallbackRequest>(
      [answer, apply = std::move(apply)](storage::WriteTxn& txn,
                                         update::WriteContext& context) -> Status {
        try {
          *answer = apply(txn, context);
        } catch (const std::exception& e) {
          Log(LogLevel::kError, "api_request_failed", {{"error", e.what()}});
          *answer =
              Refuse(Error(500, "internal_error", "The request failed; nothing was changed."));
        }
        // A refusal must leave no trace: failing rolls back this request only.
        return (*answer)->commit ? Status::Ok() : Status::Invalid("refused");
      },
      [answer, on_mail, reply = std::move(reply)](const Status& status) {
        if (answer->has_value() && !(*answer)->commit) return reply(std::move((*answer)->response));
        if (!status.ok() || !answer->has_value()) return reply(StoreError(status));
        if ((*answer)->mail_queued && on_mail) on_mail();
        reply(std::move((*answer)->response));
      }));
}

void ApiService::Impl::MutateAsSession(
    const std::string& token,
    std::function<Answer(storage::WriteTxn&, update::WriteContext&, const AccountRecord&)> apply,
    HttpReply reply) {
  Mutate(
      [token, apply = std::move(apply)](storage::WriteTxn& txn, update::WriteContext& context) {
        update::SessionLookup session = update::FindSession(txn, token, context.now());
        if (session.state != update::SessionLookup::State::kValid) return Refuse(SessionRefused());
        return apply(txn, context, session.account);
      },
      std::move(reply));
}

void ApiService::Impl::RunPasswordCheck(HttpReply& reply, const LoginThrottle::Attempt* attempt,
                                        std::function<void(HttpReply)> check) {
  if (pending_checks.fetch_add(1) >= Options()->max_pending_password_checks) {
    pending_checks.fetch_sub(1);
    if (attempt) throttle->Refund(*attempt);
    HttpResponse response =
        Error(429, "busy", "Too many logins are being checked right now; try again in a moment.");
    response.headers.emplace_back("Retry-After", "1");
    return reply(std::move(response));
  }
  pool.Run([this, check = std::move(check), reply = std::move(reply)]() mutable {
    try {
      check(std::move(reply));
    } catch (const std::exception& e) {
      // `reply` may be gone; an unanswered request gets the server's 500.
      Log(LogLevel::kError, "api_password_check_failed", {{"error", e.what()}});
    } catch (...) {
      Log(LogLevel::kError, "api_password_check_failed", {{"error", "unknown exception"}});
    }
    pending_checks.fetch_sub(1);
  });
}

void ApiService::Impl::DeleteDeadSession(const std::string& token) {
  writer.Submit(std::make_unique<update::CallbackRequest>(
      [token](storage::WriteTxn& txn, update::WriteContext& context) {
        return update::DeleteSessionIfDead(txn, token, context.now());
      },
      [](const Status&) {}));
}

void ApiService::Impl::MaybePurgeSessions(uint64_t now) {
  uint64_t last = last_purge.load();
  if (now < last + kPurgeInterval || !last_purge.compare_exchange_strong(last, now)) return;
  writer.Submit(std::make_unique<update::CallbackRequest>(
      [](storage::WriteTxn& txn, update::WriteContext& context) -> Status {
        auto purged = update::PurgeExpiredSessions(txn, context.now(), kPurgeBatch);
        return purged.ok() ? Status::Ok() : purged.status();
      },
      [](const Status& status) {
        if (!status.ok()) {
          Log(LogLevel::kWarning, "api_session_purge_failed", {{"error", status}});
        }
      }));
}

void ApiService::Impl::Handle(const HttpRequest& request, HttpReply reply) {
  Route route = api::MatchRoute(request.path);
  if (route.endpoint == Endpoint::kNone) {
    return reply(Error(404, "not_found", "There is no such API endpoint."));
  }
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  if (!api::MethodAllowed(route, request.method)) {
    HttpResponse response =
        Error(405, "method_not_allowed",
              "This endpoint takes " + std::string(route.allow) + ", not " + request.method + ".");
    response.headers.emplace_back("Allow", route.allow);
    return reply(std::move(response));
  }
  if (const size_t limit = Options()->max_body_bytes; request.body.size() > limit) {
    return reply(Error(
        413, "body_too_large",
        "The request body is larger than " + std::to_string(limit) + " bytes."));
  }
  bool has_body = method == "POST" && route.endpoint != Endpoint::kLogout &&
                  route.endpoint != Endpoint::kHostToken &&
                  route.endpoint != Endpoint::kHostMoveToken &&
                  route.endpoint != Endpoint::kMissingTokens;

  // Endpoints without a session.
  if (route.endpoint == Endpoint::kLogin) return Login(request, std::move(reply));
  if (route.endpoint == Endpoint::kResellerLogin) return ResellerLogin(request, std::move(reply));
  if (route.endpoint == Endpoint::kPasswordReset) {
    Body body = ParseBody(request);
    if (body.error) return reply(std::move(*body.error));
    return ResetPassword(body.object, std::move(reply));
  }

  // Everything else needs "Authorization: Bearer TOKEN".
  const std::string* authorization = request.Header("authorization");
  if (authorization == nullptr) {
    return reply(Error(401, "missing_token",
                       "Send 'Authorization: Bearer TOKEN' with a token from POST /api/v1/login."));
  }
  std::string_view credentials = *authorization;
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  if (credentials.size() < 7 || Lower(credentials.substr(0, 7)) != "bearer ") {
    return reply(Error(401, "invalid_token",
                       "The Authorization header must be 'Bearer TOKEN' with a session token."));
  }
  credentials.remove_prefix(7);
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  while (!credentials.empty() && credentials.back() == ' ') credentials.remove_suffix(1);
  std::string token(credentials);

  {
    // Sessions are checked on a snapshot here (one SHA-256 and two gets);
    // mutations check again inside their own transaction.
    auto txn = store.BeginRead();
    if (!txn.ok()) return reply(StoreError(txn.status()));
    update::SessionLookup session = update::FindSession(*txn, token, Now());
    switch (session.state) {
      case update::SessionLookup::State::kValid:
        break;
      case update::SessionLookup::State::kExpired:
        DeleteDeadSession(token);
        return reply(Error(401, "session_expired", "The session has expired; log in again."));
      case update::SessionLookup::State::kRevoked:
        DeleteDeadSession(token);
        return reply(SessionRefused());
      case update::SessionLookup::State::kUnknown:
        return reply(SessionRefused());
    }
    if (method == "GET") {
      if (route.endpoint == Endpoint::kAccount) return reply(AccountInfo(*txn, session));
      return reply(ListHosts(*txn, session));
    }
  }
  json body_object = json::object();
  if (has_body) {
    Body body = ParseBody(request);
    if (body.error) return reply(std::move(*body.error));
    body_object = std::move(body.object);
  }
  switch (route.endpoint) {
    case Endpoint::kLogout:
      return Logout(token, std::move(reply));
    case Endpoint::kHosts:
      return AddHost(token, body_object, std::move(reply));
    case Endpoint::kHost:
      return DeleteHost(token, route.host, std::move(reply));
    case Endpoint::kHostToken:
      return NewHostToken(token, route.host, std::move(reply));
    case Endpoint::kHostMoveToken:
      return NewMoveToken(token, route.host, std::move(reply));
    case Endpoint::kHostMove:
      return MoveHost(token, body_object, std::move(reply));
    case Endpoint::kMissingTokens:
      return MissingTokens(token, std::move(reply));
    case Endpoint::kLink:
      if (method == "DELETE") return Unlink(token, std::move(reply));
      return Link(request, token, body_object, std::move(reply));
    default:
      return reply(Error(404, "not_found", "There is no such API endpoint."));
  }
}

// --- Logins --------------------------------------------------------------------

namespace {

HttpResponse AccountDisabled() {
  return Error(403, "account_disabled", "This account is disabled; contact the operator.");
}

HttpResponse LoginViaReseller() {
  return Error(403, "login_via_reseller",
               "This account is linked to a reseller account, so its own password no longer "
               "logs in; log in with the reseller account's name and password "
               "(POST /api/v1/login/reseller).");
}

HttpResponse InvalidResellerCredentials() {
  return Error(403, "invalid_reseller_credentials",
               "The reseller account's name or password is wrong.");
}

HttpResponse SessionCreated(const update::NewSession& session) {
  return JsonResponse(200, {{"token", session.token},
                            {"account", session.record.account},
                            {"expires_at", IsoTime(session.record.expires_at)}});
}

// The credentials of a login: both fields present and strings.
struct LoginFields {
  std::string name, password;
  std::optional<HttpResponse> error;
};

LoginFields ParseLogin(const HttpRequest& request, const char* name_field) {
  LoginFields fields;
  Body body = ParseBody(request);
  if (body.error) {
    fields.error = std::move(body.error);
    return fields;
  }
  Field name = StringField(body.object, name_field, kMaxNameField);
  Field password = StringField(body.object, "password", update::kMaxPasswordSize);
  if (name.error) {
    fields.error = std::move(name.error);
  } else if (password.error) {
    fields.error = std::move(password.error);
  } else {
    fields.name = Lower(name.value);
    fields.password = std::move(password.value);
  }
  return fields;
}

}  // namespace

void ApiService::Impl::Login(const HttpRequest& request, HttpReply reply) {
  LoginFields fields = ParseLogin(request, "name");
  if (fields.error) return reply(std::move(*fields.error));
  auto name = update::NormalizeAccountName(fields.name);
  if (!name.ok() || fields.password.empty()) return reply(InvalidCredentials());
  LoginThrottle::Attempt attempt = throttle->Begin("account", *name, request.peer);
  if (attempt.refused()) return reply(TooManyAttempts(attempt.retry_after));
  RunPasswordCheck(
      reply, &attempt,
      [this, name = *name, password = std::move(fields.password), attempt](HttpReply reply) {
        std::optional<AccountRecord> account;
        {
          auto txn = store.BeginRead();
          if (!txn.ok()) {
            throttle->Refund(attempt);
            return reply(StoreError(txn.status()));
          }
          auto found = update::GetAccount(*txn, name);
          if (found.ok()) {
            account = std::move(found).value();
          } else if (!found.status().IsNotFound()) {
            throttle->Refund(attempt);
            return reply(StoreError(found.status()));
          }
        }  // no snapshot held during the deliberately slow hash
        bool linked = account && !account->linked_reseller.empty();
        // A linked account whose password was cleared has nothing to verify;
        // otherwise only the right password learns that the account is linked.
        if (linked && account->password_hash.empty()) {
          // Nothing was guessed; and no success either, which would reset
          // the name's failures.
          throttle->Refund(attempt);
        } else {
          bool verified =
              update::VerifyPassword(password, account ? account->password_hash : update::DummyPasswordHash());
          // A failure stays charged.
          if (!verified || !account) return reply(InvalidCredentials());
          throttle->Succeeded(attempt);
        }
        if (account->state != storage::State::kActive) return reply(AccountDisabled());
        if (linked) return reply(LoginViaReseller());
        Mutate(
            [options = Options(), name, verified_hash = account->password_hash](
                storage::WriteTxn& txn, update::WriteContext& context) {
              // The account may have changed while the password was checked.
              auto current = update::GetAccount(txn, name);
              if (!current.ok()) {
                return current.status().IsNotFound() ? Refuse(InvalidCredentials())
                                                     : Refuse(StoreError(current.status()));
              }
              if (current->state != storage::State::kActive) return Refuse(AccountDisabled());
              if (!current->linked_reseller.empty()) return Refuse(LoginViaReseller());
              if (current->password_hash != verified_hash) return Refuse(InvalidCredentials());
              auto session = update::CreateSession(txn, current->name, /*reseller=*/"",
                                                   context.now(), options->session_ttl);
              if (!session.ok()) return Refuse(StoreError(session.status()));
              return Commit(SessionCreated(*session));
            },
            std::move(reply));
        MaybePurgeSessions(Now());
      });
}

void ApiService::Impl::ResellerLogin(const HttpRequest& request, HttpReply reply) {
  LoginFields fields = ParseLogin(request, "name");
  if (fields.error) return reply(std::move(*fields.error));
  if (fields.name.empty() || fields.password.empty()) return reply(InvalidCredentials());
  LoginThrottle::Attempt attempt = throttle->Begin("reseller", fields.name, request.peer);
  if (attempt.refused()) return reply(TooManyAttempts(attempt.retry_after));
  RunPasswordCheck(
      reply, &attempt,
      [this, name = std::move(fields.name), password = std::move(fields.password),
       attempt](HttpReply reply) {
        auto checked = CheckResellerPassword(name, password, attempt);
        if (!checked.ok()) return reply(StoreError(checked.status()));
        const std::optional<storage::ResellerRecord>& reseller = *checked;
        if (!reseller) return reply(InvalidCredentials());
        if (reseller->linked_account.empty()) {
          return reply(Error(403, "not_linked",
                             "No account is linked to reseller account '" + reseller->name +
                                 "'; link one first with that account's own login."));
        }
        Mutate(
            [options = Options(), name = reseller->name, verified_hash = reseller->password_hash](
                storage::WriteTxn& txn, update::WriteContext& context) {
              auto current = update::GetReseller(txn, name);
              if (!current.ok()) {
                return current.status().IsNotFound() ? Refuse(InvalidCredentials())
                                                     : Refuse(StoreError(current.status()));
              }
              if (current->password_hash != verified_hash) return Refuse(InvalidCredentials());
              auto account = update::GetAccount(txn, current->linked_account);
              if (current->linked_account.empty() || !account.ok() ||
                  account->linked_reseller != current->name) {
                return Refuse(Error(403, "not_linked",
                                    "No account is linked to reseller account '" + name + "'."));
              }
              if (account->state != storage::State::kActive) return Refuse(AccountDisabled());
              auto session = update::CreateSession(txn, account->name, /*reseller=*/current->name,
                                                   context.now(), options->session_ttl);
              if (!session.ok()) return Refuse(StoreError(session.status()));
              return Commit(SessionCreated(*session));
            },
            std::move(reply));
        MaybePurgeSessions(Now());
      });
}

Result<std::optional<storage::ResellerRecord>> ApiService::Impl::CheckResellerPassword(
    const std::string& name, const std::string& password,
    const LoginThrottle::Attempt& attempt) const {
  std::optional<storage::ResellerRecord> reseller;
  {
    auto txn = store.BeginRead();
    if (!txn.ok()) {
      throttle->Refund(attempt);
      return txn.status();
    }
    auto found = update::GetReseller(*txn, name);
    if (found.ok()) {
      reseller = std::move(found).value();
    } else if (!found.status().IsNotFound() && !found.status().IsInvalid()) {
      throttle->Refund(attempt);
      return found.status();
    }
  }
  bool verified = update::VerifyPassword(
      password, reseller ? reseller->password_hash : update::DummyPasswordHash());
  if (!verified) {
    reseller.reset();
  } else {
    throttle->Succeeded(attempt);
  }
  return reseller;
}

void ApiService::Impl::Logout(const std::string& token, HttpReply reply) {
  Mutate(
      [token](storage::WriteTxn& txn, update::WriteContext&) {
        Status s = update::DeleteSession(txn, token);
        // Gone already (a concurrent logout): the client's wish holds.
        if (!s.ok() && !s.IsNotFound()) return Refuse(StoreError(s));
        return Commit(NoContent());
      },
      std::move(reply));
}

// --- Account and hosts ------------------------------------------------------------

namespace {

// The account's host `fqdn`; NotFound (for a 404) also when the name is
// malformed or the host belongs to someone else.
Result<HostRecord> FindOwnedHost(const storage::Txn& txn, std::string_view fqdn,
                                 const AccountRecord& account) {
  auto host = update::GetHost(txn, fqdn);
  if (!host.ok()) {
    if (host.status().IsInvalid() || host.status().IsNotFound()) return Status::NotFound("");
    return host.status();
  }
  if (host->account != account.name) return Status::NotFound("");
  return host;
}

Answer HostRefusal(const Status& status, std::string_view fqdn) {
  return status.IsNotFound() ? Refuse(HostNotFound(fqdn)) : Refuse(StoreError(status));
}

HttpResponse HostLimitReached(const AccountRecord& account) {
  return Error(403, "host_limit_reached",
               "Account '" + account.name + "' has reached its limit of " +
                   std::to_string(account.host_limit) + " hosts.");
}

void MarkZones(update::WriteContext& context, std::set<std::string>& zones) {
  for (const std::string& apex : zones) context.ZoneChanged(apex);
}

// A one-time token of `purpose`, unexpired at `now`; nullopt otherwise.
std::optional<storage::OneTimeTokenRecord> FindOneTimeToken(
    const storage::Txn& txn, std::string_view token, storage::OneTimeTokenRecord::Purpose purpose,
    uint64_t now) {
  if (token.empty()) return std::nullopt;
  auto value = txn.Get(storage::Table::kOneTime, update::TokenDigest(token));
  if (!value) return std::nullopt;
  auto record = storage::OneTimeTokenRecord::Decode(*value);
  if (!record.ok() || record->purpose != purpose || now >= record->expires_at) return std::nullopt;
  return std::move(record).value();
}

}  // namespace

HttpResponse ApiService::Impl::AccountInfo(const storage::Txn& txn,
                                           const update::SessionLookup& session) {
  const AccountRecord& account = session.account;
  auto count = update::CountHosts(txn, account.name);
  if (!count.ok()) return StoreError(count.status());
  return JsonResponse(200, {{"name", account.name},
                            {"email", account.email},
                            {"state", StateText(account.state)},
                            {"host_limit", account.host_limit},
                            {"host_count", *count},
                            {"linked_reseller", TextOrNull(account.linked_reseller)},
                            {"login", session.session.via_reseller ? "reseller" : "password"},
                            {"created_at", TimeJson(account.created_at)},
                            {"session_expires_at", IsoTime(session.session.expires_at)}});
}

HttpResponse ApiService::Impl::ListHosts(const storage::Txn& txn,
                                         const update::SessionLookup& session) {
  auto hosts = update::ListHosts(txn, session.account.name);
  if (!hosts.ok()) return StoreError(hosts.status());
  json list = json::array();
  for (const HostRecord& host : *hosts) list.push_back(HostJson(host));
  return JsonResponse(200, {{"hosts", std::move(list)}});
}

void ApiService::Impl::AddHost(const std::string& token, const json& body, HttpReply reply) {
  Field hostname = StringField(body, "hostname", kMaxHostField);
  if (hostname.error) return reply(std::move(*hostname.error));
  auto name = update::NormalizeHostName(hostname.value);
  if (!name.ok()) {
    return reply(Error(422, "invalid_hostname", name.status().message(), {{"field", "hostname"}}));
  }
  MutateAsSession(
      token,
      [options = Options(), name = *name](storage::WriteTxn& txn, update::WriteContext& context,
                                        const AccountRecord& account) {
        if (auto existing = update::GetHost(txn, name); existing.ok()) {
          return Refuse(Error(409, "host_exists",
                              existing->account == account.name
                                  ? "Host '" + name + "' is already in your account."
                                  : "Host '" + name + "' is taken; choose another name."));
        }
        auto count = update::CountHosts(txn, account.name);
        if (!count.ok()) return Refuse(StoreError(count.status()));
        if (*count >= account.host_limit) return Refuse(HostLimitReached(account));
        std::set<std::string> zones;
        Status s = update::AddHost(txn, name, account.name, options->zones, context.now(), zones);
        if (s.IsExists()) return Refuse(Error(409, "host_exists", s.message()));
        if (s.IsInvalid() || s.IsNotFound()) {
          return Refuse(Error(422, "invalid_hostname", s.message(), {{"field", "hostname"}}));
        }
        if (!s.ok()) return Refuse(StoreError(s));
        MarkZones(context, zones);
        auto host = update::GetHost(txn, name);
        if (!host.ok()) return Refuse(StoreError(host.status()));
        HttpResponse response = JsonResponse(201, HostJson(*host));
        response.headers.emplace_back("Location", std::string(kPrefix) + "/hosts/" + name);
        return Commit(std::move(response));
      },
      std::move(reply));
}

void ApiService::Impl::DeleteHost(const std::string& token, const std::string& fqdn,
                                  HttpReply reply) {
  MutateAsSession(
      token,
      [fqdn](storage::WriteTxn& txn, update::WriteContext& context, const AccountRecord& account) {
        auto host = FindOwnedHost(txn, fqdn, account);
        if (!host.ok()) return HostRefusal(host.status(), fqdn);
        std::set<std::string> zones;
        if (Status s = update::DeleteHost(txn, host->name, zones); !s.ok()) {
          return HostRefusal(s, fqdn);
        }
        MarkZones(context, zones);
        return Commit(NoContent());
      },
      std::move(reply));
}

void ApiService::Impl::NewHostToken(const std::string& token, const std::string& fqdn,
                                    HttpReply reply) {
  MutateAsSession(
      token,
      [fqdn](storage::WriteTxn& txn, update::WriteContext& context, const AccountRecord& account) {
        auto host = FindOwnedHost(txn, fqdn, account);
        if (!host.ok()) return HostRefusal(host.status(), fqdn);
        auto created = update::CreateToken(txn, host->name, context.now());
        if (!created.ok()) return HostRefusal(created.status(), fqdn);
        return Commit(JsonResponse(200, {{"hostname", host->name}, {"token", *created}}));
      },
      std::move(reply));
}

void ApiService::Impl::MissingTokens(const std::string& token, HttpReply reply) {
  MutateAsSession(
      token,
      [](storage::WriteTxn& txn, update::WriteContext& context, const AccountRecord& account) {
        auto tokens = update::CreateMissingTokens(txn, account.name, context.now());
        if (!tokens.ok()) return Refuse(StoreError(tokens.status()));
        HttpResponse response;
        response.status = 200;
        response.content_type = "text/csv; charset=utf-8";
        response.headers.emplace_back(
            "Content-Disposition",
            "attachment; filename=\"" + std::string(update::kTokensCsvFileName) + "\"");
        response.headers.emplace_back("Cache-Control", "no-store");
        response.body = update::TokensCsv(*tokens);
        return Commit(std::move(response));
      },
      std::move(reply));
}

// --- Host moves ---------------------------------------------------------------------

void ApiService::Impl::NewMoveToken(const std::string& token, const std::string& fqdn,
                                    HttpReply reply) {
  MutateAsSession(
      token,
      [options = Options(), fqdn](storage::WriteTxn& txn, update::WriteContext& context,
                                const AccountRecord& account) {
        auto host = FindOwnedHost(txn, fqdn, account);
        if (!host.ok()) return HostRefusal(host.status(), fqdn);
        auto created = update::CreateMoveToken(txn, account.name, host->name, context.now(),
                                               options->move_ttl);
        if (!created.ok()) return MapStatus(created.status(), "move_refused");
        return Commit(
            JsonResponse(200, {{"hostname", host->name},
                               {"token", *created},
                               {"expires_at", IsoTime(context.now() + options->move_ttl)}}));
      },
      std::move(reply));
}

void ApiService::Impl::MoveHost(const std::string& token, const json& body, HttpReply reply) {
  Field move_token = StringField(body, "token", kMaxTokenField);
  if (move_token.error) return reply(std::move(*move_token.error));
  MutateAsSession(
      token,
      [move_token = std::move(move_token.value)](
          storage::WriteTxn& txn, update::WriteContext& context, const AccountRecord& account) {
        HttpResponse invalid =
            Error(400, "invalid_token", "The move token is unknown, used or expired.");
        auto record = FindOneTimeToken(
            txn, move_token, storage::OneTimeTokenRecord::Purpose::kHostMove, context.now());
        if (!record) return Refuse(std::move(invalid));
        auto host = update::GetHost(txn, record->host);
        if (!host.ok() || host->account != record->account) return Refuse(std::move(invalid));
        if (host->account == account.name) {
          return Refuse(Error(409, "already_owner", "Host '" + host->name + "' is already yours."));
        }
        auto count = update::CountHosts(txn, account.name);
        if (!count.ok()) return Refuse(StoreError(count.status()));
        if (*count >= account.host_limit) return Refuse(HostLimitReached(account));
        auto moved = update::MoveHost(txn, move_token, account.name, context.now());
        if (!moved.ok()) {
          if (moved.status().IsInvalid() || moved.status().IsNotFound())
            return Refuse(Error(400, "invalid_token", moved.status().message()));
          return Refuse(StoreError(moved.status()));
        }
        return Commit(JsonResponse(200, {{"hostname", *moved}, {"account", account.name}}));
      },
      std::move(reply));
}

// --- Link, unlink, password reset ------------------------------------------------------

void ApiService::Impl::Link(const HttpRequest& request, const std::string& token, const json& body,
                            HttpReply reply) {
  Field reseller = StringField(body, "reseller", kMaxNameField);
  if (reseller.error) return reply(std::move(*reseller.error));
  Field password = StringField(body, "password", update::kMaxPasswordSize);
  if (password.error) return reply(std::move(*password.error));
  std::string name = Lower(reseller.value);
  if (name.empty() || password.value.empty()) return reply(InvalidResellerCredentials());
  LoginThrottle::Attempt attempt = throttle->Begin("reseller", name, request.peer);
  if (attempt.refused()) return reply(TooManyAttempts(attempt.retry_after));
  RunPasswordCheck(
      reply, &attempt,
      [this, token, name, password = std::move(password.value), attempt](HttpReply reply) {
        auto checked = CheckResellerPassword(name, password, attempt);
        if (!checked.ok()) return reply(StoreError(checked.status()));
        const std::optional<storage::ResellerRecord>& record = *checked;
        if (!record) return reply(InvalidResellerCredentials());
        MutateAsSession(
            token,
            [reseller = record->name, verified_hash = record->password_hash](
                storage::WriteTxn& txn, update::WriteContext& context,
                const AccountRecord& account) {
              auto current = update::GetReseller(txn, reseller);
              if (!current.ok() || current->password_hash != verified_hash) {
                return current.ok() || current.status().IsNotFound()
                           ? Refuse(InvalidResellerCredentials())
                           : Refuse(StoreError(current.status()));
              }
              auto outcome = update::LinkAccount(txn, account.name, reseller, context.now());
              if (!outcome.ok()) return MapStatus(outcome.status(), "link_refused");
              if (!outcome->linked) {
                const update::LinkRefusal& refusal = outcome->refusal;
                return Refuse(Error(409, refusal.rule.empty() ? "link_refused" : refusal.rule,
                                    refusal.message,
                                    {{"hosts_without_token", refusal.hosts_without_token},
                                     {"tokens_unused", refusal.tokens_unused}}));
              }
              // LinkAccount also ended the sessions opened with the account's
              // own password, this one included.
              return Commit(JsonResponse(200, {{"linked", reseller}, {"account", account.name}}));
            },
            std::move(reply));
      });
}

void ApiService::Impl::Unlink(const std::string& token, HttpReply reply) {
  MutateAsSession(
      token,
      [options = Options()](storage::WriteTxn& txn, update::WriteContext& context,
                          const AccountRecord& account) {
        if (options->reset_url.empty()) {
          return Refuse(Error(503, "unlink_unavailable",
                              "Unlinking is not available: the password-reset link is not "
                              "configured (mail.reset_url). Contact the operator."));
        }
        if (account.linked_reseller.empty()) {
          return Refuse(
              Error(409, "not_linked",
                    "Account '" + account.name + "' is not linked to a reseller account."));
        }
        update::UnlinkOptions unlink;
        unlink.reset_url = options->reset_url;
        unlink.reset_ttl = options->reset_ttl;
        unlink.from_name = options->mail_from_name;
        // UnlinkAccount also ends every session of the account (this one
        // too) and clears its password until the reset.
        Status s = update::UnlinkAccount(txn, account.name, unlink, context.now());
        if (!s.ok()) return MapStatus(s, "not_linked");
        Answer answer = Commit(JsonResponse(200, {{"unlinked", account.linked_reseller},
                                                  {"account", account.name},
                                                  {"reset_mail_to", account.email}}));
        answer.mail_queued = true;
        return answer;
      },
      std::move(reply));
}

void ApiService::Impl::ResetPassword(const json& body, HttpReply reply) {
  Field token = StringField(body, "token", kMaxTokenField);
  if (token.error) return reply(std::move(*token.error));
  Field password = StringField(body, "password", update::kMaxPasswordSize);
  if (password.error) return reply(std::move(*password.error));
  if (password.value.empty()) {
    return reply(Error(422, "invalid_field", "Field 'password' must not be empty.",
                       {{"field", "password"}}));
  }
  using Purpose = storage::OneTimeTokenRecord::Purpose;
  {
    // Most bad tokens are turned away here, before they cost the writer a
    // password hash.
    auto txn = store.BeginRead();
    if (!txn.ok()) return reply(StoreError(txn.status()));
    if (!FindOneTimeToken(*txn, token.value, Purpose::kPasswordReset, Now())) {
      return reply(Error(400, "invalid_token", "The reset token is unknown, used or expired."));
    }
  }
  // scrypt is slow on purpose: hash on the password pool, not in the writer.
  RunPasswordCheck(reply, nullptr,
                   [this, token = std::move(token.value),
                    password = std::move(password.value)](HttpReply reply) mutable {
                     auto hash = update::HashPassword(password);
                     if (!hash.ok()) {
                       return reply(Error(422, "invalid_field", hash.status().message(),
                                          {{"field", "password"}}));
                     }
                     Mutate(
                         [token = std::move(token), hash = std::move(hash).value()](
                             storage::WriteTxn& txn, update::WriteContext& context) {
                           auto record =
                               FindOneTimeToken(txn, token, Purpose::kPasswordReset, context.now());
                           if (!record) {
                             return Refuse(Error(400, "invalid_token",
                                                 "The reset token is unknown, used or expired."));
                           }
                           Status s = update::ResetPasswordHash(txn, token, hash, context.now());
                           if (s.IsInvalid() || s.IsNotFound())
                             return Refuse(Error(400, "invalid_token", s.message()));
                           if (!s.ok()) return Refuse(StoreError(s));
                           // No session needs ending: reset tokens come from UnlinkAccount,
                           // which ended them all and left no password to open new ones.
                           return Commit(JsonResponse(200, {{"name", record->account}}));
                         },
                         std::move(reply));
                   });
}

// --- ApiService --------------------------------------------------------------------------

void ApiService::Reconfigure(ApiServiceOptions options) {
  // What was fixed at construction stays: the throttle, the thread pool and
  // the mail hook.
  std::shared_ptr<const ApiServiceOptions> current = impl_->Options();
  options.throttle = impl_->throttle;
  options.password_threads = current->password_threads;
  options.on_mail_queued = current->on_mail_queued;
  auto fresh = std::make_shared<const ApiServiceOptions>(std::move(options));
  std::lock_guard lock(impl_->options_mutex);
  impl_->options_ = std::move(fresh);
}

ApiService::ApiService(const storage::Store& store, update::Writer& writer,
                       ApiServiceOptions options)
    : impl_(std::make_unique<Impl>(store, writer, std::move(options))) {}

ApiService::~ApiService() = default;

bool ApiService::Handles(std::string_view path) {
  return path == kPrefix ||
         (path.size() > kPrefix.size() && path.substr(0, kPrefix.size()) == kPrefix &&
          path[kPrefix.size()] == '/');
}

void ApiService::Handle(const HttpRequest& request, HttpReply reply) {
  impl_->Handle(request, std::move(reply));
}

}  // namespace updns::server
