#include "collector/sampling/policy.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/status_macros.h"

namespace tracekeep::sampling {

// ---- TraceView --------------------------------------------------------------------------------

absl::Status ReadBackSpans(PendingTrace* trace, SpanBytesReader* reader) {
  if (!trace->spans_in_journal) return absl::OkStatus();
  if (reader == nullptr) {
    return absl::FailedPreconditionError("no reader for spans that live in the journal");
  }
  std::vector<SpanRecord> read;
  TK_RETURN_IF_ERROR(reader->ReadTraceSpans(trace->journal_refs, trace->trace_id, &read));
  // The parts the journal did not take (if any) stay after those it did.
  for (SpanRecord& r : trace->spans) read.push_back(std::move(r));
  trace->spans = std::move(read);
  trace->spans_in_journal = false;
  return absl::OkStatus();
}

void TraceView::Decode() {
  decoded_ = true;
  if (trace_.spans_in_journal) {
    // A policy that reads spans judges a trace that waited without them (the policies changed
    // meanwhile): read back now; unread, it scans as empty and counts as a decode error.
    if (mutable_trace_ == nullptr || !ReadBackSpans(mutable_trace_, reader_).ok()) {
      decode_error_ = true;
    }
  }
  if (reader_ != nullptr && AnyInJournalOnly(trace_.spans)) {
    // Spans that stay unread scan as empty (no attributes) and count as a decode error.
    if (!reader_->ReadSpanBytes(&mutable_trace_->spans).ok()) decode_error_ = true;
  }
  spans_.resize(trace_.spans.size());
  span_attributes_.reserve(trace_.spans.size() * 12);  // typical spans have 8-15
  const SpanOrigin* previous = nullptr;
  absl::InlinedVector<const SpanOrigin*, 8> origins;
  for (size_t i = 0; i < trace_.spans.size(); ++i) {
    const SpanRecord& rec = trace_.spans[i];
    if (!ScanSpan(rec.span, &spans_[i], &span_attributes_)) decode_error_ = true;
    const SpanOrigin* origin = rec.origin.get();
    if (origin == nullptr || origin == previous) continue;
    previous = origin;
    if (std::find(origins.begin(), origins.end(), origin) != origins.end()) continue;
    origins.push_back(origin);
    if (!ScanResourceAttributes(origin->resource, &resource_attributes_)) decode_error_ = true;
  }
}

const SpanFields& TraceView::span(size_t i) {
  if (!decoded_) Decode();
  return spans_[i];
}

// ---- PolicyStatsRegistry ----------------------------------------------------------------------

PolicyStats* PolicyStatsRegistry::Get(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = stats_[name];
  if (!slot) slot = std::make_unique<PolicyStats>();
  return slot.get();
}

std::vector<std::pair<std::string, const PolicyStats*>> PolicyStatsRegistry::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, const PolicyStats*>> out;
  for (const auto& [name, stats] : stats_) out.emplace_back(name, stats.get());
  return out;
}

// ---- Validation -------------------------------------------------------------------------------

namespace {

constexpr const char* kTypes =
    "always_sample, status_code, latency, string_attribute, numeric_attribute, "
    "boolean_attribute, probabilistic, rate_limiting, bytes_limiting, span_count, trace_state, "
    "ottl_condition, and, not, drop, composite";

// The key under which a combinator lists its sub-policies in YAML.
std::string SubPolicyKey(const std::string& type) { return absl::StrCat(type, "_sub_policy"); }

void Validate(const PolicyConfig& c, const std::string& path, bool top_level,
              std::vector<std::string>* problems);

void ValidateList(const std::vector<PolicyConfig>& list, const std::string& path, bool top_level,
                  std::vector<std::string>* problems) {
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = absl::StrCat(path, "[", i, "]");
    Validate(list[i], p, top_level, problems);
    if (!list[i].name.empty() && !names.insert(list[i].name).second) {
      problems->push_back(absl::StrCat(p, ".name: duplicate policy name \"", list[i].name, "\""));
    }
  }
}

