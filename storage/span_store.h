// Where kept traces are stored, and how they are read back.
#ifndef TRACEKEEP_STORAGE_SPAN_STORE_H_
#define TRACEKEEP_STORAGE_SPAN_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::storage {

class TraceIndex;  // storage/trace_index.h

// Counters read by the metrics endpoint and the admin API.
struct StoreStats {
  std::atomic<uint64_t> traces_stored{
      0};  // kept traces written (a trace written twice counts twice)
  std::atomic<uint64_t> spans_stored{0};
  std::atomic<uint64_t> write_errors{0};  // Consume calls that failed
  std::atomic<uint64_t> spans_failed{0};  // spans of failed writes (lost to storage)
};

// A store of kept traces. Consume() writes a batch atomically; reads see whole batches.
class SpanStore : public TraceConsumer {
 public:
  // Every stored span of `trace_id` (16 bytes), ordered by start time then span id.
  // NotFound when the trace has no stored span.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpanRecord>> GetTrace(
      absl::string_view trace_id) = 0;
  // Trace ids with a span of `service` starting in [start, end), newest first, at most `limit`.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> FindTraceIds(
      absl::string_view service, absl::Time start, absl::Time end, size_t limit) = 0;
  // The indexes of the Jaeger query API, or nullptr when this store has none.
  virtual TraceIndex* trace_index() { return nullptr; }
  // Bytes on disk, approximately (live SST and WAL files).
  virtual uint64_t ApproximateDiskBytes() = 0;
  virtual const StoreStats& stats() const = 0;
};
using SpanStorePtr = std::unique_ptr<SpanStore>;

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_SPAN_STORE_H_
