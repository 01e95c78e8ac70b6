// End to end: `tracekeepctl drain` empties a running daemon before a stop, and an overloaded
// daemon refuses with a retryable code, keeps its memory bounded and accounts for every span it
// acknowledged. The daemons are real tracekeep processes; the drain's backend is a second
// tracekeep (a real OTLP/gRPC receiver keeping everything), read back with the real tracekeepctl.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tests/e2e/process.h"

namespace tracekeep::e2e {
namespace {

namespace collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

// A port that was free a moment ago (bound to 0, then closed).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The HTTP status of a GET, 0 when the server cannot be reached; the body goes to `body`.
long HttpGet(const std::string& url, std::string* body) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return code;
}

// The HTTP status of an OTLP/HTTP protobuf POST of `request`, 0 when unreachable.
long HttpPostTraces(const std::string& url, const std::string& request) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/x-protobuf");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return code;
}

// The value of an unlabelled sample in a Prometheus exposition, -1 when absent.
double Metric(const std::string& exposition, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (absl::StartsWith(line, name + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
    }
  }
  return -1;
}

// The VmRSS of a process in KiB, -1 when unknown.
int64_t RssKib(pid_t pid) {
  const std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    line = absl::StripAsciiWhitespace(line);
    int64_t kib = -1;
    if (absl::SimpleAtoi(line.substr(0, line.find(' ')), &kib)) return kib;
  }
  return -1;
}

// A tracekeep child process with its own data directory.
class Tracekeep {
 public:
  Tracekeep(std::string dir, const std::string& config_body) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    config_ = dir_ + "/tracekeep.yaml";
    WriteFile(config_, absl::StrCat("data_dir: ", dir_, "/data\n", config_body));
  }

  ::testing::AssertionResult Start() {
    const std::string endpoints = dir_ + "/endpoints.json";
    process_ =
        std::make_unique<ChildProcess>(std::vector<std::string>{TRACEKEEP_BIN, "--config", config_,
                                                                "--write-endpoints", endpoints},
                                       dir_ + "/tracekeep.log");
    if (!WaitFor([&] { return !ReadFile(endpoints).empty(); }, absl::Seconds(30))) {
      return ::testing::AssertionFailure() << "tracekeep in " << dir_ << " did not start:\n"
                                           << Log();
    }
    const std::string json = ReadFile(endpoints);
    grpc_ = JsonValue(json, "otlp_grpc");
    http_ = JsonValue(json, "otlp_http");
    admin_ = JsonValue(json, "admin");
    telemetry_ = JsonValue(json, "telemetry");
    return ::testing::AssertionSuccess();
  }
  // SIGTERM, then the exit code (-1 when it did not exit within 60 s).
  int Stop() {
    process_->Signal(SIGTERM);
    return process_->Wait(absl::Seconds(60));
  }

  CommandResult Ctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", admin_});
    return RunCommand(args);
  }
  // A counter of `tracekeepctl --json status` (proto JSON writes uint64 as a string).
  uint64_t Status(const std::string& field) const {
    uint64_t v = 0;
    (void)absl::SimpleAtoi(JsonValue(Ctl({"--json", "status"}).output, field), &v);
    return v;
  }
  double Metric(const std::string& name) const {
    std::string body;
    HttpGet(absl::StrCat("http://", telemetry_, "/metrics"), &body);
    return e2e::Metric(body, name);
  }
  long ReadyzCode() const {
    std::string body;
    return HttpGet(absl::StrCat("http://", telemetry_, "/readyz"), &body);
  }
  std::set<std::string> StoredSpanIds(const std::string& trace_hex) const {
    std::set<std::string> ids;
    const std::string json = Ctl({"--json", "trace", "get", trace_hex}).output;
    for (size_t at = json.find("\"spanId\""); at != std::string::npos;
         at = json.find("\"spanId\"", at + 1)) {
      const size_t start = json.find('"', json.find(':', at)) + 1;
      ids.insert(json.substr(start, json.find('"', start) - start));
    }
    return ids;
  }
  std::string Log() const { return ReadFile(dir_ + "/tracekeep.log"); }
  pid_t pid() const { return process_->pid(); }
  const std::string& grpc() const { return grpc_; }
  const std::string& http() const { return http_; }

 private:
  std::string dir_;
  std::string config_;
  std::unique_ptr<ChildProcess> process_;
  std::string grpc_, http_, admin_, telemetry_;
};

