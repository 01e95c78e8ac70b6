// query_bench: the Jaeger query API over a large store (collector/query, storage/trace_index.h).
//
//   1. Index write cost: the same kept traces written to a store without the query indexes and
//      to one with them, alternating batch by batch; ns per stored span of each and the ratio.
//   2. Fills the indexed store to --spans spans (realistic traffic of bench/otlp_gen.h, traces
//      spread over time, 10 % belonging to orders).
//   3. FindTraces latency (p50/p99, in process, limit 20): by order id (tag order.id on shop-api,
//      the whole time range) and by service and a 60 s window; first with the fill's last
//      writes still in the memtables (as while the store is written), then after a flush.
//   4. GetTraces throughput through the real gRPC server over loopback: 20 ids a request, spans
//      streamed per second.
//
// Usage: query_bench [--spans=10000000] [--dir=/tmp/...] [--queries=500] [--compare_spans=200000]
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "bench/otlp_gen.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/query/jaeger_storage_server.h"
#include "collector/query/trace_search.h"
#include "jaeger/storage/v2/trace_storage.grpc.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/rocksdb_span_store.h"
#include "storage/span_fields.h"

ABSL_FLAG(int64_t, spans, 10000000, "spans in the store searched");
ABSL_FLAG(std::string, dir, "", "directory for the stores (default: a new one under /tmp)");
ABSL_FLAG(int, queries, 500, "queries of each kind");
ABSL_FLAG(int64_t, compare_spans, 200000, "spans written to each store to compare write costs");
ABSL_FLAG(double, getTraces_seconds, 5, "how long GetTraces is read");

namespace tracekeep::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kBase = 1790000000000000000;  // 2026-09, in unix nanos
constexpr int64_t kTraceStep = 1000000;         // 1 ms between consecutive traces

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Traces of request `n` of the pool, as the sampler would hand them to the store, each moved to
// its own start time (`*next_trace` counts traces).
KeptTraces Batch(const RequestPool& pool, uint64_t n, int64_t* next_trace) {
  absl::StatusOr<SplitResult> split = SplitWireRequest(pool.Render(n));
  KeptTraces out;
  if (!split.ok()) return out;
  for (TraceSpans& t : split->traces) {
    KeptTrace& kept = out.emplace_back();
    kept.trace_id = std::move(t.trace_id);
    kept.policy = "bench";
    kept.spans = std::move(t.spans);
    int64_t first = INT64_MAX;
    for (const SpanRecord& s : kept.spans) first = std::min(first, s.start_unix_nanos);
    const int64_t shift = kBase + (*next_trace)++ * kTraceStep - first;
    for (SpanRecord& s : kept.spans) {
      s.start_unix_nanos += shift;
      s.end_unix_nanos += shift;
    }
  }
  return out;
}

size_t SpanCount(const KeptTraces& traces) {
  size_t n = 0;
  for (const KeptTrace& t : traces) n += t.spans.size();
  return n;
}

std::unique_ptr<storage::RocksDbSpanStore> Open(const std::string& path, bool indexes) {
  storage::RocksDbOptions o;
  o.path = path;
  o.query_indexes = indexes;
  auto store = storage::RocksDbSpanStore::Create(o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(store);
}

struct Percentiles {
  double p50_ms = 0;
  double p99_ms = 0;
  double mean_found = 0;
};

Percentiles Measure(std::vector<double> ms, double found_total) {
  Percentiles p;
  if (ms.empty()) return p;
  std::sort(ms.begin(), ms.end());
  p.p50_ms = ms[ms.size() / 2];
  p.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  p.mean_found = found_total / static_cast<double>(ms.size());
  return p;
}

std::string MachineLine() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model = "?";
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ifstream load("/proc/loadavg");
  std::string load_line;
  std::getline(load, load_line);
  return absl::StrCat("machine: ", std::thread::hardware_concurrency(), " cores, ", model,
                      ", loadavg ", load_line);
}

