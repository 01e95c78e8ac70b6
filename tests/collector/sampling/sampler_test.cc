#include "collector/sampling/sampler.h"

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "collector/sampling/span_scan.h"
#include "gtest/gtest.h"
#include "tests/collector/sampling/span_builder.h"
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

TEST(SamplerTest, DueTracesAreDecidedInBatchesAFiftiethOfTheWaitApart) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions options = Options(0, /*shards=*/1);
  options.decision_wait = absl::Seconds(5);  // batches 100 ms apart
  auto sampler = Sampler::Create(options, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  // Four error traces arriving 30 ms apart.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(i, 1, /*error=*/true)), 1).ok());
    (*sampler)->PollForTesting();
    clock.Advance(absl::Milliseconds(30));
  }
  clock.Advance(absl::Seconds(5) - absl::Milliseconds(120));  // the first is due now
  (*sampler)->PollForTesting();
  ASSERT_EQ(consumer.kept().size(), 1u);
  clock.Advance(absl::Milliseconds(90));  // the other three are due, the next batch is not
  (*sampler)->PollForTesting();
  EXPECT_EQ(consumer.kept().size(), 1u);
  clock.Advance(absl::Milliseconds(10));
  (*sampler)->PollForTesting();
  EXPECT_EQ(consumer.kept().size(), 4u);
  EXPECT_EQ(consumer.batches(), 2);

  // A clock stepped back an hour: the next batch comes a batch interval later, not an hour.
  clock.Advance(-absl::Hours(1));
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(9, 1, /*error=*/true)), 1).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(5));
  (*sampler)->PollForTesting();
  EXPECT_EQ(consumer.kept().size(), 5u);

  // A wait of 0 decides at every poll.
  FakeClock clock0;
  RecordingConsumer consumer0;
  options.decision_wait = absl::ZeroDuration();
  auto immediate = Sampler::Create(options, &consumer0, &clock0);
  ASSERT_TRUE(immediate.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*immediate)->Offer(One(MakeTrace(i, 1, /*error=*/true)), 1).ok());
    (*immediate)->PollForTesting();
    EXPECT_EQ(consumer0.kept().size(), static_cast<size_t>(i + 1));
  }
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

// Receivers ask before decoding a request; the answer is Offer's, counted the same way.
TEST(SamplerTest, PrecheckAnswersAsOfferWouldAndCountsRefusals) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(0);
  o.max_queued_spans = 10;
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  EXPECT_TRUE((*sampler)->Precheck(10).ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 8)), 8).ok());
  EXPECT_TRUE((*sampler)->Precheck(2).ok());
  EXPECT_EQ((*sampler)->Precheck(3).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*sampler)->stats().spans_refused.load(), 3u);
  EXPECT_EQ((*sampler)->stats().spans_queued.load(), 8u);  // a precheck takes nothing
  (*sampler)->Shutdown(absl::InfiniteFuture());
  EXPECT_EQ((*sampler)->Precheck(1).code(), absl::StatusCode::kUnavailable);
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

std::string Tagged(std::string span, const std::string& policy) {
  AppendStringAttribute(kPolicyAttribute, policy, &span);
  return span;
}

TEST(SamplerTest, KeptSpansCarryThePolicyThatKeptThem) {
  FakeClock clock;
  RecordingConsumer consumer;
  auto sampler = Sampler::Create(Options(0, 1), &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 2, /*error=*/true)), 2).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();
  const KeptTraces kept = consumer.kept();
  ASSERT_EQ(kept.size(), 1u);
  for (const SpanRecord& s : kept[0].spans) {
    EXPECT_EQ(s.span, Tagged("span-bytes", "errors"));
  }
  EXPECT_EQ((*sampler)->stats().decision_latency.count(), 1u);
}

