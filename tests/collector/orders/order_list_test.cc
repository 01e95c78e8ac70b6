// Listing orders page by page (order_list.h): over a scan of `orders` and through the
// `order_index` table, which must give the same pages.
#include "collector/orders/order_list.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_span_store.h"
#include "tests/storage/test_store.h"

namespace tracekeep::orders {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;
constexpr int64_t kS = 1'000'000'000;
const absl::Time kNow = absl::FromUnixNanos(kT0 + 100'000 * kS);

struct TestAnomaly {
  std::string type;
  int64_t detected;
};

v1::Order MakeOrder(const std::string& id, int64_t last_arrival,
                    const std::vector<TestAnomaly>& anomalies = {}) {
  v1::Order o;
  o.set_order_id(id);
  o.set_last_arrival_unix_nanos(last_arrival);
  o.set_first_arrival_unix_nanos(kT0);
  o.set_resolution(anomalies.empty() ? v1::Order::ACTIVE : v1::Order::ANOMALOUS);
  for (const TestAnomaly& a : anomalies) {
    auto* x = o.add_anomalies();
    x->set_type(a.type);
    x->set_detected_unix_nanos(a.detected);
    x->set_detail("detail");
  }
  return o;
}

std::vector<std::string> Ids(const std::vector<v1::Order>& orders) {
  std::vector<std::string> ids;
  for (const v1::Order& o : orders) ids.push_back(o.order_id());
  return ids;
}

class OrderListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto store = storage::OpenTestStore(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    orders_ = *store_->OpenTable("orders");
    index_ = *store_->OpenTable("order_index");
  }
  void TearDown() override {
    orders_.reset();
    index_.reset();
    store_.reset();
  }

  // Writes the record as the tracker does: with its index entries, replacing those of the
  // record it replaces.
  void Put(const v1::Order& o) {
    std::optional<v1::Order> old;
    auto stored = orders_->Get(o.order_id());
    ASSERT_TRUE(stored.ok());
    if (stored->has_value()) {
      ASSERT_TRUE(old.emplace().ParseFromString(**stored));
    }
    ASSERT_TRUE(orders_
                    ->WriteWith({{o.order_id(), o.SerializeAsString()}}, index_.get(),
                                OrderIndexWrites(old ? &*old : nullptr, &o))
                    .ok());
  }
  // Writes the record alone (a tracker that does not keep the index).
  void PutRecordOnly(const v1::Order& o) {
    ASSERT_TRUE(orders_->Write({{o.order_id(), o.SerializeAsString()}}).ok());
  }

  absl::StatusOr<OrderPage> List(const OrderQuery& q, bool through_index) {
    return through_index ? ListOrderRecords(orders_.get(), index_.get(), q, kNow)
                         : ListOrderRecords(orders_.get(), q, kNow);
  }

  // Follows every page; checks that each page but the last carries a token.
  std::vector<std::string> ListAll(OrderQuery q, bool through_index, size_t* pages = nullptr,
                                   size_t* total = nullptr) {
    std::vector<std::string> ids;
    size_t n = 0;
    for (;;) {
      absl::StatusOr<OrderPage> page = List(q, through_index);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      ++n;
      for (const v1::Order& o : page->orders) ids.push_back(o.order_id());
      if (total != nullptr) *total = page->total_matched;
      if (page->next_page_token.empty() || n > 10'000) break;
      q.page_token = page->next_page_token;
    }
    if (pages != nullptr) *pages = n;
    return ids;
  }

  storage::TempDir dir_;
  std::unique_ptr<storage::RocksDbSpanStore> store_;
  storage::KvTablePtr orders_;
  storage::KvTablePtr index_;
};

// 250 orders whose activity falls with i, in pairs (ties broken by id). Returns the ids in
// listing order.
std::vector<std::string> Fill(const std::function<void(const v1::Order&)>& put) {
  std::vector<std::string> expected;
  for (int i = 0; i < 250; ++i) {
    const std::string id = absl::StrCat("ord-", 1000 + i);
    const int64_t arrival = kT0 + (1000 - i / 2) * kS;
    put(MakeOrder(id, arrival));
    expected.push_back(id);
  }
  return expected;
}

TEST_F(OrderListTest, ThreePagesCoverEveryOrderOnceMostRecentlyActiveFirst) {
  std::vector<std::string> expected = Fill([&](const v1::Order& o) { Put(o); });
  OrderQuery q;
  q.page_size = 100;
  absl::StatusOr<OrderPage> p1 = List(q, false);
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_EQ(p1->orders.size(), 100u);
  EXPECT_EQ(p1->total_matched, 250u);
  ASSERT_FALSE(p1->next_page_token.empty());

  q.page_token = p1->next_page_token;
  absl::StatusOr<OrderPage> p2 = List(q, false);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p2->orders.size(), 100u);
  EXPECT_EQ(p2->total_matched, 250u);
  ASSERT_FALSE(p2->next_page_token.empty());

  q.page_token = p2->next_page_token;
  absl::StatusOr<OrderPage> p3 = List(q, false);
  ASSERT_TRUE(p3.ok()) << p3.status();
  EXPECT_EQ(p3->orders.size(), 50u);
  EXPECT_EQ(p3->next_page_token, "");

  std::vector<std::string> ids = Ids(p1->orders);
  for (const auto* p : {&*p2, &*p3}) {
    for (const std::string& id : Ids(p->orders)) ids.push_back(id);
  }
  EXPECT_THAT(ids, ElementsAreArray(expected));
}

TEST_F(OrderListTest, AnOrderAnomalousLaterIsListedByItsDetectionTime) {
  Put(MakeOrder("old-but-stalled", kT0 + 10 * kS, {{"STALLED", kT0 + 500 * kS}}));
  Put(MakeOrder("recent", kT0 + 400 * kS));
  Put(MakeOrder("b-tie", kT0 + 300 * kS));
  Put(MakeOrder("a-tie", kT0 + 300 * kS));
  absl::StatusOr<OrderPage> page = List(OrderQuery(), false);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->orders), ElementsAre("old-but-stalled", "recent", "a-tie", "b-tie"));
}

