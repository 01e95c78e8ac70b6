// Durability: every span acknowledged to a client survives kill -9 of tracekeep.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/process.h"
#include "tracekeep/orders/v1/order.pb.h"

namespace tracekeep::e2e {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;

std::string Config(const std::string& dir, const std::string& decision_wait,
                   const std::string& policies = "[{name: everything, type: always_sample}]") {
  return absl::StrCat(R"(
data_dir: )",
                      dir, R"(/data
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {enabled: false}
sampler:
  decision_wait: )",
                      decision_wait, R"(
  policies: )",
                      policies, R"(
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)");
}

// One request holding one new trace of three spans; the trace id encodes `n`.
collector::ExportTraceServiceRequest Request(uint32_t n, std::string* trace_id) {
  collector::ExportTraceServiceRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  *trace_id = std::string(16, '\x7e');
  for (int i = 0; i < 4; ++i) (*trace_id)[12 + i] = static_cast<char>(n >> (8 * i));
  for (int s = 0; s < 3; ++s) {
    auto* span = ss->add_spans();
    span->set_trace_id(*trace_id);
    span->set_span_id(std::string(7, '\x01') + static_cast<char>(s + 1));
    span->set_name(absl::StrCat("op-", s));
    span->set_start_time_unix_nano(1700000000000000000ULL + s);
  }
  return request;
}

struct Daemon {
  std::unique_ptr<ChildProcess> process;
  std::string grpc, admin, telemetry;
};

Daemon StartDaemon(const TempDir& dir, const std::string& decision_wait, int run,
                   const std::string& policies = "[{name: everything, type: always_sample}]") {
  const std::string config = absl::StrCat(dir.path(), "/tracekeep-", run, ".yaml");
  const std::string endpoints = absl::StrCat(dir.path(), "/endpoints-", run, ".json");
  WriteFile(config, Config(dir.path(), decision_wait, policies));
  Daemon d;
  d.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{TRACEKEEP_BIN, "--config", config, "--write-endpoints", endpoints},
      absl::StrCat(dir.path(), "/tracekeep-", run, ".log"));
  EXPECT_TRUE(WaitFor([&] { return !ReadFile(endpoints).empty(); }, absl::Seconds(60)))
      << ReadFile(absl::StrCat(dir.path(), "/tracekeep-", run, ".log"));
  d.grpc = JsonValue(ReadFile(endpoints), "otlp_grpc");
  d.admin = JsonValue(ReadFile(endpoints), "admin");
  d.telemetry = JsonValue(ReadFile(endpoints), "telemetry");
  return d;
}

