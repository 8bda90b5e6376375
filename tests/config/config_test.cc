#include "config/config.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>

namespace updns::config {
namespace {

constexpr std::string_view kSource = "test.yaml";

// Parses `text` expecting a failure; returns the message.
std::string ErrorOf(std::string_view text) {
  Result<Config> config = ParseConfig(text, kSource);
  if (config.ok()) return "<parsed without error>";
  EXPECT_TRUE(config.status().IsInvalid()) << config.status().message();
  return std::string(config.status().message());
}

// The message starts with "test.yaml:LINE: " and contains every part.
testing::AssertionResult Says(const std::string& message, int line,
                              std::initializer_list<std::string_view> parts) {
  std::string prefix = std::string(kSource) + ":" + std::to_string(line) + ": ";
  if (message.rfind(prefix, 0) != 0) {
    return testing::AssertionFailure() << "'" << message << "' does not start with '" << prefix << "'";
  }
  for (std::string_view part : parts) {
    if (message.find(part) == std::string::npos) {
      return testing::AssertionFailure() << "'" << message << "' lacks '" << part << "'";
    }
  }
  return testing::AssertionSuccess();
}

std::string Address(const Endpoint& endpoint) {
  char text[INET6_ADDRSTRLEN] = {};
  if (endpoint.family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(endpoint.address).sin_addr, text, sizeof(text));
  } else if (endpoint.family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(endpoint.address).sin6_addr, text,
              sizeof(text));
  }
  return text;
}

unsigned DefaultWorkers() { return std::max(1u, std::thread::hardware_concurrency()); }

