#include "collector/admin/admin_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tests/collector/admin/fake_admin_backend.h"
#include "tracekeep/admin/v1/admin.grpc.pb.h"

namespace tracekeep::admin {
namespace {

using ::testing::HasSubstr;
using ::tracekeep::testing::FakeAdminBackend;
using ::tracekeep::testing::InMemorySpanStore;
using ::tracekeep::testing::MakeOrigin;
using ::tracekeep::testing::MakeSpan;
using ::tracekeep::testing::SampleStatus;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

const std::string kTraceId =
    std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16);
constexpr char kTraceHex[] = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kRootId("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);
const std::string kChildId("\x00\x00\x00\x00\x00\x00\x00\x02", 8);

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.status() = SampleStatus();
    AdminServerOptions options;
    options.endpoint = "127.0.0.1:0";
    auto server = AdminServer::Start(options, &backend_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    stub_ = v1::AdminService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  // Stores a two-service trace: a root in shop-api and an erroring child in crm-api.
  void StoreTrace() {
    KeptTraces kept(1);
    kept[0].trace_id = kTraceId;
    // Consumed child first: GetTrace must still order by start time.
    kept[0].spans.push_back(MakeSpan(MakeOrigin("crm-api"), kTraceId, kChildId, kRootId,
                                     "lookup customer", 1'000'500'000, 1'000'900'000, true));
    kept[0].spans.push_back(MakeSpan(MakeOrigin("shop-api"), kTraceId, kRootId, "", "GET /checkout",
                                     1'000'000'000, 1'001'250'000));
    ASSERT_TRUE(store_.Consume(std::move(kept)).ok());
  }

  grpc::Status GetTrace(const std::string& id, v1::GetTraceResponse* response, int page_size = 0,
                        const std::string& page_token = "") {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::GetTraceRequest request;
    request.set_trace_id(id);
    request.set_page_size(page_size);
    request.set_page_token(page_token);
    return stub_->GetTrace(&context, request, response);
  }

  // Stores a trace of `n` spans of ~`span_bytes` each, two services, started 1 µs apart.
  void StoreLargeTrace(int n, size_t span_bytes) {
    KeptTraces kept(1);
    kept[0].trace_id = kTraceId;
    const auto shop = MakeOrigin("shop-api");
    const auto crm = MakeOrigin("crm-api");
    for (int i = 0; i < n; ++i) {
      std::string span_id(8, '\0');
      span_id[6] = static_cast<char>((i + 1) >> 8);
      span_id[7] = static_cast<char>((i + 1) & 0xff);
      span_id[5] = static_cast<char>((i + 1) >> 16);
      kept[0].spans.push_back(MakeSpan(i % 2 ? crm : shop, kTraceId, span_id, kRootId,
                                       std::string(span_bytes, 'n'), 1'000'000'000 + i * 1000,
                                       2'000'000'000));
    }
    ASSERT_TRUE(store_.Consume(std::move(kept)).ok());
  }

  // Span ids of a page, in order.
  static std::vector<std::string> SpanIds(const v1::GetTraceResponse& response) {
    otlp_trace::TracesData data;
    EXPECT_TRUE(data.ParseFromString(response.traces_data()));
    std::vector<std::pair<uint64_t, std::string>> spans;
    for (const auto& rs : data.resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) {
          spans.emplace_back(span.start_time_unix_nano(), span.span_id());
        }
      }
    }
    std::sort(spans.begin(), spans.end());
    std::vector<std::string> ids;
    for (auto& [start, id] : spans) ids.push_back(std::move(id));
    return ids;
  }

  InMemorySpanStore store_;
  FakeAdminBackend backend_{&store_};
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<v1::AdminService::Stub> stub_;
};

TEST_F(AdminServerTest, BindsAnEphemeralLoopbackPort) {
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(AdminServerTest, GetStatusReturnsWhatTheBackendReports) {
  grpc::ClientContext context;
  v1::GetStatusResponse response;
  grpc::Status status = stub_->GetStatus(&context, v1::GetStatusRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(response, SampleStatus()))
      << response.DebugString();
}

TEST_F(AdminServerTest, GetTraceReturnsStoredSpansWithResourceAsTracesData) {
  StoreTrace();
  v1::GetTraceResponse response;
  grpc::Status status = GetTrace(kTraceHex, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.trace_id(), kTraceHex);
  EXPECT_EQ(response.span_count(), 2u);

  otlp_trace::TracesData data;
  ASSERT_TRUE(data.ParseFromString(response.traces_data()));
  // Grouped by origin, in start order: shop-api's root first, then crm-api's child.
  ASSERT_EQ(data.resource_spans_size(), 2);
  std::vector<std::pair<std::string, const otlp_trace::Span*>> spans;
  for (const auto& rs : data.resource_spans()) {
    ASSERT_EQ(rs.resource().attributes_size(), 1);
    EXPECT_EQ(rs.resource().attributes(0).key(), "service.name");
    ASSERT_EQ(rs.scope_spans_size(), 1);
    EXPECT_EQ(rs.scope_spans(0).scope().name(), "lib");
    for (const auto& span : rs.scope_spans(0).spans()) {
      spans.emplace_back(rs.resource().attributes(0).value().string_value(), &span);
    }
  }
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].first, "shop-api");
  EXPECT_EQ(spans[0].second->span_id(), kRootId);
  EXPECT_EQ(spans[0].second->trace_id(), kTraceId);
  EXPECT_EQ(spans[0].second->name(), "GET /checkout");
  EXPECT_EQ(spans[1].first, "crm-api");
  EXPECT_EQ(spans[1].second->span_id(), kChildId);
  EXPECT_EQ(spans[1].second->parent_span_id(), kRootId);
  EXPECT_EQ(spans[1].second->status().code(), otlp_trace::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(spans[1].second->end_time_unix_nano(), 1'000'900'000u);
}

TEST_F(AdminServerTest, GetTraceAcceptsUppercaseHexAndAnswersLowercase) {
  StoreTrace();
  v1::GetTraceResponse response;
  grpc::Status status = GetTrace("4BF92F3577B34DA6A3CE929D0E0E4736", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.trace_id(), kTraceHex);
  EXPECT_EQ(response.span_count(), 2u);
}

TEST_F(AdminServerTest, GetTraceOfUnknownTraceIsNotFound) {
  StoreTrace();
  v1::GetTraceResponse response;
  grpc::Status status = GetTrace("00000000000000000000000000000001", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "trace 00000000000000000000000000000001 not found");
}

TEST_F(AdminServerTest, GetTraceRejectsMalformedIdsNamingTheValue) {
  for (const std::string& bad :
       {std::string("xyz"), std::string("4bf92f3577b34da6a3ce929d0e0e473g"),
        std::string(32, '0')}) {
    v1::GetTraceResponse response;
    grpc::Status status = GetTrace(bad, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(status.error_message(), HasSubstr("\"" + bad + "\""));
    EXPECT_THAT(status.error_message(), HasSubstr("trace_id"));
  }
}

TEST_F(AdminServerTest, GetTraceWithoutStoreIsFailedPrecondition) {
  FakeAdminBackend storeless(nullptr);
  AdminServerOptions options;
  options.endpoint = "127.0.0.1:0";
  auto server = AdminServer::Start(options, &storeless);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::AdminService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::GetTraceRequest request;
  request.set_trace_id(kTraceHex);
  v1::GetTraceResponse response;
  grpc::Status status = stub->GetTrace(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("storage"));
}

TEST_F(AdminServerTest, GetTracePassesStoreErrorsOnWithTheTraceId) {
  store_.set_fail_reads(true);
  v1::GetTraceResponse response;
  grpc::Status status = GetTrace(kTraceHex, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr(kTraceHex));
  EXPECT_THAT(status.error_message(), HasSubstr("disk on fire"));
}

// A trace larger than gRPC's default 4 MiB message used to fail with RESOURCE_EXHAUSTED; it now
// comes in pages under 3 MiB that a default client receives.
TEST_F(AdminServerTest, GetTraceOfALargeTraceComesInPagesUnderThreeMebibytes) {
  StoreLargeTrace(20'000, 300);  // ~6.5 MB
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    v1::GetTraceResponse response;
    grpc::Status status = GetTrace(kTraceHex, &response, 0, token);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LT(response.traces_data().size(), size_t{3} << 20);
    EXPECT_EQ(response.total_size(), 20'000);
    std::vector<std::string> page = SpanIds(response);
    EXPECT_EQ(page.size(), response.span_count());
    ids.insert(ids.end(), page.begin(), page.end());
    token = response.next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_GE(pages, 3);
  ASSERT_EQ(ids.size(), 20'000u);
  for (int i = 0; i < 20'000; ++i) {
    ASSERT_EQ(static_cast<uint8_t>(ids[i][7]), (i + 1) & 0xff) << i;  // start order, once each
  }
}

TEST_F(AdminServerTest, GetTracePageSizeBoundsThePage) {
  StoreLargeTrace(7, 10);
  std::vector<size_t> sizes;
  std::string token;
  do {
    v1::GetTraceResponse response;
    grpc::Status status = GetTrace(kTraceHex, &response, 3, token);
    ASSERT_TRUE(status.ok()) << status.error_message();
    sizes.push_back(response.span_count());
    token = response.next_page_token();
  } while (!token.empty() && sizes.size() < 10);
  EXPECT_THAT(sizes, ::testing::ElementsAre(3, 3, 1));
}

TEST_F(AdminServerTest, GetTraceRefusesANegativePageSizeAndTokensNotOfTheTrace) {
  StoreLargeTrace(7, 10);
  v1::GetTraceResponse response;
  grpc::Status status = GetTrace(kTraceHex, &response, -1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_size: must be >= 0"));
  EXPECT_THAT(status.error_message(), HasSubstr("got -1"));

  status = GetTrace(kTraceHex, &response, 0, "garbage!");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("page_token: not a next_page_token of GetTrace, got \"garbage!\""));

  ASSERT_TRUE(GetTrace(kTraceHex, &response, 2).ok());
  ASSERT_FALSE(response.next_page_token().empty());
  const std::string other = "0af7651916cd43dd8448eb211c80319c";
  status = GetTrace(other, &response, 2, response.next_page_token());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr(absl::StrCat("page_token: issued for trace ", kTraceHex, ", not ", other)));
}

TEST_F(AdminServerTest, ShutdownStopsServingAndIsIdempotent) {
  server_->Shutdown(absl::Now() + absl::Seconds(1));
  server_->Shutdown(absl::Now());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetStatusResponse response;
  grpc::Status status = stub_->GetStatus(&context, v1::GetStatusRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(AdminServerTest, StartFailsWhenThePortIsTaken) {
  AdminServerOptions options;
  options.endpoint = server_->address();
  auto second = AdminServer::Start(options, &backend_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(server_->address()));
}

TEST(AdminServerStartTest, RejectsMalformedEndpointNamingIt) {
  FakeAdminBackend backend(nullptr);
  for (const std::string bad : {"localhost", "127.0.0.1:http", "127.0.0.1:70000", ":4320"}) {
    AdminServerOptions options;
    options.endpoint = bad;
    auto server = AdminServer::Start(options, &backend);
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(server.status().message(), HasSubstr("\"" + bad + "\""));
  }
}

TEST_F(AdminServerTest, PolicyRpcsReachTheBackendAndReportEveryProblem) {
  {
    grpc::ClientContext context;
    v1::GetPoliciesResponse response;
    ASSERT_TRUE(stub_->GetPolicies(&context, v1::GetPoliciesRequest(), &response).ok());
    EXPECT_EQ(response.policies_yaml(), "- name: all\n  type: always_sample\n");
  }
  {
    grpc::ClientContext context;
    v1::SetPoliciesRequest request;
    request.set_policies_yaml("bad policies");
    v1::SetPoliciesResponse response;
    grpc::Status status = stub_->SetPolicies(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), "policies:1:1: first problem\npolicies:2:1: second problem");
  }
  {
    grpc::ClientContext context;
    v1::ValidatePoliciesRequest request;
    request.set_policies_yaml("- name: v\n  type: always_sample\n");
    v1::ValidatePoliciesResponse response;
    ASSERT_TRUE(stub_->ValidatePolicies(&context, request, &response).ok());
    EXPECT_EQ(response.policy_count(), 1u);
    EXPECT_EQ(backend_.GetPolicies(), "- name: all\n  type: always_sample\n");  // not applied
  }
  {
    grpc::ClientContext context;
    v1::SetPoliciesRequest request;
    request.set_policies_yaml("- name: v\n  type: always_sample\n");
    v1::SetPoliciesResponse response;
    ASSERT_TRUE(stub_->SetPolicies(&context, request, &response).ok());
    EXPECT_EQ(response.policy_count(), 1u);
    EXPECT_EQ(backend_.GetPolicies(), "- name: v\n  type: always_sample\n");
  }
}

grpc::Status CallCheckpoint(v1::AdminService::Stub* stub, const std::string& dir,
                            v1::CheckpointResponse* response, const std::string& token = "") {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::CheckpointRequest request;
  request.set_dir(dir);
  return stub->Checkpoint(&context, request, response);
}

TEST_F(AdminServerTest, CheckpointHandsTheDirectoryToTheBackend) {
  v1::CheckpointResponse response;
  const grpc::Status status = CallCheckpoint(stub_.get(), "/backups/tk-1", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.dir(), "/backups/tk-1");
  EXPECT_EQ(response.bytes(), 4096u);
  EXPECT_EQ(backend_.checkpoint_dirs(), std::vector<std::string>{"/backups/tk-1"});

  backend_.set_checkpoint_status(absl::AlreadyExistsError("\"/backups/tk-1\" already exists"));
  const grpc::Status again = CallCheckpoint(stub_.get(), "/backups/tk-1", &response);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(again.error_message(), HasSubstr("already exists"));
}

TEST_F(AdminServerTest, CheckpointRejectsARelativeOrEmptyDirectoryNamingIt) {
  for (const std::string dir : {"", "backups/tk"}) {
    v1::CheckpointResponse response;
    const grpc::Status status = CallCheckpoint(stub_.get(), dir, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << dir;
    EXPECT_THAT(status.error_message(), HasSubstr("absolute path")) << dir;
    EXPECT_THAT(status.error_message(), HasSubstr("\"" + dir + "\"")) << dir;
  }
  EXPECT_TRUE(backend_.checkpoint_dirs().empty());
}

TEST(AdminServerCheckpointTest, CheckpointNeedsTheTokenLikeEveryCall) {
  InMemorySpanStore store;
  FakeAdminBackend backend(&store);
  AdminServerOptions options;
  options.endpoint = "127.0.0.1:0";
  options.auth_token = "s3cret";
  auto server = AdminServer::Start(options, &backend);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::AdminService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  v1::CheckpointResponse response;
  EXPECT_EQ(CallCheckpoint(stub.get(), "/b", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(backend.checkpoint_dirs().empty()) << "refused before reaching the backend";
  EXPECT_TRUE(CallCheckpoint(stub.get(), "/b", &response, "s3cret").ok());
  EXPECT_EQ(backend.checkpoint_dirs(), std::vector<std::string>{"/b"});
}

grpc::Status CallDrain(v1::AdminService::Stub* stub, int64_t deadline_seconds,
                       v1::DrainResponse* response, const std::string& token = "") {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::DrainRequest request;
  request.set_deadline_seconds(deadline_seconds);
  return stub->Drain(&context, request, response);
}

TEST(AdminServerDrainTest, DrainNeedsTheTokenThenReachesTheBackend) {
  InMemorySpanStore store;
  FakeAdminBackend backend(&store);
  v1::DrainResponse canned;
  canned.set_traces_decided(5);
  canned.set_traces_kept(3);
  canned.set_spans_queued(12);
  backend.set_drain_response(canned);
  AdminServerOptions options;
  options.endpoint = "127.0.0.1:0";
  options.auth_token = "s3cret";
  auto server = AdminServer::Start(options, &backend);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::AdminService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  v1::DrainResponse response;
  EXPECT_EQ(CallDrain(stub.get(), 7, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallDrain(stub.get(), 7, &response, "wrong").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(backend.drain_deadlines().empty()) << "refused before reaching the backend";

  const grpc::Status status = CallDrain(stub.get(), 7, &response, "s3cret");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(backend.drain_deadlines(), std::vector<int64_t>{7});
  EXPECT_EQ(response.traces_decided(), 5u);
  EXPECT_EQ(response.traces_kept(), 3u);
  EXPECT_EQ(response.spans_queued(), 12u);
}

// A backend without a pipeline (the default implementation) refuses clearly.
class NoDrainBackend final : public AdminBackend {
 public:
  void FillStatus(v1::GetStatusResponse*) override {}
  storage::SpanStore* store() override { return nullptr; }
  std::string GetPolicies() override { return ""; }
  absl::StatusOr<int> SetPolicies(const std::string&, bool) override { return 0; }
};

TEST(AdminServerDrainTest, DefaultBackendAnswersFailedPrecondition) {
  NoDrainBackend backend;
  AdminServerOptions options;
  options.endpoint = "127.0.0.1:0";
  auto server = AdminServer::Start(options, &backend);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::AdminService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  v1::DrainResponse response;
  const grpc::Status status = CallDrain(stub.get(), 0, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("drain"));
}

}  // namespace
}  // namespace tracekeep::admin
