// The order topic's retention check: what the brokers say (librdkafka's mock cluster, an
// unreachable broker) and what tracekeep makes of it.
#include "collector/kafka/topic_config.h"

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/kafka/mock_cluster.h"

namespace tracekeep::kafka {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kFourteenDays = absl::Hours(14 * 24);

TEST(OrderTopicRetentionTest, KafkasDefaultWeekIsShorterThanTheDefaultHoldTime) {
  TopicRetention r;
  r.retention_ms = 7 * 24 * 3600 * 1000LL;  // Kafka's default log.retention.hours=168
  const std::string problem = OrderTopicRetentionProblem("orders", r, kFourteenDays);
  EXPECT_THAT(problem, HasSubstr("order topic \"orders\""));
  EXPECT_THAT(problem, HasSubstr("retention.ms=604800000 ms (168h)"));
  EXPECT_THAT(problem, HasSubstr("orders.max_hold_time (336h)"));
  EXPECT_THAT(problem, HasSubstr("at least 1209600000"));
}

TEST(OrderTopicRetentionTest, RetentionThatCoversTheHoldTimeIsFine) {
  TopicRetention r;
  r.retention_ms = -1;  // forever
  EXPECT_EQ(OrderTopicRetentionProblem("orders", r, kFourteenDays), "");
  r.retention_ms = absl::ToInt64Milliseconds(kFourteenDays);
  EXPECT_EQ(OrderTopicRetentionProblem("orders", r, kFourteenDays), "");
  r.retention_ms = 1000;
  EXPECT_EQ(OrderTopicRetentionProblem("orders", r, absl::Milliseconds(999)), "");
}

TEST(OrderTopicRetentionTest, CompactionOrASizeBoundIsAProblem) {
  TopicRetention r;
  r.cleanup_policy = "compact";
  EXPECT_THAT(OrderTopicRetentionProblem("orders", r, kFourteenDays),
              HasSubstr("cleanup.policy=compact"));
  r.cleanup_policy = "compact,delete";
  EXPECT_EQ(OrderTopicRetentionProblem("orders", r, kFourteenDays), "");
  r.retention_bytes = 1 << 30;
  EXPECT_THAT(OrderTopicRetentionProblem("orders", r, kFourteenDays),
              HasSubstr("retention.bytes=1073741824"));
}

// librdkafka 2.0.2's mock cluster does not answer DescribeConfigs (it names no controller): the
// call gives up by its timeout, as with brokers that never answer, and start-up goes on with a
// warning. (Against a real broker the settings are read: the Kafka cluster e2e test checks the
// warning for Kafka's default week of retention.)
TEST(DescribeTopicRetentionTest, BrokersThatDoNotAnswerAreUnavailableByTheTimeout) {
  MockCluster cluster;
  const absl::Time start = absl::Now();
  absl::StatusOr<TopicRetention> r =
      DescribeTopicRetention({cluster.bootstraps()}, kTopic, absl::Seconds(1));
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(DescribeTopicRetentionTest, AnUnreachableBrokerIsUnavailableWithinTheTimeout) {
  const int port = 1;  // nothing listens on a privileged port here
  const absl::Time start = absl::Now();
  absl::StatusOr<TopicRetention> r = DescribeTopicRetention({"127.0.0.1:" + std::to_string(port)},
                                                            "orders", absl::Milliseconds(500));
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace tracekeep::kafka
