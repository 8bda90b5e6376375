// Response rate limiting for UDP (the scheme of BIND's and Knot's RRL): an
// authoritative server is a tempting amplifier for spoofed-source floods,
// so answers of one kind to one client network are limited to `rate` per
// second. Over the limit, every `slip`-th answer is sent truncated (TC, no
// records: a real client retries over TCP, which cannot be spoofed) and the
// others are dropped.
//
// "One kind" is the bucket key: the client's prefix (/24 and /56 by
// default), the answer class (positive, NXDOMAIN, NODATA, referral, error)
// and a name: the query name for positive answers, NODATA and errors, the
// zone apex for NXDOMAIN and referrals, so that a flood of random names in
// one zone counts as one.
//
// One table is shared by every query loop: fixed size, no allocation after
// construction, lock-free (relaxed atomics; two loops racing on one bucket
// may let one extra answer through, which does not matter). Buckets are
// found by hash; a collision makes two keys share a budget, never a crash.
// Off (rate 0) it costs the caller one branch.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace updns::server {

struct RrlOptions {
  uint32_t rate = 0;        // answers per second per bucket; 0 = off
  uint32_t slip = 2;        // over the limit, 1 in `slip` answers goes out TC; 0 = drop all
  uint8_t ipv4_prefix = 24;
  uint8_t ipv6_prefix = 56;
  size_t table_size = 1 << 16;  // buckets (rounded up to a power of two)

  bool operator==(const RrlOptions&) const = default;
};

enum class AnswerClass : uint8_t { kPositive, kNxdomain, kNodata, kReferral, kError };

class ResponseRateLimiter {
 public:
  explicit ResponseRateLimiter(const RrlOptions& options);

  enum class Verdict { kSend, kSlip, kDrop };

  // Accounts one answer and says what to do with it. `name` is lowercase
  // wire form (query name or zone apex, see above); `now_ms` a monotonic
  // clock. Thread-safe, noexcept, allocation-free.
  Verdict Account(const sockaddr* client, AnswerClass answer_class, std::string_view name,
                  uint64_t now_ms) noexcept;

  bool enabled() const noexcept { return options_.rate != 0; }
  uint64_t limited() const noexcept { return limited_.load(std::memory_order_relaxed); }

 private:
  struct Bucket {
    std::atomic<uint64_t> tag{0};     // the key's hash, to tell keys apart
    std::atomic<int64_t> tokens{0};   // answers left, in 1/1000 units
    std::atomic<uint64_t> last_ms{0};
    std::atomic<uint32_t> slipped{0};
  };

  const RrlOptions options_;
  const size_t mask_;
  std::unique_ptr<Bucket[]> buckets_;
  std::atomic<uint64_t> limited_{0};
};

}  // namespace updns::server
