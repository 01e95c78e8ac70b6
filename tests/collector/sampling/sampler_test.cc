#include "collector/sampling/sampler.h"

#include <thread>

#include "gtest/gtest.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::sampling {
namespace {

SamplerOptions Options(double baseline_pct, int shards = 2) {
  SamplerOptions o;
  o.decision_wait = absl::Seconds(30);
  o.num_shards = shards;
  o.policies = DefaultPolicies();
  o.policies[1].sampling_percentage = baseline_pct;
  return o;
}

std::vector<TraceSpans> One(TraceSpans t) {
  std::vector<TraceSpans> v;
  v.push_back(std::move(t));
  return v;
}

TEST(SamplerTest, KeepsErrorTracesAndDropsHealthyOnesAtZeroBaseline) {
  FakeClock clock;
  RecordingConsumer consumer;
  auto sampler = Sampler::Create(Options(0), &consumer, &clock);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(i, 3, /*error=*/i % 10 == 0)), 3).ok());
  }
  (*sampler)->PollForTesting();
  EXPECT_EQ((*sampler)->stats().traces_pending.load(), 50u);
  EXPECT_EQ((*sampler)->stats().spans_pending.load(), 150u);
  clock.Advance(absl::Seconds(29));
  (*sampler)->PollForTesting();
  EXPECT_TRUE(consumer.kept().empty());
  clock.Advance(absl::Seconds(1));
  (*sampler)->PollForTesting();
  KeptTraces kept = consumer.kept();
  ASSERT_EQ(kept.size(), 5u);
  for (const KeptTrace& t : kept) {
    EXPECT_EQ(t.policy, "errors");
    EXPECT_EQ(t.spans.size(), 3u);
  }
  EXPECT_EQ((*sampler)->traces_sampled_total(), 5u);
  EXPECT_EQ((*sampler)->stats().traces_not_sampled.load(), 45u);
  EXPECT_EQ((*sampler)->stats().spans_not_sampled.load(), 135u);
  EXPECT_EQ((*sampler)->stats().traces_pending.load(), 0u);
}

TEST(SamplerTest, SpansOfOneTraceFromSeveralRequestsAreDecidedTogether) {
  FakeClock clock;
  RecordingConsumer consumer;
  auto sampler = Sampler::Create(Options(0), &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 2)), 2).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(20));
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1, /*error=*/true)), 1).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(20));  // 40 s after the first span, 20 s after the last
  (*sampler)->PollForTesting();
  EXPECT_TRUE(consumer.kept().empty());
  clock.Advance(absl::Seconds(10));
  (*sampler)->PollForTesting();
  ASSERT_EQ(consumer.kept().size(), 1u);
  EXPECT_EQ(consumer.kept()[0].spans.size(), 3u);
}

TEST(SamplerTest, RefusesWhenTheIntakeQueueIsFullAndRecovers) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(0);
  o.max_queued_spans = 10;
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 8)), 8).ok());
  absl::Status refused = (*sampler)->Offer(One(MakeTrace(2, 3)), 3);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*sampler)->stats().spans_refused.load(), 3u);
  (*sampler)->PollForTesting();  // the queue drains into the buffer
  EXPECT_TRUE((*sampler)->Offer(One(MakeTrace(2, 3)), 3).ok());
}

TEST(SamplerTest, EvictionDecidesEarlyAndIsCounted) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(0, /*shards=*/1);
  o.max_pending_traces = 3;
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1, /*error=*/true)), 1).ok());
  (*sampler)->PollForTesting();
  for (int i = 2; i <= 4; ++i) {
    clock.Advance(absl::Seconds(1));
    ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(i, 1)), 1).ok());
    (*sampler)->PollForTesting();
  }
  EXPECT_EQ((*sampler)->stats().traces_evicted.load(), 1u);
  ASSERT_EQ(consumer.kept().size(), 1u);  // the evicted error trace is still kept
  EXPECT_EQ(consumer.kept()[0].trace_id, TestTraceId(1));
  EXPECT_EQ((*sampler)->stats().traces_pending.load(), 3u);
}

TEST(SamplerTest, ShutdownDecidesEverythingPendingAndRefusesNewData) {
  FakeClock clock;
  RecordingConsumer consumer;
  auto sampler = Sampler::Create(Options(0), &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Start().ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(i, 2, /*error=*/i < 4)), 2).ok());
  }
  (*sampler)->Shutdown(absl::InfiniteFuture());
  EXPECT_EQ(consumer.kept().size(), 4u);
  EXPECT_EQ((*sampler)->stats().traces_not_sampled.load(), 16u);
  EXPECT_EQ((*sampler)->Offer(One(MakeTrace(99, 1)), 1).code(), absl::StatusCode::kUnavailable);
}

TEST(SamplerTest, ThreadedShardsDecideWithTheRealClock) {
  RecordingConsumer consumer;
  SamplerOptions o = Options(100);
  o.decision_wait = absl::Milliseconds(20);
  auto sampler = Sampler::Create(o, &consumer, Clock::Real());
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Start().ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(i, 1)), 1).ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (consumer.kept().size() < 100 && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  EXPECT_EQ(consumer.kept().size(), 100u);
  (*sampler)->Shutdown(absl::InfiniteFuture());
}

TEST(SamplerTest, InvalidOptionsAreRejected) {
  RecordingConsumer consumer;
  SamplerOptions o = Options(0);
  o.decision_wait = absl::Seconds(-1);
  EXPECT_FALSE(Sampler::Create(o, &consumer, Clock::Real()).ok());
  o = Options(0);
  o.policies[1].sampling_percentage = -3;
  auto bad = Sampler::Create(o, &consumer, Clock::Real());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("got -3"), std::string::npos);
}

}  // namespace
}  // namespace tracekeep::sampling
