#include "collector/ctl/ctl.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "collector/common/ids.h"
#include "collector/ctl/order_commands.h"
#include "collector/receiver/otlp_json.h"
#include "collector/security/access.h"
#include "collector/security/grpc_security.h"
#include "google/protobuf/util/json_util.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tracekeep/admin/v1/admin.grpc.pb.h"

namespace tracekeep::ctl {
namespace {

namespace pb = ::tracekeep::admin::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

constexpr char kProgram[] = "tracekeepctl";

int UsageError(const std::string& message, std::ostream& err) {
  err << kProgram << ": " << message << "\n\n" << Usage();
  return kExitUsage;
}

// Reports a failed call and returns the exit code for it.
int ReportRpcError(const grpc::Status& status, const CtlOptions& options, std::ostream& err) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      err << kProgram << ": cannot reach tracekeep admin at " << options.addr << ": "
          << status.error_message() << "\n";
      return kExitUsage;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      err << kProgram << ": tracekeep admin at " << options.addr << " did not answer within "
          << absl::FormatDuration(options.timeout) << "\n";
      return kExitUsage;
    case grpc::StatusCode::INVALID_ARGUMENT:
      err << kProgram << ": " << status.error_message() << "\n";
      return kExitUsage;
    case grpc::StatusCode::PERMISSION_DENIED:
      // A role too low for the command: the daemon's message names the role it needs.
      if (absl::StrContains(status.error_message(), " role")) {
        err << kProgram << ": tracekeep admin at " << options.addr
            << " refused the command: " << status.error_message()
            << " (use --token-file with a token of that role, from the daemon's "
               "admin.tokens_file)\n";
        return kExitUsage;
      }
      [[fallthrough]];
    case grpc::StatusCode::UNAUTHENTICATED:
      err << kProgram << ": tracekeep admin at " << options.addr
          << " refused access: " << status.error_message()
          << " (see --token-file and the daemon's admin.allowed_networks)\n";
      return kExitUsage;
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::FAILED_PRECONDITION:
      err << kProgram << ": " << status.error_message() << "\n";
      return kExitFailure;
    default:
      err << kProgram << ": "
          << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())) << ": "
          << status.error_message() << "\n";
      return kExitFailure;
  }
}

// "0s", "59s", "1m 0s", "1h 2m 5s", "3d 0h 0m 12s".
std::string FormatUptime(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  const int64_t days = seconds / 86400;
  const int64_t hours = seconds / 3600 % 24;
  const int64_t minutes = seconds / 60 % 60;
  const int64_t secs = seconds % 60;
  if (days > 0) return absl::StrCat(days, "d ", hours, "h ", minutes, "m ", secs, "s");
  if (hours > 0) return absl::StrCat(hours, "h ", minutes, "m ", secs, "s");
  if (minutes > 0) return absl::StrCat(minutes, "m ", secs, "s");
  return absl::StrCat(secs, "s");
}

std::string FormatMillis(int64_t nanos) { return absl::StrFormat("%.3f", nanos / 1e6); }

std::string ServiceName(const otlp_trace::ResourceSpans& rs) {
  for (const auto& kv : rs.resource().attributes()) {
    if (kv.key() == "service.name" && kv.value().has_string_value()) {
      return kv.value().string_value();
    }
  }
  return "-";
}

std::string StatusText(const otlp_trace::Status& status) {
  switch (status.code()) {
    case otlp_trace::Status::STATUS_CODE_OK:
      return "ok";
    case otlp_trace::Status::STATUS_CODE_ERROR:
      return status.message().empty() ? "error" : absl::StrCat("error: ", status.message());
    default:
      return "unset";
  }
}

struct SpanRow {
  std::string service;
  const otlp_trace::Span* span = nullptr;
  std::string span_id;    // hex
  std::string parent_id;  // hex, "" for none
  int depth = 0;
};

