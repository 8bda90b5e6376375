// A strict reader of the Prometheus text exposition format (0.0.4) for the
// /metrics tests: checks every line and gives the samples by series.
// Header-only.
#pragma once

#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace updns::test {

struct PrometheusText {
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram, ...
  std::map<std::string, std::string> helps;  // family -> help text
  // "name{a=\"b\",c=\"d\"}" (as written) -> value.
  std::map<std::string, double> samples;
  std::string error;  // first problem found; empty when the text is valid

  bool ok() const { return error.empty(); }

  // The sample's value; 0 when the series is absent (a counter not yet
  // moved is left out).
  double Value(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? 0 : it->second;
  }
  bool Has(const std::string& series) const { return samples.count(series) != 0; }
};

// The family a sample belongs to: histograms' _bucket, _sum and _count
// series belong to the histogram's family.
inline std::string FamilyOf(const std::string& name,
                            const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

inline PrometheusText ParsePrometheusText(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
  static const std::regex kType(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")"
      R"((?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\S+))");
  PrometheusText out;
  if (!text.empty() && text.back() != '\n') out.error = "the text does not end with a newline";
  std::stringstream in(text);
  int number = 0;
  for (std::string line; std::getline(in, line) && out.ok();) {
    ++number;
    std::string where = "line " + std::to_string(number) + " '" + line + "': ";
    std::smatch m;
    if (line.empty()) continue;
    if (std::regex_match(line, m, kHelp)) {
      if (!out.helps.emplace(m[1], m[2]).second) out.error = where + "a second HELP";
    } else if (std::regex_match(line, m, kType)) {
      if (!out.types.emplace(m[1], m[2]).second) out.error = where + "a second TYPE";
    } else if (line[0] == '#') {
      out.error = where + "a comment that is neither HELP nor TYPE";
    } else if (std::regex_match(line, m, kSample)) {
      std::string name = m[1];
      std::string value = m[3];
      if (!out.types.count(FamilyOf(name, out.types))) {
        out.error = where + "no TYPE line before the sample";
        break;
      }
      char* end = nullptr;
      double number_value = std::strtod(value.c_str(), &end);
      if (value != "+Inf" && value != "-Inf" && value != "NaN" && *end != '\0') {
        out.error = where + "the value is not a number";
        break;
      }
      std::string series = name + std::string(m[2]);
      if (!out.samples.emplace(series, number_value).second)
        out.error = where + "the series appears twice";
    } else {
      out.error = where + "not 'name{labels} value'";
    }
  }
  for (const auto& [family, type] : out.types) {
    if (!out.ok()) break;
    if (!out.helps.count(family)) out.error = "family " + family + " has no HELP";
  }
  return out;
}

}  // namespace updns::test
