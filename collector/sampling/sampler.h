// The tail sampler: pending traces sharded by trace id over worker threads, each decided by the
// policies when its wait is over, with decision caches for spans that arrive late.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_SAMPLER_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_SAMPLER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/common/histogram.h"
#include "collector/pipeline/consumer.h"
#include "collector/sampling/decision_log.h"
#include "collector/sampling/policy.h"
#include "collector/sampling/trace_hook.h"

namespace tracekeep::sampling {

// The span attribute naming the policy that kept a trace, added to every kept span.
inline constexpr char kPolicyAttribute[] = "tracekeep.policy";
// In dry_run mode, added to every span: "sampled", "not_sampled" or "dropped".
inline constexpr char kDryRunAttribute[] = "tracekeep.dry_run.decision";

// What happens when max_pending_traces is reached.
enum class WhenFull {
  kEvict,   // decide the trace due soonest early (counted in traces_evicted)
  kRefuse,  // refuse new data with RESOURCE_EXHAUSTED (clients retry); eviction stays the
            // last resort if the buffers fill anyway
};

struct SamplerOptions {
  // A trace is decided this long after its last span arrived. Default: 30s.
  absl::Duration decision_wait = absl::Seconds(30);
  // Once a trace's root span arrived, decide it at the latest this long after the root.
  // 0 = off. Default: 0.
  absl::Duration decision_wait_after_root_received = absl::ZeroDuration();
  // Decide a trace at the latest this long after its first span, however long it keeps
  // growing. 0 = off. Default: 0.
  absl::Duration max_trace_age = absl::ZeroDuration();
  // Worker threads, each owning the traces whose id hashes to it. 0 = one per core. Default: 0.
  int num_shards = 0;
  // Pending traces, all shards together. What happens beyond it: `when_full`. Default: 200000.
  size_t max_pending_traces = 200000;
  // Serialized span bytes pending, all shards together; 0 = no bound. Beyond it: `when_full`.
  // Default: 0.
  size_t max_pending_bytes = 0;
  // What happens at max_pending_traces / max_pending_bytes. The per-trace bounds below always
  // decide the trace early: refusing its spans could never make it fit.
  WhenFull when_full = WhenFull::kEvict;
  // A trace reaching this many spans (span bytes) is decided at once; its later spans follow
  // the decision through the decision cache. 0 = no bound. Default: 0 / 0.
  size_t max_spans_per_trace = 0;
  size_t max_bytes_per_trace = 0;
  // Spans received but not yet buffered by their shard, all shards together. Beyond it requests
  // are refused with a retryable status (RESOURCE_EXHAUSTED / HTTP 429). Default: 1000000.
  size_t max_queued_spans = 1000000;
  // Kept spans the downstream consumer could not take yet (the store refusing writes on a full
  // disk) held in memory and offered again every poll, all shards together; beyond it they are
  // counted in spans_lost_downstream. They also stay in the intake journal (the low-water mark
  // waits for them), so a restart replays them. Default: 1000000.
  size_t max_waiting_spans = 1000000;
  // Decision caches (trace ids, all shards together; LRU). Late spans of a kept trace go
  // downstream at once; late spans of a trace not kept are counted and dropped. 0 disables.
  // Default: 100000 / 100000.
  size_t sampled_cache_size = 100000;
  size_t non_sampled_cache_size = 100000;
  // Evaluate and count, but keep every trace; spans carry tracekeep.dry_run.decision.
  // Default: false.
  bool dry_run = false;
  // Stop evaluating at the first policy that samples. Default: false.
  bool sample_on_first_match = false;
  // See PolicySet for the semantics.
  std::vector<PolicyConfig> policies;
  // Sees buffered spans and decided traces (the order tracker); must outlive the sampler.
  // Default: nullptr (none).
  TraceHook* hook = nullptr;
  // Where every decision is recorded (after its kept traces were handed on, before the
  // low-water mark moves past them) and reloaded from by LoadDecisions(); must outlive the
  // sampler. Default: nullptr (decisions are not persisted).
  DecisionLog* decision_log = nullptr;
  // Spans handed on before a restart (the span store): spans replayed from the journal for a
  // trace whose decision was to keep it are not handed on again when already there. Default:
  // nullptr (replayed spans of kept traces are handed on again: at-least-once).
  HandedSpans* handed_spans = nullptr;
};

// The policy list used when the config names none: keep every trace with an error span and 10 %
// of the rest.
std::vector<PolicyConfig> DefaultPolicies();

// Counters read by the metrics endpoint and the admin API. Per-policy counters live in
// Sampler::policy_stats().
struct SamplerStats {
  std::atomic<uint64_t> traces_pending{0};
  std::atomic<uint64_t> spans_pending{0};
  std::atomic<uint64_t> bytes_pending{0};
  std::atomic<uint64_t> spans_queued{0};
  std::atomic<uint64_t> traces_queued{0};
  std::atomic<uint64_t> traces_not_sampled{0};  // no policy sampled them
  std::atomic<uint64_t> spans_not_sampled{0};
  std::atomic<uint64_t> traces_dropped{0};  // a drop policy matched
  std::atomic<uint64_t> spans_dropped{0};
  std::atomic<uint64_t> traces_evicted{0};          // decided early to respect max_pending_traces
  std::atomic<uint64_t> traces_limited{0};          // decided early at max_{spans,bytes}_per_trace
  std::atomic<uint64_t> late_spans_sampled{0};      // late spans of kept traces, sent on
  std::atomic<uint64_t> late_spans_not_sampled{0};  // late spans of traces not kept, dropped
  std::atomic<uint64_t> spans_refused{0};           // refused by Offer (overload / shutdown)
  std::atomic<uint64_t> consumer_errors{0};         // batches the downstream consumer refused
  // Kept batches the consumer could not take yet (kUnavailable: storage refusing writes), kept
  // in the sampler and offered again every poll: batches that had to wait, spans waiting now,
  // spans handed on after waiting, spans lost beyond max_waiting_spans.
  std::atomic<uint64_t> batches_waited{0};
  std::atomic<uint64_t> spans_waiting{0};
  std::atomic<uint64_t> spans_retried{0};
  std::atomic<uint64_t> spans_lost_downstream{0};
  std::atomic<uint64_t> evaluation_errors{0};       // traces whose span bytes could not be decoded
  std::atomic<uint64_t> policy_updates{0};          // successful SetPolicies calls
  std::atomic<uint64_t> decisions_restored{0};      // decisions reloaded by LoadDecisions()
  std::atomic<uint64_t> decision_log_errors{0};     // failed DecisionLog appends
  std::atomic<uint64_t> replayed_spans_skipped{0};  // replayed spans already handed on
  // Kept spans whose bytes, released to the journal while pending, could not be read back.
  std::atomic<uint64_t> spans_unreadable{0};
  // Age of late spans: time since their trace's decision.
  DurationHistogram late_span_age{{0.1, 1, 5, 15, 30, 60, 300, 900, 3600}};
  // Time from a trace's due time to its decision.
  DurationHistogram decision_latency{{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}};
};

class Sampler final : public SpanIntake, public Component {
 public:
  // `consumer` receives kept traces and must outlive the sampler. `clock` decides timing.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Sampler>> Create(
      const SamplerOptions& options, TraceConsumer* consumer, Clock* clock);
  ~Sampler() override;

  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;
  absl::Status Precheck(int64_t span_count) override;

