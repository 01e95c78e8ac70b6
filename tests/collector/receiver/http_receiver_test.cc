#include "collector/receiver/http_receiver.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "collector/receiver/rpc_status.h"
#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/collector/http/raw_http_client.h"
#include "tests/collector/receiver/fake_intake.h"

namespace tracekeep::receiver {
namespace {

using ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
using ::testing::HasSubstr;
using ::tracekeep::testing::RawHttpResponse;
using ::tracekeep::testing::SendRaw;

class HttpReceiverTest : public ::testing::Test {
 protected:
  void StartReceiver(size_t max_request_bytes = 1 << 20) {
    HttpReceiverOptions options;
    options.endpoint = "127.0.0.1:0";
    options.max_request_bytes = max_request_bytes;
    options.retry_after_seconds = 7;
    auto receiver = HttpReceiver::Create(options, &intake_, &stats_);
    ASSERT_TRUE(receiver.ok()) << receiver.status();
    receiver_ = std::move(receiver).value();
    ASSERT_TRUE(receiver_->Start().ok());
    ASSERT_GT(receiver_->port(), 0);
  }
  void SetUp() override { StartReceiver(); }
  void TearDown() override {
    if (receiver_) receiver_->Shutdown(absl::Now());
  }

  RawHttpResponse Post(const std::string& body, const std::string& content_type,
                       const std::string& content_encoding = "",
                       const std::string& method = "POST") {
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", content_type}};
    if (!content_encoding.empty()) headers.emplace_back("Content-Encoding", content_encoding);
    auto response = SendRaw(receiver_->port(),
                            tracekeep::testing::MakeRequest(method, "/v1/traces", headers, body));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : RawHttpResponse{};
  }

  const TransportStats& http() const { return stats_.of(Transport::kHttp); }

  FakeIntake intake_;
  ReceiverStats stats_;
  std::unique_ptr<HttpReceiver> receiver_;
};

// Decodes a google.rpc.Status body: (code, message, number of details).
struct RpcStatus {
  uint64_t code = 0;
  std::string message;
  std::string details;
};
RpcStatus DecodeRpcStatus(const std::string& body) {
  google::protobuf::UnknownFieldSet fields;
  EXPECT_TRUE(fields.ParseFromString(body));
  RpcStatus out;
  for (int i = 0; i < fields.field_count(); ++i) {
    const auto& f = fields.field(i);
    if (f.number() == 1) out.code = f.varint();
    if (f.number() == 2) out.message = f.length_delimited();
    if (f.number() == 3) out.details += f.length_delimited();
  }
  return out;
}

TEST_F(HttpReceiverTest, AcceptsProtobufAndDeliversSpansIntact) {
  const OtlpRequest request = MakeRequest(4);
  RawHttpResponse response = Post(request.SerializeAsString(), "application/x-protobuf");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "application/x-protobuf");
  ExportTraceServiceResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(response.body));
  EXPECT_FALSE(parsed.has_partial_success());

  const std::vector<TraceSpans> traces = intake_.traces();
  ASSERT_EQ(traces.size(), 2u);
  EXPECT_EQ(traces[0].trace_id, kTraceA);
  EXPECT_EQ(traces[1].trace_id, kTraceB);
  ASSERT_EQ(traces[0].spans.size(), 2u);
  EXPECT_EQ(traces[0].spans[0].span,
            request.resource_spans(0).scope_spans(0).spans(0).SerializeAsString());
  EXPECT_EQ(traces[0].spans[0].origin->service_name, "shop-api");
  EXPECT_EQ(http().requests.load(), 1u);
  EXPECT_EQ(http().spans_received.load(), 4u);
  EXPECT_EQ(http().spans_accepted.load(), 4u);
  EXPECT_EQ(stats_.of(Transport::kGrpc).spans_received.load(), 0u);
}

TEST_F(HttpReceiverTest, AcceptsJsonWithCharsetAndHexIdsAndAnswersJson) {
  const std::string json = R"({"resourceSpans":[{"scopeSpans":[{"spans":[
      {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a",
       "kind":1,"startTimeUnixNano":"1700000000123456789"}]}]}]})";
  RawHttpResponse response = Post(json, "Application/JSON; charset=utf-8");
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.Header("content-type"), "application/json");
  EXPECT_EQ(response.body, "{}");
  const std::vector<TraceSpans> traces = intake_.traces();
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0].trace_id, FromHex("5b8efff798038103d269b633813fc60c", 16).value());
  EXPECT_EQ(traces[0].spans[0].span_id, FromHex("eee19b7ec3c1b174", 8).value());
  EXPECT_EQ(traces[0].spans[0].start_unix_nanos, 1700000000123456789LL);
  EXPECT_EQ(http().spans_accepted.load(), 1u);
}

