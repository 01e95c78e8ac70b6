// Which Kafka offsets may be committed: only those of records whose spans tracekeep holds
// durably. Plain bookkeeping, no Kafka client: the consumer feeds it and asks it what to commit.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_OFFSET_TRACKER_H_
#define TRACEKEEP_COLLECTOR_KAFKA_OFFSET_TRACKER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "absl/time/time.h"

namespace tracekeep::kafka {

// One partition's progress. Records are done in offset order (a Kafka partition is consumed in
// order); each done record becomes durable at some point in time, or at once.
//
// The offset to commit is the offset after the last record of the longest prefix of done records
// that are all durable: a record that is not durable yet holds back every later one, so a new
// owner of the partition replays from it (duplicates possible, never loss).
//
// Not thread-safe: owned by the consumer thread.
class PartitionProgress {
 public:
  // `committed`: the partition's committed offset when it was assigned (-1: none).
  explicit PartitionProgress(int64_t committed = -1) : committed_(committed) {}

  // Record `offset` was handled: its spans were taken by the intake at `accepted_at`
  // (absl::InfinitePast() when nothing needs to become durable: a skipped record, or spans that
  // were durable when taken). `record_time`: the record's timestamp (InfinitePast: unknown, then
  // `accepted_at` stands for it).
  void Done(int64_t offset, absl::Time accepted_at, absl::Time record_time = absl::InfinitePast());

  // The offset to commit now, given that every record accepted before `durable_before` is durable;
  // -1 when nothing new may be committed (the last committed offset still holds).
  int64_t Committable(absl::Time durable_before);

  // The commit of `offset` succeeded.
  void Committed(int64_t offset) {
    if (offset > committed_) committed_ = offset;
  }

  int64_t committed() const { return committed_; }
  // The offset after the last record done (the consumer's position), -1 before any record.
  int64_t position() const { return position_; }
  // Records done but not committable yet.
  size_t waiting() const { return waiting_.size(); }
  // The timestamp of the oldest record that was not committable at the last Committable call;
  // absl::InfiniteFuture() when none.
  absl::Time oldest_waiting() const {
    return waiting_.empty() ? absl::InfiniteFuture() : waiting_.front().first_record_time;
  }

 private:
  struct Waiting {
    int64_t next_offset;
    absl::Time accepted_at;
    absl::Time first_record_time;  // of the entry's first (oldest) record
  };
  int64_t committed_;
  int64_t position_ = -1;
  // The offset after the durable prefix (not committed yet when > committed_).
  int64_t durable_through_ = -1;
  // Done records that were not durable when last looked at, in offset order.
  std::deque<Waiting> waiting_;
};

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_OFFSET_TRACKER_H_
