#include "collector/receiver/http_receiver.h"

#include <zlib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/receiver/otlp_json.h"
#include "collector/receiver/rpc_status.h"
#include "google/protobuf/arena.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::receiver {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;

constexpr char kProtobufType[] = "application/x-protobuf";
constexpr char kJsonType[] = "application/json";

enum class Encoding { kUnknown, kProtobuf, kJson };

// "Application/JSON; charset=utf-8" -> "application/json".
std::string MediaType(absl::string_view header) {
  const size_t semicolon = header.find(';');
  if (semicolon != absl::string_view::npos) header = header.substr(0, semicolon);
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(header));
}

void SetError(Encoding encoding, int http_status, absl::StatusCode code, absl::string_view message,
              int retry_after_seconds, http::HttpResponse* response) {
  response->status = http_status;
  switch (encoding) {
    case Encoding::kProtobuf:
      response->content_type = kProtobufType;
      response->body = EncodeRpcStatus(static_cast<int>(code), message, retry_after_seconds);
      break;
    case Encoding::kJson:
      response->content_type = kJsonType;
      response->body = EncodeRpcStatusJson(static_cast<int>(code), message, retry_after_seconds);
      break;
    case Encoding::kUnknown:
      response->content_type = "text/plain; charset=utf-8";
      response->body = absl::StrCat(message, "\n");
      break;
  }
  if (retry_after_seconds > 0) {
    response->headers.emplace_back("Retry-After", absl::StrCat(retry_after_seconds));
  }
}

}  // namespace

absl::Status Gunzip(absl::string_view compressed, size_t max_bytes, std::string* out) {
  out->clear();
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) {  // 15 + 32: gzip or zlib header, detected
    return absl::InternalError("gzip: inflateInit2 failed");
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  // Output grows geometrically, and never past max_bytes + 1 (enough to know it is too big).
  size_t capacity = std::min(max_bytes + 1, std::max<size_t>(compressed.size() * 4, 4096));
  out->resize(capacity);
  size_t produced = 0;
  absl::Status status;
  while (true) {
    if (produced == out->size()) {
      if (produced > max_bytes) {
        status = absl::ResourceExhaustedError(
            absl::StrCat("decompressed request body exceeds the limit of ", max_bytes, " bytes"));
        break;
      }
      out->resize(std::min(produced * 2, max_bytes + 1));
    }
    zs.next_out = reinterpret_cast<Bytef*>(out->data() + produced);
    zs.avail_out = static_cast<uInt>(out->size() - produced);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced = out->size() - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // concatenated gzip members
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_out != 0) {
      status = absl::InvalidArgumentError(
          absl::StrCat("gzip body is truncated (", compressed.size(), " bytes)"));
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status = absl::InvalidArgumentError(
          absl::StrCat("gzip body is not valid: ", zs.msg != nullptr ? zs.msg : "error ",
                       zs.msg != nullptr ? "" : absl::StrCat(rc)));
      break;
    }
  }
  inflateEnd(&zs);
  if (!status.ok()) {
    out->clear();
    return status;
  }
  out->resize(produced);
  return absl::OkStatus();
}

HttpReceiver::HttpReceiver(const HttpReceiverOptions& options, SpanIntake* intake,
                           ReceiverStats* stats)
    : options_(options), handler_(intake, stats, options.auth) {
  handler_.set_split_options(options.split);
}

HttpReceiver::~HttpReceiver() { Shutdown(absl::Now()); }

absl::StatusOr<std::unique_ptr<HttpReceiver>> HttpReceiver::Create(
    const HttpReceiverOptions& options, SpanIntake* intake, ReceiverStats* stats) {
  if (intake == nullptr || stats == nullptr) {
    return absl::InvalidArgumentError("otlp http receiver: intake and stats must not be null");
  }
  if (options.max_request_bytes == 0) {
    return absl::InvalidArgumentError("otlp http receiver: max_request_bytes must be > 0, got 0");
  }
  if (options.retry_after_seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "otlp http receiver: retry_after_seconds must be >= 0, got ", options.retry_after_seconds));
  }
  if (!options.auth.client_attribute.empty() && options.auth.tokens == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("otlp http receiver: auth.client_attribute \"", options.auth.client_attribute,
                     "\" needs auth.tokens (there is no client name without them)"));
  }
  return std::unique_ptr<HttpReceiver>(new HttpReceiver(options, intake, stats));
}

