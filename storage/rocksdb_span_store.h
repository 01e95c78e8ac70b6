// A SpanStore in one RocksDB database with column families `spans`, `indexes` and `resources`
// (key layout in storage/keys.h, value encoding in storage/span_codec.h), plus `export_queue`:
// the durable queue of the OTLP exporter (OpenExportQueue()).
#ifndef TRACEKEEP_STORAGE_ROCKSDB_SPAN_STORE_H_
#define TRACEKEEP_STORAGE_ROCKSDB_SPAN_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/exporter/queue_store.h"
#include "storage/kv_table.h"
#include "storage/span_store.h"
#include "storage/trace_index.h"

namespace tracekeep::storage {

struct RocksDbOptions {
  // Directory of the database. Created, with its missing parents, when absent.
  // Default: "" (must be set)
  std::string path;

  // Capacity of the LRU block cache shared by every column family, in MiB. Reads of recently
  // written or read traces are served from it.
  // Default: 64
  size_t block_cache_mib = 64;

  // Size of one memtable of the `spans` column family, in MiB (the other column families use a
  // quarter of it, at least 4 MiB). Larger memtables mean fewer, larger flushes; memory use is up
  // to `max_write_buffers` times this. 32 rather than 64: ~40 MiB less RSS at 100 k spans/s of
  // order traffic for ~7 % more CPU per stored span (bench/store_bench.cc, by write_buffer_mib).
  // Default: 32
  size_t write_buffer_mib = 32;

  // Memtables a column family may hold (one active, the others being flushed) before writes stall.
  // Default: 4
  int max_write_buffers = 4;

  // Threads for background flushes and compactions.
  // Default: 2
  int max_background_jobs = 2;

  // Whether each write fsyncs the write-ahead log before Consume returns. With false, a stored
  // batch survives a crash of the process (kill -9) but the last writes may be lost if the
  // machine itself crashes. The write-ahead log is never disabled.
  // Default: false
  bool sync = false;

  // Block compression of every column family: "none", "snappy", "lz4" or "zstd".
  // Default: "lz4"
  std::string compression = "lz4";

  // How long spans and index entries are kept, counted from their start time; zero keeps
  // them forever. Enforced by a compaction filter on `spans` and `indexes` that reads the time
  // from the key (storage/keys.h): expired data disappears when RocksDB next compacts its file,
  // at the latest about `retention` after the file was written (column family ttl), so the disk
  // holds up to about twice the retention. `resources` entries (one per distinct resource) are
  // not expired.
  // Default: absl::ZeroDuration()
  absl::Duration retention = absl::ZeroDuration();

  // Whether kept traces are also indexed for the Jaeger query API (collector/query): attribute
  // values of `indexed_attributes`, operations by span kind and hour, dependencies by minute, and
  // a summary (error, shortest/longest duration, span names) in every service entry (keys.h).
  // false writes only the service index, with summaries. Entries expire with `retention`.
  // Default: true
  bool query_indexes = true;

  // Attribute keys whose values (their string form, on spans, events, scopes and resources) are
  // indexed by service, so that a search for one costs in proportion to what it finds.
  // "order.id" is always indexed; these are added to it.
  // Default: {}
  std::vector<std::string> indexed_attributes;

  // The clock whose Now() decides what is expired. Must outlive the store; nullptr = Clock::Real().
  // Default: nullptr
  const Clock* clock = nullptr;

  // InvalidArgument naming the first bad field and its value.
  [[nodiscard]] absl::Status Validate() const;
};

class RocksDbSpanStore final : public SpanStore, public TraceIndex {
 public:
  // Opens (creating when missing) the database at `options.path` and its column families.
  // Fails when the options are invalid, the directory cannot be created, or the database cannot
  // be opened (for instance, another process holds it); the message names the path.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RocksDbSpanStore>> Create(
      const RocksDbOptions& options);
  ~RocksDbSpanStore() override;

  RocksDbSpanStore(const RocksDbSpanStore&) = delete;
  RocksDbSpanStore& operator=(const RocksDbSpanStore&) = delete;

