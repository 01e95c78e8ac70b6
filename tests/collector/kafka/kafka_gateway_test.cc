// Gateway mode against librdkafka's mock cluster: one record per trace keyed by its hex trace id,
// acknowledged only after Kafka acknowledged, refused when Kafka does not.
#include "collector/kafka/kafka_gateway.h"

#include <set>

#include "collector/common/ids.h"
#include "collector/pipeline/otlp_convert.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/collector/kafka/mock_cluster.h"
#include "tests/collector/receiver/fake_intake.h"

namespace tracekeep::kafka {
namespace {

using receiver::kTraceA;
using receiver::kTraceB;
using receiver::MakeRequest;

KafkaGatewayOptions Options(const MockCluster& cluster) {
  KafkaGatewayOptions o;
  o.brokers = {cluster.bootstraps()};
  o.ack_timeout = absl::Seconds(2);
  return o;
}

TEST(KafkaGatewayTest, ProducesOneRecordPerTraceKeyedByItsHexId) {
  MockCluster cluster;
  auto gateway = KafkaGateway::Create(Options(cluster));
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  ASSERT_TRUE((*gateway)->Start().ok());
  // 5 spans over two traces: A gets spans 0, 2, 4 and B gets 1, 3.
  absl::StatusOr<SplitResult> split = SplitWireRequest(MakeRequest(5).SerializeAsString());
  ASSERT_TRUE(split.ok());
  ASSERT_TRUE((*gateway)->Offer(std::move(split->traces), 5).ok());
  // Offer returned: Kafka has both records already.
  EXPECT_EQ((*gateway)->stats().records_produced.load(), 2u);
  EXPECT_EQ((*gateway)->stats().spans_produced.load(), 5u);

  std::vector<MockCluster::Record> records = cluster.ReadAll(2, absl::Seconds(30));
  ASSERT_EQ(records.size(), 2u);
  std::set<std::string> keys;
  for (const MockCluster::Record& r : records) {
    keys.insert(r.key);
    // The value is an OTLP request with only that trace's spans, resource and scope kept.
    OtlpRequest request;
    ASSERT_TRUE(request.ParseFromString(r.value));
    ASSERT_EQ(request.resource_spans_size(), 1);
    EXPECT_EQ(request.resource_spans(0).resource().attributes(0).value().string_value(),
              "shop-api");
    const auto& spans = request.resource_spans(0).scope_spans(0).spans();
    EXPECT_EQ(spans.size(), r.key == ToHex(kTraceA) ? 3 : 2);
    for (const auto& span : spans) EXPECT_EQ(ToHex(span.trace_id()), r.key);
  }
  EXPECT_EQ(keys, (std::set<std::string>{ToHex(kTraceA), ToHex(kTraceB)}));
  (*gateway)->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST(KafkaGatewayTest, RefusesWhenKafkaDoesNotAcknowledge) {
  MockCluster cluster;
  auto gateway = KafkaGateway::Create(Options(cluster));
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  ASSERT_TRUE((*gateway)->Start().ok());
  cluster.SetBrokerUp(false);
  absl::StatusOr<SplitResult> split = SplitWireRequest(MakeRequest(2).SerializeAsString());
  ASSERT_TRUE(split.ok());
  const absl::Status s = (*gateway)->Offer(std::move(split->traces), 2);
  // The client is told to retry: nothing was acknowledged.
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ((*gateway)->stats().records_produced.load(), 0u);
  EXPECT_EQ((*gateway)->stats().requests_refused.load(), 1u);
  (*gateway)->Shutdown(absl::Now() + absl::Seconds(1));
}

TEST(KafkaGatewayTest, RefusesAfterShutdown) {
  MockCluster cluster;
  auto gateway = KafkaGateway::Create(Options(cluster));
  ASSERT_TRUE(gateway.ok());
  ASSERT_TRUE((*gateway)->Start().ok());
  (*gateway)->Shutdown(absl::Now() + absl::Seconds(5));
  absl::StatusOr<SplitResult> split = SplitWireRequest(MakeRequest(1).SerializeAsString());
  ASSERT_TRUE(split.ok());
  EXPECT_EQ((*gateway)->Offer(std::move(split->traces), 1).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tracekeep::kafka
