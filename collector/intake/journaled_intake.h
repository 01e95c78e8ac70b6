// Crash-safe intake: accepted spans are written to the journal before the client is
// acknowledged, replayed into the sampler after a crash, and dropped from the journal once every
// trace they belong to has been decided.
#ifndef TRACEKEEP_COLLECTOR_INTAKE_JOURNALED_INTAKE_H_
#define TRACEKEEP_COLLECTOR_INTAKE_JOURNALED_INTAKE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/common/periodic_thread.h"
#include "collector/pipeline/consumer.h"
#include "collector/sampling/sampler.h"
#include "storage/journal.h"

namespace tracekeep::intake {

struct JournaledIntakeOptions {
  // How often entries of decided traces are removed from the journal. The shorter, the fewer
  // traces a crash replays (and may export twice). Default: 200ms.
  absl::Duration truncate_interval = absl::Milliseconds(200);
  // Entries that arrived at or after this time are still needed by someone besides the sampler
  // (the order tracker's holds that point into the journal); InfiniteFuture when none. Called on
  // the truncation thread. Default: none.
  std::function<absl::Time()> holds_low_water_mark;
};

class JournaledIntake final : public SpanIntake, public Component {
 public:
  // Neither pointer is owned; both must outlive this object.
  JournaledIntake(const JournaledIntakeOptions& options, storage::Journal* journal,
                  sampling::Sampler* sampler, Clock* clock);
  ~JournaledIntake() override;

  // Journals the batch (durable per the journal's sync setting), then offers it to the sampler;
  // if the sampler refuses, the journal entry is removed again. Acknowledge only on OK.
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;
  // The sampler's answer: a request it would refuse is not journaled at all.
  absl::Status Precheck(int64_t span_count) override;

  // Replays every journal entry into the sampler (after a crash or an unclean stop). Call before
  // the receivers start. Returns the number of spans replayed.
  [[nodiscard]] absl::StatusOr<int64_t> Recover();

  // Starts the truncation thread.
  absl::Status Start() override;
  // Stops the truncation thread after one last truncation. Call after the sampler has been
  // shut down (it decides what is pending), so that a clean stop leaves an empty journal.
  // Does nothing when Start() was not called.
  void Shutdown(absl::Time deadline) override;

  // Removes every entry older than what the pipeline still needs. Returns the time used.
  absl::Time TruncateOnce();

  // Every entry that arrived before this time has been removed (the last truncation's mark).
  absl::Time truncated_through() const { return absl::FromUnixNanos(truncated_through_.load()); }

 private:
  const JournaledIntakeOptions options_;
  storage::Journal* const journal_;
  sampling::Sampler* const sampler_;
  Clock* const clock_;
  std::mutex mu_;
  // Offers between their journal write and their hand-over to the sampler, by journal time.
  std::multimap<int64_t, int> in_flight_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> truncated_through_{0};
  PeriodicThread truncator_;
};

}  // namespace tracekeep::intake

#endif  // TRACEKEEP_COLLECTOR_INTAKE_JOURNALED_INTAKE_H_