int Run(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::printf("%s\n", MachineLine().c_str());
  std::string dir = absl::GetFlag(FLAGS_dir);
  bool remove_dir = false;
  if (dir.empty()) {
    std::string pattern = "/tmp/tk_query_bench_XXXXXX";
    dir = mkdtemp(pattern.data());
    remove_dir = true;
  }
  RequestShape shape;  // 500 spans a request, 10 a trace, 10 % order traces, 1 % errors
  auto pool = RequestPool::Create(shape, 64, 7);
  if (!pool.ok()) {
    std::fprintf(stderr, "%s\n", pool.status().ToString().c_str());
    return 1;
  }

  // 1. Write cost with and without the query indexes.
  {
    auto plain = Open(dir + "/plain", false);
    auto indexed = Open(dir + "/compare", true);
    const int64_t want = absl::GetFlag(FLAGS_compare_spans);
    double plain_s = 0, indexed_s = 0;
    int64_t spans = 0, trace_no = 0;
    for (uint64_t n = 0; spans < want; ++n) {
      KeptTraces a = Batch(**pool, n, &trace_no);
      KeptTraces b = a;
      spans += static_cast<int64_t>(SpanCount(a));
      // Alternate which store goes first: the second write finds caches warm.
      auto t0 = Clock::now();
      absl::Status s1 =
          (n % 2 == 0 ? plain : indexed)->Consume(n % 2 == 0 ? std::move(a) : std::move(b));
      auto t1 = Clock::now();
      absl::Status s2 =
          (n % 2 == 0 ? indexed : plain)->Consume(n % 2 == 0 ? std::move(b) : std::move(a));
      auto t2 = Clock::now();
      if (!s1.ok() || !s2.ok()) {
        std::fprintf(stderr, "write failed: %s %s\n", s1.ToString().c_str(), s2.ToString().c_str());
        return 1;
      }
      (n % 2 == 0 ? plain_s : indexed_s) += Seconds(t1 - t0);
      (n % 2 == 0 ? indexed_s : plain_s) += Seconds(t2 - t1);
    }
    (void)plain->Flush();
    (void)indexed->Flush();
    uint64_t plain_index_bytes = 0, indexed_index_bytes = 0, span_bytes = 0;
    for (const auto& [cf, bytes] : plain->DiskBytesPerColumnFamily()) {
      if (cf == "indexes") plain_index_bytes = bytes;
      if (cf == "spans") span_bytes = bytes;
    }
    for (const auto& [cf, bytes] : indexed->DiskBytesPerColumnFamily()) {
      if (cf == "indexes") indexed_index_bytes = bytes;
    }
    const double per_span = 1e9 / static_cast<double>(spans);
    std::printf(
        "write %lld spans: without query indexes %.0f ns/span, with %.0f ns/span (x%.2f, +%.0f "
        "ns/span); index bytes on disk per span %.1f -> %.1f (spans: %.1f B/span)\n",
        static_cast<long long>(spans), plain_s * per_span, indexed_s * per_span,
        indexed_s / plain_s, (indexed_s - plain_s) * per_span,
        static_cast<double>(plain_index_bytes) / spans,
        static_cast<double>(indexed_index_bytes) / spans, static_cast<double>(span_bytes) / spans);
  }

  // 2. Fill.
  auto store = Open(dir + "/store", true);
  const int64_t target = absl::GetFlag(FLAGS_spans);
  std::vector<std::string> orders;     // order ids seen on shop-api spans (a sample)
  std::vector<std::string> trace_ids;  // a sample
  int64_t spans = 0, trace_no = 0;
  auto fill_start = Clock::now();
  const storage::AttributeKeys order_key = {"order.id"};
  for (uint64_t n = 0; spans < target; ++n) {
    KeptTraces batch = Batch(**pool, n, &trace_no);
    spans += static_cast<int64_t>(SpanCount(batch));
    if (n % 7 == 0) {
      for (const KeptTrace& t : batch) {
        if (trace_ids.size() < 100000) trace_ids.push_back(t.trace_id);
        for (const SpanRecord& s : t.spans) {
          if (s.origin == nullptr || s.origin->service_name != "shop-api") continue;
          storage::SpanFields f;
          if (storage::ReadSpanFields(s.span, order_key, &f) && !f.attributes.empty() &&
              orders.size() < 100000) {
            orders.push_back(f.attributes[0].second);
            break;
          }
        }
      }
    }
    if (absl::Status s = store->Consume(std::move(batch)); !s.ok()) {
      std::fprintf(stderr, "fill: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const int64_t span_time = trace_no * kTraceStep;
  std::printf("filled %lld spans (%lld traces over %.0f s of trace time) in %.1f s; disk %.2f GB\n",
              static_cast<long long>(spans), static_cast<long long>(trace_no), span_time / 1e9,
              Seconds(Clock::now() - fill_start),
              static_cast<double>(store->ApproximateDiskBytes()) / 1e9);

  // 3. FindTraces.
  std::mt19937_64 rng(42);
  const int queries = absl::GetFlag(FLAGS_queries);
  auto find = [&](const query::TraceFilter& filter, double* found) {
    query::SearchStats stats;
    size_t n = 0;
    auto t0 = Clock::now();
    absl::Status s = query::FindTraces(
        *store, *store->trace_index(), filter, 10000, [&](query::FoundTrace&&) { return ++n > 0; },
        &stats);
    const double ms = Seconds(Clock::now() - t0) * 1e3;
    if (!s.ok()) std::fprintf(stderr, "find: %s\n", s.ToString().c_str());
    *found += static_cast<double>(n);
    return ms;
  };
  // Twice: with the fill's last writes still in the memtables, as while a store is written (the
  // index memtable is a vector, sorted for each query that reads it), then flushed.
  auto find_all = [&](const char* when) {
    {
      std::vector<double> ms;
      double found = 0;
      for (int i = 0; i < queries && !orders.empty(); ++i) {
        query::TraceFilter f;
        f.service = "shop-api";
        f.tags = {{"order.id", orders[rng() % orders.size()]}};
        ms.push_back(find(f, &found));
      }
      const Percentiles p = Measure(ms, found);
      std::printf(
          "FindTraces by order id (shop-api, whole store, limit 20), %s: p50 %.2f ms, p99 "
          "%.2f ms, %.1f traces found per query\n",
          when, p.p50_ms, p.p99_ms, p.mean_found);
    }
    {
      std::vector<double> ms;
      double found = 0;
      for (int i = 0; i < queries; ++i) {
        query::TraceFilter f;
        f.service = "crm-api";
        const int64_t window = 60 * int64_t{1000000000};
        f.start_min_unix_nanos =
            kBase + static_cast<int64_t>(
                        rng() % static_cast<uint64_t>(std::max<int64_t>(span_time - window, 1)));
        f.start_max_unix_nanos = f.start_min_unix_nanos + window;
        ms.push_back(find(f, &found));
      }
      const Percentiles p = Measure(ms, found);
      std::printf(
          "FindTraces by service and 60 s window (limit 20), %s: p50 %.2f ms, p99 %.2f ms, "
          "%.1f traces found per query\n",
          when, p.p50_ms, p.p99_ms, p.mean_found);
    }
  };
  find_all("memtables as written");
  (void)store->Flush();
  find_all("flushed");

  // 4. GetTraces through gRPC.
  {
    query::JaegerStorageOptions o;
    o.endpoint = "127.0.0.1:0";
    auto server = query::JaegerStorageServer::Start(o, store.get(), store->trace_index());
    if (!server.ok()) {
      std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
      return 1;
    }
    auto stub = jaeger::storage::v2::TraceReader::NewStub(
        grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
    int64_t streamed = 0, requests = 0;
    auto t0 = Clock::now();
    const double seconds = absl::GetFlag(FLAGS_getTraces_seconds);
    while (Seconds(Clock::now() - t0) < seconds) {
      jaeger::storage::v2::GetTracesRequest request;
      for (int i = 0; i < 20; ++i) {
        request.add_query()->set_trace_id(trace_ids[rng() % trace_ids.size()]);
      }
      grpc::ClientContext context;
      auto reader = stub->GetTraces(&context, request);
      opentelemetry::proto::trace::v1::TracesData chunk;
      while (reader->Read(&chunk)) {
        for (const auto& rs : chunk.resource_spans()) {
          for (const auto& ss : rs.scope_spans()) streamed += ss.spans_size();
        }
      }
      if (!reader->Finish().ok()) return 1;
      ++requests;
    }
    const double s = Seconds(Clock::now() - t0);
    std::printf(
        "GetTraces over loopback gRPC (20 random ids a request, client in the same "
        "process): %.0f spans/s, %.1f requests/s\n",
        static_cast<double>(streamed) / s, static_cast<double>(requests) / s);
    (*server)->Shutdown(absl::Now() + absl::Seconds(5));
  }
  store.reset();
  if (remove_dir) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace tracekeep::bench

int main(int argc, char** argv) { return tracekeep::bench::Run(argc, argv); }
