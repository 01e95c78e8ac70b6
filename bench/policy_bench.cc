// Deciding: the cost of evaluating a policy set per trace, by number of policies and spans per
// trace; the wire scan policies use vs a full protobuf parse of a span; and the memory a pending
// span costs.
#include <malloc.h>

#include <memory>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/sampling/policy.h"
#include "collector/sampling/span_scan.h"
#include "collector/sampling/trace_buffer.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracekeep::bench {
namespace {

using sampling::PolicyConfig;

// Pending traces of `spans_per_trace` realistic spans (~300 B each, three services).
std::vector<sampling::PendingTrace> PendingPool(int spans_per_trace, int traces) {
  RequestShape shape;
  shape.spans_per_trace = spans_per_trace;
  shape.spans_per_request = std::max(500, spans_per_trace);
  const int requests =
      (traces * spans_per_trace + shape.spans_per_request - 1) / shape.spans_per_request;
  auto pool = RequestPool::Create(shape, requests, /*seed=*/7);
  sampling::TraceBufferOptions o;
  o.max_traces = 1 << 22;
  sampling::TraceBuffer buffer(o);
  std::vector<sampling::PendingTrace> out;
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  for (int n = 0; n < requests; ++n) {
    OtlpRequest request;
    request.ParseFromString((*pool)->Render(n));
    for (TraceSpans& t : SplitRequest(request).traces) buffer.Add(std::move(t), now, &out);
  }
  buffer.TakeAll(&out);
  return out;
}

PolicyConfig Policy(int i) {
  PolicyConfig c;
  c.name = "p" + std::to_string(i);
  switch (i % 8) {
    case 0:
      c.type = "status_code";
      c.status_codes = {"ERROR"};
      break;
    case 1:
      c.type = "latency";
      c.latency.threshold_ms = 5000;
      break;
    case 2:
      c.type = "string_attribute";
      c.string_attribute.key = "http.method";
      c.string_attribute.values = {"DELETE", "PATCH"};
      break;
    case 3:
      c.type = "numeric_attribute";
      c.numeric_attribute.key = "http.status_code";
      c.numeric_attribute.min_value = 500;
      break;
    case 4:
      c.type = "probabilistic";
      c.sampling_percentage = 1;
      break;
    case 5:
      c.type = "string_attribute";
      c.string_attribute.key = "service.name";  // a resource attribute
      c.string_attribute.values = {"billing-api"};
      break;
    case 6:
      c.type = "span_count";
      c.span_count.min_spans = 1000;
      break;
    case 7:
      c.type = "string_attribute";
      c.string_attribute.key = "db.system";
      c.string_attribute.values = {"mongo.*"};
      c.string_attribute.enabled_regex_matching = true;
      break;
  }
  return c;
}

// One decision per trace with `policies` policies (a mix of the types above; from 3 on, at least
// one reads attributes, so the spans are scanned), a fresh TraceView each time as in the shard.
void BM_Decide(benchmark::State& state) {
  const int n_policies = static_cast<int>(state.range(0));
  const int spans = static_cast<int>(state.range(1));
  const auto traces = PendingPool(spans, 2000 / spans + 16);
  std::vector<PolicyConfig> configs;
  for (int i = 0; i < n_policies; ++i) configs.push_back(Policy(i));
  auto set = sampling::PolicySet::Create(configs);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  size_t i = 0;
  for (auto _ : state) {
    sampling::TraceView view(traces[i++ % traces.size()]);
    benchmark::DoNotOptimize((*set)->Evaluate(view, now));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ns_per_span"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * spans,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Decide)
    ->ArgNames({"policies", "spans"})
    ->ArgsProduct({{1, 2, 4, 8, 16}, {5, 20, 100}});

// The lazy decode policies pay: a wire-format scan of one span's name, status, trace_state and
// attributes (views, no copies)...
void BM_ScanSpan(benchmark::State& state) {
  const auto traces = PendingPool(10, 50);
  std::vector<std::string> spans;
  for (const auto& t : traces) {
    for (const auto& s : t.spans) spans.push_back(s.span);
  }
  size_t i = 0;
  sampling::SpanFields f;
  std::vector<sampling::Attribute> attrs;
  for (auto _ : state) {
    attrs.clear();
    benchmark::DoNotOptimize(sampling::ScanSpan(spans[i++ % spans.size()], &f, &attrs));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScanSpan);

// ...vs parsing the whole Span message with protobuf (reusing the message, as a decoder would).
void BM_ParseSpan(benchmark::State& state) {
  const auto traces = PendingPool(10, 50);
  std::vector<std::string> spans;
  for (const auto& t : traces) {
    for (const auto& s : t.spans) spans.push_back(s.span);
  }
  size_t i = 0;
  opentelemetry::proto::trace::v1::Span span;
  for (auto _ : state) {
    benchmark::DoNotOptimize(span.ParseFromString(spans[i++ % spans.size()]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseSpan);

// Heap bytes a pending span costs (malloc's own accounting: span record, serialized span,
// shared resource/scope, the trace's map entry and timer), next to its serialized size.
void BM_PendingMemoryPerSpan(benchmark::State& state) {
  RequestShape shape;
  shape.spans_per_trace = static_cast<int>(state.range(0));
  constexpr int kRequests = 200;
  auto pool = RequestPool::Create(shape, kRequests, /*seed=*/11);
  std::vector<OtlpRequest> requests(kRequests);
  for (int n = 0; n < kRequests; ++n) requests[n].ParseFromString((*pool)->Render(n));
  double per_span = 0, span_bytes = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const size_t before = mallinfo2().uordblks;
    sampling::TraceBufferOptions o;
    o.max_traces = 1 << 22;
    auto buffer = std::make_unique<sampling::TraceBuffer>(o);
    std::vector<sampling::PendingTrace> none;
    const absl::Time now = absl::FromUnixSeconds(1700000000);
    for (const auto& r : requests) {
      for (TraceSpans& t : SplitRequest(r).traces) buffer->Add(std::move(t), now, &none);
    }
    const size_t after = mallinfo2().uordblks;
    const double spans = static_cast<double>(buffer->span_count());
    per_span = static_cast<double>(after - before) / spans;
    span_bytes = static_cast<double>(buffer->span_bytes()) / spans;
    benchmark::DoNotOptimize(buffer.get());
  }
  state.counters["heap_bytes_per_span"] = per_span;
  state.counters["serialized_bytes_per_span"] = span_bytes;
}
BENCHMARK(BM_PendingMemoryPerSpan)->Arg(10)->Arg(50)->Iterations(1);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
