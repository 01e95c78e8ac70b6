// End to end, issue #5: nothing kept is lost while the backend is down, nor when tracekeep is
// killed with SIGKILL while it waits for the backend. The backend is a second real tracekeep
// process (a real OTLP/gRPC receiver, keeping everything with always_sample); what it received is
// read back with the real tracekeepctl (`trace get`, `status`). Spans are counted by span id.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
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

using ::testing::HasSubstr;
namespace collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

// A port that was free a moment ago (bound to 0, then closed), for a process that must come back
// on the same port.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
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

std::string HttpGet(const std::string& url) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(curl) != CURLE_OK) body.clear();
  curl_easy_cleanup(curl);
  return body;
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

// A tracekeep child process with its own data directory, restartable with the same config.
class Tracekeep {
 public:
  Tracekeep(std::string dir, std::string config_body) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    config_ = dir_ + "/tracekeep.yaml";
    WriteFile(config_, absl::StrCat("data_dir: ", dir_, "/data\n", config_body));
  }

  // Starts it and waits until it serves.
  ::testing::AssertionResult Start() {
    const std::string endpoints = dir_ + "/endpoints.json";
    std::remove(endpoints.c_str());
    ++runs_;
    process_ =
        std::make_unique<ChildProcess>(std::vector<std::string>{TRACEKEEP_BIN, "--config", config_,
                                                                "--write-endpoints", endpoints},
                                       absl::StrCat(dir_, "/tracekeep.", runs_, ".log"));
    if (!WaitFor([&] { return !ReadFile(endpoints).empty(); }, absl::Seconds(30))) {
      return ::testing::AssertionFailure() << "tracekeep in " << dir_ << " did not start:\n"
                                           << Log();
    }
    const std::string json = ReadFile(endpoints);
    grpc_ = JsonValue(json, "otlp_grpc");
    admin_ = JsonValue(json, "admin");
    telemetry_ = JsonValue(json, "telemetry");
    return ::testing::AssertionSuccess();
  }

  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait(absl::Seconds(30));
    process_.reset();
  }
  // SIGTERM, and the exit code once it stopped (-1 if it did not within the timeout).
  int Stop() {
    process_->Signal(SIGTERM);
    return WaitExit(absl::Seconds(60));
  }
  // The exit code once the process ended by itself (128+N for signal N), -1 on timeout.
  int WaitExit(absl::Duration timeout) {
    const int code = process_->Wait(timeout);
    if (code != -1) process_.reset();
    return code;
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
    return e2e::Metric(HttpGet(absl::StrCat("http://", telemetry_, "/metrics")), name);
  }
  // Span ids (hex) stored for a trace, as `tracekeepctl --json trace get` prints them.
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
  std::string Log() const {
    std::string all;
    for (int i = 1; i <= runs_; ++i) {
      absl::StrAppend(&all, "--- run ", i, " ---\n",
                      ReadFile(absl::StrCat(dir_, "/tracekeep.", i, ".log")));
    }
    return all;
  }
  const std::string& grpc() const { return grpc_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string config_;
  std::unique_ptr<ChildProcess> process_;
  int runs_ = 0;
  std::string grpc_, admin_, telemetry_;
};

// The spans a test sent: trace id (hex) -> span ids (hex).
using Sent = std::map<std::string, std::set<std::string>>;

// The span list of a new request from service "shop-api".
otlp_trace::ScopeSpans* NewRequest(collector::ExportTraceServiceRequest* request) {
  auto* rs = request->add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("shop-api");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("durability-e2e");
  return ss;
}

// Sends `request` over OTLP/gRPC (plaintext); the failure names the endpoint and the error.
::testing::AssertionResult Export(const std::string& endpoint,
                                  const collector::ExportTraceServiceRequest& request) {
  auto stub = collector::TraceService::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  collector::ExportTraceServiceResponse response;
  const grpc::Status status = stub->Export(&context, request, &response);
  if (!status.ok()) {
    return ::testing::AssertionFailure()
           << "export to " << endpoint << ": " << status.error_message();
  }
  return ::testing::AssertionSuccess();
}

