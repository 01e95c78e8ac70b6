#include "storage/rocksdb_span_store.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"
#include "storage/rocksdb_span_store_impl.h"
#include "storage/rocksdb_status.h"
#include "storage/span_codec.h"
#include "storage/trace_index_builder.h"
#include "storage/write_guard.h"

namespace tracekeep::storage {
namespace {

constexpr char kSpansFamily[] = "spans";
constexpr char kIndexesFamily[] = "indexes";
constexpr char kResourcesFamily[] = "resources";
constexpr char kExportQueueFamily[] = "export_queue";
constexpr size_t kMiB = size_t{1} << 20;
// Spans of one kept trace part in one span group value at most (codec.h): ~15 KB of the load
// generator's order spans, about one 16 KiB block.
constexpr size_t kMaxGroupSpans = 32;

struct CompressionName {
  const char* name;
  rocksdb::CompressionType type;
};
constexpr CompressionName kCompressions[] = {
    {"none", rocksdb::kNoCompression},
    {"snappy", rocksdb::kSnappyCompression},
    {"lz4", rocksdb::kLZ4Compression},
    {"zstd", rocksdb::kZSTD},
};

bool ParseCompression(absl::string_view name, rocksdb::CompressionType* type) {
  for (const CompressionName& c : kCompressions) {
    if (name == c.name) {
      *type = c.type;
      return true;
    }
  }
  return false;
}

const SpanOrigin& EmptyOrigin() {
  static const SpanOrigin* const kEmpty = new SpanOrigin();
  return *kEmpty;
}

// Unix nanoseconds of `t` as a key time, clamped to the representable range [0, 2^64).
uint64_t ClampedKeyTime(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::numeric_limits<uint64_t>::max();
  const int64_t nanos = absl::ToUnixNanos(t);  // saturates
  return nanos < 0 ? 0 : static_cast<uint64_t>(nanos);
}

// Removes spans and index entries whose key time is older than `retention` before the clock's now.
// Reads nothing but the key. Keys it does not recognise are kept.
class RetentionFilter final : public rocksdb::CompactionFilter {
 public:
  enum class Family { kSpans, kIndexes };
  RetentionFilter(Family family, absl::Duration retention, const Clock* clock)
      : family_(family), retention_(retention), clock_(clock) {}

  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& /*value*/,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    const absl::string_view k = ToView(key);
    uint64_t key_time = 0;
    if (family_ == Family::kSpans) {
      if (k.size() != keys::kSpanKeySize && k.size() != keys::kSpanGroupKeySize) return false;
      key_time = keys::SpanKeyStartTime(k);
    } else {
      if (!keys::IsTimedIndexKey(k)) return false;
      key_time = keys::IndexKeyStartTime(k);
    }
    return key_time < ClampedKeyTime(clock_->Now() - retention_);
  }

  const char* Name() const override {
    return family_ == Family::kSpans ? "tracekeep.RetentionFilter.spans"
                                     : "tracekeep.RetentionFilter.indexes";
  }