TEST(SamplerTest, LateSpansFollowTheDecisionAlreadyMade) {
  FakeClock clock;
  RecordingConsumer consumer;
  auto sampler = Sampler::Create(Options(0, 1), &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1, /*error=*/true)), 1).ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 1)), 1).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();
  ASSERT_EQ(consumer.kept().size(), 1u);
  clock.Advance(absl::Seconds(10));
  // A late healthy span of the kept trace goes downstream at once; one of the dropped trace is
  // counted and dropped, even though it carries an error now.
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1)), 1).ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 2, /*error=*/true)), 2).ok());
  (*sampler)->PollForTesting();
  KeptTraces kept = consumer.kept();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[1].trace_id, TestTraceId(1));
  EXPECT_EQ(kept[1].policy, "errors");
  EXPECT_EQ(kept[1].spans[0].span, Tagged("span-bytes", "errors"));
  const SamplerStats& st = (*sampler)->stats();
  EXPECT_EQ(st.late_spans_sampled.load(), 1u);
  EXPECT_EQ(st.late_spans_not_sampled.load(), 2u);
  EXPECT_EQ(st.traces_pending.load(), 0u);
  EXPECT_EQ(st.late_span_age.count(), 3u);
  EXPECT_EQ(st.late_span_age.sum_seconds(), 30.0);  // 3 spans, 10 s late each
}

TEST(SamplerTest, RefuseModeAnswersResourceExhaustedInsteadOfEvicting) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(0, 1);
  o.max_pending_traces = 2;
  o.when_full = WhenFull::kRefuse;
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1)), 1).ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 1)), 1).ok());
  EXPECT_EQ((*sampler)->Offer(One(MakeTrace(3, 1)), 1).code(),
            absl::StatusCode::kResourceExhausted);
  (*sampler)->PollForTesting();
  EXPECT_EQ((*sampler)->Offer(One(MakeTrace(3, 1)), 1).code(),
            absl::StatusCode::kResourceExhausted);
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();  // both decided: room again
  EXPECT_TRUE((*sampler)->Offer(One(MakeTrace(3, 1)), 1).ok());
  EXPECT_EQ((*sampler)->stats().traces_evicted.load(), 0u);
  EXPECT_EQ((*sampler)->stats().spans_refused.load(), 2u);
}

TEST(SamplerTest, RefuseModeAlsoBoundsPendingBytes) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(0, 1);
  o.max_pending_bytes = 30;  // "span-bytes" is 10 bytes
  o.when_full = WhenFull::kRefuse;
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 3)), 3).ok());
  (*sampler)->PollForTesting();
  EXPECT_EQ((*sampler)->stats().bytes_pending.load(), 30u);
  EXPECT_EQ((*sampler)->Offer(One(MakeTrace(2, 1)), 1).code(),
            absl::StatusCode::kResourceExhausted);
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();
  EXPECT_TRUE((*sampler)->Offer(One(MakeTrace(2, 1)), 1).ok());
}

TEST(SamplerTest, DryRunKeepsEverythingAndCountsWhatWouldHappen) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(0, 1);
  o.dry_run = true;
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1, /*error=*/true)), 1).ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 1)), 1).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();
  KeptTraces kept = consumer.kept();
  ASSERT_EQ(kept.size(), 2u);
  std::string not_sampled = "span-bytes";
  AppendStringAttribute(kDryRunAttribute, "not_sampled", &not_sampled);
  std::string sampled = Tagged("span-bytes", "errors");
  AppendStringAttribute(kDryRunAttribute, "sampled", &sampled);
  for (const KeptTrace& k : kept) {
    EXPECT_EQ(k.spans[0].span, k.trace_id == TestTraceId(1) ? sampled : not_sampled);
  }
  EXPECT_EQ((*sampler)->traces_sampled_total(), 1u);
  EXPECT_EQ((*sampler)->stats().traces_not_sampled.load(), 1u);
}

