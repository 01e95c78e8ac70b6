// The Kafka receiver end to end: a real Apache Kafka broker (KRaft, one node, loopback), OTLP
// records produced the way OpenTelemetry's kafka exporter writes them (otlp_proto, one record per
// trace keyed by its 32-hex trace id, FNV-1a partitioner, by librdkafka in this test), the real
// tracekeep consuming them. Error traces are kept, the group's committed offsets advance, and a
// kill -9 mid-stream loses nothing: what was committed is in the intake journal, the rest is
// replayed from the topic.
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafkacpp.h>
#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/common/ids.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/kafka_broker.h"
#include "tests/e2e/process.h"
#include "tests/e2e/shop_traces.h"

namespace tracekeep::e2e {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;

constexpr char kTopic[] = "otlp_spans";
constexpr int kPartitions = 3;

// Trace `n`: three spans of "shop-api"; every third trace has an error span.
collector::ExportTraceServiceRequest TraceRequest(uint32_t n, std::string* hex_trace_id) {
  return ShopTrace(n, {'\x5a', '\x02', "op-", /*error=*/n % 3 == 0}, hex_trace_id);
}
std::string TraceRecord(uint32_t n, std::string* hex_trace_id) {
  return TraceRequest(n, hex_trace_id).SerializeAsString();
}

// Produces like the OpenTelemetry kafka exporter with partition_traces_by_id: key = trace id in
// hex, FNV-1a partitioner (Sarama's hash), acks=all, idempotent.
class Producer {
 public:
  explicit Producer(const std::string& bootstrap, std::string topic = kTopic)
      : topic_(std::move(topic)) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    for (const auto& [k, v] :
         std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", bootstrap},
                                                          {"partitioner", "fnv1a"},
                                                          {"acks", "all"},
                                                          {"enable.idempotence", "true"},
                                                          {"linger.ms", "5"}}) {
      EXPECT_EQ(conf->set(k, v, error), RdKafka::Conf::CONF_OK) << k << ": " << error;
    }
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    EXPECT_NE(producer_, nullptr) << error;
  }
  void Send(const std::string& key, const std::string& value) {
    const RdKafka::ErrorCode err = producer_->produce(
        topic_, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, nullptr);
    EXPECT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
    producer_->poll(0);
  }
  // Waits until the broker acknowledged every record.
  void Flush() { ASSERT_EQ(producer_->flush(60000), RdKafka::ERR_NO_ERROR); }

 private:
  const std::string topic_;
  std::unique_ptr<RdKafka::Producer> producer_;
};

struct TopicRecord {
  std::string key, value;
};
// Reads `topic` from its beginning until `count` records came or `timeout` passed.
std::vector<TopicRecord> ReadTopic(const std::string& bootstrap, const std::string& topic,
                                   size_t count, absl::Duration timeout) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  conf->set("bootstrap.servers", bootstrap, error);
  conf->set("group.id", "e2e-reader", error);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), error));
  std::vector<RdKafka::TopicPartition*> tps;
  for (int p = 0; p < kPartitions; ++p) {
    tps.push_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  c->assign(tps);
  RdKafka::TopicPartition::destroy(tps);
  std::vector<TopicRecord> out;
  const absl::Time until = absl::Now() + timeout;
  while (out.size() < count && absl::Now() < until) {
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m == nullptr || m->err() != RdKafka::ERR_NO_ERROR) continue;
    out.push_back({m->key() != nullptr ? *m->key() : "",
                   std::string(static_cast<const char*>(m->payload()), m->len())});
  }
  c->close();
  return out;
}

// The sum over the topic's partitions of group `group`'s committed offsets (-1: cannot tell).
int64_t CommittedTotal(const std::string& bootstrap, const std::string& group,
                       const std::string& topic = kTopic) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  conf->set("bootstrap.servers", bootstrap, error);
  conf->set("group.id", group, error);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), error));
  std::vector<RdKafka::TopicPartition*> tps;
  for (int p = 0; p < kPartitions; ++p) tps.push_back(RdKafka::TopicPartition::create(topic, p));
  int64_t total = -1;
  if (c->committed(tps, 10000) == RdKafka::ERR_NO_ERROR) {
    total = 0;
    for (RdKafka::TopicPartition* tp : tps) total += tp->offset() >= 0 ? tp->offset() : 0;
  }
  RdKafka::TopicPartition::destroy(tps);
  c->close();
  return total;
}

struct Tracekeep {
  std::unique_ptr<ChildProcess> process;
  std::string admin, telemetry, grpc, log;
};

