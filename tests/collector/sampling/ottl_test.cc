#include "collector/sampling/ottl.h"

#include <string>
#include <vector>

#include "collector/sampling/policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/sampling/span_builder.h"

namespace tracekeep::sampling {
namespace {

using otlp::trace::v1::Span;
using otlp::trace::v1::Status;
using ::testing::HasSubstr;

// One span as the conditions see it: GET /orders, SERVER, ERROR, 1.5 s, a few attributes, a
// resource with service.name, and (spanevent) an exception event.
struct Fixture {
  std::vector<Attribute> span_attrs;
  std::vector<Attribute> resource_attrs;
  std::vector<Attribute> event_attrs;
  ottl::Input input;

  Fixture() {
    auto str = [](std::string_view k, std::string_view v) {
      Attribute a;
      a.key = k;
      a.value.type = AttributeValue::Type::kString;
      a.value.string_value = v;
      return a;
    };
    Attribute code;
    code.key = "http.status_code";
    code.value.type = AttributeValue::Type::kInt;
    code.value.int_value = 403;
    Attribute ratio;
    ratio.key = "load";
    ratio.value.type = AttributeValue::Type::kDouble;
    ratio.value.double_value = 0.75;
    Attribute retried;
    retried.key = "retried";
    retried.value.type = AttributeValue::Type::kBool;
    retried.value.bool_value = true;
    Attribute tags;  // an array: comparable to nothing
    tags.key = "tags";
    span_attrs = {str("url.path", "/files/../../etc/passwd"),
                  code,
                  ratio,
                  retried,
                  tags,
                  str("db.statement", "SELECT * FROM users WHERE id = '1' OR '1'='1'")};
    resource_attrs = {str("service.name", "shop-api")};
    event_attrs = {str("exception.type", "java.sql.SQLException")};
    input.span_name = "GET /orders";
    input.kind = 2;
    input.status_code = kStatusError;
    input.start_unix_nanos = 1'000'000'000;
    input.end_unix_nanos = 2'500'000'000;
    input.span_attributes = span_attrs.data();
    input.span_attribute_count = span_attrs.size();
    input.resource_attributes = resource_attrs.data();
    input.resource_attribute_count = resource_attrs.size();
    input.event_name = "exception";
    input.event_attributes = event_attrs.data();
    input.event_attribute_count = event_attrs.size();
  }
};

struct Case {
  const char* condition;
  ottl::Context context;
  bool expected;
};

constexpr ottl::Context kSpan = ottl::Context::kSpan;
constexpr ottl::Context kEvent = ottl::Context::kSpanEvent;

TEST(OttlTest, ConditionsGiveTheirVerdicts) {
  const Case cases[] = {
      {R"(name == "GET /orders")", kSpan, true},
      {R"(name != "GET /orders")", kSpan, false},
      {R"(kind == SPAN_KIND_SERVER)", kSpan, true},
      {R"(kind == SPAN_KIND_CLIENT)", kSpan, false},
      {R"(status.code == STATUS_CODE_ERROR)", kSpan, true},
      {R"(status.code != STATUS_CODE_OK and status.code == 2)", kSpan, true},
      {R"(attributes["http.status_code"] >= 400)", kSpan, true},
      {R"(attributes["http.status_code"] == 403.0)", kSpan, true},  // int vs float: numbers
      {R"(attributes["http.status_code"] < 400)", kSpan, false},
      {R"(attributes["http.status_code"] == "403")", kSpan, false},  // different types
      {R"(attributes["http.status_code"] != "403")", kSpan, true},
      {R"(attributes["load"] > 0.5 and attributes["load"] <= 0.75)", kSpan, true},
      {R"(attributes["retried"] == true)", kSpan, true},
      {R"(attributes["retried"] > false)", kSpan, false},  // bools are not ordered
      {R"(attributes["missing"] == nil)", kSpan, true},
      {R"(attributes["missing"] != nil)", kSpan, false},
      {R"(attributes["missing"] > 5)", kSpan, false},
      {R"(attributes["tags"] == nil)", kSpan, false},
      {R"(attributes["tags"] != "x")", kSpan, true},
      {R"(resource.attributes["service.name"] == "shop-api")", kSpan, true},
      {R"(resource.attributes["service.name"] < "t")", kSpan, true},  // bytewise
      {R"(end_time - start_time > Duration("1s"))", kSpan, true},
      {R"(end_time - start_time >= Duration("1.5s"))", kSpan, true},
      {R"(end_time - start_time > Duration("2s"))", kSpan, false},
      {R"(end_time - start_time > 1000)", kSpan, false},  // a duration is not an int
      {R"(end_time_unix_nano - start_time_unix_nano == 1500000000)", kSpan, true},
      {R"(start_time_unix_nano < end_time_unix_nano)", kSpan, true},
      {R"(end_time > start_time)", kSpan, true},
      {R"(end_time == 2500000000)", kSpan, false},  // a time is not an int
      {R"(IsMatch(attributes["url.path"], "\\.\\./"))", kSpan, true},
      {R"(IsMatch(attributes["db.statement"], "(?i)'\\s*or\\s*'1'\\s*=\\s*'1"))", kSpan, true},
      {R"(IsMatch(attributes["http.status_code"], "^40[13]$"))", kSpan, true},
      {R"(IsMatch(attributes["missing"], ".*"))", kSpan, false},
      {R"(IsMatch(name, "^GET "))", kSpan, true},
      {R"(not IsMatch(name, "^GET "))", kSpan, false},
      {R"(not (kind == SPAN_KIND_CLIENT or status.code == STATUS_CODE_OK))", kSpan, true},
      {R"(kind == SPAN_KIND_CLIENT or status.code == STATUS_CODE_ERROR and name == "x")", kSpan,
       false},  // and binds tighter than or
      {R"((kind == SPAN_KIND_SERVER or status.code == STATUS_CODE_OK) and name == "GET /orders")",
       kSpan, true},
      {R"(true)", kSpan, true},
      {R"(not true)", kSpan, false},
      {R"(-5 < attributes["load"])", kSpan, true},
      {R"(name == "exception")", kEvent, true},
      {R"(attributes["exception.type"] == "java.sql.SQLException")", kEvent, true},
      {R"(IsMatch(attributes["exception.type"], "SQL"))", kEvent, true},
      {R"(attributes["url.path"] == nil)", kEvent, true},  // the event's own attributes
      {R"(span.attributes["http.status_code"] == 403)", kEvent, true},
      {R"(span.name == "GET /orders" and name == "exception")", kEvent, true},
      {R"(span.status.code == STATUS_CODE_OK)", kEvent, false},
      {R"(resource.attributes["service.name"] == "shop-api")", kEvent, true},
  };
  Fixture f;
  for (const Case& c : cases) {
    auto cond = ottl::Condition::Parse(c.condition, c.context);
    ASSERT_TRUE(cond.ok()) << c.condition << ": " << cond.status();
    EXPECT_EQ(cond->Evaluate(f.input), c.expected) << c.condition;
  }
}

TEST(OttlTest, UnsupportedConstructsAreRefusedWithTheirColumn) {
  const struct {
    const char* condition;
    ottl::Context context;
    const char* error;
  } cases[] = {
      {R"(trace_id == nil)", kSpan, "column 1: unsupported path trace_id in the span context"},
      {R"(name == "a" and Len(name) > 3)", kSpan,
       "column 17: unsupported converter Len (supported: IsMatch, Duration)"},
      {R"(set(name, "x"))", kSpan, "column 1: unsupported function set"},
      {R"(attributes["a"]["b"] == 1)", kSpan, "column 16: unsupported construct: nested index"},
      {R"(attributes == nil)", kSpan, "column 1: attributes needs a key"},
      {R"(attributes["n"] + 1 > 2)", kSpan, "column 17: unsupported arithmetic operator +"},
      {R"(start_time_unix_nano - end_time_unix_nano > 0)", kSpan,
       "column 22: unsupported arithmetic start_time_unix_nano - end_time_unix_nano"},
      {R"(name == ["a"])", kSpan, "column 9: unsupported construct: list literal"},
      {R"(name == {"a": 1})", kSpan, "column 9: unsupported construct: map literal"},
      {R"(kind == SPAN_KIND_WEIRD)", kSpan, "column 9: unsupported enum SPAN_KIND_WEIRD"},
      {R"(name == "open)", kSpan, "column 9: string is not closed"},
      {R"(name = "x")", kSpan, "column 6: unexpected '='"},
      {R"(name)", kSpan, "column 5: expected a comparison (== != < <= > >=) after name"},
      {R"(name == "a" xor true)", kSpan, "column 13: unexpected \"xor\""},
      {R"((name == "a")", kSpan, "column 13: expected ) but found end of condition"},
      {R"(IsMatch(name, name))", kSpan, "column 15: the pattern of IsMatch must be a string"},
      {R"(IsMatch(name, "("))", kSpan, "column 15: invalid RE2 pattern"},
      {R"(IsMatch(name, "a") == true)", kSpan, "column 20: comparing the result of IsMatch"},
      {R"(end_time - start_time > Duration("soon"))", kSpan,
       "column 34: invalid duration \"soon\""},
      {R"(kind == SPAN_KIND_SERVER)", kEvent, "column 1: unsupported path kind in the spanevent"},
      {R"(name @ 1)", kSpan, "column 6: unexpected character '@'"},
      {"", kSpan, "column 1: empty condition"},
  };
  for (const auto& c : cases) {
    auto cond = ottl::Condition::Parse(c.condition, c.context);
    ASSERT_FALSE(cond.ok()) << c.condition;
    EXPECT_THAT(std::string(cond.status().message()), HasSubstr(c.error)) << c.condition;
  }
}

// ---- The policy, on real serialized spans
// --------------------------------------------------------

Span WithException(const std::string& type, Status::StatusCode code) {
  Span s;
  s.set_name("poll");
  s.mutable_status()->set_code(code);
  auto* e = s.add_events();
  e->set_name("exception");
  SetAttr(e->mutable_attributes(), "exception.type", type);
  return s;
}

Decision Decide(const PolicyConfig& config, const PendingTrace& trace) {
  auto p = CreatePolicy(config);
  EXPECT_TRUE(p.ok()) << p.status();
  TraceView view(trace);
  return (*p)->Evaluate(view, absl::UnixEpoch());
}

PolicyConfig Ottl(std::vector<std::string> span, std::vector<std::string> spanevent) {
  PolicyConfig c;
  c.name = "ottl";
  c.type = "ottl_condition";
  c.ottl_condition.span = std::move(span);
  c.ottl_condition.spanevent = std::move(spanevent);
  return c;
}

TEST(OttlConditionPolicyTest, ExceptionEventsKeepTracesEvenWhenEverySpanIsOk) {
  const PolicyConfig exceptions = Ottl({}, {R"(name == "exception")"});
  EXPECT_EQ(Decide(exceptions, TraceBuilder()
                                   .Plain()
                                   .Add(WithException("TimeoutError", Status::STATUS_CODE_OK))
                                   .Build()),
            Decision::kSampled);
  EXPECT_EQ(Decide(exceptions, TraceBuilder().Plain().WithStatus(Status::STATUS_CODE_OK).Build()),
            Decision::kNotSampled);
  const PolicyConfig sql =
      Ottl({}, {R"(name == "exception" and IsMatch(attributes["exception.type"], "SQL"))"});
  EXPECT_EQ(
      Decide(sql,
             TraceBuilder().Add(WithException("TimeoutError", Status::STATUS_CODE_OK)).Build()),
      Decision::kNotSampled);
  EXPECT_EQ(Decide(sql, TraceBuilder()
                            .Add(WithException("TimeoutError", Status::STATUS_CODE_OK))
                            .Add(WithException("java.sql.SQLException", Status::STATUS_CODE_OK))
                            .Build()),
            Decision::kSampled);
}

TEST(OttlConditionPolicyTest, AnySpanMatchingAnyConditionSamplesTheTrace) {
  Span server;
  server.set_name("POST /login");
  server.set_kind(Span::SPAN_KIND_SERVER);
  SetAttr(server.mutable_attributes(), "http.response.status_code", int64_t{401});
  otlp::resource::v1::Resource r;
  SetAttr(r.mutable_attributes(), "service.name", "auth-api");
  const PendingTrace trace = TraceBuilder().Resource(r).Plain(0, 1).Add(server, 0, 3000).Build();

  EXPECT_EQ(Decide(Ottl({R"(attributes["http.response.status_code"] == 401)"}, {}), trace),
            Decision::kSampled);
  EXPECT_EQ(
      Decide(Ottl({R"(name == "nope")", R"(end_time - start_time >= Duration("3s"))"}, {}), trace),
      Decision::kSampled);
  EXPECT_EQ(Decide(Ottl({R"(resource.attributes["service.name"] == "auth-api" and )"
                         R"(kind == SPAN_KIND_CLIENT)"},
                        {}),
                   trace),
            Decision::kNotSampled);
  EXPECT_EQ(Decide(Ottl({R"(end_time - start_time > Duration("3s"))"}, {}), trace),
            Decision::kNotSampled);
}

TEST(OttlConditionPolicyTest, UndecodableSpansFollowTheErrorMode) {
  PendingTrace trace =
      TraceBuilder().Plain().Add(WithException("X", Status::STATUS_CODE_OK)).Build();
  trace.spans[0].span = "\xff\xff";  // not a Span
  PolicyConfig c = Ottl({}, {R"(name == "exception")"});
  EXPECT_EQ(Decide(c, trace), Decision::kNotSampled);  // propagate: the trace is not sampled
  c.ottl_condition.error_mode = "ignore";
  EXPECT_EQ(Decide(c, trace), Decision::kSampled);  // the damaged span is skipped
}

TEST(OttlConditionPolicyTest, ProblemsAreListedWithThePathOfTheCondition) {
  PolicyConfig c = Ottl({R"(name == "a")", R"(Len(name) > 3)"}, {R"(kind == 1)"});
  c.ottl_condition.error_mode = "loud";
  const auto problems = ValidatePolicies({c}, "sampler.policies");
  EXPECT_THAT(problems,
              ::testing::ElementsAre(
                  HasSubstr("sampler.policies[0] (\"ottl\").ottl_condition.error_mode: must be "
                            "propagate, ignore or silent, got \"loud\""),
                  HasSubstr("sampler.policies[0] (\"ottl\").ottl_condition.span[1]: column 1: "
                            "unsupported converter Len")));
  EXPECT_THAT(ValidatePolicies({Ottl({}, {})}, "p"),
              ::testing::ElementsAre(HasSubstr("list at least one condition")));
}

TEST(BytesLimitingPolicyTest, ATokenBucketOfSpanBytes) {
  PolicyConfig c;
  c.name = "bytes";
  c.type = "bytes_limiting";
  c.bytes_limiting.bytes_per_second = 100;
  c.bytes_limiting.burst_capacity = 150;
  auto p = CreatePolicy(c);
  ASSERT_TRUE(p.ok()) << p.status();
  PendingTrace t;
  t.spans.resize(1);
  auto decide = [&](size_t bytes, absl::Time now) {
    t.span_bytes = bytes;
    TraceView view(t);
    return (*p)->Evaluate(view, now);
  };
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_EQ(decide(100, t0), Decision::kSampled);                              // 150 -> 50
  EXPECT_EQ(decide(60, t0), Decision::kNotSampled);                            // 50 left
  EXPECT_EQ(decide(50, t0), Decision::kSampled);                               // 0 left
  EXPECT_EQ(decide(60, t0 + absl::Milliseconds(500)), Decision::kNotSampled);  // 50 refilled
  EXPECT_EQ(decide(100, t0 + absl::Seconds(1)), Decision::kSampled);           // 100 refilled
  EXPECT_EQ(decide(151, t0 + absl::Seconds(60)), Decision::kNotSampled);       // over the burst
  EXPECT_EQ(decide(150, t0 + absl::Seconds(60)), Decision::kSampled);          // capped at 150

  c.bytes_limiting.bytes_per_second = 0;
  c.bytes_limiting.burst_capacity = -1;
  EXPECT_THAT(ValidatePolicies({c}, "p"),
              ::testing::ElementsAre(HasSubstr("bytes_per_second: must be > 0, got 0"),
                                     HasSubstr("burst_capacity: must be >= 0")));
}

}  // namespace
}  // namespace tracekeep::sampling
