// store_bench: what the RocksDB span store costs per kept span, background work included.
//
// Kept traces of the load generator's shape (bench/otlp_gen.h, every trace naming an order, its
// spans dated as the load generator dates them: moving forward with the time they are sent) are
// written to a fresh store in batches of one request's traces, as the sampler hands them over.
// The time is the whole process's CPU time (RocksDB's flush and compaction threads too), per
// stored span; counters give the bytes on disk per span and the share of the time spent in
// RocksDB's background threads.
//
//   store_bench   (writes 2 M spans into a new store under /tmp, removed afterwards)
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/pipeline/otlp_convert.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::bench {
namespace {

// CPU seconds of this process's threads whose name starts with `prefix` (RocksDB names its
// background threads "rocksdb:low" and "rocksdb:high").
double ThreadCpuSeconds(const std::string& prefix) {
  double total = 0;
  const long hz = sysconf(_SC_CLK_TCK);
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  while (dirent* d = readdir(dir)) {
    if (d->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + d->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (stat.compare(open + 1, prefix.size(), prefix) != 0) continue;
    // Fields after the name: state is the 1st, utime the 12th, stime the 13th.
    std::vector<std::string> fields;
    size_t pos = close + 2;
    while (pos < stat.size() && fields.size() < 13) {
      const size_t end = stat.find(' ', pos);
      fields.push_back(stat.substr(pos, end - pos));
      if (end == std::string::npos) break;
      pos = end + 1;
    }
    if (fields.size() < 13) continue;
    total += static_cast<double>(std::stoll(fields[11]) + std::stoll(fields[12])) / hz;
  }
  closedir(dir);
  return total;
}

double CpuNow(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

uint64_t DirectoryBytes(const std::string& path) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path, ec)) {
    if (entry.is_regular_file(ec)) bytes += entry.file_size(ec);
  }
  return bytes;
}

// Writes state.range(0) spans of kept order traces per iteration into a new store.
void BM_StoreKeptOrderTraces(benchmark::State& state) {
  RequestShape shape;
  shape.order_share = 1.0;
  shape.error_share = 0.01;
  auto pool = RequestPool::Create(shape, 64, /*seed=*/7);
  if (!pool.ok()) {
    state.SkipWithError(pool.status().ToString().c_str());
    return;
  }
  const int64_t spans_per_iteration = state.range(0);
  // Spans as sent at 250 k spans/s: request n is dated n * 2 ms after the pool.
  const int64_t nanos_per_request = int64_t{1000000000} * shape.spans_per_request / 250000;
  uint64_t n = 0;
  int64_t stored = 0;
  double background = 0;
  double disk = 0;
  double generating = 0;
  double process = 0;
  for (auto _ : state) {
    state.PauseTiming();
    char dir_template[] = "/tmp/tk-store-bench-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
      state.SkipWithError("cannot create a directory under /tmp");
      return;
    }
    const std::string dir = dir_template;
    storage::RocksDbOptions options;
    options.path = dir + "/db";
    options.write_buffer_mib = static_cast<size_t>(state.range(1));
    auto store = storage::RocksDbSpanStore::Create(options);
    if (!store.ok()) {
      state.SkipWithError(store.status().ToString().c_str());
      return;
    }
    const double background_before = ThreadCpuSeconds("rocksdb:");
    const double process_before = CpuNow(CLOCK_PROCESS_CPUTIME_ID);
    state.ResumeTiming();
    int64_t written = 0;
    while (written < spans_per_iteration) {
      const double generating_since = CpuNow(CLOCK_THREAD_CPUTIME_ID);
      absl::StatusOr<SplitResult> split =
          SplitWireRequest((*pool)->Render(n, static_cast<int64_t>(n) * nanos_per_request));
      ++n;
      if (!split.ok()) {
        state.SkipWithError(split.status().ToString().c_str());
        return;
      }
      KeptTraces kept;
      for (TraceSpans& t : split->traces) {
        KeptTrace& k = kept.emplace_back();
        k.trace_id = std::move(t.trace_id);
        k.policy = "order_anomaly";
        k.spans = std::move(t.spans);
        written += static_cast<int64_t>(k.spans.size());
      }
      generating += CpuNow(CLOCK_THREAD_CPUTIME_ID) - generating_since;
      if (absl::Status s = (*store)->Consume(std::move(kept)); !s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
    }
    // Flushed and closed inside the timing: the work a store does for what it was given.
    (*store)->Flush().IgnoreError();
    store->reset();
    state.PauseTiming();
    process += CpuNow(CLOCK_PROCESS_CPUTIME_ID) - process_before;
    background += ThreadCpuSeconds("rocksdb:") - background_before;
    disk += static_cast<double>(DirectoryBytes(dir));
    stored += written;
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(stored);
  state.counters["disk_B_per_span"] = disk / static_cast<double>(std::max<int64_t>(stored, 1));
  state.counters["background_cpu_s"] = background;
  // Rendering and splitting the requests (not the store's work), in the process time above.
  state.counters["generating_cpu_s"] = generating;
  // The store's CPU (every thread, generation taken out) per stored span.
  state.counters["store_cpu_us_per_span"] =
      (process - generating) * 1e6 / static_cast<double>(std::max<int64_t>(stored, 1));
}
// Args: spans, storage.write_buffer_mib.
BENCHMARK(BM_StoreKeptOrderTraces)
    ->Args({2000000, 16})
    ->Args({2000000, 32})
    ->Args({2000000, 64})
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
