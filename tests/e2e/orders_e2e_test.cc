// End to end for order tracking: the real tracekeep daemon, fed by the real tracekeep-demo (the
// OpenTelemetry C++ SDK playing shop-api, crm-api and mes-api with injected faults), forwarding
// to an OTLP/gRPC server run by this test, inspected with the real tracekeepctl.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <map>
#include <mutex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/json_struct.h"
#include "tests/e2e/process.h"
#include "tests/e2e/recording_backend.h"

namespace tracekeep::e2e {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;
using google::protobuf::Struct;
using google::protobuf::Value;

std::string JsonValue(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": \"";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  const size_t start = at + needle.size();
  return json.substr(start, json.find('"', start) - start);
}

TEST(OrdersEndToEndTest, EveryTraceOfEveryFaultyOrderIsStoredAndForwarded) {
  TempDir dir;
  AnomalyRecordingBackend backend;
  int backend_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &backend_port);
  builder.RegisterService(&backend);
  std::unique_ptr<grpc::Server> backend_server = builder.BuildAndStart();
  ASSERT_NE(backend_server, nullptr);

  // Deadlines of 3 s per step: the demo below takes well under a second per step.
  std::string transitions;
  const char* states[] = {"INITIATED",
                          "SUBMITTED",
                          "PRICE_CALCULATED",
                          "MANUFACTURING_APPROVED",
                          "MANUFACTURING_STARTED",
                          "MANUFACTURING_COMPLETED",
                          "SHIPPED",
                          "DELIVERED"};
  for (int i = 0; i + 1 < 8; ++i) {
    absl::StrAppend(&transitions, "    - {from: ", states[i], ", to: ", states[i + 1],
                    ", deadline: 3s}\n");
  }
  const std::string config = dir.path() + "/tracekeep.yaml";
  WriteFile(config, absl::StrCat(R"(
data_dir: )",
                                 dir.path(), R"(/data
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {endpoint: "127.0.0.1:0"}
sampler:
  decision_wait: 500ms
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 0}}
exporters:
  otlp:
    endpoint: "127.0.0.1:)",
                                 backend_port, R"("
    batch: {timeout: 20ms}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