TEST(SamplerTest, SetPoliciesAppliesToPendingTracesAndRejectsBadSets) {
  FakeClock clock;
  RecordingConsumer consumer;
  auto sampler = Sampler::Create(Options(0), &consumer, &clock);
  ASSERT_TRUE(sampler.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(i, 1)), 1).ok());
  (*sampler)->PollForTesting();
  PolicyConfig bad;
  bad.name = "x";
  bad.type = "latency";
  bad.latency.threshold_ms = -1;
  PolicyConfig bad2 = bad;
  bad2.name = "y";
  bad2.type = "sometimes";
  absl::Status s = (*sampler)->SetPolicies({bad, bad2});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("threshold_ms: must be >= 0, got -1"), std::string::npos);
  EXPECT_NE(s.message().find("unknown policy type \"sometimes\""), std::string::npos);
  EXPECT_EQ((*sampler)->policies().size(), 2u);  // the running set stays

  PolicyConfig all;
  all.name = "all";
  all.type = "always_sample";
  ASSERT_TRUE((*sampler)->SetPolicies({all}).ok());
  ASSERT_EQ((*sampler)->policies().size(), 1u);
  EXPECT_EQ((*sampler)->stats().traces_pending.load(), 10u);  // nothing pending lost
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();
  EXPECT_EQ(consumer.kept().size(), 10u);                  // decided by the new set
  EXPECT_EQ((*sampler)->policy_stats().All().size(), 3u);  // errors, baseline, all
}

TEST(SamplerTest, DropPoliciesAreCountedApart) {
  FakeClock clock;
  RecordingConsumer consumer;
  SamplerOptions o = Options(100, 1);
  PolicyConfig drop;
  drop.name = "no-big";
  drop.type = "drop";
  PolicyConfig big;
  big.name = "big";
  big.type = "span_count";
  big.span_count.min_spans = 3;
  drop.sub_policies = {big};
  o.policies.push_back(drop);
  auto sampler = Sampler::Create(o, &consumer, &clock);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 3, /*error=*/true)), 3).ok());
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 1)), 1).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(30));
  (*sampler)->PollForTesting();
  ASSERT_EQ(consumer.kept().size(), 1u);
  EXPECT_EQ(consumer.kept()[0].trace_id, TestTraceId(2));
  EXPECT_EQ((*sampler)->stats().traces_dropped.load(), 1u);
  EXPECT_EQ((*sampler)->stats().spans_dropped.load(), 3u);
}

}  // namespace
}  // namespace tracekeep::sampling

namespace tracekeep::sampling {
namespace {

// A store that refuses writes (disk full) while `refusing`: kUnavailable, batch untouched.
class RefusingConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    if (refusing) return absl::UnavailableError("rocksdb at \"/data\": writes refused");
    return recording.Consume(std::move(traces));
  }
  bool refusing = true;
  RecordingConsumer recording;
};

// Kept traces the store cannot take wait in the sampler, in order, holding the low-water mark
// (so the journal keeps them), and go downstream once the store takes writes again.
TEST(SamplerTest, KeptTracesTheStoreRefusesWaitAndHoldTheLowWaterMark) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  RefusingConsumer consumer;
  SamplerOptions options = Options(100, /*shards=*/1);
  options.decision_wait = absl::Seconds(1);
  auto sampler = Sampler::Create(options, &consumer, &clock);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  const absl::Time first = clock.Now();
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 2)), 2).ok());
  clock.Advance(absl::Milliseconds(500));
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 3)), 3).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(2));
  (*sampler)->PollForTesting();  // both decided and kept; the store refuses

  const SamplerStats& stats = (*sampler)->stats();
  EXPECT_EQ(stats.traces_pending.load(), 0u);
  EXPECT_EQ(stats.spans_waiting.load(), 5u);
  EXPECT_EQ((*sampler)->LowWaterMark(), first) << "the journal must keep the waiting spans";
  EXPECT_TRUE(consumer.recording.kept().empty());

  // A late span of a kept trace waits behind the batch, in order.
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 1)), 1).ok());
  (*sampler)->PollForTesting();
  EXPECT_EQ(stats.spans_waiting.load(), 6u);
  EXPECT_EQ((*sampler)->LowWaterMark(), first);

  consumer.refusing = false;  // space is back
  (*sampler)->PollForTesting();
  const KeptTraces kept = consumer.recording.kept();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[2].trace_id, TestTraceId(1)) << "the late span comes after its batch";
  EXPECT_EQ(stats.spans_waiting.load(), 0u);
  EXPECT_EQ(stats.spans_retried.load(), 6u);
  EXPECT_EQ(stats.spans_lost_downstream.load(), 0u);
  EXPECT_EQ((*sampler)->LowWaterMark(), absl::InfiniteFuture());
}

