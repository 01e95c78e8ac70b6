#include "collector/ctl/ctl.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "collector/admin/admin_server.h"
#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/collector/admin/fake_admin_backend.h"
#include "tracekeep/admin/v1/admin.pb.h"

namespace tracekeep::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::tracekeep::testing::FakeAdminBackend;
using ::tracekeep::testing::InMemorySpanStore;
using ::tracekeep::testing::MakeOrigin;
using ::tracekeep::testing::MakeSpan;
using ::tracekeep::testing::SampleStatus;

constexpr char kTraceHex[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr int64_t kBase = 1'700'000'000'000'000'000;  // a start time in unix nanos
constexpr int64_t kMs = 1'000'000;

std::string Id(const char* hex, size_t size) { return FromHex(hex, size).value(); }

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.status() = SampleStatus();
    admin::AdminServerOptions options;
    options.endpoint = "127.0.0.1:0";
    auto server = admin::AdminServer::Start(options, &backend_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  // Runs a command line against the test server (unless it names another --addr).
  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--addr", server_->address()});
    return RunWithEnv(args, "");
  }
  Result RunWithEnv(const std::vector<std::string>& args, const std::string& env_addr) {
    std::ostringstream out, err;
    Result result;
    result.code = RunCommandLine(args, env_addr, out, err);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  // A checkout: shop-api's root calls crm-api (which queries its database, and fails) and then
  // charges the card; a mes-api span whose parent was never stored arrives too. Consumed out of
  // order.
  void StoreCheckoutTrace() {
    const std::string trace_id = Id(kTraceHex, 16);
    const auto shop = MakeOrigin("shop-api");
    const auto crm = MakeOrigin("crm-api");
    const auto mes = MakeOrigin("mes-api");
    KeptTraces kept(1);
    kept[0].trace_id = trace_id;
    auto& spans = kept[0].spans;
    spans.push_back(MakeSpan(shop, trace_id, Id("00000000000000c2", 8), Id("00f067aa0ba902b7", 8),
                             "charge card", kBase + 50 * kMs, kBase + 200 * kMs));
    spans.push_back(MakeSpan(crm, trace_id, Id("00000000000000d1", 8), Id("00000000000000c1", 8),
                             "SELECT customers", kBase + 10 * kMs, kBase + 30 * kMs));
    spans.push_back(MakeSpan(mes, trace_id, Id("00000000000000e1", 8), Id("00000000000000ff", 8),
                             "late work order", kBase + 1 * kMs, kBase + 2 * kMs + 250 * 1000));
    spans.push_back(MakeSpan(shop, trace_id, Id("00f067aa0ba902b7", 8), "", "GET /checkout", kBase,
                             kBase + 250 * kMs));
    spans.push_back(MakeSpan(crm, trace_id, Id("00000000000000c1", 8), Id("00f067aa0ba902b7", 8),
                             "lookup customer", kBase + 5 * kMs, kBase + 45 * kMs,
                             /*error=*/true));
    ASSERT_TRUE(store_.Consume(std::move(kept)).ok());
  }

  InMemorySpanStore store_;
  FakeAdminBackend backend_{&store_};
  std::unique_ptr<admin::AdminServer> server_;
};

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return path;
}

