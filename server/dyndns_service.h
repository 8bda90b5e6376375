// /nic/update over HTTP: turns an HttpRequest into a dyndns2 update for the
// writer and the writer's results into the HTTP answer clients expect.
//
// Token credentials are checked on the HTTP loop (one SHA-256); account
// passwords go to a small pool of threads because scrypt is slow on purpose.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"
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
  // The store and the writer must outlive the service.
  DyndnsService(const storage::Store& store, update::Writer& writer, update::DyndnsPolicy policy,
                std::map<std::string, uint32_t> host_ttls);

  // Answers a request for /nic/update (GET query or POST form body).
  void Handle(const HttpRequest& request, HttpReply reply);

 private:
  void Submit(update::DyndnsRequest request, update::DyndnsIdentity identity, HttpReply reply);

  const storage::Store& store_;
  update::Writer& writer_;
  update::DyndnsPolicy policy_;
  std::map<std::string, uint32_t> host_ttls_;
  TaskPool password_checks_;
};

}  // namespace updns::server
