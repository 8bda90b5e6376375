// common/log.h: the key=value line format, its quoting, truncation, and one
// write per line.
#include "common/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace updns {
namespace {

std::string Format(LogLevel level, std::string_view event, std::initializer_list<LogField> fields,
                   size_t capacity = kMaxLogLine) {
  std::vector<char> buffer(capacity);
  size_t n = FormatLogLine(level, event, fields, buffer.data(), buffer.size());
  return std::string(buffer.data(), n);
}

TEST(LogFormatTest, LevelAndEventFirstThenFieldsInOrder) {
  EXPECT_EQ(Format(LogLevel::kInfo, "listening", {{"addr", "127.0.0.1@53"}, {"proto", "udp"}}),
            "level=info event=listening addr=127.0.0.1@53 proto=udp");
  EXPECT_EQ(Format(LogLevel::kWarning, "x", {}), "level=warning event=x");
  EXPECT_EQ(Format(LogLevel::kError, "x", {}), "level=error event=x");
  EXPECT_EQ(Format(LogLevel::kDebug, "x", {}), "level=debug event=x");
}

TEST(LogFormatTest, NumbersBoolsStringsAndStatuses) {
  std::string owned = "dyn.example.";
  EXPECT_EQ(Format(LogLevel::kInfo, "e",
                   {{"u", uint64_t{18446744073709551615u}},
                    {"i", -42},
                    {"min", INT64_MIN},
                    {"zero", 0u},
                    {"b", true},
                    {"s", owned},
                    {"sv", std::string_view("x")}}),
            "level=info event=e u=18446744073709551615 i=-42 min=-9223372036854775808 zero=0 "
            "b=true s=dyn.example. sv=x");
  EXPECT_EQ(Format(LogLevel::kError, "e",
                   {{"error", Status::Full("store db: the map is full")}, {"ok", Status::Ok()}}),
            "level=error event=e error=\"store db: the map is full\" ok=ok");
}

TEST(LogFormatTest, ValuesThatWouldNotSplitBackAreQuotedAndEscaped) {
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"msg", "two words"}}),
            "level=info event=e msg=\"two words\"");
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"empty", ""}}), "level=info event=e empty=\"\"");
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"q", "say \"hi\""}}),
            "level=info event=e q=\"say \\\"hi\\\"\"");
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"eq", "a=b"}}), "level=info event=e eq=\"a=b\"");
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"bs", "C:\\x"}}), "level=info event=e bs=\"C:\\\\x\"");
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"nl", "a\nb\tc"}}),
            "level=info event=e nl=\"a\\nb\\tc\"");
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"ctl", std::string_view("a\0b\x1b", 4)}}),
            "level=info event=e ctl=\"a\\x00b\\x1b\"");
  // Non-ASCII bytes (UTF-8) pass as they are.
  EXPECT_EQ(Format(LogLevel::kInfo, "e", {{"to", "jürgen@example.org"}}),
            "level=info event=e to=jürgen@example.org");
}

TEST(LogFormatTest, ALongLineIsCutAtAFieldBoundaryAndSaysSo) {
  std::string big(200, 'x');
  std::string line = Format(LogLevel::kInfo, "e", {{"a", "1"}, {"big", big}, {"c", "3"}}, 100);
  EXPECT_EQ(line, "level=info event=e a=1 truncated=true");
  EXPECT_LE(line.size(), 100u);
  // A quoted value is never cut in the middle.
  std::string spaced(70, ' ');
  line = Format(LogLevel::kInfo, "e", {{"a", spaced}}, 64);
  EXPECT_EQ(line, "level=info event=e truncated=true");
}

// Splits a line written by Log() back into its fields.
std::vector<std::pair<std::string, std::string>> SplitLogfmt(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> fields;
  size_t i = 0;
  while (i < text.size()) {
    size_t eq = text.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = text.substr(i, eq - i);
    std::string value;
    i = eq + 1;
    if (i < text.size() && text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          char c = text[++i];
          value += c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
          value += text[i];
        }
      }
      ++i;  // the closing quote
    } else {
      size_t end = text.find(' ', i);
      value = text.substr(i, end == std::string::npos ? std::string::npos : end - i);
      i = end == std::string::npos ? text.size() : end;
    }
    fields.emplace_back(key, value);
    if (i < text.size() && text[i] == ' ') ++i;
  }
  return fields;
}

TEST(LogFormatTest, QuotedValuesSplitBackToWhatWasLogged) {
  std::string tricky = "a \"b\" c=d \\ e\tf";
  auto fields = SplitLogfmt(Format(LogLevel::kInfo, "e", {{"v", tricky}, {"n", 7}}));
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[2], (std::pair<std::string, std::string>{"v", tricky}));
  EXPECT_EQ(fields[3], (std::pair<std::string, std::string>{"n", "7"}));
}

// Runs `body` with stderr sent to a temp file; returns what was written.
template <typename Body>
std::string CaptureStderr(Body body) {
  char path[] = "/tmp/updns-log-test-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  body();
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  return text.str();
}

TEST(LogTest, WritesOneTimestampedLinePerEventAndHonoursTheLevel) {
  std::string out = CaptureStderr([] {
    SetLogLevel(LogLevel::kInfo);
    Log(LogLevel::kInfo, "started", {{"workers", 2}});
    Log(LogLevel::kDebug, "hidden");
    Log(LogLevel::kWarning, "bare");
  });
  std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ level=(info|warning) event=\w+.*)");
  std::stringstream in(out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_TRUE(std::regex_match(lines[0], line)) << lines[0];
  EXPECT_EQ(lines[0].substr(21), "level=info event=started workers=2");
  EXPECT_EQ(lines[1].substr(21), "level=warning event=bare");
}

TEST(LogTest, LinesOfManyThreadsNeverInterleave) {
  std::string out = CaptureStderr([] {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([t] {
        std::string payload(300, static_cast<char>('a' + t));
        for (int i = 0; i < 200; ++i) Log(LogLevel::kInfo, "burst", {{"t", t}, {"p", payload}});
      });
    }
    for (auto& thread : threads) thread.join();
  });
  std::stringstream in(out);
  int count = 0;
  for (std::string l; std::getline(in, l); ++count) {
    ASSERT_EQ(l.size(), 21u + std::string("level=info event=burst t=0 p=").size() + 300) << l;
    char c = l.back();
    EXPECT_EQ(l.substr(l.size() - 300), std::string(300, c));
  }
  EXPECT_EQ(count, 8 * 200);
}

}  // namespace
}  // namespace updns
