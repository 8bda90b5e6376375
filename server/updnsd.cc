// updnsd: the updns daemon. Runs in the foreground and logs to stderr.
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "config/config.h"
#include "server/api_service.h"
#include "server/dns_worker.h"
#include "server/dyndns_service.h"
#include "server/http_server.h"
#include "server/mailer.h"
#include "server/metrics.h"
#include "server/notifier.h"
#include "server/setup.h"
#include "server/tls.h"
#include "update/writer.h"
#include "zone/name.h"
#include "zone/responder.h"

namespace {

constexpr const char* kUsage =
    "usage: updnsd --config FILE [--check]\n"
    "\n"
    "Runs the updns authoritative DNS server in the foreground, logging to stderr.\n"
    "\n"
    "  -c, --config FILE   the YAML configuration (required)\n"
    "      --check         validate the configuration (and load the HTTPS certificate\n"
    "                      and key, and libcurl when mail.smtp is set), print any\n"
    "                      error, exit 0 or 1\n"
    "  -v, --verbose       also log debug messages\n"
    "  -h, --help          show this help\n"
    "      --version       print the version\n"
    "\n"
    "SIGINT and SIGTERM stop the daemon cleanly (exit status 0). SIGHUP re-reads\n"
    "the configuration: zones, keys, ACLs, NOTIFY targets and backoff, DNS and\n"
    "HTTP limits, the login throttle, journal limits, mail, the dyndns and API\n"
    "settings and the HTTPS certificate and key apply at once; an invalid file\n"
    "is logged and the running configuration kept; settings that need a\n"
    "restart (listeners, threads, the store) are named.\n";

struct Arguments {
  std::string config;
  bool check = false;
  bool verbose = false;
};

// Returns the exit status to leave with, or -1 to go on.
int ParseArguments(int argc, char** argv, Arguments& args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) {
      args.config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      args.config = a.substr(9);
    } else if (a == "--check") {
      args.check = true;
    } else if (a == "--verbose" || a == "-v") {
      args.verbose = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::puts("updnsd 0.1.0");
      return 0;
    } else {
      std::fprintf(stderr, "updnsd: unknown argument '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (args.config.empty()) {
    std::fprintf(stderr, "updnsd: --config FILE is required\n\n%s", kUsage);
    return 2;
  }
  return -1;
}

// --check: the config loader leaves the HTTPS files to the server, so they
// are loaded here too (a renewed certificate can be checked before SIGHUP),
// and libcurl, which the mailer only opens once it runs.
int CheckOnly(const updns::config::Config& config) {
  if (!config.mail.smtp.empty()) {
    if (updns::Status s = updns::server::LoadSmtpClient(); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  if (config.http.tls_listen.empty()) return 0;
  auto tls =
      updns::server::TlsContext::Load({config.http.tls.cert, config.http.tls.key, "http.tls"});
  if (tls.ok()) return 0;
  std::fprintf(stderr, "%s\n", std::string(tls.status().message()).c_str());
  return 1;
}

// The API settings a reload may change (not the mailer hook; the throttle is
// shared with dyndns2 and reconfigured on its own).
updns::server::ApiServiceOptions ApiOptionsOf(const updns::config::Config& config) {
  updns::server::ApiServiceOptions options;
  options.zones = updns::server::HostZonesOf(config);
  options.session_ttl = config.api.session_ttl_seconds;
  options.reset_ttl = config.api.reset_ttl_seconds;
  options.move_ttl = config.api.move_ttl_seconds;
  options.reset_url = config.mail.reset_url;
  return options;
}

// SIGHUP: re-reads the config file and hands each running part its new
// settings. Nothing is applied unless the whole file is valid. Settings
// bound at start (sockets, threads, the store) are compared with the
// config the daemon started with and named when they differ.
struct Reloader {
  std::string path;
  const updns::config::Config started;
  updns::storage::Store& store;
  updns::update::Writer& writer;
  std::vector<std::unique_ptr<updns::server::DnsWorker>>& workers;
  updns::server::Notifier& notifier;
  updns::server::Mailer& mailer;
  updns::server::LoginThrottle* throttle;  // null without HTTP
  updns::server::DyndnsService* dyndns;  // null without HTTP
  updns::server::ApiService* api;        // null without HTTP
  updns::server::HttpServer* http;       // null without HTTP
  updns::server::MetricsSources& metrics;  // read on the HTTP loop
  std::optional<updns::config::Config> running;  // the last applied; `started` until then
  std::shared_ptr<updns::server::ResponseRateLimiter> rrl;  // kept while its settings hold

  void Reload();
};

void Reloader::Reload() {
  using namespace updns;
  Log(LogLevel::kInfo, "reloading", {{"signal", "SIGHUP"}, {"config", path}});
  auto fresh = config::LoadConfig(path);
  if (!fresh.ok()) {
    Log(LogLevel::kError, "reload_refused",
        {{"config", path}, {"error", fresh.status()}, {"msg", "the running configuration stays"}});
    return;
  }
  const config::Config& before = running ? *running : started;
  // One limiter table for every loop; its counts survive a reload that
  // leaves its settings alone.
  if (server::RrlOptionsOf(before.server) != server::RrlOptionsOf(fresh->server)) rrl = nullptr;
  auto options = server::DnsWorkerOptionsOf(*fresh, rrl);
  auto notify_options = server::NotifierOptionsOf(*fresh);
  if (!options.ok() || !notify_options.ok()) {
    Log(LogLevel::kError, "reload_refused",
        {{"config", path},
         {"error", !options.ok() ? options.status() : notify_options.status()},
         {"msg", "the running configuration stays"}});
    return;
  }
  rrl = options->rrl;
  for (const std::string& change : server::ChangesNeedingRestart(started, *fresh))
    Log(LogLevel::kWarning, "reload_needs_restart",
        {{"config", path}, {"change", change}, {"msg", "restart updnsd to apply it"}});

  // New or edited master files first, so that a zone added with its file
  // answers from the first query that reaches it.
  int failed = server::ImportConfiguredZoneFiles(*fresh, store);
  writer.SetJournalLimits(server::JournalLimitsOf(*fresh));
  for (auto& worker : workers) worker->Reconfigure(*options);
  notifier.Reconfigure(std::move(notify_options).value());
  mailer.Reconfigure(fresh->mail);
  if (throttle) throttle->SetOptions(server::ThrottleOptionsOf(*fresh));
  if (dyndns) dyndns->Reconfigure(server::DyndnsPolicyOf(*fresh), server::HostTtlsOf(*fresh));
  if (api) api->Reconfigure(ApiOptionsOf(*fresh));
  if (http) {
    http->SetLimits(server::HttpServerOptionsOf(*fresh));
    http->Post([&metrics = metrics, allow = fresh->http.metrics_allow] { metrics.allow = allow; });
  }
  // A renewed certificate; on error the previous one keeps serving.
  if (http && !started.http.tls_listen.empty()) {
    if (Status status = http->ReloadTls(); !status.ok()) {
      Log(LogLevel::kError, "tls_reload_failed",
          {{"key", "http.tls"}, {"error", status}, {"msg", "still serving the previous certificate"}});
    }
  }

  size_t added = 0, removed = 0;
  for (const config::ZoneConfig& zone : fresh->zones) added += before.FindZone(zone.name) == nullptr;
  for (const config::ZoneConfig& zone : before.zones) removed += fresh->FindZone(zone.name) == nullptr;
  Log(LogLevel::kInfo, "reloaded",
      {{"config", path},
       {"zones", fresh->zones.size()},
       {"added", added},
       {"removed", removed},
       {"keys", fresh->keys.size()},
       {"zone_files_failed", failed}});
  running = std::move(fresh).value();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace updns;
  Arguments args;
  if (int rc = ParseArguments(argc, argv, args); rc >= 0) return rc;

  auto config = config::LoadConfig(args.config);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (args.check) return CheckOnly(*config);
  if (args.verbose) SetLogLevel(LogLevel::kDebug);
  // A client that resets its connection must cost an error code, not the process.
  signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM/SIGHUP stay blocked until the main loop can handle them;
  // threads started meanwhile inherit the mask, so the signal always reaches
  // the main thread's handler and a stop request during start-up is not lost
  // (nor does an early SIGHUP kill the daemon).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto store = server::OpenStore(*config);
  if (!store.ok()) {
    Log(LogLevel::kError, "store_open_failed",
        {{"key", "storage.path"}, {"path", config->storage.path}, {"error", store.status()}});
    return 1;
  }
  server::ImportConfiguredZoneFiles(*config, **store);

  // The writer is the daemon's only LMDB writer for requests; HTTP and
  // RFC 2136 updates go through it.
  update::Writer writer(**store, server::JournalLimitsOf(*config));
  auto worker_options = server::DnsWorkerOptionsOf(*config);
  if (!worker_options.ok()) {
    Log(LogLevel::kError, "dns_policy_failed",
        {{"config", args.config}, {"error", worker_options.status()}});
    return 1;
  }
  server::DnsWorkerOptions& options = *worker_options;
  options.writer = &writer;

  // With cpu_affinity, loop i runs on the i-th CPU this process may use.
  std::vector<int> cpus;
  if (config->server.cpu_affinity) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
      }
    }
  }
  std::vector<std::unique_ptr<server::DnsWorker>> workers;
  for (unsigned i = 0; i < config->server.workers; ++i) {
    options.cpu = cpus.empty() ? -1 : cpus[i % cpus.size()];
    auto worker = server::DnsWorker::Create(**store, options, static_cast<int>(i));
    if (!worker.ok()) {
      Log(LogLevel::kError, "dns_listen_failed",
          {{"key", "server.listen"}, {"error", worker.status()}});
      return 1;
    }
    workers.push_back(std::move(worker).value());
  }
  {
    // Report what will be served: a configured zone that is not in the store
    // answers REFUSED, which is worth a line at start.
    auto responder = zone::Responder::Create(**store, {options.zones, options.udp_payload});
    if (responder.ok()) {
      for (const std::string& missing : (*responder)->zone_index().missing()) {
        Log(LogLevel::kWarning, "zone_missing",
            {{"zone", zone::TextFromWireName(missing)},
             {"config", args.config},
             {"msg",
              "no data in the store (no SOA); import it with 'updnsctl --config FILE "
              "zone import ZONE FILE' or set the zone's file:"}});
      }
    }
  }
  // NOTIFY for every serial change, whoever made it.
  auto notify_options = server::NotifierOptionsOf(*config);
  if (!notify_options.ok()) {
    Log(LogLevel::kError, "notifier_failed", {{"error", notify_options.status()}});
    return 1;
  }
  auto notifier = server::Notifier::Create(**store, std::move(notify_options).value());
  if (!notifier.ok()) {
    Log(LogLevel::kError, "notifier_failed", {{"error", notifier.status()}});
    return 1;
  }
  // The mailer drains the outbox on its own thread.
  server::Mailer mailer(**store, config->mail);
  // Declared before the services: replies they still hold count into it.
  server::UpdateCounters update_counters;
  server::MetricsSources metrics{.writer = &writer,
                                 .mailer = &mailer,
                                 .notifier = notifier->get(),
                                 .store = store->get(),
                                 .updates = &update_counters,
                                 .allow = config->http.metrics_allow};
  for (const auto& worker : workers) metrics.loops.push_back(&worker->counters());
  std::shared_ptr<server::LoginThrottle> throttle;  // null without HTTP
  std::unique_ptr<server::DyndnsService> dyndns;
  std::unique_ptr<server::ApiService> api;
  std::unique_ptr<server::HttpServer> http;
  if (config->http.enabled()) {
    // One failed-login budget for dyndns2 and the API: the same passwords.
    throttle = std::make_shared<server::LoginThrottle>(server::ThrottleOptionsOf(*config));
    dyndns = std::make_unique<server::DyndnsService>(**store, writer, server::DyndnsPolicyOf(*config),
                                                     server::HostTtlsOf(*config), throttle);
    server::ApiServiceOptions api_options = ApiOptionsOf(*config);
    api_options.on_mail_queued = [mail = &mailer] { mail->Wake(); };
    api_options.throttle = throttle;
    api = std::make_unique<server::ApiService>(**store, writer, api_options);
    server::HttpServerOptions http_options = server::HttpServerOptionsOf(*config);
    auto created = server::HttpServer::Create(
        http_options, [&dyndns, &api, &update_counters, &metrics](
                          const server::HttpRequest& request, server::HttpReply reply) {
          if (request.path == "/nic/update" || request.path == "/nic/update/")
            return dyndns->Handle(request, update_counters.CountingDyndnsReply(std::move(reply)));
          if (server::ApiService::Handles(request.path))
            return api->Handle(request,
                               update_counters.CountingApiReply(request, std::move(reply)));
          if (request.path == "/metrics") return reply(server::MetricsResponse(metrics, request));
          server::HttpResponse response;
          response.status = 404;
          response.body = "not found\n";
          reply(std::move(response));
        });
    if (!created.ok()) {
      Log(LogLevel::kError, "http_listen_failed",
          {{"key", "http.listen"}, {"error", created.status()}});
      return 1;
    }
    http = std::move(created).value();
  }
  writer.Start();
  mailer.Start();
  (*notifier)->Start();
  if (http) http->Start();
  for (auto& worker : workers) worker->Start();
  for (const config::Endpoint& ep : config->http.listen)
    Log(LogLevel::kInfo, "listening", {{"addr", ep.text}, {"proto", "http"}});
  for (const config::Endpoint& ep : config->http.tls_listen)
    Log(LogLevel::kInfo, "listening", {{"addr", ep.text}, {"proto", "https"}});
  for (const config::Endpoint& ep : options.listen) {
    Log(LogLevel::kInfo, "listening", {{"addr", ep.text}, {"proto", "udp"}});
    Log(LogLevel::kInfo, "listening", {{"addr", ep.text}, {"proto", "tcp"}});
  }
  Log(LogLevel::kInfo, "started",
      {{"zones", options.zones.size()},
       {"workers", config->server.workers},
       {"store", config->storage.path},
       {"config", args.config}});

