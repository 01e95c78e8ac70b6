// Admin roles (viewer, operator) from tokens and client certificates, and the audit log.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collector/admin/admin_server.h"
#include "collector/admin/audit_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/admin/fake_admin_backend.h"
#include "tracekeep/admin/v1/admin.grpc.pb.h"

namespace tracekeep::admin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tracekeep::testing::FakeAdminBackend;
using ::tracekeep::testing::InMemorySpanStore;

constexpr char kOperatorToken[] = "alice-operator-0123456789";
constexpr char kViewerToken[] = "bob-viewer-0123456789";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class AdminRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/admin_roles_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    std::ofstream(dir_ + "/admin-tokens")
        << "alice operator " << kOperatorToken << "\nbob viewer " << kViewerToken << "\n";
    auto tokens = security::TokenFile::Load(dir_ + "/admin-tokens", /*with_roles=*/true);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = std::move(tokens).value();
    auto audit = AuditLog::Open(dir_ + "/audit.log");
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(audit).value();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Now());
    ASSERT_EQ(std::system(absl::StrCat("rm -rf ", dir_).c_str()), 0);
  }

  void Start(AdminServerOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials =
                                             grpc::InsecureChannelCredentials()) {
    options.endpoint = "127.0.0.1:0";
    options.tokens = tokens_.get();
    options.audit = audit_.get();
    auto server = AdminServer::Start(options, &backend_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    stub_ =
        v1::AdminService::NewStub(grpc::CreateCustomChannel(server_->address(), credentials, args));
  }

  grpc::Status GetStatus(const std::string& token) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::GetStatusResponse response;
    return stub_->GetStatus(&context, v1::GetStatusRequest(), &response);
  }
  grpc::Status SetPolicies(const std::string& token, const std::string& yaml) {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::SetPoliciesRequest request;
    request.set_policies_yaml(yaml);
    v1::SetPoliciesResponse response;
    return stub_->SetPolicies(&context, request, &response);
  }

  std::vector<std::string> AuditLines() {
    return absl::StrSplit(ReadAll(dir_ + "/audit.log"), '\n', absl::SkipEmpty());
  }

  std::string dir_;
  std::unique_ptr<security::TokenFile> tokens_;
  std::unique_ptr<AuditLog> audit_;
  InMemorySpanStore store_;
  FakeAdminBackend backend_{&store_};
  AdminServerPtr server_;
  std::unique_ptr<v1::AdminService::Stub> stub_;
};

