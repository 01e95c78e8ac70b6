// The order tracker: follows every order named by span attributes across services and traces,
// judges its lifecycle (collector/orders/lifecycle.h) and makes sure that every trace of an order
// that went wrong is kept. Traces of active orders are held durably in `order_hold` instead of
// being dropped at their decision; they are kept when the order turns anomalous (or is sampled by
// the healthy baseline) and released unkept otherwise.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_ORDER_TRACKER_H_
#define TRACEKEEP_COLLECTOR_ORDERS_ORDER_TRACKER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/orders/lifecycle.h"
#include "collector/orders/order_config.h"
#include "collector/orders/span_reader.h"
#include "collector/pipeline/consumer.h"
#include "collector/sampling/trace_hook.h"
#include "storage/kv_table.h"
#include "tracekeep/orders/v1/order.pb.h"

namespace tracekeep::orders {

// Span attribute carried by kept spans of an anomalous order: the anomaly types, comma-separated.
inline constexpr char kAnomalyAttribute[] = "tracekeep.order.anomaly";

struct OrderTrackerOptions {
  OrdersConfig config = DefaultOrdersConfig();
  // Receives kept traces (the sampler's consumer). Must outlive the tracker.
  TraceConsumer* consumer = nullptr;
  Clock* clock = nullptr;
  // Column families `orders` and `order_hold`. Must outlive the tracker.
  storage::KvTable* orders_table = nullptr;
  storage::KvTable* hold_table = nullptr;
  // Called (under the tracker's lock) with the span-time duration of every allowed transition.
  std::function<void(const std::string& from, const std::string& to, double seconds)> on_transition;
};

// Counters read by the metrics endpoint and the admin API.
struct OrderStats {
  std::atomic<uint64_t> spans_with_order{0};  // spans that named an order
  std::atomic<uint64_t> orders_tracked{0};    // gauge: orders in memory, not yet resolved
  std::atomic<uint64_t> orders_started{0};    // orders first seen
  std::atomic<uint64_t> orders_resolved{0};   // healthy (terminal) or anomalous verdicts
  std::atomic<uint64_t> orders_expired{0};    // forgotten after max_order_age
  std::atomic<uint64_t> traces_held{0};       // gauge
  std::atomic<uint64_t> held_bytes{0};        // gauge
  std::atomic<uint64_t> traces_kept{0};       // traces kept because of their order
  std::atomic<uint64_t> traces_released_unkept{0};
  std::atomic<uint64_t> spans_released_unkept{0};
  std::atomic<uint64_t> store_errors{0};
  std::atomic<uint64_t> records_purged{0};  // resolved records deleted after record_retention
  // Spans not tracked because their order already links max_traces_per_order other traces.
  std::atomic<uint64_t> spans_over_trace_limit{0};
  // Resolved orders dropped from memory beyond max_resolved_in_memory (still on disk).
  std::atomic<uint64_t> resolved_evicted{0};
  std::atomic<uint64_t> anomalies[7] = {};  // indexed like kAnomalyTypes
  // Per configured state (indexed like config.states): active orders in it, and those overdue.
  std::unique_ptr<std::atomic<uint64_t>[]> in_state;
  std::unique_ptr<std::atomic<uint64_t>[]> overdue;
};

struct OrderQuery {
  bool anomalous_only = false;
  std::string anomaly_type;                 // "" = any
  absl::Time since = absl::InfinitePast();  // anomalies detected at or after
  std::string state;  // "" = any; else only active or anomalous orders currently in it
  absl::Duration older_than = absl::ZeroDuration();  // with state: in it for at least this long
  size_t limit = 100;
};

class OrderTracker final : public sampling::TraceHook, public Component {
 public:
  // Loads active orders and the bookkeeping of held traces from the tables.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OrderTracker>> Create(
      const OrderTrackerOptions& options);
  ~OrderTracker() override;

  // sampling::TraceHook
  void OnBuffered(const TraceSpans& spans) override;
  sampling::HookVerdict OnDecided(sampling::PendingTrace& trace, bool sampled) override;

  // Starts the thread that checks deadlines and holds every check_interval.
  absl::Status Start() override;
  // Stops the thread and writes every changed record.
  void Shutdown(absl::Time deadline) override;

  // Checks deadlines, grace periods and hold limits at the clock's now; writes changed records.
  void Check();

  // The record of one order (memory first, then disk). NotFound when unknown.
  [[nodiscard]] absl::StatusOr<v1::Order> GetOrder(const std::string& order_id);
  // Orders matching `query`, most recently active first.
  [[nodiscard]] absl::StatusOr<std::vector<v1::Order>> ListOrders(const OrderQuery& query);
  // Keeps every trace of the order, held, pending and future. NotFound when unknown.
  [[nodiscard]] absl::Status ForceKeep(const std::string& order_id);

  const OrderStats& stats() const { return stats_; }
  const OrdersConfig& config() const { return lifecycle_.config(); }

 private:
  struct Entry {
    v1::Order record;
    bool dirty = false;
    absl::Time retain_until = absl::InfiniteFuture();  // resolved: evicted from memory after
    size_t held_traces = 0;
    size_t held_bytes = 0;
    absl::Time oldest_hold = absl::InfiniteFuture();
  };

  explicit OrderTracker(const OrderTrackerOptions& options);
  [[nodiscard]] absl::Status Load();
  Entry* FindOrLoad(const std::string& order_id, bool create) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Ingest(Entry* e, const OrderFacts& facts, const TraceSpans& spans, const SpanRecord& span,
              absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Judge(Entry* e, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Resolve(Entry* e, v1::Order::Resolution resolution, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps (to_deliver_) or drops every held trace of the order.
  void ReleaseHeld(Entry* e, bool keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Reason(const Entry& e) const;
  void Annotate(const Entry& e, std::vector<SpanRecord>* spans) const;
  bool BaselineKeeps(const std::string& order_id) const;
  void FlushDirty() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes records resolved more than record_retention ago (at most hourly).
  void PurgeResolved(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands to_deliver_ to the consumer, outside the lock.
  void Deliver() ABSL_LOCKS_EXCLUDED(mu_);
  void Run();

  const Lifecycle lifecycle_;
  const SpanReader reader_;
  OrderTrackerOptions options_;
  OrderStats stats_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> orders_ ABSL_GUARDED_BY(mu_);
  // Order ids of traces buffered but not decided yet.
  absl::flat_hash_map<std::string, std::vector<std::string>> trace_orders_ ABSL_GUARDED_BY(mu_);
  KeptTraces to_deliver_ ABSL_GUARDED_BY(mu_);
  uint64_t hold_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  size_t total_held_traces_ ABSL_GUARDED_BY(mu_) = 0;
  size_t total_held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_purge_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ ABSL_GUARDED_BY(run_mu_) = false;
  std::thread thread_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_ORDER_TRACKER_H_
