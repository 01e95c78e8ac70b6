#include "collector/receiver/receiver_stats.h"

namespace tracekeep::receiver {

const char* TransportName(Transport transport) {
  switch (transport) {
    case Transport::kGrpc:
      return "grpc";
    case Transport::kHttp:
      return "http";
  }
  return "unknown";
}

const char* RefuseReasonName(RefuseReason reason) {
  switch (reason) {
    case RefuseReason::kInvalidTraceId:
      return "invalid_trace_id";
    case RefuseReason::kInvalidSpanId:
      return "invalid_span_id";
    case RefuseReason::kMalformed:
      return "malformed";
    case RefuseReason::kTooLarge:
      return "too_large";
    case RefuseReason::kOverloaded:
      return "overloaded";
    case RefuseReason::kShuttingDown:
      return "shutting_down";
    case RefuseReason::kInternal:
      return "internal";
    case RefuseReason::kForbidden:
      return "forbidden";
    case RefuseReason::kUnauthenticated:
      return "unauthenticated";
    case RefuseReason::kRateLimited:
      return "rate_limited";
  }
  return "unknown";
}

namespace {

template <typename Get>
std::vector<ReceiverStats::Sample> PerTransport(Get get) {
  std::vector<ReceiverStats::Sample> out;
  for (int t = 0; t < kNumTransports; ++t) {
    out.push_back({TransportName(static_cast<Transport>(t)), nullptr, get(t)});
  }
  return out;
}

template <typename Get>
std::vector<ReceiverStats::Sample> PerTransportAndReason(Get get) {
  std::vector<ReceiverStats::Sample> out;
  for (int t = 0; t < kNumTransports; ++t) {
    for (int r = 0; r < kNumRefuseReasons; ++r) {
      out.push_back({TransportName(static_cast<Transport>(t)),
                     RefuseReasonName(static_cast<RefuseReason>(r)), get(t, r)});
    }
  }
  return out;
}

}  // namespace

std::vector<ReceiverStats::Sample> ReceiverStats::SpansReceived() const {
  return PerTransport([this](int t) { return transports_[t].spans_received.load(); });
}

std::vector<ReceiverStats::Sample> ReceiverStats::SpansAccepted() const {
  return PerTransport([this](int t) { return transports_[t].spans_accepted.load(); });
}

std::vector<ReceiverStats::Sample> ReceiverStats::SpansRefused() const {
  return PerTransportAndReason(
      [this](int t, int r) { return transports_[t].spans_refused[r].load(); });
}

std::vector<ReceiverStats::Sample> ReceiverStats::Requests() const {
  return PerTransport([this](int t) { return transports_[t].requests.load(); });
}

std::vector<ReceiverStats::Sample> ReceiverStats::RequestsRefused() const {
  return PerTransportAndReason(
      [this](int t, int r) { return transports_[t].requests_refused[r].load(); });
}

}  // namespace tracekeep::receiver
