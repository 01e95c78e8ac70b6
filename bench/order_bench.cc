// Order tracking: what the tracker costs per span, per order event, and per active order.
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/common/clock.h"
#include "collector/kafka/order_affinity.h"
#include "collector/orders/order_tracker.h"
#include "collector/pipeline/otlp_convert.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::bench {
namespace {

namespace common = opentelemetry::proto::common::v1;
namespace tr = opentelemetry::proto::trace::v1;

// A realistic span (~325 B, 8-15 attributes) from the shared generator, order.id removed.
SpanRecord MakePlainSpan() {
  RequestShape shape;
  shape.spans_per_request = 100;
  shape.spans_per_trace = 5;
  auto pool = RequestPool::Create(shape, 1, /*seed=*/42);
  OtlpRequest request;
  request.ParseFromString((*pool)->Render(0));
  SpanRecord r = SplitRequest(request).traces[0].spans[0];
  tr::Span span;
  span.ParseFromString(r.span);
  auto* attributes = span.mutable_attributes();
  for (int i = attributes->size() - 1; i >= 0; --i) {
    if (attributes->Get(i).key() == "order.id") attributes->DeleteSubrange(i, 1);
  }
  r.span = span.SerializeAsString();
  return r;
}

const SpanRecord& PlainSpan() {
  static const SpanRecord* const kSpan = new SpanRecord(MakePlainSpan());
  return *kSpan;
}

// The same span with order.id, order.status and order.total_price added.
SpanRecord OrderSpan(const std::string& order_id, const std::string& status) {
  SpanRecord r = PlainSpan();
  tr::Span span;
  span.ParseFromString(r.span);
  auto add = [&span](const std::string& k, const std::string& v) {
    auto* kv = span.add_attributes();
    kv->set_key(k);
    kv->mutable_value()->set_string_value(v);
  };
  add("order.id", order_id);
  add("order.status", status);
  add("order.total_price", "123.45");
  r.span = span.SerializeAsString();
  for (const char* key : {"order.id", "order.status", "order.total_price"}) {
    r.attribute_keys |= AttributeKeyBit(key, std::strlen(key));  // as the receivers fill it
  }
  return r;
}

class NullConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override { return absl::OkStatus(); }
};