// Orders `rows` depth-first: roots (spans whose parent is absent from the trace) and the
// children of each span by start time, then span id. Sets each row's depth.
std::vector<const SpanRow*> TreeOrder(std::vector<SpanRow>& rows) {
  auto earlier = [&rows](size_t a, size_t b) {
    return std::make_pair(rows[a].span->start_time_unix_nano(), rows[a].span_id) <
           std::make_pair(rows[b].span->start_time_unix_nano(), rows[b].span_id);
  };
  absl::flat_hash_map<std::string, std::vector<size_t>> children;
  absl::flat_hash_map<std::string, size_t> present;
  for (size_t i = 0; i < rows.size(); ++i) present.emplace(rows[i].span_id, i);
  std::vector<size_t> roots;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].parent_id.empty() || !present.contains(rows[i].parent_id)) {
      roots.push_back(i);
    } else {
      children[rows[i].parent_id].push_back(i);
    }
  }
  for (auto& [parent, kids] : children) std::sort(kids.begin(), kids.end(), earlier);
  // Spans on a parent cycle are reachable from no root; they are shown as roots after the rest.
  std::vector<size_t> all(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) all[i] = i;
  std::sort(roots.begin(), roots.end(), earlier);
  std::sort(all.begin(), all.end(), earlier);
  roots.insert(roots.end(), all.begin(), all.end());

  std::vector<const SpanRow*> ordered;
  std::vector<bool> visited(rows.size(), false);
  for (size_t root : roots) {
    if (visited[root]) continue;
    std::vector<std::pair<size_t, int>> stack = {{root, 0}};
    while (!stack.empty()) {
      auto [i, depth] = stack.back();
      stack.pop_back();
      if (visited[i]) continue;
      visited[i] = true;
      rows[i].depth = depth;
      ordered.push_back(&rows[i]);
      auto it = children.find(rows[i].span_id);
      if (it == children.end()) continue;
      for (auto kid = it->second.rbegin(); kid != it->second.rend(); ++kid) {
        if (!visited[*kid]) stack.emplace_back(*kid, depth + 1);
      }
    }
  }
  return ordered;
}

}  // namespace

namespace internal {
// Shared with order_commands.cc, which declares them (they use gRPC types, kept out of headers).
std::unique_ptr<pb::AdminService::Stub> NewStub(const CtlOptions& options) {
  security::ClientTlsSettings tls;
  tls.ca_file = options.tls_ca_file;
  auto credentials = security::MakeChannelCredentials(tls);
  return pb::AdminService::NewStub(grpc::CreateChannel(
      options.addr, credentials.ok() ? *credentials : grpc::InsecureChannelCredentials()));
}

// Deadline and credentials of one call.
void SetDeadline(const CtlOptions& options, grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  if (!options.token.empty()) context->AddMetadata("authorization", "Bearer " + options.token);
}

// Every stored span of a trace (32 hex digits), its pages appended into `data`. A failed call is
// the returned status; a daemon answer this tracekeepctl cannot use is described in `problem`.
grpc::Status FetchTrace(const CtlOptions& options, const std::string& trace_id,
                        otlp_trace::TracesData* data, std::string* problem) {
  auto stub = NewStub(options);
  pb::GetTraceRequest request;
  request.set_trace_id(trace_id);
  pb::GetTraceResponse response;
  // A large trace comes in pages; appended, their resource spans are the trace.
  for (;;) {
    grpc::ClientContext context;
    SetDeadline(options, &context);
    response.Clear();
    const grpc::Status status = stub->GetTrace(&context, request, &response);
    if (!status.ok()) return status;
    if (!data->MergeFromString(response.traces_data())) {
      *problem = absl::StrCat("the daemon sent trace ", response.trace_id(),
                              " in a form this tracekeepctl cannot decode (",
                              response.traces_data().size(), " bytes)");
      return grpc::Status::OK;
    }
    if (response.next_page_token().empty()) break;
    if (response.next_page_token() == request.page_token()) {
      *problem = absl::StrCat("the daemon answered the same page token twice; trace ",
                              response.trace_id(), " stopped");
      return grpc::Status::OK;
    }
    request.set_page_token(response.next_page_token());
  }
  return grpc::Status::OK;
}
}  // namespace internal

