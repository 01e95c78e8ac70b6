// Bearer tokens and per-client limits on both OTLP receivers.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/common/clock.h"
#include "collector/receiver/grpc_receiver.h"
#include "collector/receiver/http_receiver.h"
#include "collector/receiver/rpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/collector/http/raw_http_client.h"
#include "tests/collector/receiver/fake_intake.h"

namespace tracekeep::receiver {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tracekeep::testing::RawHttpResponse;
using ::tracekeep::testing::SendRaw;

constexpr char kShopToken[] = "shop-token-0123456789";

// A connected TCP socket to 127.0.0.1:port.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// Reads from `fd` until `done(bytes read so far)` or the server closes the connection (then
// *closed is set), for at most `timeout`.
std::string ReadUntil(int fd, absl::Duration timeout, bool* closed,
                      const std::function<bool(const std::string&)>& done) {
  std::string in;
  *closed = false;
  const absl::Time deadline = absl::Now() + timeout;
  while (!done(in)) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  return in;
}

// Whether `in` holds one whole response (headers and the body its Content-Length announces).
bool WholeResponse(const std::string& in) {
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  const std::string head = absl::AsciiStrToLower(in.substr(0, end));
  const size_t at = head.find("content-length: ");
  if (at == std::string::npos) return true;
  return in.size() >= end + 4 + std::stoul(head.substr(at + 16));
}
constexpr char kBatchToken[] = "batch-token-0123456789";

class ClientAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/client_auth_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    token_path_ = dir_ + "/otlp-tokens";
    std::ofstream(token_path_) << "shop-api " << kShopToken << "\nbatch-job " << kBatchToken
                               << "\n";
    auto tokens = security::TokenFile::Load(token_path_, false);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = std::move(tokens).value();
    security::ClientLimitsOptions limits;
    limits.clients["batch-job"].spans_per_second = 5;
    limits_ = std::make_unique<security::ClientLimits>(limits, &clock_);
    ClientAuthOptions auth{tokens_.get(), limits_.get(), "tracekeep.client"};

    GrpcReceiverOptions grpc_options;
    grpc_options.endpoint = "127.0.0.1:0";
    grpc_options.retry_after_seconds = 2;
    grpc_options.auth = auth;
    auto grpc_receiver = GrpcReceiver::Create(grpc_options, &intake_, &stats_);
    ASSERT_TRUE(grpc_receiver.ok());
    grpc_ = std::move(grpc_receiver).value();
    ASSERT_TRUE(grpc_->Start().ok());
    stub_ = otlp_collector::TraceService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", grpc_->port()), grpc::InsecureChannelCredentials()));

    HttpReceiverOptions http_options;
    http_options.endpoint = "127.0.0.1:0";
    http_options.retry_after_seconds = 2;
    http_options.auth = auth;
    auto http_receiver = HttpReceiver::Create(http_options, &intake_, &stats_);
    ASSERT_TRUE(http_receiver.ok());
    http_ = std::move(http_receiver).value();
    ASSERT_TRUE(http_->Start().ok());
  }
  void TearDown() override {
    grpc_->Shutdown(absl::Now() + absl::Seconds(5));
    http_->Shutdown(absl::Now());
    std::remove(token_path_.c_str());
    std::remove(dir_.c_str());
  }

  grpc::Status ExportGrpc(const std::string& authorization, int spans) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    otlp_collector::ExportTraceServiceResponse response;
    return stub_->Export(&context, MakeRequest(spans), &response);
  }

  RawHttpResponse PostHttp(const std::string& authorization, int spans) {
    return PostHttpBody(authorization, "application/x-protobuf",
                        MakeRequest(spans).SerializeAsString());
  }
  RawHttpResponse PostHttpBody(const std::string& authorization, const std::string& content_type,
                               const std::string& body) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", content_type}};
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    auto response = SendRaw(http_->port(),
                            tracekeep::testing::MakeRequest("POST", "/v1/traces", headers, body));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : RawHttpResponse{};
  }

  std::string dir_;
  std::string token_path_;
  FakeClock clock_;
  std::unique_ptr<security::TokenFile> tokens_;
  std::unique_ptr<security::ClientLimits> limits_;
  FakeIntake intake_;
  ReceiverStats stats_;
  std::unique_ptr<GrpcReceiver> grpc_;
  std::unique_ptr<HttpReceiver> http_;
  std::unique_ptr<otlp_collector::TraceService::Stub> stub_;
};

