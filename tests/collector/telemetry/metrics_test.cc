#include "collector/telemetry/metrics.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::telemetry {
namespace {

using ::testing::HasSubstr;

TEST(MetricsRegistryTest, ReadsCallbacksAtScrapeTime) {
  MetricsRegistry metrics;
  std::atomic<int> accepted{3};
  metrics.AddCounter("tracekeep_spans_accepted_total", "Spans accepted.", {{"transport", "grpc"}},
                     [&] { return accepted.load(); });
  metrics.AddCounter("tracekeep_spans_accepted_total", "ignored", {{"transport", "http"}},
                     [] { return 7; });
  metrics.AddGauge("tracekeep_sampler_traces_pending", "Pending traces.", {}, [] { return 42; });
  std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("# HELP tracekeep_spans_accepted_total Spans accepted."));
  EXPECT_THAT(text, HasSubstr("# TYPE tracekeep_spans_accepted_total counter"));
  EXPECT_THAT(text, HasSubstr("tracekeep_spans_accepted_total{transport=\"grpc\"} 3"));
  EXPECT_THAT(text, HasSubstr("tracekeep_spans_accepted_total{transport=\"http\"} 7"));
  EXPECT_THAT(text, HasSubstr("# TYPE tracekeep_sampler_traces_pending gauge"));
  EXPECT_THAT(text, HasSubstr("tracekeep_sampler_traces_pending 42"));
  accepted = 10;
  EXPECT_THAT(metrics.Serialize(),
              HasSubstr("tracekeep_spans_accepted_total{transport=\"grpc\"} 10"));
}

TEST(MetricsRegistryTest, HistogramsAreExposedWithCumulativeBuckets) {
  MetricsRegistry metrics;
  std::atomic<uint64_t> late{1};
  metrics.AddHistogram("tracekeep_sampler_late_span_age_seconds", "Late span age.", {}, [&] {
    HistogramValue v;
    v.bounds = {1, 5};
    v.counts = {late.load(), 2, 3};  // per bucket, +Inf last
    v.sum = 42.5;
    return v;
  });
  std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE tracekeep_sampler_late_span_age_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("tracekeep_sampler_late_span_age_seconds_bucket{le=\"1\"} 1"));
  EXPECT_THAT(text, HasSubstr("tracekeep_sampler_late_span_age_seconds_bucket{le=\"5\"} 3"));
  EXPECT_THAT(text, HasSubstr("tracekeep_sampler_late_span_age_seconds_bucket{le=\"+Inf\"} 6"));
  EXPECT_THAT(text, HasSubstr("tracekeep_sampler_late_span_age_seconds_count 6"));
  EXPECT_THAT(text, HasSubstr("tracekeep_sampler_late_span_age_seconds_sum 42.5"));
  late = 4;
  EXPECT_THAT(metrics.Serialize(), HasSubstr("tracekeep_sampler_late_span_age_seconds_count 9"));
}

TEST(MetricsRegistryTest, ExpositionsAreAppendedAtScrapeTime) {
  MetricsRegistry metrics;
  metrics.AddGauge("tracekeep_up", "Up.", {}, [] { return 1; });
  int calls = 0;
  metrics.AddExposition([&](std::string* out) {
    ++calls;
    out->append("# TYPE x_total counter\nx_total{a=\"b\"} ");
    out->append(std::to_string(calls));
    out->push_back('\n');
  });
  EXPECT_THAT(metrics.Serialize(),
              HasSubstr("tracekeep_up 1\n# TYPE x_total counter\nx_total{a=\"b\"} 1\n"));
  EXPECT_THAT(metrics.Serialize(), HasSubstr("x_total{a=\"b\"} 2\n"));
}

}  // namespace
}  // namespace tracekeep::telemetry
