// An order's lists packed into one buffer while nothing uses them: the compact form in which the
// order tracker keeps orders that no span has named for orders.compact_after (an order waits
// hours or days between its states, and a healthy one waits out grace_period after its last).
// The states, invariant values, linked and kept trace ids, anomalies and held traces of an order
// are a dozen heap blocks with 16-byte trace ids repeated in each; packed, every trace id is
// written once and referred to by number, times are deltas and numbers varints, in one block.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_PACKED_ORDER_H_
#define TRACEKEEP_COLLECTOR_ORDERS_PACKED_ORDER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "collector/common/ids.h"
#include "collector/orders/order_record.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::orders {

// One held trace of an order: in the intake journal (the records its parts arrived in), or in
// `order_hold` under a key made of its order id, trace id and sequence (~80 bytes a hold,
// nothing on the heap for the usual one journal record).
struct HeldRef {
  // In the intake journal (not in order_hold): the records of its parts, and the arrival of the
  // first one (the journal keeps them while a hold needs them; see OrderTracker::LowWaterMark()).
  absl::InlinedVector<JournalRef, 1> refs;
  int64_t arrival = 0;
  uint64_t seq = 0;
  uint32_t spans = 0;
  uint32_t bytes = 0;
  TraceIdBytes trace_id;
  bool in_journal = false;

  // Its key in order_hold (defined with the table's layout, in order_tracker.cc).
  std::string Key(absl::string_view order_id) const;
};

// A packed order: one heap block, or none.
using PackedOrder = std::unique_ptr<char[]>;

// Moves the lists of `record` (states, invariants, trace_ids, kept_trace_ids, anomalies) and
// `holds` into one buffer, leaving them empty with no capacity. The other fields of `record`
// stay where they are.
PackedOrder PackOrder(OrderRecord* record, std::vector<HeldRef>* holds);

// Puts back what PackOrder took, each list at exactly its size. Holds already in `holds` (taken
// while packed) are kept, after the packed ones. The buffer is left as it is.
void UnpackOrder(const PackedOrder& packed, OrderRecord* record, std::vector<HeldRef>* holds);

// The number of held traces in a packed order (without unpacking it).
size_t PackedHoldCount(const PackedOrder& packed);

// The size of the packed buffer in bytes.
size_t PackedSize(const PackedOrder& packed);

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_PACKED_ORDER_H_
