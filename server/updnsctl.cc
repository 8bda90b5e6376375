// updnsctl: operator commands on the store, whether or not updnsd runs.
// LMDB serializes our write transactions with the daemon's.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "server/setup.h"
#include "storage/schema.h"
#include "zone/name.h"
#include "zone/zone_file.h"

namespace {

constexpr const char* kUsage =
    "usage: updnsctl --config FILE COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  zone import ZONE FILE       load a master file as ZONE's data (one transaction;\n"
    "                              on error nothing changes)\n"
    "  zone export ZONE [OUTFILE]  write ZONE as a master file (default: stdout)\n"
    "  zone list                   configured zones and whether the store has them\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   the YAML configuration updnsd uses (required)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 on success, 1 when the command failed, 2 on a usage error.\n";

int Usage(const std::string& problem) {
  std::fprintf(stderr, "updnsctl: %s\n\n%s", problem.c_str(), kUsage);
  return 2;
}

int Fail(const updns::Status& status) {
  std::fprintf(stderr, "updnsctl: %s\n", std::string(status.message()).c_str());
  return 1;
}

int ZoneCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.empty()) return Usage("zone: missing subcommand (import, export, list)");
  const std::string& sub = args[0];
  if (sub == "list") {
    if (args.size() != 1) return Usage("zone list takes no arguments");
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    auto txn = (*store)->BeginRead();
    if (!txn.ok()) return Fail(txn.status());
    for (const config::ZoneConfig& zone : config.zones) {
      auto wire = zone::WireNameFromText(zone.name);
      auto record = wire.ok() ? storage::ReadZoneRecord(*txn, *wire) : wire.status();
      std::printf("%s\t%s\n", zone.name.c_str(), record.ok() ? "loaded" : "not in store");
    }
    return 0;
  }
  if (args.size() < 2) return Usage("zone " + sub + ": missing ZONE");
  const std::string& name = args[1];
  if (!config.FindZone(name))
    return Fail(Status::NotFound("zone " + name + " is not configured in " + config.source +
                                 "; add it under zones: first"));
  if (sub == "import") {
    if (args.size() != 3) return Usage("zone import needs ZONE and FILE");
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    auto result = zone::ImportZoneFile(**store, name, args[2]);
    if (!result.ok()) return Fail(result.status());
    std::printf("zone %s: imported %zu records at %zu names from %s\n", name.c_str(),
                result->records, result->nodes, args[2].c_str());
    return 0;
  }
  if (sub == "export") {
    if (args.size() > 3) return Usage("zone export takes ZONE and an optional OUTFILE");
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    if (args.size() == 3) {
      std::ofstream out(args[2]);
      if (!out) return Fail(Status::IoError("cannot write " + args[2]));
      if (Status s = zone::ExportZone(**store, name, out); !s.ok()) return Fail(s);
      out.close();
      if (!out) return Fail(Status::IoError("error writing " + args[2]));
      return 0;
    }
    if (Status s = zone::ExportZone(**store, name, std::cout); !s.ok()) return Fail(s);
    return std::cout.flush() ? 0 : 1;
  }
  return Usage("zone: unknown subcommand '" + sub + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && command.empty()) {
      if (i + 1 >= argc) return Usage("--config needs a FILE");
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0 && command.empty()) {
      config_path = a.substr(9);
    } else if ((a == "--help" || a == "-h") && command.empty()) {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      command.push_back(a);
    }
  }
  if (config_path.empty()) return Usage("--config FILE is required");
  if (command.empty()) return Usage("missing COMMAND");
  auto config = updns::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> rest(command.begin() + 1, command.end());
  if (command[0] == "zone") return ZoneCommand(*config, rest);
  return Usage("unknown command '" + command[0] + "'");
}
