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
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/process.h"

namespace tracekeep::e2e {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;

std::string Config(const std::string& dir, const std::string& decision_wait) {
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
  policies: [{name: everything, type: always_sample}]
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
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
  std::string grpc, admin;
};

Daemon StartDaemon(const TempDir& dir, const std::string& decision_wait, int run) {
  const std::string config = absl::StrCat(dir.path(), "/tracekeep-", run, ".yaml");
  const std::string endpoints = absl::StrCat(dir.path(), "/endpoints-", run, ".json");
  WriteFile(config, Config(dir.path(), decision_wait));
  Daemon d;
  d.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{TRACEKEEP_BIN, "--config", config, "--write-endpoints", endpoints},
      absl::StrCat(dir.path(), "/tracekeep-", run, ".log"));
  EXPECT_TRUE(WaitFor([&] { return !ReadFile(endpoints).empty(); }, absl::Seconds(60)))
      << ReadFile(absl::StrCat(dir.path(), "/tracekeep-", run, ".log"));
  d.grpc = JsonValue(ReadFile(endpoints), "otlp_grpc");
  d.admin = JsonValue(ReadFile(endpoints), "admin");
  return d;
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

}  // namespace
}  // namespace tracekeep::e2e
