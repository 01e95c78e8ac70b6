#include "tests/e2e/kafka_broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace tracekeep::e2e {

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

namespace {

bool CanConnect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what StorageTool
// random-uuid prints).
std::string ClusterId() {
  std::random_device rd;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(rd() & 0xff);
  bytes[0] = static_cast<char>((bytes[0] & 0x3f) | 0x40);  // never a reserved (zero) id
  return absl::WebSafeBase64Escape(bytes);
}

}  // namespace

std::string KafkaBroker::LibsDir(const std::string& source_dir) {
  const char* deps = getenv("TRACEKEEP_DEPS_DIR");
  return absl::StrCat(deps != nullptr && *deps != '\0' ? deps : source_dir + "/.deps",
                      "/kafka/libs");
}

absl::Status KafkaBroker::Start(const std::string& libs_dir, const std::string& dir,
                                int num_partitions, absl::Duration timeout) {
  if (!std::filesystem::is_directory(libs_dir)) {
    return absl::NotFoundError(
        absl::StrCat("no Kafka broker jars in ", libs_dir, ": run scripts/setup.sh --peers"));
  }
  const int port = PickFreePort();
  const int controller_port = PickFreePort();
  if (port <= 0 || controller_port <= 0 || port == controller_port) {
    return absl::InternalError("cannot pick free loopback ports for the broker");
  }
  bootstrap_ = absl::StrCat("127.0.0.1:", port);
  const std::string config = dir + "/server.properties";
  WriteFile(config, absl::StrCat(R"(process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:)",
                                 controller_port, R"(
listeners=PLAINTEXT://127.0.0.1:)",
                                 port, ",CONTROLLER://127.0.0.1:", controller_port, R"(
advertised.listeners=PLAINTEXT://127.0.0.1:)",
                                 port, R"(
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=)",
                                 dir, R"(/logs
num.partitions=)",
                                 num_partitions, R"(
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
)"));
  const std::string classpath = libs_dir + "/*";
  CommandResult format = RunCommand({"/usr/bin/java", "-cp", classpath, "kafka.tools.StorageTool",
                                     "format", "--standalone", "-t", ClusterId(), "-c", config});
  if (format.exit_code != 0) {
    return absl::InternalError(absl::StrCat("kafka StorageTool format failed: ", format.output));
  }
  log_file_ = dir + "/kafka.log";
  classpath_ = classpath;
  config_ = config;
  port_ = port;
  return Launch(timeout);
}

absl::Status KafkaBroker::Launch(absl::Duration timeout) {
  const std::string log = process_ == nullptr ? log_file_ : log_file_ + ".restarted";
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/java", "-Xmx512m", "-XX:+UseSerialGC", "-cp", classpath_,
                               "kafka.Kafka", config_},
      log);
  if (!WaitFor([&] { return CanConnect(port_); }, timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("the Kafka broker did not listen on ", bootstrap_, " within ",
                     absl::FormatDuration(timeout), "; its log:\n", ReadFile(log)));
  }
  return absl::OkStatus();
}

void KafkaBroker::Kill() {
  if (process_ == nullptr) return;
  process_->Signal(SIGKILL);
  process_->Wait(absl::Seconds(30));
}

absl::Status KafkaBroker::Restart(absl::Duration timeout) { return Launch(timeout); }

KafkaBroker::~KafkaBroker() {
  if (process_ != nullptr) {
    process_->Signal(SIGKILL);
    process_->Wait(absl::Seconds(30));
  }
}

}  // namespace tracekeep::e2e
