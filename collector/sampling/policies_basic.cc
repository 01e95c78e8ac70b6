// The policies over what the receiver decodes anyway (status, times, span count, trace id) and
// the rate limiter.
#include <algorithm>
#include <cmath>

#include "absl/hash/hash.h"
#include "collector/sampling/policy.h"

namespace tracekeep::sampling {
namespace {

class AlwaysSamplePolicy final : public Policy {
 public:
  Decision Evaluate(TraceView&, absl::Time) override { return Decision::kSampled; }
  bool ReadsSpans() const override { return false; }
};

// Samples traces with at least one span whose status code is one of the configured ones.
class StatusCodePolicy final : public Policy {
 public:
  explicit StatusCodePolicy(const std::vector<std::string>& codes) {
    for (const std::string& c : codes) {
      if (c == "ERROR") error_ = true;
      if (c == "OK") ok_ = true;
      if (c == "UNSET") unset_ = true;
    }
  }

  Decision Evaluate(TraceView& trace, absl::Time) override {
    // ERROR alone needs no decoding: the receiver marks error spans.
    if (error_ && trace.trace().has_error) return Decision::kSampled;
    if (!ok_ && !unset_) return Decision::kNotSampled;
    for (size_t i = 0; i < trace.span_count(); ++i) {
      const int code = trace.span(i).status_code;
      if ((ok_ && code == kStatusOk) || (unset_ && code == kStatusUnset)) {
        return Decision::kSampled;
      }
    }
    return Decision::kNotSampled;
  }
  // ERROR alone reads the trace's summary.
  bool ReadsSpans() const override { return ok_ || unset_; }

 private:
  bool error_ = false;
  bool ok_ = false;
  bool unset_ = false;
};

// Trace duration = latest span end - earliest span start.
class LatencyPolicy final : public Policy {
 public:
  explicit LatencyPolicy(const LatencyConfig& c)
      : lower_nanos_(c.threshold_ms * 1000000),
        upper_nanos_(c.upper_threshold_ms == 0 ? INT64_MAX : c.upper_threshold_ms * 1000000) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    const PendingTrace& t = trace.trace();
    if (t.SpanCount() == 0 || t.max_end_unix_nanos < t.min_start_unix_nanos) {
      return Decision::kNotSampled;
    }
    const int64_t d = t.max_end_unix_nanos - t.min_start_unix_nanos;
    return d >= lower_nanos_ && d <= upper_nanos_ ? Decision::kSampled : Decision::kNotSampled;
  }

  bool ReadsSpans() const override { return false; }

 private:
  int64_t lower_nanos_;
  int64_t upper_nanos_;
};

// Samples a fixed share of traces. The decision depends only on the trace id (and salt), so
// every tracekeep instance and every late span of a trace agree on it.
class ProbabilisticPolicy final : public Policy {
 public:
  ProbabilisticPolicy(double percentage, const std::string& salt)
      : salt_hash_(salt.empty() ? 0 : absl::Hash<std::string>{}(salt)),
        threshold_(percentage >= 100 ? UINT64_MAX
                                     : static_cast<uint64_t>(std::ldexp(percentage / 100.0, 64))) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    uint64_t h = trace.trace().hash;
    if (salt_hash_ != 0) {
      h ^= salt_hash_;
      h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
      h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
      h ^= h >> 33;
    }
    return h < threshold_ || threshold_ == UINT64_MAX ? Decision::kSampled : Decision::kNotSampled;
  }

  bool ReadsSpans() const override { return false; }

 private:
  uint64_t salt_hash_;
  uint64_t threshold_;
};

// Samples whole traces while the spans sampled in the current second stay within the budget.
class RateLimitingPolicy final : public Policy {
 public:
  explicit RateLimitingPolicy(double spans_per_second) : budget_(spans_per_second) {}

  Decision Evaluate(TraceView& trace, absl::Time now) override {
    const int64_t second = absl::ToUnixSeconds(now);
    if (second != second_) {
      second_ = second;
      spent_ = 0;
    }
    const double n = static_cast<double>(trace.span_count());
    if (spent_ + n > budget_) return Decision::kNotSampled;
    spent_ += n;
    return Decision::kSampled;
  }

  bool ReadsSpans() const override { return false; }

 private:
  double budget_;
  int64_t second_ = INT64_MIN;
  double spent_ = 0;
};

// A token bucket of span bytes: refilled continuously at `rate` bytes/s up to `capacity`; a trace
// is sampled when its bytes fit and takes them. The bucket starts full.
class BytesLimitingPolicy final : public Policy {
 public:
  BytesLimitingPolicy(double rate, double capacity)
      : rate_(rate), capacity_(capacity), tokens_(capacity) {}

  Decision Evaluate(TraceView& trace, absl::Time now) override {
    if (last_ != absl::InfinitePast() && now > last_) {
      tokens_ = std::min(capacity_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
    }
    if (last_ == absl::InfinitePast() || now > last_) last_ = now;
    const auto bytes = static_cast<double>(trace.trace().span_bytes);
    if (bytes > tokens_) return Decision::kNotSampled;
    tokens_ -= bytes;
    return Decision::kSampled;
  }

  bool ReadsSpans() const override { return false; }

 private:
  double rate_;
  double capacity_;
  double tokens_;
  absl::Time last_ = absl::InfinitePast();
};

class SpanCountPolicy final : public Policy {
 public:
  explicit SpanCountPolicy(const SpanCountConfig& c)
      : min_(c.min_spans), max_(c.max_spans == 0 ? INT64_MAX : c.max_spans) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    const auto n = static_cast<int64_t>(trace.span_count());
    return n >= min_ && n <= max_ ? Decision::kSampled : Decision::kNotSampled;
  }

  bool ReadsSpans() const override { return false; }

 private:
  int64_t min_;
  int64_t max_;
};

}  // namespace

PolicyPtr NewAlwaysSamplePolicy() { return std::make_unique<AlwaysSamplePolicy>(); }
PolicyPtr NewStatusCodePolicy(const std::vector<std::string>& codes) {
  return std::make_unique<StatusCodePolicy>(codes);
}
PolicyPtr NewLatencyPolicy(const LatencyConfig& config) {
  return std::make_unique<LatencyPolicy>(config);
}
PolicyPtr NewProbabilisticPolicy(double percentage, const std::string& salt) {
  return std::make_unique<ProbabilisticPolicy>(percentage, salt);
}
PolicyPtr NewRateLimitingPolicy(double spans_per_second) {
  return std::make_unique<RateLimitingPolicy>(spans_per_second);
}
PolicyPtr NewBytesLimitingPolicy(double bytes_per_second, double burst) {
  return std::make_unique<BytesLimitingPolicy>(bytes_per_second, burst);
}
PolicyPtr NewSpanCountPolicy(const SpanCountConfig& config) {
  return std::make_unique<SpanCountPolicy>(config);
}

}  // namespace tracekeep::sampling
