#include "collector/sampling/sampler.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/sampling/decision_cache.h"
#include "collector/sampling/span_scan.h"
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

namespace {

absl::Duration OrInfinite(absl::Duration d) {
  return d == absl::ZeroDuration() ? absl::InfiniteDuration() : d;
}

void Tag(std::vector<SpanRecord>* spans, std::string_view key, std::string_view value) {
  for (SpanRecord& s : *spans) AppendStringAttribute(key, value, &s.span);
}

}  // namespace

// One shard: an input queue filled by receiver threads, and a TraceBuffer, decision caches and
// policy set owned by its thread. The policy set is swapped by SetPolicies through an atomic
// shared_ptr; the shard loads it once per decision batch, so no lock is taken per trace.
class Sampler::Shard {
 public:
  friend class Sampler;  // LoadDecisions() fills the caches before the thread starts

  Shard(Sampler* sampler, const TraceBufferOptions& options, size_t kept_cache,
        size_t dropped_cache, std::shared_ptr<PolicySet> policies)
      : sampler_(sampler),
        buffer_(options),
        kept_(kept_cache),
        not_kept_(dropped_cache),
        policies_(std::move(policies)) {}

  // Queues spans for this shard. Spans without an arrival time get "now"; queue_front_arrival_
  // tracks the oldest arrival queued (the journal's truncation relies on it).
  void Enqueue(std::vector<TraceSpans>&& traces) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const int64_t now = absl::ToUnixNanos(sampler_->clock_->Now());
      for (auto& t : traces) {
        if (t.arrival_unix_nanos == 0) t.arrival_unix_nanos = now;
        // The oldest arrival in the queue (arrivals given by the journaled intake need not
        // grow along the queue: concurrent offers enqueue in any order).
        if (queue_.empty() || t.arrival_unix_nanos < queue_front_arrival_.load()) {
          queue_front_arrival_.store(t.arrival_unix_nanos);
        }
        queue_.push_back(std::move(t));
      }
    }
    cv_.notify_one();
  }

  // See Sampler::LowWaterMark.
  int64_t LowWaterMark() const {
    const int64_t queued = queue_front_arrival_.load();  // read first: see Poll()
    const int64_t pending = oldest_pending_.load();
    return std::min(queued, pending);
  }

  void SetPolicies(std::shared_ptr<PolicySet> policies) {
    std::atomic_store(&policies_, std::move(policies));
  }

  // Buffers what is queued and decides what is due. Returns when the next decision is due.
  absl::Time Poll() {
    std::vector<TraceSpans> input;
    {
      std::lock_guard<std::mutex> lock(mu_);
      input.swap(queue_);
      // Until this poll has decided and published, its input counts as pending. Updated before
      // the queue's mark is cleared, so LowWaterMark() never skips it.
      oldest_pending_.store(std::min(oldest_pending_.load(), queue_front_arrival_.load()));
      queue_front_arrival_.store(kNothing);
    }
    SamplerStats& stats = sampler_->stats_;
    const absl::Time now = sampler_->clock_->Now();
    RetryWaiting();
    std::vector<PendingTrace> due;
    KeptTraces late;
    int64_t late_oldest = kNothing;
    size_t spans_in = 0;
    // While pending, span bytes the journal keeps live only there (read back when needed); and
    // when no policy looks at single spans, so do the spans' records: a trace waits as its
    // summary (PendingTrace::spans_in_journal).
    const bool release_bytes = sampler_->span_bytes_.load(std::memory_order_relaxed) != nullptr &&
                               !sampler_->options_.dry_run;
    const bool release_spans = release_bytes && !std::atomic_load(&policies_)->ReadsSpans();
    for (TraceSpans& t : input) {
      spans_in += t.spans.size();
      if (sampler_->options_.hook != nullptr) sampler_->options_.hook->OnBuffered(t);
      const int64_t arrived = t.arrival_unix_nanos;
      if (FollowDecision(&t, now, &late)) {
        late_oldest = std::min(late_oldest, arrived);
        continue;
      }
      const absl::Time arrival =
          t.arrival_unix_nanos != 0 ? absl::FromUnixNanos(t.arrival_unix_nanos) : now;
      if (release_bytes) {
        for (SpanRecord& span : t.spans) span.ReleaseJournaledBytes();
      }
      // A replayed part's spans may have been handed on before the restart: they stay (see
      // SkipHanded).
      buffer_.Add(std::move(t), arrival, &due, release_spans && !t.replayed);
    }
    stats.spans_queued.fetch_sub(spans_in, std::memory_order_relaxed);
    stats.traces_queued.fetch_sub(input.size(), std::memory_order_relaxed);
    stats.traces_evicted.fetch_add(buffer_.evictions() - published_evictions_,
                                   std::memory_order_relaxed);
    stats.traces_limited.fetch_add(buffer_.trace_limit_hits() - published_limit_hits_,
                                   std::memory_order_relaxed);
    published_evictions_ = buffer_.evictions();
    published_limit_hits_ = buffer_.trace_limit_hits();
    // What is due is decided in batches, at most every DecideEvery(): each batch ends in a
    // write to the store and one to the decision log, whose fixed cost (a write-ahead-log
    // append, the writers' rendezvous) otherwise came with every request received.
    // A clock stepped back (decide_after_ more than a batch away) does not stall decisions.
    if (now >= decide_after_ || decide_after_ - now > sampler_->decide_every_) {
      buffer_.TakeExpired(now, &due);
      decide_after_ = now + sampler_->decide_every_;
    }
    Publish();
    if (!late.empty()) Hand(std::move(late), late_oldest);
    if (!due.empty()) Decide(&due, now);
    PublishOldest();
    return std::max(buffer_.NextDeadline(), decide_after_);
  }

  void DrainAll() {
    Poll();
    std::vector<PendingTrace> all;
    buffer_.TakeAll(&all);
    Publish();
    if (!all.empty()) Decide(&all, sampler_->clock_->Now());
    PublishOldest();
  }

  void Run() {
    while (true) {
      const absl::Time next = Poll();
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) break;
      if (!queue_.empty()) continue;
      // Wake for new input, for the next deadline, or at least every 100 ms so a FakeClock or a
      // clock jump is noticed.
      const absl::Duration wait = std::min(
          absl::Milliseconds(100), std::max(absl::ZeroDuration(), next - sampler_->clock_->Now()));
      cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                   [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); });
      if (stop_) break;
    }
    DrainAll();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Spans of a trace decided already follow its decision. Returns true when `t` was handled.
  bool FollowDecision(TraceSpans* t, absl::Time now, KeptTraces* late) {
    SamplerStats& stats = sampler_->stats_;
    if (const CachedDecision* d = kept_.Lookup(t->trace_id)) {
      if (t->replayed && sampler_->options_.handed_spans != nullptr) SkipHanded(t);
      if (t->spans.empty()) return true;
      stats.late_spans_sampled.fetch_add(t->spans.size(), std::memory_order_relaxed);
      stats.late_span_age.Observe(now - d->decided_at, t->spans.size());
      KeptTrace& k = late->emplace_back();
      k.trace_id = std::move(t->trace_id);
      k.policy = d->policy;
      k.spans = std::move(t->spans);
      if (!k.policy.empty()) Tag(&k.spans, kPolicyAttribute, k.policy);
      return true;
    }
    if (const CachedDecision* d = not_kept_.Lookup(t->trace_id)) {
      stats.late_spans_not_sampled.fetch_add(t->spans.size(), std::memory_order_relaxed);
      stats.late_span_age.Observe(now - d->decided_at, t->spans.size());
      return true;
    }
    return false;
  }

  // Drops the spans of a replayed trace that were handed on before the restart.
  void SkipHanded(TraceSpans* t) {
    HandedSpans* handed = sampler_->options_.handed_spans;
    absl::StatusOr<std::vector<bool>> there = handed->Contains(t->trace_id, t->spans);
    // On a read error, hand them on again: a duplicate beats a loss.
    if (!there.ok() || there->size() != t->spans.size()) return;
    size_t skipped = 0;
    size_t kept = 0;
    for (size_t i = 0; i < t->spans.size(); ++i) {
      if ((*there)[i]) {
        ++skipped;
      } else {
        if (kept != i) t->spans[kept] = std::move(t->spans[i]);
        ++kept;
      }
    }
    t->spans.resize(kept);
    sampler_->stats_.replayed_spans_skipped.fetch_add(skipped, std::memory_order_relaxed);
  }

  // Inserts a decision loaded from the log (before the shard's thread runs).
  void RestoreDecision(DecisionRecord&& r) {
    if (r.kept) {
      kept_.Insert(r.trace_id, CachedDecision{r.decided_at, std::move(r.policy)});
    } else {
      not_kept_.Insert(r.trace_id, CachedDecision{r.decided_at, ""});
    }
  }

  void Decide(std::vector<PendingTrace>* traces, absl::Time now) {
    SamplerStats& stats = sampler_->stats_;
    const bool dry_run = sampler_->options_.dry_run;
    std::shared_ptr<PolicySet> set = std::atomic_load(&policies_);
    SpanBytesReader* const reader = sampler_->span_bytes_.load();
    KeptTraces kept;
    int64_t kept_oldest = kNothing;
    DecisionLog* log = sampler_->options_.decision_log;
    std::vector<DecisionRecord> records;
    if (log != nullptr) records.reserve(traces->size());
    TraceHook* const hook = sampler_->options_.hook;
    for (PendingTrace& t : *traces) {
      const uint64_t spans = t.SpanCount();
      const int64_t first_arrival = absl::ToUnixNanos(t.first_arrival);
      TraceView view(t, reader);
      const Verdict v = set->Evaluate(view, now);
      if (view.decode_error()) stats.evaluation_errors.fetch_add(1, std::memory_order_relaxed);
      stats.decision_latency.Observe(now - t.due);
      if (hook != nullptr) {
        if (t.spans_in_journal && !t.linked_keys.empty() &&
            !(hook->HoldsJournalReferences() && t.all_journaled)) {
          ReadBack(&t);
        }
        // The order tracker may hold the trace until its order is resolved, or keep it because
        // its order went wrong; it counts those itself.
        HookVerdict hv = hook->OnDecided(t, v.outcome == Verdict::Outcome::kSampled);
        if (hv.action == HookVerdict::kHold) continue;
        if (hv.action == HookVerdict::kKeep) {
          kept_oldest = std::min(kept_oldest, first_arrival);
          if (log != nullptr) records.push_back(DecisionRecord{t.trace_id, now, true, hv.reason});
          kept_.Insert(t.trace_id, CachedDecision{now, hv.reason});
          ReadBack(&t);
          for (const auto& [key, value] : hv.annotations) Tag(&t.spans, key, value);
          kept.push_back(
              KeptTrace{std::move(t.trace_id), std::move(hv.reason), std::move(t.spans)});
          continue;
        }
      }
      const char* dry_run_decision = "sampled";
      std::string policy;
      switch (v.outcome) {
        case Verdict::Outcome::kSampled: {
          PolicyStats* ps = set->stats(v.policy);
          ps->traces_sampled.fetch_add(1, std::memory_order_relaxed);
          ps->spans_sampled.fetch_add(spans, std::memory_order_relaxed);
          policy = set->name(v.policy);
          break;
        }
        case Verdict::Outcome::kDropped:
          stats.traces_dropped.fetch_add(1, std::memory_order_relaxed);
          stats.spans_dropped.fetch_add(spans, std::memory_order_relaxed);
          dry_run_decision = "dropped";
          if (dry_run) policy = set->name(v.policy);
          break;
        case Verdict::Outcome::kNotSampled:
          stats.traces_not_sampled.fetch_add(1, std::memory_order_relaxed);
          stats.spans_not_sampled.fetch_add(spans, std::memory_order_relaxed);
          dry_run_decision = "not_sampled";
          break;
      }
      const bool keep = dry_run || v.outcome == Verdict::Outcome::kSampled;
      if (!keep) {
        if (log != nullptr) records.push_back(DecisionRecord{t.trace_id, now, false, ""});
        not_kept_.Insert(t.trace_id, CachedDecision{now, ""});
        continue;
      }
      if (log != nullptr) records.push_back(DecisionRecord{t.trace_id, now, true, policy});
      kept_.Insert(t.trace_id, CachedDecision{now, policy});
      kept_oldest = std::min(kept_oldest, first_arrival);
      ReadBack(&t);
      KeptTrace& k = kept.emplace_back();
      k.trace_id = std::move(t.trace_id);
      k.policy = std::move(policy);
      k.spans = std::move(t.spans);
      if (!k.policy.empty()) Tag(&k.spans, kPolicyAttribute, k.policy);
      if (dry_run) Tag(&k.spans, kDryRunAttribute, dry_run_decision);
    }
    if (sampler_->options_.hook != nullptr) sampler_->options_.hook->OnDecisionsDone();
    if (!kept.empty()) Hand(std::move(kept), kept_oldest);
    // After the hand-over, before PublishOldest() lets the journal forget these traces.
    if (!records.empty()) {
      if (absl::Status s = log->Append(records); !s.ok()) {
        if (sampler_->stats_.decision_log_errors.fetch_add(1, std::memory_order_relaxed) % 1000 ==
            0) {
          TK_LOG(Warning) << "decisions not recorded (a restart may decide them again): " << s;
        }
      }
    }
  }

  // Hands kept traces downstream. A batch the consumer could not take (kUnavailable: the store
  // refuses writes on a full disk) waits in this shard, in order, and is offered again at every
  // poll; until it is taken it holds the low-water mark at its oldest arrival, so the journal
  // keeps its spans and a crash meanwhile replays them. `oldest_arrival`: unix nanos.
  void Hand(KeptTraces&& kept, int64_t oldest_arrival) {
    if (waiting_.empty()) {
      absl::Status s = sampler_->consumer_->Consume(std::move(kept));
      if (s.code() != absl::StatusCode::kUnavailable) {
        CountError(s);
        return;
      }
      // kUnavailable: `kept` was left untouched (TraceConsumer's contract).
      LogWaiting(s);
    }
    size_t spans = 0;
    for (const KeptTrace& k : kept) spans += k.spans.size();
    SamplerStats& stats = sampler_->stats_;
    const size_t limit =
        std::max<size_t>(1, sampler_->options_.max_waiting_spans / sampler_->shards_.size());
    if (waiting_spans_ + spans > limit) {
      stats.spans_lost_downstream.fetch_add(spans, std::memory_order_relaxed);
      TK_LOG(Error) << spans << " kept spans lost: the consumer refuses them and " << waiting_spans_
                    << " spans already wait (sampler.max_waiting_spans)";
      return;
    }
    waiting_spans_ += spans;
    stats.spans_waiting.fetch_add(spans, std::memory_order_relaxed);
    waiting_.push_back(Waiting{std::move(kept), oldest_arrival, spans});
  }

  // Offers waiting batches again, oldest first, until one is refused.
  void RetryWaiting() {
    SamplerStats& stats = sampler_->stats_;
    while (!waiting_.empty()) {
      Waiting& w = waiting_.front();
      absl::Status s = sampler_->consumer_->Consume(std::move(w.traces));
      if (s.code() == absl::StatusCode::kUnavailable) return;  // untouched: try next poll
      CountError(s);
      waiting_spans_ -= w.spans;
      stats.spans_waiting.fetch_sub(w.spans, std::memory_order_relaxed);
      stats.spans_retried.fetch_add(w.spans, std::memory_order_relaxed);
      waiting_.pop_front();
    }
  }

  // Reads back the spans of a kept trace that were left in the journal, and the bytes of those
  // whose bytes were. Spans that cannot be read (their segment damaged or gone) are dropped and
  // counted: nothing empty goes on.
  void ReadBack(PendingTrace* t) {
    SpanBytesReader* reader = sampler_->span_bytes_.load();
    uint64_t lost = 0;
    absl::Status s = ReadBackSpans(t, reader);
    if (!s.ok()) {
      lost = t->span_count - t->spans.size();
      t->spans_in_journal = false;  // what is left is what goes on
    }
    std::vector<SpanRecord>* spans = &t->spans;
    if (reader != nullptr && AnyInJournalOnly(*spans)) {
      if (absl::Status b = reader->ReadSpanBytes(spans); !b.ok()) {
        if (s.ok()) s = b;
        const auto end = std::remove_if(spans->begin(), spans->end(),
                                        [](const SpanRecord& r) { return r.in_journal_only; });
        lost += static_cast<uint64_t>(spans->end() - end);
        spans->erase(end, spans->end());
      }
    }
    if (lost == 0) return;
    const uint64_t before = sampler_->stats_.spans_unreadable.fetch_add(lost);
    if (before == 0 || before / 10000 != (before + lost) / 10000) {  // the first, then 1 in ~10k
      TK_LOG(Error) << lost << " spans of decided traces lost: they cannot be read back from "
                    << "the journal: " << s;
    }
  }

  void CountError(const absl::Status& s) {
    if (s.ok()) return;
    // Downstream components count what they lost; this records that a batch was refused.
    const uint64_t n = sampler_->stats_.consumer_errors.fetch_add(1, std::memory_order_relaxed);
    if (n % 1000 == 0) TK_LOG(Warning) << "kept traces not fully handed downstream: " << s;
  }

  void LogWaiting(const absl::Status& s) {
    if (sampler_->stats_.batches_waited.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
      TK_LOG(Warning) << "kept traces wait in the sampler (offered again every poll): " << s;
    }
  }

  static constexpr int64_t kNothing = INT64_MAX;

  // After the traces taken from the buffer were decided and handed downstream (or wait).
  void PublishOldest() {
    const absl::Time oldest = buffer_.OldestArrival();
    int64_t mark = oldest == absl::InfiniteFuture() ? kNothing : absl::ToUnixNanos(oldest);
    for (const Waiting& w : waiting_) mark = std::min(mark, w.oldest_arrival);
    oldest_pending_.store(mark);
  }

  // Publishes this shard's share of the pending gauges.
  void Publish() {
    SamplerStats& stats = sampler_->stats_;
    const auto traces = static_cast<int64_t>(buffer_.trace_count());
    const auto spans = static_cast<int64_t>(buffer_.span_count());
    const auto bytes = static_cast<int64_t>(buffer_.span_bytes());
    stats.traces_pending.fetch_add(traces - published_traces_, std::memory_order_relaxed);
    stats.spans_pending.fetch_add(spans - published_spans_, std::memory_order_relaxed);
    stats.bytes_pending.fetch_add(bytes - published_bytes_, std::memory_order_relaxed);
    published_traces_ = traces;
    published_spans_ = spans;
    published_bytes_ = bytes;
  }

  struct Waiting {
    KeptTraces traces;
    int64_t oldest_arrival;  // unix nanos
    size_t spans;
  };

  Sampler* sampler_;
  // Touched only by the shard's thread (or the test's).
  TraceBuffer buffer_;
  absl::Time decide_after_ = absl::InfinitePast();
  std::deque<Waiting> waiting_;  // kept batches the consumer could not take yet, oldest first
  size_t waiting_spans_ = 0;
  DecisionCache kept_;
  DecisionCache not_kept_;
  int64_t published_traces_ = 0;
  int64_t published_spans_ = 0;
  int64_t published_bytes_ = 0;
  uint64_t published_evictions_ = 0;
  uint64_t published_limit_hits_ = 0;
  // Written by SetPolicies, read by the shard's thread; both through std::atomic_load/store.
  std::shared_ptr<PolicySet> policies_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TraceSpans> queue_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> queue_front_arrival_{kNothing};  // oldest arrival in queue_
  std::atomic<int64_t> oldest_pending_{kNothing};       // see PublishOldest()
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
  auto sampler = std::unique_ptr<Sampler>(new Sampler(options, consumer, clock));
  TK_ASSIGN_OR_RETURN(auto sets, sampler->BuildSets(options.policies));
  TraceBufferOptions b;
  b.decision_wait = options.decision_wait;
  b.decision_wait_after_root = OrInfinite(options.decision_wait_after_root_received);
  b.max_trace_age = OrInfinite(options.max_trace_age);
  b.max_traces = std::max<size_t>(1, options.max_pending_traces / sets.size());
  b.max_bytes = options.max_pending_bytes == 0
                    ? 0
                    : std::max<size_t>(1, options.max_pending_bytes / sets.size());
  b.max_spans_per_trace = options.max_spans_per_trace;
  b.max_bytes_per_trace = options.max_bytes_per_trace;
  const size_t kept_cache = (options.sampled_cache_size + sets.size() - 1) / sets.size();
  const size_t dropped_cache = (options.non_sampled_cache_size + sets.size() - 1) / sets.size();
  for (auto& set : sets) {
    sampler->shards_.push_back(
        std::make_unique<Shard>(sampler.get(), b, kept_cache, dropped_cache, std::move(set)));
  }
  return sampler;
}