TEST(SamplerTest, WaitingSpansAreBoundedAndTheExcessCounted) {
  FakeClock clock;
  RefusingConsumer consumer;
  SamplerOptions options = Options(100, /*shards=*/1);
  options.decision_wait = absl::Seconds(1);
  options.max_waiting_spans = 4;
  auto sampler = Sampler::Create(options, &consumer, &clock);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(1, 3)), 3).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(2));
  (*sampler)->PollForTesting();
  ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 3)), 3).ok());
  (*sampler)->PollForTesting();
  clock.Advance(absl::Seconds(2));
  (*sampler)->PollForTesting();
  EXPECT_EQ((*sampler)->stats().spans_waiting.load(), 3u);
  EXPECT_EQ((*sampler)->stats().spans_lost_downstream.load(), 3u);
}

}  // namespace
}  // namespace tracekeep::sampling

namespace tracekeep::sampling {
namespace {

// An in-memory decision log (the daemon's is a RocksDB column family, tested with it).
class MemoryDecisionLog final : public DecisionLog {
 public:
  absl::Status Append(const std::vector<DecisionRecord>& records) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const DecisionRecord& r : records) records_.push_back(r);
    return absl::OkStatus();
  }
  absl::Status Load(const std::function<void(DecisionRecord&&)>& fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (DecisionRecord r : records_) fn(std::move(r));
    return absl::OkStatus();
  }
  std::vector<DecisionRecord> records() {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }

 private:
  std::mutex mu_;
  std::vector<DecisionRecord> records_;
};

class SetOfHandedSpans final : public HandedSpans {
 public:
  absl::StatusOr<std::vector<bool>> Contains(const std::string& trace_id,
                                             const std::vector<SpanRecord>& spans) override {
    std::vector<bool> there;
    for (const SpanRecord& span : spans) {
      there.push_back(handed.count(trace_id + std::string(span.span_id)) > 0);
    }
    return there;
  }
  std::set<std::string> handed;
};

// Decisions outlive the sampler: a new one (a restart) loads them, late spans of a kept trace go
// on at once with the policy that kept it, late spans of a dropped trace are dropped, and spans
// replayed from the journal that were handed on before the restart are not handed on again.
TEST(SamplerTest, DecisionsSurviveARestartThroughTheDecisionLog) {
  FakeClock clock;
  MemoryDecisionLog log;
  SetOfHandedSpans handed;
  SamplerOptions options = Options(0, /*shards=*/2);
  options.decision_wait = absl::Seconds(1);
  options.decision_log = &log;
  options.handed_spans = &handed;
  const TraceSpans error_trace = MakeTrace(1, 2, /*error=*/true);
  {
    RecordingConsumer consumer;
    auto sampler = Sampler::Create(options, &consumer, &clock);
    ASSERT_TRUE(sampler.ok()) << sampler.status();
    ASSERT_TRUE((*sampler)->Offer(One(error_trace), 2).ok());
    ASSERT_TRUE((*sampler)->Offer(One(MakeTrace(2, 2)), 2).ok());
    (*sampler)->PollForTesting();
    clock.Advance(absl::Seconds(2));
    (*sampler)->PollForTesting();
    const KeptTraces kept = consumer.kept();  // a copy: iterate it, not a temporary's member
    ASSERT_EQ(kept.size(), 1u);
    for (const SpanRecord& s : kept[0].spans) {
      handed.handed.insert(TestTraceId(1) + std::string(s.span_id));
    }
  }
  const std::vector<DecisionRecord> records = log.records();
  ASSERT_EQ(records.size(), 2u);

  RecordingConsumer consumer;
  auto restarted = Sampler::Create(options, &consumer, &clock);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  absl::StatusOr<uint64_t> loaded = (*restarted)->LoadDecisions();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, 2u);

  // The journal replays both spans of trace 1 (handed on before) and a late span of it.
  TraceSpans replayed = error_trace;
  replayed.replayed = true;
  ASSERT_TRUE((*restarted)->Offer(One(replayed), 2).ok());
  TraceSpans late = MakeTrace(1, 1);
  late.spans[0].span_id = std::string(8, '\x7f');
  ASSERT_TRUE((*restarted)->Offer(One(late), 1).ok());
  ASSERT_TRUE((*restarted)->Offer(One(MakeTrace(2, 1)), 1).ok());
  (*restarted)->PollForTesting();

  const KeptTraces kept = consumer.kept();
  ASSERT_EQ(kept.size(), 1u) << "only the late span goes on, at once";
  EXPECT_EQ(kept[0].trace_id, TestTraceId(1));
  ASSERT_EQ(kept[0].spans.size(), 1u);
  EXPECT_EQ(kept[0].spans[0].span_id, std::string(8, '\x7f'));
  EXPECT_EQ(kept[0].policy, "errors");
  const SamplerStats& stats = (*restarted)->stats();
  EXPECT_EQ(stats.replayed_spans_skipped.load(), 2u);
  EXPECT_EQ(stats.late_spans_not_sampled.load(), 1u) << "trace 2 was dropped before the restart";
  EXPECT_EQ(stats.traces_pending.load(), 0u) << "no decided trace starts again";
  EXPECT_EQ(stats.decisions_restored.load(), 2u);
}

