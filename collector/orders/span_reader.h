// Reads what the order tracker needs from a span: the order it handles, the states it records
// (from the status attribute or from status events), invariant values and errors. Spans are kept
// serialized; only spans whose bytes mention the order id attribute are decoded.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_SPAN_READER_H_
#define TRACEKEEP_COLLECTOR_ORDERS_SPAN_READER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "collector/orders/order_config.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::orders {

// What one span says about one order.
struct OrderFacts {
  struct State {
    std::string state;
    int64_t time_unix_nanos = 0;
  };
  std::string order_id;
  std::vector<State> states;
  std::vector<std::pair<std::string, std::string>> invariants;  // key, value as text
  bool error = false;  // span status ERROR or an "exception" event
  std::string error_detail;
  // Spans these facts stand for: the span read, and the spans after it that only named the
  // same order (SpanReader::Read counts them here instead of appending an entry each).
  uint32_t spans = 1;
  uint64_t key_hash = 0;  // KeyValueHash(order_id)
};

// How the receivers should split requests for this reader: the order id attribute located in
// each span that says nothing else about an order (no status attribute, no invariant, no
// "exception" or status event). With these options a span with SpanRecord::key_size != 0 and
// without an ERROR status is not read.
WireSplitOptions SplitOptionsFor(const OrdersConfig& config);

class SpanReader {
 public:
  explicit SpanReader(const OrdersConfig& config);
  // Appends the facts of `span` (one entry per order it names) to `out`. Returns false when the
  // span names no order. Undecodable span bytes name no order. A span that only names the order
  // of out->back() (nothing else about it) adds to that entry's `spans` instead.
  bool Read(const SpanRecord& span, std::vector<OrderFacts>* out) const;

 private:
  // False when `span` cannot have an attribute keyed by the order id attribute: a fast rejection
  // of spans that name no order.
  bool MayHaveKey(absl::string_view span) const;

  const OrdersConfig& config_;
  const uint64_t id_key_bit_;  // AttributeKeyBit of the order id attribute
  // Bit n set: some attribute the reader looks for has a key of n bytes (n < 64).
  uint64_t key_lengths_ = 0;
};

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_SPAN_READER_H_
