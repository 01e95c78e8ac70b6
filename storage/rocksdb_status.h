// Conversion of RocksDB statuses to absl::Status. The rocksdb header stays in .cc files: callers
// include <rocksdb/status.h> themselves.
#ifndef TRACEKEEP_STORAGE_ROCKSDB_STATUS_H_
#define TRACEKEEP_STORAGE_ROCKSDB_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class Status;
}

namespace tracekeep::storage {

// OK stays OK. Busy, TryAgain and Incomplete become kUnavailable (retrying can help), NoSpace
// kResourceExhausted, anything else kInternal. The message is "<context>: <rocksdb message>".
absl::Status FromRocksDbStatus(const rocksdb::Status& status, absl::string_view context);

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_ROCKSDB_STATUS_H_
