#include "collector/sampling/sampler.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/sampling/trace_buffer.h"

namespace tracekeep::sampling {

std::vector<PolicyConfig> DefaultPolicies() {
  PolicyConfig errors;
  errors.name = "errors";
  errors.type = "status_code";
  errors.status_codes = {"ERROR"};
  PolicyConfig baseline;
  baseline.name = "baseline";
  baseline.type = "probabilistic";
  baseline.sampling_percentage = 10;
  return {errors, baseline};
}


// One shard: an input queue filled by receiver threads and a TraceBuffer owned by its thread.
class Sampler::Shard {
 public:
  Shard(Sampler* sampler, const TraceBufferOptions& options)
      : sampler_(sampler), buffer_(options) {}

  void Enqueue(std::vector<TraceSpans>&& traces) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& t : traces) queue_.push_back(std::move(t));
    }
    cv_.notify_one();
  }

  // Buffers what is queued and decides what is due. Returns when the next decision is due.
  absl::Time Poll() {
    std::vector<TraceSpans> input;
    {
      std::lock_guard<std::mutex> lock(mu_);
      input.swap(queue_);
    }
    const absl::Time now = sampler_->clock_->Now();
    std::vector<PendingTrace> due;
    size_t spans_in = 0;
    for (TraceSpans& t : input) {
      spans_in += t.spans.size();
      if (sampler_->options_.hook != nullptr) sampler_->options_.hook->OnBuffered(t);
      const size_t before = due.size();
      buffer_.Add(std::move(t), now, &due);
      sampler_->stats_.traces_evicted.fetch_add(due.size() - before, std::memory_order_relaxed);
    }
    sampler_->stats_.spans_queued.fetch_sub(spans_in, std::memory_order_relaxed);
    buffer_.TakeExpired(now, &due);
    Publish();
    if (!due.empty()) sampler_->Decide(&due);
    return buffer_.NextDeadline();
  }

  void DrainAll() {
    Poll();
    std::vector<PendingTrace> all;
    buffer_.TakeAll(&all);
    Publish();
    if (!all.empty()) sampler_->Decide(&all);
  }

  void Run() {
    while (true) {
      const absl::Time next = Poll();
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) break;
      if (!queue_.empty()) continue;
      // Wake for new input, for the next deadline, or at least every 100 ms so a FakeClock or a
      // clock jump is noticed.
      const absl::Duration wait =
          std::min(absl::Milliseconds(100), std::max(absl::ZeroDuration(),
                                                     next - sampler_->clock_->Now()));
      cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                   [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); });
      if (stop_) break;
    }
    DrainAll();
  }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Publishes this shard's share of the pending gauges.
  void Publish() {
    const auto traces = static_cast<int64_t>(buffer_.trace_count());
    const auto spans = static_cast<int64_t>(buffer_.span_count());
    sampler_->stats_.traces_pending.fetch_add(traces - published_traces_,
                                              std::memory_order_relaxed);
    sampler_->stats_.spans_pending.fetch_add(spans - published_spans_, std::memory_order_relaxed);
    published_traces_ = traces;
    published_spans_ = spans;
  }

  Sampler* sampler_;
  TraceBuffer buffer_;  // touched only by the shard's thread (or the test's)
  int64_t published_traces_ = 0;
  int64_t published_spans_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TraceSpans> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<Sampler>> Sampler::Create(const SamplerOptions& options,
                                                         TraceConsumer* consumer, Clock* clock) {
  if (options.decision_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("sampler.decision_wait: must be >= 0, got ",
                                                   absl::FormatDuration(options.decision_wait)));
  }
  if (options.num_shards < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampler.num_shards: must be >= 0, got ", options.num_shards));
  }
  if (options.max_pending_traces == 0 || options.max_queued_spans == 0) {
    return absl::InvalidArgumentError(
        "sampler.max_pending_traces and sampler.max_queued_spans must be > 0");
  }
  TK_ASSIGN_OR_RETURN(auto policies, PolicySet::Create(options.policies));
  return std::unique_ptr<Sampler>(new Sampler(options, std::move(policies), consumer, clock));
}

