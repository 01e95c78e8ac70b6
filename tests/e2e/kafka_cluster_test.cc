// A tracekeep cluster end to end: one real Apache Kafka broker (KRaft, loopback), several real
// tracekeep members in gateway mode sharing one consumer group, order affinity through the order
// topic, every member forwarding what it keeps to one OTLP/gRPC server run by this test. Order
// flows come from the real tracekeep-demo (the OpenTelemetry C++ SDK playing shop-api, crm-api
// and mes-api with injected faults); error traces from a gRPC client that retries until a member
// acknowledges. What users rely on: every anomalous order is reported with all of its traces
// kept, whichever members its traces and its owner were on; no healthy order is reported;
// nothing acknowledged is lost when a member is killed, when one is added, or when the broker
// restarts.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/json_struct.h"
#include "tests/e2e/kafka_broker.h"
#include "tests/e2e/process.h"
#include "tests/e2e/recording_backend.h"
#include "tests/e2e/shop_traces.h"

namespace tracekeep::e2e {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr int kPartitions = 6;

struct Member {
  std::unique_ptr<ChildProcess> process;
  std::string admin, telemetry, grpc, log;
  bool alive() const { return process != nullptr; }
};

// The sum of the series of `metric` on `m` whose labels contain every one of `labels`.
double MetricSum(const Member& m, const std::string& metric,
                 const std::vector<std::string>& labels) {
  const std::string text =
      RunCommand({"/usr/bin/curl", "-sf", "http://" + m.telemetry + "/metrics"}).output;
  double sum = 0;
  size_t at = 0;
  const std::string start = "\n" + metric + "{";
  while ((at = text.find(start, at)) != std::string::npos) {
    const size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end - at - 1);
    at = end;
    bool match = true;
    for (const std::string& l : labels) match &= line.find(l) != std::string::npos;
    if (match) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// Trace `n` of the load: three spans of "shop-api", the last one an error: every one of them
// must be kept. Returns its hex trace id; `span_ids` gets the hex span ids.
collector::ExportTraceServiceRequest ErrorTrace(uint32_t n, std::string* trace_id_hex,
                                                std::vector<std::string>* span_ids) {
  return ShopTrace(n, {'\x6b', '\x03', "load-", /*error=*/true}, trace_id_hex, span_ids);
}

// Sends error traces to the members' OTLP/gRPC receivers in turn until stopped, each one again
// (to the next member) until a member acknowledges it, like an SDK retrying.
class ErrorLoad {
 public:
  ErrorLoad(std::vector<std::string> endpoints, uint32_t first) : next_(first) {
    for (const std::string& e : endpoints) {
      stubs_.push_back(collector::TraceService::NewStub(
          grpc::CreateChannel(e, grpc::InsecureChannelCredentials())));
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~ErrorLoad() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  // Acknowledged traces: hex trace id -> hex span ids.
  std::map<std::string, std::vector<std::string>> acknowledged() {
    std::lock_guard<std::mutex> lock(mu_);
    return acknowledged_;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return acknowledged_.size();
  }

 private:
  void Run() {
    size_t member = 0;
    while (!stop_.load()) {
      std::string id;
      std::vector<std::string> spans;
      const collector::ExportTraceServiceRequest request = ErrorTrace(next_++, &id, &spans);
      for (int attempt = 0; attempt < 200 && !stop_.load(); ++attempt) {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
        collector::ExportTraceServiceResponse response;
        const grpc::Status s =
            stubs_[member++ % stubs_.size()]->Export(&context, request, &response);
        if (s.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          acknowledged_[id] = spans;
          break;
        }
        // Refused (a member down, Kafka unavailable): the next member, after a pause.
        absl::SleepFor(absl::Milliseconds(50));
      }
      absl::SleepFor(absl::Milliseconds(20));  // ~40 traces/s: load, not a benchmark
    }
  }

  std::vector<std::unique_ptr<collector::TraceService::Stub>> stubs_;
  uint32_t next_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> acknowledged_;
};

// One run of tracekeep-demo against one member: order flows with injected faults.
struct DemoRun {
  std::unique_ptr<ChildProcess> process;
  std::string log;
};

class KafkaClusterTest : public KafkaBrokerSuite<kPartitions> {
 protected:
  void SetUp() override {
    KafkaBrokerSuite::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &backend_port_);
    builder.RegisterService(&backend_);
    backend_server_ = builder.BuildAndStart();
    ASSERT_NE(backend_server_, nullptr);
  }
  void TearDown() override {
    for (Member& m : members_) {
      if (m.alive()) m.process->Signal(SIGKILL);
    }
    if (backend_server_) backend_server_->Shutdown();
  }

  // `name` names the test's topics and group. Deadlines and the grace period are wider than the
  // time a partition takes to move after a crash (session_timeout + replay): a state delayed by a
  // failover must not look stalled or skipped.
  void Configure(const std::string& name, absl::Duration deadline, absl::Duration grace) {
    name_ = name;
    deadline_ = deadline;
    grace_ = grace;
  }

  // Starts a new member, or member `restart` again on its data (after Kill).
  Member& StartMember(int restart = -1) {
    const int i = restart >= 0 ? restart : static_cast<int>(members_.size());
    const std::string dir = absl::StrCat(test_dir_.path(), "/m", i);
    const std::string config = dir + ".yaml";
    const std::string endpoints = dir + ".endpoints.json";
    std::string transitions;
    const char* states[] = {"INITIATED",
                            "SUBMITTED",
                            "PRICE_CALCULATED",
                            "MANUFACTURING_APPROVED",
                            "MANUFACTURING_STARTED",
                            "MANUFACTURING_COMPLETED",
                            "SHIPPED",
                            "DELIVERED"};
    for (int s = 0; s + 1 < 8; ++s) {
      absl::StrAppend(&transitions, "    - {from: ", states[s], ", to: ", states[s + 1],
                      ", deadline: ", absl::ToInt64Seconds(deadline_), "s}\n");
    }
    WriteFile(config, absl::StrCat("data_dir: ", dir, R"(/data
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {enabled: false}
  kafka:
    enabled: true
    gateway: true
    brokers: [")",
                                   broker_->bootstrap(), R"("]
    topic: )",
                                   name_, R"(_spans
    group_id: )",
                                   name_, R"(
    order_topic: )",
                                   name_, R"(_orders
    initial_offset: earliest
    session_timeout: 6s
sampler:
  decision_wait: 1s
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
exporters:
  otlp:
    endpoint: "127.0.0.1:)",
                                   backend_port_, R"("
    batch: {timeout: 20ms}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
orders:
  transitions:
)",
                                   transitions, "  grace_period: ", absl::ToInt64Seconds(grace_),
                                   R"(s
  orphan_window: 60s
  baseline_percentage: 0
  check_interval: 100ms
)"));
    Member& m = restart >= 0 ? members_[restart] : members_.emplace_back();
    m.log = absl::StrCat(dir, restart >= 0 ? ".restarted" : "", ".log");
    std::remove(endpoints.c_str());
    m.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{TRACEKEEP_BIN, "--config", config, "--write-endpoints", endpoints},
        m.log);
    EXPECT_TRUE(WaitFor([&] { return !ReadFile(endpoints).empty(); }, absl::Seconds(60)))
        << ReadFile(m.log);
    m.admin = JsonValue(ReadFile(endpoints), "admin");
    m.telemetry = JsonValue(ReadFile(endpoints), "telemetry");
    m.grpc = JsonValue(ReadFile(endpoints), "otlp_grpc");
    return m;
  }

  void Kill(Member& m) {
    ASSERT_TRUE(m.process->Signal(SIGKILL));
    EXPECT_EQ(m.process->Wait(absl::Seconds(30)), 128 + SIGKILL);
    m.process.reset();
  }

  // True once the live members between them own every partition of both topics exactly once.
  bool Balanced() {
    for (const std::string topic : {name_ + "_spans", name_ + "_orders"}) {
      for (int p = 0; p < kPartitions; ++p) {
        double owners = 0;
        for (const Member& m : members_) {
          if (!m.alive()) continue;
          owners += MetricSum(m, "tracekeep_kafka_partition_assigned",
                              {absl::StrCat("partition=\"", p, "\""), "topic=\"" + topic + "\""});
        }
        if (owners != 1) return false;
      }
    }
    return true;
  }
  // Every live member owns at least one partition of each topic.
  bool EveryoneOwns() {
    for (const Member& m : members_) {
      if (!m.alive()) continue;
      for (const std::string topic : {name_ + "_spans", name_ + "_orders"}) {
        if (MetricSum(m, "tracekeep_kafka_partition_assigned", {"topic=\"" + topic + "\""}) < 1) {
          return false;
        }
      }
    }
    return true;
  }

  // `orders` order flows from tracekeep-demo into `member`, order ids prefixed `prefix`, over a
  // few seconds. No "lost" fault: a lost order is only found at its deadline, and deadlines here
  // are wider than a failover.
  DemoRun StartDemo(const Member& member, const std::string& prefix, int orders, int seed) {
    DemoRun d;
    d.log = absl::StrCat(test_dir_.path(), "/demo-", prefix, ".log");
    d.process = std::make_unique<ChildProcess>(std::vector<std::string>{TRACEKEEP_DEMO_BIN,
                                                                        "--endpoint",
                                                                        member.grpc,
                                                                        "--orders",
                                                                        std::to_string(orders),
                                                                        "--time-scale",
                                                                        "0.05",
                                                                        "--lost-rate",
                                                                        "0",
                                                                        "--price-change-rate",
                                                                        "0.1",
                                                                        "--db-fail-rate",
                                                                        "0.1",
                                                                        "--duplicate-start-rate",
                                                                        "0.1",
                                                                        "--skip-rate",
                                                                        "0.1",
                                                                        "--late-rate",
                                                                        "0.1",
                                                                        "--seed",
                                                                        std::to_string(seed),
                                                                        "--id-prefix",
                                                                        prefix,
                                                                        "--json"},
                                               d.log);
    return d;
  }
  std::vector<Struct> FinishDemo(DemoRun& d) {
    EXPECT_EQ(d.process->Wait(absl::Seconds(60)), 0) << ReadFile(d.log);
    std::vector<Struct> orders;
    const Struct injected = ParseJson(ReadFile(d.log));
    auto it = injected.fields().find("orders");
    if (it == injected.fields().end()) return orders;
    for (const Value& v : it->second.list_value().values()) orders.push_back(v.struct_value());
    return orders;
  }

  std::string Logs() {
    std::string out;
    for (size_t i = 0; i < members_.size(); ++i) {
      absl::StrAppend(&out, "--- member ", i, " ---\n", ReadFile(members_[i].log));
    }
    return out;
  }

  // Every order gets its verdict, asked of the live members in turn (`order get` answers on any
  // member); anomalous orders are reported with the injected anomaly and every one of their
  // traces is forwarded whole; healthy orders are not reported; every member lists each
  // anomalous order once.
  void CheckOrders(const std::vector<Struct>& orders) {
    std::vector<const Member*> live;
    for (const Member& m : members_) {
      if (m.alive()) live.push_back(&m);
    }
    auto ctl = [&](const Member& m, std::vector<std::string> args) {
      args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", m.admin});
      return RunCommand(args);
    };
    std::map<std::string, Struct> verdicts;
    size_t asked = 0;
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const Struct& o : orders) {
            const std::string id = Str(o, "order_id");
            if (verdicts.count(id)) continue;
            CommandResult r = ctl(*live[asked++ % live.size()], {"--json", "order", "get", id});
            if (r.exit_code != 0) continue;
            Struct record = ParseJson(r.output);
            const std::string resolution = Str(record, "resolution");
            if (resolution == "ACTIVE" || resolution.empty()) continue;
            verdicts[id] = record;
          }
          return verdicts.size() == orders.size();
        },
        absl::Seconds(60)))
        << verdicts.size() << " of " << orders.size() << " orders resolved\n"
        << Logs();
    // `orders list` on any member lists the cluster's orders, each once (the owners' records
    // as published), once the last verdicts were published.
    std::map<std::string, int> listed;  // order id -> times listed
    for (const Member* m : live) {
      std::string output;
      WaitFor(
          [&] {
            CommandResult list =
                ctl(*m, {"--json", "orders", "list", "--anomalous", "--limit", "10000"});
            EXPECT_EQ(list.exit_code, 0) << list.output;
            output = list.output;
            for (const Struct& o : orders) {
              const std::string needle = "\"order_id\":\"" + Str(o, "order_id") + "\"";
              if (!Str(o, "expected_anomaly").empty() && !absl::StrContains(output, needle)) {
                return false;
              }
            }
            return true;
          },
          absl::Seconds(10));
      for (const Struct& o : orders) {
        const std::string needle = "\"order_id\":\"" + Str(o, "order_id") + "\"";
        for (size_t at = output.find(needle); at != std::string::npos;
             at = output.find(needle, at + 1)) {
          ++listed[Str(o, "order_id")];
        }
      }
    }
    int anomalous = 0, healthy = 0;
    std::vector<std::pair<std::string, std::string>> anomalous_traces;  // trace, its order
    for (const Struct& o : orders) {
      const std::string id = Str(o, "order_id");
      const std::string expected = Str(o, "expected_anomaly");
      const Struct& record = verdicts[id];
      const std::vector<std::string> traces = Strings(o, "traces");
      const std::set<std::string> distinct(traces.begin(), traces.end());
      if (expected.empty()) {
        ++healthy;
        EXPECT_THAT(AnomalyTypes(record), ::testing::IsEmpty())
            << id << " (" << Str(o, "fault") << ") reported";
        EXPECT_EQ(listed[id], 0) << id << " listed as anomalous";
        continue;
      }
      ++anomalous;
      EXPECT_EQ(Str(record, "resolution"), "ANOMALOUS") << id;
      EXPECT_THAT(AnomalyTypes(record), ::testing::Contains(expected))
          << id << " (" << Str(o, "fault") << " at " << Str(o, "fault_state") << ")";
      // Its record links every trace of it (traces decided after the verdict link later), as
      // read on any member.
      size_t linked = 0;
      EXPECT_TRUE(WaitFor(
          [&] {
            CommandResult r = ctl(*live[asked++ % live.size()], {"--json", "order", "get", id});
            linked = r.exit_code == 0 ? Strings(ParseJson(r.output), "trace_ids").size() : 0;
            return linked == distinct.size();
          },
          absl::Seconds(15)))
          << id << ": " << linked << " of " << distinct.size() << " traces linked";
      EXPECT_EQ(listed[id], static_cast<int>(live.size()))
          << id << " listed " << listed[id] << " times by " << live.size() << " members";
      // Every trace of it, earlier ones included, kept and forwarded whole by some member.
      for (const std::string& t : distinct) anomalous_traces.emplace_back(t, id + " " + expected);
    }
    WaitFor(
        [&] {
          for (const auto& [t, what] : anomalous_traces) {
            if (backend_.Spans(t).size() < 3) return false;
          }
          return true;
        },
        absl::Seconds(20));
    for (const auto& [t, what] : anomalous_traces) {
      EXPECT_GE(backend_.Spans(t).size(), 3u)
          << "trace " << t << " of anomalous order " << what << " not kept whole";
    }
    EXPECT_GE(anomalous, 3);
    EXPECT_GE(healthy, 3);
  }

  // Every span of every acknowledged error trace reached the backend.
  void CheckAcknowledged(ErrorLoad& load) {
    const std::map<std::string, std::vector<std::string>> acked = load.acknowledged();
    EXPECT_GE(acked.size(), 20u);
    auto missing_spans = [&] {
      int missing = 0;
      for (const auto& [trace, spans] : acked) {
        for (const std::string& span : spans) missing += backend_.Has(trace, span) ? 0 : 1;
      }
      return missing;
    };
    WaitFor([&] { return missing_spans() == 0; }, absl::Seconds(60));
    const int missing = missing_spans();
    int reported = 0;
    for (const auto& [trace, spans] : acked) {
      for (const std::string& span : spans) {
        if (!backend_.Has(trace, span) && ++reported <= 5) {
          ADD_FAILURE() << "acknowledged span " << trace << "/" << span << " lost";
        }
      }
    }
    EXPECT_EQ(missing, 0) << "spans of " << acked.size() << " acknowledged error traces\n"
                          << (missing > 0 ? Logs() : "");
  }

  void StopAll() {
    for (Member& m : members_) {
      if (!m.alive()) continue;
      ASSERT_TRUE(m.process->Signal(SIGTERM));
      EXPECT_EQ(m.process->Wait(absl::Seconds(60)), 0) << ReadFile(m.log);
      m.process.reset();
    }
  }

  TempDir test_dir_;
  AnomalyRecordingBackend backend_;
  int backend_port_ = 0;
  std::unique_ptr<grpc::Server> backend_server_;
  std::string name_;
  absl::Duration deadline_ = absl::Seconds(30);
  absl::Duration grace_ = absl::Seconds(2);
  std::vector<Member> members_;
};

