#include "collector/receiver/grpc_receiver.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/receiver/rpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/collector/receiver/fake_intake.h"

namespace tracekeep::receiver {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;
using ::testing::HasSubstr;

class GrpcReceiverTest : public ::testing::Test {
 protected:
  void StartReceiver(int max_recv_msg_size_mib = 16) {
    GrpcReceiverOptions options;
    options.endpoint = "127.0.0.1:0";
    options.max_recv_msg_size_mib = max_recv_msg_size_mib;
    options.retry_after_seconds = 3;
    auto receiver = GrpcReceiver::Create(options, &intake_, &stats_);
    ASSERT_TRUE(receiver.ok()) << receiver.status();
    receiver_ = std::move(receiver).value();
    ASSERT_TRUE(receiver_->Start().ok());
    ASSERT_GT(receiver_->port(), 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", receiver_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = otlp_collector::TraceService::NewStub(channel_);
  }
  void SetUp() override { StartReceiver(); }
  void TearDown() override { receiver_->Shutdown(absl::Now() + absl::Seconds(5)); }

  grpc::Status Export(const OtlpRequest& request, otlp_collector::ExportTraceServiceResponse* out,
                      bool gzip = false) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    return stub_->Export(&context, request, out);
  }

  const TransportStats& grpc_stats() const { return stats_.of(Transport::kGrpc); }

  FakeIntake intake_;
  ReceiverStats stats_;
  std::unique_ptr<GrpcReceiver> receiver_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<otlp_collector::TraceService::Stub> stub_;
};

TEST_F(GrpcReceiverTest, RoundTripDeliversSpansIntact) {
  const OtlpRequest request = MakeRequest(4);
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.has_partial_success());
  const std::vector<TraceSpans> traces = intake_.traces();
  ASSERT_EQ(traces.size(), 2u);
  EXPECT_EQ(traces[0].trace_id, kTraceA);
  EXPECT_EQ(traces[0].spans[1].span,
            request.resource_spans(0).scope_spans(0).spans(2).SerializeAsString());
  EXPECT_EQ(grpc_stats().requests.load(), 1u);
  EXPECT_EQ(grpc_stats().spans_received.load(), 4u);
  EXPECT_EQ(grpc_stats().spans_accepted.load(), 4u);
  EXPECT_EQ(stats_.of(Transport::kHttp).requests.load(), 0u);
}

TEST_F(GrpcReceiverTest, AcceptsGzipCompressedRequests) {
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(MakeRequest(50), &response, /*gzip=*/true);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(intake_.spans(), 50);
}

TEST_F(GrpcReceiverTest, InvalidIdsAreRejectedThroughPartialSuccess) {
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(MakeRequest(2, /*bad_trace_ids=*/1, /*bad_span_ids=*/2), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.partial_success().rejected_spans(), 3);
  EXPECT_THAT(response.partial_success().error_message(), HasSubstr("invalid trace_id"));
  EXPECT_EQ(intake_.spans(), 2);
  EXPECT_EQ(stats_.spans_refused(Transport::kGrpc, RefuseReason::kInvalidTraceId), 1u);
  EXPECT_EQ(stats_.spans_refused(Transport::kGrpc, RefuseReason::kInvalidSpanId), 2u);
  EXPECT_EQ(grpc_stats().spans_accepted.load(), 2u);
}

TEST_F(GrpcReceiverTest, OverloadIsResourceExhaustedWithRetryInfo) {
  intake_.RefuseWith(absl::ResourceExhaustedError("queue full"));
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(MakeRequest(3), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("retry later"));
  EXPECT_EQ(status.error_details(),
            EncodeRpcStatus(8, status.error_message(), /*retry_after_seconds=*/3));
  EXPECT_THAT(status.error_details(), HasSubstr(kRetryInfoTypeUrl));
  EXPECT_EQ(stats_.spans_refused(Transport::kGrpc, RefuseReason::kOverloaded), 3u);
  EXPECT_EQ(stats_.requests_refused(Transport::kGrpc, RefuseReason::kOverloaded), 1u);
  EXPECT_EQ(grpc_stats().spans_accepted.load(), 0u);
}