  // Takes back spans replayed from the journal after a restart: like Offer, but never refused
  // for capacity, and each trace keeps its arrival_unix_nanos (its decision timer continues).
  void Restore(std::vector<TraceSpans>&& traces, int64_t span_count);

  // Every span that arrived (arrival_unix_nanos) before this time belongs to a trace that has
  // been decided and handed downstream. absl::InfiniteFuture() when nothing is pending.
  absl::Time LowWaterMark() const;

  // Reloads the decision caches from options.decision_log, oldest decision first (the LRU order
  // stays right). Call before Start(). Returns the number of decisions loaded.
  [[nodiscard]] absl::StatusOr<uint64_t> LoadDecisions();

  // Where pending spans keep their bytes: with a reader, every span that the journal has a copy
  // of (SpanRecord::journal_offset) is released from memory once buffered (unless dry_run), and
  // read back when a decision needs it: policies that read attributes, kept traces. Call before
  // Restore(); the reader must outlive the sampler. Default: none (span bytes stay in memory).
  void SetSpanBytesReader(SpanBytesReader* reader) { span_bytes_.store(reader); }

  // Starts one thread per shard.
  absl::Status Start() override;
  // Stops intake; every pending trace is decided now by the policies (as if its wait had
  // expired) and handed downstream; then the threads stop.
  void Shutdown(absl::Time deadline) override;

  // Replaces the policies. Invalid policies are rejected (every problem listed, one per line)
  // and the running ones stay in force. Valid ones apply to every decision made after the call;
  // pending traces stay pending. Thread-safe.
  [[nodiscard]] absl::Status SetPolicies(const std::vector<PolicyConfig>& policies);
  // The policies in force.
  std::vector<PolicyConfig> policies() const;

  // Without Start(): buffers everything queued and decides what is due, on the calling thread.
  // For deterministic tests with a FakeClock.
  void PollForTesting();

  const SamplerStats& stats() const { return stats_; }
  const PolicyStatsRegistry& policy_stats() const { return policy_stats_; }
  // Kept traces and spans, all policies together (late spans not included).
  uint64_t traces_sampled_total() const;
  uint64_t spans_sampled_total() const;
  int num_shards() const;

 private:
  class Shard;
  void Distribute(std::vector<TraceSpans>&& traces);
  Sampler(const SamplerOptions& options, TraceConsumer* consumer, Clock* clock);
  // One policy set per shard (rate budgets are divided among them).
  absl::StatusOr<std::vector<std::shared_ptr<PolicySet>>> BuildSets(
      const std::vector<PolicyConfig>& policies);

  // How often a shard decides what is due: a fiftieth of the shortest wait, at most 100 ms.
  static absl::Duration DecideEvery(const SamplerOptions& options);

  SamplerOptions options_;
  const absl::Duration decide_every_;
  std::atomic<SpanBytesReader*> span_bytes_{nullptr};
  TraceConsumer* consumer_;
  Clock* clock_;
  SamplerStats stats_;
  PolicyStatsRegistry policy_stats_;
  mutable std::mutex policies_mu_;
  std::vector<PolicyConfig> policy_configs_ ABSL_GUARDED_BY(policies_mu_);
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<bool> accepting_{true};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_SAMPLER_H_
