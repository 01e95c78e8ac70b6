// Microbenchmarks of the receive path's parts: OTLP decode, split by trace, and the export
// encode. Requests come from bench/otlp_gen.h (3 services, 8-15 attributes per span, ~300 bytes
// per span); arguments are spans per request and spans per trace. Items are spans; bytes are the
// serialized request (for the encode benchmarks: the rebuilt request).
//
// Arena: a fresh heap-allocated request per call costs one malloc/free per span, attribute and
// value; parsing into a message on a google::protobuf::Arena replaces those with bump allocation
// and one bulk free. BM_ParseHeap vs. BM_ParseArena measures the difference: on the shared
// 2-core AMD EPYC bench machine the arena parse was 1.1-1.6x faster (two runs, all four shapes),
// which is why BM_ParseSplit and BM_BuildSerialize use an arena. A gRPC callback receiver gets the
// same effect with a grpc::MessageAllocator that creates requests on an arena.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/pipeline/otlp_convert.h"
#include "google/protobuf/arena.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::bench {
namespace {

constexpr uint64_t kSeed = 42;
// Arena blocks start at this size, so a whole request usually fits in a few blocks.
constexpr size_t kArenaStartBlock = 64 << 10;

// One serialized request per (spans per request, spans per trace), generated once.
const std::string& Request(int spans, int per_trace) {
  static auto* cache = new std::map<std::pair<int, int>, std::string>();
  auto [it, inserted] = cache->try_emplace({spans, per_trace});
  if (inserted) {
    RequestShape shape;
    shape.spans_per_request = spans;
    shape.spans_per_trace = per_trace;
    auto pool = RequestPool::Create(shape, /*min_requests=*/1, kSeed);
    if (!pool.ok()) {
      std::fprintf(stderr, "%s\n", std::string(pool.status().message()).c_str());
      std::abort();
    }
    it->second = (*pool)->entry(0);
  }
  return it->second;
}

google::protobuf::ArenaOptions ArenaOpts() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = kArenaStartBlock;
  options.max_block_size = 1 << 20;
  return options;
}

void Report(benchmark::State& state, int64_t spans, size_t bytes) {
  state.SetItemsProcessed(state.iterations() * spans);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["B/span"] = static_cast<double>(bytes) / static_cast<double>(spans);
}

void BM_ParseHeap(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    OtlpRequest request;  // fresh per call, as a receiver gets it
    if (!request.ParseFromString(bytes)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(request);
  }
  Report(state, spans, bytes.size());
}

void BM_ParseArena(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    google::protobuf::Arena arena(ArenaOpts());
    auto* request = google::protobuf::Arena::CreateMessage<OtlpRequest>(&arena);
    if (!request->ParseFromString(bytes)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(request);
  }
  Report(state, spans, bytes.size());
}

// What a receiver does per request: decode, then group the spans by trace.
void BM_ParseSplit(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    google::protobuf::Arena arena(ArenaOpts());
    auto* request = google::protobuf::Arena::CreateMessage<OtlpRequest>(&arena);
    if (!request->ParseFromString(bytes)) state.SkipWithError("parse failed");
    SplitResult split = SplitRequest(*request);
    if (split.accepted_spans != spans) state.SkipWithError("split lost spans");
    benchmark::DoNotOptimize(split);
  }
  Report(state, spans, bytes.size());
}

// SplitRequest alone, on an already decoded request.
void BM_Split(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  OtlpRequest request;
  if (!request.ParseFromString(bytes)) state.SkipWithError("parse failed");
  for (auto _ : state) {
    SplitResult split = SplitRequest(request);
    benchmark::DoNotOptimize(split);
  }
  Report(state, spans, bytes.size());
}

