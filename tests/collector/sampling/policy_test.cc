#include "collector/sampling/policy.h"

#include <cmath>
#include <cstring>
#include <random>

#include "collector/pipeline/otlp_convert.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/collector/sampling/span_builder.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::sampling {
namespace {

using otlp::trace::v1::Status;
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

PendingTrace Pending(int n, bool error) {
  TraceBuilder b(n);
  if (error) {
    b.WithStatus(Status::STATUS_CODE_ERROR);
  } else {
    b.Plain();
  }
  return b.Build();
}

PolicyConfig Named(std::string name, std::string type) {
  PolicyConfig c;
  c.name = std::move(name);
  c.type = std::move(type);
  return c;
}

PolicyConfig Probabilistic(double pct, std::string salt = "") {
  PolicyConfig c = Named("p", "probabilistic");
  c.sampling_percentage = pct;
  c.hash_salt = std::move(salt);
  return c;
}

PolicyConfig StatusCodes(std::vector<std::string> codes, std::string name = "status") {
  PolicyConfig c = Named(std::move(name), "status_code");
  c.status_codes = std::move(codes);
  return c;
}

PolicyConfig StringAttr(std::string key, std::vector<std::string> values, bool regex = false,
                        bool invert = false, std::string name = "attr") {
  PolicyConfig c = Named(std::move(name), "string_attribute");
  c.string_attribute.key = std::move(key);
  c.string_attribute.values = std::move(values);
  c.string_attribute.enabled_regex_matching = regex;
  c.string_attribute.invert_match = invert;
  return c;
}

// Evaluates a fresh policy built from `c`.
Decision Eval(const PolicyConfig& c, const PendingTrace& t, absl::Time now = kNow) {
  auto policy = CreatePolicy(c);
  EXPECT_TRUE(policy.ok()) << policy.status();
  if (!policy.ok()) return Decision::kNotSampled;
  TraceView view(t);
  return (*policy)->Evaluate(view, now);
}

constexpr Decision kYes = Decision::kSampled;
constexpr Decision kNo = Decision::kNotSampled;

TEST(PolicyTest, AlwaysSample) {
  EXPECT_EQ(Eval(Named("a", "always_sample"), Pending(1, false)), kYes);
}

TEST(PolicyTest, StatusCodeErrorSamplesOnlyErrorTraces) {
  EXPECT_EQ(Eval(StatusCodes({"ERROR"}), Pending(1, true)), kYes);
  EXPECT_EQ(Eval(StatusCodes({"ERROR"}), Pending(1, false)), kNo);
}

TEST(PolicyTest, StatusCodeOkAndUnsetReadTheSpanBytes) {
  const PendingTrace ok = TraceBuilder().WithStatus(Status::STATUS_CODE_OK).Build();
  const PendingTrace unset = TraceBuilder().Plain().Build();
  const PendingTrace error = TraceBuilder().WithStatus(Status::STATUS_CODE_ERROR).Build();
  EXPECT_EQ(Eval(StatusCodes({"OK"}), ok), kYes);
  EXPECT_EQ(Eval(StatusCodes({"OK"}), unset), kNo);
  EXPECT_EQ(Eval(StatusCodes({"UNSET"}), unset), kYes);
  EXPECT_EQ(Eval(StatusCodes({"UNSET"}), error), kNo);
  EXPECT_EQ(Eval(StatusCodes({"OK", "ERROR"}), error), kYes);
  // Any span with the code is enough.
  const PendingTrace mixed = TraceBuilder().Plain().WithStatus(Status::STATUS_CODE_OK).Build();
  EXPECT_EQ(Eval(StatusCodes({"OK"}), mixed), kYes);
}

TEST(PolicyTest, LatencyIsFirstStartToLastEndWithInclusiveBounds) {
  PolicyConfig c = Named("slow", "latency");
  c.latency.threshold_ms = 100;
  // Two spans 0-40 ms and 60-100 ms: the trace lasts 100 ms, no span does.
  const PendingTrace t = TraceBuilder().Plain(0, 40).Plain(60, 100).Build();
  EXPECT_EQ(Eval(c, t), kYes);
  c.latency.threshold_ms = 101;
  EXPECT_EQ(Eval(c, t), kNo);
  c.latency.threshold_ms = 50;
  c.latency.upper_threshold_ms = 100;
  EXPECT_EQ(Eval(c, t), kYes);
  c.latency.upper_threshold_ms = 99;
  EXPECT_EQ(Eval(c, t), kNo);
}

TEST(PolicyTest, StringAttributeExactMatchesSpanAndResourceAttributes) {
  const PolicyConfig c = StringAttr("order.status", {"CANCELLED", "STALLED"});
  EXPECT_EQ(
      Eval(c, TraceBuilder().Plain().WithAttr("order.status", std::string("CANCELLED")).Build()),
      kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.status", std::string("SHIPPED")).Build()), kNo);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("other", std::string("CANCELLED")).Build()), kNo);
  // Not a string: no match.
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.status", int64_t{3}).Build()), kNo);
  otlp::resource::v1::Resource resource;
  SetAttr(resource.mutable_attributes(), "service.name", std::string("crm-api"));
  const PendingTrace crm = TraceBuilder().Resource(resource).Plain().Build();
  EXPECT_EQ(Eval(StringAttr("service.name", {"crm-api"}), crm), kYes);
  EXPECT_EQ(Eval(StringAttr("service.name", {"shop-api"}), crm), kNo);
}

// The receivers put the authenticated client's name on the resource (auth.client_attribute) and
// remove what the client sent under that key: string_attribute and ottl_condition then match
// the client, and a client that names another in its own attributes is not taken for it.
TEST(PolicyTest, PoliciesMatchTheAuthenticatedClientNotWhatItClaims) {
  otlp::collector::trace::v1::ExportTraceServiceRequest request;
  auto* rs = request.add_resource_spans();
  SetAttr(rs->mutable_resource()->mutable_attributes(), "tracekeep.client",
          std::string("shop-api"));
  otlp::trace::v1::Span* span = rs->add_scope_spans()->add_spans();
  span->set_trace_id(TestTraceId(1));
  span->set_span_id(std::string(8, '\x01'));
  SetAttr(span->mutable_attributes(), "tracekeep.client", std::string("shop-api"));
  absl::StatusOr<SplitResult> split =
      SplitWireRequest(request.SerializeAsString(), {}, {"tracekeep.client", "batch-job"});
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->traces.size(), 1u);
  PendingTrace trace;
  trace.trace_id = split->traces[0].trace_id;
  trace.spans = split->traces[0].spans;

  EXPECT_EQ(Eval(StringAttr("tracekeep.client", {"batch-job"}), trace), kYes);
  EXPECT_EQ(Eval(StringAttr("tracekeep.client", {"shop-api"}), trace), kNo);
  PolicyConfig ottl = Named("o", "ottl_condition");
  ottl.ottl_condition.span = {R"(resource.attributes["tracekeep.client"] == "batch-job")"};
  EXPECT_EQ(Eval(ottl, trace), kYes);
  ottl.ottl_condition.span = {R"(resource.attributes["tracekeep.client"] == "shop-api")",
                              R"(attributes["tracekeep.client"] == "shop-api")"};
  EXPECT_EQ(Eval(ottl, trace), kNo);
}

TEST(PolicyTest, StringAttributeRegexMatchesTheWholeValue) {
  const PolicyConfig c = StringAttr("http.route", {"/orders/.*", "/health"}, /*regex=*/true);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("http.route", std::string("/orders/42")).Build()),
            kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("http.route", std::string("/api/orders/42")).Build()),
            kNo);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("http.route", std::string("/healthz")).Build()), kNo);
}

