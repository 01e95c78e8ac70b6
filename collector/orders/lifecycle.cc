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
  const size_t n = config_.states.size();
  allowed_ids_.assign(n * n, 0);
  reachable_ids_.assign(n * n, 0);
  terminal_ids_.assign(n, 0);
  deadline_ids_.assign(n, absl::ZeroDuration());
  for (size_t a = 0; a < n; ++a) {
    terminal_ids_[a] = Terminal(config_.states[a]);
    deadline_ids_[a] = Deadline(config_.states[a]);
    for (size_t b = 0; b < n; ++b) {
      allowed_ids_[a * n + b] = Allowed(config_.states[a], config_.states[b]);
      reachable_ids_[a * n + b] = Reachable(config_.states[a], config_.states[b]);
    }
  }
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

bool Lifecycle::AddAnomaly(OrderRecord* order, const std::string& type, const std::string& detail,
                           absl::Time now) {
  if (order->HasAnomaly(type)) return false;
  order->anomalies.push_back(OrderRecord::Anomaly{type, detail, absl::ToUnixNanos(now)});
  return true;
}

bool Lifecycle::Evaluate(v1::Order* order, absl::Time now) const {
  NameTable names(config_.states);
  OrderRecord r = OrderRecord::FromProto(*order, &names);
  const bool added = Evaluate(&r, names, now);
  r.ToProto(names, order);
  return added;
}

bool Lifecycle::Evaluate(OrderRecord* order, const NameTable& names, absl::Time now) const {
  using State = OrderRecord::State;
  bool added = false;
  const bool settled =
      now >= absl::FromUnixNanos(order->last_arrival_unix_nanos) + config_.grace_period;
  // States by span time; ties by arrival.
  absl::InlinedVector<const State*, 16> events;
  for (const State& e : order->states) events.push_back(&e);
  std::stable_sort(events.begin(), events.end(), [](const State* a, const State* b) {
    return a->time_unix_nanos < b->time_unix_nanos;
  });
  auto name = [&names](NameId id) -> const std::string& { return names.Name(id); };

  // Immediate: unknown states and states recorded by more than one span. (An order is judged
  // at every check and every new state: details are built only for an anomaly not recorded yet.)
  bool seen_initial = false;
  for (const State* e : events) {
    seen_initial |= e->state == 0;  // the initial state is config.states[0]
    if (!KnownId(e->state) && !order->HasAnomaly(kIllegalTransition)) {
      added |= AddAnomaly(
          order, kIllegalTransition,
          absl::StrCat("unknown state \"", name(e->state), "\" from ", name(e->service)), now);
    }
  }
  if (!order->HasAnomaly(kDuplicateState)) {
    bool repeated = false;
    for (size_t i = 0; i < events.size() && !repeated; ++i) {
      for (size_t j = i + 1; j < events.size(); ++j) {
        if (events[i]->state == events[j]->state) {
          repeated = true;
          break;
        }
      }
    }
    if (repeated) {
      // By state name (stable: each state's events stay in time order), the first repeated one.
      absl::InlinedVector<const State*, 16> by_state = events;
      std::stable_sort(by_state.begin(), by_state.end(), [&](const State* a, const State* b) {
        return name(a->state) < name(b->state);
      });
      for (size_t i = 0; i < by_state.size();) {
        size_t j = i + 1;
        while (j < by_state.size() && by_state[j]->state == by_state[i]->state) ++j;
        if (j - i >= 2) {
          std::vector<std::string> where;
          for (size_t k = i; k < j; ++k) {
            const State* e = by_state[k];
            where.push_back(absl::StrCat(name(e->service), " trace ", ToHex(e->trace_id.view()),
                                         " at ", FormatNanos(e->time_unix_nanos)));
          }
          added |= AddAnomaly(order, kDuplicateState,
                              absl::StrCat(name(by_state[i]->state), " recorded ", j - i,
                                           " times: ", absl::StrJoin(where, "; ")),
                              now);
          break;  // one anomaly per type
        }
        i = j;
      }
    }
  }

  // Current state and its deadline.
  if (events.empty()) {
    order->current_state = kNoName;
    order->current_state_unix_nanos = 0;
  }
  order->deadline_unix_nanos = 0;
  if (!events.empty()) {
    const State* last = events.back();
    order->current_state = last->state;
    order->current_state_unix_nanos = last->time_unix_nanos;
    const absl::Duration d = DeadlineId(last->state);
    if (d > absl::ZeroDuration() && !TerminalId(last->state)) {
      const absl::Time due = absl::FromUnixNanos(last->time_unix_nanos) + d;
      order->deadline_unix_nanos = absl::ToUnixNanos(due);
      if (now >= due + config_.grace_period && !order->HasAnomaly(kStalled)) {
        added |= AddAnomaly(
            order, kStalled,
            absl::StrCat("in ", name(last->state), " since ", FormatNanos(last->time_unix_nanos),
                         " (", name(last->service), "); deadline ", absl::FormatDuration(d),
                         " passed at ", FormatNanos(absl::ToUnixNanos(due))),
            now);
      }
    }
  }

  // ORPHAN: states without the initial one, past the orphan window.
  if (!events.empty() && !seen_initial && !order->HasAnomaly(kOrphan) &&
      now >= absl::FromUnixNanos(order->first_arrival_unix_nanos) + config_.orphan_window) {
    added |=
        AddAnomaly(order, kOrphan,
                   absl::StrCat(name(events.front()->state), " from ",
                                name(events.front()->service), " but ", initial_state(),
                                " never seen within ", absl::FormatDuration(config_.orphan_window)),
                   now);
  }

  // Transitions, once late spans had their chance to fill gaps.
  if (settled) {
    const State* prev = nullptr;
    for (const State* e : events) {
      if (!KnownId(e->state)) continue;
      if (prev != nullptr && prev->state != e->state && !AllowedId(prev->state, e->state)) {
        const bool skipped = ReachableId(prev->state, e->state);
        added |= AddAnomaly(order, skipped ? kSkipped : kIllegalTransition,
                            absl::StrCat(name(prev->state), " (", name(prev->service), ") -> ",
                                         name(e->state), " (", name(e->service), ")",
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
