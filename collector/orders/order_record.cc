#include "collector/orders/order_record.h"

#include "collector/pipeline/otlp_wire.h"

namespace tracekeep::orders {

NameTable::NameTable(const std::vector<std::string>& first) {
  for (const std::string& name : first) Intern(name);
}

NameId NameTable::Intern(absl::string_view name) {
  auto it = index_.find(name);
  if (it != index_.end()) return it->second;
  if (names_.size() >= kMaxNames) {
    if (overflow_ == kNoName) {
      names_.emplace_back(kOverflowName);
      overflow_ = static_cast<NameId>(names_.size() - 1);
    }
    return overflow_;
  }
  names_.emplace_back(name);
  const NameId id = static_cast<NameId>(names_.size() - 1);
  index_.emplace(names_.back(), id);
  return id;
}

NameId NameTable::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? kNoName : it->second;
}

const std::string& NameTable::Name(NameId id) const {
  static const std::string* const kEmpty = new std::string();
  return id < names_.size() ? names_[id] : *kEmpty;
}

void OrderRecord::ToProto(const NameTable& names, v1::Order* out) const {
  out->Clear();
  out->set_order_id(order_id);
  out->mutable_states()->Reserve(static_cast<int>(states.size()));
  for (const State& s : states) {
    v1::StateEvent* e = out->add_states();
    e->set_state(names.Name(s.state));
    e->set_time_unix_nanos(s.time_unix_nanos);
    e->set_service(names.Name(s.service));
    e->set_trace_id(s.trace_id.view().data(), s.trace_id.size);
    e->set_span_id(s.span_id.view().data(), s.span_id.size);
    e->set_arrival_unix_nanos(s.arrival_unix_nanos);
  }
  for (const Invariant& i : invariants) {
    v1::InvariantValue* v = out->add_invariants();
    v->set_key(names.Name(i.key));
    v->set_value(i.value);
    v->set_service(names.Name(i.service));
    v->set_time_unix_nanos(i.time_unix_nanos);
    v->set_trace_id(i.trace_id.view().data(), i.trace_id.size);
  }
  out->mutable_trace_ids()->Reserve(static_cast<int>(trace_ids.size()));
  for (const TraceIdBytes& t : trace_ids) out->add_trace_ids(t.view().data(), t.size);
  for (const Anomaly& a : anomalies) {
    v1::Anomaly* x = out->add_anomalies();
    x->set_type(a.type);
    x->set_detail(a.detail);
    x->set_detected_unix_nanos(a.detected_unix_nanos);
  }
  out->set_first_arrival_unix_nanos(first_arrival_unix_nanos);
  out->set_last_arrival_unix_nanos(last_arrival_unix_nanos);
  out->set_resolution(resolution);
  out->set_resolved_unix_nanos(resolved_unix_nanos);
  for (const TraceIdBytes& t : kept_trace_ids) out->add_kept_trace_ids(t.view().data(), t.size);
  out->set_force_keep(force_keep);
  if (current_state != kNoName) out->set_current_state(names.Name(current_state));
  out->set_current_state_unix_nanos(current_state_unix_nanos);
  out->set_deadline_unix_nanos(deadline_unix_nanos);
}

namespace {

// proto3 encoding, as protobuf's serializer writes it: fields in number order, scalars and
// singular strings only when not zero or empty, every element of a repeated field.
constexpr uint32_t kLengthDelimited = 2;

void PutTag(uint32_t number, uint32_t wire_type, std::string* out) {
  wire::PutVarint((uint64_t{number} << 3) | wire_type, out);
}
void PutBytes(uint32_t number, absl::string_view value, std::string* out) {
  PutTag(number, kLengthDelimited, out);
  wire::PutVarint(value.size(), out);
  out->append(value.data(), value.size());
}
void PutString(uint32_t number, absl::string_view value, std::string* out) {
  if (!value.empty()) PutBytes(number, value, out);
}
void PutInt(uint32_t number, int64_t value, std::string* out) {
  if (value == 0) return;
  PutTag(number, 0, out);
  wire::PutVarint(static_cast<uint64_t>(value), out);
}
// A sub-message: `body` is encoded into `scratch`, then appended with its length.
template <typename Body>
void PutMessage(uint32_t number, std::string* scratch, std::string* out, Body body) {
  scratch->clear();
  body(scratch);
  PutBytes(number, *scratch, out);
}

}  // namespace

