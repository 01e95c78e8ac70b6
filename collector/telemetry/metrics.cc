#include "collector/telemetry/metrics.h"

#include <limits>
#include <sstream>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace tracekeep::telemetry {

class MetricsRegistry::CallbackCollectable final : public prometheus::Collectable {
 public:
  void Add(const std::string& name, const std::string& help, prometheus::MetricType type,
           Labels labels, ValueFn value, HistogramFn histogram = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, families_.size()).first;
      families_.push_back(Family{name, help, type, {}});
    }
    families_[it->second].series.push_back(
        Series{std::move(labels), std::move(value), std::move(histogram)});
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<prometheus::MetricFamily> out;
    out.reserve(families_.size());
    for (const Family& f : families_) {
      prometheus::MetricFamily& mf = out.emplace_back();
      mf.name = f.name;
      mf.help = f.help;
      mf.type = f.type;
      for (const Series& s : f.series) {
        prometheus::ClientMetric& m = mf.metric.emplace_back();
        for (const auto& [k, v] : s.labels) m.label.push_back({k, v});
        if (f.type == prometheus::MetricType::Histogram) {
          const HistogramValue h = s.histogram();
          uint64_t cumulative = 0;
          for (size_t i = 0; i < h.counts.size(); ++i) {
            cumulative += h.counts[i];
            m.histogram.bucket.push_back(
                {cumulative,
                 i < h.bounds.size() ? h.bounds[i] : std::numeric_limits<double>::infinity()});
          }
          m.histogram.sample_count = cumulative;
          m.histogram.sample_sum = h.sum;
        } else if (f.type == prometheus::MetricType::Counter) {
          m.counter.value = s.value();
        } else {
          m.gauge.value = s.value();
        }
      }
    }
    return out;
  }

 private:
  struct Series {
    Labels labels;
    ValueFn value;
    HistogramFn histogram;
  };
  struct Family {
    std::string name;
    std::string help;
    prometheus::MetricType type;
    std::vector<Series> series;
  };
  mutable std::mutex mu_;
  std::vector<Family> families_;
  std::map<std::string, size_t> index_;
};

MetricsRegistry::MetricsRegistry()
    : callbacks_(std::make_shared<CallbackCollectable>()),
      registry_(std::make_shared<prometheus::Registry>()) {}

MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::AddCounter(const std::string& name, const std::string& help, Labels labels,
                                 ValueFn value) {
  callbacks_->Add(name, help, prometheus::MetricType::Counter, std::move(labels), std::move(value));
}

void MetricsRegistry::AddGauge(const std::string& name, const std::string& help, Labels labels,
                               ValueFn value) {
  callbacks_->Add(name, help, prometheus::MetricType::Gauge, std::move(labels), std::move(value));
}

void MetricsRegistry::AddHistogram(const std::string& name, const std::string& help, Labels labels,
                                   HistogramFn value) {
  callbacks_->Add(name, help, prometheus::MetricType::Histogram, std::move(labels), nullptr,
                  std::move(value));
}

void MetricsRegistry::AddExposition(ExpositionFn fn) {
  std::lock_guard<std::mutex> lock(expositions_mu_);
  expositions_.push_back(std::move(fn));
}

prometheus::Registry& MetricsRegistry::registry() { return *registry_; }

std::string MetricsRegistry::Serialize() const {
  std::vector<prometheus::MetricFamily> families = callbacks_->Collect();
  for (auto& f : registry_->Collect()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  std::string text = out.str();
  std::lock_guard<std::mutex> lock(expositions_mu_);
  for (const ExpositionFn& fn : expositions_) fn(&text);
  return text;
}

}  // namespace tracekeep::telemetry
