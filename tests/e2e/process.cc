#include "tests/e2e/process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/time/clock.h"

namespace tracekeep::e2e {

TempDir::TempDir() {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tracekeep-e2e-XXXXXX";
  path_ = mkdtemp(tmpl.data());
}

TempDir::~TempDir() {
  if (getenv("TRACEKEEP_KEEP_TEST_DIRS") == nullptr) {
    std::string cmd = "rm -rf '" + path_ + "'";
    (void)system(cmd.c_str());
  }
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_file) {
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool ChildProcess::Signal(int signal_number) { return pid_ > 0 && kill(pid_, signal_number) == 0; }

int ChildProcess::Wait(absl::Duration timeout) {
  int status = 0;
  const bool exited = WaitFor(
      [&] {
        const pid_t r = waitpid(pid_, &status, WNOHANG);
        return r == pid_;
      },
      timeout);
  if (!exited) return -1;
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += "'" + a + "' ";
  cmd += "2>&1";
  CommandResult result;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(5);
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    // Back off between polls of an external process; the condition decides, not the pause.
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(pause));
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string JsonValue(const std::string& json, const std::string& key) {
  for (const std::string& needle : {"\"" + key + "\": \"", "\"" + key + "\":\""}) {
    const size_t at = json.find(needle);
    if (at == std::string::npos) continue;
    const size_t start = at + needle.size();
    return json.substr(start, json.find('"', start) - start);
  }
  return "";
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
}

}  // namespace tracekeep::e2e
