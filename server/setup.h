// Start-up steps both programs share: opening the configured store and
// loading the configured master files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "storage/store.h"
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

}  // namespace updns::server
