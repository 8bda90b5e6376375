#include "server/setup.h"

#include "common/log.h"
#include "server/dns_control.h"
#include "zone/name.h"
#include "zone/zone_file.h"

namespace updns::server {

Result<std::unique_ptr<storage::Store>> OpenStore(const config::Config& config) {
  storage::Options options;
  options.path = config.storage.path;
  options.map_size = config.storage.map_size;
  return storage::Store::Open(options);
}

std::vector<std::string> ServedZoneNames(const config::Config& config) {
  std::vector<std::string> names;
  for (const config::ZoneConfig& zone : config.zones) {
    auto wire = zone::LowercaseWireNameFromText(zone.name);
    if (!wire.ok()) continue;  // the config loader already refused these
    names.push_back(std::move(wire).value());
  }
  return names;
}

zone::JournalLimits JournalLimitsOf(const config::Config& config) {
  return {config.storage.journal_max_entries, config.storage.journal_max_bytes};
}

int ImportConfiguredZoneFiles(const config::Config& config, storage::Store& store) {
  int failed = 0;
  for (const config::ZoneConfig& zone : config.zones) {
    if (zone.file.empty()) continue;
    auto result = zone::ImportZoneFile(store, zone.name, zone.file, /*only_if_changed=*/true,
                                       zone.host_ttl, JournalLimitsOf(config));
    if (!result.ok()) {
      Log(LogLevel::kError, "zone_load_failed",
          {{"zone", zone.name},
           {"file", zone.file},
           {"error", result.status()},
           {"msg", "serving the data the store already holds"}});
      ++failed;
    } else if (!result->skipped) {
      Log(LogLevel::kInfo, "zone_loaded",
          {{"zone", zone.name},
           {"file", zone.file},
           {"records", result->records},
           {"names", result->nodes}});
    }
  }
  return failed;
}

RrlOptions RrlOptionsOf(const config::ServerConfig& server) {
  RrlOptions rrl;
  rrl.rate = server.rrl_rate;
  rrl.slip = server.rrl_slip;
  rrl.ipv4_prefix = server.rrl_ipv4_prefix;
  rrl.ipv6_prefix = server.rrl_ipv6_prefix;
  return rrl;
}

Result<DnsWorkerOptions> DnsWorkerOptionsOf(const config::Config& config,
                                            std::shared_ptr<ResponseRateLimiter> rrl) {
  auto policy = MakeDnsPolicy(config);
  if (!policy.ok()) return policy.status();
  DnsWorkerOptions options;
  options.listen = config.server.listen;
  options.zones = ServedZoneNames(config);
  options.tcp_idle_timeout_ms = config.server.tcp_idle_timeout_ms;
  options.tcp_max_connections = config.server.tcp_max_connections;
  options.udp_payload = config.server.udp_payload;
  options.policy = *policy;
  if (config.server.rrl_rate > 0) {
    options.rrl = rrl ? std::move(rrl)
                      : std::make_shared<ResponseRateLimiter>(RrlOptionsOf(config.server));
  }
  return options;
}

Result<NotifierOptions> NotifierOptionsOf(const config::Config& config) {
  NotifierOptions options;
  options.retry_initial_ms = config.notify.retry_initial_ms;
  options.retry_max_ms = config.notify.retry_max_ms;
  for (const config::ZoneConfig& zone : config.zones) {
    auto apex = zone::LowercaseWireNameFromText(zone.name);
    if (!apex.ok() || zone.notify.empty()) continue;
    NotifierOptions::Zone notify{*apex, zone.notify, std::nullopt};
    if (!zone.notify_key.empty()) {
      const config::KeyConfig* key = config.FindKey(zone.notify_key);
      if (key == nullptr)
        return Status::Invalid("zone '" + zone.name + "': notify_key '" + zone.notify_key +
                               "' is not defined");
      auto tsig_key = TsigKeyOf(*key);
      if (!tsig_key.ok()) return tsig_key.status();
      notify.key = std::move(tsig_key).value();
    }
    options.zones.push_back(std::move(notify));
  }
  return options;
}

ThrottleOptions ThrottleOptionsOf(const config::Config& config) {
  ThrottleOptions options;
  options.per_name = config.http.login_per_name;
  options.per_address = config.http.login_per_address;
  options.window_ms = uint64_t{config.http.login_window_seconds} * 1000;
  return options;
}

HttpServerOptions HttpServerOptionsOf(const config::Config& config) {
  HttpServerOptions options;
  options.listen = config.http.listen;
  options.tls_listen = config.http.tls_listen;
  options.tls_cert = config.http.tls.cert;
  options.tls_key = config.http.tls.key;
  options.max_header_bytes = config.http.max_request_size;
  options.max_body_bytes = config.http.max_body_size;
  options.read_timeout_ms = config.http.read_timeout_ms;
  options.idle_timeout_ms = config.http.idle_timeout_ms;
  options.max_connections = config.http.max_connections;
  return options;
}

update::DyndnsPolicy DyndnsPolicyOf(const config::Config& config) {
  update::DyndnsPolicy policy;
  policy.max_hosts = config.dyndns.max_hosts;
  policy.nochg_limit = config.dyndns.nochg_limit;
  policy.nochg_window = config.dyndns.nochg_window_seconds;
  policy.abuse_lock = config.dyndns.abuse_lock_seconds;
  return policy;
}

std::map<std::string, uint32_t> HostTtlsOf(const config::Config& config) {
  std::map<std::string, uint32_t> ttls;
  for (const config::ZoneConfig& zone : config.zones) ttls[zone.name] = zone.host_ttl;
  return ttls;
}

std::vector<update::HostZone> HostZonesOf(const config::Config& config) {
  std::vector<update::HostZone> zones;
  for (const config::ZoneConfig& zone : config.zones) zones.push_back({zone.name, zone.host_ttl});
  return zones;
}

std::vector<std::string> ChangesNeedingRestart(const config::Config& running,
                                               const config::Config& fresh) {
  std::vector<std::string> changes;
  auto note = [&changes](bool changed, const char* key, const char* why) {
    if (changed) changes.push_back(std::string(key) + ": " + why);
  };
  const char* kSockets = "the sockets are bound at start";
  const char* kBuiltOnce = "set when the daemon starts";
  note(!config::SameEndpoints(running.server.listen, fresh.server.listen), "server.listen",
       kSockets);
  note(running.server.workers != fresh.server.workers, "server.workers", "one thread per loop, started once");
  note(running.server.cpu_affinity != fresh.server.cpu_affinity, "server.cpu_affinity", kBuiltOnce);
  note(running.server.udp_payload != fresh.server.udp_payload, "server.udp_payload", kBuiltOnce);
  note(running.storage.path != fresh.storage.path, "storage.path", "the store is opened at start");
  note(running.storage.map_size != fresh.storage.map_size, "storage.map_size",
       "the store is opened at start");
  note(running.storage.prefetch != fresh.storage.prefetch, "storage.prefetch",
       "the store is read once, at start");
  note(!config::SameEndpoints(running.http.listen, fresh.http.listen), "http.listen", kSockets);
  note(!config::SameEndpoints(running.http.tls_listen, fresh.http.tls_listen), "http.tls_listen",
       kSockets);
  note(running.http.tls.cert != fresh.http.tls.cert || running.http.tls.key != fresh.http.tls.key,
       "http.tls file names",
       "SIGHUP re-reads the files named at start (replace their contents to renew)");
  return changes;
}

}  // namespace updns::server
