// Synthetic but realistic OTLP trace requests for benchmarks and the load generator.
//
// Three services (shop-api, crm-api, mes-api) with ~9 resource attributes each; spans with 8-15
// attributes of mixed types, some events, ~300 bytes per serialized span. A trace's spans hop
// between the services, so one request holds three ResourceSpans with spans of many traces.
//
// A share of the traces belong to customer orders (ORDERS.md): every span of such a trace has
// `order.id`, its root span the order's new `order.status` and its invariant content. Orders go
// through the whole default lifecycle, one state per pass over the pool, with ids unique to the
// run: the lifecycle is healthy, so the order tracker sees the normal case.
#ifndef TRACEKEEP_BENCH_OTLP_GEN_H_
#define TRACEKEEP_BENCH_OTLP_GEN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tracekeep::bench {

// The shape of the generated traffic.
struct RequestShape {
  // Spans in every request. Default: 500.
  int spans_per_request = 500;
  // Spans of every trace (the last trace of a group may be cut short). Default: 10.
  int spans_per_trace = 10;
  // Fraction of traces, in [0, 1], that contain exactly one span with status ERROR. Default: 0.01.
  double error_share = 0.01;
  // A trace's spans are spread round-robin over this many consecutive requests (a "group").
  // Default: 1 (every trace is whole in one request).
  int trace_spread = 1;
  // Fraction of traces, in [0, 1], that record a step of a customer order; rounded down to
  // whole lifecycles (8 traces per order lane). Default: 0.1.
  double order_share = 0.1;
  // Fraction of the other traces, in [0, 1], that read one of `hot_order_ids` orders: every span
  // names it, no span records a state, and the same ids recur all run long (a synthetic
  // monitor's test order, a popular order looked at again and again). Default: 0.
  double hot_share = 0;
  // How many recurring ids those traces name. Default: 64.
  int hot_order_ids = 64;

  // Checks the ranges; the error names the field and the value.
  [[nodiscard]] absl::Status Validate() const;
};

// A pool of pre-serialized requests that stands for an endless stream of requests with unique
// trace ids. Request `n` of the stream is pool entry `n % size()` with every trace id rewritten
// for round `n / trace_spread`: the 16 bytes are patched in place, so producing a request costs a
// memcpy and a few stores, not a serialization. Immutable after Create(); thread-safe.
class RequestPool final {
 public:
  // Generates at least `min_requests` requests (rounded up to whole groups). `seed` fixes both
  // the content and the trace ids of the stream.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RequestPool>> Create(
      const RequestShape& shape, int min_requests, uint64_t seed);

  const RequestShape& shape() const { return shape_; }
  // Pool entries (a multiple of trace_spread).
  size_t size() const { return entries_.size(); }
  // Serialized size in bytes and span count of request `n` of the stream.
  size_t RequestBytes(uint64_t n) const { return EntryFor(n).bytes.size(); }
  int RequestSpans(uint64_t n) const { return EntryFor(n).spans; }
  // Traces with an ERROR span, over the whole pool (each counted once).
  int64_t error_traces() const { return error_traces_; }
  // Traces that record an order step, over the whole pool; each pass over the pool advances
  // order_traces() / 8 orders by one state.
  int64_t order_traces() const { return order_lanes_ * kOrderSteps; }
  static constexpr int kOrderSteps = 8;
  int64_t traces() const { return traces_; }

  // Writes request `n` of the stream (RequestBytes(n) bytes) to `dst`, with every timestamp
  // (span start and end, event times) moved by `shift_nanos`: a load generator passes the time
  // elapsed since base_unix_nanos(), so that spans carry the time they are sent, as a live
  // service's do (their start times then advance, and the index keys a store writes arrive in
  // time order as they do in production, instead of the same two seconds replayed on every pass).
  void RenderTo(uint64_t n, char* dst, int64_t shift_nanos = 0) const;
  std::string Render(uint64_t n, int64_t shift_nanos = 0) const;
  // When the pool was generated: its traces start within the two seconds before.
  int64_t base_unix_nanos() const { return base_unix_nanos_; }

  // Pool entry `i` as generated, before any trace id rewrite.
  const std::string& entry(size_t i) const { return entries_[i].bytes; }

 private:
  struct PoolEntry {
    std::string bytes;                  // serialized ExportTraceServiceRequest
    std::vector<uint32_t> trace_id_at;  // offset of every span's 16-byte trace id in `bytes`
    std::vector<uint32_t> time_at;      // offset of every span and event timestamp (fixed64)
    // Offset of every order id's 16 hex digits, with its lane and step: step << 48 | lane.
    std::vector<std::pair<uint32_t, uint64_t>> order_id_at;
    int spans = 0;
  };
  RequestPool(const RequestShape& shape, uint64_t salt) : shape_(shape), salt_(salt) {}
  const PoolEntry& EntryFor(uint64_t n) const { return entries_[n % entries_.size()]; }

  RequestShape shape_;
  uint64_t salt_;
  std::vector<PoolEntry> entries_;
  int64_t error_traces_ = 0;
  int64_t traces_ = 0;
  int64_t order_lanes_ = 0;
  int64_t base_unix_nanos_ = 0;
};

}  // namespace tracekeep::bench

#endif  // TRACEKEEP_BENCH_OTLP_GEN_H_