TEST(PolicyTest, InvertMatchIsATraceWideAbsenceTest) {
  // Sample traces in which NO span has order.id = ... i.e. traces without a cancelled span.
  const PolicyConfig c = StringAttr("order.status", {"CANCELLED"}, false, /*invert=*/true);
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Plain().Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder()
                        .Plain()
                        .WithAttr("order.status", std::string("CANCELLED"))
                        .Plain()
                        .Build()),
            kNo);
}

TEST(PolicyTest, NotOverStringAttributeIsTheSameAbsenceTest) {
  PolicyConfig c = Named("no-order", "not");
  c.sub_policies = {StringAttr("order.id", {".+"}, /*regex=*/true)};
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Plain().Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().WithAttr("order.id", std::string("o-1")).Build()), kNo);
}

TEST(PolicyTest, NumericAttributeBoundsAreInclusiveAndOptional) {
  PolicyConfig c = Named("big", "numeric_attribute");
  c.numeric_attribute.key = "order.total_price";
  c.numeric_attribute.min_value = 1000;
  c.numeric_attribute.max_value = 5000;
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", int64_t{1000}).Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", 5000.0).Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", 999.5).Build()), kNo);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", std::string("2000")).Build()),
            kNo);
  c.numeric_attribute.max_value.reset();
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", int64_t{1} << 40).Build()), kYes);
  c.numeric_attribute.invert_match = true;
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", int64_t{5}).Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("order.total_price", int64_t{5000}).Build()), kNo);
}

