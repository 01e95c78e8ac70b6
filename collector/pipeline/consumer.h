// The one data interface between stages, and the lifecycle every stage shares.
#ifndef TRACEKEEP_COLLECTOR_PIPELINE_CONSUMER_H_
#define TRACEKEEP_COLLECTOR_PIPELINE_CONSUMER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep {

// Lifecycle of a pipeline component (after the OpenTelemetry Collector's component.Component).
class Component {
 public:
  virtual ~Component() = default;
  // Starts background work. Called once, before any data arrives.
  [[nodiscard]] virtual absl::Status Start() = 0;
  // Stops intake, flushes what it holds downstream until `deadline`, releases threads.
  // Idempotent and safe to call without Start().
  virtual void Shutdown(absl::Time deadline) = 0;
};

// Receives kept traces. Ownership of the batch moves with the call: the callee may keep or
// modify it. A non-OK status means the callee did not take (all of) the data. kUnavailable has a
// stronger meaning: nothing was taken and `traces` was left untouched, so the caller may offer
// the same batch again later (the store refusing writes on a full disk). Thread-safe.
class TraceConsumer {
 public:
  virtual ~TraceConsumer() = default;
  [[nodiscard]] virtual absl::Status Consume(KeptTraces&& traces) = 0;
};

// Where receivers hand the spans they accepted (the sampler implements it). Takes all of `traces`
// or none of them: kResourceExhausted when over capacity (the client should retry later),
// kUnavailable when shutting down. Thread-safe.
class SpanIntake {
 public:
  virtual ~SpanIntake() = default;
  [[nodiscard]] virtual absl::Status Offer(std::vector<TraceSpans>&& traces,
                                           int64_t span_count) = 0;
  // Answers, before a request of `span_count` spans is even decoded, whether Offer would refuse
  // it for capacity (kResourceExhausted) or shutdown (kUnavailable), counting a refusal as Offer
  // counts it. OK reserves nothing: the Offer may still be refused. Receivers use it so that
  // refusing costs little when tracekeep is over capacity. Default: OK.
  [[nodiscard]] virtual absl::Status Precheck(int64_t span_count) {
    (void)span_count;
    return absl::OkStatus();
  }
  // Makes the effects of every Offer taken since the last Flush durable. An intake may defer
  // them (one disk write for many Offers) only for callers that call Flush before they count
  // what they offered as done (the Kafka receiver: before it may commit the records' offsets).
  // kUnavailable / kResourceExhausted: nothing flushed, call again later; the deferred effects
  // stay. Another error: what could not be flushed is lost (the caller counts it). Default: OK
  // (Offer's effects are durable when it returns).
  [[nodiscard]] virtual absl::Status Flush() { return absl::OkStatus(); }
};

// Hands one batch to several consumers. Every consumer gets a copy but the last, which gets the
// original. When the first consumer answers kUnavailable (took nothing), no other is called and
// kUnavailable is returned with `traces` untouched: the batch can be offered again as a whole.
// Otherwise every consumer is called and the first error is returned, kUnavailable of a later
// consumer turned into kAborted (earlier consumers took the batch: offering it again would
// duplicate it there).
class FanOutConsumer final : public TraceConsumer {
 public:
  explicit FanOutConsumer(std::vector<TraceConsumer*> consumers)
      : consumers_(std::move(consumers)) {}
  absl::Status Consume(KeptTraces&& traces) override {
    absl::Status first;
    for (size_t i = 0; i < consumers_.size(); ++i) {
      absl::Status s = i + 1 == consumers_.size() ? consumers_[i]->Consume(std::move(traces))
                                                  : consumers_[i]->Consume(KeptTraces(traces));
      if (s.code() == absl::StatusCode::kUnavailable) {
        if (i == 0) return s;
        s = absl::AbortedError(s.message());
      }
      if (first.ok()) first = s;
    }
    return first;
  }

 private:
  std::vector<TraceConsumer*> consumers_;
};

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_PIPELINE_CONSUMER_H_