TEST_F(OrderListTest, TheTokenKeepsItsPlaceWhileOrdersArrive) {
  std::vector<std::string> expected = Fill([&](const v1::Order& o) { Put(o); });
  OrderQuery q;
  q.page_size = 100;
  absl::StatusOr<OrderPage> p1 = List(q, false);
  ASSERT_TRUE(p1.ok()) << p1.status();
  // New orders arrive: most recent of all, and one that sorts into the second page.
  Put(MakeOrder("new-1", kT0 + 2000 * kS));
  Put(MakeOrder("new-2", kT0 + 2001 * kS));
  Put(MakeOrder("late-arrival", kT0 + (1000 - 120) * kS));

  q.page_token = p1->next_page_token;
  std::vector<std::string> rest = ListAll(q, false);
  std::vector<std::string> want(expected.begin() + 100, expected.end());
  // ord-1240 and ord-1241 are active at 880 s too: "late-arrival" goes first by id.
  want.insert(std::find(want.begin(), want.end(), "ord-1240"), "late-arrival");
  EXPECT_THAT(rest, ElementsAreArray(want));
}

TEST_F(OrderListTest, ATokenOfAnotherListingOrNotATokenIsInvalidArgument) {
  Fill([&](const v1::Order& o) { Put(o); });
  OrderQuery q;
  q.page_size = 10;
  absl::StatusOr<OrderPage> p1 = List(q, false);
  ASSERT_TRUE(p1.ok()) << p1.status();

  OrderQuery bad = q;
  bad.page_token = "not-a-token";
  absl::StatusOr<OrderPage> r = List(bad, false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("page_token: not a next_page_token of ListOrders, got \"not-a-token\""));

  OrderQuery other = q;
  other.anomalous_only = true;
  other.page_token = p1->next_page_token;
  for (bool through_index : {false, true}) {
    r = List(other, through_index);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("page_token: issued for another"));
  }

  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(p1->next_page_token, &raw));
  raw[0] = 9;
  OrderQuery future = q;
  future.page_token = absl::WebSafeBase64Escape(raw);
  r = List(future, false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("token format 9, this one reads 1"));

  // Only the page size may change from page to page.
  OrderQuery bigger = q;
  bigger.page_size = 500;
  bigger.page_token = p1->next_page_token;
  absl::StatusOr<OrderPage> p2 = List(bigger, false);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p2->orders.size(), 240u);
}

