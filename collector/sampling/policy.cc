#include "collector/sampling/policy.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "collector/common/status_macros.h"

namespace tracekeep::sampling {
namespace {

class AlwaysSamplePolicy final : public Policy {
 public:
  Decision Evaluate(const PendingTrace&) const override { return Decision::kSampled; }
};

// Samples traces with at least one span whose status is ERROR.
class ErrorStatusPolicy final : public Policy {
 public:
  Decision Evaluate(const PendingTrace& trace) const override {
    return trace.has_error ? Decision::kSampled : Decision::kNotSampled;
  }
};

// Samples a fixed share of traces. The decision depends only on the trace id (and salt), so
// every tracekeep instance and every late span of a trace agree on it.
class ProbabilisticPolicy final : public Policy {
 public:
  ProbabilisticPolicy(double percentage, std::string salt)
      : salt_hash_(salt.empty() ? 0 : absl::Hash<std::string>{}(salt)),
        threshold_(percentage >= 100 ? UINT64_MAX
                                     : static_cast<uint64_t>(std::ldexp(percentage / 100.0, 64))) {}

  Decision Evaluate(const PendingTrace& trace) const override {
    uint64_t h = trace.hash;
    if (salt_hash_ != 0) {
      h ^= salt_hash_;
      h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
      h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
      h ^= h >> 33;
    }
    return h < threshold_ || threshold_ == UINT64_MAX ? Decision::kSampled : Decision::kNotSampled;
  }

 private:
  uint64_t salt_hash_;
  uint64_t threshold_;
};

std::vector<std::string> Validate(const PolicyConfig& c, const std::string& path) {
  std::vector<std::string> problems;
  const std::string where = c.name.empty() ? path : absl::StrCat(path, " (\"", c.name, "\")");
  if (c.name.empty()) problems.push_back(absl::StrCat(path, ".name: must not be empty"));
  if (c.type == "always_sample") {
  } else if (c.type == "status_code") {
    if (c.status_codes.empty()) {
      problems.push_back(
          absl::StrCat(where, ".status_code.status_codes: must list at least one code"));
    }
    for (size_t i = 0; i < c.status_codes.size(); ++i) {
      const std::string& code = c.status_codes[i];
      if (code == "ERROR") continue;
      if (code == "OK" || code == "UNSET") {
        problems.push_back(absl::StrCat(where, ".status_code.status_codes[", i, "]: \"", code,
                                        "\" is not supported yet (only ERROR)"));
      } else {
        problems.push_back(absl::StrCat(where, ".status_code.status_codes[", i,
                                        "]: unknown status code \"", code,
                                        "\" (want ERROR, OK or UNSET)"));
      }
    }
  } else if (c.type == "probabilistic") {
    if (!(c.sampling_percentage >= 0 && c.sampling_percentage <= 100)) {
      problems.push_back(
          absl::StrCat(where, ".probabilistic.sampling_percentage: must be in [0, 100], got ",
                       c.sampling_percentage));
    }
  } else if (c.type.empty()) {
    problems.push_back(absl::StrCat(where, ".type: must be set"));
  } else {
    problems.push_back(absl::StrCat(where, ".type: unknown policy type \"", c.type,
                                    "\" (want always_sample, status_code or probabilistic)"));
  }
  return problems;
}

}  // namespace

std::vector<std::string> ValidatePolicies(const std::vector<PolicyConfig>& policies,
                                          const std::string& path) {
  std::vector<std::string> problems;
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < policies.size(); ++i) {
    const std::string p = absl::StrCat(path, "[", i, "]");
    for (auto& problem : Validate(policies[i], p)) problems.push_back(std::move(problem));
    if (!policies[i].name.empty() && !names.insert(policies[i].name).second) {
      problems.push_back(
          absl::StrCat(p, ".name: duplicate policy name \"", policies[i].name, "\""));
    }
  }
  return problems;
}

absl::StatusOr<PolicyPtr> CreatePolicy(const PolicyConfig& config) {
  std::vector<std::string> problems = Validate(config, "policy");
  if (!problems.empty()) return absl::InvalidArgumentError(problems.front());
  if (config.type == "always_sample") return PolicyPtr(new AlwaysSamplePolicy());
  if (config.type == "status_code") return PolicyPtr(new ErrorStatusPolicy());
  return PolicyPtr(new ProbabilisticPolicy(config.sampling_percentage, config.hash_salt));
}

absl::StatusOr<std::unique_ptr<PolicySet>> PolicySet::Create(
    const std::vector<PolicyConfig>& configs) {
  std::vector<std::string> problems = ValidatePolicies(configs, "sampler.policies");
  if (!problems.empty()) {
    std::string message;
    for (const auto& p : problems) absl::StrAppend(&message, message.empty() ? "" : "; ", p);
    return absl::InvalidArgumentError(message);
  }
  auto set = std::unique_ptr<PolicySet>(new PolicySet());
  for (const PolicyConfig& c : configs) {
    TK_ASSIGN_OR_RETURN(PolicyPtr policy, CreatePolicy(c));
    set->names_.push_back(c.name);
    set->policies_.push_back(std::move(policy));
  }
  return set;
}

int PolicySet::Evaluate(const PendingTrace& trace) const {
  for (size_t i = 0; i < policies_.size(); ++i) {
    if (policies_[i]->Evaluate(trace) == Decision::kSampled) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace tracekeep::sampling
