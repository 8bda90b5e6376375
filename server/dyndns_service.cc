#include "server/dyndns_service.h"

#include <memory>
#include <optional>

#include "common/log.h"

namespace updns::server {
namespace {

constexpr uint32_t kDefaultHostTtl = 60;
// Account password checks queued or running before new ones are refused:
// with two threads and tens of milliseconds per scrypt, about a second.
constexpr size_t kMaxPendingPasswordChecks = 64;

// See the header: a refusal that dyndns clients retry later.
HttpResponse TooManyAttempts(uint64_t retry_after, std::string_view why) {
  HttpResponse response;
  response.status = 429;
  response.headers.emplace_back("Retry-After", std::to_string(retry_after));
  response.body =
      "911 " + std::string(why) + "; retry after " + std::to_string(retry_after) + " seconds\n";
  return response;
}

// As the writer's failures are answered: `911`, nothing was written.
HttpResponse StoreFailed() {
  HttpResponse response;
  response.body = "911\n";
  return response;
}

HttpResponse BadAuth() {
  HttpResponse response;
  response.status = 401;
  response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"updns\"");
  response.body = "badauth\n";
  return response;
}

}  // namespace

TaskPool::TaskPool(unsigned threads) {
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      while (true) {
        std::function<void()> task;
        {
          std::unique_lock lock(mutex_);
          wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
          if (tasks_.empty()) return;
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
        task();
      }
    });
  }
}

TaskPool::~TaskPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void TaskPool::Run(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

DyndnsService::DyndnsService(const storage::Store& store, update::Writer& writer,
                             update::DyndnsPolicy policy, std::map<std::string, uint32_t> host_ttls,
                             std::shared_ptr<LoginThrottle> throttle)
    : store_(store),
      writer_(writer),
      settings_(std::make_shared<const Settings>(Settings{policy, std::move(host_ttls)})),
      throttle_(throttle ? std::move(throttle) : std::make_shared<LoginThrottle>()),
      password_checks_(2) {}

void DyndnsService::Handle(const HttpRequest& request, HttpReply reply) {
  if (request.method != "GET" && request.method != "POST") {
    HttpResponse response;
    response.status = 405;
    response.headers.emplace_back("Allow", "GET, POST");
    response.body = "method not allowed\n";
    return reply(std::move(response));
  }
  // A POST carries the parameters as a form body; GET in the query.
  std::string params = request.query;
  if (request.method == "POST" && !request.body.empty()) {
    if (!params.empty()) params.push_back('&');
    params += request.body;
  }
  auto parsed = update::ParseDyndnsRequest(params, request.Header("authorization"), request.peer);
  if (!parsed.ok()) {
    HttpResponse response;
    response.status = 400;
    response.body = "badrequest: " + std::string(parsed.status().message()) + "\n";
    return reply(std::move(response));
  }
  // No credentials is not a guess (clients may wait for the challenge).
  if (parsed->user.empty() || parsed->password.empty()) return reply(BadAuth());

  // Which budget the attempt is charged to depends on what the user names;
  // that much is learned without checking anything.
  std::optional<update::DyndnsIdentity> by_token;
  LoginThrottle::Attempt attempt;
  {
    auto txn = store_.BeginRead();
    if (!txn.ok()) {
      Log(LogLevel::kError, "dyndns_store_failed",
          {{"user", parsed->user}, {"peer", request.peer_text}, {"error", txn.status()}});
      return reply(StoreFailed());
    }
    bool is_host = txn->Get(storage::Table::kHosts, parsed->user).has_value();
    attempt = throttle_->Begin(is_host ? "host" : "account", parsed->user, request.peer);
    if (attempt.refused())
      return reply(TooManyAttempts(attempt.retry_after, "too many failed logins"));
    if (is_host) by_token = update::AuthenticateHostToken(*txn, parsed->user, parsed->password);
  }
  if (by_token) {
    if (by_token->kind == update::DyndnsIdentity::Kind::kNone) return reply(BadAuth());
    throttle_->Succeeded(attempt);
    return Submit(std::move(parsed).value(), std::move(*by_token), std::move(reply));
  }
  if (pending_checks_.fetch_add(1) >= kMaxPendingPasswordChecks) {
    pending_checks_.fetch_sub(1);
    throttle_->Refund(attempt);
    return reply(TooManyAttempts(1, "too many logins are being checked"));
  }
  auto shared = std::make_shared<update::DyndnsRequest>(std::move(parsed).value());
  password_checks_.Run(
      [this, shared, attempt = std::move(attempt), reply = std::move(reply)]() mutable {
        auto identity = update::Authenticate(store_, shared->user, shared->password);
        pending_checks_.fetch_sub(1);
        if (identity.kind == update::DyndnsIdentity::Kind::kNone) return reply(BadAuth());
        throttle_->Succeeded(attempt);
        Submit(std::move(*shared), std::move(identity), std::move(reply));
      });
}

void DyndnsService::Submit(update::DyndnsRequest request, update::DyndnsIdentity identity,
                           HttpReply reply) {
  std::shared_ptr<const Settings> settings = CurrentSettings();
  auto host_ttl = [settings](std::string_view zone) {
    auto it = settings->host_ttls.find(std::string(zone));
    return it == settings->host_ttls.end() ? kDefaultHostTtl : it->second;
  };
  auto done = [reply = std::move(reply)](std::vector<update::DyndnsHostResult> results) {
    HttpResponse response;
    bool bad_auth = !results.empty() && results.front().code == update::DyndnsCode::kBadAuth;
    if (bad_auth) return reply(BadAuth());
    response.body = update::FormatDyndnsResults(results);
    reply(std::move(response));
  };
  writer_.Submit(std::make_unique<update::DyndnsUpdate>(std::move(request), std::move(identity),
                                                        settings->policy, host_ttl,
                                                        std::move(done)));
}

std::shared_ptr<const DyndnsService::Settings> DyndnsService::CurrentSettings() const {
  std::lock_guard lock(settings_mutex_);
  return settings_;
}

void DyndnsService::Reconfigure(update::DyndnsPolicy policy,
                                std::map<std::string, uint32_t> host_ttls) {
  auto fresh = std::make_shared<const Settings>(Settings{policy, std::move(host_ttls)});
  std::lock_guard lock(settings_mutex_);
  settings_ = std::move(fresh);
}

}  // namespace updns::server
