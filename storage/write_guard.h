// Stops writes to a RocksDB database once one has failed, until DB::Resume() succeeds.
//
// RocksDB 7.8 (Debian 12) is built with assertions: after a write-ahead-log write failed (disk
// full, IO error), the next write to that log aborts the process
// (WritableFileWriter::AssertFalseAndGetStatusForPrevError, facebook/rocksdb#12448). Every writer
// of a database therefore asks its guard before writing and reports the result afterwards; while
// the database is failed, the guard refuses the write (no write is issued) and tries DB::Resume()
// at most once per `resume_interval`.
#ifndef TRACEKEEP_STORAGE_WRITE_GUARD_H_
#define TRACEKEEP_STORAGE_WRITE_GUARD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"

namespace rocksdb {
class DB;
class EventListener;
class Logger;
class Status;
}  // namespace rocksdb

namespace tracekeep::storage {

class WriteGuard {
 public:
  // `describe` names the database in messages, e.g. "journal at \"/data/journal\"". `clock`
  // (nullptr = Clock::Real()) must outlive the guard.
  WriteGuard(std::string describe, const Clock* clock,
             absl::Duration resume_interval = absl::Seconds(1));
  ~WriteGuard();
  WriteGuard(const WriteGuard&) = delete;
  WriteGuard& operator=(const WriteGuard&) = delete;

  // Add to DBOptions::listeners before opening: a background error (a failed flush or
  // compaction) marks the database failed as well, and RocksDB's automatic recovery is turned
  // off in favour of the guard's rate-limited DB::Resume().
  std::shared_ptr<rocksdb::EventListener> Listener();
  // The opened database. Must be called before BeforeWrite().
  void Attach(rocksdb::DB* db);

  // Call before each write. OK: write. kResourceExhausted naming the database and the RocksDB
  // error: do not write. While failed, tries DB::Resume() (at most once per resume_interval);
  // when it succeeds, writes are admitted again.
  [[nodiscard]] absl::Status BeforeWrite();
  // Call with the result of each write: an IO error (disk full included) or a corruption marks
  // the database failed. Busy / TryAgain / invalid arguments do not.
  void AfterWrite(const rocksdb::Status& status);
  // BeforeWrite, `write` unless refused, AfterWrite; the refusal or the write's status converted
  // by FromRocksDbStatus, prefixed with `context`.
  [[nodiscard]] absl::Status Run(absl::FunctionRef<rocksdb::Status()> write,
                                 absl::string_view context);

  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Writes refused while failed, and successful resumes.
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t resumes() const { return resumes_.load(std::memory_order_relaxed); }

 private:
  class EventListenerImpl;
  void MarkFailed(const std::string& error);

  const std::string describe_;
  const Clock* const clock_;
  const absl::Duration resume_interval_;
  rocksdb::DB* db_ = nullptr;
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> resumes_{0};
  std::mutex mu_;
  std::string error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_resume_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool resuming_ ABSL_GUARDED_BY(mu_) = false;  // one thread calls DB::Resume() at a time
};

// RocksDB's info log for DBOptions::info_log: warnings and errors go to tracekeep's log, nothing
// to a LOG file in the database directory (on a full disk, the write after a failed LOG write
// aborts the process just like the write-ahead log's). `describe` names the database.
std::shared_ptr<rocksdb::Logger> NewRocksDbLogger(std::string describe);

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_WRITE_GUARD_H_
