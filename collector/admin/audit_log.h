// The admin API's audit log: one JSON line per call that changes something (or tried to), in
// the data directory, so that "who changed the policies, and from where" has an answer.
//
//   {"time":"2026-11-30T10:41:07.123Z","method":"SetPolicies","caller":"alice","via":"token",
//    "role":"operator","peer":"ipv4:127.0.0.1:50122","request":{...},"result":"OK",
//    "message":"","policy_diff":["-  - name: errors","+  - name: all-errors"]}
//
// Secrets (tokens) never appear: the caller is named by the name its token file gives it.
#ifndef TRACEKEEP_COLLECTOR_ADMIN_AUDIT_LOG_H_
#define TRACEKEEP_COLLECTOR_ADMIN_AUDIT_LOG_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tracekeep::admin {

// One audited call.
struct AuditEvent {
  absl::Time time;
  std::string method;  // "SetPolicies", "KeepOrder", "Drain", "Checkpoint"
  std::string caller;  // the token's or certificate's name; "" when not identified
  std::string via;     // "token", "certificate", "anonymous" (no admin auth configured), "none"
  std::string role;    // "viewer", "operator", "none"
  std::string peer;    // gRPC peer, e.g. "ipv4:127.0.0.1:50122"
  // The request's fields worth recording, as (name, value) pairs.
  std::vector<std::pair<std::string, std::string>> request;
  absl::Status result;
  std::vector<std::string> policy_diff;  // SetPolicies only: "-old line" / "+new line"
};

// The `result` label of tracekeep_admin_audit_events_total: "ok", "denied" (UNAUTHENTICATED or
// PERMISSION_DENIED), "failed" (any other error).
enum class AuditResult { kOk = 0, kDenied = 1, kFailed = 2 };
inline constexpr int kNumAuditResults = 3;
const char* AuditResultName(AuditResult result);
AuditResult AuditResultOf(const absl::Status& status);

// The methods that change something, in label order.
inline constexpr const char* kAuditedMethods[] = {"SetPolicies", "KeepOrder", "Drain",
                                                  "Checkpoint"};
inline constexpr int kNumAuditedMethods = 4;

// The lines that differ between two texts, in order: "-<line of before>" / "+<line of after>"
// (a longest-common-subsequence diff; policy sets are small).
std::vector<std::string> LineDiff(const std::string& before, const std::string& after);

struct AuditLogOptions {
  // Size-based rotation: before a line would take the file past this many bytes, the file is
  // renamed <path>.1 (an older <path>.1 becomes <path>.2, and so on) and a new one is started.
  // A line longer than this gets a file of its own. 0 = never rotated. Default: 0.
  uint64_t max_bytes = 0;
  // Rotated files kept (<path>.1 ... <path>.<max_files>); the oldest beyond are deleted. At
  // least 1. Default: 10.
  int max_files = 10;
};

// Appends JSON lines to a file (flushed and fdatasync'ed per event: admin calls are rare),
// rotated by size (AuditLogOptions). Every file is mode 0600. Thread-safe.
class AuditLog {
 public:
  // Opens (creates, mode 0600) `path` for appending.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AuditLog>> Open(
      const std::string& path, const AuditLogOptions& options = {});
  ~AuditLog();

  // Writes `event` and counts it. A write error is counted and logged, never returned: the call
  // itself already happened.
  void Record(const AuditEvent& event);

  const std::string& path() const { return path_; }
  uint64_t events(int method_index, AuditResult result) const {
    return events_[method_index][static_cast<int>(result)].load(std::memory_order_relaxed);
  }
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t rotations() const { return rotations_.load(std::memory_order_relaxed); }

  // The JSON line of `event` (without the newline).
  static std::string ToJson(const AuditEvent& event);

 private:
  AuditLog(std::string path, const AuditLogOptions& options, int fd, uint64_t size)
      : path_(std::move(path)), options_(options), fd_(fd), size_(size) {}
  // Renames the files one step older and starts a new one at path_.
  absl::Status RotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const AuditLogOptions options_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  uint64_t size_ ABSL_GUARDED_BY(mu_);  // bytes in the current file
  std::atomic<uint64_t> events_[kNumAuditedMethods][kNumAuditResults] = {};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> rotations_{0};
};

}  // namespace tracekeep::admin

#endif  // TRACEKEEP_COLLECTOR_ADMIN_AUDIT_LOG_H_
