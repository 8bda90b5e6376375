// The NOTIFY sender (RFC 1996): tells each zone's secondaries that its
// serial changed, so they transfer at once instead of at their next refresh.
//
// It watches the store rather than being told about commits: the store
// generation moves on every change of DNS data, from the daemon's writer as
// from updnsctl in another process, and reading it is one small read
// transaction. Poke() (after a commit) only makes the next look immediate.
// For every zone whose serial differs from the last one announced, each
// target gets a NOTIFY with a fresh ID, resent with backoff (retry_initial,
// doubling up to retry_max) until that target answers it; a newer serial
// replaces an unanswered older one. Answers are logged. At start every zone
// is announced once, so secondaries catch up with changes made while the
// daemon was down.
//
// With a zone's key set, every NOTIFY is TSIG-signed (RFC 8945) and only an
// answer signed with that key counts: an unsigned or forged answer is
// logged and the NOTIFY is resent as if unanswered.
//
// One libuv loop on a thread of its own; nothing here touches the query
// loops.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "storage/store.h"
#include "tsig/tsig.h"

namespace updns::server {

struct NotifierOptions {
  struct Zone {
    std::string apex;  // lowercased wire name
    std::vector<config::Endpoint> targets;
    std::optional<tsig::Key> key;  // signs every NOTIFY of the zone when set
  };
  std::vector<Zone> zones;
  uint32_t retry_initial_ms = 1000;
  uint32_t retry_max_ms = 60000;
  // How often the store generation is read without a Poke(): the delay
  // before a change made by another process is announced.
  uint32_t poll_interval_ms = 500;
};

class Notifier {
 public:
  struct Stats {
    uint64_t sent = 0;          // NOTIFY messages, first sends and retries
    uint64_t acknowledged = 0;  // answered with NOERROR
    uint64_t rejected = 0;      // answered with an error rcode (not retried)
    uint64_t failed = 0;        // sends the socket refused (retried)
    uint64_t retries = 0;       // sends after an unanswered one (in `sent` too)
  };

  // Binds the sending sockets now so that start-up fails early. The store
  // must outlive the notifier. Zones without targets are ignored.
  static Result<std::unique_ptr<Notifier>> Create(const storage::Store& store,
                                                  NotifierOptions options);
  ~Notifier();  // Stop()s
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void Start();
  // Thread-safe; idempotent.
  void Stop();
  // Thread-safe: DNS data may have changed, look now.
  void Poke();
  // A reload's zones, targets and backoff (not poll_interval_ms). Zones
  // whose targets and key are unchanged keep their state; new ones are
  // announced at once. The new backoff counts from each target's next send,
  // and no pending resend waits longer than the new retry_max_ms.
  // Thread-safe.
  void Reconfigure(NotifierOptions options);
  Stats stats() const;

  struct Impl;

 private:
  explicit Notifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::mutex stop_mutex_;
  bool stopped_ = false;  // guarded by stop_mutex_
};

}  // namespace updns::server