TEST(PolicyTest, BooleanAttribute) {
  PolicyConfig c = Named("retried", "boolean_attribute");
  c.boolean_attribute.key = "retry";
  c.boolean_attribute.value = true;
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("retry", true).Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("retry", false).Build()), kNo);
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("retry", std::string("true")).Build()), kNo);
  c.boolean_attribute.invert_match = true;
  EXPECT_EQ(Eval(c, TraceBuilder().WithAttr("retry", false).Build()), kYes);
}

TEST(PolicyTest, SpanCount) {
  PolicyConfig c = Named("fat", "span_count");
  c.span_count.min_spans = 2;
  c.span_count.max_spans = 3;
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Build()), kNo);
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Plain().Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Plain().Plain().Plain().Build()), kNo);
  c.span_count.max_spans = 0;  // no upper bound
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Plain().Plain().Plain().Build()), kYes);
}

TEST(PolicyTest, TraceState) {
  PolicyConfig c = Named("ts", "trace_state");
  c.trace_state.key = "vendor";
  c.trace_state.values = {"keep", "debug"};
  otlp::trace::v1::Span s;
  s.set_trace_state("rojo=00f067aa0ba902b7, vendor=debug");
  EXPECT_EQ(Eval(c, TraceBuilder().Plain().Add(s).Build()), kYes);
  s.set_trace_state("vendor=drop,other=keep");
  EXPECT_EQ(Eval(c, TraceBuilder().Add(s).Build()), kNo);
}

TEST(PolicyTest, ProbabilisticConvergesToItsPercentageAndIsConsistent) {
  auto policy = CreatePolicy(Probabilistic(25));
  ASSERT_TRUE(policy.ok());
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) {
    const PendingTrace t = Pending(i, false);
    TraceView v1(t), v2(t);
    const Decision d = (*policy)->Evaluate(v1, kNow);
    EXPECT_EQ(d, (*policy)->Evaluate(v2, kNow + absl::Hours(1)));
    sampled += d == kYes;
  }
  EXPECT_NEAR(sampled / 20000.0, 0.25, 0.02);
}

TEST(PolicyTest, ProbabilisticBounds) {
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(Eval(Probabilistic(0), Pending(i, false)), kNo);
    EXPECT_EQ(Eval(Probabilistic(100), Pending(i, false)), kYes);
  }
}

TEST(PolicyTest, SaltSelectsADifferentSubset) {
  int differ = 0;
  for (int i = 0; i < 2000; ++i) {
    differ += Eval(Probabilistic(50), Pending(i, false)) !=
              Eval(Probabilistic(50, "tier-2"), Pending(i, false));
  }
  EXPECT_GT(differ, 600);  // independent 50 % subsets differ on about half the traces
}

