// Buffering and deciding: what a shard does with spans after the receiver split them by trace.
#include <malloc.h>

#include <memory>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/common/clock.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/sampling/sampler.h"
#include "collector/sampling/trace_buffer.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::bench {
namespace {

// Split requests of the shape given by the benchmark arguments, ready to be buffered.
std::vector<std::vector<TraceSpans>> SplitPool(int spans_per_request, int spans_per_trace,
                                               int requests) {
  RequestShape shape;
  shape.spans_per_request = spans_per_request;
  shape.spans_per_trace = spans_per_trace;
  auto pool = RequestPool::Create(shape, requests, /*seed=*/42);
  std::vector<std::vector<TraceSpans>> out;
  for (int n = 0; n < requests; ++n) {
    OtlpRequest request;
    request.ParseFromString((*pool)->Render(n));
    out.push_back(SplitRequest(request).traces);
  }
  return out;
}

class NullConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    benchmark::DoNotOptimize(traces.data());
    return absl::OkStatus();
  }
};

// TraceBuffer::Add, then TakeExpired of everything: the per-span cost of a shard's own work.
void BM_BufferAddExpire(benchmark::State& state) {
  const auto pool =
      SplitPool(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 16);
  sampling::TraceBuffer buffer({absl::Seconds(30), 1 << 20});
  absl::Time now = absl::FromUnixSeconds(1700000000);
  std::vector<sampling::PendingTrace> out;
  int64_t spans = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::vector<TraceSpans>> batch = pool;  // copies are not what we measure
    state.ResumeTiming();
    for (auto& traces : batch) {
      for (TraceSpans& t : traces) {
        spans += static_cast<int64_t>(t.spans.size());
        buffer.Add(std::move(t), now, &out);
      }
    }
    now += absl::Seconds(31);
    buffer.TakeExpired(now, &out);
    out.clear();
  }
  state.SetItemsProcessed(spans);
}
BENCHMARK(BM_BufferAddExpire)->ArgNames({"spans", "per_trace"})->Args({500, 10})->Args({500, 50});

// Heap per pending span as a shard keeps it with the journal on (each span's bytes released to
// the journal): range(0) = 0 keeps each span's record, 1 leaves the records in the journal (the
// trace waits as its summary: no policy reads single spans). 100,000 spans in 10-span traces.
void BM_PendingHeapPerSpan(benchmark::State& state) {
  const bool leave_in_journal = state.range(0) != 0;
  const auto pool = SplitPool(500, 10, 200);
  for (auto _ : state) {
    state.PauseTiming();
    const size_t before = mallinfo2().uordblks;  // what the buffer keeps of the copy is counted
    std::vector<std::vector<TraceSpans>> batch = pool;
    uint64_t offset = 1;
    for (auto& traces : batch) {
      for (TraceSpans& t : traces) {
        t.journal_ref = JournalRef{1, offset, 100};
        for (SpanRecord& r : t.spans) {
          r.journal_segment = 1;
          r.journal_offset = offset++;
          r.ReleaseJournaledBytes();
        }
      }
    }
    sampling::TraceBuffer buffer({absl::Seconds(30), 1 << 20});
    std::vector<sampling::PendingTrace> out;
    state.ResumeTiming();
    int64_t spans = 0;
    for (auto& traces : batch) {
      for (TraceSpans& t : traces) {
        spans += static_cast<int64_t>(t.spans.size());
        buffer.Add(std::move(t), absl::FromUnixSeconds(1700000000), &out, leave_in_journal);
      }
      traces.clear();
    }
    state.PauseTiming();
    batch.clear();
    const size_t after = mallinfo2().uordblks;
    state.counters["heap_B/pending_span"] = static_cast<double>(after - before) / spans;
    state.ResumeTiming();
  }
}
BENCHMARK(BM_PendingHeapPerSpan)
    ->ArgName("leave_in_journal")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Sampler::Offer + shard poll + policy decision with the default policies, one shard, no threads.
void BM_SamplerOfferDecide(benchmark::State& state) {
  const auto pool =
      SplitPool(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 16);
  FakeClock clock;
  NullConsumer consumer;
  sampling::SamplerOptions options;
  options.num_shards = 1;
  options.policies = sampling::DefaultPolicies();
  options.max_queued_spans = 1 << 30;
  options.max_pending_traces = 1 << 20;
  auto sampler = sampling::Sampler::Create(options, &consumer, &clock);
  int64_t spans = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::vector<TraceSpans>> batch = pool;
    state.ResumeTiming();
    for (auto& traces : batch) {
      int64_t n = 0;
      for (const TraceSpans& t : traces) n += static_cast<int64_t>(t.spans.size());
      spans += n;
      (void)(*sampler)->Offer(std::move(traces), n);
    }
    (*sampler)->PollForTesting();
    clock.Advance(absl::Seconds(31));
    (*sampler)->PollForTesting();
  }
  state.SetItemsProcessed(spans);
}
BENCHMARK(BM_SamplerOfferDecide)->ArgNames({"spans", "per_trace"})->Args({500, 10});

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
