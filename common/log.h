// Logging to stderr: one line per event, logfmt style (key=value):
//
//   2026-11-29T08:00:00Z level=info event=listening addr=127.0.0.1@53 proto=udp
//
// The time (UTC), `level` and `event` come first; then the caller's fields
// in order. A value with a space, a quote, '=', a backslash or a control
// character, or an empty one, is written in double quotes with '"' and '\'
// escaped and control characters as \n, \t or \xNN, so every line splits
// back into its fields. Keys are identifiers written in the code.
//
// Thread-safe: each line is formatted in a stack buffer and written with one
// write(2), so lines of different threads never interleave. Nothing is
// allocated. A line longer than kMaxLogLine is cut at a field boundary and
// ends with `truncated=true`. Not for the query path (it is a syscall).
//
// Usage:
//   Log(LogLevel::kError, "zone_load_failed", {{"zone", name}, {"file", path},
//                                              {"error", status}});
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace updns {

class Status;

enum class LogLevel { kDebug, kInfo, kWarning, kError };

inline constexpr size_t kMaxLogLine = 4096;

// One key=value pair. Holds views: the key and a string value must outlive
// the Log() call (temporaries of the call's full expression do). Numbers
// are formatted into the field itself.
class LogField {
 public:
  LogField(std::string_view key, std::string_view value) noexcept : key_(key), text_(value) {}
  LogField(std::string_view key, const std::string& value) noexcept : key_(key), text_(value) {}
  LogField(std::string_view key, const char* value) noexcept
      : key_(key), text_(value ? value : "") {}
  LogField(std::string_view key, bool value) noexcept
      : key_(key), text_(value ? "true" : "false") {}
  // The status's message, or "ok".
  LogField(std::string_view key, const Status& status) noexcept;
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogField(std::string_view key, T value)
  noexcept : key_(key) {
    if constexpr (std::signed_integral<T>) {
      uint64_t bits = static_cast<uint64_t>(static_cast<int64_t>(value));
      SetNumber(value < 0 ? 0 - bits : bits, value < 0);
    } else {
      SetNumber(static_cast<uint64_t>(value), false);
    }
  }

  std::string_view key() const noexcept { return key_; }
  // Valid as long as this field (and a string value's owner) lives.
  std::string_view value() const noexcept {
    return number_size_ ? std::string_view(number_, number_size_) : text_;
  }

 private:
  void SetNumber(uint64_t magnitude, bool negative) noexcept;

  std::string_view key_;
  std::string_view text_;
  char number_[21] = {};  // a copy keeps its own digits; text_ never points here
  uint8_t number_size_ = 0;
};

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes one event line (see above) when `level` is enabled.
void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});

// Formats one event line into `out` (capacity >= 64) without the time and
// without the newline: "level=info event=x a=1". Returns its length. What
// Log() writes after the time; for tests.
size_t FormatLogLine(LogLevel level, std::string_view event, std::initializer_list<LogField> fields,
                     char* out, size_t capacity) noexcept;

}  // namespace updns
