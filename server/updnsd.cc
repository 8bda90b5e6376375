// updnsd: the updns daemon. Runs in the foreground and logs to stderr.
#include <uv.h>

#include <pthread.h>
#include <sched.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <cstring>
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
    "                      and key), print any error, exit 0 or 1\n"
    "  -v, --verbose       also log debug messages\n"
    "  -h, --help          show this help\n"
    "      --version       print the version\n"
    "\n"
    "SIGINT and SIGTERM stop the daemon cleanly (exit status 0). SIGHUP reloads\n"
    "the HTTPS certificate and key (http.tls); on error the old ones stay.\n";

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

// Prometheus text exposition of the counters the daemon keeps.
updns::server::HttpResponse MetricsResponse(const updns::update::Writer::Stats& writer,
                                            const updns::server::Mailer::Stats& mailer,
                                            const updns::server::Notifier::Stats& notifier) {
  updns::server::HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    response.body += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
                     " counter\n" + name + " " + std::to_string(value) + "\n";
  };
  counter("updns_writer_commits_total", "Group commits of the writer.", writer.commits);
  counter("updns_writer_requests_total", "Requests the writer applied or failed.", writer.requests);
  counter("updns_writer_failed_commits_total", "Group commits that failed.", writer.failed_commits);
  counter("updns_mail_delivered_total", "Mails the SMTP relay accepted.", mailer.delivered);
  counter("updns_mail_failed_attempts_total", "Mail attempts deferred for a retry.",
          mailer.failed_attempts);
  counter("updns_notify_sent_total", "NOTIFY messages sent, retries included.", notifier.sent);
  counter("updns_notify_acknowledged_total", "NOTIFYs a secondary answered with NOERROR.",
          notifier.acknowledged);
  counter("updns_notify_rejected_total", "NOTIFYs a secondary answered with an error.",
          notifier.rejected);
  return response;
}

// --check: the config loader leaves the HTTPS files to the server, so they
// are loaded here too; a renewed certificate can be checked before SIGHUP.
int CheckOnly(const updns::config::Config& config) {
  if (config.http.tls_listen.empty()) return 0;
  auto tls =
      updns::server::TlsContext::Load({config.http.tls.cert, config.http.tls.key, "http.tls"});
  if (tls.ok()) return 0;
  std::fprintf(stderr, "%s\n", std::string(tls.status().message()).c_str());
  return 1;
}