  // The store into the page cache, next to the queries, which do not wait
  // for it: after a reboot they would otherwise read it a page at a time.
  std::atomic<bool> stop_prefetch{false};
  std::thread prefetch;
  if (config->storage.prefetch) {
    prefetch = std::thread([&store = **store, &stop_prefetch] {
      // Behind the queries for the CPU and the disk: nice 19 and the idle
      // I/O class (ioprio_set(2); glibc has no wrapper) for this thread only.
      // The systemd unit's filter refuses both (@resources, EPERM); there it
      // reads at normal priority, for the few seconds a cold store takes.
      const pid_t self = static_cast<pid_t>(::syscall(SYS_gettid));
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(self), 19);
      constexpr int kIoprioWhoProcess = 1, kIoprioClassIdle = 3, kIoprioClassShift = 13;
      ::syscall(SYS_ioprio_set, kIoprioWhoProcess, self, kIoprioClassIdle << kIoprioClassShift);
      auto begin = std::chrono::steady_clock::now();
      auto read = store.Prefetch(stop_prefetch);
      if (!read.ok()) {
        Log(LogLevel::kWarning, "prefetch_failed",
            {{"key", "storage.prefetch"}, {"error", read.status()}});
        return;
      }
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - begin);
      Log(LogLevel::kInfo, "prefetched",
          {{"bytes", *read}, {"ms", took.count()}, {"stopped", stop_prefetch.load()}});
    });
  }

  Reloader reloader{args.config,  *config,     **store,   writer,     workers,
                    **notifier,    mailer,      throttle.get(), dyndns.get(), api.get(),
                    http.get(),    metrics};
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_signal_t sigint, sigterm, sighup;
  auto on_signal = [](uv_signal_t* handle, int signum) {
    Log(LogLevel::kInfo, "stopping", {{"signal", sigabbrev_np(signum)}});
    uv_stop(handle->loop);
  };
  uv_signal_init(&loop, &sigint);
  uv_signal_init(&loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(&loop, &sighup);
  sighup.data = &reloader;
  uv_signal_start(
      &sighup, [](uv_signal_t* handle, int) { static_cast<Reloader*>(handle->data)->Reload(); },
      SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);

  stop_prefetch = true;
  if (prefetch.joinable()) prefetch.join();
  // Stop taking requests first, then let the writer finish what it has.
  if (http) http->Stop();
  writer.Stop();
  mailer.Stop();
  (*notifier)->Stop();
  for (auto& worker : workers) worker->Stop();
  workers.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  Log(LogLevel::kInfo, "stopped");
  return 0;
}
