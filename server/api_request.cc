#include "server/api_request.h"

#include <ctime>
#include <vector>

namespace updns::server::api {
namespace {

// Client input may be any bytes (a path segment, a name): never let an
// invalid UTF-8 sequence turn an answer into an exception.
std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The deepest nesting of arrays and objects in `text`, counted outside
// strings, is at most `limit`. Checked before parsing so that no input
// makes the parser or the value's destructor recurse deeply.
bool NestingWithin(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// %XX decoding of one path segment; nullopt for a bad escape or a NUL.
std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int value = 0;
    for (size_t j = 1; j <= 2; ++j) {
      char c = text[i + j];
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0) return std::nullopt;
      value = value * 16 + digit;
    }
    if (value == 0) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

}  // namespace

// --- Answers -----------------------------------------------------------------

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.headers.emplace_back("Cache-Control", "no-store");
  response.body = Dump(body) + "\n";
  return response;
}

HttpResponse Error(int status, std::string_view code, std::string_view message, const Json& extra) {
  Json error = {{"code", code}, {"message", message}};
  for (const auto& [key, value] : extra.items()) error[key] = value;
  HttpResponse response = JsonResponse(status, {{"error", std::move(error)}});
  if (status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"updns\"");
  return response;
}

HttpResponse NoContent() {
  HttpResponse response;
  response.status = 204;
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

std::string IsoTime(uint64_t seconds) {
  time_t t = static_cast<time_t>(seconds);
  tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// --- Requests ----------------------------------------------------------------

Body ParseBody(const HttpRequest& request) {
  Body body;
  if (!NestingWithin(request.body, kMaxJsonDepth)) {
    body.error = Error(400, "invalid_json",
                       "The body nests arrays or objects deeper than " +
                           std::to_string(kMaxJsonDepth) + " levels.");
    return body;
  }
  body.object = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.object.is_discarded()) {
    body.error = Error(400, "invalid_json",
                       request.body.empty() ? "The request needs a JSON object as its body."
                                            : "The body is not valid JSON.");
  } else if (!body.object.is_object()) {
    body.error = Error(422, "invalid_body", "The body must be a JSON object.");
  }
  return body;
}

Field StringField(const Json& object, const char* name, size_t max_size) {
  Field field;
  auto it = object.find(name);
  Json which = {{"field", name}};
  if (it == object.end() || it->is_null()) {
    field.error =
        Error(422, "missing_field", "Field '" + std::string(name) + "' is missing.", which);
  } else if (!it->is_string()) {
    field.error =
        Error(422, "invalid_field", "Field '" + std::string(name) + "' must be a string.", which);
  } else if (it->get_ref<const std::string&>().size() > max_size) {
    field.error = Error(
        422, "invalid_field",
        "Field '" + std::string(name) + "' is longer than " + std::to_string(max_size) + " bytes.",
        which);
  } else {
    field.value = it->get<std::string>();
  }
  return field;
}

// --- Routes ------------------------------------------------------------------

Route MatchRoute(std::string_view path) {
  Route route;
  if (path.size() > kPrefix.size() + 1 && path.back() == '/') path.remove_suffix(1);
  if (path.substr(0, kPrefix.size() + 1) != "/api/v1/") return route;
  path.remove_prefix(kPrefix.size() + 1);
  std::vector<std::string_view> s;
  while (true) {
    size_t slash = path.find('/');
    s.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  auto set = [&](Endpoint e, const char* allow) {
    route.endpoint = e;
    route.allow = allow;
    return route;
  };
  size_t n = s.size();
  if (n == 1 && s[0] == "login") return set(Endpoint::kLogin, "POST");
  if (n == 2 && s[0] == "login" && s[1] == "reseller") return set(Endpoint::kResellerLogin, "POST");
  if (n == 1 && s[0] == "logout") return set(Endpoint::kLogout, "POST");
  if (n == 1 && s[0] == "account") return set(Endpoint::kAccount, "GET, HEAD");
  if (n == 1 && s[0] == "hosts") return set(Endpoint::kHosts, "GET, HEAD, POST");
  if (n == 2 && s[0] == "hosts" && s[1] == "move") return set(Endpoint::kHostMove, "POST");
  if (n == 2 && s[0] == "tokens" && s[1] == "missing") return set(Endpoint::kMissingTokens, "POST");
  if (n == 1 && s[0] == "link") return set(Endpoint::kLink, "POST, DELETE");
  if (n == 2 && s[0] == "password" && s[1] == "reset") return set(Endpoint::kPasswordReset, "POST");
  if ((n == 2 || n == 3) && s[0] == "hosts" && !s[1].empty()) {
    auto host = PercentDecode(s[1]);
    if (!host) return route;
    route.host = std::move(*host);
    if (n == 2) return set(Endpoint::kHost, "DELETE");
    if (s[2] == "token") return set(Endpoint::kHostToken, "POST");
    if (s[2] == "move-token") return set(Endpoint::kHostMoveToken, "POST");
  }
  return route;
}

bool MethodAllowed(const Route& route, std::string_view method) {
  std::string_view allow = route.allow;
  size_t pos = allow.find(method);
  if (pos == std::string_view::npos) return false;
  size_t end = pos + method.size();
  return (pos == 0 || allow[pos - 1] == ' ') && (end == allow.size() || allow[end] == ',');
}

}  // namespace updns::server::api
