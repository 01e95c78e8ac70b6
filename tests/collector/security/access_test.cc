#include "collector/security/access.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::security {
namespace {

using ::testing::HasSubstr;

NetworkAllowList MustParse(const std::vector<std::string>& cidrs) {
  auto list = NetworkAllowList::Parse(cidrs, "x");
  EXPECT_TRUE(list.ok()) << list.status();
  return list.ok() ? *list : NetworkAllowList();
}

TEST(NetworkAllowListTest, EmptyAllowsEveryone) {
  NetworkAllowList list;
  EXPECT_TRUE(list.AllowsAddress("203.0.113.9"));
  EXPECT_TRUE(list.AllowsGrpcPeer("ipv6:[2001:db8::1]:443"));
}

TEST(NetworkAllowListTest, MatchesIpv4Networks) {
  NetworkAllowList list = MustParse({"10.0.0.0/8", "192.168.1.7"});
  EXPECT_TRUE(list.AllowsAddress("10.255.1.2"));
  EXPECT_TRUE(list.AllowsAddress("192.168.1.7"));
  EXPECT_FALSE(list.AllowsAddress("192.168.1.8"));
  EXPECT_FALSE(list.AllowsAddress("11.0.0.1"));
  EXPECT_TRUE(list.AllowsAddress("::ffff:10.1.2.3"));  // IPv4-mapped IPv6
  EXPECT_FALSE(list.AllowsAddress("not an address"));
}

TEST(NetworkAllowListTest, MatchesIpv6NetworksAndOddPrefixes) {
  NetworkAllowList list = MustParse({"::1/128", "2001:db8::/33", "172.16.0.0/12"});
  EXPECT_TRUE(list.AllowsAddress("::1"));
  EXPECT_TRUE(list.AllowsAddress("2001:db8:7fff::1"));
  EXPECT_FALSE(list.AllowsAddress("2001:db8:8000::1"));  // outside the 33-bit prefix
  EXPECT_TRUE(list.AllowsAddress("172.31.255.255"));
  EXPECT_FALSE(list.AllowsAddress("172.32.0.0"));
}

TEST(NetworkAllowListTest, ReadsGrpcPeerStrings) {
  NetworkAllowList list = MustParse({"127.0.0.0/8", "::1"});
  EXPECT_TRUE(list.AllowsGrpcPeer("ipv4:127.0.0.1:53412"));
  EXPECT_TRUE(list.AllowsGrpcPeer("ipv6:[::1]:53412"));
  EXPECT_TRUE(list.AllowsGrpcPeer("ipv6:[::ffff:127.0.0.1]:1"));
  EXPECT_TRUE(list.AllowsGrpcPeer("unix:/run/tracekeep.sock"));
  EXPECT_FALSE(list.AllowsGrpcPeer("ipv4:10.0.0.1:1"));
  EXPECT_FALSE(list.AllowsGrpcPeer("ipv6:[fe80::1%25eth0]:1"));
  EXPECT_FALSE(list.AllowsGrpcPeer("garbage"));
}

TEST(NetworkAllowListTest, BadEntriesAreNamed) {
  auto bad = NetworkAllowList::Parse({"10.0.0.0/8", "10.0.0.300/8"}, "admin.allowed_networks");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "admin.allowed_networks[1]: \"10.0.0.300/8\" is not an IP address or CIDR network");
  auto prefix = NetworkAllowList::Parse({"10.0.0.0/33"}, "p");
  ASSERT_FALSE(prefix.ok());
  EXPECT_THAT(std::string(prefix.status().message()),
              HasSubstr("invalid prefix length (want 0..32)"));
}

TEST(TokenTest, BearerTokenMustMatchExactly) {
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cret2", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer ", ""));
}

TEST(TokenTest, ReadsTheFirstLineOfATokenFile) {
  const std::string path = ::testing::TempDir() + "/token";
  std::ofstream(path) << "  abc123 \nignored\n";
  auto token = ReadTokenFile(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc123");
  std::ofstream(path) << "\n";
  EXPECT_THAT(std::string(ReadTokenFile(path).status().message()), HasSubstr("is empty"));
  EXPECT_THAT(std::string(ReadTokenFile("/nonexistent/t").status().message()),
              HasSubstr("/nonexistent/t"));
}

TEST(TlsTest, ValidationNamesEachProblem) {
  TlsSettings tls;
  EXPECT_TRUE(ValidateTls(tls, "x.tls").empty());
  tls.key_file = "/nonexistent/key.pem";
  auto problems = ValidateTls(tls, "x.tls");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], "x.tls.cert_file: must be set when key_file or client_ca_file is");
  EXPECT_EQ(problems[1], "x.tls.key_file: cannot read \"/nonexistent/key.pem\"");
}

}  // namespace
}  // namespace tracekeep::security
