// The Jaeger remote storage API over a real RocksDB store, called with the generated
// jaeger.storage.v2 client over loopback gRPC (the client Jaeger itself uses is the Go version of
// the same stubs; tests/interop/test_jaeger_storage.py runs the real Jaeger).
#include "collector/query/jaeger_storage_server.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collector/common/clock.h"
#include "gtest/gtest.h"
#include "jaeger/storage/v2/dependency_storage.grpc.pb.h"
#include "jaeger/storage/v2/trace_storage.grpc.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/rocksdb_span_store.h"
#include "tests/storage/otlp_spans.h"
#include "tests/storage/test_store.h"

namespace tracekeep::query {
namespace {

namespace pb = ::jaeger::storage::v2;
using ::opentelemetry::proto::trace::v1::TracesData;
using ::tracekeep::testing::OneTrace;
using ::tracekeep::testing::OtlpOrigin;
using ::tracekeep::testing::OtlpSpan;
using ::tracekeep::testing::SpanSpec;
using ::tracekeep::testing::TestTraceId;

constexpr int64_t kBase = 1700000000000000000;  // 2023-11-14, in unix nanos
constexpr int64_t kSecond = 1000000000;

void SetTime(int64_t unix_nanos, google::protobuf::Timestamp* t) {
  t->set_seconds(unix_nanos / kSecond);
  t->set_nanos(static_cast<int32_t>(unix_nanos % kSecond));
}

class JaegerStorageServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::OpenTestStore(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    StartServer(JaegerStorageOptions());
  }

  void StartServer(JaegerStorageOptions options) {
    server_.reset();
    options.endpoint = "127.0.0.1:0";
    auto server = JaegerStorageServer::Start(options, store_.get(), store_->trace_index());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    traces_ = pb::TraceReader::NewStub(channel);
    deps_ = pb::DependencyReader::NewStub(channel);
  }

  void Put(KeptTraces traces) { ASSERT_TRUE(store_->Consume(std::move(traces)).ok()); }

  // A trace of shop (root "checkout", with `order` in an event or on the span) calling payments.
  void PutOrderTrace(uint32_t n, const std::string& order, int64_t duration = 1000,
                     bool error = false) {
    const std::string id = TestTraceId(n);
    const int64_t start = kBase + n * kSecond;
    SpanSpec root = SpanSpec(id, 1).Name("checkout").Kind(2).Start(start).Duration(duration);
    if (n % 2 == 0) {
      root.Attribute("order.id", order);
    } else {
      root.EventAttribute("order.id", order);
    }
    Put(OneTrace(id, {OtlpSpan(shop_, root), OtlpSpan(payments_, SpanSpec(id, 2)
                                                                     .Parent(1)
                                                                     .Name("charge")
                                                                     .Kind(2)
                                                                     .Start(start + 10)
                                                                     .Duration(100)
                                                                     .Error(error))}));
  }

  // Reads a stream; `status` gets its end.
  std::vector<TracesData> ReadAll(grpc::ClientReaderInterface<TracesData>* reader,
                                  grpc::Status* status) {
    std::vector<TracesData> chunks;
    TracesData chunk;
    while (reader->Read(&chunk)) chunks.push_back(chunk);
    *status = reader->Finish();
    return chunks;
  }

  std::vector<TracesData> GetTraces(const std::vector<std::string>& ids, grpc::Status* status) {
    pb::GetTracesRequest request;
    for (const std::string& id : ids) request.add_query()->set_trace_id(id);
    grpc::ClientContext context;
    return ReadAll(traces_->GetTraces(&context, request).get(), status);
  }

  std::vector<TracesData> Find(const pb::TraceQueryParameters& query, grpc::Status* status) {
    pb::FindTracesRequest request;
    *request.mutable_query() = query;
    grpc::ClientContext context;
    return ReadAll(traces_->FindTraces(&context, request).get(), status);
  }

  // The trace id of each chunk (from its first span), in order.
  static std::vector<std::string> TraceIds(const std::vector<TracesData>& chunks) {
    std::vector<std::string> ids;
    for (const TracesData& c : chunks) {
      ids.push_back(c.resource_spans(0).scope_spans(0).spans(0).trace_id());
    }
    return ids;
  }

  static int SpanCount(const std::vector<TracesData>& chunks) {
    int n = 0;
    for (const TracesData& c : chunks) {
      for (const auto& rs : c.resource_spans()) {
        for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
      }
    }
    return n;
  }

  static pb::TraceQueryParameters Query(const std::string& service) {
    pb::TraceQueryParameters q;
    q.set_service_name(service);
    return q;
  }

