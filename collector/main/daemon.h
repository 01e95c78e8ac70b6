// The tracekeep daemon: builds the pipeline from a config, starts it, stops it.
#ifndef TRACEKEEP_COLLECTOR_MAIN_DAEMON_H_
#define TRACEKEEP_COLLECTOR_MAIN_DAEMON_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/config/config.h"

namespace tracekeep {

class Daemon {
 public:
  // Builds every component and starts them, downstream first. On failure everything started so
  // far is shut down again.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Daemon>> Start(const config::Config& config);
  ~Daemon();

  // The addresses actually bound, by name: otlp_grpc, otlp_http, admin, telemetry.
  std::map<std::string, std::string> endpoints() const;

  // Stops intake, decides every pending trace, flushes the exporter until `deadline`, closes the
  // store. Idempotent.
  void Shutdown(absl::Time deadline);

  // Reloads what can change without a restart: the token files (SIGHUP). Connections stay open.
  void Reload();

 private:
  class Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_MAIN_DAEMON_H_
