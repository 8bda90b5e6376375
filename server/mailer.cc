#include "server/mailer.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/log.h"
#include "update/outbox.h"

// curl_multi_poll (7.66) and curl_multi_wakeup (7.68) make Stop() prompt.
#if LIBCURL_VERSION_NUM < 0x074400
#error "updns needs libcurl 7.68 or newer"
#endif

namespace updns::server {
namespace {

// The libcurl functions the mailer calls, from the library opened at run
// time. Their types come from curl.h, so a mismatch fails to compile.
struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_wakeup) multi_wakeup;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_strerror) multi_strerror;
};

// The SONAME of libcurl 7 and 8, which Debian's libcurl4 package ships.
constexpr const char* kCurlLibrary = "libcurl.so.4";

struct LoadedCurl {
  CurlApi api{};
  Status status;
};

// Once per process, never unloaded, and curl_global_init never undone. It
// runs on the mailer's thread while the query and HTTP threads run: libcurl
// 7.84 and later make it thread-safe (CURL_VERSION_THREADSAFE; Debian 12
// ships 7.88), and the OpenSSL 3 it sets up initializes itself safely.
const LoadedCurl& Loaded() {
  static const LoadedCurl loaded = [] {
    LoadedCurl out;
    void* library = ::dlopen(kCurlLibrary, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* why = ::dlerror();
      out.status = Status::IoError(std::string("mailer: cannot load ") + kCurlLibrary + " (" +
                                   (why ? why : "?") + "); install Debian's libcurl4");
      return out;
    }
    bool complete = true;
    auto bind = [&](auto& function, const char* name) {
      function =
          reinterpret_cast<std::remove_reference_t<decltype(function)>>(::dlsym(library, name));
      if (function == nullptr && complete) {
        complete = false;
        out.status = Status::IoError(std::string("mailer: ") + kCurlLibrary + " has no " + name +
                                     " (libcurl 7.68 or newer is needed)");
      }
    };
    CurlApi& api = out.api;
    bind(api.global_init, "curl_global_init");
    bind(api.easy_init, "curl_easy_init");
    bind(api.easy_setopt, "curl_easy_setopt");
    bind(api.easy_getinfo, "curl_easy_getinfo");
    bind(api.easy_cleanup, "curl_easy_cleanup");
    bind(api.easy_strerror, "curl_easy_strerror");
    bind(api.slist_append, "curl_slist_append");
    bind(api.slist_free_all, "curl_slist_free_all");
    bind(api.multi_init, "curl_multi_init");
    bind(api.multi_cleanup, "curl_multi_cleanup");
    bind(api.multi_add_handle, "curl_multi_add_handle");
    bind(api.multi_remove_handle, "curl_multi_remove_handle");
    bind(api.multi_perform, "curl_multi_perform");
    bind(api.multi_poll, "curl_multi_poll");
    bind(api.multi_wakeup, "curl_multi_wakeup");
    bind(api.multi_info_read, "curl_multi_info_read");
    bind(api.multi_strerror, "curl_multi_strerror");
    if (!complete) return out;
    if (CURLcode global = api.global_init(CURL_GLOBAL_DEFAULT); global != CURLE_OK) {
      out.status = Status::IoError(std::string("mailer: cannot initialize libcurl: ") +
                                   api.easy_strerror(global));
    }
    return out;
  }();
  return loaded;
}

// Only after LoadSmtpClient() returned Ok.
const CurlApi& Curl() { return Loaded().api; }

}  // namespace

Status LoadSmtpClient() { return Loaded().status; }

class CurlMulti {
 public:
  // Null handle() when curl_multi_init failed.
  CurlMulti() : multi_(Curl().multi_init()) {}
  ~CurlMulti() {
    if (multi_ != nullptr) Curl().multi_cleanup(multi_);
  }
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;
  CURLM* handle() const { return multi_; }

 private:
  CURLM* multi_;
};

struct Mailer::Outcome {
  enum class Kind { kAccepted, kFailed, kInterrupted };
  Kind kind = Kind::kFailed;
  std::string error;  // kFailed: what went wrong, for the log and last_error
};

namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
// RFC 5322 2.1.1: at most 998 octets per line, CRLF excluded.
constexpr size_t kMaxLineOctets = 998;
constexpr size_t kMaxSubjectOctets = 900;
constexpr size_t kMaxLoggedError = 300;

