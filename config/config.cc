#include "config/config.h"

#include <arpa/inet.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "tsig/tsig.h"
#include "zone/wire.h"

namespace updns::config {
namespace {

// The config is operator input, but still input: a file this large is a
// mistake (a zone file or a log passed by accident), not a config.
constexpr size_t kMaxConfigBytes = size_t{1} << 20;

constexpr uint16_t kDefaultDnsPort = 53;
constexpr const char* kDefaultListen = "127.0.0.1@53";
constexpr const char* kEndpointHint = "expected ADDRESS[@PORT], e.g. 127.0.0.1@5353";
constexpr uint16_t kDefaultHttpPort = 80;
constexpr uint16_t kDefaultHttpsPort = 443;
constexpr const char* kHttpEndpointHint =
    "expected ADDRESS[:PORT], e.g. 127.0.0.1:8053, [::1]:8053 or 127.0.0.1@8053";
constexpr const char* kTopLevelKeys =
    "server, storage, keys, zones, notify, http, accounts, dyndns, mail, api";

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr unsigned kMaxWorkers = 1024;
constexpr unsigned kMaxTcpConnections = 1000000;
constexpr unsigned kMaxTcpIdleTimeoutMs = 3600000;
constexpr unsigned kMaxTimeoutMs = 3600000;
constexpr uint32_t kMaxHttpRequestSize = 1 << 20;
constexpr uint32_t kMaxHttpBodySize = 16 << 20;
constexpr unsigned kMaxHttpConnections = 1000000;
constexpr uint32_t kMaxHostLimit = 1000000;
constexpr unsigned kMaxHostsPerUpdate = 1000;
constexpr unsigned kMaxSeconds = 30 * 86400;
constexpr uint32_t kMaxHostTtl = 86400;
constexpr uint32_t kMaxRetryInitialSeconds = 86400;
constexpr uint32_t kMaxApiTtlSeconds = 365 * 86400;
constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxMailAddressLength = 254;  // RFC 5321 path limit less the brackets
constexpr size_t kMaxSecretFileBytes = 4096;
constexpr const char* kSmtpHint =
    "smtp://HOST[:PORT] or smtps://HOST[:PORT], e.g. smtp://127.0.0.1:25";

constexpr size_t kMaxSecretBytes = 1024;
constexpr uint32_t kMaxJournalEntries = 1000000;
constexpr uint32_t kMaxNotifyRetryMs = 3600000;

constexpr size_t kMaxLabelLength = 63;
constexpr size_t kMaxNameLength = 253;  // presentation form, no trailing dot

void Append(std::string& out, std::string_view text) { out += text; }

template <typename Integer>
requires std::is_integral_v<Integer>
void Append(std::string& out, Integer number) { out += std::to_string(number); }

template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (Append(out, parts), ...);
  return out;
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Lowercases and drops one trailing dot; the root "." stays ".".
std::string CanonicalName(std::string_view name) {
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), AsciiLower);
  return out;
}

// Returns an empty string when `name` (already canonical) can be a zone
// apex, otherwise what is wrong with it.
std::string ZoneNameProblem(std::string_view name) {
  if (name.empty()) return "empty zone name (the root zone is written '.')";
  if (name == ".") return "";
  if (name.size() > kMaxNameLength) {
    return Cat("name '", name.substr(0, 40), "...' is ", name.size(),
               " characters long; a domain name has at most ", kMaxNameLength);
  }
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) return Cat("'", name, "' has an empty label (two dots in a row, or a leading dot)");
    if (label.size() > kMaxLabelLength) {
      return Cat("label '", label.substr(0, 20), "...' is ", label.size(),
                 " characters long; a label has at most ", kMaxLabelLength);
    }
    if (dot == std::string_view::npos) return "";
    start = dot + 1;
  }
}

// Plain decimal digits only: no sign, no hex, no separators.
bool ParseDecimal(std::string_view text, uint64_t& value) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// "1048576", "512MiB", "1 GiB", "4G": binary units only.
bool ParseByteSize(std::string_view text, uint64_t& bytes) {
  static constexpr std::pair<std::string_view, int> kSuffixes[] = {
      {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}};
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  uint64_t number = 0;
  if (!ParseDecimal(text.substr(0, digits), number)) return false;
  std::string_view suffix = text.substr(digits);
  if (!suffix.empty() && suffix.front() == ' ') suffix.remove_prefix(1);
  if (suffix.empty() && digits == text.size()) {
    bytes = number;
    return true;
  }
  for (const auto& [name, shift] : kSuffixes) {
    if (suffix != name) continue;
    if (number > (UINT64_MAX >> shift)) return false;
    bytes = number << shift;
    return true;
  }
  return false;
}

// Returns an empty string when `url` is an absolute URL with one of
// `schemes` ("smtp://") and a host, otherwise what is wrong with it.
std::string UrlProblem(std::string_view url, std::initializer_list<std::string_view> schemes) {
  if (url.size() > kMaxUrlLength)
    return Cat("the URL is ", url.size(), " characters long; at most ", kMaxUrlLength);
  for (char c : url) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f)
      return Cat("'", url,
                 "' contains a space, a control or a non-ASCII character; percent-encode it");
  }
  size_t separator = url.find("://");
  std::string scheme =
      separator == std::string_view::npos ? "" : std::string(url.substr(0, separator));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), AsciiLower);
  bool known = false;
  std::string expected;
  for (std::string_view candidate : schemes) {
    if (candidate == scheme) known = true;
    expected += Cat(expected.empty() ? "" : " or ", candidate, "://");
  }
  if (!known) return Cat("'", url, "' does not start with ", expected);
  std::string_view rest = url.substr(separator + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.front() == ':' || authority.back() == '@')
    return Cat("'", url, "' has no host after '", scheme, "://'");
  return "";
}

// Returns an empty string when `address` is a plain ASCII mail address
// (local@domain, no display name), otherwise what is wrong with it. It goes
// into SMTP commands and headers, so anything that could end or split one
// is refused.
std::string MailAddressProblem(std::string_view address) {
  if (address.size() > kMaxMailAddressLength)
    return Cat("the address is ", address.size(), " characters long; at most ",
               kMaxMailAddressLength);
  for (char c : address) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f ||
        std::string_view("<>()[]\\,;:\"").find(c) != std::string_view::npos) {
      return Cat("'", address,
                 "' is not a plain mail address: write only local@domain (ASCII, no spaces, no "
                 "display name)");
    }
  }
  size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size() ||
      address.find('@', at + 1) != std::string_view::npos) {
    return Cat("'", address,
               "' is not a mail address (expected local@domain, e.g. updns@example.org)");
  }
  return "";
}