// Sends `traces` traces of `spans_per_trace` spans over OTLP/gRPC; ids derive from `tag`.
::testing::AssertionResult SendTraces(const std::string& endpoint, uint8_t tag, int traces,
                                      int spans_per_trace, Sent* sent, size_t padding = 0,
                                      int first_trace = 0) {
  collector::ExportTraceServiceRequest request;
  otlp_trace::ScopeSpans* ss = NewRequest(&request);
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  for (int t = first_trace; t < first_trace + traces; ++t) {
    std::string trace_id(16, static_cast<char>(tag));
    trace_id[14] = static_cast<char>(t >> 8);
    trace_id[15] = static_cast<char>(t & 0xff);
    for (int s = 0; s < spans_per_trace; ++s) {
      std::string span_id(8, static_cast<char>(tag));
      span_id[5] = static_cast<char>(t >> 8);
      span_id[6] = static_cast<char>(t & 0xff);
      span_id[7] = static_cast<char>(s + 1);
      otlp_trace::Span* span = ss->add_spans();
      span->set_trace_id(trace_id);
      span->set_span_id(span_id);
      span->set_name(absl::StrCat("op-", s));
      span->set_start_time_unix_nano(now + s);
      span->set_end_time_unix_nano(now + s + 1000);
      if (padding > 0) {
        auto* attr = span->add_attributes();
        attr->set_key("payload");
        attr->mutable_value()->set_string_value(std::string(padding, 'x'));
      }
      (*sent)[ToHex(trace_id)].insert(ToHex(span_id));
    }
  }
  return Export(endpoint, request);
}

size_t SpanCount(const Sent& sent) {
  size_t n = 0;
  for (const auto& [trace, spans] : sent) n += spans.size();
  return n;
}

// Span ids of `sent` that `backend` has not stored.
std::vector<std::string> Missing(const Tracekeep& backend, const Sent& sent) {
  std::vector<std::string> missing;
  for (const auto& [trace, spans] : sent) {
    const std::set<std::string> stored = backend.StoredSpanIds(trace);
    for (const std::string& id : spans) {
      if (stored.count(id) == 0) missing.push_back(trace + "/" + id);
    }
  }
  return missing;
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

// Forwards everything to 127.0.0.1:<backend port>, retrying quickly.
constexpr char kForwarderConfig[] = R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {enabled: false}
sampler:
  decision_wait: 100ms
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

std::string Format(const char* format, int port) {
  char buf[2048];
  std::snprintf(buf, sizeof(buf), format, port);
  return buf;
}

// A tmpfs of `mib` MiB mounted at `path` for a disk-full test (root only), unmounted at the end
// (before the TempDir holding it is removed: declare it after).
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& path, int mib) : path_(path) {
    std::filesystem::create_directories(path_);
    mounted_ = RunCommand({"/bin/mount", "-t", "tmpfs", "-o", absl::StrCat("size=", mib, "m"),
                           "tmpfs", path_})
                   .exit_code == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) RunCommand({"/bin/umount", "-l", path_});
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

class ExportDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    backend_ = std::make_unique<Tracekeep>(dir_.path() + "/backend", Format(kBackendConfig, port_));
    forwarder_ =
        std::make_unique<Tracekeep>(dir_.path() + "/forwarder", Format(kForwarderConfig, port_));
  }

  // Waits until the backend stored every span of `sent` and the forwarder's queue is empty.
  ::testing::AssertionResult AllArrived(const Sent& sent) {
    const bool ok = WaitFor(
        [&] {
          return forwarder_->Metric("tracekeep_exporter_queue_batches") == 0 &&
                 backend_->Status("tracesStored") > 0 && Missing(*backend_, sent).empty();
        },
        absl::Seconds(60));
    if (ok) return ::testing::AssertionSuccess();
    const std::vector<std::string> missing = Missing(*backend_, sent);
    return ::testing::AssertionFailure()
           << missing.size() << " of " << SpanCount(sent) << " spans missing at the backend, e.g. "
           << (missing.empty() ? "-" : missing[0]) << "\nforwarder:\n"
           << forwarder_->Log() << "\nbackend:\n"
           << backend_->Log();
  }

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Tracekeep> backend_;
  std::unique_ptr<Tracekeep> forwarder_;
};