TEST_F(ClientAuthTest, GrpcNeedsAKnownBearerToken) {
  grpc::Status missing = ExportGrpc("", 2);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("missing bearer token"));
  grpc::Status unknown = ExportGrpc("Bearer not-a-token-of-the-file", 2);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(unknown.error_message(), Not(HasSubstr("not-a-token")));
  EXPECT_EQ(intake_.spans(), 0);

  grpc::Status ok = ExportGrpc(absl::StrCat("Bearer ", kShopToken), 2);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(intake_.spans(), 2);
  EXPECT_EQ(stats_.requests_refused(Transport::kGrpc, RefuseReason::kUnauthenticated), 2u);
  EXPECT_EQ(tokens_->failures(security::AuthFailure::kMissing), 1u);
  EXPECT_EQ(tokens_->failures(security::AuthFailure::kUnknown), 1u);
  EXPECT_EQ(limits_->CountersOf("shop-api")->spans.load(), 2u);
}

TEST_F(ClientAuthTest, HttpAnswers401WithoutAKnownToken) {
  RawHttpResponse missing = PostHttp("", 2);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.Header("www-authenticate"), "Bearer");
  RawHttpResponse basic = PostHttp("Basic dXNlcjpwYXNz", 2);
  EXPECT_EQ(basic.status, 401);
  EXPECT_EQ(tokens_->failures(security::AuthFailure::kMalformed), 1u);
  EXPECT_EQ(intake_.spans(), 0);

  RawHttpResponse ok = PostHttp(absl::StrCat("Bearer ", kShopToken), 3);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(intake_.spans(), 3);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kUnauthenticated), 2u);
}

// The token is checked on the headers: a request with a bad one and a large body announced but
// never sent is answered 401 at once and its connection closed, without waiting for the body
// (the read timeout is 10 s; the test allows 5).
TEST_F(ClientAuthTest, HttpRefusesABadTokenBeforeReadingTheBody) {
  const int fd = Connect(http_->port());
  const std::string head =
      "POST /v1/traces HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\n"
      "Authorization: Bearer not-a-token-of-the-file\r\nContent-Length: 10000000\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  bool closed = false;
  const std::string reply =
      ReadUntil(fd, absl::Seconds(5), &closed, [](const std::string&) { return false; });
  close(fd);
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 401 "));
  EXPECT_THAT(reply, HasSubstr("WWW-Authenticate: Bearer\r\n"));
  EXPECT_THAT(reply, HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(closed) << "the connection stayed open, waiting for the body";
  EXPECT_EQ(tokens_->failures(security::AuthFailure::kUnknown), 1u);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kUnauthenticated), 1u);
  // The server threads are free: a valid request is served at once.
  EXPECT_EQ(PostHttp(absl::StrCat("Bearer ", kShopToken), 2).status, 200);
  EXPECT_EQ(intake_.spans(), 2);
}

