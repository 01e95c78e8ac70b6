#include "collector/receiver/grpc_receiver.h"

#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/receiver/export_handler.h"
#include "collector/receiver/rpc_status.h"
#include "collector/security/grpc_security.h"
#include "google/protobuf/arena.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace tracekeep::receiver {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;

// The callback (reactor) API with the request as raw bytes: the receiver parses it itself, once,
// on an arena, so that an undecodable request is answered INVALID_ARGUMENT and counted (gRPC
// would answer INTERNAL without calling the service).
class TraceServiceImpl final : public otlp_collector::TraceService::WithRawCallbackMethod_Export<
                                   otlp_collector::TraceService::Service> {
 public:
  TraceServiceImpl(ExportHandler* handler, int retry_after_seconds,
                   const security::NetworkAllowList* allowed)
      : handler_(handler), retry_after_seconds_(retry_after_seconds), allowed_(allowed) {}

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request_bytes,
                                   grpc::ByteBuffer* response_bytes) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    const absl::Status access = security::CheckCall(*context, *allowed_, /*token=*/"");
    if (!access.ok()) {
      handler_->CountRefusedRequest(Transport::kGrpc, RefuseReason::kForbidden);
      reactor->Finish(
          grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(access.message())));
      return reactor;
    }
    std::string client;
    if (handler_->requires_token()) {
      absl::StatusOr<std::string> authenticated =
          handler_->Authenticate(Transport::kGrpc, security::AuthorizationOf(*context));
      if (!authenticated.ok()) {
        reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                     std::string(authenticated.status().message())));
        return reactor;
      }
      client = std::move(authenticated).value();
    }
    reactor->Finish(Handle(client, request_bytes, response_bytes));
    return reactor;
  }

 private:
  grpc::Status Handle(absl::string_view client, const grpc::ByteBuffer* request_bytes,
                      grpc::ByteBuffer* response_bytes) {
    // One contiguous buffer (usually the message's only slice, else a copy): the request is
    // validated and split straight from its wire bytes, and span bytes are sliced out of it.
    std::vector<grpc::Slice> slices;
    std::string joined;
    absl::string_view wire;
    if (request_bytes->Dump(&slices).ok()) {
      if (slices.size() == 1) {
        wire =
            absl::string_view(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size());
      } else {
        joined.reserve(request_bytes->Length());
        for (const grpc::Slice& s : slices) {
          joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
        wire = joined;
      }
    }
    ExportOutcome outcome;
    if (handler_->RefuseOverLimit(Transport::kGrpc, client, wire, &outcome)) {
      return Refuse(outcome.status);
    }
    if (handler_->RefuseEarly(Transport::kGrpc, wire, &outcome)) return Refuse(outcome.status);
    absl::StatusOr<SplitResult> split =
        SplitWireRequest(wire, handler_->split_options(), handler_->ClientAttributeOf(client));
    if (!split.ok()) {
      handler_->CountRefusedRequest(Transport::kGrpc, RefuseReason::kMalformed);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("request (", request_bytes->Length(),
                                       " bytes) is not a valid protobuf "
                                       "opentelemetry.proto.collector.trace.v1."
                                       "ExportTraceServiceRequest: ",
                                       split.status().message()));
    }
    outcome = handler_->ExportSplit(Transport::kGrpc, std::move(*split));
    if (!outcome.status.ok()) return Refuse(outcome.status);
    otlp_collector::ExportTraceServiceResponse response;
    if (outcome.rejected_spans > 0 || !outcome.error_message.empty()) {
      auto* partial = response.mutable_partial_success();
      partial->set_rejected_spans(outcome.rejected_spans);
      partial->set_error_message(outcome.error_message);
    }
    bool own_buffer = false;
    return grpc::SerializationTraits<otlp_collector::ExportTraceServiceResponse>::Serialize(
        response, response_bytes, &own_buffer);
  }

  // The gRPC status for a refused request: retryable ones with RetryInfo.
  grpc::Status Refuse(const absl::Status& status) const {
    const auto code = static_cast<grpc::StatusCode>(status.code());
    const std::string message(status.message());
    if (code == grpc::StatusCode::RESOURCE_EXHAUSTED || code == grpc::StatusCode::UNAVAILABLE) {
      return grpc::Status(code, message,
                          EncodeRpcStatus(static_cast<int>(code), message, retry_after_seconds_));
    }
    return grpc::Status(code, message);
  }

  ExportHandler* const handler_;
  const int retry_after_seconds_;
  const security::NetworkAllowList* const allowed_;
};

}  // namespace