// A temporary file removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(std::string_view contents)
      : path_(testing::TempDir() + "updns_config_test_" + std::to_string(getpid()) + "_" +
              testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml") {
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- Valid files ------------------------------------------------------------

TEST(ParseConfigTest, FullFile) {
  Result<Config> config = ParseConfig(
      "# updns test config\n"                                        // 1
      "server:\n"                                                    // 2
      "  listen: [\"127.0.0.1@5353\", \"::1@5353\", \"0.0.0.0\"]\n"  // 3
      "  workers: 3\n"                                               // 4
      "  tcp_idle_timeout: 2500\n"                                   // 5
      "  tcp_max_connections: 64\n"                                  // 6
      "  udp_payload: 1400\n"                                        // 7
      "storage:\n"                                                   // 8
      "  path: /var/lib/updns\n"                                     // 9
      "  map_size: 512MiB\n"                                         // 10
      "zones:\n"                                                     // 11
      "  - name: Dyn.Example.COM.\n"                                 // 12
      "    file: zones/dyn.example.com.zone\n"                       // 13
      "  - name: example.org\n",                                     // 14
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->source, "test.yaml");

  const ServerConfig& server = config->server;
  ASSERT_EQ(server.listen.size(), 3u);
  EXPECT_EQ(server.listen[0].text, "127.0.0.1@5353");
  EXPECT_EQ(server.listen[0].family(), AF_INET);
  EXPECT_EQ(Address(server.listen[0]), "127.0.0.1");
  EXPECT_EQ(server.listen[0].port(), 5353);
  EXPECT_EQ(server.listen[1].family(), AF_INET6);
  EXPECT_EQ(Address(server.listen[1]), "::1");
  EXPECT_EQ(server.listen[1].port(), 5353);
  EXPECT_EQ(Address(server.listen[2]), "0.0.0.0");
  EXPECT_EQ(server.listen[2].port(), 53);
  EXPECT_EQ(server.workers, 3u);
  EXPECT_EQ(server.tcp_idle_timeout_ms, 2500u);
  EXPECT_EQ(server.tcp_max_connections, 64u);
  EXPECT_EQ(server.udp_payload, 1400);

  EXPECT_EQ(config->storage.path, "/var/lib/updns");
  EXPECT_EQ(config->storage.map_size, uint64_t{512} << 20);

  ASSERT_EQ(config->zones.size(), 2u);
  EXPECT_EQ(config->zones[0].name, "dyn.example.com");
  EXPECT_EQ(config->zones[0].file, "zones/dyn.example.com.zone");
  EXPECT_EQ(config->zones[0].line, 12);
  EXPECT_EQ(config->zones[1].name, "example.org");
  EXPECT_EQ(config->zones[1].file, "");
  EXPECT_EQ(config->zones[1].line, 14);
}

TEST(ParseConfigTest, DefaultsWhenSectionsAreAbsent) {
  Result<Config> config = ParseConfig("zones:\n  - name: example.com\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const ServerConfig& server = config->server;
  ASSERT_EQ(server.listen.size(), 1u);
  EXPECT_EQ(server.listen[0].text, "127.0.0.1@53");
  EXPECT_EQ(Address(server.listen[0]), "127.0.0.1");
  EXPECT_EQ(server.listen[0].port(), 53);
  EXPECT_EQ(server.workers, DefaultWorkers());
  EXPECT_EQ(server.tcp_idle_timeout_ms, 10000u);
  EXPECT_EQ(server.tcp_max_connections, 256u);
  EXPECT_EQ(server.udp_payload, 1232);
  EXPECT_EQ(config->storage.path, "./var/db");
  EXPECT_EQ(config->storage.map_size, uint64_t{1} << 30);
}

TEST(ParseConfigTest, DefaultsWithinPresentSections) {
  Result<Config> config = ParseConfig("server:\n  udp_payload: 512\nstorage:\nzones: []\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server.udp_payload, 512);
  ASSERT_EQ(config->server.listen.size(), 1u);
  EXPECT_EQ(config->server.listen[0].port(), 53);
  EXPECT_EQ(config->server.workers, DefaultWorkers());
  EXPECT_EQ(config->storage.path, "./var/db");
  EXPECT_TRUE(config->zones.empty());
}

TEST(ParseConfigTest, RootZoneAndLongestNames) {
  std::string label63(63, 'a');
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  Result<Config> config =
      ParseConfig("zones:\n  - name: .\n  - name: " + name253 + ".\n  - name: \"*.weird_chars\"\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->zones[0].name, ".");
  EXPECT_EQ(config->zones[1].name, name253);
  EXPECT_EQ(config->zones[2].name, "*.weird_chars");
}

// --- Errors ----------------------------------------------------------------

TEST(ParseConfigErrorTest, UnknownKeys) {
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 2\nlogging: {}\n"), 3,
                   {"key 'logging'", "unknown key", "server, storage, keys, zones"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  listn: [\"::1\"]\n"), 2,
                   {"key 'server.listn'", "did you mean 'listen'",
                    "listen, workers, cpu_affinity, tcp_idle_timeout, tcp_max_connections, udp_payload, rrl"}));
  EXPECT_TRUE(Says(ErrorOf("storage:\n  path: x\n  mapsize: 1G\n"), 3,
                   {"key 'storage.mapsize'", "did you mean 'map_size'", "path, map_size"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a\n  - name: b\n    master: b.zone\n"), 4,
                   {"key 'zones[1].master'", "unknown key", "name, file"}));
}

TEST(ParseConfigErrorTest, DuplicateKey) {
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 2\n  workers: 3\n"), 3,
                   {"key 'server.workers'", "duplicate key", "line 2"}));
}

TEST(ParseConfigErrorTest, WrongTypes) {
  EXPECT_TRUE(Says(ErrorOf("server:\n  listen:\n    a: b\n"), 2,
                   {"key 'server.listen'", "expected a list", "got a map"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  listen: 127.0.0.1@53\n"), 2,
                   {"key 'server.listen'", "expected a list", "got '127.0.0.1@53'"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  listen:\n  - [1, 2]\n"), 3, {"key 'server.listen[0]'", "got a list"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: four\n"), 2,
                   {"key 'server.workers'", "expected an integer from 1 to", "got 'four'"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers:\n"), 2, {"key 'server.workers'", "got nothing"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 2.5\n"), 2, {"key 'server.workers'", "got '2.5'"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: -1\n"), 2, {"key 'server.workers'", "got '-1'"}));
  EXPECT_TRUE(Says(ErrorOf("server: [1]\n"), 1, {"key 'server'", "expected a map", "got a list"}));
  EXPECT_TRUE(Says(ErrorOf("storage:\n  path: [a]\n"), 2, {"key 'storage.path'", "got a list"}));
  EXPECT_TRUE(Says(ErrorOf("storage:\n  path: \"\"\n"), 2, {"key 'storage.path'", "empty string"}));
  EXPECT_TRUE(
      Says(ErrorOf("zones:\n  name: example.com\n"), 1, {"key 'zones'", "expected a list", "got a map"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - example.com\n"), 2,
                   {"key 'zones[0]'", "expected a map", "got 'example.com'"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: [a]\n"), 2, {"key 'zones[0].name'", "expected a domain name"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a\n    file: {}\n"), 3, {"key 'zones[0].file'", "got a map"}));
}

TEST(ParseConfigErrorTest, IntegerRanges) {
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 0\n"), 2, {"key 'server.workers'", "0 is out of range"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  tcp_idle_timeout: 0\n"), 2,
                   {"key 'server.tcp_idle_timeout'", "1 to 3600000"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  tcp_idle_timeout: 3600001\n"), 2, {"3600001 is out of range"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  tcp_max_connections: 0\n"), 2, {"key 'server.tcp_max_connections'"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  udp_payload: 511\n"), 2, {"key 'server.udp_payload'", "512 to 4096"}));
  EXPECT_TRUE(
      Says(ErrorOf("server:\n  udp_payload: 4097\n"), 2, {"key 'server.udp_payload'", "512 to 4096"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 99999999999999999999999\n"), 2, {"key 'server.workers'"}));
  EXPECT_TRUE(ParseConfig("server:\n  tcp_idle_timeout: 3600000\n  udp_payload: 4096\n", kSource).ok());
}

TEST(ParseConfigErrorTest, BadListenAddresses) {
  std::string yaml_head = "server:\n  listen:\n    - 127.0.0.1@5353\n    - ";
  EXPECT_TRUE(
      Says(ErrorOf(yaml_head + "localhost@53\n"), 4,
           {"key 'server.listen[1]'", "not an address (expected ADDRESS[@PORT], e.g. 127.0.0.1@5353)"}));
  EXPECT_TRUE(
      Says(ErrorOf(yaml_head + "127.0.0.1@0\n"), 4, {"key 'server.listen[1]'", "port '0'", "1 to 65535"}));
  EXPECT_TRUE(Says(ErrorOf(yaml_head + "127.0.0.1@65536\n"), 4, {"key 'server.listen[1]'", "port '65536'"}));
  EXPECT_TRUE(Says(ErrorOf(yaml_head + "\"127.0.0.1:53\"\n"), 4,
                   {"key 'server.listen[1]'", "not an address", "127.0.0.1@53"}));
  EXPECT_TRUE(Says(ErrorOf(yaml_head + "\"\"\n"), 4, {"key 'server.listen[1]'", "empty string"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  listen: []\n"), 2, {"key 'server.listen'", "at least one address"}));
}

TEST(ParseConfigErrorTest, DuplicateListenEndpoints) {
  EXPECT_TRUE(
      Says(ErrorOf("server:\n  listen:\n    - 127.0.0.1@53\n    - ::1\n    - 127.0.0.1\n"), 5,
           {"key 'server.listen[2]'", "'127.0.0.1' is the same address as '127.0.0.1@53' at line 3"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  listen: [\"::1@53\", \"0:0::1\"]\n"), 2,
                   {"key 'server.listen[1]'", "same address"}));
  // Same address on other ports, or the same port on other addresses, is fine.
  EXPECT_TRUE(ParseConfig("server:\n  listen: [\"::1@53\", \"::1@5353\", \"127.0.0.1@53\"]\n", kSource).ok());
}

TEST(ParseConfigErrorTest, DuplicateZones) {
  std::string message = ErrorOf(
      "zones:\n"
      "  - name: Example.com\n"
      "    file: a.zone\n"
      "  - name: other.example\n"
      "  - name: example.COM.\n");
  EXPECT_TRUE(
      Says(message, 5, {"key 'zones[2].name'", "zone 'example.com' is declared twice (lines 2 and 5)"}));
  EXPECT_TRUE(
      Says(ErrorOf("zones:\n  - name: .\n  - name: .\n"), 3, {"zone '.' is declared twice (lines 2 and 3)"}));
}

TEST(ParseConfigErrorTest, InvalidZoneNames) {
  std::string label64(64, 'x');
  std::string name254 = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                        std::string(62, 'd');
  ASSERT_EQ(name254.size(), 254u);
  auto zone_error = [](const std::string& name) {
    return ErrorOf("zones:\n  - name: a.example\n  - name: " + name + "\n");
  };
  EXPECT_TRUE(Says(zone_error("\"\""), 3, {"key 'zones[1].name'", "empty zone name"}));
  EXPECT_TRUE(Says(zone_error("a..example"), 3, {"key 'zones[1].name'", "empty label"}));
  EXPECT_TRUE(Says(zone_error(".example"), 3, {"key 'zones[1].name'", "empty label"}));
  EXPECT_TRUE(Says(zone_error("example.com.."), 3, {"key 'zones[1].name'", "empty label"}));
  EXPECT_TRUE(
      Says(zone_error(label64 + ".example"), 3, {"key 'zones[1].name'", "64 characters", "at most 63"}));
  EXPECT_TRUE(Says(zone_error(name254), 3, {"key 'zones[1].name'", "254 characters", "at most 253"}));
  EXPECT_TRUE(Says(zone_error("~"), 3, {"key 'zones[1].name'", "got nothing"}));
}

TEST(ParseConfigErrorTest, MissingZoneName) {
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a.example\n  - file: b.zone\n"), 3,
                   {"key 'zones[1]'", "missing key 'name'"}));
}

TEST(ParseConfigErrorTest, YamlSyntaxErrors) {
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 2\n  listen: [\"::1\",\n"), 4, {"YAML syntax error"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  workers: 2\n  listen: x: y\n"), 3, {"YAML syntax error"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n\tworkers: 2\n"), 2, {"YAML syntax error"}));
  // An unclosed flow collection is noticed where the input ends.
  EXPECT_TRUE(Says(ErrorOf("storage: {path: x\n"), 2, {"YAML syntax error", "end of map flow not found"}));
}

TEST(ParseConfigErrorTest, EmptyOrWrongTopLevel) {
  EXPECT_TRUE(Says(ErrorOf(""), 1, {"empty", "server, storage, keys, zones"}));
  EXPECT_TRUE(Says(ErrorOf("# only a comment\n\n"), 1, {"empty"}));
  EXPECT_TRUE(Says(ErrorOf("~\n"), 1, {"empty"}));
  EXPECT_TRUE(Says(ErrorOf("- server\n- zones\n"), 1, {"top level", "map", "got a list"}));
  EXPECT_TRUE(Says(ErrorOf("hello\n"), 1, {"top level", "map", "got 'hello'"}));
  EXPECT_TRUE(Says(ErrorOf("server: {}\n---\nzones: []\n"), 3, {"second YAML document"}));
  // A lone "," once made yaml-cpp's LoadAll loop forever (found by the
  // config fuzzer); it must come back as an error.
  Result<Config> comma = ParseConfig(",", kSource);
  ASSERT_FALSE(comma.ok());
  EXPECT_EQ(comma.status().message().substr(0, 10), "test.yaml:");
}

TEST(ParseConfigErrorTest, TooLarge) {
  std::string text = "# " + std::string(2 << 20, 'x') + "\n";
  Result<Config> config = ParseConfig(text, kSource);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("test.yaml: the file is"), std::string_view::npos)
      << config.status().message();
}

// --- storage.map_size ------------------------------------------------------

TEST(MapSizeTest, AcceptedForms) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"1048576", uint64_t{1} << 20}, {"1MiB", uint64_t{1} << 20},  {"1M", uint64_t{1} << 20},
      {"1024KiB", uint64_t{1} << 20}, {"1024K", uint64_t{1} << 20}, {"512MiB", uint64_t{512} << 20},
      {"2 GiB", uint64_t{2} << 30},   {"3G", uint64_t{3} << 30},    {"1TiB", uint64_t{1} << 40},
      {"16T", uint64_t{16} << 40},    {"1073741825", 1073741825},
  };
  for (const auto& [text, bytes] : cases) {
    Result<Config> config = ParseConfig(std::string("storage:\n  map_size: ") + text + "\n", kSource);
    ASSERT_TRUE(config.ok()) << text << ": " << config.status().message();
    EXPECT_EQ(config->storage.map_size, bytes) << text;
  }
}

TEST(MapSizeTest, RefusedForms) {
  for (const char* text : {"1MB", "1mib", "1m", "1.5GiB", "GiB", "-1", "1 MiB MiB", "1  MiB", "0x100000",
                           "99999999999999999999", "20000000T", "\"\"", "[1]", "~"}) {
    EXPECT_TRUE(Says(ErrorOf(std::string("storage:\n  path: x\n  map_size: ") + text + "\n"), 3,
                     {"key 'storage.map_size'", "expected a size in bytes"}))
        << text;
  }
  EXPECT_TRUE(
      Says(ErrorOf("storage:\n  map_size: 1048575\n"), 2, {"key 'storage.map_size'", "at least 1MiB"}));
  EXPECT_TRUE(Says(ErrorOf("storage:\n  map_size: 1023K\n"), 2, {"key 'storage.map_size'", "at least 1MiB"}));
}

// --- FindZone --------------------------------------------------------------

TEST(FindZoneTest, MatchesAnyCaseWithOrWithoutTrailingDot) {
  Result<Config> config =
      ParseConfig("zones:\n  - name: dyn.Example.com\n  - name: example.org.\n  - name: .\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const ZoneConfig* dyn = config->FindZone("dyn.example.com");
  ASSERT_NE(dyn, nullptr);
  EXPECT_EQ(dyn->name, "dyn.example.com");
  EXPECT_EQ(config->FindZone("DYN.EXAMPLE.COM."), dyn);
  EXPECT_EQ(config->FindZone("Example.Org")->name, "example.org");
  EXPECT_EQ(config->FindZone("example.org.")->name, "example.org");
  EXPECT_EQ(config->FindZone(".")->name, ".");
  EXPECT_EQ(config->FindZone("example.com"), nullptr);
  EXPECT_EQ(config->FindZone("host.dyn.example.com"), nullptr);
  EXPECT_EQ(config->FindZone(""), nullptr);
  EXPECT_EQ(config->FindZone("example.org.."), nullptr);
}

// --- ParseEndpoint ---------------------------------------------------------

TEST(ParseEndpointTest, IPv4) {
  Result<Endpoint> endpoint = ParseEndpoint("192.0.2.7@5353", 53);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().message();
  EXPECT_EQ(endpoint->text, "192.0.2.7@5353");
  EXPECT_EQ(endpoint->family(), AF_INET);
  EXPECT_EQ(endpoint->address_length, sizeof(sockaddr_in));
  const auto& v4 = reinterpret_cast<const sockaddr_in&>(endpoint->address);
  EXPECT_EQ(v4.sin_port, htons(5353));
  EXPECT_EQ(v4.sin_addr.s_addr, htonl(0xC0000207));
  EXPECT_EQ(endpoint->port(), 5353);

  Result<Endpoint> default_port = ParseEndpoint("0.0.0.0", 8053);
  ASSERT_TRUE(default_port.ok());
  EXPECT_EQ(default_port->port(), 8053);
  EXPECT_EQ(Address(*default_port), "0.0.0.0");
}

TEST(ParseEndpointTest, IPv6) {
  Result<Endpoint> endpoint = ParseEndpoint("::1@5353", 53);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().message();
  EXPECT_EQ(endpoint->family(), AF_INET6);
  EXPECT_EQ(endpoint->address_length, sizeof(sockaddr_in6));
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(endpoint->address);
  EXPECT_EQ(v6.sin6_port, htons(5353));
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr));
  EXPECT_EQ(endpoint->port(), 5353);

  Result<Endpoint> bare = ParseEndpoint("2001:db8::53", 53);
  ASSERT_TRUE(bare.ok()) << bare.status().message();
  EXPECT_EQ(bare->port(), 53);
  EXPECT_EQ(Address(*bare), "2001:db8::53");

  Result<Endpoint> bracketed = ParseEndpoint("[::1]@54", 53);
  ASSERT_TRUE(bracketed.ok()) << bracketed.status().message();
  EXPECT_EQ(bracketed->port(), 54);
  EXPECT_EQ(Address(*bracketed), "::1");
}

TEST(ParseEndpointTest, Refused) {
  for (const char* text :
       {"", "localhost", "example.com@53", "1.2.3.4@", "@53", "1.2.3.4@0", "1.2.3.4@65536", "1.2.3.4@x",
        "1.2.3.4@+53", "::1@-1", "1.2.3.4:53", "1.2.3", "256.1.1.1", "::1@53@54", " 1.2.3.4", "[::1"}) {
    Result<Endpoint> endpoint = ParseEndpoint(text, 53);
    ASSERT_FALSE(endpoint.ok()) << text;
    EXPECT_TRUE(endpoint.status().IsInvalid()) << text;
    EXPECT_NE(endpoint.status().message().find(text), std::string_view::npos) << endpoint.status().message();
  }
  EXPECT_NE(ParseEndpoint("1.2.3.4:53", 53).status().message().find("write the port after '@': 1.2.3.4@53"),
            std::string_view::npos);
  EXPECT_EQ(ParseEndpoint("localhost:53", 53).status().message().find("write the port"),
            std::string_view::npos);
  EXPECT_NE(ParseEndpoint("1.2.3.4@0", 53).status().message().find("1 to 65535"), std::string_view::npos);
}

// --- http, accounts, dyndns, host_ttl ---------------------------------------

TEST(ExtensionsTest, DefaultsWhenAbsent) {
  Result<Config> config = ParseConfig("zones:\n  - name: dyn.example\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const HttpConfig& http = config->http;
  EXPECT_TRUE(http.listen.empty());  // HTTP off
  EXPECT_EQ(http.max_request_size, 8192u);
  EXPECT_EQ(http.max_body_size, 65536u);
  EXPECT_EQ(http.read_timeout_ms, 10000u);
  EXPECT_EQ(http.idle_timeout_ms, 30000u);
  EXPECT_EQ(http.max_connections, 1024u);
  EXPECT_EQ(config->accounts.host_limit, 100u);
  EXPECT_EQ(config->dyndns.max_hosts, 20u);
  EXPECT_EQ(config->dyndns.nochg_limit, 5u);
  EXPECT_EQ(config->dyndns.nochg_window_seconds, 600u);
  EXPECT_EQ(config->dyndns.abuse_lock_seconds, 3600u);
  EXPECT_EQ(config->zones[0].host_ttl, 60u);
}

TEST(ExtensionsTest, FullSections) {
  Result<Config> config = ParseConfig(
      "http:\n"                                                                      // 1
      "  listen: [\"127.0.0.1:8053\", \"[::1]:8053\", \"127.0.0.1@8054\", \"::1\", \"0.0.0.0\"]\n"  // 2
      "  max_request_size: 4096\n"                                                   // 3
      "  max_body_size: 0\n"                                                         // 4
      "  read_timeout: 2000\n"                                                       // 5
      "  idle_timeout: 5000\n"                                                       // 6
      "  max_connections: 10\n"                                                      // 7
      "accounts:\n"                                                                  // 8
      "  host_limit: 3\n"                                                            // 9
      "dyndns:\n"                                                                    // 10
      "  max_hosts: 5\n"                                                             // 11
      "  nochg_limit: 2\n"                                                           // 12
      "  nochg_window: 60\n"                                                         // 13
      "  abuse_lock: 120\n"                                                          // 14
      "zones:\n"                                                                     // 15
      "  - name: dyn.example\n"                                                      // 16
      "    host_ttl: 0\n"                                                            // 17
      "  - name: other.example\n"                                                    // 18
      "    host_ttl: 86400\n",                                                       // 19
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const HttpConfig& http = config->http;
  ASSERT_EQ(http.listen.size(), 5u);
  EXPECT_EQ(http.listen[0].text, "127.0.0.1:8053");
  EXPECT_EQ(Address(http.listen[0]), "127.0.0.1");
  EXPECT_EQ(http.listen[0].port(), 8053);
  EXPECT_EQ(http.listen[1].family(), AF_INET6);
  EXPECT_EQ(Address(http.listen[1]), "::1");
  EXPECT_EQ(http.listen[1].port(), 8053);
  EXPECT_EQ(http.listen[2].port(), 8054);
  EXPECT_EQ(Address(http.listen[3]), "::1");
  EXPECT_EQ(http.listen[3].port(), 80);
  EXPECT_EQ(http.listen[4].port(), 80);
  EXPECT_EQ(http.max_request_size, 4096u);
  EXPECT_EQ(http.max_body_size, 0u);
  EXPECT_EQ(http.read_timeout_ms, 2000u);
  EXPECT_EQ(http.idle_timeout_ms, 5000u);
  EXPECT_EQ(http.max_connections, 10u);
  EXPECT_EQ(config->accounts.host_limit, 3u);
  EXPECT_EQ(config->dyndns.max_hosts, 5u);
  EXPECT_EQ(config->dyndns.nochg_limit, 2u);
  EXPECT_EQ(config->dyndns.nochg_window_seconds, 60u);
  EXPECT_EQ(config->dyndns.abuse_lock_seconds, 120u);
  EXPECT_EQ(config->zones[0].host_ttl, 0u);
  EXPECT_EQ(config->zones[1].host_ttl, 86400u);
  // The DNS listener keeps its own default.
  EXPECT_EQ(config->server.listen[0].port(), 53);
}

TEST(ExtensionsTest, EmptyHttpListenMeansOff) {
  Result<Config> config = ParseConfig("http:\n  listen: []\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_TRUE(config->http.listen.empty());
  EXPECT_TRUE(ParseConfig("http:\naccounts:\ndyndns:\n", kSource).ok());
}

TEST(ExtensionsTest, HttpsListenersAndCertificate) {
  Result<Config> config = ParseConfig(
      "http:\n"
      "  tls_listen: [\"0.0.0.0:8443\", \"[::1]\", \"127.0.0.1\"]\n"
      "  tls: {cert: /etc/updns/cert.pem, key: key.pem}\n",
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const HttpConfig& http = config->http;
  EXPECT_TRUE(http.listen.empty());
  EXPECT_TRUE(http.enabled()) << "HTTPS alone starts the HTTP service";
  ASSERT_EQ(http.tls_listen.size(), 3u);
  EXPECT_EQ(http.tls_listen[0].port(), 8443);
  EXPECT_EQ(http.tls_listen[1].family(), AF_INET6);
  EXPECT_EQ(http.tls_listen[1].port(), 443);
  EXPECT_EQ(http.tls_listen[2].port(), 443);
  EXPECT_EQ(http.tls.cert, "/etc/updns/cert.pem");
  EXPECT_EQ(http.tls.key, "key.pem");  // as written; the server reads it

  config = ParseConfig("http:\n  listen: [\"127.0.0.1:80\"]\n  tls_listen: [\"127.0.0.1:443\"]\n"
                       "  tls:\n    cert: c.pem\n    key: k.pem\n",
                       kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->http.listen.size(), 1u);
  EXPECT_EQ(config->http.tls_listen.size(), 1u);
  EXPECT_FALSE(ParseConfig("zones: []\n", kSource)->http.enabled());
}

TEST(ExtensionsTest, HttpsErrorsNameTheKey) {
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen: []\n  tls_listen: [\"127.0.0.1:443\"]\n"), 3,
                   {"key 'http.tls_listen'", "needs 'http.tls'", "cert", "key"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen: [\"127.0.0.1:80\"]\n  tls: {cert: c.pem, key: k.pem}\n"), 3,
                   {"key 'http.tls'", "'http.tls_listen' is missing or empty", "0.0.0.0:443"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  tls_listen: []\n  tls: {cert: c.pem, key: k.pem}\n"), 3,
                   {"key 'http.tls'", "'http.tls_listen' is missing or empty"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  tls_listen: [\"127.0.0.1:443\"]\n  tls:\n    cert: c.pem\n"), 3,
                   {"key 'http.tls'", "missing key 'key'", "PEM private key"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  tls_listen: [\"127.0.0.1:443\"]\n  tls: {key: k.pem}\n"), 3,
                   {"key 'http.tls'", "missing key 'cert'"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  tls_listen: [\"127.0.0.1:443\"]\n  tls:\n    cert: \"\"\n    key: k\n"), 4,
                   {"key 'http.tls.cert'", "got an empty string"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  tls_listen: [\"127.0.0.1:443\"]\n  tls: {cert: c, keyfile: k}\n"), 3,
                   {"key 'http.tls.keyfile'", "unknown key", "cert, key"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  tls_listen:\n    - localhost:443\n"), 3,
                   {"key 'http.tls_listen[0]'", "not an address"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen: [\"127.0.0.1:8443\"]\n  tls_listen: [\"127.0.0.1@8443\"]\n"
                           "  tls: {cert: c, key: k}\n"),
                   3, {"key 'http.tls_listen'", "also in 'http.listen'", "either HTTP or HTTPS"}));
}

TEST(ExtensionsTest, Errors) {
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen: [\"localhost:80\"]\n"), 2,
                   {"key 'http.listen[0]'", "not an address", "127.0.0.1:8053"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen:\n    - 127.0.0.1:0\n"), 3,
                   {"key 'http.listen[0]'", "port '0'", "1 to 65535"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen:\n    - 127.0.0.1:8053\n    - 127.0.0.1@8053\n"), 4,
                   {"key 'http.listen[1]'", "same address as '127.0.0.1:8053' at line 3"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  listen: 127.0.0.1:80\n"), 2, {"key 'http.listen'", "expected a list"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  max_request_size: 100\n"), 2,
                   {"key 'http.max_request_size'", "100 is out of range", "1024 to 1048576"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  read_timeout: 0\n"), 2, {"key 'http.read_timeout'", "out of range"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  idle_timeout: soon\n"), 2, {"key 'http.idle_timeout'", "got 'soon'"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  max_connection: 5\n"), 2,
                   {"key 'http.max_connection'", "did you mean 'max_connections'"}));
  EXPECT_TRUE(Says(ErrorOf("http: [1]\n"), 1, {"key 'http'", "expected a map"}));
  EXPECT_TRUE(Says(ErrorOf("accounts:\n  host_limit: -1\n"), 2, {"key 'accounts.host_limit'", "got '-1'"}));
  EXPECT_TRUE(Says(ErrorOf("accounts:\n  hosts: 1\n"), 2, {"key 'accounts.hosts'", "unknown key", "host_limit"}));
  EXPECT_TRUE(Says(ErrorOf("dyndns:\n  max_hosts: 0\n"), 2, {"key 'dyndns.max_hosts'", "0 is out of range"}));
  EXPECT_TRUE(Says(ErrorOf("dyndns:\n  nochg_window: 0\n"), 2, {"key 'dyndns.nochg_window'"}));
  EXPECT_TRUE(Says(ErrorOf("dyndns:\n  abuse_lock: 1h\n"), 2, {"key 'dyndns.abuse_lock'", "got '1h'"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a\n    host_ttl: 86401\n"), 3,
                   {"key 'zones[0].host_ttl'", "86401 is out of range", "0 to 86400"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a\n    hostttl: 5\n"), 3,
                   {"key 'zones[0].hostttl'", "did you mean 'host_ttl'"}));
  EXPECT_TRUE(Says(ErrorOf("htp: {}\n"), 1, {"key 'htp'", "did you mean 'http'"}));
}

TEST(ParseHttpEndpointTest, Forms) {
  const struct {
    const char* text;
    int family;
    const char* address;
    uint16_t port;
  } cases[] = {
      {"127.0.0.1:8053", AF_INET, "127.0.0.1", 8053}, {"127.0.0.1@8053", AF_INET, "127.0.0.1", 8053},
      {"127.0.0.1", AF_INET, "127.0.0.1", 80},        {"[::1]:8053", AF_INET6, "::1", 8053},
      {"[::1]@8053", AF_INET6, "::1", 8053},          {"[::1]", AF_INET6, "::1", 80},
      {"::1@8053", AF_INET6, "::1", 8053},            {"2001:db8::8053", AF_INET6, "2001:db8::8053", 80},
  };
  for (const auto& c : cases) {
    Result<Endpoint> endpoint = ParseHttpEndpoint(c.text, 80);
    ASSERT_TRUE(endpoint.ok()) << c.text << ": " << endpoint.status().message();
    EXPECT_EQ(endpoint->text, c.text);
    EXPECT_EQ(endpoint->family(), c.family) << c.text;
    EXPECT_EQ(Address(*endpoint), c.address) << c.text;
    EXPECT_EQ(endpoint->port(), c.port) << c.text;
  }
  for (const char* text : {"", ":80", "localhost:80", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x",
                           "[::1", "[::1]x", "[::1]:", "[1.2.3.4.5]:80", "1.2.3.4:80:80x", "example.com"}) {
    Result<Endpoint> endpoint = ParseHttpEndpoint(text, 80);
    ASSERT_FALSE(endpoint.ok()) << text;
    EXPECT_TRUE(endpoint.status().IsInvalid()) << text;
    EXPECT_NE(endpoint.status().message().find(text), std::string_view::npos) << endpoint.status().message();
  }
}

// --- mail, api ---------------------------------------------------------------

TEST(MailConfigTest, DefaultsWhenAbsent) {
  Result<Config> config = ParseConfig("zones:\n  - name: dyn.example\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const MailConfig& mail = config->mail;
  EXPECT_EQ(mail.smtp, "");  // mail off
  EXPECT_EQ(mail.from, "");
  EXPECT_EQ(mail.reset_url, "");
  EXPECT_FALSE(mail.starttls);
  EXPECT_EQ(mail.username, "");
  EXPECT_EQ(mail.password, "");
  EXPECT_EQ(mail.password_file, "");
  EXPECT_EQ(mail.retry_initial_seconds, 30u);
  EXPECT_EQ(mail.retry_max_seconds, 3600u);
  EXPECT_EQ(config->api.session_ttl_seconds, 86400u);
  EXPECT_EQ(config->api.reset_ttl_seconds, 86400u);
  EXPECT_EQ(config->api.move_ttl_seconds, 86400u);
  EXPECT_TRUE(ParseConfig("mail:\napi:\n", kSource).ok());
  EXPECT_TRUE(
      ParseConfig("mail:\n  smtp: \"\"\n  username: \"\"\n  password: \"\"\n", kSource).ok());
}

TEST(MailConfigTest, FullSections) {
  Result<Config> config = ParseConfig(
      "mail:\n"
      "  smtp: smtp://127.0.0.1:2525\n"
      "  from: updns@example.org\n"
      "  reset_url: https://dyn.example/reset?token=\n"
      "  starttls: true\n"
      "  username: relay-user\n"
      "  password: s3cret pass\n"
      "  retry_initial: 5\n"
      "  retry_max: 600\n"
      "api:\n"
      "  session_ttl: 3600\n"
      "  reset_ttl: 1\n"
      "  move_ttl: 31536000\n",
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const MailConfig& mail = config->mail;
  EXPECT_EQ(mail.smtp, "smtp://127.0.0.1:2525");
  EXPECT_EQ(mail.from, "updns@example.org");
  EXPECT_EQ(mail.reset_url, "https://dyn.example/reset?token=");
  EXPECT_TRUE(mail.starttls);
  EXPECT_EQ(mail.username, "relay-user");
  EXPECT_EQ(mail.password, "s3cret pass");
  EXPECT_EQ(mail.password_file, "");
  EXPECT_EQ(mail.retry_initial_seconds, 5u);
  EXPECT_EQ(mail.retry_max_seconds, 600u);
  EXPECT_EQ(config->api.session_ttl_seconds, 3600u);
  EXPECT_EQ(config->api.reset_ttl_seconds, 1u);
  EXPECT_EQ(config->api.move_ttl_seconds, 31536000u);

  Result<Config> smtps = ParseConfig(
      "mail:\n  smtp: SMTPS://mail.example.org\n  from: a@b\n  starttls: false\n"
      "  reset_url: http://localhost:8053/reset#t=\n  retry_initial: 60\n  retry_max: 60\n",
      kSource);
  ASSERT_TRUE(smtps.ok()) << smtps.status().message();
  EXPECT_EQ(smtps->mail.smtp, "SMTPS://mail.example.org");
  EXPECT_FALSE(smtps->mail.starttls);
}

TEST(MailConfigTest, PasswordFile) {
  std::string path =
      testing::TempDir() + "updns_config_test_" + std::to_string(getpid()) + "_smtp_password";
  std::ofstream(path, std::ios::binary) << "from a file\r\n";
  Result<Config> config = ParseConfig(
      "mail:\n  smtp: smtps://relay.example\n  from: a@example.org\n  username: u\n"
      "  password_file: " +
          path + "\n",
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->mail.password, "from a file");
  EXPECT_EQ(config->mail.password_file, path);

  // Both ways at once, or the file unreadable, empty or several lines long.
  EXPECT_TRUE(Says(ErrorOf("mail:\n  username: u\n  password: x\n  password_file: " + path + "\n"),
                   4,
                   {"key 'mail.password_file'", "either 'password' (line 3) or 'password_file'"}));
  std::ofstream(path, std::ios::binary) << "";
  EXPECT_TRUE(Says(ErrorOf("mail:\n  username: u\n  password_file: " + path + "\n"), 3,
                   {"key 'mail.password_file'", "cannot read '" + path + "'", "empty"}));
  std::ofstream(path, std::ios::binary) << "one\ntwo\n";
  EXPECT_TRUE(Says(ErrorOf("mail:\n  username: u\n  password_file: " + path + "\n"), 3,
                   {"key 'mail.password_file'", "more than one line"}));
  std::remove(path.c_str());
  EXPECT_TRUE(Says(ErrorOf("mail:\n  username: u\n  password_file: " + path + "\n"), 3,
                   {"key 'mail.password_file'", "cannot read", "No such file or directory"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  username: u\n  password_file: \"\"\n"), 3,
                   {"key 'mail.password_file'", "empty string"}));
}

TEST(MailConfigTest, Errors) {
  EXPECT_TRUE(
      Says(ErrorOf("mail:\n  smtp: http://127.0.0.1:25\n  from: a@b\n"), 2,
           {"key 'mail.smtp'", "does not start with smtp:// or smtps://", "smtp://127.0.0.1:25"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  smtp: 127.0.0.1:25\n  from: a@b\n"), 2,
                   {"key 'mail.smtp'", "does not start with"}));
  EXPECT_TRUE(
      Says(ErrorOf("mail:\n  smtp: smtp://\n  from: a@b\n"), 2, {"key 'mail.smtp'", "no host"}));
  EXPECT_TRUE(
      Says(ErrorOf("mail:\n  smtp: smtp://:25\n  from: a@b\n"), 2, {"key 'mail.smtp'", "no host"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  smtp: \"smtp://relay .example\"\n  from: a@b\n"), 2,
                   {"key 'mail.smtp'", "space"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  smtp: smtp://user:pw@relay.example\n  from: a@b\n"), 2,
                   {"key 'mail.smtp'", "credentials", "'username' and 'password'"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  smtp: [a]\n"), 2,
                   {"key 'mail.smtp'", "expected an SMTP URL", "got a list"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  smtp: smtp://127.0.0.1:2525\n"), 1,
                   {"key 'mail'", "missing key 'from'", "needed with 'smtp'"}));
  for (const char* from :
       {"updns", "\"@example.org\"", "updns@", "a@b@c", "\"Updns <u@example.org>\"",
        "\"a b@example.org\"", "u\u00e9@example.org", "\"a@b\\r\\nRCPT TO:<x@y>\""}) {
    EXPECT_TRUE(Says(ErrorOf(std::string("mail:\n  from: ") + from + "\n"), 2, {"key 'mail.from'"}))
        << from;
  }
  EXPECT_TRUE(Says(ErrorOf("mail:\n  from: \"\"\n"), 2, {"key 'mail.from'", "empty string"}));
  EXPECT_TRUE(ParseConfig("mail:\n  from: " + std::string(250, 'a') + "@b.c\n", kSource).ok());
  EXPECT_TRUE(Says(ErrorOf("mail:\n  from: " + std::string(251, 'a') + "@b.c\n"), 2,
                   {"key 'mail.from'", "255 characters long; at most 254"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  reset_url: ftp://x/\n"), 2,
                   {"key 'mail.reset_url'", "does not start with http:// or https://"}));
  EXPECT_TRUE(
      Says(ErrorOf("mail:\n  reset_url: \"\"\n"), 2, {"key 'mail.reset_url'", "empty string"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  starttls: yes\n"), 2,
                   {"key 'mail.starttls'", "expected true or false", "got 'yes'"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  starttls: 1\n"), 2,
                   {"key 'mail.starttls'", "expected true or false"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  password: x\n"), 2,
                   {"key 'mail.password'", "a password needs 'username' as well"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  username: u\n"), 2,
                   {"key 'mail.username'", "'username' needs 'password' or 'password_file'"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  retry_initial: 0\n"), 2,
                   {"key 'mail.retry_initial'", "0 is out of range", "1 to 86400"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  retry_max: 30d\n"), 2, {"key 'mail.retry_max'", "got '30d'"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  retry_initial: 120\n  retry_max: 60\n"), 3,
                   {"key 'mail.retry_max'", "60 is below retry_initial (120)"}));
  EXPECT_TRUE(Says(ErrorOf("mail:\n  retry_max: 10\n"), 2,
                   {"key 'mail.retry_max'", "below retry_initial (30)"}));
  EXPECT_TRUE(
      Says(ErrorOf("mail:\n  smpt: smtp://x\n"), 2, {"key 'mail.smpt'", "did you mean 'smtp'"}));
  EXPECT_TRUE(Says(ErrorOf("mail: smtp://x\n"), 1, {"key 'mail'", "expected a map"}));
  EXPECT_TRUE(Says(ErrorOf("mial: {}\n"), 1, {"key 'mial'", "did you mean 'mail'", "mail, api"}));
}

TEST(ApiConfigTest, Errors) {
  EXPECT_TRUE(Says(ErrorOf("api:\n  session_ttl: 0\n"), 2,
                   {"key 'api.session_ttl'", "0 is out of range", "1 to 31536000"}));
  EXPECT_TRUE(
      Says(ErrorOf("api:\n  reset_ttl: 31536001\n"), 2, {"key 'api.reset_ttl'", "out of range"}));
  EXPECT_TRUE(Says(ErrorOf("api:\n  move_ttl: 1d\n"), 2, {"key 'api.move_ttl'", "got '1d'"}));
  EXPECT_TRUE(Says(
      ErrorOf("api:\n  sesion_ttl: 5\n"), 2,
      {"key 'api.sesion_ttl'", "did you mean 'session_ttl'", "session_ttl, reset_ttl, move_ttl"}));
  EXPECT_TRUE(Says(ErrorOf("api:\n  session_ttl: 5\n  session_ttl: 6\n"), 3, {"duplicate key"}));
}

// --- LoadConfig ------------------------------------------------------------

TEST(LoadConfigTest, ReadsAFile) {
  TempFile file("server:\n  listen: [\"::1@5300\"]\nzones:\n  - name: example.net\n");
  Result<Config> config = LoadConfig(file.path());
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->source, file.path());
  EXPECT_EQ(config->server.listen[0].port(), 5300);
  EXPECT_NE(config->FindZone("example.net"), nullptr);
}

TEST(LoadConfigTest, ErrorsNameTheFile) {
  TempFile file("server:\n  workers: 2\n  udp_payload: 9000\n");
  Result<Config> config = LoadConfig(file.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().rfind(file.path() + ":3: key 'server.udp_payload': ", 0), 0u)
      << config.status().message();
}

TEST(LoadConfigTest, MissingFile) {
  std::string path = testing::TempDir() + "updns_config_test_does_not_exist.yaml";
  Result<Config> config = LoadConfig(path);
  ASSERT_FALSE(config.ok());
  std::string_view message = config.status().message();
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string_view::npos) << message;
}

TEST(LoadConfigTest, DirectoryIsNotAFile) {
  Result<Config> config = LoadConfig(testing::TempDir());
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("Is a directory"), std::string_view::npos)
      << config.status().message();
}

TEST(LoadConfigTest, EmptyFile) {
  TempFile file("");
  Result<Config> config = LoadConfig(file.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().rfind(file.path() + ":1: ", 0), 0u) << config.status().message();
  EXPECT_NE(config.status().message().find("empty"), std::string_view::npos);
}


// --- TSIG keys, transfer ACLs, update rules and NOTIFY (zone transfers) ---

constexpr std::string_view kTransferConfig =
    "keys:\n"                                              // 1
    "  - name: DDNS-Key.\n"                                // 2
    "    algorithm: HMAC-SHA512\n"                         // 3
    "    secret: c2VjcmV0LXNlY3JldA==\n"                   // 4
    "  - name: xfr-key\n"                                  // 5
    "    secret: YWJj\n"                                   // 6
    "zones:\n"                                             // 7
    "  - name: dyn.example\n"                              // 8
    "    notify: [\"127.0.0.1@5400\", \"::1\"]\n"          // 9
    "    transfer: [xfr-key, 127.0.0.0/8, \"2001:db8::/32\"]\n"  // 10
    "    update:\n"                                        // 11
    "      - key: ddns-key\n"                              // 12
    "        names: [\"*.dyn.example\", dyn.example]\n"    // 13
    "        types: [A, aaaa, TXT, TYPE65000]\n"           // 14
    "      - key: xfr-key\n"                               // 15
    "storage:\n"                                           // 16
    "  journal_entries: 50\n"                              // 17
    "  journal_size: 1MiB\n"                               // 18
    "notify:\n"                                            // 19
    "  retry_initial: 500\n"                               // 20
    "  retry_max: 8000\n"                                  // 21
    "server:\n"                                            // 22
    "  cpu_affinity: true\n"                               // 23
    "  rrl: {rate: 20, slip: 0, ipv4_prefix: 32}\n";       // 24

TEST(TransferConfigTest, FullSection) {
  Result<Config> config = ParseConfig(kTransferConfig, kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_EQ(config->keys.size(), 2u);
  EXPECT_EQ(config->keys[0].name, "ddns-key");
  EXPECT_EQ(config->keys[0].algorithm, "hmac-sha512");
  EXPECT_EQ(config->keys[0].secret, "secret-secret");
  EXPECT_EQ(config->keys[1].algorithm, "hmac-sha256");  // the default
  EXPECT_EQ(config->keys[1].secret, "abc");
  EXPECT_EQ(config->FindKey("XFR-KEY."), &config->keys[1]);
  EXPECT_EQ(config->FindKey("other"), nullptr);

  const ZoneConfig& zone = config->zones.at(0);
  ASSERT_EQ(zone.notify.size(), 2u);
  EXPECT_EQ(zone.notify[0].port(), 5400);
  EXPECT_EQ(zone.notify[1].port(), 53);
  EXPECT_EQ(zone.transfer_keys, std::vector<std::string>{"xfr-key"});
  ASSERT_EQ(zone.transfer_prefixes.size(), 2u);
  EXPECT_EQ(zone.transfer_prefixes[0].length, 8u);
  EXPECT_EQ(zone.transfer_prefixes[1].family, AF_INET6);
  ASSERT_EQ(zone.update.size(), 2u);
  EXPECT_EQ(zone.update[0].key, "ddns-key");
  EXPECT_EQ(zone.update[0].names, (std::vector<std::string>{"*.dyn.example", "dyn.example"}));
  EXPECT_EQ(zone.update[0].types, (std::vector<uint16_t>{1, 28, 16, 65000}));
  EXPECT_TRUE(zone.update[1].names.empty());
  EXPECT_TRUE(zone.update[1].types.empty());
  EXPECT_EQ(config->storage.journal_max_entries, 50u);
  EXPECT_EQ(config->storage.journal_max_bytes, uint64_t{1} << 20);
  EXPECT_EQ(config->notify.retry_initial_ms, 500u);
  EXPECT_EQ(config->notify.retry_max_ms, 8000u);
  EXPECT_TRUE(config->server.cpu_affinity);
  EXPECT_EQ(config->server.rrl_rate, 20u);
  EXPECT_EQ(config->server.rrl_slip, 0u);
  EXPECT_EQ(config->server.rrl_ipv4_prefix, 32u);
  EXPECT_EQ(config->server.rrl_ipv6_prefix, 56u);
}

TEST(TransferConfigTest, Defaults) {
  Result<Config> config = ParseConfig("zones:\n  - name: a.example\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const ZoneConfig& zone = config->zones.at(0);
  EXPECT_TRUE(zone.notify.empty());
  EXPECT_TRUE(zone.transfer_keys.empty());
  EXPECT_TRUE(zone.transfer_prefixes.empty());
  EXPECT_TRUE(zone.update.empty());
  EXPECT_EQ(config->storage.journal_max_entries, 1000u);
  EXPECT_FALSE(config->server.cpu_affinity);
}

TEST(StorageConfigTest, Prefetch) {
  Result<Config> config = ParseConfig("storage:\n  prefetch: false\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_FALSE(config->storage.prefetch);
  Result<Config> defaults = ParseConfig("storage:\n  path: /tmp/x\n", kSource);
  ASSERT_TRUE(defaults.ok()) << defaults.status().message();
  EXPECT_TRUE(defaults->storage.prefetch);
  EXPECT_FALSE(ParseConfig("storage:\n  prefetch: sometimes\n", kSource).ok());
}

TEST(TransferConfigTest, NotifyKey) {
  Result<Config> config = ParseConfig(
      "keys:\n  - {name: notify-key, secret: YWJj}\nzones:\n  - name: a.example\n"
      "    notify: [\"127.0.0.1@5400\"]\n    notify_key: Notify-Key.\n",
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->zones.at(0).notify_key, "notify-key");
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a.example\n    notify: [\"127.0.0.1@5400\"]\n"
                           "    notify_key: nokey\n"),
                   2, {"notify_key 'nokey' is not defined", "no keys are defined"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - {name: k, secret: YWJj}\nzones:\n  - name: a.example\n"
                           "    notify_key: k\n"),
                   4, {"notify_key is set but 'notify' names no secondary"}));
}

TEST(TransferConfigTest, ErrorsNameTheFieldAtFault) {
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - name: k\n    secret: 'not base64!'\n"), 3,
                   {"key 'keys[0].secret'", "not valid base64"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - name: k\n    secret: YWJj\n    algorithm: hmac-md5\n"), 4,
                   {"key 'keys[0].algorithm'", "unknown TSIG algorithm 'hmac-md5'", "hmac-sha256"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - name: k\n"), 2, {"key 'keys[0]'", "needs 'secret'"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - {name: k, secret: YWJj}\n  - {name: K., secret: YWJj}\n"), 3,
                   {"declared twice"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a.example\n    transfer: [nokey]\n"), 2,
                   {"transfer key 'nokey' is not defined", "no keys are defined"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - {name: k, secret: YWJj}\nzones:\n  - name: a.example\n"
                           "    update:\n      - key: other\n"),
                   4, {"update key 'other' is not defined", "defined keys: k"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a.example\n    transfer: [10.0.0.1/8]\n"), 3,
                   {"key 'zones[0].transfer[0]'", "host bits set"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a.example\n    transfer: [\"::1/129\"]\n"), 3,
                   {"prefix length must be a number from 0 to 128"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - {name: k, secret: YWJj}\nzones:\n  - name: a.example\n"
                           "    update:\n      - key: k\n        types: [A, BOGUS]\n"),
                   7, {"key 'zones[0].update[0].types[1]'", "unknown record type 'BOGUS'"}));
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - {name: k, secret: YWJj}\nzones:\n  - name: a.example\n"
                           "    update:\n      - key: k\n        names: ['*.b.example']\n"),
                   4, {"'*.b.example' is not inside zone 'a.example'"}));
  EXPECT_TRUE(Says(ErrorOf("zones:\n  - name: a.example\n    notify: [\"127.0.0.1:53\"]\n"), 3,
                   {"key 'zones[0].notify[0]'", "write the port after '@'"}));
  EXPECT_TRUE(Says(ErrorOf("server:\n  rrl: {rate: 10, ipv6_prefix: 129}\n"), 2,
                   {"key 'server.rrl.ipv6_prefix'", "from 1 to 128"}));
  EXPECT_TRUE(Says(ErrorOf("notify:\n  retry_initial: 5000\n  retry_max: 10\n"), 3,
                   {"key 'notify.retry_max'", "below retry_initial"}));
}

TEST(TransferConfigTest, SecretFromFile) {
  TempFile secret("c2VjcmV0\n");
  Result<Config> config =
      ParseConfig("keys:\n  - name: k\n    secret_file: " + secret.path() + "\n", kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->keys.at(0).secret, "secret");
  EXPECT_TRUE(Says(ErrorOf("keys:\n  - name: k\n    secret_file: /nonexistent/secret\n"), 3,
                   {"cannot read '/nonexistent/secret'"}));
}

TEST(TransferConfigTest, PrefixContains) {
  auto v4 = [](const char* text) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    inet_pton(AF_INET, text, &address.sin_addr);
    return address;
  };
  auto v6 = [](const char* text) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &address.sin6_addr);
    return address;
  };
  Result<Prefix> loopback = ParsePrefix("127.0.0.0/8");
  ASSERT_TRUE(loopback.ok());
  sockaddr_in inside = v4("127.1.2.3"), outside = v4("128.0.0.1");
  sockaddr_in6 mapped = v6("::ffff:127.0.0.9"), plain6 = v6("::1");
  EXPECT_TRUE(loopback->Contains(reinterpret_cast<sockaddr*>(&inside)));
  EXPECT_FALSE(loopback->Contains(reinterpret_cast<sockaddr*>(&outside)));
  EXPECT_TRUE(loopback->Contains(reinterpret_cast<sockaddr*>(&mapped)));
  EXPECT_FALSE(loopback->Contains(reinterpret_cast<sockaddr*>(&plain6)));

  Result<Prefix> odd = ParsePrefix("2001:db8:8000::/33");
  ASSERT_TRUE(odd.ok()) << odd.status().message();
  sockaddr_in6 in = v6("2001:db8:8000::1"), out = v6("2001:db8:7fff::1");
  EXPECT_TRUE(odd->Contains(reinterpret_cast<sockaddr*>(&in)));
  EXPECT_FALSE(odd->Contains(reinterpret_cast<sockaddr*>(&out)));
  Result<Prefix> host = ParsePrefix("::1");
  ASSERT_TRUE(host.ok());
  EXPECT_TRUE(host->Contains(reinterpret_cast<sockaddr*>(&plain6)));
  Result<Prefix> everything = ParsePrefix("0.0.0.0/0");
  ASSERT_TRUE(everything.ok());
  EXPECT_TRUE(everything->Contains(reinterpret_cast<sockaddr*>(&outside)));
}

}  // namespace
}  // namespace updns::config

namespace updns::config {
namespace {

TEST(MetricsAllowTest, PrefixesAndBareAddresses) {
  Result<Config> config = ParseConfig(
      "http:\n  listen: [\"127.0.0.1:8080\"]\n  metrics_allow: [\"127.0.0.0/8\", \"::1\"]\n",
      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_EQ(config->http.metrics_allow.size(), 2u);
  EXPECT_EQ(config->http.metrics_allow[0].text, "127.0.0.0/8");
  EXPECT_EQ(config->http.metrics_allow[0].length, 8u);
  EXPECT_EQ(config->http.metrics_allow[1].length, 128u);
  Result<Config> defaults = ParseConfig("http:\n  listen: [\"127.0.0.1:8080\"]\n", kSource);
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->http.metrics_allow.empty()) << "everyone may scrape by default";
}

TEST(MetricsAllowTest, ErrorsNameTheKeyAndLine) {
  EXPECT_TRUE(Says(ErrorOf("http:\n  metrics_allow:\n    - 127.0.0.0/8\n    - localhost\n"), 4,
                   {"key 'http.metrics_allow[1]'", "'localhost' is not an address prefix"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  metrics_allow: [\"10.0.0.1/8\"]\n"), 2,
                   {"key 'http.metrics_allow[0]'", "host bits set"}));
  EXPECT_TRUE(Says(ErrorOf("http:\n  metrics_allow: 127.0.0.1\n"), 2,
                   {"key 'http.metrics_allow'", "expected a list"}));
}

}  // namespace
}  // namespace updns::config