void Validate(const PolicyConfig& c, const std::string& path, bool top_level,
              std::vector<std::string>* problems) {
  auto add = [&](const std::string& what) { problems->push_back(what); };
  const std::string where = c.name.empty() ? path : absl::StrCat(path, " (\"", c.name, "\")");
  const std::string block = absl::StrCat(where, ".", c.type);
  if (c.name.empty()) add(absl::StrCat(path, ".name: must not be empty"));
  const bool combinator =
      c.type == "and" || c.type == "not" || c.type == "drop" || c.type == "composite";
  if (!combinator && !c.sub_policies.empty()) {
    add(absl::StrCat(where, ": only and, not, drop and composite policies have sub-policies"));
  }
  if (c.type == "always_sample") {
  } else if (c.type == "status_code") {
    if (c.status_codes.empty())
      add(absl::StrCat(block, ".status_codes: must list at least one code"));
    for (size_t i = 0; i < c.status_codes.size(); ++i) {
      const std::string& code = c.status_codes[i];
      if (code != "ERROR" && code != "OK" && code != "UNSET") {
        add(absl::StrCat(block, ".status_codes[", i, "]: unknown status code \"", code,
                         "\" (want ERROR, OK or UNSET)"));
      }
    }
  } else if (c.type == "latency") {
    if (c.latency.threshold_ms < 0) {
      add(absl::StrCat(block, ".threshold_ms: must be >= 0, got ", c.latency.threshold_ms));
    }
    if (c.latency.upper_threshold_ms < 0 ||
        (c.latency.upper_threshold_ms != 0 &&
         c.latency.upper_threshold_ms < c.latency.threshold_ms)) {
      add(absl::StrCat(block, ".upper_threshold_ms: must be 0 (none) or >= threshold_ms (",
                       c.latency.threshold_ms, "), got ", c.latency.upper_threshold_ms));
    }
  } else if (c.type == "string_attribute") {
    if (c.string_attribute.key.empty()) add(absl::StrCat(block, ".key: must not be empty"));
    if (c.string_attribute.values.empty()) {
      add(absl::StrCat(block, ".values: must list at least one value"));
    }
    if (c.string_attribute.enabled_regex_matching) {
      auto p = NewStringAttributePolicy(c.string_attribute);
      if (!p.ok()) add(absl::StrCat(block, ".values: ", p.status().message()));
    }
  } else if (c.type == "numeric_attribute") {
    const NumericAttributeConfig& n = c.numeric_attribute;
    if (n.key.empty()) add(absl::StrCat(block, ".key: must not be empty"));
    if (!n.min_value && !n.max_value) {
      add(absl::StrCat(block, ": set min_value, max_value or both"));
    }
    if (n.min_value && n.max_value && *n.min_value > *n.max_value) {
      add(absl::StrCat(block, ".max_value: must be >= min_value (", *n.min_value, "), got ",
                       *n.max_value));
    }
  } else if (c.type == "boolean_attribute") {
    if (c.boolean_attribute.key.empty()) add(absl::StrCat(block, ".key: must not be empty"));
  } else if (c.type == "probabilistic") {
    if (!(c.sampling_percentage >= 0 && c.sampling_percentage <= 100)) {
      add(absl::StrCat(block, ".sampling_percentage: must be in [0, 100], got ",
                       c.sampling_percentage));
    }
  } else if (c.type == "rate_limiting") {
    if (c.spans_per_second <= 0) {
      add(absl::StrCat(block, ".spans_per_second: must be > 0, got ", c.spans_per_second));
    }
  } else if (c.type == "bytes_limiting") {
    if (c.bytes_limiting.bytes_per_second <= 0) {
      add(absl::StrCat(block, ".bytes_per_second: must be > 0, got ",
                       c.bytes_limiting.bytes_per_second));
    }
    if (c.bytes_limiting.burst_capacity < 0) {
      add(absl::StrCat(block, ".burst_capacity: must be >= 0 (0 = 2 x bytes_per_second), got ",
                       c.bytes_limiting.burst_capacity));
    }
  } else if (c.type == "ottl_condition") {
    const OttlConditionConfig& o = c.ottl_condition;
    if (o.error_mode != "propagate" && o.error_mode != "ignore" && o.error_mode != "silent") {
      add(absl::StrCat(block, ".error_mode: must be propagate, ignore or silent, got \"",
                       o.error_mode, "\""));
    }
    if (o.span.empty() && o.spanevent.empty()) {
      add(absl::StrCat(block, ": list at least one condition under span or spanevent"));
    }
    auto p = NewOttlConditionPolicy(o);
    if (!p.ok()) add(absl::StrCat(block, ".", p.status().message()));
  } else if (c.type == "span_count") {
    if (c.span_count.min_spans < 0) {
      add(absl::StrCat(block, ".min_spans: must be >= 0, got ", c.span_count.min_spans));
    }
    if (c.span_count.max_spans < 0 ||
        (c.span_count.max_spans != 0 && c.span_count.max_spans < c.span_count.min_spans)) {
      add(absl::StrCat(block, ".max_spans: must be 0 (none) or >= min_spans (",
                       c.span_count.min_spans, "), got ", c.span_count.max_spans));
    }
  } else if (c.type == "trace_state") {
    if (c.trace_state.key.empty()) add(absl::StrCat(block, ".key: must not be empty"));
    if (c.trace_state.values.empty()) {
      add(absl::StrCat(block, ".values: must list at least one value"));
    }
  } else if (c.type == "and" || c.type == "drop" || c.type == "composite") {
    const std::string sub_path = absl::StrCat(block, ".", SubPolicyKey(c.type));
    if (c.sub_policies.empty()) add(absl::StrCat(sub_path, ": must list at least one policy"));
    if (c.type == "drop" && !top_level) {
      add(absl::StrCat(where, ".type: drop is only allowed in the top-level policy list"));
    }
    ValidateList(c.sub_policies, sub_path, /*top_level=*/false, problems);
    if (c.type == "composite") {
      const CompositeConfig& k = c.composite;
      if (k.max_total_spans_per_second <= 0) {
        add(absl::StrCat(block, ".max_total_spans_per_second: must be > 0, got ",
                         k.max_total_spans_per_second));
      }
      absl::flat_hash_set<std::string> subs;
      for (const PolicyConfig& s : c.sub_policies) subs.insert(s.name);
      for (size_t i = 0; i < k.policy_order.size(); ++i) {
        if (!subs.contains(k.policy_order[i])) {
          add(absl::StrCat(block, ".policy_order[", i, "]: no sub-policy named \"",
                           k.policy_order[i], "\""));
        }
      }
      double sum = 0;
      for (size_t i = 0; i < k.rate_allocation.size(); ++i) {
        const RateAllocation& a = k.rate_allocation[i];
        if (!subs.contains(a.policy)) {
          add(absl::StrCat(block, ".rate_allocation[", i, "].policy: no sub-policy named \"",
                           a.policy, "\""));
        }
        if (!(a.percent >= 0 && a.percent <= 100)) {
          add(absl::StrCat(block, ".rate_allocation[", i, "].percent: must be in [0, 100], got ",
                           a.percent));
        }
        sum += a.percent;
      }
      if (sum > 100 + 1e-9) {
        add(absl::StrCat(block, ".rate_allocation: percentages add up to more than 100 (", sum,
                         ")"));
      }
    }
  } else if (c.type == "not") {
    const std::string sub_path = absl::StrCat(block, ".", SubPolicyKey(c.type));
    if (c.sub_policies.size() != 1) {
      add(absl::StrCat(sub_path, ": must hold exactly one policy, got ", c.sub_policies.size()));
    }
    ValidateList(c.sub_policies, sub_path, /*top_level=*/false, problems);
  } else if (c.type.empty()) {
    add(absl::StrCat(where, ".type: must be set (one of ", kTypes, ")"));
  } else {
    add(absl::StrCat(where, ".type: unknown policy type \"", c.type, "\" (want one of ", kTypes,
                     ")"));
  }
}

