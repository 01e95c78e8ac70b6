// The disk budget of the intake: new data is refused with a retryable status while tracekeep's
// directories use more than storage.max_disk_bytes or their file system has less than
// storage.min_free_disk_bytes free. Data already accepted (pending traces, their decisions, the
// export queue) still goes to disk: refusing at the door early is what leaves room for it.
#ifndef TRACEKEEP_COLLECTOR_INTAKE_DISK_BUDGET_H_
#define TRACEKEEP_COLLECTOR_INTAKE_DISK_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/periodic_thread.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::intake {

struct DiskBudgetOptions {
  // Directories whose files count against max_disk_bytes (the span store and the journal). The
  // first one's file system is the one checked for min_free_bytes.
  std::vector<std::string> paths;
  // Bytes of all files under `paths` together; 0 = no bound. Default: 0.
  uint64_t max_bytes = 0;
  // Free bytes left on the file system of paths[0] (for unprivileged users); 0 = no bound.
  // Default: 0.
  uint64_t min_free_bytes = 0;
  // How often usage and free space are measured (by a thread of this component). Default: 1s.
  absl::Duration refresh_interval = absl::Seconds(1);
};

// Why data is being refused; also the `reason` label value of the refusal counter.
enum class DiskPressure { kNone = 0, kMaxDiskBytes, kMinFreeBytes };
const char* DiskPressureName(DiskPressure pressure);

struct DiskBudgetStats {
  std::atomic<uint64_t> used_bytes{0};  // files under the paths, at the last refresh
  std::atomic<uint64_t> free_bytes{0};  // free on the file system, at the last refresh
  std::atomic<int> pressure{0};         // DiskPressure, as int
  std::atomic<uint64_t> spans_refused_max_disk_bytes{0};
  std::atomic<uint64_t> spans_refused_min_free_bytes{0};
  std::atomic<uint64_t> measurement_errors{0};
};

// Wraps the intake (journal + sampler): refuses while over budget, passes everything on otherwise.
class DiskBudgetIntake final : public SpanIntake, public Component {
 public:
  using UsageFn = std::function<absl::StatusOr<uint64_t>(const std::vector<std::string>& paths)>;
  using FreeFn = std::function<absl::StatusOr<uint64_t>(const std::string& path)>;

  // `inner` must outlive this object. `usage` and `free` default to measuring the file system
  // (DirectoryBytes, FreeBytes); tests inject their own.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DiskBudgetIntake>> Create(
      const DiskBudgetOptions& options, SpanIntake* inner, UsageFn usage = nullptr,
      FreeFn free = nullptr);
  ~DiskBudgetIntake() override;

  // kResourceExhausted (naming the limit, the measured value and the path) while over budget;
  // otherwise the inner intake's answer.
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;
  // The inner intake's answer (a disk budget refusal is left to Offer, which counts it).
  absl::Status Precheck(int64_t span_count) override { return inner_->Precheck(span_count); }

  // Measures once and updates the state. Called by the thread; tests call it directly.
  void Refresh();
  // Starts the refresh thread (after one Refresh()).
  absl::Status Start() override;
  void Shutdown(absl::Time deadline) override;

  const DiskBudgetStats& stats() const { return stats_; }
  DiskPressure pressure() const { return static_cast<DiskPressure>(stats_.pressure.load()); }

 private:
  DiskBudgetIntake(const DiskBudgetOptions& options, SpanIntake* inner, UsageFn usage, FreeFn free);
  const DiskBudgetOptions options_;
  SpanIntake* const inner_;
  const UsageFn usage_;
  const FreeFn free_;
  DiskBudgetStats stats_;
  std::mutex mu_;
  std::string refusal_ ABSL_GUARDED_BY(mu_);  // the message while under pressure
  PeriodicThread refresher_;
};

// Bytes of the regular files under each path (recursively; missing paths count 0).
[[nodiscard]] absl::StatusOr<uint64_t> DirectoryBytes(const std::vector<std::string>& paths);
// Bytes available to unprivileged users on the file system holding `path`.
[[nodiscard]] absl::StatusOr<uint64_t> FreeBytes(const std::string& path);

}  // namespace tracekeep::intake

#endif  // TRACEKEEP_COLLECTOR_INTAKE_DISK_BUDGET_H_
