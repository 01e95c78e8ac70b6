// The state of a RocksDbSpanStore, shared by its files (rocksdb_span_store.cc: writes and trace
// reads; rocksdb_trace_index.cc: the Jaeger query indexes). Private to storage/: it includes
// RocksDB's headers.
#ifndef TRACEKEEP_STORAGE_ROCKSDB_SPAN_STORE_IMPL_H_
#define TRACEKEEP_STORAGE_ROCKSDB_SPAN_STORE_IMPL_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "collector/common/logging.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/rocksdb_span_store.h"
#include "storage/trace_index_builder.h"
#include "storage/write_guard.h"

namespace tracekeep::storage {

struct RocksDbSpanStore::Impl {
  RocksDbOptions options;
  // Refuses writes after a failed one until the database resumes (write_guard.h). Declared
  // before db, so destroyed after it: the database holds the guard's listener.
  std::unique_ptr<WriteGuard> guard;
  std::unique_ptr<rocksdb::DB> db;
  // Every open column family: spans, indexes, resources, then the others. Owned.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* spans = nullptr;
  rocksdb::ColumnFamilyHandle* indexes = nullptr;
  rocksdb::ColumnFamilyHandle* resources = nullptr;
  rocksdb::ColumnFamilyHandle* export_queue = nullptr;
  // Options of the tables of OpenTable() (orders, order_index, decisions; order_hold), when
  // created and when reopened (TableOptions).
  rocksdb::ColumnFamilyOptions table_cf;
  rocksdb::ColumnFamilyOptions hold_table_cf;
  std::shared_ptr<rocksdb::Cache> block_cache;  // nullptr: none
  // Referenced by the column family options; ~Impl closes the database before they go.
  std::unique_ptr<rocksdb::CompactionFilter> spans_filter;
  std::unique_ptr<rocksdb::CompactionFilter> indexes_filter;
  rocksdb::WriteOptions write_options;
  StoreStats stats;
  AttributeKeys indexed_attributes;  // order.id, then options.indexed_attributes
  std::unique_ptr<IndexWriteState> index_state;
  std::mutex tables_mu;  // guards handles against OpenTable
  // Resources written by this store since it was opened. A resource's key is the hash of its
  // content and resources are never deleted, so a batch writes only the resources not written
  // before (at 250 k order spans/s, rewriting the few resources of every batch made ~1,400
  // memtable inserts of ~350 bytes a second). Bounded: forgets them all when full, and writes
  // them again. Added to only after the batch that wrote them was written.
  std::mutex resources_mu;
  absl::flat_hash_set<uint64_t> resources_written ABSL_GUARDED_BY(resources_mu);
  static constexpr size_t kMaxResourcesRemembered = size_t{1} << 16;
  // The sequence of the next span group key: starts at the wall clock's Unix nanoseconds when the
  // store opens, so that keys written after a restart differ from those written before it.
  std::atomic<uint64_t> group_sequence{0};

  ~Impl() {
    if (db == nullptr) return;
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      rocksdb::Status s = db->DestroyColumnFamilyHandle(handle);
      if (!s.ok()) {
        TK_LOG(Warning) << "rocksdb at \"" << options.path << "\": " << s.ToString();
      }
    }
    rocksdb::Status s = db->Close();
    if (!s.ok()) {
      TK_LOG(Warning) << "closing rocksdb at \"" << options.path << "\": " << s.ToString();
    }
  }
};

inline absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_ROCKSDB_SPAN_STORE_IMPL_H_