  storage::TempDir dir_;
  std::unique_ptr<storage::RocksDbSpanStore> store_;
  std::unique_ptr<JaegerStorageServer> server_;
  std::unique_ptr<pb::TraceReader::Stub> traces_;
  std::unique_ptr<pb::DependencyReader::Stub> deps_;
  const SpanOriginPtr shop_ = OtlpOrigin("shop", {}, {{"scope.flag", "on"}});
  const SpanOriginPtr payments_ = OtlpOrigin("payments", {{"region", "eu"}});
};

TEST_F(JaegerStorageServerTest, GetTracesReturnsEverySpanWithResourceAndScopeAndSkipsUnknownIds) {
  PutOrderTrace(1, "A-1");
  PutOrderTrace(2, "A-2");
  grpc::Status status;
  std::vector<TracesData> chunks =
      GetTraces({TestTraceId(9), TestTraceId(2), TestTraceId(1), TestTraceId(2)}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(TraceIds(chunks), (std::vector<std::string>{TestTraceId(2), TestTraceId(1)}))
      << "unknown id skipped, the repeated one sent once, in the order asked";
  ASSERT_EQ(chunks[0].resource_spans_size(), 2);
  std::set<std::string> services;
  for (const auto& rs : chunks[0].resource_spans()) {
    services.insert(rs.resource().attributes(0).value().string_value());
    EXPECT_EQ(rs.scope_spans(0).scope().name(), "tracekeep.test");
  }
  EXPECT_EQ(services, (std::set<std::string>{"shop", "payments"}));
  EXPECT_EQ(SpanCount(chunks), 4);
}

TEST_F(JaegerStorageServerTest, GetTracesOfAnEmptyStoreIsAnEmptyStream) {
  grpc::Status status;
  EXPECT_TRUE(GetTraces({TestTraceId(1)}, &status).empty());
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(JaegerStorageServerTest, ATraceOverFourMebibytesComesInConsecutiveChunksUnderTheLimit) {
  const std::string id = TestTraceId(7);
  std::vector<SpanRecord> spans;
  for (uint32_t i = 1; i <= 9; ++i) {
    spans.push_back(OtlpSpan(shop_, SpanSpec(id, i)
                                        .Parent(i == 1 ? 0 : 1)
                                        .Start(kBase + i)
                                        .Padding(700 * 1024)));  // 9 x 700 KiB: 6.2 MiB
  }
  Put(OneTrace(id, std::move(spans)));
  PutOrderTrace(1, "A-1");
  grpc::Status status;
  // The stub's default receive limit is gRPC's 4 MiB, as in Jaeger's client.
  std::vector<TracesData> chunks = GetTraces({id, TestTraceId(1)}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(chunks.size(), 3u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_EQ(TraceIds({chunks[i]})[0], id) << "chunk " << i;
    EXPECT_LT(chunks[i].ByteSizeLong(), size_t{4} << 20);
  }
  EXPECT_EQ(TraceIds({chunks.back()})[0], TestTraceId(1)) << "the next trace in its own chunk";
  chunks.pop_back();
  EXPECT_EQ(SpanCount(chunks), 9);
}

TEST_F(JaegerStorageServerTest, MalformedTraceIdIsInvalidArgument) {
  grpc::Status status;
  GetTraces({TestTraceId(1), "short"}, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "query[1].trace_id: must have 16 bytes, got 5");
}

TEST_F(JaegerStorageServerTest, ServicesAndOperationsByKind) {
  pb::GetServicesResponse services;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(traces_->GetServices(&context, pb::GetServicesRequest(), &services).ok());
    EXPECT_EQ(services.services_size(), 0) << "empty store";
  }
  PutOrderTrace(1, "A-1");
  {
    grpc::ClientContext context;
    ASSERT_TRUE(traces_->GetServices(&context, pb::GetServicesRequest(), &services).ok());
    EXPECT_EQ(std::vector<std::string>(services.services().begin(), services.services().end()),
              (std::vector<std::string>{"payments", "shop"}));
  }
  pb::GetOperationsRequest request;
  request.set_service("shop");
  request.set_span_kind("server");
  pb::GetOperationsResponse operations;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(traces_->GetOperations(&context, request, &operations).ok());
    ASSERT_EQ(operations.operations_size(), 1);
    EXPECT_EQ(operations.operations(0).name(), "checkout");
    EXPECT_EQ(operations.operations(0).span_kind(), "server");
  }
  request.set_span_kind("client");
  {
    grpc::ClientContext context;
    pb::GetOperationsResponse none;
    ASSERT_TRUE(traces_->GetOperations(&context, request, &none).ok());
    EXPECT_EQ(none.operations_size(), 0);
  }
  request.set_span_kind("sideways");
  {
    grpc::ClientContext context;
    grpc::Status status = traces_->GetOperations(&context, request, &operations);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("\"sideways\""), std::string::npos);
  }
}

TEST_F(JaegerStorageServerTest, FindTracesByOrderIdNewestFirstWithinSearchDepth) {
  for (uint32_t n = 1; n <= 8; ++n) PutOrderTrace(n, n <= 6 ? "A-1" : "B-2");
  pb::TraceQueryParameters q = Query("shop");
  auto* tag = q.add_attributes();
  tag->set_key("order.id");
  tag->mutable_value()->set_string_value("A-1");
  grpc::Status status;
  std::vector<TracesData> chunks = Find(q, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(TraceIds(chunks),
            (std::vector<std::string>{TestTraceId(6), TestTraceId(5), TestTraceId(4),
                                      TestTraceId(3), TestTraceId(2), TestTraceId(1)}))
      << "on the span (even n) and in an event (odd n)";
  q.set_search_depth(2);
  EXPECT_EQ(TraceIds(Find(q, &status)), (std::vector<std::string>{TestTraceId(6), TestTraceId(5)}));
  // The same tag on another service's spans does not match.
  q.set_service_name("payments");
  EXPECT_TRUE(Find(q, &status).empty());
}

TEST_F(JaegerStorageServerTest, DefaultSearchDepthIsTwenty) {
  for (uint32_t n = 1; n <= 25; ++n) PutOrderTrace(n, "A");
  pb::TraceQueryParameters q = Query("shop");
  q.set_search_depth(0);
  grpc::Status status;
  std::vector<TracesData> chunks = Find(q, &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(chunks.size(), 20u);
  EXPECT_EQ(TraceIds(chunks)[0], TestTraceId(25));
}

TEST_F(JaegerStorageServerTest, TagsMatchResourceAndScopeAttributesAndErrorMeansStatusError) {
  PutOrderTrace(1, "A", 1000, /*error=*/true);
  PutOrderTrace(2, "B");
  grpc::Status status;
  pb::TraceQueryParameters q = Query("payments");
  auto* region = q.add_attributes();
  region->set_key("region");  // payments' resource
  region->mutable_value()->set_string_value("eu");
  EXPECT_EQ(Find(q, &status).size(), 2u);
  auto* error = q.add_attributes();
  error->set_key("error");
  error->mutable_value()->set_string_value("true");
  EXPECT_EQ(TraceIds(Find(q, &status)), std::vector<std::string>{TestTraceId(1)});
  error->mutable_value()->set_string_value("false");
  EXPECT_EQ(TraceIds(Find(q, &status)), std::vector<std::string>{TestTraceId(2)});

  pb::TraceQueryParameters scoped = Query("shop");
  auto* flag = scoped.add_attributes();
  flag->set_key("scope.flag");  // shop's scope
  flag->mutable_value()->set_string_value("on");
  EXPECT_EQ(Find(scoped, &status).size(), 2u);
  flag->mutable_value()->set_string_value("off");
  EXPECT_TRUE(Find(scoped, &status).empty());
}

TEST_F(JaegerStorageServerTest, OneSpanMustSatisfyEveryFilter) {
  PutOrderTrace(1, "A", /*duration=*/5000);
  grpc::Status status;
  pb::TraceQueryParameters q = Query("shop");
  q.set_operation_name("checkout");
  q.mutable_duration_min()->set_nanos(4000);
  EXPECT_EQ(Find(q, &status).size(), 1u);
  // "charge" (100 ns, payments) is not shop's; shop's checkout span is too long for max 200 ns.
  q.set_operation_name("");
  q.mutable_duration_min()->set_nanos(0);
  q.mutable_duration_max()->set_nanos(200);
  EXPECT_TRUE(Find(q, &status).empty());
  pb::TraceQueryParameters p = Query("payments");
  p.mutable_duration_max()->set_nanos(200);
  EXPECT_EQ(Find(p, &status).size(), 1u);
}

TEST_F(JaegerStorageServerTest, TimeWindowsAndJaegersUnsetTimes) {
  for (uint32_t n = 1; n <= 5; ++n) PutOrderTrace(n, "A");
  grpc::Status status;
  pb::TraceQueryParameters q = Query("shop");
  SetTime(kBase + 2 * kSecond, q.mutable_start_time_min());
  SetTime(kBase + 4 * kSecond, q.mutable_start_time_max());
  EXPECT_EQ(TraceIds(Find(q, &status)),
            (std::vector<std::string>{TestTraceId(4), TestTraceId(3), TestTraceId(2)}));
  // 0001-01-01T00:00:00Z is how Jaeger sends "unset".
  q.mutable_start_time_max()->set_seconds(-62135596800);
  q.mutable_start_time_max()->set_nanos(0);
  EXPECT_EQ(Find(q, &status).size(), 4u);
}

TEST_F(JaegerStorageServerTest, BadSearchesAreInvalidArgumentWithAMessage) {
  grpc::Status status;
  pb::TraceQueryParameters inverted = Query("shop");
  SetTime(kBase + 4 * kSecond, inverted.mutable_start_time_min());
  SetTime(kBase + 2 * kSecond, inverted.mutable_start_time_max());
  Find(inverted, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("start_time_max"), std::string::npos);

  pb::TraceQueryParameters negative = Query("shop");
  negative.mutable_duration_min()->set_seconds(-1);
  Find(negative, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("duration_min: must be >= 0"), std::string::npos);

  pb::TraceQueryParameters no_service;
  Find(no_service, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("service_name"), std::string::npos);

  pb::FindTracesRequest request;
  *request.mutable_query() = negative;
  pb::FindTraceIDsResponse ids;
  grpc::ClientContext context;
  EXPECT_EQ(traces_->FindTraceIDs(&context, request, &ids).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(JaegerStorageServerTest, FindTraceIdsGivesIdsWithTheirTimes) {
  PutOrderTrace(1, "A");
  PutOrderTrace(2, "A");
  pb::FindTracesRequest request;
  *request.mutable_query() = Query("shop");
  pb::FindTraceIDsResponse ids;
  grpc::ClientContext context;
  ASSERT_TRUE(traces_->FindTraceIDs(&context, request, &ids).ok());
  ASSERT_EQ(ids.trace_ids_size(), 2);
  EXPECT_EQ(ids.trace_ids(0).trace_id(), TestTraceId(2));
  EXPECT_EQ(ids.trace_ids(0).start().seconds(), (kBase + 2 * kSecond) / kSecond);
  EXPECT_EQ(ids.trace_ids(1).trace_id(), TestTraceId(1));
}

TEST_F(JaegerStorageServerTest, DependenciesOverTheWindow) {
  for (uint32_t n = 1; n <= 3; ++n) PutOrderTrace(n * 60, "A");  // one a minute
  pb::GetDependenciesRequest request;
  SetTime(kBase + 120 * kSecond, request.mutable_start_time());
  SetTime(kBase + 200 * kSecond, request.mutable_end_time());
  pb::GetDependenciesResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(deps_->GetDependencies(&context, request, &response).ok());
    ASSERT_EQ(response.dependencies_size(), 1);
    EXPECT_EQ(response.dependencies(0).parent(), "shop");
    EXPECT_EQ(response.dependencies(0).child(), "payments");
    EXPECT_EQ(response.dependencies(0).call_count(), 2u);
  }
  SetTime(kBase, request.mutable_end_time());
  grpc::ClientContext context;
  grpc::Status status = deps_->GetDependencies(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("before start_time"), std::string::npos);
}

TEST_F(JaegerStorageServerTest, TracesPastTheRetentionAreNeitherReturnedNorFound) {
  PutOrderTrace(1, "A");
  PutOrderTrace(7201, "A");  // two hours later
  FakeClock clock(absl::FromUnixNanos(kBase + 7230 * kSecond));
  JaegerStorageOptions options;
  options.retention = absl::Hours(1);
  options.clock = &clock;
  StartServer(options);
  grpc::Status status;
  EXPECT_TRUE(GetTraces({TestTraceId(1)}, &status).empty()) << "expired, not yet compacted";
  EXPECT_EQ(GetTraces({TestTraceId(7201)}, &status).size(), 1u);
  EXPECT_EQ(TraceIds(Find(Query("shop"), &status)), std::vector<std::string>{TestTraceId(7201)});
  pb::GetDependenciesRequest request;
  SetTime(kBase, request.mutable_start_time());
  pb::GetDependenciesResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(deps_->GetDependencies(&context, request, &response).ok());
  ASSERT_EQ(response.dependencies_size(), 1);
  EXPECT_EQ(response.dependencies(0).call_count(), 1u);
}

TEST_F(JaegerStorageServerTest, ClientsOutsideAllowedNetworksAreRefused) {
  JaegerStorageOptions options;
  auto networks = security::NetworkAllowList::Parse({"10.0.0.0/8"}, "allowed_networks");
  ASSERT_TRUE(networks.ok());
  options.allowed_networks = *networks;
  StartServer(options);
  grpc::ClientContext context;
  pb::GetServicesResponse services;
  EXPECT_EQ(traces_->GetServices(&context, pb::GetServicesRequest(), &services).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(server_->stats().failed[1].load(), 1u);
}

}  // namespace
}  // namespace tracekeep::query
