#include "collector/orders/packed_order.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tracekeep::orders {
namespace {

TraceIdBytes Trace(int n) { return TraceIdBytes::Of(std::string(15, 't') + static_cast<char>(n)); }
SpanIdBytes Span(int n) { return SpanIdBytes::Of(std::string(7, 's') + static_cast<char>(n)); }

// An order as the load generator's shop makes them, plus what rarer orders have: a trace id
// that none of the order's linked ones is, negative and extreme times, a hold with two journal
// records and one in order_hold.
void MakeOrder(OrderRecord* o, std::vector<HeldRef>* holds) {
  o->order_id = "ORD-00000000deadbeef";
  for (int i = 1; i <= 8; ++i) o->trace_ids.push_back(Trace(i));
  o->kept_trace_ids = {Trace(2), Trace(99)};
  const int64_t t0 = 1764547200000000000;
  for (int64_t i = 0; i < 8; ++i) {
    OrderRecord::State& s = o->states.emplace_back();
    s.time_unix_nanos = t0 + i * 320000000 - (i == 5 ? 900000000 : 0);  // one out of order
    s.arrival_unix_nanos = t0 + i * 330000000;
    s.trace_id = i == 7 ? Trace(77) : Trace(static_cast<int>(i) + 1);
    s.span_id = Span(static_cast<int>(i));
    s.state = static_cast<NameId>(i);
    s.service = static_cast<NameId>(8 + i % 3);
  }
  o->states[6].time_unix_nanos = INT64_MIN;
  o->states[7].time_unix_nanos = INT64_MAX;
  OrderRecord::Invariant& price = o->invariants.emplace_back();
  price.value = "104.50";
  price.time_unix_nanos = t0;
  price.trace_id = Trace(1);
  price.key = 11;
  price.service = 8;
  OrderRecord::Invariant& items = o->invariants.emplace_back();
  items.value = std::string(300, 'x');
  items.time_unix_nanos = -5;
  items.trace_id = Trace(200);
  items.key = kNoName;
  items.service = kNoName;
  o->anomalies.push_back({"ERROR", "db write failed (mes-api, trace 3c3c)", t0 + 7});
  o->anomalies.push_back({"STALLED", "", 0});
  for (int64_t i = 1; i <= 8; ++i) {
    HeldRef& h = holds->emplace_back();
    h.trace_id = Trace(static_cast<int>(i));
    h.seq = t0 + static_cast<uint64_t>(i);
    h.spans = 10;
    h.bytes = 3712 + static_cast<uint32_t>(i);
    h.arrival = t0 + i * 330000000;
    h.in_journal = i != 4;
    if (h.in_journal) {
      h.refs.push_back(
          JournalRef{7, 123456789ull * static_cast<uint64_t>(i), 185000, 4100, 60000, 3700});
    }
    if (i == 8) h.refs.push_back(JournalRef{UINT64_MAX, 0, UINT32_MAX, 0, 1, 2});
  }
}

void ExpectSameRef(const JournalRef& a, const JournalRef& b) {
  EXPECT_EQ(a.segment, b.segment);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.origins_end, b.origins_end);
  EXPECT_EQ(a.trace_offset, b.trace_offset);
  EXPECT_EQ(a.trace_size, b.trace_size);
}

