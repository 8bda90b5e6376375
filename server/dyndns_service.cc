#include "server/dyndns_service.h"

#include <memory>

#include "common/log.h"

namespace updns::server {
namespace {

constexpr uint32_t kDefaultHostTtl = 60;

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
                             update::DyndnsPolicy policy, std::map<std::string, uint32_t> host_ttls)
    : store_(store),
      writer_(writer),
      policy_(policy),
      host_ttls_(std::move(host_ttls)),
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
  if (parsed->user.empty() || parsed->password.empty()) return reply(BadAuth());

  std::optional<update::DyndnsIdentity> by_token;
  if (auto txn = store_.BeginRead(); txn.ok())
    by_token = update::AuthenticateHostToken(*txn, parsed->user, parsed->password);
  if (by_token) {
    if (by_token->kind == update::DyndnsIdentity::Kind::kNone) return reply(BadAuth());
    return Submit(std::move(parsed).value(), std::move(*by_token), std::move(reply));
  }
  auto shared = std::make_shared<update::DyndnsRequest>(std::move(parsed).value());
  password_checks_.Run([this, shared, reply = std::move(reply)]() mutable {
    auto identity = update::Authenticate(store_, shared->user, shared->password);
    if (identity.kind == update::DyndnsIdentity::Kind::kNone) return reply(BadAuth());
    Submit(std::move(*shared), std::move(identity), std::move(reply));
  });
}

void DyndnsService::Submit(update::DyndnsRequest request, update::DyndnsIdentity identity,
                           HttpReply reply) {
  auto host_ttl = [this](std::string_view zone) {
    auto it = host_ttls_.find(std::string(zone));
    return it == host_ttls_.end() ? kDefaultHostTtl : it->second;
  };
  auto done = [reply = std::move(reply)](std::vector<update::DyndnsHostResult> results) {
    HttpResponse response;
    bool bad_auth = !results.empty() && results.front().code == update::DyndnsCode::kBadAuth;
    if (bad_auth) return reply(BadAuth());
    response.body = update::FormatDyndnsResults(results);
    reply(std::move(response));
  };
  writer_.Submit(std::make_unique<update::DyndnsUpdate>(std::move(request), std::move(identity),
                                                        policy_, host_ttl, std::move(done)));
}

}  // namespace updns::server
