// Order affinity across the members of a tracekeep cluster on Kafka.
//
// Traces are sampled by the member that owns their trace id's partition of the span topic; an
// order's traces land on any member. So that one member judges each order (with the same order
// tracker as a single tracekeep), every trace that names an order is routed, once decided by its
// trace owner, into the *order topic*: one record per (trace, order), keyed by the order id and
// partitioned with FNV-1a. The member assigned an order's partition of that topic (a consumer
// group of its own) is the order's owner: its OrderTracker links, holds and judges every trace of
// the order, keeps all of them when the order turns anomalous (earlier ones included) and
// releases them otherwise, exactly as on one machine.
//
// Guarantees: the router acknowledges a decision batch to the sampler only once Kafka holds its
// records (so the span topic's offsets are not committed past them); the owner commits the order
// topic only up to the first arrival of its oldest unresolved order (OrderTracker::
// OldestOpenArrival), so when an owner dies or a partition moves, the new owner replays every
// trace of every unresolved order and judges it again (duplicates possible, never loss). A
// member that loses a partition forgets its unresolved orders (they are judged elsewhere now).
#ifndef TRACEKEEP_COLLECTOR_KAFKA_ORDER_AFFINITY_H_
#define TRACEKEEP_COLLECTOR_KAFKA_ORDER_AFFINITY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/kafka/kafka_gateway.h"
#include "collector/orders/order_tracker.h"
#include "collector/orders/span_reader.h"
#include "collector/pipeline/consumer.h"
#include "collector/sampling/trace_hook.h"

namespace tracekeep::kafka {

struct OrderAffinityStats {
  std::atomic<uint64_t> traces_routed{0};  // (trace, order partition) records Kafka acknowledged
  std::atomic<uint64_t> spans_routed{0};
  std::atomic<uint64_t> route_retries{0};  // decision batches produced again after a refusal
  // Spans of decided traces the router could not get into Kafka before shutting down (lost).
  std::atomic<uint64_t> spans_route_dropped{0};
  std::atomic<uint64_t> traces_received{0};  // routed traces taken by this member as owner
  std::atomic<uint64_t> spans_received{0};
  std::atomic<uint64_t> traces_kept{0};  // of those, kept at once (their order keeps traces)
  std::atomic<uint64_t> traces_held{0};  // held until their order is resolved
  // Received, but their order is resolved healthy or not tracked (over max_traces_per_order, or
  // owned by another member meanwhile): not kept here (their trace owner applied its policies).
  std::atomic<uint64_t> traces_released{0};
  std::atomic<uint64_t> spans_released{0};
  std::atomic<uint64_t> orders_forgotten{0};  // unresolved orders handed to another owner
};

// On every member: the sampler's hook. Finds the orders a trace names (the order tracker's span
// reader), and at the decision routes the trace into the order topic. A trace the policies keep
// is kept here too (and routed, so that its order learns what it says); any other trace is taken
// (kHold): its order's owner keeps or releases it.
class OrderRouter final : public sampling::TraceHook {
 public:
  struct Options {
    // The order tracker's configuration (attribute names).
    orders::OrdersConfig config = orders::DefaultOrdersConfig();
    // Produces into the order topic (key_by_linked_key). Not owned; must outlive the router.
    SpanIntake* producer = nullptr;
    // Partitions of the order topic.
    int32_t partitions = 1;
    // Reads span bytes released to the journal back (SpanRecord::in_journal_only). Default: none.
    std::function<absl::Status(std::vector<SpanRecord>*)> read_span_bytes;
    // The first wait before a refused batch is produced again (doubling up to 1 s).
    absl::Duration retry_wait = absl::Milliseconds(50);
  };
  OrderRouter(const Options& options, OrderAffinityStats* stats);

  void OnBuffered(TraceSpans& spans) override;
  sampling::HookVerdict OnDecided(sampling::PendingTrace& trace, bool sampled) override;
  // Produces the shard's routed traces and waits until Kafka acknowledged all of them, retrying
  // while Kafka refuses; gives up (counted) only once Stop was called.
  void OnDecisionsDone() override;
  // Makes OnDecisionsDone give up retrying after `deadline`.
  void Stop(absl::Time deadline);

 private:
  Options options_;
  const orders::SpanReader reader_;
  OrderAffinityStats* const stats_;
  std::atomic<int64_t> stop_at_{INT64_MAX};  // unix nanos
  std::mutex mu_;
  // Traces routed since the shard's last OnDecisionsDone, by shard thread.
  std::unordered_map<std::thread::id, std::vector<TraceSpans>> batches_ ABSL_GUARDED_BY(mu_);
};

// On every member: the intake of the order topic's consumer. Each routed trace goes through the
// order tracker as the sampler would hand it (buffered, then decided as not sampled): kept at
// once, held, or released. Offer defers the durable part: Flush writes the holds of every trace
// offered since the last Flush in one batch and hands the kept ones to `consumer` (the store
// and the exporter) in one call. The Kafka receiver calls Flush once per poll, before it counts
// the records as done.
class OrderOwnerIntake final : public SpanIntake {
 public:
  // Neither is owned; both must outlive the intake.
  OrderOwnerIntake(orders::OrderTracker* tracker, TraceConsumer* consumer,
                   OrderAffinityStats* stats);
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;
  // kUnavailable when `consumer` took nothing (the kept traces stay, for the next Flush).
  absl::Status Flush() override;

 private:
  orders::OrderTracker* const tracker_;
  TraceConsumer* const consumer_;
  OrderAffinityStats* const stats_;
  std::mutex mu_;
  KeptTraces kept_ ABSL_GUARDED_BY(mu_);  // kept since the last Flush
};

// Which partitions of the order topic this member is assigned, for OrderTrackerOptions::owns.
// Set on the order topic's consumer thread, read anywhere.
class OrderOwnership {
 public:
  explicit OrderOwnership(int32_t partitions);
  int32_t partitions() const { return partitions_; }
  int32_t PartitionOf(absl::string_view order_id) const;
  bool Owns(absl::string_view order_id) const;
  void Set(int32_t partition, bool owned);

 private:
  const int32_t partitions_;
  std::unique_ptr<std::atomic<bool>[]> owned_;
};

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_ORDER_AFFINITY_H_
