#include "collector/orders/lifecycle.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::orders {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

OrdersConfig TestConfig() {
  OrdersConfig c = DefaultOrdersConfig();
  c.grace_period = absl::Seconds(10);
  c.orphan_window = absl::Minutes(1);
  return c;
}

void AddState(v1::Order* o, const std::string& state, absl::Time span_time, absl::Time arrival,
              int span = 0) {
  v1::StateEvent* e = o->add_states();
  e->set_state(state);
  e->set_time_unix_nanos(absl::ToUnixNanos(span_time));
  e->set_service("svc");
  e->set_trace_id(std::string(16, 'a'));
  e->set_span_id(std::string(8, static_cast<char>(span ? span : o->states_size())));
  e->set_arrival_unix_nanos(absl::ToUnixNanos(arrival));
  if (o->first_arrival_unix_nanos() == 0)
    o->set_first_arrival_unix_nanos(absl::ToUnixNanos(arrival));
  o->set_last_arrival_unix_nanos(absl::ToUnixNanos(arrival));
}

std::vector<std::string> Types(const v1::Order& o) {
  std::vector<std::string> t;
  for (const auto& a : o.anomalies()) t.push_back(a.type());
  return t;
}

TEST(LifecycleTest, DefaultIsTheLifecycleOfOrdersMd) {
  Lifecycle l(DefaultOrdersConfig());
  EXPECT_EQ(l.initial_state(), "INITIATED");
  EXPECT_TRUE(l.Allowed("MANUFACTURING_APPROVED", "MANUFACTURING_STARTED"));
  EXPECT_TRUE(l.Allowed("SUBMITTED", "CANCELLED"));
  EXPECT_FALSE(l.Allowed("MANUFACTURING_STARTED", "CANCELLED"));
  EXPECT_TRUE(l.Reachable("INITIATED", "DELIVERED"));
  EXPECT_FALSE(l.Reachable("SUBMITTED", "INITIATED"));
  EXPECT_TRUE(l.Terminal("CANCELLED"));
  EXPECT_EQ(l.Deadline("INITIATED"), absl::Hours(1));  // CANCELLED has no deadline
  EXPECT_TRUE(ValidateOrdersConfig(DefaultOrdersConfig()).empty());
}

TEST(LifecycleTest, ValidationNamesFieldAndValue) {
  OrdersConfig c = DefaultOrdersConfig();
  c.transitions.push_back({"SUBMITTED", "LOST", absl::Seconds(-1)});
  c.baseline_percentage = 120;
  EXPECT_THAT(ValidateOrdersConfig(c),
              testing::UnorderedElementsAre(
                  "orders.transitions[11].to: must be one of the states, got \"LOST\"",
                  "orders.transitions[11].deadline: must be >= 0, got -1s",
                  "orders.baseline_percentage: must be in [0, 100], got 120"));
}

TEST(LifecycleTest, HealthyPathHasNoAnomalyAndADeadline) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "INITIATED", kT0, kT0);
  AddState(&o, "SUBMITTED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(1));
  EXPECT_FALSE(l.Evaluate(&o, kT0 + absl::Minutes(5)));
  EXPECT_EQ(o.current_state(), "SUBMITTED");
  EXPECT_EQ(o.deadline_unix_nanos(), absl::ToUnixNanos(kT0 + absl::Seconds(1) + absl::Hours(4)));
}

TEST(LifecycleTest, StalledOnlyAfterDeadlinePlusGrace) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "INITIATED", kT0, kT0);
  EXPECT_FALSE(l.Evaluate(&o, kT0 + absl::Hours(1) + absl::Seconds(9)));
  EXPECT_TRUE(l.Evaluate(&o, kT0 + absl::Hours(1) + absl::Seconds(10)));
  EXPECT_THAT(Types(o), testing::ElementsAre("STALLED"));
}

TEST(LifecycleTest, SkippedIsJudgedAfterGraceBySpanTime) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "INITIATED", kT0, kT0);
  AddState(&o, "PRICE_CALCULATED", kT0 + absl::Seconds(2), kT0 + absl::Seconds(2));
  EXPECT_FALSE(l.Evaluate(&o, kT0 + absl::Seconds(5)));  // SUBMITTED may still arrive
  // It arrives late, with its true (earlier) span time: nothing to flag.
  v1::Order late = o;
  AddState(&late, "SUBMITTED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(8));
  EXPECT_FALSE(l.Evaluate(&late, kT0 + absl::Minutes(1)));
  // It never arrives.
  EXPECT_TRUE(l.Evaluate(&o, kT0 + absl::Seconds(12)));
  EXPECT_THAT(Types(o), testing::ElementsAre("SKIPPED"));
}