 private:
  const Family family_;
  const absl::Duration retention_;
  const Clock* const clock_;
};

enum class Filter { kNone, kTraceIdPrefix, kWholeKey };

// Orders `records` (with their `slot_of_span`) by start time, then span id, keeping the first of
// spans with both equal.
void SortAndDeduplicate(std::vector<SpanRecord>* records, std::vector<size_t>* slot_of_span) {
  std::vector<size_t> order(records->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [&](size_t i) {
    const SpanRecord& r = (*records)[i];
    return std::make_pair(keys::KeyTime(r.start_unix_nanos), r.span_id.view());
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  std::vector<bool> duplicate(order.size(), false);
  for (size_t k = 1; k < order.size(); ++k) duplicate[k] = key(order[k]) == key(order[k - 1]);
  std::vector<SpanRecord> sorted;
  std::vector<size_t> slots;
  sorted.reserve(order.size());
  slots.reserve(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    if (duplicate[k]) continue;
    sorted.push_back(std::move((*records)[order[k]]));
    slots.push_back((*slot_of_span)[order[k]]);
  }
  *records = std::move(sorted);
  *slot_of_span = std::move(slots);
}

rocksdb::ColumnFamilyOptions FamilyOptions(const RocksDbOptions& options,
                                           const std::shared_ptr<rocksdb::Cache>& cache,
                                           size_t write_buffer_bytes, Filter filter) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = write_buffer_bytes;
  cf.max_write_buffer_number = options.max_write_buffers;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.target_file_size_base = std::max<uint64_t>(write_buffer_bytes, 8 * kMiB);
  cf.max_bytes_for_level_base = cf.target_file_size_base * 4;
  rocksdb::CompressionType compression = rocksdb::kLZ4Compression;
  (void)ParseCompression(options.compression, &compression);  // checked by Validate()
  cf.compression = compression;
  rocksdb::BlockBasedTableOptions table;
  if (cache == nullptr) {
    table.no_block_cache = true;
  } else {
    table.block_cache = cache;
    table.cache_index_and_filter_blocks = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
  }
  table.block_size = 16 * 1024;
  table.format_version = 5;
  if (filter != Filter::kNone) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = filter == Filter::kWholeKey;
  }
  if (filter == Filter::kTraceIdPrefix) {
    cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(keys::kTraceIdSize));
    cf.memtable_prefix_bloom_size_ratio = 0.02;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

// The options of table `name` (OpenTable): `small` (memtables the size of the index column
// family's) for every table but `order_hold`, which has `hold`, with its values in blob files. Held
// traces (kilobytes each) are written once and deleted when their order is resolved, often within
// minutes: a memtable of write_buffer_mib lets a hold written and deleted within it never reach a
// file, and in blob files compactions move only their small keys, and a blob file whose traces
// were all released is dropped whole, instead of every trace being rewritten level by level. The
// other tables (order records, their index, decisions) are written about once per key, so a
// bigger memtable saves no work and only holds memory (at 100 k order spans/s the orders
// memtable alone was ~40 MB, 80 B per pending span).
rocksdb::ColumnFamilyOptions TableOptions(const rocksdb::ColumnFamilyOptions& small,
                                          const rocksdb::ColumnFamilyOptions& hold,
                                          const std::string& name) {
  rocksdb::ColumnFamilyOptions cf = name == "order_hold" ? hold : small;
  if (name == "order_hold") {
    cf.enable_blob_files = true;
    cf.min_blob_size = 256;
    cf.blob_file_size = 64 * kMiB;
    cf.blob_compression_type = hold.compression;
    cf.enable_blob_garbage_collection = true;
    cf.blob_garbage_collection_age_cutoff = 0.25;  // relocates what the oldest files still hold
  }
  return cf;
}

}  // namespace

absl::Status RocksDbOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("rocksdb.path must be set");
  if (write_buffer_mib < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rocksdb.write_buffer_mib must be >= 1, got ", write_buffer_mib));
  }
  if (max_write_buffers < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("rocksdb.max_write_buffers must be >= 2, got ", max_write_buffers));
  }
  if (max_background_jobs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rocksdb.max_background_jobs must be >= 1, got ", max_background_jobs));
  }
  rocksdb::CompressionType type;
  if (!ParseCompression(compression, &type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rocksdb.compression must be one of none, snappy, lz4, zstd, got \"", compression, "\""));
  }
  if (type != rocksdb::kNoCompression) {
    const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
    if (std::find(supported.begin(), supported.end(), type) == supported.end()) {
      return absl::InvalidArgumentError(absl::StrCat("rocksdb.compression \"", compression,
                                                     "\" is not supported by this RocksDB build"));
    }
  }
  for (size_t i = 0; i < indexed_attributes.size(); ++i) {
    if (indexed_attributes[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("indexed_attributes[", i, "] must not be empty"));
    }
  }
  if (retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rocksdb.retention must be >= 0, got ", absl::FormatDuration(retention)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RocksDbSpanStore>> RocksDbSpanStore::Create(
    const RocksDbOptions& options) {
  TK_RETURN_IF_ERROR(options.Validate());
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rocksdb.path \"", options.path, "\": cannot create the directory: ", ec.message()));
  }

  std::shared_ptr<rocksdb::Cache> cache;
  if (options.block_cache_mib > 0) cache = rocksdb::NewLRUCache(options.block_cache_mib * kMiB);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  // The spans' hash memtable takes one writer at a time (writes are batched per poll anyway).
  db_options.allow_concurrent_memtable_write = false;
  db_options.bytes_per_sync = kMiB;
  db_options.wal_bytes_per_sync = options.sync ? 0 : kMiB;
  // Bounds the WAL (and so recovery time) by forcing flushes of the column families it pins.
  db_options.max_total_wal_size = uint64_t{4} * options.write_buffer_mib * kMiB *
                                  static_cast<uint64_t>(options.max_write_buffers);
  // Write-ahead log files whose memtables are flushed are reused (RocksDB's recyclable record
  // format tells their old records apart): writing into pages the page cache already holds costs
  // the kernel about half of writing into fresh ones on these VMs (see the journal's
  // recycle_segments). Compatible with the default point-in-time WAL recovery.
  db_options.recycle_log_file_num = 4;

  const size_t spans_buffer = options.write_buffer_mib * kMiB;
  const size_t small_buffer = std::max<size_t>(spans_buffer / 4, 4 * kMiB);

  // Spans are read by trace id prefix: a prefix bloom filter makes unknown ids cheap.
  rocksdb::ColumnFamilyOptions spans_cf =
      FamilyOptions(options, cache, spans_buffer, Filter::kTraceIdPrefix);
  // Spans are only ever read by trace id (a prefix seek or a point lookup), so their memtable is
  // a hash of trace ids, each bucket a small skip list: a span goes in with a search among the
  // spans of its trace, not of the whole memtable (perf at 300 k spans/s of order traffic: the
  // one big skip list's search, a cache miss per level for every span, was 7 % of the daemon's
  // CPU). Flushes still write sorted files.
  spans_cf.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory(
      /*bucket_count=*/64 * 1024, /*skiplist_height=*/4, /*skiplist_branching_factor=*/4));
  // Span keys start with a random trace id, so every level-0 file overlaps all of level 1, and
  // each level-0 compaction rewrites level 1 whole: compacting 16 files at once (instead of
  // RocksDB's 4), into a level 1 four times as big, rewrites it a quarter as often.
  // bench/store_bench.cc, 8 M kept order spans: 8.2 -> 5.6 us of CPU per stored span with the
  // index memtable below (8 files into an 8x level 1: 7.5 alone, 6.1 with it). Reads check up to
  // 16 level-0 files' prefix filters, pinned in the cache. RocksDB slows writes at 40 level-0
  // files and stops them at 60.
  spans_cf.level0_file_num_compaction_trigger = 16;
  spans_cf.level0_slowdown_writes_trigger = 40;
  spans_cf.level0_stop_writes_trigger = 60;
  spans_cf.max_bytes_for_level_base = spans_cf.target_file_size_base * 16;
  // Service index reads are range scans: no filter.
  rocksdb::ColumnFamilyOptions indexes_cf =
      FamilyOptions(options, cache, small_buffer, Filter::kNone);
  // Index entries (several per kept trace, at random places: service, attribute value, time)
  // are appended to a vector and sorted once when the memtable is flushed, instead of each
  // searching a skip list (a cache miss per level): bench/store_bench.cc, 6.9 -> 5.7 us of CPU
  // per stored span. A query that reads the active memtable sorts a copy of it (~20 ms for a
  // full 16 MiB one); the indexes are only read by queries.
  indexes_cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  // Resources are point lookups, written once per store opening (Impl::resources_written).
  rocksdb::ColumnFamilyOptions resources_cf =
      FamilyOptions(options, cache, small_buffer, Filter::kWholeKey);

  // The export queue is written at the tail, read at the head and deleted at the head.
  rocksdb::ColumnFamilyOptions export_queue_cf =
      FamilyOptions(options, cache, small_buffer, Filter::kNone);

  auto impl = std::make_unique<Impl>();
  impl->group_sequence = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  impl->block_cache = cache;
  // Tables (OpenTable; see TableOptions). With RocksDB's defaults (4 MiB memtables then, Snappy,
  // 256 MiB level base) their flushes and compactions took a quarter of the daemon's CPU under
  // load. Point lookups by key: whole-key bloom filter.
  for (auto [cf, buffer] : {std::make_pair(&impl->table_cf, small_buffer),
                            std::make_pair(&impl->hold_table_cf, spans_buffer)}) {
    *cf = FamilyOptions(options, cache, buffer, Filter::kWholeKey);
    // A lookup of a key that is not there (a new order's id, mostly) asks a bloom filter of the
    // memtable instead of searching its skip list.
    cf->memtable_whole_key_filtering = true;
    cf->memtable_prefix_bloom_size_ratio = 0.02;
  }
  if (options.retention > absl::ZeroDuration()) {
    const Clock* clock = options.clock != nullptr ? options.clock : Clock::Real();
    impl->spans_filter = std::make_unique<RetentionFilter>(RetentionFilter::Family::kSpans,
                                                           options.retention, clock);
    impl->indexes_filter = std::make_unique<RetentionFilter>(RetentionFilter::Family::kIndexes,
                                                             options.retention, clock);
    spans_cf.compaction_filter = impl->spans_filter.get();
    indexes_cf.compaction_filter = impl->indexes_filter.get();
    // Files whose data is all older than this are compacted (and so filtered) even when nothing
    // else would compact them.
    const uint64_t ttl =
        static_cast<uint64_t>(std::max<int64_t>(absl::ToInt64Seconds(options.retention), 3600));
    spans_cf.ttl = ttl;
    indexes_cf.ttl = ttl;
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {kSpansFamily, spans_cf},
      {kIndexesFamily, indexes_cf},
      {kResourcesFamily, resources_cf},
      {kExportQueueFamily, export_queue_cf},
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
  };
  // Every existing column family must be opened; keep ones this code does not know about.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok()) {
    for (const std::string& name : existing) {
      const bool known = std::any_of(descriptors.begin(), descriptors.end(),
                                     [&](const auto& d) { return d.name == name; });
      if (!known) {
        descriptors.emplace_back(name, TableOptions(impl->table_cf, impl->hold_table_cf, name));
      }
    }
  }

  impl->options = options;
  impl->index_state =
      std::make_unique<IndexWriteState>(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
                                        reinterpret_cast<uintptr_t>(impl.get()));
  impl->indexed_attributes.push_back("order.id");
  for (const std::string& key : options.indexed_attributes) {
    if (std::find(impl->indexed_attributes.begin(), impl->indexed_attributes.end(), key) ==
        impl->indexed_attributes.end()) {
      impl->indexed_attributes.push_back(key);
    }
  }
  impl->write_options.sync = options.sync;
  const std::string describe = absl::StrCat("rocksdb at \"", options.path, "\"");
  impl->guard = std::make_unique<WriteGuard>(describe, options.clock);
  db_options.listeners.push_back(impl->guard->Listener());
  // Warnings and errors to tracekeep's log; no LOG file in the database directory to fail on a
  // full disk.
  db_options.info_log = NewRocksDbLogger(describe);
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, options.path, descriptors, &impl->handles, &raw_db);
  if (!s.ok()) {
    return FromRocksDbStatus(s, absl::StrCat("opening rocksdb at \"", options.path, "\""));
  }
  impl->db.reset(raw_db);
  impl->guard->Attach(raw_db);
  impl->spans = impl->handles[0];
  impl->indexes = impl->handles[1];
  impl->resources = impl->handles[2];
  impl->export_queue = impl->handles[3];
  TK_LOG(Info) << "rocksdb span store opened at \"" << options.path << "\" ("
               << impl->handles.size() << " column families, sync=" << options.sync << ")";
  return std::unique_ptr<RocksDbSpanStore>(new RocksDbSpanStore(std::move(impl)));
}

