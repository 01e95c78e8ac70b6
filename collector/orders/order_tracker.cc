#include "collector/orders/order_tracker.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <queue>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/orders/order_list.h"
#include "collector/orders/packed_order.h"
#include "collector/pipeline/otlp_wire.h"
#include "collector/sampling/span_scan.h"

namespace tracekeep::orders {
namespace {

constexpr size_t kNumAnomalyTypes = sizeof(kAnomalyTypes) / sizeof(kAnomalyTypes[0]);
// An order record keeps its linked trace ids in a list; past this many, a hash set beside it
// answers "is this trace linked" (a hot order id links up to max_traces_per_order traces).
constexpr int kTraceSetThreshold = 16;
// Orders a shard looks at for compaction in one check at most (~2 us each: a few ms of its lock).
constexpr size_t kCompactionsPerCheck = 2048;

std::string HoldPrefix(absl::string_view order_id) {
  std::string p(order_id);
  p.push_back('\0');
  return p;
}

std::string HoldKey(absl::string_view order_id, absl::string_view trace_id, uint64_t seq) {
  std::string key = HoldPrefix(order_id);
  key.append(trace_id.data(), trace_id.size());
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return key;
}

// Beside every held trace in order_hold, a small entry says when it was held and how many spans
// it has, so that a restart rebuilds the bookkeeping of the holds without reading the traces.
// Its key is the hold's key after 0xFF, a byte no UTF-8 order id starts with. 0xFE marks a table
// whose holds all have one (tables of 0.1 get them at the first start).
constexpr char kHoldMetaPrefix[] = "\xff";
constexpr char kHoldMetaMarker[] = "\xfe";

std::string HoldMetaKey(absl::string_view hold_key) {
  return absl::StrCat(kHoldMetaPrefix, hold_key);
}

std::string HoldMetaValue(int64_t held_unix_nanos, uint32_t spans, uint32_t bytes) {
  std::string v(16, '\0');
  std::memcpy(&v[0], &held_unix_nanos, 8);
  std::memcpy(&v[8], &spans, 4);
  std::memcpy(&v[12], &bytes, 4);
  return v;
}

bool ParseHoldMeta(absl::string_view v, int64_t* held_unix_nanos, uint32_t* spans,
                   uint32_t* bytes) {
  if (v.size() != 16) return false;
  std::memcpy(held_unix_nanos, v.data(), 8);
  std::memcpy(spans, v.data() + 8, 4);
  std::memcpy(bytes, v.data() + 12, 4);
  return true;
}

bool Contains(const std::vector<TraceIdBytes>& list, const TraceIdBytes& x) {
  // Newest first: a trace's later parts and its decision come soon after it was linked.
  return std::find(list.rbegin(), list.rend(), x) != list.rend();
}

// The key under which a shard counts journal entries its holds and deferred records pin: the
// arrival rounded down to a tenth of a second. The journal keeps a tenth of a second more at most
// (it truncates whole segments, each seconds of intake at full speed), and the map stays a few
// hundred entries that sit in the cache: by the millisecond it had tens of thousands at 25 k
// held traces/s, and finding them was ~0.8 % of the daemon's CPU with order traffic.
constexpr int64_t kPinGranularityNanos = 100 * 1000 * 1000;
int64_t PinKey(int64_t arrival_unix_nanos) {
  return arrival_unix_nanos - arrival_unix_nanos % kPinGranularityNanos;
}

// FNV-1a: stable across processes and restarts, unlike absl::Hash.
uint64_t StableHash(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// --- The held-trace record (v1::HeldTrace), written straight from the buffered spans. ---------

using wire::PutVarint;
using wire::VarintSize;

size_t BytesFieldSize(uint32_t field, size_t len) {
  return VarintSize(field << 3) + VarintSize(len) + len;
}
size_t VarintFieldSize(uint32_t field, uint64_t v) {
  return v == 0 ? 0 : VarintSize(field << 3) + VarintSize(v);
}

void PutBytesField(uint32_t field, absl::string_view bytes, std::string* out) {
  PutVarint((field << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}
void PutBytesFieldIfAny(uint32_t field, absl::string_view bytes, std::string* out) {
  if (!bytes.empty()) PutBytesField(field, bytes, out);
}
void PutVarintField(uint32_t field, uint64_t v, std::string* out) {
  if (v == 0) return;
  PutVarint(field << 3, out);
  PutVarint(v, out);
}

size_t OptionalBytesFieldSize(uint32_t field, size_t len) {
  return len == 0 ? 0 : BytesFieldSize(field, len);
}

size_t HeldSpanSize(const SpanRecord& r, uint32_t origin) {
  return OptionalBytesFieldSize(1, r.span.size()) + OptionalBytesFieldSize(2, r.span_id.size()) +
         VarintFieldSize(3, static_cast<uint64_t>(r.start_unix_nanos)) +
         VarintFieldSize(4, static_cast<uint64_t>(r.end_unix_nanos)) +
         VarintFieldSize(5, r.is_error) + VarintFieldSize(6, r.is_root) +
         VarintFieldSize(12, origin);
}

size_t HeldOriginSize(const SpanOrigin& o) {
  return OptionalBytesFieldSize(1, o.resource.size()) +
         OptionalBytesFieldSize(2, o.resource_schema_url.size()) +
         OptionalBytesFieldSize(3, o.scope.size()) +
         OptionalBytesFieldSize(4, o.scope_schema_url.size()) +
         OptionalBytesFieldSize(5, o.service_name.size());
}

bool SameOrigin(const SpanOrigin& a, const SpanOrigin& b) {
  return a.resource == b.resource && a.scope == b.scope &&
         a.resource_schema_url == b.resource_schema_url &&
         a.scope_schema_url == b.scope_schema_url && a.service_name == b.service_name;
}

// Serializes the spans of a held trace as a v1::HeldTrace, each resource and scope once.
std::string EncodeHeldTrace(const TraceSpans& trace, absl::Time now) {
  std::vector<const SpanOrigin*> origins;
  std::vector<uint32_t> origin_of(trace.spans.size(), 0);
  size_t size = BytesFieldSize(1, trace.trace_id.size()) +
                VarintFieldSize(2, static_cast<uint64_t>(absl::ToUnixNanos(now)));
  for (size_t i = 0; i < trace.spans.size(); ++i) {
    const SpanOrigin* origin = trace.spans[i].origin.get();
    if (origin != nullptr) {
      size_t k = 0;
      while (k < origins.size() && origins[k] != origin && !SameOrigin(*origins[k], *origin)) ++k;
      if (k == origins.size()) {
        origins.push_back(origin);
        size += BytesFieldSize(4, HeldOriginSize(*origin));
      }
      origin_of[i] = static_cast<uint32_t>(k + 1);
    }
    size += BytesFieldSize(3, HeldSpanSize(trace.spans[i], origin_of[i]));
  }
  std::string out;
  out.reserve(size);
  PutBytesField(1, trace.trace_id, &out);
  PutVarintField(2, static_cast<uint64_t>(absl::ToUnixNanos(now)), &out);
  for (size_t i = 0; i < trace.spans.size(); ++i) {
    const SpanRecord& r = trace.spans[i];
    PutVarint((3 << 3) | 2, &out);
    PutVarint(HeldSpanSize(r, origin_of[i]), &out);
    PutBytesFieldIfAny(1, r.span, &out);
    PutBytesFieldIfAny(2, r.span_id, &out);
    PutVarintField(3, static_cast<uint64_t>(r.start_unix_nanos), &out);
    PutVarintField(4, static_cast<uint64_t>(r.end_unix_nanos), &out);
    PutVarintField(5, r.is_error, &out);
    PutVarintField(6, r.is_root, &out);
    PutVarintField(12, origin_of[i], &out);
  }
  for (const SpanOrigin* o : origins) {
    PutVarint((4 << 3) | 2, &out);
    PutVarint(HeldOriginSize(*o), &out);
    PutBytesFieldIfAny(1, o->resource, &out);
    PutBytesFieldIfAny(2, o->resource_schema_url, &out);
    PutBytesFieldIfAny(3, o->scope, &out);
    PutBytesFieldIfAny(4, o->scope_schema_url, &out);
    PutBytesFieldIfAny(5, o->service_name, &out);
  }
  return out;
}

// The spans of a held trace, as the sampler buffered them. False when undecodable.
bool DecodeHeldTrace(absl::string_view value, KeptTrace* out) {
  v1::HeldTrace held;
  if (!held.ParseFromArray(value.data(), static_cast<int>(value.size()))) return false;
  std::vector<SpanOriginPtr> origins;
  for (v1::HeldOrigin& ho : *held.mutable_origins()) {
    auto origin = std::make_shared<SpanOrigin>();
    origin->resource = std::move(*ho.mutable_resource());
    origin->resource_schema_url = std::move(*ho.mutable_resource_schema_url());
    origin->scope = std::move(*ho.mutable_scope());
    origin->scope_schema_url = std::move(*ho.mutable_scope_schema_url());
    origin->service_name = std::move(*ho.mutable_service_name());
    origins.push_back(std::move(origin));
  }
  out->trace_id = std::move(*held.mutable_trace_id());
  for (v1::HeldSpan& hs : *held.mutable_spans()) {
    SpanRecord& r = out->spans.emplace_back();
    if (hs.origin() > 0 && hs.origin() <= origins.size()) {
      r.origin = origins[hs.origin() - 1];
    } else {  // the 0.1 layout: resource and scope beside every span
      auto origin = std::make_shared<SpanOrigin>();
      origin->resource = std::move(*hs.mutable_resource());
      origin->resource_schema_url = std::move(*hs.mutable_resource_schema_url());
      origin->scope = std::move(*hs.mutable_scope());
      origin->scope_schema_url = std::move(*hs.mutable_scope_schema_url());
      origin->service_name = std::move(*hs.mutable_service_name());
      r.origin = std::move(origin);
    }
    r.span = std::move(*hs.mutable_span());
    r.span_id = std::move(*hs.mutable_span_id());
    r.start_unix_nanos = hs.start_unix_nanos();
    r.end_unix_nanos = hs.end_unix_nanos();
    r.is_error = hs.is_error();
    r.is_root = hs.is_root();
  }
  return true;
}

// Reads the hold time and the span count of a held-trace record without decoding its spans.
bool PeekHeldTrace(absl::string_view value, int64_t* held_unix_nanos, uint32_t* spans) {
  *held_unix_nanos = 0;
  *spans = 0;
  return wire::ForEachField(value, [&](const wire::Field& f) {
    if (f.number == 2 && f.type == wire::kVarint) *held_unix_nanos = static_cast<int64_t>(f.varint);
    if (f.number == 3 && f.type == wire::kLengthDelimited) ++*spans;
    return true;
  });
}

bool KeepsTraces(const OrderRecord& o) {
  return o.resolution == v1::Order::ANOMALOUS || o.resolution == v1::Order::HEALTHY_KEPT ||
         o.force_keep;
}

// The order_index entries of a record (OrderIndexEntriesOf without building its v1::Order).
OrderIndexEntries IndexEntriesOf(const OrderRecord& o) {
  std::vector<IndexedAnomaly> anomalies;
  anomalies.reserve(o.anomalies.size());
  for (const OrderRecord::Anomaly& a : o.anomalies) {
    anomalies.push_back({a.type, a.detected_unix_nanos});
  }
  return OrderIndexEntriesOf(o.order_id, o.last_arrival_unix_nanos, anomalies);
}

bool Open(const OrderRecord& o) {
  return o.resolution == v1::Order::ACTIVE || o.resolution == v1::Order::ANOMALOUS;
}

}  // namespace

std::string HeldRef::Key(absl::string_view order_id) const {
  return HoldKey(order_id, trace_id.view(), seq);
}

namespace {

// The trace id and sequence of a hold key of `order_id` (HoldKey's layout). False otherwise.
bool ParseHoldKey(absl::string_view key, absl::string_view order_id, TraceIdBytes* trace_id,
                  uint64_t* seq) {
  if (key.size() != order_id.size() + 1 + 16 + 8 || !absl::StartsWith(key, order_id) ||
      key[order_id.size()] != '\0') {
    return false;
  }
  *trace_id = TraceIdBytes::Of(key.substr(order_id.size() + 1, 16));
  *seq = 0;
  for (unsigned char c : key.substr(key.size() - 8)) *seq = (*seq << 8) | c;
  return true;
}

}  // namespace

struct OrderTracker::Entry {
  OrderRecord record;
  // What the per-state gauges count this order as: a state index or -1, and overdue or not.
  int counted_state = -1;
  bool counted_overdue = false;
  bool counted_resolved = false;  // counted in resolved_in_memory_
  // Changed since last written. A dirty entry is either queued (in its shard's `dirty`, written
  // by the next flush) or deferred: an active order changed only by spans that the intake
  // journal keeps from `pinned_arrival` on (a restart replays them and rebuilds the change), so
  // its record waits for its order to resolve or for hold_in_journal to pass.
  bool dirty = false;
  bool queued = false;
  // In its shard's journal_queue (once, however many of its holds are in the journal).
  bool spill_queued = false;
  // In its shard's compact_queue (once).
  bool compact_queued = false;
  // (The flags sit together: with the key, a map node is 384 bytes, one allocator size class
  // below the 448 it took when padding sat between them.)
  // In compact form (orders.compact_after): the lists of `record` and `holds` are packed here,
  // and those are empty. OrderTracker::Unpack() puts them back before anything reads them.
  // Every lookup reads it: it sits in the cache line of the fields a span changes.
  PackedOrder packed;
  int64_t pinned_arrival = 0;  // 0: no journal pin
  // Resolved: may leave memory after this.
  absl::Time retain_until = absl::InfiniteFuture();
  // The time of this order's live entry in its shard's deadline queue; InfiniteFuture = none.
  absl::Time scheduled = absl::InfiniteFuture();
  std::vector<HeldRef> holds;
  size_t held_bytes = 0;
  // When its oldest hold was held (Unix nanos; INT64_MAX: none). Nanos rather than an
  // absl::Time, whose 12 bytes take 16: `packed` fits in the 384-byte node that way.
  int64_t oldest_hold_nanos = INT64_MAX;
  // Linked trace ids, beside record.trace_ids once there are many.
  std::unique_ptr<absl::flat_hash_set<TraceIdBytes>> trace_set;
  // The order_index entries of the record as it is on disk.
  OrderIndexEntries indexed;

  absl::Time oldest_hold() const {
    return oldest_hold_nanos == INT64_MAX ? absl::InfiniteFuture()
                                          : absl::FromUnixNanos(oldest_hold_nanos);
  }
  void HeldAt(absl::Time t) {
    oldest_hold_nanos = std::min(oldest_hold_nanos, absl::ToUnixNanos(t));
  }
  // Whether it holds traces, in compact form or not.
  bool holding() const { return !holds.empty() || PackedHoldCount(packed) > 0; }
};

struct OrderTracker::Flush {
  std::vector<storage::KvWrite> writes;
  // Journal pins of deferred records among `writes`, released once they are written.
  std::vector<std::pair<std::string, int64_t>> pins;
  std::vector<storage::KvWrite> index_writes;
  // The index entries each written record had on disk before, for a write that fails.
  std::vector<std::pair<std::string, OrderIndexEntries>> previous_index;
};

struct OrderTracker::PendingHold {
  std::string key;
  std::string value;
  int64_t held_unix_nanos = 0;
  uint32_t spans = 0;
};

namespace {

// An order id as the key of a shard's map, held inline up to 40 bytes (an id such as "ORD-" and
// 16 hex digits, or a UUID): a lookup compares it in the map's node instead of following a
// pointer to the heap, one cache miss fewer for each trace of an order. With order traffic the
// map's lookups were ~5 % of the daemon's CPU, most of it waiting for memory.
class OrderKey {
 public:
  explicit OrderKey(absl::string_view id) : chars_(id.begin(), id.end()) {}
  absl::string_view view() const { return absl::string_view(chars_.data(), chars_.size()); }
  std::string str() const { return std::string(view()); }

 private:
  absl::InlinedVector<char, 40> chars_;
};

// Hash and equality that also take a string_view, so lookups build no key.
struct OrderKeyHash {
  using is_transparent = void;
  size_t operator()(absl::string_view id) const { return absl::Hash<absl::string_view>{}(id); }
  size_t operator()(const OrderKey& key) const { return (*this)(key.view()); }
};
struct OrderKeyEq {
  using is_transparent = void;
  static absl::string_view View(absl::string_view id) { return id; }
  static absl::string_view View(const OrderKey& key) { return key.view(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return View(a) == View(b);
  }
};

}  // namespace

struct OrderTracker::Shard {
  explicit Shard(const std::vector<std::string>& states) : names(states) {}
  // Held while this shard's records are written (taken before `mu`): the write itself happens
  // without `mu`, so spans of its orders are not kept waiting by the disk, and two flushes of
  // one shard never race each other to disk.
  std::mutex flush_mu;
  struct Due {
    absl::Time at;
    OrderKey order_id;  // inline: pushing a check allocates nothing
    bool operator>(const Due& o) const { return at > o.at; }
  };
  std::mutex mu;
  absl::node_hash_map<OrderKey, Entry, OrderKeyHash, OrderKeyEq> orders ABSL_GUARDED_BY(mu);
  // The names the records of `orders` refer to by number.
  NameTable names ABSL_GUARDED_BY(mu);
  // Min-heap of next checks. An entry is live when it equals its order's `scheduled`; an order
  // is pushed again only when its next check moves earlier, so the heap stays near one entry per
  // order however many spans arrive.
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due ABSL_GUARDED_BY(mu);
  std::vector<std::string> dirty ABSL_GUARDED_BY(mu);  // ids of queued entries (see Entry)
  // Deferred entries by the arrival of their journal pin (oldest first; stale when the entry's
  // pin moved on).
  std::deque<std::pair<int64_t, std::string>> deferred ABSL_GUARDED_BY(mu);
  // While spans are ingested under `mu`: the arrival of the journal entry they came in, which a
  // restart replays (0: none, changes are queued).
  int64_t arrival_context ABSL_GUARDED_BY(mu) = 0;
  // Resolved orders in memory, in the order they may leave it (retain_until).
  std::deque<std::pair<absl::Time, std::string>> resolved ABSL_GUARDED_BY(mu);
  KeptTraces to_deliver ABSL_GUARDED_BY(mu);
  // Holds in the journal: how many by their first arrival (PinKey; the journal keeps every entry
  // from the oldest on), and in order of arrival with their order, for spilling to order_hold.
  absl::btree_map<int64_t, int> journal_arrivals ABSL_GUARDED_BY(mu);
  std::deque<std::pair<int64_t, std::string>> journal_queue ABSL_GUARDED_BY(mu);
  // Resident orders to pack once no span named them for compact_after: min-heap by the time
  // from which they are looked at (Unix nanos), one entry per order (Entry::compact_queued).
  struct Quiet {
    int64_t since;
    OrderKey order_id;
    bool operator>(const Quiet& o) const { return since > o.since; }
  };
  std::priority_queue<Quiet, std::vector<Quiet>, std::greater<Quiet>> compact_queue
      ABSL_GUARDED_BY(mu);
};

// Ingests spans that came in the journal entry of `arrival` (0: none) into a shard: records they
// change may be deferred (see Entry). The shard's lock must be held.
class OrderTracker::ArrivalContext {
 public:
  ArrivalContext(Shard* shard, int64_t arrival) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard->mu)
      : shard_(shard) {
    shard_->arrival_context = arrival;
  }
  ~ArrivalContext() ABSL_NO_THREAD_SAFETY_ANALYSIS { shard_->arrival_context = 0; }

 private:
  Shard* const shard_;
};

absl::StatusOr<std::unique_ptr<OrderTracker>> OrderTracker::Create(
    const OrderTrackerOptions& options) {
  // One allocator size class per active order's map node (see Entry).
  static_assert(sizeof(std::pair<const OrderKey, Entry>) <= 384, "an order's map node grew");
  std::vector<std::string> problems = ValidateOrdersConfig(options.config);
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  if (options.consumer == nullptr || options.clock == nullptr || options.orders_table == nullptr ||
      options.hold_table == nullptr) {
    return absl::InvalidArgumentError("order tracker: consumer, clock and tables must be set");
  }
  if (options.shards < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("order tracker: shards must be >= 1, got ", options.shards));
  }
  if (options.index_table != nullptr) {
    TK_RETURN_IF_ERROR(EnsureOrderIndex(options.orders_table, options.index_table));
  }
  std::unique_ptr<OrderTracker> t(new OrderTracker(options));
  TK_RETURN_IF_ERROR(t->Load());
  return t;
}

OrderTracker::OrderTracker(const OrderTrackerOptions& options)
    : lifecycle_(options.config),
      reader_(lifecycle_.config()),
      options_(options),
      defer_writes_(options.read_journal != nullptr &&
                    lifecycle_.config().hold_in_journal > absl::ZeroDuration()) {
  const size_t n = lifecycle_.config().states.size();
  stats_.in_state.reset(new std::atomic<int64_t>[n]);
  stats_.overdue.reset(new std::atomic<int64_t>[n]);
  for (size_t i = 0; i < n; ++i) {
    stats_.in_state[i] = 0;
    stats_.overdue[i] = 0;
  }
  for (int i = 0; i < options.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(lifecycle_.config().states));
  }
}

OrderTracker::~OrderTracker() { Shutdown(absl::InfiniteFuture()); }

size_t OrderTracker::IdHash(absl::string_view order_id) {
  // The hash of the shards' maps (OrderKeyHash): computed once, it picks the shard and finds the
  // order in the shard's map. Shards live in memory only: the process's own hash (a few times
  // cheaper than StableHash).
  return absl::Hash<absl::string_view>{}(order_id);
}

OrderTracker::Shard& OrderTracker::ShardOfHash(size_t hash) {
  // The high bits, which the shard's map does not use to place the id.
  return *shards_[(hash >> 40) % shards_.size()];
}

OrderTracker::Shard& OrderTracker::ShardOf(absl::string_view order_id) {
  return ShardOfHash(IdHash(order_id));
}

absl::Status OrderTracker::Load() {
  const absl::Time now = options_.clock->Now();
  absl::Status parse_error;
  size_t loaded = 0;
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
        Shard& shard = ShardOf(o.order_id());
        std::lock_guard<std::mutex> lock(shard.mu);
        OrderRecord record = OrderRecord::FromProto(o, &shard.names);
        // Resolved orders past their time in memory, unless more anomalies may still show.
        if (!active && retain <= now &&
            !(o.resolution() == v1::Order::ANOMALOUS &&
              NextCheckOf(record, now) != absl::InfiniteFuture())) {
          return true;
        }
        Entry& e = shard.orders[absl::string_view(o.order_id())];
        e.record = std::move(record);
        Adopt(shard, &e, now);
        ++loaded;
        return true;
      }));
  TK_RETURN_IF_ERROR(parse_error);
  uint64_t orphaned = 0;
  std::vector<storage::KvWrite> fixes;  // orphans deleted, missing small entries added
  // Takes one held trace into its order's bookkeeping; false when it has no order to judge it by.
  auto adopt_hold = [&](absl::string_view key, int64_t held_at, uint32_t spans, uint32_t bytes) {
    const size_t nul = key.find('\0');
    if (nul == absl::string_view::npos) return false;
    const std::string id(key.substr(0, nul));
    Shard& shard = ShardOf(id);
    std::lock_guard<std::mutex> lock(shard.mu);
    Entry* e = FindOrLoad(shard, id, /*create=*/false);
    TraceIdBytes trace_id;
    uint64_t seq = 0;
    if (e == nullptr || !ParseHoldKey(key, id, &trace_id, &seq)) return false;
    HeldRef& h = e->holds.emplace_back();
    h.trace_id = trace_id;
    h.seq = seq;
    h.spans = spans;
    h.bytes = bytes;
    e->held_bytes += bytes;
    e->HeldAt(absl::FromUnixNanos(held_at));
    total_held_traces_ += 1;
    total_held_bytes_ += static_cast<int64_t>(bytes);
    return true;
  };
  TK_ASSIGN_OR_RETURN(std::optional<std::string> marker, options_.hold_table->Get(kHoldMetaMarker));
  if (marker.has_value()) {  // the small entries say everything: the traces are not read
    TK_RETURN_IF_ERROR(options_.hold_table->Scan(
        kHoldMetaPrefix, [&](absl::string_view meta_key, absl::string_view value) {
          const absl::string_view key = meta_key.substr(1);
          int64_t held_at = 0;
          uint32_t spans = 0, bytes = 0;
          if (!ParseHoldMeta(value, &held_at, &spans, &bytes) ||
              !adopt_hold(key, held_at, spans, bytes)) {
            fixes.push_back({std::string(meta_key), "", true});
            fixes.push_back({std::string(key), "", true});
            ++orphaned;
          }
          return true;
        }));
  } else {  // holds of 0.1: read each one, and give it its small entry
    TK_RETURN_IF_ERROR(
        options_.hold_table->Scan("", [&](absl::string_view key, absl::string_view value) {
          if (absl::StartsWith(key, kHoldMetaPrefix)) return true;
          int64_t held_at = 0;
          uint32_t spans = 0;
          const uint32_t bytes = static_cast<uint32_t>(value.size());
          if (PeekHeldTrace(value, &held_at, &spans) && adopt_hold(key, held_at, spans, bytes)) {
            fixes.push_back({HoldMetaKey(key), HoldMetaValue(held_at, spans, bytes), false});
          } else {  // no record to judge it by: undecodable, or its order is gone
            fixes.push_back({std::string(key), "", true});
            ++orphaned;
          }
          return true;
        }));
    fixes.push_back({kHoldMetaMarker, "1", false});
  }
  if (!fixes.empty()) TK_RETURN_IF_ERROR(options_.hold_table->Write(fixes));
  hold_sequence_ = static_cast<uint64_t>(absl::ToUnixNanos(now));
  stats_.traces_held = static_cast<uint64_t>(total_held_traces_.load());
  stats_.held_bytes = static_cast<uint64_t>(total_held_bytes_.load());
  // Holds of orders resolved before the crash follow the verdict; the rest wait for their checks.
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    for (auto& [id, e] : shard->orders) {
      if (!e.holds.empty() && e.record.resolution != v1::Order::ACTIVE) {
        ReleaseHeld(*shard, &e, KeepsTraces(e.record), ReleaseCause::kVerdict);
      }
      Schedule(*shard, &e, now);
    }
  }
  FlushHolds();
  TK_LOG(Info) << "order tracker: " << loaded << " orders and " << total_held_traces_.load()
               << " held traces loaded (" << orphaned << " orphaned holds deleted)";
  return absl::OkStatus();
}

