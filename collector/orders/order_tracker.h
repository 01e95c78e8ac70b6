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
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
#include "collector/orders/order_list.h"
#include "collector/orders/order_record.h"
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
  // Column family `order_index` (anomalous orders by time, see order_list.h), written with the
  // records; nullptr = listings scan `orders`. Must outlive the tracker.
  storage::KvTable* index_table = nullptr;
  // Called with the span-time duration of every allowed transition (under the lock of one
  // tracker shard: must be thread-safe and cheap).
  std::function<void(const std::string& from, const std::string& to, double seconds)> on_transition;
  // Tracker shards: orders are spread over them by id, each with its own lock. Default: 16.
  int shards = 16;
  // Reads an entry of the intake journal back (storage::Journal::ReadAt). When set, a held trace
  // whose spans are all in the journal is held as a reference to its entries for
  // config.hold_in_journal (the journal keeps them: see LowWaterMark()), then copied into
  // order_hold. Default: none (every hold is written to order_hold at once).
  // Called with the entry's place and the trace id whose spans are wanted (only those need be
  // decoded).
  std::function<absl::StatusOr<std::vector<TraceSpans>>(const JournalRef&, absl::string_view)>
      read_journal;
  // Reads back span bytes the sampler released to the journal (SpanRecord::in_journal_only),
  // for a trace held by copy. Default: none (nothing is released).
  std::function<absl::Status(std::vector<SpanRecord>*)> read_span_bytes;
  // The orders this tracker judges. Facts naming any other order are ignored (in a cluster, the
  // orders whose partition of the order topic another member owns: they are judged there).
  // Called under a tracker shard's lock: must be thread-safe and cheap. Default: every order.
  std::function<bool(absl::string_view order_id)> owns;
  // Called with the records (key: order id, value: serialized v1::Order) each time changed
  // records were written, in the order they were written: in a cluster, they are published for
  // `order get` on every member. Must not block. Default: none.
  std::function<void(const std::vector<storage::KvWrite>& records)> on_records_written;
  // Reads the latest record of an order published by whichever tracker judged it last (in a
  // cluster, the records topic every member reads): an order this tracker takes over continues
  // from it (a resolved verdict stands; an active order is rebuilt on top of it from the order
  // topic) instead of starting afresh. Preferred to `orders_table` when it has the order.
  // Called under a tracker shard's lock. Default: none.
  std::function<absl::StatusOr<std::optional<std::string>>(const std::string& order_id)>
      read_shared_record;
};

// Counters read by the metrics endpoint and the admin API.
struct OrderStats {
  std::atomic<uint64_t> spans_with_order{0};        // spans that named an order
  std::atomic<uint64_t> orders_tracked{0};          // gauge: orders in memory, not yet resolved
  std::atomic<uint64_t> orders_started{0};          // orders first seen
  std::atomic<uint64_t> orders_resolved{0};         // healthy (terminal) or anomalous verdicts
  std::atomic<uint64_t> orders_expired{0};          // forgotten after max_order_age
  std::atomic<uint64_t> orders_read_only{0};        // no state recorded within read_only_hold_time
  std::atomic<uint64_t> traces_held{0};             // gauge
  std::atomic<uint64_t> traces_held_in_journal{0};  // gauge: of those, held as journal references
  std::atomic<uint64_t> traces_spilled{0};          // journal references copied to order_hold
  std::atomic<uint64_t> held_bytes{0};   // gauge: serialized held traces (before compression)
  std::atomic<uint64_t> traces_kept{0};  // traces kept because of their order
  std::atomic<uint64_t> traces_released_unkept{0};
  std::atomic<uint64_t> spans_released_unkept{0};
  // Of traces_released_unkept: released because max_held_traces / max_held_mib was reached (their
  // order was still unresolved), or because they were held max_hold_time.
  std::atomic<uint64_t> traces_released_no_space{0};
  std::atomic<uint64_t> traces_released_hold_time{0};
  std::atomic<uint64_t> store_errors{0};
  std::atomic<uint64_t> records_purged{0};  // resolved records deleted after record_retention
  // Spans not tracked because their order already links max_traces_per_order other traces.
  std::atomic<uint64_t> spans_over_trace_limit{0};
  // State events / invariant values not recorded because the order already has
  // kMaxEventsPerOrder of them (a hot id recording the same state over and over).
  std::atomic<uint64_t> events_over_limit{0};
  // Resolved orders dropped from memory beyond max_resolved_in_memory (still on disk).
  std::atomic<uint64_t> resolved_evicted{0};
  // Orders Check() looked at because one of their checks was due (its work, in orders).
  std::atomic<uint64_t> orders_checked{0};
  // Gauge: orders in memory in compact form (orders.compact_after).
  std::atomic<int64_t> orders_compact{0};
  std::atomic<uint64_t> anomalies[7] = {};  // indexed like kAnomalyTypes
  // Per configured state (indexed like config.states): active orders in it, and those overdue.
  std::unique_ptr<std::atomic<int64_t>[]> in_state;
  std::unique_ptr<std::atomic<int64_t>[]> overdue;
};

struct HeldRef;  // one held trace (packed_order.h)

