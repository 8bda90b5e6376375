// Runs every fuzz target over its seed corpus (tests/fuzz/corpus/TARGET/)
// and its regressions (tests/fuzz/regressions/TARGET/: inputs that once
// crashed it), without libFuzzer. A broken input crashes this test; the
// file that did it is printed first.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_targets.h"

#if defined(__SANITIZE_ADDRESS__)
#define UPDNS_HAS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define UPDNS_HAS_SANITIZER 1
#endif
#endif
#ifdef UPDNS_HAS_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

namespace updns::fuzz {

// What gtest shows for a parameter (else the struct's bytes). Found by ADL,
// so in Target's namespace.
void PrintTo(const Target& target, std::ostream* os) { *os << target.name; }

namespace {

namespace fs = std::filesystem;

// The input being replayed, for the crash message (a fixed buffer: it is
// read from a signal handler).
char g_current[4096] = "";

void SayWhichInput() {
  if (g_current[0] == '\0') return;
  const char prefix[] = "\n*** fuzz replay crashed on input: ";
  (void)!write(STDERR_FILENO, prefix, sizeof prefix - 1);
  (void)!write(STDERR_FILENO, g_current, strlen(g_current));
  (void)!write(STDERR_FILENO, "\n", 1);
}

void OnFatalSignal(int signal_number) {
  SayWhichInput();
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void InstallCrashReport() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  for (int s : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(s, OnFatalSignal);
#ifdef UPDNS_HAS_SANITIZER
  __sanitizer_set_death_callback(SayWhichInput);
#endif
}

std::vector<fs::path> Inputs(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class FuzzReplay : public testing::TestWithParam<Target> {
 protected:
  // Runs the target over every file in `dir`; returns how many.
  size_t Replay(const fs::path& dir) {
    InstallCrashReport();
    std::vector<fs::path> files = Inputs(dir);
    for (const fs::path& file : files) {
      std::string bytes = Read(file);
      std::snprintf(g_current, sizeof g_current, "%s", file.c_str());
      EXPECT_EQ(GetParam().entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0)
          << file;
    }
    g_current[0] = '\0';
    return files.size();
  }
};

TEST_P(FuzzReplay, SeedCorpus) {
  size_t count = Replay(fs::path(UPDNS_FUZZ_DIR) / "corpus" / GetParam().name);
  EXPECT_GT(count, 0u) << "no seeds for " << GetParam().name;
}

TEST_P(FuzzReplay, Regressions) {
  Replay(fs::path(UPDNS_FUZZ_DIR) / "regressions" / GetParam().name);
}

// Empty and tiny inputs, which seed corpora rarely hold.
TEST_P(FuzzReplay, ShortInputs) {
  InstallCrashReport();
  std::snprintf(g_current, sizeof g_current, "(short inputs)");
  const uint8_t none = 0;
  EXPECT_EQ(GetParam().entry(&none, 0), 0);  // libFuzzer passes a valid pointer, never null
  for (int byte = 0; byte < 256; ++byte) {
    uint8_t one = static_cast<uint8_t>(byte);
    EXPECT_EQ(GetParam().entry(&one, 1), 0);
  }
  g_current[0] = '\0';
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, testing::ValuesIn(kTargets),
                         [](const testing::TestParamInfo<Target>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace updns::fuzz
