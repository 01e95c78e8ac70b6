// tracekeep-loadgen: sends OTLP/gRPC TraceService/Export requests to an endpoint for a fixed time
// and reports what the server accepted and refused. Nothing is retried.
//
// Requests come pre-serialized from a RequestPool (bench/otlp_gen.h) and go out through a generic
// stub as raw bytes, with the trace ids patched per request so every trace id of the run is
// unique: the client spends a memcpy per request, not a protobuf encode.
//
// Concurrency: --concurrency worker threads, each with one request in flight (a callback call it
// waits for), sharing --connections channels. With --rate, request n is due at
// start + n * spans_per_request / rate; a server that falls behind sees the backlog as a burst.
#include <grpc/slice.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/otlp_gen.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::bench {
namespace {

using ExportResponse = ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
using ExportStub = grpc::TemplatedGenericStub<grpc::ByteBuffer, ExportResponse>;

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct Options {
  std::string endpoint = "127.0.0.1:4317";
  RequestShape shape;
  absl::Duration duration = absl::Seconds(10);
  double rate = 0;  // spans/s; 0 = as fast as possible
  int concurrency = 4;
  int connections = 1;
  absl::Duration timeout = absl::Seconds(10);
  int pool_requests = 64;
  uint64_t seed = 0;  // 0 = pick one
  bool json = false;
};

// ---- Command line -------------------------------------------------------------------------

struct Flag {
  const char* name;
  const char* help;
  bool is_bool;
  std::function<bool(absl::string_view)> set;
};

bool ParsePositiveDuration(absl::string_view text, absl::Duration* out) {
  return absl::ParseDuration(text, out) && *out > absl::ZeroDuration();
}

std::vector<Flag> Flags(Options* o) {
  return {
      {"endpoint", "host:port of the OTLP/gRPC receiver (default 127.0.0.1:4317)", false,
       [o](absl::string_view v) {
         o->endpoint = std::string(v);
         return !v.empty();
       }},
      {"spans-per-request", "spans in every request (default 500)", false,
       [o](absl::string_view v) { return absl::SimpleAtoi(v, &o->shape.spans_per_request); }},
      {"spans-per-trace", "spans of every trace (default 10)", false,
       [o](absl::string_view v) { return absl::SimpleAtoi(v, &o->shape.spans_per_trace); }},
      {"error-share", "fraction of traces with one ERROR span (default 0.01)", false,
       [o](absl::string_view v) { return absl::SimpleAtod(v, &o->shape.error_share); }},
      {"order-share", "fraction of traces that record a step of an order (default 0.1)", false,
       [o](absl::string_view v) { return absl::SimpleAtod(v, &o->shape.order_share); }},
      {"hot-share",
       "fraction of the other traces that read one of --hot-order-ids recurring orders, no state "
       "(default 0)",
       false, [o](absl::string_view v) { return absl::SimpleAtod(v, &o->shape.hot_share); }},
      {"hot-order-ids", "recurring order ids of --hot-share (default 64)", false,
       [o](absl::string_view v) { return absl::SimpleAtoi(v, &o->shape.hot_order_ids); }},
      {"trace-spread", "requests a trace's spans are spread over (default 1)", false,
       [o](absl::string_view v) { return absl::SimpleAtoi(v, &o->shape.trace_spread); }},
      {"duration", "how long to send, e.g. 10s, 2m (default 10s)", false,
       [o](absl::string_view v) { return ParsePositiveDuration(v, &o->duration); }},
      {"rate", "target spans/s; 0 = as fast as possible (default 0)", false,
       [o](absl::string_view v) { return absl::SimpleAtod(v, &o->rate) && o->rate >= 0; }},
      {"concurrency", "requests in flight (default 4)", false,
       [o](absl::string_view v) {
         return absl::SimpleAtoi(v, &o->concurrency) && o->concurrency > 0;
       }},
      {"connections", "gRPC channels (TCP connections) shared by the workers (default 1)", false,
       [o](absl::string_view v) {
         return absl::SimpleAtoi(v, &o->connections) && o->connections > 0;
       }},
      {"timeout", "deadline of each request (default 10s)", false,
       [o](absl::string_view v) { return ParsePositiveDuration(v, &o->timeout); }},
      {"pool-requests", "pre-generated requests cycled through (default 64)", false,
       [o](absl::string_view v) {
         return absl::SimpleAtoi(v, &o->pool_requests) && o->pool_requests > 0;
       }},
      {"seed", "seed of content and trace ids; 0 = random (default 0)", false,
       [o](absl::string_view v) { return absl::SimpleAtoi(v, &o->seed); }},
      {"json", "print the summary as one JSON object on stdout", true,
       [o](absl::string_view v) { return absl::SimpleAtob(v, &o->json); }},
  };
}

void PrintUsage(const std::vector<Flag>& flags) {
  std::cerr << "usage: tracekeep-loadgen [--flag=value ...]\n"
               "Sends OTLP/gRPC trace export requests and reports accepted and refused spans.\n";
  for (const Flag& f : flags) std::cerr << absl::StrFormat("  --%-18s %s\n", f.name, f.help);
}

// Accepts --name=value, --name value and, for booleans, --name.
absl::Status ParseArgs(int argc, char** argv, Options* options, bool* help) {
  const std::vector<Flag> flags = Flags(options);
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      PrintUsage(flags);
      *help = true;
      return absl::OkStatus();
    }
    if (arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    arg.remove_prefix(2);
    const size_t eq = arg.find('=');
    const absl::string_view name = arg.substr(0, eq);
    auto it =
        std::find_if(flags.begin(), flags.end(), [&](const Flag& f) { return name == f.name; });
    if (it == flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (it->is_bool) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    if (!it->set(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, ": invalid value \"", value, "\""));
    }
  }
  if (absl::Status s = options->shape.Validate(); !s.ok()) return s;
  return absl::OkStatus();
}

