#include "bench/otlp_gen.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::bench {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_common = ::opentelemetry::proto::common::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

// splitmix64's finalizer: a bijection on 64-bit values that mixes well.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string IdBytes(uint64_t hi, uint64_t lo, size_t size) {
  std::string id(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    const uint64_t word = i < 8 ? hi : lo;
    id[i] = static_cast<char>(word >> (8 * (7 - i % 8)));
  }
  return id;
}

struct Service {
  const char* name;
  const char* version;
  const char* host;
  const char* scope;
  std::array<const char*, 4> operations;
};

constexpr std::array<Service, 3> kServices = {{
    {"shop-api",
     "2.14.1",
     "shop-api-7d9f8b6c5-x2k4q",
     "io.opentelemetry.spring-webmvc-6.0",
     {"GET /api/orders/{id}", "POST /api/cart", "SELECT orders", "GET /api/products"}},
    {"crm-api",
     "1.8.0",
     "crm-api-5b7c9d4f8-m8n2p",
     "io.opentelemetry.aspnetcore",
     {"GET /customers/{id}", "UPDATE customers", "POST /customers/{id}/notes", "redis GET"}},
    {"mes-api",
     "0.31.7",
     "mes-api-6c8d7e9f1-q4r7s",
     "opentelemetry.instrumentation.flask",
     {"GET /machines/{id}/status", "INSERT work_orders", "kafka publish", "GET /lots/{id}"}},
}};

void AddString(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attrs,
               const std::string& key, const std::string& value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}
void AddInt(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attrs,
            const std::string& key, int64_t value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(value);
}

void FillResource(const Service& service, int pid, otlp_trace::ResourceSpans* rs) {
  auto* attrs = rs->mutable_resource()->mutable_attributes();
  AddString(attrs, "service.name", service.name);
  AddString(attrs, "service.version", service.version);
  AddString(attrs, "service.namespace", "acme");
  AddString(attrs, "deployment.environment", "production");
  AddString(attrs, "host.name", service.host);
  AddString(attrs, "host.arch", "amd64");
  AddInt(attrs, "process.pid", pid);
  AddString(attrs, "telemetry.sdk.language", "java");
  AddString(attrs, "telemetry.sdk.version", "1.32.0");
  rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name(service.scope);
  ss->mutable_scope()->set_version("1.32.0-alpha");
}

// Adds 8-15 attributes of mixed types (string, int, bool, double).
void FillAttributes(std::mt19937_64& rng, int service, otlp_trace::Span* span) {
  auto* attrs = span->mutable_attributes();
  const int count = 8 + static_cast<int>(rng() % 8);
  for (int a = 0; a < count; ++a) {
    otlp_common::KeyValue* kv = attrs->Add();
    otlp_common::AnyValue* v = kv->mutable_value();
    const uint64_t r = rng();
    switch (a) {
      case 0:
        kv->set_key("http.method");
        v->set_string_value(r % 4 ? "GET" : "POST");
        break;
      case 1:
        kv->set_key("http.status_code");
        v->set_int_value(r % 20 ? 200 : 404);
        break;
      case 2:
        kv->set_key("net.peer.port");
        v->set_int_value(40000 + r % 20000);
        break;
      case 3:
        kv->set_key("thread.id");
        v->set_int_value(r % 256);
        break;
      case 4:
        kv->set_key("tenant");
        v->set_string_value(absl::StrCat("t-", r % 1000));
        break;
      case 5:
        kv->set_key("cache.hit");
        v->set_bool_value(r % 2);
        break;
      case 6:
        kv->set_key("user.id");
        v->set_string_value(absl::StrCat("u", r % 100000));
        break;
      case 7:
        kv->set_key("retry");
        v->set_int_value(r % 3);
        break;
      case 8:
        kv->set_key("load");
        v->set_double_value(static_cast<double>(r % 1000) / 7);
        break;
      case 9:
        kv->set_key("region");
        v->set_string_value(r % 2 ? "eu-west-1" : "eu-central-1");
        break;
      case 10:
        kv->set_key("customer.tier");
        v->set_string_value(r % 3 ? "standard" : "premium");
        break;
      case 11:
        kv->set_key("db.system");
        v->set_string_value(service == 1 ? "redis" : "postgresql");
        break;
      case 12:
        kv->set_key("sampled");
        v->set_bool_value(true);
        break;
      case 13:
        kv->set_key("net.peer.name");
        v->set_string_value(kServices[(service + 1) % 3].name);
        break;
      default:
        kv->set_key("queue.ms");
        v->set_double_value(static_cast<double>(r % 5000) / 100);
        break;
    }
  }
}

