#include "collector/http/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/http/tls_terminator.h"

namespace tracekeep::http {

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

constexpr size_t kReadChunk = 256 << 10;

struct Endpoint {
  std::string host;  // IP literal, without brackets
  int port = 0;
  bool ipv6 = false;
};

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& endpoint) {
  Endpoint out;
  std::string port_text;
  if (absl::StartsWith(endpoint, "[")) {
    const size_t close = endpoint.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("http endpoint \"", endpoint, "\": want [ipv6]:port"));
    }
    out.host = endpoint.substr(1, close - 1);
    out.ipv6 = true;
    port_text = endpoint.substr(close + 2);
  } else {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("http endpoint \"", endpoint, "\": want host:port"));
    }
    out.host = endpoint.substr(0, colon);
    port_text = endpoint.substr(colon + 1);
    if (out.host.empty()) out.host = "0.0.0.0";
    if (out.host == "localhost") out.host = "127.0.0.1";
  }
  if (!absl::SimpleAtoi(port_text, &out.port) || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http endpoint \"", endpoint, "\": port must be 0..65535, got \"", port_text, "\""));
  }
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(out.ipv6 ? AF_INET6 : AF_INET, out.host.c_str(), buf) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("http endpoint \"", endpoint, "\": host \"",
                                                   out.host, "\" is not an IP address"));
  }
  return out;
}

std::string FormatHostPort(const Endpoint& e, int port) {
  return e.ipv6 ? absl::StrCat("[", e.host, "]:", port) : absl::StrCat(e.host, ":", port);
}

// Binds a socket to port 0 on `e.host` and returns the port the kernel chose (then releases it).
// Only used when civetweb does not report the port it bound.
absl::StatusOr<int> PickFreePort(const Endpoint& e) {
  const int fd = socket(e.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  sockaddr_storage addr{};
  socklen_t len;
  if (e.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, e.host.c_str(), &a->sin6_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, e.host.c_str(), &a->sin_addr);
    len = sizeof(*a);
  }
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(e.ipv6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  close(fd);
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot find a free port on ", e.host, ": ", std::strerror(errno)));
  }
  return port;
}

int LogMessage(const mg_connection*, const char* message) {
  TK_LOG(Warning) << "http server: " << message;
  return 1;  // do not print to stderr again
}

class CivetHttpServer final : public HttpServer {
 public:
  CivetHttpServer(const HttpServerOptions& options, Endpoint endpoint,
                  std::vector<std::pair<std::string, HttpHandler>> routes)
      : options_(options), endpoint_(std::move(endpoint)) {
    for (auto& [path, handler] : routes) routes_[path] = std::move(handler);
  }
  ~CivetHttpServer() override { Stop(); }

  absl::Status Listen() {
    static const unsigned kInit = mg_init_library(0);
    (void)kInit;
    TK_ASSIGN_OR_RETURN(const std::string listening, ListeningPorts(endpoint_.port));
    TK_RETURN_IF_ERROR(StartCivet(listening));
    int bound = BoundPort();
    if (bound <= 0 && endpoint_.port == 0) {
      // civetweb versions that do not report a port chosen by the kernel: choose it ourselves.
      mg_stop(ctx_);
      ctx_ = nullptr;
      TK_ASSIGN_OR_RETURN(const int free_port, PickFreePort(endpoint_));
      TK_ASSIGN_OR_RETURN(const std::string retry, ListeningPorts(free_port));
      TK_RETURN_IF_ERROR(StartCivet(retry));
      bound = BoundPort();
      if (bound <= 0) bound = free_port;
    }
    if (bound <= 0) bound = endpoint_.port;
    port_ = bound;
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  std::string address() const override { return FormatHostPort(endpoint_, port_); }

  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (ctx_ == nullptr) return;
    // mg_stop() joins the worker threads, so running handlers have returned. Its listening thread
    // notices the stop only when poll() returns, which without traffic takes up to 2 s: connect
    // to the port until mg_stop() is done so that shutdown (and every test) is fast.
    std::atomic<bool> stopped{false};
    std::thread stopper([this, &stopped] {
      mg_stop(ctx_);
      stopped.store(true);
    });
    while (!stopped.load()) {
      WakeListener();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stopper.join();
    ctx_ = nullptr;
  }

 private:
  // Opens and closes a connection to the listening port (the wildcard address via loopback).
  void WakeListener() const {
    if (port_ <= 0) return;
    Endpoint target = endpoint_;
    if (target.host == "0.0.0.0") target.host = "127.0.0.1";
    if (target.host == "::") target.host = "::1";
    const int fd = socket(target.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return;
    sockaddr_storage addr{};
    socklen_t len;
    if (target.ipv6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(port_));
      inet_pton(AF_INET6, target.host.c_str(), &a->sin6_addr);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(port_));
      inet_pton(AF_INET, target.host.c_str(), &a->sin_addr);
      len = sizeof(*a);
    }
    connect(fd, reinterpret_cast<sockaddr*>(&addr), len);  // non-blocking: the SYN is enough
    close(fd);
  }

