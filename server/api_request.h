// The HTTP and JSON side of the API (server/api_service.h), apart from the
// store: answers and error bodies, bounded parsing of request bodies and
// fields, and the route table. Private to server/; nothing here touches the
// store or blocks. (The failed-login throttle is server/throttle.h.)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "server/http_server.h"

namespace updns::server::api {

using Json = nlohmann::ordered_json;  // members stay in the order written

inline constexpr std::string_view kPrefix = "/api/v1";
// Arrays and objects nested deeper than this are refused before parsing.
inline constexpr int kMaxJsonDepth = 16;

// --- Answers ----------------------------------------------------------------

// `body` as application/json with "Cache-Control: no-store" (answers carry
// tokens). Invalid UTF-8 from client input is replaced, never thrown.
HttpResponse JsonResponse(int status, const Json& body);
// {"error": {"code": code, "message": message, ...extra}}; a 401 also gets
// "WWW-Authenticate: Bearer realm="updns"".
HttpResponse Error(int status, std::string_view code, std::string_view message,
                   const Json& extra = Json::object());
HttpResponse NoContent();  // 204
// "2024-05-01T12:00:00Z".
std::string IsoTime(uint64_t unix_seconds);
// ASCII lowercase.
std::string Lower(std::string_view text);

// --- Requests ---------------------------------------------------------------

// The request body as a JSON object, or the error answer: 400 invalid_json
// (empty, malformed or too deeply nested), 422 invalid_body (not an object).
struct Body {
  Json object;
  std::optional<HttpResponse> error;
};
Body ParseBody(const HttpRequest& request);

// A string member of `object`, or the error answer naming it in "field":
// 422 missing_field (absent or null), 422 invalid_field (not a string, or
// longer than `max_size` bytes).
struct Field {
  std::string value;
  std::optional<HttpResponse> error;
};
Field StringField(const Json& object, const char* name, size_t max_size);

// --- Routes -----------------------------------------------------------------

enum class Endpoint {
  kNone,
  kLogin,
  kResellerLogin,
  kLogout,
  kAccount,
  kHosts,  // GET list, POST add
  kHost,   // DELETE
  kHostToken,
  kHostMoveToken,
  kHostMove,
  kMissingTokens,
  kLink,  // POST link, DELETE unlink
  kPasswordReset,
};

struct Route {
  Endpoint endpoint = Endpoint::kNone;
  std::string host;        // the {fqdn} segment, %XX-decoded
  const char* allow = "";  // the endpoint's methods, for 405 and Allow
};

// The endpoint of a URL path under kPrefix (one final '/' is ignored);
// kNone when there is none.
Route MatchRoute(std::string_view path);
bool MethodAllowed(const Route& route, std::string_view method);

}  // namespace updns::server::api
