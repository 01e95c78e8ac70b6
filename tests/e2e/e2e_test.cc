// End to end: the real tracekeep binary, fed by the OpenTelemetry C++ SDK's OTLP/gRPC exporter
// and by OTLP/HTTP JSON over libcurl, forwarding to an OTLP/gRPC server run by this test, and
// inspected with the real tracekeepctl.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <map>
#include <mutex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/exporters/otlp/otlp_grpc_exporter_factory.h"
#include "opentelemetry/exporters/otlp/otlp_grpc_exporter_options.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "opentelemetry/sdk/resource/resource.h"
#include "opentelemetry/sdk/trace/simple_processor_factory.h"
#include "opentelemetry/sdk/trace/tracer_provider_factory.h"
#include "opentelemetry/trace/provider.h"
#include "tests/e2e/process.h"

namespace tracekeep::e2e {
namespace {

using ::testing::HasSubstr;
namespace collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_exporter = ::opentelemetry::exporter::otlp;
namespace sdktrace = ::opentelemetry::sdk::trace;
namespace api = ::opentelemetry::trace;

// The OTLP/gRPC server tracekeep forwards to: records the spans it receives, by trace id (hex).
class RecordingTraceService final : public collector::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext*, const collector::ExportTraceServiceRequest* request,
                      collector::ExportTraceServiceResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& rs : request->resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) spans_[ToHex(span.trace_id())].insert(span.name());
      }
    }
    return grpc::Status::OK;
  }
  std::set<std::string> SpanNames(const std::string& trace_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = spans_.find(trace_id);
    return it == spans_.end() ? std::set<std::string>() : it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> spans_;
};

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HttpResult {
  long status = 0;
  std::string body;
};

HttpResult Http(const std::string& url, const std::string& body = "",
                const std::string& content_type = "") {
  HttpResult result;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  struct curl_slist* headers = nullptr;
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

// Sends one trace of two spans (root + child) through the C++ SDK; returns its trace id (hex).
std::string SendSdkTrace(api::Tracer& tracer, bool error) {
  auto root = tracer.StartSpan("POST /orders");
  api::StartSpanOptions child_options;
  child_options.parent = root->GetContext();
  auto child = tracer.StartSpan(error ? "db.insert failed" : "db.insert", child_options);
  child->SetAttribute("order.id", "o-1");
  if (error) child->SetStatus(api::StatusCode::kError, "duplicate key");
  child->End();
  root->End();
  char hex[32];
  root->GetContext().trace_id().ToLowerBase16(hex);
  return std::string(hex, 32);
}

std::string JsonTrace(const std::string& trace_id, bool error) {
  return absl::StrCat(R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",
      "value":{"stringValue":"crm-api"}}]},"scopeSpans":[{"scope":{"name":"manual"},"spans":[
      {"traceId":")",
                      trace_id, R"(","spanId":"1111111111111111","name":"price order","kind":2,
       "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000"},
      {"traceId":")",
                      trace_id, R"(","spanId":"2222222222222222","parentSpanId":"1111111111111111",
       "name":"UPDATE orders","startTimeUnixNano":"1700000000100000000",
       "endTimeUnixNano":"1700000000400000000","status":{"code":)",
                      error ? 2 : 0, R"(}},
      {"traceId":"not-hex","spanId":"3333333333333333","name":"broken"}]}]}]})");
}

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &backend_port_);
    builder.RegisterService(&backend_);
    backend_server_ = builder.BuildAndStart();
    ASSERT_NE(backend_server_, nullptr);

    const std::string config = dir_.path() + "/tracekeep.yaml";
    WriteFile(config, absl::StrCat(R"(
data_dir: )",
                                   dir_.path(), R"(/data
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {endpoint: "127.0.0.1:0"}
sampler:
  decision_wait: 300ms
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 0}}
exporters:
  otlp:
    endpoint: "127.0.0.1:)",
                                   backend_port_, R"("
    batch: {timeout: 20ms}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