  absl::StatusOr<std::string> ListeningPorts(int port) const {
    if (endpoint_.ipv6 && !mg_check_feature(MG_FEATURES_IPV6)) {
      return absl::UnimplementedError(
          absl::StrCat("http endpoint ", options_.endpoint, ": civetweb was built without IPv6"));
    }
    return FormatHostPort(endpoint_, port);
  }

  absl::Status StartCivet(const std::string& listening) {
    const std::string threads = absl::StrCat(options_.num_threads > 0 ? options_.num_threads : 1);
    const std::string keep_alive_ms = absl::StrCat(options_.keep_alive_timeout_ms);
    const std::string request_timeout_ms =
        absl::StrCat(options_.request_timeout_ms > 0 ? options_.request_timeout_ms : 10000);
    const char* civet_options[] = {"listening_ports",
                                   listening.c_str(),
                                   "num_threads",
                                   threads.c_str(),
                                   "enable_keep_alive",
                                   "yes",
                                   "keep_alive_timeout_ms",
                                   keep_alive_ms.c_str(),
                                   "tcp_nodelay",
                                   "1",
                                   "request_timeout_ms",
                                   request_timeout_ms.c_str(),
                                   nullptr};
    mg_callbacks callbacks;
    std::memset(&callbacks, 0, sizeof(callbacks));
    callbacks.log_message = &LogMessage;
    ctx_ = mg_start(&callbacks, this, civet_options);
    if (ctx_ == nullptr) {
      return absl::UnavailableError(absl::StrCat("http server: cannot listen on ", listening,
                                                 " (address in use or not available?)"));
    }
    mg_set_request_handler(ctx_, "**", &CivetHttpServer::Dispatch, this);
    return absl::OkStatus();
  }

  int BoundPort() const {
    mg_server_port ports[4];
    std::memset(ports, 0, sizeof(ports));
    const int n = mg_get_server_ports(ctx_, 4, ports);
    return n > 0 ? ports[0].port : 0;
  }

  static int Dispatch(mg_connection* conn, void* self) {
    return static_cast<CivetHttpServer*>(self)->Serve(conn);
  }

