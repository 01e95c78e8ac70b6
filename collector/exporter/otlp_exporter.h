// Forwards kept traces over OTLP/gRPC (to Jaeger or any OTLP receiver): batched, queued in
// memory, retried with exponential backoff and jitter on retryable codes.
#ifndef TRACEKEEP_COLLECTOR_EXPORTER_OTLP_EXPORTER_H_
#define TRACEKEEP_COLLECTOR_EXPORTER_OTLP_EXPORTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::exporter {

// Named after the OpenTelemetry Collector's otlp exporter settings.
struct OtlpExporterOptions {
  // host:port of the OTLP/gRPC receiver. Required.
  std::string endpoint;
  // Plaintext gRPC. TLS is not supported yet, so false is refused. Default: true.
  bool insecure = true;
  // gRPC metadata sent with every request (keys lowercase), e.g. authorization. Default: none.
  std::map<std::string, std::string> headers;
  // "gzip" or "none". Default: "gzip".
  std::string compression = "gzip";
  // Deadline of one export request. Default: 10s.
  absl::Duration timeout = absl::Seconds(10);
  // A batch is sent once it holds this many spans. Default: 1024.
  int send_batch_size = 1024;
  // A batch never holds more spans than this. Default: 2048.
  int send_batch_max_size = 2048;
  // A smaller batch is sent once its oldest span waited this long. Default: 200ms.
  absl::Duration batch_timeout = absl::Milliseconds(200);
  // Spans waiting to be sent. Beyond it Consume refuses with kResourceExhausted and the spans
  // are counted dropped (reason queue_full). Default: 100000.
  int64_t queue_size_spans = 100000;
  // Retry retryable failures. Default: true.
  bool retry_enabled = true;
  // First backoff interval. Default: 1s.
  absl::Duration initial_interval = absl::Seconds(1);
  // Backoff intervals grow by `multiplier` up to this. Default: 30s.
  absl::Duration max_interval = absl::Seconds(30);
  // Default: 1.5.
  double multiplier = 1.5;
  // Each wait is the interval times a random factor in [1 - f, 1 + f]. Default: 0.5.
  double randomization_factor = 0.5;
  // A batch still failing after this long is dropped (reason retries_exhausted); 0 = retry
  // until shutdown. Default: 5m.
  absl::Duration max_elapsed_time = absl::Minutes(5);
};

// Counters read by the metrics endpoint and the admin API.
struct ExporterStats {
  std::atomic<uint64_t> spans_exported{0};   // spans the backend acknowledged
  std::atomic<uint64_t> requests_sent{0};    // export attempts
  std::atomic<uint64_t> requests_failed{0};  // export attempts that failed
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> queue_spans{0};
  // Spans given up on, by reason.
  std::atomic<uint64_t> dropped_queue_full{0};
  std::atomic<uint64_t> dropped_retries_exhausted{0};
  std::atomic<uint64_t> dropped_permanent_error{0};
  std::atomic<uint64_t> dropped_rejected{0};  // partial_success.rejected_spans
  std::atomic<uint64_t> dropped_shutdown{0};
  // (reason label, counter) for tracekeep_exporter_spans_dropped_total{reason}.
  std::vector<std::pair<const char*, const std::atomic<uint64_t>*>> DroppedByReason() const;
};

class OtlpExporter final : public TraceConsumer, public Component {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OtlpExporter>> Create(
      const OtlpExporterOptions& options, Clock* clock);
  ~OtlpExporter() override;

  // Queues the spans of `traces`; never blocks on the network.
  absl::Status Consume(KeptTraces&& traces) override;
  absl::Status Start() override;
  // Stops accepting, sends what is queued until `deadline` (no retry beyond it), counts the rest
  // as dropped (reason shutdown). Idempotent.
  void Shutdown(absl::Time deadline) override;

  const ExporterStats& stats() const { return stats_; }

 private:
  class Impl;
  OtlpExporter(const OtlpExporterOptions& options, Clock* clock);
  ExporterStats stats_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::exporter

#endif  // TRACEKEEP_COLLECTOR_EXPORTER_OTLP_EXPORTER_H_
