#include "collector/exporter/otlp_exporter.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/collector/exporter/status_details.h"

namespace tracekeep::exporter {
namespace {

namespace otlp = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Polls `done` until it holds or `limit` passes.
bool PollUntil(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// An OTLP TraceService that records what it receives and answers as scripted.
class FakeTraceService final : public otlp::TraceService::Service {
 public:
  struct Reply {
    grpc::Status status;
    int64_t rejected_spans = 0;
    bool hang = false;  // answer only once the client cancels the call
  };

  // Replies for the next calls, in order; calls beyond the script are answered OK.
  void Script(std::vector<Reply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Reply& r : replies) script_.push_back(std::move(r));
  }

  grpc::Status Export(grpc::ServerContext* context, const otlp::ExportTraceServiceRequest* request,
                      otlp::ExportTraceServiceResponse* response) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++calls_;
    Reply reply;
    if (!script_.empty()) {
      reply = std::move(script_.front());
      script_.pop_front();
    }
    if (reply.hang) {
      lock.unlock();
      PollUntil([context] { return context->IsCancelled(); }, absl::Seconds(30));
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "hung");
    }
    if (!reply.status.ok()) return reply.status;
    accepted_.push_back(*request);
    for (const auto& [key, value] : context->client_metadata()) {
      metadata_[std::string(key.data(), key.size())] = std::string(value.data(), value.size());
    }
    if (reply.rejected_spans > 0) {
      response->mutable_partial_success()->set_rejected_spans(reply.rejected_spans);
      response->mutable_partial_success()->set_error_message("span too old");
    }
    return grpc::Status::OK;
  }

  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  // Requests answered OK.
  std::vector<otlp::ExportTraceServiceRequest> accepted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_;
  }
  std::map<std::string, std::string> metadata() const {
    std::lock_guard<std::mutex> lock(mu_);
    return metadata_;
  }

 private:
  mutable std::mutex mu_;
  std::deque<Reply> script_;
  int calls_ = 0;
  std::vector<otlp::ExportTraceServiceRequest> accepted_;
  std::map<std::string, std::string> metadata_;
};

int SpanCount(const otlp::ExportTraceServiceRequest& request) {
  int n = 0;
  for (const auto& rs : request.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  }
  return n;
}

int SpanCount(const std::vector<otlp::ExportTraceServiceRequest>& requests) {
  int n = 0;
  for (const auto& r : requests) n += SpanCount(r);
  return n;
}

std::vector<int> BatchSizes(const std::vector<otlp::ExportTraceServiceRequest>& requests) {
  std::vector<int> sizes;
  for (const auto& r : requests) sizes.push_back(SpanCount(r));
  return sizes;
}

