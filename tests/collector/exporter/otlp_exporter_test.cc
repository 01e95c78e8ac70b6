#include "collector/exporter/otlp_exporter.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace tracekeep::exporter {
namespace {

namespace otlp = ::opentelemetry::proto::collector::trace::v1;

// A scriptable OTLP receiver: answers with the queued codes first, then OK.
class ScriptedBackend final : public otlp::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext* context, const otlp::ExportTraceServiceRequest* request,
                      otlp::ExportTraceServiceResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!context->client_metadata().empty()) {
      auto it = context->client_metadata().find("authorization");
      if (it != context->client_metadata().end()) auth_ = std::string(it->second.data(), it->second.size());
    }
    if (!script_.empty()) {
      grpc::StatusCode code = script_.front();
      script_.pop_front();
      return grpc::Status(code, "scripted failure");
    }
    size_t n = 0;
    for (const auto& rs : request->resource_spans()) {
      resources_.insert(rs.resource().SerializeAsString());
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) {
          span_ids_.insert(span.span_id());
          ++n;
        }
      }
    }
    max_batch_ = std::max(max_batch_, n);
    received_ += n;
    return grpc::Status::OK;
  }
  void Fail(std::initializer_list<grpc::StatusCode> codes) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.insert(script_.end(), codes);
  }
  size_t received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  size_t distinct() {
    std::lock_guard<std::mutex> lock(mu_);
    return span_ids_.size();
  }
  size_t max_batch() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_batch_;
  }
  size_t resources() {
    std::lock_guard<std::mutex> lock(mu_);
    return resources_.size();
  }
  std::string auth() {
    std::lock_guard<std::mutex> lock(mu_);
    return auth_;
  }

 private:
  std::mutex mu_;
  std::deque<grpc::StatusCode> script_;
  std::set<std::string> span_ids_;
  std::set<std::string> resources_;
  size_t received_ = 0;
  size_t max_batch_ = 0;
  std::string auth_;
};

std::unique_ptr<grpc::Server> StartServer(ScriptedBackend* backend, const std::string& address,
                                          int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(backend);
  return builder.BuildAndStart();
}

// `traces` traces of `spans` spans each, from two origins; span ids are unique across calls.
KeptTraces MakeTraces(int traces, int spans) {
  static int next_id = 1;
  auto shop = std::make_shared<SpanOrigin>();
  shop->resource = std::string("\x0a\x05\x0a\x01s\x12\x00", 7);
  auto crm = std::make_shared<SpanOrigin>();
  KeptTraces out;
  for (int t = 0; t < traces; ++t) {
    KeptTrace& kt = out.emplace_back();
    kt.trace_id = std::string(16, static_cast<char>(t + 1));
    for (int s = 0; s < spans; ++s) {
      SpanRecord& r = kt.spans.emplace_back();
      r.origin = s % 2 ? shop : crm;
      const int id = next_id++;
      r.span_id = std::string(4, '\x01') + std::string(reinterpret_cast<const char*>(&id), 4);
      // A serialized Span: field 2 (span_id), 8 bytes.
      r.span = std::string("\x12\x08", 2) + r.span_id;
    }
  }
  return out;
}

bool WaitFor(const std::function<bool()>& condition) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

OtlpExporterOptions FastOptions(int port) {
  OtlpExporterOptions o;
  o.endpoint = "127.0.0.1:" + std::to_string(port);
  o.batch_timeout = absl::Milliseconds(5);
  o.initial_interval = absl::Milliseconds(5);
  o.max_interval = absl::Milliseconds(20);
  o.timeout = absl::Seconds(5);
  return o;
}

class OtlpExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer(&backend_, "127.0.0.1:0", &port_);
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }
  ScriptedBackend backend_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(OtlpExporterTest, DeliversEverySpanWithItsResource) {
  OtlpExporterOptions o = FastOptions(port_);
  o.headers["authorization"] = "Bearer abc";
  auto exporter = OtlpExporter::Create(o, Clock::Real());
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_TRUE((*exporter)->Start().ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(5, 4)).ok());
  EXPECT_TRUE(WaitFor([&] { return (*exporter)->stats().spans_exported.load() == 20; }));
  EXPECT_EQ(backend_.received(), 20u);
  EXPECT_EQ(backend_.distinct(), 20u);
  EXPECT_EQ(backend_.resources(), 2u);
  EXPECT_EQ(backend_.auth(), "Bearer abc");
}