TEST(PackedOrderTest, UnpacksToExactlyWhatWasPacked) {
  OrderRecord want;
  std::vector<HeldRef> want_holds;
  MakeOrder(&want, &want_holds);
  OrderRecord o;
  std::vector<HeldRef> holds;
  MakeOrder(&o, &holds);
  o.first_arrival_unix_nanos = 42;
  o.resolution = v1::Order::ANOMALOUS;

  PackedOrder packed = PackOrder(&o, &holds);
  ASSERT_NE(packed, nullptr);
  EXPECT_EQ(PackedHoldCount(packed), 8u);
  // The lists are gone, memory too; the rest of the record stays.
  EXPECT_EQ(o.states.capacity() + o.invariants.capacity() + o.trace_ids.capacity() +
                o.kept_trace_ids.capacity() + o.anomalies.capacity() + holds.capacity(),
            0u);
  EXPECT_EQ(o.order_id, want.order_id);
  EXPECT_EQ(o.first_arrival_unix_nanos, 42);
  EXPECT_EQ(o.resolution, v1::Order::ANOMALOUS);

  UnpackOrder(packed, &o, &holds);
  EXPECT_EQ(o.trace_ids, want.trace_ids);
  EXPECT_EQ(o.kept_trace_ids, want.kept_trace_ids);
  ASSERT_EQ(o.states.size(), want.states.size());
  EXPECT_EQ(o.states.capacity(), o.states.size());
  for (size_t i = 0; i < o.states.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(o.states[i].time_unix_nanos, want.states[i].time_unix_nanos);
    EXPECT_EQ(o.states[i].arrival_unix_nanos, want.states[i].arrival_unix_nanos);
    EXPECT_EQ(o.states[i].trace_id, want.states[i].trace_id);
    EXPECT_EQ(o.states[i].span_id, want.states[i].span_id);
    EXPECT_EQ(o.states[i].state, want.states[i].state);
    EXPECT_EQ(o.states[i].service, want.states[i].service);
  }
  ASSERT_EQ(o.invariants.size(), 2u);
  for (size_t i = 0; i < o.invariants.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(o.invariants[i].value, want.invariants[i].value);
    EXPECT_EQ(o.invariants[i].time_unix_nanos, want.invariants[i].time_unix_nanos);
    EXPECT_EQ(o.invariants[i].trace_id, want.invariants[i].trace_id);
    EXPECT_EQ(o.invariants[i].key, want.invariants[i].key);
    EXPECT_EQ(o.invariants[i].service, want.invariants[i].service);
  }
  ASSERT_EQ(o.anomalies.size(), 2u);
  for (size_t i = 0; i < o.anomalies.size(); ++i) {
    EXPECT_EQ(o.anomalies[i].type, want.anomalies[i].type);
    EXPECT_EQ(o.anomalies[i].detail, want.anomalies[i].detail);
    EXPECT_EQ(o.anomalies[i].detected_unix_nanos, want.anomalies[i].detected_unix_nanos);
  }
  ASSERT_EQ(holds.size(), want_holds.size());
  EXPECT_EQ(holds.capacity(), holds.size());
  for (size_t i = 0; i < holds.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(holds[i].trace_id, want_holds[i].trace_id);
    EXPECT_EQ(holds[i].seq, want_holds[i].seq);
    EXPECT_EQ(holds[i].spans, want_holds[i].spans);
    EXPECT_EQ(holds[i].bytes, want_holds[i].bytes);
    EXPECT_EQ(holds[i].arrival, want_holds[i].arrival);
    EXPECT_EQ(holds[i].in_journal, want_holds[i].in_journal);
    ASSERT_EQ(holds[i].refs.size(), want_holds[i].refs.size());
    for (size_t r = 0; r < holds[i].refs.size(); ++r) {
      ExpectSameRef(holds[i].refs[r], want_holds[i].refs[r]);
    }
  }
}

// Holds taken while the order is packed wait beside it; unpacked, they follow the packed ones.
TEST(PackedOrderTest, HoldsTakenWhilePackedFollowThePackedOnes) {
  OrderRecord o;
  std::vector<HeldRef> holds;
  MakeOrder(&o, &holds);
  PackedOrder packed = PackOrder(&o, &holds);
  HeldRef& late = holds.emplace_back();
  late.trace_id = Trace(9);
  late.seq = 12345;
  late.in_journal = true;
  late.refs.push_back(JournalRef{8, 1, 2, 3, 4, 5});
  UnpackOrder(packed, &o, &holds);
  ASSERT_EQ(holds.size(), 9u);
  EXPECT_EQ(holds[0].trace_id, Trace(1));
  EXPECT_EQ(holds[7].trace_id, Trace(8));
  EXPECT_EQ(holds[8].trace_id, Trace(9));
  EXPECT_EQ(holds[8].seq, 12345u);
  ASSERT_EQ(holds[8].refs.size(), 1u);
  EXPECT_EQ(holds[8].refs[0].trace_size, 5u);
}

TEST(PackedOrderTest, AnEmptyOrderPacksAndUnpacks) {
  OrderRecord o;
  std::vector<HeldRef> holds;
  PackedOrder packed = PackOrder(&o, &holds);
  EXPECT_EQ(PackedHoldCount(packed), 0u);
  EXPECT_LE(PackedSize(packed), 8u);
  o.states.emplace_back();  // replaced by what was packed
  UnpackOrder(packed, &o, &holds);
  EXPECT_TRUE(o.states.empty());
  EXPECT_TRUE(holds.empty());
  EXPECT_EQ(PackedHoldCount(nullptr), 0u);
  EXPECT_EQ(PackedSize(nullptr), 0u);
}

// What the compact form is for: the shop's finished order (8 states, 2 values, 8 traces held in
// the journal) in less than half the bytes its lists take (their heap blocks, before the
// allocator rounds each up to its size class).
TEST(PackedOrderTest, AFinishedOrderTakesAFractionOfItsListsBytes) {
  OrderRecord o;
  std::vector<HeldRef> holds;
  MakeOrder(&o, &holds);
  o.kept_trace_ids.clear();
  o.anomalies.clear();
  o.states[6].time_unix_nanos = o.states[5].time_unix_nanos + 1;
  o.states[7].time_unix_nanos = o.states[6].time_unix_nanos + 1;
  o.states[7].trace_id = Trace(8);
  o.invariants[1].value = "3";
  o.invariants[1].trace_id = Trace(1);
  const size_t lists = o.states.size() * sizeof(OrderRecord::State) +
                       o.invariants.size() * sizeof(OrderRecord::Invariant) +
                       o.trace_ids.size() * sizeof(TraceIdBytes) + holds.size() * sizeof(HeldRef);
  PackedOrder packed = PackOrder(&o, &holds);
  EXPECT_LT(PackedSize(packed) * 2, lists) << PackedSize(packed) << " of " << lists;
}

}  // namespace
}  // namespace tracekeep::orders
