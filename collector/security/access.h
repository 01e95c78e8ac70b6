// Who may talk to tracekeep: TLS settings, allowed client networks, the admin token.
// (The design note asks for access only from trusted addresses, only for authorized people,
// only over secure protocols.)
#ifndef TRACEKEEP_COLLECTOR_SECURITY_ACCESS_H_
#define TRACEKEEP_COLLECTOR_SECURITY_ACCESS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracekeep::security {

// Server-side TLS. Empty cert_file = plaintext.
struct TlsSettings {
  std::string cert_file;       // PEM certificate chain of this server
  std::string key_file;        // PEM private key of cert_file
  std::string client_ca_file;  // when set, clients must present a certificate signed by it
  bool enabled() const { return !cert_file.empty(); }
};

// Problems of `tls` (files missing or unreadable, key without cert...), prefixed with `path`.
std::vector<std::string> ValidateTls(const TlsSettings& tls, const std::string& path);

// A list of networks in CIDR notation ("10.0.0.0/8", "127.0.0.1", "::1/128"). An empty list
// allows every address.
class NetworkAllowList {
 public:
  NetworkAllowList() = default;
  // The error names the entry and its position: `<path>[2]: "10.0.0.300/8" is not ...`.
  [[nodiscard]] static absl::StatusOr<NetworkAllowList> Parse(const std::vector<std::string>& cidrs,
                                                              const std::string& path);
  bool empty() const { return networks_.empty(); }
  // `address` is an IP address ("10.1.2.3", "::1", "::ffff:10.1.2.3").
  bool AllowsAddress(absl::string_view address) const;
  // `peer` is gRPC's ServerContext::peer(): "ipv4:10.1.2.3:5555", "ipv6:[::1]:5555",
  // "unix:..." (a Unix socket is local and always allowed).
  bool AllowsGrpcPeer(absl::string_view peer) const;

 private:
  struct Network {
    std::array<uint8_t, 16> address{};  // IPv4 as IPv4-mapped IPv6
    int prefix_bits = 0;                // of the 128
  };
  std::vector<Network> networks_;
};

// Reads a token file (first line, surrounding whitespace removed). Fails on an empty token.
[[nodiscard]] absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// True when `authorization` is "Bearer <token>". Constant time in the token's length.
bool BearerTokenMatches(absl::string_view authorization, absl::string_view token);

}  // namespace tracekeep::security

#endif  // TRACEKEEP_COLLECTOR_SECURITY_ACCESS_H_
