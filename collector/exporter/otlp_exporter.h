// Forwards kept traces over OTLP/gRPC to Jaeger (or any OTLP receiver): queued (in memory, or
// durably in a QueueStore up to a byte budget), batched by size and age, retried with exponential
// backoff and jitter on the codes the OTLP specification calls retryable. Every span it is handed
// is either exported, counted in exactly one drop reason, or (with a durable queue) still queued
// for the next start.
#ifndef TRACEKEEP_COLLECTOR_EXPORTER_OTLP_EXPORTER_H_
#define TRACEKEEP_COLLECTOR_EXPORTER_OTLP_EXPORTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/exporter/queue_store.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::exporter {

// Settings named after the OpenTelemetry Collector's otlp exporter (config path in brackets).
struct OtlpExporterOptions {
  // "host:port" of the OTLP/gRPC receiver, without a scheme. Required. [exporters.otlp.endpoint]
  std::string endpoint;
  // Plaintext gRPC when true; TLS when false. Default: true. [exporters.otlp.tls.insecure]
  bool insecure = true;
  // TLS: PEM CA certificate that signed the backend's certificate; "" = the system's roots.
  // Default: "". [exporters.otlp.tls.ca_file]
  std::string ca_file;
  // TLS: client certificate and key (PEM) for mutual TLS; both or neither.
  // Default: "". [exporters.otlp.tls.cert_file, exporters.otlp.tls.key_file]
  std::string cert_file;
  std::string key_file;
  // gRPC metadata sent with every request, e.g. {"authorization": "Bearer ..."}. Keys are
  // case-insensitive (sent lowercase). Default: none. [exporters.otlp.headers]
  std::map<std::string, std::string> headers;
  // Deadline of one export request. Default: 10s. [exporters.otlp.timeout]
  absl::Duration timeout = absl::Seconds(10);
  // "gzip" or "none". Default: "gzip". [exporters.otlp.compression]
  std::string compression = "gzip";

  // Batching [exporters.otlp.batch]. A batch is sent once this many spans are queued.
  // Default: 1024.
  int send_batch_size = 1024;
  // Upper bound of a batch, in spans; must be >= send_batch_size. Default: 2048.
  int send_batch_max_size = 2048;
  // A smaller batch is sent once its oldest span has been queued this long (measured with the
  // injected Clock). 0 sends whatever is queued at once. Default: 200ms. [batch.timeout]
  absl::Duration batch_timeout = absl::Milliseconds(200);

  // Without a durable queue: spans waiting to be sent (the batch being sent included); beyond it
  // Consume() refuses with kResourceExhausted and the spans are counted dropped, reason
  // queue_full. With a durable queue: spans also held in memory; batches beyond it wait on disk
  // only and are read back when their turn comes.
  // Default: 100000. [exporters.otlp.sending_queue.queue_size_spans]
  int64_t queue_size_spans = 100000;

  // With a durable queue: stored bytes of queued batches. A batch that would take the queue past
  // it is refused (kResourceExhausted, counted dropped, reason queue_full); the kept spans are
  // still in the span store. Default: 1 GiB. [exporters.otlp.sending_queue.storage.max_bytes]
  int64_t queue_max_bytes = int64_t{1} << 30;

  // Retry [exporters.otlp.retry_on_failure]. When false, a failed batch is dropped at once
  // (reason retries_exhausted). Default: true. [enabled]
  bool retry_enabled = true;
  // Wait before the first retry. Also the gRPC channel's minimum reconnect backoff.
  // Default: 1s.
  absl::Duration initial_interval = absl::Seconds(1);
  // Upper bound of one wait. Also the gRPC channel's maximum reconnect backoff. Default: 30s.
  absl::Duration max_interval = absl::Seconds(30);
  // Each wait is the previous one times this (>= 1). Default: 1.5.
  double multiplier = 1.5;
  // Jitter: a wait is the interval times a random factor in [1 - f, 1 + f], f in [0, 1].
  // Default: 0.5.
  double randomization_factor = 0.5;
  // A batch still failing this long after its first attempt (injected Clock) is dropped, reason
  // retries_exhausted. 0 = retry until shutdown. Not applied with a durable queue: a batch on
  // disk is retried until the backend takes it (the disk budget bounds the outage). Default: 300s.
  absl::Duration max_elapsed_time = absl::Seconds(300);
};

// Why the exporter gave up on spans. Every span handed to Consume() ends up exported or in
// exactly one of these.
enum class DropReason {
  kQueueFull = 0,     // Consume() refused them: the queue held queue_size_spans
  kRetriesExhausted,  // still failing after max_elapsed_time (or retry disabled)
  kPermanentError,    // the backend answered with a non-retryable code (e.g. INVALID_ARGUMENT)
  kRejected,          // the backend accepted the request but listed them in partial_success
  kShutdown,          // still queued or unsent at the shutdown deadline, or offered after it
                      // (without a durable queue; with one they stay queued for the next start)
  kStorageError,      // a batch of the durable queue could not be read back (corrupt on disk)
};
inline constexpr int kNumDropReasons = 6;