absl::Status HttpReceiver::Start() {
  if (server_ != nullptr) return absl::FailedPreconditionError("otlp http receiver: started twice");
  http::HttpServerOptions server_options;
  server_options.endpoint = options_.endpoint;
  server_options.max_body_bytes = options_.max_request_bytes;
  server_options.num_threads = options_.num_threads;
  server_options.request_timeout_ms =
      static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.read_timeout)));
  server_options.allowed_networks = options_.allowed_networks;
  server_options.tls = options_.tls;
  server_options.on_forbidden = [this](const http::HttpRequest&) {
    handler_.CountRefusedRequest(Transport::kHttp, RefuseReason::kForbidden);
  };
  server_options.on_body_too_large = [this](const http::HttpRequest&) {
    handler_.CountRefusedRequest(Transport::kHttp, RefuseReason::kTooLarge);
  };
  if (handler_.requires_token()) {
    // The token is checked on the headers: a request without a valid one is answered 401 before
    // its body is read (a large body is never read: its connection is closed).
    server_options.before_body = [this](http::HttpRequest* request, http::HttpResponse* response) {
      absl::StatusOr<std::string> client =
          handler_.Authenticate(Transport::kHttp, request->Header("authorization"));
      if (client.ok()) {
        request->principal = std::move(client).value();
        return false;
      }
      response->status = 401;
      response->headers.emplace_back("WWW-Authenticate", "Bearer");
      response->body = absl::StrCat(client.status().message(), "\n");
      return true;
    };
  }
  std::vector<std::pair<std::string, http::HttpHandler>> routes;
  routes.emplace_back(kOtlpHttpTracesPath,
                      [this](const http::HttpRequest& request, http::HttpResponse* response) {
                        Handle(request, response);
                      });
  auto server = http::HttpServer::Start(server_options, std::move(routes));
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("otlp http receiver: ", server.status().message()));
  }
  server_ = std::move(server).value();
  TK_LOG(Info) << "OTLP/HTTP receiver listening on " << server_->address();
  return absl::OkStatus();
}

void HttpReceiver::Shutdown(absl::Time /*deadline*/) {
  if (server_ != nullptr) server_->Stop();
}

int HttpReceiver::port() const { return server_ != nullptr ? server_->port() : 0; }

