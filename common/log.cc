#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <algorithm>

namespace updns {
namespace {
std::atomic<LogLevel> min_level{LogLevel::kInfo};
constexpr const char* kLevelNames[] = {"debug", "info", "warning", "error"};
}  // namespace

void SetLogLevel(LogLevel level) { min_level = level; }

void Log(LogLevel level, const char* format, ...) {
  if (level < min_level.load(std::memory_order_relaxed)) return;
  char line[2048];
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  int n = static_cast<int>(strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &utc));
  n += std::snprintf(line + n, sizeof line - n, "%s: ", kLevelNames[static_cast<int>(level)]);
  va_list args;
  va_start(args, format);
  int m = std::vsnprintf(line + n, sizeof line - n - 1, format, args);
  va_end(args);
  n = m < 0 ? n : std::min<int>(n + m, sizeof line - 2);
  line[n++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, n);
  (void)ignored;
}

}  // namespace updns
