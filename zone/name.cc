#include "zone/name.h"

#include <cstdio>

namespace updns::zone {

Result<std::string> WireNameFromText(std::string_view text) {
  std::string q(text);
  if (text == "." || text.empty()) return std::string(1, '\0');
  std::string wire, label;
  auto finish_label = [&]() -> Status {
    if (label.empty()) return Status::Invalid("empty label in name '" + q + "'");
    if (label.size() > 63) return Status::Invalid("label longer than 63 bytes in name '" + q + "'");
    wire.push_back(static_cast<char>(label.size()));
    wire += label;
    label.clear();
    return Status::Ok();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (Status s = finish_label(); !s.ok()) return s;
      if (i + 1 == text.size()) break;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) return Status::Invalid("dangling backslash in name '" + q + "'");
      if (i + 3 < text.size() && isdigit(static_cast<unsigned char>(text[i + 1])) &&
          isdigit(static_cast<unsigned char>(text[i + 2])) &&
          isdigit(static_cast<unsigned char>(text[i + 3]))) {
        int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return Status::Invalid("escape above \\255 in name '" + q + "'");
        label.push_back(static_cast<char>(v));
        i += 3;
      } else {
        label.push_back(text[++i]);
      }
    } else {
      label.push_back(c);
    }
    if (i + 1 == text.size() && !label.empty()) {
      if (Status s = finish_label(); !s.ok()) return s;
    }
  }
  wire.push_back(0);
  if (wire.size() > 255) return Status::Invalid("name longer than 255 bytes: '" + q + "'");
  return wire;
}

Result<std::string> LowercaseWireNameFromText(std::string_view text) {
  auto wire = WireNameFromText(text);
  if (wire.ok()) LowercaseWireName(*wire);
  return wire;
}

std::string TextFromWireName(std::string_view wire) {
  if (wire.empty() || wire[0] == 0) return ".";
  std::string out;
  for (size_t pos = 0; pos < wire.size() && wire[pos] != 0;) {
    size_t len = static_cast<unsigned char>(wire[pos]);
    for (size_t j = 1; j <= len && pos + j < wire.size(); ++j) {
      auto c = static_cast<unsigned char>(wire[pos + j]);
      if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
          c == '$') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c <= 0x20 || c >= 0x7f) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\%03u", c);
        out += buf;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    out.push_back('.');
    pos += 1 + len;
  }
  return out;
}

void LowercaseWireName(std::string& wire) {
  for (size_t pos = 0; pos < wire.size() && wire[pos] != 0;) {
    size_t len = static_cast<unsigned char>(wire[pos]);
    for (size_t j = 1; j <= len && pos + j < wire.size(); ++j) {
      char& c = wire[pos + j];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    pos += 1 + len;
  }
}

bool IsSubdomain(std::string_view name, std::string_view ancestor) {
  std::string a(name), b(ancestor);
  LowercaseWireName(a);
  LowercaseWireName(b);
  // Walk `a` label by label until the remaining suffix has b's length.
  for (size_t pos = 0; pos < a.size();) {
    if (a.size() - pos == b.size()) return a.compare(pos, std::string::npos, b) == 0;
    if (a.size() - pos < b.size() || a[pos] == 0) return false;
    pos += 1 + static_cast<unsigned char>(a[pos]);
  }
  return false;
}

}  // namespace updns::zone