  // Writes every span of `traces`, their resources and their index entries (storage/keys.h: per
  // trace one service entry per service and, with query_indexes, one per indexed attribute value;
  // per batch the new operation-hours and one dependency entry per minute) in one atomic
  // WriteBatch. A non-OK status
  // means nothing was written: kUnavailable (busy, retry), kResourceExhausted (disk full),
  // kInvalidArgument (a trace or span id of the wrong size), kInternal otherwise.
  [[nodiscard]] absl::Status Consume(KeptTraces&& traces) override;

  [[nodiscard]] absl::StatusOr<std::vector<SpanRecord>> GetTrace(
      absl::string_view trace_id) override;
  // The service index holds, per write of a trace, the start time of the trace's earliest span of
  // that service in that write: a trace is found when that time is in [start, end).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> FindTraceIds(absl::string_view service,
                                                                      absl::Time start,
                                                                      absl::Time end,
                                                                      size_t limit) override;
  TraceIndex* trace_index() override { return this; }

  // TraceIndex (storage/trace_index.h), from the `indexes` column family.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Services() override;
  [[nodiscard]] absl::StatusOr<std::vector<OperationEntry>> Operations(
      absl::string_view service, std::optional<uint32_t> kind) override;
  [[nodiscard]] absl::Status ScanTraces(
      const TraceSearch& search, const std::function<bool(const TraceCandidate&)>& fn) override;
  [[nodiscard]] absl::StatusOr<std::vector<DependencyEdge>> Dependencies(
      int64_t start_unix_nanos, int64_t end_unix_nanos) override;
  const AttributeKeys& indexed_attributes() const override;

  // Live SST files of every column family plus write-ahead log files.
  uint64_t ApproximateDiskBytes() override;
  const StoreStats& stats() const override;
  // False after a failed write (disk full, IO error) until the database resumed: writes are
  // refused with kResourceExhausted meanwhile (storage/write_guard.h). Writes refused so far.
  bool writable() const;
  // Whether each of `spans` of the trace (by start time and span id) is stored: one read of the
  // trace's values for all of them.
  [[nodiscard]] absl::StatusOr<std::vector<bool>> ContainsSpans(
      absl::string_view trace_id, const std::vector<SpanRecord>& spans);
  uint64_t write_refusals() const;

  // Live SST bytes per column family, in the order spans, indexes, resources, then any other
  // column family found in the database (default included).
  std::vector<std::pair<std::string, uint64_t>> DiskBytesPerColumnFamily();
  // Memory: the memtables' bytes per column family (active and immutable, in the same order),
  // and the block cache's usage (0 without a cache).
  std::vector<std::pair<std::string, uint64_t>> MemTableBytesPerColumnFamily();
  uint64_t BlockCacheBytes();

  // Writes an openable, consistent copy of the database into `dir`, which must not exist
  // (hard links when on the same file system). The copy opens with Create().
  [[nodiscard]] absl::Status Checkpoint(const std::string& dir);

  // Flushes every memtable to SST files (the data is already durable in the WAL).
  [[nodiscard]] absl::Status Flush();

  // Flushes and compacts `spans` and `indexes` now, applying retention (RocksDB otherwise
  // compacts in the background when it sees fit).
  [[nodiscard]] absl::Status CompactSpans();

  // The durable export queue in column family `export_queue`, keyed by big-endian sequence
  // number; values are codec::EncodeSpanBatch. Writes honour `sync`. The queue uses this store's
  // database: it must be destroyed before the store.
  std::unique_ptr<exporter::QueueStore> OpenExportQueue();

  const RocksDbOptions& options() const;

  // A column family of this database for another component's records, created when missing
  // (e.g. "orders"). The table must not outlive the store. Fails for the store's own families.
  [[nodiscard]] absl::StatusOr<KvTablePtr> OpenTable(const std::string& name);

 private:
  struct Impl;
  explicit RocksDbSpanStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Create(), as the interface.
[[nodiscard]] absl::StatusOr<SpanStorePtr> OpenRocksDbSpanStore(const RocksDbOptions& options);

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_ROCKSDB_SPAN_STORE_H_