TEST_F(AdminRolesTest, ViewersReadOperatorsChange) {
  Start(AdminServerOptions());
  EXPECT_TRUE(GetStatus(kViewerToken).ok());
  EXPECT_TRUE(GetStatus(kOperatorToken).ok());

  grpc::Status denied = SetPolicies(kViewerToken, "- name: none\n");
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(),
              HasSubstr("SetPolicies needs the operator role; \"bob\" has the viewer role"));
  EXPECT_EQ(backend_.GetPolicies(), "- name: all\n  type: always_sample\n");  // unchanged

  EXPECT_TRUE(SetPolicies(kOperatorToken, "- name: none\n").ok());
  EXPECT_EQ(backend_.GetPolicies(), "- name: none\n");
  EXPECT_EQ(server_->auth_stats().permission_denied.load(), 1u);

  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kViewerToken));
  v1::DrainResponse drain;
  EXPECT_EQ(stub_->Drain(&context, v1::DrainRequest(), &drain).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AdminRolesTest, UnknownOrMissingTokensAreUnauthenticated) {
  Start(AdminServerOptions());
  EXPECT_EQ(GetStatus("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status wrong = GetStatus("not-a-token-of-the-file");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), Not(HasSubstr("not-a-token")));
  EXPECT_EQ(server_->auth_stats().unauthenticated.load(), 2u);
}

TEST_F(AdminRolesTest, TheSingleAdminTokenStillMeansOperator) {
  AdminServerOptions options;
  options.auth_token = "legacy-admin-token-0123456789";
  Start(options);
  EXPECT_TRUE(SetPolicies("legacy-admin-token-0123456789", "- name: x\n").ok());
  EXPECT_TRUE(SetPolicies(kOperatorToken, "- name: y\n").ok());
}

TEST_F(AdminRolesTest, ChangingCallsAreAuditedWithWhoWhatResultAndPolicyDiff) {
  Start(AdminServerOptions());
  ASSERT_TRUE(SetPolicies(kOperatorToken, "- name: errors\n  type: status_code\n").ok());
  ASSERT_TRUE(SetPolicies(kOperatorToken, "- name: errors\n  type: always_sample\n").ok());
  ASSERT_EQ(SetPolicies(kViewerToken, "- name: z\n").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_EQ(SetPolicies(kOperatorToken, "bad").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Reads are not audited.
  ASSERT_TRUE(GetStatus(kViewerToken).ok());

  const std::vector<std::string> lines = AuditLines();
  ASSERT_EQ(lines.size(), 4u) << ReadAll(dir_ + "/audit.log");
  EXPECT_THAT(lines[1], HasSubstr("\"method\":\"SetPolicies\",\"caller\":\"alice\",\"via\":"
                                  "\"token\",\"role\":\"operator\",\"peer\":\"ipv4:127.0.0.1:"));
  EXPECT_THAT(lines[1], HasSubstr("\"result\":\"OK\""));
  EXPECT_THAT(lines[1], HasSubstr("\"policy_diff\":[\"-  type: status_code\",\"+  type: "
                                  "always_sample\"]"));
  EXPECT_THAT(lines[1], HasSubstr("\"time\":\"20"));
  EXPECT_THAT(lines[2], HasSubstr("\"caller\":\"bob\""));
  EXPECT_THAT(lines[2], HasSubstr("\"result\":\"PERMISSION_DENIED\""));
  EXPECT_THAT(lines[3], HasSubstr("\"result\":\"INVALID_ARGUMENT\""));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr(kOperatorToken)));
    EXPECT_THAT(line, Not(HasSubstr(kViewerToken)));
  }
  EXPECT_EQ(audit_->events(0, AuditResult::kOk), 2u);
  EXPECT_EQ(audit_->events(0, AuditResult::kDenied), 1u);
  EXPECT_EQ(audit_->events(0, AuditResult::kFailed), 1u);

  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kOperatorToken));
  v1::CheckpointRequest request;
  request.set_dir("/tmp/some-checkpoint");
  v1::CheckpointResponse response;
  ASSERT_TRUE(stub_->Checkpoint(&context, request, &response).ok());
  EXPECT_THAT(AuditLines().back(),
              HasSubstr("\"request\":{\"dir\":\"/tmp/some-checkpoint\"},\"result\":\"OK\""));
}

// Size-based rotation: audit.log never passes max_bytes (a line is never split), older lines move
// to audit.log.1, .2, ... up to max_files, the oldest beyond are deleted; every file stays 0600
// and every line whole, in order across the files.
TEST(AuditLogRotationTest, RotatesBySizeKeepingMaxFiles) {
  char pattern[] = "/tmp/audit_rotation_test.XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const std::string path = dir + "/audit.log";
  AuditEvent event;
  event.method = "Drain";
  event.caller = "a1000";  // every caller below has 5 characters: every line the same size
  event.result = absl::OkStatus();
  const size_t line_size = AuditLog::ToJson(event).size() + 1;
  AuditLogOptions options;
  options.max_bytes = 3 * line_size + line_size / 2;  // three lines a file
  options.max_files = 2;
  {
    auto log = AuditLog::Open(path, options);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 10; ++i) {
      event.caller = absl::StrCat("a", 1000 + i);
      (*log)->Record(event);
    }
    EXPECT_EQ((*log)->rotations(), 3u);  // files of 3, 3, 3 lines and the current one of 1
    EXPECT_EQ((*log)->write_errors(), 0u);
  }
  auto callers = [](const std::string& file) {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(ReadAll(file), '\n', absl::SkipEmpty())) {
      const size_t at = line.find("\"caller\":\"");
      EXPECT_NE(at, absl::string_view::npos) << line;
      EXPECT_TRUE(absl::EndsWith(line, "}")) << line;
      out.emplace_back(line.substr(at + 10, 5));
    }
    return out;
  };
  EXPECT_THAT(callers(path + ".2"), ElementsAre("a1003", "a1004", "a1005"));
  EXPECT_THAT(callers(path + ".1"), ElementsAre("a1006", "a1007", "a1008"));
  EXPECT_THAT(callers(path), ElementsAre("a1009"));
  EXPECT_NE(access((path + ".3").c_str(), F_OK), 0) << "beyond max_files: deleted";
  for (const std::string& file : {path, path + ".1", path + ".2"}) {
    struct stat st;
    ASSERT_EQ(stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
    EXPECT_LE(static_cast<uint64_t>(st.st_size), options.max_bytes) << file;
  }

  // Reopened, the log continues the current file where it was and rotates on its size.
  {
    auto log = AuditLog::Open(path, options);
    ASSERT_TRUE(log.ok());
    for (int i = 10; i < 13; ++i) {
      event.caller = absl::StrCat("a", 1000 + i);
      (*log)->Record(event);
    }
    EXPECT_EQ((*log)->rotations(), 1u);
  }
  EXPECT_THAT(callers(path + ".1"), ElementsAre("a1009", "a1010", "a1011"));
  EXPECT_THAT(callers(path), ElementsAre("a1012"));
  EXPECT_THAT(AuditLog::Open(path, AuditLogOptions{1, 0}).status().message(),
              HasSubstr("max_files must be >= 1, got 0"));
  ASSERT_EQ(std::system(absl::StrCat("rm -rf ", dir).c_str()), 0);
}

