#include "collector/sampling/trace_buffer.h"

#include <algorithm>

namespace tracekeep::sampling {

absl::Time TraceBuffer::DueTime(const PendingTrace& t) const {
  absl::Time due = t.last_arrival + options_.decision_wait;
  due = std::min(due, t.first_arrival + options_.max_trace_age);
  if (t.has_root) due = std::min(due, t.root_arrival + options_.decision_wait_after_root);
  return due;
}

void TraceBuffer::Add(TraceSpans&& spans, absl::Time now, std::vector<PendingTrace>* evicted,
                      bool leave_in_journal) {
  const TraceIdBytes key = TraceIdBytes::Of(spans.trace_id);
  auto it = traces_.find(key);
  if (it == traces_.end()) {
    while (traces_.size() >= options_.max_traces && EvictOne(now, evicted)) {
    }
    it = traces_.emplace(key, PendingTrace()).first;
    PendingTrace& t = it->second;
    t.trace_id = std::move(spans.trace_id);
    t.hash = spans.hash;
    t.first_arrival = now;
    t.spans_in_journal = leave_in_journal && spans.journal_ref.size != 0;
    births_.push_back(Timer{now, key});
  }
  PendingTrace& t = it->second;
  t.last_arrival = std::max(t.last_arrival, now);
  span_count_ += spans.spans.size();
  t.span_count += spans.spans.size();
  if (spans.journal_ref.size == 0) {
    t.all_journaled = false;
  } else if (auto ref = std::find(t.journal_refs.begin(), t.journal_refs.end(), spans.journal_ref);
             ref == t.journal_refs.end()) {
    t.journal_refs.push_back(spans.journal_ref);
  } else if (ref->trace_offset != spans.journal_ref.trace_offset) {
    ref->trace_size = 0;  // two parts of the trace in one record: read the record whole
  }
  for (std::string& key : spans.linked_keys) {
    if (std::find(t.linked_keys.begin(), t.linked_keys.end(), key) == t.linked_keys.end()) {
      t.linked_keys.push_back(std::move(key));
    }
  }
  for (const SpanRecord& rec : spans.spans) {
    t.has_error |= rec.is_error;
    if (rec.is_root && !t.has_root) {
      t.has_root = true;
      t.root_arrival = now;
    }
    t.min_start_unix_nanos = std::min(t.min_start_unix_nanos, rec.start_unix_nanos);
    t.max_end_unix_nanos = std::max(t.max_end_unix_nanos, rec.end_unix_nanos);
    t.span_bytes += rec.size();
    span_bytes_ += rec.size();
  }
  const size_t slack = spans.spans.capacity() - spans.spans.size();
  if (t.spans_in_journal && spans.journal_ref.size != 0) {
    // ReadBackSpans finds them at t.journal_refs.
    std::vector<SpanRecord>().swap(spans.spans);
  } else if (t.spans.empty() && slack <= spans.spans.size() / 4) {
    // The trace's first spans, in a vector with little unused room (as the receivers' split
    // makes them): taken whole instead of moved record by record into a new one.
    t.spans = std::move(spans.spans);
  } else {
    t.spans.reserve(t.spans.size() + spans.spans.size());
    for (SpanRecord& rec : spans.spans) t.spans.push_back(std::move(rec));
  }
  if ((options_.max_spans_per_trace != 0 && t.span_count >= options_.max_spans_per_trace) ||
      (options_.max_bytes_per_trace != 0 && t.span_bytes >= options_.max_bytes_per_trace)) {
    t.due = now;
    ++trace_limit_hits_;
    Take(key, evicted);  // its timers turn stale
    return;
  }
  const absl::Time due = DueTime(t);
  if (due != t.due) {
    t.due = due;
    timers_.push(Timer{due, key});
  }
  // May evict the trace just added, when it alone is over the bound.
  while (options_.max_bytes != 0 && span_bytes_ > options_.max_bytes && EvictOne(now, evicted)) {
  }
}

bool TraceBuffer::EvictOne(absl::Time now, std::vector<PendingTrace>* out) {
  if (!SkipStaleTimers()) return false;
  const TraceIdBytes id = timers_.top().trace_id;
  timers_.pop();
  traces_.find(id)->second.due = now;  // decided now, ahead of its time
  Take(id, out);
  ++evictions_;
  return true;
}

bool TraceBuffer::SkipStaleTimers() {
  while (!timers_.empty()) {
    const Timer& top = timers_.top();
    auto it = traces_.find(top.trace_id);
    if (it != traces_.end() && it->second.due == top.deadline) return true;
    timers_.pop();
  }
  return false;
}

void TraceBuffer::Take(const TraceIdBytes& trace_id, std::vector<PendingTrace>* out) {
  auto it = traces_.find(trace_id);
  span_count_ -= it->second.span_count;
  span_bytes_ -= it->second.span_bytes;
  out->push_back(std::move(it->second));
  traces_.erase(it);
}

void TraceBuffer::TakeExpired(absl::Time now, std::vector<PendingTrace>* out) {
  while (SkipStaleTimers() && timers_.top().deadline <= now) {
    const TraceIdBytes id = timers_.top().trace_id;
    timers_.pop();
    Take(id, out);
  }
}

void TraceBuffer::TakeAll(std::vector<PendingTrace>* out) {
  for (auto& [id, trace] : traces_) out->push_back(std::move(trace));
  traces_.clear();
  timers_ = {};
  births_.clear();
  span_count_ = 0;
  span_bytes_ = 0;
}

absl::Time TraceBuffer::OldestArrival() {
  while (!births_.empty()) {
    auto it = traces_.find(births_.front().trace_id);
    if (it != traces_.end() && it->second.first_arrival == births_.front().deadline) {
      return births_.front().deadline;
    }
    births_.pop_front();
  }
  return absl::InfiniteFuture();
}

absl::Time TraceBuffer::NextDeadline() {
  return SkipStaleTimers() ? timers_.top().deadline : absl::InfiniteFuture();
}

}  // namespace tracekeep::sampling
