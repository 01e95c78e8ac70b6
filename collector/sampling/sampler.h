// The tail sampler: pending traces sharded by trace id over worker threads, each decided a
// configurable time after its last span.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_SAMPLER_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_SAMPLER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/pipeline/consumer.h"
#include "collector/sampling/policy.h"
#include "collector/sampling/trace_hook.h"

namespace tracekeep::sampling {

struct SamplerOptions {
  // A trace is decided this long after its last span arrived. Default: 30s.
  absl::Duration decision_wait = absl::Seconds(30);
  // Worker threads, each owning the traces whose id hashes to it. 0 = one per core. Default: 0.
  int num_shards = 0;
  // Pending traces, all shards together. Beyond it the trace due soonest is decided early and
  // counted in tracekeep_sampler_traces_evicted_total. Default: 200000.
  size_t max_pending_traces = 200000;
  // Spans received but not yet buffered by their shard, all shards together. Beyond it requests
  // are refused with a retryable status (RESOURCE_EXHAUSTED / HTTP 429). Default: 1000000.
  size_t max_queued_spans = 1000000;
  // Evaluated in order; a trace is kept when any policy samples it.
  std::vector<PolicyConfig> policies;
  // Sees buffered spans and decided traces (the order tracker); must outlive the sampler.
  // Default: nullptr (none).
  TraceHook* hook = nullptr;
};

// The policy list used when the config names none: keep every trace with an error span and 10 %
// of the rest.
std::vector<PolicyConfig> DefaultPolicies();

// Counters read by the metrics endpoint and the admin API.
struct SamplerStats {
  std::atomic<uint64_t> traces_pending{0};
  std::atomic<uint64_t> spans_pending{0};
  std::atomic<uint64_t> spans_queued{0};
  std::atomic<uint64_t> traces_not_sampled{0};
  std::atomic<uint64_t> spans_not_sampled{0};
  std::atomic<uint64_t> traces_evicted{0};    // decided early to respect max_pending_traces
  std::atomic<uint64_t> spans_refused{0};     // refused by Offer (overload / shutdown)
  std::atomic<uint64_t> consumer_errors{0};   // batches the downstream consumer refused
  // Per policy, indexed like the policy list.
  std::unique_ptr<std::atomic<uint64_t>[]> traces_sampled;
  std::unique_ptr<std::atomic<uint64_t>[]> spans_sampled;
};

class Sampler final : public SpanIntake, public Component {
 public:
  // `consumer` receives kept traces and must outlive the sampler. `clock` decides timing.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Sampler>> Create(
      const SamplerOptions& options, TraceConsumer* consumer, Clock* clock);
  ~Sampler() override;

  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;

  // Starts one thread per shard.
  absl::Status Start() override;
  // Stops intake; every pending trace is decided now by the policies (as if its wait had
  // expired) and handed downstream; then the threads stop.
  void Shutdown(absl::Time deadline) override;

  // Without Start(): buffers everything queued and decides what is due, on the calling thread.
  // For deterministic tests with a FakeClock.
  void PollForTesting();

  const SamplerStats& stats() const { return stats_; }
  const PolicySet& policies() const { return *policies_; }
  // Kept traces and spans, all policies together.
  uint64_t traces_sampled_total() const;
  uint64_t spans_sampled_total() const;
  int num_shards() const;

 private:
  class Shard;
  Sampler(const SamplerOptions& options, std::unique_ptr<PolicySet> policies,
          TraceConsumer* consumer, Clock* clock);
  void Decide(std::vector<PendingTrace>* traces);

  SamplerOptions options_;
  std::unique_ptr<PolicySet> policies_;
  TraceConsumer* consumer_;
  Clock* clock_;
  SamplerStats stats_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<bool> accepting_{true};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_SAMPLER_H_