bool SameEndpoint(const Endpoint& a, const Endpoint& b) {
  return a.address_length == b.address_length && std::memcmp(&a.address, &b.address, a.address_length) == 0;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Join(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view word : words) out += Cat(out.empty() ? "" : ", ", word);
  return out;
}

// What a node is, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar: {
      std::string_view text = node.Scalar();
      if (text.size() > 40) return Cat("'", text.substr(0, 40), "...'");
      return Cat("'", text, "'");
    }
    default:
      return "an undefined value";
  }
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

// The whole of a small secret file, one trailing line end dropped; on
// failure the reason (no path: the caller names it).
Result<std::string> ReadSecretFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::IoError(std::strerror(errno));
  std::string text;
  char buffer[1024];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), file.get())) {
    text.append(buffer, n);
    if (text.size() > kMaxSecretFileBytes)
      return Status::Invalid(
          Cat("more than ", kMaxSecretFileBytes, " bytes; is this the right file?"));
  }
  if (std::ferror(file.get())) return Status::IoError(std::strerror(errno));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return Status::Invalid("the file is empty");
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\0')
      return Status::Invalid("the password spans more than one line");
  }
  return text;
}

// A node and what a message needs to point at it.
struct Item {
  YAML::Node node;
  std::string path;  // "server.listen[1]"; empty for the top level
  int line = 1;      // 1-based
};

struct Field {
  std::string key;
  Item value;
};

int LineOf(const YAML::Node& node, int fallback) {
  int line = node.Mark().line;
  return line >= 0 ? line + 1 : fallback;
}

// Walks the document. Every method stops at the first problem and returns
// it; messages read "SOURCE:LINE: key 'PATH': what is wrong".
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  Status Read(const YAML::Node& root, Config& config) const;

 private:
  Status Error(const Item& item, std::string_view what) const {
    if (item.path.empty()) return Status::Invalid(Cat(source_, ":", item.line, ": ", what));
    return Status::Invalid(Cat(source_, ":", item.line, ": key '", item.path, "': ", what));
  }
  Status Expected(const Item& item, std::string_view what) const {
    return Error(item, Cat("expected ", what, ", got ", Describe(item.node)));
  }

  Result<std::vector<Field>> Fields(const Item& map, std::initializer_list<std::string_view> allowed) const;
  Result<std::vector<Item>> Elements(const Item& list, std::string_view what) const;
  Result<std::string> Text(const Item& item, std::string_view what) const;
  // Like Text, but nothing and "" read as an empty string.
  Result<std::string> OptionalText(const Item& item, std::string_view what) const;
  Status ReadBool(const Item& item, bool& out) const;
  template <typename T>
  Status ReadInteger(const Item& item, uint64_t min, uint64_t max, T& out) const;

  // How one `listen` list is read: DNS and HTTP differ in port and syntax.
  struct ListenSyntax {
    Result<Endpoint> (*parse)(std::string_view, uint16_t);
    uint16_t default_port;
    const char* hint;
    bool allow_empty;  // an empty HTTP list means "HTTP off"
  };

  Status ReadServer(const Item& item, ServerConfig& server) const;
  Status ReadRrl(const Item& item, ServerConfig& server) const;
  Status ReadListen(const Item& item, const ListenSyntax& syntax, std::vector<Endpoint>& listen) const;
  Status ReadHttp(const Item& item, HttpConfig& http) const;
  Status ReadTls(const Item& item, TlsConfig& tls) const;
  Status ReadLoginThrottle(const Item& item, HttpConfig& http) const;
  Status ReadMetricsAllow(const Item& item, HttpConfig& http) const;
  Status ReadAccounts(const Item& item, AccountsConfig& accounts) const;
  Status ReadDyndns(const Item& item, DyndnsConfig& dyndns) const;
  Status ReadStorage(const Item& item, StorageConfig& storage) const;
  Status ReadMail(const Item& item, MailConfig& mail) const;
  Status ReadApi(const Item& item, ApiConfig& api) const;
  Status ReadZones(const Item& item, std::vector<ZoneConfig>& zones) const;
  Status ReadZone(const Item& item, ZoneConfig& zone) const;
  Status ReadTransfer(const Item& item, ZoneConfig& zone) const;
  Status ReadUpdateRules(const Item& item, ZoneConfig& zone) const;
  Status ReadKeys(const Item& item, std::vector<KeyConfig>& keys) const;
  Status ReadKey(const Item& item, KeyConfig& key) const;
  Status ReadNotify(const Item& item, NotifyConfig& notify) const;
  // Checks what refers across sections (zones naming keys).
  Status CheckReferences(const Config& config) const;

  std::string_view source_;
};

// A null section ("server:" with everything below commented out) reads as an
// empty map, so it gets the defaults.
Result<std::vector<Field>> Reader::Fields(const Item& map,
                                          std::initializer_list<std::string_view> allowed) const {
  std::vector<Field> fields;
  if (map.node.IsNull()) return fields;
  if (!map.node.IsMap()) return Expected(map, Cat("a map with keys ", Join(allowed)));
  for (const auto& entry : map.node) {
    const YAML::Node& key = entry.first;
    int line = LineOf(key, map.line);
    if (!key.IsScalar()) {
      return Error(Item{key, map.path, line}, Cat("keys must be plain words, got ", Describe(key)));
    }
    std::string name = key.Scalar();
    Item value{entry.second, map.path.empty() ? name : Cat(map.path, ".", name), line};
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string hint;
      for (std::string_view candidate : allowed) {
        if (EditDistance(name, candidate) <= 2) hint = Cat(" (did you mean '", candidate, "'?)");
      }
      return Error(value, Cat("unknown key", hint, "; allowed here: ", Join(allowed)));
    }
    for (const Field& seen : fields) {
      if (seen.key == name) return Error(value, Cat("duplicate key (first at line ", seen.value.line, ")"));
    }
    fields.push_back(Field{std::move(name), std::move(value)});
  }
  return fields;
}

Result<std::vector<Item>> Reader::Elements(const Item& list, std::string_view what) const {
  if (!list.node.IsSequence()) return Expected(list, Cat("a list of ", what));
  std::vector<Item> items;
  for (const YAML::Node& element : list.node) {
    items.push_back(Item{element, Cat(list.path, "[", items.size(), "]"), LineOf(element, list.line)});
  }
  return items;
}