TEST_F(ExportDurabilityTest, BackendOutageLosesNothingAndDuplicatesNothing) {
  ASSERT_TRUE(backend_->Start());
  ASSERT_TRUE(forwarder_->Start());
  Sent before;
  ASSERT_TRUE(SendTraces(forwarder_->grpc(), 0x11, 20, 5, &before));
  ASSERT_TRUE(AllArrived(before));

  // The backend dies; kept spans go on arriving at the forwarder.
  backend_->Kill();
  Sent during;
  ASSERT_TRUE(SendTraces(forwarder_->grpc(), 0x22, 40, 5, &during));
  ASSERT_TRUE(SendTraces(forwarder_->grpc(), 0x33, 40, 5, &during));
  ASSERT_TRUE(WaitFor(
      [&] {
        return forwarder_->Metric("tracekeep_exporter_queue_spans") ==
               static_cast<double>(SpanCount(during));
      },
      absl::Seconds(30)))
      << forwarder_->Log();
  EXPECT_GT(forwarder_->Metric("tracekeep_exporter_queue_bytes"), 0);
  EXPECT_GT(forwarder_->Metric("tracekeep_exporter_queue_batches"), 0);
  EXPECT_GT(forwarder_->Status("exportFailures"), 0u);

  // It comes back on the same port: everything queued arrives, once.
  ASSERT_TRUE(backend_->Start());
  ASSERT_TRUE(AllArrived(during));
  EXPECT_TRUE(Missing(*backend_, before).empty()) << "the backend kept what it stored before";
  const uint64_t received = backend_->Status("spansAccepted");  // since its restart
  EXPECT_EQ(received, SpanCount(during))
      << (received - SpanCount(during)) << " duplicate spans delivered after the outage";
  EXPECT_EQ(forwarder_->Metric("tracekeep_exporter_queue_oldest_age_seconds"), 0);
  EXPECT_EQ(forwarder_->Status("spansExported"), SpanCount(before) + SpanCount(during));
}

TEST_F(ExportDurabilityTest, QueuedSpansSurviveSigkillOfTheForwarderWhileTheBackendIsDown) {
  ASSERT_TRUE(forwarder_->Start());  // the backend is not running
  Sent sent;
  ASSERT_TRUE(SendTraces(forwarder_->grpc(), 0x44, 30, 4, &sent));
  ASSERT_TRUE(WaitFor(
      [&] {
        return forwarder_->Metric("tracekeep_exporter_queue_spans") ==
               static_cast<double>(SpanCount(sent));
      },
      absl::Seconds(30)))
      << forwarder_->Log();

  // Kill once every trace left the intake journal: a kill before that replays them, and the
  // traces decided a second time are exported twice (at-least-once).
  const double sent_at = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  ASSERT_TRUE(WaitFor(
      [&] {
        return forwarder_->Metric("tracekeep_journal_truncated_through_timestamp_seconds") >
               sent_at;
      },
      absl::Seconds(30)))
      << forwarder_->Log();
  forwarder_->Kill();  // kill -9 while everything waits in the export queue
  ASSERT_TRUE(forwarder_->Start());
  EXPECT_THAT(forwarder_->Log(), HasSubstr("left in rocksdb"));
  ASSERT_TRUE(backend_->Start());
  ASSERT_TRUE(AllArrived(sent));
  const uint64_t received = backend_->Status("spansAccepted");
  // At-least-once: a duplicate would be allowed, but none is expected here (nothing had been
  // acknowledged before the kill).
  EXPECT_EQ(received, SpanCount(sent))
      << (received - SpanCount(sent)) << " duplicate spans after the restart";
}

TEST_F(ExportDurabilityTest, CheckpointOfARunningDaemonOpensWithItsData) {
  ASSERT_TRUE(backend_->Start());
  Sent sent;
  ASSERT_TRUE(SendTraces(backend_->grpc(), 0x55, 5, 3, &sent));
  ASSERT_TRUE(WaitFor([&] { return Missing(*backend_, sent).empty(); }, absl::Seconds(30)));
  const std::string copy = dir_.path() + "/backup/cp1";
  CommandResult r = backend_->Ctl({"checkpoint", copy});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("checkpoint written to " + copy));
  CommandResult again = backend_->Ctl({"checkpoint", copy});
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_THAT(again.output, HasSubstr("already exists"));

  // A second tracekeep on the copy serves the same traces.
  Tracekeep restored(dir_.path() + "/restored", absl::StrCat(R"(
storage: {path: )",
                                                             copy, R"(}
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}, http: {enabled: false}}}}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)"));
  ASSERT_TRUE(restored.Start());
  EXPECT_TRUE(Missing(restored, sent).empty()) << restored.Log();
}

