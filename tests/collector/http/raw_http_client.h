// A minimal blocking HTTP/1.1 client over a raw socket, for tests: sends the bytes given (so a
// test controls framing: Content-Length, chunked, partial bodies) and reads the reply until the
// server closes the connection.
#ifndef TRACEKEEP_TESTS_COLLECTOR_HTTP_RAW_HTTP_CLIENT_H_
#define TRACEKEEP_TESTS_COLLECTOR_HTTP_RAW_HTTP_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tracekeep::testing {

struct RawHttpResponse {
  int status = 0;
  absl::flat_hash_map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// "POST /path HTTP/1.1" with the given headers, Content-Length (unless a header sets
// Transfer-Encoding or `add_length` is false) and "Connection: close".
inline std::string MakeRequest(const std::string& method, const std::string& path,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& body, bool add_length = true) {
  std::string out = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&out, name, ": ", value, "\r\n");
  if (add_length) absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&out, "Connection: close\r\n\r\n", body);
  return out;
}

// Sends `raw` to 127.0.0.1:port and parses the reply (skipping "100 Continue").
inline absl::StatusOr<RawHttpResponse> SendRaw(int port, const std::string& raw) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  timeval timeout{10, 0};  // a hung server fails the test instead of blocking it
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string error = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect to port ", port, ": ", error));
  }
  size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (413); read what it answered
    sent += static_cast<size_t>(n);
  }
  // Reads until the server closes, or until the body announced by Content-Length is complete
  // (a server that refused a body it did not read may keep the connection open meanwhile).
  std::string reply;
  char buf[16384];
  while (true) {
    const size_t head_end = reply.find("\r\n\r\n");
    if (head_end != std::string::npos && reply.compare(0, 12, "HTTP/1.1 100") != 0) {
      const std::string head = absl::AsciiStrToLower(reply.substr(0, head_end));
      const size_t at = head.find("\r\ncontent-length:");
      size_t length = 0;
      if (at != std::string::npos &&
          absl::SimpleAtoi(
              absl::StripAsciiWhitespace(head.substr(at + 17, head.find("\r\n", at + 2) - at - 17)),
              &length) &&
          reply.size() >= head_end + 4 + length) {
        break;
      }
    } else if (head_end != std::string::npos) {
      reply = reply.substr(head_end + 4);  // interim 100 Continue
      continue;
    }
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  RawHttpResponse response;
  while (true) {
    const size_t head_end = reply.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      return absl::DataLossError(absl::StrCat("incomplete reply: \"", reply, "\""));
    }
    std::vector<std::string> lines = absl::StrSplit(reply.substr(0, head_end), "\r\n");
    std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
    if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &response.status)) {
      return absl::DataLossError(absl::StrCat("bad status line: \"", lines[0], "\""));
    }
    reply = reply.substr(head_end + 4);
    if (response.status == 100) continue;
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    break;
  }
  size_t length = 0;
  if (absl::SimpleAtoi(response.Header("content-length"), &length) && length < reply.size()) {
    reply.resize(length);
  }
  response.body = std::move(reply);
  return response;
}

}  // namespace tracekeep::testing

#endif  // TRACEKEEP_TESTS_COLLECTOR_HTTP_RAW_HTTP_CLIENT_H_
