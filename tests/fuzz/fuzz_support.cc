#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_targets.h"
#include "zone/zone_file.h"

namespace updns::fuzz {
namespace {

std::mutex g_mutex;
std::vector<std::string>* g_dirs = nullptr;  // guarded by g_mutex

void RemoveScratchDirs() {
  std::lock_guard lock(g_mutex);
  if (g_dirs == nullptr) return;
  for (const std::string& dir : *g_dirs) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}

}  // namespace

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

std::string ScratchDir(const char* name) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = access("/dev/shm", W_OK) == 0  ? "/dev/shm"
                     : tmpdir != nullptr && *tmpdir ? tmpdir
                                                    : "/tmp";
  std::string path = base + "/updns_fuzz_" + name + "_XXXXXX";
  Check(mkdtemp(path.data()) != nullptr, "cannot create a scratch directory");
  std::lock_guard lock(g_mutex);
  if (g_dirs == nullptr) {
    // Never destroyed, so that the handler finds it whatever the order of
    // exit-time destruction. (A crash leaves the directories behind.)
    g_dirs = new std::vector<std::string>;
    std::atexit(RemoveScratchDirs);
  }
  g_dirs->push_back(path);
  return path;
}

std::unique_ptr<storage::Store> OpenStore(const std::string& path, uint64_t map_size) {
  storage::Options options;
  options.path = path;
  options.map_size = map_size;
  auto store = storage::Store::Open(options);
  if (!store.ok()) std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
  Check(store.ok(), "a fuzz target's store opens");
  return std::move(store).value();
}

void ImportZone(storage::Store& store, const std::string& dir, const std::string& zone,
                const char* text) {
  std::string path = dir + "/" + zone + ".zone";
  std::ofstream(path) << text;
  auto imported = zone::ImportZoneFile(store, zone, path);
  if (!imported.ok())
    std::fprintf(stderr, "%s\n", std::string(imported.status().message()).c_str());
  Check(imported.ok(), "a fuzz target's zone imports");
}

sockaddr_storage Address(const char* text) {
  sockaddr_storage ss{};
  if (std::strchr(text, ':') != nullptr) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &a.sin6_addr);
    std::memcpy(&ss, &a, sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, text, &a.sin_addr);
    std::memcpy(&ss, &a, sizeof a);
  }
  return ss;
}

}  // namespace updns::fuzz
