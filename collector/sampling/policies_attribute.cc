// The policies over span and resource attributes and the trace state. They read fields the
// receiver does not decode; TraceView scans them from the span bytes once per trace.
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "collector/sampling/policy.h"
#include "re2/re2.h"

namespace tracekeep::sampling {
namespace {

// With invert_match the policy samples a trace when NO span (nor resource) of it has a matching
// value: a trace-wide absence test (the OpenTelemetry Collector's invert_match semantics, without
// its special "inverted not sampled" override; use a `drop` policy for that).
Decision Verdict(bool found, bool invert) {
  return found != invert ? Decision::kSampled : Decision::kNotSampled;
}

class StringAttributePolicy final : public Policy {
 public:
  explicit StringAttributePolicy(const StringAttributeConfig& c)
      : key_(c.key), invert_(c.invert_match) {
    if (c.enabled_regex_matching) {
      RE2::Options options;
      options.set_log_errors(false);  // reported by valid() through the config's validation
      for (const std::string& v : c.values) {
        patterns_.push_back(std::make_unique<RE2>(v, options));
      }
    } else {
      values_.insert(c.values.begin(), c.values.end());
    }
  }

  bool valid(std::string* error) const {
    for (const auto& p : patterns_) {
      if (!p->ok()) {
        *error = absl::StrCat("invalid regular expression \"", p->pattern(), "\": ", p->error());
        return false;
      }
    }
    return true;
  }

  Decision Evaluate(TraceView& trace, absl::Time) override {
    const bool found = trace.AnyAttribute(key_, [this](const AttributeValue& v) {
      if (v.type != AttributeValue::Type::kString) return false;
      if (patterns_.empty())
        return values_.contains(absl::string_view(v.string_value.data(), v.string_value.size()));
      const re2::StringPiece s(v.string_value.data(), v.string_value.size());
      for (const auto& p : patterns_) {
        if (RE2::FullMatch(s, *p)) return true;
      }
      return false;
    });
    return Verdict(found, invert_);
  }

 private:
  std::string key_;
  bool invert_;
  absl::flat_hash_set<std::string> values_;
  std::vector<std::unique_ptr<RE2>> patterns_;
};

class NumericAttributePolicy final : public Policy {
 public:
  explicit NumericAttributePolicy(const NumericAttributeConfig& c)
      : key_(c.key),
        min_(c.min_value.value_or(-HUGE_VAL)),
        max_(c.max_value.value_or(HUGE_VAL)),
        invert_(c.invert_match) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    const bool found = trace.AnyAttribute(key_, [this](const AttributeValue& v) {
      double x;
      if (v.type == AttributeValue::Type::kInt) {
        x = static_cast<double>(v.int_value);
      } else if (v.type == AttributeValue::Type::kDouble) {
        x = v.double_value;
      } else {
        return false;
      }
      return x >= min_ && x <= max_;
    });
    return Verdict(found, invert_);
  }

 private:
  std::string key_;
  double min_;
  double max_;
  bool invert_;
};

class BooleanAttributePolicy final : public Policy {
 public:
  explicit BooleanAttributePolicy(const BooleanAttributeConfig& c)
      : key_(c.key), value_(c.value), invert_(c.invert_match) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    const bool found = trace.AnyAttribute(key_, [this](const AttributeValue& v) {
      return v.type == AttributeValue::Type::kBool && v.bool_value == value_;
    });
    return Verdict(found, invert_);
  }

 private:
  std::string key_;
  bool value_;
  bool invert_;
};

// Samples when any span's W3C trace_state has `key` with one of the values.
class TraceStatePolicy final : public Policy {
 public:
  explicit TraceStatePolicy(const TraceStateConfig& c)
      : key_(c.key), values_(c.values.begin(), c.values.end()) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    for (size_t i = 0; i < trace.span_count(); ++i) {
      std::string_view value;
      if (TraceStateValue(trace.span(i).trace_state, key_, &value) &&
          values_.contains(absl::string_view(value.data(), value.size()))) {
        return Decision::kSampled;
      }
    }
    return Decision::kNotSampled;
  }

 private:
  std::string key_;
  absl::flat_hash_set<std::string> values_;
};

}  // namespace

absl::StatusOr<PolicyPtr> NewStringAttributePolicy(const StringAttributeConfig& config) {
  auto p = std::make_unique<StringAttributePolicy>(config);
  std::string error;
  if (!p->valid(&error)) return absl::InvalidArgumentError(error);
  return PolicyPtr(std::move(p));
}
PolicyPtr NewNumericAttributePolicy(const NumericAttributeConfig& config) {
  return std::make_unique<NumericAttributePolicy>(config);
}
PolicyPtr NewBooleanAttributePolicy(const BooleanAttributeConfig& config) {
  return std::make_unique<BooleanAttributePolicy>(config);
}
PolicyPtr NewTraceStatePolicy(const TraceStateConfig& config) {
  return std::make_unique<TraceStatePolicy>(config);
}

}  // namespace tracekeep::sampling
