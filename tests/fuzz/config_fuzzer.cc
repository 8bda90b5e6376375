// The YAML configuration: config::ParseConfig, as `updnsd --config` and
// `--check` use it. Any text gives a Config or an Invalid status whose
// message names the source, and a Config keeps the documented bounds.
#include <string>
#include <string_view>

#include "config/config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace updns::fuzz {

int FuzzConfig(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSource = "fuzz.yaml";
  auto config = config::ParseConfig(text, kSource);
  if (!config.ok()) {
    // Every problem, an unreadable mail.password_file too, is Invalid.
    Check(config.status().IsInvalid(), "a refused config is Invalid");
    Check(config.status().message().substr(0, kSource.size()) == kSource,
          "a config error names the file");
    return 0;
  }
  const config::Config& c = *config;
  Check(!c.server.listen.empty() && c.server.workers > 0, "listen and workers get defaults");
  Check(c.server.udp_payload >= 512 && c.server.udp_payload <= 4096, "udp_payload in 512..4096");
  Check(c.storage.map_size >= (uint64_t{1} << 20), "map_size at least 1MiB");
  for (const config::Endpoint& ep : c.server.listen) {
    Check(ep.family() == AF_INET || ep.family() == AF_INET6, "a listen address is IPv4 or IPv6");
  }
  for (const config::Endpoint& ep : c.http.listen) {
    Check(ep.family() == AF_INET || ep.family() == AF_INET6, "an HTTP address is IPv4 or IPv6");
  }
  for (const config::ZoneConfig& zone : c.zones) {
    Check(!zone.name.empty(), "a zone has a name");
    Check(zone.host_ttl <= 86400, "host_ttl in 0..86400");
    Check(c.FindZone(zone.name) != nullptr, "every configured zone is found by its name");
  }
  return 0;
}

}  // namespace updns::fuzz