TEST_F(OtlpExporterTest, RetriesRetryableCodesAndDeliversOnce) {
  backend_.Fail({grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::RESOURCE_EXHAUSTED});
  auto exporter = OtlpExporter::Create(FastOptions(port_), Clock::Real());
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->Start().ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(2, 3)).ok());
  EXPECT_TRUE(WaitFor([&] { return (*exporter)->stats().spans_exported.load() == 6; }));
  EXPECT_EQ(backend_.received(), 6u);
  EXPECT_EQ((*exporter)->stats().retries.load(), 2u);
  EXPECT_EQ((*exporter)->stats().requests_failed.load(), 2u);
}

TEST_F(OtlpExporterTest, PermanentErrorDropsWithoutRetry) {
  backend_.Fail({grpc::StatusCode::INVALID_ARGUMENT});
  auto exporter = OtlpExporter::Create(FastOptions(port_), Clock::Real());
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->Start().ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(1, 3)).ok());
  EXPECT_TRUE(WaitFor([&] { return (*exporter)->stats().dropped_permanent_error.load() == 3; }));
  EXPECT_EQ((*exporter)->stats().retries.load(), 0u);
  EXPECT_EQ(backend_.received(), 0u);
}

TEST_F(OtlpExporterTest, FullQueueRefusesAndCounts) {
  OtlpExporterOptions o = FastOptions(port_);
  o.queue_size_spans = 10;
  auto exporter = OtlpExporter::Create(o, Clock::Real());  // not started: nothing drains
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(2, 4)).ok());
  absl::Status s = (*exporter)->Consume(MakeTraces(1, 4));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*exporter)->stats().dropped_queue_full.load(), 4u);
  EXPECT_EQ((*exporter)->stats().queue_spans.load(), 8u);
}

TEST_F(OtlpExporterTest, BatchesNeverExceedTheMaximum) {
  OtlpExporterOptions o = FastOptions(port_);
  o.send_batch_size = 5;
  o.send_batch_max_size = 7;
  auto exporter = OtlpExporter::Create(o, Clock::Real());
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(10, 5)).ok());  // queued before the sender starts
  ASSERT_TRUE((*exporter)->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return (*exporter)->stats().spans_exported.load() == 50; }));
  EXPECT_EQ(backend_.max_batch(), 7u);
}

TEST_F(OtlpExporterTest, ShutdownFlushesWhatIsQueued) {
  OtlpExporterOptions o = FastOptions(port_);
  o.batch_timeout = absl::Hours(1);  // only the shutdown sends this batch
  o.send_batch_size = 1000;
  auto exporter = OtlpExporter::Create(o, Clock::Real());
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->Start().ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(3, 3)).ok());
  (*exporter)->Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(backend_.received(), 9u);
  EXPECT_EQ((*exporter)->Consume(MakeTraces(1, 1)).code(), absl::StatusCode::kUnavailable);
}

TEST(OtlpExporterOutageTest, DeliversOnceTheBackendComesUp) {
  // Reserve a free port, then let the exporter fail against it until a backend binds it.
  int port = 0;
  ScriptedBackend probe;
  auto placeholder = StartServer(&probe, "127.0.0.1:0", &port);
  placeholder->Shutdown();
  placeholder.reset();
  auto exporter = OtlpExporter::Create(FastOptions(port), Clock::Real());
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->Start().ok());
  ASSERT_TRUE((*exporter)->Consume(MakeTraces(2, 2)).ok());
  EXPECT_TRUE(WaitFor([&] { return (*exporter)->stats().requests_failed.load() >= 2; }));
  ScriptedBackend backend;
  int bound = 0;
  auto server = StartServer(&backend, "127.0.0.1:" + std::to_string(port), &bound);
  ASSERT_EQ(bound, port);
  EXPECT_TRUE(WaitFor([&] { return (*exporter)->stats().spans_exported.load() == 4; }));
  EXPECT_EQ(backend.received(), 4u);
  server->Shutdown();
}

TEST(OtlpExporterOptionsTest, InvalidOptionsAreNamed) {
  OtlpExporterOptions o;
  EXPECT_NE(OtlpExporter::Create(o, Clock::Real()).status().message().find("endpoint"),
            std::string::npos);
  o.endpoint = "localhost:1";
  o.insecure = false;
  EXPECT_EQ(OtlpExporter::Create(o, Clock::Real()).status().code(),
            absl::StatusCode::kUnimplemented);
  o.insecure = true;
  o.send_batch_size = 10;
  o.send_batch_max_size = 5;
  EXPECT_FALSE(OtlpExporter::Create(o, Clock::Real()).ok());
}

}  // namespace
}  // namespace tracekeep::exporter
