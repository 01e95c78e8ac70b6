#include "collector/security/client_limits.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::security {
namespace {

using ::testing::HasSubstr;

TEST(ClientLimitsTest, UnlimitedByDefaultButCounted) {
  FakeClock clock;
  ClientLimits limits(ClientLimitsOptions(), &clock);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limits.Admit("shop-api", 1000, 50000).ok());
  const ClientCounters* c = limits.CountersOf("shop-api");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->requests.load(), 100u);
  EXPECT_EQ(c->spans.load(), 100000u);
  EXPECT_EQ(c->bytes.load(), 5000000u);
  EXPECT_EQ(c->refused_requests.load(), 0u);
}

TEST(ClientLimitsTest, OneNoisyClientIsRefusedWhileOthersPass) {
  FakeClock clock;
  ClientLimitsOptions options;
  options.default_limit.spans_per_second = 1000;
  options.clients["batch-job"].spans_per_second = 100;
  ClientLimits limits(options, &clock);

  // batch-job: a burst of one second's worth, then refused.
  EXPECT_TRUE(limits.Admit("batch-job", 60, 1).ok());
  EXPECT_TRUE(limits.Admit("batch-job", 60, 1).ok());  // the bucket goes below zero
  absl::Status refused = limits.Admit("batch-job", 10, 1);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("\"batch-job\" is over its limit of 100 spans/s"));
  // shop-api has its own bucket.
  EXPECT_TRUE(limits.Admit("shop-api", 900, 1).ok());

  // 0.2 s later batch-job has 20 - 20 = 0 spans of credit: still refused; 0.1 s more and it
  // passes again.
  clock.Advance(absl::Milliseconds(200));
  EXPECT_FALSE(limits.Admit("batch-job", 10, 1).ok());
  clock.Advance(absl::Milliseconds(100));
  EXPECT_TRUE(limits.Admit("batch-job", 10, 1).ok());

  const ClientCounters* c = limits.CountersOf("batch-job");
  EXPECT_EQ(c->refused_requests.load(), 2u);
  EXPECT_EQ(c->refused_spans.load(), 20u);
  EXPECT_EQ(c->requests.load(), 5u);
}

TEST(ClientLimitsTest, BytesPerSecond) {
  FakeClock clock;
  ClientLimitsOptions options;
  options.default_limit.bytes_per_second = 1 << 20;
  ClientLimits limits(options, &clock);
  EXPECT_TRUE(limits.Admit("shop-api", 1, 1 << 20).ok());
  absl::Status refused = limits.Admit("shop-api", 1, 10);
  EXPECT_THAT(refused.message(), HasSubstr("bytes/s"));
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limits.Admit("shop-api", 1, 10).ok());
}

TEST(ClientLimitsTest, RegisteredClientsAreListed) {
  FakeClock clock;
  ClientLimits limits(ClientLimitsOptions(), &clock);
  limits.Register("b");
  limits.Register("a");
  auto counters = limits.Counters();
  ASSERT_EQ(counters.size(), 2u);
  EXPECT_EQ(counters[0].first, "a");
  EXPECT_EQ(counters[1].first, "b");
}

}  // namespace
}  // namespace tracekeep::security