# The SDK traces carry an order id; this test is about per-trace sampling (orders_e2e_test.cc
# covers order tracking, which would keep every trace of the order once one has an error).
orders: {enabled: false}
)"));
    endpoints_file_ = dir_.path() + "/endpoints.json";
    daemon_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TRACEKEEP_BIN, "--config", config, "--write-endpoints",
                                 endpoints_file_},
        dir_.path() + "/tracekeep.log");
    ASSERT_TRUE(WaitFor([&] { return !ReadFile(endpoints_file_).empty(); }, absl::Seconds(30)))
        << ReadFile(dir_.path() + "/tracekeep.log");
    const std::string endpoints = ReadFile(endpoints_file_);
    grpc_addr_ = JsonValue(endpoints, "otlp_grpc");
    http_addr_ = JsonValue(endpoints, "otlp_http");
    admin_addr_ = JsonValue(endpoints, "admin");
    telemetry_addr_ = JsonValue(endpoints, "telemetry");
    ASSERT_FALSE(grpc_addr_.empty() || http_addr_.empty() || admin_addr_.empty() ||
                 telemetry_addr_.empty())
        << endpoints;
  }

  void TearDown() override {
    if (backend_server_) backend_server_->Shutdown();
  }

  CommandResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", admin_addr_});
    return RunCommand(args);
  }

  TempDir dir_;
  RecordingTraceService backend_;
  std::unique_ptr<grpc::Server> backend_server_;
  int backend_port_ = 0;
  std::string endpoints_file_;
  std::unique_ptr<ChildProcess> daemon_;
  std::string grpc_addr_, http_addr_, admin_addr_, telemetry_addr_;
};

TEST_F(EndToEndTest, KeepsStoresAndForwardsErrorTracesAndDropsHealthyOnes) {
  // 1. The OpenTelemetry C++ SDK, exporting OTLP/gRPC to tracekeep.
  otlp_exporter::OtlpGrpcExporterOptions options;
  options.endpoint = grpc_addr_;
  options.use_ssl_credentials = false;
  auto provider = sdktrace::TracerProviderFactory::Create(
      sdktrace::SimpleSpanProcessorFactory::Create(
          otlp_exporter::OtlpGrpcExporterFactory::Create(options)),
      opentelemetry::sdk::resource::Resource::Create({{"service.name", "shop-api"}}));
  auto tracer = provider->GetTracer("e2e");
  const std::string sdk_error = SendSdkTrace(*tracer, /*error=*/true);
  const std::string sdk_healthy = SendSdkTrace(*tracer, /*error=*/false);
  ASSERT_TRUE(provider->ForceFlush());

  // 2. OTLP/HTTP with the JSON encoding (hex ids), one span with an invalid trace id.
  const std::string json_error = "5b8efff798038103d269b633813fc60c";
  const std::string json_healthy = "5b8efff798038103d269b633813fc60d";
  const std::string url = absl::StrCat("http://", http_addr_, "/v1/traces");
  HttpResult r1 = Http(url, JsonTrace(json_error, true), "application/json");
  EXPECT_EQ(r1.status, 200) << r1.body;
  EXPECT_THAT(r1.body, HasSubstr("\"rejectedSpans\":\"1\""));
  EXPECT_THAT(r1.body, HasSubstr("not-hex"));
  HttpResult r2 = Http(url, JsonTrace(json_healthy, false), "application/json");
  EXPECT_EQ(r2.status, 200) << r2.body;
  HttpResult bad = Http(url, "{\"resourceSpans\": [", "application/json");
  EXPECT_EQ(bad.status, 400);

  // 3. Error traces reach the backend and the store, whole.
  for (const std::string& id : {sdk_error, json_error}) {
    EXPECT_TRUE(WaitFor([&] { return backend_.SpanNames(id).size() == 2; }, absl::Seconds(30)))
        << "trace " << id << " not forwarded\n"
        << ReadFile(dir_.path() + "/tracekeep.log");
  }
  EXPECT_EQ(backend_.SpanNames(json_error),
            (std::set<std::string>{"price order", "UPDATE orders"}));
  CommandResult human = Ctl({"trace", "get", sdk_error});
  EXPECT_EQ(human.exit_code, 0) << human.output;
  EXPECT_THAT(human.output, HasSubstr("db.insert failed"));
  EXPECT_THAT(human.output, HasSubstr("shop-api"));
  CommandResult json = Ctl({"--json", "trace", "get", json_error});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_THAT(json.output, HasSubstr(json_error));
  EXPECT_THAT(json.output, HasSubstr("2222222222222222"));

  // 4. Healthy traces at a 0 % baseline: decided, neither stored nor forwarded.
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult s = Ctl({"--json", "status"});
        return absl::StrContains(s.output, "\"tracesDropped\":\"2\"");
      },
      absl::Seconds(30)))
      << Ctl({"--json", "status"}).output;
  for (const std::string& id : {sdk_healthy, json_healthy}) {
    CommandResult missing = Ctl({"trace", "get", id});
    EXPECT_EQ(missing.exit_code, 1) << missing.output;
    EXPECT_THAT(missing.output, HasSubstr("not found"));
    EXPECT_TRUE(backend_.SpanNames(id).empty());
  }

  // 5. Metrics and health.
  HttpResult metrics = Http(absl::StrCat("http://", telemetry_addr_, "/metrics"));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("tracekeep_sampler_traces_not_sampled_total 2"));
  EXPECT_THAT(metrics.body,
              HasSubstr("tracekeep_sampler_traces_sampled_total{policy=\"errors\"} 2"));
  EXPECT_THAT(metrics.body, HasSubstr("tracekeep_receiver_spans_refused_total{reason=\"invalid_"
                                      "trace_id\",transport=\"http\"} 2"));
  EXPECT_THAT(metrics.body, HasSubstr("tracekeep_exporter_spans_exported_total 4"));
  EXPECT_EQ(Http(absl::StrCat("http://", telemetry_addr_, "/healthz")).status, 200);
  EXPECT_EQ(Http(absl::StrCat("http://", telemetry_addr_, "/readyz")).status, 200);

  // 6. SIGTERM stops it cleanly.
  ASSERT_TRUE(daemon_->Signal(SIGTERM));
  EXPECT_EQ(daemon_->Wait(absl::Seconds(60)), 0) << ReadFile(dir_.path() + "/tracekeep.log");
}