// The default lifecycle of ORDERS.md, and the service that records each state.
constexpr std::array<std::pair<const char*, int>, RequestPool::kOrderSteps> kOrderStates = {{
    {"INITIATED", 0},
    {"SUBMITTED", 0},
    {"PRICE_CALCULATED", 1},
    {"MANUFACTURING_APPROVED", 1},
    {"MANUFACTURING_STARTED", 2},
    {"MANUFACTURING_COMPLETED", 2},
    {"SHIPPED", 1},
    {"DELIVERED", 1},
}};
constexpr char kOrderPrefix[] = "ORD-";

// 16 lowercase hex digits of `v`.
void PutHex16(uint64_t v, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 0xf];
}

uint64_t GetHex16(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = in[i];
    v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return v;
}

// Visits every length-delimited field `field` of the message `msg`, which starts at offset
// `base` of the whole buffer. Returns false on malformed input.
template <typename Fn>
bool ForEachLenField(const std::string& buf, size_t base, size_t end, uint32_t field, Fn fn) {
  auto varint = [&](size_t* pos, uint64_t* out) {
    *out = 0;
    for (int shift = 0; shift < 64 && *pos < end; shift += 7) {
      const uint8_t b = static_cast<uint8_t>(buf[(*pos)++]);
      *out |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  size_t pos = base;
  while (pos < end) {
    uint64_t tag = 0, value = 0;
    if (!varint(&pos, &tag)) return false;
    switch (tag & 7) {
      case 0:
        if (!varint(&pos, &value)) return false;
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2:
        if (!varint(&pos, &value) || pos + value > end) return false;
        if ((tag >> 3) == field && !fn(pos, pos + value)) return false;
        pos += value;
        break;
      default:
        return false;
    }
  }
  return pos == end;
}

// Offsets of the trace id of every span: ExportTraceServiceRequest.resource_spans (1) ->
// ResourceSpans.scope_spans (2) -> ScopeSpans.spans (2) -> Span.trace_id (1).
bool FindTraceIds(const std::string& buf, std::vector<uint32_t>* offsets) {
  return ForEachLenField(buf, 0, buf.size(), 1, [&](size_t rb, size_t re) {
    return ForEachLenField(buf, rb, re, 2, [&](size_t sb, size_t se) {
      return ForEachLenField(buf, sb, se, 2, [&](size_t pb, size_t pe) {
        return ForEachLenField(buf, pb, pe, 1, [&](size_t tb, size_t te) {
          if (te - tb != 16) return false;
          offsets->push_back(static_cast<uint32_t>(tb));
          return true;
        });
      });
    });
  });
}

// Visits every fixed64 field `field` of the message in [base, end): `fn(offset)`. Returns false
// on malformed input.
template <typename Fn>
bool ForEachFixed64Field(const std::string& buf, size_t base, size_t end, uint32_t field, Fn fn) {
  size_t pos = base;
  while (pos < end) {
    uint64_t tag = 0;
    int shift = 0;
    for (;; shift += 7) {
      if (pos >= end || shift >= 64) return false;
      const uint8_t b = static_cast<uint8_t>(buf[pos++]);
      tag |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
    }
    switch (tag & 7) {
      case 0:
        while (pos < end && (static_cast<uint8_t>(buf[pos]) & 0x80) != 0) ++pos;
        ++pos;
        break;
      case 1:
        if (pos + 8 > end) return false;
        if ((tag >> 3) == field) fn(pos);
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        uint64_t len = 0;
        for (int s = 0;; s += 7) {
          if (pos >= end || s >= 64) return false;
          const uint8_t b = static_cast<uint8_t>(buf[pos++]);
          len |= static_cast<uint64_t>(b & 0x7f) << s;
          if ((b & 0x80) == 0) break;
        }
        if (pos + len > end) return false;
        pos += len;
        break;
      }
      default:
        return false;
    }
  }
  return pos == end;
}

// Offsets of every timestamp of every span: Span.start_time_unix_nano (7),
// Span.end_time_unix_nano (8) and Span.events (11) -> Event.time_unix_nano (1).
bool FindTimes(const std::string& buf, std::vector<uint32_t>* offsets) {
  auto add = [offsets](size_t at) { offsets->push_back(static_cast<uint32_t>(at)); };
  return ForEachLenField(buf, 0, buf.size(), 1, [&](size_t rb, size_t re) {
    return ForEachLenField(buf, rb, re, 2, [&](size_t sb, size_t se) {
      return ForEachLenField(buf, sb, se, 2, [&](size_t pb, size_t pe) {
        return ForEachFixed64Field(buf, pb, pe, 7, add) &&
               ForEachFixed64Field(buf, pb, pe, 8, add) &&
               ForEachLenField(buf, pb, pe, 11, [&](size_t eb, size_t ee) {
                 return ForEachFixed64Field(buf, eb, ee, 1, add);
               });
      });
    });
  });
}

}  // namespace

