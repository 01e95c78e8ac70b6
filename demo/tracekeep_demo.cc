// tracekeep-demo: plays the three services of an order's life (shop-api, crm-api, mes-api), each
// with its own TracerProvider and service.name, exporting OTLP/gRPC. Every order produces several
// traces (HTTP handlers, database writes, queue hops); faults are injected at chosen rates, and
// what was injected is printed (human or --json) so that tracekeep's findings can be checked.
//
//   tracekeep-demo --endpoint localhost:4317 --orders 50 --time-scale 0.05 --fault-rate 0.3
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "opentelemetry/exporters/otlp/otlp_grpc_exporter_factory.h"
#include "opentelemetry/exporters/otlp/otlp_grpc_exporter_options.h"
#include "opentelemetry/sdk/resource/resource.h"
#include "opentelemetry/sdk/trace/batch_span_processor_factory.h"
#include "opentelemetry/sdk/trace/batch_span_processor_options.h"
#include "opentelemetry/sdk/trace/tracer_provider.h"
#include "opentelemetry/sdk/trace/tracer_provider_factory.h"
#include "opentelemetry/trace/provider.h"

namespace {

namespace api = ::opentelemetry::trace;
namespace sdktrace = ::opentelemetry::sdk::trace;
namespace otlp = ::opentelemetry::exporter::otlp;
namespace common = ::opentelemetry::common;

constexpr const char* kStates[] = {"INITIATED",
                                   "SUBMITTED",
                                   "PRICE_CALCULATED",
                                   "MANUFACTURING_APPROVED",
                                   "MANUFACTURING_STARTED",
                                   "MANUFACTURING_COMPLETED",
                                   "SHIPPED",
                                   "DELIVERED"};
constexpr int kNumStates = 8;
// Typical time to reach each state from the previous one, in seconds at --time-scale 1.
constexpr double kStepSeconds[] = {0, 2, 5, 8, 4, 12, 5, 8};

enum class Fault { kNone, kLost, kPriceChanged, kDbWriteFailed, kDuplicateStart, kSkipped, kLate };

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kNone:
      return "none";
    case Fault::kLost:
      return "lost";
    case Fault::kPriceChanged:
      return "price_changed";
    case Fault::kDbWriteFailed:
      return "db_write_failed";
    case Fault::kDuplicateStart:
      return "duplicate_manufacturing_start";
    case Fault::kSkipped:
      return "state_skipped";
    case Fault::kLate:
      return "late_out_of_order_export";
  }
  return "?";
}

// The anomaly tracekeep must report for a fault ("" = the order must stay healthy).
const char* ExpectedAnomaly(Fault f) {
  switch (f) {
    case Fault::kLost:
      return "STALLED";
    case Fault::kPriceChanged:
      return "CONTENT_CHANGED";
    case Fault::kDbWriteFailed:
      return "ERROR";
    case Fault::kDuplicateStart:
      return "DUPLICATE_STATE";
    case Fault::kSkipped:
      return "SKIPPED";
    default:
      return "";
  }
}

struct Flags {
  std::string endpoint = "localhost:4317";
  int orders = 20;
  double time_scale = 1.0;
  uint64_t seed = 1;
  bool json = false;
  std::string id_prefix = "ord";
  // Per-fault probabilities per order (an order gets at most one fault).
  std::map<Fault, double> rates = {{Fault::kLost, 0.1},           {Fault::kPriceChanged, 0.05},
                                   {Fault::kDbWriteFailed, 0.05}, {Fault::kDuplicateStart, 0.05},
                                   {Fault::kSkipped, 0.05},       {Fault::kLate, 0.1}};
};

struct Order {
  std::string id;
  Fault fault = Fault::kNone;
  int fault_state = -1;  // lost: last state reached; db failure / skipped / late: the state hit
  std::string price;
  int items = 1;
  std::vector<std::string> traces;  // hex trace ids
  std::string last_state;
};

std::string Hex(const api::TraceId& id) {
  char buf[32];
  id.ToLowerBase16(buf);
  return std::string(buf, 32);
}

// Starts a span at system time `at` (may be in the past), so late exports keep their true times.
opentelemetry::nostd::shared_ptr<api::Span> StartAt(api::Tracer& tracer, const std::string& name,
                                                    std::chrono::system_clock::time_point at,
                                                    api::SpanKind kind, const api::Span* parent) {
  api::StartSpanOptions o;
  o.kind = kind;
  o.start_system_time = common::SystemTimestamp(at);
  o.start_steady_time = common::SteadyTimestamp(std::chrono::steady_clock::now() -
                                                (std::chrono::system_clock::now() - at));
  if (parent != nullptr) o.parent = parent->GetContext();
  return tracer.StartSpan(name, o);
}