// Runs `service` on 127.0.0.1:`port` (0 = any free port).
class TestServer {
 public:
  explicit TestServer(FakeTraceService* service, int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~TestServer() { Stop(); }
  void Stop() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
  }
  bool ok() const { return server_ != nullptr && port_ > 0; }
  int port() const { return port_; }
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

SpanOriginPtr MakeOrigin(const std::string& service, const std::string& scope_name) {
  opentelemetry::proto::resource::v1::Resource resource;
  auto* attr = resource.add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value(service);
  opentelemetry::proto::common::v1::InstrumentationScope scope;
  scope.set_name(scope_name);
  scope.set_version("1.2.3");
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = resource.SerializeAsString();
  origin->resource_schema_url = "https://opentelemetry.io/schemas/1.21.0";
  origin->scope = scope.SerializeAsString();
  origin->service_name = service;
  return origin;
}

// A kept trace of `spans` spans with trace id 16 x `id`, span ids 1..spans, each span's name
// "<service>/<n>".
KeptTrace MakeTrace(char id, int spans, const SpanOriginPtr& origin) {
  KeptTrace trace;
  trace.trace_id = std::string(16, id);
  trace.policy = "test";
  for (int i = 1; i <= spans; ++i) {
    otlp_trace::Span span;
    span.set_trace_id(trace.trace_id);
    span.set_span_id(std::string(7, id) + static_cast<char>(i));
    span.set_name(absl::StrCat(origin->service_name, "/", i));
    SpanRecord& rec = trace.spans.emplace_back();
    rec.origin = origin;
    rec.span = span.SerializeAsString();
    rec.span_id = span.span_id();
  }
  return trace;
}

KeptTraces Traces(std::vector<KeptTrace> traces) { return traces; }

KeptTraces SomeSpans(char id, int n) {
  return Traces({MakeTrace(id, n, MakeOrigin("shop-api", "lib"))});
}

// Options for fast tests: small intervals, no compression surprises.
OtlpExporterOptions TestOptions(const std::string& endpoint) {
  OtlpExporterOptions o;
  o.endpoint = endpoint;
  o.timeout = absl::Seconds(5);
  o.send_batch_size = 1000;
  o.send_batch_max_size = 1000;
  o.batch_timeout = absl::Milliseconds(10);
  o.initial_interval = absl::Milliseconds(10);
  o.max_interval = absl::Milliseconds(20);
  return o;
}

std::unique_ptr<OtlpExporter> StartExporter(const OtlpExporterOptions& options, Clock* clock,
                                            QueueStore* queue = nullptr) {
  auto exporter = OtlpExporter::Create(options, clock, queue);
  EXPECT_TRUE(exporter.ok()) << exporter.status();
  if (!exporter.ok()) return nullptr;
  EXPECT_TRUE((*exporter)->Start().ok());
  return std::move(*exporter);
}

uint64_t TotalDropped(const ExporterStats& s) {
  uint64_t n = 0;
  for (int r = 0; r < kNumDropReasons; ++r) n += s.dropped(static_cast<DropReason>(r));
  return n;
}

class OtlpExporterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  FakeClock clock_;  // frozen unless a test advances it: batches then form by size only
  FakeTraceService service_;
  TestServer server_{&service_};
};