// Stands in for the intake journal: keeps a copy of every span's bytes at a made-up place.
class FakeJournal final : public SpanBytesReader {
 public:
  // Gives every span of `t` a place and keeps its bytes there.
  void Locate(TraceSpans* t) {
    std::lock_guard<std::mutex> lock(mu_);
    for (SpanRecord& s : t->spans) {
      s.journal_segment = 1;
      s.journal_offset = next_offset_;
      s.journal_size = static_cast<uint32_t>(s.span.size());
      bytes_[next_offset_] = s.span;
      next_offset_ += s.span.size() + 8;
    }
  }
  absl::Status ReadSpanBytes(std::vector<SpanRecord>* spans) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_) return absl::DataLossError("segment 1 is damaged");
    for (SpanRecord& s : *spans) {
      if (!s.in_journal_only) continue;
      s.span = bytes_.at(s.journal_offset);
      s.in_journal_only = false;
      ++spans_read_;
    }
    return absl::OkStatus();
  }
  // Also keeps `t` as one journal record: its spans can be read back whole (ReadTraceSpans).
  void LocateRecord(TraceSpans* t) {
    Locate(t);
    std::lock_guard<std::mutex> lock(mu_);
    t->journal_ref.segment = 1;
    t->journal_ref.offset = next_offset_;
    t->journal_ref.size = 64;
    records_[next_offset_] = *t;
    next_offset_ += 64;
  }
  absl::Status ReadTraceSpans(const std::vector<JournalRef>& refs, absl::string_view trace_id,
                              std::vector<SpanRecord>* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_) return absl::DataLossError("segment 1 is damaged");
    for (const JournalRef& ref : refs) {
      const TraceSpans& t = records_.at(ref.offset);
      if (t.trace_id != trace_id) continue;
      for (const SpanRecord& r : t.spans) {
        out->push_back(r);
        ++spans_read_;
      }
    }
    ++traces_read_;
    return absl::OkStatus();
  }
  void Fail() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = true;
  }
  int traces_read() {
    std::lock_guard<std::mutex> lock(mu_);
    return traces_read_;
  }
  int spans_read() {
    std::lock_guard<std::mutex> lock(mu_);
    return spans_read_;
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, std::string> bytes_;
  std::map<uint64_t, TraceSpans> records_;
  uint64_t next_offset_ = 8;
  int spans_read_ = 0;
  int traces_read_ = 0;
  bool fail_ = false;
};

