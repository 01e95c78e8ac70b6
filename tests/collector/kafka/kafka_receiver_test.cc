// The Kafka receiver against librdkafka's built-in mock cluster: records in, spans to the intake,
// offsets committed only up to durable records, bad records skipped, backpressure without loss.
#include "collector/kafka/kafka_receiver.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <librdkafka/rdkafkacpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/collector/receiver/fake_intake.h"

namespace tracekeep::kafka {
namespace {

using receiver::FakeIntake;
using receiver::MakeRequest;

constexpr char kTopic[] = "otlp_spans";

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
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
    rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(producer_->c_ptr());
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster);
    EXPECT_EQ(rd_kafka_mock_topic_create(cluster, kTopic, 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
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

  // The group's committed offset of `partition` as the broker has it (-1001: none).
  int64_t Committed(const std::string& group, int32_t partition) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    conf->set("bootstrap.servers", bootstraps_, error);
    conf->set("group.id", group, error);
    std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), error));
    std::vector<RdKafka::TopicPartition*> tps = {
        RdKafka::TopicPartition::create(kTopic, partition)};
    int64_t offset = -2;
    if (c->committed(tps, 5000) == RdKafka::ERR_NO_ERROR) offset = tps[0]->offset();
    RdKafka::TopicPartition::destroy(tps);
    c->close();
    return offset;
  }

 private:
  std::unique_ptr<RdKafka::Producer> producer_;
  std::string bootstraps_;
};

std::string Record(int spans) { return MakeRequest(spans).SerializeAsString(); }

class KafkaReceiverTest : public ::testing::Test {
 protected:
  KafkaReceiverOptions Options() {
    KafkaReceiverOptions o;
    o.brokers = {cluster_.bootstraps()};
    o.group_id = group_;
    o.start_at_earliest = true;
    o.commit_interval = absl::Milliseconds(50);
    o.poll_timeout = absl::Milliseconds(20);
    // The mock cluster lets a new member join only when the members it knows rejoined or timed
    // out; a short session bounds that wait.
    o.client_properties["session.timeout.ms"] = "6000";
    o.client_properties["heartbeat.interval.ms"] = "500";
    return o;
  }
  std::unique_ptr<KafkaReceiver> Start(const KafkaReceiverOptions& o) {
    auto r = KafkaReceiver::Create(o, &intake_);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE((*r)->Start().ok());
    return std::move(*r);
  }

  MockCluster cluster_;
  FakeIntake intake_;
  std::string group_ = "tracekeep-test";
};