TEST_F(OtlpExporterTest, DeliversEveryKeptSpanWithResourceScopeAndHeaders) {
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.headers = {{"Authorization", "Bearer secret"}};
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  const SpanOriginPtr shop = MakeOrigin("shop-api", "shop-lib");
  const SpanOriginPtr crm = MakeOrigin("crm-api", "crm-lib");
  KeptTrace mixed = MakeTrace('\x03', 2, shop);
  mixed.spans.push_back(MakeTrace('\x03', 3, crm).spans[2]);  // one trace across two services
  ASSERT_TRUE(
      exporter->Consume(Traces({MakeTrace('\x01', 4, shop), MakeTrace('\x02', 3, crm)})).ok());
  ASSERT_TRUE(exporter->Consume(Traces({std::move(mixed)})).ok());
  EXPECT_EQ(exporter->stats().queue_spans.load(), 10u);

  clock_.Advance(options.batch_timeout);  // the queued spans are now old enough to send
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().spans_exported.load() == 10; }));

  // Every span arrives once, under the resource and scope it was kept with.
  std::multiset<std::string> received;  // "<service>|<scope>|<span name>|<trace id byte>"
  for (const auto& request : service_.accepted()) {
    for (const auto& rs : request.resource_spans()) {
      ASSERT_EQ(rs.resource().attributes_size(), 1);
      EXPECT_EQ(rs.schema_url(), "https://opentelemetry.io/schemas/1.21.0");
      const std::string service = rs.resource().attributes(0).value().string_value();
      for (const auto& ss : rs.scope_spans()) {
        EXPECT_EQ(ss.scope().version(), "1.2.3");
        for (const auto& span : ss.spans()) {
          received.insert(absl::StrCat(service, "|", ss.scope().name(), "|", span.name(), "|",
                                       static_cast<int>(span.trace_id()[0])));
        }
      }
    }
  }
  EXPECT_EQ(received, (std::multiset<std::string>{
                          "shop-api|shop-lib|shop-api/1|1", "shop-api|shop-lib|shop-api/2|1",
                          "shop-api|shop-lib|shop-api/3|1", "shop-api|shop-lib|shop-api/4|1",
                          "crm-api|crm-lib|crm-api/1|2", "crm-api|crm-lib|crm-api/2|2",
                          "crm-api|crm-lib|crm-api/3|2", "shop-api|shop-lib|shop-api/1|3",
                          "shop-api|shop-lib|shop-api/2|3", "crm-api|crm-lib|crm-api/3|3"}));
  EXPECT_EQ(service_.metadata()["authorization"], "Bearer secret");
  EXPECT_TRUE(PollUntil([&] { return exporter->stats().queue_spans.load() == 0; }));
  EXPECT_EQ(TotalDropped(exporter->stats()), 0u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(OtlpExporterTest, RetriesUnavailableAndDeliversOnce) {
  service_.Script({{grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting")},
                   {grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting")}});
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 5;
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 5)).ok());

  ASSERT_TRUE(PollUntil([&] { return exporter->stats().spans_exported.load() == 5; }));
  EXPECT_EQ(service_.calls(), 3);
  EXPECT_EQ(SpanCount(service_.accepted()), 5);
  // Client-side counts are at least the server's: a connection hiccup is one more failed attempt.
  const ExporterStats& s = exporter->stats();
  EXPECT_GE(s.requests_failed.load(), 2u);
  EXPECT_EQ(s.retries.load(), s.requests_failed.load());
  EXPECT_EQ(s.requests_sent.load(), s.requests_failed.load() + 1);
  EXPECT_EQ(TotalDropped(s), 0u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(OtlpExporterTest, PermanentErrorDropsTheBatchWithoutRetry) {
  service_.Script({{grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad span")}});
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 4;
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 4)).ok());
  ASSERT_TRUE(
      PollUntil([&] { return exporter->stats().dropped(DropReason::kPermanentError) == 4; }));

  // The sender moves on to the next batch; had it retried the first, the server would see a
  // third call.
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x02', 4)).ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().spans_exported.load() == 4; }));
  EXPECT_EQ(service_.calls(), 2);
  EXPECT_GE(exporter->stats().requests_failed.load(), 1u);
  EXPECT_EQ(TotalDropped(exporter->stats()), 4u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(OtlpExporterTest, PartiallyRejectedSpansAreCountedDropped) {
  service_.Script({{grpc::Status::OK, /*rejected_spans=*/2}});
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 5;
  options.compression = "none";  // the other tests use the default, gzip
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 5)).ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().dropped(DropReason::kRejected) == 2; }));
  EXPECT_EQ(exporter->stats().spans_exported.load(), 3u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(OtlpExporterTest, ResourceExhaustedWaitsTheServersRetryDelay) {
  // The backoff alone would wait an hour; the server asks for 5ms.
  service_.Script(
      {{grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down",
                     test_util::RpcStatus(8, "slow down", test_util::RetryInfoAny(0, 5000000)))}});
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 3;
  options.initial_interval = absl::Hours(1);
  options.max_interval = absl::Hours(1);
  options.max_elapsed_time = absl::ZeroDuration();
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 3)).ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().spans_exported.load() == 3; }));
  EXPECT_EQ(service_.calls(), 2);
  EXPECT_GE(exporter->stats().retries.load(), 1u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(OtlpExporterTest, FullQueueRefusesAndCountsThenFlushesOnShutdown) {
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.queue_size_spans = 10;
  auto created = OtlpExporter::Create(options, &clock_);
  ASSERT_TRUE(created.ok()) << created.status();
  OtlpExporter& exporter = **created;  // not started: nothing drains the queue

  ASSERT_TRUE(exporter.Consume(SomeSpans('\x01', 8)).ok());
  const absl::Status full = exporter.Consume(SomeSpans('\x02', 5));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), HasSubstr("queue full"));
  EXPECT_EQ(exporter.stats().dropped(DropReason::kQueueFull), 5u);
  EXPECT_EQ(exporter.stats().queue_spans.load(), 8u);
  ASSERT_TRUE(exporter.Consume(SomeSpans('\x03', 2)).ok());  // still fits
  EXPECT_EQ(exporter.stats().queue_spans.load(), 10u);

  ASSERT_TRUE(exporter.Start().ok());
  exporter.Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(SpanCount(service_.accepted()), 10);
  EXPECT_EQ(exporter.stats().spans_exported.load(), 10u);
  EXPECT_EQ(exporter.stats().queue_spans.load(), 0u);
  EXPECT_EQ(TotalDropped(exporter.stats()), 5u);
}

