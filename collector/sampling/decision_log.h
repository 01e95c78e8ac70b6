// Persistence of the sampler's decisions, so that they outlive a crash: the decision caches are
// reloaded at start-up (late spans of a trace decided before the crash follow its decision), and
// spans replayed from the intake journal that were already handed on are not handed on twice.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_DECISION_LOG_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_DECISION_LOG_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::sampling {

struct DecisionRecord {
  std::string trace_id;
  absl::Time decided_at;
  bool kept = false;
  std::string policy;  // what kept it ("" when not kept)
};

// Thread-safe: shards append concurrently.
class DecisionLog {
 public:
  virtual ~DecisionLog() = default;
  // Records the decisions of one poll of one shard (one write).
  [[nodiscard]] virtual absl::Status Append(const std::vector<DecisionRecord>& records) = 0;
  // Calls `fn` for every record kept, oldest decision first.
  [[nodiscard]] virtual absl::Status Load(const std::function<void(DecisionRecord&&)>& fn) = 0;
};

// Which spans of a replayed trace were handed on before a restart (the span store). Thread-safe.
class HandedSpans {
 public:
  virtual ~HandedSpans() = default;
  // Whether each of `spans` of the trace was handed on (same size and order as `spans`).
  [[nodiscard]] virtual absl::StatusOr<std::vector<bool>> Contains(
      const std::string& trace_id, const std::vector<SpanRecord>& spans) = 0;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_DECISION_LOG_H_
