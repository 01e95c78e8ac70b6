#include "collector/security/access.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tracekeep::security {
namespace {

bool ParseAddress(absl::string_view text, std::array<uint8_t, 16>* out, bool* is_v4) {
  const std::string s(text);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out->fill(0);
    (*out)[10] = 0xff;
    (*out)[11] = 0xff;
    std::memcpy(out->data() + 12, &v4, 4);
    *is_v4 = true;
    return true;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out->data(), &v6, 16);
    *is_v4 = false;
    return true;
  }
  return false;
}

bool Readable(const std::string& file) { return access(file.c_str(), R_OK) == 0; }

}  // namespace

std::vector<std::string> ValidateTls(const TlsSettings& tls, const std::string& path) {
  std::vector<std::string> problems;
  if (tls.cert_file.empty() && (!tls.key_file.empty() || !tls.client_ca_file.empty())) {
    problems.push_back(absl::StrCat(path,
                                    ".cert_file: must be set when key_file or "
                                    "client_ca_file is"));
  }
  if (!tls.cert_file.empty() && tls.key_file.empty()) {
    problems.push_back(absl::StrCat(path, ".key_file: must be set with cert_file"));
  }
  for (const auto& [key, file] :
       {std::pair<const char*, const std::string&>{"cert_file", tls.cert_file},
        {"key_file", tls.key_file},
        {"client_ca_file", tls.client_ca_file}}) {
    if (!file.empty() && !Readable(file)) {
      problems.push_back(absl::StrCat(path, ".", key, ": cannot read \"", file, "\""));
    }
  }
  return problems;
}

absl::StatusOr<NetworkAllowList> NetworkAllowList::Parse(const std::vector<std::string>& cidrs,
                                                         const std::string& path) {
  NetworkAllowList list;
  for (size_t i = 0; i < cidrs.size(); ++i) {
    const std::string& entry = cidrs[i];
    const size_t slash = entry.find('/');
    const absl::string_view address = slash == std::string::npos
                                          ? absl::string_view(entry)
                                          : absl::string_view(entry).substr(0, slash);
    Network network;
    bool is_v4 = false;
    if (!ParseAddress(address, &network.address, &is_v4)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, "[", i, "]: \"", entry, "\" is not an IP address or CIDR network"));
    }
    int bits = is_v4 ? 32 : 128;
    if (slash != std::string::npos &&
        (!absl::SimpleAtoi(absl::string_view(entry).substr(slash + 1), &bits) || bits < 0 ||
         bits > (is_v4 ? 32 : 128))) {
      return absl::InvalidArgumentError(absl::StrCat(path, "[", i, "]: \"", entry,
                                                     "\" has an invalid prefix length (want 0..",
                                                     is_v4 ? 32 : 128, ")"));
    }
    network.prefix_bits = is_v4 ? bits + 96 : bits;
    list.networks_.push_back(network);
  }
  return list;
}

bool NetworkAllowList::AllowsAddress(absl::string_view address) const {
  if (networks_.empty()) return true;
  std::array<uint8_t, 16> a;
  bool is_v4;
  if (!ParseAddress(address, &a, &is_v4)) return false;
  for (const Network& n : networks_) {
    int bits = n.prefix_bits;
    bool match = true;
    for (int byte = 0; byte < 16 && bits > 0; ++byte, bits -= 8) {
      const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
      if ((a[byte] & mask) != (n.address[byte] & mask)) {
        match = false;
        break;
      }
    }
    if (match) return true;
  }
  return false;
}

bool NetworkAllowList::AllowsGrpcPeer(absl::string_view peer) const {
  if (networks_.empty() || absl::StartsWith(peer, "unix:")) return true;
  absl::string_view rest;
  if (absl::StartsWith(peer, "ipv4:")) {
    rest = peer.substr(5);
    return AllowsAddress(rest.substr(0, rest.rfind(':')));
  }
  if (absl::StartsWith(peer, "ipv6:")) {
    rest = peer.substr(5);
    const size_t close = rest.find(']');
    if (rest.empty() || rest[0] != '[' || close == absl::string_view::npos) return false;
    // "%25" is a URL-escaped zone index: the address itself stops there.
    absl::string_view address = rest.substr(1, close - 1);
    address = address.substr(0, address.find("%25"));
    return AllowsAddress(address);
  }
  return false;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file \"", path, "\""));
  std::string line;
  std::getline(in, line);
  const std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file \"", path, "\" is empty"));
  }
  return token;
}

bool BearerTokenMatches(absl::string_view authorization, absl::string_view token) {
  constexpr absl::string_view kPrefix = "Bearer ";
  if (!absl::StartsWith(authorization, kPrefix) || token.empty()) return false;
  const absl::string_view given = authorization.substr(kPrefix.size());
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

}  // namespace tracekeep::security