Result<std::string> Reader::Text(const Item& item, std::string_view what) const {
  if (!item.node.IsScalar()) return Expected(item, what);
  if (item.node.Scalar().empty()) return Error(item, Cat("expected ", what, ", got an empty string"));
  return item.node.Scalar();
}

Result<std::string> Reader::OptionalText(const Item& item, std::string_view what) const {
  if (item.node.IsNull()) return std::string();
  if (!item.node.IsScalar()) return Expected(item, what);
  return item.node.Scalar();
}

// Only the two YAML 1.2 spellings: "yes", "on" or "1" read as something else
// in other tools, so they are refused rather than guessed.
Status Reader::ReadBool(const Item& item, bool& out) const {
  if (item.node.IsScalar() && item.node.Scalar() == "true") {
    out = true;
  } else if (item.node.IsScalar() && item.node.Scalar() == "false") {
    out = false;
  } else {
    return Expected(item, "true or false");
  }
  return Status::Ok();
}

template <typename T>
Status Reader::ReadInteger(const Item& item, uint64_t min, uint64_t max, T& out) const {
  std::string range = Cat("an integer from ", min, " to ", max);
  uint64_t value = 0;
  if (!item.node.IsScalar() || !ParseDecimal(item.node.Scalar(), value)) return Expected(item, range);
  if (value < min || value > max) return Error(item, Cat(value, " is out of range (expected ", range, ")"));
  out = static_cast<T>(value);
  return Status::Ok();
}

