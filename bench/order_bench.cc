// Order tracking: what the tracker costs per span, per order event, and per active order.
#include <malloc.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/common/clock.h"
#include "collector/orders/order_tracker.h"
#include "collector/pipeline/otlp_convert.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::bench {
namespace {

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
  return r;
}

class NullConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override { return absl::OkStatus(); }
};

// SpanReader on spans without an order: the cost every span pays (a substring search).
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

struct Fixture {
  explicit Fixture(orders::OrdersConfig config) {
    dir = (std::filesystem::temp_directory_path() / "tk_order_bench").string();
    std::filesystem::remove_all(dir);
    storage::RocksDbOptions o;
    o.path = dir;
    store = *storage::RocksDbSpanStore::Create(o);
    orders_table = *store->OpenTable("orders");
    hold_table = *store->OpenTable("order_hold");
    orders::OrderTrackerOptions t;
    t.config = config;
    t.consumer = &consumer;
    t.clock = &clock;
    t.orders_table = orders_table.get();
    t.hold_table = hold_table.get();
    tracker = *orders::OrderTracker::Create(t);
  }
  ~Fixture() {
    tracker.reset();
    orders_table.reset();
    hold_table.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  FakeClock clock;
  NullConsumer consumer;
  std::unique_ptr<storage::RocksDbSpanStore> store;
  storage::KvTablePtr orders_table, hold_table;
  std::unique_ptr<orders::OrderTracker> tracker;
};

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

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
