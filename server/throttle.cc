#include "server/throttle.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/log.h"

namespace updns::server {
namespace {

// Longer names are no valid account or host names; cutting them bounds the
// key size (and so the table's memory) whatever a client sends.
constexpr size_t kMaxNameInKey = 256;

uint64_t SteadyMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

LoginThrottle::LoginThrottle(ThrottleOptions options)
    : options_(options),
      name_budget_(BudgetOf(options.per_name, options.window_ms)),
      address_budget_(BudgetOf(options.per_address, options.window_ms)) {}

LoginThrottle::Budget LoginThrottle::BudgetOf(unsigned limit, uint64_t window_ms) {
  return {limit, limit ? std::max<uint64_t>(1, window_ms / limit) : 0};
}

void LoginThrottle::SetOptions(ThrottleOptions options) {
  std::lock_guard lock(mutex_);
  if (options == options_) return;
  options_ = options;
  name_budget_ = BudgetOf(options.per_name, options.window_ms);
  address_budget_ = BudgetOf(options.per_address, options.window_ms);
  empty_at_ms_.clear();
}

std::string LoginThrottle::AddressKey(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (peer.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    return text;
  }
  if (peer.ss_family == AF_INET6) {
    // One subscriber gets a /64 (or more): counting single addresses would
    // hand an attacker 2^64 budgets.
    in6_addr prefix = reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr;
    std::memset(prefix.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &prefix, text, sizeof text);
    return std::string(text) + "/64";
  }
  return text;
}

LoginThrottle::Attempt LoginThrottle::Begin(std::string_view kind, std::string_view name,
                                            const sockaddr_storage& peer) {
  return Begin(kind, name, peer, SteadyMs());
}

LoginThrottle::Attempt LoginThrottle::Begin(std::string_view kind, std::string_view name,
                                            const sockaddr_storage& peer, uint64_t now_ms) {
  Attempt attempt;
  attempt.address_key = AddressKey(peer);
  attempt.name_key.reserve(kind.size() + kMaxNameInKey + attempt.address_key.size() + 2);
  attempt.name_key.append(kind).append("\n").append(name.substr(0, kMaxNameInKey));
  attempt.name_key.append("\n").append(attempt.address_key);
  // The address key cannot collide with a name key: it has no '\n'.
  std::lock_guard lock(mutex_);
  uint64_t wait = std::max(WaitMs(attempt.name_key, name_budget_, now_ms),
                           WaitMs(attempt.address_key, address_budget_, now_ms));
  if (wait > 0) {
    attempt.retry_after = (wait + 999) / 1000;
    return attempt;
  }
  if (empty_at_ms_.size() + 2 > options_.max_entries) Prune(now_ms);
  Charge(attempt.name_key, name_budget_, now_ms);
  Charge(attempt.address_key, address_budget_, now_ms);
  return attempt;
}

void LoginThrottle::Succeeded(const Attempt& attempt) {
  if (attempt.refused()) return;
  std::lock_guard lock(mutex_);
  // Forgetting the address's other failures too would let an attacker with
  // one valid account reset the budget it spends on guessing other names.
  empty_at_ms_.erase(attempt.name_key);
  GiveBack(attempt.address_key, address_budget_);
}

void LoginThrottle::Refund(const Attempt& attempt) {
  if (attempt.refused()) return;
  std::lock_guard lock(mutex_);
  GiveBack(attempt.name_key, name_budget_);
  GiveBack(attempt.address_key, address_budget_);
}

uint64_t LoginThrottle::WaitMs(const std::string& key, const Budget& budget,
                               uint64_t now_ms) const {
  if (budget.limit == 0) return 0;
  auto it = empty_at_ms_.find(key);
  if (it == empty_at_ms_.end() || it->second <= now_ms) return 0;
  // Allowed while the bucket, with this attempt, holds at most `limit`.
  uint64_t after = it->second - now_ms + budget.interval_ms;
  uint64_t capacity = uint64_t{budget.limit} * budget.interval_ms;
  return after > capacity ? after - capacity : 0;
}

void LoginThrottle::Charge(const std::string& key, const Budget& budget, uint64_t now_ms) {
  if (budget.limit == 0) return;
  uint64_t& empty_at = empty_at_ms_[key];
  empty_at = std::max(empty_at, now_ms) + budget.interval_ms;
}

void LoginThrottle::GiveBack(const std::string& key, const Budget& budget) {
  auto it = empty_at_ms_.find(key);
  if (it == empty_at_ms_.end()) return;
  it->second = it->second > budget.interval_ms ? it->second - budget.interval_ms : 0;
}

void LoginThrottle::Prune(uint64_t now_ms) {
  std::erase_if(empty_at_ms_, [&](const auto& entry) { return entry.second <= now_ms; });
  if (empty_at_ms_.size() + 2 > options_.max_entries) {
    if (!last_full_warning_ms_ || now_ms >= *last_full_warning_ms_ + 60000) {
      Log(LogLevel::kWarning, "login_throttle_full",
          {{"budgets", options_.max_entries},
           {"msg",
            "more failed-login budgets in use than the table holds (a distributed "
            "password-guessing attack?); forgetting them all"}});
      last_full_warning_ms_ = now_ms;
    }
    empty_at_ms_.clear();
  }
}

}  // namespace updns::server
