#include "collector/kafka/kafka_gateway.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/kafka/client_conf.h"
#include "collector/pipeline/otlp_convert.h"

namespace tracekeep::kafka {

namespace {

// The records of one Offer still waiting for Kafka's acknowledgement.
struct PendingOffer {
  std::mutex mu;
  std::condition_variable done;
  int waiting = 0;
  RdKafka::ErrorCode first_error = RdKafka::ERR_NO_ERROR;
};

}  // namespace

class KafkaGateway::Impl final : public RdKafka::DeliveryReportCb {
 public:
  explicit Impl(const KafkaGatewayOptions& options) : options_(options) {}
  ~Impl() override {
    Shutdown(absl::Now());
    stop_polling_.store(true);
    if (poller_.joinable()) poller_.join();
    producer_.reset();
  }

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> made = ClientConf(
        "kafka gateway",
        {
            {"bootstrap.servers", absl::StrJoin(options_.brokers, ",")},
            {"client.id", "tracekeep-gateway"},
            // No loss, no reordering, no duplicates from the producer's own retries.
            {"enable.idempotence", "true"},
            {"acks", "all"},
            // The partitioner of OpenTelemetry's kafka exporter (Sarama's FNV-1a hash of the key).
            {"partitioner", "fnv1a"},
            {"linger.ms", "5"},
            {"queue.buffering.max.messages", std::to_string(options_.max_in_flight_records)},
            {"message.timeout.ms", std::to_string(absl::ToInt64Milliseconds(options_.ack_timeout))},
        },
        options_.client_properties);
    if (!made.ok()) return made.status();
    std::unique_ptr<RdKafka::Conf> conf = std::move(*made);
    std::string error;
    if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(this), error) !=
        RdKafka::Conf::CONF_OK) {
      return absl::InternalError(absl::StrCat("kafka gateway: dr_cb: ", error));
    }
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    if (producer_ == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka gateway: cannot create the producer: ", error));
    }
    return absl::OkStatus();
  }

  absl::Status Start() {
    poller_ = std::thread([this] {
      while (!stop_polling_.load()) producer_->poll(100);
    });
    TK_LOG(Info) << "kafka gateway: producing accepted spans to topic " << options_.topic << " on "
                 << absl::StrJoin(options_.brokers, ",");
    return absl::OkStatus();
  }

  // Offers racing with it still complete: the producer and its polling thread live until the
  // destructor.
  void Shutdown(absl::Time deadline) {
    if (shut_down_.exchange(true)) return;
    if (producer_ != nullptr) {
      const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
      producer_->flush(static_cast<int>(ms));
    }
  }

  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
    if (shut_down_.load()) {
      stats_.requests_refused.fetch_add(1, std::memory_order_relaxed);
      return absl::UnavailableError("the kafka gateway is shutting down");
    }
    auto pending = std::make_shared<PendingOffer>();
    const absl::Time start = absl::Now();
    absl::Status refused;
    for (const TraceSpans& t : traces) {
      std::vector<const SpanRecord*> spans;
      spans.reserve(t.spans.size());
      for (const SpanRecord& s : t.spans) spans.push_back(&s);
      // Written from the bytes the receiver kept: no span is parsed again.
      std::string value = SerializeWireRequest(spans);
      const std::string key = options_.key_by_linked_key && !t.linked_keys.empty()
                                  ? t.linked_keys.front()
                                  : ToHex(t.trace_id);
      {
        std::lock_guard<std::mutex> lock(pending->mu);
        ++pending->waiting;
      }
      // The callback gets its own reference to `pending`, released with the delivery report.
      auto* opaque = new std::shared_ptr<PendingOffer>(pending);
      const RdKafka::ErrorCode err = producer_->produce(
          options_.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          value.data(), value.size(), key.data(), key.size(), 0, opaque);
      if (err != RdKafka::ERR_NO_ERROR) {
        delete opaque;
        {
          std::lock_guard<std::mutex> lock(pending->mu);
          --pending->waiting;
        }
        refused =
            err == RdKafka::ERR__QUEUE_FULL
                ? absl::ResourceExhaustedError("the kafka gateway's producer queue is full")
                : absl::UnavailableError(absl::StrCat("kafka gateway: producing to ",
                                                      options_.topic, ": ", RdKafka::err2str(err)));
        break;
      }
    }
    // Wait for what was produced even when refusing, so that no report outlives the request.
    std::unique_lock<std::mutex> lock(pending->mu);
    const bool all_reported = pending->done.wait_for(
        lock, absl::ToChronoMilliseconds(options_.ack_timeout + absl::Seconds(5)),
        [&] { return pending->waiting == 0; });
    if (!refused.ok()) {
      stats_.requests_refused.fetch_add(1, std::memory_order_relaxed);
      return refused;
    }
    if (!all_reported || pending->first_error != RdKafka::ERR_NO_ERROR) {
      stats_.requests_refused.fetch_add(1, std::memory_order_relaxed);
      return absl::UnavailableError(
          absl::StrCat("Kafka did not acknowledge the spans: ",
                       all_reported ? RdKafka::err2str(pending->first_error) : "timed out"));
    }
    stats_.spans_produced.fetch_add(static_cast<uint64_t>(span_count), std::memory_order_relaxed);
    stats_.ack_wait_nanos.fetch_add(
        static_cast<uint64_t>(absl::ToInt64Nanoseconds(absl::Now() - start)),
        std::memory_order_relaxed);
    stats_.acked_offers.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  absl::Status ProduceAsync(absl::string_view key, absl::string_view value) {
    if (shut_down_.load()) return absl::UnavailableError("the kafka producer is shutting down");
    const RdKafka::ErrorCode err = producer_->produce(
        options_.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, nullptr);
    if (err == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    stats_.produce_errors.fetch_add(1, std::memory_order_relaxed);
    return err == RdKafka::ERR__QUEUE_FULL
               ? absl::ResourceExhaustedError("the kafka producer's queue is full")
               : absl::UnavailableError(absl::StrCat("kafka: producing to ", options_.topic, ": ",
                                                     RdKafka::err2str(err)));
  }

  // On the polling thread.
  void dr_cb(RdKafka::Message& message) override {
    std::unique_ptr<std::shared_ptr<PendingOffer>> opaque(
        static_cast<std::shared_ptr<PendingOffer>*>(message.msg_opaque()));
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      stats_.records_produced.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.produce_errors.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Warning) << "kafka gateway: a record for " << options_.topic
                      << " was not acknowledged: " << message.errstr();
    }
    if (opaque == nullptr) return;
    PendingOffer& p = **opaque;
    std::lock_guard<std::mutex> lock(p.mu);
    if (message.err() != RdKafka::ERR_NO_ERROR && p.first_error == RdKafka::ERR_NO_ERROR) {
      p.first_error = message.err();
    }
    if (--p.waiting == 0) p.done.notify_all();
  }

  const KafkaGatewayStats& stats() const { return stats_; }

 private:
  const KafkaGatewayOptions options_;
  std::unique_ptr<RdKafka::Producer> producer_;
  KafkaGatewayStats stats_;
  std::thread poller_;
  std::atomic<bool> stop_polling_{false};
  std::atomic<bool> shut_down_{false};
};

