#include "collector/orders/order_tracker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"

namespace tracekeep::orders {
namespace {

constexpr size_t kNumAnomalyTypes = sizeof(kAnomalyTypes) / sizeof(kAnomalyTypes[0]);

std::string HoldPrefix(const std::string& order_id) { return order_id + std::string(1, '\0'); }

std::string HoldKey(const std::string& order_id, const std::string& trace_id, uint64_t seq) {
  std::string key = HoldPrefix(order_id);
  key.append(trace_id);
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return key;
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}

// FNV-1a: stable across processes and restarts, unlike absl::Hash.
uint64_t StableHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

int64_t LastAnomalyNanos(const v1::Order& o) {
  int64_t t = 0;
  for (const v1::Anomaly& a : o.anomalies()) t = std::max(t, a.detected_unix_nanos());
  return t;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OrderTracker>> OrderTracker::Create(
    const OrderTrackerOptions& options) {
  std::vector<std::string> problems = ValidateOrdersConfig(options.config);
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  if (options.consumer == nullptr || options.clock == nullptr || options.orders_table == nullptr ||
      options.hold_table == nullptr) {
    return absl::InvalidArgumentError("order tracker: consumer, clock and tables must be set");
  }
  std::unique_ptr<OrderTracker> t(new OrderTracker(options));
  TK_RETURN_IF_ERROR(t->Load());
  return t;
}

OrderTracker::OrderTracker(const OrderTrackerOptions& options)
    : lifecycle_(options.config), reader_(lifecycle_.config()), options_(options) {
  const size_t n = lifecycle_.config().states.size();
  stats_.in_state.reset(new std::atomic<uint64_t>[n]);
  stats_.overdue.reset(new std::atomic<uint64_t>[n]);
  for (size_t i = 0; i < n; ++i) {
    stats_.in_state[i] = 0;
    stats_.overdue[i] = 0;
  }
}

OrderTracker::~OrderTracker() { Shutdown(absl::InfiniteFuture()); }

absl::Status OrderTracker::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = options_.clock->Now();
  absl::Status parse_error;
  TK_RETURN_IF_ERROR(
      options_.orders_table->Scan("", [&](absl::string_view key, absl::string_view value) {
        v1::Order o;
        if (!o.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse_error =
              absl::DataLossError(absl::StrCat("orders: undecodable record of \"", key, "\""));
          return false;
        }
        const bool active = o.resolution() == v1::Order::ACTIVE;
        const absl::Time retain =
            absl::FromUnixNanos(o.resolved_unix_nanos()) + lifecycle_.config().resolved_retention;
        if (!active && retain <= now) return true;
        Entry& e = orders_[o.order_id()];
        e.record = std::move(o);
        if (!active) e.retain_until = retain;
        if (active) stats_.orders_tracked.fetch_add(1, std::memory_order_relaxed);
        return true;
      }));
  TK_RETURN_IF_ERROR(parse_error);
  TK_RETURN_IF_ERROR(
      options_.hold_table->Scan("", [&](absl::string_view key, absl::string_view value) {
        const size_t nul = key.find('\0');
        if (nul == absl::string_view::npos) return true;
        Entry* e = FindOrLoad(std::string(key.substr(0, nul)), /*create=*/false);
        v1::HeldTrace held;
        if (e == nullptr || !held.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return true;  // released below by the hold bounds (or orphaned bytes: count only)
        }
        e->held_traces++;
        e->held_bytes += value.size();
        e->oldest_hold = std::min(e->oldest_hold, absl::FromUnixNanos(held.held_unix_nanos()));
        total_held_traces_++;
        total_held_bytes_ += value.size();
        hold_sequence_ = std::max<uint64_t>(hold_sequence_, absl::ToUnixNanos(now));
        return true;
      }));
  hold_sequence_ = std::max<uint64_t>(hold_sequence_, absl::ToUnixNanos(now));
  stats_.traces_held = total_held_traces_;
  stats_.held_bytes = total_held_bytes_;
  TK_LOG(Info) << "order tracker: " << orders_.size() << " orders and " << total_held_traces_
               << " held traces loaded";
  return absl::OkStatus();
}

OrderTracker::Entry* OrderTracker::FindOrLoad(const std::string& order_id, bool create) {
  auto it = orders_.find(order_id);
  if (it != orders_.end()) return &it->second;
  absl::StatusOr<std::optional<std::string>> stored = options_.orders_table->Get(order_id);
  if (!stored.ok()) stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
  if (stored.ok() && stored->has_value()) {
    Entry& e = orders_[order_id];
    if (e.record.ParseFromString(**stored)) {
      if (e.record.resolution() == v1::Order::ACTIVE) {
        stats_.orders_tracked.fetch_add(1, std::memory_order_relaxed);
      } else {
        e.retain_until = options_.clock->Now() + lifecycle_.config().resolved_retention;
      }
      return &e;
    }
    orders_.erase(order_id);
  }
  if (!create) return nullptr;
  Entry& e = orders_[order_id];
  e.record.set_order_id(order_id);
  e.dirty = true;
  stats_.orders_started.fetch_add(1, std::memory_order_relaxed);
  stats_.orders_tracked.fetch_add(1, std::memory_order_relaxed);
  return &e;
}

void OrderTracker::OnBuffered(const TraceSpans& spans) {
  std::vector<OrderFacts> facts;
  std::vector<size_t> span_of_fact;
  for (size_t i = 0; i < spans.spans.size(); ++i) {
    const size_t before = facts.size();
    if (!reader_.Read(spans.spans[i], &facts)) continue;
    stats_.spans_with_order.fetch_add(1, std::memory_order_relaxed);
    span_of_fact.resize(facts.size(), i);
    (void)before;
  }
  if (facts.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = options_.clock->Now();
    for (size_t i = 0; i < facts.size(); ++i) {
      Entry* e = FindOrLoad(facts[i].order_id, /*create=*/true);
      if (static_cast<size_t>(e->record.trace_ids_size()) >= options_.config.max_traces_per_order &&
          !Contains(e->record.trace_ids(), spans.trace_id)) {
        if (stats_.spans_over_trace_limit.fetch_add(1, std::memory_order_relaxed) % 10000 == 0) {
          TK_LOG(Warning) << "order " << facts[i].order_id << " links "
                          << e->record.trace_ids_size()
                          << " traces (orders.max_traces_per_order): spans of further traces "
                             "naming it are not tracked";
        }
        continue;
      }
      Ingest(e, facts[i], spans, spans.spans[span_of_fact[i]], now);
      std::vector<std::string>& linked = trace_orders_[spans.trace_id];
      if (std::find(linked.begin(), linked.end(), facts[i].order_id) == linked.end()) {
        linked.push_back(facts[i].order_id);
      }
    }
    for (const OrderFacts& f : facts) {
      auto it = orders_.find(f.order_id);
      if (it != orders_.end()) Judge(&it->second, now);
    }
  }
  Deliver();
}

void OrderTracker::Ingest(Entry* e, const OrderFacts& facts, const TraceSpans& spans,
                          const SpanRecord& span, absl::Time now) {
  v1::Order& o = e->record;
  e->dirty = true;
  const int64_t now_nanos = absl::ToUnixNanos(now);
  if (o.first_arrival_unix_nanos() == 0) o.set_first_arrival_unix_nanos(now_nanos);
  o.set_last_arrival_unix_nanos(now_nanos);
  if (!Contains(o.trace_ids(), spans.trace_id)) o.add_trace_ids(spans.trace_id);
  const std::string& service = span.origin != nullptr ? span.origin->service_name : "";
  for (const OrderFacts::State& s : facts.states) {
    bool seen = false;  // the same span delivered twice (client retry) is one record
    const v1::StateEvent* prev = nullptr;
    for (const v1::StateEvent& x : o.states()) {
      if (x.state() == s.state && x.trace_id() == spans.trace_id && x.span_id() == span.span_id) {
        seen = true;
      }
      if (x.time_unix_nanos() <= s.time_unix_nanos &&
          (prev == nullptr || x.time_unix_nanos() >= prev->time_unix_nanos())) {
        prev = &x;
      }
    }
    if (seen) continue;
    if (prev != nullptr && options_.on_transition && prev->state() != s.state &&
        lifecycle_.Allowed(prev->state(), s.state)) {
      options_.on_transition(
          prev->state(), s.state,
          static_cast<double>(s.time_unix_nanos - prev->time_unix_nanos()) / 1e9);
    }
    v1::StateEvent* ev = o.add_states();
    ev->set_state(s.state);
    ev->set_time_unix_nanos(s.time_unix_nanos);
    ev->set_service(service);
    ev->set_trace_id(spans.trace_id);
    ev->set_span_id(span.span_id);
    ev->set_arrival_unix_nanos(now_nanos);
  }
  for (const auto& [key, value] : facts.invariants) {
    const v1::InvariantValue* first = nullptr;
    bool known_value = false;
    for (const v1::InvariantValue& v : o.invariants()) {
      if (v.key() != key) continue;
      if (first == nullptr) first = &v;
      if (v.value() == value) known_value = true;
    }
    if (known_value) continue;
    std::string detail;
    if (first != nullptr) {
      detail = absl::StrCat(key, " was \"", first->value(), "\" (", first->service(), "), now \"",
                            value, "\" (", service, ")");
    }
    v1::InvariantValue* v = o.add_invariants();
    v->set_key(key);
    v->set_value(value);
    v->set_service(service);
    v->set_time_unix_nanos(span.start_unix_nanos);
    v->set_trace_id(spans.trace_id);
    if (!detail.empty() && Lifecycle::AddAnomaly(&o, kContentChanged, detail, now)) {
      stats_.anomalies[4].fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (facts.error && Lifecycle::AddAnomaly(&o, kError,
                                           absl::StrCat(facts.error_detail, " (", service,
                                                        ", trace ", ToHex(spans.trace_id), ")"),
                                           now)) {
    stats_.anomalies[5].fetch_add(1, std::memory_order_relaxed);
  }
}

void OrderTracker::Judge(Entry* e, absl::Time now) {
  v1::Order& o = e->record;
  const int before = o.anomalies_size();
  lifecycle_.Evaluate(&o, now);  // also for anomalous orders: their current state moves on
  for (int i = before; i < o.anomalies_size(); ++i) {
    for (size_t t = 0; t < kNumAnomalyTypes; ++t) {
      if (o.anomalies(i).type() == kAnomalyTypes[t]) {
        stats_.anomalies[t].fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  if (o.anomalies_size() > 0) {
    if (o.resolution() != v1::Order::ANOMALOUS) Resolve(e, v1::Order::ANOMALOUS, now);
    return;
  }
  if (o.resolution() != v1::Order::ACTIVE) return;
  const bool settled =
      now >= absl::FromUnixNanos(o.last_arrival_unix_nanos()) + lifecycle_.config().grace_period;
  if (settled && lifecycle_.Terminal(o.current_state())) {
    const bool keep = o.force_keep() || BaselineKeeps(o.order_id());
    Resolve(e, keep ? v1::Order::HEALTHY_KEPT : v1::Order::HEALTHY_RELEASED, now);
  } else if (now >=
             absl::FromUnixNanos(o.last_arrival_unix_nanos()) + lifecycle_.config().max_order_age) {
    stats_.orders_expired.fetch_add(1, std::memory_order_relaxed);
    Resolve(e, v1::Order::EXPIRED, now);
  }
}

void OrderTracker::Resolve(Entry* e, v1::Order::Resolution resolution, absl::Time now) {
  v1::Order& o = e->record;
  const bool was_active = o.resolution() == v1::Order::ACTIVE;
  o.set_resolution(resolution);
  o.set_resolved_unix_nanos(absl::ToUnixNanos(now));
  e->dirty = true;
  e->retain_until = now + lifecycle_.config().resolved_retention;
  if (was_active) {
    stats_.orders_tracked.fetch_sub(1, std::memory_order_relaxed);
    stats_.orders_resolved.fetch_add(1, std::memory_order_relaxed);
  }
  const bool keep =
      resolution == v1::Order::ANOMALOUS || resolution == v1::Order::HEALTHY_KEPT || o.force_keep();
  if (e->held_traces > 0) ReleaseHeld(e, keep);
}

bool OrderTracker::BaselineKeeps(const std::string& order_id) const {
  return static_cast<double>(StableHash(order_id) % 10000) <
         lifecycle_.config().baseline_percentage * 100;
}

std::string OrderTracker::Reason(const Entry& e) const {
  std::vector<std::string> types;
  for (const v1::Anomaly& a : e.record.anomalies()) types.push_back(a.type());
  return absl::StrJoin(types, ",");
}

void OrderTracker::Annotate(const Entry& e, std::vector<SpanRecord>* spans) const {
  const std::string reason = Reason(e);
  if (reason.empty()) return;
  for (SpanRecord& s : *spans) AppendStringAttribute(kAnomalyAttribute, reason, &s.span);
}

void OrderTracker::ReleaseHeld(Entry* e, bool keep) {
  v1::Order& o = e->record;
  std::vector<storage::KvWrite> deletes;
  size_t bytes = 0;
  absl::Status s = options_.hold_table->Scan(
      HoldPrefix(o.order_id()), [&](absl::string_view key, absl::string_view value) {
        deletes.push_back({std::string(key), "", true});
        bytes += value.size();
        v1::HeldTrace held;
        if (!held.ParseFromArray(value.data(), static_cast<int>(value.size()))) return true;
        if (!keep) {
          stats_.traces_released_unkept.fetch_add(1, std::memory_order_relaxed);
          stats_.spans_released_unkept.fetch_add(held.spans_size(), std::memory_order_relaxed);
          return true;
        }
        KeptTrace& k = to_deliver_.emplace_back();
        k.trace_id = held.trace_id();
        k.policy = o.resolution() == v1::Order::ANOMALOUS ? "order_anomaly" : "order_kept";
        for (v1::HeldSpan& hs : *held.mutable_spans()) {
          auto origin = std::make_shared<SpanOrigin>();
          origin->resource = std::move(*hs.mutable_resource());
          origin->resource_schema_url = std::move(*hs.mutable_resource_schema_url());
          origin->scope = std::move(*hs.mutable_scope());
          origin->scope_schema_url = std::move(*hs.mutable_scope_schema_url());
          origin->service_name = std::move(*hs.mutable_service_name());
          SpanRecord& r = k.spans.emplace_back();
          r.origin = std::move(origin);
          r.span = std::move(*hs.mutable_span());
          r.span_id = std::move(*hs.mutable_span_id());
          r.start_unix_nanos = hs.start_unix_nanos();
          r.end_unix_nanos = hs.end_unix_nanos();
          r.is_error = hs.is_error();
          r.is_root = hs.is_root();
        }
        Annotate(*e, &k.spans);
        if (!Contains(o.kept_trace_ids(), k.trace_id)) o.add_kept_trace_ids(k.trace_id);
        stats_.traces_kept.fetch_add(1, std::memory_order_relaxed);
        return true;
      });
  if (s.ok()) s = options_.hold_table->Write(deletes);
  if (!s.ok()) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "order " << o.order_id() << ": releasing held traces: " << s;
  }
  total_held_traces_ -= std::min(total_held_traces_, e->held_traces);
  total_held_bytes_ -= std::min(total_held_bytes_, e->held_bytes);
  e->held_traces = 0;
  e->held_bytes = 0;
  e->oldest_hold = absl::InfiniteFuture();
  e->dirty = true;
  stats_.traces_held = total_held_traces_;
  stats_.held_bytes = total_held_bytes_;
}

sampling::HookVerdict OrderTracker::OnDecided(sampling::PendingTrace& trace, bool sampled) {
  sampling::HookVerdict verdict;
  std::lock_guard<std::mutex> lock(mu_);
  auto link = trace_orders_.find(trace.trace_id);
  if (link == trace_orders_.end()) return verdict;
  std::vector<std::string> order_ids = std::move(link->second);
  trace_orders_.erase(link);
  Entry* active = nullptr;
  for (const std::string& id : order_ids) {
    auto it = orders_.find(id);
    if (it == orders_.end()) continue;
    Entry& e = it->second;
    const auto r = e.record.resolution();
    if (r == v1::Order::ANOMALOUS || r == v1::Order::HEALTHY_KEPT || e.record.force_keep()) {
      Annotate(e, &trace.spans);
      if (!Contains(e.record.kept_trace_ids(), trace.trace_id)) {
        e.record.add_kept_trace_ids(trace.trace_id);
      }
      e.dirty = true;
      stats_.traces_kept.fetch_add(1, std::memory_order_relaxed);
      verdict.action = sampling::HookVerdict::kKeep;
      verdict.reason = r == v1::Order::ANOMALOUS ? "order_anomaly" : "order_kept";
      return verdict;
    }
    if (r == v1::Order::ACTIVE && active == nullptr) active = &e;
  }
  if (active == nullptr) return verdict;
  v1::Order& o = active->record;
  if (sampled) {  // the policies keep it now; remember it as kept
    if (!Contains(o.kept_trace_ids(), trace.trace_id)) o.add_kept_trace_ids(trace.trace_id);
    active->dirty = true;
    return verdict;
  }
  const absl::Time now = options_.clock->Now();
  v1::HeldTrace held;
  held.set_trace_id(trace.trace_id);
  held.set_held_unix_nanos(absl::ToUnixNanos(now));
  for (const SpanRecord& r : trace.spans) {
    v1::HeldSpan* hs = held.add_spans();
    hs->set_span(r.span);
    hs->set_span_id(r.span_id);
    hs->set_start_unix_nanos(r.start_unix_nanos);
    hs->set_end_unix_nanos(r.end_unix_nanos);
    hs->set_is_error(r.is_error);
    hs->set_is_root(r.is_root);
    if (r.origin != nullptr) {
      hs->set_resource(r.origin->resource);
      hs->set_resource_schema_url(r.origin->resource_schema_url);
      hs->set_scope(r.origin->scope);
      hs->set_scope_schema_url(r.origin->scope_schema_url);
      hs->set_service_name(r.origin->service_name);
    }
  }
  std::string value = held.SerializeAsString();
  const size_t size = value.size();
  absl::Status s = options_.hold_table->Write(
      {{HoldKey(o.order_id(), trace.trace_id, ++hold_sequence_), std::move(value), false}});
  if (!s.ok()) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "order " << o.order_id() << ": holding trace " << ToHex(trace.trace_id)
                    << ": " << s;
    return verdict;
  }
  active->held_traces++;
  active->held_bytes += size;
  active->oldest_hold = std::min(active->oldest_hold, now);
  total_held_traces_++;
  total_held_bytes_ += size;
  stats_.traces_held = total_held_traces_;
  stats_.held_bytes = total_held_bytes_;
  trace.spans.clear();
  verdict.action = sampling::HookVerdict::kHold;
  return verdict;
}

void OrderTracker::Check() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = options_.clock->Now();
    const OrdersConfig& c = lifecycle_.config();
    for (auto& [id, e] : orders_) {
      if (e.record.resolution() == v1::Order::ACTIVE) Judge(&e, now);
      if (e.held_traces > 0 && now >= e.oldest_hold + c.max_hold_time) ReleaseHeld(&e, false);
    }
    // Hold space: release the oldest holds first.
    while (total_held_traces_ > c.max_held_traces || total_held_bytes_ > (c.max_held_mib << 20)) {
      Entry* oldest = nullptr;
      for (auto& [id, e] : orders_) {
        if (e.held_traces > 0 && (oldest == nullptr || e.oldest_hold < oldest->oldest_hold)) {
          oldest = &e;
        }
      }
      if (oldest == nullptr) break;
      ReleaseHeld(oldest, false);
    }
    const size_t n = c.states.size();
    std::vector<uint64_t> in_state(n, 0), overdue(n, 0);
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < n; ++i) index[c.states[i]] = i;
    for (const auto& [id, e] : orders_) {
      if (e.record.resolution() != v1::Order::ACTIVE) continue;
      auto it = index.find(e.record.current_state());
      if (it == index.end()) continue;
      in_state[it->second]++;
      if (e.record.deadline_unix_nanos() != 0 &&
          absl::ToUnixNanos(now) > e.record.deadline_unix_nanos()) {
        overdue[it->second]++;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      stats_.in_state[i] = in_state[i];
      stats_.overdue[i] = overdue[i];
    }
    FlushDirty();
    PurgeResolved(now);
    // Resolved orders leave memory after resolved_retention, or, beyond
    // max_resolved_in_memory, oldest resolution first (their records are on disk: FlushDirty).
    std::vector<std::pair<absl::Time, std::string>> resolved;
    for (auto it = orders_.begin(); it != orders_.end();) {
      auto next = std::next(it);
      const Entry& e = it->second;
      if (e.record.resolution() != v1::Order::ACTIVE && e.held_traces == 0 && !e.dirty) {
        if (e.retain_until <= now) {
          orders_.erase(it);
        } else {
          resolved.emplace_back(e.retain_until, it->first);
        }
      }
      it = next;
    }
    if (resolved.size() > c.max_resolved_in_memory) {
      const size_t excess = resolved.size() - c.max_resolved_in_memory;
      std::nth_element(resolved.begin(), resolved.begin() + excess, resolved.end());
      for (size_t i = 0; i < excess; ++i) orders_.erase(resolved[i].second);
      stats_.resolved_evicted.fetch_add(excess, std::memory_order_relaxed);
    }
  }
  Deliver();
}

void OrderTracker::FlushDirty() {
  std::vector<storage::KvWrite> writes;
  for (auto& [id, e] : orders_) {
    if (!e.dirty) continue;
    writes.push_back({id, e.record.SerializeAsString(), false});
  }
  if (writes.empty()) return;
  absl::Status s = options_.orders_table->Write(writes);
  if (!s.ok()) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "order tracker: writing " << writes.size() << " records: " << s;
    return;
  }
  for (auto& [id, e] : orders_) e.dirty = false;
}

void OrderTracker::PurgeResolved(absl::Time now) {
  const absl::Duration retention = lifecycle_.config().record_retention;
  if (retention == absl::ZeroDuration() || now < next_purge_) return;
  next_purge_ = now + std::min(absl::Hours(1), retention);
  std::vector<storage::KvWrite> deletes;
  absl::Status s =
      options_.orders_table->Scan("", [&](absl::string_view key, absl::string_view value) {
        v1::Order o;
        if (!o.ParseFromArray(value.data(), static_cast<int>(value.size()))) return true;
        if (o.resolution() == v1::Order::ACTIVE ||
            absl::FromUnixNanos(o.resolved_unix_nanos()) + retention > now) {
          return true;
        }
        auto it = orders_.find(o.order_id());
        if (it != orders_.end()) {
          if (it->second.held_traces > 0 || it->second.dirty) return true;  // still in use
          orders_.erase(it);
        }
        deletes.push_back({std::string(key), "", true});
        return true;
      });
  if (s.ok()) s = options_.orders_table->Write(deletes);
  if (!s.ok()) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "order tracker: deleting old records: " << s;
    return;
  }
  stats_.records_purged.fetch_add(deletes.size(), std::memory_order_relaxed);
}

void OrderTracker::Deliver() {
  KeptTraces out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(to_deliver_);
  }
  if (out.empty()) return;
  absl::Status s = options_.consumer->Consume(std::move(out));
  if (!s.ok()) {
    TK_LOG(Warning) << "order tracker: kept traces not fully handed downstream: " << s;
  }
}

