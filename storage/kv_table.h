// A plain key-value table: one column family of the span store's RocksDB database, lent to a
// component that keeps its own records next to the spans (the order tracker's `orders` and
// `order_hold`). Keys and values are opaque bytes; keys iterate in bytewise order.
#ifndef TRACEKEEP_STORAGE_KV_TABLE_H_
#define TRACEKEEP_STORAGE_KV_TABLE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracekeep::storage {

// One write of a batch: a put, or a delete when `value` is empty and `erase` is set.
struct KvWrite {
  std::string key;
  std::string value;
  bool erase = false;
};

// Thread-safe. Writes follow the store's durability (RocksDbOptions::sync).
class KvTable {
 public:
  virtual ~KvTable() = default;
  // Applies every write atomically.
  [[nodiscard]] virtual absl::Status Write(const std::vector<KvWrite>& writes) = 0;
  // Removes every key in [begin, end).
  [[nodiscard]] virtual absl::Status EraseRange(absl::string_view begin, absl::string_view end) = 0;
  // std::nullopt when the key is absent.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) = 0;
  // Calls `fn` for every key starting with `prefix`, in key order, until it returns false.
  [[nodiscard]] virtual absl::Status Scan(
      absl::string_view prefix,
      const std::function<bool(absl::string_view key, absl::string_view value)>& fn) = 0;
  // Scan() from the first key >= `start` instead of the first key of `prefix`: the continuation
  // of a listing, without reading the keys before it. A `start` below `prefix` scans it all.
  [[nodiscard]] virtual absl::Status ScanFrom(
      absl::string_view prefix, absl::string_view start,
      const std::function<bool(absl::string_view key, absl::string_view value)>& fn) = 0;
  // Applies `writes` to this table and `other_writes` to `other` atomically: both or neither
  // (a record and its index entries). `other` must be a table of the same database, else
  // kInvalidArgument and nothing is written.
  [[nodiscard]] virtual absl::Status WriteWith(const std::vector<KvWrite>& writes, KvTable* other,
                                               const std::vector<KvWrite>& other_writes) = 0;
};
using KvTablePtr = std::unique_ptr<KvTable>;

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_KV_TABLE_H_