TEST(PolicyTest, RateLimitingCountsSpansPerSecondAndResetsEachSecond) {
  PolicyConfig c = Named("rl", "rate_limiting");
  c.spans_per_second = 5;
  auto policy = CreatePolicy(c);
  ASSERT_TRUE(policy.ok());
  const PendingTrace two = TraceBuilder().Plain().Plain().Build();
  auto eval = [&](absl::Time now) {
    TraceView v(two);
    return (*policy)->Evaluate(v, now);
  };
  EXPECT_EQ(eval(kNow), kYes);                            // 2
  EXPECT_EQ(eval(kNow + absl::Milliseconds(500)), kYes);  // 4
  EXPECT_EQ(eval(kNow + absl::Milliseconds(900)), kNo);   // 6 > 5: whole trace refused
  EXPECT_EQ(eval(kNow + absl::Seconds(1)), kYes);         // next second
  // Divided among shards.
  auto sharded = CreatePolicy(c, PolicySetOptions{5, false});
  ASSERT_TRUE(sharded.ok());
  TraceView v(two);
  EXPECT_EQ((*sharded)->Evaluate(v, kNow), kNo);  // budget 1 span/s per shard
}

TEST(PolicyTest, AndNeedsEverySubPolicy) {
  PolicyConfig c = Named("slow-errors", "and");
  PolicyConfig slow = Named("slow", "latency");
  slow.latency.threshold_ms = 50;
  c.sub_policies = {StatusCodes({"ERROR"}), slow};
  otlp::trace::v1::Span err;
  err.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
  EXPECT_EQ(Eval(c, TraceBuilder().Add(err, 0, 100).Build()), kYes);
  EXPECT_EQ(Eval(c, TraceBuilder().Add(err, 0, 10).Build()), kNo);
  EXPECT_EQ(Eval(c, TraceBuilder().Plain(0, 100).Build()), kNo);
}

TEST(PolicyTest, CompositeGivesEachSubPolicyItsShareInOrder) {
  PolicyConfig c = Named("budget", "composite");
  c.composite.max_total_spans_per_second = 10;
  c.composite.policy_order = {"errors", "rest"};
  c.composite.rate_allocation = {{"errors", 50}, {"rest", 30}};
  c.sub_policies = {Named("rest", "always_sample"), StatusCodes({"ERROR"}, "errors")};
  auto policy = CreatePolicy(c);
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto eval = [&](const PendingTrace& t, absl::Time now) {
    TraceView v(t);
    return (*policy)->Evaluate(v, now);
  };
  const PendingTrace error = TraceBuilder().WithStatus(Status::STATUS_CODE_ERROR).Plain().Build();
  const PendingTrace healthy = TraceBuilder().Plain().Plain().Build();
  // errors: 5 spans/s -> two 2-span traces; the third falls through to "rest" (3 spans/s).
  EXPECT_EQ(eval(error, kNow), kYes);
  EXPECT_EQ(eval(error, kNow), kYes);
  EXPECT_EQ(eval(error, kNow), kYes);   // via "rest": 2 of its 3
  EXPECT_EQ(eval(healthy, kNow), kNo);  // "rest" has 1 left
  EXPECT_EQ(eval(healthy, kNow + absl::Seconds(1)), kYes);
}

TEST(PolicySetTest, AttributesToTheFirstMatchingPolicy) {
  auto set = PolicySet::Create({StatusCodes({"ERROR"}, "errors"), Named("all", "always_sample")});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->Evaluate(Pending(1, true)), 0);
  EXPECT_EQ((*set)->Evaluate(Pending(1, false)), 1);
  auto empty = PolicySet::Create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->Evaluate(Pending(1, true)), -1);
}