// ---- Sending ------------------------------------------------------------------------------

struct Tally {
  int64_t requests = 0;
  int64_t requests_ok = 0;
  int64_t spans_sent = 0;
  int64_t spans_accepted = 0;
  int64_t refused_resource_exhausted = 0;  // spans
  int64_t refused_unavailable = 0;         // spans
  int64_t refused_other = 0;               // spans
  int64_t partial_rejected = 0;            // spans rejected through partial_success
  int64_t partial_requests = 0;            // requests with a partial_success
  std::vector<double> latency_ms;          // of every completed request
  std::string first_other_error;
  std::string first_partial_message;

  void Merge(Tally&& o) {
    requests += o.requests;
    requests_ok += o.requests_ok;
    spans_sent += o.spans_sent;
    spans_accepted += o.spans_accepted;
    refused_resource_exhausted += o.refused_resource_exhausted;
    refused_unavailable += o.refused_unavailable;
    refused_other += o.refused_other;
    partial_rejected += o.partial_rejected;
    partial_requests += o.partial_requests;
    latency_ms.insert(latency_ms.end(), o.latency_ms.begin(), o.latency_ms.end());
    if (first_other_error.empty()) first_other_error = std::move(o.first_other_error);
    if (first_partial_message.empty()) first_partial_message = std::move(o.first_partial_message);
  }
};

struct Shared {
  const Options* options;
  const RequestPool* pool;
  absl::Time start;
  absl::Time end;
  std::atomic<uint64_t> next_request{0};
  std::atomic<bool> reached{false};  // the endpoint answered at least once
};

// Request `n`, its spans dated as if they had just ended (see RequestPool::RenderTo).
grpc::ByteBuffer RenderRequest(const RequestPool& pool, uint64_t n, absl::Time now) {
  const size_t size = pool.RequestBytes(n);
  grpc_slice raw = grpc_slice_malloc(size);
  pool.RenderTo(n, reinterpret_cast<char*>(GRPC_SLICE_START_PTR(raw)),
                absl::ToUnixNanos(now) - pool.base_unix_nanos());
  grpc::Slice slice(raw, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&slice, 1);
}

