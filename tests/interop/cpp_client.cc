// Sends canonical interop traces (tests/interop/otlp.py) with the OpenTelemetry C++ SDK.
//
//   interop_cpp_client --protocol grpc|http/protobuf|http/json --endpoint URL
//                      [--compression gzip|none] [--errors N] [--healthy N] [--service NAME]
//
// Prints {"error": [trace ids], "healthy": [trace ids]} as JSON; exits 1 if the SDK reports that
// an export failed.

#include <array>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "opentelemetry/exporters/otlp/otlp_grpc_exporter_factory.h"
#include "opentelemetry/exporters/otlp/otlp_grpc_exporter_options.h"
#include "opentelemetry/exporters/otlp/otlp_http_exporter_factory.h"
#include "opentelemetry/exporters/otlp/otlp_http_exporter_options.h"
#include "opentelemetry/sdk/resource/resource.h"
#include "opentelemetry/sdk/trace/batch_span_processor_factory.h"
#include "opentelemetry/sdk/trace/batch_span_processor_options.h"
#include "opentelemetry/sdk/trace/tracer_provider_factory.h"
#include "opentelemetry/trace/span_context.h"

namespace {

namespace otlp = ::opentelemetry::exporter::otlp;
namespace sdktrace = ::opentelemetry::sdk::trace;
namespace api = ::opentelemetry::trace;
namespace nostd = ::opentelemetry::nostd;

std::unique_ptr<sdktrace::SpanExporter> MakeExporter(const std::string& protocol,
                                                     const std::string& endpoint,
                                                     const std::string& compression) {
  if (protocol == "grpc") {
    otlp::OtlpGrpcExporterOptions options;
    // The gRPC exporter wants host:port.
    options.endpoint = endpoint.rfind("http://", 0) == 0 ? endpoint.substr(7) : endpoint;
    options.use_ssl_credentials = false;
    options.compression = compression;
    return otlp::OtlpGrpcExporterFactory::Create(options);
  }
  otlp::OtlpHttpExporterOptions options;
  options.url = endpoint + "/v1/traces";
  options.compression = compression;
  if (protocol == "http/protobuf") {
    options.content_type = otlp::HttpRequestContentType::kBinary;
  } else if (protocol == "http/json") {
    options.content_type = otlp::HttpRequestContentType::kJson;
    options.json_bytes_mapping = otlp::JsonBytesMappingKind::kHexId;
  } else {
    return nullptr;
  }
  return otlp::OtlpHttpExporterFactory::Create(options);
}

std::string SendTrace(api::Tracer& tracer, bool error) {
  api::StartSpanOptions root_options;
  root_options.kind = api::SpanKind::kServer;
  auto root = tracer.StartSpan("checkout", root_options);
  root->SetAttribute("order.id", "A-1");
  root->SetAttribute("order.paid", true);
  root->SetAttribute("order.items_count", int64_t{3});
  root->SetAttribute("order.total_price", 12.5);
  const std::array<nostd::string_view, 2> tags = {"red", "large"};
  root->SetAttribute("order.tags", nostd::span<const nostd::string_view>(tags));
  const std::array<int64_t, 2> sizes = {1, 2};
  root->SetAttribute("order.sizes", nostd::span<const int64_t>(sizes));
  root->AddEvent("order.status_changed", {{"order.status", "SUBMITTED"}, {"attempt", int64_t{2}}});

  const uint8_t link_trace[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                                  0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
  const uint8_t link_span[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
  api::SpanContext link(api::TraceId(link_trace), api::SpanId(link_span),
                        api::TraceFlags(api::TraceFlags::kIsSampled), /*is_remote=*/true);
  api::StartSpanOptions child_options;
  child_options.kind = api::SpanKind::kClient;
  child_options.parent = root->GetContext();
  auto child = tracer.StartSpan("db.query", {{"db.system", "postgresql"}},
                                {{link, {{"link.reason", "retry"}}}}, child_options);
  if (error) child->SetStatus(api::StatusCode::kError, "connection reset");
  child->End();
  root->End();
  char hex[32];
  root->GetContext().trace_id().ToLowerBase16(hex);
  return std::string(hex, 32);
}

std::string JsonList(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ",\"" : "\"") + ids[i] + "\"";
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--compression", "none"},
                                             {"--errors", "1"},
                                             {"--healthy", "0"},
                                             {"--service", "interop-cpp"}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  auto exporter = MakeExporter(args["--protocol"], args["--endpoint"], args["--compression"]);
  if (exporter == nullptr) {
    std::cerr << "unknown --protocol " << args["--protocol"] << "\n";
    return 2;
  }
  sdktrace::BatchSpanProcessorOptions batch;
  batch.schedule_delay_millis = std::chrono::milliseconds(50);
  auto provider = sdktrace::TracerProviderFactory::Create(
      sdktrace::BatchSpanProcessorFactory::Create(std::move(exporter), batch),
      opentelemetry::sdk::resource::Resource::Create({{"service.name", args["--service"]}}));
  auto tracer = provider->GetTracer("tracekeep.interop", "1.0.0");
  std::vector<std::string> error_ids, healthy_ids;
  for (int i = 0; i < std::stoi(args["--errors"]); ++i)
    error_ids.push_back(SendTrace(*tracer, true));
  for (int i = 0; i < std::stoi(args["--healthy"]); ++i) {
    healthy_ids.push_back(SendTrace(*tracer, false));
  }
  if (!provider->ForceFlush(std::chrono::seconds(30))) {
    std::cerr << "ForceFlush failed\n";
    return 1;
  }
  provider->Shutdown();
  std::cout << "{\"error\": " << JsonList(error_ids) << ", \"healthy\": " << JsonList(healthy_ids)
            << "}" << std::endl;
  return 0;
}