RocksDbSpanStore::RocksDbSpanStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksDbSpanStore::~RocksDbSpanStore() = default;

const StoreStats& RocksDbSpanStore::stats() const { return impl_->stats; }
const RocksDbOptions& RocksDbSpanStore::options() const { return impl_->options; }

absl::Status RocksDbSpanStore::Consume(KeptTraces&& traces) {
  Impl& impl = *impl_;
  uint64_t span_count = 0;
  uint64_t trace_count = 0;
  size_t payload_bytes = 0;
  absl::Status invalid;
  for (const KeptTrace& trace : traces) {
    if (trace.spans.empty()) continue;
    ++trace_count;
    span_count += trace.spans.size();
    if (trace.trace_id.size() != keys::kTraceIdSize && invalid.ok()) {
      invalid = absl::InvalidArgumentError(absl::StrCat("kept trace ", ToHex(trace.trace_id),
                                                        ": trace_id must have ", keys::kTraceIdSize,
                                                        " bytes, got ", trace.trace_id.size()));
    }
    for (const SpanRecord& span : trace.spans) {
      payload_bytes += span.span.size() + 64;
      if (span.span_id.size() != keys::kSpanIdSize && invalid.ok()) {
        invalid = absl::InvalidArgumentError(
            absl::StrCat("kept trace ", ToHex(trace.trace_id), ": span_id ", ToHex(span.span_id),
                         " must have ", keys::kSpanIdSize, " bytes, got ", span.span_id.size()));
      }
    }
  }
  if (!invalid.ok()) {
    impl.stats.write_errors.fetch_add(1, std::memory_order_relaxed);
    impl.stats.spans_failed.fetch_add(span_count, std::memory_order_relaxed);
    return invalid;
  }
  if (span_count == 0) return absl::OkStatus();

  rocksdb::WriteBatch batch(payload_bytes + 1024);
  TraceIndexBuilder index_builder(impl.indexed_attributes, impl.options.query_indexes,
                                  impl.index_state.get());
  // Resource reference per origin object, and the resources put in this batch or known written.
  absl::flat_hash_map<const SpanOrigin*, uint64_t> ref_by_origin;
  absl::flat_hash_set<uint64_t> resources_put;
  std::vector<uint64_t> resources_new;
  auto already_written = [&impl](uint64_t ref) {
    std::lock_guard<std::mutex> lock(impl.resources_mu);
    return impl.resources_written.contains(ref);
  };
  std::string key;
  std::string value;
  std::string group;
  rocksdb::Status s;
  auto put_index = [&](absl::string_view index_key, absl::string_view index_value) {
    if (!s.ok()) return;
    s = batch.Put(impl.indexes, rocksdb::Slice(index_key.data(), index_key.size()),
                  rocksdb::Slice(index_value.data(), index_value.size()));
  };
  for (const KeptTrace& trace : traces) {
    if (trace.spans.empty()) continue;
    const size_t n = trace.spans.size();
    for (size_t i = 0; i < n && s.ok(); ++i) {
      const SpanRecord& span = trace.spans[i];
      const SpanOrigin& origin = span.origin ? *span.origin : EmptyOrigin();
      auto [it, inserted] = ref_by_origin.try_emplace(&origin, 0);
      if (inserted) {
        it->second = keys::ResourceHash(origin.resource, origin.resource_schema_url);
        if (resources_put.insert(it->second).second && !already_written(it->second)) {
          resources_new.push_back(it->second);
          codec::EncodeResourceValue(origin, &value);
          s = batch.Put(impl.resources, keys::ResourceKey(it->second), value);
          if (!s.ok()) break;
        }
      }
      if (n == 1) {  // a span of its own
        key.clear();
        keys::AppendSpanKey(trace.trace_id, span.start_unix_nanos, span.span_id, &key);
        codec::EncodeSpanValue(span, it->second, &value);
        s = batch.Put(impl.spans, key, value);
        break;
      }
      // Spans of the trace in groups of kMaxGroupSpans, each keyed by its first span.
      if (i % kMaxGroupSpans == 0) {
        key.clear();
        keys::AppendSpanGroupKey(trace.trace_id, span.start_unix_nanos, span.span_id,
                                 impl.group_sequence.fetch_add(1, std::memory_order_relaxed), &key);
        codec::StartSpanGroup(std::min(kMaxGroupSpans, n - i), &group);
      }
      codec::AppendToSpanGroup(span, it->second, &value, &group);
      if (i % kMaxGroupSpans == kMaxGroupSpans - 1 || i == n - 1) {
        s = batch.Put(impl.spans, key, group);
      }
    }
    if (!s.ok()) break;
    index_builder.Build(trace, put_index);
    if (!s.ok()) break;
  }
  if (s.ok()) index_builder.Finish(put_index);
  absl::Status written = FromRocksDbStatus(s, "building a write batch");
  if (written.ok()) {
    written =
        impl.guard->Run([&] { return impl.db->Write(impl.write_options, &batch); },
                        absl::StrCat("writing ", span_count, " spans of ", trace_count, " traces"));
  }
  if (!written.ok()) {
    impl.stats.write_errors.fetch_add(1, std::memory_order_relaxed);
    if (written.code() == absl::StatusCode::kResourceExhausted) {
      // Disk full (or refused until the database resumes): nothing was written and `traces` is
      // untouched; the sampler offers the batch again (TraceConsumer's kUnavailable contract).
      return absl::UnavailableError(written.message());
    }
    impl.stats.spans_failed.fetch_add(span_count, std::memory_order_relaxed);
    return written;
  }
  if (!resources_new.empty()) {
    std::lock_guard<std::mutex> lock(impl.resources_mu);
    if (impl.resources_written.size() + resources_new.size() > Impl::kMaxResourcesRemembered) {
      impl.resources_written.clear();
    }
    impl.resources_written.insert(resources_new.begin(), resources_new.end());
  }
  impl.stats.traces_stored.fetch_add(trace_count, std::memory_order_relaxed);
  impl.stats.spans_stored.fetch_add(span_count, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SpanRecord>> RocksDbSpanStore::GetTrace(absl::string_view trace_id) {
  Impl& impl = *impl_;
  if (trace_id.size() != keys::kTraceIdSize) {
    return absl::InvalidArgumentError(absl::StrCat("trace_id ", ToHex(trace_id), " must have ",
                                                   keys::kTraceIdSize, " bytes, got ",
                                                   trace_id.size()));
  }
  const std::string trace_hex = ToHex(trace_id);
  // One snapshot for spans and resources: the read sees whole batches.
  rocksdb::ManagedSnapshot snapshot(impl.db.get());
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot.snapshot();
  read_options.prefix_same_as_start = true;

  // Spans with the same resource, scope and scope schema url share one origin.
  struct OriginSlot {
    uint64_t resource_ref;
    std::string scope;
    std::string scope_schema_url;
  };
  std::vector<OriginSlot> slots;
  absl::flat_hash_map<std::string, size_t> slot_by_key;
  std::vector<size_t> slot_of_span;
  std::vector<SpanRecord> records;
  std::string slot_key;

  bool any_group = false;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(read_options, impl.spans));
  for (it->Seek(rocksdb::Slice(trace_id.data(), trace_id.size())); it->Valid(); it->Next()) {
    const absl::string_view key = ToView(it->key());
    if (!absl::StartsWith(key, trace_id)) break;
    keys::SpanKeyParts parts;
    if (!keys::ParseSpanKey(key, &parts)) {
      return absl::DataLossError(absl::StrCat("trace ", trace_hex, ": spans key ", ToHex(key),
                                              " has ", key.size(), " bytes, want ",
                                              keys::kSpanKeySize, " or ", keys::kSpanGroupKeySize));
    }
    any_group |= parts.group;
    absl::Status decoded_all = codec::ForEachStoredSpan(
        ToView(it->value()), parts.span_id,
        [&](absl::string_view span_id, const codec::SpanValue& decoded) {
          SpanRecord& record = records.emplace_back();
          record.span.assign(decoded.span.data(), decoded.span.size());
          record.span_id.assign(span_id.data(), span_id.size());
          record.start_unix_nanos = decoded.start_unix_nanos;
          record.end_unix_nanos = decoded.end_unix_nanos;
          record.is_error = decoded.is_error;
          record.is_root = decoded.is_root;

          slot_key.clear();
          keys::AppendBigEndian64(decoded.resource_ref, &slot_key);
          codec::PutLengthPrefixed(decoded.scope, &slot_key);
          codec::PutLengthPrefixed(decoded.scope_schema_url, &slot_key);
          auto [slot, inserted] = slot_by_key.try_emplace(slot_key, slots.size());
          if (inserted) {
            slots.push_back(OriginSlot{decoded.resource_ref, std::string(decoded.scope),
                                       std::string(decoded.scope_schema_url)});
          }
          slot_of_span.push_back(slot->second);
        });
    if (!decoded_all.ok()) {
      return absl::DataLossError(absl::StrCat("trace ", trace_hex, " span ", ToHex(parts.span_id),
                                              parts.group ? " (first of a group)" : "", ": ",
                                              decoded_all.message()));
    }
  }
  if (!it->status().ok()) {
    return FromRocksDbStatus(
        it->status(),
        absl::StrCat("reading trace ", trace_hex, " from rocksdb at \"", impl.options.path, "\""));
  }
  it.reset();
  if (records.empty()) return absl::NotFoundError(absl::StrCat("trace ", trace_hex, " not found"));
  // Groups hold spans of any time: ordered by start time and span id like single spans' keys, a
  // span written twice (a kept part handed on again after a restart) once.
  if (any_group) SortAndDeduplicate(&records, &slot_of_span);

  // Fetch each referenced resource once.
  std::vector<uint64_t> refs;
  for (const OriginSlot& slot : slots) refs.push_back(slot.resource_ref);
  std::sort(refs.begin(), refs.end());
  refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
  std::vector<std::string> ref_keys;
  std::vector<rocksdb::Slice> ref_slices;
  ref_keys.reserve(refs.size());
  for (uint64_t ref : refs) ref_slices.emplace_back(ref_keys.emplace_back(keys::ResourceKey(ref)));
  std::vector<std::string> resource_values;
  std::vector<rocksdb::Status> statuses = impl.db->MultiGet(
      read_options, std::vector<rocksdb::ColumnFamilyHandle*>(refs.size(), impl.resources),
      ref_slices, &resource_values);
  absl::flat_hash_map<uint64_t, codec::ResourceValue> resource_by_ref;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      return absl::DataLossError(absl::StrCat("trace ", trace_hex, " refers to resource ",
                                              ToHex(ref_keys[i]), ", which is not stored"));
    }
    if (!statuses[i].ok()) {
      return FromRocksDbStatus(
          statuses[i], absl::StrCat("reading resource ", ToHex(ref_keys[i]), " of trace ",
                                    trace_hex, " from rocksdb at \"", impl.options.path, "\""));
    }
    codec::ResourceValue resource;
    if (absl::Status s = codec::DecodeResourceValue(resource_values[i], &resource); !s.ok()) {
      return absl::DataLossError(absl::StrCat("resource ", ToHex(ref_keys[i]), " of trace ",
                                              trace_hex, ": ", s.message()));
    }
    resource_by_ref.emplace(refs[i], resource);
  }

  std::vector<SpanOriginPtr> origins;
  origins.reserve(slots.size());
  for (OriginSlot& slot : slots) {
    const codec::ResourceValue& resource = resource_by_ref.at(slot.resource_ref);
    auto origin = std::make_shared<SpanOrigin>();
    origin->resource = std::string(resource.resource);
    origin->resource_schema_url = std::string(resource.schema_url);
    origin->scope = std::move(slot.scope);
    origin->scope_schema_url = std::move(slot.scope_schema_url);
    origin->service_name = std::string(resource.service_name);
    origins.push_back(std::move(origin));
  }
  for (size_t i = 0; i < records.size(); ++i) records[i].origin = origins[slot_of_span[i]];
  return records;
}