Status Reader::Read(const YAML::Node& root, Config& config) const {
  Item top{root, "", LineOf(root, 1)};
  if (!root.IsMap()) return Expected(top, Cat("the top level to be a map with keys ", kTopLevelKeys));
  Result<std::vector<Field>> fields =
      Fields(top, {"server", "storage", "keys", "zones", "notify", "http", "accounts", "dyndns",
                   "mail", "api"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    Status status;
    if (field.key == "server") {
      status = ReadServer(field.value, config.server);
    } else if (field.key == "storage") {
      status = ReadStorage(field.value, config.storage);
    } else if (field.key == "http") {
      status = ReadHttp(field.value, config.http);
    } else if (field.key == "accounts") {
      status = ReadAccounts(field.value, config.accounts);
    } else if (field.key == "dyndns") {
      status = ReadDyndns(field.value, config.dyndns);
    } else if (field.key == "mail") {
      status = ReadMail(field.value, config.mail);
    } else if (field.key == "api") {
      status = ReadApi(field.value, config.api);
    } else if (field.key == "keys") {
      status = ReadKeys(field.value, config.keys);
    } else if (field.key == "notify") {
      status = ReadNotify(field.value, config.notify);
    } else {
      status = ReadZones(field.value, config.zones);
    }
    if (!status.ok()) return status;
  }
  return CheckReferences(config);
}

Status Reader::ReadServer(const Item& item, ServerConfig& server) const {
  Result<std::vector<Field>> fields =
      Fields(item, {"listen", "workers", "cpu_affinity", "tcp_idle_timeout", "tcp_max_connections",
                    "udp_payload", "rrl"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    const Item& value = field.value;
    Status status;
    if (field.key == "listen") {
      status = ReadListen(value, {ParseEndpoint, kDefaultDnsPort, kEndpointHint, false}, server.listen);
    } else if (field.key == "workers") {
      status = ReadInteger(value, 1, kMaxWorkers, server.workers);
    } else if (field.key == "cpu_affinity") {
      status = ReadBool(value, server.cpu_affinity);
    } else if (field.key == "rrl") {
      status = ReadRrl(value, server);
    } else if (field.key == "tcp_idle_timeout") {
      status = ReadInteger(value, 1, kMaxTcpIdleTimeoutMs, server.tcp_idle_timeout_ms);
    } else if (field.key == "tcp_max_connections") {
      status = ReadInteger(value, 1, kMaxTcpConnections, server.tcp_max_connections);
    } else {
      status = ReadInteger(value, 512, 4096, server.udp_payload);
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status Reader::ReadRrl(const Item& item, ServerConfig& server) const {
  Result<std::vector<Field>> fields = Fields(item, {"rate", "slip", "ipv4_prefix", "ipv6_prefix"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    Status status;
    if (field.key == "rate") {
      status = ReadInteger(field.value, 0, 1000000, server.rrl_rate);
    } else if (field.key == "slip") {
      status = ReadInteger(field.value, 0, 10, server.rrl_slip);
    } else if (field.key == "ipv4_prefix") {
      status = ReadInteger(field.value, 1, 32, server.rrl_ipv4_prefix);
    } else {
      status = ReadInteger(field.value, 1, 128, server.rrl_ipv6_prefix);
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status Reader::ReadListen(const Item& item, const ListenSyntax& syntax, std::vector<Endpoint>& listen) const {
  Result<std::vector<Item>> elements =
      Elements(item, syntax.allow_empty ? "ADDRESS[:PORT] strings" : "ADDRESS[@PORT] strings");
  if (!elements.ok()) return elements.status();
  if (elements->empty() && !syntax.allow_empty)
    return Error(item, Cat("the list is empty; give at least one address (", syntax.hint, ")"));
  std::vector<int> lines;
  for (const Item& element : *elements) {
    Result<std::string> text = Text(element, Cat("an address (", syntax.hint, ")"));
    if (!text.ok()) return text.status();
    Result<Endpoint> endpoint = syntax.parse(*text, syntax.default_port);
    if (!endpoint.ok()) return Error(element, endpoint.status().message());
    for (size_t i = 0; i < listen.size(); ++i) {
      if (SameEndpoint(listen[i], *endpoint)) {
        return Error(element, Cat("'", *text, "' is the same address as '", listen[i].text, "' at line ",
                                  lines[i], "; list each address once"));
      }
    }
    listen.push_back(std::move(endpoint).value());
    lines.push_back(element.line);
  }
  return Status::Ok();
}

Status Reader::ReadHttp(const Item& item, HttpConfig& http) const {
  Result<std::vector<Field>> fields =
      Fields(item, {"listen", "tls_listen", "tls", "max_request_size", "max_body_size", "read_timeout",
                    "idle_timeout", "max_connections", "login_throttle", "metrics_allow"});
  if (!fields.ok()) return fields.status();
  const Item* tls_listen = nullptr;
  const Item* tls = nullptr;
  for (const Field& field : *fields) {
    const Item& value = field.value;
    Status status;
    if (field.key == "listen") {
      status = ReadListen(value, {ParseHttpEndpoint, kDefaultHttpPort, kHttpEndpointHint, true}, http.listen);
    } else if (field.key == "tls_listen") {
      status = ReadListen(value, {ParseHttpEndpoint, kDefaultHttpsPort, kHttpEndpointHint, true},
                          http.tls_listen);
      tls_listen = &value;
    } else if (field.key == "tls") {
      status = ReadTls(value, http.tls);
      tls = &value;
    } else if (field.key == "max_request_size") {
      status = ReadInteger(value, 1024, kMaxHttpRequestSize, http.max_request_size);
    } else if (field.key == "max_body_size") {
      status = ReadInteger(value, 0, kMaxHttpBodySize, http.max_body_size);
    } else if (field.key == "read_timeout") {
      status = ReadInteger(value, 1, kMaxTimeoutMs, http.read_timeout_ms);
    } else if (field.key == "idle_timeout") {
      status = ReadInteger(value, 1, kMaxTimeoutMs, http.idle_timeout_ms);
    } else if (field.key == "login_throttle") {
      status = ReadLoginThrottle(value, http);
    } else if (field.key == "metrics_allow") {
      status = ReadMetricsAllow(value, http);
    } else {
      status = ReadInteger(value, 1, kMaxHttpConnections, http.max_connections);
    }
    if (!status.ok()) return status;
  }
  // Half an HTTPS setup is a mistake to point at, not to ignore.
  if (!http.tls_listen.empty() && tls == nullptr) {
    return Error(*tls_listen,
                 "HTTPS needs 'http.tls' with the certificate and key, e.g. "
                 "tls: {cert: /etc/updns/cert.pem, key: /etc/updns/key.pem}");
  }
  if (tls != nullptr && http.tls_listen.empty()) {
    return Error(*tls,
                 "a certificate is given but 'http.tls_listen' is missing or empty; give the "
                 "addresses to serve HTTPS on, e.g. tls_listen: [\"0.0.0.0:443\"]");
  }
  for (const Endpoint& secure : http.tls_listen) {
    for (const Endpoint& plain : http.listen) {
      if (SameEndpoint(secure, plain)) {
        return Error(*tls_listen, Cat("'", secure.text, "' is also in 'http.listen' as '", plain.text,
                                      "'; a port serves either HTTP or HTTPS"));
      }
    }
  }
  return Status::Ok();
}

Status Reader::ReadTls(const Item& item, TlsConfig& tls) const {
  Result<std::vector<Field>> fields = Fields(item, {"cert", "key"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    bool cert = field.key == "cert";
    Result<std::string> path =
        Text(field.value, cert ? "the path of a PEM certificate file, e.g. /etc/updns/cert.pem"
                               : "the path of a PEM private key file, e.g. /etc/updns/key.pem");
    if (!path.ok()) return path.status();
    (cert ? tls.cert : tls.key) = std::move(path).value();
  }
  if (tls.cert.empty())
    return Error(item, "missing key 'cert' (the PEM certificate file, e.g. /etc/updns/cert.pem)");
  if (tls.key.empty())
    return Error(item, "missing key 'key' (the PEM private key file, e.g. /etc/updns/key.pem)");
  return Status::Ok();
}

Status Reader::ReadLoginThrottle(const Item& item, HttpConfig& http) const {
  Result<std::vector<Field>> fields = Fields(item, {"per_name", "per_address", "window"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    Status status;
    if (field.key == "per_name") {
      status = ReadInteger(field.value, 0, 1000000, http.login_per_name);
    } else if (field.key == "per_address") {
      status = ReadInteger(field.value, 0, 1000000, http.login_per_address);
    } else {
      status = ReadInteger(field.value, 1, 86400, http.login_window_seconds);
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status Reader::ReadMetricsAllow(const Item& item, HttpConfig& http) const {
  constexpr const char* kWhat = "address prefixes, e.g. [127.0.0.0/8, \"::1\"]";
  Result<std::vector<Item>> elements = Elements(item, kWhat);
  if (!elements.ok()) return elements.status();
  for (const Item& element : *elements) {
    Result<std::string> text = Text(element, Cat("an address prefix (", kWhat, ")"));
    if (!text.ok()) return text.status();
    Result<Prefix> prefix = ParsePrefix(*text);
    if (!prefix.ok()) return Error(element, prefix.status().message());
    http.metrics_allow.push_back(std::move(prefix).value());
  }
  return Status::Ok();
}

Status Reader::ReadAccounts(const Item& item, AccountsConfig& accounts) const {
  Result<std::vector<Field>> fields = Fields(item, {"host_limit"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    if (Status status = ReadInteger(field.value, 0, kMaxHostLimit, accounts.host_limit); !status.ok())
      return status;
  }
  return Status::Ok();
}

Status Reader::ReadDyndns(const Item& item, DyndnsConfig& dyndns) const {
  Result<std::vector<Field>> fields = Fields(item, {"max_hosts", "nochg_limit", "nochg_window", "abuse_lock"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    const Item& value = field.value;
    Status status;
    if (field.key == "max_hosts") {
      status = ReadInteger(value, 1, kMaxHostsPerUpdate, dyndns.max_hosts);
    } else if (field.key == "nochg_limit") {
      status = ReadInteger(value, 1, 1000000, dyndns.nochg_limit);
    } else if (field.key == "nochg_window") {
      status = ReadInteger(value, 1, kMaxSeconds, dyndns.nochg_window_seconds);
    } else {
      status = ReadInteger(value, 1, kMaxSeconds, dyndns.abuse_lock_seconds);
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status Reader::ReadStorage(const Item& item, StorageConfig& storage) const {
  Result<std::vector<Field>> fields =
      Fields(item, {"path", "map_size", "journal_entries", "journal_size", "prefetch"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    const Item& value = field.value;
    if (field.key == "prefetch") {
      if (Status s = ReadBool(value, storage.prefetch); !s.ok()) return s;
      continue;
    }
    if (field.key == "journal_entries") {
      if (Status s = ReadInteger(value, 1, kMaxJournalEntries, storage.journal_max_entries); !s.ok())
        return s;
      continue;
    }
    if (field.key == "path") {
      Result<std::string> path = Text(value, "a directory path");
      if (!path.ok()) return path.status();
      storage.path = std::move(path).value();
      continue;
    }
    constexpr const char* kSizeHint = "a size in bytes, e.g. 1073741824, 512MiB or 1GiB";
    uint64_t bytes = 0;
    if (!value.node.IsScalar() || !ParseByteSize(value.node.Scalar(), bytes)) {
      return Expected(value, Cat(kSizeHint, " (units: KiB MiB GiB TiB, or K M G T for the same)"));
    }
    if (field.key == "journal_size") {
      storage.journal_max_bytes = bytes;
      continue;
    }
    if (bytes < kMiB) return Error(value, Cat(bytes, " bytes is too small; the map needs at least 1MiB"));
    storage.map_size = bytes;
  }
  return Status::Ok();
}

Status Reader::ReadMail(const Item& item, MailConfig& mail) const {
  Result<std::vector<Field>> fields =
      Fields(item, {"smtp", "from", "reset_url", "starttls", "username", "password",
                    "password_file", "retry_initial", "retry_max"});
  if (!fields.ok()) return fields.status();
  const Item* username = nullptr;
  const Item* password = nullptr;
  const Item* password_file = nullptr;
  const Item* retry_max = nullptr;
  for (const Field& field : *fields) {
    const Item& value = field.value;
    Status status;
    if (field.key == "smtp") {
      Result<std::string> url =
          OptionalText(value, Cat("an SMTP URL (", kSmtpHint, "; \"\" = mail off)"));
      if (!url.ok()) return url.status();
      if (!url->empty()) {
        if (std::string problem = UrlProblem(*url, {"smtp", "smtps"}); !problem.empty())
          return Error(value, Cat(problem, " (expected ", kSmtpHint, ")"));
        std::string_view rest = std::string_view(*url).substr(url->find("://") + 3);
        if (rest.substr(0, rest.find_first_of("/?#")).find('@') != std::string_view::npos) {
          return Error(value,
                       "the URL carries credentials; give them as 'username' and 'password' "
                       "(or 'password_file') so they stay out of logs");
        }
      }
      mail.smtp = std::move(url).value();
    } else if (field.key == "from") {
      Result<std::string> from = Text(value, "a mail address, e.g. updns@example.org");
      if (!from.ok()) return from.status();
      if (std::string problem = MailAddressProblem(*from); !problem.empty())
        return Error(value, problem);
      mail.from = std::move(from).value();
    } else if (field.key == "reset_url") {
      Result<std::string> url =
          Text(value, "a URL the token is appended to, e.g. https://dyn.example/reset?token=");
      if (!url.ok()) return url.status();
      if (std::string problem = UrlProblem(*url, {"http", "https"}); !problem.empty())
        return Error(value, problem);
      mail.reset_url = std::move(url).value();
    } else if (field.key == "starttls") {
      status = ReadBool(value, mail.starttls);
    } else if (field.key == "username") {
      Result<std::string> text = OptionalText(value, "a user name for SMTP AUTH");
      if (!text.ok()) return text.status();
      mail.username = std::move(text).value();
      username = &value;
    } else if (field.key == "password") {
      Result<std::string> text = OptionalText(value, "a password for SMTP AUTH");
      if (!text.ok()) return text.status();
      mail.password = std::move(text).value();
      password = &value;
    } else if (field.key == "password_file") {
      Result<std::string> path = Text(value, "the path of a file holding the SMTP AUTH password");
      if (!path.ok()) return path.status();
      password_file = &value;
      mail.password_file = std::move(path).value();
    } else if (field.key == "retry_initial") {
      status = ReadInteger(value, 1, kMaxRetryInitialSeconds, mail.retry_initial_seconds);
    } else {
      status = ReadInteger(value, 1, kMaxSeconds, mail.retry_max_seconds);
      retry_max = &value;
    }
    if (!status.ok()) return status;
  }
  if (password_file != nullptr) {
    if (password != nullptr && !mail.password.empty()) {
      return Error(*password_file, Cat("give either 'password' (line ", password->line,
                                       ") or 'password_file', not both"));
    }
    Result<std::string> secret = ReadSecretFile(mail.password_file);
    if (!secret.ok()) {
      return Error(*password_file,
                   Cat("cannot read '", mail.password_file, "': ", secret.status().message()));
    }
    mail.password = std::move(secret).value();
  }
  if (!mail.password.empty() && mail.username.empty()) {
    const Item& at = password_file != nullptr ? *password_file : *password;
    return Error(at, "a password needs 'username' as well");
  }
  if (!mail.username.empty() && mail.password.empty())
    return Error(*username, "'username' needs 'password' or 'password_file' as well");
  if (retry_max != nullptr && mail.retry_max_seconds < mail.retry_initial_seconds) {
    return Error(*retry_max, Cat(mail.retry_max_seconds, " is below retry_initial (",
                                 mail.retry_initial_seconds,
                                 "); retries start at retry_initial and double up to retry_max"));
  }
  if (!mail.smtp.empty() && mail.from.empty())
    return Error(
        item,
        "missing key 'from' (the sender address, e.g. updns@example.org), needed with 'smtp'");
  return Status::Ok();
}

Status Reader::ReadApi(const Item& item, ApiConfig& api) const {
  Result<std::vector<Field>> fields = Fields(item, {"session_ttl", "reset_ttl", "move_ttl"});
  if (!fields.ok()) return fields.status();
  for (const Field& field : *fields) {
    uint32_t& out = field.key == "session_ttl" ? api.session_ttl_seconds
                    : field.key == "reset_ttl" ? api.reset_ttl_seconds
                                               : api.move_ttl_seconds;
    if (Status status = ReadInteger(field.value, 1, kMaxApiTtlSeconds, out); !status.ok())
      return status;
  }
  return Status::Ok();
}

Status Reader::ReadZones(const Item& item, std::vector<ZoneConfig>& zones) const {
  if (item.node.IsNull()) return Status::Ok();
  Result<std::vector<Item>> elements = Elements(item, "zones, each a map with 'name' and optionally 'file'");
  if (!elements.ok()) return elements.status();
  for (const Item& element : *elements) {
    ZoneConfig zone;
    if (Status status = ReadZone(element, zone); !status.ok()) return status;
    for (const ZoneConfig& other : zones) {
      if (other.name == zone.name) {
        return Error(Item{element.node, Cat(element.path, ".name"), zone.line},
                     Cat("zone '", zone.name, "' is declared twice (lines ", other.line, " and ", zone.line,
                         "); names are compared without case and trailing dot"));
      }
    }
    zones.push_back(std::move(zone));
  }
  return Status::Ok();
}

Status Reader::ReadZone(const Item& item, ZoneConfig& zone) const {
  if (!item.node.IsMap()) return Expected(item, "a map with 'name' and optionally 'file'");
  Result<std::vector<Field>> fields =
      Fields(item, {"name", "file", "host_ttl", "notify", "notify_key", "transfer", "update"});
  if (!fields.ok()) return fields.status();
  zone.line = item.line;
  for (const Field& field : *fields) {
    if (field.key == "notify") {
      Status status = ReadListen(field.value, {ParseEndpoint, kDefaultDnsPort, kEndpointHint, true},
                                 zone.notify);
      if (!status.ok()) return status;
      continue;
    }
    if (field.key == "notify_key") {
      Result<std::string> key = Text(field.value, "the name of a key under 'keys'");
      if (!key.ok()) return key.status();
      zone.notify_key = CanonicalName(*key);
      continue;
    }
    if (field.key == "transfer") {
      if (Status status = ReadTransfer(field.value, zone); !status.ok()) return status;
      continue;
    }
    if (field.key == "update") {
      if (Status status = ReadUpdateRules(field.value, zone); !status.ok()) return status;
      continue;
    }
    if (field.key == "host_ttl") {
      if (Status status = ReadInteger(field.value, 0, kMaxHostTtl, zone.host_ttl); !status.ok()) return status;
      continue;
    }
    if (field.key == "file") {
      Result<std::string> file = Text(field.value, "a master file path (omit 'file' for none)");
      if (!file.ok()) return file.status();
      zone.file = std::move(file).value();
      continue;
    }
    if (!field.value.node.IsScalar()) return Expected(field.value, "a domain name, e.g. dyn.example.com");
    zone.name = CanonicalName(field.value.node.Scalar());
    if (std::string problem = ZoneNameProblem(zone.name); !problem.empty())
      return Error(field.value, problem);
  }
  if (zone.name.empty()) return Error(item, "missing key 'name' (the zone's apex, e.g. dyn.example.com)");
  // Update rules are read before `name` may be known; check their names now.
  for (const UpdateRuleConfig& rule : zone.update) {
    for (const std::string& name : rule.names) {
      std::string_view base = name.starts_with("*.") ? std::string_view(name).substr(2) : name;
      bool inside = zone.name == "." || base == zone.name ||
                    (base.size() > zone.name.size() && base.ends_with(zone.name) &&
                     base[base.size() - zone.name.size() - 1] == '.');
      if (!inside) {
        return Error(item, Cat("update rule name '", name, "' is not inside zone '", zone.name,
                               "' (write full names, e.g. '*.", zone.name, "')"));
      }
    }
  }
  return Status::Ok();
}

// Each element is an address prefix or, when it is not one, a key name.
Status Reader::ReadTransfer(const Item& item, ZoneConfig& zone) const {
  constexpr const char* kWhat = "key names and address prefixes, e.g. [xfr-key, 127.0.0.0/8]";
  Result<std::vector<Item>> elements = Elements(item, kWhat);
  if (!elements.ok()) return elements.status();
  for (const Item& element : *elements) {
    Result<std::string> text = Text(element, Cat("a key name or an address prefix (", kWhat, ")"));
    if (!text.ok()) return text.status();
    bool looks_like_address = text->find(':') != std::string::npos ||
                              text->find('/') != std::string::npos ||
                              text->find_first_not_of("0123456789.") == std::string::npos;
    if (looks_like_address) {
      Result<Prefix> prefix = ParsePrefix(*text);
      if (!prefix.ok()) return Error(element, prefix.status().message());
      zone.transfer_prefixes.push_back(std::move(prefix).value());
    } else {
      zone.transfer_keys.push_back(CanonicalName(*text));
    }
  }
  return Status::Ok();
}

Status Reader::ReadUpdateRules(const Item& item, ZoneConfig& zone) const {
  Result<std::vector<Item>> elements = Elements(item, "rules, each a map with 'key' and optionally 'names' and 'types'");
  if (!elements.ok()) return elements.status();
  for (const Item& element : *elements) {
    if (!element.node.IsMap()) return Expected(element, "a map with 'key' and optionally 'names' and 'types'");
    Result<std::vector<Field>> fields = Fields(element, {"key", "names", "types"});
    if (!fields.ok()) return fields.status();
    UpdateRuleConfig rule;
    for (const Field& field : *fields) {
      if (field.key == "key") {
        Result<std::string> key = Text(field.value, "the name of a key from 'keys'");
        if (!key.ok()) return key.status();
        rule.key = CanonicalName(*key);
        continue;
      }
      bool names = field.key == "names";
      Result<std::vector<Item>> list =
          Elements(field.value, names ? "domain names, e.g. [\"*.dyn.example\"]" : "record types, e.g. [A, AAAA, TXT]");
      if (!list.ok()) return list.status();
      for (const Item& entry : *list) {
        Result<std::string> text = Text(entry, names ? "a domain name" : "a record type");
        if (!text.ok()) return text.status();
        if (names) {
          std::string name = CanonicalName(*text);
          std::string_view base = name.starts_with("*.") ? std::string_view(name).substr(2) : name;
          if (std::string problem = ZoneNameProblem(base); !problem.empty()) return Error(entry, problem);
          rule.names.push_back(std::move(name));
        } else {
          Result<uint16_t> type = zone::TypeFromText(*text);
          if (!type.ok()) return Error(entry, type.status().message());
          if (zone::IsMetaType(*type))
            return Error(entry, Cat("'", *text, "' is a query type, not a record type"));
          rule.types.push_back(*type);
        }
      }
    }
    if (rule.key.empty()) return Error(element, "missing key 'key' (the TSIG key allowed to update)");
    zone.update.push_back(std::move(rule));
  }
  return Status::Ok();
}

Status Reader::ReadKeys(const Item& item, std::vector<KeyConfig>& keys) const {
  if (item.node.IsNull()) return Status::Ok();
  Result<std::vector<Item>> elements = Elements(item, "TSIG keys, each a map with 'name', 'algorithm' and 'secret'");
  if (!elements.ok()) return elements.status();
  for (const Item& element : *elements) {
    KeyConfig key;
    if (Status status = ReadKey(element, key); !status.ok()) return status;
    for (const KeyConfig& other : keys) {
      if (other.name == key.name) {
        return Error(element, Cat("key '", key.name, "' is declared twice (lines ", other.line, " and ",
                                  key.line, ")"));
      }
    }
    keys.push_back(std::move(key));
  }
  return Status::Ok();
}

Status Reader::ReadKey(const Item& item, KeyConfig& key) const {
  if (!item.node.IsMap()) return Expected(item, "a map with 'name', 'algorithm' and 'secret'");
  Result<std::vector<Field>> fields = Fields(item, {"name", "algorithm", "secret", "secret_file"});
  if (!fields.ok()) return fields.status();
  key.line = item.line;
  const Item* secret = nullptr;
  const Item* secret_file = nullptr;
  for (const Field& field : *fields) {
    if (field.key == "name") {
      Result<std::string> name = Text(field.value, "a key name, e.g. ddns-key");
      if (!name.ok()) return name.status();
      key.name = CanonicalName(*name);
      if (std::string problem = ZoneNameProblem(key.name); !problem.empty() || key.name == ".")
        return Error(field.value, problem.empty() ? "a key name can't be the root" : problem);
    } else if (field.key == "algorithm") {
      Result<std::string> text = Text(field.value, "hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1");
      if (!text.ok()) return text.status();
      Result<tsig::Algorithm> algorithm = tsig::ParseAlgorithm(*text);
      if (!algorithm.ok()) return Error(field.value, algorithm.status().message());
      key.algorithm = std::string(tsig::AlgorithmName(*algorithm));
    } else if (field.key == "secret") {
      secret = &field.value;
    } else {
      secret_file = &field.value;
    }
  }
  if (key.name.empty()) return Error(item, "missing key 'name' (the TSIG key's name, e.g. ddns-key)");
  if (key.algorithm.empty()) key.algorithm = "hmac-sha256";
  if (secret != nullptr && secret_file != nullptr)
    return Error(*secret_file, Cat("give either 'secret' (line ", secret->line, ") or 'secret_file', not both"));
  if (secret == nullptr && secret_file == nullptr)
    return Error(item, Cat("key '", key.name, "' needs 'secret' (base64) or 'secret_file'"));
  std::string encoded;
  if (secret != nullptr) {
    Result<std::string> text = Text(*secret, "the base64 secret, e.g. from 'tsig-keygen' or 'keymgr -t'");
    if (!text.ok()) return text.status();
    encoded = std::move(text).value();
  } else {
    Result<std::string> path = Text(*secret_file, "the path of a file holding the base64 secret");
    if (!path.ok()) return path.status();
    Result<std::string> text = ReadSecretFile(*path);
    if (!text.ok()) return Error(*secret_file, Cat("cannot read '", *path, "': ", text.status().message()));
    encoded = std::move(text).value();
  }
  const Item& at = secret != nullptr ? *secret : *secret_file;
  if (encoded.size() > kMaxSecretBytes * 2) return Error(at, "the secret is too long for a TSIG key");
  Result<std::string> bytes = tsig::DecodeSecret(encoded);
  if (!bytes.ok()) return Error(at, bytes.status().message());
  key.secret = std::move(bytes).value();
  return Status::Ok();
}

Status Reader::ReadNotify(const Item& item, NotifyConfig& notify) const {
  Result<std::vector<Field>> fields = Fields(item, {"retry_initial", "retry_max"});
  if (!fields.ok()) return fields.status();
  const Item* retry_max = nullptr;
  for (const Field& field : *fields) {
    bool initial = field.key == "retry_initial";
    if (!initial) retry_max = &field.value;
    uint32_t& out = initial ? notify.retry_initial_ms : notify.retry_max_ms;
    if (Status status = ReadInteger(field.value, 1, kMaxNotifyRetryMs, out); !status.ok()) return status;
  }
  if (retry_max != nullptr && notify.retry_max_ms < notify.retry_initial_ms) {
    return Error(*retry_max, Cat(notify.retry_max_ms, " is below retry_initial (", notify.retry_initial_ms,
                                 "); retries start at retry_initial and double up to retry_max"));
  }
  return Status::Ok();
}

Status Reader::CheckReferences(const Config& config) const {
  auto known = [&](const std::string& name) {
    return std::any_of(config.keys.begin(), config.keys.end(),
                       [&](const KeyConfig& key) { return key.name == name; });
  };
  std::string names;
  for (const KeyConfig& key : config.keys) names += Cat(names.empty() ? "" : ", ", key.name);
  std::string defined = names.empty() ? "no keys are defined under 'keys'" : Cat("defined keys: ", names);
  for (const ZoneConfig& zone : config.zones) {
    Item at{YAML::Node(), "", zone.line};
    for (const std::string& key : zone.transfer_keys) {
      if (!known(key))
        return Error(at, Cat("zone '", zone.name, "': transfer key '", key, "' is not defined (", defined, ")"));
    }
    if (!zone.notify_key.empty() && !known(zone.notify_key))
      return Error(at, Cat("zone '", zone.name, "': notify_key '", zone.notify_key,
                           "' is not defined (", defined, ")"));
    if (!zone.notify_key.empty() && zone.notify.empty())
      return Error(
          at, Cat("zone '", zone.name, "': notify_key is set but 'notify' names no secondary"));
    for (const UpdateRuleConfig& rule : zone.update) {
      if (!known(rule.key))
        return Error(at, Cat("zone '", zone.name, "': update key '", rule.key, "' is not defined (", defined, ")"));
    }
  }
  return Status::Ok();
}

}  // namespace

uint16_t Endpoint::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return 0;
}

bool SameEndpoints(const std::vector<Endpoint>& a, const std::vector<Endpoint>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Endpoint& x, const Endpoint& y) { return x.text == y.text; });
}

const KeyConfig* Config::FindKey(std::string_view name) const {
  std::string canonical = CanonicalName(name);
  for (const KeyConfig& key : keys) {
    if (key.name == canonical) return &key;
  }
  return nullptr;
}

bool Prefix::Contains(const sockaddr* address) const {
  const uint8_t* bytes_of = nullptr;
  if (address->sa_family == AF_INET && family == AF_INET) {
    bytes_of = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
  } else if (address->sa_family == AF_INET6 && family == AF_INET6) {
    bytes_of = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr;
  } else if (address->sa_family == AF_INET6 && family == AF_INET) {
    // A v4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    const uint8_t* v6 = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(v6, kMapped, 12) != 0) return false;
    bytes_of = v6 + 12;
  } else {
    return false;
  }
  unsigned whole = length / 8;
  if (std::memcmp(bytes_of, bytes, whole) != 0) return false;
  unsigned rest = length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes_of[whole] & mask) == (bytes[whole] & mask);
}

Result<Prefix> ParsePrefix(std::string_view text) {
  Prefix prefix;
  prefix.text = std::string(text);
  std::string address(text.substr(0, text.find('/')));
  if (inet_pton(AF_INET, address.c_str(), prefix.bytes) == 1) {
    prefix.family = AF_INET;
    prefix.length = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), prefix.bytes) == 1) {
    prefix.family = AF_INET6;
    prefix.length = 128;
  } else {
    return Status::Invalid(Cat("'", text, "' is not an address prefix (expected e.g. 127.0.0.0/8 or ::1)"));
  }
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    uint64_t bits = 0;
    if (!ParseDecimal(text.substr(slash + 1), bits) || bits > prefix.length) {
      return Status::Invalid(Cat("'", text, "': the prefix length must be a number from 0 to ", prefix.length));
    }
    prefix.length = static_cast<unsigned>(bits);
  }
  for (unsigned bit = prefix.length; bit < 128; ++bit) {
    if (bit / 8 < 16 && (prefix.bytes[bit / 8] >> (7 - bit % 8) & 1) != 0) {
      return Status::Invalid(Cat("'", text, "' has host bits set after /", prefix.length,
                                 "; did you mean the network address?"));
    }
  }
  return prefix;
}

const ZoneConfig* Config::FindZone(std::string_view name) const {
  std::string canonical = CanonicalName(name);
  for (const ZoneConfig& zone : zones) {
    if (zone.name == canonical) return &zone;
  }
  return nullptr;
}

Result<Endpoint> ParseEndpoint(std::string_view text, uint16_t default_port) {
  Endpoint endpoint;
  endpoint.text = std::string(text);
  std::string_view host = text;
  uint16_t port = default_port;
  if (size_t at = text.rfind('@'); at != std::string_view::npos) {
    host = text.substr(0, at);
    std::string_view port_text = text.substr(at + 1);
    uint64_t value = 0;
    if (!ParseDecimal(port_text, value) || value == 0 || value > 65535) {
      return Status::Invalid(Cat("port '", port_text, "' in '", text, "' is not a number from 1 to 65535"));
    }
    port = static_cast<uint16_t>(value);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

  std::string host_text(host);  // inet_pton wants a C string
  auto* v4 = reinterpret_cast<sockaddr_in*>(&endpoint.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&endpoint.address);
  if (inet_pton(AF_INET, host_text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    endpoint.address_length = sizeof(sockaddr_in);
    return endpoint;
  }
  if (inet_pton(AF_INET6, host_text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    endpoint.address_length = sizeof(sockaddr_in6);
    return endpoint;
  }
  // "127.0.0.1:53" is the usual slip; say so rather than only "bad address".
  std::string hint;
  if (size_t colon = host_text.find(':'); colon != std::string::npos) {
    std::string before = host_text.substr(0, colon);
    in_addr unused{};
    if (inet_pton(AF_INET, before.c_str(), &unused) == 1) {
      hint = Cat("; write the port after '@': ", before, "@", host_text.substr(colon + 1));
    }
  }
  return Status::Invalid(Cat("'", text, "' is not an address (", kEndpointHint, ")", hint));
}

Result<Endpoint> ParseHttpEndpoint(std::string_view text, uint16_t default_port) {
  if (text.find('@') != std::string_view::npos) return ParseEndpoint(text, default_port);
  std::string_view host = text;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return Status::Invalid(Cat("'", text, "' is not an address (", kHttpEndpointHint, "): no ']'"));
    }
    host = text.substr(0, close + 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Status::Invalid(Cat("'", text, "' is not an address (", kHttpEndpointHint, ")"));
      }
      port_text = rest.substr(1);
      has_port = true;
    }
  } else if (size_t colon = text.find(':');
             colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    // One colon: IPV4:PORT. Two or more: a bare IPv6 address.
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    has_port = true;
  }
  uint16_t port = default_port;
  if (has_port) {
    uint64_t value = 0;
    if (!ParseDecimal(port_text, value) || value == 0 || value > 65535) {
      return Status::Invalid(Cat("port '", port_text, "' in '", text, "' is not a number from 1 to 65535"));
    }
    port = static_cast<uint16_t>(value);
  }
  Result<Endpoint> endpoint = ParseEndpoint(host, port);
  if (!endpoint.ok()) {
    return Status::Invalid(Cat("'", text, "' is not an address (", kHttpEndpointHint, ")"));
  }
  endpoint->text = std::string(text);
  return endpoint;
}

namespace {

// Notes where a YAML document's content starts, if it has any.
class DocumentProbe : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Content(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Content(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Content(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Content(mark);
  }
  void OnMapEnd() override {}

  int line = 0;  // of the document's first content; 0 while it has none

 private:
  void Content(const YAML::Mark& mark) {
    if (line == 0) line = mark.line + 1;
  }
};

// The line where a second, non-empty document starts, or 0. Looks at two
// documents and no further: yaml-cpp 0.7's LoadAll never returns when the
// parser hands out empty documents without consuming input, as it does for
// a lone "," (jbeder/yaml-cpp#1040; regressions/config/top_level_comma).
int SecondDocumentLine(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentProbe first, second;
  if (!parser.HandleNextDocument(first) || !parser.HandleNextDocument(second)) return 0;
  return second.line;
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view source) {
  if (text.size() > kMaxConfigBytes) {
    return Status::Invalid(Cat(source, ": the file is ", text.size(), " bytes; a config is at most ",
                               kMaxConfigBytes, " (is this the right file?)"));
  }
  Config config;
  config.source = std::string(source);
  try {
    const std::string owned(text);
    YAML::Node document = YAML::Load(owned);
    if (document.IsNull()) {
      return Status::Invalid(
          Cat(source, ":1: the file is empty; expected a map with keys ", kTopLevelKeys));
    }
    if (int line = SecondDocumentLine(owned); line > 0) {
      return Status::Invalid(Cat(source, ":", line,
                                 ": a second YAML document starts here; updns reads one (check the "
                                 "indentation, or remove the '---')"));
    }
    Status status = Reader(source).Read(document, config);
    if (!status.ok()) return status;
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return Status::Invalid(Cat(source, ": YAML error: ", e.msg));
    return Status::Invalid(
        Cat(source, ":", e.mark.line + 1, ": YAML syntax error at column ", e.mark.column + 1, ": ", e.msg));
  }
  // The file refuses an empty 'listen' and 'workers: 0', so these mean absent.
  if (config.server.listen.empty()) {
    config.server.listen.push_back(ParseEndpoint(kDefaultListen, kDefaultDnsPort).value());
  }
  if (config.server.workers == 0) config.server.workers = std::max(1u, std::thread::hardware_concurrency());
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::IoError(Cat(path, ": cannot open the config file: ", std::strerror(errno)));
  std::string text;
  char buffer[16384];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), file.get())) {
    text.append(buffer, n);
    if (text.size() > kMaxConfigBytes) break;  // ParseConfig reports the size
  }
  if (std::ferror(file.get())) {
    return Status::IoError(Cat(path, ": cannot read the config file: ", std::strerror(errno)));
  }
  return ParseConfig(text, path);
}

}  // namespace updns::config