// A refused request whose small body was sent whole keeps its connection: the body is read and
// dropped after the 401, and the next request on the connection is served.
TEST_F(ClientAuthTest, HttpKeepsTheConnectionAfterRefusingASmallBody) {
  const std::string body = MakeRequest(3).SerializeAsString();
  auto request = [&body](const std::string& token) {
    return absl::StrCat(
        "POST /v1/traces HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\n"
        "Authorization: Bearer ",
        token, "\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  };
  const int fd = Connect(http_->port());
  const std::string refused = request("not-a-token-of-the-file");
  ASSERT_EQ(send(fd, refused.data(), refused.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(refused.size()));
  bool closed = false;
  std::string reply = ReadUntil(fd, absl::Seconds(10), &closed, WholeResponse);
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 401 "));
  ASSERT_FALSE(closed);
  const std::string accepted = request(kShopToken);
  ASSERT_EQ(send(fd, accepted.data(), accepted.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(accepted.size()));
  reply = ReadUntil(fd, absl::Seconds(10), &closed, WholeResponse);
  close(fd);
  EXPECT_THAT(reply, ::testing::StartsWith("HTTP/1.1 200 "));
  EXPECT_EQ(intake_.spans(), 3);
}

TEST_F(ClientAuthTest, ANoisyClientIsRefusedRetryablyWhileOthersPass) {
  const std::string batch = absl::StrCat("Bearer ", kBatchToken);
  // batch-job may send 5 spans/s: the first request empties its bucket, the next is refused.
  ASSERT_TRUE(ExportGrpc(batch, 6).ok());
  grpc::Status refused = ExportGrpc(batch, 1);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("\"batch-job\" is over its limit"));
  EXPECT_THAT(refused.error_details(), HasSubstr(kRetryInfoTypeUrl));
  RawHttpResponse http_refused = PostHttp(batch, 1);
  EXPECT_EQ(http_refused.status, 429);
  EXPECT_EQ(http_refused.Header("retry-after"), "2");

  // shop-api is unlimited and unaffected.
  EXPECT_TRUE(ExportGrpc(absl::StrCat("Bearer ", kShopToken), 50).ok());
  EXPECT_EQ(PostHttp(absl::StrCat("Bearer ", kShopToken), 50).status, 200);
  EXPECT_EQ(intake_.spans(), 106);

  // Refused spans are counted under rate_limited, per transport and per client.
  EXPECT_EQ(stats_.spans_refused(Transport::kGrpc, RefuseReason::kRateLimited), 1u);
  EXPECT_EQ(stats_.spans_refused(Transport::kHttp, RefuseReason::kRateLimited), 1u);
  EXPECT_EQ(limits_->CountersOf("batch-job")->refused_requests.load(), 2u);

  // Two seconds later the bucket is full again.
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(ExportGrpc(batch, 1).ok());
}

TEST_F(ClientAuthTest, ARotatedTokenWorksAfterReloadOnTheSameConnection) {
  ASSERT_TRUE(ExportGrpc(absl::StrCat("Bearer ", kShopToken), 1).ok());
  std::ofstream(token_path_, std::ios::trunc) << "shop-api rotated-token-0123456789\n";
  ASSERT_TRUE(tokens_->ReloadIfChanged());
  EXPECT_EQ(ExportGrpc(absl::StrCat("Bearer ", kShopToken), 1).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(ExportGrpc("Bearer rotated-token-0123456789", 1).ok());
}

// The client's name from its token is on the resource of every span it sends, whatever the
// client put under that key itself (here: another client's name, on the resource and a span).
TEST_F(ClientAuthTest, TheAuthenticatedClientsNameIsPutOnEverySpan) {
  OtlpRequest forged = MakeRequest(2);
  for (auto* attrs : {forged.mutable_resource_spans(0)->mutable_resource()->mutable_attributes(),
                      forged.mutable_resource_spans(0)
                          ->mutable_scope_spans(0)
                          ->mutable_spans(0)
                          ->mutable_attributes()}) {
    auto* kv = attrs->Add();
    kv->set_key("tracekeep.client");
    kv->mutable_value()->set_string_value("shop-api");
  }
  const std::string batch = absl::StrCat("Bearer ", kBatchToken);
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", batch);
    otlp_collector::ExportTraceServiceResponse response;
    ASSERT_TRUE(stub_->Export(&context, forged, &response).ok());
  }
  EXPECT_EQ(PostHttpBody(batch, "application/x-protobuf", forged.SerializeAsString()).status, 200);
  const std::string json = R"({"resourceSpans":[{"resource":{"attributes":[
      {"key":"tracekeep.client","value":{"stringValue":"shop-api"}}]},"scopeSpans":[{"spans":[
      {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"j",
       "attributes":[{"key":"tracekeep.client","value":{"stringValue":"shop-api"}}]}]}]}]})";
  EXPECT_EQ(PostHttpBody(batch, "application/json", json).status, 200);
  EXPECT_EQ(PostHttp(absl::StrCat("Bearer ", kShopToken), 1).status, 200);

  std::vector<std::string> clients;  // per span: its resource's tracekeep.client values
  for (const TraceSpans& t : intake_.traces()) {
    for (const SpanRecord& span : t.spans) {
      opentelemetry::proto::resource::v1::Resource resource;
      ASSERT_TRUE(resource.ParseFromString(span.origin->resource));
      std::string values;
      for (const auto& kv : resource.attributes()) {
        if (kv.key() == "tracekeep.client")
          absl::StrAppend(&values, kv.value().string_value(), ";");
      }
      clients.push_back(values);
      EXPECT_THAT(span.span, Not(HasSubstr("tracekeep.client")));
    }
  }
  EXPECT_THAT(clients, ::testing::UnorderedElementsAre("batch-job;", "batch-job;", "batch-job;",
                                                       "batch-job;", "batch-job;", "shop-api;"));
}

TEST(ClientAttributeOptionTest, NeedsTokens) {
  FakeIntake intake;
  ReceiverStats stats;
  GrpcReceiverOptions grpc_options;
  grpc_options.auth.client_attribute = "tracekeep.client";
  auto grpc_receiver = GrpcReceiver::Create(grpc_options, &intake, &stats);
  EXPECT_THAT(grpc_receiver.status().message(),
              HasSubstr("auth.client_attribute \"tracekeep.client\" needs auth.tokens"));
  HttpReceiverOptions http_options;
  http_options.auth.client_attribute = "tracekeep.client";
  auto http_receiver = HttpReceiver::Create(http_options, &intake, &stats);
  EXPECT_THAT(http_receiver.status().message(), HasSubstr("needs auth.tokens"));
}

}  // namespace
}  // namespace tracekeep::receiver
