#include "server/notifier.h"

#include <uv.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <optional>
#include <random>

#include "common/log.h"
#include "storage/schema.h"
#include "zone/name.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"

namespace updns::server {
namespace {

constexpr uint16_t kOpcodeNotify = 4;
// Header, question, and a TSIG RR: owner and algorithm names, fixed fields
// and a MAC of at most 64 bytes (tsig::RecordSize).
constexpr size_t kMaxNotifySize = 12 + 255 + 4 + 512;
// Unanswered sends after which a target is reported as not answering (once
// per serial); retries go on regardless.
constexpr unsigned kReportAfterAttempts = 3;

bool SameAddress(const sockaddr* a, const config::Endpoint& b) {
  if (a->sa_family != b.family()) return false;
  if (a->sa_family == AF_INET) {
    auto* x = reinterpret_cast<const sockaddr_in*>(a);
    auto* y = reinterpret_cast<const sockaddr_in*>(&b.address);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto* x = reinterpret_cast<const sockaddr_in6*>(a);
  auto* y = reinterpret_cast<const sockaddr_in6*>(&b.address);
  return x->sin6_port == y->sin6_port &&
         std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
}

// An announcement to one target not answered yet.
struct Pending {
  bool active = false;
  uint32_t serial = 0;
  uint16_t id = 0;
  unsigned attempts = 0;  // sends so far
  uint64_t due_ms = 0;    // next send, uv_now() time
  tsig::Mac mac;          // of the last signed send: its answer must be signed over it
};

struct ZoneState {
  std::string apex;
  std::string name;  // text, for logs
  std::vector<config::Endpoint> targets;
  std::optional<tsig::Key> key;
  std::vector<Pending> pending;  // per target
  std::optional<uint32_t> announced;
};

uint64_t NowSeconds() { return static_cast<uint64_t>(std::time(nullptr)); }

ZoneState NewZoneState(NotifierOptions::Zone zone) {
  ZoneState state;
  state.apex = std::move(zone.apex);
  state.name = zone::TextFromWireName(state.apex);
  state.pending.resize(zone.targets.size());
  state.targets = std::move(zone.targets);
  state.key = std::move(zone.key);
  return state;
}

}  // namespace

struct Notifier::Impl {
  Impl(const storage::Store& store, const NotifierOptions& options)
      : store(store), options(options), random(std::random_device{}()) {}

  const storage::Store& store;
  NotifierOptions options;  // the backoff and poll interval; the zones live in `zones`
  std::vector<ZoneState> zones;
  std::mt19937 random;
  std::optional<storage::ReadTxn> txn;
  uint64_t generation = ~uint64_t{0};

  uv_loop_t loop{};
  uv_async_t poke_async{};
  uv_async_t stop_async{};
  uv_async_t reload_async{};
  uv_timer_t poll_timer{};
  uv_timer_t retry_timer{};
  uv_udp_t socket4{};
  uv_udp_t socket6{};
  bool has4 = false, has6 = false;
  char receive_buffer[kMaxNotifySize];  // an answer echoes the NOTIFY, its own TSIG RR instead

  // A reload's options, from Reconfigure() to the loop.
  std::mutex reload_mutex;
  std::optional<NotifierOptions> next_options;  // guarded by reload_mutex
  bool reload_closed = false;                   // guarded by reload_mutex

  mutable std::mutex stats_mutex;
  Stats stats;  // guarded by stats_mutex