Sampler::Sampler(const SamplerOptions& options, std::unique_ptr<PolicySet> policies,
                 TraceConsumer* consumer, Clock* clock)
    : options_(options), policies_(std::move(policies)), consumer_(consumer), clock_(clock) {
  int n = options.num_shards;
  if (n == 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  TraceBufferOptions buffer_options;
  buffer_options.decision_wait = options.decision_wait;
  buffer_options.max_traces = std::max<size_t>(1, options.max_pending_traces / n);
  for (int i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>(this, buffer_options));
  stats_.traces_sampled.reset(new std::atomic<uint64_t>[policies_->size()]);
  stats_.spans_sampled.reset(new std::atomic<uint64_t>[policies_->size()]);
  for (size_t i = 0; i < policies_->size(); ++i) {
    stats_.traces_sampled[i] = 0;
    stats_.spans_sampled[i] = 0;
  }
}

Sampler::~Sampler() { Shutdown(absl::InfiniteFuture()); }

uint64_t Sampler::traces_sampled_total() const {
  uint64_t sum = 0;
  for (size_t i = 0; i < policies_->size(); ++i) sum += stats_.traces_sampled[i].load();
  return sum;
}

uint64_t Sampler::spans_sampled_total() const {
  uint64_t sum = 0;
  for (size_t i = 0; i < policies_->size(); ++i) sum += stats_.spans_sampled[i].load();
  return sum;
}

int Sampler::num_shards() const { return static_cast<int>(shards_.size()); }

absl::Status Sampler::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  if (!accepting_.load(std::memory_order_acquire)) {
    stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
    return absl::UnavailableError("tracekeep is shutting down");
  }
  const uint64_t queued =
      stats_.spans_queued.fetch_add(span_count, std::memory_order_relaxed) + span_count;
  if (queued > options_.max_queued_spans) {
    stats_.spans_queued.fetch_sub(span_count, std::memory_order_relaxed);
    stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("sampler intake queue is full (", options_.max_queued_spans,
                     " spans); retry later"));
  }
  if (shards_.size() == 1) {
    shards_[0]->Enqueue(std::move(traces));
    return absl::OkStatus();
  }
  std::vector<std::vector<TraceSpans>> per_shard(shards_.size());
  for (TraceSpans& t : traces) per_shard[t.hash % shards_.size()].push_back(std::move(t));
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (!per_shard[i].empty()) shards_[i]->Enqueue(std::move(per_shard[i]));
  }
  return absl::OkStatus();
}

void Sampler::Decide(std::vector<PendingTrace>* traces) {
  KeptTraces kept;
  for (PendingTrace& t : *traces) {
    const int policy = policies_->Evaluate(t);
    if (options_.hook != nullptr) {
      HookVerdict v = options_.hook->OnDecided(t, policy >= 0);
      if (v.action == HookVerdict::kHold) continue;
      if (v.action == HookVerdict::kKeep) {
        kept.push_back(KeptTrace{std::move(t.trace_id), std::move(v.reason), std::move(t.spans)});
        continue;
      }
    }
    if (policy < 0) {
      stats_.traces_not_sampled.fetch_add(1, std::memory_order_relaxed);
      stats_.spans_not_sampled.fetch_add(t.spans.size(), std::memory_order_relaxed);
      continue;
    }
    stats_.traces_sampled[policy].fetch_add(1, std::memory_order_relaxed);
    stats_.spans_sampled[policy].fetch_add(t.spans.size(), std::memory_order_relaxed);
    KeptTrace& k = kept.emplace_back();
    k.trace_id = std::move(t.trace_id);
    k.policy = policies_->name(policy);
    k.spans = std::move(t.spans);
  }
  if (kept.empty()) return;
  absl::Status s = consumer_->Consume(std::move(kept));
  if (!s.ok()) {
    // Downstream components count what they lost; this records that a batch was refused.
    const uint64_t n = stats_.consumer_errors.fetch_add(1, std::memory_order_relaxed);
    if (n % 1000 == 0) TK_LOG(Warning) << "kept traces not fully handed downstream: " << s;
  }
}

absl::Status Sampler::Start() {
  if (started_.exchange(true)) return absl::FailedPreconditionError("sampler already started");
  for (auto& shard : shards_) shard->Start();
  return absl::OkStatus();
}

void Sampler::Shutdown(absl::Time deadline) {
  accepting_.store(false, std::memory_order_release);
  if (stopped_.exchange(true)) return;
  if (started_.load()) {
    for (auto& shard : shards_) shard->Stop();  // each drains and decides what it holds
  } else {
    for (auto& shard : shards_) shard->DrainAll();
  }
}

void Sampler::PollForTesting() {
  for (auto& shard : shards_) shard->Poll();
}

}  // namespace tracekeep::sampling