Sampler::Sampler(const SamplerOptions& options, TraceConsumer* consumer, Clock* clock)
    : options_(options), decide_every_(DecideEvery(options)), consumer_(consumer), clock_(clock) {
  policy_configs_ = options.policies;
}

absl::Duration Sampler::DecideEvery(const SamplerOptions& options) {
  absl::Duration wait = options.decision_wait;
  for (absl::Duration d : {options.decision_wait_after_root_received, options.max_trace_age}) {
    if (d > absl::ZeroDuration()) wait = std::min(wait, d);
  }
  return std::min(absl::Milliseconds(100), wait / 50);
}

Sampler::~Sampler() { Shutdown(absl::InfiniteFuture()); }

absl::StatusOr<std::vector<std::shared_ptr<PolicySet>>> Sampler::BuildSets(
    const std::vector<PolicyConfig>& policies) {
  int n = shards_.empty() ? options_.num_shards : num_shards();
  if (n == 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  PolicySetOptions o;
  o.shards = n;
  o.sample_on_first_match = options_.sample_on_first_match;
  std::vector<std::shared_ptr<PolicySet>> sets;
  for (int i = 0; i < n; ++i) {
    TK_ASSIGN_OR_RETURN(std::unique_ptr<PolicySet> set,
                        PolicySet::Create(policies, o, &policy_stats_));
    sets.push_back(std::move(set));
  }
  return sets;
}

absl::Status Sampler::SetPolicies(const std::vector<PolicyConfig>& policies) {
  std::lock_guard<std::mutex> lock(policies_mu_);
  TK_ASSIGN_OR_RETURN(auto sets, BuildSets(policies));
  for (size_t i = 0; i < shards_.size(); ++i) shards_[i]->SetPolicies(std::move(sets[i]));
  policy_configs_ = policies;
  stats_.policy_updates.fetch_add(1, std::memory_order_relaxed);
  TK_LOG(Info) << "sampling policies replaced (" << policies.size() << " policies)";
  return absl::OkStatus();
}

std::vector<PolicyConfig> Sampler::policies() const {
  std::lock_guard<std::mutex> lock(policies_mu_);
  return policy_configs_;
}

uint64_t Sampler::traces_sampled_total() const {
  uint64_t sum = 0;
  for (const auto& [name, s] : policy_stats_.All()) sum += s->traces_sampled.load();
  return sum;
}

uint64_t Sampler::spans_sampled_total() const {
  uint64_t sum = 0;
  for (const auto& [name, s] : policy_stats_.All()) sum += s->spans_sampled.load();
  return sum;
}

int Sampler::num_shards() const { return static_cast<int>(shards_.size()); }

absl::Status Sampler::Precheck(int64_t span_count) {
  absl::Status refused;
  if (!accepting_.load(std::memory_order_acquire)) {
    refused = absl::UnavailableError("tracekeep is shutting down");
  } else if (options_.when_full == WhenFull::kRefuse &&
             stats_.traces_pending.load(std::memory_order_relaxed) +
                     stats_.traces_queued.load(std::memory_order_relaxed) >=
                 options_.max_pending_traces) {
    refused = absl::ResourceExhaustedError(absl::StrCat("sampler holds max_pending_traces (",
                                                        options_.max_pending_traces,
                                                        ") traces; retry later"));
  } else if (options_.when_full == WhenFull::kRefuse && options_.max_pending_bytes != 0 &&
             stats_.bytes_pending.load(std::memory_order_relaxed) >= options_.max_pending_bytes) {
    refused = absl::ResourceExhaustedError(absl::StrCat("sampler holds max_pending_bytes (",
                                                        options_.max_pending_bytes,
                                                        ") span bytes; retry later"));
  } else if (stats_.spans_queued.load(std::memory_order_relaxed) +
                 static_cast<uint64_t>(std::max<int64_t>(span_count, 0)) >
             options_.max_queued_spans) {
    refused = absl::ResourceExhaustedError(absl::StrCat(
        "sampler intake queue is full (", options_.max_queued_spans, " spans); retry later"));
  }
  if (!refused.ok()) stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
  return refused;
}

absl::Status Sampler::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  if (!accepting_.load(std::memory_order_acquire)) {
    stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
    return absl::UnavailableError("tracekeep is shutting down");
  }
  if (options_.when_full == WhenFull::kRefuse) {
    // Every queued trace may be new: a conservative bound, no lock taken.
    const uint64_t pending = stats_.traces_pending.load(std::memory_order_relaxed) +
                             stats_.traces_queued.load(std::memory_order_relaxed);
    if (pending + traces.size() > options_.max_pending_traces) {
      stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
      return absl::ResourceExhaustedError(absl::StrCat("sampler holds max_pending_traces (",
                                                       options_.max_pending_traces,
                                                       ") traces; retry later"));
    }
    if (options_.max_pending_bytes != 0 &&
        stats_.bytes_pending.load(std::memory_order_relaxed) >= options_.max_pending_bytes) {
      stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
      return absl::ResourceExhaustedError(absl::StrCat("sampler holds max_pending_bytes (",
                                                       options_.max_pending_bytes,
                                                       ") span bytes; retry later"));
    }
  }
  const uint64_t queued =
      stats_.spans_queued.fetch_add(span_count, std::memory_order_relaxed) + span_count;
  if (queued > options_.max_queued_spans) {
    stats_.spans_queued.fetch_sub(span_count, std::memory_order_relaxed);
    stats_.spans_refused.fetch_add(span_count, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat(
        "sampler intake queue is full (", options_.max_queued_spans, " spans); retry later"));
  }
  Distribute(std::move(traces));
  return absl::OkStatus();
}

