// End to end: sampling policies replaced with `tracekeepctl policies set` on a running tracekeep
// under a steady OTLP/gRPC load. Every trace sent is decided exactly once (kept, not sampled or
// dropped), error traces are all kept, and the new policies take effect without a restart.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/process.h"

namespace tracekeep::e2e {
namespace {

using ::testing::HasSubstr;
namespace collector = ::opentelemetry::proto::collector::trace::v1;

// The forward target: distinct trace ids received, and the tracekeep.policy of their spans.
class ForwardTarget final : public collector::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext*, const collector::ExportTraceServiceRequest* request,
                      collector::ExportTraceServiceResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& rs : request->resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) {
          std::string policy;
          for (const auto& kv : span.attributes()) {
            if (kv.key() == "tracekeep.policy") policy = kv.value().string_value();
          }
          policies_[ToHex(span.trace_id())] = policy;
          ++spans_;
        }
      }
    }
    return grpc::Status::OK;
  }
  std::map<std::string, std::string> policies() {
    std::lock_guard<std::mutex> lock(mu_);
    return policies_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> policies_;
  int spans_ = 0;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string HttpGet(const std::string& url) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(curl) != CURLE_OK) body.clear();
  curl_easy_cleanup(curl);
  return body;
}

// Sums every series of a metric family in a Prometheus text exposition.
double MetricSum(const std::string& text, const std::string& name) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name)) continue;
    const absl::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != ' ' && rest[0] != '{')) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) sum += v;
  }
  return sum;
}

std::string JsonValue(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": \"";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  const size_t start = at + needle.size();
  return json.substr(start, json.find('"', start) - start);
}

// What a generated trace carries.
enum class Kind { kHealthy, kError, kCancelled, kDebugError };
Kind KindOf(int n) {
  switch (n % 5) {
    case 0:
      return Kind::kError;
    case 1:
      return Kind::kCancelled;
    case 2:
      return Kind::kDebugError;
    default:
      return Kind::kHealthy;
  }
}

std::string TraceId(int n) {
  std::string id(16, '\x7e');
  for (int i = 0; i < 4; ++i) id[12 + i] = static_cast<char>((n >> (8 * (3 - i))) & 0xff);
  return id;
}

// Appends trace `n` (a root and a child) to `request`.
void AddTrace(int n, collector::ExportTraceServiceRequest* request) {
  auto* ss = request->mutable_resource_spans(0)->mutable_scope_spans(0);
  const Kind kind = KindOf(n);
  for (int i = 0; i < 2; ++i) {
    auto* span = ss->add_spans();
    span->set_trace_id(TraceId(n));
    span->set_span_id(std::string(7, '\x01') + static_cast<char>(i + 1));
    if (i == 1) span->set_parent_span_id(std::string(7, '\x01') + '\x01');
    span->set_name(i == 0 ? "POST /orders" : "UPDATE orders");
    span->set_start_time_unix_nano(1700000000000000000 + i);
    span->set_end_time_unix_nano(1700000000100000000);
    if (i == 1 && (kind == Kind::kError || kind == Kind::kDebugError)) {
      span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
    }
    if (i == 1 && kind == Kind::kCancelled) {
      auto* kv = span->add_attributes();
      kv->set_key("order.status");
      kv->mutable_value()->set_string_value("CANCELLED");
    }
    if (kind == Kind::kDebugError) {
      auto* kv = span->add_attributes();
      kv->set_key("debug");
      kv->mutable_value()->set_bool_value(true);
    }
  }
}

constexpr char kNewPolicies[] = R"(
- name: errors
  type: status_code
  status_code: {status_codes: [ERROR]}
- name: cancelled
  type: string_attribute
  string_attribute: {key: order.status, values: [CANCELLED]}
- name: no-debug
  type: drop
  drop:
    drop_sub_policy:
      - {name: debug, type: boolean_attribute, boolean_attribute: {key: debug, value: true}}
)";

