// `make install`'s CMake half into a temp prefix: the programs, the systemd
// unit with the configured paths, the README and the examples. The unit is
// checked by systemd itself (systemd-analyze verify, and its exposure score
// under `security`), and the installed updnsd accepts the installed config.
#include <gtest/gtest.h>

#include <string>

#include "tests/server/daemon_fixture.h"

namespace updns::test {
namespace {

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

class InstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    prefix_ = dir_.path() / "prefix";
    CommandResult r = RunCommand({CMAKE_COMMAND, "--install", UPDNS_BINARY_DIR, "--prefix",
                                  prefix_.string()},
                                 "", dir_.path(), std::chrono::milliseconds(60000));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  // The installed unit with the configured sbin directory moved to where
  // this test installed the programs.
  std::filesystem::path RelocatedUnit() const {
    std::string unit = ReadFile(prefix_ / "lib/systemd/system/updnsd.service");
    std::filesystem::path copy = dir_.path() / "updnsd.service";
    WriteFile(copy, Replace(unit, UPDNS_SBIN_DIR, (prefix_ / "sbin").string()));
    return copy;
  }

  TempDir dir_;
  std::filesystem::path prefix_;
};

TEST_F(InstallTest, InstallsProgramsUnitDocsAndExamples) {
  for (const char* file : {"sbin/updnsd", "sbin/updnsctl", "lib/systemd/system/updnsd.service",
                           "share/doc/updns/README.md", "share/doc/updns/examples/updns.yaml",
                           "share/doc/updns/examples/dyn.example.zone"}) {
    EXPECT_TRUE(std::filesystem::exists(prefix_ / file)) << file;
  }
  std::string unit = ReadFile(prefix_ / "lib/systemd/system/updnsd.service");
  EXPECT_NE(unit.find(std::string("ExecStart=") + UPDNS_SBIN_DIR +
                      "/updnsd --config /etc/updns/updns.yaml\n"),
            std::string::npos)
      << unit;
  EXPECT_NE(unit.find("ExecReload=/bin/kill -HUP $MAINPID"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("@UPDNS_"), std::string::npos) << "an unsubstituted @VAR@:\n" << unit;

  CommandResult version = RunCommand({(prefix_ / "sbin/updnsd").string(), "--version"}, "",
                                     dir_.path());
  EXPECT_EQ(version.exit_code, 0) << version.Describe();
  CommandResult check =
      RunCommand({(prefix_ / "sbin/updnsd").string(), "--config",
                  (prefix_ / "share/doc/updns/examples/updns.yaml").string(), "--check"},
                 "", dir_.path());
  EXPECT_EQ(check.exit_code, 0) << "the installed example config: " << check.Describe();
}

TEST_F(InstallTest, SystemdAcceptsTheUnitAndRatesItHardened) {
  if (!HaveProgram("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed";
  std::filesystem::path unit = RelocatedUnit();
  CommandResult verify = RunCommand({"systemd-analyze", "verify", unit.string()}, "", dir_.path());
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();
  EXPECT_EQ(verify.err, "") << "warnings:\n" << verify.err;
  // 0 (locked down) .. 10 (exposed); systemd calls below 2 "OK".
  CommandResult security = RunCommand(
      {"systemd-analyze", "security", "--offline=yes", "--threshold=20", unit.string()}, "",
      dir_.path());
  EXPECT_EQ(security.exit_code, 0) << security.Describe();
  EXPECT_NE(security.out.find("Overall exposure level for updnsd.service: 1."), std::string::npos)
      << security.out;
}

}  // namespace
}  // namespace updns::test
