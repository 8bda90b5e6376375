// The daemon's configuration: one YAML file, loaded and validated here.
// No yaml-cpp type leaves this folder; callers see plain structs.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace updns::config {

// An address to listen on or send to: "127.0.0.1@5353", "::1@5353", or an
// address alone (the default port of the context is used).
struct Endpoint {
  std::string text;  // as written in the file, for messages
  sockaddr_storage address{};
  socklen_t address_length = 0;
  int family() const { return address.ss_family; }
  uint16_t port() const;
};

struct ServerConfig {
  std::vector<Endpoint> listen;  // DNS over UDP and TCP; default 127.0.0.1@53
  unsigned workers = 0;          // query loops; 0 in the file is invalid, absent = cores
  unsigned tcp_idle_timeout_ms = 10000;
  unsigned tcp_max_connections = 256;  // per worker loop
  uint16_t udp_payload = 1232;         // our EDNS payload size, 512..4096
};

struct StorageConfig {
  std::string path = "./var/db";             // LMDB environment directory
  uint64_t map_size = uint64_t{1} << 30;     // bytes; "1GiB", "512MiB", 1048576
};

struct ZoneConfig {
  std::string name;  // lowercased, no trailing dot except for the root "."
  std::string file;  // optional master file, relative to the working directory
  int line = 0;      // where the zone is declared, for messages
};

struct Config {
  std::string source;  // the file it came from
  ServerConfig server;
  StorageConfig storage;
  std::vector<ZoneConfig> zones;

  // nullptr when `name` (any case, trailing dot or not) is not configured.
  const ZoneConfig* FindZone(std::string_view name) const;
};

// Reads and validates a file. Errors read "FILE:LINE: key 'a.b': what is wrong"
// and name the first problem found; list indexes count from 0 ("zones[0]").
// Absent keys and sections take the defaults above. A file that cannot be read
// is an IoError; everything else is Invalid.
Result<Config> LoadConfig(const std::string& path);

// Same from text; `source` names it in messages.
Result<Config> ParseConfig(std::string_view text, std::string_view source);

// Parses "ADDRESS[@PORT]" (IPv4 or IPv6, no brackets needed).
Result<Endpoint> ParseEndpoint(std::string_view text, uint16_t default_port);

}  // namespace updns::config
