// The sampler's decision log in a table of the span store's database (column family
// `decisions`): one key per group of decisions made at the same time (a shard's poll): key =
// decision time (unix nanos, big-endian, offset so that order is time order) · 8-byte sequence;
// value = 'G' · per decision: kept flag ('k' / 'd'), trace id and policy name, each
// length-prefixed (varint). Keys of the first format (time · trace id -> kept flag · policy, one
// per decision) are still read. Bounded by count: once more than `capacity` records were written
// after a second's worth of them, that second is erased with one range delete, so the table holds
// between `capacity` and about `capacity` + one second of decisions.
#ifndef TRACEKEEP_COLLECTOR_INTAKE_KV_DECISION_LOG_H_
#define TRACEKEEP_COLLECTOR_INTAKE_KV_DECISION_LOG_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "collector/sampling/decision_log.h"
#include "storage/kv_table.h"

namespace tracekeep::intake {

struct DecisionLogStats {
  std::atomic<uint64_t> records_written{0};
  std::atomic<uint64_t> records_loaded{0};
  std::atomic<uint64_t> write_errors{0};
};

class KvDecisionLog final : public sampling::DecisionLog {
 public:
  // `table` must outlive the log. `capacity`: records to keep at least (the decision caches'
  // sizes together); 0 keeps everything.
  KvDecisionLog(storage::KvTable* table, size_t capacity);

  absl::Status Append(const std::vector<sampling::DecisionRecord>& records) override;
  // Also counts the records per second, for pruning; call once, before Append.
  absl::Status Load(const std::function<void(sampling::DecisionRecord&&)>& fn) override;

  const DecisionLogStats& stats() const { return stats_; }

 private:
  void PruneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::KvTable* const table_;
  const size_t capacity_;
  DecisionLogStats stats_;
  std::mutex mu_;
  std::atomic<uint64_t> sequence_{0};                            // tells apart groups of one time
  std::map<int64_t, uint64_t> per_second_ ABSL_GUARDED_BY(mu_);  // unix second -> records
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tracekeep::intake

#endif  // TRACEKEEP_COLLECTOR_INTAKE_KV_DECISION_LOG_H_