// A full disk, for real: a tmpfs of 32 MiB mounted by the test (root only) and filled with a file.
// The daemon (its disk budget off, to reach the real ENOSPC) must keep serving: requests it cannot
// journal are refused with RESOURCE_EXHAUSTED naming the journal and the disk error, nothing it
// acknowledged is lost (kept spans the store could not take wait in the sampler), and once the
// file is removed it accepts again by itself. A kill -9 afterwards finds no corruption: the
// restarted daemon delivers everything acknowledged to the backend. (Before the write guard,
// Debian's RocksDB 7.8 aborted on the write after a failed WAL write: facebook/rocksdb#12448.)
TEST_F(ExportDurabilityTest, FullDiskRefusesClearlyAndRecoversOnceSpaceIsFreed) {
  const std::string mnt = dir_.path() + "/small";
  SmallTmpfs tmpfs(mnt, 32);
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs at " << mnt << " (needs root)";
  forwarder_ = std::make_unique<Tracekeep>(
      mnt + "/forwarder",
      Format(kForwarderConfig, port_) + "storage: {min_free_disk_bytes: 0, write_buffer_mib: 1}\n");
  ASSERT_TRUE(forwarder_->Start());  // the backend is down: everything stays queued
  // Leave ~3 MiB free.
  const auto free_mib = static_cast<int64_t>(std::filesystem::space(mnt).available >> 20);
  const std::string filler = mnt + "/filler";
  RunCommand({"/bin/dd", "if=/dev/zero", "of=" + filler, "bs=1M",
              absl::StrCat("count=", std::max<int64_t>(0, free_mib - 3))});

  Sent accepted;
  std::string refusal;
  for (int batch = 0; batch < 100 && refusal.empty(); ++batch) {
    Sent attempt;
    const ::testing::AssertionResult sent =
        SendTraces(forwarder_->grpc(), 0x66, 20, 10, &attempt, 4000, batch * 20);
    if (sent) {
      accepted.insert(attempt.begin(), attempt.end());
    } else {
      refusal = sent.message();
    }
  }
  ASSERT_FALSE(refusal.empty()) << "the disk never filled\n" << forwarder_->Log();
  EXPECT_THAT(refusal, HasSubstr("cannot journal the request, retry later"));
  EXPECT_THAT(refusal, HasSubstr(mnt + "/forwarder/data/journal"));
  EXPECT_THAT(refusal, ::testing::AnyOf(HasSubstr("No space left"),
                                        HasSubstr("writes refused after a failed write")));
  EXPECT_EQ(forwarder_->Ctl({"status"}).exit_code, 0) << "still serving with a full disk";
  EXPECT_GT(forwarder_->Metric(
                "tracekeep_receiver_spans_refused_total{reason=\"overloaded\",transport=\"grpc\"}"),
            0)
      << "refused as RESOURCE_EXHAUSTED (overloaded)";

  // Space is freed: accepted again, without a restart (same ids: a client retrying).
  std::filesystem::remove(filler);
  Sent later;
  ASSERT_TRUE(WaitFor(
      [&] {
        later.clear();
        return static_cast<bool>(SendTraces(forwarder_->grpc(), 0x77, 5, 2, &later));
      },
      absl::Seconds(30)))
      << forwarder_->Log();
  accepted.insert(later.begin(), later.end());
  ASSERT_TRUE(WaitFor(
      [&] {
        return forwarder_->Metric("tracekeep_exporter_queue_spans") >=
               static_cast<double>(SpanCount(accepted));
      },
      absl::Seconds(60)))
      << "queued " << forwarder_->Metric("tracekeep_exporter_queue_spans") << " of "
      << SpanCount(accepted) << "\n"
      << forwarder_->Log();

  // No corruption: a restart reopens everything, and all that was acknowledged arrives.
  forwarder_->Kill();
  ASSERT_TRUE(forwarder_->Start());
  ASSERT_TRUE(backend_->Start());
  ASSERT_TRUE(AllArrived(accepted));
}