// A sampler of `options` reading span bytes from `journal`, offered `t` and polled again once its
// decision is due (30 s later).
// A sampler reading journaled span bytes from `journal`; null (and a failure) if it cannot be
// created.
std::unique_ptr<Sampler> JournaledSampler(const SamplerOptions& options, FakeJournal* journal,
                                          TraceConsumer* consumer, FakeClock* clock) {
  auto sampler = Sampler::Create(options, consumer, clock);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  if (!sampler.ok()) return nullptr;
  (*sampler)->SetSpanBytesReader(journal);
  return std::move(*sampler);
}

std::unique_ptr<Sampler> DecideOne(const SamplerOptions& options, FakeJournal* journal,
                                   TraceConsumer* consumer, FakeClock* clock, TraceSpans t) {
  std::unique_ptr<Sampler> sampler = JournaledSampler(options, journal, consumer, clock);
  if (sampler == nullptr) return nullptr;
  const auto n = static_cast<int64_t>(t.spans.size());
  EXPECT_TRUE(sampler->Offer(One(std::move(t)), n).ok());
  sampler->PollForTesting();
  clock->Advance(absl::Seconds(30));
  sampler->PollForTesting();
  return sampler;
}

TraceSpans FromBuilder(const TraceBuilder& b) {
  PendingTrace p = b.Build();
  TraceSpans t;
  t.trace_id = p.trace_id;
  t.hash = p.hash;
  t.spans = std::move(p.spans);
  return t;
}

// A policy that reads single spans: keeps traces with customer.tier = "vip".
PolicyConfig VipPolicy() {
  PolicyConfig attr;
  attr.name = "vip";
  attr.type = "string_attribute";
  attr.string_attribute.key = "customer.tier";
  attr.string_attribute.values = {"vip"};
  return attr;
}

TEST(SamplerTest, PendingSpanBytesLiveInTheJournalAndComeBackForDecisions) {
  FakeClock clock;
  RecordingConsumer consumer;
  FakeJournal journal;
  SamplerOptions o = Options(0, 1);
  const PolicyConfig attr = VipPolicy();
  o.policies.push_back(attr);
  std::unique_ptr<Sampler> sampler = JournaledSampler(o, &journal, &consumer, &clock);
  ASSERT_NE(sampler, nullptr);

  TraceSpans vip =
      FromBuilder(TraceBuilder(1).WithAttr("customer.tier", std::string("vip")).Plain());
  TraceSpans error =
      FromBuilder(TraceBuilder(2).WithStatus(otlp::trace::v1::Status::STATUS_CODE_ERROR));
  TraceSpans plain =
      FromBuilder(TraceBuilder(3).WithAttr("customer.tier", std::string("basic")).Plain());
  TraceSpans unjournaled =
      FromBuilder(TraceBuilder(4).WithAttr("customer.tier", std::string("vip")));
  const std::string vip_bytes = vip.spans[0].span;
  const std::string error_bytes = error.spans[0].span;
  size_t bytes = 0;
  for (TraceSpans* t : {&vip, &error, &plain}) {
    journal.Locate(t);
    for (const SpanRecord& r : t->spans) bytes += r.span.size();
  }
  bytes += unjournaled.spans[0].span.size();
  std::vector<TraceSpans> batch;
  batch.push_back(std::move(vip));
  batch.push_back(std::move(error));
  batch.push_back(std::move(plain));
  batch.push_back(std::move(unjournaled));
  ASSERT_TRUE(sampler->Offer(std::move(batch), 6).ok());
  sampler->PollForTesting();
  // Pending bytes count what the spans weigh serialized, wherever the bytes are.
  EXPECT_EQ(sampler->stats().bytes_pending.load(), bytes);
  EXPECT_EQ(journal.spans_read(), 0);

  clock.Advance(absl::Seconds(30));
  sampler->PollForTesting();
  // The attribute policy read traces 1, 2 and 3 back (5 spans), once each; trace 4 never left
  // memory.
  EXPECT_EQ(journal.spans_read(), 5);
  std::map<std::string, KeptTrace> kept;
  for (KeptTrace& k : consumer.kept()) kept[k.trace_id] = std::move(k);
  ASSERT_EQ(kept.size(), 3u);
  ASSERT_EQ(kept[TestTraceId(1)].spans.size(), 2u);
  EXPECT_EQ(kept[TestTraceId(1)].spans[0].span, Tagged(vip_bytes, "vip"));
  ASSERT_EQ(kept[TestTraceId(2)].spans.size(), 1u);
  EXPECT_EQ(kept[TestTraceId(2)].spans[0].span, Tagged(error_bytes, "errors"));
  EXPECT_FALSE(kept[TestTraceId(2)].spans[0].in_journal_only);
  EXPECT_EQ(kept[TestTraceId(4)].policy, "vip");
  EXPECT_EQ(sampler->stats().spans_unreadable.load(), 0u);
  EXPECT_EQ(sampler->stats().evaluation_errors.load(), 0u);
}