// `kafka_extra`: more entries of receivers.kafka's flow map; `grpc`: serve OTLP/gRPC too.
Tracekeep StartTracekeep(const std::string& dir, const std::string& bootstrap, int run,
                         const std::string& kafka_extra = "", bool grpc = false) {
  const std::string config = absl::StrCat(dir, "/tracekeep-", run, ".yaml");
  const std::string endpoints = absl::StrCat(dir, "/endpoints-", run, ".json");
  WriteFile(config, absl::StrCat(R"(data_dir: )", dir, R"(/data
receivers:
  otlp:
    protocols:
      grpc: {enabled: )",
                                 grpc ? "true, endpoint: \"127.0.0.1:0\"" : "false", R"(}
      http: {enabled: false}
  kafka: {enabled: true, brokers: [")",
                                 bootstrap, R"("], initial_offset: earliest, session_timeout: 6s)",
                                 kafka_extra, R"(}
sampler:
  decision_wait: 1s
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)"));
  Tracekeep t;
  t.log = absl::StrCat(dir, "/tracekeep-", run, ".log");
  t.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{TRACEKEEP_BIN, "--config", config, "--write-endpoints", endpoints},
      t.log);
  EXPECT_TRUE(WaitFor([&] { return !ReadFile(endpoints).empty(); }, absl::Seconds(60)))
      << ReadFile(t.log);
  t.admin = JsonValue(ReadFile(endpoints), "admin");
  t.telemetry = JsonValue(ReadFile(endpoints), "telemetry");
  t.grpc = JsonValue(ReadFile(endpoints), "otlp_grpc");
  return t;
}

bool Stored(const Tracekeep& t, const std::string& hex_trace_id) {
  CommandResult r =
      RunCommand({TRACEKEEPCTL_BIN, "--addr", t.admin, "--json", "trace", "get", hex_trace_id});
  return r.exit_code == 0 && r.output.find("op-0") != std::string::npos &&
         r.output.find("op-1") != std::string::npos && r.output.find("op-2") != std::string::npos;
}