struct CurlEasyDeleter {
  void operator()(CURL* easy) const { Curl().easy_cleanup(easy); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { Curl().slist_free_all(list); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlListDeleter>;

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Mail records are store content that anyone with updnsctl can write; a log
// line must stay one line.
std::string Printable(std::string_view text, size_t limit = kMaxLoggedError) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte < 0x20 || byte == 0x7f ? '?' : c);
  }
  if (text.size() > limit) out += "...";
  return out;
}

// The recipient goes into "RCPT TO:<...>" and the To: header: anything that
// could end or split either is refused (config.cc checks mail.from alike).
bool PlainAddress(std::string_view address) {
  if (address.empty() || address.size() > 254) return false;
  for (char c : address) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f ||
        std::string_view("<>()[]\\,;:\"").find(c) != std::string_view::npos)
      return false;
  }
  size_t at = address.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < address.size() &&
         address.find('@', at + 1) == std::string_view::npos;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t group = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16;
    if (i + 1 < in.size()) group |= static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8;
    if (i + 2 < in.size()) group |= static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[(group >> 18) & 63]);
    out.push_back(kAlphabet[(group >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(group >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kAlphabet[group & 63] : '=');
  }
  return out;
}

// The Subject: field body. Control characters become spaces; text beyond
// ASCII becomes RFC 2047 encoded words (UTF-8, base64) of at most 75
// characters each, on folded lines, never splitting a UTF-8 sequence.
std::string SubjectField(std::string_view subject) {
  std::string text;
  bool ascii = true;
  for (char c : subject.substr(0, kMaxSubjectOctets)) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) ascii = false;
    text.push_back(byte < 0x20 || byte == 0x7f ? ' ' : c);
  }
  if (ascii) return text;
  constexpr size_t kChunk = 45;  // 60 base64 characters + 12 = 72 per word
  std::string out;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.size(), start + kChunk);
    while (end < text.size() && end > start + 1 &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
      --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(std::string_view(text).substr(start, end - start)) + "?=";
    start = end;
  }
  return out;
}

// RFC 5322 date-time in UTC, with English names whatever the locale.
std::string DateField(uint64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t seconds = static_cast<time_t>(unix_seconds);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[utc.tm_wday % 7],
                utc.tm_mday, kMonths[utc.tm_mon % 12], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

// The body with CRLF line ends (curl sends it as is, dot-stuffing aside),
// lines cut at 998 octets, ending in CRLF. Queued bodies are short lines of
// our own making; the cut only keeps a runaway line within the RFC.
std::string BodyText(std::string_view body) {
  std::string out;
  out.reserve(body.size() + body.size() / 16 + 2);
  size_t line = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
      out += "\r\n";
      line = 0;
      continue;
    }
    if (line == kMaxLineOctets) {
      out += "\r\n";
      line = 0;
    }
    out.push_back(c);
    ++line;
  }
  if (line != 0 || out.empty()) out += "\r\n";
  return out;
}

// The whole RFC 5322 message. The Message-ID depends only on the mail, so a
// mail sent twice (see mailer.h) carries the same one both times.
std::string ComposeMessage(uint64_t id, const storage::MailRecord& mail, std::string_view from,
                           uint64_t now) {
  std::string_view domain = from.substr(from.find('@') + 1);
  uint64_t created = mail.created_at != 0 ? mail.created_at : now;
  std::string message;
  message += "From: " + std::string(from) + "\r\n";
  message += "To: " + mail.to + "\r\n";
  message += "Subject: " + SubjectField(mail.subject) + "\r\n";
  message += "Date: " + DateField(created) + "\r\n";
  message += "Message-ID: <updns." + std::to_string(id) + "." + std::to_string(created) + "@" +
             std::string(domain) + ">\r\n";
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=utf-8\r\n";
  message += "Content-Transfer-Encoding: 8bit\r\n";
  message += "\r\n";
  message += BodyText(mail.body);
  return message;
}

struct Payload {
  std::string_view data;
  size_t offset = 0;
};

size_t ReadPayload(char* buffer, size_t size, size_t count, void* user) {
  auto* payload = static_cast<Payload*>(user);
  size_t n = std::min(size * count, payload->data.size() - payload->offset);
  std::memcpy(buffer, payload->data.data() + payload->offset, n);
  payload->offset += n;
  return n;
}

