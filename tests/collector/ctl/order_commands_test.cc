// tracekeepctl's order commands against the real admin server with a backend of fixed orders.
#include "collector/ctl/order_commands.h"

#include <memory>
#include <sstream>

#include "absl/synchronization/mutex.h"
#include "collector/admin/admin_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tracekeep/admin/v1/admin.pb.h"

namespace tracekeep::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;
constexpr int64_t kS = 1'000'000'000;

orders::v1::Order StalledOrder() {
  orders::v1::Order o;
  o.set_order_id("ord-7");
  o.set_resolution(orders::v1::Order::ANOMALOUS);
  auto add_state = [&](const char* state, int64_t t, const char* service, char trace) {
    auto* e = o.add_states();
    e->set_state(state);
    e->set_time_unix_nanos(t);
    e->set_service(service);
    e->set_trace_id(std::string(16, trace));
  };
  add_state("SUBMITTED", kT0 + 5 * kS, "shop-api", '\x02');  // arrived first
  add_state("INITIATED", kT0, "shop-api", '\x01');
  o.add_trace_ids(std::string(16, '\x01'));
  o.add_trace_ids(std::string(16, '\x02'));
  o.add_kept_trace_ids(std::string(16, '\x01'));
  auto* inv = o.add_invariants();
  inv->set_key("order.total_price");
  inv->set_value("803.31");
  inv->set_service("shop-api");
  inv->set_trace_id(std::string(16, '\x01'));
  auto* a = o.add_anomalies();
  a->set_type("STALLED");
  a->set_detail("in SUBMITTED since ...");
  a->set_detected_unix_nanos(kT0 + 3600 * kS);
  o.set_current_state("SUBMITTED");
  o.set_current_state_unix_nanos(kT0 + 5 * kS);
  return o;
}

class OrdersBackend final : public admin::AdminBackend {
 public:
  void FillStatus(admin::v1::GetStatusResponse*) override {}
  storage::SpanStore* store() override { return nullptr; }
  std::string GetPolicies() override { return "[]\n"; }
  absl::StatusOr<int> SetPolicies(const std::string&, bool) override { return 0; }
  absl::Status GetOrder(const admin::v1::GetOrderRequest& request,
                        admin::v1::GetOrderResponse* response) override {
    if (request.order_id() != "ord-7") return absl::NotFoundError("order \"nope\" not seen");
    *response->mutable_order() = StalledOrder();
    response->set_now_unix_nanos(kT0 + 7200 * kS);
    return absl::OkStatus();
  }
  absl::Status ListOrders(const admin::v1::ListOrdersRequest& request,
                          admin::v1::ListOrdersResponse* response) override {
    absl::MutexLock lock(&mu_);
    last_list_ = request;
    *response->add_orders() = StalledOrder();
    response->set_now_unix_nanos(kT0 + 7200 * kS);
    return absl::OkStatus();
  }
  admin::v1::ListOrdersRequest last_list() {
    absl::MutexLock lock(&mu_);
    return last_list_;
  }

 private:
  absl::Mutex mu_;
  admin::v1::ListOrdersRequest last_list_;
};

class NoOrdersBackend final : public admin::AdminBackend {
 public:
  void FillStatus(admin::v1::GetStatusResponse*) override {}
  storage::SpanStore* store() override { return nullptr; }
  std::string GetPolicies() override { return "[]\n"; }
  absl::StatusOr<int> SetPolicies(const std::string&, bool) override { return 0; }
};

struct Result {
  int code;
  std::string out, err;
};

class OrderCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin::AdminServerOptions options;
    options.endpoint = "127.0.0.1:0";
    server_ = *admin::AdminServer::Start(options, &backend_);
  }
  Result Run(std::vector<std::string> args, admin::AdminServer* server = nullptr) {
    args.insert(args.begin(), {"--addr", (server ? server : server_.get())->address()});
    std::ostringstream out, err;
    const int code = RunCommandLine(args, "", out, err);
    return {code, out.str(), err.str()};
  }
  OrdersBackend backend_;
  admin::AdminServerPtr server_;
};

TEST_F(OrderCommandsTest, OrderGetShowsTimelineBySpanTimeInvariantsAnomaliesAndTraces) {
  Result r = Run({"order", "get", "ord-7"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("order ord-7  ANOMALOUS (STALLED)"));
  EXPECT_THAT(r.out,
              HasSubstr("current state  SUBMITTED since 2023-11-14T22:13:25.000Z (1h 59m ago)"));
  // INITIATED first although it arrived second.
  EXPECT_LT(r.out.find("INITIATED  "), r.out.find("SUBMITTED  "));
  EXPECT_THAT(r.out, HasSubstr("01010101010101010101010101010101  kept"));
  EXPECT_THAT(r.out, HasSubstr("02020202020202020202020202020202  not kept"));
  EXPECT_THAT(r.out, HasSubstr("order.total_price  803.31  shop-api"));
  EXPECT_THAT(r.out, HasSubstr("STALLED  2023-11-14T23:13:20.000Z  in SUBMITTED since ..."));
}

TEST_F(OrderCommandsTest, OrderGetJsonUsesSnakeCaseAndHexIds) {
  Result r = Run({"--json", "order", "get", "ord-7"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"kept_trace_ids\":[\"01010101010101010101010101010101\"]"));
  EXPECT_THAT(r.out, HasSubstr("\"order_id\":\"ord-7\""));
}

TEST_F(OrderCommandsTest, UnknownOrderExitsOne) {
  Result r = Run({"order", "get", "nope"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("not seen"));
}

TEST_F(OrderCommandsTest, ListAndStuckSendTheirFilters) {
  Result r = Run({"orders", "list", "--anomalous", "--type", "STALLED", "--since=1h"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ord-7"));
  EXPECT_THAT(r.out, HasSubstr("STALLED"));
  admin::v1::ListOrdersRequest q = backend_.last_list();
  EXPECT_TRUE(q.anomalous_only());
  EXPECT_EQ(q.anomaly_type(), "STALLED");
  EXPECT_NEAR(static_cast<double>(q.since_unix_nanos()),
              static_cast<double>(absl::ToUnixNanos(absl::Now() - absl::Hours(1))), 60e9);

  r = Run({"orders", "stuck", "--state", "SUBMITTED", "--older-than", "2h", "--limit", "5"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  q = backend_.last_list();
  EXPECT_EQ(q.state(), "SUBMITTED");
  EXPECT_EQ(q.older_than_seconds(), 7200);
  EXPECT_EQ(q.limit(), 5u);
  EXPECT_FALSE(q.anomalous_only());
}

TEST_F(OrderCommandsTest, BadUsageExitsTwo) {
  EXPECT_EQ(Run({"orders", "stuck", "--older-than", "2h"}).code, kExitUsage);
  Result r = Run({"orders", "list", "--since", "yesterday"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err,
              HasSubstr("--since must be a duration like 30m, 2h or 90s, got \"yesterday\""));
  EXPECT_EQ(Run({"order", "get"}).code, kExitUsage);
  EXPECT_EQ(Run({"orders", "list", "--limit", "0"}).code, kExitUsage);
}

TEST_F(OrderCommandsTest, DaemonWithoutOrderTrackingSaysSo) {
  NoOrdersBackend none;
  admin::AdminServerOptions options;
  options.endpoint = "127.0.0.1:0";
  auto server = *admin::AdminServer::Start(options, &none);
  Result r = Run({"order", "keep", "ord-7"}, server.get());
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("order tracking is not enabled"));
  EXPECT_THAT(r.out, Not(HasSubstr("kept")));
}

}  // namespace
}  // namespace tracekeep::ctl