// The value of one series (name with its labels, as exposed) on /metrics; -1 when absent.
double Metric(const Tracekeep& t, const std::string& series) {
  const std::string text =
      RunCommand({"/usr/bin/curl", "-sf", "http://" + t.telemetry + "/metrics"}).output;
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

using KafkaE2eTest = KafkaBrokerSuite<kPartitions>;

TEST_F(KafkaE2eTest, KeepsErrorTracesFromTheTopicCommitsAndSurvivesKill9) {
  TempDir dir;
  KafkaBroker& broker = *broker_;

  Producer producer(broker.bootstrap());
  std::vector<std::string> errors, healthy;
  uint32_t next = 1;
  int64_t produced = 0;
  auto produce = [&](int traces) {
    for (int i = 0; i < traces; ++i, ++next) {
      std::string id;
      const std::string record = TraceRecord(next, &id);
      producer.Send(id, record);
      (next % 3 == 0 ? errors : healthy).push_back(id);
      ++produced;
    }
    producer.Flush();
  };

  // Before tracekeep runs (initial_offset: earliest), with one record that is not OTLP.
  produce(30);
  producer.Send("not-a-trace", "\x0a\xff\xff garbage");
  ++produced;
  producer.Flush();

  Tracekeep t = StartTracekeep(dir.path(), broker.bootstrap(), 0);
  for (const std::string& id : errors) {
    ASSERT_TRUE(WaitFor([&] { return Stored(t, id); }, absl::Seconds(60)))
        << "error trace " << id << " not kept; tracekeep log:\n"
        << ReadFile(t.log);
  }
  // Offsets are committed past every record, the malformed one included.
  EXPECT_TRUE(WaitFor([&] { return CommittedTotal(broker.bootstrap(), "tracekeep") == produced; },
                      absl::Seconds(30)))
      << CommittedTotal(broker.bootstrap(), "tracekeep") << " of " << produced;
  EXPECT_EQ(
      Metric(t, R"(tracekeep_kafka_records_skipped_total{reason="malformed",topic="otlp_spans"})"),
      1);
  EXPECT_EQ(Metric(t, R"(tracekeep_kafka_records_consumed_total{topic="otlp_spans"})"), 31);
  EXPECT_EQ(Metric(t, R"(tracekeep_kafka_spans_accepted_total{topic="otlp_spans"})"), 90);
  EXPECT_EQ(Metric(t, R"(tracekeep_kafka_partition_assigned{partition="0",topic="otlp_spans"})"),
            1);
  EXPECT_TRUE(WaitFor(
      [&] {
        return Metric(t, R"(tracekeep_kafka_consumer_lag{partition="0",topic="otlp_spans"})") == 0;
      },
      absl::Seconds(10)));
  EXPECT_FALSE(Stored(t, healthy.front())) << "a healthy trace was kept";
  // tracekeepctl status shows the member and the partitions it owns, nothing left to read.
  const std::string status = RunCommand({TRACEKEEPCTL_BIN, "--addr", t.admin, "status"}).output;
  EXPECT_NE(status.find("kafka group       tracekeep, member "), std::string::npos) << status;
  EXPECT_NE(status.find("otlp_spans/0  committed "), std::string::npos) << status;
  EXPECT_NE(status.find("kafka records     31 consumed, 1 skipped"), std::string::npos) << status;

  // Mid-stream kill -9: once part of the next records is committed.
  const int64_t committed_before = CommittedTotal(broker.bootstrap(), "tracekeep");
  produce(60);
  ASSERT_TRUE(
      WaitFor([&] { return CommittedTotal(broker.bootstrap(), "tracekeep") > committed_before; },
              absl::Seconds(30)));
  ASSERT_TRUE(t.process->Signal(SIGKILL));
  EXPECT_EQ(t.process->Wait(absl::Seconds(30)), 128 + SIGKILL);
  produce(30);  // while it is down

  Tracekeep t2 = StartTracekeep(dir.path(), broker.bootstrap(), 1);
  int missing = 0;
  for (const std::string& id : errors) {
    if (!WaitFor([&] { return Stored(t2, id); }, absl::Seconds(missing == 0 ? 60 : 1)) &&
        ++missing <= 5) {
      ADD_FAILURE() << "error trace " << id << " lost across kill -9";
    }
  }
  EXPECT_EQ(missing, 0) << "of " << errors.size() << " error traces; log:\n" << ReadFile(t2.log);
  EXPECT_TRUE(WaitFor([&] { return CommittedTotal(broker.bootstrap(), "tracekeep") == produced; },
                      absl::Seconds(30)));
  ASSERT_TRUE(t2.process->Signal(SIGTERM));
  EXPECT_EQ(t2.process->Wait(absl::Seconds(60)), 0) << ReadFile(t2.log);
}

TEST_F(KafkaE2eTest, GatewayAcknowledgesOnlyWhatKafkaHoldsAndSamplesFromTheTopic) {
  TempDir dir;
  const std::string topic = "gateway_spans";
  // The topic exists before the consumer subscribes (operators create it up front).
  Producer warm_up(broker_->bootstrap(), topic);
  std::string warm_up_id;
  warm_up.Send("warm-up", TraceRecord(100000, &warm_up_id));
  warm_up.Flush();

  Tracekeep t =
      StartTracekeep(dir.path(), broker_->bootstrap(), 0,
                     ", topic: gateway_spans, group_id: tracekeep-gateway, gateway: true", true);
  auto stub = collector::TraceService::NewStub(
      grpc::CreateChannel(t.grpc, grpc::InsecureChannelCredentials()));
  std::set<std::string> sent;
  std::vector<std::string> errors, healthy;
  for (uint32_t n = 1; n <= 12; ++n) {
    std::string id;
    collector::ExportTraceServiceRequest request = TraceRequest(n, &id);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    collector::ExportTraceServiceResponse response;
    const grpc::Status status = stub->Export(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << ReadFile(t.log);
    sent.insert(id);
    (n % 3 == 0 ? errors : healthy).push_back(id);
  }
  // Acknowledged means in Kafka: one record per trace, keyed by its hex id, holding its spans.
  std::vector<TopicRecord> records = ReadTopic(broker_->bootstrap(), topic, 13, absl::Seconds(30));
  std::set<std::string> keys;
  for (const TopicRecord& r : records) {
    if (r.key == "warm-up") continue;
    keys.insert(r.key);
    collector::ExportTraceServiceRequest request;
    ASSERT_TRUE(request.ParseFromString(r.value));
    ASSERT_EQ(request.resource_spans_size(), 1);
    ASSERT_EQ(request.resource_spans(0).scope_spans(0).spans_size(), 3);
    EXPECT_EQ(ToHex(request.resource_spans(0).scope_spans(0).spans(0).trace_id()), r.key);
  }
  EXPECT_EQ(keys, sent);
  EXPECT_EQ(Metric(t, R"(tracekeep_kafka_gateway_records_produced_total{topic="gateway_spans"})"),
            12);

  // And the member consuming the topic samples them: errors kept, healthy ones not.
  for (const std::string& id : errors) {
    EXPECT_TRUE(WaitFor([&] { return Stored(t, id); }, absl::Seconds(60)))
        << "error trace " << id << " not kept; log:\n"
        << ReadFile(t.log);
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        return Metric(t, R"(tracekeep_kafka_spans_accepted_total{topic="gateway_spans"})") == 39;
      },
      absl::Seconds(30)));
  EXPECT_FALSE(Stored(t, healthy.front()));
  ASSERT_TRUE(t.process->Signal(SIGTERM));
  EXPECT_EQ(t.process->Wait(absl::Seconds(60)), 0) << ReadFile(t.log);
}

