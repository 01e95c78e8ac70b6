#include "collector/http/http_server.h"

#include <atomic>
#include <mutex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/http/raw_http_client.h"

namespace tracekeep::http {
namespace {

using ::testing::HasSubstr;
using ::tracekeep::testing::MakeRequest;
using ::tracekeep::testing::SendRaw;

// Records the last request it saw and echoes it back.
class EchoServer {
 public:
  explicit EchoServer(size_t max_body_bytes = 1 << 20) {
    HttpServerOptions options;
    options.endpoint = "127.0.0.1:0";
    options.max_body_bytes = max_body_bytes;
    options.on_body_too_large = [this](const HttpRequest& request) {
      too_large_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      too_large_path_ = request.path;
    };
    auto server = HttpServer::Start(
        options, {{"/echo", [this](const HttpRequest& request, HttpResponse* response) {
                     calls_.fetch_add(1);
                     {
                       std::lock_guard<std::mutex> lock(mu_);
                       last_ = request;
                     }
                     response->status = 201;
                     response->content_type = "application/x-echo";
                     response->headers.emplace_back("X-Reply", "yes");
                     response->body = absl::StrCat(request.method, ":", request.body);
                   }}});
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = std::move(server).value();
  }

  int port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  int calls() const { return calls_.load(); }
  int too_large() const { return too_large_.load(); }
  HttpRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> calls_{0};
  std::atomic<int> too_large_{0};
  std::mutex mu_;
  HttpRequest last_;
  std::string too_large_path_;
};

TEST(HttpServerTest, BindsPortZeroAndReportsTheRealPort) {
  EchoServer echo;
  EXPECT_GT(echo.port(), 0);
  EXPECT_EQ(echo.server().address(), absl::StrCat("127.0.0.1:", echo.port()));
  auto response = SendRaw(echo.port(), MakeRequest("GET", "/echo", {}, "", false));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "GET:");
}

TEST(HttpServerTest, PassesBodyLowercaseHeadersAndQueryAndSendsCustomHeaders) {
  EchoServer echo;
  auto response = SendRaw(
      echo.port(), MakeRequest("POST", "/echo?limit=5&x=y",
                               {{"X-Custom-Header", "Some Value"}, {"Content-Type", "text/plain"}},
                               "hello body"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "POST:hello body");
  EXPECT_EQ(response->Header("content-type"), "application/x-echo");
  EXPECT_EQ(response->Header("x-reply"), "yes");
  const HttpRequest seen = echo.last();
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/echo");
  EXPECT_EQ(seen.query, "limit=5&x=y");
  EXPECT_EQ(seen.Header("x-custom-header"), "Some Value");
  EXPECT_EQ(seen.Header("content-type"), "text/plain");
  EXPECT_EQ(seen.Header("absent"), "");
  EXPECT_EQ(seen.remote_address, "127.0.0.1");
}

TEST(HttpServerTest, UnknownPathIs404WithoutCallingAHandler) {
  EchoServer echo;
  auto response = SendRaw(echo.port(), MakeRequest("POST", "/nope", {}, "x"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_THAT(response->body, HasSubstr("/nope"));
  EXPECT_EQ(echo.calls(), 0);
}

TEST(HttpServerTest, DeclaredLengthOverTheLimitIs413WithoutReadingTheBody) {
  EchoServer echo(/*max_body_bytes=*/1000);
  // Declares 10 MB but sends only a few bytes: the server must answer from the header alone.
  std::string raw = MakeRequest("POST", "/echo", {{"Content-Length", "10000000"}}, "", false);
  raw += "partial";
  auto response = SendRaw(echo.port(), raw);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_THAT(response->body, HasSubstr("10000000"));
  EXPECT_THAT(response->body, HasSubstr("limit of 1000 bytes"));
  EXPECT_EQ(echo.calls(), 0);
  EXPECT_EQ(echo.too_large(), 1);
}

TEST(HttpServerTest, BodyOfExactlyTheLimitIsAccepted) {
  EchoServer echo(/*max_body_bytes=*/1000);
  auto response = SendRaw(echo.port(), MakeRequest("POST", "/echo", {}, std::string(1000, 'a')));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(echo.last().body, std::string(1000, 'a'));
  EXPECT_EQ(echo.too_large(), 0);
}

std::string Chunked(const std::vector<std::string>& chunks) {
  std::string out;
  for (const std::string& c : chunks) absl::StrAppend(&out, absl::Hex(c.size()), "\r\n", c, "\r\n");
  return out + "0\r\n\r\n";
}

TEST(HttpServerTest, ChunkedBodyIsReassembled) {
  EchoServer echo;
  auto response = SendRaw(
      echo.port(), MakeRequest("POST", "/echo", {{"Transfer-Encoding", "chunked"}},
                               Chunked({"hello ", "chunked ", std::string(70000, 'z')}), false));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(echo.last().body, "hello chunked " + std::string(70000, 'z'));
}

TEST(HttpServerTest, ChunkedBodyOverTheLimitIs413) {
  EchoServer echo(/*max_body_bytes=*/1000);
  auto response = SendRaw(
      echo.port(), MakeRequest("POST", "/echo", {{"Transfer-Encoding", "chunked"}},
                               Chunked({std::string(600, 'a'), std::string(600, 'b')}), false));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_THAT(response->body, HasSubstr("limit of 1000 bytes"));
  EXPECT_EQ(echo.calls(), 0);
  EXPECT_EQ(echo.too_large(), 1);
}

TEST(HttpServerTest, PostWithoutContentLengthHasAnEmptyBody) {
  EchoServer echo;
  auto response = SendRaw(echo.port(), MakeRequest("POST", "/echo", {}, "", false));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "POST:");
}

TEST(HttpServerTest, ExpectContinueIsHonoured) {
  EchoServer echo;
  auto response =
      SendRaw(echo.port(), MakeRequest("POST", "/echo", {{"Expect", "100-continue"}}, "payload"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "POST:payload");
}

TEST(HttpServerTest, StopIsIdempotentAndClosesThePort) {
  EchoServer echo;
  const int port = echo.port();
  echo.server().Stop();
  echo.server().Stop();
  EXPECT_FALSE(SendRaw(port, MakeRequest("GET", "/echo", {}, "", false)).ok());
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartAt(const std::string& endpoint) {
  HttpServerOptions options;
  options.endpoint = endpoint;
  return HttpServer::Start(options, {});
}

TEST(HttpServerTest, RefusesBadEndpointsAndPortsInUse) {
  EXPECT_EQ(StartAt("nohost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StartAt("127.0.0.1:99999").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StartAt("example.com:80").status().code(), absl::StatusCode::kInvalidArgument);
  EchoServer echo;
  HttpServerOptions taken;
  taken.endpoint = absl::StrCat("127.0.0.1:", echo.port());
  auto second = HttpServer::Start(taken, {});
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace tracekeep::http
