// TLS in front of the embedded HTTP server: accepts TLS connections (mutual TLS when a client CA
// is set) on the public endpoint and relays their plaintext to the HTTP server's loopback port.
//
// Why not civetweb's own TLS: Debian 12's civetweb 1.15 loads OpenSSL at run time and looks up
// SSL_get_peer_certificate, which OpenSSL 3 no longer exports; its TLS setup then fails silently
// and the first TLS connection calls a null function pointer. This uses OpenSSL 3 directly.
//
// One thread per connection (a blocking relay over poll()): OTLP/HTTP clients keep a few
// long-lived connections, and the HTTP server behind serves one connection per thread anyway.
#ifndef TRACEKEEP_COLLECTOR_HTTP_TLS_TERMINATOR_H_
#define TRACEKEEP_COLLECTOR_HTTP_TLS_TERMINATOR_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/security/access.h"

namespace tracekeep::http {

struct TlsTerminatorOptions {
  // host:port to listen on; port 0 picks a free port.
  std::string endpoint;
  security::TlsSettings tls;
  // Plaintext destination on 127.0.0.1.
  int backend_port = 0;
  // Clients outside these networks are disconnected before the handshake. Default: everyone.
  security::NetworkAllowList allowed_networks;
  // Called (on the accepting thread) for every client refused by allowed_networks, with its
  // address. Default: none.
  std::function<void(const std::string& address)> on_forbidden;
  // Connections open at once; beyond, new ones are closed at once. Default: 256.
  int max_connections = 256;
  // A handshake that takes longer is abandoned. Default: 10s.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

class TlsTerminator {
 public:
  // Loads the certificates (errors name the file and OpenSSL's reason) and starts listening.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TlsTerminator>> Start(
      const TlsTerminatorOptions& options);
  virtual ~TlsTerminator() = default;
  virtual int port() const = 0;
  // Closes the listener and every connection; waits for their threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace tracekeep::http

#endif  // TRACEKEEP_COLLECTOR_HTTP_TLS_TERMINATOR_H_