TEST_F(OrderListTest, PageSizeZeroIsTheDefaultAndLargerThanTheMaximumIsClamped) {
  std::vector<storage::KvWrite> writes;
  for (int i = 0; i < 1500; ++i) {
    v1::Order o = MakeOrder(absl::StrCat("o", i), kT0 + i * kS);
    writes.push_back({o.order_id(), o.SerializeAsString()});
  }
  ASSERT_TRUE(orders_->Write(writes).ok());
  OrderQuery q;
  absl::StatusOr<OrderPage> page = List(q, false);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->orders.size(), kDefaultOrderPageSize);
  q.page_size = 5000;
  page = List(q, false);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->orders.size(), kMaxOrderPageSize);
  EXPECT_EQ(page->total_matched, 1500u);
  EXPECT_FALSE(page->next_page_token.empty());
}

TEST_F(OrderListTest, TheLimitBoundsTheListingAcrossPages) {
  std::vector<std::string> expected = Fill([&](const v1::Order& o) { Put(o); });
  OrderQuery q;
  q.limit = 150;
  q.page_size = 100;
  size_t pages = 0;
  size_t total = 0;
  std::vector<std::string> ids = ListAll(q, false, &pages, &total);
  EXPECT_EQ(pages, 2u);
  EXPECT_EQ(total, 250u);  // the listing was cut: 150 of 250
  EXPECT_THAT(ids, ElementsAreArray(expected.begin(), expected.begin() + 150));
}

TEST_F(OrderListTest, APageOfLargeRecordsStopsBeforeTwoMebibytes) {
  for (int i = 0; i < 300; ++i) {
    v1::Order o = MakeOrder(absl::StrCat("big-", 100 + i), kT0 + (1000 - i) * kS);
    for (int t = 0; t < 1000; ++t) o.add_trace_ids(std::string(16, static_cast<char>(t)));
    PutRecordOnly(o);  // ~18 KB each
  }
  OrderQuery q;
  q.page_size = 1000;
  absl::StatusOr<OrderPage> page = List(q, false);
  ASSERT_TRUE(page.ok()) << page.status();
  size_t bytes = 0;
  for (const v1::Order& o : page->orders) bytes += o.ByteSizeLong();
  EXPECT_LE(bytes, kMaxOrderPageBytes);
  EXPECT_GT(page->orders.size(), 50u);
  EXPECT_LT(page->orders.size(), 300u);
  EXPECT_FALSE(page->next_page_token.empty());
  size_t pages = 0;
  EXPECT_EQ(ListAll(q, false, &pages).size(), 300u);
  EXPECT_GE(pages, 3u);
}

// An order carries several anomaly types, each recorded once.
TEST_F(OrderListTest, ATypeFindsTheOrderUnderAnyOfItsAnomalyTypes) {
  Put(MakeOrder("two-types", kT0 + 50 * kS,
                {{"ERROR", kT0 + 10 * kS}, {"STALLED", kT0 + 40 * kS}}));
  Put(MakeOrder("error-only", kT0 + 60 * kS, {{"ERROR", kT0 + 60 * kS}}));
  Put(MakeOrder("healthy", kT0 + 70 * kS));
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  for (bool through_index : {false, true}) {
    SCOPED_TRACE(through_index ? "index" : "scan");
    OrderQuery q;
    q.anomaly_type = "STALLED";
    EXPECT_THAT(ListAll(q, through_index), ElementsAre("two-types"));
    q.anomaly_type = "ERROR";
    EXPECT_THAT(ListAll(q, through_index), ElementsAre("error-only", "two-types"));
    q.anomaly_type = "SKIPPED";
    EXPECT_THAT(ListAll(q, through_index), IsEmpty());
    // Since: the anomaly of the type asked for must be recent enough.
    q.anomaly_type = "ERROR";
    q.since = absl::FromUnixNanos(kT0 + 30 * kS);
    EXPECT_THAT(ListAll(q, through_index), ElementsAre("error-only"));
    q.anomaly_type = "STALLED";
    EXPECT_THAT(ListAll(q, through_index), ElementsAre("two-types"));
    q.anomaly_type = "";
    q.since = absl::FromUnixNanos(kT0 + 45 * kS);
    EXPECT_THAT(ListAll(q, through_index), ElementsAre("error-only"));
    OrderQuery anomalous;
    anomalous.anomalous_only = true;
    EXPECT_THAT(ListAll(anomalous, through_index), ElementsAre("error-only", "two-types"));
  }
}

