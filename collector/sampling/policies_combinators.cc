// Policies made of policies: and, not (and drop, which is an `and` whose match drops the trace;
// see PolicySet) and composite.
#include "collector/sampling/policy.h"

namespace tracekeep::sampling {
namespace {

bool AnyReadsSpans(const std::vector<PolicyPtr>& policies) {
  for (const PolicyPtr& p : policies) {
    if (p->ReadsSpans()) return true;
  }
  return false;
}

// Samples when every sub-policy samples. Stops at the first that does not.
class AndPolicy final : public Policy {
 public:
  explicit AndPolicy(std::vector<PolicyPtr> subs) : subs_(std::move(subs)) {}
  Decision Evaluate(TraceView& trace, absl::Time now) override {
    for (auto& p : subs_) {
      if (p->Evaluate(trace, now) != Decision::kSampled) return Decision::kNotSampled;
    }
    return Decision::kSampled;
  }
  bool ReadsSpans() const override { return AnyReadsSpans(subs_); }

 private:
  std::vector<PolicyPtr> subs_;
};

// Samples when its sub-policy does not. The sub-policy decides about the whole trace, so
// `not` over string_attribute means "no span of this trace has the value".
class NotPolicy final : public Policy {
 public:
  explicit NotPolicy(PolicyPtr sub) : sub_(std::move(sub)) {}
  Decision Evaluate(TraceView& trace, absl::Time now) override {
    return sub_->Evaluate(trace, now) == Decision::kSampled ? Decision::kNotSampled
                                                            : Decision::kSampled;
  }
  bool ReadsSpans() const override { return sub_->ReadsSpans(); }

 private:
  PolicyPtr sub_;
};

// Ordered sub-policies, each with its own spans/s budget, all within a total budget. A trace is
// sampled by the first sub-policy that samples it and still has budget for all its spans in the
// current second; a sub-policy out of budget passes the trace on to the next one.
class CompositePolicy final : public Policy {
 public:
  CompositePolicy(std::vector<PolicyPtr> subs, std::vector<double> budgets, double total)
      : subs_(std::move(subs)), budgets_(std::move(budgets)), spent_(subs_.size()), total_(total) {}

  Decision Evaluate(TraceView& trace, absl::Time now) override {
    const int64_t second = absl::ToUnixSeconds(now);
    if (second != second_) {
      second_ = second;
      total_spent_ = 0;
      std::fill(spent_.begin(), spent_.end(), 0);
    }
    const double n = static_cast<double>(trace.span_count());
    if (total_spent_ + n > total_) return Decision::kNotSampled;
    for (size_t i = 0; i < subs_.size(); ++i) {
      if (spent_[i] + n > budgets_[i]) continue;
      if (subs_[i]->Evaluate(trace, now) != Decision::kSampled) continue;
      spent_[i] += n;
      total_spent_ += n;
      return Decision::kSampled;
    }
    return Decision::kNotSampled;
  }
  bool ReadsSpans() const override { return AnyReadsSpans(subs_); }

 private:
  std::vector<PolicyPtr> subs_;
  std::vector<double> budgets_;
  std::vector<double> spent_;
  double total_;
  double total_spent_ = 0;
  int64_t second_ = INT64_MIN;
};

}  // namespace

PolicyPtr NewAndPolicy(std::vector<PolicyPtr> subs) {
  return std::make_unique<AndPolicy>(std::move(subs));
}
PolicyPtr NewNotPolicy(PolicyPtr sub) { return std::make_unique<NotPolicy>(std::move(sub)); }
PolicyPtr NewCompositePolicy(std::vector<PolicyPtr> subs, std::vector<double> budgets,
                             double total) {
  return std::make_unique<CompositePolicy>(std::move(subs), std::move(budgets), total);
}

}  // namespace tracekeep::sampling