void HttpReceiver::Handle(const http::HttpRequest& request, http::HttpResponse* response) {
  if (request.method != "POST") {
    response->status = 405;
    response->headers.emplace_back("Allow", "POST");
    response->body = absl::StrCat("method ", request.method, " is not allowed on ", request.path,
                                  ": use POST\n");
    return;
  }
  // With tokens required, the server's before_body authenticated the request (see Start).
  const std::string& client = request.principal;
  const std::string media_type = MediaType(request.Header("content-type"));
  Encoding encoding = Encoding::kUnknown;
  if (media_type == kProtobufType) {
    encoding = Encoding::kProtobuf;
  } else if (media_type == kJsonType) {
    encoding = Encoding::kJson;
  } else {
    handler_.CountRefusedRequest(Transport::kHttp, RefuseReason::kMalformed);
    SetError(Encoding::kUnknown, 415, absl::StatusCode::kInvalidArgument,
             absl::StrCat("unsupported Content-Type \"", request.Header("content-type"),
                          "\": want application/x-protobuf or application/json"),
             0, response);
    return;
  }

  absl::string_view body = request.body;
  std::string inflated;
  const std::string content_encoding =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(request.Header("content-encoding")));
  if (content_encoding == "gzip" || content_encoding == "x-gzip" || content_encoding == "deflate") {
    absl::Status status = Gunzip(body, options_.max_request_bytes, &inflated);
    if (!status.ok()) {
      const bool too_large = status.code() == absl::StatusCode::kResourceExhausted;
      handler_.CountRefusedRequest(Transport::kHttp,
                                   too_large ? RefuseReason::kTooLarge : RefuseReason::kMalformed);
      SetError(encoding, too_large ? 413 : 400, absl::StatusCode::kInvalidArgument,
               status.message(), 0, response);
      return;
    }
    body = inflated;
  } else if (!content_encoding.empty() && content_encoding != "identity") {
    handler_.CountRefusedRequest(Transport::kHttp, RefuseReason::kMalformed);
    SetError(encoding, 415, absl::StatusCode::kInvalidArgument,
             absl::StrCat("unsupported Content-Encoding \"", request.Header("content-encoding"),
                          "\": want gzip, deflate or none"),
             0, response);
    return;
  }

  ExportOutcome outcome;
  if (encoding == Encoding::kProtobuf) {
    // Validated and split straight from the wire bytes; span bytes are sliced out of the body.
    // Over capacity, refused before that.
    absl::StatusOr<SplitResult> split;
    if (!handler_.RefuseOverLimit(Transport::kHttp, client, body, &outcome) &&
        !handler_.RefuseEarly(Transport::kHttp, body, &outcome)) {
      split = SplitWireRequest(body, handler_.split_options(), handler_.ClientAttributeOf(client));
    }
    if (outcome.status.ok() && !split.ok()) {
      handler_.CountRefusedRequest(Transport::kHttp, RefuseReason::kMalformed);
      SetError(encoding, 400, absl::StatusCode::kInvalidArgument,
               absl::StrCat("request body (", body.size(),
                            " bytes) is not a valid protobuf "
                            "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest: ",
                            split.status().message()),
               0, response);
      return;
    }
    if (outcome.status.ok()) outcome = handler_.ExportSplit(Transport::kHttp, std::move(*split));
  } else {
    google::protobuf::Arena arena;
    auto* export_request = google::protobuf::Arena::CreateMessage<OtlpRequest>(&arena);
    std::string id_errors;
    absl::Status status = ParseOtlpJson(body, export_request, &id_errors);
    if (!status.ok()) {
      handler_.CountRefusedRequest(Transport::kHttp, RefuseReason::kMalformed);
      SetError(encoding, 400, absl::StatusCode::kInvalidArgument, status.message(), 0, response);
      return;
    }
    if (!handler_.RefuseOverLimit(Transport::kHttp, client, CountSpans(*export_request),
                                  static_cast<int64_t>(body.size()), &outcome)) {
      outcome = handler_.Export(Transport::kHttp, *export_request, id_errors, client);
    }
  }
  if (!outcome.status.ok()) {
    int http_status = 500;
    int retry_after = 0;
    if (outcome.status.code() == absl::StatusCode::kResourceExhausted) {
      http_status = 429;
      retry_after = options_.retry_after_seconds;
    } else if (outcome.status.code() == absl::StatusCode::kUnavailable) {
      http_status = 503;
      retry_after = options_.retry_after_seconds;
    } else if (outcome.status.code() == absl::StatusCode::kInvalidArgument) {
      http_status = 400;
    }
    SetError(encoding, http_status, outcome.status.code(), outcome.status.message(), retry_after,
             response);
    return;
  }

  otlp_collector::ExportTraceServiceResponse export_response;
  if (outcome.rejected_spans > 0 || !outcome.error_message.empty()) {
    auto* partial = export_response.mutable_partial_success();
    partial->set_rejected_spans(outcome.rejected_spans);
    partial->set_error_message(outcome.error_message);
  }
  response->status = 200;
  if (encoding == Encoding::kProtobuf) {
    response->content_type = kProtobufType;
    export_response.SerializeToString(&response->body);
  } else {
    response->content_type = kJsonType;
    auto json = ToOtlpJson(export_response);
    response->body = json.ok() ? std::move(json).value() : "{}";
  }
}

}  // namespace tracekeep::receiver
