// JSON API request bodies: server::api::ParseBody (the nesting bound, then
// nlohmann-json), the string fields every endpoint reads with their size
// limits, the name checks their values go through, and the JSON answers
// that echo them. Every answer must be JSON that parses again, whatever
// bytes (invalid UTF-8 included) the client sent.
#include <string>

#include "server/api_request.h"
#include "tests/fuzz/fuzz_targets.h"
#include "update/accounts.h"
#include "update/credentials.h"

namespace updns::fuzz {
namespace {

namespace api = server::api;

void CheckAnswer(const server::HttpResponse& response) {
  Check(response.status >= 200 && response.status < 600, "an API answer has an HTTP status");
  Check(response.content_type == "application/json", "an API answer is JSON");
  auto reparsed = api::Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  Check(!reparsed.is_discarded(), "an API answer parses as JSON");
}

// The fields server/api_service.cc reads, with its limits.
struct FieldSpec {
  const char* name;
  size_t max_size;
};
constexpr FieldSpec kFields[] = {
    {"name", 256},     {"password", update::kMaxPasswordSize}, {"hostname", 300}, {"token", 128},
    {"reseller", 256},
};

}  // namespace

int FuzzJsonApi(const uint8_t* data, size_t size) {
  server::HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/login";
  request.body.assign(reinterpret_cast<const char*>(data), size);

  api::Body body = api::ParseBody(request);
  if (body.error) {
    Check(body.error->status == 400 || body.error->status == 422,
          "a refused body answers 400 or 422");
    CheckAnswer(*body.error);
    return 0;
  }
  Check(body.object.is_object(), "an accepted body is an object");
  // Echoing the whole body back exercises the UTF-8 replacement on output.
  CheckAnswer(api::JsonResponse(200, body.object));

  for (const FieldSpec& spec : kFields) {
    api::Field field = api::StringField(body.object, spec.name, spec.max_size);
    if (field.error) {
      Check(field.error->status == 422, "a bad field answers 422");
      CheckAnswer(*field.error);
      continue;
    }
    Check(field.value.size() <= spec.max_size, "a field's size limit holds");
    std::string lower = api::Lower(field.value);
    auto account = update::NormalizeAccountName(lower);
    auto host = update::NormalizeHostName(field.value);
    if (host.ok()) {
      Check(host->size() <= 253 && host->find("..") == std::string::npos,
            "a normalized host name is at most 253 bytes without empty labels");
    }
    // What the endpoints answer with the value in it.
    std::string quoted = update::QuoteForMessage(field.value);
    Check(quoted.find('\n') == std::string::npos && quoted.find('\r') == std::string::npos,
          "a quoted value cannot forge lines");
    CheckAnswer(api::Error(422, "invalid_field",
                           account.ok() ? *account : std::string(account.status().message()),
                           {{"field", spec.name}, {"value", field.value}}));
    CheckAnswer(api::JsonResponse(200, {{"hostname", host.ok() ? *host : field.value},
                                        {"token", update::TokenDigest(field.value)}}));
  }
  return 0;
}

}  // namespace updns::fuzz