using internal::NewStub;
using internal::SetDeadline;

int ReportAdminError(int grpc_code, const std::string& message, const CtlOptions& options,
                     std::ostream& err) {
  return ReportRpcError(grpc::Status(static_cast<grpc::StatusCode>(grpc_code), message), options,
                        err);
}

std::string Usage() {
  return absl::StrCat(
      "Usage: tracekeepctl [--addr HOST:PORT] [--json] [--timeout DURATION] <command>\n"
      "\n"
      "Talks to the admin API of a running tracekeep.\n"
      "\n"
      "Commands:\n"
      "  status                 version, uptime, data dir, endpoints and pipeline counters\n"
      "  trace get <trace-id>   every stored span of a trace (trace id: 32 hex digits)\n"
      "  policies get           the sampling policies in force, as YAML\n"
      "  policies set FILE      put the policy list in FILE (YAML, like sampler.policies;\n"
      "                         - = stdin) in force without a restart\n"
      "  policies validate FILE check a policy list without applying it\n"
      "  order get <order-id>   an order's timeline (state, time, service, trace), invariants,\n"
      "                         anomalies and traces\n"
      "  order keep <order-id>  keep every trace of an order, held, pending and future\n"
      "  orders list [--anomalous] [--type T] [--since D] [--limit N]\n"
      "                         orders, most recent first; --type: STALLED, SKIPPED,\n"
      "                         ILLEGAL_TRANSITION, DUPLICATE_STATE, CONTENT_CHANGED, ERROR,\n"
      "                         ORPHAN (among the order's types); --since 1h: anomalies of\n"
      "                         the last hour\n"
      "  orders stuck --state S --older-than D [--limit N]\n"
      "                         active orders in state S for at least D (e.g. 30m)\n"
      "                         Both print at most N orders (default 100) as the daemon's\n"
      "                         pages come, and \"N of M shown\" when there were more\n"
      "  checkpoint <dir>       consistent copy of the daemon's database into <dir> (must not\n"
      "                         exist; a path on the daemon's machine), taken while it runs\n"
      "  drain [--deadline D]   before a stop: close intake (clients get UNAVAILABLE), decide\n"
      "                         every pending trace, wait up to D (default 30s) for the\n"
      "                         export queue; the daemon keeps running until stopped\n"
      "  help                   this text\n"
      "\n"
      "Flags:\n"
      "  --addr HOST:PORT       admin API address (default: $",
      kAdminAddressEnv, " if set,\n                         else ", kDefaultAdminAddress,
      ")\n"
      "  --json                 machine output: protobuf JSON for status, OTLP/JSON (hex ids)\n"
      "                         for traces, JSON with hex ids for orders\n"
      "  --timeout DURATION     deadline of each call, e.g. 500ms, 5s (default: 5s)\n"
      "  --token-file FILE      file holding the admin token (default: $",
      kAdminTokenFileEnv,
      " if set)\n"
      "  --tls-ca FILE          reach the admin API over TLS, trusting this CA (PEM)\n"
      "  -h, --help             this text\n"
      "\n"
      "Exit status: 0 success; 1 the daemon answered with an error (e.g. unknown trace);\n"
      "2 bad usage, bad arguments, or the daemon cannot be reached.\n");
}

