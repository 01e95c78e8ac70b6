#include "collector/sampling/trace_buffer.h"

#include <algorithm>

namespace tracekeep::sampling {

void TraceBuffer::Add(TraceSpans&& spans, absl::Time now, std::vector<PendingTrace>* evicted) {
  auto it = traces_.find(spans.trace_id);
  if (it == traces_.end()) {
    while (traces_.size() >= options_.max_traces && SkipStaleTimers()) {
      Take(timers_.front().trace_id, evicted);
      timers_.pop_front();
    }
    it = traces_.emplace(spans.trace_id, PendingTrace()).first;
    PendingTrace& t = it->second;
    t.trace_id = spans.trace_id;
    t.hash = spans.hash;
    t.first_arrival = now;
    births_.push_back(Timer{now, t.trace_id});
  }
  PendingTrace& t = it->second;
  t.last_arrival = std::max(t.last_arrival, now);
  span_count_ += spans.spans.size();
  t.spans.reserve(t.spans.size() + spans.spans.size());
  for (SpanRecord& rec : spans.spans) {
    t.has_error |= rec.is_error;
    t.has_root |= rec.is_root;
    t.min_start_unix_nanos = std::min(t.min_start_unix_nanos, rec.start_unix_nanos);
    t.max_end_unix_nanos = std::max(t.max_end_unix_nanos, rec.end_unix_nanos);
    t.span_bytes += rec.span.size();
    t.spans.push_back(std::move(rec));
  }
  timers_.push_back(Timer{t.last_arrival + options_.decision_wait, t.trace_id});
}

bool TraceBuffer::SkipStaleTimers() {
  while (!timers_.empty()) {
    const Timer& front = timers_.front();
    auto it = traces_.find(front.trace_id);
    if (it != traces_.end() && it->second.last_arrival + options_.decision_wait == front.deadline) {
      return true;
    }
    timers_.pop_front();
  }
  return false;
}

void TraceBuffer::Take(const std::string& trace_id, std::vector<PendingTrace>* out) {
  auto it = traces_.find(trace_id);
  span_count_ -= it->second.spans.size();
  out->push_back(std::move(it->second));
  traces_.erase(it);
}

void TraceBuffer::TakeExpired(absl::Time now, std::vector<PendingTrace>* out) {
  while (SkipStaleTimers() && timers_.front().deadline <= now) {
    Take(timers_.front().trace_id, out);
    timers_.pop_front();
  }
}

void TraceBuffer::TakeAll(std::vector<PendingTrace>* out) {
  for (auto& [id, trace] : traces_) out->push_back(std::move(trace));
  traces_.clear();
  timers_.clear();
  births_.clear();
  span_count_ = 0;
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
  return SkipStaleTimers() ? timers_.front().deadline : absl::InfiniteFuture();
}

}  // namespace tracekeep::sampling