void EndAt(api::Span& span, std::chrono::system_clock::time_point at) {
  api::EndSpanOptions o;
  o.end_steady_time = common::SteadyTimestamp(std::chrono::steady_clock::now() -
                                              (std::chrono::system_clock::now() - at));
  span.End(o);
}

class Services {
 public:
  explicit Services(const Flags& flags) : flags_(flags) {
    for (const char* name : {"shop-api", "crm-api", "mes-api"}) {
      otlp::OtlpGrpcExporterOptions e;
      e.endpoint = flags.endpoint;
      e.use_ssl_credentials = false;
      sdktrace::BatchSpanProcessorOptions b;
      b.schedule_delay_millis = std::chrono::milliseconds(50);
      b.max_queue_size = 65536;
      auto provider = sdktrace::TracerProviderFactory::Create(
          sdktrace::BatchSpanProcessorFactory::Create(otlp::OtlpGrpcExporterFactory::Create(e), b),
          opentelemetry::sdk::resource::Resource::Create(
              {{"service.name", std::string(name)}, {"service.namespace", "factory"}}));
      tracers_[name] = provider->GetTracer("tracekeep-demo", "0.1.0");
      providers_.push_back(std::move(provider));
    }
  }
  ~Services() {
    for (auto& p : providers_) p->ForceFlush();
  }
  void Flush() {
    for (auto& p : providers_) p->ForceFlush();
  }

  // One trace in which `service` moves `order` to `state` at time `at`: a handler span (HTTP or
  // queue consumer), a database write that records the state, and a hop to the next service.
  void RecordState(Order& order, int state, std::chrono::system_clock::time_point at, bool db_fails,
                   const std::string& price) {
    const std::string s = kStates[state];
    const char* service = ServiceOf(state);
    api::Tracer& tracer = *tracers_[service];
    const bool consumer = state == 2 || state == 4;  // CRM pricing job, MES queue consumer
    const std::string handler_name =
        consumer ? absl::StrCat("consume ", state == 2 ? "crm.pricing" : "mes.jobs")
                 : absl::StrCat(HttpRoute(state));
    auto handler = StartAt(tracer, handler_name, at,
                           consumer ? api::SpanKind::kConsumer : api::SpanKind::kServer, nullptr);
    handler->SetAttribute("order.id", order.id);
    if (!consumer) {
      handler->SetAttribute("http.request.method", "POST");
      handler->SetAttribute("http.route", HttpRoute(state).substr(5));
    } else {
      handler->SetAttribute("messaging.system", "rabbitmq");
    }
    order.traces.push_back(Hex(handler->GetContext().trace_id()));

    auto t = at + std::chrono::milliseconds(3);
    auto read = StartAt(tracer, "SELECT orders", t, api::SpanKind::kClient, handler.get());
    read->SetAttribute("db.system", "postgresql");
    read->SetAttribute("order.id", order.id);
    EndAt(*read, t + std::chrono::milliseconds(4));

    t += std::chrono::milliseconds(6);
    auto write = StartAt(tracer, state == 0 ? "INSERT orders" : "UPDATE orders", t,
                         api::SpanKind::kClient, handler.get());
    write->SetAttribute("db.system", "postgresql");
    write->SetAttribute("order.id", order.id);
    write->SetAttribute("order.total_price", price);
    write->SetAttribute("order.items_count", static_cast<int64_t>(order.items));
    if (db_fails) {
      write->AddEvent("exception", {{"exception.type", "SerializationFailure"},
                                    {"exception.message", "could not serialize access"}});
      write->SetStatus(api::StatusCode::kError, "could not serialize access");
    } else if (service == std::string("mes-api")) {
      // MES records state changes as span events.
      write->AddEvent("order.status_changed", {{"order.id", order.id}, {"order.status", s}});
    } else {
      write->SetAttribute("order.status", s);
    }
    EndAt(*write, t + std::chrono::milliseconds(8));

    if (state + 1 < kNumStates) {
      t += std::chrono::milliseconds(10);
      const bool queue = state == 1 || state == 3;
      auto hop =
          StartAt(tracer,
                  queue ? absl::StrCat("publish ", state == 1 ? "crm.pricing" : "mes.jobs")
                        : "notify next step",
                  t, queue ? api::SpanKind::kProducer : api::SpanKind::kClient, handler.get());
      hop->SetAttribute("order.id", order.id);
      EndAt(*hop, t + std::chrono::milliseconds(2));
    }
    if (db_fails) handler->SetStatus(api::StatusCode::kError, "database write failed");
    EndAt(*handler, t + std::chrono::milliseconds(5));
  }