absl::StatusOr<v1::Order> OrderTracker::GetOrder(const std::string& order_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = FindOrLoad(order_id, /*create=*/false);
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("order \"", order_id, "\" not seen"));
  return e->record;
}

absl::StatusOr<std::vector<v1::Order>> OrderTracker::ListOrders(const OrderQuery& q) {
  std::vector<v1::Order> out;
  std::lock_guard<std::mutex> lock(mu_);
  FlushDirty();
  const absl::Time now = options_.clock->Now();
  auto matches = [&](const v1::Order& o) {
    if (!q.state.empty()) {
      const bool open =
          o.resolution() == v1::Order::ACTIVE || o.resolution() == v1::Order::ANOMALOUS;
      if (!open || o.current_state() != q.state) return false;
      if (absl::FromUnixNanos(o.current_state_unix_nanos()) > now - q.older_than) return false;
    }
    if (q.anomalous_only && o.anomalies_size() == 0) return false;
    if (!q.anomaly_type.empty() || q.since != absl::InfinitePast()) {
      bool any = false;
      for (const v1::Anomaly& a : o.anomalies()) {
        if ((q.anomaly_type.empty() || a.type() == q.anomaly_type) &&
            absl::FromUnixNanos(a.detected_unix_nanos()) >= q.since) {
          any = true;
        }
      }
      if (!any) return false;
    }
    return true;
  };
  // Every record is on disk once flushed; resolved ones may have left memory.
  TK_RETURN_IF_ERROR(
      options_.orders_table->Scan("", [&](absl::string_view, absl::string_view value) {
        v1::Order o;
        if (o.ParseFromArray(value.data(), static_cast<int>(value.size())) && matches(o)) {
          out.push_back(std::move(o));
        }
        return true;
      }));
  std::sort(out.begin(), out.end(), [](const v1::Order& a, const v1::Order& b) {
    const int64_t ta = std::max(a.last_arrival_unix_nanos(), LastAnomalyNanos(a));
    const int64_t tb = std::max(b.last_arrival_unix_nanos(), LastAnomalyNanos(b));
    return ta != tb ? ta > tb : a.order_id() < b.order_id();
  });
  if (q.limit > 0 && out.size() > q.limit) out.resize(q.limit);
  return out;
}

absl::Status OrderTracker::ForceKeep(const std::string& order_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry* e = FindOrLoad(order_id, /*create=*/false);
    if (e == nullptr) return absl::NotFoundError(absl::StrCat("order \"", order_id, "\" not seen"));
    e->record.set_force_keep(true);
    e->dirty = true;
    e->retain_until =
        std::max(e->retain_until, options_.clock->Now() + lifecycle_.config().resolved_retention);
    if (e->held_traces > 0) ReleaseHeld(e, /*keep=*/true);
    FlushDirty();
  }
  Deliver();
  return absl::OkStatus();
}

absl::Status OrderTracker::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("order tracker already started");
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void OrderTracker::Run() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(run_mu_);
      run_cv_.wait_for(lock, absl::ToChronoNanoseconds(lifecycle_.config().check_interval),
                       [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_) { return stop_; });
      if (stop_) return;
    }
    Check();
  }
}

void OrderTracker::Shutdown(absl::Time deadline) {
  if (shut_down_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  FlushDirty();
}

}  // namespace tracekeep::orders