absl::StatusOr<std::vector<std::string>> RocksDbSpanStore::FindTraceIds(absl::string_view service,
                                                                        absl::Time start,
                                                                        absl::Time end,
                                                                        size_t limit) {
  Impl& impl = *impl_;
  std::vector<std::string> trace_ids;
  const uint64_t lo = ClampedKeyTime(start);
  const uint64_t hi = ClampedKeyTime(end);
  if (limit == 0 || hi <= lo) return trace_ids;

  const std::string lower = keys::ServiceIndexTimeBound(service, lo);
  const std::string upper = keys::ServiceIndexTimeBound(service, hi);
  const size_t key_size = lower.size() + keys::kTraceIdSize;  // prefix · time · trace id
  const rocksdb::Slice lower_slice(lower);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &lower_slice;
  read_options.iterate_upper_bound = &upper_slice;
  absl::flat_hash_set<std::string> seen;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(read_options, impl.indexes));
  // Newest first: walk the time range backwards.
  for (it->SeekToLast(); it->Valid() && trace_ids.size() < limit; it->Prev()) {
    const absl::string_view key = ToView(it->key());
    // Keys of a service whose name extends `service` past a 0x00 byte can fall in the range;
    // they are longer.
    if (key.size() != key_size) continue;
    keys::ServiceIndexKeyParts parts;
    if (!keys::ParseServiceIndexKey(key, &parts) || parts.service != service) continue;
    if (parts.start_time < lo || parts.start_time >= hi) continue;
    if (seen.emplace(parts.trace_id).second) trace_ids.emplace_back(parts.trace_id);
  }
  if (!it->status().ok()) {
    return FromRocksDbStatus(it->status(),
                             absl::StrCat("scanning the index of service \"", service,
                                          "\" in rocksdb at \"", impl.options.path, "\""));
  }
  return trace_ids;
}