// Starts the daemon with `config` (logging to <dir>/tracekeep.log) and waits until it wrote
// <dir>/endpoints.json (empty if it never did).
ChildProcess StartDaemon(const std::string& dir, const std::string& config) {
  const std::string endpoints_file = dir + "/endpoints.json";
  ChildProcess daemon({TRACEKEEP_BIN, "--config", config, "--write-endpoints", endpoints_file},
                      dir + "/tracekeep.log");
  WaitFor([&] { return !ReadFile(endpoints_file).empty(); }, absl::Seconds(30));
  return daemon;
}

// The design note's security rules: TLS on the OTLP/gRPC and admin ports, an admin token,
// and access only from allowed networks.
TEST(SecurityTest, TlsTokenAndAllowedNetworksAreEnforced) {
  TempDir dir;
  const std::string key = dir.path() + "/key.pem";
  const std::string cert = dir.path() + "/cert.pem";
  CommandResult openssl =
      RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                  key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                  "subjectAltName=DNS:localhost,IP:127.0.0.1"});
  ASSERT_EQ(openssl.exit_code, 0) << openssl.output;
  const std::string token_file = dir.path() + "/admin.token";
  WriteFile(token_file, "letmein\n");
  const std::string config = dir.path() + "/tracekeep.yaml";
  WriteFile(config, absl::StrCat(R"(
data_dir: )",
                                 dir.path(), R"(/data
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0", tls: {cert_file: )",
                                 cert, ", key_file: ", key, R"(}}
      http: {endpoint: "127.0.0.1:0", allowed_networks: [10.0.0.0/8]}
sampler:
  decision_wait: 200ms
  policies: [{name: everything, type: always_sample}]
telemetry: {endpoint: "127.0.0.1:0", allowed_networks: [10.0.0.0/8]}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
admin:
  endpoint: "127.0.0.1:0"
  tls: {cert_file: )",
                                 cert, ", key_file: ", key, R"(}
  auth_token_file: )",
                                 token_file, "\n"));
  ChildProcess daemon = StartDaemon(dir.path(), config);
  const std::string endpoints = ReadFile(dir.path() + "/endpoints.json");
  ASSERT_FALSE(endpoints.empty()) << ReadFile(dir.path() + "/tracekeep.log");
  const std::string grpc_addr = JsonValue(endpoints, "otlp_grpc");
  const std::string http_addr = JsonValue(endpoints, "otlp_http");
  const std::string admin_addr = JsonValue(endpoints, "admin");
  const std::string telemetry_addr = JsonValue(endpoints, "telemetry");

  // OTLP/gRPC over TLS with the C++ SDK, trusting the server's certificate.
  otlp_exporter::OtlpGrpcExporterOptions options;
  options.endpoint = grpc_addr;
  options.use_ssl_credentials = true;
  options.ssl_credentials_cacert_path = cert;
  auto provider = sdktrace::TracerProviderFactory::Create(
      sdktrace::SimpleSpanProcessorFactory::Create(
          otlp_exporter::OtlpGrpcExporterFactory::Create(options)),
      opentelemetry::sdk::resource::Resource::Create({{"service.name", "mes-api"}}));
  const std::string trace_id = SendSdkTrace(*provider->GetTracer("e2e"), /*error=*/true);
  ASSERT_TRUE(provider->ForceFlush());

  // A plaintext client cannot talk to the TLS port.
  auto plain = collector::TraceService::NewStub(
      grpc::CreateChannel(grpc_addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
  collector::ExportTraceServiceRequest request;
  collector::ExportTraceServiceResponse response;
  EXPECT_FALSE(plain->Export(&context, request, &response).ok());

  // OTLP/HTTP from a network that is not allowed: 403, counted.
  HttpResult forbidden =
      Http(absl::StrCat("http://", http_addr, "/v1/traces"),
           JsonTrace("6b8efff798038103d269b633813fc60c", false), "application/json");
  EXPECT_EQ(forbidden.status, 403) << forbidden.body;

  // The admin API needs TLS and the token.
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", admin_addr, "--tls-ca", cert});
    return RunCommand(args);
  };
  CommandResult no_token = ctl({"status"});
  EXPECT_EQ(no_token.exit_code, 2) << no_token.output;
  EXPECT_THAT(no_token.output, HasSubstr("refused access"));
  EXPECT_TRUE(WaitFor(
      [&] {
        return ctl({"--token-file", token_file, "trace", "get", trace_id}).exit_code == 0;
      },
      absl::Seconds(30)))
      << ctl({"--token-file", token_file, "trace", "get", trace_id}).output;

  // Metrics only for the allowed network (loopback is not in 10.0.0.0/8).
  EXPECT_EQ(Http(absl::StrCat("http://", telemetry_addr, "/metrics")).status, 403);
  ASSERT_TRUE(daemon.Signal(SIGTERM));
  EXPECT_EQ(daemon.Wait(absl::Seconds(60)), 0);
}

