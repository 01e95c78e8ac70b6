#include "collector/intake/journaled_intake.h"

#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"

namespace tracekeep::intake {

JournaledIntake::JournaledIntake(const JournaledIntakeOptions& options, storage::Journal* journal,
                                 sampling::Sampler* sampler, Clock* clock)
    : options_(options), journal_(journal), sampler_(sampler), clock_(clock) {}

JournaledIntake::~JournaledIntake() { Shutdown(absl::InfiniteFuture()); }

absl::Status JournaledIntake::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  // The journal time, taken under mu_ so that TruncateOnce() sees either this offer in flight or
  // a later time; it is also the traces' arrival (below).
  absl::Time now;
  std::multimap<int64_t, int>::iterator in_flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    now = clock_->Now();
    in_flight = in_flight_.emplace(absl::ToUnixNanos(now), 0);
  }
  // The traces arrive at the journal's time: the sampler's low-water mark (the oldest arrival
  // still pending) then never passes this entry while one of its traces is pending. (Stamped by
  // the sampler later, a pending trace's arrival was newer than its entry, and truncation
  // removed the entry: a crash then lost the trace.)
  const int64_t arrival = absl::ToUnixNanos(now);
  for (TraceSpans& t : traces) t.arrival_unix_nanos = arrival;
  // Every trace learns its record and every span where its bytes are: the sampler may then
  // release them from memory while the trace is pending.
  absl::StatusOr<std::string> key = journal_->AppendAndLocate(&traces, now);
  absl::Status status;
  if (!key.ok()) {
    // Not durable: refuse with a retryable code, so that the client keeps the data. A full disk
    // (or a journal refusing writes until it resumes) is a capacity problem: RESOURCE_EXHAUSTED
    // (HTTP 429) like other overloads; anything else UNAVAILABLE (503).
    const std::string message =
        absl::StrCat("cannot journal the request, retry later: ", key.status().message());
    status = key.status().code() == absl::StatusCode::kResourceExhausted
                 ? absl::ResourceExhaustedError(message)
                 : absl::UnavailableError(message);
  } else {
    status = sampler_->Offer(std::move(traces), span_count);
    if (!status.ok()) {
      absl::Status erased = journal_->Erase(*key);
      if (!erased.ok()) TK_LOG(Warning) << "journal: cannot erase a refused batch: " << erased;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.erase(in_flight);
  return status;
}

absl::Status JournaledIntake::Precheck(int64_t span_count) {
  return sampler_->Precheck(span_count);
}

absl::StatusOr<int64_t> JournaledIntake::Recover() {
  int64_t spans = 0;
  int64_t batches = 0;
  absl::Status s = journal_->ReplayWithRefs(
      [&](std::vector<TraceSpans>&& traces, absl::Time arrival, const JournalRef& where) {
        int64_t n = 0;
        for (TraceSpans& t : traces) {
          t.arrival_unix_nanos = absl::ToUnixNanos(arrival);
          t.journal_ref = where;
          t.replayed = true;
          n += static_cast<int64_t>(t.spans.size());
        }
        sampler_->Restore(std::move(traces), n);
        spans += n;
        ++batches;
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  if (batches > 0) {
    TK_LOG(Info) << "journal: replayed " << batches << " batches (" << spans
                 << " spans) accepted before the last stop";
  }
  return spans;
}

absl::Time JournaledIntake::TruncateOnce() {
  absl::Time mark;
  {
    // In-flight offers first, then the sampler: an offer leaves in_flight_ only after the
    // sampler holds it. Offers that start later get a journal time >= now.
    std::lock_guard<std::mutex> lock(mu_);
    mark = clock_->Now();
    if (!in_flight_.empty()) {
      mark = std::min(mark, absl::FromUnixNanos(in_flight_.begin()->first));
    }
  }
  mark = std::min(mark, sampler_->LowWaterMark());
  const absl::Time decided = mark;
  if (options_.holds_low_water_mark) mark = std::min(mark, options_.holds_low_water_mark());
  absl::Status s = journal_->TruncateBefore(mark);
  if (!s.ok()) {
    TK_LOG(Warning) << "journal: truncation failed: " << s;
  } else if (mark != absl::InfiniteFuture()) {
    truncated_through_.store(absl::ToUnixNanos(mark));
  }
  // What only held order traces keep: written back and out of the page cache.
  if (decided > mark) journal_->DropCacheBefore(decided);
  return mark;
}

absl::Status JournaledIntake::Start() {
  truncator_.Start(options_.truncate_interval, [this] { TruncateOnce(); });
  return absl::OkStatus();
}

void JournaledIntake::Shutdown(absl::Time /*deadline*/) {
  if (!truncator_.Stop()) return;  // stopped already, or never started
  TruncateOnce();
}

}  // namespace tracekeep::intake
