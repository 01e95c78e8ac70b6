// A narrow hook into the sampler for components that follow traces across decisions (the order
// tracker): it sees spans as shards buffer them and may overrule or take over a decision.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_TRACE_HOOK_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_TRACE_HOOK_H_

#include <string>
#include <utility>
#include <vector>

#include "collector/pipeline/span_batch.h"
#include "collector/sampling/policy.h"

namespace tracekeep::sampling {

struct HookVerdict {
  enum Action {
    kPolicy,  // the policies' decision stands
    kKeep,    // keep the trace whatever the policies said, attributed to `reason`
    kHold,    // the hook took the spans and will keep or release them itself
  };
  Action action = kPolicy;
  std::string reason;
  // With kKeep: string attributes the sampler adds to every span of the trace.
  std::vector<std::pair<std::string, std::string>> annotations;
};

// Called on shard threads, concurrently: implementations must be thread-safe. Calls must be cheap
// for traces the hook does not care about.
class TraceHook {
 public:
  virtual ~TraceHook() = default;
  // Spans of `spans.trace_id` arrived and are about to be buffered. The hook may set
  // `spans.linked_keys`; the pending trace carries them to OnDecided.
  virtual void OnBuffered(TraceSpans& spans) = 0;
  // The policies decided `trace` (`sampled` when one of them keeps it). Span bytes may be
  // released to the journal (SpanRecord::in_journal_only): with kKeep the sampler reads them
  // back and adds the verdict's annotations; with kHold the hook moved the spans out of `trace`.
  // A trace that waited without its spans (PendingTrace::spans_in_journal) has them read back
  // before this call, unless HoldsJournalReferences() and the journal has every part of it.
  virtual HookVerdict OnDecided(PendingTrace& trace, bool sampled) = 0;
  // Whether OnDecided holds a trace whose parts are all in the journal by their places
  // (PendingTrace::journal_refs), without reading its spans.
  virtual bool HoldsJournalReferences() const { return false; }
  // After a batch of OnDecided calls of one shard, before the sampler lets the intake journal
  // forget those traces: what the hook took (kHold) must be durable when this returns.
  virtual void OnDecisionsDone() {}
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_TRACE_HOOK_H_