TEST_F(HttpReceiverTest, AcceptsGzipBodies) {
  const OtlpRequest request = MakeRequest(3);
  RawHttpResponse response =
      Post(Gzip(request.SerializeAsString()), "application/x-protobuf", "gzip");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(intake_.spans(), 3);
  const std::string json =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000001"}]}]}]})";
  response = Post(Gzip(json), "application/json", "gzip");
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(intake_.spans(), 4);
  EXPECT_EQ(http().spans_accepted.load(), 4u);
}

TEST_F(HttpReceiverTest, InvalidIdsAreRejectedThroughPartialSuccess) {
  RawHttpResponse response =
      Post(MakeRequest(3, /*bad_trace_ids=*/2, /*bad_span_ids=*/1).SerializeAsString(),
           "application/x-protobuf");
  EXPECT_EQ(response.status, 200);
  ExportTraceServiceResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(response.body));
  EXPECT_EQ(parsed.partial_success().rejected_spans(), 3);
  EXPECT_THAT(parsed.partial_success().error_message(), HasSubstr("invalid trace_id"));
  EXPECT_THAT(parsed.partial_success().error_message(), HasSubstr("invalid span_id"));
  EXPECT_EQ(intake_.spans(), 3);
  EXPECT_EQ(http().spans_received.load(), 6u);
  EXPECT_EQ(http().spans_accepted.load(), 3u);
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kInvalidTraceId), 2u);
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kInvalidSpanId), 1u);
  EXPECT_EQ(http().requests_partial.load(), 1u);
}

TEST_F(HttpReceiverTest, JsonWithANonHexIdRejectsThatSpanAndNamesTheValue) {
  const std::string json = R"({"resourceSpans":[{"scopeSpans":[{"spans":[
      {"traceId":"not-hex-at-all","spanId":"eee19b7ec3c1b174"},
      {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]})";
  RawHttpResponse response = Post(json, "application/json");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("\"rejectedSpans\":\"1\""));
  EXPECT_THAT(response.body, HasSubstr("not-hex-at-all"));
  EXPECT_EQ(intake_.spans(), 1);
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kInvalidTraceId), 1u);
}

TEST_F(HttpReceiverTest, MalformedProtobufIs400WithAStatusBody) {
  RawHttpResponse response = Post("\x0a\xff\xff garbage", "application/x-protobuf");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.Header("content-type"), "application/x-protobuf");
  const RpcStatus status = DecodeRpcStatus(response.body);
  EXPECT_EQ(status.code, 3u);  // INVALID_ARGUMENT
  EXPECT_THAT(status.message, HasSubstr("not a valid protobuf"));
  EXPECT_EQ(intake_.offers(), 0);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kMalformed), 1u);
  EXPECT_EQ(http().spans_received.load(), 0u);
}

TEST_F(HttpReceiverTest, MalformedJsonIs400WithTheParseErrorAsJson) {
  RawHttpResponse response = Post(R"({"resourceSpans": {"oops": )", "application/json");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.Header("content-type"), "application/json");
  EXPECT_THAT(response.body, HasSubstr("{\"code\":3,\"message\":\"invalid OTLP/JSON"));
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kMalformed), 1u);
}

TEST_F(HttpReceiverTest, CorruptGzipIs400) {
  RawHttpResponse response = Post("definitely not gzip", "application/x-protobuf", "gzip");
  EXPECT_EQ(response.status, 400);
  EXPECT_THAT(DecodeRpcStatus(response.body).message, HasSubstr("gzip"));
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kMalformed), 1u);
}

TEST_F(HttpReceiverTest, OversizeBodyIs413) {
  receiver_->Shutdown(absl::Now());
  StartReceiver(/*max_request_bytes=*/2000);
  RawHttpResponse response = Post(std::string(5000, 'x'), "application/x-protobuf");
  EXPECT_EQ(response.status, 413);
  EXPECT_THAT(response.body, HasSubstr("limit of 2000 bytes"));
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kTooLarge), 1u);
  EXPECT_EQ(intake_.offers(), 0);
}