// The socket of the session in progress, so that Stop() can cut it: curl
// says QUIT and waits for the answer (up to the whole timeout) when a
// transfer is removed unfinished, unless the connection is already dead.
struct SessionSocket {
  curl_socket_t fd = CURL_SOCKET_BAD;
};

int OnSocketOpened(void* user, curl_socket_t fd, curlsocktype /*purpose*/) {
  static_cast<SessionSocket*>(user)->fd = fd;
  return CURL_SOCKOPT_OK;
}

int OnSocketClose(void* user, curl_socket_t fd) {
  auto* session = static_cast<SessionSocket*>(user);
  if (session->fd == fd) session->fd = CURL_SOCKET_BAD;
  return ::close(fd);
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

void LogDisabled(const storage::Store& store) {
  size_t queued = 0;
  if (auto txn = store.BeginRead(); txn.ok()) {
    if (auto mails = update::ListMail(*txn); mails.ok()) queued = mails->size();
  }
  Log(LogLevel::kWarning, "mailer_disabled",
      {{"key", "mail.smtp"},
       {"queued", queued},
       {"msg", "mail.smtp is not set: mail delivery is off, queued mails stay in the outbox"}});
}

}  // namespace

Mailer::Mailer(storage::Store& store, const config::MailConfig& config, MailerTiming timing)
    : store_(store), timing_(timing), active_(config), config_(config) {}

Mailer::~Mailer() { Stop(); }

void Mailer::Start() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || started_) return;
    started_ = true;
    if (!config_.smtp.empty()) return StartThread();
  }
  LogDisabled(store_);
}

void Mailer::StartThread() { thread_ = std::thread([this] { Run(); }); }

bool Mailer::enabled() const {
  std::lock_guard lock(mutex_);
  return !config_.smtp.empty();
}

void Mailer::Reconfigure(const config::MailConfig& config) {
  bool disabled = false;
  {
    std::lock_guard lock(mutex_);
    disabled = started_ && !config_.smtp.empty() && config.smtp.empty();
    config_ = config;
    woken_ = true;
    if (started_ && !stopping_ && !thread_.joinable() && !config_.smtp.empty()) StartThread();
  }
  wake_.notify_all();
  if (disabled) LogDisabled(store_);
}

void Mailer::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // Ends a curl_multi_poll in progress; Send() then sees stopping_.
    if (multi_ != nullptr) Curl().multi_wakeup(multi_->handle());
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Mailer::Wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

Mailer::Stats Mailer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool Mailer::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void Mailer::Run() {
  Status loaded = LoadSmtpClient();
  std::optional<CurlMulti> multi;
  if (loaded.ok() && !multi.emplace().handle())
    loaded = Status::IoError("mailer: cannot initialize libcurl (curl_multi_init failed)");
  if (!loaded.ok()) {
    Log(LogLevel::kError, "mailer_failed",
        {{"key", "mail.smtp"}, {"error", loaded}, {"msg", "no mail is sent; it stays queued"}});
    return;
  }
  std::unique_lock lock(mutex_);
  Log(LogLevel::kInfo, "mailer_started", {{"relay", Printable(config_.smtp)}});
  multi_ = &*multi;
  while (!stopping_) {
    woken_ = false;
    const bool all = config_.smtp != active_.smtp;
    active_ = config_;
    lock.unlock();
    // Without a relay (a reload cleared mail.smtp) the thread only waits.
    uint64_t next_due_ms = active_.smtp.empty() ? kNever : DeliverDue(*multi, all);
    lock.lock();
    if (stopping_) break;
    if (woken_) continue;
    auto wait = timing_.poll_interval;
    if (next_due_ms != kNever) {
      uint64_t now = NowMs();
      // A due mail the pass skipped (the clock moved meanwhile) is taken on the next pass.
      auto until_due = std::chrono::milliseconds(next_due_ms > now ? next_due_ms - now : 0);
      wait = std::min(wait, until_due);
    }
    if (wait.count() > 0) wake_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
  }
  multi_ = nullptr;  // before `multi` goes, while Stop() cannot look
}