  Status Bind(uv_udp_t& socket, int family);
  void Check();
  void Send(ZoneState& zone, size_t target);
  void ScheduleRetry();
  void OnRetry();
  void OnAnswer(const uint8_t* data, size_t size, const sockaddr* from);
  void OnStop();
  void ApplyOptions();
};

Status Notifier::Impl::Bind(uv_udp_t& socket, int family) {
  uv_udp_init(&loop, &socket);
  socket.data = this;
  sockaddr_storage any{};
  if (family == AF_INET) {
    uv_ip4_addr("0.0.0.0", 0, reinterpret_cast<sockaddr_in*>(&any));
  } else {
    uv_ip6_addr("::", 0, reinterpret_cast<sockaddr_in6*>(&any));
  }
  if (int rc = uv_udp_bind(&socket, reinterpret_cast<const sockaddr*>(&any), 0); rc < 0) {
    return Status::IoError(std::string("notify: cannot open a UDP socket (") +
                           (family == AF_INET ? "IPv4" : "IPv6") + "): " + uv_strerror(rc));
  }
  uv_udp_recv_start(
      &socket,
      [](uv_handle_t* handle, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Impl*>(handle->data);
        *buf = uv_buf_init(self->receive_buffer, sizeof(self->receive_buffer));
      },
      [](uv_udp_t* handle, ssize_t size, const uv_buf_t* buf, const sockaddr* from, unsigned) {
        if (size > 0 && from != nullptr)
          static_cast<Impl*>(handle->data)
              ->OnAnswer(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(size), from);
      });
  return Status::Ok();
}

// Announces every zone whose serial moved since it was last announced.
void Notifier::Impl::Check() {
  if (!txn) {
    auto begun = store.BeginRead();
    if (!begun.ok()) {
      Log(LogLevel::kError, "notify_store_read_failed", {{"error", begun.status()}});
      return;
    }
    txn.emplace(std::move(begun).value());
  } else if (Status s = txn->Renew(); !s.ok()) {
    Log(LogLevel::kError, "notify_store_read_failed", {{"error", s}});
    return;
  }
  uint64_t now_generation = storage::ReadGeneration(*txn);
  if (now_generation != generation) {
    generation = now_generation;
    for (ZoneState& zone : zones) {
      auto serial = zone::ReadSerial(*txn, zone.apex);
      if (!serial.ok() || zone.announced == *serial) continue;  // absent zones wait for data
      zone.announced = *serial;
      for (size_t i = 0; i < zone.targets.size(); ++i) {
        zone.pending[i] = Pending{true, *serial, static_cast<uint16_t>(random()), 0, 0, {}};
        Send(zone, i);
      }
    }
  }
  txn->Reset();
  ScheduleRetry();
}

void Notifier::Impl::Send(ZoneState& zone, size_t target) {
  Pending& pending = zone.pending[target];
  const config::Endpoint& to = zone.targets[target];
  uint8_t message[kMaxNotifySize];
  // Header: ID, opcode NOTIFY with AA (RFC 1996 §3.7), one question.
  uint8_t header[12] = {static_cast<uint8_t>(pending.id >> 8), static_cast<uint8_t>(pending.id),
                        static_cast<uint8_t>(kOpcodeNotify << 3 | 0x04), 0, 0, 1, 0, 0, 0, 0, 0, 0};
  std::memcpy(message, header, sizeof(header));
  size_t size = sizeof(header);
  std::memcpy(message + size, zone.apex.data(), zone.apex.size());
  size += zone.apex.size();
  const uint8_t question_tail[4] = {0, zone::type::kSOA, 0, zone::kClassIN};
  std::memcpy(message + size, question_tail, sizeof(question_tail));
  size += sizeof(question_tail);
  if (zone.key) {
    auto signed_message = tsig::SignRequest(message, size, *zone.key, NowSeconds());
    if (!signed_message.ok()) {  // out of memory: resending would fail alike
      pending.active = false;
      Log(LogLevel::kError, "notify_sign_failed",
          {{"zone", zone.name}, {"peer", to.text}, {"error", signed_message.status()}});
      return;
    }
    size = signed_message->size;
    pending.mac = signed_message->mac;
  }

  uv_udp_t& socket = to.family() == AF_INET ? socket4 : socket6;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(message), static_cast<unsigned>(size));
  int rc = uv_udp_try_send(&socket, &buf, 1, reinterpret_cast<const sockaddr*>(&to.address));
  ++pending.attempts;
  uint64_t delay = options.retry_initial_ms;
  for (unsigned i = 1; i < pending.attempts && delay < options.retry_max_ms; ++i) delay *= 2;
  pending.due_ms = uv_now(&loop) + std::min<uint64_t>(delay, options.retry_max_ms);
  if (rc < 0) {
    Log(LogLevel::kWarning, "notify_send_failed",
        {{"zone", zone.name},
         {"serial", pending.serial},
         {"peer", to.text},
         {"error", uv_strerror(rc)},
         {"msg", "will retry"}});
  } else if (pending.attempts == kReportAfterAttempts + 1) {
    Log(LogLevel::kWarning, "notify_unanswered",
        {{"zone", zone.name},
         {"serial", pending.serial},
         {"peer", to.text},
         {"attempts", kReportAfterAttempts},
         {"msg", "retrying"}});
  }
  std::lock_guard lock(stats_mutex);
  ++stats.sent;
  if (rc < 0) ++stats.failed;
  if (pending.attempts > 1) ++stats.retries;
}

void Notifier::Impl::ScheduleRetry() {
  uint64_t earliest = UINT64_MAX;
  for (const ZoneState& zone : zones) {
    for (const Pending& pending : zone.pending) {
      if (pending.active) earliest = std::min(earliest, pending.due_ms);
    }
  }
  if (earliest == UINT64_MAX) {
    uv_timer_stop(&retry_timer);
    return;
  }
  uint64_t now = uv_now(&loop);
  uv_timer_start(
      &retry_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->OnRetry(); },
      earliest > now ? earliest - now : 0, 0);
}

