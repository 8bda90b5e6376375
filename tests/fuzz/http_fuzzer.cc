// The HTTP side: the bytes of one connection through the parser the server
// uses (server::HttpRequestParser: http-parser, limits, pipelining), fed at
// once and again in small pieces; both must give the same requests and the
// same end. Each request then goes where the daemon sends it: the dyndns2
// parameters, query-string decoding and Basic auth
// (update::ParseDyndnsRequest, from several client addresses), and the API
// route table.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "server/api_request.h"
#include "server/http_request_parser.h"
#include "tests/fuzz/fuzz_targets.h"
#include "update/dyndns2.h"

namespace updns::fuzz {
namespace {

using server::HttpRequest;
using server::HttpRequestParser;

// Small limits, so that inputs reach them.
constexpr server::HttpParserLimits kLimits{1024, 2048};

struct Parsed {
  std::vector<HttpRequest> requests;
  std::vector<bool> keep_alive;
  HttpRequestParser::Outcome end = HttpRequestParser::Outcome::kNeedMore;
  int error_status = 0;
};

// Counts the parser's events; "100 Continue" is answered (true) as the
// server does when its socket takes it.
struct Events : server::HttpParserEvents {
  void OnRequestBegin() override { ++begun; }
  bool OnExpectContinue() override {
    ++continues;
    return true;
  }
  int begun = 0, continues = 0;
};

// Takes every complete request off the parser, as the server does after
// each response.
void Drain(HttpRequestParser& parser, Parsed& out) {
  while (true) {
    out.end = parser.Parse();
    if (out.end != HttpRequestParser::Outcome::kRequest) break;
    out.requests.push_back(parser.request());
    out.keep_alive.push_back(parser.keep_alive());
    parser.Next();
  }
  out.error_status = parser.error_status();
}

bool SameRequest(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.path == b.path && a.query == b.query && a.headers == b.headers &&
         a.body == b.body && a.http_major == b.http_major && a.http_minor == b.http_minor;
}

bool HasUpper(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

// Public and private, IPv4, IPv6 and IPv4-mapped, and none at all: the
// rules about a private myip depend on the source.
const std::vector<sockaddr_storage>& Sources() {
  static const std::vector<sockaddr_storage> sources = {
      Address("203.0.113.5"), Address("192.168.1.2"), Address("2001:db8::5"),
      Address("::ffff:10.0.0.1"), sockaddr_storage{}};
  return sources;
}

void Dyndns(const HttpRequest& request) {
  // As server/dyndns_service.cc builds the parameters.
  std::string params = request.query;
  if (request.method == "POST" && !request.body.empty()) {
    if (!params.empty()) params.push_back('&');
    params += request.body;
  }
  for (const sockaddr_storage& source : Sources()) {
    auto parsed = update::ParseDyndnsRequest(params, request.Header("authorization"), source);
    if (!parsed.ok()) {
      Check(!parsed.status().message().empty(), "a refused dyndns2 request says why");
      continue;
    }
    Check(parsed->ipv4.empty() || parsed->ipv4.size() == 4, "myip gives 4 bytes of IPv4");
    Check(parsed->ipv6.empty() || parsed->ipv6.size() == 16, "myipv6 gives 16 bytes of IPv6");
    Check(!HasUpper(parsed->user), "the dyndns2 user is lowercased");
    // One final dot is removed; "a.example.." keeps one and is notfqdn later.
    for (const std::string& name : parsed->hostnames)
      Check(!HasUpper(name), "dyndns2 host names are lowercased");
  }
}

void Api(const HttpRequest& request) {
  server::api::Route route = server::api::MatchRoute(request.path);
  (void)server::api::MethodAllowed(route, request.method);
  Check(route.host.find('\0') == std::string::npos, "an API host segment never holds NUL");
}

}  // namespace

int FuzzHttp(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  Events whole_events;
  HttpRequestParser whole(kLimits, &whole_events);
  Parsed at_once;
  whole.Append(bytes);
  Drain(whole, at_once);

  // Pieces of 1 to 16 bytes, from a generator seeded by the input so that a
  // crash reproduces.
  Events piece_events;
  HttpRequestParser pieces(kLimits, &piece_events);
  Parsed in_pieces;
  uint32_t state = static_cast<uint32_t>(size) * 2654435761u + 1;
  for (size_t pos = 0; pos < size;) {
    state = state * 1103515245u + 12345u;
    size_t n = std::min<size_t>(size - pos, 1 + (state >> 16) % 16);
    pieces.Append(bytes.substr(pos, n));
    pos += n;
    Parsed step;
    Drain(pieces, step);
    for (size_t i = 0; i < step.requests.size(); ++i) {
      in_pieces.requests.push_back(std::move(step.requests[i]));
      in_pieces.keep_alive.push_back(step.keep_alive[i]);
    }
    in_pieces.end = step.end;
    in_pieces.error_status = step.error_status;
    if (step.end == HttpRequestParser::Outcome::kError) break;
  }

  Check(at_once.requests.size() == in_pieces.requests.size(),
        "as many requests whether the bytes come at once or in pieces");
  for (size_t i = 0; i < at_once.requests.size(); ++i) {
    Check(SameRequest(at_once.requests[i], in_pieces.requests[i]),
          "the same requests whether the bytes come at once or in pieces");
    Check(at_once.keep_alive[i] == in_pieces.keep_alive[i], "the same keep-alive either way");
  }
  Check(at_once.end == in_pieces.end && at_once.error_status == in_pieces.error_status,
        "the same end whether the bytes come at once or in pieces");
  Check(whole_events.continues == piece_events.continues, "the same 100-continue either way");
  if (at_once.end == HttpRequestParser::Outcome::kError) {
    int s = at_once.error_status;
    Check(s == 400 || s == 413 || s == 431, "a failed request answers 400, 413 or 431");
  }

  for (const HttpRequest& request : at_once.requests) {
    Check(!request.method.empty() && !request.path.empty(), "a request has a method and a path");
    Check(request.body.size() <= kLimits.max_body_bytes, "the body limit holds");
    for (const auto& [name, value] : request.headers) {
      Check(!HasUpper(name), "header names are lowercased");
      Check(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos,
            "headers never hold NUL");
    }
    Dyndns(request);
    Api(request);
  }
  return 0;
}

}  // namespace updns::fuzz
