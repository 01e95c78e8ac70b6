#include "collector/orders/order_tracker.h"

#include <functional>
#include <map>
#include <mutex>

#include "collector/sampling/sampler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_span_store.h"
#include "tests/collector/orders/order_test_util.h"
#include "tests/storage/test_store.h"

namespace tracekeep::orders {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class RecordingConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : traces) kept_.push_back(std::move(t));
    return absl::OkStatus();
  }
  KeptTraces kept() {
    std::lock_guard<std::mutex> lock(mu_);
    return kept_;
  }
  std::vector<std::string> trace_ids() {
    std::vector<std::string> ids;
    for (const KeptTrace& t : kept()) ids.push_back(t.trace_id);
    return ids;
  }

 private:
  std::mutex mu_;
  KeptTraces kept_;
};

std::vector<std::string> Types(const v1::Order& o) {
  std::vector<std::string> t;
  for (const auto& a : o.anomalies()) t.push_back(a.type());
  return t;
}

class OrderTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = DefaultOrdersConfig();
    config_.grace_period = absl::Seconds(10);
    config_.orphan_window = absl::Minutes(1);
    config_.baseline_percentage = 0;
    Open();
  }

  void Open() {
    auto store = storage::OpenTestStore(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto orders = store_->OpenTable("orders");
    auto hold = store_->OpenTable("order_hold");
    auto index = store_->OpenTable("order_index");
    ASSERT_TRUE(orders.ok() && hold.ok() && index.ok());
    orders_table_ = std::move(*orders);
    hold_table_ = std::move(*hold);
    index_table_ = std::move(*index);
    OrderTrackerOptions t;
    t.config = config_;
    t.consumer = &consumer_;
    t.clock = &clock_;
    t.orders_table = orders_table_.get();
    t.hold_table = hold_table_.get();
    t.index_table = index_table_.get();
    t.read_journal = read_journal_;
    t.owns = owns_;
    t.read_shared_record = read_shared_record_;
    t.on_records_written = on_records_written_;
    auto tracker = OrderTracker::Create(t);
    ASSERT_TRUE(tracker.ok()) << tracker.status();
    tracker_ = std::move(*tracker);
  }

  void Close() {
    tracker_->Shutdown(absl::InfiniteFuture());
    tracker_.reset();
    orders_table_.reset();
    hold_table_.reset();
    index_table_.reset();
    store_.reset();
  }

  // Reopens the tracker with a journal reader that reads the fake journal (journal_), counting
  // its reads in journal_reads_.
  void ReopenReadingTheFakeJournal() {
    read_journal_ = [this](const JournalRef& r,
                           absl::string_view) -> absl::StatusOr<std::vector<TraceSpans>> {
      ++journal_reads_;
      auto it = journal_.find(r.offset);
      if (it == journal_.end()) return absl::NotFoundError("no entry");
      return it->second;
    };
    Close();
    Open();
  }

  // Feeds one trace through the hook as the sampler would, not sampled by the policies. With
  // `journaled`, its spans are in the fake journal (journal_) like the intake journal has them.
  sampling::HookVerdict Feed(int trace_n, const std::vector<TestSpan>& spans, bool sampled = false,
                             bool journaled = false) {
    TraceSpans t = MakeOrderTrace(trace_n, spans);
    tracker_->OnBuffered(t);
    sampling::PendingTrace p;
    p.trace_id = t.trace_id;
    p.first_arrival = clock_.Now();
    if (journaled) {
      const JournalRef ref{1, 100 * journal_.size(), 100};
      journal_[ref.offset] = {t};
      p.journal_refs = {ref};
    } else {
      p.all_journaled = false;
    }
    p.spans = std::move(t.spans);
    p.linked_keys = std::move(t.linked_keys);
    sampling::HookVerdict v = tracker_->OnDecided(p, sampled);
    tracker_->OnDecisionsDone();
    return v;
  }

  v1::Order Get(const std::string& id) {
    auto o = tracker_->GetOrder(id);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : v1::Order();
  }

  absl::Time T(int seconds) { return t0_ + absl::Seconds(seconds); }

  const absl::Time t0_ = absl::FromUnixSeconds(1700000000);
  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  OrdersConfig config_;
  TempDir dir_;
  RecordingConsumer consumer_;
  std::unique_ptr<storage::RocksDbSpanStore> store_;
  storage::KvTablePtr orders_table_;
  storage::KvTablePtr hold_table_;
  storage::KvTablePtr index_table_;
  std::unique_ptr<OrderTracker> tracker_;
  // A stand-in for the intake journal's ReadAt: entries by offset.
  std::map<uint64_t, std::vector<TraceSpans>> journal_;
  int journal_reads_ = 0;  // reads of journal_ by ReopenReadingTheFakeJournal's reader
  std::function<absl::StatusOr<std::vector<TraceSpans>>(const JournalRef&, absl::string_view)>
      read_journal_;
  // In a cluster: the orders this tracker owns, the records others published, what it writes.
  std::function<bool(absl::string_view)> owns_;
  std::function<absl::StatusOr<std::optional<std::string>>(const std::string&)> read_shared_record_;
  std::function<void(const std::vector<storage::KvWrite>&)> on_records_written_;
};

// The small bookkeeping entries of held traces in order_hold (under 0xFF).
size_t MetaRows(storage::KvTable* table) {
  size_t n = 0;
  EXPECT_TRUE(table
                  ->Scan("\xff",
                         [&](absl::string_view, absl::string_view) {
                           ++n;
                           return true;
                         })
                  .ok());
  return n;
}

// Held traces in order_hold (its small bookkeeping entries, under 0xFE/0xFF, not counted).
size_t Rows(storage::KvTable* table) {
  size_t n = 0;
  EXPECT_TRUE(table
                  ->Scan("",
                         [&](absl::string_view key, absl::string_view) {
                           if (key.empty() || static_cast<uint8_t>(key[0]) < 0xfe) ++n;
                           return true;
                         })
                  .ok());
  return n;
}

