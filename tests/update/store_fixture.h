// A temporary store with the zone dyn.example imported from a small master
// file, for the tests of update/.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "zone/name.h"
#include "zone/zone_file.h"

namespace updns::testing_support {

inline constexpr std::string_view kZoneText =
    "$ORIGIN dyn.example.\n"
    "$TTL 3600\n"
    "@       IN SOA ns1.dyn.example. hostmaster.dyn.example. 2024010100 3600 900 1209600 300\n"
    "        IN NS  ns1\n"
    "ns1     IN A   192.0.2.1\n"
    "static  IN A   192.0.2.10\n"
    "static  IN TXT \"hello\"\n"
    "sub     IN NS  ns.sub\n"
    "ns.sub  IN A   192.0.2.53\n";

// A directory removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "updns_update_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  std::string Write(std::string_view name, std::string_view text) const {
    std::string file = File(name);
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  std::string path_;
};

// Success when `status` failed with `code` and a message naming every one
// of `parts`.
inline ::testing::AssertionResult Says(const Status& status, Status::Code code,
                                       std::initializer_list<std::string_view> parts) {
  if (status.ok()) return ::testing::AssertionFailure() << "succeeded";
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "code " << static_cast<int>(status.code()) << ": " << status.message();
  }
  for (std::string_view part : parts) {
    if (status.message().find(part) == std::string_view::npos)
      return ::testing::AssertionFailure() << "'" << status.message() << "' lacks '" << part << "'";
  }
  return ::testing::AssertionSuccess();
}

// Lowercased wire form of a presentation name.
inline std::string Wire(std::string_view text) {
  auto wire = zone::WireNameFromText(text);
  EXPECT_TRUE(wire.ok()) << text;
  std::string out = wire.ok() ? *wire : std::string(1, '\0');
  zone::LowercaseWireName(out);
  return out;
}

// The node value of `name` in zone `apex`, or nullopt.
inline std::optional<std::string> NodeValue(const storage::Txn& txn, std::string_view apex,
                                            std::string_view name) {
  auto zone = storage::ReadZoneRecord(txn, Wire(apex));
  if (!zone.ok()) return std::nullopt;
  storage::NodeKey key;
  if (!key.Assign(zone->zone_id, Wire(name))) return std::nullopt;
  auto value = txn.Get(storage::Table::kNodes, key.view());
  if (!value) return std::nullopt;
  return std::string(*value);
}

// The SOA serial of the zone at `apex` (0 when unreadable).
inline uint32_t Serial(const storage::Txn& txn, std::string_view apex) {
  auto value = NodeValue(txn, apex, apex);
  if (!value) return 0;
  storage::NodeView node(*value);
  storage::RRsetView soa;
  if (!node.Valid() || !node.Find(6, soa) || soa.body.size() < 2 + 20) return 0;
  size_t length = storage::LoadU16(soa.body.data());
  return storage::LoadU32(soa.body.data() + 2 + length - 20);
}

// Opens a store in a fresh directory and imports kZoneText as dyn.example.
inline std::unique_ptr<storage::Store> OpenStoreWithZone(const TempDir& dir) {
  storage::Options options;
  options.path = dir.File("db");
  options.map_size = uint64_t{64} << 20;
  auto store = storage::Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return nullptr;
  std::string zone_file = dir.Write("dyn.example.zone", kZoneText);
  auto imported = zone::ImportZoneFile(**store, "dyn.example", zone_file);
  EXPECT_TRUE(imported.ok()) << imported.status().message();
  return std::move(store).value();
}

}  // namespace updns::testing_support