// Over capacity, a request is refused before it is validated and split (refusing then costs a
// walk over its framing), with the same answer and counts as a refusal by Offer.
TEST_F(GrpcReceiverTest, OverloadIsRefusedBeforeDecoding) {
  intake_.RefuseEarlyWith(absl::ResourceExhaustedError("queue full"));
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(MakeRequest(3, /*bad_trace_ids=*/1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("retry later"));
  EXPECT_THAT(status.error_details(), HasSubstr(kRetryInfoTypeUrl));
  EXPECT_EQ(intake_.prechecked_spans(), 4);
  EXPECT_EQ(intake_.offers(), 0);
  EXPECT_EQ(stats_.spans_refused(Transport::kGrpc, RefuseReason::kOverloaded), 4u);
  EXPECT_EQ(stats_.requests_refused(Transport::kGrpc, RefuseReason::kOverloaded), 1u);
  EXPECT_EQ(grpc_stats().spans_received.load(), 4u);

  intake_.RefuseEarlyWith(absl::OkStatus());  // capacity is back
  status = Export(MakeRequest(3), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(intake_.spans(), 3);
}

TEST_F(GrpcReceiverTest, ShuttingDownIsUnavailable) {
  intake_.RefuseWith(absl::UnavailableError("stopping"));
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(MakeRequest(2), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(stats_.spans_refused(Transport::kGrpc, RefuseReason::kShuttingDown), 2u);
}

TEST_F(GrpcReceiverTest, MalformedRequestIsInvalidArgument) {
  const std::string garbage = "\x0a\xff\xff\xff garbage";
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer reply;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = grpc::internal::BlockingUnaryCall(
      channel_.get(),
      grpc::internal::RpcMethod("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                grpc::internal::RpcMethod::NORMAL_RPC),
      &context, request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not a valid protobuf"));
  EXPECT_EQ(stats_.requests_refused(Transport::kGrpc, RefuseReason::kMalformed), 1u);
  EXPECT_EQ(intake_.offers(), 0);
}

// Invalid UTF-8 in a string field makes the whole request invalid protobuf, as protobuf's parser
// decides; the message names where.
TEST_F(GrpcReceiverTest, InvalidUtf8IsInvalidArgumentNamingThePath) {
  otlp_collector::ExportTraceServiceRequest request = MakeRequest(3);
  request.mutable_resource_spans(0)
      ->mutable_scope_spans(0)
      ->mutable_spans(2)
      ->add_attributes()
      ->set_key("\xff\xfe");
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("resource_spans[0].scope_spans[0].spans[2].attributes[0].key: invalid "
                        "UTF-8"));
  EXPECT_EQ(stats_.requests_refused(Transport::kGrpc, RefuseReason::kMalformed), 1u);
  EXPECT_EQ(intake_.offers(), 0);
}

TEST_F(GrpcReceiverTest, OversizeMessageIsRefusedByGrpc) {
  receiver_->Shutdown(absl::Now());
  StartReceiver(/*max_recv_msg_size_mib=*/1);
  OtlpRequest request = MakeRequest(1);
  request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_name(
      std::string(2 << 20, 'n'));
  otlp_collector::ExportTraceServiceResponse response;
  grpc::Status status = Export(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(intake_.offers(), 0);
}

TEST(GrpcReceiverOptionsTest, ValidatesOptionsAndReportsBindFailures) {
  FakeIntake intake;
  ReceiverStats stats;
  GrpcReceiverOptions options;
  options.max_recv_msg_size_mib = 0;
  EXPECT_EQ(GrpcReceiver::Create(options, &intake, &stats).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = GrpcReceiverOptions();
  options.endpoint = "256.1.1.1:1";
  auto receiver = GrpcReceiver::Create(options, &intake, &stats);
  ASSERT_TRUE(receiver.ok());
  EXPECT_FALSE((*receiver)->Start().ok());
  (*receiver)->Shutdown(absl::Now());  // safe after a failed Start
}

}  // namespace
}  // namespace tracekeep::receiver
