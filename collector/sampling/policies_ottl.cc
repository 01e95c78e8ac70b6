// The ottl_condition policy: OTTL conditions on spans and span events (collector/sampling/ottl.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/sampling/ottl.h"
#include "collector/sampling/policy.h"

namespace tracekeep::sampling {
namespace {

class OttlConditionPolicy final : public Policy {
 public:
  OttlConditionPolicy(std::vector<ottl::Condition> span, std::vector<ottl::Condition> event,
                      bool propagate)
      : span_(std::move(span)), event_(std::move(event)), propagate_(propagate) {}

  Decision Evaluate(TraceView& trace, absl::Time) override {
    if (trace.span_count() == 0) return Decision::kNotSampled;
    trace.span(0);  // reads back span bytes kept only in the journal
    const PendingTrace& t = trace.trace();
    const SpanOrigin* resource_of = nullptr;
    for (const SpanRecord& rec : t.spans) {
      span_attributes_.clear();
      events_.clear();
      event_attributes_.clear();
      SpanFields fields;
      ottl::Input in;
      if (rec.in_journal_only || !ScanSpan(rec.span, &fields, &span_attributes_) ||
          !ScanSpanKindAndEvents(rec.span, &in.kind, &events_, &event_attributes_)) {
        if (propagate_) return Decision::kNotSampled;
        continue;
      }
      if (rec.origin.get() != resource_of) {
        resource_of = rec.origin.get();
        resource_attributes_.clear();
        if (resource_of != nullptr &&
            !ScanResourceAttributes(resource_of->resource, &resource_attributes_)) {
          resource_attributes_.clear();
          if (propagate_) return Decision::kNotSampled;
        }
      }
      in.span_name = fields.name;
      in.status_code = fields.status_code;
      in.start_unix_nanos = rec.start_unix_nanos;
      in.end_unix_nanos = rec.end_unix_nanos;
      in.span_attributes = span_attributes_.data();
      in.span_attribute_count = span_attributes_.size();
      in.resource_attributes = resource_attributes_.data();
      in.resource_attribute_count = resource_attributes_.size();
      for (const ottl::Condition& c : span_) {
        if (c.Evaluate(in)) return Decision::kSampled;
      }
      for (const SpanEventFields& e : events_) {
        in.event_name = e.name;
        in.event_attributes = event_attributes_.data() + e.attributes_begin;
        in.event_attribute_count = e.attributes_end - e.attributes_begin;
        for (const ottl::Condition& c : event_) {
          if (c.Evaluate(in)) return Decision::kSampled;
        }
      }
    }
    return Decision::kNotSampled;
  }

 private:
  const std::vector<ottl::Condition> span_;
  const std::vector<ottl::Condition> event_;
  const bool propagate_;
  // Reused across spans and traces (a shard evaluates one trace at a time).
  std::vector<Attribute> span_attributes_;
  std::vector<Attribute> resource_attributes_;
  std::vector<SpanEventFields> events_;
  std::vector<Attribute> event_attributes_;
};

absl::Status ParseAll(const std::vector<std::string>& texts, ottl::Context context,
                      const char* name, std::vector<ottl::Condition>* out) {
  for (size_t i = 0; i < texts.size(); ++i) {
    auto c = ottl::Condition::Parse(texts[i], context);
    if (!c.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, "[", i, "]: ", c.status().message(), " in \"", texts[i], "\""));
    }
    out->push_back(std::move(c).value());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PolicyPtr> NewOttlConditionPolicy(const OttlConditionConfig& config) {
  std::vector<ottl::Condition> span, event;
  absl::Status s = ParseAll(config.span, ottl::Context::kSpan, "span", &span);
  if (!s.ok()) return s;
  s = ParseAll(config.spanevent, ottl::Context::kSpanEvent, "spanevent", &event);
  if (!s.ok()) return s;
  return std::make_unique<OttlConditionPolicy>(std::move(span), std::move(event),
                                               config.error_mode == "propagate");
}

}  // namespace tracekeep::sampling