// trace id (hex) -> span ids (hex).
using Sent = std::map<std::string, std::set<std::string>>;

// One export request of `traces` traces of `spans_per_trace` spans; ids derive from `tag` and
// `first_trace`. Records the ids in `sent` when not null.
collector::ExportTraceServiceRequest MakeRequest(uint8_t tag, int first_trace, int traces,
                                                 int spans_per_trace, size_t padding, Sent* sent) {
  collector::ExportTraceServiceRequest request;
  auto* rs = request.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("shop-api");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("drain-e2e");
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  for (int t = first_trace; t < first_trace + traces; ++t) {
    std::string trace_id(16, static_cast<char>(tag));
    for (int b = 0; b < 4; ++b) trace_id[12 + b] = static_cast<char>(t >> (8 * (3 - b)));
    for (int s = 0; s < spans_per_trace; ++s) {
      std::string span_id(8, static_cast<char>(tag));
      for (int b = 0; b < 4; ++b) span_id[3 + b] = static_cast<char>(t >> (8 * (3 - b)));
      span_id[7] = static_cast<char>(s + 1);
      otlp_trace::Span* span = ss->add_spans();
      span->set_trace_id(trace_id);
      span->set_span_id(span_id);
      span->set_name(absl::StrCat("op-", s));
      span->set_start_time_unix_nano(now + s);
      span->set_end_time_unix_nano(now + s + 1000);
      if (padding > 0) {
        auto* a = span->add_attributes();
        a->set_key("payload");
        a->mutable_value()->set_string_value(std::string(padding, 'x'));
      }
      if (sent != nullptr) (*sent)[ToHex(trace_id)].insert(ToHex(span_id));
    }
  }
  return request;
}

grpc::Status Export(collector::TraceService::Stub* stub,
                    const collector::ExportTraceServiceRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  collector::ExportTraceServiceResponse response;
  return stub->Export(&context, request, &response);
}

std::unique_ptr<collector::TraceService::Stub> NewStub(const std::string& endpoint) {
  return collector::TraceService::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
}

std::string Format(const char* format, int port) {
  char buf[2048];
  std::snprintf(buf, sizeof(buf), format, port);
  return buf;
}

constexpr char kBackendConfig[] = R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:%d"}
      http: {enabled: false}
sampler:
  decision_wait: 100ms
  policies: [{name: everything, type: always_sample}]
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)";

// Keeps everything, but decides only after 10 minutes: whatever the test sends stays pending
// until the drain decides it.
constexpr char kForwarderConfig[] = R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {endpoint: "127.0.0.1:0"}
sampler:
  decision_wait: 10m
  policies: [{name: everything, type: always_sample}]
exporters:
  otlp:
    endpoint: "127.0.0.1:%d"
    batch: {send_batch_size: 50, send_batch_max_size: 100, timeout: 20ms}
    retry_on_failure: {initial_interval: 50ms, max_interval: 300ms}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)";

