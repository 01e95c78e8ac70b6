// The orders part of the admin API: ListOrders requests checked field by field, and paged
// through a tracker loaded from its table.
#include "collector/orders/order_admin.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_span_store.h"
#include "tests/storage/test_store.h"
#include "tracekeep/admin/v1/admin.pb.h"

namespace tracekeep::orders {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kS = 1'000'000'000;

const std::vector<std::string> kStates = {"INITIATED", "SUBMITTED", "DELIVERED"};

std::string Error(const admin::v1::ListOrdersRequest& request) {
  absl::StatusOr<OrderQuery> q = ListOrdersQuery(request, kStates);
  if (q.ok()) return "OK";
  EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << q.status();
  return std::string(q.status().message());
}

TEST(ListOrdersQueryTest, EveryBadFieldIsNamedWithItsValue) {
  admin::v1::ListOrdersRequest r;
  r.set_page_size(-5);
  EXPECT_EQ(Error(r), "page_size: must be >= 0 (0 = 100), got -5");
  r.Clear();
  r.set_page_token("bm90IGEgdG9rZW4");
  EXPECT_THAT(
      Error(r),
      HasSubstr("page_token: not a next_page_token of ListOrders, got \"bm90IGEgdG9rZW4\""));
  r.Clear();
  r.set_anomaly_type("stalled");
  EXPECT_THAT(Error(r), HasSubstr("anomaly_type: must be one of STALLED, SKIPPED,"));
  EXPECT_THAT(Error(r), HasSubstr("got \"stalled\""));
  r.Clear();
  r.set_state("LOST");
  EXPECT_EQ(Error(r), "state: must be one of INITIATED, SUBMITTED, DELIVERED, got \"LOST\"");
  r.Clear();
  r.set_state("SUBMITTED");
  r.set_older_than_seconds(-1);
  EXPECT_EQ(Error(r), "older_than_seconds: must be >= 0, got -1");
}

TEST(ListOrdersQueryTest, PageSizeAndLimit) {
  admin::v1::ListOrdersRequest r;
  absl::StatusOr<OrderQuery> q = ListOrdersQuery(r, kStates);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->page_size, 0u);  // the listing's default
  EXPECT_EQ(q->limit, 0u);      // no bound
  // A client that does not page (older tracekeepctl) gets up to its limit in its one page.
  r.set_limit(500);
  q = ListOrdersQuery(r, kStates);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->page_size, 500u);
  EXPECT_EQ(q->limit, 500u);
  r.set_limit(100000);
  q = ListOrdersQuery(r, kStates);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->page_size, kMaxOrderPageSize);
  // An explicit page size is the listing's to clamp.
  r.set_page_size(20);
  r.set_anomaly_type("ERROR");
  r.set_since_unix_nanos(1234);
  q = ListOrdersQuery(r, kStates);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->page_size, 20u);
  EXPECT_EQ(q->anomaly_type, "ERROR");
  EXPECT_EQ(q->since, absl::FromUnixNanos(1234));
}

class OrderAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto store = storage::OpenTestStore(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    orders_ = *store_->OpenTable("orders");
    hold_ = *store_->OpenTable("order_hold");
  }
  void TearDown() override {
    if (tracker_) tracker_->Shutdown(absl::InfiniteFuture());
    tracker_.reset();
    orders_.reset();
    hold_.reset();
    store_.reset();
  }
  void StartTracker() {
    OrderTrackerOptions t;
    t.consumer = &consumer_;
    t.clock = &clock_;
    t.orders_table = orders_.get();
    t.hold_table = hold_.get();
    auto tracker = OrderTracker::Create(t);
    ASSERT_TRUE(tracker.ok()) << tracker.status();
    tracker_ = std::move(*tracker);
  }

  class NullConsumer final : public TraceConsumer {
   public:
    absl::Status Consume(KeptTraces&&) override { return absl::OkStatus(); }
  };

  storage::TempDir dir_;
  std::unique_ptr<storage::RocksDbSpanStore> store_;
  storage::KvTablePtr orders_;
  storage::KvTablePtr hold_;
  NullConsumer consumer_;
  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<OrderTracker> tracker_;
};

TEST_F(OrderAdminTest, ListOrdersPagesThroughTheTrackersRecords) {
  // 250 anomalous orders resolved a minute ago, as a restarted daemon finds them.
  const int64_t now = absl::ToUnixNanos(clock_.Now());
  std::vector<storage::KvWrite> writes;
  for (int i = 0; i < 250; ++i) {
    v1::Order o;
    o.set_order_id(absl::StrCat("ord-", 1000 + i));
    o.set_first_arrival_unix_nanos(now - 3600 * kS);
    o.set_last_arrival_unix_nanos(now - 3600 * kS + i * kS);
    o.set_resolution(v1::Order::ANOMALOUS);
    o.set_resolved_unix_nanos(now - 60 * kS);
    auto* a = o.add_anomalies();
    a->set_type(i % 2 == 0 ? "ERROR" : "STALLED");
    a->set_detected_unix_nanos(now - 3600 * kS + i * kS);
    writes.push_back({o.order_id(), o.SerializeAsString()});
  }
  ASSERT_TRUE(orders_->Write(writes).ok());
  StartTracker();

  admin::v1::ListOrdersRequest request;
  request.set_anomalous_only(true);
  request.set_page_size(100);
  std::vector<std::string> ids;
  std::vector<size_t> pages;
  for (;;) {
    admin::v1::ListOrdersResponse response;
    const absl::Status s = ListOrders(tracker_.get(), &clock_, request, &response);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(response.total_size(), 250);
    EXPECT_EQ(response.now_unix_nanos(), now);
    pages.push_back(response.orders_size());
    for (const auto& o : response.orders()) ids.push_back(o.order_id());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(pages, ::testing::ElementsAre(100, 100, 50));
  ASSERT_EQ(ids.size(), 250u);
  EXPECT_EQ(ids.front(), "ord-1249");  // most recently active first
  EXPECT_EQ(ids.back(), "ord-1000");

  // The token of this listing does not continue another one.
  admin::v1::ListOrdersResponse response;
  request.set_anomaly_type("STALLED");
  const absl::Status s = ListOrders(tracker_.get(), &clock_, request, &response);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("page_token: issued for another listing"));
}

}  // namespace
}  // namespace tracekeep::orders