// The disk budget (storage.min_free_disk_bytes), end to end on a small tmpfs: when a filler file
// leaves less free space than configured, clients get RESOURCE_EXHAUSTED naming the setting and
// the refusal is counted; once the filler is removed, data is accepted again by itself; nothing
// acknowledged is lost across a kill -9.
TEST(DiskBudgetE2eTest, RefusesBelowMinFreeSpaceAndAcceptsAgainOnceSpaceIsFreed) {
  TempDir dir;
  const std::string mnt = dir.path() + "/small";
  SmallTmpfs tmpfs(mnt, 256);
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs at " << mnt << " (needs root)";
  constexpr int64_t kMinFreeMib = 40;
  Tracekeep tracekeep(
      mnt + "/tk", Format(kBackendConfig, 0) +
                       absl::StrCat("storage: {min_free_disk_bytes: ", kMinFreeMib << 20, "}\n"));
  ASSERT_TRUE(tracekeep.Start());
  Sent accepted;
  ASSERT_TRUE(SendTraces(tracekeep.grpc(), 0x41, 10, 3, &accepted));
  // Once kept spans are stored, both databases have their write-ahead logs (RocksDB
  // preallocates them, ~70 MiB each with the default write buffer).
  ASSERT_TRUE(WaitFor([&] { return Missing(tracekeep, accepted).empty(); }, absl::Seconds(30)))
      << tracekeep.Log();
  ASSERT_TRUE(WaitFor([&] { return tracekeep.Metric("tracekeep_disk_budget_free_bytes") > 0; },
                      absl::Seconds(20)))
      << tracekeep.Log();
  EXPECT_EQ(tracekeep.Metric("tracekeep_disk_budget_exceeded"), 0);
  const auto free_before = static_cast<int64_t>(std::filesystem::space(mnt).available);
  ASSERT_GT(free_before, (kMinFreeMib + 8) << 20) << RunCommand({"/bin/du", "-ak", mnt}).output;

  // Leave ~half of the minimum free.
  const int64_t filler_mib = free_before / (1 << 20) - kMinFreeMib / 2;
  const std::string filler = mnt + "/filler";
  const CommandResult dd = RunCommand(
      {"/bin/dd", "if=/dev/zero", "of=" + filler, "bs=1M", absl::StrCat("count=", filler_mib)});
  ASSERT_EQ(dd.exit_code, 0) << dd.output << RunCommand({"/bin/du", "-ak", mnt}).output;
  ASSERT_TRUE(WaitFor([&] { return tracekeep.Metric("tracekeep_disk_budget_exceeded") == 1; },
                      absl::Seconds(20)))
      << tracekeep.Log();
  Sent refused;
  const ::testing::AssertionResult result = SendTraces(tracekeep.grpc(), 0x42, 5, 2, &refused);
  ASSERT_FALSE(result) << "accepted with " << kMinFreeMib / 2 << " MiB free";
  EXPECT_THAT(result.message(), HasSubstr("storage.min_free_disk_bytes"));
  EXPECT_THAT(result.message(), HasSubstr(mnt));
  EXPECT_EQ(
      tracekeep.Metric("tracekeep_disk_budget_spans_refused_total{reason=\"min_free_disk_bytes\"}"),
      10);
  EXPECT_EQ(tracekeep.Ctl({"status"}).exit_code, 0) << "still serving";

  // Space comes back: accepted again without a restart.
  std::filesystem::remove(filler);
  ASSERT_TRUE(WaitFor([&] { return tracekeep.Metric("tracekeep_disk_budget_exceeded") == 0; },
                      absl::Seconds(20)))
      << tracekeep.Log();
  ASSERT_TRUE(SendTraces(tracekeep.grpc(), 0x43, 5, 2, &accepted));

  // Everything acknowledged is stored, also after kill -9; nothing refused is.
  ASSERT_TRUE(WaitFor([&] { return Missing(tracekeep, accepted).empty(); }, absl::Seconds(30)))
      << tracekeep.Log();
  tracekeep.Kill();
  ASSERT_TRUE(tracekeep.Start());
  EXPECT_TRUE(Missing(tracekeep, accepted).empty()) << tracekeep.Log();
  EXPECT_EQ(Missing(tracekeep, refused).size(), SpanCount(refused));
}

// One span to send: ids by small numbers, optionally an error, optionally a child (not a root).
struct SpanSpec {
  uint8_t trace;
  uint8_t span;
  bool error = false;
  bool child = false;
};

