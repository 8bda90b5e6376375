#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "common/status.h"

namespace updns {
namespace {

std::atomic<LogLevel> min_level{LogLevel::kInfo};
constexpr const char* kLevelNames[] = {"debug", "info", "warning", "error"};
// Room kept at the end of every line for " truncated=true".
constexpr std::string_view kTruncated = " truncated=true";

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

// Appends to a fixed buffer; a field either fits whole or is not written,
// so a cut line never ends inside a quoted value.
class LineWriter {
 public:
  LineWriter(char* out, size_t capacity) : out_(out), limit_(capacity - kTruncated.size()) {}

  bool Field(std::string_view key, std::string_view value) {
    if (truncated_) return false;
    size_t start = size_;
    bool ok = (size_ == 0 || Put(' ')) && Put(key) && Put('=') && Value(value);
    if (!ok) {
      size_ = start;
      truncated_ = true;
    }
    return ok;
  }

  size_t Finish() {
    if (truncated_) {
      std::memcpy(out_ + size_, kTruncated.data(), kTruncated.size());
      size_ += kTruncated.size();
    }
    return size_;
  }

 private:
  bool Put(char c) {
    if (size_ >= limit_) return false;
    out_[size_++] = c;
    return true;
  }
  bool Put(std::string_view s) {
    if (s.size() > limit_ - size_) return false;
    std::memcpy(out_ + size_, s.data(), s.size());
    size_ += s.size();
    return true;
  }
  bool Value(std::string_view value) {
    if (!NeedsQuotes(value)) return Put(value);
    if (!Put('"')) return false;
    for (unsigned char c : value) {
      bool ok = true;
      if (c == '"' || c == '\\') {
        ok = Put('\\') && Put(static_cast<char>(c));
      } else if (c == '\n') {
        ok = Put("\\n");
      } else if (c == '\t') {
        ok = Put("\\t");
      } else if (c < ' ' || c == 0x7f) {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        ok = Put(std::string_view(hex, 4));
      } else {
        ok = Put(static_cast<char>(c));
      }
      if (!ok) return false;
    }
    return Put('"');
  }

  char* out_;
  size_t limit_;
  size_t size_ = 0;
  bool truncated_ = false;
};

size_t Format(LogLevel level, std::string_view event, const LogField* fields, size_t count,
              char* out, size_t capacity) noexcept {
  LineWriter line(out, capacity);
  line.Field("level", kLevelNames[static_cast<int>(level)]);
  line.Field("event", event);
  for (size_t i = 0; i < count; ++i) line.Field(fields[i].key(), fields[i].value());
  return line.Finish();
}

void Write(LogLevel level, std::string_view event, const LogField* fields, size_t count) {
  char line[kMaxLogLine];
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &utc);
  n += Format(level, event, fields, count, line + n, sizeof line - n - 1);
  line[n++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, n);
  (void)ignored;
}

}  // namespace

LogField::LogField(std::string_view key, const Status& status) noexcept
    : key_(key), text_(status.ok() ? std::string_view("ok") : status.message()) {}

void LogField::SetNumber(uint64_t magnitude, bool negative) noexcept {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0);
  if (negative) number_[number_size_++] = '-';
  while (n > 0) number_[number_size_++] = digits[--n];
}

void SetLogLevel(LogLevel level) { min_level = level; }

bool LogEnabled(LogLevel level) { return level >= min_level.load(std::memory_order_relaxed); }

void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  Write(level, event, fields.begin(), fields.size());
}

size_t FormatLogLine(LogLevel level, std::string_view event, std::initializer_list<LogField> fields,
                     char* out, size_t capacity) noexcept {
  return Format(level, event, fields.begin(), fields.size(), out, capacity);
}

}  // namespace updns
