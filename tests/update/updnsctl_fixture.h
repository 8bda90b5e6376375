// A fixture for the tests that run the real updnsctl (UPDNSCTL_PATH)
// against a temporary store: the config written, dyn.example imported from
// store_fixture.h's kZoneText, then updnsctl run with stdin given and its
// output and exit status captured, and the store opened between runs.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/store.h"
#include "tests/support/process.h"
#include "tests/update/store_fixture.h"

namespace updns::testing_support {

class UpdnsctlFixture : public ::testing::Test {
 protected:
  using Outcome = test::CommandResult;

  // Writes updns.yaml, the store in the temp dir (map_size 64MiB) followed
  // by `rest`, and imports dyn.example with updnsctl.
  void WriteConfigAndImportZone(const std::string& rest) {
    std::string zone_file = dir_.Write("dyn.example.zone", kZoneText);
    config_ = dir_.Write("updns.yaml",
                         "storage:\n  path: " + dir_.File("db") + "\n  map_size: 64MiB\n" + rest);
    Outcome imported = Run({"zone", "import", "dyn.example", zone_file});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

  // Runs updnsctl --config CONFIG ARGS with `input` on stdin, without a
  // time limit.
  Outcome Run(const std::vector<std::string>& args, const std::string& input = "") {
    return test::RunUpdnsctl(config_, args, input, dir_.path(), test::kNoTimeout);
  }

  // Opened per check and closed before updnsctl runs again.
  std::unique_ptr<storage::Store> OpenStore() {
    storage::Options options;
    options.path = dir_.File("db");
    auto store = storage::Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  TempDir dir_;
  std::string config_;
};

}  // namespace updns::testing_support
