// Where the OTLP exporter keeps the batches it has accepted until the backend acknowledges them.
// A durable implementation (storage/rocksdb_queue_store.h, column family `export_queue`) lets
// kept spans survive a backend outage of any length and a restart of tracekeep; the in-memory one
// here serves tests and benchmarks.
#ifndef TRACEKEEP_COLLECTOR_EXPORTER_QUEUE_STORE_H_
#define TRACEKEEP_COLLECTOR_EXPORTER_QUEUE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::exporter {

// One stored batch, as listed on start-up (its spans are read with Read()).
struct QueueEntryInfo {
  uint64_t seq = 0;        // position in the queue; strictly increasing, never reused
  uint64_t bytes = 0;      // stored size, what counts against the disk budget
  int64_t span_count = 0;  // spans in the batch
  absl::Time enqueued;     // wall-clock time it was appended
};

// An ordered store of span batches keyed by sequence number. Thread-compatible: the exporter
// serializes calls (Append under its queue lock, Read/Remove from its sender thread).
class QueueStore {
 public:
  virtual ~QueueStore() = default;

  // Durably stores `spans` as entry `seq` (greater than every seq stored before) and returns the
  // stored size in bytes. A non-OK status means nothing was stored: kResourceExhausted when the
  // disk is full, kUnavailable/kInternal otherwise; the message names the store.
  [[nodiscard]] virtual absl::StatusOr<uint64_t> Append(uint64_t seq, absl::Time enqueued,
                                                        const std::vector<SpanRecord>& spans) = 0;
  // The spans of entry `seq`, in the order they were appended. kNotFound when absent, kDataLoss
  // when the stored value does not decode.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpanRecord>> Read(uint64_t seq) = 0;
  // Deletes entry `seq` (no error when absent): the backend acknowledged it or it was given up on.
  [[nodiscard]] virtual absl::Status Remove(uint64_t seq) = 0;
  // Every stored entry, oldest (lowest seq) first: what a previous run left to send.
  [[nodiscard]] virtual absl::StatusOr<std::vector<QueueEntryInfo>> List() = 0;
  // "rocksdb at \"data/rocksdb\" (column family export_queue)", for messages.
  virtual std::string Describe() const = 0;
};
using QueueStorePtr = std::unique_ptr<QueueStore>;

// Keeps the batches in memory: what a restart of the process loses. For tests (it outlives the
// exporters that use it, so a "restart" is a second exporter on the same store) and benchmarks.
// Thread-safe.
class MemoryQueueStore final : public QueueStore {
 public:
  absl::StatusOr<uint64_t> Append(uint64_t seq, absl::Time enqueued,
                                  const std::vector<SpanRecord>& spans) override;
  absl::StatusOr<std::vector<SpanRecord>> Read(uint64_t seq) override;
  absl::Status Remove(uint64_t seq) override;
  absl::StatusOr<std::vector<QueueEntryInfo>> List() override;
  std::string Describe() const override { return "in-memory export queue"; }

  // Test hook: while set, Append fails with kResourceExhausted as on a full disk.
  void set_fail_appends(bool fail);
  size_t size() const;

  // Bytes one span counts for: its encoded bytes plus a fixed overhead for ids and times.
  static uint64_t SpanBytes(const SpanRecord& span) { return span.span.size() + 32; }

 private:
  struct Entry {
    absl::Time enqueued;
    uint64_t bytes = 0;
    std::vector<SpanRecord> spans;
  };
  mutable std::mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool fail_appends_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tracekeep::exporter

#endif  // TRACEKEEP_COLLECTOR_EXPORTER_QUEUE_STORE_H_