void OrderTracker::Adopt(Shard& shard, Entry* e, absl::Time now) {
  if (options_.index_table != nullptr) {
    e->indexed = IndexEntriesOf(e->record);
  }
  if (e->record.resolution == v1::Order::ACTIVE) {
    stats_.orders_tracked.fetch_add(1, std::memory_order_relaxed);
  } else {
    e->retain_until = now + lifecycle_.config().resolved_retention;
    CountResolved(shard, e);
  }
  if (e->record.trace_ids.size() > kTraceSetThreshold) {
    e->trace_set = std::make_unique<absl::flat_hash_set<TraceIdBytes>>(e->record.trace_ids.begin(),
                                                                       e->record.trace_ids.end());
  }
  Recount(e, now);
  QueueCompaction(shard, e, now);
  // Judged again at the next check: deadlines may have passed while it was on disk.
  if (Open(e->record) || !e->holds.empty()) {
    e->scheduled = now;
    shard.due.push(Shard::Due{now, OrderKey(e->record.order_id)});
  }
}

void OrderTracker::CountResolved(Shard& shard, Entry* e) {
  if (e->counted_resolved) return;
  e->counted_resolved = true;
  resolved_in_memory_.fetch_add(1, std::memory_order_relaxed);
  shard.resolved.emplace_back(e->retain_until, e->record.order_id);
}

