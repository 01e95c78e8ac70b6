// Bounded LRU caches of decided trace ids, so spans arriving after their trace was decided follow
// the decision. One per shard; single-threaded.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_DECISION_CACHE_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_DECISION_CACHE_H_

#include <cstddef>
#include <list>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "collector/common/ids.h"

namespace tracekeep::sampling {

struct CachedDecision {
  absl::Time decided_at;
  std::string policy;  // the policy that kept the trace ("" for a dropped trace)
};

class DecisionCache {
 public:
  // `capacity` 0 disables the cache.
  explicit DecisionCache(size_t capacity) : capacity_(capacity) {}

  // Records a decision, evicting the least recently used entry when full.
  void Insert(const std::string& trace_id, CachedDecision decision);
  // The decision of `trace_id`, marked as recently used; nullptr when unknown.
  const CachedDecision* Lookup(const std::string& trace_id);
  size_t size() const { return index_.size(); }

 private:
  // Ids inline: a 16-byte std::string lives on the heap, and the cache held two per trace.
  using Entry = std::pair<TraceIdBytes, CachedDecision>;
  size_t capacity_;
  std::list<Entry> lru_;  // most recently used first
  absl::flat_hash_map<TraceIdBytes, std::list<Entry>::iterator> index_;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_DECISION_CACHE_H_