TEST_F(CtlTest, PoliciesGetSetAndValidate) {
  Result got = Run({"policies", "get"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(got.out, "- name: all\n  type: always_sample\n");

  const std::string good = WriteTempFile("good.yaml", "- name: v\n  type: always_sample\n");
  Result validated = Run({"policies", "validate", good});
  ASSERT_EQ(validated.code, 0) << validated.err;
  EXPECT_EQ(validated.out, "policies valid: 1 policy\n");
  EXPECT_EQ(Run({"policies", "get"}).out, "- name: all\n  type: always_sample\n");

  Result set = Run({"policies", "set", good});
  ASSERT_EQ(set.code, 0) << set.err;
  EXPECT_EQ(set.out, "policies set: 1 policy\n");
  EXPECT_EQ(Run({"policies", "get"}).out, "- name: v\n  type: always_sample\n");
}

TEST_F(CtlTest, RejectedPoliciesExitOneWithEveryProblem) {
  const std::string bad = WriteTempFile("bad.yaml", "bad");
  Result r = Run({"policies", "set", bad});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "tracekeepctl: policies in \"" + bad +
                       "\" rejected; the running policies stay in force:\n"
                       "policies:1:1: first problem\npolicies:2:1: second problem\n");
  Result missing = Run({"policies", "set", "/nonexistent/p.yaml"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("cannot read policy file \"/nonexistent/p.yaml\""));
  EXPECT_EQ(Run({"policies", "frob"}).code, kExitUsage);
  EXPECT_EQ(Run({"policies", "set"}).code, kExitUsage);
}

TEST_F(CtlTest, StatusPrintsAnAlignedSummary) {
  Result r = Run({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "version          0.1.0\n"
            "uptime           1h 2m 5s\n"
            "data dir         /var/lib/tracekeep\n"
            "shards           2\n"
            "endpoints        otlp_grpc  0.0.0.0:4317\n"
            "                 admin      127.0.0.1:4320\n"
            "spans received   1500\n"
            "spans accepted   1490\n"
            "spans refused    10\n"
            "traces pending   7 (42 spans)\n"
            "traces kept      12\n"
            "traces dropped   300\n"
            "traces stored    12\n"
            "export target    localhost:14317\n"
            "spans exported   96\n"
            "export failures  1\n");
}

TEST_F(CtlTest, StatusSaysWhenForwardingIsDisabled) {
  backend_.status().clear_export_endpoint();
  Result r = Run({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("export target    disabled\n"));
}

TEST_F(CtlTest, StatusShowsTheKafkaMemberItsPartitionsAndLag) {
  admin::v1::KafkaStatus* k = backend_.status().mutable_kafka();
  k->set_group_id("tracekeep");
  k->set_member_id("tracekeep-5f2c");
  k->add_topics("otlp_spans");
  k->add_topics("otlp_spans_by_trace");
  k->set_records_consumed(120);
  k->set_records_skipped(1);
  k->set_rebalances(2);
  admin::v1::KafkaPartition* p0 = k->add_partitions();
  p0->set_topic("otlp_spans");
  p0->set_partition(0);
  p0->set_committed(40);
  p0->set_lag(3);
  admin::v1::KafkaPartition* p2 = k->add_partitions();
  p2->set_topic("otlp_spans");
  p2->set_partition(2);
  p2->set_committed(-1);
  Result r = Run({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("export failures   1\n"
                               "kafka group       tracekeep, member tracekeep-5f2c\n"
                               "kafka topics      otlp_spans, otlp_spans_by_trace\n"
                               "kafka records     120 consumed, 1 skipped, 2 rebalances\n"
                               "kafka partitions  otlp_spans/0  committed 40  lag 3\n"
                               "                  otlp_spans/2  committed -  lag 0\n"));
}

TEST_F(CtlTest, StatusJsonIsTheResponseWithEveryField) {
  backend_.status().set_export_failures(0);
  Result r = Run({"--json", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  // Zero counters are printed, not omitted: scripts read them.
  EXPECT_THAT(r.out, HasSubstr("\"exportFailures\":\"0\""));
  admin::v1::GetStatusResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &parsed).ok()) << r.out;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, backend_.status()))
      << parsed.DebugString();
}

TEST_F(CtlTest, TraceGetPrintsTheSpanTreeInStartOrder) {
  StoreCheckoutTrace();
  Result r = Run({"trace", "get", kTraceHex});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "trace 4bf92f3577b34da6a3ce929d0e0e4736: 5 spans, 3 services, 250.000 ms, 1 error\n"
            "SPAN                  SERVICE   SPAN ID           PARENT            START ms  "
            "DURATION ms  STATUS\n"
            "GET /checkout         shop-api  00f067aa0ba902b7  -                    0.000      "
            "250.000  unset\n"
            "  lookup customer     crm-api   00000000000000c1  00f067aa0ba902b7     5.000       "
            "40.000  error: payment declined\n"
            "    SELECT customers  crm-api   00000000000000d1  00000000000000c1    10.000       "
            "20.000  unset\n"
            "  charge card         shop-api  00000000000000c2  00f067aa0ba902b7    50.000      "
            "150.000  unset\n"
            "late work order       mes-api   00000000000000e1  00000000000000ff     1.000        "
            "1.250  unset\n");
}

TEST_F(CtlTest, TraceGetJsonIsOtlpJsonWithTheStoredIdsInHex) {
  StoreCheckoutTrace();
  Result r = Run({"trace", "get", "--json", "4BF92F3577B34DA6A3CE929D0E0E4736"});
  ASSERT_EQ(r.code, 0) << r.err;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &json).ok()) << r.out;
  std::map<std::string, std::string> parent_of;  // span id -> parent span id, as printed
  std::map<std::string, std::string> service_of;
  for (const auto& rs : json.fields().at("resourceSpans").list_value().values()) {
    const auto& resource = rs.struct_value().fields().at("resource").struct_value();
    const auto& attr = resource.fields().at("attributes").list_value().values(0).struct_value();
    const std::string service =
        attr.fields().at("value").struct_value().fields().at("stringValue").string_value();
    for (const auto& ss : rs.struct_value().fields().at("scopeSpans").list_value().values()) {
      for (const auto& span : ss.struct_value().fields().at("spans").list_value().values()) {
        const auto& f = span.struct_value().fields();
        EXPECT_EQ(f.at("traceId").string_value(), kTraceHex);
        const std::string id = f.at("spanId").string_value();
        parent_of[id] = f.count("parentSpanId") ? f.at("parentSpanId").string_value() : "";
        service_of[id] = service;
      }
    }
  }
  const std::map<std::string, std::string> want_parents = {
      {"00f067aa0ba902b7", ""},
      {"00000000000000c1", "00f067aa0ba902b7"},
      {"00000000000000c2", "00f067aa0ba902b7"},
      {"00000000000000d1", "00000000000000c1"},
      {"00000000000000e1", "00000000000000ff"},
  };
  EXPECT_EQ(parent_of, want_parents);
  EXPECT_EQ(service_of["00000000000000d1"], "crm-api");
  EXPECT_EQ(service_of["00f067aa0ba902b7"], "shop-api");
}