void OrderRecord::AppendSerialized(const NameTable& names, std::string* out) const {
  std::string scratch;
  scratch.reserve(128);
  out->reserve(out->size() + 96 + order_id.size() + 80 * (states.size() + invariants.size()) +
               18 * (trace_ids.size() + kept_trace_ids.size()) + 96 * anomalies.size());
  PutString(1, order_id, out);
  for (const State& s : states) {
    PutMessage(2, &scratch, out, [&](std::string* m) {
      PutString(1, names.Name(s.state), m);
      PutInt(2, s.time_unix_nanos, m);
      PutString(3, names.Name(s.service), m);
      PutString(4, s.trace_id.view(), m);
      PutString(5, s.span_id.view(), m);
      PutInt(6, s.arrival_unix_nanos, m);
    });
  }
  for (const Invariant& i : invariants) {
    PutMessage(3, &scratch, out, [&](std::string* m) {
      PutString(1, names.Name(i.key), m);
      PutString(2, i.value, m);
      PutString(3, names.Name(i.service), m);
      PutInt(4, i.time_unix_nanos, m);
      PutString(5, i.trace_id.view(), m);
    });
  }
  for (const TraceIdBytes& t : trace_ids) PutBytes(4, t.view(), out);
  for (const Anomaly& a : anomalies) {
    PutMessage(5, &scratch, out, [&](std::string* m) {
      PutString(1, a.type, m);
      PutString(2, a.detail, m);
      PutInt(3, a.detected_unix_nanos, m);
    });
  }
  PutInt(6, first_arrival_unix_nanos, out);
  PutInt(7, last_arrival_unix_nanos, out);
  PutInt(8, resolution, out);
  PutInt(9, resolved_unix_nanos, out);
  for (const TraceIdBytes& t : kept_trace_ids) PutBytes(10, t.view(), out);
  PutInt(11, force_keep ? 1 : 0, out);
  if (current_state != kNoName) PutString(12, names.Name(current_state), out);
  PutInt(13, current_state_unix_nanos, out);
  PutInt(14, deadline_unix_nanos, out);
}

OrderRecord OrderRecord::FromProto(const v1::Order& o, NameTable* names) {
  OrderRecord r;
  r.order_id = o.order_id();
  r.states.reserve(o.states_size());
  for (const v1::StateEvent& e : o.states()) {
    State& s = r.states.emplace_back();
    s.time_unix_nanos = e.time_unix_nanos();
    s.arrival_unix_nanos = e.arrival_unix_nanos();
    s.trace_id = TraceIdBytes::Of(e.trace_id());
    s.span_id = SpanIdBytes::Of(e.span_id());
    s.state = names->Intern(e.state());
    s.service = names->Intern(e.service());
  }
  r.invariants.reserve(o.invariants_size());
  for (const v1::InvariantValue& v : o.invariants()) {
    Invariant& i = r.invariants.emplace_back();
    i.value = v.value();
    i.time_unix_nanos = v.time_unix_nanos();
    i.trace_id = TraceIdBytes::Of(v.trace_id());
    i.key = names->Intern(v.key());
    i.service = names->Intern(v.service());
  }
  r.trace_ids.reserve(o.trace_ids_size());
  for (const std::string& t : o.trace_ids()) r.trace_ids.push_back(TraceIdBytes::Of(t));
  for (const v1::Anomaly& a : o.anomalies()) {
    r.anomalies.push_back(Anomaly{a.type(), a.detail(), a.detected_unix_nanos()});
  }
  r.first_arrival_unix_nanos = o.first_arrival_unix_nanos();
  r.last_arrival_unix_nanos = o.last_arrival_unix_nanos();
  r.resolution = o.resolution();
  r.resolved_unix_nanos = o.resolved_unix_nanos();
  for (const std::string& t : o.kept_trace_ids()) r.kept_trace_ids.push_back(TraceIdBytes::Of(t));
  r.force_keep = o.force_keep();
  r.current_state = o.current_state().empty() ? kNoName : names->Intern(o.current_state());
  r.current_state_unix_nanos = o.current_state_unix_nanos();
  r.deadline_unix_nanos = o.deadline_unix_nanos();
  return r;
}

}  // namespace tracekeep::orders