TEST_F(KafkaClusterTest, ThreeMembersJudgeEveryOrderOnceWhereverItsTracesWere) {
  Configure("stable", absl::Seconds(30), absl::Seconds(2));
  for (int i = 0; i < 3; ++i) StartMember();
  ASSERT_TRUE(WaitFor([&] { return Balanced() && EveryoneOwns(); }, absl::Seconds(60))) << Logs();
  // The broker keeps records a week (Kafka's default), less than a trace may be held (14 days
  // by default): every member read that from the broker and said so at start-up.
  for (const Member& m : members_) {
    EXPECT_THAT(ReadFile(m.log),
                ::testing::HasSubstr("order topic \"stable_orders\" keeps records for "
                                     "retention.ms=604800000 ms (168h), less than "
                                     "orders.max_hold_time (336h)"));
  }
  // Order flows into every member: each order's traces and its owner are spread over all three.
  std::vector<DemoRun> demos;
  for (int i = 0; i < 3; ++i) {
    demos.push_back(StartDemo(members_[i], absl::StrCat("s", i, "-"), 12, 11 + i));
  }
  std::vector<Struct> orders;
  for (DemoRun& d : demos) {
    for (Struct& o : FinishDemo(d)) orders.push_back(std::move(o));
  }
  ASSERT_EQ(orders.size(), 36u);
  CheckOrders(orders);
  // Each member judged some of the orders: the owners are spread.
  for (const Member& m : members_) {
    EXPECT_GT(MetricSum(m, "tracekeep_kafka_order_traces_received_total", {}), 0) << m.log;
  }
  StopAll();
}