TEST_F(OrderTrackerTest, HealthyOrderIsRecordedAcrossServicesAndItsHeldTracesReleased) {
  EXPECT_EQ(Feed(1, {{"shop-api", "o1", "INITIATED", T(0), "100"},
                     {"shop-api", "o1", "SUBMITTED", T(1), "100"}})
                .action,
            sampling::HookVerdict::kHold);
  EXPECT_EQ(Feed(2, {{"crm-api", "o1", "PRICE_CALCULATED", T(2), "100"},
                     {"crm-api", "o1", "MANUFACTURING_APPROVED", T(3), "100"}})
                .action,
            sampling::HookVerdict::kHold);
  Feed(3, {{"mes-api", "o1", "MANUFACTURING_STARTED", T(4)},
           {"mes-api", "o1", "MANUFACTURING_COMPLETED", T(5)}});
  Feed(4, {{"crm-api", "o1", "SHIPPED", T(6)}, {"crm-api", "o1", "DELIVERED", T(7)}});
  EXPECT_EQ(tracker_->stats().traces_held.load(), 4u);
  tracker_->Check();
  EXPECT_EQ(Get("o1").resolution(), v1::Order::ACTIVE);  // within grace: late spans may come

  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  const v1::Order o = Get("o1");
  EXPECT_EQ(o.resolution(), v1::Order::HEALTHY_RELEASED);
  EXPECT_THAT(o.anomalies(), IsEmpty());
  ASSERT_EQ(o.states_size(), 8);
  EXPECT_EQ(o.states(4).state(), "MANUFACTURING_STARTED");
  EXPECT_EQ(o.states(4).service(), "mes-api");
  EXPECT_EQ(o.states(4).trace_id(), OrderTraceId(3));
  EXPECT_EQ(o.trace_ids_size(), 4);
  EXPECT_THAT(consumer_.kept(), IsEmpty());
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
  EXPECT_EQ(tracker_->stats().traces_released_unkept.load(), 4u);
  EXPECT_EQ(tracker_->stats().orders_resolved.load(), 1u);
}

TEST_F(OrderTrackerTest, BaselineKeepsHealthyOrdersWithoutAnomalyAttribute) {
  config_.baseline_percentage = 100;
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"crm-api", "o1", "CANCELLED", T(1)}});
  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  EXPECT_EQ(Get("o1").resolution(), v1::Order::HEALTHY_KEPT);
  EXPECT_THAT(consumer_.trace_ids(), UnorderedElementsAre(OrderTraceId(1), OrderTraceId(2)));
  for (const KeptTrace& t : consumer_.kept()) {
    EXPECT_EQ(SpanAttribute(t.spans[0].span, kAnomalyAttribute), "");
  }
}

TEST_F(OrderTrackerTest, StalledOrderKeepsEarlierPendingAndLaterTraces) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"shop-api", "o1", "SUBMITTED", T(1)}});
  // Trace 3 is buffered before the anomaly but decided after it.
  TraceSpans pending = MakeOrderTrace(3, {{"crm-api", "o1", "", T(2)}});
  tracker_->OnBuffered(pending);
  EXPECT_THAT(consumer_.kept(), IsEmpty());

  clock_.Set(T(1) + absl::Hours(4) + absl::Seconds(10));
  tracker_->Check();
  v1::Order o = Get("o1");
  EXPECT_EQ(o.resolution(), v1::Order::ANOMALOUS);
  EXPECT_THAT(Types(o), ElementsAre("STALLED"));
  EXPECT_THAT(consumer_.trace_ids(), UnorderedElementsAre(OrderTraceId(1), OrderTraceId(2)));
  for (const KeptTrace& t : consumer_.kept()) {
    EXPECT_EQ(SpanAttribute(t.spans[0].span, kAnomalyAttribute), "STALLED");
    EXPECT_EQ(t.spans[0].origin->service_name, "shop-api");
  }

  sampling::PendingTrace p;
  p.trace_id = pending.trace_id;
  p.linked_keys = pending.linked_keys;
  p.spans = std::move(pending.spans);
  sampling::HookVerdict v = tracker_->OnDecided(p, false);
  EXPECT_EQ(v.action, sampling::HookVerdict::kKeep);
  // The sampler adds the annotation once it has the span bytes back.
  EXPECT_THAT(v.annotations, ElementsAre(Pair(kAnomalyAttribute, "STALLED")));
  EXPECT_EQ(Feed(4, {{"crm-api", "o1", "", T(9000)}}).action, sampling::HookVerdict::kKeep);
  EXPECT_THAT(Get("o1").kept_trace_ids(), UnorderedElementsAre(OrderTraceId(1), OrderTraceId(2),
                                                               OrderTraceId(3), OrderTraceId(4)));
  EXPECT_EQ(tracker_->stats().anomalies[0].load(), 1u);
}

TEST_F(OrderTrackerTest, ErrorSpanMakesTheOrderAnomalousAtOnce) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  EXPECT_EQ(Feed(2, {{"crm-api", "o1", "", T(1), "", /*error=*/true}}).action,
            sampling::HookVerdict::kKeep);
  EXPECT_THAT(Types(Get("o1")), ElementsAre("ERROR"));
  EXPECT_THAT(consumer_.trace_ids(), ElementsAre(OrderTraceId(1)));
  EXPECT_EQ(SpanAttribute(consumer_.kept()[0].spans[0].span, kAnomalyAttribute), "ERROR");
}

TEST_F(OrderTrackerTest, PriceChangedBetweenServices) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0), "100.00"}});
  Feed(2, {{"crm-api", "o1", "PRICE_CALCULATED", T(1), "120.00"}});
  const v1::Order o = Get("o1");
  EXPECT_THAT(Types(o), ElementsAre("CONTENT_CHANGED"));
  EXPECT_THAT(o.anomalies(0).detail(), ::testing::HasSubstr("was \"100.00\" (shop-api)"));
}

TEST_F(OrderTrackerTest, StatusEventsAndDuplicateManufacturingStart) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0), "", false, /*status_as_event=*/true}});
  Feed(2, {{"mes-api", "o1", "MANUFACTURING_STARTED", T(1), "", false, true}});
  EXPECT_THAT(Get("o1").anomalies(), IsEmpty());
  Feed(3, {{"mes-api", "o1", "MANUFACTURING_STARTED", T(2), "", false, true}});
  EXPECT_THAT(Types(Get("o1")), ElementsAre("DUPLICATE_STATE"));
}

TEST_F(OrderTrackerTest, SameSpanDeliveredTwiceIsNotADuplicate) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});  // client retry
  EXPECT_EQ(Get("o1").states_size(), 1);
  EXPECT_THAT(Get("o1").anomalies(), IsEmpty());
}

TEST_F(OrderTrackerTest, LateOutOfOrderStateWithinGraceIsNotSkipped) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"crm-api", "o1", "PRICE_CALCULATED", T(2)}});
  clock_.Advance(absl::Seconds(8));
  tracker_->Check();
  Feed(3, {{"shop-api", "o1", "SUBMITTED", T(1)}});  // exported late by shop-api
  clock_.Advance(absl::Minutes(5));
  tracker_->Check();
  EXPECT_THAT(Get("o1").anomalies(), IsEmpty());
  EXPECT_EQ(Get("o1").current_state(), "PRICE_CALCULATED");
}

TEST_F(OrderTrackerTest, SkippedAndOrphanAfterTheirWindows) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"crm-api", "o1", "PRICE_CALCULATED", T(2)}});
  Feed(3, {{"crm-api", "o2", "PRICE_CALCULATED", T(2)}});
  clock_.Advance(absl::Seconds(10));
  tracker_->Check();
  EXPECT_THAT(Types(Get("o1")), ElementsAre("SKIPPED"));
  EXPECT_THAT(Get("o2").anomalies(), IsEmpty());
  clock_.Advance(absl::Minutes(1));
  tracker_->Check();
  EXPECT_THAT(Types(Get("o2")), ElementsAre("ORPHAN"));
}