orders:
  transitions:
)",
                                 transitions, R"(
  grace_period: 1s
  orphan_window: 20s
  baseline_percentage: 50
  check_interval: 100ms
  compact_after: 1s
)"));
  const std::string endpoints_file = dir.path() + "/endpoints.json";
  const std::string log = dir.path() + "/tracekeep.log";
  ChildProcess daemon({TRACEKEEP_BIN, "--config", config, "--write-endpoints", endpoints_file},
                      log);
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(endpoints_file).empty(); }, absl::Seconds(30)))
      << ReadFile(log);
  const std::string endpoints = ReadFile(endpoints_file);
  const std::string grpc_addr = JsonValue(endpoints, "otlp_grpc");
  const std::string admin_addr = JsonValue(endpoints, "admin");
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", admin_addr});
    return RunCommand(args);
  };

  // 40 orders, 60 % with a fault (10 % each of lost, price changed, failed write, duplicate
  // start, skipped state, late export), ~2 s of traffic.
  CommandResult demo =
      RunCommand({TRACEKEEP_DEMO_BIN, "--endpoint", grpc_addr, "--orders", "40", "--time-scale",
                  "0.02", "--fault-rate", "0.6", "--seed", "7", "--json"});
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  const Struct injected = ParseJson(demo.output.substr(demo.output.find('{')));
  std::vector<Struct> orders;
  for (const Value& v : injected.fields().at("orders").list_value().values()) {
    orders.push_back(v.struct_value());
  }
  ASSERT_EQ(orders.size(), 40u);
  int faulty = 0, late = 0;
  for (const Struct& o : orders) {
    faulty += !Str(o, "expected_anomaly").empty();
    late += Str(o, "fault") == "late_out_of_order_export";
  }
  ASSERT_GE(faulty, 10) << "seed 7 must inject faults of most kinds";
  ASSERT_GE(late, 1);

  // Every order gets its verdict: anomalous, or healthy once its terminal state settled.
  std::map<std::string, Struct> verdicts;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Struct& o : orders) {
          const std::string id = Str(o, "order_id");
          if (verdicts.count(id)) continue;
          CommandResult r = ctl({"--json", "order", "get", id});
          if (r.exit_code != 0) continue;
          Struct record = ParseJson(r.output);
          if (Str(record, "resolution") == "ACTIVE" || Str(record, "resolution").empty()) continue;
          verdicts[id] = record;
        }
        return verdicts.size() == orders.size();
      },
      absl::Seconds(40)))
      << verdicts.size() << " of " << orders.size() << " orders resolved\n"
      << ReadFile(log);

  int healthy = 0, healthy_kept = 0;
  for (const Struct& o : orders) {
    const std::string id = Str(o, "order_id");
    const std::string expected = Str(o, "expected_anomaly");
    const Struct& record = verdicts[id];
    const std::vector<std::string> traces = Strings(o, "traces");
    EXPECT_EQ(Strings(record, "trace_ids").size(),
              std::set<std::string>(traces.begin(), traces.end()).size())
        << id;
    if (expected.empty()) {
      // No healthy order is reported, late and out-of-order exports included.
      EXPECT_THAT(AnomalyTypes(record), ::testing::IsEmpty())
          << id << " (" << Str(o, "fault") << ") reported";
      ++healthy;
      const bool kept = Str(record, "resolution") == "HEALTHY_KEPT";
      healthy_kept += kept;
      if (kept) {
        for (const std::string& t : traces) {
          EXPECT_TRUE(WaitFor([&] { return !backend.Spans(t).empty(); }, absl::Seconds(10)))
              << "trace " << t << " of baseline-kept order " << id << " not forwarded";
        }
      }
      continue;
    }
    EXPECT_EQ(Str(record, "resolution"), "ANOMALOUS") << id;
    EXPECT_THAT(AnomalyTypes(record), ::testing::Contains(expected))
        << id << " (" << Str(o, "fault") << " at " << Str(o, "fault_state") << ")";
    // All its traces, earlier ones included: stored (tracekeepctl trace get) and forwarded, with
    // the anomaly on every span held or decided after the anomaly was found.
    for (const std::string& t : traces) {
      EXPECT_TRUE(WaitFor([&] { return backend.Spans(t).size() >= 3; }, absl::Seconds(10)))
          << "trace " << t << " of " << id << " (" << expected << ") not forwarded whole";
      CommandResult stored = ctl({"trace", "get", t});
      EXPECT_EQ(stored.exit_code, 0) << id << ": " << stored.output;
    }
    // Traces still pending when the anomaly was found are recorded as kept when decided.
    const Struct now = ParseJson(ctl({"--json", "order", "get", id}).output);
    EXPECT_EQ(Strings(now, "kept_trace_ids").size(), Strings(now, "trace_ids").size()) << id;
    if (expected != "ERROR") {
      for (const auto& [span, anomaly] : backend.Spans(traces.front())) {
        EXPECT_THAT(anomaly, ::testing::HasSubstr(expected)) << id << " span " << span;
      }
    }
  }
  // Healthy orders are kept near the 50 % baseline (consistently by order id).
  ASSERT_GE(healthy, 10);
  EXPECT_GE(healthy_kept, healthy / 5) << healthy_kept << " of " << healthy;
  EXPECT_LE(healthy_kept, healthy - healthy / 5) << healthy_kept << " of " << healthy;

  // The operator's view.
  CommandResult list = ctl({"orders", "list", "--anomalous", "--limit", "1000"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  for (const Struct& o : orders) {
    if (Str(o, "expected_anomaly").empty()) {
      EXPECT_THAT(list.output, ::testing::Not(::testing::HasSubstr(Str(o, "order_id"))));
    } else {
      EXPECT_THAT(list.output, ::testing::HasSubstr(Str(o, "order_id")));
    }
  }
  for (const Struct& o : orders) {
    if (Str(o, "fault") != "lost") continue;
    const std::string state = Str(verdicts[Str(o, "order_id")], "current_state");
    CommandResult stuck = ctl({"orders", "stuck", "--state", state, "--older-than", "1s"});
    EXPECT_THAT(stuck.output, ::testing::HasSubstr(Str(o, "order_id"))) << stuck.output;
    CommandResult human = ctl({"order", "get", Str(o, "order_id")});
    EXPECT_THAT(human.output, ::testing::HasSubstr("STALLED"));
    EXPECT_THAT(human.output, ::testing::HasSubstr("shop-api"));
  }

  // Orders no span named for compact_after (1 s here) are packed in memory, and read back whole:
  // every span of the demo was taken before the first verdict, so states and traces are final.
  const std::string telemetry = JsonValue(endpoints, "telemetry");
  auto compact = [&] {
    CommandResult r = RunCommand({"/usr/bin/curl", "-sf", "http://" + telemetry + "/metrics"});
    const std::string needle = "\ntracekeep_orders_compact ";
    const size_t at = r.output.find(needle);
    return at == std::string::npos ? -1.0 : std::stod(r.output.substr(at + needle.size()));
  };
  ASSERT_TRUE(WaitFor([&] { return compact() >= orders.size() / 2; }, absl::Seconds(20)))
      << compact() << " of " << orders.size() << " orders packed";
  auto state_count = [](const Struct& record) {
    auto it = record.fields().find("states");
    return it == record.fields().end() ? 0 : it->second.list_value().values_size();
  };
  for (const Struct& o : orders) {
    const std::string id = Str(o, "order_id");
    const Struct again = ParseJson(ctl({"--json", "order", "get", id}).output);
    EXPECT_EQ(Str(again, "resolution"), Str(verdicts[id], "resolution")) << id;
    EXPECT_EQ(state_count(again), state_count(verdicts[id])) << id;
    EXPECT_EQ(Strings(again, "trace_ids"), Strings(verdicts[id], "trace_ids")) << id;
    // More anomalies may show after the verdict (a deadline passing), none goes.
    for (const std::string& type : AnomalyTypes(verdicts[id])) {
      EXPECT_THAT(AnomalyTypes(again), ::testing::Contains(type)) << id;
    }
  }

  ASSERT_TRUE(daemon.Signal(SIGTERM));
  EXPECT_EQ(daemon.Wait(absl::Seconds(60)), 0) << ReadFile(log);
  backend_server->Shutdown();
}

}  // namespace
}  // namespace tracekeep::e2e
