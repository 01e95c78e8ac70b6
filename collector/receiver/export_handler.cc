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

absl::StatusOr<std::string> ExportHandler::Authenticate(Transport transport,
                                                        absl::string_view authorization) {
  if (auth_.tokens == nullptr) return std::string();
  absl::StatusOr<security::TokenHolder> holder = auth_.tokens->Authenticate(authorization);
  if (!holder.ok()) {
    CountRefusedRequest(transport, RefuseReason::kUnauthenticated);
    return holder.status();
  }
  return std::move(holder->name);
}

bool ExportHandler::RefuseOverLimit(Transport transport, absl::string_view client, int64_t spans,
                                    int64_t bytes, ExportOutcome* outcome) {
  if (auth_.limits == nullptr || client.empty()) return false;
  absl::Status admitted = auth_.limits->Admit(client, spans, bytes);
  if (admitted.ok()) return false;
  TransportStats& s = stats_->of(transport);
  s.requests.fetch_add(1, std::memory_order_relaxed);
  s.spans_received.fetch_add(static_cast<uint64_t>(spans), std::memory_order_relaxed);
  const int reason = static_cast<int>(RefuseReason::kRateLimited);
  s.spans_refused[reason].fetch_add(static_cast<uint64_t>(spans), std::memory_order_relaxed);
  s.requests_refused[reason].fetch_add(1, std::memory_order_relaxed);
  outcome->status = std::move(admitted);
  return true;
}

bool ExportHandler::RefuseOverLimit(Transport transport, absl::string_view client,
                                    absl::string_view wire, ExportOutcome* outcome) {
  if (auth_.limits == nullptr || client.empty()) return false;
  return RefuseOverLimit(transport, client, CountWireSpans(wire), static_cast<int64_t>(wire.size()),
                         outcome);
}

ExportOutcome ExportHandler::Export(Transport transport, const OtlpRequest& request,
                                    absl::string_view decode_notes, absl::string_view client) {
  return ExportSplit(transport, SplitRequest(request, ClientAttributeOf(client)), decode_notes);
}

namespace {

// The answer and the refusal reason for an intake's refusal.
RefuseReason Refusal(absl::Status offered, absl::Status* answer) {
  switch (offered.code()) {
    case absl::StatusCode::kResourceExhausted:
      *answer = absl::ResourceExhaustedError(
          absl::StrCat("tracekeep is over capacity, retry later: ", offered.message()));
      return RefuseReason::kOverloaded;
    case absl::StatusCode::kUnavailable:
      *answer = absl::UnavailableError(
          absl::StrCat("tracekeep is shutting down, retry later: ", offered.message()));
      return RefuseReason::kShuttingDown;
    default:
      *answer = std::move(offered);
      return RefuseReason::kInternal;
  }
}

}  // namespace

bool ExportHandler::RefuseEarly(Transport transport, absl::string_view wire,
                                ExportOutcome* outcome) {
  const int64_t spans = CountWireSpans(wire);
  absl::Status precheck = intake_->Precheck(spans);
  if (precheck.ok()) return false;
  TransportStats& s = stats_->of(transport);
  s.requests.fetch_add(1, std::memory_order_relaxed);
  s.spans_received.fetch_add(static_cast<uint64_t>(spans), std::memory_order_relaxed);
  const RefuseReason reason = Refusal(std::move(precheck), &outcome->status);
  s.spans_refused[static_cast<int>(reason)].fetch_add(static_cast<uint64_t>(spans),
                                                      std::memory_order_relaxed);
  s.requests_refused[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
  return true;
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
      const RefuseReason reason = Refusal(std::move(offered), &outcome.status);
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
