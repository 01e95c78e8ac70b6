// A small RocksDB span store for tests that keep records next to it (the order tracker's tables,
// the decision log): no block cache, 4 MiB memtables.
#ifndef TRACEKEEP_TESTS_STORAGE_TEST_STORE_H_
#define TRACEKEEP_TESTS_STORAGE_TEST_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::storage {

inline absl::StatusOr<std::unique_ptr<RocksDbSpanStore>> OpenTestStore(const std::string& path) {
  RocksDbOptions o;
  o.path = path;
  o.block_cache_mib = 0;
  o.write_buffer_mib = 4;
  return RocksDbSpanStore::Create(o);
}

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_TESTS_STORAGE_TEST_STORE_H_
