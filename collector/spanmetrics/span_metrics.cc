#include "collector/spanmetrics/span_metrics.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "collector/pipeline/otlp_wire.h"

namespace tracekeep::spanmetrics {
namespace {

// Label values of opentelemetry.proto.trace.v1.Span.SpanKind and Status.StatusCode, as the
// connector writes them (the enum names).
constexpr const char* kSpanKinds[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
constexpr const char* kStatusCodes[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
constexpr absl::string_view kExceptionEvent = "exception";
constexpr absl::string_view kExceptionType = "exception.type";
constexpr absl::string_view kExceptionMessage = "exception.message";

uint64_t KeyBit(absl::string_view key) { return AttributeKeyBit(key.data(), key.size()); }

// Shortest decimal text that reads back as `d`, without an exponent (Go's FormatFloat 'f', -1).
void AppendDouble(double d, std::string* out) {
  char buf[400];
  const auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
  if (r.ec == std::errc()) {
    out->append(buf, r.ptr);
  } else {
    absl::StrAppend(out, d);
  }
}

// The text of a scalar opentelemetry.proto.common.v1.AnyValue: strings as they are, integers and
// doubles in decimal, booleans true/false. False for arrays, maps, bytes and an empty value.
// `scratch` holds the text when it is not a view of `any`.
bool AnyValueText(absl::string_view any, std::string* scratch, absl::string_view* out) {
  // The common case: a string_value alone, with a one-byte length.
  if (any.size() >= 2 && any[0] == '\x0a' && static_cast<uint8_t>(any[1]) < 0x80 &&
      static_cast<uint8_t>(any[1]) == any.size() - 2) {
    *out = any.substr(2);
    return true;
  }
  bool found = false;
  wire::ForEachField(any, [&](const wire::Field& f) {
    switch (f.number) {
      case 1:  // string_value
        found = f.type == wire::kLengthDelimited;
        if (found) *out = f.bytes;
        break;
      case 2:  // bool_value
        found = f.type == wire::kVarint;
        if (found) *out = f.varint != 0 ? "true" : "false";
        break;
      case 3:  // int_value
        found = f.type == wire::kVarint;
        if (found) {
          scratch->clear();
          absl::StrAppend(scratch, static_cast<int64_t>(f.varint));
          *out = *scratch;
        }
        break;
      case 4:  // double_value
        found = f.type == wire::kFixed64;
        if (found) {
          double d;
          std::memcpy(&d, &f.varint, sizeof(d));
          scratch->clear();
          AppendDouble(d, scratch);
          *out = *scratch;
        }
        break;
      default:  // array, kvlist, bytes: the last field of the oneof wins, as in protobuf
        found = false;
        break;
    }
    return true;
  });
  return found;
}

// Splits a serialized KeyValue into its key and value.
void ReadKeyValue(absl::string_view kv, absl::string_view* key, absl::string_view* value) {
  // The common case: the key, then the value, each with a one-byte length.
  if (kv.size() >= 4 && kv[0] == '\x0a') {
    const auto n = static_cast<uint8_t>(kv[1]);
    if (n < 0x80 && size_t{n} + 4 <= kv.size() && kv[2 + n] == '\x12' &&
        static_cast<uint8_t>(kv[3 + n]) < 0x80 &&
        static_cast<uint8_t>(kv[3 + n]) == kv.size() - 4 - n) {
      *key = kv.substr(2, n);
      *value = kv.substr(4 + n);
      return;
    }
  }
  *key = {};
  *value = {};
  wire::ForEachField(kv, [&](const wire::Field& f) {
    if (f.type == wire::kLengthDelimited) {
      if (f.number == 1) *key = f.bytes;
      if (f.number == 2) *value = f.bytes;
    }
    return true;
  });
}

void PutString(absl::string_view s, std::string* out) {
  wire::PutVarint(s.size(), out);
  out->append(s.data(), s.size());
}

bool GetString(absl::string_view* in, absl::string_view* s) {
  uint64_t n;
  if (!wire::ReadVarint(in, &n) || n > in->size()) return false;
  *s = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

// Dimension values taken from the resource of one origin.
struct ResourceDims {
  const SpanOrigin* origin = nullptr;
  std::vector<std::string> values;
  std::vector<uint8_t> found;
};

// Resources whose dimension values a Read keeps at a time: a request's spans alternate between
// a few origins (a trace hops between services), each resource is read once.
constexpr size_t kCachedOrigins = 16;

// The per-thread buffers of Read: dimension values of the span being read, and of the resources
// of the origins seen in this request.
struct ReadScratch {
  std::vector<absl::string_view> span_values;
  std::vector<uint8_t> span_found;
  std::vector<std::string> span_text;
  ResourceDims resources[kCachedOrigins];
  size_t resources_used = 0;
  size_t next_evicted = 0;
  std::string resource_text;
  std::vector<absl::string_view> exception_types;  // of the span being read

  void Reset(size_t dims) {
    span_values.assign(dims, {});
    span_found.assign(dims, 0);
    span_text.resize(dims);
    resources_used = 0;
    next_evicted = 0;
  }
};

// The key of a serialized KeyValue, when it is its first field with a one-byte length (what
// every encoder writes); false otherwise.
inline bool FastKey(absl::string_view kv, absl::string_view* key) {
  if (kv.size() < 2 || kv[0] != '\x0a') return false;
  const auto n = static_cast<uint8_t>(kv[1]);
  if (n >= 0x80 || n > kv.size() - 2) return false;
  *key = kv.substr(2, n);
  return true;
}

// The dimension values of an origin's resource, read on first use within a Read.
const ResourceDims* ResourceOf(const std::vector<Dimension>& dimensions, const SpanOrigin* origin,
                               ReadScratch* scratch) {
  for (size_t i = 0; i < scratch->resources_used; ++i) {
    if (scratch->resources[i].origin == origin) return &scratch->resources[i];
  }
  ResourceDims* r;
  if (scratch->resources_used < kCachedOrigins) {
    r = &scratch->resources[scratch->resources_used++];
  } else {
    r = &scratch->resources[scratch->next_evicted];
    scratch->next_evicted = (scratch->next_evicted + 1) % kCachedOrigins;
  }
  const size_t dims = dimensions.size();
  r->origin = origin;
  r->values.resize(dims);
  r->found.assign(dims, 0);
  if (origin == nullptr) return r;
  wire::ForEachField(origin->resource, [&](const wire::Field& f) {
    if (f.number != 1 || f.type != wire::kLengthDelimited) return true;
    absl::string_view key, value, text;
    ReadKeyValue(f.bytes, &key, &value);
    for (size_t d = 0; d < dims; ++d) {
      // The first occurrence of a key wins, as the Collector's attribute maps read it.
      if (!r->found[d] && key == dimensions[d].name &&
          AnyValueText(value, &scratch->resource_text, &text)) {
        r->values[d].assign(text.data(), text.size());
        r->found[d] = 1;
      }
    }
    return true;
  });
  return r;
}

void AppendEscaped(absl::string_view value, std::string* out) {
  for (char c : value) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// The exposition text of labels, `name="value",...`, escaped; values from `optional_from` on are
// left out when empty (dimensions without value nor default).
std::string LabelText(const std::vector<std::string>& names,
                      const std::vector<absl::string_view>& values, size_t optional_from) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (values[i].empty() && i >= optional_from) continue;
    if (!out.empty()) out.push_back(',');
    absl::StrAppend(&out, names[i], "=\"");
    AppendEscaped(values[i], &out);
    out.push_back('"');
  }
  return out;
}

std::string MetricName(const std::string& ns, absl::string_view name) {
  std::string out = ns.empty() ? std::string(name) : absl::StrCat(ns, ".", name);
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') c = '_';
  }
  return out;
}

constexpr absl::string_view kOverflowLabel = "otel_metric_overflow=\"true\"";

}  // namespace

std::vector<absl::Duration> DefaultBuckets() {
  std::vector<absl::Duration> b;
  for (int ms : {2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000}) {
    b.push_back(absl::Milliseconds(ms));
  }
  return b;
}

std::string LabelName(const std::string& key) {
  std::string out = key;
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  if (!out.empty() && absl::ascii_isdigit(static_cast<unsigned char>(out[0]))) {
    out = absl::StrCat("key_", out);
  }
  return out;
}

std::vector<std::string> ValidateOptions(const SpanMetricsOptions& o, const std::string& path) {
  std::vector<std::string> problems;
  if (o.unit != "ms" && o.unit != "s") {
    problems.push_back(
        absl::StrCat(path, ".histogram.unit: must be ms or s, got \"", o.unit, "\""));
  }
  for (size_t i = 0; i < o.buckets.size(); ++i) {
    if (o.buckets[i] <= absl::ZeroDuration() || (i > 0 && o.buckets[i] <= o.buckets[i - 1])) {
      problems.push_back(absl::StrCat(path, ".histogram.explicit.buckets[", i,
                                      "]: must be > 0 and greater than the bucket before, got ",
                                      absl::FormatDuration(o.buckets[i])));
    }
  }
  if (o.max_series < 1) {
    problems.push_back(
        absl::StrCat(path, ".aggregation_cardinality_limit: must be >= 1, got ", o.max_series));
  }
  if (o.dimensions.size() > kMaxDimensions) {
    problems.push_back(absl::StrCat(path, ".dimensions: at most ", kMaxDimensions,
                                    " dimensions, got ", o.dimensions.size()));
  }
  std::set<std::string> labels = {"service_name", "span_name", "span_kind", "status_code",
                                  "otel_metric_overflow"};
  for (size_t i = 0; i < o.dimensions.size(); ++i) {
    const std::string& name = o.dimensions[i].name;
    const std::string where = absl::StrCat(path, ".dimensions[", i, "].name");
    if (name.empty() || name.size() >= 128) {
      problems.push_back(absl::StrCat(where, ": must be 1 to 127 bytes long, got \"", name, "\""));
    } else if (!labels.insert(LabelName(name)).second) {
      problems.push_back(absl::StrCat(where, ": label ", LabelName(name),
                                      " is already used by another label, got \"", name, "\""));
    }
  }
  return problems;
}

absl::StatusOr<std::unique_ptr<SpanMetrics>> SpanMetrics::Create(
    const SpanMetricsOptions& options) {
  const std::vector<std::string> problems = ValidateOptions(options, "span_metrics");
  if (!problems.empty()) return absl::InvalidArgumentError(problems.front());
  return std::unique_ptr<SpanMetrics>(new SpanMetrics(options));
}

SpanMetrics::SpanMetrics(const SpanMetricsOptions& options) : options_(options) {
  calls_name_ = absl::StrCat(MetricName(options_.metrics_namespace, "calls"), "_total");
  duration_name_ = absl::StrCat(MetricName(options_.metrics_namespace, "duration"),
                                options_.unit == "s" ? "_seconds" : "_milliseconds");
  label_names_ = {"service_name", "span_name", "span_kind", "status_code"};
  for (size_t i = 0; i < options_.dimensions.size(); ++i) {
    const Dimension& d = options_.dimensions[i];
    label_names_.push_back(LabelName(d.name));
    dimension_key_bits_ |= KeyBit(d.name);
    if (d.name.size() < kMaxKeyLength) dims_by_length_[d.name.size()] |= uint32_t{1} << i;
  }
  nanos_per_unit_ = options_.unit == "s" ? 1e9 : 1e6;
  for (absl::Duration b : options_.buckets) {
    const double v = absl::ToDoubleNanoseconds(b) / nanos_per_unit_;
    bounds_.push_back(v);
    std::string le;
    AppendDouble(v, &le);
    bound_labels_.push_back(std::move(le));
  }
  // An exception event shows by its name (the receivers put event names in the filter too) or
  // by its attributes' keys.
  exception_key_bit_ = KeyBit(kExceptionType) | KeyBit(kExceptionMessage) | KeyBit(kExceptionEvent);
}

size_t SpanMetrics::Bucket(double value) const {
  // The first bound >= value: bounds are inclusive upper limits (Prometheus `le`).
  return std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
}

void SpanMetrics::Read(const std::vector<TraceSpans>& traces, Contribution* out) {
  out->Clear();
  if (!options_.enabled) return;
  thread_local ReadScratch scratch;
  const size_t dims = options_.dimensions.size();
  scratch.Reset(dims);
  const bool want_exceptions = options_.exceptions;

  for (const TraceSpans& trace : traces) {
    for (const SpanRecord& span : trace.spans) {
      if (span.in_journal_only) {
        unreadable_spans_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // The dimensions' values from the resource, once per origin.
      const SpanOrigin* origin = span.origin.get();
      const ResourceDims* resource =
          dims > 0 ? ResourceOf(options_.dimensions, origin, &scratch) : nullptr;
      absl::string_view name;
      uint64_t kind = 0;
      uint64_t status = 0;
      const bool read_attributes = (span.attribute_keys & dimension_key_bits_) != 0;
      const bool read_events = want_exceptions && (span.attribute_keys & exception_key_bit_) != 0;
      if (read_attributes) std::fill(scratch.span_found.begin(), scratch.span_found.end(), 0);
      scratch.exception_types.clear();
      // The receivers noted name, kind and status: without a dimension or an exception event to
      // look for, the span is not walked again.
      const bool walk = !span.fields_known || read_attributes || read_events;
      if (!walk) {
        name = span.name();
        kind = span.kind;
        status = span.status_code;
      }
      const bool ok = !walk || wire::ForEachField(span.span, [&](const wire::Field& f) {
        switch (f.number) {
          case 5:
            if (f.type == wire::kLengthDelimited) name = f.bytes;
            break;
          case 6:
            if (f.type == wire::kVarint) kind = f.varint;
            break;
          case 9:
            if (read_attributes && f.type == wire::kLengthDelimited) {
              absl::string_view key, value, text;
              const bool fast = FastKey(f.bytes, &key);
              if (!fast) ReadKeyValue(f.bytes, &key, &value);
              // Only the dimensions whose key has this length are compared.
              uint32_t candidates = key.size() < kMaxKeyLength ? dims_by_length_[key.size()] : 0;
              for (size_t d = 0; candidates != 0; ++d, candidates >>= 1) {
                if ((candidates & 1) == 0 || scratch.span_found[d] ||
                    key != options_.dimensions[d].name) {
                  continue;
                }
                if (fast) ReadKeyValue(f.bytes, &key, &value);
                if (AnyValueText(value, &scratch.span_text[d], &text)) {
                  scratch.span_values[d] = text;
                  scratch.span_found[d] = 1;
                }
              }
            }
            break;
          case 11:
            if (read_events && f.type == wire::kLengthDelimited) {
              absl::string_view event_name, type;
              wire::ForEachField(f.bytes, [&](const wire::Field& e) {
                if (e.type != wire::kLengthDelimited) return true;
                if (e.number == 2) event_name = e.bytes;
                if (e.number == 3) {
                  absl::string_view key, value;
                  ReadKeyValue(e.bytes, &key, &value);
                  if (key == kExceptionType) {
                    wire::ForEachField(value, [&](const wire::Field& v) {
                      if (v.number == 1 && v.type == wire::kLengthDelimited) type = v.bytes;
                      return true;
                    });
                  }
                }
                return true;
              });
              // The span's status may come later: keys are written after the scan.
              if (event_name == kExceptionEvent) scratch.exception_types.push_back(type);
            }
            break;
          case 15:
            if (f.type == wire::kLengthDelimited) {
              wire::ForEachField(f.bytes, [&](const wire::Field& st) {
                if (st.number == 3 && st.type == wire::kVarint) status = st.varint;
                return true;
              });
            }
            break;
          default:
            break;
        }
        return true;
      });
      if (!ok) {
        unreadable_spans_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (kind >= std::size(kSpanKinds)) kind = 0;
      if (status >= std::size(kStatusCodes)) status = 0;
      for (absl::string_view type : scratch.exception_types) {
        Contribution::Entry& x = out->exceptions.emplace_back();
        x.key_offset = static_cast<uint32_t>(out->keys.size());
        PutString(origin != nullptr ? origin->service_name : "", &out->keys);
        PutString(type, &out->keys);
        out->keys.push_back(static_cast<char>(status));
        x.key_size = static_cast<uint32_t>(out->keys.size() - x.key_offset);
      }

      Contribution::Entry& e = out->calls.emplace_back();
      e.key_offset = static_cast<uint32_t>(out->keys.size());
      PutString(origin != nullptr ? origin->service_name : "", &out->keys);
      PutString(name, &out->keys);
      out->keys.push_back(static_cast<char>(kind));
      out->keys.push_back(static_cast<char>(status));
      for (size_t d = 0; d < dims; ++d) {
        if (read_attributes && scratch.span_found[d]) {
          out->keys.push_back(1);
          PutString(scratch.span_values[d], &out->keys);
        } else if (resource->found[d]) {
          out->keys.push_back(1);
          PutString(resource->values[d], &out->keys);
        } else if (options_.dimensions[d].default_value.has_value()) {
          out->keys.push_back(1);
          PutString(*options_.dimensions[d].default_value, &out->keys);
        } else {
          out->keys.push_back(0);
        }
      }
      e.key_size = static_cast<uint32_t>(out->keys.size() - e.key_offset);
      const int64_t nanos = std::max<int64_t>(0, span.end_unix_nanos - span.start_unix_nanos);
      e.value = static_cast<double>(nanos) / nanos_per_unit_;
    }
  }
}

SpanMetrics::CallSeries* SpanMetrics::CallSeriesFor(absl::string_view key) {
  auto it = calls_.find(key);
  if (it != calls_.end()) return it->second.get();
  if (static_cast<int64_t>(calls_.size()) >= options_.max_series) {
    if (call_overflow_ == nullptr) {
      call_overflow_ = std::make_unique<CallSeries>();
      call_overflow_->labels = std::string(kOverflowLabel);
      call_overflow_->buckets.assign(bounds_.size() + 1, 0);
    }
    return call_overflow_.get();
  }
  auto series = std::make_unique<CallSeries>();
  series->buckets.assign(bounds_.size() + 1, 0);
  absl::string_view in = key;
  absl::string_view service, name;
  GetString(&in, &service);
  GetString(&in, &name);
  const auto kind = in.size() >= 2 ? static_cast<uint8_t>(in[0]) : 0;
  const auto status = in.size() >= 2 ? static_cast<uint8_t>(in[1]) : 0;
  in.remove_prefix(std::min<size_t>(2, in.size()));
  std::vector<absl::string_view> values = {service, name, kSpanKinds[kind], kStatusCodes[status]};
  for (size_t d = 0; d < options_.dimensions.size(); ++d) {
    absl::string_view value;
    const bool present = !in.empty() && in[0] == 1;
    if (!in.empty()) in.remove_prefix(1);
    if (present) GetString(&in, &value);
    values.push_back(value);
  }
  series->labels = LabelText(label_names_, values, /*optional_from=*/4);
  CallSeries* out = series.get();
  calls_.emplace(std::string(key), std::move(series));
  return out;
}

SpanMetrics::ExceptionSeries* SpanMetrics::ExceptionSeriesFor(absl::string_view key) {
  auto it = exceptions_.find(key);
  if (it != exceptions_.end()) return it->second.get();
  if (static_cast<int64_t>(exceptions_.size()) >= options_.max_series) {
    if (exception_overflow_ == nullptr) {
      exception_overflow_ = std::make_unique<ExceptionSeries>();
      exception_overflow_->labels = std::string(kOverflowLabel);
    }
    return exception_overflow_.get();
  }
  auto series = std::make_unique<ExceptionSeries>();
  absl::string_view in = key;
  absl::string_view service, type;
  GetString(&in, &service);
  GetString(&in, &type);
  const size_t status = in.empty() ? 0 : static_cast<uint8_t>(in[0]);
  static const std::vector<std::string> kNames = {"service_name", "exception_type", "status_code"};
  series->labels = LabelText(
      kNames, {service, type, kStatusCodes[status < std::size(kStatusCodes) ? status : 0]},
      /*optional_from=*/3);
  ExceptionSeries* out = series.get();
  exceptions_.emplace(std::string(key), std::move(series));
  return out;
}

void SpanMetrics::Add(const Contribution& c) {
  if (c.calls.empty() && c.exceptions.empty()) return;
  const absl::string_view keys = c.keys;
  uint64_t overflow_spans = 0;
  uint64_t overflow_exceptions = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CallSeries* series = nullptr;
    absl::string_view last_key;
    for (const Contribution::Entry& e : c.calls) {
      const absl::string_view key = keys.substr(e.key_offset, e.key_size);
      if (series == nullptr || key != last_key) {
        series = CallSeriesFor(key);
        last_key = key;
      }
      ++series->calls;
      series->sum += e.value;
      ++series->buckets[Bucket(e.value)];
      if (series == call_overflow_.get()) ++overflow_spans;
    }
    for (const Contribution::Entry& e : c.exceptions) {
      ExceptionSeries* s = ExceptionSeriesFor(keys.substr(e.key_offset, e.key_size));
      ++s->count;
      if (s == exception_overflow_.get()) ++overflow_exceptions;
    }
  }
  if (overflow_spans > 0) overflow_spans_.fetch_add(overflow_spans, std::memory_order_relaxed);
  if (overflow_exceptions > 0) {
    overflow_exceptions_.fetch_add(overflow_exceptions, std::memory_order_relaxed);
  }
}

int64_t SpanMetrics::series() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(calls_.size()) + (call_overflow_ != nullptr ? 1 : 0);
}

int64_t SpanMetrics::exception_series() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(exceptions_.size()) + (exception_overflow_ != nullptr ? 1 : 0);
}

void SpanMetrics::AppendExposition(std::string* out) const {
  if (!options_.enabled) return;
  // A snapshot of the values under the lock; the text is written without it (series and their
  // labels are never removed or changed once created).
  struct CallValues {
    const CallSeries* series;
    uint64_t calls;
    double sum;
    size_t first_bucket;  // in `buckets`
  };
  std::vector<CallValues> calls;
  std::vector<uint64_t> buckets;
  std::vector<std::pair<const ExceptionSeries*, uint64_t>> exceptions;
  const CallSeries* call_overflow = nullptr;
  const ExceptionSeries* exception_overflow = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    calls.reserve(calls_.size() + 1);
    buckets.reserve((calls_.size() + 1) * (bounds_.size() + 1));
    auto take = [&](const CallSeries* s) {
      calls.push_back({s, s->calls, s->sum, buckets.size()});
      buckets.insert(buckets.end(), s->buckets.begin(), s->buckets.end());
    };
    for (const auto& [key, s] : calls_) take(s.get());
    call_overflow = call_overflow_.get();
    if (call_overflow != nullptr) take(call_overflow);
    exceptions.reserve(exceptions_.size() + 1);
    for (const auto& [key, s] : exceptions_) exceptions.emplace_back(s.get(), s->count);
    exception_overflow = exception_overflow_.get();
    if (exception_overflow != nullptr)
      exceptions.emplace_back(exception_overflow, exception_overflow->count);
  }
  // A stable order (by labels), the overflow series last.
  std::sort(calls.begin(), calls.end(), [&](const CallValues& a, const CallValues& b) {
    if ((a.series == call_overflow) != (b.series == call_overflow))
      return b.series == call_overflow;
    return a.series->labels < b.series->labels;
  });
  std::sort(exceptions.begin(), exceptions.end(), [&](const auto& a, const auto& b) {
    if ((a.first == exception_overflow) != (b.first == exception_overflow)) {
      return b.first == exception_overflow;
    }
    return a.first->labels < b.first->labels;
  });

