#include "collector/orders/span_reader.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

// A span whose order id the receiver located (SpanRecord::key_*) and whose key filter shows
// nothing else for the tracker is not read; spans that only repeat the order of the span before
// add to its count. Anything else (a status, an exception event) is read in full.
TEST(SpanReaderTest, LocatedOrderIdIsTakenWithoutReadingTheSpan) {
  const OrdersConfig config = DefaultOrdersConfig();
  const SpanReader reader(config);
  auto located = [](const std::string& id, const std::string& filler) {
    SpanRecord r;
    r.span = filler + id + filler;  // not a span: a read would find nothing
    r.key_offset = static_cast<uint32_t>(filler.size());
    r.key_size = static_cast<uint32_t>(id.size());
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

  // An ERROR status, an exception event's name or a status attribute in the filter: read.
  SpanRecord error = located("o-2", "\xfd");
  error.is_error = true;
  EXPECT_FALSE(reader.Read(error, &facts));
  SpanRecord exception = located("o-2", "\xfd");
  exception.attribute_keys |= AttributeKeyBit("exception", 9);
  EXPECT_FALSE(reader.Read(exception, &facts));
  SpanRecord status = located("o-2", "\xfd");
  status.attribute_keys |= AttributeKeyBit("order.status", 12);
  EXPECT_FALSE(reader.Read(status, &facts));
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

}  // namespace
}  // namespace tracekeep::orders