TEST_F(OtlpExporterTest, ShutdownFlushesPendingBatchesAndRefusesAfterwards) {
  // The frozen clock never makes a batch old enough and 7 < send_batch_size: only Shutdown sends.
  auto exporter = StartExporter(TestOptions(server_.endpoint()), &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 3)).ok());
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x02', 4)).ok());

  exporter->Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(SpanCount(service_.accepted()), 7);
  EXPECT_EQ(exporter->stats().spans_exported.load(), 7u);
  EXPECT_EQ(TotalDropped(exporter->stats()), 0u);

  EXPECT_EQ(exporter->Consume(SomeSpans('\x03', 2)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(exporter->stats().dropped(DropReason::kShutdown), 2u);
  exporter->Shutdown(absl::Now() + absl::Seconds(10));  // idempotent
  EXPECT_FALSE(exporter->Start().ok());
}

TEST_F(OtlpExporterTest, ShutdownInterruptsBackoffAndCountsTheRestDropped) {
  service_.Script(std::vector<FakeTraceService::Reply>(
      100, {grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")}));
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 3;
  options.send_batch_max_size = 3;
  options.initial_interval = absl::Hours(1);  // the sender is in a long backoff wait
  options.max_interval = absl::Hours(1);
  options.max_elapsed_time = absl::ZeroDuration();
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 3)).ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().requests_failed.load() == 1; }));
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x02', 2)).ok());  // queued behind the failing batch

  const absl::Time before = absl::Now();
  exporter->Shutdown(absl::Now() + absl::Milliseconds(50));
  EXPECT_LT(absl::Now() - before, absl::Seconds(30)) << "Shutdown waited for the backoff";
  EXPECT_EQ(exporter->stats().dropped(DropReason::kShutdown), 5u);
  EXPECT_EQ(exporter->stats().spans_exported.load(), 0u);
  EXPECT_EQ(exporter->stats().queue_spans.load(), 0u);
  EXPECT_EQ(exporter->stats().requests_sent.load(), 1u);  // no retry started
}

TEST_F(OtlpExporterTest, ShutdownCancelsARequestStillInFlightAtTheDeadline) {
  service_.Script({{grpc::Status::OK, 0, /*hang=*/true}});
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 3;
  options.timeout = absl::Hours(1);
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 3)).ok());
  ASSERT_TRUE(PollUntil([&] { return service_.calls() == 1; }));

  const absl::Time before = absl::Now();
  exporter->Shutdown(absl::Now() + absl::Milliseconds(50));
  EXPECT_LT(absl::Now() - before, absl::Seconds(30)) << "Shutdown waited for the request";
  EXPECT_EQ(exporter->stats().dropped(DropReason::kShutdown), 3u);
  EXPECT_EQ(exporter->stats().spans_exported.load(), 0u);
  EXPECT_EQ(exporter->stats().requests_sent.load(), 1u);
}

