// The intake journal: every batch of spans accepted from a client, written before the client is
// acknowledged, kept until every trace it touched has been decided (and what was kept is stored),
// and replayed on start-up after a crash. A RocksDB database of its own (default
// <data_dir>/journal), so that its write-ahead log can be synced without syncing the span store.
#ifndef TRACEKEEP_STORAGE_JOURNAL_H_
#define TRACEKEEP_STORAGE_JOURNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::storage {

struct JournalOptions {
  // Directory of the journal database; created when missing. Default: "" (must be set).
  std::string path;
  // true: each append returns only after the write-ahead log is fsynced (survives power loss;
  // concurrent appends share one fsync: group commit). false: after the write reached the
  // kernel (survives kill -9 of tracekeep, not a crash of the machine). Default: false.
  bool sync = false;
  // After a failed write (disk full, IO error) the journal refuses appends with
  // kResourceExhausted, issuing no write, and tries to resume the database at most once per this
  // interval (see storage/write_guard.h).
  // Default: 1 second
  absl::Duration resume_interval = absl::Seconds(1);
  // Clock of resume_interval; must outlive the journal. nullptr = Clock::Real().
  // Default: nullptr
  const Clock* clock = nullptr;
};

struct JournalStats {
  std::atomic<uint64_t> batches_appended{0};
  std::atomic<uint64_t> bytes_appended{0};
  std::atomic<uint64_t> append_errors{0};
  std::atomic<uint64_t> batches_replayed{0};
  std::atomic<uint64_t> truncations{0};
};

class Journal {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Journal>> Open(const JournalOptions& options);
  ~Journal();

  // Appends the spans of one accepted request, with the time they arrived. Returns the entry's
  // key (for Erase) once it is durable per `sync`. kResourceExhausted (no write issued) while the
  // database is failed after a write error, until it resumes. Thread-safe.
  [[nodiscard]] absl::StatusOr<std::string> Append(const std::vector<TraceSpans>& traces,
                                                   absl::Time arrival);
  // Removes one entry (a batch the pipeline refused after all). Thread-safe.
  [[nodiscard]] absl::Status Erase(const std::string& key);
  // Removes every entry that arrived before `time`. Thread-safe.
  [[nodiscard]] absl::Status TruncateBefore(absl::Time time);
  // Calls `fn` for every entry, oldest first, with its spans and arrival time.
  [[nodiscard]] absl::Status Replay(
      const std::function<absl::Status(std::vector<TraceSpans>&&, absl::Time)>& fn);
  // Entries currently in the journal, approximately.
  uint64_t ApproximateEntries();
  uint64_t ApproximateDiskBytes();
  const JournalStats& stats() const { return stats_; }
  // False after a failed write until the database resumed (appends are refused meanwhile).
  bool writable() const;
  uint64_t write_refusals() const;

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  JournalStats stats_;
};

// The journal's record encoding of a batch of traces (exposed for tests).
void EncodeJournalRecord(const std::vector<TraceSpans>& traces, std::string* out);
[[nodiscard]] absl::Status DecodeJournalRecord(absl::string_view record,
                                               std::vector<TraceSpans>* out);

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_JOURNAL_H_