// Whether the spans' bytes only (Locate) or the whole trace (LocateRecord: it waits as a summary)
// are in the journal.
TEST(SamplerTest, KeptSpansThatCannotBeReadBackAreCountedNotHandedOnEmpty) {
  for (const bool whole_trace : {false, true}) {
    SCOPED_TRACE(whole_trace ? "whole trace in the journal" : "span bytes in the journal");
    FakeClock clock;
    RecordingConsumer consumer;
    FakeJournal journal;
    std::unique_ptr<Sampler> sampler = JournaledSampler(Options(0, 1), &journal, &consumer, &clock);
    ASSERT_NE(sampler, nullptr);
    TraceSpans error = MakeTrace(1, 3, /*error=*/true);
    if (whole_trace) {
      journal.LocateRecord(&error);
    } else {
      journal.Locate(&error);
    }
    ASSERT_TRUE(sampler->Offer(One(std::move(error)), 3).ok());
    sampler->PollForTesting();
    journal.Fail();
    clock.Advance(absl::Seconds(30));
    sampler->PollForTesting();
    for (const KeptTrace& k : consumer.kept()) EXPECT_TRUE(k.spans.empty());
    EXPECT_EQ(sampler->stats().spans_unreadable.load(), 3u);
  }
}

TEST(SamplerTest, DryRunKeepsSpanBytesInMemory) {
  FakeClock clock;
  RecordingConsumer consumer;
  FakeJournal journal;
  SamplerOptions o = Options(0, 1);
  o.dry_run = true;
  TraceSpans t = MakeTrace(1, 2);
  journal.Locate(&t);
  ASSERT_NE(DecideOne(o, &journal, &consumer, &clock, std::move(t)), nullptr);
  ASSERT_EQ(consumer.kept().size(), 1u);
  EXPECT_EQ(journal.spans_read(), 0);
  EXPECT_NE(consumer.kept()[0].spans[0].span.find("span-bytes"), std::string::npos);
}

// With summary policies only (the default errors + probabilistic), a journaled trace waits
// without its spans; the kept ones are read back whole, the others never are.
TEST(SamplerTest, TracesWaitAsSummariesAndKeptOnesComeBackWhole) {
  FakeClock clock;
  RecordingConsumer consumer;
  FakeJournal journal;
  std::unique_ptr<Sampler> sampler = JournaledSampler(Options(0, 1), &journal, &consumer, &clock);
  ASSERT_NE(sampler, nullptr);
  TraceSpans error =
      FromBuilder(TraceBuilder(1).WithStatus(otlp::trace::v1::Status::STATUS_CODE_ERROR));
  const std::string error_bytes = error.spans[0].span;
  TraceSpans plain = MakeTrace(2, 3);
  journal.LocateRecord(&error);
  journal.LocateRecord(&plain);
  std::vector<TraceSpans> batch;
  batch.push_back(std::move(error));
  batch.push_back(std::move(plain));
  ASSERT_TRUE(sampler->Offer(std::move(batch), 4).ok());
  sampler->PollForTesting();
  EXPECT_EQ(sampler->stats().spans_pending.load(), 4u);
  EXPECT_EQ(journal.traces_read(), 0);

  clock.Advance(absl::Seconds(30));
  sampler->PollForTesting();
  EXPECT_EQ(journal.traces_read(), 1) << "only the kept trace is read back";
  const std::vector<KeptTrace> kept = consumer.kept();
  ASSERT_EQ(kept.size(), 1u);
  const KeptTrace& k = kept[0];
  EXPECT_EQ(k.trace_id, TestTraceId(1));
  ASSERT_EQ(k.spans.size(), 1u);
  EXPECT_EQ(k.spans[0].span, Tagged(error_bytes, "errors"));
  EXPECT_TRUE(k.spans[0].is_error);
  const SamplerStats& stats = sampler->stats();
  EXPECT_EQ(stats.spans_not_sampled.load(), 3u);
  EXPECT_EQ(stats.spans_pending.load(), 0u);
  EXPECT_EQ(stats.spans_unreadable.load(), 0u);
}

