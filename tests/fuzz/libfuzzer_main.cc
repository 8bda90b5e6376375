// libFuzzer's entry point for one target, chosen when it is compiled
// (UPDNS_FUZZ_ENTRY, set in CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return UPDNS_FUZZ_ENTRY(data, size);
}