TEST(LifecycleTest, OutOfOrderArrivalIsNotAnAnomaly) {
  Lifecycle l(TestConfig());
  v1::Order o;
  // Arrival order: PRICE_CALCULATED, INITIATED, SUBMITTED; span times are in lifecycle order.
  AddState(&o, "PRICE_CALCULATED", kT0 + absl::Seconds(2), kT0 + absl::Seconds(3));
  AddState(&o, "INITIATED", kT0, kT0 + absl::Seconds(4));
  AddState(&o, "SUBMITTED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(5));
  EXPECT_FALSE(l.Evaluate(&o, kT0 + absl::Minutes(10)));
  EXPECT_EQ(o.current_state(), "PRICE_CALCULATED");
}

TEST(LifecycleTest, BackToInitiatedIsIllegal) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "INITIATED", kT0, kT0);
  AddState(&o, "SUBMITTED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(1));
  AddState(&o, "INITIATED", kT0 + absl::Seconds(2), kT0 + absl::Seconds(2));
  EXPECT_TRUE(l.Evaluate(&o, kT0 + absl::Seconds(20)));
  EXPECT_THAT(Types(o), testing::UnorderedElementsAre("DUPLICATE_STATE", "ILLEGAL_TRANSITION"));
}

TEST(LifecycleTest, UnknownStateIsIllegalAtOnce) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "INITIATED", kT0, kT0);
  AddState(&o, "TELEPORTED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(1));
  EXPECT_TRUE(l.Evaluate(&o, kT0 + absl::Seconds(1)));
  EXPECT_THAT(Types(o), testing::ElementsAre("ILLEGAL_TRANSITION"));
}

TEST(LifecycleTest, DuplicateStateAtOnce) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "INITIATED", kT0, kT0);
  AddState(&o, "MANUFACTURING_STARTED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(1));
  AddState(&o, "MANUFACTURING_STARTED", kT0 + absl::Seconds(2), kT0 + absl::Seconds(2));
  EXPECT_TRUE(l.Evaluate(&o, kT0 + absl::Seconds(2)));
  EXPECT_THAT(Types(o), testing::ElementsAre("DUPLICATE_STATE"));
}

TEST(LifecycleTest, OrphanAfterWindowWithoutInitiated) {
  Lifecycle l(TestConfig());
  v1::Order o;
  AddState(&o, "SUBMITTED", kT0, kT0);
  EXPECT_FALSE(l.Evaluate(&o, kT0 + absl::Seconds(59)));
  EXPECT_TRUE(l.Evaluate(&o, kT0 + absl::Minutes(1)));
  EXPECT_THAT(Types(o), testing::ElementsAre("ORPHAN"));
}

TEST(LifecycleTest, CancelledBeforeManufacturingIsHealthyAfterIsNot) {
  Lifecycle l(TestConfig());
  v1::Order ok;
  AddState(&ok, "INITIATED", kT0, kT0);
  AddState(&ok, "CANCELLED", kT0 + absl::Seconds(1), kT0 + absl::Seconds(1));
  EXPECT_FALSE(l.Evaluate(&ok, kT0 + absl::Hours(100)));  // terminal: never stalls
  v1::Order bad;
  AddState(&bad, "INITIATED", kT0, kT0);
  AddState(&bad, "SUBMITTED", kT0 + absl::Seconds(1), kT0);
  AddState(&bad, "PRICE_CALCULATED", kT0 + absl::Seconds(2), kT0);
  AddState(&bad, "MANUFACTURING_APPROVED", kT0 + absl::Seconds(3), kT0);
  AddState(&bad, "MANUFACTURING_STARTED", kT0 + absl::Seconds(4), kT0);
  AddState(&bad, "CANCELLED", kT0 + absl::Seconds(5), kT0);
  EXPECT_TRUE(l.Evaluate(&bad, kT0 + absl::Seconds(20)));
  EXPECT_THAT(Types(bad), testing::ElementsAre("ILLEGAL_TRANSITION"));
}

}  // namespace
}  // namespace tracekeep::orders
