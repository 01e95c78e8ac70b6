// tracekeep: the daemon's entry point.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "collector/common/logging.h"
#include "collector/config/config.h"
#include "collector/main/daemon.h"

namespace {

constexpr char kUsage[] = R"(tracekeep: tail-sampling trace collector (OTLP in, RocksDB, OTLP out)

Usage:
  tracekeep [--config FILE] [--write-endpoints FILE]
  tracekeep --check-config FILE
  tracekeep --version | --help

Options:
  --config FILE           YAML configuration. Without it every option has its default: data in
                          ./data, OTLP on :4317/:4318, metrics on :9464, admin on 127.0.0.1:4320,
                          no forwarding.
  --check-config FILE     Validate FILE, print every problem (file:line:column: path: what),
                          exit 0 when valid and 1 otherwise.
  --write-endpoints FILE  Once serving, write the addresses actually bound as JSON to FILE
                          (useful with port 0).
  --version               Print the version.

Signals: SIGTERM or SIGINT stops intake, decides every pending trace, flushes the exporter
(up to 30 s) and exits 0. SIGHUP reloads the token files (OTLP and admin) without dropping
connections.
)";

int Fail(const std::string& message) {
  std::cerr << "tracekeep: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex (gRPC takes several per call)
  // keeps a graph of lock orders to detect deadlocks: 0.5 % of the daemon's profile samples in a
  // burst of order traffic. That is a debugging aid; the daemon runs without it (unit tests keep
  // it).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string config_path;
  std::string check_path;
  std::string endpoints_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "tracekeep 0.1.0\n";
      return 0;
    } else if (arg == "--config") {
      if (!value(&config_path)) return Fail("--config needs a file");
    } else if (arg == "--check-config") {
      if (!value(&check_path)) return Fail("--check-config needs a file");
    } else if (arg == "--write-endpoints") {
      if (!value(&endpoints_path)) return Fail("--write-endpoints needs a file");
    } else {
      std::cerr << "tracekeep: unknown argument \"" << arg << "\"\n\n" << kUsage;
      return 2;
    }
  }

  if (!check_path.empty()) {
    auto config = tracekeep::config::LoadConfigFile(check_path);
    if (!config.ok()) {
      std::cerr << config.status().message() << "\n";
      return 1;
    }
    std::cout << check_path << ": OK\n";
    return 0;
  }

  auto config = config_path.empty() ? tracekeep::config::DefaultConfig()
                                    : tracekeep::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  tracekeep::LogLevel level;
  if (tracekeep::ParseLogLevel(config->log_level, &level)) tracekeep::SetMinLogLevel(level);

  // Block the stop signals in every thread; this one waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto daemon = tracekeep::Daemon::Start(*config);
  if (!daemon.ok()) return Fail(absl::StrCat("cannot start: ", daemon.status().ToString()));

  std::string json = "{";
  for (const auto& [name, address] : (*daemon)->endpoints()) {
    absl::StrAppend(&json, json.size() > 1 ? ", " : "", "\"", name, "\": \"", address, "\"");
  }
  json += "}\n";
  if (!endpoints_path.empty()) {
    const std::string tmp = endpoints_path + ".tmp";
    std::ofstream(tmp) << json;
    if (std::rename(tmp.c_str(), endpoints_path.c_str()) != 0) {
      TK_LOG(Error) << "cannot write " << endpoints_path << ": " << std::strerror(errno);
    }
  }
  TK_LOG(Info) << "tracekeep ready; endpoints " << json.substr(0, json.size() - 1) << "; data in "
               << config->data_dir
               << (config->exporter.endpoint.empty()
                       ? std::string("; forwarding disabled")
                       : "; forwarding to " + config->exporter.endpoint);

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) {
    TK_LOG(Info) << "received SIGHUP; reloading token files";
    (*daemon)->Reload();
  }
  TK_LOG(Info) << "received " << strsignal(signal_number) << "; shutting down";
  (*daemon)->Shutdown(absl::Now() + absl::Seconds(30));
  TK_LOG(Info) << "stopped";
  return 0;
}