// One trace of one span naming order `order_id` (with a state, or status ERROR); the trace id
// encodes `n`.
collector::ExportTraceServiceRequest OrderRequest(uint32_t n, const std::string& order_id,
                                                  const std::string& state, bool error,
                                                  std::string* trace_id) {
  collector::ExportTraceServiceRequest request;
  auto* rs = request.add_resource_spans();
  auto* service = rs->mutable_resource()->add_attributes();
  service->set_key("service.name");
  service->mutable_value()->set_string_value("shop-api");
  auto* span = rs->add_scope_spans()->add_spans();
  *trace_id = std::string(16, '\x5a');
  for (int i = 0; i < 4; ++i) (*trace_id)[12 + i] = static_cast<char>(n >> (8 * i));
  span->set_trace_id(*trace_id);
  span->set_span_id(std::string(7, '\x02') + static_cast<char>(n & 0x7f));
  span->set_name("POST /orders");
  // Now: an order state in the past would be overdue (STALLED) at once.
  span->set_start_time_unix_nano(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  auto* id = span->add_attributes();
  id->set_key("order.id");
  id->mutable_value()->set_string_value(order_id);
  if (!state.empty()) {
    auto* status = span->add_attributes();
    status->set_key("order.status");
    status->mutable_value()->set_string_value(state);
  }
  if (error)
    span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  return request;
}

// The value of an unlabelled metric on the daemon's /metrics, -1 when absent.
double Metric(const Daemon& d, const std::string& name) {
  CommandResult r = RunCommand({"/usr/bin/curl", "-sf", "http://" + d.telemetry + "/metrics"});
  const std::string needle = "\n" + name + " ";
  const size_t at = r.output.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(r.output.substr(at + needle.size()));
}

TEST(IntakeDurabilityTest, AcknowledgedSpansSurviveKill9InALoop) {
  TempDir dir;
  std::set<std::string> acknowledged;  // trace ids whose request was acknowledged
  uint32_t next = 1;
  constexpr int kKills = 3;
  for (int run = 0; run < kKills; ++run) {
    // A long decision wait: nothing is decided before the kill, everything lives in the journal.
    Daemon d = StartDaemon(dir, "1h", run);
    auto stub = collector::TraceService::NewStub(
        grpc::CreateChannel(d.grpc, grpc::InsecureChannelCredentials()));
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::atomic<int> acked_this_run{0};
    std::thread client([&] {
      while (!stop.load()) {
        std::string trace_id;
        collector::ExportTraceServiceRequest request = Request(next++, &trace_id);
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        collector::ExportTraceServiceResponse response;
        if (stub->Export(&context, request, &response).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert(ToHex(trace_id));
          acked_this_run.fetch_add(1);
        }
      }
    });
    // Kill while the client is sending, once it has been acknowledged a few hundred times.
    EXPECT_TRUE(WaitFor([&] { return acked_this_run.load() >= 200; }, absl::Seconds(60)));
    ASSERT_TRUE(d.process->Signal(SIGKILL));
    EXPECT_EQ(d.process->Wait(absl::Seconds(30)), 128 + SIGKILL);
    stop.store(true);
    client.join();
  }

  // Restart with a short decision wait: the journal is replayed and every trace decided (kept).
  Daemon d = StartDaemon(dir, "100ms", kKills);
  auto pending_zero = [&] {
    CommandResult s = RunCommand({TRACEKEEPCTL_BIN, "--addr", d.admin, "--json", "status"});
    return s.output.find("\"tracesPending\":\"0\"") != std::string::npos &&
           s.output.find("\"tracesKept\":\"0\"") == std::string::npos;
  };
  ASSERT_TRUE(WaitFor(pending_zero, absl::Seconds(60)))
      << RunCommand({TRACEKEEPCTL_BIN, "--addr", d.admin, "--json", "status"}).output;
  int missing = 0;
  for (const std::string& id : acknowledged) {
    CommandResult r =
        RunCommand({TRACEKEEPCTL_BIN, "--addr", d.admin, "--json", "trace", "get", id});
    const bool whole = r.exit_code == 0 && r.output.find("op-0") != std::string::npos &&
                       r.output.find("op-1") != std::string::npos &&
                       r.output.find("op-2") != std::string::npos;
    if (!whole && ++missing <= 5)
      ADD_FAILURE() << "acknowledged trace " << id << " lost: " << r.output;
  }
  EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << " acknowledged traces";
  EXPECT_GE(acknowledged.size(), 600u);
  ASSERT_TRUE(d.process->Signal(SIGTERM));
  EXPECT_EQ(d.process->Wait(absl::Seconds(60)), 0);
}

// Traces of an unresolved order are held as references into the journal (no copy): a kill -9
// meanwhile must not lose them. After the restart the journal replays them, they are held again,
// and when the order then goes wrong every one of them is kept.
TEST(IntakeDurabilityTest, OrderTracesHeldInTheJournalSurviveKill9) {
  TempDir dir;
  const std::string errors =
      "[{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]";
  std::vector<std::string> held;
  {
    Daemon d = StartDaemon(dir, "100ms", 0, errors);
    auto channel = grpc::CreateChannel(d.grpc, grpc::InsecureChannelCredentials());
    auto stub = collector::TraceService::NewStub(channel);
    for (uint32_t n = 1; n <= 5; ++n) {
      std::string trace_id;
      collector::ExportTraceServiceRequest request =
          OrderRequest(n, "ord-kill", n == 1 ? "INITIATED" : "", false, &trace_id);
      grpc::ClientContext context;
      collector::ExportTraceServiceResponse response;
      ASSERT_TRUE(stub->Export(&context, request, &response).ok());
      held.push_back(ToHex(trace_id));
    }
    ASSERT_TRUE(WaitFor([&] { return Metric(d, "tracekeep_order_held_traces_in_journal") == 5; },
                        absl::Seconds(30)))
        << "held in the journal: " << Metric(d, "tracekeep_order_held_traces_in_journal")
        << ", held: " << Metric(d, "tracekeep_order_held_traces")
        << ", order spans: " << Metric(d, "tracekeep_order_spans_total") << "\n"
        << RunCommand({TRACEKEEPCTL_BIN, "--addr", d.admin, "order", "get", "ord-kill"}).output;
    ASSERT_TRUE(d.process->Signal(SIGKILL));
    EXPECT_EQ(d.process->Wait(absl::Seconds(30)), 128 + SIGKILL);
  }
  Daemon d = StartDaemon(dir, "100ms", 1, errors);
  ASSERT_TRUE(WaitFor([&] { return Metric(d, "tracekeep_order_held_traces_in_journal") == 5; },
                      absl::Seconds(30)))
      << "held again after the replay: " << Metric(d, "tracekeep_order_held_traces_in_journal");
  auto channel = grpc::CreateChannel(d.grpc, grpc::InsecureChannelCredentials());
  auto stub = collector::TraceService::NewStub(channel);
  std::string error_trace;
  grpc::ClientContext context;
  collector::ExportTraceServiceResponse response;
  ASSERT_TRUE(
      stub->Export(&context, OrderRequest(6, "ord-kill", "", true, &error_trace), &response).ok());
  for (const std::string& id : held) {
    EXPECT_TRUE(WaitFor(
        [&] {
          return RunCommand({TRACEKEEPCTL_BIN, "--addr", d.admin, "--json", "trace", "get", id})
                     .output.find("POST /orders") != std::string::npos;
        },
        absl::Seconds(30)))
        << "held trace " << id << " of the anomalous order was not kept";
  }
  EXPECT_EQ(Metric(d, "tracekeep_order_held_traces_in_journal"), 0);
  ASSERT_TRUE(d.process->Signal(SIGTERM));
  EXPECT_EQ(d.process->Wait(absl::Seconds(60)), 0);
}

// An active order's record is not written for every span that changes it: the journal keeps
// those spans until the record is written. A kill -9 meanwhile loses nothing: the replay rebuilds
// the order, and its lifecycle goes on without a false anomaly (no ORPHAN for a lost INITIATED,
// no DUPLICATE_STATE for a replayed one).
TEST(IntakeDurabilityTest, OrderRecordsRebuiltFromTheJournalAfterKill9) {
  TempDir dir;
  auto get_order = [](const Daemon& d) {
    orders::v1::Order order;
    CommandResult r =
        RunCommand({TRACEKEEPCTL_BIN, "--addr", d.admin, "--json", "order", "get", "ord-rec"});
    if (r.exit_code != 0) return order;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(r.output, &order, options).ok()) {
      order.Clear();
    }
    return order;
  };
  auto send = [](const Daemon& d, uint32_t n, const std::string& state) {
    auto stub = collector::TraceService::NewStub(
        grpc::CreateChannel(d.grpc, grpc::InsecureChannelCredentials()));
    std::string trace_id;
    grpc::ClientContext context;
    collector::ExportTraceServiceResponse response;
    return stub->Export(&context, OrderRequest(n, "ord-rec", state, false, &trace_id), &response)
        .ok();
  };
  {
    // Every trace is kept by the policies at once (none is held): only the order's record needs
    // the journal's entries.
    Daemon d = StartDaemon(dir, "100ms", 0);
    ASSERT_TRUE(send(d, 21, "INITIATED"));
    ASSERT_TRUE(send(d, 22, "SUBMITTED"));
    ASSERT_TRUE(WaitFor(
        [&] {
          return get_order(d).states_size() == 2 &&
                 Metric(d, "tracekeep_storage_spans_stored_total") == 2;
        },
        absl::Seconds(30)))
        << get_order(d).DebugString();
    EXPECT_EQ(Metric(d, "tracekeep_order_held_traces"), 0);
    ASSERT_TRUE(d.process->Signal(SIGKILL));
    EXPECT_EQ(d.process->Wait(absl::Seconds(30)), 128 + SIGKILL);
  }
  Daemon d = StartDaemon(dir, "100ms", 1);
  ASSERT_TRUE(WaitFor([&] { return get_order(d).states_size() == 2; }, absl::Seconds(30)))
      << "after the restart: " << get_order(d).DebugString();
  EXPECT_GE(Metric(d, "tracekeep_journal_batches_replayed_total"), 2);
  ASSERT_TRUE(send(d, 23, "PRICE_CALCULATED"));
  ASSERT_TRUE(WaitFor([&] { return get_order(d).states_size() == 3; }, absl::Seconds(30)))
      << get_order(d).DebugString();
  const orders::v1::Order order = get_order(d);
  EXPECT_EQ(order.current_state(), "PRICE_CALCULATED");
  EXPECT_EQ(order.anomalies_size(), 0) << order.DebugString();
  EXPECT_EQ(order.trace_ids_size(), 3);
  ASSERT_TRUE(d.process->Signal(SIGTERM));
  EXPECT_EQ(d.process->Wait(absl::Seconds(60)), 0);
}

}  // namespace
}  // namespace tracekeep::e2e
