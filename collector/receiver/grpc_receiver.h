// OTLP/gRPC trace receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export.
#ifndef TRACEKEEP_COLLECTOR_RECEIVER_GRPC_RECEIVER_H_
#define TRACEKEEP_COLLECTOR_RECEIVER_GRPC_RECEIVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/consumer.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/receiver/export_handler.h"
#include "collector/receiver/receiver_stats.h"
#include "collector/security/access.h"

namespace tracekeep::receiver {

struct GrpcReceiverOptions {
  // Clients outside these networks get PERMISSION_DENIED. Default: empty (everyone).
  security::NetworkAllowList allowed_networks;
  // TLS when tls.cert_file is set; client certificates required when tls.client_ca_file is.
  // Default: plaintext.
  security::TlsSettings tls;
  // host:port to listen on (gRPC syntax: "0.0.0.0:4317", "[::]:4317", "localhost:0"); port 0
  // picks a free port (see GrpcReceiver::port()). Default: 0.0.0.0:4317.
  std::string endpoint = "0.0.0.0:4317";
  // Largest request message accepted after decompression, in MiB. gRPC itself refuses larger
  // messages with RESOURCE_EXHAUSTED, before the receiver sees (or counts) them. Default: 16.
  int max_recv_msg_size_mib = 16;
  // Delay put in the google.rpc.RetryInfo of RESOURCE_EXHAUSTED and UNAVAILABLE answers, in
  // seconds; 0 sends no RetryInfo. Default: 5.
  int retry_after_seconds = 5;
  // How requests are split into spans; split.key_attribute (the order id attribute) is located
  // in each span for the order tracker. Default: nothing located.
  WireSplitOptions split;
  // Bearer tokens and per-client limits. Default: none (anyone may send, no per-client limit).
  ClientAuthOptions auth;

  // Bounds against hostile or broken clients (gRPC channel arguments and resource quota).
  // HTTP/2 streams (calls) one connection may have open at once; a client's further calls wait
  // on its side. Default: 100.
  int max_concurrent_streams = 100;
  // A connection must finish its TLS and HTTP/2 handshake within this time, else it is closed
  // (a TCP connection that never speaks costs a file descriptor only this long). Default: 10 s.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // A connection without a call for this long is sent GOAWAY and closed. InfiniteDuration():
  // never. Default: 5 min.
  absl::Duration max_connection_idle = absl::Minutes(5);
  // A connection this old is sent GOAWAY (its client reconnects for new calls), and closed
  // max_connection_age_grace later, cancelling calls still open: bounds how long a call whose
  // client never sends its message holds a stream. InfiniteDuration(): never. Default: 1 h, 30 s.
  absl::Duration max_connection_age = absl::Hours(1);
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // After this long without activity on a connection the server pings the client, and closes
  // the connection when the ping is not answered within keepalive_timeout (dead peers).
  // Default: 2 h, 20 s (gRPC's).
  absl::Duration keepalive_time = absl::Hours(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Memory gRPC may use for this server's connections and calls, in MiB (its grpc::ResourceQuota);
  // under pressure gRPC shrinks its buffers and closes connections. 0 = no quota. Default: 1024.
  int max_memory_mib = 1024;
};

// Answers: OK (with partial_success when spans had invalid ids); UNAUTHENTICATED without a valid
// bearer token (when tokens are required); RESOURCE_EXHAUSTED + RetryInfo when the client is
// over its rate limit; INVALID_ARGUMENT when the request
// is not a valid ExportTraceServiceRequest; RESOURCE_EXHAUSTED + RetryInfo when the intake is
// over capacity; UNAVAILABLE + RetryInfo when it is shutting down. gzip-compressed requests are
// decompressed by gRPC.
class GrpcReceiver final : public Component {
 public:
  // `intake` and `stats` are not owned and must outlive the receiver.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GrpcReceiver>> Create(
      const GrpcReceiverOptions& options, SpanIntake* intake, ReceiverStats* stats);
  ~GrpcReceiver() override;

  // Starts listening and serving.
  [[nodiscard]] absl::Status Start() override;
  // Stops accepting calls, lets calls in progress finish until `deadline` (then cancels them).
  // Idempotent.
  void Shutdown(absl::Time deadline) override;

  // The port bound by Start(); 0 before.
  int port() const;

 private:
  struct Impl;
  explicit GrpcReceiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_COLLECTOR_RECEIVER_GRPC_RECEIVER_H_
