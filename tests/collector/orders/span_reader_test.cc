#include "collector/orders/span_reader.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracekeep::orders {
namespace {

namespace common = opentelemetry::proto::common::v1;
namespace tr = opentelemetry::proto::trace::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

common::KeyValue* Add(google::protobuf::RepeatedPtrField<common::KeyValue>* attributes,
                      const std::string& key) {
  common::KeyValue* kv = attributes->Add();
  kv->set_key(key);
  return kv;
}

SpanRecord Record(const tr::Span& span) {
  SpanRecord r;
  r.span = span.SerializeAsString();
  r.start_unix_nanos = static_cast<int64_t>(span.start_time_unix_nano());
  return r;
}

// Everything the reader looks for, among attributes it skips: the order, its state, both kinds
// of invariants, a status event naming another order, an exception event and an ERROR status.
TEST(SpanReaderTest, ReadsOrderStateInvariantsEventsAndErrors) {
  const OrdersConfig config = DefaultOrdersConfig();
  const SpanReader reader(config);
  tr::Span span;
  span.set_name("POST /orders");
  span.set_start_time_unix_nano(1000);
  Add(span.mutable_attributes(), "http.route")->mutable_value()->set_string_value("/orders");
  Add(span.mutable_attributes(), "order.id")->mutable_value()->set_string_value("o-1");
  Add(span.mutable_attributes(), "order.status")->mutable_value()->set_string_value("SUBMITTED");
  Add(span.mutable_attributes(), "order.total_price")->mutable_value()->set_double_value(12.5);
  Add(span.mutable_attributes(), "order.items_count")->mutable_value()->set_int_value(3);
  Add(span.mutable_attributes(), "net.peer.port")->mutable_value()->set_int_value(443);
  tr::Span::Event* moved = span.add_events();
  moved->set_name("order.status_changed");
  moved->set_time_unix_nano(2000);
  Add(moved->mutable_attributes(), "order.id")->mutable_value()->set_string_value("o-2");
  Add(moved->mutable_attributes(), "order.status")->mutable_value()->set_string_value("SHIPPED");
  span.add_events()->set_name("exception");
  span.mutable_status()->set_code(tr::Status::STATUS_CODE_ERROR);
  span.mutable_status()->set_message("db timeout");

  std::vector<OrderFacts> facts;
  ASSERT_TRUE(reader.Read(Record(span), &facts));
  ASSERT_EQ(facts.size(), 2u);
  EXPECT_EQ(facts[0].order_id, "o-1");
  ASSERT_EQ(facts[0].states.size(), 1u);
  EXPECT_EQ(facts[0].states[0].state, "SUBMITTED");
  EXPECT_EQ(facts[0].states[0].time_unix_nanos, 1000);
  EXPECT_THAT(facts[0].invariants,
              ElementsAre(Pair("order.total_price", "12.5"), Pair("order.items_count", "3")));
  EXPECT_TRUE(facts[0].error);
  EXPECT_EQ(facts[0].error_detail, "span \"POST /orders\" has status ERROR: db timeout");
  EXPECT_EQ(facts[1].order_id, "o-2");
  ASSERT_EQ(facts[1].states.size(), 1u);
  EXPECT_EQ(facts[1].states[0].state, "SHIPPED");
  EXPECT_EQ(facts[1].states[0].time_unix_nanos, 2000);
  EXPECT_TRUE(facts[1].error);
}

TEST(SpanReaderTest, ExceptionEventAloneIsAnError) {
  const OrdersConfig config = DefaultOrdersConfig();
  const SpanReader reader(config);
  tr::Span span;
  span.set_name("charge");
  Add(span.mutable_attributes(), "order.id")->mutable_value()->set_string_value("o-1");
  span.add_events()->set_name("exception");
  std::vector<OrderFacts> facts;
  ASSERT_TRUE(reader.Read(Record(span), &facts));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_TRUE(facts[0].error);
  EXPECT_EQ(facts[0].error_detail, "span \"charge\" has an exception event");
  EXPECT_THAT(facts[0].states, IsEmpty());
}

// Protobuf accepts fields in any order: a KeyValue written value first is still read; long keys
// (64 bytes and more) are compared, not skipped by length; a non-scalar value reads as text.
TEST(SpanReaderTest, ValueBeforeKeyLongKeysAndArrays) {
  OrdersConfig config = DefaultOrdersConfig();
  config.id_attribute = std::string(70, 'k');
  config.invariant_attributes = {"order.lines"};
  const SpanReader reader(config);
  tr::Span span;
  Add(span.mutable_attributes(), std::string(70, 'k'))->mutable_value()->set_string_value("o-9");
  common::AnyValue* lines = Add(span.mutable_attributes(), "order.lines")->mutable_value();
  lines->mutable_array_value()->add_values()->set_int_value(1);
  std::string bytes = span.SerializeAsString();
  // A KeyValue with its value (field 2) before its key (field 1): order.status = "PAID".
  common::AnyValue paid;
  paid.set_string_value("PAID");
  std::string kv;
  kv.push_back(0x12);
  kv.push_back(static_cast<char>(paid.ByteSizeLong()));
  kv += paid.SerializeAsString();
  kv.push_back(0x0a);
  kv.push_back(static_cast<char>(std::string("order.status").size()));
  kv += "order.status";
  bytes.push_back(0x4a);  // field 9, length-delimited
  bytes.push_back(static_cast<char>(kv.size()));
  bytes += kv;
  SpanRecord r;
  r.span = bytes;
  std::vector<OrderFacts> facts;
  ASSERT_TRUE(reader.Read(r, &facts));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].order_id, "o-9");
  ASSERT_EQ(facts[0].states.size(), 1u);
  EXPECT_EQ(facts[0].states[0].state, "PAID");
  ASSERT_EQ(facts[0].invariants.size(), 1u);
  EXPECT_EQ(facts[0].invariants[0].first, "order.lines");
  EXPECT_NE(facts[0].invariants[0].second.find("int_value: 1"), std::string::npos)
      << facts[0].invariants[0].second;
}