TEST_F(KafkaClusterTest, Kill9OfAMemberUnderLoadLosesNothingAndTheOthersTakeOver) {
  Configure("kill", absl::Seconds(30), absl::Seconds(15));
  for (int i = 0; i < 3; ++i) StartMember();
  ASSERT_TRUE(WaitFor([&] { return Balanced() && EveryoneOwns(); }, absl::Seconds(60))) << Logs();
  // Clients talk to the members that stay; member 1 owns partitions of both topics: traces and
  // orders in flight there when it dies.
  ErrorLoad load({members_[0].grpc, members_[2].grpc}, 1000);
  std::vector<DemoRun> demos;
  demos.push_back(StartDemo(members_[0], "k0-", 20, 21));
  demos.push_back(StartDemo(members_[2], "k2-", 20, 22));
  ASSERT_TRUE(WaitFor([&] { return load.count() >= 40; }, absl::Seconds(30)));
  Kill(members_[1]);
  const absl::Time killed_at = absl::Now();
  // The survivors take its partitions of both topics (the group notices after session_timeout,
  // 6 s here).
  EXPECT_TRUE(WaitFor([&] { return Balanced(); }, absl::Seconds(40))) << Logs();
  const absl::Duration takeover = absl::Now() - killed_at;
  RecordProperty("takeover_seconds", absl::StrCat(absl::ToDoubleSeconds(takeover)));
  std::cout << "partitions of the killed member owned again after " << takeover << "\n";
  std::vector<Struct> orders;
  for (DemoRun& d : demos) {
    for (Struct& o : FinishDemo(d)) orders.push_back(std::move(o));
  }
  const size_t before = load.count();
  ASSERT_TRUE(WaitFor([&] { return load.count() >= before + 40; }, absl::Seconds(30)));
  load.Stop();
  // Nothing acknowledged depends on the dead member but what it had kept and not yet forwarded:
  // that is on its disk, and goes out when it comes back.
  StartMember(/*restart=*/1);
  CheckAcknowledged(load);
  CheckOrders(orders);
  StopAll();
}

