// The daemon's only LMDB writer: a thread with a queue that applies requests
// in groups. For each group it opens one write transaction, applies every
// request in its own nested transaction (one failing request is rolled back
// alone), bumps the serial of each changed zone once and the store
// generation, commits once (one fsync for the whole group), and only then
// reports each request's outcome. Nothing is acknowledged before it is
// durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/histogram.h"
#include "common/status.h"
#include "storage/store.h"
#include "zone/journal.h"

namespace updns::update {

// What a request tells the writer about its changes.
class WriteContext {
 public:
  explicit WriteContext(uint64_t now) : now_(now) {}
  // The zone (lowercased wire apex) changed: its serial is bumped once at
  // the end of the group.
  void ZoneChanged(std::string apex) { changed_zones_.insert(std::move(apex)); }
  // Unix seconds, the same for every request of a group.
  uint64_t now() const { return now_; }
  const std::set<std::string>& changed_zones() const { return changed_zones_; }

 private:
  uint64_t now_;
  std::set<std::string> changed_zones_;
};

// A unit of work for the writer. Not HTTP-shaped: dyndns2, the JSON API and
// RFC 2136 each make their own kind.
class WriteRequest {
 public:
  virtual ~WriteRequest() = default;
  // Runs on the writer thread inside the request's own nested transaction.
  // An error rolls back this request's writes only. Zone changes count only
  // when Apply succeeds.
  virtual Status Apply(storage::WriteTxn& txn, WriteContext& context) = 0;
  // Runs on the writer thread after the group's commit: `status` is Apply's
  // error, or the commit's error, or OK once the writes are durable.
  // Implementations hand the result to their own loop and return quickly.
  virtual void Done(const Status& status) = 0;
};

// A request made of two functions, for callers whose work is a few lines
// (the JSON API's mutations). `apply` runs in the nested transaction,
// `done` after the commit, both on the writer thread.
class CallbackRequest : public WriteRequest {
 public:
  using ApplyFn = std::function<Status(storage::WriteTxn&, WriteContext&)>;
  using DoneFn = std::function<void(const Status&)>;
  CallbackRequest(ApplyFn apply, DoneFn done) : apply_(std::move(apply)), done_(std::move(done)) {}
  Status Apply(storage::WriteTxn& txn, WriteContext& context) override { return apply_(txn, context); }
  void Done(const Status& status) override { done_(status); }

 private:
  ApplyFn apply_;
  DoneFn done_;
};

class Writer {
 public:
  struct Stats {
    uint64_t commits = 0;
    uint64_t requests = 0;
    uint64_t failed_commits = 0;
    // Requests per group (failed groups included).
    Histogram batch_size{1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    // Seconds from opening a group's write transaction to its commit being
    // durable (apply + fsync), failed groups included.
    Histogram commit_seconds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                             0.1,    0.25,  0.5,    1,     2.5,  5};
  };

  // The store must outlive the writer. `journal_limits` bound each changed
  // zone's journal (zone/journal.h) after every group.
  explicit Writer(storage::Store& store, zone::JournalLimits journal_limits = {});
  ~Writer();  // Stop()s
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void Start();
  // Applies what is queued, then ends the thread. Later Submit()s fail their
  // requests with an error.
  void Stop();
  // Thread-safe. The request's Done() will be called exactly once.
  void Submit(std::unique_ptr<WriteRequest> request);
  Stats stats() const;
  // Thread-safe; the next group trims journals to these (a reload).
  void SetJournalLimits(zone::JournalLimits limits);

 private:
  void Run();
  void ApplyGroup(std::deque<std::unique_ptr<WriteRequest>>& group,
                  const zone::JournalLimits& journal_limits);

  storage::Store& store_;
  mutable std::mutex mutex_;
  zone::JournalLimits journal_limits_;               // guarded by mutex_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<WriteRequest>> queue_;  // guarded by mutex_
  bool stopping_ = false;                            // guarded by mutex_
  Stats stats_;                                      // guarded by mutex_
  std::thread thread_;
};

}  // namespace updns::update
