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
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

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

// The split followed by the stage, as a receiver thread runs them: the span bytes the stage reads
// were just written by the split (in cache). Minus BM_SplitWireRequest: the stage's cost in place.
void BM_SplitThenSpanMetrics(benchmark::State& state) {
  auto metrics = spanmetrics::SpanMetrics::Create(Options(state.range(0)));
  if (!metrics.ok()) std::abort();
  const std::string& bytes = Request();
  spanmetrics::Contribution contribution;
  for (auto _ : state) {
    absl::StatusOr<SplitResult> split = SplitWireRequest(bytes);
    (*metrics)->Read(split->traces, &contribution);
    (*metrics)->Add(contribution);
    benchmark::DoNotOptimize(split);
  }
  state.SetItemsProcessed(state.iterations() * kSpansPerRequest);
}
BENCHMARK(BM_SplitThenSpanMetrics)->Arg(0)->Arg(1)->ArgName("dimensions");

// A scrape: the text exposition of `range(0)` label sets (span names), 17 buckets each. The
// series' lock is held meanwhile, so this is how long receivers may wait once per scrape.
void BM_Exposition(benchmark::State& state) {
  const int series = static_cast<int>(state.range(0));
  spanmetrics::SpanMetricsOptions o;
  o.max_series = series;
  auto metrics = spanmetrics::SpanMetrics::Create(o);
  if (!metrics.ok()) std::abort();
  OtlpRequest request;
  auto* rs = request.add_resource_spans();
  auto* kv = rs->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("shop-api");
  auto* ss = rs->add_scope_spans();
  for (int i = 0; i < series; ++i) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(15, '\x01') + static_cast<char>(1 + i % 200));
    span->set_span_id(std::string(4, '\x02') + std::string(reinterpret_cast<char*>(&i), 4));
    span->set_name("GET /api/v1/orders/" + std::to_string(i));
    span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
    span->set_start_time_unix_nano(1000);
    span->set_end_time_unix_nano(1000 + 3000000ull * static_cast<uint64_t>(i % 7));
  }
  absl::StatusOr<SplitResult> split = SplitWireRequest(request.SerializeAsString());
  if (!split.ok()) std::abort();
  spanmetrics::Contribution contribution;
  (*metrics)->Read(split->traces, &contribution);
  (*metrics)->Add(contribution);
  if ((*metrics)->series() != series) state.SkipWithError("series missing");
  std::string text;
  for (auto _ : state) {
    text.clear();
    (*metrics)->AppendExposition(&text);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations() * series);
  state.counters["bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_Exposition)->Arg(1000)->Arg(10000)->ArgName("series")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