std::string FormatStatus(const pb::GetStatusResponse& status) {
  std::vector<std::pair<std::string, std::string>> lines;
  lines.emplace_back("version", status.version());
  lines.emplace_back("uptime", FormatUptime(status.uptime_seconds()));
  lines.emplace_back("data dir", status.data_dir().empty() ? "-" : status.data_dir());
  lines.emplace_back("shards", absl::StrCat(status.shards()));
  size_t name_width = 0;
  for (const auto& endpoint : status.endpoints()) {
    name_width = std::max(name_width, endpoint.name().size());
  }
  if (status.endpoints().empty()) lines.emplace_back("endpoints", "none");
  for (int i = 0; i < status.endpoints_size(); ++i) {
    const pb::Endpoint& endpoint = status.endpoints(i);
    lines.emplace_back(
        i == 0 ? "endpoints" : "",
        absl::StrFormat("%-*s  %s", name_width, endpoint.name(), endpoint.address()));
  }
  lines.emplace_back("spans received", absl::StrCat(status.spans_received()));
  lines.emplace_back("spans accepted", absl::StrCat(status.spans_accepted()));
  lines.emplace_back("spans refused", absl::StrCat(status.spans_refused()));
  lines.emplace_back("traces pending", absl::StrCat(status.traces_pending(), " (",
                                                    status.spans_pending(), " spans)"));
  lines.emplace_back("traces kept", absl::StrCat(status.traces_kept()));
  lines.emplace_back("traces dropped", absl::StrCat(status.traces_dropped()));
  lines.emplace_back("traces stored", absl::StrCat(status.traces_stored()));
  lines.emplace_back("export target",
                     status.export_endpoint().empty() ? "disabled" : status.export_endpoint());
  lines.emplace_back("spans exported", absl::StrCat(status.spans_exported()));
  lines.emplace_back("export failures", absl::StrCat(status.export_failures()));
  if (status.has_kafka()) {
    const pb::KafkaStatus& k = status.kafka();
    lines.emplace_back("kafka group",
                       absl::StrCat(k.group_id(), ", member ",
                                    k.member_id().empty() ? "(not joined yet)" : k.member_id()));
    lines.emplace_back("kafka topics",
                       absl::StrCat(absl::StrJoin(k.topics(), ", "),
                                    k.gateway() ? " (gateway: OTLP goes here)" : ""));
    lines.emplace_back("kafka records",
                       absl::StrCat(k.records_consumed(), " consumed, ", k.records_skipped(),
                                    " skipped, ", k.rebalances(), " rebalances"));
    if (k.partitions().empty()) lines.emplace_back("kafka partitions", "none owned");
    for (int i = 0; i < k.partitions_size(); ++i) {
      const pb::KafkaPartition& p = k.partitions(i);
      lines.emplace_back(
          i == 0 ? "kafka partitions" : "",
          absl::StrCat(p.topic(), "/", p.partition(), "  committed ",
                       p.committed() < 0 ? "-" : absl::StrCat(p.committed()), "  lag ", p.lag()));
    }
  }

  size_t label_width = 0;
  for (const auto& [label, value] : lines) label_width = std::max(label_width, label.size());
  std::string out;
  for (const auto& [label, value] : lines) {
    absl::StrAppendFormat(&out, "%-*s  %s\n", label_width, label, value);
  }
  return out;
}

