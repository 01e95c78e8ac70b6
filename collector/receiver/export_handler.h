// The transport-independent core of the OTLP receivers: validates a decoded export request,
// offers its valid spans to the intake, counts everything and says what to answer.
#ifndef TRACEKEEP_COLLECTOR_RECEIVER_EXPORT_HANDLER_H_
#define TRACEKEEP_COLLECTOR_RECEIVER_EXPORT_HANDLER_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "collector/pipeline/consumer.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/receiver/receiver_stats.h"
#include "collector/security/client_limits.h"
#include "collector/security/token_file.h"

namespace tracekeep::receiver {

// What to answer to one export request.
struct ExportOutcome {
  // OK: the valid spans were taken (see rejected_spans for the others).
  // kResourceExhausted / kUnavailable: nothing was taken, the client should retry later.
  // Anything else: nothing was taken, retrying does not help.
  absl::Status status;
  // For ExportTraceServiceResponse.partial_success, when status is OK.
  int64_t rejected_spans = 0;
  std::string error_message;
};

// Who may send to a receiver. Neither pointer is owned; both must outlive the receiver.
struct ClientAuthOptions {
  // When set, every request must carry "authorization: Bearer <token>" with a token of this file
  // (UNAUTHENTICATED / 401 otherwise); the token names the client. Default: none (anyone).
  security::TokenFile* tokens = nullptr;
  // When set (with `tokens`), each client's requests are counted and held to its rate limits
  // (RESOURCE_EXHAUSTED / 429 + Retry-After beyond them). Default: none.
  security::ClientLimits* limits = nullptr;
  // With `tokens`: the resource attribute that carries the authenticated client's name on every
  // span the receiver accepts, for sampling policies to match (ClientAttribute: what the client
  // sent under this key is replaced). Default: "" (none).
  std::string client_attribute;
};

// Thread-safe; holds no lock on the data path.
class ExportHandler {
 public:
  // Neither pointer is owned; both must outlive the handler.
  ExportHandler(SpanIntake* intake, ReceiverStats* stats, ClientAuthOptions auth = {})
      : intake_(intake), stats_(stats), auth_(auth) {}

  // Whether requests must carry a bearer token.
  bool requires_token() const { return auth_.tokens != nullptr; }
  // Checks a request's "authorization" value and returns the client it names ("" when no token
  // is required). A refusal (kUnauthenticated, the reason in its message, never the token) is
  // counted under RefuseReason::kUnauthenticated.
  [[nodiscard]] absl::StatusOr<std::string> Authenticate(Transport transport,
                                                         absl::string_view authorization);
  // Counts the request of `client` (a name from Authenticate; "" does nothing) of `spans` spans
  // and `bytes` bytes, and refuses it when the client is over its rate limit: true when
  // `outcome` holds the refusal (kResourceExhausted, counted under kRateLimited).
  bool RefuseOverLimit(Transport transport, absl::string_view client, int64_t spans, int64_t bytes,
                       ExportOutcome* outcome);
  // The same for a protobuf request still in wire form (spans counted only when needed).
  bool RefuseOverLimit(Transport transport, absl::string_view client, absl::string_view wire,
                       ExportOutcome* outcome);

  // Splits `request` by trace, rejects spans with invalid ids (partial success) and offers the
  // rest to the intake, all or nothing. `decode_notes` (may be empty) describes problems found
  // while decoding, such as ids that were not hex in OTLP/JSON; it is put before the partial
  // success message.
  // `client` is Authenticate's answer.
  ExportOutcome Export(Transport transport, const OtlpRequest& request,
                       absl::string_view decode_notes = {}, absl::string_view client = {});
  // The same for a request already split (SplitWireRequest: the protobuf receivers' path).
  ExportOutcome ExportSplit(Transport transport, SplitResult&& split,
                            absl::string_view decode_notes = {});

  // Before decoding a protobuf request: refuses it at once (with the status ExportSplit would
  // give, counted the same way) when the intake is over capacity or shutting down. Returns true
  // when `outcome` holds the refusal.
  bool RefuseEarly(Transport transport, absl::string_view wire, ExportOutcome* outcome);

  // Counts a request refused before it could be decoded (malformed, too large).
  void CountRefusedRequest(Transport transport, RefuseReason reason);

  ReceiverStats* stats() const { return stats_; }

  // What splitting a request of `client` (Authenticate's answer) puts on its spans: key "" when
  // there is no client attribute or no client.
  ClientAttribute ClientAttributeOf(absl::string_view client) const {
    if (client.empty()) return {};
    return ClientAttribute{auth_.client_attribute, client};
  }

  // How the protobuf receivers split requests (SplitWireRequest). Set before they start.
  void set_split_options(WireSplitOptions options) { split_options_ = std::move(options); }
  const WireSplitOptions& split_options() const { return split_options_; }

 private:
  SpanIntake* const intake_;
  ReceiverStats* const stats_;
  const ClientAuthOptions auth_;
  WireSplitOptions split_options_;
};

// Total number of spans in a request.
int64_t CountSpans(const OtlpRequest& request);

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_COLLECTOR_RECEIVER_EXPORT_HANDLER_H_
