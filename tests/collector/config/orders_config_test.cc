#include "collector/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::config {
namespace {

using ::testing::HasSubstr;

TEST(OrdersConfigTest, DefaultsAreTheLifecycleOfOrdersMd) {
  auto c = ParseConfig("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->orders.enabled);
  EXPECT_EQ(c->orders.id_attribute, "order.id");
  EXPECT_EQ(c->orders.states.front(), "INITIATED");
  EXPECT_EQ(c->orders.transitions.size(), 11u);
  EXPECT_EQ(c->orders.invariant_attributes.size(), 2u);
}

TEST(OrdersConfigTest, ReadsTheSection) {
  auto c = ParseConfig(R"(
orders:
  id_attribute: shop.order_id
  states: [NEW, PAID, DONE]
  transitions:
    - {from: NEW, to: PAID, deadline: 15m}
    - {from: PAID, to: DONE}
  terminal_states: [DONE]
  invariant_attributes: [shop.total]
  grace_period: 5s
  orphan_window: 1m
  baseline_percentage: 2.5
  max_hold_time: 2h
  max_held_traces: 10
  max_held_mib: 20
  check_interval: 100ms
  compact_after: 2m
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->orders.id_attribute, "shop.order_id");
  ASSERT_EQ(c->orders.transitions.size(), 2u);
  EXPECT_EQ(c->orders.transitions[0].deadline, absl::Minutes(15));
  EXPECT_EQ(c->orders.transitions[1].deadline, absl::ZeroDuration());
  EXPECT_EQ(c->orders.grace_period, absl::Seconds(5));
  EXPECT_DOUBLE_EQ(c->orders.baseline_percentage, 2.5);
  EXPECT_EQ(c->orders.max_held_traces, 10u);
  EXPECT_EQ(c->orders.check_interval, absl::Milliseconds(100));
  EXPECT_EQ(c->orders.compact_after, absl::Minutes(2));
  EXPECT_EQ(ParseConfig("")->orders.compact_after, absl::Seconds(10));
}

TEST(OrdersConfigTest, ListsEveryProblem) {
  auto c = ParseConfig(R"(orders:
  states: [NEW, PAID]
  transitions:
    - {from: NEW, to: LOST, deadline: soon}
  baseline_percentage: 101
  compact_after: -1s
  colour: blue
)",
                       "o.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("orders.transitions[0].deadline: must be a duration"));
  EXPECT_THAT(m, HasSubstr("orders.transitions[0].to: must be one of the states, got \"LOST\""));
  EXPECT_THAT(m,
              HasSubstr("orders.baseline_percentage: must be a number in [0, 100], got \"101\""));
  EXPECT_THAT(m, HasSubstr("orders.compact_after: must be a duration"));
  EXPECT_THAT(m, HasSubstr("o.yaml:7:3: orders.colour: unknown key"));
  // The default terminal states are not among the configured states.
  EXPECT_THAT(m,
              HasSubstr("orders.terminal_states[0]: must be one of the states, got \"DELIVERED\""));
}

}  // namespace
}  // namespace tracekeep::config
