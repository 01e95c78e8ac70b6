#include "collector/orders/packed_order.h"

#include <cstring>

#include "collector/pipeline/otlp_wire.h"

namespace tracekeep::orders {
namespace {

// The layout, all numbers varints unless said otherwise:
//   hold count, size of the rest
//   trace ids:      count, then each id (its size, then its bytes)
//   kept trace ids: count, then each id
//   states:         count, then each: time, arrival (zigzag deltas from the previous state's),
//                   trace (see below), span id, state, service
//   invariants:     count, then each: value (length, bytes), time (zigzag delta), trace, key,
//                   service
//   anomalies:      count, then each: type, detail (length, bytes), detection time (zigzag)
//   holds:          each: trace, seq and arrival (zigzag deltas from the previous hold's),
//                   spans, bytes, in_journal,
//                   journal refs: count, then each: segment, offset, size, origins_end,
//                   trace_offset, trace_size
// A trace is 1 + its index in the trace ids, or 0 followed by the id itself.
// The buffer lives in memory only, so its layout may change with any build.

using wire::PutVarint;

uint64_t ZigZag(int64_t now, int64_t prev) {
  const auto d = static_cast<int64_t>(static_cast<uint64_t>(now) - static_cast<uint64_t>(prev));
  return (static_cast<uint64_t>(d) << 1) ^ static_cast<uint64_t>(d >> 63);
}

int64_t UnZigZag(uint64_t z, int64_t prev) {
  const uint64_t d = (z >> 1) ^ (~(z & 1) + 1);
  return static_cast<int64_t>(static_cast<uint64_t>(prev) + d);
}

template <size_t N>
void PutId(const InlineId<N>& id, std::string* out) {
  PutVarint(id.size, out);
  out->append(id.bytes.data(), id.size);
}

void PutString(absl::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s.data(), s.size());
}

class Packer {
 public:
  explicit Packer(const std::vector<TraceIdBytes>& trace_ids) : trace_ids_(trace_ids) {}

  void PutTrace(const TraceIdBytes& id, std::string* out) {
    // The id linked last is the most likely: a state, a value and a hold of the same trace come
    // together.
    for (size_t i = trace_ids_.size(); i > 0; --i) {
      if (trace_ids_[i - 1] == id) {
        PutVarint(i, out);
        return;
      }
    }
    PutVarint(0, out);
    PutId(id, out);
  }

 private:
  const std::vector<TraceIdBytes>& trace_ids_;
};

// Reads what Packer wrote. The buffer is this process's own: a malformed one is a bug, not
// input, so reads past its end stop at the end and yield zeros instead of being reported.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  size_t left() const { return in_.size(); }

  uint64_t Varint() {
    uint64_t v = 0;
    if (!wire::ReadVarint(&in_, &v)) in_ = {};
    return v;
  }
  absl::string_view Bytes(size_t n) {
    n = std::min(n, in_.size());
    absl::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  template <size_t N>
  InlineId<N> Id() {
    const size_t size = static_cast<size_t>(Varint());
    return InlineId<N>::Of(Bytes(std::min(size, N)));
  }
  std::string String() { return std::string(Bytes(static_cast<size_t>(Varint()))); }
  TraceIdBytes Trace(const std::vector<TraceIdBytes>& trace_ids) {
    const uint64_t i = Varint();
    if (i == 0) return Id<kTraceIdSize>();
    return i <= trace_ids.size() ? trace_ids[i - 1] : TraceIdBytes();
  }

 private:
  absl::string_view in_;
};

}  // namespace

PackedOrder PackOrder(OrderRecord* record, std::vector<HeldRef>* holds) {
  Packer packer(record->trace_ids);
  // Written here first (its capacity stays with the thread: no allocation per order), then
  // copied once into a block of its exact size.
  thread_local std::string body;
  body.clear();
  PutVarint(record->trace_ids.size(), &body);
  for (const TraceIdBytes& id : record->trace_ids) PutId(id, &body);
  PutVarint(record->kept_trace_ids.size(), &body);
  for (const TraceIdBytes& id : record->kept_trace_ids) PutId(id, &body);
  PutVarint(record->states.size(), &body);
  int64_t time = 0;
  int64_t arrival = 0;
  for (const OrderRecord::State& s : record->states) {
    PutVarint(ZigZag(s.time_unix_nanos, time), &body);
    PutVarint(ZigZag(s.arrival_unix_nanos, arrival), &body);
    time = s.time_unix_nanos;
    arrival = s.arrival_unix_nanos;
    packer.PutTrace(s.trace_id, &body);
    PutId(s.span_id, &body);
    PutVarint(s.state, &body);
    PutVarint(s.service, &body);
  }
  PutVarint(record->invariants.size(), &body);
  for (const OrderRecord::Invariant& v : record->invariants) {
    PutString(v.value, &body);
    PutVarint(ZigZag(v.time_unix_nanos, time), &body);
    time = v.time_unix_nanos;
    packer.PutTrace(v.trace_id, &body);
    PutVarint(v.key, &body);
    PutVarint(v.service, &body);
  }
  PutVarint(record->anomalies.size(), &body);
  for (const OrderRecord::Anomaly& a : record->anomalies) {
    PutString(a.type, &body);
    PutString(a.detail, &body);
    PutVarint(ZigZag(a.detected_unix_nanos, 0), &body);
  }
  arrival = 0;
  int64_t seq = 0;
  for (const HeldRef& h : *holds) {
    packer.PutTrace(h.trace_id, &body);
    PutVarint(ZigZag(static_cast<int64_t>(h.seq), seq), &body);
    PutVarint(ZigZag(h.arrival, arrival), &body);
    seq = static_cast<int64_t>(h.seq);
    arrival = h.arrival;
    PutVarint(h.spans, &body);
    PutVarint(h.bytes, &body);
    body.push_back(h.in_journal ? 1 : 0);
    PutVarint(h.refs.size(), &body);
    for (const JournalRef& r : h.refs) {
      PutVarint(r.segment, &body);
      PutVarint(r.offset, &body);
      PutVarint(r.size, &body);
      PutVarint(r.origins_end, &body);
      PutVarint(r.trace_offset, &body);
      PutVarint(r.trace_size, &body);
    }
  }
  std::string head;  // two short varints: within the small-string buffer
  PutVarint(holds->size(), &head);
  PutVarint(body.size(), &head);
  PackedOrder packed(new char[head.size() + body.size()]);
  std::memcpy(packed.get(), head.data(), head.size());
  std::memcpy(packed.get() + head.size(), body.data(), body.size());

  std::vector<OrderRecord::State>().swap(record->states);
  std::vector<OrderRecord::Invariant>().swap(record->invariants);
  std::vector<TraceIdBytes>().swap(record->trace_ids);
  std::vector<TraceIdBytes>().swap(record->kept_trace_ids);
  std::vector<OrderRecord::Anomaly>().swap(record->anomalies);
  std::vector<HeldRef>().swap(*holds);
  return packed;
}