// "queue_full", "retries_exhausted", "permanent_error", "rejected", "shutdown", "storage_error":
// the `reason` label value.
const char* DropReasonName(DropReason reason);

// Counters read by the metrics endpoint and the admin API. Lock-free, updated per batch.
//   tracekeep_exporter_spans_exported_total      <- spans_exported
//   tracekeep_exporter_send_failures_total       <- requests_failed
//   tracekeep_exporter_spans_dropped_total{reason} <- DroppedByReason()
//   tracekeep_exporter_queue_spans (gauge)       <- queue_spans
//   tracekeep_exporter_queue_bytes (gauge)       <- queue_bytes        (durable queue)
//   tracekeep_exporter_queue_batches (gauge)     <- queue_batches      (durable queue)
//   tracekeep_exporter_queue_oldest_age_seconds  <- oldest_enqueued_unix_nanos (durable queue)
struct ExporterStats {
  std::atomic<uint64_t> spans_exported{0};   // spans the backend acknowledged (not rejected)
  std::atomic<uint64_t> requests_sent{0};    // export attempts, retries included
  std::atomic<uint64_t> requests_failed{0};  // attempts that ended with a non-OK status
  std::atomic<uint64_t> retries{0};          // attempts that were retries of a failed one
  std::atomic<uint64_t> queue_spans{0};      // gauge: spans queued or in the batch being sent
  std::atomic<uint64_t> queue_bytes{0};      // gauge: stored bytes of the durable queue
  std::atomic<uint64_t> queue_batches{0};    // gauge: batches in the durable queue
  // Wall-clock enqueue time of the oldest batch in the durable queue; 0 when it is empty.
  std::atomic<int64_t> oldest_enqueued_unix_nanos{0};
  std::atomic<uint64_t> spans_recovered{0};  // spans found in the durable queue at creation
  std::atomic<uint64_t> spans_dropped[kNumDropReasons] = {};

  uint64_t dropped(DropReason reason) const {
    return spans_dropped[static_cast<int>(reason)].load(std::memory_order_relaxed);
  }
  // (reason label, counter) for every reason, zeros included, so the series exist from the start.
  std::vector<std::pair<const char*, const std::atomic<uint64_t>*>> DroppedByReason() const;
};

class OtlpExporter final : public TraceConsumer, public Component {
 public:
  // Validates `options` (the error lists every problem by config path and value) and creates
  // the channel; nothing connects before the first request. `clock` must outlive the exporter;
  // it measures batch age and retry elapsed time. Shutdown deadlines are wall-clock times.
  //
  // `queue`, when not null, makes the queue durable: every batch Consume() accepts is appended
  // to it before Consume() returns and removed only once the backend acknowledged (or rejected)
  // it. Batches found in it at creation (left by a previous run) are sent first, oldest first.
  // Delivery is at-least-once: after a crash, the batch in flight and the rest of the batches it
  // took spans from are sent again. `queue` must outlive the exporter. Fails when the queue
  // cannot be listed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OtlpExporter>> Create(
      const OtlpExporterOptions& options, Clock* clock, QueueStore* queue = nullptr);
  ~OtlpExporter() override;  // Shutdown(now): what is still queued is counted dropped

  // Queues every span of `traces` or none of them; never waits for the network (with a durable
  // queue it waits for the queue's write). kResourceExhausted when they do not fit in the queue,
  // kAborted after Shutdown(); those spans are counted dropped (queue_full, shutdown).
  // kUnavailable when the durable queue's disk is full (its store answered kResourceExhausted):
  // nothing was taken and `traces` is left untouched, to be offered again.
  [[nodiscard]] absl::Status Consume(KeptTraces&& traces) override;
  // Starts the sender thread. Spans consumed before Start() wait in the queue.
  [[nodiscard]] absl::Status Start() override;
  // Stops accepting, sends what is queued until `deadline` (no retry starts after it, a request
  // in flight at the deadline is cancelled), counts the rest dropped (reason shutdown) — or, with
  // a durable queue, leaves it there for the next start — and joins the sender. Idempotent.
  void Shutdown(absl::Time deadline) override;

  const ExporterStats& stats() const { return stats_; }

 private:
  class Impl;
  OtlpExporter(const OtlpExporterOptions& options, Clock* clock, QueueStore* queue);

  ExporterStats stats_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::exporter

#endif  // TRACEKEEP_COLLECTOR_EXPORTER_OTLP_EXPORTER_H_