std::string FormatTrace(const std::string& trace_id_hex, const otlp_trace::TracesData& data) {
  std::vector<SpanRow> rows;
  std::map<std::string, int> services;
  uint64_t first_start = UINT64_MAX;
  uint64_t last_end = 0;
  int errors = 0;
  for (const auto& rs : data.resource_spans()) {
    const std::string service = ServiceName(rs);
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) {
        SpanRow& row = rows.emplace_back();
        row.service = service;
        row.span = &span;
        row.span_id = ToHex(span.span_id());
        row.parent_id = ToHex(span.parent_span_id());
        ++services[service];
        first_start = std::min<uint64_t>(first_start, span.start_time_unix_nano());
        last_end = std::max<uint64_t>(last_end, span.end_time_unix_nano());
        if (span.status().code() == otlp_trace::Status::STATUS_CODE_ERROR) ++errors;
      }
    }
  }
  std::string out = absl::StrCat("trace ", trace_id_hex, ": ", rows.size(),
                                 rows.size() == 1 ? " span, " : " spans, ", services.size(),
                                 services.size() == 1 ? " service, " : " services, ");
  if (rows.empty()) {
    absl::StrAppend(&out, "no spans\n");
    return out;
  }
  const uint64_t duration = last_end > first_start ? last_end - first_start : 0;
  absl::StrAppend(&out, FormatMillis(static_cast<int64_t>(duration)), " ms, ", errors,
                  errors == 1 ? " error\n" : " errors\n");

  const std::vector<const SpanRow*> ordered = TreeOrder(rows);
  // Columns; the numeric ones (start offset, duration) are right-aligned.
  const std::vector<std::string> header = {"SPAN",     "SERVICE",     "SPAN ID", "PARENT",
                                           "START ms", "DURATION ms", "STATUS"};
  const std::vector<bool> right = {false, false, false, false, true, true, false};
  std::vector<std::vector<std::string>> table = {header};
  for (const SpanRow* row : ordered) {
    const otlp_trace::Span& span = *row->span;
    table.push_back({
        absl::StrCat(std::string(2 * row->depth, ' '), span.name()),
        row->service,
        row->span_id,
        row->parent_id.empty() ? "-" : row->parent_id,
        FormatMillis(static_cast<int64_t>(span.start_time_unix_nano() - first_start)),
        FormatMillis(static_cast<int64_t>(span.end_time_unix_nano()) -
                     static_cast<int64_t>(span.start_time_unix_nano())),
        StatusText(span.status()),
    });
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : table) {
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  }
  for (const auto& line : table) {
    std::string text;
    for (size_t c = 0; c < line.size(); ++c) {
      if (c + 1 == line.size()) {
        absl::StrAppend(&text, line[c]);
      } else {
        absl::StrAppendFormat(&text, right[c] ? "%*s  " : "%-*s  ", width[c], line[c]);
      }
    }
    absl::StrAppend(&out, text, "\n");
  }
  return out;
}

int RunStatus(const CtlOptions& options, std::ostream& out, std::ostream& err) {
  auto stub = NewStub(options);
  grpc::ClientContext context;
  SetDeadline(options, &context);
  pb::GetStatusResponse response;
  const grpc::Status status = stub->GetStatus(&context, pb::GetStatusRequest(), &response);
  if (!status.ok()) return ReportRpcError(status, options, err);
  if (!options.json) {
    out << FormatStatus(response);
    return kExitOk;
  }
  google::protobuf::util::JsonPrintOptions print_options;
  print_options.always_print_primitive_fields = true;
  std::string json;
  const auto printed = google::protobuf::util::MessageToJsonString(response, &json, print_options);
  if (!printed.ok()) {
    err << kProgram << ": cannot print the status as JSON: " << printed.message() << "\n";
    return kExitFailure;
  }
  out << json << "\n";
  return kExitOk;
}

int RunTraceGet(const CtlOptions& options, const std::string& trace_id, std::ostream& out,
                std::ostream& err) {
  absl::StatusOr<std::string> id = FromHex(trace_id, kTraceIdSize);
  if (!id.ok()) {
    err << kProgram << ": invalid trace id: " << id.status().message() << "\n";
    return kExitUsage;
  }
  if (!IsValidId(*id, kTraceIdSize)) {
    err << kProgram << ": invalid trace id: \"" << trace_id << "\" is all zero\n";
    return kExitUsage;
  }
  otlp_trace::TracesData data;
  std::string problem;
  const grpc::Status status = internal::FetchTrace(options, ToHex(*id), &data, &problem);
  if (!status.ok()) return ReportRpcError(status, options, err);
  if (!problem.empty()) {
    err << kProgram << ": " << problem << "\n";
    return kExitFailure;
  }
  if (!options.json) {
    out << FormatTrace(ToHex(*id), data);
    return kExitOk;
  }
  absl::StatusOr<std::string> json = receiver::ToOtlpJson(data);
  if (!json.ok()) {
    err << kProgram << ": cannot print trace " << ToHex(*id)
        << " as OTLP/JSON: " << json.status().message() << "\n";
    return kExitFailure;
  }
  out << *json << "\n";
  return kExitOk;
}

