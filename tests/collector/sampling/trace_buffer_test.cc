#include "collector/sampling/trace_buffer.h"

#include <map>

#include "gtest/gtest.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::sampling {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TraceBufferOptions Opts(absl::Duration wait, size_t max_traces) {
  TraceBufferOptions o;
  o.decision_wait = wait;
  o.max_traces = max_traces;
  return o;
}

TEST(TraceBufferTest, DecidesDecisionWaitAfterTheLastSpan) {
  TraceBuffer buffer(Opts(absl::Seconds(30), 100));
  std::vector<PendingTrace> out;
  buffer.Add(MakeTrace(1, 2), kT0, &out);
  buffer.Add(MakeTrace(1, 3), kT0 + absl::Seconds(10), &out);  // the wait restarts
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(buffer.trace_count(), 1u);
  EXPECT_EQ(buffer.span_count(), 5u);
  EXPECT_EQ(buffer.NextDeadline(), kT0 + absl::Seconds(40));

  buffer.TakeExpired(kT0 + absl::Seconds(39), &out);
  EXPECT_TRUE(out.empty());
  buffer.TakeExpired(kT0 + absl::Seconds(40), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].spans.size(), 5u);
  EXPECT_EQ(out[0].first_arrival, kT0);
  EXPECT_EQ(out[0].last_arrival, kT0 + absl::Seconds(10));
  EXPECT_EQ(buffer.trace_count(), 0u);
  EXPECT_EQ(buffer.span_count(), 0u);
  EXPECT_EQ(buffer.NextDeadline(), absl::InfiniteFuture());
}

TEST(TraceBufferTest, TracksErrorRootAndTimes) {
  TraceBuffer buffer(Opts(absl::Seconds(1), 100));
  std::vector<PendingTrace> out;
  buffer.Add(MakeTrace(7, 3, /*error=*/true), kT0, &out);
  buffer.TakeExpired(kT0 + absl::Seconds(1), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_error);
  EXPECT_TRUE(out[0].has_root);
  EXPECT_EQ(out[0].min_start_unix_nanos, 1000);
  EXPECT_EQ(out[0].max_end_unix_nanos, 2002);
}

TEST(TraceBufferTest, OverflowEvictsTheTraceDueSoonest) {
  TraceBuffer buffer(Opts(absl::Seconds(30), 2));
  std::vector<PendingTrace> evicted;
  buffer.Add(MakeTrace(1, 1), kT0, &evicted);
  buffer.Add(MakeTrace(2, 1), kT0 + absl::Seconds(1), &evicted);
  buffer.Add(MakeTrace(1, 1), kT0 + absl::Seconds(2), &evicted);  // trace 1 now due last
  buffer.Add(MakeTrace(3, 1), kT0 + absl::Seconds(3), &evicted);
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].trace_id, TestTraceId(2));
  EXPECT_EQ(buffer.trace_count(), 2u);
  // Adding spans to an existing trace never evicts.
  buffer.Add(MakeTrace(3, 1), kT0 + absl::Seconds(4), &evicted);
  EXPECT_EQ(evicted.size(), 1u);
}