TEST(PolicySetTest, AMatchingDropPolicyOverridesEverySampleDecision) {
  PolicyConfig drop = Named("no-health", "drop");
  drop.sub_policies = {StringAttr("http.route", {"/health"})};
  PolicyStatsRegistry stats;
  auto set = PolicySet::Create(
      {Named("all", "always_sample"), StatusCodes({"ERROR"}, "errors"), drop}, {}, &stats);
  ASSERT_TRUE(set.ok()) << set.status();
  otlp::trace::v1::Span health;
  health.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
  SetAttr(health.mutable_attributes(), "http.route", std::string("/health"));
  const PendingTrace t = TraceBuilder().Add(health).Build();
  TraceView view(t);
  const Verdict v = (*set)->Evaluate(view, kNow);
  EXPECT_EQ(v.outcome, Verdict::Outcome::kDropped);
  EXPECT_EQ(v.policy, 2);
  EXPECT_EQ(stats.Get("no-health")->traces_dropped.load(), 1u);
  // A drop policy whose sub-policies do not all match changes nothing.
  const PendingTrace other = TraceBuilder().WithStatus(Status::STATUS_CODE_ERROR).Build();
  TraceView other_view(other);
  const Verdict w = (*set)->Evaluate(other_view, kNow);
  EXPECT_EQ(w.outcome, Verdict::Outcome::kSampled);
  EXPECT_EQ(w.policy, 0);
  // Every policy's own verdict is counted.
  EXPECT_EQ(stats.Get("errors")->evaluated_sampled.load(), 1u);
  EXPECT_EQ(stats.Get("no-health")->evaluated_not_sampled.load(), 1u);
}

TEST(PolicySetTest, SampleOnFirstMatchStopsEvaluating) {
  PolicyStatsRegistry stats;
  PolicySetOptions o;
  o.sample_on_first_match = true;
  auto set =
      PolicySet::Create({Named("a", "always_sample"), Named("b", "always_sample")}, o, &stats);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->Evaluate(Pending(1, false)), 0);
  EXPECT_EQ(stats.Get("b")->evaluated_sampled.load() + stats.Get("b")->evaluated_not_sampled.load(),
            0u);
}

TEST(PolicySetTest, ValidationListsEveryProblemWithPathAndValue) {
  PolicyConfig bad_pct = Probabilistic(150);
  bad_pct.name = "base";
  PolicyConfig bad_type = Named("x", "sometimes");
  PolicyConfig bad_code = StatusCodes({"ERROR", "BROKEN"}, "base");  // duplicate name
  PolicyConfig slow = Named("slow", "latency");
  slow.latency.threshold_ms = -5;
  PolicyConfig nested = Named("n", "and");
  PolicyConfig bad_regex = StringAttr("k", {"("}, /*regex=*/true, false, "re");
  PolicyConfig inner_drop = Named("d", "drop");
  inner_drop.sub_policies = {Named("a", "always_sample")};
  nested.sub_policies = {bad_regex, inner_drop};
  PolicyConfig not_two = Named("not2", "not");
  not_two.sub_policies = {Named("a", "always_sample"), Named("b", "always_sample")};
  auto problems =
      ValidatePolicies({bad_pct, bad_type, bad_code, slow, nested, not_two}, "sampler.policies");
  ASSERT_EQ(problems.size(), 8u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0],
            "sampler.policies[0] (\"base\").probabilistic.sampling_percentage: must be in [0, "
            "100], got 150");
  EXPECT_NE(problems[1].find("sampler.policies[1] (\"x\").type: unknown policy type \"sometimes\""),
            std::string::npos);
  EXPECT_NE(problems[2].find("status_codes[1]: unknown status code \"BROKEN\""), std::string::npos);
  EXPECT_EQ(problems[3], "sampler.policies[2].name: duplicate policy name \"base\"");
  EXPECT_EQ(problems[4],
            "sampler.policies[3] (\"slow\").latency.threshold_ms: must be >= 0, got -5");
  EXPECT_NE(problems[5].find("sampler.policies[4] (\"n\").and.and_sub_policy[0] (\"re\")"
                             ".string_attribute.values: invalid regular expression \"(\""),
            std::string::npos);
  EXPECT_EQ(problems[6],
            "sampler.policies[4] (\"n\").and.and_sub_policy[1] (\"d\").type: drop is only allowed "
            "in the top-level policy list");
  EXPECT_EQ(
      problems[7],
      "sampler.policies[5] (\"not2\").not.not_sub_policy: must hold exactly one policy, got 2");
  EXPECT_FALSE(PolicySet::Create({bad_pct}).ok());
}

