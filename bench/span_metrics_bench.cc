// Cost per span of the span metrics stage (collector/spanmetrics/): reading the labels and the
// duration of every span of a request (Read) and adding them to the series (Add), as
// SpanMetricsIntake does for every accepted request. Requests come from bench/otlp_gen.h (3
// services, 8-15 attributes and some events per span, ~300 bytes per span), split once as the
// protobuf receivers split them. Items are spans.
//
// BM_SplitWireRequest (the receivers' own decode of the same requests) runs in the same binary so
// that the stage's cost can be stated as a ratio within one run. The budget of the stage is 5 % of
// the whole daemon's CPU per span (~2.7 us/span measured with bench/load_bench.sh), ~135 ns.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/spanmetrics/span_metrics.h"

namespace tracekeep::bench {
namespace {

constexpr uint64_t kSeed = 42;
constexpr int kSpansPerRequest = 500;

const std::string& Request() {
  static const std::string* request = [] {
    RequestShape shape;
    shape.spans_per_request = kSpansPerRequest;
    auto pool = RequestPool::Create(shape, /*min_requests=*/1, kSeed);
    if (!pool.ok()) {
      std::fprintf(stderr, "%s\n", std::string(pool.status().message()).c_str());
      std::abort();
    }
    return new std::string((*pool)->entry(0));
  }();
  return *request;
}

std::vector<TraceSpans> Traces() {
  absl::StatusOr<SplitResult> split = SplitWireRequest(Request());
  if (!split.ok()) std::abort();
  return std::move(split->traces);
}

// Arg: 0 = the default labels only, 1 = plus two dimensions present on some spans
// (http.method on the span, deployment.environment on the resource) and one with a default.
spanmetrics::SpanMetricsOptions Options(int64_t dimensions) {
  spanmetrics::SpanMetricsOptions o;
  if (dimensions > 0) {
    o.dimensions = {{"http.method", std::nullopt},
                    {"deployment.environment", std::nullopt},
                    {"db.system", "none"}};
  }
  return o;
}

void BM_SpanMetricsReadAdd(benchmark::State& state) {
  auto metrics = spanmetrics::SpanMetrics::Create(Options(state.range(0)));
  if (!metrics.ok()) std::abort();
  const std::vector<TraceSpans> traces = Traces();
  spanmetrics::Contribution contribution;
  for (auto _ : state) {
    (*metrics)->Read(traces, &contribution);
    (*metrics)->Add(contribution);
  }
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
  state.counters["series"] = static_cast<double>((*metrics)->series());
}
BENCHMARK(BM_SpanMetricsReadAdd)->Arg(0)->Arg(1)->ArgName("dimensions");

// Read alone (no lock): what the stage costs a receiver thread before handing the batch on.
void BM_SpanMetricsRead(benchmark::State& state) {
  auto metrics = spanmetrics::SpanMetrics::Create(Options(state.range(0)));
  if (!metrics.ok()) std::abort();
  const std::vector<TraceSpans> traces = Traces();
  spanmetrics::Contribution contribution;
  for (auto _ : state) {
    (*metrics)->Read(traces, &contribution);
    benchmark::DoNotOptimize(contribution);
  }
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
}
BENCHMARK(BM_SpanMetricsRead)->Arg(0)->Arg(1)->ArgName("dimensions");

// The receivers' validate-and-split of the same request, for the ratio.
void BM_SplitWireRequest(benchmark::State& state) {
  const std::string& bytes = Request();
  for (auto _ : state) {
    absl::StatusOr<SplitResult> split = SplitWireRequest(bytes);
    benchmark::DoNotOptimize(split);
  }
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
}
BENCHMARK(BM_SplitWireRequest);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