std::vector<std::pair<std::string, uint64_t>> RocksDbSpanStore::DiskBytesPerColumnFamily() {
  std::vector<std::pair<std::string, uint64_t>> result;
  for (rocksdb::ColumnFamilyHandle* handle : impl_->handles) {
    uint64_t bytes = 0;
    if (!impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kLiveSstFilesSize, &bytes)) {
      bytes = 0;
    }
    uint64_t blob_bytes = 0;  // values kept in blob files (order_hold)
    if (impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kTotalBlobFileSize,
                                  &blob_bytes)) {
      bytes += blob_bytes;
    }
    result.emplace_back(handle->GetName(), bytes);
  }
  return result;
}

std::vector<std::pair<std::string, uint64_t>> RocksDbSpanStore::MemTableBytesPerColumnFamily() {
  std::vector<std::pair<std::string, uint64_t>> result;
  for (rocksdb::ColumnFamilyHandle* handle : impl_->handles) {
    uint64_t bytes = 0;
    if (!impl_->db->GetIntProperty(handle, rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes)) {
      bytes = 0;
    }
    result.emplace_back(handle->GetName(), bytes);
  }
  return result;
}

uint64_t RocksDbSpanStore::BlockCacheBytes() {
  return impl_->block_cache != nullptr ? impl_->block_cache->GetUsage() : 0;
}