void Notifier::Impl::OnRetry() {
  uint64_t now = uv_now(&loop);
  for (ZoneState& zone : zones) {
    for (size_t i = 0; i < zone.pending.size(); ++i) {
      if (zone.pending[i].active && zone.pending[i].due_ms <= now) Send(zone, i);
    }
  }
  ScheduleRetry();
}

void Notifier::Impl::OnAnswer(const uint8_t* data, size_t size, const sockaddr* from) {
  if (size < 12 || (data[2] & 0x80) == 0 || (data[2] >> 3 & 0x0f) != kOpcodeNotify) return;
  uint16_t id = static_cast<uint16_t>(data[0] << 8 | data[1]);
  uint8_t rcode = data[3] & 0x0f;
  for (ZoneState& zone : zones) {
    for (size_t i = 0; i < zone.targets.size(); ++i) {
      Pending& pending = zone.pending[i];
      if (!pending.active || pending.id != id || !SameAddress(from, zone.targets[i])) continue;
      if (zone.key) {
        tsig::Verified verified =
            tsig::VerifyResponse({data, size}, *zone.key, pending.mac, NowSeconds());
        if (verified.outcome != tsig::Outcome::kOk || verified.error != tsig::error::kNoError) {
          // Not from the secondary we share the key with, or it refused our
          // signature: the retries go on, and the reason is in the log.
          Log(LogLevel::kWarning, "notify_answer_unverified",
              {{"zone", zone.name},
               {"serial", pending.serial},
               {"peer", zone.targets[i].text},
               {"tsig", verified.outcome == tsig::Outcome::kOk
                            ? std::string_view("peer error")
                            : tsig::OutcomeName(verified.outcome)},
               {"tsig_error", verified.error},
               {"msg", "answer ignored; check that the secondary has the same key"}});
          return;
        }
      }
      pending.active = false;
      std::lock_guard lock(stats_mutex);
      if (rcode == 0) {
        ++stats.acknowledged;
        Log(LogLevel::kInfo, "notify_acknowledged",
            {{"zone", zone.name}, {"serial", pending.serial}, {"peer", zone.targets[i].text}});
      } else {
        // Refused or not authoritative: the secondary's configuration is at
        // fault, and resending the same message cannot change its mind.
        ++stats.rejected;
        Log(LogLevel::kWarning, "notify_rejected",
            {{"zone", zone.name},
             {"serial", pending.serial},
             {"peer", zone.targets[i].text},
             {"rcode", rcode},
             {"msg",
              "check that it is a secondary for the zone and allows NOTIFY from this "
              "address"}});
      }
      return;
    }
  }
}

