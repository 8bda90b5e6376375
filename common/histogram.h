// A Prometheus-style histogram as a plain value: fixed upper bounds, a count
// per bucket, the sum and the count of what was observed. Not thread-safe:
// its owner guards it (update::Writer keeps its histograms under its
// stats mutex) and hands out copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace updns {

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, ascending; +Inf is implied.
  explicit Histogram(std::initializer_list<double> bounds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

  void Observe(double value) noexcept {
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += value;
    ++count_;
  }

  const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Observations <= bounds()[i] (cumulative, as Prometheus's `le` buckets);
  // i == bounds().size() is +Inf, i.e. count().
  uint64_t CumulativeCount(size_t i) const noexcept {
    uint64_t total = 0;
    for (size_t j = 0; j <= i && j < counts_.size(); ++j) total += counts_[j];
    return total;
  }
  double sum() const noexcept { return sum_; }
  uint64_t count() const noexcept { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, the last one past every bound
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace updns