TEST(PolicyChangeTest, PoliciesChangeUnderLoadWithoutLosingPendingTraces) {
  TempDir dir;
  ForwardTarget target;
  int target_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &target_port);
  builder.RegisterService(&target);
  std::unique_ptr<grpc::Server> target_server = builder.BuildAndStart();
  ASSERT_NE(target_server, nullptr);

  const std::string config = dir.path() + "/tracekeep.yaml";
  WriteFile(config, absl::StrCat(R"(
data_dir: )",
                                 dir.path(), R"(/data
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {enabled: false}
sampler:
  decision_wait: 200ms
  num_shards: 2
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
exporters:
  otlp:
    endpoint: "127.0.0.1:)",
                                 target_port, R"("
    batch: {timeout: 20ms}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
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
  const std::string metrics_url =
      absl::StrCat("http://", JsonValue(endpoints, "telemetry"), "/metrics");
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", admin_addr});
    return RunCommand(args);
  };

  // The load: back-to-back requests of 10 two-span traces; with a 200 ms decision_wait, many
  // traces are pending when the policies change. batch_sent[k] = when batch k was acknowledged.
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<int> failures{0};
  std::vector<absl::Time> batch_sent;  // written by the sender, read after join
  std::thread sender([&] {
    auto stub = collector::TraceService::NewStub(
        grpc::CreateChannel(grpc_addr, grpc::InsecureChannelCredentials()));
    int next = 0;
    while (!stop.load()) {
      collector::ExportTraceServiceRequest request;
      auto* rs = request.add_resource_spans();
      auto* attr = rs->mutable_resource()->add_attributes();
      attr->set_key("service.name");
      attr->mutable_value()->set_string_value("shop-api");
      rs->add_scope_spans();
      for (int i = 0; i < 10; ++i) AddTrace(next + i, &request);
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      collector::ExportTraceServiceResponse response;
      if (stub->Export(&context, request, &response).ok()) {
        next += 10;
        batch_sent.push_back(absl::Now());
        sent.store(next);
      } else {
        failures.fetch_add(1);
      }
    }
  });

  // Load for 2 s under the first policies, so that traces sent early are decided by them.
  const absl::Time load_start = absl::Now();
  ASSERT_TRUE(
      WaitFor([&] { return sent.load() >= 300 && absl::Now() - load_start > absl::Seconds(2); },
              absl::Seconds(60)));
  // A bad set is refused with every problem and changes nothing.
  const std::string bad = dir.path() + "/bad.yaml";
  WriteFile(bad, "- {name: a, type: latency, latency: {threshold_ms: -5}}\n- {name: b, type: x}\n");
  CommandResult refused = ctl({"policies", "set", bad});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("threshold_ms: must be >= 0, got -5"));
  EXPECT_THAT(refused.output, HasSubstr("unknown policy type \"x\""));
  // The good set, mid-stream.
  const std::string good = dir.path() + "/good.yaml";
  WriteFile(good, kNewPolicies);
  const absl::Time change_start = absl::Now();
  CommandResult set = ctl({"policies", "set", good});
  const absl::Time change_end = absl::Now();
  EXPECT_EQ(set.exit_code, 0) << set.output;
  EXPECT_THAT(set.output, HasSubstr("policies set: 3 policies"));
  const int sent_at_change = sent.load();
  ASSERT_TRUE(WaitFor([&] { return sent.load() >= sent_at_change + 300; }, absl::Seconds(60)));
  stop.store(true);
  sender.join();
  const int total = sent.load();
  EXPECT_EQ(failures.load(), 0);

  CommandResult got = ctl({"policies", "get"});
  EXPECT_EQ(got.exit_code, 0);
  EXPECT_THAT(got.output, HasSubstr("name: no-debug"));

  // Every trace sent is decided exactly once.
  std::string metrics;
  auto decided = [&] {
    metrics = HttpGet(metrics_url);
    return MetricSum(metrics, "tracekeep_sampler_traces_sampled_total") +
           MetricSum(metrics, "tracekeep_sampler_traces_not_sampled_total") +
           MetricSum(metrics, "tracekeep_sampler_traces_dropped_total");
  };
  EXPECT_TRUE(WaitFor([&] { return decided() == total; }, absl::Seconds(30)))
      << "sent " << total << ", decided " << decided() << "\n"
      << metrics;
  EXPECT_EQ(MetricSum(metrics, "tracekeep_sampler_traces_pending"), 0);
  EXPECT_EQ(MetricSum(metrics, "tracekeep_sampler_traces_evicted_total"), 0);
  EXPECT_EQ(MetricSum(metrics, "tracekeep_sampler_policy_updates_total"), 1);
  const double kept = MetricSum(metrics, "tracekeep_sampler_traces_sampled_total");
  EXPECT_GT(MetricSum(metrics, "tracekeep_sampler_traces_sampled_total{policy=\"cancelled\"}"), 0);
  EXPECT_GT(MetricSum(metrics, "tracekeep_sampler_traces_dropped_total"), 0);

  // Kept traces reach the forward target, tagged; every plain error trace is among them.
  ASSERT_TRUE(WaitFor([&] { return target.policies().size() == kept; }, absl::Seconds(30)))
      << target.policies().size() << " forwarded of " << kept;
  const auto forwarded = target.policies();
  int old_rules = 0, new_rules = 0;
  for (int n = 0; n < total; ++n) {
    const auto it = forwarded.find(ToHex(TraceId(n)));
    // Decided surely before the change (sent more than decision_wait + 1 s before it), or surely
    // after it (sent after it).
    const absl::Time at = batch_sent[n / 10];
    const bool before = at < change_start - absl::Milliseconds(1200);
    const bool after = at > change_end;
    old_rules += before;
    new_rules += after;
    switch (KindOf(n)) {
      case Kind::kError:
        ASSERT_NE(it, forwarded.end()) << "error trace " << n << " lost";
        EXPECT_EQ(it->second, "errors");
        break;
      case Kind::kHealthy:
        EXPECT_EQ(it, forwarded.end()) << n;
        break;
      case Kind::kCancelled:
        if (after) {
          ASSERT_NE(it, forwarded.end()) << n;
          EXPECT_EQ(it->second, "cancelled");
        }
        if (before) EXPECT_EQ(it, forwarded.end()) << n;
        break;
      case Kind::kDebugError:
        if (after) EXPECT_EQ(it, forwarded.end()) << n;
        if (before) EXPECT_NE(it, forwarded.end()) << n;
        break;
    }
  }

  EXPECT_GT(old_rules, 0);
  EXPECT_GT(new_rules, 0);

  ASSERT_TRUE(daemon.Signal(SIGTERM));
  EXPECT_EQ(daemon.Wait(absl::Seconds(60)), 0) << ReadFile(log);
  target_server->Shutdown();
}

}  // namespace
}  // namespace tracekeep::e2e
