#include "server/metrics.h"

#include <cstdio>
#include <utility>

#include "common/log.h"

namespace updns::server {
namespace {

constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Label values are ours (fixed words), but the format's escapes cost nothing.
std::string EscapeLabel(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

// Writes families in the text exposition format: HELP, TYPE, samples.
class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // `labels`: name/value pairs, values unescaped.
  void Sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              std::string_view value) {
    out_ += name;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [label, label_value] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += label;
        out_ += "=\"";
        out_ += EscapeLabel(label_value);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void Sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              uint64_t value) {
    Sample(name, labels, std::to_string(value));
  }

  void Counter(std::string_view name, std::string_view help, uint64_t value) {
    Family(name, "counter", help);
    Sample(name, {}, value);
  }
  void Gauge(std::string_view name, std::string_view help, uint64_t value) {
    Family(name, "gauge", help);
    Sample(name, {}, value);
  }
  void HistogramFamily(const std::string& name, std::string_view help, const Histogram& h) {
    Family(name, "histogram", help);
    for (size_t i = 0; i < h.bounds().size(); ++i)
      Sample(name + "_bucket", {{"le", Number(h.bounds()[i])}}, h.CumulativeCount(i));
    Sample(name + "_bucket", {{"le", "+Inf"}}, h.count());
    Sample(name + "_sum", {}, Number(h.sum()));
    Sample(name + "_count", {}, h.count());
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void RenderDns(const DnsTotals& dns, Exposition& out) {
  out.Family("updns_dns_queries_total", "counter",
             "DNS queries answered by the query path, by transport, query type and response "
             "code (UPDATE, transfers and TSIG-signed queries are counted apart).");
  for (size_t p = 0; p < 2; ++p) {
    for (size_t t = 0; t < kQtypeSlots; ++t) {
      for (size_t r = 0; r < kRcodeSlots; ++r) {
        if (dns.queries[p][t][r] == 0) continue;
        out.Sample(
            "updns_dns_queries_total",
            {{"proto", kProtocolNames[p]}, {"qtype", kQtypeNames[t]}, {"rcode", kRcodeNames[r]}},
            dns.queries[p][t][r]);
      }
    }
  }
  out.Family("updns_dns_truncated_total", "counter",
             "Answers sent with the TC bit set (too large for UDP, or an RRL slip).");
  for (size_t p = 0; p < 2; ++p)
    out.Sample("updns_dns_truncated_total", {{"proto", kProtocolNames[p]}}, dns.truncated[p]);
  out.Counter("updns_dns_rrl_dropped_total", "UDP answers response rate limiting dropped.",
              dns.rrl_dropped);
  out.Counter("updns_dns_rrl_slipped_total",
              "UDP answers response rate limiting replaced by a truncated one.", dns.rrl_slipped);
  out.Family("updns_transfers_total", "counter",
             "Zone transfers (AXFR, IXFR) started (served) or refused and failed (refused).");
  for (size_t k = 0; k < 2; ++k) {
    out.Sample("updns_transfers_total", {{"type", kTransferNames[k]}, {"result", "served"}},
               dns.transfers_served[k]);
    out.Sample("updns_transfers_total", {{"type", kTransferNames[k]}, {"result", "refused"}},
               dns.transfers_refused[k]);
  }
}

void RenderUpdates(const DnsTotals& dns, const UpdateTotals& updates, Exposition& out) {
  out.Family("updns_updates_total", "counter",
             "Update requests by path and result: dyndns2 result word (one per host), RFC 2136 "
             "response code, JSON API HTTP status (requests other than GET).");
  for (size_t w = 0; w < kDyndnsWordSlots; ++w) {
    if (updates.dyndns[w] == 0) continue;
    out.Sample("updns_updates_total", {{"path", "dyndns2"}, {"result", kDyndnsWords[w]}},
               updates.dyndns[w]);
  }
  for (size_t r = 0; r < kRcodeSlots; ++r) {
    if (dns.updates[r] == 0) continue;
    out.Sample("updns_updates_total", {{"path", "rfc2136"}, {"result", kRcodeNames[r]}},
               dns.updates[r]);
  }
  for (size_t status = 0; status < updates.api_status.size(); ++status) {
    if (updates.api_status[status] == 0) continue;
    out.Sample("updns_updates_total", {{"path", "api"}, {"result", std::to_string(status)}},
               updates.api_status[status]);
  }
}

void RenderWriter(const update::Writer::Stats& writer, Exposition& out) {
  out.Counter("updns_writer_commits_total", "Group commits of the writer.", writer.commits);
  out.Counter("updns_writer_requests_total", "Requests the writer applied or failed.",
              writer.requests);
  out.Counter("updns_writer_failed_commits_total", "Group commits that failed.",
              writer.failed_commits);
  out.HistogramFamily("updns_writer_batch_size", "Requests per group commit.", writer.batch_size);
  out.HistogramFamily("updns_writer_commit_seconds",
                      "Seconds from opening a group's write transaction to its durable commit.",
                      writer.commit_seconds);
}

void RenderStore(const storage::Store::Stats& store, Exposition& out) {
  out.Gauge("updns_lmdb_map_size_bytes", "Size the LMDB map may grow to (storage.map_size).",
            store.map_size);
  out.Gauge("updns_lmdb_page_size_bytes", "LMDB page size.", store.page_size);
  out.Gauge("updns_lmdb_pages_used", "LMDB pages in use: the last page number + 1.",
            store.pages_used);
  out.Gauge("updns_lmdb_used_bytes", "Bytes of the map in use (pages used times page size).",
            store.pages_used * store.page_size);
  out.Gauge("updns_lmdb_readers_max", "LMDB reader slots.", store.readers_max);
  out.Gauge("updns_lmdb_readers_used",
            "LMDB reader slots held by live threads (idle query loops keep theirs).",
            store.readers_used);
  out.Gauge("updns_mail_outbox", "Mails queued in the outbox.", store.outbox_entries);
}

}  // namespace

// ---- UpdateCounters ----

void UpdateCounters::CountDyndns(std::string_view body) noexcept {
  while (!body.empty()) {
    size_t end = body.find('\n');
    std::string_view line = body.substr(0, end);
    body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
    if (line.empty()) continue;
    std::string_view word = line.substr(0, line.find(' '));
    size_t slot = kDyndnsWordSlots - 1;
    for (size_t i = 0; i + 1 < kDyndnsWordSlots; ++i) {
      if (kDyndnsWords[i] == word ||
          (word.ends_with(':') && kDyndnsWords[i] == word.substr(0, word.size() - 1))) {
        slot = i;
        break;
      }
    }
    dyndns_[slot].fetch_add(1, std::memory_order_relaxed);
  }
}

void UpdateCounters::CountApi(int status) noexcept {
  if (status < 100 || status >= 600) return;
  api_status_[status].fetch_add(1, std::memory_order_relaxed);
}

UpdateTotals UpdateCounters::Totals() const noexcept {
  UpdateTotals totals;
  for (size_t i = 0; i < kDyndnsWordSlots; ++i)
    totals.dyndns[i] = dyndns_[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < totals.api_status.size(); ++i)
    totals.api_status[i] = api_status_[i].load(std::memory_order_relaxed);
  return totals;
}

HttpReply UpdateCounters::CountingDyndnsReply(HttpReply reply) {
  return [this, reply = std::move(reply)](HttpResponse response) {
    CountDyndns(response.body);
    reply(std::move(response));
  };
}

HttpReply UpdateCounters::CountingApiReply(const HttpRequest& request, HttpReply reply) {
  if (request.method == "GET" || request.method == "HEAD") return reply;
  return [this, reply = std::move(reply)](HttpResponse response) {
    CountApi(response.status);
    reply(std::move(response));
  };
}

// ---- Rendering ----

std::string RenderMetrics(const MetricsSnapshot& s) {
  Exposition out;
  RenderDns(s.dns, out);
  RenderUpdates(s.dns, s.updates, out);
  RenderWriter(s.writer, out);
  out.Counter("updns_mail_delivered_total", "Mails the SMTP relay accepted.", s.mailer.delivered);
  out.Counter("updns_mail_failed_attempts_total",
              "Mail delivery attempts that failed and were deferred for a retry.",
              s.mailer.failed_attempts);
  out.Gauge("updns_mail_delivery_enabled", "1 when mail.smtp is set and the mailer runs.",
            s.mailer_enabled ? 1 : 0);
  out.Counter("updns_notify_sent_total", "NOTIFY messages sent, retries included.",
              s.notifier.sent);
  out.Counter("updns_notify_acknowledged_total", "NOTIFYs a secondary answered with NOERROR.",
              s.notifier.acknowledged);
  out.Counter("updns_notify_rejected_total",
              "NOTIFYs a secondary answered with an error rcode (refused; not retried).",
              s.notifier.rejected);
  out.Counter("updns_notify_failed_total", "NOTIFY sends the socket refused (retried).",
              s.notifier.failed);
  out.Counter("updns_notify_retries_total", "NOTIFYs sent again because none was answered.",
              s.notifier.retries);
  if (s.store) RenderStore(*s.store, out);
  return out.Take();
}

MetricsSnapshot TakeMetricsSnapshot(const MetricsSources& sources) {
  MetricsSnapshot s;
  for (const DnsCounters* loop : sources.loops) s.dns.Add(*loop);
  if (sources.updates) s.updates = sources.updates->Totals();
  if (sources.writer) s.writer = sources.writer->stats();
  if (sources.mailer) {
    s.mailer = sources.mailer->stats();
    s.mailer_enabled = sources.mailer->enabled();
  }
  if (sources.notifier) s.notifier = sources.notifier->stats();
  if (sources.store) {
    auto stats = sources.store->GetStats();
    if (stats.ok()) {
      s.store = *stats;
    } else {
      Log(LogLevel::kWarning, "metrics_store_stats_failed",
          {{"store", sources.store->path()}, {"error", stats.status()}});
    }
  }
  return s;
}

HttpResponse MetricsResponse(const MetricsSources& sources, const HttpRequest& request) {
  HttpResponse response;
  if (!sources.allow.empty()) {
    const auto* peer = reinterpret_cast<const sockaddr*>(&request.peer);
    bool allowed = false;
    for (const config::Prefix& prefix : sources.allow) allowed = allowed || prefix.Contains(peer);
    if (!allowed) {
      response.status = 403;
      response.body = "forbidden: " + request.peer_text + " is not in http.metrics_allow\n";
      return response;
    }
  }
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.headers.emplace_back("Allow", "GET");
    response.body = "method not allowed\n";
    return response;
  }
  response.content_type = std::string(kContentType);
  response.body = RenderMetrics(TakeMetricsSnapshot(sources));
  return response;
}

}  // namespace updns::server