// SIGHUP: the HTTPS certificate and key are read again, so a renewed
// certificate takes effect without a restart. `handle->data` is the
// HttpServer, or null when it has no HTTPS listener.
void OnReloadSignal(uv_signal_t* handle, int) {
  auto* http = static_cast<updns::server::HttpServer*>(handle->data);
  using updns::Log;
  using updns::LogLevel;
  if (http == nullptr) {
    Log(LogLevel::kInfo, "received SIGHUP: no HTTPS listener, nothing to reload");
    return;
  }
  Log(LogLevel::kInfo, "received SIGHUP, reloading the TLS certificate and key");
  if (updns::Status status = http->ReloadTls(); !status.ok()) {
    Log(LogLevel::kError, "TLS reload failed, still serving the previous certificate: %s",
        std::string(status.message()).c_str());
  }
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
    Log(LogLevel::kError, "%s", std::string(store.status().message()).c_str());
    return 1;
  }
  server::ImportConfiguredZoneFiles(*config, **store);

  // The writer is the daemon's only LMDB writer for requests; HTTP and
  // RFC 2136 updates go through it.
  update::Writer writer(**store, server::JournalLimitsOf(*config));
  auto policy = server::MakeDnsPolicy(*config);
  if (!policy.ok()) {
    Log(LogLevel::kError, "%s", std::string(policy.status().message()).c_str());
    return 1;
  }
  server::DnsWorkerOptions options;
  options.listen = config->server.listen;
  options.zones = server::ServedZoneNames(*config);
  options.tcp_idle_timeout_ms = config->server.tcp_idle_timeout_ms;
  options.tcp_max_connections = config->server.tcp_max_connections;
  options.udp_payload = config->server.udp_payload;
  options.policy = *policy;
  options.writer = &writer;
  if (config->server.rrl_rate > 0) {
    server::RrlOptions rrl;
    rrl.rate = config->server.rrl_rate;
    rrl.slip = config->server.rrl_slip;
    rrl.ipv4_prefix = config->server.rrl_ipv4_prefix;
    rrl.ipv6_prefix = config->server.rrl_ipv6_prefix;
    options.rrl = std::make_shared<server::ResponseRateLimiter>(rrl);
  }

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
      Log(LogLevel::kError, "%s", std::string(worker.status().message()).c_str());
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
        Log(LogLevel::kWarning,
            "zone %s has no data in the store (no SOA); import it with "
            "'updnsctl --config %s zone import ZONE FILE' or set its file:",
            zone::TextFromWireName(missing).c_str(), args.config.c_str());
      }
    }
  }
  // NOTIFY for every serial change, whoever made it.
  server::NotifierOptions notify_options;
  notify_options.retry_initial_ms = config->notify.retry_initial_ms;
  notify_options.retry_max_ms = config->notify.retry_max_ms;
  for (const config::ZoneConfig& zone : config->zones) {
    auto apex = zone::LowercaseWireNameFromText(zone.name);
    if (apex.ok() && !zone.notify.empty()) notify_options.zones.push_back({*apex, zone.notify});
  }
  auto notifier = server::Notifier::Create(**store, std::move(notify_options));
  if (!notifier.ok()) {
    Log(LogLevel::kError, "%s", std::string(notifier.status().message()).c_str());
    return 1;
  }
  // The mailer drains the outbox on its own thread.
  auto mailer = server::Mailer::Create(**store, config->mail);
  if (!mailer.ok()) {
    Log(LogLevel::kError, "%s", std::string(mailer.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<server::DyndnsService> dyndns;
  std::unique_ptr<server::ApiService> api;
  std::unique_ptr<server::HttpServer> http;
  if (config->http.enabled()) {
    update::DyndnsPolicy policy;
    policy.max_hosts = config->dyndns.max_hosts;
    policy.nochg_limit = config->dyndns.nochg_limit;
    policy.nochg_window = config->dyndns.nochg_window_seconds;
    policy.abuse_lock = config->dyndns.abuse_lock_seconds;
    std::map<std::string, uint32_t> host_ttls;
    for (const config::ZoneConfig& zone : config->zones) host_ttls[zone.name] = zone.host_ttl;
    // One failed-login budget for dyndns2 and the API: the same passwords.
    server::ThrottleOptions throttle_options;
    throttle_options.per_name = config->http.login_per_name;
    throttle_options.per_address = config->http.login_per_address;
    throttle_options.window_ms = uint64_t{config->http.login_window_seconds} * 1000;
    auto throttle = std::make_shared<server::LoginThrottle>(throttle_options);
    dyndns = std::make_unique<server::DyndnsService>(**store, writer, policy, std::move(host_ttls),
                                                     throttle);
    server::ApiServiceOptions api_options;
    for (const config::ZoneConfig& zone : config->zones)
      api_options.zones.push_back({zone.name, zone.host_ttl});
    api_options.session_ttl = config->api.session_ttl_seconds;
    api_options.reset_ttl = config->api.reset_ttl_seconds;
    api_options.move_ttl = config->api.move_ttl_seconds;
    api_options.reset_url = config->mail.reset_url;
    api_options.on_mail_queued = [mail = mailer->get()] { mail->Wake(); };
    api_options.throttle = throttle;
    api = std::make_unique<server::ApiService>(**store, writer, std::move(api_options));
    server::HttpServerOptions http_options;
    http_options.listen = config->http.listen;
    http_options.tls_listen = config->http.tls_listen;
    http_options.tls_cert = config->http.tls.cert;
    http_options.tls_key = config->http.tls.key;
    http_options.max_header_bytes = config->http.max_request_size;
    http_options.max_body_bytes = config->http.max_body_size;
    http_options.read_timeout_ms = config->http.read_timeout_ms;
    http_options.idle_timeout_ms = config->http.idle_timeout_ms;
    http_options.max_connections = config->http.max_connections;
    auto created = server::HttpServer::Create(
        http_options, [&dyndns, &api, &writer, &mailer, &notifier](const server::HttpRequest& request,
                                                         server::HttpReply reply) {
          if (request.path == "/nic/update" || request.path == "/nic/update/")
            return dyndns->Handle(request, std::move(reply));
          if (server::ApiService::Handles(request.path))
            return api->Handle(request, std::move(reply));
          if (request.path == "/metrics" && request.method == "GET")
            return reply(MetricsResponse(writer.stats(), (*mailer)->stats(), (*notifier)->stats()));
          server::HttpResponse response;
          response.status = 404;
          response.body = "not found\n";
          reply(std::move(response));
        });
    if (!created.ok()) {
      Log(LogLevel::kError, "%s", std::string(created.status().message()).c_str());
      return 1;
    }
    http = std::move(created).value();
  }
  writer.Start();
  (*mailer)->Start();
  (*notifier)->Start();
  if (http) http->Start();
  for (auto& worker : workers) worker->Start();
  for (const config::Endpoint& ep : config->http.listen)
    Log(LogLevel::kInfo, "listening on %s (http)", ep.text.c_str());
  for (const config::Endpoint& ep : config->http.tls_listen)
    Log(LogLevel::kInfo, "listening on %s (https)", ep.text.c_str());
  for (const config::Endpoint& ep : options.listen)
    Log(LogLevel::kInfo, "listening on %s (udp, tcp)", ep.text.c_str());
  Log(LogLevel::kInfo, "updnsd started: %zu zones, %u workers, store %s", options.zones.size(),
      config->server.workers, config->storage.path.c_str());

  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_signal_t sigint, sigterm, sighup;
  auto on_signal = [](uv_signal_t* handle, int signum) {
    Log(LogLevel::kInfo, "received %s, stopping", strsignal(signum));
    uv_stop(handle->loop);
  };
  uv_signal_init(&loop, &sigint);
  uv_signal_init(&loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(&loop, &sighup);
  sighup.data = config->http.tls_listen.empty() ? nullptr : http.get();
  uv_signal_start(&sighup, OnReloadSignal, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);

  // Stop taking requests first, then let the writer finish what it has.
  if (http) http->Stop();
  writer.Stop();
  (*mailer)->Stop();
  (*notifier)->Stop();
  for (auto& worker : workers) worker->Stop();
  workers.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  Log(LogLevel::kInfo, "updnsd stopped");
  return 0;
}