uint64_t RocksDbSpanStore::ApproximateDiskBytes() {
  uint64_t total = 0;
  for (const auto& [name, bytes] : DiskBytesPerColumnFamily()) total += bytes;
  rocksdb::VectorLogPtr wal_files;
  if (impl_->db->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& file : wal_files) total += file->SizeFileBytes();
  }
  return total;
}

absl::Status RocksDbSpanStore::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint directory \"", dir, "\" already exists"));
  }
  const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint directory \"", dir, "\": cannot create its parent: ", ec.message()));
    }
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  if (s.ok()) s = checkpoint->CreateCheckpoint(dir);
  return FromRocksDbStatus(
      s, absl::StrCat("checkpoint of rocksdb at \"", impl_->options.path, "\" into \"", dir, "\""));
}

absl::StatusOr<std::vector<bool>> RocksDbSpanStore::ContainsSpans(
    absl::string_view trace_id, const std::vector<SpanRecord>& spans) {
  Impl& impl = *impl_;
  std::vector<bool> stored(spans.size(), false);
  if (spans.empty() || trace_id.size() != keys::kTraceIdSize) return stored;
  // (start time, span id) of every span of the trace, single or in a group.
  absl::flat_hash_set<std::pair<int64_t, std::string>> there;
  rocksdb::ReadOptions read_options;
  read_options.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(read_options, impl.spans));
  for (it->Seek(rocksdb::Slice(trace_id.data(), trace_id.size())); it->Valid(); it->Next()) {
    const absl::string_view key = ToView(it->key());
    if (!absl::StartsWith(key, trace_id)) break;
    keys::SpanKeyParts parts;
    if (!keys::ParseSpanKey(key, &parts)) continue;
    if (!parts.group) {  // its key says it all
      there.emplace(parts.start_unix_nanos, std::string(parts.span_id));
      continue;
    }
    TK_RETURN_IF_ERROR(
        codec::ForEachStoredSpan(ToView(it->value()), parts.span_id,
                                 [&](absl::string_view span_id, const codec::SpanValue& decoded) {
                                   there.emplace(decoded.start_unix_nanos, std::string(span_id));
                                 }));
  }
  TK_RETURN_IF_ERROR(FromRocksDbStatus(
      it->status(), absl::StrCat("reading the spans of trace ", ToHex(trace_id))));
  for (size_t i = 0; i < spans.size(); ++i) {
    stored[i] = there.contains(
        std::make_pair(spans[i].start_unix_nanos, std::string(spans[i].span_id.view())));
  }
  return stored;
}

