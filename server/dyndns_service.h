// /nic/update over HTTP: turns an HttpRequest into a dyndns2 update for the
// writer and the writer's results into the HTTP answer clients expect.
//
// Token credentials are checked on the HTTP loop (one SHA-256); account
// passwords go to a small pool of threads because scrypt is slow on purpose.
//
// Failed credentials answer `badauth` (401) at once, and count against the
// client's address in the LoginThrottle (server/throttle.h) it shares with
// the JSON API. Over the limit, requests are answered before any check with
// 429 Too Many Requests, a Retry-After header and the body
// "911 too many failed logins; retry after N seconds": not `badauth`, which
// ddclient and inadyn take as a fatal configuration error, but a refusal
// they retry later (ddclient retries any non-2xx answer, inadyn anything but
// 401/403), and `911` for scripts that read the body only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"
#include "server/throttle.h"
#include "storage/store.h"
#include "update/dyndns2.h"
#include "update/writer.h"

namespace updns::server {

// A fixed set of threads running queued tasks, for work that must not block
// an event loop.
class TaskPool {
 public:
  explicit TaskPool(unsigned threads);
  ~TaskPool();  // finishes queued tasks, then joins
  void Run(std::function<void()> task);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

class DyndnsService {
 public:
  // `host_ttls`: host TTL per configured zone (lowercase, no final dot).
  // `throttle`: shared with the JSON API; null = one of its own with the
  // default ThrottleOptions. The store and the writer must outlive the
  // service.
  DyndnsService(const storage::Store& store, update::Writer& writer, update::DyndnsPolicy policy,
                std::map<std::string, uint32_t> host_ttls,
                std::shared_ptr<LoginThrottle> throttle = nullptr);

  // Answers a request for /nic/update (GET query or POST form body).
  void Handle(const HttpRequest& request, HttpReply reply);
  // A reload's policy and host TTLs, for the updates submitted from now on.
  // Thread-safe.
  void Reconfigure(update::DyndnsPolicy policy, std::map<std::string, uint32_t> host_ttls);

 private:
  struct Settings {
    update::DyndnsPolicy policy;
    std::map<std::string, uint32_t> host_ttls;
  };
  std::shared_ptr<const Settings> CurrentSettings() const;

  void Submit(update::DyndnsRequest request, update::DyndnsIdentity identity, HttpReply reply);

  const storage::Store& store_;
  update::Writer& writer_;
  // Read by the HTTP loop, the password checks and (host TTLs) the writer;
  // a reload replaces it whole.
  mutable std::mutex settings_mutex_;
  std::shared_ptr<const Settings> settings_;  // guarded by settings_mutex_
  std::shared_ptr<LoginThrottle> throttle_;
  // Password checks queued or running; beyond a bound, 429 at once, so that
  // a flood of slow checks cannot make every account login wait.
  std::atomic<size_t> pending_checks_{0};
  // Last: destroyed first, so queued checks finish while the rest is alive.
  TaskPool password_checks_;
};

}  // namespace updns::server