TEST_F(KafkaClusterTest, ScaleFromTwoToThreeMembersUnderLoad) {
  Configure("scale", absl::Seconds(30), absl::Seconds(15));
  for (int i = 0; i < 2; ++i) StartMember();
  ASSERT_TRUE(WaitFor([&] { return Balanced() && EveryoneOwns(); }, absl::Seconds(60))) << Logs();
  ErrorLoad load({members_[0].grpc, members_[1].grpc}, 2000);
  std::vector<DemoRun> demos;
  demos.push_back(StartDemo(members_[0], "g0-", 20, 31));
  demos.push_back(StartDemo(members_[1], "g1-", 20, 32));
  ASSERT_TRUE(WaitFor([&] { return load.count() >= 40; }, absl::Seconds(30)));
  StartMember();
  // The new member takes a share of both topics while traffic flows.
  EXPECT_TRUE(WaitFor([&] { return Balanced() && EveryoneOwns(); }, absl::Seconds(40))) << Logs();
  std::vector<Struct> orders;
  for (DemoRun& d : demos) {
    for (Struct& o : FinishDemo(d)) orders.push_back(std::move(o));
  }
  const size_t before = load.count();
  ASSERT_TRUE(WaitFor([&] { return load.count() >= before + 40; }, absl::Seconds(30)));
  load.Stop();
  CheckAcknowledged(load);
  CheckOrders(orders);
  StopAll();
}