bool RocksDbSpanStore::writable() const { return !impl_->guard->failed(); }
uint64_t RocksDbSpanStore::write_refusals() const { return impl_->guard->refused(); }

absl::Status RocksDbSpanStore::Flush() {
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  return FromRocksDbStatus(impl_->db->Flush(flush_options, impl_->handles),
                           absl::StrCat("flushing rocksdb at \"", impl_->options.path, "\""));
}

absl::Status RocksDbSpanStore::CompactSpans() {
  TK_RETURN_IF_ERROR(Flush());
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* handle : {impl_->spans, impl_->indexes}) {
    TK_RETURN_IF_ERROR(
        FromRocksDbStatus(impl_->db->CompactRange(compact, handle, nullptr, nullptr),
                          absl::StrCat("compacting ", handle->GetName(), " of rocksdb at \"",
                                       impl_->options.path, "\"")));
  }
  return absl::OkStatus();
}

namespace {

class RocksDbQueueStore final : public exporter::QueueStore {
 public:
  RocksDbQueueStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, bool sync,
                    std::string path, WriteGuard* guard)
      : db_(db),
        family_(family),
        guard_(guard),
        describe_(
            absl::StrCat("rocksdb at \"", path, "\" (column family ", kExportQueueFamily, ")")) {
    write_options_.sync = sync;
  }

  absl::StatusOr<uint64_t> Append(uint64_t seq, absl::Time enqueued,
                                  const std::vector<SpanRecord>& spans) override {
    std::string value;
    codec::EncodeSpanBatch(spans, absl::ToUnixNanos(enqueued), &value);
    const std::string key = Key(seq);
    TK_RETURN_IF_ERROR(guard_->Run(
        [&] { return db_->Put(write_options_, family_, key, value); },
        absl::StrCat("appending batch ", seq, " (", spans.size(), " spans) to ", describe_)));
    return key.size() + value.size();
  }

  absl::StatusOr<std::vector<SpanRecord>> Read(uint64_t seq) override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), family_, Key(seq), &value);
    if (s.IsNotFound()) {
      return absl::NotFoundError(absl::StrCat("batch ", seq, " not in ", describe_));
    }
    TK_RETURN_IF_ERROR(
        FromRocksDbStatus(s, absl::StrCat("reading batch ", seq, " from ", describe_)));
    codec::SpanBatchValue batch;
    if (absl::Status d = codec::DecodeSpanBatch(value, &batch); !d.ok()) {
      return absl::DataLossError(absl::StrCat("batch ", seq, " in ", describe_, ": ", d.message()));
    }
    return std::move(batch.spans);
  }

  absl::Status Remove(uint64_t seq) override {
    return guard_->Run([&] { return db_->Delete(write_options_, family_, Key(seq)); },
                       absl::StrCat("removing batch ", seq, " from ", describe_));
  }

  absl::StatusOr<std::vector<exporter::QueueEntryInfo>> List() override {
    std::vector<exporter::QueueEntryInfo> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const absl::string_view key = ToView(it->key());
      const absl::string_view value = ToView(it->value());
      exporter::QueueEntryInfo& info = out.emplace_back();
      int64_t enqueued = 0;
      if (key.size() != 8) {
        return absl::DataLossError(
            absl::StrCat(describe_, ": key ", ToHex(key), " has ", key.size(), " bytes, want 8"));
      }
      info.seq = keys::DecodeBigEndian64(key.data());
      info.bytes = key.size() + value.size();
      if (absl::Status d = codec::DecodeSpanBatchHeader(value, &enqueued, &info.span_count);
          !d.ok()) {
        return absl::DataLossError(
            absl::StrCat("batch ", info.seq, " in ", describe_, ": ", d.message()));
      }
      info.enqueued = absl::FromUnixNanos(enqueued);
    }
    TK_RETURN_IF_ERROR(FromRocksDbStatus(it->status(), absl::StrCat("listing ", describe_)));
    return out;
  }

  std::string Describe() const override { return describe_; }

 private:
  static std::string Key(uint64_t seq) {
    std::string key;
    keys::AppendBigEndian64(seq, &key);
    return key;
  }

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const family_;
  WriteGuard* const guard_;
  const std::string describe_;
  rocksdb::WriteOptions write_options_;
};

}  // namespace

