// The order lifecycle the tracker checks: which span attributes carry the order, its states, the
// allowed transitions with their deadlines, and how long traces of an order are held.
// The defaults are the lifecycle of /work/shared/design/ORDERS.md.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_ORDER_CONFIG_H_
#define TRACEKEEP_COLLECTOR_ORDERS_ORDER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace tracekeep::orders {

struct TransitionConfig {
  std::string from;
  std::string to;
  // The order is STALLED when it stays in `from` longer than this (span time of `from` to the
  // collector's clock, plus grace_period). When several transitions leave a state, the shortest
  // non-zero deadline counts. Zero: no deadline.
  absl::Duration deadline = absl::ZeroDuration();
};

struct OrdersConfig {
  // Track orders at all. Default: true.
  bool enabled = true;
  // Span attribute with the business key. Default: "order.id".
  std::string id_attribute = "order.id";
  // Span attribute with the new state of the order. Default: "order.status".
  std::string status_attribute = "order.status";
  // Span event that records a state change (its attributes carry id_attribute / status_attribute).
  // Default: "order.status_changed".
  std::string status_event = "order.status_changed";
  // Every state, the first one being where every order starts. Default: the 10 states of ORDERS.md.
  std::vector<std::string> states;
  // The allowed transitions. A state that arrives after `from` without an allowed transition is
  // SKIPPED when it can be reached from `from` through allowed transitions, else
  // ILLEGAL_TRANSITION.
  std::vector<TransitionConfig> transitions;
  // States that end the lifecycle. Default: DELIVERED, CANCELLED.
  std::vector<std::string> terminal_states;
  // Attributes that must keep their first seen value. Default: order.total_price,
  // order.items_count.
  std::vector<std::string> invariant_attributes;
  // Spans arrive late and out of order: order-dependent anomalies (SKIPPED, ILLEGAL_TRANSITION,
  // STALLED) are confirmed only this long after the last span of the order arrived, and a healthy
  // order is resolved only this long after its terminal state arrived. Default: 30s.
  absl::Duration grace_period = absl::Seconds(30);
  // An order whose first state is not the initial state is ORPHAN when the initial state has not
  // arrived this long after the first span of the order. Default: 10m.
  absl::Duration orphan_window = absl::Minutes(10);
  // Percentage of healthy orders whose traces are kept, consistently by order id. Default: 1.
  double baseline_percentage = 1;
  // An order that names no state at all (its spans only read it, e.g. a customer looking at an
  // old order) is resolved READ_ONLY this long after its last span, and its held traces are
  // released unkept (counted in tracekeep_order_read_only_total). A state arriving later makes
  // it active again. Without it, every read of an unknown order would hold its traces for
  // max_hold_time. Default: 60s.
  absl::Duration read_only_hold_time = absl::Seconds(60);
  // A held trace whose spans are all in the intake journal is held as a reference into the
  // journal this long (the journal keeps those entries meanwhile), then copied into the
  // `order_hold` table. Orders resolved within it cost no writes for their held traces; the
  // journal's disk use (and the replay after a crash) grows to about this much of the intake.
  // Zero: copied at once. Without the journal: always copied at once. Default: 60s.
  absl::Duration hold_in_journal = absl::Seconds(60);
  // A held trace is released unkept when it has been held this long. Default: 336h (14 days).
  absl::Duration max_hold_time = absl::Hours(14 * 24);
  // Held traces, all orders together; beyond it the oldest holds are released unkept.
  // Default: 1000000.
  size_t max_held_traces = 1000000;
  // Bytes of held spans, all orders together; beyond it the oldest holds are released unkept.
  // Default: 4096 MiB.
  size_t max_held_mib = 4096;
  // Traces one order links at most. Spans of further traces naming the order are not tracked
  // (counted in spans_over_trace_limit); their traces are still decided by the policies. Bounds
  // the record, and the work per span, of an id that too many traces name (a test order, a
  // misconfigured attribute). Default: 1000.
  size_t max_traces_per_order = 1000;
  // An active order is forgotten (EXPIRED, its held traces released) this long after its last
  // span. Default: 720h (30 days).
  absl::Duration max_order_age = absl::Hours(30 * 24);
  // How long a resolved order stays in memory so that its late spans follow its verdict
  // (afterwards they are looked up on disk). Default: 1h.
  absl::Duration resolved_retention = absl::Hours(1);
  // Resolved orders kept in memory at most (the oldest resolutions leave first; their late spans
  // then find the record on disk). Bounds memory when order ids are many: a resolved order costs
  // about 2 KB, and at a thousand orders a second 100000 of them were 200 MB. Default: 10000.
  size_t max_resolved_in_memory = 10000;
  // Records of resolved orders are deleted from disk this long after their resolution (the
  // `orders` column family stays bounded); zero keeps them forever. Default: 720h (30 days).
  absl::Duration record_retention = absl::Hours(30 * 24);
  // How often deadlines and holds are checked. Default: 1s.
  absl::Duration check_interval = absl::Seconds(1);
  // An order that no span has named for this long is kept in memory in compact form: its
  // states, invariant values, trace ids, anomalies and held-trace references packed into one
  // buffer (less than half their bytes), unpacked when a span, a check or the admin API needs
  // them (a decision holds a trace without unpacking it). Orders wait hours between states, and a
  // finished one waits out grace_period. Zero: never. Default: 10s.
  absl::Duration compact_after = absl::Seconds(10);
};

// The configuration with the lifecycle of ORDERS.md.
OrdersConfig DefaultOrdersConfig();

// Every problem of `config`, each as "<path>.<field>: <what>, got <value>" (empty when valid).
std::vector<std::string> ValidateOrdersConfig(const OrdersConfig& config,
                                              const std::string& path = "orders");

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_ORDER_CONFIG_H_
