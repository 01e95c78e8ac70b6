#include "storage/write_guard.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/listener.h"
#include "rocksdb/status.h"
#include "storage/rocksdb_status.h"

namespace tracekeep::storage {

class WriteGuard::EventListenerImpl final : public rocksdb::EventListener {
 public:
  explicit EventListenerImpl(WriteGuard* guard) : guard_(guard) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason /*reason*/,
                         rocksdb::Status* bg_error) override {
    if (bg_error != nullptr && !bg_error->ok()) guard_->MarkFailed(bg_error->ToString());
  }
  // RocksDB's own recovery from a full disk (its SstFileManager polling for free space) would
  // make DB::Resume() answer Busy on its schedule; the guard resumes on its own, rate-limited.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status /*bg_error*/,
                            bool* auto_recovery) override {
    if (auto_recovery != nullptr) *auto_recovery = false;
  }

 private:
  WriteGuard* const guard_;
};

WriteGuard::WriteGuard(std::string describe, const Clock* clock, absl::Duration resume_interval)
    : describe_(std::move(describe)),
      clock_(clock != nullptr ? clock : Clock::Real()),
      resume_interval_(resume_interval) {}

WriteGuard::~WriteGuard() = default;

std::shared_ptr<rocksdb::EventListener> WriteGuard::Listener() {
  return std::make_shared<EventListenerImpl>(this);
}

void WriteGuard::Attach(rocksdb::DB* db) { db_ = db; }

void WriteGuard::MarkFailed(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.load(std::memory_order_relaxed)) {
    TK_LOG(Error) << describe_ << ": " << error << "; writes are refused until RocksDB resumes";
    // The first attempt to resume waits a full interval: the space has just run out.
    last_resume_ = clock_->Now();
  }
  error_ = error;
  failed_.store(true, std::memory_order_release);
}

absl::Status WriteGuard::BeforeWrite() {
  if (!failed_.load(std::memory_order_acquire)) return absl::OkStatus();
  bool try_resume = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = clock_->Now();
    if (db_ != nullptr && !resuming_ && now - last_resume_ >= resume_interval_) {
      last_resume_ = now;
      resuming_ = true;
      try_resume = true;
    }
  }
  if (try_resume) {
    // Not under mu_: a failing Resume() reports its error through the listener (MarkFailed), on
    // this thread or a background one.
    const rocksdb::Status s = db_->Resume();
    std::lock_guard<std::mutex> lock(mu_);
    resuming_ = false;
    if (s.ok()) {
      failed_.store(false, std::memory_order_release);
      resumes_.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Info) << describe_ << ": resumed after \"" << error_
                   << "\"; writes are accepted again";
      error_.clear();
      return absl::OkStatus();
    }
    error_ = s.ToString();
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  return absl::ResourceExhaustedError(
      absl::StrCat(describe_, ": writes refused after a failed write (", error_,
                   "); retried at most once per ", absl::FormatDuration(resume_interval_)));
}

void WriteGuard::AfterWrite(const rocksdb::Status& status) {
  if (status.ok() || status.IsBusy() || status.IsTryAgain() || status.IsIncomplete() ||
      status.IsInvalidArgument() || status.IsNotSupported()) {
    return;
  }
  MarkFailed(status.ToString());
}

absl::Status WriteGuard::Run(absl::FunctionRef<rocksdb::Status()> write,
                             absl::string_view context) {
  if (absl::Status refused = BeforeWrite(); !refused.ok()) {
    return absl::Status(refused.code(), absl::StrCat(context, ": ", refused.message()));
  }
  const rocksdb::Status s = write();
  AfterWrite(s);
  if (s.ok()) return absl::OkStatus();
  return FromRocksDbStatus(s, absl::StrCat(context, ": ", describe_));
}

namespace {

class ForwardingLogger final : public rocksdb::Logger {
 public:
  explicit ForwardingLogger(std::string describe)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), describe_(std::move(describe)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char buffer[1024];
    std::vsnprintf(buffer, sizeof(buffer), format, ap);
    // Opening a database that does not exist yet (create_if_missing) logs this as an error.
    if (std::strstr(buffer, "Error when reading") != nullptr &&
        std::strstr(buffer, "dir NotFound") != nullptr) {
      return;
    }
    TK_LOG(Warning) << describe_ << ": " << buffer;
  }

 private:
  const std::string describe_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewRocksDbLogger(std::string describe) {
  return std::make_shared<ForwardingLogger>(std::move(describe));
}

}  // namespace tracekeep::storage
