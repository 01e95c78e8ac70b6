#include "collector/kafka/offset_tracker.h"

namespace tracekeep::kafka {

void PartitionProgress::Done(int64_t offset, absl::Time accepted_at, absl::Time record_time) {
  position_ = offset + 1;
  if (waiting_.empty() && accepted_at == absl::InfinitePast()) {
    durable_through_ = offset + 1;  // nothing before it waits: durable at once
    return;
  }
  // Consecutive records that become durable together share one entry.
  if (!waiting_.empty() && waiting_.back().accepted_at >= accepted_at) {
    waiting_.back().next_offset = offset + 1;
    return;
  }
  waiting_.push_back(
      {offset + 1, accepted_at, record_time == absl::InfinitePast() ? accepted_at : record_time});
}

int64_t PartitionProgress::Committable(absl::Time durable_before) {
  while (!waiting_.empty() && waiting_.front().accepted_at < durable_before) {
    durable_through_ = waiting_.front().next_offset;
    waiting_.pop_front();
  }
  return durable_through_ > committed_ ? durable_through_ : -1;
}

}  // namespace tracekeep::kafka