TEST_F(OrderTrackerTest, PolicySampledTraceIsRecordedAsKept) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}, /*sampled=*/true);
  EXPECT_THAT(Get("o1").kept_trace_ids(), ElementsAre(OrderTraceId(1)));
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
}

TEST_F(OrderTrackerTest, RestartKeepsDeadlinesAndHeldTraces) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0), "100"}});
  Feed(2, {{"shop-api", "o1", "SUBMITTED", T(1), "100"}});
  Close();  // flushes the record; the held traces are already on disk
  clock_.Set(T(1) + absl::Hours(4) + absl::Minutes(1));
  Open();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);
  EXPECT_EQ(Get("o1").current_state(), "SUBMITTED");
  tracker_->Check();
  EXPECT_THAT(Types(Get("o1")), ElementsAre("STALLED"));
  EXPECT_THAT(consumer_.trace_ids(), UnorderedElementsAre(OrderTraceId(1), OrderTraceId(2)));
  // The invariant seen before the restart is still the reference.
  Feed(3, {{"crm-api", "o1", "", T(2), "90"}});
  EXPECT_THAT(Types(Get("o1")), UnorderedElementsAre("STALLED", "CONTENT_CHANGED"));
}

// Holds written by tracekeep 0.1 (a v1::HeldTrace with resource and scope on every span, no
// small entry beside it) are read once at start-up, then restarts read only the small entries.
TEST_F(OrderTrackerTest, HoldsOfAnOlderVersionAreTakenOver) {
  config_.baseline_percentage = 100;
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}, /*sampled=*/true);  // the record only
  Close();
  v1::HeldTrace old;
  old.set_trace_id(OrderTraceId(7));
  old.set_held_unix_nanos(absl::ToUnixNanos(T(0)));
  v1::HeldSpan* span = old.add_spans();
  span->set_span(MakeOrderSpan({"crm-api", "o1", "", T(0)}, 70).span);
  span->set_span_id(std::string(8, '\x46'));
  span->set_service_name("crm-api");
  span->set_resource("resource-bytes");
  {
    auto store = storage::OpenTestStore(dir_.path() + "/db");
    ASSERT_TRUE(store.ok());
    auto hold = (*store)->OpenTable("order_hold");
    ASSERT_TRUE(hold.ok());
    ASSERT_TRUE((*hold)
                    ->Write({{std::string("o1\0", 3) + OrderTraceId(7) + std::string(8, '\1'),
                              old.SerializeAsString()}})
                    .ok());
    ASSERT_TRUE((*hold)->EraseRange("\xfe", "\xff").ok());  // as 0.1 left it: no marker
  }
  Open();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 1u);
  Close();
  Open();  // from the small entries this time
  EXPECT_EQ(tracker_->stats().traces_held.load(), 1u);
  Feed(2, {{"crm-api", "o1", "CANCELLED", T(1)}});
  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  EXPECT_EQ(Get("o1").resolution(), v1::Order::HEALTHY_KEPT);
  const KeptTraces kept = consumer_.kept();
  bool found = false;
  for (const KeptTrace& k : kept) {
    if (k.trace_id != OrderTraceId(7)) continue;
    found = true;
    ASSERT_EQ(k.spans.size(), 1u);
    EXPECT_EQ(k.spans[0].origin->service_name, "crm-api");
    EXPECT_EQ(k.spans[0].origin->resource, "resource-bytes");
  }
  EXPECT_TRUE(found) << "the 0.1 hold was not kept with its order";
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
}

TEST_F(OrderTrackerTest, ResolvedRecordsAreDeletedAfterRetention) {
  config_.record_retention = absl::Hours(2);
  config_.resolved_retention = absl::Minutes(1);
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}, {"shop-api", "o1", "CANCELLED", T(1)}});
  Feed(2, {{"shop-api", "o2", "INITIATED", T(0)}});
  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  EXPECT_EQ(Get("o1").resolution(), v1::Order::HEALTHY_RELEASED);
  clock_.Advance(absl::Hours(1));
  tracker_->Check();
  EXPECT_TRUE(tracker_->GetOrder("o1").ok());  // out of memory, still on disk
  clock_.Advance(absl::Hours(1));
  tracker_->Check();
  EXPECT_EQ(tracker_->GetOrder("o1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tracker_->stats().records_purged.load(), 1u);
  EXPECT_TRUE(tracker_->GetOrder("o2").ok());  // active (and anomalous by now): kept
}

TEST_F(OrderTrackerTest, ForceKeepReleasesHeldTracesToTheConsumer) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  EXPECT_TRUE(tracker_->ForceKeep("o1").ok());
  EXPECT_THAT(consumer_.trace_ids(), ElementsAre(OrderTraceId(1)));
  EXPECT_EQ(Feed(2, {{"shop-api", "o1", "SUBMITTED", T(1)}}).action, sampling::HookVerdict::kKeep);
  EXPECT_EQ(tracker_->ForceKeep("nope").code(), absl::StatusCode::kNotFound);
}

TEST_F(OrderTrackerTest, HoldLimitReleasesOldestHoldsAndCountsThem) {
  config_.max_held_traces = 2;
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  clock_.Advance(absl::Seconds(1));
  Feed(2, {{"shop-api", "o2", "INITIATED", T(1)}});
  Feed(3, {{"shop-api", "o2", "SUBMITTED", T(2)}});
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);
  EXPECT_EQ(tracker_->stats().traces_released_unkept.load(), 1u);
}

// While the hold space stays full, each check releases the oldest holds of all, including those
// of orders that started holding after the previous check.
TEST_F(OrderTrackerTest, AFullHoldSpaceReleasesTheOldestHoldsCheckAfterCheck) {
  config_.max_held_traces = 2;
  Close();
  Open();
  for (int i = 1; i <= 4; ++i) {
    Feed(i, {{"shop-api", absl::StrCat("o", i), "INITIATED", T(i)}});
    clock_.Advance(absl::Seconds(1));
  }
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);
  EXPECT_EQ(tracker_->stats().traces_released_no_space.load(), 2u);
  Feed(5, {{"shop-api", "o5", "INITIATED", T(5)}});
  clock_.Advance(absl::Seconds(1));
  Feed(6, {{"shop-api", "o6", "INITIATED", T(6)}});
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);
  EXPECT_EQ(tracker_->stats().traces_released_no_space.load(), 4u);
  // o3 and o4 went; o5 and o6 still hold theirs.
  for (const char* id : {"o3", "o4", "o5", "o6"}) ASSERT_TRUE(tracker_->ForceKeep(id).ok());
  EXPECT_THAT(consumer_.trace_ids(), ElementsAre(OrderTraceId(5), OrderTraceId(6)));
}

