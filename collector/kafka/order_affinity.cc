#include "collector/kafka/order_affinity.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/kafka/partitioner.h"
#include "collector/sampling/sampler.h"
#include "collector/sampling/span_scan.h"

namespace tracekeep::kafka {

OrderRouter::OrderRouter(const Options& options, OrderAffinityStats* stats)
    : options_(options), reader_(options_.config), stats_(stats) {}

void OrderRouter::OnBuffered(TraceSpans& spans) {
  std::vector<orders::OrderFacts> facts;
  for (const SpanRecord& span : spans.spans) reader_.Read(span, &facts);
  for (orders::OrderFacts& f : facts) {
    if (std::find(spans.linked_keys.begin(), spans.linked_keys.end(), f.order_id) ==
        spans.linked_keys.end()) {
      spans.linked_keys.push_back(std::move(f.order_id));
    }
  }
}

sampling::HookVerdict OrderRouter::OnDecided(sampling::PendingTrace& trace, bool sampled) {
  sampling::HookVerdict verdict;
  if (trace.linked_keys.empty()) return verdict;
  if (AnyInJournalOnly(trace.spans)) {
    absl::Status read = options_.read_span_bytes
                            ? options_.read_span_bytes(&trace.spans)
                            : absl::FailedPreconditionError("no reader for journaled span bytes");
    if (!read.ok()) {
      // Not routed: the policies' decision stands (the sampler drops what it cannot read back).
      stats_->spans_route_dropped.fetch_add(trace.spans.size(), std::memory_order_relaxed);
      TK_LOG(Error) << "order router: trace " << ToHex(trace.trace_id)
                    << " not routed to its orders, its spans cannot be read back: " << read;
      return verdict;
    }
  }
  // One record per partition of the order topic: an owner judges every order of its partition.
  std::vector<int32_t> partitions;
  std::vector<const std::string*> keys;
  for (const std::string& id : trace.linked_keys) {
    const int32_t p = Fnv1aPartition(id, options_.partitions);
    if (std::find(partitions.begin(), partitions.end(), p) != partitions.end()) continue;
    partitions.push_back(p);
    keys.push_back(&id);
  }
  std::vector<TraceSpans> routed(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    TraceSpans& t = routed[i];
    t.trace_id = trace.trace_id;
    t.hash = trace.hash;
    t.linked_keys.push_back(*keys[i]);
    // The last copy takes the spans unless the policies keep the trace here.
    if (i + 1 == keys.size() && !sampled) {
      t.spans = std::move(trace.spans);
      trace.spans.clear();
    } else {
      t.spans = trace.spans;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TraceSpans>& batch = batches_[std::this_thread::get_id()];
    for (TraceSpans& t : routed) batch.push_back(std::move(t));
  }
  if (!sampled) verdict.action = sampling::HookVerdict::kHold;
  return verdict;
}

void OrderRouter::OnDecisionsDone() {
  std::vector<TraceSpans> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = batches_.find(std::this_thread::get_id());
    if (it == batches_.end() || it->second.empty()) return;
    batch.swap(it->second);
  }
  int64_t spans = 0;
  for (const TraceSpans& t : batch) spans += static_cast<int64_t>(t.spans.size());
  absl::Duration wait = options_.retry_wait;
  while (true) {
    // The producer reads the batch and leaves it as it is, taken or not.
    absl::Status s = options_.producer->Offer(std::move(batch), spans);
    if (s.ok()) {
      stats_->traces_routed.fetch_add(batch.size(), std::memory_order_relaxed);
      stats_->spans_routed.fetch_add(static_cast<uint64_t>(spans), std::memory_order_relaxed);
      return;
    }
    if (absl::Now() + wait > absl::FromUnixNanos(stop_at_.load())) {
      stats_->spans_route_dropped.fetch_add(static_cast<uint64_t>(spans),
                                            std::memory_order_relaxed);
      TK_LOG(Error) << "order router: " << batch.size()
                    << " traces not routed to their orders' owners at shutdown: " << s;
      return;
    }
    if (stats_->route_retries.fetch_add(1, std::memory_order_relaxed) % 100 == 0) {
      TK_LOG(Warning) << "order router: producing " << batch.size()
                      << " traces into the order topic (retrying): " << s;
    }
    absl::SleepFor(wait);
    wait = std::min(wait * 2, absl::Seconds(1));
  }
}

void OrderRouter::Stop(absl::Time deadline) { stop_at_.store(absl::ToUnixNanos(deadline)); }

OrderOwnerIntake::OrderOwnerIntake(orders::OrderTracker* tracker, TraceConsumer* consumer,
                                   OrderAffinityStats* stats)
    : tracker_(tracker), consumer_(consumer), stats_(stats) {}

absl::Status OrderOwnerIntake::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  (void)span_count;
  std::lock_guard<std::mutex> lock(mu_);
  KeptTraces& kept = kept_;
  const absl::Time now = absl::Now();
  for (TraceSpans& t : traces) {
    const uint64_t spans = t.spans.size();
    stats_->traces_received.fetch_add(1, std::memory_order_relaxed);
    stats_->spans_received.fetch_add(spans, std::memory_order_relaxed);
    t.linked_keys.clear();  // the tracker links the orders this member owns
    tracker_->OnBuffered(t);
    if (t.linked_keys.empty()) {
      stats_->traces_released.fetch_add(1, std::memory_order_relaxed);
      stats_->spans_released.fetch_add(spans, std::memory_order_relaxed);
      continue;
    }
    sampling::PendingTrace p;
    p.trace_id = std::move(t.trace_id);
    p.hash = t.hash;
    p.first_arrival = now;
    p.last_arrival = now;
    p.all_journaled = false;
    for (const SpanRecord& s : t.spans) p.span_bytes += s.span.size();
    p.spans = std::move(t.spans);
    p.linked_keys = std::move(t.linked_keys);
    // As the sampler hands it when no policy keeps it: the trace owner applied the policies.
    sampling::HookVerdict v = tracker_->OnDecided(p, /*sampled=*/false);
    switch (v.action) {
      case sampling::HookVerdict::kKeep: {
        stats_->traces_kept.fetch_add(1, std::memory_order_relaxed);
        KeptTrace& k = kept.emplace_back();
        k.trace_id = std::move(p.trace_id);
        k.policy = v.reason;
        k.spans = std::move(p.spans);
        for (SpanRecord& s : k.spans) {
          for (const auto& [key, value] : v.annotations) {
            sampling::AppendStringAttribute(key, value, &s.span);
          }
          sampling::AppendStringAttribute(sampling::kPolicyAttribute, v.reason, &s.span);
        }
        break;
      }
      case sampling::HookVerdict::kHold:
        stats_->traces_held.fetch_add(1, std::memory_order_relaxed);
        break;
      case sampling::HookVerdict::kPolicy:
        stats_->traces_released.fetch_add(1, std::memory_order_relaxed);
        stats_->spans_released.fetch_add(spans, std::memory_order_relaxed);
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status OrderOwnerIntake::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  // Holds are durable before the records count as handled: one write for all of them.
  tracker_->OnDecisionsDone();
  if (kept_.empty()) return absl::OkStatus();
  absl::Status s = consumer_->Consume(std::move(kept_));
  // kUnavailable: the consumer took nothing and left the batch as it was (offered again at the
  // next Flush); otherwise it is taken (or lost, counted by the caller).
  if (s.code() != absl::StatusCode::kUnavailable) kept_.clear();
  return s;
}

OrderOwnership::OrderOwnership(int32_t partitions)
    : partitions_(std::max(1, partitions)), owned_(new std::atomic<bool>[partitions_]) {
  for (int32_t i = 0; i < partitions_; ++i) owned_[i] = false;
}

int32_t OrderOwnership::PartitionOf(absl::string_view order_id) const {
  return Fnv1aPartition(order_id, partitions_);
}

bool OrderOwnership::Owns(absl::string_view order_id) const {
  return owned_[PartitionOf(order_id)].load(std::memory_order_acquire);
}

void OrderOwnership::Set(int32_t partition, bool owned) {
  if (partition >= 0 && partition < partitions_) {
    owned_[partition].store(owned, std::memory_order_release);
  }
}

}  // namespace tracekeep::kafka