uint64_t Mailer::DeliverDue(CurlMulti& multi, bool all) {
  std::vector<std::pair<uint64_t, storage::MailRecord>> mails;
  {
    auto txn = store_.BeginRead();
    if (!txn.ok()) {
      Log(LogLevel::kError, "mailer_outbox_read_failed", {{"error", txn.status()}});
      return kNever;
    }
    auto listed = update::ListMail(*txn);
    if (!listed.ok()) {
      Log(LogLevel::kError, "mailer_outbox_read_failed", {{"error", listed.status()}});
      return kNever;
    }
    mails = std::move(listed).value();
  }  // no transaction is held while talking to the relay

  uint64_t next_due_ms = kNever;
  for (const auto& [id, mail] : mails) {
    if (stopping()) break;
    uint64_t now_seconds = NowMs() / 1000;
    uint64_t due = mail.next_attempt_at;
    if (auto held = held_until_.find(id); held != held_until_.end())
      due = std::max(due, held->second);
    if (due > now_seconds && !all && !delivered_unremoved_.contains(id)) {
      next_due_ms = std::min(next_due_ms, due * 1000);
      continue;
    }
    Outcome outcome;
    if (delivered_unremoved_.contains(id)) {
      outcome.kind = Outcome::Kind::kAccepted;  // only the removal is left to do
    } else {
      outcome = Send(multi, id, mail);
    }
    if (outcome.kind == Outcome::Kind::kInterrupted) break;
    if (uint64_t retry_at = Record(id, mail, outcome); retry_at != 0)
      next_due_ms = std::min(next_due_ms, retry_at * 1000);
  }
  // Forget what concerns mail that is gone (delivered, or removed by an operator).
  std::erase_if(held_until_, [&](const auto& entry) {
    return std::none_of(mails.begin(), mails.end(),
                        [&](const auto& m) { return m.first == entry.first; });
  });
  return next_due_ms;
}

Mailer::Outcome Mailer::Send(CurlMulti& transfers, uint64_t id, const storage::MailRecord& mail) {
  Outcome outcome;
  if (!PlainAddress(mail.to)) {
    outcome.error =
        "the recipient '" + Printable(mail.to, 80) + "' is not a plain mail address (local@domain)";
    return outcome;
  }
  // Outlives the transfer: FORBID_REUSE below closes the connection when
  // the transfer ends or is removed, never later from the multi's cache.
  SessionSocket session;
  const CurlApi& curl = Curl();
  CurlEasy easy(curl.easy_init());
  std::string rcpt_path = "<" + mail.to + ">";
  CurlList rcpt(curl.slist_append(nullptr, rcpt_path.c_str()));
  if (!easy || !rcpt) {
    outcome.error = "cannot set up a libcurl transfer (out of memory?)";
    return outcome;
  }
  std::string message = ComposeMessage(id, mail, active_.from, NowMs() / 1000);
  Payload payload{message};
  std::string from_path = "<" + active_.from + ">";
  char error[CURL_ERROR_SIZE] = {};
  CURL* h = easy.get();
  curl.easy_setopt(h, CURLOPT_URL, active_.smtp.c_str());
  // The URL is configuration, but a redirect-free protocol whitelist costs nothing.
#if LIBCURL_VERSION_NUM >= 0x075500
  curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
  curl.easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
  curl.easy_setopt(h, CURLOPT_MAIL_FROM, from_path.c_str());
  curl.easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get());
  curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl.easy_setopt(h, CURLOPT_READFUNCTION, ReadPayload);
  curl.easy_setopt(h, CURLOPT_READDATA, &payload);
  curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
  curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(timing_.connect_timeout.count()));
  curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timing_.send_timeout.count()));
  // One session per mail: mail is rare, and a cached connection the relay
  // dropped meanwhile would only turn into a spurious failure.
  curl.easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
  long response_timeout = static_cast<long>((timing_.send_timeout.count() + 999) / 1000);
  curl.easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, response_timeout);
  curl.easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl.easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, OnSocketOpened);
  curl.easy_setopt(h, CURLOPT_SOCKOPTDATA, &session);
  curl.easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, OnSocketClose);
  curl.easy_setopt(h, CURLOPT_CLOSESOCKETDATA, &session);
  if (active_.starttls && Lowercase(active_.smtp).rfind("smtp://", 0) == 0)
    curl.easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!active_.username.empty()) {
    curl.easy_setopt(h, CURLOPT_USERNAME, active_.username.c_str());
    curl.easy_setopt(h, CURLOPT_PASSWORD, active_.password.c_str());
  }

  CURLM* multi = transfers.handle();
  if (CURLMcode added = curl.multi_add_handle(multi, h); added != CURLM_OK) {
    outcome.error = std::string("libcurl: ") + curl.multi_strerror(added);
    return outcome;
  }
  CURLcode result = CURLE_OK;
  bool done = false;
  CURLMcode failed = CURLM_OK;
  while (!done) {
    int running = 0;
    if (failed = curl.multi_perform(multi, &running); failed != CURLM_OK) break;
    int queued = 0;
    while (CURLMsg* msg = curl.multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done) break;
    if (stopping()) {
      outcome.kind = Outcome::Kind::kInterrupted;
      break;
    }
    // Returns on socket activity, curl's own timers, or curl_multi_wakeup from Stop().
    if (failed = curl.multi_poll(multi, nullptr, 0, 1000, nullptr); failed != CURLM_OK) break;
  }
  long smtp_code = 0;
  curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &smtp_code);
  // Unfinished: cut the connection so the removal below does not wait for
  // a relay that may never answer. curl still closes the socket itself.
  if (!done && session.fd != CURL_SOCKET_BAD) ::shutdown(session.fd, SHUT_RDWR);
  curl.multi_remove_handle(multi, h);
  if (outcome.kind == Outcome::Kind::kInterrupted) return outcome;
  if (failed != CURLM_OK) {
    outcome.error = std::string("libcurl: ") + curl.multi_strerror(failed);
  } else if (result == CURLE_OK) {
    outcome.kind = Outcome::Kind::kAccepted;
  } else {
    outcome.error = error[0] != '\0' ? std::string(error) : std::string(curl.easy_strerror(result));
    std::string code = std::to_string(smtp_code);
    if (smtp_code >= 400 && outcome.error.find(code) == std::string::npos)
      outcome.error += " (SMTP " + code + ")";
  }
  return outcome;
}

