// A small embedded HTTP/1.1 server (civetweb underneath) for OTLP/HTTP, /metrics and health.
#ifndef TRACEKEEP_COLLECTOR_HTTP_HTTP_SERVER_H_
#define TRACEKEEP_COLLECTOR_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "collector/security/access.h"

namespace tracekeep::http {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::string query;
  absl::flat_hash_map<std::string, std::string> headers;  // keys lowercased
  std::string body;                                       // raw, as received (not decompressed)
  std::string remote_address;
  // Who sent the request, as HttpServerOptions::before_body established it ("" = nobody).
  std::string principal;
  // The header's value, or "" when absent. `name` must be lowercase.
  std::string Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Called on one of the server's threads; must be thread-safe.
using HttpHandler = std::function<void(const HttpRequest&, HttpResponse*)>;

struct HttpServerOptions {
  // host:port to listen on; port 0 picks a free port (see HttpServer::port()).
  std::string endpoint = "0.0.0.0:0";
  // Larger request bodies are answered 413 without calling a handler. Default: 16 MiB.
  size_t max_body_bytes = 16 << 20;
  // Worker threads. civetweb serves one connection per thread, so this also caps the number of
  // concurrently open (keep-alive) connections. Default: 4.
  int num_threads = 4;
  // How long an idle keep-alive connection is held open, in milliseconds. Default: 1000.
  int keep_alive_timeout_ms = 1000;
  // How long a client may take to send a request's headers, in total, and how long one read
  // of its body may wait for data, in milliseconds; then the connection is closed. Bounds how
  // long a slow or silent client (slowloris) holds one of the num_threads threads. Default: 10000.
  int request_timeout_ms = 10000;
  // Called on a server thread whenever a request is answered 413 because its body exceeds
  // max_body_bytes (the request has no body). Lets a caller count refusals. Default: none.
  std::function<void(const HttpRequest&)> on_body_too_large;
  // Clients outside these networks get 403 before any handler runs. Default: empty (everyone).
  security::NetworkAllowList allowed_networks;
  // Called on a server thread for every request refused 403 by allowed_networks. Default: none.
  // With TLS, clients outside allowed_networks are disconnected before the handshake; the
  // request passed then only has remote_address.
  std::function<void(const HttpRequest&)> on_forbidden;
  // HTTPS (mutual TLS with client_ca_file) on `endpoint` when cert_file is set. Default: off.
  security::TlsSettings tls;
  // Called on a server thread for a request to a routed path once its headers are in, before
  // its body is read (e.g. to check credentials). It may set request->principal for the
  // handler. Returning true refuses the request with `response`, sent at once: the body is not
  // read first. A body announced at most kMaxDrainedBodyBytes long (Content-Length) is then
  // read and dropped, so that a client that sent it whole sees the answer and may reuse the
  // connection; any other body (larger, chunked) is never read and the connection is closed
  // after the answer. Default: none (every request is read and handled).
  std::function<bool(HttpRequest* request, HttpResponse* response)> before_body;
};

// The largest body a request refused by before_body may have for its connection to be kept
// (the body is read and dropped after the answer); larger ones close the connection.
inline constexpr size_t kMaxDrainedBodyBytes = 64 << 10;

class HttpServer {
 public:
  // Starts listening. `routes` maps an exact path to its handler; other paths get 404.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options, std::vector<std::pair<std::string, HttpHandler>> routes);
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
  // host:port actually bound.
  virtual std::string address() const = 0;
  // Stops accepting and waits for running handlers. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace tracekeep::http

#endif  // TRACEKEEP_COLLECTOR_HTTP_HTTP_SERVER_H_