absl::StatusOr<std::vector<PolicyPtr>> CreateAll(const std::vector<PolicyConfig>& configs,
                                                 const PolicySetOptions& options) {
  std::vector<PolicyPtr> out;
  for (const PolicyConfig& c : configs) {
    TK_ASSIGN_OR_RETURN(PolicyPtr p, CreatePolicy(c, options));
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<PolicyPtr> Build(const PolicyConfig& c, const PolicySetOptions& options) {
  const double shards = std::max(1, options.shards);
  if (c.type == "always_sample") return NewAlwaysSamplePolicy();
  if (c.type == "status_code") return NewStatusCodePolicy(c.status_codes);
  if (c.type == "latency") return NewLatencyPolicy(c.latency);
  if (c.type == "string_attribute") return NewStringAttributePolicy(c.string_attribute);
  if (c.type == "numeric_attribute") return NewNumericAttributePolicy(c.numeric_attribute);
  if (c.type == "boolean_attribute") return NewBooleanAttributePolicy(c.boolean_attribute);
  if (c.type == "probabilistic") return NewProbabilisticPolicy(c.sampling_percentage, c.hash_salt);
  if (c.type == "rate_limiting") return NewRateLimitingPolicy(c.spans_per_second / shards);
  if (c.type == "span_count") return NewSpanCountPolicy(c.span_count);
  if (c.type == "bytes_limiting") {
    const double rate = static_cast<double>(c.bytes_limiting.bytes_per_second);
    const double burst = c.bytes_limiting.burst_capacity > 0
                             ? static_cast<double>(c.bytes_limiting.burst_capacity)
                             : 2 * rate;
    return NewBytesLimitingPolicy(rate / shards, burst / shards);
  }
  if (c.type == "ottl_condition") return NewOttlConditionPolicy(c.ottl_condition);
  if (c.type == "trace_state") return NewTraceStatePolicy(c.trace_state);
  if (c.type == "and" || c.type == "drop") {
    TK_ASSIGN_OR_RETURN(auto subs, CreateAll(c.sub_policies, options));
    return NewAndPolicy(std::move(subs));
  }
  if (c.type == "not") {
    TK_ASSIGN_OR_RETURN(PolicyPtr sub, CreatePolicy(c.sub_policies.front(), options));
    return NewNotPolicy(std::move(sub));
  }
  // composite: order the sub-policies, give each its share of the total budget. A sub-policy
  // without an allocation (or with 0 %) gets an equal share, total / number of sub-policies.
  const double total = static_cast<double>(c.composite.max_total_spans_per_second) / shards;
  std::vector<const PolicyConfig*> ordered;
  for (const std::string& name : c.composite.policy_order) {
    for (const PolicyConfig& s : c.sub_policies) {
      if (s.name == name) ordered.push_back(&s);
    }
  }
  for (const PolicyConfig& s : c.sub_policies) {
    if (std::find(ordered.begin(), ordered.end(), &s) == ordered.end()) ordered.push_back(&s);
  }
  std::vector<PolicyPtr> subs;
  std::vector<double> budgets;
  for (const PolicyConfig* s : ordered) {
    TK_ASSIGN_OR_RETURN(PolicyPtr p, CreatePolicy(*s, options));
    subs.push_back(std::move(p));
    double budget = total / static_cast<double>(c.sub_policies.size());
    for (const RateAllocation& a : c.composite.rate_allocation) {
      if (a.policy == s->name && a.percent > 0) budget = total * a.percent / 100.0;
    }
    budgets.push_back(budget);
  }
  return NewCompositePolicy(std::move(subs), std::move(budgets), total);
}

std::string JoinProblems(const std::vector<std::string>& problems) {
  return absl::StrJoin(problems, "\n");
}

}  // namespace

std::vector<std::string> ValidatePolicies(const std::vector<PolicyConfig>& policies,
                                          const std::string& path) {
  std::vector<std::string> problems;
  ValidateList(policies, path, /*top_level=*/true, &problems);
  return problems;
}

absl::StatusOr<PolicyPtr> CreatePolicy(const PolicyConfig& config,
                                       const PolicySetOptions& options) {
  std::vector<std::string> problems;
  Validate(config, "policy", /*top_level=*/true, &problems);
  if (!problems.empty()) return absl::InvalidArgumentError(JoinProblems(problems));
  return Build(config, options);
}

// ---- PolicySet --------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<PolicySet>> PolicySet::Create(
    const std::vector<PolicyConfig>& configs, const PolicySetOptions& options,
    PolicyStatsRegistry* stats) {
  std::vector<std::string> problems = ValidatePolicies(configs, "sampler.policies");
  if (!problems.empty()) return absl::InvalidArgumentError(JoinProblems(problems));
  auto set = std::unique_ptr<PolicySet>(new PolicySet());
  set->options_ = options;
  for (const PolicyConfig& c : configs) {
    TK_ASSIGN_OR_RETURN(PolicyPtr policy, Build(c, options));
    set->names_.push_back(c.name);
    set->policies_.push_back(std::move(policy));
    set->is_drop_.push_back(c.type == "drop");
    set->stats_.push_back(stats == nullptr ? nullptr : stats->Get(c.name));
    set->reads_spans_ = set->reads_spans_ || set->policies_.back()->ReadsSpans();
  }
  return set;
}

