// The intake journal: what an acknowledged request costs, and how fast a restart replays it.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/common/clock.h"
#include "collector/common/ids.h"
#include "collector/intake/journaled_intake.h"
#include "collector/pipeline/otlp_convert.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "storage/journal.h"

namespace tracekeep::bench {
namespace {

std::vector<std::vector<TraceSpans>> SplitPool(int requests) {
  RequestShape shape;
  shape.spans_per_request = 500;
  shape.spans_per_trace = 10;
  auto pool = RequestPool::Create(shape, requests, /*seed=*/7);
  std::vector<std::vector<TraceSpans>> out;
  for (int n = 0; n < requests; ++n) {
    OtlpRequest request;
    request.ParseFromString((*pool)->Render(n));
    out.push_back(SplitRequest(request).traces);
  }
  return out;
}

std::string TempDir() {
  char tmpl[] = "/tmp/tracekeep-journal-bench-XXXXXX";
  return mkdtemp(tmpl);
}

class NullConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&&) override { return absl::OkStatus(); }
};

// Append of one 500-span request (encode + RocksDB write), sync off / on.
void BM_JournalAppend(benchmark::State& state) {
  const auto pool = SplitPool(16);
  auto journal = storage::Journal::Open({TempDir() + "/j", state.range(0) != 0});
  absl::Time t = absl::FromUnixSeconds(1700000000);
  int64_t spans = 0;
  size_t i = 0;
  for (auto _ : state) {
    const auto& batch = pool[i++ % pool.size()];
    auto key = (*journal)->Append(batch, t);
    benchmark::DoNotOptimize(key);
    for (const TraceSpans& ts : batch) spans += static_cast<int64_t>(ts.spans.size());
    t += absl::Milliseconds(1);
  }
  state.SetItemsProcessed(spans);
}
BENCHMARK(BM_JournalAppend)->ArgName("sync")->Arg(0)->Arg(1)->UseRealTime();

// Encoding one 500-span request's record (what Append does before its write), into a new
// string each time as Append does: the CPU part of an append, apart from the kernel's copy.
void BM_EncodeJournalRecord(benchmark::State& state) {
  const auto pool = SplitPool(16);
  int64_t spans = 0;
  size_t i = 0;
  for (auto _ : state) {
    const auto& batch = pool[i++ % pool.size()];
    std::string record(25, '\0');  // the record header Append writes first
    std::vector<uint64_t> span_offsets;
    std::vector<uint32_t> trace_offsets;
    uint32_t origins_end = 0;
    storage::EncodeJournalRecord(batch, &record, &span_offsets, &trace_offsets, &origins_end);
    benchmark::DoNotOptimize(record.data());
    for (const TraceSpans& ts : batch) spans += static_cast<int64_t>(ts.spans.size());
  }
  state.SetItemsProcessed(spans);
}
BENCHMARK(BM_EncodeJournalRecord);

// Recovery: replay a journal of `range(0)` spans into a sampler (what start-up does after a
// crash), decoding every record and buffering every span.
void BM_JournalRecover(benchmark::State& state) {
  const auto pool = SplitPool(16);
  const std::string path = TempDir() + "/j";
  int64_t total = 0;
  {
    auto journal = storage::Journal::Open({path, false});
    absl::Time t = absl::FromUnixSeconds(1700000000);
    for (size_t i = 0; total < state.range(0); ++i) {
      // Every batch brings new traces (as in production, where a trace's spans arrive within
      // seconds), so the replay builds as many pending traces as it would after a crash.
      std::vector<TraceSpans> batch = pool[i % pool.size()];
      for (TraceSpans& ts : batch) {
        for (int b = 0; b < 4; ++b) ts.trace_id[b] = static_cast<char>(i >> (8 * b));
        ts.hash = TraceIdHash(ts.trace_id);
        total += ts.spans.size();
      }
      (void)(*journal)->Append(batch, t);
      t += absl::Milliseconds(1);
    }
  }
  for (auto _ : state) {
    FakeClock clock;
    NullConsumer consumer;
    sampling::SamplerOptions options;
    options.num_shards = 2;
    options.max_pending_traces = 1 << 22;
    options.policies = sampling::DefaultPolicies();
    auto sampler = sampling::Sampler::Create(options, &consumer, &clock);
    {
      auto journal = storage::Journal::Open({path, false});
      intake::JournaledIntake intake({}, journal->get(), sampler->get(), &clock);
      auto replayed = intake.Recover();
      (*sampler)->PollForTesting();  // every replayed span is buffered in its shard
      benchmark::DoNotOptimize(replayed);
    }
    state.PauseTiming();
    sampler->reset();  // decides everything: not part of recovery
    state.ResumeTiming();
  }
  state.SetItemsProcessed(total * state.iterations());
}
BENCHMARK(BM_JournalRecover)
    ->ArgName("spans")
    ->Arg(200000)
    ->Arg(2000000)
    ->Arg(10000000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
