// OTLP/HTTP trace receiver: POST /v1/traces, protobuf or JSON, optionally gzip-compressed.
#ifndef TRACEKEEP_COLLECTOR_RECEIVER_HTTP_RECEIVER_H_
#define TRACEKEEP_COLLECTOR_RECEIVER_HTTP_RECEIVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/http/http_server.h"
#include "collector/pipeline/consumer.h"
#include "collector/receiver/export_handler.h"
#include "collector/receiver/receiver_stats.h"
#include "collector/security/access.h"

namespace tracekeep::receiver {

inline constexpr char kOtlpHttpTracesPath[] = "/v1/traces";

struct HttpReceiverOptions {
  // Clients outside these networks get 403. Default: empty (everyone).
  security::NetworkAllowList allowed_networks;
  // host:port to listen on; port 0 picks a free port (see HttpReceiver::port()).
  // Default: 0.0.0.0:4318.
  std::string endpoint = "0.0.0.0:4318";
  // Largest request body accepted, in bytes, both as received and after decompression. Larger
  // requests are answered 413. Default: 16 MiB.
  size_t max_request_bytes = 16 << 20;
  // Server threads; each serves one connection at a time. Default: 8.
  int num_threads = 8;
  // A client must send a request's headers within this time (in total), and each read of its
  // body waits at most this long, else its connection is closed (slowloris). Default: 10 s.
  absl::Duration read_timeout = absl::Seconds(10);
  // Retry-After (seconds) sent with 429 and 503. Default: 5.
  int retry_after_seconds = 5;
  // HTTPS when cert_file is set (mutual TLS with client_ca_file). Default: off.
  security::TlsSettings tls;
  // How protobuf requests are split into spans (see GrpcReceiverOptions::split).
  WireSplitOptions split;
  // Bearer tokens ("Authorization: Bearer <token>", 401 without a valid one) and per-client
  // limits (429 + Retry-After beyond them). Default: none.
  ClientAuthOptions auth;
};

class HttpReceiver final : public Component {
 public:
  // `intake` and `stats` are not owned and must outlive the receiver.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpReceiver>> Create(
      const HttpReceiverOptions& options, SpanIntake* intake, ReceiverStats* stats);
  ~HttpReceiver() override;

  // Starts listening.
  [[nodiscard]] absl::Status Start() override;
  // Stops listening and waits for requests in progress. Idempotent.
  void Shutdown(absl::Time deadline) override;

  // The port bound by Start(); 0 before.
  int port() const;

  // Answers one OTLP/HTTP traces request, whatever server received it (thread-safe), so that
  // /v1/traces can also be mounted on another HttpServer.
  void Handle(const http::HttpRequest& request, http::HttpResponse* response);

 private:
  HttpReceiver(const HttpReceiverOptions& options, SpanIntake* intake, ReceiverStats* stats);

  const HttpReceiverOptions options_;
  ExportHandler handler_;
  std::unique_ptr<http::HttpServer> server_;
};

// Decompresses a gzip (or zlib) body into `out`. Fails with kResourceExhausted when the result
// would exceed `max_bytes` (stops there: a small "zip bomb" cannot take more memory), and with
// kInvalidArgument when the data is not valid gzip/zlib.
[[nodiscard]] absl::Status Gunzip(absl::string_view compressed, size_t max_bytes, std::string* out);

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_COLLECTOR_RECEIVER_HTTP_RECEIVER_H_