TEST_F(KafkaReceiverTest, OffersEveryRecordAndCommitsPastIt) {
  cluster_.Produce(0, Record(4));
  cluster_.Produce(0, Record(2));
  cluster_.Produce(1, Record(3));
  auto r = Start(Options());
  ASSERT_TRUE(WaitFor([&] { return intake_.spans() == 9; }, absl::Seconds(30))) << intake_.spans();
  // Journal mode (durable_before unset): taken = durable, so both partitions commit their end.
  ASSERT_TRUE(
      WaitFor([&] { return r->Partition(0).committed == 2 && r->Partition(1).committed == 1; },
              absl::Seconds(30)));
  EXPECT_EQ(cluster_.Committed(group_, 0), 2);
  EXPECT_EQ(cluster_.Committed(group_, 1), 1);
  EXPECT_EQ(r->stats().records_consumed.load(), 3u);
  EXPECT_EQ(r->stats().spans_accepted.load(), 9u);
  EXPECT_GE(r->stats().rebalances.load(), 1u);
  EXPECT_TRUE(r->Partition(0).assigned);
  r->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(KafkaReceiverTest, SkipsARecordThatIsNotOtlpAndGoesOn) {
  cluster_.Produce(0, Record(2));
  cluster_.Produce(0, "this is not a protobuf \xff\xff\xff");
  cluster_.Produce(0, Record(1));
  auto r = Start(Options());
  ASSERT_TRUE(WaitFor([&] { return intake_.spans() == 3; }, absl::Seconds(30)));
  EXPECT_EQ(r->stats().records_skipped[static_cast<int>(SkipReason::kMalformed)].load(), 1u);
  EXPECT_EQ(r->stats().records_consumed.load(), 3u);
  // The partition is not stuck behind the bad record: its offset is committed past it.
  ASSERT_TRUE(WaitFor([&] { return cluster_.Committed(group_, 0) == 3; }, absl::Seconds(30)));
  r->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(KafkaReceiverTest, CommitsOnlyRecordsWhoseSpansAreDurable) {
  // No journal: spans are durable once the sampler's low-water mark passed their arrival.
  FakeClock clock;
  std::mutex mu;
  absl::Time mark = absl::InfinitePast();
  KafkaReceiverOptions o = Options();
  o.clock = &clock;
  o.durable_before = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return mark;
  };
  cluster_.Produce(0, Record(2));
  cluster_.Produce(0, Record(2));
  auto r = Start(o);
  ASSERT_TRUE(WaitFor([&] { return intake_.spans() == 4; }, absl::Seconds(30)));
  // Several commit intervals pass: nothing may be committed while the spans are pending.
  ASSERT_TRUE(WaitFor([&] { return r->Partition(0).position == 2; }, absl::Seconds(30)));
  const uint64_t commits = r->stats().commits.load();
  // Four commit intervals without a commit (a bounded wait for something that must not happen).
  EXPECT_FALSE(
      WaitFor([&] { return r->stats().commits.load() != commits; }, absl::Milliseconds(200)));
  EXPECT_EQ(r->Partition(0).committed, -1);
  {
    std::lock_guard<std::mutex> lock(mu);
    mark = clock.Now() + absl::Nanoseconds(1);  // the sampler decided everything taken so far
  }
  ASSERT_TRUE(WaitFor([&] { return cluster_.Committed(group_, 0) == 2; }, absl::Seconds(30)));
  r->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(KafkaReceiverTest, OverCapacityPausesAndLosesNothing) {
  intake_.RefuseWith(absl::ResourceExhaustedError("sampler full"));
  for (int i = 1; i <= 3; ++i) cluster_.Produce(0, Record(i));
  auto r = Start(Options());
  ASSERT_TRUE(WaitFor([&] { return r->stats().intake_waits.load() >= 3; }, absl::Seconds(30)));
  EXPECT_EQ(intake_.spans(), 0);
  EXPECT_EQ(r->stats().records_consumed.load(), 0u);
  EXPECT_EQ(cluster_.Committed(group_, 0), -1001);  // nothing committed while refused
  intake_.RefuseWith(absl::OkStatus());
  ASSERT_TRUE(WaitFor([&] { return intake_.spans() == 6; }, absl::Seconds(30)));
  EXPECT_EQ(r->stats().records_consumed.load(), 3u);
  EXPECT_EQ(intake_.offers() - static_cast<int>(r->stats().intake_waits.load()), 3);
  ASSERT_TRUE(WaitFor([&] { return cluster_.Committed(group_, 0) == 3; }, absl::Seconds(30)));
  r->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST_F(KafkaReceiverTest, AnotherMemberResumesAtTheCommittedOffset) {
  cluster_.Produce(1, Record(1));
  {
    auto r = Start(Options());
    ASSERT_TRUE(WaitFor([&] { return intake_.spans() == 1; }, absl::Seconds(30)));
    r->Shutdown(absl::Now() + absl::Seconds(5));  // commits on revoke/close
  }
  EXPECT_EQ(cluster_.Committed(group_, 1), 1);
  cluster_.Produce(1, Record(5));
  auto r = Start(Options());
  ASSERT_TRUE(WaitFor([&] { return intake_.spans() == 6; }, absl::Seconds(30)));
  EXPECT_EQ(r->stats().records_consumed.load(), 1u);  // the first record was not read again
  r->Shutdown(absl::Now() + absl::Seconds(5));
}

TEST(KafkaReceiverOptionsTest, RefusesMissingBrokers) {
  FakeIntake intake;
  KafkaReceiverOptions o;
  auto r = KafkaReceiver::Create(o, &intake);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "kafka receiver: brokers must list at least one host:port");
}

}  // namespace
}  // namespace tracekeep::kafka
