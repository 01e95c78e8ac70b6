// Helpers for end-to-end tests: run the real binaries as child processes.
#ifndef TRACEKEEP_TESTS_E2E_PROCESS_H_
#define TRACEKEEP_TESTS_E2E_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace tracekeep::e2e {

// A fresh temporary directory (under $TMPDIR, else /tmp), removed with its contents on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process with stdout and stderr redirected to `log_file`.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_file);
  ~ChildProcess();  // SIGKILLs the child if it still runs
  ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool Signal(int signal_number);
  // Waits until the child exits or `timeout` passes. Returns the exit code, -1 on timeout,
  // 128+N when killed by signal N.
  int Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a command to completion (argv[0] is a path).
CommandResult RunCommand(const std::vector<std::string>& argv);

// Polls `condition` until it is true or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

std::string ReadFile(const std::string& path);
// The string value of `key` in a flat JSON object such as tracekeep's --write-endpoints file.
std::string JsonValue(const std::string& json, const std::string& key);
void WriteFile(const std::string& path, const std::string& content);

}  // namespace tracekeep::e2e

#endif  // TRACEKEEP_TESTS_E2E_PROCESS_H_
