// The order state machine: judges an order record against the configured lifecycle. Pure and
// deterministic: the caller passes the collector's clock.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_LIFECYCLE_H_
#define TRACEKEEP_COLLECTOR_ORDERS_LIFECYCLE_H_

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "collector/orders/order_config.h"
#include "collector/orders/order_record.h"
#include "tracekeep/orders/v1/order.pb.h"

namespace tracekeep::orders {

inline constexpr char kStalled[] = "STALLED";
inline constexpr char kSkipped[] = "SKIPPED";
inline constexpr char kIllegalTransition[] = "ILLEGAL_TRANSITION";
inline constexpr char kDuplicateState[] = "DUPLICATE_STATE";
inline constexpr char kContentChanged[] = "CONTENT_CHANGED";
inline constexpr char kError[] = "ERROR";
inline constexpr char kOrphan[] = "ORPHAN";
inline constexpr const char* kAnomalyTypes[] = {
    kStalled, kSkipped, kIllegalTransition, kDuplicateState, kContentChanged, kError, kOrphan};

class Lifecycle {
 public:
  explicit Lifecycle(const OrdersConfig& config);

  const OrdersConfig& config() const { return config_; }
  const std::string& initial_state() const { return config_.states.front(); }
  bool Known(const std::string& state) const { return index_.count(state) > 0; }
  bool Allowed(const std::string& from, const std::string& to) const;
  // Whether `to` can be reached from `from` through allowed transitions.
  bool Reachable(const std::string& from, const std::string& to) const;
  bool Terminal(const std::string& state) const { return terminal_.count(state) > 0; }
  // How long an order may stay in `state`: the shortest non-zero deadline of the transitions
  // leaving it; zero when none.
  absl::Duration Deadline(const std::string& state) const;

  // The same by state number (NameTable: the configured states come first, numbered as in
  // config.states). A number past them is an unknown state.
  size_t num_states() const { return config_.states.size(); }
  bool KnownId(NameId state) const { return state < num_states(); }
  bool AllowedId(NameId from, NameId to) const {
    return KnownId(from) && KnownId(to) && allowed_ids_[from * num_states() + to];
  }
  bool ReachableId(NameId from, NameId to) const {
    return KnownId(from) && KnownId(to) && reachable_ids_[from * num_states() + to];
  }
  bool TerminalId(NameId state) const { return KnownId(state) && terminal_ids_[state]; }
  absl::Duration DeadlineId(NameId state) const {
    return KnownId(state) ? deadline_ids_[state] : absl::ZeroDuration();
  }

  // Re-judges `order` at `now`: sets current_state, its time and deadline, and appends every
  // anomaly newly found (one per type). Order-dependent anomalies are judged only when the order
  // is `settled` (no span arrived for grace_period). Returns true when an anomaly was added.
  // `names` is the table the record's numbers refer to; its first names are config.states.
  bool Evaluate(OrderRecord* order, const NameTable& names, absl::Time now) const;
  // The same on a v1::Order (converted there and back).
  bool Evaluate(v1::Order* order, absl::Time now) const;

  // Adds an anomaly unless one of its type is recorded. Returns true when added.
  static bool AddAnomaly(OrderRecord* order, const std::string& type, const std::string& detail,
                         absl::Time now);

 private:
  OrdersConfig config_;
  // By state number, row `from`, column `to`.
  std::vector<char> allowed_ids_;
  std::vector<char> reachable_ids_;
  std::vector<char> terminal_ids_;
  std::vector<absl::Duration> deadline_ids_;
  // Looked up for every state event an order records: hashed, not ordered.
  absl::flat_hash_map<std::string, int> index_;
  absl::flat_hash_set<std::pair<std::string, std::string>> allowed_;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> reachable_;
  absl::flat_hash_map<std::string, absl::Duration> deadline_;
  absl::flat_hash_set<std::string> terminal_;
};

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_LIFECYCLE_H_
