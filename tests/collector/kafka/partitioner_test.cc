// A member tells the order ids it owns from its partitions of the order topic: Fnv1aPartition must
// put every key where librdkafka's fnv1a partitioner (and so Sarama's hash partitioner) does.
#include "collector/kafka/partitioner.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/collector/kafka/mock_cluster.h"

namespace tracekeep::kafka {
namespace {

// Records, by key, the partition each delivered record went to.
class Deliveries final : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    ASSERT_EQ(message.err(), RdKafka::ERR_NO_ERROR) << message.errstr();
    partitions[*message.key()] = message.partition();
  }
  std::map<std::string, int32_t> partitions;
};

TEST(PartitionerTest, PlacesKeysWhereLibrdkafkasFnv1aPartitionerDoes) {
  MockCluster cluster;
  constexpr int kPartitions = 7;
  cluster.CreateTopic("orders_by_id", kPartitions);
  Deliveries deliveries;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  ASSERT_EQ(conf->set("bootstrap.servers", cluster.bootstraps(), error), RdKafka::Conf::CONF_OK);
  ASSERT_EQ(conf->set("partitioner", "fnv1a", error), RdKafka::Conf::CONF_OK);
  ASSERT_EQ(conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&deliveries), error),
            RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  ASSERT_NE(producer, nullptr) << error;
  // Order ids as shops write them, and keys whose hash is negative as an int32 (most are).
  std::vector<std::string> keys = {"a", "order-1", "ORD-2026-000042", "ünïcödé", "x/y:z"};
  for (int i = 0; i < 200; ++i) keys.push_back("order-" + std::to_string(i * 7919));
  keys.push_back(std::string(300, 'k'));
  for (const std::string& key : keys) {
    ASSERT_EQ(producer->produce("orders_by_id", RdKafka::Topic::PARTITION_UA,
                                RdKafka::Producer::RK_MSG_COPY, const_cast<char*>("v"), 1,
                                key.data(), key.size(), 0, nullptr),
              RdKafka::ERR_NO_ERROR);
  }
  ASSERT_EQ(producer->flush(30000), RdKafka::ERR_NO_ERROR);
  ASSERT_EQ(deliveries.partitions.size(), keys.size());
  std::vector<int> used(kPartitions, 0);
  for (const std::string& key : keys) {
    EXPECT_EQ(Fnv1aPartition(key, kPartitions), deliveries.partitions[key]) << key;
    ++used[deliveries.partitions[key]];
  }
  for (int p = 0; p < kPartitions; ++p) EXPECT_GT(used[p], 0) << "partition " << p;
}

}  // namespace
}  // namespace tracekeep::kafka
