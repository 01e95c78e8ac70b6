// tracekeepctl's order commands against the real admin server with a backend of fixed orders,
// and its listings over the pages of the fake admin backend.
#include "collector/ctl/order_commands.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "collector/admin/admin_server.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tests/collector/admin/fake_admin_backend.h"
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

// A kept span of trace `trace` (16 times that byte) in a resource of `service`.
SpanRecord StoredSpan(char trace, char id, const std::string& service, const std::string& name,
                      int64_t start, int64_t end) {
  opentelemetry::proto::resource::v1::Resource resource;
  auto* kv = resource.add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value(service);
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = resource.SerializeAsString();
  origin->service_name = service;
  opentelemetry::proto::trace::v1::Span span;
  span.set_trace_id(std::string(16, trace));
  span.set_span_id(std::string(8, id));
  span.set_name(name);
  span.set_start_time_unix_nano(static_cast<uint64_t>(start));
  span.set_end_time_unix_nano(static_cast<uint64_t>(end));
  SpanRecord r;
  r.origin = origin;
  r.span = span.SerializeAsString();
  r.span_id = span.span_id();
  r.start_unix_nanos = start;
  r.end_unix_nanos = end;
  return r;
}

class OrdersBackend final : public admin::AdminBackend {
 public:
  // Trace 01 (INITIATED) is stored: a 1.25 s database write is its slowest span; trace 02
  // (SUBMITTED) is not.
  OrdersBackend() {
    KeptTraces kept(1);
    kept[0].trace_id = std::string(16, '\x01');
    kept[0].spans.push_back(StoredSpan('\x01', 1, "shop-api", "POST /orders", kT0, kT0 + kS));
    kept[0].spans.push_back(
        StoredSpan('\x01', 2, "db-api", "INSERT orders", kT0 + 1000, kT0 + 1000 + 1250000000));
    kept[0].spans.push_back(StoredSpan('\x01', 3, "crm-api", "GET /customer", kT0, kT0 + 5000));
    (void)store_.Consume(std::move(kept));
  }
  void FillStatus(admin::v1::GetStatusResponse*) override {}
  storage::SpanStore* store() override { return &store_; }
  std::string GetPolicies() override { return "[]\n"; }
  absl::StatusOr<int> SetPolicies(const std::string&, bool) override { return 0; }
  // "ord-7" (StalledOrder) and "ord-8", the same with an ERROR found later.
  absl::Status GetOrder(const admin::v1::GetOrderRequest& request,
                        admin::v1::GetOrderResponse* response) override {
    if (request.order_id() != "ord-7" && request.order_id() != "ord-8") {
      return absl::NotFoundError("order \"nope\" not seen");
    }
    *response->mutable_order() = StalledOrder();
    if (request.order_id() == "ord-8") {
      response->mutable_order()->set_order_id("ord-8");
      auto* a = response->mutable_order()->add_anomalies();
      a->set_type("ERROR");
      a->set_detail("span 0a0b of payment-svc: status ERROR");
      a->set_detected_unix_nanos(kT0 + 3700 * kS);
      response->set_trace_url("http://localhost:16686/trace/{trace_id}");  // ui.trace_url
    }
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
  testing::InMemorySpanStore store_;
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

TEST_F(OrderCommandsTest, OrderGetShowsPerStepHowLongItTookAndItsSlowestSpan) {
  Result r = Run({"order", "get", "ord-7"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("STATE      TIME                      TOOK  SERVICE   TRACE"));
  // The first step: its trace's slowest span is the database write.
  EXPECT_THAT(r.out, HasSubstr("INITIATED  2023-11-14T22:13:20.000Z  -     shop-api  "
                               "01010101010101010101010101010101  db-api  INSERT orders  1.25s"));
  // SUBMITTED came 5 s later, in a trace that was not kept.
  EXPECT_THAT(r.out, HasSubstr("SUBMITTED  2023-11-14T22:13:25.000Z  5s    shop-api  "
                               "02020202020202020202020202020202  trace not stored"));
}

TEST_F(OrderCommandsTest, SlowestSpanIsTheLongestOfTheTrace) {
  opentelemetry::proto::trace::v1::TracesData data;
  EXPECT_FALSE(FindSlowestSpan(data).stored);
  auto* rs = data.add_resource_spans();
  auto* kv = rs->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("mes-api");
  auto* ss = rs->add_scope_spans();
  auto add = [&](const char* name, uint64_t start, uint64_t end) {
    auto* span = ss->add_spans();
    span->set_name(name);
    span->set_start_time_unix_nano(start);
    span->set_end_time_unix_nano(end);
  };
  add("quick", 100, 200);
  add("backwards", 900, 100);  // end before start: 0
  add("slow", 100, 5000);
  add("as slow", 200, 5100);  // equal: the first one stays
  const SlowestSpan s = FindSlowestSpan(data);
  EXPECT_TRUE(s.stored);
  EXPECT_EQ(s.service, "mes-api");
  EXPECT_EQ(s.name, "slow");
  EXPECT_EQ(s.duration_nanos, 4900);
}

TEST_F(OrderCommandsTest, OrderGetShowsEveryAnomalyOfTheOrder) {
  Result r = Run({"order", "get", "ord-8"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("order ord-8  ANOMALOUS (STALLED,ERROR)"));
  EXPECT_THAT(r.out, HasSubstr("STALLED  2023-11-14T23:13:20.000Z  in SUBMITTED since ..."));
  EXPECT_THAT(
      r.out,
      HasSubstr("ERROR    2023-11-14T23:15:00.000Z  span 0a0b of payment-svc: status ERROR"));
}

TEST_F(OrderCommandsTest, OrderGetLinksKeptTracesIntoTheTraceUiWhenConfigured) {
  Result linked = Run({"order", "get", "ord-8"});
  ASSERT_EQ(linked.code, kExitOk) << linked.err;
  EXPECT_THAT(linked.out,
              HasSubstr("01010101010101010101010101010101  kept      "
                        "http://localhost:16686/trace/01010101010101010101010101010101"));
  EXPECT_THAT(linked.out, ::testing::Not(HasSubstr("trace/0202")))
      << "a trace that was not kept is in no trace UI";
  Result plain = Run({"order", "get", "ord-7"});
  EXPECT_THAT(plain.out, ::testing::Not(HasSubstr("http://"))) << "ui.trace_url not configured";
}

TEST_F(OrderCommandsTest, ListNamesEveryVerdict) {
  admin::v1::ListOrdersResponse list;
  auto* o = list.add_orders();
  o->set_order_id("ord-9");
  o->set_resolution(orders::v1::Order::READ_ONLY);
  EXPECT_THAT(FormatOrderList(list), HasSubstr("ord-9  read-only"));
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

// An anomalous order of a listing, ~300 bytes.
orders::v1::Order ListedOrder(int i) {
  orders::v1::Order o;
  o.set_order_id(absl::StrFormat("ord-%05d", i));
  o.set_resolution(orders::v1::Order::ANOMALOUS);
  o.set_current_state("SUBMITTED");
  o.set_current_state_unix_nanos(kT0);
  o.set_last_arrival_unix_nanos(kT0 + 60 * kS);
  o.add_trace_ids(std::string(16, '\x01'));
  o.add_trace_ids(std::string(16, '\x02'));
  o.add_kept_trace_ids(std::string(16, '\x01'));
  auto* a = o.add_anomalies();
  a->set_type("ERROR");
  a->set_detail(absl::StrCat("span 0102030405060708 of payment-svc: status ERROR (database ",
                             "connection refused: pool exhausted after 30 s), order ", i));
  a->set_detected_unix_nanos(kT0 + 60 * kS);
  auto* b = o.add_anomalies();
  b->set_type("STALLED");
  b->set_detail("in SUBMITTED for 1h (deadline 30m, grace 30s)");
  b->set_detected_unix_nanos(kT0 + 3600 * kS);
  return o;
}

std::vector<orders::v1::Order> ListedOrders(int n) {
  std::vector<orders::v1::Order> out;
  for (int i = 0; i < n; ++i) out.push_back(ListedOrder(i));
  return out;
}

// How many times `needle` occurs in `text`.
size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// tracekeepctl against the admin server over the paging fake backend.
class OrderPagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin::AdminServerOptions options;
    options.endpoint = "127.0.0.1:0";
    server_ = *admin::AdminServer::Start(options, &backend_);
  }
  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--addr", server_->address()});
    std::ostringstream out, err;
    const int code = RunCommandLine(args, "", out, err);
    return {code, out.str(), err.str()};
  }
  testing::FakeAdminBackend backend_{nullptr};
  admin::AdminServerPtr server_;
};

TEST_F(OrderPagingTest, ListFollowsEveryPageAndPrintsEachOrderOnceInOrder) {
  backend_.set_orders(ListedOrders(250), kT0 + 7200 * kS, /*max_page_size=*/40);
  Result r = Run({"orders", "list", "--anomalous", "--limit", "1000"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Count(r.out, "ORDER  "), 1u);  // one header
  size_t last = 0;
  for (int i = 0; i < 250; ++i) {
    const std::string id = absl::StrFormat("ord-%05d  ", i);
    ASSERT_EQ(Count(r.out, id), 1u) << id;
    EXPECT_GT(r.out.find(id), last) << id;
    last = r.out.find(id);
  }
  EXPECT_THAT(r.out, HasSubstr("ord-00249  ANOMALOUS  SUBMITTED  2h 0m         ERROR,STALLED"));
  EXPECT_THAT(r.out, Not(HasSubstr("shown")));  // all of them

  std::vector<admin::v1::ListOrdersRequest> requests = backend_.list_requests();
  ASSERT_EQ(requests.size(), 7u);  // 6 x 40 + 10
  EXPECT_EQ(requests[0].page_token(), "");
  EXPECT_EQ(requests[1].page_token(), "page:40");
  EXPECT_EQ(requests[6].page_token(), "page:240");
  for (const auto& q : requests) {
    EXPECT_TRUE(q.anomalous_only());
    EXPECT_EQ(q.limit(), 1000u);
    EXPECT_EQ(q.page_size(), 1000);
  }
}

TEST_F(OrderPagingTest, ListSaysWhenItStoppedAtTheLimit) {
  backend_.set_orders(ListedOrders(102), kT0 + 7200 * kS, /*max_page_size=*/40);
  Result r = Run({"orders", "list", "--anomalous"});  // the default limit: 100
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Count(r.out, "ANOMALOUS  SUBMITTED"), 100u);
  EXPECT_THAT(r.out, HasSubstr("\n100 of 102 shown (--limit N shows more)\n"));
  EXPECT_EQ(backend_.list_requests().back().limit(), 100u);

  r = Run({"orders", "list", "--anomalous", "--limit", "102"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Count(r.out, "ANOMALOUS  SUBMITTED"), 102u);
  EXPECT_THAT(r.out, Not(HasSubstr("shown")));
}

TEST_F(OrderPagingTest, ListJsonIsOneDocumentOverThePagesWithShownAndTotal) {
  backend_.set_orders(ListedOrders(250), kT0 + 7200 * kS, /*max_page_size=*/40);
  Result r = Run({"--json", "orders", "list", "--anomalous", "--limit", "150"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &doc).ok()) << r.out;
  const auto& fields = doc.fields();
  ASSERT_EQ(fields.at("orders").list_value().values_size(), 150);
  const auto& first = fields.at("orders").list_value().values(0).struct_value().fields();
  EXPECT_EQ(first.at("order_id").string_value(), "ord-00000");
  EXPECT_EQ(first.at("kept_trace_ids").list_value().values(0).string_value(),
            "01010101010101010101010101010101");
  EXPECT_EQ(fields.at("orders")
                .list_value()
                .values(149)
                .struct_value()
                .fields()
                .at("order_id")
                .string_value(),
            "ord-00149");
  EXPECT_EQ(fields.at("shown").number_value(), 150);
  EXPECT_EQ(fields.at("total").number_value(), 250);
  EXPECT_EQ(fields.at("now_unix_nanos").string_value(), absl::StrCat(kT0 + 7200 * kS));
  EXPECT_EQ(backend_.list_requests().size(), 4u);  // 40 + 40 + 40 + 30

  backend_.set_orders({}, kT0);
  r = Run({"--json", "orders", "list"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"orders\":[],\"now_unix_nanos\":\"" + absl::StrCat(kT0) +
                       "\",\"shown\":0,\"total\":0}\n");
}

TEST_F(OrderPagingTest, StuckFollowsThePagesToo) {
  backend_.set_orders(ListedOrders(90), kT0 + 7200 * kS, /*max_page_size=*/40);
  Result r = Run({"orders", "stuck", "--state", "SUBMITTED", "--older-than", "1h"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Count(r.out, "ANOMALOUS  SUBMITTED"), 90u);
  std::vector<admin::v1::ListOrdersRequest> requests = backend_.list_requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& q : requests) {
    EXPECT_EQ(q.state(), "SUBMITTED");
    EXPECT_EQ(q.older_than_seconds(), 3600);
  }
}

// The incident of the issue: 50 000 anomalous orders, more than gRPC's default 4 MiB message in
// total, used to fail with RESOURCE_EXHAUSTED; they now come in pages of 1000.
TEST_F(OrderPagingTest, FiftyThousandOrdersOfMoreThanFourMebibytesAreListed) {
  std::vector<orders::v1::Order> orders = ListedOrders(50'000);
  size_t bytes = 0;
  for (const auto& o : orders) bytes += o.ByteSizeLong();
  ASSERT_GT(bytes, size_t{4} << 20);
  backend_.set_orders(std::move(orders), kT0 + 7200 * kS);
  Result r = Run({"orders", "list", "--anomalous", "--limit", "100000"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(Count(r.out, "\n"), 50'001u);  // the header and every order
  EXPECT_THAT(r.out, HasSubstr("\nord-49999  "));
  EXPECT_THAT(r.out, Not(HasSubstr("shown")));
  EXPECT_EQ(backend_.list_requests().size(), 50u);
}

}  // namespace
}  // namespace tracekeep::ctl

namespace tracekeep::ctl {
namespace {

// A role too low for the command: the daemon's message names the role, and tracekeepctl says
// which token to use.
TEST(ReportAdminErrorTest, PermissionDeniedForARoleSaysWhichRoleIsNeeded) {
  CtlOptions options;
  options.addr = "127.0.0.1:4320";
  std::ostringstream err;
  const int code = ReportAdminError(
      7, "KeepOrder needs the operator role; \"bob\" has the viewer role", options, err);
  EXPECT_EQ(code, kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("refused the command: KeepOrder needs the operator role"));
  EXPECT_THAT(err.str(), HasSubstr("--token-file with a token of that role"));

  std::ostringstream network;
  ReportAdminError(7, "client ipv4:10.0.0.1:5 is not in the allowed networks", options, network);
  EXPECT_THAT(network.str(), HasSubstr("refused access"));
  EXPECT_THAT(network.str(), HasSubstr("admin.allowed_networks"));
}

}  // namespace
}  // namespace tracekeep::ctl