void Worker(Shared* shared, const std::shared_ptr<grpc::Channel>& channel, Tally* tally) {
  const Options& options = *shared->options;
  ExportStub stub(channel);
  const double request_interval_s =
      options.rate > 0 ? options.shape.spans_per_request / options.rate : 0;
  std::mutex mu;
  std::condition_variable cv;
  while (true) {
    const uint64_t n = shared->next_request.fetch_add(1);
    if (request_interval_s > 0) {
      const absl::Time due = shared->start + absl::Seconds(request_interval_s * n);
      if (due >= shared->end) break;
      absl::SleepFor(due - absl::Now());
    }
    const absl::Time now = absl::Now();
    if (now >= shared->end) break;

    grpc::ByteBuffer request = RenderRequest(*shared->pool, n, now);
    const int64_t spans = shared->pool->RequestSpans(n);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(now + options.timeout));
    ExportResponse response;
    grpc::Status status;
    bool done = false;
    stub.UnaryCall(&context, kExportMethod, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     std::lock_guard<std::mutex> lock(mu);
                     status = std::move(s);
                     done = true;
                     cv.notify_one();
                   });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    }
    tally->latency_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - now));
    ++tally->requests;
    tally->spans_sent += spans;
    switch (status.error_code()) {
      case grpc::StatusCode::OK: {
        shared->reached.store(true, std::memory_order_relaxed);
        ++tally->requests_ok;
        const int64_t rejected =
            std::clamp<int64_t>(response.partial_success().rejected_spans(), 0, spans);
        if (response.has_partial_success() &&
            (rejected > 0 || !response.partial_success().error_message().empty())) {
          ++tally->partial_requests;
          tally->partial_rejected += rejected;
          if (tally->first_partial_message.empty()) {
            tally->first_partial_message = response.partial_success().error_message();
          }
        }
        tally->spans_accepted += spans - rejected;
        break;
      }
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        shared->reached.store(true, std::memory_order_relaxed);
        tally->refused_resource_exhausted += spans;
        break;
      case grpc::StatusCode::UNAVAILABLE: {
        tally->refused_unavailable += spans;
        const grpc_connectivity_state state = channel->GetState(false);
        if (state == GRPC_CHANNEL_READY) {
          shared->reached.store(true, std::memory_order_relaxed);  // the server said it
        } else {
          // Not connected: wait (bounded) for the channel to change state instead of spinning
          // on fast failures. The failed request is not retried.
          channel->WaitForStateChange(
              state,
              absl::ToChronoTime(std::min(absl::Now() + absl::Milliseconds(100), shared->end)));
        }
        break;
      }
      default:
        // DEADLINE_EXCEEDED and the like can also happen without any connection.
        if (channel->GetState(false) == GRPC_CHANNEL_READY) {
          shared->reached.store(true, std::memory_order_relaxed);
        }
        tally->refused_other += spans;
        if (tally->first_other_error.empty()) {
          tally->first_other_error =
              absl::StrCat("code ", status.error_code(), ": ", status.error_message());
        }
        break;
    }
  }
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double Percentile(std::vector<double>* v, double p) {
  if (v->empty()) return 0;
  const size_t k = std::min(v->size() - 1, static_cast<size_t>(p * v->size()));
  std::nth_element(v->begin(), v->begin() + k, v->end());
  return (*v)[k];
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

int Run(int argc, char** argv) {
  Options options;
  bool help = false;
  if (absl::Status s = ParseArgs(argc, argv, &options, &help); !s.ok()) {
    std::cerr << "tracekeep-loadgen: " << s.message() << "\n";
    return 2;
  }
  if (help) return 0;
  if (options.seed == 0) options.seed = std::random_device()() | (uint64_t{1} << 32);

  const absl::Time gen_start = absl::Now();
  auto pool = RequestPool::Create(options.shape, options.pool_requests, options.seed);
  if (!pool.ok()) {
    std::cerr << "tracekeep-loadgen: " << pool.status().message() << "\n";
    return 2;
  }
  const double gen_seconds = absl::ToDoubleSeconds(absl::Now() - gen_start);
  size_t pool_bytes = 0;
  for (size_t i = 0; i < (*pool)->size(); ++i) pool_bytes += (*pool)->RequestBytes(i);
  std::cerr << absl::StrFormat(
      "tracekeep-loadgen: %d requests pre-generated in %.2fs (%.0f bytes/span, %d traces, "
      "%d with an error span, %d recording an order step); sending to %s for %s\n",
      (*pool)->size(), gen_seconds,
      static_cast<double>(pool_bytes) / ((*pool)->size() * options.shape.spans_per_request),
      (*pool)->traces(), (*pool)->error_traces(), (*pool)->order_traces(), options.endpoint,
      absl::FormatDuration(options.duration));

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < options.connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one TCP connection per channel
    args.SetInt("tracekeep.loadgen.channel", c);
    channels.push_back(
        grpc::CreateCustomChannel(options.endpoint, grpc::InsecureChannelCredentials(), args));
  }

  Shared shared;
  shared.options = &options;
  shared.pool = pool->get();
  const double cpu_start = CpuSeconds();
  shared.start = absl::Now();
  shared.end = shared.start + options.duration;
  std::vector<Tally> tallies(options.concurrency);
  std::vector<std::thread> threads;
  for (int w = 0; w < options.concurrency; ++w) {
    threads.emplace_back(Worker, &shared, std::cref(channels[w % channels.size()]), &tallies[w]);
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - shared.start);
  const double cpu_seconds = CpuSeconds() - cpu_start;
  Tally total;
  for (Tally& t : tallies) total.Merge(std::move(t));
  const bool reached = shared.reached.load();
  const double p50 = Percentile(&total.latency_ms, 0.5);
  const double p99 = Percentile(&total.latency_ms, 0.99);
  const double accepted_per_s = seconds > 0 ? total.spans_accepted / seconds : 0;

  std::ostream& human = options.json ? std::cerr : std::cout;
  human << absl::StrFormat(
      "endpoint              %s%s\n"
      "duration              %.2f s\n"
      "requests              %d (%d OK)\n"
      "spans sent            %d\n"
      "spans accepted        %d\n"
      "accepted spans/s      %.0f\n"
      "refused spans         RESOURCE_EXHAUSTED %d, UNAVAILABLE %d, other %d\n"
      "partial_success       %d spans rejected in %d requests\n"
      "latency               p50 %.2f ms, p99 %.2f ms\n"
      "client CPU            %.2f s (%.0f%% of one core)\n"
      "seed                  %d\n",
      options.endpoint, reached ? "" : " (never reached)", seconds, total.requests,
      total.requests_ok, total.spans_sent, total.spans_accepted, accepted_per_s,
      total.refused_resource_exhausted, total.refused_unavailable, total.refused_other,
      total.partial_rejected, total.partial_requests, p50, p99, cpu_seconds,
      seconds > 0 ? 100 * cpu_seconds / seconds : 0, options.seed);
  if (!total.first_other_error.empty()) {
    human << "first other error     " << total.first_other_error << "\n";
  }
  if (!total.first_partial_message.empty()) {
    human << "first partial message " << total.first_partial_message << "\n";
  }
  if (options.json) {
    std::cout << absl::StrFormat(
        "{\"endpoint\":%s,\"reached\":%s,\"spans_per_request\":%d,\"spans_per_trace\":%d,"
        "\"error_share\":%g,\"order_share\":%g,\"trace_spread\":%d,\"concurrency\":%d,"
        "\"connections\":%d,"
        "\"target_rate\":%g,\"seed\":%d,\"duration_s\":%.3f,\"requests\":%d,\"requests_ok\":%d,"
        "\"spans_sent\":%d,\"spans_accepted\":%d,\"accepted_spans_per_s\":%.1f,"
        "\"refused_resource_exhausted\":%d,\"refused_unavailable\":%d,\"refused_other\":%d,"
        "\"partial_success_rejected\":%d,\"partial_success_requests\":%d,"
        "\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,\"client_cpu_s\":%.3f}\n",
        JsonString(options.endpoint), reached ? "true" : "false", options.shape.spans_per_request,
        options.shape.spans_per_trace, options.shape.error_share, options.shape.order_share,
        options.shape.trace_spread, options.concurrency, options.connections, options.rate,
        options.seed, seconds, total.requests, total.requests_ok, total.spans_sent,
        total.spans_accepted, accepted_per_s, total.refused_resource_exhausted,
        total.refused_unavailable, total.refused_other, total.partial_rejected,
        total.partial_requests, p50, p99, cpu_seconds);
  }
  if (!reached) {
    std::cerr << "tracekeep-loadgen: " << options.endpoint
              << " was unreachable for the whole run\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace tracekeep::bench

int main(int argc, char** argv) { return tracekeep::bench::Run(argc, argv); }
