#include "collector/sampling/decision_cache.h"

namespace tracekeep::sampling {

void DecisionCache::Insert(const std::string& trace_id, CachedDecision decision) {
  if (capacity_ == 0) return;
  const TraceIdBytes id = TraceIdBytes::Of(trace_id);
  auto it = index_.find(id);
  if (it != index_.end()) {
    it->second->second = std::move(decision);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(id, std::move(decision));
  index_.emplace(id, lru_.begin());
}

const CachedDecision* DecisionCache::Lookup(const std::string& trace_id) {
  auto it = index_.find(TraceIdBytes::Of(trace_id));
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

}  // namespace tracekeep::sampling