TEST(DrainTest, DrainForwardsEveryPendingTraceThenRefusesNewData) {
  TempDir dir;
  const int port = FreePort();
  ASSERT_GT(port, 0);
  Tracekeep backend(dir.path() + "/backend", Format(kBackendConfig, port));
  Tracekeep forwarder(dir.path() + "/forwarder", Format(kForwarderConfig, port));
  ASSERT_TRUE(backend.Start());
  ASSERT_TRUE(forwarder.Start());
  ASSERT_EQ(forwarder.ReadyzCode(), 200);

  Sent sent;
  auto stub = NewStub(forwarder.grpc());
  for (int i = 0; i < 3; ++i) {
    const grpc::Status s = Export(stub.get(), MakeRequest(0x41, i * 10, 10, 4, 0, &sent));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_TRUE(WaitFor([&] { return forwarder.Status("tracesPending") == 30; }, absl::Seconds(30)))
      << forwarder.Log();
  EXPECT_EQ(forwarder.Status("spansExported"), 0u) << "nothing is decided before the drain";

  const CommandResult drain = forwarder.Ctl({"--json", "drain", "--deadline", "20s"});
  ASSERT_EQ(drain.exit_code, 0) << drain.output << forwarder.Log();
  EXPECT_EQ(JsonValue(drain.output, "tracesDecided"), "30") << drain.output;
  EXPECT_EQ(JsonValue(drain.output, "tracesKept"), "30") << drain.output;
  EXPECT_EQ(JsonValue(drain.output, "spansKept"), "120") << drain.output;
  EXPECT_EQ(JsonValue(drain.output, "spansExported"), "120") << drain.output;
  EXPECT_EQ(JsonValue(drain.output, "spansQueued"), "0") << drain.output;
  EXPECT_THAT(drain.output, ::testing::HasSubstr("\"flushed\":true"));
  EXPECT_EQ(forwarder.Status("tracesPending"), 0u);

  // Everything pending arrived at the backend (which decides after its own 100 ms).
  auto missing = [&] {
    std::vector<std::string> out;
    for (const auto& [trace, spans] : sent) {
      const std::set<std::string> stored = backend.StoredSpanIds(trace);
      for (const std::string& id : spans) {
        if (stored.count(id) == 0) out.push_back(trace + "/" + id);
      }
    }
    return out;
  };
  EXPECT_TRUE(WaitFor([&] { return missing().empty(); }, absl::Seconds(30)))
      << missing().size() << " spans missing at the backend\n"
      << backend.Log();

  // Intake is closed: gRPC and HTTP clients are told to retry elsewhere or later, /readyz says
  // not ready, and the admin API still answers.
  const grpc::Status refused = Export(stub.get(), MakeRequest(0x42, 0, 1, 1, 0, nullptr));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  const std::string one_span = MakeRequest(0x43, 0, 1, 1, 0, nullptr).SerializeAsString();
  EXPECT_EQ(HttpPostTraces(absl::StrCat("http://", forwarder.http(), "/v1/traces"), one_span), 503);
  EXPECT_EQ(forwarder.ReadyzCode(), 503);
  EXPECT_EQ(forwarder.Ctl({"status"}).exit_code, 0);
  EXPECT_EQ(forwarder.Status("spansAccepted"), 120u) << "the refused span was not accepted";

  // A second drain finds nothing left; the operator then stops the process cleanly.
  const CommandResult again = forwarder.Ctl({"--json", "drain", "--deadline", "5s"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(JsonValue(again.output, "tracesDecided"), "0") << again.output;
  EXPECT_EQ(forwarder.Stop(), 0) << forwarder.Log();
  EXPECT_EQ(backend.Stop(), 0);
}

// Small limits: 4 MiB of pending span bytes, refused beyond; a short intake queue.
constexpr char kSmallConfig[] = R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0", max_recv_msg_size_mib: 4}
      http: {enabled: false}
sampler:
  decision_wait: 1s
  max_pending_bytes: 4194304
  when_full: refuse
  max_queued_spans: 5000
  policies: [{name: everything, type: always_sample}]
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)";

// The bound the flood must stay under, for a daemon holding at most ~4 MiB of pending spans
// (about 1.5x that in memory) plus RocksDB's memtables and block cache, gRPC buffers of the
// requests in flight and the journal.
constexpr int64_t kRssBoundMib = 400;

TEST(FloodTest, OverloadIsRefusedRetryablyMemoryStaysBoundedAndAcksAreAccountedFor) {
  TempDir dir;
  Tracekeep daemon(dir.path() + "/small", kSmallConfig);
  ASSERT_TRUE(daemon.Start());
  const int64_t rss_before_kib = RssKib(daemon.pid());

  constexpr int kClients = 4;
  constexpr int kTracesPerRequest = 50;
  constexpr int kSpansPerTrace = 4;
  constexpr int kSpansPerRequest = kTracesPerRequest * kSpansPerTrace;
  const absl::Time flood_end = absl::Now() + absl::Seconds(5);
  std::atomic<uint64_t> acked_requests{0}, exhausted_requests{0}, exhausted_with_details{0};
  std::atomic<uint64_t> other_errors{0};
  std::string first_other_error;
  std::atomic<bool> flooding{true};
  std::atomic<int64_t> max_rss_kib{rss_before_kib};
  std::thread sampler([&] {
    while (flooding.load()) {
      max_rss_kib.store(std::max(max_rss_kib.load(), RssKib(daemon.pid())));
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = NewStub(daemon.grpc());
      for (int n = 0; absl::Now() < flood_end; ++n) {
        // Each request has new trace ids, so that no trace straddles an accepted and a refused
        // request: acknowledged spans then map to whole kept traces.
        const grpc::Status s =
            Export(stub.get(), MakeRequest(static_cast<uint8_t>(0x10 + c), n * kTracesPerRequest,
                                           kTracesPerRequest, kSpansPerTrace, 256, nullptr));
        if (s.ok()) {
          acked_requests.fetch_add(1);
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          exhausted_requests.fetch_add(1);
          if (!s.error_details().empty()) exhausted_with_details.fetch_add(1);
        } else if (other_errors.fetch_add(1) == 0) {
          first_other_error = absl::StrCat(s.error_code(), ": ", s.error_message());
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  flooding.store(false);
  sampler.join();

  const uint64_t acked_spans = acked_requests.load() * kSpansPerRequest;
  const uint64_t refused_spans = exhausted_requests.load() * kSpansPerRequest;
  std::printf(
      "flood: %d clients for 5 s: %lu requests acknowledged (%lu spans), %lu refused "
      "with RESOURCE_EXHAUSTED; daemon RSS %ld MiB before, at most %ld MiB during\n",
      kClients, static_cast<unsigned long>(acked_requests.load()),
      static_cast<unsigned long>(acked_spans),
      static_cast<unsigned long>(exhausted_requests.load()),
      static_cast<long>(rss_before_kib / 1024), static_cast<long>(max_rss_kib / 1024));
  EXPECT_EQ(other_errors.load(), 0u) << first_other_error;
  EXPECT_GT(acked_requests.load(), 0u);
  EXPECT_GT(exhausted_requests.load(), 0u) << "the flood did not reach the limits";
  EXPECT_EQ(exhausted_with_details.load(), exhausted_requests.load())
      << "every refusal carries google.rpc.Status details (RetryInfo)";
  EXPECT_GT(max_rss_kib.load(), 0);
  EXPECT_LT(max_rss_kib.load(), kRssBoundMib * 1024) << "daemon RSS during the flood";

  // Once the last traces are decided, every acknowledged span is accounted for: accepted,
  // decided (kept, with always_sample) and stored; every refused one counted as refused.
  ASSERT_TRUE(WaitFor(
      [&] {
        return daemon.Status("tracesPending") == 0 &&
               daemon.Metric("tracekeep_storage_spans_stored_total") ==
                   static_cast<double>(acked_spans);
      },
      absl::Seconds(20)))
      << "pending " << daemon.Status("tracesPending") << ", stored "
      << daemon.Metric("tracekeep_storage_spans_stored_total") << " of " << acked_spans;
  EXPECT_EQ(daemon.Status("spansAccepted"), acked_spans);
  EXPECT_EQ(daemon.Status("spansRefused"), refused_spans);
  EXPECT_EQ(daemon.Status("tracesKept"), acked_requests.load() * kTracesPerRequest);
  EXPECT_EQ(daemon.Status("tracesDropped"), 0u);
  EXPECT_EQ(daemon.Stop(), 0) << daemon.Log();
}

}  // namespace
}  // namespace tracekeep::e2e
