// HTTPS through the TLS terminator in front of the HTTP server, with OpenSSL as the client.
#include "collector/http/tls_terminator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/http/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::http {
namespace {

using ::testing::HasSubstr;

class TlsTerminatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tracekeep-tls-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    const std::string cmd = absl::StrCat(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ", dir_, "/key.pem -out ", dir_,
        "/cert.pem -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    tls_.cert_file = dir_ + "/cert.pem";
    tls_.key_file = dir_ + "/key.pem";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<HttpServer> Serve(security::NetworkAllowList allowed = {}) {
    HttpServerOptions options;
    options.endpoint = "127.0.0.1:0";
    options.tls = tls_;
    options.allowed_networks = std::move(allowed);
    options.on_forbidden = [this](const HttpRequest& r) {
      forbidden_.fetch_add(1);
      forbidden_address_ = r.remote_address;
    };
    auto server = HttpServer::Start(
        options, {{"/hello", [](const HttpRequest& request, HttpResponse* response) {
                     response->body = absl::StrCat("hello over ", request.method);
                   }}});
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static int Connect(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  // One HTTPS GET; "" when the handshake fails.
  std::string HttpsGet(int port) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, tls_.cert_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int fd = Connect(port);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    std::string response;
    if (SSL_connect(ssl) == 1) {
      const std::string request =
          "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, request.data(), static_cast<int>(request.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) response.append(buf, n);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return response;
  }

  std::string dir_;
  security::TlsSettings tls_;
  std::atomic<int> forbidden_{0};
  std::string forbidden_address_;
};

TEST_F(TlsTerminatorTest, ServesHttpsAndRefusesPlaintext) {
  auto server = Serve();
  ASSERT_NE(server, nullptr);
  const std::string response = HttpsGet(server->port());
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(response, HasSubstr("hello over GET"));

  // Plain HTTP to the TLS port gets no HTTP answer.
  const int fd = Connect(server->port());
  const std::string plain = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
  send(fd, plain.data(), plain.size(), MSG_NOSIGNAL);
  char buf[256] = {};
  const ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
  close(fd);
  EXPECT_THAT(std::string(buf, n > 0 ? n : 0), ::testing::Not(HasSubstr("HTTP/1.1 200")));
  server->Stop();
}

TEST_F(TlsTerminatorTest, ClientsOutsideAllowedNetworksAreRefusedBeforeTheHandshake) {
  auto allowed = security::NetworkAllowList::Parse({"10.0.0.0/8"}, "allowed_networks");
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  auto server = Serve(*allowed);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(HttpsGet(server->port()), "");
  EXPECT_EQ(forbidden_.load(), 1);
  EXPECT_EQ(forbidden_address_, "127.0.0.1");
}

TEST_F(TlsTerminatorTest, AKeyThatDoesNotMatchTheCertificateIsNamed) {
  const std::string other = dir_ + "/other.pem";
  ASSERT_EQ(std::system(absl::StrCat("openssl genrsa -out ", other, " 2048 2>/dev/null").c_str()),
            0);
  TlsTerminatorOptions options;
  options.endpoint = "127.0.0.1:0";
  options.tls = tls_;
  options.tls.key_file = other;
  options.backend_port = 1;
  auto terminator = TlsTerminator::Start(options);
  ASSERT_FALSE(terminator.ok());
  EXPECT_THAT(std::string(terminator.status().message()), HasSubstr(other));
  EXPECT_THAT(std::string(terminator.status().message()), HasSubstr("mismatch"));
}

}  // namespace
}  // namespace tracekeep::http