// An id named by too many traces (a test order, a misconfigured attribute) stops growing: spans
// of further traces are not tracked (nor held), and counted; traces already linked still are.
TEST_F(OrderTrackerTest, TracesPerOrderAreBounded) {
  config_.max_traces_per_order = 2;
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"shop-api", "o1", "SUBMITTED", T(1)}});
  const sampling::HookVerdict third = Feed(3, {{"shop-api", "o1", "PRICE_CALCULATED", T(2)}});
  EXPECT_NE(third.action, sampling::HookVerdict::kHold) << "an untracked trace is not held";
  Feed(2, {{"pricing", "o1", "PRICE_CALCULATED", T(3)}});  // a linked trace goes on being tracked
  const v1::Order o = Get("o1");
  EXPECT_THAT(o.trace_ids(), ElementsAre(OrderTraceId(1), OrderTraceId(2)));
  ASSERT_EQ(o.states_size(), 3);
  EXPECT_EQ(o.states(2).trace_id(), OrderTraceId(2));
  EXPECT_EQ(tracker_->stats().spans_over_trace_limit.load(), 1u);
}

// An order can be wrong in more than one way: each anomaly type is recorded once, with its time,
// and counted.
TEST_F(OrderTrackerTest, BackToInitiatedIsIllegalTransitionAndDuplicateState) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}, {"shop-api", "o1", "SUBMITTED", T(1)}});
  Feed(2, {{"shop-api", "o1", "INITIATED", T(2)}});
  EXPECT_THAT(Types(Get("o1")), ElementsAre("DUPLICATE_STATE"));  // at once
  clock_.Advance(absl::Seconds(11));                              // settled
  tracker_->Check();
  const v1::Order o = Get("o1");
  EXPECT_THAT(Types(o), ElementsAre("DUPLICATE_STATE", "ILLEGAL_TRANSITION"));
  EXPECT_EQ(o.anomalies(1).detected_unix_nanos(), absl::ToUnixNanos(clock_.Now()));
  EXPECT_EQ(tracker_->stats().anomalies[2].load(), 1u);  // ILLEGAL_TRANSITION
  EXPECT_EQ(tracker_->stats().anomalies[3].load(), 1u);  // DUPLICATE_STATE
  OrderQuery q;
  q.anomaly_type = "ILLEGAL_TRANSITION";
  auto page = tracker_->ListOrders(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->orders.size(), 1u);
  q.anomaly_type = "DUPLICATE_STATE";
  page = tracker_->ListOrders(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->orders.size(), 1u);
}

TEST_F(OrderTrackerTest, OrphanThatStopsIsAlsoStalled) {
  Feed(1, {{"crm-api", "o1", "SUBMITTED", T(0)}});
  clock_.Advance(absl::Minutes(2));  // past the orphan window
  tracker_->Check();
  EXPECT_THAT(Types(Get("o1")), ElementsAre("ORPHAN"));
  clock_.Set(T(0) + absl::Hours(4) + absl::Seconds(11));  // SUBMITTED's deadline + grace
  tracker_->Check();
  EXPECT_THAT(Types(Get("o1")), ElementsAre("ORPHAN", "STALLED"));
  EXPECT_EQ(tracker_->stats().anomalies[0].load(), 1u);  // STALLED
  EXPECT_EQ(tracker_->stats().anomalies[6].load(), 1u);  // ORPHAN
}

TEST_F(OrderTrackerTest, ErrorThenSilenceIsAlsoStalled) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0), "", /*error=*/true}});
  EXPECT_THAT(Types(Get("o1")), ElementsAre("ERROR"));
  clock_.Set(T(0) + absl::Hours(1) + absl::Seconds(11));
  tracker_->Check();
  EXPECT_THAT(Types(Get("o1")), ElementsAre("ERROR", "STALLED"));
  // Later traces of the order are kept, annotated with every type.
  const sampling::HookVerdict v = Feed(2, {{"shop-api", "o1", "", T(5000)}});
  EXPECT_EQ(v.action, sampling::HookVerdict::kKeep);
}

// Check() works on what is due: orders whose next deadline, grace period or window has come,
// not every active order.
TEST_F(OrderTrackerTest, CheckLooksOnlyAtOrdersThatAreDue) {
  for (int i = 0; i < 200; ++i) {
    Feed(i + 1, {{"shop-api", absl::StrCat("o", i), "INITIATED", T(0)}});
  }
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_checked.load(), 0u);  // nothing due yet
  clock_.Advance(absl::Seconds(11));                       // the grace period ends
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_checked.load(), 200u);
  clock_.Advance(absl::Minutes(30));
  tracker_->Check();
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_checked.load(), 200u);  // next: INITIATED's 1h deadline
  EXPECT_EQ(tracker_->stats().overdue[0].load(), 0);
  clock_.Set(T(0) + absl::Hours(1) + absl::Seconds(1));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_checked.load(), 400u);
  EXPECT_EQ(tracker_->stats().overdue[0].load(), 200);  // overdue, within the grace period
  EXPECT_THAT(Get("o7").anomalies(), IsEmpty());
  clock_.Set(T(0) + absl::Hours(1) + absl::Seconds(11));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_checked.load(), 600u);
  EXPECT_THAT(Types(Get("o7")), ElementsAre("STALLED"));
  EXPECT_EQ(tracker_->stats().in_state[0].load(), 0);  // anomalous: no longer active
}

// An order only ever read (its id on spans, no state) releases its held traces after
// read_only_hold_time instead of max_hold_time; a state arriving later tracks it again.
TEST_F(OrderTrackerTest, ReadOnlyOrderReleasesItsHoldsEarly) {
  EXPECT_EQ(Feed(1, {{"shop-api", "old", "", T(0)}}).action, sampling::HookVerdict::kHold);
  EXPECT_EQ(Feed(2, {{"shop-api", "old", "", T(1)}}).action, sampling::HookVerdict::kHold);
  clock_.Advance(config_.read_only_hold_time - absl::Seconds(1));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);
  clock_.Advance(absl::Seconds(1));
  tracker_->Check();
  EXPECT_EQ(Get("old").resolution(), v1::Order::READ_ONLY);
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
  EXPECT_EQ(tracker_->stats().traces_released_unkept.load(), 2u);
  EXPECT_EQ(tracker_->stats().orders_read_only.load(), 1u);
  EXPECT_EQ(tracker_->stats().orders_tracked.load(), 0u);
  EXPECT_THAT(consumer_.kept(), IsEmpty());
  Feed(3, {{"shop-api", "old", "INITIATED", T(100)}});
  EXPECT_EQ(Get("old").resolution(), v1::Order::ACTIVE);
  EXPECT_EQ(tracker_->stats().orders_tracked.load(), 1u);
}