// OTLP/HTTP over TLS with mutual TLS, with curl as the client: a request with the trusted client
// certificate is accepted and its trace stored; without a client certificate, with another one,
// or in plaintext, the connection fails and nothing is stored; a client outside
// allowed_networks is refused before the handshake and counted.
TEST(SecurityTest, OtlpHttpOverMutualTls) {
  TempDir dir;
  auto make_cert = [&](const std::string& name) {
    CommandResult r = RunCommand(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         dir.path() + "/" + name + ".key", "-out", dir.path() + "/" + name + ".pem", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir.path() + "/" + name;
  };
  const std::string server = make_cert("server");
  const std::string client = make_cert("client");  // self-signed: it is its own CA
  const std::string stranger = make_cert("stranger");
  const std::string config = dir.path() + "/tracekeep.yaml";
  WriteFile(config,
            absl::StrCat("data_dir: ", dir.path(), R"(/data
receivers:
  otlp:
    protocols:
      grpc: {enabled: false}
      http:
        endpoint: "127.0.0.1:0"
        tls: {cert_file: )",
                         server, ".pem, key_file: ", server, ".key, client_ca_file: ", client,
                         R"(.pem}
sampler:
  decision_wait: 200ms
  policies: [{name: everything, type: always_sample}]
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
)"));
  ChildProcess daemon = StartDaemon(dir.path(), config);
  const std::string endpoints = ReadFile(dir.path() + "/endpoints.json");
  ASSERT_FALSE(endpoints.empty()) << ReadFile(dir.path() + "/tracekeep.log");
  const std::string http_addr = JsonValue(endpoints, "otlp_http");
  const std::string admin_addr = JsonValue(endpoints, "admin");
  const std::string body_file = dir.path() + "/trace.json";
  auto curl = [&](const std::string& scheme, const std::string& trace_id,
                  std::vector<std::string> extra) {
    WriteFile(body_file, JsonTrace(trace_id, false));
    std::vector<std::string> args = {"/usr/bin/curl",
                                     "-sS",
                                     "--max-time",
                                     "10",
                                     "-o",
                                     "/dev/null",
                                     "-w",
                                     "%{http_code}",
                                     "-H",
                                     "Content-Type: application/json",
                                     "--data-binary",
                                     "@" + body_file,
                                     "--cacert",
                                     server + ".pem"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(absl::StrCat(scheme, "://", http_addr, "/v1/traces"));
    return RunCommand(args);
  };
  const std::string trusted = "7c1f0b5c3a2e4f6081726354a5b6c7d8";
  CommandResult ok = curl("https", trusted, {"--cert", client + ".pem", "--key", client + ".key"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output << ReadFile(dir.path() + "/tracekeep.log");
  EXPECT_EQ(ok.output, "200");
  EXPECT_NE(curl("https", "7c1f0b5c3a2e4f6081726354a5b6c7d9", {}).exit_code, 0)
      << "no client certificate";
  EXPECT_NE(curl("https", "7c1f0b5c3a2e4f6081726354a5b6c7da",
                 {"--cert", stranger + ".pem", "--key", stranger + ".key"})
                .exit_code,
            0)
      << "a client certificate the server does not trust";
  CommandResult plain = curl("http", "7c1f0b5c3a2e4f6081726354a5b6c7db", {});
  EXPECT_TRUE(plain.exit_code != 0 || plain.output != "200") << plain.output;
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {TRACEKEEPCTL_BIN, "--addr", admin_addr});
    return RunCommand(args);
  };
  EXPECT_TRUE(WaitFor(
      [&] {
        return ctl({"trace", "get", trusted}).exit_code == 0;
      },
      absl::Seconds(30)))
      << ctl({"trace", "get", trusted}).output;
  for (const char* refused :
       {"7c1f0b5c3a2e4f6081726354a5b6c7d9", "7c1f0b5c3a2e4f6081726354a5b6c7da",
        "7c1f0b5c3a2e4f6081726354a5b6c7db"}) {
    EXPECT_EQ(ctl({"trace", "get", refused}).exit_code, 1) << refused;
  }
  ASSERT_TRUE(daemon.Signal(SIGTERM));
  EXPECT_EQ(daemon.Wait(absl::Seconds(60)), 0) << ReadFile(dir.path() + "/tracekeep.log");
}

TEST(CheckConfigTest, ListsEveryProblemAndExitsOne) {
  TempDir dir;
  const std::string file = dir.path() + "/broken.yaml";
  WriteFile(file, "sampler:\n  decision_wait: forever\n  colour: red\nadmin: {endpoint: nope}\n");
  CommandResult r = RunCommand({TRACEKEEP_BIN, "--check-config", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(file + ":2:18: sampler.decision_wait"));
  EXPECT_THAT(r.output, HasSubstr("\"forever\""));
  EXPECT_THAT(r.output, HasSubstr(file + ":3:3: sampler.colour: unknown key"));
  EXPECT_THAT(r.output, HasSubstr("admin.endpoint"));
  CommandResult ok = RunCommand({TRACEKEEP_BIN, "--check-config",
                                 std::string(TRACEKEEP_SOURCE_DIR) + "/deploy/tracekeep.yaml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

}  // namespace
}  // namespace tracekeep::e2e
