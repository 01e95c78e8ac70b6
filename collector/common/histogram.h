// A lock-free histogram of durations with fixed bucket bounds, exported as a Prometheus histogram
// by the daemon. Observe is wait-free (a few relaxed atomic adds).
#ifndef TRACEKEEP_COLLECTOR_COMMON_HISTOGRAM_H_
#define TRACEKEEP_COLLECTOR_COMMON_HISTOGRAM_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"

namespace tracekeep {

class DurationHistogram {
 public:
  // `bounds_seconds`: ascending upper bounds of the buckets; an implicit +Inf bucket follows.
  explicit DurationHistogram(std::vector<double> bounds_seconds)
      : bounds_(std::move(bounds_seconds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
    for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
  }

  // Records `n` observations of `d` (negative durations count as 0).
  void Observe(absl::Duration d, uint64_t n = 1) {
    const double s = std::max(0.0, absl::ToDoubleSeconds(d));
    const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), s) - bounds_.begin();
    counts_[i].fetch_add(n, std::memory_order_relaxed);
    count_.fetch_add(n, std::memory_order_relaxed);
    sum_nanos_.fetch_add(static_cast<int64_t>(s * 1e9) * static_cast<int64_t>(n),
                         std::memory_order_relaxed);
  }

  const std::vector<double>& bounds() const { return bounds_; }
  // Observations in bucket i (not cumulative); i == bounds().size() is the +Inf bucket.
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum_seconds() const { return sum_nanos_.load(std::memory_order_relaxed) / 1e9; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_nanos_{0};
};

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_COMMON_HISTOGRAM_H_