int RunPoliciesGet(const CtlOptions& options, std::ostream& out, std::ostream& err) {
  auto stub = NewStub(options);
  grpc::ClientContext context;
  SetDeadline(options, &context);
  pb::GetPoliciesResponse response;
  const grpc::Status status = stub->GetPolicies(&context, pb::GetPoliciesRequest(), &response);
  if (!status.ok()) return ReportRpcError(status, options, err);
  out << response.policies_yaml();
  return kExitOk;
}

int RunPoliciesSet(const CtlOptions& options, const std::string& file, bool apply,
                   std::ostream& out, std::ostream& err) {
  std::stringstream text;
  if (file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(file);
    if (!in) {
      err << kProgram << ": cannot read policy file \"" << file << "\"\n";
      return kExitUsage;
    }
    text << in.rdbuf();
  }
  auto stub = NewStub(options);
  grpc::ClientContext context;
  SetDeadline(options, &context);
  grpc::Status status;
  uint32_t count = 0;
  if (apply) {
    pb::SetPoliciesRequest request;
    request.set_policies_yaml(text.str());
    pb::SetPoliciesResponse response;
    status = stub->SetPolicies(&context, request, &response);
    count = response.policy_count();
  } else {
    pb::ValidatePoliciesRequest request;
    request.set_policies_yaml(text.str());
    pb::ValidatePoliciesResponse response;
    status = stub->ValidatePolicies(&context, request, &response);
    count = response.policy_count();
  }
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    err << kProgram << ": policies in \"" << file << "\" rejected"
        << (apply ? "; the running policies stay in force" : "") << ":\n"
        << status.error_message() << "\n";
    return kExitFailure;
  }
  if (!status.ok()) return ReportRpcError(status, options, err);
  out << (apply ? "policies set: " : "policies valid: ") << count
      << (count == 1 ? " policy\n" : " policies\n");
  return kExitOk;
}

int RunCheckpoint(const CtlOptions& options, const std::string& dir, std::ostream& out,
                  std::ostream& err) {
  if (dir.empty()) {
    err << kProgram << ": checkpoint needs a directory, got \"\"\n";
    return kExitUsage;
  }
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(dir, ec).lexically_normal().string();
  if (ec) {
    err << kProgram << ": cannot make \"" << dir << "\" absolute: " << ec.message() << "\n";
    return kExitUsage;
  }
  auto stub = NewStub(options);
  grpc::ClientContext context;
  SetDeadline(options, &context);
  pb::CheckpointRequest request;
  request.set_dir(absolute);
  pb::CheckpointResponse response;
  const grpc::Status status = stub->Checkpoint(&context, request, &response);
  if (!status.ok()) return ReportRpcError(status, options, err);
  if (options.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions print_options;
    print_options.always_print_primitive_fields = true;
    if (!google::protobuf::util::MessageToJsonString(response, &json, print_options).ok()) {
      err << kProgram << ": cannot print the checkpoint response as JSON\n";
      return kExitFailure;
    }
    out << json << "\n";
    return kExitOk;
  }
  out << "checkpoint written to " << response.dir() << " (" << response.bytes() << " bytes, "
      << response.duration_ms() << " ms)\n";
  return kExitOk;
}