  absl::StrAppend(out, "# HELP ", calls_name_,
                  " Spans accepted (before sampling), by service, span name, kind and status.\n",
                  "# TYPE ", calls_name_, " counter\n");
  for (const CallValues& c : calls) {
    absl::StrAppend(out, calls_name_, "{", c.series->labels, "} ", c.calls, "\n");
  }
  absl::StrAppend(out, "# HELP ", duration_name_,
                  " Durations of the spans accepted (before sampling).\n", "# TYPE ",
                  duration_name_, " histogram\n");
  const std::string bucket_name = absl::StrCat(duration_name_, "_bucket{");
  for (const CallValues& c : calls) {
    const absl::string_view labels = c.series->labels;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += buckets[c.first_bucket + i];
      absl::StrAppend(out, bucket_name, labels, labels.empty() ? "" : ",", "le=\"",
                      i < bound_labels_.size() ? absl::string_view(bound_labels_[i]) : "+Inf",
                      "\"} ", cumulative, "\n");
    }
    absl::StrAppend(out, duration_name_, "_sum{", labels, "} ");
    AppendDouble(c.sum, out);
    absl::StrAppend(out, "\n", duration_name_, "_count{", labels, "} ", c.calls, "\n");
  }

  if (!options_.exceptions) return;
  constexpr absl::string_view kName = "tracekeep_span_exceptions_total";
  absl::StrAppend(out, "# HELP ", kName,
                  " Exception span events of accepted spans (before sampling), by service, "
                  "exception.type and the span's status (exceptions of OK spans are hidden "
                  "errors).\n# TYPE ",
                  kName, " counter\n");
  for (const auto& [series, count] : exceptions) {
    absl::StrAppend(out, kName, "{", series->labels, "} ", count, "\n");
  }
}

absl::Status SpanMetricsIntake::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  thread_local Contribution contribution;
  metrics_->Read(traces, &contribution);
  absl::Status status = next_->Offer(std::move(traces), span_count);
  if (status.ok()) metrics_->Add(contribution);
  return status;
}

}  // namespace tracekeep::spanmetrics
