#include "collector/spanmetrics/span_metrics.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "collector/pipeline/otlp_convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::spanmetrics {
namespace {

namespace otlp = ::opentelemetry::proto;
using otlp::trace::v1::Span;
using otlp::trace::v1::Status;
using ::testing::HasSubstr;
using ::testing::Not;

void SetAttr(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs,
             const std::string& key, const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// Builds an OTLP request and splits it as the protobuf receivers do.
class RequestBuilder {
 public:
  // Starts a new resource with service.name `service` (none when empty).
  RequestBuilder& Service(const std::string& service) {
    resource_ = request_.add_resource_spans();
    if (!service.empty())
      SetAttr(resource_->mutable_resource()->mutable_attributes(), "service.name", service);
    scope_ = resource_->add_scope_spans();
    return *this;
  }
  RequestBuilder& ResourceAttr(const std::string& key, const std::string& value) {
    SetAttr(resource_->mutable_resource()->mutable_attributes(), key, value);
    return *this;
  }
  // Adds a span lasting `duration_nanos`; returns it for more fields.
  Span* Add(const std::string& name, Span::SpanKind kind, Status::StatusCode code,
            int64_t duration_nanos) {
    Span* s = scope_->add_spans();
    ++n_;
    std::string trace_id(16, '\0');
    trace_id[15] = static_cast<char>(n_);
    trace_id[0] = 1;
    s->set_trace_id(trace_id);
    s->set_span_id(std::string(7, '\1') + static_cast<char>(n_));
    s->set_name(name);
    s->set_kind(kind);
    if (code != Status::STATUS_CODE_UNSET) s->mutable_status()->set_code(code);
    s->set_start_time_unix_nano(1'700'000'000'000'000'000);
    s->set_end_time_unix_nano(1'700'000'000'000'000'000 + duration_nanos);
    return s;
  }
  std::vector<TraceSpans> Split() const {
    auto split = SplitWireRequest(request_.SerializeAsString());
    EXPECT_TRUE(split.ok()) << split.status();
    return split.ok() ? std::move(split->traces) : std::vector<TraceSpans>();
  }

 private:
  otlp::collector::trace::v1::ExportTraceServiceRequest request_;
  otlp::trace::v1::ResourceSpans* resource_ = nullptr;
  otlp::trace::v1::ScopeSpans* scope_ = nullptr;
  int n_ = 0;
};

// The samples of an exposition: "name{labels}" -> value.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[std::string(line.substr(0, space))] = std::string(line.substr(space + 1));
  }
  return out;
}

std::string Exposition(const SpanMetrics& m) {
  std::string text;
  m.AppendExposition(&text);
  return text;
}

