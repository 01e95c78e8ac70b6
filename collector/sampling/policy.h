// Sampling policies: the evaluator interface, the decision, and the trace they look at.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_POLICY_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_POLICY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::sampling {

// A trace waiting for its decision, with what policies need to know about it.
struct PendingTrace {
  std::string trace_id;
  uint64_t hash = 0;  // TraceIdHash(trace_id)
  std::vector<SpanRecord> spans;
  absl::Time first_arrival;
  absl::Time last_arrival;
  bool has_error = false;
  bool has_root = false;
  int64_t min_start_unix_nanos = INT64_MAX;
  int64_t max_end_unix_nanos = INT64_MIN;
  size_t span_bytes = 0;
};

enum class Decision { kNotSampled, kSampled };

// Decides one trace. Implementations are immutable after construction and thread-safe.
class Policy {
 public:
  virtual ~Policy() = default;
  virtual Decision Evaluate(const PendingTrace& trace) const = 0;
};
using PolicyPtr = std::unique_ptr<Policy>;

// One entry of `sampler.policies` in the config. The shape follows the OpenTelemetry Collector's
// tail_sampling processor, so its configs translate one-to-one.
struct PolicyConfig {
  std::string name;
  std::string type;  // "always_sample", "status_code", "probabilistic"
  // status_code: the span status codes that sample a trace. Only "ERROR" is supported so far.
  std::vector<std::string> status_codes;
  // probabilistic: percentage of traces sampled, consistently by trace id, in [0, 100].
  double sampling_percentage = 0;
  // probabilistic: salt mixed into the trace id hash, so that two tracekeep tiers can sample
  // independent subsets.
  std::string hash_salt;
};

// Builds the evaluator of one policy. The error names the policy and the offending value.
[[nodiscard]] absl::StatusOr<PolicyPtr> CreatePolicy(const PolicyConfig& config);

// Lists every problem of a policy list (empty when valid), each prefixed with `path`[i].
std::vector<std::string> ValidatePolicies(const std::vector<PolicyConfig>& policies,
                                          const std::string& path);

// The policies in force, evaluated in order. A trace is sampled when any policy samples it; it is
// attributed to the first such policy.
class PolicySet {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PolicySet>> Create(
      const std::vector<PolicyConfig>& configs);
  // Index of the first policy that samples `trace`, or -1 when none does.
  int Evaluate(const PendingTrace& trace) const;
  size_t size() const { return names_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }

 private:
  std::vector<std::string> names_;
  std::vector<PolicyPtr> policies_;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_POLICY_H_