// The index and the scan answer every query on anomalies with the same pages, and their
// tokens are the same.
TEST_F(OrderListTest, TheIndexGivesThePagesOfTheScan) {
  const char* types[] = {"SKIPPED", "STALLED", "ERROR"};  // by i % 3; none when 0
  for (int i = 0; i < 400; ++i) {
    std::vector<TestAnomaly> anomalies;
    if (i % 3 != 0) anomalies.push_back({types[i % 3], kT0 + (i % 50) * kS});
    if (i % 7 == 0) anomalies.push_back({"ORPHAN", kT0 + (i % 13) * kS});
    Put(MakeOrder(absl::StrCat("ord-", i % 10, "-", i), kT0 + (i % 97) * kS, anomalies));
  }
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  std::vector<OrderQuery> queries(5);
  queries[0].anomalous_only = true;
  queries[1].anomaly_type = "STALLED";
  queries[2].anomaly_type = "ORPHAN";
  queries[3].since = absl::FromUnixNanos(kT0 + 20 * kS);
  queries[4].anomaly_type = "ERROR";
  queries[4].since = absl::FromUnixNanos(kT0 + 25 * kS);
  queries[4].limit = 30;
  for (OrderQuery& q : queries) {
    SCOPED_TRACE(absl::StrCat(q.anomalous_only ? "anomalous " : "", q.anomaly_type, " ", q.limit));
    q.page_size = 7;
    size_t scan_pages = 0, index_pages = 0, scan_total = 0, index_total = 0;
    std::vector<std::string> scanned = ListAll(q, false, &scan_pages, &scan_total);
    EXPECT_FALSE(scanned.empty());
    EXPECT_THAT(ListAll(q, true, &index_pages, &index_total), ElementsAreArray(scanned));
    EXPECT_EQ(index_pages, scan_pages);
    EXPECT_EQ(index_total, scan_total);
    absl::StatusOr<OrderPage> first = List(q, false);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(List(q, true)->next_page_token, first->next_page_token);
  }
}

TEST_F(OrderListTest, TheIndexFollowsTheRecordAsItChanges) {
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  v1::Order o = MakeOrder("ord-1", kT0 + 10 * kS);
  EXPECT_THAT(OrderIndexWrites(nullptr, &o), IsEmpty());  // no anomaly: no entry
  Put(o);
  Put(MakeOrder("ord-2", kT0 + 20 * kS, {{"ERROR", kT0 + 20 * kS}}));
  OrderQuery stalled;
  stalled.anomaly_type = "STALLED";
  EXPECT_THAT(ListAll(stalled, true), IsEmpty());

  v1::Order before = o;
  o.set_last_arrival_unix_nanos(kT0 + 30 * kS);
  auto* a = o.add_anomalies();
  a->set_type("STALLED");
  a->set_detected_unix_nanos(kT0 + 40 * kS);
  // An entry for any anomaly and one for STALLED.
  EXPECT_EQ(OrderIndexWrites(&before, &o).size(), 2u);
  Put(o);
  EXPECT_THAT(ListAll(stalled, true), ElementsAre("ord-1"));

  // More activity moves both entries: two deletes, two puts; none when nothing changed.
  before = o;
  o.set_last_arrival_unix_nanos(kT0 + 50 * kS);
  std::vector<storage::KvWrite> writes = OrderIndexWrites(&before, &o);
  ASSERT_EQ(writes.size(), 4u);
  EXPECT_EQ(std::count_if(writes.begin(), writes.end(), [](const auto& w) { return w.erase; }), 2);
  EXPECT_THAT(OrderIndexWrites(&o, &o), IsEmpty());
  Put(o);
  OrderQuery anomalous;
  anomalous.anomalous_only = true;
  EXPECT_THAT(ListAll(anomalous, true), ElementsAre("ord-1", "ord-2"));

  // A deleted record takes its entries along.
  ASSERT_TRUE(
      orders_->WriteWith({{"ord-1", "", true}}, index_.get(), OrderIndexWrites(&o, nullptr)).ok());
  EXPECT_THAT(ListAll(anomalous, true), ElementsAre("ord-2"));
  EXPECT_THAT(ListAll(stalled, true), IsEmpty());
}

