// Request metrics from every accepted span, before sampling: calls and a duration histogram per
// service, span name, span kind and status code (plus configured dimensions), and exception events
// per service and exception type. Names, labels and label values follow the OpenTelemetry
// Collector's `spanmetrics` connector as its Prometheus exporter writes them, so dashboards and
// Jaeger's Monitor tab built for it read tracekeep's /metrics unchanged:
//
//   traces_span_metrics_calls_total{service_name,span_name,span_kind,status_code,...}
//   traces_span_metrics_duration_milliseconds_{bucket,sum,count}{...}
//   tracekeep_span_exceptions_total{service_name,exception_type,status_code}
//
// SpanMetricsIntake is the pipeline stage: a SpanIntake placed in front of the journal, so a span
// is counted once when it is accepted and never again when the journal replays it after a crash.
#ifndef TRACEKEEP_COLLECTOR_SPANMETRICS_SPAN_METRICS_H_
#define TRACEKEEP_COLLECTOR_SPANMETRICS_SPAN_METRICS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector/pipeline/consumer.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::spanmetrics {

// A label taken from a span attribute, or failing that from a resource attribute, of that name.
struct Dimension {
  std::string name;  // attribute key, e.g. http.route; the label is its Prometheus form http_route
  // Label value when neither the span nor its resource has the attribute. Absent: the label is
  // left out of that series.
  std::optional<std::string> default_value;
};

// The OpenTelemetry spanmetrics connector's default explicit buckets.
std::vector<absl::Duration> DefaultBuckets();

// Most dimensions a span metrics stage takes.
inline constexpr size_t kMaxDimensions = 32;

struct SpanMetricsOptions {
  // Whether the stage runs at all. Default: true.
  bool enabled = true;
  // Metric name prefix in OpenTelemetry's dotted form ("" = none); dots become underscores.
  // Default: traces.span.metrics.
  std::string metrics_namespace = "traces.span.metrics";
  // Unit of the duration histogram: "ms" (metric ..._duration_milliseconds) or "s"
  // (..._duration_seconds). Default: ms.
  std::string unit = "ms";
  // Upper bounds of the duration histogram's buckets, ascending; +Inf is implied.
  // Default: DefaultBuckets() (2ms ... 15s).
  std::vector<absl::Duration> buckets = DefaultBuckets();
  // Labels added to service_name, span_name, span_kind and status_code, at most kMaxDimensions,
  // keys shorter than 128 bytes. Default: none.
  std::vector<Dimension> dimensions;
  // Distinct label sets per metric (calls and duration share theirs). A span of a new label set
  // beyond it is counted in the overflow series {otel_metric_overflow="true"}.
  // Default: 10000 (the connector's aggregation_cardinality_limit; 0 there means no limit).
  int64_t max_series = 10000;
  // Count `exception` span events per service and exception.type. Default: true.
  bool exceptions = true;
};

// Problems of the options, each "<path>.<field>: <what>, got <value>"; empty when valid.
std::vector<std::string> ValidateOptions(const SpanMetricsOptions& options,
                                         const std::string& path);

// The Prometheus label name of an attribute key: characters outside [a-zA-Z0-9_] become '_', and
// a leading digit gets a "key_" prefix (as OpenTelemetry's Prometheus exporter writes them).
std::string LabelName(const std::string& key);

// What one request contributed, read from its spans before they are handed on: one compact key
// per span (its label values) with its duration. Reused across requests without reallocating.
struct Contribution {
  struct Entry {
    uint32_t key_offset = 0;
    uint32_t key_size = 0;
    double value = 0;  // duration in the histogram's unit
  };
  std::string keys;  // the keys of `calls` and `exceptions`, back to back
  std::vector<Entry> calls;
  std::vector<Entry> exceptions;  // value unused
  void Clear() {
    keys.clear();
    calls.clear();
    exceptions.clear();
  }
};