TEST(TraceBufferTest, TakeAllEmptiesTheBuffer) {
  TraceBuffer buffer(Opts(absl::Seconds(30), 100));
  std::vector<PendingTrace> out;
  for (int i = 0; i < 10; ++i) buffer.Add(MakeTrace(i, 2), kT0, &out);
  buffer.TakeAll(&out);
  EXPECT_EQ(out.size(), 10u);
  EXPECT_EQ(buffer.span_count(), 0u);
  EXPECT_EQ(buffer.NextDeadline(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace tracekeep::sampling

namespace tracekeep::sampling {
namespace {

TEST(TraceBufferTest, RootArrivalShortensTheWait) {
  TraceBufferOptions o;
  o.decision_wait = absl::Seconds(30);
  o.decision_wait_after_root = absl::Seconds(5);
  TraceBuffer buffer(o);
  std::vector<PendingTrace> out;
  TraceSpans child = MakeTrace(1, 2);
  for (auto& s : child.spans) s.is_root = false;
  buffer.Add(std::move(child), kT0, &out);
  EXPECT_EQ(buffer.NextDeadline(), kT0 + absl::Seconds(30));
  buffer.Add(MakeTrace(1, 1), kT0 + absl::Seconds(2), &out);  // the root
  EXPECT_EQ(buffer.NextDeadline(), kT0 + absl::Seconds(7));
  buffer.TakeExpired(kT0 + absl::Seconds(7), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].spans.size(), 3u);
  EXPECT_EQ(out[0].due, kT0 + absl::Seconds(7));
}

TEST(TraceBufferTest, MaxTraceAgeBoundsAGrowingTrace) {
  TraceBufferOptions o;
  o.decision_wait = absl::Seconds(10);
  o.max_trace_age = absl::Seconds(25);
  TraceBuffer buffer(o);
  std::vector<PendingTrace> out;
  for (int s = 0; s <= 24; s += 8) buffer.Add(MakeTrace(1, 1), kT0 + absl::Seconds(s), &out);
  EXPECT_EQ(buffer.NextDeadline(), kT0 + absl::Seconds(25));
  buffer.TakeExpired(kT0 + absl::Seconds(25), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].spans.size(), 4u);
}

TEST(TraceBufferTest, PerTraceSpanAndByteBoundsDecideAtOnce) {
  TraceBufferOptions o;
  o.max_spans_per_trace = 4;
  TraceBuffer buffer(o);
  std::vector<PendingTrace> out;
  buffer.Add(MakeTrace(1, 3), kT0, &out);
  EXPECT_TRUE(out.empty());
  buffer.Add(MakeTrace(1, 1), kT0, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].spans.size(), 4u);
  EXPECT_EQ(buffer.trace_limit_hits(), 1u);
  EXPECT_EQ(buffer.trace_count(), 0u);
  EXPECT_EQ(buffer.NextDeadline(), absl::InfiniteFuture());  // its timer went stale

  TraceBufferOptions b;
  b.max_bytes_per_trace = 25;  // "span-bytes" is 10 bytes
  TraceBuffer bytes(b);
  out.clear();
  bytes.Add(MakeTrace(2, 2), kT0, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(bytes.span_bytes(), 20u);
  bytes.Add(MakeTrace(2, 1), kT0, &out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(bytes.span_bytes(), 0u);
}

}  // namespace
}  // namespace tracekeep::sampling

namespace tracekeep::sampling {
namespace {

TEST(TraceBufferTest, ByteBoundEvictsTheTracesDueSoonest) {
  TraceBufferOptions o = Opts(absl::Seconds(30), 100);
  o.max_bytes = 45;  // "span-bytes" is 10 bytes: four spans fit
  TraceBuffer buffer(o);
  std::vector<PendingTrace> evicted;
  buffer.Add(MakeTrace(1, 2), kT0, &evicted);
  buffer.Add(MakeTrace(2, 2), kT0 + absl::Seconds(1), &evicted);
  EXPECT_TRUE(evicted.empty());
  buffer.Add(MakeTrace(3, 1), kT0 + absl::Seconds(2), &evicted);  // 50 bytes > 45
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].trace_id, TestTraceId(1));
  EXPECT_EQ(evicted[0].due, kT0 + absl::Seconds(2));
  EXPECT_EQ(buffer.span_bytes(), 30u);
  EXPECT_EQ(buffer.evictions(), 1u);
}

TraceSpans Journaled(TraceSpans t, uint64_t offset) {
  t.journal_ref.segment = 3;
  t.journal_ref.offset = offset;
  t.journal_ref.size = 100;
  return t;
}

TEST(TraceBufferTest, ATraceTheJournalHasWaitsAsItsSummary) {
  TraceBufferOptions o = Opts(absl::Seconds(30), 100);
  o.max_spans_per_trace = 6;
  TraceBuffer buffer(o);
  std::vector<PendingTrace> out;
  buffer.Add(Journaled(MakeTrace(1, 2, /*error=*/true), 100), kT0, &out, /*leave_in_journal=*/true);
  // A later part the journal has stays there whatever the flag; one it has not stays in memory.
  buffer.Add(Journaled(MakeTrace(1, 2), 200), kT0, &out, /*leave_in_journal=*/false);
  buffer.Add(MakeTrace(1, 1), kT0, &out, /*leave_in_journal=*/true);
  // Without the flag, or without the journal's copy, a new trace keeps its spans.
  buffer.Add(Journaled(MakeTrace(2, 3), 300), kT0, &out, /*leave_in_journal=*/false);
  buffer.Add(MakeTrace(3, 1), kT0, &out, /*leave_in_journal=*/true);
  EXPECT_EQ(buffer.span_count(), 9u);
  EXPECT_EQ(buffer.span_bytes(), 90u);

  buffer.TakeExpired(kT0 + absl::Seconds(30), &out);
  ASSERT_EQ(out.size(), 3u);
  std::map<std::string, PendingTrace*> by_id;
  for (PendingTrace& t : out) by_id[t.trace_id] = &t;
  const PendingTrace& lean = *by_id.at(TestTraceId(1));
  EXPECT_TRUE(lean.spans_in_journal);
  EXPECT_EQ(lean.SpanCount(), 5u);
  ASSERT_EQ(lean.spans.size(), 1u) << "the part without a journal record";
  ASSERT_EQ(lean.journal_refs.size(), 2u);
  EXPECT_EQ(lean.journal_refs[1].offset, 200u);
  // The summary was taken before the records left.
  EXPECT_TRUE(lean.has_error);
  EXPECT_TRUE(lean.has_root);
  EXPECT_EQ(lean.min_start_unix_nanos, 1000);
  EXPECT_EQ(lean.max_end_unix_nanos, 2001);
  EXPECT_EQ(lean.span_bytes, 50u);
  EXPECT_FALSE(by_id.at(TestTraceId(2))->spans_in_journal);
  EXPECT_EQ(by_id.at(TestTraceId(2))->spans.size(), 3u);
  EXPECT_FALSE(by_id.at(TestTraceId(3))->spans_in_journal);
  EXPECT_EQ(by_id.at(TestTraceId(3))->SpanCount(), 1u);
  EXPECT_EQ(buffer.span_count(), 0u);
  EXPECT_EQ(buffer.span_bytes(), 0u);

  // The per-trace span bound counts the spans in the journal too.
  out.clear();
  buffer.Add(Journaled(MakeTrace(4, 4), 400), kT0, &out, /*leave_in_journal=*/true);
  EXPECT_TRUE(out.empty());
  buffer.Add(Journaled(MakeTrace(4, 2), 500), kT0, &out, /*leave_in_journal=*/true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].SpanCount(), 6u);
  EXPECT_TRUE(out[0].spans.empty());
}

}  // namespace
}  // namespace tracekeep::sampling
