#include "collector/intake/journaled_intake.h"

#include <cstdlib>

#include "gtest/gtest.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::intake {
namespace {

using sampling::MakeTrace;
using sampling::RecordingConsumer;
using sampling::TestTraceId;

std::vector<TraceSpans> One(TraceSpans t) {
  std::vector<TraceSpans> v;
  v.push_back(std::move(t));
  return v;
}

sampling::SamplerOptions AlwaysSample(size_t max_queued = 1000) {
  sampling::SamplerOptions o;
  o.decision_wait = absl::Seconds(30);
  o.num_shards = 2;
  o.max_queued_spans = max_queued;
  sampling::PolicyConfig all;
  all.name = "all";
  all.type = "always_sample";
  o.policies = {all};
  return o;
}

int JournalEntries(storage::Journal* journal) {
  int n = 0;
  EXPECT_TRUE(journal
                  ->Replay([&](std::vector<TraceSpans>&&, absl::Time) {
                    ++n;
                    return absl::OkStatus();
                  })
                  .ok());
  return n;
}

class JournaledIntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tracekeep-intake-test-XXXXXX";
    path_ = std::string(mkdtemp(tmpl)) + "/journal";
  }
  std::string path_;
  FakeClock clock_;
};

TEST_F(JournaledIntakeTest, KeepsEntriesUntilTheirTracesAreDecided) {
  auto journal = storage::Journal::Open({path_, false});
  ASSERT_TRUE(journal.ok());
  RecordingConsumer consumer;
  auto sampler = sampling::Sampler::Create(AlwaysSample(), &consumer, &clock_);
  ASSERT_TRUE(sampler.ok());
  JournaledIntake intake({}, journal->get(), sampler->get(), &clock_);

  ASSERT_TRUE(intake.Offer(One(MakeTrace(1, 2)), 2).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(intake.Offer(One(MakeTrace(2, 2)), 2).ok());
  (*sampler)->PollForTesting();
  intake.TruncateOnce();
  EXPECT_EQ(JournalEntries(journal->get()), 2);  // both traces pending

  clock_.Advance(absl::Seconds(21));  // trace 1 due, trace 2 not
  (*sampler)->PollForTesting();
  ASSERT_EQ(consumer.kept().size(), 1u);
  intake.TruncateOnce();
  EXPECT_EQ(JournalEntries(journal->get()), 1);

  clock_.Advance(absl::Seconds(10));
  (*sampler)->PollForTesting();
  intake.TruncateOnce();
  EXPECT_EQ(JournalEntries(journal->get()), 0);
}

TEST_F(JournaledIntakeTest, ALateSpanKeepsItsTracesFirstEntry) {
  auto journal = storage::Journal::Open({path_, false});
  ASSERT_TRUE(journal.ok());
  RecordingConsumer consumer;
  auto sampler = sampling::Sampler::Create(AlwaysSample(), &consumer, &clock_);
  ASSERT_TRUE(sampler.ok());
  JournaledIntake intake({}, journal->get(), sampler->get(), &clock_);
  ASSERT_TRUE(intake.Offer(One(MakeTrace(1, 1)), 1).ok());
  (*sampler)->PollForTesting();
  clock_.Advance(absl::Seconds(20));
  ASSERT_TRUE(intake.Offer(One(MakeTrace(1, 1)), 1).ok());  // same trace, later
  (*sampler)->PollForTesting();
  clock_.Advance(absl::Seconds(20));  // 40 s after the first span, 20 s after the last
  (*sampler)->PollForTesting();
  intake.TruncateOnce();
  EXPECT_EQ(JournalEntries(journal->get()), 2);  // the trace is still pending
}

TEST_F(JournaledIntakeTest, RefusedBatchesLeaveNoEntry) {
  auto journal = storage::Journal::Open({path_, false});
  ASSERT_TRUE(journal.ok());
  RecordingConsumer consumer;
  auto sampler = sampling::Sampler::Create(AlwaysSample(/*max_queued=*/3), &consumer, &clock_);
  ASSERT_TRUE(sampler.ok());
  JournaledIntake intake({}, journal->get(), sampler->get(), &clock_);
  ASSERT_TRUE(intake.Offer(One(MakeTrace(1, 3)), 3).ok());
  EXPECT_EQ(intake.Offer(One(MakeTrace(2, 3)), 3).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(JournalEntries(journal->get()), 1);
}

TEST_F(JournaledIntakeTest, RecoverRebuildsPendingTracesWithTheirTimers) {
  {
    auto journal = storage::Journal::Open({path_, false});
    ASSERT_TRUE(journal.ok());
    RecordingConsumer consumer;
    auto sampler = sampling::Sampler::Create(AlwaysSample(), &consumer, &clock_);
    ASSERT_TRUE(sampler.ok());
    JournaledIntake intake({}, journal->get(), sampler->get(), &clock_);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(intake.Offer(One(MakeTrace(i, 2)), 2).ok());
    // "Crash": the sampler and the intake go away without deciding anything.
  }
  clock_.Advance(absl::Seconds(20));
  auto journal = storage::Journal::Open({path_, false});
  ASSERT_TRUE(journal.ok());
  RecordingConsumer consumer;
  auto sampler = sampling::Sampler::Create(AlwaysSample(), &consumer, &clock_);
  ASSERT_TRUE(sampler.ok());
  JournaledIntake intake({}, journal->get(), sampler->get(), &clock_);
  auto replayed = intake.Recover();
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, 10);
  (*sampler)->PollForTesting();
  EXPECT_EQ((*sampler)->stats().traces_pending.load(), 5u);
  EXPECT_TRUE(consumer.kept().empty());
  clock_.Advance(absl::Seconds(10));  // 30 s after they first arrived, before the "crash"
  (*sampler)->PollForTesting();
  EXPECT_EQ(consumer.kept().size(), 5u);
  intake.TruncateOnce();
  EXPECT_EQ(JournalEntries(journal->get()), 0);
}

}  // namespace
}  // namespace tracekeep::intake
