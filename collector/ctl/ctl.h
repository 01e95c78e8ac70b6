// tracekeepctl: the command-line client of the admin API. The commands live here, writing to
// the streams they are given, so that tests can run them in-process; main.cc only wires argv,
// the environment and the standard streams.
#ifndef TRACEKEEP_COLLECTOR_CTL_CTL_H_
#define TRACEKEEP_COLLECTOR_CTL_CTL_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace tracekeep::admin::v1 {
class GetStatusResponse;
}  // namespace tracekeep::admin::v1
namespace opentelemetry::proto::trace::v1 {
class TracesData;
}  // namespace opentelemetry::proto::trace::v1

namespace tracekeep::ctl {

inline constexpr char kDefaultAdminAddress[] = "127.0.0.1:4320";
// Environment variable that overrides the default admin address (--addr overrides both).
inline constexpr char kAdminAddressEnv[] = "TRACEKEEP_ADMIN_ADDR";
// Environment variable naming a file that holds the admin token (--token-file overrides it).
inline constexpr char kAdminTokenFileEnv[] = "TRACEKEEP_ADMIN_TOKEN_FILE";

// Process exit codes.
inline constexpr int kExitOk = 0;
// The daemon answered with an error (unknown trace, no storage, ...).
inline constexpr int kExitFailure = 1;
// Bad usage or bad arguments, or the daemon could not be reached.
inline constexpr int kExitUsage = 2;

struct CtlOptions {
  // host:port of the admin API.
  std::string addr = kDefaultAdminAddress;
  // Machine output: protobuf JSON for status, OTLP/JSON (hex ids) for traces.
  bool json = false;
  // Deadline of each call. Default: 5 s.
  absl::Duration timeout = absl::Seconds(5);
  // Sent as "authorization: Bearer <token>" when not empty (the daemon's admin.auth_token_file).
  std::string token;
  // When set, the admin API is reached over TLS, trusting this CA certificate (PEM).
  std::string tls_ca_file;
};

// `tracekeepctl status`: the daemon's version, uptime, endpoints and counters. Returns the exit
// code; results go to `out`, errors to `err`.
int RunStatus(const CtlOptions& options, std::ostream& out, std::ostream& err);

// `tracekeepctl trace get <trace-id>`: every stored span of one trace, read page by page (a page
// is under 3 MiB) and printed once whole: the tree needs every span.
int RunTraceGet(const CtlOptions& options, const std::string& trace_id, std::ostream& out,
                std::ostream& err);

// `tracekeepctl policies get`: the sampling policies in force, as YAML.
int RunPoliciesGet(const CtlOptions& options, std::ostream& out, std::ostream& err);

// `tracekeepctl policies set|validate FILE`: sends the YAML policy list in FILE ("-" = stdin)
// to be put in force (`apply`) or only checked. A rejected list exits 1 with every problem.
int RunPoliciesSet(const CtlOptions& options, const std::string& file, bool apply,
                   std::ostream& out, std::ostream& err);

// `tracekeepctl checkpoint <dir>`: a consistent copy of the daemon's database written into `dir`
// on the daemon's machine. A relative `dir` is made absolute against this process's working
// directory (the same directory when the daemon runs on this machine).
int RunCheckpoint(const CtlOptions& options, const std::string& dir, std::ostream& out,
                  std::ostream& err);

// `tracekeepctl drain [--deadline 30s]`: stops the daemon's intake, decides every pending trace
// and waits up to `deadline` for the export queue to empty; prints what was decided, kept,
// exported and what stays queued. The call's own deadline is `deadline` + options.timeout.
int RunDrain(const CtlOptions& options, absl::Duration deadline, std::ostream& out,
             std::ostream& err);

// Parses `args` (argv without the program name), then runs the command. `env_addr` is the value
// of TRACEKEEP_ADMIN_ADDR, "" when unset.
int RunCommandLine(const std::vector<std::string>& args, const std::string& env_addr,
                   const std::string& env_token_file, std::ostream& out, std::ostream& err);
int RunCommandLine(const std::vector<std::string>& args, const std::string& env_addr,
                   std::ostream& out, std::ostream& err);

// The --help text.
std::string Usage();

// Human output, exposed for tests.
// An aligned two-column summary.
std::string FormatStatus(const tracekeep::admin::v1::GetStatusResponse& status);
// A header line, then a table with one row per span: the span tree in depth-first order, siblings
// by start time, span names indented by depth.
std::string FormatTrace(const std::string& trace_id_hex,
                        const opentelemetry::proto::trace::v1::TracesData& data);

}  // namespace tracekeep::ctl

#endif  // TRACEKEEP_COLLECTOR_CTL_CTL_H_