std::unique_ptr<SpanMetrics> Make(const SpanMetricsOptions& o = {}) {
  auto m = SpanMetrics::Create(o);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

void Record(SpanMetrics* m, const RequestBuilder& b) {
  Contribution c;
  m->Read(b.Split(), &c);
  m->Add(c);
}

constexpr char kCheckout[] =
    "service_name=\"shop-api\",span_name=\"POST /checkout\",span_kind=\"SPAN_KIND_SERVER\","
    "status_code=\"STATUS_CODE_ERROR\"";

TEST(SpanMetricsTest, CountsCallsAndDurationsPerServiceNameKindAndStatus) {
  auto m = Make();
  RequestBuilder b;
  b.Service("shop-api");
  b.Add("POST /checkout", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_ERROR, 2'000'000);  // 2 ms
  b.Add("POST /checkout", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_ERROR, 2'000'001);
  b.Add("POST /checkout", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_ERROR, 20'000'000'000);
  b.Add("SELECT orders", Span::SPAN_KIND_CLIENT, Status::STATUS_CODE_OK, 500'000);
  b.Service("crm-api");
  b.Add("lookup", Span::SPAN_KIND_INTERNAL, Status::STATUS_CODE_UNSET, 0);
  Record(m.get(), b);

  const auto s = Samples(Exposition(*m));
  const std::string calls = "traces_span_metrics_calls_total";
  const std::string d = "traces_span_metrics_duration_milliseconds";
  EXPECT_EQ(s.at(calls + "{" + kCheckout + "}"), "3");
  // Bounds are inclusive: exactly 2 ms is in le="2", a nanosecond more is not.
  EXPECT_EQ(s.at(d + "_bucket{" + kCheckout + ",le=\"2\"}"), "1");
  EXPECT_EQ(s.at(d + "_bucket{" + kCheckout + ",le=\"4\"}"), "2");
  EXPECT_EQ(s.at(d + "_bucket{" + kCheckout + ",le=\"15000\"}"), "2");
  EXPECT_EQ(s.at(d + "_bucket{" + kCheckout + ",le=\"+Inf\"}"), "3");
  EXPECT_EQ(s.at(d + "_count{" + kCheckout + "}"), "3");
  EXPECT_EQ(s.at(d + "_sum{" + kCheckout + "}"), "20004.000001");
  EXPECT_EQ(
      s.at(calls + "{service_name=\"shop-api\",span_name=\"SELECT orders\",span_kind=\"SPAN_KIND_"
                   "CLIENT\",status_code=\"STATUS_CODE_OK\"}"),
      "1");
  EXPECT_EQ(s.at(calls +
                 "{service_name=\"crm-api\",span_name=\"lookup\",span_kind=\"SPAN_KIND_INTERNAL\","
                 "status_code=\"STATUS_CODE_UNSET\"}"),
            "1");
  EXPECT_EQ(m->series(), 3);

  // A second request adds to the same series.
  Record(m.get(), b);
  EXPECT_EQ(Samples(Exposition(*m)).at(calls + "{" + kCheckout + "}"), "6");
}

TEST(SpanMetricsTest, DefaultBucketsAreTheConnectorsAndTheExpositionIsPrometheusText) {
  auto m = Make();
  RequestBuilder b;
  b.Service("a");
  b.Add("x", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1'000'000);
  Record(m.get(), b);
  const std::string text = Exposition(*m);
  std::vector<std::string> les;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const size_t at = line.find("le=\"");
    if (at == absl::string_view::npos) continue;
    les.emplace_back(line.substr(at + 4, line.find('"', at + 4) - at - 4));
  }
  EXPECT_THAT(les,
              ::testing::ElementsAre("2", "4", "6", "8", "10", "50", "100", "200", "400", "800",
                                     "1000", "1400", "2000", "5000", "10000", "15000", "+Inf"));
  EXPECT_THAT(text, HasSubstr("# TYPE traces_span_metrics_calls_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE traces_span_metrics_duration_milliseconds histogram\n"));
}

TEST(SpanMetricsTest, NamespaceUnitAndBucketsAreConfigurable) {
  SpanMetricsOptions o;
  o.metrics_namespace = "span.metrics";
  o.unit = "s";
  o.buckets = {absl::Milliseconds(100), absl::Seconds(1)};
  auto m = Make(o);
  RequestBuilder b;
  b.Service("a");
  b.Add("x", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 250'000'000);
  Record(m.get(), b);
  const auto s = Samples(Exposition(*m));
  const std::string l =
      "service_name=\"a\",span_name=\"x\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_"
      "CODE_UNSET\"";
  EXPECT_EQ(s.at("span_metrics_calls_total{" + l + "}"), "1");
  EXPECT_EQ(s.at("span_metrics_duration_seconds_bucket{" + l + ",le=\"0.1\"}"), "0");
  EXPECT_EQ(s.at("span_metrics_duration_seconds_bucket{" + l + ",le=\"1\"}"), "1");
  EXPECT_EQ(s.at("span_metrics_duration_seconds_sum{" + l + "}"), "0.25");
}

TEST(SpanMetricsTest, DimensionsComeFromTheSpanThenTheResourceThenTheDefault) {
  SpanMetricsOptions o;
  o.dimensions = {{"http.route", std::nullopt},
                  {"deployment.environment", "none"},
                  {"order.status", std::nullopt}};
  auto m = Make(o);
  RequestBuilder b;
  b.Service("shop-api").ResourceAttr("deployment.environment", "prod");
  Span* s1 = b.Add("GET", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1);
  SetAttr(s1->mutable_attributes(), "http.route", "/orders/{id}");
  SetAttr(s1->mutable_attributes(), "deployment.environment", "canary");  // the span's wins
  SetAttr(s1->mutable_attributes(), "http.route", "/duplicate");       // the first occurrence wins
  b.Add("GET", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1);  // resource's, no route
  b.Service("crm-api");
  Span* s3 = b.Add("GET", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1);
  auto* kv = s3->add_attributes();
  kv->set_key("order.status");
  kv->mutable_value()->set_int_value(-7);
  Record(m.get(), b);

  const auto s = Samples(Exposition(*m));
  const std::string base =
      "traces_span_metrics_calls_total{service_name=\"shop-api\",span_name=\"GET\",span_kind="
      "\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\",";
  EXPECT_EQ(s.at(base + "http_route=\"/orders/{id}\",deployment_environment=\"canary\"}"), "1");
  EXPECT_EQ(s.at(base + "deployment_environment=\"prod\"}"), "1");
  EXPECT_EQ(s.at("traces_span_metrics_calls_total{service_name=\"crm-api\",span_name=\"GET\","
                 "span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\","
                 "deployment_environment=\"none\",order_status=\"-7\"}"),
            "1");
}

TEST(SpanMetricsTest, NewLabelSetsBeyondTheLimitGoToTheOverflowSeries) {
  SpanMetricsOptions o;
  o.max_series = 2;
  auto m = Make(o);
  RequestBuilder b;
  b.Service("a");
  for (const char* name : {"one", "two", "three", "four", "one", "four"}) {
    b.Add(name, Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1'000'000);
  }
  Record(m.get(), b);
  const auto s = Samples(Exposition(*m));
  EXPECT_EQ(s.at("traces_span_metrics_calls_total{otel_metric_overflow=\"true\"}"), "3");
  EXPECT_EQ(s.at("traces_span_metrics_duration_milliseconds_bucket{otel_metric_overflow="
                 "\"true\",le=\"2\"}"),
            "3");
  EXPECT_EQ(s.at("traces_span_metrics_calls_total{service_name=\"a\",span_name=\"one\",span_kind="
                 "\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\"}"),
            "2");
  EXPECT_EQ(m->overflow_spans(), 3u);
  EXPECT_EQ(m->series(), 3);  // two label sets and the overflow series
}

TEST(SpanMetricsTest, ExceptionEventsAreCountedPerServiceAndTypeEvenOnOkSpans) {
  auto m = Make();
  RequestBuilder b;
  b.Service("mes-api");
  Span* ok = b.Add("poll", Span::SPAN_KIND_INTERNAL, Status::STATUS_CODE_OK, 1);
  for (int i = 0; i < 2; ++i) {
    auto* e = ok->add_events();
    e->set_name("exception");
    SetAttr(e->mutable_attributes(), "exception.type", "TimeoutError");
    SetAttr(e->mutable_attributes(), "exception.message", "retrying");
  }
  auto* other = ok->add_events();  // not an exception
  other->set_name("retry");
  SetAttr(other->mutable_attributes(), "exception.type", "NotCounted");
  Span* err = b.Add("write", Span::SPAN_KIND_CLIENT, Status::STATUS_CODE_ERROR, 1);
  auto* e = err->add_events();
  e->set_name("exception");
  SetAttr(e->mutable_attributes(), "exception.message", "no type");
  Record(m.get(), b);

  const auto s = Samples(Exposition(*m));
  EXPECT_EQ(s.at("tracekeep_span_exceptions_total{service_name=\"mes-api\",exception_type="
                 "\"TimeoutError\",status_code=\"STATUS_CODE_OK\"}"),
            "2");
  EXPECT_EQ(s.at("tracekeep_span_exceptions_total{service_name=\"mes-api\",exception_type=\"\","
                 "status_code=\"STATUS_CODE_ERROR\"}"),
            "1");
  EXPECT_EQ(m->exception_series(), 2);

  SpanMetricsOptions off;
  off.exceptions = false;
  auto quiet = Make(off);
  Record(quiet.get(), b);
  EXPECT_THAT(Exposition(*quiet), Not(HasSubstr("tracekeep_span_exceptions_total")));
}

TEST(SpanMetricsTest, LabelValuesAreEscaped) {
  auto m = Make();
  RequestBuilder b;
  b.Service("a\"b");
  b.Add("x\\y\nz", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1);
  Record(m.get(), b);
  EXPECT_THAT(Exposition(*m),
              HasSubstr("{service_name=\"a\\\"b\",span_name=\"x\\\\y\\nz\",span_kind="));
}

// Records every batch offered, or refuses with a preset status.
class FakeIntake final : public SpanIntake {
 public:
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override {
    if (!refusal.ok()) return refusal;
    spans += span_count;
    traces.clear();  // taken
    return absl::OkStatus();
  }
  absl::Status Precheck(int64_t) override { return precheck; }
  absl::Status refusal;
  absl::Status precheck;
  int64_t spans = 0;
};

TEST(SpanMetricsIntakeTest, CountsWhatTheNextStageTookAndNothingItRefused) {
  auto m = Make();
  FakeIntake next;
  SpanMetricsIntake stage(m.get(), &next);
  RequestBuilder b;
  b.Service("a");
  b.Add("x", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1);
  b.Add("x", Span::SPAN_KIND_SERVER, Status::STATUS_CODE_UNSET, 1);
  const std::string series =
      "traces_span_metrics_calls_total{service_name=\"a\",span_name=\"x\",span_kind=\"SPAN_KIND_"
      "SERVER\",status_code=\"STATUS_CODE_UNSET\"}";

  next.refusal = absl::ResourceExhaustedError("full");
  EXPECT_EQ(stage.Offer(b.Split(), 2).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Samples(Exposition(*m)).count(series), 0u);

  next.refusal = absl::OkStatus();
  ASSERT_TRUE(stage.Offer(b.Split(), 2).ok());
  EXPECT_EQ(next.spans, 2);
  EXPECT_EQ(Samples(Exposition(*m)).at(series), "2");

  next.precheck = absl::UnavailableError("draining");
  EXPECT_EQ(stage.Precheck(5).code(), absl::StatusCode::kUnavailable);
}

TEST(SpanMetricsTest, InvalidOptionsAreRefusedNamingTheField) {
  SpanMetricsOptions o;
  o.unit = "us";
  o.buckets = {absl::Milliseconds(5), absl::Milliseconds(5)};
  o.max_series = 0;
  o.dimensions = {{"service.name", std::nullopt}, {"", std::nullopt}};
  const auto problems = ValidateOptions(o, "span_metrics");
  EXPECT_THAT(
      problems,
      ::testing::ElementsAre(
          HasSubstr("span_metrics.histogram.unit: must be ms or s, got \"us\""),
          HasSubstr("span_metrics.histogram.explicit.buckets[1]: must be > 0 and greater"),
          HasSubstr("span_metrics.aggregation_cardinality_limit: must be >= 1, got 0"),
          HasSubstr("span_metrics.dimensions[0].name: label service_name is already used"),
          HasSubstr("span_metrics.dimensions[1].name: must be 1 to 127 bytes long, got \"\"")));
  EXPECT_FALSE(SpanMetrics::Create(o).ok());
  EXPECT_EQ(LabelName("http.route"), "http_route");
  EXPECT_EQ(LabelName("9lives"), "key_9lives");
}

}  // namespace
}  // namespace tracekeep::spanmetrics