size_t PackedSize(const PackedOrder& packed) {
  if (packed == nullptr) return 0;
  // The hold count and the size of the rest come first, each at most 10 bytes (and the buffer
  // is never shorter than what they say).
  constexpr size_t kHeader = 20;
  Reader r(absl::string_view(packed.get(), kHeader));
  r.Varint();
  const auto rest = static_cast<size_t>(r.Varint());
  return kHeader - r.left() + rest;
}

size_t PackedHoldCount(const PackedOrder& packed) {
  if (packed == nullptr) return 0;
  Reader r(absl::string_view(packed.get(), 10));
  return static_cast<size_t>(r.Varint());
}

void UnpackOrder(const PackedOrder& packed, OrderRecord* record, std::vector<HeldRef>* holds) {
  if (packed == nullptr) return;
  Reader r(absl::string_view(packed.get(), PackedSize(packed)));
  const auto hold_count = static_cast<size_t>(r.Varint());
  r.Varint();  // the size of the rest

  std::vector<TraceIdBytes>& trace_ids = record->trace_ids;
  size_t n = static_cast<size_t>(r.Varint());
  trace_ids.clear();
  trace_ids.reserve(n);
  for (; n > 0; --n) trace_ids.push_back(r.Id<kTraceIdSize>());
  std::vector<TraceIdBytes>& kept = record->kept_trace_ids;
  n = static_cast<size_t>(r.Varint());
  kept.clear();
  kept.reserve(n);
  for (; n > 0; --n) kept.push_back(r.Id<kTraceIdSize>());

  n = static_cast<size_t>(r.Varint());
  record->states.clear();
  record->states.reserve(n);
  int64_t time = 0;
  int64_t arrival = 0;
  for (; n > 0; --n) {
    OrderRecord::State& s = record->states.emplace_back();
    s.time_unix_nanos = time = UnZigZag(r.Varint(), time);
    s.arrival_unix_nanos = arrival = UnZigZag(r.Varint(), arrival);
    s.trace_id = r.Trace(trace_ids);
    s.span_id = r.Id<kSpanIdSize>();
    s.state = static_cast<NameId>(r.Varint());
    s.service = static_cast<NameId>(r.Varint());
  }
  n = static_cast<size_t>(r.Varint());
  record->invariants.clear();
  record->invariants.reserve(n);
  for (; n > 0; --n) {
    OrderRecord::Invariant& v = record->invariants.emplace_back();
    v.value = r.String();
    v.time_unix_nanos = time = UnZigZag(r.Varint(), time);
    v.trace_id = r.Trace(trace_ids);
    v.key = static_cast<NameId>(r.Varint());
    v.service = static_cast<NameId>(r.Varint());
  }
  n = static_cast<size_t>(r.Varint());
  record->anomalies.clear();
  record->anomalies.reserve(n);
  for (; n > 0; --n) {
    OrderRecord::Anomaly& a = record->anomalies.emplace_back();
    a.type = r.String();
    a.detail = r.String();
    a.detected_unix_nanos = UnZigZag(r.Varint(), 0);
  }
  // Holds taken while packed are in `holds` already: they come after the packed ones.
  std::vector<HeldRef> later = std::move(*holds);
  holds->clear();
  holds->reserve(hold_count + later.size());
  arrival = 0;
  int64_t seq = 0;
  for (size_t i = 0; i < hold_count; ++i) {
    HeldRef& h = holds->emplace_back();
    h.trace_id = r.Trace(trace_ids);
    seq = UnZigZag(r.Varint(), seq);
    h.seq = static_cast<uint64_t>(seq);
    h.arrival = arrival = UnZigZag(r.Varint(), arrival);
    h.spans = static_cast<uint32_t>(r.Varint());
    h.bytes = static_cast<uint32_t>(r.Varint());
    h.in_journal = r.Bytes(1) == absl::string_view("\1", 1);
    for (size_t refs = static_cast<size_t>(r.Varint()); refs > 0; --refs) {
      JournalRef& j = h.refs.emplace_back();
      j.segment = r.Varint();
      j.offset = r.Varint();
      j.size = static_cast<uint32_t>(r.Varint());
      j.origins_end = static_cast<uint32_t>(r.Varint());
      j.trace_offset = static_cast<uint32_t>(r.Varint());
      j.trace_size = static_cast<uint32_t>(r.Varint());
    }
  }
  for (HeldRef& h : later) holds->push_back(std::move(h));
}

}  // namespace tracekeep::orders
