// Gateway mode: the OTLP receivers' spans go into the Kafka topic instead of straight to the
// sampler, one record per trace keyed by its 32-hex trace id (the record OpenTelemetry's kafka
// exporter writes with partition_traces_by_id), through an idempotent producer with acks=all and
// the FNV-1a partitioner the OpenTelemetry exporter uses. Offer returns only once Kafka
// acknowledged every record, so a client is acknowledged only for spans Kafka holds; the Kafka
// receiver of whichever member owns the partition then samples them.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_KAFKA_GATEWAY_H_
#define TRACEKEEP_COLLECTOR_KAFKA_KAFKA_GATEWAY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::kafka {

struct KafkaGatewayOptions {
  // Bootstrap brokers, host:port. Required.
  std::vector<std::string> brokers;
  // The topic records are produced to. Default: otlp_spans.
  std::string topic = "otlp_spans";
  // How long an Offer waits for Kafka's acknowledgement of every record before the request is
  // refused as kUnavailable (the client retries; records that did get through are then
  // duplicates, which the pipeline tolerates). Default: 10s.
  absl::Duration ack_timeout = absl::Seconds(10);
  // Records the producer may hold unacknowledged; beyond that Offer refuses with
  // kResourceExhausted. Default: 100000.
  int max_in_flight_records = 100000;
  // Key records by the first of the trace's linked_keys (an order id, for the order topic)
  // instead of its hex trace id; a trace without one is keyed by its trace id. Default: false.
  bool key_by_linked_key = false;
  // Further librdkafka properties, set last (tests).
  std::map<std::string, std::string> client_properties;
};

// The number of partitions of `topic` (asking the brokers creates it where they create topics on
// first use). kUnavailable when the brokers do not answer within `timeout`.
[[nodiscard]] absl::StatusOr<int32_t> TopicPartitionCount(
    const std::vector<std::string>& brokers, const std::string& topic, absl::Duration timeout,
    const std::map<std::string, std::string>& client_properties = {});

struct KafkaGatewayStats {
  std::atomic<uint64_t> records_produced{0};  // acknowledged by Kafka
  std::atomic<uint64_t> spans_produced{0};
  std::atomic<uint64_t> produce_errors{0};  // records Kafka did not acknowledge
  std::atomic<uint64_t> requests_refused{0};
  // Time from the first produce of an Offer to the last acknowledgement, summed (seconds) and
  // counted, for the mean produce latency.
  std::atomic<uint64_t> ack_wait_nanos{0};
  std::atomic<uint64_t> acked_offers{0};
};

class KafkaGateway final : public SpanIntake, public Component {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KafkaGateway>> Create(
      const KafkaGatewayOptions& options);
  ~KafkaGateway() override;

  // Produces one record per trace and waits for Kafka's acknowledgement of all of them. Reads
  // `traces` only: whatever the answer, the caller may offer the same vector again.
  // kResourceExhausted: the producer's queue is full; kUnavailable: Kafka did not acknowledge
  // within ack_timeout, or shutting down. Thread-safe.
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;

  // Produces one record as it is, without waiting for Kafka's acknowledgement (it is counted in
  // stats() when it comes). kResourceExhausted: the producer's queue is full; kUnavailable:
  // shutting down. Thread-safe.
  absl::Status ProduceAsync(absl::string_view key, absl::string_view value);

  absl::Status Start() override;
  // Refuses new Offers, waits for what is in flight until `deadline`. Idempotent; Offers racing
  // with it still complete (the producer lives until the destructor).
  void Shutdown(absl::Time deadline) override;

  const KafkaGatewayStats& stats() const;

 private:
  class Impl;
  explicit KafkaGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_KAFKA_GATEWAY_H_