// Last: it restarts the suite's broker.
TEST_F(KafkaClusterTest, ZBrokerRestartUnderLoadLosesNothingAcknowledged) {
  Configure("restart", absl::Seconds(30), absl::Seconds(10));
  for (int i = 0; i < 3; ++i) StartMember();
  ASSERT_TRUE(WaitFor([&] { return Balanced() && EveryoneOwns(); }, absl::Seconds(60))) << Logs();
  ErrorLoad load({members_[0].grpc, members_[1].grpc, members_[2].grpc}, 3000);
  ASSERT_TRUE(WaitFor([&] { return load.count() >= 40; }, absl::Seconds(30)));
  broker_->Kill();
  ASSERT_TRUE(broker_->Restart(absl::Seconds(90)).ok());
  const size_t before = load.count();
  ASSERT_TRUE(WaitFor([&] { return load.count() >= before + 40; }, absl::Seconds(60))) << Logs();
  load.Stop();
  CheckAcknowledged(load);
  // Orders are judged across members again once the broker is back and the groups settled
  // (members whose sessions lapsed while it was down rejoin; the grace period covers what is
  // left of that).
  ASSERT_TRUE(WaitFor([&] { return Balanced() && EveryoneOwns(); }, absl::Seconds(60))) << Logs();
  DemoRun demo = StartDemo(members_[1], "r1-", 16, 41);
  CheckOrders(FinishDemo(demo));
  StopAll();
}

}  // namespace
}  // namespace tracekeep::e2e
