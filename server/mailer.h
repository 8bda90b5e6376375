// The mailer: drains the store's outbox (update/outbox.h) to the SMTP relay
// of `mail.smtp` with libcurl, on a thread of its own (never a libuv loop).
//
// libcurl is opened (dlopen) by that thread, not linked into the daemon: it
// brings 28 shared objects of its own, and relocating them at exec was most
// of the daemon's start-up CPU (bench/RESULTS.md). A daemon without
// mail.smtp never loads it (unless a reload sets it).
//
// Delivery is at least once. A mail leaves the outbox only after the relay
// accepted it (its answer to the end of DATA), in a write transaction of its
// own. Should the daemon die between that answer and the commit, the mail is
// sent again later with the same Message-ID, so duplicates can be told
// apart. A failed attempt is recorded on the mail (attempts + 1, last_error)
// and retried after retry_initial * 2^(attempts before it), at most
// retry_max; the failure is logged with the mail id, recipient and error.
// Queued mail survives restarts and waits until it is delivered or an
// operator removes it; a recipient that is not a plain address can never be
// sent and stays queued with that error (visible in `updnsctl outbox list`).
//
// A second writer. The mailer opens its own small write transactions (one
// delete or one put per attempt) next to update::Writer. LMDB serializes
// writers (as it already does for updnsctl in another process), so this is
// safe. The cost is that a group of the writer may wait for one such
// transaction, about one fsync, once per mail attempt: rare next to updates.
// Each transaction touches only the outbox, so going through the writer
// would add a dependency and a queue without adding consistency.
//
// The outbox is rescanned after each pass, on Wake(), when the next deferred
// mail falls due, and every `poll_interval` (updnsctl in another process
// queues mail too and cannot call Wake()).
//
// Reconfigure() (a reload) takes effect from the next pass: a new relay is
// tried at once for every queued mail, deferred ones included; setting
// mail.smtp on a mailer started without it starts the thread, and clearing
// it stops delivery (the mail stays queued).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"
#include "config/config.h"
#include "storage/accounts.h"
#include "storage/store.h"

namespace updns::server {

struct MailerTiming {
  std::chrono::milliseconds poll_interval{5000};  // outbox rescan without a Wake()
  std::chrono::milliseconds connect_timeout{10000};
  // A whole SMTP session, connect to QUIT: a relay that stalls costs one
  // attempt (deferred as usual), never the thread. Stop() does not wait for
  // it: it interrupts a session in progress at once.
  std::chrono::milliseconds send_timeout{60000};
};

class CurlMulti;  // mailer.cc: the libcurl multi handle, its RAII owner

// Opens libcurl once per process; later calls return the first outcome.
// Errors name the library or symbol that is missing. `updnsd --check`
// calls it when mail.smtp is set; the mailer's thread calls it on start.
Status LoadSmtpClient();

class Mailer {
 public:
  struct Stats {
    uint64_t delivered = 0;        // accepted by the relay
    uint64_t failed_attempts = 0;  // deferred for a retry
  };

  // The store must outlive the mailer; `config` is copied. With an empty
  // `config.smtp` the mailer is disabled: Start() logs how much mail stays
  // queued and starts no thread. When libcurl cannot be loaded or set up,
  // the thread logs mailer_failed and ends; the mail stays queued.
  Mailer(storage::Store& store, const config::MailConfig& config, MailerTiming timing = {});
  ~Mailer();  // Stop()s
  Mailer(const Mailer&) = delete;
  Mailer& operator=(const Mailer&) = delete;

  // Starts the thread. REQUIRES: not started, not stopped.
  void Start();
  // Ends the thread promptly (well under a second), also in the middle of
  // an SMTP session: that mail stays queued as it was, its attempt not
  // counted. Idempotent.
  void Stop();
  // Thread-safe: new mail is queued, scan the outbox now.
  void Wake();
  // Thread-safe: new SMTP settings (see above); `config` is copied.
  void Reconfigure(const config::MailConfig& config);

  bool enabled() const;
  Stats stats() const;

 private:
  struct Outcome;

  void Run();
  void StartThread();  // REQUIRES: mutex_ held
  // Sends every due mail (every mail when `all`); returns the earliest time
  // (unix ms) a queued mail falls due later, or UINT64_MAX when none is
  // waiting.
  uint64_t DeliverDue(CurlMulti& multi, bool all);
  Outcome Send(CurlMulti& transfers, uint64_t id, const storage::MailRecord& mail);
  // Removes a delivered mail or defers a failed one, and logs it. Returns
  // when a failed mail is due again (unix seconds), 0 for a delivered one.
  uint64_t Record(uint64_t id, const storage::MailRecord& mail, const Outcome& outcome);
  bool stopping() const;

  storage::Store& store_;
  const MailerTiming timing_;

  // Worker thread only: mail settings as of the current pass (a pass whose
  // relay differs from the last one's tries every mail).
  config::MailConfig active_;
  // Worker thread only: what the store could not be told. Delivered mail
  // whose removal failed (never sent twice by this process), and failed mail
  // whose deferral failed (not retried before this time, unix seconds).
  std::set<uint64_t> delivered_unremoved_;
  std::map<uint64_t, uint64_t> held_until_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  config::MailConfig config_;  // guarded by mutex_: the latest settings
  bool started_ = false;       // guarded by mutex_: Start() was called
  bool stopping_ = false;      // guarded by mutex_
  bool woken_ = false;         // guarded by mutex_
  // Guarded by mutex_: the thread's multi handle while it has one, for
  // Stop() to wake a transfer in progress.
  CurlMulti* multi_ = nullptr;
  Stats stats_;            // guarded by mutex_
  std::thread thread_;
};

}  // namespace updns::server
