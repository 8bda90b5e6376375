// The failed-login throttle that dyndns2 (/nic/update) and the JSON API
// share: password and token guessing from one address slows down to a
// trickle, while a user at another address is never locked out by it.
//
// Two budgets are charged per attempt, both keyed by the client's address
// (IPv4 /32, IPv6 /64: one subscriber's network):
//   - per (kind, name, address): guesses at one account, host or reseller;
//   - per address: guesses at any names (an attacker walking a name list).
// Each budget is a leaky bucket (GCRA): `limit` attempts at once, refilling
// evenly over `window`, so after the limit one more attempt is allowed
// every window/limit. A refused attempt is not checked at all and costs
// nothing, so waiting Retry-After seconds always lets the next one through;
// the right password is refused too while refused (no oracle).
//
// Attempts are charged before the credentials are checked (Begin), so
// concurrent guesses cannot overrun the limit; a success gives the charge
// back (Succeeded, which also forgets the name's failures), and so does an
// attempt that ended in neither (Refund: a store error, a busy pool).
//
// Thread-safe. Memory is bounded: when the table is full, drained entries
// are forgotten, and if that is not enough, everything (failing open beats
// growing without bound).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace updns::server {

struct ThrottleOptions {
  unsigned per_name = 10;       // attempts at once per (kind, name, address); 0 = unlimited
  unsigned per_address = 30;    // attempts at once per address, any names; 0 = unlimited
  uint64_t window_ms = 300000;  // a full budget refills over this
  size_t max_entries = 100000;  // table size bound (see above)

  bool operator==(const ThrottleOptions&) const = default;
};

class LoginThrottle {
 public:
  explicit LoginThrottle(ThrottleOptions options = {});
  LoginThrottle(const LoginThrottle&) = delete;
  LoginThrottle& operator=(const LoginThrottle&) = delete;

  // One attempt's budget keys; give it back to Succeeded() or Refund().
  struct Attempt {
    std::string name_key;
    std::string address_key;
    // Seconds to wait when refused (nothing was charged); 0 when allowed.
    uint64_t retry_after = 0;
    bool refused() const { return retry_after != 0; }
  };

  // Charges one attempt at `name` (normalized by the caller; only its first
  // 256 bytes count) of `kind` ("account", "host", "reseller": names of
  // different kinds never share a budget) from `peer`, or refuses it.
  // `now_ms` is a monotonic clock; the overload without it reads one.
  Attempt Begin(std::string_view kind, std::string_view name, const sockaddr_storage& peer,
                uint64_t now_ms);
  Attempt Begin(std::string_view kind, std::string_view name, const sockaddr_storage& peer);

  // The credentials were right: the name's failures are forgotten and the
  // address's charge for this attempt is given back. No-op when refused.
  void Succeeded(const Attempt& attempt);
  // Neither right nor wrong: both charges are given back.
  void Refund(const Attempt& attempt);

  // New limits (a reload). When they differ from the current ones, every
  // budget starts full again: a debt run up under the old limits does not
  // translate into the new ones. The same limits again change nothing.
  void SetOptions(ThrottleOptions options);

  // The address part of the keys: "192.0.2.1", "2001:db8:1:2::/64".
  static std::string AddressKey(const sockaddr_storage& peer);

 private:
  struct Budget {
    unsigned limit;
    uint64_t interval_ms;  // window / limit: one attempt's weight
  };
  // Milliseconds until `key` may be charged once more; 0 when it may now.
  uint64_t WaitMs(const std::string& key, const Budget& budget, uint64_t now_ms) const;
  void Charge(const std::string& key, const Budget& budget, uint64_t now_ms);
  void GiveBack(const std::string& key, const Budget& budget);
  void Prune(uint64_t now_ms);  // REQUIRES: mutex_ held

  static Budget BudgetOf(unsigned limit, uint64_t window_ms);

  std::mutex mutex_;
  ThrottleOptions options_;              // guarded by mutex_
  Budget name_budget_, address_budget_;  // guarded by mutex_
  // Key -> the time at which its bucket is empty again (GCRA's theoretical
  // arrival time). Guarded by mutex_.
  std::unordered_map<std::string, uint64_t> empty_at_ms_;
  // When the table was last found full, so that a flood logs a line a
  // minute, not one per client. Guarded by mutex_.
  std::optional<uint64_t> last_full_warning_ms_;
};

}  // namespace updns::server