TEST_F(HttpReceiverTest, GzipBombIs413NotAnAllocation) {
  receiver_->Shutdown(absl::Now());
  StartReceiver(/*max_request_bytes=*/64 << 10);
  const std::string bomb = Gzip(std::string(64 << 20, '\0'));  // 64 MiB of zeros in ~64 KiB
  ASSERT_LT(bomb.size(), 64u << 10);
  RawHttpResponse response = Post(bomb, "application/x-protobuf", "gzip");
  EXPECT_EQ(response.status, 413);
  EXPECT_THAT(DecodeRpcStatus(response.body).message,
              HasSubstr("decompressed request body exceeds the limit of 65536 bytes"));
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kTooLarge), 1u);
}

TEST_F(HttpReceiverTest, OverloadIs429WithRetryAfterAndCountsEverySpan) {
  intake_.RefuseWith(absl::ResourceExhaustedError("queue full"));
  RawHttpResponse response =
      Post(MakeRequest(5, /*bad_trace_ids=*/1).SerializeAsString(), "application/x-protobuf");
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.Header("retry-after"), "7");
  const RpcStatus status = DecodeRpcStatus(response.body);
  EXPECT_EQ(status.code, 8u);  // RESOURCE_EXHAUSTED
  EXPECT_THAT(status.message, HasSubstr("queue full"));
  EXPECT_THAT(status.details, HasSubstr(kRetryInfoTypeUrl));
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kOverloaded), 5u);
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kInvalidTraceId), 1u);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kOverloaded), 1u);
  EXPECT_EQ(http().spans_received.load(), 6u);
  EXPECT_EQ(http().spans_accepted.load(), 0u);
}

TEST_F(HttpReceiverTest, OverloadIsRefusedBeforeDecodingWith429) {
  intake_.RefuseEarlyWith(absl::ResourceExhaustedError("queue full"));
  RawHttpResponse response =
      Post(MakeRequest(5, /*bad_trace_ids=*/1).SerializeAsString(), "application/x-protobuf");
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.Header("retry-after"), "7");
  EXPECT_THAT(DecodeRpcStatus(response.body).message, HasSubstr("queue full"));
  EXPECT_EQ(intake_.offers(), 0);
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kOverloaded), 6u);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kOverloaded), 1u);
}

TEST_F(HttpReceiverTest, ShuttingDownIs503WithRetryAfter) {
  intake_.RefuseWith(absl::UnavailableError("stopping"));
  RawHttpResponse response = Post(R"({"resourceSpans":[{"scopeSpans":[{"spans":[
      {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]})",
                                  "application/json");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.Header("retry-after"), "7");
  EXPECT_THAT(response.body, HasSubstr("\"code\":14"));
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kShuttingDown), 1u);
}

TEST_F(HttpReceiverTest, WrongMethodIs405AndWrongContentTypeIs415) {
  RawHttpResponse response = Post("", "application/x-protobuf", "", "GET");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.Header("allow"), "POST");
  response = Post("hello", "text/plain");
  EXPECT_EQ(response.status, 415);
  EXPECT_THAT(response.body, HasSubstr("text/plain"));
  response = Post("hello", "application/x-protobuf", "br");
  EXPECT_EQ(response.status, 415);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kMalformed), 2u);
  EXPECT_EQ(intake_.offers(), 0);
}

TEST(ReceiverStatsTest, EnumeratesEveryLabelledSeries) {
  ReceiverStats stats;
  stats.of(Transport::kGrpc).spans_refused[static_cast<int>(RefuseReason::kOverloaded)] += 3;
  const auto refused = stats.SpansRefused();
  EXPECT_EQ(refused.size(), static_cast<size_t>(kNumTransports * kNumRefuseReasons));
  bool found = false;
  for (const auto& s : refused) {
    if (std::string(s.transport) == "grpc" && std::string(s.reason) == "overloaded") {
      EXPECT_EQ(s.value, 3u);
      found = true;
    } else {
      EXPECT_EQ(s.value, 0u);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(std::string(RefuseReasonName(RefuseReason::kShuttingDown)), "shutting_down");
  EXPECT_EQ(std::string(RefuseReasonName(RefuseReason::kInvalidTraceId)), "invalid_trace_id");
  EXPECT_EQ(stats.SpansAccepted().size(), 2u);
}

}  // namespace
}  // namespace tracekeep::receiver