absl::Status RequestShape::Validate() const {
  if (spans_per_request < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("spans_per_request must be >= 1, got ", spans_per_request));
  }
  if (spans_per_trace < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("spans_per_trace must be >= 1, got ", spans_per_trace));
  }
  if (!(error_share >= 0 && error_share <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("error_share must be in [0, 1], got ", error_share));
  }
  if (trace_spread < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace_spread must be >= 1, got ", trace_spread));
  }
  if (!(hot_share >= 0 && hot_share <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("hot_share must be in [0, 1], got ", hot_share));
  }
  if (hot_order_ids < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("hot_order_ids must be >= 1, got ", hot_order_ids));
  }
  if (!(order_share >= 0 && order_share <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("order_share must be in [0, 1], got ", order_share));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RequestPool>> RequestPool::Create(const RequestShape& shape,
                                                                 int min_requests, uint64_t seed) {
  if (absl::Status s = shape.Validate(); !s.ok()) return s;
  if (min_requests < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_requests must be >= 1, got ", min_requests));
  }
  std::unique_ptr<RequestPool> pool(new RequestPool(shape, Mix(seed ^ 0x5a17)));
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution is_error_trace(shape.error_share);
  const int spread = shape.trace_spread;
  const int groups = (min_requests + spread - 1) / spread;
  const int64_t group_spans = static_cast<int64_t>(shape.spans_per_request) * spread;
  const int64_t base_nanos = absl::ToUnixNanos(absl::Now());
  pool->base_unix_nanos_ = base_nanos;
  uint64_t trace_counter = 0;
  // Whole lifecycles only: an order trace every `order_every` traces, up to `order_traces`.
  const int64_t expected_traces =
      groups * ((group_spans + shape.spans_per_trace - 1) / shape.spans_per_trace);
  pool->order_lanes_ =
      static_cast<int64_t>(static_cast<double>(expected_traces) * shape.order_share) / kOrderSteps;
  const int64_t order_traces = pool->order_lanes_ * kOrderSteps;
  const uint64_t order_every =
      order_traces == 0
          ? 0
          : static_cast<uint64_t>(std::max<int64_t>(1, expected_traces / order_traces));
  int64_t order_trace_no = 0;

  for (int g = 0; g < groups; ++g) {
    std::vector<otlp_collector::ExportTraceServiceRequest> requests(spread);
    // One ResourceSpans per service, created on first use, per request.
    std::vector<std::array<otlp_trace::ScopeSpans*, 3>> scopes(spread, {nullptr, nullptr, nullptr});
    int64_t g_span = 0;  // span index within the group; request = g_span % spread
    while (g_span < group_spans) {
      const uint64_t trace_no = trace_counter++;
      // The low half is a bijection of the trace number, so ids are distinct within the pool.
      const std::string trace_id = IdBytes(rng(), Mix(seed + trace_no), 16);
      const int length =
          static_cast<int>(std::min<int64_t>(shape.spans_per_trace, group_spans - g_span));
      const bool error = is_error_trace(rng);
      const int error_span =
          error ? (length > 1 ? 1 + static_cast<int>(rng() % (length - 1)) : 0) : -1;
      pool->error_traces_ += error ? 1 : 0;
      ++pool->traces_;
      // An order trace: lane and step of its order, and the placeholder id that encodes them
      // (RenderTo writes the real id). Its root span runs in the service of that state.
      const bool order =
          order_every != 0 && trace_no % order_every == 0 && order_trace_no < order_traces;
      std::string order_id;
      int order_step = 0;
      int64_t order_lane = 0;
      // A read of a hot order: a recurring id, no state (not rewritten per round).
      std::string hot_id;
      if (!order && shape.hot_share > 0 &&
          static_cast<double>(rng() % 1000000) < shape.hot_share * 1000000) {
        hot_id = absl::StrCat("hot-", rng() % static_cast<uint64_t>(shape.hot_order_ids));
      }
      if (order) {
        order_lane = order_trace_no / kOrderSteps;
        order_step = static_cast<int>(order_trace_no % kOrderSteps);
        ++order_trace_no;
        order_id.assign(kOrderPrefix);
        order_id.resize(order_id.size() + 16);
        PutHex16((static_cast<uint64_t>(order_step) << 48) | static_cast<uint64_t>(order_lane),
                 &order_id[std::strlen(kOrderPrefix)]);
      }
      // Traces start within the last two seconds before the pool was generated; an order's
      // states 100 ms apart, in lifecycle order (the tracker judges transitions by span time).
      const int64_t trace_start =
          order ? base_nanos - 2000000000 + order_step * int64_t{100000000} +
                      (order_lane % 50) * int64_t{1000000}
                : base_nanos - 2000000000 + static_cast<int64_t>(trace_no % 1000) * 1000000;
      std::string parent_id;
      for (int j = 0; j < length; ++j, ++g_span) {
        const int req = static_cast<int>(g_span % spread);
        const int service =
            order ? static_cast<int>((kOrderStates[order_step].second + j) % kServices.size())
                  : static_cast<int>((trace_no + j) % kServices.size());
        otlp_trace::ScopeSpans*& ss = scopes[req][service];
        if (ss == nullptr) {
          otlp_trace::ResourceSpans* rs = requests[req].add_resource_spans();
          FillResource(kServices[service], 1000 + service * 7, rs);
          ss = rs->mutable_scope_spans(0);
        }
        otlp_trace::Span* span = ss->add_spans();
        span->set_trace_id(trace_id);
        const std::string span_id = IdBytes(rng() | 1, 0, 8);
        span->set_span_id(span_id);
        if (j > 0) span->set_parent_span_id(parent_id);
        if (j == 0 || rng() % 2) parent_id = span_id;  // a mix of chains and fan-out
        span->set_name(kServices[service].operations[rng() % 4]);
        span->set_kind(j == 0 ? otlp_trace::Span::SPAN_KIND_SERVER
                              : otlp_trace::Span::SPAN_KIND_INTERNAL);
        const int64_t start = trace_start + j * 150000;
        const int64_t duration = 20000 + static_cast<int64_t>(rng() % 40000000);
        span->set_start_time_unix_nano(start);
        span->set_end_time_unix_nano(start + duration);
        FillAttributes(rng, service, span);
        if (!hot_id.empty()) AddString(span->mutable_attributes(), "order.id", hot_id);
        if (order) {
          AddString(span->mutable_attributes(), "order.id", order_id);
          if (j == 0) {
            // The content is the lane's: the same in every state of the order.
            AddString(span->mutable_attributes(), "order.status", kOrderStates[order_step].first);
            AddString(span->mutable_attributes(), "order.total_price",
                      absl::StrCat(100 + order_lane % 900, ".50"));
            AddInt(span->mutable_attributes(), "order.items_count", 1 + order_lane % 7);
          }
        }
        if (j == error_span) {
          span->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
          span->mutable_status()->set_message("upstream timed out");
          auto* ev = span->add_events();
          ev->set_name("exception");
          ev->set_time_unix_nano(start + duration / 2);
          AddString(ev->mutable_attributes(), "exception.type", "java.net.SocketTimeoutException");
          AddString(ev->mutable_attributes(), "exception.message", "Read timed out after 2000 ms");
        } else if (rng() % 8 == 0) {
          auto* ev = span->add_events();
          ev->set_name("cache.miss");
          ev->set_time_unix_nano(start + duration / 3);
          AddString(ev->mutable_attributes(), "cache.key", absl::StrCat("k", rng() % 100000));
        }
      }
    }
    for (int r = 0; r < spread; ++r) {
      PoolEntry& entry = pool->entries_.emplace_back();
      requests[r].SerializeToString(&entry.bytes);
      if (!FindTraceIds(entry.bytes, &entry.trace_id_at)) {
        return absl::InternalError("request pool: cannot locate trace ids in a generated request");
      }
      if (!FindTimes(entry.bytes, &entry.time_at)) {
        return absl::InternalError("request pool: cannot locate timestamps in a generated request");
      }
      entry.spans = static_cast<int>(entry.trace_id_at.size());
      const size_t prefix = std::strlen(kOrderPrefix);
      for (size_t at = entry.bytes.find(kOrderPrefix); at != std::string::npos;
           at = entry.bytes.find(kOrderPrefix, at + prefix)) {
        if (at + prefix + 16 > entry.bytes.size()) break;
        entry.order_id_at.emplace_back(static_cast<uint32_t>(at + prefix),
                                       GetHex16(entry.bytes.data() + at + prefix));
      }
    }
  }
  return pool;
}

void RequestPool::RenderTo(uint64_t n, char* dst, int64_t shift_nanos) const {
  const PoolEntry& entry = EntryFor(n);
  std::memcpy(dst, entry.bytes.data(), entry.bytes.size());
  if (shift_nanos != 0) {
    for (uint32_t at : entry.time_at) {
      uint64_t t;
      std::memcpy(&t, dst + at, sizeof(t));  // fixed64 is little-endian, as this machine
      t += static_cast<uint64_t>(shift_nanos);
      std::memcpy(dst + at, &t, sizeof(t));
    }
  }
  // Every trace of round n / spread gets the same rewrite of both halves, distinct for every
  // round. Both halves change because receivers may key on one alone: the OpenTelemetry
  // Collector's tail-sampling decision caches key on the low (right) half, so with only the high
  // half rewritten every round after the first would hit the first round's decisions.
  const uint64_t round = n / static_cast<uint64_t>(shape_.trace_spread);
  const uint64_t hi_mask = Mix(round + salt_);
  const uint64_t lo_mask = Mix(hi_mask ^ salt_);
  for (uint32_t at : entry.trace_id_at) {
    uint64_t hi;
    uint64_t lo;
    std::memcpy(&hi, dst + at, sizeof(hi));
    std::memcpy(&lo, dst + at + sizeof(hi), sizeof(lo));
    hi ^= hi_mask;
    lo ^= lo_mask;
    std::memcpy(dst + at, &hi, sizeof(hi));
    std::memcpy(dst + at + sizeof(hi), &lo, sizeof(lo));
  }
  // Pass `pass` over the pool shows the order of lane L that started `step` passes earlier: order
  // (pass - step) * lanes + L goes through state `step` in pass `pass`, so every order walks the
  // lifecycle one state per pass. (Orders that would have started before the first pass show up
  // without their first states.) The high bits are the run's salt.
  const uint64_t pass = n / entries_.size() + kOrderSteps;
  const uint64_t salt = salt_ & 0xffff000000000000u;
  for (const auto& [at, placeholder] : entry.order_id_at) {
    const uint64_t step = placeholder >> 48;
    const uint64_t lane = placeholder & 0xffffffffffffu;
    PutHex16(((pass - step) * static_cast<uint64_t>(order_lanes_) + lane) ^ salt, dst + at);
  }
}

std::string RequestPool::Render(uint64_t n, int64_t shift_nanos) const {
  std::string out(RequestBytes(n), '\0');
  RenderTo(n, out.data(), shift_nanos);
  return out;
}

}  // namespace tracekeep::bench
