// A small RocksDB span store for tests that keep records next to it (the order tracker's tables,
// the decision log): no block cache, 4 MiB memtables.
#ifndef TRACEKEEP_TESTS_STORAGE_TEST_STORE_H_
#define TRACEKEEP_TESTS_STORAGE_TEST_STORE_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "absl/status/statusor.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::storage {

// A directory made with mkdtemp, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tk_test_XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline absl::StatusOr<std::unique_ptr<RocksDbSpanStore>> OpenTestStore(const std::string& path) {
  RocksDbOptions o;
  o.path = path;
  o.block_cache_mib = 0;
  o.write_buffer_mib = 4;
  return RocksDbSpanStore::Create(o);
}

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_TESTS_STORAGE_TEST_STORE_H_