uint64_t Mailer::Record(uint64_t id, const storage::MailRecord& mail, const Outcome& outcome) {
  std::string to = Printable(mail.to, 80);
  uint64_t now = NowMs() / 1000;
  bool accepted = outcome.kind == Outcome::Kind::kAccepted;
  // retry_initial * 2^attempts, capped; the shift is bounded so it cannot overflow.
  uint64_t delay =
      std::min<uint64_t>(active_.retry_max_seconds,
                         uint64_t{active_.retry_initial_seconds} << std::min(mail.attempts, 31u));
  Status status;
  if (auto txn = store_.BeginWrite(); !txn.ok()) {
    status = txn.status();
  } else {
    status = accepted ? update::RemoveMail(*txn, id)
                      : update::DeferMail(*txn, id, outcome.error, now + delay);
    // Gone already: an operator removed it meanwhile. Nothing left to record.
    if (status.IsNotFound()) status = Status::Ok();
    if (status.ok()) status = txn->Commit();
  }

  if (accepted) {
    bool retried_removal = delivered_unremoved_.contains(id);
    if (!retried_removal) {
      std::lock_guard lock(mutex_);
      ++stats_.delivered;
    }
    if (status.ok()) {
      delivered_unremoved_.erase(id);
      held_until_.erase(id);
      if (!retried_removal) Log(LogLevel::kInfo, "mail_delivered", {{"mail", id}, {"to", to}});
    } else {
      delivered_unremoved_.insert(id);
      Log(LogLevel::kError, "mail_remove_failed",
          {{"mail", id},
           {"to", to},
           {"error", status},
           {"msg", "delivered but still in the outbox; trying again"}});
    }
    return 0;
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.failed_attempts;
  }
  Log(LogLevel::kWarning, "mail_attempt_failed",
      {{"mail", id},
       {"to", to},
       {"relay", Printable(active_.smtp)},
       {"attempt", mail.attempts + 1},
       {"error", Printable(outcome.error)},
       {"retry_in_s", delay}});
  if (status.ok()) {
    held_until_.erase(id);
  } else {
    held_until_[id] = now + delay;
    Log(LogLevel::kError, "mail_defer_failed",
        {{"mail", id}, {"error", status}, {"msg", "cannot record the failed attempt"}});
  }
  return now + delay;
}

}  // namespace updns::server