TEST_F(OrderListTest, EnsureOrderIndexBuildsOnceFromTheRecords) {
  // Records written before the index existed.
  PutRecordOnly(MakeOrder("ord-1", kT0 + 10 * kS, {{"ERROR", kT0 + 10 * kS}}));
  PutRecordOnly(MakeOrder("ord-2", kT0 + 20 * kS));
  OrderQuery anomalous;
  anomalous.anomalous_only = true;
  // Not built yet: the listing scans.
  EXPECT_THAT(ListAll(anomalous, true), ElementsAre("ord-1"));
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  EXPECT_THAT(ListAll(anomalous, true), ElementsAre("ord-1"));
  bool indexed = false;
  ASSERT_TRUE(index_
                  ->Scan("a/",
                         [&](absl::string_view key, absl::string_view) {
                           indexed = absl::EndsWith(key, "ord-1");
                           return true;
                         })
                  .ok());
  EXPECT_TRUE(indexed);

  // Complete: a second call leaves it alone (a record written without its entries stays out).
  PutRecordOnly(MakeOrder("ord-3", kT0 + 30 * kS, {{"ERROR", kT0 + 30 * kS}}));
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  EXPECT_THAT(ListAll(anomalous, true), ElementsAre("ord-1"));
  EXPECT_THAT(ListAll(anomalous, false), ElementsAre("ord-3", "ord-1"));
}

TEST_F(OrderListTest, AnEntryThatNoLongerDescribesItsRecordIsSkipped) {
  Put(MakeOrder("ord-1", kT0 + 10 * kS, {{"ERROR", kT0 + 10 * kS}}));
  Put(MakeOrder("ord-2", kT0 + 20 * kS, {{"ERROR", kT0 + 20 * kS}}));
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  // The record moves on without its entries (a write that lost its index writes).
  PutRecordOnly(MakeOrder("ord-1", kT0 + 30 * kS, {{"ERROR", kT0 + 10 * kS}}));
  OrderQuery anomalous;
  anomalous.anomalous_only = true;
  size_t total = 0;
  EXPECT_THAT(ListAll(anomalous, true, nullptr, &total), ElementsAre("ord-2"));
  EXPECT_EQ(total, 1u);
}

TEST_F(OrderListTest, AStateQueryScansEvenWithTheIndex) {
  v1::Order stuck = MakeOrder("stuck", kT0 + 10 * kS);
  stuck.set_current_state("SUBMITTED");
  stuck.set_current_state_unix_nanos(kT0);
  Put(stuck);
  v1::Order fresh = MakeOrder("fresh", kT0 + 10 * kS);
  fresh.set_current_state("SUBMITTED");
  fresh.set_current_state_unix_nanos(absl::ToUnixNanos(kNow) - 5 * kS);
  Put(fresh);
  ASSERT_TRUE(EnsureOrderIndex(orders_.get(), index_.get()).ok());
  OrderQuery q;
  q.state = "SUBMITTED";
  q.older_than = absl::Minutes(1);
  EXPECT_THAT(ListAll(q, true), ElementsAre("stuck"));
}

}  // namespace
}  // namespace tracekeep::orders