::testing::AssertionResult SendSpans(const std::string& endpoint,
                                     const std::vector<SpanSpec>& specs) {
  collector::ExportTraceServiceRequest request;
  otlp_trace::ScopeSpans* ss = NewRequest(&request);
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  for (const SpanSpec& spec : specs) {
    otlp_trace::Span* span = ss->add_spans();
    span->set_trace_id(std::string(15, '\x5d') + static_cast<char>(spec.trace));
    span->set_span_id(std::string(7, '\x5d') + static_cast<char>(spec.span));
    if (spec.child) span->set_parent_span_id(std::string(7, '\x5d') + '\x01');
    span->set_name(absl::StrCat("op-", int{spec.span}));
    span->set_start_time_unix_nano(now + spec.span);
    span->set_end_time_unix_nano(now + spec.span + 1000);
    if (spec.error) span->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
  }
  return Export(endpoint, request);
}

std::string DecisionTraceHex(uint8_t trace) {
  return ToHex(std::string(15, '\x5d') + static_cast<char>(trace));
}

// A forwarder keeping error traces (decided 200 ms after the root span), sending to the
// backend at port %d.
constexpr char kErrorsForwarderConfig[] = R"(
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {enabled: false}
sampler:
  decision_wait: 30s
  decision_wait_after_root_received: 200ms
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
exporters:
  otlp:
    endpoint: "127.0.0.1:%d"
    batch: {send_batch_size: 50, send_batch_max_size: 100, timeout: 20ms}
    retry_on_failure: {initial_interval: 50ms, max_interval: 300ms}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
orders: {enabled: false}
)";

// Decisions outlive kill -9. A trace without a root span stays pending (30 s) and holds the
// journal, so the entries of two traces decided next to it are replayed after the crash: the
// kept one (an error) is not forwarded again (its spans are in the store), the dropped one stays
// dropped. Late spans sent after the restart follow the decisions made before it: the kept
// trace's goes to the backend at once, tagged with the policy; the dropped trace's is dropped
// even though it is an error span. Counted at the backend by spans accepted. (Fails with
// sampler.persist_decisions: false.)
TEST_F(ExportDurabilityTest, DecisionsSurviveKillNineWithoutDuplicates) {
  forwarder_ = std::make_unique<Tracekeep>(dir_.path() + "/decisions",
                                           Format(kErrorsForwarderConfig, port_));
  ASSERT_TRUE(backend_->Start());
  ASSERT_TRUE(forwarder_->Start());
  const std::string accepted_at_backend =
      "tracekeep_receiver_spans_accepted_total{transport=\"grpc\"}";
  // Trace 1: no root span, pending for 30 s. Trace 2: kept (error). Trace 3: dropped.
  ASSERT_TRUE(SendSpans(forwarder_->grpc(), {{1, 2, false, true}}));
  ASSERT_TRUE(
      SendSpans(forwarder_->grpc(), {{2, 1}, {2, 2, true, true}, {3, 1}, {3, 2, false, true}}));
  ASSERT_TRUE(
      WaitFor([&] { return backend_->Metric(accepted_at_backend) == 2; }, absl::Seconds(30)))
      << forwarder_->Log() << backend_->Log();
  ASSERT_TRUE(
      WaitFor([&] { return forwarder_->Metric("tracekeep_sampler_traces_not_sampled_total") == 1; },
              absl::Seconds(10)));
  EXPECT_EQ(forwarder_->Metric("tracekeep_sampler_traces_pending"), 1) << "trace 1 holds on";

  forwarder_->Kill();
  ASSERT_TRUE(forwarder_->Start());
  EXPECT_GE(forwarder_->Metric("tracekeep_sampler_decisions_restored_total"), 2);
  EXPECT_GE(forwarder_->Metric("tracekeep_journal_batches_replayed_total"), 2)
      << "the journal kept the decided traces' entries (trace 1 is older and pending)";
  EXPECT_EQ(forwarder_->Metric("tracekeep_sampler_replayed_spans_skipped_total"), 2)
      << "trace 2's spans were stored before the crash";

  // Late spans: trace 2's follows its kept decision; trace 3's (an error!) its dropped one.
  ASSERT_TRUE(SendSpans(forwarder_->grpc(), {{2, 3, false, true}, {3, 3, true, true}}));
  ASSERT_TRUE(
      WaitFor([&] { return backend_->Metric(accepted_at_backend) >= 3; }, absl::Seconds(30)))
      << forwarder_->Log();
  EXPECT_TRUE(WaitFor([&] { return forwarder_->Metric("tracekeep_exporter_queue_spans") == 0; },
                      absl::Seconds(10)));
  EXPECT_EQ(backend_->Metric(accepted_at_backend), 3) << "no span of trace 2 was sent twice";
  EXPECT_EQ(backend_->StoredSpanIds(DecisionTraceHex(2)).size(), 3u);
  EXPECT_TRUE(backend_->StoredSpanIds(DecisionTraceHex(3)).empty())
      << "trace 3 was dropped before the crash; its late error span follows that";
  EXPECT_EQ(forwarder_->Metric("tracekeep_sampler_traces_pending"), 1) << "trace 1, replayed";
  const std::string json = backend_->Ctl({"--json", "trace", "get", DecisionTraceHex(2)}).output;
  EXPECT_THAT(json, HasSubstr("tracekeep.policy"));
}

