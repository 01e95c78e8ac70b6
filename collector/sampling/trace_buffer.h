// The pending traces of one shard and their decision timers. Single-threaded: a shard owns one.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_TRACE_BUFFER_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_TRACE_BUFFER_H_

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"
#include "collector/pipeline/span_batch.h"
#include "collector/sampling/policy.h"

namespace tracekeep::sampling {

struct TraceBufferOptions {
  // A trace is decided this long after its last span arrived. Default: 30s.
  absl::Duration decision_wait = absl::Seconds(30);
  // At most this many pending traces; adding a new trace beyond it evicts the trace whose
  // decision is due soonest, which is then decided early. Default: 100000.
  size_t max_traces = 100000;
};

class TraceBuffer {
 public:
  explicit TraceBuffer(const TraceBufferOptions& options) : options_(options) {}

  // Adds the spans of one trace that arrived at `now`. Traces evicted to stay within
  // max_traces are appended to `evicted`.
  void Add(TraceSpans&& spans, absl::Time now, std::vector<PendingTrace>* evicted);

  // Moves every trace whose decision is due at `now` to `out`.
  void TakeExpired(absl::Time now, std::vector<PendingTrace>* out);

  // Moves every pending trace to `out` (shutdown).
  void TakeAll(std::vector<PendingTrace>* out);

  // When the next decision is due; absl::InfiniteFuture() when nothing is pending.
  absl::Time NextDeadline();

  // The earliest first arrival of a pending trace; absl::InfiniteFuture() when nothing is
  // pending. Every span that arrived before it belongs to a decided trace.
  absl::Time OldestArrival();

  size_t trace_count() const { return traces_.size(); }
  size_t span_count() const { return span_count_; }

 private:
  struct Timer {
    absl::Time deadline;
    std::string trace_id;
  };
  // Removes stale timers at the front; returns false when no live timer is left.
  bool SkipStaleTimers();
  void Take(const std::string& trace_id, std::vector<PendingTrace>* out);

  TraceBufferOptions options_;
  absl::node_hash_map<std::string, PendingTrace> traces_;
  // One entry per Add, in arrival order. An entry is live when its deadline equals its trace's
  // current deadline (last_arrival + decision_wait); later Adds leave older entries stale.
  std::deque<Timer> timers_;
  // One entry per trace created, in creation order (deadline = its first arrival); live while
  // its trace exists with that first arrival.
  std::deque<Timer> births_;
  size_t span_count_ = 0;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_TRACE_BUFFER_H_
