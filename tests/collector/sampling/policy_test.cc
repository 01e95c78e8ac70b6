#include "collector/sampling/policy.h"

#include "gtest/gtest.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::sampling {
namespace {

PendingTrace Pending(int n, bool error) {
  PendingTrace t;
  TraceSpans spans = MakeTrace(n, 1, error);
  t.trace_id = spans.trace_id;
  t.hash = spans.hash;
  t.has_error = error;
  return t;
}

PolicyConfig Probabilistic(double pct, std::string salt = "") {
  PolicyConfig c;
  c.name = "p";
  c.type = "probabilistic";
  c.sampling_percentage = pct;
  c.hash_salt = std::move(salt);
  return c;
}

TEST(PolicyTest, StatusCodeErrorSamplesOnlyErrorTraces) {
  PolicyConfig c;
  c.name = "errors";
  c.type = "status_code";
  c.status_codes = {"ERROR"};
  auto policy = CreatePolicy(c);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ((*policy)->Evaluate(Pending(1, true)), Decision::kSampled);
  EXPECT_EQ((*policy)->Evaluate(Pending(1, false)), Decision::kNotSampled);
}

TEST(PolicyTest, ProbabilisticConvergesToItsPercentageAndIsConsistent) {
  auto policy = CreatePolicy(Probabilistic(25));
  ASSERT_TRUE(policy.ok());
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) {
    const Decision d = (*policy)->Evaluate(Pending(i, false));
    EXPECT_EQ(d, (*policy)->Evaluate(Pending(i, false)));
    sampled += d == Decision::kSampled;
  }
  EXPECT_NEAR(sampled / 20000.0, 0.25, 0.02);
}

TEST(PolicyTest, ProbabilisticBounds) {
  auto none = CreatePolicy(Probabilistic(0));
  auto all = CreatePolicy(Probabilistic(100));
  ASSERT_TRUE(none.ok() && all.ok());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ((*none)->Evaluate(Pending(i, false)), Decision::kNotSampled);
    EXPECT_EQ((*all)->Evaluate(Pending(i, false)), Decision::kSampled);
  }
}

TEST(PolicyTest, SaltSelectsADifferentSubset) {
  auto a = CreatePolicy(Probabilistic(50));
  auto b = CreatePolicy(Probabilistic(50, "tier-2"));
  ASSERT_TRUE(a.ok() && b.ok());
  int differ = 0;
  for (int i = 0; i < 2000; ++i) {
    differ += (*a)->Evaluate(Pending(i, false)) != (*b)->Evaluate(Pending(i, false));
  }
  EXPECT_GT(differ, 600);  // independent 50 % subsets differ on about half the traces
}

TEST(PolicyTest, ValidationListsEveryProblemWithPathAndValue) {
  PolicyConfig bad_pct = Probabilistic(150);
  bad_pct.name = "base";
  PolicyConfig bad_type;
  bad_type.name = "x";
  bad_type.type = "sometimes";
  PolicyConfig bad_code;
  bad_code.name = "base";  // duplicate
  bad_code.type = "status_code";
  bad_code.status_codes = {"ERROR", "BROKEN"};
  auto problems = ValidatePolicies({bad_pct, bad_type, bad_code}, "sampler.policies");
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0],
            "sampler.policies[0] (\"base\").probabilistic.sampling_percentage: must be in [0, "
            "100], got 150");
  EXPECT_NE(problems[1].find("sampler.policies[1] (\"x\").type: unknown policy type \"sometimes\""),
            std::string::npos);
  EXPECT_NE(problems[2].find("status_codes[1]: unknown status code \"BROKEN\""), std::string::npos);
  EXPECT_EQ(problems[3], "sampler.policies[2].name: duplicate policy name \"base\"");
  EXPECT_FALSE(PolicySet::Create({bad_pct}).ok());
}

TEST(PolicyTest, PolicySetAttributesToTheFirstMatchingPolicy) {
  PolicyConfig errors;
  errors.name = "errors";
  errors.type = "status_code";
  errors.status_codes = {"ERROR"};
  PolicyConfig all;
  all.name = "all";
  all.type = "always_sample";
  auto set = PolicySet::Create({errors, all});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->Evaluate(Pending(1, true)), 0);
  EXPECT_EQ((*set)->Evaluate(Pending(1, false)), 1);
  auto empty = PolicySet::Create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->Evaluate(Pending(1, true)), -1);
}

}  // namespace
}  // namespace tracekeep::sampling