// A held trace is stored with each resource and scope once, and comes back whole.
TEST_F(OrderTrackerTest, HeldTraceComesBackWithItsResourceAndScope) {
  config_.baseline_percentage = 100;
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)},
           {"crm-api", "o1", "", T(0)},
           {"shop-api", "o1", "", T(0)}});
  Feed(2, {{"crm-api", "o1", "CANCELLED", T(1)}});
  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  const KeptTraces kept = consumer_.kept();
  ASSERT_EQ(kept.size(), 2u);
  for (const KeptTrace& t : kept) {
    for (const SpanRecord& r : t.spans) {
      ASSERT_NE(r.origin, nullptr);
      EXPECT_EQ(SpanAttribute(r.span, "order.id"), "o1");
    }
  }
  const KeptTrace& first = kept[0].trace_id == OrderTraceId(1) ? kept[0] : kept[1];
  ASSERT_EQ(first.spans.size(), 3u);
  EXPECT_EQ(first.spans[0].origin->service_name, "shop-api");
  EXPECT_EQ(first.spans[1].origin->service_name, "crm-api");
  EXPECT_EQ(first.spans[2].origin->service_name, "shop-api");
}

// Many orders' traces arrive in one request: when their holds outlive hold_in_journal, the
// request's journal entry is read once for all of them, without holding any shard's lock.
TEST_F(OrderTrackerTest, HoldsOfOneJournalEntryAreCopiedWithOneRead) {
  ReopenReadingTheFakeJournal();
  constexpr int kOrders = 40;  // spread over the tracker's shards
  const JournalRef ref{1, 100, 5000};
  std::vector<TraceSpans> request;
  for (int i = 0; i < kOrders; ++i) {
    request.push_back(
        MakeOrderTrace(i + 1, {{"shop-api", absl::StrCat("o", i), "INITIATED", T(0)}}));
  }
  journal_[ref.offset] = request;
  for (TraceSpans& t : request) {
    tracker_->OnBuffered(t);
    sampling::PendingTrace p;
    p.trace_id = t.trace_id;
    p.first_arrival = clock_.Now();
    p.journal_refs = {ref};
    p.spans = std::move(t.spans);
    p.linked_keys = std::move(t.linked_keys);
    ASSERT_EQ(tracker_->OnDecided(p, false).action, sampling::HookVerdict::kHold);
  }
  tracker_->OnDecisionsDone();
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), static_cast<uint64_t>(kOrders));
  clock_.Advance(config_.hold_in_journal + absl::Seconds(1));
  tracker_->Check();
  EXPECT_EQ(journal_reads_, 1);
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), static_cast<uint64_t>(kOrders));
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 0u);
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture());
  journal_.clear();  // truncated: every trace is read from order_hold now
  ASSERT_TRUE(tracker_->ForceKeep("o7").ok());
  ASSERT_EQ(consumer_.kept().size(), 1u);
  EXPECT_EQ(consumer_.kept()[0].trace_id, request[7].trace_id);
  ASSERT_EQ(consumer_.kept()[0].spans.size(), 1u);
  EXPECT_EQ(SpanAttribute(consumer_.kept()[0].spans[0].span, "order.id"), "o7");
}

// An order's holds arrive at different times: each is copied into order_hold when its own
// hold_in_journal has passed, not earlier with the first and not forgotten after it.
TEST_F(OrderTrackerTest, LaterHoldsOfAnOrderAreCopiedWhenTheirOwnTimeComes) {
  ReopenReadingTheFakeJournal();
  const absl::Time first = clock_.Now();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false, true);
  clock_.Advance(absl::Seconds(10));
  Feed(2, {{"shop-api", "o1", "SUBMITTED", T(1)}}, false, true);
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 2u);
  EXPECT_EQ(tracker_->LowWaterMark(), first);

  clock_.Advance(config_.hold_in_journal - absl::Seconds(9));  // the first one's time only
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), 1u);
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 1u);
  EXPECT_EQ(tracker_->LowWaterMark(), first + absl::Seconds(10)) << "the second hold's entry";

  clock_.Advance(absl::Seconds(10));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), 2u);
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 0u);
  EXPECT_EQ(Rows(hold_table_.get()), 2u);
  journal_.clear();  // truncated: both come back from order_hold
  ASSERT_TRUE(tracker_->ForceKeep("o1").ok());
  std::vector<std::string> kept;
  for (const KeptTrace& k : consumer_.kept()) kept.push_back(k.trace_id);
  EXPECT_THAT(kept, UnorderedElementsAre(OrderTraceId(1), OrderTraceId(2)));
}

// The journal is told to keep entries by the tenth of a second of their holds: never later than
// a hold's own arrival, and holds of one tenth release it only when the last of them goes.
TEST_F(OrderTrackerTest, HoldsOfOneTenthOfASecondPinItUntilTheLastIsCopied) {
  ReopenReadingTheFakeJournal();
  const absl::Time start = clock_.Now();  // a whole second
  clock_.Advance(absl::Milliseconds(30));
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false, true);
  clock_.Advance(absl::Milliseconds(40));  // start + 70 ms: the same tenth
  Feed(2, {{"shop-api", "o2", "INITIATED", T(0)}}, false, true);
  clock_.Advance(absl::Milliseconds(60));  // start + 130 ms: the next one
  Feed(3, {{"shop-api", "o3", "INITIATED", T(0)}}, false, true);
  ASSERT_EQ(tracker_->stats().traces_held_in_journal.load(), 3u);
  EXPECT_EQ(tracker_->LowWaterMark(), start);

  // hold_in_journal has passed for the first hold only (cutoff start + 50 ms).
  clock_.Advance(config_.hold_in_journal - absl::Milliseconds(80));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), 1u);
  EXPECT_EQ(tracker_->LowWaterMark(), start) << "the second hold is of the same tenth";

  clock_.Advance(absl::Milliseconds(40));  // cutoff start + 90 ms: the second one too
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), 2u);
  EXPECT_EQ(tracker_->LowWaterMark(), start + absl::Milliseconds(100)) << "the third hold's";

  clock_.Advance(absl::Milliseconds(100));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), 3u);
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture());
}

// With the intake journal, a held trace is a reference to the journal's entries: nothing is
// written, the journal is told to keep them (LowWaterMark) until the order is resolved, and a
// kept order's traces are read back from it.
TEST_F(OrderTrackerTest, HoldsInTheJournalWriteNothingAndPinItUntilReleased) {
  ReopenReadingTheFakeJournal();
  const absl::Time first = clock_.Now();
  EXPECT_EQ(Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false, true).action,
            sampling::HookVerdict::kHold);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Feed(2, {{"shop-api", "o2", "INITIATED", T(0)}}, false, true).action,
            sampling::HookVerdict::kHold);
  EXPECT_EQ(Rows(hold_table_.get()), 0u);
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 2u);
  EXPECT_EQ(tracker_->LowWaterMark(), first);

  // o1 goes wrong: its held trace comes back from the journal, whole, and is kept.
  Feed(3, {{"crm-api", "o1", "", T(1), "", /*error=*/true}}, false, true);
  const KeptTraces kept = consumer_.kept();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].trace_id, OrderTraceId(1));
  ASSERT_EQ(kept[0].spans.size(), 1u);
  EXPECT_EQ(SpanAttribute(kept[0].spans[0].span, "order.status"), "INITIATED");
  EXPECT_EQ(SpanAttribute(kept[0].spans[0].span, kAnomalyAttribute), "ERROR");
  EXPECT_EQ(tracker_->LowWaterMark(), first + absl::Seconds(1));  // o2's hold only

  // o2 stays unresolved past hold_in_journal: its hold is copied into order_hold, and the
  // journal may forget it.
  clock_.Advance(config_.hold_in_journal);
  tracker_->Check();
  EXPECT_EQ(Rows(hold_table_.get()), 1u);
  EXPECT_EQ(tracker_->stats().traces_spilled.load(), 1u);
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 0u);
  EXPECT_EQ(tracker_->stats().traces_held.load(), 1u);
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture());
  journal_.clear();  // truncated
  EXPECT_EQ(MetaRows(hold_table_.get()), 1u) << "the copied hold has its small bookkeeping entry";
  ASSERT_TRUE(tracker_->ForceKeep("o2").ok());
  ASSERT_EQ(consumer_.kept().size(), 2u);
  EXPECT_EQ(consumer_.kept()[1].trace_id, OrderTraceId(2));
  EXPECT_EQ(consumer_.kept()[1].spans.size(), 1u);
  tracker_->Check();
  EXPECT_EQ(Rows(hold_table_.get()), 0u);
  EXPECT_EQ(MetaRows(hold_table_.get()), 0u) << "released with its hold";
}

