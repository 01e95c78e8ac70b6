// Sampling policies: the configuration, the evaluator interface, the decision, and the view of a
// pending trace they look at. The vocabulary and semantics follow the OpenTelemetry Collector's
// tail_sampling processor, so its configs translate one-to-one (see README, "Tail sampling").
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_POLICY_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_POLICY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/span_batch.h"
#include "collector/sampling/span_scan.h"

namespace tracekeep::sampling {

// A trace waiting for its decision, with what the engine and the cheap policies need to know.
struct PendingTrace {
  std::string trace_id;
  uint64_t hash = 0;  // TraceIdHash(trace_id)
  std::vector<SpanRecord> spans;
  absl::Time first_arrival;
  absl::Time last_arrival;
  absl::Time root_arrival = absl::InfiniteFuture();  // when the root span arrived
  absl::Time due = absl::InfiniteFuture();           // when its decision is (was) due
  bool has_error = false;
  bool has_root = false;
  int64_t min_start_unix_nanos = INT64_MAX;
  int64_t max_end_unix_nanos = INT64_MIN;
  size_t span_bytes = 0;
  // Spans of every part, in `spans` or in the journal (see spans_in_journal). Kept by the
  // TraceBuffer; SpanCount() is what the rest reads.
  size_t span_count = 0;
  std::vector<std::string> linked_keys;  // TraceSpans::linked_keys of every part, once each
  // The journal records of its parts, once each; `all_journaled` while every part had one.
  std::vector<JournalRef> journal_refs;
  bool all_journaled = true;
  // The spans of its journaled parts are not in `spans` but only in the journal, at
  // `journal_refs` (`spans` holds those of parts the journal did not take, if any): while it
  // waits, a trace costs its summary above, not a record per span. ReadBackSpans() brings them
  // back; its summary (errors, times, bytes, count) was taken from them before they left.
  bool spans_in_journal = false;

  size_t SpanCount() const { return spans_in_journal ? span_count : spans.size(); }
};

// Brings the spans of a trace whose spans are in the journal (spans_in_journal) back into
// `trace->spans`, read with `reader` (then spans_in_journal is false). Nothing to do for other
// traces. On an error, the spans stay where they are and the status says why.
[[nodiscard]] absl::Status ReadBackSpans(PendingTrace* trace, SpanBytesReader* reader);

// A pending trace as policies see it: the cheap fields directly, the rest of every span (name,
// status, trace_state, span and resource attributes) scanned from the span bytes on first use and
// shared by every policy that evaluates the trace. Single-threaded.
class TraceView {
 public:
  explicit TraceView(const PendingTrace& trace) : trace_(trace) {}
  // With a reader: span bytes released to the journal are read back into `trace` when a policy
  // first needs them (most policies read only the fields decoded on receipt, and never do).
  TraceView(PendingTrace& trace, SpanBytesReader* reader)
      : trace_(trace), mutable_trace_(&trace), reader_(reader) {}
  const PendingTrace& trace() const { return trace_; }
  size_t span_count() const { return trace_.SpanCount(); }
  // The decoded name, status and trace_state of span i.
  const SpanFields& span(size_t i);
  // True when some span or resource bytes could not be decoded (counted as an evaluation error).
  bool decode_error() const { return decode_error_; }

  // True when any span attribute or resource attribute named `key` satisfies `pred`. Each
  // distinct resource is looked at once, however many spans share it.
  template <typename Pred>
  bool AnyAttribute(std::string_view key, Pred pred) {
    if (!decoded_) Decode();
    for (const Attribute& a : resource_attributes_) {
      if (a.key == key && pred(a.value)) return true;
    }
    for (const Attribute& a : span_attributes_) {
      if (a.key == key && pred(a.value)) return true;
    }
    return false;
  }

