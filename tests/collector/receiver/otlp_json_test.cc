#include "collector/receiver/otlp_json.h"

#include <string>

#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::receiver {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTraceHex[] = "5b8efff798038103d269b633813fc60c";
constexpr char kSpanHex[] = "eee19b7ec3c1b174";
constexpr char kParentHex[] = "EEE19B7EC3C1B173";  // hex may be uppercase
constexpr char kLinkTraceHex[] = "0102030405060708090a0b0c0d0e0f10";

std::string Bytes(const char* hex, size_t size) { return FromHex(hex, size).value(); }

TEST(OtlpJsonTest, DecodesHexIdsBothKeyStylesEnumIntsAndKeepsInt64Precision) {
  const std::string json = std::string(R"({
    "resourceSpans": [{
      "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop-api"}}]},
      "unknownTopField": {"nested": [1, 2, "traceId"]},
      "scope_spans": [{
        "scope": {"name": "lib"},
        "spans": [{
          "traceId": ")") + kTraceHex +
                           R"(",
          "spanId": ")" + kSpanHex +
                           R"(",
          "parent_span_id": ")" +
                           kParentHex + R"(",
          "name": "GET /orders",
          "kind": 2,
          "startTimeUnixNano": 1700000000123456789,
          "end_time_unix_nano": "1700000000987654321",
          "status": {"code": 2, "message": "boom"},
          "attributes": [{"key": "traceId", "value": {"stringValue": "not-an-id \"spanId\": \"x\""}}],
          "links": [{"traceId": ")" +
                           kLinkTraceHex + R"(", "spanId": "0000000000000001"}],
          "someFutureField": true
        }, {
          "traceId": ")" + kTraceHex +
                           R"(", "spanId": "0000000000000002", "parentSpanId": ""
        }]
      }]
    }]
  })";
  OtlpRequest request;
  std::string id_errors;
  ASSERT_TRUE(ParseOtlpJson(json, &request, &id_errors).ok());
  EXPECT_EQ(id_errors, "");
  const auto& spans = request.resource_spans(0).scope_spans(0).spans();
  ASSERT_EQ(spans.size(), 2);
  const auto& span = spans[0];
  EXPECT_EQ(span.trace_id(), Bytes(kTraceHex, 16));
  EXPECT_EQ(span.span_id(), Bytes(kSpanHex, 8));
  EXPECT_EQ(span.parent_span_id(), Bytes(kParentHex, 8));
  EXPECT_EQ(span.name(), "GET /orders");
  EXPECT_EQ(span.kind(), opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(span.start_time_unix_nano(), 1700000000123456789ULL);
  EXPECT_EQ(span.end_time_unix_nano(), 1700000000987654321ULL);
  EXPECT_EQ(span.status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  // A string value that looks like an id key is data, and stays untouched.
  EXPECT_EQ(span.attributes(0).value().string_value(), "not-an-id \"spanId\": \"x\"");
  EXPECT_EQ(span.links(0).trace_id(), Bytes(kLinkTraceHex, 16));
  EXPECT_EQ(span.links(0).span_id(), Bytes("0000000000000001", 8));
  EXPECT_EQ(spans[1].parent_span_id(), "");
}

TEST(OtlpJsonTest, InvalidHexIdInvalidatesOnlyItsSpanAndIsDescribed) {
  const std::string json = std::string(R"({"resourceSpans":[{"scopeSpans":[{"spans":[
      {"traceId":"zz8efff798038103d269b633813fc60c","spanId":")") +
                           kSpanHex + R"("},
      {"traceId":")" + kTraceHex +
                           R"(","spanId":"abc"},
      {"traceId":")" + kTraceHex +
                           R"(","spanId":"0000000000000003","parentSpanId":"12345"},
      {"traceId":")" + kTraceHex +
                           R"(","spanId":"0000000000000004"}]}]}]})";
  OtlpRequest request;
  std::string id_errors;
  ASSERT_TRUE(ParseOtlpJson(json, &request, &id_errors).ok());
  const auto& spans = request.resource_spans(0).scope_spans(0).spans();
  ASSERT_EQ(spans.size(), 4);
  EXPECT_EQ(spans[0].trace_id(), "");
  EXPECT_EQ(spans[1].span_id(), "");
  EXPECT_EQ(spans[2].span_id(), "");  // a bad parent makes the span itself invalid
  EXPECT_EQ(spans[3].span_id(), Bytes("0000000000000004", 8));
  EXPECT_THAT(id_errors, HasSubstr("traceId \"zz8efff798038103d269b633813fc60c\""));
  EXPECT_THAT(id_errors, HasSubstr("non-hex character at position 0"));
  EXPECT_THAT(id_errors, HasSubstr("spanId \"abc\""));
  EXPECT_THAT(id_errors, HasSubstr("parentSpanId \"12345\""));

  SplitResult split = SplitRequest(request);
  EXPECT_EQ(split.accepted_spans, 1);
  EXPECT_EQ(split.rejected_invalid_trace_id, 1);
  EXPECT_EQ(split.rejected_invalid_span_id, 2);
}

TEST(OtlpJsonTest, MalformedJsonFailsWithTheParserMessage) {
  OtlpRequest request;
  absl::Status status = ParseOtlpJson(R"({"resourceSpans": [{"scopeSpans": 5}]})", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("invalid OTLP/JSON ExportTraceServiceRequest"));
  status = ParseOtlpJson(R"({"resourceSpans": [)", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  status = ParseOtlpJson(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"unterminated)",
                         &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(OtlpJsonTest, ToOtlpJsonWritesHexIdsAndIntEnumsAndRoundTrips) {
  OtlpRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(Bytes(kTraceHex, 16));
  span->set_span_id(Bytes(kSpanHex, 8));
  span->set_parent_span_id(Bytes(kParentHex, 8));
  span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT);
  span->set_start_time_unix_nano(1700000000123456789ULL);
  auto* link = span->add_links();
  link->set_trace_id(Bytes(kLinkTraceHex, 16));
  auto* attr = span->add_attributes();
  attr->set_key("payload");
  attr->mutable_value()->set_bytes_value("\x01\x02");  // bytes values stay base64

  auto json = ToOtlpJson(request);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr(std::string("\"traceId\":\"") + kTraceHex + "\""));
  EXPECT_THAT(*json, HasSubstr(std::string("\"spanId\":\"") + kSpanHex + "\""));
  EXPECT_THAT(*json, HasSubstr("\"parentSpanId\":\"eee19b7ec3c1b173\""));
  EXPECT_THAT(*json, HasSubstr(std::string("\"traceId\":\"") + kLinkTraceHex + "\""));
  EXPECT_THAT(*json, HasSubstr("\"kind\":3"));
  EXPECT_THAT(*json, HasSubstr("\"bytesValue\":\"AQI=\""));
  EXPECT_THAT(*json, Not(HasSubstr("SPAN_KIND")));

  OtlpRequest parsed;
  ASSERT_TRUE(ParseOtlpJson(*json, &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), request.SerializeAsString());
}

TEST(OtlpJsonTest, EscapedKeysAndValuesAreDecoded) {
  // "trace\u0049d" is "traceId"; "\u0030" is "0".
  const std::string json =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"trace\u0049d":"\u0030102030405060708090a0b0c0d0e0f10","spanId":"0000000000000001"}]}]}]})";
  OtlpRequest request;
  ASSERT_TRUE(ParseOtlpJson(json, &request).ok());
  EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans(0).trace_id(), Bytes(kLinkTraceHex, 16));
}

}  // namespace
}  // namespace tracekeep::receiver