  int Serve(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    HttpRequest request;
    request.method = info->request_method ? info->request_method : "";
    request.path = info->local_uri ? info->local_uri : "";
    request.query = info->query_string ? info->query_string : "";
    request.remote_address = info->remote_addr;
    if (!options_.allowed_networks.AllowsAddress(request.remote_address)) {
      HttpResponse forbidden;
      forbidden.status = 403;
      forbidden.body =
          absl::StrCat("client ", request.remote_address, " is not in the allowed networks\n");
      if (options_.on_forbidden) options_.on_forbidden(request);
      return Reply(conn, request, forbidden, /*close=*/true);
    }
    for (int i = 0; i < info->num_headers; ++i) {
      std::string name = absl::AsciiStrToLower(info->http_headers[i].name);
      const char* value = info->http_headers[i].value ? info->http_headers[i].value : "";
      auto [it, inserted] = request.headers.try_emplace(std::move(name), value);
      if (!inserted) absl::StrAppend(&it->second, ", ", value);
    }

    HttpResponse response;
    auto route = routes_.find(request.path);
    if (route == routes_.end()) {
      response.status = 404;
      response.body = absl::StrCat("no handler for path ", request.path, "\n");
      // The body (if any) is not read: civetweb then closes the connection after the reply.
      return Reply(conn, request, response, /*close=*/info->content_length != 0);
    }

    const long long content_length = info->content_length;  // -1: chunked or not given
    if (options_.before_body && options_.before_body(&request, &response)) {
      // Refused on its headers. civetweb reads and drops what is left of a body once the handler
      // returns, unless the connection is to be closed: a small body is read (the client sees the
      // answer and may go on), any other is not read at all.
      const bool close =
          content_length < 0 || static_cast<unsigned long long>(content_length) >
                                    static_cast<unsigned long long>(kMaxDrainedBodyBytes);
      if (close) mg_disable_connection_keep_alive(conn);
      return Reply(conn, request, response, close);
    }
    if (content_length > 0 && static_cast<unsigned long long>(content_length) >
                                  static_cast<unsigned long long>(options_.max_body_bytes)) {
      return TooLarge(conn, request, content_length);
    }
    if (absl::EqualsIgnoreCase(request.Header("expect"), "100-continue")) {
      mg_printf(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    if (content_length != 0) {
      // Reads straight into the body buffer, growing it as data arrives; never past the limit + 1
      // byte, which is enough to tell that the body is too large.
      size_t size = 0;
      request.body.resize(content_length > 0 ? static_cast<size_t>(content_length)
                                             : std::min(kReadChunk, options_.max_body_bytes + 1));
      while (true) {
        if (size == request.body.size()) {
          if (size > options_.max_body_bytes) {
            request.body.clear();
            return TooLarge(conn, request, -1);
          }
          request.body.resize(std::min(size * 2, options_.max_body_bytes + 1));
        }
        const int n = mg_read(conn, request.body.data() + size,
                              std::min(request.body.size() - size, kReadChunk));
        if (n < 0) {
          TK_LOG(Debug) << "http server: read error on " << request.path << " from "
                        << request.remote_address;
          return 400;  // the connection is broken; nothing useful can be sent
        }
        if (n == 0) break;
        size += static_cast<size_t>(n);
      }
      request.body.resize(size);
    }
    route->second(request, &response);
    return Reply(conn, request, response, /*close=*/false);
  }

  int TooLarge(mg_connection* conn, HttpRequest& request, long long content_length) {
    if (options_.on_body_too_large) options_.on_body_too_large(request);
    HttpResponse response;
    response.status = 413;
    response.body = content_length > 0 ? absl::StrCat("request body of ", content_length,
                                                      " bytes exceeds the limit of ",
                                                      options_.max_body_bytes, " bytes\n")
                                       : absl::StrCat("request body exceeds the limit of ",
                                                      options_.max_body_bytes, " bytes\n");
    return Reply(conn, request, response, /*close=*/true);
  }

  // Writes the whole response. With `close`, tells the client the connection ends here (the
  // request body was not read completely, so the connection cannot be reused).
  static int Reply(mg_connection* conn, const HttpRequest& request, const HttpResponse& response,
                   bool close) {
    std::string head = absl::StrCat("HTTP/1.1 ", response.status, " ",
                                    mg_get_response_code_text(conn, response.status), "\r\n");
    if (!response.content_type.empty()) {
      absl::StrAppend(&head, "Content-Type: ", response.content_type, "\r\n");
    }
    absl::StrAppend(&head, "Content-Length: ", response.body.size(), "\r\n");
    for (const auto& [name, value] : response.headers) {
      absl::StrAppend(&head, name, ": ", value, "\r\n");
    }
    if (close) absl::StrAppend(&head, "Connection: close\r\n");
    absl::StrAppend(&head, "\r\n");
    if (request.method != "HEAD" && response.body.size() < (64 << 10)) {
      head.append(response.body);  // one write for small responses
      mg_write(conn, head.data(), head.size());
    } else {
      mg_write(conn, head.data(), head.size());
      if (request.method != "HEAD") mg_write(conn, response.body.data(), response.body.size());
    }
    return response.status;
  }

  const HttpServerOptions options_;
  const Endpoint endpoint_;
  absl::flat_hash_map<std::string, HttpHandler> routes_;
  std::mutex stop_mu_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace

// With TLS: the civetweb server listens on 127.0.0.1:0 in plaintext, behind a TlsTerminator on
// the public endpoint that also enforces allowed_networks (see tls_terminator.h for why).
class TlsHttpServer final : public HttpServer {
 public:
  TlsHttpServer(Endpoint endpoint, std::unique_ptr<HttpServer> inner,
                std::unique_ptr<TlsTerminator> tls)
      : endpoint_(std::move(endpoint)), inner_(std::move(inner)), tls_(std::move(tls)) {}
  ~TlsHttpServer() override { Stop(); }
  int port() const override { return tls_->port(); }
  std::string address() const override { return FormatHostPort(endpoint_, tls_->port()); }
  void Stop() override {
    tls_->Stop();
    inner_->Stop();
  }

 private:
  const Endpoint endpoint_;
  std::unique_ptr<HttpServer> inner_;
  std::unique_ptr<TlsTerminator> tls_;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpServerOptions& options, std::vector<std::pair<std::string, HttpHandler>> routes) {
  TK_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  if (options.max_body_bytes == 0) {
    return absl::InvalidArgumentError("http server: max_body_bytes must be > 0, got 0");
  }
  if (options.tls.enabled()) {
    HttpServerOptions plain = options;
    plain.endpoint = "127.0.0.1:0";
    plain.tls = security::TlsSettings();
    plain.allowed_networks = security::NetworkAllowList();  // the terminator checks them
    TK_ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> inner, Start(plain, std::move(routes)));
    TlsTerminatorOptions t;
    t.endpoint = options.endpoint;
    t.tls = options.tls;
    t.backend_port = inner->port();
    t.allowed_networks = options.allowed_networks;
    if (options.on_forbidden) {
      t.on_forbidden = [cb = options.on_forbidden](const std::string& address) {
        HttpRequest request;
        request.remote_address = address;
        cb(request);
      };
    }
    TK_ASSIGN_OR_RETURN(std::unique_ptr<TlsTerminator> tls, TlsTerminator::Start(t));
    return std::unique_ptr<HttpServer>(
        new TlsHttpServer(std::move(endpoint), std::move(inner), std::move(tls)));
  }
  auto server = std::make_unique<CivetHttpServer>(options, std::move(endpoint), std::move(routes));
  TK_RETURN_IF_ERROR(server->Listen());
  return server;
}

}  // namespace tracekeep::http