void Sampler::Restore(std::vector<TraceSpans>&& traces, int64_t span_count) {
  stats_.spans_queued.fetch_add(span_count, std::memory_order_relaxed);
  Distribute(std::move(traces));
}

void Sampler::Distribute(std::vector<TraceSpans>&& traces) {
  stats_.traces_queued.fetch_add(traces.size(), std::memory_order_relaxed);
  if (shards_.size() == 1) {
    shards_[0]->Enqueue(std::move(traces));
    return;
  }
  std::vector<std::vector<TraceSpans>> per_shard(shards_.size());
  for (TraceSpans& t : traces) per_shard[t.hash % shards_.size()].push_back(std::move(t));
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (!per_shard[i].empty()) shards_[i]->Enqueue(std::move(per_shard[i]));
  }
}

absl::Time Sampler::LowWaterMark() const {
  int64_t mark = INT64_MAX;
  for (const auto& shard : shards_) mark = std::min(mark, shard->LowWaterMark());
  return mark == INT64_MAX ? absl::InfiniteFuture() : absl::FromUnixNanos(mark);
}

absl::StatusOr<uint64_t> Sampler::LoadDecisions() {
  if (options_.decision_log == nullptr) return 0;
  if (started_.load()) return absl::FailedPreconditionError("LoadDecisions() after Start()");
  uint64_t n = 0;
  TK_RETURN_IF_ERROR(options_.decision_log->Load([&](DecisionRecord&& r) {
    shards_[TraceIdHash(r.trace_id) % shards_.size()]->RestoreDecision(std::move(r));
    ++n;
  }));
  stats_.decisions_restored.fetch_add(n, std::memory_order_relaxed);
  return n;
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