 private:
  void Decode();
  const PendingTrace& trace_;
  PendingTrace* mutable_trace_ = nullptr;
  SpanBytesReader* reader_ = nullptr;
  bool decoded_ = false;
  bool decode_error_ = false;
  std::vector<SpanFields> spans_;
  // Attributes of every span, and of every distinct resource, in one vector each.
  std::vector<Attribute> span_attributes_;
  std::vector<Attribute> resource_attributes_;
};

enum class Decision { kNotSampled, kSampled };

// Decides one trace. A shard owns its instances (rate limiters keep per-shard state), so
// Evaluate is called from one thread at a time.
class Policy {
 public:
  virtual ~Policy() = default;
  // `now` drives the per-second budgets of rate_limiting and composite.
  virtual Decision Evaluate(TraceView& trace, absl::Time now) = 0;
  // Whether it looks at single spans (TraceView::span, AnyAttribute...) rather than only at the
  // trace's summary (PendingTrace: errors, times, bytes, span count, hash). A trace that only
  // such policies judge waits without its spans in memory (PendingTrace::spans_in_journal).
  virtual bool ReadsSpans() const { return true; }
};
using PolicyPtr = std::unique_ptr<Policy>;

struct LatencyConfig {
  int64_t threshold_ms = 0;        // sample traces lasting at least this long
  int64_t upper_threshold_ms = 0;  // and at most this long; 0 = no upper bound
};
struct StringAttributeConfig {
  std::string key;
  std::vector<std::string> values;
  bool enabled_regex_matching = false;  // values are RE2 patterns matching the whole value
  bool invert_match = false;            // sample when NO span or resource has a matching value
  // The OpenTelemetry Collector's regex result cache size. Accepted and kept (so its configs
  // load unchanged), but it changes nothing here: patterns are compiled RE2, matched without a
  // cache. 0 = not set.
  int64_t cache_max_size = 0;
};
struct NumericAttributeConfig {
  std::string key;
  std::optional<double> min_value;  // inclusive; absent = no lower bound
  std::optional<double> max_value;  // inclusive; absent = no upper bound
  bool invert_match = false;
};
struct BooleanAttributeConfig {
  std::string key;
  bool value = false;
  bool invert_match = false;
};
struct SpanCountConfig {
  int64_t min_spans = 0;
  int64_t max_spans = 0;  // 0 = no upper bound
};
struct TraceStateConfig {
  std::string key;
  std::vector<std::string> values;
};
// bytes_limiting: a token bucket of span bytes, refilled at bytes_per_second, holding at most
// burst_capacity (0 = 2 x bytes_per_second). A trace is sampled when its bytes fit in the bucket
// (and are taken from it); a trace larger than burst_capacity never is.
struct BytesLimitingConfig {
  int64_t bytes_per_second = 0;
  int64_t burst_capacity = 0;
};
// ottl_condition: sampled when any `span` condition holds for a span of the trace, or any
// `spanevent` condition for an event of one of its spans (collector/sampling/ottl.h for the
// supported subset). error_mode: what a span that cannot be decoded does: propagate (the
// trace is not sampled by this policy; the default, as in the Collector), ignore or silent (that
// span is skipped).
struct OttlConditionConfig {
  std::string error_mode = "propagate";
  std::vector<std::string> span;
  std::vector<std::string> spanevent;
};
struct RateAllocation {
  std::string policy;
  double percent = 0;
};
struct CompositeConfig {
  int64_t max_total_spans_per_second = 0;
  std::vector<std::string> policy_order;  // names of sub-policies; empty = their list order
  std::vector<RateAllocation> rate_allocation;
};

// One entry of `sampler.policies` in the config (and of the admin API's policy YAML).
struct PolicyConfig {
  std::string name;
  // always_sample, status_code, latency, string_attribute, numeric_attribute, boolean_attribute,
  // probabilistic, rate_limiting, bytes_limiting, span_count, trace_state, ottl_condition, and,
  // not, drop, composite.
  std::string type;
  // status_code: sample when any span has one of these codes (ERROR, OK, UNSET).
  std::vector<std::string> status_codes;
  // probabilistic: percentage of traces sampled, consistently by trace id, in [0, 100].
  double sampling_percentage = 0;
  // probabilistic: salt mixed into the trace id hash, so that two tracekeep tiers can sample
  // independent subsets.
  std::string hash_salt;
  LatencyConfig latency;
  StringAttributeConfig string_attribute;
  NumericAttributeConfig numeric_attribute;
  BooleanAttributeConfig boolean_attribute;
  SpanCountConfig span_count;
  TraceStateConfig trace_state;
  int64_t spans_per_second = 0;  // rate_limiting
  BytesLimitingConfig bytes_limiting;
  OttlConditionConfig ottl_condition;
  CompositeConfig composite;
  // and (and_sub_policy), drop (drop_sub_policy), not (not_sub_policy, exactly one) and composite
  // (composite_sub_policy).
  std::vector<PolicyConfig> sub_policies;
};

// How a policy set is built.
struct PolicySetOptions {
  // rate_limiting and composite budgets are divided by this (each shard owns one set).
  int shards = 1;
  // Stop at the first policy that samples (drop policies are still evaluated first).
  bool sample_on_first_match = false;
};

// Counters of one policy (by name), kept across policy changes.
struct PolicyStats {
  std::atomic<uint64_t> traces_sampled{0};  // kept, attributed to this policy
  std::atomic<uint64_t> spans_sampled{0};
  std::atomic<uint64_t> traces_dropped{0};  // dropped by this drop policy
  std::atomic<uint64_t> spans_dropped{0};
  std::atomic<uint64_t> evaluated_sampled{0};  // this policy's own verdict was "sample"
  std::atomic<uint64_t> evaluated_not_sampled{0};
};

// Stable counters per policy name; entries are never removed. Thread-safe.
class PolicyStatsRegistry {
 public:
  PolicyStats* Get(const std::string& name);
  std::vector<std::pair<std::string, const PolicyStats*>> All() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<PolicyStats>> stats_ ABSL_GUARDED_BY(mu_);
};

// Builds the evaluator of one policy (recursively for combinators). The error names the policy
// and the offending value.
[[nodiscard]] absl::StatusOr<PolicyPtr> CreatePolicy(const PolicyConfig& config,
                                                     const PolicySetOptions& options = {});

// Lists every problem of a policy list (empty when valid), each prefixed with `path`[i].
std::vector<std::string> ValidatePolicies(const std::vector<PolicyConfig>& policies,
                                          const std::string& path);

// The outcome of a policy set for one trace.
struct Verdict {
  enum class Outcome { kNotSampled, kSampled, kDropped };
  Outcome outcome = Outcome::kNotSampled;
  int policy = -1;  // the policy that sampled (first) or dropped the trace; -1 otherwise
};

// The policies in force. Semantics (those of the OpenTelemetry Collector):
//  - a `drop` policy whose sub-policies all match drops the trace, whatever the others decide;
//    drop policies are evaluated first, in order, so they cost no rate_limiting budget;
//  - otherwise the trace is sampled when any policy samples it, and attributed to the first such
//    policy; every policy is evaluated (and counted) unless sample_on_first_match is set.
// Owned by one shard at a time (see Policy).
class PolicySet {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PolicySet>> Create(
      const std::vector<PolicyConfig>& configs, const PolicySetOptions& options = {},
      PolicyStatsRegistry* stats = nullptr);
  Verdict Evaluate(TraceView& trace, absl::Time now);
  // Shortcut for tests: index of the sampling policy, -1 when not sampled or dropped.
  int Evaluate(const PendingTrace& trace, absl::Time now = absl::UnixEpoch());
  size_t size() const { return names_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }
  // Counters of policy i; nullptr when built without a registry.
  PolicyStats* stats(size_t i) const { return stats_[i]; }
  // Whether some policy looks at single spans (Policy::ReadsSpans).
  bool ReadsSpans() const { return reads_spans_; }