Verdict PolicySet::Evaluate(TraceView& trace, absl::Time now) {
  Verdict v;
  const uint64_t spans = trace.span_count();
  for (size_t i = 0; i < policies_.size(); ++i) {
    if (!is_drop_[i]) continue;
    const bool matched = policies_[i]->Evaluate(trace, now) == Decision::kSampled;
    if (stats_[i] != nullptr) {
      (matched ? stats_[i]->evaluated_sampled : stats_[i]->evaluated_not_sampled)
          .fetch_add(1, std::memory_order_relaxed);
    }
    if (matched) {
      if (stats_[i] != nullptr) {
        stats_[i]->traces_dropped.fetch_add(1, std::memory_order_relaxed);
        stats_[i]->spans_dropped.fetch_add(spans, std::memory_order_relaxed);
      }
      v.outcome = Verdict::Outcome::kDropped;
      v.policy = static_cast<int>(i);
      return v;
    }
  }
  for (size_t i = 0; i < policies_.size(); ++i) {
    if (is_drop_[i]) continue;
    const bool sampled = policies_[i]->Evaluate(trace, now) == Decision::kSampled;
    if (stats_[i] != nullptr) {
      (sampled ? stats_[i]->evaluated_sampled : stats_[i]->evaluated_not_sampled)
          .fetch_add(1, std::memory_order_relaxed);
    }
    if (sampled && v.policy < 0) {
      v.outcome = Verdict::Outcome::kSampled;
      v.policy = static_cast<int>(i);
      if (options_.sample_on_first_match) break;
    }
  }
  return v;
}

int PolicySet::Evaluate(const PendingTrace& trace, absl::Time now) {
  TraceView view(trace);
  const Verdict v = Evaluate(view, now);
  return v.outcome == Verdict::Outcome::kSampled ? v.policy : -1;
}

}  // namespace tracekeep::sampling
