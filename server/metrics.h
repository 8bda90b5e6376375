// GET /metrics: the daemon's counters in the Prometheus text exposition
// format (version 0.0.4). Every metric and its meaning: README.md, "Metrics".
//
// Counts are kept where the work happens and read only at scrape time:
//   - DNS: per query loop, lock-free (server/dns_counters.h), summed here;
//   - HTTP updates (dyndns2, the JSON API): UpdateCounters, counted as the
//     response leaves (CountingReply), whichever thread sends it;
//   - the writer, mailer and notifier: their own stats() under their locks;
//   - LMDB: storage::Store::GetStats() at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "server/dns_counters.h"
#include "server/http_server.h"
#include "server/mailer.h"
#include "server/notifier.h"
#include "storage/store.h"
#include "update/writer.h"

namespace updns::server {

// dyndns2 result words as labels, in the order of UpdateTotals::dyndns;
// anything else a response starts with (a 405's text) counts as "other".
inline constexpr std::string_view kDyndnsWords[] = {
    "good",  "nochg",  "badauth", "!yours",   "notfqdn",    "nohost", "numhost",
    "abuse", "dnserr", "911",     "badagent", "badrequest", "fatal",  "other"};
inline constexpr size_t kDyndnsWordSlots = std::size(kDyndnsWords);

struct UpdateTotals {
  uint64_t dyndns[kDyndnsWordSlots] = {};  // one per host line of a response
  std::array<uint64_t, 600> api_status{};  // by HTTP status (100-599)
};

// Updates that came over HTTP. Thread-safe (relaxed atomic adds: a response
// may be sent from the HTTP loop, the writer thread or a password-check
// thread, and this is far from the query path).
class UpdateCounters {
 public:
  // One count per line of a dyndns2 response body, by its first word.
  void CountDyndns(std::string_view body) noexcept;
  void CountApi(int status) noexcept;
  UpdateTotals Totals() const noexcept;

  // `reply`, counting the response it sends: every /nic/update response, and
  // the API's responses to requests that may change something (methods
  // other than GET and HEAD). The counters must outlive the reply.
  HttpReply CountingDyndnsReply(HttpReply reply);
  HttpReply CountingApiReply(const HttpRequest& request, HttpReply reply);

 private:
  std::atomic<uint64_t> dyndns_[kDyndnsWordSlots] = {};
  std::atomic<uint64_t> api_status_[600] = {};
};

// Everything /metrics shows, as plain values.
struct MetricsSnapshot {
  DnsTotals dns;
  UpdateTotals updates;
  update::Writer::Stats writer;
  Mailer::Stats mailer;
  bool mailer_enabled = false;
  Notifier::Stats notifier;
  std::optional<storage::Store::Stats> store;  // absent when it could not be read
};

// The text exposition of `snapshot`: a HELP and a TYPE line for every
// family, then its samples. Series of the DNS and update families that are
// zero are left out (Prometheus treats an absent series as not yet seen).
std::string RenderMetrics(const MetricsSnapshot& snapshot);

// Where the HTTP loop's /metrics handler reads from. Everything pointed to
// must outlive the endpoint.
struct MetricsSources {
  const update::Writer* writer = nullptr;
  const Mailer* mailer = nullptr;
  const Notifier* notifier = nullptr;
  const storage::Store* store = nullptr;
  std::vector<const DnsCounters*> loops;
  const UpdateCounters* updates = nullptr;
  std::vector<config::Prefix> allow;  // http.metrics_allow; empty = everyone
};

// Reads every source now (a few locks, one short read transaction).
MetricsSnapshot TakeMetricsSnapshot(const MetricsSources& sources);

// Answers GET /metrics: 403 for a client outside `sources.allow`, 405 for
// another method, else 200 with RenderMetrics(TakeMetricsSnapshot()).
HttpResponse MetricsResponse(const MetricsSources& sources, const HttpRequest& request);

}  // namespace updns::server