TEST_F(OtlpExporterTest, GivesUpAfterMaxElapsedTime) {
  service_.Script(std::vector<FakeTraceService::Reply>(
      1000, {grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")}));
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 3;
  options.max_elapsed_time = absl::Seconds(1);
  auto exporter = StartExporter(options, &clock_);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 3)).ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().retries.load() >= 2; }));
  EXPECT_EQ(exporter->stats().dropped(DropReason::kRetriesExhausted), 0u);

  clock_.Advance(absl::Seconds(2));  // the batch has now been failing longer than allowed
  ASSERT_TRUE(
      PollUntil([&] { return exporter->stats().dropped(DropReason::kRetriesExhausted) == 3; }));
  EXPECT_EQ(exporter->stats().spans_exported.load(), 0u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(OtlpExporterTest, BatchesNeverExceedSendBatchMaxSize) {
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 4;
  options.send_batch_max_size = 6;
  auto created = OtlpExporter::Create(options, &clock_);
  ASSERT_TRUE(created.ok()) << created.status();
  OtlpExporter& exporter = **created;
  const SpanOriginPtr origin = MakeOrigin("mes-api", "lib");
  ASSERT_TRUE(
      exporter.Consume(Traces({MakeTrace('\x01', 12, origin), MakeTrace('\x02', 13, origin)}))
          .ok());
  ASSERT_TRUE(exporter.Start().ok());

  // Four full batches go out by size; the remaining span waits (frozen clock) for Shutdown.
  ASSERT_TRUE(PollUntil([&] { return exporter.stats().spans_exported.load() == 24; }));
  exporter.Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_THAT(BatchSizes(service_.accepted()), ElementsAre(6, 6, 6, 6, 1));
  EXPECT_EQ(exporter.stats().spans_exported.load(), 25u);
}

TEST(OtlpExporterReconnectTest, DeliversOnceTheBackendComesUpOnTheSamePort) {
  FakeTraceService service;
  int port;
  {
    TestServer reserve(&service);  // learn a free port, then leave it closed
    ASSERT_TRUE(reserve.ok());
    port = reserve.port();
  }
  FakeClock clock;
  OtlpExporterOptions options = TestOptions(absl::StrCat("127.0.0.1:", port));
  options.send_batch_size = 3;
  auto exporter = StartExporter(options, &clock);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Consume(SomeSpans('\x01', 3)).ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().requests_failed.load() >= 2; }));
  EXPECT_EQ(exporter->stats().spans_exported.load(), 0u);

  TestServer server(&service, port);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(PollUntil([&] { return exporter->stats().spans_exported.load() == 3; }));
  EXPECT_EQ(SpanCount(service.accepted()), 3);
  EXPECT_GE(exporter->stats().retries.load(), 2u);
  EXPECT_EQ(TotalDropped(exporter->stats()), 0u);
  exporter->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST(OtlpExporterCreateTest, ListsEveryInvalidOption) {
  FakeClock clock;
  OtlpExporterOptions options;
  options.cert_file = "/nonexistent/client.pem";  // without key_file
  options.compression = "brotli";
  options.send_batch_size = 100;
  options.send_batch_max_size = 50;
  options.headers = {{"grpc-timeout", "1"}};
  const auto created = OtlpExporter::Create(options, &clock);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(created.status().message());
  EXPECT_THAT(message, HasSubstr("exporters.otlp.endpoint: must be set"));
  EXPECT_THAT(message, HasSubstr("exporters.otlp.tls: ca_file/cert_file need insecure: false"));
  EXPECT_THAT(message, HasSubstr("cert_file and key_file must be set together"));
  EXPECT_THAT(message, HasSubstr("exporters.otlp.compression: must be gzip or none, got "
                                 "\"brotli\""));
  EXPECT_THAT(message, HasSubstr("send_batch_max_size: must be >= send_batch_size (100), got 50"));
  EXPECT_THAT(message, HasSubstr("got \"grpc-timeout\""));

  options = OtlpExporterOptions();
  options.endpoint = "http://jaeger:4317";
  EXPECT_THAT(std::string(OtlpExporter::Create(options, &clock).status().message()),
              HasSubstr("without a scheme, got \"http://jaeger:4317\""));
  options.endpoint = "jaeger:4317";
  EXPECT_TRUE(OtlpExporter::Create(options, &clock).ok());
}

TEST(ExporterStatsTest, EveryDropReasonIsExportedWithItsLabel) {
  ExporterStats stats;
  stats.spans_dropped[static_cast<int>(DropReason::kRejected)] = 7;
  std::vector<std::string> labels;
  for (const auto& [reason, counter] : stats.DroppedByReason()) {
    labels.push_back(reason);
    EXPECT_EQ(counter->load(), std::string(reason) == "rejected" ? 7u : 0u) << reason;
  }
  EXPECT_THAT(labels, ElementsAre("queue_full", "retries_exhausted", "permanent_error", "rejected",
                                  "shutdown", "storage_error"));
}

// Span ids of every accepted request, in the order received.
std::vector<std::string> SpanIds(const std::vector<otlp::ExportTraceServiceRequest>& requests) {
  std::vector<std::string> ids;
  for (const auto& r : requests) {
    for (const auto& rs : r.resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) ids.push_back(span.span_id());
      }
    }
  }
  return ids;
}

std::vector<std::string> IdsOf(const std::vector<KeptTraces>& batches) {
  std::vector<std::string> ids;
  for (const KeptTraces& traces : batches) {
    for (const KeptTrace& t : traces) {
      for (const SpanRecord& s : t.spans) ids.push_back(std::string(s.span_id));
    }
  }
  return ids;
}

