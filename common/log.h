// Minimal logging to stderr: one line per event, with time and level.
// Thread-safe (one write(2) per line). Not for the query path.
#pragma once

namespace updns {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
void Log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));


}  // namespace updns
