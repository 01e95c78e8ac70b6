// Malformed and hostile OTLP/HTTP clients: slowloris, many idle connections, a 2 GiB
// Content-Length, deep JSON. None may exhaust threads, memory or file descriptors, and the
// receiver serves normal requests again once they are gone.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/receiver/http_receiver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/http/raw_http_client.h"
#include "tests/collector/receiver/fake_intake.h"

namespace tracekeep::receiver {
namespace {

using ::tracekeep::testing::RawHttpResponse;
using ::tracekeep::testing::SendRaw;

constexpr int kThreads = 2;

int OpenFds() {
  int n = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dir != nullptr && readdir(dir) != nullptr) ++n;
  if (dir != nullptr) closedir(dir);
  return n;
}

// A connected TCP socket to 127.0.0.1:port (blocking connect: the kernel completes it from the
// listen backlog even while no server thread is free).
int Connect(int port, bool nonblocking = false) {
  const int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  return fd;
}

// Whether the server closed `fd` (poll says readable and recv returns 0 or an error), waiting
// up to `timeout` while sending one more header byte every `trickle` (a slowloris client).
bool ClosedByServer(int fd, absl::Duration timeout, absl::Duration trickle) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(trickle))) > 0) {
      char buf[256];
      const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) return true;
      continue;  // an error answer: keep reading until the close
    }
    if (send(fd, "X", 1, MSG_NOSIGNAL) < 0) return true;
  }
  return false;
}

class HostileClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpReceiverOptions options;
    options.endpoint = "127.0.0.1:0";
    options.max_request_bytes = 1 << 20;
    options.num_threads = kThreads;
    options.read_timeout = absl::Milliseconds(300);
    auto receiver = HttpReceiver::Create(options, &intake_, &stats_);
    ASSERT_TRUE(receiver.ok()) << receiver.status();
    receiver_ = std::move(receiver).value();
    ASSERT_TRUE(receiver_->Start().ok());
  }
  void TearDown() override { receiver_->Shutdown(absl::Now()); }

  int PostValid() {
    auto response = SendRaw(receiver_->port(),
                            tracekeep::testing::MakeRequest(
                                "POST", "/v1/traces", {{"Content-Type", "application/x-protobuf"}},
                                MakeRequest(2).SerializeAsString()));
    return response.ok() ? response->status : -1;
  }

  FakeIntake intake_;
  ReceiverStats stats_;
  std::unique_ptr<HttpReceiver> receiver_;
};

TEST_F(HostileClientTest, SlowlorisIsDisconnectedAfterTheReadTimeoutAndOthersAreServed) {
  // As many trickling clients as there are threads: each sends a header byte every 50 ms, never
  // finishing its headers. The header deadline is a total, not per read: they are cut off.
  std::vector<int> slow;
  for (int i = 0; i < kThreads; ++i) {
    slow.push_back(Connect(receiver_->port()));
    const std::string start = "POST /v1/traces HTTP/1.1\r\nHost: a\r\nX-Slow: ";
    ASSERT_EQ(send(slow.back(), start.data(), start.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(start.size()));
  }
  for (int fd : slow) {
    EXPECT_TRUE(ClosedByServer(fd, absl::Seconds(10), absl::Milliseconds(50)));
    close(fd);
  }
  EXPECT_EQ(PostValid(), 200);
}

TEST_F(HostileClientTest, ASilentBodyIsCutOff) {
  // Headers complete, a body announced but never sent.
  const int fd = Connect(receiver_->port());
  const std::string head =
      "POST /v1/traces HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\n"
      "Content-Length: 1000\r\n\r\nabc";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  EXPECT_TRUE(ClosedByServer(fd, absl::Seconds(10), absl::Seconds(10)));
  close(fd);
  EXPECT_EQ(PostValid(), 200);
  EXPECT_EQ(intake_.spans(), 2);
}

TEST_F(HostileClientTest, ManyIdleConnectionsTakeNoMoreThanTheirQueue) {
  const int before = OpenFds();
  constexpr int kIdle = 1000;
  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) idle.push_back(Connect(receiver_->port(), /*nonblocking=*/true));
  // The server accepts what its threads and its accept queue hold; the rest waits in the
  // kernel's backlog, costing the process nothing. Give it time to accept all it will.
  int server_fds = 0;
  for (int i = 0; i < 20; ++i) {
    pollfd p{idle[0], POLLIN, 0};
    poll(&p, 1, 25);  // a bounded wait for the accept loop, not a condition we can observe
    server_fds = OpenFds() - before - kIdle;
  }
  EXPECT_LE(server_fds, kThreads + 20 + 8) << "the server holds an fd per idle connection";
  for (int fd : idle) close(fd);
  // Once they are gone the receiver serves again at once.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  int status = -1;
  while (status != 200 && absl::Now() < deadline) status = PostValid();
  EXPECT_EQ(status, 200);
}

TEST_F(HostileClientTest, A2GiBContentLengthIsRefusedBeforeAnyRead) {
  auto response = SendRaw(
      receiver_->port(),
      tracekeep::testing::MakeRequest(
          "POST", "/v1/traces",
          {{"Content-Type", "application/x-protobuf"}, {"Content-Length", "2147483648"}}, "",
          /*add_length=*/false));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(stats_.requests_refused(Transport::kHttp, RefuseReason::kTooLarge), 1u);
}

TEST_F(HostileClientTest, DeeplyNestedJsonIs400NotAStackOverflow) {
  for (int depth : {1000, 20000}) {  // 20000 levels: ~600 KiB, under the 1 MiB limit
    std::string body =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":";
    for (int i = 0; i < depth; ++i) body += "{\"arrayValue\":{\"values\":[";
    for (int i = 0; i < depth; ++i) body += "]}}";
    body += "}]}}]}";
    auto response = SendRaw(
        receiver_->port(), tracekeep::testing::MakeRequest(
                               "POST", "/v1/traces", {{"Content-Type", "application/json"}}, body));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 400) << "depth " << depth << ": " << response->body.substr(0, 200);
  }
  EXPECT_EQ(PostValid(), 200);
}

}  // namespace
}  // namespace tracekeep::receiver
