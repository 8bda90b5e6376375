// Start-up steps both programs share (opening the configured store, loading
// the configured master files), and the config turned into the settings of
// the daemon's parts, the same way at start and on reload (SIGHUP).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "server/dns_worker.h"
#include "server/http_server.h"
#include "server/notifier.h"
#include "server/rrl.h"
#include "server/throttle.h"
#include "storage/store.h"
#include "update/accounts.h"
#include "update/dyndns2.h"
#include "zone/journal.h"

namespace updns::server {

Result<std::unique_ptr<storage::Store>> OpenStore(const config::Config& config);

// storage.journal_entries and storage.journal_size.
zone::JournalLimits JournalLimitsOf(const config::Config& config);

// The configured zones as lowercased wire-format names.
std::vector<std::string> ServedZoneNames(const config::Config& config);

// Imports every zone's `file:` whose content changed since its last import.
// A file that fails to load is reported and skipped: the zone keeps serving
// what the store already holds. Returns how many zones failed.
int ImportConfiguredZoneFiles(const config::Config& config, storage::Store& store);

// What the query loops serve and enforce: zones, keys and ACLs (the policy),
// TCP limits and RRL. `rrl` is the limiter to use when server.rrl_rate > 0
// (shared by every loop; null = a new one from the config). Not set here:
// writer and cpu.
Result<DnsWorkerOptions> DnsWorkerOptionsOf(const config::Config& config,
                                            std::shared_ptr<ResponseRateLimiter> rrl = nullptr);
RrlOptions RrlOptionsOf(const config::ServerConfig& server);

// Each zone's NOTIFY targets and signing key (zones without targets left
// out) and the resend backoff. Errors name a key that TSIG cannot use.
Result<NotifierOptions> NotifierOptionsOf(const config::Config& config);

// The HTTP service's listeners, TLS files and limits.
HttpServerOptions HttpServerOptionsOf(const config::Config& config);
// http.login_throttle: one budget for dyndns2 and the API logins.
ThrottleOptions ThrottleOptionsOf(const config::Config& config);

update::DyndnsPolicy DyndnsPolicyOf(const config::Config& config);
// Host TTL per zone name (lowercase, no final dot).
std::map<std::string, uint32_t> HostTtlsOf(const config::Config& config);
std::vector<update::HostZone> HostZonesOf(const config::Config& config);

// The settings a reload cannot apply, as "key: why", where `fresh`
// differs from `running`: sockets, threads and the store.
std::vector<std::string> ChangesNeedingRestart(const config::Config& running,
                                               const config::Config& fresh);

}  // namespace updns::server