// What the exporter does per batch: rebuild one OTLP request from kept traces and serialize it.
// The kept set is every trace of one request, i.e. an export batch of the same size.
void BM_BuildSerialize(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const int per_trace = static_cast<int>(state.range(1));
  OtlpRequest request;
  if (!request.ParseFromString(Request(spans, per_trace))) state.SkipWithError("parse failed");
  SplitResult split = SplitRequest(request);
  KeptTraces kept;
  for (TraceSpans& t : split.traces) {
    KeptTrace& k = kept.emplace_back();
    k.trace_id = t.trace_id;
    k.policy = "bench";
    k.spans = std::move(t.spans);
  }
  std::string out;
  for (auto _ : state) {
    google::protobuf::Arena arena(ArenaOpts());
    auto* rebuilt = google::protobuf::Arena::CreateMessage<OtlpRequest>(&arena);
    BuildRequest(kept, rebuilt);
    rebuilt->SerializeToString(&out);
    benchmark::DoNotOptimize(out);
  }
  Report(state, spans, out.size());
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{100, 1000}, {5, 20}})->ArgNames({"spans", "per_trace"});
}

BENCHMARK(BM_ParseHeap)->Apply(Shapes);
BENCHMARK(BM_ParseArena)->Apply(Shapes);
BENCHMARK(BM_ParseSplit)->Apply(Shapes);

// What the protobuf receivers do: validate and split straight from the wire bytes, no message.
void BM_SplitWireRequest(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    absl::StatusOr<SplitResult> split = SplitWireRequest(bytes);
    if (!split.ok() || split->accepted_spans != spans) state.SkipWithError("split lost spans");
    benchmark::DoNotOptimize(split);
  }
  Report(state, spans, bytes.size());
}
BENCHMARK(BM_SplitWireRequest)->Apply(Shapes);

// The same with auth.client_attribute on (README, Security): every resource stamped with the
// client's name, spans looked at when their key filter may hold the attribute (none here do).
void BM_SplitWireRequestClientAttribute(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    absl::StatusOr<SplitResult> split =
        SplitWireRequest(bytes, {}, ClientAttribute{"tracekeep.client", "shop-api"});
    if (!split.ok() || split->accepted_spans != spans) state.SkipWithError("split lost spans");
    benchmark::DoNotOptimize(split);
  }
  Report(state, spans, bytes.size());
}
BENCHMARK(BM_SplitWireRequestClientAttribute)->Apply(Shapes);
BENCHMARK(BM_Split)->Apply(Shapes);
BENCHMARK(BM_BuildSerialize)->Apply(Shapes);

// What the Kafka gateway and the order router do per trace: one record per trace, before with
// BuildRequest + SerializeToString (heap messages, as they did), now written from the bytes.
std::vector<std::vector<const SpanRecord*>> RecordsOf(const SplitResult& split) {
  std::vector<std::vector<const SpanRecord*>> out;
  for (const TraceSpans& t : split.traces) {
    std::vector<const SpanRecord*>& spans = out.emplace_back();
    for (const SpanRecord& s : t.spans) spans.push_back(&s);
  }
  return out;
}
void BM_KafkaRecordsBuildSerialize(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  absl::StatusOr<SplitResult> split = SplitWireRequest(bytes);
  if (!split.ok()) state.SkipWithError("split failed");
  const auto records = RecordsOf(*split);
  size_t out_bytes = 0;
  for (auto _ : state) {
    out_bytes = 0;
    for (const auto& r : records) {
      OtlpRequest request;
      BuildRequest(r, &request);
      std::string value = request.SerializeAsString();
      out_bytes += value.size();
      benchmark::DoNotOptimize(value);
    }
  }
  Report(state, spans, out_bytes);
}
void BM_KafkaRecordsSerializeWire(benchmark::State& state) {
  const int spans = static_cast<int>(state.range(0));
  const std::string& bytes = Request(spans, static_cast<int>(state.range(1)));
  absl::StatusOr<SplitResult> split = SplitWireRequest(bytes);
  if (!split.ok()) state.SkipWithError("split failed");
  const auto records = RecordsOf(*split);
  size_t out_bytes = 0;
  for (auto _ : state) {
    out_bytes = 0;
    for (const auto& r : records) {
      std::string value = SerializeWireRequest(r);
      out_bytes += value.size();
      benchmark::DoNotOptimize(value);
    }
  }
  Report(state, spans, out_bytes);
}
BENCHMARK(BM_KafkaRecordsBuildSerialize)->Apply(Shapes);
BENCHMARK(BM_KafkaRecordsSerializeWire)->Apply(Shapes);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
