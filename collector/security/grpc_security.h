// gRPC credentials and per-call access checks built from the security settings. gRPC types are
// forward-declared so this header stays cheap.
#ifndef TRACEKEEP_COLLECTOR_SECURITY_GRPC_SECURITY_H_
#define TRACEKEEP_COLLECTOR_SECURITY_GRPC_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collector/security/access.h"

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
class ServerContextBase;
class Status;
}  // namespace grpc

namespace tracekeep::security {

// Plaintext when `tls` is disabled; otherwise TLS, requiring client certificates when
// client_ca_file is set. Fails naming an unreadable file.
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsSettings& tls);

// Client side: plaintext when `ca_file` is empty and `use_tls` is false; otherwise TLS trusting
// `ca_file` (system roots when empty), presenting cert_file/key_file when set.
struct ClientTlsSettings {
  bool use_tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name_override;  // for certificates that do not name the dialled host
};
[[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsSettings& tls);

// Per-call check: the peer's address must be allowed (else kPermissionDenied), and when `token`
// is not empty the call must carry "authorization: Bearer <token>" (else kUnauthenticated).
[[nodiscard]] absl::Status CheckCall(const grpc::ServerContextBase& context,
                                     const NetworkAllowList& allowed, const std::string& token);

// The value of the call's "authorization" metadata, "" when absent.
std::string AuthorizationOf(const grpc::ServerContextBase& context);

// The subject of the client's verified TLS certificate in gRPC's form ("CN=alice,O=shop"), ""
// when the call is not over mutual TLS.
std::string PeerCertificateSubject(const grpc::ServerContextBase& context);

// The gRPC status of `status` (absl and gRPC share the google.rpc.Code numbering).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Splits a listener's "host:port" at its last colon; the port must be a number in [0, 65535].
// The error names `what` (e.g. "admin endpoint") and the value.
[[nodiscard]] absl::Status ParseListenEndpoint(absl::string_view what, const std::string& endpoint,
                                               std::string* host, int* port);

}  // namespace tracekeep::security

#endif  // TRACEKEEP_COLLECTOR_SECURITY_GRPC_SECURITY_H_
