// Cost of the redaction stage per span (collector/redaction/). Requests come from
// bench/otlp_gen.h (3 services, 8-15 attributes per span, ~300 bytes per span), split by trace as
// the receivers do; each iteration redacts a fresh copy of the split request. Items are spans.
//
//  - BM_SplitOnly: the copy alone (the baseline to subtract).
//  - BM_Redact/<rules>: 0 = no matching rule (every span parsed, none re-serialized);
//    1 = key rules that hit most spans (hash user.id, delete cache.key, mask host.name in the
//    resource); 2 = the same plus two blocked_values patterns (card numbers, e-mail addresses)
//    scanned over every string value.
// Without rules the stage is not wired at all (daemon.cc), so its cost there is zero.
//
// On the shared 2-core bench VM (two runs, 512-span requests, 8 spans per trace), CPU per span:
// copy alone 46-48 ns; rules matching no key 40-45 ns more (exact keys are looked for in the
// bytes, the span is not parsed); key rules hitting every span 2.8-3.0 us more (parse, hash,
// re-serialize); with two blocked_values patterns 3.1-3.2 us more. Redaction is for what must not
// be kept, not free: with rules that hit most spans it costs more than the rest of the receive
// path.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/otlp_gen.h"
#include "benchmark/benchmark.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/redaction/redacting_intake.h"
#include "collector/redaction/redactor.h"

namespace tracekeep::bench {
namespace {

constexpr uint64_t kSeed = 42;

const std::string& Request() {
  static const std::string* request = [] {
    RequestShape shape;
    shape.spans_per_request = 512;
    shape.spans_per_trace = 8;
    auto pool = RequestPool::Create(shape, /*min_requests=*/1, kSeed);
    if (!pool.ok()) {
      std::fprintf(stderr, "%s\n", std::string(pool.status().message()).c_str());
      std::abort();
    }
    return new std::string((*pool)->entry(0));
  }();
  return *request;
}

std::vector<TraceSpans> Split(int64_t* spans) {
  auto split = SplitWireRequest(Request());
  if (!split.ok()) std::abort();
  *spans = split->accepted_spans;
  return std::move(split->traces);
}

redaction::RedactorOptions Rules(int level) {
  redaction::RedactorOptions o;
  o.hash_salt = "bench-salt";
  o.protected_key = "order.id";
  if (level == 0) {
    o.actions = {{"no.such.key", "", redaction::Action::kDelete}};
  } else {
    o.actions = {{"user.id", "", redaction::Action::kHash},
                 {"cache.key", "", redaction::Action::kDelete},
                 {"host.name", "", redaction::Action::kMask}};
  }
  if (level == 2) {
    o.blocked_values = {"\\b\\d(?:[ -]?\\d){12,18}\\b",
                        "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}"};
  }
  return o;
}

void BM_SplitOnly(benchmark::State& state) {
  int64_t spans = 0;
  const std::vector<TraceSpans> split = Split(&spans);
  for (auto _ : state) {
    std::vector<TraceSpans> copy = split;
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(state.iterations() * spans);
}
BENCHMARK(BM_SplitOnly);

void BM_Redact(benchmark::State& state) {
  auto redactor = redaction::Redactor::Create(Rules(static_cast<int>(state.range(0))));
  if (!redactor.ok()) {
    state.SkipWithError(std::string(redactor.status().message()).c_str());
    return;
  }
  redaction::RedactingIntake intake(redactor->get(), /*next=*/nullptr);
  int64_t spans = 0;
  const std::vector<TraceSpans> split = Split(&spans);
  for (auto _ : state) {
    std::vector<TraceSpans> copy = split;
    benchmark::DoNotOptimize(intake.Redact(&copy));
  }
  state.SetItemsProcessed(state.iterations() * spans);
  state.counters["changed/span"] = static_cast<double>((*redactor)->stats().spans_changed.load()) /
                                   static_cast<double>(state.iterations() * spans);
}
BENCHMARK(BM_Redact)->Arg(0)->Arg(1)->Arg(2);

}  // namespace
}  // namespace tracekeep::bench

BENCHMARK_MAIN();