TEST(SamplerTest, APolicyThatReadsSpansKeepsTheirRecordsInMemory) {
  FakeClock clock;
  RecordingConsumer consumer;
  FakeJournal journal;
  SamplerOptions o = Options(0, 1);
  const PolicyConfig attr = VipPolicy();
  PolicyConfig both;
  both.name = "vip-errors";
  both.type = "and";
  both.sub_policies = {attr, o.policies[0]};
  o.policies.push_back(both);
  TraceSpans vip =
      FromBuilder(TraceBuilder(1).WithAttr("customer.tier", std::string("vip")).Plain());
  journal.LocateRecord(&vip);
  std::unique_ptr<Sampler> sampler = DecideOne(o, &journal, &consumer, &clock, std::move(vip));
  ASSERT_NE(sampler, nullptr);
  // The `and` reads spans through its string_attribute: the records stayed (their bytes only
  // were read back, span by span), not the trace.
  EXPECT_EQ(journal.traces_read(), 0);
  EXPECT_GT(journal.spans_read(), 0);
  EXPECT_EQ(sampler->stats().evaluation_errors.load(), 0u);
}

// Links every trace to one key and records what OnDecided saw.
class LinkingHook final : public TraceHook {
 public:
  explicit LinkingHook(bool by_reference) : by_reference_(by_reference) {}
  void OnBuffered(TraceSpans& spans) override { spans.linked_keys.push_back("order-1"); }
  HookVerdict OnDecided(PendingTrace& trace, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.emplace_back(trace.SpanCount(), trace.spans.size());
    HookVerdict v;
    v.action = HookVerdict::kHold;
    trace.spans.clear();
    return v;
  }
  bool HoldsJournalReferences() const override { return by_reference_; }
  std::vector<std::pair<size_t, size_t>> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  const bool by_reference_;
  std::mutex mu_;
  std::vector<std::pair<size_t, size_t>> seen_;  // (SpanCount, spans in memory)
};

TEST(SamplerTest, AHookGetsTheSpansBackUnlessItHoldsJournalReferences) {
  for (const bool by_reference : {true, false}) {
    SCOPED_TRACE(by_reference ? "by reference" : "with spans");
    FakeClock clock;
    RecordingConsumer consumer;
    FakeJournal journal;
    LinkingHook hook(by_reference);
    SamplerOptions o = Options(0, 1);
    o.hook = &hook;
    TraceSpans t = MakeTrace(1, 4);
    journal.LocateRecord(&t);
    ASSERT_NE(DecideOne(o, &journal, &consumer, &clock, std::move(t)), nullptr);
    ASSERT_EQ(hook.seen().size(), 1u);
    EXPECT_EQ(hook.seen()[0].first, 4u);
    EXPECT_EQ(hook.seen()[0].second, by_reference ? 0u : 4u);
    EXPECT_EQ(journal.traces_read(), by_reference ? 0 : 1);
    EXPECT_TRUE(consumer.kept().empty());
  }
}

}  // namespace
}  // namespace tracekeep::sampling