TEST(LineDiffTest, ListsRemovedAndAddedLinesInOrder) {
  EXPECT_THAT(LineDiff("a\nb\nc\n", "a\nc\nd\n"), ElementsAre("-b", "+d"));
  EXPECT_THAT(LineDiff("", "x\n"), ElementsAre("+x"));
  EXPECT_TRUE(LineDiff("same\n", "same\n").empty());
}

// A client certificate's subject maps to a role (mutual TLS).
TEST_F(AdminRolesTest, ClientCertificateSubjectsMapToRoles) {
  auto make_cert = [&](const std::string& name, const std::string& subject) {
    const std::string cmd =
        absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ", dir_, "/", name,
                     ".key -out ", dir_, "/", name, ".pem -subj '", subject,
                     "' -addext subjectAltName=DNS:localhost 2>/dev/null");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  };
  make_cert("server", "/CN=localhost");
  make_cert("viewer", "/CN=carol");
  make_cert("stranger", "/CN=mallory");
  // One CA file trusting both client certificates (they are self-signed).
  std::ofstream(dir_ + "/clients.pem")
      << ReadAll(dir_ + "/viewer.pem") << ReadAll(dir_ + "/stranger.pem");

  AdminServerOptions options;
  options.tls.cert_file = dir_ + "/server.pem";
  options.tls.key_file = dir_ + "/server.key";
  options.tls.client_ca_file = dir_ + "/clients.pem";
  options.certificate_roles["CN=carol"] = security::Role::kViewer;
  auto client = [&](const std::string& name) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadAll(dir_ + "/server.pem");
    ssl.pem_cert_chain = ReadAll(dir_ + "/" + name + ".pem");
    ssl.pem_private_key = ReadAll(dir_ + "/" + name + ".key");
    return grpc::SslCredentials(ssl);
  };
  Start(options, client("viewer"));
  grpc::Status status = GetStatus("");
  EXPECT_TRUE(status.ok()) << status.error_message();
  grpc::Status denied = SetPolicies("", "- name: x\n");
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("\"CN=carol\" has the viewer role"));
  EXPECT_THAT(AuditLines().back(), HasSubstr("\"caller\":\"CN=carol\",\"via\":\"certificate\""));

  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto stranger = v1::AdminService::NewStub(
      grpc::CreateCustomChannel(server_->address(), client("stranger"), args));
  grpc::ClientContext context;
  v1::GetStatusResponse response;
  grpc::Status refused = stranger->GetStatus(&context, v1::GetStatusRequest(), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.error_message(), HasSubstr("\"CN=mallory\" has no role"));
}

}  // namespace
}  // namespace tracekeep::admin