TEST_F(KafkaE2eTest, RekeysBatchRecordsSoEveryTraceIsSampledWhole) {
  TempDir dir;
  // An exporter without partition_traces_by_id: whole batches, no key. The topics exist up front.
  Producer source(broker_->bootstrap(), "batch_spans");
  Producer rekeyed(broker_->bootstrap(), "batch_spans_by_trace");
  std::string warm_up_id;
  rekeyed.Send("warm-up", TraceRecord(200000, &warm_up_id));
  rekeyed.Flush();
  collector::ExportTraceServiceRequest batch;
  std::vector<std::string> errors;
  for (uint32_t n = 301; n <= 312; ++n) {
    std::string id;
    collector::ExportTraceServiceRequest one = TraceRequest(n, &id);
    batch.MergeFrom(one);
    if (n % 3 == 0) errors.push_back(id);
  }
  source.Send("", batch.SerializeAsString());
  source.Flush();

  Tracekeep t = StartTracekeep(
      dir.path(), broker_->bootstrap(), 0,
      ", topic: batch_spans, rekey_topic: batch_spans_by_trace, group_id: tracekeep-batch");
  for (const std::string& id : errors) {
    EXPECT_TRUE(WaitFor([&] { return Stored(t, id); }, absl::Seconds(60)))
        << "error trace " << id << " not kept; log:\n"
        << ReadFile(t.log);
  }
  EXPECT_EQ(Metric(t, R"(tracekeep_kafka_records_rekeyed_total{topic="batch_spans"})"), 1);
  EXPECT_EQ(Metric(t, R"(tracekeep_kafka_spans_rekeyed_total{topic="batch_spans"})"), 36);
  // One record per trace in the re-key topic (plus the warm-up), keyed by trace id.
  std::vector<TopicRecord> records =
      ReadTopic(broker_->bootstrap(), "batch_spans_by_trace", 13, absl::Seconds(30));
  EXPECT_EQ(records.size(), 13u);
  EXPECT_TRUE(WaitFor(
      [&] {
        return CommittedTotal(broker_->bootstrap(), "tracekeep-batch", "batch_spans") == 1 &&
               CommittedTotal(broker_->bootstrap(), "tracekeep-batch", "batch_spans_by_trace") ==
                   13;
      },
      absl::Seconds(30)));
  ASSERT_TRUE(t.process->Signal(SIGTERM));
  EXPECT_EQ(t.process->Wait(absl::Seconds(60)), 0) << ReadFile(t.log);
}

// Last: it restarts the suite's broker.
TEST_F(KafkaE2eTest, ZBrokerRestartUnderLoadLosesNothingAcknowledged) {
  TempDir dir;
  const std::string topic = "restart_spans";
  Producer warm_up(broker_->bootstrap(), topic);
  std::string warm_up_id;
  warm_up.Send("warm-up", TraceRecord(400000, &warm_up_id));
  warm_up.Flush();
  Tracekeep t =
      StartTracekeep(dir.path(), broker_->bootstrap(), 0,
                     ", topic: restart_spans, group_id: tracekeep-restart, gateway: true", true);
  auto stub = collector::TraceService::NewStub(
      grpc::CreateChannel(t.grpc, grpc::InsecureChannelCredentials()));
  // Error traces only (n a multiple of 3): everything acknowledged must end up stored.
  std::vector<std::string> acknowledged;
  int refused = 0;
  uint32_t n = 600000;
  auto send = [&](int count) {
    for (int i = 0; i < count; ++i, n += 3) {
      std::string id;
      collector::ExportTraceServiceRequest request = TraceRequest(n, &id);
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      collector::ExportTraceServiceResponse response;
      if (stub->Export(&context, request, &response).ok()) {
        acknowledged.push_back(id);
      } else {
        ++refused;
      }
    }
  };
  send(20);
  broker_->Kill();
  ASSERT_TRUE(broker_->Restart(absl::Seconds(90)).ok());
  send(20);
  EXPECT_EQ(acknowledged.size(), 40u) << refused << " refused";
  int missing = 0;
  for (const std::string& id : acknowledged) {
    if (!WaitFor([&] { return Stored(t, id); }, absl::Seconds(missing == 0 ? 90 : 1)) &&
        ++missing <= 5) {
      ADD_FAILURE() << "acknowledged trace " << id << " lost across the broker restart";
    }
  }
  EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << "; log:\n" << ReadFile(t.log);
  ASSERT_TRUE(t.process->Signal(SIGTERM));
  EXPECT_EQ(t.process->Wait(absl::Seconds(60)), 0) << ReadFile(t.log);
}

}  // namespace
}  // namespace tracekeep::e2e
