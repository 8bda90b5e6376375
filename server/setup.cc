#include "server/setup.h"

#include "common/log.h"
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

}  // namespace updns::server