// A kill -9 between the two writes of one kept batch (the durable export queue's, then the
// store's) loses neither: after the restart the batch is stored and reaches the backend (perhaps
// twice: delivery is at-least-once). The crash is a late span of a trace kept before a clean
// restart, so the replay meets it with the reloaded "kept" decision and hands on only what the
// store lacks; TRACEKEEP_CRASH_POINT=between_sinks makes the daemon SIGKILL itself at that
// instant. (Fails if the store is written first: the span is then stored and never forwarded.)
TEST_F(ExportDurabilityTest, KillBetweenExportQueueAndStoreWritesLosesNeither) {
  forwarder_ =
      std::make_unique<Tracekeep>(dir_.path() + "/crash", Format(kErrorsForwarderConfig, port_));
  ASSERT_TRUE(backend_->Start());
  ASSERT_TRUE(forwarder_->Start());
  const std::string trace = DecisionTraceHex(7);
  ASSERT_TRUE(SendSpans(forwarder_->grpc(), {{7, 1, true}, {7, 2, false, true}}));
  ASSERT_TRUE(
      WaitFor([&] { return backend_->StoredSpanIds(trace).size() == 2; }, absl::Seconds(30)))
      << forwarder_->Log() << backend_->Log();
  ASSERT_EQ(forwarder_->Stop(), 0) << forwarder_->Log();

  setenv("TRACEKEEP_CRASH_POINT", "between_sinks", 1);
  const ::testing::AssertionResult started = forwarder_->Start();
  unsetenv("TRACEKEEP_CRASH_POINT");
  ASSERT_TRUE(started);
  ASSERT_GE(forwarder_->Metric("tracekeep_sampler_decisions_restored_total"), 1);
  // The crash point fires on a shard thread, which may beat the answer to the client ("socket
  // closed"): either way the span was journaled before the sampler got it, so it is replayed.
  const ::testing::AssertionResult sent = SendSpans(forwarder_->grpc(), {{7, 3, false, true}});
  if (!sent) std::cerr << "no answer before the crash: " << sent.message() << "\n";
  ASSERT_EQ(forwarder_->WaitExit(absl::Seconds(30)), 128 + SIGKILL)
      << "the crash point did not fire:\n"
      << forwarder_->Log();

  ASSERT_TRUE(forwarder_->Start());
  EXPECT_EQ(forwarder_->Metric("tracekeep_sampler_replayed_spans_skipped_total"), 0)
      << "span 3 never reached the store";
  EXPECT_TRUE(
      WaitFor([&] { return backend_->StoredSpanIds(trace).size() == 3; }, absl::Seconds(30)))
      << forwarder_->Log() << backend_->Log();
  EXPECT_TRUE(
      WaitFor([&] { return forwarder_->StoredSpanIds(trace).size() == 3; }, absl::Seconds(10)))
      << forwarder_->Log();
  EXPECT_TRUE(WaitFor([&] { return forwarder_->Metric("tracekeep_exporter_queue_spans") == 0; },
                      absl::Seconds(10)));
  const double accepted =
      backend_->Metric("tracekeep_receiver_spans_accepted_total{transport=\"grpc\"}");
  EXPECT_GE(accepted, 3);
  EXPECT_LE(accepted, 4) << "span 3 at most twice: queued before the crash and after the replay";
}

}  // namespace
}  // namespace tracekeep::e2e
