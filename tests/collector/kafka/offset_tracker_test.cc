#include "collector/kafka/offset_tracker.h"

#include "gtest/gtest.h"

namespace tracekeep::kafka {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(PartitionProgressTest, RecordsDurableWhenTakenAreCommittableAtOnce) {
  PartitionProgress p;
  EXPECT_EQ(p.Committable(absl::InfinitePast()), -1);  // nothing done yet
  p.Done(10, absl::InfinitePast());
  p.Done(11, absl::InfinitePast());
  EXPECT_EQ(p.position(), 12);
  EXPECT_EQ(p.Committable(absl::InfinitePast()), 12);  // the offset of the next record to read
  p.Committed(12);
  EXPECT_EQ(p.Committable(absl::InfinitePast()), -1);  // nothing new
  EXPECT_EQ(p.committed(), 12);
}

TEST(PartitionProgressTest, ARecordNotDurableYetHoldsBackEveryLaterOne) {
  PartitionProgress p;
  p.Done(0, absl::InfinitePast());
  p.Done(1, kT0);                     // waits for the mark to pass kT0
  p.Done(2, absl::InfinitePast());    // a skipped record after it
  p.Done(3, kT0 + absl::Seconds(1));  // and a later one
  EXPECT_EQ(p.Committable(kT0), 1);   // only record 0: record 1 is not durable
  p.Committed(1);
  EXPECT_EQ(p.Committable(kT0), -1);
  EXPECT_EQ(p.Committable(kT0 + absl::Milliseconds(1)), 3);  // 1 and 2, not 3
  p.Committed(3);
  EXPECT_EQ(p.Committable(kT0 + absl::Seconds(2)), 4);
  EXPECT_EQ(p.waiting(), 0u);
}

TEST(PartitionProgressTest, RemembersTheTimestampOfTheOldestRecordHeldBack) {
  PartitionProgress p;
  EXPECT_EQ(p.oldest_waiting(), absl::InfiniteFuture());
  p.Done(0, absl::InfinitePast(), kT0 - absl::Hours(2));  // durable at once: not held back
  p.Done(1, kT0, kT0 - absl::Hours(1));                   // its order is open
  p.Done(2, kT0 + absl::Seconds(1), kT0 - absl::Minutes(1));
  p.Done(3, kT0 + absl::Seconds(2));  // no Kafka timestamp: when it was taken
  EXPECT_EQ(p.Committable(kT0), 1);
  EXPECT_EQ(p.oldest_waiting(), kT0 - absl::Hours(1));
  EXPECT_EQ(p.Committable(kT0 + absl::Milliseconds(1)), 2);  // record 1's order resolved
  EXPECT_EQ(p.oldest_waiting(), kT0 - absl::Minutes(1));
  EXPECT_EQ(p.Committable(kT0 + absl::Seconds(1) + absl::Milliseconds(1)), 3);
  EXPECT_EQ(p.oldest_waiting(), kT0 + absl::Seconds(2));
  EXPECT_EQ(p.Committable(absl::InfiniteFuture()), 4);
  EXPECT_EQ(p.oldest_waiting(), absl::InfiniteFuture());
}

TEST(PartitionProgressTest, CommittedNeverGoesBack) {
  PartitionProgress p(50);
  p.Done(50, absl::InfinitePast());
  EXPECT_EQ(p.Committable(absl::InfiniteFuture()), 51);
  p.Committed(51);
  p.Committed(20);
  EXPECT_EQ(p.committed(), 51);
}

}  // namespace
}  // namespace tracekeep::kafka
