#include "collector/orders/order_record.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace tracekeep::orders {
namespace {

v1::Order FullRecord() {
  v1::Order o;
  o.set_order_id("ORD-1");
  for (int i = 0; i < 3; ++i) {
    v1::StateEvent* e = o.add_states();
    e->set_state(i == 2 ? "NOT_CONFIGURED" : (i == 0 ? "INITIATED" : "SUBMITTED"));
    e->set_time_unix_nanos(1000 + i);
    e->set_service(i == 0 ? "shop-api" : "crm-api");
    e->set_trace_id(std::string(16, static_cast<char>('a' + i)));
    e->set_span_id(std::string(8, static_cast<char>('0' + i)));
    e->set_arrival_unix_nanos(2000 + i);
  }
  v1::InvariantValue* v = o.add_invariants();
  v->set_key("order.total_price");
  v->set_value("100.50");
  v->set_service("shop-api");
  v->set_time_unix_nanos(1000);
  v->set_trace_id(std::string(16, 'a'));
  o.add_trace_ids(std::string(16, 'a'));
  o.add_trace_ids("short");  // an id of another length survives as it came
  v1::Anomaly* a = o.add_anomalies();
  a->set_type("ILLEGAL_TRANSITION");
  a->set_detail("unknown state \"NOT_CONFIGURED\" from crm-api");
  a->set_detected_unix_nanos(3000);
  o.set_first_arrival_unix_nanos(2000);
  o.set_last_arrival_unix_nanos(2002);
  o.set_resolution(v1::Order::ANOMALOUS);
  o.set_resolved_unix_nanos(3000);
  o.add_kept_trace_ids(std::string(16, 'b'));
  o.set_force_keep(true);
  o.set_current_state("NOT_CONFIGURED");
  o.set_current_state_unix_nanos(1002);
  o.set_deadline_unix_nanos(0);
  return o;
}

TEST(OrderRecordTest, ConvertsToAndFromTheProtoWithoutLoss) {
  NameTable names({"INITIATED", "SUBMITTED"});
  const v1::Order in = FullRecord();
  const OrderRecord r = OrderRecord::FromProto(in, &names);
  EXPECT_EQ(r.states[0].state, 0);  // configured states keep their numbers
  EXPECT_EQ(r.states[1].state, 1);
  EXPECT_GE(r.states[2].state, 2);
  const v1::Order out = r.ToProto(names);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(in, out))
      << "in:\n"
      << in.DebugString() << "out:\n"
      << out.DebugString();
}

// The record is written with AppendSerialized: byte for byte what the message gives, for a full
// record, one with negative times and empty fields, and an empty one.
TEST(OrderRecordTest, SerializesExactlyAsItsProto) {
  NameTable names({"INITIATED", "SUBMITTED"});
  std::vector<v1::Order> cases = {FullRecord(), v1::Order()};
  v1::Order odd = FullRecord();
  odd.mutable_states(0)->set_time_unix_nanos(-5);  // ten-byte varints
  odd.mutable_states(1)->set_service("");
  odd.mutable_states(1)->set_span_id("");
  odd.mutable_invariants(0)->set_value("");
  odd.add_trace_ids("");  // a repeated element is written even when empty
  odd.mutable_anomalies(0)->set_detail("");
  odd.set_first_arrival_unix_nanos(std::numeric_limits<int64_t>::min());
  odd.set_resolution(v1::Order::READ_ONLY);
  odd.set_force_keep(false);
  odd.clear_current_state();
  odd.set_deadline_unix_nanos(std::numeric_limits<int64_t>::max());
  cases.push_back(odd);
  for (const v1::Order& in : cases) {
    const OrderRecord r = OrderRecord::FromProto(in, &names);
    std::string direct = "prefix";
    r.AppendSerialized(names, &direct);
    EXPECT_EQ(direct, "prefix" + r.ToProto(names).SerializeAsString()) << in.DebugString();
    v1::Order back;
    ASSERT_TRUE(back.ParseFromString(direct.substr(6)));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(in, back))
        << "in:\n"
        << in.DebugString() << "back:\n"
        << back.DebugString();
  }
}

TEST(OrderRecordTest, StateEventsAreSmallAndInline) {
  EXPECT_LE(sizeof(OrderRecord::State), 48u);
  const TraceIdBytes a = TraceIdBytes::Of(std::string(16, 'x'));
  EXPECT_EQ(a.view(), std::string(16, 'x'));
  EXPECT_EQ(TraceIdBytes::Of("abc").view(), "abc");
  EXPECT_NE(TraceIdBytes::Of("abc"), TraceIdBytes::Of("abd"));
  EXPECT_NE(TraceIdBytes::Of("ab"), TraceIdBytes::Of(absl::string_view("ab\0", 3)));
}

TEST(NameTableTest, NumbersNamesInOrderAndStopsGrowingAtItsBound) {
  NameTable names({"A", "B"});
  EXPECT_EQ(names.Find("A"), 0);
  EXPECT_EQ(names.Find("B"), 1);
  EXPECT_EQ(names.Find("C"), kNoName);
  EXPECT_EQ(names.Intern("C"), 2);
  EXPECT_EQ(names.Intern("C"), 2);
  EXPECT_EQ(names.Name(2), "C");
  EXPECT_EQ(names.Name(kNoName), "");
  for (size_t i = names.size(); i < NameTable::kMaxNames; ++i) names.Intern(absl::StrCat("n", i));
  EXPECT_EQ(names.size(), NameTable::kMaxNames);
  const NameId over = names.Intern("one too many");
  EXPECT_EQ(names.Name(over), NameTable::kOverflowName);
  EXPECT_EQ(names.Intern("and another"), over);
  EXPECT_EQ(names.size(), NameTable::kMaxNames + 1);
  EXPECT_EQ(names.Intern("C"), 2);  // names met before keep their numbers
}

}  // namespace
}  // namespace tracekeep::orders
