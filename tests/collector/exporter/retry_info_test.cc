#include "collector/exporter/retry_info.h"

#include "gtest/gtest.h"
#include "tests/collector/exporter/status_details.h"

namespace tracekeep::exporter {
namespace {

using test_util::Any;
using test_util::RetryInfoAny;
using test_util::RpcStatus;

TEST(RetryInfoTest, ReadsRetryDelayWithSecondsAndNanos) {
  const std::string details = RpcStatus(8, "slow down", RetryInfoAny(2, 500000000));
  EXPECT_EQ(RetryDelayFromStatusDetails(details), absl::Milliseconds(2500));
}

TEST(RetryInfoTest, FindsRetryInfoAfterOtherDetails) {
  const std::string details =
      RpcStatus(14, "busy", Any("type.googleapis.com/google.rpc.ErrorInfo", "\x0a\x03why"),
                RetryInfoAny(0, 10000000));
  EXPECT_EQ(RetryDelayFromStatusDetails(details), absl::Milliseconds(10));
}

TEST(RetryInfoTest, NoRetryInfoMeansNoDelay) {
  EXPECT_EQ(RetryDelayFromStatusDetails(""), std::nullopt);
  EXPECT_EQ(RetryDelayFromStatusDetails(RpcStatus(14, "unavailable")), std::nullopt);
  EXPECT_EQ(RetryDelayFromStatusDetails(
                RpcStatus(14, "x", Any("type.googleapis.com/google.rpc.ErrorInfo", ""))),
            std::nullopt);
}

TEST(RetryInfoTest, MalformedOrNegativeIsIgnored) {
  std::string truncated = RpcStatus(8, "slow down", RetryInfoAny(3, 0));
  truncated.resize(truncated.size() - 2);
  EXPECT_EQ(RetryDelayFromStatusDetails(truncated), std::nullopt);
  EXPECT_EQ(RetryDelayFromStatusDetails("\xff\xff\xff"), std::nullopt);
  EXPECT_EQ(RetryDelayFromStatusDetails(RpcStatus(8, "x", RetryInfoAny(-5, 0))), std::nullopt);
}

}  // namespace
}  // namespace tracekeep::exporter