std::unique_ptr<exporter::QueueStore> RocksDbSpanStore::OpenExportQueue() {
  return std::make_unique<RocksDbQueueStore>(impl_->db.get(), impl_->export_queue,
                                             impl_->options.sync, impl_->options.path,
                                             impl_->guard.get());
}

absl::StatusOr<SpanStorePtr> OpenRocksDbSpanStore(const RocksDbOptions& options) {
  TK_ASSIGN_OR_RETURN(std::unique_ptr<RocksDbSpanStore> store, RocksDbSpanStore::Create(options));
  return SpanStorePtr(std::move(store));
}

}  // namespace tracekeep::storage

namespace tracekeep::storage {
namespace {

class RocksDbKvTable final : public KvTable {
 public:
  RocksDbKvTable(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                 const rocksdb::WriteOptions& write_options, WriteGuard* guard)
      : db_(db), family_(family), write_options_(write_options), guard_(guard) {}

  absl::Status Write(const std::vector<KvWrite>& writes) override {
    rocksdb::WriteBatch batch;
    TK_RETURN_IF_ERROR(Add(writes, &batch));
    return guard_->Run([&] { return db_->Write(write_options_, &batch); },
                       absl::StrCat("writing ", TableName()));
  }

  absl::Status WriteWith(const std::vector<KvWrite>& writes, KvTable* other,
                         const std::vector<KvWrite>& other_writes) override {
    auto* table = dynamic_cast<RocksDbKvTable*>(other);
    if (table == nullptr || table->db_ != db_) {
      return absl::InvalidArgumentError(
          absl::StrCat("writing ", TableName(), ": the other table is not of the same database"));
    }
    rocksdb::WriteBatch batch;
    TK_RETURN_IF_ERROR(Add(writes, &batch));
    TK_RETURN_IF_ERROR(table->Add(other_writes, &batch));
    return guard_->Run([&] { return db_->Write(write_options_, &batch); },
                       absl::StrCat("writing ", TableName(), " with ", table->TableName()));
  }

  absl::Status EraseRange(absl::string_view begin, absl::string_view end) override {
    return guard_->Run(
        [&] {
          return db_->DeleteRange(write_options_, family_,
                                  rocksdb::Slice(begin.data(), begin.size()),
                                  rocksdb::Slice(end.data(), end.size()));
        },
        absl::StrCat("erasing a range of ", TableName()));
  }

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override {
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), family_, rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocksDbStatus(s, absl::StrCat("reading ", TableName()));
    return std::optional<std::string>(std::move(value));
  }

  absl::Status Scan(absl::string_view prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) override {
    return ScanFrom(prefix, prefix, fn);
  }

  absl::Status ScanFrom(
      absl::string_view prefix, absl::string_view start,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) override {
    if (start < prefix) start = prefix;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
    for (it->Seek(rocksdb::Slice(start.data(), start.size())); it->Valid(); it->Next()) {
      const absl::string_view key = ToView(it->key());
      if (!absl::StartsWith(key, prefix)) break;
      if (!fn(key, ToView(it->value()))) break;
    }
    if (!it->status().ok()) {
      return FromRocksDbStatus(it->status(), absl::StrCat("scanning ", TableName()));
    }
    return absl::OkStatus();
  }

 private:
  std::string TableName() const { return absl::StrCat("column family ", family_->GetName()); }

  absl::Status Add(const std::vector<KvWrite>& writes, rocksdb::WriteBatch* batch) {
    for (const KvWrite& w : writes) {
      rocksdb::Status s =
          w.erase ? batch->Delete(family_, w.key) : batch->Put(family_, w.key, w.value);
      if (!s.ok()) return FromRocksDbStatus(s, TableName());
    }
    return absl::OkStatus();
  }

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* family_;
  rocksdb::WriteOptions write_options_;
  WriteGuard* guard_;
};

}  // namespace

absl::StatusOr<KvTablePtr> RocksDbSpanStore::OpenTable(const std::string& name) {
  Impl& impl = *impl_;
  if (name == kSpansFamily || name == kIndexesFamily || name == kResourcesFamily ||
      name == rocksdb::kDefaultColumnFamilyName || name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rocksdb table \"", name, "\": reserved by the span store"));
  }
  std::lock_guard<std::mutex> lock(impl.tables_mu);
  rocksdb::ColumnFamilyHandle* family = nullptr;
  for (rocksdb::ColumnFamilyHandle* h : impl.handles) {
    if (h->GetName() == name) family = h;
  }
  if (family == nullptr) {
    rocksdb::Status s = impl.db->CreateColumnFamily(
        TableOptions(impl.table_cf, impl.hold_table_cf, name), name, &family);
    if (!s.ok()) {
      return FromRocksDbStatus(s, absl::StrCat("creating column family \"", name, "\""));
    }
    impl.handles.push_back(family);
  }
  return KvTablePtr(
      new RocksDbKvTable(impl.db.get(), family, impl.write_options, impl.guard.get()));
}

}  // namespace tracekeep::storage
