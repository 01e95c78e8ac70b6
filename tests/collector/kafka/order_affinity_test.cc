// Order affinity without Kafka: the router (the sampler's hook on a trace owner) and the owner's
// intake of the order topic, wired through an in-memory stand-in for the topic, over a real order
// tracker.
#include "collector/kafka/order_affinity.h"

#include <mutex>
#include <set>

#include "collector/kafka/partitioner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/orders/order_test_util.h"

namespace tracekeep::kafka {
namespace {

using orders::MakeOrderTrace;
using orders::TestSpan;

constexpr int32_t kPartitions = 6;

// The order topic: what the router produced, refusing the first `refusals` batches.
class FakeOrderTopic final : public SpanIntake {
 public:
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (refusals > 0) {
      --refusals;
      return absl::UnavailableError("Kafka did not acknowledge");
    }
    for (const TraceSpans& t : traces) records.push_back(t);  // reads only, like the gateway
    return absl::OkStatus();
  }
  std::mutex mu_;
  int refusals = 0;
  std::vector<TraceSpans> records;
};

class Recording final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    for (KeptTrace& t : traces) kept.push_back(std::move(t));
    return absl::OkStatus();
  }
  KeptTraces kept;
};

class OrderAffinityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::OpenTestStore(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    orders_table_ = std::move(*store_->OpenTable("orders"));
    hold_table_ = std::move(*store_->OpenTable("order_hold"));
    orders::OrderTrackerOptions t;
    t.config = orders::DefaultOrdersConfig();
    t.config.baseline_percentage = 0;
    t.consumer = &owner_kept_;
    t.clock = &clock_;
    t.orders_table = orders_table_.get();
    t.hold_table = hold_table_.get();
    t.owns = [this](absl::string_view id) { return ownership_.Owns(id); };
    auto tracker = orders::OrderTracker::Create(t);
    ASSERT_TRUE(tracker.ok()) << tracker.status();
    tracker_ = std::move(*tracker);
    for (int p = 0; p < kPartitions; ++p) ownership_.Set(p, true);
    OrderRouter::Options r;
    r.producer = &topic_;
    r.partitions = kPartitions;
    r.retry_wait = absl::Milliseconds(1);
    router_ = std::make_unique<OrderRouter>(r, &stats_);
  }

  // One trace through the router as the sampler hands it: buffered, decided, batch done.
  sampling::HookVerdict Route(int trace_n, const std::vector<TestSpan>& spans, bool sampled) {
    TraceSpans t = MakeOrderTrace(trace_n, spans);
    router_->OnBuffered(t);
    sampling::PendingTrace p;
    p.trace_id = t.trace_id;
    p.spans = std::move(t.spans);
    p.linked_keys = std::move(t.linked_keys);
    p.all_journaled = false;
    sampling::HookVerdict v = router_->OnDecided(p, sampled);
    if (v.action == sampling::HookVerdict::kHold) EXPECT_TRUE(p.spans.empty());
    router_->OnDecisionsDone();
    return v;
  }

  // Hands what the topic holds to the owner, as its consumer would, and empties it.
  void Deliver() {
    OrderOwnerIntake owner(tracker_.get(), &owner_kept_, &stats_);
    ASSERT_TRUE(owner.Offer(std::move(topic_.records), 0).ok());
    ASSERT_TRUE(owner.Flush().ok());
    topic_.records.clear();
  }

  absl::Time T(int s) { return absl::FromUnixSeconds(1700000000) + absl::Seconds(s); }

  storage::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<storage::RocksDbSpanStore> store_;
  storage::KvTablePtr orders_table_, hold_table_;
  Recording owner_kept_;
  OrderOwnership ownership_{kPartitions};
  std::unique_ptr<orders::OrderTracker> tracker_;
  FakeOrderTopic topic_;
  OrderAffinityStats stats_;
  std::unique_ptr<OrderRouter> router_;
};

TEST_F(OrderAffinityTest, RoutesOrderTracesKeyedByOrderAndLeavesOthersToThePolicies) {
  // No order: the policies' decision stands, nothing routed.
  EXPECT_EQ(Route(1, {{"shop-api", "", "", T(0)}}, false).action, sampling::HookVerdict::kPolicy);
  EXPECT_TRUE(topic_.records.empty());
  // Not kept by the policies: taken, its owner decides.
  EXPECT_EQ(Route(2, {{"shop-api", "o1", "INITIATED", T(0)}}, false).action,
            sampling::HookVerdict::kHold);
  ASSERT_EQ(topic_.records.size(), 1u);
  EXPECT_THAT(topic_.records[0].linked_keys, ::testing::ElementsAre("o1"));
  EXPECT_EQ(topic_.records[0].spans.size(), 1u);
  // Kept by the policies: stays here, and its copy still tells its order what happened.
  EXPECT_EQ(Route(3, {{"crm-api", "o1", "SUBMITTED", T(1)}}, true).action,
            sampling::HookVerdict::kPolicy);
  EXPECT_EQ(topic_.records.size(), 2u);
  EXPECT_EQ(stats_.traces_routed.load(), 2u);
}