// With the intake journal, an active order's record is not rewritten for every span that
// changes it: the journal keeps those spans (LowWaterMark) and a restart replays them, so the
// record is written once its order resolves, or hold_in_journal after the first unwritten change.
TEST_F(OrderTrackerTest, ActiveOrderRecordsWaitWhileTheJournalKeepsTheirSpans) {
  read_journal_ = [](const JournalRef&,
                     absl::string_view) -> absl::StatusOr<std::vector<TraceSpans>> {
    return std::vector<TraceSpans>{};
  };
  Close();
  Open();
  auto ingest = [&](int n, const std::vector<TestSpan>& spans) {
    TraceSpans t = MakeOrderTrace(n, spans);
    t.arrival_unix_nanos = absl::ToUnixNanos(clock_.Now());
    tracker_->OnBuffered(t);
  };
  auto on_disk = [&](const std::string& id) {
    absl::StatusOr<std::optional<std::string>> stored = orders_table_->Get(id);
    EXPECT_TRUE(stored.ok()) << stored.status();
    v1::Order o;
    if (stored.ok() && stored->has_value()) EXPECT_TRUE(o.ParseFromString(**stored));
    return o;
  };
  const absl::Time first = clock_.Now();
  ingest(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  clock_.Advance(absl::Seconds(1));
  ingest(2, {{"shop-api", "o1", "SUBMITTED", T(1)}});
  ingest(3, {{"shop-api", "o2", "INITIATED", T(1)}});
  tracker_->Check();
  EXPECT_EQ(on_disk("o1").order_id(), "") << "written although the journal keeps its spans";
  EXPECT_EQ(Get("o1").states_size(), 2) << "memory has every change";
  EXPECT_EQ(tracker_->LowWaterMark(), first);

  // o2 goes wrong: an anomalous order is written at the next check, and its pin released.
  clock_.Advance(absl::Seconds(1));
  ingest(4, {{"crm-api", "o2", "", T(2), "", /*error=*/true}});
  tracker_->Check();
  EXPECT_EQ(on_disk("o2").resolution(), v1::Order::ANOMALOUS);
  EXPECT_EQ(on_disk("o1").order_id(), "");
  EXPECT_EQ(tracker_->LowWaterMark(), first);  // o1's pin

  // hold_in_journal after its first unwritten change, o1 is written with both states.
  clock_.Advance(config_.hold_in_journal - absl::Seconds(2));
  tracker_->Check();
  EXPECT_EQ(on_disk("o1").states_size(), 2);
  EXPECT_EQ(on_disk("o1").resolution(), v1::Order::ACTIVE);
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture());

  // A listing writes every record first, deferred or not.
  ingest(5, {{"shop-api", "o3", "INITIATED", T(3)}});
  EXPECT_NE(tracker_->LowWaterMark(), absl::InfiniteFuture());
  OrderQuery q;
  ASSERT_TRUE(tracker_->ListOrders(q).ok());
  EXPECT_EQ(on_disk("o3").order_id(), "o3");
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture());
}

TEST_F(OrderTrackerTest, HealthyOrderReleasesItsJournalHoldsWithoutReadingThem) {
  size_t reads = 0;
  read_journal_ = [&](const JournalRef& r,
                      absl::string_view) -> absl::StatusOr<std::vector<TraceSpans>> {
    ++reads;
    return journal_[r.offset];
  };
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}, false, true);
  Feed(2, {{"crm-api", "o1", "CANCELLED", T(1)}}, false, true);
  EXPECT_NE(tracker_->LowWaterMark(), absl::InfiniteFuture());
  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  EXPECT_EQ(Get("o1").resolution(), v1::Order::HEALTHY_RELEASED);
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture());
  EXPECT_EQ(tracker_->stats().traces_released_unkept.load(), 2u);
  EXPECT_EQ(reads, 0u);
  EXPECT_EQ(Rows(hold_table_.get()), 0u);
}

// Many order ids: resolved orders beyond max_resolved_in_memory leave memory, oldest resolution
// first, and are still found (on disk). Anomalous orders that may still show another anomaly
// stay (their deadlines are checked in memory).
TEST_F(OrderTrackerTest, ResolvedOrdersInMemoryAreBounded) {
  config_.max_resolved_in_memory = 1;
  Close();
  Open();
  for (int i = 0; i < 3; ++i) {
    const std::string id = absl::StrCat("r", i);
    Feed(10 * i + 1, {{"shop-api", id, "INITIATED", T(i)}});
    Feed(10 * i + 2, {{"crm-api", id, "CANCELLED", T(i)}});  // resolved after the grace period
    clock_.Advance(absl::Seconds(1));
  }
  clock_.Advance(absl::Seconds(11));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().resolved_evicted.load(), 2u);
  for (const char* id : {"r0", "r1", "r2"}) {
    EXPECT_EQ(Get(id).resolution(), v1::Order::HEALTHY_RELEASED) << id << " is still found";
  }
}

TEST_F(OrderTrackerTest, ListAnomalousAndStuck) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"shop-api", "o2", "INITIATED", T(0)}, {"shop-api", "o2", "SUBMITTED", T(1)}});
  Feed(3, {{"shop-api", "o3", "INITIATED", T(0), "", /*error=*/true}});
  clock_.Advance(absl::Minutes(30));
  tracker_->Check();
  OrderQuery anomalous;
  anomalous.anomalous_only = true;
  auto list = tracker_->ListOrders(anomalous);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->orders.size(), 1u);
  EXPECT_EQ(list->orders[0].order_id(), "o3");
  OrderQuery stuck;
  stuck.state = "INITIATED";
  stuck.older_than = absl::Minutes(20);
  list = tracker_->ListOrders(stuck);
  ASSERT_TRUE(list.ok());
  std::vector<std::string> ids;
  for (const v1::Order& o : list->orders) ids.push_back(o.order_id());
  // o3 went wrong (ERROR) and is still in INITIATED: stuck too. o2 moved on.
  EXPECT_THAT(ids, UnorderedElementsAre("o1", "o3"));
  stuck.older_than = absl::Minutes(31);
  EXPECT_THAT(tracker_->ListOrders(stuck)->orders, IsEmpty());
  EXPECT_EQ(tracker_->stats().in_state[0].load(), 1u);  // o1 in INITIATED
  EXPECT_EQ(tracker_->stats().in_state[1].load(), 1u);  // o2 in SUBMITTED
}