// SpanReader on spans without an order: the cost every span pays (a look at the receivers'
// filter of attribute keys).
void BM_ReadPlainSpan(benchmark::State& state) {
  const orders::OrdersConfig config = orders::DefaultOrdersConfig();
  orders::SpanReader reader(config);
  const SpanRecord span = PlainSpan();
  std::vector<orders::OrderFacts> facts;
  for (auto _ : state) {
    facts.clear();
    benchmark::DoNotOptimize(reader.Read(span, &facts));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadPlainSpan);

// SpanReader on a span naming an order: a full decode of the Span proto.
void BM_ReadOrderSpan(benchmark::State& state) {
  const orders::OrdersConfig config = orders::DefaultOrdersConfig();
  orders::SpanReader reader(config);
  const SpanRecord span = OrderSpan("ord-1", "SUBMITTED");
  std::vector<orders::OrderFacts> facts;
  for (auto _ : state) {
    facts.clear();
    benchmark::DoNotOptimize(reader.Read(span, &facts));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadOrderSpan);

// SpanReader on a span naming an order and nothing else about it (most spans of an order trace).
void BM_ReadOrderIdOnlySpan(benchmark::State& state) {
  const orders::OrdersConfig config = orders::DefaultOrdersConfig();
  orders::SpanReader reader(config);
  SpanRecord span = PlainSpan();
  tr::Span decoded;
  decoded.ParseFromString(span.span);
  auto* kv = decoded.add_attributes();
  kv->set_key("order.id");
  kv->mutable_value()->set_string_value("ord-00000000000a1b2c");
  span.span = decoded.SerializeAsString();
  span.attribute_keys |= AttributeKeyBit("order.id", 8);
  std::vector<orders::OrderFacts> facts;
  for (auto _ : state) {
    facts.clear();
    benchmark::DoNotOptimize(reader.Read(span, &facts));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadOrderIdOnlySpan);

// The receivers' filter of attribute keys of serialized span bytes (SpanRecord::attribute_keys).
uint64_t KeyFilterOf(const std::string& bytes) {
  tr::Span span;
  span.ParseFromString(bytes);
  uint64_t keys = 0;
  for (const auto& kv : span.attributes())
    keys |= AttributeKeyBit(kv.key().data(), kv.key().size());
  for (const auto& ev : span.events()) {
    for (const auto& kv : ev.attributes())
      keys |= AttributeKeyBit(kv.key().data(), kv.key().size());
  }
  return keys;
}

// Resident memory of this process, bytes (VmRSS).
size_t RssBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %zu kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib * 1024;
}

struct Fixture {
  // With `journal`, the tracker holds traces as references into an intake journal (whose
  // reads find nothing: nothing is kept here).
  explicit Fixture(orders::OrdersConfig config, bool journal = false) : journal(journal) {
    dir = (std::filesystem::temp_directory_path() / "tk_order_bench").string();
    std::filesystem::remove_all(dir);
    storage::RocksDbOptions o;
    o.path = dir;
    store = *storage::RocksDbSpanStore::Create(o);
    orders_table = *store->OpenTable("orders");
    hold_table = *store->OpenTable("order_hold");
    tracker = *orders::OrderTracker::Create(TrackerOptions(config));
  }
  ~Fixture() {
    tracker.reset();
    orders_table.reset();
    hold_table.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  const bool journal;
  std::string dir;
  FakeClock clock;
  NullConsumer consumer;
  std::unique_ptr<storage::RocksDbSpanStore> store;
  storage::KvTablePtr orders_table, hold_table;
  std::unique_ptr<orders::OrderTracker> tracker;

  // The options the tracker was made with (config as given), to make another over the same
  // tables.
  orders::OrderTrackerOptions TrackerOptions(const orders::OrdersConfig& config) {
    orders::OrderTrackerOptions t;
    t.config = config;
    t.consumer = &consumer;
    t.clock = &clock;
    t.orders_table = orders_table.get();
    t.hold_table = hold_table.get();
    if (journal) {
      t.read_journal = [](const JournalRef&,
                          absl::string_view) -> absl::StatusOr<std::vector<TraceSpans>> {
        return std::vector<TraceSpans>{};
      };
    }
    return t;
  }
};

// Writing one order's record: a whole lifecycle (8 states, 10 traces, one anomaly) serialized as
// v1::Order. Arg 0: through the message (ToProto + SerializeAsString, as before), 1: directly
// (AppendSerialized, what the tracker writes with).
void BM_SerializeOrderRecord(benchmark::State& state) {
  orders::NameTable names({"INITIATED", "SUBMITTED", "PAID", "PACKED", "SHIPPED", "DELIVERED",
                           "COMPLETED", "CANCELLED"});
  orders::OrderRecord r;
  r.order_id = "ORD-00000000deadbeef";
  for (int i = 0; i < 8; ++i) {
    orders::OrderRecord::State& s = r.states.emplace_back();
    s.state = static_cast<orders::NameId>(i);
    s.service = names.Intern(i % 2 ? "crm-api" : "shop-api");
    s.time_unix_nanos = 1700000000000000000 + i * 1000000;
    s.arrival_unix_nanos = s.time_unix_nanos + 500;
    s.trace_id = TraceIdBytes::Of(std::string(16, static_cast<char>('a' + i)));
    s.span_id = SpanIdBytes::Of(std::string(8, static_cast<char>('0' + i)));
  }
  for (int i = 0; i < 10; ++i) {
    r.trace_ids.push_back(TraceIdBytes::Of(std::string(16, static_cast<char>('a' + i))));
  }
  r.anomalies.push_back({"ERROR", "span \"charge\" has status ERROR", 1700000000009000000});
  r.first_arrival_unix_nanos = 1700000000000000500;
  r.last_arrival_unix_nanos = 1700000000007000500;
  r.current_state = 6;
  r.current_state_unix_nanos = 1700000000007000000;
  const bool direct = state.range(0) == 1;
  for (auto _ : state) {
    std::string value;
    if (direct) {
      r.AppendSerialized(names, &value);
    } else {
      value = r.ToProto(names).SerializeAsString();
    }
    benchmark::DoNotOptimize(value);
  }
}
BENCHMARK(BM_SerializeOrderRecord)->Arg(0)->Arg(1);

// Order events through the tracker (OnBuffered): each trace carries one state change of one of
// `range(0)` orders cycling through the 8 states of the lifecycle, records flushed by Check()
// every 10000 events, as the tracker's thread does every check_interval.
void BM_TrackerEvents(benchmark::State& state) {
  const int num_orders = static_cast<int>(state.range(0));
  Fixture f(orders::DefaultOrdersConfig());
  const char* states[] = {"INITIATED",
                          "SUBMITTED",
                          "PRICE_CALCULATED",
                          "MANUFACTURING_APPROVED",
                          "MANUFACTURING_STARTED",
                          "MANUFACTURING_COMPLETED",
                          "SHIPPED",
                          "DELIVERED"};
  std::vector<TraceSpans> traces;
  for (int s = 0; s < 8; ++s) {
    for (int o = 0; o < num_orders; ++o) {
      TraceSpans t;
      t.trace_id = std::string(16, '\1');
      t.trace_id[0] = static_cast<char>(s);
      t.trace_id[1] = static_cast<char>(o & 0xff);
      t.trace_id[2] = static_cast<char>(o >> 8);
      t.spans.push_back(OrderSpan(absl::StrCat("ord-", o), states[s]));
      t.spans.back().start_unix_nanos = 1000 + s;
      traces.push_back(std::move(t));
    }
  }
  size_t i = 0;
  int64_t n = 0;
  for (auto _ : state) {
    f.tracker->OnBuffered(traces[i]);
    sampling::PendingTrace p;
    p.trace_id = traces[i].trace_id;
    p.linked_keys = std::move(traces[i].linked_keys);
    traces[i].linked_keys.clear();
    if (++i == traces.size()) i = 0;
    // Decided as sampled by a policy: recorded as kept, not held (holding is a RocksDB put).
    benchmark::DoNotOptimize(f.tracker->OnDecided(p, /*sampled=*/true));
    if (++n % 10000 == 0) f.tracker->Check();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackerEvents)->Arg(1000)->Arg(10000);

// Whole order traces through the tracker, as the load generator sends them: 10 spans, the first
// recording the order's next state (with its invariants), the other nine naming the order only.
// `range(0)` orders walk the 8 states; per span.
void TrackerOrderTraces(benchmark::State& state, absl::Duration compact_after) {
  const int num_orders = static_cast<int>(state.range(0));
  orders::OrdersConfig config = orders::DefaultOrdersConfig();
  config.compact_after = compact_after;
  Fixture f(config, /*journal=*/true);
  const char* states[] = {"INITIATED",
                          "SUBMITTED",
                          "PRICE_CALCULATED",
                          "MANUFACTURING_APPROVED",
                          "MANUFACTURING_STARTED",
                          "MANUFACTURING_COMPLETED",
                          "SHIPPED",
                          "DELIVERED"};
  constexpr int kSpansPerTrace = 10;
  const uint64_t id_only_keys = KeyFilterOf(PlainSpan().span) | AttributeKeyBit("order.id", 8);
  std::vector<TraceSpans> traces;
  std::vector<size_t> id_at;  // where each span's order id digits are
  for (int s = 0; s < 8; ++s) {
    for (int o = 0; o < num_orders; ++o) {
      TraceSpans t;
      t.trace_id = std::string(16, '\2');
      t.trace_id[0] = static_cast<char>(s);
      t.trace_id[1] = static_cast<char>(o & 0xff);
      t.trace_id[2] = static_cast<char>(o >> 8);
      const std::string id = absl::StrCat("ord-", 1000000000000000 + o);  // rewritten per pass
      t.spans.push_back(OrderSpan(id, states[s]));
      // The plain span with the order id appended (a repeated field may come in any place).
      common::KeyValue kv;
      kv.set_key("order.id");
      kv.mutable_value()->set_string_value(id);
      std::string field;
      field.push_back(static_cast<char>(9 << 3 | 2));
      field.push_back(static_cast<char>(kv.ByteSizeLong()));
      field += kv.SerializeAsString();
      for (int j = 1; j < kSpansPerTrace; ++j) {
        SpanRecord r = PlainSpan();
        r.span += field;
        r.span_id = std::string(8, static_cast<char>(j));
        r.attribute_keys = id_only_keys;
        t.spans.push_back(std::move(r));
      }
      t.spans[0].attribute_keys = KeyFilterOf(t.spans[0].span);
      for (SpanRecord& r : t.spans) {
        r.start_unix_nanos = 1000 + s;
        id_at.push_back(r.span.find(id) + 4);
        // Located by the receiver (SplitWireRequest with the order id attribute).
        r.key_offset = static_cast<uint32_t>(r.span.find(id));
        r.key_size = static_cast<uint32_t>(id.size());
      }
      traces.push_back(std::move(t));
    }
  }
  // Each pass over the traces shows new orders (and new traces): the id's 16 digits and the
  // trace id's last 8 bytes are rewritten in place.
  auto renew = [&](TraceSpans* t, size_t trace_index, uint64_t pass) {
    const uint64_t order = (pass << 32) | (trace_index % static_cast<size_t>(num_orders));
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(order));
    for (size_t j = 0; j < t->spans.size(); ++j) {
      SpanRecord& r = t->spans[j];
      std::memcpy(&r.span[id_at[trace_index * kSpansPerTrace + j]], hex, 16);
      r.key_hash = KeyValueHash(absl::string_view(r.span).substr(r.key_offset, r.key_size));
    }
    std::memcpy(&t->trace_id[8], &pass, sizeof(pass));
    // States 1 ms before they arrive, in lifecycle order.
    for (SpanRecord& r : t->spans) r.start_unix_nanos = absl::ToUnixNanos(f.clock.Now()) - 1000000;
  };
  // Every trace arrives in the journal and is held there (not sampled by a policy); 20 k traces
  // a second of the fake clock, checked every 1000 traces.
  size_t i = 0;
  int64_t n = 0;
  for (auto _ : state) {
    TraceSpans& t = traces[i];
    state.PauseTiming();
    renew(&t, i, static_cast<uint64_t>(n) / traces.size());
    state.ResumeTiming();
    t.arrival_unix_nanos = absl::ToUnixNanos(f.clock.Now());
    f.tracker->OnBuffered(t);
    sampling::PendingTrace p;
    p.trace_id = t.trace_id;
    p.first_arrival = f.clock.Now();
    p.journal_refs = {JournalRef{1, static_cast<uint64_t>(n + 1) * 4096, 4096}};
    p.linked_keys = std::move(t.linked_keys);
    t.linked_keys.clear();
    if (++i == traces.size()) i = 0;
    benchmark::DoNotOptimize(f.tracker->OnDecided(p, /*sampled=*/false));
    f.tracker->OnDecisionsDone();
    f.clock.Advance(absl::Microseconds(50));
    if (++n % 1000 == 0) f.tracker->Check();
  }
  state.SetItemsProcessed(state.iterations() * kSpansPerTrace);
  uint64_t anomalies = 0;
  for (const auto& a : f.tracker->stats().anomalies) anomalies += a.load();
  state.counters["anomalies"] = static_cast<double>(anomalies);
  state.counters["resolved"] = static_cast<double>(f.tracker->stats().orders_resolved.load());
}
void BM_TrackerOrderTraces(benchmark::State& state) {
  TrackerOrderTraces(state, orders::DefaultOrdersConfig().compact_after);
}
// 40,000 orders: the same work per trace with ten times the orders in memory (the daemon at
// 250 k order spans/s holds ~100 k): what the tracker's cache misses cost.
BENCHMARK(BM_TrackerOrderTraces)->Arg(4000)->Arg(40000);
// The same with orders.compact_after: 0: what packing quiet orders costs (each order is packed
// once while it waits out its grace period and unpacked at its end).
void BM_TrackerOrderTracesNeverPacked(benchmark::State& state) {
  TrackerOrderTraces(state, absl::ZeroDuration());
}
BENCHMARK(BM_TrackerOrderTracesNeverPacked)->Arg(4000);

// The order owner's path in a cluster (collector/kafka/order_affinity.h): routed traces, one
// Kafka record each, through OrderOwnerIntake, the intake's Flush (the holds' RocksDB write and
// the kept traces' hand-off) after every `range(0)` records, as the Kafka receiver flushes once
// per poll (range 1: one write per record, how the owner worked before). Each trace is 10 spans
// (~3.3 KB) of a new order's first state: held, its bytes written to `order_hold`. Per trace.
void BM_OrderOwnerRecords(benchmark::State& state) {
  const int per_flush = static_cast<int>(state.range(0));
  Fixture f(orders::DefaultOrdersConfig());
  kafka::OrderAffinityStats stats;
  kafka::OrderOwnerIntake owner(f.tracker.get(), &f.consumer, &stats);
  constexpr int kSpansPerTrace = 10;
  const TraceSpans proto = [] {
    TraceSpans t;
    t.trace_id = std::string(16, '\3');
    const std::string id = "ord-0000000000000000";
    t.spans.push_back(OrderSpan(id, "INITIATED"));
    // The other nine name the order only (order.id appended to a plain span).
    common::KeyValue kv;
    kv.set_key("order.id");
    kv.mutable_value()->set_string_value(id);
    std::string field;
    field.push_back(static_cast<char>(9 << 3 | 2));
    field.push_back(static_cast<char>(kv.ByteSizeLong()));
    field += kv.SerializeAsString();
    for (int j = 1; j < kSpansPerTrace; ++j) {
      SpanRecord r = PlainSpan();
      r.span += field;
      r.span_id = std::string(8, static_cast<char>(j));
      r.attribute_keys = KeyFilterOf(r.span);
      t.spans.push_back(std::move(r));
    }
    return t;
  }();
  uint64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<TraceSpans> record(1, proto);
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(n));
    for (SpanRecord& r : record[0].spans) {
      r.span.replace(r.span.find("ord-") + 4, 16, hex);
      r.start_unix_nanos = absl::ToUnixNanos(f.clock.Now()) - 1000000;
    }
    std::memcpy(&record[0].trace_id[8], &n, sizeof(n));
    state.ResumeTiming();
    benchmark::DoNotOptimize(owner.Offer(std::move(record), kSpansPerTrace));
    if (++n % static_cast<uint64_t>(per_flush) == 0) benchmark::DoNotOptimize(owner.Flush());
    f.clock.Advance(absl::Microseconds(20));
    if (n % 5000 == 0) f.tracker->Check();
  }
  benchmark::DoNotOptimize(owner.Flush());
  state.SetItemsProcessed(state.iterations());
  state.counters["held"] = static_cast<double>(stats.traces_held.load());
  state.counters["released"] = static_cast<double>(stats.traces_released.load());
  state.counters["kept"] = static_cast<double>(stats.traces_kept.load());
}
BENCHMARK(BM_OrderOwnerRecords)->Arg(1)->Arg(50)->Arg(500);

// Memory of active orders: heap in use after `range(0)` orders each recorded 4 states from 2
// services with 2 invariants, divided by the number of orders.
void BM_MemoryPerActiveOrder(benchmark::State& state) {
  const int num_orders = static_cast<int>(state.range(0));
  const char* states[] = {"INITIATED", "SUBMITTED", "PRICE_CALCULATED", "MANUFACTURING_APPROVED"};
  for (auto _ : state) {
    state.PauseTiming();
    auto f = std::make_unique<Fixture>(orders::DefaultOrdersConfig());
    std::vector<TraceSpans> traces;
    for (int o = 0; o < num_orders; ++o) {
      for (int s = 0; s < 4; ++s) {
        TraceSpans t;
        t.trace_id = std::string(16, '\2');
        t.trace_id[0] = static_cast<char>(s);
        memcpy(&t.trace_id[4], &o, sizeof(o));
        t.spans.push_back(OrderSpan(absl::StrCat("ord-", o), states[s]));
        t.spans.back().start_unix_nanos = 1000 + s;
        traces.push_back(std::move(t));
      }
    }
    const size_t before = mallinfo2().uordblks;
    state.ResumeTiming();
    for (TraceSpans& t : traces) {
      f->tracker->OnBuffered(t);
      sampling::PendingTrace p;
      p.trace_id = t.trace_id;
      p.linked_keys = std::move(t.linked_keys);
      benchmark::DoNotOptimize(f->tracker->OnDecided(p, /*sampled=*/true));
    }
    f->tracker->Check();
    state.PauseTiming();
    const size_t after = mallinfo2().uordblks;
    state.counters["B/order"] = static_cast<double>(after - before) / num_orders;
    f.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_MemoryPerActiveOrder)->Arg(20000)->Iterations(1)->Unit(benchmark::kMillisecond);

// range(0) active orders at once (each INITIATED by one trace, held as a journal reference, as
// the daemon holds with its journal on), then: resident memory per active order, the same once
// orders.compact_after has passed (heap bytes in use: freed memory stays in the process), the
// periodic Check() with nothing due, and a restart (the tracker reloading every record). Reported
// as counters; the timed part is the ingestion (items = orders).
void BM_ActiveOrders(benchmark::State& state) {
  const int64_t num_orders = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    orders::OrdersConfig config = orders::DefaultOrdersConfig();
    config.hold_in_journal = absl::Hours(2);  // no copies to order_hold in this benchmark
    auto f = std::make_unique<Fixture>(config);
    f->tracker.reset();
    orders::OrderTrackerOptions t = f->TrackerOptions(config);
    t.read_journal = [](const JournalRef&,
                        absl::string_view) -> absl::StatusOr<std::vector<TraceSpans>> {
      return absl::UnavailableError("not read in this benchmark");
    };
    f->tracker = *orders::OrderTracker::Create(t);
    const size_t rss_before = RssBytes();
    const size_t heap_before = mallinfo2().uordblks;
    state.ResumeTiming();
    for (int64_t o = 0; o < num_orders; ++o) {
      TraceSpans spans;
      spans.trace_id = std::string(16, '\3');
      std::memcpy(&spans.trace_id[0], &o, sizeof(o));
      spans.spans.push_back(OrderSpan(absl::StrCat("ord-", o), "INITIATED"));
      spans.journal_ref = JournalRef{1, static_cast<uint64_t>(o) * 1000, 1000};
      f->tracker->OnBuffered(spans);
      sampling::PendingTrace p;
      p.trace_id = spans.trace_id;
      p.first_arrival = f->clock.Now();
      p.journal_refs = {spans.journal_ref};
      p.linked_keys = std::move(spans.linked_keys);
      p.spans = std::move(spans.spans);
      benchmark::DoNotOptimize(f->tracker->OnDecided(p, /*sampled=*/false));
      if (o % 1000 == 999) f->tracker->OnDecisionsDone();
    }
    f->tracker->Check();  // writes every record
    state.PauseTiming();
    state.counters["RSS_B/order"] =
        static_cast<double>(RssBytes() - rss_before) / static_cast<double>(num_orders);
    state.counters["heap_B/order"] =
        static_cast<double>(mallinfo2().uordblks - heap_before) / static_cast<double>(num_orders);
    f->clock.Advance(config.compact_after + absl::Seconds(1));
    absl::Time start = absl::Now();
    // No span for compact_after: every order is packed, a bounded number per shard and check.
    int checks = 0;
    while (f->tracker->stats().orders_compact.load() < num_orders && checks++ < 10000) {
      f->tracker->Check();
    }
    state.counters["compact_s"] = absl::ToDoubleSeconds(absl::Now() - start);
    state.counters["compact_checks"] = checks;
    state.counters["heap_B/compact_order"] =
        static_cast<double>(mallinfo2().uordblks - heap_before) / static_cast<double>(num_orders);
    state.counters["compact_orders"] =
        static_cast<double>(f->tracker->stats().orders_compact.load());
    f->clock.Advance(config.grace_period - config.compact_after);
    start = absl::Now();
    f->tracker->Check();  // every grace period is over now: each order's first check (unpacked)
    state.counters["first_check_s"] = absl::ToDoubleSeconds(absl::Now() - start);
    f->clock.Advance(absl::Minutes(10));
    // The first check unpacked every order to judge it: packed again first (untimed).
    for (int checks = 0; f->tracker->stats().orders_compact.load() < num_orders && checks < 10000;
         ++checks) {
      f->tracker->Check();
    }
    f->clock.Advance(absl::Seconds(1));
    start = absl::Now();
    f->tracker->Check();  // nothing due (INITIATED's deadline is 1h)
    state.counters["idle_check_ms"] = absl::ToDoubleMilliseconds(absl::Now() - start);
    const uint64_t checked = f->tracker->stats().orders_checked.load();
    f->tracker->Shutdown(absl::InfiniteFuture());
    f->tracker.reset();
    start = absl::Now();
    f->tracker = *orders::OrderTracker::Create(t);
    state.counters["restart_s"] = absl::ToDoubleSeconds(absl::Now() - start);
    state.counters["orders_checked"] = static_cast<double>(checked);
    f.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * num_orders);
}
BENCHMARK(BM_ActiveOrders)->Arg(1000000)->Iterations(1)->Unit(benchmark::kMillisecond);

// range(0) held traces in order_hold, range(1) of them per order (one ~330 B span each: the
// per-trace costs), and a restart, which reads every held trace's bookkeeping entry to rebuild its
// order's holds. RSS_B/held_trace: the process's growth while holding them (the orders' records in
// memory included), per held trace.
void BM_HeldTracesRestart(benchmark::State& state) {
  const int64_t num_traces = state.range(0);
  const int64_t per_order = state.range(1);
  for (auto _ : state) {
    state.PauseTiming();
    orders::OrdersConfig config = orders::DefaultOrdersConfig();
    config.max_held_traces = static_cast<size_t>(num_traces) * 2;
    config.max_held_mib = std::max<size_t>(config.max_held_mib, (num_traces * 2000) >> 20);
    auto f = std::make_unique<Fixture>(config);
    const size_t rss_before = RssBytes();
    const size_t heap_before = mallinfo2().uordblks;
    state.ResumeTiming();
    for (int64_t o = 0; o < num_traces; ++o) {
      TraceSpans spans;
      spans.trace_id = std::string(16, '\4');
      std::memcpy(&spans.trace_id[0], &o, sizeof(o));
      spans.spans.push_back(
          OrderSpan(absl::StrCat("ord-", o / per_order), o % per_order == 0 ? "INITIATED" : ""));
      f->tracker->OnBuffered(spans);
      sampling::PendingTrace p;
      p.trace_id = spans.trace_id;
      p.all_journaled = false;
      p.linked_keys = std::move(spans.linked_keys);
      p.spans = std::move(spans.spans);
      benchmark::DoNotOptimize(f->tracker->OnDecided(p, /*sampled=*/false));
      if (o % 1000 == 999) f->tracker->OnDecisionsDone();
    }
    f->tracker->OnDecisionsDone();
    f->tracker->Check();
    state.PauseTiming();
    state.counters["RSS_B/held_trace"] =
        static_cast<double>(RssBytes() - rss_before) / static_cast<double>(num_traces);
    state.counters["heap_B/held_trace"] =
        static_cast<double>(mallinfo2().uordblks - heap_before) / static_cast<double>(num_traces);
    f->clock.Advance(config.compact_after + absl::Seconds(1));
    const int64_t num_orders = (num_traces + per_order - 1) / per_order;
    for (int checks = 0; f->tracker->stats().orders_compact.load() < num_orders && checks < 10000;
         ++checks) {
      f->tracker->Check();  // every order packed, its holds with it
    }
    state.counters["heap_B/compact_held_trace"] =
        static_cast<double>(mallinfo2().uordblks - heap_before) / static_cast<double>(num_traces);
    state.counters["orders"] = static_cast<double>((num_traces + per_order - 1) / per_order);
    for (const auto& [name, bytes] : f->store->DiskBytesPerColumnFamily()) {
      if (name == "order_hold") {
        state.counters["disk_B/held_span"] = static_cast<double>(bytes) / num_traces;
      }
    }
    f->tracker->Shutdown(absl::InfiniteFuture());
    const orders::OrderTrackerOptions t = f->TrackerOptions(config);
    f->tracker.reset();
    const absl::Time start = absl::Now();
    f->tracker = *orders::OrderTracker::Create(t);
    state.counters["restart_s"] = absl::ToDoubleSeconds(absl::Now() - start);
    state.counters["held_after_restart"] =
        static_cast<double>(f->tracker->stats().traces_held.load());
    f.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * num_traces);
}
BENCHMARK(BM_HeldTracesRestart)
    ->Args({1000000, 1})
    ->Args({10000000, 10})  // a million orders, ten held traces each
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