 private:
  static const char* ServiceOf(int state) {
    if (state <= 1) return "shop-api";
    if (state == 4 || state == 5) return "mes-api";
    return "crm-api";
  }
  static std::string HttpRoute(int state) {
    switch (state) {
      case 0:
        return "POST /orders";
      case 1:
        return "POST /orders/{id}/submit";
      case 3:
        return "POST /orders/{id}/approve";
      case 5:
        return "POST /work-orders/{id}/complete";
      case 6:
        return "POST /orders/{id}/ship";
      default:
        return "POST /orders/{id}/delivered";
    }
  }

  const Flags& flags_;
  std::vector<std::unique_ptr<sdktrace::TracerProvider>> providers_;
  std::map<std::string, opentelemetry::nostd::shared_ptr<api::Tracer>> tracers_;
};

struct Step {
  double at_seconds;  // since the start of the run, before scaling
  size_t order;
  int state;
  bool late = false;  // exported after the next state, with its true time
  double true_seconds = 0;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  const std::map<std::string, Fault> rate_flags = {
      {"--lost-rate", Fault::kLost},
      {"--price-change-rate", Fault::kPriceChanged},
      {"--db-fail-rate", Fault::kDbWriteFailed},
      {"--duplicate-start-rate", Fault::kDuplicateStart},
      {"--skip-rate", Fault::kSkipped},
      {"--late-rate", Fault::kLate}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "--json") {
      f->json = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") return false;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::cerr << "tracekeep-demo: " << arg << " needs a value\n";
      return false;
    }
    double d;
    if (arg == "--endpoint") {
      f->endpoint = value;
    } else if (arg == "--orders" && absl::SimpleAtoi(value, &f->orders) && f->orders > 0) {
    } else if (arg == "--time-scale" && absl::SimpleAtod(value, &f->time_scale) &&
               f->time_scale > 0) {
    } else if (arg == "--seed" && absl::SimpleAtoi(value, &f->seed)) {
    } else if (arg == "--id-prefix") {
      f->id_prefix = value;
    } else if (arg == "--fault-rate" && absl::SimpleAtod(value, &d) && d >= 0 && d <= 1) {
      // Spread evenly over the faults that tracekeep must report, plus late export.
      for (auto& [fault, rate] : f->rates) rate = d / f->rates.size();
    } else if (rate_flags.count(arg) && absl::SimpleAtod(value, &d) && d >= 0 && d <= 1) {
      f->rates[rate_flags.at(arg)] = d;
    } else {
      std::cerr << "tracekeep-demo: bad flag or value: " << arg << " " << value << "\n";
      return false;
    }
  }
  double sum = 0;
  for (const auto& [fault, rate] : f->rates) sum += rate;
  if (sum > 1) {
    std::cerr << "tracekeep-demo: fault rates add up to " << sum << ", more than 1\n";
    return false;
  }
  return true;
}