// Through the real sampler: the hook holds order traces the policies drop and keeps them when the
// order goes wrong.
TEST_F(OrderTrackerTest, SamplerHookHoldsAndKeeps) {
  sampling::SamplerOptions o;
  o.decision_wait = absl::Seconds(1);
  o.num_shards = 1;
  sampling::PolicyConfig never;
  never.name = "never";
  never.type = "probabilistic";
  never.sampling_percentage = 0;
  o.policies = {never};
  o.hook = tracker_.get();
  auto sampler = sampling::Sampler::Create(o, &consumer_, &clock_);
  ASSERT_TRUE(sampler.ok());
  std::vector<TraceSpans> batch;
  batch.push_back(MakeOrderTrace(1, {{"shop-api", "o1", "INITIATED", T(0)}}));
  batch.push_back(MakeOrderTrace(2, {{"shop-api", "", "", T(0)}}));  // no order: dropped
  batch[1].spans[0].span = "plain";
  ASSERT_TRUE((*sampler)->Offer(std::move(batch), 2).ok());
  (*sampler)->PollForTesting();
  clock_.Advance(absl::Seconds(2));
  (*sampler)->PollForTesting();
  EXPECT_THAT(consumer_.kept(), IsEmpty());
  EXPECT_EQ(tracker_->stats().traces_held.load(), 1u);
  clock_.Set(T(0) + absl::Hours(2));
  tracker_->Check();
  EXPECT_THAT(consumer_.trace_ids(), ElementsAre(OrderTraceId(1)));
  (*sampler)->Shutdown(absl::InfiniteFuture());
}

// --- In a cluster (collector/kafka/order_affinity.h) ------------------------------------------

TEST_F(OrderTrackerTest, FactsOfOrdersOwnedElsewhereAreIgnored) {
  owns_ = [](absl::string_view id) { return id != "o2"; };
  Close();
  Open();
  EXPECT_EQ(Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}, {"shop-api", "o2", "INITIATED", T(0)}})
                .action,
            sampling::HookVerdict::kHold);
  EXPECT_EQ(Get("o1").trace_ids_size(), 1);
  EXPECT_TRUE(absl::IsNotFound(tracker_->GetOrder("o2").status()));
  // A trace naming only an order owned elsewhere is not this tracker's business.
  EXPECT_EQ(Feed(2, {{"shop-api", "o2", "SUBMITTED", T(1), "", /*error=*/true}}).action,
            sampling::HookVerdict::kPolicy);
  EXPECT_TRUE(absl::IsNotFound(tracker_->GetOrder("o2").status()));
}

TEST_F(OrderTrackerTest, ForgetActiveDropsUnresolvedOrdersWithTheirHoldsAndKeepsVerdicts) {
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"shop-api", "o2", "INITIATED", T(0)}});
  Feed(3, {{"crm-api", "o2", "SUBMITTED", T(1), "", /*error=*/true}});
  ASSERT_EQ(Get("o2").resolution(), v1::Order::ANOMALOUS);
  const size_t kept_before = consumer_.kept().size();
  ASSERT_EQ(tracker_->stats().traces_held.load(), 1u);
  tracker_->Check();  // records written

  EXPECT_EQ(tracker_->ForgetActive([](const std::string&) { return true; }), 1u);
  EXPECT_TRUE(absl::IsNotFound(tracker_->GetOrder("o1").status()));  // not on disk either
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
  EXPECT_EQ(tracker_->stats().orders_tracked.load(), 0u);
  EXPECT_EQ(Rows(hold_table_.get()), 0u);
  // Its held trace is neither kept nor counted as released: the new owner replays it.
  EXPECT_EQ(consumer_.kept().size(), kept_before);
  EXPECT_EQ(tracker_->stats().traces_released_unkept.load(), 0u);
  EXPECT_EQ(Get("o2").resolution(), v1::Order::ANOMALOUS);
  // Replayed to this tracker again, the order starts over.
  EXPECT_EQ(Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}}).action, sampling::HookVerdict::kHold);
  EXPECT_EQ(Get("o1").trace_ids_size(), 1);
}

TEST_F(OrderTrackerTest, OldestOpenArrivalFollowsTheOldestUnresolvedOrder) {
  EXPECT_EQ(tracker_->OldestOpenArrival(), absl::InfiniteFuture());
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  clock_.Advance(absl::Seconds(5));
  Feed(2, {{"shop-api", "o2", "INITIATED", T(5)}});
  Feed(3, {{"shop-api", "o1", "SUBMITTED", T(6)}});  // a later arrival of o1 changes nothing
  EXPECT_EQ(tracker_->OldestOpenArrival(), t0_);
  Feed(4, {{"crm-api", "o1", "PRICE_CALCULATED", T(7), "", /*error=*/true}});  // resolved
  EXPECT_EQ(tracker_->OldestOpenArrival(), t0_ + absl::Seconds(5));
  tracker_->ForgetActive([](const std::string& id) { return id == "o2"; });
  EXPECT_EQ(tracker_->OldestOpenArrival(), absl::InfiniteFuture());
}

TEST_F(OrderTrackerTest, AnOrderTakenOverContinuesFromItsPublishedRecord) {
  v1::Order published;
  published.set_order_id("o9");
  published.set_resolution(v1::Order::ANOMALOUS);
  published.set_first_arrival_unix_nanos(absl::ToUnixNanos(T(-60)));
  published.set_last_arrival_unix_nanos(absl::ToUnixNanos(T(-50)));
  published.add_trace_ids(OrderTraceId(90));
  v1::Anomaly* a = published.add_anomalies();
  a->set_type("ERROR");
  a->set_detail("payment failed");
  std::vector<storage::KvWrite> written;
  read_shared_record_ = [&](const std::string& id) -> absl::StatusOr<std::optional<std::string>> {
    if (id != "o9") return std::optional<std::string>();
    return std::optional<std::string>(published.SerializeAsString());
  };
  on_records_written_ = [&](const std::vector<storage::KvWrite>& w) {
    written.insert(written.end(), w.begin(), w.end());
  };
  Close();
  Open();
  // The verdict of the previous owner stands: a later trace of the order is kept at once.
  const sampling::HookVerdict v = Feed(91, {{"mes-api", "o9", "MANUFACTURING_STARTED", T(1)}});
  EXPECT_EQ(v.action, sampling::HookVerdict::kKeep);
  const v1::Order o = Get("o9");
  EXPECT_EQ(o.resolution(), v1::Order::ANOMALOUS);
  EXPECT_THAT(o.trace_ids(), UnorderedElementsAre(OrderTraceId(90), OrderTraceId(91)));
  // The record as this tracker writes it is handed on to be published.
  tracker_->Check();
  ASSERT_FALSE(written.empty());
  v1::Order last;
  ASSERT_TRUE(last.ParseFromString(written.back().value));
  EXPECT_EQ(written.back().key, "o9");
  EXPECT_EQ(last.trace_ids_size(), 2);
}

