#include "collector/sampling/span_scan.h"

#include "gtest/gtest.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tests/collector/sampling/span_builder.h"

namespace tracekeep::sampling {
namespace {

otlp::trace::v1::Span RichSpan() {
  otlp::trace::v1::Span s;
  s.set_trace_id(std::string(16, '\x01'));
  s.set_span_id(std::string(8, '\x02'));
  s.set_trace_state("a=1,b=2");
  s.set_name("POST /orders");
  s.set_kind(otlp::trace::v1::Span::SPAN_KIND_SERVER);
  s.set_start_time_unix_nano(1);
  s.set_end_time_unix_nano(2);
  SetAttr(s.mutable_attributes(), "order.id", std::string("o-17"));
  SetAttr(s.mutable_attributes(), "order.items_count", int64_t{-3});
  SetAttr(s.mutable_attributes(), "order.total_price", 12.5);
  SetAttr(s.mutable_attributes(), "retry", true);
  auto* arr = s.add_attributes();
  arr->set_key("tags");
  arr->mutable_value()->mutable_array_value()->add_values()->set_string_value("x");
  s.add_events()->set_name("order.status_changed");
  s.mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
  s.mutable_status()->set_message("boom");
  return s;
}

TEST(SpanScanTest, DecodesNameStatusTraceStateAndScalarAttributes) {
  const std::string bytes = RichSpan().SerializeAsString();
  SpanFields f;
  std::vector<Attribute> attrs;
  ASSERT_TRUE(ScanSpan(bytes, &f, &attrs));
  EXPECT_EQ(f.name, "POST /orders");
  EXPECT_EQ(f.trace_state, "a=1,b=2");
  EXPECT_EQ(f.status_code, kStatusError);
  ASSERT_EQ(attrs.size(), 5u);
  EXPECT_EQ(attrs[0].key, "order.id");
  EXPECT_EQ(attrs[0].value.type, AttributeValue::Type::kString);
  EXPECT_EQ(attrs[0].value.string_value, "o-17");
  EXPECT_EQ(attrs[1].value.type, AttributeValue::Type::kInt);
  EXPECT_EQ(attrs[1].value.int_value, -3);
  EXPECT_EQ(attrs[2].value.type, AttributeValue::Type::kDouble);
  EXPECT_EQ(attrs[2].value.double_value, 12.5);
  EXPECT_EQ(attrs[3].value.type, AttributeValue::Type::kBool);
  EXPECT_TRUE(attrs[3].value.bool_value);
  EXPECT_EQ(attrs[4].value.type, AttributeValue::Type::kNone);  // arrays are not matched
}

TEST(SpanScanTest, RejectsTruncatedInput) {
  const std::string bytes = RichSpan().SerializeAsString();
  for (size_t cut : {bytes.size() - 1, bytes.size() / 2, size_t{3}}) {
    SpanFields f;
    std::vector<Attribute> attrs;
    EXPECT_FALSE(ScanSpan(std::string_view(bytes).substr(0, cut), &f, &attrs)) << cut;
  }
}

TEST(SpanScanTest, DecodesResourceAttributes) {
  otlp::resource::v1::Resource r;
  SetAttr(r.mutable_attributes(), "service.name", std::string("mes-api"));
  r.set_dropped_attributes_count(4);
  std::vector<Attribute> attrs;
  const std::string bytes = r.SerializeAsString();
  ASSERT_TRUE(ScanResourceAttributes(bytes, &attrs));
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].key, "service.name");
  EXPECT_EQ(attrs[0].value.string_value, "mes-api");
}

TEST(SpanScanTest, AppendedAttributeParsesAsAnExtraSpanAttribute) {
  std::string bytes = RichSpan().SerializeAsString();
  AppendStringAttribute("tracekeep.policy", std::string(200, 'p'), &bytes);  // multi-byte lengths
  otlp::trace::v1::Span parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_EQ(parsed.attributes_size(), 6);
  EXPECT_EQ(parsed.attributes(5).key(), "tracekeep.policy");
  EXPECT_EQ(parsed.attributes(5).value().string_value(), std::string(200, 'p'));
  EXPECT_EQ(parsed.name(), "POST /orders");
  EXPECT_EQ(parsed.events_size(), 1);
}

TEST(SpanScanTest, TraceStateLookup) {
  std::string_view v;
  EXPECT_TRUE(TraceStateValue("rojo=00f0, congo=t61rcWkgMzE", "congo", &v));
  EXPECT_EQ(v, "t61rcWkgMzE");
  EXPECT_FALSE(TraceStateValue("rojo=00f0", "congo", &v));
  EXPECT_FALSE(TraceStateValue("", "congo", &v));
}

}  // namespace
}  // namespace tracekeep::sampling
