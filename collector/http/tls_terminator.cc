#include "collector/http/tls_terminator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"

namespace tracekeep::http {
namespace {

std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string PeerAddress(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof(buf));
  }
  return buf;
}

// Binds and listens on host:port ("[::1]:0", "0.0.0.0:4318"). Returns the socket.
absl::StatusOr<int> Listen(const std::string& endpoint) {
  std::string host, port;
  if (!endpoint.empty() && endpoint[0] == '[') {
    const size_t close = endpoint.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint \"", endpoint, "\": want [ipv6]:port"));
    }
    host = endpoint.substr(1, close - 1);
    port = endpoint.substr(close + 2);
  } else {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint \"", endpoint, "\": want host:port"));
    }
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint \"", endpoint, "\": ", gai_strerror(rc)));
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool ok =
      fd >= 0 && bind(fd, found->ai_addr, found->ai_addrlen) == 0 && listen(fd, 128) == 0;
  const int error = errno;
  freeaddrinfo(found);
  if (!ok) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on \"", endpoint, "\": ", std::strerror(error)));
  }
  return fd;
}

absl::StatusOr<int> ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect to 127.0.0.1:", port, ": ", std::strerror(error)));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

class OpenSslTerminator final : public TlsTerminator {
 public:
  OpenSslTerminator(const TlsTerminatorOptions& options, SSL_CTX* ctx, int listen_fd, int port)
      : options_(options), ctx_(ctx), listen_fd_(listen_fd), port_(port) {
    if (pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~OpenSslTerminator() override {
    Stop();
    SSL_CTX_free(ctx_);
  }

  int port() const override { return port_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
    if (acceptor_.joinable()) acceptor_.join();
    close(listen_fd_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Connection& c : connections_) {
        if (c.fd >= 0) shutdown(c.fd, SHUT_RDWR);  // wakes its relay
      }
    }
    // The acceptor is gone: nothing adds or erases connections any more (a relay only updates
    // its own entry, under mu_), so the list can be walked without the lock while joining.
    for (Connection& c : connections_) {
      if (c.thread.joinable()) c.thread.join();
    }
    connections_.clear();
    for (int fd : wake_) {
      if (fd >= 0) close(fd);
    }
  }

 private:
  struct Connection {
    int fd;
    std::thread thread;
    bool done = false;
  };

  void Accept() {
    while (!stopped_.load()) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, wake_[0] >= 0 ? 2 : 1, 1000) <= 0) continue;
      if (fds[1].revents != 0 || stopped_.load()) break;
      sockaddr_storage addr{};
      socklen_t len = sizeof(addr);
      const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const std::string peer = PeerAddress(addr);
      if (!options_.allowed_networks.AllowsAddress(peer)) {
        if (options_.on_forbidden) options_.on_forbidden(peer);
        close(fd);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      ReapLocked();
      if (static_cast<int>(connections_.size()) >= options_.max_connections) {
        TK_LOG(Warning) << "otlp http (tls): " << connections_.size()
                        << " connections open, closing the one from " << peer;
        close(fd);
        continue;
      }
      connections_.push_back(Connection{fd, std::thread(), false});
      Connection* c = &connections_.back();
      c->thread = std::thread([this, c, peer] { Serve(c, peer); });
    }
  }

  // Joins the threads of finished connections.
  void ReapLocked() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Serve(Connection* c, const std::string& peer) {
    Relay(c->fd, peer);
    std::lock_guard<std::mutex> lock(mu_);
    close(c->fd);
    c->fd = -1;
    c->done = true;
  }

  void Relay(int fd, const std::string& peer) {
    timeval timeout{};
    timeout.tv_sec = absl::ToInt64Seconds(options_.handshake_timeout);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    SSL* ssl = SSL_new(ctx_);
    if (ssl == nullptr) return;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      TK_LOG(Warning) << "otlp http (tls): handshake with " << peer
                      << " failed: " << OpenSslError();
      SSL_free(ssl);
      return;
    }
    timeout.tv_sec = 0;  // relayed traffic: no timeout, poll() below waits
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    absl::StatusOr<int> backend = ConnectLoopback(options_.backend_port);
    if (!backend.ok()) {
      TK_LOG(Warning) << "otlp http (tls): " << backend.status();
      SSL_free(ssl);
      return;
    }
    char buf[64 << 10];
    bool open = true;
    while (open && !stopped_.load()) {
      if (SSL_pending(ssl) == 0) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {*backend, POLLIN, 0}};
        if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
        if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          const ssize_t n = recv(*backend, buf, sizeof(buf), 0);
          if (n <= 0 || SSL_write(ssl, buf, static_cast<int>(n)) <= 0) break;
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      }
      const int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) {
        const int error = SSL_get_error(ssl, n);
        open = error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE;
        continue;
      }
      open = WriteAll(*backend, buf, static_cast<size_t>(n));
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(*backend);
  }

  const TlsTerminatorOptions options_;
  SSL_CTX* const ctx_;
  const int listen_fd_;
  const int port_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopped_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<Connection> connections_;  // guarded by mu_; stable addresses for the threads
};

}  // namespace

absl::StatusOr<std::unique_ptr<TlsTerminator>> TlsTerminator::Start(
    const TlsTerminatorOptions& options) {
  if (!options.tls.enabled()) {
    return absl::InvalidArgumentError("tls terminator: cert_file must be set");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpenSslError()));
  auto fail = [ctx](std::string message) {
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(std::move(message));
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.tls.cert_file.c_str()) != 1) {
    return fail(absl::StrCat("tls cert_file \"", options.tls.cert_file, "\": ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(absl::StrCat("tls key_file \"", options.tls.key_file, "\": ", OpenSslError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail(absl::StrCat("tls key_file \"", options.tls.key_file,
                             "\" does not match cert_file \"", options.tls.cert_file,
                             "\": ", OpenSslError()));
  }
  if (!options.tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.tls.client_ca_file.c_str(), nullptr) != 1) {
      return fail(absl::StrCat("tls client_ca_file \"", options.tls.client_ca_file,
                               "\": ", OpenSslError()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  absl::StatusOr<int> fd = Listen(options.endpoint);
  if (!fd.ok()) {
    SSL_CTX_free(ctx);
    return fd.status();
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port =
      ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return std::unique_ptr<TlsTerminator>(new OpenSslTerminator(options, ctx, *fd, port));
}

}  // namespace tracekeep::http
