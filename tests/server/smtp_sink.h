// What tests/data/smtp_sink.py wrote to its file, parsed: the messages the
// SMTP sink accepted, for the mailer tests. Header-only, standard library
// only.
#pragma once

#include <string>
#include <vector>

namespace updns::test {

// One message the sink accepted.
struct Received {
  std::string envelope;  // "MAIL FROM:<a> RCPT TO:<b>"
  std::string message;   // headers and body as the relay got them (CRLF)

  // The value of the first header `name` ("To"), "" when absent.
  std::string Header(const std::string& name) const {
    size_t head_end = message.find("\r\n\r\n");
    std::string head = message.substr(0, head_end);
    std::string prefix = name + ": ";
    for (size_t at = 0; at < head.size();) {
      size_t end = head.find("\r\n", at);
      if (end == std::string::npos) end = head.size();
      if (head.compare(at, prefix.size(), prefix) == 0)
        return head.substr(at + prefix.size(), end - at - prefix.size());
      at = end + 2;
    }
    return "";
  }
  std::string Body() const {
    size_t head_end = message.find("\r\n\r\n");
    return head_end == std::string::npos ? "" : message.substr(head_end + 4);
  }
};

// What smtp_sink.py wrote to its file: "==> ENVELOPE\nMESSAGE\n<== END\n"...
inline std::vector<Received> ParseSinkFile(const std::string& text) {
  std::vector<Received> out;
  for (size_t start = text.find("==> "); start != std::string::npos;
       start = text.find("==> ", start)) {
    size_t head_end = text.find('\n', start);
    if (head_end == std::string::npos) break;
    size_t end = text.find("\n<== END\n", head_end);
    if (end == std::string::npos) break;
    out.push_back({text.substr(start + 4, head_end - start - 4),
                   text.substr(head_end + 1, end - head_end - 1)});
    start = end;
  }
  return out;
}

}  // namespace updns::test