absl::StatusOr<int32_t> TopicPartitionCount(
    const std::vector<std::string>& brokers, const std::string& topic, absl::Duration timeout,
    const std::map<std::string, std::string>& client_properties) {
  TK_ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf,
                      ClientConf("kafka",
                                 {{"bootstrap.servers", absl::StrJoin(brokers, ",")},
                                  {"client.id", "tracekeep-metadata"}},
                                 client_properties));
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  if (producer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka: cannot create a client: ", error));
  }
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(producer.get(), topic, nullptr, error));
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka: topic \"", topic, "\": ", error));
  }
  const absl::Time until = absl::Now() + timeout;
  std::string last_error = "no answer";
  // A topic created on first use may report no partitions (or an error) for a moment.
  while (absl::Now() < until) {
    RdKafka::Metadata* raw = nullptr;
    const int ms = static_cast<int>(std::max<int64_t>(
        100, std::min<int64_t>(5000, absl::ToInt64Milliseconds(until - absl::Now()))));
    const RdKafka::ErrorCode err = producer->metadata(false, t.get(), &raw, ms);
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    if (err != RdKafka::ERR_NO_ERROR) {
      last_error = RdKafka::err2str(err);
    } else {
      for (const RdKafka::TopicMetadata* tm : *metadata->topics()) {
        if (tm->topic() != topic) continue;
        if (tm->err() == RdKafka::ERR_NO_ERROR && !tm->partitions()->empty()) {
          return static_cast<int32_t>(tm->partitions()->size());
        }
        last_error = RdKafka::err2str(tm->err());
      }
    }
    producer->poll(100);
  }
  return absl::UnavailableError(absl::StrCat("kafka: the partitions of topic \"", topic,
                                             "\" not known after ", absl::FormatDuration(timeout),
                                             ": ", last_error));
}

absl::StatusOr<std::unique_ptr<KafkaGateway>> KafkaGateway::Create(
    const KafkaGatewayOptions& options) {
  if (options.brokers.empty()) {
    return absl::InvalidArgumentError("kafka gateway: brokers must list at least one host:port");
  }
  if (options.topic.empty()) return absl::InvalidArgumentError("kafka gateway: topic is empty");
  if (options.ack_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("kafka gateway: ack_timeout must be > 0");
  }
  auto impl = std::make_unique<Impl>(options);
  absl::Status s = impl->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<KafkaGateway>(new KafkaGateway(std::move(impl)));
}

KafkaGateway::KafkaGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaGateway::~KafkaGateway() = default;
absl::Status KafkaGateway::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  return impl_->Offer(std::move(traces), span_count);
}
absl::Status KafkaGateway::ProduceAsync(absl::string_view key, absl::string_view value) {
  return impl_->ProduceAsync(key, value);
}
absl::Status KafkaGateway::Start() { return impl_->Start(); }
void KafkaGateway::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }
const KafkaGatewayStats& KafkaGateway::stats() const { return impl_->stats(); }

}  // namespace tracekeep::kafka