int RunDrain(const CtlOptions& options, absl::Duration deadline, std::ostream& out,
             std::ostream& err) {
  if (deadline < absl::Seconds(1) || deadline == absl::InfiniteDuration()) {
    err << kProgram << ": --deadline must be at least 1s, got " << absl::FormatDuration(deadline)
        << "\n";
    return kExitUsage;
  }
  auto stub = NewStub(options);
  grpc::ClientContext context;
  CtlOptions call_options = options;
  call_options.timeout = deadline + options.timeout;
  SetDeadline(call_options, &context);
  pb::DrainRequest request;
  request.set_deadline_seconds(absl::ToInt64Seconds(absl::Ceil(deadline, absl::Seconds(1))));
  pb::DrainResponse response;
  const grpc::Status status = stub->Drain(&context, request, &response);
  if (!status.ok()) return ReportRpcError(status, call_options, err);
  if (options.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions print_options;
    print_options.always_print_primitive_fields = true;
    if (!google::protobuf::util::MessageToJsonString(response, &json, print_options).ok()) {
      err << kProgram << ": cannot print the drain response as JSON\n";
      return kExitFailure;
    }
    out << json << "\n";
    return kExitOk;
  }
  out << "drained in " << response.duration_ms() << " ms; intake is closed until the daemon "
      << "restarts\n"
      << "  traces decided   " << response.traces_decided() << " (" << response.traces_kept()
      << " kept, " << response.traces_not_kept() << " not kept)\n"
      << "  spans kept       " << response.spans_kept() << "\n";
  if (response.export_endpoint().empty()) {
    out << "  export           disabled\n";
  } else {
    out << "  spans exported   " << response.spans_exported() << " to "
        << response.export_endpoint() << "\n"
        << "  still queued     " << response.spans_queued() << " spans, " << response.queue_bytes()
        << " bytes"
        << (response.flushed() ? " (export queue flushed)"
                               : " (deadline passed: sent on until the daemon stops, then kept "
                                 "on disk for the next start)")
        << "\n";
  }
  return kExitOk;
}

int RunCommandLine(const std::vector<std::string>& args, const std::string& env_addr,
                   std::ostream& out, std::ostream& err) {
  return RunCommandLine(args, env_addr, /*env_token_file=*/"", out, err);
}

