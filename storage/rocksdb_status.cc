#include "storage/rocksdb_status.h"

#include "absl/strings/str_cat.h"
#include "rocksdb/status.h"

namespace tracekeep::storage {

absl::Status FromRocksDbStatus(const rocksdb::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  if (status.IsBusy() || status.IsTryAgain() || status.IsIncomplete()) {
    return absl::UnavailableError(std::move(message));
  }
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(std::move(message));
  return absl::InternalError(std::move(message));
}

}  // namespace tracekeep::storage