// Property: over random traces, a trace with an ERROR span is never lost while an error policy is
// configured, unless a drop policy matches it.
TEST(PolicyPropertyTest, ErrorTracesAreKeptUnlessDropped) {
  PolicyConfig drop = Named("drop-debug", "drop");
  drop.sub_policies = {StringAttr("debug", {"yes"})};
  auto set = PolicySet::Create({Probabilistic(5), drop, StatusCodes({"ERROR"}, "errors")});
  ASSERT_TRUE(set.ok());
  std::mt19937 rng(42);
  int errors = 0, dropped_errors = 0;
  for (int n = 0; n < 3000; ++n) {
    TraceBuilder b(n);
    const int spans = 1 + static_cast<int>(rng() % 8);
    bool has_error = false, has_debug = false;
    for (int i = 0; i < spans; ++i) {
      otlp::trace::v1::Span s;
      const int roll = static_cast<int>(rng() % 10);
      if (roll == 0) {
        s.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
        has_error = true;
      } else if (roll == 1) {
        s.mutable_status()->set_code(Status::STATUS_CODE_OK);
      }
      if (rng() % 25 == 0) {
        SetAttr(s.mutable_attributes(), "debug", std::string("yes"));
        has_debug = true;
      }
      SetAttr(s.mutable_attributes(), "n", static_cast<int64_t>(rng()));
      b.Add(std::move(s), static_cast<int64_t>(rng() % 100),
            100 + static_cast<int64_t>(rng() % 100));
    }
    const PendingTrace t = b.Build();
    TraceView view(t);
    const Verdict v = (*set)->Evaluate(view, kNow);
    if (has_debug) {
      EXPECT_EQ(v.outcome, Verdict::Outcome::kDropped);
      dropped_errors += has_error;
    } else if (has_error) {
      EXPECT_EQ(v.outcome, Verdict::Outcome::kSampled);
    }
    errors += has_error;
  }
  EXPECT_GT(errors, 500);
  EXPECT_GT(dropped_errors, 0);
}

// Property: over random trace ids, the probabilistic share converges to its percentage, and a
// trace id always gets the same decision, whatever else the trace holds and whenever it is asked.
TEST(PolicyPropertyTest, ProbabilisticIsConsistentByTraceIdAndConverges) {
  std::mt19937_64 rng(7);
  for (double pct : {1.0, 10.0, 50.0}) {
    auto a = CreatePolicy(Probabilistic(pct));
    auto b = CreatePolicy(Probabilistic(pct));
    ASSERT_TRUE(a.ok() && b.ok());
    int sampled = 0;
    constexpr int kTraces = 40000;
    for (int n = 0; n < kTraces; ++n) {
      std::string id(16, '\0');
      for (int i = 0; i < 16; i += 8) {
        const uint64_t r = rng();
        std::memcpy(&id[i], &r, 8);
      }
      PendingTrace one;
      one.trace_id = id;
      one.hash = TraceIdHash(id);
      PendingTrace other = TraceBuilder().Plain().Plain().Build();  // different content
      other.trace_id = id;
      other.hash = one.hash;
      TraceView v1(one), v2(other);
      const Decision d = (*a)->Evaluate(v1, kNow);
      ASSERT_EQ(d, (*b)->Evaluate(v2, kNow + absl::Hours(24)));
      sampled += d == kYes;
    }
    const double share = static_cast<double>(sampled) / kTraces;
    EXPECT_NEAR(share, pct / 100, 3 * std::sqrt(pct / 100 * (1 - pct / 100) / kTraces) + 0.002)
        << pct;
  }
}

}  // namespace
}  // namespace tracekeep::sampling
