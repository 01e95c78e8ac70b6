// A real Apache Kafka broker for end-to-end tests: one KRaft node (broker and controller) on
// loopback ports picked free, its data in a temporary directory, started from the jars that
// `scripts/setup.sh --peers` puts in .deps/kafka/libs, killed at the end.
#ifndef TRACEKEEP_TESTS_E2E_KAFKA_BROKER_H_
#define TRACEKEEP_TESTS_E2E_KAFKA_BROKER_H_

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"

namespace tracekeep::e2e {

class KafkaBroker {
 public:
  // Where the broker's jars are: $TRACEKEEP_DEPS_DIR/kafka/libs, else <source>/.deps/kafka/libs.
  static std::string LibsDir(const std::string& source_dir);

  // Formats the storage and starts the broker; returns once it accepts connections (bounded by
  // `timeout`). `num_partitions` is the default for topics it creates on first use.
  absl::Status Start(const std::string& libs_dir, const std::string& dir, int num_partitions,
                     absl::Duration timeout);
  ~KafkaBroker();  // kills the broker

  // kill -9 of the broker (its data stays).
  void Kill();
  // Starts it again on the same ports and data; returns once it listens.
  absl::Status Restart(absl::Duration timeout);

  // host:port of the PLAINTEXT listener.
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& log_file() const { return log_file_; }

 private:
  absl::Status Launch(absl::Duration timeout);

  std::unique_ptr<ChildProcess> process_;
  std::string classpath_, config_;
  int port_ = 0;
  std::string bootstrap_;
  std::string log_file_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

// A test suite sharing one broker (it takes ~10 s to start) whose topics have `kPartitions`
// partitions by default; each test uses topics and a group of its own. Without the broker's
// jars the suite is skipped, except under CI (CI set), where that fails. A suite deriving its own
// SetUp calls this one first and returns when IsSkipped() or HasFatalFailure().
template <int kPartitions>
class KafkaBrokerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    broker_ = new KafkaBroker();
    *started_ = broker_->Start(KafkaBroker::LibsDir(TRACEKEEP_SOURCE_DIR), dir_->path(),
                               kPartitions, absl::Seconds(90));
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete dir_;
  }
  void SetUp() override {
    if (absl::IsNotFound(*started_) && getenv("CI") == nullptr) GTEST_SKIP() << *started_;
    ASSERT_TRUE(started_->ok()) << *started_;
  }

  static inline TempDir* dir_ = nullptr;
  static inline KafkaBroker* broker_ = nullptr;
  static inline absl::Status* started_ = new absl::Status();
};

}  // namespace tracekeep::e2e

#endif  // TRACEKEEP_TESTS_E2E_KAFKA_BROKER_H_