// The aggregated series. Read() takes no lock; Add() and the exposition take one mutex (once per
// request, not per span). Thread-safe.
class SpanMetrics final {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SpanMetrics>> Create(
      const SpanMetricsOptions& options);

  // Reads the label values and durations of every span of `traces` into `out` (cleared first).
  // Takes no lock. Spans whose bytes cannot be read are left out (and counted).
  void Read(const std::vector<TraceSpans>& traces, Contribution* out);
  // Adds a contribution to the series.
  void Add(const Contribution& contribution);

  // Appends the text exposition (Prometheus 0.0.4) of every series.
  void AppendExposition(std::string* out) const;

  // Label sets in use by calls/duration and by exceptions (the overflow series included).
  int64_t series() const;
  int64_t exception_series() const;
  // Spans counted in the overflow series, and exception events counted in theirs.
  uint64_t overflow_spans() const { return overflow_spans_.load(std::memory_order_relaxed); }
  uint64_t overflow_exceptions() const {
    return overflow_exceptions_.load(std::memory_order_relaxed);
  }
  // Spans left out because their bytes were not a readable Span.
  uint64_t unreadable_spans() const { return unreadable_spans_.load(std::memory_order_relaxed); }

  const SpanMetricsOptions& options() const { return options_; }

 private:
  explicit SpanMetrics(const SpanMetricsOptions& options);

  // A series' labels are written once, when it is created, and never change: the exposition
  // reads them outside the lock.
  struct CallSeries {
    std::string labels;  // exposition text: service_name="…",span_name="…",…
    uint64_t calls = 0;
    double sum = 0;
    std::vector<uint64_t> buckets;  // one per bound, then +Inf; not cumulative
  };
  struct ExceptionSeries {
    std::string labels;  // service_name="…",exception_type="…",status_code="…"
    uint64_t count = 0;
  };

  size_t Bucket(double value) const;
  CallSeries* CallSeriesFor(absl::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ExceptionSeries* ExceptionSeriesFor(absl::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SpanMetricsOptions options_;
  std::string calls_name_;                 // e.g. traces_span_metrics_calls_total
  std::string duration_name_;              // e.g. traces_span_metrics_duration_milliseconds
  std::vector<std::string> label_names_;   // service_name, span_name, span_kind, status_code, ...
  std::vector<double> bounds_;             // bucket bounds in the histogram's unit
  std::vector<std::string> bound_labels_;  // their `le` values
  double nanos_per_unit_ = 1e6;
  uint64_t dimension_key_bits_ = 0;  // AttributeKeyBit of every dimension's key
  // Bit d set in dims_by_length_[n]: dimension d's key is n bytes long.
  static constexpr size_t kMaxKeyLength = 128;
  uint32_t dims_by_length_[kMaxKeyLength] = {};
  uint64_t exception_key_bit_ = 0;  // AttributeKeyBit("exception.type")

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<CallSeries>> calls_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<CallSeries> call_overflow_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<ExceptionSeries>> exceptions_
      ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ExceptionSeries> exception_overflow_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> overflow_spans_{0};
  std::atomic<uint64_t> overflow_exceptions_{0};
  std::atomic<uint64_t> unreadable_spans_{0};
};

// The pipeline stage: reads every offered batch, hands it on, and counts it once `next` took it
// (a refused request is not counted: its client sends it again). Precheck is `next`'s. Neither
// pointer is owned; both must outlive this object. Thread-safe.
class SpanMetricsIntake final : public SpanIntake {
 public:
  SpanMetricsIntake(SpanMetrics* metrics, SpanIntake* next) : metrics_(metrics), next_(next) {}
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;
  absl::Status Precheck(int64_t span_count) override { return next_->Precheck(span_count); }

 private:
  SpanMetrics* const metrics_;
  SpanIntake* const next_;
};

}  // namespace tracekeep::spanmetrics

#endif  // TRACEKEEP_COLLECTOR_SPANMETRICS_SPAN_METRICS_H_
