#include "collector/receiver/export_handler.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::receiver {

int64_t CountSpans(const OtlpRequest& request) {
  int64_t n = 0;
  for (const auto& rs : request.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  }
  return n;
}

void ExportHandler::CountRefusedRequest(Transport transport, RefuseReason reason) {
  TransportStats& s = stats_->of(transport);
  s.requests.fetch_add(1, std::memory_order_relaxed);
  s.requests_refused[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
}

ExportOutcome ExportHandler::Export(Transport transport, const OtlpRequest& request,
                                    absl::string_view decode_notes) {
  return ExportSplit(transport, SplitRequest(request), decode_notes);
}

ExportOutcome ExportHandler::ExportSplit(Transport transport, SplitResult&& split,
                                         absl::string_view decode_notes) {
  TransportStats& s = stats_->of(transport);
  s.requests.fetch_add(1, std::memory_order_relaxed);
  const int64_t valid = split.accepted_spans;
  s.spans_received.fetch_add(static_cast<uint64_t>(valid + split.rejected()),
                             std::memory_order_relaxed);
  if (split.rejected_invalid_trace_id > 0) {
    s.spans_refused[static_cast<int>(RefuseReason::kInvalidTraceId)].fetch_add(
        static_cast<uint64_t>(split.rejected_invalid_trace_id), std::memory_order_relaxed);
  }
  if (split.rejected_invalid_span_id > 0) {
    s.spans_refused[static_cast<int>(RefuseReason::kInvalidSpanId)].fetch_add(
        static_cast<uint64_t>(split.rejected_invalid_span_id), std::memory_order_relaxed);
  }

  ExportOutcome outcome;
  if (valid > 0) {
    absl::Status offered = intake_->Offer(std::move(split.traces), valid);
    if (!offered.ok()) {
      // Spans with invalid ids stay counted under their own reason; the valid ones are refused
      // with the intake's reason, and the whole request is refused.
      RefuseReason reason = RefuseReason::kInternal;
      std::string message;
      switch (offered.code()) {
        case absl::StatusCode::kResourceExhausted:
          reason = RefuseReason::kOverloaded;
          outcome.status = absl::ResourceExhaustedError(
              absl::StrCat("tracekeep is over capacity, retry later: ", offered.message()));
          break;
        case absl::StatusCode::kUnavailable:
          reason = RefuseReason::kShuttingDown;
          outcome.status = absl::UnavailableError(
              absl::StrCat("tracekeep is shutting down, retry later: ", offered.message()));
          break;
        default:
          outcome.status = std::move(offered);
          break;
      }
      s.spans_refused[static_cast<int>(reason)].fetch_add(static_cast<uint64_t>(valid),
                                                          std::memory_order_relaxed);
      s.requests_refused[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
      return outcome;
    }
    s.spans_accepted.fetch_add(static_cast<uint64_t>(valid), std::memory_order_relaxed);
  }
  if (split.rejected() > 0) {
    s.requests_partial.fetch_add(1, std::memory_order_relaxed);
    outcome.rejected_spans = split.rejected();
    outcome.error_message = decode_notes.empty()
                                ? std::move(split.error_message)
                                : absl::StrCat(decode_notes, "; ", split.error_message);
  } else if (!decode_notes.empty()) {
    outcome.error_message = std::string(decode_notes);
  }
  return outcome;
}

}  // namespace tracekeep::receiver
