// The Kafka receiver: consumes OTLP spans that OpenTelemetry's kafka exporter (or anything
// writing the same records) produced into a topic, as one member of a consumer group, and hands
// them to the same SpanIntake the OTLP receivers feed.
//
// One record = one serialized OTLP TracesData / ExportTraceServiceRequest (encoding otlp_proto).
// A record that is not valid OTLP is counted, logged with its topic/partition/offset and skipped.
// When the intake refuses for capacity, consumption pauses and the same record is offered again:
// nothing is dropped. Offsets are committed only up to records whose spans are durable in
// tracekeep (see KafkaReceiverOptions::durable_before), every commit_interval, on revoke and at
// shutdown; a crash or a rebalance replays the rest (duplicates possible, never loss).
// With a rekey_topic, records that are not one trace keyed by its id are first re-produced there,
// one record per trace, so that the member owning a trace's partition sees all of it.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_KAFKA_RECEIVER_H_
#define TRACEKEEP_COLLECTOR_KAFKA_KAFKA_RECEIVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::kafka {

struct KafkaReceiverOptions {
  // Bootstrap brokers, host:port. Required.
  std::vector<std::string> brokers;
  // The topic to consume. Default: otlp_spans (the OpenTelemetry kafka exporter's default).
  std::string topic = "otlp_spans";
  // Where records that are not one trace keyed by its trace id (an OpenTelemetry exporter without
  // partition_traces_by_id writes whole batches, unkeyed) are re-produced, one record per trace
  // keyed by its hex id, before sampling: every member then sees whole traces. The receiver
  // consumes this topic too. "" = off: such records are sampled by whoever reads them. Default: "".
  std::string rekey_topic;
  // The consumer group. Default: tracekeep.
  std::string group_id = "tracekeep";
  // Where a partition without a committed offset starts: at its end (false: only new records)
  // or at its beginning (true). Default: false ("latest").
  bool start_at_earliest = false;
  // A member silent this long is dropped from the group and its partitions move to the others
  // (the broker bounds it: group.min/max.session.timeout.ms). Default: 45s (the Kafka default).
  absl::Duration session_timeout = absl::Seconds(45);
  // Records taken from the client in one go and handed to the intake one by one before it is
  // asked to make their effects durable (SpanIntake::Flush, one disk write for all of them) and
  // their offsets may be committed. Default: 500.
  int max_poll_records = 500;
  // How often durable progress is committed. Default: 1s.
  absl::Duration commit_interval = absl::Seconds(1);
  // How long one poll of the client waits for records; also the first pause before a record the
  // intake refused for capacity is offered again (doubling while refused, up to 1s). Default:
  // 100ms.
  absl::Duration poll_timeout = absl::Milliseconds(100);
  // When spans taken by the intake are durable. Unset: as soon as the intake took them (the intake
  // journal wrote them). Set: spans taken at time T are durable once durable_before() > T (with no
  // journal: the sampler's low-water mark, i.e. they were decided and kept ones stored). Called on
  // the consumer thread. Default: unset.
  std::function<absl::Time()> durable_before;
  // Called on the consumer thread the first time a partition is assigned to this member (metrics
  // register the partition's series). Default: none.
  std::function<void(const std::string& topic, int32_t partition)> on_new_partition;
  // Called on the consumer thread when a partition is assigned to this member, before any of
  // its records is handed to the intake, and when it is revoked or lost, after its durable
  // progress was committed and its fetched records dropped (its state may be released: the new
  // owner replays from the committed offset). Default: none.
  std::function<void(const std::string& topic, int32_t partition)> on_assigned;
  std::function<void(const std::string& topic, int32_t partition)> on_revoked;
  // Further librdkafka properties, set last (tests: test.mock.num.brokers, timeouts).
  std::map<std::string, std::string> client_properties;
  // The clock durable_before's answers are compared with (when spans were taken). Not owned.
  // Default: the real clock.
  Clock* clock = Clock::Real();
};

// Why a record was skipped.
enum class SkipReason {
  kMalformed = 0,  // not a valid OTLP protobuf TracesData
  kRefused,        // the intake refused its spans for good (not for capacity)
  kCount
};
const char* SkipReasonName(SkipReason reason);

struct KafkaReceiverStats {
  std::atomic<uint64_t> records_consumed{0};  // records read from the topic, skipped ones included
  std::atomic<uint64_t> records_skipped[static_cast<int>(SkipReason::kCount)] = {};
  std::atomic<uint64_t> spans_received{0};   // spans in the records (valid or not)
  std::atomic<uint64_t> spans_accepted{0};   // taken by the intake
  std::atomic<uint64_t> spans_rejected{0};   // invalid trace or span id (skipped, counted)
  std::atomic<uint64_t> intake_waits{0};     // times the intake refused for capacity (paused)
  std::atomic<uint64_t> records_rekeyed{0};  // source records re-produced one record per trace
  std::atomic<uint64_t> spans_rekeyed{0};
  std::atomic<uint64_t> rebalances{0};  // assignments and revocations received
  std::atomic<uint64_t> commits{0};     // successful offset commits
  std::atomic<uint64_t> commit_errors{0};
  std::atomic<uint64_t> consume_errors{0};  // errors the client reported while consuming
};

// One assigned partition, as last seen by the consumer thread.
struct PartitionStatus {
  std::string topic;
  int32_t partition = 0;
  bool assigned = false;
  int64_t committed = -1;       // last offset committed (the next record to read after a restart)
  int64_t position = -1;        // the offset after the last record handled
  int64_t high_watermark = -1;  // the offset after the partition's last record, as last fetched
  // The timestamp (Kafka's, else when it was handled) of the oldest record handled but held back
  // from the commit because its effects are not durable yet (for the order topic: a record of an
  // unresolved order); absl::InfiniteFuture() when none. Updated at every commit.
  absl::Time oldest_uncommitted = absl::InfiniteFuture();
  int64_t lag() const {
    return assigned && high_watermark >= 0 && position >= 0 && high_watermark > position
               ? high_watermark - position
               : 0;
  }
};

class KafkaReceiver final : public Component {
 public:
  // Validates the options and creates the client (nothing is consumed before Start). `intake` is
  // not owned and must outlive the receiver.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KafkaReceiver>> Create(
      const KafkaReceiverOptions& options, SpanIntake* intake);
  ~KafkaReceiver() override;

  // Subscribes to the topic and starts the consumer thread.
  absl::Status Start() override;
  // Stops consuming, commits durable progress, leaves the group. Idempotent. Returns by
  // `deadline` even when Kafka is unreachable: the client is then abandoned (it and this object
  // are left to the process's exit, the last progress uncommitted).
  void Shutdown(absl::Time deadline) override;

  const KafkaReceiverStats& stats() const;
  // This member's id in the consumer group ("" before it joined).
  std::string MemberId() const;
  // Every partition this member has owned, by topic and partition number.
  std::vector<PartitionStatus> Partitions() const;
  PartitionStatus Partition(const std::string& topic, int32_t partition) const;

 private:
  class Impl;
  explicit KafkaReceiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_KAFKA_RECEIVER_H_