// An order no span named for orders.compact_after is kept in compact form. A trace of it
// decided meanwhile (with the default decision_wait of 30 s, every trace of a quiet order is) is
// held without unpacking it. A span naming the order again unpacks it and is judged with
// everything the order had: here its price changes, and the anomaly keeps every held trace, read
// back from the journal and from order_hold through the references the compact form kept.
TEST_F(OrderTrackerTest, QuietOrderIsCompactedAndItsNextSpanIsJudgedWithItsWholeHistory) {
  config_.compact_after = absl::Seconds(5);
  ReopenReadingTheFakeJournal();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0), "100"}}, false, /*journaled=*/true);
  Feed(2, {{"crm-api", "o1", "SUBMITTED", T(1), "100"}});  // held in order_hold
  // Trace 3 is buffered now and decided once the order is packed.
  TraceSpans pending = MakeOrderTrace(3, {{"shop-api", "o1", "PRICE_CALCULATED", T(2), "100"}});
  tracker_->OnBuffered(pending);
  clock_.Advance(absl::Seconds(4));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 0) << "named 4 s ago";
  clock_.Advance(absl::Seconds(2));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 1);
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);

  sampling::PendingTrace p;
  p.trace_id = pending.trace_id;
  p.first_arrival = clock_.Now();
  const JournalRef ref{1, 100 * journal_.size(), 100};
  journal_[ref.offset] = {pending};
  p.journal_refs = {ref};
  p.linked_keys = pending.linked_keys;
  p.spans = std::move(pending.spans);
  EXPECT_EQ(tracker_->OnDecided(p, false).action, sampling::HookVerdict::kHold);
  tracker_->OnDecisionsDone();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 1) << "held without unpacking";
  EXPECT_EQ(tracker_->stats().traces_held.load(), 3u);
  EXPECT_EQ(tracker_->stats().traces_held_in_journal.load(), 2u);

  Feed(4, {{"mes-api", "o1", "", T(7), "120"}}, false, /*journaled=*/true);
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 0);
  EXPECT_THAT(consumer_.trace_ids(),
              UnorderedElementsAre(OrderTraceId(1), OrderTraceId(2), OrderTraceId(3)));
  for (const KeptTrace& t : consumer_.kept()) {
    EXPECT_EQ(SpanAttribute(t.spans[0].span, kAnomalyAttribute), "CONTENT_CHANGED");
  }
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
  EXPECT_EQ(tracker_->LowWaterMark(), absl::InfiniteFuture()) << "journal pins released";
  const v1::Order o = Get("o1");
  EXPECT_EQ(o.resolution(), v1::Order::ANOMALOUS);
  ASSERT_EQ(o.states_size(), 3);
  EXPECT_EQ(o.states(1).state(), "SUBMITTED");
  EXPECT_EQ(o.states(1).trace_id(), OrderTraceId(2));
  EXPECT_EQ(o.states(1).service(), "crm-api");
  EXPECT_EQ(o.trace_ids_size(), 4);
  EXPECT_EQ(o.kept_trace_ids_size(), 4);
  ASSERT_EQ(o.invariants_size(), 2);
  EXPECT_EQ(o.invariants(0).value(), "100");
  EXPECT_EQ(o.invariants(1).value(), "120");
}

// A finished order waits out its grace period in compact form, is resolved and releases its
// holds from it, and stays in memory packed as a resolved order; a late trace of it follows its
// verdict.
TEST_F(OrderTrackerTest, CompactOrderIsResolvedAtTheEndOfItsGracePeriod) {
  config_.compact_after = absl::Seconds(5);
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  Feed(2, {{"crm-api", "o1", "CANCELLED", T(1)}});
  EXPECT_EQ(Rows(hold_table_.get()), 2u);
  clock_.Advance(absl::Seconds(6));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 1);
  EXPECT_EQ(tracker_->stats().orders_resolved.load(), 0u);

  clock_.Advance(absl::Seconds(5));  // grace_period (10 s) over
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_resolved.load(), 1u);
  EXPECT_EQ(tracker_->stats().traces_released_unkept.load(), 2u);
  EXPECT_EQ(tracker_->stats().traces_held.load(), 0u);
  EXPECT_EQ(Rows(hold_table_.get()), 0u);
  EXPECT_EQ(MetaRows(hold_table_.get()), 0u);
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 0) << "unpacked to be judged and written";

  clock_.Advance(absl::Seconds(6));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 1) << "resolved, still in memory";
  EXPECT_NE(Feed(3, {{"crm-api", "o1", "", T(20)}}).action, sampling::HookVerdict::kHold);
  const v1::Order o = Get("o1");
  EXPECT_EQ(o.resolution(), v1::Order::HEALTHY_RELEASED);
  EXPECT_EQ(o.states_size(), 2);
  EXPECT_EQ(o.trace_ids_size(), 3);
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 0);
}

TEST_F(OrderTrackerTest, CompactAfterZeroKeepsEveryOrderResident) {
  config_.compact_after = absl::ZeroDuration();
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  clock_.Advance(absl::Hours(1));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 0);
  EXPECT_EQ(tracker_->stats().traces_held.load(), 1u);
}

// A full hold space finds and releases the oldest holds of orders in compact form too.
TEST_F(OrderTrackerTest, AFullHoldSpaceReleasesHoldsOfCompactOrders) {
  config_.max_held_traces = 2;
  config_.compact_after = absl::Seconds(1);
  Close();
  Open();
  Feed(1, {{"shop-api", "o1", "INITIATED", T(0)}});
  clock_.Advance(absl::Seconds(1));
  Feed(2, {{"shop-api", "o2", "INITIATED", T(1)}});
  clock_.Advance(absl::Seconds(2));
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().orders_compact.load(), 2);
  Feed(3, {{"shop-api", "o3", "INITIATED", T(3)}});
  Feed(4, {{"shop-api", "o4", "INITIATED", T(3)}});
  tracker_->Check();
  EXPECT_EQ(tracker_->stats().traces_held.load(), 2u);
  EXPECT_EQ(tracker_->stats().traces_released_no_space.load(), 2u);
  for (const char* id : {"o1", "o2", "o3", "o4"}) ASSERT_TRUE(tracker_->ForceKeep(id).ok());
  EXPECT_THAT(consumer_.trace_ids(), ElementsAre(OrderTraceId(3), OrderTraceId(4)));
}

}  // namespace
}  // namespace tracekeep::orders
