// librdkafka's built-in mock cluster for the Kafka tests, and what they read back from it.
#ifndef TRACEKEEP_TESTS_COLLECTOR_KAFKA_MOCK_CLUSTER_H_
#define TRACEKEEP_TESTS_COLLECTOR_KAFKA_MOCK_CLUSTER_H_

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tracekeep::kafka {

inline constexpr char kTopic[] = "otlp_spans";
inline constexpr char kRekeyTopic[] = "otlp_spans_by_trace";

inline bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > until) return condition();
    absl::SleepFor(absl::Milliseconds(5));  // polling a condition, bounded by `timeout`
  }
  return true;
}

// A mock cluster of one broker (it lives in a producer instance) with a topic of 2 partitions.
class MockCluster {
 public:
  MockCluster() {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    EXPECT_EQ(conf->set("test.mock.num.brokers", "1", error), RdKafka::Conf::CONF_OK) << error;
    EXPECT_EQ(conf->set("partitioner", "fnv1a", error), RdKafka::Conf::CONF_OK) << error;
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    EXPECT_NE(producer_, nullptr) << error;
    cluster_ = rd_kafka_handle_mock_cluster(producer_->c_ptr());
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
    EXPECT_EQ(rd_kafka_mock_topic_create(cluster_, kTopic, 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(rd_kafka_mock_topic_create(cluster_, kRekeyTopic, 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void CreateTopic(const std::string& topic, int partitions) {
    EXPECT_EQ(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Takes the broker down (connections refused) or up again.
  void SetBrokerUp(bool up) {
    if (up) {
      rd_kafka_mock_broker_set_up(cluster_, 1);
    } else {
      rd_kafka_mock_broker_set_down(cluster_, 1);
    }
  }

  struct Record {
    int32_t partition;
    std::string key;
    std::string value;
  };
  // Reads `topic` from the beginning until `count` records came (or `timeout` passed).
  std::vector<Record> ReadAll(size_t count, absl::Duration timeout,
                              const std::string& topic = kTopic) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    conf->set("bootstrap.servers", bootstraps_, error);
    conf->set("group.id", "reader", error);
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), error));
    std::vector<RdKafka::TopicPartition*> tps = {
        RdKafka::TopicPartition::create(topic, 0, RdKafka::Topic::OFFSET_BEGINNING),
        RdKafka::TopicPartition::create(topic, 1, RdKafka::Topic::OFFSET_BEGINNING)};
    c->assign(tps);
    RdKafka::TopicPartition::destroy(tps);
    std::vector<Record> out;
    const absl::Time until = absl::Now() + timeout;
    while (out.size() < count && absl::Now() < until) {
      std::unique_ptr<RdKafka::Message> m(c->consume(100));
      if (m == nullptr || m->err() != RdKafka::ERR_NO_ERROR) continue;
      out.push_back({m->partition(), m->key() != nullptr ? *m->key() : "",
                     std::string(static_cast<const char*>(m->payload()), m->len())});
    }
    c->close();
    return out;
  }

  const std::string& bootstraps() const { return bootstraps_; }

  // Produces one record to `partition` and waits for its delivery.
  void Produce(int32_t partition, const std::string& value, const std::string& key = "") {
    const RdKafka::ErrorCode err = producer_->produce(
        kTopic, partition, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
        value.size(), key.empty() ? nullptr : key.data(), key.size(), 0, nullptr);
    ASSERT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
    ASSERT_EQ(producer_->flush(10000), RdKafka::ERR_NO_ERROR);
  }

  // Produces `values` to `partition` together (one batch, as a busy producer writes) and waits
  // for their delivery.
  void ProduceBatch(int32_t partition, const std::vector<std::string>& values) {
    // rd_kafka_produce_batch() puts all of them on the partition's queue at once, so the
    // producer's thread cannot send the first alone (as produce() one by one can, on a busy
    // machine, after linger.ms): they reach the log as one message set, fetched together.
    rd_kafka_topic_t* topic = rd_kafka_topic_new(producer_->c_ptr(), kTopic, nullptr);
    ASSERT_NE(topic, nullptr);
    std::vector<rd_kafka_message_t> messages(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      messages[i].payload = const_cast<char*>(values[i].data());
      messages[i].len = values[i].size();
    }
    const int queued = rd_kafka_produce_batch(topic, partition, RD_KAFKA_MSG_F_COPY,
                                              messages.data(), static_cast<int>(messages.size()));
    rd_kafka_topic_destroy(topic);
    ASSERT_EQ(queued, static_cast<int>(values.size()));
    ASSERT_EQ(producer_->flush(10000), RdKafka::ERR_NO_ERROR);
  }

  // The group's committed offset of `partition` as the broker has it (-1001: none).
  int64_t Committed(const std::string& group, int32_t partition,
                    const std::string& topic = kTopic) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    conf->set("bootstrap.servers", bootstraps_, error);
    conf->set("group.id", group, error);
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), error));
    std::vector<RdKafka::TopicPartition*> tps = {RdKafka::TopicPartition::create(topic, partition)};
    int64_t offset = -2;
    if (c->committed(tps, 5000) == RdKafka::ERR_NO_ERROR) offset = tps[0]->offset();
    RdKafka::TopicPartition::destroy(tps);
    c->close();
    return offset;
  }

 private:
  std::unique_ptr<RdKafka::Producer> producer_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstraps_;
};

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_TESTS_COLLECTOR_KAFKA_MOCK_CLUSTER_H_
