// The redaction stage: a SpanIntake placed in front of the intake chain (daemon.cc), so that
// every span from every receiver is redacted once, before the journal, the store, the export
// queue or Kafka see it. Wired only when rules are configured: without rules it costs nothing.
#ifndef TRACEKEEP_COLLECTOR_REDACTION_REDACTING_INTAKE_H_
#define TRACEKEEP_COLLECTOR_REDACTION_REDACTING_INTAKE_H_

#include <vector>

#include "collector/pipeline/consumer.h"
#include "collector/redaction/redactor.h"

namespace tracekeep::redaction {

class RedactingIntake final : public SpanIntake {
 public:
  // Neither pointer is owned; both must outlive this.
  RedactingIntake(const Redactor* redactor, SpanIntake* next) : redactor_(redactor), next_(next) {}

  // Redacts every span and origin of `traces` (resources and scopes shared by several spans are
  // redacted once), then offers them to `next`. Spans whose bytes cannot be parsed are dropped
  // (counted by the redactor) rather than written unchecked.
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override;
  absl::Status Precheck(int64_t span_count) override { return next_->Precheck(span_count); }

  // What Offer does to the batch, without offering it (benchmarks, tests). Returns the spans
  // left.
  int64_t Redact(std::vector<TraceSpans>* traces) const;

 private:
  const Redactor* const redactor_;
  SpanIntake* const next_;
};

}  // namespace tracekeep::redaction

#endif  // TRACEKEEP_COLLECTOR_REDACTION_REDACTING_INTAKE_H_