TEST(SpanReaderTest, SpansWithoutAnOrderOrDamagedNameNone) {
  const OrdersConfig config = DefaultOrdersConfig();
  const SpanReader reader(config);
  tr::Span span;
  Add(span.mutable_attributes(), "user.id")->mutable_value()->set_string_value("order.id");
  std::vector<OrderFacts> facts;
  EXPECT_FALSE(reader.Read(Record(span), &facts));  // the bytes mention it, no attribute is it
  Add(span.mutable_attributes(), "order.id")->mutable_value()->set_string_value("o-1");
  SpanRecord damaged = Record(span);
  damaged.span.resize(damaged.span.size() - 2);
  EXPECT_FALSE(reader.Read(damaged, &facts));
  EXPECT_THAT(facts, IsEmpty());
}

// A span whose order id the receiver located (SpanRecord::key_*, which the receivers report only
// for spans with nothing else about an order: SplitOptionsFor) is not read; spans that only
// repeat the order of the span before add to its count. An ERROR status is read in full.
TEST(SpanReaderTest, LocatedOrderIdIsTakenWithoutReadingTheSpan) {
  const OrdersConfig config = DefaultOrdersConfig();
  const SpanReader reader(config);
  auto located = [](const std::string& id, const std::string& filler) {
    SpanRecord r;
    r.span = filler + id + filler;  // not a span: a read would find nothing
    r.key_offset = static_cast<uint32_t>(filler.size());
    r.key_size = static_cast<uint16_t>(id.size());
    r.key_hash = KeyValueHash(id);
    r.attribute_keys = AttributeKeyBit("order.id", 8) | AttributeKeyBit("http.url", 8);
    return r;
  };
  std::vector<OrderFacts> facts;
  ASSERT_TRUE(reader.Read(located("o-1", "\xff\xff"), &facts));
  ASSERT_TRUE(reader.Read(located("o-1", "\xfe"), &facts));
  ASSERT_TRUE(reader.Read(located("o-2", "\xfd"), &facts));
  ASSERT_EQ(facts.size(), 2u);
  EXPECT_EQ(facts[0].order_id, "o-1");
  EXPECT_EQ(facts[0].spans, 2u);
  EXPECT_EQ(facts[1].order_id, "o-2");
  EXPECT_EQ(facts[1].spans, 1u);
  EXPECT_FALSE(facts[0].error);

  SpanRecord error = located("o-2", "\xfd");
  error.is_error = true;
  EXPECT_FALSE(reader.Read(error, &facts));  // read whole: not a span
  EXPECT_EQ(facts.size(), 2u);

  // A real span read in full, then a located one of the same order: one entry.
  tr::Span span;
  Add(span.mutable_attributes(), "order.id")->mutable_value()->set_string_value("o-3");
  Add(span.mutable_attributes(), "order.status")->mutable_value()->set_string_value("PAID");
  facts.clear();
  ASSERT_TRUE(reader.Read(Record(span), &facts));
  ASSERT_TRUE(reader.Read(located("o-3", "\xfc"), &facts));
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(facts[0].spans, 2u);
  ASSERT_EQ(facts[0].states.size(), 1u);
  EXPECT_EQ(facts[0].states[0].state, "PAID");
}

