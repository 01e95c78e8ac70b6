// The pending traces of one shard and their decision timers. Single-threaded: a shard owns one.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_TRACE_BUFFER_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_TRACE_BUFFER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"
#include "collector/common/ids.h"
#include "collector/pipeline/span_batch.h"
#include "collector/sampling/policy.h"

namespace tracekeep::sampling {

struct TraceBufferOptions {
  // A trace is decided this long after its last span arrived. Default: 30s.
  absl::Duration decision_wait = absl::Seconds(30);
  // At most this many pending traces; adding a new trace beyond it evicts the trace whose
  // decision is due soonest, which is then decided early. Default: 100000.
  size_t max_traces = 100000;
  // At most this many span bytes (serialized) pending; beyond it the traces due soonest are
  // evicted like at max_traces. 0 = no bound. Default: 0.
  size_t max_bytes = 0;
  // Once the root span arrived, the trace is decided at the latest this long after it.
  // Default: infinite (off).
  absl::Duration decision_wait_after_root = absl::InfiniteDuration();
  // A trace is decided at the latest this long after its first span. Default: infinite (off).
  absl::Duration max_trace_age = absl::InfiniteDuration();
  // A trace reaching this many spans / span bytes is decided at once. 0 = no bound. Default: 0.
  size_t max_spans_per_trace = 0;
  size_t max_bytes_per_trace = 0;
};

class TraceBuffer {
 public:
  explicit TraceBuffer(const TraceBufferOptions& options) : options_(options) {}

  // Adds the spans of one trace that arrived at `now`. Traces evicted to stay within
  // max_traces / max_bytes, and a trace that reached a per-trace bound, are appended to
  // `evicted`. With `leave_in_journal`, a trace this part starts, when the journal has the part
  // (spans.journal_ref), waits without its spans (PendingTrace::spans_in_journal): their records
  // are freed here, after the trace's summary took what it needs of them. Every later part of
  // such a trace that the journal has is left there too, whatever the flag.
  void Add(TraceSpans&& spans, absl::Time now, std::vector<PendingTrace>* evicted,
           bool leave_in_journal = false);

  // Moves every trace whose decision is due at `now` to `out`.
  void TakeExpired(absl::Time now, std::vector<PendingTrace>* out);

  // Moves every pending trace to `out` (shutdown).
  void TakeAll(std::vector<PendingTrace>* out);

  // When the next decision is due; absl::InfiniteFuture() when nothing is pending.
  absl::Time NextDeadline();

  // The earliest first arrival of a pending trace; absl::InfiniteFuture() when nothing is
  // pending. Every span that arrived before it belongs to a decided trace (the journal relies on
  // it). Exact when traces are added in arrival order, as the sampler does.
  absl::Time OldestArrival();

  size_t trace_count() const { return traces_.size(); }
  size_t span_count() const { return span_count_; }
  size_t span_bytes() const { return span_bytes_; }
  // Traces decided early, since construction: to respect max_traces, and for a per-trace bound.
  uint64_t evictions() const { return evictions_; }
  uint64_t trace_limit_hits() const { return trace_limit_hits_; }

 private:
  struct Timer {
    absl::Time deadline;
    TraceIdBytes trace_id;  // inline: a timer costs no allocation
    bool operator>(const Timer& o) const { return deadline > o.deadline; }
  };
  absl::Time DueTime(const PendingTrace& t) const;
  // Pops stale timers at the top; returns false when no live timer is left.
  bool SkipStaleTimers();
  void Take(const TraceIdBytes& trace_id, std::vector<PendingTrace>* out);
  // Evicts the live trace due soonest; false when nothing is pending.
  bool EvictOne(absl::Time now, std::vector<PendingTrace>* out);

  TraceBufferOptions options_;
  // Keyed by the id inline (a 16-byte std::string key is on the heap: an allocation per trace and
  // a pointer to follow at every lookup). The receivers accept only 16-byte trace ids.
  absl::node_hash_map<TraceIdBytes, PendingTrace> traces_;
  // Min-heap of decision times. An entry is live when its deadline equals its trace's current
  // `due`; every change of `due` pushes a new entry and leaves the older one stale.
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  // One entry per trace created, in creation order (deadline = its first arrival); live while
  // its trace exists with that first arrival.
  std::deque<Timer> births_;
  size_t span_count_ = 0;
  size_t span_bytes_ = 0;
  uint64_t evictions_ = 0;
  uint64_t trace_limit_hits_ = 0;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_TRACE_BUFFER_H_
