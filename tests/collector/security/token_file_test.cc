#include "collector/security/token_file.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::security {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kShopToken[] = "shop-0123456789abcdef";
constexpr char kCrmToken[] = "crm-0123456789abcdef";

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/token_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/tokens";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove(dir_.c_str());
  }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  std::string dir_;
  std::string path_;
};

TEST(TokenTableTest, ParsesNamesAndTokensSkippingCommentsAndBlankLines) {
  auto table = TokenTable::Parse(
      absl::StrCat("# OTLP clients\n\nshop-api ", kShopToken, "\n  crm-api\t", kCrmToken, "  \n"),
      "tokens", /*with_roles=*/false);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_NE(table->Find(kShopToken), nullptr);
  EXPECT_EQ(table->Find(kShopToken)->name, "shop-api");
  EXPECT_EQ(table->Find(kCrmToken)->name, "crm-api");
  EXPECT_EQ(table->Find("shop-0123456789abcdeX"), nullptr);
  EXPECT_THAT(table->Names(), ElementsAre("crm-api", "shop-api"));
}

TEST(TokenTableTest, ParsesRoles) {
  auto table = TokenTable::Parse(
      absl::StrCat("alice operator ", kShopToken, "\nbob viewer ", kCrmToken, "\n"), "admin-tokens",
      /*with_roles=*/true);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->Find(kShopToken)->role, Role::kOperator);
  EXPECT_EQ(table->Find(kCrmToken)->role, Role::kViewer);
}

TEST(TokenTableTest, ErrorsNameTheLineButNeverTheToken) {
  const std::string secret = "s3cr3t-token-value-0001";
  auto table = TokenTable::Parse(absl::StrCat("shop-api ", secret, "\n", secret, " shop-api\n",
                                              "crm-api ", secret, "\nx short\n"),
                                 "tokens", false);
  ASSERT_FALSE(table.ok());
  const std::string message(table.status().message());
  EXPECT_THAT(message, HasSubstr("tokens:3: the same token as line 1"));
  EXPECT_THAT(message, HasSubstr("tokens:4: the token (last field) is shorter than 16"));
  EXPECT_THAT(message, Not(HasSubstr(secret)));
}

TEST(TokenTableTest, RefusesUnknownRolesAndEmptyFiles) {
  auto bad_role = TokenTable::Parse(absl::StrCat("alice admin ", kShopToken), "t", true);
  EXPECT_THAT(bad_role.status().message(), HasSubstr("t:1: the role (second field) must be"));
  auto empty = TokenTable::Parse("# nothing\n", "t", false);
  EXPECT_THAT(empty.status().message(), HasSubstr("holds no token"));
}

TEST_F(TokenFileTest, AuthenticatesBearerHeadersAndCountsFailuresByReason) {
  Write(absl::StrCat("shop-api ", kShopToken, "\n"));
  auto file = TokenFile::Load(path_, false);
  ASSERT_TRUE(file.ok()) << file.status();
  auto holder = (*file)->Authenticate(absl::StrCat("Bearer ", kShopToken));
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->name, "shop-api");
  EXPECT_TRUE((*file)->Authenticate(absl::StrCat("bearer ", kShopToken)).ok());

  AuthFailure failure;
  auto missing = (*file)->Authenticate("", &failure);
  EXPECT_TRUE(absl::IsUnauthenticated(missing.status()));
  EXPECT_EQ(failure, AuthFailure::kMissing);
  auto basic = (*file)->Authenticate("Basic dXNlcjpwYXNz", &failure);
  EXPECT_EQ(failure, AuthFailure::kMalformed);
  auto unknown = (*file)->Authenticate("Bearer not-a-known-token-at-all", &failure);
  EXPECT_EQ(failure, AuthFailure::kUnknown);
  EXPECT_THAT(unknown.status().message(), Not(HasSubstr("not-a-known")));
  EXPECT_EQ((*file)->failures(AuthFailure::kMissing), 1u);
  EXPECT_EQ((*file)->failures(AuthFailure::kMalformed), 1u);
  EXPECT_EQ((*file)->failures(AuthFailure::kUnknown), 1u);
}

TEST_F(TokenFileTest, ReloadsOnChangeAndKeepsOldTokensWhenTheNewFileIsBad) {
  Write(absl::StrCat("shop-api ", kShopToken, "\n"));
  auto loaded = TokenFile::Load(path_, false);
  ASSERT_TRUE(loaded.ok());
  TokenFile& file = **loaded;
  EXPECT_FALSE(file.ReloadIfChanged());  // unchanged
  EXPECT_EQ(file.reloads(), 0u);

  // Rotation: the new token works, the old one no longer does.
  Write(absl::StrCat("shop-api ", kCrmToken, "\n"));
  EXPECT_TRUE(file.ReloadIfChanged());
  EXPECT_TRUE(file.Authenticate(absl::StrCat("Bearer ", kCrmToken)).ok());
  EXPECT_FALSE(file.Authenticate(absl::StrCat("Bearer ", kShopToken)).ok());
  EXPECT_EQ(file.reloads(), 1u);

  // A broken file keeps the tokens in force, and is counted.
  Write("shop-api\n");
  EXPECT_FALSE(file.ReloadIfChanged());
  EXPECT_EQ(file.reload_failures(), 1u);
  EXPECT_TRUE(file.Authenticate(absl::StrCat("Bearer ", kCrmToken)).ok());
  EXPECT_FALSE(file.ReloadIfChanged());  // the same broken contents: not tried again

  std::remove(path_.c_str());
  EXPECT_FALSE(file.Reload().ok());
  EXPECT_TRUE(file.Authenticate(absl::StrCat("Bearer ", kCrmToken)).ok());
}

TEST(Sha256Test, SaltedHexDigest) {
  // sha256("abc")
  EXPECT_EQ(Sha256Hex("", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("a", "bc"), Sha256Hex("", "abc"));
  EXPECT_NE(Sha256Hex("salt", "abc"), Sha256Hex("", "abc"));
}

}  // namespace
}  // namespace tracekeep::security
