#include "collector/query/trace_search.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/rocksdb_span_store.h"
#include "tests/storage/otlp_spans.h"
#include "tests/storage/test_store.h"

namespace tracekeep::query {
namespace {

using ::tracekeep::testing::OneTrace;
using ::tracekeep::testing::OtlpOrigin;
using ::tracekeep::testing::OtlpSpan;
using ::tracekeep::testing::SpanSpec;
using ::tracekeep::testing::TestTraceId;

constexpr int64_t kBase = 1700000000000000000;

TEST(SpanMatchesTest, EveryFilterMustHoldOnTheSameSpan) {
  const SpanRecord span =
      OtlpSpan(OtlpOrigin("shop", {{"env", "prod"}}), SpanSpec(TestTraceId(1), 1)
                                                          .Name("checkout")
                                                          .Start(kBase)
                                                          .Duration(500)
                                                          .Attribute("order.id", "A-1"));
  TraceFilter f;
  f.service = "shop";
  EXPECT_TRUE(SpanMatches(span, f));
  f.operation = "checkout";
  f.tags = {{"order.id", "A-1"}, {"env", "prod"}};
  f.duration_min_nanos = 500;
  f.duration_max_nanos = 500;
  f.start_min_unix_nanos = kBase;
  f.start_max_unix_nanos = kBase;
  f.error = false;
  EXPECT_TRUE(SpanMatches(span, f));
  TraceFilter g = f;
  g.service = "crm";
  EXPECT_FALSE(SpanMatches(span, g));
  g = f;
  g.operation = "refund";
  EXPECT_FALSE(SpanMatches(span, g));
  g = f;
  g.tags.emplace_back("env", "dev");
  EXPECT_FALSE(SpanMatches(span, g));
  g = f;
  g.duration_min_nanos = 501;
  EXPECT_FALSE(SpanMatches(span, g));
  g = f;
  g.start_min_unix_nanos = kBase + 1;
  EXPECT_FALSE(SpanMatches(span, g));
  g = f;
  g.error = true;
  EXPECT_FALSE(SpanMatches(span, g));
}

TEST(FindTracesTest, StopsAfterMaxExaminedAndSkipsWhatSummariesRuleOut) {
  storage::TempDir dir;
  auto store = storage::OpenTestStore(dir.path() + "/db");
  ASSERT_TRUE(store.ok()) << store.status();
  const SpanOriginPtr shop = OtlpOrigin("shop");
  for (uint32_t n = 1; n <= 10; ++n) {
    ASSERT_TRUE(
        (*store)
            ->Consume(OneTrace(
                TestTraceId(n),
                {OtlpSpan(shop,
                          SpanSpec(TestTraceId(n), 1).Start(kBase + n).Attribute("color", "red"))}))
            .ok());
  }
  TraceFilter f;
  f.service = "shop";
  f.tags = {{"color", "blue"}};  // not indexed: every trace is read and checked
  SearchStats stats;
  std::vector<std::string> found;
  auto collect = [&](FoundTrace&& t) {
    found.push_back(t.trace_id);
    return true;
  };
  ASSERT_TRUE(FindTraces(**store, *(*store)->trace_index(), f, 4, collect, &stats).ok());
  EXPECT_TRUE(found.empty());
  EXPECT_EQ(stats.traces_examined, 4u);
  EXPECT_TRUE(stats.truncated);

  TraceFilter errors;
  errors.service = "shop";
  errors.error = true;  // no span has an error: the summaries tell without a read
  stats = SearchStats();
  ASSERT_TRUE(FindTraces(**store, *(*store)->trace_index(), errors, 4, collect, &stats).ok());
  EXPECT_TRUE(found.empty());
  EXPECT_EQ(stats.traces_examined, 0u);
  EXPECT_EQ(stats.traces_skipped, 10u);
  EXPECT_FALSE(stats.truncated);
}

}  // namespace
}  // namespace tracekeep::query
