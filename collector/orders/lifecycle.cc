#include "collector/orders/lifecycle.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/ids.h"

namespace tracekeep::orders {
namespace {

std::string FormatNanos(int64_t nanos) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixNanos(nanos), absl::UTCTimeZone());
}

}  // namespace

Lifecycle::Lifecycle(const OrdersConfig& config) : config_(config) {
  for (size_t i = 0; i < config_.states.size(); ++i)
    index_[config_.states[i]] = static_cast<int>(i);
  std::map<std::string, std::set<std::string>> next;
  for (const TransitionConfig& t : config_.transitions) {
    allowed_.insert({t.from, t.to});
    next[t.from].insert(t.to);
    if (t.deadline > absl::ZeroDuration()) {
      auto it = deadline_.find(t.from);
      if (it == deadline_.end() || t.deadline < it->second) deadline_[t.from] = t.deadline;
    }
  }
  for (const std::string& s : config_.states) {
    absl::flat_hash_set<std::string>& seen = reachable_[s];
    std::vector<std::string> stack(next[s].begin(), next[s].end());
    while (!stack.empty()) {
      std::string x = std::move(stack.back());
      stack.pop_back();
      if (!seen.insert(x).second) continue;
      for (const std::string& y : next[x]) stack.push_back(y);
    }
  }
  terminal_.insert(config_.terminal_states.begin(), config_.terminal_states.end());
}

bool Lifecycle::Allowed(const std::string& from, const std::string& to) const {
  return allowed_.count({from, to}) > 0;
}

bool Lifecycle::Reachable(const std::string& from, const std::string& to) const {
  auto it = reachable_.find(from);
  return it != reachable_.end() && it->second.count(to) > 0;
}

absl::Duration Lifecycle::Deadline(const std::string& state) const {
  auto it = deadline_.find(state);
  return it == deadline_.end() ? absl::ZeroDuration() : it->second;
}

bool Lifecycle::AddAnomaly(v1::Order* order, const std::string& type, const std::string& detail,
                           absl::Time now) {
  for (const v1::Anomaly& a : order->anomalies()) {
    if (a.type() == type) return false;
  }
  v1::Anomaly* a = order->add_anomalies();
  a->set_type(type);
  a->set_detail(detail);
  a->set_detected_unix_nanos(absl::ToUnixNanos(now));
  return true;
}

bool Lifecycle::Evaluate(v1::Order* order, absl::Time now) const {
  bool added = false;
  const bool settled =
      now >= absl::FromUnixNanos(order->last_arrival_unix_nanos()) + config_.grace_period;
  // States by span time; ties by arrival.
  absl::InlinedVector<const v1::StateEvent*, 16> events;
  for (const v1::StateEvent& e : order->states()) events.push_back(&e);
  std::stable_sort(events.begin(), events.end(), [](const auto* a, const auto* b) {
    return a->time_unix_nanos() < b->time_unix_nanos();
  });

  // Immediate: unknown states and states recorded by more than one span. (An order is judged
  // at every check and every new state: details are built only for an anomaly not recorded yet.)
  auto recorded = [order](const std::string& type) {
    for (const v1::Anomaly& a : order->anomalies()) {
      if (a.type() == type) return true;
    }
    return false;
  };
  bool seen_initial = false;
  for (const v1::StateEvent* e : events) {
    seen_initial |= e->state() == initial_state();
    if (!Known(e->state()) && !recorded(kIllegalTransition)) {
      added |=
          AddAnomaly(order, kIllegalTransition,
                     absl::StrCat("unknown state \"", e->state(), "\" from ", e->service()), now);
    }
  }
  if (!recorded(kDuplicateState)) {
    // By state name (stable: each state's events stay in time order), the first repeated one.
    absl::InlinedVector<const v1::StateEvent*, 16> by_state = events;
    std::stable_sort(by_state.begin(), by_state.end(),
                     [](const auto* a, const auto* b) { return a->state() < b->state(); });
    for (size_t i = 0; i < by_state.size();) {
      size_t j = i + 1;
      while (j < by_state.size() && by_state[j]->state() == by_state[i]->state()) ++j;
      if (j - i >= 2) {
        std::vector<std::string> where;
        for (size_t k = i; k < j; ++k) {
          const v1::StateEvent* e = by_state[k];
          where.push_back(absl::StrCat(e->service(), " trace ", ToHex(e->trace_id()), " at ",
                                       FormatNanos(e->time_unix_nanos())));
        }
        added |= AddAnomaly(order, kDuplicateState,
                            absl::StrCat(by_state[i]->state(), " recorded ", j - i,
                                         " times: ", absl::StrJoin(where, "; ")),
                            now);
        break;  // one anomaly per type
      }
      i = j;
    }
  }

  // Current state and its deadline.
  if (events.empty()) {
    order->clear_current_state();
    order->set_current_state_unix_nanos(0);
  }
  order->set_deadline_unix_nanos(0);
  if (!events.empty()) {
    const v1::StateEvent* last = events.back();
    if (order->current_state() != last->state()) order->set_current_state(last->state());
    order->set_current_state_unix_nanos(last->time_unix_nanos());
    const absl::Duration d = Deadline(last->state());
    if (d > absl::ZeroDuration() && !Terminal(last->state())) {
      const absl::Time due = absl::FromUnixNanos(last->time_unix_nanos()) + d;
      order->set_deadline_unix_nanos(absl::ToUnixNanos(due));
      if (now >= due + config_.grace_period && !recorded(kStalled)) {
        added |= AddAnomaly(
            order, kStalled,
            absl::StrCat("in ", last->state(), " since ", FormatNanos(last->time_unix_nanos()),
                         " (", last->service(), "); deadline ", absl::FormatDuration(d),
                         " passed at ", FormatNanos(absl::ToUnixNanos(due))),
            now);
      }
    }
  }

  // ORPHAN: states without the initial one, past the orphan window.
  if (!events.empty() && !seen_initial && !recorded(kOrphan) &&
      now >= absl::FromUnixNanos(order->first_arrival_unix_nanos()) + config_.orphan_window) {
    added |= AddAnomaly(order, kOrphan,
                        absl::StrCat(events.front()->state(), " from ", events.front()->service(),
                                     " but ", initial_state(), " never seen within ",
                                     absl::FormatDuration(config_.orphan_window)),
                        now);
  }

  // Transitions, once late spans had their chance to fill gaps.
  if (settled) {
    const v1::StateEvent* prev = nullptr;
    for (const v1::StateEvent* e : events) {
      if (!Known(e->state())) continue;
      if (prev != nullptr && prev->state() != e->state() && !Allowed(prev->state(), e->state())) {
        const bool skipped = Reachable(prev->state(), e->state());
        added |= AddAnomaly(order, skipped ? kSkipped : kIllegalTransition,
                            absl::StrCat(prev->state(), " (", prev->service(), ") -> ", e->state(),
                                         " (", e->service(), ")",
                                         skipped ? ": required states in between never seen"
                                                 : ": not an allowed transition"),
                            now);
      }
      prev = e;
    }
  }
  return added;
}

}  // namespace tracekeep::orders