void OrderTracker::Unpack(Shard& shard, Entry* e) {
  if (e->packed == nullptr) return;
  UnpackOrder(e->packed, &e->record, &e->holds);
  e->packed.reset();
  stats_.orders_compact.fetch_sub(1, std::memory_order_relaxed);
  // Looked at again compact_after from now: a resolved order leaves memory first when many
  // orders resolve (max_resolved_in_memory), and is not packed for nothing.
  QueueCompaction(shard, e, options_.clock->Now());
}

void OrderTracker::QueueCompaction(Shard& shard, Entry* e, absl::Time at) {
  if (e->compact_queued || lifecycle_.config().compact_after <= absl::ZeroDuration()) return;
  e->compact_queued = true;
  shard.compact_queue.push(Shard::Quiet{absl::ToUnixNanos(at), OrderKey(e->record.order_id)});
}

void OrderTracker::Compact(Shard& shard, absl::Time now) {
  const int64_t after = absl::ToInt64Nanoseconds(lifecycle_.config().compact_after);
  const int64_t now_nanos = absl::ToUnixNanos(now);
  std::vector<Shard::Quiet> again;
  // At most this many orders a check, so that the shard's lock is never held long: after a
  // restart every order loaded goes quiet at once (a million take ~2 s to pack).
  size_t budget = kCompactionsPerCheck;
  while (!shard.compact_queue.empty() && shard.compact_queue.top().since <= now_nanos - after &&
         budget-- > 0) {
    Shard::Quiet q = shard.compact_queue.top();
    shard.compact_queue.pop();
    auto it = shard.orders.find(q.order_id.view());
    if (it == shard.orders.end()) continue;
    Entry& e = it->second;
    e.compact_queued = false;
    // Resident for good: an order with many traces (a hot id: its trace set answers lookups).
    if (e.packed != nullptr || e.trace_set != nullptr) continue;
    // Named by a span since, or about to be written (the flush reads its record): later.
    const int64_t quiet_since = std::max(q.since, e.record.last_arrival_unix_nanos);
    if (quiet_since > now_nanos - after || e.queued) {
      e.compact_queued = true;
      again.push_back(Shard::Quiet{e.queued ? now_nanos : quiet_since, std::move(q.order_id)});
      continue;
    }
    e.packed = PackOrder(&e.record, &e.holds);
    stats_.orders_compact.fetch_add(1, std::memory_order_relaxed);
  }
  for (Shard::Quiet& q : again) shard.compact_queue.push(std::move(q));
}

OrderTracker::Entry* OrderTracker::FindOrLoad(Shard& shard, const std::string& order_id,
                                              bool create) {
  return FindOrLoad(shard, order_id, IdHash(order_id), create);
}