struct GrpcReceiver::Impl {
  Impl(const GrpcReceiverOptions& options, SpanIntake* intake, ReceiverStats* stats)
      : options(options),
        handler(intake, stats, options.auth),
        service(&handler, options.retry_after_seconds, &this->options.allowed_networks) {
    handler.set_split_options(options.split);
  }

  const GrpcReceiverOptions options;
  ExportHandler handler;
  TraceServiceImpl service;
  std::mutex mu;  // guards server across Start / Shutdown
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

GrpcReceiver::GrpcReceiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcReceiver::~GrpcReceiver() { Shutdown(absl::Now()); }

absl::StatusOr<std::unique_ptr<GrpcReceiver>> GrpcReceiver::Create(
    const GrpcReceiverOptions& options, SpanIntake* intake, ReceiverStats* stats) {
  if (intake == nullptr || stats == nullptr) {
    return absl::InvalidArgumentError("otlp grpc receiver: intake and stats must not be null");
  }
  if (options.endpoint.empty()) {
    return absl::InvalidArgumentError("otlp grpc receiver: endpoint must not be empty");
  }
  if (options.max_recv_msg_size_mib <= 0 || options.max_recv_msg_size_mib > 2047) {
    return absl::InvalidArgumentError(
        absl::StrCat("otlp grpc receiver: max_recv_msg_size_mib must be in 1..2047, got ",
                     options.max_recv_msg_size_mib));
  }
  if (options.retry_after_seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "otlp grpc receiver: retry_after_seconds must be >= 0, got ", options.retry_after_seconds));
  }
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("otlp grpc receiver: max_concurrent_streams must be >= 1, got ",
                     options.max_concurrent_streams));
  }
  for (const auto& [name, d] :
       {std::pair<const char*, absl::Duration>{"handshake_timeout", options.handshake_timeout},
        {"max_connection_idle", options.max_connection_idle},
        {"max_connection_age", options.max_connection_age},
        {"max_connection_age_grace", options.max_connection_age_grace},
        {"keepalive_time", options.keepalive_time},
        {"keepalive_timeout", options.keepalive_timeout}}) {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "otlp grpc receiver: ", name, " must be > 0, got ", absl::FormatDuration(d)));
    }
  }
  if (options.max_memory_mib < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "otlp grpc receiver: max_memory_mib must be >= 0, got ", options.max_memory_mib));
  }
  if (!options.auth.client_attribute.empty() && options.auth.tokens == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("otlp grpc receiver: auth.client_attribute \"", options.auth.client_attribute,
                     "\" needs auth.tokens (there is no client name without them)"));
  }
  return std::unique_ptr<GrpcReceiver>(
      new GrpcReceiver(std::make_unique<Impl>(options, intake, stats)));
}

absl::Status GrpcReceiver::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->server != nullptr) {
    return absl::FailedPreconditionError("otlp grpc receiver: started twice");
  }
  grpc::ServerBuilder builder;
  int selected_port = 0;
  TK_ASSIGN_OR_RETURN(auto credentials, security::MakeServerCredentials(impl_->options.tls));
  builder.AddListeningPort(impl_->options.endpoint, credentials, &selected_port);
  builder.SetMaxReceiveMessageSize(impl_->options.max_recv_msg_size_mib << 20);
  const GrpcReceiverOptions& o = impl_->options;
  // Milliseconds as a channel argument: InfiniteDuration() (and anything longer) is INT_MAX.
  auto ms = [](absl::Duration d) {
    return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT_MAX));
  };
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, ms(o.handshake_timeout));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, ms(o.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms(o.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, ms(o.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(o.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(o.keepalive_timeout));
  if (o.max_memory_mib > 0) {
    grpc::ResourceQuota quota("otlp-grpc-receiver");
    quota.Resize(static_cast<size_t>(o.max_memory_mib) << 20);
    builder.SetResourceQuota(quota);
  }
  builder.RegisterService(&impl_->service);
  impl_->server = builder.BuildAndStart();
  if (impl_->server == nullptr || selected_port == 0) {
    impl_->server.reset();
    return absl::UnavailableError(absl::StrCat("otlp grpc receiver: cannot listen on ",
                                               impl_->options.endpoint,
                                               " (address in use or invalid?)"));
  }
  impl_->port = selected_port;
  TK_LOG(Info) << "OTLP/gRPC receiver listening on " << impl_->options.endpoint << " (port "
               << selected_port << ")";
  return absl::OkStatus();
}

void GrpcReceiver::Shutdown(absl::Time deadline) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->server == nullptr) return;
  impl_->server->Shutdown(absl::ToChronoTime(deadline));
  impl_->server->Wait();
  impl_->server.reset();
}

int GrpcReceiver::port() const { return impl_->port; }

}  // namespace tracekeep::receiver
