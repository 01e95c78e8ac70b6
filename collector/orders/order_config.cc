#include "collector/orders/order_config.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace tracekeep::orders {

OrdersConfig DefaultOrdersConfig() {
  OrdersConfig c;
  c.states = {"INITIATED",
              "SUBMITTED",
              "PRICE_CALCULATED",
              "MANUFACTURING_APPROVED",
              "MANUFACTURING_STARTED",
              "MANUFACTURING_COMPLETED",
              "SHIPPED",
              "DELIVERED",
              "CANCELLED"};
  c.transitions = {
      {"INITIATED", "SUBMITTED", absl::Hours(1)},
      {"SUBMITTED", "PRICE_CALCULATED", absl::Hours(4)},
      {"PRICE_CALCULATED", "MANUFACTURING_APPROVED", absl::Hours(24)},
      {"MANUFACTURING_APPROVED", "MANUFACTURING_STARTED", absl::Hours(24)},
      {"MANUFACTURING_STARTED", "MANUFACTURING_COMPLETED", absl::Hours(72)},
      {"MANUFACTURING_COMPLETED", "SHIPPED", absl::Hours(48)},
      {"SHIPPED", "DELIVERED", absl::Hours(168)},
      {"INITIATED", "CANCELLED", absl::ZeroDuration()},
      {"SUBMITTED", "CANCELLED", absl::ZeroDuration()},
      {"PRICE_CALCULATED", "CANCELLED", absl::ZeroDuration()},
      {"MANUFACTURING_APPROVED", "CANCELLED", absl::ZeroDuration()},
  };
  c.terminal_states = {"DELIVERED", "CANCELLED"};
  c.invariant_attributes = {"order.total_price", "order.items_count"};
  return c;
}

std::vector<std::string> ValidateOrdersConfig(const OrdersConfig& c, const std::string& path) {
  std::vector<std::string> problems;
  auto add = [&](const std::string& field, const std::string& what) {
    problems.push_back(absl::StrCat(path, ".", field, ": ", what));
  };
  if (c.id_attribute.empty()) add("id_attribute", "must not be empty");
  if (c.status_attribute.empty()) add("status_attribute", "must not be empty");
  if (c.states.empty()) add("states", "must list at least one state");
  std::set<std::string> states;
  for (size_t i = 0; i < c.states.size(); ++i) {
    if (c.states[i].empty()) add(absl::StrCat("states[", i, "]"), "must not be empty");
    if (!states.insert(c.states[i]).second) {
      add(absl::StrCat("states[", i, "]"),
          absl::StrCat("duplicate state, got \"", c.states[i], "\""));
    }
  }
  for (size_t i = 0; i < c.transitions.size(); ++i) {
    const TransitionConfig& t = c.transitions[i];
    const std::string p = absl::StrCat("transitions[", i, "]");
    if (states.count(t.from) == 0) {
      add(p + ".from", absl::StrCat("must be one of the states, got \"", t.from, "\""));
    }
    if (states.count(t.to) == 0) {
      add(p + ".to", absl::StrCat("must be one of the states, got \"", t.to, "\""));
    }
    if (t.deadline < absl::ZeroDuration()) {
      add(p + ".deadline", absl::StrCat("must be >= 0, got ", absl::FormatDuration(t.deadline)));
    }
  }
  for (size_t i = 0; i < c.terminal_states.size(); ++i) {
    if (states.count(c.terminal_states[i]) == 0) {
      add(absl::StrCat("terminal_states[", i, "]"),
          absl::StrCat("must be one of the states, got \"", c.terminal_states[i], "\""));
    }
  }
  if (!(c.baseline_percentage >= 0 && c.baseline_percentage <= 100)) {
    add("baseline_percentage", absl::StrCat("must be in [0, 100], got ", c.baseline_percentage));
  }
  if (c.grace_period < absl::ZeroDuration()) {
    add("grace_period", absl::StrCat("must be >= 0, got ", absl::FormatDuration(c.grace_period)));
  }
  if (c.check_interval <= absl::ZeroDuration()) {
    add("check_interval",
        absl::StrCat("must be > 0, got ", absl::FormatDuration(c.check_interval)));
  }
  if (c.compact_after < absl::ZeroDuration()) {
    add("compact_after", absl::StrCat("must be >= 0, got ", absl::FormatDuration(c.compact_after)));
  }
  if (c.record_retention < absl::ZeroDuration()) {
    add("record_retention",
        absl::StrCat("must be >= 0, got ", absl::FormatDuration(c.record_retention)));
  }
  if (c.max_held_traces == 0) add("max_held_traces", "must be > 0, got 0");
  if (c.max_held_mib == 0) add("max_held_mib", "must be > 0, got 0");
  if (c.max_traces_per_order == 0) add("max_traces_per_order", "must be > 0, got 0");
  return problems;
}

}  // namespace tracekeep::orders
