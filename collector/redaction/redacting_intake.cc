#include "collector/redaction/redacting_intake.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "opentelemetry/proto/common/v1/common.pb.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"

namespace tracekeep::redaction {

int64_t RedactingIntake::Redact(std::vector<TraceSpans>* traces) const {
  // Spans of one request share a few origins: each is redacted once.
  absl::flat_hash_map<const SpanOrigin*, SpanOriginPtr> origins;
  int64_t left = 0;
  for (TraceSpans& trace : *traces) {
    size_t kept = 0;
    for (size_t i = 0; i < trace.spans.size(); ++i) {
      SpanRecord& span = trace.spans[i];
      if (redactor_->RedactSpan(&span.span)) {
        if (span.span.empty()) continue;  // undecodable: not written
        // Where the receiver located the order id and the name in the original bytes no longer
        // holds (and the id may be hashed now): readers take them from the redacted span.
        span.key_offset = 0;
        span.key_size = 0;
        span.key_hash = 0;
        span.fields_known = false;  // the name's place too
      }
      if (span.origin != nullptr) {
        auto [it, inserted] = origins.try_emplace(span.origin.get());
        if (inserted) {
          SpanOrigin copy = *span.origin;
          bool changed = !copy.resource.empty() && redactor_->RedactResource(&copy.resource);
          if (!copy.scope.empty()) changed |= redactor_->RedactScope(&copy.scope);
          if (changed) {
            // service.name may have been redacted too.
            opentelemetry::proto::resource::v1::Resource resource;
            copy.service_name.clear();
            if (resource.ParseFromString(copy.resource)) {
              for (const auto& kv : resource.attributes()) {
                if (kv.key() == "service.name" && kv.value().has_string_value()) {
                  copy.service_name = kv.value().string_value();
                }
              }
            }
            it->second = std::make_shared<const SpanOrigin>(std::move(copy));
          } else {
            it->second = span.origin;
          }
        }
        span.origin = it->second;
      }
      if (kept != i) trace.spans[kept] = std::move(span);
      ++kept;
    }
    trace.spans.resize(kept);
    left += static_cast<int64_t>(kept);
  }
  traces->erase(std::remove_if(traces->begin(), traces->end(),
                               [](const TraceSpans& t) { return t.spans.empty(); }),
                traces->end());
  return left;
}

absl::Status RedactingIntake::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  const int64_t left = Redact(&traces);
  if (left == 0 && span_count > 0) return absl::OkStatus();  // every span was undecodable
  return next_->Offer(std::move(traces), left);
}

}  // namespace tracekeep::redaction
