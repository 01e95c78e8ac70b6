// Counters of the OTLP receivers, per transport. Every span a receiver sees is either accepted or
// refused for exactly one reason: spans_received == spans_accepted + sum(spans_refused).
#ifndef TRACEKEEP_COLLECTOR_RECEIVER_RECEIVER_STATS_H_
#define TRACEKEEP_COLLECTOR_RECEIVER_RECEIVER_STATS_H_

#include <atomic>
#include <cstdint>
#include <vector>

namespace tracekeep::receiver {

enum class Transport { kGrpc = 0, kHttp = 1 };
inline constexpr int kNumTransports = 2;

// Why spans (or a whole request) were refused.
enum class RefuseReason {
  kInvalidTraceId = 0,  // span with a trace id that is not 16 bytes or all zero (partial success)
  kInvalidSpanId,       // span with a span id that is not 8 bytes or all zero (partial success)
  // The request could not be decoded (bad protobuf/JSON, unsupported content type or encoding).
  // Its spans cannot be counted, so only the request is: spans_refused stays unchanged.
  kMalformed,
  // The request body (compressed or decompressed) exceeds the size limit. Spans are not counted
  // (the body is not decoded). gRPC refuses oversize messages itself, before the receiver sees
  // them; those are not counted at all.
  kTooLarge,
  kOverloaded,    // the intake refused the batch with kResourceExhausted (client should retry)
  kShuttingDown,  // the intake refused the batch with kUnavailable (client should retry)
  kInternal,      // the intake failed otherwise
  // The client is not in the receiver's allowed_networks (PERMISSION_DENIED / 403). Only the
  // request is counted: its body is not read.
  kForbidden,
  // The receiver requires a bearer token and the request had none, or an unknown one
  // (UNAUTHENTICATED / 401). Only the request is counted: its body is not decoded.
  kUnauthenticated,
  // The authenticated client is over its own rate limit (RESOURCE_EXHAUSTED / 429 + Retry-After;
  // the client should retry). Its spans are counted.
  kRateLimited,
};
inline constexpr int kNumRefuseReasons = 10;

// "grpc", "http": the `transport` label value.
const char* TransportName(Transport transport);
// "invalid_trace_id", "invalid_span_id", "malformed", "too_large", "overloaded",
// "shutting_down", "internal", "forbidden", "unauthenticated", "rate_limited": the `reason` label
// value.
const char* RefuseReasonName(RefuseReason reason);

// Counters of one transport. Updated once per request (never per span), lock-free.
struct TransportStats {
  std::atomic<uint64_t> requests{0};  // export requests received, whatever their outcome
  // Requests refused as a whole (no span taken), by reason. Requests with some invalid spans are
  // not refused: they count in requests_partial.
  std::atomic<uint64_t> requests_refused[kNumRefuseReasons] = {};
  std::atomic<uint64_t> requests_partial{0};  // accepted with partial_success.rejected_spans > 0
  std::atomic<uint64_t> spans_received{0};    // spans in decoded requests
  std::atomic<uint64_t> spans_accepted{0};    // spans handed to the intake
  std::atomic<uint64_t> spans_refused[kNumRefuseReasons] = {};
};

class ReceiverStats {
 public:
  TransportStats& of(Transport t) { return transports_[static_cast<int>(t)]; }
  const TransportStats& of(Transport t) const { return transports_[static_cast<int>(t)]; }

  uint64_t spans_refused(Transport t, RefuseReason r) const {
    return of(t).spans_refused[static_cast<int>(r)].load(std::memory_order_relaxed);
  }
  uint64_t requests_refused(Transport t, RefuseReason r) const {
    return of(t).requests_refused[static_cast<int>(r)].load(std::memory_order_relaxed);
  }

  // One labelled counter value, for export as a Prometheus series.
  struct Sample {
    const char* transport;
    const char* reason;  // nullptr for counters without a reason label
    uint64_t value;
  };
  // tracekeep_receiver_spans_received_total{transport}
  std::vector<Sample> SpansReceived() const;
  // tracekeep_receiver_spans_accepted_total{transport}
  std::vector<Sample> SpansAccepted() const;
  // tracekeep_receiver_spans_refused_total{transport,reason}: every pair, zeros included, so the
  // series exist from the start.
  std::vector<Sample> SpansRefused() const;
  // tracekeep_receiver_requests_total{transport}
  std::vector<Sample> Requests() const;
  // tracekeep_receiver_requests_refused_total{transport,reason}
  std::vector<Sample> RequestsRefused() const;

 private:
  TransportStats transports_[kNumTransports];
};

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_COLLECTOR_RECEIVER_RECEIVER_STATS_H_