// The receivers split with SplitOptionsFor: spans with a status, an invariant, an exception or a
// status event (on the span or in an event) come with no located id, and read the same as before.
TEST(SpanReaderTest, SplitOptionsLeaveSpansWithMoreToReadUnlocated) {
  OrdersConfig config = DefaultOrdersConfig();
  config.status_event = "order.status_changed";
  const SpanReader reader(config);
  namespace coll = opentelemetry::proto::collector::trace::v1;
  coll::ExportTraceServiceRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  auto span = [&](int n) {
    tr::Span* s = ss->add_spans();
    s->set_trace_id(std::string(16, static_cast<char>(n)));
    s->set_span_id(std::string(8, static_cast<char>(n)));
    Add(s->mutable_attributes(), "order.id")->mutable_value()->set_string_value("o-1");
    return s;
  };
  span(1);  // the id only: located
  Add(span(2)->mutable_attributes(), "order.status")->mutable_value()->set_string_value("PAID");
  Add(span(3)->mutable_attributes(), config.invariant_attributes.at(0))
      ->mutable_value()
      ->set_string_value("9.99");
  span(4)->add_events()->set_name("exception");
  tr::Span::Event* ev = span(5)->add_events();
  ev->set_name("order.status_changed");
  Add(ev->mutable_attributes(), "order.status")->mutable_value()->set_string_value("SHIPPED");
  // An id too long for a record's 16-bit key_size is not located either.
  const std::string long_id(70000, 'L');
  tr::Span* long_span = ss->add_spans();
  long_span->set_trace_id(std::string(16, '\x06'));
  long_span->set_span_id(std::string(8, '\x06'));
  Add(long_span->mutable_attributes(), "order.id")->mutable_value()->set_string_value(long_id);
  absl::StatusOr<SplitResult> split =
      SplitWireRequest(request.SerializeAsString(), SplitOptionsFor(config));
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->traces.size(), 6u);
  EXPECT_NE(split->traces[0].spans[0].key_size, 0u);
  for (int t = 1; t < 6; ++t) {
    EXPECT_EQ(split->traces[t].spans[0].key_size, 0u) << "span " << t + 1;
    std::vector<OrderFacts> facts;
    ASSERT_TRUE(reader.Read(split->traces[t].spans[0], &facts)) << "span " << t + 1;
    ASSERT_EQ(facts.size(), 1u);
    EXPECT_EQ(facts[0].order_id, t < 5 ? "o-1" : long_id) << "span " << t + 1;
  }
}

}  // namespace
}  // namespace tracekeep::orders