TEST_F(OrderAffinityTest, ATraceNamingOrdersOfTwoPartitionsReachesBothOwners) {
  std::string a = "o1", b;
  for (int i = 2; b.empty(); ++i) {
    const std::string id = "o" + std::to_string(i);
    if (Fnv1aPartition(id, kPartitions) != Fnv1aPartition(a, kPartitions)) b = id;
  }
  Route(1, {{"shop-api", a, "INITIATED", T(0)}, {"shop-api", b, "INITIATED", T(0)}}, false);
  ASSERT_EQ(topic_.records.size(), 2u);
  std::set<std::string> keys = {topic_.records[0].linked_keys[0], topic_.records[1].linked_keys[0]};
  EXPECT_EQ(keys, (std::set<std::string>{a, b}));
  // The owner of a's partition alone judges a.
  for (int p = 0; p < kPartitions; ++p) ownership_.Set(p, p == Fnv1aPartition(a, kPartitions));
  Deliver();
  EXPECT_TRUE(tracker_->GetOrder(a).ok());
  EXPECT_TRUE(absl::IsNotFound(tracker_->GetOrder(b).status()));
}

TEST_F(OrderAffinityTest, TheOwnerKeepsEveryTraceOfAnAnomalousOrderEarlierOnesIncluded) {
  Route(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false);
  Route(2, {{"crm-api", "o1", "SUBMITTED", T(1)}}, false);
  Deliver();
  EXPECT_TRUE(owner_kept_.kept.empty());
  EXPECT_EQ(stats_.traces_held.load(), 2u);
  // An error on another member's trace of the order: kept there by its policies, routed here.
  Route(3, {{"crm-api", "o1", "PRICE_CALCULATED", T(2), "", /*error=*/true}}, true);
  Deliver();
  std::set<std::string> kept;
  for (const KeptTrace& k : owner_kept_.kept) kept.insert(k.trace_id);
  EXPECT_EQ(kept, (std::set<std::string>{orders::OrderTraceId(1), orders::OrderTraceId(2),
                                         orders::OrderTraceId(3)}));
  for (const KeptTrace& k : owner_kept_.kept) {
    EXPECT_EQ(orders::SpanAttribute(k.spans[0].span, orders::kAnomalyAttribute), "ERROR");
  }
  // Later traces of it are kept at once.
  Route(4, {{"mes-api", "o1", "MANUFACTURING_STARTED", T(3)}}, false);
  Deliver();
  EXPECT_EQ(stats_.traces_kept.load(), 2u);  // trace 3 and trace 4, as they came
  EXPECT_EQ(owner_kept_.kept.back().trace_id, orders::OrderTraceId(4));
}

// A store that refuses (kUnavailable, taking nothing) the first `refusals` batches.
class Flaky final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    if (refusals > 0) {
      --refusals;
      return absl::UnavailableError("disk full");
    }
    for (KeptTrace& t : traces) kept.push_back(std::move(t));
    return absl::OkStatus();
  }
  int refusals = 0;
  KeptTraces kept;
};

TEST_F(OrderAffinityTest, TheOwnerHandsKeptTracesOnAtFlushOnceForManyRecords) {
  Route(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false);
  Route(2, {{"crm-api", "o1", "PRICE_CALCULATED", T(1), "", /*error=*/true}}, true);
  Route(3, {{"mes-api", "o1", "SUBMITTED", T(2)}}, false);
  Flaky store;
  store.refusals = 1;
  OrderOwnerIntake owner(tracker_.get(), &store, &stats_);
  // One record at a time, as the consumer hands them: nothing reaches the store before Flush.
  for (TraceSpans& t : topic_.records) {
    std::vector<TraceSpans> one;
    one.push_back(std::move(t));
    ASSERT_TRUE(owner.Offer(std::move(one), 1).ok());
  }
  topic_.records.clear();
  EXPECT_EQ(stats_.traces_kept.load(), 2u);  // traces 2 and 3: the order is anomalous
  EXPECT_TRUE(store.kept.empty());
  // The store takes nothing: the kept traces wait for the next Flush.
  EXPECT_EQ(owner.Flush().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store.kept.empty());
  ASSERT_TRUE(owner.Flush().ok());
  std::set<std::string> kept;
  for (const KeptTrace& k : store.kept) kept.insert(k.trace_id);
  EXPECT_EQ(kept, (std::set<std::string>{orders::OrderTraceId(2), orders::OrderTraceId(3)}));
  ASSERT_TRUE(owner.Flush().ok());  // nothing left to hand on
  EXPECT_EQ(store.kept.size(), 2u);
}

TEST_F(OrderAffinityTest, RoutingRetriesWhileKafkaRefusesAndCountsWhatShutdownGivesUp) {
  topic_.refusals = 3;
  Route(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false);
  EXPECT_EQ(topic_.records.size(), 1u);
  EXPECT_EQ(stats_.route_retries.load(), 3u);
  EXPECT_EQ(stats_.spans_route_dropped.load(), 0u);

  topic_.refusals = 1000000;
  router_->Stop(absl::Now());
  Route(2, {{"shop-api", "o2", "INITIATED", T(0)}}, false);
  EXPECT_EQ(topic_.records.size(), 1u);
  EXPECT_EQ(stats_.spans_route_dropped.load(), 1u);
}

}  // namespace
}  // namespace tracekeep::kafka