const char kUsage[] =
    "Usage: tracekeep-demo [--endpoint HOST:PORT] [--orders N] [--time-scale X] [--seed N]\n"
    "                      [--fault-rate P | --lost-rate P --price-change-rate P\n"
    "                       --db-fail-rate P --duplicate-start-rate P --skip-rate P\n"
    "                       --late-rate P] [--id-prefix S] [--json]\n"
    "\n"
    "Plays shop-api, crm-api and mes-api for N orders (several traces each) and exports their\n"
    "spans over OTLP/gRPC (default localhost:4317). --time-scale 0.01 runs 100 times faster than\n"
    "the typical ~45 s of an order. Each order gets at most one fault; what was injected is\n"
    "printed at the end, with every trace id of every order.\n";

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::cerr << kUsage;
    return 2;
  }
  std::mt19937_64 rng(flags.seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<Order> orders(flags.orders);
  std::vector<Step> steps;
  for (size_t i = 0; i < orders.size(); ++i) {
    Order& o = orders[i];
    o.id = absl::StrFormat("%s-%d-%05d", flags.id_prefix, flags.seed, i + 1);
    o.items = 1 + static_cast<int>(unit(rng) * 5);
    o.price = absl::StrFormat("%.2f", 100 + unit(rng) * 900);
    double x = unit(rng);
    for (const auto& [fault, rate] : flags.rates) {
      if (x < rate) {
        o.fault = fault;
        break;
      }
      x -= rate;
    }
    int last = kNumStates - 1;
    switch (o.fault) {
      case Fault::kLost:  // lost after one of the states before delivery
        o.fault_state = static_cast<int>(unit(rng) * (kNumStates - 1));
        last = o.fault_state;
        break;
      case Fault::kPriceChanged:  // CRM prices differently from what the shop showed
        o.fault_state = 2;
        break;
      case Fault::kDbWriteFailed:
        o.fault_state = static_cast<int>(unit(rng) * kNumStates);
        break;
      case Fault::kDuplicateStart:
        o.fault_state = 4;
        break;
      case Fault::kSkipped:  // approval recorded without a price
        o.fault_state = 2;
        break;
      case Fault::kLate:  // SUBMITTED exported after PRICE_CALCULATED
        o.fault_state = 1;
        break;
      case Fault::kNone:
        break;
    }
    double t = i * 0.5;  // an order every half second (scaled)
    for (int s = 0; s <= last; ++s) {
      t += kStepSeconds[s] * (0.5 + unit(rng));
      if (o.fault == Fault::kSkipped && s == o.fault_state) continue;
      Step step{t, i, s};
      if (o.fault == Fault::kLate && s == o.fault_state) {
        step.late = true;
        step.true_seconds = t;
        step.at_seconds = t + kStepSeconds[s + 1] * 1.2;  // after the next state
      }
      steps.push_back(step);
      if (o.fault == Fault::kDuplicateStart && s == o.fault_state) {
        steps.push_back(Step{t + 1.0, i, s});
      }
    }
    o.last_state = kStates[last];
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const Step& a, const Step& b) { return a.at_seconds < b.at_seconds; });

  {
    Services services(flags);
    const auto start = std::chrono::system_clock::now();
    auto scaled = [&](double seconds) {
      return start +
             std::chrono::microseconds(static_cast<int64_t>(seconds * flags.time_scale * 1e6));
    };
    for (const Step& step : steps) {
      std::this_thread::sleep_until(scaled(step.at_seconds));
      Order& o = orders[step.order];
      const auto at = step.late ? scaled(step.true_seconds) : std::chrono::system_clock::now();
      const bool db_fails = o.fault == Fault::kDbWriteFailed && step.state == o.fault_state;
      std::string price = o.price;
      if (o.fault == Fault::kPriceChanged && step.state >= o.fault_state) {
        price = absl::StrFormat("%.2f", std::stod(o.price) * 1.15);
      }
      services.RecordState(o, step.state, at, db_fails, price);
    }
    services.Flush();
  }

  std::map<std::string, int> count;
  for (const Order& o : orders) count[FaultName(o.fault)]++;
  if (flags.json) {
    std::vector<std::string> items;
    for (const Order& o : orders) {
      std::vector<std::string> traces;
      for (const auto& t : o.traces) traces.push_back(absl::StrCat("\"", t, "\""));
      items.push_back(absl::StrCat(
          "{\"order_id\":\"", o.id, "\",\"fault\":\"", FaultName(o.fault), "\",\"fault_state\":\"",
          o.fault_state >= 0 ? kStates[o.fault_state] : "", "\",\"expected_anomaly\":\"",
          ExpectedAnomaly(o.fault), "\",\"last_state\":\"", o.last_state, "\",\"traces\":[",
          absl::StrJoin(traces, ","), "]}"));
    }
    std::vector<std::string> counts;
    for (const auto& [name, n] : count) counts.push_back(absl::StrCat("\"", name, "\":", n));
    std::cout << "{\"orders\":[" << absl::StrJoin(items, ",") << "],\"faults\":{"
              << absl::StrJoin(counts, ",") << "}}\n";
  } else {
    std::cout << absl::StrFormat("%-16s %-30s %-24s %-16s %s\n", "ORDER", "FAULT", "AT STATE",
                                 "EXPECTED", "TRACES");
    for (const Order& o : orders) {
      std::cout << absl::StrFormat("%-16s %-30s %-24s %-16s %d\n", o.id, FaultName(o.fault),
                                   o.fault_state >= 0 ? kStates[o.fault_state] : "-",
                                   *ExpectedAnomaly(o.fault) ? ExpectedAnomaly(o.fault) : "healthy",
                                   o.traces.size());
    }
    std::cout << "\n"
              << orders.size() << " orders, " << steps.size() << " traces sent to "
              << flags.endpoint << "; faults:";
    for (const auto& [name, n] : count) std::cout << " " << name << "=" << n;
    std::cout << "\nSee them with: tracekeepctl orders list --anomalous\n";
  }
  return 0;
}