// Zones whose apex, targets and key are unchanged keep what was announced
// and what is pending; new ones are announced at once. The new backoff
// spaces the next sends, and no pending resend waits longer than its
// retry_max.
void Notifier::Impl::ApplyOptions() {
  std::optional<NotifierOptions> fresh;
  {
    std::lock_guard lock(reload_mutex);
    fresh.swap(next_options);
  }
  if (!fresh) return;
  options.retry_initial_ms = fresh->retry_initial_ms;
  options.retry_max_ms = fresh->retry_max_ms;
  std::vector<ZoneState> next;
  for (NotifierOptions::Zone& zone : fresh->zones) {
    if (zone.targets.empty()) continue;
    for (const config::Endpoint& target : zone.targets) {
      bool& has = target.family() == AF_INET ? has4 : has6;
      if (has) continue;
      if (Status s = Bind(target.family() == AF_INET ? socket4 : socket6, target.family());
          s.ok()) {
        has = true;
      } else {
        Log(LogLevel::kError, "notify_socket_failed", {{"target", target.text}, {"error", s}});
      }
    }
    auto old = std::find_if(zones.begin(), zones.end(), [&](const ZoneState& z) {
      return z.apex == zone.apex && config::SameEndpoints(z.targets, zone.targets) &&
             z.key == zone.key;
    });
    next.push_back(old != zones.end() ? std::move(*old) : NewZoneState(std::move(zone)));
  }
  zones = std::move(next);
  const uint64_t latest_due = uv_now(&loop) + options.retry_max_ms;
  for (ZoneState& zone : zones) {
    for (Pending& pending : zone.pending) pending.due_ms = std::min(pending.due_ms, latest_due);
  }
  generation = ~uint64_t{0};
  Check();
}

void Notifier::Impl::OnStop() {
  {
    std::lock_guard lock(reload_mutex);
    reload_closed = true;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&reload_async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&poke_async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer), nullptr);
  if (has4) uv_close(reinterpret_cast<uv_handle_t*>(&socket4), nullptr);
  if (has6) uv_close(reinterpret_cast<uv_handle_t*>(&socket6), nullptr);
}

Result<std::unique_ptr<Notifier>> Notifier::Create(const storage::Store& store,
                                                   NotifierOptions options) {
  auto impl = std::make_unique<Impl>(store, options);
  for (NotifierOptions::Zone& zone : options.zones) {
    if (zone.targets.empty()) continue;
    for (const config::Endpoint& target : zone.targets) {
      (target.family() == AF_INET ? impl->has4 : impl->has6) = true;
    }
    impl->zones.push_back(NewZoneState(std::move(zone)));
  }
  Impl& w = *impl;
  uv_loop_init(&w.loop);
  uv_async_init(&w.loop, &w.poke_async, [](uv_async_t* a) { static_cast<Impl*>(a->data)->Check(); });
  uv_async_init(&w.loop, &w.stop_async, [](uv_async_t* a) { static_cast<Impl*>(a->data)->OnStop(); });
  uv_async_init(&w.loop, &w.reload_async,
                [](uv_async_t* a) { static_cast<Impl*>(a->data)->ApplyOptions(); });
  uv_timer_init(&w.loop, &w.poll_timer);
  uv_timer_init(&w.loop, &w.retry_timer);
  w.poke_async.data = w.stop_async.data = w.reload_async.data = &w;
  w.poll_timer.data = w.retry_timer.data = &w;
  Status bound;
  if (w.has4) bound = w.Bind(w.socket4, AF_INET);
  if (bound.ok() && w.has6) bound = w.Bind(w.socket6, AF_INET6);
  if (!bound.ok()) {
    w.OnStop();
    uv_run(&w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&w.loop);
    return bound;
  }
  return std::unique_ptr<Notifier>(new Notifier(std::move(impl)));
}

Notifier::Notifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Notifier::~Notifier() {
  Stop();
  uv_loop_close(&impl_->loop);
}

void Notifier::Start() {
  std::lock_guard lock(stop_mutex_);
  if (stopped_ || thread_.joinable()) return;
  Impl& w = *impl_;
  uv_timer_start(
      &w.poll_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->Check(); }, 0,
      w.options.poll_interval_ms);
  thread_ = std::thread([&w] { uv_run(&w.loop, UV_RUN_DEFAULT); });
}

void Notifier::Stop() {
  std::lock_guard lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    uv_async_send(&impl_->stop_async);
    thread_.join();
  } else {
    impl_->OnStop();
    uv_run(&impl_->loop, UV_RUN_DEFAULT);
  }
  impl_->txn.reset();
}

void Notifier::Poke() {
  std::lock_guard lock(stop_mutex_);
  if (!stopped_ && thread_.joinable()) uv_async_send(&impl_->poke_async);
}

void Notifier::Reconfigure(NotifierOptions options) {
  std::lock_guard lock(impl_->reload_mutex);
  if (impl_->reload_closed) return;
  impl_->next_options = std::move(options);
  uv_async_send(&impl_->reload_async);  // under the lock: OnStop cannot close it meanwhile
}

Notifier::Stats Notifier::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

}  // namespace updns::server