OrderTracker::Entry* OrderTracker::FindOrLoad(Shard& shard, const std::string& order_id,
                                              size_t hash, bool create) {
  auto it = shard.orders.find(order_id, hash);
  if (it != shard.orders.end()) {
    Unpack(shard, &it->second);
    return &it->second;
  }
  absl::StatusOr<std::optional<std::string>> stored = std::optional<std::string>();
  bool shared = false;
  if (options_.read_shared_record) {
    stored = options_.read_shared_record(order_id);
    shared = stored.ok() && stored->has_value();
  }
  if (!shared) stored = options_.orders_table->Get(order_id);
  if (!stored.ok()) stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
  if (stored.ok() && stored->has_value()) {
    v1::Order record;
    if (record.ParseFromString(**stored)) {
      const absl::Time now = options_.clock->Now();
      // Taken over from another tracker: its traces are replayed to this one from now on.
      if (shared && record.resolution() == v1::Order::ACTIVE) {
        record.set_first_arrival_unix_nanos(absl::ToUnixNanos(now));
      }
      Entry& e = shard.orders[absl::string_view(order_id)];
      e.record = OrderRecord::FromProto(record, &shard.names);
      Adopt(shard, &e, now);
      if (shared) MarkDirty(shard, &e);  // this tracker's table gets it too
      return &e;
    }
  }
  if (!create) return nullptr;
  Entry& e = shard.orders[absl::string_view(order_id)];
  e.record.order_id = order_id;
  MarkDirty(shard, &e);
  QueueCompaction(shard, &e, options_.clock->Now());
  stats_.orders_started.fetch_add(1, std::memory_order_relaxed);
  stats_.orders_tracked.fetch_add(1, std::memory_order_relaxed);
  return &e;
}

void OrderTracker::MarkDirty(Shard& shard, Entry* e) {
  e->dirty = true;
  if (e->queued) return;
  if (shard.arrival_context != 0 && e->record.resolution == v1::Order::ACTIVE) {
    if (e->pinned_arrival == 0) {
      e->pinned_arrival = shard.arrival_context;
      shard.journal_arrivals[PinKey(e->pinned_arrival)]++;
      shard.deferred.emplace_back(e->pinned_arrival, e->record.order_id);
    }
    return;
  }
  e->queued = true;
  shard.dirty.push_back(e->record.order_id);
}

void OrderTracker::ReleasePin(Shard& shard, int64_t arrival) {
  auto it = shard.journal_arrivals.find(PinKey(arrival));
  if (it != shard.journal_arrivals.end() && --it->second <= 0) shard.journal_arrivals.erase(it);
}

bool OrderTracker::Linked(const Entry& e, const TraceIdBytes& trace_id) const {
  if (e.trace_set != nullptr) return e.trace_set->contains(trace_id);
  return Contains(e.record.trace_ids, trace_id);
}

void OrderTracker::Link(Entry* e, const TraceIdBytes& trace_id) {
  e->record.trace_ids.push_back(trace_id);
  if (e->trace_set != nullptr) {
    e->trace_set->insert(trace_id);
  } else if (e->record.trace_ids.size() > kTraceSetThreshold) {
    e->trace_set = std::make_unique<absl::flat_hash_set<TraceIdBytes>>(e->record.trace_ids.begin(),
                                                                       e->record.trace_ids.end());
  }
}

void OrderTracker::OnBuffered(TraceSpans& spans) {
  std::vector<OrderFacts> facts;
  absl::InlinedVector<size_t, 4> span_of_fact;
  uint64_t with_order = 0;
  const size_t n = spans.spans.size();
  for (size_t i = 0; i < n; ++i) {
    if (!reader_.Read(spans.spans[i], &facts)) continue;
    ++with_order;
    span_of_fact.resize(facts.size(), i);
  }
  if (facts.empty()) return;
  stats_.spans_with_order.fetch_add(with_order, std::memory_order_relaxed);
  const absl::Time now = options_.clock->Now();
  absl::InlinedVector<bool, 4> done(facts.size(), false);
  const TraceIdBytes trace_id = TraceIdBytes::Of(spans.trace_id);
  KeptTraces kept;
  for (size_t i = 0; i < facts.size(); ++i) {
    if (done[i]) continue;
    const std::string& order_id = facts[i].order_id;
    if (options_.owns && !options_.owns(order_id)) {
      for (size_t j = i; j < facts.size(); ++j) done[j] = done[j] || facts[j].order_id == order_id;
      continue;
    }
    const size_t hash = IdHash(order_id);
    Shard& shard = ShardOfHash(hash);
    std::lock_guard<std::mutex> lock(shard.mu);
    ArrivalContext context(&shard, defer_writes_ ? spans.arrival_unix_nanos : 0);
    Entry* e = FindOrLoad(shard, order_id, hash, /*create=*/true);
    const bool linked = Linked(*e, trace_id);
    if (!linked && e->record.trace_ids.size() >= options_.config.max_traces_per_order) {
      size_t n = 0;
      for (size_t j = i; j < facts.size(); ++j) {
        if (!done[j] && facts[j].order_id == order_id) {
          done[j] = true;
          n += facts[j].spans;
        }
      }
      if (stats_.spans_over_trace_limit.fetch_add(n, std::memory_order_relaxed) % 10000 < n) {
        TK_LOG(Warning) << "order " << order_id << " links " << e->record.trace_ids.size()
                        << " traces (orders.max_traces_per_order): spans of further traces "
                           "naming it are not tracked";
      }
      continue;
    }
    if (!linked) Link(e, trace_id);
    bool changed = false;
    for (size_t j = i; j < facts.size(); ++j) {
      if (done[j] || facts[j].order_id != order_id) continue;
      done[j] = true;
      changed |= Ingest(shard, e, facts[j], spans, spans.spans[span_of_fact[j]], now);
    }
    MarkDirty(shard, e);
    // Without news only the order's last arrival moved, so its checks can only come later: a
    // check already scheduled will look again then.
    if (changed) Judge(shard, e, now);
    if (changed || e->scheduled == absl::InfiniteFuture()) Schedule(shard, e, now);
    spans.linked_keys.push_back(order_id);
    if (!shard.to_deliver.empty()) {
      for (KeptTrace& k : shard.to_deliver) kept.push_back(std::move(k));
      shard.to_deliver.clear();
    }
  }
  if (!kept.empty()) Consume(std::move(kept));
}

