#include "collector/security/grpc_security.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tracekeep::security {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& file) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read \"", file, "\""));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsSettings& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto cert = ReadPem(tls.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(tls.key_file);
  if (!key.ok()) return key.status();
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {
    auto ca = ReadPem(tls.client_ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsSettings& tls) {
  if (!tls.use_tls && tls.ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  if (!tls.ca_file.empty()) {
    auto ca = ReadPem(tls.ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  if (!tls.cert_file.empty()) {
    auto cert = ReadPem(tls.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(tls.key_file);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

absl::Status CheckCall(const grpc::ServerContextBase& context, const NetworkAllowList& allowed,
                       const std::string& token) {
  const std::string peer = context.peer();
  if (!allowed.AllowsGrpcPeer(peer)) {
    return absl::PermissionDeniedError(
        absl::StrCat("client ", peer, " is not in the allowed networks"));
  }
  if (!token.empty()) {
    const auto& metadata = context.client_metadata();
    auto it = metadata.find("authorization");
    const bool ok =
        it != metadata.end() &&
        BearerTokenMatches(absl::string_view(it->second.data(), it->second.size()), token);
    if (!ok) {
      return absl::UnauthenticatedError(
          "missing or wrong admin token (send \"authorization: Bearer <token>\")");
    }
  }
  return absl::OkStatus();
}

std::string AuthorizationOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

std::string PeerCertificateSubject(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  std::vector<grpc::string_ref> subjects =
      auth->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME);
  if (subjects.empty()) return "";
  return std::string(subjects[0].data(), subjects[0].size());
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status ParseListenEndpoint(absl::string_view what, const std::string& endpoint,
                                 std::string* host, int* port) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(endpoint).substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(what, " \"", endpoint, "\" is not host:port"));
  }
  *host = endpoint.substr(0, colon);
  return absl::OkStatus();
}

}  // namespace tracekeep::security