// State events and invariant values one order record keeps at most.
inline constexpr int kMaxEventsPerOrder = 256;

class OrderTracker final : public sampling::TraceHook, public Component {
 public:
  // Loads active orders and the bookkeeping of held traces from the tables.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OrderTracker>> Create(
      const OrderTrackerOptions& options);
  ~OrderTracker() override;

  // sampling::TraceHook
  void OnBuffered(TraceSpans& spans) override;
  sampling::HookVerdict OnDecided(sampling::PendingTrace& trace, bool sampled) override;
  bool HoldsJournalReferences() const override;
  // Writes the traces held since the last call, in one batch.
  void OnDecisionsDone() override;

  // Journal entries that arrived at or after this time hold spans of held traces (see
  // OrderTrackerOptions::read_journal): the intake journal must keep them. InfiniteFuture when
  // none. Stays where it is after Shutdown (a restart replays those entries and holds them again).
  absl::Time LowWaterMark();

  // Starts the thread that checks deadlines and holds every check_interval.
  absl::Status Start() override;
  // Stops the thread and writes every changed record.
  void Shutdown(absl::Time deadline) override;

  // Handles every order whose next check (deadline, grace period, hold limit...) is due at the
  // clock's now: work in proportion to what is due, not to the orders tracked. Writes changed
  // records.
  void Check();

  // The record of one order (memory first, then disk). NotFound when unknown.
  [[nodiscard]] absl::StatusOr<v1::Order> GetOrder(const std::string& order_id);
  // Orders matching `query` (see order_list.h).
  [[nodiscard]] absl::StatusOr<OrderPage> ListOrders(const OrderQuery& query);
  // Keeps every trace of the order, held, pending and future. NotFound when unknown.
  [[nodiscard]] absl::Status ForceKeep(const std::string& order_id);

  // Forgets the active (unresolved) orders `which` selects, in memory and on disk, with their
  // held traces, unkept and uncounted: in a cluster, another member now judges them and rebuilds
  // them from the order topic. Resolved records stay on disk; resolved orders already written
  // leave memory (a later owner's record is then read again). Returns how many active orders
  // were forgotten.
  size_t ForgetActive(const std::function<bool(const std::string& order_id)>& which);

  // Every span taken before this time concerns orders that are resolved and whose kept traces
  // were handed on, or that were forgotten: what an order topic's offsets may be committed up to.
  // The earliest first arrival of an active order, or of a check handing traces on right now;
  // InfiniteFuture when none. Walks every order in memory.
  absl::Time OldestOpenArrival();

  const OrderStats& stats() const { return stats_; }
  const OrdersConfig& config() const { return lifecycle_.config(); }

 private:
  struct Shard;
  struct Entry;
  struct PendingHold;
  enum class ReleaseCause { kVerdict, kHoldTime, kNoSpace };

  explicit OrderTracker(const OrderTrackerOptions& options);
  [[nodiscard]] absl::Status Load();
  static size_t IdHash(absl::string_view order_id);
  Shard& ShardOfHash(size_t hash);
  Shard& ShardOf(absl::string_view order_id);
  // The entry of an order: in memory, else loaded from disk, else (with `create`) a new one.
  // `hash` is IdHash(order_id).
  Entry* FindOrLoad(Shard& shard, const std::string& order_id, bool create);
  Entry* FindOrLoad(Shard& shard, const std::string& order_id, size_t hash, bool create);
  // Takes an entry loaded from disk into the shard's bookkeeping.
  void Adopt(Shard& shard, Entry* e, absl::Time now);
  // Compact form (orders.compact_after). Every path that reads or changes an order's lists
  // (states, values, trace ids, anomalies) or its holds calls Unpack first; an order no span
  // named for compact_after is packed by Check(). QueueCompaction puts a resident order in its
  // shard's queue of orders to look at (once).
  void Unpack(Shard& shard, Entry* e);
  void QueueCompaction(Shard& shard, Entry* e, absl::Time at);
  void Compact(Shard& shard, absl::Time now);
  void CountResolved(Shard& shard, Entry* e);
  bool Linked(const Entry& e, const TraceIdBytes& trace_id) const;
  void Link(Entry* e, const TraceIdBytes& trace_id);
  // Records what one span says about the order. True when a state, invariant value or anomaly
  // was added (the order must be judged again).
  bool Ingest(Shard& shard, Entry* e, const OrderFacts& facts, const TraceSpans& spans,
              const SpanRecord& span, absl::Time now);
  void Judge(Shard& shard, Entry* e, absl::Time now);
  // OnDecided for a trace of the active order `e` (its shard's lock held): remembered as kept
  // when `sampled`, else held.
  sampling::HookVerdict Hold(Shard& shard, Entry* e, const std::string& order_id,
                             sampling::PendingTrace& trace, bool sampled);
  void Resolve(Shard& shard, Entry* e, v1::Order::Resolution resolution, absl::Time now);
  // Keeps (into the shard's to_deliver) or drops every held trace of the order.
  void ReleaseHeld(Shard& shard, Entry* e, bool keep, ReleaseCause cause);
  void RecordKept(Shard& shard, Entry* e, absl::string_view trace_id);
  // The journal no longer needs to keep the entry of a hold that arrived at `arrival`.
  void Unpin(Shard& shard, int64_t arrival);
  // The spans of a hold kept in the journal. False (counted) when they cannot be read.
  bool ReadFromJournal(const HeldRef& h, TraceSpans* out);
  // Holds kept in the journal longer than hold_in_journal are copied into order_hold (written by
  // the next FlushHolds) in three steps: collected under each shard's lock, read from the journal
  // without any lock (each journal record once, however many of its traces are held), and
  // committed under the shard's lock again if still held. `spilled` gets what to Unpin once they
  // are written.
  struct Spill;
  void CollectSpills(Shard& shard, absl::Time now, std::vector<Spill>* spills);
  void SpillCollected(std::vector<Spill>* spills, absl::Time now,
                      std::vector<std::pair<Shard*, int64_t>>* spilled);
  // When something may change for the order without new spans (a grace period ends, a deadline
  // passes...); InfiniteFuture when never.
  absl::Time NextCheckOf(const OrderRecord& o, absl::Time now) const;
  void Schedule(Shard& shard, Entry* e, absl::Time now);
  // After a hold: makes sure the order is checked when its oldest hold reaches max_hold_time.
  void ScheduleHoldTime(Shard& shard, Entry* e, absl::Time now);
  // Records that the entry changed: queued for the next flush, or deferred when the change came
  // with spans the journal keeps (see ArrivalContext).
  void MarkDirty(Shard& shard, Entry* e);
  class ArrivalContext;
  // Drops one journal pin (of a held trace or a deferred record) at `arrival`.
  void ReleasePin(Shard& shard, int64_t arrival);
  // Keeps the per-state gauges in step with the order's current state and deadline.
  void Recount(Entry* e, absl::Time now);
  std::string Reason(const Entry& e) const;
  void Annotate(const Entry& e, std::vector<SpanRecord>* spans) const;
  bool BaselineKeeps(const std::string& order_id) const;
  // Writing changed records: serialized under the shard's lock (and marked clean), written
  // without it, marked dirty again if the write failed. FlushShard does all three.
  // Deferred records pinned at or before `deferred_cutoff` (Unix nanoseconds) are written too.
  struct Flush;
  void PrepareFlush(Shard& shard, int64_t deferred_cutoff, Flush* f);
  [[nodiscard]] absl::Status WriteFlush(const Flush& f);
  // After WriteFlush, under the shard's lock: releases the written records' journal pins, or
  // (not written) marks them dirty again.
  void FinishFlush(Shard& shard, bool written, Flush* f);
  void UndoFlush(Shard& shard, Flush* f);
  void FlushShard(Shard& shard);
  void FlushHolds();
  // Releases the oldest holds until the hold space bounds are met. Takes its orders from
  // release_candidates_, walking every shard for them only when that list runs out.
  void EnforceHoldSpace(absl::Time now, KeptTraces* kept);
  // Deletes records resolved more than record_retention ago (at most hourly).
  void PurgeResolved(absl::Time now);
  // Hands kept traces to the consumer (never under a lock).
  void Consume(KeptTraces&& kept);
  void Run();

  const Lifecycle lifecycle_;
  const SpanReader reader_;
  OrderTrackerOptions options_;
  // Records changed by spans the journal keeps wait (see Entry): journal on, hold_in_journal > 0.
  const bool defer_writes_;
  OrderStats stats_;
  std::vector<std::unique_ptr<Shard>> shards_;
  // Held traces serialized since the last OnDecisionsDone, written together; the lock is held
  // while they are written, so a release never misses a trace on its way to disk.
  std::mutex holds_mu_;
  std::vector<PendingHold> pending_holds_ ABSL_GUARDED_BY(holds_mu_);
  std::vector<storage::KvWrite> pending_hold_deletes_ ABSL_GUARDED_BY(holds_mu_);
  std::atomic<uint64_t> hold_sequence_{0};
  std::atomic<int64_t> total_held_traces_{0};
  std::atomic<int64_t> total_held_bytes_{0};
  std::atomic<int64_t> resolved_in_memory_{0};
  std::atomic<int64_t> held_in_journal_{0};       // resolved orders in memory, all shards
  absl::Time next_purge_ = absl::InfinitePast();  // Check() thread only
  // While the hold space is full (Check() thread only): the orders that had holds at the last
  // walk, oldest hold first, and the next one to release. An order holding later has its first
  // hold after that walk, so taking them in this order still releases the oldest holds first;
  // the walk (every order, under each shard's lock) runs once per list instead of every check.
  std::vector<std::pair<absl::Time, std::string>> release_candidates_;
  size_t next_release_candidate_ = 0;
  uint64_t released_since_log_ = 0;
  absl::Time next_space_log_ = absl::InfinitePast();
  // When the running Check() started, in Unix nanos (INT64_MAX when none runs): it may be
  // handing kept traces on.
  std::atomic<int64_t> check_started_{INT64_MAX};
  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ ABSL_GUARDED_BY(run_mu_) = false;
  std::thread thread_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_ORDER_TRACKER_H_
