#include "server/rrl.h"

#include <netinet/in.h>

#include <algorithm>
#include <bit>

namespace updns::server {
namespace {

constexpr int64_t kUnit = 1000;  // tokens are counted in thousandths of an answer

// FNV-1a: short keys, spread over the table by its low bits after the final
// mix below.
uint64_t Mix(uint64_t hash, const uint8_t* bytes, size_t size) noexcept {
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  return hash;
}

uint64_t Finish(uint64_t hash) noexcept {
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdull;
  hash ^= hash >> 33;
  return hash | 1;  // 0 marks an unused bucket
}

// The client's network: the address masked to `bits`.
uint64_t HashPrefix(uint64_t hash, const uint8_t* address, size_t size, unsigned bits) noexcept {
  uint8_t masked[16] = {};
  for (size_t i = 0; i < size && bits > 0; ++i) {
    unsigned take = std::min(bits, 8u);
    masked[i] = address[i] & static_cast<uint8_t>(0xff << (8 - take));
    bits -= take;
  }
  return Mix(hash, masked, size);
}

}  // namespace

ResponseRateLimiter::ResponseRateLimiter(const RrlOptions& options)
    : options_(options),
      mask_(std::bit_ceil(std::max<size_t>(options.table_size, 2)) - 1),
      buckets_(new Bucket[mask_ + 1]) {}

ResponseRateLimiter::Verdict ResponseRateLimiter::Account(const sockaddr* client,
                                                          AnswerClass answer_class,
                                                          std::string_view name,
                                                          uint64_t now_ms) noexcept {
  if (options_.rate == 0) return Verdict::kSend;
  uint64_t hash = 0xcbf29ce484222325ull;
  if (client->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(client);
    hash = HashPrefix(hash, reinterpret_cast<const uint8_t*>(&v4->sin_addr), 4, options_.ipv4_prefix);
  } else if (client->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(client);
    hash = HashPrefix(hash, v6->sin6_addr.s6_addr, 16, options_.ipv6_prefix);
  }
  auto kind = static_cast<uint8_t>(answer_class);
  hash = Mix(hash, &kind, 1);
  hash = Finish(Mix(hash, reinterpret_cast<const uint8_t*>(name.data()), name.size()));

  Bucket& bucket = buckets_[hash & mask_];
  const int64_t burst = int64_t{options_.rate} * kUnit;  // one second's worth
  int64_t tokens;
  if (bucket.tag.load(std::memory_order_relaxed) != hash) {
    // A new key (or one that lost its bucket to another): a full budget.
    bucket.tag.store(hash, std::memory_order_relaxed);
    tokens = burst;
  } else {
    uint64_t last = bucket.last_ms.load(std::memory_order_relaxed);
    uint64_t elapsed = now_ms > last ? now_ms - last : 0;
    tokens = bucket.tokens.load(std::memory_order_relaxed);
    // rate answers per second = rate thousandths per millisecond.
    tokens = elapsed >= 1000 ? burst : std::min(burst, tokens + static_cast<int64_t>(elapsed) * options_.rate);
  }
  bucket.last_ms.store(now_ms, std::memory_order_relaxed);
  if (tokens >= kUnit) {
    bucket.tokens.store(tokens - kUnit, std::memory_order_relaxed);
    return Verdict::kSend;
  }
  bucket.tokens.store(tokens, std::memory_order_relaxed);
  limited_.fetch_add(1, std::memory_order_relaxed);
  if (options_.slip == 0) return Verdict::kDrop;
  uint32_t slipped = bucket.slipped.fetch_add(1, std::memory_order_relaxed) + 1;
  return slipped % options_.slip == 0 ? Verdict::kSlip : Verdict::kDrop;
}

}  // namespace updns::server