TEST_F(OtlpExporterTest, DurableQueueKeepsWhatTheBackendRefusedForTheNextRunAndSendsItFirst) {
  MemoryQueueStore queue;  // outlives both "runs"
  service_.Script(std::vector<FakeTraceService::Reply>(
      1000, {grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")}));
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 4;
  options.send_batch_max_size = 4;
  options.max_elapsed_time = absl::Milliseconds(1);  // not applied to a durable queue
  auto first = StartExporter(options, &clock_, &queue);
  ASSERT_NE(first, nullptr);
  const std::vector<KeptTraces> before = {SomeSpans('\x01', 3), SomeSpans('\x02', 5)};
  for (KeptTraces traces : before) ASSERT_TRUE(first->Consume(std::move(traces)).ok());
  EXPECT_EQ(queue.size(), 2u) << "each accepted batch is in the store before Consume returns";
  EXPECT_EQ(first->stats().queue_batches.load(), 2u);
  EXPECT_GT(first->stats().queue_bytes.load(), 0u);
  EXPECT_EQ(first->stats().oldest_enqueued_unix_nanos.load() > 0, true);
  ASSERT_TRUE(PollUntil([&] { return first->stats().retries.load() >= 3; }));
  clock_.Advance(absl::Hours(1));
  first->Shutdown(absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(TotalDropped(first->stats()), 0u) << "nothing is lost at shutdown";
  EXPECT_EQ(first->stats().spans_exported.load(), 0u);
  EXPECT_EQ(queue.size(), 2u);
  first.reset();

  // The backend is back; a new run finds the queue and sends it before anything new.
  service_.Script({});
  FakeTraceService backend;
  TestServer server(&backend);
  ASSERT_TRUE(server.ok());
  options.endpoint = server.endpoint();
  auto second = StartExporter(options, &clock_, &queue);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->stats().spans_recovered.load(), 8u);
  const std::vector<KeptTraces> after = {SomeSpans('\x03', 2)};
  for (KeptTraces traces : after) ASSERT_TRUE(second->Consume(std::move(traces)).ok());
  second->Shutdown(absl::Now() + absl::Seconds(10));

  std::vector<std::string> want = IdsOf(before);
  for (const std::string& id : IdsOf(after)) want.push_back(id);
  EXPECT_EQ(SpanIds(backend.accepted()), want) << "every span once, the previous run's first";
  EXPECT_EQ(second->stats().spans_exported.load(), 10u);
  EXPECT_EQ(TotalDropped(second->stats()), 0u);
  EXPECT_EQ(queue.size(), 0u) << "entries are deleted once acknowledged";
  EXPECT_EQ(second->stats().queue_bytes.load(), 0u);
  EXPECT_EQ(second->stats().queue_batches.load(), 0u);
  EXPECT_EQ(second->stats().oldest_enqueued_unix_nanos.load(), 0);
}

TEST_F(OtlpExporterTest, DurableQueueRefusesBeyondMaxBytesAndCountsQueueFull) {
  MemoryQueueStore queue;
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.queue_max_bytes = 2000;
  auto created = OtlpExporter::Create(options, &clock_, &queue);
  ASSERT_TRUE(created.ok()) << created.status();
  OtlpExporter& exporter = **created;  // not started: nothing drains the queue
  ASSERT_TRUE(exporter.Consume(SomeSpans('\x01', 10)).ok());
  const uint64_t used = exporter.stats().queue_bytes.load();
  ASSERT_GT(used, 0u);
  ASSERT_LT(used, 2000u);
  const absl::Status full = exporter.Consume(SomeSpans('\x02', 30));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), HasSubstr("max_bytes 2000"));
  EXPECT_THAT(std::string(full.message()), HasSubstr("in the span store"));
  EXPECT_EQ(exporter.stats().dropped(DropReason::kQueueFull), 30u);
  EXPECT_EQ(queue.size(), 1u);

  ASSERT_TRUE(exporter.Start().ok());
  exporter.Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(SpanCount(service_.accepted()), 10);
  EXPECT_EQ(queue.size(), 0u);
}

TEST_F(OtlpExporterTest, DurableQueueOnAFullDiskHandsTheBatchBackUntouchedAndRecovers) {
  MemoryQueueStore queue;
  auto exporter = StartExporter(TestOptions(server_.endpoint()), &clock_, &queue);
  ASSERT_NE(exporter, nullptr);
  const SpanOriginPtr origin = MakeOrigin("shop-api", "lib");
  KeptTraces batch = Traces({MakeTrace('\x01', 4, origin), MakeTrace('\x02', 3, origin)});
  const KeptTraces original = batch;
  queue.set_fail_appends(true);  // as on a full disk
  const absl::Status refused = exporter->Consume(std::move(batch));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("no space left"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("offer them again"));
  EXPECT_EQ(TotalDropped(exporter->stats()), 0u) << "nothing was given up";
  EXPECT_EQ(exporter->stats().queue_spans.load(), 0u);
  // TraceConsumer's kUnavailable contract: the caller still holds the whole batch, in order.
  ASSERT_EQ(batch.size(), original.size());
  for (size_t t = 0; t < batch.size(); ++t) {
    EXPECT_EQ(batch[t].trace_id, original[t].trace_id);
    ASSERT_EQ(batch[t].spans.size(), original[t].spans.size());
    for (size_t i = 0; i < batch[t].spans.size(); ++i) {
      EXPECT_EQ(batch[t].spans[i].span_id, original[t].spans[i].span_id);
      EXPECT_EQ(batch[t].spans[i].span, original[t].spans[i].span);
    }
  }

  queue.set_fail_appends(false);  // space freed: the same batch is offered again
  ASSERT_TRUE(exporter->Consume(std::move(batch)).ok());
  exporter->Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(SpanCount(service_.accepted()), 7);
  EXPECT_EQ(queue.size(), 0u);
}

TEST_F(OtlpExporterTest, DurableQueueBeyondTheMemoryBoundIsReadBackFromTheStoreInOrder) {
  MemoryQueueStore queue;
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.queue_size_spans = 4;  // memory holds 4 spans; the rest waits in the store only
  options.send_batch_size = 5;
  options.send_batch_max_size = 5;
  auto created = OtlpExporter::Create(options, &clock_, &queue);
  ASSERT_TRUE(created.ok()) << created.status();
  OtlpExporter& exporter = **created;
  std::vector<KeptTraces> batches;
  for (char id = 1; id <= 6; ++id) batches.push_back(SomeSpans(id, 3));
  for (KeptTraces traces : batches) ASSERT_TRUE(exporter.Consume(std::move(traces)).ok());
  EXPECT_EQ(exporter.stats().queue_spans.load(), 18u) << "the store, not memory, bounds the queue";
  ASSERT_TRUE(exporter.Start().ok());
  exporter.Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(SpanIds(service_.accepted()), IdsOf(batches));
  EXPECT_THAT(BatchSizes(service_.accepted()), ElementsAre(5, 5, 5, 3));
  EXPECT_EQ(queue.size(), 0u);
}

TEST_F(OtlpExporterTest, DurableQueueRemovesAnEntryOnlyOnceEveryBatchTakingFromItIsAcked) {
  MemoryQueueStore queue;
  service_.Script({{grpc::Status::OK}, {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no")}});
  OtlpExporterOptions options = TestOptions(server_.endpoint());
  options.send_batch_size = 2;
  options.send_batch_max_size = 2;
  auto created = OtlpExporter::Create(options, &clock_, &queue);
  ASSERT_TRUE(created.ok()) << created.status();
  OtlpExporter& exporter = **created;
  ASSERT_TRUE(exporter.Consume(SomeSpans('\x01', 3)).ok());  // batches [2] [1+1] [2]
  ASSERT_TRUE(exporter.Consume(SomeSpans('\x02', 3)).ok());
  ASSERT_TRUE(exporter.Start().ok());
  ASSERT_TRUE(PollUntil([&] { return service_.calls() >= 3; }));
  exporter.Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(exporter.stats().spans_exported.load(), 4u);
  EXPECT_EQ(exporter.stats().dropped(DropReason::kPermanentError), 2u);
  EXPECT_EQ(queue.size(), 0u) << "a permanently refused batch is given up on, not kept forever";
}

}  // namespace
}  // namespace tracekeep::exporter