// More than gRPC's default 4 MiB message: the daemon sends it in pages, printed as one tree.
TEST_F(CtlTest, TraceGetOfALargeTraceFollowsThePages) {
  const std::string trace_id = Id(kTraceHex, 16);
  const auto shop = MakeOrigin("shop-api");
  KeptTraces kept(1);
  kept[0].trace_id = trace_id;
  const std::string root = Id("00f067aa0ba902b7", 8);
  kept[0].spans.push_back(
      MakeSpan(shop, trace_id, root, "", "GET /export", kBase, kBase + 900 * kMs));
  for (int i = 1; i < 20'000; ++i) {
    std::string span_id(8, '\x01');
    span_id[6] = static_cast<char>(i >> 8);
    span_id[7] = static_cast<char>(i & 0xff);
    kept[0].spans.push_back(MakeSpan(shop, trace_id, span_id, root, std::string(300, 'x'),
                                     kBase + i * 1000, kBase + i * 1000 + kMs));
  }
  ASSERT_TRUE(store_.Consume(std::move(kept)).ok());
  Result r = Run({"trace", "get", kTraceHex});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("trace 4bf92f3577b34da6a3ce929d0e0e4736: 20000 spans, 1 service"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 20'002);  // summary, header, spans

  r = Run({"--json", "trace", "get", kTraceHex});
  ASSERT_EQ(r.code, 0) << r.err;
  size_t spans = 0;
  for (size_t at = r.out.find("\"spanId\""); at != std::string::npos;
       at = r.out.find("\"spanId\"", at + 1)) {
    ++spans;
  }
  EXPECT_EQ(spans, 20'000u);
}

TEST_F(CtlTest, UnknownTraceExitsOneWithTheDaemonsMessage) {
  StoreCheckoutTrace();
  Result r = Run({"trace", "get", "0af7651916cd43dd8448eb211c80319c"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "tracekeepctl: trace 0af7651916cd43dd8448eb211c80319c not found\n");
}

TEST_F(CtlTest, MalformedTraceIdExitsTwoNamingTheValue) {
  for (const std::string bad :
       {"xyz", "4bf92f3577b34da6a3ce929d0e0e473g", "00000000000000000000000000000000"}) {
    Result r = Run({"trace", "get", bad});
    EXPECT_EQ(r.code, kExitUsage) << bad;
    EXPECT_THAT(r.err, StartsWith("tracekeepctl: invalid trace id: \"" + bad + "\"")) << bad;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(CtlTest, DaemonWithoutStorageExitsOne) {
  FakeAdminBackend storeless(nullptr);
  admin::AdminServerOptions options;
  options.endpoint = "127.0.0.1:0";
  auto server = admin::AdminServer::Start(options, &storeless);
  ASSERT_TRUE(server.ok()) << server.status();
  Result r = RunWithEnv({"--addr", (*server)->address(), "trace", "get", kTraceHex}, "");
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("storage is not enabled"));
}

TEST_F(CtlTest, CheckpointSendsAnAbsoluteDirectoryAndReportsTheCopy) {
  Result r = Run({"checkpoint", "/var/backups/tk-2026"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "checkpoint written to /var/backups/tk-2026 (4096 bytes, 7 ms)\n");

  r = Run({"checkpoint", "rel/../backup"});  // relative to this process's directory
  EXPECT_EQ(r.code, kExitOk) << r.err;
  const std::string want = (std::filesystem::current_path() / "backup").string();
  ASSERT_EQ(backend_.checkpoint_dirs().size(), 2u);
  EXPECT_EQ(backend_.checkpoint_dirs()[1], want);

  backend_.set_checkpoint_status(absl::AlreadyExistsError("checkpoint directory exists"));
  r = Run({"checkpoint", "/var/backups/tk-2026"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("checkpoint directory exists"));

  r = Run({"checkpoint"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("checkpoint takes exactly one directory"));
}

TEST_F(CtlTest, DrainSendsTheDeadlineAndPrintsTheCounts) {
  admin::v1::DrainResponse canned;
  canned.set_traces_decided(40);
  canned.set_traces_kept(30);
  canned.set_traces_not_kept(10);
  canned.set_spans_kept(120);
  canned.set_spans_exported(100);
  canned.set_spans_queued(20);
  canned.set_queue_bytes(2048);
  canned.set_flushed(false);
  canned.set_export_endpoint("jaeger:4317");
  canned.set_duration_ms(1500);
  backend_.set_drain_response(canned);

  Result r = Run({"drain"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "drained in 1500 ms; intake is closed until the daemon restarts\n"
            "  traces decided   40 (30 kept, 10 not kept)\n"
            "  spans kept       120\n"
            "  spans exported   100 to jaeger:4317\n"
            "  still queued     20 spans, 2048 bytes (deadline passed: sent on until the daemon "
            "stops, then kept on disk for the next start)\n");

  r = Run({"--json", "drain", "--deadline", "2m"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"tracesDecided\":\"40\""));
  EXPECT_THAT(r.out, HasSubstr("\"flushed\":false"));
  EXPECT_EQ(backend_.drain_deadlines(), (std::vector<int64_t>{30, 120}));

  for (const std::string bad : {"0s", "500ms", "soon"}) {
    r = Run({"drain", "--deadline", bad});
    EXPECT_EQ(r.code, kExitUsage) << bad;
    EXPECT_THAT(r.err, HasSubstr("--deadline must be a duration of at least 1s")) << bad;
    EXPECT_THAT(r.err, HasSubstr("\"" + bad + "\"")) << bad;
  }
  EXPECT_EQ(backend_.drain_deadlines().size(), 2u) << "bad deadlines never reach the daemon";
  r = Run({"drain", "now"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("drain takes no arguments"));
}

TEST_F(CtlTest, UnreachableDaemonExitsTwoNamingTheAddress) {
  // The port of a server that has just shut down: nothing listens there.
  const std::string address = server_->address();
  server_.reset();
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"status"}, std::vector<std::string>{"trace", "get", kTraceHex}}) {
    std::vector<std::string> args = {"--addr", address, "--timeout", "5s"};
    args.insert(args.end(), command.begin(), command.end());
    Result r = RunWithEnv(args, "");
    EXPECT_EQ(r.code, kExitUsage);
    EXPECT_THAT(r.err,
                StartsWith("tracekeepctl: cannot reach tracekeep admin at " + address + ": "));
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(CtlTest, AddressComesFromFlagThenEnvironment) {
  Result from_env = RunWithEnv({"status"}, server_->address());
  EXPECT_EQ(from_env.code, 0) << from_env.err;
  EXPECT_THAT(from_env.out, HasSubstr("0.1.0"));

  Result flag_wins = RunWithEnv({"--addr=" + server_->address(), "status"}, "127.0.0.1:1");
  EXPECT_EQ(flag_wins.code, 0) << flag_wins.err;

  Result env_used = RunWithEnv({"status"}, "127.0.0.1:1");
  EXPECT_EQ(env_used.code, kExitUsage);
  EXPECT_THAT(env_used.err, HasSubstr("at 127.0.0.1:1:"));
}

TEST(CtlUsageTest, HelpListsCommandsAndFlags) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCommandLine({"--help"}, "", out, err), 0);
  for (const char* word : {"status", "trace get <trace-id>", "checkpoint <dir>", "--addr", "--json",
                           "--timeout", "TRACEKEEP_ADMIN_ADDR", "127.0.0.1:4320"}) {
    EXPECT_THAT(out.str(), HasSubstr(word));
  }
  EXPECT_EQ(err.str(), "");
}

TEST(CtlUsageTest, BadUsageExitsTwoWithUsageOnStderr) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "missing command"},
      {{"stats"}, "unknown command \"stats\""},
      {{"trace"}, "trace needs a subcommand"},
      {{"trace", "list"}, "unknown trace subcommand \"list\""},
      {{"trace", "get"}, "exactly one trace id"},
      {{"status", "extra"}, "\"extra\""},
      {{"--verbose", "status"}, "unknown flag \"--verbose\""},
      {{"status", "--addr"}, "--addr needs a value"},
      {{"--timeout", "soon", "status"}, "got \"soon\""},
      {{"--timeout=-1s", "status"}, "got \"-1s\""},
  };
  for (const auto& [args, message] : cases) {
    std::ostringstream out, err;
    EXPECT_EQ(RunCommandLine(args, "", out, err), kExitUsage) << message;
    EXPECT_THAT(err.str(), HasSubstr(message));
    EXPECT_THAT(err.str(), HasSubstr("Usage: tracekeepctl"));
    EXPECT_EQ(out.str(), "");
  }
}

// Runs the built tracekeepctl through the shell with TRACEKEEP_ADMIN_ADDR=`env_addr`; returns its
// exit code and its stdout + stderr.
Result RunBinary(const std::string& env_addr, const std::string& args) {
  Result result;
  const std::string command = std::string(kAdminAddressEnv) + "=" + env_addr + " " +
                              TRACEKEEPCTL_PATH + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) result.out.append(buf, n);
  const int status = pclose(pipe);
  if (WIFEXITED(status)) result.code = WEXITSTATUS(status);
  return result;
}

// main() reads TRACEKEEP_ADMIN_ADDR and exits with the command's code.
TEST_F(CtlTest, BinaryReadsAddressFromEnvironmentAndReturnsExitCodes) {
  Result status = RunBinary(server_->address(), "--json status");
  EXPECT_EQ(status.code, 0) << status.out;
  EXPECT_THAT(status.out, HasSubstr("\"dataDir\":\"/var/lib/tracekeep\""));
  Result missing = RunBinary(server_->address(), "trace get 0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(missing.code, kExitFailure) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("not found"));
}

}  // namespace
}  // namespace tracekeep::ctl
