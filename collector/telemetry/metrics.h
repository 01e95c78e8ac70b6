// Prometheus exposition of the daemon's counters. Components keep plain atomic counters; this
// registry reads them at scrape time through callbacks, so no component depends on prometheus-cpp.
#ifndef TRACEKEEP_COLLECTOR_TELEMETRY_METRICS_H_
#define TRACEKEEP_COLLECTOR_TELEMETRY_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace tracekeep::telemetry {

using Labels = std::map<std::string, std::string>;
using ValueFn = std::function<double()>;

// A histogram read at scrape time: bucket upper bounds (ascending, +Inf implied) and the count of
// each bucket (not cumulative; one more than bounds, the last for +Inf), plus the sum.
struct HistogramValue {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
};
using HistogramFn = std::function<HistogramValue()>;
// Appends whole families in the text exposition format (version 0.0.4), # HELP and # TYPE lines
// included: for families whose series come and go, too many to register one by one.
using ExpositionFn = std::function<void(std::string* out)>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();

  // Registers one series. Series of the same `name` form one family; the first registration's
  // `help` is used. `name` must follow Prometheus rules (counters end in _total).
  void AddCounter(const std::string& name, const std::string& help, Labels labels, ValueFn value);
  void AddGauge(const std::string& name, const std::string& help, Labels labels, ValueFn value);

  void AddHistogram(const std::string& name, const std::string& help, Labels labels,
                    HistogramFn value);

  // Registers families written by `fn` at every scrape, after the others. Their names must not
  // be registered otherwise.
  void AddExposition(ExpositionFn fn);

  // Registry for push-style metrics (histograms) owned by components.
  prometheus::Registry& registry();

  // The text exposition format (version 0.0.4) of every metric.
  std::string Serialize() const;

 private:
  class CallbackCollectable;
  std::shared_ptr<CallbackCollectable> callbacks_;
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex expositions_mu_;
  std::vector<ExpositionFn> expositions_;
};

}  // namespace tracekeep::telemetry

#endif  // TRACEKEEP_COLLECTOR_TELEMETRY_METRICS_H_