bool OrderTracker::Ingest(Shard& shard, Entry* e, const OrderFacts& facts, const TraceSpans& spans,
                          const SpanRecord& span, absl::Time now) {
  OrderRecord& o = e->record;
  bool changed = false;
  const int64_t now_nanos = absl::ToUnixNanos(now);
  if (o.first_arrival_unix_nanos == 0) o.first_arrival_unix_nanos = now_nanos;
  o.last_arrival_unix_nanos = now_nanos;
  if (facts.states.empty() && facts.invariants.empty() && !facts.error) return false;
  const std::string& service = span.origin != nullptr ? span.origin->service_name : "";
  NameId service_id = kNoName;  // interned when first needed
  auto service_number = [&] {
    if (service_id == kNoName) service_id = shard.names.Intern(service);
    return service_id;
  };
  const TraceIdBytes trace_id = TraceIdBytes::Of(spans.trace_id);
  const SpanIdBytes span_id = SpanIdBytes::Of(span.span_id);
  for (const OrderFacts::State& s : facts.states) {
    const NameId state = shard.names.Intern(s.state);
    bool seen = false;  // the same span delivered twice (client retry) is one record
    const OrderRecord::State* prev = nullptr;
    for (const OrderRecord::State& x : o.states) {
      if (x.span_id == span_id && x.state == state && x.trace_id == trace_id) seen = true;
      if (x.time_unix_nanos <= s.time_unix_nanos &&
          (prev == nullptr || x.time_unix_nanos >= prev->time_unix_nanos)) {
        prev = &x;
      }
    }
    if (seen) continue;
    if (o.states.size() >= kMaxEventsPerOrder) {
      stats_.events_over_limit.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (prev != nullptr && options_.on_transition && prev->state != state &&
        lifecycle_.AllowedId(prev->state, state)) {
      options_.on_transition(shard.names.Name(prev->state), s.state,
                             static_cast<double>(s.time_unix_nanos - prev->time_unix_nanos) / 1e9);
    }
    OrderRecord::State& ev = o.states.emplace_back();
    ev.state = state;
    ev.time_unix_nanos = s.time_unix_nanos;
    ev.service = service_number();
    ev.trace_id = trace_id;
    ev.span_id = span_id;
    ev.arrival_unix_nanos = now_nanos;
    changed = true;
    if (o.resolution == v1::Order::READ_ONLY) {  // read before its lifecycle showed: track it
      o.resolution = v1::Order::ACTIVE;
      o.resolved_unix_nanos = 0;
      e->retain_until = absl::InfiniteFuture();
      stats_.orders_tracked.fetch_add(1, std::memory_order_relaxed);
    }
  }
  for (const auto& [key_name, value] : facts.invariants) {
    const NameId key = shard.names.Intern(key_name);
    // Nearly always a value already recorded.
    bool known_value = false;
    const OrderRecord::Invariant* first = nullptr;
    for (const OrderRecord::Invariant& v : o.invariants) {
      if (v.key != key) continue;
      if (first == nullptr) first = &v;
      if (v.value == value) {
        known_value = true;
        break;
      }
    }
    if (known_value) continue;
    if (o.invariants.size() >= kMaxEventsPerOrder) {
      stats_.events_over_limit.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::string detail;
    if (first != nullptr) {
      detail =
          absl::StrCat(key_name, " was \"", first->value, "\" (", shard.names.Name(first->service),
                       "), now \"", value, "\" (", service, ")");
    }
    OrderRecord::Invariant& v = o.invariants.emplace_back();
    v.key = key;
    v.value = value;
    v.service = service_number();
    v.time_unix_nanos = span.start_unix_nanos;
    v.trace_id = trace_id;
    changed = true;
    if (!detail.empty() && Lifecycle::AddAnomaly(&o, kContentChanged, detail, now)) {
      stats_.anomalies[4].fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (facts.error && !o.HasAnomaly(kError) &&
      Lifecycle::AddAnomaly(
          &o, kError,
          absl::StrCat(facts.error_detail, " (", service, ", trace ", ToHex(spans.trace_id), ")"),
          now)) {
    stats_.anomalies[5].fetch_add(1, std::memory_order_relaxed);
    changed = true;
  }
  return changed;
}

void OrderTracker::Judge(Shard& shard, Entry* e, absl::Time now) {
  Unpack(shard, e);
  OrderRecord& o = e->record;
  const size_t before = o.anomalies.size();
  const int64_t state_at = o.current_state_unix_nanos;
  const int64_t deadline = o.deadline_unix_nanos;
  const NameId state = o.current_state;
  lifecycle_.Evaluate(&o, shard.names, now);  // also for anomalous orders: every type is recorded
  for (size_t i = before; i < o.anomalies.size(); ++i) {
    for (size_t t = 0; t < kNumAnomalyTypes; ++t) {
      if (o.anomalies[i].type == kAnomalyTypes[t]) {
        stats_.anomalies[t].fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  // Written again only when the judgement changed it (Resolve marks it too).
  if (o.anomalies.size() != before || o.current_state_unix_nanos != state_at ||
      o.deadline_unix_nanos != deadline || o.current_state != state) {
    MarkDirty(shard, e);
  }
  if (!o.anomalies.empty()) {
    if (o.resolution != v1::Order::ANOMALOUS) Resolve(shard, e, v1::Order::ANOMALOUS, now);
    Recount(e, now);
    return;
  }
  if (o.resolution == v1::Order::ACTIVE) {
    const OrdersConfig& c = lifecycle_.config();
    const absl::Time last = absl::FromUnixNanos(o.last_arrival_unix_nanos);
    if (now >= last + c.grace_period && lifecycle_.TerminalId(o.current_state)) {
      const bool keep = o.force_keep || BaselineKeeps(o.order_id);
      Resolve(shard, e, keep ? v1::Order::HEALTHY_KEPT : v1::Order::HEALTHY_RELEASED, now);
    } else if (now >= last + c.max_order_age) {
      stats_.orders_expired.fetch_add(1, std::memory_order_relaxed);
      Resolve(shard, e, v1::Order::EXPIRED, now);
    } else if (o.states.empty() && now >= last + c.read_only_hold_time) {
      stats_.orders_read_only.fetch_add(1, std::memory_order_relaxed);
      Resolve(shard, e, v1::Order::READ_ONLY, now);
    }
  }
  Recount(e, now);
}

void OrderTracker::Resolve(Shard& shard, Entry* e, v1::Order::Resolution resolution,
                           absl::Time now) {
  OrderRecord& o = e->record;
  const bool was_active = o.resolution == v1::Order::ACTIVE;
  o.resolution = resolution;
  o.resolved_unix_nanos = absl::ToUnixNanos(now);
  MarkDirty(shard, e);
  e->retain_until = now + lifecycle_.config().resolved_retention;
  if (was_active) {
    stats_.orders_tracked.fetch_sub(1, std::memory_order_relaxed);
    stats_.orders_resolved.fetch_add(1, std::memory_order_relaxed);
  }
  CountResolved(shard, e);
  if (e->holding()) ReleaseHeld(shard, e, KeepsTraces(o), ReleaseCause::kVerdict);
}

absl::Time OrderTracker::NextCheckOf(const OrderRecord& o, absl::Time now) const {
  const OrdersConfig& c = lifecycle_.config();
  absl::Time next = absl::InfiniteFuture();
  auto consider = [&](absl::Time t) {
    if (t > now && t < next) next = t;
  };
  if (Open(o)) {
    const absl::Time last = absl::FromUnixNanos(o.last_arrival_unix_nanos);
    consider(last + c.grace_period);  // transitions judged, terminal orders resolved
    if (o.deadline_unix_nanos != 0) {
      const absl::Time deadline = absl::FromUnixNanos(o.deadline_unix_nanos);
      consider(deadline);                   // overdue
      consider(deadline + c.grace_period);  // STALLED
    }
    if (!o.states.empty()) {
      bool initial = false;
      for (const OrderRecord::State& s : o.states) initial |= s.state == 0;  // config.states[0]
      if (!initial) {
        consider(absl::FromUnixNanos(o.first_arrival_unix_nanos) + c.orphan_window);
      }
    }
    if (o.resolution == v1::Order::ACTIVE) {
      consider(last + c.max_order_age);
      if (o.states.empty()) consider(last + c.read_only_hold_time);
    }
  }
  return next;
}

void OrderTracker::Schedule(Shard& shard, Entry* e, absl::Time now) {
  Unpack(shard, e);  // its next check depends on its states
  absl::Time next = NextCheckOf(e->record, now);
  if (!e->holds.empty()) {
    const absl::Time release = e->oldest_hold() + lifecycle_.config().max_hold_time;
    if (release > now && release < next) next = release;
    if (release <= now) next = now;  // due now: the next Check releases them
  }
  if (next == absl::InfiniteFuture() || next >= e->scheduled) return;
  e->scheduled = next;
  shard.due.push(Shard::Due{next, OrderKey(e->record.order_id)});
}

void OrderTracker::ScheduleHoldTime(Shard& shard, Entry* e, absl::Time now) {
  // Unless its next check comes later than this hold's max_hold_time, it stands.
  if (e->scheduled <= now + lifecycle_.config().max_hold_time) return;
  if (e->packed == nullptr) {
    Schedule(shard, e, now);
    return;
  }
  // Packed: its next check is not earlier than the one scheduled (nothing changed but a hold),
  // so the hold's release is the earliest; its states are not needed to know that.
  const absl::Time release = std::max(now, e->oldest_hold() + lifecycle_.config().max_hold_time);
  e->scheduled = release;
  shard.due.push(Shard::Due{release, OrderKey(e->record.order_id)});
}

void OrderTracker::Recount(Entry* e, absl::Time now) {
  const OrderRecord& o = e->record;
  int state = -1;
  if (o.resolution == v1::Order::ACTIVE && lifecycle_.KnownId(o.current_state)) {
    state = o.current_state;  // configured states are numbered as in config.states
  }
  const bool overdue =
      state >= 0 && o.deadline_unix_nanos != 0 && absl::ToUnixNanos(now) > o.deadline_unix_nanos;
  if (state == e->counted_state && overdue == e->counted_overdue) return;
  if (e->counted_state >= 0) {
    stats_.in_state[e->counted_state].fetch_sub(1, std::memory_order_relaxed);
    if (e->counted_overdue)
      stats_.overdue[e->counted_state].fetch_sub(1, std::memory_order_relaxed);
  }
  if (state >= 0) {
    stats_.in_state[state].fetch_add(1, std::memory_order_relaxed);
    if (overdue) stats_.overdue[state].fetch_add(1, std::memory_order_relaxed);
  }
  e->counted_state = state;
  e->counted_overdue = overdue;
}

bool OrderTracker::BaselineKeeps(const std::string& order_id) const {
  return static_cast<double>(StableHash(order_id) % 10000) <
         lifecycle_.config().baseline_percentage * 100;
}

std::string OrderTracker::Reason(const Entry& e) const {
  std::vector<std::string> types;
  for (const OrderRecord::Anomaly& a : e.record.anomalies) types.push_back(a.type);
  return absl::StrJoin(types, ",");
}

void OrderTracker::Annotate(const Entry& e, std::vector<SpanRecord>* spans) const {
  const std::string reason = Reason(e);
  if (reason.empty()) return;
  for (SpanRecord& s : *spans) sampling::AppendStringAttribute(kAnomalyAttribute, reason, &s.span);
}

void OrderTracker::RecordKept(Shard& shard, Entry* e, absl::string_view trace_id) {
  Unpack(shard, e);
  OrderRecord& o = e->record;
  const TraceIdBytes id = TraceIdBytes::Of(trace_id);
  if (o.kept_trace_ids.size() < options_.config.max_traces_per_order &&
      !Contains(o.kept_trace_ids, id)) {
    o.kept_trace_ids.push_back(id);
    MarkDirty(shard, e);
  }
}

void OrderTracker::Unpin(Shard& shard, int64_t arrival) {
  ReleasePin(shard, arrival);
  held_in_journal_ -= 1;
  stats_.traces_held_in_journal = static_cast<uint64_t>(std::max<int64_t>(0, held_in_journal_));
}

bool OrderTracker::ReadFromJournal(const HeldRef& h, TraceSpans* out) {
  const absl::string_view trace_id = h.trace_id.view();
  out->trace_id = std::string(trace_id);
  for (const JournalRef& ref : h.refs) {
    absl::StatusOr<std::vector<TraceSpans>> read = options_.read_journal(ref, trace_id);
    if (!read.ok()) {
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Warning) << "order tracker: reading held trace " << ToHex(trace_id)
                      << " from the journal: " << read.status();
      return false;
    }
    for (TraceSpans& t : *read) {
      if (t.trace_id != trace_id) continue;
      for (SpanRecord& r : t.spans) out->spans.push_back(std::move(r));
    }
  }
  return true;
}

void OrderTracker::ReleaseHeld(Shard& shard, Entry* e, bool keep, ReleaseCause cause) {
  Unpack(shard, e);
  if (e->holds.empty()) return;
  const OrderRecord& o = e->record;
  const std::string prefix = HoldPrefix(o.order_id);
  std::vector<std::string> values;  // of held traces not written yet, when kept
  bool any_on_disk = false;
  {
    std::lock_guard<std::mutex> lock(holds_mu_);  // waits for a batch being written
    auto end = std::remove_if(pending_holds_.begin(), pending_holds_.end(), [&](PendingHold& h) {
      if (!absl::StartsWith(h.key, prefix)) return false;
      if (keep) values.push_back(std::move(h.value));
      return true;
    });
    pending_holds_.erase(end, pending_holds_.end());
    for (HeldRef& h : e->holds) {
      if (h.in_journal) continue;
      any_on_disk = true;
      pending_hold_deletes_.push_back({h.Key(o.order_id), "", true});
    }
  }
  size_t spans = 0;
  for (const HeldRef& h : e->holds) spans += h.spans;
  if (keep) {
    const char* policy = o.resolution == v1::Order::ANOMALOUS ? "order_anomaly" : "order_kept";
    auto deliver = [&](KeptTrace&& k) {
      k.policy = policy;
      Annotate(*e, &k.spans);
      RecordKept(shard, e, k.trace_id);
      stats_.traces_kept.fetch_add(1, std::memory_order_relaxed);
      shard.to_deliver.push_back(std::move(k));
    };
    if (any_on_disk) {
      absl::Status s =
          options_.hold_table->Scan(prefix, [&](absl::string_view, absl::string_view v) {
            values.emplace_back(v);
            return true;
          });
      if (!s.ok()) {
        stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
        TK_LOG(Warning) << "order " << o.order_id << ": reading held traces: " << s;
      }
    }
    for (const std::string& v : values) {
      KeptTrace k;
      if (!DecodeHeldTrace(v, &k)) {
        stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      deliver(std::move(k));
    }
    for (const HeldRef& h : e->holds) {
      if (!h.in_journal) continue;
      TraceSpans t;
      if (!ReadFromJournal(h, &t)) continue;
      deliver(KeptTrace{std::move(t.trace_id), "", std::move(t.spans)});
    }
  } else {
    stats_.traces_released_unkept.fetch_add(e->holds.size(), std::memory_order_relaxed);
    stats_.spans_released_unkept.fetch_add(spans, std::memory_order_relaxed);
    if (cause == ReleaseCause::kNoSpace) {
      stats_.traces_released_no_space.fetch_add(e->holds.size(), std::memory_order_relaxed);
    } else if (cause == ReleaseCause::kHoldTime) {
      stats_.traces_released_hold_time.fetch_add(e->holds.size(), std::memory_order_relaxed);
    }
  }
  for (const HeldRef& h : e->holds) {
    if (h.in_journal) Unpin(shard, h.arrival);
  }
  total_held_traces_ -= static_cast<int64_t>(e->holds.size());
  total_held_bytes_ -= static_cast<int64_t>(e->held_bytes);
  stats_.traces_held = static_cast<uint64_t>(std::max<int64_t>(0, total_held_traces_.load()));
  stats_.held_bytes = static_cast<uint64_t>(std::max<int64_t>(0, total_held_bytes_.load()));
  // Their memory too: a resolved order stays in memory a while, holding nothing.
  std::vector<HeldRef>().swap(e->holds);
  e->held_bytes = 0;
  e->oldest_hold_nanos = INT64_MAX;
  MarkDirty(shard, e);
}

sampling::HookVerdict OrderTracker::OnDecided(sampling::PendingTrace& trace, bool sampled) {
  sampling::HookVerdict verdict;
  if (trace.linked_keys.empty()) return verdict;
  // An order that keeps its traces wins; otherwise the trace is held under its first active
  // order. Each order is looked at under its own shard's lock, one at a time.
  const std::string* active_id = nullptr;
  for (const std::string& id : trace.linked_keys) {
    const size_t hash = IdHash(id);
    Shard& shard = ShardOfHash(hash);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.orders.find(id, hash);
    if (it == shard.orders.end()) continue;
    Entry& e = it->second;
    if (KeepsTraces(e.record)) {
      Unpack(shard, &e);
      // The sampler adds the annotation once it has the span bytes (they may be in the journal).
      if (std::string reason = Reason(e); !reason.empty()) {
        verdict.annotations.emplace_back(kAnomalyAttribute, std::move(reason));
      }
      RecordKept(shard, &e, trace.trace_id);
      stats_.traces_kept.fetch_add(1, std::memory_order_relaxed);
      verdict.action = sampling::HookVerdict::kKeep;
      verdict.reason = e.record.resolution == v1::Order::ANOMALOUS ? "order_anomaly" : "order_kept";
      return verdict;
    }
    if (e.record.resolution == v1::Order::ACTIVE && active_id == nullptr) {
      // One order (nearly always): held under the lock already taken.
      if (trace.linked_keys.size() == 1) return Hold(shard, &e, id, trace, sampled);
      active_id = &id;
    }
  }
  if (active_id == nullptr) return verdict;
  Shard& shard = ShardOf(*active_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.orders.find(*active_id);
  if (it == shard.orders.end() || it->second.record.resolution != v1::Order::ACTIVE) {
    return verdict;  // resolved meanwhile, healthy (an anomaly would have kept it above)
  }
  return Hold(shard, &it->second, *active_id, trace, sampled);
}

bool OrderTracker::HoldsJournalReferences() const {
  return options_.read_journal && lifecycle_.config().hold_in_journal > absl::ZeroDuration();
}

sampling::HookVerdict OrderTracker::Hold(Shard& shard, Entry* e, const std::string& order_id,
                                         sampling::PendingTrace& trace, bool sampled) {
  // A packed order takes a hold without being unpacked: the new hold waits in `holds` beside the
  // packed ones (Unpack puts those first). With the default decision_wait (30 s), every trace of
  // a quiet order is decided after the order was packed.
  sampling::HookVerdict verdict;
  const std::string* const active_id = &order_id;
  if (sampled) {  // the policies keep it now; remember it as kept
    RecordKept(shard, e, trace.trace_id);
    return verdict;
  }
  const absl::Time now = options_.clock->Now();
  const uint64_t seq = ++hold_sequence_;
  if (HoldsJournalReferences() && trace.all_journaled && !trace.journal_refs.empty()) {
    // The journal has every span of it already: hold a reference, write nothing.
    HeldRef h;
    h.trace_id = TraceIdBytes::Of(trace.trace_id);
    h.seq = seq;
    h.spans = static_cast<uint32_t>(trace.SpanCount());
    h.bytes = static_cast<uint32_t>(trace.span_bytes);
    h.in_journal = true;
    h.refs.assign(trace.journal_refs.begin(), trace.journal_refs.end());
    h.arrival = absl::ToUnixNanos(trace.first_arrival);
    shard.journal_arrivals[PinKey(h.arrival)]++;
    // One entry in the spill queue per order: CollectSpills queues it again for later holds.
    if (!e->spill_queued) {
      e->spill_queued = true;
      shard.journal_queue.emplace_back(h.arrival, *active_id);
    }
    e->held_bytes += h.bytes;
    total_held_traces_ += 1;
    total_held_bytes_ += h.bytes;
    held_in_journal_ += 1;
    e->holds.push_back(std::move(h));
    e->HeldAt(now);
    stats_.traces_held = static_cast<uint64_t>(total_held_traces_.load());
    stats_.held_bytes = static_cast<uint64_t>(total_held_bytes_.load());
    stats_.traces_held_in_journal = static_cast<uint64_t>(held_in_journal_.load());
    ScheduleHoldTime(shard, e, now);
    trace.spans.clear();
    verdict.action = sampling::HookVerdict::kHold;
    return verdict;
  }
  if (AnyInJournalOnly(trace.spans)) {
    absl::Status read = options_.read_span_bytes
                            ? options_.read_span_bytes(&trace.spans)
                            : absl::FailedPreconditionError("no reader for journaled span bytes");
    if (!read.ok()) {
      // Not held: the policies' decision stands (the sampler drops what it cannot read back).
      TK_LOG(Error) << "order " << *active_id << ": trace " << ToHex(trace.trace_id)
                    << " not held, its spans cannot be read back: " << read;
      return verdict;
    }
  }
  TraceSpans as_spans;
  as_spans.trace_id = trace.trace_id;
  as_spans.spans = std::move(trace.spans);
  std::string value = EncodeHeldTrace(as_spans, now);
  trace.spans = std::move(as_spans.spans);
  HeldRef& held = e->holds.emplace_back();
  held.trace_id = TraceIdBytes::Of(trace.trace_id);
  held.seq = seq;
  std::string key = held.Key(*active_id);
  held.spans = static_cast<uint32_t>(trace.spans.size());
  held.bytes = static_cast<uint32_t>(value.size());
  e->held_bytes += value.size();
  e->HeldAt(now);
  total_held_traces_ += 1;
  total_held_bytes_ += static_cast<int64_t>(value.size());
  stats_.traces_held = static_cast<uint64_t>(total_held_traces_.load());
  stats_.held_bytes = static_cast<uint64_t>(total_held_bytes_.load());
  ScheduleHoldTime(shard, e, now);
  {
    std::lock_guard<std::mutex> holds_lock(holds_mu_);
    pending_holds_.push_back(PendingHold{std::move(key), std::move(value), absl::ToUnixNanos(now),
                                         static_cast<uint32_t>(trace.spans.size())});
  }
  trace.spans.clear();
  verdict.action = sampling::HookVerdict::kHold;
  return verdict;
}

void OrderTracker::OnDecisionsDone() { FlushHolds(); }

void OrderTracker::FlushHolds() {
  std::lock_guard<std::mutex> lock(holds_mu_);
  if (pending_holds_.empty() && pending_hold_deletes_.empty()) return;
  std::vector<storage::KvWrite> writes;
  writes.reserve(pending_holds_.size() + pending_hold_deletes_.size());
  writes.reserve(2 * (pending_holds_.size() + pending_hold_deletes_.size()));
  for (PendingHold& h : pending_holds_) {
    writes.push_back(
        {HoldMetaKey(h.key),
         HoldMetaValue(h.held_unix_nanos, h.spans, static_cast<uint32_t>(h.value.size())), false});
    writes.push_back({std::move(h.key), std::move(h.value)});
  }
  for (storage::KvWrite& d : pending_hold_deletes_) {
    writes.push_back({HoldMetaKey(d.key), "", true});
    writes.push_back(std::move(d));
  }
  // Written under the lock: a release meanwhile waits, then finds these traces on disk.
  absl::Status s = options_.hold_table->Write(writes);
  pending_holds_.clear();
  pending_hold_deletes_.clear();
  if (!s.ok()) {
    if (stats_.store_errors.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
      TK_LOG(Warning) << "order tracker: writing " << writes.size()
                      << " held traces / releases: " << s;
    }
  }
}

void OrderTracker::Check() {
  const absl::Time now = options_.clock->Now();
  check_started_.store(absl::ToUnixNanos(now));
  const OrdersConfig& c = lifecycle_.config();
  const size_t limit = c.max_resolved_in_memory;
  KeptTraces kept;
  std::vector<std::pair<Shard*, int64_t>> spilled;
  std::vector<Spill> spills;
  for (auto& shard_ptr : shards_) {
    Shard& shard = *shard_ptr;
    std::lock_guard<std::mutex> flushing(shard.flush_mu);
    Flush flush;
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      while (!shard.due.empty() && shard.due.top().at <= now) {
        Shard::Due d = shard.due.top();
        shard.due.pop();
        auto it = shard.orders.find(d.order_id);
        if (it == shard.orders.end() || it->second.scheduled != d.at) continue;  // stale
        Entry* e = &it->second;
        e->scheduled = absl::InfiniteFuture();
        stats_.orders_checked.fetch_add(1, std::memory_order_relaxed);
        Unpack(shard, e);
        if (Open(e->record)) Judge(shard, e, now);
        if (!e->holds.empty() && now >= e->oldest_hold() + c.max_hold_time) {
          ReleaseHeld(shard, e, /*keep=*/false, ReleaseCause::kHoldTime);
        }
        Recount(e, now);
        Schedule(shard, e, now);
      }
      CollectSpills(shard, now, &spills);
      PrepareFlush(shard, absl::ToUnixNanos(now - c.hold_in_journal), &flush);
      Compact(shard, now);
    }
    const bool flushed = WriteFlush(flush).ok();
    std::lock_guard<std::mutex> lock(shard.mu);
    FinishFlush(shard, flushed, &flush);
    // Resolved orders leave memory after resolved_retention, or, beyond max_resolved_in_memory,
    // oldest first (their records are on disk: flushed above). Orders still in use stay.
    for (size_t budget = shard.resolved.size(); budget > 0 && !shard.resolved.empty(); --budget) {
      const bool expired = shard.resolved.front().first <= now;
      const bool over_limit =
          resolved_in_memory_.load(std::memory_order_relaxed) > static_cast<int64_t>(limit);
      if (!expired && !over_limit) break;
      std::string id = std::move(shard.resolved.front().second);
      shard.resolved.pop_front();
      auto it = shard.orders.find(id);
      if (it == shard.orders.end() || !it->second.counted_resolved) continue;
      Entry& e = it->second;
      if (e.record.resolution == v1::Order::ACTIVE) {  // active again
        e.counted_resolved = false;
        resolved_in_memory_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      if (e.holding() || e.dirty || e.scheduled != absl::InfiniteFuture()) {
        // Still in use: look again after another retention period.
        e.retain_until = std::max(e.retain_until, now + c.resolved_retention);
        shard.resolved.emplace_back(e.retain_until, std::move(id));
        continue;
      }
      if (!expired) stats_.resolved_evicted.fetch_add(1, std::memory_order_relaxed);
      resolved_in_memory_.fetch_sub(1, std::memory_order_relaxed);
      if (e.packed != nullptr) stats_.orders_compact.fetch_sub(1, std::memory_order_relaxed);
      shard.orders.erase(it);
    }
    for (KeptTrace& k : shard.to_deliver) kept.push_back(std::move(k));
    shard.to_deliver.clear();
  }
  SpillCollected(&spills, now, &spilled);
  EnforceHoldSpace(now, &kept);
  FlushHolds();
  // The spilled holds are in order_hold now: the journal may forget their entries.
  for (const auto& [shard, arrival] : spilled) {
    std::lock_guard<std::mutex> lock(shard->mu);
    Unpin(*shard, arrival);
  }
  PurgeResolved(now);
  if (!kept.empty()) Consume(std::move(kept));
  check_started_.store(INT64_MAX);
}

struct OrderTracker::Spill {
  Shard* shard;
  std::string order_id;
  uint64_t seq;  // the hold's
  std::vector<JournalRef> refs;
  int64_t arrival;
  uint32_t spans;
  TraceIdBytes trace_id;
  std::string value;  // EncodeHeldTrace's, once read
};

void OrderTracker::CollectSpills(Shard& shard, absl::Time now, std::vector<Spill>* spills) {
  const int64_t cutoff = absl::ToUnixNanos(now - lifecycle_.config().hold_in_journal);
  std::vector<std::pair<int64_t, std::string>> again;  // orders with later holds in the journal
  while (!shard.journal_queue.empty() && shard.journal_queue.front().first <= cutoff) {
    std::string id = std::move(shard.journal_queue.front().second);
    shard.journal_queue.pop_front();
    auto it = shard.orders.find(id);
    if (it == shard.orders.end() || !it->second.spill_queued) continue;
    Entry& e = it->second;
    e.spill_queued = false;
    Unpack(shard, &e);
    int64_t later = INT64_MAX;
    for (const HeldRef& h : e.holds) {
      if (!h.in_journal || h.refs.empty()) continue;
      if (h.arrival > cutoff) {
        later = std::min(later, h.arrival);
        continue;
      }
      spills->push_back(Spill{
          &shard, id, h.seq, {h.refs.begin(), h.refs.end()}, h.arrival, h.spans, h.trace_id, {}});
    }
    if (later != INT64_MAX) {
      e.spill_queued = true;
      again.emplace_back(later, std::move(id));
    }
  }
  // Queued again by their next hold's arrival: the queue stays in arrival order.
  std::sort(again.begin(), again.end());
  for (auto& a : again) {
    auto pos = std::upper_bound(
        shard.journal_queue.begin(), shard.journal_queue.end(), a.first,
        [](int64_t t, const std::pair<int64_t, std::string>& q) { return t < q.first; });
    shard.journal_queue.insert(pos, std::move(a));
  }
}

void OrderTracker::SpillCollected(std::vector<Spill>* spills, absl::Time now,
                                  std::vector<std::pair<Shard*, int64_t>>* spilled) {
  if (spills->empty()) return;
  // In journal order, so that the traces of one record are read together: a request carries the
  // traces of many orders, held in different shards.
  std::sort(spills->begin(), spills->end(), [](const Spill& a, const Spill& b) {
    return std::tie(a.refs[0].segment, a.refs[0].offset) <
           std::tie(b.refs[0].segment, b.refs[0].offset);
  });
  // The records read, decoded, by place; the oldest leave once the sorted walk is past them.
  struct Record {
    JournalRef ref;
    std::vector<TraceSpans> traces;
    bool ok = false;
  };
  std::deque<Record> records;
  auto record = [&](const JournalRef& ref) -> Record& {
    for (Record& r : records) {
      if (r.ref == ref) return r;
    }
    if (records.size() >= 16) records.pop_front();
    Record& r = records.emplace_back();
    r.ref = ref;
    absl::StatusOr<std::vector<TraceSpans>> read = options_.read_journal(ref, {});
    if (read.ok()) {
      r.traces = std::move(*read);
      r.ok = true;
    } else {
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Warning) << "order tracker: reading held traces from the journal: " << read.status();
    }
    return r;
  };
  for (Spill& sp : *spills) {
    const absl::string_view trace_id = sp.trace_id.view();
    TraceSpans t;
    t.trace_id = std::string(trace_id);
    bool ok = true;
    for (const JournalRef& ref : sp.refs) {
      Record& r = record(ref);
      if (!r.ok) {
        ok = false;
        break;
      }
      for (const TraceSpans& part : r.traces) {
        if (part.trace_id == trace_id)
          t.spans.insert(t.spans.end(), part.spans.begin(), part.spans.end());
      }
    }
    if (ok) sp.value = EncodeHeldTrace(t, now);  // else it stays in the journal; counted
  }
  records.clear();
  for (Spill& sp : *spills) {
    if (sp.value.empty()) continue;
    Shard& shard = *sp.shard;
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.orders.find(sp.order_id);
    if (it == shard.orders.end()) continue;  // released meanwhile
    Unpack(shard, &it->second);
    for (HeldRef& h : it->second.holds) {
      if (h.seq != sp.seq || !h.in_journal) continue;
      {
        std::lock_guard<std::mutex> holds_lock(holds_mu_);
        pending_holds_.push_back(
            PendingHold{h.Key(sp.order_id), std::move(sp.value), h.arrival, h.spans});
      }
      h.in_journal = false;
      h.refs.clear();
      h.refs.shrink_to_fit();
      spilled->emplace_back(&shard, h.arrival);
      stats_.traces_spilled.fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
}

absl::Time OrderTracker::LowWaterMark() {
  int64_t mark = INT64_MAX;
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    if (!shard->journal_arrivals.empty()) {
      mark = std::min(mark, shard->journal_arrivals.begin()->first);
    }
  }
  return mark == INT64_MAX ? absl::InfiniteFuture() : absl::FromUnixNanos(mark);
}

void OrderTracker::EnforceHoldSpace(absl::Time now, KeptTraces* kept) {
  const OrdersConfig& c = lifecycle_.config();
  auto over = [&] {
    return total_held_traces_.load() > static_cast<int64_t>(c.max_held_traces) ||
           total_held_bytes_.load() > static_cast<int64_t>(c.max_held_mib << 20);
  };
  if (!over()) {
    std::vector<std::pair<absl::Time, std::string>>().swap(release_candidates_);  // its memory too
    next_release_candidate_ = 0;
    return;
  }
  uint64_t released = 0;
  bool walked = false;
  while (over()) {
    if (next_release_candidate_ == release_candidates_.size()) {
      if (walked) break;  // every order holding at the walk is released
      walked = true;
      release_candidates_.clear();
      next_release_candidate_ = 0;
      for (auto& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard->mu);
        for (const auto& [id, e] : shard->orders) {
          if (e.holding()) release_candidates_.emplace_back(e.oldest_hold(), id.str());
        }
      }
      std::sort(release_candidates_.begin(), release_candidates_.end());
      continue;
    }
    const auto& [at, id] = release_candidates_[next_release_candidate_++];
    Shard& shard = ShardOf(id);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.orders.find(id);
    // Released since (by its verdict or its hold time), or released and holding anew: its
    // holds are younger than the rest of the list, the next walk places them.
    if (it == shard.orders.end() || !it->second.holding() || it->second.oldest_hold() != at) {
      continue;
    }
    Unpack(shard, &it->second);
    released += it->second.holds.size();
    ReleaseHeld(shard, &it->second, /*keep=*/false, ReleaseCause::kNoSpace);
    for (KeptTrace& k : shard.to_deliver) kept->push_back(std::move(k));
    shard.to_deliver.clear();
  }
  // A full hold space lasts while its load does: one line a minute, with the count since.
  released_since_log_ += released;
  if (released_since_log_ > 0 && now >= next_space_log_) {
    TK_LOG(Warning) << "order tracker: hold space full (orders.max_held_traces "
                    << c.max_held_traces << ", orders.max_held_mib " << c.max_held_mib
                    << "): " << released_since_log_
                    << " held traces of unresolved orders released unkept since the last report";
    released_since_log_ = 0;
    next_space_log_ = now + absl::Minutes(1);
  }
}

void OrderTracker::PrepareFlush(Shard& shard, int64_t deferred_cutoff, Flush* f) {
  // Deferred records whose pin is old enough join the queue.
  while (!shard.deferred.empty() && shard.deferred.front().first <= deferred_cutoff) {
    auto it = shard.orders.find(shard.deferred.front().second);
    if (it != shard.orders.end()) {
      Entry& e = it->second;
      if (e.dirty && !e.queued && e.pinned_arrival == shard.deferred.front().first) {
        e.queued = true;
        shard.dirty.push_back(std::move(shard.deferred.front().second));
      }
    }
    shard.deferred.pop_front();
  }
  f->writes.reserve(shard.dirty.size());
  for (const std::string& id : shard.dirty) {
    auto it = shard.orders.find(id);
    if (it == shard.orders.end() || !it->second.dirty) continue;
    Entry& e = it->second;
    Unpack(shard, &e);
    storage::KvWrite& write = f->writes.emplace_back();
    write.key = id;
    e.record.AppendSerialized(shard.names, &write.value);
    if (e.pinned_arrival != 0) {
      f->pins.emplace_back(id, e.pinned_arrival);
      e.pinned_arrival = 0;
    }
    if (options_.index_table != nullptr) {
      OrderIndexEntries after = IndexEntriesOf(e.record);
      for (storage::KvWrite& w : OrderIndexWrites(e.indexed, after)) {
        f->index_writes.push_back(std::move(w));
      }
      f->previous_index.emplace_back(id, std::move(e.indexed));
      e.indexed = std::move(after);
    }
    e.dirty = false;
    e.queued = false;
  }
  shard.dirty.clear();
}

absl::Status OrderTracker::WriteFlush(const Flush& f) {
  if (f.writes.empty()) return absl::OkStatus();
  absl::Status s = f.index_writes.empty() ? options_.orders_table->Write(f.writes)
                                          : options_.orders_table->WriteWith(
                                                f.writes, options_.index_table, f.index_writes);
  if (!s.ok()) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "order tracker: writing " << f.writes.size() << " records: " << s;
  } else if (options_.on_records_written) {
    options_.on_records_written(f.writes);
  }
  return s;
}

void OrderTracker::FinishFlush(Shard& shard, bool written, Flush* f) {
  if (!written) {
    UndoFlush(shard, f);
    return;
  }
  // On disk: the journal may forget the spans that changed them.
  for (const auto& [id, arrival] : f->pins) ReleasePin(shard, arrival);
}

void OrderTracker::UndoFlush(Shard& shard, Flush* f) {
  for (auto& [id, previous] : f->previous_index) {
    auto it = shard.orders.find(id);
    if (it != shard.orders.end()) it->second.indexed = std::move(previous);
  }
  for (const storage::KvWrite& w : f->writes) {
    auto it = shard.orders.find(w.key);
    if (it != shard.orders.end()) MarkDirty(shard, &it->second);
  }
  // Still not on disk: the journal keeps their spans until a write succeeds.
  for (const auto& [id, arrival] : f->pins) {
    auto it = shard.orders.find(id);
    if (it != shard.orders.end() && it->second.pinned_arrival == 0) {
      it->second.pinned_arrival = arrival;
    } else {
      ReleasePin(shard, arrival);
    }
  }
}

void OrderTracker::FlushShard(Shard& shard) {
  std::lock_guard<std::mutex> flushing(shard.flush_mu);
  Flush f;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    PrepareFlush(shard, INT64_MAX, &f);
  }
  const bool written = WriteFlush(f).ok();
  std::lock_guard<std::mutex> lock(shard.mu);
  FinishFlush(shard, written, &f);
}

void OrderTracker::PurgeResolved(absl::Time now) {
  const absl::Duration retention = lifecycle_.config().record_retention;
  if (retention == absl::ZeroDuration() || now < next_purge_) return;
  next_purge_ = now + std::min(absl::Hours(1), retention);
  std::vector<storage::KvWrite> deletes;
  std::vector<storage::KvWrite> index_deletes;
  absl::Status s =
      options_.orders_table->Scan("", [&](absl::string_view key, absl::string_view value) {
        v1::Order o;
        if (!o.ParseFromArray(value.data(), static_cast<int>(value.size()))) return true;
        if (o.resolution() == v1::Order::ACTIVE ||
            absl::FromUnixNanos(o.resolved_unix_nanos()) + retention > now) {
          return true;
        }
        Shard& shard = ShardOf(o.order_id());
        std::lock_guard<std::mutex> lock(shard.mu);
        auto it = shard.orders.find(o.order_id());
        if (it != shard.orders.end()) {
          Entry& e = it->second;
          if (e.holding() || e.dirty || e.record.resolution == v1::Order::ACTIVE) {
            return true;  // still in use
          }
          if (e.counted_resolved) resolved_in_memory_.fetch_sub(1, std::memory_order_relaxed);
          if (e.packed != nullptr) stats_.orders_compact.fetch_sub(1, std::memory_order_relaxed);
          shard.orders.erase(it);
        }
        deletes.push_back({std::string(key), "", true});
        if (options_.index_table != nullptr) {
          for (storage::KvWrite& w : OrderIndexWrites(&o, nullptr)) {
            index_deletes.push_back(std::move(w));
          }
        }
        return true;
      });
  if (s.ok() && !deletes.empty()) {
    s = index_deletes.empty()
            ? options_.orders_table->Write(deletes)
            : options_.orders_table->WriteWith(deletes, options_.index_table, index_deletes);
  }
  if (!s.ok()) {
    stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "order tracker: deleting old records: " << s;
    return;
  }
  stats_.records_purged.fetch_add(deletes.size(), std::memory_order_relaxed);
}

void OrderTracker::Consume(KeptTraces&& kept) {
  absl::Status s = options_.consumer->Consume(std::move(kept));
  if (!s.ok()) {
    TK_LOG(Warning) << "order tracker: kept traces not fully handed downstream: " << s;
  }
}

absl::StatusOr<v1::Order> OrderTracker::GetOrder(const std::string& order_id) {
  Shard& shard = ShardOf(order_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry* e = FindOrLoad(shard, order_id, /*create=*/false);
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("order \"", order_id, "\" not seen"));
  return e->record.ToProto(shard.names);
}

absl::StatusOr<OrderPage> OrderTracker::ListOrders(const OrderQuery& q) {
  for (auto& shard : shards_) FlushShard(*shard);  // every record is on disk once flushed
  return ListOrderRecords(options_.orders_table, options_.index_table, q, options_.clock->Now());
}

absl::Status OrderTracker::ForceKeep(const std::string& order_id) {
  KeptTraces kept;
  {
    Shard& shard = ShardOf(order_id);
    std::lock_guard<std::mutex> lock(shard.mu);
    Entry* e = FindOrLoad(shard, order_id, /*create=*/false);
    if (e == nullptr) return absl::NotFoundError(absl::StrCat("order \"", order_id, "\" not seen"));
    e->record.force_keep = true;
    MarkDirty(shard, e);
    e->retain_until =
        std::max(e->retain_until, options_.clock->Now() + lifecycle_.config().resolved_retention);
    ReleaseHeld(shard, e, /*keep=*/true, ReleaseCause::kVerdict);
    kept.swap(shard.to_deliver);
  }
  FlushShard(ShardOf(order_id));
  FlushHolds();
  if (!kept.empty()) Consume(std::move(kept));
  return absl::OkStatus();
}

size_t OrderTracker::ForgetActive(const std::function<bool(const std::string&)>& which) {
  size_t forgotten = 0;
  std::vector<storage::KvWrite> deletes;
  std::vector<storage::KvWrite> index_deletes;
  for (auto& shard_ptr : shards_) {
    Shard& shard = *shard_ptr;
    std::lock_guard<std::mutex> flushing(shard.flush_mu);
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto it = shard.orders.begin(); it != shard.orders.end();) {
      Entry& e = it->second;
      if (!which(it->first.str())) {
        ++it;
        continue;
      }
      if (e.record.resolution != v1::Order::ACTIVE) {
        // Written and idle: leaves memory; whoever judges it next reads the latest record.
        if (!e.dirty && !e.holding() && e.scheduled == absl::InfiniteFuture()) {
          if (e.counted_resolved) resolved_in_memory_.fetch_sub(1, std::memory_order_relaxed);
          if (e.packed != nullptr) stats_.orders_compact.fetch_sub(1, std::memory_order_relaxed);
          shard.orders.erase(it++);
        } else {
          ++it;
        }
        continue;
      }
      if (e.packed != nullptr) stats_.orders_compact.fetch_sub(1, std::memory_order_relaxed);
      UnpackOrder(e.packed, &e.record, &e.holds);  // its holds are released below
      if (!e.holds.empty()) {
        const std::string prefix = HoldPrefix(it->first.view());
        std::lock_guard<std::mutex> holds_lock(holds_mu_);
        pending_holds_.erase(
            std::remove_if(pending_holds_.begin(), pending_holds_.end(),
                           [&](const PendingHold& h) { return absl::StartsWith(h.key, prefix); }),
            pending_holds_.end());
        for (const HeldRef& h : e.holds) {
          if (h.in_journal) {
            Unpin(shard, h.arrival);
          } else {
            pending_hold_deletes_.push_back({h.Key(it->first.view()), "", true});
          }
        }
        total_held_traces_ -= static_cast<int64_t>(e.holds.size());
        total_held_bytes_ -= static_cast<int64_t>(e.held_bytes);
      }
      if (e.counted_state >= 0) {
        stats_.in_state[e.counted_state].fetch_sub(1, std::memory_order_relaxed);
        if (e.counted_overdue) {
          stats_.overdue[e.counted_state].fetch_sub(1, std::memory_order_relaxed);
        }
      }
      if (e.counted_resolved) resolved_in_memory_.fetch_sub(1, std::memory_order_relaxed);
      stats_.orders_tracked.fetch_sub(1, std::memory_order_relaxed);
      deletes.push_back({it->first.str(), "", true});
      if (options_.index_table != nullptr) {
        for (storage::KvWrite& w : OrderIndexWrites(e.indexed, OrderIndexEntries())) {
          index_deletes.push_back(std::move(w));
        }
      }
      // Stale entries of the id in `dirty`, `due` and `resolved` find no order and are skipped.
      shard.orders.erase(it++);
      ++forgotten;
    }
  }
  stats_.traces_held = static_cast<uint64_t>(std::max<int64_t>(0, total_held_traces_.load()));
  stats_.held_bytes = static_cast<uint64_t>(std::max<int64_t>(0, total_held_bytes_.load()));
  FlushHolds();
  if (!deletes.empty()) {
    absl::Status s = index_deletes.empty() ? options_.orders_table->Write(deletes)
                                           : options_.orders_table->WriteWith(
                                                 deletes, options_.index_table, index_deletes);
    if (!s.ok()) {
      stats_.store_errors.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Warning) << "order tracker: deleting " << deletes.size()
                      << " forgotten records: " << s;
    }
  }
  return forgotten;
}

absl::Time OrderTracker::OldestOpenArrival() {
  int64_t oldest = check_started_.load();
  for (auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    for (const auto& [id, e] : shard->orders) {
      if (e.record.resolution == v1::Order::ACTIVE) {
        oldest = std::min(oldest, e.record.first_arrival_unix_nanos);
      }
    }
  }
  return oldest == INT64_MAX ? absl::InfiniteFuture() : absl::FromUnixNanos(oldest);
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
  FlushHolds();
  for (auto& shard : shards_) FlushShard(*shard);
}

}  // namespace tracekeep::orders