 private:
  PolicySetOptions options_;
  bool reads_spans_ = false;
  std::vector<std::string> names_;
  std::vector<PolicyPtr> policies_;
  std::vector<bool> is_drop_;
  std::vector<PolicyStats*> stats_;
};

// Factories of the policy families (policies_*.cc). Arguments are validated already.
PolicyPtr NewAlwaysSamplePolicy();
PolicyPtr NewStatusCodePolicy(const std::vector<std::string>& codes);
PolicyPtr NewLatencyPolicy(const LatencyConfig& config);
PolicyPtr NewProbabilisticPolicy(double percentage, const std::string& salt);
PolicyPtr NewRateLimitingPolicy(double spans_per_second);
PolicyPtr NewSpanCountPolicy(const SpanCountConfig& config);
[[nodiscard]] absl::StatusOr<PolicyPtr> NewStringAttributePolicy(
    const StringAttributeConfig& config);
PolicyPtr NewNumericAttributePolicy(const NumericAttributeConfig& config);
PolicyPtr NewBooleanAttributePolicy(const BooleanAttributeConfig& config);
PolicyPtr NewTraceStatePolicy(const TraceStateConfig& config);
// `bytes_per_second` and `burst` already divided among the shards.
PolicyPtr NewBytesLimitingPolicy(double bytes_per_second, double burst);
// Parses the conditions; the error names the condition ("span[1]: column 5: ...").
[[nodiscard]] absl::StatusOr<PolicyPtr> NewOttlConditionPolicy(const OttlConditionConfig& config);
PolicyPtr NewAndPolicy(std::vector<PolicyPtr> subs);
PolicyPtr NewNotPolicy(PolicyPtr sub);
// Ordered sub-policies; each has its own spans/s budget (`budgets[i]`), all share `total`.
PolicyPtr NewCompositePolicy(std::vector<PolicyPtr> subs, std::vector<double> budgets,
                             double total);

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_POLICY_H_
