// The durable export queue: what it costs to write kept batches into RocksDB (vs the in-memory
// queue store), and how fast a queue left by an outage drains to a local OTLP/gRPC sink.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/common/clock.h"
#include "collector/exporter/otlp_exporter.h"
#include "collector/exporter/queue_store.h"
#include "collector/pipeline/otlp_convert.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::bench {
namespace {

namespace otlp = ::opentelemetry::proto::collector::trace::v1;

// The spans of `requests` generated requests of `spans_per_request` spans, one batch each.
std::vector<std::vector<SpanRecord>> Batches(int spans_per_request, int requests) {
  RequestShape shape;
  shape.spans_per_request = spans_per_request;
  auto pool = RequestPool::Create(shape, requests, /*seed=*/7);
  std::vector<std::vector<SpanRecord>> out;
  for (int n = 0; n < requests; ++n) {
    OtlpRequest request;
    request.ParseFromString((*pool)->Render(n));
    std::vector<SpanRecord>& batch = out.emplace_back();
    for (TraceSpans& t : SplitRequest(request).traces) {
      for (SpanRecord& s : t.spans) batch.push_back(std::move(s));
    }
  }
  return out;
}

std::string TempDb() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tk_qbench_XXXXXX").string();
  return std::string(mkdtemp(pattern.data())) + "/db";
}

std::unique_ptr<storage::RocksDbSpanStore> OpenStore(const std::string& path) {
  storage::RocksDbOptions options;
  options.path = path;
  auto store = storage::RocksDbSpanStore::Create(options);
  if (!store.ok()) return nullptr;
  return std::move(*store);
}

// Append + Remove of one batch (what every kept batch costs the queue when the backend keeps up).
// Arg 0: spans per batch; arg 1: 0 = MemoryQueueStore, 1 = RocksDB (sync: false).
void BM_QueueAppendRemove(benchmark::State& state) {
  const auto batches = Batches(static_cast<int>(state.range(0)), 16);
  const std::string path = TempDb();
  std::unique_ptr<storage::RocksDbSpanStore> store;
  std::unique_ptr<exporter::QueueStore> queue;
  if (state.range(1) == 1) {
    store = OpenStore(path);
    queue = store->OpenExportQueue();
  } else {
    queue = std::make_unique<exporter::MemoryQueueStore>();
  }
  uint64_t seq = 1;
  int64_t spans = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const auto& batch = batches[seq % batches.size()];
    auto written = queue->Append(seq, absl::Now(), batch);
    if (!written.ok()) state.SkipWithError(std::string(written.status().message()).c_str());
    bytes += written.ok() ? *written : 0;
    if (!queue->Remove(seq).ok()) state.SkipWithError("remove");
    ++seq;
    spans += static_cast<int64_t>(batch.size());
  }
  state.SetItemsProcessed(spans);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetLabel(state.range(1) == 1 ? "rocksdb" : "memory");
  queue.reset();
  store.reset();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}
BENCHMARK(BM_QueueAppendRemove)
    ->ArgsProduct({{100, 1000}, {0, 1}})
    ->ArgNames({"spans", "rocksdb"})
    ->Unit(benchmark::kMicrosecond);

// Acknowledges every request, as a healthy backend does.
class SinkService final : public otlp::TraceService::Service {
  grpc::Status Export(grpc::ServerContext*, const otlp::ExportTraceServiceRequest*,
                      otlp::ExportTraceServiceResponse*) override {
    return grpc::Status::OK;
  }
};

// A queue of 100,000 spans left in RocksDB by an outage, drained by a new exporter to a local
// OTLP/gRPC sink (in this process, over TCP loopback): read back, encode, send, ack, delete.
void BM_QueueDrainToOtlpSink(benchmark::State& state) {
  constexpr int kSpansPerBatch = 500;
  constexpr int kBatches = 200;
  const auto batches = Batches(kSpansPerBatch, 20);
  SinkService sink;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&sink);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  int64_t spans = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string path = TempDb();
    auto store = OpenStore(path);
    auto queue = store->OpenExportQueue();
    int64_t queued = 0;
    for (int b = 0; b < kBatches; ++b) {
      const auto& batch = batches[b % batches.size()];
      (void)queue->Append(b + 1, absl::Now(), batch);
      queued += static_cast<int64_t>(batch.size());
    }
    exporter::OtlpExporterOptions options;
    options.endpoint = absl::StrCat("127.0.0.1:", port);
    options.compression = state.range(0) == 1 ? "gzip" : "none";
    options.send_batch_size = 2048;
    options.send_batch_max_size = 2048;
    auto created = exporter::OtlpExporter::Create(options, Clock::Real(), queue.get());
    if (!created.ok()) state.SkipWithError(std::string(created.status().message()).c_str());
    std::unique_ptr<exporter::OtlpExporter> exp = std::move(*created);
    state.ResumeTiming();

    (void)exp->Start();
    while (exp->stats().spans_exported.load() < static_cast<uint64_t>(queued)) {
      absl::SleepFor(absl::Microseconds(200));
    }
    spans += queued;

    state.PauseTiming();
    exp->Shutdown(absl::Now() + absl::Seconds(5));
    exp.reset();
    queue.reset();
    store.reset();
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
    state.ResumeTiming();
  }
  state.SetItemsProcessed(spans);
  state.SetLabel(state.range(0) == 1 ? "gzip" : "no compression");
  server->Shutdown();
}
BENCHMARK(BM_QueueDrainToOtlpSink)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("gzip")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