int RunCommandLine(const std::vector<std::string>& args, const std::string& env_addr,
                   const std::string& env_token_file, std::ostream& out, std::ostream& err) {
  CtlOptions options;
  if (!env_addr.empty()) options.addr = env_addr;
  std::string token_file = env_token_file;
  OrderFlags order_flags;
  absl::Duration drain_deadline = absl::Seconds(30);
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out << Usage();
      return kExitOk;
    }
    if (arg == "--json") {
      options.json = true;
      continue;
    }
    if (arg == "--anomalous") {
      order_flags.anomalous = true;
      continue;
    }
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    std::string flag = arg;
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (flag == "--token-file" || flag == "--tls-ca") {
      if (!has_value) {
        if (i + 1 == args.size()) return UsageError(absl::StrCat(flag, " needs a file"), err);
        value = args[++i];
      }
      (flag == "--token-file" ? token_file : options.tls_ca_file) = value;
      continue;
    }
    if (flag == "--addr" || flag == "--timeout") {
      if (!has_value) {
        if (i + 1 == args.size()) return UsageError(absl::StrCat(flag, " needs a value"), err);
        value = args[++i];
      }
      if (flag == "--addr") {
        if (value.empty()) return UsageError("--addr needs a HOST:PORT, got \"\"", err);
        options.addr = value;
      } else if (!absl::ParseDuration(value, &options.timeout) ||
                 options.timeout <= absl::ZeroDuration() ||
                 options.timeout == absl::InfiniteDuration()) {
        return UsageError(
            absl::StrCat("--timeout must be a positive duration like 5s or 500ms, got \"", value,
                         "\""),
            err);
      }
      continue;
    }
    if (flag == "--deadline") {
      if (!has_value) {
        if (i + 1 == args.size()) return UsageError("--deadline needs a value", err);
        value = args[++i];
      }
      if (!absl::ParseDuration(value, &drain_deadline) || drain_deadline < absl::Seconds(1) ||
          drain_deadline == absl::InfiniteDuration()) {
        return UsageError(
            absl::StrCat("--deadline must be a duration of at least 1s like 30s or 2m, got \"",
                         value, "\""),
            err);
      }
      continue;
    }
    if (flag == "--type" || flag == "--since" || flag == "--state" || flag == "--older-than" ||
        flag == "--limit") {
      if (!has_value) {
        if (i + 1 == args.size()) return UsageError(absl::StrCat(flag, " needs a value"), err);
        value = args[++i];
      }
      if (flag == "--type") {
        order_flags.type = value;
      } else if (flag == "--state") {
        order_flags.state = value;
      } else if (flag == "--limit") {
        if (!absl::SimpleAtoi(value, &order_flags.limit) || order_flags.limit < 1) {
          return UsageError(absl::StrCat("--limit must be a positive integer, got \"", value, "\""),
                            err);
        }
      } else {
        absl::Duration* d = flag == "--since" ? &order_flags.since : &order_flags.older_than;
        if (!absl::ParseDuration(value, d) || *d < absl::ZeroDuration() ||
            *d == absl::InfiniteDuration()) {
          return UsageError(
              absl::StrCat(flag, " must be a duration like 30m, 2h or 90s, got \"", value, "\""),
              err);
        }
      }
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      return UsageError(absl::StrCat("unknown flag \"", arg, "\""), err);
    }
    positional.push_back(arg);
  }

  if (!token_file.empty()) {
    auto token = security::ReadTokenFile(token_file);
    if (!token.ok()) {
      err << kProgram << ": " << token.status().message() << "\n";
      return kExitUsage;
    }
    options.token = *token;
  }
  if (positional.empty()) return UsageError("missing command", err);
  const std::string& command = positional[0];
  if (command == "help") {
    out << Usage();
    return kExitOk;
  }
  if (command == "status") {
    if (positional.size() != 1) {
      return UsageError(absl::StrCat("status takes no arguments, got \"", positional[1], "\""),
                        err);
    }
    return RunStatus(options, out, err);
  }
  if (command == "trace") {
    if (positional.size() < 2) return UsageError("trace needs a subcommand: get", err);
    if (positional[1] != "get") {
      return UsageError(absl::StrCat("unknown trace subcommand \"", positional[1], "\""), err);
    }
    if (positional.size() != 3) {
      return UsageError("trace get takes exactly one trace id (32 hex digits)", err);
    }
    return RunTraceGet(options, positional[2], out, err);
  }
  if (command == "policies") {
    if (positional.size() < 2) {
      return UsageError("policies needs a subcommand: get, set or validate", err);
    }
    const std::string& sub = positional[1];
    if (sub == "get") {
      if (positional.size() != 2) return UsageError("policies get takes no arguments", err);
      return RunPoliciesGet(options, out, err);
    }
    if (sub == "set" || sub == "validate") {
      if (positional.size() != 3) {
        return UsageError(absl::StrCat("policies ", sub, " takes exactly one FILE"), err);
      }
      return RunPoliciesSet(options, positional[2], sub == "set", out, err);
    }
    return UsageError(absl::StrCat("unknown policies subcommand \"", sub, "\""), err);
  }
  if (command == "order") {
    if (positional.size() != 3 || (positional[1] != "get" && positional[1] != "keep")) {
      return UsageError("usage: order get <order-id> | order keep <order-id>", err);
    }
    return positional[1] == "get" ? RunOrderGet(options, positional[2], out, err)
                                  : RunOrderKeep(options, positional[2], out, err);
  }
  if (command == "orders") {
    if (positional.size() != 2 || (positional[1] != "list" && positional[1] != "stuck")) {
      return UsageError(
          "usage: orders list [--anomalous] [--type T] [--since D] | orders stuck "
          "--state S --older-than D",
          err);
    }
    if (positional[1] == "list") return RunOrdersList(options, order_flags, out, err);
    if (order_flags.state.empty()) return UsageError("orders stuck needs --state S", err);
    return RunOrdersStuck(options, order_flags, out, err);
  }
  if (command == "checkpoint") {
    if (positional.size() != 2) {
      return UsageError("checkpoint takes exactly one directory (which must not exist)", err);
    }
    return RunCheckpoint(options, positional[1], out, err);
  }
  if (command == "drain") {
    if (positional.size() != 1) {
      return UsageError(absl::StrCat("drain takes no arguments, got \"", positional[1], "\""), err);
    }
    return RunDrain(options, drain_deadline, out, err);
  }
  return UsageError(absl::StrCat("unknown command \"", command, "\""), err);
}

}  // namespace tracekeep::ctl
