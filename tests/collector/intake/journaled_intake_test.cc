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

// A journal, a sampler and the intake between them, as the daemon wires them.
struct Pipeline {
  Pipeline(const std::string& path, FakeClock* clock, size_t max_queued = 1000,
           JournaledIntakeOptions options = JournaledIntakeOptions()) {
    journal = *storage::Journal::Open({path, false});
    sampler = *sampling::Sampler::Create(AlwaysSample(max_queued), &consumer, clock);
    intake = std::make_unique<JournaledIntake>(options, journal.get(), sampler.get(), clock);
  }
  int Entries() { return JournalEntries(journal.get()); }
  RecordingConsumer consumer;
  std::unique_ptr<storage::Journal> journal;
  std::unique_ptr<sampling::Sampler> sampler;
  std::unique_ptr<JournaledIntake> intake;
};

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
  Pipeline p(path_, &clock_);

  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(1, 2)), 2).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(2, 2)), 2).ok());
  p.sampler->PollForTesting();
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 2);  // both traces pending

  clock_.Advance(absl::Seconds(21));  // trace 1 due, trace 2 not
  p.sampler->PollForTesting();
  ASSERT_EQ(p.consumer.kept().size(), 1u);
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 1);

  clock_.Advance(absl::Seconds(10));
  p.sampler->PollForTesting();
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 0);
}

// Entries still needed by holds outside the sampler (the order tracker's references into the
// journal) stay, whatever the sampler decided; each accepted trace knows its entry.
TEST_F(JournaledIntakeTest, KeepsEntriesTheHoldsMarkNeedsAndStampsTheirPlace) {
  absl::Time holds_mark = absl::InfiniteFuture();
  JournaledIntakeOptions options;
  options.holds_low_water_mark = [&] { return holds_mark; };
  Pipeline p(path_, &clock_, 1000, options);
  const absl::Time first = clock_.Now();
  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(1, 2)), 2).ok());
  clock_.Advance(absl::Seconds(31));
  p.sampler->PollForTesting();  // decided and kept
  ASSERT_EQ(p.consumer.kept().size(), 1u);
  holds_mark = first;  // a hold points into the first entry
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 1);
  holds_mark = absl::InfiniteFuture();
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 0);

  // The sampler gets each trace with the place of its entry, which reads it back.
  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(2, 3)), 3).ok());
  clock_.Advance(absl::Seconds(31));
  p.sampler->PollForTesting();
  ASSERT_EQ(p.consumer.kept().size(), 2u);
  auto entry = p.journal->ReplayWithRefs(
      [&](std::vector<TraceSpans>&& traces, absl::Time, const JournalRef& where) {
        auto read = p.journal->ReadAt(where);
        EXPECT_TRUE(read.ok()) << read.status();
        if (read.ok()) EXPECT_EQ((*read)[0].spans.size(), traces[0].spans.size());
        return absl::OkStatus();
      });
  EXPECT_TRUE(entry.ok());
}

TEST_F(JournaledIntakeTest, ALateSpanKeepsItsTracesFirstEntry) {
  Pipeline p(path_, &clock_);
  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(1, 1)), 1).ok());
  p.sampler->PollForTesting();
  clock_.Advance(absl::Seconds(20));
  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(1, 1)), 1).ok());  // same trace, later
  p.sampler->PollForTesting();
  clock_.Advance(absl::Seconds(20));  // 40 s after the first span, 20 s after the last
  p.sampler->PollForTesting();
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 2);  // the trace is still pending
}

TEST_F(JournaledIntakeTest, RefusedBatchesLeaveNoEntry) {
  Pipeline p(path_, &clock_, /*max_queued=*/3);
  ASSERT_TRUE(p.intake->Offer(One(MakeTrace(1, 3)), 3).ok());
  EXPECT_EQ(p.intake->Offer(One(MakeTrace(2, 3)), 3).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(p.Entries(), 1);
}

TEST_F(JournaledIntakeTest, RecoverRebuildsPendingTracesWithTheirTimers) {
  {
    Pipeline crashed(path_, &clock_);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(crashed.intake->Offer(One(MakeTrace(i, 2)), 2).ok());
    // "Crash": the sampler and the intake go away without deciding anything.
  }
  clock_.Advance(absl::Seconds(20));
  Pipeline p(path_, &clock_);
  auto replayed = p.intake->Recover();
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(*replayed, 10);
  p.sampler->PollForTesting();
  EXPECT_EQ(p.sampler->stats().traces_pending.load(), 5u);
  EXPECT_TRUE(p.consumer.kept().empty());
  clock_.Advance(absl::Seconds(10));  // 30 s after they first arrived, before the "crash"
  p.sampler->PollForTesting();
  EXPECT_EQ(p.consumer.kept().size(), 5u);
  p.intake->TruncateOnce();
  EXPECT_EQ(p.Entries(), 0);
}

}  // namespace
}  // namespace tracekeep::intake
