#include "bench/otlp_gen.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::bench {
namespace {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

struct OrderStep {
  std::string status;  // on the trace's root span; "" when absent
  int traces = 0;
};

// Per pass over the pool: order id -> what its traces recorded. Also checks that every span of
// an order trace names the same order and collects every trace id.
std::vector<std::map<std::string, OrderStep>> OrdersByPass(const RequestPool& pool, int passes,
                                                           std::set<std::string>* trace_ids) {
  std::vector<std::map<std::string, OrderStep>> out(passes);
  for (int pass = 0; pass < passes; ++pass) {
    std::map<std::string, std::string> order_of_trace;
    for (size_t i = 0; i < pool.size(); ++i) {
      otlp_collector::ExportTraceServiceRequest request;
      EXPECT_TRUE(request.ParseFromString(pool.Render(pass * pool.size() + i)));
      for (const auto& rs : request.resource_spans()) {
        for (const auto& ss : rs.scope_spans()) {
          for (const auto& span : ss.spans()) {
            trace_ids->insert(span.trace_id());
            std::string id, status;
            for (const auto& kv : span.attributes()) {
              if (kv.key() == "order.id") id = kv.value().string_value();
              if (kv.key() == "order.status") status = kv.value().string_value();
            }
            if (id.empty()) continue;
            auto [it, first] = order_of_trace.emplace(span.trace_id(), id);
            EXPECT_EQ(it->second, id) << "one order per trace";
            OrderStep& step = out[pass][id];
            if (first) ++step.traces;
            if (!status.empty()) step.status = status;
          }
        }
      }
    }
  }
  return out;
}

TEST(RequestPoolTest, OrdersWalkTheWholeLifecycleOneStatePerPassWithFreshIds) {
  RequestShape shape;
  shape.order_share = 0.1;
  auto pool = RequestPool::Create(shape, 16, 42);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_GT((*pool)->order_traces(), 0);
  EXPECT_EQ((*pool)->order_traces() % RequestPool::kOrderSteps, 0);
  EXPECT_NEAR(static_cast<double>((*pool)->order_traces()) / (*pool)->traces(), 0.1, 0.02);

  constexpr int kPasses = 12;
  std::set<std::string> trace_ids;
  const auto by_pass = OrdersByPass(**pool, kPasses, &trace_ids);
  const std::vector<std::string> lifecycle = {"INITIATED",
                                              "SUBMITTED",
                                              "PRICE_CALCULATED",
                                              "MANUFACTURING_APPROVED",
                                              "MANUFACTURING_STARTED",
                                              "MANUFACTURING_COMPLETED",
                                              "SHIPPED",
                                              "DELIVERED"};
  const size_t lanes = static_cast<size_t>((*pool)->order_traces() / RequestPool::kOrderSteps);
  for (int pass = 0; pass < kPasses; ++pass) {
    // Each pass shows every lane once per state: orders x states = order traces, one each.
    ASSERT_EQ(by_pass[pass].size(), static_cast<size_t>((*pool)->order_traces()));
    for (const auto& [id, step] : by_pass[pass]) EXPECT_EQ(step.traces, 1) << id;
  }
  // An order that starts in pass 0 goes through every state, in order, one per pass.
  size_t started = 0;
  for (const auto& [id, step] : by_pass[0]) {
    if (step.status != "INITIATED") continue;
    ++started;
    for (int k = 0; k < RequestPool::kOrderSteps; ++k) {
      auto it = by_pass[k].find(id);
      ASSERT_NE(it, by_pass[k].end()) << id << " missing in pass " << k;
      EXPECT_EQ(it->second.status, lifecycle[k]) << id << " in pass " << k;
    }
    EXPECT_EQ(by_pass[RequestPool::kOrderSteps].count(id), 0u) << id << " ends after DELIVERED";
  }
  EXPECT_EQ(started, lanes);
  // Trace ids stay unique across passes.
  EXPECT_EQ(trace_ids.size(), static_cast<size_t>((*pool)->traces() * kPasses));
}

// Receivers may key on one half of a trace id alone (the OpenTelemetry Collector's tail-sampling
// decision caches use the low half): each half must be as fresh as the whole id, across rounds
// and with spread traces too.
TEST(RequestPoolTest, BothHalvesOfEveryTraceIdAreFreshEveryRound) {
  for (int spread : {1, 3}) {
    RequestShape shape;
    shape.trace_spread = spread;
    auto pool = RequestPool::Create(shape, 6, 7);
    ASSERT_TRUE(pool.ok()) << pool.status();
    constexpr int kPasses = 5;
    std::set<std::string> ids, high, low;
    for (uint64_t n = 0; n < kPasses * (*pool)->size(); ++n) {
      otlp_collector::ExportTraceServiceRequest request;
      ASSERT_TRUE(request.ParseFromString((*pool)->Render(n)));
      for (const auto& rs : request.resource_spans()) {
        for (const auto& ss : rs.scope_spans()) {
          for (const auto& span : ss.spans()) {
            ASSERT_EQ(span.trace_id().size(), 16u);
            ids.insert(span.trace_id());
            high.insert(span.trace_id().substr(0, 8));
            low.insert(span.trace_id().substr(8));
          }
        }
      }
    }
    const size_t traces = static_cast<size_t>((*pool)->traces() * kPasses);
    EXPECT_EQ(ids.size(), traces) << "spread " << spread;
    EXPECT_EQ(high.size(), traces) << "spread " << spread;
    EXPECT_EQ(low.size(), traces) << "spread " << spread;
  }
}

// A load generator dates each request as it sends it: every span start and end and every event
// time moves by the shift, and nothing else of the request changes.
TEST(RequestPoolTest, RenderMovesEveryTimestampByTheShiftAndNothingElse) {
  RequestShape shape;
  shape.error_share = 0.3;  // error spans carry an exception event
  auto pool = RequestPool::Create(shape, 4, 11);
  ASSERT_TRUE(pool.ok()) << pool.status();
  constexpr int64_t kShift = int64_t{3600} * 1000000000 + 12345;
  int events = 0;
  for (uint64_t n = 0; n < (*pool)->size(); ++n) {
    otlp_collector::ExportTraceServiceRequest as_generated, shifted;
    ASSERT_TRUE(as_generated.ParseFromString((*pool)->Render(n)));
    ASSERT_TRUE(shifted.ParseFromString((*pool)->Render(n, kShift)));
    ASSERT_EQ(shifted.resource_spans_size(), as_generated.resource_spans_size());
    for (int r = 0; r < shifted.resource_spans_size(); ++r) {
      for (int s = 0; s < shifted.resource_spans(r).scope_spans_size(); ++s) {
        auto* spans = shifted.mutable_resource_spans(r)->mutable_scope_spans(s)->mutable_spans();
        const auto& before = as_generated.resource_spans(r).scope_spans(s).spans();
        ASSERT_EQ(spans->size(), before.size());
        for (int i = 0; i < spans->size(); ++i) {
          auto* span = spans->Mutable(i);
          const auto& old_span = before.Get(i);
          ASSERT_GT(old_span.start_time_unix_nano(), 0u);
          EXPECT_EQ(span->start_time_unix_nano(), old_span.start_time_unix_nano() + kShift);
          EXPECT_EQ(span->end_time_unix_nano(), old_span.end_time_unix_nano() + kShift);
          ASSERT_EQ(span->events_size(), old_span.events_size());
          for (int e = 0; e < span->events_size(); ++e) {
            ++events;
            EXPECT_EQ(span->events(e).time_unix_nano(),
                      old_span.events(e).time_unix_nano() + kShift);
            span->mutable_events(e)->set_time_unix_nano(old_span.events(e).time_unix_nano());
          }
          span->set_start_time_unix_nano(old_span.start_time_unix_nano());
          span->set_end_time_unix_nano(old_span.end_time_unix_nano());
        }
      }
    }
    // With the times put back, the request is the one generated.
    EXPECT_EQ(shifted.SerializeAsString(), as_generated.SerializeAsString()) << "request " << n;
  }
  EXPECT_GT(events, 0);
}

TEST(RequestPoolTest, OrderShareZeroMeansNoOrderAttributesAndBadSharesAreRefused) {
  RequestShape shape;
  shape.order_share = 0;
  auto pool = RequestPool::Create(shape, 4, 1);
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ((*pool)->order_traces(), 0);
  std::set<std::string> trace_ids;
  EXPECT_TRUE(OrdersByPass(**pool, 1, &trace_ids)[0].empty());

  shape.order_share = 1.5;
  auto bad = RequestPool::Create(shape, 4, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("order_share"));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("1.5"));
}

}  // namespace
}  // namespace tracekeep::bench
